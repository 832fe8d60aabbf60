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
	return SYS_BLOCK(c, __NR_futex, h[0], h[1], h[2], h[3], h[4], h[5]);
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

const struct sys_entry sys_proc_table[] = {
	SYS(__NR_getpid, .name = NULL),
	SYS(__NR_getppid, .name = NULL),
	SYS(__NR_gettid, .name = NULL),
	SYS(__NR_getpgrp, .name = NULL),
	SYS(__NR_sched_yield, .name = NULL),
	SYS(__NR_getpgid, .name = "getpgid"),
	SYS(__NR_getsid, .name = "getsid"),
	SYS(__NR_setsid, .name = "setsid", .whole = 1),
	SYS(__NR_setpgid, .name = "setpgid", .whole = 1),
	/* getresuid, getresgid, getgroups: the credential family's (cred.c), from the lwC's shadow */
	SYS(__NR_uname, .name = "uname", .arg = { ARG(A_OUT, .size = 390) }),
	SYS(__NR_sysinfo, .name = "sysinfo", .arg = { ARG(A_OUT, .size = 112) }),
	SYS(__NR_getrusage, .name = "getrusage", .arg = { ARG(A_VAL), ARG(A_OUT, .size = 144) }),
	SYS(__NR_getrlimit, .name = "getrlimit", .arg = { ARG(A_VAL), ARG(A_OUT, .size = 16) }),
	SYS(__NR_setrlimit, .name = "setrlimit", .fn = sys_rlimit_set,
		.arg = { ARG(A_VAL), ARG(A_IN, .size = 16) }),
	SYS(__NR_prlimit64, .name = "prlimit64", .fn = sys_rlimit_set,
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_IN, ARG_OPT, 16), ARG(A_OUT, ARG_OPT, 16) }),
	SYS(__NR_getrandom, .name = "getrandom",
		.arg = { ARG(A_BUF_OUT, .size = 1), ARG(A_VAL), ARG(A_VAL) }),
	SYS(__NR_sched_getaffinity, .name = "sched_getaffinity",
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_BUF_OUT, .size = 1) }),
	SYS(__NR_sched_setaffinity, .name = "sched_setaffinity", .whole = 1,
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_BUF_IN, .size = 1) }),
	SYS(__NR_getcpu, .name = "getcpu",
		.arg = { ARG(A_OUT, ARG_OPT, 4), ARG(A_OUT, ARG_OPT, 4), ARG(A_VAL) }),
	SYS(__NR_getpriority, .name = "getpriority"),
	SYS(__NR_setpriority, .name = "setpriority", .whole = 1),
	SYS(__NR_kill, .name = "kill"),
	SYS(__NR_tgkill, .name = "tgkill"),
	SYS(__NR_tkill, .name = "tkill"),
	/* sigqueue, pthread_sigqueue: the kernel refuses a forged si_code for another process */
	SYS(__NR_rt_sigqueueinfo, .name = "rt_sigqueueinfo",
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_IN, .size = 128) }),
	SYS(__NR_rt_tgsigqueueinfo, .name = "rt_tgsigqueueinfo",
		.arg = { ARG(A_VAL), ARG(A_VAL), ARG(A_VAL), ARG(A_IN, .size = 128) }),
	SYS(__NR_exit, .name = "exit", .fn = sys_exit_any),
	SYS(__NR_exit_group, .name = "exit_group", .fn = sys_exit_any),
	SYS(__NR_prctl, .name = "prctl", .fn = sys_prctl),
	SYS(__NR_set_tid_address, .name = "set_tid_address", .fn = sys_set_tid_address),
	SYS(__NR_set_robust_list, .name = "set_robust_list", .fn = sys_set_robust_list),
	SYS(__NR_futex, .name = "futex", .fn = sys_futex),
	SYS(__NR_clone, .name = "clone", .fn = sys_unsupported_task),
	SYS(__NR_clone3, .name = "clone3", .fn = sys_unsupported_task),
	SYS(__NR_fork, .name = "fork", .fn = sys_unsupported_task),
	SYS(__NR_vfork, .name = "vfork", .fn = sys_unsupported_task),
	SYS(__NR_execve, .name = "execve", .fn = sys_unsupported_task),
	SYS(__NR_execveat, .name = "execveat", .fn = sys_unsupported_task),
};
const unsigned sys_proc_table_len = ARRAY_SIZE(sys_proc_table);
