/* Redirected syscalls: the mmap family, kept in step with the calling lwC's page table. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "../cow.h"
#include "../memmap.h"
#include "../memrange.h"
#include "../pgtable.h"
#include "../policy.h"
#include "../pool.h"
#include "../trace.h"
#include "../uaccess.h"
#include "../view.h"
#include "procmaps.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
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
	/* memslot blocks come with the pages (pt_txn_set), not for spans left lazy */
	pt_txn_begin(&t, c->l->root);
	r = pt_txn_set(&t, start, len, start, flags);
	view_commit(&t, c->l);
	return r;
}

static int range_ok(uint64_t addr, uint64_t len)
{
	return !(addr & (PAGE_SIZE - 1)) && addr + len >= addr && addr + len <= USER_TOP;
}

/*
 * Leaf flags for memory mapped with prot. PROT_NONE memory is in the view too, not present but
 * with its frame: a later mprotect has entries to change (glibc's thread stacks, jemalloc's
 * and the JVM's reservations are born PROT_NONE and made usable afterwards).
 */
static uint64_t map_flags(int prot, int shared)
{
	uint64_t f = pt_prot_flags(prot);

	return (f ? f : VMLWC_PTE_PROTNONE) | (shared ? VMLWC_PTE_SHARED : 0);
}

/* Maps fresh zeros (the zero frame, copy-on-write) at [va, va+len) in l's view. */
static int view_map_zero(struct lwc *l, uint64_t va, uint64_t len, uint64_t pflags)
{
	uint64_t n = (pflags & ~(PTE_W | PTE_D)) | ((pflags & PTE_W) ? VMLWC_PTE_COW : 0);
	struct pt_txn t;
	int r;

	if (!pflags)
		n = VMLWC_PTE_PROTNONE; /* PROT_NONE: mapped, no access */
	pt_txn_begin(&t, l->root);
	r = pt_txn_set_zero(&t, va, len, n);
	view_commit(&t, l);
	return r;
}

static long unmap_part(uint64_t a, uint64_t len, void *arg);

/*
 * Every other lwC that holds host memory of [a, a+len) as a snapshot (at its own address, not
 * shared on purpose) gets a private copy of each such page, so that the host memory there is
 * the caller's to replace: a file mapped MAP_FIXED over memory others still use lands at its
 * own address, as natively, and no host memory is ever left that nothing accounts for. Memory
 * others share on purpose (MAP_SHARED, LWC_SHARE) cannot be taken from them: ENOMEM, before
 * anything changed for them but their copies. 0 or -ENOMEM.
 */
static long copy_out_range(struct lwc *l, uint64_t a, uint64_t len)
{
	long r = 0;

	for (uint64_t p = a, stop; p < a + len && r == 0; p = stop)
		if (mem_shared_at(l, p, a + len, &stop))
			for (uint64_t pg = p; pg < stop && r == 0; pg += PAGE_SIZE)
				r = mem_copy_out(l, pg, 1);
	if (r == 0 && mem_shared_elsewhere(l, a, len)) {
		if (g_vm.cfg.trace)
			trace_msg("mmap MAP_FIXED over memory other lwCs share on purpose: ENOMEM");
		r = -ENOMEM;
	}
	return r;
}

/*
 * MAP_FIXED anonymous private memory over [addr, addr+len), some of whose host memory other
 * lwCs still use: there this view gets zeros of its own (the zero frame, copied on write: pool
 * frames, which go back to the pool when it lets them go); elsewhere new host memory at its
 * own address, as natively, so that no host memory is left that no view maps.
 */
