/* vmlwc_init refusals that leave the process native and unchanged. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmlwc.h"

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
