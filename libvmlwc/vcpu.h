/* The VM and its vCPUs: /dev/kvm, struct vcpu (kvm.c). */
#ifndef VMLWC_VCPU_H
#define VMLWC_VCPU_H

#include <linux/kvm.h>
#include "base.h"
#include "cred.h"
#include "run.h"

struct vm;
struct sys_call;

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
	void *host_stack;
	size_t host_stack_size;
	char *bounce;         /* per-vCPU bounce area for non-contiguous guest buffers */
	size_t bounce_size;
	struct sys_call *call;  /* sys/'s marshalling storage of the call in flight: arena pages (sys_vcpu_init) */
	int call_busy;          /* call is in use: a nested sys_dispatch fails with EDEADLK */
	int tid;
	/* the thread's own state, which several vCPUs (one per thread) will each have */
	struct enter_ctx enter;  /* the thread as vmlwc_init captured it (the first entry's registers) */
	long enter_err;          /* why entering failed, set on the host stack before resuming natively */
	struct cred cred_now;    /* the ids the host thread runs under now (cred_apply) */
	uint8_t sig_altstack[24]; /* the guest's sigaltstack, recorded (the host thread keeps its own) */
};

int kvm_open_vm(struct vm *vm);         /* 0, or -1 with the reason set */
void kvm_close_vm(struct vm *vm);
struct vcpu *vcpu_create(struct vm *vm); /* NULL with the reason set */
void vcpu_destroy(struct vcpu *v);
int vcpu_stats_read(struct vcpu *v, uint64_t *exits, uint64_t *insns); /* 0 or -EIO */
long vcpu_msr(struct vcpu *v, uint32_t idx, uint64_t *val, int set); /* 0 or -errno */

/*
 * g_vm.kvm. Set at init, read-only after (no lock), except vcpus and nvcpus: shared between
 * vCPUs, vcpu_lock will guard them (one vCPU: no lock yet).
 */
struct kvm_state {
	int kvm_fd, vm_fd;
	int run_size;
	unsigned max_memslots;
	int has_tsc_attr;
	struct vcpu *vcpus[VMLWC_MAX_VCPUS];
	unsigned nvcpus;
};

#endif
