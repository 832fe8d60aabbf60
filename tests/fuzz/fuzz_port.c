/* libFuzzer target: hostile register values through the host's doorbell paths (syscalls, lwC calls), host-only. */
/*
 * Each input is what a guest could do: up to 16 exits, each a redirected syscall or an lwC call
 * with argument registers the input picks (raw values, pointers into the lwC's memory, its
 * descriptors, small numbers), then the first 2 KiB of the lwC's memory. The host side runs exactly as for a guest
 * (vmlwc_hostonly_doorbell -> the run loop's exit handling), but no KVM is involved: the lwC's
 * "memory" is a 68 KiB region of this process and its view holds nothing else, so a host access
 * anywhere else is a bug AddressSanitizer or the harness's own checks catch.
 *
 * A second window of the view is larger than the per-vCPU bounce area and scattered: its pages
 * are every other page of a host region, in shuffled order, so a buffer there is never
 * host-contiguous and is marshalled through the bounce area (G12 overran it by 2 MiB). The pages
 * between them belong to no view and must never change. The bounce area is followed by canary
 * pages that must never change either (the kernel's own writes past it do not fault) and framed
 * by guard pages (the library's do); the window's own guest addresses are PROT_NONE on the host,
 * so a pointer used untranslated faults. Arguments may be lengths of up to 3 MiB.
 *
 * Only syscalls whose effects stay inside this process and its own descriptors are chosen (no
 * paths that write, no signals to others, no memory maps of the harness, no credentials): the
 * point is the marshalling and the checks, and CI replays the corpus on real hosts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "arena.h"
#include "fdtab.h"
#include "hostonly.h"
#include "lwc_host.h"
#include "pgtable.h"
#include "pool.h"
#include "vcpu.h"
#include "view.h"
#include "state.h"

#define ARENA (64 * 1024)
#define RO_PAGE 4096
#define SEED 2048
#define MAX_OPS 16
#define SCAT_PAGES 384            /* 1.5 MiB in the view: past the 1 MiB bounce area */
#define SCAT_STRIDE 7             /* view page i is host page 2 * (i * 7 % 384): coprime, shuffled */
#define SCAT_BYTES ((size_t)SCAT_PAGES * 4096)
#define DECOY 0x5a
#define LONG_LEN (3UL << 20)
#define CANARY_BYTES (4 * 4096)
#define OP_BYTES (2 + 6 * 9)

/* Syscalls whose effects stay in this process: the marshalling and checks are what is tested. */
static const long allowed[] = {
	SYS_read, SYS_write, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_preadv, SYS_pwritev,
	SYS_preadv2, SYS_pwritev2, SYS_lseek, SYS_fstat, SYS_newfstatat, SYS_statx, SYS_stat, SYS_lstat,
	SYS_access, SYS_faccessat, SYS_faccessat2, SYS_readlink, SYS_readlinkat, SYS_getcwd, SYS_getdents64,
	SYS_open, SYS_openat, SYS_fcntl, SYS_dup, SYS_dup2, SYS_dup3, SYS_close, SYS_close_range, SYS_pipe,
	SYS_pipe2, SYS_eventfd2, SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait, SYS_poll,
	SYS_ppoll, SYS_select, SYS_pselect6, SYS_socketpair, SYS_sendmsg, SYS_recvmsg, SYS_sendto,
	SYS_recvfrom, SYS_sendmmsg, SYS_recvmmsg, SYS_getsockopt, SYS_setsockopt, SYS_shutdown,
	SYS_getsockname, SYS_getpeername, SYS_ioctl, SYS_fsync, SYS_fdatasync, SYS_ftruncate,
	SYS_memfd_create, SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime, SYS_clock_gettime,
	SYS_clock_getres, SYS_gettimeofday, SYS_time, SYS_nanosleep, SYS_clock_nanosleep, SYS_getpid,
	SYS_getppid, SYS_gettid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getgroups,
	SYS_getresuid, SYS_getresgid, SYS_getrlimit, SYS_uname, SYS_sysinfo, SYS_getrusage, SYS_times,
	SYS_sched_yield, SYS_getrandom, SYS_sched_getaffinity, SYS_splice, SYS_tee, SYS_sendfile,
	SYS_copy_file_range, SYS_fadvise64, SYS_fallocate, SYS_flock, SYS_fstatfs, SYS_statfs,
	SYS_umask, SYS_getpriority, SYS_getpgrp, SYS_getsid, SYS_getpgid,
	SYS_io_uring_setup,
	VMLWC_SYS_STATS, VMLWC_SYS_POOL, VMLWC_SYS_TEST_STUB_FAULT, VMLWC_SYS_TEST_FORBIDDEN,
	-1, 100000, /* nothing */
};

