/* Light-weight contexts: create, switch, copy-on-write both ways, rollback, descriptors. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"
#include "vmlwc_abi.h"
#define VMLWC_SYS_POOL_NR VMLWC_SYS_POOL

static int counter = 1;

Test(lwc, create_switch_and_back, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	counter = 1;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		/* the child: it sees the state at creation, and the message of whoever came in */
		cr_assert_geq(in.src, 0, "a descriptor for the creator");
		cr_assert_eq(in.nargs, 2);
		cr_assert_eq(in.args[0], 7);
		cr_assert_eq(in.args[1], 8);
		cr_assert_eq(counter, 1, "child sees the value at creation, not the parent's later write");
		counter = 2;
		long back[1] = { counter * 100 };
		struct lwc_msg in2;
		int r = lwc_switch(in.src, back, 1, &in2);
		cr_assert_eq(r, LWC_SWITCHED);
		cr_assert_eq(counter, 2, "the child's own write survives a round trip");
		cr_assert_eq(in2.args[0], 99);
		lwc_switch_discard(in2.src, NULL, 0);
		cr_assert_fail("a discarded context must not resume");
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	counter = 10;
	long args[2] = { 7, 8 };
	int r = lwc_switch(c, args, 2, &in);
	cr_assert_eq(r, LWC_SWITCHED);
	cr_assert_eq(in.nargs, 1);
	cr_assert_eq(in.args[0], 200);
	cr_assert_eq(counter, 10, "the parent's value is untouched by the child's write");
	long more[1] = { 99 };
	r = lwc_switch(c, more, 1, &in);
	cr_assert_eq(r, LWC_SWITCHED);
	cr_assert_eq(counter, 10);
	cr_expect_eq(lwc_close(c), 0);
	errno = 0;
	cr_expect_eq(lwc_switch(c, NULL, 0, NULL), -1);
	cr_expect_eq(errno, EBADF);
}

Test(lwc, cow_heap_stack_mmap_both_ways, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	char *heap = malloc(1 << 20);
	char *map = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char stackbuf[4096];
	memset(heap, 'p', 1 << 20);
	memset(map, 'p', 4 << 20);
	memset((char *)stackbuf, 'p', sizeof(stackbuf));
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		int ok = heap[12345] == 'p' && map[3 << 20] == 'p' && stackbuf[100] == 'p';
		memset(heap, 'c', 1 << 20);
		memset(map, 'c', 4 << 20);
		memset((char *)stackbuf, 'c', sizeof(stackbuf));
		long res[1] = { ok };
		lwc_switch(in.src, res, 1, &in);
		/* second visit: the child's writes are still there, the parent's later ones are not */
		long res2[1] = { heap[5] == 'c' && map[5] == 'c' && stackbuf[5] == 'c' };
		lwc_switch_discard(in.src, res2, 1);
	}
	cr_assert_geq(c, 0);
	memset(heap, 'P', 1 << 20);
	memset(map, 'P', 4 << 20);
	memset((char *)stackbuf, 'P', sizeof(stackbuf));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "child saw the state at creation");
	cr_expect_eq(heap[77], 'P');
	cr_expect_eq(map[(4 << 20) - 1], 'P');
	cr_expect_eq(stackbuf[77], 'P');
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "child's private writes survived, parent's stayed out");
	cr_expect_eq(lwc_close(c), 0);
}

/*
 * Switches never leave the guest. Copy-on-write faults do not either where ring 0 runs natively
 * (VT-x, SVM); where it is emulated (PVM) the host copies, in exactly one exit per fault.
 */
