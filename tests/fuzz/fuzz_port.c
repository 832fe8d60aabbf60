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
 * Reads are seen too: the decoy pages, the canary and a page on either side of the 68 KiB region
 * (none in any view) hold a marker, 16 distinct bytes drawn at random per process and repeated.
 * After each input the harness reads back everything the lwCs' descriptors could have put data
 * into (pipes and sockets drained without blocking, with any descriptors in flight; memfds and
 * writable files whole; eventfd counters and epoll registrations through fdinfo) and the root's
 * own memory: the marker anywhere there means the host read a page the lwC may not, and aborts.
 * An input cannot hold the marker itself: it is drawn after the input is written, its bytes never
 * occur in text, and the functions that look for it are not instrumented for coverage, so
 * libFuzzer cannot learn it from their comparisons.
 *
 * Only syscalls whose effects stay inside this process and its own descriptors are chosen (no
 * paths that write, no signals to others, no memory maps of the harness, no credentials): the
 * point is the marshalling and the checks, and CI replays the corpus on real hosts.
 *
 * An op whose kind byte is 0xf8 or more (and not an lwC call) is a thread or signal call instead:
 * futex on guest words, rt_sigaction/rt_sigprocmask/rt_sigpending/sigaltstack, rt_sigreturn with
 * the frame at a guest address the input picks (its rsp), signalfd4 (always non-blocking: the
 * host-only harness has no host handler to end a wait, and a wait that outlives 50 ticks has its
 * signalfds made non-blocking), tgkill/tkill/rt_tgsigqueueinfo to this very thread with a signal
 * that does nothing here, clone/clone3/set_tid_address/robust lists. clone never makes a thread:
 * without KVM there is no vCPU to give it (vcpu_new fails), so only its checks and marshalling
 * (flags, parent/child tid words, clone3's struct) run; a real clone needs the guest suites.
 */
#include <emmintrin.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "arena.h"
#include "cred.h"
#include "fdtab.h"
#include "hostonly.h"
#include "lwc_host.h"
#include "pgtable.h"
#include "pool.h"
#include "vcpu.h"
#include "view.h"
#include "sigdeliver.h"
#include "sigtab.h"
#include "thread.h"
#include "state.h"

#define ARENA (64 * 1024)
#define RO_PAGE 4096
#define SEED 2048
#define MAX_OPS 16
#define SCAT_PAGES 384            /* 1.5 MiB in the view: past the 1 MiB bounce area */
#define SCAT_STRIDE 7             /* view page i is host page 2 * (i * 7 % 384): coprime, shuffled */
#define SCAT_BYTES ((size_t)SCAT_PAGES * 4096)
#define LONG_LEN (3UL << 20)
#define CANARY_BYTES (4 * 4096)
#define OP_BYTES (2 + 6 * 9)
#define DECOY_TAG 0xf0            /* an argument tag from here up (tag % 6 == 0): a decoy's host address */

/* The functions that know the marker: no coverage instrumentation, so no comparison of theirs
   reaches libFuzzer's table of values to try (clang; gcc builds only the replay). */
#if defined(__clang__)
#define NOCOV __attribute__((noinline, no_sanitize("coverage")))
#else
#define NOCOV __attribute__((noinline))
#endif

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

/* The thread and signal calls (kind >= TSIG_KIND): their own table, so that the corpus made
   before them keeps its meaning (only ops with such a kind byte changed). */
#define TSIG_KIND 0xf8
static const long tsig[] = {
	SYS_futex, SYS_futex, SYS_futex, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigpending,
	SYS_sigaltstack, SYS_rt_sigreturn, SYS_rt_sigreturn, SYS_signalfd4, SYS_tgkill, SYS_tkill,
	SYS_rt_tgsigqueueinfo, SYS_clone, SYS_clone3, SYS_set_tid_address, SYS_set_robust_list,
	SYS_get_robust_list,
};
#define NTSIG (sizeof(tsig) / sizeof(tsig[0]))
/* Signals a tgkill of the input may send this thread: none does anything here. */
static const int harmless[] = { 0, SIGUSR2, SIGCHLD, SIGURG, SIGWINCH };
/* What open may do here: read, never create or truncate (the input names any path). */
#define OPEN_FLAGS (O_CLOEXEC | O_NONBLOCK | O_DIRECTORY | O_NOFOLLOW | O_PATH | O_NOCTTY)

static struct vcpu *v;
static struct lwc *root;
static uint8_t *arena;     /* a marked page below it, the read-only page and a marked page above */
static uint8_t *scat;      /* the scattered window's guest addresses (PROT_NONE on the host) */
static uint8_t *scat_host; /* 2 * SCAT_PAGES host pages: the even ones in the view, the odd ones decoys */
static uint8_t *canary;    /* right after the bounce area: marked */
static int nfixed;
static int fixed[8]; /* the root's descriptor numbers the input can name */

static timer_t tick; /* its own timer and signal: libFuzzer's -timeout uses SIGALRM */

/*
 * The marker: 16 distinct bytes from 0x80..0xff with bit 4 clear (none is ASCII, none is zero),
 * drawn at each start, repeated over every marked page from its first byte. mark_win[k] is the 8
 * bytes of the repetition from offset k, mark_at[b] the offset of byte b in it (-1: not a marker
 * byte). Any 15 marker bytes in a row hold an 8-byte-aligned window, wherever they land: what
 * marked() sees.
 */
static uint8_t mark[16];
static uint64_t mark_win[16];
static int8_t mark_at[256];

NOCOV static void mark_draw(void)
{
	uint8_t pool[64], rnd[64];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		for (unsigned i = 0; i < sizeof(rnd); i++)
			rnd[i] = (uint8_t)(((uint64_t)ts.tv_nsec * 2654435761u >> (i % 24)) ^ (i * 37) ^ (unsigned)getpid());
	}
	/* bit 4 clear in every byte: 4 marker bytes as epoll_event.events never hold EPOLLEXCLUSIVE,
	   with which the kernel refuses most other flags, so the registration (and its data) stays */
	for (unsigned i = 0, n = 0; i < 128; i++)
		if (!(i & 0x10))
			pool[n++] = (uint8_t)(0x80 + i);
	for (unsigned i = 63; i > 0; i--) { /* Fisher-Yates: the first 16 are distinct */
		unsigned j = rnd[i] % (i + 1);
		uint8_t t = pool[i];
		pool[i] = pool[j];
		pool[j] = t;
	}
	memset(mark_at, -1, sizeof(mark_at));
	for (unsigned i = 0; i < 16; i++) {
		mark[i] = pool[i];
		mark_at[pool[i]] = (int8_t)i;
	}
	for (unsigned k = 0; k < 16; k++) {
		mark_win[k] = 0;
		for (unsigned i = 0; i < 8; i++)
			mark_win[k] |= (uint64_t)mark[(k + i) % 16] << (8 * i);
	}
}