static long mmap_fixed_anon_split(struct sys_call *c, uint64_t addr, uint64_t len, const long h[6],
				  uint64_t pflags)
{
	uint64_t end = addr + len, stop;
	long r = 0;

	for (uint64_t a = addr; a < end && r >= 0; a = stop) {
		if (mem_shared_at(c->l, a, end, &stop)) {
			r = view_map_zero(c->l, a, stop - a, pflags);
			continue;
		}
		long hh[6] = { (long)a, (long)(stop - a), h[2], h[3], -1, 0 };
		r = sys_raw(__NR_mmap, hh);
		if (r >= 0 || r < -4095)
			r = pt_apply(c, a, stop - a, pflags);
	}
	if (r < 0) {
		/* as natively, what was there is gone either way */
		mem_each_unprotected(addr, len, unmap_part, c);
		return r == -ENOSPC ? -ENOMEM : r;
	}
	return (long)addr;
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
	uint64_t pflags = map_flags(prot, (flags & MAP_SHARED) != 0);
	if ((flags & MAP_FIXED) && (flags & MAP_ANONYMOUS) && !(flags & MAP_SHARED) &&
	    mem_shared_elsewhere(c->l, addr, len))
		return mmap_fixed_anon_split(c, addr, len, h, pflags);
	if ((flags & MAP_FIXED) && mem_shared_elsewhere(c->l, addr, len) &&
	    (e = copy_out_range(c->l, addr, len)) < 0)
		return e; /* no frame for the copies: nothing has changed */
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

/*
 * Gives the host memory of [a, a+len) that l maps at its own address and no other lwC does back
 * to the host, in runs (stretch by stretch: lazy spans in one step).
 */
static void host_release_mine(struct lwc *l, uint64_t a, uint64_t len, int unmap)
{
	uint64_t end = a + len, run = a, p = a, next, stop;
	int in_run = 0;

	while (p < end) {
		int mine = mem_identity(pt_span(l->root, p, &next), p);
		if (next > end)
			next = end;
		while (p < next) {
			int here = mine && !mem_shared_at(l, p, next, &stop);
			if (!mine)
				stop = next;
			if (here && !in_run)
				run = p;
			if (!here && in_run) {
				if (unmap)
					RAW2(SYS_munmap, run, p - run);
				else
					RAW3(SYS_madvise, run, p - run, MADV_DONTNEED);
			}
			in_run = here;
			p = stop;
		}
	}
	if (in_run) {
		if (unmap)
			RAW2(SYS_munmap, run, end - run);
		else
			RAW3(SYS_madvise, run, end - run, MADV_DONTNEED);
	}
}

static long unmap_part(uint64_t a, uint64_t len, void *arg)
{
	struct sys_call *c = arg;
	long r;

	if (g_vm.lwc.nlwcs <= 1) {
		r = pt_apply(c, a, len, 0);
		return r < 0 ? r : RAW2(SYS_munmap, a, len);
	}
	/* host memory goes only with its last user: other lwCs keep their view */
	host_release_mine(c->l, a, len, 1);
	return pt_apply(c, a, len, 0);
}

static long sys_munmap(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);

	if (!c->a[1] || !range_ok(addr, len) || mem_is_pinned(addr, len))
		return -EINVAL;
	/* library memory is a hole in the lwC's view: unmapping a hole does nothing */
	return mem_each_unprotected(addr, len, unmap_part, c);
}

/* The first page of [addr, end) that l's view does not map (PROT_NONE counts as mapped), or end. */
static uint64_t view_first_hole(struct lwc *l, uint64_t addr, uint64_t end)
{
	for (uint64_t a = addr, next; a < end; a = next) {
		uint64_t e = pt_span(l->root, a, &next);
		if (!pt_is_lazy(e) && !(e & (PTE_P | VMLWC_PTE_PROTNONE)))
			return a;
	}
	return end;
}

/* The host's first unmapped page in [addr, end), or end (for a host call that stopped there). */
struct hole_ctx {
	uint64_t at, end;
};

static int hole_find(const struct procmaps_entry *e, void *arg)
{
	struct hole_ctx *h = arg;

	if (e->end <= h->at)
		return 0;
	if (e->start > h->at)
		return 1; /* a gap before this mapping */
	h->at = e->end;
	return h->at >= h->end;
}

static uint64_t host_first_hole(uint64_t addr, uint64_t end)
{
	struct hole_ctx h = { .at = addr, .end = end };

	if (procmaps_each(hole_find, &h) < 0)
		return addr;
	return h.at < end ? h.at : end;
}

/*
 * The host protection of [a, b), whose host memory l's view maps at its own address: exactly
 * prot where no other lwC maps it. Where others do, their own views say what each may do, and
 * the host must not refuse any of them what its view allows (KVM maps the host page with the
 * host's permissions): the host only ever gains access there, read and write where it can.
 */
static long host_protect_run(uint64_t a, uint64_t b, int prot, int shared)
{
	long r;

	if (!shared)
		return RAW3(SYS_mprotect, a, b - a, prot);
	if (prot == PROT_NONE)
		return 0;
	r = RAW3(SYS_mprotect, a, b - a, prot | PROT_READ | PROT_WRITE);
	if (r == -EACCES) /* a shared mapping of a file opened read-only */
		r = RAW3(SYS_mprotect, a, b - a, prot | PROT_READ);
	return r;
}

