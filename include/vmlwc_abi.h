/* Guest/host ABI of vmlwc: memory map, hypercall ports, per-vCPU area layout. Not installed. */
#ifndef VMLWC_ABI_H
#define VMLWC_ABI_H

#define VMLWC_ABI_VERSION 1

/* Kernel half of every guest address space. */
#define VMLWC_STUB_KVA      0xffffffff80000000  /* arena [0, 2 MiB): stub image + vCPU areas */
#define VMLWC_STUB_SPAN     0x200000
#define VMLWC_STUB_MAX      0x100000            /* stub image ceiling */
#define VMLWC_PHYSMAP_KVA   0xffff888000000000  /* direct map: kva = PHYSMAP + gpa */

/*
 * Guest-physical layout. Block 0 [0, 1 GiB) never has a memslot: the PVM syscall doorbell
 * lives there. Library memory (the arena: stub, page tables, pool, shadows) always sits in its
 * own window from VMLWC_LIB_GPA up, whatever the guest MAXPHYADDR, so its direct-map image
 * PHYSMAP + gpa can neither wrap past 2^64 nor reach the stub window. Application memory
 * gets GPA = HVA above the library window when MAXPHYADDR allows, else windows from the top.
 */
#define VMLWC_LIB_GPA       0x40000000UL
#define VMLWC_PHYSMAP_SPAN  (VMLWC_STUB_KVA - VMLWC_PHYSMAP_KVA) /* most library GPA space */
#define VMLWC_DOORBELL_GPA  0x10000UL                           /* no memslot: an MMIO exit */

/* Per-vCPU area, 16 KiB aligned, at arena offset VMLWC_VCPU_AREA_OFF + i * VMLWC_VCPU_AREA_SIZE. */
#define VMLWC_VCPU_AREA_OFF   0x100000
#define VMLWC_VCPU_AREA_SIZE  0x4000
#define VMLWC_MAX_VCPUS       64         /* a power of two: the stub masks the index with it */
#define VMLWC_VCPU_SHIFT      14         /* log2 VMLWC_VCPU_AREA_SIZE: index = (kernel rsp >> 14) & 63 */
#define VMLWC_VCPU_GDT_OFF    0x800      /* 16 descriptors */
#define VMLWC_VCPU_TSS_OFF    0x900
#define VMLWC_VCPU_IST1_TOP   0x2000     /* double fault / NMI stack top */
#define VMLWC_VCPU_KSTACK_TOP 0x4000     /* RSP0 */
#define VMLWC_VCPU_FRAMEB_OFF 0x3e00     /* host-written second iret frame (CR3 reload path) */
#define VMLWC_VCPU_SCRUB_N    0x100      /* count of page-table pages the stub must scrub */
#define VMLWC_VCPU_SCRUB_LIST 0x108      /* their KVAs (direct map) */
#define VMLWC_SCRUB_MAX       ((0x800 - VMLWC_VCPU_SCRUB_LIST) / 8)

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
#define VMLWC_PORT_LWC     0xe2  /* lwC call the stub does not finish itself; stack: iret frame */
#define VMLWC_PORT_PF      0xe3  /* #PF where ring 0 is emulated; stack: vector, error, iret frame; CR2 in sregs */
#define VMLWC_NR_PORTS     4
#define VMLWC_PORT_BASE    0xe0

/*
 * The lwC gate window: pages the library maps at fixed user addresses in every lwC (below
 * 2 GiB, so ring 0 and ring 3 name them as 32-bit immediates). Library memory for the mmap
 * family and for lwC specs: no lwC can map, share, overlay or unmap them.
 *   GATE     gate code and data (user R X), one frame for all lwCs
 *   PRIV     this lwC's own resume state (user RW): written only by its own gate code
 *   SRCMAP   this lwC's src map (user R): lowest descriptor it holds for each lwC id, or -1
 *   SWTAB    this lwC's switch table (supervisor only): what ring 0 needs to switch fast
 *   DOORBELL the PVM syscall doorbell (user W, a guest-physical address with no memslot)
 */
#define VMLWC_GATE_VA     0x7ffe0000UL
#define VMLWC_PRIV_VA     (VMLWC_GATE_VA + 0x1000)
#define VMLWC_SRCMAP_VA   (VMLWC_GATE_VA + 0x2000)
#define VMLWC_SWTAB_VA    (VMLWC_GATE_VA + 0x3000)
#define VMLWC_DOORBELL_VA (VMLWC_GATE_VA + 0x4000)
#define VMLWC_GATE_PAGES  5

