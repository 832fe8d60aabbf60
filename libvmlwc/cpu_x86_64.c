/* x86-64 guest CPU state: CPUID, GDT/TSS/IDT, control registers, segments and MSRs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base.h"
#include "arena.h"
#include "cpu.h"
#include "errors.h"
#include "rawsys.h"
#include "vcpu.h"
#include "state.h"

#define CR0_PE (1UL << 0)
#define CR0_MP (1UL << 1)
#define CR0_ET (1UL << 4)
#define CR0_NE (1UL << 5)
#define CR0_WP (1UL << 16)
#define CR0_AM (1UL << 18)
#define CR0_PG (1UL << 31)
#define CR4_PAE (1UL << 5)
#define CR4_PGE (1UL << 7)
#define CR4_OSFXSR (1UL << 9)
#define CR4_OSXMMEXCPT (1UL << 10)
#define CR4_FSGSBASE (1UL << 16)
#define CR4_PCIDE (1UL << 17)
#define CR4_OSXSAVE (1UL << 18)
#define CR4_SMEP (1UL << 20)
#define CR4_SMAP (1UL << 21)
#define EFER_SCE (1UL << 0)
#define EFER_LME (1UL << 8)
#define EFER_LMA (1UL << 10)
#define EFER_NXE (1UL << 11)

#define MSR_IA32_TSC 0x10
#define MSR_PAT 0x277
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static uint64_t host_xcr0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

int cpu_setup_cpuid(struct vm *vm)
{
	int n = 128;
	struct kvm_cpuid2 *c = NULL;
	struct kvm_cpuid_entry2 *e;

	for (;;) {
		c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
		if (!c)
			return err_set(ENOMEM, "CPUID: out of memory");
		c->nent = (uint32_t)n;
		if (ioctl(vm->kvm.kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		free(c);
		if (errno != E2BIG || n > 4096)
			return err_set(errno, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		n *= 2;
	}
	if ((e = cpuid_find(c, 1, 0))) {
		e->ecx &= ~(1u << 5); /* no VMX inside */
		vm->cpu.has_xsave = !!(e->ecx & (1u << 26));
		vm->cpu.has_pcid = !!(e->ecx & (1u << 17));
		vm->cpu.has_pge = !!(e->edx & (1u << 13));
	}
	if ((e = cpuid_find(c, 7, 0))) {
		vm->cpu.has_fsgsbase = !!(e->ebx & 1u);
		vm->cpu.has_smep = !!(e->ebx & (1u << 7));
		vm->cpu.has_smap = !!(e->ebx & (1u << 20));
		/* test hook: `syscall` lands at CPL 0 on the gate page, which must run and ring the doorbell */
		if (vm->cfg.test_pvm)
			vm->cpu.has_smep = vm->cpu.has_smap = 0;
	}
	if ((e = cpuid_find(c, 0x80000001, 0))) {
		e->ecx &= ~(1u << 2); /* no SVM inside */
		vm->cpu.has_nx = !!(e->edx & (1u << 20));
	}
	vm->cpu.maxphy = 36;
	if ((e = cpuid_find(c, 0x80000008, 0)) && (e->eax & 0xff))
		vm->cpu.maxphy = e->eax & 0xff;
	if (vm->cpu.maxphy > 52)
		vm->cpu.maxphy = 52;
	if (e && vm->cfg.test_maxphy >= 36 && vm->cfg.test_maxphy < vm->cpu.maxphy) {
		/* test hook: a narrower guest; its CPU says so too */
		vm->cpu.maxphy = vm->cfg.test_maxphy;
		e->eax = (e->eax & ~0xffu) | vm->cpu.maxphy;
	}
	if (vm->cpu.has_xsave) {
		uint64_t supported = 0, host = host_xcr0();
		if ((e = cpuid_find(c, 0xd, 0)))
			supported = ((uint64_t)e->edx << 32) | e->eax;
		if (host & ~supported) {
			free(c);
			return err_set(ENOTSUP, "host XCR0 %#lx has state components the guest cannot enable"
				       " (KVM supports %#lx)", (unsigned long)host, (unsigned long)supported);
		}
		vm->cpu.xcr0 = host;
	}
	vm->cpu.cpuid = c;
	return 0;
}

