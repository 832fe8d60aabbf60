/* Signal delivery in the guest: faults, flags, masks, waits, timers, ucontext, sigreturn, lwCs, against native Linux. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>

#include "guest_common.h"

#define PG 4096

/*
 * Runs fn in a forked child that never enters the guest and copies back what it saw, so each
 * guest run is held to what this kernel does rather than to what the test assumes it does.
 */
static void native_run(void (*fn)(void *), void *out, size_t n)
{
	int pfd[2], st;

	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		memset(out, 0, n);
		fn(out);
		_exit(write(pfd[1], out, n) == (ssize_t)n ? 0 : 1);
	}
	cr_assert_gt(pid, 0);
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], out, n), (ssize_t)n, "the native run reported nothing");
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "native run status %#x", st);
}

static int is_blocked(int sig)
{
	sigset_t cur;

	sigprocmask(SIG_SETMASK, NULL, &cur);
	return sigismember(&cur, sig);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A thread that sends sig to one thread after a delay, then optionally writes to a pipe. */
struct later {
	pthread_t target;
	int sig, delay_ms, wfd, wdelay_ms;
};

static void *signal_later(void *arg)
{
	struct later *l = arg;

	usleep(l->delay_ms * 1000);
	pthread_kill(l->target, l->sig);
	if (l->wfd >= 0) {
		usleep(l->wdelay_ms * 1000);
		if (write(l->wfd, "xyz", 3) != 3)
			abort();
	}
	return NULL;
}

/* SIGSEGV codes and addresses, escaping with siglongjmp */

static sigjmp_buf jb;
static volatile sig_atomic_t hits;
static volatile int last_signo, last_code;
static void *volatile last_addr;

static void on_segv_jump(int sig, siginfo_t *si, void *uc)
{
	last_signo = sig;
	last_code = si->si_code;
	last_addr = si->si_addr;
	hits++;
	siglongjmp(jb, 1);
}

struct segv_seen {
	int hits, ok, first_bad, bad_code, no_fault;
	int blocked_after, pid_ok, mem_ok, ro_intact;
};

static void segv_rounds(void *out)
{
	struct segv_seen *s = out;
	struct sigaction sa = { .sa_sigaction = on_segv_jump, .sa_flags = SA_SIGINFO };

	s->first_bad = -1;
	hits = 0;
	sigaction(SIGSEGV, &sa, NULL);
	char *ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(ro, 0x5a, PG);
	mprotect(ro, PG, PROT_READ);
	/* a hole between two mappings stays unmapped: nothing here maps at a fixed address */
	char *three = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *hole = three + PG;
	munmap(hole, PG);
	for (int i = 0; i < 1000; i++) {
		char *volatile target = (i & 1) ? hole + (i * 13) % PG : ro + (i * 7) % PG;
		int want = (i & 1) ? SEGV_MAPERR : SEGV_ACCERR;
		if (sigsetjmp(jb, 1) == 0) {
			*(volatile char *)target = 1;
			s->no_fault++;
		} else if (last_signo == SIGSEGV && last_code == want && last_addr == target) {
			s->ok++;
		} else if (s->first_bad < 0) {
			s->first_bad = i;
			s->bad_code = last_code;
		}
	}
	s->hits = hits;
	s->blocked_after = is_blocked(SIGSEGV);
	s->pid_ok = syscall(SYS_getpid) == getpid() && getpid() > 0;
	size_t n = 1 << 20;
	unsigned char *m = malloc(n);
	memset(m, 3, n);
	long sum = 0;
	for (size_t i = 0; i < n; i += 4096)
		sum += m[i];
	s->mem_ok = sum == 3 * (long)(n / 4096);
	free(m);
	s->ro_intact = ro[0] == 0x5a && ro[PG - 1] == 0x5a;
}

Test(signals, segv_codes_addresses_and_longjmp_loop, .timeout = 300)
{
	struct segv_seen n, g;

	native_run(segv_rounds, &n, sizeof(n));
	cr_assert_eq(n.ok, 1000, "native: %d of 1000 (first bad round %d, code %d)", n.ok, n.first_bad, n.bad_code);
	ENTER();
	memset(&g, 0, sizeof(g));
	segv_rounds(&g);
	cr_expect_eq(g.no_fault, 0, "%d writes did not fault", g.no_fault);
	cr_expect_eq(g.hits, 1000, "handler ran %d times", g.hits);
	cr_expect_eq(g.ok, 1000, "%d of 1000 with the right code and address; first bad round %d had si_code %d",
		     g.ok, g.first_bad, g.bad_code);
	cr_expect_eq(g.blocked_after, 0, "SIGSEGV still blocked after siglongjmp");
	cr_expect(g.pid_ok && g.mem_ok && g.ro_intact, "after the loop: pid %d mem %d ro %d", g.pid_ok, g.mem_ok,
		  g.ro_intact);
}

/* A fault in a child lwC is the child's to handle */

static volatile int root_state = 1234;
static volatile int root_hits, child_hits;

static void on_segv_root(int sig, siginfo_t *si, void *uc)
{
	root_hits++;
	siglongjmp(jb, 1);
}

static void on_segv_child(int sig, siginfo_t *si, void *uc)
{
	child_hits++;
	last_code = si->si_code;
	last_addr = si->si_addr;
	siglongjmp(jb, 2);
}

Test(signals, fault_in_child_lwc_handled_there, .timeout = 120)
{
	struct sigaction sa = { .sa_sigaction = on_segv_root, .sa_flags = SA_SIGINFO }, q;
	struct lwc_msg in;

	ENTER();
	sigaction(SIGSEGV, &sa, NULL);
	char *ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(ro, MAP_FAILED);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		/* the child: its own handler, its own jump buffer; results go back in the message */
		struct sigaction sc = { .sa_sigaction = on_segv_child, .sa_flags = SA_SIGINFO };
		long r[6] = { 0 };
		sigaction(SIGSEGV, &sc, NULL);
		root_state = 99;
		int j = sigsetjmp(jb, 1);
		if (j == 0) {
			*(volatile char *)(ro + 40) = 1;
			r[0] = -1;
		} else {
			r[0] = j;
		}
		r[1] = child_hits;
		r[2] = root_hits;
		r[3] = last_code;
		r[4] = (long)last_addr;
		r[5] = is_blocked(SIGSEGV);
		lwc_switch_discard(in.src, r, 6);
		_exit(90);
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_assert_eq(in.nargs, 6);
	cr_expect_eq(in.args[0], 2, "child's sigsetjmp returned %ld (2: the child's handler jumped)", in.args[0]);
	cr_expect_eq(in.args[1], 1, "child handler hits %ld", in.args[1]);
	cr_expect_eq(in.args[2], 0, "the root's handler ran in the child (%ld)", in.args[2]);
	cr_expect_eq(in.args[3], SEGV_ACCERR);
	cr_expect_eq(in.args[4], (long)(ro + 40));
	cr_expect_eq(in.args[5], 0, "SIGSEGV blocked in the child after its siglongjmp");
	/* the root's memory and disposition are its own */
	cr_expect_eq(root_state, 1234);
	cr_expect_eq(root_hits, 0);
	cr_expect_eq(child_hits, 0);
	cr_assert_eq(sigaction(SIGSEGV, NULL, &q), 0);
	cr_expect_eq((void *)q.sa_sigaction, (void *)on_segv_root, "root's SIGSEGV disposition changed by the child");
	/* and the root's own fault is its own handler's */
	if (sigsetjmp(jb, 1) == 0) {
		*(volatile char *)ro = 1;
		cr_assert_fail("no fault in the root");
	}
	cr_expect_eq(root_hits, 1);
	cr_expect_eq(child_hits, 0);
}

/* A blocking read interrupted: EINTR, or restarted with SA_RESTART */

static volatile sig_atomic_t usr1_hits;
static void on_usr1(int sig)
{
	usr1_hits++;
}

static void read_interrupted(int restart)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0 };
	int p[2];
	char buf[8] = { 0 };
	pthread_t t;

	ENTER();
	usr1_hits = 0;
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	cr_assert_eq(pipe(p), 0);
	struct later l = { pthread_self(), SIGUSR1, 100, restart ? p[1] : -1, 100 };
	cr_assert_eq(pthread_create(&t, NULL, signal_later, &l), 0);
	errno = 0;
	ssize_t r = read(p[0], buf, sizeof(buf));
	int e = errno;
	pthread_join(t, NULL);
	cr_expect_eq(usr1_hits, 1, "handler ran %d times", (int)usr1_hits);
	if (restart) {
		cr_expect_eq(r, 3, "read %zd errno %d", r, e);
		cr_expect_str_eq(buf, "xyz");
	} else {
		cr_expect_eq(r, -1, "read %zd", r);
		cr_expect_eq(e, EINTR, "errno %d", e);
	}
}

