/* The stub loader: the embedded stub ELF into the stub window, its symbols (loader.c). */
#ifndef VMLWC_LOADER_H
#define VMLWC_LOADER_H

#include "base.h"

struct vm;

int loader_load_stub(struct vm *vm); /* 0, or -1 with the reason set */

/*
 * g_vm.stub: the stub's symbols and pointers into its data. Set at init, read-only after (no
 * lock); what cr3_of, live and nlive point to follows the lwC table: the host writes it under
 * vm_lock, the stubs of other vCPUs read it without (a removed entry is made safe by the sync
 * of every vCPU before the exit that removed it returns: run_sync_others).
 */
struct stub_state {
	uint64_t syscall, cr3_tramp, scrub_tramp, idt, vectors; /* KVAs of stub symbols */
	uint64_t pool_sym, cr3_of_sym, smap_sym, live_sym, nlive_sym, pf_host, pte_store;
	uint64_t vec3, vec3_cr3;   /* the fast switch, and its CR3 load (a stop before it restarts at vec3) */
	size_t size;                  /* bytes of arena used by the image */
	uint64_t *cr3_of;             /* the stub's 1 + lwC id -> CR3 of a fast switch, or 0 */
	uint64_t *smap;
	uint64_t *live, *nlive;
};

#endif
