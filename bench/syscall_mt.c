/* bench/syscall_mt: redirected getppid from 1, 2 and 4 guest threads at once against native threads. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_mt.h"
#include "bench_util.h"
#include "vmlwc.h"

static int iters;
static long ppid;
static volatile int wrong;

static void calls(int idx, void *a)
{
	(void)idx;
	(void)a;
	for (int i = 0; i < iters; i++)
		if (syscall(SYS_getppid) != ppid)
			wrong = 1;
}

struct result {
	double tput;    /* calls per second, all threads */
	double call_ns; /* one thread's time per call (the mean over threads) */
	struct cost c;
};

/* `batches` runs of n threads, each making `iters` calls: the medians of both figures. */
static int measure(int n, int batches, int in_guest, struct result *r)
{
	struct gang g;
	double tp[64], per[64];
	uint64_t wall;
	double mean;
	struct vmlwc_stats s0, s1;

	int e = gang_start(&g, n, calls, NULL);
	if (e) {
		fprintf(stderr, "bench-syscall-mt: starting %d threads: %s\n", n, strerror(e));
		return -1;
	}
	gang_run(&g, &wall, &mean); /* warm-up */
	for (int b = 0; b < batches; b++) {
		gang_run(&g, &wall, &mean);
		tp[b] = (double)n * iters / (wall / 1e9);
		per[b] = mean / iters;
	}
	r->tput = median_of(tp, batches);
	r->call_ns = median_of(per, batches);
	if (in_guest) {
		vmlwc_stats(&s0);
		gang_run(&g, &wall, &mean);
		vmlwc_stats(&s1);
		r->c = cost_between(&s0, &s1, (double)n * iters, 1);
	}
	gang_stop(&g);
	return 0;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int batches = quick ? 5 : 15;
	static const int nthreads[] = { 1, 2, 4 };
	struct result nat[3], gst[3];
	double native_iters;

	ppid = getppid();
	iters = quick ? 20000 : 200000;
	native_iters = iters;
	for (int i = 0; i < 3; i++)
		if (measure(nthreads[i], batches, 0, &nat[i]))
			return 1;
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-syscall-mt: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	iters = quick ? 100 : 1000;
	for (int i = 0; i < 3; i++)
		if (measure(nthreads[i], batches, 1, &gst[i]))
			return 1;

	bench_print_platform();
	print_cpus_note(4);
	printf("\neach thread calls getppid %d times natively, %d times in the guest, all threads at once;\n"
	       "medians over %d runs (a warm-up run first); threads wait in futex_wait between runs\n\n",
	       (int)native_iters, iters, batches);
	printf("%-8s %14s %14s %12s %12s %8s %8s %9s %9s\n", "threads", "native call/s", "guest call/s",
	       "native ns", "guest ns", "ratio", "exits", "hv exits", "emul ins");
	for (int i = 0; i < 3; i++)
		printf("%-8d %14.0f %14.0f %12.1f %12.1f %8.1f %8.2f %9.2f %9.2f\n", nthreads[i], nat[i].tput,
		       gst[i].tput, nat[i].call_ns, gst[i].call_ns, gst[i].call_ns / nat[i].call_ns, gst[i].c.exits,
		       gst[i].c.hv, gst[i].c.insns);
	printf("\ncall/s: calls of all threads / wall time (first start to last end); ns: one thread's time\n"
	       "per call (mean over the threads); exits etc.: per call, all vCPUs, over one more run (its\n"
	       "futex calls to start and finish included: a few per %d calls).\n", iters);
	printf("scaling of the guest's throughput: 2 threads %.2fx, 4 threads %.2fx of 1 (native: %.2fx, %.2fx)\n",
	       gst[1].tput / gst[0].tput, gst[2].tput / gst[0].tput, nat[1].tput / nat[0].tput,
	       nat[2].tput / nat[0].tput);
	if (wrong) {
		fprintf(stderr, "bench-syscall-mt: getppid returned a wrong value\n");
		return 1;
	}
	return 0;
}
