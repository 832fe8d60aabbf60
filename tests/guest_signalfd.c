/* signalfd in the guest: what it reads, when it is readable, its limits, against native Linux. */
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

#include "guest_common.h"
#include "vmlwc_abi.h"

static long pool_q(long what)
{
	return syscall(VMLWC_SYS_POOL, what);
}

/* What one sequence of signalfd calls observed: compared between native and guest runs. */
struct seen {
	long empty_read, empty_errno;
	int poll_empty, poll_after_kill, poll_after_read;
	long two_read;                  /* both pending signals in one read */
	unsigned signo0, signo1;
	int code0, pid_ok, uid_ok;
	long short_read, short_errno, write_r, write_errno, pread_r, pread_errno;
	long dup_read;
	unsigned dup_signo;
	int queue_int, queue_code;
	int epoll_ready, epoll_after;
	int remask_sees;                /* after signalfd(fd, new mask) */
};

static void sequence(struct seen *s)
{
	sigset_t m;
	struct signalfd_siginfo si[2];

	memset(s, 0, sizeof(*s));
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, NULL);
	int fd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
	cr_assert_geq(fd, 0, "signalfd: %s", strerror(errno));
	errno = 0;
	s->empty_read = read(fd, si, sizeof(si[0]));
	s->empty_errno = errno;
	struct pollfd p = { fd, POLLIN, 0 };
	s->poll_empty = poll(&p, 1, 0);
	kill(getpid(), SIGUSR2);
	kill(getpid(), SIGUSR1);
	s->poll_after_kill = poll(&p, 1, 0);
	s->two_read = read(fd, si, sizeof(si));
	s->signo0 = si[0].ssi_signo;
	s->signo1 = si[1].ssi_signo;
	s->code0 = si[0].ssi_code;
	s->pid_ok = si[0].ssi_pid == (uint32_t)getpid();
	s->uid_ok = si[0].ssi_uid == getuid();
	s->poll_after_read = poll(&p, 1, 0);
	errno = 0;
	s->short_read = read(fd, si, 100);
	s->short_errno = errno;
	errno = 0;
	s->write_r = write(fd, "12345678", 8);
	s->write_errno = errno;
	errno = 0;
	s->pread_r = pread(fd, si, sizeof(si[0]), 0);
	s->pread_errno = errno;
	int d = dup(fd);
	kill(getpid(), SIGUSR1);
	s->dup_read = read(d, si, sizeof(si[0]));
	s->dup_signo = si[0].ssi_signo;
	union sigval sv = { .sival_int = 4242 };
	sigqueue(getpid(), SIGUSR2, sv);
	read(fd, si, sizeof(si[0]));
	s->queue_int = si[0].ssi_int;
	s->queue_code = si[0].ssi_code;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	kill(getpid(), SIGUSR1);
	s->epoll_ready = epoll_wait(ep, &ev, 1, 2000);
	read(d, si, sizeof(si[0]));
	s->epoll_after = epoll_wait(ep, &ev, 1, 0);
	/* a new mask: SIGUSR1 no longer, SIGUSR2 still */
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	cr_assert_eq(signalfd(fd, &m, 0), fd);
	kill(getpid(), SIGUSR1);
	s->remask_sees = poll(&p, 1, 0);
	close(ep);
	close(d);
	close(fd);
}

static void assert_same(const struct seen *n, const struct seen *g)
{
#define SAME(f) cr_expect_eq(g->f, n->f, #f ": guest %ld, native %ld", (long)g->f, (long)n->f)
	SAME(empty_read); SAME(empty_errno); SAME(poll_empty); SAME(poll_after_kill);
	SAME(poll_after_read); SAME(two_read); SAME(signo0); SAME(signo1); SAME(code0);
	SAME(pid_ok); SAME(uid_ok); SAME(short_read); SAME(short_errno); SAME(write_r);
	SAME(write_errno); SAME(pread_r); SAME(pread_errno); SAME(dup_read); SAME(dup_signo);
	SAME(queue_int); SAME(queue_code); SAME(epoll_ready); SAME(epoll_after); SAME(remask_sees);
#undef SAME
}

/* The native run, in a child that never enters the guest. */
static void native_sequence(struct seen *out)
{
	int pfd[2];

	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct seen s;
		sequence(&s);
		_exit(write(pfd[1], &s, sizeof(s)) == sizeof(s) ? 0 : 1);
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], out, sizeof(*out)), (ssize_t)sizeof(*out));
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
}

