/* Benchmark helpers: timing, medians and native baselines (process/thread switch, fork, syscall). */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "vmlwc_abi.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bench_median(void (*fn)(void *), void *arg, int iters, int batches)
{
	double *t = malloc(sizeof(double) * (size_t)batches), m;

	for (int b = 0; b < batches; b++) {
		uint64_t t0 = bench_now_ns();
		for (int i = 0; i < iters; i++)
			fn(arg);
		t[b] = (double)(bench_now_ns() - t0) / iters;
	}
	qsort(t, (size_t)batches, sizeof(double), cmp_double);
	m = t[batches / 2];
	free(t);
	return m;
}

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void getppid_op(void *arg)
{
	(void)arg;
	syscall(SYS_getppid);
}

/* A process ping-pong over two pipes; returns one-way switch time. */
static double proc_switch(int cpu_a, int cpu_b, int rounds)
{
	int ab[2], ba[2];
	char c = 0;
	pid_t p;
	uint64_t t0;

	if (pipe(ab) || pipe(ba))
		return -1;
	p = fork();
	if (p == 0) {
		pin(cpu_b);
		for (int i = 0; i < rounds + 100; i++) {
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	pin(cpu_a);
	for (int i = 0; i < 100; i++) /* warm up */
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			break;
	t0 = bench_now_ns();
	for (int i = 0; i < rounds; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			break;
	double r = (double)(bench_now_ns() - t0) / rounds / 2;
	waitpid(p, NULL, 0);
	close(ab[0]); close(ab[1]); close(ba[0]); close(ba[1]);
	return r;
}

struct futex_pp {
	volatile int word;
	int rounds, cpu;
};

static void fwait(volatile int *w, int val)
{
	while (*w == val)
		syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void fwake(volatile int *w, int val)
{
	*w = val;
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *futex_peer(void *arg)
{
	struct futex_pp *f = arg;
	pin(f->cpu);
	for (int i = 0; i < f->rounds; i++) {
		fwait(&f->word, 0);
		fwake(&f->word, 0);
	}
	return NULL;
}

static double thread_switch(int cpu_a, int cpu_b, int rounds)
{
	struct futex_pp f = { .word = 0, .rounds = rounds, .cpu = cpu_b };
	pthread_t t;
	uint64_t t0;

	pin(cpu_a);
	pthread_create(&t, NULL, futex_peer, &f);
	t0 = bench_now_ns();
	for (int i = 0; i < rounds; i++) {
		fwake(&f.word, 1);
		fwait(&f.word, 1);
	}
	double r = (double)(bench_now_ns() - t0) / rounds / 2;
	pthread_join(t, NULL);
	return r;
}

static void fork_op(void *arg)
{
	(void)arg;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
}

void bench_baselines(struct baselines *b, int quick)
{
	cpu_set_t orig;
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int r = quick ? 2000 : 20000;

	sched_getaffinity(0, sizeof(orig), &orig);
	b->syscall_ns = bench_median(getppid_op, NULL, 10000, quick ? 11 : 31);
	b->proc_switch_1cpu = proc_switch(0, 0, r);
	b->proc_switch_2cpu = ncpu > 1 ? proc_switch(0, 1, r) : -1;
	b->thread_switch_1cpu = thread_switch(0, 0, r);
	b->thread_switch_2cpu = ncpu > 1 ? thread_switch(0, 1, r) : -1;
	sched_setaffinity(0, sizeof(orig), &orig);
	b->fork_ns = bench_median(fork_op, NULL, 20, quick ? 5 : 11);
}

void bench_print_baselines(const struct baselines *b)
{
	printf("native baselines (medians):\n");
	printf("  %-40s %10.1f ns\n", "syscall (getppid)", b->syscall_ns);
	printf("  %-40s %10.1f ns\n", "process switch over a pipe, 1 CPU", b->proc_switch_1cpu);
	if (b->proc_switch_2cpu < 0)
		printf("  %-40s %13s\n", "process switch over a pipe, 2 CPUs", "(one CPU)");
	else
		printf("  %-40s %10.1f ns\n", "process switch over a pipe, 2 CPUs", b->proc_switch_2cpu);
	printf("  %-40s %10.1f ns\n", "thread switch over a futex, 1 CPU", b->thread_switch_1cpu);
	if (b->thread_switch_2cpu < 0)
		printf("  %-40s %13s\n", "thread switch over a futex, 2 CPUs", "(one CPU)");
	else
		printf("  %-40s %10.1f ns\n", "thread switch over a futex, 2 CPUs", b->thread_switch_2cpu);
	printf("  %-40s %10.1f ns\n", "fork + exit + wait", b->fork_ns);
}

static int module_loaded(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return access(path, F_OK) == 0;
}

void bench_print_platform(void)
{
	long b = syscall(VMLWC_SYS_POOL, VMLWC_POOL_PLATFORM);
	const char *hv;

	if (b < 0) {
		printf("platform: unknown (not in the guest)\n");
		return;
	}
	if (module_loaded("kvm_pvm"))
		hv = "PVM (kvm_pvm: ring 0 emulated)";
	else if (module_loaded("kvm_intel"))
		hv = (b & VMLWC_PLAT_SYSCALL_CPL3) ? "VT-x (kvm_intel) with PVM's paths (VMLWC_TEST_PVM)" : "VT-x (kvm_intel)";
	else if (module_loaded("kvm_amd"))
		hv = (b & VMLWC_PLAT_SYSCALL_CPL3) ? "SVM (kvm_amd) with PVM's paths (VMLWC_TEST_PVM)" : "SVM (kvm_amd)";
	else
		hv = (b & VMLWC_PLAT_SYSCALL_CPL3) ? "KVM where `syscall` stays at CPL 3 (PVM-like)" : "KVM (vendor module unknown)";
	printf("platform: %s, %s%s\n", hv,
	       (b & VMLWC_PLAT_TDP) ? "two-dimensional paging (EPT/NPT)" : "shadow paging",
	       getenv("VMLWC_IN_KVM_VM") ? ", inside the QEMU TCG test VM (times are TCG's; counts carry over)" : "");
	printf("paths: syscalls %s; lwC calls %s; copy-on-write and table copies %s; page tables %s; "
	       "TLS bases %s; vector state at a switch %s\n",
	       (b & VMLWC_PLAT_SYSCALL_CPL3) ? "ring the doorbell from ring 3" : "enter the stub at LSTAR",
	       (b & VMLWC_PLAT_DOORBELL_LWC) ? "ring the doorbell" : "int3 into the stub",
	       (b & VMLWC_PLAT_HOST_COW) ? "on the host (one exit)" : "in the stub (no exit)",
	       syscall(VMLWC_SYS_POOL, VMLWC_POOL_LAZY) ? "shared at lwc_create" : "copied whole at lwc_create",
	       (b & VMLWC_PLAT_FSGSBASE) ? "restored at ring 3" : "written by the host",
	       (b & VMLWC_PLAT_XSAVE) ? "cleared by XRSTOR (init image)" : "cleared by FXRSTOR (init image)");
	printf("host thread: seccomp allow-list of %ld syscalls\n", syscall(VMLWC_SYS_POOL, VMLWC_POOL_SANDBOX));
}
