/* Signal syscalls: each lwC's dispositions, each thread's mask in each lwC, waiting for signals; all records of the library. */
/*
 * The host's dispositions are the library's handler for every signal (signal.c); what the guest
 * sets is a record: the root's in g_vm.sig.guest_act, every other lwC's in its sigtab. Masks are
 * per thread and per lwC (the thread's context there): l->sigmasks[vCPU index]. Waits
 * (sigsuspend, pause, sigtimedwait) sleep on g_vm.sig.seq, which every recorded signal bumps,
 * without the lock.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "../die.h"
#include "../run.h"
#include "../sigtab.h"
#include "../trace.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

#define NSIG_K 64
#define SIGBIT(s) (1UL << ((s) - 1))
#define UNBLOCKABLE (SIGBIT(SIGKILL) | SIGBIT(SIGSTOP))
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif
#define MINSIGSTKSZ_ 2048

static uint64_t *mask_of(struct sys_call *c)
{
	return &c->l->sigmasks[c->v->index];
}

static long sys_rt_sigaction(struct sys_call *c)
{
	int sig = (int)c->a[0];
	struct ksigaction act, old;

	if (c->a[3] != 8)
		return -EINVAL;
	if (sig < 1 || sig > NSIG_K)
		return -EINVAL;
	if (sig == VMLWC_SIG_KICK) {
		if (g_vm.cfg.trace)
			trace_msg("rt_sigaction: signal %d is the library's (it stops vCPUs): EINVAL", sig);
		return -EINVAL;
	}
	if (c->a[1] && ua_copy_in(c->l, &act, (gva_t)c->a[1], sizeof(act)) < 0)
		return -EFAULT;
	if (c->a[2]) {
		struct iovec tmp[2];
		if (ua_translate(c->l, (gva_t)c->a[2], sizeof(old), UA_WRITE, tmp, 2) < 0)
			return -EFAULT;
	}
	old = *sigtab_act(c->l, sig);
	if (c->a[1]) {
		if (sig == SIGKILL || sig == SIGSTOP)
			return -EINVAL;
		act.mask &= ~UNBLOCKABLE;
		/* a record of the lwC's (the root's are the process's): the host's stays the library's */
		if (sigtab_set(c->l, sig, &act) < 0)
			return -ENOMEM;
	}
	if (c->a[2] && ua_copy_out(c->l, (gva_t)c->a[2], &old, sizeof(old)) < 0)
		return -EFAULT;
	return 0;
}

/* This thread's mask in its current lwC (its context's); SIGKILL and SIGSTOP never blocked. */
static long sys_rt_sigprocmask(struct sys_call *c)
{
	uint64_t set, old = *mask_of(c);

	if (c->a[3] != 8)
		return -EINVAL;
	if (c->a[1]) {
		if (ua_copy_in(c->l, &set, (gva_t)c->a[1], 8) < 0)
			return -EFAULT;
		switch (c->a[0]) {
		case SIG_BLOCK: *mask_of(c) |= set; break;
		case SIG_UNBLOCK: *mask_of(c) &= ~set; break;
		case SIG_SETMASK: *mask_of(c) = set; break;
		default: return -EINVAL;
		}
		*mask_of(c) &= ~UNBLOCKABLE;
	}
	if (c->a[2] && ua_copy_out(c->l, (gva_t)c->a[2], &old, 8) < 0) {
		*mask_of(c) = old;
		return -EFAULT;
	}
	return 0;
}

static uint64_t pending_of(struct sys_call *c)
{
	return __atomic_load_n(&c->v->sig_pending, __ATOMIC_ACQUIRE) |
	       __atomic_load_n(&g_vm.sig.proc_pending, __ATOMIC_ACQUIRE);
}

static long sys_rt_sigpending(struct sys_call *c)
{
	uint64_t p = pending_of(c) & *mask_of(c);

	if (c->a[1] != 8)
		return -EINVAL;
	return ua_copy_out(c->l, (gva_t)c->a[0], &p, 8) < 0 ? -EFAULT : 0;
}

/* Whether a pending signal not in mask would interrupt a wait (sigtab_interrupts). */
static int handled_pending(struct sys_call *c, uint64_t mask)
{
	return sigtab_interrupts(c->l, pending_of(c) & ~mask);
}

/*
 * Sleeps without the lock until a signal is recorded (seq moves) or the timeout: 0, or
 * -ETIMEDOUT. ts is relative, updated to what is left.
 */
static long wait_signal(struct sys_call *c, uint32_t seq, struct timespec *ts)
{
	long r = sys_block6(c, SYS_futex, (long)&g_vm.sig.seq, FUTEX_WAIT_PRIVATE, seq, (long)ts, 0, 0);

	return r == -ETIMEDOUT ? r : 0;
}

/*
 * sigsuspend: the thread's mask becomes `set` until a handler runs; the frame saves (and
 * sigreturn restores) the old one. Always -EINTR, once a handled signal is pending.
 */
static long suspend_with(struct sys_call *c, uint64_t set)
{
	struct vcpu *v = c->v;

	v->sig_saved_mask = *mask_of(c);
	v->sig_restore_mask = 1;
	*mask_of(c) = set & ~UNBLOCKABLE;
	for (;;) {
		uint32_t seq = __atomic_load_n(&g_vm.sig.seq, __ATOMIC_ACQUIRE);
		if (handled_pending(c, *mask_of(c)))
			return -EINTR;
		wait_signal(c, seq, NULL);
	}
}

static long sys_rt_sigsuspend(struct sys_call *c)
{
	uint64_t set;

	if (c->a[1] != 8)
		return -EINVAL;
	if (ua_copy_in(c->l, &set, (gva_t)c->a[0], 8) < 0)
		return -EFAULT;
	return suspend_with(c, set);
}

