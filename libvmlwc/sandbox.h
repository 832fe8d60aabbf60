/* The host thread's seccomp filter (sandbox.c). */
#ifndef VMLWC_SANDBOX_H
#define VMLWC_SANDBOX_H

#include "base.h"

int sandbox_build(void);   /* the filter, early in init (it allocates); 0 or -1 with the reason set */
int sandbox_install(void); /* last in init, raw syscalls only; 0 or -1 with the reason set */

/* g_vm.sandbox: built and installed at init, read-only after: no lock (each vCPU thread installs the same program). */
struct sandbox_state {
	unsigned syscalls;         /* syscalls the filter allows (ioctl counted once) */
	void *prog;                /* its BPF program, built early, installed last */
	unsigned len;
};

#endif
