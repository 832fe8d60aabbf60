/* Guest threads (thread.c): clone for threads, thread exit, the vCPU pool. */
#ifndef VMLWC_THREAD_H
#define VMLWC_THREAD_H

#include "base.h"

struct vcpu;

void thread_init(void); /* registers clone, clone3, exit, set_tid_address, set_robust_list into sys/ */
/*
 * Threads that exist when vmlwc_init runs are adopted: each gets the kick signal, whose handler
 * makes it a guest thread in the root lwC where it was interrupted. A thread that blocks the
 * signal cannot be (glibc's timer helper threads block every signal): it stays native.
 * thread_adopt_check, before anything changed: the number that can be adopted (*native: those
 * that cannot), or -errno. thread_adopt_all, once the VM is ready: their number adopted, or
 * -EBUSY when some did not come within 5 s (they run natively).
 */
int thread_adopt_check(int *native);
void thread_take_over_self(struct vcpu *v, uint64_t fs_base); /* the calling thread's tid address, robust list, rseq */
int thread_adopt_all(void);

/*
 * g_vm.thread, under vm_lock. A guest thread is a host thread with its own vCPU; when it exits
 * its vCPU and host thread wait in the pool for the next clone.
 */
struct thread_state {
	int nthreads;                        /* live guest threads */
	struct vcpu *pool[VMLWC_MAX_VCPUS];  /* parked vCPUs whose host threads wait for a clone */
	int npool;
	struct vcpu *spare[VMLWC_MAX_VCPUS]; /* vCPUs with no host thread (its spawn failed): made again */
	int nspare;
	uint64_t created, reused;            /* host threads spawned, pooled vCPUs given to new threads */
	int adopting;                        /* atomic: vmlwc_init adopts the threads that exist */
	int adopted;                         /* atomic (futex): threads adopted so far */
	int adopt_failed;                    /* threads that could not get a vCPU */
	int native;                          /* threads left native at vmlwc_init (they block the signal) */
};

#endif
