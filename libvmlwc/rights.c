/* Rights of lwC descriptors: what specs grant or keep, overlay ranges, the lwc_syscall rights. */
/*
 * A descriptor for an lwC carries rights (bits of its table entry): switch, overlay, and
 * syscall separately for LWC_MEM, LWC_FILES and LWC_CRED. The overlay right may be limited to
 * ranges: then the entry's aux word names a reference-counted set of memory and descriptor
 * ranges (one arena page). Descriptors from lwc_create and lwc_self carry every right; the one
 * a child gets for its creator carries the switch right and what the creator's specs grant;
 * lwc_restrict keeps only what its specs name, and copies made later inherit the result.
 */
#include <errno.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "lwc_host.h"
#include "rights.h"
#include "state.h"

#define R_SWITCH VMLWC_FD_RIGHT_SWITCH
#define R_OVERLAY VMLWC_FD_RIGHT_OVERLAY
#define R_ALL VMLWC_FD_RIGHTS
#define MAX_RANGES 64

struct ranges {
	uint32_t refs;
	uint16_t nmem, nfds;
	int whole_table;            /* every descriptor may be overlaid */
	struct { uint64_t start, end; } mem[MAX_RANGES];
	struct { int32_t from, to; } fds[MAX_RANGES];
};
_Static_assert(sizeof(struct ranges) <= PAGE_SIZE, "one page");

static struct ranges *ranges_of(uint32_t aux)
{
	return aux ? (struct ranges *)(g_vm.arena.base + (uintptr_t)(aux - 1) * PAGE_SIZE) : NULL;
}

static uint32_t aux_of(const struct ranges *r)
{
	return (uint32_t)(((uintptr_t)r - g_vm.arena.base) / PAGE_SIZE + 1);
}

/* fdtab hook: a table entry took or dropped a reference to a range set. */
void rights_aux_ref(uint32_t aux, int delta)
{
	struct ranges *r = ranges_of(aux);

	if (!r)
		return;
	r->refs += (uint32_t)delta;
	if (r->refs == 0)
		arena_free(&g_vm.arena, r, 1);
}

void rights_aux_unused(uint32_t aux)
{
	struct ranges *r = ranges_of(aux);

	if (r && r->refs == 0)
		arena_free(&g_vm.arena, r, 1);
}

unsigned rights_syscall(unsigned mask)
{
	return ((mask & LWC_MEM) ? VMLWC_FD_RIGHT_SYS_MEM : 0) | ((mask & LWC_FILES) ? VMLWC_FD_RIGHT_SYS_FILES : 0) |
	       ((mask & LWC_CRED) ? VMLWC_FD_RIGHT_SYS_CRED : 0);
}

/* What specs grant: the MAY flags; overlay ranges into *out (allocated when any). */
static int granted(const struct spec_set *ss, int *rights, struct ranges **out)
{
	struct ranges *r = NULL;
	int g = 0;

	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *s = &ss->s[i];
		if (s->flags & LWC_MAY_SWITCH)
			g |= R_SWITCH;
		if (s->flags & LWC_MAY_SYSCALL)
			g |= (int)rights_syscall(s->flags & (LWC_MEM | LWC_FILES | LWC_CRED));
		if (!(s->flags & LWC_MAY_OVERLAY))
			continue;
		if (!r && !(r = arena_pages(&g_vm.arena, 1)))
			return -ENOMEM;
		g |= R_OVERLAY;
		if (s->flags & LWC_MEM) {
			if (r->nmem == MAX_RANGES)
				goto full;
			r->mem[r->nmem].start = s->u.mem.start;
			r->mem[r->nmem++].end = s->u.mem.end;
		} else if (s->flags & LWC_FILES) {
			if (s->u.fds.from == -1 && s->u.fds.to == -1) {
				r->whole_table = 1;
				continue;
			}
			if (r->nfds == MAX_RANGES)
				goto full;
			r->fds[r->nfds].from = s->u.fds.from;
			r->fds[r->nfds++].to = s->u.fds.to;
		}
	}
	*rights = g;
	*out = r;
	return 0;
full:
	arena_free(&g_vm.arena, r, 1);
	return -EINVAL;
}

