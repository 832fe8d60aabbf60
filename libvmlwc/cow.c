/* Copy-on-write breaks on the host, for syscalls that write into a COW page. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/*
 * The root lwC is the process: native threads share its memory, so its pages stay where they
 * are and the other lwCs that still share a page get the copy instead ("copy-out"). Any other
 * lwC takes a private frame from the pool. Either way the caller's view becomes writable.
 */
int cow_break(struct lwc *l, uint64_t va)
{
	uint64_t e = pt_leaf(l->root, va), old = e & PTE_ADDR, keep;
	struct pt_txn t;
	gpa_t n;

	va = PAGE_ALIGN_DOWN(va);
	if ((e & (PTE_P | PTE_U | VMLWC_PTE_COW)) != (PTE_P | PTE_U | VMLWC_PTE_COW))
		return -EFAULT;
	keep = (e & ~(VMLWC_PTE_COW | PTE_ADDR)) | PTE_W | PTE_D;
	if (l == g_vm.root_lwc && pool_refcount(e) < 0) {
		int users = 0;
		n = pool_alloc();
		if (n == GPA_NONE)
			return -ENOMEM;
		memcpy((void *)hva_of(n), (void *)hva_of(old), PAGE_SIZE);
		for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
			struct lwc *o = g_vm.lwcs[i];
			uint64_t oe;
			if (!o || o == l)
				continue;
			oe = pt_leaf(o->root, va);
			if (!(oe & (PTE_P | VMLWC_PTE_PROTNONE)) || (oe & PTE_ADDR) != old)
				continue;
			pt_txn_begin(&t, o->root);
			if (pt_txn_set_leaf(&t, va, (oe & ~PTE_ADDR) | n) == 0) {
				pt_txn_finish(&t, o);
				users++;
			}
		}
		/* pool_alloc gave one reference; the copy has `users` */
		if (users == 0)
			pool_unref(n);
		else
			for (int i = 1; i < users; i++)
				pool_ref(n);
		n = old;
	} else if (pool_refcount(e) == 1) {
		n = old; /* the last user takes the frame over */
	} else {
		n = pool_alloc();
		if (n == GPA_NONE)
			return -ENOMEM;
		memcpy((void *)hva_of(n), (void *)hva_of(old), PAGE_SIZE);
		pool_unref(e);
	}
	pt_txn_begin(&t, l->root);
	if (pt_txn_set_leaf(&t, va, keep | n) < 0)
		return -ENOMEM;
	pt_txn_finish(&t, l);
	return 0;
}