static long host_protect(struct lwc *l, uint64_t addr, uint64_t end, int prot)
{
	uint64_t run = addr, next, stop;
	int kind = -1; /* of the run from `run`: -1 none, 0 l's alone, 1 shared with others */
	long r = 0;

	for (uint64_t a = addr; a < end && r == 0; a = next) {
		int mine = mem_identity(pt_span(l->root, a, &next), a);
		if (next > end)
			next = end;
		for (uint64_t p = a; p < next && r == 0; p = stop) {
			int k = mine ? mem_shared_at(l, p, next, &stop) : -1;
			if (!mine)
				stop = next;
			if (k != kind) {
				if (kind >= 0)
					r = host_protect_run(run, p, prot, kind);
				run = p;
				kind = k;
			}
		}
	}
	if (r == 0 && kind >= 0)
		r = host_protect_run(run, end, prot, kind);
	return r;
}

/* The lwC's entries of [addr, end) under prot; the new root loaded on return. */
static long view_protect(struct sys_call *c, uint64_t addr, uint64_t end, int prot)
{
	struct pt_txn t;
	long r;

	if (end <= addr)
		return 0;
	pt_txn_begin(&t, c->l->root);
	r = pt_txn_protect(&t, addr, end - addr, pt_prot_flags(prot), g_vm.lwc.nlwcs <= 1);
	view_commit(&t, c->l);
	return r;
}

/*
 * As Linux: the pages up to the first hole in the range change, then ENOMEM (nothing changes
 * when the range starts in a hole). With several lwCs the hole is the caller's view's; alone,
 * the root's view may lag the host's mappings (lazy fill), so the host's call decides.
 */
static long sys_mprotect(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]), end, hole;
	int prot = (int)c->a[2];
	long r;

	if (addr & (PAGE_SIZE - 1))
		return -EINVAL;
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP))
		return -EINVAL;
	if (!c->a[1])
		return 0;
	if (!len) /* a length that wraps when rounded up, as the kernel says */
		return -ENOMEM;
	if (!range_ok(addr, len) || mem_is_protected(addr, len) || mem_is_pinned(addr, len))
		return -ENOMEM;
	end = addr + len;
	if (g_vm.lwc.nlwcs <= 1) {
		r = RAW3(SYS_mprotect, addr, c->a[1], prot);
		if (r == -ENOMEM)
			hole = host_first_hole(addr, end);
		else if (r < 0)
			return r;
		else
			hole = end;
		long e = view_protect(c, addr, hole, prot);
		return r < 0 ? r : e;
	}
	hole = view_first_hole(c->l, addr, end);
	if (hole == addr)
		return -ENOMEM;
	if ((r = host_protect(c->l, addr, hole, prot & (PROT_READ | PROT_WRITE | PROT_EXEC))) < 0)
		return r;
	if ((r = view_protect(c, addr, hole, prot)) < 0)
		return r;
	return hole < end ? -ENOMEM : 0;
}

/* Whether every page of [addr, addr+len) is mapped in l's view (PROT_NONE counts). */
static int view_covers(struct lwc *l, uint64_t addr, uint64_t len)
{
	return view_first_hole(l, addr, addr + len) == addr + len;
}

/* Whether l alone maps all of [addr, addr+len), as host memory at its own address, writable as it is. */
static int view_all_mine(struct lwc *l, uint64_t addr, uint64_t len)
{
	for (uint64_t a = addr, next; a < addr + len; a = next) {
		uint64_t e = pt_span(l->root, a, &next);
		if (!mem_identity(e, a) || (e & VMLWC_PTE_COW))
			return 0;
		if (next > addr + len)
			next = addr + len;
		if (mem_shared_elsewhere(l, a, next - a))
			return 0;
	}
	return 1;
}

/* Whether every page of [addr, addr+len) is shared on purpose (MAP_SHARED, LWC_SHARE). */
static int view_all_shared(struct lwc *l, uint64_t addr, uint64_t len)
{
	for (uint64_t a = addr, next; a < addr + len; a = next)
		if (!(pt_span(l->root, a, &next) & VMLWC_PTE_SHARED))
			return 0;
	return 1;
}

/* Whether l's view maps anything (PROT_NONE included) in [addr, end). */
static int any_in_view(struct lwc *l, uint64_t addr, uint64_t end)
{
	for (uint64_t a = addr, next; a < end; a = next)
		if (pt_span(l->root, a, &next))
			return 1;
	return 0;
}

/* Whether each page of [addr, addr+len) is a hole in l's view or l's own host memory at its address. */
static int view_all_mine_or_hole(struct lwc *l, uint64_t addr, uint64_t len)
{
	for (uint64_t a = addr, next; a < addr + len; a = next) {
		uint64_t e = pt_span(l->root, a, &next);
		if (next > addr + len)
			next = addr + len;
		if (e && (!mem_identity(e, a) || mem_shared_elsewhere(l, a, next - a)))
			return 0;
	}
	return 1;
}

