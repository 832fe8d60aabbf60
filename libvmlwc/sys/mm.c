/* Redirected syscalls: the mmap family, kept in step with the calling lwC's page table. */
#include <errno.h>
#include <sys/mman.h>

#include "sys.h"
#include "rawsys.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/* Apply one change to the lwC's page table and have the stub load the new root. */
static int pt_apply(struct sys_call *c, uint64_t start, uint64_t len, uint64_t flags)
{
	struct pt_txn t;
	int r;

	if (!len)
		return 0;
	if (flags && (r = memmap_ensure(start, len)) < 0)
		return r;
	pt_txn_begin(&t, c->l->root);
	r = pt_txn_set(&t, start, len, start, flags);
	pt_txn_finish(&t, c->l);
	return r;
}

/*
 * Whether another live lwC maps any page of [va, va+len) to the same frame as l does: host
 * memory it still uses must not be unmapped, moved or re-protected under it.
 */
static int shared_elsewhere(struct lwc *l, uint64_t va, uint64_t len)
{
	if (g_vm.nlwcs <= 1)
		return 0;
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
		struct lwc *o = g_vm.lwcs[i];
		if (!o || o == l)
			continue;
		for (uint64_t a = va; a < va + len; a += PAGE_SIZE) {
			uint64_t e = pt_lookup(o->root, a);
			if ((e & PTE_P) && (e & PTE_ADDR) == gpa_of(a))
				return 1;
		}
	}
	return 0;
}

static int range_ok(uint64_t addr, uint64_t len)
{
	return !(addr & (PAGE_SIZE - 1)) && addr + len >= addr && addr + len <= USER_TOP;
}

static long sys_mmap(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);
	int prot = (int)c->a[2], flags = (int)c->a[3];
	long h[6] = { c->a[0], c->a[1], c->a[2], c->a[3], -1, c->a[5] };
	long r;
	int e;

	if (!c->a[1] || !len)
		return -EINVAL;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (!range_ok(addr, len))
			return -EINVAL;
		/* library memory is never replaced: it does not belong to the caller */
		if (mem_is_protected(addr, len) || mem_is_pinned(addr, len))
			return (flags & MAP_FIXED_NOREPLACE) ? -EEXIST : -ENOMEM;
	}
	if (!(flags & MAP_ANONYMOUS)) {
		int fd = sys_fd(c, (int)c->a[4]);
		if (fd < 0)
			return fd;
		if (policy_fd_allowed(fd) < 0)
			return -EACCES;
		h[4] = fd;
	}
	uint64_t pflags = pt_prot_flags(prot) | ((flags & MAP_SHARED) ? VMLWC_PTE_SHARED : 0);
	if ((flags & MAP_FIXED) && shared_elsewhere(c->l, addr, len)) {
		/* another lwC still uses the host memory there: back this view with new memory */
		h[3] &= ~(long)(MAP_FIXED | MAP_FIXED_NOREPLACE);
		h[0] = 0;
		r = sys_raw(__NR_mmap, h);
		if (r < 0 && r > -4096)
			return r;
		e = memmap_ensure((uint64_t)r, len);
		if (e == 0) {
			struct pt_txn t;
			pt_txn_begin(&t, c->l->root);
			e = pt_txn_set(&t, addr, len, (uint64_t)r, pflags);
			pt_txn_finish(&t, c->l);
		}
		return e < 0 ? e : (long)addr;
	}
	r = sys_raw(__NR_mmap, h);
	if (r < 0 && r > -4096)
		return r;
	if ((uint64_t)r + len > USER_TOP || mem_is_protected((uint64_t)r, len)) {
		if (!mem_is_protected((uint64_t)r, len))
			RAW2(SYS_munmap, r, len);
		return -ENOMEM;
	}
	e = pt_apply(c, (uint64_t)r, len, pflags);
	if (e < 0) {
		RAW2(SYS_munmap, r, len);
		pt_apply(c, (uint64_t)r, len, 0);
		return e == -ENOSPC ? -ENOMEM : e;
	}
	return r;
}

static long unmap_part(uint64_t a, uint64_t len, void *arg)
{
	struct sys_call *c = arg;
	/* host memory goes only with its last user: other lwCs keep their view */
	int keep = shared_elsewhere(c->l, a, len);
	long r = pt_apply(c, a, len, 0);

	if (r < 0 || keep)
		return r;
	r = RAW2(SYS_munmap, a, len);
	return r;
}

static long sys_munmap(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);

	if (!c->a[1] || !range_ok(addr, len) || mem_is_pinned(addr, len))
		return -EINVAL;
	/* library memory is a hole in the lwC's view: unmapping a hole does nothing */
	return mem_each_unprotected(addr, len, unmap_part, c);
}

static long sys_mprotect(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);
	long r;

	if (addr & (PAGE_SIZE - 1))
		return -EINVAL;
	if (!len)
		return 0;
	if (!range_ok(addr, len) || mem_is_protected(addr, len) || mem_is_pinned(addr, len))
		return -ENOMEM;
	if (!shared_elsewhere(c->l, addr, len)) {
		r = RAW3(SYS_mprotect, addr, c->a[1], c->a[2]);
		if (r < 0)
			return r;
	}
	struct pt_txn t;
	pt_txn_begin(&t, c->l->root);
	r = pt_txn_protect(&t, addr, len, pt_prot_flags((int)c->a[2]), g_vm.nlwcs <= 1);
	pt_txn_finish(&t, c->l);
	return r;
}

