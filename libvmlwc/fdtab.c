/* The descriptor shadow: each lwC's own table from guest descriptor numbers to host fds. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "rawsys.h"

#define FD_NONE (-1)
#define FD_CLOEXEC_BIT (1 << 30)

struct fdtab {
	unsigned cap;
	int ent[];  /* host fd | FD_CLOEXEC_BIT, or FD_NONE */
};

struct fdtab *fdtab_new(unsigned cap)
{
	size_t bytes = sizeof(struct fdtab) + (size_t)cap * sizeof(int);
	struct fdtab *t = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(bytes) / PAGE_SIZE);

	if (!t)
		return NULL;
	t->cap = cap;
	for (unsigned i = 0; i < cap; i++)
		t->ent[i] = FD_NONE;
	return t;
}

unsigned fdtab_cap(const struct fdtab *t)
{
	return t->cap;
}

int fdtab_get(const struct fdtab *t, long gfd)
{
	if (gfd < 0 || (unsigned long)gfd >= t->cap || t->ent[gfd] == FD_NONE)
		return -EBADF;
	return t->ent[gfd] & ~FD_CLOEXEC_BIT;
}

int fdtab_min_free(const struct fdtab *t, long from)
{
	if (from < 0)
		return -EINVAL;
	for (unsigned long i = (unsigned long)from; i < t->cap; i++)
		if (t->ent[i] == FD_NONE)
			return (int)i;
	return -EMFILE;
}

int fdtab_install(struct fdtab *t, int hfd, int cloexec)
{
	int g = fdtab_min_free(t, 0);

	if (g < 0)
		return g;
	t->ent[g] = hfd | (cloexec ? FD_CLOEXEC_BIT : 0);
	return g;
}

int fdtab_install_at(struct fdtab *t, long gfd, int hfd)
{
	if (gfd < 0 || (unsigned long)gfd >= t->cap)
		return -EBADF;
	if (t->ent[gfd] != FD_NONE)
		RAW1(SYS_close, t->ent[gfd] & ~FD_CLOEXEC_BIT);
	t->ent[gfd] = hfd;
	return (int)gfd;
}

int fdtab_close(struct fdtab *t, long gfd)
{
	int h = fdtab_get(t, gfd);

	if (h < 0)
		return h;
	t->ent[gfd] = FD_NONE;
	return (int)RAW1(SYS_close, h);
}

int fdtab_guest_of(const struct fdtab *t, int hfd)
{
	for (unsigned i = 0; i < t->cap; i++)
		if (t->ent[i] != FD_NONE && (t->ent[i] & ~FD_CLOEXEC_BIT) == hfd)
			return (int)i;
	return -1;
}

int fdtab_is_cloexec(const struct fdtab *t, long gfd)
{
	return fdtab_get(t, gfd) >= 0 && (t->ent[gfd] & FD_CLOEXEC_BIT);
}

void fdtab_set_cloexec(struct fdtab *t, long gfd, int on)
{
	if (fdtab_get(t, gfd) < 0)
		return;
	t->ent[gfd] = (t->ent[gfd] & ~FD_CLOEXEC_BIT) | (on ? FD_CLOEXEC_BIT : 0);
}
