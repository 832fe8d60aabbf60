/* bench/threads: pthread_create + join in the guest (a vCPU per thread, new or from the pool) against native threads. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_mt.h"
#include "bench_util.h"
#include "vmlwc.h"

#define ROUND_MAX 16
#define ROUND_STACK (256 << 10) /* small stacks: glibc's cache (40 MiB) keeps every one of a round */

static int errors;

static void *empty(void *a)
{
	return a;
}

static void op_create_join(void *a)
{
	pthread_t t;
	int r;
	(void)a;
	if ((r = pthread_create(&t, NULL, empty, NULL)) != 0) {
		fprintf(stderr, "bench-threads: pthread_create: %s\n", strerror(r));
		errors++;
		return;
	}
	if ((r = pthread_join(t, NULL)) != 0) {
		fprintf(stderr, "bench-threads: pthread_join: %s\n", strerror(r));
		errors++;
	}
}

/* A round: n threads alive together (each waits for the release), then released and joined. In the
 * guest the first round gets n new vCPUs (and host threads), the next ones take them from the pool. */
static volatile int go;

static void *waiter(void *a)
{
	futex_wait_while(&go, 0);
	return a;
}

struct round {
	double per_thread_ns; /* (create all + release + join all) / n */
	double create_ns;     /* median of the n pthread_create calls */
};

static struct round round_of(int n)
{
	pthread_t t[ROUND_MAX];
	double c[ROUND_MAX];
	pthread_attr_t at;
	struct round r = { 0, 0 };
	int made = 0;

	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, ROUND_STACK);
	go = 0;
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < n; i++) {
		uint64_t c0 = bench_now_ns();
		int e = pthread_create(&t[i], &at, waiter, NULL);
		c[i] = (double)(bench_now_ns() - c0);
		if (e) {
			fprintf(stderr, "bench-threads: pthread_create (thread %d of a round): %s\n", i, strerror(e));
			errors++;
			break;
		}
		made++;
	}
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	futex_wake_all(&go);
	for (int i = 0; i < made; i++)
		pthread_join(t[i], NULL);
	uint64_t t1 = bench_now_ns();
	pthread_attr_destroy(&at);
	if (made) {
		r.per_thread_ns = (double)(t1 - t0) / made;
		r.create_ns = median_of(c, made);
	}
	return r;
}

/* The median over `rounds` rounds of each figure. */
static struct round rounds_median(int n, int rounds)
{
	double a[64], b[64];
	for (int i = 0; i < rounds; i++) {
		struct round r = round_of(n);
		a[i] = r.per_thread_ns;
		b[i] = r.create_ns;
	}
	return (struct round){ median_of(a, rounds), median_of(b, rounds) };
}

static void row(const char *what, double native, double guest, const struct cost *c)
{
	printf("%-46s %10.1f %10.1f %7.1f", what, native / 1e3, guest / 1e3, guest / native);
	if (c)
		printf(" %9.2f %9.2f %9.2f", c->exits, c->hv, c->insns);
	printf("\n");
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int iters = quick ? 20 : 200, batches = quick ? 5 : 11;
	int n = quick ? 4 : 8, rounds = quick ? 3 : 9;
	struct vmlwc_stats s0, s1;

	/* natively: one round to fill glibc's stack cache (the guest's rounds find it filled too) */
	round_of(n);
	struct round nat_round = rounds_median(n, rounds);
	op_create_join(NULL);
	double nat_cj = bench_median(op_create_join, NULL, iters, batches);

	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-threads: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	/* the first round: every thread on a new vCPU with a new host thread */
	vmlwc_stats(&s0);
	struct round fresh = round_of(n);
	vmlwc_stats(&s1);
	struct cost c_fresh = cost_between(&s0, &s1, n, 1);
	/* the second round: the same threads' vCPUs, parked in the pool */
	vmlwc_stats(&s0);
	struct round pooled1 = round_of(n);
	vmlwc_stats(&s1);
	struct cost c_pooled = cost_between(&s0, &s1, n, 1);
	struct round pooled = rounds_median(n, rounds);
	/* one thread at a time: create + join of an empty thread, its vCPU from the pool */
	double g_cj = bench_median(op_create_join, NULL, iters, batches);
	vmlwc_stats(&s0);
	for (int i = 0; i < iters; i++)
		op_create_join(NULL);
	vmlwc_stats(&s1);
	struct cost c_cj = cost_between(&s0, &s1, iters, 1);

	bench_print_platform();
	print_cpus_note(n + 1);
	printf("\nrounds: %d threads alive together (each waits on a futex), released, joined; %d KiB stacks\n", n,
	       ROUND_STACK >> 10);
	printf("create + join: an empty thread, default attributes, one at a time; medians of %d batches of %d\n\n",
	       batches, iters);
	printf("%-46s %10s %10s %7s %9s %9s %9s\n", "operation (per thread)", "native us", "guest us", "ratio",
	       "exits", "hv exits", "emul ins");
	row("create + join, one at a time (vCPU from pool)", nat_cj, g_cj, &c_cj);
	row("round, 1st: new vCPUs (one sample)", nat_round.per_thread_ns, fresh.per_thread_ns, &c_fresh);
	row("  pthread_create alone, new vCPU (median)", nat_round.create_ns, fresh.create_ns, NULL);
	row("round, 2nd+: vCPUs from the pool (median)", nat_round.per_thread_ns, pooled.per_thread_ns, &c_pooled);
	row("  pthread_create alone, pooled vCPU (median)", nat_round.create_ns, pooled.create_ns, NULL);
	printf("  (the 2nd round alone: %.1f us per thread, pthread_create %.1f us)\n", pooled1.per_thread_ns / 1e3,
	       pooled1.create_ns / 1e3);
	printf("\nnative: rounds after the first (glibc's stack cache filled); the guest's first round finds\n"
	       "the same cache. exits: returns of KVM_RUN to the library, every vCPU's; hv exits: KVM's\n"
	       "\"exits\" stat; emul ins: KVM's \"insn_emulation\" stat; per thread, bracket call taken off.\n");
	if (errors)
		fprintf(stderr, "bench-threads: %d errors\n", errors);
	return errors ? 1 : 0;
}
