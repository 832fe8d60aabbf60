/* lwCs on the host side: creation, the switch slow path, descriptors, closing, the lwC port. */
#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base.h"
#include "arena.h"
#include "cred.h"
#include "die.h"
#include "fdtab.h"
#include "fsctx.h"
#include "lwc_host.h"
#include "memmap.h"
#include "overlay.h"
#include "pgtable.h"
#include "pool.h"
#include "rawsys.h"
#include "rights.h"
#include "run.h"
#include "sigtab.h"
#include "sysdesc.h"
#include "trace.h"
#include "uaccess.h"
#include "vcpu.h"
#include "view.h"
#include "state.h"
#include "sys/sys.h"

#define LWC_PAGES (PAGE_ALIGN_UP(sizeof(struct lwc)) / PAGE_SIZE)
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define KVM_CAP_XSAVE2_ 208
#define KVM_GET_XSAVE2_ _IOR(KVMIO, 0xcf, struct kvm_xsave)

/* The lwC's own pages of the gate window: leaf flags (SHARED: never made copy-on-write). */
#define PTE_PRIV (PTE_P | PTE_W | PTE_U | PTE_A | PTE_D | PTE_NX | VMLWC_PTE_SHARED)
#define PTE_SRCMAP (PTE_P | PTE_U | PTE_A | PTE_NX | VMLWC_PTE_SHARED)
#define PTE_SWTAB (PTE_P | PTE_A | PTE_NX | VMLWC_PTE_SHARED) /* supervisor only */

static uint64_t kva_of(const void *host)
{
	return VMLWC_PHYSMAP_KVA + gpa_of((uintptr_t)host);
}

static int is_lwc_entry(int32_t e)
{
	return e != VMLWC_FD_NONE && (e & VMLWC_FD_LWC);
}

struct lwc *lwc_by_cr3(uint64_t cr3)
{
	gpa_t root = cr3 & PTE_ADDR;
	uint64_t tag = pt_root_tag(root);
	struct lwc *l;

	if (tag == 0 || tag > VMLWC_MAX_LWCS)
		return NULL;
	l = g_vm.lwc.lwcs[tag - 1];
	return l && l->root == root ? l : NULL;
}

struct lwc *lwc_by_tag(uint64_t cr3)
{
	uint64_t tag = pt_root_tag(cr3 & PTE_ADDR);

	return tag == 0 || tag > VMLWC_MAX_LWCS ? NULL : g_vm.lwc.lwcs[tag - 1];
}

uint64_t *lwc_slot(const struct lwc *l, int i)
{
	return &l->priv[(VMLWC_PRIV_SLOTS + (unsigned)i * VMLWC_PRIV_SLOT_SIZE) / 8];
}

/*
 * Whether v, stopped in ring 0, has the stub's CR3 or scrub trampoline ahead (its return frame
 * points there, or it is inside one before the CR3 load): then frame B's CR3 is what it loads.
 * The two trampolines are adjacent in the stub, the scrub one last (at most 64 bytes).
 */
static int tramp_ahead(const struct vcpu *v)
{
	const struct vmlwc_iret_frame *f = (const void *)(v->area + VMLWC_FRAME_ON_KSTACK);
	uint64_t rip = v->run->s.regs.regs.rip;

	if ((v->run->s.regs.sregs.cs.selector & 3) != 0)
		return 0;
	if (rip >= g_vm.stub.cr3_tramp && rip < g_vm.stub.scrub_tramp + 64)
		return 1;
	return (f->cs & 3) == 0 && (f->rip == g_vm.stub.cr3_tramp || f->rip == g_vm.stub.scrub_tramp);
}

/*
 * Whether a vCPU runs l now. The stub switches without exits, so a vCPU in the guest may be
 * anywhere: with several, every other one is stopped and revalidated first (its v->lwc is
 * then where it is).
 */
static int lwc_current(const struct lwc *l)
{
	struct vcpu *self = vm_holder();

	if (g_vm.kvm.nvcpus > 1 && self)
		run_sync_others(self);
	for (unsigned i = 0; i < g_vm.kvm.nvcpus; i++) {
		struct vcpu *v = g_vm.kvm.vcpus[i];
		if (v->park)
			continue;
		if (v->lwc == l)
			return 1;
		/* another vCPU's return that will load l's tree (the holder's own is being decided now) */
		if (v != self && v->pending_cr3 && lwc_by_tag(v->pending_cr3) == l)
			return 1;
		if (v != self && tramp_ahead(v) && lwc_by_tag(((const struct vmlwc_cr3_frame *)(v->area +
				VMLWC_VCPU_FRAMEB_OFF))->cr3) == l)
			return 1;
	}
	return 0;
}

void lwc_thread_gone(int i)
{
	uint64_t bit = 1UL << i;

	for (unsigned k = 0; k < VMLWC_MAX_LWCS; k++) {
		struct lwc *l = g_vm.lwc.lwcs[k];
		if (!l || !(l->ctx_mask & bit))
			continue;
		l->ctx_mask &= ~bit;
		l->create_users &= ~bit;
		memset(lwc_slot(l, i), 0, VMLWC_PRIV_SLOT_SIZE);
		lwc_publish(l);
	}
}

/* ---- the lwC's own pages of the gate window ---- */

/* The entry of page va of the gate window in l's tree, 0 if l has no page of its own there. */
static uint64_t lwc_page_pte(const struct lwc *l, uint64_t va)
{
	uint64_t nx = g_vm.cpu.has_nx ? 0 : PTE_NX;

	switch (va) {
	case VMLWC_PRIV_VA: return (gpa_of((uintptr_t)l->priv) | PTE_PRIV) & ~nx;
	case VMLWC_SRCMAP_VA: return (gpa_of((uintptr_t)l->srcmap) | PTE_SRCMAP) & ~nx;
	case VMLWC_SWTAB_VA: return (gpa_of((uintptr_t)l->swtab) | PTE_SWTAB) & ~nx;
	default: return 0;
	}
}

static int lwc_page_of(uint64_t va)
{
	return va == VMLWC_PRIV_VA || va == VMLWC_SRCMAP_VA || va == VMLWC_SWTAB_VA;
}

