/* The end of the process for a guest failure: a register dump, death by signal as natively, panic. A leaf. */
#include <linux/kvm.h>
#include <signal.h>

#include "base.h"
#include "die.h"
#include "rawsys.h"
#include "trace.h"
#include "vcpu.h"
#include "state.h"

void die_dump(struct vcpu *v, const char *why)
{
	if (!v) { /* a failure found outside any vCPU's exit (an lwC no vCPU runs) */
		trace_msg("guest failure: %s", why);
		return;
	}
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct kvm_sregs s;
	int have_s = RAW3(SYS_ioctl, v->fd, KVM_GET_SREGS, &s) == 0;

	trace_msg("guest failure on vcpu %d: %s (exit reason %u)", v->index, why, v->run->exit_reason);
	trace_msg("rip %lx rsp %lx rflags %lx", r->rip, r->rsp, r->rflags);
	trace_msg("rax %lx rbx %lx rcx %lx rdx %lx", r->rax, r->rbx, r->rcx, r->rdx);
	trace_msg("rsi %lx rdi %lx rbp %lx r8 %lx", r->rsi, r->rdi, r->rbp, r->r8);
	trace_msg("r9 %lx r10 %lx r11 %lx r12 %lx", r->r9, r->r10, r->r11, r->r12);
	trace_msg("r13 %lx r14 %lx r15 %lx", r->r13, r->r14, r->r15);
	if (have_s)
		trace_msg("cs %lx ss %lx cr0 %lx cr2 %lx cr3 %lx cr4 %lx efer %lx", (unsigned long)s.cs.selector,
			  (unsigned long)s.ss.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

__attribute__((noreturn)) static void die_by(int sig)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		unsigned long mask;
	} sa = { (void *)SIG_DFL, 0, 0, 0 };
	unsigned long set = 1UL << (sig - 1);

	/* As natively for a fault: default action, not blockable. */
	RAW4(SYS_rt_sigaction, sig, &sa, 0, 8);
	RAW4(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, 0, 8);
	RAW3(SYS_tgkill, RAW0(SYS_getpid), RAW0(SYS_gettid), sig);
	RAW1(SYS_exit_group, 128 + sig);
	__builtin_unreachable();
}

void die_signal(struct vcpu *v, int sig)
{
	if (g_vm.cfg.trace)
		trace_msg("vcpu %d: guest killed by signal %d", v ? v->index : -1, sig);
	die_by(sig);
}

void die_panic(struct vcpu *v, const char *why)
{
	die_dump(v, why);
	die_by(SIGABRT);
}
