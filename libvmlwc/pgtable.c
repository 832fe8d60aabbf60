/* Guest page tables: the shared kernel half, persistent (path-copying) user halves, walks. */
/*
 * With lazy tables (two-dimensional paging only) user-half table pages are pool frames with
 * reference counts: lwc_create shares whole subtrees between the trees (the entry above a
 * shared table has W clear and VMLWC_PTE_STBL set), and the first write below copies the
 * path (the stub on a fault, fresh() here). A table whose count is above one is reachable
 * only through such read-only entries, so marking its entries in place changes nothing
 * anyone can do until they copy it.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "arena.h"
#include "memmap.h"
#include "pgtable.h"
#include "pool.h"
#include "ptpage.h"
#include "vcpu.h"
#include "state.h"


static uint64_t *tbl(gpa_t gpa)
{
	return (uint64_t *)hva_of(gpa & PTE_ADDR);
}

static uint32_t *gen_of(gpa_t gpa)
{
	return &g_vm.pt.page_gen[(hva_of(gpa) - g_vm.arena.base) / PAGE_SIZE];
}

static int in_pool(gpa_t g)
{
	return pool_refcount(g) >= 0;
}

int pt_is_lazy(uint64_t e)
{
	return (e & (PTE_P | VMLWC_PTE_LAZY)) == VMLWC_PTE_LAZY;
}

/* The lazy entry for leaves with these flags: host memory at their own address, or zeros. */
static uint64_t lazy_of(uint64_t leaf_flags, int zero)
{
	return (leaf_flags & ~(PTE_P | PTE_ADDR)) | VMLWC_PTE_LAZY | (zero ? VMLWC_PTE_LZERO : 0);
}

/* The leaf a lazy entry stands for at va (its memslot block made first), 0 if it cannot have one. */
static uint64_t lazy_leaf(uint64_t e, uint64_t va)
{
	uint64_t f = e & ~(PTE_ADDR | VMLWC_PTE_LAZY | VMLWC_PTE_LZERO);
	gpa_t g;

	if (!(f & VMLWC_PTE_PROTNONE))
		f |= PTE_P;
	if (e & VMLWC_PTE_LZERO)
		return g_vm.pool.zero_frame | f;
	va = PAGE_ALIGN_DOWN(va);
	g = gpa_of(va);
	if (g == GPA_NONE && (memmap_ensure(va, PAGE_SIZE) < 0 || (g = gpa_of(va)) == GPA_NONE))
		return 0;
	return g | f;
}

static gpa_t kpage_new(uint32_t gen)
{
	void *p = arena_pages(&g_vm.arena, 1);
	gpa_t g;

	if (!p)
		return GPA_NONE;
	g = gpa_of((uintptr_t)p);
	*gen_of(g) = gen;
	return g;
}

/*
 * A user-half table page, one reference: from the pool with lazy tables the stub copies
 * (EPT/NPT: the stub takes its copies from the pool too), else from the page-table chunks
 * (pages KVM holds no shadow of).
 */
static gpa_t page_new(uint32_t gen)
{
	gpa_t g;

	if (!g_vm.pt.lazy_tables || g_vm.ptp.shadow) {
		g = ptpage_alloc();
		if (g == GPA_NONE)
			return GPA_NONE;
		*gen_of(g) = gen;
		return g;
	}
	g = pool_alloc();
	if (g == GPA_NONE)
		return GPA_NONE;
	memset(tbl(g), 0, PAGE_SIZE);
	*gen_of(g) = gen;
	return g; /* counted with the pool's frames, as the stub's copies are */
}

/*
 * Entries of a table that a copy now shares: tables below become shared, private pages COW.
 * With two-dimensional paging in both (the last user may then take the original over as it
 * is). Under shadow paging the host never writes a table a CR3 may have reached: only the copy
 * is marked, and the original is unsealed: its entries no longer tell what is shared.
 */
static void share_entries(gpa_t src_gpa, uint64_t *dst, int level)
{
	uint64_t *src = tbl(src_gpa);

	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = vmlwc_shared_entry(src[i], level);
		if (!e)
			continue;
		pool_ref(e); /* the copy's reference to the table or frame below */
		dst[i] = e;
		if (!g_vm.ptp.shadow)
			src[i] = e;
	}
	if (g_vm.ptp.shadow)
		ptpage_unseal(src_gpa);
	g_vm.pt.host_table_copies++;
}

/*
 * Shadow paging: a copy that takes the place of an unsealed table may not trust its entries:
 * a table below that is shared (or unsealed itself) is reached read-only again, a private
 * writable page becomes copy-on-write (the copy-on-write fault finds out whether anyone else
 * still has it). Tables reached through writable entries are always sealed.
 */
