/* signalfd: a descriptor over the library's pending sets, readable through a host eventfd the host handler signals. */
/*
 * The library's host handler takes every signal (sigdeliver.c), so a host signalfd would never
 * see one. A guest signalfd is instead a host eventfd: poll, select and epoll see it readable
 * while a signal of its mask is pending; read takes the signals from the same pending sets
 * delivery and sigtimedwait take from. Each entry of g_vm.sig.sigfds owns a second descriptor of
 * its eventfd (`notify`) that is never closed, so the host handler, which takes no lock, can
 * always write to it: it never writes to a descriptor number the guest might have closed and
 * the kernel reused. An entry whose guest descriptor is closed (the fdtab close hook) is free
 * for the next signalfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/signalfd.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>

#include "../fdtab.h"
#include "../sigtab.h"
#include "../trace.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

#define SIGBIT(s) (1UL << ((s) - 1))
#define UNBLOCKABLE (SIGBIT(SIGKILL) | SIGBIT(SIGSTOP) | SIGBIT(VMLWC_SIG_KICK))
#define SFD_FLAGS (SFD_CLOEXEC | SFD_NONBLOCK)

static struct sigfd *entry_of(int hfd)
{
	return sigfd_entry(&g_vm.sig, hfd);
}

/* What any thread has pending: the readiness the eventfd shows. */
static uint64_t pending_any(void)
{
	uint64_t p = __atomic_load_n(&g_vm.sig.proc_pending, __ATOMIC_ACQUIRE);
	unsigned n = __atomic_load_n(&g_vm.kvm.nvcpus, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n; i++)
		p |= __atomic_load_n(&g_vm.kvm.vcpus[i]->sig_pending, __ATOMIC_ACQUIRE);
	return p;
}

/* The eventfd's count to 0, without blocking whatever O_NONBLOCK the guest set on it. */
static void drain(struct sigfd *e)
{
	struct pollfd p = { .fd = e->notify, .events = POLLIN };
	uint64_t cnt;

	if (RAW3(SYS_poll, &p, 1, 0) == 1)
		RAW3(SYS_read, e->notify, &cnt, 8);
}

/*
 * The eventfd's count made to say whether a signal of the mask is pending: drained first and
 * set again after, so that a signal the host handler records in between (it sets its bit,
 * then writes) is never lost.
 */
static void refresh(struct sigfd *e)
{
	uint64_t one = 1;

	drain(e);
	if (pending_any() & __atomic_load_n(&e->mask, __ATOMIC_ACQUIRE))
		RAW3(SYS_write, e->notify, &one, 8);
}

/* The fdtab's hook: host fd hfd's last reference is being closed. */
static void sigfd_closing(int hfd)
{
	struct sigfd *e = entry_of(hfd);

	if (!e)
		return;
	__atomic_store_n(&e->mask, 0, __ATOMIC_RELEASE); /* the host handler stops writing */
	e->hfd = -1;
}

void sigfd_init(void)
{
	fdtab_set_close_hook(sigfd_closing);
}

/* A free entry with its eventfd, made once; NULL when all VMLWC_SIGFDS are in use. */
static struct sigfd *entry_take(long *err)
{
	struct sigfd *e;

	for (unsigned i = 0; i < g_vm.sig.nsigfds; i++)
		if (g_vm.sig.sigfds[i].hfd < 0) {
			e = &g_vm.sig.sigfds[i];
			drain(e); /* a count left from its last use */
			return e;
		}
	if (g_vm.sig.nsigfds == VMLWC_SIGFDS) {
		*err = -EMFILE;
		return NULL;
	}
	e = &g_vm.sig.sigfds[g_vm.sig.nsigfds];
	long h = RAW2(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h < 0) {
		*err = h;
		return NULL;
	}
	e->notify = (int)h;
	e->hfd = -1;
	e->mask = 0;
	/* published after its notify: the host handler reads the count, then the entry */
	__atomic_store_n(&g_vm.sig.nsigfds, g_vm.sig.nsigfds + 1, __ATOMIC_RELEASE);
	return e;
}

