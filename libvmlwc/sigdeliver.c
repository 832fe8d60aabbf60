/* Signals delivered into the guest: the host handler records, each vCPU delivers in its current lwC, rt_sigreturn undoes. */
/*
 * Every catchable signal reaches the library's host handler, on whichever host thread the
 * kernel picks: it only records the signal (an atomic bit and its siginfo; thread-directed ones
 * on the thread's vCPU, the rest process-wide) and wakes waiters. A vCPU delivers what is
 * pending and not blocked by its thread's mask in its current lwC before it enters the guest:
 * the lwC's disposition decides (handler, ignore, default action). A handler runs at ring 3 in
 * that lwC, on that thread's stack or alternate stack, with a Linux rt_sigframe (sigframe.c);
 * the registers it saves are the thread's own in that lwC. A frame is built only from a clean
 * ring-3 stop (the guest's whole state in the synced registers): after an exit through the
 * stub, the vCPU asks KVM for an interrupt-window exit, which comes at the first ring-3
 * instruction boundary, before that instruction runs.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base.h"
#include "arena.h"
#include "cpu.h"
#include "die.h"
#include "lwc_host.h"
#include "rawsys.h"
#include "run.h"
#include "sigframe.h"
#include "sigdeliver.h"
#include "sigtab.h"
#include "sysdesc.h"
#include "trace.h"
#include "uaccess.h"
#include "vcpu.h"
#include "vmlock.h"
#include "state.h"
#include "sys/sys.h"

#define KVM_GET_XSAVE2_ _IOR(KVMIO, 0xcf, struct kvm_xsave)
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif
#define SIGBIT(s) (1UL << ((s) - 1))
#define UNBLOCKABLE (SIGBIT(SIGKILL) | SIGBIT(SIGSTOP))
#define SI_KERNEL_ 0x80
#define SI_TKILL_ (-6)
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

/* ---- the host side: record, never deliver ---- */

static int default_action(int sig);

static struct vcpu *vcpu_of_tid(long tid)
{
	unsigned n = __atomic_load_n(&g_vm.kvm.nvcpus, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n; i++)
		if (g_vm.kvm.vcpus[i]->tid == tid && !__atomic_load_n(&g_vm.kvm.vcpus[i]->park, __ATOMIC_RELAXED))
			return g_vm.kvm.vcpus[i];
	return NULL;
}

/* Signals the kernel aims at the thread that caused them. */
static int thread_directed(int sig, const siginfo_t *si)
{
	return si->si_code == SI_TKILL_ || sig == SIGPIPE || sig == SIGXFSZ || sig == VMLWC_SIG_KICK;
}

/*
 * The library's handler, on any host thread: async-signal-safe, no lock. A fault of the host
 * itself (SIGSEGV ... with a kernel code on a vCPU thread) is a bug of the library: death as
 * natively. A thread that stayed native (it blocked every signal at vmlwc_init, G7) runs the
 * root lwC's handler natively, as before.
 */
static void sig_host(int sig, siginfo_t *si, void *uc)
{
	long tid = RAW0(SYS_gettid);
	struct vcpu *v = vcpu_of_tid(tid);

	if (sig == VMLWC_SIG_KICK)
		return; /* it interrupted KVM_RUN or a syscall: the vCPU looks at what is pending */
	if (!v) {
		const struct ksigaction *g = &g_vm.sig.guest_act[sig];
		if (g->handler > 1) {
			if (g->flags & SA_SIGINFO)
				((void (*)(int, siginfo_t *, void *))g->handler)(sig, si, uc);
			else
				((void (*)(int))g->handler)(sig);
		} else if (g->handler == 0 && default_action(sig) == 1) {
			die_signal(NULL, sig); /* what the root's default does natively */
		}
		return;
	}
	if ((sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP) && si->si_code > 0)
		die_panic(v, "fault in the library's host code");
	if (thread_directed(sig, si)) {
		if (!(__atomic_load_n(&v->sig_pending, __ATOMIC_ACQUIRE) & SIGBIT(sig)))
			memcpy(v->sig_info[sig], si, sizeof(v->sig_info[sig]));
		__atomic_or_fetch(&v->sig_pending, SIGBIT(sig), __ATOMIC_RELEASE);
	} else {
		if (!(__atomic_load_n(&g_vm.sig.proc_pending, __ATOMIC_ACQUIRE) & SIGBIT(sig)))
			memcpy(g_vm.sig.proc_info[sig], si, sizeof(g_vm.sig.proc_info[sig]));
		__atomic_or_fetch(&g_vm.sig.proc_pending, SIGBIT(sig), __ATOMIC_RELEASE);
	}
	/* signalfds that read it become readable: their notify descriptors are never closed */
	unsigned nfd = __atomic_load_n(&g_vm.sig.nsigfds, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < nfd; i++)
		if (__atomic_load_n(&g_vm.sig.sigfds[i].mask, __ATOMIC_ACQUIRE) & SIGBIT(sig)) {
			uint64_t one = 1;
			RAW3(SYS_write, g_vm.sig.sigfds[i].notify, &one, 8);
		}
	__atomic_add_fetch(&g_vm.sig.seq, 1, __ATOMIC_RELEASE);
	RAW3(SYS_futex, &g_vm.sig.seq, FUTEX_WAKE_PRIVATE, 0x7fffffff);
}

