/* Hypercall ports: the table, the syscall port and the return paths to ring 3. */
#include <signal.h>

#include "internal.h"

/* User-controllable RFLAGS bits: CF PF AF ZF SF TF DF OF RF AC ID; IF is always set. */
#define USER_RFLAGS 0x250dd5UL

#define hc_table g_vm.hc_table

void hypercall_register(unsigned port, hypercall_fn fn)
{
	if (port >= VMLWC_PORT_BASE && port < VMLWC_PORT_BASE + VMLWC_NR_PORTS)
		hc_table[port - VMLWC_PORT_BASE] = fn;
}

int hypercall_dispatch(struct vcpu *v, unsigned port)
{
	if (port < VMLWC_PORT_BASE || port >= VMLWC_PORT_BASE + VMLWC_NR_PORTS ||
	    !hc_table[port - VMLWC_PORT_BASE])
		return -1;
	v->nhypercalls++;
	return hc_table[port - VMLWC_PORT_BASE](v);
}

struct vmlwc_iret_frame *frame_user(struct vcpu *v)
{
	return (struct vmlwc_iret_frame *)(v->area + VMLWC_FRAME_ON_KSTACK);
}

static int canonical_user(uint64_t a)
{
	return a < (1UL << 47);
}

void frame_return_to_user(struct vcpu *v, uint64_t rip, uint64_t rflags)
{
	struct vmlwc_iret_frame *f = frame_user(v);

	if (!canonical_user(rip))
		run_die_signal(v, SIGSEGV); /* as Linux does for a bad return address */
	f->rip = rip;
	f->rflags = (rflags & USER_RFLAGS) | 0x202;
	f->cs = VMLWC_UCS;
	f->ss = VMLWC_UDS;
	if (v->nscrubbing || v->pending_cr3) {
		/* Return through the stub's trampoline, which loads the new root first. */
		struct vmlwc_cr3_frame *b = (void *)(v->area + VMLWC_VCPU_FRAMEB_OFF);
		b->cr3 = v->pending_cr3 ? v->pending_cr3 : v->lwc->s.cr3 & ~VMLWC_CR3_NOFLUSH;
		b->f = *f;
		f->rip = v->nscrubbing ? g_vm.stub_scrub_tramp : g_vm.stub_cr3_tramp;
		f->cs = VMLWC_KCS;
		f->rflags = 0x2;
		f->rsp = v->area_kva + VMLWC_VCPU_FRAMEB_OFF;
		f->ss = VMLWC_KDS;
		v->pending_cr3 = 0;
	}
}

static int hc_syscall(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct vmlwc_iret_frame *f = frame_user(v);
	long a[6] = { (long)r->rdi, (long)r->rsi, (long)r->rdx, (long)r->r10, (long)r->r8, (long)r->r9 };
	long nr = (long)r->rax, ret;
	uint64_t t0 = 0;

	/*
	 * Only ring-3 syscalls land here with this stack shape: anything else is a stub bug.
	 * On PVM the frame is the #PF at LSTAR, whose CS may already be STAR's kernel selector.
	 */
	if (((f->cs & 3) != 3 && f->rip != g_vm.stub_syscall) ||
	    r->rsp != v->area_kva + VMLWC_FRAME_ON_KSTACK - 8)
		run_panic(v, "syscall port used outside the syscall path");
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
		v->test_fault_pending = 0;
		return 0;
	}
	frame_return_to_user(v, r->rcx, r->r11);
	return 0;
}

void hypercall_init(void)
{
	hypercall_register(VMLWC_PORT_SYSCALL, hc_syscall);
	hypercall_register(VMLWC_PORT_FAULT, fault_handle);
}
