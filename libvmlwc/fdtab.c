/* The descriptor shadow: each lwC's own table from guest descriptor numbers to host fds and lwCs. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "rawsys.h"

#define FD_NONE VMLWC_FD_NONE
_Static_assert(VMLWC_FD_NONE == -1, "a free table is all ones");
#define FD_CLOEXEC_BIT VMLWC_FD_CLOEXEC

/*
 * An entry shared with other tables (an LWC_FILES|LWC_SHARE range) is kept as a copy in each
 * of them; link[] (after ent[cap]) names the slot's share group, and every write goes to all
 * members. What a slot holds (a host fd, an lwC reference) is held once per group. Changes of
 * lwC entries reach the layer above through the hook it registered (fdtab_set_hooks).
 */
struct fdtab {
	uint32_t cap;
	int32_t ent[];  /* host fd | FD_CLOEXEC_BIT, VMLWC_FD_LWC | rights | id, or FD_NONE */
};

static int is_lwc(int32_t e)
{
	return e != FD_NONE && (e & VMLWC_FD_LWC);
}

/* After ent[cap], 8-aligned: the share group of each slot, then a visit mark and a high-water mark. */
static size_t links_off(unsigned cap)
{
	return (offsetof(struct fdtab, ent) + (size_t)cap * sizeof(int32_t) + 7) & ~(size_t)7;
}

size_t fdtab_bytes(unsigned cap)
{
	return PAGE_ALIGN_UP(links_off(cap) + ((size_t)cap + 2) * sizeof(uint64_t));
}

/* The share group of each slot, 0 when the slot is the table's own: 64-bit, never reused. */
static uint64_t *links(const struct fdtab *t)
{
	return (uint64_t *)((char *)t + links_off(t->cap));
}

static uint64_t *visit_mark(const struct fdtab *t)
{
	return &links(t)[t->cap];
}

/* No slot at or above it has ever held anything: it bounds the scans. */
static uint64_t *high(const struct fdtab *t)
{
	return &links(t)[t->cap + 1];
}

void fdtab_set_hooks(void (*changed)(struct fdtab *t, unsigned g, int32_t old, int32_t now),
		     void (*lwc_dropped)(unsigned id))
{
	g_vm.fd_changed = changed;
	g_vm.fd_lwc_dropped = lwc_dropped;
}

static void slot_store(struct fdtab *t, unsigned g, int32_t v)
{
	int32_t old = t->ent[g];

	t->ent[g] = v;
	if (v != FD_NONE && g >= *high(t))
		*high(t) = g + 1;
	if (old != v && g_vm.fd_changed && (is_lwc(old) || is_lwc(v)))
		g_vm.fd_changed(t, g, old, v);
}

unsigned fdtab_used(const struct fdtab *t)
{
	return (unsigned)*high(t);
}

/* Calls fn on every other live table that shares slot g with t. */
static void for_members(const struct fdtab *t, unsigned g, void (*fn)(struct fdtab *, unsigned, void *),
			void *arg)
{
	uint64_t gid = links(t)[g], mark;

	if (!gid)
		return;
	if (++g_vm.fd_visit_epoch == 0)
		++g_vm.fd_visit_epoch;
	mark = g_vm.fd_visit_epoch;
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
		struct lwc *l = g_vm.lwcs[i];
		struct fdtab *o = l ? l->fds : NULL;
		if (!o || o == t || g >= o->cap || links(o)[g] != gid || *visit_mark(o) == mark)
			continue; /* the visit mark: one table used by several lwCs counts once */
		*visit_mark(o) = mark;
		fn(o, g, arg);
	}
}

static void member_set(struct fdtab *o, unsigned g, void *arg)
{
	slot_store(o, g, *(int32_t *)arg);
}

static void member_count(struct fdtab *o, unsigned g, void *arg)
{
	(void)o;
	(void)g;
	++*(unsigned *)arg;
}