static uint64_t fork_own(uint64_t va, void *arg);

int lwc_map_own_pages(struct lwc *l, struct pt_txn *t)
{
	for (uint64_t va = VMLWC_PRIV_VA; va <= VMLWC_SWTAB_VA; va += PAGE_SIZE) {
		int r = pt_txn_set_leaf(t, va, lwc_page_pte(l, va));
		if (r < 0)
			return r;
	}
	return 0;
}

static void lwc_pages_free(struct lwc *l)
{
	arena_free(&g_vm.arena, l->priv, 1);
	arena_free(&g_vm.arena, l->srcmap, 1);
	arena_free(&g_vm.arena, l->swtab, 1);
	if (l->trapped_xsave)
		arena_free(&g_vm.arena, l->trapped_xsave, g_vm.lwc.xsave_pages);
	l->priv = NULL;
	l->srcmap = NULL;
	l->swtab = NULL;
	l->trapped_xsave = NULL;
}

static struct lwc *lwc_alloc(void)
{
	struct lwc *l;
	unsigned id;

	for (int tries = 0;; tries++) {
		for (id = 0; id < VMLWC_MAX_LWCS && g_vm.lwc.lwcs[id]; id++)
			;
		l = id < VMLWC_MAX_LWCS ? arena_pages(&g_vm.arena, LWC_PAGES) : NULL;
		if (l || tries)
			break;
		lwc_collect_now(); /* unreachable cycles may hold ids and memory */
	}
	if (!l)
		return NULL;
	l->priv = arena_pages(&g_vm.arena, 1);
	l->srcmap = arena_pages(&g_vm.arena, 1);
	l->swtab = arena_pages(&g_vm.arena, 1);
	if (!l->priv || !l->srcmap || !l->swtab) {
		lwc_pages_free(l);
		arena_free(&g_vm.arena, l, LWC_PAGES);
		return NULL;
	}
	memset(l->srcmap, 0xff, PAGE_SIZE); /* -1: no descriptor for any lwC yet */
	l->swtab[VMLWC_SW_SELF / 4] = id;
	l->s.id = id;
	l->serial = ++g_vm.lwc.serials;
	g_vm.lwc.lwcs[id] = l;
	g_vm.lwc.nlwcs++;
	if (g_vm.stub.live)
		g_vm.stub.live[(*g_vm.stub.nlive)++] = kva_of(l);
	return l;
}

struct lwc *lwc_root_new(void)
{
	struct lwc *l = lwc_alloc();

	if (l)
		l->state = VMLWC_LWC_READY;
	return l;
}

/* ---- what an lwC's tables say about the lwCs it holds ---- */

/* The slot owner's creation installed for its creator, while it still names lwC id; else -1. */
static int src_installed(const struct lwc *owner, unsigned id)
{
	int g = owner->create_src1 - 1;

	return g >= 0 && fdtab_lwc(owner->fds, (unsigned)g, NULL) == (int)id ? g : -1;
}

/*
 * What a switch from lwC id reports as src in owner: the descriptor owner's creation installed
 * for it while that one is there (a lower copy of the creator's own descriptor may lack the
 * switch right), else the lowest descriptor in owner's table that refers to id.
 */
static void src_map_update(struct lwc *owner, unsigned id)
{
	unsigned used = fdtab_used(owner->fds);

	if ((owner->srcmap[id] = src_installed(owner, id)) >= 0)
		return;
	for (unsigned g = 0; g < used; g++)
		if (fdtab_lwc(owner->fds, g, NULL) == (int)id) {
			owner->srcmap[id] = (int32_t)g;
			return;
		}
}

/* Whether owner and t may switch without the host writing TLS base MSRs. */
static int same_tls(const struct lwc *owner, const struct lwc *t)
{
	return g_vm.cpu.fsgsbase_user || (owner->fs_base == t->fs_base && owner->gs_base == t->gs_base);
}

/* Entry g of owner's switch table: what the stub may switch into through descriptor g. */
static void sw_refresh(struct lwc *owner, unsigned g)
{
	int rights, id;
	uint32_t e = 0;

	if (g >= VMLWC_SW_MAX)
		return;
	id = fdtab_lwc(owner->fds, g, &rights);
	if (id >= 0 && id != (int)owner->s.id && (rights & VMLWC_FD_RIGHT_SWITCH) && g_vm.lwc.lwcs[id] &&
	    same_tls(owner, g_vm.lwc.lwcs[id]))
		e = (uint32_t)id + 1;
	owner->swtab[g] = e;
}

/* Every switch table entry that names l, or that l holds (a TLS base of l changed). */
static void sw_refresh_involving(struct lwc *l)
{
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
		struct lwc *o = g_vm.lwc.lwcs[i];
		unsigned used;
		if (!o)
			continue;
		used = fdtab_used(o->fds);
		for (unsigned g = 0; g < used && g < VMLWC_SW_MAX; g++)
			if (o == l || o->swtab[g] == l->s.id + 1 || fdtab_lwc(o->fds, g, NULL) == (int)l->s.id)
				sw_refresh(o, g);
	}
}

static void lwc_tls_changed(struct lwc *l)
{
	if (!g_vm.cpu.fsgsbase_user)
		sw_refresh_involving(l);
}

void lwc_attach_fds(struct lwc *l, struct fdtab *t)
{
	struct lwc **head = (struct lwc **)fdtab_users(t);

	l->fds = t;
	l->fds_next = *head;
	*head = l;
}

/* l stops using its table; whether anyone else still does. */
static int lwc_detach_fds(struct lwc *l)
{
	struct lwc **p = (struct lwc **)fdtab_users(l->fds);

	while (*p && *p != l)
		p = &(*p)->fds_next;
	if (*p)
		*p = l->fds_next;
	l->fds_next = NULL;
	return *(struct lwc **)fdtab_users(l->fds) != NULL;
}

