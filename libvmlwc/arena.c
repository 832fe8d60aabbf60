/* The library-owned arena: stub image, vCPU areas, page tables and stacks, never user-visible. */
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define ARENA_ALIGN (2UL << 20)

int arena_init(struct arena *a, size_t bytes)
{
	size_t len = bytes + ARENA_ALIGN;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t base, end;

	if (p == MAP_FAILED)
		return -1;
	/* 2 MiB alignment lets the kernel half map the arena with large pages. */
	base = ((uintptr_t)p + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	end = base + bytes;
	if (base > (uintptr_t)p)
		munmap(p, base - (uintptr_t)p);
	if ((uintptr_t)p + len > end)
		munmap((void *)end, (uintptr_t)p + len - end);
	madvise((void *)base, bytes, MADV_DONTDUMP);
	memset(a, 0, sizeof(*a));
	a->base = base;
	a->size = bytes;
	return 0;
}

void arena_fini(struct arena *a)
{
	if (a->base)
		munmap((void *)a->base, a->size);
	memset(a, 0, sizeof(*a));
}

void *arena_pages(struct arena *a, size_t npages)
{
	size_t bytes = npages * PAGE_SIZE;
	void *p;

	if (npages >= 1 && npages <= ARENA_FREE_CLASSES && a->free[npages - 1]) {
		p = a->free[npages - 1];
		a->free[npages - 1] = *(void **)p;
		memset(p, 0, bytes);
		return p;
	}
	if (bytes > a->size - a->used)
		return NULL;
	p = (void *)(a->base + a->used);
	a->used += bytes;
	return p;
}

/* Larger runs are not reused: they are rare (per-vCPU stacks and buffers). */
void arena_free(struct arena *a, void *p, size_t npages)
{
	if (!p || npages < 1 || npages > ARENA_FREE_CLASSES)
		return;
	*(void **)p = a->free[npages - 1];
	a->free[npages - 1] = p;
}

int arena_overlaps(const struct arena *a, uintptr_t start, size_t len)
{
	return a->base && start < a->base + a->size && start + len > a->base;
}
