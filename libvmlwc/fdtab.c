/* The descriptor shadow: each lwC's own table from guest descriptor numbers to host fds and lwCs. */
#include <errno.h>
#include <stddef.h>

#include "internal.h"
#include "rawsys.h"

#define FD_NONE VMLWC_FD_NONE
#define FD_CLOEXEC_BIT VMLWC_FD_CLOEXEC

/* Laid out as struct vmlwc_fdtab: the stub reads lwC entries on the switch fast path. */
struct fdtab {
	uint32_t cap;
	int32_t ent[];  /* host fd | FD_CLOEXEC_BIT, VMLWC_FD_LWC | rights | id, or FD_NONE */
};
_Static_assert(offsetof(struct fdtab, ent) == offsetof(struct vmlwc_fdtab, ent), "stub layout");

static int is_lwc(int32_t e)
{
	return e != FD_NONE && (e & VMLWC_FD_LWC);
}

size_t fdtab_bytes(unsigned cap)
{
	return PAGE_ALIGN_UP(sizeof(struct fdtab) + (size_t)cap * sizeof(int32_t));
}

struct fdtab *fdtab_new(unsigned cap)
{
	struct fdtab *t = arena_pages(&g_vm.arena, fdtab_bytes(cap) / PAGE_SIZE);

	if (!t)
		return NULL;
	t->cap = cap;
	for (unsigned i = 0; i < cap; i++)
		t->ent[i] = FD_NONE;
	return t;
}

void fdtab_free(struct fdtab *t)
{
	arena_free(&g_vm.arena, t, fdtab_bytes(t->cap) / PAGE_SIZE);
}

unsigned fdtab_cap(const struct fdtab *t)
{
	return t->cap;
}

int fdtab_raw(const struct fdtab *t, long gfd)
{
	if (gfd < 0 || (unsigned long)gfd >= t->cap)
		return FD_NONE;
	return t->ent[gfd];
}

void fdtab_set_raw(struct fdtab *t, long gfd, int raw)
{
	if (gfd >= 0 && (unsigned long)gfd < t->cap)
		t->ent[gfd] = raw;
}

int fdtab_get(const struct fdtab *t, long gfd)
{
	int32_t e = fdtab_raw(t, gfd);

	if (e == FD_NONE || is_lwc(e))
		return -EBADF; /* an lwC descriptor is not a file */
	return e & ~FD_CLOEXEC_BIT;
}

int fdtab_lwc(const struct fdtab *t, long gfd, int *rights)
{
	int32_t e = fdtab_raw(t, gfd);

	if (!is_lwc(e))
		return -EBADF;
	if (rights)
		*rights = e & VMLWC_FD_RIGHTS;
	return e & VMLWC_FD_ID_MASK;
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
	int g = policy_fd_allowed(hfd);

	if (g < 0)
		return g;
	g = fdtab_min_free(t, 0);
	if (g < 0)
		return g;
	t->ent[g] = hfd | (cloexec ? FD_CLOEXEC_BIT : 0);
	return g;
}

int fdtab_install_lwc(struct fdtab *t, unsigned id, int rights)
{
	int g = fdtab_min_free(t, 0);

	if (g < 0)
		return g;
	t->ent[g] = (int32_t)(VMLWC_FD_LWC | (rights & VMLWC_FD_RIGHTS) | (int)(id & VMLWC_FD_ID_MASK));
	return g;
}

/* Drop whatever the entry holds: close a host fd, or release an lwC reference. */
static int drop(struct fdtab *t, int32_t e)
{
	if (e == FD_NONE)
		return 0;
	if (is_lwc(e))
		return lwc_entry_dropped(t, e & VMLWC_FD_ID_MASK);
	return (int)RAW1(SYS_close, e & ~FD_CLOEXEC_BIT);
}

int fdtab_install_at(struct fdtab *t, long gfd, int hfd)
{
	int32_t old;
	int r = policy_fd_allowed(hfd);

	if (r < 0)
		return r;
	if (gfd < 0 || (unsigned long)gfd >= t->cap)
		return -EBADF;
	old = t->ent[gfd];
	t->ent[gfd] = hfd;
	drop(t, old);
	return (int)gfd;
}

int fdtab_close(struct fdtab *t, long gfd)
{
	int32_t e = fdtab_raw(t, gfd);

	if (e == FD_NONE)
		return -EBADF;
	t->ent[gfd] = FD_NONE;
	return drop(t, e);
}

int fdtab_guest_of(const struct fdtab *t, int hfd)
{
	for (unsigned i = 0; i < t->cap; i++)
		if (t->ent[i] != FD_NONE && !is_lwc(t->ent[i]) && (t->ent[i] & ~FD_CLOEXEC_BIT) == hfd)
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

void fdtab_close_all(struct fdtab *t)
{
	for (unsigned i = 0; i < t->cap; i++)
		if (t->ent[i] != FD_NONE)
			fdtab_close(t, i);
}
