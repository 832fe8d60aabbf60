/* Redirected syscalls: process identity, limits, scheduling, signals to processes, exit. */
#include <errno.h>
#include <linux/futex.h>
#include <asm/prctl.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>

#include "../fdtab.h"
#include "../trace.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

static long sys_unsupported_task(struct sys_call *c)
{
	if (g_vm.cfg.trace)
		trace_msg("%s: threads and new processes inside the guest are not supported yet: ENOSYS",
			  c->d->name);
	return -ENOSYS;
}

static long sys_set_tid_address(struct sys_call *c)
{
	/* One thread per vCPU for now: nothing to clear at exit. */
	return c->v->tid ? c->v->tid : RAW0(SYS_gettid);
}

static long sys_set_robust_list(struct sys_call *c)
{
	return c->a[1] == 24 ? 0 : -EINVAL; /* recorded nowhere: no thread exits under the guest yet */
}

static long sys_futex(struct sys_call *c)
{
	int op = (int)c->a[1] & FUTEX_CMD_MASK;
	long h[6] = { 0, c->a[1], c->a[2], c->a[3], 0, c->a[5] };
	struct timespec ts;
	void *p;

	p = ua_direct(c->l, (gva_t)c->a[0], 4, UA_WRITE);
	if (!p || ((uintptr_t)p & 3))
		return p ? -EINVAL : -EFAULT;
	h[0] = (long)p;
	switch (op) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
	case FUTEX_LOCK_PI:
	case FUTEX_LOCK_PI2:
	case FUTEX_WAIT_REQUEUE_PI:
		if (c->a[3]) {
			if (ua_copy_in(c->l, &ts, (gva_t)c->a[3], sizeof(ts)) < 0)
				return -EFAULT;
			h[3] = (long)&ts;
		}
		break;
	case FUTEX_WAKE:
	case FUTEX_UNLOCK_PI:
	case FUTEX_TRYLOCK_PI:
		break;
	case FUTEX_REQUEUE:
	case FUTEX_CMP_REQUEUE:
	case FUTEX_WAKE_OP:
	case FUTEX_CMP_REQUEUE_PI:
		break;
	default:
		return -ENOSYS;
	}
	if (op == FUTEX_REQUEUE || op == FUTEX_CMP_REQUEUE || op == FUTEX_WAKE_OP ||
	    op == FUTEX_CMP_REQUEUE_PI || op == FUTEX_WAIT_REQUEUE_PI) {
		void *p2 = ua_direct(c->l, (gva_t)c->a[4], 4, UA_WRITE);
		if (!p2)
			return -EFAULT;
		h[4] = (long)p2;
	}
	return sys_raw(__NR_futex, h);
}

/* setrlimit and prlimit64 as they are, and the descriptor shadows learn a new RLIMIT_NOFILE. */
static long sys_rlimit_set(struct sys_call *c)
{
	long r;

	/* the limits are the process's: only the root lwC sets them (any lwC reads them) */
	if (c->l != g_vm.lwc.root_lwc && (c->nr == __NR_setrlimit || c->a[2])) {
		if (g_vm.cfg.trace)
			trace_msg("%s: the process's limits are the root lwC's to set: EPERM", c->d->name);
		return -EPERM;
	}
	r = sys_generic(c);

	if (r == 0)
		fdtab_limit_changed();
	return r;
}

static long sys_getgroups(struct sys_call *c)
{
	long n = c->a[0];
	void *p;

	if (n < 0 || n > 65536)
		return -EINVAL;
	if (n == 0)
		return RAW2(SYS_getgroups, 0, 0);
	p = ua_direct(c->l, (gva_t)c->a[1], (size_t)n * 4, UA_WRITE);
	if (!p)
		return -EFAULT;
	return RAW2(SYS_getgroups, n, p);
}

static long sys_prctl(struct sys_call *c)
{
	char name[16];

	switch (c->a[0]) {
	case PR_SET_NAME:
		if (c->l != g_vm.lwc.root_lwc)
			return -EPERM; /* the vCPU thread's name is every lwC's on it */
		if (ua_strncpy_in(c->l, name, (gva_t)c->a[1], sizeof(name)) == -EFAULT)
			return -EFAULT;
		name[15] = 0;
		return RAW2(SYS_prctl, PR_SET_NAME, name);
	case PR_GET_NAME: {
		long r = RAW2(SYS_prctl, PR_GET_NAME, name);
		if (r < 0)
			return r;
		return ua_copy_out(c->l, (gva_t)c->a[1], name, sizeof(name)) < 0 ? -EFAULT : 0;
	}
	case PR_GET_DUMPABLE:
	case PR_GET_KEEPCAPS:
		return sys_raw(__NR_prctl, c->a);
	default:
		if (g_vm.cfg.trace)
			trace_msg("prctl option %ld not supported in the guest: EINVAL", c->a[0]);
		return -EINVAL;
	}
}