/* The rights of the descriptor a new child gets for its creator: switch, and what the specs grant. */
int rights_for_creator(const struct spec_set *ss, int *rights, uint32_t *aux)
{
	struct ranges *r;
	int g, e = granted(ss, &g, &r);

	if (e < 0)
		return e;
	*rights = R_SWITCH | g;
	*aux = r ? aux_of(r) : 0;
	if (r)
		r->refs = 0; /* the table entry takes the reference */
	return 0;
}

/* Whether [s, e) lies within the union of r's memory ranges. */
static int mem_covered(const struct ranges *r, uint64_t s, uint64_t e)
{
	while (s < e) {
		uint64_t next = s;
		for (unsigned i = 0; i < r->nmem; i++)
			if (r->mem[i].start <= s && r->mem[i].end > next)
				next = r->mem[i].end;
		if (next == s)
			return 0;
		s = next;
	}
	return 1;
}

static int fds_covered(const struct ranges *r, long from, long to)
{
	if (r->whole_table)
		return 1;
	if (from == -1 && to == -1)
		return 0;
	while (from <= to) {
		long next = from;
		for (unsigned i = 0; i < r->nfds; i++)
			if (r->fds[i].from <= from && r->fds[i].to >= next)
				next = (long)r->fds[i].to + 1;
		if (next == from)
			return 0;
		from = next;
	}
	return 1;
}

/* lwc_restrict: what both the old rights and the specs allow; ranges intersect. */
int rights_restrict(int old, uint32_t old_aux, const struct spec_set *ss, int *rights, uint32_t *aux)
{
	struct ranges *r, *o = ranges_of(old_aux);
	int g, e = granted(ss, &g, &r);

	if (e < 0)
		return e;
	g &= old;
	if (r && (g & R_OVERLAY) && o) {
		/* keep only what the old ranges allowed too */
		struct ranges n;
		memset(&n, 0, sizeof(n));
		for (unsigned i = 0; i < r->nmem; i++)
			for (unsigned k = 0; k < o->nmem; k++) {
				uint64_t s = r->mem[i].start > o->mem[k].start ? r->mem[i].start : o->mem[k].start;
				uint64_t t = r->mem[i].end < o->mem[k].end ? r->mem[i].end : o->mem[k].end;
				if (s < t && n.nmem < MAX_RANGES) {
					n.mem[n.nmem].start = s;
					n.mem[n.nmem++].end = t;
				}
			}
		for (unsigned i = 0; i < r->nfds; i++)
			for (unsigned k = 0; k < o->nfds + (o->whole_table ? 1u : 0u); k++) {
				int32_t of = k < o->nfds ? o->fds[k].from : 0, ot = k < o->nfds ? o->fds[k].to : INT32_MAX;
				int32_t s = r->fds[i].from > of ? r->fds[i].from : of;
				int32_t t = r->fds[i].to < ot ? r->fds[i].to : ot;
				if (s <= t && n.nfds < MAX_RANGES) {
					n.fds[n.nfds].from = s;
					n.fds[n.nfds++].to = t;
				}
			}
		n.whole_table = r->whole_table && o->whole_table;
		if (r->whole_table && !o->whole_table)
			for (unsigned k = 0; k < o->nfds && n.nfds < MAX_RANGES; k++)
				n.fds[n.nfds++] = o->fds[k];
		memcpy(r, &n, sizeof(n));
	}
	if (r && (!(g & R_OVERLAY) || (!r->nmem && !r->nfds && !r->whole_table))) {
		arena_free(&g_vm.arena, r, 1);
		r = NULL;
		g &= ~R_OVERLAY;
	}
	*rights = g;
	*aux = r ? aux_of(r) : 0;
	if (r)
		r->refs = 0; /* the table entry takes the reference */
	return 0;
}

/* lwc_overlay through a descriptor with these rights: 0, or -EPERM naming nothing it may not. */
int rights_may_overlay(int rights, uint32_t aux, const struct spec_set *ss)
{
	const struct ranges *r = ranges_of(aux);

	if (!(rights & R_OVERLAY))
		return -EPERM;
	if (!r)
		return 0; /* every range */
	for (int i = 0; i < ss->n; i++) {
		const struct lwc_rspec *s = &ss->s[i];
		if ((s->flags & LWC_MEM) && !mem_covered(r, s->u.mem.start, s->u.mem.end))
			return -EPERM;
		if ((s->flags & LWC_FILES) && !fds_covered(r, s->u.fds.from, s->u.fds.to))
			return -EPERM;
	}
	return 0;
}
