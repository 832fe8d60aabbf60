/* Guest threads: clone for threads, thread exit, set_tid_address; each a host thread with its own vCPU, pooled. */
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ucontext.h>
#include <time.h>

#include "base.h"
#include "arena.h"
#include "cpu.h"
#include "lwc_host.h"
#include "pgtable.h"
#include "rawsys.h"
#include "run.h"
#include "sysdesc.h"
#include "thread.h"
#include "trace.h"
#include "uaccess.h"
#include "vcpu.h"
#include "view.h"
#include "vmlock.h"
#include "state.h"
#include "sys/sys.h"

/* What glibc's pthread_create asks for (with SETTLS, PARENT_SETTID, CHILD_CLEARTID). */
#define KVM_GET_XSAVE2_ _IOR(KVMIO, 0xcf, struct kvm_xsave)
#define THREAD_SET (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)
#define THREAD_OPT (CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_DETACHED)
/* The host thread of a guest thread: the same process, files, fs and signal handlers. */
#define HOST_THREAD (THREAD_SET | CLONE_SETTLS | CLONE_PARENT_SETTID)

#define USER_RFLAGS 0x250dd5UL

/*
 * A host thread's own TLS block: the host side never uses TLS at run time (raw syscalls only),
 * but a host thread must not share a thread pointer with a guest thread, whose TLS is guest
 * memory. Two pages, the thread pointer between them pointing at itself (%fs:0), as a TCB.
 */
#define HOST_TLS_PAGES 2

static void host_thread_main(void *arg)
{
	struct vcpu *v = arg;

	run_loop(v); /* its registers are set: it enters the guest at the clone's return */
}

/* A vCPU for a new guest thread: from the pool, else new. NULL with *err. */
static struct vcpu *vcpu_take(long *err, int *fresh)
{
	const char *what = "";
	struct vcpu *v;

	if (g_vm.thread.npool) {
		*fresh = 0;
		return g_vm.thread.pool[--g_vm.thread.npool];
	}
	*fresh = 1;
	if (g_vm.thread.nspare)
		return g_vm.thread.spare[--g_vm.thread.nspare];
	v = vcpu_new(&g_vm, err, &what);
	if (!v) {
		if (g_vm.cfg.trace)
			trace_msg("clone: a vCPU for the new thread: %s: %s", what, *err == -EAGAIN ? "EAGAIN" : "failed");
		if (*err != -EAGAIN)
			*err = -ENOMEM;
		return NULL;
	}
	/* before it first runs: the only vCPU that can be in the guest now is none (a clone's caller
	   has exited; adoption happens before vCPU 0 enters), so no stub is mid-way through an
	   in-place copy-on-write when the stub starts leaving every fault to the locked host */
	__atomic_store_n(&g_vm.pool.hdr->multi, 1, __ATOMIC_RELEASE);
	v->bounce_size = 1UL << 20;
	v->bounce = arena_pages(&g_vm.arena, v->bounce_size / PAGE_SIZE);
	v->tls = arena_pages(&g_vm.arena, HOST_TLS_PAGES);
	if (!v->bounce || !v->tls || sys_vcpu_init(v) < 0 ||
	    (*err = cpu_setup_vcpu_raw(&g_vm, v, lwc_cr3(g_vm.lwc.root_lwc), 0, 0, &what)) < 0) {
		/* its arena pages stay with it: the next clone tries it again */
		if (g_vm.cfg.trace)
			trace_msg("clone: setting up vCPU %d: %s", v->index, v->bounce && v->tls ? what : "arena exhausted");
		g_vm.thread.spare[g_vm.thread.nspare++] = v;
		*err = -ENOMEM;
		return NULL;
	}
	uint64_t *tp = (uint64_t *)((char *)v->tls + PAGE_SIZE);
	tp[0] = tp[2] = (uint64_t)tp; /* tcb->tcb, tcb->self */
	if (RAW3(SYS_ioctl, v->fd, KVM_GET_SREGS, &v->run->s.regs.sregs) < 0) {
		g_vm.thread.spare[g_vm.thread.nspare++] = v;
		*err = -ENOMEM;
		return NULL;
	}
	return v;
}

