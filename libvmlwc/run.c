/* The vCPU run loop: KVM_RUN, exit dispatch through a table, dumps, death by signal. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>

#include "internal.h"
#include "rawsys.h"

#define exit_table g_vm.exit_table

_Static_assert(offsetof(struct enter_ctx, fcw) == 64, "used by enter_x86_64.S");
_Static_assert(offsetof(struct enter_ctx, mxcsr) == 72, "used by enter_x86_64.S");

void exit_register(unsigned reason, exit_fn fn)
{
	if (reason < MAX_EXIT)
		exit_table[reason] = fn;
}

void run_dump(struct vcpu *v, const char *why)
{
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

void run_die_signal(struct vcpu *v, int sig)
{
	if (g_trace)
		trace_msg("vcpu %d: guest killed by signal %d", v->index, sig);
	die_by(sig);
}

void run_panic(struct vcpu *v, const char *why)
{
	run_dump(v, why);
	die_by(SIGABRT);
}

static void exit_begin(struct vcpu *v);

void run_loop(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	for (;;) {
		long r;

		/* the sregs too: CR3 says which lwC runs (the stub switches without exits) */
		run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		r = RAW3(SYS_ioctl, v->fd, KVM_RUN, 0);
		v->nexits++;
		if (r < 0) {
			if (r == -EINTR || r == -EAGAIN)
				continue;
			if (r == -EFAULT) /* host memory behind a guest mapping is gone (beyond EOF) */
				run_die_signal(v, SIGBUS);
			run_panic(v, "KVM_RUN failed");
		}
		run_exit_handle(v);
	}
}

void run_exit_handle(struct vcpu *v)
{
	unsigned reason = v->run->exit_reason;

	if (reason >= MAX_EXIT || !exit_table[reason])
		run_panic(v, "unhandled exit reason");
	if (reason == KVM_EXIT_IO || reason == KVM_EXIT_MMIO)
		exit_begin(v);
	if (exit_table[reason](v) != 0)
		run_panic(v, "exit handler refused the exit");
}

/*
 * Every exit from the guest's own run: which lwC runs (the stub switches without exits, so CR3
 * says), and what the last return to ring 3 made free (any new root was loaded on the way).
 */
static void exit_begin(struct vcpu *v)
{
	struct lwc *l = lwc_by_cr3(v->run->s.regs.sregs.cr3);

	if (!l)
		run_panic(v, "CR3 holds no lwC's tree");
	v->lwc = l;
	l->on = v;
	if (v->deferred_tree) {
		pt_destroy(v->deferred_tree, pool_unref); /* the new trees hold their own references */
		v->deferred_tree = 0;
	}
	while (v->ndeferred)
		pt_page_free(v->deferred[--v->ndeferred]);
	lwc_reap();
}

static int exit_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	/* a return through the stub may hand it page-table pages to scrub (shadow paging) */
	if (g_vm.ptp.shadow)
		pt_scrub_next(v);
	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1 || run->io.count != 1)
		return -1;
	return hypercall_dispatch(v, run->io.port);
}

static int exit_intr(struct vcpu *v)
{
	(void)v;
	return 0;
}

static int exit_fatal(struct vcpu *v)
{
	const char *why = "unexpected exit";

	switch (v->run->exit_reason) {
	case KVM_EXIT_SHUTDOWN: why = "triple fault in the guest stub"; break;
	case KVM_EXIT_HLT: why = "hlt in the guest stub"; break;
	case KVM_EXIT_FAIL_ENTRY: why = "VM entry failed"; break;
	case KVM_EXIT_INTERNAL_ERROR: why = "KVM internal error (emulation failure?)"; break;
	}
	if (v->run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		trace_msg("internal error suberror %u", v->run->internal.suberror);
	if (v->run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		trace_msg("hardware entry failure reason %lx",
			  (unsigned long)v->run->fail_entry.hardware_entry_failure_reason);
	run_panic(v, why);
}

void run_init(void)
{
	exit_register(KVM_EXIT_IO, exit_io);
	exit_register(KVM_EXIT_INTR, exit_intr);
	exit_register(KVM_EXIT_SHUTDOWN, exit_fatal);
	exit_register(KVM_EXIT_HLT, exit_fatal);
	exit_register(KVM_EXIT_FAIL_ENTRY, exit_fatal);
	exit_register(KVM_EXIT_INTERNAL_ERROR, exit_fatal);
}
