/* Syscall redirection core: the table merged from the families' const tables, and dispatch (checks, credentials, umask). */
#include <errno.h>
#include <string.h>

#include "../arena.h"
#include "../cred.h"
#include "../die.h"
#include "../fdtab.h"
#include "../fsctx.h"
#include "../trace.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"


void sys_register(long nr, const struct sys_desc *d)
{
	if (nr < 0 || nr >= SYS_NR_MAX)
		return;
	g_vm.sys.table[nr] = d;
}

int sys_redirected(long nr)
{
	return nr >= 0 && nr < SYS_NR_MAX && g_vm.sys.table[nr] != NULL;
}

int lwc_allows(const struct lwc *l, long nr)
{
	return !l->limited || (nr >= 0 && nr < SYS_NR_MAX && (l->allow[nr / 64] & (1UL << (nr % 64))));
}

long sys_dispatch(struct vcpu *v, struct lwc *l, long nr, const long a[6])
{
	return sys_dispatch_in(v, l, l->fds, nr, a);
}

/*
 * One call in the vCPU's call storage c (marked busy by the caller): the descriptor's checks,
 * the lwC's credentials and umask, then its handler or the generic executor.
 */
static long dispatch_call(struct sys_call *c)
{
	struct lwc *l = c->l;

	if (c->d->whole && l != g_vm.lwc.root_lwc) {
		/* limits, timers, scheduling, the process group: one set for every lwC, the root's */
		if (g_vm.cfg.trace)
			trace_msg("%s changes the whole process: the root lwC's alone: EPERM", c->d->name);
		return -EPERM;
	}
	/* the host thread takes the lwC's credentials (a no-op while they are the same) */
	if (!l->cred || cred_apply(&c->v->cred_now, l->cred) < 0)
		return -EPERM; /* never under someone else's ids */
	int um = c->d->umask ? fsctx_umask(l) : -1;
	c->umask_swapped = 0;
	if (um < 0)
		return c->d->fn ? c->d->fn(c) : sys_generic(c);
	/* a file this lwC creates gets its umask, not the process's (for the call: under the lock) */
	c->umask_swapped = 1;
	long old = RAW1(SYS_umask, um), r = c->d->fn ? c->d->fn(c) : sys_generic(c);
	RAW1(SYS_umask, old);
	return r;
}

/*
 * The call's marshalling state (struct sys_call, ~41 KiB: bounce slots and an iovec array) is
 * the vCPU's v->call, arena pages no guest maps, not the host stack's. Nothing nests today: a
 * redirected syscall enters here from the syscall port or the doorbell (hypercall.c), or from
 * lwc_syscall (lwc_host.c), which is an lwC call, itself never a syscall; no handler below
 * calls back into sys_dispatch, the private calls (g_vm.sys.priv) do not use the storage, and
 * the host signal handler (sys/signal.c) only records the signal. Every handler returns here
 * or ends the process (die_signal, exit). Should a nested entry ever happen, it would
 * overwrite the outer call's buffers, so it fails with EDEADLK and a trace line instead.
 */
long sys_dispatch_in(struct vcpu *v, struct lwc *l, struct fdtab *fds, long nr, const long a[6])
{
	struct sys_call *c = v->call;
	long r;

	if (!lwc_allows(l, nr)) {
		if (g_vm.cfg.trace) {
			const char *n = trace_sys_name(nr);
			trace_msg("syscall %ld (%s) outside the lwC's limit: EPERM", nr, n ? n : "unknown");
		}
		return -EPERM;
	}
	if (nr >= VMLWC_SYS_BASE && nr < VMLWC_SYS_BASE + 64) /* the library's own (stats.c, above) */
		return g_vm.sys.priv ? g_vm.sys.priv(v, l, nr, a) : -ENOSYS;
	if (nr < 0 || nr >= SYS_NR_MAX || !g_vm.sys.table[nr]) {
		if (g_vm.cfg.trace) {
			const char *n = trace_sys_name(nr);
			trace_msg("unsupported syscall %ld (%s): ENOSYS", nr, n ? n : "unknown");
		}
		return -ENOSYS;
	}
	if (v->call_busy) {
		if (g_vm.cfg.trace) {
			const char *n = trace_sys_name(nr);
			trace_msg("syscall %ld (%s) entered while vCPU %d's call storage is in use: EDEADLK", nr,
				  n ? n : "unknown", v->index);
		}
		return -EDEADLK;
	}
	v->call_busy = 1;
	c->v = v;
	c->l = l;
	c->fds = fds;
	c->nr = nr;
	memcpy(c->a, a, sizeof(c->a));
	c->d = g_vm.sys.table[nr];
	v->pinning = 1;
	r = dispatch_call(c);
	v->pinning = 0;
	ua_unpin_all(v);
	while (v->nfdpins)
		fdtab_unpin(v->fdpins[--v->nfdpins]);
	v->call_busy = 0;
	return r;
}

int sys_vcpu_init(struct vcpu *v)
{
	v->call = arena_pages(&g_vm.arena, PAGE_ALIGN_UP(sizeof(struct sys_call)) / PAGE_SIZE);
	v->call_busy = 0;
	return v->call ? 0 : -ENOMEM;
}

/*
 * The families, merged into g_vm.sys.table in this order (a number in two of them would be the
 * later one's; none is today). Handlers of other layers register after this (sys_register:
 * arch_prctl, from lwc_init), since sys/ may not name them.
 */
static const struct {
	const struct sys_entry *e;
	const unsigned *n;
} families[] = {
	{ sys_fs_table, &sys_fs_table_len },
	{ sys_net_table, &sys_net_table_len },
	{ sys_poll_table, &sys_poll_table_len },
	{ sys_mm_table, &sys_mm_table_len },
	{ sys_time_table, &sys_time_table_len },
	{ sys_proc_table, &sys_proc_table_len },
	{ sys_signal_table, &sys_signal_table_len },
	{ sys_sigfd_table, &sys_sigfd_table_len },
	{ sys_cred_table, &sys_cred_table_len },
};

void sys_init(void)
{
	for (unsigned f = 0; f < ARRAY_SIZE(families); f++)
		for (unsigned i = 0; i < *families[f].n; i++)
			sys_register(families[f].e[i].nr, &families[f].e[i].d);
}
