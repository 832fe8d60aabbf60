/* LD_PRELOAD shim for the program tests: enters the guest before main, or exits 99 saying why. */
#include <stdio.h>
#include <stdlib.h>
#include <vmlwc.h>

__attribute__((constructor)) static void preload_enter(void)
{
	if (vmlwc_init(0) != 0) {
		fprintf(stderr, "preload: vmlwc_init: %s\n", vmlwc_strerror());
		exit(99);
	}
}