#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))
/* What open may do here: read, never create or truncate (the input names any path). */
#define OPEN_FLAGS (O_CLOEXEC | O_NONBLOCK | O_DIRECTORY | O_NOFOLLOW | O_PATH | O_NOCTTY)

static struct vcpu *v;
static struct lwc *root;
static uint8_t *arena;
static uint8_t *scat;      /* the scattered window's guest addresses (PROT_NONE on the host) */
static uint8_t *scat_host; /* 2 * SCAT_PAGES host pages: the even ones in the view, the odd ones decoys */
static uint8_t *canary;    /* right after the bounce area */
static int nfixed;
static int fixed[8]; /* the root's descriptor numbers the input can name */

static timer_t tick; /* its own timer and signal: libFuzzer's -timeout uses SIGALRM */

static void on_alarm(int sig)
{
	(void)sig; /* a blocking syscall returns EINTR: the harness never waits */
}

static uint8_t *scat_page(unsigned i)
{
	return scat_host + 2 * ((size_t)i * SCAT_STRIDE % SCAT_PAGES) * 4096;
}

/* The root's view holds the arena (read-write), one read-only page, the scattered window and its own gate pages. */
static void view_restrict(void)
{
	struct pt_txn t;
	gpa_t old = root->root, r = pt_new_root();

	if (r == GPA_NONE)
		abort();
	pt_root_tag_set(r, root->s.id + 1);
	pt_txn_begin(&t, r);
	if (pt_txn_set(&t, (uintptr_t)arena, ARENA, (uintptr_t)arena, pt_prot_flags(PROT_READ | PROT_WRITE)) < 0 ||
	    pt_txn_set(&t, (uintptr_t)arena + ARENA, RO_PAGE, (uintptr_t)arena + ARENA, pt_prot_flags(PROT_READ)) < 0 ||
	    lwc_map_own_pages(root, &t) < 0)
		abort();
	for (unsigned i = 0; i < SCAT_PAGES; i++)
		if (pt_txn_set(&t, (uintptr_t)scat + (uintptr_t)i * 4096, 4096, (uintptr_t)scat_page(i),
			       pt_prot_flags(PROT_READ | PROT_WRITE)) < 0)
			abort();
	lwc_set_root(root, pt_txn_commit(&t));
	pt_destroy(old, pool_unref);
	v->run->s.regs.sregs.cr3 = lwc_cr3(root);
}

