/* Page tables at lwc_create: shared and copied on write (EPT/NPT), or copied whole (shadow paging). */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <sys/uio.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

#define PG 4096UL
#define MIB (1UL << 20)

static long pool(long what)
{
	return syscall(VMLWC_SYS_POOL, what);
}

/* Page-table pages in use: arena pages and, with lazy tables, pool frames. */
static long table_cost(void)
{
	return pool(VMLWC_POOL_PT_PAGES) + pool(VMLWC_POOL_IN_USE);
}

static char *touched(size_t bytes, char v)
{
	char *r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(r, MAP_FAILED);
	for (size_t o = 0; o < bytes; o += PG)
		r[o] = v;
	return r;
}

/* lwc_create's page-table work: constant with lazy tables, one copy per table page otherwise. */
Test(lwc_tables, create_cost_and_the_mode, .timeout = 120)
{
	struct lwc_msg in;
	long cost[2];
	ENTER();
	long lazy = pool(VMLWC_POOL_LAZY);
	cr_assert(lazy == 0 || lazy == 1);
	size_t sizes[2] = { 1 * MIB, 256 * MIB };
	for (int k = 0; k < 2; k++) {
		char *r = touched(sizes[k], 1);
		long before = table_cost();
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED)
			lwc_switch_discard(in.src, NULL, 0);
		cr_assert_geq(c, 0);
		cost[k] = table_cost() - before;
		cr_assert_eq(lwc_close(c), 0);
		munmap(r, sizes[k]);
	}
	if (lazy) {
		cr_expect_eq(cost[1], cost[0], "lazy tables: %ld table pages at 1 MiB, %ld at 256 MiB", cost[0], cost[1]);
		/* two new roots, and the paths the creator's own writes copied since (stack, TLS) */
		cr_expect_leq(cost[1], 16, "roots and a few paths, not copies: %ld", cost[1]);
	} else {
		/* 256 MiB more is about 128 more leaf tables in the child's copy (the creator's replaces its
		   old tree; the 1 MiB region's own table may or may not be back in the count) */
		cr_expect_geq(cost[1] - cost[0], 120, "eager tables: %ld at 1 MiB, %ld at 256 MiB", cost[0], cost[1]);
	}
}

/*
 * Isolation through shared tables: stub copies (writes), host copies (a syscall writing into a
 * page, mprotect, munmap, mmap MAP_FIXED), a grandchild, all in both directions.
 */
