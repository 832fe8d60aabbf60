/* vmlwc_init refusals that leave the process native and unchanged. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/wait.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "vmlwc.h"
#include "vmlwc_abi.h"

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

Test(init, bad_flags_einval_untouched, .timeout = 10)
{
	struct vmlwc_config cfg = { .pool_bytes = 0, .flags = 0x80 };
	int before = count_fds();

	errno = 0;
	cr_expect_eq(vmlwc_init(&cfg), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect(strstr(vmlwc_strerror(), "flags") != NULL, "message: %s", vmlwc_strerror());
	cr_expect_eq(vmlwc_active(), 0);
	cr_expect_eq(count_fds(), before);
}

Test(init, stats_and_lwc_calls_outside_the_guest, .timeout = 10)
{
	struct vmlwc_stats st;

	errno = 0;
	cr_expect_eq(vmlwc_stats(&st), -1);
	cr_expect_eq(errno, ENODEV);
	cr_expect_str_eq(vmlwc_version(), "0.2.0");
}

/* ---- the gate page's mprotect refused, as a policy against executable memory would ---- */

/* Whether anything is mapped in the gate window (what a refused vmlwc_init must leave empty). */
static int gate_window_mapped(void)
{
	unsigned long lo, hi, g0 = VMLWC_GATE_VA, g1 = VMLWC_GATE_VA + VMLWC_GATE_PAGES * 4096UL;
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	cr_assert(f, "fopen /proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo < g1 && g0 < hi)
			found = 1;
	fclose(f);
	return found;
}

/*
 * vmlwc_init fails with EACCES, naming the gate page's mprotect (which: its wording for the
 * protection asked), and leaves the process as it was: native, the gate window unmapped, no
 * descriptor left open. Twice: a second call meets the same refusal, not the remains of the
 * first (EBUSY, or EEXIST for a gate window still mapped). Then the process still works.
 */
static void expect_refused_and_intact(const char *which)
{
	int before = count_fds();

	for (int round = 1; round <= 2; round++) {
		errno = 0;
		cr_expect_eq(vmlwc_init(NULL), -1, "call %d", round);
		cr_expect_eq(errno, EACCES, "call %d: errno %d (%s)", round, errno, vmlwc_strerror());
		cr_expect(strstr(vmlwc_strerror(), which) != NULL, "call %d: message: %s", round, vmlwc_strerror());
		cr_expect_eq(vmlwc_active(), 0, "call %d", round);
		cr_expect_eq(gate_window_mapped(), 0, "call %d: the gate window is still mapped", round);
		cr_expect_eq(count_fds(), before, "call %d: descriptors left open", round);
	}
	char *p = malloc(1 << 20);
	cr_assert(p);
	memset(p, 0x5a, 1 << 20);
	cr_expect_eq(p[(1 << 20) - 1], 0x5a);
	free(p);
	cr_expect_gt(printf("vmlwc_init refused: %s\n", vmlwc_strerror()), 0);
	cr_expect_eq(fflush(stdout), 0);
}

/* This test's process (Criterion forks one per test) refuses mprotect of the gate page to prot with action. */
static scmp_filter_ctx gate_mprotect_filter(int prot, uint32_t action)
{
	scmp_filter_ctx f;

	/* vmlwc_init opens /dev/kvm before it maps the gate page: without it nothing here is tested */
	cr_assert_eq(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm: %s", strerror(errno));
	f = seccomp_init(SCMP_ACT_ALLOW);
	cr_assert(f, "seccomp_init");
	cr_assert_eq(seccomp_rule_add(f, action, SCMP_SYS(mprotect), 2, SCMP_A0(SCMP_CMP_EQ, VMLWC_GATE_VA),
				      SCMP_A2(SCMP_CMP_MASKED_EQ, (scmp_datum_t)prot, (scmp_datum_t)prot)),
		     0, "seccomp_rule_add mprotect");
	cr_assert_eq(seccomp_load(f), 0, "seccomp_load");
	return f;
}

/* Executable memory refused (SELinux execmem, say): the gate page never becomes executable. */
Test(init, gate_page_exec_refused_and_undone, .timeout = 10)
{
	seccomp_release(gate_mprotect_filter(PROT_EXEC, SCMP_ACT_ERRNO(EACCES)));
	expect_refused_and_intact("mprotect of the gate page (read and execute)");
}

/* The gate page never becomes writable: its code cannot be copied in. */
Test(init, gate_page_write_refused_and_undone, .timeout = 10)
{
	seccomp_release(gate_mprotect_filter(PROT_WRITE, SCMP_ACT_ERRNO(EACCES)));
	expect_refused_and_intact("mprotect of the gate page (writable)");
}

/*
 * Each vmlwc_init protects the gate page to prot twice: once to load its code (gate_map), once
 * to write its flags after the platform probe (gate_configure). A stateless filter cannot tell
 * the two apart, so a supervisor process answers the filter's notifications: the first of each
 * pair runs, the second fails with EACCES. The refusal then comes late, after the root lwC and
 * the probe, and everything up to there must be undone.
 */
static void gate_second_mprotect_refused(int prot)
{
	scmp_filter_ctx f = gate_mprotect_filter(prot, SCMP_ACT_NOTIFY);
	int fd = seccomp_notify_fd(f), parent = getpid();
	pid_t sup;

	cr_assert_geq(fd, 0, "seccomp_notify_fd: %d", fd);
	sup = fork();
	cr_assert_geq(sup, 0, "fork: %s", strerror(errno));
	if (sup == 0) {
		struct seccomp_notif *req;
		struct seccomp_notif_resp *resp;
		/* the test's process may end at any time: so does its supervisor */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || seccomp_notify_alloc(&req, &resp) < 0)
			_exit(1);
		for (unsigned long n = 1;; n++) {
			memset(req, 0, sizeof(*req)); /* the kernel takes only a zeroed request */
			if (seccomp_notify_receive(fd, req) < 0)
				_exit(1);
			memset(resp, 0, sizeof(*resp));
			resp->id = req->id;
			if (n % 2)
				resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
			else
				resp->error = -EACCES;
			if (seccomp_notify_respond(fd, resp) < 0)
				_exit(1);
		}
	}
	close(fd);
	seccomp_release(f);
	expect_refused_and_intact(prot == PROT_EXEC ? "mprotect of the gate page (read and execute)"
						    : "mprotect of the gate page (writable)");
	kill(sup, SIGKILL);
}

Test(init, gate_flags_exec_refused_and_undone, .timeout = 10)
{
	gate_second_mprotect_refused(PROT_EXEC);
}

Test(init, gate_flags_write_refused_and_undone, .timeout = 10)
{
	gate_second_mprotect_refused(PROT_WRITE);
}

/*
 * A late failure, then a retry that succeeds: the supervisor refuses only the very second
 * mprotect of the gate page (the first call's gate_configure, after the root lwC, its
 * descriptor shadow and the probe were made). The second call must start from nothing: in
 * the guest, descriptors, files and lwCs work, and the table holds what the process holds.
 */
static void retry_after_late_failure(void)
{
	scmp_filter_ctx f = gate_mprotect_filter(PROT_WRITE, SCMP_ACT_NOTIFY);
	int fd = seccomp_notify_fd(f), parent = getpid(), p[2];
	pid_t sup;

	cr_assert_geq(fd, 0);
	sup = fork();
	cr_assert_geq(sup, 0);
	if (sup == 0) {
		struct seccomp_notif *req;
		struct seccomp_notif_resp *resp;
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || seccomp_notify_alloc(&req, &resp) < 0)
			_exit(1);
		for (unsigned long n = 1;; n++) {
			memset(req, 0, sizeof(*req));
			if (seccomp_notify_receive(fd, req) < 0)
				_exit(1);
			memset(resp, 0, sizeof(*resp));
			resp->id = req->id;
			if (n == 2)
				resp->error = -EACCES;
			else
				resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
			if (seccomp_notify_respond(fd, resp) < 0)
				_exit(1);
		}
	}
	close(fd);
	seccomp_release(f);
	/* descriptors the first attempt's shadow saw, some of them gone before the second */
	int extra[8];
	for (int i = 0; i < 8; i++)
		extra[i] = open("/dev/null", O_RDONLY);
	int before = count_fds();
	errno = 0;
	cr_assert_eq(vmlwc_init(NULL), -1);
	cr_assert_eq(errno, EACCES, "first call: %s", vmlwc_strerror());
	for (int i = 0; i < 8; i += 2)
		close(extra[i]);
	cr_assert_eq(count_fds(), before - 4);
	/* the first attempt's library memory is free again: take its place, so that anything the
	   retry still believes lies there is found out (it faults) rather than reused by luck */
	void *hole = mmap(NULL, 8UL << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(hole, MAP_FAILED);
	int rc = vmlwc_init(NULL);
	cr_assert_eq(rc, 0, "the retry: %s (errno %d)", vmlwc_strerror(), errno);
	cr_assert_eq(vmlwc_active(), 1);
	/* in the guest: the closed ones are closed, the kept ones usable, new ones land where natively */
	for (int i = 0; i < 8; i++) {
		errno = 0;
		int ok = fcntl(extra[i], F_GETFD) >= 0;
		cr_expect_eq(ok, i % 2, "descriptor %d (%s) after the retry", extra[i], i % 2 ? "kept" : "closed");
	}
	cr_assert_eq(pipe(p), 0);
	cr_expect_eq(p[0], extra[0], "the lowest free number");
	cr_expect_eq(write(p[1], "retry", 5), 5);
	char b[8] = { 0 };
	cr_expect_eq(read(p[0], b, sizeof(b)), 5);
	cr_expect_str_eq(b, "retry");
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long ok = fcntl(p[1], F_GETFD) >= 0 && fcntl(extra[1], F_GETFD) >= 0;
		lwc_switch_discard(in.src, &ok, 1);
	}
	cr_assert_geq(c, 0, "lwc_create after the retry: %s", strerror(errno));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the child's copy of the table");
	struct vmlwc_stats st;
	cr_expect_eq(vmlwc_stats(&st), 0);
	cr_expect_eq(st.lwc_creates, 1, "counts start at the retry");
	kill(sup, SIGKILL);
}

