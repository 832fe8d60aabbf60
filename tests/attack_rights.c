/* Attacks from a child lwC on its creator through descriptors: rights, lwc_syscall, traps. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

#define PG 4096
static char secret[PG] __attribute__((aligned(PG)));
static const char SECRET[] = "the creator's secret key";

/* A child created with LWC_UNMAP over the secret; it runs fn and reports fn's result. */
static long in_child_without_secret(long (*fn)(int creator), int flags)
{
	struct lwc_msg in;
	struct lwc_rspec hide = { .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)secret, (uintptr_t)secret + PG } };
	int c = lwc_create(&hide, 1, flags, &in);

	if (c == LWC_SWITCHED) {
		long r[1] = { fn(in.src) };
		lwc_switch_discard(in.src, r, 1);
		_exit(99);
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	lwc_close(c);
	return in.args[0];
}

/*
 * Whether the calling lwC can read the byte at p, without touching it: a write from it into a
 * pipe of its own copies it (EFAULT where nothing is mapped).
 */
static int readable(const void *p)
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	int r = write(fd[1], p, 1) == 1;
	close(fd[0]);
	close(fd[1]);
	return r;
}

/* 1: the secret leaked; 3: the overlay was refused but the range is mapped all the same */
static long overlay_back(int creator)
{
	struct lwc_rspec s = { .flags = LWC_MEM, .u.mem = { (uintptr_t)secret, (uintptr_t)secret + PG } };
	if (lwc_overlay(creator, &s, 1) == 0)
		return memcmp(secret, SECRET, sizeof(SECRET)) == 0 ? 1 : 2;
	long e = -errno;
	return readable(secret) ? 3 : e;
}

/* The child's descriptor for its creator carries the switch right only. */
Test(attack_rights, overlay_of_the_creator_refused, .timeout = 60)
{
	ENTER();
	strcpy(secret, SECRET);
	cr_expect_eq(in_child_without_secret(overlay_back, 0), -EPERM,
		     "the child overlaid the secret back (1: it read it, 3: refused but mapped)");
}

static int pipefd[2];

static long syscall_write_secret(int creator)
{
	long a[6] = { pipefd[1], (long)secret, sizeof(SECRET) };
	long r = lwc_syscall(creator, LWC_MEM, SYS_write, a);
	return r < 0 ? -errno : r;
}

Test(attack_rights, lwc_syscall_through_the_creator_refused, .timeout = 60)
{
	ENTER();
	strcpy(secret, SECRET);
	cr_assert_eq(pipe(pipefd), 0);
	cr_expect_eq(in_child_without_secret(syscall_write_secret, 0), -EPERM,
		     "the child ran write(secret) in its creator's memory");
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	char buf[64];
	cr_expect_eq(read(pipefd[0], buf, sizeof(buf)), -1, "the secret reached the pipe");
}

/*
 * The creator grants what it wants to: the syscall right for memory only, overlay of one page.
 * The page after the granted one holds "before" in the child's copy and "after" in the
 * creator's: a refused overlay of both pages must leave the child's own.
 */
static char shared_page[2 * PG] __attribute__((aligned(PG)));

static long use_grants(int creator)
{
	long a[6] = { pipefd[1], (long)shared_page, 4 };
	long r = 0;
	if (lwc_syscall(creator, LWC_MEM, SYS_write, a) != 4)
		r |= 1; /* granted: memory */
	if (lwc_syscall(creator, LWC_MEM | LWC_FILES, SYS_write, a) != -1 || errno != EPERM)
		r |= 2; /* not granted: files */
	struct lwc_rspec ok = { .flags = LWC_MEM, .u.mem = { (uintptr_t)shared_page, (uintptr_t)shared_page + PG } };
	if (lwc_overlay(creator, &ok, 1) != 0 || memcmp(shared_page, "open", 4))
		r |= 4; /* granted: that page */
	struct lwc_rspec no = { .flags = LWC_MEM, .u.mem = { (uintptr_t)secret, (uintptr_t)secret + PG } };
	if (lwc_overlay(creator, &no, 1) != -1 || errno != EPERM)
		r |= 8; /* not granted: the secret */
	if (readable(secret))
		r |= 32; /* refused, yet the secret is mapped */
	struct lwc_rspec wider = { .flags = LWC_MEM, .u.mem = { (uintptr_t)shared_page, (uintptr_t)shared_page + 2 * PG } };
	if (lwc_overlay(creator, &wider, 1) != -1 || errno != EPERM)
		r |= 16; /* one page more than granted */
	if (strcmp(shared_page + PG, "before") != 0)
		r |= 64; /* refused, yet the creator's next page is mapped */
	return r;
}