Test(signals, pipe_read_eintr_without_restart, .timeout = 60)
{
	read_interrupted(0);
}

Test(signals, pipe_read_restarted_with_sa_restart, .timeout = 60)
{
	read_interrupted(1);
}

/* Handler flags, the mask inside a handler, the alternate stack */

static volatile int depth, max_depth, nested_during_raise;
static void on_usr1_nest(int sig)
{
	depth++;
	if (depth > max_depth)
		max_depth = depth;
	if (usr1_hits++ == 0) {
		raise(SIGUSR1);
		nested_during_raise = usr1_hits;
	}
	depth--;
}

/* What one flag sequence shows: compared between native and guest. */
struct flags_seen {
	int nodefer_max_depth, nodefer_nested, defer_max_depth, defer_nested, defer_hits;
	int reset_hits, reset_dfl_inside, reset_dfl_after, reset_self_blocked;
	int mask_self, mask_other, mask_third, nodefer_mask_self, nodefer_mask_other, mask_after_self, mask_after_other;
};

static struct flags_seen *fs_cur;
static int reset_query_dfl(void)
{
	struct sigaction q;

	sigaction(SIGUSR2, NULL, &q);
	return q.sa_handler == SIG_DFL;
}
static void on_usr2_reset(int sig)
{
	fs_cur->reset_hits++;
	fs_cur->reset_dfl_inside = reset_query_dfl();
	fs_cur->reset_self_blocked = is_blocked(SIGUSR2);
}
static int nodefer_mode;
static void on_usr1_mask(int sig)
{
	if (nodefer_mode) {
		fs_cur->nodefer_mask_self = is_blocked(SIGUSR1);
		fs_cur->nodefer_mask_other = is_blocked(SIGUSR2);
	} else {
		fs_cur->mask_self = is_blocked(SIGUSR1);
		fs_cur->mask_other = is_blocked(SIGUSR2);
		fs_cur->mask_third = is_blocked(SIGWINCH);
	}
}

