/* Internal interfaces shared by the host-side files of libvmlwc. */
#ifndef VMLWC_INTERNAL_H
#define VMLWC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/kvm.h>

#include "vmlwc.h"
#include "vmlwc_abi.h"

struct lwc;
struct vcpu;

/* Guest addresses are plain integers so the host cannot dereference one by accident. */
typedef uint64_t gva_t;
typedef uint64_t gpa_t;
#define GPA_NONE ((gpa_t)-1)

#define PAGE_SIZE 4096UL
#define PAGE_ALIGN_DOWN(x) ((uint64_t)(x) & ~(PAGE_SIZE - 1))
#define PAGE_ALIGN_UP(x) (((uint64_t)(x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
#define USER_TOP 0x7ffffffff000UL /* first address above the last user page */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- configuration: environment variables, read once (config.c) ---- */
struct config {
	int trace;              /* VMLWC_TRACE */
	int eager_tables;       /* VMLWC_EAGER_TABLES: copy page tables whole at lwc_create */
	int no_pcid;            /* VMLWC_NO_PCID */
	int test_hooks;         /* VMLWC_TEST_HOOKS=1: the VMLWC_TEST_* hooks below and private test calls */
	int test_shadow_paging; /* VMLWC_TEST_SHADOW_PAGING: behave as under shadow paging */
	uint32_t test_gen_start;/* VMLWC_TEST_GEN_START: page-table generations start near the wrap */
	unsigned test_maxphy;   /* VMLWC_TEST_MAXPHY: a narrower guest MAXPHYADDR than KVM offers */
	const char *test_deny_cap; /* VMLWC_TEST_DENY_CAP: act as if KVM lacked this capability */
	int test_no_xsave;      /* VMLWC_TEST_NO_XSAVE: as if ring 3 could not use XSAVE (the FXRSTOR path) */
	int test_pvm;           /* VMLWC_TEST_PVM: every PVM path (`syscall` made to look as if it stayed at CPL 3) */
};
void config_read(struct config *c, unsigned flags); /* flags: vmlwc_config's VMLWC_F_* */