static void reseal_entries(uint64_t *dst, int level)
{
	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = dst[i];
		if (level > 0) {
			if ((e & PTE_P) && !(e & VMLWC_PTE_STBL) &&
			    (pool_refcount(e) > 1 || (ptpage_owns(e) && ptpage_unsealed(e))))
				dst[i] = (e & ~PTE_W) | VMLWC_PTE_STBL;
			else if (pt_is_lazy(e)) /* others may hold the same span */
				dst[i] = vmlwc_shared_entry(e, level);
		} else if ((e & (PTE_P | VMLWC_PTE_PROTNONE)) && !(e & VMLWC_PTE_SHARED) &&
			   (e & (PTE_W | VMLWC_PTE_COW))) {
			dst[i] = (e & ~PTE_W) | VMLWC_PTE_COW;
		}
	}
}

/* Table pages that can still be had (whole leaf tables an eager mapping may need). */
size_t pt_pages_free(void)
{
	if (!g_vm.pt.lazy_tables || g_vm.ptp.shadow)
		return (size_t)g_vm.ptp.nchunks * (PTPAGE_CHUNK / PAGE_SIZE) - ptpage_live();
	return pool_frames_free();
}

size_t pt_pages_used(void)
{
	return ptpage_live();
}

/* A page of this transaction: itself when already fresh, else a fresh copy (level: its own). */
static gpa_t fresh(struct pt_txn *t, gpa_t old, int level)
{
	gpa_t n;

	if (*gen_of(old) == t->gen)
		return old;
	n = page_new(t->gen);
	if (n == GPA_NONE)
		return GPA_NONE;
	memcpy(tbl(n), tbl(old), PAGE_SIZE);
	if (pool_refcount(old) > 1) {
		/* shared with other trees: they keep it, this tree takes a copy */
		share_entries(old, tbl(n), level);
		pool_unref(old);
		return n;
	}
	if (g_vm.ptp.shadow && ptpage_owns(old) && ptpage_unsealed(old))
		reseal_entries(tbl(n), level);
	/* The old page stays untouched: a loaded CR3 may still reach it. */
	if (*gen_of(old) != 0 || in_pool(old)) {
		if (t->nretired < PT_TXN_RETIRE)
			t->retired[t->nretired++] = old;
		else
			pt_page_free(old); /* safe: the guest reloads CR3 before it runs again */
	}
	return n;
}

/*
 * A generation no page carries yet. When the counter would wrap, every stamped page goes back to
 * generation 1 (0 stays 0: never retired), and new ones start above it: a page from long ago
 * must never look fresh to a transaction, which would then edit it in place.
 */
static uint32_t next_gen(void)
{
	if (g_vm.pt.gen_counter >= UINT32_MAX - 1) {
		for (size_t i = 0; i < g_vm.arena.size / PAGE_SIZE; i++)
			if (g_vm.pt.page_gen[i])
				g_vm.pt.page_gen[i] = 1;
		g_vm.pt.gen_counter = 1;
	}
	return ++g_vm.pt.gen_counter;
}

void pt_txn_begin(struct pt_txn *t, gpa_t root)
{
	t->root = root;
	t->gen = next_gen();
	t->changed = 0;
	t->nx_ok = g_vm.cpu.has_nx;
	t->nretired = 0;
}

/*
 * The table a lazy entry at `level` (lo: the first address it covers) stands for: lazy entries
 * one level down, or at the bottom the 512 leaves. GPA_NONE when no page or memslot is left.
 */
static gpa_t split(uint32_t gen, uint64_t e, int level, uint64_t lo)
{
	gpa_t n = page_new(gen);
	uint64_t *d, first;

	if (n == GPA_NONE)
		return GPA_NONE;
	d = tbl(n);
	if (level > 1) {
		for (unsigned i = 0; i < 512; i++)
			d[i] = e;
		return n;
	}
	/* a 2 MiB span lies in one memslot block: its frames are contiguous */
	if (!(first = lazy_leaf(e, lo))) {
		pt_page_free(n);
		return GPA_NONE;
	}
	for (unsigned i = 0; i < 512; i++)
		d[i] = first + ((e & VMLWC_PTE_LZERO) ? 0 : (uint64_t)i << 12);
	if (e & VMLWC_PTE_LZERO)
		for (unsigned i = 0; i < 512; i++)
			pool_ref(g_vm.pool.zero_frame);
	return n;
}

/*
 * One step down from entry idx of a fresh table at `level` (lo: the first address the entry
 * covers): the table below as this transaction's own: made (create), split from a lazy entry,
 * or a fresh copy. NULL with *err set, or NULL alone when absent and not to be made.
 */
