/* The credential shadow (cred.c). */
#ifndef VMLWC_CRED_H
#define VMLWC_CRED_H

#include "base.h"

#define CRED_MAX_GROUPS 64
struct cred {
	uint32_t uid[3];      /* real, effective, saved */
	uint32_t gid[3];
	int ngroups;
	uint32_t groups[CRED_MAX_GROUPS];
	int refs;             /* lwCs sharing it (LWC_CRED | LWC_SHARE) */
};
int cred_init(struct cred *c);                 /* the thread's ids: 0, or -1 with errno set */
/* The calling vCPU thread, now under *now, takes c's ids (*now follows): 0 or -errno. */
long cred_apply(struct cred *now, const struct cred *c);
struct cred *cred_new(const struct cred *from); /* a copy, one reference; NULL: no memory */
void cred_put(struct cred *c);                 /* the last reference frees it */

/* g_vm.cred. Set at init, read-only after (no lock); each vCPU's current ids are its own (struct vcpu). */
struct cred_state {
	int host_privileged;       /* the process can take any uid (euid 0 at init) */
	struct cred at_init;       /* credentials at init */
};

#endif
