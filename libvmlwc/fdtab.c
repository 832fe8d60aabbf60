/* The descriptor shadow: each lwC's own table from guest descriptor numbers to host fds and lwCs. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>

#include "base.h"
#include "arena.h"
#include "fdtab.h"
#include "lwc_host.h"
#include "policy.h"
#include "rawsys.h"
#include "state.h"

#define FD_NONE VMLWC_FD_NONE
_Static_assert(VMLWC_FD_NONE == -1, "a free table is all ones");
#define FD_CLOEXEC_BIT VMLWC_FD_CLOEXEC
#define FDTAB_SLOT_BYTES (2 * sizeof(int32_t) + sizeof(uint64_t)) /* entry, aux word, share group */
#define FDTAB_MAX (1U << 20) /* the kernel's own ceiling for RLIMIT_NOFILE (fs.nr_open) */

/*
 * A table is sized by what it holds and grows on demand up to RLIMIT_NOFILE. The header stays
 * put (callers keep pointers to it); the entries move when it grows. An entry shared with other
 * tables (an LWC_FILES|LWC_SHARE range) is kept as a copy in each of them; links[] names the
 * slot's share group, and every write goes to all members. What a slot holds is held once per
 * group: a host fd has a reference count (one per group that holds it), so copying a table
 * (lwc_create) takes references, not dups. Changes of lwC entries reach the layer above through
 * the hooks it registered (fdtab_set_hooks).
 */
struct fdtab {
	unsigned cap;     /* slots allocated */
	unsigned high;    /* no slot at or above it has ever held anything */
	uint64_t visit;   /* visit mark of the share-group walk */
	int32_t *ent;     /* host fd | FD_CLOEXEC_BIT, VMLWC_FD_LWC | rights | id, or FD_NONE */
	uint32_t *aux;    /* per lwC entry: the layer above's word (its restriction), held by reference */
	uint64_t *links;  /* share group of each slot, 0 when the slot is the table's own */
	size_t pages;     /* of the run holding ent and links */
	void *users;      /* the layer above's list of who uses this table (fdtab_users) */
};

static int is_lwc(int32_t e)
{
	return e != FD_NONE && (e & VMLWC_FD_LWC);
}

void fdtab_set_close_hook(void (*closing)(int hfd))
{
	g_vm.fdt.closing = closing;
}

void fdtab_set_hooks(void (*changed)(struct fdtab *t, unsigned g, int32_t old, int32_t now),
		     void (*lwc_dropped)(unsigned id), void (*aux_ref)(uint32_t aux, int delta))
{
	g_vm.fdt.changed = changed;
	g_vm.fdt.lwc_dropped = lwc_dropped;
	g_vm.fdt.aux_ref = aux_ref;
}

static void aux_ref(uint32_t aux, int delta)
{
	if (aux && g_vm.fdt.aux_ref)
		g_vm.fdt.aux_ref(aux, delta);
}

/* ---- host fds: one reference per share group of slots that holds one ---- */

static int hfd_hold(int h)
{
	struct fdtab_state *s = &g_vm.fdt;

	if (h < 0)
		return -EBADF;
	if ((unsigned)h >= s->nhrefs) {
		unsigned n = s->nhrefs ? s->nhrefs : 1024;
		while (n <= (unsigned)h)
			n *= 2;
		uint32_t *r = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(n * sizeof(uint32_t)) / PAGE_SIZE);
		if (!r)
			return -ENOMEM;
		if (s->hrefs) {
			memcpy(r, s->hrefs, s->nhrefs * sizeof(uint32_t));
			arena_free(&g_vm.arena, s->hrefs, PAGE_ALIGN_UP(s->nhrefs * sizeof(uint32_t)) / PAGE_SIZE);
		}
		s->hrefs = r;
		s->nhrefs = n;
	}
	if (s->hrefs[h]++ == 0)
		s->nheld++;
	return 0;
}

/* The last reference closes it. */
static int hfd_drop(int h)
{
	struct fdtab_state *s = &g_vm.fdt;

	if (h < 0 || (unsigned)h >= s->nhrefs || s->hrefs[h] == 0)
		return -EBADF;
	if (--s->hrefs[h])
		return 0;
	s->nheld--;
	if (s->closing)
		s->closing(h);
	return (int)RAW1(SYS_close, h);
}

int fdtab_pin(int hfd)
{
	struct fdtab_state *s = &g_vm.fdt;

	if (hfd < 0 || (unsigned)hfd >= s->nhrefs || s->hrefs[hfd] == 0)
		return -EBADF;
	s->hrefs[hfd]++;
	return 0;
}

void fdtab_unpin(int hfd)
{
	hfd_drop(hfd);
}

unsigned fdtab_host_fds(void)
{
	return g_vm.fdt.nheld;
}

