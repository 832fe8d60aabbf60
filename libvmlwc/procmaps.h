/* /proc/self/maps reader usable from exit handlers: raw syscalls, caller's stack only. */
#ifndef VMLWC_PROCMAPS_H
#define VMLWC_PROCMAPS_H
#include <stdint.h>

struct procmaps_entry {
	uint64_t start, end, offset, inode;
	int prot;     /* PROT_* */
	int shared;   /* 's' in the flags */
	const char *path; /* NUL-terminated, "" when anonymous; valid during the callback */
};

/* Calls fn for each mapping until it returns non-zero; 0, or -errno. */
int procmaps_each(int (*fn)(const struct procmaps_entry *e, void *arg), void *arg);
#endif
