/* Attacks through threads, futexes, TLB coherence across vCPUs and signals, played by a hostile child lwC. */
#include <limits.h>
#include <linux/futex.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

#define PAGE 4096UL

static long futex(void *a, int op, long val, long ts_or_val2, void *a2, long val3)
{
	return syscall(SYS_futex, a, op, val, ts_or_val2, a2, val3);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void *page_new(void)
{
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

/* ---------------------------------------------------------------------------------------- */
/* 1. futexes: translated through the calling lwC's page table                               */

/* A root thread that waits on *w (private futex, as glibc's) for ms milliseconds. */
struct waiter {
	int *w;
	long ms;
	volatile int started;
	long r;
	int err;
	double took;
};

static void *waiter_fn(void *p)
{
	struct waiter *w = p;
	struct timespec ts = { w->ms / 1000, (w->ms % 1000) * 1000000L };
	double t0 = now_ms();

	w->started = 1;
	do
		w->r = futex(w->w, FUTEX_WAIT_PRIVATE, 0, (long)&ts, NULL, 0);
	while (w->r < 0 && errno == EINTR);
	w->err = w->r < 0 ? errno : 0;
	w->took = now_ms() - t0;
	return NULL;
}

static void waiter_start(struct waiter *w, pthread_t *t, int *word, long ms)
{
	memset(w, 0, sizeof(*w));
	w->w = word;
	w->ms = ms;
	cr_assert_eq(pthread_create(t, NULL, waiter_fn, w), 0);
	while (!w->started)
		sched_yield();
	sleep_ms(300); /* in the kernel's wait by now: a wake that reaches it cannot be missed */
}

enum { F_WAKE, F_REQUEUE, F_DONE };

/*
 * The hostile child's futex calls on the root's word address (what it maps there is its own
 * copy, its own page or a shared one), each reported as the count the kernel gave: wakes
 * (private and shared), WAKE_OP, and requeues of the word's waiters onto a word of the child's
 * own followed by wakes there. In a page shared on purpose they are the root's waiters.
 */
static void child_futex_ops(int *word, int mode, long out[6])
{
	static int mine; /* a word of the child's own: a requeue target it can wake at will */

	memset(out, 0, 6 * sizeof(long));
	if (mode == F_WAKE) {
		out[0] = futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, 0, NULL, 0);
		out[1] = futex(word, FUTEX_WAKE, INT_MAX, 0, NULL, 0);
		/* WAKE_OP: *mine += 0, then wake the waiters on word unconditionally (cmp: 0 == 0) */
		out[2] = futex(&mine, FUTEX_WAKE_OP_PRIVATE, 0, INT_MAX, word,
			       FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0));
	} else {
		out[0] = futex(word, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, &mine, *word);
		out[1] = futex(&mine, FUTEX_WAKE_PRIVATE, INT_MAX, 0, NULL, 0);
		out[2] = futex(word, FUTEX_REQUEUE_PRIVATE, 0, INT_MAX, &mine, 0);
		out[3] = futex(&mine, FUTEX_WAKE_PRIVATE, INT_MAX, 0, NULL, 0);
		/* and the other way: the child's (absent) waiters onto the word, woken there */
		out[4] = futex(&mine, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, word, mine);
	}
}

/* Spec for how the child gets the word's page. */
enum { W_COW, W_COW_WRITTEN, W_UNMAPPED_OWN, W_SHARED };

/* Makes a child that serves F_* requests on word; returns its descriptor. */
static int futex_child(int *word, int how)
{
	struct lwc_rspec s = { .u.mem = { (uintptr_t)word & ~(PAGE - 1), ((uintptr_t)word & ~(PAGE - 1)) + PAGE } };
	struct lwc_msg in;
	int n = 0;

	if (how == W_UNMAPPED_OWN)
		s.flags = LWC_MEM | LWC_UNMAP, n = 1;
	if (how == W_SHARED)
		s.flags = LWC_MEM | LWC_SHARE, n = 1;
	int c = lwc_create(n ? &s : NULL, n, 0, &in);
	if (c != LWC_SWITCHED) {
		cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
		return c;
	}
	/* in the child, from here on: no assertion (its memory is not the test's) */
	if (how == W_COW_WRITTEN)
		*(volatile int *)word = 0; /* its own copy, still 0 as the root's */
	if (how == W_UNMAPPED_OWN) {
		void *p = mmap((void *)((uintptr_t)word & ~(PAGE - 1)), PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			lwc_switch_discard(in.src, (long[]){ -1000 - errno }, 1);
	}
	while (in.nargs >= 1 && in.args[0] != F_DONE) {
		long out[6];
		child_futex_ops(word, (int)in.args[0], out);
		lwc_switch(in.src, out, 6, &in);
	}
	lwc_switch_discard(in.src, NULL, 0);
	_exit(99);
}

/* Runs op in child c while a root thread waits on word; returns the waiter's outcome. */
static void futex_round(int c, int *word, int op, long ms, struct waiter *w, long out[6])
{
	pthread_t t;
	struct lwc_msg in;
	long a = op;

	waiter_start(w, &t, word, ms);
	cr_assert_eq(lwc_switch(c, &a, 1, &in), LWC_SWITCHED);
	cr_assert_geq(in.nargs, 1);
	for (int i = 0; i < 6; i++)
		out[i] = in.args[i];
	cr_assert_eq(pthread_join(t, NULL), 0);
}

/* Root's own wake reaches its own waiter: the positive control for every timeout below. */
static void root_wake_works(int *word)
{
	struct waiter w;
	pthread_t t;

	waiter_start(&w, &t, word, 10000);
	cr_assert_eq(futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, 0, NULL, 0), 1, "the root's own wake found no waiter");
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(w.r, 0, "the waiter was not woken by the root: %s", strerror(w.err));
}