/* The host mapping at va is private and anonymous (or gone: the view is all the lwC has). */
struct anon_ctx {
	uint64_t va;
	int anon;
};

static int anon_find(const struct procmaps_entry *e, void *arg)
{
	struct anon_ctx *c = arg;

	if (c->va < e->start || c->va >= e->end)
		return 0;
	c->anon = !e->shared && e->inode == 0 && (!e->path[0] || e->path[0] == '[');
	return 1;
}


/*
 * New private anonymous host memory at [va, va+len), the caller's alone: 0, -EEXIST when the
 * host has memory there (other lwCs'), or -errno.
 */
static long host_new_at(uint64_t va, uint64_t len)
{
	long r = RAW6(SYS_mmap, va, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		      -1, 0);

	if (r >= 0 && (uint64_t)r != va) { /* a kernel without MAP_FIXED_NOREPLACE */
		RAW2(SYS_munmap, r, len);
		return -EEXIST;
	}
	return r < 0 ? r : 0;
}

/* [dst, dst+len) of l's view as new memory: the host's at dst where it has none, else pool frames (zeros). */
static long view_new(struct sys_call *c, uint64_t dst, uint64_t len, uint64_t pflags)
{
	long r = host_new_at(dst, len);

	if (r == 0) {
		if ((r = pt_apply(c, dst, len, pflags)) < 0) {
			pt_apply(c, dst, len, 0);
			RAW2(SYS_munmap, dst, len);
		}
		return r == -ENOSPC ? -ENOMEM : r;
	}
	/* the host memory there is other lwCs': frames of the pool, reference-counted, freed with the view */
	return r == -EEXIST ? view_map_zero(c->l, dst, len, pflags) : r;
}

/* The caller's bytes of [old, old+len) into [dst, dst+len) of its view, new memory already (PROT_NONE pages too). */
static long view_move_contents(struct sys_call *c, uint64_t old, uint64_t dst, uint64_t len, uint64_t pflags)
{
	char page[PAGE_SIZE] __attribute__((aligned(16)));
	struct pt_txn t;
	long r = 0;

	pt_txn_begin(&t, c->l->root);
	for (uint64_t o = 0; o < len && r == 0; o += PAGE_SIZE) {
		uint64_t e = pt_leaf(t.root, dst + o);
		if (ua_copy_in_anyprot(c->l, page, old + o, PAGE_SIZE) < 0) {
			r = -EFAULT;
		} else if (mem_identity(e, dst + o)) {
			memcpy((void *)(dst + o), page, PAGE_SIZE); /* host memory just made, RW on the host */
		} else {
			uint64_t f = (pflags & VMLWC_PTE_PROTNONE) ? pflags : pflags | PTE_P;
			r = mem_copy_view(c->l, &t, dst + o, page, f & ~(uint64_t)VMLWC_PTE_COW);
		}
	}
	view_commit(&t, c->l);
	return r;
}

/*
 * mremap while lwCs exist, for memory others may also use: only the caller's view changes.
 * The new range gets new memory (the host's at its own address where the host has none there,
 * else frames of the pool, so that no host memory is left that nothing accounts for), the
 * caller's contents copied over (PROT_NONE pages too), and the old range leaves its view.
 */
