/* Attacks through paths and the host thread: devices, proc files, the seccomp filter. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static int open_errno(const char *path, int flags)
{
	errno = 0;
	int fd = open(path, flags);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

/* Devices and proc files are on allow-lists: what reaches the host's internals is refused. */
Test(attack_paths, host_internals_refused_the_rest_allowed, .timeout = 60)
{
	ENTER();
	const char *refused[] = { "/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/kvm",
				  "/proc/kcore", "/proc/kallsyms", "/proc/self/mem", "/proc/self/pagemap",
				  "/proc/self/smaps", "/proc/self/environ", "/proc/self/auxv", "/proc/self/syscall",
				  "/proc/self/map_files", "/proc/sysrq-trigger", "/proc/self/task/1/mem" };
	for (unsigned i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int e = open_errno(refused[i], O_RDONLY);
		cr_expect(e == EACCES || e == ENOENT, "%s: errno %d (%s)", refused[i], e, strerror(e));
	}
	errno = 0;
	cr_expect_null(opendir("/proc/self/fd"), "the host's descriptors listed");
	cr_expect_eq(errno, EACCES);
	cr_expect_null(opendir("/proc/self/fdinfo"));
	const char *allowed[] = { "/dev/null", "/dev/zero", "/dev/urandom", "/proc/cpuinfo", "/proc/self/status",
				  "/proc/self/stat", "/proc/self/cmdline", "/proc/meminfo", "/proc/uptime" };
	for (unsigned i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		cr_expect_eq(open_errno(allowed[i], O_RDONLY), 0, "%s refused", allowed[i]);
}

/* /proc/self/maps is a view without the library: no arena, no gate window, no kvm_run. */
Test(attack_paths, maps_shows_no_library_memory, .timeout = 60)
{
	static char buf[1 << 16];
	ENTER();
	int fd = open("/proc/self/maps", O_RDONLY);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	ssize_t n, have = 0;
	while ((n = read(fd, buf + have, sizeof(buf) - 1 - (size_t)have)) > 0)
		have += n;
	buf[have] = 0;
	close(fd);
	cr_expect_gt(have, 0);
	cr_expect(strstr(buf, "[stack]") != NULL, "the application's own mappings are there:\n%s", buf);
	char gate[32];
	snprintf(gate, sizeof(gate), "%lx-", VMLWC_GATE_VA);
	cr_expect(strstr(buf, gate) == NULL, "the gate window is listed:\n%s", buf);
	cr_expect(strstr(buf, "anon_inode:kvm") == NULL, "a kvm_run page is listed");
	/* every line: nothing that overlaps the library's arena (a 1 GiB aligned, >= 1 GiB region) */
	for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		unsigned long lo, hi;
		if (sscanf(l, "%lx-%lx", &lo, &hi) == 2)
			cr_expect(hi - lo < (1UL << 30) || (lo & ((1UL << 30) - 1)), "a library-sized region: %.60s", l);
	}
}

/* The vCPU's host thread runs under a seccomp filter (defence in depth), with no new privileges. */
Test(attack_paths, host_thread_under_seccomp, .timeout = 60)
{
	static char buf[8192];
	ENTER();
	int fd = open("/proc/thread-self/status", O_RDONLY);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = 0;
	cr_expect(strstr(buf, "Seccomp:\t2") != NULL, "no filter on the host thread:\n%s", buf);
	cr_expect(strstr(buf, "NoNewPrivs:\t1") != NULL, "new privileges possible:\n%s", buf);
	long allowed = syscall(VMLWC_SYS_POOL, VMLWC_POOL_SANDBOX);
	cr_expect(allowed > 100 && allowed < 300, "allow-list of %ld syscalls", allowed);
}

/* A host-side bug that issued a syscall outside the list would kill the process (test hook). */
static void forbidden(void)
{
	syscall(VMLWC_SYS_TEST_FORBIDDEN);
	_exit(0);
}

Test(attack_paths, a_forbidden_host_syscall_kills, .timeout = 60)
{
	setenv("VMLWC_TEST_HOOKS", "1", 1);
	int st = run_child(forbidden);
	unsetenv("VMLWC_TEST_HOOKS");
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "status %#x", st);
}
