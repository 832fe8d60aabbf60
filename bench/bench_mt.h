/* Helpers for the multi-threaded benchmarks: a gang of threads started together, futexes, cost rows. */
#ifndef BENCH_MT_H
#define BENCH_MT_H
#include <pthread.h>
#include <stdint.h>

#include "vmlwc.h"

#define GANG_MAX 8

void futex_wait_while(volatile int *w, int val); /* sleeps while *w == val */
void futex_wake_all(volatile int *w);

/*
 * n threads running fn(index, arg) together, once per gang_run: the calling thread is index 0,
 * n - 1 workers wait (in futex_wait, asleep) between runs. Each run records every thread's own
 * start and end; wall = the last end - the first start.
 */
struct gang {
	int n;
	void (*fn)(int idx, void *arg);
	void *arg;
	pthread_t tid[GANG_MAX];
	volatile int gen, left, quit;
	uint64_t start[GANG_MAX], end[GANG_MAX];
};
int gang_start(struct gang *g, int n, void (*fn)(int, void *), void *arg); /* 0, or an errno */
void gang_run(struct gang *g, uint64_t *wall_ns, double *thread_ns_mean);
void gang_stop(struct gang *g);

/* Exits to user space, hypervisor exits and emulated instructions per operation between two
 * snapshots; `calls` redirected calls of the bracket itself are taken off the exits. */
struct cost {
	double exits, hv, insns;
};
struct cost cost_between(const struct vmlwc_stats *a, const struct vmlwc_stats *b, double ops, int calls);
double median_of(double *v, int n); /* sorts v */
int online_cpus(void);
/* One line for the top of every table: the CPUs the host gives, and what that means for n threads. */
void print_cpus_note(int max_threads);
#endif
