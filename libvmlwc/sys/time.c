/* Redirected syscalls: clocks, sleeps and interval timers. */
#include <errno.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>

#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"

#define SZ_TIMESPEC 16
#define SZ_TIMEVAL 16
#define SZ_TIMEZONE 8
#define SZ_ITIMERVAL 32
#define SZ_TMS 32

_Static_assert(sizeof(struct timespec) == SZ_TIMESPEC, "struct timespec");
_Static_assert(sizeof(struct itimerval) == SZ_ITIMERVAL, "struct itimerval");
_Static_assert(sizeof(struct tms) == SZ_TMS, "struct tms");

/* Dynamic POSIX clocks encode a descriptor in the clock id: ((~fd) << 3) | CLOCKFD. */
#define CLOCKFD 3

/* The host clock id for a guest one: a descriptor clock's fd goes through the table. */
static long clock_host(struct sys_call *c, long gclk, clockid_t *out)
{
	clockid_t clk = (clockid_t)gclk;

	if (clk < 0 && (clk & 7) == CLOCKFD) {
		int h = sys_fd(c, ~(clk >> 3));
		if (h < 0)
			return -EINVAL; /* as natively for a clock id naming no open fd */
		clk = (clockid_t)(((unsigned)~h << 3) | CLOCKFD);
	}
	*out = clk;
	return 0;
}

/* clock_gettime/clock_getres: translate the clock, then the generic executor. */
static long sys_clock_get(struct sys_call *c)
{
	clockid_t clk;
	long r = clock_host(c, c->a[0], &clk);

	if (r < 0)
		return r;
	c->a[0] = clk;
	c->d = c->nr == SYS_clock_gettime ?
		&DESC(.name = "clock_gettime", .arg = { ARG(A_VAL), ARG(A_OUT, .size = SZ_TIMESPEC) }) :
		&DESC(.name = "clock_getres",
		      .arg = { ARG(A_VAL), ARG(A_OUT, .flags = ARG_OPT, .size = SZ_TIMESPEC) });
	return sys_generic(c);
}

/* nanosleep/clock_nanosleep: the time left is written only when interrupted, as natively. */
static long sleep_common(struct sys_call *c, clockid_t clk, int flags, gva_t ureq, gva_t urem)
{
	struct timespec req, rem = { 0, 0 };
	long r;

	if (ua_copy_in(c->l, &req, ureq, sizeof(req)) < 0)
		return -EFAULT;
	if (c->nr == SYS_nanosleep)
		r = SYS_BLOCK(c, SYS_nanosleep, &req, &rem);
	else
		r = SYS_BLOCK(c, SYS_clock_nanosleep, clk, flags, &req, &rem);
	if (r == -EINTR && urem && !(flags & TIMER_ABSTIME) &&
	    ua_copy_out(c->l, urem, &rem, sizeof(rem)) < 0)
		return -EFAULT;
	return r;
}

static long sys_nanosleep(struct sys_call *c)
{
	return sleep_common(c, CLOCK_MONOTONIC, 0, (gva_t)c->a[0], (gva_t)c->a[1]);
}

static long sys_clock_nanosleep(struct sys_call *c)
{
	clockid_t clk;
	long r = clock_host(c, c->a[0], &clk);

	if (r < 0)
		return r;
	return sleep_common(c, clk, (int)c->a[1], (gva_t)c->a[2], (gva_t)c->a[3]);
}

const struct sys_entry sys_time_table[] = {
	SYS(SYS_clock_gettime, .name = "clock_gettime", .fn = sys_clock_get),
	SYS(SYS_clock_getres, .name = "clock_getres", .fn = sys_clock_get),
	SYS(SYS_gettimeofday, .name = "gettimeofday",
		.arg = { ARG(A_OUT, .flags = ARG_OPT, .size = SZ_TIMEVAL),
			 ARG(A_OUT, .flags = ARG_OPT, .size = SZ_TIMEZONE) }),
	SYS(SYS_time, .name = "time",
		.arg = { ARG(A_OUT, .flags = ARG_OPT, .size = 8) }),
	SYS(SYS_nanosleep, .name = "nanosleep", .fn = sys_nanosleep),
	SYS(SYS_clock_nanosleep, .name = "clock_nanosleep", .fn = sys_clock_nanosleep),
	SYS(SYS_getitimer, .name = "getitimer",
		.arg = { ARG(A_VAL), ARG(A_OUT, .size = SZ_ITIMERVAL) }),
	SYS(SYS_setitimer, .name = "setitimer", .whole = 1,
		.arg = { ARG(A_VAL), ARG(A_IN, .flags = ARG_OPT, .size = SZ_ITIMERVAL),
			 ARG(A_OUT, .flags = ARG_OPT, .size = SZ_ITIMERVAL) }),
	SYS(SYS_alarm, .name = "alarm", .whole = 1, .arg = { ARG(A_VAL) }),
	SYS(SYS_times, .name = "times",
		.arg = { ARG(A_OUT, .flags = ARG_OPT, .size = SZ_TMS) }),
};
const unsigned sys_time_table_len = ARRAY_SIZE(sys_time_table);