/* ---- the table ---- */

/* RLIMIT_NOFILE, read again whenever it may have changed (fdtab_limit_changed). */
void fdtab_limit_changed(void)
{
	struct rlimit r;

	if (RAW4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &r) < 0 || r.rlim_cur > FDTAB_MAX)
		g_vm.fdt.limit = FDTAB_MAX;
	else
		g_vm.fdt.limit = (unsigned)r.rlim_cur;
}

/* The highest descriptor number is one less than RLIMIT_NOFILE. */
unsigned fdtab_cap(const struct fdtab *t)
{
	(void)t;
	if (!g_vm.fdt.limit)
		fdtab_limit_changed();
	return g_vm.fdt.limit;
}

static size_t run_pages(unsigned cap)
{
	return PAGE_ALIGN_UP((size_t)cap * FDTAB_SLOT_BYTES) / PAGE_SIZE;
}

/* The slots a run of this many pages holds (entries first, then their 8-aligned groups). */
static unsigned run_cap(size_t pages)
{
	return (unsigned)(pages * PAGE_SIZE / FDTAB_SLOT_BYTES) & ~1u;
}

static int fdtab_resize(struct fdtab *t, unsigned want)
{
	size_t pages = run_pages(want);
	unsigned cap = run_cap(pages);
	char *run;

	if (cap < want)
		cap = run_cap(++pages);
	run = arena_pages(&g_vm.arena, pages);
	if (!run)
		return -ENOMEM;
	uint64_t *links = (uint64_t *)run;
	int32_t *ent = (int32_t *)(run + (size_t)cap * sizeof(uint64_t));
	uint32_t *aux = (uint32_t *)(run + (size_t)cap * (sizeof(uint64_t) + sizeof(int32_t)));
	memset(ent, 0xff, (size_t)cap * sizeof(int32_t));
	if (t->ent) {
		memcpy(ent, t->ent, (size_t)t->cap * sizeof(int32_t));
		memcpy(aux, t->aux, (size_t)t->cap * sizeof(uint32_t));
		memcpy(links, t->links, (size_t)t->cap * sizeof(uint64_t));
		arena_free(&g_vm.arena, t->links, t->pages);
	}
	t->ent = ent;
	t->aux = aux;
	t->links = links;
	t->cap = cap;
	t->pages = pages;
	return 0;
}

/* Room for slot g: grown (doubling) while g stays under RLIMIT_NOFILE. */
static int fdtab_reach(struct fdtab *t, unsigned long g)
{
	unsigned want;

	if (g >= fdtab_cap(t)) {
		fdtab_limit_changed(); /* a native thread may have raised it meanwhile */
		if (g >= fdtab_cap(t))
			return -EMFILE;
	}
	if (g < t->cap)
		return 0;
	for (want = t->cap ? t->cap : 64; want <= g; want *= 2)
		;
	return fdtab_resize(t, want);
}

struct fdtab *fdtab_new(unsigned slots)
{
	struct fdtab *t = arena_obj_alloc(&g_vm.arena, sizeof(*t));

	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	if (fdtab_resize(t, slots ? slots : 64) < 0) {
		arena_obj_free(&g_vm.arena, t, sizeof(*t));
		return NULL;
	}
	return t;
}

void fdtab_free(struct fdtab *t)
{
	arena_free(&g_vm.arena, t->links, t->pages);
	arena_obj_free(&g_vm.arena, t, sizeof(*t));
}

/* A slot's value: its entry and, for an lwC entry, the aux word. */
struct slot {
	int32_t e;
	uint32_t aux;
};

static void slot_store(struct fdtab *t, unsigned g, struct slot s)
{
	int32_t old = t->ent[g], v = s.e;

	t->ent[g] = v;
	t->aux[g] = is_lwc(v) ? s.aux : 0;
	if (v != FD_NONE && g >= t->high)
		t->high = g + 1;
	if (old != v && g_vm.fdt.changed && (is_lwc(old) || is_lwc(v)))
		g_vm.fdt.changed(t, g, old, v);
}

void **fdtab_users(struct fdtab *t)
{
	return &t->users;
}

unsigned fdtab_used(const struct fdtab *t)
{
	return t->high;
}

/* Calls fn on every other live table that shares slot g with t. */
static void for_members(const struct fdtab *t, unsigned g, void (*fn)(struct fdtab *, unsigned, void *),
			void *arg)
{
	uint64_t gid = g < t->cap ? t->links[g] : 0, mark;

	if (!gid)
		return;
	if (++g_vm.fdt.visit_epoch == 0)
		++g_vm.fdt.visit_epoch;
	mark = g_vm.fdt.visit_epoch;
	for (unsigned i = 0; i < VMLWC_MAX_LWCS; i++) {
		struct lwc *l = g_vm.lwc.lwcs[i];
		struct fdtab *o = l ? l->fds : NULL;
		if (!o || o == t || g >= o->cap || o->links[g] != gid || o->visit == mark)
			continue; /* the visit mark: one table used by several lwCs counts once */
		o->visit = mark;
		fn(o, g, arg);
	}
}