static long sys_pause(struct sys_call *c)
{
	return suspend_with(c, *mask_of(c));
}

/* rt_sigtimedwait: a pending signal of `set` taken without its handler; its number. */
static long sys_rt_sigtimedwait(struct sys_call *c)
{
	struct vcpu *v = c->v;
	uint64_t set;
	struct timespec ts, *tp = NULL;

	if (c->a[3] != 8)
		return -EINVAL;
	if (ua_copy_in(c->l, &set, (gva_t)c->a[0], 8) < 0)
		return -EFAULT;
	if (c->a[2]) {
		if (ua_copy_in(c->l, &ts, (gva_t)c->a[2], sizeof(ts)) < 0)
			return -EFAULT;
		if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
			return -EINVAL;
		tp = &ts;
	}
	set &= ~UNBLOCKABLE;
	for (;;) {
		uint32_t seq = __atomic_load_n(&g_vm.sig.seq, __ATOMIC_ACQUIRE);
		uint64_t tpnd = __atomic_load_n(&v->sig_pending, __ATOMIC_ACQUIRE) & set;
		uint64_t ppnd = __atomic_load_n(&g_vm.sig.proc_pending, __ATOMIC_ACQUIRE) & set;
		if (tpnd | ppnd) {
			int sig = __builtin_ctzl(tpnd ? tpnd : ppnd) + 1;
			const uint8_t *info = tpnd ? v->sig_info[sig] : g_vm.sig.proc_info[sig];
			if (c->a[1] && ua_copy_out(c->l, (gva_t)c->a[1], info, 128) < 0)
				return -EFAULT;
			if (tpnd)
				__atomic_and_fetch(&v->sig_pending, ~SIGBIT(sig), __ATOMIC_RELEASE);
			else
				__atomic_and_fetch(&g_vm.sig.proc_pending, ~SIGBIT(sig), __ATOMIC_RELEASE);
			sigfd_refresh_all();
			return sig;
		}
		if (tp && !tp->tv_sec && !tp->tv_nsec)
			return -EAGAIN;
		if (handled_pending(c, *mask_of(c)))
			return -EINTR; /* an unblocked signal interrupts the wait: its handler runs */
		if (wait_signal(c, seq, tp) == -ETIMEDOUT)
			return -EAGAIN;
	}
}

/* The thread's alternate signal stack, checked as Linux's do_sigaltstack. */
static long sys_sigaltstack(struct sys_call *c)
{
	uint8_t *cur = c->v->sig_altstack, ss[24];
	uint64_t sp, size, rsp = user_rsp(c->v);
	int flags;

	memcpy(&sp, cur, 8);
	memcpy(&flags, cur + 8, 4);
	memcpy(&size, cur + 16, 8);
	int on = !(flags & SS_DISABLE) && rsp - sp < size; /* on it now: SS_ONSTACK reported */
	if (c->a[0] && ua_copy_in(c->l, ss, (gva_t)c->a[0], sizeof(ss)) < 0)
		return -EFAULT;
	if (c->a[1]) {
		uint8_t o[24];
		int of = on ? SS_ONSTACK : (flags & (SS_DISABLE | (int)SS_AUTODISARM));
		memcpy(o, cur, 24);
		memcpy(o + 8, &of, 4);
		memset(o + 12, 0, 4);
		if (ua_copy_out(c->l, (gva_t)c->a[1], o, sizeof(o)) < 0)
			return -EFAULT;
	}
	if (c->a[0]) {
		int nf;
		uint64_t nsize;
		memcpy(&nf, ss + 8, 4);
		memcpy(&nsize, ss + 16, 8);
		if (on)
			return -EPERM;
		int mode = nf & ~(int)SS_AUTODISARM;
		if (mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0)
			return -EINVAL;
		if (mode == SS_DISABLE) {
			memset(ss, 0, sizeof(ss));
			nf = SS_DISABLE;
			memcpy(ss + 8, &nf, 4);
		} else {
			if (nsize < MINSIGSTKSZ_)
				return -ENOMEM;
			nf &= (int)SS_AUTODISARM;
			memcpy(ss + 8, &nf, 4);
		}
		memcpy(cur, ss, sizeof(ss));
	}
	return 0;
}

/* At init: the application's dispositions become the root lwC's record. */
void sig_init(void)
{
	sigfd_init();
	for (int sig = 1; sig <= NSIG_K; sig++) {
		struct ksigaction cur;

		if (sig == SIGKILL || sig == SIGSTOP || sig == VMLWC_SIG_KICK)
			continue;
		if (RAW4(SYS_rt_sigaction, sig, 0, &cur, 8) < 0)
			continue;
		g_vm.sig.guest_act[sig] = cur;
	}
}

const struct sys_entry sys_signal_table[] = {
	SYS(__NR_rt_sigaction, .name = "rt_sigaction", .fn = sys_rt_sigaction),
	SYS(__NR_rt_sigprocmask, .name = "rt_sigprocmask", .fn = sys_rt_sigprocmask),
	SYS(__NR_rt_sigpending, .name = "rt_sigpending", .fn = sys_rt_sigpending),
	SYS(__NR_rt_sigsuspend, .name = "rt_sigsuspend", .fn = sys_rt_sigsuspend),
	SYS(__NR_pause, .name = "pause", .fn = sys_pause),
	SYS(__NR_rt_sigtimedwait, .name = "rt_sigtimedwait", .fn = sys_rt_sigtimedwait),
	SYS(__NR_sigaltstack, .name = "sigaltstack", .fn = sys_sigaltstack),
};
const unsigned sys_signal_table_len = ARRAY_SIZE(sys_signal_table);