/*
 * A child whose page at the root's futex word is a copy (untouched: still the root's frame
 * underneath; written: its own frame) or a page of its own (the root's unmapped there, a new
 * one mapped) wakes, WAKE_OPs and requeues that address: the root's waiter must sleep to its
 * timeout and every count the child gets is 0. The root's own wake then still works.
 */
Test(attack_threads, a_child_cannot_wake_or_requeue_the_roots_futex, .timeout = 120)
{
	static const char *name[] = { "untouched copy-on-write copy", "written copy", "page of its own" };

	ENTER();
	for (int how = W_COW; how <= W_UNMAPPED_OWN; how++) {
		int *word = page_new();
		*word = 0;
		int c = futex_child(word, how);
		for (int op = F_WAKE; op <= F_REQUEUE; op++) {
			struct waiter w;
			long out[6];
			futex_round(c, word, op, 1200, &w, out);
			for (int i = 0; i < 6; i++)
				cr_assert_leq(out[i], 0, "%s, %s: the child's call %d found %ld of the root's waiters",
					      name[how], op == F_WAKE ? "wake" : "requeue", i, out[i]);
			cr_assert(w.r < 0 && w.err == ETIMEDOUT,
				  "%s, %s: the root's waiter woke (r %ld, %s) after %.0f ms: the child reached the root's futex",
				  name[how], op == F_WAKE ? "wake" : "requeue", w.r, strerror(w.err), w.took);
			cr_assert_geq(w.took, 1100);
		}
		root_wake_works(word);
		long d = F_DONE;
		lwc_switch(c, &d, 1, NULL);
		lwc_close(c);
	}
}

/*
 * Positive control: over an LWC_SHARE range the word is one futex for both (documented), so
 * the child's wake and its requeue-then-wake do reach the root's waiter. Were they not to,
 * the test above would prove nothing.
 */
Test(attack_threads, a_shared_range_is_one_futex, .timeout = 120)
{
	ENTER();
	int *word = page_new();
	*word = 0;
	int c = futex_child(word, W_SHARED);
	struct waiter w;
	long out[6];

	futex_round(c, word, F_WAKE, 10000, &w, out);
	cr_assert_eq(out[0], 1, "the child's wake on a shared word found %ld waiters", out[0]);
	cr_assert_eq(w.r, 0, "the root's waiter was not woken through the shared page: %s", strerror(w.err));
	cr_assert_lt(w.took, 5000);
	futex_round(c, word, F_REQUEUE, 10000, &w, out);
	cr_assert_eq(out[0], 1, "the child's CMP_REQUEUE on a shared word moved %ld waiters", out[0]);
	cr_assert_eq(out[1], 1, "the wake after the requeue found %ld waiters", out[1]);
	cr_assert_eq(w.r, 0, "the requeued waiter was not woken: %s", strerror(w.err));
}

/* ---------------------------------------------------------------------------------------- */
/* 2. a stale translation on another vCPU after munmap, while the freed frame is reused        */

#define OLD 0x01d01d01d01d01d0ULL
#define NEW 0x0e70e70e70e70e70ULL
#define SECRET 0x5ec2e75ec2e75ec2ULL
#define AMARK 0xaaaa5555aaaa5555ULL
#define ZPAGES 16

static volatile uint64_t *X; /* the page thread A reads, in lwC C1 */
static uint8_t *Z;           /* pages D copies and fills with its secret */
static volatile int a_stop, a_ready;
static volatile uint64_t a_reads, a_faults, a_secret, a_other, a_bad_value;
static sigjmp_buf a_env, b_env;
static __thread int is_a;
static volatile long b_faults;
static volatile long *st_res; /* MAP_SHARED: seen by the root and C1 alike */

static void a_segv(int sig)
{
	(void)sig;
	if (!is_a) { /* B's own write to its own new mapping faulted: wrong, and the round ends */
		b_faults++;
		siglongjmp(b_env, 1);
	}
	siglongjmp(a_env, 1); /* SA_NODEFER: no mask to restore */
}