/* fdtab hook: slot g of table t now holds `now` instead of `old`, in every lwC using t. */
static void slot_changed(struct fdtab *t, unsigned g, int32_t old, int32_t now)
{
	g_vm.lwc.entries += is_lwc_entry(now) - is_lwc_entry(old);
	for (struct lwc *o = *(struct lwc **)fdtab_users(t); o; o = o->fds_next) {
		if (is_lwc_entry(old) && (old & VMLWC_FD_ID_MASK) < VMLWC_MAX_LWCS)
			src_map_update(o, old & VMLWC_FD_ID_MASK);
		if (is_lwc_entry(now) && (now & VMLWC_FD_ID_MASK) < VMLWC_MAX_LWCS) {
			unsigned id = now & VMLWC_FD_ID_MASK;
			if (src_installed(o, id) >= 0)
				o->srcmap[id] = src_installed(o, id);
			else if (o->srcmap[id] < 0 || (int32_t)g < o->srcmap[id])
				o->srcmap[id] = (int32_t)g;
		}
		sw_refresh(o, g);
	}
}

/* ---- lifetime ---- */

static void lwc_unref(struct lwc *l);

static void lwc_destroy(struct lwc *l)
{
	unsigned id = l->s.id;

	l->state = VMLWC_LWC_FREE;
	memset(&g_vm.stub.cr3_of[(id + 1) * VMLWC_MAX_VCPUS], 0, VMLWC_MAX_VCPUS * sizeof(uint64_t));
	if (l->zombie) {
		l->zombie = 0;
		g_vm.lwc.nzombies--;
	}
	for (uint64_t i = 0; g_vm.stub.live && i < *g_vm.stub.nlive; i++)
		if (g_vm.stub.live[i] == kva_of(l)) {
			g_vm.stub.live[i] = g_vm.stub.live[--*g_vm.stub.nlive];
			break;
		}
	if (l->root && l->root != GPA_NONE)
		pt_destroy(l->root, pool_unref);
	cred_put(l->cred);
	l->cred = NULL;
	sigtab_put(l->sigtab);
	l->sigtab = NULL;
	fsctx_put(l->fsctx);
	l->fsctx = NULL;
	g_vm.lwc.lwcs[id] = NULL; /* first: closing its table may collect others, never l again */
	g_vm.lwc.nlwcs--;
	/* no table names l any more (its count said so; in a collection its namers go with it),
	   so no switch table or src map does either: its id may be reused */
	if (l->fds && !lwc_detach_fds(l)) {
		fdtab_close_all(l->fds); /* may release further lwCs */
		fdtab_free(l->fds);
	}
	l->fds = NULL;
	if (l->trap_to && g_vm.lwc.lwcs[l->trap_to - 1])
		lwc_unref(g_vm.lwc.lwcs[l->trap_to - 1]); /* its monitor */
	g_vm.lwc.switches_dead += l->priv[VMLWC_PRIV_SWITCHES / 8];
	lwc_pages_free(l);
	arena_free(&g_vm.arena, l, LWC_PAGES);
}

static void lwc_unref(struct lwc *l)
{
	if (--l->refs > 0 || l == g_vm.lwc.root_lwc)
		return;
	lwc_publish(l);
	/* the lwC a vCPU runs lives on until it leaves: freed at an exit after that */
	if (lwc_current(l)) {
		if (!l->zombie) {
			l->zombie = 1;
			g_vm.lwc.nzombies++;
		}
		return;
	}
	lwc_destroy(l);
}

static void lwc_collect_due(void);

void lwc_reap(void)
{
	lwc_collect_due();
	if (!g_vm.lwc.nzombies)
		return;
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
		struct lwc *l = g_vm.lwc.lwcs[i];
		if (l && l->zombie && l->refs <= 0 && !lwc_current(l))
			lwc_destroy(l);
	}
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
		struct lwc *o = g_vm.lwc.lwcs[stack[--n]];
		unsigned cap = fdtab_used(o->fds);
		for (unsigned g = 0; g <= cap; g++) {
			int id = g < cap ? fdtab_lwc(o->fds, g, NULL) : o->trap_to - 1;
			if (id >= 0 && id < VMLWC_MAX_LWCS && g_vm.lwc.lwcs[id] && !mark[id]) {
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

	if (g_vm.lwc.collecting)
		return;
	g_vm.lwc.collecting = 1;
	gc_mark(g_vm.lwc.root_lwc, mark);
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwc.lwcs[i] && lwc_current(g_vm.lwc.lwcs[i]))
			gc_mark(g_vm.lwc.lwcs[i], mark);
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwc.lwcs[i] && !mark[i]) {
			g_vm.lwc.lwcs[i]->refs = 0;
			lwc_destroy(g_vm.lwc.lwcs[i]); /* its entries for other garbage find them gone */
		}
	g_vm.lwc.collecting = 0;
}

/*
 * fdtab hook: an entry for lwC id went away. When that leaves it referenced, what is left may
 * be only a cycle; a collection scans every lwC entry, so it runs once as many references were
 * dropped so (amortised: a close costs the same with 1 or 500 lwCs alive), and whenever
 * resources run short.
 */
static void lwc_dropped(unsigned id)
{
	struct lwc *target = id < VMLWC_MAX_LWCS ? g_vm.lwc.lwcs[id] : NULL;

	if (!target)
		return;
	lwc_unref(target);
	if (g_vm.lwc.lwcs[id] == target && target != g_vm.lwc.root_lwc && target->refs > 0)
		g_vm.lwc.gc_debt++;
}

/* After an lwC call or a close: the amortised collection, if it is due. */
static void lwc_collect_due(void)
{
	if (g_vm.lwc.gc_debt && g_vm.lwc.gc_debt >= 64 + g_vm.lwc.entries)
		lwc_collect_now();
}

void lwc_collect_now(void)
{
	if (g_vm.lwc.gc_debt) {
		g_vm.lwc.gc_debt = 0;
		lwc_collect();
	}
}

static int install_lwc(struct lwc *owner, struct lwc *target, int rights, uint32_t aux)
{
	int g = fdtab_install_lwc(owner->fds, target->s.id, rights, aux);

	if (g < 0) {
		rights_aux_unused(aux);
		return g;
	}
	target->refs++;
	lwc_publish(target);
	return g;
}

/* ---- lwc_create ---- */


static int in_gate_window(uint64_t va, uint64_t len)
{
	return va < VMLWC_GATE_VA + VMLWC_GATE_PAGES * PAGE_SIZE && VMLWC_GATE_VA < va + len;
}

