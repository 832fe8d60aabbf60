/* Descriptor policy: what a guest may hold, decided on an allow-list of devices and proc files. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base.h"
#include "arena.h"
#include "memrange.h"
#include "policy.h"
#include "rawsys.h"
#include "state.h"

void policy_init(void)
{
	struct stat st;

	if (stat("/proc/self/stat", &st) == 0)
		g_vm.policy.proc_dev = st.st_dev;
	if (g_vm.kvm.vm_fd >= 0 && fstat(g_vm.kvm.vm_fd, &st) == 0)
		g_vm.policy.anon_dev = st.st_dev;
}

/* Character devices a guest may hold: the harmless ones and terminals. Everything else (memory,
   ports, kmsg, misc devices such as /dev/kvm, any block device) is refused. */
static int chardev_allowed(unsigned maj, unsigned min)
{
	switch (maj) {
	case 1: return min == 3 || min == 5 || min == 7 || min == 8 || min == 9; /* null zero full random urandom */
	case 4: return 1;                    /* tty0-63, ttyS */
	case 5: return min <= 2;             /* tty, console, ptmx */
	case 136: case 137: case 138: case 139: case 140: case 141: case 142: case 143: return 1; /* pts */
	default: return 0;
	}
}

/* Per-process proc files a guest may open, for itself or another process. */
static const char *const pid_files[] = {
	"stat", "statm", "status", "cmdline", "comm", "limits", "cgroup", "oom_score", "oom_score_adj",
	"oom_adj", "schedstat", "loginuid", "sessionid", "mountinfo", "mounts", "mountstats", "io", "wchan",
	"task", "net", "root", "cwd", "exe", "maps", /* maps: a view without the library (policy_fd_view) */
};

/* System-wide proc entries: plain information, nothing of this process's internals. */
static const char *const sys_files[] = {
	"cpuinfo", "meminfo", "stat", "uptime", "loadavg", "version", "filesystems", "mounts", "swaps",
	"vmstat", "zoneinfo", "buddyinfo", "diskstats", "partitions", "interrupts", "softirqs", "cgroups",
	"sys", "net", "self", "thread-self", "pressure", "crypto", "devices", "misc", "locks",
};

static int in_list(const char *s, size_t n, const char *const *list, unsigned count)
{
	for (unsigned i = 0; i < count; i++)
		if (strlen(list[i]) == n && memcmp(s, list[i], n) == 0)
			return 1;
	return 0;
}

/*
 * A proc path (as readlink gives it) a guest may hold: /proc itself, a pid directory and the
 * files above in it (also under task/<tid>/), and the system-wide entries above and below
 * them (maps only as the view policy_fd_view gives). Refused: mem, pagemap, smaps, map_files, fd, fdinfo, environ, auxv, syscall,
 * stack, kcore, kallsyms, kpage*, sysrq-trigger and everything else not named.
 */
int policy_proc_path_allowed(const char *path)
{
	const char *p = path;
	size_t n;

	if (strncmp(p, "/proc", 5) != 0 || (p[5] && p[5] != '/'))
		return 0;
	p += 5;
	if (!*p || !strcmp(p, "/"))
		return 1;
	p++;
	n = strcspn(p, "/");
	if (p[0] >= '0' && p[0] <= '9') {
		for (int depth = 0; depth < 2; depth++) {
			p += n; /* past the pid (or tid) */
			if (!*p)
				return 1;
			p++;
			n = strcspn(p, "/");
			if (n == 4 && !memcmp(p, "task", 4) && depth == 0) {
				p += n;
				if (!*p)
					return 1;
				p++;
				n = strcspn(p, "/");
				continue; /* task/<tid>/<file> */
			}
			break;
		}
		return in_list(p, n, pid_files, ARRAY_SIZE(pid_files));
	}
	return in_list(p, n, sys_files, ARRAY_SIZE(sys_files));
}

