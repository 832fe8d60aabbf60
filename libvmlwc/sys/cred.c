/* Redirected syscalls: the credential ids and groups, answered from and applied to the calling lwC's shadow. */
#include <errno.h>

#include "../cred.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

#define KEEP ((uint32_t)-1)

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
	return v == KEEP || g_vm.cred.host_privileged || among(v, ids);
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

static long cred_syscall(struct sys_call *sc)
{
	struct cred *c = sc->l->cred, n;
	const struct cred *host0 = &g_vm.cred.at_init;
	uint32_t a0 = (uint32_t)sc->a[0], a1 = (uint32_t)sc->a[1], a2 = (uint32_t)sc->a[2];
	long r = 0;

	if (!c)
		return -EPERM; /* every lwC has a shadow (vmlwc_init, lwc_create, the host-only set-up) */
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
		if (!priv(c) || !g_vm.cred.host_privileged)
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

/* Every credential syscall goes to cred_syscall; trace_sys_name falls back to the syscall names. */
const struct sys_entry sys_cred_table[] = {
	SYS(__NR_getuid, .fn = cred_syscall),
	SYS(__NR_geteuid, .fn = cred_syscall),
	SYS(__NR_getgid, .fn = cred_syscall),
	SYS(__NR_getegid, .fn = cred_syscall),
	SYS(__NR_getresuid, .fn = cred_syscall),
	SYS(__NR_getresgid, .fn = cred_syscall),
	SYS(__NR_getgroups, .fn = cred_syscall),
	SYS(__NR_setuid, .fn = cred_syscall),
	SYS(__NR_setgid, .fn = cred_syscall),
	SYS(__NR_setreuid, .fn = cred_syscall),
	SYS(__NR_setregid, .fn = cred_syscall),
	SYS(__NR_setresuid, .fn = cred_syscall),
	SYS(__NR_setresgid, .fn = cred_syscall),
	SYS(__NR_setgroups, .fn = cred_syscall),
};
const unsigned sys_cred_table_len = ARRAY_SIZE(sys_cred_table);
