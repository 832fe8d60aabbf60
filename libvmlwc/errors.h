/* Init-time error reporting (errors.c). */
#ifndef VMLWC_ERRORS_H
#define VMLWC_ERRORS_H

#include "base.h"

/* Records the reason vmlwc_init failed (vmlwc_strerror); returns -1 for "return err_set(...)". */
int err_set(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
