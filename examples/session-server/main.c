/* session-server: options and start-up (state, key page, listening socket), then the mode's loop. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server.h"
#include "vmlwc.h"

struct server g_srv = { .lsock = -1, .epfd = -1, .rootfd = -1 };
char *leak_area;

static void usage(void)
{
	fprintf(stderr,
		"usage: vmlwc-session-server [--isolation=lwc|fork|none] [--port N] [--root DIR]\n"
		"                            [--state-mib N] [--max-sessions N] [--stats] [--in-guest]\n");
	exit(2);
}

static int options_parse(int argc, char **argv, struct server *srv)
{
	static const struct option opts[] = {
		{ "isolation", required_argument, NULL, 'i' }, { "port", required_argument, NULL, 'p' },
		{ "root", required_argument, NULL, 'r' },      { "state-mib", required_argument, NULL, 's' },
		{ "max-sessions", required_argument, NULL, 'm' }, { "stats", no_argument, NULL, 'S' },
		{ "in-guest", no_argument, NULL, 'g' },        { NULL, 0, NULL, 0 },
	};
	int o;

	srv->mode = ISO_LWC;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'i':
			if (strcmp(optarg, "lwc") == 0)
				srv->mode = ISO_LWC;
			else if (strcmp(optarg, "fork") == 0)
				srv->mode = ISO_FORK;
			else if (strcmp(optarg, "none") == 0)
				srv->mode = ISO_NONE;
			else
				usage();
			break;
		case 'p': srv->port = atoi(optarg); break;
		case 'r': srv->root = optarg; break;
		case 's': srv->state_mib = strtoul(optarg, NULL, 10); break;
		case 'm': srv->max_sessions = atol(optarg); break;
		case 'S': srv->stats = 1; break;
		case 'g': srv->in_guest = 1; break;
		default: usage();
		}
	}
	return optind == argc ? 0 : -1;
}

/* Byte i of the state: every session may check any byte against this without asking. */
static unsigned char state_byte(size_t i)
{
	return (unsigned char)((i * 131u) ^ (i >> 12));
}

static int state_load(struct server *srv)
{
	size_t len = srv->state_mib << 20;
	unsigned char *p;

	if (!len)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	for (size_t i = 0; i < len; i++)
		p[i] = state_byte(i);
	srv->state = p;
	srv->state_len = len;
	return 0;
}

/*
 * Two pages of their own, so that a spec can leave the second out of a session: the first holds
 * the session buffer /leak starts from, the second what stands for the server's private key.
 */
static int key_load(void)
{
	leak_area = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (leak_area == MAP_FAILED)
		return -1;
	memset(leak_area, '.', 4096);
	memcpy(leak_area, "session buffer", 14);
	for (int off = 4096; off + (int)sizeof(KEY_MARKER) <= 8192; off += 64)
		memcpy(leak_area + off, KEY_MARKER, sizeof(KEY_MARKER) - 1);
	return 0;
}

static void stats_print(void)
{
	struct srv_counters c;
	struct vmlwc_stats st;
	char line[256];

	counters_read(&c);
	counters_format(&c, line, sizeof(line));
	printf("stats: %s", line);
	if (vmlwc_active() && vmlwc_stats(&st) == 0)
		printf("stats: vm_exits=%llu syscalls_redirected=%llu lwc_switches=%llu cow_faults=%llu page_faults=%llu\n",
		       (unsigned long long)st.vm_exits, (unsigned long long)st.syscalls_redirected,
		       (unsigned long long)st.lwc_switches, (unsigned long long)st.cow_faults,
		       (unsigned long long)st.page_faults);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct server *srv = &g_srv;
	struct epoll_event ev = { .events = EPOLLIN };
	int port, status;

	if (options_parse(argc, argv, srv) != 0)
		usage();
	signal(SIGPIPE, SIG_IGN); /* a client that goes away mid-response costs its session only */
	if (state_load(srv) != 0 || key_load() != 0) {
		perror("session-server: start-up memory");
		return 1;
	}
	if (srv->root && (srv->rootfd = open(srv->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror(srv->root);
		return 1;
	}
	if ((srv->lsock = listen_open(srv->port, &port)) < 0 ||
	    (srv->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->lsock, &ev) != 0) {
		perror("session-server: listen");
		return 1;
	}
	/* fork has no guest to copy (it is ENOSYS there): that mode stays a plain process */
	if ((srv->mode == ISO_LWC || (srv->mode == ISO_NONE && srv->in_guest)) && vmlwc_init(NULL) != 0) {
		fprintf(stderr, "session-server: vmlwc_init: %s\n", vmlwc_strerror());
		return 1;
	}
	printf("listening on %d\n", port);
	fflush(stdout);
	switch (srv->mode) {
	case ISO_LWC: status = iso_lwc_run(srv); break;
	case ISO_FORK: status = iso_fork_run(srv); break;
	default: status = iso_none_run(srv); break;
	}
	if (srv->stats)
		stats_print();
	return status;
}