Test(lwc_tables, writes_below_shared_tables_stay_private, .timeout = 120)
{
	struct lwc_msg in;
	ENTER();
	size_t len = 8 * MIB;
	char *r = touched(len, 'a');
	int p[2];
	cr_assert_eq(pipe(p), 0);
	long copies0 = pool(VMLWC_POOL_TABLE_COPIES);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long v[8] = { 0 };
		r[0] = 'c';                            /* the stub copies the path */
		v[0] = read(p[0], r + 3 * MIB, 4) == 4; /* the host copies the path to write it */
		v[1] = mprotect(r + 5 * MIB, PG, PROT_READ) == 0;
		v[2] = munmap(r + 6 * MIB, PG) == 0;
		v[3] = mmap(r + 7 * MIB, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == r + 7 * MIB;
		r[7 * MIB] = 'm';
		struct lwc_msg gin;
		int g = lwc_create(NULL, 0, 0, &gin);
		if (g == LWC_SWITCHED) {
			long w[3] = { r[0] == 'c' && r[MIB] == 'a', 0, 0 };
			r[MIB] = 'g';
			r[0] = 'G';
			w[1] = r[3 * MIB] == 'p';
			lwc_switch_discard(gin.src, w, 3);
		}
		lwc_switch(g, NULL, 0, &gin);
		v[4] = gin.args[0] && gin.args[1];
		v[5] = r[0] == 'c' && r[MIB] == 'a';  /* the grandchild's writes stayed its own */
		v[6] = r[3 * MIB] == 'p' && r[7 * MIB] == 'm';
		lwc_close(g);
		lwc_switch(in.src, v, 7, &in);
		long x[1] = { r[2 * MIB] == 'a' && r[0] == 'c' };
		lwc_switch_discard(in.src, x, 1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(write(p[1], "pppp", 4), 4);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	for (int i = 0; i < 7; i++)
		cr_expect_eq(in.args[i], 1, "child check %d", i);
	cr_expect_eq(r[0], 'a', "the child's write is its own");
	cr_expect_eq(r[3 * MIB], 'a', "the child's read() landed in its own page");
	r[5 * MIB] = 'w';
	cr_expect_eq(r[5 * MIB], 'w', "the child's mprotect left the root writable");
	cr_expect_eq(r[6 * MIB], 'a', "the child's munmap left the root's page");
	cr_expect_eq(r[7 * MIB], 'a', "the child's MAP_FIXED left the root's page");
	for (size_t o = 0; o < len; o += PG)
		if (o != 5 * MIB && r[o] != 'a')
			cr_assert_fail("root page at +%zu changed to %c", o, r[o]);
	r[2 * MIB] = 'r';
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the root's write after the child's is not seen by the child");
	if (pool(VMLWC_POOL_LAZY))
		cr_expect_gt(pool(VMLWC_POOL_TABLE_COPIES), copies0, "shared tables were copied");
	lwc_close(c);
	munmap(r, len);
}

/*
 * A create with specs over tables the creator already shares with an earlier child: the
 * earlier child keeps its snapshot of the page the new child shares and of the one it lacks.
 */
Test(lwc_tables, specs_over_tables_shared_with_an_earlier_child, .timeout = 120)
{
	struct lwc_msg in1, in2;
	ENTER();
	char *r = touched(4 * MIB, 's');
	int c1 = lwc_create(NULL, 0, 0, &in1);
	if (c1 == LWC_SWITCHED) {
		for (;;) {
			long v[2] = { r[MIB], r[2 * MIB] };
			lwc_switch(in1.src, v, 2, &in1);
		}
	}
	cr_assert_geq(c1, 0);
	struct lwc_rspec s[2] = {
		{ .flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)r + MIB, (uintptr_t)r + MIB + PG } },
		{ .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)r + 2 * MIB, (uintptr_t)r + 2 * MIB + PG } },
	};
	int c2 = lwc_create(s, 2, 0, &in2);
	if (c2 == LWC_SWITCHED) {
		int fd = open("/dev/null", O_WRONLY);
		long v[2];
		errno = 0;
		v[0] = write(fd, r + 2 * MIB, 1) == -1 && errno == EFAULT;
		r[MIB] = 'x'; /* shared with the root, not with c1 */
		v[1] = r[3 * MIB] == 's';
		close(fd);
		lwc_switch_discard(in2.src, v, 2);
	}
	cr_assert_geq(c2, 0, "%s", strerror(errno));
	cr_assert_eq(lwc_switch(c2, NULL, 0, &in2), LWC_SWITCHED);
	cr_expect_eq(in2.args[0], 1, "the unmapped page is absent in c2");
	cr_expect_eq(in2.args[1], 1);
	cr_expect_eq(r[MIB], 'x', "c2's write to the shared page reaches the root");
	cr_assert_eq(lwc_switch(c1, NULL, 0, &in1), LWC_SWITCHED);
	cr_expect_eq(in1.args[0], 's', "c1 keeps its snapshot of the page c2 shares (got %c)", (char)in1.args[0]);
	cr_expect_eq(in1.args[1], 's', "and of the page c2 lacks");
	r[2 * MIB] = 'y';
	cr_assert_eq(lwc_switch(c1, NULL, 0, &in1), LWC_SWITCHED);
	cr_expect_eq(in1.args[1], 's', "the root's later write stays the root's");
	lwc_close(c1);
	lwc_close(c2);
}

