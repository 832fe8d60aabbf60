/* Ending the process for a guest failure (die.c): every layer may call these. */
#ifndef VMLWC_DIE_H
#define VMLWC_DIE_H

struct vcpu;
void die_dump(struct vcpu *v, const char *why);   /* registers, CR2, CR3 ... to the trace (stderr); v may be NULL */
__attribute__((noreturn)) void die_signal(struct vcpu *v, int sig); /* as a native fault: default action, unblocked */
__attribute__((noreturn)) void die_panic(struct vcpu *v, const char *why); /* a dump, then SIGABRT */

#endif
