/* session-server: --isolation=none, every connection served by the process itself, in turn. */
#include <unistd.h>

#include "server.h"

int iso_none_run(struct server *srv)
{
	while (!srv->max_sessions || srv->sessions < srv->max_sessions) {
		int c = conn_accept(srv);
		if (c < 0)
			return 1;
		conn_serve(c);
		close(c);
		srv->sessions++;
	}
	return 0;
}
