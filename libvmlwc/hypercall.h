/* The ports: the syscall port and the doorbell exit (hypercall.c). */
#ifndef VMLWC_HYPERCALL_H
#define VMLWC_HYPERCALL_H

#include "base.h"

void hypercall_init(void); /* registers the ports and the exit-begin hook; never fails */

#endif