/* The library's own pages stay what they are whatever the specs say (each lwC its own private pages). */
static int classify(uint64_t va, void *arg)
{
	struct spec_set *ss = arg;
	int cls = PT_FORK_COPY;

	if (in_gate_window(va, PAGE_SIZE))
		return lwc_page_of(va) ? PT_FORK_OWN : PT_FORK_COPY;

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

	if (in_gate_window(va, len))
		return 0; /* walked down to the child's own pages */

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

		if (r->flags & ~(LWC_MEM | LWC_FILES | LWC_CRED | LWC_SHARE | LWC_UNMAP | LWC_MAY_OVERLAY |
				 LWC_MAY_SWITCH | LWC_MAY_SYSCALL))
			return -EINVAL;
		if (r->flags == LWC_MAY_SWITCH)
			continue; /* a right that names no resource */
		if (type != LWC_MEM && type != LWC_FILES && type != LWC_CRED)
			return -EINVAL; /* exactly one resource type */
		if ((r->flags & LWC_MAY_OVERLAY) && type == LWC_CRED)
			return -EINVAL; /* credentials are never overlaid */
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

/* Whether any spec names descriptors (a range shared or left out). */
static int fds_specs_touch(const struct spec_set *ss)
{
	for (int i = 0; i < ss->n; i++)
		if ((ss->s[i].flags & LWC_FILES) && (ss->s[i].flags & (LWC_SHARE | LWC_UNMAP)))
			return 1;
	return 0;
}

static int fds_copy(struct lwc *parent, struct lwc *child, const struct spec_set *ss)
{
	unsigned cap = fdtab_cap(parent->fds); /* RLIMIT_NOFILE: shared ranges end below it */

	if (fds_whole_shared(ss)) {
		/* the same table: entries opened, closed or replaced in one are so in the other */
		lwc_attach_fds(child, parent->fds);
		memcpy(child->srcmap, parent->srcmap, PAGE_SIZE);
		for (unsigned g = 0; g < fdtab_used(child->fds) && g < VMLWC_SW_MAX; g++)
			sw_refresh(child, g);
		return 0;
	}

	if (!fds_specs_touch(ss)) {
		/* the common case: the same entries in a table of its own, taken in one pass */
		unsigned nlwc;
		struct fdtab *t = fdtab_clone(parent->fds, &nlwc);
		if (!t)
			return -ENOMEM;
		lwc_attach_fds(child, t);
		g_vm.lwc.entries += nlwc;
		memcpy(child->srcmap, parent->srcmap, PAGE_SIZE);
		for (unsigned g = 0, used = fdtab_used(t); g < used && nlwc; g++) {
			int id = fdtab_lwc(t, g, NULL);
			if (id < 0)
				continue;
			g_vm.lwc.lwcs[id]->refs++;
			if (g < VMLWC_SW_MAX)
				sw_refresh(child, g);
		}
		return 0;
	}
	struct fdtab *t = fdtab_new(fdtab_used(parent->fds));
	if (!t)
		return -ENOMEM;
	lwc_attach_fds(child, t);
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
		int r = 0;
		if (cls == LWC_SHARE) {
			/* one slot for both, empty or not: what it holds is held once */
			r = fdtab_share_slot(parent->fds, child->fds, g);
		} else if (raw == VMLWC_FD_NONE) {
			continue;
		} else {
			/* the same open file (one more reference to the host fd, no dup), or lwC */
			r = fdtab_copy_entry(child->fds, g, parent->fds, g);
			if (r == 0 && id >= 0)
				g_vm.lwc.lwcs[id]->refs++;
		}
		if (r < 0)
			return r;
	}
	return 0;
}


/*
 * Descriptors for the creator itself that the child's table got as copies (from lwc_self, say)
 * hold no more than the one it gets for its creator: whatever the creator holds for itself is
 * not the child's to use against it. Slots the two share on purpose stay as they are (the
 * creator's own entry).
 */
static void creator_copies_restrict(struct lwc *child, struct lwc *parent, int crights, uint32_t caux)
{
	for (unsigned g = 0, used = fdtab_used(child->fds); g < used; g++) {
		int rights, id = fdtab_lwc(child->fds, g, &rights);
		if (id != (int)parent->s.id || fdtab_linked(child->fds, g, parent->fds))
			continue;
		uint32_t old = fdtab_aux(child->fds, g), aux = 0;
		int nr = rights & crights;
		if (nr & VMLWC_FD_RIGHT_OVERLAY) {
			if (old && caux && old != caux)
				nr &= ~VMLWC_FD_RIGHT_OVERLAY; /* two range sets: neither, rather than their union */
			else
				aux = old ? old : caux;
		}
		if (nr != rights || aux != old)
			fdtab_set_lwc(child->fds, g, VMLWC_FD_LWC | nr | id, aux);
	}
}

static uint64_t fork_own(uint64_t va, void *arg)
{
	struct spec_set *ss = arg;
	return lwc_page_pte(ss->child, va);
}

/* The TLS bases ring 3 runs with now (the live ones: ring 3 may have written them itself). */
static void live_tls(struct vcpu *v, uint64_t *fs, uint64_t *gs)
{
	*fs = v->run->s.regs.sregs.fs.base;
	*gs = v->run->s.regs.sregs.gs.base;
}

/* ---- creation contexts ---- */

/*
 * At lwc_create: what a thread that switches into the child without a context of its own
 * starts from. The stack bytes from the creator's stack pointer up (the gate's frame, then
 * lwc_create's, then its callers' up to LWC_CREATE_FRAME, fewer at the stack's end): written
 * back before another thread starts from it, so that the same lwc_create call returns again.
 */
static void create_context_keep(struct vcpu *v, struct lwc *parent, struct lwc *child, const uint64_t *slot)
{
	uint64_t rsp = slot[VMLWC_PRIV_RSP / 8];
	uint32_t len = LWC_CREATE_FRAME;

	memcpy(child->create_slot, slot, sizeof(child->create_slot));
	child->create_mask = parent->sigmasks[v->index];
	if (ua_copy_in(parent, child->create_frame, rsp, len) < 0) {
		len = (uint32_t)(PAGE_SIZE - (rsp & (PAGE_SIZE - 1))); /* the stack's last page */
		if (ua_copy_in(parent, child->create_frame, rsp, len) < 0)
			len = 0;
	}
	child->create_len = len;
	child->create_users = 1UL << v->index;
}

