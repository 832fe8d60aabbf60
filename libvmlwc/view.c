/* What one lwC sees of memory: its root (published to the stub, loaded on return), transactions committed for it. */
/*
 * Page tables (pgtable.c) know trees only; this is where a tree becomes an lwC's view: a
 * transaction's new root is set for the lwC and loaded on the way back to ring 3 when it runs,
 * and the pages it replaced are freed once no CR3 can reach them.
 */
#include <errno.h>

#include "base.h"
#include "die.h"
#include "lwc_host.h"
#include "pgtable.h"
#include "vcpu.h"
#include "view.h"
#include "vmlock.h"
#include "state.h"

uint64_t lwc_cr3(const struct lwc *l)
{
	return l->root | (g_vm.cpu.pcid ? l->s.id + 1 : 0);
}

/*
 * What a fast switch into l loads, in the stub's table, per thread (vCPU index): 0 sends the
 * thread's switches into l to the host (it has no context there; l trapped, unreferenced).
 * With PCIDs the no-flush bit only while l's PCID holds nothing of an older tree.
 */
void lwc_publish(struct lwc *l)
{
	uint64_t cr3 = 0, *row = &g_vm.stub.cr3_of[(l->s.id + 1) * VMLWC_MAX_VCPUS];

	if (l->state == VMLWC_LWC_READY && (l->refs > 0 || l == g_vm.lwc.root_lwc))
		cr3 = lwc_cr3(l) | (l->pcid_clean ? g_vm.pool.hdr->cr3_noflush : 0);
	for (int i = 0; i < VMLWC_MAX_VCPUS; i++)
		row[i] = (l->ctx_mask & (1UL << i)) ? cr3 : 0;
}

/* A new tree: its first load flushes the lwC's PCID. */
void lwc_set_root(struct lwc *l, gpa_t root)
{
	if (l->root && l->root != root)
		g_vm.view.roots_changed = 1; /* other vCPUs may run the old tree: synced before the return */
	l->root = l->s.root = root;
	l->pcid_clean = 0;
	if (l->s.id == 0)
		g_vm.pool.hdr->root_tree = root; /* the stub's copy-out tells the root by its tree */
	lwc_publish(l);
}

/* v returns to ring 3 in l's current tree, loaded without the no-flush bit. */
void lwc_load_on_return(struct vcpu *v, struct lwc *l)
{
	v->pending_cr3 = lwc_cr3(l);
	l->pcid_clean = 1;
	lwc_publish(l);
}

/*
 * A vCPU's list of retired pages is emptied at every IO and MMIO exit (ports_exit_begin), the
 * only exits whose handlers run transactions, and the first transaction of an exit that
 * replaces the loaded root retires it among at most PT_TXN_RETIRE pages: the loaded root always
 * finds room.
 */
_Static_assert(PT_TXN_RETIRE <= ARRAY_SIZE(((struct vcpu *)0)->deferred), "the loaded root is always deferred");

/*
 * A page retired by a transaction of the lwC v runs, with v's list full: freed now. The guest
 * is stopped in this exit, and until ring 3 runs only the kernel half is reached (the stub's
 * return and CR3 trampoline; after a doorbell nothing runs before KVM loads the new CR3),
 * whose tables no transaction replaces; ring 3 runs only on the new root, loaded with its
 * PCID flushed. Under shadow paging the page stays dirty until a later exit's scrub or its
 * chunk's recycling, as any freed table page. The one page this does not hold for is the root
 * CR3 holds now: never here (see above), and a panic rather than a stub running on a freed root.
 */
static void retired_free_now(struct vcpu *v, gpa_t g)
{
	if ((g & PTE_ADDR) == (v->run->s.regs.sregs.cr3 & PTE_ADDR))
		die_panic(v, "the loaded root retired with the vCPU's deferred list full");
	pt_page_free(g);
	g_vm.view.freed_at_once++;
}

/* g, retired while v's CR3 may still reach it: freed after the next exit (or now: above). */
static void retired_defer(struct vcpu *v, gpa_t g)
{
	if (v->ndeferred < (int)ARRAY_SIZE(v->deferred))
		v->deferred[v->ndeferred++] = g;
	else
		retired_free_now(v, g);
}

/*
 * The vCPU of this exit (the lock's holder) loads l's new tree on its return when it runs l.
 * Never another vCPU's return: with threads, the vCPUs running l are stopped and revalidated
 * from what their CR3 holds (run_sync_others) before this exit returns, and a vCPU's own idea
 * of its lwC (v->lwc) may be stale (the stub switches without exits).
 */
void view_commit(struct pt_txn *t, struct lwc *l)
{
	struct vcpu *v = vm_holder();

	if (!t->changed)
		return;
	if (!v)
		v = l->on; /* init, host-only use: one vCPU */
	lwc_set_root(l, t->root);
	if (v && v->lwc == l) {
		lwc_load_on_return(v, l);
		for (int i = 0; i < t->nretired; i++)
			retired_defer(v, t->retired[i]);
		return;
	}
	for (int i = 0; i < t->nretired; i++) {
		/*
		 * l is not the vCPU's lwC, but its old root may still be in CR3 (a switch's slow path
		 * has moved v->lwc and the target's root loads on the return; another vCPU runs it):
		 * freed after that load, or, with several vCPUs, after the exit's sync.
		 */
		if (!v || (g_vm.kvm.nvcpus <= 1 && (t->retired[i] & PTE_ADDR) != (v->run->s.regs.sregs.cr3 & PTE_ADDR)))
			pt_page_free(t->retired[i]);
		else
			retired_defer(v, t->retired[i]); /* full list: a panic for the loaded root, never a free */
	}
}

int view_own_path(struct lwc *l, uint64_t va)
{
	struct pt_txn t;
	int err;

	if (!pt_path_shared(l->root, va))
		return 0; /* already its own: no transaction, no new root */
	pt_txn_begin(&t, l->root);
	err = pt_txn_own_path(&t, va);
	view_commit(&t, l);
	return err;
}

int view_materialize(struct lwc *l, uint64_t va)
{
	uint64_t next, e = pt_span(l->root, va, &next);
	struct pt_txn t;
	int err;

	if (!pt_is_lazy(e))
		return 0;
	pt_txn_begin(&t, l->root);
	err = pt_txn_own_path(&t, va);
	view_commit(&t, l);
	return err < 0 ? err : 1;
}