Test(attack_rights, grants_are_exact, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	strcpy(secret, SECRET);
	cr_assert_eq(pipe(pipefd), 0);
	struct lwc_rspec specs[3] = {
		{ .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)secret, (uintptr_t)secret + PG } },
		{ .flags = LWC_MEM | LWC_MAY_OVERLAY, .u.mem = { (uintptr_t)shared_page, (uintptr_t)shared_page + PG } },
		{ .flags = LWC_MEM | LWC_MAY_SYSCALL, .u.mem = { (uintptr_t)shared_page, (uintptr_t)shared_page + PG } },
	};
	strcpy(shared_page, "open");
	strcpy(shared_page + PG, "before");
	int c = lwc_create(specs, 3, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[1] = { use_grants(in.src) };
		lwc_switch_discard(in.src, r, 1);
	}
	cr_assert_geq(c, 0);
	strcpy(shared_page + PG, "after");
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0, "grant checks failed: mask %#lx (32: a refused overlay mapped the secret, "
		     "64: a refused overlay mapped the creator's next page)", in.args[0]);
	char buf[8];
	cr_expect_eq(read(pipefd[0], buf, 4), 4);
}

/* lwc_restrict removes any right, never adds one; copies made later inherit the result. */
Test(attack_rights, restrict_removes_and_copies_inherit, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	struct lwc_rspec sys_only = { .flags = LWC_FILES | LWC_MAY_SYSCALL, .u.fds = { -1, -1 } };
	cr_assert_eq(lwc_restrict(c, &sys_only, 1), 0);
	errno = 0;
	cr_expect_eq(lwc_switch(c, NULL, 0, &in), -1, "the switch right survived");
	cr_expect_eq(errno, EPERM);
	long a[6] = { 1, 0, 0 };
	cr_expect_eq(lwc_syscall(c, LWC_FILES, SYS_write, a), 0, "the kept syscall right");
	errno = 0;
	cr_expect_eq(lwc_syscall(c, LWC_MEM, SYS_getpid, a), -1);
	cr_expect_eq(errno, EPERM, "the memory syscall right survived");
	/* asking for more keeps no more */
	struct lwc_rspec all[2] = { { .flags = LWC_MAY_SWITCH },
				    { .flags = LWC_MEM | LWC_MAY_OVERLAY | LWC_MAY_SYSCALL, .u.mem = { 0x10000, 0x20000 } } };
	cr_assert_eq(lwc_restrict(c, all, 2), 0);
	errno = 0;
	cr_expect_eq(lwc_switch(c, NULL, 0, &in), -1, "lwc_restrict gave the switch right back");
	/* a copy made now, in a new child's table, is just as narrow */
	int d = lwc_create(NULL, 0, 0, &in);
	if (d == LWC_SWITCHED) {
		long r[2];
		errno = 0;
		r[0] = lwc_switch(c, NULL, 0, &in) == -1 && errno == EPERM;
		errno = 0;
		r[1] = lwc_syscall(c, LWC_MEM, SYS_getpid, a) == -1 && errno == EPERM;
		lwc_switch_discard(in.src, r, 2);
	}
	cr_assert_geq(d, 0);
	cr_assert_eq(lwc_switch(d, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the copy could switch");
	cr_expect_eq(in.args[1], 1, "the copy could run syscalls in memory");
}

/* lwc_syscall: the caller's own limit holds whatever it borrows. */
static long limited_borrow(int creator)
{
	const long allowed[] = { SYS_write, SYS_exit_group };
	if (lwc_limit_syscalls(allowed, 2) != 0)
		return -100;
	long a[6] = { (long)"/dev/null", O_RDONLY };
	long r = lwc_syscall(creator, 0, SYS_open, a);
	return r >= 0 ? r : -errno;
}

Test(attack_rights, limited_lwc_borrows_no_syscall, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	/* even holding every syscall right over its creator */
	struct lwc_rspec g[3] = { { .flags = LWC_MEM | LWC_MAY_SYSCALL, .u.mem = { 0x10000, 0x11000 } },
				  { .flags = LWC_FILES | LWC_MAY_SYSCALL, .u.fds = { -1, -1 } },
				  { .flags = LWC_CRED | LWC_MAY_SYSCALL } };
	int c = lwc_create(g, 3, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[1] = { limited_borrow(in.src) };
		lwc_switch_discard(in.src, r, 1);
	}
	cr_assert_geq(c, 0, "%s", strerror(errno));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], -EPERM, "a limited lwC ran open through lwc_syscall: %ld", in.args[0]);
}

