/* Guest exceptions: lazy fill of host mappings, native signals for ring 3, dump and abort for the stub. */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>

#include "base.h"
#include "cow.h"
#include "die.h"
#include "fault.h"
#include "sigdeliver.h"
#include "init.h"
#include "lwc_host.h"
#include "memrange.h"
#include "pgtable.h"
#include "procmaps.h"
#include "run.h"
#include "trace.h"
#include "vcpu.h"
#include "view.h"
#include "state.h"

static const char *const vec_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP",
	"#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

/* The signal native code would get for a ring-3 exception, 0 for "should not happen". */
static int vec_signal(uint64_t vec)
{
	switch (vec) {
	case 0: case 16: case 19: return SIGFPE;
	case 1: case 3: return SIGTRAP;
	case 4: case 5: case 13: case 14: return SIGSEGV;
	case 6: return SIGILL;
	case 12: case 17: return SIGBUS;
	default: return 0;
	}
}

struct fill_ctx {
	uint64_t addr;
	int found, prot, shared;
	uint64_t start, end;
	int special; /* [vsyscall] and other mappings the guest cannot use */
};

static int fill_find(const struct procmaps_entry *e, void *arg)
{
	struct fill_ctx *c = arg;

	if (c->addr < e->start || c->addr >= e->end)
		return 0;
	c->found = 1;
	c->prot = e->prot;
	c->shared = e->shared;
	c->start = e->start;
	c->end = e->end > USER_TOP ? USER_TOP : e->end;
	return 1;
}

/* The stretches of [a, a+n) the root's view has nothing for: what it knows stays as it is. */
static long fill_range(uint64_t a, uint64_t n, void *arg)
{
	struct root_build_ctx *b = arg;
	long r = 0;

	for (uint64_t end = a + n, next; a < end && r == 0; a = next) {
		uint64_t e = pt_span(b->t.root, a, &next);
		if (next > end)
			next = end;
		if (!e)
			r = pt_txn_set(&b->t, a, next - a, a, b->flags);
	}
	return r;
}

/*
 * A not-present fault on a host mapping the lwC does not know (made natively by another
 * thread, or by the stack): mirror the whole mapping and retry. 0 when filled.
 */
static int fault_fill(struct vcpu *v, uint64_t addr, uint64_t err)
{
	struct fill_ctx c = { .addr = addr };
	uint64_t flags;

	if (err & 1) /* a protection fault on a present page: the mapping says no */
		return -1;
	/* once lwCs exist, a page missing from one may be missing on purpose (munmap, LWC_UNMAP) */
	if (g_vm.lwc.nlwcs > 1)
		return -1;
	if (addr >= USER_TOP || procmaps_each(fill_find, &c) < 0 || !c.found)
		return -1;
	if (mem_is_protected(PAGE_ALIGN_DOWN(addr), PAGE_SIZE))
		return -1;
	flags = pt_prot_flags(c.prot) | (c.shared ? VMLWC_PTE_SHARED : 0);
	if (!flags || ((err & 2) && !(flags & PTE_W)) || ((err & 0x10) && (flags & PTE_NX)))
		return -1;
	if (pt_lookup(v->lwc->root, addr) & PTE_P)
		return 0; /* another path filled it already */
	if (pt_leaf(v->lwc->root, addr) & VMLWC_PTE_PROTNONE)
		return -1; /* the view knows it: PROT_NONE (the host may allow more: see host_protect) */
	struct root_build_ctx b = { .flags = flags };
	pt_txn_begin(&b.t, v->lwc->root);
	if (mem_each_unprotected(c.start, c.end - c.start, fill_range, &b) < 0)
		return -1;
	v->lwc->on = v;
	view_commit(&b.t, v->lwc);
	return 0;
}

/*
 * A not-present fault below a lazy entry: the tables it stands for are built, and a write to a
 * copy-on-write page copied, in this one exit. 0 when done, -1 when not lazy there (or not
 * present even so), 1 when the tables or the copy cannot be made (no frame, no memslot).
 */
static int fault_lazy(struct vcpu *v, uint64_t addr, uint64_t err)
{
	struct lwc *l = v->lwc;
	uint64_t next;

	if ((err & 1) || addr >= USER_TOP || !pt_is_lazy(pt_span(l->root, addr, &next)))
		return -1;
	if (pt_span(l->root, addr, &next) & VMLWC_PTE_PROTNONE)
		return -1;
	l->on = v;
	if (view_materialize(l, addr) <= 0)
		return 1;
	if ((err & 2) && (pt_leaf(l->root, addr) & VMLWC_PTE_COW) && cow_break(l, addr) < 0)
		return 1;
	return 0;
}

/*
 * The #PF port's return goes through the stub's single-store path: it writes the new entry
 * into the current tree itself (a guest write the hypervisor sees) and invalidates the page.
 * rcx, rdx and rsi carry the store; their ring-3 values wait below the fault frame.
 */
