/* Redirected syscalls: sockets (addresses, messages with descriptor passing, socket options). */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/filter.h>

#include "../fdtab.h"
#include "../uaccess.h"
#include "rawsys.h"
#include "sys.h"

#define SZ_SOCKADDR_MAX 128  /* struct sockaddr_storage: the kernel clamps msg_namelen to it */
#define SZ_SOCK_FPROG 16
#define CTL_MAX 65536        /* control data of one message, in the vCPU bounce area */
#define MMSG_MAX 1024        /* UIO_MAXIOV: the kernel's own bound on sendmmsg/recvmmsg */
#define BPF_MAX_INSNS 4096

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef TCP_ZEROCOPY_RECEIVE
#define TCP_ZEROCOPY_RECEIVE 35
#endif
#define K_PACKET_FANOUT_DATA 22
#define K_IP6T_SO_SET_REPLACE 64
#define K_IP6T_SO_SET_ADD_COUNTERS 65

_Static_assert(sizeof(struct msghdr) == 56, "struct msghdr");
_Static_assert(sizeof(struct mmsghdr) == 64, "struct mmsghdr");
_Static_assert(sizeof(struct sock_fprog) == SZ_SOCK_FPROG, "struct sock_fprog");

static size_t ctl_cap(const struct sys_call *c)
{
	return c->v->bounce_size < CTL_MAX ? c->v->bounce_size : CTL_MAX;
}

/* Next header of a control buffer of len bytes at ctl, or NULL; the kernel's CMSG_OK walk. */
static struct cmsghdr *cmsg_at(unsigned char *ctl, size_t len, size_t off)
{
	struct cmsghdr *h;

	if (off > len || len - off < sizeof(*h))
		return NULL;
	h = (struct cmsghdr *)(ctl + off);
	if (h->cmsg_len < sizeof(*h) || h->cmsg_len > len - off)
		return NULL;
	return h;
}

static int cmsg_has_fds(const struct cmsghdr *h)
{
	return h->cmsg_level == SOL_SOCKET &&
	       (h->cmsg_type == SCM_RIGHTS || h->cmsg_type == SCM_PIDFD);
}

