/* Refusal when a KVM capability the library relies on is missing; the process stays native. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cpuid.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

Test(caps, missing_capability_named_and_process_untouched, .timeout = 60)
{
	const char *caps[] = { "KVM_CAP_SYNC_REGS", "KVM_CAP_BINARY_STATS_FD", "KVM_CAP_USER_MEMORY", "KVM_CAP_XSAVE" };

	cr_assert_eq(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm is needed for this suite");
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int before = count_fds();
		setenv("VMLWC_TEST_HOOKS", "1", 1);
		setenv("VMLWC_TEST_DENY_CAP", caps[i], 1);
		errno = 0;
		cr_expect_eq(vmlwc_init(NULL), -1);
		cr_expect_eq(errno, ENOTSUP);
		cr_expect(strstr(vmlwc_strerror(), caps[i]) != NULL, "message: %s", vmlwc_strerror());
		cr_expect_eq(vmlwc_active(), 0);
		cr_expect_eq(count_fds(), before, "fds leaked by a refused vmlwc_init");
	}
	unsetenv("VMLWC_TEST_DENY_CAP");
	unsetenv("VMLWC_TEST_HOOKS");
	/* and then it works */
	ENTER();
	cr_expect_gt(getpid(), 0);
}

/* Whether KVM_GET_SUPPORTED_CPUID offers a feature bit (leaf 1 ecx), asked before entering. */
static int kvm_supports_leaf1_ecx(unsigned bit)
{
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[256];
	} c = { .h = { .nent = 256 } };
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), on = 0;

	cr_assert_geq(fd, 0, "/dev/kvm: %s", strerror(errno));
	cr_assert_eq(ioctl(fd, KVM_GET_SUPPORTED_CPUID, &c), 0, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	for (unsigned i = 0; i < c.h.nent; i++)
		if (c.e[i].function == 1 && c.e[i].index == 0)
			on = !!(c.e[i].ecx & (1u << bit));
	close(fd);
	return on;
}

/*
 * PCID-tagged CR3 exactly where KVM offers PCID and accepts CR4.PCIDE (VT-x; not PVM, whose
 * guest-visible CPUID may show the host's PCID): compared with what KVM reports, not with the
 * guest's own cpuid. Where KVM offers it but refuses the CR4 bit, init still succeeds without.
 */
Test(caps, pcid_where_kvm_offers_it, .timeout = 60)
{
	int offered = kvm_supports_leaf1_ecx(17);
	ENTER();
	long on = syscall(VMLWC_SYS_POOL, VMLWC_POOL_PCID);
	long refused = syscall(VMLWC_SYS_POOL, VMLWC_POOL_CR4_REFUSED);
	cr_assert_geq(refused, 0);
	cr_expect_eq(on, offered && !(refused & (1L << 17)), "KVM offers PCID: %d, refused CR4 bits %#lx, library uses PCIDs: %ld",
		     offered, refused, on);
}

/* Each vmlwc_config.flags knob does what its environment variable does (forked: one init per process). */
static int init_with_flags_child(unsigned flags, int trace_fd)
{
	pid_t p = fork();
	int st = 0;

	if (p == 0) {
		unsetenv("VMLWC_TRACE");
		unsetenv("VMLWC_EAGER_TABLES");
		unsetenv("VMLWC_NO_PCID");
		if (trace_fd >= 0)
			dup2(trace_fd, 2);
		struct vmlwc_config cfg = { .pool_bytes = 0, .flags = flags };
		if (vmlwc_init(&cfg) != 0)
			_exit(200);
		syscall(SYS_getppid);
		long lazy = syscall(VMLWC_SYS_POOL, VMLWC_POOL_LAZY);
		long pcid = syscall(VMLWC_SYS_POOL, VMLWC_POOL_PCID);
		if ((flags & VMLWC_F_EAGER_TABLES) && lazy != 0)
			_exit(201);
		if ((flags & VMLWC_F_NO_PCID) && pcid != 0)
			_exit(202);
		_exit(0);
	}
	waitpid(p, &st, 0);
	return st;
}

Test(caps, config_flags_are_the_knobs, .timeout = 120)
{
	char path[] = "/tmp/vmlwc-flags-XXXXXX", log[4096];
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	int st = init_with_flags_child(VMLWC_F_TRACE | VMLWC_F_EAGER_TABLES | VMLWC_F_NO_PCID, fd);
	ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
	log[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (200: init failed, 201: tables lazy, 202: PCIDs on)", st);
	cr_expect(strstr(log, "getppid(") != NULL, "VMLWC_F_TRACE wrote no line for getppid:\n%s", log);
	/* an unknown bit beside the known ones: EINVAL, nothing entered */
	struct vmlwc_config bad = { .pool_bytes = 0, .flags = VMLWC_F_ALL + 1 };
	errno = 0;
	cr_expect_eq(vmlwc_init(&bad), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect_eq(vmlwc_active(), 0);
}

/*
 * vmlwc_init in a fresh process where one KVM ioctl fails with EACCES (a seccomp filter, as a
 * confining LSM or container runtime would deny it): 0 when the call fails with that errno, the
 * message names the request, the process stays native and no descriptor is left open; else
 * which of those did not hold (the message goes to stderr).
 */
static int init_with_ioctl_denied(unsigned long req, const char *name)
{
	pid_t p = fork();
	int st;

	if (p == 0) {
		scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
		if (!f || seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, req)) < 0 ||
		    seccomp_load(f) < 0)
			_exit(10);
		int before = count_fds();
		errno = 0;
		int r = vmlwc_init(NULL), e = errno;
		if (r != -1)
			_exit(11);
		if (e != EACCES)
			_exit(12);
		if (strncmp(vmlwc_strerror(), name, strlen(name)) != 0) {
			fprintf(stderr, "denied %s, message: %s\n", name, vmlwc_strerror());
			_exit(13);
		}
		if (vmlwc_active())
			_exit(14);
		if (count_fds() != before)
			_exit(15);
		_exit(0);
	}
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(caps, failing_kvm_ioctl_named_and_undone, .timeout = 120)
{
	static const struct { unsigned long req; const char *name; } denied[] = {
#define D(r) { r, #r }
		D(KVM_GET_API_VERSION), D(KVM_GET_VCPU_MMAP_SIZE), D(KVM_CREATE_VM), D(KVM_CREATE_VCPU),
		D(KVM_GET_STATS_FD), D(KVM_SET_CPUID2), D(KVM_GET_SREGS),
#undef D
	};

	cr_assert_eq(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm is needed for this suite");
	for (unsigned i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		int r = init_with_ioctl_denied(denied[i].req, denied[i].name);
		cr_expect_eq(r, 0, "%s denied: %d (10: filter, 11: init succeeded, 12: errno not EACCES, "
			     "13: message names another call, 14: left active, 15: descriptors leaked)", denied[i].name, r);
	}
}

/* The paths this configuration is for (tools/configs.sh), whatever the suites around it test. */
Test(caps, platform_paths_are_the_configurations, .timeout = 60)
{
	ENTER();
	assert_expected_paths();
}