static uint64_t *descend(struct pt_txn *t, uint64_t *table, unsigned idx, int level, uint64_t lo, int create,
			 int *err)
{
	uint64_t e = table[idx];
	gpa_t child;

	if (pt_is_lazy(e)) {
		child = split(t->gen, e, level, lo);
		if (child == GPA_NONE)
			goto nomem;
		table[idx] = child | PTE_P | PTE_W | PTE_U;
	} else if (!(e & PTE_P)) {
		if (!create)
			return NULL;
		child = page_new(t->gen);
		if (child == GPA_NONE)
			goto nomem;
		table[idx] = child | PTE_P | PTE_W | PTE_U;
	} else if (e & PTE_PS) {
		*err = -EINVAL; /* user halves only use 4 KiB pages */
		return NULL;
	} else {
		child = fresh(t, e & PTE_ADDR, level - 1);
		if (child == GPA_NONE)
			goto nomem;
		/* a table that was shared is this tree's own now */
		table[idx] = child | (e & ~(PTE_ADDR | VMLWC_PTE_STBL)) | ((e & VMLWC_PTE_STBL) ? PTE_W : 0);
	}
	return tbl(child);
nomem:
	*err = -ENOMEM;
	return NULL;
}

/* The transaction's own root (the first change makes it). */
static uint64_t *root_fresh(struct pt_txn *t, int *err)
{
	gpa_t r = fresh(t, t->root, 3);

	if (r == GPA_NONE) {
		*err = -ENOMEM;
		return NULL;
	}
	t->root = r;
	t->changed = 1;
	return tbl(r);
}

/* Pointer to the leaf entry of va in fresh pages, creating levels when create is set. */
static uint64_t *walk_fresh(struct pt_txn *t, uint64_t va, int create, int *err)
{
	uint64_t *table = root_fresh(t, err);

	for (int level = VMLWC_PT_TOP; level >= 1 && table; level--)
		table = descend(t, table, vmlwc_pt_index(va, level), level, vmlwc_pt_low(va, level), create, err);
	return table ? &table[vmlwc_pt_index(va, 0)] : NULL;
}

/*
 * The leaf entry for va in root (a lazy entry gives the leaf it stands for: see pt_span for
 * the entry itself), and in *next the end of the stretch of entries va's lies in: the next page,
 * or the end of the absent or lazy span above it.
 */
uint64_t pt_span(gpa_t root, uint64_t va, uint64_t *next)
{
	int level;
	uint64_t e = *vmlwc_pt_walk(root, va, 0, PTE_P | PTE_PS, PTE_P, tbl, &level);

	*next = vmlwc_pt_low(va, level) + vmlwc_pt_span(level);
	if (level > 0)
		return pt_is_lazy(e) ? e : 0;
	return e;
}

/* Whether anything (a leaf, PROT_NONE included, or a lazy span) is mapped in [va, end). */
static int any_mapped(gpa_t root, uint64_t va, uint64_t end)
{
	for (uint64_t next; va < end; va = next)
		if (pt_span(root, va, &next))
			return 1;
	return 0;
}

struct set_op {
	struct pt_txn *t;
	uint64_t flags; /* leaf flags, 0 to unmap */
	uint64_t delta; /* host address - guest address (0: identity) */
	int zero;       /* the zero frame rather than host memory */
};

/* [va, end) below a fresh table at `level`, mapped or unmapped as o says. */
static int set_span(struct set_op *o, uint64_t *table, int level, uint64_t va, uint64_t end)
{
	uint64_t span = vmlwc_pt_span(level);
	int err = 0;

	while (va < end) {
		unsigned idx = vmlwc_pt_index(va, level);
		uint64_t lo = vmlwc_pt_low(va, level), hi = lo + span, stop = end < hi ? end : hi, e = table[idx];
		int whole = va == lo && stop == hi;

		if (level == 0) {
			uint64_t want = 0;
			if (o->flags && o->zero) {
				want = g_vm.pool.zero_frame | o->flags;
				pool_ref(g_vm.pool.zero_frame);
			} else if (o->flags) {
				gpa_t g = gpa_of(va + o->delta);
				if (g == GPA_NONE && ((err = memmap_ensure(va + o->delta, end - va)) < 0 ||
						      (g = gpa_of(va + o->delta)) == GPA_NONE))
					return err < 0 ? err : -EFAULT;
				want = g | o->flags;
			}
			if (e & PTE_ADDR)
				pool_unref(e);
			table[idx] = want;
		} else if (whole && !(e & PTE_P) &&
			   (!o->flags || (!o->delta && (level >= 2 || pt_is_lazy(e) || o->flags == VMLWC_PTE_PROTNONE)))) {
			/* nothing built below: from 1 GiB up (2 MiB up for PROT_NONE, which nothing
			   touches until an mprotect) a lazy entry, made on first use; or gone */
			table[idx] = o->flags ? lazy_of(o->flags, o->zero) : 0;
		} else if (!o->flags && !any_mapped(o->t->root, va, stop)) {
			/* nothing to unmap there */
		} else {
			uint64_t *child = descend(o->t, table, idx, level, lo, 1, &err);
			if (!child)
				return err ? err : -ENOMEM;
			if ((err = set_span(o, child, level - 1, va, stop)) < 0)
				return err;
			if (whole && !o->flags) {
				/* emptied: this transaction's own page, which no CR3 has reached */
				pt_page_free(table[idx] & PTE_ADDR);
				table[idx] = 0;
			}
		}
		va = hi;
	}
	return 0;
}

