/* Entering the guest keeps the program's state; the library's own descriptors stay invisible. */
#include <dirent.h>
#include <fcntl.h>
#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <xmmintrin.h>

#include "guest_common.h"

static __thread long tls_value = 1234;
static int data_value = 42;

static int open_fds(int *fds, int max)
{
	int n = 0;
	for (int fd = 0; fd < 4096 && n < max; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			fds[n++] = fd;
	return n;
}

Test(enter, keeps_heap_stack_tls_fpu, .timeout = 60)
{
	char *heap = malloc(4096);
	volatile long stack_value = 0x5a5a5a5a;
	unsigned short fcw;

	strcpy(heap, "survives");
	tls_value = 777;
	fesetround(FE_UPWARD); /* x87 and SSE */
	_MM_SET_ROUNDING_MODE(_MM_ROUND_TOWARD_ZERO); /* SSE only */
	ENTER();
	cr_expect_str_eq(heap, "survives");
	cr_expect_eq(stack_value, 0x5a5a5a5a);
	cr_expect_eq(tls_value, 777);
	cr_expect_eq(data_value, 42);
	cr_expect_eq(_MM_GET_ROUNDING_MODE(), _MM_ROUND_TOWARD_ZERO);
	__asm__ volatile("fnstcw %0" : "=m"(fcw));
	cr_expect_eq(fcw & 0xc00, 0x800, "x87 rounding control kept (fcw %#x)", fcw);
	heap[0] = 'S';
	cr_expect_eq(heap[0], 'S');
	free(heap);
	char *more = malloc(1 << 20);
	cr_assert_not_null(more);
	memset(more, 1, 1 << 20);
	free(more);
}

Test(enter, keeps_fds_hides_library_fds, .timeout = 60)
{
	int before[256], after[256], nb, na;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	nb = open_fds(before, 256);
	ENTER();
	na = open_fds(after, 256);
	cr_assert_eq(na, nb, "guest sees %d fds, %d before entering", na, nb);
	for (int i = 0; i < na; i++)
		cr_expect_eq(after[i], before[i]);
	cr_expect_eq(write(p[1], "x", 1), 1);
	char c = 0;
	cr_expect_eq(read(p[0], &c, 1), 1);
	cr_expect_eq(c, 'x');
	/* an fd opened in the guest gets the lowest free guest number */
	int fd = open("/dev/null", O_RDONLY);
	cr_expect_geq(fd, 0);
	int lowest = 0;
	while (lowest < nb && before[lowest] == lowest)
		lowest++;
	cr_expect_eq(fd, lowest);
}

Test(enter, stdio_works, .timeout = 60)
{
	char path[] = "/tmp/vmlwc-stdio-XXXXXX";
	int fd = mkstemp(path);
	char buf[64] = { 0 };

	cr_assert_geq(fd, 0);
	ENTER();
	FILE *f = fdopen(fd, "w+");
	cr_assert_not_null(f);
	fprintf(f, "hello %d from the guest\n", 42);
	fflush(f);
	rewind(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	cr_expect_str_eq(buf, "hello 42 from the guest\n");
	fclose(f);
	unlink(path);
	printf("stdout from the guest\n");
	fflush(stdout);
}

Test(enter, active_version_and_twice, .timeout = 60)
{
	cr_expect_eq(vmlwc_active(), 0);
	cr_expect_str_eq(vmlwc_version(), "0.2.0");
	ENTER();
	errno = 0;
	cr_expect_eq(vmlwc_init(NULL), -1);
	cr_expect_eq(errno, EBUSY);
}

Test(enter, one_exit_per_redirected_syscall, .timeout = 60)
{
	struct vmlwc_stats a, b;

	ENTER();
	cr_assert_eq(vmlwc_stats(&a), 0);
	for (int i = 0; i < 100; i++)
		syscall(SYS_getppid);
	cr_assert_eq(vmlwc_stats(&b), 0);
	/* 100 getppid plus the second vmlwc_stats call itself */
	cr_expect_eq(b.vm_exits - a.vm_exits, 101, "exits: %lu", (unsigned long)(b.vm_exits - a.vm_exits));
	cr_expect_eq(b.syscalls_redirected - a.syscalls_redirected, 101);
	cr_expect_geq(b.hv_exits - a.hv_exits, 101);
}