/*
 * The thread part of clone and clone3: a new guest thread in the caller's current lwC, on its
 * own vCPU and host thread, at the syscall's return with rax = 0, its stack and TLS as asked.
 */
static long thread_clone(struct sys_call *c, uint64_t flags, uint64_t newsp, gva_t ptid, gva_t ctid, uint64_t tls)
{
	struct vcpu *v = c->v, *n;
	struct lwc *l = c->l;
	struct kvm_regs *pr = &v->run->s.regs.regs;
	long err = 0;
	int fresh, tid = 0;

	if (!(flags & CLONE_VM)) {
		if (g_vm.cfg.trace)
			trace_msg("%s without CLONE_VM (a new process): not supported yet: ENOSYS", c->d->name);
		return -ENOSYS;
	}
	if ((flags & THREAD_SET) != THREAD_SET || (flags & ~(uint64_t)(THREAD_SET | THREAD_OPT))) {
		if (g_vm.cfg.trace)
			trace_msg("%s flags %#lx: only threads as pthread_create makes them (%#x, with SETTLS, "
				  "PARENT_SETTID, CHILD_CLEARTID, CHILD_SETTID) run in the guest: EINVAL",
				  c->d->name, (unsigned long)flags, THREAD_SET);
		return -EINVAL;
	}
	if ((flags & CLONE_SETTLS) && tls >= USER_TOP)
		return -EPERM; /* as arch_prctl for a base outside user space */
	if ((flags & CLONE_PARENT_SETTID) && ua_check(l, ptid, sizeof(int), UA_WRITE) < 0)
		return -EFAULT;
	if ((flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) && ua_check(l, ctid, sizeof(int), UA_WRITE) < 0)
		return -EFAULT;
	n = vcpu_take(&err, &fresh);
	if (!n)
		return err;
	/* as Linux: the child's vector state is a copy of its parent's, so that what a pooled
	   vCPU's last thread (maybe in another lwC) left in its registers never reaches it */
	if (RAW3(SYS_ioctl, v->fd, g_vm.lwc.xsave_pages > 1 ? KVM_GET_XSAVE2_ : KVM_GET_XSAVE, n->bounce) < 0 ||
	    RAW3(SYS_ioctl, n->fd, KVM_SET_XSAVE, n->bounce) < 0) {
		if (fresh)
			g_vm.thread.spare[g_vm.thread.nspare++] = n;
		else
			g_vm.thread.pool[g_vm.thread.npool++] = n;
		if (g_vm.cfg.trace)
			trace_msg("clone: copying the parent's vector state (KVM_GET_XSAVE/KVM_SET_XSAVE) failed: ENOMEM");
		return -ENOMEM;
	}
	/* the parent's registers at the syscall; the child returns from it with 0 */
	struct kvm_regs *r = &n->run->s.regs.regs;
	*r = *pr;
	r->rax = 0;
	r->rip = pr->rcx;
	r->rflags = (pr->r11 & USER_RFLAGS) | 0x202;
	r->rsp = newsp ? newsp : user_rsp(v);
	struct kvm_sregs *s = &n->run->s.regs.sregs;
	cpu_thread_segments(s, (flags & CLONE_SETTLS) ? tls : v->run->s.regs.sregs.fs.base,
			    v->run->s.regs.sregs.gs.base);
	s->cr3 = lwc_cr3(l);
	n->run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	n->run->immediate_exit = 0;
	n->lwc = l;
	n->pending_cr3 = 0;
	n->set_rsp = 0;
	n->resume_rip = n->resume_rflags = 0;
	n->via_doorbell = 0;
	n->deferred_tree = 0;
	n->cred_now = v->cred_now; /* the new host thread runs under the ids its parent runs under */
	/* as Linux for a CLONE_VM child: no alternate signal stack (ss_flags SS_DISABLE) */
	int disable = 2;
	memset(n->sig_altstack, 0, sizeof(n->sig_altstack));
	memcpy(n->sig_altstack + 8, &disable, sizeof(disable));
	n->clear_tid = (flags & CLONE_CHILD_CLEARTID) ? ctid : 0;
	n->clear_tid_serial = l->serial;
	n->robust_list = 0;
	l->ctx_mask |= 1UL << n->index;
	l->sigmasks[n->index] = l->sigmasks[v->index]; /* as Linux: the parent's mask */
	n->sig_pending = 0;
	n->sig_sync = 0;
	n->sig_restore_mask = 0;
	n->intr_nr = -1;
	lwc_publish(l);
	if (fresh) {
		long r2 = vmlwc_thread_spawn(HOST_THREAD, (char *)n->host_stack + n->host_stack_size, &tid,
					     (char *)n->tls + PAGE_SIZE, host_thread_main, n);
		if (r2 < 0) {
			l->ctx_mask &= ~(1UL << n->index);
			lwc_publish(l);
			n->lwc = NULL;
			g_vm.thread.spare[g_vm.thread.nspare++] = n;
			if (g_vm.cfg.trace)
				trace_msg("clone: the host thread: error %ld: EAGAIN", r2);
			return -EAGAIN;
		}
		tid = (int)r2;
		n->tid = tid;
		g_vm.thread.created++;
	} else {
		tid = n->tid;
		__atomic_store_n(&n->park, 0, __ATOMIC_RELEASE);
		RAW3(SYS_futex, &n->park, FUTEX_WAKE_PRIVATE, 1);
		g_vm.thread.reused++;
	}
	g_vm.thread.nthreads++;
	/* as Linux: the tid in the parent's memory, and in the child's (the same memory here) */
	if (flags & CLONE_PARENT_SETTID)
		ua_copy_out(l, ptid, &tid, sizeof(tid));
	if (flags & CLONE_CHILD_SETTID)
		ua_copy_out(l, ctid, &tid, sizeof(tid));
	if (g_vm.cfg.trace)
		trace_msg("[vcpu %d] thread %d on vCPU %d (%s), in lwC %d", v->index, tid, n->index,
			  fresh ? "new" : "from the pool", (int)l->s.id);
	return tid;
}