static void flags_sequence(void *out)
{
	struct flags_seen *s = out;
	struct sigaction sa = { .sa_handler = on_usr1_nest, .sa_flags = SA_NODEFER };

	fs_cur = s;
	usr1_hits = max_depth = depth = nested_during_raise = 0;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	s->nodefer_max_depth = max_depth;
	s->nodefer_nested = nested_during_raise;
	usr1_hits = max_depth = depth = nested_during_raise = 0;
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	s->defer_max_depth = max_depth;
	s->defer_nested = nested_during_raise;
	s->defer_hits = usr1_hits;

	struct sigaction r = { .sa_handler = on_usr2_reset, .sa_flags = SA_RESETHAND };
	sigaction(SIGUSR2, &r, NULL);
	raise(SIGUSR2);
	s->reset_dfl_after = reset_query_dfl();

	struct sigaction m = { .sa_handler = on_usr1_mask };
	sigemptyset(&m.sa_mask);
	sigaddset(&m.sa_mask, SIGUSR2);
	sigaction(SIGUSR1, &m, NULL);
	nodefer_mode = 0;
	raise(SIGUSR1);
	m.sa_flags = SA_NODEFER;
	sigaction(SIGUSR1, &m, NULL);
	nodefer_mode = 1;
	raise(SIGUSR1);
	s->mask_after_self = is_blocked(SIGUSR1);
	s->mask_after_other = is_blocked(SIGUSR2);
}

Test(signals, nodefer_resethand_and_handler_mask, .timeout = 60)
{
	struct flags_seen n, g;

	native_run(flags_sequence, &n, sizeof(n));
	/* what this must show natively, so a comparison of two broken runs cannot pass */
	cr_assert_eq(n.nodefer_max_depth, 2);
	cr_assert_eq(n.defer_max_depth, 1);
	cr_assert_eq(n.defer_hits, 2);
	cr_assert(n.reset_dfl_inside && n.reset_dfl_after && n.mask_self && n.mask_other && !n.nodefer_mask_self);
	ENTER();
	memset(&g, 0, sizeof(g));
	flags_sequence(&g);
#define SAME(f) cr_expect_eq(g.f, n.f, #f ": guest %d, native %d", g.f, n.f)
	SAME(nodefer_max_depth); SAME(nodefer_nested); SAME(defer_max_depth); SAME(defer_nested);
	SAME(defer_hits); SAME(reset_hits); SAME(reset_dfl_inside); SAME(reset_dfl_after);
	SAME(reset_self_blocked); SAME(mask_self); SAME(mask_other); SAME(mask_third);
	SAME(nodefer_mask_self); SAME(nodefer_mask_other); SAME(mask_after_self); SAME(mask_after_other);
#undef SAME
}

static char *alt_lo;
static size_t alt_size;
static volatile int on_alt, ss_onstack_inside, uc_stack_ok;
static void on_usr1_alt(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	volatile char local;
	stack_t cur;

	on_alt = (char *)&local >= alt_lo && (char *)&local < alt_lo + alt_size;
	sigaltstack(NULL, &cur);
	ss_onstack_inside = !!(cur.ss_flags & SS_ONSTACK);
	uc_stack_ok = uc->uc_stack.ss_sp == alt_lo && uc->uc_stack.ss_size == alt_size;
	usr1_hits++;
}

