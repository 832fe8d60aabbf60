/* Memory syscalls per lwC: madvise, mremap and brk change the caller's view only. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

#define PG 4096

static char page[PG] __attribute__((aligned(PG)));

static int all_bytes(const char *p, size_t n, char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* A child's MADV_DONTNEED empties its own view; the creator keeps its data, and vice versa. */
Test(lwc_mem, madvise_dontneed_acts_on_the_callers_view, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	memset(page, 's', PG);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[4];
		r[0] = madvise(page, PG, MADV_DONTNEED);
		r[1] = all_bytes(page, PG, 0);
		page[0] = 'c';
		r[2] = page[0] == 'c';
		lwc_switch(in.src, r, 3, &in);
		long r2[1] = { page[0] == 'c' && all_bytes(page + 1, PG - 1, 0) };
		lwc_switch_discard(in.src, r2, 1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0, "madvise in the child");
	cr_expect_eq(in.args[1], 1, "the child's view reads zeros after MADV_DONTNEED");
	cr_expect_eq(in.args[2], 1, "and is writable");
	cr_expect(all_bytes(page, PG, 's'), "the creator's page is untouched");
	/* the root's own DONTNEED: its view zeroes, the child's snapshot stays */
	struct lwc_msg in3;
	int d = lwc_create(NULL, 0, 0, &in3);
	if (d == LWC_SWITCHED) {
		long r[1] = { all_bytes(page, PG, 's') };
		lwc_switch_discard(in3.src, r, 1);
	}
	cr_assert_geq(d, 0);
	cr_expect_eq(madvise(page, PG, MADV_DONTNEED), 0);
	cr_expect(all_bytes(page, PG, 0), "the root reads zeros");
	cr_assert_eq(lwc_switch(d, NULL, 0, &in3), LWC_SWITCHED);
	cr_expect_eq(in3.args[0], 1, "the child created before keeps its snapshot");
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the first child's own page survived the root's DONTNEED");
	lwc_close(c);
	lwc_close(d);
}

/* Memory outside the caller's view is not its to advise on; poisoning is never allowed. */
Test(lwc_mem, madvise_outside_the_view_or_poison_refused, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	memset(page, 'k', PG);
	struct lwc_rspec s = { .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)page, (uintptr_t)page + PG } };
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		long r[4];
		errno = 0;
		r[0] = madvise(page, PG, MADV_DONTNEED);
		r[1] = errno;
		static char mine[PG] __attribute__((aligned(PG)));
		mine[0] = 1;
		errno = 0;
		r[2] = madvise(mine, PG, 100 /* MADV_HWPOISON */);
		r[3] = errno;
		lwc_switch_discard(in.src, r, 4);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], -1);
	cr_expect_eq(in.args[1], ENOMEM, "DONTNEED on an LWC_UNMAP range: ENOMEM, got %ld", in.args[1]);
	cr_expect_eq(in.args[2], -1);
	cr_expect_eq(in.args[3], EPERM, "MADV_HWPOISON: EPERM, got %ld", in.args[3]);
	cr_expect(all_bytes(page, PG, 'k'), "the creator's page survived");
	lwc_close(c);
}

/* mremap in a child: grows, moves and shrinks its view; the creator's mapping stays as it was. */
Test(lwc_mem, mremap_moves_the_childs_view_only, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	char *r = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(r, MAP_FAILED);
	memset(r, 'p', 4 * PG);
	char *block = mmap(r + 4 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long v[6] = { 0 };
		char *n = mremap(r, 4 * PG, 64 * PG, MREMAP_MAYMOVE);
		v[0] = n == MAP_FAILED ? -errno : (n != r || block == MAP_FAILED);
		if (n != MAP_FAILED) {
			v[1] = all_bytes(n, 4 * PG, 'p') && all_bytes(n + 4 * PG, 60 * PG, 0);
			memset(n, 'c', 64 * PG);
			int fd = open("/dev/null", O_WRONLY);
			errno = 0;
			v[2] = n != r ? (write(fd, r, 1) == -1 && errno == EFAULT) : 1; /* the old range left its view */
			close(fd);
			char *m = mremap(n, 64 * PG, 2 * PG, 0);
			v[3] = m == n && all_bytes(m, 2 * PG, 'c');
		}
		lwc_switch_discard(in.src, v, 4);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "mremap in the child: %ld", in.args[0]);
	cr_expect_eq(in.args[1], 1, "contents moved, the new tail zero");
	cr_expect_eq(in.args[2], 1, "the old range is gone from the child's view");
	cr_expect_eq(in.args[3], 1, "shrinking in place");
	cr_expect(all_bytes(r, 4 * PG, 'p'), "the creator's mapping is untouched");
	memset(r, 'q', 4 * PG);
	lwc_close(c);
	munmap(r, 4 * PG);
}

