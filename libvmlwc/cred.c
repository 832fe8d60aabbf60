/* The credential shadow: each lwC's uids, gids and groups; syscalls run under them on the host. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "rawsys.h"
#include "sys/sys.h"

#define KEEP ((uint32_t)-1)

#define host_now g_vm.cred_now /* what the host thread runs under (one vCPU thread) */

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
	host_now = *c;
	g_vm.host_privileged = c->uid[1] == 0;
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
long cred_apply(const struct cred *c)
{
	long r;

	if (same(c, &host_now))
		return 0;
	if (g_vm.host_privileged) {
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
	host_now = *c;
	return 0;
}

static int priv(const struct cred *c)
{
	return c->uid[1] == 0;
}

/* Without privilege an id may only become one the lwC already has. */
static int among(uint32_t v, const uint32_t ids[3])
{
	return v == KEEP || v == ids[0] || v == ids[1] || v == ids[2];
}

/* The host must be able to take it too: an unprivileged process can only shuffle its own ids. */
static int host_can(uint32_t v, const uint32_t ids[3])
{
	return v == KEEP || g_vm.host_privileged || among(v, ids);
}

static long set_res(uint32_t ids[3], const struct cred *c, uint32_t r, uint32_t e, uint32_t s,
		    const uint32_t host_ids[3])
{
	if (!priv(c) && !(among(r, ids) && among(e, ids) && among(s, ids)))
		return -EPERM;
	if (!host_can(r, host_ids) || !host_can(e, host_ids) || !host_can(s, host_ids))
		return -EPERM;
	if (r != KEEP)
		ids[0] = r;
	if (e != KEEP)
		ids[1] = e;
	if (s != KEEP)
		ids[2] = s;
	return 0;
}

long cred_syscall(struct sys_call *sc)
{
	struct cred *c = sc->l->cred, n;
	const struct cred *host0 = &g_vm.cred0;
	uint32_t a0 = (uint32_t)sc->a[0], a1 = (uint32_t)sc->a[1], a2 = (uint32_t)sc->a[2];
	long r = 0;

	if (!c)
		return sys_raw(sc->nr, sc->a); /* host-only use: no shadow */
	n = *c;
	switch (sc->nr) {
	case __NR_getuid: return c->uid[0];
	case __NR_geteuid: return c->uid[1];
	case __NR_getgid: return c->gid[0];
	case __NR_getegid: return c->gid[1];
	case __NR_getresuid:
	case __NR_getresgid: {
		const uint32_t *ids = sc->nr == __NR_getresuid ? c->uid : c->gid;
		for (int i = 0; i < 3; i++)
			if (ua_copy_out(sc->l, (gva_t)sc->a[i], &ids[i], sizeof(ids[i])) < 0)
				return -EFAULT;
		return 0;
	}
	case __NR_getgroups:
		if ((int)a0 < 0)
			return -EINVAL;
		if (a0 == 0)
			return c->ngroups;
		if ((int)a0 < c->ngroups)
			return -EINVAL;
		return ua_copy_out(sc->l, (gva_t)sc->a[1], c->groups, (size_t)c->ngroups * sizeof(gid_t)) < 0
			       ? -EFAULT : c->ngroups;
	case __NR_setuid:
	case __NR_setgid: {
		/* POSIX: privileged sets all three, otherwise only the effective id, to ruid or suid */
		uint32_t *ids = sc->nr == __NR_setuid ? n.uid : n.gid;
		const uint32_t *cur = sc->nr == __NR_setuid ? c->uid : c->gid;
		const uint32_t *h0 = sc->nr == __NR_setuid ? host0->uid : host0->gid;
		if (priv(c))
			r = set_res(ids, c, a0, a0, a0, h0);
		else if (a0 == cur[0] || a0 == cur[2])
			r = set_res(ids, c, KEEP, a0, KEEP, h0);
		else
			r = -EPERM;
		break;
	}
	case __NR_setreuid:
	case __NR_setregid: {
		uint32_t *ids = sc->nr == __NR_setreuid ? n.uid : n.gid;
		const uint32_t *cur = sc->nr == __NR_setreuid ? c->uid : c->gid;
		if (!priv(c) && ((a0 != KEEP && a0 != cur[0] && a0 != cur[1]) || !among(a1, cur)))
			return -EPERM;
		uint32_t s = (a0 != KEEP || (a1 != KEEP && a1 != cur[0])) ? (a1 != KEEP ? a1 : cur[1]) : KEEP;
		r = set_res(ids, c, a0, a1, s, sc->nr == __NR_setreuid ? host0->uid : host0->gid);
		break;
	}
	case __NR_setresuid:
		r = set_res(n.uid, c, a0, a1, a2, host0->uid);
		break;
	case __NR_setresgid:
		r = set_res(n.gid, c, a0, a1, a2, host0->gid);
		break;
	case __NR_setgroups: {
		long cnt = sc->a[0];
		if (!priv(c) || !g_vm.host_privileged)
			return -EPERM;
		if (cnt < 0 || cnt > CRED_MAX_GROUPS)
			return -EINVAL;
		if (cnt && ua_copy_in(sc->l, n.groups, (gva_t)sc->a[1], (size_t)cnt * sizeof(gid_t)) < 0)
			return -EFAULT;
		n.ngroups = (int)cnt;
		break;
	}
	default:
		return -ENOSYS;
	}
	if (r == 0)
		*c = n;
	return r;
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

void sys_cred_register(void)
{
	static const long nrs[] = { __NR_getuid, __NR_geteuid, __NR_getgid, __NR_getegid,
				    __NR_getresuid, __NR_getresgid, __NR_getgroups, __NR_setuid,
				    __NR_setgid, __NR_setreuid, __NR_setregid, __NR_setresuid,
				    __NR_setresgid, __NR_setgroups };
	for (unsigned i = 0; i < ARRAY_SIZE(nrs); i++)
		sys_register(nrs[i], &DESC(.name = NULL, .fn = cred_syscall));
}
