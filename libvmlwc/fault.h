/* Guest fault handling: the fault port and the lean #PF port (fault.c). */
#ifndef VMLWC_FAULT_H
#define VMLWC_FAULT_H

#include "base.h"

struct vcpu;
int fault_handle(struct vcpu *v);    /* the fault port: 0 (resume), or the guest dies */
int fault_handle_pf(struct vcpu *v); /* the lean #PF port (ring 0 emulated): likewise */

#endif