/*
 * A thread with no context in t starts from its creation context: the creation slot copied to
 * its own, after the creation frame is written back if any thread has entered t since it was
 * made. Two threads cannot run on one stack: while another thread holds a context that began
 * there (it entered from the creation context and has neither discarded it nor exited), EBUSY;
 * but if that is the creating thread and nobody has entered t yet, its untouched context moves
 * to this thread. Threads made inside t run on their own stacks and never block this.
 * 0, or -errno.
 */
static long create_context_take(struct vcpu *v, struct lwc *t)
{
	uint64_t rsp = t->create_slot[VMLWC_PRIV_RSP / 8], bit = 1UL << v->index, running = 0;
	uint64_t others = t->create_users & ~bit, entered;

	if (!t->create_len) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] switch into lwC %d: this thread has no context there and the lwC has no"
				  " creation context (the root's threads are the process's own): EBUSY", v->index,
				  (int)t->s.id);
		return -EBUSY;
	}
	lwc_current(t); /* every other vCPU stopped and revalidated: each one's lwc is where it is */
	entered = t->priv[VMLWC_PRIV_SWITCHES / 8];
	for (unsigned i = 0; i < g_vm.kvm.nvcpus; i++) {
		struct vcpu *u = g_vm.kvm.vcpus[i];
		if (u != v && !u->park && u->lwc == t)
			running |= 1UL << u->index;
	}
	if (others && !(others & (others - 1)) && !entered && !(running & others)) {
		/* the creating thread never entered: its untouched context is this thread's now */
		t->ctx_mask &= ~others;
		t->create_users &= ~others;
	} else if (others) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] switch into lwC %d: thread(s) %#lx hold contexts that began at its creation"
				  " context, on the same stack: EBUSY", v->index, (int)t->s.id, (unsigned long)others);
		return -EBUSY;
	} else if (entered && ua_copy_out(t, rsp, t->create_frame, t->create_len) < 0) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] switch into lwC %d: its creation stack at %#lx is no longer writable: EFAULT",
				  v->index, (int)t->s.id, (unsigned long)rsp);
		return -EFAULT;
	}
	memcpy(lwc_slot(t, v->index), t->create_slot, VMLWC_PRIV_SLOT_SIZE);
	t->sigmasks[v->index] = t->create_mask;
	t->ctx_mask |= bit;
	t->create_users |= bit;
	lwc_publish(t);
	return 0;
}

static long lwc_create_host(struct vcpu *v, gva_t specs, long nspecs, long flags)
{
	struct lwc *parent = v->lwc, *child;
	struct spec_set ss;
	gpa_t np = GPA_NONE, cr = GPA_NONE;
	long r;

	if (flags & ~(long)LWC_TRAP_SYSCALL)
		return -EINVAL;
	if ((r = specs_read(parent, specs, nspecs, &ss)) < 0)
		return r;
	if (g_vm.pool.hdr->nfree == 0 && g_vm.pool.hdr->bump >= g_vm.pool.hdr->nframes)
		lwc_collect_now(); /* unreachable cycles may hold frames */
	if (g_vm.pool.hdr->nfree == 0 && g_vm.pool.hdr->bump >= g_vm.pool.hdr->nframes)
		return -ENOMEM; /* no frame left for the copies the new lwC will need */
	child = lwc_alloc();
	if (!child)
		return -ENOMEM;
	ss.child = child;
	if (!(child->sigtab = sigtab_for_child(parent)) || !(child->fsctx = fsctx_for_child(parent))) {
		r = -ENOMEM;
		goto fail;
	}
	child->fs_base = parent->fs_base;
	child->gs_base = parent->gs_base;
	/* its credentials first: an lwC without a shadow must never exist, not even for a moment */
	if (parent->cred && spec_shared(&ss, LWC_CRED)) {
		child->cred = parent->cred;
		child->cred->refs++;
	} else if (!(child->cred = cred_new(parent->cred))) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = fds_copy(parent, child, &ss)) < 0)
		goto fail;
	/* its descriptor for its creator: the switch right and what the specs grant, no more */
	int crights;
	uint32_t caux;
	if ((r = rights_for_creator(&ss, &crights, &caux)) < 0 || (r = install_lwc(child, parent, crights, caux)) < 0)
		goto fail;
	creator_copies_restrict(child, parent, crights, caux);
	/* in->src for the creator is this descriptor, not a lower copy of the creator's own */
	child->create_src1 = r + 1;
	child->srcmap[parent->s.id] = r;
	struct pt_fork_ops ops = { .classify = classify, .own = fork_own, .plain = plain, .ref = pool_ref,
				   .parent_tag = parent->s.id + 1, .child_tag = child->s.id + 1 };
	if ((r = pt_fork(parent->root, &np, &cr, &ops, &ss)) < 0)
		goto fail;
	r = install_lwc(parent, child, VMLWC_FD_RIGHTS, 0);
	if (r < 0)
		goto fail;
	/* the child resumes in this very call, on the creator's stack as the gate left it: the
	   creating thread's context there (another thread takes it over if it switches in first) */
	uint64_t *slot = lwc_slot(child, v->index);
	slot[VMLWC_PRIV_RSP / 8] = user_rsp(v);
	live_tls(v, &slot[VMLWC_PRIV_FS / 8], &slot[VMLWC_PRIV_GS / 8]);
	child->ctx_mask = 1UL << v->index;
	create_context_keep(v, parent, child, slot);
	child->limited = parent->limited; /* a limit holds for the lwCs created afterwards */
	/* a trapped lwC's children are trapped too: to their creator if asked, else where it is */
	if (flags & LWC_TRAP_SYSCALL)
		child->trap_to = (int)parent->s.id + 1;
	else
		child->trap_to = parent->trap_to;
	if (child->trap_to)
		g_vm.lwc.lwcs[child->trap_to - 1]->refs++; /* the monitor lives as long as the lwC it watches */
	memcpy(child->allow, parent->allow, sizeof(child->allow));
	/* the creating thread's mask there is its mask in the creator */
	child->sigmasks[v->index] = parent->sigmasks[v->index];
	child->brk_start = parent->brk_start;
	child->brk_cur = parent->brk_cur;
	child->state = VMLWC_LWC_READY;
	lwc_set_root(child, cr);
	/* the creator's private pages are copy-on-write now: it loads its new tree on return */
	v->deferred_tree = parent->root;
	lwc_set_root(parent, np);
	lwc_load_on_return(v, parent);
	g_vm.lwc.creates++;
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

