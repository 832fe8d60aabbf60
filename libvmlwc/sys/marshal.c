/* The helpers syscall families call: descriptors, bounce space, iovecs, paths, and the generic marshalling executor. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>

#include "../fdtab.h"
#include "../fsctx.h"
#include "../policy.h"
#include "../trace.h"
#include "../uaccess.h"
#include "../vmlock.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

long sys_raw(long nr, const long h[6])
{
	return raw_syscall6(nr, h[0], h[1], h[2], h[3], h[4], h[5]);
}

/*
 * The guest's syscall itself, which may block (a read on an empty pipe, a futex wait, accept),
 * without vm_lock: other vCPUs' exits go on meanwhile. What it reaches of guest memory stays
 * valid: pool frames are pinned (uaccess), the lwC stays (this vCPU is in it: a zombie at
 * worst), the call storage and bounce area are this vCPU's. A call whose pins overflowed, or a
 * non-root lwC's call that creates files (the umask swapped around it is the process's), keeps
 * the lock. Nothing of the host's state read before may be trusted after: callers re-translate.
 */
long sys_block6(struct sys_call *c, long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	struct vcpu *v = c->v;
	long r;

	if (v->pin_overflow || vm_holder() != v || c->umask_swapped)
		return raw_syscall6(nr, a0, a1, a2, a3, a4, a5);
	vm_unlock(v);
	r = raw_syscall6(nr, a0, a1, a2, a3, a4, a5);
	vm_lock(v);
	return r;
}

/* The host fd, held until the call ends (vcpu.h: fdpins): the call may run without the lock. */
int sys_fd(struct sys_call *c, long gfd)
{
	struct vcpu *v = c->v;
	int h = fdtab_get(c->fds, gfd);

	if (h < 0 || !v->pinning)
		return h;
	for (int i = 0; i < v->nfdpins; i++)
		if (v->fdpins[i] == h)
			return h;
	if (v->nfdpins == VMLWC_FD_PINS || fdtab_pin(h) < 0) {
		v->pin_overflow = 1; /* the call keeps the lock */
		return h;
	}
	v->fdpins[v->nfdpins++] = h;
	return h;
}

long sys_install_fd(struct sys_call *c, long hret, int cloexec)
{
	int g;

	if (hret < 0)
		return hret;
	g = policy_fd_allowed((int)hret);
	if (g < 0) {
		RAW1(SYS_close, hret);
		return g;
	}
	g = policy_fd_view((int)hret);
	if (g < 0 || g != hret) {
		RAW1(SYS_close, hret);
		if (g < 0)
			return g;
		hret = g;
	}
	g = fdtab_install(c->fds, (int)hret, cloexec);
	if (g < 0)
		RAW1(SYS_close, hret);
	return g;
}

/* Both ends of a new host pipe or socket pair in the table, their guest numbers copied to out. */
long sys_install_pair(struct sys_call *c, gva_t out, const int hfd[2], int cloexec)
{
	struct fdtab *t = c->fds;
	int g[2];

	g[0] = (int)sys_install_fd(c, hfd[0], cloexec);
	if (g[0] < 0) {
		RAW1(SYS_close, hfd[1]);
		return g[0];
	}
	g[1] = (int)sys_install_fd(c, hfd[1], cloexec);
	if (g[1] < 0) {
		fdtab_close(t, g[0]);
		return g[1];
	}
	if (ua_copy_out(c->l, out, g, sizeof(g)) < 0) {
		fdtab_close(t, g[0]);
		fdtab_close(t, g[1]);
		return -EFAULT;
	}
	return 0;
}

/* Bounce space for one call: per-argument slots first, then the per-vCPU area. */
static void *bounce_get(struct sys_call *c, int i, size_t len, size_t *used)
{
	if (len <= SYS_MAX_BOUNCE)
		return c->bounce[i];
	if (*used + len > c->v->bounce_size)
		return NULL;
	void *p = c->v->bounce + *used;
	*used += (len + 15) & ~15UL;
	return p;
}