/* Offsets in the gate page: code at fixed places (the stub compares return addresses). */
#define VMLWC_GATE_SW       0x000 /* lwc_switch entry: rax = -2, rdi = descriptor, message regs */
#define VMLWC_GATE_SW_INT3  0x03f /* its int3; the target resumes at the next byte */
#define VMLWC_GATE_SW_RESUME 0x040 /* every lwC resumes here after a switch into it */
#define VMLWC_GATE_CALL     0x200 /* any other lwC call: rax = call, rdi rsi rdx = arguments */
#define VMLWC_GATE_CALL_INT3 0x20f /* its int3 (VT-x/SVM); PVM rings the doorbell instead */
#define VMLWC_GATE_LSTAR    0x240 /* PVM: LSTAR (ring 3 stays at CPL 3): rings the doorbell */
#define VMLWC_GATE_PROBE    0x280 /* init-time platform probe */
#define VMLWC_GATE_FLAGS    0x7c0 /* uint64: VMLWC_GF_* */
#define VMLWC_GATE_RFBM     0x7c8 /* uint64: XRSTOR mask that clears vector state */
#define VMLWC_GATE_XZERO    0x800 /* XSAVE area of init state (MXCSR 0x1f80), 64-aligned */
#define VMLWC_GF_FSGSBASE 1  /* ring 3 can rdfsbase/wrfsbase: the gate saves and restores them */
#define VMLWC_GF_DOORBELL 2  /* lwC calls ring the doorbell (PVM) instead of int3 */
#define VMLWC_GF_XSAVE    4  /* ring 3 can xrstor: vector state cleared with VMLWC_GATE_RFBM */

/*
 * The private page: each lwC's resume state, one slot per thread (vCPU index), written by its
 * own gate code (the thread's own slot: the index it got from the stub when it last resumed,
 * kept in its TLS) and by the host (the creation context, in the creating thread's slot).
 */
#define VMLWC_PRIV_SWITCHES 0x18 /* switches into this lwC that ended in its gate code (its own count) */
#define VMLWC_PRIV_SLOTS 0x100   /* slot i at VMLWC_PRIV_SLOTS + i * VMLWC_PRIV_SLOT_SIZE */
#define VMLWC_PRIV_SLOT_SIZE 32
#define VMLWC_PRIV_RSP 0x00      /* within a slot */
#define VMLWC_PRIV_FS  0x08
#define VMLWC_PRIV_GS  0x10
#define VMLWC_PRIV_SLOT_SHIFT 5
#define VMLWC_CR3_OF_ROW_SHIFT 9 /* the stub's CR3 table: a row of VMLWC_MAX_VCPUS entries per 1 + lwC id */

/* Doorbell offsets (byte stores from ring 3 on PVM): the host tells calls apart by address. */
#define VMLWC_DB_SYSCALL 0x0
#define VMLWC_DB_LWC     0x8
#define VMLWC_DB_PROBE   0x10

/* The switch table: entry d (d < VMLWC_SW_MAX) is 1 + the id of the lwC descriptor d may be
   switched into by the stub (an lwC descriptor with the switch right, another lwC), else 0;
   the last word is the owner's id. */
#define VMLWC_SW_MAX 1023
#define VMLWC_SW_SELF (VMLWC_SW_MAX * 4)

/* A non-present kernel-half PML4 entry of every root holds (lwC id + 1) << 1: the host
   learns which lwC runs from CR3 alone. */
#define VMLWC_PML4_TAG 256

#define VMLWC_LWC_CREATE 1
#define VMLWC_LWC_SWITCH 2
#define VMLWC_LWC_SWITCH_DISCARD 3
#define VMLWC_LWC_SELF 4
#define VMLWC_LWC_CLOSE 5
#define VMLWC_LWC_OVERLAY 6
#define VMLWC_LWC_RESTRICT 7
#define VMLWC_LWC_SYSCALL 8
#define VMLWC_LWC_LIMIT 9
#define VMLWC_LWC_SLOT 10      /* the calling thread's slot (vCPU index) in the private pages */
#define VMLWC_LWC_SWITCHED_RET (-2)