/* The host finishes a switch: t runs on v, its tree loaded on the way back to ring 3. */
static void lwc_enter(struct vcpu *v, struct lwc *t)
{
	v->lwc = t;
	t->on = v;
	if (!(t->ctx_mask & (1UL << v->index))) {
		t->ctx_mask |= 1UL << v->index; /* it saves its context there when it leaves */
		lwc_publish(t);
	}
	lwc_load_on_return(v, t);
}

/* Switches into an lwC's gate code count themselves in its private page (ring 3, no cost). */
uint64_t lwc_switch_count(void)
{
	uint64_t n = g_vm.lwc.switches_slow + g_vm.lwc.switches_dead;

	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwc.lwcs[i])
			n += g_vm.lwc.lwcs[i]->priv[VMLWC_PRIV_SWITCHES / 8];
	return n;
}

/* Without ring-3 access to the TLS bases the host writes the MSRs when two lwCs' differ. */
static long tls_load(struct vcpu *v, uint64_t fs, uint64_t gs)
{
	uint64_t lfs, lgs;

	live_tls(v, &lfs, &lgs);
	if (fs != lfs && vcpu_msr(v, MSR_FS_BASE, &fs, 1) < 0)
		return -EIO;
	if (gs != lgs && vcpu_msr(v, MSR_GS_BASE, &gs, 1) < 0)
		return -EIO;
	/* the synced sregs would carry the old bases back at the next entry */
	v->run->s.regs.sregs.fs.base = fs;
	v->run->s.regs.sregs.gs.base = gs;
	return 0;
}

static size_t xsave_bytes(void)
{
	long n = RAW3(SYS_ioctl, g_vm.kvm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2_);
	return n > (long)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* A trapped lwC's vector state is its own: saved at the trap, given back when it resumes. */
static int xsave_get(struct vcpu *v, struct lwc *l)
{
	if (!l->trapped_xsave && !(l->trapped_xsave = arena_pages(&g_vm.arena, g_vm.lwc.xsave_pages)))
		return -ENOMEM;
	long r = RAW3(SYS_ioctl, v->fd, g_vm.lwc.xsave_pages > 1 ? KVM_GET_XSAVE2_ : KVM_GET_XSAVE, l->trapped_xsave);
	return r < 0 ? (int)r : 0;
}

static int xsave_set(struct vcpu *v, struct lwc *l)
{
	if (!l->trapped_xsave)
		return 0; /* never trapped: its state is in the vCPU */
	long r = RAW3(SYS_ioctl, v->fd, KVM_SET_XSAVE, l->trapped_xsave);
	return r < 0 ? (int)r : 0;
}

static long lwc_switch_host(struct vcpu *v, long to, int discard)
{
	struct lwc *cur = v->lwc, *t;
	struct kvm_regs *regs = &v->run->s.regs.regs;
	int rights, id = fdtab_lwc(cur->fds, to, &rights);
	long ret = VMLWC_LWC_SWITCHED_RET;

	if (id < 0)
		return -EBADF;
	if (!(rights & VMLWC_FD_RIGHT_SWITCH))
		return -EPERM;
	t = g_vm.lwc.lwcs[id];
	if (!t || t == cur)
		return -EINVAL;
	if (t->state != VMLWC_LWC_READY && t->state != VMLWC_LWC_TRAPPED)
		return -EINVAL; /* its context was discarded */
	if (t->state == VMLWC_LWC_TRAPPED && lwc_current(t))
		return -EBUSY;
	if (t->state == VMLWC_LWC_TRAPPED && t->trap_to != (int)cur->s.id + 1)
		return -EPERM; /* the answer to a trapped syscall is its monitor's to give */
	if (t->state == VMLWC_LWC_TRAPPED) {
		/* back from its trapped syscall: its own registers, vector state and TLS bases, and
		   the first argument as the syscall's result */
		if (tls_load(v, t->trapped_fs, t->trapped_gs) < 0 || xsave_set(v, t) < 0)
			return -EIO;
		uint64_t rip = regs->rip, rsp = regs->rsp, rflags = regs->rflags; /* the stub's, if there */
		ret = (long)regs->r8;
		*regs = t->trapped_regs;
		regs->rip = rip;
		regs->rsp = rsp;
		regs->rflags = rflags;
		v->resume_rip = t->trapped_regs.rcx;
		v->resume_rflags = t->trapped_regs.r11;
		v->set_rsp = 1;
		v->new_rsp = t->trapped_regs.rsp;
		t->state = VMLWC_LWC_READY;
		g_vm.lwc.switches_slow++; /* it resumes in its syscall, not in its gate code */
	} else {
		/*
		 * Into its gate code, which takes this thread's stack, TLS bases and a clean vector
		 * state from its slot. A thread with no context there starts from the creation context.
		 */
		uint64_t bit = 1UL << v->index;
		if (!(t->ctx_mask & bit)) {
			long e = create_context_take(v, t);
			if (e < 0)
				return e;
		}
		if (!g_vm.cpu.fsgsbase_user && tls_load(v, t->fs_base, t->gs_base) < 0)
			return -EIO;
		regs->rdi = cur->s.id;
		v->resume_rip = VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME;
	}
	if (discard) {
		/* this thread's context there is gone; the lwC with it once no thread has one */
		cur->ctx_mask &= ~(1UL << v->index);
		cur->create_users &= ~(1UL << v->index);
		memset(lwc_slot(cur, v->index), 0, VMLWC_PRIV_SLOT_SIZE);
		if (!cur->ctx_mask)
			cur->state = VMLWC_LWC_GONE;
		lwc_publish(cur);
	}
	lwc_enter(v, t);
	return ret; /* the lwC port puts it in rax */
}

static long lwc_self_host(struct vcpu *v)
{
	struct lwc *l = v->lwc;

	if (l->srcmap[l->s.id] >= 0)
		return l->srcmap[l->s.id];
	return install_lwc(l, l, VMLWC_FD_RIGHTS, 0);
}

static long lwc_close_host(struct vcpu *v, long d)
{
	if (fdtab_lwc(v->lwc->fds, d, NULL) < 0)
		return -EBADF;
	return fdtab_close(v->lwc->fds, d);
}

/* lwc_restrict: the descriptor keeps what it had and the specs name; never gains a right. */
static long lwc_restrict_host(struct vcpu *v, long d, gva_t specs, long nspecs)
{
	struct spec_set ss;
	int rights, nrights, id = fdtab_lwc(v->lwc->fds, d, &rights);
	uint32_t aux;
	long r;

	if (id < 0)
		return -EBADF;
	if ((r = specs_read(v->lwc, specs, nspecs, &ss)) < 0)
		return r;
	if ((r = rights_restrict(rights, fdtab_aux(v->lwc->fds, d), &ss, &nrights, &aux)) < 0)
		return r;
	if ((r = fdtab_set_lwc(v->lwc->fds, d, VMLWC_FD_LWC | nrights | id, aux)) < 0)
		rights_aux_unused(aux);
	return r;
}

/*
 * lwc_overlay: map ranges of another lwC (held with the overlay right) into the caller. The
 * descriptor and its rights are checked here; overlay.c applies the specs.
 */
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
	src = g_vm.lwc.lwcs[id];
	if (!src || src == l)
		return -EINVAL;
	if ((r = specs_read(l, specs, nspecs, &ss)) < 0)
		return r;
	/* a descriptor restricted to ranges may overlay those and nothing else */
	if ((r = rights_may_overlay(rights, fdtab_aux(l->fds, from), &ss)) < 0)
		return r;
	src->refs++; /* the ranges may replace the very descriptor it came through */
	r = overlay_apply(l, src, &ss);
	lwc_unref(src);
	return r;
}

