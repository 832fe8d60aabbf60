/* lwCs on the host side: creation, the switch slow path, descriptors, closing, the lwC port. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "internal.h"
#include "rawsys.h"

#define LWC_PAGES (PAGE_ALIGN_UP(sizeof(struct lwc)) / PAGE_SIZE)
#define MAX_SPECS 64
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101

static uint64_t kva_of(const void *host)
{
	return VMLWC_PHYSMAP_KVA + gpa_of((uintptr_t)host);
}

struct lwc *lwc_from_kva(uint64_t kva)
{
	return (struct lwc *)hva_of(kva - VMLWC_PHYSMAP_KVA);
}

/* A new tree: its first load flushes the lwC's PCID (no VMLWC_CR3_NOFLUSH until then). */
void lwc_set_root(struct lwc *l, gpa_t root)
{
	l->root = root;
	l->s.cr3 = root | (g_vm.pcid ? l->s.id + 1 : 0);
}

static struct lwc *lwc_alloc(void)
{
	struct lwc *l;
	unsigned id;

	for (id = 0; id < VMLWC_MAX_LWCS && g_vm.lwcs[id]; id++)
		;
	if (id == VMLWC_MAX_LWCS)
		return NULL;
	l = arena_pages(&g_vm.arena, LWC_PAGES);
	if (!l)
		return NULL;
	l->s.id = id;
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		l->s.src_map[i] = -1;
	g_vm.lwcs[id] = l;
	g_vm.stub_lwcs[id] = kva_of(l);
	g_vm.nlwcs++;
	if (g_vm.stub_live)
		g_vm.stub_live[(*g_vm.stub_nlive)++] = kva_of(l);
	return l;
}

struct lwc *lwc_root_new(void)
{
	struct lwc *l = lwc_alloc();

	if (l)
		l->s.state = VMLWC_LWC_RUNNING;
	return l;
}

/* Lowest descriptor in owner's table that refers to lwC id: what the stub passes as src. */
static void src_map_update(struct lwc *owner, unsigned id)
{
	unsigned cap = fdtab_used(owner->fds);

	owner->s.src_map[id] = -1;
	for (unsigned g = 0; g < cap; g++)
		if (fdtab_lwc(owner->fds, g, NULL) == (int)id) {
			owner->s.src_map[id] = (int32_t)g;
			return;
		}
}

/* Whether another live lwC uses l's descriptor table (LWC_FILES | LWC_SHARE). */
static int table_shared(const struct lwc *l)
{
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwcs[i] && g_vm.lwcs[i] != l && g_vm.lwcs[i]->fds == l->fds)
			return 1;
	return 0;
}

static void lwc_unref(struct lwc *l);

static void lwc_destroy(struct lwc *l)
{
	unsigned id = l->s.id;

	l->s.state = VMLWC_LWC_FREE;
	g_vm.stub_lwcs[id] = 0;
	g_vm.lwcs[id] = NULL;
	g_vm.nlwcs--;
	for (uint64_t i = 0; g_vm.stub_live && i < *g_vm.stub_nlive; i++)
		if (g_vm.stub_live[i] == kva_of(l)) {
			g_vm.stub_live[i] = g_vm.stub_live[--*g_vm.stub_nlive];
			break;
		}
	if (l->root && l->root != GPA_NONE)
		pt_destroy(l->root, pool_unref);
	cred_put(l->cred);
	l->cred = NULL;
	if (l->fds && !table_shared(l)) {
		fdtab_close_all(l->fds); /* may release further lwCs */
		fdtab_free(l->fds);
	}
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwcs[i] && g_vm.lwcs[i]->s.src_map[id] >= 0)
			g_vm.lwcs[i]->s.src_map[id] = -1;
	if (l->trap_to && g_vm.lwcs[l->trap_to - 1])
		lwc_unref(g_vm.lwcs[l->trap_to - 1]); /* its monitor */
	arena_free(&g_vm.arena, l, LWC_PAGES);
}