static long sys_clone(struct sys_call *c)
{
	/* x86-64: clone(flags, newsp, parent_tid, child_tid, tls) */
	return thread_clone(c, (uint64_t)c->a[0], (uint64_t)c->a[1], (gva_t)c->a[2], (gva_t)c->a[3], (uint64_t)c->a[4]);
}

static long sys_clone3(struct sys_call *c)
{
	struct clone_args a;
	size_t size = (size_t)c->a[1];

	if (size < 64 || size > PAGE_SIZE) /* CLONE_ARGS_SIZE_VER0 .. a page, as Linux */
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (ua_copy_in(c->l, &a, (gva_t)c->a[0], size < sizeof(a) ? size : sizeof(a)) < 0)
		return -EFAULT;
	/* pidfd is read only with CLONE_PIDFD (glibc fills it anyway), which threads here never have */
	if (a.exit_signal || a.set_tid || a.set_tid_size || (size >= 88 && a.cgroup)) {
		if (g_vm.cfg.trace)
			trace_msg("clone3 with an exit signal, set_tid or cgroup: not for threads: EINVAL");
		return -EINVAL;
	}
	if ((a.stack == 0) != (a.stack_size == 0))
		return -EINVAL;
	return thread_clone(c, a.flags, a.stack ? a.stack + a.stack_size : 0, (gva_t)a.parent_tid,
			    (gva_t)a.child_tid, a.tls);
}

static long sys_set_tid_address(struct sys_call *c)
{
	c->v->clear_tid = (gva_t)c->a[0];
	c->v->clear_tid_serial = c->l->serial;
	return c->v->tid;
}