static void gdt_set(uint64_t *gdt, int i, uint64_t type, int dpl, int l, int db)
{
	gdt[i] = 0xffffUL | (0xfUL << 48) | (type << 40) | (1UL << 44) | ((uint64_t)dpl << 45) |
		 (1UL << 47) | ((uint64_t)l << 53) | ((uint64_t)db << 54) | (1UL << 55);
}

void cpu_init_area(struct vm *vm, struct vcpu *v)
{
	struct vmlwc_vcpu_shared *sh = (void *)v->area;
	uint64_t *gdt = (uint64_t *)(v->area + VMLWC_VCPU_GDT_OFF);
	struct vmlwc_tss *tss = (void *)(v->area + VMLWC_VCPU_TSS_OFF);
	uint64_t tss_kva = v->area_kva + VMLWC_VCPU_TSS_OFF, lim = sizeof(*tss) - 1;

	(void)vm;
	sh->kstack_top = v->area_kva + VMLWC_VCPU_KSTACK_TOP;
	sh->self = v->area_kva;
	sh->vcpu_index = (uint64_t)v->index;
	memset(gdt, 0, 16 * 8);
	/*
	 * No 32-bit code segment at all: STAR names 0x23 only for SYSRET's arithmetic, which never
	 * reads it. Ring 3 can therefore never reach compatibility mode, whose `syscall` would
	 * enter ring 0 through CSTAR on the caller's stack.
	 */
	gdt_set(gdt, 2, 0xb, 0, 1, 0);   /* 0x10 kernel code 64 */
	gdt_set(gdt, 3, 0x3, 0, 0, 1);   /* 0x18 kernel data */
	gdt_set(gdt, 5, 0x3, 3, 0, 1);   /* 0x2b user data */
	gdt_set(gdt, 6, 0xb, 3, 1, 0);   /* 0x33 user code 64 */
	gdt[8] = (lim & 0xffff) | ((tss_kva & 0xffffff) << 16) | (0xbUL << 40) | (1UL << 47) |
		 (((tss_kva >> 24) & 0xff) << 56);
	gdt[9] = tss_kva >> 32;
	memset(tss, 0, sizeof(*tss));
	tss->rsp[0] = v->area_kva + VMLWC_VCPU_KSTACK_TOP;
	tss->ist[0] = v->area_kva + VMLWC_VCPU_IST1_TOP;
	tss->iomap_base = sizeof(*tss); /* beyond the limit: every port closed to ring 3 */
}

void cpu_fill_idt(struct vm *vm)
{
	uint64_t *idt = (uint64_t *)(vm->arena.base + (vm->stub.idt - VMLWC_STUB_KVA));
	const uint64_t *vec = (const uint64_t *)(vm->arena.base + (vm->stub.vectors - VMLWC_STUB_KVA));

	for (int i = 0; i < 32; i++) {
		uint64_t h = i == 14 && vm->cpu.host_cow ? vm->stub.pf_host : vec[i];
		int dpl = i == 3 ? 3 : 0; /* int3 from ring 3 is a breakpoint, as natively */
		int ist = (i == 2 || i == 8 || i == 18) ? 1 : 0;
		idt[2 * i] = (h & 0xffff) | ((uint64_t)VMLWC_KCS << 16) | ((uint64_t)ist << 32) |
			     (0xeUL << 40) | ((uint64_t)dpl << 45) | (1UL << 47) |
			     (((h >> 16) & 0xffff) << 48);
		idt[2 * i + 1] = h >> 32;
	}
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int dpl, int l, int db)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->dpl = (uint8_t)dpl;
	s->s = 1;
	s->l = (uint8_t)l;
	s->db = (uint8_t)db;
	s->g = 1;
}

/* The segments a thread runs with at CPL 3. */
void cpu_user_segments(struct kvm_sregs *s)
{
	seg(&s->cs, VMLWC_UCS, 0xb, 3, 1, 0);
	seg(&s->ss, VMLWC_UDS, 0x3, 3, 0, 1);
}

/* A thread entering at CPL 3 with these TLS bases (clone, a pooled vCPU given to a new thread). */
void cpu_thread_segments(struct kvm_sregs *s, uint64_t fs_base, uint64_t gs_base)
{
	cpu_user_segments(s);
	seg(&s->ds, 0, 0x3, 0, 0, 1);
	seg(&s->es, 0, 0x3, 0, 0, 1);
	seg(&s->fs, 0, 0x3, 0, 0, 1);
	seg(&s->gs, 0, 0x3, 0, 0, 1);
	s->fs.base = fs_base;
	s->gs.base = gs_base;
}