Test(lwc, exits_per_switch_and_cow_fault, .timeout = 60)
{
	struct lwc_msg in;
	struct vmlwc_stats a, b, m;
	static char page[64 * 4096] __attribute__((aligned(4096)));
	ENTER();
	memset(page, 1, sizeof(page));
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED); /* warm: the child's first entry */
	long host_cow = syscall(VMLWC_SYS_POOL_NR, VMLWC_POOL_PLATFORM) & VMLWC_PLAT_HOST_COW;
	cr_assert_eq(vmlwc_stats(&a), 0);
	for (int i = 0; i < 200; i++)
		lwc_switch(c, NULL, 0, &in);
	cr_assert_eq(vmlwc_stats(&m), 0);
	for (int i = 0; i < 64; i++)
		page[i * 4096] = 2; /* 64 copy-on-write faults in the parent */
	cr_assert_eq(vmlwc_stats(&b), 0);
	cr_expect_eq(m.vm_exits - a.vm_exits, 1, "exits for 400 switches: %lu (only the vmlwc_stats call)",
		     (unsigned long)(m.vm_exits - a.vm_exits));
	cr_expect_eq(b.vm_exits - m.vm_exits, 1 + (host_cow ? 64 : 0), "exits for 64 COW faults: %lu (host COW: %ld)",
		     (unsigned long)(b.vm_exits - m.vm_exits), host_cow);
	cr_expect_geq(m.lwc_switches - a.lwc_switches, 400);
	cr_expect_eq(b.cow_faults - m.cow_faults, 64);
}

static long pool_frames(void)
{
	return syscall(VMLWC_SYS_POOL_NR, VMLWC_POOL_IN_USE);
}

/* The snapshot pattern: every session runs in a fresh copy of the pristine state. */
Test(lwc, rollback_1000_sessions, .timeout = 600)
{
	static char data[3 * 4096] = "pristine";
	volatile char stack[8192];
	ENTER();
	char *heap = malloc(256 * 1024);
	char *map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(heap, 'A', 256 * 1024);
	memset(map, 'A', 1 << 20);
	memset((char *)stack, 'A', sizeof(stack));
	long base = pool_frames();
	int ok = 0;
	for (int i = 0; i < 1000; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			long good = heap[0] == 'A' && heap[256 * 1024 - 1] == 'A' && map[0] == 'A' &&
				    map[(1 << 20) - 1] == 'A' && stack[0] == 'A' && stack[8191] == 'A' &&
				    strcmp(data, "pristine") == 0;
			memset(heap, 'X', 256 * 1024);
			memset(map, 'X', 1 << 20);
			memset((char *)stack, 'X', sizeof(stack));
			strcpy(data, "dirty");
			lwc_switch_discard(in.src, &good, 1);
			_exit(99); /* not reached */
		}
		cr_assert_geq(c, 0, "session %d: lwc_create: %s", i, strerror(errno));
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
		ok += in.args[0] == 1;
		cr_assert_eq(lwc_close(c), 0);
	}
	cr_expect_eq(ok, 1000, "%d of 1000 sessions started pristine", ok);
	cr_expect_eq(heap[100], 'A');
	cr_expect_eq(map[100], 'A');
	cr_expect_eq(stack[100], 'A');
	cr_expect_eq(pool_frames(), base, "pool frames: %ld after, %ld before", pool_frames(), base);
}

Test(lwc, shared_ranges_stay_shared_unmap_ranges_absent, .timeout = 60)
{
	ENTER();
	char *sh = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *ms = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	strcpy(sh, "before");
	strcpy(gone, "secret");
	struct lwc_rspec specs[2] = {
		{ .flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)sh, (uintptr_t)sh + 8192 } },
		{ .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)gone, (uintptr_t)gone + 4096 } },
	};
	struct lwc_msg in;
	int c = lwc_create(specs, 2, 0, &in);
	if (c == LWC_SWITCHED) {
		strcpy(sh, "from child");
		strcpy(ms, "child too");
		int p[2];
		long efault = pipe(p) == 0 && write(p[1], gone, 6) == -1 && errno == EFAULT;
		lwc_switch(in.src, &efault, 1, &in);
		*(volatile char *)gone = 1; /* an UNMAP range: SIGSEGV */
		_exit(98);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the unmapped range is EFAULT to the child's syscalls");
	cr_expect_str_eq(sh, "from child", "an LWC_SHARE range is shared");
	cr_expect_str_eq(ms, "child too", "MAP_SHARED memory stays shared");
	cr_expect_str_eq(gone, "secret");
}

