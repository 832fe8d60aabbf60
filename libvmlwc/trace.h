/* Tracing: VMLWC_TRACE=1 lines on a private dup of stderr (trace.c). */
#ifndef VMLWC_TRACE_H
#define VMLWC_TRACE_H

#include "base.h"

struct vcpu;
void trace_init(void); /* never fails (no trace when the dup fails) */
void trace_syscall(struct vcpu *v, const char *name, long nr, const long a[6], long ret, uint64_t ns);
const char *trace_sys_name(long nr); /* NULL for a number it has no name for */
void trace_msg(const char *fmt, ...);  /* async-signal-safe subset: %s %d %ld %lx %lu %p */
uint64_t trace_now_ns(void); /* CLOCK_MONOTONIC; never fails */

/* g_vm.trace: set at init, read-only after: no lock. */
struct trace_state {
	int fd;                    /* private dup of stderr, or -1 */
};

#endif
