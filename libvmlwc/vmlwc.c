/* Public entry points: vmlwc_init moves the calling thread into the guest; version and stats. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <asm/prctl.h>
#include <sys/syscall.h>
#include <sys/auxv.h>
#include <stdio.h>

#include "base.h"
#include "arena.h"
#include "config.h"
#include "cpu.h"
#include "cred.h"
#include "die.h"
#include "errors.h"
#include "fdtab.h"
#include "hypercall.h"
#include "init.h"
#include "loader.h"
#include "lwc_host.h"
#include "memmap.h"
#include "memrange.h"
#include "pgtable.h"
#include "policy.h"
#include "pool.h"
#include "procmaps.h"
#include "ptpage.h"
#include "rawsys.h"
#include "run.h"
#include "sandbox.h"
#include "sigdeliver.h"
#include "stats.h"
#include "sysdesc.h"
#include "trace.h"
#include "vcpu.h"
#include "view.h"
#include "state.h"

#define ARENA_FIXED (256UL << 20)     /* stub window, kernel tables, stacks, shadows, lwCs */
#define PT_REGION (1UL << 30)         /* user page tables (eager): 512 chunks, lazily backed */
#define POOL_DEFAULT (1UL << 30)      /* frame pool ceiling, lazily backed */
#define STACK_PREGROW (8UL << 20)
#define STACK_GUARD_GAP (1UL << 20)

/*
 * 1 once the process runs in the guest. Every thread does then: vmlwc_init refuses a process
 * with other threads, and threads created afterwards are guest threads. Library data, so guest
 * memory: read from ring 3 (host state is not mapped there); a guest that clears it fools only
 * itself, since g_vm.init.live (never mapped) is what refuses a second entry on the host.
 */
static int guest_active;
/*
 * A vmlwc_init under way, or done (atomic exchange: one attempt at a time). Outside g_vm_store,
 * which a failed attempt clears whole; once in the guest this word is guest memory, but then
 * g_vm.init.live, which no guest maps, refuses every further call first.
 */
static int init_claimed;

VMLWC_API const char *vmlwc_version(void)
{
#define S_(x) #x
#define S(x) S_(x)
	return S(VMLWC_VERSION_MAJOR) "." S(VMLWC_VERSION_MINOR) "." S(VMLWC_VERSION_PATCH);
}

VMLWC_API int vmlwc_major_version(void)
{
	return VMLWC_VERSION_MAJOR;
}

VMLWC_API int vmlwc_minor_version(void)
{
	return VMLWC_VERSION_MINOR;
}

/* In 0.x each minor version may change the ABI (it is in the soname): at least, within a major. */
VMLWC_API int vmlwc_check_version(int major, int minor)
{
	return major == VMLWC_VERSION_MAJOR && minor <= VMLWC_VERSION_MINOR;
}

VMLWC_API int vmlwc_active(void)
{
	return __atomic_load_n(&guest_active, __ATOMIC_RELAXED);
}

struct pin_ctx {
	const uint64_t *addrs;
	unsigned naddrs;
	char paths[6][256];
	unsigned npaths;
};

static int pin_find(const struct procmaps_entry *e, void *arg)
{
	struct pin_ctx *p = arg;

	for (unsigned i = 0; i < p->naddrs; i++)
		if (p->addrs[i] >= e->start && p->addrs[i] < e->end && e->path[0] == '/' && p->npaths < 6) {
			unsigned k;
			for (k = 0; k < p->npaths && strcmp(p->paths[k], e->path); k++)
				;
			if (k == p->npaths)
				snprintf(p->paths[p->npaths++], sizeof(p->paths[0]), "%s", e->path);
		}
	return 0;
}

static int pin_add(const struct procmaps_entry *e, void *arg)
{
	struct pin_ctx *p = arg;

	for (unsigned k = 0; k < p->npaths; k++)
		if (strcmp(p->paths[k], e->path) == 0 && mem_pin_add(e->start, e->end) < 0)
			return -1;
	return 0;
}

/*
 * The host side runs this library's code and the C library's (memcpy, memset...) while it
 * handles the guest: the guest may read and run those files' mappings, never remap them.
 */