static long mremap_view(struct sys_call *c, uint64_t old, uint64_t oldlen, uint64_t newlen,
			uint64_t flags, uint64_t pflags)
{
	struct anon_ctx ac = { .va = old, .anon = 1 };
	uint64_t dst, keep = oldlen < newlen ? oldlen : newlen;
	long r;

	if ((pflags & VMLWC_PTE_SHARED) || oldlen == 0 || (procmaps_each(anon_find, &ac), !ac.anon)) {
		if (g_vm.cfg.trace)
			trace_msg("mremap: a shared or file mapping that other lwCs may use cannot move: ENOMEM");
		return -ENOMEM;
	}
	if (!(flags & MREMAP_FIXED)) {
		if (newlen <= oldlen) {
			if (newlen < oldlen && (r = mem_each_unprotected(old + newlen, oldlen - newlen, unmap_part, c)) < 0)
				return r;
			return (long)old;
		}
		if (!any_in_view(c->l, old + oldlen, old + newlen) && !mem_is_protected(old + oldlen, newlen - oldlen) &&
		    !mem_is_pinned(old + oldlen, newlen - oldlen)) {
			/* room after it in the caller's view: grows in place, the tail new zeros */
			r = view_new(c, old + oldlen, newlen - oldlen, pflags);
			return r < 0 ? r : (long)old;
		}
		if (!(flags & MREMAP_MAYMOVE))
			return -ENOMEM;
		/* anywhere the host has room that the caller's view has none of */
		r = RAW6(SYS_mmap, 0, newlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r < 0)
			return r;
		dst = (uint64_t)r;
		RAW2(SYS_munmap, dst, newlen);
		if (dst + newlen > USER_TOP || mem_is_protected(dst, newlen) || any_in_view(c->l, dst, dst + newlen))
			return -ENOMEM;
	} else {
		dst = (uint64_t)c->a[4];
		/* the caller's own view of the target goes first, as natively */
		if ((r = mem_each_unprotected(dst, newlen, unmap_part, c)) < 0)
			return r;
	}
	if ((r = view_new(c, dst, newlen, pflags)) < 0)
		return r;
	if ((r = view_move_contents(c, old, dst, keep, pflags)) < 0) {
		mem_each_unprotected(dst, newlen, unmap_part, c);
		return r;
	}
	if (flags & MREMAP_DONTUNMAP)
		r = view_map_zero(c->l, old, oldlen, pflags); /* the old range stays, empty */
	else
		r = mem_each_unprotected(old, oldlen, unmap_part, c);
	return r < 0 ? r : (long)dst;
}

/* The root's pages of [a, a+len) that other lwCs map too: theirs become copies, the host's the root's alone. */
static long root_copy_out(struct lwc *l, uint64_t a, uint64_t len)
{
	long r = 0;

	for (uint64_t p = a, next, stop; p < a + len && r == 0; p = next) {
		int mine = mem_identity(pt_span(l->root, p, &next), p);
		if (next > a + len)
			next = a + len;
		for (uint64_t q = p; mine && q < next && r == 0; q = stop)
			if (mem_shared_at(l, q, next, &stop))
				for (uint64_t pg = q; pg < stop && r == 0; pg += PAGE_SIZE)
					r = mem_copy_out(l, pg, 0);
	}
	return r;
}