/* Thread A, in C1 on its own vCPU: reads X and writes its last word, without a syscall. */
static void *reader(void *arg)
{
	(void)arg;
	is_a = 1;
	if (sigsetjmp(a_env, 0))
		a_faults++;
	a_ready = 1;
	while (!a_stop) {
		for (int i = 0; i < 511; i += 73) {
			uint64_t x = X[i];
			a_reads++;
			if (x == SECRET)
				a_secret++;
			else if (x != OLD && x != NEW && x != 0)
				a_other++, a_bad_value = x;
		}
		X[511] = AMARK;
	}
	return NULL;
}

/*
 * Thread A reads and writes a page of lwC C1 (a pool frame: C1's copy) in a loop on its own
 * vCPU, never exiting. Thread B, in C1 too, munmaps it (or first mprotects it PROT_NONE), then
 * makes a child D of C1 whose copy-on-write faults take frames from the pool (the freed one
 * first, were it free) and fill them with a secret, closes D, and maps a new page at the
 * address. A must see only the old value, the new one, a zero page or a fault: never D's
 * secret (a stale TLB entry on A's vCPU), and D's pages must never hold A's mark.
 */
Test(attack_threads, no_stale_translation_reaches_a_reused_frame, .timeout = 300)
{
	struct lwc_msg in;

	ENTER();
	st_res = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq((void *)st_res, MAP_FAILED);
	X = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	Z = mmap(NULL, ZPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq((void *)X, MAP_FAILED);
	cr_assert_neq((void *)Z, MAP_FAILED);
	memset(Z, 0x11, ZPAGES * PAGE); /* the root's frames: D's faults copy them */
	int c1 = lwc_create(NULL, 0, 0, &in);
	if (c1 == LWC_SWITCHED) {
		struct sigaction sa = { .sa_handler = a_segv, .sa_flags = SA_NODEFER };
		volatile long rounds = 0, d_corrupt = 0, errs = 0; /* kept across the longjmp */
		pthread_t a;
		double t0 = now_ms();

		sigaction(SIGSEGV, &sa, NULL);
		for (int i = 0; i < 512; i++)
			X[i] = OLD; /* C1's own frame, from the pool */
		pthread_create(&a, NULL, reader, NULL);
		while (!a_ready)
			sched_yield();
		if (sigsetjmp(b_env, 0))
			goto out; /* a SIGSEGV on B's own write: reported below */
		for (; rounds < 4000 && now_ms() - t0 < 40000; rounds++) {
			if (rounds & 1)
				errs += mprotect((void *)X, PAGE, PROT_NONE) != 0;
			errs += munmap((void *)X, PAGE) != 0;
			struct lwc_msg din;
			int d = lwc_create(NULL, 0, 0, &din);
			if (d == LWC_SWITCHED) {
				long bad = 0;
				for (int p = 0; p < ZPAGES; p++) {
					uint64_t *z = (uint64_t *)(Z + p * PAGE);
					for (int i = 0; i < 512; i++)
						z[i] = SECRET;
				}
				for (int spin = 0; spin < 2000; spin++)
					for (int p = 0; p < ZPAGES; p++)
						bad += ((volatile uint64_t *)(Z + p * PAGE))[511] != SECRET;
				lwc_switch_discard(din.src, &bad, 1);
			}
			if (d < 0) {
				errs++;
			} else {
				struct lwc_msg back;
				if (lwc_switch(d, NULL, 0, &back) == LWC_SWITCHED && back.nargs == 1)
					d_corrupt += back.args[0];
				else
					errs++;
				lwc_close(d);
			}
			void *p = mmap((void *)X, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				       -1, 0);
			errs += p != (void *)X;
			for (int i = 0; i < 511; i++)
				X[i] = (rounds & 2) ? NEW : OLD;
		}
	out:
		a_stop = 1;
		pthread_join(a, NULL);
		long res[8] = { rounds, (long)a_secret, (long)a_other, d_corrupt, errs, (long)a_reads, (long)a_faults,
				(long)b_faults };
		st_res[0] = (long)a_bad_value; /* the ninth value: LWC_MAX_ARGS is 8 */
		long dr = lwc_switch_discard(in.src, res, 8);
		int derr = errno;
		/* only when the longjmp above was taken in D (a SIGSEGV on D's own copy-on-write
		   writes: D has no in.src of C1's, so the discard fails) */
		cr_assert_fail("the discard back to the root failed (%ld, %s): lwC D (or C1) got SIGSEGV on its own "
			       "write and longjmp'ed in D? round %ld, %ld such faults", dr, strerror(derr), (long)rounds,
			       (long)b_faults);
	}
	cr_assert_geq(c1, 0);
	cr_assert_eq(lwc_switch(c1, NULL, 0, &in), LWC_SWITCHED);
	cr_assert_eq(in.nargs, 8);
	long *r = in.args;
	cr_assert_eq(r[7], 0, "round %ld: B's write to the page it had just mapped read-write got SIGSEGV "
		     "(while A on another vCPU wrote the same page)", r[0]);
	cr_log_info("%ld rounds, %ld reads by A, %ld faults", r[0], r[5], r[6]);
	cr_assert_eq(r[4], 0, "%ld calls failed in C1", r[4]);
	cr_assert_gt(r[0], 100);
	cr_assert_gt(r[5], 1000, "thread A hardly ran (%ld reads)", r[5]);
	cr_assert_eq(r[1], 0, "thread A read lwC D's secret %ld times: a stale translation on its vCPU", r[1]);
	cr_assert_eq(r[2], 0, "thread A read %ld foreign values (last %#lx)", r[2], (unsigned long)st_res[0]);
	cr_assert_eq(r[3], 0, "lwC D's secret pages changed under it %ld times: A wrote into a freed frame", r[3]);
}

/* ---------------------------------------------------------------------------------------- */
/* 3. signals a child sends to threads of other lwCs                                          */

static volatile int root_hits, child_mark, last_code;
static volatile long last_value;
static volatile pid_t t_tid;
static volatile int t_stop;

static void root_h(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	last_code = si->si_code;
	last_value = (long)si->si_value.sival_ptr;
	root_hits++;
}

static void child_h(int sig)
{
	(void)sig;
	child_mark = 0xc41d; /* the child's memory only: the root's copy must stay 0 */
}

static void *sleeper(void *arg)
{
	(void)arg;
	t_tid = gettid();
	while (!t_stop)
		sleep_ms(5);
	return NULL;
}

enum { S_TGKILL, S_TKILL, S_QUEUE, S_SELF, S_LIMITED, S_END };

static long child_signal(int mode)
{
	siginfo_t si;

	switch (mode) {
	case S_TGKILL:
		return syscall(SYS_tgkill, getpid(), t_tid, SIGUSR1) < 0 ? -errno : 0;
	case S_TKILL:
		return syscall(SYS_tkill, t_tid, SIGUSR1) < 0 ? -errno : 0;
	case S_QUEUE:
		memset(&si, 0, sizeof(si));
		si.si_signo = SIGUSR1;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_value.sival_ptr = (void *)0x1234;
		return syscall(SYS_rt_tgsigqueueinfo, getpid(), t_tid, SIGUSR1, &si) < 0 ? -errno : 0;
	case S_SELF:
		if (syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1) < 0)
			return -errno;
		return child_mark; /* the handler ran before the call returned to ring 3 */
	case S_LIMITED: {
		static const long allowed[] = { SYS_getpid, SYS_gettid };
		long e = 0;
		if (lwc_limit_syscalls(allowed, 2) != 0)
			return -1000;
		memset(&si, 0, sizeof(si));
		si.si_signo = SIGUSR1;
		si.si_code = SI_QUEUE;
		/* each must be refused: EPERM, and nothing sent */
		e |= !(syscall(SYS_kill, getpid(), SIGKILL) < 0 && errno == EPERM) << 0;
		e |= !(syscall(SYS_tgkill, getpid(), t_tid, SIGUSR1) < 0 && errno == EPERM) << 1;
		e |= !(syscall(SYS_tkill, t_tid, SIGKILL) < 0 && errno == EPERM) << 2;
		e |= !(syscall(SYS_rt_tgsigqueueinfo, getpid(), t_tid, SIGUSR1, &si) < 0 && errno == EPERM) << 3;
		e |= !(syscall(SYS_rt_sigqueueinfo, getpid(), SIGKILL, &si) < 0 && errno == EPERM) << 4;
		e |= !(syscall(SYS_kill, 0, SIGKILL) < 0 && errno == EPERM) << 5;
		return e;
	}
	}
	return -2000;
}

