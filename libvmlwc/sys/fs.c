/* Redirected syscalls: files and descriptors (I/O, paths, open, dup, pipe, fcntl, ioctl). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <time.h>
#include <linux/close_range.h>
#include <linux/openat2.h>

#include "../fdtab.h"
#include "../fsctx.h"
#include "../trace.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"
#include "../state.h"

/* Sizes of the kernel's structures on x86-64. */
#define SZ_STAT 144
#define SZ_STATX 256
#define SZ_STATFS 120
#define SZ_TIMESPEC2 32   /* utimensat: struct timespec[2] */
#define SZ_ITIMERSPEC 32
#define SZ_FLOCK 32
#define SZ_TERMIOS 36     /* the kernel's struct termios (glibc's own is 60 bytes, never copied) */
#define SZ_TERMIOS2 44
#define SZ_WINSIZE 8

_Static_assert(sizeof(struct stat) == SZ_STAT, "struct stat");
_Static_assert(sizeof(struct statx) == SZ_STATX, "struct statx");
_Static_assert(sizeof(struct statfs) == SZ_STATFS, "struct statfs");
_Static_assert(sizeof(struct itimerspec) == SZ_ITIMERSPEC, "struct itimerspec");
_Static_assert(sizeof(struct flock) == SZ_FLOCK, "struct flock");

/* The kernel's open flag bits where glibc's differ (O_LARGEFILE is 0 in glibc on x86-64). */
#define K_O_LARGEFILE 0100000
#define K_O_TMPFILE_BIT 020000000
#define OPEN_VALID (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | \
		    O_DSYNC | O_SYNC | O_ASYNC | O_DIRECT | K_O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW | \
		    O_NOATIME | O_CLOEXEC | O_PATH | O_TMPFILE)
#define OPEN_PATH_VALID (O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC)

/* Terminal ioctls missing from glibc's headers (they need the kernel's struct termios2). */
#define K_TCGETS2 0x802C542AU
#define K_TCSETS2 0x402C542BU
#define K_TCSETSW2 0x402C542CU
#define K_TCSETSF2 0x402C542DU

static long run_desc(struct sys_call *c, const struct sys_desc *d)
{
	c->d = d;
	return sys_generic(c);
}


/*
 * open/openat/creat/openat2. Paths are resolved without procfs magic links (RESOLVE_NO_MAGICLINKS),
 * which would otherwise reopen host descriptors outside the lwC's table (/proc/self/fd/N names a
 * HOST fd); the guest's own /proc/self/fd/N and /dev/std* are reopened through its table instead.
 * What was opened then passes the descriptor policy in sys_install_fd (/proc/<pid>/mem, KVM).
 */
static long open_common(struct sys_call *c, long gdir, gva_t upath, struct open_how *how,
			size_t howsz)
{
	char *path = c->bounce[5];
	char link[32];
	long dfd = AT_FDCWD, h, g;

	h = ua_strncpy_in(c->l, path, upath, PATH_MAX);
	if (h < 0)
		return h;
	g = path[0] == '/' && !how->resolve ? sys_guest_fd_path(path) : -1;
	if (g >= 0) {
		h = sys_fd(c, g);
		if (h < 0)
			return -ENOENT; /* as natively for a closed descriptor */
		sys_proc_fd_path(link, (int)h);
		h = RAW4(SYS_openat, AT_FDCWD, link, how->flags, how->mode);
	} else {
		/* The directory fd matters only for relative paths (natively ignored otherwise). */
		if ((int)gdir == AT_FDCWD && (h = sys_path_cwd(c, path)) < 0)
			return h;
		if (path[0] != '/' && (int)gdir != AT_FDCWD) {
			dfd = sys_fd(c, (int)gdir);
			if (dfd < 0)
				return dfd;
		}
		how->resolve |= RESOLVE_NO_MAGICLINKS;
		h = SYS_BLOCK(c, SYS_openat2, dfd, path, how, howsz); /* a FIFO's open waits for its other end */
	}
	return sys_install_fd(c, h, (how->flags & O_CLOEXEC) != 0);
}

