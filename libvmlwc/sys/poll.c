/* Redirected syscalls: readiness (poll, ppoll, select, pselect6, epoll) over translated fds. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <time.h>

#include "../fdtab.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"

#define SIGSET_BYTES 8          /* the kernel's sigset_t on x86-64 */
#define SZ_EPOLL_EVENT 12
#define NSEC_PER_SEC 1000000000L

_Static_assert(sizeof(struct epoll_event) == SZ_EPOLL_EVENT, "struct epoll_event");
_Static_assert(sizeof(struct pollfd) == 8, "struct pollfd");

/* An optional signal mask: NULL, or sigsetsize must be the kernel's (as natively). */
static long mask_in(struct sys_call *c, gva_t gva, unsigned long size, uint64_t *mask, void **host)
{
	*host = NULL;
	if (!gva)
		return 0;
	if (size != SIGSET_BYTES)
		return -EINVAL;
	if (ua_copy_in(c->l, mask, gva, SIGSET_BYTES) < 0)
		return -EFAULT;
	*host = mask;
	return 0;
}

static int ts_valid(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < NSEC_PER_SEC;
}

/* A guest timespec, read and checked. */
static long ts_in(struct sys_call *c, gva_t uts, struct timespec *ts)
{
	if (ua_copy_in(c->l, ts, uts, sizeof(*ts)) < 0)
		return -EFAULT;
	return ts_valid(ts) ? 0 : -EINVAL;
}

/*
 * poll/ppoll: a host copy of the array with host fds. A guest fd not in the table is -1 on the
 * host and reports POLLNVAL; like natively, it counts as ready, so the host call does not wait.
 * uts, when set, receives the time left (the raw ppoll's behaviour).
 */
static long poll_common(struct sys_call *c, gva_t ufds, unsigned long nfds, struct timespec *ts,
			gva_t uts, void *mask)
{
	struct pollfd *g = (struct pollfd *)c->v->bounce, *hp;
	struct timespec zero = { 0, 0 };
	unsigned long i, nbad = 0;
	long r;

	if (nfds > c->v->bounce_size / (2 * sizeof(*g)))
		return -EINVAL;
	hp = g + nfds;
	if (nfds && ua_copy_in(c->l, g, ufds, nfds * sizeof(*g)) < 0)
		return -EFAULT;
	for (i = 0; i < nfds; i++) {
		hp[i].fd = -1;
		hp[i].events = g[i].events;
		hp[i].revents = 0;
		if (g[i].fd < 0)
			continue;
		int h = sys_fd(c, g[i].fd);
		if (h < 0)
			nbad++;
		else
			hp[i].fd = h;
	}
	r = SYS_BLOCK(c, SYS_ppoll, hp, nfds, nbad ? &zero : ts, mask, SIGSET_BYTES);
	if (uts && !nbad && (r >= 0 || r == -EINTR))
		(void)ua_copy_out(c->l, uts, ts, sizeof(*ts)); /* ignored when read-only, as natively */
	if (r < 0)
		return r;
	for (i = 0; i < nfds; i++) {
		if (g[i].fd < 0)
			g[i].revents = 0;
		else if (hp[i].fd < 0)
			g[i].revents = POLLNVAL;
		else
			g[i].revents = hp[i].revents;
	}
	if (nfds && ua_copy_out(c->l, ufds, g, nfds * sizeof(*g)) < 0)
		return -EFAULT;
	return r + (long)nbad;
}

static long sys_poll(struct sys_call *c)
{
	int ms = (int)c->a[2];
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return poll_common(c, (gva_t)c->a[0], (unsigned)c->a[1], ms < 0 ? NULL : &ts, 0, NULL);
}

static long sys_ppoll(struct sys_call *c)
{
	struct timespec ts;
	uint64_t mask;
	void *hmask;
	gva_t uts = (gva_t)c->a[2];
	long r;

	if (uts && (r = ts_in(c, uts, &ts)) < 0)
		return r;
	r = mask_in(c, (gva_t)c->a[3], (unsigned long)c->a[4], &mask, &hmask);
	if (r < 0)
		return r;
	return poll_common(c, (gva_t)c->a[0], (unsigned)c->a[1], uts ? &ts : NULL, uts, hmask);
}