int mem_pin_host_code(void)
{
	const uint64_t addrs[] = { (uint64_t)vmlwc_init, (uint64_t)memcpy, (uint64_t)memset,
				   (uint64_t)strcmp, (uint64_t)getauxval };
	struct pin_ctx p = { .addrs = addrs, .naddrs = ARRAY_SIZE(addrs) };

	g_vm.mem.npin = 0;
	procmaps_each(pin_find, &p);
	return procmaps_each(pin_add, &p) < 0 ? -1 : 0;
}

/* ---- building the root lwC ---- */

#define build_ctx root_build_ctx

static long build_range(uint64_t a, uint64_t n, void *arg)
{
	struct build_ctx *b = arg;

	return pt_txn_set(&b->t, a, n, a, b->flags); /* memslot blocks come with the pages */
}

/* Mirror one host mapping, minus library memory, into the user half. */
int root_map_entry(const struct procmaps_entry *e, void *arg)
{
	struct build_ctx *b = arg;
	uint64_t end = e->end > USER_TOP ? USER_TOP : e->end;
	long r;

	/* PROT_NONE mappings too, not present with their frames: a later mprotect finds them */
	b->flags = pt_prot_flags(e->prot) ?: VMLWC_PTE_PROTNONE;
	if (e->start >= end || !(b->flags & VMLWC_PTE_PROTNONE) != !b->prot_none_pass)
		return 0;
	if (e->shared)
		b->flags |= VMLWC_PTE_SHARED;
	r = mem_each_unprotected(e->start, end - e->start, build_range, b);
	if (r < 0 && (b->flags & VMLWC_PTE_PROTNONE) && (r == -ENOMEM || r == -ENOSPC)) {
		/* a reservation the table or memslot budget cannot describe (sanitizers' shadow
		   maps): left out, as everything PROT_NONE was in 0.2.0; it becomes usable again only
		   while the root is alone (lazy fill) */
		if (g_vm.cfg.trace)
			trace_msg("PROT_NONE mapping %#lx-%#lx left out of the root's view: %s", e->start, end,
				  strerror((int)-r));
		return 0;
	}
	if (r < 0) {
		b->err = (int)r;
		return 1;
	}
	return 0;
}

int root_map_all(struct build_ctx *b)
{
	int r;

	for (b->prot_none_pass = 0; b->prot_none_pass < 2; b->prot_none_pass++)
		if ((r = procmaps_each(root_map_entry, b)) < 0 || (r = b->err) < 0)
			return r;
	return 0;
}

static int find_stack(const struct procmaps_entry *e, void *arg)
{
	struct build_ctx *b = arg;

	if (strcmp(e->path, "[stack]") == 0) {
		b->stack_lo = e->start;
		b->stack_hi = e->end;
		b->below_stack = b->prev_end;
		return 1;
	}
	b->prev_end = e->end;
	return 0;
}

/* KVM cannot grow a stack: extend the main thread's stack mapping now, within its limit. */
static void stack_pregrow(void)
{
	struct build_ctx b = { .prev_end = 0 };
	struct rlimit rl;
	uint64_t want, floor;

	if (procmaps_each(find_stack, &b) < 0 || !b.stack_lo)
		return;
	if (getrlimit(RLIMIT_STACK, &rl) < 0)
		return;
	want = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > STACK_PREGROW ? STACK_PREGROW : rl.rlim_cur;
	if (b.stack_hi - b.stack_lo + 2 * PAGE_SIZE >= want)
		return;
	want = b.stack_hi - want + 2 * PAGE_SIZE;
	floor = b.below_stack + STACK_GUARD_GAP + PAGE_SIZE;
	if (want < floor)
		want = floor;
	for (uint64_t a = PAGE_ALIGN_DOWN(b.stack_lo) - PAGE_SIZE; a >= want; a -= PAGE_SIZE)
		(void)*(volatile char *)a;
}