static void lwc_unref(struct lwc *l)
{
	if (--l->refs > 0 || l == g_vm.root_lwc)
		return;
	/* a running lwC lives on until it leaves (it is then freed by the next close check) */
	if (l->s.state != VMLWC_LWC_RUNNING)
		lwc_destroy(l);
}

/* Marks l and everything its descriptors (and, when trapped, its monitor) reach. */
static void gc_mark(struct lwc *l, unsigned char *mark)
{
	unsigned stack[VMLWC_MAX_LWCS], n = 0;

	if (mark[l->s.id])
		return;
	mark[l->s.id] = 1;
	stack[n++] = l->s.id;
	while (n) {
		struct lwc *o = g_vm.lwcs[stack[--n]];
		unsigned cap = fdtab_used(o->fds);
		for (unsigned g = 0; g <= cap; g++) {
			int id = g < cap ? fdtab_lwc(o->fds, g, NULL) : o->trap_to - 1;
			if (id >= 0 && id < VMLWC_MAX_LWCS && g_vm.lwcs[id] && !mark[id]) {
				mark[id] = 1;
				stack[n++] = (unsigned)id;
			}
		}
	}
}

/*
 * lwCs that hold descriptors for each other (a child and the grandchild it created, say) keep
 * their counts above zero after the last outside descriptor is gone: free every lwC that no
 * running lwC and not the root can reach any more.
 */
static void lwc_collect(void)
{
	unsigned char mark[VMLWC_MAX_LWCS] = { 0 };

	if (g_vm.lwc_collecting)
		return;
	g_vm.lwc_collecting = 1;
	gc_mark(g_vm.root_lwc, mark);
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwcs[i] && g_vm.lwcs[i]->s.state == VMLWC_LWC_RUNNING)
			gc_mark(g_vm.lwcs[i], mark);
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwcs[i] && !mark[i]) {
			g_vm.lwcs[i]->refs = 0;
			lwc_destroy(g_vm.lwcs[i]); /* its entries for other garbage find them gone */
		}
	g_vm.lwc_collecting = 0;
}

/* Every lwC whose table is t or shares slot g with t: its lowest descriptor for id again. */
void lwc_src_maps_refresh(struct fdtab *t, unsigned g, unsigned id)
{
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwcs[i] && fdtab_linked(t, g, g_vm.lwcs[i]->fds))
			src_map_update(g_vm.lwcs[i], id);
}

int lwc_entry_dropped(struct fdtab *t, unsigned g, unsigned id)
{
	struct lwc *target = id < VMLWC_MAX_LWCS ? g_vm.lwcs[id] : NULL;

	lwc_src_maps_refresh(t, g, id);
	if (!target)
		return 0;
	lwc_unref(target);
	if (g_vm.lwcs[id] == target && target != g_vm.root_lwc && target->refs > 0)
		lwc_collect(); /* what is left may be only a cycle */
	return 0;
}

static int install_lwc(struct lwc *owner, struct lwc *target, int rights)
{
	int g = fdtab_install_lwc(owner->fds, target->s.id, rights);

	if (g < 0)
		return g;
	target->refs++;
	lwc_src_maps_refresh(owner->fds, (unsigned)g, target->s.id);
	return g;
}

/* ---- lwc_create ---- */

struct spec_set {
	struct lwc_rspec s[MAX_SPECS];
	int n;
};

static int classify(uint64_t va, void *arg)
{
	struct spec_set *ss = arg;
	int cls = PT_FORK_COPY;

	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *r = &ss->s[i];
		if (!(r->flags & LWC_MEM) || va < r->u.mem.start || va >= r->u.mem.end)
			continue;
		cls = (r->flags & LWC_UNMAP) ? PT_FORK_UNMAP : (r->flags & LWC_SHARE) ? PT_FORK_SHARE : PT_FORK_COPY;
	}
	return cls;
}

