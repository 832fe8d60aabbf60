/* Helpers shared by the suites that run code inside the guest. */
#ifndef GUEST_COMMON_H
#define GUEST_COMMON_H
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmlwc.h"

/* Enter the guest or fail loudly, naming why (no /dev/kvm is a failure, never a skip). */
#define ENTER()                                                                              \
	do {                                                                                 \
		int rc_ = vmlwc_init(NULL);                                                  \
		cr_assert_eq(rc_, 0, "vmlwc_init failed: %s (errno %d: %s)", vmlwc_strerror(), \
			     errno, strerror(errno));                                        \
		cr_assert_eq(vmlwc_active(), 1);                                             \
	} while (0)

/*
 * A thread that stays native when vmlwc_init runs later: it starts with every signal blocked,
 * so the library cannot adopt it into the guest (as glibc's timer helper threads, which block
 * every signal too). For tests of what such threads still do to the root lwC (G7).
 */
static inline int native_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* Run fn in a forked child that enters the guest; returns the child's wait status. */
static inline int run_child(void (*fn)(void))
{
	pid_t p = fork();
	int st = 0;

	if (p == 0) {
		if (vmlwc_init(NULL) != 0)
			_exit(200);
		fn();
		_exit(201);
	}
	cr_assert_gt(p, 0);
	cr_assert_eq(waitpid(p, &st, 0), p);
	cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 200), "vmlwc_init failed in the child");
	return st;
}

/*
 * The paths vmlwc_init chose (vmlwc_stats().platform, the bits that name paths rather than CPU
 * features) must be the ones the configuration is there to run: tools/configs.sh exports them
 * per configuration as VMLWC_TEST_EXPECT_PATHS, so a configuration that quietly lost its paths
 * (a hook that stopped working, a module parameter read wrong) fails here instead of passing
 * on other paths. Run by hand, the expectation comes from the host's own facts. Eager tables
 * (VMLWC_EAGER_TABLES, the *_eager CTest runs) are never lazy.
 */
#define VMLWC_PATH_BITS (VMLWC_PLATFORM_TDP | VMLWC_PLATFORM_PVM | VMLWC_PLATFORM_HOST_COW | \
			 VMLWC_PLATFORM_LWC_DOORBELL | VMLWC_PLATFORM_LAZY_TABLES)

static inline unsigned long expected_paths(const char **why)
{
	const char *e = getenv("VMLWC_TEST_EXPECT_PATHS"), *eager = getenv("VMLWC_EAGER_TABLES");
	unsigned long x;

	if (e && *e) {
		x = strtoul(e, NULL, 0);
		*why = "VMLWC_TEST_EXPECT_PATHS (tools/configs.sh)";
	} else {
		const char *hooks = getenv("VMLWC_TEST_HOOKS"), *pvm = getenv("VMLWC_TEST_PVM");
		int is_pvm = access("/sys/module/kvm_pvm", F_OK) == 0 ||
			     (hooks && !strcmp(hooks, "1") && pvm && *pvm && strcmp(pvm, "0"));
		char c = 0;
		for (int i = 0; i < 2; i++) {
			int fd = open(i ? "/sys/module/kvm_amd/parameters/npt" : "/sys/module/kvm_intel/parameters/ept",
				      O_RDONLY);
			if (fd >= 0) {
				if (read(fd, &c, 1) != 1)
					c = 0;
				close(fd);
			}
			if (c == 'Y' || c == '1')
				break;
		}
		int tdp = access("/sys/module/kvm_pvm", F_OK) != 0 && (c == 'Y' || c == '1');
		x = VMLWC_PLATFORM_LAZY_TABLES | (tdp ? VMLWC_PLATFORM_TDP : 0) |
		    (is_pvm ? VMLWC_PLATFORM_PVM | VMLWC_PLATFORM_LWC_DOORBELL : 0) |
		    (is_pvm || !tdp ? VMLWC_PLATFORM_HOST_COW : 0);
		*why = "this host's KVM (no VMLWC_TEST_EXPECT_PATHS: not run through tools/test.sh)";
	}
	if (eager && *eager && strcmp(eager, "0"))
		x &= ~(unsigned long)VMLWC_PLATFORM_LAZY_TABLES;
	return x;
}

/* In the guest: the paths chosen are exactly the expected ones. */
static inline void assert_expected_paths(void)
{
	struct vmlwc_stats st;
	const char *why = "";
	unsigned long want = expected_paths(&why);

	cr_assert_eq(vmlwc_stats(&st), 0);
	cr_log_info("platform %#lx: paths %#lx, expected %#lx from %s", (unsigned long)st.platform,
		    (unsigned long)(st.platform & VMLWC_PATH_BITS), want, why);
	cr_assert_eq(st.platform & VMLWC_PATH_BITS, want, "paths %#lx (platform %#lx), the configuration expects %#lx (%s)",
		     (unsigned long)(st.platform & VMLWC_PATH_BITS), (unsigned long)st.platform, want, why);
	if (getenv("VMLWC_EAGER_TABLES") && strcmp(getenv("VMLWC_EAGER_TABLES"), "0"))
		cr_assert_eq(st.platform & VMLWC_PLATFORM_LAZY_TABLES, 0, "eager tables run lazily");
}
#endif
