/* Guest pointers: translation through the calling lwC's page table, with user/write checks. */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "cow.h"
#include "lwc_host.h"
#include "memmap.h"
#include "memrange.h"
#include "pgtable.h"
#include "uaccess.h"
#include "pool.h"
#include "vcpu.h"
#include "view.h"
#include "vmlock.h"

/*
 * A pool frame a call in flight reaches keeps a reference until the call ends (the vCPU that
 * holds the lock is the one making the call): the call may run its syscall without the lock.
 */
static void ua_pin(uint64_t e)
{
	struct vcpu *v = vm_holder();

	if (!v || !v->pinning || pool_refcount(e) < 0)
		return;
	for (int i = v->npins - 1; i >= 0 && i >= v->npins - 8; i--)
		if (v->pins[i] == (e & PTE_ADDR))
			return; /* the same page again (a buffer page by page) */
	if (v->npins == VMLWC_PINS) {
		v->pin_overflow = 1;
		return;
	}
	pool_ref(e);
	v->pins[v->npins++] = e & PTE_ADDR;
}

void ua_unpin_all(struct vcpu *v)
{
	while (v->npins)
		pool_unref(v->pins[--v->npins]);
	v->pin_overflow = 0;
}

/* Host address of the page holding gva, or 0 when the lwC may not access it this way. */
static uintptr_t page_hva(struct lwc *l, gva_t gva, int flags)
{
	uint64_t e;

	if (gva >= USER_TOP)
		return 0;
	e = pt_lookup(l->root, gva);
	if (!(e & PTE_P) && view_materialize(l, gva) > 0) /* the host touches memory only through built tables */
		e = pt_lookup(l->root, gva);
	if ((flags & UA_ANYPROT) && !(flags & UA_WRITE) && !(e & PTE_P)) {
		/* a frame kept under PROT_NONE: the host page may be PROT_NONE too (copy reads it by force) */
		uint64_t leaf = pt_leaf(l->root, gva);
		uintptr_t h = (leaf & VMLWC_PTE_PROTNONE) ? hva_of(leaf & PTE_ADDR) : 0;
		return h ? h + (gva & (PAGE_SIZE - 1)) : 0;
	}
	if (!(e & PTE_P) || !(e & PTE_U))
		return 0;
	if ((flags & UA_WRITE) && !(e & PTE_W)) {
		/* below a table shared with other lwCs: this lwC's own copy of the path first */
		if (view_own_path(l, gva) < 0)
			return 0;
		e = pt_lookup(l->root, gva);
	}
	if ((flags & UA_WRITE) && !(e & PTE_W)) {
		/* a copy-on-write page is writable after the break; a read-only one is not */
		if (!(pt_leaf(l->root, gva) & VMLWC_PTE_COW) || cow_break(l, gva) < 0)
			return 0;
		e = pt_lookup(l->root, gva);
	}
	uintptr_t h = hva_of(e & PTE_ADDR);
	if (h)
		ua_pin(e);
	return h ? h + (gva & (PAGE_SIZE - 1)) : 0;
}

int ua_translate(struct lwc *l, gva_t gva, size_t len, int flags, struct iovec *iov, int max)
{
	int n = 0;

	if (gva + len < gva)
		return -EFAULT;
	/* a write over several pages: their copy-on-write breaks in one transaction (what it
	   leaves, the walk below breaks page by page or refuses) */
	if ((flags & UA_WRITE) && len > PAGE_SIZE - (gva & (PAGE_SIZE - 1)))
		cow_break_range(l, gva, gva + len);
	while (len) {
		size_t chunk = PAGE_SIZE - (gva & (PAGE_SIZE - 1));
		uintptr_t h = page_hva(l, gva, flags);

		if (!h)
			return -EFAULT;
		if (chunk > len)
			chunk = len;
		if (n && (uintptr_t)iov[n - 1].iov_base + iov[n - 1].iov_len == h) {
			iov[n - 1].iov_len += chunk;
		} else {
			if (n == max)
				return -E2BIG;
			iov[n].iov_base = (void *)h;
			iov[n].iov_len = chunk;
			n++;
		}
		gva += chunk;
		len -= chunk;
	}
	return n;
}

void *ua_direct(struct lwc *l, gva_t gva, size_t len, int flags)
{
	struct iovec iov;

	if (len == 0)
		return (void *)page_hva(l, gva, flags) ?: (void *)1; /* nothing is read or written */
	if (ua_translate(l, gva, len, flags, &iov, 1) != 1)
		return NULL;
	return iov.iov_base;
}

static int copy(struct lwc *l, gva_t gva, void *host, size_t len, int out, int flags)
{
	while (len) {
		size_t chunk = PAGE_SIZE - (gva & (PAGE_SIZE - 1));
		uintptr_t h = page_hva(l, gva, (out ? UA_WRITE : 0) | flags);

		if (!h)
			return -EFAULT;
		if (chunk > len)
			chunk = len;
		if (out)
			memcpy((void *)h, host, chunk);
		else if (!(flags & UA_ANYPROT))
			memcpy(host, (void *)h, chunk);
		else if (mem_read_force(host, h, chunk) < 0)
			return -EFAULT;
		gva += chunk;
		host = (char *)host + chunk;
		len -= chunk;
	}
	return 0;
}

/* Every page of [gva, gva+len) is accessible (writable with UA_WRITE) in the lwC. */
int ua_check(struct lwc *l, gva_t gva, size_t len, int flags)
{
	struct iovec seg[8];

	while (len) {
		size_t chunk = 8 * PAGE_SIZE - (gva & (PAGE_SIZE - 1));
		if (chunk > len)
			chunk = len;
		if (ua_translate(l, gva, chunk, flags, seg, 8) < 0)
			return -EFAULT;
		gva += chunk;
		len -= chunk;
	}
	return 0;
}

int ua_copy_in(struct lwc *l, void *dst, gva_t src, size_t len)
{
	return copy(l, src, dst, len, 0, 0);
}

int ua_copy_in_anyprot(struct lwc *l, void *dst, gva_t src, size_t len)
{
	return copy(l, src, dst, len, 0, UA_ANYPROT);
}

int ua_copy_out(struct lwc *l, gva_t dst, const void *src, size_t len)
{
	return copy(l, dst, (void *)src, len, 1, 0);
}

long ua_strncpy_in(struct lwc *l, char *dst, gva_t src, size_t max)
{
	size_t n = 0;

	while (n < max) {
		size_t chunk = PAGE_SIZE - (src & (PAGE_SIZE - 1));
		uintptr_t h = page_hva(l, src, 0);
		const char *s = (const char *)h;

		if (!h)
			return -EFAULT;
		if (chunk > max - n)
			chunk = max - n;
		for (size_t i = 0; i < chunk; i++) {
			dst[n] = s[i];
			if (!s[i])
				return (long)n;
			n++;
		}
		src += chunk;
	}
	return -ENAMETOOLONG;
}