/* Whether no memory spec touches [va, va+len): the child's view there is a plain copy. */
static int plain(uint64_t va, uint64_t len, void *arg)
{
	struct spec_set *ss = arg;

	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *r = &ss->s[i];
		if ((r->flags & LWC_MEM) && r->u.mem.start < va + len && va < r->u.mem.end)
			return 0;
	}
	return 1;
}

/* Whether the last spec of this resource type asks for sharing. */
static int spec_shared(const struct spec_set *ss, unsigned type)
{
	int share = 0;

	for (int i = 0; i < ss->n; i++)
		if (ss->s[i].flags & type)
			share = (ss->s[i].flags & LWC_SHARE) != 0;
	return share;
}

/* What the specs make of descriptor slot g: LWC_COPY, LWC_SHARE or LWC_UNMAP (the last wins). */
static unsigned fd_class(const struct spec_set *ss, unsigned g)
{
	unsigned cls = LWC_COPY;

	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *r = &ss->s[i];
		if (!(r->flags & LWC_FILES))
			continue;
		int all = r->u.fds.from == -1 && r->u.fds.to == -1;
		if (all || ((int)g >= r->u.fds.from && (int)g <= r->u.fds.to))
			cls = r->flags & (LWC_SHARE | LWC_UNMAP);
	}
	return cls;
}

/* Whether the specs share the whole descriptor table: a last whole-table share, no range after. */
static int fds_whole_shared(const struct spec_set *ss)
{
	int shared = 0;

	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *r = &ss->s[i];
		if (!(r->flags & LWC_FILES))
			continue;
		shared = r->u.fds.from == -1 && r->u.fds.to == -1 && (r->flags & LWC_SHARE);
	}
	return shared;
}

static int specs_read(struct lwc *l, gva_t gva, long n, struct spec_set *ss)
{
	if (n < 0 || n > MAX_SPECS)
		return -EINVAL;
	if (n && ua_copy_in(l, ss->s, gva, (size_t)n * sizeof(ss->s[0])) < 0)
		return -EFAULT;
	ss->n = (int)n;
	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *r = &ss->s[i];
		unsigned type = r->flags & (LWC_MEM | LWC_FILES | LWC_CRED);
		unsigned opt = r->flags & (LWC_SHARE | LWC_UNMAP);

		if (r->flags & ~(LWC_MEM | LWC_FILES | LWC_CRED | LWC_SHARE | LWC_UNMAP | LWC_MAY_OVERLAY))
			return -EINVAL;
		if (type != LWC_MEM && type != LWC_FILES && type != LWC_CRED)
			return -EINVAL; /* exactly one resource type */
		if (opt == (LWC_SHARE | LWC_UNMAP))
			return -EINVAL; /* at most one option */
		if (type == LWC_MEM && ((r->u.mem.start | r->u.mem.end) & (PAGE_SIZE - 1) ||
					r->u.mem.start >= r->u.mem.end || r->u.mem.end > USER_TOP))
			return -EINVAL;
		if (type == LWC_FILES && !(r->u.fds.from == -1 && r->u.fds.to == -1) &&
		    (r->u.fds.from < 0 || r->u.fds.to < r->u.fds.from))
			return -EINVAL;
	}
	return 0;
}

