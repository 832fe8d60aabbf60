/* Views of shared memory on the host: copy-on-write breaks, copy-out to other lwCs, zero views. */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "cow.h"
#include "die.h"
#include "lwc_host.h"
#include "memmap.h"
#include "pgtable.h"
#include "memrange.h"
#include "pool.h"
#include "view.h"
#include "state.h"

/* Whether another live lwC maps a page of [va, va+len) to the host memory at that address. */
/* Whether entry e (pt_span's) maps the host memory at a's own address. */
int mem_identity(uint64_t e, uint64_t a)
{
	if (pt_is_lazy(e))
		return !(e & VMLWC_PTE_LZERO);
	return (e & (PTE_P | VMLWC_PTE_PROTNONE)) && (e & PTE_ADDR) == gpa_of(a);
}

/*
 * Whether another lwC than l maps the host memory at a, and in *stop (at most end) where the
 * answer may change: lazy spans and absent subtrees are crossed in one step, not page by page.
 */
int mem_shared_at(struct lwc *l, uint64_t a, uint64_t end, uint64_t *stop)
{
	int shared = 0;

	*stop = end;
	if (g_vm.lwc.nlwcs <= 1)
		return 0;
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
		struct lwc *o = g_vm.lwc.lwcs[i];
		uint64_t b = a, next;
		int first = -1;
		if (!o || o == l)
			continue;
		while (b < *stop) {
			int id = mem_identity(pt_span(o->root, b, &next), b);
			if (first < 0)
				first = id;
			else if (id != first)
				break;
			b = next;
		}
		if (b < *stop)
			*stop = b;
		shared |= first > 0;
	}
	return shared;
}

int mem_shared_elsewhere(struct lwc *l, uint64_t va, uint64_t len)
{
	for (uint64_t a = va, stop; a < va + len; a = stop)
		if (mem_shared_at(l, a, va + len, &stop))
			return 1;
	return 0;
}

/*
 * The other lwCs that map the host page at va (all of them, or only those that do not share
 * it on purpose) get a private copy of it, so that the host page can change under l alone.
 */
int mem_copy_out(struct lwc *l, uint64_t va, int keep_shared)
{
	gpa_t old = gpa_of(va), n = pool_alloc();
	struct pt_txn t;
	int users = 0;

	if (n == GPA_NONE)
		return -ENOMEM;
	/* unless l maps the host page itself, present, the host may hold it PROT_NONE: read
	   whatever its protection */
	uint64_t le = pt_leaf(l->root, va);
	if ((le & PTE_P) && (le & PTE_ADDR) == old)
		memcpy((void *)hva_of(n), (void *)va, PAGE_SIZE);
	else if (mem_read_force((void *)hva_of(n), va, PAGE_SIZE) < 0)
		memset((void *)hva_of(n), 0, PAGE_SIZE); /* not host memory at all: nothing to keep */
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
		struct lwc *o = g_vm.lwc.lwcs[i];
		uint64_t oe;
		if (!o || o == l)
			continue;
		oe = pt_leaf(o->root, va);
		if (!(oe & (PTE_P | VMLWC_PTE_PROTNONE)) || (oe & PTE_ADDR) != old ||
		    (keep_shared && (oe & VMLWC_PTE_SHARED)))
			continue;
		/* theirs is a snapshot now: private, copy-on-write if it was writable */
		if (oe & PTE_W)
			oe = (oe & ~PTE_W) | VMLWC_PTE_COW;
		pt_txn_begin(&t, o->root);
		if (pt_txn_set_leaf(&t, va, (oe & ~PTE_ADDR) | n) == 0) {
			view_commit(&t, o);
			users++;
		}
	}
	/* pool_alloc gave one reference; the copy has `users` */
	if (users == 0)
		pool_unref(n);
	for (int i = 1; i < users; i++)
		pool_ref(n);
	return 0;
}

/*
 * l's page at va holds a private copy of src (PAGE_SIZE bytes) from now on, a pool frame of
 * its own with leaf flags, whatever frame it had. 0 or -ENOMEM.
 */
int mem_copy_view(struct lwc *l, struct pt_txn *t, uint64_t va, const void *src, uint64_t flags)
{
	uint64_t e = pt_leaf(l->root, va);
	gpa_t n = pool_alloc();

	if (n == GPA_NONE)
		return -ENOMEM;
	memcpy((void *)hva_of(n), src, PAGE_SIZE);
	if (pt_txn_set_leaf(t, va, flags | n) < 0) {
		pool_unref(n);
		return -ENOMEM;
	}
	if (e & (PTE_P | VMLWC_PTE_PROTNONE))
		pool_unref(e);
	return 0;
}

/*
 * l's page at va reads as zeros from now on, whatever frame it had: the zero frame,
 * copy-on-write when the page is writable. Other lwCs are untouched.
 */
int mem_zero_view(struct lwc *l, struct pt_txn *t, uint64_t va)
{
	uint64_t e = pt_leaf(l->root, va), n;

	if (!(e & (PTE_P | VMLWC_PTE_PROTNONE)))
		return 0;
	n = (e & ~(PTE_ADDR | PTE_W | PTE_D | VMLWC_PTE_SHARED)) | g_vm.pool.zero_frame;
	if (e & (PTE_W | VMLWC_PTE_COW))
		n |= VMLWC_PTE_COW;
	if (pt_txn_set_leaf(t, va, n) < 0)
		return -ENOMEM;
	pool_ref(g_vm.pool.zero_frame);
	pool_unref(e);
	return 0;
}