/* 2000 create/write/close cycles on shared tables: frames and tables go back to the baseline. */
Test(lwc_tables, shared_tables_freed, .timeout = 300)
{
	static char buf[32 * 4096] __attribute__((aligned(4096)));
	ENTER();
	memset(buf, 1, sizeof(buf));
	long base = table_cost();
	for (int i = 0; i < 2000; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			struct lwc_msg gin;
			buf[(i * 4096) % sizeof(buf)] = 2;
			int g = lwc_create(NULL, 0, 0, &gin);
			if (g == LWC_SWITCHED) {
				buf[0] = 3;
				lwc_switch_discard(gin.src, NULL, 0);
			}
			lwc_switch(g, NULL, 0, &gin);
			lwc_close(g);
			lwc_switch_discard(in.src, NULL, 0);
		}
		cr_assert_geq(c, 0, "cycle %d: %s", i, strerror(errno));
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
		buf[4096 * (i % 32)] = 4;
		cr_assert_eq(lwc_close(c), 0);
	}
	cr_expect_eq(table_cost(), base, "tables and frames: %ld after, %ld before", table_cost(), base);
}

/*
 * mprotect below a shared table: the entry is recomputed after the table is copied (a frame
 * of the lwC's own, now also in the grandchild's table, must stay copy-on-write).
 */
Test(lwc_tables, mprotect_below_a_shared_table, .timeout = 60)
{
	static char x[PG] __attribute__((aligned(PG)));
	struct lwc_msg in;
	ENTER();
	x[0] = 'r';
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		struct lwc_msg gin;
		x[0] = 'a'; /* the child's own frame, one reference */
		mprotect(x, PG, PROT_READ); /* read-only: not marked copy-on-write when tables are copied */
		int g = lwc_create(NULL, 0, 0, &gin);
		if (g == LWC_SWITCHED) {
			long v[1] = { x[0] };
			lwc_switch_discard(gin.src, v, 1);
		}
		long r[3];
		r[0] = mprotect(x, PG, PROT_READ | PROT_WRITE);
		x[0] = 'b';
		lwc_switch(g, NULL, 0, &gin);
		r[1] = gin.args[0];
		r[2] = x[0];
		lwc_close(g);
		lwc_switch_discard(in.src, r, 3);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0);
	cr_expect_eq(in.args[1], 'a', "the grandchild sees its snapshot, got %c", (char)in.args[1]);
	cr_expect_eq(in.args[2], 'b');
	cr_expect_eq(x[0], 'r');
	lwc_close(c);
}

/*
 * lwc_overlay with LWC_SHARE of a page that the source shares with the root through a table:
 * the page is copy-on-write for the source, so the caller's writes reach neither of them.
 */
Test(lwc_tables, overlay_of_a_page_under_a_shared_table, .timeout = 60)
{
	struct lwc_msg in, in2;
	ENTER();
	/* a page alone in its leaf table: nobody writes near it after the creates */
	char *area = touched(4 * MIB, 0);
	char *pg = (char *)(((uintptr_t)area + 2 * MIB - 1) & ~(2 * MIB - 1));
	pg[0] = 'r';
	int s = lwc_create(NULL, 0, 0, &in);
	if (s == LWC_SWITCHED) {
		for (;;) {
			long v[1] = { pg[0] };
			lwc_switch(in.src, v, 1, &in);
		}
	}
	cr_assert_geq(s, 0);
	int c = lwc_create(NULL, 0, 0, &in2);
	if (c == LWC_SWITCHED) {
		struct lwc_rspec sp = { .flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)pg, (uintptr_t)pg + PG } };
		long r[2] = { lwc_overlay(s, &sp, 1), 0 };
		pg[0] = 'c';
		r[1] = pg[0];
		lwc_switch_discard(in2.src, r, 2);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in2), LWC_SWITCHED);
	cr_expect_eq(in2.args[0], 0, "lwc_overlay: %ld", in2.args[0]);
	cr_expect_eq(in2.args[1], 'c');
	cr_expect_eq(pg[0], 'r', "the caller's write reached the root");
	cr_assert_eq(lwc_switch(s, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 'r', "the caller's write reached the source, got %c", (char)in.args[0]);
	lwc_close(c);
	lwc_close(s);
}