int sys_iov(struct sys_call *c, gva_t gva, long cnt, int write, struct iovec *out, int max)
{
	struct iovec g;
	int n = 0;

	if (cnt < 0 || cnt > 1024)
		return -EINVAL;
	for (long i = 0; i < cnt; i++) {
		if (ua_copy_in(c->l, &g, gva + (gva_t)i * sizeof(g), sizeof(g)) < 0)
			return -EFAULT;
		if (g.iov_len == 0)
			continue;
		if ((ssize_t)g.iov_len < 0)
			return -EINVAL;
		int k = ua_translate(c->l, (gva_t)g.iov_base, g.iov_len, write ? UA_WRITE : 0, out + n, max - n);
		if (k == -E2BIG)
			break; /* too fragmented: a shorter transfer, as readv/writev may do */
		if (k < 0)
			return k;
		n += k;
	}
	return n;
}

/* Decimal digits of v at p; returns the number written (buffer of at least 11 bytes). */
static int put_uint(char *p, unsigned v)
{
	char tmp[12];
	int n = 0, i = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		p[i++] = tmp[--n];
	return i;
}

void sys_proc_fd_path(char *buf, int h)
{
	static const char pre[] = "/proc/self/fd/";
	int n = (int)sizeof(pre) - 1;

	memcpy(buf, pre, (size_t)n);
	n += put_uint(buf + n, (unsigned)h);
	buf[n] = 0;
}

long sys_guest_fd_path(const char *path)
{
	static const char *const pre[] = { "/proc/self/fd/", "/proc/thread-self/fd/", "/dev/fd/" };
	static const char *const std[] = { "/dev/stdin", "/dev/stdout", "/dev/stderr" };
	const char *p = NULL;
	long n = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(std); i++)
		if (strcmp(path, std[i]) == 0)
			return (long)i;
	for (unsigned i = 0; i < ARRAY_SIZE(pre) && !p; i++) {
		size_t k = strlen(pre[i]);
		if (strncmp(path, pre[i], k) == 0)
			p = path + k;
	}
	if (!p || *p < '0' || *p > '9')
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || n > INT_MAX / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	return n;
}

/* The calling lwC's own working directory before a relative path (the root's is the process's). */
int sys_path_cwd(struct sys_call *c, char *path)
{
	const char *cwd = fsctx_cwd(c->l);
	size_t n, m;

	if (!cwd || path[0] == '/' || !path[0])
		return 0;
	n = strlen(cwd);
	m = strlen(path);
	if (n + 1 + m + 1 > PATH_MAX)
		return -ENAMETOOLONG;
	memmove(path + n + 1, path, m + 1);
	memcpy(path, cwd, n);
	path[n] = '/';
	return 0;
}

/* path with its last component removed ("." when it has one component) into dir. */
static void path_dir(const char *path, char *dir)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		strcpy(dir, ".");
		return;
	}
	while (slash > path && slash[-1] == '/')
		slash--;
	if (slash == path) {
		strcpy(dir, "/");
		return;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
}

/*
 * A procfs magic link (/proc/<pid>/fd/N, cwd, map_files/...) resolves to whatever the host
 * holds: a library descriptor, a file the lwC's table no longer has. Paths the guest passes are
 * resolved without them, as open does (RESOLVE_NO_MAGICLINKS): any call through one fails with
 * ELOOP. For readlink (ARG_NOFOLLOW), the link itself may be read where the policy allows its
 * name (exe, cwd, root), and the guest's own /proc/self/fd/N reads its own descriptor's.
 */
