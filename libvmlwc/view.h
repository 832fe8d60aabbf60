/* What one lwC sees of memory: its root, publication, transaction commit (view.c). */
#ifndef VMLWC_VIEW_H
#define VMLWC_VIEW_H

#include "base.h"
#include "pgtable.h"

struct lwc;
struct vcpu;

/* g_vm.view. Shared between vCPUs: under vm_lock, with the page tables. */
struct view_state {
	uint64_t freed_at_once; /* retired pages of a running lwC freed in the exit (its vCPU's list full) */
	int roots_changed;      /* an lwC's tree was replaced in this exit: other vCPUs synced before the return */
};

/* Commit for an lwC: its new root, and the replaced pages freed when safe (at the next exit if it runs, else now). */
void view_commit(struct pt_txn *t, struct lwc *l);
int view_own_path(struct lwc *l, uint64_t va);    /* l's own copies of the shared tables on it, if any; 0 or -errno */
int view_materialize(struct lwc *l, uint64_t va); /* build l's tables where a lazy entry covers va: 1, 0, -errno */
void lwc_publish(struct lwc *l);                  /* the stub's CR3 for fast switches into l */
void lwc_set_root(struct lwc *l, gpa_t root);
uint64_t lwc_cr3(const struct lwc *l); /* what CR3 holds while l runs (root, PCID); never fails */
void lwc_load_on_return(struct vcpu *v, struct lwc *l); /* v's return to ring 3 loads l's tree */

#endif
