/* Page-table pages: chunks with their own memslots, recycled safely (ptpage.c). */
#ifndef VMLWC_PTPAGE_H
#define VMLWC_PTPAGE_H

#include "base.h"

#define PTPAGE_CHUNK (2UL << 20)
/* g_vm.ptp. Shared between vCPUs: under vm_lock, with the page tables (a page freed waits for the sync of every vCPU). */
struct ptpage_state {
	uintptr_t base;       /* the region in the arena */
	gpa_t gpa_lo, gpa_hi; /* and in guest-physical space */
	unsigned nchunks, cur, dirty_hint;
	unsigned nclean;      /* freed pages known clean, in all chunks */
	unsigned first_slot;  /* memslot of chunk 0 */
	int shadow;           /* KVM may shadow freed pages: they are dirty until recycled or scrubbed */
	int recycle;          /* deleting a chunk's memslot zaps only its shadows */
	void *chunks;         /* struct ptchunk[nchunks] */
	uint32_t *refs;       /* per page: the tables that point to it (1 for a root) */
	uint8_t *unsealed;    /* per page: copied while still used elsewhere (see pgtable.c) */
	size_t live;
	uint64_t recycles;
	uint64_t allocs;      /* pages handed out, ever */
	uint64_t reclaimed;   /* freed pages made clean again (a chunk recycled or the stub's scrub) */
	/* every other vCPU out of KVM_RUN until the lock goes (set by the run loop's layer): a
	   chunk's memslot is gone between its delete and re-add, live tables in it too */
	void (*quiesce)(void);
};
int ptpage_init(uintptr_t base, size_t len, unsigned first_slot, int shadow); /* 0 or -errno */
gpa_t ptpage_alloc(void);      /* a zeroed page KVM shadows nothing of, one reference; or GPA_NONE */
void ptpage_ref(gpa_t g);
void ptpage_unref(gpa_t g);    /* the last reference frees it */
int ptpage_refcount(gpa_t g);  /* never fails (g must be ptpage_owns) */
void ptpage_unseal(gpa_t g);
int ptpage_unsealed(gpa_t g);  /* 1 or 0 */
size_t ptpage_live(void);      /* never fails */
int ptpage_owns(gpa_t g);      /* 1 or 0 */
void ptpage_scrubbed(gpa_t g); /* the stub's scrub made KVM drop its shadows */
gpa_t ptpage_dirty_next(void); /* a freed page for the scrub, GPA_NONE if none */
uint64_t ptpage_recycles(void); /* never fails */
uint64_t ptpage_touched(void); /* pages of the region ever handed out: bounded when pages are reused */

#endif