/*
 * open(2)'s flag and mode handling (the kernel's build_open_how), for openat2: unknown flags are
 * dropped rather than refused. openat2 adds O_LARGEFILE itself, except with O_PATH.
 */
static long open_flags(struct sys_call *c, long gdir, gva_t upath, long flags, long mode)
{
	struct open_how how = { 0 };

	how.flags = (uint64_t)((unsigned)flags & OPEN_VALID);
	if (how.flags & O_PATH)
		how.flags &= OPEN_PATH_VALID;
	if (how.flags & (O_CREAT | K_O_TMPFILE_BIT))
		how.mode = (uint64_t)mode & 07777;
	return open_common(c, gdir, upath, &how, sizeof(how));
}

static long sys_open(struct sys_call *c)
{
	return open_flags(c, AT_FDCWD, (gva_t)c->a[0], c->a[1], c->a[2]);
}

static long sys_openat(struct sys_call *c)
{
	return open_flags(c, c->a[0], (gva_t)c->a[1], c->a[2], c->a[3]);
}

static long sys_creat(struct sys_call *c)
{
	return open_flags(c, AT_FDCWD, (gva_t)c->a[0], O_CREAT | O_WRONLY | O_TRUNC, c->a[1]);
}

static long sys_openat2(struct sys_call *c)
{
	struct open_how how;
	size_t size = (size_t)c->a[3];

	if (size < sizeof(how))
		return -EINVAL;
	if (size > PAGE_SIZE)
		return -E2BIG;
	/* Extension fields must be zero (the kernel's copy_struct_from_user); none is known. */
	if (ua_copy_in(c->l, c->bounce[4], (gva_t)c->a[2], size) < 0)
		return -EFAULT;
	for (size_t i = sizeof(how); i < size; i++)
		if (c->bounce[4][i])
			return -E2BIG;
	memcpy(&how, c->bounce[4], sizeof(how));
	if (how.flags >> 32)
		return -EINVAL;
	return open_common(c, c->a[0], (gva_t)c->a[1], &how, sizeof(how));
}

static long sys_close(struct sys_call *c)
{
	return fdtab_close(c->fds, (int)c->a[0]);
}

static long sys_close_range(struct sys_call *c)
{
	unsigned first = (unsigned)c->a[0], last = (unsigned)c->a[1];
	unsigned flags = (unsigned)c->a[2], cap = fdtab_used(c->fds); /* nothing above it to close */

	if (flags & ~(unsigned)(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC))
		return -EINVAL;
	if (first > last)
		return -EINVAL;
	/* UNSHARE: the lwC's table is its own already. */
	for (unsigned long g = first; g <= last && g < cap; g++) {
		if (flags & CLOSE_RANGE_CLOEXEC)
			fdtab_set_cloexec(c->fds, (long)g, 1);
		else
			fdtab_close(c->fds, (long)g);
	}
	return 0;
}

/*
 * A host duplicate of h (guest fd oldg) installed at guest number g (closing what g held). A
 * signalfd's is one more reference to the same host fd: the library knows it by that number.
 */
static long dup_into(struct sys_call *c, long oldg, int h, long g, int cloexec)
{
	if (sigfd_entry(&g_vm.sig, h)) {
		long r = fdtab_copy_entry(c->fds, g, c->fds, oldg);
		if (r < 0)
			return r;
		fdtab_set_cloexec(c->fds, g, cloexec);
		return g;
	}
	long h2 = RAW3(SYS_fcntl, h, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);

	if (h2 < 0)
		return h2;
	g = fdtab_install_at(c->fds, g, (int)h2);
	if (g < 0) {
		RAW1(SYS_close, h2);
		return g;
	}
	fdtab_set_cloexec(c->fds, g, cloexec);
	return g;
}

static long sys_dup(struct sys_call *c)
{
	int h = sys_fd(c, (int)c->a[0]);
	long g;

	if (h < 0)
		return h;
	if ((g = fdtab_min_free(c->fds, 0)) < 0)
		return g;
	return dup_into(c, (int)c->a[0], h, g, 0);
}

