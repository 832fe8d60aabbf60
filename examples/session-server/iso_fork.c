/* session-server: --isolation=fork, a process per connection forked from the start-up state. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"

static int child_conn = -1;

/* A fault ends this connection's process only: tell the client, then go. */
static void child_fault(int sig)
{
	static const char r500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

	(void)sig;
	if (write(child_conn, r500, sizeof(r500) - 1) < 0)
		_exit(2);
	_exit(2);
}

static void children_reap(int block)
{
	while (waitpid(-1, NULL, block ? 0 : WNOHANG) > 0)
		;
}

int iso_fork_run(struct server *srv)
{
	while (!srv->max_sessions || srv->sessions < srv->max_sessions) {
		int c = conn_accept(srv);
		if (c < 0)
			return 1;
		pid_t p = fork();
		if (p == 0) {
			struct sigaction sa = { .sa_handler = child_fault, .sa_flags = SA_RESETHAND };
			close(srv->lsock);
			close(srv->epfd);
			child_conn = c;
			sigaction(SIGSEGV, &sa, NULL);
			sigaction(SIGBUS, &sa, NULL);
			conn_serve(c);
			_exit(0);
		}
		if (p < 0)
			perror("session-server: fork");
		close(c);
		srv->sessions++;
		children_reap(0);
	}
	children_reap(1);
	return 0;
}
