/* Files, pipes and descriptors from inside the guest. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "guest_common.h"

Test(io, file_round_trip_3mib, .timeout = 60)
{
	size_t n = 3UL << 20;
	char path[] = "/tmp/vmlwc-io-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	ENTER();
	unsigned char *out = malloc(n), *in = malloc(n);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)(i * 7 + (i >> 12));
	cr_assert_eq(write(fd, out, n), (ssize_t)n);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, in + got, n - got);
		cr_assert_gt(r, 0);
		got += (size_t)r;
	}
	cr_expect_eq(memcmp(in, out, n), 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, (off_t)n);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, (off_t)n);
	close(fd);
	cr_expect_eq(unlink(path), 0);
	cr_expect_eq(access(path, F_OK), -1);
	cr_expect_eq(errno, ENOENT);
}

Test(io, pipes_dup_readv, .timeout = 60)
{
	int p[2];
	char a[4] = "abc", b[4] = "def", r1[4] = { 0 }, r2[4] = { 0 };

	ENTER();
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_expect_eq(fcntl(p[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	int d = dup2(p[1], 40);
	cr_assert_eq(d, 40);
	struct iovec iov[2] = { { a, 3 }, { b, 3 } };
	cr_assert_eq(writev(40, iov, 2), 6);
	struct iovec riov[2] = { { r1, 3 }, { r2, 3 } };
	cr_assert_eq(readv(p[0], riov, 2), 6);
	cr_expect_str_eq(r1, "abc");
	cr_expect_str_eq(r2, "def");
	cr_expect_eq(close(40), 0);
	cr_expect_eq(close(40), -1);
	cr_expect_eq(errno, EBADF);
	cr_expect_eq(fcntl(999, F_GETFD), -1);
	cr_expect_eq(errno, EBADF);
}

Test(io, directories_and_cwd, .timeout = 60)
{
	char dir[] = "/tmp/vmlwc-dir-XXXXXX", cwd[4096];

	cr_assert_not_null(mkdtemp(dir));
	ENTER();
	cr_assert_eq(chdir(dir), 0);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_expect_str_eq(cwd, dir);
	cr_assert_eq(mkdir("sub", 0700), 0);
	int fd = open("sub/file", O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_expect_eq(rename("sub/file", "sub/moved"), 0);
	cr_expect_eq(unlink("sub/moved"), 0);
	cr_expect_eq(rmdir("sub"), 0);
	cr_expect_eq(chdir("/"), 0);
	cr_expect_eq(rmdir(dir), 0);
}