static int fds_copy(struct lwc *parent, struct lwc *child, const struct spec_set *ss)
{
	unsigned cap = fdtab_cap(parent->fds);

	if (fds_whole_shared(ss)) {
		/* the same table: entries opened, closed or replaced in one are so in the other */
		child->fds = parent->fds;
		memcpy(child->s.src_map, parent->s.src_map, sizeof(child->s.src_map));
		return 0;
	}

	child->fds = fdtab_new(cap);
	if (!child->fds)
		return -ENOMEM;
	/* slots above the creator's high-water mark are empty: only shared ones need a visit */
	unsigned end = fdtab_used(parent->fds);
	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *r = &ss->s[i];
		if ((r->flags & LWC_FILES) && (r->flags & LWC_SHARE)) {
			unsigned to = r->u.fds.from == -1 && r->u.fds.to == -1 ? cap : (unsigned)r->u.fds.to + 1;
			if (to > end)
				end = to < cap ? to : cap;
		}
	}
	for (unsigned g = 0; g < end; g++) {
		unsigned cls = fd_class(ss, g);
		int raw = fdtab_raw(parent->fds, g), id = fdtab_lwc(parent->fds, g, NULL);
		if (cls == LWC_UNMAP)
			continue;
		if (cls == LWC_SHARE) {
			/* one slot for both, empty or not: what it holds is held once */
			fdtab_share_slot(parent->fds, child->fds, g);
		} else if (raw == VMLWC_FD_NONE) {
			continue;
		} else if (id >= 0) {
			fdtab_set_raw(child->fds, g, raw);
			g_vm.lwcs[id]->refs++;
		} else {
			/* its own host fd on the same open file, as dup gives */
			long h = RAW3(SYS_fcntl, raw & ~VMLWC_FD_CLOEXEC, F_DUPFD_CLOEXEC, 0);
			if (h < 0)
				return (int)h;
			fdtab_set_raw(child->fds, g, (int)h | (raw & VMLWC_FD_CLOEXEC));
		}
		if (id >= 0 && child->s.src_map[id] < 0)
			child->s.src_map[id] = (int32_t)g;
	}
	return 0;
}

static long lwc_create_host(struct vcpu *v, gva_t specs, long nspecs, long flags)
{
	struct lwc *parent = v->lwc, *child;
	struct vmlwc_iret_frame *f = frame_user(v);
	struct spec_set ss;
	gpa_t np = GPA_NONE, cr = GPA_NONE;
	long r;

	if (flags & ~(long)LWC_TRAP_SYSCALL)
		return -EINVAL;
	if ((r = specs_read(parent, specs, nspecs, &ss)) < 0)
		return r;
	if (g_vm.pool->nfree == 0 && g_vm.pool->bump >= g_vm.pool->nframes)
		return -ENOMEM; /* no frame left for the copies the new lwC will need */
	child = lwc_alloc();
	if (!child)
		return -ENOMEM;
	if ((r = fds_copy(parent, child, &ss)) < 0)
		goto fail;
	if ((r = install_lwc(child, parent, VMLWC_FD_RIGHTS)) < 0)
		goto fail;
	if ((r = pt_fork(parent->root, &np, &cr, classify, plain, &ss, pool_ref)) < 0)
		goto fail;
	r = install_lwc(parent, child, VMLWC_FD_RIGHTS);
	if (r < 0)
		goto fail;
	/* the child resumes in this very call, from the creator's gate frame */
	child->s.rip = f->rip;
	child->s.rsp = f->rsp;
	child->s.rflags = f->rflags;
	child->s.fs_base = parent->s.fs_base;
	child->s.gs_base = parent->s.gs_base;
	child->limited = parent->limited; /* a limit holds for the lwCs created afterwards */
	if (flags & LWC_TRAP_SYSCALL) {
		child->trap_to = (int)parent->s.id + 1;
		parent->refs++; /* the monitor lives as long as the lwC it watches */
	}
	if (parent->cred && spec_shared(&ss, LWC_CRED)) {
		child->cred = parent->cred;
		child->cred->refs++;
	} else if (parent->cred) {
		child->cred = cred_new(parent->cred);
	}
	memcpy(child->allow, parent->allow, sizeof(child->allow));
	child->brk_start = parent->brk_start;
	child->brk_cur = parent->brk_cur;
	lwc_set_root(child, cr);
	child->s.fdtab = kva_of(child->fds);
	child->s.state = VMLWC_LWC_READY;
	/* the creator's private pages are copy-on-write now: it loads its new tree on return */
	v->deferred_tree = parent->root;
	lwc_set_root(parent, np);
	v->pending_cr3 = parent->s.cr3;
	g_vm.lwc_creates++;
	return r;
fail:
	if (np != GPA_NONE)
		pt_destroy(np, pool_unref);
	child->refs = 0;
	child->root = cr; /* GPA_NONE when the fork did not get that far */
	lwc_destroy(child);
	return r;
}

