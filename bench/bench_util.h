/* Benchmark helpers: timing, medians, and the native baselines every benchmark reports. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H
#include <stdint.h>

uint64_t bench_now_ns(void);
/* Median over `batches` of the per-operation time of fn run `iters` times, in ns. */
double bench_median(void (*fn)(void *), void *arg, int iters, int batches);

struct baselines {
	double syscall_ns;         /* native getppid */
	double proc_switch_1cpu;   /* one-way process switch over a pipe, both on CPU 0 */
	double proc_switch_2cpu;   /* ... on different CPUs */
	double thread_switch_1cpu; /* one-way thread switch over a futex, same CPU */
	double thread_switch_2cpu;
	double fork_ns;            /* fork + exit + wait, nothing touched */
};
/* Runs the baselines natively: call before vmlwc_init. */
void bench_baselines(struct baselines *b, int quick);
void bench_print_baselines(const struct baselines *b);
/* In the guest: the platform vmlwc_init found and the paths it chose, one paragraph on stdout. */
void bench_print_platform(void);
#endif