static __attribute__((noinline)) void touch_stack(void)
{
	volatile char b[32768];
	memset((char *)b, 0, sizeof(b));
}

/*
 * lwc_create that runs out of frames half-way through its page tables (with lazy tables under
 * EPT/NPT they are pool frames, and a spec forces a walk down to the leaves: 8 tables) fails
 * with ENOMEM and gives back every frame it took. Where tables come from the page-table
 * chunks (copied whole, or shared under shadow paging) the create takes no frame and succeeds.
 */
static void create_near_exhaustion(void)
{
	struct vmlwc_config cfg = { .pool_bytes = 512 * PG };
	static char area[1024 * PG] __attribute__((aligned(PG)));
	struct lwc_msg in;
	if (vmlwc_init(&cfg) != 0)
		_exit(200);
	/* the pool runs out for tables only where lazy tables are pool frames (EPT/NPT) */
	long lazy = pool(VMLWC_POOL_TABLES_IN_POOL);
	memset(area, 1, sizeof(area));
	int c0 = lwc_create(NULL, 0, 0, &in);
	if (c0 != LWC_SWITCHED) {
		lwc_switch(c0, NULL, 0, &in); /* the work is the child's: its writes take frames */
		_exit(2);
	}
	touch_stack(); /* its stack and TLS pages are its own before the pool runs low */
	errno = 0;
	/* and the lazy binding of these calls has written their GOT entries (a copy each) */
	if (lwc_create(NULL, -1, 0, &in) != -1 || lwc_close(-1) != -1)
		_exit(9);
	/* lazy: fewer frames left than the 8 tables the create needs; whole copies take none,
	   but leave room for the creator's own copies while the new lwC shares its pages */
	int top = lazy ? 7 : 64, bottom = lazy ? 1 : 58;
	for (int k = top; k >= bottom; k--) {
		size_t i = 0;
		while (pool(VMLWC_POOL_IN_USE) < 512 - k && i < 1024)
			area[(i++) * PG] = 2; /* a copy-on-write frame each */
		if (pool(VMLWC_POOL_IN_USE) != 512 - k)
			_exit(8);
		long before = pool(VMLWC_POOL_IN_USE);
		struct lwc_rspec s = { .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)area, (uintptr_t)area + PG } };
		int c = lwc_create(&s, 1, 0, &in);
		if (c == LWC_SWITCHED)
			_exit(4);
		if (lazy && (c != -1 || errno != ENOMEM))
			_exit(5);
		if (!lazy && (c < 0 || lwc_close(c) != 0))
			_exit(6);
		if (pool(VMLWC_POOL_IN_USE) != before)
			_exit(10 + (k % 64)); /* frames lost */
	}
	_exit(0);
}

Test(lwc_tables, create_out_of_frames_gives_them_back, .timeout = 120)
{
	pid_t p = fork();
	int st = 0;
	if (p == 0)
		create_near_exhaustion();
	cr_assert_gt(p, 0);
	waitpid(p, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (exit %d; 5: not ENOMEM, 10+k: frames lost with k left)",
		  st, WEXITSTATUS(st));
}

/*
 * Page-table generations wrap (test hook: the counter starts 16 short of it): snapshots,
 * copy-on-write and mmap/munmap go on right across the wrap.
 */
static void across_the_wrap(void)
{
	static char data[8 * PG] __attribute__((aligned(PG)));
	struct lwc_msg in;
	if (vmlwc_init(NULL) != 0)
		_exit(200);
	memset(data, 'p', sizeof(data));
	for (int i = 0; i < 200; i++) {
		char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(2);
		m[0] = 'm';
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			long ok = data[(i % 8) * PG] == 'p' && m[0] == 'm';
			data[(i % 8) * PG] = 's';
			m[0] = 's';
			lwc_switch_discard(in.src, &ok, 1);
		}
		if (c < 0 || lwc_switch(c, NULL, 0, &in) != LWC_SWITCHED || in.args[0] != 1)
			_exit(3);
		if (data[(i % 8) * PG] != 'p' || m[0] != 'm')
			_exit(4); /* the session's writes reached the creator */
		if (lwc_close(c) != 0 || munmap(m, 4 * PG) != 0)
			_exit(5);
	}
	_exit(0);
}