/* ---- switching when the stub did not ---- */

/* The host finishes a switch: t runs on v and its tree is loaded on the way back to ring 3. */
static void lwc_enter(struct vcpu *v, struct lwc *t)
{
	t->s.state = VMLWC_LWC_RUNNING;
	((struct vmlwc_vcpu_shared *)v->area)->cur_lwc = kva_of(t);
	v->lwc = t;
	v->pending_cr3 = t->s.cr3;
	g_vm.lwc_switches_slow++;
}

static long lwc_switch_host(struct vcpu *v, long to, int discard)
{
	struct lwc *cur = v->lwc, *t;
	struct vmlwc_iret_frame *f = frame_user(v);
	struct kvm_regs *regs = &v->run->s.regs.regs;
	int rights, id = fdtab_lwc(cur->fds, to, &rights);

	if (id < 0)
		return -EBADF;
	if (!(rights & VMLWC_FD_RIGHT_SWITCH))
		return -EPERM;
	t = g_vm.lwcs[id];
	if (!t || t == cur)
		return -EINVAL;
	if (t->s.state == VMLWC_LWC_RUNNING)
		return -EBUSY;
	if (t->s.state != VMLWC_LWC_READY && t->s.state != VMLWC_LWC_TRAPPED)
		return -EINVAL; /* its context was discarded */
	int trapped = t->s.state == VMLWC_LWC_TRAPPED;

	if (t->s.fs_base != cur->s.fs_base && vcpu_msr(v, MSR_FS_BASE, &t->s.fs_base, 1) < 0)
		return -EIO;
	if (t->s.gs_base != cur->s.gs_base && vcpu_msr(v, MSR_GS_BASE, &t->s.gs_base, 1) < 0)
		return -EIO;
	if (discard) {
		cur->s.state = VMLWC_LWC_GONE;
	} else {
		cur->s.rip = f->rip;
		cur->s.rsp = f->rsp;
		cur->s.rflags = f->rflags;
		cur->s.state = VMLWC_LWC_READY;
	}
	f->rip = t->s.rip;
	f->rsp = t->s.rsp;
	f->rflags = t->s.rflags;
	long ret = VMLWC_LWC_SWITCHED_RET;
	if (trapped) {
		/* back from its trapped syscall: its registers, and the first argument as the result;
		   the stub's own rip/rsp/rflags stay: it returns through the frame set above */
		uint64_t rip = regs->rip, rsp = regs->rsp, rflags = regs->rflags;
		ret = (long)regs->r8;
		*regs = t->trapped_regs;
		regs->rip = rip;
		regs->rsp = rsp;
		regs->rflags = rflags;
	} else {
		regs->rdi = (uint64_t)(int64_t)t->s.src_map[cur->s.id];
	}
	lwc_enter(v, t);
	if (cur->refs <= 0 && cur != g_vm.root_lwc && cur->s.state != VMLWC_LWC_RUNNING)
		lwc_destroy(cur);
	return ret; /* hc_lwc puts it in rax */
}

static long lwc_self_host(struct vcpu *v)
{
	struct lwc *l = v->lwc;

	if (l->s.src_map[l->s.id] >= 0)
		return l->s.src_map[l->s.id];
	return install_lwc(l, l, VMLWC_FD_RIGHTS);
}

static long lwc_close_host(struct vcpu *v, long d)
{
	if (fdtab_lwc(v->lwc->fds, d, NULL) < 0)
		return -EBADF;
	return fdtab_close(v->lwc->fds, d);
}