static void touch_unmapped_in_child(void)
{
	char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct lwc_rspec s = { .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)gone, (uintptr_t)gone + 4096 } };
	struct lwc_msg in;
	gone[0] = 1;
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		*(volatile char *)gone = 2;
		_exit(97);
	}
	lwc_switch(c, NULL, 0, &in);
	_exit(96);
}

Test(lwc, unmap_range_sigsegv, .timeout = 60)
{
	int st = run_child(touch_unmapped_in_child);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
}

Test(lwc, descriptor_isolation_and_ebadf, .timeout = 120)
{
	ENTER();
	int before[1024], nb = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			before[nb++] = fd;
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		int mine = open("/dev/null", O_RDONLY);
		long args[2] = { mine, 0 };
		lwc_switch(in.src, args, 2, &in);
		/* the parent's new file (/dev/zero) is reachable under no number here */
		long seen = 0;
		for (int fd = 0; fd < 1024; fd++) {
			struct stat st;
			if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5))
				seen = 1;
		}
		long r[1] = { seen };
		lwc_switch_discard(in.src, r, 1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	int childs = (int)in.args[0];
	int found = 0;
	for (int fd = 0; fd < 1024; fd++) {
		if (fcntl(fd, F_GETFD) < 0)
			continue;
		int known = fd == c;
		for (int i = 0; i < nb; i++)
			known |= before[i] == fd;
		cr_expect(known || fd != childs, "the child's fd %d is visible in the parent", fd);
		found += !known;
	}
	cr_expect_eq(found, 0, "no descriptor appeared in the parent");
	int mine = open("/dev/zero", O_RDONLY);
	long a[1] = { mine };
	cr_assert_eq(lwc_switch(c, a, 1, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0, "the parent's fd is absent from the child");
	errno = 0;
	cr_expect_eq(lwc_switch(mine, NULL, 0, &in), -1, "a file is not an lwC");
	cr_expect_eq(errno, EBADF);
	errno = 0;
	cr_expect_eq(lwc_switch(777, NULL, 0, &in), -1);
	cr_expect_eq(errno, EBADF);
	errno = 0;
	cr_expect_eq(lwc_switch(-5, NULL, 0, &in), -1);
	cr_expect_eq(errno, EBADF);
	errno = 0;
	cr_expect_eq(lwc_close(mine), -1, "lwc_close on a file");
	cr_expect_eq(errno, EBADF);
	errno = 0;
	cr_expect_eq(read(c, a, 1), -1, "an lwC descriptor is not a file");
	cr_expect_eq(errno, EBADF);
}

/* Three lwCs in a ring: each keeps its memory and descriptors across switches. */
Test(lwc, ring_of_three_keeps_memory_and_fds, .timeout = 120)
{
	static long value;
	ENTER();
	int self = lwc_self();
	cr_assert_geq(self, 0);
	int ids[2];
	struct lwc_msg in;
	value = 100;
	for (int k = 0; k < 2; k++) {
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			/* child k: own value and own fd, then serve forever */
			value = 1000 * (k + 1);
			int fd = open("/dev/null", O_WRONLY);
			for (;;) {
				long r[2] = { value, write(fd, "x", 1) };
				value++;
				lwc_switch(in.src, r, 2, &in);
			}
		}
		cr_assert_geq(c, 0);
		ids[k] = c;
	}
	for (int round = 0; round < 20; round++) {
		for (int k = 0; k < 2; k++) {
			cr_assert_eq(lwc_switch(ids[k], NULL, 0, &in), LWC_SWITCHED);
			cr_expect_eq(in.args[0], 1000 * (k + 1) + round, "lwC %d round %d", k, round);
			cr_expect_eq(in.args[1], 1, "its descriptor still works");
		}
		cr_expect_eq(value, 100);
	}
}

