/* Redirection edge cases: bad pointers, unknown syscalls, time. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <sched.h>
#include <sys/random.h>

#include <signal.h>
#include <stdlib.h>

#include "guest_common.h"
#include "vmlwc_abi.h"
#define VMLWC_TEST_STUB_FAULT_NR VMLWC_SYS_TEST_STUB_FAULT

Test(syscall, efault_and_process_goes_on, .timeout = 60)
{
	int p[2];
	char buf[16];

	ENTER();
	cr_assert_eq(pipe(p), 0);
	cr_expect_eq(write(p[1], "x", 1), 1);
	void *volatile low = (void *)16;
	cr_expect_eq(read(p[0], low, 1), -1);
	cr_expect_eq(errno, EFAULT);
	void *volatile null = NULL;
	cr_expect_eq(write(p[1], null, 1), -1);
	cr_expect_eq(errno, EFAULT);
	cr_expect_eq(write(p[1], (void *)0xffffffff80000000UL, 8), -1);
	cr_expect_eq(errno, EFAULT);
	cr_expect_eq(write(p[1], (void *)0xffff888000000000UL, 8), -1);
	cr_expect_eq(errno, EFAULT);
	char *gone = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(gone, MAP_FAILED);
	cr_assert_eq(munmap(gone, 8192), 0);
	cr_expect_eq(write(p[1], gone, 8), -1);
	cr_expect_eq(errno, EFAULT);
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_expect_eq(read(p[0], ro, 1), -1, "read into a read-only page");
	cr_expect_eq(errno, EFAULT);
	struct stat sb;
	cr_expect_eq(stat((const char *)low, &sb), -1);
	cr_expect_eq(errno, EFAULT);
	/* the byte is still there: nothing was consumed by the failed calls */
	cr_expect_eq(read(p[0], buf, 1), 1);
	cr_expect_eq(buf[0], 'x');
}

Test(syscall, enosys_for_unknown, .timeout = 60)
{
	ENTER();
	errno = 0;
	cr_expect_eq(syscall(999), -1);
	cr_expect_eq(errno, ENOSYS);
	errno = 0;
	cr_expect_eq(syscall(SYS_io_uring_setup, 8, NULL), -1);
	cr_expect_eq(errno, ENOSYS);
	cr_expect_eq(getppid() > 0, 1);
}

