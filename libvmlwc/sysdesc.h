/* Syscall descriptors and the entry points of syscall redirection (sys/; kinds in sys/sys.h). */
#ifndef VMLWC_SYSDESC_H
#define VMLWC_SYSDESC_H

#include "base.h"

struct lwc;
struct vcpu;
struct fdtab;

struct sys_arg {
	unsigned char kind;
	unsigned char flags;
	unsigned short size;
};
struct sys_call;
typedef long (*sys_fn)(struct sys_call *c);
struct sys_desc {
	const char *name;
	sys_fn fn;                 /* custom handler; NULL = generic executor with .arg */
	struct sys_arg arg[6];
	unsigned char ret;
	unsigned char cloexec_arg; /* R_FD: 1 + index of a flags argument holding O_CLOEXEC-like bit */
	unsigned char whole;       /* changes the whole process (limits, timers, scheduling): the root lwC's alone */
	unsigned char umask;       /* may create a file: runs under the calling lwC's umask */
	long cloexec_bit;
};
#define SYS_NR_MAX 512

long sys_dispatch(struct vcpu *v, struct lwc *l, long nr, const long a[6]); /* the syscall's result or -errno */
/* the same with another descriptor table (lwc_syscall with LWC_FILES) */
long sys_dispatch_in(struct vcpu *v, struct lwc *l, struct fdtab *fds, long nr, const long a[6]);
int lwc_allows(const struct lwc *l, long nr); /* 1: its lwc_limit_syscalls set admits nr; else 0 */
int sys_redirected(long nr);                  /* 1: the table has a handler for nr; else 0 */
unsigned sys_ioctl_requests(const unsigned **reqs); /* ioctl requests redirected ioctls pass on: their count; never fails */
void sys_init(void); /* the descriptor table from the families' const tables; never fails */
/* A handler from another layer (lwc_host.c: arch_prctl), after sys_init: d must be static (it is
   not copied); it replaces the family's, if any. A number outside the table is ignored. */
void sys_register(long nr, const struct sys_desc *d);
int sys_vcpu_init(struct vcpu *v); /* v's call storage (arena pages, no guest maps them): 0 or -ENOMEM */
void sig_init(void); /* host signal dispositions (sys/signal.c); never fails */
void sigfd_refresh_all(void); /* signalfds' readiness after a signal was taken elsewhere (vm_lock held) */

/* g_vm.sys: filled at init (sys_init, registration), read-only after: no lock. */
struct sys_state {
	const struct sys_desc *table[SYS_NR_MAX]; /* into the families' const tables, or a registered one; NULL: not redirected */
	long (*priv)(struct vcpu *v, struct lwc *l, long nr, const long a[6]); /* the private syscalls (stats.c) */
};

#endif