/*
 * in->src in a new child is the descriptor its creation installed for the creator, even when the
 * child's table also got a lower copy of the creator's own descriptor (lwc_self) that the creator
 * had narrowed: the child must be able to switch back through in->src. Both narrowings: no right
 * left at all, and the overlay right only.
 */
Test(lwc, create_src_is_the_installed_descriptor_after_lwc_restrict, .timeout = 60)
{
	struct lwc_rspec overlay_only = { .flags = LWC_MEM | LWC_MAY_OVERLAY, .u.mem = { 0x10000, 0x20000 } };
	ENTER();
	int self = lwc_self();
	cr_assert_geq(self, 0);
	for (int k = 0; k < 2; k++) {
		struct lwc_msg in;
		cr_assert_eq(lwc_restrict(self, &overlay_only, k), 0, "lwc_restrict: %s", strerror(errno));
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			long r[2] = { 7, in.src };
			lwc_switch_discard(in.src, r, 2);
			cr_assert_fail("narrowing %d: switch back through in->src = %d (the creator's own copy is %d)"
				       " failed: %s", k, in.src, self, strerror(errno));
		}
		cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
		cr_expect_eq(in.args[0], 7);
		cr_expect_neq(in.args[1], self, "in->src is not the narrowed copy");
		cr_expect_eq(lwc_close(c), 0);
	}
}

Test(lwc, pool_returns_to_baseline_after_10000_create_close_cycles, .timeout = 600)
{
	static char buf[16 * 4096];
	ENTER();
	memset(buf, 1, sizeof(buf));
	long base = pool_frames();
	for (int i = 0; i < 10000; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			memset(buf, 2, sizeof(buf)); /* 16 private frames */
			lwc_switch_discard(in.src, NULL, 0);
		}
		cr_assert_geq(c, 0, "cycle %d: %s", i, strerror(errno));
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
		buf[i % sizeof(buf)] = 3; /* the parent copies out too, sometimes */
		cr_assert_eq(lwc_close(c), 0);
	}
	cr_expect_eq(pool_frames(), base, "pool frames: %ld after, %ld before", pool_frames(), base);
}

/* lwc_overlay maps another lwC's memory and descriptors in; lwc_restrict takes the right away. */
Test(lwc, overlay_permitted_then_restricted, .timeout = 60)
{
	static char page[4096] __attribute__((aligned(4096)));
	ENTER();
	strcpy(page, "parent");
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		strcpy(page, "child's copy");
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_str_eq(page, "parent");
	struct lwc_rspec s = { .flags = LWC_MEM, .u.mem = { (uintptr_t)page, (uintptr_t)page + 4096 } };
	cr_assert_eq(lwc_overlay(c, &s, 1), 0, "overlay: %s", strerror(errno));
	cr_expect_str_eq(page, "child's copy", "the child's page is now mapped in the parent");
	strcpy(page, "parent again");
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED); /* the child's view is its own */
	/* keep the switch right only (a spec without LWC_MAY_OVERLAY keeps no overlay right) */
	struct lwc_rspec keep_switch[2] = { { .flags = LWC_MEM, .u.mem = { (uintptr_t)page, (uintptr_t)page + 4096 } },
					    { .flags = LWC_MAY_SWITCH } };
	cr_assert_eq(lwc_restrict(c, keep_switch, 2), 0);
	errno = 0;
	cr_expect_eq(lwc_overlay(c, &s, 1), -1, "overlay after the right was removed");
	cr_expect_eq(errno, EPERM);
	errno = 0;
	cr_expect_eq(lwc_overlay(4242, &s, 1), -1);
	cr_expect_eq(errno, EBADF);
	cr_expect_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED, "switching is still allowed");
}