Test(signals, handler_on_sigaltstack, .timeout = 60)
{
	struct sigaction sa = { .sa_sigaction = on_usr1_alt, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	stack_t ss, cur;

	ENTER();
	alt_size = 64 * 1024;
	alt_lo = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(alt_lo, MAP_FAILED);
	ss = (stack_t){ .ss_sp = alt_lo, .ss_size = alt_size };
	cr_assert_eq(sigaltstack(&ss, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	raise(SIGUSR1);
	cr_assert_eq(usr1_hits, 1);
	cr_expect(on_alt, "the handler's local is not on the alternate stack");
	cr_expect(ss_onstack_inside, "SS_ONSTACK not reported inside the handler");
	cr_expect(uc_stack_ok, "uc_stack does not describe the alternate stack");
	cr_assert_eq(sigaltstack(NULL, &cur), 0);
	cr_expect_eq(cur.ss_flags & SS_ONSTACK, 0, "still on the alternate stack after return");
	/* without SA_ONSTACK the same stack is not used */
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	cr_assert_eq(usr1_hits, 2);
	cr_expect(!on_alt && !ss_onstack_inside, "alternate stack used without SA_ONSTACK");
}

/* sigsuspend, sigtimedwait, sigpending */

Test(signals, sigsuspend_wakes_and_restores_mask, .timeout = 60)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t block, during;
	pthread_t t;

	ENTER();
	usr1_hits = 0;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	/* SIGUSR2 stays blocked during the wait: sent first, it must not wake it */
	sigemptyset(&during);
	sigaddset(&during, SIGUSR2);
	struct later l = { pthread_self(), SIGUSR1, 150, -1, 0 };
	pthread_kill(pthread_self(), SIGUSR2);
	cr_assert_eq(pthread_create(&t, NULL, signal_later, &l), 0);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	int r = sigsuspend(&during);
	int e = errno;
	long ms = ms_since(&t0);
	pthread_join(t, NULL);
	cr_expect_eq(r, -1);
	cr_expect_eq(e, EINTR, "errno %d", e);
	cr_expect_eq(usr1_hits, 1);
	cr_expect_geq(ms, 100, "woke after %ld ms, before the signal was sent", ms);
	cr_expect(is_blocked(SIGUSR1) && is_blocked(SIGUSR2), "mask not restored after sigsuspend");
	sigset_t pend;
	sigemptyset(&pend);
	cr_assert_eq(sigpending(&pend), 0);
	cr_expect(sigismember(&pend, SIGUSR2), "the blocked SIGUSR2 is not pending");
	cr_expect(!sigismember(&pend, SIGUSR1), "SIGUSR1 still pending after its handler ran");
}

Test(signals, sigtimedwait_consumes_and_times_out, .timeout = 60)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t set, pend;
	siginfo_t si;

	ENTER();
	usr1_hits = 0;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigemptyset(&pend);
	sigpending(&pend);
	cr_expect(!sigismember(&pend, SIGUSR1));
	cr_assert_eq(sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 777 }), 0);
	sigpending(&pend);
	cr_expect(sigismember(&pend, SIGUSR1), "sigqueue'd SIGUSR1 not pending");
	struct timespec to = { 1, 0 };
	memset(&si, 0, sizeof(si));
	cr_assert_eq(sigtimedwait(&set, &si, &to), SIGUSR1, "%s", strerror(errno));
	cr_expect_eq(si.si_signo, SIGUSR1);
	cr_expect_eq(si.si_code, SI_QUEUE, "si_code %d", si.si_code);
	cr_expect_eq(si.si_value.sival_int, 777);
	cr_expect_eq(si.si_pid, getpid());
	cr_expect_eq(si.si_uid, getuid());
	cr_expect_eq(usr1_hits, 0, "the handler ran for a signal sigtimedwait took");
	sigpending(&pend);
	cr_expect(!sigismember(&pend, SIGUSR1), "still pending after sigtimedwait took it");
	/* the raw call, with a kill: SI_USER */
	kill(getpid(), SIGRTMIN + 2);
	memset(&si, 0, sizeof(si));
	cr_expect_eq(syscall(SYS_rt_sigtimedwait, &set, &si, &to, 8), SIGRTMIN + 2);
	cr_expect_eq(si.si_code, SI_USER);
	/* nothing pending: EAGAIN after the timeout, not before */
	struct timespec shortto = { 0, 80 * 1000 * 1000 }, t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	cr_expect_eq(sigtimedwait(&set, &si, &shortto), -1);
	cr_expect_eq(errno, EAGAIN, "errno %d", errno);
	long ms = ms_since(&t0);
	cr_expect(ms >= 70 && ms < 2000, "timed out after %ld ms", ms);
	cr_expect_eq(usr1_hits, 0);
}

/* alarm, ITIMER_REAL, nanosleep */

static volatile sig_atomic_t alrm_hits;
static volatile int alrm_code;
static void on_alrm(int sig, siginfo_t *si, void *uc)
{
	alrm_hits++;
	alrm_code = si->si_code;
}

static void alarm_code_native(void *out)
{
	struct sigaction sa = { .sa_sigaction = on_alrm, .sa_flags = SA_SIGINFO };

	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	pause();
	*(int *)out = alrm_code;
}

Test(signals, alarm_and_itimer_real, .timeout = 60)
{
	struct sigaction sa = { .sa_sigaction = on_alrm, .sa_flags = SA_SIGINFO };
	int native_code;

	native_run(alarm_code_native, &native_code, sizeof(native_code));
	ENTER();
	sigaction(SIGALRM, &sa, NULL);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(alarm(1), 0);
	errno = 0;
	cr_expect_eq(pause(), -1);
	cr_expect_eq(errno, EINTR);
	long ms = ms_since(&t0);
	cr_expect_eq(alrm_hits, 1);
	cr_expect(ms >= 900 && ms < 5000, "alarm(1) after %ld ms", ms);
	cr_expect_eq(alrm_code, native_code, "si_code %d, native %d", alrm_code, native_code);

	/* one shot */
	alrm_hits = 0;
	struct itimerval it = { .it_value = { 0, 50 * 1000 } }, cur;
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	while (!alrm_hits && ms_since(&t0) < 10000)
		pause();
	cr_expect_eq(alrm_hits, 1);
	usleep(200 * 1000);
	cr_expect_eq(alrm_hits, 1, "a one-shot timer fired again");

	/* periodic: several ticks, then off */
	alrm_hits = 0;
	it = (struct itimerval){ .it_value = { 0, 20 * 1000 }, .it_interval = { 0, 20 * 1000 } };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	getitimer(ITIMER_REAL, &cur);
	cr_expect_eq(cur.it_interval.tv_usec, 20 * 1000);
	while (alrm_hits < 5 && ms_since(&t0) < 10000)
		pause();
	ms = ms_since(&t0);
	it = (struct itimerval){ 0 };
	setitimer(ITIMER_REAL, &it, NULL);
	cr_expect_geq(alrm_hits, 5, "%d ticks in %ld ms", (int)alrm_hits, ms);
	cr_expect_geq(ms, 80, "5 ticks of 20 ms in %ld ms", ms);
	int after = alrm_hits;
	usleep(150 * 1000);
	cr_expect_eq(alrm_hits, after, "ticks after the timer was stopped");
}

