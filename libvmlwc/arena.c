/* The library-owned arena: stub, vCPU areas, page tables, shadows; never user-visible. */
#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "arena.h"
#include "memmap.h"
#include "rawsys.h"

#define ARENA_ALIGN (1UL << MEMMAP_BLOCK_SHIFT)

/* A freed run of more than ARENA_FREE_CLASSES pages: its first 16 bytes, the rest zero. */
struct arena_run {
	struct arena_run *next; /* address order */
	size_t npages;
};

/*
 * Whole 1 GiB blocks, 1 GiB aligned: the arena's memslots hold library memory only, so the
 * library's GPA window holds nothing else.
 */
int arena_init(struct arena *a, size_t bytes)
{
	size_t size = (bytes + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1), len = size + ARENA_ALIGN;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t base, end;

	if (p == MAP_FAILED)
		return -1;
	base = ((uintptr_t)p + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	end = base + size;
	if (base > (uintptr_t)p)
		munmap(p, base - (uintptr_t)p);
	if ((uintptr_t)p + len > end)
		munmap((void *)end, (uintptr_t)p + len - end);
	madvise((void *)base, size, MADV_DONTDUMP);
	memset(a, 0, sizeof(*a));
	a->base = base;
	a->size = size;
	return 0;
}

void arena_fini(struct arena *a)
{
	if (a->base)
		munmap((void *)a->base, a->size);
	memset(a, 0, sizeof(*a));
}

/* First fit among the large freed runs; the rest of a split run stays free. */
static void *run_take(struct arena *a, size_t npages)
{
	struct arena_run **pp = (struct arena_run **)&a->runs, *r;

	for (; (r = *pp); pp = &r->next) {
		if (r->npages < npages)
			continue;
		if (r->npages > npages) {
			struct arena_run *rest = (void *)((char *)r + npages * PAGE_SIZE);
			if (r->npages - npages > ARENA_FREE_CLASSES) {
				rest->next = r->next;
				rest->npages = r->npages - npages;
				*pp = rest;
			} else {
				*pp = r->next;
				arena_free_small(a, rest, r->npages - npages);
			}
		} else {
			*pp = r->next;
		}
		r->next = NULL;
		r->npages = 0;
		return r; /* all zero now */
	}
	return NULL;
}

void *arena_pages(struct arena *a, size_t npages)
{
	size_t bytes = npages * PAGE_SIZE;
	void *p;

	if (npages == 0)
		return NULL;
	if (npages <= ARENA_FREE_CLASSES && a->free[npages - 1]) {
		p = a->free[npages - 1];
		a->free[npages - 1] = *(void **)p;
		memset(p, 0, bytes);
	} else if (!(p = run_take(a, npages))) {
		if (bytes > a->size - a->used)
			return NULL;
		p = (void *)(a->base + a->used);
		a->used += bytes;
	}
	a->in_use += npages;
	return p;
}

void arena_free_small(struct arena *a, void *p, size_t npages)
{
	*(void **)p = a->free[npages - 1];
	a->free[npages - 1] = p;
}

/*
 * Any run goes back. Large runs return their pages to the host and join the address-ordered
 * list, merged with free neighbours; one that ends at the bump pointer lowers it instead.
 */
void arena_free(struct arena *a, void *p, size_t npages)
{
	uintptr_t s = (uintptr_t)p, e = s + npages * PAGE_SIZE;
	struct arena_run **pp = (struct arena_run **)&a->runs, *r, *prev = NULL;

	if (!p || !npages)
		return;
	a->in_use -= npages;
	if (npages <= ARENA_FREE_CLASSES) {
		arena_free_small(a, p, npages);
		return;
	}
	RAW3(SYS_madvise, s, e - s, MADV_DONTNEED);
	while ((r = *pp) && (uintptr_t)r < s) {
		prev = r;
		pp = &r->next;
	}
	if (prev && (uintptr_t)prev + prev->npages * PAGE_SIZE == s) {
		prev->npages += npages; /* the freed pages read as zeros already */
		if (r && (uintptr_t)r == e) {
			prev->npages += r->npages;
			prev->next = r->next;
			memset(r, 0, sizeof(*r));
		}
		r = prev;
	} else {
		struct arena_run *n = p;
		n->npages = npages;
		n->next = r;
		if (r && (uintptr_t)r == e) {
			n->npages += r->npages;
			n->next = r->next;
			memset(r, 0, sizeof(*r));
		}
		*pp = n;
		r = n;
	}
	if (!r->next && (uintptr_t)r + r->npages * PAGE_SIZE == a->base + a->used) {
		/* the last run ends at the bump pointer: lower it instead */
		struct arena_run **lp = (struct arena_run **)&a->runs;
		while (*lp != r)
			lp = &(*lp)->next;
		*lp = NULL;
		a->used = (uintptr_t)r - a->base;
		memset(r, 0, sizeof(*r));
	}
}

/* Small objects (64, 128 or 256 bytes): carved from arena pages, kept on a free list per size. */
static unsigned obj_class(size_t size)
{
	return size <= 64 ? 0 : size <= 128 ? 1 : 2;
}

void *arena_obj_alloc(struct arena *a, size_t size)
{
	unsigned k = obj_class(size);
	size_t osz = 64UL << k;
	void *p;

	if (size > 256)
		return NULL;
	if (!a->objs[k]) {
		char *pg = arena_pages(a, 1);
		if (!pg)
			return NULL;
		for (size_t off = 0; off + osz <= PAGE_SIZE; off += osz) {
			*(void **)(pg + off) = a->objs[k];
			a->objs[k] = pg + off;
		}
	}
	p = a->objs[k];
	a->objs[k] = *(void **)p;
	memset(p, 0, osz);
	a->nobjs++;
	return p;
}

void arena_obj_free(struct arena *a, void *p, size_t size)
{
	unsigned k = obj_class(size);

	if (!p)
		return;
	*(void **)p = a->objs[k];
	a->objs[k] = p;
	a->nobjs--;
}

size_t arena_in_use(const struct arena *a)
{
	return a->in_use;
}

int arena_overlaps(const struct arena *a, uintptr_t start, size_t len)
{
	return a->base && start < a->base + a->size && start + len > a->base;
}