/* read: a signalfd's is the library's (sigfd.c); the rest are the kernel's */
static long sys_read(struct sys_call *c)
{
	if (g_vm.sig.nsigfds) {
		int h = sys_fd(c, (int)c->a[0]);
		if (h >= 0 && sigfd_entry(&g_vm.sig, h))
			return sigfd_read(c, h);
	}
	return sys_generic(c);
}

static long sys_dup2(struct sys_call *c)
{
	long oldfd = (int)c->a[0], newfd = (int)c->a[1];
	int h = sys_fd(c, oldfd);

	if (h < 0)
		return h;
	if (oldfd == newfd)
		return newfd;
	if (newfd < 0 || (unsigned long)newfd >= fdtab_cap(c->fds))
		return -EBADF;
	return dup_into(c, oldfd, h, newfd, 0);
}

static long sys_dup3(struct sys_call *c)
{
	long oldfd = (int)c->a[0], newfd = (int)c->a[1], flags = (int)c->a[2];
	int h;

	if (flags & ~O_CLOEXEC)
		return -EINVAL;
	if (oldfd == newfd)
		return -EINVAL;
	if (newfd < 0 || (unsigned long)newfd >= fdtab_cap(c->fds))
		return -EBADF;
	h = sys_fd(c, oldfd);
	if (h < 0)
		return h;
	return dup_into(c, oldfd, h, newfd, (flags & O_CLOEXEC) != 0);
}


static long sys_pipe2(struct sys_call *c)
{
	int hfd[2];
	long flags = c->nr == SYS_pipe ? 0 : (int)c->a[1];
	long r = RAW2(SYS_pipe2, hfd, flags);

	if (r < 0)
		return r;
	return sys_install_pair(c, (gva_t)c->a[0], hfd, (flags & O_CLOEXEC) != 0);
}

static long sys_fcntl(struct sys_call *c)
{
	struct fdtab *t = c->fds;
	long gfd = (int)c->a[0];
	unsigned cmd = (unsigned)c->a[1];
	unsigned long arg = (unsigned long)c->a[2];
	int h = sys_fd(c, gfd);
	long g;

	if (h < 0)
		return h;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		if (arg >= fdtab_cap(t))
			return -EINVAL;
		g = fdtab_min_free(t, (long)arg);
		if (g < 0)
			return g;
		return dup_into(c, gfd, h, g, cmd == F_DUPFD_CLOEXEC);
	case F_GETFD:
		return fdtab_is_cloexec(t, gfd) ? FD_CLOEXEC : 0;
	case F_SETFD:
		fdtab_set_cloexec(t, gfd, (arg & FD_CLOEXEC) != 0);
		return 0;
	case F_GETFL:
	case F_SETFL:
	case F_GETPIPE_SZ:
	case F_SETPIPE_SZ:
	case F_ADD_SEALS:
	case F_GET_SEALS:
		return RAW3(SYS_fcntl, h, cmd, arg);
	case F_GETLK:
	case F_OFD_GETLK:
		return run_desc(c, &DESC(.name = "fcntl",
			.arg = { ARG(A_FD), ARG(A_VAL), ARG(A_INOUT, .size = SZ_FLOCK) }));
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		return run_desc(c, &DESC(.name = "fcntl",
			.arg = { ARG(A_FD), ARG(A_VAL), ARG(A_IN, .size = SZ_FLOCK) }));
	default:
		return -EINVAL;
	}
}

/* ioctl requests passed to the host, and what their argument is. */
struct ioctl_arg {
	unsigned req;
	unsigned char kind;  /* A_VAL, A_IN or A_OUT */
	unsigned char size;
};