static void return_through_store(struct vcpu *v, gpa_t table, uint64_t va, uint64_t entry)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	uint64_t *sp = (uint64_t *)(v->area + (r->rsp - v->area_kva));

	sp[-1] = r->rcx;
	sp[-2] = r->rdx;
	sp[-3] = r->rsi;
	r->rsp -= 24;
	r->rcx = VMLWC_PHYSMAP_KVA + table + vmlwc_pt_index(va, 0) * 8;
	r->rdx = entry;
	r->rsi = PAGE_ALIGN_DOWN(va);
	r->rip = g_vm.stub.pte_store;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
}

/*
 * A fault another vCPU's exit already resolved (it made the page writable or present while
 * this one waited for the lock; this vCPU was revalidated onto the new tree): retried, at
 * most four times in a row for the same instruction and address (the same fault again within
 * eight exits), then it is a real fault. The same instruction may race again much later: a
 * loop's store that meets another thread's copy-on-write once per round.
 */
static int fault_spurious(struct vcpu *v, uint64_t cr2, uint64_t err, uint64_t rip)
{
	uint64_t e;

	if (cr2 >= USER_TOP)
		return 0;
	e = pt_lookup(v->lwc->root, cr2);
	if ((e & (PTE_P | PTE_U)) != (PTE_P | PTE_U) || ((err & 2) && (!(e & PTE_W) || pt_path_shared(v->lwc->root, cr2))) ||
	    ((err & 0x10) && (e & PTE_NX)))
		return 0;
	/* in a row: the same fault again within a few exits (kicks in between count) */
	if (v->retry_rip == rip && v->retry_addr == cr2 && v->nexits - v->retry_exit <= 8) {
		if (++v->nretries > 4)
			return 0;
	} else {
		v->retry_rip = rip;
		v->retry_addr = cr2;
		v->nretries = 1;
	}
	v->retry_exit = v->nexits;
	return 1;
}

/* An exception as a port reported it. */
struct fault {
	uint64_t vector, error, cr2;
	struct vmlwc_iret_frame *f;
	int pf_port; /* the lean #PF port (its return may go through the store path) */
};

static const char *vec_name(uint64_t vec)
{
	return vec < 32 && vec_names[vec] ? vec_names[vec] : "?";
}

