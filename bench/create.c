/* bench/create: lwc_create + first switch against fork+exit+wait, by memory touched; COW fault and host copy-out costs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "vmlwc.h"
#include "vmlwc_abi.h"

static char *mem;
static size_t mem_len;

static void op_fork(void *a)
{
	(void)a;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
}

static long pool(long what)
{
	return syscall(VMLWC_SYS_POOL, what);
}

/* Page-table pages one lwc_create allocates (arena pages, or pool frames with lazy tables). */
static long create_tables(void)
{
	struct lwc_msg in;
	long before = pool(VMLWC_POOL_PT_PAGES) + pool(VMLWC_POOL_IN_USE);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0);
	long after = pool(VMLWC_POOL_PT_PAGES) + pool(VMLWC_POOL_IN_USE);
	lwc_close(c);
	return after - before;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * The first write a fresh child makes in a 2 MiB region it has not written (its tables still
 * shared with the creator), and a second write in the same region: medians over n creates.
 */
static void first_write(int n, double *first_ns, double *second_ns, double *copies)
{
	uint64_t *a = calloc((size_t)n, sizeof(*a)), *b = calloc((size_t)n, sizeof(*b));
	long c0 = pool(VMLWC_POOL_TABLE_COPIES), c1;
	for (int i = 0; i < n; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			/* the last 2 MiB of the mapping: no child wrote there (inside it in every mode) */
			volatile char *p = mem + mem_len - (2UL << 20);
			uint64_t t0 = bench_now_ns();
			p[0] = 1;
			uint64_t t1 = bench_now_ns();
			p[4096] = 1;
			uint64_t t2 = bench_now_ns();
			long r[2] = { (long)(t1 - t0), (long)(t2 - t1) };
			lwc_switch_discard(in.src, r, 2);
		}
		lwc_switch(c, NULL, 0, &in);
		a[i] = (uint64_t)in.args[0];
		b[i] = (uint64_t)in.args[1];
		lwc_close(c);
	}
	c1 = pool(VMLWC_POOL_TABLE_COPIES);
	qsort(a, (size_t)n, sizeof(*a), cmp_u64);
	qsort(b, (size_t)n, sizeof(*b), cmp_u64);
	*first_ns = (double)a[n / 2];
	*second_ns = (double)b[n / 2];
	*copies = (double)(c1 - c0) / n;
	free(a);
	free(b);
}

#define COPYOUT (1UL << 20)

static int zero_fd;

static void op_pread(void *a)
{
	(void)a;
	if (pread(zero_fd, mem, COPYOUT, 0) != (ssize_t)COPYOUT)
		abort();
}

/*
 * A host write into a child's copy-on-write buffer: pread of 1 MiB from /dev/zero in a fresh
 * child each time (the host breaks every page: its table transactions are what this measures).
 * The median time, and the mean exits to user space and table pages allocated per call.
 */
static void copyout_child(int reps, double *ns, double *exits, double *tables)
{
	uint64_t t[64];
	long ex = 0, tb = 0;

	if (reps > 64)
		reps = 64;
	memset(mem, 5, COPYOUT);
	for (int i = 0; i < reps; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED) {
			struct vmlwc_stats a, z;
			long p0 = pool(VMLWC_POOL_PT_ALLOCS);
			vmlwc_stats(&a);
			uint64_t t0 = bench_now_ns();
			long r = pread(zero_fd, mem, COPYOUT, 0);
			uint64_t d = bench_now_ns() - t0;
			vmlwc_stats(&z);
			long v[4] = { (long)d, (long)(z.vm_exits - a.vm_exits - 1), pool(VMLWC_POOL_PT_ALLOCS) - p0, r };
			lwc_switch_discard(in.src, v, 4);
		}
		if (c < 0 || lwc_switch(c, NULL, 0, &in) != LWC_SWITCHED || in.args[3] != (long)COPYOUT)
			abort();
		t[i] = (uint64_t)in.args[0];
		ex += in.args[1];
		tb += in.args[2];
		lwc_close(c);
	}
	qsort(t, (size_t)reps, sizeof(t[0]), cmp_u64);
	*ns = (double)t[reps / 2];
	*exits = (double)ex / reps;
	*tables = (double)tb / reps;
}

