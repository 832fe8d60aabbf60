/* Attacks through paths and the host thread: devices, proc files, the seccomp filter. */
#include <dirent.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
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

/*
 * Devices and proc files are on allow-lists: what reaches the host's internals is refused.
 * A path that exists (as the process saw it before entering) must be refused with EACCES; one
 * this machine lacks (a container may have no /dev/mem or /proc/kcore) can only be ENOENT, and
 * proves nothing, so the paths every Linux process has must be among those refused.
 */
Test(attack_paths, host_internals_refused_the_rest_allowed, .timeout = 60)
{
	static char task_mem[64];
	/* the calling thread's own task directory: it exists, and is the vCPU thread's */
	snprintf(task_mem, sizeof(task_mem), "/proc/self/task/%d/mem", (int)syscall(SYS_gettid));
	const char *refused[] = { "/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/kvm",
				  "/proc/kcore", "/proc/kallsyms", "/proc/self/mem", "/proc/self/pagemap",
				  "/proc/self/smaps", "/proc/self/environ", "/proc/self/auxv", "/proc/self/syscall",
				  "/proc/self/map_files", "/proc/sysrq-trigger", task_mem };
	enum { N = sizeof(refused) / sizeof(refused[0]) };
	int exists[N], tested = 0;
	struct stat sb;
	for (unsigned i = 0; i < N; i++)
		exists[i] = stat(refused[i], &sb) == 0;
	ENTER();
	for (unsigned i = 0; i < N; i++) {
		int e = open_errno(refused[i], O_RDONLY);
		if (exists[i]) {
			cr_expect_eq(e, EACCES, "%s (exists): errno %d (%s)", refused[i], e, strerror(e));
			tested++;
		} else {
			cr_expect_eq(e, ENOENT, "%s (absent natively): errno %d (%s)", refused[i], e, strerror(e));
			cr_log_info("%s does not exist here: its refusal is not tested", refused[i]);
		}
	}
	/* /dev/kvm, /proc/kallsyms and the eight per-process files exist on every machine that runs this */
	cr_expect_geq(tested, 10, "only %d of the paths exist: the refusals were hardly tested", tested);
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
static void expect_view(const char *path)
{
	static char buf[1 << 16];
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
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
			cr_expect(hi - lo < (1UL << 30) || (lo & ((1UL << 30) - 1)), "%s: a library-sized region: %.60s",
				  path, l);
	}
}

Test(attack_paths, maps_shows_no_library_memory, .timeout = 60)
{
	ENTER();
	expect_view("/proc/self/maps");
}

static volatile pid_t other_tid;

static void *idle_thread(void *arg)
{
	(void)arg;
	other_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

/*
 * Pages of libvmlwc's writable segments an lwC can read (a write from them into a pipe works:
 * library state itself is a hole in every view) that hold needle.
 */
static const char *leak_needle;
static long leak_pages, scanned_pages;

static int scan_library(struct dl_phdr_info *i, size_t sz, void *arg)
{
	static char page[4096];
	int *p = arg;
	(void)sz;
	if (!strstr(i->dlpi_name, "libvmlwc"))
		return 0;
	for (int k = 0; k < i->dlpi_phnum; k++) {
		const ElfW(Phdr) *ph = &i->dlpi_phdr[k];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		uintptr_t lo = (i->dlpi_addr + ph->p_vaddr) & ~4095UL;
		uintptr_t hi = (i->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) & ~4095UL;
		for (uintptr_t a = lo; a < hi; a += 4096) {
			if (write(p[1], (void *)a, 4096) != 4096 || read(p[0], page, 4096) != 4096)
				continue;
			scanned_pages++;
			for (size_t o = 0; o + strlen(leak_needle) <= 4096; o++)
				if (!memcmp(page + o, leak_needle, strlen(leak_needle))) {
					leak_pages++;
					break;
				}
		}
	}
	return 0;
}

/*
 * The same map read through another thread's pid directory (/proc/<tid>/maps and
 * /proc/<pid>/task/<tid>/maps), and what reading it leaves behind: an lwC created afterwards
 * finds no line of the full map in the library's memory it can read.
 */
Test(attack_paths, maps_view_through_threads_and_nothing_left_behind, .timeout = 120)
{
	static char path[64];
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, idle_thread, NULL), 0);
	while (!other_tid)
		;
	ENTER();
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)other_tid);
	expect_view(path);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/maps", (int)getpid(), (int)other_tid);
	expect_view(path);
	expect_view("/proc/self/maps");
	/* a line the full map has and the view has not: the vCPU's kvm_run mapping */
	char *needle = malloc(32);
	snprintf(needle, 32, "anon_inode:%s", "kvm");
	leak_needle = needle;
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		int p[2];
		if (pipe(p) == 0)
			dl_iterate_phdr(scan_library, p);
		long r[2] = { leak_pages, scanned_pages };
		lwc_switch(in.src, r, 2, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	/* no page read proves nothing: the scan must have read the library's data the lwC sees */
	cr_expect_gt(in.args[1], 0, "the scan read no page of libvmlwc's writable segments");
	cr_expect_eq(in.args[0], 0, "%ld of %ld pages of the library an lwC reads hold the full map", in.args[0],
		     in.args[1]);
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