static int fdtab_fill(struct fdtab *t)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int self;

	if (!d)
		return err_set(errno, "opendir /proc/self/fd: %s", strerror(errno));
	self = dirfd(d);
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		int flags;

		if (*end || de->d_name[0] == '.' || fd == self)
			continue;
		if (fd == g_vm.kvm.kvm_fd || fd == g_vm.kvm.vm_fd || fd == g_vm.trace.fd || fd == g_vm.mem.self_mem_fd)
			continue;
		int lib = 0;
		for (unsigned i = 0; i < g_vm.kvm.nvcpus; i++)
			lib |= fd == g_vm.kvm.vcpus[i]->fd || fd == g_vm.kvm.vcpus[i]->stats_fd;
		if (lib || policy_fd_allowed((int)fd) < 0)
			continue; /* never in a table: see policy.c */
		flags = fcntl((int)fd, F_GETFD);
		if (fdtab_install_at(t, fd, (int)fd) < 0) {
			closedir(d);
			return err_set(EMFILE, "fd %ld: not below RLIMIT_NOFILE (%u), or no arena for the descriptor shadow",
				       fd, fdtab_cap(t));
		}
		fdtab_set_cloexec(t, fd, flags >= 0 && (flags & FD_CLOEXEC));
	}
	closedir(d);
	return 0;
}

static struct lwc *root_build(void)
{
	struct lwc *l = lwc_root_new();
	struct build_ctx b;
	gpa_t root;
	int r;

	if (!l) {
		err_set(ENOMEM, "arena exhausted (lwC)");
		return NULL;
	}
	struct fdtab *t = fdtab_new(64);
	if (t)
		lwc_attach_fds(l, t);
	if (!l->fds) {
		err_set(ENOMEM, "arena exhausted (descriptor shadow)");
		return NULL;
	}
	if (fdtab_fill(l->fds) < 0)
		return NULL;
	root = pt_new_root();
	if (root != GPA_NONE)
		pt_root_tag_set(root, l->s.id + 1);
	if (root == GPA_NONE) {
		err_set(ENOMEM, g_vm.pt.lazy_tables ? "frame pool exhausted (page tables): raise pool_bytes"
						 : "arena exhausted (page tables)");
		return NULL;
	}
	memset(&b, 0, sizeof(b));
	pt_txn_begin(&b.t, root);
	r = root_map_all(&b);
	if (r < 0) {
		err_set(-r, "building the root page table from /proc/self/maps: %s%s", strerror(-r),
			g_vm.pt.lazy_tables ? " (page tables come from the frame pool: pool_bytes)" : "");
		return NULL;
	}
	/* the gate window: library memory for the mmap family and for lwC specs */
	r = memmap_ensure(VMLWC_GATE_VA, PAGE_SIZE);
	if (r == 0)
		r = pt_txn_set(&b.t, VMLWC_GATE_VA, PAGE_SIZE, VMLWC_GATE_VA, PTE_P | PTE_U | PTE_A);
	if (r == 0)
		r = lwc_map_own_pages(l, &b.t);
	if (r == 0) /* no memslot behind it: a store exits to the host */
		r = pt_txn_set_leaf(&b.t, VMLWC_DOORBELL_VA, VMLWC_DOORBELL_GPA | PTE_P | PTE_W | PTE_U | PTE_A |
				    PTE_D | VMLWC_PTE_SHARED | (g_vm.cpu.has_nx ? PTE_NX : 0));
	if (r < 0) {
		err_set(-r, "mapping the lwC gate window: %s", strerror(-r));
		return NULL;
	}
	lwc_set_root(l, pt_txn_commit(&b.t));
	l->refs = 1;
	l->ctx_mask = 1; /* the entering thread, vCPU 0, runs in it */
	if (cred_init(&g_vm.cred.at_init) < 0 || !(l->cred = cred_new(&g_vm.cred.at_init))) {
		err_set(ENOMEM, "reading the process's credentials");
		return NULL;
	}
	l->brk_start = l->brk_cur = (uint64_t)RAW1(SYS_brk, 0);
	return l;
}

extern const unsigned char vmlwc_gate_page[4096];

/*
 * The gate window at VMLWC_GATE_VA: the gate page's code (gate_x86_64.S) on the host at its
 * guest address, the rest reserved (each lwC's own pages there are arena frames).
 */
