/* The host library's one lock (vmlock.c): every exit handler runs under it; KVM_RUN and blocking syscalls never do. */
#ifndef VMLWC_VMLOCK_H
#define VMLWC_VMLOCK_H

#include "base.h"

struct vcpu;

/*
 * g_vm.lock. One mutex for all host state shared between vCPUs (a futex word: 0 free, 1 held,
 * 2 held with waiters), taken by the run loop for each exit's handler and given up around
 * KVM_RUN and around redirected syscalls that may block (vm_unlock/vm_lock in sys/). `holder`
 * is the vCPU whose handler holds it: the layers below learn "the vCPU of this exit" from it
 * (written and read only by the holder). Lock order: vm_lock is the only lock; per-vCPU words
 * that other vCPUs read (in_guest, kick requests) are atomics, never locks.
 */
struct vmlock_state {
	int word;
	struct vcpu *holder;
	uint64_t acquisitions, contended; /* statistics: times taken, times it had to wait */
};

void vm_lock(struct vcpu *v);
void vm_unlock(struct vcpu *v);
struct vcpu *vm_holder(void); /* the vCPU whose handler holds the lock now (NULL when none: init) */

#endif
