/* Guest/host ABI of vmlwc: memory map, hypercall ports, per-vCPU area layout. Not installed. */
#ifndef VMLWC_ABI_H
#define VMLWC_ABI_H

#define VMLWC_ABI_VERSION 1

/* Kernel half of every guest address space. */
#define VMLWC_STUB_KVA      0xffffffff80000000  /* arena [0, 2 MiB): stub image + vCPU areas */
#define VMLWC_STUB_SPAN     0x200000
#define VMLWC_STUB_MAX      0x100000            /* stub image ceiling */
#define VMLWC_PHYSMAP_KVA   0xffff888000000000  /* direct map: kva = PHYSMAP + gpa */

/* Per-vCPU area, 16 KiB aligned, at arena offset VMLWC_VCPU_AREA_OFF + i * VMLWC_VCPU_AREA_SIZE. */
#define VMLWC_VCPU_AREA_OFF   0x100000
#define VMLWC_VCPU_AREA_SIZE  0x4000
#define VMLWC_MAX_VCPUS       64
#define VMLWC_VCPU_GDT_OFF    0x800      /* 16 descriptors */
#define VMLWC_VCPU_TSS_OFF    0x900
#define VMLWC_VCPU_IST1_TOP   0x2000     /* double fault / NMI stack top */
#define VMLWC_VCPU_KSTACK_TOP 0x4000     /* RSP0 */
#define VMLWC_VCPU_FRAMEB_OFF 0x3e00     /* host-written second iret frame (CR3 reload path) */

/* Selectors: Linux's layout, so user code sees the usual %cs/%ss. */
#define VMLWC_KCS  0x10
#define VMLWC_KDS  0x18
#define VMLWC_UCS32 0x23
#define VMLWC_UDS  0x2b
#define VMLWC_UCS  0x33
#define VMLWC_TSS_SEL 0x40

/* Hypercall ports: `out %al, $port` from ring 0 only (TSS I/O bitmap closed, IOPL 0). */
#define VMLWC_PORT_SYSCALL 0xe0  /* user syscall; registers in KVM sync regs */
#define VMLWC_PORT_FAULT   0xe1  /* exception; stack: rax, vector, error, iret frame; rax = cr2 */
#define VMLWC_NR_PORTS     2
#define VMLWC_PORT_BASE    0xe0

/* Private syscall numbers of the library (never valid Linux numbers). */
#define VMLWC_SYS_BASE   0x7f564d00
#define VMLWC_SYS_STATS  (VMLWC_SYS_BASE + 0)
#define VMLWC_SYS_TEST_STUB_FAULT (VMLWC_SYS_BASE + 1) /* only with VMLWC_TEST_HOOKS=1 */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* The iret frame the CPU pushes for an exception from ring 3 (and the stub builds on VT-x). */
struct vmlwc_iret_frame {
	uint64_t rip, cs, rflags, rsp, ss;
};

/* What the fault port leaves on the kernel stack, lowest address first. */
struct vmlwc_fault_stack {
	uint64_t rax;
	uint64_t vector;
	uint64_t error;
	struct vmlwc_iret_frame f;
};

/* Frame B of the CR3-reload return: the stub trampoline loads cr3, then iretq's the rest. */
struct vmlwc_cr3_frame {
	uint64_t cr3;
	struct vmlwc_iret_frame f;
};

/* Start of every vCPU area: read by the stub through %gs on the VT-x syscall path. */
struct vmlwc_vcpu_shared {
	uint64_t scratch_rsp;    /* user rsp during the VT-x syscall entry */
	uint64_t kstack_top;     /* KVA of RSP0 */
	uint64_t self;           /* KVA of this area */
	uint64_t vcpu_index;
};

/* 64-bit TSS. */
struct __attribute__((packed)) vmlwc_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};

#define VMLWC_FRAME_ON_KSTACK  (VMLWC_VCPU_KSTACK_TOP - (int)sizeof(struct vmlwc_iret_frame))
#define VMLWC_FAULT_ON_KSTACK  (VMLWC_VCPU_KSTACK_TOP - (int)sizeof(struct vmlwc_fault_stack))

_Static_assert(sizeof(struct vmlwc_iret_frame) == 40, "iret frame");
_Static_assert(sizeof(struct vmlwc_fault_stack) == 64, "fault stack");
_Static_assert(__builtin_offsetof(struct vmlwc_cr3_frame, f) == 8, "cr3 frame");
_Static_assert(__builtin_offsetof(struct vmlwc_vcpu_shared, scratch_rsp) == 0, "used by entry_x86_64.S");
_Static_assert(__builtin_offsetof(struct vmlwc_vcpu_shared, kstack_top) == 8, "used by entry_x86_64.S");
_Static_assert(sizeof(struct vmlwc_tss) == 104, "tss");
_Static_assert(VMLWC_VCPU_TSS_OFF + sizeof(struct vmlwc_tss) <= 0x1000, "tss in page 0");
_Static_assert(VMLWC_VCPU_FRAMEB_OFF + sizeof(struct vmlwc_cr3_frame) <= VMLWC_FAULT_ON_KSTACK,
	       "frame B below every frame in use");
_Static_assert(VMLWC_VCPU_AREA_OFF + VMLWC_MAX_VCPUS * VMLWC_VCPU_AREA_SIZE <= VMLWC_STUB_SPAN,
	       "vCPU areas inside the stub window");
_Static_assert(VMLWC_STUB_MAX <= VMLWC_VCPU_AREA_OFF, "stub image below vCPU areas");
#endif
#endif
