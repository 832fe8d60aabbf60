/* The vCPU run loop: KVM_RUN, exit dispatch through a table, dumps, death by signal. */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>

#include "base.h"
#include "cpu.h"
#include "die.h"
#include "rawsys.h"
#include "run.h"
#include "trace.h"
#include "vcpu.h"
#include "vmlock.h"
#include "state.h"


_Static_assert(offsetof(struct enter_ctx, fcw) == 64, "used by enter_x86_64.S");
_Static_assert(offsetof(struct enter_ctx, mxcsr) == 72, "used by enter_x86_64.S");

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/* User-controllable RFLAGS bits: CF PF AF ZF SF TF DF OF RF AC ID; IF is always set. */
#define USER_RFLAGS 0x250dd5UL

void hypercall_register(unsigned port, hypercall_fn fn)
{
	if (port >= VMLWC_PORT_BASE && port < VMLWC_PORT_BASE + VMLWC_NR_PORTS)
		g_vm.run.hc_table[port - VMLWC_PORT_BASE] = fn;
}

int hypercall_dispatch(struct vcpu *v, unsigned port)
{
	if (port < VMLWC_PORT_BASE || port >= VMLWC_PORT_BASE + VMLWC_NR_PORTS ||
	    !g_vm.run.hc_table[port - VMLWC_PORT_BASE])
		return -1;
	v->nhypercalls++;
	v->via_doorbell = 0;
	return g_vm.run.hc_table[port - VMLWC_PORT_BASE](v);
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
		die_signal(v, SIGSEGV); /* as Linux does for a bad return address */
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
			b->cr3 = v->pending_cr3 ? v->pending_cr3 : v->run->s.regs.sregs.cr3;
			b->f = (struct vmlwc_iret_frame){ .rip = rip, .cs = VMLWC_UCS, .rflags = rflags, .rsp = r->rsp,
							  .ss = VMLWC_UDS };
			r->rip = g_vm.stub.scrub_tramp;
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
		b->cr3 = v->pending_cr3 ? v->pending_cr3 : v->run->s.regs.sregs.cr3;
		b->f = *f;
		f->rip = v->nscrubbing ? g_vm.stub.scrub_tramp : g_vm.stub.cr3_tramp;
		f->cs = VMLWC_KCS;
		f->rflags = 0x2;
		f->rsp = v->area_kva + VMLWC_VCPU_FRAMEB_OFF;
		f->ss = VMLWC_KDS;
		v->pending_cr3 = 0;
	}
}

void exit_register(unsigned reason, exit_fn fn)
{
	if (reason < MAX_EXIT)
		g_vm.run.exit_table[reason] = fn;
}

/*
 * The vCPU's host thread, forever: KVM_RUN without the lock, each exit's handler under it.
 * in_guest tells other vCPUs' threads whether this one may be running guest code now; set
 * under the lock, so a thread that holds the lock and finds it clear knows this vCPU will not
 * run guest code before it took the lock itself (and revalidated what it will run on).
 */
void run_loop(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	vm_lock(v);
	for (;;) {
		long r;

		if (g_vm.run.before_entry)
			g_vm.run.before_entry(v);
		/* the sregs too: CR3 says which lwC runs (the stub switches without exits) */
		run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		__atomic_store_n(&v->in_guest, 1, __ATOMIC_SEQ_CST);
		vm_unlock(v);
		r = RAW3(SYS_ioctl, v->fd, KVM_RUN, 0);
		__atomic_store_n(&v->in_guest, 0, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&v->kick_waiter, __ATOMIC_SEQ_CST))
			RAW3(SYS_futex, &v->in_guest, FUTEX_WAKE_PRIVATE, 1);
		vm_lock(v);
		run->immediate_exit = 0;
		v->nexits++;
		if (r < 0) {
			if (r == -EINTR || r == -EAGAIN)
				continue; /* a kick, or a signal for the host thread */
			if (r == -EFAULT) /* host memory behind a guest mapping is gone (beyond EOF) */
				die_signal(v, SIGBUS);
			die_panic(v, "KVM_RUN failed");
		}
		run_exit_handle(v);
		if (v->park) {
			/* the guest thread exited: its vCPU waits in the pool until a clone gives it another */
			vm_unlock(v);
			while (__atomic_load_n(&v->park, __ATOMIC_ACQUIRE))
				RAW4(SYS_futex, &v->park, FUTEX_WAIT_PRIVATE, 1, 0);
			vm_lock(v);
		}
	}
}