Test(signalfd, reads_as_natively, .timeout = 120)
{
	struct seen n, g;

	native_sequence(&n);
	/* what the sequence must show natively, so that a broken comparison cannot pass */
	cr_assert_eq(n.two_read, 256);
	cr_assert_eq(n.signo0, SIGUSR1);
	cr_assert_eq(n.poll_after_kill, 1);
	cr_assert_eq(n.queue_int, 4242);
	ENTER();
	sequence(&g);
	assert_same(&n, &g);
}

static void *kill_later(void *arg)
{
	usleep(100 * 1000);
	kill(getpid(), (int)(long)arg);
	return NULL;
}

/* A blocking read waits (without stopping other threads) until another thread's kill. */
Test(signalfd, blocking_read_woken_by_another_thread, .timeout = 120)
{
	sigset_t m;
	struct signalfd_siginfo si;
	pthread_t t;

	ENTER();
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigprocmask(SIG_BLOCK, &m, NULL);
	int fd = signalfd(-1, &m, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pthread_create(&t, NULL, kill_later, (void *)(long)SIGUSR1), 0);
	cr_assert_eq(read(fd, &si, sizeof(si)), (ssize_t)sizeof(si));
	cr_assert_eq(si.ssi_signo, SIGUSR1);
	pthread_join(t, NULL);
}

static volatile int handled;
static void on_usr2(int sig)
{
	handled = sig;
}

/* A signal the thread handles interrupts the wait: EINTR without SA_RESTART, as read does natively. */
Test(signalfd, handled_signal_interrupts_the_read, .timeout = 120)
{
	sigset_t m;
	struct signalfd_siginfo si;
	pthread_t t;
	struct sigaction sa = { .sa_handler = on_usr2 };

	ENTER();
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigprocmask(SIG_BLOCK, &m, NULL);
	int fd = signalfd(-1, &m, 0);
	cr_assert_eq(pthread_create(&t, NULL, kill_later, (void *)(long)SIGUSR2), 0);
	errno = 0;
	cr_assert_eq(read(fd, &si, sizeof(si)), -1);
	cr_assert_eq(errno, EINTR, "errno %d", errno);
	cr_assert_eq(handled, SIGUSR2);
	pthread_join(t, NULL);
}

/*
 * Each signalfd holds one host descriptor of the library's for good: closing one frees its
 * entry for the next, so opening and closing many never runs out, and the process's limit
 * (VMLWC_SIGFDS, 64) says EMFILE without leaking a descriptor.
 */
Test(signalfd, entries_reused_and_bounded, .timeout = 120)
{
	sigset_t m;
	int fds[70], n = 0;

	ENTER();
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	for (int i = 0; i < 500; i++) {
		int fd = signalfd(-1, &m, 0);
		cr_assert_geq(fd, 0, "round %d: %s", i, strerror(errno));
		cr_assert_eq(close(fd), 0);
	}
	long held = pool_q(VMLWC_POOL_HOST_FDS);
	for (n = 0; n < 70; n++) {
		fds[n] = signalfd(-1, &m, 0);
		if (fds[n] < 0)
			break;
	}
	cr_assert_eq(n, 64, "%d signalfds at once", n);
	cr_assert_eq(errno, EMFILE);
	while (n--)
		close(fds[n]);
	cr_assert_eq(pool_q(VMLWC_POOL_HOST_FDS), held, "host fds the tables hold: %ld before, %ld after",
		     held, pool_q(VMLWC_POOL_HOST_FDS));
	cr_assert_geq(signalfd(-1, &m, 0), 0);
}

/* Not a signalfd: signalfd(fd, ...) on an eventfd is EINVAL, as natively; a bad fd EBADF. */
Test(signalfd, only_on_a_signalfd, .timeout = 120)
{
	sigset_t m;

	ENTER();
	sigemptyset(&m);
	int e = eventfd(0, 0);
	errno = 0;
	cr_assert_eq(signalfd(e, &m, 0), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(signalfd(999, &m, 0), -1);
	cr_assert_eq(errno, EBADF);
	errno = 0;
	cr_assert_eq(syscall(SYS_signalfd4, -1, &m, 4, 0), -1);
	cr_assert_eq(errno, EINVAL, "sizemask 4");
	cr_assert_eq(syscall(SYS_signalfd4, -1, (void *)8, 8, 0), -1);
	cr_assert_eq(errno, EFAULT, "mask unreadable");
}
