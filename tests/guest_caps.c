/* Refusal when a KVM capability the library relies on is missing; the process stays native. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cpuid.h>
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
	const char *caps[] = { "KVM_CAP_SYNC_REGS", "KVM_CAP_BINARY_STATS_FD", "KVM_CAP_USER_MEMORY" };

	cr_assert_eq(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm is needed for this suite");
	for (unsigned i = 0; i < 3; i++) {
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