static void exhaust_pool(void)
{
	/* the pool also holds the page tables where they are shared lazily (EPT/NPT) */
	struct vmlwc_config cfg = { .pool_bytes = 256 * 4096 };
	static char buf[1024 * 4096] __attribute__((aligned(4096)));
	if (vmlwc_init(&cfg) != 0)
		_exit(200);
	memset(buf, 1, sizeof(buf));
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		for (int i = 0; i < 1024; i++)
			buf[i * 4096] = 2; /* 1024 copies from a 256-frame pool */
		_exit(0);
	}
	lwc_switch(c, NULL, 0, &in);
	_exit(1);
}

static __attribute__((noinline)) void touch_stack(void)
{
	volatile char b[32768];
	memset((char *)b, 0, sizeof(b));
}

/* In a child lwC: use frames until the pool is empty, then lwc_create must say ENOMEM. */
static void exhaust_then_create(void)
{
	struct vmlwc_config cfg = { .pool_bytes = 256 * 4096 };
	static char buf[1024 * 4096] __attribute__((aligned(4096)));
	if (vmlwc_init(&cfg) != 0)
		_exit(200);
	memset(buf, 1, sizeof(buf));
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		touch_stack(); /* stack pages the calls below use get their copies now */
		errno = 0; /* and the TLS page errno lives in */
		int i = 0;
		while (pool_frames() < 256 && i < 1024)
			buf[(i++) * 4096] = 2;
		int r = lwc_create(NULL, 0, 0, &in);
		_exit(r == -1 && errno == ENOMEM ? 42 : 43);
	}
	lwc_switch(c, NULL, 0, &in);
	_exit(1);
}

Test(lwc, exhausted_pool_sigbus_and_enomem, .timeout = 60)
{
	pid_t p = fork();
	int st;
	if (p == 0)
		exhaust_pool();
	waitpid(p, &st, 0);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "a COW fault with no frame: status %#x", st);
	/*
	 * With the pool empty the child dies at its next copy-on-write fault, so the result of
	 * lwc_create is read from the trace: the host's answer to the call.
	 */
	char path[] = "/tmp/vmlwc-pool-XXXXXX", log[65536];
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	p = fork();
	if (p == 0) {
		setenv("VMLWC_TRACE", "1", 1);
		dup2(fd, 2);
		exhaust_then_create();
	}
	waitpid(p, &st, 0);
	ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
	log[n > 0 ? n : 0] = 0;
	unlink(path);
	cr_expect(!(WIFEXITED(st) && WEXITSTATUS(st) == 43), "lwc_create did not fail with ENOMEM");
	cr_expect(strstr(log, "lwC call 1(0x0, 0x0, 0x0) = -12") != NULL, "no ENOMEM for lwc_create:\n%s", log);
}