/* The path the kernel gives for host fd hfd, or a negative errno. */
static long fd_path(int hfd, char *path, size_t size)
{
	char link[32] = "/proc/self/fd/", num[16];
	int i = 0, v = hfd;
	long n;

	do {
		num[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (int j = 0; j < i; j++)
		link[14 + j] = num[i - 1 - j];
	link[14 + i] = 0;
	n = RAW4(SYS_readlinkat, AT_FDCWD, link, path, size - 1);
	if (n <= 0)
		return -EACCES;
	path[n] = 0;
	return n;
}

/*
 * Whether a host fd may enter a descriptor table: 0, or -EACCES. The library's KVM objects,
 * devices outside the allow-list and proc files outside theirs never do: /proc/<pid>/mem would
 * write host memory behind every page table, maps and fd would show the library's objects and
 * addresses, a reopened vCPU fd could rewrite the guest's registers.
 */
int policy_fd_allowed(int hfd)
{
	struct stat st;
	char path[256];

	if (RAW2(SYS_fstat, hfd, &st) < 0)
		return 0; /* not a descriptor: the caller's own error follows */
	if (S_ISBLK(st.st_mode))
		return -EACCES;
	if (S_ISCHR(st.st_mode))
		return chardev_allowed(major(st.st_rdev), minor(st.st_rdev)) ? 0 : -EACCES;
	if (st.st_dev != g_vm.policy.proc_dev && !(g_vm.policy.anon_dev && st.st_dev == g_vm.policy.anon_dev))
		return 0;
	if (fd_path(hfd, path, sizeof(path)) < 0)
		return -EACCES; /* cannot tell what it is: refuse */
	if (strncmp(path, "anon_inode:kvm", 14) == 0)
		return -EACCES;
	if (st.st_dev == g_vm.policy.proc_dev)
		return policy_proc_path_allowed(path) ? 0 : -EACCES;
	return 0;
}

/* Decimal digits of v into out (NUL-terminated); their count. */
static int dec(char *out, long v)
{
	char t[24];
	int n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (int i = 0; i < n; i++)
		out[i] = t[n - 1 - i];
	out[n] = 0;
	return n;
}

/*
 * Whether path (as the kernel names an open proc file) is the memory map of this process: of
 * its pid or of any of its threads (/proc/<tid>/maps and /proc/<pid>/task/<tid>/maps are the
 * same map), not of another process.
 */
static int is_own_maps(const char *path)
{
	char task[64] = "/proc/";
	const char *p;
	long n = 0;

	if (strncmp(path, "/proc/", 6) != 0)
		return 0;
	p = path + 6;
	for (; *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (*p - '0');
	if (p == path + 6)
		return 0;
	if (!strncmp(p, "/task/", 6)) {
		p += 6;
		if (*p < '0' || *p > '9')
			return 0;
		p += strspn(p, "0123456789");
	}
	if (strcmp(p, "/maps") != 0)
		return 0;
	if (n == g_vm.policy.pid)
		return 1;
	/* a thread of this process: /proc/<pid>/task/<n> exists */
	int k = 6 + dec(task + 6, g_vm.policy.pid);
	memcpy(task + k, "/task/", 6);
	dec(task + k + 6, n);
	return RAW4(SYS_faccessat, AT_FDCWD, task, F_OK, 0) == 0;
}

static uint64_t hex(const char **p)
{
	uint64_t v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

#define VIEW_IN 65536
#define VIEW_OUT 65536
#define VIEW_HEAD 64 /* enough of a line for "lo-hi " */

struct view {
	char *out;
	long nout, fd;
	char head[VIEW_HEAD];
	int nhead, keep, decided;
};

static void view_put(struct view *w, const char *b, long n)
{
	for (long i = 0; i < n; i++) {
		if (w->nout == VIEW_OUT) {
			RAW3(SYS_write, w->fd, w->out, w->nout);
			w->nout = 0;
		}
		w->out[w->nout++] = b[i];
	}
}

/* A line's address range decides whether it is the library's: then none of the line is written. */
static void view_decide(struct view *w)
{
	const char *p = w->head;
	uint64_t lo, hi;

	w->head[w->nhead < VIEW_HEAD ? w->nhead : VIEW_HEAD - 1] = 0;
	lo = hex(&p);
	hi = (*p == '-') ? (p++, hex(&p)) : lo;
	w->keep = hi <= lo || !mem_is_protected(lo, hi - lo);
	w->decided = 1;
	if (w->keep)
		view_put(w, w->head, w->nhead);
}

/*
 * What the guest gets for a host fd it may hold: the fd itself, or for this process's own map
 * (/proc/<pid or tid>/maps) a view without the library's memory (arena, gate window, its state,
 * kvm_run pages): a memfd with the other lines, whole however long. The text passes through the
 * library's own memory only (arena pages no lwC maps), never through memory an lwC can read.
 * The caller closes hfd when it gets another fd back.
 */
int policy_fd_view(int hfd)
{
	struct view w = { 0 };
	char path[256];
	long n;

	if (fd_path(hfd, path, sizeof(path)) < 0 || !is_own_maps(path))
		return hfd;
	if (!g_vm.policy.view_buf && !(g_vm.policy.view_buf = arena_pages(&g_vm.arena, (VIEW_IN + VIEW_OUT) / PAGE_SIZE)))
		return -ENOMEM;
	char *in = g_vm.policy.view_buf;
	w.out = in + VIEW_IN;
	w.fd = RAW2(SYS_memfd_create, "maps", MFD_CLOEXEC);
	if (w.fd < 0)
		return (int)w.fd;
	while ((n = RAW3(SYS_read, hfd, in, VIEW_IN)) > 0) {
		for (long i = 0; i < n; i++) {
			char c = in[i];
			if (!w.decided) {
				if (w.nhead < VIEW_HEAD)
					w.head[w.nhead++] = c;
				if (c == ' ' || c == '\n' || w.nhead == VIEW_HEAD)
					view_decide(&w);
			} else if (w.keep) {
				view_put(&w, &c, 1);
			}
			if (c == '\n')
				w.nhead = w.decided = w.keep = 0;
		}
	}
	if (w.nout)
		RAW3(SYS_write, w.fd, w.out, w.nout);
	memset(in, 0, VIEW_IN + VIEW_OUT); /* nothing of the full map stays behind */
	RAW3(SYS_lseek, w.fd, 0, SEEK_SET);
	return (int)w.fd;
}
