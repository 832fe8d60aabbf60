/* Defence in depth: the vCPU's host thread may issue only what redirection and the run loop do. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"
#include "arena.h"
#include "errors.h"
#include "rawsys.h"
#include "sandbox.h"
#include "sysdesc.h"
#include "state.h"

#define KVM_GET_XSAVE2_ _IOR(KVMIO, 0xcf, struct kvm_xsave)

/*
 * Syscalls the host side issues itself, beside the redirected ones (raw calls of the run loop,
 * exit handlers, the frame pool, descriptor and credential shadows, tracing, death by signal).
 */
static const int internal[] = {
	SYS_ioctl, SYS_pread64, SYS_madvise, SYS_prlimit64, SYS_close, SYS_fcntl, SYS_readlinkat,
	SYS_fstat, SYS_newfstatat, SYS_getpid, SYS_gettid, SYS_tgkill, SYS_rt_sigaction,
	SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_exit_group, SYS_exit, SYS_clock_gettime, SYS_write,
	SYS_setresuid, SYS_setresgid, SYS_setgroups, SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap,
	SYS_brk, SYS_openat, SYS_read, SYS_restart_syscall, SYS_memfd_create, SYS_lseek,
	SYS_clone, SYS_futex, SYS_arch_prctl, SYS_rseq, SYS_get_robust_list, SYS_prctl,
	/* guest threads: host threads made, woken, given TLS; adopted threads' kernel state */
};

/* KVM ioctls the run loop and exit handlers issue on the library's own descriptors. */
static const unsigned long kvm_ioctls[] = {
	KVM_RUN, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_MSRS, KVM_SET_MSRS,
	KVM_GET_XSAVE, KVM_GET_XSAVE2_, KVM_SET_XSAVE, KVM_SET_USER_MEMORY_REGION, KVM_CHECK_EXTENSION,
	KVM_ENABLE_CAP,
	/* a vCPU made for a new guest thread */
	KVM_CREATE_VCPU, KVM_GET_STATS_FD, KVM_SET_CPUID2, KVM_SET_XCRS, KVM_HAS_DEVICE_ATTR,
	KVM_SET_DEVICE_ATTR,
};

/*
 * Built early in vmlwc_init (libseccomp allocates: before the root's page table mirrors the
 * heap) into a BPF program kept in the arena; installed last, with raw syscalls only, on the
 * calling thread: from then on it is the vCPU's host thread and nothing else. Anything outside
 * the allow-list kills the process: the host side never issues it, so only a bug or an exploit
 * of the library could. ioctl is limited to the KVM requests above and the terminal requests
 * redirected ioctls pass on.
 */
int sandbox_build(void)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	const unsigned *tty;
	unsigned ntty = sys_ioctl_requests(&tty), allowed = 0;
	int r = 0, fd;

	if (!f)
		return err_set(ENOMEM, "seccomp_init failed");
	for (long nr = 0; nr < SYS_NR_MAX && r == 0; nr++) {
		int in = sys_redirected(nr) && nr != SYS_ioctl;
		for (unsigned i = 0; i < ARRAY_SIZE(internal) && !in; i++)
			in = internal[i] == nr && nr != SYS_ioctl;
		if (in) {
			r = seccomp_rule_add(f, SCMP_ACT_ALLOW, (int)nr, 0);
			allowed++;
		}
	}
	for (unsigned i = 0; i < ARRAY_SIZE(kvm_ioctls) && r == 0; i++)
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, kvm_ioctls[i]));
	for (unsigned i = 0; i < ntty && r == 0; i++)
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, tty[i]));
	fd = memfd_create("vmlwc-seccomp", MFD_CLOEXEC);
	if (r == 0 && fd < 0)
		r = -errno;
	if (r == 0)
		r = seccomp_export_bpf(f, fd);
	seccomp_release(f);
	if (r == 0) {
		off_t n = lseek(fd, 0, SEEK_END);
		if (n <= 0 || n % sizeof(struct sock_filter) || n > 64 * 1024)
			r = -EINVAL;
		else if (!(g_vm.sandbox.prog = arena_pages(&g_vm.arena, PAGE_ALIGN_UP((size_t)n) / PAGE_SIZE)))
			r = -ENOMEM;
		else if (pread(fd, g_vm.sandbox.prog, (size_t)n, 0) != n)
			r = -EIO;
		else
			g_vm.sandbox.len = (unsigned)(n / sizeof(struct sock_filter));
	}
	if (fd >= 0)
		close(fd);
	if (r < 0)
		return err_set(-r, "seccomp filter for the vCPU thread: %s", strerror(-r));
	g_vm.sandbox.syscalls = allowed + 1; /* ioctl, by request */
	return 0;
}

int sandbox_install(void)
{
	struct sock_fprog prog = { .len = (unsigned short)g_vm.sandbox.len, .filter = g_vm.sandbox.prog };
	long r = RAW2(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1);

	if (r == 0)
		r = RAW3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog); /* every thread: adopted ones too */
	if (r < 0)
		return err_set((int)-r, "installing the vCPU thread's seccomp filter: %s", strerror((int)-r));
	return 0;
}
