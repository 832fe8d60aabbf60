/* lwc_overlay's application: another lwC's memory and descriptors made the caller's. */
/*
 * The lwC port (lwc_host.c) finds the source through the caller's descriptor and checks its
 * rights; this file only applies the specs, one resource kind at a time: memory through the
 * view layer, descriptors through the descriptor shadow. The caller's own entries in those
 * ranges are replaced.
 */
#include <errno.h>

#include "base.h"
#include "fdtab.h"
#include "lwc_host.h"
#include "overlay.h"
#include "pgtable.h"
#include "pool.h"
#include "view.h"
#include "state.h"

/* How an entry of src is to be seen by both after an overlay: copy-on-write, or shared on purpose. */
static uint64_t overlay_entry(uint64_t e, unsigned flags)
{
	if ((!pt_is_lazy(e) && !(e & (PTE_P | VMLWC_PTE_PROTNONE))) || (e & VMLWC_PTE_SHARED))
		return e;
	if (!(flags & LWC_SHARE) && (e & (PTE_W | VMLWC_PTE_COW)))
		return (e & ~PTE_W) | VMLWC_PTE_COW; /* both views copy on write */
	if ((flags & LWC_SHARE) && !(e & VMLWC_PTE_COW))
		return e | VMLWC_PTE_SHARED; /* shared memory now, for later creates too */
	return e;
}

/* A lazy entry of src over [a, b) in t's tree, with the flags the overlay gives it. */
static int overlay_lazy(struct pt_txn *t, uint64_t a, uint64_t b, uint64_t lazy)
{
	uint64_t leaf = (lazy & ~(VMLWC_PTE_LAZY | VMLWC_PTE_LZERO)) | ((lazy & VMLWC_PTE_PROTNONE) ? 0 : PTE_P);

	return (lazy & VMLWC_PTE_LZERO) ? pt_txn_set_zero(t, a, b - a, leaf) : pt_txn_set(t, a, b - a, a, leaf);
}

/* A lazy stretch [va, next) of src (entry e) in t's tree; src's own entry first when the overlay changes it. */
static int overlay_lazy_span(struct pt_txn *t, struct lwc *src, unsigned flags, uint64_t va, uint64_t next,
			     uint64_t e)
{
	uint64_t se = overlay_entry(e, flags);
	int err = 0;

	if (se != e) {
		/* the source's tree is not loaded: a transaction of its own */
		struct pt_txn st;
		pt_txn_begin(&st, src->root);
		err = overlay_lazy(&st, va, next, se);
		view_commit(&st, src);
	}
	return err ? err : overlay_lazy(t, va, next, se);
}

/* src's page va in t's tree (l's), with a reference of its own; src's entry first when the overlay changes it. */
static int overlay_page(struct pt_txn *t, struct lwc *l, struct lwc *src, unsigned flags, uint64_t va)
{
	uint64_t e, mine, se;
	int err;

	/* a page under a table src shares with others is theirs too: src's own path first */
	if (view_own_path(src, va) < 0)
		return -ENOMEM;
	e = pt_leaf(src->root, va);
	mine = pt_leaf(l->root, va);
	se = overlay_entry(e, flags);
	if (se != e) {
		struct pt_txn st;
		pt_txn_begin(&st, src->root);
		err = pt_txn_set_leaf(&st, va, se);
		view_commit(&st, src);
		if (err)
			return err;
	}
	e = (se & (PTE_P | VMLWC_PTE_PROTNONE)) ? se : 0;
	if ((err = pt_txn_set_leaf(t, va, e)) < 0)
		return err;
	pool_ref(e);
	if (mine & PTE_ADDR)
		pool_unref(mine);
	return 0;
}

/*
 * src's view of [lo, hi) becomes l's too: stretch by stretch (nothing on either side, a lazy
 * span of src), page by page where src has pages.
 */
