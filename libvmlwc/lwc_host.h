/* lwCs on the host: struct lwc, specs, lifecycle, the lwC port (lwc_host.c). */
#ifndef VMLWC_LWC_HOST_H
#define VMLWC_LWC_HOST_H

#include <linux/kvm.h>
#include "base.h"
#include "sysdesc.h"

struct vcpu;
struct pt_txn;
struct sigtab;
struct fsctx;
struct cred;

#define VMLWC_LWC_TRAPPED_CALL (-4096 - 1) /* lwc_call: the call went to the caller's monitor */

/* ---- resource specs (lwc_host.c) ---- */
#define MAX_SPECS 64
struct spec_set {
	struct lwc_rspec s[MAX_SPECS];
	int n;
	struct lwc *child; /* lwc_create: whose own pages the child's tree gets */
};

/* Stack bytes above a creation context's stack pointer kept with it: the gate's and lwc_create's frames. */
#define LWC_CREATE_FRAME 512

struct lwc {
	struct vmlwc_lwc s;   /* the stub's view (root, id); first, so its KVA is the lwC's */
	gpa_t root;           /* PML4 of this lwC's address space (s.root follows it) */
	int state;            /* VMLWC_LWC_* */
	int refs;             /* descriptors that refer to it */
	int pcid_clean;       /* its PCID holds no entry of an older tree: loads may keep the TLB */
	int zombie;           /* nothing refers to it, but a vCPU still runs it: freed when it leaves */
	struct vcpu *on;      /* a vCPU that ran it at its last exit (others may run it too: threads) */
	uint64_t ctx_mask;    /* bit i: thread i (vCPU index) has a context here (a slot of priv) or runs here */
	uint64_t serial;      /* never reused: tells this lwC from a later one with its id */
	int limited;          /* lwc_limit_syscalls: only the syscalls in allow[] reach the host */
	int trap_to;          /* LWC_TRAP_SYSCALL: 1 + id of the creator its syscalls go to */
	struct sigtab *sigtab; /* its signal dispositions; NULL for the root (g_vm.sig.guest_act) */
	struct fsctx *fsctx;   /* its working directory and umask; NULL for the root (the process's) */
	uint64_t sigmasks[VMLWC_MAX_VCPUS]; /* each thread's blocked signals here (its context's) */
	struct cred *cred;    /* its credential shadow (shared with LWC_CRED | LWC_SHARE) */
	struct kvm_regs trapped_regs; /* registers at the trapped syscall */
	uint64_t trapped_fs, trapped_gs; /* its TLS bases then */
	void *trapped_xsave;  /* its vector state then (KVM_GET_XSAVE2), one arena page */
	uint64_t fs_base, gs_base; /* as recorded by the host (arch_prctl; at entry, create, trap) */
	uint64_t allow[SYS_NR_MAX / 64];
	struct fdtab *fds;
	struct lwc *fds_next; /* the next lwC using the same table (LWC_FILES | LWC_SHARE) */
	uint64_t *priv;       /* its private page (VMLWC_PRIV_VA): resume state its gate code writes */
	int32_t *srcmap;      /* its src map page (VMLWC_SRCMAP_VA) */
	int create_src1;      /* 1 + the slot lwc_create installed for its creator (0: none): its in->src for it */
	uint32_t *swtab;      /* its switch table page (VMLWC_SWTAB_VA) */
	uint64_t brk_start;   /* initial program break, for brk bounds */
	uint64_t brk_cur;     /* current program break as this lwC's page table knows it */
	/*
	 * The creation context (not for the root): the slot, mask and stack bytes the creating
	 * thread's lwc_create left, which every thread that switches in with no context of its own
	 * starts from (the bytes written back first if a thread has entered since).
	 */
	uint64_t create_slot[VMLWC_PRIV_SLOT_SIZE / 8];
	uint64_t create_mask;
	uint64_t create_users; /* threads whose context here began at the creation context (on its stack) */
	uint32_t create_len;  /* bytes of create_frame; 0: no creation context (the root) */
	uint8_t create_frame[LWC_CREATE_FRAME];
};

struct fdtab;
int lwc_trap_syscall(struct vcpu *v); /* a trapped lwC's syscall: switch to its monitor; 0 (an exit handler: resume) */
struct lwc *lwc_root_new(void); /* NULL: no memory */
int lwc_map_own_pages(struct lwc *l, struct pt_txn *t); /* its private pages of the gate window; 0 or -errno */
void lwc_attach_fds(struct lwc *l, struct fdtab *t); /* l uses descriptor table t */
uint64_t lwc_switch_count(void);       /* switches since init, fast and through the host; never fails */
struct lwc *lwc_by_cr3(uint64_t cr3);  /* the lwC whose tree CR3 holds, NULL if none */
struct lwc *lwc_by_tag(uint64_t cr3);  /* the lwC whose tree CR3 holds or held (a replaced root), NULL if none */
uint64_t *lwc_slot(const struct lwc *l, int i); /* thread i's slot of l's private page: rsp, fs, gs */
void lwc_thread_gone(int i);           /* thread i has no context anywhere any more (its exit) */
void lwc_reap(void);                   /* free lwCs nothing refers to that left their vCPU; collect if due */
void lwc_collect_now(void);            /* free unreachable cycles of lwCs now (resources short, counts asked) */
int lwc_call_doorbell(struct vcpu *v); /* an lwC call rung on the doorbell (PVM); 0 (an exit handler: resume) */
void lwc_init(void);

/*
 * g_vm.lwc. xsave_pages is set at init, read-only after (no lock); the rest (the table, the
 * collection, the counters) is shared between vCPUs: under vm_lock.
 */
struct lwc_state {
	struct lwc *lwcs[VMLWC_MAX_LWCS];
	unsigned nlwcs;            /* live lwCs */
	struct lwc *root_lwc;
	int collecting;            /* a collection of unreachable lwCs is running */
	unsigned nzombies;         /* lwCs freed once no vCPU runs them */
	uint64_t gc_debt;          /* references dropped to non-zero since the last collection */
	uint64_t entries;          /* lwC entries in all tables: what a collection scans */
	unsigned xsave_pages;      /* arena pages for one saved vector state */
	uint64_t creates, switches_slow, switches_dead, host_cow_faults; /* counters for vmlwc_stats */
	uint64_t serials;          /* the last lwC serial given */
};

#endif