static int gate_map(void)
{
	size_t len = VMLWC_GATE_PAGES * PAGE_SIZE;
	void *p = mmap((void *)VMLWC_GATE_VA, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED || p != (void *)VMLWC_GATE_VA) {
		if (p != MAP_FAILED)
			munmap(p, len);
		return err_set(EEXIST, "the lwC gate window %#lx..%#lx is already mapped", VMLWC_GATE_VA,
			       VMLWC_GATE_VA + len);
	}
	if (mprotect(p, PAGE_SIZE, PROT_READ | PROT_WRITE) < 0) {
		err_set(errno, "mprotect of the gate page (writable): %s", strerror(errno));
		goto unmap;
	}
	memcpy(p, vmlwc_gate_page, PAGE_SIZE);
	if (mprotect(p, PAGE_SIZE, PROT_READ | PROT_EXEC) < 0) {
		err_set(errno, "mprotect of the gate page (read and execute): %s", strerror(errno));
		goto unmap;
	}
	if (mem_protect_add(VMLWC_GATE_VA, len) == 0)
		return 0;
unmap:
	/* init_undo unmaps the window only once it is protected: until then it is this function's */
	{
		int e = errno;
		munmap(p, len);
		errno = e;
	}
	return -1;
}

/* The gate page's flags, from what the platform probe found (read-only to the guest). */
static int gate_configure(void)
{
	uint64_t *flags = (uint64_t *)(VMLWC_GATE_VA + VMLWC_GATE_FLAGS);
	uint64_t f = 0;

	if (g_vm.cpu.fsgsbase_user)
		f |= VMLWC_GF_FSGSBASE;
	if (g_vm.cpu.syscall_cpl3)
		f |= VMLWC_GF_DOORBELL;
	if (g_vm.cpu.xcr0_user)
		f |= VMLWC_GF_XSAVE;
	g_vm.init.gate_flags = f; /* the host's own copy: it never reads guest memory for its decisions */
	if (mprotect((void *)VMLWC_GATE_VA, PAGE_SIZE, PROT_READ | PROT_WRITE) < 0)
		return err_set(errno, "mprotect of the gate page (writable): %s", strerror(errno));
	flags[0] = f;
	/* every state component but PKRU (permissions, not data) and AMX tiles (off unless asked) */
	flags[1] = g_vm.cpu.xcr0_user & ~((1UL << 9) | (1UL << 17) | (1UL << 18));
	if (mprotect((void *)VMLWC_GATE_VA, PAGE_SIZE, PROT_READ | PROT_EXEC) < 0)
		return err_set(errno, "mprotect of the gate page (read and execute): %s", strerror(errno));
	return 0;
}

/* Page-table pages may be reused only where the hypervisor pages in two dimensions. */
static int tdp_detect(void)
{
	static const char *const params[] = { "/sys/module/kvm_intel/parameters/ept",
					      "/sys/module/kvm_amd/parameters/npt" };
	char c = 0;

	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return 0;
	if (g_vm.cfg.test_shadow_paging) /* test hook: exercise the shadow-paging path */
		return 0;
	for (unsigned i = 0; i < ARRAY_SIZE(params); i++) {
		int fd = open(params[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (read(fd, &c, 1) != 1)
			c = 0;
		close(fd);
		if (c == 'Y' || c == '1')
			return 1;
	}
	return 0;
}

/* ---- entering ---- */


__attribute__((noreturn)) void vmlwc_resume_native(struct enter_ctx *ctx, long ret);

static void enter_guest(void *arg)
{
	struct vcpu *v = arg;
	struct kvm_regs r;

	memset(&r, 0, sizeof(r));
	r.rip = v->enter.rip;
	r.rsp = v->enter.rsp;
	r.rbx = v->enter.rbx;
	r.rbp = v->enter.rbp;
	r.r12 = v->enter.r12;
	r.r13 = v->enter.r13;
	r.r14 = v->enter.r14;
	r.r15 = v->enter.r15;
	r.rcx = v->enter.fcw;
	r.rdx = v->enter.mxcsr;
	r.rflags = 0x202;
	if (RAW3(SYS_ioctl, v->fd, KVM_SET_REGS, &r) < 0) {
		v->enter_err = EIO;
		vmlwc_resume_native(&v->enter, -1);
	}
	v->tid = (int)RAW0(SYS_gettid);
	/* past the last failure point: the host's signal handlers become the library's, the
	   application's dispositions the root lwC's, the thread's mask its mask in the root */
	uint64_t mask = 0, none = 0;
	RAW4(SYS_rt_sigprocmask, SIG_BLOCK, 0, &mask, 8);
	v->lwc->sigmasks[v->index] = mask & ~((1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1)) |
					      (1UL << (VMLWC_SIG_KICK - 1)));
	RAW2(SYS_sigaltstack, 0, v->sig_altstack); /* the thread's alternate stack is the guest's */
	sig_init();
	run_init_kick();
	sig_deliver_init();
	RAW4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8); /* the host thread blocks nothing of the guest's */
	run_loop(v);
}

