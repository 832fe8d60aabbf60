/* Copy-on-write faults, resolved in the guest: no exit for a write to a COW page. */
#include <stdint.h>

#include "vmlwc_abi.h"

#define P 1UL
#define W 2UL
#define U 4UL
#define D 0x40UL
#define ADDR 0x000ffffffffff000UL

struct vmlwc_pool vmlwc_stub_pool;
uint64_t vmlwc_stub_smap; /* CR4.SMAP is on: bracket user accesses with stac/clac */
uint64_t vmlwc_stub_live[VMLWC_MAX_LWCS]; /* KVAs of the live lwCs, kept by the host */
uint64_t vmlwc_stub_nlive;

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

static inline void copy_page(uint64_t dst, uint64_t src)
{
	uint64_t n = 512;
	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* The leaf entry of va in the tree at root, or 0. */
static uint64_t *leaf(uint64_t root, uint64_t va)
{
	uint64_t *t = phys(root), e;

	for (int level = 3; level >= 1; level--) {
		e = t[(va >> (12 + 9 * level)) & 511];
		if (!(e & P))
			return 0;
		t = phys(e);
	}
	return t + ((va >> 12) & 511);
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

/*
 * The root lwC is the process, whose memory native threads share: its page stays in place and
 * the other lwCs that still map it get the copy. Their trees are not loaded on this vCPU.
 */
static int copy_out(struct vmlwc_pool *p, uint64_t cur, uint64_t *t, uint64_t e, uint64_t cr2)
{
	uint32_t *refs = (uint32_t *)p->refs_kva;
	uint64_t old = e & ADDR, idx = frame_alloc(p), users = 0;

	if (idx == ~0UL)
		return 2;
	page_copy_from_user(p, idx, cr2);
	for (uint64_t i = 0; i < vmlwc_stub_nlive; i++) {
		struct vmlwc_lwc *o = (struct vmlwc_lwc *)vmlwc_stub_live[i];
		uint64_t *ot;
		if ((uint64_t)o == cur)
			continue;
		ot = leaf(o->cr3, cr2);
		if (ot && (*ot & (P | VMLWC_PTE_PROTNONE)) && (*ot & ADDR) == old) {
			*ot = (*ot & ~ADDR) | (p->base_gpa + (idx << 12));
			users++;
		}
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
	uint64_t *t = leaf(read_cr3(), cr2), e, old, idx, oidx = ~0UL, rsp, cur;

	if (!t)
		return 1;
	e = *t;
	if ((e & (P | U | VMLWC_PTE_COW)) != (P | U | VMLWC_PTE_COW))
		return 1;
	old = e & ADDR;
	__asm__ volatile("mov %%rsp, %0" : "=r"(rsp));
	cur = ((struct vmlwc_vcpu_shared *)(rsp & ~(uint64_t)(VMLWC_VCPU_AREA_SIZE - 1)))->cur_lwc;
	if (((struct vmlwc_lwc *)cur)->id == 0 &&
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
