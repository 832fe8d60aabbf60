/* The lwC calls, guest side: argument checks that need no host, then the gate. */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "lwc_host.h"

struct vmlwc_gate_msg {
	long src;
	long nargs;
	long args[LWC_MAX_ARGS];
};

long vmlwc_gate(long call, long a0, long a1, long a2, const long args[8], long nargs,
		struct vmlwc_gate_msg *out);

/*
 * This thread's slot in every lwC's private page (its vCPU index), for the gate's switch code:
 * set whenever the thread resumes in an lwC's gate code, asked of the host once before a
 * thread's first switch (a new thread's TLS starts from the image: -1). In the thread's own
 * TLS, so in guest memory: a thread that lies about it only corrupts its own lwC's slots.
 */
extern __thread int vmlwc_tls_slot __attribute__((tls_model("initial-exec"), visibility("hidden"))); /* gate_x86_64.S */

static int ret_errno(long r)
{
	if (r < 0 && r != LWC_SWITCHED) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
}

static void msg_fill(struct lwc_msg *in, const struct vmlwc_gate_msg *m)
{
	if (!in)
		return;
	in->src = (int)m->src;
	in->nargs = m->nargs < 0 ? 0 : m->nargs > LWC_MAX_ARGS ? LWC_MAX_ARGS : (int)m->nargs;
	memcpy(in->args, m->args, sizeof(in->args));
}

/* Runs in the guest: the host's state is not mapped here, so only this thread's TLS is used. */
static int guest_only(void)
{
	if (!vmlwc_active()) {
		errno = ENODEV;
		return -1;
	}
	return 0;
}

VMLWC_API int lwc_create(const struct lwc_rspec *specs, int nspecs, int flags, struct lwc_msg *in)
{
	static const long none[8];
	struct vmlwc_gate_msg m;
	long r;

	if (guest_only() < 0)
		return -1;
	r = vmlwc_gate(VMLWC_LWC_CREATE, (long)specs, nspecs, flags, none, 0, &m);
	if (r == LWC_SWITCHED)
		msg_fill(in, &m);
	return ret_errno(r);
}

static int do_switch(long call, int to, const long *args, int nargs, struct lwc_msg *in)
{
	long a[8] = { 0 };
	struct vmlwc_gate_msg m;
	long r;

	if (guest_only() < 0)
		return -1;
	if (nargs < 0 || nargs > LWC_MAX_ARGS || (nargs && !args)) {
		errno = EINVAL;
		return -1;
	}
	if (nargs)
		memcpy(a, args, (size_t)nargs * sizeof(long));
	if (vmlwc_tls_slot < 0) {
		static const long none[8];
		long s = vmlwc_gate(VMLWC_LWC_SLOT, 0, 0, 0, none, 0, &m);
		if (s < 0)
			return ret_errno(s);
		vmlwc_tls_slot = (int)s;
	}
	r = vmlwc_gate(call, to, 0, 0, a, nargs, &m);
	if (r == LWC_SWITCHED)
		msg_fill(in, &m);
	return ret_errno(r);
}

VMLWC_API int lwc_switch(int to, const long *args, int nargs, struct lwc_msg *in)
{
	return do_switch(VMLWC_LWC_SWITCH, to, args, nargs, in);
}

VMLWC_API int lwc_switch_discard(int to, const long *args, int nargs)
{
	return do_switch(VMLWC_LWC_SWITCH_DISCARD, to, args, nargs, NULL);
}

static long simple(long call, long a0, long a1, long a2)
{
	static const long none[8];
	struct vmlwc_gate_msg m;

	if (guest_only() < 0)
		return -1;
	return ret_errno(vmlwc_gate(call, a0, a1, a2, none, 0, &m));
}

VMLWC_API int lwc_self(void)
{
	return (int)simple(VMLWC_LWC_SELF, 0, 0, 0);
}

VMLWC_API int lwc_close(int lwc)
{
	return (int)simple(VMLWC_LWC_CLOSE, lwc, 0, 0);
}

VMLWC_API int lwc_overlay(int from, const struct lwc_rspec *specs, int nspecs)
{
	return (int)simple(VMLWC_LWC_OVERLAY, from, (long)specs, nspecs);
}

VMLWC_API int lwc_restrict(int lwc, const struct lwc_rspec *specs, int nspecs)
{
	return (int)simple(VMLWC_LWC_RESTRICT, lwc, (long)specs, nspecs);
}

VMLWC_API long lwc_syscall(int lwc, unsigned mask, long nr, const long args[6])
{
	long a[8] = { 0 };
	struct vmlwc_gate_msg m;
	long r;

	if (guest_only() < 0)
		return -1;
	if (args)
		memcpy(a, args, 6 * sizeof(long));
	r = vmlwc_gate(VMLWC_LWC_SYSCALL, lwc, mask, nr, a, 6, &m);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

VMLWC_API int lwc_limit_syscalls(const long *allowed, int n)
{
	return (int)simple(VMLWC_LWC_LIMIT, (long)allowed, n, 0);
}