#define VMLWC_MAX_LWCS 1024
/* lwC states */
#define VMLWC_LWC_FREE 0
#define VMLWC_LWC_READY 1     /* has a context: may run (the running one is the one CR3 names) */
#define VMLWC_LWC_GONE 3      /* no context (discarded): cannot be switched into */
#define VMLWC_LWC_TRAPPED 4   /* stopped in a trapped syscall: resumed by the host with a result */

/* Descriptor table entries: a host fd, or an lwC with rights; -1 when free. */
#define VMLWC_FD_NONE (-1)
#define VMLWC_FD_CLOEXEC (1 << 30)
#define VMLWC_FD_LWC (1 << 29)
#define VMLWC_FD_ID_MASK 0xffff
#define VMLWC_FD_RIGHTS_SHIFT 16
#define VMLWC_FD_RIGHT_SWITCH (1 << 16)
#define VMLWC_FD_RIGHT_OVERLAY (1 << 17)    /* every range, or those its restriction names */
#define VMLWC_FD_RIGHT_SYS_MEM (1 << 18)    /* lwc_syscall with LWC_MEM */
#define VMLWC_FD_RIGHT_SYS_FILES (1 << 19)  /* lwc_syscall with LWC_FILES */
#define VMLWC_FD_RIGHT_SYS_CRED (1 << 20)   /* lwc_syscall with LWC_CRED */
#define VMLWC_FD_RIGHTS (0x1f << 16)

/* Offsets used from assembly (checked against the structs below). */
#define VMLWC_SH_SCRATCH 0
#define VMLWC_SH_KSTACK 8
/* CR3 bit 63 with CR4.PCIDE: keep the TLB entries of the PCID being loaded */
#define VMLWC_CR3_NOFLUSH (1UL << 63)

/* Software bits of user PTEs */
#define VMLWC_PTE_COW (1UL << 9)     /* private page shared copy-on-write: W is clear */
#define VMLWC_PTE_SHARED (1UL << 10) /* MAP_SHARED or LWC_SHARE: stays shared at lwc_create */
#define VMLWC_PTE_PROTNONE (1UL << 11) /* PROT_NONE: not present, frame kept */
/* On a non-leaf entry: the table below is shared with other trees (W is clear); copied on write */
#define VMLWC_PTE_STBL (1UL << 52)
/*
 * A lazy entry: a non-present non-leaf entry that stands for every page below it, mapped with
 * the leaf flags it carries (P implied unless VMLWC_PTE_PROTNONE) to the host memory at the
 * page's own address, or to the zero frame with VMLWC_PTE_LZERO. The host makes the tables
 * below on the first fault or access: mapping 64 TiB costs a few entries, not 2^34 of them.
 * Host memory below a private (not VMLWC_PTE_SHARED) lazy entry was never written through it.
 */
#define VMLWC_PTE_LAZY (1UL << 53)
#define VMLWC_PTE_LZERO (1UL << 54)