/* The library's handler for every catchable signal; the guest's dispositions are records. */
static void host_handlers_install(void)
{
	struct {
		uint64_t handler, flags, restorer, mask;
	} act = { (uint64_t)sig_host, SA_SIGINFO | SA_RESTORER, (uint64_t)vmlwc_sig_restorer, 0 };

	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			RAW4(SYS_rt_sigaction, sig, &act, 0, 8);
}

/* ---- delivery ---- */

static uint64_t *mask_of(struct vcpu *v)
{
	return &v->lwc->sigmasks[v->index];
}

/* Default action of sig: 0 ignore, 1 terminate (or core), 2 stop. */
static int default_action(int sig)
{
	switch (sig) {
	case SIGCHLD: case SIGURG: case SIGWINCH: case SIGCONT:
		return 0;
	case SIGTSTP: case SIGTTIN: case SIGTTOU:
		return 2;
	default:
		return 1;
	}
}

/* Which pending signal first: synchronous ones, then as Linux (lowest number). */
static int pick(uint64_t want)
{
	static const int sync[] = { SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS };

	for (unsigned i = 0; i < ARRAY_SIZE(sync); i++)
		if (want & SIGBIT(sync[i]))
			return sync[i];
	return __builtin_ctzl(want) + 1;
}

/* Takes sig off the thread's or the process's pending set; its siginfo into info. */
static void take(struct vcpu *v, int sig, uint8_t info[128])
{
	if (v->sig_sync == sig) {
		memcpy(info, v->sig_sync_info, 128);
		v->sig_sync = 0;
		return;
	}
	if (__atomic_load_n(&v->sig_pending, __ATOMIC_ACQUIRE) & SIGBIT(sig)) {
		memcpy(info, v->sig_info[sig], 128);
		__atomic_and_fetch(&v->sig_pending, ~SIGBIT(sig), __ATOMIC_RELEASE);
		return;
	}
	memcpy(info, g_vm.sig.proc_info[sig], 128);
	__atomic_and_fetch(&g_vm.sig.proc_pending, ~SIGBIT(sig), __ATOMIC_RELEASE);
}

/*
 * Syscalls Linux restarts after a handler with SA_RESTART (ERESTARTSYS); the rest return EINTR
 * (poll, select, epoll_wait, sigsuspend, sigtimedwait, nanosleep, ...: signal(7)).
 */
static int restartable(long nr)
{
	switch (nr) {
	case SYS_read: case SYS_readv: case SYS_pread64: case SYS_preadv: case SYS_preadv2:
	case SYS_write: case SYS_writev: case SYS_pwrite64: case SYS_pwritev: case SYS_pwritev2:
	case SYS_ioctl: case SYS_open: case SYS_openat: case SYS_openat2: case SYS_creat:
	case SYS_wait4: case SYS_waitid: case SYS_accept: case SYS_accept4: case SYS_connect:
	case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg: case SYS_sendto: case SYS_sendmsg:
	case SYS_sendmmsg: case SYS_flock: case SYS_fcntl: case SYS_futex: case SYS_getrandom:
	case SYS_sendfile: case SYS_splice: case SYS_copy_file_range: case SYS_fsync: case SYS_fdatasync:
		return 1;
	default:
		return 0;
	}
}

void sig_syscall_interrupted(struct vcpu *v, long nr, uint64_t rip)
{
	v->intr_nr = nr;
	v->intr_rip = rip;
}

