/* Views of shared memory on the host: copy-on-write breaks, copy-out, zero views (cow.c). */
#ifndef VMLWC_COW_H
#define VMLWC_COW_H

#include "base.h"

struct lwc;
int cow_break(struct lwc *l, uint64_t va); /* 0, -EFAULT or -ENOMEM */
int cow_break_range(struct lwc *l, uint64_t va, uint64_t end); /* as far as it can: 0 or -errno */
/* The entry that ends a COW fault on va in l's own (unshared) table, the page copied; 0 if
   the fault needs cow_break (a table on the way is shared), -errno on failure. */
int cow_prepare(struct lwc *l, uint64_t va, gpa_t *table, uint64_t *entry);
int mem_shared_elsewhere(struct lwc *l, uint64_t va, uint64_t len); /* 1: another lwC maps host [va, va+len); else 0 */
int mem_identity(uint64_t e, uint64_t a);    /* 1: entry e (leaf or lazy) maps the host memory at a; else 0 */
int mem_shared_at(struct lwc *l, uint64_t a, uint64_t end, uint64_t *stop); /* 1 or 0: shared at a; *stop: until where */
int mem_copy_out(struct lwc *l, uint64_t va, int keep_shared); /* the others get a copy of host page va; 0 or -ENOMEM */
struct pt_txn;
int mem_copy_view(struct lwc *l, struct pt_txn *t, uint64_t va, const void *src, uint64_t flags); /* 0 or -ENOMEM */
int mem_zero_view(struct lwc *l, struct pt_txn *t, uint64_t va); /* l's page reads as zeros; 0 or -ENOMEM */

#endif