Test(init, retry_after_a_late_failure_starts_from_nothing, .timeout = 60)
{
	retry_after_late_failure();
}

/* Two threads enter at once: never both (each refusal says EBUSY). */
static pthread_barrier_t race_bar;
static int race_rc[2], race_err[2];

static void *race_fn(void *arg)
{
	long i = (long)arg;
	pthread_barrier_wait(&race_bar);
	race_rc[i] = vmlwc_init(NULL);
	race_err[i] = errno;
	if (race_rc[i] == 0)
		_exit(race_rc[1 - i] == 0 ? 3 : 0); /* in the guest: report, the other thread may still run */
	return NULL;
}

Test(init, two_threads_never_both_enter, .timeout = 60)
{
	cr_assert_eq(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm: %s", strerror(errno));
	for (int round = 0; round < 20; round++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			pthread_t t[2];
			pthread_barrier_init(&race_bar, NULL, 2);
			for (long i = 0; i < 2; i++)
				pthread_create(&t[i], NULL, race_fn, (void *)i);
			pthread_join(t[0], NULL);
			pthread_join(t[1], NULL);
			/* both returned: both refused; each refusal must be EBUSY or name a reason */
			for (int i = 0; i < 2; i++)
				if (race_rc[i] != -1 || race_err[i] == 0)
					_exit(4);
			_exit(race_err[0] == EBUSY || race_err[1] == EBUSY ? 0 : 5);
		}
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFEXITED(st), "round %d: the process died (signal %d): two entries at once", round,
			  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		cr_assert_eq(WEXITSTATUS(st), 0, "round %d: status %d (3: both entered, 4: a failure without errno, "
			     "5: both refused, neither EBUSY)", round, WEXITSTATUS(st));
	}
}