static const struct ioctl_arg ioctl_args[] = {
	{ TCGETS, A_OUT, SZ_TERMIOS },
	{ TCSETS, A_IN, SZ_TERMIOS },
	{ TCSETSW, A_IN, SZ_TERMIOS },
	{ TCSETSF, A_IN, SZ_TERMIOS },
	{ K_TCGETS2, A_OUT, SZ_TERMIOS2 },
	{ K_TCSETS2, A_IN, SZ_TERMIOS2 },
	{ K_TCSETSW2, A_IN, SZ_TERMIOS2 },
	{ K_TCSETSF2, A_IN, SZ_TERMIOS2 },
	{ TIOCGWINSZ, A_OUT, SZ_WINSIZE },
	{ TIOCSWINSZ, A_IN, SZ_WINSIZE },
	{ TIOCGPGRP, A_OUT, sizeof(int) },
	{ TIOCSPGRP, A_IN, sizeof(int) },
	{ TIOCGSID, A_OUT, sizeof(int) },
	{ TIOCGPTN, A_OUT, sizeof(int) },
	{ TIOCSPTLCK, A_IN, sizeof(int) },
	{ TIOCOUTQ, A_OUT, sizeof(int) },
	{ FIONREAD, A_OUT, sizeof(int) },
	{ FIONBIO, A_IN, sizeof(int) },
	{ FIOASYNC, A_IN, sizeof(int) },
	{ TCFLSH, A_VAL, 0 },
	{ TCXONC, A_VAL, 0 },
	{ TCSBRK, A_VAL, 0 },
	{ TCSBRKP, A_VAL, 0 },
	{ TIOCSCTTY, A_VAL, 0 },
	{ TIOCNOTTY, A_VAL, 0 },
};

/* The ioctl requests a redirected ioctl may pass to the host (the sandbox's allow-list). */
unsigned sys_ioctl_requests(const unsigned **reqs)
{
	static unsigned r[ARRAY_SIZE(ioctl_args)];

	for (unsigned i = 0; i < ARRAY_SIZE(ioctl_args); i++)
		r[i] = ioctl_args[i].req;
	*reqs = r;
	return ARRAY_SIZE(ioctl_args);
}

static long sys_ioctl(struct sys_call *c)
{
	long gfd = (int)c->a[0];
	unsigned req = (unsigned)c->a[1];
	int h = sys_fd(c, gfd);

	if (h < 0)
		return h;
	if (req == FIOCLEX || req == FIONCLEX) {
		fdtab_set_cloexec(c->fds, gfd, req == FIOCLEX);
		return 0;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(ioctl_args); i++) {
		const struct ioctl_arg *k = &ioctl_args[i];
		if (k->req != req)
			continue;
		struct sys_desc d = { .name = "ioctl",
			.arg = { ARG(A_FD), ARG(A_VAL), ARG(k->kind, .size = k->size) } };
		return run_desc(c, &d);
	}
	if (g_vm.cfg.trace)
		trace_msg("ioctl: request %lx on fd %ld is not supported: ENOTTY",
			  (unsigned long)req, gfd);
	return -ENOTTY;
}

/*
 * The working directory and umask: the root's are the process's; any other lwC's are its own
 * (fsctx.c), so that nothing it does moves the process's or another lwC's.
 */
static long sys_getcwd(struct sys_call *c)
{
	const char *cwd = fsctx_cwd(c->l);
	size_t n;

	if (!cwd) {
		long r = RAW2(SYS_getcwd, c->bounce[0], (unsigned long)c->a[1] < SYS_MAX_BOUNCE ? c->a[1] : SYS_MAX_BOUNCE);
		if (r > 0 && ua_copy_out(c->l, (gva_t)c->a[0], c->bounce[0], (size_t)r) < 0)
			return -EFAULT;
		return r;
	}
	n = strlen(cwd) + 1;
	if ((size_t)c->a[1] < n)
		return c->a[1] ? -ERANGE : -EINVAL;
	return ua_copy_out(c->l, (gva_t)c->a[0], cwd, n) < 0 ? -EFAULT : (long)n;
}

/* An lwC's own directory becomes the one host descriptor hfd names (a searchable directory). */
static long cwd_take(struct sys_call *c, long hfd)
{
	struct stat st;
	char link[32];
	long n;

	if (RAW2(SYS_fstat, hfd, &st) < 0)
		return -EBADF;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if ((n = RAW4(SYS_faccessat2, hfd, "", X_OK, AT_EMPTY_PATH)) < 0)
		return n;
	sys_proc_fd_path(link, (int)hfd);
	n = RAW3(SYS_readlink, link, c->bounce[1], PATH_MAX - 1);
	if (n <= 0 || c->bounce[1][0] != '/')
		return -ENOENT; /* a directory no longer in the tree */
	c->bounce[1][n] = 0;
	return fsctx_set(c->l, c->bounce[1], -1);
}

