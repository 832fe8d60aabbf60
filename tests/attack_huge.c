/* Attacks by size: mappings of TiBs must cost what is touched, not their length (no vCPU stall). */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

#define TIB (1UL << 40)
#define GIB (1UL << 30)

static long pool(long what)
{
	return syscall(VMLWC_SYS_POOL, what);
}

/* Page-table pages and pool frames the library holds: what building tables would consume. */
static long held(void)
{
	return pool(VMLWC_POOL_PT_PAGES) + pool(VMLWC_POOL_IN_USE);
}

/*
 * The largest of 64, 32, 16, 8 TiB the host can place (Criterion maps its arenas at random
 * addresses, which can leave no 64 TiB gap); sizes below 1 TiB would not be an attack.
 */
static uint64_t huge_size(void)
{
	for (uint64_t s = 64 * TIB; s >= 8 * TIB; s /= 2) {
		void *p = mmap(NULL, s, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED) {
			munmap(p, s);
			return s;
		}
	}
	cr_assert_fail("the host cannot place 8 TiB of address space");
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Each call below once kept the vCPU busy for seconds to minutes (~10 ms per GiB): every page
 * got its entry. Now each whole GiB is one lazy entry and only the partial GiBs at the ends are
 * built at once (at most 2 x 512 leaf tables, whatever the length), and the time is bounded by
 * what the calls touch. The time bound (10 s on any
 * platform, for what is a few exits) only catches the stall; the table count is the real check.
 */
#define CHEAP(what, expr)                                                                        \
	do {                                                                                     \
		long h0_ = held();                                                               \
		double t0_ = now_s();                                                            \
		expr;                                                                            \
		double dt_ = now_s() - t0_;                                                      \
		long dh_ = held() - h0_;                                                         \
		cr_expect_leq(dh_, 1100, "%s: %ld table pages and frames more", what, dh_);       \
		cr_expect_lt(dt_, 10.0, "%s took %.1f s", what, dt_);                              \
	} while (0)

Test(attack_huge, mmap_64_tib_read_write_costs_what_is_touched, .timeout = 300)
{
	uint64_t S = huge_size();
	char *p = MAP_FAILED;

	ENTER();
	CHEAP("mmap of TiBs read-write",
	      p = mmap(NULL, S, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
	cr_assert_neq(p, MAP_FAILED, "mmap %lu TiB: %s", S / TIB, strerror(errno));
	/* pages far apart work as memory: zeros first, then what was written */
	const uint64_t offs[] = { 0, 4096, 3 * GIB + 12345, S / 2 + 7, S - 8 };
	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		cr_expect_eq(p[offs[i]], 0, "fresh byte at +%#lx", offs[i]);
		p[offs[i]] = (char)(i + 1);
	}
	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		cr_expect_eq(p[offs[i]], (char)(i + 1), "byte at +%#lx", offs[i]);
	/* the host reads and writes it too (a syscall's buffer far inside) */
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], p + S / 2 + 7, 1), 1);
	cr_assert_eq(read(fds[0], p + S / 4 * 3, 1), 1);
	cr_expect_eq(p[S / 4 * 3], 4);
	CHEAP("mprotect all read-only", cr_assert_eq(mprotect(p, S, PROT_READ), 0));
	cr_expect_eq(p[S / 2 + 7], 4);
	CHEAP("mprotect all back", cr_assert_eq(mprotect(p, S, PROT_READ | PROT_WRITE), 0));
	p[S / 8 * 5] = 9;
	CHEAP("munmap all", cr_assert_eq(munmap(p, S), 0));
}

static char *volatile huge;
static volatile uint64_t huge_len;

Test(attack_huge, prot_none_munmap_and_mremap_cost_what_is_touched, .timeout = 300)
{
	uint64_t S = huge_size();
	char *p = MAP_FAILED, *q = MAP_FAILED;

	ENTER();
	CHEAP("mmap of TiBs PROT_NONE",
	      p = mmap(NULL, S, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
	cr_assert_neq(p, MAP_FAILED, "mmap %lu TiB PROT_NONE: %s", S / TIB, strerror(errno));
	CHEAP("mprotect 1 GiB of it", cr_assert_eq(mprotect(p + 5 * GIB, GIB, PROT_READ | PROT_WRITE), 0));
	p[5 * GIB + 100] = 5;
	CHEAP("munmap all of it", cr_assert_eq(munmap(p, S), 0));
	CHEAP("mmap 2 TiB",
	      q = mmap(NULL, 2 * TIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
	cr_assert_neq(q, MAP_FAILED);
	q[TIB] = 7;
	CHEAP("mremap 2 TiB to TiBs", q = mremap(q, 2 * TIB, S / 2, MREMAP_MAYMOVE));
	cr_assert_neq(q, MAP_FAILED, "mremap: %s", strerror(errno));
	cr_expect_eq(q[TIB], 7, "contents move with the mapping");
	q[S / 2 - TIB] = 8;
	cr_expect_eq(q[S / 2 - TIB], 8);
	CHEAP("mremap TiBs to 1 TiB", q = mremap(q, S / 2, TIB, 0));
	cr_assert_neq(q, MAP_FAILED, "mremap shrink: %s", strerror(errno));
	huge = q + TIB - 4096;
	cr_expect_eq(*huge, 0);
	CHEAP("munmap 1 TiB", cr_assert_eq(munmap(q, TIB), 0));
}

/*
 * While other lwCs exist: lwc_create copies a 64 TiB lazy mapping as it is (copy-on-write in both),
 * the child sees what the creator wrote before and not after, and the creator's 32 TiB munmap
 * leaves the child's snapshot alone.
 */
Test(attack_huge, lazy_mapping_across_lwc_create_and_munmap, .timeout = 300)
{
	uint64_t S = huge_size();
	struct lwc_msg in;
	char *p = MAP_FAILED;
	int c = -1;

	ENTER();
	p = mmap(NULL, S, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	p[TIB] = 1;
	huge = p;
	huge_len = S;
	CHEAP("lwc_create over TiBs", c = lwc_create(NULL, 0, 0, &in));
	if (c == LWC_SWITCHED) {
		for (;;) {
			long r[4] = { huge[TIB], huge[huge_len / 8 * 5], huge[huge_len / 4 * 3], huge[huge_len / 8 * 5 + (6UL << 20)] };
			huge[huge_len / 4 * 3] = 6; /* its own copy */
			lwc_switch(in.src, r, 4, &in);
		}
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	p[TIB] = 2;
	p[S / 8 * 5] = 3;
	/* a page whose tables only the creator has built (by reading it), the child's still lazy:
	   the creator's write then copies on write where tables are at hand (the stub, under EPT/NPT) */
	volatile char rd = p[S / 8 * 5 + (6UL << 20)];
	(void)rd;
	p[S / 8 * 5 + (6UL << 20)] = 4;
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "the child's snapshot holds the write made before lwc_create");
	cr_expect_eq(in.args[1], 0, "the creator's later write stays its own");
	cr_expect_eq(in.args[2], 0);
	cr_expect_eq(in.args[3], 0, "the creator's write to a page the child maps lazily stays its own");
	cr_expect_eq(p[S / 4 * 3], 0, "the child's write stays its own");
	CHEAP("munmap half with two lwCs", cr_assert_eq(munmap(p + S / 2, S / 2), 0));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1);
	cr_expect_eq(in.args[2], 6, "the child keeps its view of what the creator unmapped");
	CHEAP("munmap the rest", cr_assert_eq(munmap(p, S / 2), 0));
	cr_assert_eq(lwc_close(c), 0);
}