static long overlay_mem(struct lwc *l, struct lwc *src, unsigned flags, uint64_t lo, uint64_t hi)
{
	struct pt_txn t;
	uint64_t next;
	long err = 0;

	pt_txn_begin(&t, l->root);
	for (uint64_t va = lo; va < hi && !err; va = next) {
		uint64_t e = pt_span(src->root, va, &next);
		if (next > hi)
			next = hi;
		if (!e) /* src has nothing there: neither has l now */
			err = pt_txn_set(&t, va, next - va, 0, 0);
		else if (pt_is_lazy(e))
			err = overlay_lazy_span(&t, src, flags, va, next, e);
		else
			err = overlay_page(&t, l, src, flags, va);
	}
	view_commit(&t, l); /* what was done is consistent, stretch by stretch */
	return err;
}

/* A memory spec: the range on either side of the gate window (the library's pages are nobody's to overlay). */
static long overlay_mem_spec(struct lwc *l, struct lwc *src, const struct lwc_rspec *s)
{
	uint64_t lo = s->u.mem.start, hi = s->u.mem.end, g0 = VMLWC_GATE_VA;
	uint64_t g1 = VMLWC_GATE_VA + VMLWC_GATE_PAGES * PAGE_SIZE;
	long err = 0;

	if (lo < g0)
		err = overlay_mem(l, src, s->flags, lo, hi < g0 ? hi : g0);
	if (!err && hi > g1)
		err = overlay_mem(l, src, s->flags, lo > g1 ? lo : g1, hi);
	return err;
}

/* l's slot g becomes src's: joins its group (LWC_SHARE), or a duplicate of its entry (an empty one leaves l's). */
static long overlay_fd(struct lwc *l, struct lwc *src, unsigned flags, unsigned g)
{
	int raw = fdtab_raw(src->fds, g), lid = fdtab_lwc(src->fds, g, NULL);

	if (fdtab_linked(src->fds, g, l->fds))
		return 0;
	if (flags & LWC_SHARE) {
		/* the caller's slot leaves its own group and joins the source's */
		fdtab_leave(l->fds, g);
		return fdtab_share_slot(src->fds, l->fds, g) < 0 ? -EMFILE : 0;
	}
	if (raw == VMLWC_FD_NONE)
		return 0;
	/* the same open file at the same number (one more reference), or lwC */
	fdtab_close(l->fds, g);
	if (fdtab_copy_entry(l->fds, g, src->fds, g) < 0)
		return -EMFILE;
	if (lid >= 0)
		g_vm.lwc.lwcs[lid]->refs++;
	return 0;
}

/* A descriptor spec: the whole table (the slots either has used) or a range (up to l's limit). */
static long overlay_fds(struct lwc *l, struct lwc *src, const struct lwc_rspec *s)
{
	int all = s->u.fds.from == -1 && s->u.fds.to == -1;
	unsigned used = fdtab_used(src->fds) > fdtab_used(l->fds) ? fdtab_used(src->fds) : fdtab_used(l->fds);
	unsigned end = all ? used : fdtab_cap(l->fds);

	for (unsigned g = all ? 0 : (unsigned)s->u.fds.from; g < end && (all || (int)g <= s->u.fds.to); g++) {
		long r = overlay_fd(l, src, s->flags, g);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Specs overlay cannot apply: nothing is left out of the caller, and credentials are never overlaid. */
static long overlay_specs_check(const struct spec_set *ss)
{
	for (int i = 0; i < ss->n; i++)
		if ((ss->s[i].flags & LWC_UNMAP) || (ss->s[i].flags & LWC_CRED))
			return -EINVAL;
	return 0;
}

long overlay_apply(struct lwc *l, struct lwc *src, const struct spec_set *ss)
{
	long err = overlay_specs_check(ss);

	for (int i = 0; i < ss->n && !err; i++) {
		const struct lwc_rspec *s = &ss->s[i];
		if (s->flags & LWC_MEM)
			err = overlay_mem_spec(l, src, s);
		else if (s->flags & LWC_FILES)
			err = overlay_fds(l, src, s);
	}
	return err;
}