/* Recorded: the kernel's robust-futex cleanup at thread exit is done by thread_exit. */
static long sys_set_robust_list(struct sys_call *c)
{
	if (c->a[1] != 24) /* sizeof(struct robust_list_head) */
		return -EINVAL;
	c->v->robust_list = (gva_t)c->a[0];
	c->v->robust_serial = c->l->serial;
	return 0;
}

/* The calling thread's own record (pid 0 or its tid); another thread's is not the caller's to read. */
static long sys_get_robust_list(struct sys_call *c)
{
	uint64_t head = c->v->robust_list, len = 24;

	if (c->a[0] != 0 && c->a[0] != c->v->tid)
		return -EPERM;
	if (ua_copy_out(c->l, (gva_t)c->a[1], &head, 8) < 0 || ua_copy_out(c->l, (gva_t)c->a[2], &len, 8) < 0)
		return -EFAULT;
	return 0;
}

/*
 * rseq: registered on the thread's host thread, which is the task the kernel schedules, with
 * the area's host address: the kernel keeps cpu_id there as natively (glibc's sched_getcpu
 * reads it; glibc also refuses to start a thread whose registration fails once the first
 * thread had one). Only an area the lwC maps as the host memory at its own address: a pool
 * frame may be shared copy-on-write with other lwCs or reused by one, and the kernel's writes
 * would land there. Any other area is accepted without the kernel (the registration succeeds
 * for the thread, its cpu_id says RSEQ_CPU_ID_REGISTRATION_FAILED, and readers such as glibc's
 * sched_getcpu fall back to getcpu). Critical sections are never aborted: the kernel sees the
 * host thread's instruction pointer, not the guest's (docs/api/redirection.md).
 */
#define RSEQ_FLAG_UNREGISTER_ 1
#define RSEQ_CPU_ID_REGISTRATION_FAILED_ (-2)

static long sys_rseq(struct sys_call *c)
{
	struct vcpu *v = c->v;
	gva_t area = (gva_t)c->a[0];
	uint32_t len = (uint32_t)c->a[1];
	long r;

	if (c->a[2] & RSEQ_FLAG_UNREGISTER_) {
		if (!v->rseq_gva || area != v->rseq_gva || len != v->rseq_len || (uint32_t)c->a[3] != v->rseq_sig)
			return v->rseq_gva && area == v->rseq_gva && len == v->rseq_len ? -EPERM : -EINVAL;
		r = v->rseq_host ? RAW4(SYS_rseq, v->rseq_host, len, c->a[2], c->a[3]) : 0;
		if (r == 0)
			v->rseq_host = NULL, v->rseq_gva = 0;
		return r;
	}
	if (c->a[2])
		return -EINVAL;
	if (v->rseq_gva)
		return area == v->rseq_gva && len == v->rseq_len ? ((uint32_t)c->a[3] == v->rseq_sig ? -EBUSY : -EPERM)
								 : -EINVAL;
	if (len < 32 || len > PAGE_SIZE || (area & 31))
		return -EINVAL;
	void *h = ua_direct(c->l, area, len, UA_WRITE);
	if (!h)
		return -EFAULT;
	if ((uintptr_t)h != area) {
		/* the lwC's own frame: registered for the guest only, cpu_id says so */
		int32_t failed = RSEQ_CPU_ID_REGISTRATION_FAILED_, zero = 0;
		if (ua_copy_out(c->l, area, &zero, 4) < 0 || ua_copy_out(c->l, area + 4, &failed, 4) < 0)
			return -EFAULT;
		v->rseq_host = NULL;
		r = 0;
	} else {
		r = RAW4(SYS_rseq, h, len, c->a[2], c->a[3]);
		if (r == 0)
			v->rseq_host = h;
	}
	if (r == 0) {
		v->rseq_gva = area;
		v->rseq_len = len;
		v->rseq_sig = (uint32_t)c->a[3];
	}
	return r;
}

