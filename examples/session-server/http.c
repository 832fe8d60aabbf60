/* session-server: reading HTTP/1.1 requests off a connection and writing responses. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http.h"
#include "server.h"

#define CONN_BUF 65536   /* a request's head and body together fit in this, or 413 */

/* Static, not on the stack: each session's copy of it is dirtied and thrown away. */
static char conn_buf[CONN_BUF];

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 500: return "Internal Server Error";
	default: return "Error";
	}
}

void http_respond(int fd, int status, const char *ctype, const void *body, size_t len, int keep)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
			 status, status_text(status), ctype, len, keep ? "keep-alive" : "close");
	struct iovec iov[2] = { { head, (size_t)n }, { (void *)body, len } };
	size_t left = (size_t)n + len;
	int i = 0;

	/* a short write on a socket is normal: go on from where it stopped */
	while (left > 0) {
		ssize_t w = writev(fd, iov + i, 2 - i);
		if (w <= 0)
			return;
		left -= (size_t)w;
		while (i < 2 && (size_t)w >= iov[i].iov_len) {
			w -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < 2) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
}

/* The value of header `name` in the head [h, end), or NULL. */
static const char *header_find(const char *h, const char *end, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);

	for (const char *l = h; l < end;) {
		const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - l) > nl && l[nl] == ':' && strncasecmp(l, name, nl) == 0) {
			const char *v = l + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			return v;
		}
		l = eol + 2;
	}
	return NULL;
}

/* Parse the head [buf, end) into rq; whether the connection stays open after, or -1 if malformed. */
static int head_parse(char *buf, char *end, struct http_req *rq, size_t *clen)
{
	char *sp1 = memchr(buf, ' ', (size_t)(end - buf)), *sp2, *eol, *q;
	size_t vlen;
	const char *v;
	int http10, keep;

	eol = memmem(buf, (size_t)(end - buf), "\r\n", 2);
	if (!sp1 || !eol || sp1 > eol || (size_t)(sp1 - buf) >= sizeof(rq->method))
		return -1;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || (size_t)(sp2 - sp1 - 1) >= sizeof(rq->path) || sp2 == sp1 + 1)
		return -1;
	memcpy(rq->method, buf, (size_t)(sp1 - buf));
	rq->method[sp1 - buf] = 0;
	memcpy(rq->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	rq->path[sp2 - sp1 - 1] = 0;
	q = strchr(rq->path, '?');
	rq->query = "";
	if (q) {
		*q = 0;
		rq->query = q + 1;
	}
	http10 = (size_t)(eol - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
	keep = !http10;
	if ((v = header_find(eol + 2, end, "Connection", &vlen))) {
		if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
			keep = 0;
		else if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0)
			keep = 1;
	}
	*clen = 0;
	if ((v = header_find(eol + 2, end, "Content-Length", &vlen))) {
		size_t n = 0;
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9' || n > CONN_BUF)
				return -1;
			n = n * 10 + (size_t)(v[i] - '0');
		}
		*clen = n;
	}
	return keep;
}

/*
 * Serve requests on fd until the client closes, asks to close, stays idle past the receive
 * timeout, or sends something malformed. Pipelined bytes past one request are kept for the next.
 */
void conn_serve(int fd)
{
	size_t have = 0;

	for (;;) {
		char *hend;
		while (!(hend = memmem(conn_buf, have, "\r\n\r\n", 4))) {
			if (have == CONN_BUF) {
				http_respond(fd, 413, "text/plain", "", 0, 0);
				return;
			}
			ssize_t r = read(fd, conn_buf + have, CONN_BUF - have);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		struct http_req rq;
		size_t clen, head = (size_t)(hend + 4 - conn_buf);
		int keep = head_parse(conn_buf, hend + 2, &rq, &clen);
		if (keep < 0 || head + clen > CONN_BUF) {
			http_respond(fd, keep < 0 ? 400 : 413, "text/plain", "", 0, 0);
			return;
		}
		while (have < head + clen) {
			ssize_t r = read(fd, conn_buf + have, CONN_BUF - have);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		rq.body = conn_buf + head;
		rq.body_len = clen;
		request_handle(fd, &rq, keep);
		if (!keep)
			return;
		memmove(conn_buf, conn_buf + head + clen, have - head - clen);
		have -= head + clen;
	}
}
