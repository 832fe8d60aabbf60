/* lwc_overlay's application: another lwC's memory and descriptors made the caller's (overlay.c). */
#ifndef VMLWC_OVERLAY_H
#define VMLWC_OVERLAY_H

#include "base.h"

struct lwc;
struct spec_set;

/*
 * src's view of every range of ss becomes l's: memory copy-on-write (shared with LWC_SHARE),
 * descriptors as duplicates at the same numbers (one slot for both with LWC_SHARE). The caller
 * has checked the rights and holds a reference to src. 0, or -EINVAL (a spec overlay cannot
 * apply: LWC_UNMAP, LWC_CRED; nothing applied), -ENOMEM, -EMFILE (the ranges before it applied).
 */
long overlay_apply(struct lwc *l, struct lwc *src, const struct spec_set *ss);

#endif
