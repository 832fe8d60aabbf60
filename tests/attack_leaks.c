/* Late failures: a call the host ran but whose results cannot reach the caller leaves nothing behind. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

/*
 * Each test runs a hostile child lwC that makes a call creating something (a descriptor, a
 * mapping, an lwC) with an output the caller cannot write, hundreds of times, under
 * RLIMIT_NOFILE 256: were anything left over per call, the process would run out (EMFILE for
 * every lwC, the root included). The host's own count of descriptors and frames must come back.
 */

#define ROUNDS 400
#define PG 4096

static long pool_q(long what)
{
	return syscall(VMLWC_SYS_POOL, what);
}

/* A page the lwC can read but not write, holding v in its first word. */
static void *readonly_word(int v)
{
	int *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	*p = v;
	cr_assert_eq(mprotect(p, PG, PROT_READ), 0);
	return p;
}

static void low_nofile(void)
{
	struct rlimit rl = { 256, 256 };
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s", strerror(errno));
}

/* A listening TCP socket on loopback; its port in *port. */
static int listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(s, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s, 64), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &al), 0);
	*port = a.sin_port;
	return s;
}

/* Runs fn in a child lwC that holds every descriptor of the root; returns its first result word. */
static long in_child(long (*fn)(long), long arg)
{
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);

	if (c == LWC_SWITCHED) {
		long r = fn(arg);
		lwc_switch_discard(in.src, &r, 1);
	}
	cr_assert_geq(c, 0, "lwc_create: %s", strerror(errno));
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	lwc_close(c);
	return in.args[0];
}

static int lsock;
static uint16_t lport;

/* accept with its length pointer in a read-only page: EFAULT each time, no socket left. */
static long accept_readonly_len(long accept4_)
{
	socklen_t *len = readonly_word(sizeof(struct sockaddr_in));
	struct sockaddr_in peer;
	long bad = 0;

	for (int i = 0; i < ROUNDS; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = lport,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cl < 0)
			return 1000000 + i; /* out of descriptors: something leaked */
		if (connect(cl, (struct sockaddr *)&a, sizeof(a)) < 0)
			return 2000000 + i;
		errno = 0;
		int r = accept4_ ? accept4(lsock, (struct sockaddr *)&peer, len, SOCK_CLOEXEC)
				 : accept(lsock, (struct sockaddr *)&peer, len);
		if (r != -1 || errno != EFAULT)
			bad++;
		if (r >= 0)
			close(r);
		close(cl);
		/* the refused connection may wait in the queue (refused before accepting): take it */
		int q = accept4(lsock, NULL, NULL, SOCK_NONBLOCK);
		if (q >= 0)
			close(q);
	}
	return bad;
}

static void accept_case(int use_accept4)
{
	low_nofile();
	ENTER();
	lsock = listener(&lport);
	long fds = pool_q(VMLWC_POOL_HOST_FDS);
	long r = in_child(accept_readonly_len, use_accept4);
	cr_expect_eq(r, 0, "%s with a read-only length: %ld bad rounds (>= 1000000: ran out of descriptors at round %ld)",
		     use_accept4 ? "accept4" : "accept", r, r % 1000000);
	cr_expect_eq(pool_q(VMLWC_POOL_HOST_FDS), fds, "host descriptors held");
	int f = open("/dev/null", O_RDONLY);
	cr_expect_geq(f, 0, "the root opens a file afterwards: %s", strerror(errno));
}

Test(attack_leaks, accept_with_a_readonly_length_leaks_no_socket, .timeout = 300)
{
	accept_case(0);
}

Test(attack_leaks, accept4_with_a_readonly_length_leaks_no_socket, .timeout = 300)
{
	accept_case(1);
}

/* pipe2 and socketpair whose result array is read-only: EFAULT, both ends released. */
static long pairs_readonly(long unused)
{
	int *out = readonly_word(-1);
	long bad = 0;

	(void)unused;
	for (int i = 0; i < ROUNDS; i++) {
		errno = 0;
		if (pipe2(out, O_CLOEXEC) != -1 || errno != EFAULT)
			bad++;
		errno = 0;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, out) != -1 || errno != EFAULT)
			bad++;
		int probe = dup(0);
		if (probe < 0)
			return 1000000 + i;
		close(probe);
	}
	return bad;
}

Test(attack_leaks, pipe_and_socketpair_into_readonly_memory_leak_nothing, .timeout = 300)
{
	low_nofile();
	ENTER();
	long fds = pool_q(VMLWC_POOL_HOST_FDS);
	long r = in_child(pairs_readonly, 0);
	cr_expect_eq(r, 0, "pipe2/socketpair into read-only memory: %ld bad rounds", r);
	cr_expect_eq(pool_q(VMLWC_POOL_HOST_FDS), fds, "host descriptors held");
}

/* recvmsg of SCM_RIGHTS with the msghdr read-only: EFAULT, the passed descriptor not kept. */
static int upair[2];

