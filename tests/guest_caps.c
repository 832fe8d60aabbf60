/* Refusal when a KVM capability the library relies on is missing; the process stays native. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cpuid.h>
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
	const char *caps[] = { "KVM_CAP_SYNC_REGS", "KVM_CAP_BINARY_STATS_FD", "KVM_CAP_USER_MEMORY" };

	cr_assert_eq(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm is needed for this suite");
	for (unsigned i = 0; i < 3; i++) {
		int before = count_fds();
		setenv("VMLWC_TEST_DENY_CAP", caps[i], 1);
		errno = 0;
		cr_expect_eq(vmlwc_init(NULL), -1);
		cr_expect_eq(errno, ENOTSUP);
		cr_expect(strstr(vmlwc_strerror(), caps[i]) != NULL, "message: %s", vmlwc_strerror());
		cr_expect_eq(vmlwc_active(), 0);
		cr_expect_eq(count_fds(), before, "fds leaked by a refused vmlwc_init");
	}
	unsetenv("VMLWC_TEST_DENY_CAP");
	/* and then it works */
	ENTER();
	cr_expect_gt(getpid(), 0);
}

/* PCID-tagged CR3 exactly where the guest CPU offers PCID (VT-x; PVM does not). */
Test(caps, pcid_where_the_guest_cpu_has_it, .timeout = 60)
{
	unsigned a, b, c, d;
	ENTER();
	cr_assert(__get_cpuid(1, &a, &b, &c, &d));
	long on = syscall(VMLWC_SYS_POOL, VMLWC_POOL_PCID);
	cr_expect_eq(on, !!(c & (1u << 17)), "guest CPUID PCID %d, library uses PCIDs: %ld", !!(c & (1u << 17)), on);
}
