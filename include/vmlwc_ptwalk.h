/* The 4-level page-table walk shared by the host library and the guest stub. Not installed. */
#ifndef VMLWC_PTWALK_H
#define VMLWC_PTWALK_H

/*
 * Freestanding (stdint.h only, integer only) because the stub includes it: one copy of the
 * index arithmetic and of the read-only descent, so the host and the stub cannot come to read
 * a tree differently.
 *
 * Walks through vmlwc_pt_walk: pgtable.c pt_span, pt_path_shared, pt_leaf_table; pf.c leaf,
 * path_writable, lazy_identity.
 * Index and span arithmetic only, since they change or build the tree on the way down or keep
 * more than one entry: pgtable.c walk_fresh (descend: copies and creates levels in a
 * transaction), set_span, protect_span, kmap (creates levels), pt_lookup (folds U, W and NX of
 * every level), fork_level, fork_lazy; pf.c path_own (copies shared tables); cow.c
 * cow_prepare and fault.c return_through_store (the leaf's slot in a table they already have).
 */
#include <stdint.h>

#define VMLWC_PT_ADDR 0x000ffffffffff000UL /* the frame or table an entry points to */
#define VMLWC_PT_TOP 3                     /* the PML4's level; leaves are level 0 */

/* The slot of va in a table at `level`. */
static inline unsigned vmlwc_pt_index(uint64_t va, int level)
{
	return (va >> (12 + 9 * level)) & 511;
}

/* Bytes one entry at `level` stands for. */
static inline uint64_t vmlwc_pt_span(int level)
{
	return 1UL << (12 + 9 * level);
}

/* The first address the entry at `level` holding va stands for. */
static inline uint64_t vmlwc_pt_low(uint64_t va, int level)
{
	return va & ~(vmlwc_pt_span(level) - 1);
}

/*
 * The entry for va in the tree at root, descending while (entry & mask) == want, down to
 * `bottom` at most (whose entry is returned unchecked); *level: the level it stopped at, so
 * *level > bottom means that entry failed the test. table_of turns a table's GPA (or a CR3:
 * bits outside VMLWC_PT_ADDR are dropped first) into a pointer; the host passes hva_of's, the
 * stub its direct map. Always inlined, so that table_of and the test fold into the caller: the
 * stub's walks must stay as short as the hand-written ones they replaced.
 */
static inline __attribute__((always_inline)) uint64_t *
vmlwc_pt_walk(uint64_t root, uint64_t va, int bottom, uint64_t mask, uint64_t want,
	      uint64_t *(*table_of)(uint64_t gpa), int *level)
{
	uint64_t *t = table_of(root & VMLWC_PT_ADDR);

	/* not `l > bottom`: GCC 12 lays that loop out with one more jump per walk in the stub */
	for (int l = VMLWC_PT_TOP; l >= 1; l--) {
		if (l == bottom)
			break;
		uint64_t e = t[vmlwc_pt_index(va, l)];
		if ((e & mask) != want) {
			*level = l;
			return &t[vmlwc_pt_index(va, l)];
		}
		t = table_of(e & VMLWC_PT_ADDR);
	}
	*level = bottom;
	return &t[vmlwc_pt_index(va, bottom)];
}

#endif