int sys_path_fix(struct sys_call *c, long hdirfd, char *path, unsigned flags)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC | ((flags & ARG_NOFOLLOW) ? O_NOFOLLOW : 0),
				.resolve = RESOLVE_NO_MAGICLINKS };
	char tmp[PATH_MAX];
	long h, g;
	int r;

	if (flags & ARG_TEXT)
		return 0;
	/*
	 * The guest's own descriptors by path (/proc/self/fd/N, /dev/fd/N, /dev/std*: N is its
	 * number, not the host's): the host descriptor it names, checked already. readlink of
	 * /dev/std* reads that symlink itself, as natively.
	 */
	if (path[0] == '/' && (g = sys_guest_fd_path(path)) >= 0 &&
	    !((flags & ARG_NOFOLLOW) && !strncmp(path, "/dev/std", 8))) {
		long hfd = sys_fd(c, g);
		if (hfd < 0)
			return -ENOENT;
		sys_proc_fd_path(path, (int)hfd);
		return 0;
	}
	if (hdirfd == AT_FDCWD && (r = sys_path_cwd(c, path)) < 0)
		return r;
	if (!path[0])
		return 0; /* AT_EMPTY_PATH: the descriptor itself */
	h = RAW4(SYS_openat2, hdirfd, path, &how, sizeof(how));
	if (h >= 0) {
		struct stat st;
		long ok = 0;
		if ((flags & ARG_NOFOLLOW) && RAW2(SYS_fstat, h, &st) == 0 && st.st_dev == g_vm.policy.proc_dev &&
		    S_ISLNK(st.st_mode)) {
			/* a proc link read as such: only those whose names the policy allows */
			char link[32];
			sys_proc_fd_path(link, (int)h);
			long n = RAW3(SYS_readlink, link, tmp, sizeof(tmp) - 1);
			tmp[n > 0 ? n : 0] = 0;
			ok = n > 0 && policy_proc_path_allowed(tmp) ? 0 : -EACCES;
		}
		RAW1(SYS_close, h);
		return (int)ok;
	}
	if (h == -ELOOP) {
		if (g_vm.cfg.trace)
			trace_msg("path %.200s: through a procfs magic link (or a loop): ELOOP", path);
		return -ELOOP;
	}
	if (h == -EACCES || h == -ENOTDIR || h == -ENAMETOOLONG || h == -EPERM || h == -EXDEV)
		return 0; /* the call itself says so */
	if (h != -ENOENT)
		return (int)h; /* the check could not be made (EMFILE, ENOMEM, ...): never through unchecked */
	/* the last component need not exist (mkdir, creat): the way to it must hold no magic link */
	path_dir(path, tmp);
	how.flags = O_PATH | O_CLOEXEC | O_DIRECTORY;
	h = RAW4(SYS_openat2, hdirfd, tmp, &how, sizeof(how));
	if (h >= 0)
		RAW1(SYS_close, h);
	if (h == -ELOOP || h == -EMFILE || h == -ENFILE || h == -ENOMEM)
		return (int)h;
	return 0;
}

static int opt_null(const struct sys_arg *sa, long v)
{
	return (sa->flags & ARG_OPT) && v == 0;
}

/*
 * Marshalling per argument kind. An in function fills c->h[i] (and, for a kind with a length
 * argument, c->h[.size]) before the raw syscall: 0 or -errno, which fails the call. An out
 * function copies a bounced argument back after a successful syscall (r: its result): 0 or
 * -EFAULT. Each runs only for its own argument i.
 */

/* A_VAL: as the guest passed it. */
static long in_val(struct sys_call *c, int i)
{
	c->h[i] = c->a[i];
	return 0;
}

/* What a signalfd takes beside read (sigfd.c) and the custom handlers (close, dup2, fcntl, poll, ...). */
static int sigfd_takes(long nr)
{
	return nr == SYS_fstat || nr == SYS_newfstatat || nr == SYS_statx ||
	       nr == SYS_epoll_ctl || nr == SYS_ioctl || nr == SYS_fchmod || nr == SYS_fchown ||
	       nr == SYS_fstatfs || nr == SYS_flock;
}

/* A_FD, A_DIRFD (AT_FDCWD passes), A_FD_OPT (-1 passes): the host fd, or -EBADF. */
static long in_fd(struct sys_call *c, int i)
{
	unsigned char kind = c->d->arg[i].kind;
	long a = c->a[i], r;

	if (kind == A_FD_OPT && (int)a == -1) {
		c->h[i] = -1;
		return 0;
	}
	if (kind == A_DIRFD && (int)a == AT_FDCWD) {
		c->h[i] = AT_FDCWD;
		return 0;
	}
	r = sys_fd(c, (int)a);
	if (r < 0)
		return r;
	if (g_vm.sig.nsigfds && sigfd_entry(&g_vm.sig, (int)r) && !sigfd_takes(c->nr)) {
		/* a signalfd is an eventfd underneath: nothing but what Linux's takes reaches it */
		long e = (c->nr == SYS_pread64 || c->nr == SYS_preadv || c->nr == SYS_preadv2 ||
			  c->nr == SYS_pwrite64 || c->nr == SYS_pwritev || c->nr == SYS_pwritev2) ? -ESPIPE : -EINVAL;
		if (g_vm.cfg.trace)
			trace_msg("%s on fd %ld, a signalfd: %s", c->d->name, a, e == -ESPIPE ? "ESPIPE" : "EINVAL");
		return e;
	}
	c->h[i] = r;
	return 0;
}