/* signalfd4(fd, mask, sizemask, flags) and signalfd(fd, mask, sizemask). */
static long sigfd_make(struct sys_call *c, long flags)
{
	struct sigfd *e;
	uint64_t mask;
	long err = 0, h;
	int gfd;

	if (c->a[2] != 8 || (flags & ~(long)SFD_FLAGS))
		return -EINVAL;
	if (ua_copy_in(c->l, &mask, (gva_t)c->a[1], 8) < 0)
		return -EFAULT;
	mask &= ~UNBLOCKABLE;
	if ((int)c->a[0] != -1) {
		/* a new mask for an existing signalfd */
		int hfd = fdtab_get(c->fds, (int)c->a[0]);
		if (hfd < 0)
			return -EBADF;
		if (!(e = entry_of(hfd)))
			return -EINVAL;
		__atomic_store_n(&e->mask, mask, __ATOMIC_RELEASE);
		refresh(e);
		return (int)c->a[0];
	}
	if (!(e = entry_take(&err))) {
		if (g_vm.cfg.trace)
			trace_msg("%s: %s", c->d->name, err == -EMFILE ? "the process's signalfds (VMLWC_SIGFDS) are all in use: EMFILE"
								       : "no eventfd for it");
		return err;
	}
	/* the guest's descriptor is a second one of the same eventfd: the open file, and so
	   O_NONBLOCK, is shared with notify (which never blocks a write and is drained only when
	   poll says it holds a count) */
	h = RAW3(SYS_fcntl, e->notify, F_DUPFD_CLOEXEC, 0);
	if (h < 0)
		return h;
	RAW3(SYS_fcntl, h, F_SETFL, (flags & SFD_NONBLOCK) ? O_NONBLOCK : 0);
	if ((gfd = fdtab_install(c->fds, (int)h, !!(flags & SFD_CLOEXEC))) < 0) {
		RAW1(SYS_close, h);
		return gfd;
	}
	e->hfd = (int)h;
	__atomic_store_n(&e->mask, mask, __ATOMIC_RELEASE);
	refresh(e);
	return gfd;
}

/* Which fields of a siginfo are meaningful, from its signal and code (the kernel's siginfo_layout). */
enum { L_KILL, L_TIMER, L_POLL, L_FAULT, L_CHLD, L_RT, L_SYS };

static int layout(int sig, int code)
{
	if (code > SI_USER && code < SI_KERNEL) {
		switch (sig) {
		case SIGILL: case SIGFPE: case SIGSEGV: case SIGBUS: case SIGTRAP: return L_FAULT;
		case SIGCHLD: return L_CHLD;
		case SIGSYS: return L_SYS;
		default: return L_POLL;
		}
	}
	if (code == SI_TIMER)
		return L_TIMER;
	if (code == SI_SIGIO)
		return L_POLL;
	return code < 0 ? L_RT : L_KILL;
}

/* A recorded siginfo as signalfd's read gives it (the kernel's signalfd_copyinfo). */
static void to_ssi(const uint8_t raw[128], struct signalfd_siginfo *o)
{
	siginfo_t si;

	memcpy(&si, raw, sizeof(si));
	memset(o, 0, sizeof(*o));
	o->ssi_signo = (uint32_t)si.si_signo;
	o->ssi_errno = si.si_errno;
	o->ssi_code = si.si_code;
	switch (layout(si.si_signo, si.si_code)) {
	case L_KILL:
		o->ssi_pid = (uint32_t)si.si_pid, o->ssi_uid = si.si_uid;
		break;
	case L_TIMER:
		o->ssi_tid = (uint32_t)si.si_timerid, o->ssi_overrun = (uint32_t)si.si_overrun;
		o->ssi_ptr = (uint64_t)si.si_value.sival_ptr, o->ssi_int = si.si_value.sival_int;
		break;
	case L_POLL:
		o->ssi_band = (uint32_t)si.si_band, o->ssi_fd = si.si_fd;
		break;
	case L_FAULT:
		o->ssi_addr = (uint64_t)si.si_addr;
		if (si.si_signo == SIGBUS && (si.si_code == BUS_MCEERR_AR || si.si_code == BUS_MCEERR_AO))
			o->ssi_addr_lsb = si.si_addr_lsb;
		break;
	case L_CHLD:
		o->ssi_pid = (uint32_t)si.si_pid, o->ssi_uid = si.si_uid, o->ssi_status = si.si_status;
		o->ssi_utime = (uint64_t)si.si_utime, o->ssi_stime = (uint64_t)si.si_stime;
		break;
	case L_RT:
		o->ssi_pid = (uint32_t)si.si_pid, o->ssi_uid = si.si_uid;
		o->ssi_ptr = (uint64_t)si.si_value.sival_ptr, o->ssi_int = si.si_value.sival_int;
		break;
	case L_SYS:
		o->ssi_call_addr = (uint64_t)si.si_call_addr, o->ssi_syscall = si.si_syscall;
		o->ssi_arch = si.si_arch;
		break;
	}
}

