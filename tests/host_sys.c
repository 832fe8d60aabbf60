/* The fs, net, poll and time syscall families, driven natively through sys_dispatch (no KVM). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "fdtab.h"
#include "hostonly.h"
#include "lwc_host.h"
#include "pgtable.h"
#include "sysdesc.h"
#include "vcpu.h"
#include "state.h"
#include "sys/sys.h"

#define BIG (3UL << 20)
#define KADDR 0xffffffff80000000L

/*
 * Guest buffers live in .bss (or on a stack grown before set-up): the host-only page table is
 * built from /proc/self/maps at set-up, so memory mapped later is outside the lwC.
 */
static unsigned char big_out[BIG], big_in[BIG];
static char dir[64];
static char path[128];
static char path2[128];
static unsigned char buf[65536];
static struct vcpu *v;

#define SC(nr, ...) sys_dispatch(v, v->lwc, (nr), (long[6]){ __VA_ARGS__ })
#define L(x) ((long)(x))

static __attribute__((noinline)) void grow_stack(void)
{
	volatile char pad[1 << 19];

	for (size_t i = 0; i < sizeof(pad); i += 4096)
		pad[i] = 0;
}

static void setup(void)
{
	strcpy(dir, "/tmp/vmlwc-sys-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/file", dir);
	snprintf(path2, sizeof(path2), "%s/other", dir);
	grow_stack();
	/* the descriptor table's limit is RLIMIT_NOFILE: the same for every run of the suite */
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max < 1024 ? rl.rlim_max : 1024;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	v = vmlwc_hostonly_setup();
	cr_assert_not_null(v, "host-only set-up failed");
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", dir);
}

/* Guest numbers in use, found by fstat over the whole table range. */
static int guest_fds(int *out, int max)
{
	static struct stat st;
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (SC(SYS_fstat, fd, L(&st)) == 0 && n < max)
			out[n++] = fd;
	return n;
}

static int native_fd_count(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static int host_of(int gfd)
{
	return fdtab_get(v->lwc->fds, gfd);
}

/* ---- files ---- */

Test(sys_fs, open_write_read_lseek_close_3mib, .timeout = 10, .fini = cleanup)
{
	setup();
	for (size_t i = 0; i < BIG; i++)
		big_out[i] = (unsigned char)(i * 7 + (i >> 12));
	long fd = SC(SYS_open, L(path), O_CREAT | O_RDWR | O_TRUNC, 0600);
	cr_assert_eq(fd, 3, "lowest free guest number: %ld", fd);
	cr_assert_eq(SC(SYS_write, fd, L(big_out), BIG), (long)BIG);
	cr_assert_eq(SC(SYS_lseek, fd, 0, SEEK_CUR), (long)BIG);
	cr_assert_eq(SC(SYS_lseek, fd, 0, SEEK_SET), 0);
	size_t got = 0;
	for (int i = 0; i < 64 && got < BIG; i++) {
		long r = SC(SYS_read, fd, L(big_in + got), BIG - got);
		cr_assert_gt(r, 0, "read: %ld", r);
		got += (size_t)r;
	}
	cr_assert_eq(got, BIG);
	cr_expect_eq(memcmp(big_in, big_out, BIG), 0);
	cr_expect_eq(SC(SYS_read, fd, L(big_in), 16), 0, "end of file");
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, (off_t)BIG);
	cr_expect_eq(SC(SYS_close, fd), 0);
	cr_expect_eq(SC(SYS_close, fd), -EBADF);
	cr_expect_eq(SC(SYS_read, fd, L(buf), 1), -EBADF);
	/* creat truncates and reuses the lowest number */
	fd = SC(SYS_creat, L(path), 0600);
	cr_assert_eq(fd, 3);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 0);
	cr_expect_eq(SC(SYS_open, L(path), O_CREAT | O_EXCL | O_RDWR, 0600), -EEXIST);
	cr_expect_eq(SC(SYS_open, L("/nonexistent/x"), O_RDONLY), -ENOENT);
}

Test(sys_fs, pread_pwrite, .timeout = 10, .fini = cleanup)
{
	static char in[16];

	setup();
	long fd = SC(SYS_openat, AT_FDCWD, L(path), O_CREAT | O_RDWR, 0600);
	cr_assert_geq(fd, 3);
	cr_assert_eq(SC(SYS_pwrite64, fd, L("hello"), 5, 1000), 5);
	cr_expect_eq(SC(SYS_lseek, fd, 0, SEEK_CUR), 0, "pwrite leaves the offset");
	cr_assert_eq(SC(SYS_pread64, fd, L(in), 5, 1000), 5);
	cr_expect_eq(memcmp(in, "hello", 5), 0);
	cr_expect_eq(SC(SYS_pread64, fd, L(in), 5, 999), 5);
	cr_expect_eq(in[0], 0);
	cr_expect_eq(memcmp(in + 1, "hell", 4), 0);
	cr_expect_eq(SC(SYS_pread64, fd, L(in), 5, -1), -EINVAL);
	cr_expect_eq(SC(SYS_lseek, fd, 0, SEEK_END), 1005);
	cr_expect_eq(SC(SYS_ftruncate, fd, 10), 0);
	cr_expect_eq(SC(SYS_lseek, fd, 0, SEEK_END), 10);
	cr_expect_eq(SC(SYS_fsync, fd), 0);
	cr_expect_eq(SC(SYS_fdatasync, fd), 0);
	cr_expect_eq(SC(SYS_fallocate, fd, 0, 0, 8192), 0);
	cr_expect_eq(SC(SYS_lseek, fd, 0, SEEK_END), 8192);
	cr_expect_eq(SC(SYS_flock, fd, LOCK_EX | LOCK_NB), 0);
	cr_expect_eq(SC(SYS_close, fd), 0);
}

Test(sys_fs, readv_writev_preadv_pwritev, .timeout = 10, .fini = cleanup)
{
	static char a[] = "abc", b[] = "defgh", c[] = "ij", r1[8], r2[8], r3[8];
	static struct iovec wv[3], rv[3];

	setup();
	long fd = SC(SYS_open, L(path), O_CREAT | O_RDWR, 0600);
	cr_assert_geq(fd, 3);
	wv[0] = (struct iovec){ a, 3 };
	wv[1] = (struct iovec){ b, 5 };
	wv[2] = (struct iovec){ c, 2 };
	cr_assert_eq(SC(SYS_writev, fd, L(wv), 3), 10);
	rv[0] = (struct iovec){ r1, 2 };
	rv[1] = (struct iovec){ r2, 0 };
	rv[2] = (struct iovec){ r3, 8 };
	cr_assert_eq(SC(SYS_preadv, fd, L(rv), 3, 0, 0), 10);
	cr_expect_eq(memcmp(r1, "ab", 2), 0);
	cr_expect_eq(memcmp(r3, "cdefghij", 8), 0);
	cr_assert_eq(SC(SYS_pwritev, fd, L(wv), 1, 20, 0), 3);
	memset(r1, 0, sizeof(r1));
	rv[0] = (struct iovec){ r1, 3 };
	cr_assert_eq(SC(SYS_preadv2, fd, L(rv), 1, 20, 0, 0), 3);
	cr_expect_eq(memcmp(r1, "abc", 3), 0);
	cr_assert_eq(SC(SYS_pwritev2, fd, L(wv), 2, 30, 0, 0), 8);
	cr_assert_eq(SC(SYS_lseek, fd, 30, SEEK_SET), 30);
	memset(r3, 0, sizeof(r3));
	rv[0] = (struct iovec){ r3, 8 };
	cr_assert_eq(SC(SYS_readv, fd, L(rv), 1), 8);
	cr_expect_eq(memcmp(r3, "abcdefgh", 8), 0);
	cr_expect_eq(SC(SYS_readv, fd, L(rv), 1025), -EINVAL);
	rv[0] = (struct iovec){ (void *)KADDR, 8 };
	cr_expect_eq(SC(SYS_preadv, fd, L(rv), 1, 0, 0), -EFAULT);
	cr_expect_eq(SC(SYS_writev, fd, L(rv), 1), -EFAULT);
}