Test(signals, nanosleep_interrupted_gives_remaining, .timeout = 60)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	pthread_t t;

	ENTER();
	usr1_hits = 0;
	sigaction(SIGUSR1, &sa, NULL);
	struct later l = { pthread_self(), SIGUSR1, 200, -1, 0 };
	cr_assert_eq(pthread_create(&t, NULL, signal_later, &l), 0);
	struct timespec req = { 3, 0 }, rem = { -1, -1 };
	errno = 0;
	int r = nanosleep(&req, &rem);
	int e = errno;
	pthread_join(t, NULL);
	cr_expect_eq(r, -1);
	cr_expect_eq(e, EINTR, "errno %d", e);
	cr_expect_eq(usr1_hits, 1);
	long rem_ms = rem.tv_sec * 1000 + rem.tv_nsec / 1000000;
	cr_expect(rem_ms > 1500 && rem_ms < 3000, "remaining %ld ms of 3000 after ~200", rem_ms);
}

/* kill, tgkill to one thread, raise */

static volatile pid_t handler_tid;
static volatile int handler_code, handler_pid;
static void on_usr1_who(int sig, siginfo_t *si, void *uc)
{
	handler_tid = syscall(SYS_gettid);
	handler_code = si->si_code;
	handler_pid = si->si_pid;
	usr1_hits++;
}

static volatile int stop_waiters, release[2];
static volatile pid_t waiter_tid[2];
static void *waiter(void *arg)
{
	long i = (long)arg;
	sigset_t m;

	/* created with SIGUSR1 blocked; each unblocks it only when told to */
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	waiter_tid[i] = syscall(SYS_gettid);
	while (!stop_waiters) {
		if (release[i] == 1) {
			pthread_sigmask(SIG_UNBLOCK, &m, NULL);
			release[i] = 2;
		}
		usleep(1000);
	}
	return NULL;
}

static int wait_hits(int before)
{
	for (int w = 0; w < 5000 && usr1_hits == before; w++)
		usleep(1000);
	return usr1_hits;
}

Test(signals, kill_tgkill_raise_reach_the_right_thread, .timeout = 60)
{
	struct sigaction sa = { .sa_sigaction = on_usr1_who, .sa_flags = SA_SIGINFO };
	pthread_t t[2];
	sigset_t m;

	ENTER();
	sigaction(SIGUSR1, &sa, NULL);
	pid_t me = syscall(SYS_gettid);
	cr_assert_eq(kill(getpid(), SIGUSR1), 0);
	cr_expect_eq(usr1_hits, 1);
	cr_expect_eq(handler_code, SI_USER);
	cr_expect_eq(handler_pid, getpid());
	cr_expect_eq(handler_tid, me, "kill with one thread ran in %d", (int)handler_tid);
	cr_assert_eq(raise(SIGUSR1), 0);
	cr_expect_eq(usr1_hits, 2);
	cr_expect_eq(handler_code, SI_TKILL);
	cr_expect_eq(handler_tid, me);
	/* from here the main thread never takes SIGUSR1: only the waiters may */
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	for (long i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, waiter, (void *)i), 0);
	while (!waiter_tid[0] || !waiter_tid[1])
		usleep(1000);
	release[0] = 1;
	while (release[0] != 2)
		usleep(1000);
	/* for a thread that blocks it, a tgkill waits: the other, unblocked, thread must not take it */
	int before = usr1_hits;
	cr_assert_eq(syscall(SYS_tgkill, getpid(), waiter_tid[1], SIGUSR1), 0);
	usleep(200 * 1000);
	cr_expect_eq(usr1_hits, before, "a tgkill to a thread that blocks it ran in %d", (int)handler_tid);
	release[1] = 1;
	cr_expect_eq(wait_hits(before), before + 1, "the target did not take its signal once unblocked");
	cr_expect_eq(handler_tid, waiter_tid[1], "tgkill to %d ran in %d", (int)waiter_tid[1], (int)handler_tid);
	for (int round = 0; round < 6; round++) {
		pid_t want = waiter_tid[round & 1];
		before = usr1_hits;
		handler_tid = 0;
		cr_assert_eq(syscall(SYS_tgkill, getpid(), want, SIGUSR1), 0);
		cr_expect_eq(wait_hits(before), before + 1, "round %d: handler did not run", round);
		cr_expect_eq(handler_tid, want, "round %d: tgkill to %d ran in %d", round, (int)want, (int)handler_tid);
		cr_expect_eq(handler_code, SI_TKILL);
	}
	stop_waiters = 1;
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
}

/* ucontext: registers in, rip and registers out */

