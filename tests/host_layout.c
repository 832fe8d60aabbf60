/* The guest-physical layout for every MAXPHYADDR, and the arena's allocator (no KVM needed). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "arena.h"
#include "memmap.h"
#include "memrange.h"
#include "state.h"

#define GIB (1UL << 30)

/* A 1 GiB-aligned stand-in for the arena: only its address matters to the layout. */
static uintptr_t fake_arena(void)
{
	return 0x7e0000000000UL; /* where a 0x7f.. arena would wrap the direct map if GPA = HVA */
}

static void layout_reset(unsigned maxphy)
{
	memset(&g_vm.mm, 0, sizeof(g_vm.mm));
	g_vm.kvm.vm_fd = -1; /* memslots are bookkeeping only */
	g_vm.kvm.max_memslots = 32764;
	g_vm.cpu.maxphy = maxphy;
}

Test(layout, library_window_never_wraps_the_direct_map, .timeout = 30)
{
	const char *why;

	for (unsigned maxphy = 36; maxphy <= 52; maxphy++) {
		for (uint64_t lib = GIB; lib <= (64 * GIB); lib *= 2) {
			int r = memmap_layout_check(maxphy, lib, &why);
			uint64_t end = VMLWC_LIB_GPA + lib;
			if (r == 0) {
				cr_assert_leq(end, 1UL << maxphy, "maxphy %u lib %lx", maxphy, lib);
				cr_assert_gt(VMLWC_PHYSMAP_KVA + end, VMLWC_PHYSMAP_KVA, "wraps");
				cr_assert_leq(VMLWC_PHYSMAP_KVA + end, VMLWC_STUB_KVA, "meets the stub window");
			} else {
				cr_assert_not_null(why);
				cr_assert(end + GIB > (1UL << maxphy), "maxphy %u lib %lx refused: %s", maxphy, lib, why);
			}
		}
	}
	/* a window the direct map cannot hold is refused whatever the width */
	cr_assert_lt(memmap_layout_check(52, VMLWC_PHYSMAP_SPAN, &why), 0);
	cr_assert(strstr(why, "direct map") != NULL, "%s", why);
	cr_assert_lt(memmap_layout_check(35, GIB, &why), 0);
	cr_assert_lt(memmap_layout_check(48, GIB + 4096, &why), 0);
}

/* Every user block, up to USER_TOP, lands below 2^MAXPHYADDR, above the library, one to one. */
Test(layout, every_user_address_for_every_maxphyaddr, .timeout = 60)
{
	const char *why;
	static const uint64_t probes[] = { 0x0, 0x400000, 0x40000000, 0x80000000, 0x555555554000,
					   0x7d0000000000, 0x7f0000000000, 0x7ffe0000, 0x7fffc0000000,
					   USER_TOP - 4096 };

	for (unsigned maxphy = 36; maxphy <= 52; maxphy++) {
		layout_reset(maxphy);
		cr_assert_eq(memmap_library(fake_arena(), 2 * GIB, 0, 0, &why), 0, "maxphy %u: %s", maxphy, why);
		for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
			uint64_t h = probes[i];
			int r = memmap_ensure(h, 4096);
			if (r == -ENOSPC) {
				cr_assert_lt(maxphy, 40, "maxphy %u ran out of GPA space at %lx", maxphy, h);
				continue;
			}
			cr_assert_eq(r, 0, "maxphy %u hva %lx: %d", maxphy, h, r);
			gpa_t g = gpa_of(h);
			cr_assert_neq(g, GPA_NONE);
			cr_assert_lt(g, 1UL << maxphy, "maxphy %u hva %lx gpa %lx", maxphy, h, g);
			cr_assert_geq(g, VMLWC_LIB_GPA + 2 * GIB, "user gpa %lx inside the library window", g);
			cr_assert_eq(hva_of(g), h);
			if (maxphy >= 48 && h >= VMLWC_LIB_GPA + 2 * GIB)
				cr_assert_eq(g, h, "identity expected at maxphy %u", maxphy);
		}
		/* library memory keeps its window */
		cr_assert_eq(gpa_of(fake_arena()), VMLWC_LIB_GPA);
		cr_assert_eq(gpa_of(fake_arena() + 2 * GIB - 1), VMLWC_LIB_GPA + 2 * GIB - 1);
		cr_assert_eq(hva_of(VMLWC_DOORBELL_GPA), 0, "block 0 must stay without a memslot");
	}
}