static long sys_exit_any(struct sys_call *c)
{
	/* exit of the only guest thread, or of the whole process */
	return RAW1(c->nr, c->a[0]);
}

void sys_proc_register(void)
{
	static const long ids[] = { __NR_getpid, __NR_getppid, __NR_gettid, __NR_getpgrp, __NR_sched_yield };
	for (unsigned i = 0; i < ARRAY_SIZE(ids); i++)
		sys_register(ids[i], &DESC(.name = NULL));
	sys_register(__NR_getpgid, &DESC(.name = "getpgid"));
	sys_register(__NR_getsid, &DESC(.name = "getsid"));
	sys_register(__NR_setsid, &DESC(.name = "setsid", .whole = 1));
	sys_register(__NR_setpgid, &DESC(.name = "setpgid", .whole = 1));
	sys_register(__NR_getresuid, &DESC(.name = "getresuid",
		.arg = { ARG(A_OUT, .size = 4), ARG(A_OUT, .size = 4), ARG(A_OUT, .size = 4) }));
	sys_register(__NR_getresgid, &DESC(.name = "getresgid",
		.arg = { ARG(A_OUT, .size = 4), ARG(A_OUT, .size = 4), ARG(A_OUT, .size = 4) }));
	sys_register(__NR_getgroups, &DESC(.name = "getgroups", .fn = sys_getgroups));
	sys_register(__NR_uname, &DESC(.name = "uname", .arg = { ARG(A_OUT, .size = 390) }));
	sys_register(__NR_sysinfo, &DESC(.name = "sysinfo", .arg = { ARG(A_OUT, .size = 112) }));
	sys_register(__NR_getrusage, &DESC(.name = "getrusage", .arg = { ARG(A_VAL), ARG(A_OUT, .size = 144) }));
	sys_register(__NR_getrlimit, &DESC(.name = "getrlimit", .arg = { ARG(A_VAL), ARG(A_OUT, .size = 16) }));
	sys_register(__NR_setrlimit, &DESC(.name = "setrlimit", .fn = sys_rlimit_set,
		.arg = { ARG(A_VAL), ARG(A_IN, .size = 16) }));
	sys_register(__NR_prlimit64, &DESC(.name = "prlimit64", .fn = sys_rlimit_set,
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_IN, ARG_OPT, 16), ARG(A_OUT, ARG_OPT, 16) }));
	sys_register(__NR_getrandom, &DESC(.name = "getrandom",
		.arg = { ARG(A_BUF_OUT, .size = 1), ARG(A_VAL), ARG(A_VAL) }));
	sys_register(__NR_sched_getaffinity, &DESC(.name = "sched_getaffinity",
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_BUF_OUT, .size = 1) }));
	sys_register(__NR_sched_setaffinity, &DESC(.name = "sched_setaffinity", .whole = 1,
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_BUF_IN, .size = 1) }));
	sys_register(__NR_getcpu, &DESC(.name = "getcpu",
		.arg = { ARG(A_OUT, ARG_OPT, 4), ARG(A_OUT, ARG_OPT, 4), ARG(A_VAL) }));
	sys_register(__NR_getpriority, &DESC(.name = "getpriority"));
	sys_register(__NR_setpriority, &DESC(.name = "setpriority", .whole = 1));
	sys_register(__NR_kill, &DESC(.name = "kill"));
	sys_register(__NR_tgkill, &DESC(.name = "tgkill"));
	sys_register(__NR_tkill, &DESC(.name = "tkill"));
	sys_register(__NR_exit, &DESC(.name = "exit", .fn = sys_exit_any));
	sys_register(__NR_exit_group, &DESC(.name = "exit_group", .fn = sys_exit_any));
	sys_register(__NR_prctl, &DESC(.name = "prctl", .fn = sys_prctl));
	sys_register(__NR_set_tid_address, &DESC(.name = "set_tid_address", .fn = sys_set_tid_address));
	sys_register(__NR_set_robust_list, &DESC(.name = "set_robust_list", .fn = sys_set_robust_list));
	sys_register(__NR_futex, &DESC(.name = "futex", .fn = sys_futex));
	sys_register(__NR_clone, &DESC(.name = "clone", .fn = sys_unsupported_task));
	sys_register(__NR_clone3, &DESC(.name = "clone3", .fn = sys_unsupported_task));
	sys_register(__NR_fork, &DESC(.name = "fork", .fn = sys_unsupported_task));
	sys_register(__NR_vfork, &DESC(.name = "vfork", .fn = sys_unsupported_task));
	sys_register(__NR_execve, &DESC(.name = "execve", .fn = sys_unsupported_task));
	sys_register(__NR_execveat, &DESC(.name = "execveat", .fn = sys_unsupported_task));
}