static long sys_mremap(struct sys_call *c)
{
	uint64_t old = (uint64_t)c->a[0], oldlen = PAGE_ALIGN_UP(c->a[1]);
	uint64_t newlen = PAGE_ALIGN_UP(c->a[2]), flags = (uint64_t)c->a[3], dst = (uint64_t)c->a[4];
	uint64_t pte, pflags;
	long r;

	if ((old & (PAGE_SIZE - 1)) || !newlen)
		return -EINVAL;
	if (flags & ~(uint64_t)(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP))
		return -EINVAL;
	if (((flags & MREMAP_FIXED) || (flags & MREMAP_DONTUNMAP)) && !(flags & MREMAP_MAYMOVE))
		return -EINVAL;
	if ((flags & MREMAP_FIXED) && ((dst & (PAGE_SIZE - 1)) || (dst < old + oldlen && old < dst + newlen)))
		return -EINVAL; /* before the ranges are looked at, as Linux */
	if (!range_ok(old, oldlen ? oldlen : PAGE_SIZE) || mem_is_protected(old, oldlen ? oldlen : PAGE_SIZE) ||
	    mem_is_pinned(old, oldlen ? oldlen : PAGE_SIZE))
		return -EFAULT;
	if ((flags & MREMAP_FIXED) &&
	    (!range_ok(dst, newlen) || mem_is_protected(dst, newlen) || mem_is_pinned(dst, newlen)))
		return -ENOMEM;
	/* the old mapping is one VMA (or mremap fails): its first page tells its protection (the
	   leaf's own: a table shared above it clears W on the way) */
	pte = pt_leaf(c->l->root, old);
	if (pte & PTE_P)
		pflags = PTE_P | PTE_U | PTE_A | (pte & (PTE_W | PTE_NX | VMLWC_PTE_SHARED)) |
			 ((pte & (PTE_W | VMLWC_PTE_COW)) ? PTE_W | PTE_D : 0);
	else if (pte & VMLWC_PTE_PROTNONE)
		pflags = VMLWC_PTE_PROTNONE | (pte & VMLWC_PTE_SHARED); /* moves, still PROT_NONE */
	else
		pflags = 0;
	if (g_vm.lwc.nlwcs > 1) {
		/* only the caller's own view can move: memory it does not map is not its to move */
		if (!view_covers(c->l, old, oldlen ? oldlen : PAGE_SIZE))
			return -EFAULT;
		/* the root's memory is the process's: others that still map it get their own copies
		   first, then the host moves it as natively */
		if (c->l == g_vm.lwc.root_lwc && !(pflags & VMLWC_PTE_SHARED) &&
		    ((r = root_copy_out(c->l, old, oldlen)) < 0 ||
		     ((flags & MREMAP_FIXED) && (r = root_copy_out(c->l, dst, newlen)) < 0)))
			return r;
		int mine = view_all_mine(c->l, old, oldlen);
		/* the host's growth in place or its target must not land on what the caller's view
		   has there from elsewhere (a zero view, memory backed at another address) */
		if (mine && !(flags & MREMAP_FIXED) && newlen > oldlen &&
		    (any_in_view(c->l, old + oldlen, old + newlen) ||
		     mem_shared_elsewhere(c->l, old + oldlen, newlen - oldlen)))
			mine = 0;
		if (mine && (flags & MREMAP_FIXED) && !view_all_mine_or_hole(c->l, dst, newlen))
			mine = 0;
		if (!mine)
			return mremap_view(c, old, oldlen, newlen, flags, pflags);
	}
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

/* Advice that never changes what memory holds: the host may take it for the whole range. */
static int advice_keeps_content(long adv)
{
	switch (adv) {
	case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL: case MADV_WILLNEED:
	case MADV_DONTFORK: case MADV_DOFORK: case MADV_MERGEABLE: case MADV_UNMERGEABLE:
	case MADV_HUGEPAGE: case MADV_NOHUGEPAGE: case MADV_DONTDUMP: case MADV_DODUMP:
	case 18 /* WIPEONFORK: only for fork, which the guest has not */: case 19 /* KEEPONFORK */:
	case 20 /* COLD */: case 21 /* PAGEOUT */: case 22 /* POPULATE_READ */:
	case 23 /* POPULATE_WRITE */: case 25 /* COLLAPSE */:
		return 1;
	default:
		return 0;
	}
}

#define MADV_DONTNEED_LOCKED_ 24

/*
 * MADV_DONTNEED and MADV_FREE act on the caller's view only. A page the caller alone uses
 * goes to the host; a page another lwC also uses stays for it: the caller's view of a private
 * page becomes zeros (DONTNEED) or stays (FREE, which may keep contents), and before the root
 * or a sharer of the page changes host memory, lwCs holding it as a snapshot get a copy.
 */
struct host_run {
	uint64_t start, len;
	long adv, r;
};

/* [a, a+n) goes to the host with the others of its run. */
static void host_run_add(struct host_run *h, uint64_t a, uint64_t n)
{
	if (h->len && h->start + h->len == a) {
		h->len += n;
		return;
	}
	if (h->len && h->r >= 0)
		h->r = RAW3(SYS_madvise, h->start, h->len, h->adv);
	h->start = a;
	h->len = n;
}

/* One page of l's view that is a leaf. */
static long madvise_page(struct lwc *l, struct pt_txn *t, struct host_run *h, uint64_t a, uint64_t e)
{
	int identity = (e & PTE_ADDR) == gpa_of(a);

	if (identity && !mem_shared_elsewhere(l, a, PAGE_SIZE)) {
		host_run_add(h, a, PAGE_SIZE);
	} else if (identity && (l == g_vm.lwc.root_lwc || (e & VMLWC_PTE_SHARED)) && h->adv != MADV_FREE) {
		host_run_add(h, a, PAGE_SIZE);
		return mem_copy_out(l, a, 1); /* snapshots keep their contents */
	} else if (e & VMLWC_PTE_SHARED) {
		/* a pool frame shared on purpose is private memory the sharers have in common: they
		   all see the zeros; MAP_SHARED memory keeps its contents */
		if (h->adv != MADV_FREE && pool_refcount(e) >= 0)
			memset((void *)hva_of(e & PTE_ADDR), 0, PAGE_SIZE);
	} else if (h->adv != MADV_FREE) {
		return mem_zero_view(l, t, a);
	}
	return 0;
}

/*
 * A stretch [a, stop) of a lazy entry e in l's view, whose sharing with other lwCs is the same
 * throughout: as each of its pages would be, but in one step where no page needs its own copy.
 */
static long madvise_lazy(struct lwc *l, struct pt_txn *t, struct host_run *h, uint64_t a, uint64_t stop,
			 uint64_t e, int shared)
{
	uint64_t leaf = (e & ~(VMLWC_PTE_LAZY | VMLWC_PTE_LZERO)) | ((e & VMLWC_PTE_PROTNONE) ? 0 : PTE_P);
	long r = 0;

	if (e & VMLWC_PTE_LZERO)
		return 0; /* zeros already */
	if (!shared) {
		host_run_add(h, a, stop - a);
	} else if ((l == g_vm.lwc.root_lwc || (e & VMLWC_PTE_SHARED)) && h->adv != MADV_FREE) {
		for (uint64_t p = a; p < stop && r >= 0; p += PAGE_SIZE)
			r = mem_copy_out(l, p, 1);
		host_run_add(h, a, stop - a);
	} else if (!(e & VMLWC_PTE_SHARED) && h->adv != MADV_FREE) {
		uint64_t n = (leaf & ~(PTE_W | PTE_D | VMLWC_PTE_SHARED)) | ((leaf & (PTE_W | VMLWC_PTE_COW)) ? VMLWC_PTE_COW : 0);
		r = pt_txn_set_zero(t, a, stop - a, n);
	}
	return r;
}

/*
 * MADV_DONTNEED and MADV_FREE act on the caller's view only. A page the caller alone uses
 * goes to the host; a page another lwC also uses stays for it: the caller's view of a private
 * page becomes zeros (DONTNEED) or stays (FREE, which may keep contents), and before the root
 * or a sharer of the page changes host memory, lwCs holding it as a snapshot get a copy.
 */
static long madvise_views(struct sys_call *c, uint64_t addr, uint64_t len, long adv)
{
	struct lwc *l = c->l;
	struct host_run h = { .adv = adv };
	struct pt_txn t;
	uint64_t end = addr + len, next, stop;
	long r = 0;

	pt_txn_begin(&t, l->root);
	for (uint64_t a = addr; a < end && r >= 0 && h.r >= 0; a = next) {
		uint64_t e = pt_span(l->root, a, &next);
		if (next > end)
			next = end;
		if (!pt_is_lazy(e)) {
			r = madvise_page(l, &t, &h, a, e);
			continue;
		}
		for (uint64_t p = a; p < next && r >= 0; p = stop) {
			int shared = mem_shared_at(l, p, next, &stop);
			r = madvise_lazy(l, &t, &h, p, stop, e, shared);
		}
	}
	host_run_add(&h, 0, 0);
	view_commit(&t, l);
	return r < 0 ? r : h.r < 0 ? h.r : 0;
}

static long sys_madvise(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);
	long adv = c->a[2];

	if ((addr & (PAGE_SIZE - 1)) || (c->a[1] && !len))
		return -EINVAL;
	if (!range_ok(addr, len) || mem_is_protected(addr, len) || mem_is_pinned(addr, len))
		return -ENOMEM;
	if (adv == MADV_HWPOISON || adv == MADV_SOFT_OFFLINE)
		return -EPERM; /* they act on the host's frames, whoever maps them */
	if (!len)
		return 0;
	if (g_vm.lwc.nlwcs <= 1)
		return RAW3(SYS_madvise, addr, c->a[1], adv); /* the view may lag the host's (lazy fill) */
	/*
	 * Only the caller's own view: memory it does not map is not its to advise on. As Linux,
	 * advice that drops contents acts on every mapped page of the range, then ENOMEM for the
	 * holes; the rest is refused whole when the range has a hole.
	 */
	if (adv == MADV_DONTNEED || adv == MADV_DONTNEED_LOCKED_ || adv == MADV_FREE) {
		long r = 0, hole_seen = 0;
		for (uint64_t a = addr, end = addr + len, hole, next; a < end && r >= 0; a = next) {
			hole = view_first_hole(c->l, a, end);
			if (hole > a)
				r = madvise_views(c, a, hole - a, adv == MADV_FREE ? MADV_FREE : MADV_DONTNEED);
			/* past the hole to the next mapped page */
			for (next = hole; next < end && view_first_hole(c->l, next, next + PAGE_SIZE) == next;) {
				uint64_t n2;
				pt_span(c->l->root, next, &n2);
				next = n2 < end ? n2 : end;
			}
			hole_seen |= hole < end;
		}
		return r < 0 ? r : hole_seen ? -ENOMEM : 0;
	}
	if (!view_covers(c->l, addr, len))
		return -ENOMEM;
	if (advice_keeps_content(adv))
		return RAW3(SYS_madvise, addr, c->a[1], adv);
	if (adv == MADV_REMOVE) {
		/* frees the backing store of shared memory: the caller must share every page on purpose */
		if (!view_all_shared(c->l, addr, len))
			return -EINVAL;
		return RAW3(SYS_madvise, addr, c->a[1], adv);
	}
	if (g_vm.cfg.trace)
		trace_msg("madvise: advice %ld not supported while lwCs share memory: EINVAL", adv);
	return -EINVAL;
}

