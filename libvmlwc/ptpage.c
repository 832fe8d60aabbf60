/* Page-table pages: a region of the arena in 2 MiB chunks, each its own memslot, recycled safely. */
/*
 * Under shadow paging KVM keeps shadows of every guest page table it has seen, and host writes
 * do not reach them: a freed table page may be reused only after KVM has dropped its shadows.
 * Deleting a memslot drops the shadows of exactly the pages in it (with the SLOT_ZAP_ALL quirk
 * off), so freed pages wait "dirty" in their chunk, and a chunk is recycled (its memslot deleted
 * and added again) when clean pages run out; where KVM lacks the quirk the stub scrubs them
 * instead (pgtable.c). With two-dimensional paging a freed page is clean at once.
 */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "memmap.h"
#include "pgtable.h"
#include "ptpage.h"
#include "rawsys.h"
#include "state.h"

#define CHUNK_PAGES (PTPAGE_CHUNK / PAGE_SIZE)
#define KVM_CAP_DISABLE_QUIRKS2_ 213
#define KVM_X86_QUIRK_SLOT_ZAP_ALL_ (1 << 7)

struct ptchunk {
	uint16_t bump;    /* pages handed out at least once */
	uint16_t nclean;  /* freed pages KVM holds no shadow of */
	uint16_t ndirty;  /* freed pages KVM may still shadow */
	uint16_t live;
	uint16_t clean[CHUNK_PAGES];
	uint16_t dirty[CHUNK_PAGES];
};

static struct ptchunk *chunk(unsigned i)
{
	return &((struct ptchunk *)g_vm.ptp.chunks)[i];
}

/* Whether deleting a memslot zaps only that slot's shadows (then chunks can be recycled). */
static int zap_per_slot(void)
{
	struct kvm_enable_cap c = { .cap = KVM_CAP_DISABLE_QUIRKS2_, .args = { KVM_X86_QUIRK_SLOT_ZAP_ALL_ } };
	long q = RAW3(SYS_ioctl, g_vm.kvm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2_);

	if (q <= 0 || !(q & KVM_X86_QUIRK_SLOT_ZAP_ALL_))
		return 0;
	return RAW3(SYS_ioctl, g_vm.kvm.vm_fd, KVM_ENABLE_CAP, &c) == 0;
}

