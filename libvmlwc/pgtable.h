/* Guest page tables: persistent trees, transactions, lazy entries, fork (pgtable.c). */
#ifndef VMLWC_PGTABLE_H
#define VMLWC_PGTABLE_H

#include "base.h"
#include "vmlwc_ptwalk.h"

struct vcpu;

#define PTE_P (1UL << 0)
#define PTE_W (1UL << 1)
#define PTE_U (1UL << 2)
#define PTE_A (1UL << 5)
#define PTE_D (1UL << 6)
#define PTE_PS (1UL << 7)
#define PTE_G (1UL << 8)
#define PTE_NX (1UL << 63)
#define PTE_ADDR VMLWC_PT_ADDR

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
int pt_txn_set(struct pt_txn *t, uint64_t va, uint64_t len, uintptr_t hva, uint64_t flags); /* 0 or -errno */
int pt_txn_set_zero(struct pt_txn *t, uint64_t va, uint64_t len, uint64_t flags); /* the zero frame, referenced; 0 or -errno */
int pt_is_lazy(uint64_t e);                  /* 1: a lazy entry (VMLWC_PTE_LAZY), a span mapped by its flags; else 0 */
/* va's leaf, or the lazy entry above it; *next: where the stretch of like entries va lies in ends */
uint64_t pt_span(gpa_t root, uint64_t va, uint64_t *next);

gpa_t pt_txn_commit(struct pt_txn *t); /* the new root (the old one if nothing changed); never fails */
int pt_txn_protect(struct pt_txn *t, uint64_t va, uint64_t len, uint64_t flags, int alone); /* 0 or -errno */
int pt_txn_set_leaf(struct pt_txn *t, uint64_t va, uint64_t pte); /* raw; no reference changes; 0 or -errno */
uint64_t pt_leaf(gpa_t root, uint64_t va);   /* raw 4 KiB leaf entry (present or not; what a lazy one stands for), 0 if none */
gpa_t pt_leaf_table(gpa_t root, uint64_t va); /* the table holding va's leaf; GPA_NONE if shared or none */
int pt_path_shared(gpa_t root, uint64_t va); /* 1: the walk to va crosses a shared table; else 0 */
int pt_txn_own_path(struct pt_txn *t, uint64_t va); /* the txn's own tables down to va (lazy ones built); 0 or -errno */
uint64_t pt_lookup(gpa_t root, uint64_t va);     /* leaf entry (4K or 2M), 0 when absent or lazy */
int pt_init_kernel(void);                        /* build the shared kernel half; 0 or -errno */
int pt_kernel_map(uint64_t kva, uintptr_t hva, uint64_t len, uint64_t flags); /* init only; 0 or -errno */
gpa_t pt_new_root(void);                         /* an empty user half over the kernel half; GPA_NONE: no page */
uint64_t pt_prot_flags(int prot);                /* PROT_* -> leaf flags, 0 for PROT_NONE */
size_t pt_pages_used(void); /* never fails */
size_t pt_pages_free(void); /* never fails */
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
int pt_fork(gpa_t root, gpa_t *new_parent, gpa_t *child, const struct pt_fork_ops *ops, void *arg); /* 0 or -errno */
void pt_root_tag_set(gpa_t root, uint64_t tag); /* a fresh root only: a word the host reads back */
uint64_t pt_root_tag(gpa_t root); /* never fails */

/*
 * g_vm.pt: the page-table module's state. kernel_root, tdp and lazy_tables are set at init and
 * read-only after (no lock); page_gen, gen_counter and host_table_copies are shared
 * between vCPUs: under vm_lock.
 */
struct pt_state {
	uint32_t *page_gen;           /* per arena page: the generation of the transaction that made it */
	uint32_t gen_counter;         /* the last generation handed out (starts at 1) */
	gpa_t kernel_root;            /* the kernel half every root shares */
	int tdp;                      /* two-dimensional paging: page-table pages may be reused */
	int lazy_tables;              /* user tables are pool frames, shared at lwc_create (tdp only) */
	uint64_t host_table_copies;   /* shared tables copied on the host (counter for vmlwc_stats) */
};

#endif