static void member_set(struct fdtab *o, unsigned g, void *arg)
{
	slot_store(o, g, *(struct slot *)arg);
}

static void member_count(struct fdtab *o, unsigned g, void *arg)
{
	(void)o;
	(void)g;
	++*(unsigned *)arg;
}

/* Every write of an entry: the slot changes in each table of its share group. */
static void ent_write(struct fdtab *t, unsigned g, int32_t v, uint32_t aux)
{
	struct slot s = { v, aux };

	slot_store(t, g, s);
	for_members(t, g, member_set, &s);
}

int fdtab_linked(const struct fdtab *t, long gfd, const struct fdtab *other)
{
	if (t == other)
		return 1;
	if (gfd < 0 || (unsigned long)gfd >= t->cap || (unsigned long)gfd >= other->cap)
		return 0;
	return t->links[gfd] != 0 && t->links[gfd] == other->links[gfd];
}

int fdtab_share_slot(struct fdtab *from, struct fdtab *to, long gfd)
{
	int r;

	if (gfd < 0 || (r = fdtab_reach(from, (unsigned long)gfd)) < 0 || (r = fdtab_reach(to, (unsigned long)gfd)) < 0)
		return gfd < 0 ? -EBADF : r;
	if (!from->links[gfd]) {
		if (++g_vm.fdt.gid_next == 0)
			++g_vm.fdt.gid_next;
		from->links[gfd] = g_vm.fdt.gid_next;
	}
	to->links[gfd] = from->links[gfd];
	slot_store(to, (unsigned)gfd, (struct slot){ from->ent[gfd], from->aux[gfd] });
	return 0;
}

int fdtab_raw(const struct fdtab *t, long gfd)
{
	if (gfd < 0 || (unsigned long)gfd >= t->cap)
		return FD_NONE;
	return t->ent[gfd];
}

/* Sets slot gfd (the caller holds the references what it names needs). */
static int set_slot(struct fdtab *t, long gfd, int raw, uint32_t aux)
{
	int r;

	if (gfd < 0)
		return -EBADF;
	if ((r = fdtab_reach(t, (unsigned long)gfd)) < 0)
		return r;
	ent_write(t, (unsigned)gfd, raw, aux);
	return 0;
}

/* An lwC entry, replacing another lwC entry of the same lwC (its rights changed). */
int fdtab_set_lwc(struct fdtab *t, long gfd, int raw, uint32_t aux)
{
	uint32_t old = gfd >= 0 && (unsigned long)gfd < t->cap ? t->aux[gfd] : 0;
	int r;

	aux_ref(aux, 1);
	if ((r = set_slot(t, gfd, raw, aux)) < 0) {
		aux_ref(aux, -1);
		return r;
	}
	aux_ref(old, -1);
	return 0;
}

uint32_t fdtab_aux(const struct fdtab *t, long gfd)
{
	return gfd >= 0 && (unsigned long)gfd < t->cap ? t->aux[gfd] : 0;
}

/* Slot gfd of t holds what slot fg of from holds: one more reference to its host fd or restriction. */
int fdtab_copy_entry(struct fdtab *t, long gfd, const struct fdtab *from, long fg)
{
	int raw = fdtab_raw(from, fg), r;
	uint32_t aux = fdtab_aux(from, fg);

	if (raw == FD_NONE || is_lwc(raw)) {
		aux_ref(aux, 1);
		if ((r = set_slot(t, gfd, raw, aux)) < 0)
			aux_ref(aux, -1);
		return r;
	}
	if ((r = hfd_hold(raw & ~FD_CLOEXEC_BIT)) < 0)
		return r;
	if ((r = set_slot(t, gfd, raw, 0)) < 0)
		hfd_drop(raw & ~FD_CLOEXEC_BIT);
	return r;
}

/*
 * A new table holding what t holds, slot for slot (none shared): a block copy and one pass for
 * the references, instead of one hooked write per slot. lwC entries are counted in *nlwc; the
 * caller takes the lwC references and builds what it derives from them.
 */
struct fdtab *fdtab_clone(const struct fdtab *t, unsigned *nlwc)
{
	struct fdtab *n = fdtab_new(t->high);