/*
 * LWC_TRAP_SYSCALL: the child's syscall becomes a switch to its creator with {nr, a0..a5}; the
 * child waits, all its registers, vector state and TLS bases kept, until someone switches to
 * it with {result}.
 */
/*
 * The trap itself: nr and a[] go to the monitor; the child resumes at rip with rflags (through
 * rcx and r11 of its saved registers, as after `syscall`) when someone switches to it with a
 * result. -EPERM when nobody can be asked.
 */
static int trap_to_monitor(struct vcpu *v, uint64_t nr, const uint64_t a[6], uint64_t rip, uint64_t rflags)
{
	struct lwc *child = v->lwc, *mon = g_vm.lwc.lwcs[child->trap_to - 1];
	struct kvm_regs *r = &v->run->s.regs.regs;

	if (child->state == VMLWC_LWC_TRAPPED)
		return -EBUSY; /* another of its threads waits on the monitor: one trapped thread at a time */
	if (!mon || mon->state != VMLWC_LWC_READY || !(mon->ctx_mask & (1UL << v->index)) ||
	    (!g_vm.cpu.fsgsbase_user && tls_load(v, mon->fs_base, mon->gs_base) < 0) || xsave_get(v, child) < 0)
		return -EPERM;
	/* a descendant the monitor holds no descriptor for (its creator's child): one to answer with */
	if (mon->srcmap[child->s.id] < 0 &&
	    install_lwc(mon, child, VMLWC_FD_RIGHT_SWITCH | rights_syscall(LWC_MEM | LWC_FILES | LWC_CRED), 0) < 0)
		return -EPERM;
	child->trapped_regs = *r;
	child->trapped_regs.rsp = user_rsp(v);
	child->trapped_regs.rcx = rip;
	child->trapped_regs.r11 = rflags;
	live_tls(v, &child->trapped_fs, &child->trapped_gs);
	child->state = VMLWC_LWC_TRAPPED;
	lwc_publish(child);
	r->rax = (uint64_t)VMLWC_LWC_SWITCHED_RET;
	r->rdi = child->s.id;
	r->rbp = 7;
	r->r8 = nr;
	r->r9 = a[0];
	r->r10 = a[1];
	r->r12 = a[2];
	r->r13 = a[3];
	r->r14 = a[4];
	r->r15 = a[5];
	r->rbx = 0;
	r->rcx = (uint64_t)v->index; /* the monitor's gate resumes this thread's slot */
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	lwc_enter(v, mon);
	v->set_rsp = 1;
	v->new_rsp = lwc_slot(mon, v->index)[VMLWC_PRIV_RSP / 8]; /* its gate code takes it anyway */
	return 0;
}

