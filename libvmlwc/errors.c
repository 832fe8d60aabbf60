/* Init-time errors: errno plus a message naming the capability, ioctl or argument at fault. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base.h"
#include "errors.h"

static __thread char err_buf[256];

int err_set(int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	errno = errnum;
	return -1;
}

int err_check(long r, const char *what)
{
	return r >= 0 ? 0 : err_set((int)-r, "%s: %s", what, strerror((int)-r));
}

long ioctl_checked(int fd, unsigned long req, void *arg, const char *req_name)
{
	long r = ioctl(fd, req, arg);

	return r >= 0 ? r : err_set(errno, "%s: %s", req_name, strerror(errno));
}

VMLWC_API const char *vmlwc_strerror(void)
{
	return err_buf;
}