/* A_PATH: copied into the argument's bounce slot and fixed (sys_path_fix). */
static long in_path(struct sys_call *c, int i)
{
	const struct sys_arg *sa = &c->d->arg[i];
	long a = c->a[i], r;

	if (opt_null(sa, a)) {
		c->h[i] = 0;
		return 0;
	}
	r = ua_strncpy_in(c->l, c->bounce[i], (gva_t)a, PATH_MAX);
	if (r < 0)
		return r;
	/* relative to the directory argument before it, else to the lwC's own */
	r = sys_path_fix(c, i > 0 && c->d->arg[i - 1].kind == A_DIRFD ? c->h[i - 1] : AT_FDCWD, c->bounce[i],
			 sa->flags);
	if (r < 0)
		return r;
	c->h[i] = (long)c->bounce[i];
	return 0;
}

/* A_IN, A_OUT, A_INOUT: a struct of .size bytes in the argument's bounce slot. */
static long in_struct(struct sys_call *c, int i)
{
	const struct sys_arg *sa = &c->d->arg[i];
	long a = c->a[i];

	if (opt_null(sa, a)) {
		c->h[i] = 0;
		return 0;
	}
	if (sa->kind != A_OUT) {
		if (ua_copy_in(c->l, c->bounce[i], (gva_t)a, sa->size) < 0)
			return -EFAULT;
	} else {
		struct iovec tmp[2];
		if (ua_translate(c->l, (gva_t)a, sa->size, UA_WRITE, tmp, 2) < 0)
			return -EFAULT;
		memset(c->bounce[i], 0, sa->size);
	}
	c->h[i] = (long)c->bounce[i];
	c->bounced[i] = sa->kind != A_IN;
	return 0;
}

static long out_struct(struct sys_call *c, int i, long r)
{
	return ua_copy_out(c->l, (gva_t)c->a[i], c->bounce[i], c->d->arg[i].size) < 0 ? -EFAULT : 0;
}

/* A_BUF_IN, A_BUF_OUT: the guest buffer itself when contiguous on the host, else bounced. */
static long in_buf(struct sys_call *c, int i)
{
	const struct sys_arg *sa = &c->d->arg[i];
	int w = sa->kind == A_BUF_OUT ? UA_WRITE : 0;
	size_t len = (size_t)c->a[sa->size];
	long a = c->a[i];
	void *p;

	if (opt_null(sa, a)) {
		c->h[i] = 0;
		return 0;
	}
	p = ua_direct(c->l, (gva_t)a, len, w);
	if (p) {
		c->h[i] = (long)p;
		return 0;
	}
	/* Not contiguous on the host: bounce, or shorten as partial I/O may. */
	struct iovec probe[1];
	int k = ua_translate(c->l, (gva_t)a, len, w, probe, 1);
	if (k < 0 && k != -E2BIG)
		return -EFAULT;
	if (len > c->v->bounce_size)
		len = c->v->bounce_size;
	p = bounce_get(c, i, len, &c->bounce_used);
	if (!p)
		return -ENOMEM;
	if (!w && ua_copy_in(c->l, p, (gva_t)a, len) < 0)
		return -EFAULT;
	c->h[i] = (long)p;
	c->h[sa->size] = (long)len;
	c->len[i] = (long)len;
	c->bounced[i] = w;
	return 0;
}

static long out_buf(struct sys_call *c, int i, long r)
{
	if (r > 0 && ua_copy_out(c->l, (gva_t)c->a[i], (void *)c->h[i], (size_t)(r < c->len[i] ? r : c->len[i])) < 0)
		return -EFAULT;
	return 0;
}

/* A_ADDR_OUT: a sockaddr of at most SYS_MAX_BOUNCE bytes in the bounce slot, its socklen_t in slen. */
static long in_addr(struct sys_call *c, int i)
{
	const struct sys_arg *sa = &c->d->arg[i];
	long a = c->a[i];
	uint32_t sl;

	if (a == 0) {
		c->h[i] = 0;
		c->h[sa->size] = 0;
		return 0;
	}
	/* value-result: written back after the call, so it must be writable before anything is made */
	if (ua_check(c->l, (gva_t)c->a[sa->size], sizeof(sl), UA_WRITE) < 0 ||
	    ua_copy_in(c->l, &sl, (gva_t)c->a[sa->size], sizeof(sl)) < 0)
		return -EFAULT;
	if ((int32_t)sl < 0)
		return -EINVAL;
	c->len[i] = sl > SYS_MAX_BOUNCE ? SYS_MAX_BOUNCE : sl;
	struct iovec tmp[2];
	if (c->len[i] && ua_translate(c->l, (gva_t)a, (size_t)c->len[i], UA_WRITE, tmp, 2) < 0)
		return -EFAULT;
	c->h[i] = (long)c->bounce[i];
	c->slen[sa->size] = (uint32_t)c->len[i];
	c->h[sa->size] = (long)&c->slen[sa->size];
	c->bounced[i] = 1;
	return 0;
}