/* A trapped lwC's syscall (any path into the host that runs one): a switch to its monitor. */
int lwc_trap_syscall(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	uint64_t a[6] = { r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9 };

	if (trap_to_monitor(v, r->rax, a, r->rcx, r->r11) < 0) {
		r->rax = (uint64_t)-EPERM; /* nobody to ask: the syscall fails */
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		frame_return_to_user(v, r->rcx, r->r11);
		return 0;
	}
	frame_return_to_user(v, VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME, 0x202);
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
	struct lwc *l = v->lwc, *t, *use;
	int rights, id = fdtab_lwc(l->fds, d, &rights);
	long a[6] = { (long)r->r8, (long)r->r9, (long)r->r10, (long)r->r12, (long)r->r13, (long)r->r14 };
	long ret;

	if (l->trap_to) {
		/* a trapped lwC runs no syscall its monitor does not see, by this path either: the
		   monitor gets {nr, a0..a5} as for any syscall of it, and answers with the result */
		uint64_t ua[6];
		for (int i = 0; i < 6; i++)
			ua[i] = (uint64_t)a[i];
		return trap_to_monitor(v, (uint64_t)nr, ua, v->call_rip, v->call_rflags) < 0 ? -EPERM
											       : VMLWC_LWC_TRAPPED_CALL;
	}
	if (id < 0)
		return -EBADF;
	if (mask & ~(unsigned long)(LWC_MEM | LWC_FILES | LWC_CRED))
		return -EINVAL;
	/* each resource borrowed needs its right: LWC_MEM, LWC_FILES and LWC_CRED separately */
	if ((rights_syscall((unsigned)mask) & ~(unsigned)rights) != 0)
		return -EPERM;
	t = g_vm.lwc.lwcs[id];
	if (!t)
		return -EBADF;
	/* the caller's own limit holds whatever context it borrows, and the target's too */
	if (!lwc_allows(l, nr) || !lwc_allows(t, nr))
		return -EPERM;
	use = (mask & LWC_MEM) ? t : l;
	/* the credentials of the lwC whose context runs it: the target's only with LWC_CRED */
	struct cred *saved_cred = use->cred;
	use->cred = (mask & LWC_CRED) ? t->cred : l->cred;
	ret = sys_dispatch_in(v, use, (mask & LWC_FILES) ? t->fds : l->fds, nr, a);
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

/* An lwC call, through the stub's port or the doorbell: dispatch, result in rax, back to ring 3. */
static int lwc_call(struct vcpu *v, uint64_t call, uint64_t rip, uint64_t rflags)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	uint64_t t0 = g_vm.cfg.trace ? trace_now_ns() : 0;
	long ret;

	v->resume_rip = 0;
	v->call_rip = rip;
	v->call_rflags = rflags;
	switch (call) {
	case VMLWC_LWC_CREATE:
		ret = lwc_create_host(v, r->rdi, (long)r->rsi, (long)r->rdx);
		break;
	case VMLWC_LWC_SWITCH:
	case VMLWC_LWC_SWITCH_DISCARD:
		ret = lwc_switch_host(v, (long)r->rdi, call == VMLWC_LWC_SWITCH_DISCARD);
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
	case VMLWC_LWC_SLOT:
		ret = v->index;
		break;
	default:
		if (g_vm.cfg.trace)
			trace_msg("lwC call %lu not supported: ENOSYS", (unsigned long)call);
		ret = -ENOSYS;
		break;
	}
	if (g_vm.cfg.trace)
		trace_msg("[vcpu %d] lwC call %lu(%lx, %lx, %lx) = %ld <%lu us>", v->index, (unsigned long)call,
			  (unsigned long)r->rdi, (unsigned long)r->rsi, (unsigned long)r->rdx, ret,
			  (unsigned long)((trace_now_ns() - t0) / 1000));
	if (ret == VMLWC_LWC_TRAPPED_CALL) {
		/* the caller waits in its monitor's hands; the monitor runs from its gate code */
		r->rcx = (uint64_t)v->index;
		v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		frame_return_to_user(v, VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME, 0x202);
		return 0;
	}
	r->rax = (uint64_t)ret;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	if (v->resume_rip) {
		rip = v->resume_rip;
		if (v->resume_rflags)
			rflags = v->resume_rflags;
	}
	if (rip == VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME)
		r->rcx = (uint64_t)v->index; /* the gate resumes this thread's slot */
	v->resume_rip = v->resume_rflags = 0;
	frame_return_to_user(v, rip, rflags);
	return 0;
}

/* The stub's lwC port: a switch it did not finish, or any other call through the gate's int3. */
static int hc_lwc(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct vmlwc_iret_frame *f = frame_user(v);

	if (r->rsp != v->area_kva + VMLWC_FRAME_ON_KSTACK)
		die_panic(v, "lwC port used outside the gate path");
	if (f->rip == VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME)
		return lwc_call(v, VMLWC_LWC_SWITCH, f->rip, f->rflags);
	if (f->rip == VMLWC_GATE_VA + VMLWC_GATE_CALL_INT3 + 1)
		return lwc_call(v, r->rax, f->rip, f->rflags);
	die_panic(v, "lwC port used outside the gate path");
}

int lwc_call_doorbell(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;

	return lwc_call(v, r->rax, r->rip, r->rflags);
}

/* arch_prctl: an lwC's TLS bases are its own, and the switch tables know when the host must write them. */
static long sys_arch_prctl(struct sys_call *c)
{
	uint64_t val = (uint64_t)c->a[1];
	long r;

	switch (c->a[0]) {
	case ARCH_SET_FS:
	case ARCH_SET_GS:
		if (val >= USER_TOP)
			return -EPERM; /* as Linux for a non-user base */
		r = vcpu_msr(c->v, c->a[0] == ARCH_SET_FS ? MSR_FS_BASE : MSR_GS_BASE, &val, 1);
		if (r < 0)
			return r;
		if (c->a[0] == ARCH_SET_FS)
			c->l->fs_base = val;
		else
			c->l->gs_base = val;
		/* the sync sregs carry the old base back at the next entry: the new one there too */
		if (c->a[0] == ARCH_SET_FS)
			c->v->run->s.regs.sregs.fs.base = val;
		else
			c->v->run->s.regs.sregs.gs.base = val;
		lwc_tls_changed(c->l); /* fast switches may now need the host to write the MSR */
		return 0;
	case ARCH_GET_FS:
	case ARCH_GET_GS:
		r = vcpu_msr(c->v, c->a[0] == ARCH_GET_FS ? MSR_FS_BASE : MSR_GS_BASE, &val, 0);
		if (r < 0)
			return r;
		return ua_copy_out(c->l, (gva_t)c->a[1], &val, sizeof(val)) < 0 ? -EFAULT : 0;
	default:
		return -EINVAL;
	}
}

/* The TLS bases are lwC state: arch_prctl is this layer's, registered into sys/'s table. */
static const struct sys_desc arch_prctl_desc = { .name = "arch_prctl", .fn = sys_arch_prctl };

void lwc_init(void)
{
	sys_register(__NR_arch_prctl, &arch_prctl_desc);
	hypercall_register(VMLWC_PORT_LWC, hc_lwc);
	fdtab_set_hooks(slot_changed, lwc_dropped, rights_aux_ref);
	g_vm.lwc.xsave_pages = PAGE_ALIGN_UP(xsave_bytes()) / PAGE_SIZE;
}
