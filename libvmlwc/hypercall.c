/* Ways into the host: the stub's ports, the ring-3 doorbell, and the return paths to ring 3. */
#include <errno.h>
#include <signal.h>

#include "base.h"
#include "cpu.h"
#include "die.h"
#include "fault.h"
#include "hypercall.h"
#include "lwc_host.h"
#include "pgtable.h"
#include "pool.h"
#include "run.h"
#include "sigdeliver.h"
#include "sysdesc.h"
#include "trace.h"
#include "vcpu.h"
#include "state.h"


/* A redirected syscall, however it arrived: registers in the sync regs, result in rax. */
static int syscall_run(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	long a[6] = { (long)r->rdi, (long)r->rsi, (long)r->rdx, (long)r->r10, (long)r->r8, (long)r->r9 };
	long nr = (long)r->rax, ret;
	uint64_t t0 = 0;

	v->nsyscalls++;
	if (v->lwc->trap_to)
		return lwc_trap_syscall(v);
	if (g_vm.cfg.trace)
		t0 = trace_now_ns();
	ret = sys_dispatch(v, v->lwc, nr, a);
	if (g_vm.cfg.trace)
		trace_syscall(v, trace_sys_name(nr), nr, a, ret, trace_now_ns() - t0);
	if (v->park)
		return 0; /* the thread exited: its vCPU waits in the pool, nothing returns */
	if (v->sigreturn) {
		/* rt_sigreturn: every register as the frame restored it, rcx and r11 included */
		v->sigreturn = 0;
		v->set_rsp = 1;
		v->new_rsp = v->sigreturn_rsp;
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		frame_return_to_user(v, v->sigreturn_rip, v->sigreturn_rflags);
		return 0;
	}
	if (ret == -EINTR)
		sig_syscall_interrupted(v, nr, r->rcx); /* restarted or not when the vCPU delivers */
	r->rax = (uint64_t)ret;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	if (v->test_fault_pending) {
		/* the test hook already pointed the return into ring 0 */
		v->test_fault_pending = 0;
		return 0;
	}
	frame_return_to_user(v, r->rcx, r->r11);
	return 0;
}

/* The syscall port: only the stub's VT-x/SVM LSTAR path uses it. */
static int hc_syscall(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct vmlwc_iret_frame *f = frame_user(v);

	/* Only ring-3 syscalls land here with this stack shape: anything else is a stub bug. */
	if ((f->cs & 3) != 3 || r->rsp != v->area_kva + VMLWC_FRAME_ON_KSTACK - 8)
		die_panic(v, "syscall port used outside the syscall path");
	return syscall_run(v);
}

/*
 * The doorbell: a ring-3 store to a guest-physical address with no memslot (PVM's syscall
 * path, and its lwC calls). It carries no authority: ring 3 may ring it at will, as it may
 * execute `syscall`; the host takes the caller's lwC from CR3 and every register as untrusted.
 */
static int exit_doorbell(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t off = run->mmio.phys_addr - VMLWC_DOORBELL_GPA;

	if (!run->mmio.is_write || run->mmio.phys_addr < VMLWC_DOORBELL_GPA || off >= PAGE_SIZE) {
		trace_msg("guest access to guest-physical %lx (no memslot) at rip %lx",
			  (unsigned long)run->mmio.phys_addr, (unsigned long)run->s.regs.regs.rip);
		die_signal(v, SIGBUS);
	}
	if ((run->s.regs.sregs.cs.selector & 3) != 3) {
		uint64_t rip = run->s.regs.regs.rip - (VMLWC_GATE_VA + VMLWC_GATE_LSTAR);
		/*
		 * Test hook: where `syscall` enters ring 0 the gate's LSTAR code rings the doorbell from
		 * CPL 0; the host then returns to CPL 3 as PVM would have stayed there.
		 */
		if (!g_vm.cfg.test_pvm || off != VMLWC_DB_SYSCALL || rip >= 16)
			die_panic(v, "doorbell rung from ring 0");
		cpu_user_segments(&run->s.regs.sregs);
		run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
	}
	v->via_doorbell = 1;
	v->nhypercalls++;
	/* a return from here may hand the stub page-table pages to scrub (shadow paging) */
	if (g_vm.ptp.shadow)
		pt_scrub_next(v);
	switch (off) {
	case VMLWC_DB_SYSCALL:
		return syscall_run(v);
	case VMLWC_DB_LWC:
		return lwc_call_doorbell(v);
	default:
		die_signal(v, SIGBUS); /* as a store to a device register that does not exist */
	}
}