/* At a clean ring-3 stop: the interrupted syscall again (rip back on `syscall`, rax its number). */
static void restart_syscall_at_stop(struct vcpu *v, struct kvm_regs *r)
{
	r->rip -= 2;
	r->rax = (uint64_t)v->intr_nr;
}

/*
 * The guest's whole state is in the synced registers: CPL 3, no stub path on the way, and not
 * in the gate page (between the stub's return and the gate's clearing of rsi and rdx the
 * registers hold what the stub left: a frame taken there would carry it to the handler).
 */
static int clean_stop(struct vcpu *v)
{
	uint64_t rip = v->run->s.regs.regs.rip;

	return (v->run->s.regs.sregs.cs.selector & 3) == 3 && (rip < VMLWC_GATE_VA || rip >= VMLWC_GATE_VA + PAGE_SIZE);
}

static int xsave_size(void)
{
	return (int)(g_vm.lwc.xsave_pages * PAGE_SIZE);
}

/* The guest's XSAVE components: XCR0 where the guest has XSAVE, else what ring 3 uses (PVM). */
static uint64_t guest_xfeatures(void)
{
	return g_vm.cpu.has_xsave ? g_vm.cpu.xcr0 : g_vm.cpu.xcr0_user;
}

static long vcpu_xsave(struct vcpu *v, void *buf, int set)
{
	unsigned long req = set ? KVM_SET_XSAVE : (g_vm.lwc.xsave_pages > 1 ? KVM_GET_XSAVE2_ : KVM_GET_XSAVE);
	return RAW3(SYS_ioctl, v->fd, req, buf);
}

/* The vector state a handler starts with: init (x87 control word 0x37f, MXCSR 0x1f80). */
static void fpu_init_state(struct vcpu *v)
{
	char *x = g_vm.sig.xinit;

	if (!x)
		return;
	vcpu_xsave(v, x, 1);
}

/*
 * Runs the lwC's handler for sig on v's thread (a clean ring-3 stop): the frame on its stack,
 * its mask widened, the handler's vector state init. A frame that cannot be written ends the
 * thread's process with SIGSEGV, as Linux's force_sigsegv (the handler's own signal first).
 */
static void run_handler(struct vcpu *v, int sig, const struct ksigaction *act, const uint8_t info[128])
{
	struct kvm_regs *r = &v->run->s.regs.regs, entry;
	struct sigframe_state s;
	uint64_t *mask = mask_of(v);
	int ssf;

	memset(&s, 0, sizeof(s));
	s.regs = *r;
	if (v->intr_nr >= 0 && r->rip == v->intr_rip && (long)r->rax == -EINTR) {
		if ((act->flags & SA_RESTART) && restartable(v->intr_nr))
			restart_syscall_at_stop(v, &s.regs);
		v->intr_nr = -1;
	}
	s.sigmask = v->sig_restore_mask ? v->sig_saved_mask : *mask;
	memcpy(&s.ss_sp, v->sig_altstack, 8);
	memcpy(&ssf, v->sig_altstack + 8, 4);
	s.ss_flags = ssf;
	memcpy(&s.ss_size, v->sig_altstack + 16, 8);
	s.xsave = v->bounce;
	s.xsave_bytes = (size_t)xsave_size();
	s.xfeatures = guest_xfeatures();
	if (v->sig_sync_trap) {
		s.trapno = v->sig_trapno;
		s.err = v->sig_err;
		s.cr2 = v->sig_cr2;
		v->sig_sync_trap = 0;
	}
	if (vcpu_xsave(v, s.xsave, 0) < 0)
		die_panic(v, "KVM_GET_XSAVE for a signal frame");
	int e = sigframe_build(v->lwc, sig, act, info, &s, &entry);
	if (e == -ENOBUFS)
		die_panic(v, "signal frame: the vector state does not fit");
	if (e < 0) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] signal %d: no room for its frame at rsp %lx: SIGSEGV", v->index, sig,
				  (unsigned long)r->rsp);
		die_signal(v, SIGSEGV);
	}
	*r = entry;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	fpu_init_state(v);
	*mask = (s.sigmask | act->mask | ((act->flags & SA_NODEFER) ? 0 : SIGBIT(sig))) & ~UNBLOCKABLE;
	v->sig_restore_mask = 0;
	if (act->flags & SA_RESETHAND) {
		struct ksigaction dfl = { 0 };
		sigtab_set(v->lwc, sig, &dfl);
	}
	if ((uint32_t)ssf & SS_AUTODISARM) {
		int dis = SS_DISABLE;
		memset(v->sig_altstack, 0, sizeof(v->sig_altstack));
		memcpy(v->sig_altstack + 8, &dis, 4);
	}
	g_vm.sig.delivered++;
	if (g_vm.cfg.trace)
		trace_msg("[vcpu %d] signal %d to the handler %lx of lwC %d (frame at %lx)", v->index, sig,
			  (unsigned long)act->handler, (int)v->lwc->s.id, (unsigned long)entry.rsp);
}