static size_t cmsg_nfds(const struct cmsghdr *h)
{
	return (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
}

/* Outgoing SCM_RIGHTS: guest descriptors to host ones, in place in the host copy. */
static long ctl_to_host(struct sys_call *c, unsigned char *ctl, size_t len)
{
	struct cmsghdr *h;

	for (size_t off = 0; off + sizeof(*h) <= len; off += CMSG_ALIGN(h->cmsg_len)) {
		h = cmsg_at(ctl, len, off);
		if (!h)
			return -EINVAL;
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		int *fd = (int *)CMSG_DATA(h);
		for (size_t i = 0; i < cmsg_nfds(h); i++) {
			int hfd = sys_fd(c, fd[i]);
			if (hfd < 0)
				return -EBADF;
			fd[i] = hfd;
		}
	}
	return 0;
}

/* Closes the host descriptors of received control data from message offset off, fd index i. */
static void ctl_close_host(unsigned char *ctl, size_t len, size_t off, size_t i)
{
	struct cmsghdr *h;

	for (; (h = cmsg_at(ctl, len, off)) != NULL; off += CMSG_ALIGN(h->cmsg_len), i = 0) {
		if (!cmsg_has_fds(h))
			continue;
		for (int *fd = (int *)CMSG_DATA(h); i < cmsg_nfds(h); i++)
			RAW1(SYS_close, fd[i]);
	}
}

/* Closes guest descriptors installed by ctl_to_guest (the control data now holds guest numbers). */
static void ctl_close_guest(struct sys_call *c, unsigned char *ctl, size_t len)
{
	struct cmsghdr *h;

	for (size_t off = 0; (h = cmsg_at(ctl, len, off)) != NULL; off += CMSG_ALIGN(h->cmsg_len)) {
		if (!cmsg_has_fds(h))
			continue;
		for (size_t i = 0; i < cmsg_nfds(h); i++)
			fdtab_close(c->fds, ((int *)CMSG_DATA(h))[i]);
	}
}

/*
 * Incoming SCM_RIGHTS / SCM_PIDFD: each host descriptor passes the descriptor policy and is
 * installed in the guest table, its number rewritten. When one cannot be (a full table, or a
 * descriptor no lwC may hold), it and the rest are closed and the control data cut there with
 * MSG_CTRUNC, as the kernel does for a full table. Returns the control length to report.
 */
static size_t ctl_to_guest(struct sys_call *c, unsigned char *ctl, size_t len, int cloexec,
			   int *flags)
{
	struct cmsghdr *h;
	size_t off;

	for (off = 0; (h = cmsg_at(ctl, len, off)) != NULL; off += CMSG_ALIGN(h->cmsg_len)) {
		if (!cmsg_has_fds(h))
			continue;
		int *fd = (int *)CMSG_DATA(h);
		for (size_t i = 0; i < cmsg_nfds(h); i++) {
			long g = sys_install_fd(c, fd[i], cloexec || h->cmsg_type == SCM_PIDFD);
			if (g >= 0) {
				fd[i] = (int)g;
				continue;
			}
			ctl_close_host(ctl, len, off, i + 1); /* fd[i] is closed already */
			*flags |= MSG_CTRUNC;
			if (i == 0)
				return off;
			h->cmsg_len = CMSG_LEN(i * sizeof(int));
			off += CMSG_SPACE(i * sizeof(int));
			return off < len ? off : len;
		}
	}
	return len;
}

/* The guest msghdr's name into the host one (slot 0); value-result for receives. */
static long name_in(struct sys_call *c, const struct msghdr *m, struct msghdr *hm, int recv)
{
	int n = (int)m->msg_namelen;

	hm->msg_name = NULL;
	hm->msg_namelen = 0;
	if (!m->msg_name)
		return 0;
	if (n < 0)
		return -EINVAL;
	if (n > SZ_SOCKADDR_MAX)
		n = SZ_SOCKADDR_MAX;
	if (recv ? ua_check(c->l, (gva_t)m->msg_name, (size_t)n, UA_WRITE) < 0
		 : ua_copy_in(c->l, c->bounce[0], (gva_t)m->msg_name, (size_t)n) < 0)
		return -EFAULT;
	hm->msg_name = c->bounce[0];
	hm->msg_namelen = (socklen_t)n;
	return 0;
}

static long iov_in(struct sys_call *c, const struct msghdr *m, struct msghdr *hm, int recv)
{
	int n;

	if (m->msg_iovlen > MMSG_MAX)
		return -EMSGSIZE;
	n = sys_iov(c, (gva_t)m->msg_iov, (long)m->msg_iovlen, recv, c->iov, (int)ARRAY_SIZE(c->iov));
	if (n < 0)
		return n;
	hm->msg_iov = c->iov;
	hm->msg_iovlen = (size_t)n;
	return 0;
}

static long send_one(struct sys_call *c, int hfd, gva_t um, unsigned flags)
{
	unsigned char *ctl = (unsigned char *)c->v->bounce;
	struct msghdr m, hm;
	long r;

	if (ua_copy_in(c->l, &m, um, sizeof(m)) < 0)
		return -EFAULT;
	memset(&hm, 0, sizeof(hm));
	hm.msg_flags = m.msg_flags;
	r = name_in(c, &m, &hm, 0);
	if (r == 0)
		r = iov_in(c, &m, &hm, 0);
	if (r < 0)
		return r;
	if (m.msg_controllen) {
		if (m.msg_controllen > INT_MAX || m.msg_controllen > ctl_cap(c))
			return -ENOBUFS;
		if (ua_copy_in(c->l, ctl, (gva_t)m.msg_control, m.msg_controllen) < 0)
			return -EFAULT;
		r = ctl_to_host(c, ctl, m.msg_controllen);
		if (r < 0)
			return r;
		hm.msg_control = ctl;
		hm.msg_controllen = m.msg_controllen;
	}
	return SYS_BLOCK(c, SYS_sendmsg, hfd, &hm, flags);
}

/* recvmsg's results into the guest msghdr at um: address, control data, lengths and flags. */
static int recv_copy_out(struct sys_call *c, gva_t um, const struct msghdr *m,
			 const struct msghdr *hm, size_t clen)
{
	uint64_t controllen = clen;
	uint32_t namelen = hm->msg_namelen;
	size_t n = hm->msg_namelen < m->msg_namelen ? hm->msg_namelen : m->msg_namelen;

	/* Like the kernel: msg_namelen is written only with a name buffer, as the full length. */
	if (m->msg_name && (ua_copy_out(c->l, (gva_t)m->msg_name, hm->msg_name, n) < 0 ||
			    ua_copy_out(c->l, um + offsetof(struct msghdr, msg_namelen), &namelen,
					sizeof(namelen)) < 0))
		return -EFAULT;
	if (clen && ua_copy_out(c->l, (gva_t)m->msg_control, hm->msg_control, clen) < 0)
		return -EFAULT;
	if (ua_copy_out(c->l, um + offsetof(struct msghdr, msg_controllen), &controllen,
			sizeof(controllen)) < 0 ||
	    ua_copy_out(c->l, um + offsetof(struct msghdr, msg_flags), &hm->msg_flags,
			sizeof(hm->msg_flags)) < 0)
		return -EFAULT;
	return 0;
}

static long recv_one(struct sys_call *c, int hfd, gva_t um, unsigned flags, int *oflags)
{
	unsigned char *ctl = (unsigned char *)c->v->bounce;
	struct msghdr m, hm;
	size_t clen = 0;
	long r;

	if (ua_copy_in(c->l, &m, um, sizeof(m)) < 0)
		return -EFAULT;
	memset(&hm, 0, sizeof(hm));
	r = name_in(c, &m, &hm, 1);
	if (r == 0)
		r = iov_in(c, &m, &hm, 1);
	if (r < 0)
		return r;
	if (m.msg_control && m.msg_controllen) {
		clen = m.msg_controllen < ctl_cap(c) ? m.msg_controllen : ctl_cap(c);
		if (ua_check(c->l, (gva_t)m.msg_control, clen, UA_WRITE) < 0)
			return -EFAULT;
		hm.msg_control = ctl;
		hm.msg_controllen = clen;
	}
	/* Everything written after the receive is checked first: received data is not given back. */
	if (ua_check(c->l, um, sizeof(m), UA_WRITE) < 0)
		return -EFAULT;
	r = SYS_BLOCK(c, SYS_recvmsg, hfd, &hm, flags);
	if (r < 0)
		return r;
	if (hm.msg_control)
		clen = ctl_to_guest(c, ctl, hm.msg_controllen, (flags & MSG_CMSG_CLOEXEC) != 0,
				    &hm.msg_flags);
	else
		clen = 0;
	if (recv_copy_out(c, um, &m, &hm, clen) < 0) {
		ctl_close_guest(c, ctl, clen); /* only when another thread unmapped it meanwhile */
		return -EFAULT;
	}
	if (oflags)
		*oflags = hm.msg_flags;
	return r;
}

static long sys_sendmsg(struct sys_call *c)
{
	int h = sys_fd(c, (int)c->a[0]);

	return h < 0 ? h : send_one(c, h, (gva_t)c->a[1], (unsigned)c->a[2]);
}

static long sys_recvmsg(struct sys_call *c)
{
	int h = sys_fd(c, (int)c->a[0]);

	return h < 0 ? h : recv_one(c, h, (gva_t)c->a[1], (unsigned)c->a[2], NULL);
}

/* sendmmsg: one host sendmsg per message; the count sent, or the first error. */
static long sys_sendmmsg(struct sys_call *c)
{
	int h = sys_fd(c, (int)c->a[0]);
	gva_t vec = (gva_t)c->a[1];
	unsigned vlen = (unsigned)c->a[2], flags = (unsigned)c->a[3], i;
	long r = 0;

	if (h < 0)
		return h;
	if (vlen > MMSG_MAX)
		vlen = MMSG_MAX;
	for (i = 0; i < vlen; i++) {
		gva_t um = vec + (gva_t)i * sizeof(struct mmsghdr);
		r = send_one(c, h, um, flags);
		if (r < 0)
			break;
		uint32_t n = (uint32_t)r;
		if (ua_copy_out(c->l, um + offsetof(struct mmsghdr, msg_len), &n, sizeof(n)) < 0) {
			r = -EFAULT;
			break;
		}
	}
	return i ? (long)i : r;
}

static int64_t mono_ns(void)
{
	struct timespec t;

	RAW2(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* recvmmsg: one host recvmsg per message; the timeout is checked between messages, as natively. */
static long sys_recvmmsg(struct sys_call *c)
{
	int h = sys_fd(c, (int)c->a[0]);
	gva_t vec = (gva_t)c->a[1], uts = (gva_t)c->a[4];
	unsigned vlen = (unsigned)c->a[2], flags = (unsigned)c->a[3], i;
	struct timespec ts;
	int64_t end = 0;
	long r = 0;

	if (h < 0)
		return h;
	if (uts) {
		if (ua_copy_in(c->l, &ts, uts, sizeof(ts)) < 0)
			return -EFAULT;
		if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
			return -EINVAL;
		end = mono_ns() + (ts.tv_sec > INT64_MAX / 2000000000 ? INT64_MAX / 2 :
				   ts.tv_sec * 1000000000 + ts.tv_nsec);
	}
	if (vlen > MMSG_MAX)
		vlen = MMSG_MAX;
	for (i = 0; i < vlen; i++) {
		gva_t um = vec + (gva_t)i * sizeof(struct mmsghdr);
		int of = 0;
		r = recv_one(c, h, um, flags, &of);
		if (r < 0)
			break;
		uint32_t n = (uint32_t)r;
		if (ua_copy_out(c->l, um + offsetof(struct mmsghdr, msg_len), &n, sizeof(n)) < 0) {
			r = -EFAULT;
			break;
		}
		if (flags & MSG_WAITFORONE)
			flags |= MSG_DONTWAIT;
		if (uts && mono_ns() >= end) {
			i++;
			break;
		}
		if (of & MSG_OOB) {
			i++;
			break;
		}
	}
	if (uts) {
		int64_t left = end - mono_ns();
		if (left < 0)
			left = 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		if (ua_copy_out(c->l, uts, &ts, sizeof(ts)) < 0)
			return -EFAULT;
	}
	return i ? (long)i : r;
}

static long sys_socketpair(struct sys_call *c)
{
	int hfd[2];
	long r = RAW4(SYS_socketpair, c->a[0], c->a[1], c->a[2], hfd);

	if (r < 0)
		return r;
	return sys_install_pair(c, (gva_t)c->a[3], hfd, ((int)c->a[1] & SOCK_CLOEXEC) != 0);
}

/*
 * Socket options carry plain values and inline structures, except a few that hold user
 * pointers (filters, netfilter tables, zero-copy receive, RDS) or descriptors: those are either
 * translated below or refused here, so the host kernel never follows a guest address.
 */
static int sockopt_allowed(int level, int name)
{
	switch (level) {
	case SOL_SOCKET:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_ICMPV6:
	case IPPROTO_RAW:
	case SOL_NETLINK:
	case SOL_ALG:
	case SOL_TLS:
		return 1;
	case IPPROTO_IP:
		return name < 64; /* 64 and up: netfilter and IPVS control, with user pointers */
	case IPPROTO_IPV6:
		return name != K_IP6T_SO_SET_REPLACE && name != K_IP6T_SO_SET_ADD_COUNTERS;
	case IPPROTO_TCP:
		return name != TCP_ZEROCOPY_RECEIVE;
	case SOL_PACKET:
		return name != K_PACKET_FANOUT_DATA;
	default:
		return 0;
	}
}

static long sys_setsockopt(struct sys_call *c)
{
	int h = sys_fd(c, (int)c->a[0]);
	int level = (int)c->a[1], name = (int)c->a[2], len = (int)c->a[4];
	gva_t uval = (gva_t)c->a[3];

	if (h < 0)
		return h;
	if (len < 0)
		return -EINVAL;
	if (!sockopt_allowed(level, name))
		return -ENOPROTOOPT;
	if (level == SOL_SOCKET && (name == SO_ATTACH_FILTER || name == SO_ATTACH_REUSEPORT_CBPF)) {
		/* struct sock_fprog points at the filter: copy it and point at the copy. */
		struct sock_fprog fp;
		if (len != SZ_SOCK_FPROG)
			return -EINVAL;
		if (ua_copy_in(c->l, &fp, uval, sizeof(fp)) < 0)
			return -EFAULT;
		if (fp.len == 0 || fp.len > BPF_MAX_INSNS || !fp.filter)
			return -EINVAL;
		size_t bytes = (size_t)fp.len * sizeof(struct sock_filter);
		if (bytes > c->v->bounce_size)
			return -ENOMEM;
		if (ua_copy_in(c->l, c->v->bounce, (gva_t)fp.filter, bytes) < 0)
			return -EFAULT;
		fp.filter = (struct sock_filter *)c->v->bounce;
		return RAW5(SYS_setsockopt, h, level, name, &fp, sizeof(fp));
	}
	if (level == SOL_SOCKET && (name == SO_ATTACH_BPF || name == SO_ATTACH_REUSEPORT_EBPF)) {
		int gfd, hfd;
		if (len < (int)sizeof(int))
			return -EINVAL;
		if (ua_copy_in(c->l, &gfd, uval, sizeof(gfd)) < 0)
			return -EFAULT;
		hfd = sys_fd(c, gfd);
		if (hfd < 0)
			return hfd;
		return RAW5(SYS_setsockopt, h, level, name, &hfd, sizeof(hfd));
	}
	c->a[4] = len;
	c->d = &DESC(.name = "setsockopt",
		.arg = { ARG(A_FD), ARG(A_VAL), ARG(A_VAL), ARG(A_BUF_IN, .flags = ARG_OPT, .size = 4),
			 ARG(A_VAL) });
	return sys_generic(c);
}

static long sys_getsockopt(struct sys_call *c)
{
	int h = sys_fd(c, (int)c->a[0]);
	int level = (int)c->a[1], name = (int)c->a[2], len, unit = 1;
	gva_t uval = (gva_t)c->a[3], ulen = (gva_t)c->a[4];
	void *buf = c->v->bounce;
	size_t bytes, cap = c->v->bounce_size;
	socklen_t hl;
	long r;

	if (h < 0)
		return h;
	if (!sockopt_allowed(level, name))
		return -ENOPROTOOPT;
	if (ua_copy_in(c->l, &len, ulen, sizeof(len)) < 0)
		return -EFAULT;
	if (len < 0)
		return -EINVAL;
	/* SO_GET_FILTER counts in filter blocks, not bytes. */
	if (level == SOL_SOCKET && name == SO_GET_FILTER)
		unit = (int)sizeof(struct sock_filter);
	if ((size_t)len > cap / (size_t)unit)
		len = (int)(cap / (size_t)unit);
	bytes = (size_t)len * (size_t)unit;
	/* Some options read their buffer too (IP_MSFILTER, PACKET_HDRLEN...): in and out. */
	if (uval && bytes && ua_copy_in(c->l, buf, uval, bytes) < 0)
		return -EFAULT;
	hl = (socklen_t)len;
	r = RAW5(SYS_getsockopt, h, level, name, uval ? buf : NULL, &hl);
	if (r == -ERANGE)
		return ua_copy_out(c->l, ulen, &hl, sizeof(hl)) < 0 ? -EFAULT : r;
	if (r < 0)
		return r;
	if (level == SOL_SOCKET && name == SO_PEERPIDFD && hl == sizeof(int)) {
		long g = sys_install_fd(c, *(int *)buf, 1);
		if (g < 0)
			return g;
		*(int *)buf = (int)g;
	}
	bytes = ((size_t)hl < (size_t)len ? (size_t)hl : (size_t)len) * (size_t)unit;
	if ((uval && bytes && ua_copy_out(c->l, uval, buf, bytes) < 0) ||
	    ua_copy_out(c->l, ulen, &hl, sizeof(hl)) < 0) {
		if (level == SOL_SOCKET && name == SO_PEERPIDFD && hl == sizeof(int))
			fdtab_close(c->fds, *(int *)buf);
		return -EFAULT;
	}
	return r;
}

#define FD ARG(A_FD)
#define VAL ARG(A_VAL)

const struct sys_entry sys_net_table[] = {
	SYS(SYS_socket, .name = "socket", .arg = { VAL, VAL, VAL },
		.ret = R_FD, .cloexec_arg = 2, .cloexec_bit = SOCK_CLOEXEC),
	SYS(SYS_socketpair, .name = "socketpair", .fn = sys_socketpair),
	SYS(SYS_bind, .name = "bind", .arg = { FD, ARG(A_BUF_IN, .size = 2), VAL }),
	SYS(SYS_connect, .name = "connect",
		.arg = { FD, ARG(A_BUF_IN, .size = 2), VAL }),
	SYS(SYS_listen, .name = "listen", .arg = { FD, VAL }),
	SYS(SYS_accept, .name = "accept",
		.arg = { FD, ARG(A_ADDR_OUT, .size = 2), VAL }, .ret = R_FD),
	SYS(SYS_accept4, .name = "accept4",
		.arg = { FD, ARG(A_ADDR_OUT, .size = 2), VAL, VAL },
		.ret = R_FD, .cloexec_arg = 4, .cloexec_bit = SOCK_CLOEXEC),
	SYS(SYS_getsockname, .name = "getsockname",
		.arg = { FD, ARG(A_ADDR_OUT, .size = 2), VAL }),
	SYS(SYS_getpeername, .name = "getpeername",
		.arg = { FD, ARG(A_ADDR_OUT, .size = 2), VAL }),
	SYS(SYS_sendto, .name = "sendto",
		.arg = { FD, ARG(A_BUF_IN, .size = 2), VAL, VAL,
			 ARG(A_BUF_IN, .flags = ARG_OPT, .size = 5), VAL }),
	SYS(SYS_recvfrom, .name = "recvfrom",
		.arg = { FD, ARG(A_BUF_OUT, .size = 2), VAL, VAL, ARG(A_ADDR_OUT, .size = 5), VAL }),
	SYS(SYS_sendmsg, .name = "sendmsg", .fn = sys_sendmsg),
	SYS(SYS_recvmsg, .name = "recvmsg", .fn = sys_recvmsg),
	SYS(SYS_sendmmsg, .name = "sendmmsg", .fn = sys_sendmmsg),
	SYS(SYS_recvmmsg, .name = "recvmmsg", .fn = sys_recvmmsg),
	SYS(SYS_shutdown, .name = "shutdown", .arg = { FD, VAL }),
	SYS(SYS_setsockopt, .name = "setsockopt", .fn = sys_setsockopt),
	SYS(SYS_getsockopt, .name = "getsockopt", .fn = sys_getsockopt),
};
const unsigned sys_net_table_len = ARRAY_SIZE(sys_net_table);