static long lwc_restrict_host(struct vcpu *v, long d, gva_t specs, long nspecs)
{
	struct spec_set ss;
	int rights, id = fdtab_lwc(v->lwc->fds, d, &rights), keep_overlay = 0;
	long r;

	if (id < 0)
		return -EBADF;
	if ((r = specs_read(v->lwc, specs, nspecs, &ss)) < 0)
		return r;
	for (int i = 0; i < ss.n; i++)
		keep_overlay |= (ss.s[i].flags & LWC_MAY_OVERLAY) != 0;
	/* rights can only be removed */
	if (!keep_overlay)
		rights &= ~VMLWC_FD_RIGHT_OVERLAY;
	fdtab_set_raw(v->lwc->fds, d, VMLWC_FD_LWC | rights | id);
	return 0;
}

/*
 * lwc_overlay: map ranges of another lwC (held with the overlay right) into the caller.
 * Memory comes copy-on-write, or shared with LWC_SHARE; descriptors come as duplicates at the
 * same numbers. The caller's own entries in those ranges are replaced.
 */
static long overlay_apply(struct lwc *l, struct lwc *src, const struct spec_set *ss);

static long lwc_overlay_host(struct vcpu *v, long from, gva_t specs, long nspecs)
{
	struct lwc *l = v->lwc, *src;
	struct spec_set ss;
	int rights, id = fdtab_lwc(l->fds, from, &rights);
	long r;

	if (id < 0)
		return -EBADF;
	if (!(rights & VMLWC_FD_RIGHT_OVERLAY))
		return -EPERM;
	src = g_vm.lwcs[id];
	if (!src || src == l)
		return -EINVAL;
	if ((r = specs_read(l, specs, nspecs, &ss)) < 0)
		return r;
	src->refs++; /* the ranges may replace the very descriptor it came through */
	r = overlay_apply(l, src, &ss);
	lwc_unref(src);
	return r;
}

static long overlay_apply(struct lwc *l, struct lwc *src, const struct spec_set *ss)
{
	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *s = &ss->s[i];
		if ((s->flags & LWC_UNMAP) || (s->flags & LWC_CRED))
			return -EINVAL;
	}
	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *s = &ss->s[i];
		if (s->flags & LWC_MEM) {
			struct pt_txn t;
			long err = 0;
			pt_txn_begin(&t, l->root);
			for (uint64_t va = s->u.mem.start; va < s->u.mem.end && !err; va += PAGE_SIZE) {
				/* a page under a table src shares with others is theirs too: src's own path first */
				if (pt_own_path(src, va) < 0) {
					err = -ENOMEM;
					break;
				}
				uint64_t e = pt_leaf(src->root, va), mine = pt_leaf(l->root, va), se = e;
				if (!(e & (PTE_P | VMLWC_PTE_PROTNONE)) && !(mine & (PTE_P | VMLWC_PTE_PROTNONE)))
					continue;
				if ((e & (PTE_P | VMLWC_PTE_PROTNONE)) && !(e & VMLWC_PTE_SHARED)) {
					if (!(s->flags & LWC_SHARE) && (e & (PTE_W | VMLWC_PTE_COW)))
						se = e = (e & ~PTE_W) | VMLWC_PTE_COW; /* both views copy on write */
					else if ((s->flags & LWC_SHARE) && !(e & VMLWC_PTE_COW))
						se = e = e | VMLWC_PTE_SHARED; /* shared memory now, for later creates too */
				}
				if (se != pt_leaf(src->root, va)) {
					/* the source's tree is not loaded: a transaction of its own */
					struct pt_txn st;
					pt_txn_begin(&st, src->root);
					err = pt_txn_set_leaf(&st, va, se);
					pt_txn_finish(&st, src);
					if (err)
						break;
				}
				if (!(e & (PTE_P | VMLWC_PTE_PROTNONE)))
					e = 0;
				if ((err = pt_txn_set_leaf(&t, va, e)) < 0)
					break;
				pool_ref(e);
				if (mine & PTE_ADDR)
					pool_unref(mine);
			}
			pt_txn_finish(&t, l); /* what was done is consistent, page by page */
			if (err)
				return err;
		} else if (s->flags & LWC_FILES) {
			unsigned cap = fdtab_cap(src->fds);
			int all = s->u.fds.from == -1 && s->u.fds.to == -1;
			for (unsigned g = all ? 0 : (unsigned)s->u.fds.from; g < cap && (all || (int)g <= s->u.fds.to); g++) {
				int raw = fdtab_raw(src->fds, g), lid = fdtab_lwc(src->fds, g, NULL);
				if (g >= fdtab_cap(l->fds) || fdtab_linked(src->fds, g, l->fds))
					continue;
				if (s->flags & LWC_SHARE) {
					/* the caller's slot leaves its own group and joins the source's */
					fdtab_leave(l->fds, g);
					fdtab_share_slot(src->fds, l->fds, g);
					if (lid >= 0)
						lwc_src_maps_refresh(l->fds, g, (unsigned)lid);
					continue;
				}
				if (raw == VMLWC_FD_NONE)
					continue;
				if (lid >= 0) {
					fdtab_close(l->fds, g);
					fdtab_set_raw(l->fds, g, raw);
					g_vm.lwcs[lid]->refs++;
					lwc_src_maps_refresh(l->fds, g, (unsigned)lid);
					continue;
				}
				long h = RAW3(SYS_fcntl, raw & ~VMLWC_FD_CLOEXEC, F_DUPFD_CLOEXEC, 0);
				if (h < 0)
					return h;
				if (fdtab_install_at(l->fds, g, (int)h) < 0) {
					RAW1(SYS_close, h);
					return -EBADF;
				}
			}
		}
	}
	return 0;
}