/* A page still copy-on-write from an earlier create is shared for real with LWC_SHARE. */
Test(lwc, share_of_a_cow_page, .timeout = 60)
{
	static char page[4096] __attribute__((aligned(4096)));
	ENTER();
	strcpy(page, "v1");
	struct lwc_msg in;
	int first = lwc_create(NULL, 0, 0, &in); /* page is copy-on-write now */
	if (first == LWC_SWITCHED)
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	cr_assert_geq(first, 0);
	struct lwc_rspec s = { .flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)page, (uintptr_t)page + 4096 } };
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		strcpy(page, "from the sharer");
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_str_eq(page, "from the sharer");
	strcpy(page, "back");
	cr_assert_eq(lwc_switch(first, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_str_eq(page, "back", "parent and sharer still share after the parent's write");
}

/*
 * Under shadow paging a freed page-table page is reused only after KVM dropped its shadows (its
 * chunk's memslot recycled, or the stub's scrub where KVM cannot zap one slot): prove the path
 * is taken and pages are reused, on every platform (the test hook forces shadow-paging rules).
 */
static long pool_q(long what)
{
	return syscall(VMLWC_SYS_POOL, what);
}

static void cycles_shadow_paging(void)
{
	static char buf[8 * 4096];
	setenv("VMLWC_TEST_HOOKS", "1", 1);
	setenv("VMLWC_TEST_SHADOW_PAGING", "1", 1);
	if (vmlwc_init(NULL) != 0)
		_exit(200);
	if (pool_q(VMLWC_POOL_TABLES_IN_POOL) != 0)
		_exit(11); /* the hook did not take: this would test two-dimensional paging */
	for (int i = 0; i < 1500; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			memset(buf, 2, sizeof(buf));
			lwc_switch_discard(in.src, NULL, 0);
		}
		if (c < 0 || lwc_switch(c, NULL, 0, &in) != LWC_SWITCHED || lwc_close(c) != 0)
			_exit(10);
	}
	long allocs = pool_q(VMLWC_POOL_PT_ALLOCS), touched = pool_q(VMLWC_POOL_PT_TOUCHED);
	long reclaimed = pool_q(VMLWC_POOL_PT_RECLAIMED);
	fprintf(stderr, "shadow-paging cycles: %ld table pages handed out, %ld distinct, %ld reclaimed\n",
		allocs, touched, reclaimed);
	if (allocs < 1500 * 2 || reclaimed < allocs / 2)
		_exit(12); /* every cycle frees its tables: most must have come back clean */
	if (touched * 4 > allocs)
		_exit(13); /* pages were not reused */
	_exit(0);
}

Test(lwc, page_tables_reused_after_kvm_drops_them_under_shadow_paging, .timeout = 600)
{
	pid_t p = fork();
	int st;
	if (p == 0)
		cycles_shadow_paging();
	waitpid(p, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (11: hook ignored, 10: a cycle failed, "
		  "12: pages not reclaimed, 13: pages not reused)", st);
}

/* FS and GS bases are per lwC: a child that moves them keeps them, the parent keeps its own. */
Test(lwc, fs_gs_base_per_lwc, .timeout = 60)
{
	static char area[2][4096] __attribute__((aligned(4096)));
	unsigned long fs0, gs0, fs, gs;
	ENTER();
	syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs0);
	syscall(SYS_arch_prctl, 0x1004 /* ARCH_GET_GS */, &gs0);
	*(unsigned long *)area[0] = 0x1234; /* before the create: the child's copy holds it */
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		/* no libc from here on in the child: TLS would move with FS */
		syscall(SYS_arch_prctl, 0x1001 /* ARCH_SET_GS */, (unsigned long)area[0]);
		for (;;) {
			unsigned long g;
			__asm__ volatile("movq %%gs:0, %0" : "=r"(g)); /* reads area[0] */
			long r[1] = { (long)g };
			lwc_switch(in.src, r, 1, &in);
		}
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	syscall(SYS_arch_prctl, 0x1003, &fs);
	syscall(SYS_arch_prctl, 0x1004, &gs);
	cr_expect_eq(fs, fs0);
	cr_expect_eq(gs, gs0, "the parent's GS base is its own (%lx, want %lx)", gs, gs0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0x1234, "the child's GS base came back with it");
}

/* lwc_limit_syscalls narrows for good, and for the lwCs created afterwards. */
static void limited_child(void)
{
	const long allowed[] = { SYS_read, SYS_write, SYS_close, SYS_exit_group };
	if (lwc_limit_syscalls(allowed, 4) != 0)
		_exit(10);
	errno = 0;
	if (open("/dev/null", O_RDONLY) != -1 || errno != EPERM)
		_exit(11);
	const long wider[] = { SYS_read, SYS_write, SYS_close, SYS_exit_group, SYS_open, SYS_openat };
	if (lwc_limit_syscalls(wider, 6) != 0)
		_exit(12);
	errno = 0;
	if (open("/dev/null", O_RDONLY) != -1 || errno != EPERM)
		_exit(13); /* widening did not widen */
	if (write(1, "", 0) != 0)
		_exit(14); /* what was allowed still works */
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		errno = 0;
		if (open("/dev/null", O_RDONLY) != -1 || errno != EPERM)
			_exit(15); /* the child is limited too */
		_exit(0);
	}
	if (c < 0)
		_exit(16);
	lwc_switch(c, NULL, 0, &in);
	_exit(17);
}