static long sys_chdir(struct sys_call *c)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS };
	long h, r;

	if ((r = ua_strncpy_in(c->l, c->bounce[0], (gva_t)c->a[0], PATH_MAX)) < 0)
		return r;
	if ((r = sys_path_cwd(c, c->bounce[0])) < 0)
		return r;
	if (c->l == g_vm.lwc.root_lwc) {
		if ((r = sys_path_fix(c, AT_FDCWD, c->bounce[0], 0)) < 0 || (r = RAW1(SYS_chdir, c->bounce[0])) < 0)
			return r;
		fsctx_root_changed();
		return 0;
	}
	if ((h = RAW4(SYS_openat2, AT_FDCWD, c->bounce[0], &how, sizeof(how))) < 0)
		return h;
	r = cwd_take(c, h);
	RAW1(SYS_close, h);
	return r;
}

static long sys_fchdir(struct sys_call *c)
{
	long h = sys_fd(c, (int)c->a[0]), r;

	if (h < 0)
		return h;
	if (c->l == g_vm.lwc.root_lwc) {
		if ((r = RAW1(SYS_fchdir, h)) == 0)
			fsctx_root_changed();
		return r;
	}
	return cwd_take(c, h);
}

static long sys_umask(struct sys_call *c)
{
	int old = fsctx_umask(c->l);

	if (old < 0) {
		long r = RAW1(SYS_umask, c->a[0] & 0777);
		fsctx_root_changed();
		return r;
	}
	return fsctx_set(c->l, NULL, (int)(c->a[0] & 0777)) < 0 ? -ENOMEM : old;
}

#define FD ARG(A_FD)
#define DIRFD ARG(A_DIRFD)
#define PATH ARG(A_PATH)
#define PATH_OPT ARG(A_PATH, .flags = ARG_OPT)
#define VAL ARG(A_VAL)

