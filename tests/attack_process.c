/* Attacks through what the process shares: signal handlers, the working directory, the umask. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static volatile long root_ran, evil_ran;
static volatile pid_t native_tid;

static void root_handler(int sig)
{
	(void)sig;
	root_ran++;
}

static void evil_handler(int sig)
{
	(void)sig;
	evil_ran++; /* on a native thread this would be an lwC's code running outside the guest */
}

static void *native_thread(void *arg)
{
	(void)arg;
	native_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

/*
 * A child lwC installs a handler and sends the signal to a thread that runs natively: the
 * thread must run the root's handler (the process's), never the child's. The child's own
 * disposition is its own record (it reads it back), and the root reads back its own.
 */
static int signal_attack(void)
{
	pthread_t th;
	struct sigaction sa = { .sa_handler = root_handler };

	sigaction(SIGUSR1, &sa, NULL);
	if (pthread_create(&th, NULL, native_thread, NULL) != 0)
		return 10;
	while (!native_tid)
		;
	if (vmlwc_init(NULL) != 0)
		return 200;
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		struct sigaction evil = { .sa_handler = evil_handler }, back;
		long r0 = sigaction(SIGUSR1, &evil, NULL);
		long r1 = sigaction(SIGUSR1, NULL, &back);
		long r2 = syscall(SYS_tgkill, getpid(), native_tid, SIGUSR1);
		long res[3] = { r0 == 0 && r1 == 0 && back.sa_handler == evil_handler, r2, 0 };
		lwc_switch(in.src, res, 3, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	if (c < 0)
		return 11;
	if (lwc_switch(c, NULL, 0, &in) != LWC_SWITCHED)
		return 12;
	if (in.args[0] != 1)
		return 13; /* the child could not set and read back its own disposition */
	if (in.args[1] != 0)
		return 14;
	for (int i = 0; i < 2000 && !root_ran && !evil_ran; i++)
		usleep(1000);
	struct sigaction now;
	sigaction(SIGUSR1, NULL, &now);
	if (now.sa_handler != root_handler)
		return 15; /* the child's disposition replaced the root's */
	if (evil_ran)
		return 16; /* the child's handler ran natively */
	if (!root_ran)
		return 17;
	return 0;
}

Test(attack_process, a_childs_signal_handler_never_runs_natively, .timeout = 60)
{
	pid_t p = fork();
	int st;
	if (p == 0)
		_exit(signal_attack());
	waitpid(p, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "status %#x (15: the root's disposition was replaced, 16: the child's handler ran natively)", st);
}

/* A scratch directory per test, and whether a file exists. */
static char scratch[64];

static void scratch_make(void)
{
	strcpy(scratch, "/tmp/vmlwc-proc-XXXXXX");
	cr_assert_not_null(mkdtemp(scratch));
}

static int exists_in(const char *dir, const char *name)
{
	char p[256];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

/*
 * The working directory and the umask: a child's chdir and umask are its own. The root's
 * directory and umask stay where they were, a relative path in the child goes from the
 * child's directory, and a file the child creates gets the child's umask.
 */
Test(attack_process, working_directory_and_umask_are_per_lwc, .timeout = 60)
{
	static char a[96], b[96], seen[256];
	scratch_make();
	snprintf(a, sizeof(a), "%s/a", scratch);
	snprintf(b, sizeof(b), "%s/b", scratch);
	cr_assert_eq(mkdir(a, 0755), 0);
	cr_assert_eq(mkdir(b, 0755), 0);
	cr_assert_eq(chdir(a), 0);
	umask(022);
	ENTER();
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long r0 = chdir(b);
		umask(0777);
		int fd = open("made-by-child", O_CREAT | O_WRONLY, 0666);
		close(fd);
		long r1 = getcwd(seen, sizeof(seen)) && strcmp(seen, b) == 0;
		long res[3] = { r0, fd, r1 };
		lwc_switch(in.src, res, 3, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_assert_eq(in.args[0], 0, "the child's chdir failed");
	cr_assert_geq(in.args[1], 0, "the child's open failed");
	cr_expect_eq(in.args[2], 1, "the child's getcwd is not its directory");
	char mine[256];
	cr_assert_not_null(getcwd(mine, sizeof(mine)));
	cr_expect_str_eq(mine, a, "the child's chdir moved the root's directory");
	cr_expect(exists_in(b, "made-by-child"), "the child's relative path did not go from its directory");
	cr_expect(!exists_in(a, "made-by-child"), "the child's relative path went from the root's directory");
	struct stat st;
	char p[160];
	snprintf(p, sizeof(p), "%s/made-by-child", b);
	cr_assert_eq(stat(p, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0, "the child's umask did not apply: mode %o", st.st_mode & 0777);
	int fd = open("made-by-root", O_CREAT | O_WRONLY, 0666);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(stat("made-by-root", &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0644, "the child's umask applied to the root: mode %o", st.st_mode & 0777);
}

/* What only the process may change: a child's setrlimit, alarm, setpgid and the like fail. */
Test(attack_process, process_wide_settings_are_the_roots, .timeout = 60)
{
	ENTER();
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		struct rlimit low = { 16, 16 };
		struct itimerval it = { .it_value = { 100, 0 } };
		long res[6] = { setrlimit(RLIMIT_NOFILE, &low) ? errno : 0, syscall(SYS_alarm, 100) < 0 ? errno : 0,
				setitimer(ITIMER_REAL, &it, NULL) ? errno : 0, setpgid(0, 0) ? errno : 0,
				prlimit(0, RLIMIT_NOFILE, &low, NULL) ? errno : 0, setsid() < 0 ? errno : 0 };
		lwc_switch(in.src, res, 6, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	const char *what[] = { "setrlimit", "alarm", "setitimer", "setpgid", "prlimit", "setsid" };
	for (int i = 0; i < 6; i++)
		cr_expect_eq(in.args[i], EPERM, "a child's %s: errno %ld", what[i], in.args[i]);
	struct rlimit now;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
	cr_expect_eq(now.rlim_cur, rl.rlim_cur, "the process's limit moved");
	cr_expect_eq(alarm(0), 0, "an alarm is set");
}

/* A file in the scratch directory holding "secret", mode 0600; its path in path. */
static void secret_file_make(char *path, size_t size, const char *name)
{
	scratch_make();
	snprintf(path, size, "%s/%s", scratch, name);
	int fd = open(path, O_CREAT | O_RDWR, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "secret", 6), 6);
	close(fd);
}

/* Closes every descriptor above 2 but keep (a child's handle for its creator). */
static void fds_close_all_but(int keep)
{
	if (keep > 3)
		syscall(SYS_close_range, 3, keep - 1, 0);
	syscall(SYS_close_range, keep + 1, ~0U, 0);
}

/*
 * /proc/self/fd/N names a HOST descriptor: a child that lost a file (LWC_UNMAP of its
 * descriptor) must not reach it through the link, by any call: truncate, chmod, readlink.
 * Each call is tried through every link, whatever readlink said: a refused readlink proves
 * nothing about the others. The file's size and mode show whether any went through.
 */
Test(attack_process, magic_links_reach_no_host_descriptor, .timeout = 120)
{
	static char path[160];
	secret_file_make(path, sizeof(path), "secret");
	ENTER();
	int sfd = open(path, O_RDWR); /* the guest's own descriptor for it */
	cr_assert_geq(sfd, 0);
	struct lwc_rspec s = { .flags = LWC_FILES | LWC_UNMAP, .u.fds = { sfd, sfd } };
	struct lwc_msg in;
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		long leaks = 0;
		char link[64], got[256];
		/* no descriptor of its own above 2 but the creator's handle: N in /proc/self/fd/N
		 * may then name nothing the child holds */
		fds_close_all_but(in.src);
		for (int k = 3; k < 1024; k++) {
			if (k == in.src)
				continue;
			snprintf(link, sizeof(link), "/proc/self/fd/%d", k);
			ssize_t n = readlink(link, got, sizeof(got) - 1);
			if (n > 0) {
				got[n] = 0;
				leaks += strstr(got, "secret") != NULL;
			}
			/* the child holds no descriptor N: any success reached a host descriptor */
			leaks += truncate(link, 0) == 0;
			leaks += chmod(link, 0666) == 0;
		}
		long res[2] = { leaks, 0 };
		lwc_switch(in.src, res, 2, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 0, "%ld calls reached a host descriptor through /proc/self/fd", in.args[0]);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 6, "the secret file was truncated");
	cr_expect_eq(st.st_mode & 0777, 0600, "the secret file's mode changed: %o", st.st_mode & 0777);
}

/*
 * The magic-link check must fail closed: with the host's descriptor table full (EMFILE), the
 * check of /proc/<pid>/fd/N cannot open anything, and the call must then fail rather than run
 * unchecked (it reached host descriptors through the numeric pid, which no translation covers).
 */
Test(attack_process, magic_link_check_fails_closed_when_descriptors_run_out, .timeout = 300)
{
	static char path[160];
	secret_file_make(path, sizeof(path), "secret2");
	ENTER();
	int sfd = open(path, O_RDWR);
	cr_assert_geq(sfd, 0);
	struct lwc_rspec s = { .flags = LWC_FILES | LWC_UNMAP, .u.fds = { sfd, sfd } };
	struct lwc_msg in;
	int c = lwc_create(&s, 1, 0, &in);
	if (c == LWC_SWITCHED) {
		long leaks = 0, opened = 0, refused = 0;
		char link[64], got[256];
		int pid = getpid();
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		/* fill the host's table: every open of the child is a host descriptor too */
		while (open("/dev/null", O_RDONLY) >= 0)
			opened++;
		int full = errno == EMFILE || errno == ENFILE;
		for (int k = 3; k < (int)rl.rlim_cur && k < 65536; k++) {
			snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, k);
			ssize_t n = readlink(link, got, sizeof(got) - 1);
			if (n <= 0) {
				refused += errno == EMFILE || errno == ENFILE || errno == ELOOP || errno == EACCES;
			} else {
				got[n] = 0;
				leaks += strstr(got, "secret2") != NULL;
			}
			/* whatever readlink said: k is the host's descriptor k, never one of the child's */
			leaks += truncate(link, 0) == 0;
			leaks += chmod(link, 0666) == 0;
		}
		fds_close_all_but(in.src);
		long res[4] = { leaks, full, opened, refused };
		lwc_switch(in.src, res, 4, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[1], 1, "the child could not fill the descriptor table (%ld opened)", in.args[2]);
	cr_expect_eq(in.args[0], 0, "%ld calls reached a host descriptor through /proc/<pid>/fd with the table full",
		     in.args[0]);
	cr_expect_gt(in.args[3], 0, "no readlink was refused");
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 6, "the secret file was truncated");
	cr_expect_eq(st.st_mode & 0777, 0600, "the secret file's mode changed: %o", st.st_mode & 0777);
}

/* Locking memory is the process's: a child cannot unlock (or lock) the pages it shares with the root. */
Test(attack_process, memory_locks_are_the_roots, .timeout = 120)
{
	static char page[4096] __attribute__((aligned(4096)));
	ENTER();
	page[0] = 1;
	cr_assert_eq(mlock(page, sizeof(page)), 0, "the root's mlock: %s", strerror(errno));
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		long res[4];
		errno = 0;
		res[0] = munlock(page, sizeof(page));
		res[1] = errno;
		errno = 0;
		res[2] = mlock(page, sizeof(page));
		res[3] = errno;
		lwc_switch(in.src, res, 4, &in);
		for (;;)
			lwc_switch(in.src, NULL, 0, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect(in.args[0] == -1 && in.args[1] == EPERM, "a child's munlock of the root's page: %ld (errno %ld)",
		  in.args[0], in.args[1]);
	cr_expect(in.args[2] == -1 && in.args[3] == EPERM, "a child's mlock: %ld (errno %ld)", in.args[2], in.args[3]);
	cr_expect_eq(munlock(page, sizeof(page)), 0, "the root's munlock: %s", strerror(errno));
}
