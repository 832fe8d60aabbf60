/* The lwC calls. Not implemented yet (issue "Light-weight contexts"): each fails with ENOSYS. */
#include <errno.h>

#include "internal.h"

static int nosys(void)
{
	errno = ENOSYS;
	return -1;
}

VMLWC_API int lwc_create(const struct lwc_rspec *specs, int nspecs, int flags, struct lwc_msg *in)
{
	(void)specs; (void)nspecs; (void)flags; (void)in;
	return nosys();
}

VMLWC_API int lwc_switch(int to, const long *args, int nargs, struct lwc_msg *in)
{
	(void)to; (void)args; (void)nargs; (void)in;
	return nosys();
}

VMLWC_API int lwc_switch_discard(int to, const long *args, int nargs)
{
	(void)to; (void)args; (void)nargs;
	return nosys();
}

VMLWC_API int lwc_self(void)
{
	return nosys();
}

VMLWC_API int lwc_close(int lwc)
{
	(void)lwc;
	return nosys();
}

VMLWC_API int lwc_overlay(int from, const struct lwc_rspec *specs, int nspecs)
{
	(void)from; (void)specs; (void)nspecs;
	return nosys();
}

VMLWC_API int lwc_restrict(int lwc, const struct lwc_rspec *specs, int nspecs)
{
	(void)lwc; (void)specs; (void)nspecs;
	return nosys();
}

VMLWC_API long lwc_syscall(int lwc, unsigned mask, long nr, const long args[6])
{
	(void)lwc; (void)mask; (void)nr; (void)args;
	return nosys();
}

VMLWC_API int lwc_limit_syscalls(const long *allowed, int n)
{
	(void)allowed; (void)n;
	return nosys();
}