Test(syscall, time_is_right, .timeout = 60)
{
	struct timespec before, vdso, sys, after;

	clock_gettime(CLOCK_REALTIME, &before);
	ENTER();
	clock_gettime(CLOCK_REALTIME, &vdso);
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &sys);
	clock_gettime(CLOCK_MONOTONIC, &after);
	double d = (vdso.tv_sec - before.tv_sec) + (vdso.tv_nsec - before.tv_nsec) / 1e9;
	cr_expect(d >= 0 && d < 30, "wall clock in the guest moved by %f s since entering", d);
	double s = (sys.tv_sec - vdso.tv_sec) + (sys.tv_nsec - vdso.tv_nsec) / 1e9;
	cr_expect(s >= -0.01 && s < 5, "vDSO and redirected clock_gettime differ by %f s", s);
	struct timespec m1, m2, nap = { 0, 20 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &m1);
	cr_expect_eq(nanosleep(&nap, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	double slept = (m2.tv_sec - m1.tv_sec) + (m2.tv_nsec - m1.tv_nsec) / 1e9;
	cr_expect(slept >= 0.019, "monotonic time advanced %f s over a 20 ms sleep", slept);
	struct timeval tv;
	cr_expect_eq(gettimeofday(&tv, NULL), 0);
	cr_expect(tv.tv_sec >= before.tv_sec);
	cr_expect(time(NULL) >= before.tv_sec);
}

Test(syscall, identity_and_misc, .timeout = 60)
{
	pid_t pid = getpid(), ppid = getppid();
	char host[256], guest[256];

	gethostname(host, sizeof(host));
	ENTER();
	cr_expect_eq(getpid(), pid);
	cr_expect_eq(getppid(), ppid);
	cr_expect_eq(syscall(SYS_gettid), pid);
	gethostname(guest, sizeof(guest));
	cr_expect_str_eq(guest, host);
	unsigned char r[64] = { 0 };
	cr_expect_eq(getrandom(r, sizeof(r), 0), (ssize_t)sizeof(r));
	int nz = 0;
	for (unsigned i = 0; i < sizeof(r); i++)
		nz += r[i] != 0;
	cr_expect_gt(nz, 32);
	cr_expect_eq(sched_yield(), 0);
}

/* Runs fn in a child with VMLWC_TRACE=1 and stderr in a file; returns the status, fills log. */
static int traced_child(void (*fn)(void), char *log, size_t logsz, const char *hooks)
{
	char path[] = "/tmp/vmlwc-trace-XXXXXX";
	int fd = mkstemp(path), st = 0;
	pid_t p;

	cr_assert_geq(fd, 0);
	p = fork();
	if (p == 0) {
		setenv("VMLWC_TRACE", "1", 1);
		if (hooks)
			setenv("VMLWC_TEST_HOOKS", hooks, 1);
		dup2(fd, 2);
		if (vmlwc_init(NULL) != 0)
			_exit(200);
		fn();
		_exit(0);
	}
	waitpid(p, &st, 0);
	ssize_t n = pread(fd, log, logsz - 1, 0);
	log[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return st;
}

static void call_unsupported(void)
{
	syscall(SYS_io_uring_setup, 8, NULL);
	syscall(SYS_getppid);
}

Test(syscall, trace_names_syscalls_and_enosys, .timeout = 60)
{
	static char log[65536];
	int st = traced_child(call_unsupported, log, sizeof(log), NULL);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	cr_expect(strstr(log, "unsupported syscall 425 (io_uring_setup): ENOSYS") != NULL, "trace:\n%s", log);
	cr_expect(strstr(log, "] getppid(") != NULL, "trace:\n%s", log);
	cr_expect(strstr(log, " us>") != NULL, "trace lines carry the time:\n%s", log);
}

static void stub_fault(void)
{
	syscall(VMLWC_TEST_STUB_FAULT_NR);
}

Test(syscall, stub_fault_dumps_and_aborts, .timeout = 60)
{
	static char log[65536];
	int st = traced_child(stub_fault, log, sizeof(log), "1");

	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x", st);
	cr_expect(strstr(log, "stub fault: #PF") != NULL, "dump:\n%s", log);
	cr_expect(strstr(log, "cr2 0xffffffff801ff000") != NULL, "dump names CR2:\n%s", log);
	cr_expect(strstr(log, "rip ") != NULL && strstr(log, "rax ") != NULL, "registers:\n%s", log);
}

Test(syscall, test_hook_refused_without_opt_in, .timeout = 60)
{
	unsetenv("VMLWC_TEST_HOOKS"); /* a test configuration may set it for every suite */
	ENTER();
	errno = 0;
	cr_expect_eq(syscall(VMLWC_TEST_STUB_FAULT_NR), -1);
	cr_expect_eq(errno, ENOSYS);
}

/*
 * The PVM syscall path on any platform: on PVM a ring-3 `syscall` jumps to LSTAR without
 * entering ring 0, with RCX/R11 holding the return state; LSTAR is the gate page's trampoline
 * there, which rings the doorbell. A ring-3 jump to the trampoline does exactly that.
 */
static long syscall_via_doorbell(long nr, long a0)
{
	long ret;
	__asm__ volatile("leaq 1f(%%rip), %%rcx\n\t"
			 "movl $0x202, %%r11d\n\t"
			 "jmp *%[lstar]\n"
			 "1:"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), [lstar] "r"(VMLWC_GATE_VA + VMLWC_GATE_LSTAR)
			 : "rcx", "r11", "memory");
	return ret;
}

/*
 * Which path a real `syscall` takes shows in KVM's count of emulated instructions: the
 * doorbell is a store to a guest-physical address without memory, which KVM emulates (one
 * instruction per call), while the stub's port (`out` from ring 0 on VT-x/SVM) needs none.
 * So with the PVM bit (LSTAR on the trampoline) real syscalls cost what the jumps cost;
 * without it they cost (nearly) nothing, and the jumps show the count works here.
 */
Test(syscall, pvm_path_doorbell, .timeout = 60)
{
	struct vmlwc_stats a, b, c;
	char buf[4] = { 0 };
	int p[2], n = 50;

	ENTER();
	cr_assert_eq(pipe(p), 0);
	cr_expect_eq(syscall_via_doorbell(SYS_getppid, 0), getppid());
	cr_expect_eq(syscall_via_doorbell(SYS_close, 999), -EBADF);
	cr_assert_eq(vmlwc_stats(&a), 0);
	for (int i = 0; i < n; i++)
		syscall_via_doorbell(SYS_getppid, 0);
	cr_assert_eq(vmlwc_stats(&b), 0);
	for (int i = 0; i < n; i++)
		syscall(SYS_getppid);
	cr_assert_eq(vmlwc_stats(&c), 0);
	/* each delta holds the later vmlwc_stats call too */
	uint64_t jumped = b.emulated_insns - a.emulated_insns, called = c.emulated_insns - b.emulated_insns;
	int pvm = (c.platform & VMLWC_PLATFORM_PVM) != 0;
	cr_log_info("platform %#lx: %d jumps emulated %lu instructions, %d syscalls %lu", (unsigned long)c.platform,
		    n, (unsigned long)jumped, n, (unsigned long)called);
	cr_expect_eq(b.vm_exits - a.vm_exits, (uint64_t)n + 1, "one exit per syscall on the doorbell path");
	cr_expect_eq(c.vm_exits - b.vm_exits, (uint64_t)n + 1, "one exit per real syscall");
	cr_expect_eq(c.page_faults, a.page_faults, "the doorbell is not a page fault");
	cr_expect(jumped >= (uint64_t)n && jumped <= (uint64_t)n + 1,
		  "%d jumps to the trampoline: %lu emulated instructions, not one doorbell store each", n,
		  (unsigned long)jumped);
	if (pvm)
		cr_expect(called >= (uint64_t)n && called <= (uint64_t)n + 1,
			  "PVM platform (%#lx): %d syscalls emulated %lu instructions, not one doorbell store each",
			  (unsigned long)c.platform, n, (unsigned long)called);
	else
		cr_expect(called <= (uint64_t)n / 10,
			  "platform %#lx without PVM: %d syscalls emulated %lu instructions, as on the doorbell path",
			  (unsigned long)c.platform, n, (unsigned long)called);
	cr_expect_eq(write(p[1], "ok", 2), 2);
	cr_expect_eq(read(p[0], buf, 2), 2);
	cr_expect_str_eq(buf, "ok");
}
