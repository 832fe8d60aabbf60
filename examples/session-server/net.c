/* session-server: the listening socket and the accept that waits on it through epoll. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server.h"

/* Loopback only: an example server has no business on other interfaces. */
int listen_open(int port, int *bound_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (s < 0)
		return -1;
	if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 512) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
		close(s);
		return -1;
	}
	*bound_port = ntohs(a.sin_port);
	return s;
}

/*
 * The next connection, blocking (a bounded receive timeout, so that an idle client cannot hold
 * a server that serves one connection at a time for ever). -1 on a fatal error.
 */
int conn_accept(struct server *srv)
{
	struct timeval tmo = { .tv_sec = 5 };

	for (;;) {
		struct epoll_event ev;
		int n = epoll_wait(srv->epfd, &ev, 1, 1000);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n <= 0)
			continue;
		int c = accept4(srv->lsock, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				perror("session-server: accept4");
				continue; /* the waiting connection stays queued; epoll keeps saying so */
			}
			return -1;
		}
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
		return c;
	}
}