/* Every write of an entry: the slot changes in each table of its share group. */
static void ent_write(struct fdtab *t, unsigned g, int32_t v)
{
	slot_store(t, g, v);
	for_members(t, g, member_set, &v);
}

int fdtab_linked(const struct fdtab *t, long gfd, const struct fdtab *other)
{
	if (t == other)
		return 1;
	if (gfd < 0 || (unsigned long)gfd >= t->cap || (unsigned long)gfd >= other->cap)
		return 0;
	return links(t)[gfd] != 0 && links(t)[gfd] == links(other)[gfd];
}

int fdtab_share_slot(struct fdtab *from, struct fdtab *to, long gfd)
{
	if (gfd < 0 || (unsigned long)gfd >= from->cap || (unsigned long)gfd >= to->cap)
		return -EBADF;
	if (!links(from)[gfd]) {
		if (++g_vm.fd_gid_next == 0)
			++g_vm.fd_gid_next;
		links(from)[gfd] = g_vm.fd_gid_next;
	}
	links(to)[gfd] = links(from)[gfd];
	slot_store(to, (unsigned)gfd, from->ent[gfd]);
	return 0;
}

struct fdtab *fdtab_new(unsigned cap)
{
	struct fdtab *t = arena_pages(&g_vm.arena, fdtab_bytes(cap) / PAGE_SIZE);

	if (!t)
		return NULL;
	/* arena pages come zeroed: no share groups, no marks; every entry free */
	t->cap = cap;
	memset(t->ent, 0xff, (size_t)cap * sizeof(t->ent[0]));
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
		ent_write(t, (unsigned)gfd, raw);
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
	ent_write(t, (unsigned)g, hfd | (cloexec ? FD_CLOEXEC_BIT : 0));
	return g;
}

int fdtab_install_lwc(struct fdtab *t, unsigned id, int rights)
{
	int g = fdtab_min_free(t, 0);

	if (g < 0)
		return g;
	ent_write(t, (unsigned)g, (int32_t)(VMLWC_FD_LWC | (rights & VMLWC_FD_RIGHTS) | (int)(id & VMLWC_FD_ID_MASK)));
	return g;
}

/* Drop whatever the entry holds: close a host fd, or release an lwC reference. */
static int drop(struct fdtab *t, unsigned g, int32_t e)
{
	if (e == FD_NONE)
		return 0;
	(void)t;
	(void)g;
	if (is_lwc(e)) {
		if (g_vm.fd_lwc_dropped)
			g_vm.fd_lwc_dropped(e & VMLWC_FD_ID_MASK);
		return 0;
	}
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
	ent_write(t, (unsigned)gfd, hfd);
	drop(t, (unsigned)gfd, old);
	return (int)gfd;
}

int fdtab_close(struct fdtab *t, long gfd)
{
	int32_t e = fdtab_raw(t, gfd);

	if (e == FD_NONE)
		return -EBADF;
	ent_write(t, (unsigned)gfd, FD_NONE);
	return drop(t, (unsigned)gfd, e);
}

int fdtab_guest_of(const struct fdtab *t, int hfd)
{
	for (unsigned i = 0; i < *high(t); i++)
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
	ent_write(t, (unsigned)gfd, (t->ent[gfd] & ~FD_CLOEXEC_BIT) | (on ? FD_CLOEXEC_BIT : 0));
}

void fdtab_leave(struct fdtab *t, long gfd)
{
	unsigned others = 0;

	if (gfd < 0 || (unsigned long)gfd >= t->cap)
		return;
	for_members(t, (unsigned)gfd, member_count, &others);
	links(t)[gfd] = 0;
	if (others) {
		slot_store(t, (unsigned)gfd, FD_NONE); /* the group keeps what the slot holds */
	} else if (t->ent[gfd] != FD_NONE)
		fdtab_close(t, gfd);
}

void fdtab_close_all(struct fdtab *t)
{
	for (unsigned i = 0; i < *high(t); i++)
		fdtab_leave(t, i);
}