/*
 * read on a signalfd: whole signalfd_siginfo records of the pending signals of its mask, the
 * calling thread's first, then the process's, each taken off its set once copied out. Blocks
 * (without the lock) unless the descriptor is O_NONBLOCK; a signal the thread handles
 * interrupts the wait (EINTR, restarted with SA_RESTART, as Linux's read).
 */
long sigfd_read(struct sys_call *c, int hfd)
{
	struct sigfd *e = entry_of(hfd);
	struct vcpu *v = c->v;
	const size_t rec = sizeof(struct signalfd_siginfo);
	size_t max = (size_t)c->a[2] / rec, n = 0;
	gva_t buf = (gva_t)c->a[1];

	if (max == 0)
		return -EINVAL;
	if (max > 64)
		max = 64; /* at most one record per signal can be pending */
	for (;;) {
		uint32_t seq = __atomic_load_n(&g_vm.sig.seq, __ATOMIC_ACQUIRE);
		uint64_t mask = __atomic_load_n(&e->mask, __ATOMIC_ACQUIRE);
		while (n < max) {
			uint64_t t = __atomic_load_n(&v->sig_pending, __ATOMIC_ACQUIRE) & mask;
			uint64_t p = __atomic_load_n(&g_vm.sig.proc_pending, __ATOMIC_ACQUIRE) & mask;
			struct signalfd_siginfo o;
			if (!(t | p))
				break;
			int sig = __builtin_ctzl(t ? t : p) + 1;
			to_ssi(t ? v->sig_info[sig] : g_vm.sig.proc_info[sig], &o);
			/* copied out before it is taken: a bad buffer loses no signal */
			if (ua_copy_out(c->l, buf + n * rec, &o, rec) < 0) {
				if (n == 0)
					return -EFAULT;
				break;
			}
			if (t)
				__atomic_and_fetch(&v->sig_pending, ~SIGBIT(sig), __ATOMIC_RELEASE);
			else
				__atomic_and_fetch(&g_vm.sig.proc_pending, ~SIGBIT(sig), __ATOMIC_RELEASE);
			n++;
		}
		if (n)
			break;
		if (RAW2(SYS_fcntl, hfd, F_GETFL) & O_NONBLOCK)
			return -EAGAIN;
		uint64_t pend = __atomic_load_n(&v->sig_pending, __ATOMIC_ACQUIRE) |
				__atomic_load_n(&g_vm.sig.proc_pending, __ATOMIC_ACQUIRE);
		if (sigtab_interrupts(c->l, pend & ~c->l->sigmasks[v->index]))
			return -EINTR;
		if (e->hfd != hfd)
			return -EBADF; /* closed by another thread while this one waited */
		sys_block6(c, SYS_futex, (long)&g_vm.sig.seq, FUTEX_WAIT_PRIVATE, seq, 0, 0, 0);
	}
	sigfd_refresh_all(); /* every signalfd that showed what this one took */
	return (long)(n * rec);
}

/* After a signal is taken elsewhere (a handler, sigtimedwait): readiness follows. Lock held. */
void sigfd_refresh_all(void)
{
	for (unsigned i = 0; i < g_vm.sig.nsigfds; i++)
		if (g_vm.sig.sigfds[i].hfd >= 0)
			refresh(&g_vm.sig.sigfds[i]);
}

static long sys_signalfd4(struct sys_call *c)
{
	return sigfd_make(c, c->a[3]);
}

static long sys_signalfd(struct sys_call *c)
{
	return sigfd_make(c, 0);
}

const struct sys_entry sys_sigfd_table[] = {
	SYS(SYS_signalfd4, .name = "signalfd4", .fn = sys_signalfd4),
	SYS(SYS_signalfd, .name = "signalfd", .fn = sys_signalfd),
};
const unsigned sys_sigfd_table_len = ARRAY_SIZE(sys_sigfd_table);
