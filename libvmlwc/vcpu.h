/* The VM and its vCPUs: /dev/kvm, struct vcpu (kvm.c). */
#ifndef VMLWC_VCPU_H
#define VMLWC_VCPU_H

#include <linux/kvm.h>
#include "base.h"
#include "cred.h"
#include "run.h"

struct vm;
struct sys_call;

#define VMLWC_PINS 1024
#define VMLWC_FD_PINS 256

struct vcpu {
	int index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	int stats_fd;
	uint64_t stat_off_exits, stat_off_insns; /* byte offsets in the stats data, -1 if absent */
	uintptr_t area;       /* HVA of the per-vCPU area */
	uint64_t area_kva;
	struct lwc *lwc;
	gpa_t pending_cr3;    /* root the stub must load before returning to ring 3 */
	int test_fault_pending; /* the frame was pointed into ring 0 by a test hook */
	int cpuid_set;          /* KVM_SET_CPUID2 done */
	int via_doorbell;       /* this exit came from ring 3 (a doorbell), not through the stub */
	uint64_t resume_rip, resume_rflags; /* an lwC call resumes there instead (0: where it was) */
	uint64_t call_rip, call_rflags;     /* where the lwC call in progress returns */
	int set_rsp;            /* frame_return_to_user also sets rsp to new_rsp */
	uint64_t new_rsp;
	gpa_t deferred_tree;   /* page tables replaced whole: freed once the new root is loaded */
	int nscrubbing;         /* pages handed to the stub's scrub on the last return */
	gpa_t scrubbing[VMLWC_SCRUB_MAX];
	int ndeferred;         /* single pages replaced by transactions, freed likewise */
	gpa_t deferred[256];
	uint64_t nexits, nhypercalls, nsyscalls, npagefaults;
	uint64_t retry_rip, retry_addr, retry_exit; /* the last fault retried as already resolved (own vCPU only) */
	unsigned nretries;
	void *host_stack;
	size_t host_stack_size;
	char *bounce;         /* per-vCPU bounce area for non-contiguous guest buffers */
	size_t bounce_size;
	struct sys_call *call;  /* sys/'s marshalling storage of the call in flight: arena pages (sys_vcpu_init) */
	int call_busy;          /* call is in use: a nested sys_dispatch fails with EDEADLK */
	/*
	 * Pool frames the call in flight reaches (uaccess pins them: one more reference each), so
	 * that a syscall run without vm_lock never writes into a frame another thread freed meanwhile.
	 * Dropped at the end of the call. Over VMLWC_PINS, the call keeps the lock instead.
	 */
	int pinning, npins, pin_overflow;
	gpa_t pins[VMLWC_PINS];
	/*
	 * Host fds the call in flight translated (sys_fd), one more reference each, so that a call
	 * run without vm_lock never reaches a file another lwC opened under the same number after
	 * this lwC's other thread closed it. Over VMLWC_FD_PINS, the call keeps the lock.
	 */
	int nfdpins;
	int fdpins[VMLWC_FD_PINS];
	int tid;
	/* read by other vCPUs' threads (run_sync_others): atomics */
	int in_guest;           /* 1 from before KVM_RUN until after it returns (set under vm_lock) */
	int kick_waiter;        /* another thread waits (futex on in_guest) for this one to leave */
	int park;               /* the guest thread exited: the host thread waits (futex) for a clone */
	/* the guest thread's own, under vm_lock (thread.c) */
	void *tls;              /* the host thread's TLS block (arena pages): never the guest's */
	gva_t clear_tid;        /* CLONE_CHILD_CLEARTID / set_tid_address: cleared and woken at exit */
	uint64_t clear_tid_serial; /* in the lwC it was set in (its serial) */
	gva_t robust_list;      /* set_robust_list: released at exit as the kernel does */
	uint64_t robust_serial;
	void *rseq_host;        /* rseq: the area's host address, registered on the host thread */
	gva_t rseq_gva;
	uint32_t rseq_len, rseq_sig;
	/* the thread's own state (one vCPU per thread): its host thread's alone, or under vm_lock */
	struct enter_ctx enter;  /* the thread as vmlwc_init captured it (the first entry's registers) */
	long enter_err;          /* why entering failed, set on the host stack before resuming natively */
	struct cred cred_now;    /* the ids the host thread runs under now (cred_apply) */
	uint8_t sig_altstack[24]; /* the guest's sigaltstack, recorded (the host thread keeps its own) */
	/* signals (sigdeliver.c): pending bits set by the host handler (atomic), the rest under vm_lock */
	uint64_t sig_pending;      /* thread-directed signals recorded for this thread */
	uint8_t sig_info[65][128]; /* their siginfo (the first of each signal) */
	int sig_sync;              /* a fault's signal to deliver (force_sig), 0 if none */
	int sig_sync_trap;         /* trapno, err, cr2 below are the fault's */
	uint8_t sig_sync_info[128];
	uint64_t sig_trapno, sig_err, sig_cr2;
	uint64_t sig_saved_mask;   /* sigsuspend: the mask the frame saves and sigreturn restores */
	int sig_restore_mask;
	long intr_nr;              /* a redirected syscall that returned -EINTR: its number, or -1 */
	uint64_t intr_rip;         /* its return address (restarted at rip - 2) */
	int sigreturn;             /* rt_sigreturn: the return restores every register */
	uint64_t sigreturn_rsp, sigreturn_rip, sigreturn_rflags;
};

int kvm_open_vm(struct vm *vm);         /* 0, or -1 with the reason set */
void kvm_close_vm(struct vm *vm);
struct vcpu *vcpu_create(struct vm *vm); /* NULL with the reason set (init) */
/* The same from raw syscalls, at run time too: NULL with *err = -errno and *what the failing step */
struct vcpu *vcpu_new(struct vm *vm, long *err, const char **what);
void vcpu_destroy(struct vcpu *v);
int kvm_run_area_reserve(struct vm *vm); /* at init, before the first vCPU: 0, or -1 with the reason set */
int vcpu_stats_read(struct vcpu *v, uint64_t *exits, uint64_t *insns); /* 0 or -EIO */
long vcpu_msr(struct vcpu *v, uint32_t idx, uint64_t *val, int set); /* 0 or -errno */

/*
 * g_vm.kvm. Set at init, read-only after (no lock), except vcpus and nvcpus: appended under
 * vm_lock, never removed (a thread's exit parks its vCPU), read with an acquire load of nvcpus.
 */
struct kvm_state {
	int kvm_fd, vm_fd;
	int run_size;
	unsigned max_memslots;
	int has_tsc_attr;
	struct vcpu *vcpus[VMLWC_MAX_VCPUS];
	unsigned nvcpus;           /* grows under vm_lock, read by any thread with an acquire load */
	uint64_t stat_off_exits, stat_off_insns; /* binary stats layout, the same for every vCPU */
	uintptr_t run_area;        /* reserved (protected) region: one kvm_run slot per possible vCPU */
};

#endif
