/* Init-time errors: errno plus a message naming the capability, ioctl or argument at fault. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

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

VMLWC_API const char *vmlwc_strerror(void)
{
	return err_buf;
}
