/* bench/signal: signal delivery into the guest (raise, tgkill, a SIGSEGV fault to siglongjmp) against native. */
#define _GNU_SOURCE
#include <gnu/libc-version.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_mt.h"
#include "bench_util.h"
#include "vmlwc.h"

static volatile sig_atomic_t flag;
static volatile int errors;
static sigjmp_buf jb;
static volatile char *guard; /* a PROT_NONE page */
static pid_t pid, tid;
static long faults;

static void on_usr1(int sig)
{
	(void)sig;
	flag = 1;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_addr != (void *)guard) { /* not the fault we made: die rather than loop */
		static const char m[] = "bench-signal: SIGSEGV at an unexpected address\n";
		if (write(2, m, sizeof(m) - 1) < 0)
			_exit(4);
		_exit(3);
	}
	siglongjmp(jb, 1);
}

static void op_raise(void *a)
{
	(void)a;
	flag = 0;
	raise(SIGUSR1);
	if (!flag)
		errors++;
}

static void op_tgkill(void *a)
{
	(void)a;
	flag = 0;
	syscall(SYS_tgkill, pid, tid, SIGUSR1);
	if (!flag)
		errors++;
}

static void op_segv(void *a)
{
	(void)a;
	if (sigsetjmp(jb, 1) == 0) { /* saves the mask: rt_sigprocmask here and in siglongjmp */
		(void)*guard;
		errors++; /* the read returned: no fault */
	} else {
		faults++;
	}
}

/* The same without saving the mask (the handler is SA_NODEFER: it changes none): the delivery alone. */
static void op_segv_nomask(void *a)
{
	(void)a;
	if (sigsetjmp(jb, 0) == 0) {
		(void)*guard;
		errors++; /* the read returned: no fault */
	} else {
		faults++;
	}
}

static void op_getppid(void *a)
{
	(void)a;
	syscall(SYS_getppid);
}

struct op {
	const char *name;
	void (*fn)(void *);
	double native, guest;
	struct cost c;
};

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int iters = quick ? 100 : 1000, batches = quick ? 5 : 15;
	struct op ops[] = {
		{ "raise(SIGUSR1) -> handler -> back", op_raise },
		{ "tgkill(self, SIGUSR1) -> handler -> back", op_tgkill },
		{ "SIGSEGV fault -> handler -> siglongjmp", op_segv },
		{ "  the same, mask not saved (SA_NODEFER)", op_segv_nomask },
		{ "getppid (no signal: one redirected call)", op_getppid },
	};
	const int nops = sizeof(ops) / sizeof(ops[0]);
	struct sigaction sa;
	struct vmlwc_stats s0, s1;

	guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED) {
		perror("bench-signal: mmap");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	pid = getpid();
	tid = (pid_t)syscall(SYS_gettid);

	for (int i = 0; i < nops; i++)
		ops[i].native = bench_median(ops[i].fn, NULL, iters * 10, batches);
	int nerr = errors;
	if (vmlwc_init(NULL) != 0) {
		fprintf(stderr, "bench-signal: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	/* the handlers installed natively are the root lwC's: vmlwc_init took them over */
	for (int i = 0; i < nops; i++) {
		faults = 0;
		ops[i].guest = bench_median(ops[i].fn, NULL, iters, batches);
		vmlwc_stats(&s0);
		for (int k = 0; k < iters; k++)
			ops[i].fn(NULL);
		vmlwc_stats(&s1);
		ops[i].c = cost_between(&s0, &s1, iters, 1);
	}

	bench_print_platform();
	printf("\nmedians of %d batches of %d (natively %d); exits etc. per operation over one more batch\n\n",
	       batches, iters, iters * 10);
	printf("%-44s %11s %11s %8s %8s %9s %9s\n", "operation", "native ns", "guest ns", "ratio", "exits",
	       "hv exits", "emul ins");
	for (int i = 0; i < nops; i++)
		printf("%-44s %11.1f %11.1f %8.1f %8.2f %9.2f %9.2f\n", ops[i].name, ops[i].native, ops[i].guest,
		       ops[i].guest / ops[i].native, ops[i].c.exits, ops[i].c.hv, ops[i].c.insns);
	printf("\nraise is glibc's (%s; 2.36 makes gettid, getpid, tgkill), then the handler's rt_sigreturn; tgkill is the\n"
	       "bare call (tid cached) and rt_sigreturn; the SIGSEGV rows read a PROT_NONE page, the handler\n"
	       "(SA_NODEFER) siglongjmps out: from sigsetjmp(.., 1) the mask is read there and set again by\n"
	       "siglongjmp (two rt_sigprocmask), from sigsetjmp(.., 0) neither (no rt_sigreturn either way).\n",
	       gnu_get_libc_version());
	if (errors || nerr) {
		fprintf(stderr, "bench-signal: %d deliveries missed (%d natively)\n", errors - nerr, nerr);
		return 1;
	}
	return 0;
}
