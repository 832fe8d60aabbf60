/* Signal dispositions: the root lwC's reach the host (handlers through the library's); others' are their own record. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "../die.h"
#include "../run.h"
#include "../sigtab.h"
#include "../trace.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

#define NSIG_K 64
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif


static int on_vcpu_thread(void)
{
	long tid = RAW0(SYS_gettid);

	for (unsigned i = 0; i < g_vm.kvm.nvcpus; i++)
		if (g_vm.kvm.vcpus[i] && g_vm.kvm.vcpus[i]->tid == tid)
			return 1;
	return 0;
}

/*
 * The library's host handler. Threads that run natively keep the application's handlers (glibc
 * relies on its own, e.g. for setuid across threads); on a vCPU thread a guest handler never
 * runs in host context: the signal is held.
 */
static void sig_hold(int sig, siginfo_t *si, void *uc)
{
	if (!on_vcpu_thread()) {
		const struct ksigaction *g = &g_vm.sig.guest_act[sig]; /* the root's: no other lwC's runs natively */
		if (g->handler > 1) {
			if (g->flags & SA_SIGINFO)
				((void (*)(int, siginfo_t *, void *))g->handler)(sig, si, uc);
			else
				((void (*)(int))g->handler)(sig);
		}
		return;
	}
	__atomic_or_fetch(&g_vm.sig.held, 1UL << (sig - 1), __ATOMIC_RELAXED);
	if (g_vm.cfg.trace)
		trace_msg("signal %d for a guest handler: held (delivery into the guest is not"
			  " implemented yet)", sig);
}


static long host_install(int sig, const struct ksigaction *g)
{
	struct ksigaction h = *g;

	if (g->handler > 1) {
		h.handler = (uint64_t)sig_hold;
		h.flags = (g->flags & (SA_RESTART | SA_NODEFER | SA_ONSTACK)) | SA_SIGINFO | SA_RESTORER;
		h.restorer = (uint64_t)vmlwc_sig_restorer;
	} else {
		h.flags = g->flags & ~(uint64_t)SA_SIGINFO;
		h.restorer = (uint64_t)vmlwc_sig_restorer;
		h.flags |= SA_RESTORER;
	}
	return RAW4(SYS_rt_sigaction, sig, &h, 0, 8);
}

static long sys_rt_sigaction(struct sys_call *c)
{
	int sig = (int)c->a[0];
	struct ksigaction act, old;
	long r;

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
		/* only the root's dispositions are the process's; another lwC's stay its own */
		if (c->l == g_vm.lwc.root_lwc && (r = host_install(sig, &act)) < 0)
			return r;
		if (sigtab_set(c->l, sig, &act) < 0)
			return -ENOMEM;
	}
	if (c->a[2] && ua_copy_out(c->l, (gva_t)c->a[2], &old, sizeof(old)) < 0)
		return -EFAULT;
	return 0;
}

/*
 * The root's mask is the vCPU thread's (the process's signals are the root's); another lwC's is
 * its own record: blocking a signal there never holds it off the root or the thread.
 */