/* Fills n bytes (a multiple of 16, from a 16-aligned address) with the marker. */
NOCOV static void mark_fill(void *p, size_t n)
{
	uint64_t *w = p;

	for (size_t i = 0; i < n / 8; i++)
		w[i] = mark_win[(i & 1) * 8];
}

/* Whether n bytes (a multiple of 64, 16-aligned) filled by mark_fill still hold the marker, every byte. */
NOCOV static int mark_intact(const void *p, size_t n)
{
	const __m128i *v = p, m = _mm_loadu_si128((const __m128i *)mark);
	__m128i diff = _mm_setzero_si128();

	for (size_t i = 0; i < n / 16; i += 4)
		diff = _mm_or_si128(diff, _mm_or_si128(_mm_or_si128(_mm_xor_si128(v[i], m), _mm_xor_si128(v[i + 1], m)),
						     _mm_or_si128(_mm_xor_si128(v[i + 2], m), _mm_xor_si128(v[i + 3], m))));
	return _mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) == 0xffff;
}

/* 8 marker bytes at an offset that is a multiple of 8 in [p, p + n) (n < 8 bytes are not looked at). */
NOCOV static int marked_words(const uint8_t *b, size_t n)
{
	for (size_t j = 0; j + 8 <= n; j += 8) {
		uint64_t w;
		memcpy(&w, b + j, 8);
		int k = mark_at[w & 0xff];
		if (k >= 0 && w == mark_win[k])
			return 1;
	}
	return 0;
}