/* poke(addr, magic): r12 = magic, a one-byte store to addr, then returns r12 (a handler may change it). */
__asm__(".pushsection .text\n"
	".globl vmlwc_t_poke, vmlwc_t_poke_insn, vmlwc_t_poke_after\n"
	".hidden vmlwc_t_poke, vmlwc_t_poke_insn, vmlwc_t_poke_after\n"
	".type vmlwc_t_poke, @function\n"
	"vmlwc_t_poke:\n"
	"	push %r12\n"
	"	mov %rsi, %r12\n"
	"vmlwc_t_poke_insn:\n"
	"	movb $1, (%rdi)\n"
	"vmlwc_t_poke_after:\n"
	"	mov %r12, %rax\n"
	"	pop %r12\n"
	"	ret\n"
	".size vmlwc_t_poke, .-vmlwc_t_poke\n"
	".popsection\n");
long vmlwc_t_poke(volatile char *addr, long magic);
extern char vmlwc_t_poke_insn[], vmlwc_t_poke_after[];

#define MAGIC_IN 0x1badc0de5eed1234L
#define MAGIC_OUT 0x0ddba11cafe4321L

struct uc_seen {
	long ret, r12_seen, rip_at_insn, trapno, err, cr2_ok, code, addr_ok, hits, byte;
};
static struct uc_seen *uc_cur;
static volatile char *uc_target;

static void on_segv_skip(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	uc_cur->hits++;
	uc_cur->r12_seen = uc->uc_mcontext.gregs[REG_R12];
	uc_cur->rip_at_insn = uc->uc_mcontext.gregs[REG_RIP] == (greg_t)vmlwc_t_poke_insn;
	uc_cur->trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
	uc_cur->err = uc->uc_mcontext.gregs[REG_ERR];
	uc_cur->cr2_ok = uc->uc_mcontext.gregs[REG_CR2] == (greg_t)uc_target;
	uc_cur->code = si->si_code;
	uc_cur->addr_ok = si->si_addr == (void *)uc_target;
	uc->uc_mcontext.gregs[REG_RIP] += vmlwc_t_poke_after - vmlwc_t_poke_insn;
	uc->uc_mcontext.gregs[REG_R12] = MAGIC_OUT;
}

static void uc_sequence(void *out)
{
	struct uc_seen *s = out;
	struct sigaction sa = { .sa_sigaction = on_segv_skip, .sa_flags = SA_SIGINFO };

	uc_cur = s;
	sigaction(SIGSEGV, &sa, NULL);
	char *ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro[100] = 7;
	mprotect(ro, PG, PROT_READ);
	uc_target = ro + 100;
	s->ret = vmlwc_t_poke(uc_target, MAGIC_IN);
	s->byte = ro[100];
}

Test(signals, ucontext_skip_instruction_and_registers, .timeout = 60)
{
	struct uc_seen n, g;

	cr_assert_eq(vmlwc_t_poke_after - vmlwc_t_poke_insn, 3, "movb $1,(%%rdi) is 3 bytes");
	native_run(uc_sequence, &n, sizeof(n));
	cr_assert_eq(n.ret, MAGIC_OUT);
	cr_assert_eq(n.r12_seen, MAGIC_IN);
	ENTER();
	memset(&g, 0, sizeof(g));
	uc_sequence(&g);
	cr_expect_eq(g.hits, 1, "handler ran %ld times", g.hits);
	cr_expect_eq(g.ret, MAGIC_OUT, "returned %#lx: the handler's r12 did not reach the thread", g.ret);
	cr_expect_eq(g.r12_seen, MAGIC_IN, "gregs[REG_R12] %#lx", g.r12_seen);
	cr_expect(g.rip_at_insn, "gregs[REG_RIP] is not the faulting instruction");
	cr_expect_eq(g.byte, 7, "the skipped store happened");
#define SAME(f) cr_expect_eq(g.f, n.f, #f ": guest %#lx, native %#lx", (long)g.f, (long)n.f)
	SAME(trapno); SAME(err); SAME(cr2_ok); SAME(code); SAME(addr_ok);
#undef SAME
}

/* Forged sigreturn frames: the same outcome as native Linux */

enum forge {
	F_RIP_NONCANON, F_RIP_KERNEL, F_CS_KERNEL, F_CS_KERNEL8, F_RFLAGS_PRIV, F_FP_UNMAPPED, F_FP_MXCSR,
	F_FP_BADMAGIC, F_FP_NULL, F_NONE, F_COUNT
};
static const char *forge_name[] = { "rip non-canonical", "rip in the kernel half", "cs 0x10", "cs 0x8",
				    "rflags IOPL|NT|VM|VIF|VIP", "fpstate unmapped",
				    "mxcsr reserved bits", "xsave magic1 bad", "fpstate NULL", "untouched" };

struct forged_out {
	long reached;          /* the code after raise ran */
	long rflags_priv;      /* IOPL|NT|VM|VIF|VIP bits after the return */
	long mxcsr;            /* after the return */
	long xmm_kept;
};

