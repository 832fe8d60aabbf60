/* Descriptor shadow across lwCs: shared descriptor ranges, and lwCs freed when only a cycle holds them. */
#include <fcntl.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static long pool_frames(void)
{
	return syscall(VMLWC_SYS_POOL, VMLWC_POOL_IN_USE);
}

static int is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/*
 * Slots 40-45 shared, 50 unmapped, the rest copied: a close, a dup2 or a new descriptor in a
 * shared slot is seen by both; a copied slot is the child's own; the host fd closes with the last
 * reference.
 */
Test(lwc_fds, shared_range_copied_rest_unmapped_slot, .timeout = 60)
{
	int p[2], q[2];
	ENTER();
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(q), 0);
	cr_assert_eq(dup2(p[1], 40), 40); /* shared: the write end the child will close */
	cr_assert_eq(dup2(q[0], 41), 41); /* shared: the parent closes it */
	cr_assert_eq(dup2(q[0], 30), 30); /* copied */
	cr_assert_eq(dup2(q[0], 50), 50); /* unmapped */
	close(p[1]);
	struct lwc_rspec s[2] = {
		{ .flags = LWC_FILES | LWC_SHARE, .u.fds = { 40, 45 } },
		{ .flags = LWC_FILES | LWC_UNMAP, .u.fds = { 50, 50 } },
	};
	struct lwc_msg in;
	int c = lwc_create(s, 2, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[6];
		r[0] = is_open(40) && is_open(41) && is_open(30);
		r[1] = !is_open(50) && errno == EBADF;
		r[2] = close(40);            /* the last reference to the pipe's write end */
		r[3] = dup2(q[1], 42);       /* into an empty shared slot */
		r[4] = close(30);            /* its own copy */
		r[5] = open("/dev/null", O_RDONLY); /* lowest free: 0-2 and 30 are outside the range */
		lwc_switch(in.src, r, 6, &in);
		long back[2] = { is_open(41), is_open(43) };
		lwc_switch_discard(in.src, back, 2);
	}
	cr_assert_geq(c, 0, "lwc_create with a shared range: %s", strerror(errno));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the child has 40, 41 and its copy of 30");
	cr_expect_eq(in.args[1], 1, "slot 50 is absent in the child (EBADF)");
	cr_expect_eq(in.args[2], 0);
	cr_expect_eq(in.args[3], 42);
	cr_expect_eq(in.args[4], 0);
	cr_expect(!is_open(40), "the child's close of a shared slot closed it here too");
	char b;
	cr_expect_eq(read(p[0], &b, 1), 0, "EOF: the host write end closed with its last reference");
	cr_expect(is_open(42), "the child's dup2 into a shared slot is seen here");
	cr_expect_eq(write(42, "x", 1), 1);
	cr_expect_eq(read(q[0], &b, 1), 1, "and it is the same pipe");
	cr_expect(is_open(30), "the child closed only its own copy of 30");
	cr_expect(is_open(50));
	long cfd = in.args[5];
	cr_expect(cfd >= 0 && (cfd < 40 || cfd > 45), "the child's new descriptor %ld is outside the range", cfd);
	if (cfd != 30)
		cr_expect(!is_open((int)cfd) || cfd <= 2, "not visible here");
	cr_expect_eq(close(41), 0);
	cr_expect_eq(dup2(q[0], 43), 43);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0, "the parent's close of 41 reached the child");
	cr_expect_eq(in.args[1], 1, "the parent's dup2 into 43 reached the child");
	cr_expect_eq(lwc_close(c), 0);
	cr_expect(is_open(42) && is_open(43), "the group keeps its entries when the child goes");
	errno = 0;
	struct lwc_rspec bad = { .flags = LWC_FILES | LWC_SHARE, .u.fds = { 5, 2 } };
	cr_expect_eq(lwc_create(&bad, 1, 0, &in), -1);
	cr_expect_eq(errno, EINVAL, "a range with to < from");
}

/* An lwC descriptor in a shared slot: held once; a restriction and a close reach both tables. */
Test(lwc_fds, lwc_descriptor_in_shared_slot, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	int target = lwc_create(NULL, 0, 0, &in);
	if (target == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0);
	cr_assert_geq(target, 0);
	errno = 0;
	cr_expect_eq(dup2(target, 60), -1, "an lwC descriptor is not a file");
	cr_expect_eq(errno, EBADF);
	struct lwc_rspec s = { .flags = LWC_FILES | LWC_SHARE, .u.fds = { target, target } };
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[1] = { lwc_restrict(target, NULL, 0) };
		lwc_switch(in.src, r, 1, &in);
		long r2[1] = { lwc_close(target) };
		lwc_switch_discard(in.src, r2, 1);
	}
	cr_assert_geq(c, 0, "%s", strerror(errno));
	struct lwc_rspec all = { .flags = LWC_MEM, .u.mem = { 0x10000, 0x11000 } };
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0);
	errno = 0;
	cr_expect_eq(lwc_overlay(target, &all, 1), -1, "the child's restriction holds here");
	cr_expect_eq(errno, EPERM);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0);
	errno = 0;
	cr_expect_eq(lwc_close(target), -1, "the child's close reached this table");
	cr_expect_eq(errno, EBADF);
	cr_expect_eq(lwc_close(c), 0);
}