/*
 * The new frame of a COW break of l's page va whose entry is e: the root keeps its host page
 * (the others that share it get a copy), the last user of a pool frame takes it over, anyone
 * else gets a fresh copy. GPA_NONE when the pool is empty.
 */
static gpa_t cow_frame(struct lwc *l, uint64_t va, uint64_t e)
{
	gpa_t old = e & PTE_ADDR, n;

	/* the root's host page at its own address (host memory elsewhere gets a copy below) */
	if (l == g_vm.lwc.root_lwc && pool_refcount(e) < 0 && old == gpa_of(va))
		return mem_copy_out(l, va, 0) < 0 ? GPA_NONE : old;
	if (pool_refcount(e) == 1)
		return old;
	n = pool_alloc();
	if (n == GPA_NONE)
		return GPA_NONE;
	memcpy((void *)hva_of(n), (void *)hva_of(old), PAGE_SIZE);
	pool_unref(e);
	return n;
}

int cow_prepare(struct lwc *l, uint64_t va, gpa_t *table, uint64_t *entry)
{
	gpa_t t = pt_leaf_table(l->root, PAGE_ALIGN_DOWN(va));
	uint64_t e, n;

	if (t == GPA_NONE)
		return 0;
	e = ((uint64_t *)hva_of(t))[vmlwc_pt_index(va, 0)];
	if ((e & (PTE_P | PTE_U | VMLWC_PTE_COW)) != (PTE_P | PTE_U | VMLWC_PTE_COW))
		return -EFAULT;
	n = cow_frame(l, PAGE_ALIGN_DOWN(va), e);
	if (n == GPA_NONE)
		return -ENOMEM;
	*table = t;
	*entry = (e & ~(VMLWC_PTE_COW | PTE_ADDR)) | PTE_W | PTE_D | n;
	return 1;
}

/*
 * l's copy-on-write page va made writable in t. The path is made t's own first, so that no
 * allocation can fail after cow_frame: it drops l's reference to the old frame, and l must
 * never map a frame it holds no reference to. 1: broken; 0: not copy-on-write here (*leaf:
 * the leaf entry it has); -errno.
 */
static int break_in(struct pt_txn *t, struct lwc *l, uint64_t va, uint64_t *leaf)
{
	uint64_t e;
	int err;
	gpa_t n;

	/* below a shared table: t's own copy of the path first (the copy marks entries COW) */
	if (pt_path_shared(t->root, va) && (err = pt_txn_own_path(t, va)) < 0)
		return err;
	e = *leaf = pt_leaf(t->root, va);
	if ((e & (PTE_P | PTE_U | VMLWC_PTE_COW)) != (PTE_P | PTE_U | VMLWC_PTE_COW))
		return 0;
	if ((err = pt_txn_own_path(t, va)) < 0)
		return err;
	n = cow_frame(l, va, e);
	if (n == GPA_NONE)
		return -ENOMEM;
	if (pt_txn_set_leaf(t, va, (e & ~(VMLWC_PTE_COW | PTE_ADDR)) | PTE_W | PTE_D | n) < 0)
		die_panic(l->on, "a copy-on-write break failed on a path its transaction owns");
	return 1;
}

/*
 * The root lwC is the process: native threads share its memory, so its pages stay where they
 * are and the other lwCs that still share a page get the copy instead ("copy-out"). Any other
 * lwC takes a private frame from the pool. Either way the caller's view becomes writable.
 */
int cow_break(struct lwc *l, uint64_t va)
{
	struct pt_txn t;
	uint64_t e;
	int r;

	pt_txn_begin(&t, l->root);
	r = break_in(&t, l, PAGE_ALIGN_DOWN(va), &e);
	view_commit(&t, l);
	return r < 0 ? (r == -EFAULT ? r : -ENOMEM) : r == 0 ? -EFAULT : 0;
}

/*
 * The copy-on-write pages of [va, end) in one transaction, from va while pages are mapped and
 * user-accessible: the path above them is copied once, not once per page (a long host write
 * into a child's buffer). Stops at the first page that is neither writable nor copy-on-write
 * or lies in a lazy span, which the caller's page-by-page walk then materializes, breaks or
 * refuses: a hostile length costs no more than the walk. 0 or -errno.
 */
int cow_break_range(struct lwc *l, uint64_t va, uint64_t end)
{
	struct pt_txn t;
	int r = 0;

	if (end > USER_TOP)
		end = USER_TOP;
	pt_txn_begin(&t, l->root);
	for (va = PAGE_ALIGN_DOWN(va); va < end; va += PAGE_SIZE) {
		uint64_t next, e;
		/* built leaves only: a lazy span costs what is touched, page by page in the walk */
		if (pt_is_lazy(pt_span(t.root, va, &next)))
			break;
		if ((r = break_in(&t, l, va, &e)) < 0)
			break;
		if (r == 0 && (e & (PTE_P | PTE_U | PTE_W)) != (PTE_P | PTE_U | PTE_W))
			break;
	}
	view_commit(&t, l);
	return r < 0 ? r : 0;
}