/* Fresh descriptors at fixed numbers: a non-blocking pipe, a socket pair, an eventfd, a memfd, /dev/null, an epoll fd. */
static void fds_reset(void)
{
	int p[2], s[2], h[8], n = 0;

	fdtab_close_all(root->fds);
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) < 0)
		abort();
	h[n++] = p[0];
	h[n++] = p[1];
	h[n++] = s[0];
	h[n++] = s[1];
	h[n++] = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	h[n++] = (int)syscall(SYS_memfd_create, "fuzz", MFD_CLOEXEC);
	h[n++] = open("/dev/null", O_RDWR | O_CLOEXEC);
	h[n++] = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < n; i++) {
		if (h[i] < 0 || fdtab_install_at(root->fds, 3 + i, h[i]) < 0)
			abort();
		fixed[i] = 3 + i;
	}
	nfixed = n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sigaction sa;

	(void)argc;
	(void)argv;
	setenv("VMLWC_TEST_HOOKS", "0", 1); /* the hooks must be refused: VMLWC_SYS_TEST_* are inputs */
	v = vmlwc_hostonly_setup();
	if (!v)
		abort();
	root = v->lwc;
	/* the table's 0..2 are this process's: keep them when the table lets go of its entries */
	int keep[3] = { dup(0), dup(1), dup(2) };
	fdtab_close_all(root->fds);
	for (int i = 0; i < 3; i++) {
		dup2(keep[i], i);
		close(keep[i]);
	}
	arena = mmap(NULL, ARENA + RO_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED)
		abort();
	mprotect(arena + ARENA, RO_PAGE, PROT_READ);
	scat = mmap(NULL, SCAT_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	scat_host = mmap(NULL, 2 * SCAT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scat == MAP_FAILED || scat_host == MAP_FAILED)
		abort();
	memset(scat_host, DECOY, 2 * SCAT_BYTES);
	/* guard, bounce area, canary, guard */
	uint8_t *b = mmap(NULL, v->bounce_size + CANARY_BYTES + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED || mprotect(b + 4096, v->bounce_size + CANARY_BYTES, PROT_READ | PROT_WRITE) < 0)
		abort();
	v->bounce = (char *)b + 4096;
	canary = b + 4096 + v->bounce_size;
	memset(canary, DECOY, CANARY_BYTES);
	view_restrict();
	fds_reset();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART */
	sigaction(SIGUSR2, &sa, NULL);
	struct sigevent se = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	if (timer_create(CLOCK_MONOTONIC, &se, &tick) < 0)
		abort();
	/* files (the memfd) stay small: fallocate or ftruncate of GiBs would fill memory (shmem),
	   not test the host side; beyond it the call fails with EFBIG */
	struct rlimit fsz = { 64UL << 20, 64UL << 20 };
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &fsz) < 0)
		abort();
	return 0;
}

static uint64_t take(const uint8_t **d, size_t *n, unsigned bytes)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < bytes && *n; i++, (*n)--, (*d)++)
		x |= (uint64_t)**d << (8 * i);
	return x;
}

static uint64_t arg(const uint8_t **d, size_t *n)
{
	unsigned tag = (unsigned)take(d, n, 1);
	uint64_t val = take(d, n, 8);

	switch (tag % 6) {
	case 1: return (uint64_t)(uintptr_t)arena + val % (ARENA + RO_PAGE);
	case 2: return (uint64_t)fixed[val % (unsigned)nfixed];
	case 3: return val & 0xff;
	case 4: return (uint64_t)(uintptr_t)scat + val % SCAT_BYTES;
	case 5: return val % LONG_LEN;
	default: return val;
	}
}

/*
 * The pages between the scattered window's belong to no view, and the canary is nobody's: any
 * change is a host access out of bounds by the input just run.
 */
static void decoys_check(void)
{
	static uint8_t pattern[4096];

	if (!pattern[0])
		memset(pattern, DECOY, sizeof(pattern));
	for (unsigned i = 0; i < CANARY_BYTES / 4096; i++)
		if (memcmp(canary + (size_t)i * 4096, pattern, 4096) != 0)
			abort();
	for (unsigned i = 0; i < SCAT_PAGES; i++)
		if (memcmp(scat_host + (2 * (size_t)i + 1) * 4096, pattern, 4096) != 0)
			abort();
}

