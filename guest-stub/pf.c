/* Copy-on-write faults and shared page tables, resolved in the guest: no exit for either. */
#include <stdint.h>

#include "vmlwc_abi.h"
#include "vmlwc_ptwalk.h"

#define P 1UL
#define W 2UL
#define U 4UL
#define D 0x40UL
#define PS 0x80UL
#define USER_TOP 0x7ffffffff000UL
#define ADDR VMLWC_PT_ADDR

struct vmlwc_pool vmlwc_stub_pool;
uint64_t vmlwc_stub_smap; /* CR4.SMAP is on: bracket user accesses with stac/clac */
uint64_t vmlwc_stub_live[VMLWC_MAX_LWCS]; /* KVAs of the live lwCs, kept by the host */
uint64_t vmlwc_stub_nlive;
extern uint64_t vmlwc_stub_cr3_of[(VMLWC_MAX_LWCS + 1) * VMLWC_MAX_VCPUS];

static inline uint64_t *phys(uint64_t gpa)
{
	return (uint64_t *)(VMLWC_PHYSMAP_KVA + (gpa & ADDR));
}

static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline void reload_cr3(void)
{
	uint64_t v = read_cr3();
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline int in_pool(const struct vmlwc_pool *p, uint64_t gpa)
{
	return gpa >= p->base_gpa && gpa < p->base_gpa + p->nframes * 4096;
}

static inline void copy_page(uint64_t dst, uint64_t src)
{
	uint64_t n = 512;
	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* The leaf entry of va in the tree at root, or 0. */
static uint64_t *leaf(uint64_t root, uint64_t va)
{
	int level;
	uint64_t *e = vmlwc_pt_walk(root, va, 0, P | U | PS, P | U, phys, &level);

	return level ? 0 : e; /* user halves hold 4 KiB user pages only */
}

static uint64_t frame_alloc(struct vmlwc_pool *p)
{
	if (p->nfree)
		return ((uint64_t *)p->free_kva)[--p->nfree];
	if (p->bump < p->nframes)
		return p->bump++;
	return ~0UL;
}

static void page_copy_from_user(struct vmlwc_pool *p, uint64_t idx, uint64_t uva)
{
	if (vmlwc_stub_smap)
		__asm__ volatile("stac" : : : "memory");
	copy_page((uint64_t)phys(p->base_gpa + (idx << 12)), uva & ~0xfffUL);
	if (vmlwc_stub_smap)
		__asm__ volatile("clac" : : : "memory");
}

/* The entries a copy of a table now shares: tables below become shared, private pages COW. */
static void share_entries(struct vmlwc_pool *p, uint64_t *src, uint64_t *dst, int level)
{
	uint32_t *refs = (uint32_t *)p->refs_kva;

	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = vmlwc_shared_entry(src[i], level);
		if (!e)
			continue;
		if (in_pool(p, e & ADDR))
			refs[((e & ADDR) - p->base_gpa) >> 12]++;
		src[i] = dst[i] = e;
	}
}

/*
 * Makes the tables on the path to va this tree's own: a shared one is copied (or taken over by
 * its last user). 1 when something changed, 0 when nothing was shared, 2 when the pool is empty.
 */
static int path_own(struct vmlwc_pool *p, uint64_t va)
{
	uint32_t *refs = (uint32_t *)p->refs_kva;
	uint64_t *t = phys(read_cr3());
	int changed = 0;

	for (int level = VMLWC_PT_TOP; level >= 1; level--) {
		uint64_t *e = &t[vmlwc_pt_index(va, level)];
		if ((*e & (P | U | PS)) != (P | U))
			break;
		if ((*e & VMLWC_PTE_STBL) && !in_pool(p, *e & ADDR))
			return 1; /* cannot be: shared tables are pool frames */
		if (*e & VMLWC_PTE_STBL) {
			uint64_t old = *e & ADDR, oi = (old - p->base_gpa) >> 12;
			if (refs[oi] > 1) {
				uint64_t idx = frame_alloc(p), n;
				if (idx == ~0UL)
					return 2;
				n = p->base_gpa + (idx << 12);
				refs[idx] = 1;
				p->in_use++;
				copy_page((uint64_t)phys(n), (uint64_t)phys(old));
				share_entries(p, phys(old), phys(n), level - 1);
				refs[oi]--;
				*e = (*e & ~(ADDR | VMLWC_PTE_STBL)) | n | W;
				p->table_copies++;
			} else {
				*e = (*e & ~VMLWC_PTE_STBL) | W;
			}
			changed = 1;
		}
		t = phys(*e);
	}
	return changed;
}

/* Whether every entry above va's leaf lets ring 3 write. */
static int path_writable(uint64_t root, uint64_t va)
{
	int level;

	/* the level-1 entry is tested here, so the walk's level is not needed (nor kept in the loop) */
	return (*vmlwc_pt_walk(root, va, 1, P | W | U, P | W | U, phys, &level) & (P | W | U)) == (P | W | U);
}

/* Whether a lazy entry above va in the tree at root stands for the host memory there (not built yet). */
static int lazy_identity(uint64_t root, uint64_t va)
{
	int level;
	uint64_t e = *vmlwc_pt_walk(root, va, 0, P | U | PS, P | U, phys, &level);

	/* a lazy entry is not present: the walk stops at it */
	return level > 0 && (e & (P | VMLWC_PTE_LAZY | VMLWC_PTE_LZERO)) == VMLWC_PTE_LAZY;
}

/*
 * The root lwC is the process, whose memory native threads share: its page stays in place and
 * the other lwCs that still map it get the copy. Their trees are not loaded on this vCPU. One
 * that maps it through a lazy entry has no leaf to change: the host builds it (return 1).
 */
static int copy_out(struct vmlwc_pool *p, uint64_t cur_root, uint64_t *t, uint64_t e, uint64_t cr2)
{
	uint32_t *refs = (uint32_t *)p->refs_kva;
	uint64_t old = e & ADDR, idx, users = 0;

	for (uint64_t i = 0; i < vmlwc_stub_nlive; i++) {
		struct vmlwc_lwc *o = (struct vmlwc_lwc *)vmlwc_stub_live[i];
		if (o->root != cur_root && lazy_identity(o->root, cr2))
			return 1;
	}
	idx = frame_alloc(p);
	if (idx == ~0UL)
		return 2;
	page_copy_from_user(p, idx, cr2);
	for (uint64_t i = 0; i < vmlwc_stub_nlive; i++) {
		struct vmlwc_lwc *o = (struct vmlwc_lwc *)vmlwc_stub_live[i];
		uint64_t *ot;
		if (o->root == cur_root)
			continue;
		ot = leaf(o->root, cr2);
		if (!ot || !(*ot & (P | VMLWC_PTE_PROTNONE)))
			continue;
		if ((*ot & ADDR) == old) {
			*ot = (*ot & ~ADDR) | (p->base_gpa + (idx << 12));
			users++;
		}
		/* its PCID may cache the old frame (also where a table shared with an lwC edited above) */
		if ((*ot & ADDR) == p->base_gpa + (idx << 12))
			for (int i = 0; i < VMLWC_MAX_VCPUS; i++)
				vmlwc_stub_cr3_of[(o->id + 1) * VMLWC_MAX_VCPUS + i] &= ~VMLWC_CR3_NOFLUSH;
	}
	if (users) {
		refs[idx] = (uint32_t)users;
		p->in_use++;
	} else {
		((uint64_t *)p->free_kva)[p->nfree++] = idx;
	}
	*t = (e & ~VMLWC_PTE_COW) | W | D;
	__asm__ volatile("invlpg (%0)" : : "r"(cr2) : "memory");
	p->cow_faults++;
	return 0;
}

/* 0 when resolved; non-zero sends the fault to the host (not COW, or the pool is empty). */
int vmlwc_stub_cow(uint64_t cr2)
{
	struct vmlwc_pool *p = &vmlwc_stub_pool;
	uint32_t *refs = (uint32_t *)p->refs_kva;
	uint64_t *t, e, old, idx, oidx = ~0UL, cur;
	int own = 0;

	/* a ring-3 write to a present supervisor page faults with error 7 too: never walk for it */
	if (cr2 >= USER_TOP || p->multi)
		return 1;
	if (p->lazy_tables && (own = path_own(p, cr2)) == 2)
		return 2;
	t = leaf(read_cr3(), cr2);
	if (own)
		reload_cr3(); /* entries cached while the path was read-only */
	if (!t)
		return 1;
	e = *t;
	if ((e & (P | U | W)) == (P | U | W) && path_writable(read_cr3(), cr2)) {
		/* writable now that the path is this tree's, or a TLB entry older than that */
		if (!own)
			__asm__ volatile("invlpg (%0)" : : "r"(cr2) : "memory");
		return 0;
	}
	if ((e & (P | U | VMLWC_PTE_COW)) != (P | U | VMLWC_PTE_COW))
		return 1;
	old = e & ADDR;
	cur = read_cr3() & ADDR;
	if (cur == p->root_tree &&
	    !(old >= p->base_gpa && old < p->base_gpa + p->nframes * 4096))
		return copy_out(p, cur, t, e, cr2);
	if (old >= p->base_gpa && old < p->base_gpa + p->nframes * 4096) {
		oidx = (old - p->base_gpa) >> 12;
		if (refs[oidx] == 1) {
			/* last reference: take the frame over */
			*t = (e & ~VMLWC_PTE_COW) | W | D;
			__asm__ volatile("invlpg (%0)" : : "r"(cr2) : "memory");
			p->cow_faults++;
			return 0;
		}
	}
	idx = frame_alloc(p);
	if (idx == ~0UL)
		return 2;
	page_copy_from_user(p, idx, cr2);
	refs[idx] = 1;
	p->in_use++;
	if (oidx != ~0UL && --refs[oidx] == 0) {
		((uint64_t *)p->free_kva)[p->nfree++] = oidx;
		p->in_use--;
	}
	*t = ((e & ~(ADDR | VMLWC_PTE_COW)) | (p->base_gpa + (idx << 12))) | W | D;
	__asm__ volatile("invlpg (%0)" : : "r"(cr2) : "memory");
	p->cow_faults++;
	return 0;
}