Test(sys_fs, stat_family, .timeout = 10, .fini = cleanup)
{
	static struct stat st, nat;
	static struct statx sx;
	static struct statfs sf;

	setup();
	long fd = SC(SYS_open, L(path), O_CREAT | O_RDWR, 0640);
	cr_assert_geq(fd, 3);
	cr_assert_eq(SC(SYS_write, fd, L("12345"), 5), 5);
	cr_assert_eq(stat(path, &nat), 0);
	cr_assert_eq(SC(SYS_stat, L(path), L(&st)), 0);
	cr_expect_eq(st.st_ino, nat.st_ino);
	cr_expect_eq(st.st_size, 5);
	cr_expect_eq(st.st_mode, nat.st_mode);
	memset(&st, 0, sizeof(st));
	cr_assert_eq(SC(SYS_fstat, fd, L(&st)), 0);
	cr_expect_eq(st.st_ino, nat.st_ino);
	memset(&st, 0, sizeof(st));
	cr_assert_eq(SC(SYS_newfstatat, AT_FDCWD, L(path), L(&st), 0), 0);
	cr_expect_eq(st.st_ino, nat.st_ino);
	long dfd = SC(SYS_open, L(dir), O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 3);
	memset(&st, 0, sizeof(st));
	cr_assert_eq(SC(SYS_newfstatat, dfd, L("file"), L(&st), 0), 0);
	cr_expect_eq(st.st_ino, nat.st_ino);
	memset(&st, 0, sizeof(st));
	cr_assert_eq(SC(SYS_newfstatat, fd, L(""), L(&st), AT_EMPTY_PATH), 0);
	cr_expect_eq(st.st_ino, nat.st_ino);
	cr_expect_eq(SC(SYS_newfstatat, 700, L("file"), L(&st), 0), -EBADF);
	/* O_PATH (other flags dropped, as open(2) does), then stat through it */
	long op = SC(SYS_openat, dfd, L("file"), O_PATH | O_RDWR | O_LARGEFILE | 0100000 | O_CLOEXEC);
	cr_assert_geq(op, 3, "O_PATH open: %ld", op);
	cr_expect_eq(SC(SYS_fcntl, op, F_GETFD), FD_CLOEXEC);
	cr_expect_eq(SC(SYS_read, op, L(buf), 1), -EBADF, "O_PATH: no I/O");
	memset(&st, 0, sizeof(st));
	cr_assert_eq(SC(SYS_newfstatat, op, L(""), L(&st), AT_EMPTY_PATH), 0);
	cr_expect_eq(st.st_ino, nat.st_ino);
	/* unknown open flags are ignored by open(2), not refused */
	long uf = SC(SYS_open, L(path), O_RDONLY | 0x40000000);
	cr_expect_geq(uf, 3, "unknown flag: %ld", uf);
	cr_assert_eq(SC(SYS_statx, dfd, L("file"), 0, STATX_BASIC_STATS, L(&sx)), 0);
	cr_expect_eq(sx.stx_ino, nat.st_ino);
	cr_expect_eq(sx.stx_size, 5);
	cr_expect(sx.stx_mask & STATX_INO);
	cr_assert_eq(symlink("file", path2), 0);
	cr_assert_eq(SC(SYS_lstat, L(path2), L(&st)), 0);
	cr_expect(S_ISLNK(st.st_mode));
	cr_assert_eq(SC(SYS_stat, L(path2), L(&st)), 0);
	cr_expect(S_ISREG(st.st_mode));
	cr_expect_eq(SC(SYS_readlink, L(path2), L(buf), 64), 4);
	cr_expect_eq(memcmp(buf, "file", 4), 0);
	cr_expect_eq(SC(SYS_readlinkat, dfd, L("other"), L(buf), 2), 2, "truncated to bufsiz");
	cr_expect_eq(SC(SYS_stat, L("/nonexistent"), L(&st)), -ENOENT);
	cr_expect_eq(SC(SYS_access, L(path), R_OK | W_OK), 0);
	cr_expect_eq(SC(SYS_faccessat, dfd, L("file"), R_OK), 0);
	cr_expect_eq(SC(SYS_faccessat2, dfd, L("nope"), R_OK, 0), -ENOENT);
	cr_expect_eq(SC(SYS_statfs, L(dir), L(&sf)), 0);
	cr_expect_gt(sf.f_bsize, 0);
	memset(&sf, 0, sizeof(sf));
	cr_expect_eq(SC(SYS_fstatfs, fd, L(&sf)), 0);
	cr_expect_gt(sf.f_bsize, 0);
}

Test(sys_fs, getdents64, .timeout = 10, .fini = cleanup)
{
	char p[160];
	int seen = 0;

	setup();
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/entry-%d", dir, i);
		cr_assert_eq(mkdir(p, 0700), 0);
	}
	long dfd = SC(SYS_open, L(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dfd, 3);
	for (int round = 0; round < 16; round++) {
		long n = SC(SYS_getdents64, dfd, L(buf), sizeof(buf));
		cr_assert_geq(n, 0, "getdents64: %ld", n);
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			if (strncmp(d->d_name, "entry-", 6) == 0)
				seen |= 1 << (d->d_name[6] - '0');
			off += d->d_reclen;
		}
	}
	cr_expect_eq(seen, 7);
	cr_expect_eq(SC(SYS_getdents64, 1000, L(buf), sizeof(buf)), -EBADF);
}

Test(sys_fs, namespace_ops, .timeout = 10, .fini = cleanup)
{
	static char cwd[PATH_MAX], sub[160], sub2[160];
	struct stat st;

	setup();
	snprintf(sub, sizeof(sub), "%s/d", dir);
	snprintf(sub2, sizeof(sub2), "%s/e", dir);
	cr_expect_eq(SC(SYS_mkdir, L(sub), 0700), 0);
	cr_expect_eq(SC(SYS_mkdir, L(sub), 0700), -EEXIST);
	cr_expect_eq(SC(SYS_rename, L(sub), L(sub2)), 0);
	cr_expect_eq(stat(sub2, &st), 0);
	cr_expect_eq(SC(SYS_rmdir, L(sub2)), 0);
	long fd = SC(SYS_open, L(path), O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 3);
	cr_expect_eq(SC(SYS_link, L(path), L(path2)), 0);
	cr_assert_eq(stat(path2, &st), 0);
	cr_expect_eq(st.st_nlink, 2);
	cr_expect_eq(SC(SYS_unlink, L(path2)), 0);
	cr_expect_eq(SC(SYS_symlink, L("file"), L(path2)), 0);
	cr_expect_eq(SC(SYS_unlink, L(path2)), 0);
	cr_expect_eq(SC(SYS_chmod, L(path), 0400), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0400);
	cr_expect_eq(SC(SYS_fchmod, fd, 0600), 0);
	cr_expect_eq(SC(SYS_truncate, L(path), 123), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 123);
	cr_expect_eq(SC(SYS_fchown, fd, -1, -1), 0);
	cr_expect_eq(SC(SYS_chown, L(path), -1, -1), 0);
	long dfd = SC(SYS_open, L(dir), O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 3);
	cr_expect_eq(SC(SYS_mkdirat, dfd, L("x"), 0700), 0);
	cr_expect_eq(SC(SYS_renameat2, dfd, L("x"), dfd, L("y"), RENAME_NOREPLACE), 0);
	cr_expect_eq(SC(SYS_unlinkat, dfd, L("y"), AT_REMOVEDIR), 0);
	cr_expect_eq(SC(SYS_symlinkat, L("file"), dfd, L("s")), 0);
	cr_expect_eq(SC(SYS_linkat, dfd, L("file"), dfd, L("h"), 0), 0);
	cr_expect_eq(SC(SYS_fchownat, dfd, L("h"), -1, -1, 0), 0);
	cr_expect_eq(SC(SYS_fchmodat, dfd, L("h"), 0644), 0);
	cr_expect_eq(SC(SYS_utimensat, dfd, L("h"), 0, 0), 0);
	cr_expect_eq(SC(SYS_utimensat, fd, 0, 0, 0), 0);
	cr_expect_eq(SC(SYS_renameat, dfd, L("h"), dfd, L("h2")), 0);
	cr_expect_eq(SC(SYS_unlinkat, dfd, L("h2"), 0), 0);
	cr_expect_eq(SC(SYS_unlinkat, dfd, L("s"), 0), 0);
	long n = SC(SYS_getcwd, L(cwd), sizeof(cwd));
	cr_assert_gt(n, 1);
	cr_expect_eq(strlen(cwd) + 1, (size_t)n);
	cr_expect_eq(SC(SYS_chdir, L(dir)), 0);
	cr_expect_eq(SC(SYS_getcwd, L(buf), sizeof(buf)), (long)strlen(dir) + 1);
	cr_expect_str_eq((char *)buf, dir);
	cr_expect_eq(SC(SYS_fchdir, dfd), 0);
	cr_expect_eq(SC(SYS_fchdir, 999), -EBADF);
	cr_expect_eq(SC(SYS_getcwd, L(buf), 2), -ERANGE);
	cr_expect_eq(SC(SYS_chdir, L(cwd)), 0);
	long old = SC(SYS_umask, 077);
	cr_expect_eq(SC(SYS_umask, old), 077);
	cr_expect_eq(SC(SYS_syncfs, fd), 0);
	cr_expect_eq(SC(SYS_sync, 0), 0);
}

