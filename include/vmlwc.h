/* vmlwc public API: light-weight contexts for Linux processes on KVM. */
#ifndef VMLWC_H
#define VMLWC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMLWC_VERSION_MAJOR 0
#define VMLWC_VERSION_MINOR 2
#define VMLWC_VERSION_PATCH 0

#if defined(VMLWC_BUILDING) && defined(__GNUC__)
#define VMLWC_API __attribute__((visibility("default")))
#else
#define VMLWC_API
#endif

/* Compile-time check against the header's version: true when it is at least major.minor. */
#define VMLWC_CHECK_VERSION(major, minor)                                                       \
	(VMLWC_VERSION_MAJOR > (major) || (VMLWC_VERSION_MAJOR == (major) && VMLWC_VERSION_MINOR >= (minor)))

/* vmlwc_config.flags: the tuning knobs, each also an environment variable (either turns it on) */
#define VMLWC_F_TRACE 0x1        /* VMLWC_TRACE=1: a line per redirected syscall on stderr */
#define VMLWC_F_EAGER_TABLES 0x2 /* VMLWC_EAGER_TABLES=1: lwc_create copies page tables whole */
#define VMLWC_F_NO_PCID 0x4      /* VMLWC_NO_PCID=1: never tag CR3 with PCIDs */
#define VMLWC_F_ALL (VMLWC_F_TRACE | VMLWC_F_EAGER_TABLES | VMLWC_F_NO_PCID)

struct vmlwc_config {
	size_t pool_bytes;  /* frame pool ceiling; 0 -> default */
	unsigned flags;     /* VMLWC_F_* bits; any other bit: EINVAL */
};

/* Enter the guest. 0 inside the guest; -1 and errno with the process untouched. */
VMLWC_API int vmlwc_init(const struct vmlwc_config *cfg);
/* 1 when the calling thread runs in the guest. */
VMLWC_API int vmlwc_active(void);
VMLWC_API const char *vmlwc_version(void);
/* The library's version at run time (the header's is VMLWC_VERSION_*). */
VMLWC_API int vmlwc_major_version(void);
VMLWC_API int vmlwc_minor_version(void);
/* 1 when the library linked at run time is at least major.minor (same major), else 0. */
VMLWC_API int vmlwc_check_version(int major, int minor);
/* Human-readable reason for the last vmlwc_init failure of this thread ("" if none). */
VMLWC_API const char *vmlwc_strerror(void);

struct vmlwc_stats {
	uint64_t vm_exits;        /* returns of KVM_RUN to the library (exits to user space) */
	uint64_t hv_exits;        /* all exits into the hypervisor: KVM binary stat "exits" */
	uint64_t emulated_insns;  /* KVM binary stat "insn_emulation" */
	uint64_t hypercalls, syscalls_redirected, lwc_switches, lwc_creates,
		 cow_faults, page_faults;
	uint64_t platform;        /* VMLWC_PLATFORM_* bits: what vmlwc_init found and chose */
};

/* vmlwc_stats().platform: the hypervisor's cost model decides each path at vmlwc_init. */
#define VMLWC_PLATFORM_TDP        0x1  /* two-dimensional paging (EPT/NPT); else shadow paging */
#define VMLWC_PLATFORM_PVM        0x2  /* ring-3 `syscall` stays at CPL 3, ring 0 is emulated (kvm_pvm) */
#define VMLWC_PLATFORM_HOST_COW   0x4  /* copy-on-write and page-table copies on the host (1 exit) */
#define VMLWC_PLATFORM_LWC_DOORBELL 0x8 /* lwC calls other than lwc_switch ring a doorbell from ring 3 */
#define VMLWC_PLATFORM_FSGSBASE   0x10 /* ring 3 may write its TLS bases: each lwC restores its own */
#define VMLWC_PLATFORM_XSAVE      0x20 /* a switch clears every vector register with XRSTOR */
#define VMLWC_PLATFORM_LAZY_TABLES 0x40 /* page tables shared at lwc_create, copied on first write */
#define VMLWC_PLATFORM_PCID       0x80 /* lwC trees tagged with PCIDs */
VMLWC_API int vmlwc_stats(struct vmlwc_stats *st);

struct lwc_rspec {
	unsigned flags;  /* one resource type | one option */
	union {
		struct { uintptr_t start, end; } mem;  /* page-aligned, end exclusive */
		struct { int from, to; } fds;          /* inclusive; -1,-1 = the whole table */
	} u;
};

#define LWC_MEM 0x1
#define LWC_FILES 0x2
#define LWC_CRED 0x4
#define LWC_COPY 0x0
#define LWC_SHARE 0x8
#define LWC_UNMAP 0x10
#define LWC_MAY_OVERLAY 0x20    /* rights (lwc_restrict keeps, lwc_create grants the child for its creator): */
#define LWC_MAY_SWITCH 0x100    /*   lwc_switch through the descriptor (a spec with no resource type) */
#define LWC_MAY_SYSCALL 0x200   /*   lwc_syscall with the spec's resource type in the mask */
#define LWC_TRAP_SYSCALL 0x80
#define LWC_MAX_ARGS 8
#define LWC_SWITCHED (-2)

struct lwc_msg {
	int src;
	int nargs;
	long args[LWC_MAX_ARGS];
};

VMLWC_API int lwc_create(const struct lwc_rspec *specs, int nspecs, int flags, struct lwc_msg *in);
VMLWC_API int lwc_switch(int to, const long *args, int nargs, struct lwc_msg *in);
VMLWC_API int lwc_switch_discard(int to, const long *args, int nargs);
VMLWC_API int lwc_self(void);
VMLWC_API int lwc_close(int lwc);
VMLWC_API int lwc_overlay(int from, const struct lwc_rspec *specs, int nspecs);
VMLWC_API int lwc_restrict(int lwc, const struct lwc_rspec *specs, int nspecs);
VMLWC_API long lwc_syscall(int lwc, unsigned mask, long nr, const long args[6]);
VMLWC_API int lwc_limit_syscalls(const long *allowed, int n);

#ifdef __cplusplus
}
#endif
#endif