/* Private syscall numbers of the library (never valid Linux numbers). */
#define VMLWC_SYS_BASE   0x7f564d00
#define VMLWC_SYS_STATS  (VMLWC_SYS_BASE + 0)
#define VMLWC_SYS_TEST_STUB_FAULT (VMLWC_SYS_BASE + 1) /* only with VMLWC_TEST_HOOKS=1 */
#define VMLWC_SYS_POOL   (VMLWC_SYS_BASE + 2) /* a0 = one of these: */
#define VMLWC_SYS_TEST_FORBIDDEN (VMLWC_SYS_BASE + 3) /* only with VMLWC_TEST_HOOKS=1: the host issues a syscall its filter forbids */
#define VMLWC_POOL_IN_USE 0      /* frames of the pool in use */
#define VMLWC_POOL_LAZY 1        /* 1 when page tables are shared lazily */
#define VMLWC_POOL_TABLE_COPIES 2 /* shared tables copied (by the stub or the host) */
#define VMLWC_POOL_PT_PAGES 3    /* page-table pages in the arena (the pool's are frames in use) */
#define VMLWC_POOL_PCID 4        /* 1 when lwC trees are loaded with PCIDs */
#define VMLWC_POOL_CR4_REFUSED 5 /* CR4 bits the CPUID offered but KVM refused */
#define VMLWC_POOL_PLATFORM 6    /* VMLWC_PLAT_* bits: what vmlwc_init chose */
#define VMLWC_POOL_ARENA 7       /* arena pages in use */
#define VMLWC_POOL_HOST_FDS 9     /* host fds the descriptor shadows hold */
#define VMLWC_POOL_SANDBOX 10     /* syscalls the vCPU thread's seccomp filter allows */
#define VMLWC_POOL_PT_ALLOCS 11   /* page-table chunk pages handed out, ever */
#define VMLWC_POOL_PT_TOUCHED 12  /* distinct page-table chunk pages ever handed out */
#define VMLWC_POOL_PT_RECLAIMED 13 /* freed table pages KVM was made to drop (chunk recycled or scrubbed) */
#define VMLWC_POOL_FREED_AT_ONCE 14 /* table pages a running lwC's transactions retired, freed in the exit: its vCPU's deferred list was full */
#define VMLWC_POOL_TABLES_IN_POOL 8 /* 1 when lazy tables are pool frames (EPT/NPT), not page-table chunks */
/* the same bits as vmlwc_stats().platform (VMLWC_PLATFORM_* in vmlwc.h) */
#define VMLWC_PLAT_TDP 1         /* two-dimensional paging (EPT/NPT): tables reused at once */
#define VMLWC_PLAT_SYSCALL_CPL3 2 /* `syscall` stays at CPL 3 (PVM): syscalls ring the doorbell */
#define VMLWC_PLAT_HOST_COW 4    /* copy-on-write and table copies on the host */
#define VMLWC_PLAT_DOORBELL_LWC 8 /* lwC calls ring the doorbell */
#define VMLWC_PLAT_FSGSBASE 16   /* ring 3 can write its TLS bases */
#define VMLWC_PLAT_XSAVE 32      /* ring 3 can xrstor: switches clear every vector register */
#define VMLWC_PLAT_LAZY 64
#define VMLWC_PLAT_PCID 128

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

