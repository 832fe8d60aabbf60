/* Guest-physical memory: 1 GiB memslot blocks added on demand, and the gpa_of/hva_of conversions. */
#include <errno.h>

#include "internal.h"
#include "rawsys.h"

#define BLOCK (1UL << MEMMAP_BLOCK_SHIFT)

/* g_vm.blocks is sorted by hva; g_vm.by_gpa holds indices sorted by gpa. */
#define blocks g_vm.blocks
#define by_gpa g_vm.by_gpa
#define nblocks g_vm.nblocks

static int find_hva(uintptr_t hva)
{
	unsigned lo = 0, hi = nblocks;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (hva < blocks[mid].hva)
			hi = mid;
		else if (hva >= blocks[mid].hva + BLOCK)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

static int find_gpa(gpa_t gpa)
{
	unsigned lo = 0, hi = nblocks;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct memblock *b = &blocks[by_gpa[mid]];
		if (gpa < b->gpa)
			hi = mid;
		else if (gpa >= b->gpa + BLOCK)
			lo = mid + 1;
		else
			return by_gpa[mid];
	}
	return -1;
}

gpa_t gpa_of(uintptr_t hva)
{
	int i = find_hva(hva);
	return i < 0 ? GPA_NONE : blocks[i].gpa + (hva - blocks[i].hva);
}

uintptr_t hva_of(gpa_t gpa)
{
	int i = find_gpa(gpa);
	return i < 0 ? 0 : blocks[i].hva + (gpa - blocks[i].gpa);
}

unsigned memmap_nblocks(void)
{
	return nblocks;
}

static int gpa_free(gpa_t g, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (find_gpa(g + i * BLOCK) >= 0 || find_hva(g + i * BLOCK) >= 0)
			return 0; /* also keep windows clear of future identity blocks */
	return 1;
}

/*
 * Identity when the guest's physical address width allows it, else the highest free window
 * of n blocks: a region added at once (the arena and its pool) stays contiguous in GPA.
 */
static gpa_t pick_gpa(uintptr_t hva, unsigned n)
{
	gpa_t limit = 1UL << g_vm.maxphy, g;

	if (hva + n * BLOCK <= limit && gpa_free(hva, n) && find_gpa(hva) < 0)
		return hva;
	for (g = limit - n * BLOCK; g >= BLOCK; g -= BLOCK)
		if (gpa_free(g, n))
			return g;
	return GPA_NONE;
}

static int add_block(uintptr_t hva, gpa_t gpa)
{
	unsigned i, pos, slot = nblocks;
	uint64_t size = BLOCK;
	int r;

	if (nblocks >= MEMMAP_MAX_BLOCKS || nblocks >= g_vm.max_memslots)
		return -ENOSPC;
	if (hva + size > USER_TOP && hva < USER_TOP)
		size = USER_TOP - hva;
	r = kvm_add_memslot(slot, gpa, hva, size);
	if (r < 0)
		return r;
	for (pos = 0; pos < nblocks && blocks[pos].hva < hva; pos++)
		;
	for (i = nblocks; i > pos; i--)
		blocks[i] = blocks[i - 1];
	blocks[pos].hva = hva;
	blocks[pos].gpa = gpa;
	nblocks++;
	/* rebuild the gpa index (insertion sort; blocks are few and added rarely) */
	for (i = 0; i < nblocks; i++) {
		unsigned j = i;
		by_gpa[j] = (unsigned short)i;
		while (j > 0 && blocks[by_gpa[j - 1]].gpa > blocks[by_gpa[j]].gpa) {
			unsigned short t = by_gpa[j];
			by_gpa[j] = by_gpa[j - 1];
			by_gpa[j - 1] = t;
			j--;
		}
	}
	return 0;
}

int memmap_ensure(uintptr_t hva, size_t len)
{
	uintptr_t b, end = hva + len;

	if (len == 0)
		return 0;
	if (end < hva)
		return -EINVAL;
	for (b = hva & ~(BLOCK - 1); b < end; b += BLOCK) {
		unsigned n = 0;
		gpa_t g;

		if (find_hva(b) >= 0)
			continue;
		while (b + n * BLOCK < end && find_hva(b + n * BLOCK) < 0)
			n++;
		g = pick_gpa(b, n);
		if (g == GPA_NONE)
			return -ENOSPC;
		for (unsigned i = 0; i < n; i++) {
			int r = add_block(b + i * BLOCK, g + i * BLOCK);
			if (r < 0)
				return r;
		}
		b += (n - 1) * BLOCK;
	}
	return 0;
}
