/* Working directory and umask per lwC (fsctx.c). */
#ifndef VMLWC_FSCTX_H
#define VMLWC_FSCTX_H

#include "base.h"

struct lwc;
struct fsctx;
struct fsctx *fsctx_for_child(const struct lwc *creator); /* one more reference; NULL: no memory */
void fsctx_put(struct fsctx *f);
const char *fsctx_cwd(const struct lwc *l);   /* NULL: the process's (the root's) */
int fsctx_umask(const struct lwc *l);         /* -1: the process's */
int fsctx_set(struct lwc *l, const char *cwd, int umask); /* cwd NULL or umask -1: unchanged; 0 or -ENOMEM */
void fsctx_root_changed(void);                /* the root's chdir or umask: later copies see it */

/* g_vm.fs. Shared between vCPUs: under vm_lock (a call that swaps the umask keeps it throughout). */
struct fsctx_state {
	struct fsctx *root_snap;   /* the process's working directory and umask, as the root's copies get them */
};

#endif
