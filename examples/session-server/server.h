/* session-server: what its files share (options, start-up state, the per-mode accept loops). */
#ifndef SESSION_SERVER_H
#define SESSION_SERVER_H
#include <stddef.h>

enum iso_mode { ISO_NONE, ISO_FORK, ISO_LWC };

struct server {
	enum iso_mode mode;
	int port;            /* 0: the kernel picks one */
	const char *root;    /* static files, or NULL */
	size_t state_mib;
	long max_sessions;   /* 0: serve for ever */
	int stats;           /* --stats: counters on stdout at exit */
	int in_guest;        /* none mode inside the guest (--in-guest), for like-for-like runs */
	int lsock, epfd, rootfd;
	const unsigned char *state;
	size_t state_len;
	long sessions;       /* connections served (or forked) so far */
};

/* What /stats and --stats report; the fields a mode cannot know stay -1. */
struct srv_counters {
	long sessions, pool_frames, arena_pages, host_fds, lwcs, lwc_creates;
};
#define SRV_NCOUNTERS 6

extern struct server g_srv;

/* The deliberate over-read: a session buffer at the start of one page, the key on the next. */
#define LEAK_BUF_LEN 64
extern char *leak_area;   /* two pages: [session buffer ...][key page] */
#define KEY_MARKER "VMLWC-PRIVATE-KEY-MARKER"

/* net.c */
int listen_open(int port, int *bound_port);
int conn_accept(struct server *srv);

/* http.c */
void conn_serve(int fd);
void http_respond(int fd, int status, const char *ctype, const void *body, size_t len, int keep);

/* handlers.c */
struct http_req;
void request_handle(int fd, const struct http_req *rq, int keep);

/* stats.c */
void counters_read(struct srv_counters *c);
void counters_format(const struct srv_counters *c, char *buf, size_t len);
/* How a session gets the counters: from the process itself, or (lwc) from the root. */
extern void (*counters_fetch)(struct srv_counters *c);

/* iso_*.c: the accept loops; each returns the process's exit status */
int iso_none_run(struct server *srv);
int iso_fork_run(struct server *srv);
int iso_lwc_run(struct server *srv);

#endif