static long out_addr(struct sys_call *c, int i, long r)
{
	const struct sys_arg *sa = &c->d->arg[i];
	uint32_t out = c->slen[sa->size];
	size_t n = out < (uint32_t)c->len[i] ? out : (size_t)c->len[i];

	if (ua_copy_out(c->l, (gva_t)c->a[i], c->bounce[i], n) < 0 ||
	    ua_copy_out(c->l, (gva_t)c->a[sa->size], &out, sizeof(out)) < 0)
		return -EFAULT;
	return 0;
}

/* A_IOV_IN, A_IOV_OUT: the host iovecs in c->iov, their count in the count argument. */
static long in_iov(struct sys_call *c, int i)
{
	const struct sys_arg *sa = &c->d->arg[i];
	int n = sys_iov(c, (gva_t)c->a[i], c->a[sa->size], sa->kind == A_IOV_OUT, c->iov, (int)ARRAY_SIZE(c->iov));

	if (n < 0)
		return n;
	c->h[i] = (long)c->iov;
	c->h[sa->size] = n;
	return 0;
}

/*
 * The kinds' functions. A late kind's in runs in a second pass, after every other argument's:
 * it sets its length argument's host value (a pointer to the host socklen_t, the host iovec
 * count, a buffer's length shortened to the bounce area), which that argument's own A_VAL in
 * would otherwise overwrite. A kind with no in (or one outside the table) is left as it is.
 */
static const struct {
	long (*in)(struct sys_call *c, int i);
	long (*out)(struct sys_call *c, int i, long r); /* for an argument bounced for writing */
	unsigned char late;
} argk[] = {
	[A_VAL] = { in_val, NULL, 0 },
	[A_FD] = { in_fd, NULL, 0 },
	[A_DIRFD] = { in_fd, NULL, 0 },
	[A_FD_OPT] = { in_fd, NULL, 0 },
	[A_PATH] = { in_path, NULL, 0 },
	[A_IN] = { in_struct, NULL, 0 },
	[A_OUT] = { in_struct, out_struct, 0 },
	[A_INOUT] = { in_struct, out_struct, 0 },
	[A_BUF_IN] = { in_buf, NULL, 1 },
	[A_BUF_OUT] = { in_buf, out_buf, 1 },
	[A_ADDR_OUT] = { in_addr, out_addr, 1 },
	[A_IOV_IN] = { in_iov, NULL, 1 },
	[A_IOV_OUT] = { in_iov, NULL, 1 },
};

long sys_generic(struct sys_call *c)
{
	const struct sys_desc *d = c->d;
	long r, e;
	int i, late;

	c->bounce_used = 0;
	for (i = 0; i < 6; i++)
		c->bounced[i] = 0;
	for (late = 0; late < 2; late++)
		for (i = 0; i < 6; i++) {
			unsigned k = d->arg[i].kind;
			if (k < ARRAY_SIZE(argk) && argk[k].in && argk[k].late == late && (r = argk[k].in(c, i)) < 0)
				return r;
		}
	r = sys_block6(c, c->nr, c->h[0], c->h[1], c->h[2], c->h[3], c->h[4], c->h[5]);
	if (r < 0)
		return r;
	for (i = 0; i < 6; i++) {
		unsigned k = d->arg[i].kind;
		if (c->bounced[i] && k < ARRAY_SIZE(argk) && argk[k].out && (e = argk[k].out(c, i, r)) < 0) {
			/* the results cannot reach the caller (another thread unmapped the buffer meanwhile):
			   what the call made is released, as Linux does (accept: the new socket) */
			if (d->ret == R_FD)
				RAW1(SYS_close, r);
			return e;
		}
	}
	if (d->ret == R_FD) {
		int cloexec = d->cloexec_arg && (c->a[d->cloexec_arg - 1] & d->cloexec_bit);
		return sys_install_fd(c, r, cloexec);
	}
	return r;
}