static long sys_mremap(struct sys_call *c)
{
	uint64_t old = (uint64_t)c->a[0], oldlen = PAGE_ALIGN_UP(c->a[1]);
	uint64_t newlen = PAGE_ALIGN_UP(c->a[2]), flags = (uint64_t)c->a[3];
	uint64_t pte, pflags;
	long r;

	if ((old & (PAGE_SIZE - 1)) || !newlen)
		return -EINVAL;
	if (!range_ok(old, oldlen ? oldlen : PAGE_SIZE) || mem_is_protected(old, oldlen ? oldlen : PAGE_SIZE) ||
	    mem_is_pinned(old, oldlen ? oldlen : PAGE_SIZE))
		return -EFAULT;
	if ((flags & MREMAP_FIXED) &&
	    (!range_ok((uint64_t)c->a[4], newlen) || mem_is_protected((uint64_t)c->a[4], newlen) ||
	     mem_is_pinned((uint64_t)c->a[4], newlen)))
		return -ENOMEM;
	/* with lwCs, the range may hold private frames or memory others use: let the caller copy */
	if (g_vm.nlwcs > 1)
		return -ENOMEM;
	/* the old mapping is one VMA (or mremap fails): its first page tells its protection */
	pte = pt_lookup(c->l->root, old);
	pflags = (pte & PTE_P) ? PTE_P | PTE_U | PTE_A | (pte & (PTE_W | PTE_NX | VMLWC_PTE_SHARED)) |
				 ((pte & PTE_W) ? PTE_D : 0) : 0;
	r = RAW5(SYS_mremap, old, c->a[1], c->a[2], flags, c->a[4]);
	if (r < 0 && r > -4096)
		return r;
	if ((uint64_t)r + newlen > USER_TOP || mem_is_protected((uint64_t)r, newlen))
		return -ENOMEM; /* cannot happen: the kernel never hands out mapped memory */
	if ((uint64_t)r != old && !(flags & MREMAP_DONTUNMAP) && oldlen)
		pt_apply(c, old, oldlen, 0);
	else if ((uint64_t)r == old && newlen < oldlen)
		pt_apply(c, old + newlen, oldlen - newlen, 0);
	if (pt_apply(c, (uint64_t)r, newlen, pflags) < 0)
		return -ENOMEM;
	return r;
}

static long sys_madvise(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);

	if (addr & (PAGE_SIZE - 1))
		return -EINVAL;
	if (!range_ok(addr, len) || mem_is_protected(addr, len) || mem_is_pinned(addr, len))
		return -ENOMEM;
	return RAW3(SYS_madvise, addr, c->a[1], c->a[2]);
}

static long sys_brk(struct sys_call *c)
{
	uint64_t want = (uint64_t)c->a[0], old = c->l->brk_cur, now;
	long r;

	/* one program break per process: once lwCs exist it stays put (malloc falls back to mmap) */
	if (g_vm.nlwcs > 1)
		return (long)old;
	if (want && mem_is_protected(PAGE_ALIGN_UP(old), want > old ? PAGE_ALIGN_UP(want) - PAGE_ALIGN_UP(old) : 0))
		return (long)old;
	r = RAW1(SYS_brk, want);
	now = (uint64_t)r;
	if (PAGE_ALIGN_UP(now) > PAGE_ALIGN_UP(old))
		pt_apply(c, PAGE_ALIGN_UP(old), PAGE_ALIGN_UP(now) - PAGE_ALIGN_UP(old),
			 pt_prot_flags(PROT_READ | PROT_WRITE));
	else if (PAGE_ALIGN_UP(now) < PAGE_ALIGN_UP(old))
		pt_apply(c, PAGE_ALIGN_UP(now), PAGE_ALIGN_UP(old) - PAGE_ALIGN_UP(now), 0);
	c->l->brk_cur = now;
	return r;
}

/* msync, mlock, munlock, mincore: pass through when the range is the caller's. */
static long sys_range_passthrough(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);

	if (c->nr == __NR_msync && (addr & (PAGE_SIZE - 1)))
		return -EINVAL;
	if (!range_ok(PAGE_ALIGN_DOWN(addr), len) || mem_is_protected(PAGE_ALIGN_DOWN(addr), len ? len : 1))
		return -ENOMEM;
	if (c->nr == __NR_mincore) {
		size_t pages = len / PAGE_SIZE;
		void *vec = ua_direct(c->l, (gva_t)c->a[2], pages, UA_WRITE);
		if (!vec)
			return -EFAULT;
		return RAW3(SYS_mincore, addr, c->a[1], vec);
	}
	return sys_raw(c->nr, c->a);
}

void sys_mm_register(void)
{
	sys_register(__NR_mmap, &DESC(.name = "mmap", .fn = sys_mmap));
	sys_register(__NR_munmap, &DESC(.name = "munmap", .fn = sys_munmap));
	sys_register(__NR_mprotect, &DESC(.name = "mprotect", .fn = sys_mprotect));
	sys_register(__NR_mremap, &DESC(.name = "mremap", .fn = sys_mremap));
	sys_register(__NR_madvise, &DESC(.name = "madvise", .fn = sys_madvise));
	sys_register(__NR_brk, &DESC(.name = "brk", .fn = sys_brk));
	sys_register(__NR_msync, &DESC(.name = "msync", .fn = sys_range_passthrough));
	sys_register(__NR_mlock, &DESC(.name = "mlock", .fn = sys_range_passthrough));
	sys_register(__NR_munlock, &DESC(.name = "munlock", .fn = sys_range_passthrough));
	sys_register(__NR_mincore, &DESC(.name = "mincore", .fn = sys_range_passthrough));
}
