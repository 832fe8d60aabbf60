/* bench/syscall: redirected syscalls against native ones: time, exits and emulated instructions per call. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "vmlwc.h"

static int zero_fd, null_fd;

static void op_getppid(void *a) { (void)a; syscall(SYS_getppid); }
static void op_read(void *a) { char c; (void)a; if (read(zero_fd, &c, 1) != 1) abort(); }
static void op_write(void *a) { (void)a; if (write(null_fd, "x", 1) != 1) abort(); }
static void op_clock(void *a) { struct timespec t; (void)a; clock_gettime(CLOCK_MONOTONIC, &t); }

struct op {
	const char *name;
	void (*fn)(void *);
	double native, guest;
	double exits, hv_exits, insns;
};

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int iters = quick ? 200 : 2000, batches = quick ? 7 : 21;
	struct op ops[] = {
		{ "getppid", op_getppid }, { "read 1 B /dev/zero", op_read },
		{ "write 1 B /dev/null", op_write }, { "clock_gettime (vDSO)", op_clock },
	};
	struct baselines b;
	struct vmlwc_stats s0, s1;
	uint64_t t0, t_init;

	zero_fd = open("/dev/zero", O_RDONLY);
	null_fd = open("/dev/null", O_WRONLY);
	bench_baselines(&b, quick);
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		ops[i].native = bench_median(ops[i].fn, NULL, iters * 10, batches);
	t0 = bench_now_ns();
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-syscall: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	t_init = bench_now_ns() - t0;
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		ops[i].guest = bench_median(ops[i].fn, NULL, iters, batches);
		vmlwc_stats(&s0);
		for (int k = 0; k < iters; k++)
			ops[i].fn(NULL);
		vmlwc_stats(&s1);
		/* the second vmlwc_stats call is itself one redirected call: subtract it */
		ops[i].exits = (double)(s1.vm_exits - s0.vm_exits - 1) / iters;
		ops[i].hv_exits = (double)(s1.hv_exits - s0.hv_exits) / iters;
		ops[i].insns = (double)(s1.emulated_insns - s0.emulated_insns) / iters;
	}
	bench_print_platform();
	bench_print_baselines(&b);
	printf("\nvmlwc_init: %.2f ms\n\n", t_init / 1e6);
	printf("%-24s %12s %12s %8s %10s %10s %12s\n", "operation", "native ns", "guest ns", "ratio",
	       "exits/op", "hv exits", "emul insns");
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		printf("%-24s %12.1f %12.1f %8.1f %10.2f %10.2f %12.2f\n", ops[i].name, ops[i].native,
		       ops[i].guest, ops[i].guest / ops[i].native, ops[i].exits, ops[i].hv_exits, ops[i].insns);
	printf("\nexits/op: returns of KVM_RUN to the library; hv exits: KVM's \"exits\" stat (includes exits\n"
	       "handled in the kernel); emul insns: KVM's \"insn_emulation\" stat. Per-op figures include\n"
	       "the ~1/%d share of the vmlwc_stats call that brackets the loop.\n", iters);
	return 0;
}
