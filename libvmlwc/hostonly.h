/* Host-only set-up for unit tests and the fuzzer, no KVM (hostonly.c). */
#ifndef VMLWC_HOSTONLY_H
#define VMLWC_HOSTONLY_H

#include "base.h"

struct vcpu;
struct vcpu *vmlwc_hostonly_setup(void); /* the vCPU; the process dies if set-up fails */
/* Host-only: a doorbell rung from ring 3 with the registers in v->run, handled as the run loop
   would, and the root it loads on return taken as loaded (for the fuzzing harness). */
void vmlwc_hostonly_doorbell(struct vcpu *v, unsigned off);

#endif