static long sys_rt_sigprocmask(struct sys_call *c)
{
	uint64_t set, old;

	if (c->l == g_vm.lwc.root_lwc) {
		/* the library's kick stays deliverable whatever the guest blocks */
		uint64_t set;
		if (!c->a[1])
			return sys_generic(c);
		if (ua_copy_in(c->l, &set, (gva_t)c->a[1], 8) < 0)
			return -EFAULT;
		set &= ~(1UL << (VMLWC_SIG_KICK - 1));
		long h[4] = { c->a[0], (long)&set, 0, 8 };
		uint64_t old;
		if (c->a[3] != 8)
			return -EINVAL;
		if (c->a[2]) {
			struct iovec tmp[2];
			if (ua_translate(c->l, (gva_t)c->a[2], 8, UA_WRITE, tmp, 2) < 0)
				return -EFAULT;
			h[2] = (long)&old;
		}
		long r = RAW4(SYS_rt_sigprocmask, h[0], h[1], h[2], h[3]);
		if (r == 0 && c->a[2] && ua_copy_out(c->l, (gva_t)c->a[2], &old, 8) < 0)
			return -EFAULT;
		return r;
	}
	if (c->a[3] != 8)
		return -EINVAL;
	old = c->l->sigmask;
	if (c->a[1]) {
		if (ua_copy_in(c->l, &set, (gva_t)c->a[1], 8) < 0)
			return -EFAULT;
		set &= ~((1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1)));
		switch (c->a[0]) {
		case SIG_BLOCK: c->l->sigmask |= set; break;
		case SIG_UNBLOCK: c->l->sigmask &= ~set; break;
		case SIG_SETMASK: c->l->sigmask = set; break;
		default: return -EINVAL;
		}
	}
	if (c->a[2] && ua_copy_out(c->l, (gva_t)c->a[2], &old, 8) < 0)
		return -EFAULT;
	return 0;
}

static long sys_sigaltstack(struct sys_call *c)
{
	uint8_t *guest_ss = c->v->sig_altstack;
	uint8_t ss[24];

	/* Recorded for the guest; the host thread keeps its own signal stack. */
	if (c->a[0] && ua_copy_in(c->l, ss, (gva_t)c->a[0], sizeof(ss)) < 0)
		return -EFAULT;
	if (c->a[1] && ua_copy_out(c->l, (gva_t)c->a[1], guest_ss, sizeof(c->v->sig_altstack)) < 0)
		return -EFAULT;
	if (c->a[0])
		memcpy(guest_ss, ss, sizeof(ss));
	return 0;
}

static long sys_rt_sigreturn(struct sys_call *c)
{
	(void)c;
	if (g_vm.cfg.trace)
		trace_msg("rt_sigreturn without a guest signal frame: SIGSEGV");
	die_signal(c->v, SIGSEGV);
}

/* At init: the host's handlers become the library's, the application's become the guest's. */
void sig_init(void)
{
	run_init_kick();
	for (int sig = 1; sig <= NSIG_K; sig++) {
		struct ksigaction cur;

		if (sig == SIGKILL || sig == SIGSTOP || sig == VMLWC_SIG_KICK)
			continue;
		if (RAW4(SYS_rt_sigaction, sig, 0, &cur, 8) < 0)
			continue;
		g_vm.sig.guest_act[sig] = cur;
		if (cur.handler > 1)
			host_install(sig, &cur);
	}
}

const struct sys_entry sys_signal_table[] = {
	SYS(__NR_rt_sigaction, .name = "rt_sigaction", .fn = sys_rt_sigaction),
	SYS(__NR_rt_sigprocmask, .name = "rt_sigprocmask", .fn = sys_rt_sigprocmask,
		.arg = { ARG(A_VAL), ARG(A_IN, ARG_OPT, 8), ARG(A_OUT, ARG_OPT, 8), ARG(A_VAL) }),
	SYS(__NR_rt_sigpending, .name = "rt_sigpending",
		.arg = { ARG(A_OUT, .size = 8), ARG(A_VAL) }),
	/* waiting for (and taking) the process's signals: the root's to do */
	SYS(__NR_rt_sigsuspend, .name = "rt_sigsuspend", .whole = 1,
		.arg = { ARG(A_IN, .size = 8), ARG(A_VAL) }),
	SYS(__NR_rt_sigtimedwait, .name = "rt_sigtimedwait", .whole = 1,
		.arg = { ARG(A_IN, .size = 8), ARG(A_OUT, ARG_OPT, 128), ARG(A_IN, ARG_OPT, 16), ARG(A_VAL) }),
	SYS(__NR_sigaltstack, .name = "sigaltstack", .fn = sys_sigaltstack),
	SYS(__NR_rt_sigreturn, .name = "rt_sigreturn", .fn = sys_rt_sigreturn),
};
const unsigned sys_signal_table_len = ARRAY_SIZE(sys_signal_table);