static int txn_set(struct pt_txn *t, uint64_t va, uint64_t len, uintptr_t hva, uint64_t flags, int zero)
{
	uint64_t end = va + len, *root;
	struct set_op o = { .t = t, .flags = flags, .delta = hva - va, .zero = zero };
	int err = 0;

	if ((va | len | hva) & (PAGE_SIZE - 1) || end > USER_TOP || end < va)
		return -EINVAL;
	if (!t->nx_ok)
		o.flags &= ~PTE_NX;
	if (!len || (!flags && !any_mapped(t->root, va, end)))
		return 0; /* nothing changes: no new root */
	/* mapped elsewhere than at its own address: built at once, so first check it can be */
	if (flags && o.delta && !zero &&
	    ((len >> 21) + 1 > pt_pages_free() || (len >> MEMMAP_BLOCK_SHIFT) > memmap_slots_free()))
		return -ENOMEM;
	if (!(root = root_fresh(t, &err)))
		return err;
	return set_span(&o, root, 3, va, end);
}

int pt_txn_set(struct pt_txn *t, uint64_t va, uint64_t len, uintptr_t hva, uint64_t flags)
{
	return txn_set(t, va, len, hva, flags, 0);
}

int pt_txn_set_zero(struct pt_txn *t, uint64_t va, uint64_t len, uint64_t flags)
{
	return flags ? txn_set(t, va, len, va, flags, 1) : -EINVAL;
}

/*
 * mprotect on the lwC's own view: frames stay where they are. A writable page whose frame may
 * be shared with another lwC becomes copy-on-write; PROT_NONE keeps the frame, not present.
 */
static uint64_t protected_entry(uint64_t e, uint64_t flags, int alone)
{
	uint64_t keep = e & (PTE_ADDR | VMLWC_PTE_SHARED), n;
	int refs = pool_refcount(e);

	if (!flags)
		return keep | VMLWC_PTE_PROTNONE;
	n = keep | flags;
	/* a pool frame others hold (the zero frame always) is copied on write, alone or not */
	if ((flags & PTE_W) && !(e & VMLWC_PTE_SHARED) && (refs > 1 || (!alone && refs != 1))) {
		n &= ~PTE_W;
		n |= VMLWC_PTE_COW;
	}
	return n;
}

/* protected_entry for a lazy entry: host memory (never a pool frame) or the zero frame. */
static uint64_t protected_lazy(uint64_t e, uint64_t flags, int alone)
{
	uint64_t keep = e & (VMLWC_PTE_SHARED | VMLWC_PTE_LAZY | VMLWC_PTE_LZERO), n;

	if (!flags)
		return keep | VMLWC_PTE_PROTNONE;
	n = keep | (flags & ~(PTE_P | PTE_ADDR));
	if ((flags & PTE_W) && !(e & VMLWC_PTE_SHARED) && ((e & VMLWC_PTE_LZERO) || !alone))
		n = (n & ~PTE_W) | VMLWC_PTE_COW;
	return n;
}

struct prot_op {
	struct pt_txn *t;
	uint64_t flags;
	int alone;
};

/* Whether protecting [va, end) of root changes any entry (a lazy span only partly covered does). */
static int protect_changes(struct prot_op *o, gpa_t root, uint64_t va, uint64_t end)
{
	for (uint64_t next; va < end; va = next) {
		uint64_t e = pt_span(root, va, &next);
		if (pt_is_lazy(e) ? protected_lazy(e, o->flags, o->alone) != e
				  : (e & PTE_ADDR) && protected_entry(e, o->flags, o->alone) != e)
			return 1;
	}
	return 0;
}

