/* The library's state: struct vm, one sub-struct per module, in the one object g_vm_store. */
#ifndef VMLWC_STATE_H
#define VMLWC_STATE_H

#include "base.h"
#include "config.h"
#include "arena.h"
#include "memmap.h"
#include "ptpage.h"
#include "pgtable.h"
#include "pool.h"
#include "memrange.h"
#include "trace.h"
#include "vcpu.h"
#include "cpu.h"
#include "loader.h"
#include "run.h"
#include "cred.h"
#include "fdtab.h"
#include "sigtab.h"
#include "fsctx.h"
#include "policy.h"
#include "sysdesc.h"
#include "lwc_host.h"
#include "view.h"
#include "sandbox.h"
#include "init.h"
#include "thread.h"
#include "vmlock.h"

/*
 * Each module's state is its own sub-struct, declared next to that module's prototypes; the
 * comment there says what guards it with several vCPUs: vm_lock, unless the field names its
 * atomics or says it is read-only after init. Per-vCPU state is
 * struct vcpu, per-lwC state struct lwc.
 */
struct vm {
	struct vmlock_state lock;  /* vmlock.h: the lock every other part of this struct is under */
	struct config cfg;         /* config.h: environment, read once at init */
	struct trace_state trace;  /* trace.h */
	struct arena arena;        /* arena.h */
	struct memmap_state mm;    /* memmap.h */
	struct ptpage_state ptp;   /* ptpage.h */
	struct pool_state pool;    /* pool.h */
	struct memrange_state mem; /* memrange.h */
	struct kvm_state kvm;      /* vcpu.h */
	struct cpu_state cpu;      /* cpu.h */
	struct run_state run;      /* run.h */
	struct pt_state pt;        /* pgtable.h */
	struct stub_state stub;    /* loader.h */
	struct fdtab_state fdt;    /* fdtab.h */
	struct cred_state cred;    /* cred.h */
	struct sig_state sig;      /* sigtab.h */
	struct fsctx_state fs;     /* fsctx.h */
	struct policy_state policy; /* policy.h */
	struct sys_state sys;      /* sysdesc.h */
	struct lwc_state lwc;      /* lwc_host.h */
	struct view_state view;    /* view.h */
	struct sandbox_state sandbox; /* sandbox.h */
	struct init_state init;    /* init.h */
	struct thread_state thread; /* thread.h */
};

/*
 * All mutable host state lives in this one page-aligned object, which no guest page table
 * maps: the application's memory (heap, the library's .data) is the guest's to scribble on.
 */
union vm_store {
	struct vm vm;
	char pad[(sizeof(struct vm) + 4095) & ~4095UL];
};
extern union vm_store g_vm_store;
#define g_vm (g_vm_store.vm)

#endif