/* A process signal v's thread blocks: another thread that does not is woken to take it. */
static void route(struct vcpu *v, uint64_t blocked_here)
{
	unsigned n = __atomic_load_n(&g_vm.kvm.nvcpus, __ATOMIC_ACQUIRE);

	if (!blocked_here || (g_vm.sig.routed & blocked_here) == blocked_here)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct vcpu *u = g_vm.kvm.vcpus[i];
		if (u == v || u->park || !u->lwc || (blocked_here & ~u->lwc->sigmasks[u->index]) == 0)
			continue;
		g_vm.sig.routed |= blocked_here & ~u->lwc->sigmasks[u->index];
		RAW3(SYS_tgkill, g_vm.run.tgid, u->tid, VMLWC_SIG_KICK);
		return;
	}
}

void sig_before_entry(struct vcpu *v)
{
	uint8_t info[128];
	int taken = 0;

	if (v->park || !v->lwc)
		return;
	for (int rounds = 0; rounds < 64; rounds++) {
		uint64_t mask = *mask_of(v);
		uint64_t tp = __atomic_load_n(&v->sig_pending, __ATOMIC_ACQUIRE);
		uint64_t pp = __atomic_load_n(&g_vm.sig.proc_pending, __ATOMIC_ACQUIRE);
		uint64_t want = ((tp | pp) & ~mask) | (v->sig_sync ? SIGBIT(v->sig_sync) : 0);

		if (!want) {
			route(v, pp & mask);
			g_vm.sig.routed &= pp;
			break;
		}
		int sig = pick(want);
		const struct ksigaction *act = sigtab_act(v->lwc, sig);
		if (act->handler > 1) {
			if (!clean_stop(v)) {
				v->run->request_interrupt_window = 1;
				return;
			}
			take(v, sig, info);
			taken = 1;
			run_handler(v, sig, act, info);
			continue;
		}
		take(v, sig, info);
		taken = 1;
		if (act->handler == 1 || default_action(sig) == 0)
			continue; /* ignored */
		if (default_action(sig) == 2) {
			RAW3(SYS_tgkill, g_vm.run.tgid, RAW0(SYS_gettid), SIGSTOP); /* the whole process, as natively */
			continue;
		}
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] signal %d, default action in lwC %d: the process ends", v->index, sig,
				  (int)v->lwc->s.id);
		die_signal(v, sig);
	}
	if (taken && g_vm.sig.nsigfds)
		sigfd_refresh_all(); /* what it took no signalfd shows any more */
	/* a syscall the host's signal cut short, and no handler took the thread: as if nothing happened */
	if (v->intr_nr >= 0) {
		if (!clean_stop(v)) {
			v->run->request_interrupt_window = 1;
			return;
		}
		struct kvm_regs *r = &v->run->s.regs.regs;
		if (r->rip == v->intr_rip && (long)r->rax == -EINTR) {
			restart_syscall_at_stop(v, r);
			v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		}
		v->intr_nr = -1;
	}
	if (v->sig_restore_mask && !v->sig_sync) {
		*mask_of(v) = v->sig_saved_mask;
		v->sig_restore_mask = 0;
	}
}

/* ---- faults ---- */

int sig_fault(struct vcpu *v, int sig, int code, uint64_t addr, uint64_t trapno, uint64_t err, uint64_t cr2)
{
	const struct ksigaction *act = sigtab_act(v->lwc, sig);
	siginfo_t *si = (siginfo_t *)v->sig_sync_info;

	/* as force_sig: a blocked or ignored synchronous signal kills */
	if (act->handler <= 1 || (*mask_of(v) & SIGBIT(sig)))
		return -1;
	memset(v->sig_sync_info, 0, sizeof(v->sig_sync_info));
	si->si_signo = sig;
	si->si_code = code;
	si->si_addr = (void *)addr;
	v->sig_sync = sig;
	v->sig_sync_trap = 1;
	v->sig_trapno = trapno;
	v->sig_err = err;
	v->sig_cr2 = cr2;
	return 0;
}