/*
 * LWC_TRAP_SYSCALL: the child's syscall becomes a switch to its creator with {nr, a0..a5}; the
 * child waits, all its registers kept, until someone switches to it with {result}.
 */
int lwc_trap_syscall(struct vcpu *v)
{
	struct lwc *child = v->lwc, *mon = g_vm.lwcs[child->trap_to - 1];
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct vmlwc_iret_frame *f = frame_user(v);

	if (!mon || mon->s.state != VMLWC_LWC_READY) {
		/* nobody to ask: the syscall fails */
		r->rax = (uint64_t)-EPERM;
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		frame_return_to_user(v, r->rcx, r->r11);
		return 0;
	}
	if (mon->s.fs_base != child->s.fs_base)
		vcpu_msr(v, MSR_FS_BASE, &mon->s.fs_base, 1);
	if (mon->s.gs_base != child->s.gs_base)
		vcpu_msr(v, MSR_GS_BASE, &mon->s.gs_base, 1);
	child->trapped_regs = *r;
	child->s.rip = r->rcx;
	child->s.rsp = f->rsp;
	child->s.rflags = r->r11;
	child->s.state = VMLWC_LWC_TRAPPED;
	uint64_t nr = r->rax, a[6] = { r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9 };
	r->rax = (uint64_t)VMLWC_LWC_SWITCHED_RET;
	r->rdi = (uint64_t)(int64_t)mon->s.src_map[child->s.id];
	r->rbp = 7;
	r->r8 = nr;
	r->r9 = a[0];
	r->r10 = a[1];
	r->r12 = a[2];
	r->r13 = a[3];
	r->r14 = a[4];
	r->r15 = a[5];
	r->rbx = 0;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	lwc_enter(v, mon);
	f->rsp = mon->s.rsp;
	frame_return_to_user(v, mon->s.rip, mon->s.rflags);
	return 0;
}

/*
 * lwc_syscall: a syscall run for the caller in another lwC's context: its page table with
 * LWC_MEM, its descriptor table with LWC_FILES. The caller needs the syscall right; the
 * target's syscall limit applies.
 */
