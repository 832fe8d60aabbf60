/* Helpers shared by the suites that run code inside the guest. */
#ifndef GUEST_COMMON_H
#define GUEST_COMMON_H
#include <criterion/criterion.h>
#include <errno.h>
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
#endif
