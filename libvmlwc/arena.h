/* Library-owned memory: pages, runs and small objects in 1 GiB blocks (arena.c). */
#ifndef VMLWC_ARENA_H
#define VMLWC_ARENA_H

#include "base.h"

#define ARENA_FREE_CLASSES 8
struct arena {
	uintptr_t base;
	size_t size;
	size_t used;    /* bump pointer */
	size_t in_use;  /* pages handed out and not freed */
	void *free[ARENA_FREE_CLASSES]; /* freed runs of 1..8 pages, linked through their first word */
	void *runs;     /* freed larger runs, address order, merged, pages given back to the host */
	void *objs[3];  /* free small objects of 64, 128, 256 bytes */
	size_t nobjs;   /* small objects handed out */
};
int arena_init(struct arena *a, size_t bytes); /* whole 1 GiB blocks, 1 GiB aligned; 0, or -1 with errno set */
void arena_fini(struct arena *a);
void *arena_pages(struct arena *a, size_t npages); /* zeroed; NULL when exhausted */
void arena_free(struct arena *a, void *p, size_t npages); /* any run; not for page-table pages */
void arena_free_small(struct arena *a, void *p, size_t npages); /* 1..ARENA_FREE_CLASSES pages */
size_t arena_in_use(const struct arena *a); /* pages handed out; never fails */
void *arena_obj_alloc(struct arena *a, size_t size); /* zeroed, at most 256 bytes; NULL when exhausted */
void arena_obj_free(struct arena *a, void *p, size_t size);
int arena_overlaps(const struct arena *a, uintptr_t start, size_t len); /* 1 or 0 */

/* g_vm.arena. Shared between vCPUs: under vm_lock (a vCPU made at a clone takes its pages under it too). */

#endif