Test(layout, narrow_maxphyaddr_runs_out_cleanly, .timeout = 30)
{
	const char *why;

	layout_reset(36);
	cr_assert_eq(memmap_library(fake_arena(), 2 * GIB, 0, 0, &why), 0, "%s", why);
	/* 64 GiB of GPA space: 1 block for the doorbell, 2 for the library, 61 for the application */
	unsigned ok = 0;
	for (uint64_t h = 0x100000000000UL; h < 0x100000000000UL + 100 * GIB; h += GIB)
		ok += memmap_ensure(h, 4096) == 0;
	cr_assert_eq(ok, 61);
	cr_assert_eq(memmap_ensure(0x200000000000UL, 4096), -ENOSPC);
}

static struct arena a;

Test(arena, runs_of_any_size_come_back, .timeout = 120)
{
	cr_assert_eq(arena_init(&a, 64UL << 20), 0);
	cr_assert_eq(a.base & (GIB - 1), 0, "1 GiB aligned");
	size_t used1 = 0;
	for (int round = 0; round < 300; round++) {
		size_t n[] = { 1, 3, 8, 9, 59, 200, 2, 1024 };
		void *p[8];
		for (int i = 0; i < 8; i++) {
			p[i] = arena_pages(&a, n[i]);
			cr_assert_not_null(p[i], "round %d size %zu", round, n[i]);
			for (size_t k = 0; k < n[i] * 4096; k += 4096)
				cr_assert_eq(((char *)p[i])[k + (k / 4096) % 4096], 0, "not zeroed");
			for (size_t k = 0; k < n[i] * 4096; k += 4096)
				memset((char *)p[i] + k, 0xab, 64); /* dirty every page */
			((char *)p[i])[n[i] * 4096 - 1] = 1;
		}
		for (int i = 7; i >= 0; i -= 2)
			arena_free(&a, p[i], n[i]);
		for (int i = 0; i < 8; i += 2)
			arena_free(&a, p[i], n[i]);
		cr_assert_eq(arena_in_use(&a), 0);
		if (round == 0)
			used1 = a.used;
	}
	/* freed runs merged and were reused: nothing grows after the first round */
	cr_assert_eq(a.used, used1, "used grew from %zu to %zu", used1, a.used);
	arena_fini(&a);
}

Test(arena, exhaustion_is_null_not_corruption, .timeout = 30)
{
	cr_assert_eq(arena_init(&a, GIB), 0);
	void *big = arena_pages(&a, GIB / 4096);
	cr_assert_not_null(big);
	cr_assert_null(arena_pages(&a, 1));
	arena_free(&a, big, GIB / 4096);
	cr_assert_not_null(arena_pages(&a, 9));
	arena_fini(&a);
}

/* A full list of protected or pinned ranges refuses the next one by name; none is dropped. */
Test(layout, full_range_lists_refuse_loudly, .timeout = 30)
{
	const uint64_t base = 0x7e0000000000UL;
	unsigned n = ARRAY_SIZE(g_vm.mem.protect_lo), m = ARRAY_SIZE(g_vm.mem.pin_lo);

	memset(&g_vm.mem, 0, sizeof(g_vm.mem));
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(mem_protect_add(base + i * 0x2000UL, 0x1000), 0, "range %u", i);
	errno = 0;
	cr_expect_eq(mem_protect_add(base + n * 0x2000UL, 0x1000), -1);
	cr_expect_eq(errno, ENOSPC);
	cr_expect(strstr(vmlwc_strerror(), "protected") != NULL, "message: %s", vmlwc_strerror());
	for (unsigned i = 0; i < n; i++)
		cr_expect_eq(mem_is_protected(base + i * 0x2000UL, 1), 1, "range %u lost", i);
	cr_expect_eq(mem_is_protected(base + n * 0x2000UL, 1), 0);

	for (unsigned i = 0; i < m; i++)
		cr_assert_eq(mem_pin_add(base + i * 0x2000UL, base + i * 0x2000UL + 0x1000), 0, "pin %u", i);
	errno = 0;
	cr_expect_eq(mem_pin_add(base + m * 0x2000UL, base + m * 0x2000UL + 0x1000), -1);
	cr_expect_eq(errno, ENOSPC);
	for (unsigned i = 0; i < m; i++)
		cr_expect_eq(mem_is_pinned(base + i * 0x2000UL, 1), 1, "pin %u lost", i);
	memset(&g_vm.mem, 0, sizeof(g_vm.mem));
}
