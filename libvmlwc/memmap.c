/* Guest-physical memory: the library window, 1 GiB memslot blocks on demand, gpa_of/hva_of. */
#include <errno.h>

#include "base.h"
#include "memmap.h"
#include "rawsys.h"
#include "state.h"

#define BLOCK (1UL << MEMMAP_BLOCK_SHIFT)

/* One memslot: KVM_SET_USER_MEMORY_REGION (size 0 deletes it); 0 or -errno. */
int memmap_slot_set(unsigned slot, gpa_t gpa, uintptr_t hva, uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = hva,
	};
	long rc;

	if (g_vm.kvm.vm_fd < 0)
		return 0; /* host-only use (unit tests of the redirection layer) */
	rc = RAW3(SYS_ioctl, g_vm.kvm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
	return rc < 0 ? (int)rc : 0;
}


/* g_vm.mm.blocks is sorted by hva; g_vm.mm.by_gpa holds indices sorted by gpa. */

static int find_hva(uintptr_t hva)
{
	unsigned lo = 0, hi = g_vm.mm.nblocks;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (hva < g_vm.mm.blocks[mid].hva)
			hi = mid;
		else if (hva >= g_vm.mm.blocks[mid].hva + BLOCK)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

static int find_gpa(gpa_t gpa)
{
	unsigned lo = 0, hi = g_vm.mm.nblocks;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct memblock *b = &g_vm.mm.blocks[g_vm.mm.by_gpa[mid]];
		if (gpa < b->gpa)
			hi = mid;
		else if (gpa >= b->gpa + BLOCK)
			lo = mid + 1;
		else
			return g_vm.mm.by_gpa[mid];
	}
	return -1;
}

/* The library window is linear: page tables and frames translate without a search. */
gpa_t gpa_of(uintptr_t hva)
{
	if (g_vm.mm.lib_end && hva - g_vm.mm.lib_hva < g_vm.mm.lib_end - VMLWC_LIB_GPA)
		return VMLWC_LIB_GPA + (hva - g_vm.mm.lib_hva);
	int i = find_hva(hva);
	return i < 0 ? GPA_NONE : g_vm.mm.blocks[i].gpa + (hva - g_vm.mm.blocks[i].hva);
}

uintptr_t hva_of(gpa_t gpa)
{
	if (g_vm.mm.lib_end && gpa - VMLWC_LIB_GPA < g_vm.mm.lib_end - VMLWC_LIB_GPA)
		return g_vm.mm.lib_hva + (gpa - VMLWC_LIB_GPA);
	int i = find_gpa(gpa);
	return i < 0 ? 0 : g_vm.mm.blocks[i].hva + (gpa - g_vm.mm.blocks[i].gpa);
}

/* Blocks that can still get a memslot (application memory). */
unsigned memmap_slots_free(void)
{
	unsigned by_slots = g_vm.kvm.max_memslots > g_vm.mm.nslots ? g_vm.kvm.max_memslots - g_vm.mm.nslots : 0;
	unsigned by_blocks = MEMMAP_MAX_BLOCKS - g_vm.mm.nblocks;

	return by_slots < by_blocks ? by_slots : by_blocks;
}

unsigned memmap_nblocks(void)
{
	return g_vm.mm.nblocks;
}

int memmap_layout_check(unsigned maxphy, uint64_t lib_bytes, const char **why)
{
	uint64_t limit = maxphy >= 64 ? ~0UL : 1UL << maxphy;
	uint64_t end = VMLWC_LIB_GPA + lib_bytes;

	*why = NULL;
	if (maxphy < 36 || maxphy > 52)
		*why = "guest MAXPHYADDR outside 36..52";
	else if ((lib_bytes & (BLOCK - 1)) || end < VMLWC_LIB_GPA)
		*why = "library window not a whole number of 1 GiB blocks";
	else if (end > VMLWC_PHYSMAP_SPAN)
		*why = "library window larger than the direct map (PHYSMAP + gpa would reach the stub window)";
	else if (end > limit)
		*why = "library window above the guest MAXPHYADDR (lower pool_bytes)";
	else if (end + BLOCK > limit)
		*why = "no guest-physical room left for application memory (lower pool_bytes)";
	return *why ? -ENOSPC : 0;
}