static long lwc_syscall_host(struct vcpu *v, long d, unsigned long mask, long nr)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	int rights, id = fdtab_lwc(v->lwc->fds, d, &rights);
	struct lwc *t, *use;
	long a[6] = { (long)r->r8, (long)r->r9, (long)r->r10, (long)r->r12, (long)r->r13, (long)r->r14 };
	long ret;

	if (id < 0)
		return -EBADF;
	if (!(rights & VMLWC_FD_RIGHT_SYSCALL))
		return -EPERM;
	if (mask & ~(unsigned long)(LWC_MEM | LWC_FILES | LWC_CRED))
		return -EINVAL;
	t = g_vm.lwcs[id];
	if (!t)
		return -EBADF;
	if (!lwc_allows(t, nr))
		return -EPERM;
	use = (mask & LWC_MEM) ? t : v->lwc;
	struct cred *saved_cred = use->cred;
	use->cred = t->cred; /* its credentials apply */
	ret = sys_dispatch_in(v, use, (mask & LWC_FILES) ? t->fds : v->lwc->fds, nr, a);
	use->cred = saved_cred;
	return ret;
}

/* lwc_limit_syscalls: the new set is the listed numbers within the current set, forever. */
static long lwc_limit_host(struct vcpu *v, gva_t list, long n)
{
	struct lwc *l = v->lwc;
	uint64_t set[SYS_NR_MAX / 64] = { 0 };

	if (n < 0 || n > 4096)
		return -EINVAL;
	for (long i = 0; i < n; i++) {
		long nr;
		if (ua_copy_in(l, &nr, list + (gva_t)i * sizeof(long), sizeof(nr)) < 0)
			return -EFAULT;
		if (nr < 0 || nr >= SYS_NR_MAX)
			return -EINVAL;
		set[nr / 64] |= 1UL << (nr % 64);
	}
	for (unsigned k = 0; k < SYS_NR_MAX / 64; k++)
		l->allow[k] = l->limited ? (l->allow[k] & set[k]) : set[k];
	l->limited = 1;
	return 0;
}

/* The lwC port: every lwC call the stub hands over. */
static int hc_lwc(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct vmlwc_iret_frame *f = frame_user(v);
	long ret;

	if (r->rsp != v->area_kva + VMLWC_FRAME_ON_KSTACK || f->rip != VMLWC_GATE_VA + 1)
		run_panic(v, "lwC port used outside the gate path");
	switch (r->rax) {
	case VMLWC_LWC_CREATE:
		ret = lwc_create_host(v, r->rdi, (long)r->rsi, (long)r->rdx);
		break;
	case VMLWC_LWC_SWITCH:
	case VMLWC_LWC_SWITCH_DISCARD:
		ret = lwc_switch_host(v, (long)r->rdi, r->rax == VMLWC_LWC_SWITCH_DISCARD);
		break;
	case VMLWC_LWC_SELF:
		ret = lwc_self_host(v);
		break;
	case VMLWC_LWC_CLOSE:
		ret = lwc_close_host(v, (long)r->rdi);
		break;
	case VMLWC_LWC_OVERLAY:
		ret = lwc_overlay_host(v, (long)r->rdi, r->rsi, (long)r->rdx);
		break;
	case VMLWC_LWC_SYSCALL:
		ret = lwc_syscall_host(v, (long)r->rdi, r->rsi, (long)r->rdx);
		break;
	case VMLWC_LWC_LIMIT:
		ret = lwc_limit_host(v, r->rdi, (long)r->rsi);
		break;
	case VMLWC_LWC_RESTRICT:
		ret = lwc_restrict_host(v, (long)r->rdi, r->rsi, (long)r->rdx);
		break;
	default:
		if (g_trace)
			trace_msg("lwC call %lu not supported yet: ENOSYS", (unsigned long)r->rax);
		ret = -ENOSYS;
		break;
	}
	if (g_trace)
		trace_msg("[vcpu %d] lwC call %lu(%lx, %lx, %lx) = %ld", v->index, (unsigned long)r->rax,
			  (unsigned long)r->rdi, (unsigned long)r->rsi, (unsigned long)r->rdx, ret);
	r->rax = (uint64_t)ret;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	frame_return_to_user(v, f->rip, f->rflags);
	return 0;
}

void lwc_init(void)
{
	hypercall_register(VMLWC_PORT_LWC, hc_lwc);
}