Test(sys_fs, new_descriptor_kinds, .timeout = 10, .fini = cleanup)
{
	static uint64_t val;
	static struct itimerspec its, cur;

	setup();
	long m = SC(SYS_memfd_create, L("vmlwc-test"), MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_eq(m, 3);
	cr_expect_eq(SC(SYS_fcntl, m, F_GETFD), FD_CLOEXEC);
	cr_expect_eq(SC(SYS_write, m, L("xyz"), 3), 3);
	cr_expect_eq(SC(SYS_fcntl, m, F_ADD_SEALS, F_SEAL_GROW), 0);
	cr_expect_eq(SC(SYS_fcntl, m, F_GET_SEALS) & F_SEAL_GROW, F_SEAL_GROW);
	cr_expect_eq(SC(SYS_ftruncate, m, 4096), -EPERM);
	long e = SC(SYS_eventfd2, 5, EFD_NONBLOCK);
	cr_assert_eq(e, 4);
	cr_expect_eq(SC(SYS_fcntl, e, F_GETFD), 0);
	cr_expect_eq(SC(SYS_read, e, L(&val), 8), 8);
	cr_expect_eq(val, 5);
	cr_expect_eq(SC(SYS_read, e, L(&val), 8), -EAGAIN);
	long e1 = SC(SYS_eventfd, 0);
	cr_expect_eq(e1, 5);
	long t = SC(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_CLOEXEC);
	cr_assert_eq(t, 6);
	its.it_value.tv_sec = 100;
	cr_expect_eq(SC(SYS_timerfd_settime, t, 0, L(&its), 0), 0);
	cr_expect_eq(SC(SYS_timerfd_gettime, t, L(&cur)), 0);
	cr_expect(cur.it_value.tv_sec > 90 && cur.it_value.tv_sec <= 100);
	its.it_value.tv_sec = 0;
	memset(&cur, 0, sizeof(cur));
	cr_expect_eq(SC(SYS_timerfd_settime, t, 0, L(&its), L(&cur)), 0);
	cr_expect_gt(cur.it_value.tv_sec, 90, "old value returned");
	cr_expect_eq(SC(SYS_timerfd_gettime, 200, L(&cur)), -EBADF);
	cr_expect_eq(SC(SYS_close_range, 4, 5, 0), 0);
	cr_expect_eq(SC(SYS_fcntl, 4, F_GETFD), -EBADF);
	cr_expect_eq(SC(SYS_fcntl, 5, F_GETFD), -EBADF);
	cr_expect_eq(SC(SYS_close_range, 6, ~0U, CLOSE_RANGE_CLOEXEC), 0);
	cr_expect_eq(SC(SYS_fcntl, 6, F_GETFD), FD_CLOEXEC);
}

/* ---- descriptors ---- */

Test(sys_fd, pipe_dup2_fcntl_fioclex, .timeout = 10, .fini = cleanup)
{
	static int p[2], q[2];
	static char r[8];
	static int n;

	setup();
	cr_assert_eq(SC(SYS_pipe, L(p)), 0);
	cr_expect_eq(p[0], 3);
	cr_expect_eq(p[1], 4);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_GETFD), 0);
	cr_assert_eq(SC(SYS_write, p[1], L("hi"), 2), 2);
	cr_expect_eq(SC(SYS_ioctl, p[0], FIONREAD, L(&n)), 0);
	cr_expect_eq(n, 2);
	cr_assert_eq(SC(SYS_read, p[0], L(r), 8), 2);
	cr_expect_eq(memcmp(r, "hi", 2), 0);

	/* dup2: the guest picks the new number */
	cr_assert_eq(SC(SYS_dup2, p[1], 100), 100);
	cr_expect_neq(host_of(100), host_of(p[1]), "a host duplicate");
	cr_assert_eq(SC(SYS_write, 100, L("yo"), 2), 2);
	cr_assert_eq(SC(SYS_read, p[0], L(r), 8), 2);
	cr_expect_eq(memcmp(r, "yo", 2), 0);
	int h100 = host_of(100);
	cr_expect_eq(SC(SYS_dup2, 100, 100), 100);
	cr_expect_eq(host_of(100), h100, "dup2(x, x) leaves x alone");
	cr_expect_eq(SC(SYS_dup2, 101, 101), -EBADF);
	cr_expect_eq(SC(SYS_dup2, p[1], 5000), -EBADF);
	cr_expect_eq(SC(SYS_dup2, 999, 7), -EBADF);
	/* dup2 over an open number closes it first */
	int old_host = host_of(100);
	cr_assert_eq(SC(SYS_dup2, p[0], 100), 100);
	cr_expect_eq(fcntl(old_host, F_GETFD) == -1 ? errno : 0, EBADF, "replaced host fd closed");
	cr_expect_eq(SC(SYS_fcntl, 100, F_GETFL) & O_ACCMODE, O_RDONLY);
	cr_expect_eq(SC(SYS_dup3, p[0], 60, O_CLOEXEC), 60);
	cr_expect_eq(SC(SYS_fcntl, 60, F_GETFD), FD_CLOEXEC);
	cr_expect_eq(SC(SYS_dup3, 60, 60, 0), -EINVAL);
	cr_expect_eq(SC(SYS_dup3, 60, 61, O_NONBLOCK), -EINVAL);
	cr_expect_eq(SC(SYS_dup, p[0]), 5, "lowest free");
	cr_expect_eq(SC(SYS_fcntl, 5, F_GETFD), 0);

	/* F_DUPFD allocates in the guest table at or above arg */
	cr_expect_eq(SC(SYS_fcntl, p[0], F_DUPFD, 50), 50);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_DUPFD_CLOEXEC, 50), 51);
	cr_expect_eq(SC(SYS_fcntl, 50, F_GETFD), 0);
	cr_expect_eq(SC(SYS_fcntl, 51, F_GETFD), FD_CLOEXEC);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_DUPFD, 1024), -EINVAL);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_DUPFD, -1), -EINVAL);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_DUPFD, 1023), 1023);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_DUPFD, 1023), -EMFILE);

	/* cloexec lives in the table: FIOCLEX/F_SETFD never reach the host fd */
	int h50 = host_of(50);
	cr_expect_eq(SC(SYS_ioctl, 50, FIOCLEX), 0);
	cr_expect_eq(SC(SYS_fcntl, 50, F_GETFD), FD_CLOEXEC);
	cr_expect_eq(fcntl(h50, F_GETFD), 0, "host fd untouched");
	cr_expect_eq(SC(SYS_ioctl, 50, FIONCLEX), 0);
	cr_expect_eq(SC(SYS_fcntl, 50, F_GETFD), 0);
	cr_expect_eq(SC(SYS_fcntl, 50, F_SETFD, FD_CLOEXEC), 0);
	cr_expect_eq(SC(SYS_fcntl, 50, F_GETFD), FD_CLOEXEC);
	cr_expect_eq(fcntl(h50, F_GETFD), 0, "host fd untouched");

	/* pass-through commands */
	cr_expect_eq(SC(SYS_fcntl, p[1], F_GETFL) & O_ACCMODE, O_WRONLY);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_SETFL, O_NONBLOCK), 0);
	cr_expect_eq(SC(SYS_read, p[0], L(r), 8), -EAGAIN);
	cr_expect_gt(SC(SYS_fcntl, p[0], F_GETPIPE_SZ), 0);
	cr_expect_eq(SC(SYS_fcntl, p[0], F_SETOWN, 1), -EINVAL, "unsupported command");
	cr_expect_eq(SC(SYS_fcntl, 999, F_GETFD), -EBADF);

	/* pipe2 with O_CLOEXEC; a failed copy-out leaves no descriptor behind */
	cr_assert_eq(SC(SYS_pipe2, L(q), O_CLOEXEC | O_NONBLOCK), 0);
	cr_expect_eq(SC(SYS_fcntl, q[0], F_GETFD), FD_CLOEXEC);
	cr_expect_eq(SC(SYS_fcntl, q[1], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	int before[1024], after[1024];
	int nb = guest_fds(before, 1024);
	int hosts = native_fd_count();
	cr_expect_eq(SC(SYS_pipe2, KADDR, 0), -EFAULT);
	cr_expect_eq(SC(SYS_pipe, 0), -EFAULT);
	cr_expect_eq(SC(SYS_pipe2, L(q), 0x12345678), -EINVAL);
	cr_expect_eq(guest_fds(after, 1024), nb);
	cr_expect_eq(native_fd_count(), hosts, "no host fd leaked");
}

Test(sys_fd, fcntl_locks, .timeout = 10, .fini = cleanup)
{
	static struct flock fl;

	setup();
	long fd = SC(SYS_open, L(path), O_CREAT | O_RDWR, 0600);
	cr_assert_geq(fd, 3);
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	cr_expect_eq(SC(SYS_fcntl, fd, F_SETLK, L(&fl)), 0);
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	cr_expect_eq(SC(SYS_fcntl, fd, F_OFD_GETLK, L(&fl)), 0);
	cr_expect_eq(fl.l_type, F_WRLCK, "conflicting process lock reported");
	cr_expect_eq(fl.l_pid, getpid());
	fl = (struct flock){ .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	cr_expect_eq(SC(SYS_fcntl, fd, F_SETLKW, L(&fl)), 0);
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	cr_expect_eq(SC(SYS_fcntl, fd, F_OFD_GETLK, L(&fl)), 0);
	cr_expect_eq(fl.l_type, F_UNLCK);
	cr_expect_eq(SC(SYS_fcntl, fd, F_SETLK, KADDR), -EFAULT);
}

/* ---- isolation: pointers and descriptors ---- */

Test(sys_iso, efault_bad_pointers, .timeout = 10, .fini = cleanup)
{
	static int p[2];
	static char r[8];
	static struct timespec ts;

	/* mapped before set-up: in the lwC, read-only */
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(ro, MAP_FAILED);
	char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(gone, MAP_FAILED);
	cr_assert_eq(munmap(gone, 4096), 0);
	setup();
	/* mapped after set-up: outside the lwC's page table, as expected for host-only set-up */
	char *late = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(late, MAP_FAILED);

	cr_assert_eq(SC(SYS_pipe, L(p)), 0);
	cr_assert_eq(SC(SYS_write, p[1], L("abc"), 3), 3);
	long bad[] = { 0, 16, KADDR, L(gone), L(late), L(ro) };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(SC(SYS_read, p[0], bad[i], 3), -EFAULT, "read into %lx", bad[i]);
		cr_expect_eq(SC(SYS_fstat, p[0], bad[i]), -EFAULT, "stat out at %lx", bad[i]);
		if (bad[i] != L(ro)) { /* readable: fine as an input */
			cr_expect_eq(SC(SYS_write, p[1], bad[i], 3), -EFAULT, "write from %lx", bad[i]);
			cr_expect_eq(SC(SYS_stat, bad[i], L(buf)), -EFAULT, "path at %lx", bad[i]);
			cr_expect_eq(SC(SYS_open, bad[i], O_RDONLY), -EFAULT, "open path at %lx", bad[i]);
		}
		cr_expect_eq(SC(SYS_clock_gettime, CLOCK_MONOTONIC, bad[i]), -EFAULT);
		cr_expect_eq(SC(SYS_pipe, bad[i]), -EFAULT);
	}
	/* a buffer that runs off its mapping */
	cr_expect_eq(SC(SYS_read, p[0], L(buf + sizeof(buf) - 1), 1UL << 40), -EFAULT);
	/* nothing was consumed by the refused reads */
	cr_assert_eq(SC(SYS_read, p[0], L(r), 8), 3);
	cr_expect_eq(memcmp(r, "abc", 3), 0);
	/* a read-only buffer is fine to write from */
	cr_expect_eq(SC(SYS_write, p[1], L(ro), 3), 3);
	cr_expect_eq(SC(SYS_read, p[0], L(r), 8), 3);
	cr_expect_eq(r[0], 0);
	cr_expect_eq(SC(SYS_nanosleep, KADDR, 0), -EFAULT);
	ts.tv_nsec = 1000;
	cr_expect_eq(SC(SYS_nanosleep, L(&ts), 0), 0);
	/* the process goes on, and so do the descriptors */
	cr_expect_eq(SC(SYS_write, p[1], L("ok"), 2), 2);
	cr_expect_eq(SC(SYS_read, p[0], L(r), 8), 2);
}

Test(sys_iso, ebadf_for_descriptors_outside_the_table, .timeout = 10, .fini = cleanup)
{
	static struct stat st;
	static struct pollfd pfd[2];
	static uint64_t rset[16];
	static struct epoll_event ev;
	int fds[1024];

	setup();
	/* the process has more fds than the table: Criterion's, the library's trace fd, this one */
	int h = open("/dev/null", O_RDWR);
	cr_assert_geq(h, 3);
	cr_assert_gt(native_fd_count(), 3);
	int n = guest_fds(fds, 1024);
	cr_expect_eq(n, 3, "fstat over 0..1023 finds only the table's fds");
	for (int i = 0; i < n && i < 3; i++)
		cr_expect_eq(fds[i], i);
	cr_expect_eq(SC(SYS_fstat, h, L(&st)), -EBADF);
	cr_expect_eq(SC(SYS_write, h, L("x"), 1), -EBADF);
	cr_expect_eq(SC(SYS_read, h, L(buf), 1), -EBADF);
	cr_expect_eq(SC(SYS_lseek, h, 0, SEEK_SET), -EBADF);
	cr_expect_eq(SC(SYS_dup, h), -EBADF);
	cr_expect_eq(SC(SYS_dup2, h, 10), -EBADF);
	cr_expect_eq(SC(SYS_fcntl, h, F_GETFD), -EBADF);
	cr_expect_eq(SC(SYS_fcntl, h, F_DUPFD, 0), -EBADF);
	cr_expect_eq(SC(SYS_ioctl, h, FIONREAD, L(&n)), -EBADF);
	cr_expect_eq(SC(SYS_ioctl, h, FIOCLEX), -EBADF);
	cr_expect_eq(SC(SYS_fchdir, h), -EBADF);
	cr_expect_eq(SC(SYS_close, h), -EBADF);
	cr_expect_geq(fcntl(h, F_GETFD), 0, "the host fd is still open");
	cr_expect_eq(SC(SYS_write, g_vm.trace.fd, L("x"), 1), -EBADF, "library's own fd");
	cr_expect_eq(SC(SYS_fstat, -1, L(&st)), -EBADF);
	cr_expect_eq(SC(SYS_fstat, 1L << 32, L(&st)), 0, "fd is an int: 1<<32 is fd 0 natively too");
	cr_expect_eq(SC(SYS_openat, h, L("x"), O_RDONLY), -EBADF);
	cr_expect_eq(SC(SYS_sendfile, 1, h, 0, 1), -EBADF);
	cr_expect_eq(SC(SYS_socket, AF_UNIX, SOCK_STREAM, 0), 3);
	cr_expect_eq(SC(SYS_connect, h, L(buf), 16), -EBADF);
	/* readiness calls */
	pfd[0] = (struct pollfd){ .fd = h, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = 0, .events = 0 };
	cr_expect_eq(SC(SYS_poll, L(pfd), 2, 1000), 1);
	cr_expect_eq(pfd[0].revents, POLLNVAL);
	cr_expect_eq(pfd[1].revents, 0);
	rset[h / 64] |= 1UL << (h % 64);
	cr_expect_eq(SC(SYS_select, h + 1, L(rset), 0, 0, 0), -EBADF);
	long ep = SC(SYS_epoll_create1, 0);
	cr_assert_eq(ep, 4);
	ev.events = EPOLLIN;
	cr_expect_eq(SC(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, h, L(&ev)), -EBADF);
	cr_expect_eq(SC(SYS_epoll_ctl, h, EPOLL_CTL_ADD, 0, L(&ev)), -EBADF);
	/* clocks naming a descriptor go through the table too */
	clockid_t fdclk = (clockid_t)((~(unsigned)h << 3) | 3);
	cr_expect_eq(SC(SYS_clock_gettime, fdclk, L(&st)), -EINVAL);
	close(h);
}

Test(sys_iso, procfs_paths_cannot_reach_host_fds_or_memory, .timeout = 10, .fini = cleanup)
{
	static int p[2];
	static char r[8], name[64];
	static struct open_how how;

	setup();
	cr_assert_eq(SC(SYS_pipe, L(p)), 0);
	int hr = host_of(p[0]);
	cr_assert_geq(hr, 0);
	/* the guest's own descriptors by path: /proc/self/fd/N is guest N */
	snprintf(name, sizeof(name), "/proc/self/fd/%d", p[0]);
	long g = SC(SYS_open, L(name), O_RDONLY | O_NONBLOCK);
	cr_assert_geq(g, 5, "reopen own pipe: %ld", g);
	cr_assert_eq(SC(SYS_write, p[1], L("pp"), 2), 2);
	cr_expect_eq(SC(SYS_read, g, L(r), 8), 2);
	snprintf(name, sizeof(name), "/dev/fd/%d", p[1]);
	long g2 = SC(SYS_open, L(name), O_WRONLY);
	cr_assert_geq(g2, 0);
	cr_expect_eq(SC(SYS_write, g2, L("q"), 1), 1);
	cr_expect_eq(SC(SYS_read, p[0], L(r), 8), 1);
	/* a host fd number is not a guest one */
	int h = open("/dev/zero", O_RDONLY);
	cr_assert_geq(h, 3);
	cr_assert_lt(host_of(h), 0, "test needs %d outside the table", h);
	snprintf(name, sizeof(name), "/proc/self/fd/%d", h);
	cr_expect_eq(SC(SYS_open, L(name), O_RDONLY), -ENOENT);
	snprintf(name, sizeof(name), "/proc/%d/fd/%d", getpid(), h);
	cr_expect_eq(SC(SYS_open, L(name), O_RDONLY), -ELOOP, "magic links refused");
	snprintf(name, sizeof(name), "/proc/self/fd/./%d", h);
	cr_expect_eq(SC(SYS_open, L(name), O_RDONLY), -ELOOP);
	how.flags = O_RDONLY;
	snprintf(name, sizeof(name), "/proc/%d/fd/%d", getpid(), h);
	cr_expect_eq(SC(SYS_openat2, AT_FDCWD, L(name), L(&how), sizeof(how)), -ELOOP);
	/* /proc/self/mem writes through page protections: never */
	cr_expect_eq(SC(SYS_open, L("/proc/self/mem"), O_RDWR), -EACCES);
	snprintf(name, sizeof(name), "/proc/%d/task/%d/mem", getpid(), getpid());
	cr_expect_eq(SC(SYS_open, L(name), O_RDONLY), -EACCES);
	long pd = SC(SYS_open, L("/proc/self"), O_RDONLY | O_DIRECTORY);
	cr_assert_geq(pd, 0);
	cr_expect_eq(SC(SYS_openat, pd, L("mem"), O_RDWR), -EACCES);
	/* ordinary procfs files still open */
	long maps = SC(SYS_open, L("/proc/self/maps"), O_RDONLY);
	cr_expect_geq(maps, 0);
	cr_expect_gt(SC(SYS_read, maps, L(buf), 100), 0);
	how.flags = O_RDONLY;
	cr_expect_geq(SC(SYS_openat2, AT_FDCWD, L("/dev/null"), L(&how), sizeof(how)), 0);
	cr_expect_eq(SC(SYS_openat2, AT_FDCWD, L("/dev/null"), L(&how), 8), -EINVAL);
	close(h);
}

/* ---- sockets ---- */

static long send_fds(long s, const int *fds, int n, const char *data)
{
	static struct msghdr m;
	static struct iovec iov;
	static union {
		char b[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} u;

	iov = (struct iovec){ (void *)data, strlen(data) };
	memset(&u, 0, sizeof(u));
	m = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			     .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	return SC(SYS_sendmsg, s, L(&m), 0);
}

static struct msghdr rm;
static struct iovec riov;
static union {
	char b[CMSG_SPACE(8 * sizeof(int))];
	struct cmsghdr align;
} ru;
static char rdata[64];

static long recv_fds(long s, int flags)
{
	memset(rdata, 0, sizeof(rdata));
	memset(&ru, 0, sizeof(ru));
	riov = (struct iovec){ rdata, sizeof(rdata) };
	rm = (struct msghdr){ .msg_iov = &riov, .msg_iovlen = 1, .msg_control = ru.b,
			      .msg_controllen = sizeof(ru.b) };
	return SC(SYS_recvmsg, s, L(&rm), flags);
}

Test(sys_net, socketpair_scm_rights, .timeout = 10, .fini = cleanup)
{
	static int sv[2];
	static char r[16];
	struct stat a, b;

	setup();
	int nat = open(path, O_CREAT | O_RDWR, 0600);
	cr_assert_geq(nat, 0);
	cr_assert_eq(write(nat, "secret", 6), 6);
	close(nat);
	int hosts_before = native_fd_count();
	cr_expect_eq(SC(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, KADDR), -EFAULT);
	cr_expect_eq(SC(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, 0), -EFAULT);
	cr_expect_eq(native_fd_count(), hosts_before, "nothing left open by a failed copy-out");
	cr_expect_eq(SC(SYS_fstat, 3, L(&a)), -EBADF);
	cr_assert_eq(SC(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, L(sv)), 0);
	cr_expect_eq(sv[0], 3);
	cr_expect_eq(sv[1], 4);
	long f = SC(SYS_open, L(path), O_RDONLY);
	cr_assert_eq(f, 5);
	int one[1] = { (int)f };
	cr_assert_eq(send_fds(sv[0], one, 1, "x"), 1);
	long n = recv_fds(sv[1], MSG_CMSG_CLOEXEC);
	cr_assert_eq(n, 1);
	cr_expect_eq(rdata[0], 'x');
	cr_expect_eq(rm.msg_controllen, CMSG_SPACE(sizeof(int)));
	cr_expect_eq(rm.msg_flags & MSG_CTRUNC, 0);
	struct cmsghdr *c = CMSG_FIRSTHDR(&rm);
	cr_assert_not_null(c);
	cr_assert_eq(c->cmsg_type, SCM_RIGHTS);
	int got;
	memcpy(&got, CMSG_DATA(c), sizeof(got));
	cr_expect_eq(got, 6, "installed at the lowest free guest number");
	cr_assert_geq(host_of(got), 0);
	cr_expect_neq(host_of(got), host_of((int)f));
	cr_assert_eq(fstat(host_of(got), &a), 0);
	cr_assert_eq(stat(path, &b), 0);
	cr_expect_eq(a.st_ino, b.st_ino);
	cr_expect_eq(SC(SYS_fcntl, got, F_GETFD), FD_CLOEXEC, "MSG_CMSG_CLOEXEC");
	cr_expect_eq(SC(SYS_pread64, got, L(r), 6, 0), 6);
	cr_expect_eq(memcmp(r, "secret", 6), 0);

	/* two at once, without cloexec */
	int two[2] = { (int)f, sv[0] };
	cr_assert_eq(send_fds(sv[0], two, 2, "y"), 1);
	cr_assert_eq(recv_fds(sv[1], 0), 1);
	c = CMSG_FIRSTHDR(&rm);
	cr_assert_not_null(c);
	int g2[2];
	memcpy(g2, CMSG_DATA(c), sizeof(g2));
	cr_expect_eq(g2[0], 7);
	cr_expect_eq(g2[1], 8);
	cr_expect_eq(SC(SYS_fcntl, g2[0], F_GETFD), 0);

	/* a descriptor outside the table cannot be sent */
	int h = open("/dev/null", O_RDONLY);
	int bad[2] = { (int)f, h };
	cr_expect_eq(send_fds(sv[0], bad, 2, "z"), -EBADF);
	bad[1] = -1;
	cr_expect_eq(send_fds(sv[0], bad, 2, "z"), -EBADF);

	/* a descriptor no lwC may hold, sent from outside the lwC, is refused on receipt */
	int mem = open("/proc/self/mem", O_RDWR);
	cr_assert_geq(mem, 0);
	{
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} nu;
		struct iovec niov = { (void *)"m", 1 };
		struct msghdr nm = { .msg_iov = &niov, .msg_iovlen = 1, .msg_control = nu.b,
				     .msg_controllen = sizeof(nu.b) };
		struct cmsghdr *nc = CMSG_FIRSTHDR(&nm);
		nc->cmsg_level = SOL_SOCKET;
		nc->cmsg_type = SCM_RIGHTS;
		nc->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(nc), &mem, sizeof(int));
		cr_assert_eq(sendmsg(host_of(sv[0]), &nm, 0), 1);
	}
	close(mem);
	int hosts0 = native_fd_count();
	cr_assert_eq(recv_fds(sv[1], 0), 1);
	cr_expect_eq(rdata[0], 'm');
	cr_expect_eq(rm.msg_flags & MSG_CTRUNC, MSG_CTRUNC);
	cr_expect_eq(rm.msg_controllen, 0);
	cr_expect_eq(native_fd_count(), hosts0, "the refused host fd was closed");

	/*
	 * A full table: the descriptor is closed, the data truncated with MSG_CTRUNC. The table's
	 * limit is RLIMIT_NOFILE, the host's too: fill it with entries that hold no host fd (lwC
	 * entries) so that the host still has room to receive.
	 */
	int three[3] = { (int)f, (int)f, (int)f };
	cr_assert_eq(send_fds(sv[0], three, 3, "t"), 1);
	cr_assert_eq(send_fds(sv[0], one, 1, "w"), 1);
	int filled = 0;
	while (fdtab_install_lwc(v->lwc->fds, 0, 0, 0) >= 0)
		filled++;
	cr_assert_gt(filled, 900);
	int hosts = native_fd_count();
	/* room for one of three: the first is installed, the other two closed */
	cr_assert_eq(fdtab_lwc(v->lwc->fds, 900, NULL), 0, "slot 900 holds one of the filler entries");
	cr_assert_eq(fdtab_close(v->lwc->fds, 900), 0);
	cr_assert_eq(recv_fds(sv[1], 0), 1);
	cr_expect_eq(rdata[0], 't');
	cr_expect_eq(rm.msg_flags & MSG_CTRUNC, MSG_CTRUNC);
	cr_expect_eq(rm.msg_controllen, CMSG_SPACE(sizeof(int)));
	c = CMSG_FIRSTHDR(&rm);
	cr_assert_not_null(c);
	cr_expect_eq(c->cmsg_len, CMSG_LEN(sizeof(int)));
	memcpy(&got, CMSG_DATA(c), sizeof(got));
	cr_expect_eq(got, 900);
	cr_expect_eq(native_fd_count(), hosts + 1, "one kept, two closed");
	cr_assert_eq(recv_fds(sv[1], 0), 1);
	cr_expect_eq(rdata[0], 'w');
	cr_expect_eq(rm.msg_flags & MSG_CTRUNC, MSG_CTRUNC);
	cr_expect_eq(rm.msg_controllen, 0);
	cr_expect_eq(native_fd_count(), hosts + 1, "the received host fd was closed");
	for (long g = 0; g < (long)fdtab_used(v->lwc->fds); g++)
		if (fdtab_lwc(v->lwc->fds, g, NULL) == 0)
			fdtab_close(v->lwc->fds, g);
	close(h);
}