static void op_lwc(void *a)
{
	struct lwc_msg in;
	(void)a;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0);
	lwc_switch(c, NULL, 0, &in);
	lwc_close(c);
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	size_t sizes[] = { 1UL << 20, 64UL << 20, 512UL << 20, 1UL << 30 };
	int nsizes = quick ? 2 : 4;
	double fork_ns[4], lwc_ns[4];
	long tables[4];
	struct baselines b;
	struct vmlwc_stats s0, s1;

	bench_baselines(&b, 1);
	mem_len = sizes[nsizes - 1];
	mem = mmap(NULL, mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < nsizes; i++) {
		memset(mem, 1, sizes[i]);
		fork_ns[i] = bench_median(op_fork, NULL, 3, quick ? 3 : 7);
	}
	zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	double pread_native = bench_median(op_pread, NULL, 5, quick ? 3 : 7);
	munmap(mem, mem_len);
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-create: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	mem = mmap(NULL, mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < nsizes; i++) {
		memset(mem, 1, sizes[i]);
		lwc_ns[i] = bench_median(op_lwc, NULL, 3, quick ? 3 : 7);
		tables[i] = create_tables();
	}
	/* the cost structure of one cycle, at the largest size */
	int ncyc = quick ? 3 : 9;
	vmlwc_stats(&s0);
	for (int i = 0; i < ncyc; i++)
		op_lwc(NULL);
	vmlwc_stats(&s1);
	double cyc_exits = (double)(s1.vm_exits - s0.vm_exits - 1) / ncyc,
	       cyc_hv = (double)(s1.hv_exits - s0.hv_exits) / ncyc,
	       cyc_insns = (double)(s1.emulated_insns - s0.emulated_insns) / ncyc;
	long lazy = pool(VMLWC_POOL_LAZY);
	double co_ns, co_exits, co_tables;
	copyout_child(quick ? 5 : 15, &co_ns, &co_exits, &co_tables);
	double fw_first, fw_second, fw_copies;
	first_write(quick ? 11 : 101, &fw_first, &fw_second, &fw_copies);
	/* COW faults: in a child (frame from the pool) and in the root (copy-out) */
	struct lwc_msg in;
	int pages = quick ? 256 : 4096;
	memset(mem, 2, (size_t)pages * 4096);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		struct vmlwc_stats a, z;
		vmlwc_stats(&a);
		uint64_t t0 = bench_now_ns();
		for (int i = 0; i < pages; i++)
			mem[(size_t)i * 4096] = 3;
		uint64_t t = bench_now_ns() - t0;
		vmlwc_stats(&z);
		long r[5] = { (long)t, (long)(z.vm_exits - a.vm_exits - 1), (long)(z.emulated_insns - a.emulated_insns),
			      (long)(z.cow_faults - a.cow_faults), 0 };
		lwc_switch_discard(in.src, r, 5);
	}
	long copies0 = pool(VMLWC_POOL_TABLE_COPIES);
	lwc_switch(c, NULL, 0, &in);
	long child_ns = in.args[0], child_exits = in.args[1], child_insns = in.args[2], child_faults = in.args[3];
	long child_copies = pool(VMLWC_POOL_TABLE_COPIES) - copies0;
	vmlwc_stats(&s0);
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < pages; i++)
		mem[(size_t)i * 4096] = 4;
	uint64_t root_t = bench_now_ns() - t0;
	vmlwc_stats(&s1);

	bench_print_platform();
	bench_print_baselines(&b);
	long plat = pool(VMLWC_POOL_PLATFORM);
	printf("\npage tables at lwc_create: %s\n",
	       !lazy ? "copied whole (VMLWC_EAGER_TABLES=1)"
	       : (plat >= 0 && (plat & VMLWC_PLAT_HOST_COW)) ? "shared, copied by the host at the first write below"
							      : "shared, copied by the stub at the first write below");
	printf("%-12s %16s %22s %8s %14s\n", "touched", "fork+exit+wait", "lwc_create+switch+close", "ratio",
	       "tables/create");
	for (int i = 0; i < nsizes; i++)
		printf("%8zu MiB %13.1f us %19.1f us %8.2f %14ld\n", sizes[i] >> 20, fork_ns[i] / 1e3, lwc_ns[i] / 1e3,
		       fork_ns[i] / lwc_ns[i], tables[i]);
	printf("per lwc_create + first switch + close at %zu MiB: %.2f exits to user space, %.2f hypervisor exits, %.1f emulated insns\n",
	       sizes[nsizes - 1] >> 20, cyc_exits, cyc_hv, cyc_insns);
	printf("\ncopy-on-write fault in a child (pool frame): %.2f us, %.2f exits, %.1f emulated insns per fault (%ld faults, %ld shared tables copied)\n",
	       (double)child_ns / pages / 1e3, (double)child_exits / pages, (double)child_insns / pages, child_faults,
	       child_copies);
	printf("first write of a new child in a region of 1 page: %.2f us, then the next page: %.2f us (%.2f shared tables copied per child, its stack's included)\n",
	       fw_first / 1e3, fw_second / 1e3, fw_copies);
	printf("copy-on-write fault in the root (copy-out):  %.2f us, %.2f exits, %.1f emulated insns per fault (%lu faults)\n",
	       (double)root_t / pages / 1e3, (double)(s1.vm_exits - s0.vm_exits - 1) / pages,
	       (double)(s1.emulated_insns - s0.emulated_insns) / pages, (unsigned long)(s1.cow_faults - s0.cow_faults));
	printf("host write into a child's copy-on-write buffer (pread 1 MiB of /dev/zero, fresh child): %.1f us (native %.1f us), %.2f exits, %.1f page-table chunk pages allocated (0 where tables are pool frames)\n",
	       co_ns / 1e3, pread_native / 1e3, co_exits, co_tables);
	return 0;
}