static int protect_span(struct prot_op *o, uint64_t *table, int level, uint64_t va, uint64_t end)
{
	uint64_t span = vmlwc_pt_span(level);
	int err = 0;

	while (va < end) {
		unsigned idx = vmlwc_pt_index(va, level);
		uint64_t lo = vmlwc_pt_low(va, level), hi = lo + span, stop = end < hi ? end : hi, e = table[idx];

		if (level == 0) {
			if (e & PTE_ADDR)
				table[idx] = protected_entry(e, o->flags, o->alone);
		} else if (pt_is_lazy(e) && va == lo && stop == hi) {
			table[idx] = protected_lazy(e, o->flags, o->alone);
		} else if ((e & PTE_P) || pt_is_lazy(e)) {
			/* this tree's own copy first: copying a shared table changes entries (COW, refs) */
			if (protect_changes(o, o->t->root, va, stop)) {
				uint64_t *child = descend(o->t, table, idx, level, lo, 0, &err);
				if (!child)
					return err ? err : -EFAULT;
				if ((err = protect_span(o, child, level - 1, va, stop)) < 0)
					return err;
			}
		}
		va = hi;
	}
	return 0;
}

int pt_txn_protect(struct pt_txn *t, uint64_t va, uint64_t len, uint64_t flags, int alone)
{
	struct prot_op o = { .t = t, .flags = t->nx_ok ? flags : flags & ~PTE_NX, .alone = alone };
	uint64_t *root;
	int err = 0;

	if (!protect_changes(&o, t->root, va, va + len))
		return 0;
	if (!(root = root_fresh(t, &err)))
		return err;
	return protect_span(&o, root, 3, va, va + len);
}

gpa_t pt_txn_commit(struct pt_txn *t)
{
	return t->root;
}

int pt_txn_set_leaf(struct pt_txn *t, uint64_t va, uint64_t pte)
{
	int err = 0;
	uint64_t *e = walk_fresh(t, va, 1, &err);

	if (!e)
		return err ? err : -EFAULT;
	*e = pte;
	return 0;
}

int pt_path_shared(gpa_t root, uint64_t va)
{
	uint64_t m = PTE_P | PTE_PS | VMLWC_PTE_STBL, e;
	int level;

	e = *vmlwc_pt_walk(root, va, 0, m, PTE_P, tbl, &level);
	return level > 0 && (e & m) == (PTE_P | VMLWC_PTE_STBL);
}

int pt_txn_own_path(struct pt_txn *t, uint64_t va)
{
	int err = 0;

	if (!walk_fresh(t, va, 0, &err) && !err)
		err = -EFAULT;
	return err;
}

gpa_t pt_leaf_table(gpa_t root, uint64_t va)
{
	uint64_t m = PTE_P | PTE_PS | VMLWC_PTE_STBL, e;
	int level;

	/* down to the entry above the leaf table, which is tested here: it names the table */
	e = *vmlwc_pt_walk(root, va, 1, m, PTE_P, tbl, &level);
	return (e & m) == PTE_P ? e & PTE_ADDR : GPA_NONE;
}

uint64_t pt_leaf(gpa_t root, uint64_t va)
{
	uint64_t next, e = pt_span(root, va, &next);

	return pt_is_lazy(e) ? lazy_leaf(e, va) : e;
}


uint64_t pt_lookup(gpa_t root, uint64_t va)
{
	uint64_t *table = tbl(root), e = 0, uw = PTE_U | PTE_W, nx = 0;
	int level;

	if (!table)
		return 0;
	for (level = VMLWC_PT_TOP; level >= 0; level--) {
		e = table[vmlwc_pt_index(va, level)];
		if (!(e & PTE_P))
			return 0;
		uw &= e;
		nx |= e & PTE_NX;
		if (level == 0 || (level <= 2 && (e & PTE_PS)))
			break;
		table = tbl(e & PTE_ADDR);
		if (!table)
			return 0;
	}
	return (e & ~(PTE_U | PTE_W | PTE_NX)) | uw | nx;
}

uint64_t pt_prot_flags(int prot)
{
	uint64_t f;

	if (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)))
		return 0;
	/* A and D preset: no assist for the first access on a shadow-paging hypervisor. */
	f = PTE_P | PTE_U | PTE_A;
	if (prot & PROT_WRITE)
		f |= PTE_W | PTE_D;
	if (!(prot & PROT_EXEC))
		f |= PTE_NX;
	return f;
}