static void init_undo(struct vcpu *v)
{
	if (v) {
		g_vm.kvm.vcpus[--g_vm.kvm.nvcpus] = NULL;
		vcpu_destroy(v);
	}
	if (g_vm.trace.fd >= 0)
		close(g_vm.trace.fd);
	g_vm.trace.fd = -1;
	kvm_close_vm(&g_vm);
	mem_force_close();
	arena_fini(&g_vm.arena);
	if (g_vm.mem.nprotect && mem_is_protected(VMLWC_GATE_VA, PAGE_SIZE))
		munmap((void *)VMLWC_GATE_VA, VMLWC_GATE_PAGES * PAGE_SIZE);
	g_vm.mem.nprotect = 0;
	memset(&g_vm.mm, 0, sizeof(g_vm.mm));
	g_vm.lwc.nlwcs = 0;
	memset(g_vm.lwc.lwcs, 0, sizeof(g_vm.lwc.lwcs));
	free(g_vm.cpu.cpuid);
	g_vm.cpu.cpuid = NULL;
	/* nothing of this attempt may reach the next one (the descriptor shadow's counts, the lwC
	   table, the memslots...): the whole state as before the first call, the claim released last */
	memset(&g_vm_store, 0, sizeof(g_vm_store));
	g_vm.trace.fd = -1;
	g_vm.mem.self_mem_fd = -1;
	__atomic_store_n(&init_claimed, 0, __ATOMIC_RELEASE);
}

/* What vmlwc_init's steps hand on to each other. */
struct init_ctx {
	size_t pool;          /* frame pool ceiling (vmlwc_config.pool_bytes) */
	struct vcpu *v;       /* the calling thread's vCPU, once created */
	uint64_t fs_base, gs_base;
};

/* /dev/kvm, the VM and the CPUID the guest will see. */
static int init_kvm(struct init_ctx *c)
{
	(void)c;
	if (kvm_open_vm(&g_vm) < 0)
		return -1;
	return cpu_setup_cpuid(&g_vm);
}

/* The arena, its GPA window and memslots, the page-table chunks, the kernel half. */
static int init_memory(struct init_ctx *c)
{
	size_t size = ARENA_FIXED + PT_REGION + c->pool;
	uintptr_t pt_lo;
	const char *why;
	int e;

	if (arena_init(&g_vm.arena, size) < 0)
		return err_set(ENOMEM, "arena: mmap of %zu bytes failed", size);
	g_vm.mem.nprotect = 0;
	if (mem_protect_add((uint64_t)&g_vm_store, sizeof(g_vm_store)) < 0 || mem_force_open() < 0)
		return -1;
	pt_lo = g_vm.arena.base + VMLWC_STUB_SPAN; /* the page-table chunks, right after the stub window */
	if ((e = memmap_library(g_vm.arena.base, g_vm.arena.size, pt_lo, pt_lo + PT_REGION, &why)) < 0)
		return err_set(-e, "guest-physical layout (MAXPHYADDR %u, library window %#lx..%#lx): %s: %s",
			       g_vm.cpu.maxphy, VMLWC_LIB_GPA, VMLWC_LIB_GPA + g_vm.arena.size, why, strerror(-e));
	/* the first 2 MiB of the arena are the stub window, the page-table chunks follow */
	if (!arena_pages(&g_vm.arena, VMLWC_STUB_SPAN / PAGE_SIZE) ||
	    arena_pages(&g_vm.arena, PT_REGION / PAGE_SIZE) != (void *)pt_lo)
		return err_set(ENOMEM, "arena too small");
	g_vm.pt.tdp = tdp_detect();
	if (err_check(ptpage_init(pt_lo, PT_REGION, memmap_slot_reserve(PT_REGION / PTPAGE_CHUNK), !g_vm.pt.tdp),
		      "memslots for page-table chunks") < 0)
		return -1;
	return err_check(pt_init_kernel(), "kernel half of the guest page tables");
}