static void wait_hits(int want)
{
	for (int i = 0; i < 400 && root_hits < want; i++)
		sleep_ms(5);
}

/*
 * A child with a handler of its own for SIGUSR1 sends SIGUSR1 with tgkill, tkill and
 * rt_tgsigqueueinfo to a thread running in the root. Documented rule (redirection.md,
 * Signals): the calls go to the kernel and the lwC where the *target* thread is decides, so
 * the root's handler runs, in the root, once per signal, and the child's handler never runs
 * there (its mark stays 0 in the root's memory). Sent to itself, the child's own handler runs
 * in the child: the mark lands in the child's memory, not the root's. Under
 * lwc_limit_syscalls without them, every such call (kill of the whole process with SIGKILL
 * included) is refused and nothing arrives.
 */
Test(attack_threads, signals_from_a_child_land_in_the_targets_lwc, .timeout = 120)
{
	struct sigaction sa = { .sa_sigaction = root_h, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct lwc_msg in;
	pthread_t t;

	ENTER();
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	cr_assert_eq(pthread_create(&t, NULL, sleeper, NULL), 0);
	while (!t_tid)
		sched_yield();
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		struct sigaction ca = { .sa_handler = child_h };
		sigaction(SIGUSR1, &ca, NULL);
		while (in.nargs >= 1 && in.args[0] != S_END) {
			long r = child_signal((int)in.args[0]);
			lwc_switch(in.src, &r, 1, &in);
		}
		lwc_switch_discard(in.src, NULL, 0);
	}
	cr_assert_geq(c, 0);
	static const char *what[] = { "tgkill", "tkill", "rt_tgsigqueueinfo" };
	for (int mode = S_TGKILL; mode <= S_QUEUE; mode++) {
		long a = mode;
		cr_assert_eq(lwc_switch(c, &a, 1, &in), LWC_SWITCHED);
		cr_assert_eq(in.args[0], 0, "%s from the child failed: %s", what[mode], strerror((int)-in.args[0]));
		wait_hits(mode + 1);
		cr_assert_eq(root_hits, mode + 1, "%s from the child: the root's handler ran %d times", what[mode],
			     root_hits);
		cr_assert_eq(child_mark, 0, "%s: the child's handler ran in the root, with the root's memory", what[mode]);
	}
	cr_assert_eq(last_code, SI_QUEUE);
	cr_assert_eq(last_value, 0x1234);
	long a = S_SELF;
	cr_assert_eq(lwc_switch(c, &a, 1, &in), LWC_SWITCHED);
	cr_assert_eq(in.args[0], 0xc41d, "the child's signal to itself did not run its own handler there (%ld)",
		     in.args[0]);
	sleep_ms(100);
	cr_assert_eq(child_mark, 0, "the child's handler wrote the root's memory");
	cr_assert_eq(root_hits, 3, "the child's signal to itself ran the root's handler");
	a = S_LIMITED;
	cr_assert_eq(lwc_switch(c, &a, 1, &in), LWC_SWITCHED);
	cr_assert_eq(in.args[0], 0, "under a limit without them, signal calls were not refused (mask %#lx)",
		     in.args[0]);
	sleep_ms(200);
	cr_assert_eq(root_hits, 3, "a signal from the limited child arrived");
	t_stop = 1;
	cr_assert_eq(pthread_join(t, NULL), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* 4. forged signal frames                                                                    */

#define FX_SECRET 0x5ec2e7f95ec2e7f9ULL

static uint8_t *fx_page;      /* the root's: a valid FXSAVE image whose xmm0 is the secret; absent in the child */
static volatile int forge_case, resumed, segv_seen;
static volatile uint64_t xmm0_after, xmm0_in_segv, cs_after, flags_after, fs_after, fs_before;
static sigjmp_buf forge_env;
static ucontext_t saved_uc;   /* a genuine frame's context, copied by the handler (case 9) */
static uint8_t land_stack[16384] __attribute__((aligned(16)));

enum {
	FC_RIP_GATE, FC_RIP_KERNEL, FC_RIP_NONCANON, FC_CS_RING0, FC_SS_RING0, FC_FS_SEL, FC_FP_OTHER_LWC,
	FC_FP_KERNEL, FC_FP_LIBRARY, FC_IOPL, FC_DIRECT_GOOD, FC_DIRECT_KERNEL_RIP, FC_N
};
static const char *fc_name[] = { "rip in the gate", "rip in the kernel half", "rip not canonical",
				 "CS ring 0", "SS ring 0", "FS selector", "fpstate in another lwC's page",
				 "fpstate in the kernel half", "fpstate in library memory", "IOPL 3 and NT",
				 "direct rt_sigreturn, sound frame", "direct rt_sigreturn, kernel rip" };

static uint64_t xmm0(void)
{
	uint64_t x;
	__asm__ volatile("movq %%xmm0, %0" : "=r"(x));
	return x;
}

static void forge_segv(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;
	(void)sig, (void)si;
	segv_seen++;
	/* the frame the library built for this handler: its saved vector state is the thread's */
	if (uc->uc_mcontext.fpregs)
		memcpy((void *)&xmm0_in_segv, &uc->uc_mcontext.fpregs->_xmm[0], 8);
	siglongjmp(forge_env, 1);
}

static void forge_usr1(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;
	greg_t *g = uc->uc_mcontext.gregs;
	(void)sig, (void)si;

	switch (forge_case) {
	case FC_RIP_GATE: g[REG_RIP] = (greg_t)(VMLWC_GATE_VA + 0x10); break;
	case FC_RIP_KERNEL: g[REG_RIP] = (greg_t)0xffffffff81000000UL; break;
	case FC_RIP_NONCANON: g[REG_RIP] = (greg_t)0x0000800000000000UL; break;
	/* REG_CSGSFS: cs | gs << 16 | fs << 32 | ss << 48 */
	case FC_CS_RING0: g[REG_CSGSFS] = (g[REG_CSGSFS] & ~0xffffL) | 0x08; break;
	case FC_SS_RING0: g[REG_CSGSFS] = (g[REG_CSGSFS] & ~(0xffffL << 48)) | (0x10L << 48); break;
	case FC_FS_SEL: g[REG_CSGSFS] |= 0xffffL << 32; break;
	case FC_FP_OTHER_LWC: uc->uc_mcontext.fpregs = (fpregset_t)fx_page; break;
	case FC_FP_KERNEL: uc->uc_mcontext.fpregs = (fpregset_t)0xffff888000000000UL; break;
	case FC_FP_LIBRARY: uc->uc_mcontext.fpregs = (fpregset_t)(VMLWC_GATE_VA); break;
	case FC_IOPL: g[REG_EFL] |= 0x3000 | 0x4000; break;
	default: saved_uc = *uc; break; /* for the direct rt_sigreturn cases */
	}
}

/* Where a sound direct rt_sigreturn lands: back to the test with a longjmp. */
static void landing(void)
{
	resumed = 2;
	siglongjmp(forge_env, 2);
}

/* rt_sigreturn with rsp at a crafted ucontext (what a handler's ret leaves), no signal pending. */
static void direct_sigreturn(ucontext_t *uc)
{
	__asm__ volatile("mov %0, %%rsp\n\tmov $15, %%eax\n\tsyscall\n\tud2" : : "r"(uc) : "memory");
}

/* In the hostile child: one forged frame, then what it got. Exit status for the parent. */
static int forge_in_child(int k)
{
	struct sigaction su = { .sa_sigaction = forge_usr1, .sa_flags = SA_SIGINFO };
	struct sigaction ss = { .sa_sigaction = forge_segv, .sa_flags = SA_SIGINFO | SA_NODEFER };
	static ucontext_t crafted;

	forge_case = k;
	sigaction(SIGUSR1, &su, NULL);
	sigaction(SIGSEGV, &ss, NULL);
	sigaction(SIGBUS, &ss, NULL);
	sigaction(SIGILL, &ss, NULL);
	syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs_before);
	uint64_t mine = 0x1111;
	__asm__ volatile("movq %0, %%xmm0" : : "r"(mine) : "xmm0");
	if (sigsetjmp(forge_env, 1) == 0) {
		if (k < FC_DIRECT_GOOD) {
			syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
			resumed = 1; /* the forged frame was taken with what it was sanitized to */
		} else {
			syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1); /* a genuine frame to start from */
			crafted = saved_uc;
			crafted.uc_mcontext.fpregs = NULL; /* no vector state: cleared, as on Linux */
			crafted.uc_mcontext.gregs[REG_RSP] = (greg_t)(land_stack + sizeof(land_stack) - 8);
			crafted.uc_mcontext.gregs[REG_RIP] = k == FC_DIRECT_GOOD ? (greg_t)landing
									  : (greg_t)0xffffffff81000000UL;
			sigemptyset(&crafted.uc_sigmask);
			direct_sigreturn(&crafted);
		}
	}
	uint16_t cs;
	uint64_t fl;
	__asm__ volatile("mov %%cs, %0\n\tpushfq\n\tpop %1" : "=r"(cs), "=r"(fl));
	cs_after = cs;
	flags_after = fl;
	xmm0_after = xmm0();
	syscall(SYS_arch_prctl, 0x1003, &fs_after);
	return 0;
}

