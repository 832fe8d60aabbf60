/* session-server: the counters of /stats and --stats (the library's, and the server's own). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server.h"
#include "vmlwc.h"
#include "vmlwc_abi.h" /* the pool query is a private call of the library: an in-tree example's privilege */

long g_lwcs_open; /* iso_lwc.c: session lwCs the root holds descriptors for */

/* Read where the library runs unlimited (the root lwC, or a process outside the guest). */
void counters_read(struct srv_counters *c)
{
	struct vmlwc_stats st;

	c->sessions = g_srv.sessions;
	c->pool_frames = c->arena_pages = c->host_fds = c->lwcs = c->lwc_creates = -1;
	if (!vmlwc_active())
		return;
	c->pool_frames = syscall(VMLWC_SYS_POOL, VMLWC_POOL_IN_USE);
	c->arena_pages = syscall(VMLWC_SYS_POOL, VMLWC_POOL_ARENA);
	c->host_fds = syscall(VMLWC_SYS_POOL, VMLWC_POOL_HOST_FDS);
	c->lwcs = g_srv.mode == ISO_LWC ? g_lwcs_open : 0;
	if (vmlwc_stats(&st) == 0)
		c->lwc_creates = (long)st.lwc_creates;
}

void counters_format(const struct srv_counters *c, char *buf, size_t len)
{
	snprintf(buf, len, "sessions=%ld pool_frames=%ld arena_pages=%ld host_fds=%ld lwcs=%ld lwc_creates=%ld\n",
		 c->sessions, c->pool_frames, c->arena_pages, c->host_fds, c->lwcs, c->lwc_creates);
}

void (*counters_fetch)(struct srv_counters *c) = counters_read;