/* lwc_syscall: the target's credentials only with LWC_CRED and the right for it. */
static char root_only[64];

static long dropped_borrow(int creator)
{
	if (syscall(SYS_setresuid, 65534, 65534, 65534) != 0) /* raw: glibc would signal every thread */
		return -100;
	long a[6] = { AT_FDCWD, (long)root_only, O_RDONLY };
	long r1 = lwc_syscall(creator, LWC_FILES, SYS_openat, a);
	long e1 = errno;
	long r2 = lwc_syscall(creator, LWC_FILES | LWC_CRED, SYS_openat, a);
	long e2 = errno;
	return (r1 == -1 && e1 == EACCES ? 1 : 0) | (r2 == -1 && e2 == EPERM ? 2 : 0);
}

Test(attack_rights, dropped_credentials_borrow_nothing, .timeout = 60)
{
	struct lwc_msg in;
	cr_assert_eq(geteuid(), 0, "this test runs as root (CI does)");
	strcpy(root_only, "/tmp/vmlwc-root-only-XXXXXX");
	int fd = mkstemp(root_only);
	cr_assert_geq(fd, 0);
	fchmod(fd, 0600);
	close(fd);
	ENTER();
	/* the child may run syscalls with its creator's descriptors, not with its credentials */
	struct lwc_rspec g = { .flags = LWC_FILES | LWC_MAY_SYSCALL, .u.fds = { -1, -1 } };
	int c = lwc_create(&g, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[1] = { dropped_borrow(in.src) };
		lwc_switch_discard(in.src, r, 1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	unlink(root_only);
	cr_expect_eq(in.args[0], 3, "uid 65534 opened a root-only file through its creator (%ld)", in.args[0]);
}

/* A trapped lwC: lwc_syscall on itself, and the lwCs it creates, all reach the monitor. */
static long trapped_tries(void)
{
	long a[6] = { 0 };
	int self = lwc_self();
	long r1 = lwc_syscall(self, LWC_MEM | LWC_FILES, SYS_getpid, a); /* to the monitor */
	struct lwc_msg in;
	int g = lwc_create(NULL, 0, 0, &in);
	if (g == LWC_SWITCHED) {
		long r2 = syscall(SYS_getppid); /* the grandchild's syscall: to the monitor too */
		long r[1] = { r2 };
		lwc_switch_discard(in.src, r, 1);
	}
	long r2 = -1;
	if (g >= 0 && lwc_switch(g, NULL, 0, &in) == LWC_SWITCHED)
		r2 = in.args[0];
	return (r1 == 4242 ? 1 : 0) | (r2 == 4343 ? 2 : 0);
}

Test(attack_rights, trapped_lwc_cannot_escape_its_monitor, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	int c = lwc_create(NULL, 0, LWC_TRAP_SYSCALL, &in);
	if (c == LWC_SWITCHED) {
		long r[1] = { trapped_tries() };
		lwc_switch_discard(in.src, r, 1);
	}
	cr_assert_geq(c, 0);
	int r = lwc_switch(c, NULL, 0, &in), seen_getpid = 0, seen_getppid = 0;
	while (r == LWC_SWITCHED && in.nargs == 7) {
		long back[1] = { -ENOSYS };
		if (in.args[0] == SYS_getpid) {
			seen_getpid++;
			back[0] = 4242;
		} else if (in.args[0] == SYS_getppid) {
			seen_getppid++;
			back[0] = 4343;
		}
		r = lwc_switch(in.src, back, 1, &in);
	}
	cr_assert_eq(r, LWC_SWITCHED);
	cr_expect_eq(seen_getpid, 1, "lwc_syscall(lwc_self()) bypassed the monitor");
	cr_expect_eq(seen_getppid, 1, "the trapped lwC's child was not trapped");
	cr_expect_eq(in.args[0], 3, "answers seen by the child: %#lx", in.args[0]);
}

/*
 * A descriptor the creator holds for itself (lwc_self) is copied into the child's table with
 * the rest: it must carry no more than the child's own descriptor for its creator.
 */
static volatile int self_desc = -1;

static long overlay_through_self(int creator)
{
	(void)creator;
	long a = overlay_back(self_desc);
	long b[6] = { pipefd[1], (long)secret, sizeof(SECRET) };
	long r = lwc_syscall(self_desc, LWC_MEM, SYS_write, b);
	return a == -EPERM && r < 0 && errno == EPERM ? -EPERM : a != -EPERM ? a : r;
}

Test(attack_rights, the_creators_self_descriptor_grants_nothing, .timeout = 60)
{
	ENTER();
	strcpy(secret, SECRET);
	cr_assert_eq(pipe(pipefd), 0);
	self_desc = lwc_self();
	cr_assert_geq(self_desc, 0);
	cr_expect_eq(in_child_without_secret(overlay_through_self, 0), -EPERM,
		     "the child used the creator's own descriptor for itself (1: overlay read the secret, "
		     "3: overlay refused but mapped)");
	/* the refused write must not have run anyway: nothing reached the pipe */
	char buf[64];
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	errno = 0;
	cr_expect_eq(read(pipefd[0], buf, sizeof(buf)), -1, "the secret reached the pipe through the self descriptor");
	cr_expect_eq(errno, EAGAIN);
}

/*
 * A trapped lwC waits for its monitor's answer: another lwC that holds a descriptor for it (a
 * later copy of the monitor's table) cannot answer in its place.
 */
static volatile int trapped_desc = -1;

Test(attack_rights, only_the_monitor_answers_a_trapped_syscall, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	int t = lwc_create(NULL, 0, LWC_TRAP_SYSCALL, &in);
	if (t == LWC_SWITCHED) {
		long r[1] = { syscall(SYS_getppid) };
		lwc_switch_discard(in.src, r, 1);
		_exit(9);
	}
	cr_assert_geq(t, 0);
	trapped_desc = t;
	cr_assert_eq(lwc_switch(t, NULL, 0, &in), LWC_SWITCHED);
	cr_assert_eq(in.nargs, 7, "the trapped lwC's getppid came to its monitor");
	int s = lwc_create(NULL, 0, 0, &in);
	if (s == LWC_SWITCHED) {
		long fake[1] = { 31337 };
		long r = lwc_switch(trapped_desc, fake, 1, &in);
		long res[1] = { r < 0 ? -errno : 0 };
		lwc_switch_discard(in.src, res, 1);
		_exit(9);
	}
	cr_assert_geq(s, 0);
	cr_assert_eq(lwc_switch(s, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], -EPERM, "another lwC answered the trapped syscall (%ld)", in.args[0]);
	long real[1] = { 4343 };
	cr_assert_eq(lwc_switch(t, real, 1, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 4343, "the trapped lwC got %ld", in.args[0]);
}