static uint64_t root_canary[512] __attribute__((aligned(4096)));

static int forge_process(int k)
{
	struct lwc_msg in;

	fx_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fx_page == MAP_FAILED)
		return 20;
	/* a genuine FXSAVE image of the root's with the secret in xmm0 */
	uint64_t s = FX_SECRET;
	__asm__ volatile("movq %0, %%xmm0\n\tfxsave64 (%1)" : : "r"(s), "r"(fx_page) : "xmm0", "memory");
	for (int i = 0; i < 512; i++)
		root_canary[i] = FX_SECRET ^ (uint64_t)i;
	struct lwc_rspec sp = { .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)fx_page, (uintptr_t)fx_page + PAGE } };
	int c = lwc_create(&sp, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		forge_in_child(k);
		long r[7] = { resumed, segv_seen, (long)xmm0_after, (long)xmm0_in_segv, (long)cs_after,
			      (long)flags_after, fs_after == fs_before };
		lwc_switch_discard(in.src, r, 7);
	}
	if (c < 0)
		return 21;
	if (lwc_switch(c, NULL, 0, &in) != LWC_SWITCHED || in.nargs != 7)
		return 22;
	long *r = in.args;
	if ((uint64_t)r[2] == FX_SECRET || (uint64_t)r[3] == FX_SECRET)
		return 3; /* the child's vector registers got the root's secret */
	if ((r[4] & 3) != 3)
		return 4; /* the thread resumed at a privilege other than ring 3 */
	if (r[5] & 0x7000)
		return 5; /* IOPL or NT reached the thread */
	if (!r[6])
		return 6; /* the FS base changed */
	if (k == FC_DIRECT_GOOD && r[0] != 2)
		return 7; /* the sound crafted frame was not taken: the direct call does not work at all */
	if (k != FC_DIRECT_GOOD && k != FC_CS_RING0 && k != FC_SS_RING0 && k != FC_FS_SEL && k != FC_IOPL &&
	    k != FC_RIP_GATE && !r[1])
		return 8; /* a forged rip or fpstate was taken without SIGSEGV */
	for (int i = 0; i < 512; i++)
		if (root_canary[i] != (FX_SECRET ^ (uint64_t)i))
			return 9;
	if (((uint64_t *)fx_page)[20] != FX_SECRET) /* xmm0's slot in the image (byte 160) */
		return 10;
	return 0;
}