Test(lwc_tables, generations_wrap, .timeout = 120)
{
	pid_t p = fork();
	int st = 0;
	if (p == 0) {
		setenv("VMLWC_TEST_HOOKS", "1", 1);
		setenv("VMLWC_TEST_GEN_START", "0xfffffff0", 1);
		across_the_wrap();
	}
	cr_assert_gt(p, 0);
	waitpid(p, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (exit %d)", st, WEXITSTATUS(st));
}

/* Pages i of [from, to) of p whose first and last bytes are mark + i % 26. */
static long pages_marked(const char *p, size_t from, size_t to, char mark)
{
	long ok = 0;

	for (size_t i = from; i < to; i++)
		ok += p[i * PG] == (char)(mark + i % 26) && p[i * PG + PG - 1] == (char)(mark + i % 26);
	return ok;
}

/* page i of p marked like pages_marked expects it */
static void pages_mark(char *p, size_t from, size_t to, char mark)
{
	for (size_t i = from; i < to; i++)
		p[i * PG] = p[i * PG + PG - 1] = (char)(mark + i % 26);
}

/*
 * One exit that retires more table pages of the running lwC than its vCPU's deferred list
 * holds (256): a child's 1 MiB preadv, one iovec a page, lands in copy-on-write pages, and the
 * host breaks them one iovec at a time, a transaction each, each retiring the path the one
 * before built (root down to the leaf table). (A single long buffer is broken in one
 * transaction: ua_translate's cow_break_range.) The pages beyond the list are freed in that exit
 * (VMLWC_POOL_FREED_AT_ONCE counts them). Afterwards memory reads right in the child and in
 * its creator, and each round ends with the table pages and frames of the one before.
 */
Test(lwc_tables, retired_tables_beyond_the_deferred_list, .timeout = 300)
{
	struct lwc_msg in;
	char path[] = "/tmp/vmlwc_retired_XXXXXX";
	size_t len = MIB, n = MIB / PG;
	long frames = 0, tables = 0;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(unlink(path), 0);
	for (size_t i = 0; i < n; i++) {
		char page[PG];
		memset(page, 'A' + i % 26, PG);
		cr_assert_eq(write(fd, page, PG), (ssize_t)PG);
	}
	ENTER();
	/* [0, 1 MiB) and [2 MiB, 3 MiB) stay as they are; the child reads the file into the middle */
	char *r = touched(3 * MIB, 0);
	pages_mark(r, 0, 3 * n, 'a');
	for (int round = 0; round < 3; round++) {
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			/* one iovec a page: each is translated (and its break committed) on its own, four
			   retired table pages a page; one long buffer would be a single transaction */
			static struct iovec iov[MIB / PG];
			for (size_t i = 0; i < n; i++)
				iov[i] = (struct iovec){ r + MIB + i * PG, PG };
			long v[5] = { 0 }, f0 = pool(VMLWC_POOL_FREED_AT_ONCE);
			v[0] = preadv(fd, iov, (int)n, 0);
			v[1] = pool(VMLWC_POOL_FREED_AT_ONCE) - f0;
			v[2] = pages_marked(r + MIB, 0, n, 'A');
			v[3] = pages_marked(r, 0, n, 'a');
			v[4] = pages_marked(r, 2 * n, 3 * n, 'a');
			lwc_switch_discard(in.src, v, 5);
		}
		cr_assert_geq(c, 0, "round %d: lwc_create: %s", round, strerror(errno));
		cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
		cr_expect_eq(in.args[0], (long)len, "round %d: preadv returned %ld", round, in.args[0]);
		cr_expect_gt(in.args[1], 0, "round %d: no retired page was freed in the exit: the deferred list never filled",
			     round);
		cr_log_info("round %d: %ld retired table pages freed in the preadv's exit", round, in.args[1]);
		cr_expect_eq(in.args[2], (long)n, "round %d: %ld of %zu pages read right in the child", round, in.args[2], n);
		cr_expect_eq(in.args[3] + in.args[4], 2 * (long)n, "round %d: the child's pages around the read changed",
			     round);
		cr_expect_eq(pages_marked(r, 0, 3 * n, 'a'), 3 * (long)n, "round %d: the creator's view changed", round);
		cr_assert_eq(lwc_close(c), 0);
		if (round == 0) {
			frames = pool(VMLWC_POOL_IN_USE);
			tables = pool(VMLWC_POOL_PT_PAGES);
			continue;
		}
		cr_expect_eq(pool(VMLWC_POOL_IN_USE), frames, "round %d: pool frames in use", round);
		cr_expect_eq(pool(VMLWC_POOL_PT_PAGES), tables, "round %d: table pages in use", round);
	}
	close(fd);
}

