/* monitor: a sandboxed lwC parses untrusted input; its creator lets it only read one fd and write another. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmlwc.h"

/* The untrusted part: counts the words of what it reads and writes a report. */
static void parse(int in_fd, int out_fd)
{
	char buf[4096], report[128];
	long words = 0, bytes = 0;
	int inword = 0;
	ssize_t n;

	while ((n = read(in_fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			int sp = buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t';
			words += !sp && !inword;
			inword = !sp;
		}
		bytes += n;
	}
	/* the sandbox cannot open anything: this attempt is refused by the monitor */
	int fd = (int)syscall(SYS_openat, -100, "/etc/shadow", 0, 0);
	int len = snprintf(report, sizeof(report), "%ld bytes, %ld words; open(/etc/shadow) -> %s\n",
			   bytes, words, fd < 0 ? strerror(errno) : "opened (!)");
	if (write(out_fd, report, (size_t)len) < 0)
		return;
}

int main(void)
{
	int in_fd = 0, out_fd = 1, denied = 0, allowed = 0;
	struct lwc_msg in;

	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "monitor: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	int c = lwc_create(NULL, 0, LWC_TRAP_SYSCALL, &in);
	if (c == LWC_SWITCHED) {
		parse(in_fd, out_fd);
		lwc_switch_discard(in.src, NULL, 0); /* an lwC call: not trapped */
	}
	if (c < 0) {
		perror("lwc_create");
		return 1;
	}
	/* The reference monitor: each of the child's syscalls arrives as {nr, a0..a5}. */
	int r = lwc_switch(c, NULL, 0, &in);
	while (r == LWC_SWITCHED && in.nargs == 7) {
		long nr = in.args[0], res;
		int ok = (nr == SYS_read && in.args[1] == in_fd) || (nr == SYS_write && in.args[1] == out_fd);
		if (ok) {
			res = lwc_syscall(in.src, LWC_MEM | LWC_FILES, nr, &in.args[1]);
			if (res == -1)
				res = -errno;
			allowed++;
		} else {
			res = -EACCES;
			denied++;
		}
		r = lwc_switch(in.src, &res, 1, &in);
	}
	if (r != LWC_SWITCHED) {
		/* the sandbox did not finish with its discard: its report may be missing */
		perror("monitor: lwc_switch");
		return 1;
	}
	fprintf(stderr, "monitor: %d syscalls allowed, %d denied\n", allowed, denied);
	lwc_close(c);
	return 0;
}
