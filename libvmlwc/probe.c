/* The platform probe: what ring 3 and `syscall` do on this hypervisor, asked once before entering. */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "cpu.h"
#include "errors.h"
#include "rawsys.h"
#include "vcpu.h"
#include "vmlwc.h"
#include "state.h"

#define MSR_LSTAR 0xc0000082
#define VEC_UD 6
#define VEC_PF 14
#define PROBE_EXITS 16

extern const unsigned char vmlwc_gate_page[], vmlwc_gate_probe_xgetbv[], vmlwc_gate_probe_rdfs[],
	vmlwc_gate_probe_syscall[];

/* Where a label of the gate page sits in the guest. */
static uint64_t gate_addr(const unsigned char *label)
{
	return VMLWC_GATE_VA + (uint64_t)(label - vmlwc_gate_page);
}

/*
 * Runs the gate page's probe at ring 3 on v (the root's tree loaded, the stub in place): a #UD
 * at xgetbv or rdfsbase says ring 3 may not use them (the host skips to the next step); the
 * `syscall` with LSTAR on the gate page's doorbell trampoline either rings the doorbell at
 * CPL 3 (PVM: ring 0 is emulated there) or enters ring 0 (VT-x/SVM: a fault on the user page,
 * or the doorbell rung from CPL 0). 0, or -1 with the reason set.
 */
int probe_platform(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct kvm_regs *r = &run->s.regs.regs;
	uint64_t lstar = VMLWC_GATE_VA + VMLWC_GATE_LSTAR;
	int xgetbv_ok = 1, rdfs_ok = 1, done = 0;

	if (vcpu_msr(v, MSR_LSTAR, &lstar, 1) < 0)
		return err_set(EIO, "platform probe: KVM_SET_MSRS (LSTAR) failed");
	memset(r, 0, sizeof(*r));
	r->rip = VMLWC_GATE_VA + VMLWC_GATE_PROBE;
	r->rflags = 0x2;
	run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	for (int n = 0; n < PROBE_EXITS && !done; n++) {
		run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		long rc = RAW3(SYS_ioctl, v->fd, KVM_RUN, 0);
		if (rc == -EINTR || rc == -EAGAIN) {
			n--;
			continue;
		}
		if (rc < 0)
			return err_set((int)-rc, "platform probe: KVM_RUN: %s", strerror((int)-rc));
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.is_write &&
		    run->mmio.phys_addr == VMLWC_DOORBELL_GPA + VMLWC_DB_SYSCALL) {
			g_vm.cpu.syscall_cpl3 = (run->s.regs.sregs.cs.selector & 3) == 3;
			done = 1;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == VMLWC_PORT_FAULT) {
			struct vmlwc_fault_stack *fs = (void *)(v->area + (r->rsp - v->area_kva));
			if (r->rsp < v->area_kva || r->rsp - v->area_kva > VMLWC_VCPU_AREA_SIZE - sizeof(*fs))
				return err_set(EIO, "platform probe: fault with the stack outside the vCPU area");
			if ((fs->f.cs & 3) == 0 && fs->f.rip == lstar) {
				g_vm.cpu.syscall_cpl3 = 0; /* `syscall` entered ring 0 on a user page */
				done = 1;
				continue;
			}
			if (fs->vector == VEC_UD && fs->f.rip == gate_addr(vmlwc_gate_probe_xgetbv)) {
				xgetbv_ok = 0;
				fs->f.rip = gate_addr(vmlwc_gate_probe_rdfs);
				continue;
			}
			if (fs->vector == VEC_UD && fs->f.rip == gate_addr(vmlwc_gate_probe_rdfs)) {
				rdfs_ok = 0;
				fs->f.rip = gate_addr(vmlwc_gate_probe_syscall);
				continue;
			}
			return err_set(EIO, "platform probe: unexpected exception %lu (error %lx) at rip %lx",
				       (unsigned long)fs->vector, (unsigned long)fs->error, (unsigned long)fs->f.rip);
		}
		return err_set(EIO, "platform probe: unexpected exit %u at rip %llx", run->exit_reason, r->rip);
	}
	if (!done)
		return err_set(EIO, "platform probe: no answer after %d exits", PROBE_EXITS);
	if (g_vm.cfg.test_pvm) /* test hook: the doorbell rung from CPL 0 is taken as PVM's CPL 3 */
		g_vm.cpu.syscall_cpl3 = 1;
	if (g_vm.cfg.test_no_xsave) /* test hook: the path for hosts whose ring 3 cannot XRSTOR */
		xgetbv_ok = 0;
	g_vm.cpu.xcr0_user = xgetbv_ok ? (r->r12 & 0xffffffffUL) | (r->r13 << 32) : 0;
	g_vm.cpu.fsgsbase_user = rdfs_ok;
	/*
	 * Copies on the host where ring 0 is emulated (`syscall` keeps CPL 3: PVM), and wherever
	 * the hypervisor shadows page tables: the host then never edits a table in place, and the
	 * stub's in-place table work is not for it either.
	 */
	g_vm.cpu.host_cow = g_vm.cpu.syscall_cpl3 || !g_vm.pt.tdp;
	g_vm.pool.hdr->lazy_tables = (uint64_t)(g_vm.pt.lazy_tables && !g_vm.cpu.host_cow);
	run->kvm_dirty_regs = 0;
	return 0;
}

_Static_assert(VMLWC_PLAT_TDP == VMLWC_PLATFORM_TDP && VMLWC_PLAT_SYSCALL_CPL3 == VMLWC_PLATFORM_PVM &&
	       VMLWC_PLAT_HOST_COW == VMLWC_PLATFORM_HOST_COW && VMLWC_PLAT_DOORBELL_LWC == VMLWC_PLATFORM_LWC_DOORBELL &&
	       VMLWC_PLAT_FSGSBASE == VMLWC_PLATFORM_FSGSBASE && VMLWC_PLAT_XSAVE == VMLWC_PLATFORM_XSAVE &&
	       VMLWC_PLAT_LAZY == VMLWC_PLATFORM_LAZY_TABLES && VMLWC_PLAT_PCID == VMLWC_PLATFORM_PCID,
	       "public platform bits");

/* What vmlwc_init chose for this platform from the probe and the CPU (VMLWC_PLAT_*), for tests and benchmarks. */
long vmlwc_platform_bits(void)
{
	long b = 0;

	if (g_vm.pt.tdp)
		b |= VMLWC_PLAT_TDP;
	if (g_vm.cpu.syscall_cpl3)
		b |= VMLWC_PLAT_SYSCALL_CPL3;
	if (g_vm.cpu.host_cow)
		b |= VMLWC_PLAT_HOST_COW;
	if (g_vm.init.gate_flags & VMLWC_GF_DOORBELL)
		b |= VMLWC_PLAT_DOORBELL_LWC;
	if (g_vm.cpu.fsgsbase_user)
		b |= VMLWC_PLAT_FSGSBASE;
	if (g_vm.cpu.xcr0_user)
		b |= VMLWC_PLAT_XSAVE;
	if (g_vm.pt.lazy_tables)
		b |= VMLWC_PLAT_LAZY;
	if (g_vm.cpu.pcid)
		b |= VMLWC_PLAT_PCID;
	return b;
}
