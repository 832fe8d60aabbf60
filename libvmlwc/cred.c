/* The credential shadow: each lwC's uids, gids and groups; syscalls run under them on the host. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "arena.h"
#include "cred.h"
#include "rawsys.h"
#include "state.h"


int cred_init(struct cred *c)
{
	memset(c, 0, sizeof(*c));
	if (getresuid(&c->uid[0], &c->uid[1], &c->uid[2]) < 0 ||
	    getresgid(&c->gid[0], &c->gid[1], &c->gid[2]) < 0)
		return -1;
	int n = getgroups(CRED_MAX_GROUPS, c->groups);
	if (n < 0)
		return -1;
	c->ngroups = n;
	g_vm.cred.host_privileged = c->uid[1] == 0;
	return 0;
}

static int same(const struct cred *a, const struct cred *b)
{
	return !memcmp(a->uid, b->uid, sizeof(a->uid)) && !memcmp(a->gid, b->gid, sizeof(a->gid)) &&
	       a->ngroups == b->ngroups && !memcmp(a->groups, b->groups, (size_t)a->ngroups * sizeof(gid_t));
}

/*
 * Before a redirected syscall: the host thread takes the lwC's credentials, with raw
 * per-thread syscalls (glibc's wrappers would change every thread). The saved uid stays 0 when
 * the process is privileged, so the thread can come back; with a non-zero effective uid the
 * kernel leaves it no effective capabilities, and capset is not redirected.
 */
long cred_apply(struct cred *now, const struct cred *c)
{
	long r;

	if (same(c, now))
		return 0;
	if (g_vm.cred.host_privileged) {
		r = RAW3(SYS_setresuid, 0, 0, 0);
		if (r == 0)
			r = RAW2(SYS_setgroups, c->ngroups, c->groups);
		if (r == 0)
			r = RAW3(SYS_setresgid, c->gid[0], c->gid[1], c->gid[2]);
		if (r == 0)
			r = RAW3(SYS_setresuid, c->uid[0], c->uid[1], 0);
	} else {
		r = RAW3(SYS_setresgid, c->gid[0], c->gid[1], c->gid[2]);
		if (r == 0)
			r = RAW3(SYS_setresuid, c->uid[0], c->uid[1], c->uid[2]);
	}
	if (r < 0)
		return r;
	*now = *c;
	return 0;
}

struct cred *cred_new(const struct cred *from)
{
	struct cred *c = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(sizeof(*c)) / PAGE_SIZE);

	if (c) {
		*c = *from;
		c->refs = 1;
	}
	return c;
}

void cred_put(struct cred *c)
{
	if (c && --c->refs == 0)
		arena_free(&g_vm.arena, c, PAGE_ALIGN_UP(sizeof(*c)) / PAGE_SIZE);
}
