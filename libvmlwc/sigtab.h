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
struct sigtab;
struct lwc;
struct sigtab *sigtab_for_child(const struct lwc *creator); /* one more reference; NULL: no memory */
void sigtab_put(struct sigtab *t);
const struct ksigaction *sigtab_act(const struct lwc *l, int sig);
int sigtab_set(struct lwc *l, int sig, const struct ksigaction *a); /* 0, or -1: no memory */

/*
 * g_vm.sig. guest_act and root_snap are shared between vCPUs: sig_lock will guard them (one
 * vCPU: no lock yet); held is set from the host signal handler with atomic ORs (no lock).
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
};

#endif
