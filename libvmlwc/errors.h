/* Init-time error reporting (errors.c). */
#ifndef VMLWC_ERRORS_H
#define VMLWC_ERRORS_H

#include "base.h"

/* Records the reason vmlwc_init failed (vmlwc_strerror); returns -1 for "return err_set(...)". */
int err_set(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Checked calls, as KVM selftests pair __x() with x(): the call stays raw at its site and one
 * helper names it in the error. Init-time only (stdio, strerror): never from an exit handler.
 */
/* r from a call returning -errno: 0 when r >= 0, else -1 with "what: <strerror>" recorded. */
int err_check(long r, const char *what);
/* An ioctl named by its request: its result (>= 0), or -1 with "REQ: <strerror>" recorded. */
long ioctl_checked(int fd, unsigned long req, void *arg, const char *req_name);
#define IOCTL_CHECKED(fd, req, arg) ioctl_checked((fd), (req), (void *)(uintptr_t)(arg), #req)

#endif