/* The stub, the frame pool, the gate window, the vCPU areas and the IDT. */
static int init_stub(struct init_ctx *c)
{
	int e;

	if (loader_load_stub(&g_vm) < 0)
		return -1;
	if ((e = pool_init(c->pool)) < 0)
		return err_set(-e, "frame pool of %zu bytes: %s", c->pool, strerror(-e));
	*g_vm.stub.smap = (uint64_t)g_vm.cpu.has_smap;
	/* subtrees shared at lwc_create, copied on the first write below: by the stub where ring 0
	   is native and tables may be edited in place (EPT/NPT), else by the host (set after the
	   platform probe, see init_platform) */
	g_vm.pt.lazy_tables = !g_vm.cfg.eager_tables;
	/* PCID-tagged CR3 where the guest CPU has PCID (not on PVM); VMLWC_NO_PCID=1 turns it off */
	g_vm.cpu.pcid = g_vm.cpu.has_pcid && !g_vm.cfg.no_pcid;
	g_vm.pool.hdr->cr3_noflush = g_vm.cpu.pcid ? VMLWC_CR3_NOFLUSH : 0;
	if (gate_map() < 0)
		return -1;
	if (pt_kernel_map(VMLWC_STUB_KVA + VMLWC_VCPU_AREA_OFF, g_vm.arena.base + VMLWC_VCPU_AREA_OFF,
			  (uint64_t)VMLWC_MAX_VCPUS * VMLWC_VCPU_AREA_SIZE, PTE_W | PTE_D | PTE_NX) < 0)
		return err_set(ENOMEM, "mapping the vCPU areas");
	cpu_fill_idt(&g_vm);
	trace_init();
	return 0;
}

/* The calling thread's vCPU, its bounce area and call storage; the host memory it must keep. */
static int init_vcpu(struct init_ctx *c)
{
	struct vcpu *v;

	if (kvm_run_area_reserve(&g_vm) < 0)
		return -1;
	v = c->v = vcpu_create(&g_vm);

	if (!v)
		return -1;
	v->bounce_size = 1UL << 20;
	v->bounce = arena_pages(&g_vm.arena, v->bounce_size / PAGE_SIZE);
	if (!v->bounce)
		return err_set(ENOMEM, "arena exhausted (bounce buffer)");
	if (sys_vcpu_init(v) < 0)
		return err_set(ENOMEM, "arena exhausted (syscall call storage)");
	stack_pregrow();
	return mem_pin_host_code();
}

/* The syscall tables, the seccomp program, and the root lwC over the process as it is now. */
static int init_root(struct init_ctx *c)
{
	struct vcpu *v = c->v;

	policy_init();
	if (g_vm.cfg.test_gen_start) /* test hook: near the wrap */
		g_vm.pt.gen_counter = g_vm.cfg.test_gen_start;
	sys_init();
	if (sandbox_build() < 0) /* allocates: before the root's page table mirrors the heap */
		return -1;
	g_vm.lwc.root_lwc = root_build();
	if (!g_vm.lwc.root_lwc)
		return -1;
	v->lwc = g_vm.lwc.root_lwc;
	v->lwc->on = v;
	v->cred_now = g_vm.cred.at_init; /* the thread runs under what root_build read */
	RAW2(SYS_arch_prctl, ARCH_GET_FS, &c->fs_base);
	RAW2(SYS_arch_prctl, ARCH_GET_GS, &c->gs_base);
	v->lwc->fs_base = c->fs_base;
	v->lwc->gs_base = c->gs_base;
	thread_take_over_self(v, c->fs_base);
	return 0;
}

/* The vCPU's registers, the platform probe's choices, the gate's flags, the exit tables. */
static int init_platform(struct init_ctx *c)
{
	struct vcpu *v = c->v;

	if (cpu_setup_vcpu(&g_vm, v, lwc_cr3(v->lwc), c->fs_base, c->gs_base) < 0)
		return -1;
	if (probe_platform(v) < 0)
		return -1;
	/* the probe left its own state: the vCPU again as the thread will enter it */
	if (cpu_setup_vcpu(&g_vm, v, lwc_cr3(v->lwc), c->fs_base, c->gs_base) < 0)
		return -1;
	if (gate_configure() < 0)
		return -1;
	cpu_fill_idt(&g_vm);
	run_init();
	hypercall_init();
	stats_init();
	lwc_init();
	thread_init();
	return 0;
}