Test(lwc, limit_syscalls_cannot_widen_and_is_inherited, .timeout = 60)
{
	int st = run_child(limited_child);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (exit %d)", st, WEXITSTATUS(st));
}

/* A reference monitor: the sandboxed child's syscalls come to its creator, which decides. */
Test(lwc, trap_syscall_monitor_denies_open_runs_getppid_and_write, .timeout = 60)
{
	int p[2];
	ENTER();
	cr_assert_eq(pipe(p), 0);
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, LWC_TRAP_SYSCALL, &in);
	if (c == LWC_SWITCHED) {
		/* the sandbox: every syscall below goes to the monitor */
		long r1 = syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
		long e1 = errno;
		long r2 = syscall(SYS_getppid);
		long r3 = write(p[1], "sandboxed", 9);
		long res[4] = { r1, e1, r2, r3 };
		lwc_switch_discard(in.src, res, 4); /* an lwC call: never trapped */
	}
	cr_assert_geq(c, 0);
	int r = lwc_switch(c, NULL, 0, &in);
	int opens = 0, runs = 0;
	while (r == LWC_SWITCHED && in.nargs == 7) {
		long nr = in.args[0], result;
		if (nr == SYS_openat || nr == SYS_open) {
			result = -EACCES; /* policy: no files */
			opens++;
		} else {
			result = lwc_syscall(in.src, LWC_MEM | LWC_FILES, nr, &in.args[1]);
			if (result == -1)
				result = -errno;
			runs++;
		}
		long back[1] = { result };
		r = lwc_switch(in.src, back, 1, &in);
	}
	cr_assert_eq(r, LWC_SWITCHED);
	cr_assert_eq(in.nargs, 4, "the child's final report");
	cr_expect_eq(in.args[0], -1, "open denied (report %ld %ld %ld %ld)", in.args[0], in.args[1], in.args[2], in.args[3]);
	cr_expect_eq(in.args[1], EACCES);
	cr_expect_eq(in.args[2], getppid(), "getppid run through lwc_syscall");
	cr_expect_eq(in.args[3], 9, "write run through lwc_syscall");
	cr_expect_eq(opens, 1);
	cr_expect_geq(runs, 2);
	char buf[16] = { 0 };
	cr_expect_eq(read(p[0], buf, 9), 9);
	cr_expect_str_eq(buf, "sandboxed");
	/* lwc_syscall checks: a bad pointer in the target's space is EFAULT */
	long bad[6] = { p[1], 16, 4 };
	errno = 0;
	cr_expect_eq(lwc_syscall(c, LWC_MEM | LWC_FILES, SYS_write, bad), -1);
	cr_expect_eq(errno, EFAULT);
	errno = 0;
	cr_expect_eq(lwc_syscall(4242, LWC_MEM, SYS_getpid, bad), -1);
	cr_expect_eq(errno, EBADF);
}

/* The credential shadow: an lwC that drops to another uid loses root's files, for good. */
Test(lwc, credentials_per_lwc, .timeout = 60)
{
	char path[] = "/tmp/vmlwc-secret-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fchmod(fd, 0600), 0);
	close(fd);
	cr_assert_eq(geteuid(), 0, "this test runs as root (CI does)");
	ENTER();
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[6];
		/* raw syscalls: glibc's wrappers broadcast to the process's other (native) threads */
		r[0] = syscall(SYS_setresuid, 65534, 65534, 65534);
		r[1] = getuid();
		errno = 0;
		r[2] = open(path, O_RDONLY);
		r[3] = errno;
		errno = 0;
		r[4] = syscall(SYS_setuid, 0);
		r[5] = errno;
		lwc_switch(in.src, r, 6, &in);
		long again[2] = { geteuid(), open(path, O_RDONLY) };
		lwc_switch_discard(in.src, again, 2);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0, "the child drops to nobody");
	cr_expect_eq(in.args[1], 65534);
	cr_expect_eq(in.args[2], -1, "nobody cannot open root's 0600 file");
	cr_expect_eq(in.args[3], EACCES);
	cr_expect_eq(in.args[4], -1, "a dropped lwC cannot regain root");
	cr_expect_eq(in.args[5], EPERM);
	/* the parent is still root, and can */
	cr_expect_eq(getuid(), 0);
	int ok = open(path, O_RDONLY);
	cr_expect_geq(ok, 0, "root lwC opens it");
	close(ok);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 65534, "the child's shadow survived the switches");
	cr_expect_eq(in.args[1], -1);
	cr_expect_eq(getuid(), 0);
	unlink(path);
}

