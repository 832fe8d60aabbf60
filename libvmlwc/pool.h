/* The frame pool: reference-counted guest frames (pool.c). */
#ifndef VMLWC_POOL_H
#define VMLWC_POOL_H

#include "base.h"

int pool_init(size_t bytes);     /* 0 or -ENOMEM */
void pool_ref(uint64_t pte);     /* no-op for frames outside the pool */
void pool_unref(uint64_t pte);       /* the last reference waits in the quarantine with several vCPUs */
void pool_unref_now(uint64_t pte);   /* the reference goes now (the quarantine's flush) */
void pool_quarantine_flush(void);    /* after a sync of every vCPU: the quarantined references go */
gpa_t pool_alloc(void);          /* one reference; GPA_NONE when exhausted */
int pool_refcount(uint64_t pte); /* -1 outside the pool */
uint64_t pool_in_use(void);      /* never fails */
size_t pool_frames_free(void);   /* never fails */

/*
 * g_vm.pool: the frame pool. hdr points into the stub's data (set by the loader), and the stub's
 * fault path allocates from the pool too, with one vCPU only (hdr->multi is set before a
 * second vCPU first runs, and the stub then leaves every fault to the host). Shared between
 * vCPUs: under vm_lock; a blocking call's pins (ua_pin) are references taken under it.
 */
struct pool_state {
	struct vmlwc_pool *hdr;       /* the pool's header, in the stub's data */
	uint32_t *refs;               /* per frame: references */
	gpa_t zero_frame;             /* a pool frame never written, with a reference never dropped */
	uint64_t populated;           /* frames below it are backed by host memory */
	uint64_t *free;
	/* several vCPUs: last references waiting for a sync (pool_unref), under vm_lock */
	gpa_t *quarantine;            /* arena pages, made when first needed, doubled when full */
	uint64_t nquarantine, quarantine_cap, released;
	uint64_t unsafe;              /* references dropped at once for want of arena (should stay 0) */
};

#endif