/*
 * Whether n bytes hold 8 marker bytes in a row at an offset that is a multiple of 8. Every
 * marker byte has its high bit: 64 bytes at a time, only those with 8 such bytes at such an
 * offset are looked at further.
 */
NOCOV static int marked(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		uint64_t hi = (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(b + i))) |
			      (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(b + i + 16))) << 16 |
			      (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(b + i + 32))) << 32 |
			      (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(b + i + 48))) << 48;
		uint64_t lo = ~hi; /* a byte of lo is zero where 8 bytes in a row have their high bits */
		if (((lo - 0x0101010101010101ULL) & ~lo & 0x8080808080808080ULL) && marked_words(b + i, 64))
			return 1;
	}
	return marked_words(b + i, n - i);
}

/* A 64-bit value the host took from 8 marker bytes: equal to one of the windows. */
NOCOV static int marked_word(uint64_t x)
{
	int k = mark_at[x & 0xff];

	return k >= 0 && x == mark_win[k];
}

/* An eventfd counter some write of 8 marker bytes went into (the others added less than 2^32). */
NOCOV static int marked_sum(uint64_t x)
{
	for (unsigned k = 0; k < 16; k++)
		if (x >= mark_win[k] && x - mark_win[k] < (1ULL << 32))
			return 1;
	return 0;
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_port: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define leak_write(where) fail("%s changed: the host wrote outside the lwC's view", where)
#define leak_read(...) fail("the decoy marker is in " __VA_ARGS__)

static volatile unsigned ticks; /* in the current op */

static void on_alarm(int sig)
{
	(void)sig; /* a blocking syscall returns EINTR: the harness never waits */
	/* a signalfd read made blocking again (fcntl) waits for a signal the host-only harness
	   never records: after 100 ms its descriptors go non-blocking, and the read ends */
	if (++ticks > 50)
		for (unsigned i = 0; i < g_vm.sig.nsigfds; i++)
			if (g_vm.sig.sigfds[i].hfd >= 0)
				fcntl(g_vm.sig.sigfds[i].hfd, F_SETFL, O_NONBLOCK | O_RDWR);
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
	/* clone and rt_sigreturn are the thread and signal layers' (vmlwc_init registers them):
	   here without the host signal handler, which would take the harness's own signals */
	thread_init();
	sig_sigreturn_init();
	root = v->lwc;
	/* the host-only set-up gives the root its credential shadow, as vmlwc_init does (it once did
	   not, and the credential syscalls went to the kernel with the lwC's pointers untranslated:
	   tests/fuzz/findings; without a shadow they now fail with EPERM) */
	/* the table's 0..2 are this process's: keep them when the table lets go of its entries */
	int keep[3] = { dup(0), dup(1), dup(2) };
	fdtab_close_all(root->fds);
	for (int i = 0; i < 3; i++) {
		dup2(keep[i], i);
		close(keep[i]);
	}
	mark_draw();
	/* a marked page, the arena, the read-only page, a marked page */
	uint8_t *a = mmap(NULL, ARENA + RO_PAGE + 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		abort();
	arena = a + 4096;
	mark_fill(arena - 4096, 4096);
	mark_fill(arena + ARENA + RO_PAGE, 4096);
	mprotect(arena + ARENA, RO_PAGE, PROT_READ);
	scat = mmap(NULL, SCAT_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	scat_host = mmap(NULL, 2 * SCAT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scat == MAP_FAILED || scat_host == MAP_FAILED)
		abort();
	for (unsigned i = 0; i < SCAT_PAGES; i++)
		mark_fill(scat_host + (2 * (size_t)i + 1) * 4096, 4096);
	/* guard, bounce area, canary, guard */
	uint8_t *b = mmap(NULL, v->bounce_size + CANARY_BYTES + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED || mprotect(b + 4096, v->bounce_size + CANARY_BYTES, PROT_READ | PROT_WRITE) < 0)
		abort();
	v->bounce = (char *)b + 4096;
	canary = b + 4096 + v->bounce_size;
	mark_fill(canary, CANARY_BYTES);
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

/* The host address of a byte no lwC may read: beside the arena, between the window's pages, the canary. */
static uint64_t decoy_addr(uint64_t val)
{
	size_t off = (size_t)(val >> 2) % 4096, page = (size_t)(val >> 14);

	switch (val % 4) {
	case 0: return (uint64_t)(uintptr_t)arena - 4096 + off;
	case 1: return (uint64_t)(uintptr_t)arena + ARENA + RO_PAGE + off;
	case 2: return (uint64_t)(uintptr_t)scat_host + (2 * (page % SCAT_PAGES) + 1) * 4096 + off;
	default: return (uint64_t)(uintptr_t)canary + (page % (CANARY_BYTES / 4096)) * 4096 + off;
	}
}

static uint64_t arg(const uint8_t **d, size_t *n)
{
	unsigned tag = (unsigned)take(d, n, 1);
	uint64_t val = take(d, n, 8);

	if (tag >= DECOY_TAG && tag % 6 == 0)
		return decoy_addr(val); /* a raw value before: the arena's place moves, no input could name it */
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
 * The pages between the scattered window's and beside the arena belong to no view, and the
 * canary is nobody's: any change is a host write out of bounds by the input just run.
 */
static void decoys_check(void)
{
	if (!mark_intact(canary, CANARY_BYTES))
		leak_write("the canary after the bounce area");
	if (!mark_intact(arena - 4096, 4096) || !mark_intact(arena + ARENA + RO_PAGE, 4096))
		leak_write("a marked page beside the arena");
	for (unsigned i = 0; i < SCAT_PAGES; i++)
		if (!mark_intact(scat_host + (2 * (size_t)i + 1) * 4096, 4096))
			leak_write("a decoy page between the window's");
}

/*
 * Reading back, without blocking, what the lwCs' descriptors hold. A stream goes through buf in
 * pieces; what is left of a piece past its last whole 8 bytes goes first in the next, so the
 * offsets marked() looks at stay multiples of 8 of the whole stream.
 */
static uint8_t buf[65536];
static size_t have;
#define MAX_INFLIGHT 1024
static int inflight[MAX_INFLIGHT]; /* descriptors received from sockets: read in their turn, then closed */
static unsigned ninflight;
static uint8_t seen[1 << 17];      /* host fds read already (a bit each): tables share them */
static char whose[80];             /* which descriptor is read: for the report */

static int stream_feed(size_t got)
{
	size_t whole;

	have += got;
	whole = have & ~(size_t)7;
	if (marked(buf, whole))
		return 1;
	memmove(buf, buf + whole, have - whole);
	have -= whole;
	return 0;
}

static void take_rights(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (ninflight < MAX_INFLIGHT)
				inflight[ninflight++] = fd;
			else
				close(fd);
		}
	}
}

/* A pipe's read end or a socket, to its end or until it would block; a socket's descriptors in flight too. */
static void drain(int h, int sock)
{
	int type = SOCK_STREAM;
	socklen_t tl = sizeof(type);

	if (sock && getsockopt(h, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return;
	have = 0;
	for (unsigned empty = 0; empty < 64;) {
		ssize_t got;
		if (sock) {
			union {
				struct cmsghdr h;
				char b[CMSG_SPACE(sizeof(int) * 253)];
			} ctl;
			struct iovec io = { buf + have, sizeof(buf) - have };
			struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
			got = recvmsg(h, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
			if (got >= 0)
				take_rights(&m);
			if (got == 0 && type != SOCK_STREAM) { /* an empty datagram: more may follow */
				empty++;
				continue;
			}
		} else {
			got = read(h, buf + have, sizeof(buf) - have);
		}
		if (got <= 0)
			break;
		if (stream_feed((size_t)got))
			leak_read("what %s held", whose);
	}
}

/* A memfd (or a writable file) whole, its holes skipped, through a description of its own. */
static void read_file(int h)
{
	char path[40];
	struct stat st;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", h);
	f = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (f < 0)
		return;
	if (fstat(f, &st) == 0) {
		off_t pos = 0;
		while (pos < st.st_size) {
			off_t data = lseek(f, pos, SEEK_DATA), hole;
			if (data < 0)
				break; /* no data past pos */
			hole = lseek(f, data, SEEK_HOLE);
			if (hole < 0 || hole > st.st_size)
				hole = st.st_size;
			for (pos = data & ~(off_t)7; pos < hole;) {
				size_t want = (size_t)(hole - pos) < sizeof(buf) ? (size_t)(hole - pos) : sizeof(buf);
				ssize_t got = pread(f, buf, want, pos);
				if (got <= 0) {
					pos = st.st_size;
					break;
				}
				if (marked(buf, (size_t)got))
					leak_read("%s, in the bytes from offset %lld", whose, (long long)pos);
				pos += got >= 8 ? got & ~(ssize_t)7 : got;
			}
		}
	}
	close(f);
}

/* An eventfd's counter and an epoll's registrations (their data words) as fdinfo shows them. */
static void read_fdinfo(int h)
{
	static char info[1 << 18];
	char path[40];
	size_t n = 0;
	ssize_t got;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", h);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	while (n < sizeof(info) - 1 && (got = read(f, info + n, sizeof(info) - 1 - n)) > 0)
		n += (size_t)got;
	close(f);
	info[n] = 0;
	for (char *p = info; (p = strstr(p, "eventfd-count:")); p++)
		if (marked_sum(strtoull(p + 14, NULL, 16)))
			leak_read("the counter of %s", whose);
	for (char *p = info; (p = strstr(p, " data:")); p++)
		if (marked_word(strtoull(p + 6, NULL, 16)))
			leak_read("the data of a registration in %s", whose);
}

/* Host fd h, guest fd g of lwC id (id < 0: a descriptor received from a socket). */
static void fd_read_back(int h, int id, unsigned g)
{
	struct stat st;
	char link[40], name[64];
	ssize_t n;
	int fl;

	if (h < 0 || (unsigned)h >= 8 * sizeof(seen) || (seen[h / 8] & (1 << (h % 8))))
		return;
	seen[h / 8] |= (uint8_t)(1 << (h % 8));
	if (fstat(h, &st) < 0 || (fl = fcntl(h, F_GETFL)) < 0)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", h);
	n = readlink(link, name, sizeof(name) - 1);
	name[n > 0 ? n : 0] = 0;
	if (id >= 0)
		snprintf(whose, sizeof(whose), "%.40s (host fd %d, fd %u of lwC %d)", name, h, g, id);
	else
		snprintf(whose, sizeof(whose), "%.40s (host fd %d, received from a socket)", name, h);
	if (!strncmp(name, "anon_inode:", 11)) { /* whatever file type fstat gives it (kernels differ) */
		if (!strcmp(name + 11, "[eventfd]") || !strcmp(name + 11, "[eventpoll]"))
			read_fdinfo(h);
		return;
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFIFO:
		if ((fl & O_PATH) || (fl & O_ACCMODE) == O_WRONLY)
			return;
		if (!(fl & O_NONBLOCK) && fcntl(h, F_SETFL, fl | O_NONBLOCK) < 0)
			return;
		drain(h, 0);
		return;
	case S_IFSOCK:
		drain(h, 1);
		return;
	case S_IFREG:
		if (!strncmp(name, "/memfd:", 7) || (!(fl & O_PATH) && (fl & O_ACCMODE) != O_RDONLY))
			read_file(h);
		return;
	}
}

/*
 * What the input could have made the host read ends up in the root's own memory (the arena, the
 * window's pages) or behind a descriptor: the marker in any of them is a read of a page the lwC
 * may not read (a descriptor of a child lwC's table too; the children's own pages are not read).
 */
static void reads_check(void)
{
	if (marked(arena, ARENA + RO_PAGE))
		leak_read("the lwC's 68 KiB region");
	for (unsigned i = 0; i < SCAT_PAGES; i++) { /* read, then zeroed for the next input while cached */
		if (marked(scat_page(i), 4096))
			leak_read("page %u of the scattered window", i);
		memset(scat_page(i), 0, 4096);
	}
	ninflight = 0;
	for (unsigned id = 0; id < VMLWC_MAX_LWCS; id++) {
		struct lwc *l = g_vm.lwc.lwcs[id];
		if (!l || !l->fds)
			continue;
		for (unsigned g = 0; g < fdtab_used(l->fds); g++)
			fd_read_back(fdtab_get(l->fds, g), (int)id, g);
	}
	for (unsigned i = 0; i < ninflight; i++) /* it grows as sockets give more */
		fd_read_back(inflight[i], -1, 0);
	for (unsigned i = 0; i < ninflight; i++)
		close(inflight[i]);
	memset(seen, 0, sizeof(seen));
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
	/* the signal state the thread and signal calls change: as at the start */
	const struct ksigaction dfl = { 0 };
	for (int sig = 1; sig < 64; sig++)
		sigtab_set(root, sig, &dfl);
	memset(root->sigmasks, 0, sizeof(root->sigmasks));
	memset(v->sig_altstack, 0, sizeof(v->sig_altstack));
	v->sig_altstack[8] = 2; /* SS_DISABLE */
	v->sig_sync = 0;
	v->sig_pending = 0;
	if (g_vm.lwc.nlwcs != 1)
		abort(); /* an lwC nothing refers to survived its collection: a leak */
}

/* Guest address p's host address, if it is in the arena or the window (else NULL). */
static uint8_t *host_of(uint64_t p)
{
	if (p >= (uintptr_t)arena && p < (uintptr_t)arena + ARENA)
		return (uint8_t *)(uintptr_t)p;
	if (p >= (uintptr_t)scat && p < (uintptr_t)scat + SCAT_BYTES)
		return scat_page((unsigned)((p - (uintptr_t)scat) / 4096)) + p % 4096;
	return NULL;
}

/* A syscall's number and arguments in the registers the doorbell path reads them from. */
static void syscall_regs(struct kvm_regs *r, long nr, const uint64_t a[6])
{
	r->rax = (uint64_t)nr;
	r->rdi = a[0];
	r->rsi = a[1];
	r->rdx = a[2];
	r->r10 = a[3];
	r->r8 = a[4];
	r->r9 = a[5];
}

/* A thread or signal call: its registers, bounded to what stays in this thread. */
static void tsig_op(struct kvm_regs *r, long nr, const uint64_t a[6])
{
	syscall_regs(r, nr, a);
	switch (nr) {
	case SYS_signalfd4:
		r->r10 |= O_NONBLOCK;
		break;
	case SYS_tgkill:
	case SYS_rt_tgsigqueueinfo:
		r->rdi = (uint64_t)getpid();
		r->rsi = (uint64_t)gettid();
		r->rdx = (uint64_t)harmless[a[2] % 5];
		break;
	case SYS_tkill:
		r->rdi = (uint64_t)gettid();
		r->rsi = (uint64_t)harmless[a[1] % 5];
		break;
	case SYS_rt_sigreturn: {
		/* the frame is at rsp (pretcode popped): the input's memory there, or a decoy, or
		   nothing. Its fault is a SIGSEGV the lwC handles (a killed harness tests nothing):
		   a handler recorded, SIGSEGV unblocked now and in the frame's mask */
		const struct ksigaction segv = { (uint64_t)(uintptr_t)arena, 0x04000004 /* SA_SIGINFO|SA_RESTORER */,
						 (uint64_t)(uintptr_t)arena, 0 };
		uint64_t bit = 1UL << (SIGSEGV - 1);
		r->rsp = a[0] & ~7UL;
		sigtab_set(root, SIGSEGV, &segv);
		root->sigmasks[v->index] &= ~bit;
		uint8_t *m = host_of(r->rsp + 296); /* uc_sigmask: 8 + 8 + 24 + 256 bytes into the ucontext */
		if (m && host_of(r->rsp + 303) == m + 7) {
			uint64_t x;
			memcpy(&x, m, 8);
			x &= ~bit;
			memcpy(m, &x, 8);
		}
		/* and a canonical rip (at 8 + 8 + 24 + 16 * 8): a frame whose vector state is refused
		   returns before its rip is checked, and the way back to ring 3 then ends the process
		   on a non-canonical one even though the lwC handles SIGSEGV (Linux would run the
		   handler): reported, kept out of the harness */
		uint8_t *ip = host_of(r->rsp + 168);
		if (ip && host_of(r->rsp + 175) == ip + 7) {
			uint64_t x;
			memcpy(&x, ip, 8);
			x &= (1UL << 47) - 1;
			memcpy(ip, &x, 8);
		}
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a blocking syscall gets EINTR after 2 ms, and again every 2 ms (the host may retry) */
	const struct itimerspec on = { .it_value = { 0, 2000000 }, .it_interval = { 0, 2000000 } }, off = { 0 };
	struct kvm_regs *r = &v->run->s.regs.regs;
	unsigned nops = (unsigned)take(&data, &size, 1) % (MAX_OPS + 1);
	const uint8_t *ops = data;
	size_t opsize = size < nops * OP_BYTES ? size : nops * OP_BYTES;
	static int xfsz_ignored;

	if (!xfsz_ignored) {
		/* libFuzzer sets its own SIGXFSZ handler (-handle_xfsz, exit) after LLVMFuzzerInitialize:
		   a write past RLIMIT_FSIZE must fail with EFBIG, not end the run */
		signal(SIGXFSZ, SIG_IGN);
		xfsz_ignored = 1;
	}
	/* the exits first, then the lwC's memory: short inputs already do something */
	memset(arena, 0, ARENA);
	memcpy(arena, data + opsize, size - opsize < SEED ? size - opsize : SEED);
	/* the window's pages are zero: reads_check cleared them after the last input */
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
		ticks = 0;
		int sigret = 0;
		if (kind >= TSIG_KIND && kind % 3 != 2) {
			tsig_op(r, tsig[sel % NTSIG], a);
			sigret = r->rax == SYS_rt_sigreturn;
			timer_settime(tick, 0, &on, NULL);
			vmlwc_hostonly_doorbell(v, VMLWC_DB_SYSCALL);
			timer_settime(tick, 0, &off, NULL);
			v->sig_sync = 0; /* a forged frame's SIGSEGV: a guest would take it in its handler */
		} else if (kind % 3 != 2) {
			syscall_regs(r, allowed[sel % NALLOWED], a);
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
		/* the host may only have returned to ring 3 in the lwC's own code (the 64 KiB region,
		   from whose first byte every exit above starts) or where a switch resumes */
		if (sigret) {
			/* rt_sigreturn goes wherever the frame says, but never outside user space */
			if (r->rip >= 0x7ffffffff000UL)
				fail("rt_sigreturn returned to ring 3 at rip %#llx", (unsigned long long)r->rip);
		} else if ((r->rip < (uintptr_t)arena || r->rip >= (uintptr_t)arena + ARENA) &&
		    r->rip != VMLWC_GATE_VA + VMLWC_GATE_SW_RESUME)
			fail("back to ring 3 at rip %#llx: not in the lwC's code (%p..%p) nor the switch's resume",
			     (unsigned long long)r->rip, (void *)arena, (void *)(arena + ARENA));
	}
	decoys_check();
	reads_check();
	state_reset();
	return 0;
}