/* Kernel-half mapping at init time, before any CR3 has pointed at these tables. */
static int kmap(uint64_t kva, uintptr_t hva, uint64_t len, uint64_t flags, int large)
{
	uint64_t step = large ? (2UL << 20) : PAGE_SIZE;
	uint64_t end = kva + len;

	if (!g_vm.cpu.has_nx)
		flags &= ~PTE_NX;
	for (; kva < end; kva += step, hva += step) {
		uint64_t *table = tbl(g_vm.pt.kernel_root);
		int level, last = large ? 1 : 0;

		for (level = VMLWC_PT_TOP; level > last; level--) {
			unsigned idx = vmlwc_pt_index(kva, level);
			if (!(table[idx] & PTE_P)) {
				gpa_t c = kpage_new(0);
				if (c == GPA_NONE)
					return -ENOMEM;
				table[idx] = c | PTE_P | PTE_W;
			}
			table = tbl(table[idx] & PTE_ADDR);
		}
		gpa_t g = gpa_of(hva);
		if (g == GPA_NONE)
			return -EFAULT;
		table[vmlwc_pt_index(kva, last)] =
			g | flags | PTE_P | PTE_A | (large ? PTE_PS : 0) | (g_vm.cpu.has_pge ? PTE_G : 0);
	}
	return 0;
}

int pt_kernel_map(uint64_t kva, uintptr_t hva, uint64_t len, uint64_t flags)
{
	return kmap(kva, hva, len, flags, 0);
}

int pt_init_kernel(void)
{
	struct arena *a = &g_vm.arena;
	size_t meta = (a->size / PAGE_SIZE) * sizeof(uint32_t);
	int r;

	g_vm.pt.page_gen = arena_pages(a, PAGE_ALIGN_UP(meta) / PAGE_SIZE);
	if (!g_vm.pt.page_gen)
		return -ENOMEM;
	g_vm.pt.kernel_root = kpage_new(0);
	if (g_vm.pt.kernel_root == GPA_NONE)
		return -ENOMEM;
	/*
	 * Direct map of the arena (page tables, frames), supervisor-only, never executable. The
	 * arena may span memslot blocks whose GPAs are not contiguous: map each 2 MiB by its GPA.
	 */
	for (uintptr_t h = a->base; h + (2UL << 20) <= a->base + a->size; h += 2UL << 20) {
		r = kmap(VMLWC_PHYSMAP_KVA + gpa_of(h), h, 2UL << 20, PTE_W | PTE_D | PTE_NX, 1);
		if (r < 0)
			return r;
	}
	return 0;
}

gpa_t pt_new_root(void)
{
	gpa_t r = page_new(0);

	if (r == GPA_NONE)
		return r;
	memcpy(tbl(r) + 256, tbl(g_vm.pt.kernel_root) + 256, 256 * sizeof(uint64_t));
	return r;
}

/*
 * A page-table page no CR3 can reach any more. With two-dimensional paging (EPT/NPT) it is
 * reused at once; under shadow paging KVM may still hold a shadow of it that host writes would
 * not invalidate: it waits until its chunk is recycled or the stub scrubbed it (ptpage.c).
 */
void pt_page_free(gpa_t g)
{
	pool_unref(g); /* a pool frame (lazy tables under EPT/NPT) or a page-table page; never the kernel half's */
}

/*
 * At an exit through the stub: the batch the stub scrubbed is reusable (only once it says so:
 * it zeroes the count after the last write), and it gets the next batch.
 */
int pt_scrub_next(struct vcpu *v)
{
	uint64_t *list = (uint64_t *)(v->area + VMLWC_VCPU_SCRUB_LIST);
	volatile uint64_t *pending = (uint64_t *)(v->area + VMLWC_VCPU_SCRUB_N);
	int n = 0;

	gpa_t g;

	if (v->nscrubbing && *pending)
		return v->nscrubbing; /* not scrubbed yet (a return that bypassed the trampoline) */
	for (int i = 0; i < v->nscrubbing; i++)
		ptpage_scrubbed(v->scrubbing[i]);
	v->nscrubbing = 0;
	if (g_vm.ptp.recycle || !g_vm.ptp.shadow)
		return 0; /* chunks are recycled instead, or nothing needs it */
	while (n < VMLWC_SCRUB_MAX && (g = ptpage_dirty_next()) != GPA_NONE) {
		v->scrubbing[n] = g;
		list[n++] = VMLWC_PHYSMAP_KVA + g;
	}
	v->nscrubbing = n;
	*(uint64_t *)(v->area + VMLWC_VCPU_SCRUB_N) = (uint64_t)n;
	return n;
}

static void destroy_level(gpa_t table, int level, void (*leaf)(uint64_t pte))
{
	uint64_t *t = tbl(table);

	if (pool_refcount(table) > 1) {
		pool_unref(table); /* other trees still use it */
		return;
	}
	for (unsigned i = 0; i < (level == 3 ? 256u : 512u); i++) {
		uint64_t e = t[i];
		if (level == 0 && (e & VMLWC_PTE_PROTNONE)) {
			leaf(e);
			continue;
		}
		if (!(e & PTE_P))
			continue;
		if (level == 0)
			leaf(e);
		else
			destroy_level(e & PTE_ADDR, level - 1, leaf);
	}
	pt_page_free(table);
}

