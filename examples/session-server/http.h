/* session-server: one parsed HTTP/1.1 request. */
#ifndef SESSION_SERVER_HTTP_H
#define SESSION_SERVER_HTTP_H
#include <stddef.h>

struct http_req {
	char method[8];
	char path[512];
	const char *query;  /* after '?' in path, or "" */
	const char *body;
	size_t body_len;
};

#endif
