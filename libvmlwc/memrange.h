/* Protected ranges (library memory) and pinned ranges (host code) (memrange.c). */
#ifndef VMLWC_MEMRANGE_H
#define VMLWC_MEMRANGE_H

#include "base.h"

int mem_is_protected(uint64_t start, uint64_t len); /* 1: overlaps library memory; else 0 */
int mem_protect_add(uint64_t start, uint64_t len); /* 0, or -1 with the reason set: the list is full */
int mem_pin_add(uint64_t start, uint64_t end);     /* 0, or -1 with the reason set */
int mem_is_pinned(uint64_t start, uint64_t len);   /* 1: overlaps a pinned range; else 0 */
/* Calls fn on each maximal page range of [start, start+len) outside library memory; the first
   negative result of fn, else 0. */
long mem_each_unprotected(uint64_t start, uint64_t len, long (*fn)(uint64_t a, uint64_t n, void *arg),
			  void *arg);

/*
 * The process's own memory read whatever its protection (/proc/self/mem): pages a view holds
 * PROT_NONE may be PROT_NONE on the host too, and the library still copies them (mremap's
 * move, snapshots' copies). 0, or -EFAULT.
 */
int mem_read_force(void *dst, uint64_t hva, size_t len);
int mem_force_open(void);  /* at init: 0, or -1 with the reason set */
void mem_force_close(void);

/* g_vm.mem: filled at init, read-only after: no lock. */
struct memrange_state {
	int self_mem_fd;  /* /proc/self/mem, read-only, in no descriptor table */
	uint64_t protect_lo[VMLWC_MAX_VCPUS + 8], protect_hi[VMLWC_MAX_VCPUS + 8]; /* library-owned host ranges besides the arena */
	unsigned nprotect;
	uint64_t pin_lo[32], pin_hi[32]; /* host code the guest sees but may not remap */
	unsigned npin;
};

#endif