/* The thread's rseq registration goes with it (its area may be freed once it is gone). */
static void rseq_release(struct vcpu *v)
{
	if (v->rseq_host)
		RAW4(SYS_rseq, v->rseq_host, v->rseq_len, RSEQ_FLAG_UNREGISTER_, v->rseq_sig);
	v->rseq_host = NULL;
	v->rseq_gva = 0;
}

/* The lwC a thread named memory in (by serial: the id may have been reused since), or NULL. */
static struct lwc *lwc_of_serial(uint64_t serial)
{
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++)
		if (g_vm.lwc.lwcs[i] && g_vm.lwc.lwcs[i]->serial == serial)
			return g_vm.lwc.lwcs[i];
	return NULL;
}

/* FUTEX_WAKE of one waiter on the guest word at va in l (shared key: any waiter's flavour wakes). */
static void futex_wake_guest(struct lwc *l, gva_t va, int n)
{
	void *h = ua_direct(l, va, sizeof(int), UA_WRITE);

	if (h && !((uintptr_t)h & 3))
		RAW3(SYS_futex, h, FUTEX_WAKE, n);
}

#define FUTEX_OWNER_DIED_ 0x40000000u
#define FUTEX_WAITERS_ 0x80000000u
#define FUTEX_TID_MASK_ 0x3fffffffu
#define ROBUST_LIMIT 2048

