/* /proc/self/maps parsing with raw syscalls and a stack buffer (async-signal-safe). */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "base.h"
#include "procmaps.h"
#include "rawsys.h"

static uint64_t hex(const char **p)
{
	uint64_t v = 0;

	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

static void skip_field(const char **p)
{
	while (**p && **p != ' ')
		(*p)++;
	while (**p == ' ')
		(*p)++;
}

static int parse_line(char *line, struct procmaps_entry *e)
{
	const char *p = line;

	e->start = hex(&p);
	if (*p++ != '-')
		return -1;
	e->end = hex(&p);
	if (*p++ != ' ')
		return -1;
	e->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROT_EXEC : 0);
	e->shared = p[3] == 's';
	skip_field(&p);
	e->offset = hex(&p);
	while (*p == ' ')
		p++;
	skip_field(&p); /* dev */
	e->inode = 0;
	while (*p >= '0' && *p <= '9')
		e->inode = e->inode * 10 + (uint64_t)(*p++ - '0');
	while (*p == ' ')
		p++;
	e->path = p;
	return 0;
}

int procmaps_each(int (*fn)(const struct procmaps_entry *e, void *arg), void *arg)
{
	char buf[8192];
	size_t have = 0;
	long fd = RAW4(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	int stop = 0, eof = 0;

	if (fd < 0)
		return (int)fd;
	while (!stop) {
		if (!eof && have < sizeof(buf) - 1) {
			long n = RAW3(SYS_read, fd, buf + have, sizeof(buf) - 1 - have);
			if (n < 0) {
				RAW1(SYS_close, fd);
				return (int)n;
			}
			if (n == 0)
				eof = 1;
			have += (size_t)n;
		}
		size_t i, start = 0;
		for (i = 0; i < have && !stop; i++) {
			if (buf[i] != '\n')
				continue;
			struct procmaps_entry e;
			buf[i] = 0;
			if (parse_line(buf + start, &e) == 0)
				stop = fn(&e, arg);
			start = i + 1;
		}
		if (start == 0 && have == sizeof(buf) - 1) {
			RAW1(SYS_close, fd);
			return -E2BIG; /* a single line longer than the buffer */
		}
		for (i = start; i < have; i++)
			buf[i - start] = buf[i];
		have -= start;
		if (eof && have == 0)
			break;
		if (eof && start == 0)
			break; /* trailing partial line without newline */
	}
	RAW1(SYS_close, fd);
	return 0;
}