/* Without privilege, an lwC can only keep or drop among the ids the process already has. */
static void unprivileged_process(void)
{
	struct stat kvm;
	if (stat("/dev/kvm", &kvm) != 0)
		_exit(24);
	gid_t g = kvm.st_gid;
	chmod("/dev/kvm", kvm.st_mode | 0060); /* reachable through its group */
	if (setgroups(1, &g) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
		_exit(20); /* a process that is not root at all */
	prctl(PR_SET_DUMPABLE, 1); /* its own /proc/self again */
	if (vmlwc_init(NULL) != 0)
		_exit(200);
	errno = 0;
	if (syscall(SYS_setuid, 12345) != -1 || errno != EPERM)
		_exit(21); /* an id the process does not have */
	errno = 0;
	if (syscall(SYS_setgroups, 0, NULL) != -1 || errno != EPERM)
		_exit(22);
	if (getuid() != 65534)
		_exit(23);
	_exit(0);
}

Test(lwc, credentials_without_privilege_only_drop, .timeout = 60)
{
	struct stat kvm;
	cr_assert_eq(stat("/dev/kvm", &kvm), 0, "/dev/kvm is needed for this suite");
	pid_t p = fork();
	int st;
	if (p == 0)
		unprivileged_process();
	waitpid(p, &st, 0);
	chmod("/dev/kvm", kvm.st_mode & 07777); /* as it was */
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (exit %d)", st, WEXITSTATUS(st));
}

/* LWC_FILES | LWC_SHARE over the whole table: one table, seen by both. */
Test(lwc, shared_descriptor_table, .timeout = 60)
{
	ENTER();
	struct lwc_rspec s = { .flags = LWC_FILES | LWC_SHARE, .u.fds = { -1, -1 } };
	struct lwc_msg in;
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		long fd = open("/dev/zero", O_RDONLY);
		lwc_switch(in.src, &fd, 1, &in);
		/* the parent closed it in the shared table */
		long gone[1] = { fcntl((int)in.args[0], F_GETFD) == -1 && errno == EBADF };
		lwc_switch_discard(in.src, gone, 1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	int fd = (int)in.args[0];
	cr_assert_geq(fd, 0);
	char z = 1;
	cr_expect_eq(read(fd, &z, 1), 1, "the child's new descriptor works in the parent");
	cr_expect_eq(z, 0);
	cr_expect_eq(close(fd), 0);
	long a[1] = { fd };
	cr_assert_eq(lwc_switch(c, a, 1, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "closed for the child too");
	struct lwc_rspec part = { .flags = LWC_FILES | LWC_SHARE, .u.fds = { -1, 2 } };
	errno = 0;
	cr_expect_eq(lwc_create(&part, 1, 0, &in), -1, "a range from -1 that is not the whole table");
	cr_expect_eq(errno, EINVAL);
	cr_expect_eq(lwc_close(c), 0);
}

/* The paths this run is for, not others: the configuration's (tools/configs.sh), eager or lazy. */
Test(lwc, platform_paths_are_the_configurations, .timeout = 60)
{
	ENTER();
	assert_expected_paths();
}
