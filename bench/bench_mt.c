/* Helpers for the multi-threaded benchmarks: a gang of threads started together, futexes, cost rows. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_mt.h"
#include "bench_util.h"

void futex_wait_while(volatile int *w, int val)
{
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == val)
		syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

void futex_wake_all(volatile int *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

struct worker {
	struct gang *g;
	int idx;
};
static struct worker workers[GANG_MAX];

static void run_one(struct gang *g, int idx)
{
	g->start[idx] = bench_now_ns();
	g->fn(idx, g->arg);
	g->end[idx] = bench_now_ns();
	if (__atomic_sub_fetch(&g->left, 1, __ATOMIC_ACQ_REL) == 0)
		futex_wake_all(&g->left);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct gang *g = w->g;
	int seen = 0;

	for (;;) {
		futex_wait_while(&g->gen, seen);
		seen = __atomic_load_n(&g->gen, __ATOMIC_ACQUIRE);
		if (g->quit)
			return NULL;
		run_one(g, w->idx);
	}
}

int gang_start(struct gang *g, int n, void (*fn)(int, void *), void *arg)
{
	g->n = n;
	g->fn = fn;
	g->arg = arg;
	g->gen = 0;
	g->quit = 0;
	for (int i = 1; i < n; i++) {
		workers[i] = (struct worker){ g, i };
		int r = pthread_create(&g->tid[i], NULL, worker_main, &workers[i]);
		if (r) {
			g->n = i;
			gang_stop(g);
			return r;
		}
	}
	return 0;
}

void gang_run(struct gang *g, uint64_t *wall_ns, double *thread_ns_mean)
{
	uint64_t first = UINT64_MAX, last = 0;
	double sum = 0;

	__atomic_store_n(&g->left, g->n, __ATOMIC_RELEASE);
	__atomic_add_fetch(&g->gen, 1, __ATOMIC_ACQ_REL);
	if (g->n > 1)
		futex_wake_all(&g->gen);
	run_one(g, 0);
	for (int v; (v = __atomic_load_n(&g->left, __ATOMIC_ACQUIRE)) != 0;)
		futex_wait_while(&g->left, v);
	for (int i = 0; i < g->n; i++) {
		if (g->start[i] < first)
			first = g->start[i];
		if (g->end[i] > last)
			last = g->end[i];
		sum += (double)(g->end[i] - g->start[i]);
	}
	*wall_ns = last - first;
	*thread_ns_mean = sum / g->n;
}

void gang_stop(struct gang *g)
{
	g->quit = 1;
	__atomic_add_fetch(&g->gen, 1, __ATOMIC_ACQ_REL);
	futex_wake_all(&g->gen);
	for (int i = 1; i < g->n; i++)
		pthread_join(g->tid[i], NULL);
}

struct cost cost_between(const struct vmlwc_stats *a, const struct vmlwc_stats *b, double ops, int calls)
{
	struct cost c;
	c.exits = ((double)(b->vm_exits - a->vm_exits) - calls) / ops;
	c.hv = (double)(b->hv_exits - a->hv_exits) / ops;
	c.insns = (double)(b->emulated_insns - a->emulated_insns) / ops;
	return c;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return v[n / 2];
}

int online_cpus(void)
{
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

void print_cpus_note(int max_threads)
{
	int n = online_cpus();
	printf("host CPUs online: %d%s\n", n,
	       n < max_threads ? " (more threads than CPUs: they time-share, natively and in the guest alike)" : "");
}