/*
 * While lwCs exist each has its own break over the one host heap. The host break only grows
 * (to the highest any lwC asked for); an lwC's new heap pages are zeros of its own (the zero
 * frame, copied on write), except the root's, which are the host's pages at their address,
 * taken back from lwCs that still held them as a snapshot.
 */
static long brk_view(struct sys_call *c, uint64_t want)
{
	struct lwc *l = c->l;
	uint64_t old = l->brk_cur, otop = PAGE_ALIGN_UP(old), ntop = PAGE_ALIGN_UP(want);
	uint64_t rw = pt_prot_flags(PROT_READ | PROT_WRITE);
	long r = 0;

	if (want < l->brk_start || ntop > USER_TOP)
		return (long)old;
	if (ntop > otop) {
		if (mem_is_protected(otop, ntop - otop) || mem_is_pinned(otop, ntop - otop))
			return (long)old;
		if (PAGE_ALIGN_UP((uint64_t)RAW1(SYS_brk, 0)) < ntop && (uint64_t)RAW1(SYS_brk, want) < want)
			return (long)old;
		if (l == g_vm.lwc.root_lwc) {
			for (uint64_t a = otop; a < ntop && r == 0; a += PAGE_SIZE)
				if (mem_shared_elsewhere(l, a, PAGE_SIZE))
					r = mem_copy_out(l, a, 0);
			if (r == 0)
				r = RAW3(SYS_madvise, otop, ntop - otop, MADV_DONTNEED); /* fresh heap is zero */
			if (r == 0)
				r = pt_apply(c, otop, ntop - otop, rw);
		} else {
			r = view_map_zero(l, otop, ntop - otop, rw);
		}
		if (r < 0)
			return (long)old;
	} else if (ntop < otop) {
		host_release_mine(l, ntop, otop - ntop, 0); /* memory back to the host; the heap stays */
		pt_apply(c, ntop, otop - ntop, 0);
	}
	l->brk_cur = want;
	return (long)want;
}

