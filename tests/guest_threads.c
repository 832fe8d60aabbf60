/* Guest threads: pthreads on their own vCPUs, per-thread lwC contexts, futexes per lwC, coherence. */
#include <dirent.h>
#include <linux/futex.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static long pool_q(int what)
{
	return syscall(VMLWC_SYS_POOL, what);
}

static pid_t tid_self(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t redirected(void)
{
	struct vmlwc_stats st;
	cr_assert_eq(vmlwc_stats(&st), 0);
	return st.syscalls_redirected;
}

/* Memory every lwC shares (MAP_SHARED stays shared at lwc_create): the threads' meeting place. */
static void *shared_pages(size_t n)
{
	void *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static long futex_op(volatile int *addr, int op, int val, const struct timespec *ts, volatile int *addr2, int val3)
{
	return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}

/* Spins (yielding) until *flag == want or the deadline; 1 when it got there. */
static int wait_for(volatile atomic_int *flag, int want, double secs)
{
	double end = now_s() + secs;
	while (atomic_load(flag) != want) {
		if (now_s() > end)
			return 0;
		sched_yield();
	}
	return 1;
}

/* ---- 8 threads: redirected syscalls and a mutex/condvar ping-pong ---- */

#define IO_THREADS 8
#define IO_ROUNDS 40
#define PINGPONG 300

struct io_worker {
	int idx;
	pid_t tid;
	pid_t ppid_seen;
	int rounds_ok;
	int bad_round;
	int active;
};

static pid_t parent_pid;
static pthread_barrier_t io_barrier;

static void *io_worker_main(void *arg)
{
	struct io_worker *w = arg;
	int p[2];

	w->tid = tid_self();
	w->active = vmlwc_active();
	/* all alive at once: their tids are those of 8 live threads */
	pthread_barrier_wait(&io_barrier);
	w->bad_round = -1;
	if (pipe(p) != 0) {
		w->bad_round = -2;
		pthread_barrier_wait(&io_barrier);
		return NULL;
	}
	for (int i = 0; i < IO_ROUNDS; i++) {
		char msg[48], back[48];
		int n = snprintf(msg, sizeof(msg), "worker %d round %d tid %d", w->idx, i, (int)w->tid);
		pid_t pp = getppid();
		if (write(p[1], msg, (size_t)n) != n || read(p[0], back, sizeof(back)) != n || memcmp(msg, back, (size_t)n) ||
		    pp != parent_pid) {
			w->ppid_seen = pp;
			w->bad_round = i;
			break;
		}
		w->ppid_seen = pp;
		w->rounds_ok++;
	}
	close(p[0]);
	close(p[1]);
	pthread_barrier_wait(&io_barrier);
	return NULL;
}

struct pingpong {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int turn;     /* 0: even side, 1: odd side */
	int count;    /* incremented by whoever's turn it is */
	int wrong[2]; /* a side saw a count of the other side's parity */
};

static struct pingpong pp[IO_THREADS / 2];

struct pp_arg {
	struct pingpong *p;
	int side;
};

static void *pingpong_main(void *arg)
{
	struct pp_arg *a = arg;
	struct pingpong *p = a->p;

	for (int i = 0; i < PINGPONG; i++) {
		pthread_mutex_lock(&p->mu);
		while (p->turn != a->side)
			pthread_cond_wait(&p->cv, &p->mu);
		if ((p->count & 1) != a->side)
			p->wrong[a->side]++;
		p->count++;
		p->turn = !a->side;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

Test(threads, eight_threads_syscalls_and_condvar_pingpong, .timeout = 600)
{
	pthread_t th[IO_THREADS];
	struct io_worker w[IO_THREADS];
	struct pp_arg pa[IO_THREADS];

	parent_pid = getppid();
	ENTER();
	uint64_t r0 = redirected();
	memset(w, 0, sizeof(w));
	pthread_barrier_init(&io_barrier, NULL, IO_THREADS);
	for (int i = 0; i < IO_THREADS; i++) {
		w[i].idx = i;
		cr_assert_eq(pthread_create(&th[i], NULL, io_worker_main, &w[i]), 0, "pthread_create %d", i);
	}
	for (int i = 0; i < IO_THREADS; i++)
		cr_assert_eq(pthread_join(th[i], NULL), 0);
	uint64_t r1 = redirected();
	for (int i = 0; i < IO_THREADS; i++) {
		cr_expect_eq(w[i].rounds_ok, IO_ROUNDS, "worker %d: %d rounds of write/read/getppid, failed at %d (ppid %d, want %d)",
			     i, w[i].rounds_ok, w[i].bad_round, (int)w[i].ppid_seen, (int)parent_pid);
		cr_expect_eq(w[i].active, 1, "worker %d: vmlwc_active() %d", i, w[i].active);
		cr_expect(w[i].tid > 0 && w[i].tid != tid_self(), "worker %d: tid %d", i, (int)w[i].tid);
		for (int j = 0; j < i; j++)
			cr_expect_neq(w[i].tid, w[j].tid, "workers %d and %d share tid %d", i, j, (int)w[i].tid);
	}
	pthread_barrier_destroy(&io_barrier);
	/* every round made 3 redirected syscalls, in its own thread */
	cr_expect_geq(r1 - r0, (uint64_t)IO_THREADS * IO_ROUNDS * 3, "redirected syscalls: %lu",
		      (unsigned long)(r1 - r0));

	/* pairs of threads hand a counter back and forth through a mutex and a condition variable */
	for (int k = 0; k < IO_THREADS / 2; k++) {
		pthread_mutex_init(&pp[k].mu, NULL);
		pthread_cond_init(&pp[k].cv, NULL);
		pp[k].turn = pp[k].count = pp[k].wrong[0] = pp[k].wrong[1] = 0;
	}
	for (int i = 0; i < IO_THREADS; i++) {
		pa[i] = (struct pp_arg){ &pp[i / 2], i & 1 };
		cr_assert_eq(pthread_create(&th[i], NULL, pingpong_main, &pa[i]), 0);
	}
	for (int i = 0; i < IO_THREADS; i++)
		cr_assert_eq(pthread_join(th[i], NULL), 0);
	for (int k = 0; k < IO_THREADS / 2; k++) {
		cr_expect_eq(pp[k].count, 2 * PINGPONG, "pair %d: count %d", k, pp[k].count);
		cr_expect_eq(pp[k].wrong[0] + pp[k].wrong[1], 0, "pair %d: out of turn %d/%d", k, pp[k].wrong[0],
			     pp[k].wrong[1]);
	}
}

/* ---- threads in two lwCs at once ---- */

#define TWO_PAGES 16
#define PG 4096

struct two_sync {
	atomic_int phase;       /* 1: the child is in, 2: both run, 3: stop */
	atomic_int child_tid;
	atomic_int snapshot_ok; /* the child saw the buffer as it was at lwc_create */
	atomic_long child_iters, child_bad, root_iters, root_bad;
};

static struct two_sync *two;
static char *two_buf;

static int all_bytes(const char *p, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/* In the child lwC, on whichever thread switched in: its own copy of the buffer, while the root runs. */
static void __attribute__((noreturn)) two_child(struct lwc_msg *in)
{
	atomic_store(&two->child_tid, tid_self());
	atomic_store(&two->snapshot_ok, all_bytes(two_buf, TWO_PAGES * PG, 'R'));
	memset(two_buf, 'C', TWO_PAGES * PG);
	atomic_store(&two->phase, 1);
	for (unsigned long it = 0; atomic_load(&two->phase) < 3; it++) {
		for (int p = 0; p < TWO_PAGES; p++) {
			volatile char *b = two_buf + p * PG;
			if (b[(it * 13 + p) % PG] != 'C')
				atomic_fetch_add(&two->child_bad, 1);
			b[(it * 7 + p) % PG] = 'C';
		}
		if (atomic_load(&two->phase) == 2)
			atomic_fetch_add(&two->child_iters, 1);
	}
	long res[1] = { all_bytes(two_buf, TWO_PAGES * PG, 'C') };
	lwc_switch(in->src, res, 1, in);
	for (;;)
		lwc_switch(in->src, NULL, 0, in);
}

struct enter_arg {
	int c;
	long args[LWC_MAX_ARGS];
	int nargs;
	int r, err;
	pid_t tid_before, tid_after;
	struct lwc_msg in;
};

/* A thread that switches into lwC a->c and records how it came back. */
static void *enter_main(void *p)
{
	struct enter_arg *a = p;

	a->tid_before = tid_self();
	errno = 0;
	a->r = lwc_switch(a->c, a->args, a->nargs, &a->in);
	a->err = errno;
	a->tid_after = tid_self();
	return NULL;
}

Test(threads, threads_in_two_lwcs_at_once, .timeout = 600)
{
	ENTER();
	two = shared_pages(1);
	two_buf = mmap(NULL, TWO_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(two_buf, MAP_FAILED);
	memset(two_buf, 'R', TWO_PAGES * PG);
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		two_child(&in);
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	memset(two_buf, 'S', TWO_PAGES * PG); /* the root's own, after the snapshot */
	struct enter_arg ea = { .c = c };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, enter_main, &ea), 0);
	cr_assert(wait_for(&two->phase, 1, 60), "the thread never got into the child");
	atomic_store(&two->phase, 2);
	long c0 = atomic_load(&two->child_iters);
	double end = now_s() + 1.0;
	long mine = 0;
	while (mine < 2000 || now_s() < end) {
		for (int p = 0; p < TWO_PAGES; p++) {
			volatile char *b = two_buf + p * PG;
			if (b[(mine * 11 + p) % PG] != 'S')
				atomic_fetch_add(&two->root_bad, 1);
			b[(mine * 5 + p) % PG] = 'S';
		}
		mine++;
		if (now_s() > end + 30)
			break;
	}
	long c1 = atomic_load(&two->child_iters);
	atomic_store(&two->phase, 3);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_expect_eq(ea.r, LWC_SWITCHED, "the thread's lwc_switch: %d (%s)", ea.r, strerror(ea.err));
	cr_expect_eq(atomic_load(&two->child_tid), ea.tid_before, "the child ran on tid %d, not on the thread that switched (%d)",
		     atomic_load(&two->child_tid), ea.tid_before);
	cr_expect_eq(ea.tid_after, ea.tid_before, "the switch back returned on tid %d", ea.tid_after);
	cr_expect_eq(atomic_load(&two->snapshot_ok), 1, "the child's copy was not the buffer at lwc_create");
	cr_expect_eq(ea.in.args[0], 1, "the child's buffer is not all its own writes");
	cr_expect_eq(atomic_load(&two->child_bad), 0, "the child read the root's bytes %ld times", atomic_load(&two->child_bad));
	cr_expect_eq(atomic_load(&two->root_bad), 0, "the root read the child's bytes %ld times", atomic_load(&two->root_bad));
	cr_expect(all_bytes(two_buf, TWO_PAGES * PG, 'S'), "the root's buffer is not all its own writes");
	cr_expect_gt(c1 - c0, 0, "the child did not run while the root did (%ld iterations; the root %ld)", c1 - c0, mine);
	cr_log_info("concurrent iterations: child %ld, root %ld", c1 - c0, mine);
	cr_expect_eq(lwc_close(c), 0);
}

/* ---- a thread exits while others run ---- */

struct spinner {
	atomic_int *stop;
	long rounds, bad;
};

static void *spinner_main(void *p)
{
	struct spinner *s = p;
	int fd[2];

	if (pipe(fd) != 0) {
		s->bad = -1;
		return NULL;
	}
	while (!atomic_load(s->stop)) {
		long v = s->rounds * 3 + 1, back = 0;
		if (write(fd[1], &v, sizeof(v)) != sizeof(v) || read(fd[0], &back, sizeof(back)) != sizeof(back) || back != v)
			s->bad++;
		s->rounds++;
	}
	close(fd[0]);
	close(fd[1]);
	return NULL;
}

static void *exiter_main(void *p)
{
	long n = (long)p;
	for (long i = 0; i < n; i++)
		getppid();
	pthread_exit((void *)(n + 42));
}

Test(threads, a_thread_exits_while_others_run, .timeout = 600)
{
	ENTER();
	atomic_int stop = 0;
	struct spinner s[4];
	pthread_t t[4], e;
	for (int i = 0; i < 4; i++) {
		s[i] = (struct spinner){ .stop = &stop };
		cr_assert_eq(pthread_create(&t[i], NULL, spinner_main, &s[i]), 0);
	}
	for (int k = 0; k < 10; k++) {
		long before[4];
		for (int i = 0; i < 4; i++)
			before[i] = s[i].rounds;
		void *rv = NULL;
		cr_assert_eq(pthread_create(&e, NULL, exiter_main, (void *)(long)(50 + k)), 0);
		cr_assert_eq(pthread_join(e, &rv), 0);
		cr_expect_eq((long)rv, 50 + k + 42, "exit value %ld", (long)rv);
		/* the others went on running across the exit */
		double end = now_s() + 30;
		for (int i = 0; i < 4; i++)
			while (s[i].rounds < before[i] + 5 && now_s() < end)
				sched_yield();
		for (int i = 0; i < 4; i++)
			cr_expect_geq(s[i].rounds, before[i] + 5, "spinner %d stalled after exit %d", i, k);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
		cr_expect_eq(s[i].bad, 0, "spinner %d: %ld bad rounds of %ld", i, s[i].bad, s[i].rounds);
	}
}

/* ---- pthread_create after lwc_create, in the root and in the child ---- */

static long after_var;

struct reader_arg {
	long seen, wrote;
	int back_to; /* a descriptor to switch into, or -1 */
	int sw, sw_errno;
	pid_t tid;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;

	a->tid = tid_self();
	a->seen = after_var;
	after_var = a->wrote; /* in whatever lwC this thread runs */
	if (a->back_to >= 0) {
		struct lwc_msg in;
		errno = 0;
		a->sw = lwc_switch(a->back_to, NULL, 0, &in);
		a->sw_errno = errno;
	}
	return NULL;
}

Test(threads, pthread_create_after_lwc_create, .timeout = 600)
{
	ENTER();
	after_var = 1;
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		/* a thread born in the child sees the child's memory; it has no context in the root,
		   which has been entered: its switch there is EBUSY */
		after_var = 2;
		struct reader_arg a = { .wrote = 888, .back_to = in.src };
		pthread_t t;
		long ok = pthread_create(&t, NULL, reader_main, &a) == 0 && pthread_join(t, NULL) == 0;
		long res[6] = { ok, a.seen, a.sw, a.sw_errno, after_var, a.tid != tid_self() };
		lwc_switch(in.src, res, 6, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	after_var = 10;
	struct reader_arg a = { .wrote = 777, .back_to = -1 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, reader_main, &a), 0, "pthread_create after lwc_create");
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_expect_eq(a.seen, 10, "a thread made in the root after lwc_create sees %ld", a.seen);
	cr_expect_eq(after_var, 777, "the root thread's write went elsewhere");
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "pthread_create/join in the child failed");
	cr_expect_eq(in.args[1], 2, "the child's thread saw %ld, not the child's 2", in.args[1]);
	cr_expect(in.args[2] == -1 && in.args[3] == EBUSY, "the child's thread's switch into the root: %ld errno %ld",
		  in.args[2], in.args[3]);
	cr_expect_eq(in.args[4], 888, "the child's thread's write is not in the child: %ld", in.args[4]);
	cr_expect_eq(in.args[5], 1, "the child's thread ran on the child's creating thread");
	cr_expect_eq(after_var, 777, "the child's thread wrote into the root: %ld", after_var);
	cr_expect_eq(lwc_close(c), 0);
}

/* ---- threads that existed before vmlwc_init ---- */

static atomic_int adopt_ready[2], adopt_cmd[2], adopt_done[2];
static struct {
	pid_t tid_before, tid_after;
	int ppid_ok;
} adopt_res[2];

#define ADOPT_CALLS 200

static void *adopt_main(void *p)
{
	int k = (int)(long)p;

	adopt_res[k].tid_before = tid_self();
	atomic_store(&adopt_ready[k], 1);
	/* blocked in a futex wait while vmlwc_init runs: adopted in the middle of it */
	while (atomic_load(&adopt_cmd[k]) == 0)
		futex_op((volatile int *)&adopt_cmd[k], FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	for (int i = 0; i < ADOPT_CALLS; i++)
		adopt_res[k].ppid_ok += getppid() == parent_pid;
	adopt_res[k].tid_after = tid_self();
	atomic_store(&adopt_done[k], 1);
	futex_op((volatile int *)&adopt_done[k], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

/* Wakes thread k and waits for it to have made its calls; the redirected syscalls meanwhile. */
static uint64_t adopt_run(int k)
{
	uint64_t r0 = redirected();
	atomic_store(&adopt_cmd[k], 1);
	futex_op((volatile int *)&adopt_cmd[k], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	double end = now_s() + 60;
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	while (!atomic_load(&adopt_done[k]) && now_s() < end)
		futex_op((volatile int *)&adopt_done[k], FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	cr_assert(atomic_load(&adopt_done[k]), "thread %d never ran its calls", k);
	return redirected() - r0;
}

Test(threads, threads_before_init_adopted_unless_they_block_signals, .timeout = 600)
{
	pthread_t a, n;

	parent_pid = getppid();
	cr_assert_eq(pthread_create(&a, NULL, adopt_main, (void *)0L), 0);
	cr_assert_eq(native_thread_create(&n, adopt_main, (void *)1L), 0);
	cr_assert(wait_for(&adopt_ready[0], 1, 10) && wait_for(&adopt_ready[1], 1, 10));
	usleep(100 * 1000); /* both in their futex wait */
	ENTER();
	uint64_t native_calls = adopt_run(1);
	uint64_t adopted_calls = adopt_run(0);
	cr_assert_eq(pthread_join(a, NULL), 0, "join of the adopted thread");
	cr_assert_eq(pthread_join(n, NULL), 0, "join of the native thread");
	cr_expect_eq(adopt_res[0].ppid_ok, ADOPT_CALLS, "the adopted thread's getppid: %d right", adopt_res[0].ppid_ok);
	cr_expect_eq(adopt_res[1].ppid_ok, ADOPT_CALLS, "the native thread's getppid: %d right", adopt_res[1].ppid_ok);
	cr_expect_eq(adopt_res[0].tid_after, adopt_res[0].tid_before, "the adopted thread changed tid");
	cr_expect_geq(adopted_calls, ADOPT_CALLS, "the adopted thread's %d calls made %lu redirected syscalls", ADOPT_CALLS,
		      (unsigned long)adopted_calls);
	cr_expect_lt(native_calls, ADOPT_CALLS / 4, "the native thread's %d calls made %lu redirected syscalls",
		     ADOPT_CALLS, (unsigned long)native_calls);
	cr_log_info("redirected: adopted thread %lu, native thread %lu", (unsigned long)adopted_calls,
		    (unsigned long)native_calls);
}

/* ---- 64 vCPUs at most ---- */

/* Threads of this process that do not block signal 64: they are guest threads after vmlwc_init. */
static int adoptable_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		char path[96], buf[4096];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		char *p = strstr(buf, "SigBlk:");
		if (p && !((strtoull(p + 7, NULL, 16) >> 63) & 1))
			n++;
	}
	closedir(d);
	return n;
}

static atomic_int many_go;

struct many {
	pid_t tid;
	int ok;
};

static void *many_main(void *p)
{
	struct many *m = p;
	int fd[2];

	m->tid = tid_self();
	while (!atomic_load(&many_go))
		futex_op((volatile int *)&many_go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	if (pipe(fd) == 0) {
		pid_t back = 0;
		m->ok = write(fd[1], &m->tid, sizeof(m->tid)) == sizeof(m->tid) && read(fd[0], &back, sizeof(back)) == sizeof(back) &&
			back == m->tid && back == tid_self();
		close(fd[0]);
		close(fd[1]);
	}
	return NULL;
}

Test(threads, sixty_four_vcpus_then_eagain, .timeout = 600)
{
	static struct many m[80];
	static pthread_t t[80];
	pthread_attr_t at;

	int guests = adoptable_threads(); /* this one included */
	ENTER();
	int room = 64 - guests, made = 0, err = 0;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 128 * 1024);
	for (int i = 0; i < 80; i++) {
		err = pthread_create(&t[i], &at, many_main, &m[i]);
		if (err)
			break;
		made++;
	}
	cr_log_info("%d guest threads at init; %d created, then %s", guests, made, strerror(err));
	cr_expect_eq(err, EAGAIN, "thread %d: pthread_create gave %d (%s), not EAGAIN", made + guests, err, strerror(err));
	cr_expect_eq(made, room, "%d threads made beside %d guest threads (64 vCPUs)", made, guests);
	atomic_store(&many_go, 1);
	futex_op((volatile int *)&many_go, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
	int ok = 0;
	for (int i = 0; i < made; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
		ok += m[i].ok;
	}
	cr_expect_eq(ok, made, "%d of %d threads made their calls after the refusal", ok, made);
	/* the vCPUs went back to the pool: one more thread runs */
	struct many again = { 0 };
	pthread_t ta;
	cr_assert_eq(pthread_create(&ta, &at, many_main, &again), 0, "a thread after the others exited");
	cr_assert_eq(pthread_join(ta, NULL), 0);
	cr_expect_eq(again.ok, 1);
}

/* ---- threads reused: nothing grows ---- */

static void *nothing_main(void *p)
{
	return (void *)(long)(getppid() == parent_pid) + (long)p;
}

static int task_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(threads, create_join_200_times_nothing_grows, .timeout = 600)
{
	parent_pid = getppid();
	ENTER();
	pthread_t t;
	void *rv;
	for (int i = 0; i < 3; i++) { /* warm: a vCPU in the pool, glibc's stack cache */
		cr_assert_eq(pthread_create(&t, NULL, nothing_main, NULL), 0);
		cr_assert_eq(pthread_join(t, &rv), 0);
	}
	long fds = pool_q(VMLWC_POOL_HOST_FDS), arena = pool_q(VMLWC_POOL_ARENA), frames = pool_q(VMLWC_POOL_IN_USE);
	int tasks = task_count();
	int good = 0;
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(pthread_create(&t, NULL, nothing_main, (void *)(long)(i * 2)), 0, "round %d", i);
		cr_assert_eq(pthread_join(t, &rv), 0);
		good += (long)rv == i * 2 + 1;
	}
	cr_expect_eq(good, 200, "%d of 200 threads returned their value", good);
	cr_expect_eq(pool_q(VMLWC_POOL_HOST_FDS), fds, "host fds %ld, were %ld", pool_q(VMLWC_POOL_HOST_FDS), fds);
	cr_expect_eq(pool_q(VMLWC_POOL_ARENA), arena, "arena pages %ld, were %ld", pool_q(VMLWC_POOL_ARENA), arena);
	cr_expect_eq(pool_q(VMLWC_POOL_IN_USE), frames, "pool frames %ld, were %ld", pool_q(VMLWC_POOL_IN_USE), frames);
	cr_expect_eq(task_count(), tasks, "host threads %d, were %d", task_count(), tasks);
}

/* ---- a thread that runs lwC switches on command ---- */

struct switcher {
	atomic_int cmd, done, quit;
	int desc;
	long arg;
	int r, err;
	pid_t tid, tid_after;
	struct lwc_msg in;
};

static void *switcher_main(void *p)
{
	struct switcher *s = p;
	int seen = 0;

	s->tid = tid_self();
	for (;;) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		while (atomic_load(&s->cmd) == seen && !atomic_load(&s->quit))
			futex_op((volatile int *)&s->cmd, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
		if (atomic_load(&s->quit))
			return NULL;
		seen = atomic_load(&s->cmd);
		long a[1] = { s->arg };
		errno = 0;
		s->r = lwc_switch(s->desc, a, 1, &s->in);
		s->err = errno;
		s->tid_after = tid_self();
		atomic_store(&s->done, seen);
		futex_op((volatile int *)&s->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

/* Starts the switch; sw_wait waits for it to come back. */
static void sw_start(struct switcher *s, int desc, long arg)
{
	s->desc = desc;
	s->arg = arg;
	s->r = -100;
	atomic_fetch_add(&s->cmd, 1);
	futex_op((volatile int *)&s->cmd, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void sw_wait(struct switcher *s)
{
	double end = now_s() + 120;
	int want = atomic_load(&s->cmd);
	while (atomic_load(&s->done) != want) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		cr_assert_lt(now_s(), end, "the switching thread never came back");
		futex_op((volatile int *)&s->done, FUTEX_WAIT_PRIVATE, atomic_load(&s->done), &ts, NULL, 0);
	}
}

static void sw_do(struct switcher *s, int desc, long arg)
{
	sw_start(s, desc, arg);
	sw_wait(s);
}

static void sw_quit(struct switcher *s, pthread_t t)
{
	atomic_store(&s->quit, 1);
	futex_op((volatile int *)&s->cmd, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

/* ---- futexes: per lwC unless the page is shared ---- */

struct fx_sync {
	atomic_int step;
	long priv_r, priv_err, shared_r, shared_err, child_woke;
	double priv_waited;
};

static struct fx_sync *fx;
static volatile int *fx_priv, *fx_shared;

static void __attribute__((noreturn)) fx_child(struct lwc_msg *in)
{
	struct timespec t15 = { 1, 500 * 1000 * 1000 }, t30 = { 30, 0 };

	/* 1. the child's copy of the private word is 0 (the root's is 5): its wait blocks, and no
	   wake of the root's reaches it */
	atomic_store(&fx->step, 1);
	double t0 = now_s();
	errno = 0;
	fx->priv_r = futex_op(fx_priv, FUTEX_WAIT_PRIVATE, 0, &t15, NULL, 0);
	fx->priv_err = errno;
	fx->priv_waited = now_s() - t0;
	/* 2. the shared word: the root's wake reaches it */
	atomic_store(&fx->step, 2);
	errno = 0;
	fx->shared_r = futex_op(fx_shared, FUTEX_WAIT, 0, &t30, NULL, 0);
	fx->shared_err = errno;
	atomic_store(&fx->step, 3);
	/* 3. the other way: the root waits on its word; the child wakes its own, with both flavours */
	while (atomic_load(&fx->step) != 4)
		sched_yield();
	double end = now_s() + 1.2;
	while (now_s() < end) {
		fx->child_woke += futex_op(fx_priv, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
		fx->child_woke += futex_op(fx_priv, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
		usleep(1000);
	}
	atomic_store(&fx->step, 5);
	lwc_switch(in->src, NULL, 0, in);
	for (;;)
		lwc_switch(in->src, NULL, 0, in);
}

Test(threads, futex_per_lwc_unless_the_page_is_shared, .timeout = 600)
{
	ENTER();
	fx = shared_pages(1);
	char *pages = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(pages, MAP_FAILED);
	fx_priv = (volatile int *)pages;
	fx_shared = (volatile int *)(pages + PG);
	*fx_priv = 0;
	*fx_shared = 0;
	struct lwc_rspec sh = { .flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)fx_shared, (uintptr_t)fx_shared + PG } };
	struct lwc_msg in;
	int c = lwc_create(&sh, 1, 0, &in);
	if (c == LWC_SWITCHED)
		fx_child(&in);
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	*fx_priv = 5; /* the root's own value; the child's copy stays 0 */
	errno = 0;
	cr_expect_eq(futex_op(fx_priv, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), -1);
	cr_expect_eq(errno, EAGAIN, "the root's wait compared against the child's value");

	struct switcher s = { 0 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, switcher_main, &s), 0);
	sw_start(&s, c, 0);
	cr_assert(wait_for(&fx->step, 1, 60), "the thread never got into the child");
	long woke = 0;
	double end = now_s() + 1.0;
	while (now_s() < end && atomic_load(&fx->step) == 1) {
		woke += futex_op(fx_priv, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
		woke += futex_op(fx_priv, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
		usleep(1000);
	}
	cr_assert(wait_for(&fx->step, 2, 60));
	long shared_woke = 0;
	end = now_s() + 30;
	while (atomic_load(&fx->step) == 2 && now_s() < end)
		shared_woke += futex_op(fx_shared, FUTEX_WAKE, 1, NULL, NULL, 0);
	cr_assert(wait_for(&fx->step, 3, 60), "the child's wait on the shared word was never woken");
	atomic_store(&fx->step, 4);
	struct timespec t15 = { 1, 500 * 1000 * 1000 };
	errno = 0;
	long rr = futex_op(fx_priv, FUTEX_WAIT_PRIVATE, 5, &t15, NULL, 0);
	long rerr = errno;
	cr_assert(wait_for(&fx->step, 5, 60));
	sw_wait(&s);
	sw_quit(&s, t);

	cr_expect_eq(woke, 0, "the root's wakes on its private word woke %ld waiters (the child's)", woke);
	cr_expect(fx->priv_r == -1 && fx->priv_err == ETIMEDOUT, "the child's wait on its own copy: %ld errno %ld "
		  "(a wake of the root's reached it, or it compared the root's value)", fx->priv_r, fx->priv_err);
	cr_expect_geq(fx->priv_waited, 1.0, "the child's wait ended after %.2f s", fx->priv_waited);
	cr_expect_eq(fx->shared_r, 0, "the child's wait on the shared word: %ld errno %ld", fx->shared_r, fx->shared_err);
	cr_expect_eq(shared_woke, 1, "the root's wakes on the shared word woke %ld", shared_woke);
	cr_expect(rr == -1 && rerr == ETIMEDOUT, "the root's wait on its word: %ld errno %ld", rr, rerr);
	cr_expect_eq(fx->child_woke, 0, "the child's wakes woke %ld waiters (the root's)", fx->child_woke);
	cr_expect_eq(lwc_close(c), 0);
}

/* ---- lwC contexts are per thread ---- */

/* In the child: each entry answers with the tid it runs on, the argument it got, its own count. */
static void __attribute__((noreturn)) ctx_child(struct lwc_msg *in)
{
	long round = 0;

	for (;;) {
		long res[3] = { tid_self(), in->nargs ? in->args[0] : -1, round++ };
		if (in->nargs && in->args[0] == 99)
			lwc_switch_discard(in->src, res, 3);
		lwc_switch(in->src, res, 3, in);
	}
}

Test(threads, contexts_per_thread_a_thread_enters_first, .timeout = 600)
{
	ENTER();
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		ctx_child(&in);
	cr_assert_geq(c, 0);
	struct switcher s1 = { 0 }, s2 = { 0 };
	pthread_t t1, t2;
	cr_assert_eq(pthread_create(&t1, NULL, switcher_main, &s1), 0);
	cr_assert_eq(pthread_create(&t2, NULL, switcher_main, &s2), 0);

	/* a thread that is not the creator takes the creation context: nobody had entered */
	sw_do(&s1, c, 1);
	cr_assert_eq(s1.r, LWC_SWITCHED, "first entry by another thread: %d (%s)", s1.r, strerror(s1.err));
	cr_expect_eq(s1.in.args[0], s1.tid, "the child ran on tid %ld, not on the entering thread %d", s1.in.args[0], s1.tid);
	cr_expect_eq(s1.in.args[1], 1);
	cr_expect_eq(s1.in.args[2], 0);
	cr_expect_eq(s1.tid_after, s1.tid, "the switch back returned on tid %d", s1.tid_after);

	/* the creator and a third thread have no context there now */
	errno = 0;
	cr_expect_eq(lwc_switch(c, NULL, 0, &in), -1, "the creator entered a child another thread holds");
	cr_expect_eq(errno, EBUSY, "errno %d", errno);
	sw_do(&s2, c, 2);
	cr_expect(s2.r == -1 && s2.err == EBUSY, "a third thread's switch: %d errno %d", s2.r, s2.err);

	/* the first thread's context there goes on where it stopped */
	sw_do(&s1, c, 3);
	cr_assert_eq(s1.r, LWC_SWITCHED);
	cr_expect_eq(s1.in.args[0], s1.tid);
	cr_expect_eq(s1.in.args[1], 3);
	cr_expect_eq(s1.in.args[2], 1, "the child's context did not go on: round %ld", s1.in.args[2]);
	cr_expect_eq(s1.tid_after, s1.tid);

	/* it discards its context: the lwC has none left */
	sw_do(&s1, c, 99);
	cr_assert_eq(s1.r, LWC_SWITCHED);
	cr_expect_eq(s1.in.args[2], 2);
	errno = 0;
	cr_expect_eq(lwc_switch(c, NULL, 0, &in), -1, "switch into an lwC with no context left");
	cr_expect_eq(errno, EINVAL, "errno %d", errno);
	sw_do(&s1, c, 4);
	cr_expect(s1.r == -1 && s1.err == EINVAL, "the discarding thread's switch back: %d errno %d", s1.r, s1.err);
	sw_quit(&s1, t1);
	sw_quit(&s2, t2);
	cr_expect_eq(lwc_close(c), 0);
}

Test(threads, contexts_per_thread_the_creator_enters_first, .timeout = 600)
{
	ENTER();
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		ctx_child(&in);
	cr_assert_geq(c, 0);
	long a[1] = { 5 };
	cr_assert_eq(lwc_switch(c, a, 1, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], tid_self());
	cr_expect_eq(in.args[2], 0);
	struct switcher s1 = { 0 };
	pthread_t t1;
	cr_assert_eq(pthread_create(&t1, NULL, switcher_main, &s1), 0);
	sw_do(&s1, c, 6);
	cr_expect(s1.r == -1 && s1.err == EBUSY, "another thread entered the creator's context: %d errno %d", s1.r, s1.err);
	a[0] = 7;
	cr_assert_eq(lwc_switch(c, a, 1, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], tid_self());
	cr_expect_eq(in.args[1], 7);
	cr_expect_eq(in.args[2], 1, "the creator's context there did not go on");
	sw_quit(&s1, t1);
	cr_expect_eq(lwc_close(c), 0);
}

/* ---- races: page-table changes while another vCPU stores ---- */

/*
 * A bare thread (clone without glibc's pthread setup: pthread_create in a child lwC is refused
 * by glibc when rseq registration fails there, see pthread_create_in_a_child_lwc). It shares the
 * creating thread's TLS: its function touches no libc state.
 */
struct raw_thread {
	void *stack;
	size_t size;
	volatile int ctid;
};

static int raw_thread_start(struct raw_thread *t, int (*fn)(void *), void *arg)
{
	t->size = 256 * 1024;
	t->stack = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (t->stack == MAP_FAILED)
		return -1;
	int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
		    CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
	return clone(fn, (char *)t->stack + t->size, flags, arg, &t->ctid, NULL, &t->ctid);
}

/* 0 once the thread is gone (its tid word cleared by the exit), -1 after secs. */
static int raw_thread_join(struct raw_thread *t, double secs)
{
	double end = now_s() + secs;
	int v;
	while ((v = t->ctid) != 0) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		if (now_s() > end)
			return -1;
		futex_op(&t->ctid, FUTEX_WAIT, v, &ts, NULL, 0);
	}
	return 0;
}

/*
 * lwc_create while another thread stores into the root's memory: the child's copy is the
 * memory at the create, never a store the writer made after lwc_create returned. (A writer
 * vCPU left with a writable TLB entry for the page, or running on the old tree, would go on
 * writing the frame the child now shares.) Then lwc_close; thousands of rounds.
 */
#define SNAP_PAGES 4
static volatile uint64_t *snap_buf;
static atomic_int snap_stop;

static void *snap_writer(void *p)
{
	uint64_t n = 0;
	(void)p;
	while (!atomic_load_explicit(&snap_stop, memory_order_relaxed)) {
		n++;
		for (int k = 0; k < SNAP_PAGES; k++)
			snap_buf[k * 512] = n; /* page 0 first: every page holds at most page 0's value */
	}
	return NULL;
}

Test(threads, race_lwc_create_while_a_thread_writes, .timeout = 600)
{
	ENTER();
	snap_buf = mmap(NULL, SNAP_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(snap_buf, MAP_FAILED);
	memset((void *)snap_buf, 0, SNAP_PAGES * PG);
	pthread_t w;
	cr_assert_eq(pthread_create(&w, NULL, snap_writer, NULL), 0);
	double t0 = now_s();
	while (snap_buf[0] < 1000 && now_s() < t0 + 30)
		sched_yield();
	cr_assert_geq(snap_buf[0], 1000, "the writer does not run");
	int rounds = 0, late = 0, early = 0, stalled = 0;
	uint64_t worst = 0;
	for (; rounds < 3000 && now_s() < t0 + 40; rounds++) {
		uint64_t before = snap_buf[0];
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			long v[SNAP_PAGES];
			for (int k = 0; k < SNAP_PAGES; k++)
				v[k] = (long)snap_buf[k * 512];
			lwc_switch_discard(in.src, v, SNAP_PAGES);
		}
		uint64_t at = snap_buf[0]; /* after lwc_create returned: the child's copy is older */
		cr_assert_geq(c, 0, "round %d: lwc_create: %s", rounds, strerror(errno));
		double end = now_s() + 10;
		while (snap_buf[0] < at + 100 && now_s() < end)
			sched_yield();
		stalled += snap_buf[0] < at + 100;
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
		for (int k = 0; k < SNAP_PAGES; k++) {
			uint64_t v = (uint64_t)in.args[k];
			if (v > at) {
				late++;
				if (v - at > worst)
					worst = v - at;
			}
			if (v + 1 < before)
				early++;
		}
		cr_assert_eq(lwc_close(c), 0);
	}
	atomic_store(&snap_stop, 1);
	cr_assert_eq(pthread_join(w, NULL), 0);
	cr_log_info("%d rounds in %.1f s", rounds, now_s() - t0);
	cr_expect_geq(rounds, 100, "only %d rounds", rounds);
	cr_expect_eq(late, 0, "%d pages of the child's copies hold stores made after lwc_create returned (up to %lu later)",
		     late, (unsigned long)worst);
	cr_expect_eq(early, 0, "%d pages of the child's copies are older than the memory before lwc_create", early);
	cr_expect_eq(stalled, 0, "the writer stalled in %d rounds", stalled);
}

/*
 * In a child lwC, a thread stores into a region B while another replaces B (mmap MAP_FIXED:
 * its frames go back to the pool) and fills a fresh region D with a canary (taking frames from
 * the pool, B's old ones first). No store of the writer may ever show in D: the writer's vCPU
 * must not keep a mapping of B's old frames once mmap returned.
 */
#define RB_PAGES 4
#define RD_PAGES 32
#define RACE_MARK 0x5752495445520000ULL /* "WRITER" */
#define RACE_CANARY 0xc0ffee00c0ffee00ULL

struct race_sync {
	atomic_int stop;
	atomic_long n;
	long rounds, bad, first_bad, stalled, mmap_failed;
};

static struct race_sync *rsy;
static char *rb, *rd;

static int race_writer(void *p)
{
	uint64_t n = 0;
	(void)p;
	while (!atomic_load_explicit(&rsy->stop, memory_order_relaxed)) {
		n++;
		for (int k = 0; k < RB_PAGES; k++)
			for (int w = 0; w < 8; w++)
				((volatile uint64_t *)(rb + k * PG))[w * 64] = RACE_MARK | (n & 0xffff);
		atomic_store_explicit(&rsy->n, (long)n, memory_order_relaxed);
	}
	return 0;
}

static void __attribute__((noreturn)) race_child(struct lwc_msg *in, int rounds, double secs)
{
	struct raw_thread wt;
	double end = now_s() + secs;

	if (raw_thread_start(&wt, race_writer, NULL) < 0) {
		long res[1] = { -1 };
		lwc_switch(in->src, res, 1, in);
	}
	for (long r = 0; r < rounds && now_s() < end; r++) {
		if (mmap(rd, RD_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != rd ||
		    mmap(rb, RB_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != rb) {
			rsy->mmap_failed++;
			break;
		}
		for (int i = 0; i < RD_PAGES * PG / 8; i++)
			((volatile uint64_t *)rd)[i] = RACE_CANARY;
		long n0 = atomic_load(&rsy->n);
		double until = now_s() + 5;
		while (atomic_load(&rsy->n) < n0 + 20 && now_s() < until)
			;
		rsy->stalled += atomic_load(&rsy->n) < n0 + 20;
		for (int i = 0; i < RD_PAGES * PG / 8; i++) {
			uint64_t v = ((volatile uint64_t *)rd)[i];
			if (v != RACE_CANARY) {
				if (!rsy->bad)
					rsy->first_bad = (long)v;
				rsy->bad++;
			}
		}
		rsy->rounds++;
	}
	atomic_store(&rsy->stop, 1);
	long res[1] = { raw_thread_join(&wt, 60) };
	lwc_switch(in->src, res, 1, in);
	for (;;)
		lwc_switch(in->src, NULL, 0, in);
}

Test(threads, race_mmap_fixed_in_a_child_while_a_thread_writes, .timeout = 600)
{
	ENTER();
	rsy = shared_pages(1);
	rb = mmap(NULL, RB_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rd = mmap(NULL, RD_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(rb != MAP_FAILED && rd != MAP_FAILED);
	memset(rb, 1, RB_PAGES * PG);
	memset(rd, 2, RD_PAGES * PG);
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		race_child(&in, 3000, 40);
	cr_assert_geq(c, 0);
	double t0 = now_s();
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_log_info("%ld rounds in %.1f s", rsy->rounds, now_s() - t0);
	cr_expect_eq(in.args[0], 0, "the writer thread in the child: start or join failed (%ld)", in.args[0]);
	cr_expect_eq(rsy->mmap_failed, 0, "mmap MAP_FIXED in the child failed");
	cr_expect_geq(rsy->rounds, 100, "only %ld rounds", rsy->rounds);
	cr_expect_eq(rsy->stalled, 0, "the writer stalled in %ld rounds", rsy->stalled);
	cr_expect_eq(rsy->bad, 0, "%ld words of freshly filled memory changed after the fill (first %#lx): a store "
		  "through a mapping of freed frames", rsy->bad, (unsigned long)rsy->first_bad);
	cr_expect_eq(lwc_close(c), 0);
}

/*
 * The root writes pages a child still shares copy-on-write while a thread of the child reads
 * them: the root's copy-out moves the child's entries to copies, and the reader must never see
 * a root store made after the lwc_create (its vCPU must not keep the old entries).
 */
#define CO_PAGES 4
static volatile uint64_t *co_buf;
static uint64_t co_expect;

struct co_sync {
	atomic_int in_child, stop;
	long reads, bad;
	uint64_t first_bad;
};

static struct co_sync *cos;

static void __attribute__((noreturn)) co_child(struct lwc_msg *in)
{
	uint64_t want = co_expect; /* the child's copy of the variable: this round's value */
	long reads = 0;

	atomic_store(&cos->in_child, 1);
	while (!atomic_load_explicit(&cos->stop, memory_order_relaxed)) {
		for (int k = 0; k < CO_PAGES; k++) {
			uint64_t v = co_buf[k * 512];
			if (v != want) {
				if (!cos->bad)
					cos->first_bad = v;
				cos->bad++;
			}
		}
		reads++;
	}
	cos->reads += reads;
	atomic_store(&cos->in_child, 0);
	lwc_switch(in->src, NULL, 0, in);
	for (;;)
		lwc_switch(in->src, NULL, 0, in);
}

Test(threads, race_copy_out_while_a_child_thread_reads, .timeout = 600)
{
	ENTER();
	cos = shared_pages(1);
	co_buf = mmap(NULL, CO_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(co_buf, MAP_FAILED);
	struct switcher s = { 0 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, switcher_main, &s), 0);
	double t0 = now_s();
	int rounds = 0, stalled = 0;
	for (; rounds < 1500 && now_s() < t0 + 40; rounds++) {
		co_expect = 0xa0000000ULL + (uint64_t)rounds;
		for (int k = 0; k < CO_PAGES; k++)
			co_buf[k * 512] = co_expect;
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED)
			co_child(&in);
		cr_assert_geq(c, 0);
		atomic_store(&cos->stop, 0);
		sw_start(&s, c, 0); /* the thread takes the creation context and reads */
		cr_assert(wait_for(&cos->in_child, 1, 60), "round %d: the reader never got into the child", rounds);
		long r0 = cos->reads;
		(void)r0;
		/* the root's stores: each page's first one copies the child's view out */
		for (uint64_t i = 1; i <= 50; i++)
			for (int k = 0; k < CO_PAGES; k++)
				co_buf[k * 512] = 0xbad00000ULL + i;
		double end = now_s() + 0.002;
		while (now_s() < end)
			;
		atomic_store(&cos->stop, 1);
		sw_wait(&s);
		cr_assert_eq(s.r, LWC_SWITCHED);
		cr_assert_eq(lwc_close(c), 0);
	}
	sw_quit(&s, t);
	cr_log_info("%d rounds, %ld reads in the child, in %.1f s", rounds, cos->reads, now_s() - t0);
	cr_expect_geq(rounds, 100, "only %d rounds", rounds);
	cr_expect_eq(stalled, 0);
	cr_expect_eq(cos->bad, 0, "the child's reader saw %ld values other than its copy (first %#lx): root stores after "
		     "lwc_create", cos->bad, (unsigned long)cos->first_bad);
}

/*
 * Priority-inheritance mutexes as glibc makes them (FUTEX_LOCK_PI, FUTEX_UNLOCK_PI,
 * FUTEX_TRYLOCK_PI on the owner's tid in the lock word): four threads contend for one, each
 * increment made under it; a counter left short or a lock word that is not 0 after the last
 * unlock means the kernel and the guest disagreed about the word's address or its owner.
 */
#define PI_THREADS 4
#define PI_ROUNDS 2000
static pthread_mutex_t pi_mu;
static long pi_count;
static int pi_trylock_busy;

static void *pi_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < PI_ROUNDS; i++) {
		if (pthread_mutex_lock(&pi_mu) != 0)
			return (void *)1;
		long c = pi_count;
		if ((i & 63) == 0)
			sched_yield(); /* holding it: the others block in FUTEX_LOCK_PI */
		pi_count = c + 1;
		if (pthread_mutex_unlock(&pi_mu) != 0)
			return (void *)2;
	}
	return NULL;
}

static void *pi_try(void *arg)
{
	(void)arg;
	pi_trylock_busy = pthread_mutex_trylock(&pi_mu);
	if (pi_trylock_busy == 0)
		pthread_mutex_unlock(&pi_mu);
	return NULL;
}

Test(threads, priority_inheritance_mutex_under_contention, .timeout = 600)
{
	pthread_mutexattr_t a;
	pthread_t th[PI_THREADS];

	ENTER();
	cr_assert_eq(pthread_mutexattr_init(&a), 0);
	cr_assert_eq(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT), 0);
	cr_assert_eq(pthread_mutex_init(&pi_mu, &a), 0);
	for (int i = 0; i < PI_THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, pi_worker, NULL), 0);
	for (int i = 0; i < PI_THREADS; i++) {
		void *r;
		cr_assert_eq(pthread_join(th[i], &r), 0);
		cr_expect_null(r, "worker %d: lock or unlock failed (%ld)", i, (long)r);
	}
	cr_expect_eq(pi_count, (long)PI_THREADS * PI_ROUNDS, "increments under the PI mutex: %ld", pi_count);
	/* held by this thread: a trylock from another one finds it busy */
	cr_assert_eq(pthread_mutex_lock(&pi_mu), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, pi_try, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_expect_eq(pi_trylock_busy, EBUSY, "trylock of a PI mutex another thread holds: %d", pi_trylock_busy);
	cr_assert_eq(pthread_mutex_unlock(&pi_mu), 0);
	cr_expect_eq(*(volatile int *)&pi_mu, 0, "the PI lock word after the last unlock: %#x", *(volatile int *)&pi_mu);
}