/* ---- init-time error reporting (errors.c) ---- */
int err_set(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- library-owned memory (arena.c) ---- */
#define ARENA_FREE_CLASSES 8
struct arena {
	uintptr_t base;
	size_t size;
	size_t used;    /* bump pointer */
	size_t in_use;  /* pages handed out and not freed */
	void *free[ARENA_FREE_CLASSES]; /* freed runs of 1..8 pages, linked through their first word */
	void *runs;     /* freed larger runs, address order, merged, pages given back to the host */
	void *objs[3];  /* free small objects of 64, 128, 256 bytes */
	size_t nobjs;   /* small objects handed out */
};
int arena_init(struct arena *a, size_t bytes); /* whole 1 GiB blocks, 1 GiB aligned */
void arena_fini(struct arena *a);
void *arena_pages(struct arena *a, size_t npages); /* zeroed; NULL when exhausted */
void arena_free(struct arena *a, void *p, size_t npages); /* any run; not for page-table pages */
void arena_free_small(struct arena *a, void *p, size_t npages); /* 1..ARENA_FREE_CLASSES pages */
size_t arena_in_use(const struct arena *a);
void *arena_obj_alloc(struct arena *a, size_t size); /* zeroed, at most 256 bytes; NULL when exhausted */
void arena_obj_free(struct arena *a, void *p, size_t size);
int arena_overlaps(const struct arena *a, uintptr_t start, size_t len);

/* ---- memslots and GPA <-> HVA (memmap.c) ---- */
#define MEMMAP_BLOCK_SHIFT 30
#define MEMMAP_MAX_BLOCKS 1024
struct memblock {
	uintptr_t hva;
	gpa_t gpa;
};
struct memmap_state {
	struct memblock blocks[MEMMAP_MAX_BLOCKS]; /* sorted by hva */
	unsigned short by_gpa[MEMMAP_MAX_BLOCKS];  /* indices sorted by gpa */
	unsigned nblocks;
	unsigned nslots;  /* memslot ids handed out */
	gpa_t lib_end;   /* end of the library window [VMLWC_LIB_GPA, lib_end); 0 before it exists */
	uintptr_t lib_hva; /* where the library window starts on the host (it is linear) */
	gpa_t gpa_limit; /* 2^MAXPHYADDR */
};
/* 0, or -ENOSPC with *why naming the rule a library window of lib_bytes breaks at maxphy */
int memmap_layout_check(unsigned maxphy, uint64_t lib_bytes, const char **why);
/* The library window; its memslots leave out [hole_lo, hole_hi) (page-table chunks); 0 or -errno */
int memmap_library(uintptr_t hva, size_t len, uintptr_t hole_lo, uintptr_t hole_hi, const char **why);
int memmap_slot_set(unsigned slot, gpa_t gpa, uintptr_t hva, uint64_t size); /* 0 or -errno; size 0 deletes */
unsigned memmap_slot_reserve(unsigned n); /* n memslot ids for another module; the first */
int memmap_ensure(uintptr_t hva, size_t len);   /* application memory; 0 or -errno */
gpa_t gpa_of(uintptr_t hva);                     /* GPA_NONE when outside every block */
uintptr_t hva_of(gpa_t gpa);                     /* 0 when outside every block */
unsigned memmap_nblocks(void);
unsigned memmap_slots_free(void);

/* ---- page-table pages: chunks with their own memslots, recycled safely (ptpage.c) ---- */
#define PTPAGE_CHUNK (2UL << 20)
struct ptpage_state {
	uintptr_t base;       /* the region in the arena */
	gpa_t gpa_lo, gpa_hi; /* and in guest-physical space */
	unsigned nchunks, cur, dirty_hint;
	unsigned nclean;      /* freed pages known clean, in all chunks */
	unsigned first_slot;  /* memslot of chunk 0 */
	int shadow;           /* KVM may shadow freed pages: they are dirty until recycled or scrubbed */
	int recycle;          /* deleting a chunk's memslot zaps only its shadows */
	void *chunks;         /* struct ptchunk[nchunks] */
	uint32_t *refs;       /* per page: the tables that point to it (1 for a root) */
	uint8_t *unsealed;    /* per page: copied while still used elsewhere (see pgtable.c) */
	size_t live;
	uint64_t recycles;
	uint64_t allocs;      /* pages handed out, ever */
	uint64_t reclaimed;   /* freed pages made clean again (a chunk recycled or the stub's scrub) */
};
int ptpage_init(uintptr_t base, size_t len, unsigned first_slot, int shadow); /* 0 or -errno */
gpa_t ptpage_alloc(void);      /* a zeroed page KVM shadows nothing of, one reference; or GPA_NONE */
void ptpage_ref(gpa_t g);
void ptpage_unref(gpa_t g);    /* the last reference frees it */
int ptpage_refcount(gpa_t g);
void ptpage_unseal(gpa_t g);
int ptpage_unsealed(gpa_t g);
size_t ptpage_live(void);
int ptpage_owns(gpa_t g);
void ptpage_scrubbed(gpa_t g); /* the stub's scrub made KVM drop its shadows */
gpa_t ptpage_dirty_next(void); /* a freed page for the scrub, GPA_NONE if none */
uint64_t ptpage_recycles(void);
uint64_t ptpage_touched(void); /* pages of the region ever handed out: bounded when pages are reused */

/* ---- guest page tables (pgtable.c) ---- */
#define PTE_P (1UL << 0)
#define PTE_W (1UL << 1)
#define PTE_U (1UL << 2)
#define PTE_A (1UL << 5)
#define PTE_D (1UL << 6)
#define PTE_PS (1UL << 7)
#define PTE_G (1UL << 8)
#define PTE_NX (1UL << 63)
#define PTE_ADDR 0x000ffffffffff000UL

/*
 * Page tables are persistent: a page any CR3 may have reached is never written by the host
 * (a shadow-paging hypervisor would keep stale shadows). A transaction copies the path to
 * every entry it changes into fresh pages and yields a new root for the stub to load.
 */
#define PT_TXN_RETIRE 32
struct pt_txn {
	gpa_t root;      /* current root; a fresh copy once something changed */
	uint32_t gen;    /* pages stamped with this generation are fresh in this txn */
	int changed;
	int nx_ok;       /* EFER.NXE set: NX may be used */
	int nretired;    /* pages this txn replaced (freed once no CR3 can reach them) */
	gpa_t retired[PT_TXN_RETIRE];
};
void pt_txn_begin(struct pt_txn *t, gpa_t root);
/* Map [va, va+len) to host memory at hva (page-aligned) with leaf flags, or unmap (flags 0). */
int pt_txn_set(struct pt_txn *t, uint64_t va, uint64_t len, uintptr_t hva, uint64_t flags);
int pt_txn_set_zero(struct pt_txn *t, uint64_t va, uint64_t len, uint64_t flags); /* the zero frame, referenced */
int pt_is_lazy(uint64_t e);                  /* a lazy entry (VMLWC_PTE_LAZY): a span mapped by its flags */
/* va's leaf, or the lazy entry above it; *next: where the stretch of like entries va lies in ends */
uint64_t pt_span(gpa_t root, uint64_t va, uint64_t *next);

gpa_t pt_txn_commit(struct pt_txn *t);
int pt_txn_protect(struct pt_txn *t, uint64_t va, uint64_t len, uint64_t flags, int alone);
int pt_txn_set_leaf(struct pt_txn *t, uint64_t va, uint64_t pte); /* raw; no reference changes */
uint64_t pt_leaf(gpa_t root, uint64_t va);   /* raw 4 KiB leaf entry (present or not; what a lazy one stands for), 0 if none */
gpa_t pt_leaf_table(gpa_t root, uint64_t va); /* the table holding va's leaf; GPA_NONE if shared or none */
int pt_path_shared(gpa_t root, uint64_t va); /* the walk to va crosses a shared table */
int pt_txn_own_path(struct pt_txn *t, uint64_t va); /* the txn's own tables down to va (lazy ones built); 0 or -errno */
/* ---- what one lwC sees (view.c) ---- */
/* Commit for an lwC: its new root, and the replaced pages freed when safe (v running it, or now). */
void view_commit(struct pt_txn *t, struct lwc *l);
int view_own_path(struct lwc *l, uint64_t va);    /* l's own copies of the shared tables on it, if any; 0 or -errno */
int view_materialize(struct lwc *l, uint64_t va); /* build l's tables where a lazy entry covers va: 1, 0, -errno */
void lwc_publish(struct lwc *l);                  /* the stub's CR3 for fast switches into l */
uint64_t pt_lookup(gpa_t root, uint64_t va);     /* leaf entry (4K or 2M), 0 when absent or lazy */
int pt_init_kernel(void);                        /* build the shared kernel half */
int pt_kernel_map(uint64_t kva, uintptr_t hva, uint64_t len, uint64_t flags); /* init only */
gpa_t pt_new_root(void);                         /* an empty user half over the kernel half */
uint64_t pt_prot_flags(int prot);                /* PROT_* -> leaf flags, 0 for PROT_NONE */
size_t pt_pages_used(void);
size_t pt_pages_free(void);
void pt_page_free(gpa_t g);
int pt_scrub_next(struct vcpu *v); /* at an exit: batch for the stub's scrub, 0 if none */
void pt_destroy(gpa_t root, void (*leaf)(uint64_t pte));   /* user half: leaves, then tables */
#define PT_FORK_COPY 0
#define PT_FORK_SHARE 1
#define PT_FORK_UNMAP 2
#define PT_FORK_OWN 3   /* each tree has its own page here: the child's entry from own() */
struct pt_fork_ops {
	int (*classify)(uint64_t va, void *arg);  /* PT_FORK_* of a present leaf */
	uint64_t (*own)(uint64_t va, void *arg);  /* the child's entry for a PT_FORK_OWN page */
	int (*plain)(uint64_t va, uint64_t len, void *arg); /* nothing but copies below: may share */
	void (*ref)(uint64_t pte);                /* once per new leaf entry */
	uint64_t parent_tag, child_tag;           /* pt_root_tag_set of the new roots */
};
/* lwc_create: new roots for parent and child; subtrees no spec touches are shared when lazy,
   else copied with private pages COW; the old tree keeps its references until destroyed */
int pt_fork(gpa_t root, gpa_t *new_parent, gpa_t *child, const struct pt_fork_ops *ops, void *arg);
void pt_root_tag_set(gpa_t root, uint64_t tag); /* a fresh root only: a word the host reads back */
uint64_t pt_root_tag(gpa_t root);

/* ---- frame pool (pool.c) ---- */
int pool_init(size_t bytes);
void pool_ref(uint64_t pte);     /* no-op for frames outside the pool */
void pool_unref(uint64_t pte);
gpa_t pool_alloc(void);
int pool_refcount(uint64_t pte); /* -1 outside the pool */
uint64_t pool_in_use(void);
size_t pool_frames_free(void);

/* ---- copy-on-write breaks on the host (cow.c) ---- */
int cow_break(struct lwc *l, uint64_t va);
/* The entry that ends a COW fault on va in l's own (unshared) table, the page copied; 0 if
   the fault needs cow_break (a table on the way is shared), -errno on failure. */
int cow_prepare(struct lwc *l, uint64_t va, gpa_t *table, uint64_t *entry);
int mem_shared_elsewhere(struct lwc *l, uint64_t va, uint64_t len); /* another lwC maps host [va, va+len) */
int mem_identity(uint64_t e, uint64_t a);    /* entry e (leaf or lazy) maps the host memory at a */
int mem_shared_at(struct lwc *l, uint64_t a, uint64_t end, uint64_t *stop); /* at a; *stop: until where */
int mem_copy_out(struct lwc *l, uint64_t va, int keep_shared); /* the others get a copy of host page va */
struct pt_txn;
int mem_zero_view(struct lwc *l, struct pt_txn *t, uint64_t va); /* l's page reads as zeros */

#define VMLWC_LWC_TRAPPED_CALL (-4096 - 1) /* lwc_call: the call went to the caller's monitor */

/* ---- resource specs (lwc_host.c) ---- */
#define MAX_SPECS 64
struct spec_set {
	struct lwc_rspec s[MAX_SPECS];
	int n;
	struct lwc *child; /* lwc_create: whose own pages the child's tree gets */
};

/* ---- rights of lwC descriptors (rights.c) ---- */
void rights_aux_ref(uint32_t aux, int delta); /* fdtab hook */
unsigned rights_syscall(unsigned mask);       /* the rights lwc_syscall needs for a mask */
int rights_for_creator(const struct spec_set *ss, int *rights, uint32_t *aux); /* 0 or -errno */
int rights_restrict(int old, uint32_t old_aux, const struct spec_set *ss, int *rights, uint32_t *aux);
int rights_may_overlay(int rights, uint32_t aux, const struct spec_set *ss); /* 0 or -EPERM */
void rights_aux_unused(uint32_t aux);         /* free a set no entry took */

/* ---- lwCs, host side (lwc_host.c) ---- */
struct lwc;
struct fdtab;
int lwc_trap_syscall(struct vcpu *v); /* a trapped lwC's syscall: switch to its monitor */
struct lwc *lwc_root_new(void);
void lwc_set_root(struct lwc *l, gpa_t root);
uint64_t lwc_cr3(const struct lwc *l); /* what CR3 holds while l runs (root, PCID) */
void lwc_load_on_return(struct vcpu *v, struct lwc *l); /* v's return to ring 3 loads l's tree */
int lwc_map_own_pages(struct lwc *l, struct pt_txn *t); /* its private pages of the gate window */
void lwc_attach_fds(struct lwc *l, struct fdtab *t); /* l uses descriptor table t */
uint64_t lwc_switch_count(void);       /* switches since init, fast and through the host */
struct lwc *lwc_by_cr3(uint64_t cr3);  /* the lwC whose tree CR3 holds, NULL if none */
void lwc_reap(void);                   /* free lwCs nothing refers to that left their vCPU; collect if due */
void lwc_collect_now(void);            /* free unreachable cycles of lwCs now (resources short, counts asked) */
int lwc_call_doorbell(struct vcpu *v); /* an lwC call rung on the doorbell (PVM) */
void lwc_init(void);

/* ---- descriptor shadow (fdtab.c) ---- */
struct fdtab;
/* What the layer above learns of a table: a slot's entry changed, an lwC entry was dropped. */
void fdtab_set_hooks(void (*changed)(struct fdtab *t, unsigned g, int32_t old, int32_t now),
		     void (*lwc_dropped)(unsigned id), void (*aux_ref)(uint32_t aux, int delta));
/*
 * Tables grow on demand up to RLIMIT_NOFILE. A host fd in a table is held by reference: the
 * table takes the caller's reference when it installs one, copies take one more, and the last
 * entry that drops it closes it.
 */
struct fdtab *fdtab_new(unsigned slots);         /* slots: a size hint */
struct fdtab *fdtab_clone(const struct fdtab *t, unsigned *nlwc); /* no hooks; lwC references are the caller's */
int fdtab_get(const struct fdtab *t, long gfd);  /* host fd, or -EBADF */
int fdtab_install(struct fdtab *t, int hfd, int cloexec); /* lowest free guest fd, or -EMFILE */
int fdtab_install_at(struct fdtab *t, long gfd, int hfd);  /* replaces (dropping) an old entry; -EBADF above the limit */
int fdtab_close(struct fdtab *t, long gfd);      /* 0 or -EBADF */
int fdtab_min_free(struct fdtab *t, long from);  /* grows the table for it; -EMFILE at the limit */
int fdtab_guest_of(const struct fdtab *t, int hfd); /* reverse lookup, -1 when absent */
unsigned fdtab_cap(const struct fdtab *t);       /* RLIMIT_NOFILE: descriptors stay below it */
void fdtab_limit_changed(void);                  /* RLIMIT_NOFILE may have changed: read it again */
unsigned fdtab_used(const struct fdtab *t); /* no slot at or above it has held anything */
int fdtab_is_cloexec(const struct fdtab *t, long gfd);
void fdtab_set_cloexec(struct fdtab *t, long gfd, int on);
void fdtab_free(struct fdtab *t);
unsigned fdtab_host_fds(void);                   /* host fds the tables hold */
void **fdtab_users(struct fdtab *t);             /* a list head the layer above keeps (who uses t) */
int fdtab_raw(const struct fdtab *t, long gfd);          /* raw entry, VMLWC_FD_NONE if none */
int fdtab_set_lwc(struct fdtab *t, long gfd, int raw, uint32_t aux); /* an lwC entry (its rights changed) */
uint32_t fdtab_aux(const struct fdtab *t, long gfd);    /* an lwC entry's aux word (its restriction), 0 if none */
int fdtab_copy_entry(struct fdtab *t, long gfd, const struct fdtab *from, long fg); /* one more reference */
int fdtab_lwc(const struct fdtab *t, long gfd, int *rights); /* lwC id, or -EBADF */
int fdtab_install_lwc(struct fdtab *t, unsigned id, int rights, uint32_t aux);
void fdtab_close_all(struct fdtab *t);  /* leaves share groups; closes what it alone holds */
void fdtab_leave(struct fdtab *t, long gfd); /* the slot becomes t's own, empty */
int fdtab_share_slot(struct fdtab *from, struct fdtab *to, long gfd); /* to's slot gfd joins from's */
int fdtab_linked(const struct fdtab *t, long gfd, const struct fdtab *other); /* same slot gfd */

/* ---- syscall descriptors (kinds in sys/sys.h) ---- */
struct sys_arg {
	unsigned char kind;
	unsigned char flags;
	unsigned short size;
};
struct sys_call;
typedef long (*sys_fn)(struct sys_call *c);
struct sys_desc {
	const char *name;
	sys_fn fn;                 /* custom handler; NULL = generic executor with .arg */
	struct sys_arg arg[6];
	unsigned char ret;
	unsigned char cloexec_arg; /* R_FD: 1 + index of a flags argument holding O_CLOEXEC-like bit */
	unsigned char whole;       /* changes the whole process (limits, timers, scheduling): the root lwC's alone */
	unsigned char umask;       /* may create a file: runs under the calling lwC's umask */
	long cloexec_bit;
};
#define SYS_NR_MAX 512

/* struct sigaction as the kernel's x86-64 rt_sigaction takes it */
struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/* ---- working directory and umask per lwC (fsctx.c) ---- */
struct fsctx;
struct fsctx *fsctx_for_child(const struct lwc *creator); /* one more reference; NULL: no memory */
void fsctx_put(struct fsctx *f);
const char *fsctx_cwd(const struct lwc *l);   /* NULL: the process's (the root's) */
int fsctx_umask(const struct lwc *l);         /* -1: the process's */
int fsctx_set(struct lwc *l, const char *cwd, int umask); /* cwd NULL or umask -1: unchanged; 0 or -ENOMEM */
void fsctx_root_changed(void);                /* the root's chdir or umask: later copies see it */

/* ---- signal dispositions per lwC (sigtab.c) ---- */
#define SIGTAB_N 65
struct sigtab;
struct lwc;
struct sigtab *sigtab_for_child(const struct lwc *creator); /* one more reference; NULL: no memory */
void sigtab_put(struct sigtab *t);
const struct ksigaction *sigtab_act(const struct lwc *l, int sig);
int sigtab_set(struct lwc *l, int sig, const struct ksigaction *a); /* 0, or -1: no memory */

/* ---- the credential shadow (cred.c) ---- */
#define CRED_MAX_GROUPS 64
struct cred {
	uint32_t uid[3];      /* real, effective, saved */
	uint32_t gid[3];
	int ngroups;
	uint32_t groups[CRED_MAX_GROUPS];
	int refs;             /* lwCs sharing it (LWC_CRED | LWC_SHARE) */
};
int cred_init(struct cred *c);
long cred_apply(const struct cred *c);
struct cred *cred_new(const struct cred *from);
void cred_put(struct cred *c);

/* ---- lightweight contexts ---- */
struct lwc {
	struct vmlwc_lwc s;   /* the stub's view (root, id); first, so its KVA is the lwC's */
	gpa_t root;           /* PML4 of this lwC's address space (s.root follows it) */
	int state;            /* VMLWC_LWC_* */
	int refs;             /* descriptors that refer to it */
	int pcid_clean;       /* its PCID holds no entry of an older tree: loads may keep the TLB */
	int zombie;           /* nothing refers to it, but a vCPU still runs it: freed when it leaves */
	struct vcpu *on;      /* the vCPU that last ran it (single vCPU: the one running it) */
	int limited;          /* lwc_limit_syscalls: only the syscalls in allow[] reach the host */
	int trap_to;          /* LWC_TRAP_SYSCALL: 1 + id of the creator its syscalls go to */
	struct sigtab *sigtab; /* its signal dispositions; NULL for the root (g_vm.guest_act) */
	struct fsctx *fsctx;   /* its working directory and umask; NULL for the root (the process's) */
	uint64_t sigmask;      /* its blocked signals (not the root's: the root's are the vCPU thread's) */
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
	uint32_t *swtab;      /* its switch table page (VMLWC_SWTAB_VA) */
	uint64_t brk_start;   /* initial program break, for brk bounds */
	uint64_t brk_cur;     /* current program break as this lwC's page table knows it */
};

struct vcpu;
typedef int (*exit_fn)(struct vcpu *v);  /* 0: resume the guest */
typedef int (*hypercall_fn)(struct vcpu *v);
#define MAX_EXIT 64

/* ---- entering (enter_x86_64.S) ---- */
struct enter_ctx {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
	uint64_t fcw, mxcsr;
	uint64_t fs_base, gs_base;
};

/* ---- the VM and its vCPUs (kvm.c, cpu_x86_64.c) ---- */
struct vcpu {
	int index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	int stats_fd;
	uint64_t stat_off_exits, stat_off_insns; /* byte offsets in the stats data, -1 if absent */
	uintptr_t area;       /* HVA of the per-vCPU area */
	uint64_t area_kva;
	struct lwc *lwc;
	gpa_t pending_cr3;    /* root the stub must load before returning to ring 3 */
	int test_fault_pending; /* the frame was pointed into ring 0 by a test hook */
	int cpuid_set;          /* KVM_SET_CPUID2 done */
	int via_doorbell;       /* this exit came from ring 3 (a doorbell), not through the stub */
	uint64_t resume_rip, resume_rflags; /* an lwC call resumes there instead (0: where it was) */
	uint64_t call_rip, call_rflags;     /* where the lwC call in progress returns */
	int set_rsp;            /* frame_return_to_user also sets rsp to new_rsp */
	uint64_t new_rsp;
	gpa_t deferred_tree;   /* page tables replaced whole: freed once the new root is loaded */
	int nscrubbing;         /* pages handed to the stub's scrub on the last return */
	gpa_t scrubbing[VMLWC_SCRUB_MAX];
	int ndeferred;         /* single pages replaced by transactions, freed likewise */
	gpa_t deferred[256];
	uint64_t nexits, nhypercalls, nsyscalls, npagefaults;
	void *host_stack;
	size_t host_stack_size;
	char *bounce;         /* per-vCPU bounce area for non-contiguous guest buffers */
	size_t bounce_size;
	int tid;
};

struct vm {
	int kvm_fd, vm_fd;
	uint64_t gate_flags;  /* VMLWC_GF_*: what the gate page's flags say (set once at init) */
	int run_size;
	unsigned max_memslots;
	unsigned maxphy;              /* guest MAXPHYADDR */
	struct kvm_cpuid2 *cpuid;     /* what the guest sees */
	int has_xsave, has_pge, has_nx, has_fsgsbase, has_pcid, has_smep, has_smap;
	/* what the platform probe found (probe.c) */
	int syscall_cpl3;             /* PVM: a ring-3 `syscall` stays at CPL 3 (ring 0 is emulated) */
	int fsgsbase_user;            /* ring 3 can rdfsbase/wrfsbase */
	uint64_t xcr0_user;           /* XCR0 as ring 3 sees it (0: no xgetbv at ring 3) */
	int host_cow;                 /* copy-on-write and table copies on the host, not in the stub */
	int pcid;                     /* CR4.PCIDE: each lwC's tree is loaded with PCID id + 1 */
	uint64_t cr4_refused;         /* CR4 bits the CPUID offered but KVM_SET_SREGS refused */
	uint64_t xcr0;
	int has_tsc_attr;
	struct arena arena;
	/* stub symbols */
	uint64_t stub_syscall, stub_cr3_tramp, stub_scrub_tramp, stub_idt, stub_vectors;
	/* page-table pages waiting for the stub's scrub before reuse (shadow paging) */
	size_t stub_size;             /* bytes of arena used by the image */
	gpa_t kernel_pml4e[512];      /* kernel-half PML4 entries shared by every root */
	struct vcpu *vcpus[VMLWC_MAX_VCPUS];
	unsigned nvcpus;
	struct lwc *root_lwc;
	int trace_fd;                 /* private dup of stderr, or -1 */
	uint64_t protect_lo[VMLWC_MAX_VCPUS + 8], protect_hi[VMLWC_MAX_VCPUS + 8]; /* library-owned host ranges besides the arena */
	unsigned nprotect;
	uint64_t pin_lo[32], pin_hi[32]; /* host code the guest sees but may not remap */
	unsigned npin;
	int pid;
	uint64_t proc_dev, anon_dev; /* st_dev of procfs and of anonymous inodes (KVM objects) */
	char *view_buf;       /* policy_fd_view's buffers: arena pages, never an lwC's memory */
	int live;
	struct config cfg;       /* environment, read once at init */
	int host_privileged;     /* the process can take any uid (euid 0 at init) */
	struct cred cred0;       /* credentials at init */
	struct cred cred_now;    /* what the vCPU thread runs under now */
	struct enter_ctx enter_ctx;
	long enter_err;
	struct memmap_state mm;
	struct ptpage_state ptp;
	/* pgtable.c */
	uint32_t *page_gen;
	uint32_t gen_counter;
	gpa_t kernel_root;
	size_t pt_pages;
	int tdp;                      /* two-dimensional paging: page-table pages may be reused */
	int lazy_tables;              /* user tables are pool frames, shared at lwc_create (tdp only) */
	/* the frame pool (pool.c); its header lives in the stub's data */
	struct vmlwc_pool *pool;
	uint32_t *pool_refs;
	gpa_t zero_frame;             /* a pool frame never written, with a reference never dropped */
	uint64_t pool_populated;      /* frames below it are backed by host memory */
	uint64_t *pool_free;
	uint64_t *stub_cr3_of;        /* the stub's 1 + lwC id -> CR3 of a fast switch, or 0 */
	uint64_t *stub_smap;
	uint64_t stub_pool_sym, stub_cr3_of_sym, stub_smap_sym, stub_live_sym, stub_nlive_sym, stub_pf_host,
		 stub_pte_store;
	uint64_t *stub_live, *stub_nlive;
	/* lwCs (lwc_host.c) */
	struct lwc *lwcs[VMLWC_MAX_LWCS];
	unsigned nlwcs;              /* live lwCs */
	uint64_t fd_gid_next, fd_visit_epoch; /* fdtab.c: share groups of descriptor slots (never wrap) */
	struct fdtab_state {
		uint32_t *hrefs;         /* references to each host fd from the tables */
		unsigned nhrefs, nheld;
		unsigned limit;          /* RLIMIT_NOFILE as last read */
	} fdt;
	void (*fd_changed)(struct fdtab *t, unsigned g, int32_t old, int32_t now); /* fdtab hooks */
	void (*fd_lwc_dropped)(unsigned id);
	void (*fd_aux_ref)(uint32_t aux, int delta);
	int lwc_collecting;          /* lwc_host.c: a collection of unreachable lwCs is running */
	unsigned nzombies;           /* lwCs freed once no vCPU runs them */
	unsigned sandbox_syscalls;   /* syscalls the vCPU thread's seccomp filter allows (ioctl counted once) */
	void *sandbox_prog;          /* its BPF program, built early, installed last */
	unsigned sandbox_len;
	uint64_t gc_debt;            /* references dropped to non-zero since the last collection */
	uint64_t lwc_entries;        /* lwC entries in all tables: what a collection scans */
	unsigned xsave_pages;        /* arena pages for one saved vector state */
	uint64_t lwc_creates, lwc_switches_slow, lwc_switches_dead, host_cow_faults, host_table_copies;
	/* dispatch tables */
	exit_fn exit_table[MAX_EXIT];
	void (*exit_begin)(struct vcpu *v); /* set by the ports: each guest exit, before its handler */
	long (*sys_private)(struct vcpu *v, struct lwc *l, long nr, const long a[6]); /* stats.c */
	hypercall_fn hc_table[VMLWC_NR_PORTS];
	const struct sys_desc *sys_table[SYS_NR_MAX];
	struct sys_desc sys_storage[SYS_NR_MAX];
	/* signals */
	struct ksigaction guest_act[SIGTAB_N]; /* the root lwC's dispositions: the process's */
	struct sigtab *root_sigsnap; /* a copy of them the lwCs the root creates share, until it changes one */
	struct fsctx *root_fssnap;   /* the process's working directory and umask, as the root's copies get them */
	uint64_t held_signals;
	uint8_t guest_sigaltstack[24];
};

/*
 * All mutable host state lives in this one page-aligned object, which no guest page table
 * maps: the application's memory (heap, the library's .data) is the guest's to scribble on.
 */
union vm_store {
	struct vm vm;
	char pad[(sizeof(struct vm) + 4095) & ~4095UL];
};
extern union vm_store g_vm_store;
#define g_vm (g_vm_store.vm)

int kvm_open_vm(struct vm *vm);
void kvm_close_vm(struct vm *vm);
struct vcpu *vcpu_create(struct vm *vm);
void vcpu_destroy(struct vcpu *v);
int vcpu_stats_read(struct vcpu *v, uint64_t *exits, uint64_t *insns);
long vcpu_msr(struct vcpu *v, uint32_t idx, uint64_t *val, int set);
int cpu_setup_cpuid(struct vm *vm);
int cpu_setup_vcpu(struct vm *vm, struct vcpu *v, gpa_t cr3, uint64_t fs_base, uint64_t gs_base);
void cpu_user_segments(struct kvm_sregs *s);
void cpu_kernel_segments(struct kvm_sregs *s);
void cpu_init_area(struct vm *vm, struct vcpu *v);
void cpu_fill_idt(struct vm *vm);

/* ---- the platform probe (probe.c) ---- */
int probe_platform(struct vcpu *v); /* 0, or -1 with the reason set */

/* ---- stub loader (loader.c) ---- */
int loader_load_stub(struct vm *vm);

/* Capture the caller, switch to host_stack and call fn(arg); returns 0 in the guest. */
int vmlwc_enter(struct enter_ctx *ctx, void (*fn)(void *), void *arg, void *host_stack_top);

/* ---- run loop and exits (run.c) ---- */
void exit_register(unsigned reason, exit_fn fn);
void run_init(void);
__attribute__((noreturn)) void run_loop(struct vcpu *v);
__attribute__((noreturn)) void run_die_signal(struct vcpu *v, int sig);
void run_exit_handle(struct vcpu *v); /* one exit as KVM_RUN left it in v->run (the run loop's body) */
__attribute__((noreturn)) void run_panic(struct vcpu *v, const char *why);
void run_dump(struct vcpu *v, const char *why);

/* ---- hypercalls (hypercall.c) ---- */
void hypercall_register(unsigned port, hypercall_fn fn);
int hypercall_dispatch(struct vcpu *v, unsigned port);
void hypercall_init(void);
void stats_init(void);                 /* the library's private syscalls (vmlwc_stats, counts, hooks) */
/* Rewrite the ring-3 iret frame; reload CR3 first when v->pending_cr3 is set. */
void frame_return_to_user(struct vcpu *v, uint64_t rip, uint64_t rflags);
struct vmlwc_iret_frame *frame_user(struct vcpu *v);
uint64_t user_rsp(struct vcpu *v); /* ring 3's rsp at this exit */

/* ---- guest fault handling (fault.c) ---- */
int fault_handle(struct vcpu *v);    /* the fault port */
int fault_handle_pf(struct vcpu *v); /* the lean #PF port (ring 0 emulated) */

/* ---- guest memory access (uaccess.c) ---- */
#define UA_WRITE 1
/* Translate [gva, gva+len) into at most max host segments; -EFAULT on any bad page. */
int ua_translate(struct lwc *l, gva_t gva, size_t len, int flags, struct iovec *iov, int max);
int ua_check(struct lwc *l, gva_t gva, size_t len, int flags); /* 0 or -EFAULT */
int ua_copy_in(struct lwc *l, void *dst, gva_t src, size_t len);
int ua_copy_out(struct lwc *l, gva_t dst, const void *src, size_t len);
long ua_strncpy_in(struct lwc *l, char *dst, gva_t src, size_t max); /* length, -EFAULT, -ENAMETOOLONG */
/* A host pointer for the whole range when it is contiguous on the host, else NULL. */
void *ua_direct(struct lwc *l, gva_t gva, size_t len, int flags);

/* ---- syscall redirection (sys/) ---- */
long sys_dispatch(struct vcpu *v, struct lwc *l, long nr, const long a[6]);
/* the same with another descriptor table (lwc_syscall with LWC_FILES) */
long sys_dispatch_in(struct vcpu *v, struct lwc *l, struct fdtab *fds, long nr, const long a[6]);
int lwc_allows(const struct lwc *l, long nr); /* its lwc_limit_syscalls set admits nr */
int sys_redirected(long nr);                  /* the table has a handler for nr */
unsigned sys_ioctl_requests(const unsigned **reqs); /* ioctl requests redirected ioctls pass on */

/* ---- the host thread's seccomp filter (sandbox.c) ---- */
int sandbox_build(void);   /* the filter, early in init (it allocates); 0 or -1 with the reason set */
int sandbox_install(void); /* last in init, raw syscalls only; 0 or -1 with the reason set */
void sys_init(void);
const char *sys_name(long nr);

/* ---- the root lwC (vmlwc.c) ---- */
struct root_build_ctx {
	struct pt_txn t;
	int err;
	uint64_t flags;
	uint64_t prev_end, stack_lo, stack_hi, below_stack;
};
struct procmaps_entry;
int root_map_entry(const struct procmaps_entry *e, void *arg); /* procmaps_each callback */

long vmlwc_platform_bits(void); /* VMLWC_PLAT_* */

/* ---- host-only set-up for unit tests (hostonly.c) ---- */
struct vcpu *vmlwc_hostonly_setup(void);
/* Host-only: a doorbell rung from ring 3 with the registers in v->run, handled as the run loop
   would, and the root it loads on return taken as loaded (for the fuzzing harness). */
void vmlwc_hostonly_doorbell(struct vcpu *v, unsigned off);

/* ---- what a guest may hold a descriptor to (policy.c) ---- */
void policy_init(void);
int policy_fd_allowed(int hfd); /* 0, or -EACCES: outside the allow-lists of devices and proc files */
int policy_proc_path_allowed(const char *path);
int policy_fd_view(int hfd);    /* hfd, or another fd the guest gets instead (own maps without the library) */

/* ---- protected memory ---- */
int mem_is_protected(uint64_t start, uint64_t len);
int mem_protect_add(uint64_t start, uint64_t len); /* 0, or -1 with the reason set: the list is full */
int mem_pin_add(uint64_t start, uint64_t end);     /* 0, or -1 with the reason set */
int mem_is_pinned(uint64_t start, uint64_t len);
int mem_pin_host_code(void);                      /* 0, or -1 with the reason set */
/* Calls fn on each maximal page range of [start, start+len) outside library memory. */
long mem_each_unprotected(uint64_t start, uint64_t len, long (*fn)(uint64_t a, uint64_t n, void *arg),
			  void *arg);

/* ---- tracing (trace.c) ---- */
#define g_trace (g_vm.cfg.trace)
void trace_init(void);
void trace_syscall(struct vcpu *v, const char *name, long nr, const long a[6], long ret, uint64_t ns);
void trace_msg(const char *fmt, ...);  /* async-signal-safe subset: %s %d %ld %lx %lu %p */
uint64_t trace_now_ns(void);

/* ---- host signal dispositions (sys/signal.c) ---- */
void sig_init(void);

#endif