/*
 * Every exit from the guest's own run: which lwC runs (the stub switches without exits, so CR3
 * says), and what the last return to ring 3 made free (any new root was loaded on the way).
 */
static void ports_exit_begin(struct vcpu *v)
{
	/* by its tag: another vCPU may have replaced the tree since this one loaded it */
	struct lwc *l = lwc_by_tag(v->run->s.regs.sregs.cr3);

	if (!l)
		die_panic(v, "CR3 holds no lwC's tree");
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

/* The current CR3 for a (possibly replaced) tree of an lwC; cr3 itself when its lwC is gone. */
static uint64_t cr3_current(uint64_t cr3)
{
	struct lwc *l = lwc_by_tag(cr3);

	return l && (cr3 & PTE_ADDR) != l->root ? lwc_cr3(l) : cr3;
}

/*
 * Whatever v will run on next names only current trees: its CR3, the CR3 its return frame
 * will load, and a fast switch it was in the middle of (before its CR3 load the stub still
 * holds the descriptor: sent back to vec_3's start, it looks the target up again). v is out of
 * the guest and the lock is held (by v itself before KVM_RUN, or by another vCPU's sync).
 */
static void ports_revalidate(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct kvm_sregs *s = &v->run->s.regs.sregs;
	uint64_t c;

	if ((s->cs.selector & 3) == 0 && r->rip >= g_vm.stub.vec3 && r->rip < g_vm.stub.vec3_cr3) {
		r->rip = g_vm.stub.vec3;
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	}
	if ((c = cr3_current(s->cr3)) != s->cr3) {
		s->cr3 = c;
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
	}
	if (v->pending_cr3)
		v->pending_cr3 = cr3_current(v->pending_cr3);
	/* frame B: the trampolines' CR3 (written by the host at a return, read by the stub) */
	struct vmlwc_cr3_frame *b = (void *)(v->area + VMLWC_VCPU_FRAMEB_OFF);
	if ((s->cs.selector & 3) == 0 && b->cr3)
		b->cr3 = cr3_current(b->cr3);
	struct lwc *l = lwc_by_tag(s->cr3);
	if (l) {
		v->lwc = l;
		l->on = v;
	}
}

/*
 * Before v enters the guest: what this exit changed reaches every vCPU first. With several,
 * a replaced tree or a page whose last reference went means every other vCPU is stopped and
 * revalidated (it then runs only on current trees), and only then are the quarantined pages
 * free; so a change is visible everywhere before the call that made it returns.
 */
static void ports_before_entry(struct vcpu *v)
{
	if (g_vm.kvm.nvcpus > 1 && (g_vm.pool.nquarantine || g_vm.view.roots_changed)) {
		run_sync_others(v);
		pool_quarantine_flush();
		g_vm.view.roots_changed = 0;
	}
	ports_revalidate(v);
	sig_before_entry(v);
}

/* KVM's interrupt window: the guest is at ring 3 again, its state whole in the synced registers. */
static int exit_irq_window(struct vcpu *v)
{
	v->run->request_interrupt_window = 0;
	return 0;
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

void hypercall_init(void)
{
	g_vm.run.exit_begin = ports_exit_begin;
	g_vm.run.revalidate = ports_revalidate;
	g_vm.run.before_entry = ports_before_entry;
	exit_register(KVM_EXIT_IO, exit_io);
	hypercall_register(VMLWC_PORT_SYSCALL, hc_syscall);
	hypercall_register(VMLWC_PORT_FAULT, fault_handle);
	hypercall_register(VMLWC_PORT_PF, fault_handle_pf);
	exit_register(KVM_EXIT_MMIO, exit_doorbell);
	exit_register(KVM_EXIT_IRQ_WINDOW_OPEN, exit_irq_window);
}