/* One robust futex of a dying thread: owner-died marked and a waiter woken, as the kernel does. */
static void robust_one(struct lwc *l, gva_t uaddr, int tid)
{
	uint32_t w, nw;

	for (int tries = 0; tries < 16; tries++) {
		if (ua_copy_in(l, &w, uaddr, sizeof(w)) < 0 || (w & FUTEX_TID_MASK_) != (uint32_t)tid)
			return;
		nw = (w & FUTEX_WAITERS_) | FUTEX_OWNER_DIED_;
		uint32_t *h = ua_direct(l, uaddr, sizeof(w), UA_WRITE);
		if (!h || ((uintptr_t)h & 3))
			return;
		if (__atomic_compare_exchange_n(h, &w, nw, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			if (nw & FUTEX_WAITERS_)
				RAW3(SYS_futex, h, FUTEX_WAKE, 1);
			return;
		}
	}
}

/* The dying thread's robust list (struct robust_list_head: list, futex_offset, list_op_pending). */
static void robust_release(struct vcpu *v)
{
	struct lwc *l = v->robust_list ? lwc_of_serial(v->robust_serial) : NULL;
	struct {
		uint64_t next;
		int64_t offset;
		uint64_t pending;
	} head;
	uint64_t e;

	if (!l || ua_copy_in(l, &head, v->robust_list, sizeof(head)) < 0)
		return;
	e = head.next;
	for (int i = 0; i < ROBUST_LIMIT && e && e != v->robust_list; i++) {
		uint64_t next;
		if (ua_copy_in(l, &next, e, sizeof(next)) < 0)
			break;
		if (e != head.pending)
			robust_one(l, e + (uint64_t)head.offset, v->tid);
		e = next;
	}
	if (head.pending)
		robust_one(l, head.pending + (uint64_t)head.offset, v->tid);
}

/*
 * exit of one guest thread: the child tid cleared and its waiter woken (pthread_join), its
 * robust futexes released, its contexts in every lwC gone; the vCPU and host thread wait in the
 * pool. The last guest thread's exit ends the process, as Linux does.
 */
static long sys_exit(struct sys_call *c)
{
	struct vcpu *v = c->v;
	struct lwc *l;

	if (g_vm.thread.nthreads <= 1)
		RAW1(SYS_exit_group, c->a[0]);
	robust_release(v);
	rseq_release(v);
	if (v->clear_tid && (l = lwc_of_serial(v->clear_tid_serial)) != NULL) {
		int zero = 0;
		if (ua_copy_out(l, v->clear_tid, &zero, sizeof(zero)) == 0)
			futex_wake_guest(l, v->clear_tid, 1);
	}
	v->clear_tid = 0;
	v->robust_list = 0;
	lwc_thread_gone(v->index);
	v->lwc = NULL;
	g_vm.thread.nthreads--;
	g_vm.thread.pool[g_vm.thread.npool++] = v;
	__atomic_store_n(&v->park, 1, __ATOMIC_RELEASE);
	if (g_vm.cfg.trace)
		trace_msg("[vcpu %d] thread %d exited (%ld): vCPU pooled", v->index, v->tid, c->a[0]);
	return 0;
}

static const struct sys_desc clone_desc = { .name = "clone", .fn = sys_clone };
static const struct sys_desc clone3_desc = { .name = "clone3", .fn = sys_clone3 };
static const struct sys_desc exit_desc = { .name = "exit", .fn = sys_exit };
static const struct sys_desc set_tid_address_desc = { .name = "set_tid_address", .fn = sys_set_tid_address };
static const struct sys_desc set_robust_list_desc = { .name = "set_robust_list", .fn = sys_set_robust_list };
static const struct sys_desc get_robust_list_desc = { .name = "get_robust_list", .fn = sys_get_robust_list };
static const struct sys_desc rseq_desc = { .name = "rseq", .fn = sys_rseq };

/* ---- threads that existed before vmlwc_init: adopted into the guest ---- */

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/*
 * What the kernel keeps for the calling thread that its guest thread's exit must do instead
 * (its host thread never exits: it waits in the pool): the tid to clear (pthread_join waits on
 * it), the robust list, glibc's rseq area. Run on the thread itself, natively or in the
 * adoption handler.
 */
void thread_take_over_self(struct vcpu *v, uint64_t fs_base)
{
	uint64_t tidaddr = 0, head = 0, len = 0;

	if (RAW5(SYS_prctl, PR_GET_TID_ADDRESS, &tidaddr, 0, 0, 0) == 0)
		v->clear_tid = (gva_t)tidaddr;
	if (RAW3(SYS_get_robust_list, 0, &head, &len) == 0 && len == 24)
		v->robust_list = (gva_t)head;
	v->clear_tid_serial = v->robust_serial = g_vm.lwc.root_lwc->serial;
	/* glibc registers its rseq area at thread start: the same area stays registered */
	if (&__rseq_size && &__rseq_offset && __rseq_size >= 20) {
		v->rseq_gva = fs_base + (uint64_t)__rseq_offset;
		v->rseq_host = (void *)v->rseq_gva; /* the root's memory, at its own address */
		v->rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
		v->rseq_sig = 0x53053053; /* glibc's RSEQ_SIG on x86 */
	}
}

/* The thread pointer and stack of a host thread, from here on: fn(arg) never returns. */
void vmlwc_thread_become(void *stack_top, void *tls, void (*fn)(void *), void *arg);

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/*
 * A native thread, in the adoption signal's handler: it becomes a guest thread in the root lwC
 * at the very point the signal interrupted it (the kernel has already turned an interrupted
 * syscall into its restart or EINTR in the frame), with its registers, TLS bases and vector
 * state, on a vCPU of its own; the thread itself becomes that vCPU's host thread.
 */
static void adopt_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	const greg_t *g = uc->uc_mcontext.gregs;
	long err = 0, tid = RAW0(SYS_gettid);
	uint64_t fs = 0, gs = 0, kick_bit = 1UL << (VMLWC_SIG_KICK - 1);
	struct vcpu *n;
	int fresh;

	(void)sig;
	(void)si;
	if (!__atomic_load_n(&g_vm.thread.adopting, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < __atomic_load_n(&g_vm.kvm.nvcpus, __ATOMIC_ACQUIRE); i++)
		if (g_vm.kvm.vcpus[i]->tid == tid && !g_vm.kvm.vcpus[i]->park)
			return; /* a vCPU's own thread: a kick */
	RAW2(SYS_arch_prctl, ARCH_GET_FS, &fs);
	RAW2(SYS_arch_prctl, ARCH_GET_GS, &gs);
	vm_lock(NULL);
	n = vcpu_take(&err, &fresh);
	if (!n) {
		g_vm.thread.adopt_failed++;
		vm_unlock(NULL);
		RAW3(SYS_futex, &g_vm.thread.adopted, FUTEX_WAKE_PRIVATE, 1);
		return; /* it stays native: vmlwc_init says so */
	}
	struct kvm_regs *r = &n->run->s.regs.regs;
	r->r8 = g[REG_R8], r->r9 = g[REG_R9], r->r10 = g[REG_R10], r->r11 = g[REG_R11];
	r->r12 = g[REG_R12], r->r13 = g[REG_R13], r->r14 = g[REG_R14], r->r15 = g[REG_R15];
	r->rdi = g[REG_RDI], r->rsi = g[REG_RSI], r->rbp = g[REG_RBP], r->rbx = g[REG_RBX];
	r->rdx = g[REG_RDX], r->rax = g[REG_RAX], r->rcx = g[REG_RCX], r->rsp = g[REG_RSP];
	r->rip = g[REG_RIP];
	r->rflags = (g[REG_EFL] & USER_RFLAGS) | 0x202;
	cpu_thread_segments(&n->run->s.regs.sregs, fs, gs);
	n->run->s.regs.sregs.cr3 = lwc_cr3(g_vm.lwc.root_lwc);
	n->run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	/* the vector state as the signal frame saved it (standard XSAVE layout, as KVM's) */
	if (uc->uc_mcontext.fpregs) {
		char *xs = n->bounce; /* arena, 1 MiB, 4 KiB aligned: the KVM image is built there */
		const uint32_t *sw = (const uint32_t *)((const char *)uc->uc_mcontext.fpregs + 464);
		size_t len = sw[0] == 0x46505853U /* FP_XSTATE_MAGIC1 */ ? sw[3] : 512;
		memset(xs, 0, 4096);
		memcpy(xs, uc->uc_mcontext.fpregs, len < 4096 ? len : 4096);
		memset(xs + 464, 0, 48); /* the software-reserved bytes are not XSAVE state */
		RAW3(SYS_ioctl, n->fd, KVM_SET_XSAVE, xs);
	}
	n->lwc = g_vm.lwc.root_lwc;
	n->tid = (int)tid;
	n->cred_now = g_vm.cred.at_init;
	n->clear_tid = 0;
	n->robust_list = 0;
	n->rseq_host = NULL;
	thread_take_over_self(n, fs);
	RAW2(SYS_sigaltstack, 0, n->sig_altstack); /* the thread's alternate stack is the guest's */
	g_vm.lwc.root_lwc->ctx_mask |= 1UL << n->index;
	lwc_publish(g_vm.lwc.root_lwc);
	uint64_t gmask = 0;
	memcpy(&gmask, &uc->uc_sigmask, sizeof(gmask));
	g_vm.lwc.root_lwc->sigmasks[n->index] = gmask & ~(kick_bit | (1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1)));
	n->intr_nr = -1;
	n->sig_pending = 0;
	g_vm.thread.nthreads++;
	vm_unlock(NULL);
	__atomic_add_fetch(&g_vm.thread.adopted, 1, __ATOMIC_RELEASE);
	RAW3(SYS_futex, &g_vm.thread.adopted, FUTEX_WAKE_PRIVATE, 1);
	/* the handler's frame is left behind for good: the host thread blocks nothing of the
	   guest's (its mask is a record, above) */
	uint64_t mask = 0;
	RAW4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8);
	vmlwc_thread_become((char *)n->host_stack + n->host_stack_size, (char *)n->tls + PAGE_SIZE,
			    host_thread_main, n);
}

