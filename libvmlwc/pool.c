/* The frame pool: copy-on-write frames with reference counts, shared by the host and the stub. */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "memmap.h"
#include "pgtable.h"
#include "pool.h"
#include "ptpage.h"
#include "rawsys.h"
#include "state.h"

static struct vmlwc_pool *pool(void)
{
	return g_vm.pool.hdr;
}

int pool_init(size_t bytes)
{
	struct vmlwc_pool *p = pool();
	uint64_t n = bytes / PAGE_SIZE;
	void *frames = arena_pages(&g_vm.arena, n);
	void *refs = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(n * sizeof(uint32_t)) / PAGE_SIZE);
	void *stack = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(n * sizeof(uint64_t)) / PAGE_SIZE);

	if (!frames || !refs || !stack)
		return -ENOMEM;
	p->base_gpa = gpa_of((uintptr_t)frames);
	p->nframes = n;
	p->bump = p->nfree = p->in_use = p->cow_faults = 0;
	p->refs_kva = VMLWC_PHYSMAP_KVA + gpa_of((uintptr_t)refs);
	p->free_kva = VMLWC_PHYSMAP_KVA + gpa_of((uintptr_t)stack);
	g_vm.pool.refs = refs;
	g_vm.pool.free = stack;
	/* a frame that stays zero: fresh memory in an lwC's view, copied on its first write */
	g_vm.pool.zero_frame = pool_alloc();
	if (g_vm.pool.zero_frame == GPA_NONE)
		return -ENOMEM;
	pool_ref(g_vm.pool.zero_frame); /* never the last reference: a write always copies */
	return 0;
}

static int64_t frame_index(gpa_t g)
{
	struct vmlwc_pool *p = pool();

	g &= PTE_ADDR;
	if (!p || g < p->base_gpa || g >= p->base_gpa + p->nframes * PAGE_SIZE)
		return -1;
	return (int64_t)((g - p->base_gpa) / PAGE_SIZE);
}

/*
 * References count for pool frames and for page-table pages (ptpage.c) alike: an entry that
 * points to either holds one. Anything else (the root's host pages) is not counted.
 */
void pool_ref(uint64_t pte)
{
	int64_t i = frame_index(pte);

	if (i < 0) {
		if (ptpage_owns(pte))
			ptpage_ref(pte);
		return;
	}
	if (g_vm.pool.refs[i]++ == 0)
		pool()->in_use++;
}

/*
 * With several vCPUs a frame or table page whose last reference goes is not free yet: another
 * vCPU may still reach it through a stale translation (an old root, a TLB entry) until it has
 * been stopped and revalidated (run_sync_others). Its last reference waits in the quarantine,
 * dropped for real by pool_quarantine_flush after such a sync, at the end of the exit that
 * dropped it (never in the middle of a transaction, whose old tree is still current). The
 * quarantine grows as needed (arena pages, doubling); should the arena be exhausted the
 * reference goes at once and `unsafe` counts it.
 */
#define QUARANTINE_FIRST 4096

static int quarantined(uint64_t pte)
{
	if (g_vm.kvm.nvcpus <= 1 || pool_refcount(pte) != 1)
		return 0;
	if (g_vm.pool.nquarantine == g_vm.pool.quarantine_cap) {
		uint64_t cap = g_vm.pool.quarantine_cap ? 2 * g_vm.pool.quarantine_cap : QUARANTINE_FIRST;
		gpa_t *q = arena_pages(&g_vm.arena, cap * sizeof(gpa_t) / PAGE_SIZE);
		if (!q) {
			g_vm.pool.unsafe++;
			return 0;
		}
		if (g_vm.pool.quarantine) {
			memcpy(q, g_vm.pool.quarantine, g_vm.pool.nquarantine * sizeof(gpa_t));
			arena_free(&g_vm.arena, g_vm.pool.quarantine, g_vm.pool.quarantine_cap * sizeof(gpa_t) / PAGE_SIZE);
		}
		g_vm.pool.quarantine = q;
		g_vm.pool.quarantine_cap = cap;
	}
	g_vm.pool.quarantine[g_vm.pool.nquarantine++] = pte & PTE_ADDR;
	return 1;
}

void pool_quarantine_flush(void)
{
	uint64_t n = g_vm.pool.nquarantine;

	g_vm.pool.nquarantine = 0;
	for (uint64_t k = 0; k < n; k++)
		pool_unref_now(g_vm.pool.quarantine[k]);
	g_vm.pool.released += n;
}

void pool_unref(uint64_t pte)
{
	if (!quarantined(pte))
		pool_unref_now(pte);
}

void pool_unref_now(uint64_t pte)
{
	int64_t i = frame_index(pte);

	if (i < 0) {
		if (ptpage_owns(pte))
			ptpage_unref(pte);
		return;
	}
	if (g_vm.pool.refs[i] == 0)
		return;
	if (--g_vm.pool.refs[i] == 0) {
		g_vm.pool.free[pool()->nfree++] = (uint64_t)i;
		pool()->in_use--;
	}
}

/*
 * Frames past the bump pointer are not backed yet: back the next batch in one call rather than
 * one first-touch fault per frame inside each copy-on-write fault.
 */
#define POOL_PREFAULT 256
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static void pool_prefault(struct vmlwc_pool *p)
{
	uint64_t end = p->bump + POOL_PREFAULT;

	if (g_vm.pool.populated >= end || g_vm.pool.populated >= p->nframes)
		return;
	if (end > p->nframes)
		end = p->nframes;
	if (g_vm.pool.populated < p->bump)
		g_vm.pool.populated = p->bump;
	RAW3(SYS_madvise, hva_of(p->base_gpa) + g_vm.pool.populated * PAGE_SIZE,
	     (end - g_vm.pool.populated) * PAGE_SIZE, MADV_POPULATE_WRITE);
	g_vm.pool.populated = end;
}

/* A frame with one reference, or GPA_NONE when the pool is exhausted. */
gpa_t pool_alloc(void)
{
	struct vmlwc_pool *p = pool();
	uint64_t i;

	if (p->nfree)
		i = g_vm.pool.free[--p->nfree];
	else if (p->bump < p->nframes) {
		pool_prefault(p);
		i = p->bump++;
	} else
		return GPA_NONE;
	g_vm.pool.refs[i] = 1;
	p->in_use++;
	return p->base_gpa + i * PAGE_SIZE;
}

int pool_refcount(uint64_t pte)
{
	int64_t i = frame_index(pte);

	if (i < 0)
		return ptpage_owns(pte) ? ptpage_refcount(pte) : -1;
	return (int)g_vm.pool.refs[i];
}

uint64_t pool_in_use(void)
{
	return pool()->in_use;
}

size_t pool_frames_free(void)
{
	return (size_t)(pool()->nframes - pool()->in_use);
}
