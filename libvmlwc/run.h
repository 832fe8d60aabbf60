/* The machine's run loop: exits, the port table, ring-3 frames, entering (run.c, enter_x86_64.S). */
#ifndef VMLWC_RUN_H
#define VMLWC_RUN_H

#include "base.h"

struct vcpu;
typedef int (*exit_fn)(struct vcpu *v);  /* 0: resume the guest */
typedef int (*hypercall_fn)(struct vcpu *v);
#define MAX_EXIT 64

/* ---- entering (enter_x86_64.S) ---- */
struct enter_ctx {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
	uint64_t fcw, mxcsr;
	uint64_t fs_base, gs_base;
};

/* Capture the caller, switch to host_stack and call fn(arg); returns 0 in the guest (never fails). */
int vmlwc_enter(struct enter_ctx *ctx, void (*fn)(void *), void *arg, void *host_stack_top);
/* A raw clone whose child runs fn(arg) on stack_top; the child's tid or -errno. */
long vmlwc_thread_spawn(unsigned long flags, void *stack_top, int *ptid, void *tls, void (*fn)(void *), void *arg);

/* ---- run loop and exits (run.c) ---- */
void exit_register(unsigned reason, exit_fn fn);
void run_init(void);
__attribute__((noreturn)) void run_loop(struct vcpu *v);
void run_exit_handle(struct vcpu *v); /* one exit as KVM_RUN left it in v->run (the run loop's body) */
void hypercall_register(unsigned port, hypercall_fn fn);
int hypercall_dispatch(struct vcpu *v, unsigned port); /* the handler's result (0: resume); -1: no handler for port */
/* Rewrite the ring-3 iret frame; reload CR3 first when v->pending_cr3 is set. */
void frame_return_to_user(struct vcpu *v, uint64_t rip, uint64_t rflags);
struct vmlwc_iret_frame *frame_user(struct vcpu *v); /* never NULL */
uint64_t user_rsp(struct vcpu *v); /* ring 3's rsp at this exit */

/*
 * The library's kick: a signal that only interrupts a vCPU thread's KVM_RUN (SIGRTMAX, taken
 * from the guest: rt_sigaction on it fails with EINVAL, and no mask the guest sets blocks it).
 */
#define VMLWC_SIG_KICK 64
void run_sync_others(struct vcpu *self); /* every other vCPU out of the guest and revalidated (lock held) */
void run_init_kick(void);                /* the kick's handler, process-wide (at init) */
extern void vmlwc_sig_restorer(void);    /* rt_sigreturn for the library's own host handlers */

/*
 * g_vm.run. The tables and the hooks are filled at init (registration), read-only after; the
 * counters are under vm_lock.
 */
struct run_state {
	exit_fn exit_table[MAX_EXIT];
	void (*exit_begin)(struct vcpu *v); /* set by the ports: each guest exit, before its handler */
	void (*before_entry)(struct vcpu *v); /* set by the ports: before each KVM_RUN, lock held */
	void (*revalidate)(struct vcpu *v);   /* set by the ports: another vCPU's state names current trees */
	hypercall_fn hc_table[VMLWC_NR_PORTS];
	int tgid;
	uint64_t syncs, kicks;                /* run_sync_others calls, vCPUs kicked out of KVM_RUN */
};

#endif