/* Back to the root in its own tree, with every other lwC unreachable and collected. */
static void state_reset(void)
{
	struct kvm_regs *r = &v->run->s.regs.regs;

	v->lwc = root;
	root->on = v;
	root->limited = 0;
	root->trap_to = 0;
	memset(root->allow, 0xff, sizeof(root->allow));
	v->run->s.regs.sregs.cr3 = lwc_cr3(root);
	memset(r, 0, sizeof(*r));
	fds_reset();
	lwc_collect_now();
	if (g_vm.lwc.nlwcs != 1)
		abort(); /* an lwC nothing refers to survived its collection: a leak */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a blocking syscall gets EINTR after 2 ms, and again every 2 ms (the host may retry) */
	const struct itimerspec on = { .it_value = { 0, 2000000 }, .it_interval = { 0, 2000000 } }, off = { 0 };
	struct kvm_regs *r = &v->run->s.regs.regs;
	unsigned nops = (unsigned)take(&data, &size, 1) % (MAX_OPS + 1);
	const uint8_t *ops = data;
	size_t opsize = size < nops * OP_BYTES ? size : nops * OP_BYTES;

	/* the exits first, then the lwC's memory: short inputs already do something */
	memset(arena, 0, ARENA);
	memcpy(arena, data + opsize, size - opsize < SEED ? size - opsize : SEED);
	for (unsigned i = 0; i < SCAT_PAGES; i++)
		memset(scat_page(i), 0, 4096);
	data = ops;
	size = opsize;
	for (unsigned op = 0; op < nops && size > 0; op++) {
		unsigned kind = (unsigned)take(&data, &size, 1), sel = (unsigned)take(&data, &size, 1);
		uint64_t a[6];
		for (int i = 0; i < 6; i++)
			a[i] = arg(&data, &size);
		if (v->lwc->state != VMLWC_LWC_READY)
			break; /* a trapped lwC waits for its monitor: nothing of its own runs */
		memset(r, 0, sizeof(*r));
		r->rip = r->rcx = (uintptr_t)arena; /* where ring 3 resumes: its own memory */
		r->rsp = (uintptr_t)arena + ARENA - 64;
		r->rflags = r->r11 = 0x202;
		if (kind % 3 != 2) {
			r->rax = (uint64_t)allowed[sel % NALLOWED];
			r->rdi = a[0];
			r->rsi = a[1];
			r->rdx = a[2];
			r->r10 = a[3];
			r->r8 = a[4];
			r->r9 = a[5];
			if (r->rax == SYS_open)
				r->rsi &= OPEN_FLAGS;
			if (r->rax == SYS_openat)
				r->rdx &= OPEN_FLAGS;
			if (r->rax == SYS_ioctl) /* not the terminal a path could open */
				r->rdi = (uint64_t)fixed[r->rdi % (unsigned)nfixed];
			timer_settime(tick, 0, &on, NULL);
			vmlwc_hostonly_doorbell(v, VMLWC_DB_SYSCALL);
			timer_settime(tick, 0, &off, NULL);
		} else {
			r->rax = sel % 11; /* VMLWC_LWC_CREATE .. LIMIT and beyond */
			r->rdi = a[0];
			r->rsi = a[1];
			r->rdx = a[2];
			r->r8 = a[3]; /* lwc_syscall's own arguments */
			r->r9 = a[4];
			r->r10 = a[5];
			r->r12 = a[0];
			r->r13 = a[1];
			r->r14 = a[2];
			if (r->rax == VMLWC_LWC_SYSCALL) { /* the same choice of syscalls, in another lwC */
				r->rdx = (uint64_t)allowed[r->rdx % NALLOWED];
				if (r->rdx == SYS_open || r->rdx == SYS_openat || r->rdx == SYS_ioctl)
					r->rdx = SYS_getpid;
			}
			/* lwc_syscall runs the same syscalls: ppoll with no timeout would wait for ever */
			timer_settime(tick, 0, &on, NULL);
			vmlwc_hostonly_doorbell(v, VMLWC_DB_LWC);
			timer_settime(tick, 0, &off, NULL);
		}
		/* the host may only have returned to ring 3 in the lwC's own memory */
		if (r->rip < (uintptr_t)arena && r->rip != VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME)
			abort();
	}
	decoys_check();
	state_reset();
	return 0;
}
