/* Signal dispositions per lwC: shared between an lwC and its copies until one of them changes one. */
/*
 * Only the root lwC's dispositions reach the host (they are the process's: native threads run
 * its handlers, and the host acts on them). Any other lwC records its own, here: a handler it
 * sets never runs outside the guest, and never for the root's signals.
 */
#include <signal.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "lwc_host.h"
#include "sigtab.h"
#include "state.h"

struct sigtab {
	uint32_t refs;
	uint32_t pad;
	struct ksigaction act[SIGTAB_N];
};
_Static_assert(sizeof(struct sigtab) <= PAGE_SIZE, "one arena page");

static struct sigtab *sigtab_new(const struct ksigaction *from)
{
	struct sigtab *t = arena_pages(&g_vm.arena, 1);

	if (!t)
		return NULL;
	t->refs = 1;
	memcpy(t->act, from, sizeof(t->act));
	return t;
}

void sigtab_put(struct sigtab *t)
{
	if (t && --t->refs == 0)
		arena_free(&g_vm.arena, t, 1);
}

struct sigtab *sigtab_for_child(const struct lwc *creator)
{
	struct sigtab *t = creator->sigtab;

	if (!t) {
		/* the root's as they are now, shared by the copies it makes until it changes one */
		if (!g_vm.sig.root_snap && !(g_vm.sig.root_snap = sigtab_new(g_vm.sig.guest_act)))
			return NULL;
		t = g_vm.sig.root_snap;
	}
	t->refs++;
	return t;
}

const struct ksigaction *sigtab_act(const struct lwc *l, int sig)
{
	return l->sigtab ? &l->sigtab->act[sig] : &g_vm.sig.guest_act[sig];
}

int sigtab_interrupts(const struct lwc *l, uint64_t want)
{
	while (want) {
		int sig = __builtin_ctzl(want) + 1;
		const struct ksigaction *a = sigtab_act(l, sig);
		want &= want - 1;
		if (a->handler > 1)
			return 1;
		if (a->handler == 0 && sig != SIGCHLD && sig != SIGURG && sig != SIGWINCH && sig != SIGCONT)
			return 1; /* the default kills: delivery ends the process */
	}
	return 0;
}

int sigtab_set(struct lwc *l, int sig, const struct ksigaction *a)
{
	struct sigtab *t = l->sigtab;

	if (!t) {
		g_vm.sig.guest_act[sig] = *a;
		sigtab_put(g_vm.sig.root_snap); /* copies made from now on see the change */
		g_vm.sig.root_snap = NULL;
		return 0;
	}
	if (t->refs > 1) {
		struct sigtab *n = sigtab_new(t->act);
		if (!n)
			return -1;
		t->refs--;
		l->sigtab = t = n;
	}
	t->act[sig] = *a;
	return 0;
}