/*
 * A host write of 1 MiB into pages an lwC shares copy-on-write (its copy-on-write breaks are
 * one transaction: cow_break_range) stays the writer's: a child's pread leaves its creator's
 * pages as they were, and the root's pread (copy-out) leaves a child's. The pages around the
 * buffer keep their contents on both sides.
 */
Test(lwc_tables, long_host_writes_into_shared_pages_stay_private, .timeout = 300)
{
	struct lwc_msg in;
	char path[] = "/tmp/vmlwc_longwrite_XXXXXX";
	size_t n = MIB / PG;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(unlink(path), 0);
	for (size_t i = 0; i < n; i++) {
		char page[PG];
		memset(page, 'A' + i % 26, PG);
		cr_assert_eq(write(fd, page, PG), (ssize_t)PG);
	}
	ENTER();
	/* the file lands in [1 MiB, 2 MiB) of three */
	char *r = touched(3 * MIB, 0);
	pages_mark(r, 0, 3 * n, 'a');
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long v[3] = { pread(fd, r + MIB, MIB, 0), pages_marked(r + MIB, 0, n, 'A'),
			      pages_marked(r, 0, n, 'a') + pages_marked(r, 2 * n, 3 * n, 'a') };
		lwc_switch_discard(in.src, v, 3);
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], (long)MIB, "the child's pread returned %ld", in.args[0]);
	cr_expect_eq(in.args[1], (long)n, "%ld of %zu pages read right in the child", in.args[1], n);
	cr_expect_eq(in.args[2], 2 * (long)n, "the child's pages around the read changed");
	cr_expect_eq(pages_marked(r, 0, 3 * n, 'a'), 3 * (long)n, "the child's pread reached its creator's pages");
	cr_assert_eq(lwc_close(c), 0);

	/* the root writes: a child created before keeps the pages it was made with */
	c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long v[1] = { pages_marked(r, 0, 3 * n, 'a') };
		lwc_switch_discard(in.src, v, 1);
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	cr_expect_eq(pread(fd, r + MIB, MIB, 0), (long)MIB);
	cr_expect_eq(pages_marked(r + MIB, 0, n, 'A'), (long)n, "the root's pread");
	cr_expect_eq(pages_marked(r, 0, n, 'a') + pages_marked(r, 2 * n, 3 * n, 'a'), 2 * (long)n,
		     "the root's pages around its read changed");
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 3 * (long)n, "the root's pread reached its child's pages: %ld of %zu as created",
		     in.args[0], 3 * n);
	cr_assert_eq(lwc_close(c), 0);
	close(fd);
}

/* The paths this run is for, not others: the configuration's (tools/configs.sh), eager or lazy. */
Test(lwc_tables, platform_paths_are_the_configurations, .timeout = 60)
{
	ENTER();
	assert_expected_paths();
}