/* The segments the stub runs with at CPL 0. */
void cpu_kernel_segments(struct kvm_sregs *s)
{
	seg(&s->cs, VMLWC_KCS, 0xb, 0, 1, 0);
	seg(&s->ss, VMLWC_KDS, 0x3, 0, 0, 1);
}

static long set_msrs(struct vcpu *v, const uint32_t *idx, const uint64_t *val, int n)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[16];
	} m;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = (uint32_t)n;
	for (int i = 0; i < n; i++) {
		m.e[i].index = idx[i];
		m.e[i].data = val[i];
	}
	long r = RAW3(SYS_ioctl, v->fd, KVM_SET_MSRS, &m);
	return r == n ? 0 : r < 0 ? r : -EINVAL;
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/*
 * Raw syscalls only: a vCPU is set up at run time too (a guest thread's clone), on a host thread
 * whose TLS may be the guest's. 0, or -errno with *what naming the step.
 */
int cpu_setup_vcpu_raw(struct vm *vm, struct vcpu *v, gpa_t cr3, uint64_t fs_base, uint64_t gs_base,
		       const char **what)
{
	struct kvm_sregs s;
	long r;

	/* once: KVM refuses a CPUID change after the first KVM_RUN (the platform probe's) */
	*what = "KVM_SET_CPUID2";
	if (!v->cpuid_set && (r = RAW3(SYS_ioctl, v->fd, KVM_SET_CPUID2, vm->cpu.cpuid)) < 0)
		return (int)r;
	v->cpuid_set = 1;
	cpu_init_area(vm, v);
	*what = "KVM_GET_SREGS";
	if ((r = RAW3(SYS_ioctl, v->fd, KVM_GET_SREGS, &s)) < 0)
		return (int)r;
	s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	if (vm->cpu.has_pge)
		s.cr4 |= CR4_PGE;
	if (vm->cpu.has_xsave)
		s.cr4 |= CR4_OSXSAVE;
	if (vm->cpu.has_fsgsbase)
		s.cr4 |= CR4_FSGSBASE;
	if (vm->cpu.has_smep)
		s.cr4 |= CR4_SMEP;
	if (vm->cpu.has_smap)
		s.cr4 |= CR4_SMAP;
	if (vm->cpu.pcid)
		s.cr4 |= CR4_PCIDE; /* cr3 below carries PCID 0: valid when PCIDE is set */
	s.efer = EFER_SCE | EFER_LME | EFER_LMA | (vm->cpu.has_nx ? EFER_NXE : 0);
	s.cr3 = cr3;
	/* The thread enters straight at CPL 3. */
	cpu_user_segments(&s);
	seg(&s.ds, 0, 0x3, 0, 0, 1);
	seg(&s.es, 0, 0x3, 0, 0, 1);
	seg(&s.fs, 0, 0x3, 0, 0, 1);
	seg(&s.gs, 0, 0x3, 0, 0, 1);
	s.fs.base = fs_base;
	s.gs.base = gs_base;
	memset(&s.tr, 0, sizeof(s.tr));
	s.tr.selector = VMLWC_TSS_SEL;
	s.tr.base = v->area_kva + VMLWC_VCPU_TSS_OFF;
	s.tr.limit = sizeof(struct vmlwc_tss) - 1;
	s.tr.type = 0xb;
	s.tr.present = 1;
	memset(&s.ldt, 0, sizeof(s.ldt));
	s.ldt.type = 2;
	s.ldt.unusable = 1;
	s.gdt.base = v->area_kva + VMLWC_VCPU_GDT_OFF;
	s.gdt.limit = 16 * 8 - 1;
	s.idt.base = vm->stub.idt;
	s.idt.limit = 32 * 16 - 1;
	/*
	 * KVM may refuse a CR4 bit its supported CPUID offers (PVM refuses PCIDE): drop the optional
	 * ones, cheapest loss first, until it accepts, and remember what the guest really has.
	 */
	static const struct { uint64_t bit; const char *name; } optional[] = {
		{ CR4_PCIDE, "PCIDE" }, { CR4_SMAP, "SMAP" }, { CR4_SMEP, "SMEP" },
		{ CR4_FSGSBASE, "FSGSBASE" }, { CR4_PGE, "PGE" }, { CR4_OSXSAVE, "OSXSAVE" },
	};
	unsigned k = 0;
	*what = "KVM_SET_SREGS";
	while ((r = RAW3(SYS_ioctl, v->fd, KVM_SET_SREGS, &s)) < 0) {
		while (k < ARRAY_SIZE(optional) && !(s.cr4 & optional[k].bit))
			k++;
		if (r != -EINVAL || k == ARRAY_SIZE(optional))
			return (int)r;
		s.cr4 &= ~optional[k].bit;
		if (optional[k].bit == CR4_PCIDE)
			s.cr3 &= ~0xfffULL;
		vm->cpu.cr4_refused |= optional[k].bit;
		k++;
	}
	vm->cpu.pcid = vm->cpu.pcid && (s.cr4 & CR4_PCIDE);
	vm->cpu.has_smap = vm->cpu.has_smap && (s.cr4 & CR4_SMAP);
	vm->cpu.has_smep = vm->cpu.has_smep && (s.cr4 & CR4_SMEP);
	vm->cpu.has_fsgsbase = vm->cpu.has_fsgsbase && (s.cr4 & CR4_FSGSBASE);
	vm->cpu.has_pge = vm->cpu.has_pge && (s.cr4 & CR4_PGE);
	vm->cpu.has_xsave = vm->cpu.has_xsave && (s.cr4 & CR4_OSXSAVE);
	if (!vm->cpu.pcid && vm->pool.hdr)
		vm->pool.hdr->cr3_noflush = 0;
	if (vm->cpu.has_xsave) {
		struct kvm_xcrs x;
		memset(&x, 0, sizeof(x));
		x.nr_xcrs = 1;
		x.xcrs[0].xcr = 0;
		x.xcrs[0].value = vm->cpu.xcr0;
		*what = "KVM_SET_XCRS";
		if ((r = RAW3(SYS_ioctl, v->fd, KVM_SET_XCRS, &x)) < 0)
			return (int)r;
	}
	{
		uint32_t idx[] = { MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK, MSR_KERNEL_GS_BASE, MSR_PAT };
		uint64_t val[] = {
			((uint64_t)VMLWC_UCS32 << 48) | ((uint64_t)VMLWC_KCS << 32),
			vm->cpu.syscall_cpl3 ? VMLWC_GATE_VA + VMLWC_GATE_LSTAR : vm->stub.syscall,
			vm->cpu.syscall_cpl3 ? VMLWC_GATE_VA + VMLWC_GATE_LSTAR : vm->stub.syscall, /* unreachable: no compat mode */
			0x47700, /* TF DF IF IOPL AC NT cleared on entry */
			v->area_kva,
			0x0007040600070406UL,
		};
		*what = "KVM_SET_MSRS (STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE, PAT)";
		if ((r = set_msrs(v, idx, val, (int)ARRAY_SIZE(idx))) < 0)
			return (int)r;
	}
	/* Guest TSC offset 0, so the vDSO computes the host's time in the guest. */
	if (vm->kvm.has_tsc_attr) {
		uint64_t off = 0;
		struct kvm_device_attr a = {
			.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET, .addr = (uint64_t)&off
		};
		if (RAW3(SYS_ioctl, v->fd, KVM_HAS_DEVICE_ATTR, &a) == 0 && RAW3(SYS_ioctl, v->fd, KVM_SET_DEVICE_ATTR, &a) == 0)
			return 0;
	}
	{
		uint32_t idx[] = { MSR_IA32_TSC };
		uint64_t val[] = { rdtsc() };
		*what = "KVM_SET_MSRS (TSC)";
		return (int)set_msrs(v, idx, val, 1);
	}
}

int cpu_setup_vcpu(struct vm *vm, struct vcpu *v, gpa_t cr3, uint64_t fs_base, uint64_t gs_base)
{
	const char *what = "";
	int r = cpu_setup_vcpu_raw(vm, v, cr3, fs_base, gs_base, &what);

	return r < 0 ? err_set(-r, "%s: %s", what, strerror(-r)) : 0;
}