/* brk in a child: its own break and zeroed heap; the root's break and heap stay its own. */
Test(lwc_mem, brk_per_lwc, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	char *root_top = sbrk(0);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long v[3];
		char *p = sbrk(2 * PG);
		v[0] = (long)p;
		v[1] = p != (void *)-1 && all_bytes(p, 2 * PG, 0);
		if (p != (void *)-1)
			memset(p, 7, 2 * PG);
		lwc_switch(in.src, v, 2, &in);
		long w[1] = { all_bytes(p, 2 * PG, 7) && sbrk(0) == p + 2 * PG };
		lwc_switch_discard(in.src, w, 1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], (long)root_top, "the child's heap starts at the break it inherited");
	cr_expect_eq(in.args[1], 1, "new heap reads zeros");
	cr_expect_eq(sbrk(0), root_top, "the root's break did not move");
	char *mine = sbrk(PG);
	cr_assert_eq(mine, root_top);
	cr_expect(all_bytes(mine, PG, 0), "the root's new heap is zeros, not the child's data");
	memset(mine, 9, PG);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the child's heap kept its data and break");
	cr_expect(all_bytes(mine, PG, 9));
	lwc_close(c);
	sbrk(-PG);
}

/* mincore and msync about pages outside the caller's view: ENOMEM, as for unmapped memory; mlock: EPERM. */
Test(lwc_mem, range_calls_outside_the_view, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	memset(page, 'm', PG);
	struct lwc_rspec s = { .flags = LWC_MEM | LWC_UNMAP, .u.mem = { (uintptr_t)page, (uintptr_t)page + PG } };
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		static unsigned char vec[1];
		long r[5];
		errno = 0;
		r[0] = mincore(page, PG, vec) == -1 && errno == ENOMEM;
		errno = 0;
		r[1] = mlock(page, PG) == -1 && errno == EPERM; /* the root's alone, before any range check */
		errno = 0;
		r[2] = msync(page, PG, MS_ASYNC) == -1 && errno == ENOMEM;
		errno = 0;
		r[3] = madvise(page + PG, (size_t)-1, MADV_NORMAL) == -1 && errno == EINVAL;
		errno = 0;
		r[4] = mprotect(page + PG, (size_t)-1, PROT_READ) == -1 && errno == ENOMEM;
		lwc_switch_discard(in.src, r, 5);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "mincore on an LWC_UNMAP page");
	cr_expect_eq(in.args[1], 1, "mlock in a child: EPERM");
	cr_expect_eq(in.args[2], 1, "msync on an LWC_UNMAP page");
	cr_expect_eq(in.args[3], 1, "madvise with a length that wraps: EINVAL");
	cr_expect_eq(in.args[4], 1, "mprotect with a length that wraps: ENOMEM");
	lwc_close(c);
}

/* MADV_DONTNEED on a page shared on purpose (LWC_SHARE of a page an earlier child holds COW). */
Test(lwc_mem, madvise_dontneed_on_a_shared_page, .timeout = 60)
{
	static char sp[PG] __attribute__((aligned(PG)));
	struct lwc_msg in0, in1;
	ENTER();
	memset(sp, 'o', PG);
	int c0 = lwc_create(NULL, 0, 0, &in0);
	if (c0 == LWC_SWITCHED) {
		long v[1] = { all_bytes(sp, PG, 'o') };
		lwc_switch_discard(in0.src, v, 1);
	}
	cr_assert_geq(c0, 0);
	struct lwc_rspec s = { .flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)sp, (uintptr_t)sp + PG } };
	int c1 = lwc_create(&s, 1, 0, &in1);
	if (c1 == LWC_SWITCHED) {
		long v[2] = { madvise(sp, PG, MADV_DONTNEED), all_bytes(sp, PG, 0) };
		lwc_switch_discard(in1.src, v, 2);
	}
	cr_assert_geq(c1, 0);
	cr_assert_eq(lwc_switch(c1, NULL, 0, &in1), LWC_SWITCHED);
	cr_expect_eq(in1.args[0], 0);
	cr_expect_eq(in1.args[1], 1, "the caller reads zeros");
	cr_expect(all_bytes(sp, PG, 0), "the lwC sharing the page reads zeros too");
	cr_assert_eq(lwc_switch(c0, NULL, 0, &in0), LWC_SWITCHED);
	cr_expect_eq(in0.args[0], 1, "the earlier child's copy-on-write snapshot is untouched");
	lwc_close(c0);
	lwc_close(c1);
}