/* ---- rt_sigreturn ---- */

static long sys_rt_sigreturn(struct sys_call *c)
{
	struct vcpu *v = c->v;
	struct kvm_regs *r = &v->run->s.regs.regs;
	struct sigframe_state out;
	int ssf;

	memset(&out, 0, sizeof(out));
	out.xsave = v->bounce;
	out.xsave_bytes = (size_t)xsave_size();
	out.xfeatures = guest_xfeatures();
	memcpy(&out.ss_sp, v->sig_altstack, 8);
	memcpy(&ssf, v->sig_altstack + 8, 4);
	out.ss_flags = ssf;
	memcpy(&out.ss_size, v->sig_altstack + 16, 8);
	out.regs.rflags = r->r11; /* RFLAGS at the syscall */
	int e = sigframe_restore(c->l, user_rsp(v), &out);
	if (e == -ENOBUFS)
		die_panic(v, "rt_sigreturn: the vector state does not fit");
	if (e == -EFAULT) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] rt_sigreturn: no readable frame at %lx: SIGSEGV", v->index,
				  (unsigned long)user_rsp(v));
		if (sig_fault(v, SIGSEGV, SI_KERNEL_, 0, 0, 0, 0) < 0)
			die_signal(v, SIGSEGV);
		return 0;
	}
	/*
	 * 0, -EINVAL and -ERANGE all install what Linux installs (sigframe.h). Through the stub's
	 * syscall port the vCPU is still in ring 0 at the port: its rip, rsp and RFLAGS stay the
	 * stub's, and the restored ones go through the iret frame (sigreturn_*).
	 */
	uint64_t krip = r->rip, krsp = r->rsp, krflags = r->rflags;
	*r = out.regs;
	v->sigreturn_rsp = out.regs.rsp;
	v->sigreturn_rip = out.regs.rip;
	v->sigreturn_rflags = out.regs.rflags;
	if (!v->via_doorbell) {
		r->rip = krip;
		r->rsp = krsp;
		r->rflags = krflags;
	}
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	*mask_of(v) = out.sigmask & ~UNBLOCKABLE;
	if (e == 0) {
		memcpy(v->sig_altstack, &out.ss_sp, 8);
		ssf = out.ss_flags;
		memcpy(v->sig_altstack + 8, &ssf, 4);
		memcpy(v->sig_altstack + 16, &out.ss_size, 8);
	}
	if (vcpu_xsave(v, out.xsave, 1) < 0) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] rt_sigreturn: KVM refused the vector state: SIGSEGV", v->index);
		e = -EINVAL;
	}
	v->sigreturn = 1; /* the syscall's return is every register as restored */
	if (e < 0) {
		if (g_vm.cfg.trace)
			trace_msg("[vcpu %d] rt_sigreturn: a frame Linux refuses (%s): SIGSEGV", v->index,
				  e == -ERANGE ? "rip or selectors" : "vector state");
		if (sig_fault(v, SIGSEGV, SI_KERNEL_, 0, 13, 0, 0) < 0)
			die_signal(v, SIGSEGV);
	}
	return (long)out.regs.rax;
}

static const struct sys_desc rt_sigreturn_desc = { .name = "rt_sigreturn", .fn = sys_rt_sigreturn };

void sig_sigreturn_init(void)
{
	sys_register(__NR_rt_sigreturn, &rt_sigreturn_desc);
}

void sig_deliver_init(void)
{
	host_handlers_install();
	sig_sigreturn_init();
	/* a handler's vector state: the init image (the gate page holds the same one) */
	if (!g_vm.sig.xinit && (g_vm.sig.xinit = arena_pages(&g_vm.arena, g_vm.lwc.xsave_pages)) != NULL) {
		memcpy(g_vm.sig.xinit, (const void *)(VMLWC_GATE_VA + VMLWC_GATE_XZERO), 576);
	}
	for (unsigned i = 0; i < g_vm.kvm.nvcpus; i++)
		g_vm.kvm.vcpus[i]->intr_nr = -1;
}
