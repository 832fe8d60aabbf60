/* session-server: --isolation=lwc, every connection in a fresh lwC made from the start-up state. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server.h"
#include "vmlwc.h"

/* What a session tells the root when it switches there (args[0]). */
enum { SESSION_DONE = 1, SESSION_FAULT, SESSION_REFUSED, SESSION_STATS };

extern long g_lwcs_open;

/* In a session's copy only: its descriptor for the root, and its connection. */
static int session_root = -1, session_conn = -1;

/*
 * What serving needs, and nothing that reaches beyond the session: no exit_group, kill,
 * execve, fork, socket, connect, accept, ptrace; no mprotect either, so no page of the copy
 * becomes executable. A session leaves with lwc_switch_discard, which is not a syscall.
 */
static const long session_syscalls[] = {
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_recvfrom, SYS_sendto, SYS_shutdown,
	SYS_openat2, SYS_fstat, SYS_newfstatat, SYS_lseek, SYS_close,
	SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_madvise,
	SYS_rt_sigreturn, SYS_rt_sigprocmask,
};

/*
 * A fault of the session (a NULL store, an over-read into the unmapped key page) ends the
 * session, not the server: answer 500 and leave for good. Installed in the root before the
 * loop, so every session starts with it in its own copy of the dispositions; in the root
 * itself there is no session to leave, and SA_RESETHAND lets the fault kill the process as
 * it would have.
 */
static void session_fault(int sig)
{
	static const char r500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	long res[2] = { SESSION_FAULT, sig };

	if (session_root < 0)
		return;
	if (write(session_conn, r500, sizeof(r500) - 1) < 0)
		res[1] = -sig;
	lwc_switch_discard(session_root, res, 2);
	/* not reached unless the discard failed: return, and the fault kills the process */
}

/* /stats in a session: the session is limited (vmlwc_stats is refused), so the root answers. */
static void session_counters_fetch(struct srv_counters *c)
{
	long req = SESSION_STATS;
	struct lwc_msg in;

	memset(c, 0xff, sizeof(*c)); /* -1 everywhere if the root does not answer */
	if (lwc_switch(session_root, &req, 1, &in) == LWC_SWITCHED && in.nargs == SRV_NCOUNTERS)
		memcpy(c, in.args, sizeof(*c));
}

/* The session's whole life: confine itself, serve the connection, leave. Never returns. */
static void __attribute__((noreturn)) session_run(int conn, int root)
{
	long res = SESSION_DONE;

	session_root = root;
	session_conn = conn;
	counters_fetch = session_counters_fetch;
	if (lwc_limit_syscalls(session_syscalls, (int)(sizeof(session_syscalls) / sizeof(long))) != 0)
		res = SESSION_REFUSED; /* never serve unconfined */
	else
		conn_serve(conn);
	lwc_switch_discard(root, &res, 1);
	for (;;)
		*(volatile int *)0 = 0; /* the discard failed: the fault handler's fallback kills us */
}

/*
 * What the session may keep: its connection, the static-file directory and stderr, nothing
 * else of the table (the listening socket, epoll, other connections); all memory copy-on-write
 * except the key page, which it does not have at all.
 */
static int session_specs(const struct server *srv, int conn, struct lwc_rspec *s)
{
	int n = 0;
	uintptr_t key = (uintptr_t)leak_area + 4096;

	s[n++] = (struct lwc_rspec){ .flags = LWC_MEM | LWC_UNMAP, .u.mem = { key, key + 4096 } };
	s[n++] = (struct lwc_rspec){ .flags = LWC_FILES | LWC_UNMAP, .u.fds = { -1, -1 } };
	s[n++] = (struct lwc_rspec){ .flags = LWC_FILES | LWC_COPY, .u.fds = { conn, conn } };
	s[n++] = (struct lwc_rspec){ .flags = LWC_FILES | LWC_COPY, .u.fds = { 2, 2 } };
	if (srv->rootfd >= 0)
		s[n++] = (struct lwc_rspec){ .flags = LWC_FILES | LWC_COPY, .u.fds = { srv->rootfd, srv->rootfd } };
	return n;
}

/* Run session s until it leaves, answering its /stats requests on the way. */
static void session_wait(int s, int conn)
{
	struct lwc_msg in;

	if (lwc_switch(s, NULL, 0, &in) != LWC_SWITCHED) {
		perror("session-server: lwc_switch");
		return;
	}
	while (in.nargs >= 1 && in.args[0] == SESSION_STATS) {
		struct srv_counters c;
		counters_read(&c);
		if (lwc_switch(s, (long *)&c, SRV_NCOUNTERS, &in) != LWC_SWITCHED) {
			perror("session-server: lwc_switch");
			return;
		}
	}
	if (in.nargs >= 1 && in.args[0] == SESSION_REFUSED)
		fprintf(stderr, "session-server: a session could not limit its syscalls; connection %d dropped\n", conn);
}

int iso_lwc_run(struct server *srv)
{
	struct sigaction sa = { .sa_handler = session_fault, .sa_flags = SA_RESETHAND };

	if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0) {
		perror("session-server: sigaction");
		return 1;
	}
	/* from here on, the root's memory is the snapshot: it runs no session code */
	while (!srv->max_sessions || srv->sessions < srv->max_sessions) {
		struct lwc_rspec specs[5];
		struct lwc_msg in;
		int conn = conn_accept(srv);
		if (conn < 0)
			return 1;
		int n = session_specs(srv, conn, specs);
		int s = lwc_create(specs, n, 0, &in);
		if (s == LWC_SWITCHED)
			session_run(conn, in.src);
		if (s < 0) {
			/* out of lwCs, frames or arena: this connection is refused, the server goes on */
			perror("session-server: lwc_create");
		} else {
			g_lwcs_open++;
			session_wait(s, conn);
			lwc_close(s); /* its memory and its entry for the connection go now */
			g_lwcs_open--;
		}
		close(conn);
		srv->sessions++;
	}
	return 0;
}
