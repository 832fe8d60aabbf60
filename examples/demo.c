/* vmlwc-demo: enter the guest, show the program's state survived, and time a redirected syscall. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmlwc.h"

static __thread int tls_counter = 5;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Median ns of one getppid over batches of n calls. */
static double time_getppid(int n, int batches)
{
	uint64_t t[64];
	for (int b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < n; i++)
			syscall(SYS_getppid);
		t[b] = (now_ns() - t0);
	}
	qsort(t, (size_t)batches, sizeof(t[0]), cmp);
	return (double)t[batches / 2] / n;
}

int main(void)
{
	char *heap = strdup("a string on the heap");
	volatile int on_stack = 1234;
	char path[] = "/tmp/vmlwc-demo-XXXXXX";
	int fd = mkstemp(path);
	double native, guest;
	struct vmlwc_stats s0, s1;
	uint64_t t0, t_init;
	const int n = 1000;

	tls_counter = 99;
	if (fd < 0 || write(fd, "written natively\n", 17) != 17)
		return 1;
	native = time_getppid(20000, 15);
	printf("vmlwc %s: entering the guest...\n", vmlwc_version());
	fflush(stdout);
	t0 = now_ns();
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "vmlwc_init failed: %s\n", vmlwc_strerror());
		return 1;
	}
	t_init = now_ns() - t0;
	printf("inside the guest (vmlwc_active() = %d), entered in %.2f ms\n", vmlwc_active(), t_init / 1e6);
	printf("  heap:  \"%s\"\n  stack: %d\n  TLS:   %d\n", heap, on_stack, tls_counter);
	if (write(fd, "written from the guest\n", 23) != 23 || lseek(fd, 0, SEEK_SET) != 0)
		return 1;
	char buf[64] = { 0 };
	if (read(fd, buf, sizeof(buf) - 1) <= 0)
		return 1;
	printf("  file opened before entering now holds:\n");
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		printf("    %s\n", line);
	close(fd);
	unlink(path);
	guest = time_getppid(n, 15);
	vmlwc_stats(&s0);
	for (int i = 0; i < n; i++)
		syscall(SYS_getppid);
	vmlwc_stats(&s1);
	printf("\nredirected getppid: %.1f us, native: %.1f ns (%.0fx)\n", guest / 1e3, native,
	       guest / native);
	printf("per call: %.2f exits to user space, %.2f hypervisor exits, %.1f emulated instructions\n",
	       (double)(s1.vm_exits - s0.vm_exits - 1) / n, (double)(s1.hv_exits - s0.hv_exits) / n,
	       (double)(s1.emulated_insns - s0.emulated_insns) / n);

	/* an lwC: a copy-on-write snapshot of this program, and a switch that never leaves the guest */
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		strcpy(heap, "changed in the child lwC");
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	if (c < 0) {
		perror("lwc_create");
		return 1;
	}
	lwc_switch(c, NULL, 0, &in);
	printf("\nlwC %d ran and wrote its copy of the heap; ours still says \"%s\"\n", c, heap);
	vmlwc_stats(&s0);
	uint64_t t1 = now_ns();
	for (int i = 0; i < n; i++)
		lwc_switch(c, NULL, 0, &in);
	uint64_t sw = now_ns() - t1;
	vmlwc_stats(&s1);
	printf("lwc_switch: %.1f us one way, %.2f exits to user space per switch\n", sw / 2.0 / n / 1e3,
	       (double)(s1.vm_exits - s0.vm_exits - 1) / (2.0 * n));
	lwc_close(c);
	free(heap);
	return 0;
}