static long recv_rights_readonly(long unused)
{
	char buf[CMSG_SPACE(sizeof(int))], data = 'x';
	long bad = 0;

	(void)unused;
	struct msghdr *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iovec *iov = (struct iovec *)(m + 1);
	if (m == MAP_FAILED)
		return -1;
	iov->iov_base = &data;
	iov->iov_len = 1;
	memset(m, 0, sizeof(*m));
	m->msg_iov = iov;
	m->msg_iovlen = 1;
	m->msg_control = buf;
	m->msg_controllen = sizeof(buf);
	mprotect(m, PG, PROT_READ);
	for (int i = 0; i < ROUNDS; i++) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct msghdr s = { .msg_iov = &(struct iovec){ &data, 1 }, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *h = CMSG_FIRSTHDR(&s);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &upair[0], sizeof(int));
		if (sendmsg(upair[1], &s, 0) != 1)
			return 1000000 + i;
		errno = 0;
		if (recvmsg(upair[0], m, MSG_DONTWAIT) != -1 || errno != EFAULT)
			bad++;
		/* the message stays queued when refused before receiving: drain it for real */
		struct msghdr d = { .msg_iov = &(struct iovec){ &data, 1 }, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		if (recvmsg(upair[0], &d, MSG_DONTWAIT) == 1 && CMSG_FIRSTHDR(&d)) {
			int got;
			memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&d)), sizeof(int));
			close(got);
		}
	}
	return bad;
}

Test(attack_leaks, recvmsg_of_rights_into_readonly_msghdr_leaks_nothing, .timeout = 300)
{
	low_nofile();
	ENTER();
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, upair), 0);
	long fds = pool_q(VMLWC_POOL_HOST_FDS);
	long r = in_child(recv_rights_readonly, 0);
	cr_expect_eq(r, 0, "recvmsg into a read-only msghdr: %ld bad rounds", r);
	cr_expect_eq(pool_q(VMLWC_POOL_HOST_FDS), fds, "host descriptors held");
}

/*
 * Mappings: a child that maps a file MAP_FIXED over memory it shares copy-on-write with the
 * root, then unmaps it, again and again. Each round once left host memory behind that no view
 * mapped (new host memory elsewhere); now the root's snapshot pages are copied to the others
 * and the file lands at its own address.
 */
static char *shared_area;

static long fixed_file_rounds(long fd)
{
	long bad = 0;

	for (int i = 0; i < ROUNDS; i++) {
		void *p = mmap(shared_area, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_FIXED, (int)fd, 0);
		if (p != shared_area || shared_area[0] != 'F')
			bad++;
		if (munmap(shared_area, 4 * PG) != 0)
			bad++;
	}
	return bad;
}

/* Host mappings, as /proc/self/maps lists them to the guest (library memory left out). */
static int host_mappings(void)
{
	char buf[1 << 16];
	int fd = open("/proc/self/maps", O_RDONLY), n = 0;
	ssize_t k, tot = 0;

	cr_assert_geq(fd, 0);
	while ((k = read(fd, buf + tot, sizeof(buf) - 1 - (size_t)tot)) > 0)
		tot += k;
	close(fd);
	for (ssize_t i = 0; i < tot; i++)
		n += buf[i] == '\n';
	return n;
}

Test(attack_leaks, map_fixed_over_shared_memory_leaves_no_host_memory, .timeout = 300)
{
	char path[] = "/tmp/vmlwc_leaks_XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	char page[4 * PG];
	memset(page, 'F', sizeof(page));
	cr_assert_eq(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
	ENTER();
	shared_area = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(shared_area, MAP_FAILED);
	memset(shared_area, 'r', 4 * PG);
	int before = host_mappings();
	long frames = pool_q(VMLWC_POOL_IN_USE);
	long r = in_child(fixed_file_rounds, fd);
	cr_expect_eq(r, 0, "MAP_FIXED file over shared memory: %ld bad rounds", r);
	cr_expect_eq(shared_area[0], 'r', "the root's memory is its own still");
	cr_expect_leq(host_mappings(), before + 2, "host mappings: %d before, %d after %d rounds", before,
		      host_mappings(), ROUNDS);
	cr_expect_leq(pool_q(VMLWC_POOL_IN_USE), frames + 8, "pool frames held: %ld before, %ld after",
		      frames, pool_q(VMLWC_POOL_IN_USE));
}

/* lwC class: lwc_create with its message pointer unwritable, through the raw gate, leaks no lwC slot. */
static long create_many(long unused)
{
	long bad = 0;

	(void)unused;
	for (int i = 0; i < 2 * ROUNDS; i++) {
		struct lwc_msg in;
		int c = lwc_create(NULL, 0, 0, &in);
		if (c == LWC_SWITCHED)
			lwc_switch_discard(in.src, NULL, 0);
		if (c < 0)
			return 1000000 + i;
		if (lwc_close(c) != 0)
			bad++;
	}
	return bad;
}

Test(attack_leaks, created_and_closed_lwcs_come_back, .timeout = 600)
{
	low_nofile();
	ENTER();
	long fds = pool_q(VMLWC_POOL_HOST_FDS), arena = pool_q(VMLWC_POOL_ARENA);
	long r = in_child(create_many, 0);
	cr_expect_eq(r, 0, "create/close in a child: %ld", r);
	cr_expect_eq(pool_q(VMLWC_POOL_HOST_FDS), fds, "host descriptors held");
	cr_expect_leq(pool_q(VMLWC_POOL_ARENA), arena + 4, "arena pages: %ld before, %ld after", arena,
		      pool_q(VMLWC_POOL_ARENA));
}