/*
 * A hostile child's SIGUSR1 handler edits its ucontext before returning: rip into the gate, the
 * kernel half or not canonical; CS or SS ring 0 selectors; a garbage FS selector; fpstate in the
 * root's page the child does not map (a valid FXSAVE image whose xmm0 is the root's secret), in
 * the kernel half or in library memory; IOPL 3 and NT. And rt_sigreturn called directly with a
 * crafted frame and nothing pending (a sound one must land, a kernel rip must not). Each case
 * runs in a process of its own: it may die of SIGSEGV as on Linux, or be caught by the child's
 * SIGSEGV handler, or go on sanitized; never abort (a library panic), never resume off ring 3,
 * never hold the root's secret in a vector register, and the root's memory stays intact.
 */
Test(attack_threads, forged_signal_frames_gain_nothing, .timeout = 300)
{
	for (int k = 0; k < FC_N; k++) {
		if (getenv("FORGE_CASE") && atoi(getenv("FORGE_CASE")) != k) /* one case, by hand */
			continue;
		pid_t p = fork();
		int st = 0;
		if (p == 0) {
			if (vmlwc_init(NULL) != 0)
				_exit(200);
			alarm(10); /* a jump into the gate's code may spin there, as a plain jmp would */
			_exit(forge_process(k));
		}
		cr_assert_gt(p, 0);
		/* a thread spinning in the gate's code never takes even SIGALRM (found so: reported);
		   SIGKILL still ends it, from here */
		int w = 0;
		for (int ms = 0; (w = waitpid(p, &st, WNOHANG)) == 0 && ms < 15000; ms += 10)
			sleep_ms(10);
		if (w == 0) {
			kill(p, SIGKILL);
			cr_assert_eq(waitpid(p, &st, 0), p);
		}
		cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 200), "vmlwc_init failed in the child");
		cr_log_info("%s: status %#x", fc_name[k], st);
		cr_expect((WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
				  (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && k != FC_DIRECT_GOOD) ||
				  (WIFSIGNALED(st) && (WTERMSIG(st) == SIGALRM || WTERMSIG(st) == SIGKILL) &&
				   k == FC_RIP_GATE),
			  "%s: status %#x (exit 3: the root's secret in xmm0, 4: not ring 3, 5: IOPL/NT, 6: FS base, "
			  "7: sound frame not taken, 8: forged frame taken, 9/10: root memory changed; signal 6: a "
			  "library panic)",
			  fc_name[k], st);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* 5. a thread made inside a child sees only the child's memory                               */

static volatile uint64_t *hidden;
static sigjmp_buf t5_env;
static volatile long t5_faults, t5_read, t5_write_err;

static void t5_segv(int sig)
{
	(void)sig;
	t5_faults++;
	siglongjmp(t5_env, 1);
}

static void *t5_thread(void *arg)
{
	int *pfd = arg;
	(void)arg;
	if (sigsetjmp(t5_env, 1) == 0)
		t5_read = (long)hidden[0]; /* must fault */
	if (sigsetjmp(t5_env, 1) == 0)
		hidden[1] = 0xbad; /* must fault too */
	/* and a syscall that passes the address gets EFAULT */
	t5_write_err = write(pfd[1], (const void *)hidden, 8) < 0 ? errno : 0;
	return NULL;
}

/*
 * The root has a secret page that its child does not map (LWC_UNMAP). A thread the child makes
 * with pthread_create (a guest thread in the child's lwC, on a new vCPU) reads it, writes it and
 * passes it to write(2): both touches fault into the child's SIGSEGV handler, the syscall gets
 * EFAULT, nothing of the secret reaches the thread or the pipe, and the root's page is intact.
 */
Test(attack_threads, a_thread_made_in_a_child_cannot_see_unmapped_memory, .timeout = 120)
{
	struct lwc_msg in;
	int pfd[2];

	ENTER();
	hidden = page_new();
	hidden[0] = SECRET;
	hidden[1] = SECRET;
	cr_assert_eq(pipe2(pfd, O_NONBLOCK), 0);
	struct lwc_rspec sp = { .flags = LWC_MEM | LWC_UNMAP,
				.u.mem = { (uintptr_t)hidden, (uintptr_t)hidden + PAGE } };
	int c = lwc_create(&sp, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		struct sigaction sa = { .sa_handler = t5_segv };
		pthread_t t;
		long r = -1;
		sigaction(SIGSEGV, &sa, NULL);
		if (pthread_create(&t, NULL, t5_thread, pfd) == 0 && pthread_join(t, NULL) == 0)
			r = 0;
		long res[4] = { r, t5_faults, t5_read, t5_write_err };
		lwc_switch_discard(in.src, res, 4);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_assert_eq(in.args[0], 0, "pthread_create/join failed in the child");
	cr_assert_neq((uint64_t)in.args[2], SECRET, "the child's thread read the root's unmapped secret");
	cr_assert_eq(in.args[1], 2, "the child's thread touched the unmapped page with %ld faults, not 2", in.args[1]);
	cr_assert_eq(in.args[3], EFAULT, "write(2) from the hidden page: %s, not EFAULT", strerror((int)in.args[3]));
	uint64_t got = 0;
	cr_assert_eq(read(pfd[0], &got, 8), -1, "the pipe holds %#lx: the host read the hidden page", got);
	cr_assert_eq(hidden[0], SECRET);
	cr_assert_eq(hidden[1], SECRET, "the child's thread wrote the root's page");
}

/* ---------------------------------------------------------------------------------------- */
/* 6. lwc_close of a child while another thread runs in it or switches to it                 */

struct close_arg {
	int c;
	long r;
	int err;
	long got;
};

static volatile int *shared6; /* LWC_SHARE page: [0] entered round, [1] may leave, [2] switches */

static void *run_in_child(void *p)
{
	struct close_arg *a = p;
	struct lwc_msg in;

	a->r = lwc_switch(a->c, NULL, 0, &in);
	a->err = errno;
	a->got = in.nargs >= 1 ? in.args[0] : -1;
	return NULL;
}

/*
 * Each round a thread switches into a fresh child and stays there (checking its own memory in a
 * loop) while the main thread closes the root's only descriptor for it; the child then leaves
 * through its own descriptor for the root. Documented (lwc_close.md): a running lwC is never
 * freed under its thread, so the thread finds its memory whole and comes back with the child's
 * answer; the child then goes (1100 rounds run past the 1024 lwC slots, so nothing leaks), and
 * the closed number is EBADF.
 */
Test(attack_threads, closing_a_child_another_thread_runs_in, .timeout = 300)
{
	ENTER();
	shared6 = page_new();
	uint64_t *own = page_new();
	struct lwc_rspec sp = { .flags = LWC_MEM | LWC_SHARE,
				.u.mem = { (uintptr_t)shared6, (uintptr_t)shared6 + PAGE } };
	for (int round = 1; round <= 1100; round++) {
		struct lwc_msg in;
		int c = lwc_create(&sp, 1, 0, &in);
		if (c == LWC_SWITCHED) {
			long bad = 0;
			for (int i = 0; i < 512; i++)
				own[i] = (uint64_t)round * 0x10001 + (uint64_t)i;
			__atomic_store_n(&shared6[0], round, __ATOMIC_SEQ_CST);
			while (!__atomic_load_n(&shared6[1], __ATOMIC_SEQ_CST))
				for (int i = 0; i < 512; i++)
					bad += own[i] != (uint64_t)round * 0x10001 + (uint64_t)i;
			long res = bad ? -bad : 0xc105e;
			lwc_switch_discard(in.src, &res, 1);
		}
		cr_assert_geq(c, 0, "round %d: lwc_create: %s (closed lwCs not freed?)", round, strerror(errno));
		struct close_arg a = { .c = c };
		pthread_t t;
		shared6[1] = 0;
		cr_assert_eq(pthread_create(&t, NULL, run_in_child, &a), 0);
		while (__atomic_load_n(&shared6[0], __ATOMIC_SEQ_CST) != round)
			sched_yield();
		cr_assert_eq(lwc_close(c), 0, "round %d: lwc_close: %s", round, strerror(errno));
		__atomic_store_n(&shared6[1], 1, __ATOMIC_SEQ_CST);
		cr_assert_eq(pthread_join(t, NULL), 0);
		cr_assert_eq(a.r, LWC_SWITCHED, "round %d: the thread in the closed child came back with %ld (%s)", round,
			     a.r, strerror(a.err));
		cr_assert_eq(a.got, 0xc105e, "round %d: the child's memory changed under its thread (%ld)", round, a.got);
		errno = 0;
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), -1);
		cr_assert_eq(errno, EBADF);
	}
}

