/* bench/switch_mt: two guest threads each ping-ponging with its own child lwC at once, against one thread alone. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_mt.h"
#include "bench_util.h"
#include "vmlwc.h"

#define NT 2

static int child[NT];
static int iters, active;
static volatile int errors;
enum { SETUP, PINGPONG };
static int phase;

/* Each thread's own child: created by that thread, it answers every switch with args[0] + 1. */
static void setup(int idx)
{
	struct lwc_msg m;
	int c = lwc_create(NULL, 0, 0, &m);
	if (c == LWC_SWITCHED) {
		for (;;) {
			long v = m.args[0] + 1;
			lwc_switch(m.src, &v, 1, &m);
		}
	}
	if (c < 0) {
		perror("bench-switch-mt: lwc_create");
		errors++;
		child[idx] = -1;
		return;
	}
	child[idx] = c;
	long x = 0;
	if (lwc_switch(c, &x, 1, &m) != LWC_SWITCHED || m.args[0] != 1) { /* its first entry */
		fprintf(stderr, "bench-switch-mt: thread %d: first switch into its child failed\n", idx);
		errors++;
	}
}

static void pingpong(int idx)
{
	struct lwc_msg m;
	int c = child[idx];
	for (long k = 0; k < iters; k++) {
		long x = k;
		if (lwc_switch(c, &x, 1, &m) != LWC_SWITCHED || m.src < 0 || m.args[0] != k + 1) {
			fprintf(stderr, "bench-switch-mt: thread %d: round trip %ld: wrong answer\n", idx, k);
			errors++;
			return;
		}
	}
}

static void work(int idx, void *a)
{
	(void)a;
	if (phase == SETUP)
		setup(idx);
	else if (idx < active && child[idx] >= 0)
		pingpong(idx);
}

/* One run of `active` threads: one-way switch time (the mean over the active threads), and the wall. */
static void run(struct gang *g, double *switch_ns, double *wall_switch_ns)
{
	uint64_t wall;
	double mean, sum = 0;
	uint64_t first = UINT64_MAX, last = 0;

	gang_run(g, &wall, &mean);
	for (int i = 0; i < active; i++) {
		sum += (double)(g->end[i] - g->start[i]);
		if (g->start[i] < first)
			first = g->start[i];
		if (g->end[i] > last)
			last = g->end[i];
	}
	*switch_ns = sum / active / (2.0 * iters);
	*wall_switch_ns = (double)(last - first) / (2.0 * iters * active); /* the gang's: aggregate rate */
}

struct result {
	double sw, agg;
	struct cost c;
	double stub; /* share of switches the stub finished */
};

static void measure(struct gang *g, int nact, int batches, struct result *r)
{
	double a[64], b[64];
	struct vmlwc_stats s0, s1;

	active = nact;
	run(g, &a[0], &b[0]); /* warm-up */
	for (int i = 0; i < batches; i++)
		run(g, &a[i], &b[i]);
	r->sw = median_of(a, batches);
	r->agg = median_of(b, batches);
	vmlwc_stats(&s0);
	run(g, &a[0], &b[0]);
	vmlwc_stats(&s1);
	double n = 2.0 * iters * nact;
	r->c = cost_between(&s0, &s1, n, 1);
	r->stub = (double)(s1.lwc_switches - s0.lwc_switches) / n;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int batches = quick ? 5 : 15;
	struct baselines b;
	struct gang g;
	struct result one, two;

	iters = quick ? 200 : 2000;
	bench_baselines(&b, quick);
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-switch-mt: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	int e = gang_start(&g, NT, work, NULL);
	if (e) {
		fprintf(stderr, "bench-switch-mt: pthread_create: %s\n", strerror(e));
		return 1;
	}
	uint64_t wall;
	double mean;
	phase = SETUP;
	gang_run(&g, &wall, &mean);
	if (errors)
		return 1;
	phase = PINGPONG;
	measure(&g, 1, batches, &one);
	measure(&g, 2, batches, &two);
	gang_stop(&g);
	for (int i = 0; i < NT; i++)
		lwc_close(child[i]);

	bench_print_platform();
	print_cpus_note(NT);
	bench_print_baselines(&b);
	printf("\neach active thread: %d round trips (lwc_switch to its own child and back) per run; medians\n"
	       "of %d runs after a warm-up; figures per one-way switch\n\n", iters, batches);
	printf("%-36s %12s %14s %8s %9s %9s %8s\n", "", "switch ns", "aggregate ns", "exits", "hv exits",
	       "emul ins", "in stub");
	printf("%-36s %12.1f %14.1f %8.2f %9.2f %9.2f %8.2f\n", "1 thread (the other asleep)", one.sw, one.agg,
	       one.c.exits, one.c.hv, one.c.insns, one.stub);
	printf("%-36s %12.1f %14.1f %8.2f %9.2f %9.2f %8.2f\n", "2 threads at once, own children", two.sw,
	       two.agg, two.c.exits, two.c.hv, two.c.insns, two.stub);
	printf("\nswitch ns: a thread's own time per switch (mean over the active threads); aggregate ns: the\n"
	       "run's wall time / all threads' switches (the inverse of the total switch rate)\n");
	printf("2 threads / 1 thread: per-thread switch time %.2fx, aggregate rate %.2fx\n", two.sw / one.sw,
	       one.agg / two.agg);
	printf("ratios: thread switch (1 CPU) / lwc_switch = %.3f (1 thread), %.3f (2 threads); process switch\n"
	       "        (1 CPU) / lwc_switch = %.3f, %.3f\n",
	       b.thread_switch_1cpu / one.sw, b.thread_switch_1cpu / two.sw, b.proc_switch_1cpu / one.sw,
	       b.proc_switch_1cpu / two.sw);
	if (errors) {
		fprintf(stderr, "bench-switch-mt: %d errors\n", errors);
		return 1;
	}
	return 0;
}