/*
 * select/pselect6: host fd_sets built from the guest's (bits at or above nfds ignored; a set bit
 * for a guest fd not in the table is EBADF, as natively) and results mapped back to guest
 * numbers. The host sets are sized for the largest host fd, so no FD_SETSIZE limit applies.
 * hts is the host copy of the timeout (timeval for select, timespec for pselect6), updated
 * by the kernel with the time left; sig is pselect6's host { sigset *, size } or NULL.
 */
static long select_common(struct sys_call *c, void *hts, const void *sig)
{
	int n = (int)c->a[0];
	unsigned long gbits, hwords, i;
	uint64_t *gs[3], *hs[3];
	int maxh = -1, k;
	long r, cnt = 0;

	if (n < 0)
		return -EINVAL;
	gbits = fdtab_cap(c->fds);
	if ((unsigned long)n < gbits)
		gbits = (unsigned long)n;
	if (gbits > SYS_MAX_BOUNCE * 8)
		gbits = SYS_MAX_BOUNCE * 8; /* no guest fd can be that high in a table that size */
	size_t gbytes = (gbits + 63) / 64 * 8;
	for (k = 0; k < 3; k++) {
		gva_t u = (gva_t)c->a[1 + k];
		gs[k] = NULL;
		if (!u)
			continue;
		gs[k] = (uint64_t *)c->bounce[k];
		if (gbytes && ua_copy_in(c->l, gs[k], u, gbytes) < 0)
			return -EFAULT;
	}
	for (i = 0; i < gbits; i++) {
		int want = 0;
		for (k = 0; k < 3; k++)
			want |= gs[k] && (gs[k][i / 64] >> (i % 64) & 1);
		if (!want)
			continue;
		int h = sys_fd(c, (long)i);
		if (h < 0)
			return -EBADF;
		if (h > maxh)
			maxh = h;
	}
	hwords = (unsigned long)(maxh + 64) / 64;
	if (3 * hwords * 8 > c->v->bounce_size)
		return -EINVAL;
	for (k = 0; k < 3; k++) {
		hs[k] = gs[k] ? (uint64_t *)c->v->bounce + k * hwords : NULL;
		if (hs[k])
			memset(hs[k], 0, hwords * 8);
	}
	for (i = 0; i < gbits; i++)
		for (k = 0; k < 3; k++)
			if (gs[k] && (gs[k][i / 64] >> (i % 64) & 1)) {
				int h = sys_fd(c, (long)i);
				hs[k][h / 64] |= 1UL << (h % 64);
			}
	if (sig)
		r = SYS_BLOCK(c, SYS_pselect6, maxh + 1, hs[0], hs[1], hs[2], hts, sig);
	else
		r = SYS_BLOCK(c, SYS_select, maxh + 1, hs[0], hs[1], hs[2], hts);
	if (r < 0)
		return r;
	for (k = 0; k < 3; k++) {
		if (!gs[k])
			continue;
		for (i = 0; i < gbytes * 8; i++) {
			uint64_t bit = 1UL << (i % 64);
			if (!(gs[k][i / 64] & bit))
				continue;
			gs[k][i / 64] &= ~bit;
			if (i >= gbits)
				continue;
			int h = sys_fd(c, (long)i);
			if (hs[k][h / 64] >> (h % 64) & 1) {
				gs[k][i / 64] |= bit;
				cnt++;
			}
		}
		if (gbytes && ua_copy_out(c->l, (gva_t)c->a[1 + k], gs[k], gbytes) < 0)
			return -EFAULT;
	}
	return cnt;
}

static long sys_select(struct sys_call *c)
{
	gva_t utv = (gva_t)c->a[4];
	struct timeval tv;
	long r;

	if (utv) {
		if (ua_copy_in(c->l, &tv, utv, sizeof(tv)) < 0)
			return -EFAULT;
		if (tv.tv_sec < 0 || tv.tv_usec < 0)
			return -EINVAL;
	}
	r = select_common(c, utv ? &tv : NULL, NULL);
	/* The raw select reports the time left; ignored when read-only, as natively. */
	if (utv && (r >= 0 || r == -EINTR))
		(void)ua_copy_out(c->l, utv, &tv, sizeof(tv));
	return r;
}