Test(sys_net, tcp_loopback, .timeout = 10, .fini = cleanup)
{
	static struct sockaddr_in sa, peer, me;
	static socklen_t len;
	static int one = 1, val;
	static char r[16];

	setup();
	long ls = SC(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(ls, 3);
	cr_expect_eq(SC(SYS_fcntl, ls, F_GETFD), FD_CLOEXEC);
	cr_expect_eq(SC(SYS_setsockopt, ls, SOL_SOCKET, SO_REUSEADDR, L(&one), sizeof(one)), 0);
	len = sizeof(val);
	cr_expect_eq(SC(SYS_getsockopt, ls, SOL_SOCKET, SO_REUSEADDR, L(&val), L(&len)), 0);
	cr_expect_eq(val, 1);
	cr_expect_eq(len, sizeof(int));
	sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(SC(SYS_bind, ls, L(&sa), sizeof(sa)), 0);
	cr_assert_eq(SC(SYS_listen, ls, 4), 0);
	len = sizeof(sa);
	cr_assert_eq(SC(SYS_getsockname, ls, L(&sa), L(&len)), 0);
	cr_expect_eq(len, sizeof(sa));
	cr_assert_neq(sa.sin_port, 0);

	long cs = SC(SYS_socket, AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(cs, 4);
	cr_assert_eq(SC(SYS_connect, cs, L(&sa), sizeof(sa)), 0);
	len = sizeof(peer);
	long as = SC(SYS_accept4, ls, L(&peer), L(&len), SOCK_CLOEXEC);
	cr_assert_eq(as, 5);
	cr_expect_eq(len, sizeof(peer));
	cr_expect_eq(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	cr_expect_eq(SC(SYS_fcntl, as, F_GETFD), FD_CLOEXEC);
	len = sizeof(me);
	cr_assert_eq(SC(SYS_getsockname, cs, L(&me), L(&len)), 0);
	cr_expect_eq(me.sin_port, peer.sin_port);
	len = sizeof(peer);
	cr_assert_eq(SC(SYS_getpeername, cs, L(&peer), L(&len)), 0);
	cr_expect_eq(peer.sin_port, sa.sin_port);
	len = sizeof(val);
	cr_expect_eq(SC(SYS_getsockopt, cs, SOL_SOCKET, SO_TYPE, L(&val), L(&len)), 0);
	cr_expect_eq(val, SOCK_STREAM);
	cr_expect_eq(SC(SYS_setsockopt, cs, IPPROTO_TCP, TCP_NODELAY, L(&one), sizeof(one)), 0);

	cr_assert_eq(SC(SYS_sendto, cs, L("ping"), 4, 0, 0, 0), 4);
	size_t got = 0;
	for (int i = 0; i < 100 && got < 4; i++) {
		long n = SC(SYS_recvfrom, as, L(r + got), sizeof(r) - got, 0, 0, 0);
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	cr_expect_eq(memcmp(r, "ping", 4), 0);
	cr_assert_eq(SC(SYS_write, as, L("pong"), 4), 4);
	got = 0;
	for (int i = 0; i < 100 && got < 4; i++) {
		long n = SC(SYS_read, cs, L(r + got), sizeof(r) - got);
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	cr_expect_eq(memcmp(r, "pong", 4), 0);
	cr_expect_eq(SC(SYS_shutdown, cs, SHUT_WR), 0);
	cr_expect_eq(SC(SYS_recvfrom, as, L(r), sizeof(r), 0, 0, 0), 0, "end of stream");
	cr_expect_eq(SC(SYS_fcntl, ls, F_SETFL, O_NONBLOCK), 0);
	cr_expect_eq(SC(SYS_accept, ls, 0, 0), -EAGAIN);
	cr_expect_eq(SC(SYS_close, as), 0);
	cr_expect_eq(SC(SYS_close, cs), 0);
	cr_expect_eq(SC(SYS_close, ls), 0);
}

Test(sys_net, udp_loopback_and_mmsg, .timeout = 10, .fini = cleanup)
{
	static struct sockaddr_in a, b, from;
	static socklen_t len;
	static char r[32], r2[32];
	static struct mmsghdr mm[2];
	static struct iovec iv[2];

	setup();
	long sa = SC(SYS_socket, AF_INET, SOCK_DGRAM, 0);
	long sb = SC(SYS_socket, AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(sa, 3);
	cr_assert_geq(sb, 3);
	a = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	b = a;
	cr_assert_eq(SC(SYS_bind, sa, L(&a), sizeof(a)), 0);
	cr_assert_eq(SC(SYS_bind, sb, L(&b), sizeof(b)), 0);
	len = sizeof(a);
	cr_assert_eq(SC(SYS_getsockname, sa, L(&a), L(&len)), 0);
	len = sizeof(b);
	cr_assert_eq(SC(SYS_getsockname, sb, L(&b), L(&len)), 0);
	cr_assert_eq(SC(SYS_sendto, sa, L("datagram"), 8, 0, L(&b), sizeof(b)), 8);
	len = sizeof(from);
	cr_assert_eq(SC(SYS_recvfrom, sb, L(r), sizeof(r), 0, L(&from), L(&len)), 8);
	cr_expect_eq(memcmp(r, "datagram", 8), 0);
	cr_expect_eq(len, sizeof(from));
	cr_expect_eq(from.sin_port, a.sin_port);
	/* truncation: MSG_TRUNC reports the real length */
	cr_assert_eq(SC(SYS_sendto, sa, L("0123456789"), 10, 0, L(&b), sizeof(b)), 10);
	cr_expect_eq(SC(SYS_recvfrom, sb, L(r), 4, MSG_TRUNC, 0, 0), 10);
	/* sendmmsg / recvmmsg */
	iv[0] = (struct iovec){ (void *)"one", 3 };
	iv[1] = (struct iovec){ (void *)"two!", 4 };
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 2; i++)
		mm[i].msg_hdr = (struct msghdr){ .msg_name = &b, .msg_namelen = sizeof(b),
						 .msg_iov = &iv[i], .msg_iovlen = 1 };
	cr_assert_eq(SC(SYS_sendmmsg, sa, L(mm), 2, 0), 2);
	cr_expect_eq(mm[0].msg_len, 3);
	cr_expect_eq(mm[1].msg_len, 4);
	static struct iovec ri[2];
	static struct sockaddr_in names[2];
	ri[0] = (struct iovec){ r, sizeof(r) };
	ri[1] = (struct iovec){ r2, sizeof(r2) };
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 2; i++)
		mm[i].msg_hdr = (struct msghdr){ .msg_name = &names[i], .msg_namelen = sizeof(names[i]),
						 .msg_iov = &ri[i], .msg_iovlen = 1 };
	cr_assert_eq(SC(SYS_recvmmsg, sb, L(mm), 2, MSG_WAITFORONE, 0), 2);
	cr_expect_eq(mm[0].msg_len, 3);
	cr_expect_eq(mm[1].msg_len, 4);
	cr_expect_eq(memcmp(r, "one", 3), 0);
	cr_expect_eq(memcmp(r2, "two!", 4), 0);
	cr_expect_eq(names[1].sin_port, a.sin_port);
	cr_expect_eq(mm[1].msg_hdr.msg_namelen, sizeof(struct sockaddr_in));
	cr_expect_eq(SC(SYS_recvmmsg, sb, L(mm), 2, MSG_DONTWAIT, 0), -EAGAIN);
}

Test(sys_net, sockopt_pointers_translated_or_refused, .timeout = 10, .fini = cleanup)
{
	static struct sock_filter insns[1] = { BPF_STMT(BPF_RET | BPF_K, 0xffff) };
	static struct sock_fprog prog;
	static char optbuf[256];
	static socklen_t len;
	static int one = 1, unknown = 500;

	setup();
	long s = SC(SYS_socket, AF_INET, SOCK_DGRAM, 0);
	cr_assert_eq(s, 3);
	prog = (struct sock_fprog){ .len = 1, .filter = insns };
	cr_expect_eq(SC(SYS_setsockopt, s, SOL_SOCKET, SO_ATTACH_FILTER, L(&prog), sizeof(prog)), 0);
	/* SO_GET_FILTER counts filter blocks: the copy is sized for them */
	len = 1;
	memset(optbuf, 0x5a, sizeof(optbuf));
	cr_expect_eq(SC(SYS_getsockopt, s, SOL_SOCKET, SO_GET_FILTER, L(optbuf), L(&len)), 0);
	cr_expect_eq(len, 1);
	cr_expect_eq(memcmp(optbuf, insns, sizeof(insns)), 0);
	cr_expect_eq((unsigned char)optbuf[sizeof(insns)], 0x5a, "nothing past the buffer");
	prog.filter = (struct sock_filter *)KADDR;
	cr_expect_eq(SC(SYS_setsockopt, s, SOL_SOCKET, SO_ATTACH_FILTER, L(&prog), sizeof(prog)), -EFAULT);
	cr_expect_eq(SC(SYS_setsockopt, s, SOL_SOCKET, SO_ATTACH_BPF, L(&unknown), sizeof(unknown)),
		     -EBADF, "a program fd goes through the table");
	/* options whose kernel structures hold user pointers never reach the host */
	cr_expect_eq(SC(SYS_setsockopt, s, IPPROTO_IP, 64, L(optbuf), 64), -ENOPROTOOPT);
	cr_expect_eq(SC(SYS_setsockopt, s, IPPROTO_IPV6, 64, L(optbuf), 64), -ENOPROTOOPT);
	len = sizeof(optbuf);
	cr_expect_eq(SC(SYS_getsockopt, s, IPPROTO_TCP, 35, L(optbuf), L(&len)), -ENOPROTOOPT);
	cr_expect_eq(SC(SYS_setsockopt, s, 132 /* SCTP */, 1, L(optbuf), 4), -ENOPROTOOPT);
	cr_expect_eq(SC(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, L(&one), -1), -EINVAL);
	len = 4;
	cr_expect_eq(SC(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, KADDR, L(&len)), -EFAULT);
	cr_expect_eq(SC(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, L(optbuf), KADDR), -EFAULT);
}

/* ---- readiness ---- */

Test(sys_poll, poll_select_epoll_on_a_pipe, .timeout = 10, .fini = cleanup)
{
	static int p[2];
	static struct pollfd pfd[3];
	static uint64_t rs[16], ws[16];
	static struct timeval tv;
	static struct timespec ts;
	static struct epoll_event ev, out[8];
	static char r[8];
	static struct { void *ss; size_t len; } sig;
	static sigset_t mask;

	setup();
	cr_assert_eq(SC(SYS_pipe2, L(p), O_NONBLOCK), 0);
	pfd[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	cr_expect_eq(SC(SYS_poll, L(pfd), 1, 0), 0, "empty pipe");
	cr_assert_eq(SC(SYS_write, p[1], L("x"), 1), 1);
	pfd[1] = (struct pollfd){ .fd = 900, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = -1, .events = POLLIN };
	cr_expect_eq(SC(SYS_poll, L(pfd), 3, 1000), 2);
	cr_expect_eq(pfd[0].revents, POLLIN);
	cr_expect_eq(pfd[1].revents, POLLNVAL);
	cr_expect_eq(pfd[2].revents, 0);
	cr_expect_eq(pfd[0].fd, p[0], "guest numbers left in place");
	ts = (struct timespec){ 5, 0 };
	cr_expect_eq(SC(SYS_ppoll, L(pfd), 1, L(&ts), 0, 8), 1);
	cr_expect(ts.tv_sec <= 5, "time left written back");
	sigemptyset(&mask);
	cr_expect_eq(SC(SYS_ppoll, L(pfd), 1, 0, L(&mask), 8), 1);
	cr_expect_eq(SC(SYS_ppoll, L(pfd), 1, 0, L(&mask), 4), -EINVAL);
	ts = (struct timespec){ 0, -1 };
	cr_expect_eq(SC(SYS_ppoll, L(pfd), 1, L(&ts), 0, 8), -EINVAL);
	cr_expect_eq(SC(SYS_poll, KADDR, 1, 0), -EFAULT);
	cr_assert_eq(SC(SYS_read, p[0], L(r), 8), 1);
	/* an unknown fd is ready (POLLNVAL): no waiting on the others */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_expect_eq(SC(SYS_poll, L(pfd), 2, 5000), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_expect_lt(t1.tv_sec - t0.tv_sec, 2, "poll returned at once");
	cr_expect_eq(pfd[0].revents, 0);
	cr_expect_eq(pfd[1].revents, POLLNVAL);
	/* ppoll's time left is written back */
	ts = (struct timespec){ 0, 20 * 1000 * 1000 };
	cr_expect_eq(SC(SYS_ppoll, L(pfd), 1, L(&ts), 0, 8), 0);
	cr_expect_eq(ts.tv_sec, 0);
	cr_expect_eq(ts.tv_nsec, 0);
	cr_assert_eq(SC(SYS_write, p[1], L("x"), 1), 1);

	/* select: guest numbers in, guest numbers out */
	rs[0] = 1UL << p[0];
	ws[0] = 1UL << p[1];
	cr_expect_eq(SC(SYS_select, p[1] + 1, L(rs), L(ws), 0, 0), 2);
	cr_expect_eq(rs[0], 1UL << p[0]);
	cr_expect_eq(ws[0], 1UL << p[1]);
	rs[0] = (1UL << p[0]) | (1UL << 40); /* fd 40 is beyond nfds: ignored */
	cr_expect_eq(SC(SYS_select, p[0] + 1, L(rs), 0, 0, 0), 1);
	cr_expect_eq(rs[0], 1UL << p[0]);
	rs[0] = 1UL << 40;
	cr_expect_eq(SC(SYS_select, 41, L(rs), 0, 0, 0), -EBADF);
	cr_assert_eq(SC(SYS_read, p[0], L(r), 8), 1);
	rs[0] = 1UL << p[0];
	tv = (struct timeval){ 0, 20000 };
	cr_expect_eq(SC(SYS_select, p[0] + 1, L(rs), 0, 0, L(&tv)), 0, "timeout");
	cr_expect_eq(rs[0], 0);
	cr_expect_eq(tv.tv_sec, 0);
	cr_expect_eq(tv.tv_usec, 0);
	cr_expect_eq(SC(SYS_select, -1, 0, 0, 0, 0), -EINVAL);
	cr_assert_eq(SC(SYS_write, p[1], L("y"), 1), 1);
	rs[0] = 1UL << p[0];
	ts = (struct timespec){ 1, 0 };
	sig = (typeof(sig)){ &mask, 8 };
	cr_expect_eq(SC(SYS_pselect6, p[0] + 1, L(rs), 0, 0, L(&ts), L(&sig)), 1);
	cr_expect_eq(rs[0], 1UL << p[0]);
	sig.len = 16;
	cr_expect_eq(SC(SYS_pselect6, p[0] + 1, L(rs), 0, 0, L(&ts), L(&sig)), -EINVAL);

	/* epoll: the event data is the guest's own */
	long ep = SC(SYS_epoll_create1, EPOLL_CLOEXEC);
	cr_assert_geq(ep, 5);
	cr_expect_eq(SC(SYS_fcntl, ep, F_GETFD), FD_CLOEXEC);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0xdeadbeefcafeULL };
	cr_assert_eq(SC(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], L(&ev)), 0);
	cr_expect_eq(SC(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], L(&ev)), -EEXIST);
	memset(out, 0, sizeof(out));
	cr_assert_eq(SC(SYS_epoll_wait, ep, L(out), 8, 0), 1);
	cr_expect_eq(out[0].data.u64, 0xdeadbeefcafeULL);
	cr_expect_eq(out[0].events, EPOLLIN);
	cr_expect_eq(SC(SYS_epoll_pwait, ep, L(out), 8, 0, L(&mask), 8), 1);
	ts = (struct timespec){ 0, 0 };
	cr_expect_eq(SC(SYS_epoll_pwait2, ep, L(out), 8, L(&ts), 0, 8), 1);
	cr_assert_eq(SC(SYS_read, p[0], L(r), 8), 1);
	cr_expect_eq(SC(SYS_epoll_wait, ep, L(out), 8, 10), 0);
	cr_expect_eq(SC(SYS_epoll_wait, ep, L(out), 0, 0), -EINVAL);
	cr_expect_eq(SC(SYS_epoll_wait, ep, KADDR, 8, 0), -EFAULT);
	cr_expect_eq(SC(SYS_epoll_wait, p[0], L(out), 8, 0), -EINVAL, "not an epoll fd");
	cr_expect_eq(SC(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, p[0], 0), 0);
	long ep2 = SC(SYS_epoll_create, 1);
	cr_expect_geq(ep2, 0);
	cr_expect_eq(SC(SYS_epoll_create, 0), -EINVAL);
}

/* ---- time ---- */

static void on_alarm(int sig)
{
	(void)sig;
}

static int64_t ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

Test(sys_time, clocks_agree_with_native, .timeout = 10, .fini = cleanup)
{
	static struct timespec t, before, after, res;
	static struct timeval tv;
	static struct timezone tz;
	static time_t tt;
	static struct itimerval it;
	static struct tms tms;
	const clockid_t clocks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME };

	setup();
	for (unsigned i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
		clock_gettime(clocks[i], &before);
		cr_assert_eq(SC(SYS_clock_gettime, clocks[i], L(&t)), 0);
		clock_gettime(clocks[i], &after);
		cr_expect(ns(&before) <= ns(&t) && ns(&t) <= ns(&after), "clock %d", clocks[i]);
		cr_expect_eq(SC(SYS_clock_getres, clocks[i], L(&res)), 0);
		cr_expect(res.tv_sec == 0 && res.tv_nsec > 0);
	}
	cr_expect_eq(SC(SYS_clock_getres, CLOCK_MONOTONIC, 0), 0);
	cr_expect_eq(SC(SYS_clock_gettime, 12345, L(&t)), -EINVAL);
	cr_expect_eq(SC(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, L(&t)), 0);
	cr_expect_eq(SC(SYS_gettimeofday, 0, 0), 0);
	clock_gettime(CLOCK_REALTIME, &before);
	cr_assert_eq(SC(SYS_gettimeofday, L(&tv), L(&tz)), 0);
	clock_gettime(CLOCK_REALTIME, &after);
	cr_expect(tv.tv_sec >= before.tv_sec && tv.tv_sec <= after.tv_sec);
	long now = SC(SYS_time, 0);
	/* time(2) reads the coarse clock, up to a tick behind the precise one */
	cr_expect(now >= before.tv_sec - 1 && now <= after.tv_sec + 1);
	long t1 = SC(SYS_time, L(&tt));
	cr_expect_eq(t1, (long)tt);
	cr_expect_eq(SC(SYS_time, KADDR), -EFAULT);
	cr_expect_eq(SC(SYS_getitimer, ITIMER_REAL, L(&it)), 0);
	cr_expect_eq(it.it_value.tv_sec, 0);
	cr_expect_eq(SC(SYS_setitimer, ITIMER_REAL, L(&it), 0), 0);
	cr_expect_eq(SC(SYS_getitimer, 99, L(&it)), -EINVAL);
	cr_expect_eq(SC(SYS_alarm, 0), 0);
	cr_expect_geq(SC(SYS_times, L(&tms)), 0);
	cr_expect_geq(SC(SYS_times, 0), 0);
}

Test(sys_time, nanosleep_sleeps, .timeout = 10, .fini = cleanup)
{
	static struct timespec req, rem, before, after;

	setup();
	req = (struct timespec){ 0, 20 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &before);
	cr_assert_eq(SC(SYS_nanosleep, L(&req), L(&rem)), 0);
	clock_gettime(CLOCK_MONOTONIC, &after);
	cr_expect_geq(ns(&after) - ns(&before), 20 * 1000 * 1000);
	cr_expect_lt(ns(&after) - ns(&before), 2000 * 1000 * 1000L);
	clock_gettime(CLOCK_MONOTONIC, &before);
	cr_assert_eq(SC(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, L(&req), 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &after);
	cr_expect_geq(ns(&after) - ns(&before), 20 * 1000 * 1000);
	/* absolute: until 10 ms from now */
	clock_gettime(CLOCK_MONOTONIC, &req);
	req.tv_nsec += 10 * 1000 * 1000;
	if (req.tv_nsec >= 1000000000) {
		req.tv_sec++;
		req.tv_nsec -= 1000000000;
	}
	cr_assert_eq(SC(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, L(&req), 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &after);
	cr_expect_geq(ns(&after), ns(&req));
	req = (struct timespec){ 0, 1000000000 };
	cr_expect_eq(SC(SYS_nanosleep, L(&req), 0), -EINVAL);
	/* rem: untouched when the sleep completes, the time left when a signal interrupts it */
	req = (struct timespec){ 0, 1000 };
	rem = (struct timespec){ 77, 77 };
	cr_assert_eq(SC(SYS_nanosleep, L(&req), L(&rem)), 0);
	cr_expect(rem.tv_sec == 77 && rem.tv_nsec == 77);
	struct sigaction sa = { .sa_handler = on_alarm };
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	struct itimerval it = { .it_value = { 0, 50 * 1000 } };
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	req = (struct timespec){ 3, 0 };
	cr_assert_eq(SC(SYS_nanosleep, L(&req), L(&rem)), -EINTR);
	cr_expect(rem.tv_sec >= 1 && rem.tv_sec <= 3, "time left: %ld", (long)rem.tv_sec);
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	rem = (struct timespec){ 77, 77 };
	cr_assert_eq(SC(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, L(&req), L(&rem)), -EINTR);
	cr_expect(rem.tv_sec >= 1 && rem.tv_sec <= 3);
}

/* ---- terminals ---- */

Test(sys_tty, ioctl_terminal_requests, .timeout = 10, .fini = cleanup)
{
	static unsigned char tio[64];
	static struct winsize ws;
	static int v1 = 1, n;

	setup();
	long pt = SC(SYS_open, L("/dev/ptmx"), O_RDWR | O_NOCTTY);
	if (pt < 0)
		cr_skip_test("no /dev/ptmx: %ld", pt);
	memset(tio, 0xaa, sizeof(tio));
	cr_assert_eq(SC(SYS_ioctl, pt, TCGETS, L(tio)), 0);
	for (unsigned i = 36; i < sizeof(tio); i++)
		cr_expect_eq(tio[i], 0xaa, "TCGETS copies the kernel's 36-byte termios only (byte %u)", i);
	cr_expect_eq(SC(SYS_ioctl, pt, TCSETS, L(tio)), 0);
	ws = (struct winsize){ .ws_row = 24, .ws_col = 80 };
	cr_expect_eq(SC(SYS_ioctl, pt, TIOCSWINSZ, L(&ws)), 0);
	memset(&ws, 0, sizeof(ws));
	cr_expect_eq(SC(SYS_ioctl, pt, TIOCGWINSZ, L(&ws)), 0);
	cr_expect_eq(ws.ws_row, 24);
	cr_expect_eq(ws.ws_col, 80);
	cr_expect_eq(SC(SYS_ioctl, pt, FIONBIO, L(&v1)), 0);
	cr_expect_eq(SC(SYS_fcntl, pt, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	cr_expect_eq(SC(SYS_ioctl, pt, TIOCGPTN, L(&n)), 0);
	cr_expect_eq(SC(SYS_ioctl, pt, TCFLSH, 2 /* TCIOFLUSH */), 0);
	cr_expect_eq(SC(SYS_ioctl, pt, TIOCGWINSZ, KADDR), -EFAULT);
	cr_expect_eq(SC(SYS_ioctl, pt, 0x1234, 0), -ENOTTY);
	cr_expect_eq(SC(SYS_ioctl, pt, TIOCGPTPEER, O_RDWR), -ENOTTY, "would return a host fd");
	long f = SC(SYS_open, L(path), O_CREAT | O_RDWR, 0600);
	cr_assert_geq(f, 0);
	cr_expect_eq(SC(SYS_ioctl, f, TCGETS, L(tio)), -ENOTTY, "from the host: not a tty");
	cr_expect_eq(SC(SYS_ioctl, f, FIONREAD, L(&n)), 0);
	cr_expect_eq(SC(SYS_ioctl, 999, TCGETS, L(tio)), -EBADF);
}

/* ---- a translated (non-identity) window: buffers split over non-adjacent host pages ---- */

#define WIN 0x3f0000000000UL
static unsigned char pages[8][4096] __attribute__((aligned(4096)));
static const int win_map[5] = { 5, 1, 3, 7, 6 }; /* guest page i of the window -> host page */

static void win_setup(void)
{
	struct pt_txn t;

	pt_txn_begin(&t, v->lwc->root);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(pt_txn_set(&t, WIN + (uint64_t)i * PAGE_SIZE, PAGE_SIZE,
					(uintptr_t)pages[win_map[i]], pt_prot_flags(PROT_READ | PROT_WRITE)), 0);
	v->lwc->root = pt_txn_commit(&t);
}

static unsigned char *win_byte(size_t off)
{
	return &pages[win_map[off / PAGE_SIZE]][off % PAGE_SIZE];
}

static void win_put(size_t off, const void *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		*win_byte(off + i) = ((const unsigned char *)src)[i];
}

static void win_get(size_t off, void *dst, size_t len)
{
	for (size_t i = 0; i < len; i++)
		((unsigned char *)dst)[i] = *win_byte(off + i);
}

Test(sys_xlate, buffers_split_over_host_pages, .timeout = 10, .fini = cleanup)
{
	static int p[2];
	static unsigned char pat[8192], got[8192];
	struct stat st, nat;

	setup();
	win_setup();
	cr_assert_eq(SC(SYS_pipe, L(p)), 0);
	int hr = host_of(p[0]), hw = host_of(p[1]);

	/* small buffers across a page boundary: bounce slots */
	win_put(4093, "abcdef", 6);
	cr_assert_eq(SC(SYS_write, p[1], WIN + 4093, 6), 6);
	memset(got, 0, sizeof(got));
	cr_assert_eq(read(hr, got, 6), 6);
	cr_expect_eq(memcmp(got, "abcdef", 6), 0);
	cr_assert_eq(write(hw, "ghijkl", 6), 6);
	cr_assert_eq(SC(SYS_read, p[0], WIN + 4093, 6), 6);
	win_get(4093, got, 6);
	cr_expect_eq(memcmp(got, "ghijkl", 6), 0);
	cr_expect_eq(pages[5][4095], 'i');
	cr_expect_eq(pages[1][0], 'j');

	/* larger than a slot: the vCPU bounce area */
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (unsigned char)(i * 13 + 1);
	cr_assert_eq(write(hw, pat, sizeof(pat)), (ssize_t)sizeof(pat));
	size_t n = 0;
	for (int i = 0; i < 16 && n < sizeof(pat); i++) {
		long r = SC(SYS_read, p[0], WIN + 100 + n, sizeof(pat) - n);
		cr_assert_gt(r, 0);
		n += (size_t)r;
	}
	win_get(100, got, sizeof(pat));
	cr_expect_eq(memcmp(got, pat, sizeof(pat)), 0);

	/* a struct out and a path in, each across the boundary */
	cr_assert_eq(stat(path, &nat) == 0 ? 0 : close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
	cr_assert_eq(stat(path, &nat), 0);
	size_t plen = strlen(path) + 1;
	win_put(2 * 4096 - plen / 2, path, plen);
	cr_assert_eq(SC(SYS_stat, WIN + 2 * 4096 - plen / 2, WIN + 4096 - 50), 0);
	win_get(4096 - 50, &st, sizeof(st));
	cr_expect_eq(st.st_ino, nat.st_ino);
	long fd = SC(SYS_open, WIN + 2 * 4096 - plen / 2, O_RDONLY);
	cr_expect_geq(fd, 0);

	/* an iovec array and its buffers across boundaries */
	struct iovec iov[2] = { { (void *)(WIN + 4090), 10 }, { (void *)(WIN + 8190), 4 } };
	win_put(4096 - 16, iov, sizeof(iov));
	cr_assert_eq(write(hw, "0123456789ABCD", 14), 14);
	cr_assert_eq(SC(SYS_readv, p[0], WIN + 4096 - 16, 2), 14);
	win_get(4090, got, 10);
	win_get(8190, got + 10, 4);
	cr_expect_eq(memcmp(got, "0123456789ABCD", 14), 0);

	/* a socket filter whose program straddles the boundary: the nested pointer is translated */
	static struct sock_filter insns[2] = { BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
					       BPF_STMT(BPF_RET | BPF_K, 0xffff) };
	static struct sock_filter back[2];
	static socklen_t flen;
	win_put(8192 - 8, insns, sizeof(insns));
	struct sock_fprog fp = { .len = 2, .filter = (struct sock_filter *)(WIN + 8192 - 8) };
	win_put(4096 - 8, &fp, sizeof(fp));
	long s = SC(SYS_socket, AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(s, 0);
	cr_expect_eq(SC(SYS_setsockopt, s, SOL_SOCKET, SO_ATTACH_FILTER, WIN + 4096 - 8, sizeof(fp)), 0);
	flen = 2;
	cr_expect_eq(SC(SYS_getsockopt, s, SOL_SOCKET, SO_GET_FILTER, L(back), L(&flen)), 0);
	cr_expect_eq(flen, 2);
	cr_expect_eq(memcmp(back, insns, sizeof(insns)), 0);

	/* a pollfd across the boundary */
	struct pollfd pfd = { .fd = p[0], .events = POLLIN };
	win_put(4096 - 4, &pfd, sizeof(pfd));
	cr_assert_eq(write(hw, "z", 1), 1);
	cr_expect_eq(SC(SYS_poll, WIN + 4096 - 4, 1, 0), 1);
	win_get(4096 - 4, &pfd, sizeof(pfd));
	cr_expect_eq(pfd.revents, POLLIN);
	cr_expect_eq(pfd.fd, p[0]);
}

Test(sys_xlate, messages_split_over_host_pages, .timeout = 10, .fini = cleanup)
{
	static int sv[2];
	struct msghdr m;
	struct iovec iov;
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;

	setup();
	win_setup();
	cr_assert_eq(SC(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, L(sv)), 0);
	long f = SC(SYS_open, L("/dev/null"), O_RDONLY);
	cr_assert_geq(f, 0);
	/* sendmsg: header, iovec, data and control data each straddle a page boundary */
	win_put(8192 - 2, "hello", 5);
	iov = (struct iovec){ (void *)(WIN + 8192 - 2), 5 };
	win_put(12288 - 8, &iov, sizeof(iov));
	memset(&u, 0, sizeof(u));
	struct cmsghdr *c = &u.align;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(c), &(int){ (int)f }, sizeof(int));
	win_put(16384 - 8, &u, sizeof(u));
	m = (struct msghdr){ .msg_iov = (void *)(WIN + 12288 - 8), .msg_iovlen = 1,
			     .msg_control = (void *)(WIN + 16384 - 8), .msg_controllen = sizeof(u) };
	win_put(4096 - 20, &m, sizeof(m));
	cr_assert_eq(SC(SYS_sendmsg, sv[0], WIN + 4096 - 20, 0), 5);

	/* recvmsg into a fresh layout, also straddling */
	static unsigned char zero[5 * 4096];
	win_put(0, zero, sizeof(zero));
	iov = (struct iovec){ (void *)(WIN + 12288 - 2), 16 };
	win_put(8192 - 12, &iov, sizeof(iov));
	m = (struct msghdr){ .msg_iov = (void *)(WIN + 8192 - 12), .msg_iovlen = 1,
			     .msg_control = (void *)(WIN + 16384 - 12), .msg_controllen = sizeof(u) };
	win_put(4096 - 30, &m, sizeof(m));
	cr_assert_eq(SC(SYS_recvmsg, sv[1], WIN + 4096 - 30, 0), 5);
	char data[5];
	win_get(12288 - 2, data, 5);
	cr_expect_eq(memcmp(data, "hello", 5), 0);
	win_get(4096 - 30, &m, sizeof(m));
	cr_expect_eq(m.msg_controllen, CMSG_SPACE(sizeof(int)));
	win_get(16384 - 12, &u, sizeof(u));
	cr_assert_eq(u.align.cmsg_type, SCM_RIGHTS);
	int g;
	memcpy(&g, CMSG_DATA(&u.align), sizeof(g));
	cr_expect_gt(g, f);
	struct stat a, b;
	cr_assert_geq(host_of(g), 0);
	cr_assert_eq(fstat(host_of(g), &a), 0);
	cr_assert_eq(stat("/dev/null", &b), 0);
	cr_expect_eq(a.st_rdev, b.st_rdev);
}

/* ---- dispatch ---- */

/* The call's marshalling state is the vCPU's arena storage; an entry while it is in use fails. */
Test(sys_dispatch, call_storage_per_vcpu_and_nested_entry_refused, .timeout = 10, .fini = cleanup)
{
	setup();
	cr_assert_not_null(v->call);
	cr_expect_eq(v->call_busy, 0);
	cr_expect_eq(SC(SYS_getpid), (long)getpid());
	cr_expect_eq(v->call_busy, 0, "released after the call");
	v->call_busy = 1; /* as if a call were in flight */
	cr_expect_eq(SC(SYS_getpid), -EDEADLK);
	cr_expect_eq(SC(SYS_clock_gettime, CLOCK_MONOTONIC, L(buf)), -EDEADLK);
	cr_expect_eq(v->call_busy, 1, "the outer call's storage is left alone");
	v->call_busy = 0;
	cr_expect_eq(SC(SYS_getpid), (long)getpid());
}

/*
 * A buffer longer than the vCPU bounce area and not contiguous on the host: the call is
 * shortened to the bounce area, as partial I/O may be. (The shortened length once lost to the
 * length argument's own A_VAL: the kernel was given the guest's length and wrote past the area.)
 */
#define WIN2 0x3f0000100000UL
#define WIN2_PAGES 768
static unsigned char pages2[WIN2_PAGES][4096] __attribute__((aligned(4096)));

Test(sys_xlate, long_split_buffer_shortened_to_bounce_area, .timeout = 10, .fini = cleanup)
{
	struct pt_txn t;

	setup();
	cr_assert_gt((size_t)WIN2_PAGES * 4096, v->bounce_size);
	pt_txn_begin(&t, v->lwc->root);
	for (int i = 0; i < WIN2_PAGES; i++) /* guest pages swapped in pairs: never contiguous on the host */
		cr_assert_eq(pt_txn_set(&t, WIN2 + (uint64_t)i * PAGE_SIZE, PAGE_SIZE, (uintptr_t)pages2[i ^ 1],
					pt_prot_flags(PROT_READ | PROT_WRITE)), 0);
	v->lwc->root = pt_txn_commit(&t);
	memset(pages2, 0xff, sizeof(pages2));
	long fd = SC(SYS_open, L("/dev/zero"), O_RDONLY);
	cr_assert_geq(fd, 0);
	long r = SC(SYS_read, fd, WIN2, (long)sizeof(pages2));
	cr_expect_eq(r, (long)v->bounce_size, "read: %ld", r);
	size_t done = r > 0 ? (size_t)r : 0, bad = 0;
	for (size_t off = 0; off < sizeof(pages2); off++)
		bad += pages2[(off / PAGE_SIZE) ^ 1][off % PAGE_SIZE] != (off < done ? 0 : 0xff);
	cr_expect_eq(bad, 0, "%zu bytes differ from what read reported", bad);
	cr_expect_eq(SC(SYS_close, fd), 0);
}