/* Whether signal VMLWC_SIG_KICK is blocked in thread tid (its SigBlk line); -errno if unreadable. */
static int thread_blocks_kick(long tid)
{
	char path[64], buf[2048];
	long fd, n;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", tid);
	if ((fd = RAW3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0)) < 0)
		return (int)fd;
	n = RAW3(SYS_read, fd, buf, sizeof(buf) - 1);
	RAW1(SYS_close, fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	const char *p = strstr(buf, "SigBlk:");
	if (!p)
		return -EIO;
	uint64_t m = strtoull(p + 7, NULL, 16);
	return (m >> (VMLWC_SIG_KICK - 1)) & 1;
}

int thread_others(long self, long *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && strtol(de->d_name, NULL, 10) != self) {
			if (n == max) {
				closedir(d);
				return -E2BIG;
			}
			tids[n++] = strtol(de->d_name, NULL, 10);
		}
	closedir(d);
	return n;
}

/* The other threads that can be adopted (they do not block the signal) into tids; their number or -errno. */
static int adoptable(long *tids, int max, int *native)
{
	long all[VMLWC_MAX_VCPUS];
	int n = thread_others(RAW0(SYS_gettid), all, VMLWC_MAX_VCPUS - 1), k = 0;

	*native = 0;
	for (int i = 0; i < n; i++) {
		if (thread_blocks_kick(all[i]) != 0)
			(*native)++;
		else if (k < max)
			tids[k++] = all[i];
	}
	return n < 0 ? n : k;
}

