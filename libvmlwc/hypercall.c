/* Ways into the host: the stub's ports, the ring-3 doorbell, and the return paths to ring 3. */
#include <signal.h>

#include "internal.h"

/* User-controllable RFLAGS bits: CF PF AF ZF SF TF DF OF RF AC ID; IF is always set. */
#define USER_RFLAGS 0x250dd5UL

void hypercall_register(unsigned port, hypercall_fn fn)
{
	if (port >= VMLWC_PORT_BASE && port < VMLWC_PORT_BASE + VMLWC_NR_PORTS)
		g_vm.hc_table[port - VMLWC_PORT_BASE] = fn;
}

int hypercall_dispatch(struct vcpu *v, unsigned port)
{
	if (port < VMLWC_PORT_BASE || port >= VMLWC_PORT_BASE + VMLWC_NR_PORTS ||
	    !g_vm.hc_table[port - VMLWC_PORT_BASE])
		return -1;
	v->nhypercalls++;
	v->via_doorbell = 0;
	return g_vm.hc_table[port - VMLWC_PORT_BASE](v);
}

struct vmlwc_iret_frame *frame_user(struct vcpu *v)
{
	return (struct vmlwc_iret_frame *)(v->area + VMLWC_FRAME_ON_KSTACK);
}

uint64_t user_rsp(struct vcpu *v)
{
	return v->via_doorbell ? v->run->s.regs.regs.rsp : frame_user(v)->rsp;
}

static int canonical_user(uint64_t a)
{
	return a < (1UL << 47);
}

/*
 * Back to ring 3 at rip: through the stub's iret frame (with a detour through its trampoline
 * when a new root must be loaded or pages scrubbed first), or, after a doorbell, by the
 * registers themselves (a new root through the synced sregs).
 */
void frame_return_to_user(struct vcpu *v, uint64_t rip, uint64_t rflags)
{
	struct vmlwc_iret_frame *f = frame_user(v);

	if (!canonical_user(rip))
		run_die_signal(v, SIGSEGV); /* as Linux does for a bad return address */
	rflags = (rflags & USER_RFLAGS) | 0x202;
	if (v->via_doorbell) {
		struct kvm_regs *r = &v->run->s.regs.regs;
		if (v->set_rsp)
			r->rsp = v->new_rsp;
		v->set_rsp = 0;
		if (v->nscrubbing) {
			/*
			 * Page-table pages to scrub (KVM without per-slot zapping): the stub's trampoline
			 * does it at ring 0, then loads the root and irets to ring 3 as any stub return.
			 */
			struct vmlwc_cr3_frame *b = (void *)(v->area + VMLWC_VCPU_FRAMEB_OFF);
			b->cr3 = v->pending_cr3 ? v->pending_cr3 : lwc_cr3(v->lwc);
			b->f = (struct vmlwc_iret_frame){ .rip = rip, .cs = VMLWC_UCS, .rflags = rflags, .rsp = r->rsp,
							  .ss = VMLWC_UDS };
			r->rip = g_vm.stub_scrub_tramp;
			r->rsp = v->area_kva + VMLWC_VCPU_FRAMEB_OFF;
			r->rflags = 0x2;
			cpu_kernel_segments(&v->run->s.regs.sregs);
			v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
			v->pending_cr3 = 0;
			return;
		}
		r->rip = rip;
		r->rflags = rflags;
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		if (v->pending_cr3) {
			v->run->s.regs.sregs.cr3 = v->pending_cr3;
			v->run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
			v->pending_cr3 = 0;
		}
		return;
	}
	f->rip = rip;
	f->rflags = rflags;
	f->cs = VMLWC_UCS;
	f->ss = VMLWC_UDS;
	if (v->set_rsp)
		f->rsp = v->new_rsp;
	v->set_rsp = 0;
	if (v->nscrubbing || v->pending_cr3) {
		/* Return through the stub's trampoline, which loads the new root first. */
		struct vmlwc_cr3_frame *b = (void *)(v->area + VMLWC_VCPU_FRAMEB_OFF);
		b->cr3 = v->pending_cr3 ? v->pending_cr3 : lwc_cr3(v->lwc);
		b->f = *f;
		f->rip = v->nscrubbing ? g_vm.stub_scrub_tramp : g_vm.stub_cr3_tramp;
		f->cs = VMLWC_KCS;
		f->rflags = 0x2;
		f->rsp = v->area_kva + VMLWC_VCPU_FRAMEB_OFF;
		f->ss = VMLWC_KDS;
		v->pending_cr3 = 0;
	}
}

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
	if (g_trace)
		t0 = trace_now_ns();
	ret = sys_dispatch(v, v->lwc, nr, a);
	if (g_trace)
		trace_syscall(v, nr, a, ret, trace_now_ns() - t0);
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
		run_panic(v, "syscall port used outside the syscall path");
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
		run_die_signal(v, SIGBUS);
	}
	if ((run->s.regs.sregs.cs.selector & 3) != 3) {
		uint64_t rip = run->s.regs.regs.rip - (VMLWC_GATE_VA + VMLWC_GATE_LSTAR);
		/*
		 * Test hook: where `syscall` enters ring 0 the gate's LSTAR code rings the doorbell from
		 * CPL 0; the host then returns to CPL 3 as PVM would have stayed there.
		 */
		if (!g_vm.cfg.test_pvm || off != VMLWC_DB_SYSCALL || rip >= 16)
			run_panic(v, "doorbell rung from ring 0");
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
		run_die_signal(v, SIGBUS); /* as a store to a device register that does not exist */
	}
}

void hypercall_init(void)
{
	hypercall_register(VMLWC_PORT_SYSCALL, hc_syscall);
	hypercall_register(VMLWC_PORT_FAULT, fault_handle);
	hypercall_register(VMLWC_PORT_PF, fault_handle_pf);
	exit_register(KVM_EXIT_MMIO, exit_doorbell);
}