void pt_destroy(gpa_t root, void (*leaf)(uint64_t pte))
{
	destroy_level(root, 3, leaf);
}


struct fork_ctx {
	uint32_t gen;
	int (*classify)(uint64_t va, void *arg);
	uint64_t (*own)(uint64_t va, void *arg);
	int (*plain)(uint64_t va, uint64_t len, void *arg);
	void *arg;
	void (*ref)(uint64_t pte);
	int err;
};

/*
 * Copies one level for the parent (always) and the child (when anything remains in it). With
 * lazy tables a subtree over which no spec applies is not copied: both trees share it. Each
 * new entry takes its own reference; src keeps its own until its tree is destroyed. keep:
 * src outlives the fork (other trees share it or a table above it), so its private pages
 * become copy-on-write for it too.
 */
/*
 * A leaf table no spec touches, copied for both trees in one tight pass: private writable pages
 * become copy-on-write in both, every pool frame gains the two new references. The common case
 * of lwc_create when tables are copied whole; it is what makes its cost per page small.
 */
static int fork_leaves_plain(const uint64_t *s, uint64_t *p, uint64_t *c)
{
	const struct vmlwc_pool *pl = g_vm.pool.hdr;
	uint64_t base = pl->base_gpa, end = pl->base_gpa + pl->nframes * PAGE_SIZE;
	int any = 0;

	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = s[i], a = e & PTE_ADDR;
		if (!(e & (PTE_P | VMLWC_PTE_PROTNONE))) {
			p[i] = c[i] = 0;
			continue;
		}
		if (!(e & VMLWC_PTE_SHARED) && (e & (PTE_W | VMLWC_PTE_COW)))
			e = (e & ~PTE_W) | VMLWC_PTE_COW;
		p[i] = c[i] = e;
		any = 1;
		if (a >= base && a < end) {
			pool_ref(e);
			pool_ref(e);
		}
	}
	return any;
}

static int fork_level(struct fork_ctx *f, gpa_t src, int level, uint64_t va0, int keep, gpa_t *pout,
		      gpa_t *cout);

/*
 * A lazy entry s[i] at `level` (covering from va): copied as it is (private memory copy-on-write
 * in both) where no spec applies, else the tables it stands for are built on the side and
 * copied like any others. 1 when the child got something.
 */
static int fork_lazy(struct fork_ctx *f, uint64_t *s, unsigned i, int level, uint64_t va, int keep, uint64_t *p,
		     uint64_t *c)
{
	uint64_t e = s[i], se = vmlwc_shared_entry(e, level);
	gpa_t tmp, pp = GPA_NONE, cc = GPA_NONE;
	int has;

	if (keep && !g_vm.ptp.shadow)
		s[i] = se; /* src lives on beside the copies (under shadow paging: unsealed instead) */
	if (f->plain(va, vmlwc_pt_span(level), f->arg)) {
		p[i] = c[i] = se;
		return 1;
	}
	if ((tmp = split(f->gen, e, level, va)) == GPA_NONE) {
		f->err = -ENOMEM;
		return 0;
	}
	has = fork_level(f, tmp, level - 1, va, 0, &pp, &cc);
	destroy_level(tmp, level - 1, pool_unref); /* the copies hold their own references */
	if (pp != GPA_NONE)
		p[i] = pp | PTE_P | PTE_W | PTE_U;
	if (cc != GPA_NONE && (has || f->err)) {
		c[i] = cc | PTE_P | PTE_W | PTE_U;
		return 1;
	}
	if (cc != GPA_NONE)
		pt_page_free(cc);
	return 0;
}