int ptpage_init(uintptr_t base, size_t len, unsigned first_slot, int shadow)
{
	size_t meta = PAGE_ALIGN_UP((len / PTPAGE_CHUNK) * sizeof(struct ptchunk));
	size_t npages = len / PAGE_SIZE;

	memset(&g_vm.ptp, 0, sizeof(g_vm.ptp));
	g_vm.ptp.chunks = arena_pages(&g_vm.arena, meta / PAGE_SIZE);
	g_vm.ptp.refs = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(npages * sizeof(uint32_t)) / PAGE_SIZE);
	g_vm.ptp.unsealed = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(npages) / PAGE_SIZE);
	if (!g_vm.ptp.chunks || !g_vm.ptp.refs || !g_vm.ptp.unsealed)
		return -ENOMEM;
	g_vm.ptp.base = base;
	g_vm.ptp.nchunks = (unsigned)(len / PTPAGE_CHUNK);
	g_vm.ptp.gpa_lo = gpa_of(base); /* the library window is linear */
	g_vm.ptp.gpa_hi = g_vm.ptp.gpa_lo + len;
	g_vm.ptp.first_slot = first_slot;
	g_vm.ptp.shadow = shadow;
	g_vm.ptp.recycle = shadow && g_vm.kvm.vm_fd >= 0 && zap_per_slot();
	for (unsigned i = 0; i < g_vm.ptp.nchunks; i++) {
		gpa_t g = gpa_of(base + (uintptr_t)i * PTPAGE_CHUNK);
		int r = memmap_slot_set(first_slot + i, g, base + (uintptr_t)i * PTPAGE_CHUNK, PTPAGE_CHUNK);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A clean page of chunk i (a freed one first: it is resident already), or GPA_NONE. */
static gpa_t take(unsigned i, int fresh_too)
{
	struct ptchunk *c = chunk(i);
	unsigned k;

	if (c->nclean) {
		k = c->clean[--c->nclean];
		g_vm.ptp.nclean--;
	} else if (fresh_too && c->bump < CHUNK_PAGES)
		k = c->bump++;
	else
		return GPA_NONE;
	c->live++;
	g_vm.ptp.allocs++;
	g_vm.ptp.cur = i;
	g_vm.ptp.live++;
	g_vm.ptp.refs[i * CHUNK_PAGES + k] = 1;
	g_vm.ptp.unsealed[i * CHUNK_PAGES + k] = 0;
	void *p = (void *)(g_vm.ptp.base + (uintptr_t)i * PTPAGE_CHUNK + (uintptr_t)k * PAGE_SIZE);
	memset(p, 0, PAGE_SIZE);
	return gpa_of((uintptr_t)p);
}

/* Drops KVM's shadows of every page of chunk i: its dirty pages are clean after this. */
static int recycle(unsigned i)
{
	struct ptchunk *c = chunk(i);
	uintptr_t h = g_vm.ptp.base + (uintptr_t)i * PTPAGE_CHUNK;
	gpa_t g = gpa_of(h);
	int r;

	if (g_vm.ptp.quiesce)
		g_vm.ptp.quiesce();
	if ((r = memmap_slot_set(g_vm.ptp.first_slot + i, g, h, 0)) < 0 ||
	    (r = memmap_slot_set(g_vm.ptp.first_slot + i, g, h, PTPAGE_CHUNK)) < 0)
		return r;
	g_vm.ptp.nclean += c->ndirty;
	g_vm.ptp.reclaimed += c->ndirty;
	while (c->ndirty)
		c->clean[c->nclean++] = c->dirty[--c->ndirty];
	g_vm.ptp.recycles++;
	return 0;
}

/* The chunk worth recycling most: the most dirty pages, one nothing lives in first; n if none. */
static unsigned recycle_pick(unsigned min_dirty)
{
	unsigned n = g_vm.ptp.nchunks, best = n;

	for (unsigned i = 0; i < n; i++) {
		struct ptchunk *c = chunk(i);
		if (c->ndirty < min_dirty || !c->ndirty)
			continue;
		if (best == n || (c->live == 0 && chunk(best)->live) ||
		    ((c->live == 0) == (chunk(best)->live == 0) && c->ndirty > chunk(best)->ndirty))
			best = i;
	}
	return best;
}

/*
 * Resident clean pages first, then a chunk worth recycling (a quarter dirty: two ioctls are
 * cheaper than that many first-touch faults, and memory stays bounded), then fresh pages, then
 * any recycling at all.
 */
gpa_t ptpage_alloc(void)
{
	unsigned n = g_vm.ptp.nchunks, best;
	gpa_t g;

	for (unsigned k = 0; k < n && g_vm.ptp.nclean; k++)
		if ((g = take((g_vm.ptp.cur + k) % n, 0)) != GPA_NONE)
			return g;
	if (g_vm.ptp.recycle && (best = recycle_pick(CHUNK_PAGES / 4)) < n && recycle(best) == 0)
		return take(best, 0);
	for (unsigned k = 0; k < n; k++)
		if ((g = take((g_vm.ptp.cur + k) % n, 1)) != GPA_NONE)
			return g;
	if (g_vm.ptp.recycle && (best = recycle_pick(1)) < n && recycle(best) == 0)
		return take(best, 0);
	return GPA_NONE;
}

int ptpage_owns(gpa_t g)
{
	g &= PTE_ADDR;
	return g >= g_vm.ptp.gpa_lo && g < g_vm.ptp.gpa_hi;
}

/* Index of a page of the region (the caller knows it is one). */
static size_t page_index(gpa_t g)
{
	return ((g & PTE_ADDR) - g_vm.ptp.gpa_lo) / PAGE_SIZE;
}

void ptpage_ref(gpa_t g)
{
	g_vm.ptp.refs[page_index(g)]++;
}

int ptpage_refcount(gpa_t g)
{
	return (int)g_vm.ptp.refs[page_index(g)];
}

/* A table page copied while others still use it: its entries are no longer all it may trust. */
void ptpage_unseal(gpa_t g)
{
	g_vm.ptp.unsealed[page_index(g)] = 1;
}

int ptpage_unsealed(gpa_t g)
{
	return g_vm.ptp.unsealed[page_index(g)];
}

static void put(gpa_t g, int dirty);

static void put(gpa_t g, int dirty)
{
	uintptr_t off = hva_of(g) - g_vm.ptp.base;
	struct ptchunk *c = chunk((unsigned)(off / PTPAGE_CHUNK));
	uint16_t k = (uint16_t)((off % PTPAGE_CHUNK) / PAGE_SIZE);

	if (dirty) {
		c->dirty[c->ndirty++] = k;
		if (off / PTPAGE_CHUNK < g_vm.ptp.dirty_hint)
			g_vm.ptp.dirty_hint = (unsigned)(off / PTPAGE_CHUNK);
	} else {
		c->clean[c->nclean++] = k;
		g_vm.ptp.nclean++;
	}
}

/* Drops a reference; the last one frees the page (under shadow paging KVM may still shadow it). */
void ptpage_unref(gpa_t g)
{
	size_t i = page_index(g);
	uintptr_t off;

	if (g_vm.ptp.refs[i] == 0 || --g_vm.ptp.refs[i] > 0)
		return;
	off = hva_of(g & PTE_ADDR) - g_vm.ptp.base;
	chunk((unsigned)(off / PTPAGE_CHUNK))->live--;
	g_vm.ptp.live--;
	put(g & PTE_ADDR, g_vm.ptp.shadow);
}

size_t ptpage_live(void)
{
	return g_vm.ptp.live;
}

/* The stub scrubbed it (KVM dropped its shadows): clean. */
void ptpage_scrubbed(gpa_t g)
{
	g_vm.ptp.reclaimed++;
	put(g, 0);
}

/* One dirty page for the stub's scrub (kernels without per-slot zapping), or GPA_NONE. */
gpa_t ptpage_dirty_next(void)
{
	for (; g_vm.ptp.dirty_hint < g_vm.ptp.nchunks; g_vm.ptp.dirty_hint++) {
		unsigned i = g_vm.ptp.dirty_hint;
		struct ptchunk *c = chunk(i);
		if (c->ndirty)
			return gpa_of(g_vm.ptp.base + (uintptr_t)i * PTPAGE_CHUNK +
				      (uintptr_t)c->dirty[--c->ndirty] * PAGE_SIZE);
	}
	return GPA_NONE;
}

uint64_t ptpage_touched(void)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < g_vm.ptp.nchunks; i++)
		n += chunk(i)->bump;
	return n;
}

uint64_t ptpage_recycles(void)
{
	return g_vm.ptp.recycles;
}
