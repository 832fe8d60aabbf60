/* Memslots and GPA <-> HVA (memmap.c). */
#ifndef VMLWC_MEMMAP_H
#define VMLWC_MEMMAP_H

#include "base.h"

#define MEMMAP_BLOCK_SHIFT 30
#define MEMMAP_MAX_BLOCKS 1024
struct memblock {
	uintptr_t hva;
	gpa_t gpa;
};
/* g_vm.mm. Shared between vCPUs: under vm_lock; lookups by a call running without it only read blocks that are never removed. */
struct memmap_state {
	struct memblock blocks[MEMMAP_MAX_BLOCKS]; /* sorted by hva */
	unsigned short by_gpa[MEMMAP_MAX_BLOCKS];  /* indices sorted by gpa */
	unsigned nblocks;
	unsigned nslots;  /* memslot ids handed out */
	gpa_t lib_end;   /* end of the library window [VMLWC_LIB_GPA, lib_end); 0 before it exists */
	uintptr_t lib_hva; /* where the library window starts on the host (it is linear) */
	gpa_t gpa_limit; /* 2^MAXPHYADDR */
};
/* 0, or -ENOSPC with *why naming the rule a library window of lib_bytes breaks at maxphy */
int memmap_layout_check(unsigned maxphy, uint64_t lib_bytes, const char **why);
/* The library window; its memslots leave out [hole_lo, hole_hi) (page-table chunks); 0 or -errno */
int memmap_library(uintptr_t hva, size_t len, uintptr_t hole_lo, uintptr_t hole_hi, const char **why);
int memmap_slot_set(unsigned slot, gpa_t gpa, uintptr_t hva, uint64_t size); /* 0 or -errno; size 0 deletes */
unsigned memmap_slot_reserve(unsigned n); /* n memslot ids for another module; the first (never fails: init only, counted) */
int memmap_ensure(uintptr_t hva, size_t len);   /* application memory; 0 or -errno */
gpa_t gpa_of(uintptr_t hva);                     /* GPA_NONE when outside every block */
uintptr_t hva_of(gpa_t gpa);                     /* 0 when outside every block */
unsigned memmap_nblocks(void);
unsigned memmap_slots_free(void);

#endif