static long sys_brk(struct sys_call *c)
{
	uint64_t want = (uint64_t)c->a[0], old = c->l->brk_cur, now;
	long r;

	if (g_vm.lwc.nlwcs > 1)
		return brk_view(c, want);
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

/* msync, mlock, munlock (the root's alone), mincore: pass through when the range is the caller's. */
static long sys_range_passthrough(struct sys_call *c)
{
	uint64_t addr = (uint64_t)c->a[0], len = PAGE_ALIGN_UP(c->a[1]);

	if (c->nr == __NR_msync && (addr & (PAGE_SIZE - 1)))
		return -EINVAL;
	if (!range_ok(PAGE_ALIGN_DOWN(addr), len) || mem_is_protected(PAGE_ALIGN_DOWN(addr), len ? len : 1))
		return -ENOMEM;
	if ((uint64_t)c->a[1] > USER_TOP)
		return -ENOMEM;
	/* pages outside the caller's view are not its to ask about (mincore would tell residency) */
	if (g_vm.lwc.nlwcs > 1 && (uint64_t)c->a[1] &&
	    !view_covers(c->l, PAGE_ALIGN_DOWN(addr), PAGE_ALIGN_UP(addr + (uint64_t)c->a[1]) - PAGE_ALIGN_DOWN(addr)))
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

const struct sys_entry sys_mm_table[] = {
	SYS(__NR_mmap, .name = "mmap", .fn = sys_mmap),
	SYS(__NR_munmap, .name = "munmap", .fn = sys_munmap),
	SYS(__NR_mprotect, .name = "mprotect", .fn = sys_mprotect),
	SYS(__NR_mremap, .name = "mremap", .fn = sys_mremap),
	SYS(__NR_madvise, .name = "madvise", .fn = sys_madvise),
	SYS(__NR_brk, .name = "brk", .fn = sys_brk),
	SYS(__NR_msync, .name = "msync", .fn = sys_range_passthrough),
	/* locking is the process's memory state: a child's view of a page it shares copy-on-write
	 * is the root's host page, which the child may not unlock (nor pin) */
	SYS(__NR_mlock, .name = "mlock", .fn = sys_range_passthrough, .whole = 1),
	SYS(__NR_munlock, .name = "munlock", .fn = sys_range_passthrough, .whole = 1),
	SYS(__NR_mincore, .name = "mincore", .fn = sys_range_passthrough),
};
const unsigned sys_mm_table_len = ARRAY_SIZE(sys_mm_table);
