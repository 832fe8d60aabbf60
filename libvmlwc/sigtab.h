/* Signal dispositions per lwC (sigtab.c) and the process's signal state. */
#ifndef VMLWC_SIGTAB_H
#define VMLWC_SIGTAB_H

#include "base.h"

/* struct sigaction as the kernel's x86-64 rt_sigaction takes it */
struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

#define SIGTAB_N 65
#define VMLWC_SIGFDS 64 /* signalfds the process may have open at once (each holds one host fd for good) */

/* A guest signalfd (sys/sigfd.c): a host eventfd the host handler writes to. */
struct sigfd {
	int notify;    /* the library's own descriptor of the eventfd: set once, never closed */
	int hfd;       /* the guest's descriptor of it (host fd), -1 when the entry is free: vm_lock */
	uint64_t mask; /* signals it reads: written under vm_lock, read by the host handler (atomic) */
};
struct sigtab;
struct lwc;
struct sigtab *sigtab_for_child(const struct lwc *creator); /* one more reference; NULL: no memory */
void sigtab_put(struct sigtab *t);
const struct ksigaction *sigtab_act(const struct lwc *l, int sig);
int sigtab_set(struct lwc *l, int sig, const struct ksigaction *a); /* 0, or -1: no memory */
/* Whether a signal of `want` would interrupt a wait in l: l handles it, or its default ends the process. */
int sigtab_interrupts(const struct lwc *l, uint64_t want);

/*
 * g_vm.sig. guest_act and root_snap are shared between vCPUs: under vm_lock (a native
 * thread's handler reads guest_act without it, as natively it reads its own); the fields the
 * host signal handler writes are atomics, as each says.
 */
struct sig_state {
	struct ksigaction guest_act[SIGTAB_N]; /* the root lwC's dispositions: the process's */
	struct sigtab *root_snap;  /* a copy of them the lwCs the root creates share, until it changes one */
	/* delivery into the guest (sigdeliver.c): set by the host handler with atomics, the rest under vm_lock */
	uint64_t proc_pending;     /* process-directed signals no thread took yet */
	uint8_t proc_info[SIGTAB_N][128];
	uint32_t seq;              /* futex: bumped by every signal recorded (sigsuspend, sigtimedwait wait on it) */
	uint64_t routed;           /* process signals a thread that does not block them was woken for */
	uint64_t delivered;        /* handlers run */
	void *xinit;               /* the vector state a handler starts with (arena) */
	struct sigfd sigfds[VMLWC_SIGFDS];
	unsigned nsigfds;          /* entries made (they are reused, never unmade): written under
				      vm_lock with a release store, read by the host handler */
};

/* The signalfd entry whose guest descriptor is host fd hfd, or NULL (vm_lock held). */
static inline struct sigfd *sigfd_entry(const struct sig_state *s, int hfd)
{
	for (unsigned i = 0; hfd >= 0 && i < s->nsigfds; i++)
		if (s->sigfds[i].hfd == hfd)
			return (struct sigfd *)&s->sigfds[i];
	return 0;
}

#endif