static void *switch_loop(void *p)
{
	struct close_arg *a = p;
	struct lwc_msg in;

	for (;;) {
		long r = lwc_switch(a->c, NULL, 0, &in);
		if (r != LWC_SWITCHED) {
			a->r = r;
			a->err = errno;
			return NULL;
		}
		a->got++;
	}
}

/*
 * A thread switches into a child and back in a tight loop while the main thread closes the
 * descriptor it uses: each switch either completes or fails with EBADF once the close is done,
 * never anything else, and the process goes on (a later create and switch work).
 */
Test(attack_threads, closing_a_child_another_thread_switches_to, .timeout = 300)
{
	ENTER();
	for (int round = 0; round < 200; round++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED)
			for (;;)
				lwc_switch(in.src, NULL, 0, &in);
		cr_assert_geq(c, 0, "round %d: lwc_create: %s", round, strerror(errno));
		struct close_arg a = { .c = c };
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, switch_loop, &a), 0);
		for (volatile int spin = 0; spin < (round % 16) * 2000; spin++)
			;
		cr_assert_eq(lwc_close(c), 0);
		cr_assert_eq(pthread_join(t, NULL), 0);
		cr_assert(a.r == -1 && a.err == EBADF, "round %d: a switch to the closed child gave %ld (%s) after %ld",
			  round, a.r, strerror(a.err), a.got);
	}
	/* still sound */
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		lwc_switch_discard(in.src, (long[]){ 77 }, 1);
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_assert_eq(in.args[0], 77);
}
