/* Syscall redirection: argument kinds, the per-syscall descriptor table and the marshalling API. */
#ifndef VMLWC_SYS_H
#define VMLWC_SYS_H

#include <sys/uio.h>

#include "../base.h"
#include "../lwc_host.h"
#include "../sysdesc.h"
#include "../vcpu.h"

/* How the host treats each argument of a redirected syscall. */
enum sys_argk {
	A_VAL = 0,    /* passed through unchanged */
	A_FD,         /* guest descriptor -> host fd through the lwC's table */
	A_DIRFD,      /* A_FD, or AT_FDCWD */
	A_PATH,       /* NUL-terminated string, at most PATH_MAX */
	A_IN,         /* struct of .size bytes read by the kernel */
	A_OUT,        /* struct of .size bytes written by the kernel (copied out when ret >= 0) */
	A_INOUT,      /* both */
	A_BUF_IN,     /* buffer; its length is argument .size */
	A_BUF_OUT,    /* buffer of argument .size bytes, ret bytes written */
	A_ADDR_OUT,   /* sockaddr buffer whose socklen_t* is argument .size (value-result) */
	A_IOV_IN,     /* struct iovec array read by the kernel; its count is argument .size */
	A_IOV_OUT,    /* struct iovec array written by the kernel */
	A_FD_OPT,     /* A_FD, or -1 passed through */
};

#define ARG_OPT 1      /* NULL is allowed and passed as NULL */
#define ARG_TEXT 2     /* A_PATH: a string stored as it is (a symlink's target), never resolved */
#define ARG_NOFOLLOW 4 /* A_PATH: the call does not follow a final symlink (readlink) */

enum sys_retk {
	R_VAL = 0,  /* plain value or -errno */
	R_FD,       /* a new host fd: installed in the lwC's table, the guest number returned */
};

#define SYS_MAX_BOUNCE 4096

/* One redirected call in flight. */
struct sys_call {
	struct vcpu *v;
	struct lwc *l;
	struct fdtab *fds; /* the descriptor table it uses: l's, or another lwC's for lwc_syscall */
	long nr;
	long a[6];     /* as the guest passed them */
	long h[6];     /* translated for the host */
	const struct sys_desc *d;
	/* bounce storage, one slot per argument */
	char bounce[6][SYS_MAX_BOUNCE] __attribute__((aligned(16)));
	int bounced[6];
	long len[6];   /* A_ADDR_OUT: socklen in; bounced buffer lengths */
	uint32_t slen[6];  /* host socklen_t for A_ADDR_OUT */
	struct iovec iov[1024]; /* the host side of one iovec argument */
	size_t bounce_used; /* bytes of the vCPU's bounce area this call took */
	int umask_swapped;  /* the process's umask is this lwC's for the call: it keeps the lock */
};

/*
 * A family's descriptors are plain const data, one table per family file (fs.c: sys_fs_table,
 * ...), each entry a syscall number and its descriptor; sys_init (table.c) points
 * g_vm.sys.table at them. SYS(nr, designated initializers of struct sys_desc).
 */
struct sys_entry {
	long nr;
	struct sys_desc d;
};
#define SYS(nr_, ...) { .nr = (nr_), .d = { __VA_ARGS__ } }

extern const struct sys_entry sys_fs_table[], sys_net_table[], sys_poll_table[], sys_mm_table[],
	sys_time_table[], sys_proc_table[], sys_signal_table[], sys_sigfd_table[], sys_cred_table[];
extern const unsigned sys_fs_table_len, sys_net_table_len, sys_poll_table_len, sys_mm_table_len,
	sys_time_table_len, sys_proc_table_len, sys_signal_table_len, sys_sigfd_table_len, sys_cred_table_len;

/* signalfd (sigfd.c) */
void sigfd_init(void);                        /* registers its fdtab close hook */
long sigfd_read(struct sys_call *c, int hfd); /* read on a signalfd (host fd hfd): bytes or -errno */

/* Marshalling helpers for custom handlers. */
long sys_generic(struct sys_call *c);          /* run c->d->arg marshalling + raw syscall nr; result or -errno */
long sys_raw(long nr, const long h[6]);        /* the raw syscall: result or -errno */
/* the guest's own syscall that may block, run without vm_lock where safe: result or -errno */
long sys_block6(struct sys_call *c, long nr, long a0, long a1, long a2, long a3, long a4, long a5);
#define SYS_BLOCK(c, nr, ...) sys_block_(c, nr, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define sys_block_(c, nr, a, b, cc, d, e, f, ...) \
	sys_block6((c), (nr), (long)(a), (long)(b), (long)(cc), (long)(d), (long)(e), (long)(f))
long sys_install_fd(struct sys_call *c, long hret, int cloexec); /* R_FD for custom handlers: guest fd or -errno */
long sys_install_pair(struct sys_call *c, gva_t out, const int hfd[2], int cloexec); /* 0 or -errno */
int sys_fd(struct sys_call *c, long gfd);      /* host fd or -EBADF */
/* A guest path as the host must use it (path: PATH_MAX bytes): relative to the lwC's own working
   directory, and never through a procfs magic link. 0 or -errno (ELOOP, EACCES, ENAMETOOLONG). */
int sys_path_fix(struct sys_call *c, long hdirfd, char *path, unsigned flags);
long sys_guest_fd_path(const char *path); /* /proc/self/fd/N, /dev/std*: N, else -1 */
int sys_path_cwd(struct sys_call *c, char *path); /* the lwC's own directory before a relative path; 0 or -ENAMETOOLONG */
void sys_proc_fd_path(char *buf, int h);  /* "/proc/self/fd/<h>" (buf: 32 bytes) */
/* iovec array at gva with cnt entries -> host iovecs in out (max entries); count or -errno */
int sys_iov(struct sys_call *c, gva_t gva, long cnt, int write, struct iovec *out, int max);

#define DESC(...) ((const struct sys_desc){ __VA_ARGS__ })
#define ARG(k, ...) { .kind = (k), ##__VA_ARGS__ }
#endif