/* A block is free in GPA space: no block there, and no future identity block either. */
static int gpa_free(gpa_t g, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (find_gpa(g + i * BLOCK) >= 0 || find_hva(g + i * BLOCK) >= 0)
			return 0;
	return 1;
}

/*
 * Application memory: identity above the library window where MAXPHYADDR allows it, else the
 * highest free window of n blocks. Nothing below g_vm.mm.lib_end: block 0 is the doorbell's,
 * the rest the library's.
 */
static gpa_t pick_gpa(uintptr_t hva, unsigned n)
{
	gpa_t limit = g_vm.mm.gpa_limit, g;

	if (hva >= g_vm.mm.lib_end && hva + n * BLOCK <= limit && gpa_free(hva, n) && find_gpa(hva) < 0)
		return hva;
	if (n * BLOCK > limit - g_vm.mm.lib_end)
		return GPA_NONE;
	for (g = limit - n * BLOCK; g >= g_vm.mm.lib_end; g -= BLOCK)
		if (gpa_free(g, n))
			return g;
	return GPA_NONE;
}

/* A translation block; with a memslot of its own unless the caller registers slots itself. */
static int add_block(uintptr_t hva, gpa_t gpa, int slot_too)
{
	unsigned i, pos, nb = g_vm.mm.nblocks;
	struct memblock *blocks = g_vm.mm.blocks;
	unsigned short *by_gpa = g_vm.mm.by_gpa;
	uint64_t size = BLOCK;
	int r;

	if (nb >= MEMMAP_MAX_BLOCKS || (slot_too && g_vm.mm.nslots >= g_vm.kvm.max_memslots))
		return -ENOSPC;
	if (hva + size > USER_TOP && hva < USER_TOP)
		size = USER_TOP - hva;
	if (slot_too) {
		r = memmap_slot_set(g_vm.mm.nslots, gpa, hva, size);
		if (r < 0)
			return r;
		g_vm.mm.nslots++;
	}
	for (pos = 0; pos < nb && blocks[pos].hva < hva; pos++)
		;
	for (i = nb; i > pos; i--)
		blocks[i] = blocks[i - 1];
	blocks[pos].hva = hva;
	blocks[pos].gpa = gpa;
	g_vm.mm.nblocks = ++nb;
	/* rebuild the gpa index (insertion sort; blocks are few and added rarely) */
	for (i = 0; i < nb; i++) {
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

unsigned memmap_slot_reserve(unsigned n)
{
	unsigned first = g_vm.mm.nslots;

	g_vm.mm.nslots += n;
	return first;
}

int memmap_library(uintptr_t hva, size_t len, uintptr_t hole_lo, uintptr_t hole_hi, const char **why)
{
	int r;

	if ((hva | len) & (BLOCK - 1) || g_vm.mm.lib_end) {
		*why = "library memory must be one 1 GiB-aligned region, placed once";
		return -EINVAL;
	}
	if ((r = memmap_layout_check(g_vm.cpu.maxphy, len, why)) < 0)
		return r;
	g_vm.mm.gpa_limit = 1UL << g_vm.cpu.maxphy;
	g_vm.mm.lib_end = VMLWC_LIB_GPA + len;
	g_vm.mm.lib_hva = hva;
	for (uint64_t off = 0; off < len; off += BLOCK)
		if ((r = add_block(hva + off, VMLWC_LIB_GPA + off, 0)) < 0) {
			*why = "too many memslot blocks";
			return r;
		}
	/* memslots: the window below the hole and above it (the hole's own come from its owner) */
	if (hole_lo >= hole_hi)
		hole_lo = hole_hi = hva + len;
	if ((hole_lo > hva && (r = memmap_slot_set(g_vm.mm.nslots++, VMLWC_LIB_GPA, hva, hole_lo - hva)) < 0) ||
	    (hole_hi < hva + len &&
	     (r = memmap_slot_set(g_vm.mm.nslots++, VMLWC_LIB_GPA + (hole_hi - hva), hole_hi, hva + len - hole_hi)) < 0)) {
		*why = "KVM_SET_USER_MEMORY_REGION for library memory";
		return r;
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
	if (!g_vm.mm.lib_end)
		return -ENODEV; /* the library window comes first */
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
			int r = add_block(b + i * BLOCK, g + i * BLOCK, 1);
			if (r < 0)
				return r;
		}
		b += (n - 1) * BLOCK;
	}
	return 0;
}
