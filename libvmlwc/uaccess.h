/* Guest memory access: guest pointers through the calling lwC's page table (uaccess.c). */
#ifndef VMLWC_UACCESS_H
#define VMLWC_UACCESS_H

#include <sys/uio.h>
#include "base.h"

struct lwc;
#define UA_WRITE 1
#define UA_ANYPROT 2 /* the library's own read on the lwC's behalf (mremap's move): PROT_NONE pages too */
/* Translate [gva, gva+len) into at most max host segments; -EFAULT on any bad page. */
int ua_translate(struct lwc *l, gva_t gva, size_t len, int flags, struct iovec *iov, int max);
int ua_check(struct lwc *l, gva_t gva, size_t len, int flags); /* 0 or -EFAULT */
int ua_copy_in(struct lwc *l, void *dst, gva_t src, size_t len);        /* 0 or -EFAULT */
int ua_copy_in_anyprot(struct lwc *l, void *dst, gva_t src, size_t len); /* PROT_NONE pages read too */
int ua_copy_out(struct lwc *l, gva_t dst, const void *src, size_t len); /* 0 or -EFAULT */
long ua_strncpy_in(struct lwc *l, char *dst, gva_t src, size_t max); /* length, -EFAULT, -ENAMETOOLONG */
/* A host pointer for the whole range when it is contiguous on the host, else NULL. */
void *ua_direct(struct lwc *l, gva_t gva, size_t len, int flags);

struct vcpu;
void ua_unpin_all(struct vcpu *v); /* the pool frames v's call reached lose their extra reference */

#endif