static long sys_pselect6(struct sys_call *c)
{
	gva_t uts = (gva_t)c->a[4], usig = (gva_t)c->a[5];
	struct { uint64_t ss, len; } gsig;
	struct { void *ss; size_t len; } hsig = { NULL, SIGSET_BYTES };
	struct timespec ts;
	uint64_t mask;
	long r;

	if (uts && (r = ts_in(c, uts, &ts)) < 0)
		return r;
	/* The sixth argument points at { const sigset_t *ss; size_t ss_len }: a second guest pointer. */
	if (usig) {
		if (ua_copy_in(c->l, &gsig, usig, sizeof(gsig)) < 0)
			return -EFAULT;
		r = mask_in(c, (gva_t)gsig.ss, (unsigned long)gsig.len, &mask, &hsig.ss);
		if (r < 0)
			return r;
	}
	r = select_common(c, uts ? &ts : NULL, &hsig);
	if (uts && (r >= 0 || r == -EINTR))
		(void)ua_copy_out(c->l, uts, &ts, sizeof(ts));
	return r;
}

/* epoll_wait/epoll_pwait/epoll_pwait2: events come back through the vCPU bounce area. */
static long epoll_common(struct sys_call *c, long timeout, const struct timespec *ts, int pwait2,
			 gva_t umask, unsigned long masksz)
{
	gva_t uev = (gva_t)c->a[1];
	int max = (int)c->a[2], h;
	unsigned long n;
	uint64_t mask;
	void *hmask;
	long r;

	if (max <= 0)
		return -EINVAL;
	n = c->v->bounce_size / SZ_EPOLL_EVENT;
	if ((unsigned long)max < n)
		n = (unsigned long)max;
	if (ua_check(c->l, uev, n * SZ_EPOLL_EVENT, UA_WRITE) < 0)
		return -EFAULT;
	h = sys_fd(c, (int)c->a[0]);
	if (h < 0)
		return h;
	r = mask_in(c, umask, masksz, &mask, &hmask);
	if (r < 0)
		return r;
	if (pwait2)
		r = SYS_BLOCK(c, SYS_epoll_pwait2, h, c->v->bounce, n, ts, hmask, SIGSET_BYTES);
	else
		r = SYS_BLOCK(c, SYS_epoll_pwait, h, c->v->bounce, n, timeout, hmask, SIGSET_BYTES);
	if (r > 0 && ua_copy_out(c->l, uev, c->v->bounce, (size_t)r * SZ_EPOLL_EVENT) < 0)
		return -EFAULT;
	return r;
}

static long sys_epoll_wait(struct sys_call *c)
{
	return epoll_common(c, (int)c->a[3], NULL, 0, 0, 0);
}

static long sys_epoll_pwait(struct sys_call *c)
{
	return epoll_common(c, (int)c->a[3], NULL, 0, (gva_t)c->a[4], (unsigned long)c->a[5]);
}

static long sys_epoll_pwait2(struct sys_call *c)
{
	struct timespec ts;
	gva_t uts = (gva_t)c->a[3];
	long r;

	if (uts && (r = ts_in(c, uts, &ts)) < 0)
		return r;
	return epoll_common(c, 0, uts ? &ts : NULL, 1, (gva_t)c->a[4], (unsigned long)c->a[5]);
}

const struct sys_entry sys_poll_table[] = {
	SYS(SYS_poll, .name = "poll", .fn = sys_poll),
	SYS(SYS_ppoll, .name = "ppoll", .fn = sys_ppoll),
	SYS(SYS_select, .name = "select", .fn = sys_select),
	SYS(SYS_pselect6, .name = "pselect6", .fn = sys_pselect6),
	SYS(SYS_epoll_create, .name = "epoll_create", .arg = { ARG(A_VAL) },
		.ret = R_FD),
	SYS(SYS_epoll_create1, .name = "epoll_create1", .arg = { ARG(A_VAL) },
		.ret = R_FD, .cloexec_arg = 1, .cloexec_bit = EPOLL_CLOEXEC),
	/* The event's data is the guest's own opaque value: nothing to translate. */
	SYS(SYS_epoll_ctl, .name = "epoll_ctl",
		.arg = { ARG(A_FD), ARG(A_VAL), ARG(A_FD),
			 ARG(A_IN, .flags = ARG_OPT, .size = SZ_EPOLL_EVENT) }),
	SYS(SYS_epoll_wait, .name = "epoll_wait", .fn = sys_epoll_wait),
	SYS(SYS_epoll_pwait, .name = "epoll_pwait", .fn = sys_epoll_pwait),
	SYS(SYS_epoll_pwait2, .name = "epoll_pwait2", .fn = sys_epoll_pwait2),
};
const unsigned sys_poll_table_len = ARRAY_SIZE(sys_poll_table);
