/* Attacks on memory the lwC does not own: kernel-half addresses, the gate window, library memory. */
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static volatile uint64_t target;

static void write_target(void)
{
	*(volatile uint64_t *)target = 0x4141414141414141UL;
	_exit(0); /* the write went through */
}

static void read_target(void)
{
	volatile uint64_t x = *(volatile uint64_t *)target;
	(void)x;
	_exit(0);
}

/*
 * A ring-3 write to a present supervisor page faults with the same error code as a
 * copy-on-write fault (present, write, user): the fault path must refuse it before it walks
 * anything for it (the direct map uses large pages; the stub's walk once took them for tables).
 */
Test(attack_memory, kernel_half_writes_and_reads_fault, .timeout = 120)
{
	const uint64_t addrs[] = {
		VMLWC_PHYSMAP_KVA + VMLWC_LIB_GPA,               /* the direct map: stub image, tables */
		VMLWC_PHYSMAP_KVA + VMLWC_LIB_GPA + (4UL << 20), /* page-table chunks */
		VMLWC_STUB_KVA,                                  /* stub text */
		VMLWC_STUB_KVA + VMLWC_VCPU_AREA_OFF,            /* vCPU 0 area: GDT, TSS, kernel stack */
		0xffff800000000000UL,                            /* unmapped kernel half */
	};
	for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		target = addrs[i];
		int st = run_child(write_target);
		cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "write to %lx: status %#x", addrs[i], st);
		st = run_child(read_target);
		cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "read of %lx: status %#x", addrs[i], st);
	}
}

/* The same after lwc_create, when copy-on-write is live (the path that once walked for it). */
static void write_after_create(void)
{
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		write_target();
	lwc_switch(c, NULL, 0, &in);
	_exit(2);
}

Test(attack_memory, kernel_half_write_from_a_child_faults, .timeout = 60)
{
	target = VMLWC_PHYSMAP_KVA + VMLWC_LIB_GPA + (4UL << 20);
	int st = run_child(write_after_create);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
}

/* The gate window is the library's: its code and the lwC's own pages cannot be remapped. */
Test(attack_memory, gate_window_not_the_lwcs_to_remap, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	for (uint64_t va = VMLWC_GATE_VA; va < VMLWC_GATE_VA + VMLWC_GATE_PAGES * 4096UL; va += 4096) {
		void *p = mmap((void *)va, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		cr_expect_eq(p, MAP_FAILED, "MAP_FIXED over the gate window at %lx", va);
		cr_expect_eq(mprotect((void *)va, 4096, PROT_READ | PROT_WRITE | PROT_EXEC), -1, "mprotect %lx", va);
		cr_expect_eq(madvise((void *)va, 4096, MADV_DONTNEED), -1, "madvise %lx", va);
		munmap((void *)va, 4096); /* a hole in the lwC's view: nothing to unmap (0, as Linux says) */
	}
	/* the window still works: a switch needs every page of it */
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0);
	cr_assert_geq(c, 0);
	cr_expect_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
}

/* Ring 3 reads no switch table and writes neither the gate code nor its src map. */
Test(attack_memory, gate_window_pages_protected, .timeout = 60)
{
	const struct { uint64_t va; void (*fn)(void); const char *what; } t[] = {
		{ VMLWC_SWTAB_VA, read_target, "read of the switch table" },
		{ VMLWC_GATE_VA, write_target, "write to the gate code" },
		{ VMLWC_SRCMAP_VA, write_target, "write to the src map" },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		target = t[i].va;
		int st = run_child(t[i].fn);
		cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "%s: status %#x", t[i].what, st);
	}
}

/* An lwC spec over the gate window leaves it as it is: the child still has its own pages. */
Test(attack_memory, specs_over_the_gate_window_ignored, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	struct lwc_rspec s = { .flags = LWC_MEM | LWC_UNMAP, .u.mem = { VMLWC_GATE_VA, VMLWC_GATE_VA + VMLWC_GATE_PAGES * 4096UL } };
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0); /* needs its gate page and private pages */
	cr_assert_geq(c, 0);
	cr_expect_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	struct lwc_rspec share = { .flags = LWC_MEM | LWC_SHARE, .u.mem = { VMLWC_PRIV_VA, VMLWC_PRIV_VA + 4096 } };
	int d = lwc_create(&share, 1, 0, &in);
	if (d == LWC_SWITCHED) {
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(d, 0);
	cr_expect_eq(lwc_switch(d, NULL, 0, &in), LWC_SWITCHED, "a child whose private page was 'shared' still switches");
	cr_expect_eq(lwc_switch(d, NULL, 0, &in), LWC_SWITCHED);
}