/* In order; each 0, or -1 with errno and vmlwc_strerror's message set (init_undo cleans up). */
static int (*const init_steps[])(struct init_ctx *) = {
	init_kvm, init_memory, init_stub, init_vcpu, init_root, init_platform,
};

VMLWC_API int vmlwc_init(const struct vmlwc_config *cfg)
{
	struct init_ctx c = { .pool = POOL_DEFAULT };
	int e, r_adopt = 0;

	/* In the guest, host state is unmapped: decide from this thread's TLS alone. */
	if (guest_active)
		return err_set(EBUSY, "vmlwc_init: this thread already runs in the guest");
	if (__atomic_load_n(&g_vm.init.live, __ATOMIC_ACQUIRE))
		return err_set(EBUSY, "vmlwc_init: the process already entered the guest");
	/* one attempt at a time: a second thread must not build on a half-made state */
	if (__atomic_exchange_n(&init_claimed, 1, __ATOMIC_ACQ_REL))
		return err_set(EBUSY, "vmlwc_init: another thread of the process is entering the guest");
	/* other threads are adopted into the guest (a native one writes under every lwC's feet: G7);
	   one that blocks the adoption signal cannot be and stays native (security.md, G7) */
	int native = 0, others = thread_adopt_check(&native);
	if (others < 0) {
		__atomic_store_n(&init_claimed, 0, __ATOMIC_RELEASE);
		return err_set(-others, "vmlwc_init: the process's threads (/proc/self/task): %s", strerror(-others));
	}
	if (cfg && (cfg->flags & ~(unsigned)VMLWC_F_ALL)) {
		__atomic_store_n(&init_claimed, 0, __ATOMIC_RELEASE);
		return err_set(EINVAL, "vmlwc_init: unknown flags %#x in vmlwc_config",
			       cfg->flags & ~(unsigned)VMLWC_F_ALL);
	}
	if (cfg && cfg->pool_bytes)
		c.pool = PAGE_ALIGN_UP(cfg->pool_bytes);
	g_vm.trace.fd = -1;
	g_vm.policy.pid = getpid();
	config_read(&g_vm.cfg, cfg ? cfg->flags : 0);
	for (unsigned i = 0; i < ARRAY_SIZE(init_steps); i++)
		if (init_steps[i](&c) < 0)
			goto fail;
	g_vm.thread.native = native;
	if (native && g_vm.cfg.trace)
		trace_msg("vmlwc_init: %d thread(s) block signal %d and stay native", native, VMLWC_SIG_KICK);
	/* the threads that exist become guest threads: past here nothing can be undone (they run) */
	if (others > 0 && (r_adopt = thread_adopt_all()) < 0 && g_vm.cfg.trace)
		trace_msg("vmlwc_init: some of the process's %d other threads did not take signal %d: they run natively",
			  others, VMLWC_SIG_KICK);
	/* last: from here on the calling thread is the vCPU's host thread and nothing else */
	if (sandbox_install() < 0) {
		if (others > 0)
			die_panic(NULL, "the seccomp filter was refused after the process's threads entered the guest");
		goto fail;
	}
	guest_active = 1;
	g_vm.init.live = 1;
	if (vmlwc_enter(&c.v->enter, enter_guest, c.v, (char *)c.v->host_stack + c.v->host_stack_size) == 0)
		return 0; /* in the guest */
	guest_active = 0;
	g_vm.init.live = 0;
	err_set((int)c.v->enter_err, "KVM_SET_REGS failed while entering");
fail:
	e = errno;
	init_undo(c.v);
	errno = e;
	return -1;
}

VMLWC_API int vmlwc_stats(struct vmlwc_stats *st)
{
	long r;

	if (!guest_active) {
		errno = ENODEV;
		return -1;
	}
	r = RAW1(VMLWC_SYS_STATS, st);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}
