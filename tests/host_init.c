/* vmlwc_init refusals that leave the process native and unchanged. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
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
