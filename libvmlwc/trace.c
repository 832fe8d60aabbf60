/* VMLWC_TRACE: one line per redirected syscall on stderr, formatted without stdio or malloc. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "base.h"
#include "rawsys.h"
#include "syscall_names.h"
#include "sysdesc.h"
#include "trace.h"
#include "vcpu.h"
#include "state.h"


void trace_init(void)
{
	/* A private stderr, so the trace survives the guest closing or redirecting its fd 2. */
	g_vm.trace.fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
}

uint64_t trace_now_ns(void)
{
	struct timespec ts;

	RAW2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct buf {
	char s[512];
	size_t n;
};

static void put_c(struct buf *b, char c)
{
	if (b->n < sizeof(b->s) - 1)
		b->s[b->n++] = c;
}

static void put_s(struct buf *b, const char *s)
{
	while (s && *s)
		put_c(b, *s++);
}

static void put_u(struct buf *b, unsigned long v, unsigned base)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16)
		put_s(b, "0x");
	while (i)
		put_c(b, tmp[--i]);
}

static void put_d(struct buf *b, long v)
{
	if (v < 0) {
		put_c(b, '-');
		put_u(b, 0UL - (unsigned long)v, 10);
	} else {
		put_u(b, (unsigned long)v, 10);
	}
}

static void vfmt(struct buf *b, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put_c(b, *fmt);
			continue;
		}
		fmt++;
		int l = 0;
		while (*fmt == 'l') {
			l = 1;
			fmt++;
		}
		switch (*fmt) {
		case 's': put_s(b, va_arg(ap, const char *)); break;
		case 'd': put_d(b, l ? va_arg(ap, long) : va_arg(ap, int)); break;
		case 'u': put_u(b, l ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10); break;
		case 'x': put_u(b, l ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16); break;
		case 'p': put_u(b, (unsigned long)va_arg(ap, void *), 16); break;
		case '%': put_c(b, '%'); break;
		default: put_c(b, '?'); break;
		}
	}
}

static void emit(struct buf *b)
{
	int fd = g_vm.trace.fd >= 0 ? g_vm.trace.fd : 2;

	RAW3(SYS_write, fd, b->s, b->n);
}

void trace_msg(const char *fmt, ...)
{
	struct buf b = { .n = 0 };
	va_list ap;

	put_s(&b, "vmlwc: ");
	va_start(ap, fmt);
	vfmt(&b, fmt, ap);
	va_end(ap);
	put_c(&b, '\n');
	emit(&b);
}

void trace_syscall(struct vcpu *v, const char *name, long nr, const long a[6], long ret, uint64_t ns)
{
	struct buf b = { .n = 0 };

	put_s(&b, "vmlwc: [vcpu ");
	put_d(&b, v->index);
	put_s(&b, "] ");
	if (name)
		put_s(&b, name);
	else {
		put_s(&b, "syscall_");
		put_d(&b, nr);
	}
	put_c(&b, '(');
	for (int i = 0; i < 6; i++) {
		if (i)
			put_s(&b, ", ");
		put_u(&b, (unsigned long)a[i], 16);
	}
	put_s(&b, ") = ");
	put_d(&b, ret);
	put_s(&b, " <");
	put_u(&b, ns / 1000, 10);
	put_c(&b, '.');
	put_c(&b, (char)('0' + (ns / 100) % 10));
	put_s(&b, " us>\n");
	emit(&b);
}

/* The descriptor's name, else the kernel's, else the library's private calls'. */
const char *trace_sys_name(long nr)
{
	if (nr >= 0 && nr < SYS_NR_MAX && g_vm.sys.table[nr] && g_vm.sys.table[nr]->name)
		return g_vm.sys.table[nr]->name;
	if (nr >= 0 && nr < (long)ARRAY_SIZE(syscall_names) && syscall_names[nr])
		return syscall_names[nr];
	if (nr == VMLWC_SYS_STATS)
		return "vmlwc_stats";
	if (nr == VMLWC_SYS_TEST_STUB_FAULT)
		return "vmlwc_test_stub_fault";
	if (nr == VMLWC_SYS_POOL)
		return "vmlwc_pool";
	return NULL;
}
