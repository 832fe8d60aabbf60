/* Descriptor policy: objects through which a guest could reach library memory or the VM. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "internal.h"
#include "rawsys.h"

void policy_init(void)
{
	struct stat st;

	if (stat("/proc/self/stat", &st) == 0)
		g_vm.proc_dev = st.st_dev;
	if (g_vm.vm_fd >= 0 && fstat(g_vm.vm_fd, &st) == 0)
		g_vm.anon_dev = st.st_dev;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/*
 * /proc/<pid>/mem writes host memory behind every page table; a reopened vm or vcpu fd
 * could map kvm_run and rewrite the guest's registers. Neither may enter a descriptor table.
 */
int policy_fd_allowed(int hfd)
{
	struct stat st;
	char link[64], path[256];
	long n;

	if (RAW2(SYS_fstat, hfd, &st) < 0)
		return 0;
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 10 && minor(st.st_rdev) == 232)
		return -EACCES; /* /dev/kvm */
	if (st.st_dev != g_vm.proc_dev && !(g_vm.anon_dev && st.st_dev == g_vm.anon_dev))
		return 0;
	memcpy(link, "/proc/self/fd/", 14);
	{
		char num[16];
		int i = 0, v = hfd;
		do {
			num[i++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		for (int j = 0; j < i; j++)
			link[14 + j] = num[i - 1 - j];
		link[14 + i] = 0;
	}
	n = RAW4(SYS_readlinkat, AT_FDCWD, link, path, sizeof(path) - 1);
	if (n <= 0)
		return -EACCES; /* cannot tell what it is: refuse */
	path[n] = 0;
	if (strncmp(path, "anon_inode:kvm", 14) == 0)
		return -EACCES;
	if (st.st_dev == g_vm.proc_dev && (ends_with(path, (size_t)n, "/mem") ||
					   ends_with(path, (size_t)n, "/pagemap")))
		return -EACCES;
	return 0;
}
