/* The guest CPU: CPUID, segments, control registers (cpu_x86_64.c) and the platform probe (probe.c). */
#ifndef VMLWC_CPU_H
#define VMLWC_CPU_H

#include <linux/kvm.h>
#include "base.h"

struct vm;
struct vcpu;

int cpu_setup_cpuid(struct vm *vm); /* 0, or -1 with the reason set */
int cpu_setup_vcpu(struct vm *vm, struct vcpu *v, gpa_t cr3, uint64_t fs_base, uint64_t gs_base); /* 0, or -1 with the reason set */
/* the same from raw syscalls (run time): 0, or -errno with *what the failing step */
int cpu_setup_vcpu_raw(struct vm *vm, struct vcpu *v, gpa_t cr3, uint64_t fs_base, uint64_t gs_base, const char **what);
void cpu_user_segments(struct kvm_sregs *s);
void cpu_thread_segments(struct kvm_sregs *s, uint64_t fs_base, uint64_t gs_base); /* CPL 3, data segments, TLS bases */
void cpu_kernel_segments(struct kvm_sregs *s);
void cpu_init_area(struct vm *vm, struct vcpu *v);
void cpu_fill_idt(struct vm *vm);

int probe_platform(struct vcpu *v); /* 0, or -1 with the reason set */
long vmlwc_platform_bits(void);     /* VMLWC_PLAT_*, what init chose; never fails */

/* g_vm.cpu: what the guest CPU has and what the probe found. Set at init, read-only after: no lock. */
struct cpu_state {
	struct kvm_cpuid2 *cpuid;     /* what the guest sees */
	unsigned maxphy;              /* guest MAXPHYADDR */
	int has_xsave, has_pge, has_nx, has_fsgsbase, has_pcid, has_smep, has_smap;
	/* what the platform probe found (probe.c) */
	int syscall_cpl3;             /* PVM: a ring-3 `syscall` stays at CPL 3 (ring 0 is emulated) */
	int fsgsbase_user;            /* ring 3 can rdfsbase/wrfsbase */
	uint64_t xcr0_user;           /* XCR0 as ring 3 sees it (0: no xgetbv at ring 3) */
	int host_cow;                 /* copy-on-write and table copies on the host, not in the stub */
	int pcid;                     /* CR4.PCIDE: each lwC's tree is loaded with PCID id + 1 */
	uint64_t cr4_refused;         /* CR4 bits the CPUID offered but KVM_SET_SREGS refused */
	uint64_t xcr0;
};

#endif