/* What the #PF port leaves on the kernel stack (ring 0 emulated: as few stub instructions as can be). */
struct vmlwc_pf_stack {
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

/* An lwC as the stub's copy-on-write code sees it (host fields follow in the host's struct lwc). */
struct vmlwc_lwc {
	uint64_t root;   /* GPA of its PML4 */
	uint32_t id;
	uint32_t pad;
};

/* The frame pool, shared by host and stub (lives in the stub's data). */
struct vmlwc_pool {
	uint64_t base_gpa;     /* first frame */
	uint64_t nframes;      /* ceiling */
	uint64_t bump;         /* frames handed out at least once */
	uint64_t nfree;        /* entries on the free stack */
	uint64_t free_kva;     /* KVA of the free stack (uint64_t frame indices) */
	uint64_t refs_kva;     /* KVA of the reference counts (uint32_t per frame) */
	uint64_t cow_faults;   /* copy-on-write faults the stub resolved */
	uint64_t in_use;       /* frames with a non-zero count */
	uint64_t multi;        /* several vCPUs: the stub leaves every fault to the host (its in-place
				  table edits and the pool's free stack are safe with one vCPU only) */
	uint64_t lazy_tables;  /* page tables are pool frames, shared at lwc_create, copied on write */
	uint64_t table_copies; /* shared tables the stub copied */
	uint64_t cr3_noflush;  /* VMLWC_CR3_NOFLUSH with PCIDs, else 0 */
	uint64_t root_tree;    /* the root lwC's current PML4: its COW faults copy out */
};

/*
 * An entry of a table that a copy now shares (lazy tables): a table below becomes shared
 * (W off, STBL), a private writable page copy-on-write; 0 for an empty entry. The stub and the
 * host both copy shared tables and must mark them alike.
 */
static inline uint64_t vmlwc_shared_entry(uint64_t e, int level)
{
	if (level > 0 && (e & (1 | VMLWC_PTE_LAZY)) == VMLWC_PTE_LAZY) /* every page below, as a leaf would be */
		return (!(e & VMLWC_PTE_SHARED) && (e & (2 | VMLWC_PTE_COW))) ? (e & ~2UL) | VMLWC_PTE_COW : e;
	if (level > 0)
		return (e & 1) ? (e & ~2UL) | VMLWC_PTE_STBL : 0;
	if (!(e & (1 | VMLWC_PTE_PROTNONE)))
		return 0;
	if (!(e & VMLWC_PTE_SHARED) && (e & (2 | VMLWC_PTE_COW)))
		e = (e & ~2UL) | VMLWC_PTE_COW;
	return e;
}

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

_Static_assert(__builtin_offsetof(struct vmlwc_vcpu_shared, scratch_rsp) == VMLWC_SH_SCRATCH, "asm");
_Static_assert(__builtin_offsetof(struct vmlwc_vcpu_shared, kstack_top) == VMLWC_SH_KSTACK, "asm");
_Static_assert(VMLWC_GATE_VA + VMLWC_GATE_PAGES * 0x1000 < 0x80000000UL, "gate window addressable as imm32");
_Static_assert(VMLWC_GATE_SW_INT3 + 1 == VMLWC_GATE_SW_RESUME, "the switch int3 returns to the resume code");
_Static_assert(VMLWC_SW_SELF + 4 == 0x1000, "switch table fills one page");
_Static_assert((VMLWC_GATE_XZERO & 63) == 0 && VMLWC_GATE_XZERO + 576 <= 0x1000, "XSAVE area in the gate page");
_Static_assert(sizeof(struct vmlwc_iret_frame) == 40, "iret frame");
_Static_assert(sizeof(struct vmlwc_fault_stack) == 64, "fault stack");
_Static_assert(sizeof(struct vmlwc_pf_stack) == 56, "pf stack");
_Static_assert(__builtin_offsetof(struct vmlwc_cr3_frame, f) == 8, "cr3 frame");
_Static_assert(sizeof(struct vmlwc_tss) == 104, "tss");
_Static_assert(VMLWC_VCPU_TSS_OFF + sizeof(struct vmlwc_tss) <= 0x1000, "tss in page 0");
_Static_assert(VMLWC_VCPU_FRAMEB_OFF + sizeof(struct vmlwc_cr3_frame) <= VMLWC_FAULT_ON_KSTACK,
	       "frame B below every frame in use");
_Static_assert(VMLWC_VCPU_AREA_OFF + VMLWC_MAX_VCPUS * VMLWC_VCPU_AREA_SIZE <= VMLWC_STUB_SPAN,
	       "vCPU areas inside the stub window");
_Static_assert(VMLWC_STUB_MAX <= VMLWC_VCPU_AREA_OFF, "stub image below vCPU areas");
_Static_assert(VMLWC_PHYSMAP_KVA + VMLWC_LIB_GPA > VMLWC_PHYSMAP_KVA &&
	       VMLWC_PHYSMAP_KVA + VMLWC_LIB_GPA < VMLWC_STUB_KVA, "library window inside the direct map");
_Static_assert(VMLWC_DOORBELL_GPA < VMLWC_LIB_GPA, "doorbell in block 0, below the library");
_Static_assert(sizeof(struct vmlwc_vcpu_shared) <= VMLWC_VCPU_SCRUB_N, "scrub list after the shared fields");
_Static_assert(VMLWC_VCPU_SCRUB_LIST + VMLWC_SCRUB_MAX * 8 <= VMLWC_VCPU_GDT_OFF, "scrub list before the GDT");
/* The stub's table of fast-switch CR3s: one row per lwC (1 + id), one entry per vCPU. */
_Static_assert(VMLWC_MAX_VCPUS * 8 == (1 << VMLWC_CR3_OF_ROW_SHIFT), "the stub indexes rows with a shift");
_Static_assert((VMLWC_MAX_VCPUS & (VMLWC_MAX_VCPUS - 1)) == 0, "the stub masks the vCPU index");
_Static_assert(VMLWC_VCPU_AREA_SIZE == (1 << VMLWC_VCPU_SHIFT), "the stub finds its vCPU from its kernel stack");
_Static_assert(((VMLWC_STUB_KVA + VMLWC_VCPU_AREA_OFF) >> VMLWC_VCPU_SHIFT) % VMLWC_MAX_VCPUS == 0,
	       "vCPU 0's area gives index 0");
_Static_assert(VMLWC_PRIV_SLOTS + VMLWC_MAX_VCPUS * VMLWC_PRIV_SLOT_SIZE <= 4096, "the slots fit the private page");
_Static_assert(VMLWC_PRIV_SLOT_SIZE == (1 << VMLWC_PRIV_SLOT_SHIFT), "the gate indexes slots with a shift");
#endif
#endif