/* An LWC_SHARE range stays shared when either side creates another lwC later. */
Test(lwc_mem, shared_range_survives_a_later_create, .timeout = 60)
{
	struct lwc_msg in1, in2;
	ENTER();
	char *sh = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	sh[0] = 'a';
	struct lwc_rspec s = { .flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)sh, (uintptr_t)sh + PG } };
	int c1 = lwc_create(&s, 1, 0, &in1);
	if (c1 == LWC_SWITCHED) {
		for (;;) {
			long v[1] = { sh[0] };
			sh[1] = 'x';
			lwc_switch(in1.src, v, 1, &in1);
		}
	}
	cr_assert_geq(c1, 0);
	int c2 = lwc_create(NULL, 0, 0, &in2); /* a plain child of the root, later */
	if (c2 == LWC_SWITCHED) {
		long v[1] = { sh[0] };
		lwc_switch_discard(in2.src, v, 1);
	}
	cr_assert_geq(c2, 0);
	sh[0] = 'b';
	cr_assert_eq(lwc_switch(c1, NULL, 0, &in1), LWC_SWITCHED);
	cr_expect_eq(in1.args[0], 'b', "the root's write after the later create reaches the sharer (got %c)", (char)in1.args[0]);
	cr_expect_eq(sh[1], 'x', "and the sharer's write reaches the root");
	cr_assert_eq(lwc_switch(c2, NULL, 0, &in2), LWC_SWITCHED);
	lwc_close(c1);
	lwc_close(c2);
	munmap(sh, PG);
}

/*
 * MAP_FIXED anonymous memory over pages the creator still uses: the child's view gets zeros of
 * its own from the pool (also PROT_NONE, made writable later), and they go back on munmap.
 */
Test(lwc_mem, map_fixed_over_shared_memory_uses_the_pool, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	char *r = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(r, MAP_FAILED);
	memset(r, 'r', 8 * PG);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long v[5];
		long base = syscall(VMLWC_SYS_POOL, VMLWC_POOL_IN_USE);
		char *m = mmap(r, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		v[0] = m == r && all_bytes(m, 4 * PG, 0);
		memset(m, 'c', 4 * PG);
		char *n = mmap(r + 4 * PG, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		v[1] = n == r + 4 * PG && mprotect(n, PG, PROT_READ | PROT_WRITE) == 0 && all_bytes(n, PG, 0);
		n[0] = 'n';
		v[2] = syscall(VMLWC_SYS_POOL, VMLWC_POOL_IN_USE) - base; /* 5 frames of its own, at least */
		v[3] = munmap(r, 5 * PG);
		v[4] = syscall(VMLWC_SYS_POOL, VMLWC_POOL_IN_USE) - base;
		lwc_switch_discard(in.src, v, 5);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "zeros at the fixed address");
	cr_expect_eq(in.args[1], 1, "PROT_NONE then writable, zeros");
	cr_expect_geq(in.args[2], 5, "the new pages are pool frames: %ld", in.args[2]);
	cr_expect_eq(in.args[3], 0);
	cr_expect_leq(in.args[4], in.args[2] - 5, "munmap gave the 5 frames back (%ld left of %ld)", in.args[4], in.args[2]);
	cr_expect(all_bytes(r, 8 * PG, 'r'), "the creator's pages are untouched");
	lwc_close(c);
	munmap(r, 8 * PG);
}

/* MADV_DONTNEED on MAP_SHARED memory placed (MAP_FIXED) over pages another lwC uses: kept. */
Test(lwc_mem, madvise_dontneed_keeps_shared_mapping_contents, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	char *r = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(r, MAP_FAILED);
	r[0] = 'p';
	int c = lwc_create(NULL, 0, 0, &in); /* holds r's page */
	if (c == LWC_SWITCHED) {
		long v[1] = { r[0] };
		lwc_switch_discard(in.src, v, 1);
	}
	cr_assert_geq(c, 0);
	char *s = mmap(r, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(s, r);
	s[0] = 'z';
	cr_expect_eq(madvise(s, PG, MADV_DONTNEED), 0);
	cr_expect_eq(s[0], 'z', "shared memory keeps its contents after MADV_DONTNEED");
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 'p', "the child keeps the page it had");
	lwc_close(c);
}

static int to_native[2], from_native[2];
static char *native_map;

static void *native_mapper(void *arg)
{
	char b;
	(void)arg;
	if (read(to_native[0], &b, 1) != 1)
		return NULL;
	native_map = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (write(from_native[1], "m", 1) != 1)
		return NULL;
	return NULL;
}

/* With one lwC its view may not have caught up with memory a native thread mapped: madvise works. */
Test(lwc_mem, madvise_on_memory_a_native_thread_mapped, .timeout = 60)
{
	pthread_t th;
	char b;
	cr_assert_eq(pipe(to_native), 0);
	cr_assert_eq(pipe(from_native), 0);
	cr_assert_eq(native_thread_create(&th, native_mapper, NULL), 0);
	ENTER();
	cr_assert_eq(write(to_native[1], "g", 1), 1); /* the native thread maps after vmlwc_init */
	cr_assert_eq(read(from_native[0], &b, 1), 1);
	cr_assert_eq(b, 'm');
	cr_assert_neq(native_map, MAP_FAILED);
	cr_expect_eq(madvise(native_map, 4 * PG, MADV_WILLNEED), 0, "errno %d", errno);
	cr_expect_eq(madvise(native_map, 4 * PG, MADV_DONTNEED), 0, "errno %d", errno);
	native_map[0] = 1; /* and the lazy fill still works */
	cr_expect_eq(native_map[0], 1);
	pthread_join(th, NULL);
}