static int forge_mode;
static void on_usr1_forge(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *gr = uc->uc_mcontext.gregs;
	unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;

	switch (forge_mode) {
	case F_RIP_NONCANON: gr[REG_RIP] = (greg_t)0x8000000000001000UL; break;
	case F_RIP_KERNEL: gr[REG_RIP] = (greg_t)0xffffffff81000000UL; break;
	/* gregs[REG_CSGSFS] holds cs in its low 16 bits */
	case F_CS_KERNEL: gr[REG_CSGSFS] = (gr[REG_CSGSFS] & ~0xffffL) | 0x10; break;
	case F_CS_KERNEL8: gr[REG_CSGSFS] = (gr[REG_CSGSFS] & ~0xffffL) | 0x8; break;
	case F_RFLAGS_PRIV: gr[REG_EFL] |= 0x3000 | 0x4000 | 0x20000 | 0x80000 | 0x100000; break;
	case F_FP_UNMAPPED: uc->uc_mcontext.fpregs = (void *)0x10000; break;
	case F_FP_MXCSR: uc->uc_mcontext.fpregs->mxcsr = 0xffffffff; break;
	case F_FP_BADMAGIC: fp[464] ^= 0xff; break;
	case F_FP_NULL: uc->uc_mcontext.fpregs = NULL; break;
	}
}

static void forged_child(int mode, int wfd)
{
	struct sigaction sa = { .sa_sigaction = on_usr1_forge, .sa_flags = SA_SIGINFO };
	struct rlimit no_core = { 0, 0 };
	struct forged_out o = { 0 };
	unsigned mx = 0x3f80; /* round down: not the initial 0x1f80, so a reset shows */
	unsigned long fl;

	setrlimit(RLIMIT_CORE, &no_core);
	forge_mode = mode;
	sigaction(SIGUSR1, &sa, NULL);
	__asm__ volatile("ldmxcsr %0" ::"m"(mx));
	__asm__ volatile("movq %0, %%xmm8" ::"r"(0x4045000000000000L) : "xmm8");
	raise(SIGUSR1);
	long xv;
	__asm__ volatile("movq %%xmm8, %0" : "=r"(xv));
	__asm__ volatile("stmxcsr %0" : "=m"(mx));
	__asm__ volatile("pushfq; pop %0" : "=r"(fl));
	o.reached = 1;
	o.rflags_priv = fl & (0x3000 | 0x4000 | 0x20000 | 0x80000 | 0x100000);
	o.mxcsr = mx;
	o.xmm_kept = xv == 0x4045000000000000L;
	mx = 0x1f80;
	__asm__ volatile("ldmxcsr %0" ::"m"(mx));
	_exit(write(wfd, &o, sizeof(o)) == sizeof(o) ? 0 : 1);
}

/* The wait status of a child that sent itself a forged frame, natively or in the guest. */
static int forged_run(int mode, int guest, struct forged_out *o)
{
	int pfd[2], st;

	memset(o, 0, sizeof(*o));
	cr_assert_eq(pipe(pfd), 0);
	pid_t p = fork();
	if (p == 0) {
		close(pfd[0]);
		if (guest && vmlwc_init(NULL) != 0)
			_exit(200);
		forged_child(mode, pfd[1]);
	}
	cr_assert_gt(p, 0);
	close(pfd[1]);
	ssize_t r = read(pfd[0], o, sizeof(*o));
	close(pfd[0]);
	cr_assert_eq(waitpid(p, &st, 0), p);
	cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 200), "vmlwc_init failed in the child");
	cr_assert(r == 0 || r == (ssize_t)sizeof(*o));
	return st;
}

static const char *status_str(int st, char *buf)
{
	if (WIFSIGNALED(st))
		sprintf(buf, "killed by signal %d", WTERMSIG(st));
	else
		sprintf(buf, "exit %d", WEXITSTATUS(st));
	return buf;
}

/*
 * Whether this CPU refuses reserved MXCSR bits (#GP, SIGSEGV) as hardware does. QEMU's TCG,
 * which runs the test VM, does not: there a native sigreturn with such a frame succeeds, and the
 * native run is no baseline for that case; the library's check stands for the hardware's.
 */
