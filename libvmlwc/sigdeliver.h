/* Signals delivered into the guest (sigdeliver.c): the host handler, pending sets, delivery, rt_sigreturn. */
#ifndef VMLWC_SIGDELIVER_H
#define VMLWC_SIGDELIVER_H

#include "base.h"

struct vcpu;
struct lwc;

void sig_deliver_init(void);        /* the library's host handler for every signal; rt_sigreturn, pause */
void sig_sigreturn_init(void);      /* rt_sigreturn alone (host-only set-ups: no host handler) */
void sig_before_entry(struct vcpu *v); /* lock held, before KVM_RUN: what is pending and deliverable */
/*
 * A ring-3 exception of v's thread as Linux turns it into a signal (force_sig): delivered to
 * the lwC's handler when it has one that the thread does not block, with si_code and si_addr;
 * 0 then (the fault's return resumes the faulting instruction only to be taken to the handler
 * at once). -1 when the process dies of it instead (no handler, blocked or ignored).
 */
int sig_fault(struct vcpu *v, int sig, int code, uint64_t addr, uint64_t trapno, uint64_t err, uint64_t cr2);
/* A redirected syscall that returned -EINTR at rip (after the syscall): restarted or not at delivery. */
void sig_syscall_interrupted(struct vcpu *v, long nr, uint64_t rip);

#endif