int thread_adopt_check(int *native)
{
	long tids[VMLWC_MAX_VCPUS];

	return adoptable(tids, VMLWC_MAX_VCPUS, native);
}

int thread_adopt_all(void)
{
	long tids[VMLWC_MAX_VCPUS];
	int native, n = adoptable(tids, VMLWC_MAX_VCPUS, &native);
	struct {
		uint64_t handler, flags, restorer, mask;
	} act = { (uint64_t)adopt_handler, SA_SIGINFO | SA_RESTORER | SA_RESTART, (uint64_t)vmlwc_sig_restorer, 0 };
	struct timespec deadline = { 0, 0 };

	if (n <= 0)
		return n;
	if (RAW4(SYS_rt_sigaction, VMLWC_SIG_KICK, &act, 0, 8) < 0)
		return -EIO;
	__atomic_store_n(&g_vm.thread.adopting, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < n; i++)
		RAW3(SYS_tgkill, RAW0(SYS_getpid), tids[i], VMLWC_SIG_KICK);
	RAW2(SYS_clock_gettime, CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 5;
	for (;;) {
		int got = __atomic_load_n(&g_vm.thread.adopted, __ATOMIC_ACQUIRE);
		struct timespec now, wait;
		if (got + (int)g_vm.thread.adopt_failed >= n)
			break;
		RAW2(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
		if (now.tv_sec > deadline.tv_sec)
			break;
		wait = (struct timespec){ 0, 10 * 1000 * 1000 };
		RAW4(SYS_futex, &g_vm.thread.adopted, FUTEX_WAIT_PRIVATE, got, &wait);
	}
	__atomic_store_n(&g_vm.thread.adopting, 0, __ATOMIC_RELEASE);
	return __atomic_load_n(&g_vm.thread.adopted, __ATOMIC_ACQUIRE) == n ? n : -EBUSY;
}

void thread_init(void)
{
	sys_register(__NR_clone, &clone_desc);
	sys_register(__NR_clone3, &clone3_desc);
	sys_register(__NR_exit, &exit_desc);
	sys_register(__NR_set_tid_address, &set_tid_address_desc);
	sys_register(__NR_set_robust_list, &set_robust_list_desc);
	sys_register(__NR_get_robust_list, &get_robust_list_desc);
	sys_register(__NR_rseq, &rseq_desc);
	if (!g_vm.thread.nthreads)
		g_vm.thread.nthreads = 1;
}
