/* Attacks through CPU state across a switch: vector registers, TLS bases, stub addresses. */
#include <asm/prctl.h>
#include <cpuid.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static long platform(void)
{
	return syscall(VMLWC_SYS_POOL, VMLWC_POOL_PLATFORM);
}

#define KEY 0x5ec12e75ec12e75eUL

/*
 * A switch through the raw gate, with nothing but this code around it: xmm2-15 filled with
 * `fill` before, stored to out[28] right after it returns (in whichever lwC resumes here).
 */
static long raw_switch(long desc, uint64_t fill, uint64_t *out)
{
	long r;
	__asm__ volatile("movq %[fill], %%xmm2\n\t"
			 "pshufd $0x44, %%xmm2, %%xmm2\n\t"
			 "movdqa %%xmm2, %%xmm3\n\tmovdqa %%xmm2, %%xmm4\n\tmovdqa %%xmm2, %%xmm5\n\t"
			 "movdqa %%xmm2, %%xmm6\n\tmovdqa %%xmm2, %%xmm7\n\tmovdqa %%xmm2, %%xmm8\n\t"
			 "movdqa %%xmm2, %%xmm9\n\tmovdqa %%xmm2, %%xmm10\n\tmovdqa %%xmm2, %%xmm11\n\t"
			 "movdqa %%xmm2, %%xmm12\n\tmovdqa %%xmm2, %%xmm13\n\tmovdqa %%xmm2, %%xmm14\n\t"
			 "movdqa %%xmm2, %%xmm15\n\t"
			 "pushq %[out]\n\t"
			 "pushq %%rbx\n\tpushq %%rbp\n\tpushq %%r12\n\tpushq %%r13\n\tpushq %%r14\n\tpushq %%r15\n\t"
			 "movq $-2, %%rax\n\t"
			 "movq %[d], %%rdi\n\t"
			 "movl %[gate], %%r11d\n\t"
			 "call *%%r11\n\t"
			 "popq %%r15\n\tpopq %%r14\n\tpopq %%r13\n\tpopq %%r12\n\tpopq %%rbp\n\tpopq %%rbx\n\t"
			 "popq %%rcx\n\t"
			 "movdqu %%xmm2, 0(%%rcx)\n\tmovdqu %%xmm3, 16(%%rcx)\n\tmovdqu %%xmm4, 32(%%rcx)\n\t"
			 "movdqu %%xmm5, 48(%%rcx)\n\tmovdqu %%xmm6, 64(%%rcx)\n\tmovdqu %%xmm7, 80(%%rcx)\n\t"
			 "movdqu %%xmm8, 96(%%rcx)\n\tmovdqu %%xmm9, 112(%%rcx)\n\tmovdqu %%xmm10, 128(%%rcx)\n\t"
			 "movdqu %%xmm11, 144(%%rcx)\n\tmovdqu %%xmm12, 160(%%rcx)\n\tmovdqu %%xmm13, 176(%%rcx)\n\t"
			 "movdqu %%xmm14, 192(%%rcx)\n\tmovdqu %%xmm15, 208(%%rcx)"
			 : "=&a"(r) /* early: rax is set before the inputs are last used */
			 : [d] "r"(desc), [fill] "r"(fill), [out] "r"(out), [gate] "i"(VMLWC_GATE_VA + VMLWC_GATE_SW)
			 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "xmm2", "xmm3", "xmm4",
			   "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return r;
}

static int lanes(const uint64_t *v, uint64_t pattern)
{
	int n = 0;
	for (int i = 0; i < 28; i++)
		n += v[i] == pattern;
	return n;
}

/* The same around a raw syscall (a trapped lwC's): 28 lanes of `fill` before, out[] after. */
static long raw_syscall_keep(long nr, uint64_t fill, uint64_t *out)
{
	long r;
	__asm__ volatile("movq %[fill], %%xmm2\n\t"
			 "pshufd $0x44, %%xmm2, %%xmm2\n\t"
			 "movdqa %%xmm2, %%xmm3\n\tmovdqa %%xmm2, %%xmm4\n\tmovdqa %%xmm2, %%xmm5\n\t"
			 "movdqa %%xmm2, %%xmm6\n\tmovdqa %%xmm2, %%xmm7\n\tmovdqa %%xmm2, %%xmm8\n\t"
			 "movdqa %%xmm2, %%xmm9\n\tmovdqa %%xmm2, %%xmm10\n\tmovdqa %%xmm2, %%xmm11\n\t"
			 "movdqa %%xmm2, %%xmm12\n\tmovdqa %%xmm2, %%xmm13\n\tmovdqa %%xmm2, %%xmm14\n\t"
			 "movdqa %%xmm2, %%xmm15\n\t"
			 "syscall\n\t"
			 "movdqu %%xmm2, 0(%[out])\n\tmovdqu %%xmm3, 16(%[out])\n\tmovdqu %%xmm4, 32(%[out])\n\t"
			 "movdqu %%xmm5, 48(%[out])\n\tmovdqu %%xmm6, 64(%[out])\n\tmovdqu %%xmm7, 80(%[out])\n\t"
			 "movdqu %%xmm8, 96(%[out])\n\tmovdqu %%xmm9, 112(%[out])\n\tmovdqu %%xmm10, 128(%[out])\n\t"
			 "movdqu %%xmm11, 144(%[out])\n\tmovdqu %%xmm12, 160(%[out])\n\tmovdqu %%xmm13, 176(%[out])\n\t"
			 "movdqu %%xmm14, 192(%[out])\n\tmovdqu %%xmm15, 208(%[out])"
			 : "=a"(r)
			 : "a"(nr), [fill] "r"(fill), [out] "r"(out)
			 : "rcx", "r11", "memory", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
			   "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return r;
}

static uint64_t seen[28];
/* the child's reports: a page it shares with its creator */
static volatile long report[512] __attribute__((aligned(4096)));
static const struct lwc_rspec share_report = {
	.flags = LWC_MEM | LWC_SHARE, .u.mem = { (uintptr_t)report, (uintptr_t)report + 4096 } };

/*
 * The target of a switch never sees the caller's vector registers (xmm2-15 here; XRSTOR of the
 * init state clears every component the gate's mask names, AVX and AVX-512 with them): the
 * child's first entry, the fast path both ways, and the host path (a discard).
 */
Test(attack_regs, vector_registers_do_not_cross_a_switch, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	memset((void *)report, 0, sizeof(report));
	int c = lwc_create(&share_report, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		/* first entry: only the child's gate code ran since its creator's switch */
		__asm__ volatile("movdqu %%xmm5, 0(%0)\n\tmovdqu %%xmm15, 16(%0)" : : "r"(seen) : "memory");
		report[0] = (seen[0] == KEY) + (seen[1] == KEY) + (seen[2] == KEY) + (seen[3] == KEY);
		raw_switch(in.src, KEY + 1, seen); /* fast path back, and in again */
		report[1] = lanes(seen, KEY);
		report[2] = 1;
		__asm__ volatile("movq %0, %%xmm9\n\tmovq %0, %%xmm12" : : "r"(KEY + 1) : "xmm9", "xmm12");
		lwc_switch_discard(in.src, NULL, 0); /* the host path back */
		_exit(1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(raw_switch(c, KEY, seen), LWC_SWITCHED);
	int back1 = lanes(seen, KEY + 1);
	cr_assert_eq(raw_switch(c, KEY, seen), LWC_SWITCHED);
	int back2 = lanes(seen, KEY + 1);
	cr_assert_eq(report[2], 1, "the child ran to its discard");
	cr_expect_eq(report[0], 0, "the child saw %ld lanes of its creator's registers at its first entry", report[0]);
	cr_expect_eq(report[1], 0, "the child saw %ld lanes of its creator's after a fast switch in", report[1]);
	cr_expect_eq(back1, 0, "the creator saw %d lanes of the child's after a fast switch back", back1);
	cr_expect_eq(back2, 0, "the creator saw %d lanes of the child's after its discard (host path)", back2);
	lwc_close(c);
}

/*
 * Both directions of the trap path: the monitor never sees the trapped lwC's registers, and the
 * trapped lwC gets its own back (a syscall keeps them) with nothing of the monitor's.
 */
Test(attack_regs, vector_registers_across_the_trap_path, .timeout = 60)
{
	struct lwc_msg in;
	static uint64_t mine[28];
	ENTER();
	memset((void *)report, 0, sizeof(report));
	int c = lwc_create(&share_report, 1, LWC_TRAP_SYSCALL, &in);
	if (c == LWC_SWITCHED) {
		raw_syscall_keep(SYS_getppid, KEY, mine); /* trapped: the monitor answers */
		report[0] = lanes(mine, KEY);
		report[1] = lanes(mine, KEY + 1);
		report[2] = 1;
		lwc_switch_discard(in.src, NULL, 0);
		_exit(1);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(raw_switch(c, KEY + 1, seen), LWC_SWITCHED); /* in; its trap brings us back */
	int saw = lanes(seen, KEY);
	cr_assert_eq(raw_switch(c, KEY + 1, seen), LWC_SWITCHED); /* the answer; its discard brings us back */
	cr_assert_eq(report[2], 1, "the trapped lwC ran to its discard");
	cr_expect_eq(saw, 0, "the monitor saw %d lanes of the trapped lwC's registers", saw);
	cr_expect_eq(report[0], 28, "the trapped lwC kept %ld of 28 lanes of its own across its syscall", report[0]);
	cr_expect_eq(report[1], 0, "the trapped lwC saw %ld lanes of the monitor's", report[1]);
	lwc_close(c);
}

static uint64_t rd_fs(void)
{
	uint64_t v;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
	return v;
}

static __thread volatile long tls_marker = 77;
static char fake_tls[8192] __attribute__((aligned(64)));

/*
 * A child that moves its FS (or GS) base to a fake TLS and switches back must not move the
 * creator's: it resumes on its own TLS (its errno, stack canary, malloc state). With ring-3
 * access to the bases (wrfsbase) the child writes them itself; else through arch_prctl.
 */
static void set_fs(uint64_t v, int user)
{
	if (user)
		__asm__ volatile("wrfsbase %0" : : "r"(v));
	else
		syscall(SYS_arch_prctl, ARCH_SET_FS, v);
}

static void set_gs(uint64_t v, int user)
{
	if (user)
		__asm__ volatile("wrgsbase %0" : : "r"(v));
	else
		syscall(SYS_arch_prctl, ARCH_SET_GS, v);
}

Test(attack_regs, tls_bases_cannot_be_forged_through_a_switch, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	int user = (platform() & VMLWC_PLAT_FSGSBASE) != 0;
	uint64_t fs0 = rd_fs(), gs0 = 0;
	syscall(SYS_arch_prctl, ARCH_GET_GS, &gs0);
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		/* the attack: a fake TLS block whose marker says 666, then back to the creator */
		/* the TCB and the static TLS just below it (the block may start right below fs0 - 256) */
		memcpy(fake_tls + 4096 - 256, (void *)(fs0 - 256), 1280);
		uint64_t fake = (uint64_t)fake_tls + 4096;
		set_gs(0x1000, user);
		set_fs(fake, user); /* from here on TLS is the fake one */
		int creator = in.src;
		for (;;) {
			__asm__ volatile("" ::: "memory");
			lwc_switch(creator, NULL, 0, NULL);
			set_fs(fake, user);
			set_gs(0x1000, user);
		}
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, NULL), LWC_SWITCHED); /* fast path */
	uint64_t fs1 = rd_fs(), gs1 = 0;
	syscall(SYS_arch_prctl, ARCH_GET_GS, &gs1);
	cr_expect_eq(fs1, fs0, "the creator resumed with FS base %lx, its own is %lx", fs1, fs0);
	cr_expect_eq(gs1, gs0, "the creator resumed with GS base %lx, its own is %lx", gs1, gs0);
	cr_expect_eq(tls_marker, 77);
	/* and after a discard-style host switch too */
	errno = 0;
	cr_assert_eq(lwc_switch(c, NULL, 0, NULL), LWC_SWITCHED);
	cr_expect_eq(rd_fs(), fs0, "FS base after the second switch");
}

/*
 * Every general register as the target's gate code leaves it after a switch: gate_regs_all
 * loads all of them from g->set before a raw gate call (rax = call, rdi = descriptor, r11 =
 * the gate entry) and stores all of them to g->out when the call returns, in whichever lwC
 * resumes there. Offsets: call 0, desc 8, entry 16, set 24, out 120.
 */
struct gate_regs {
	uint64_t call, desc, entry;
	uint64_t set[12]; /* the message: rbx rbp r8 r9 r10 r12 r13 r14 r15; then rcx rdx rsi */
	uint64_t out[15]; /* rax rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15 */
};

long gate_regs_all(struct gate_regs *g);
__asm__(".text\n"
	".globl gate_regs_all\n"
	".hidden gate_regs_all\n"
	".type gate_regs_all, @function\n"
	"gate_regs_all:\n\t"
	"pushq %rbx\n\tpushq %rbp\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n\t"
	"pushq %rdi\n\t"
	"movq %rdi, %r11\n\t"
	"movq 24(%r11), %rbx\n\tmovq 32(%r11), %rbp\n\tmovq 40(%r11), %r8\n\tmovq 48(%r11), %r9\n\t"
	"movq 56(%r11), %r10\n\tmovq 64(%r11), %r12\n\tmovq 72(%r11), %r13\n\tmovq 80(%r11), %r14\n\t"
	"movq 88(%r11), %r15\n\tmovq 96(%r11), %rcx\n\tmovq 104(%r11), %rdx\n\tmovq 112(%r11), %rsi\n\t"
	"movq 0(%r11), %rax\n\tmovq 8(%r11), %rdi\n\tmovq 16(%r11), %r11\n\t"
	"call *%r11\n\t"
	"pushq %r11\n\t"
	"movq 8(%rsp), %r11\n\t"
	"movq %rax, 120(%r11)\n\tmovq %rbx, 128(%r11)\n\tmovq %rcx, 136(%r11)\n\tmovq %rdx, 144(%r11)\n\t"
	"movq %rsi, 152(%r11)\n\tmovq %rdi, 160(%r11)\n\tmovq %rbp, 168(%r11)\n\tmovq %r8, 176(%r11)\n\t"
	"movq %r9, 184(%r11)\n\tmovq %r10, 192(%r11)\n\t"
	"popq %rax\n\tmovq %rax, 200(%r11)\n\t"
	"movq %r12, 208(%r11)\n\tmovq %r13, 216(%r11)\n\tmovq %r14, 224(%r11)\n\tmovq %r15, 232(%r11)\n\t"
	"movq 120(%r11), %rax\n\t"
	"popq %rdi\n\t"
	"popq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbp\n\tpopq %rbx\n\t"
	"ret\n\t"
	".size gate_regs_all, . - gate_regs_all\n");

_Static_assert(offsetof(struct gate_regs, set) == 24 && offsetof(struct gate_regs, out) == 120, "gate_regs_all");

static const char *const reg_name[15] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
					  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };
/* where each register of set[] lands in out[]: the message, then the scratch registers */
static const int msg_at[9] = { 1, 6, 7, 8, 9, 11, 12, 13, 14 }, scratch_at[3] = { 2, 3, 4 };

/* A value a gate call loads: distinct per register and per sender, in none of the ranges below. */
static void gate_prepare(struct gate_regs *g, uint64_t call, long desc, unsigned entry, uint64_t tag)
{
	g->call = call;
	g->desc = (uint64_t)desc;
	g->entry = VMLWC_GATE_VA + entry;
	for (int i = 0; i < 12; i++)
		g->set[i] = KEY + (tag << 8) + (uint64_t)i;
	g->set[1] = 8; /* rbp: the message's argument count */
}

/* The stub and every kernel-half address, the gate window, the library's guest-physical window (page tables). */
static int library_address(uint64_t r)
{
	return r >= 0xffff800000000000UL ||
	       (r >= VMLWC_GATE_VA && r < VMLWC_GATE_VA + VMLWC_GATE_PAGES * 4096UL) ||
	       (r >= VMLWC_LIB_GPA && r < VMLWC_LIB_GPA + (4UL << 30));
}

/*
 * What the target saw (out) after a gate call by the sender (sent): LWC_SWITCHED in rax, its
 * own descriptor for the sender in rdi, the sender's message, nothing else of the sender's
 * (its scratch values, the gate entry in its r11), and no library address anywhere.
 */
static void expect_clean(const char *what, const uint64_t *out, long desc, const struct gate_regs *sent)
{
	cr_expect_eq(out[0], (uint64_t)LWC_SWITCHED, "%s: rax %lx", what, out[0]);
	cr_expect_eq(out[5], (uint64_t)desc, "%s: rdi %lx, the sender's descriptor is %ld", what, out[5], desc);
	for (int i = 0; i < 9; i++)
		cr_expect_eq(out[msg_at[i]], sent->set[i], "%s: message register %s holds %lx, sent %lx", what,
			     reg_name[msg_at[i]], out[msg_at[i]], sent->set[i]);
	for (int i = 1; i < 15; i++) {
		cr_expect(!library_address(out[i]), "%s: %s holds a stub, gate or table address: %lx", what,
			  reg_name[i], out[i]);
		for (int k = 0; k < 3; k++)
			cr_expect_neq(out[i], sent->set[9 + k], "%s: %s holds the sender's %s", what, reg_name[i],
				      reg_name[scratch_at[k]]);
		cr_expect_neq(out[i], sent->entry, "%s: %s holds the sender's r11 (the gate entry)", what, reg_name[i]);
	}
}

/*
 * No register holds a stub, gate or table address after a switch, nor anything of the other
 * lwC's but its message: the child's fast switch back to its creator, the creator's fast
 * switch into the child, and the child's discard (the host path).
 */
Test(attack_regs, no_stub_address_in_registers_after_a_switch, .timeout = 60)
{
	static struct gate_regs mine, childs;
	struct lwc_msg in;
	ENTER();
	memset((void *)report, 0, sizeof(report));
	int c = lwc_create(&share_report, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		gate_prepare(&childs, (uint64_t)LWC_SWITCHED, in.src, VMLWC_GATE_SW, 1);
		gate_regs_all(&childs); /* the fast path back; the creator switches in again */
		memcpy((void *)report, childs.out, sizeof(childs.out));
		report[15] = in.src;
		report[16] = 1;
		gate_prepare(&childs, VMLWC_LWC_SWITCH_DISCARD, in.src, VMLWC_GATE_CALL, 2);
		gate_regs_all(&childs); /* the host path back: never returns */
		_exit(1);
	}
	cr_assert_geq(c, 0);
	gate_prepare(&mine, (uint64_t)LWC_SWITCHED, c, VMLWC_GATE_SW, 3);
	cr_assert_eq(gate_regs_all(&mine), LWC_SWITCHED);
	gate_prepare(&childs, (uint64_t)LWC_SWITCHED, -1, VMLWC_GATE_SW, 1); /* what the child sent: its tag 1 */
	expect_clean("the child's switch back", mine.out, c, &childs);
	cr_assert_eq(gate_regs_all(&mine), LWC_SWITCHED);
	cr_assert_eq(report[16], 1, "the child ran to its discard");
	gate_prepare(&childs, VMLWC_LWC_SWITCH_DISCARD, -1, VMLWC_GATE_CALL, 2);
	expect_clean("the child's discard (host path)", mine.out, c, &childs);
	uint64_t seen_by_child[15];
	memcpy(seen_by_child, (const void *)report, sizeof(seen_by_child));
	expect_clean("the creator's switch into the child", seen_by_child, report[15], &mine);
}

/*
 * The raw gate entered with rax other than LWC_SWITCHED (the value the target's resume code
 * once trusted to tell a switch into it from a failed switch), a fake FS base, DF and AC set:
 * the creator must resume on its own TLS, with a clean RFLAGS, and see its lwc_switch return
 * LWC_SWITCHED.
 */
static void forged_entry(long desc, uint64_t rax)
{
	__asm__ volatile("pushq %%rbx\n\tpushq %%rbp\n\tpushq %%r12\n\tpushq %%r13\n\tpushq %%r14\n\tpushq %%r15\n\t"
			 "pushfq\n\torq $0x40400, (%%rsp)\n\tpopfq\n\t" /* AC and DF */
			 "movq %[rax], %%rax\n\t"
			 "movq %[d], %%rdi\n\t"
			 "movl %[gate], %%r11d\n\t"
			 "call *%%r11\n\t"
			 "cld\n\t"
			 "popq %%r15\n\tpopq %%r14\n\tpopq %%r13\n\tpopq %%r12\n\tpopq %%rbp\n\tpopq %%rbx"
			 : : [d] "r"(desc), [rax] "r"(rax), [gate] "i"(VMLWC_GATE_VA + VMLWC_GATE_SW)
			 : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc");
}

Test(attack_regs, forged_rax_and_flags_cannot_steer_the_target, .timeout = 60)
{
	struct lwc_msg in;
	ENTER();
	int user = (platform() & VMLWC_PLAT_FSGSBASE) != 0;
	uint64_t fs0 = rd_fs();
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		memcpy(fake_tls + 4096 - 256, (void *)(fs0 - 256), 1280);
		int creator = in.src;
		for (uint64_t rax = 0;; rax++) {
			set_fs((uint64_t)fake_tls + 4096, user);
			forged_entry(creator, rax == 2 ? (uint64_t)-14 : rax); /* 0, 1, -EFAULT, ... */
		}
	}
	cr_assert_geq(c, 0);
	for (int i = 0; i < 4; i++) {
		long r = lwc_switch(c, NULL, 0, NULL);
		uint64_t fl = __builtin_ia32_readeflags_u64();
		cr_expect_eq(r, LWC_SWITCHED, "round %d: the creator's lwc_switch returned %ld", i, r);
		cr_expect_eq(rd_fs(), fs0, "round %d: the creator resumed with FS base %lx, its own is %lx", i, rd_fs(),
			     fs0);
		cr_expect_eq(fl & 0x40400, 0, "round %d: the creator resumed with RFLAGS %lx (DF or AC)", i, fl);
		cr_expect_eq(tls_marker, 77);
		__asm__ volatile("cld" ::: "cc");
	}
}

/*
 * The x87/MMX data registers (not only XMM): the child leaves a key in MM0 (ST0's mantissa)
 * and switches back; the creator must find nothing of it. Both with ring-3 XRSTOR and on the
 * path for hosts whose ring 3 cannot use it (test hook: FXRSTOR of the init image).
 */
static uint64_t mm0_after_switch(int c)
{
	uint64_t v;
	struct lwc_msg in;
	lwc_switch(c, NULL, 0, &in);
	__asm__ volatile("movq %%mm0, %0\n\temms" : "=r"(v));
	return v;
}

static int x87_round(const char *hook)
{
	if (hook) {
		setenv("VMLWC_TEST_HOOKS", "1", 1);
		setenv(hook, "1", 1);
	}
	if (vmlwc_init(NULL) != 0)
		return 200;
	if (hook && (platform() & VMLWC_PLAT_XSAVE))
		return 11; /* the hook did not take */
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		for (;;) {
			__asm__ volatile("movq %0, %%mm0" : : "r"(KEY) : "mm0");
			lwc_switch(in.src, NULL, 0, &in);
		}
	}
	if (c < 0)
		return 12;
	for (int i = 0; i < 3; i++)
		if (mm0_after_switch(c) == KEY)
			return 13;
	return 0;
}

Test(attack_regs, x87_and_mmx_do_not_cross_a_switch, .timeout = 120)
{
	const char *hooks[] = { NULL, "VMLWC_TEST_NO_XSAVE" };
	for (int i = 0; i < 2; i++) {
		pid_t p = fork();
		int st;
		if (p == 0)
			_exit(x87_round(hooks[i]));
		waitpid(p, &st, 0);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %#x (13: MM0 crossed the switch)",
			  hooks[i] ? hooks[i] : "XRSTOR", st);
	}
}