static int fork_level(struct fork_ctx *f, gpa_t src, int level, uint64_t va0, int keep, gpa_t *pout,
		      gpa_t *cout)
{
	uint64_t *s = tbl(src), *p, *c;
	gpa_t pg = page_new(f->gen), cg = page_new(f->gen);
	int any = 0;

	if (pg == GPA_NONE || cg == GPA_NONE) {
		if (pg != GPA_NONE)
			pt_page_free(pg);
		if (cg != GPA_NONE)
			pt_page_free(cg);
		f->err = -ENOMEM;
		return 0;
	}
	p = tbl(pg);
	c = tbl(cg);
	if (level == 3) { /* the kernel half is shared by every root */
		memcpy(p + 256, s + 256, 256 * sizeof(uint64_t));
		memcpy(c + 256, s + 256, 256 * sizeof(uint64_t));
	}
	if (level == 0 && !keep && f->plain(va0, 2UL << 20, f->arg)) {
		int any = fork_leaves_plain(s, p, c);
		*pout = pg;
		if (!any) {
			pt_page_free(cg);
			cg = GPA_NONE;
		}
		*cout = cg;
		return any;
	}
	for (unsigned i = 0; i < (level == 3 ? 256u : 512u) && !f->err; i++) {
		uint64_t e = s[i], va = va0 | i * vmlwc_pt_span(level);
		if (level > 0 && pt_is_lazy(e)) {
			any |= fork_lazy(f, s, i, level, va, keep, p, c);
			continue;
		}
		if (!(e & PTE_P) && !(level == 0 && (e & VMLWC_PTE_PROTNONE)))
			continue;
		if (level > 0) {
			gpa_t sub = e & PTE_ADDR, pp = GPA_NONE, cc = GPA_NONE;
			if (g_vm.pt.lazy_tables && f->plain(va, vmlwc_pt_span(level), f->arg)) {
				/* the same below for both: share the table, read-only until copied */
				uint64_t se = vmlwc_shared_entry(e, level);
				if (keep && !g_vm.ptp.shadow)
					s[i] = se;
				pool_ref(sub);
				pool_ref(sub);
				p[i] = c[i] = se;
				any = 1;
				continue;
			}
			int has = fork_level(f, sub, level - 1, va, keep || pool_refcount(sub) > 1, &pp, &cc);
			uint64_t own = (e & ~(PTE_ADDR | VMLWC_PTE_STBL)) | PTE_W;
			/* linked even when the copy stopped half-way: destroying the tree frees it */
			if (pp != GPA_NONE)
				p[i] = pp | own;
			if (cc != GPA_NONE && (has || f->err)) {
				c[i] = cc | own;
				any = 1;
			}
			if (f->err)
				break;
			continue;
		}
		int cls = f->classify(va, f->arg);
		if (cls == PT_FORK_OWN) {
			/* a page each tree has its own of (the lwC's private pages): the child's from own() */
			uint64_t ce = f->own(va, f->arg);
			p[i] = e;
			f->ref(e);
			if (ce) {
				c[i] = ce;
				any = 1;
			}
			continue;
		}
		if (keep) {
			e = vmlwc_shared_entry(e, 0);
			if (!g_vm.ptp.shadow)
				s[i] = e; /* src keeps it too (under shadow paging: src is unsealed below) */
		}
		if (cls == PT_FORK_UNMAP) {
			p[i] = e;
			f->ref(e);
			continue;
		}
		if (cls == PT_FORK_SHARE && (e & VMLWC_PTE_COW)) {
			/* still copy-on-write from an earlier create: share a private copy, writable */
			gpa_t n = pool_alloc();
			if (n == GPA_NONE) {
				f->err = -ENOMEM;
				break;
			}
			memcpy((void *)hva_of(n), (void *)hva_of(e & PTE_ADDR), PAGE_SIZE);
			e = (e & ~(PTE_ADDR | VMLWC_PTE_COW)) | n | PTE_W | PTE_D | VMLWC_PTE_SHARED;
			p[i] = c[i] = e;
			f->ref(e);
			any = 1;
			continue;
		}
		if (cls == PT_FORK_SHARE)
			e |= VMLWC_PTE_SHARED; /* shared memory from now on, as MAP_SHARED is, for later creates too */
		else if (!(e & VMLWC_PTE_SHARED) && (e & (PTE_W | VMLWC_PTE_COW)))
			e = (e & ~PTE_W) | VMLWC_PTE_COW;
		p[i] = c[i] = e;
		f->ref(e);
		f->ref(e);
		any = 1;
	}
	*pout = pg;
	if (level != 3 && !any) {
		pt_page_free(cg);
		cg = GPA_NONE;
	}
	*cout = cg;
	if (keep && g_vm.ptp.shadow && ptpage_owns(src))
		ptpage_unseal(src); /* others still use it, unmarked: its entries are not all true */
	return any || level == 3;
}

int pt_fork(gpa_t root, gpa_t *new_parent, gpa_t *child, const struct pt_fork_ops *ops, void *arg)
{
	struct fork_ctx f = { .gen = next_gen(), .classify = ops->classify, .own = ops->own, .plain = ops->plain,
			      .arg = arg, .ref = ops->ref };

	fork_level(&f, root, 3, 0, 0, new_parent, child);
	if (*new_parent != GPA_NONE)
		pt_root_tag_set(*new_parent, ops->parent_tag);
	if (*child != GPA_NONE)
		pt_root_tag_set(*child, ops->child_tag);
	return f.err;
}

void pt_root_tag_set(gpa_t root, uint64_t tag)
{
	tbl(root)[VMLWC_PML4_TAG] = tag << 1; /* not present: only the host reads it */
}

uint64_t pt_root_tag(gpa_t root)
{
	uint64_t *t = tbl(root);
	return t ? t[VMLWC_PML4_TAG] >> 1 : 0;
}