/* Kicks v out of KVM_RUN (or keeps it from entering): immediate_exit, then the kick signal. */
static void kick(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	RAW3(SYS_tgkill, g_vm.run.tgid, v->tid, VMLWC_SIG_KICK);
}

/* Every other vCPU out of KVM_RUN; with the lock held none re-enters before it goes. */
static void run_stop_others(struct vcpu *self)
{
	unsigned n = __atomic_load_n(&g_vm.kvm.nvcpus, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n; i++) {
		struct vcpu *o = g_vm.kvm.vcpus[i];
		if (o != self && __atomic_load_n(&o->in_guest, __ATOMIC_SEQ_CST)) {
			__atomic_store_n(&o->kick_waiter, 1, __ATOMIC_SEQ_CST);
			kick(o);
			g_vm.run.kicks++;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *o = g_vm.kvm.vcpus[i];
		if (o == self)
			continue;
		while (__atomic_load_n(&o->in_guest, __ATOMIC_SEQ_CST))
			RAW4(SYS_futex, &o->in_guest, FUTEX_WAIT_PRIVATE, 1, 0);
		__atomic_store_n(&o->kick_waiter, 0, __ATOMIC_SEQ_CST);
	}
}

/* ptpage's hook: its memslot changes with the other vCPUs out of the guest. */
static void run_quiesce(void)
{
	if (__atomic_load_n(&g_vm.kvm.nvcpus, __ATOMIC_ACQUIRE) > 1)
		run_stop_others(vm_holder());
}

/*
 * Every other vCPU out of guest code, then revalidated: whatever it runs on next (CR3, a
 * return frame's CR3, a switch the stub was making) names only current trees. Called with the
 * lock held by self's handler; the others cannot enter the guest again before taking it.
 */
void run_sync_others(struct vcpu *self)
{
	unsigned n = __atomic_load_n(&g_vm.kvm.nvcpus, __ATOMIC_ACQUIRE);

	if (n <= 1)
		return;
	g_vm.run.syncs++;
	run_stop_others(self);
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *o = g_vm.kvm.vcpus[i];
		if (o != self && g_vm.run.revalidate && !o->park)
			g_vm.run.revalidate(o);
	}
}

/* The kick signal only interrupts KVM_RUN (or a blocking syscall: restarted or EINTR as any signal). */
static void kick_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
}

void run_init_kick(void)
{
	struct {
		uint64_t handler, flags, restorer, mask;
	} act = { (uint64_t)kick_handler, SA_SIGINFO | SA_RESTORER, (uint64_t)vmlwc_sig_restorer, 0 };

	uint64_t kick_bit = 1UL << (VMLWC_SIG_KICK - 1);

	g_vm.run.tgid = (int)RAW0(SYS_getpid);
	RAW4(SYS_rt_sigaction, VMLWC_SIG_KICK, &act, 0, 8);
	RAW4(SYS_rt_sigprocmask, SIG_UNBLOCK, &kick_bit, 0, 8); /* threads made later inherit it */
}

void run_exit_handle(struct vcpu *v)
{
	unsigned reason = v->run->exit_reason;

	if (reason >= MAX_EXIT || !g_vm.run.exit_table[reason])
		die_panic(v, "unhandled exit reason");
	/* the layer above learns which lwC runs and reclaims what the last return freed */
	if ((reason == KVM_EXIT_IO || reason == KVM_EXIT_MMIO) && g_vm.run.exit_begin)
		g_vm.run.exit_begin(v);
	if (g_vm.run.exit_table[reason](v) != 0)
		die_panic(v, "exit handler refused the exit");
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
	die_panic(v, why);
}

void run_init(void)
{
	g_vm.ptp.quiesce = run_quiesce;
	exit_register(KVM_EXIT_INTR, exit_intr);
	exit_register(KVM_EXIT_SHUTDOWN, exit_fatal);
	exit_register(KVM_EXIT_HLT, exit_fatal);
	exit_register(KVM_EXIT_FAIL_ENTRY, exit_fatal);
	exit_register(KVM_EXIT_INTERNAL_ERROR, exit_fatal);
}
