/* bench/munmap: mmap + touch + munmap of 4 KiB while other guest threads spin at ring 3 (the coherence kicks). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench_mt.h"
#include "bench_util.h"
#include "vmlwc.h"
#include "vmlwc_abi.h"

#define MAX_OTHERS 3

static volatile int stop, started, errors;
static volatile unsigned long spins[MAX_OTHERS];

static void op_pair(void *a)
{
	(void)a;
	volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errors++;
		return;
	}
	p[0] = 1;
	if (munmap((void *)p, 4096) != 0)
		errors++;
}

/* A busy thread: ring-3 instructions only, no syscall, until stop (in the guest: always in KVM_RUN). */
static void *busy(void *a)
{
	int i = (int)(long)a;
	__atomic_add_fetch(&started, 1, __ATOMIC_ACQ_REL);
	futex_wake_all(&started);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		spins[i]++;
		__builtin_ia32_pause();
	}
	return NULL;
}

/* An idle thread: asleep in futex_wait until stop (in the guest: blocked on the host, not in KVM_RUN). */
static void *asleep(void *a)
{
	(void)a;
	__atomic_add_fetch(&started, 1, __ATOMIC_ACQ_REL);
	futex_wake_all(&started);
	futex_wait_while(&stop, 0);
	return NULL;
}

struct row {
	const char *name;
	int others;
	void *(*fn)(void *);
	double native, guest;
	struct cost c;
	double bg_exits_per_s; /* exits while the main thread sleeps 50 ms (the others' own) */
	double pt_allocs, pt_reclaimed; /* page-table pages handed out, and made clean again, per pair */
};

static int others_start(pthread_t *t, int k, void *(*fn)(void *))
{
	stop = 0;
	started = 0;
	for (int i = 0; i < k; i++) {
		int e = pthread_create(&t[i], NULL, fn, (void *)(long)i);
		if (e) {
			fprintf(stderr, "bench-munmap: pthread_create: %s\n", strerror(e));
			stop = 1;
			futex_wake_all(&stop);
			for (int j = 0; j < i; j++)
				pthread_join(t[j], NULL);
			return -1;
		}
	}
	for (int s; (s = __atomic_load_n(&started, __ATOMIC_ACQUIRE)) < k;)
		futex_wait_while(&started, s);
	return 0;
}

static void others_stop(pthread_t *t, int k)
{
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	futex_wake_all(&stop);
	for (int i = 0; i < k; i++)
		pthread_join(t[i], NULL);
}

static int measure(struct row *r, int in_guest, int iters, int batches)
{
	pthread_t t[MAX_OTHERS];
	struct vmlwc_stats s0, s1;

	if (others_start(t, r->others, r->fn))
		return -1;
	double m = bench_median(op_pair, NULL, iters, batches);
	if (in_guest) {
		r->guest = m;
		long a0 = syscall(VMLWC_SYS_POOL, VMLWC_POOL_PT_ALLOCS);
		long c0 = syscall(VMLWC_SYS_POOL, VMLWC_POOL_PT_RECLAIMED);
		vmlwc_stats(&s0);
		for (int i = 0; i < iters; i++)
			op_pair(NULL);
		vmlwc_stats(&s1);
		r->c = cost_between(&s0, &s1, iters, 1);
		r->pt_allocs = (double)(syscall(VMLWC_SYS_POOL, VMLWC_POOL_PT_ALLOCS) - a0) / iters;
		r->pt_reclaimed = (double)(syscall(VMLWC_SYS_POOL, VMLWC_POOL_PT_RECLAIMED) - c0) / iters;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		vmlwc_stats(&s0);
		nanosleep(&ts, NULL);
		vmlwc_stats(&s1);
		r->bg_exits_per_s = ((double)(s1.vm_exits - s0.vm_exits) - 2) / 0.05; /* nanosleep + the bracket */
	} else {
		r->native = m;
	}
	others_stop(t, r->others);
	return 0;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int iters = quick ? 50 : 500, batches = quick ? 5 : 11;
	struct row rows[] = {
		{ "main thread alone (1 vCPU)", 0, NULL },
		{ "+1 thread spinning at ring 3 (2 vCPUs)", 1, busy },
		{ "+3 threads spinning at ring 3 (4 vCPUs)", 3, busy },
		{ "+3 threads asleep in futex_wait (4 vCPUs)", 3, asleep },
		{ "alone again, 3 vCPUs parked in the pool", 0, NULL },
	};
	const int nrows = sizeof(rows) / sizeof(rows[0]);

	for (int i = 0; i < nrows - 1; i++)
		if (measure(&rows[i], 0, iters * 4, batches))
			return 1;
	rows[nrows - 1].native = rows[0].native;
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-munmap: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	/* each row printed as soon as it is measured: a failure later leaves the rows before it */
	bench_print_platform();
	print_cpus_note(MAX_OTHERS + 1);
	printf("\nthe main thread: mmap 4 KiB (private, anonymous), write its first byte, munmap; medians of %d\n"
	       "batches of %d pairs (natively %d); exits etc. per pair over one more batch, every vCPU's\n\n",
	       batches, iters, iters * 4);
	printf("%-44s %10s %10s %7s %8s %9s %9s %10s %9s\n", "", "native us", "guest us", "ratio", "exits",
	       "hv exits", "emul ins", "bg exits/s", "pt pages");
	fflush(stdout);
	for (int i = 0; i < nrows; i++) {
		if (measure(&rows[i], 1, iters, batches))
			return 1;
		printf("%-44s %10.2f %10.1f %7.0f %8.2f %9.2f %9.2f %10.1f %4.1f/%4.1f\n", rows[i].name,
		       rows[i].native / 1e3, rows[i].guest / 1e3, rows[i].guest / rows[i].native, rows[i].c.exits,
		       rows[i].c.hv, rows[i].c.insns, rows[i].bg_exits_per_s, rows[i].pt_allocs, rows[i].pt_reclaimed);
		fflush(stdout);
	}
	printf("\nexits per pair beyond the first row's: the other vCPUs kicked out of KVM_RUN by the coherence\n"
	       "step (run_sync_others) of each call that replaced the tree (here mmap and munmap both do), one\n"
	       "per vCPU found in the guest, counted on its side. bg exits/s: exits to user space while the\n"
	       "main thread sleeps 50 ms (the other threads' own, without any munmap). pt pages: page-table\n"
	       "pages handed out / freed pages made clean again (chunk recycled or scrubbed), per pair.\n");
	printf("extra time per pair over the first row: %.1f us (1 spinning), %.1f us (3 spinning), %.1f us (3 asleep)\n",
	       (rows[1].guest - rows[0].guest) / 1e3, (rows[2].guest - rows[0].guest) / 1e3,
	       (rows[3].guest - rows[0].guest) / 1e3);
	if (errors) {
		fprintf(stderr, "bench-munmap: %d mmap/munmap failures\n", errors);
		return 1;
	}
	return 0;
}
