/* Init and the root lwC: what vmlwc.c offers the other files. */
#ifndef VMLWC_INIT_H
#define VMLWC_INIT_H

#include "base.h"
#include "pgtable.h"

struct root_build_ctx {
	struct pt_txn t;
	int err;
	int prot_none_pass;  /* root_map_entry: 0 maps accessible mappings, 1 the PROT_NONE ones */
	uint64_t flags;
	uint64_t prev_end, stack_lo, stack_hi, below_stack;
};
struct procmaps_entry;
int root_map_entry(const struct procmaps_entry *e, void *arg); /* procmaps_each callback: 0, or 1 to stop (ctx->err set) */
/* The root's view of the process's mappings: the accessible ones, then, as far as the budget of
   tables and memslots goes, the PROT_NONE ones. 0, or -errno. */
int root_map_all(struct root_build_ctx *b);

int mem_pin_host_code(void);                      /* 0, or -1 with the reason set */

/* g_vm.init: set by vmlwc_init, read-only after (live is read with an acquire load): no lock. */
struct init_state {
	int live;
	uint64_t gate_flags;       /* VMLWC_GF_*: what the gate page's flags say */
};

#endif