	*nlwc = 0;
	if (!n)
		return NULL;
	memcpy(n->ent, t->ent, (size_t)t->high * sizeof(int32_t));
	memcpy(n->aux, t->aux, (size_t)t->high * sizeof(uint32_t));
	n->high = t->high;
	for (unsigned g = 0; g < t->high; g++) {
		int32_t e = t->ent[g];
		if (e == FD_NONE)
			continue;
		if (is_lwc(e)) {
			aux_ref(t->aux[g], 1);
			++*nlwc;
			continue;
		}
		if (hfd_hold(e & ~FD_CLOEXEC_BIT) < 0) {
			for (unsigned k = 0; k < g; k++)
				if (n->ent[k] != FD_NONE && !is_lwc(n->ent[k]))
					hfd_drop(n->ent[k] & ~FD_CLOEXEC_BIT);
			fdtab_free(n);
			return NULL;
		}
	}
	return n;
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

/* The lowest free slot at or above from (the table grows for it), or -EMFILE. */
int fdtab_min_free(struct fdtab *t, long from)
{
	unsigned long i, limit = fdtab_cap(t);

	if (from < 0)
		return -EINVAL;
	for (i = (unsigned long)from; i < t->cap && i < limit; i++)
		if (t->ent[i] == FD_NONE)
			return (int)i;
	if (i < (unsigned long)from)
		i = (unsigned long)from;
	return fdtab_reach(t, i) < 0 ? -EMFILE : (int)i;
}

/* A new host fd (the caller's reference passes to the table) at the lowest free slot. */
int fdtab_install(struct fdtab *t, int hfd, int cloexec)
{
	int g = policy_fd_allowed(hfd), r;

	if (g < 0)
		return g;
	g = fdtab_min_free(t, 0);
	if (g < 0)
		return g;
	if ((r = hfd_hold(hfd)) < 0)
		return r;
	ent_write(t, (unsigned)g, hfd | (cloexec ? FD_CLOEXEC_BIT : 0), 0);
	return g;
}

/* An lwC entry at the lowest free slot; aux (its restriction, or 0) gains a reference. */
int fdtab_install_lwc(struct fdtab *t, unsigned id, int rights, uint32_t aux)
{
	int g = fdtab_min_free(t, 0);

	if (g < 0)
		return g;
	aux_ref(aux, 1);
	ent_write(t, (unsigned)g, (int32_t)(VMLWC_FD_LWC | (rights & VMLWC_FD_RIGHTS) | (int)(id & VMLWC_FD_ID_MASK)),
		  aux);
	return g;
}

/* Drop whatever the entry holds: a reference to a host fd, or to an lwC and its restriction. */
static int drop(int32_t e, uint32_t aux)
{
	if (e == FD_NONE)
		return 0;
	if (is_lwc(e)) {
		aux_ref(aux, -1);
		if (g_vm.fdt.lwc_dropped)
			g_vm.fdt.lwc_dropped(e & VMLWC_FD_ID_MASK);
		return 0;
	}
	return hfd_drop(e & ~FD_CLOEXEC_BIT);
}

/* A new host fd at slot gfd (what it held is dropped): -EBADF above RLIMIT_NOFILE, as dup2. */
int fdtab_install_at(struct fdtab *t, long gfd, int hfd)
{
	int32_t old;
	int r = policy_fd_allowed(hfd);

	if (r < 0)
		return r;
	if (gfd < 0 || fdtab_reach(t, (unsigned long)gfd) < 0)
		return -EBADF;
	if ((r = hfd_hold(hfd)) < 0)
		return r;
	old = t->ent[gfd];
	uint32_t oaux = t->aux[gfd];
	ent_write(t, (unsigned)gfd, hfd, 0);
	drop(old, oaux);
	return (int)gfd;
}

int fdtab_close(struct fdtab *t, long gfd)
{
	int32_t e = fdtab_raw(t, gfd);

	if (e == FD_NONE)
		return -EBADF;
	uint32_t aux = t->aux[gfd];
	ent_write(t, (unsigned)gfd, FD_NONE, 0);
	return drop(e, aux);
}

int fdtab_guest_of(const struct fdtab *t, int hfd)
{
	for (unsigned i = 0; i < t->high; i++)
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
	ent_write(t, (unsigned)gfd, (t->ent[gfd] & ~FD_CLOEXEC_BIT) | (on ? FD_CLOEXEC_BIT : 0), 0);
}

void fdtab_leave(struct fdtab *t, long gfd)
{
	unsigned others = 0;

	if (gfd < 0 || (unsigned long)gfd >= t->cap)
		return;
	for_members(t, (unsigned)gfd, member_count, &others);
	t->links[gfd] = 0;
	if (others)
		slot_store(t, (unsigned)gfd, (struct slot){ FD_NONE, 0 }); /* the group keeps what the slot holds */
	else if (t->ent[gfd] != FD_NONE)
		fdtab_close(t, gfd);
}

void fdtab_close_all(struct fdtab *t)
{
	for (unsigned i = 0; i < t->high; i++)
		fdtab_leave(t, i);
}