static int fault_common(struct vcpu *v, struct fault *x)
{
	uint64_t cr2 = x->cr2;
	int sig;

	if ((x->f->cs & 3) != 3 || x->vector == 8 || x->vector == 18) {
		trace_msg("stub fault: %s (vector %lu) error %lx rip %lx cr2 %lx rsp %lx", vec_name(x->vector),
			  x->vector, x->error, x->f->rip, cr2, x->f->rsp);
		die_panic(v, "exception in ring 0");
	}
	if (x->vector == 14) {
		int lz = fault_lazy(v, cr2, x->error);
		v->npagefaults++;
		if (lz > 0)
			die_signal(v, SIGBUS); /* as for memory the host cannot back */
		if (lz == 0 || fault_fill(v, cr2, x->error) == 0) {
			/* after the port the iret frame is the usual ring-3 one */
			frame_return_to_user(v, x->f->rip, x->f->rflags);
			return 0;
		}
	}
	sig = vec_signal(x->vector);
	/*
	 * The single-store return is for one vCPU only: the store would land after this exit
	 * returned, so a change another vCPU makes in between (a copied path, a retired table, an
	 * lwc_create) would never see it, and a kick could find it pending on a freed table.
	 * With several vCPUs the host copies in a transaction below (a new tree, every vCPU synced).
	 */
	if (x->vector == 14 && (x->error & 7) == 7 && x->pf_port && cr2 < USER_TOP &&
	    !__atomic_load_n(&g_vm.pool.hdr->multi, __ATOMIC_ACQUIRE) &&
	    (pt_leaf(v->lwc->root, cr2) & VMLWC_PTE_COW)) {
		/* ring 0 is emulated: the host copies, the stub only stores the entry */
		gpa_t table;
		uint64_t entry;
		int r = cow_prepare(v->lwc, cr2, &table, &entry);
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] copy-on-write at %lx (rip %lx): %s", v->index, cr2, x->f->rip,
				  r > 0 ? "in place" : r == 0 ? "path shared" : "failed");
		if (r > 0) {
			g_vm.lwc.host_cow_faults++;
			return_through_store(v, table, cr2, entry);
			return 0;
		}
		if (r < 0)
			sig = SIGBUS;
	}
	if (x->vector == 14 && (x->error & 7) == 7 && cr2 < USER_TOP && pt_path_shared(v->lwc->root, cr2)) {
		/* a table on the way is shared: the host copies the path (where the stub does not, or
		   found no free frame), and the page too when it is copy-on-write, in this one exit */
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] write below a shared table at %lx (rip %lx)", v->index, cr2, x->f->rip);
		if (view_own_path(v->lwc, cr2) == 0 &&
		    (!(pt_leaf(v->lwc->root, cr2) & VMLWC_PTE_COW) || cow_break(v->lwc, cr2) == 0)) {
			if (pt_leaf(v->lwc->root, cr2) & PTE_W)
				g_vm.lwc.host_cow_faults++;
			frame_return_to_user(v, x->f->rip, x->f->rflags);
			return 0;
		}
		sig = SIGBUS;
	} else if (x->vector == 14 && (x->error & 7) == 7 && cr2 < USER_TOP &&
		   (pt_leaf(v->lwc->root, cr2) & VMLWC_PTE_COW)) {
		/* copy-on-write the stub did not finish (no free frame), or one under a shared table */
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] copy-on-write at %lx (rip %lx) on the host's copy of the path", v->index,
				  cr2, x->f->rip);
		if (cow_break(v->lwc, cr2) == 0) {
			g_vm.lwc.host_cow_faults++;
			frame_return_to_user(v, x->f->rip, x->f->rflags);
			return 0;
		}
		sig = SIGBUS;
	}
	if (x->vector == 14 && sig == SIGSEGV && fault_spurious(v, cr2, x->error, x->f->rip)) {
		frame_return_to_user(v, x->f->rip, x->f->rflags);
		return 0;
	}
	if (g_vm.cfg.trace)
		trace_msg("guest %s at rip %lx cr2 %lx error %lx -> signal %d", vec_name(x->vector), x->f->rip, cr2,
			  x->error, sig);
	if (!sig)
		die_panic(v, "unexpected exception from ring 3");
	/* to the lwC's handler as Linux's force_sig, with its si_code and si_addr; else death */
	int code = 0;
	uint64_t addr = 0;
	switch (x->vector) {
	case 14: code = (x->error & 1) ? 2 /* SEGV_ACCERR */ : 1 /* SEGV_MAPERR */; addr = cr2; break;
	case 6: code = 2 /* ILL_ILLOPN */; addr = x->f->rip; break;
	case 0: code = 1 /* FPE_INTDIV */; addr = x->f->rip; break;
	case 16: case 19: code = 0; addr = x->f->rip; break;
	case 17: code = 1 /* BUS_ADRALN */; break;
	default: code = 0x80; /* SI_KERNEL: #GP, int3, #SS */
	}
	if (sig == SIGBUS && x->vector == 14)
		code = 2 /* BUS_ADRERR */;
	if (sig_fault(v, sig, code, addr, x->vector, x->error, x->vector == 14 ? cr2 : 0) == 0) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] %s at rip %lx: signal %d to lwC %d's handler", v->index, vec_name(x->vector),
				  x->f->rip, sig, (int)v->lwc->s.id);
		frame_return_to_user(v, x->f->rip, x->f->rflags);
		return 0;
	}
	if (g_vm.cfg.trace)
		trace_msg("[vcpu %d] fault frame: rip %lx rsp %lx rflags %lx", v->index, x->f->rip, x->f->rsp, x->f->rflags);
	die_signal(v, sig);
}

/* The fault port: every exception vector but the lean #PF; stack: rax, vector, error, frame. */
int fault_handle(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	uint64_t off = r->rsp - v->area_kva;
	struct vmlwc_fault_stack *fs;
	struct fault x;

	if (r->rsp < v->area_kva || off > VMLWC_VCPU_AREA_SIZE - sizeof(*fs))
		die_panic(v, "fault port with the stack outside the vCPU area");
	fs = (void *)(v->area + off);
	x = (struct fault){ .vector = fs->vector, .error = fs->error, .cr2 = r->rax, .f = &fs->f };
	return fault_common(v, &x);
}

/* The lean #PF port (ring 0 emulated): stack: vector, error, frame; CR2 from the sregs. */
int fault_handle_pf(struct vcpu *v)
{
	struct kvm_regs *r = &v->run->s.regs.regs;
	uint64_t off = r->rsp - v->area_kva;
	struct vmlwc_pf_stack *ps;
	struct fault x;

	if (r->rsp < v->area_kva || off > VMLWC_VCPU_AREA_SIZE - sizeof(*ps))
		die_panic(v, "#PF port with the stack outside the vCPU area");
	ps = (void *)(v->area + off);
	if ((ps->f.cs & 3) == 3 && r->rsp != v->area_kva + VMLWC_VCPU_KSTACK_TOP - sizeof(*ps))
		die_panic(v, "#PF port from ring 3 with the stack elsewhere than the top of the kernel stack");
	x = (struct fault){ .vector = 14, .error = ps->error, .cr2 = v->run->s.regs.sregs.cr2, .f = &ps->f,
			    .pf_port = 1 };
	return fault_common(v, &x);
}