const struct sys_entry sys_fs_table[] = {
	/* data */
	SYS(SYS_read, .name = "read", .fn = sys_read, .arg = { FD, ARG(A_BUF_OUT, .size = 2), VAL }),
	SYS(SYS_write, .name = "write", .arg = { FD, ARG(A_BUF_IN, .size = 2), VAL }),
	SYS(SYS_pread64, .name = "pread64",
		.arg = { FD, ARG(A_BUF_OUT, .size = 2), VAL, VAL }),
	SYS(SYS_pwrite64, .name = "pwrite64",
		.arg = { FD, ARG(A_BUF_IN, .size = 2), VAL, VAL }),
	SYS(SYS_readv, .name = "readv", .arg = { FD, ARG(A_IOV_OUT, .size = 2), VAL }),
	SYS(SYS_writev, .name = "writev", .arg = { FD, ARG(A_IOV_IN, .size = 2), VAL }),
	SYS(SYS_preadv, .name = "preadv",
		.arg = { FD, ARG(A_IOV_OUT, .size = 2), VAL, VAL, VAL }),
	SYS(SYS_pwritev, .name = "pwritev",
		.arg = { FD, ARG(A_IOV_IN, .size = 2), VAL, VAL, VAL }),
	SYS(SYS_preadv2, .name = "preadv2",
		.arg = { FD, ARG(A_IOV_OUT, .size = 2), VAL, VAL, VAL, VAL }),
	SYS(SYS_pwritev2, .name = "pwritev2",
		.arg = { FD, ARG(A_IOV_IN, .size = 2), VAL, VAL, VAL, VAL }),
	SYS(SYS_lseek, .name = "lseek", .arg = { FD, VAL, VAL }),
	SYS(SYS_sendfile, .name = "sendfile",
		.arg = { FD, FD, ARG(A_INOUT, .flags = ARG_OPT, .size = 8), VAL }),
	SYS(SYS_copy_file_range, .name = "copy_file_range",
		.arg = { FD, ARG(A_INOUT, .flags = ARG_OPT, .size = 8), FD,
			 ARG(A_INOUT, .flags = ARG_OPT, .size = 8), VAL, VAL }),
	SYS(SYS_getdents64, .name = "getdents64",
		.arg = { FD, ARG(A_BUF_OUT, .size = 2), VAL }),
	SYS(SYS_fsync, .name = "fsync", .arg = { FD }),
	SYS(SYS_fdatasync, .name = "fdatasync", .arg = { FD }),
	SYS(SYS_syncfs, .name = "syncfs", .arg = { FD }),
	SYS(SYS_sync, .name = "sync"),
	SYS(SYS_flock, .name = "flock", .arg = { FD, VAL }),
	SYS(SYS_fallocate, .name = "fallocate", .arg = { FD, VAL, VAL, VAL }),
	SYS(SYS_fadvise64, .name = "fadvise64", .arg = { FD, VAL, VAL, VAL }),
	SYS(SYS_ftruncate, .name = "ftruncate", .arg = { FD, VAL }),
	SYS(SYS_truncate, .name = "truncate", .arg = { PATH, VAL }),

	/* metadata */
	SYS(SYS_stat, .name = "stat", .arg = { PATH, ARG(A_OUT, .size = SZ_STAT) }),
	SYS(SYS_lstat, .name = "lstat", .arg = { PATH, ARG(A_OUT, .size = SZ_STAT) }),
	SYS(SYS_fstat, .name = "fstat", .arg = { FD, ARG(A_OUT, .size = SZ_STAT) }),
	SYS(SYS_newfstatat, .name = "newfstatat",
		.arg = { DIRFD, PATH_OPT, ARG(A_OUT, .size = SZ_STAT), VAL }),
	SYS(SYS_statx, .name = "statx",
		.arg = { DIRFD, PATH_OPT, VAL, VAL, ARG(A_OUT, .size = SZ_STATX) }),
	SYS(SYS_statfs, .name = "statfs",
		.arg = { PATH, ARG(A_OUT, .size = SZ_STATFS) }),
	SYS(SYS_fstatfs, .name = "fstatfs",
		.arg = { FD, ARG(A_OUT, .size = SZ_STATFS) }),
	SYS(SYS_access, .name = "access", .arg = { PATH, VAL }),
	SYS(SYS_faccessat, .name = "faccessat", .arg = { DIRFD, PATH, VAL }),
	SYS(SYS_faccessat2, .name = "faccessat2", .arg = { DIRFD, PATH, VAL, VAL }),
	SYS(SYS_readlink, .name = "readlink",
		.arg = { ARG(A_PATH, .flags = ARG_NOFOLLOW), ARG(A_BUF_OUT, .size = 2), VAL }),
	SYS(SYS_readlinkat, .name = "readlinkat",
		.arg = { DIRFD, ARG(A_PATH, .flags = ARG_NOFOLLOW), ARG(A_BUF_OUT, .size = 3), VAL }),
	SYS(SYS_chmod, .name = "chmod", .arg = { PATH, VAL }),
	SYS(SYS_fchmod, .name = "fchmod", .arg = { FD, VAL }),
	SYS(SYS_fchmodat, .name = "fchmodat", .arg = { DIRFD, PATH, VAL }),
	SYS(SYS_chown, .name = "chown", .arg = { PATH, VAL, VAL }),
	SYS(SYS_lchown, .name = "lchown", .arg = { PATH, VAL, VAL }),
	SYS(SYS_fchown, .name = "fchown", .arg = { FD, VAL, VAL }),
	SYS(SYS_fchownat, .name = "fchownat", .arg = { DIRFD, PATH, VAL, VAL, VAL }),
	SYS(SYS_utimensat, .name = "utimensat",
		.arg = { DIRFD, PATH_OPT, ARG(A_IN, .flags = ARG_OPT, .size = SZ_TIMESPEC2), VAL }),

	/* namespace */
	SYS(SYS_mkdir, .name = "mkdir", .arg = { PATH, VAL }, .umask = 1),
	SYS(SYS_mkdirat, .name = "mkdirat", .arg = { DIRFD, PATH, VAL }, .umask = 1),
	SYS(SYS_rmdir, .name = "rmdir", .arg = { PATH }),
	SYS(SYS_unlink, .name = "unlink", .arg = { PATH }),
	SYS(SYS_unlinkat, .name = "unlinkat", .arg = { DIRFD, PATH, VAL }),
	SYS(SYS_rename, .name = "rename", .arg = { PATH, PATH }),
	SYS(SYS_renameat, .name = "renameat", .arg = { DIRFD, PATH, DIRFD, PATH }),
	SYS(SYS_renameat2, .name = "renameat2",
		.arg = { DIRFD, PATH, DIRFD, PATH, VAL }),
	SYS(SYS_link, .name = "link", .arg = { PATH, PATH }),
	SYS(SYS_linkat, .name = "linkat", .arg = { DIRFD, PATH, DIRFD, PATH, VAL }),
	SYS(SYS_symlink, .name = "symlink", .arg = { ARG(A_PATH, .flags = ARG_TEXT), PATH }),
	SYS(SYS_symlinkat, .name = "symlinkat", .arg = { ARG(A_PATH, .flags = ARG_TEXT), DIRFD, PATH }),
	SYS(SYS_getcwd, .name = "getcwd", .fn = sys_getcwd),
	SYS(SYS_chdir, .name = "chdir", .fn = sys_chdir),
	SYS(SYS_fchdir, .name = "fchdir", .fn = sys_fchdir),
	SYS(SYS_umask, .name = "umask", .fn = sys_umask),

	/* new descriptors */
	SYS(SYS_open, .name = "open", .fn = sys_open, .umask = 1),
	SYS(SYS_openat, .name = "openat", .fn = sys_openat, .umask = 1),
	SYS(SYS_openat2, .name = "openat2", .fn = sys_openat2, .umask = 1),
	SYS(SYS_creat, .name = "creat", .fn = sys_creat, .umask = 1),
	SYS(SYS_close, .name = "close", .fn = sys_close),
	SYS(SYS_close_range, .name = "close_range", .fn = sys_close_range),
	SYS(SYS_dup, .name = "dup", .fn = sys_dup),
	SYS(SYS_dup2, .name = "dup2", .fn = sys_dup2),
	SYS(SYS_dup3, .name = "dup3", .fn = sys_dup3),
	SYS(SYS_pipe, .name = "pipe", .fn = sys_pipe2),
	SYS(SYS_pipe2, .name = "pipe2", .fn = sys_pipe2),
	SYS(SYS_fcntl, .name = "fcntl", .fn = sys_fcntl),
	SYS(SYS_ioctl, .name = "ioctl", .fn = sys_ioctl),
	SYS(SYS_memfd_create, .name = "memfd_create", .arg = { ARG(A_PATH, .flags = ARG_TEXT), VAL },
		.ret = R_FD, .cloexec_arg = 2, .cloexec_bit = MFD_CLOEXEC),
	SYS(SYS_eventfd, .name = "eventfd", .arg = { VAL }, .ret = R_FD),
	SYS(SYS_eventfd2, .name = "eventfd2", .arg = { VAL, VAL },
		.ret = R_FD, .cloexec_arg = 2, .cloexec_bit = EFD_CLOEXEC),
	SYS(SYS_timerfd_create, .name = "timerfd_create", .arg = { VAL, VAL },
		.ret = R_FD, .cloexec_arg = 2, .cloexec_bit = TFD_CLOEXEC),
	SYS(SYS_timerfd_settime, .name = "timerfd_settime",
		.arg = { FD, VAL, ARG(A_IN, .size = SZ_ITIMERSPEC),
			 ARG(A_OUT, .flags = ARG_OPT, .size = SZ_ITIMERSPEC) }),
	SYS(SYS_timerfd_gettime, .name = "timerfd_gettime",
		.arg = { FD, ARG(A_OUT, .size = SZ_ITIMERSPEC) }),
};
const unsigned sys_fs_table_len = ARRAY_SIZE(sys_fs_table);