static int cpu_refuses_bad_mxcsr(void)
{
	int st;
	pid_t p = fork();

	if (p == 0) {
		unsigned bad = 0xffffffffu;
		__asm__ volatile("ldmxcsr %0" ::"m"(bad));
		_exit(0);
	}
	if (p < 0 || waitpid(p, &st, 0) != p)
		return 1;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

Test(signals, forged_sigreturn_frames_as_native, .timeout = 300)
{
	int hw_mxcsr = cpu_refuses_bad_mxcsr();

	/* which outcomes Linux gives, so that the comparison is with the right native run */
	static const int must_die[F_COUNT] = { [F_RIP_NONCANON] = 1, [F_RIP_KERNEL] = 1, [F_CS_KERNEL] = 1,
					       [F_CS_KERNEL8] = 1, [F_FP_UNMAPPED] = 1, [F_FP_MXCSR] = 1 };

	for (int m = 0; m < F_COUNT; m++) {
		struct forged_out n, g;
		char b1[40], b2[40];
		int sn = forged_run(m, 0, &n), sg = forged_run(m, 1, &g);

		cr_log_info("%s: native %s, guest %s; after it rflags %#lx/%#lx mxcsr %#lx/%#lx xmm8 kept %ld/%ld",
			    forge_name[m], status_str(sn, b1), status_str(sg, b2), n.rflags_priv, g.rflags_priv,
			    n.mxcsr, g.mxcsr, n.xmm_kept, g.xmm_kept);
		if (m == F_FP_MXCSR && !hw_mxcsr) {
			cr_log_info("%s: this CPU (an emulator) takes reserved MXCSR bits: the guest must still die as on "
				    "hardware", forge_name[m]);
			cr_expect(WIFSIGNALED(sg) && WTERMSIG(sg) == SIGSEGV, "%s: guest %s", forge_name[m],
				  status_str(sg, b2));
			continue;
		}
		if (must_die[m])
			cr_assert(WIFSIGNALED(sn) && WTERMSIG(sn) == SIGSEGV, "%s: native %s", forge_name[m],
				  status_str(sn, b1));
		else
			cr_assert(WIFEXITED(sn) && WEXITSTATUS(sn) == 0 && n.reached, "%s: native %s", forge_name[m],
				  status_str(sn, b1));
		if (!must_die[m]) {
			/* Linux drops the privileged flags, and only a NULL fpstate resets the vector state */
			cr_assert_eq(n.rflags_priv, 0, "%s: native rflags %#lx", forge_name[m], n.rflags_priv);
			cr_assert_eq(n.mxcsr, m == F_FP_NULL ? 0x1f80 : 0x3f80, "%s: native mxcsr %#lx", forge_name[m], n.mxcsr);
		}
		cr_expect_eq(sg, sn, "%s: guest %s, native %s", forge_name[m], status_str(sg, b2), status_str(sn, b1));
		if (!must_die[m]) {
			cr_expect_eq(g.reached, 1, "%s", forge_name[m]);
			cr_expect_eq(g.rflags_priv, n.rflags_priv, "%s: privileged rflags %#lx, native %#lx",
				     forge_name[m], g.rflags_priv, n.rflags_priv);
			cr_expect_eq(g.mxcsr, n.mxcsr, "%s: mxcsr %#lx, native %#lx", forge_name[m], g.mxcsr, n.mxcsr);
			cr_expect_eq(g.xmm_kept, n.xmm_kept, "%s: xmm8 kept %ld, native %ld", forge_name[m], g.xmm_kept,
				     n.xmm_kept);
		}
	}
}

/* Each lwC its own dispositions */

static volatile long *shared_hits; /* MAP_SHARED: one counter page for every lwC */
static void on_usr1_root(int sig)
{
	shared_hits[0]++;
}
static void on_usr1_child(int sig)
{
	shared_hits[1]++;
}
static void on_usr2_root(int sig)
{
	shared_hits[2]++;
}

Test(signals, dispositions_per_lwc, .timeout = 120)
{
	struct sigaction sa = { .sa_handler = on_usr1_root }, s2 = { .sa_handler = on_usr2_root }, q;
	struct lwc_msg in;
	int p[2];
	pthread_t t;

	ENTER();
	shared_hits = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq((void *)shared_hits, MAP_FAILED);
	cr_assert_eq(pipe(p), 0);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &s2, NULL);
	pthread_t main_thread = pthread_self();
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		struct sigaction sc = { .sa_handler = on_usr1_child }, ign = { .sa_handler = SIG_IGN }, cq;
		long r[5] = { 0 };
		char buf[4];
		sigaction(SIGUSR1, &sc, NULL);
		sigaction(SIGUSR2, &ign, NULL);
		raise(SIGUSR1);
		raise(SIGUSR2);
		r[0] = shared_hits[0] * 100 + shared_hits[1] * 10 + shared_hits[2];
		sigaction(SIGUSR1, NULL, &cq);
		r[1] = cq.sa_handler == on_usr1_child;
		/* blocked here while the root's other thread signals this thread */
		errno = 0;
		r[2] = read(p[0], buf, sizeof(buf));
		r[3] = errno;
		r[4] = shared_hits[0] * 100 + shared_hits[1] * 10 + shared_hits[2];
		lwc_switch_discard(in.src, r, 5);
		_exit(91);
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	struct later l = { main_thread, SIGUSR1, 200, -1, 0 };
	cr_assert_eq(pthread_create(&t, NULL, signal_later, &l), 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	pthread_join(t, NULL);
	cr_assert_eq(in.nargs, 5);
	cr_expect_eq(in.args[0], 10, "hits root/child/usr2 in the child: %03ld (want 010)", in.args[0]);
	cr_expect_eq(in.args[1], 1, "the child's query does not show its handler");
	cr_expect_eq(in.args[2], -1, "the child's read returned %ld", in.args[2]);
	cr_expect_eq(in.args[3], EINTR, "errno %ld", in.args[3]);
	cr_expect_eq(in.args[4], 20, "after the other thread's signal: %03ld (want 020)", in.args[4]);
	/* back in the root: the root's handlers, untouched by the child's */
	sigaction(SIGUSR1, NULL, &q);
	cr_expect_eq((void *)q.sa_handler, (void *)on_usr1_root);
	sigaction(SIGUSR2, NULL, &q);
	cr_expect_eq((void *)q.sa_handler, (void *)on_usr2_root);
	raise(SIGUSR1);
	raise(SIGUSR2);
	cr_expect_eq(shared_hits[0], 1, "root handler hits %ld", shared_hits[0]);
	cr_expect_eq(shared_hits[1], 2, "child handler hits %ld", shared_hits[1]);
	cr_expect_eq(shared_hits[2], 1, "root SIGUSR2 hits %ld", shared_hits[2]);
}
