/* bench/switch: lwc_switch against process and thread switches; time, exits and emulated instructions. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_util.h"
#include "vmlwc.h"
#include "vmlwc_abi.h"

static int peer;

/* The init images the gate restores on every switch into an lwC (see gate_x86_64.S): XSTATE_BV 0
 * (every component in its initial state), and the legacy area with FCW 0x37f and MXCSR 0x1f80. */
static unsigned char ximage[4096] __attribute__((aligned(64)));
static uint64_t xmask;

static void op_xrstor(void *a)
{
	(void)a;
	__asm__ volatile("xrstor %0" ::"m"(ximage), "a"((uint32_t)xmask), "d"((uint32_t)(xmask >> 32)) : "memory");
}

static void op_fxrstor(void *a)
{
	(void)a;
	__asm__ volatile("fxrstor64 %0" ::"m"(ximage) : "memory");
}

/* What clearing the vector registers adds to a switch: the gate's own instruction, run at ring 3
 * (natively on every platform: only the stub's ring 0 is emulated on PVM). */
static void vector_clear_cost(int iters, int batches, double *xr, double *fxr)
{
	ximage[0] = 0x7f;
	ximage[1] = 0x03;              /* FCW */
	*(uint32_t *)&ximage[24] = 0x1f80; /* MXCSR */
	*xr = -1;
	/* where the library's probe found xgetbv usable at ring 3 (the guest's own CPUID may show
	 * the host's bits on PVM, so it is not asked) */
	if (syscall(VMLWC_SYS_POOL, VMLWC_POOL_PLATFORM) & VMLWC_PLAT_XSAVE) {
		/* the gate's own mask (readable in its page): XCR0 without PKRU and AMX */
		xmask = *(const volatile uint64_t *)(VMLWC_GATE_VA + VMLWC_GATE_RFBM);
		*xr = bench_median(op_xrstor, NULL, iters, batches);
	}
	*fxr = bench_median(op_fxrstor, NULL, iters, batches);
}
static struct lwc_msg msg;

static void op_roundtrip(void *a)
{
	(void)a;
	lwc_switch(peer, NULL, 0, &msg); /* there and back: two switches */
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int iters = quick ? 500 : 5000, batches = quick ? 7 : 21;
	struct baselines b;
	struct vmlwc_stats s0, s1;

	bench_baselines(&b, quick);
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-switch: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	int c = lwc_create(NULL, 0, 0, &msg);
	if (c == LWC_SWITCHED) {
		int back = msg.src;
		for (;;)
			lwc_switch(back, NULL, 0, &msg);
	}
	if (c < 0) {
		perror("lwc_create");
		return 1;
	}
	peer = c;
	lwc_switch(peer, NULL, 0, &msg); /* first entry of the child */
	double rt = bench_median(op_roundtrip, NULL, iters, batches);
	vmlwc_stats(&s0);
	for (int i = 0; i < iters; i++)
		op_roundtrip(NULL);
	vmlwc_stats(&s1);
	double sw = rt / 2, n = 2.0 * iters;
	double exits = (double)(s1.vm_exits - s0.vm_exits - 1) / n;
	double hv = (double)(s1.hv_exits - s0.hv_exits) / n;
	double insns = (double)(s1.emulated_insns - s0.emulated_insns) / n;
	double stub = (double)(s1.lwc_switches - s0.lwc_switches) / n;
	double xr, fxr;
	vector_clear_cost(iters * 20, batches, &xr, &fxr);

	/* a syscall of a trapped child, answered by its monitor through lwc_syscall */
	int iters_t = quick ? 200 : 2000;
	struct lwc_msg tin;
	int t = lwc_create(NULL, 0, LWC_TRAP_SYSCALL, &tin);
	if (t == LWC_SWITCHED) {
		for (;;)
			syscall(SYS_getppid);
	}
	struct vmlwc_stats t0s, t1s;
	int r = lwc_switch(t, NULL, 0, &tin);
	vmlwc_stats(&t0s);
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < iters_t && r == LWC_SWITCHED; i++) {
		long res = lwc_syscall(tin.src, LWC_MEM | LWC_FILES, tin.args[0], &tin.args[1]);
		r = lwc_switch(tin.src, &res, 1, &tin);
	}
	uint64_t trapped = bench_now_ns() - t0;
	vmlwc_stats(&t1s);
	if (r != LWC_SWITCHED) {
		/* a figure from a loop that stopped early would be a lie */
		fprintf(stderr, "bench-switch: answering the trapped child's syscall: lwc_switch: %s\n", strerror(errno));
		return 1;
	}
	vmlwc_stats(&s0);
	uint64_t p0 = bench_now_ns();
	for (int i = 0; i < iters_t; i++)
		syscall(SYS_getppid);
	uint64_t plain = bench_now_ns() - p0;
	vmlwc_stats(&s1);

	bench_print_platform();
	bench_print_baselines(&b);
	printf("\n%-44s %10.1f us, %.2f exits to user space\n", "trapped getppid (monitor + lwc_syscall)",
	       trapped / 1e3 / iters_t, (double)(t1s.vm_exits - t0s.vm_exits - 1) / iters_t);
	printf("%-44s %10.1f us, %.2f exits to user space\n", "plain redirected getppid",
	       plain / 1e3 / iters_t, (double)(s1.vm_exits - s0.vm_exits - 1) / iters_t);
	printf("\n%-44s %10.1f ns\n", "lwc_switch (one way, median)", sw);
	printf("%-44s %10.2f\n", "  exits to user space per switch", exits);
	printf("%-44s %10.2f\n", "  hypervisor exits per switch", hv);
	printf("%-44s %10.2f\n", "  emulated instructions per switch", insns);
	printf("%-44s %10.2f\n", "  share finished in the stub", stub);
	if (xr >= 0)
		printf("%-44s %10.1f ns (%.2f%% of a switch)\n", "  vector-state clear, XRSTOR of the init image", xr,
		       100.0 * xr / sw);
	printf("%-44s %10.1f ns (%.2f%% of a switch)\n", "  vector-state clear, FXRSTOR of the init image", fxr,
	       100.0 * fxr / sw);
	printf("\nratios: process switch (1 CPU) / lwc_switch = %.2f, thread switch (1 CPU) / lwc_switch = %.2f\n",
	       b.proc_switch_1cpu / sw, b.thread_switch_1cpu / sw);
	if (b.proc_switch_2cpu > 0)
		printf("        process switch (2 CPUs) / lwc_switch = %.2f, thread switch (2 CPUs) / lwc_switch = %.2f\n",
		       b.proc_switch_2cpu / sw, b.thread_switch_2cpu / sw);
	return 0;
}