/*
 * A child and the grandchild it creates hold descriptors for each other. Once the root closes
 * the child, nothing reachable holds either: both go, with their frames. 700 rounds of two
 * lwCs each would run out of the 1024 lwC slots if they did not.
 */
Test(lwc_fds, cycle_of_lwcs_freed, .timeout = 600)
{
	static char buf[8 * 4096];
	ENTER();
	memset(buf, 1, sizeof(buf));
	long base = pool_frames();
	for (int i = 0; i < 700; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			int root = in.src;
			struct lwc_msg in2;
			memset(buf, 2, sizeof(buf));
			int g = lwc_create(NULL, 0, 0, &in2);
			if (g == LWC_SWITCHED) {
				memset(buf, 3, sizeof(buf));
				lwc_switch(in2.src, NULL, 0, &in2); /* back to the child: waits, holding it */
			}
			lwc_switch(g, NULL, 0, &in2);
			lwc_switch_discard(root, NULL, 0);
		}
		cr_assert_geq(c, 0, "round %d: lwc_create: %s", i, strerror(errno));
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
		cr_assert_eq(lwc_close(c), 0);
	}
	cr_expect_eq(pool_frames(), base, "pool frames: %ld after, %ld before", pool_frames(), base);
}

/* A monitor lives while the lwC it traps for does; both go once nobody holds either. */
Test(lwc_fds, trap_monitor_kept_then_freed, .timeout = 600)
{
	ENTER();
	long base = pool_frames();
	static char buf[4 * 4096];
	for (int i = 0; i < 600; i++) {
		struct lwc_msg in;
		int m = lwc_create(NULL, 0, 0, &in);
		if (m == LWC_SWITCHED) {
			int root = in.src;
			struct lwc_msg in2;
			memset(buf, 4, sizeof(buf));
			int t = lwc_create(NULL, 0, LWC_TRAP_SYSCALL, &in2);
			if (t == LWC_SWITCHED) {
				long r = syscall(SYS_getppid); /* trapped: the monitor answers */
				long v[1] = { r };
				lwc_switch(in2.src, v, 1, &in2);
			}
			lwc_switch(t, NULL, 0, &in2); /* the trapped getppid arrives */
			long res[1] = { 4242 };
			lwc_switch(t, res, 1, &in2); /* the child reports what it got */
			long got[1] = { in2.args[0] };
			lwc_switch_discard(root, got, 1);
		}
		cr_assert_geq(m, 0, "round %d: %s", i, strerror(errno));
		cr_assert_eq(lwc_switch(m, NULL, 0, &in), LWC_SWITCHED);
		cr_assert_eq(in.args[0], 4242, "the monitor's answer reached the trapped lwC");
		cr_assert_eq(lwc_close(m), 0);
	}
	cr_expect_eq(pool_frames(), base, "pool frames: %ld after, %ld before", pool_frames(), base);
}

/* lwc_syscall with LWC_FILES on a slot the caller shares with the target: both tables see it. */
Test(lwc_fds, lwc_syscall_on_a_shared_slot, .timeout = 60)
{
	struct lwc_msg in;
	int p[2];
	ENTER();
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(dup2(p[1], 50), 50);
	struct lwc_rspec s[2] = {
		{ .flags = LWC_FILES | LWC_UNMAP, .u.fds = { -1, -1 } }, /* no copy of the pipe's ends */
		{ .flags = LWC_FILES | LWC_SHARE, .u.fds = { 50, 50 } },
	};
	int c = lwc_create(s, 2, 0, &in);
	if (c == LWC_SWITCHED) {
		long v[1] = { is_open(50) };
		lwc_switch_discard(in.src, v, 1);
	}
	cr_assert_geq(c, 0);
	long a[6] = { 50 };
	cr_expect_eq(lwc_syscall(c, LWC_FILES, SYS_close, a), 0, "close(50) in the child's table");
	errno = 0;
	cr_expect(!is_open(50) && errno == EBADF, "the shared slot is closed in the caller's table too");
	close(p[1]);
	char b;
	cr_expect_eq(read(p[0], &b, 1), 0, "EOF: no host descriptor for the write end is left");
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0, "closed in the child's table");
	lwc_close(c);
}
