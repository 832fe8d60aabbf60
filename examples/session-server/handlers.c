/* session-server: the endpoints, the same code in every isolation mode. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http.h"
#include "server.h"

#define SECRET_MAX 4096
#define LEAK_MAX 8192   /* the over-read stops at the end of the two pages: see leak_handle */

/* POST /secret keeps its body here, in process memory: what rollback must forget. */
static char secret_buf[SECRET_MAX];
static size_t secret_len;

/* What the response of /leak is assembled in: a copy, like Heartbleed's reply buffer. */
static char leak_out[LEAK_MAX];

/* Never NULL to the compiler's eye, so the store below is a real one (not a trap it may emit). */
static int *volatile crash_ptr;

static long query_long(const char *q, const char *key, long dflt)
{
	size_t kl = strlen(key);

	for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 10);
	return dflt;
}

static void secret_handle(int fd, const struct http_req *rq, int keep)
{
	char msg[64];
	size_t n = rq->body_len < SECRET_MAX ? rq->body_len : SECRET_MAX;

	memcpy(secret_buf, rq->body, n);
	secret_len = n;
	int len = snprintf(msg, sizeof(msg), "stored %zu\n", n);
	http_respond(fd, 200, "text/plain", msg, (size_t)len, keep);
}

/*
 * The bug on purpose: the client says how much to echo, and the copy trusts it, walking from
 * the 64-byte session buffer over the rest of its page into the next one, where the key is.
 * In lwc mode that page is not in the session's address space, so the copy faults there.
 * The count stops at the two pages so that none mode shows the leak instead of crashing.
 */
static void leak_handle(int fd, const struct http_req *rq, int keep)
{
	long n = query_long(rq->query, "n", LEAK_BUF_LEN);

	if (n < 0 || n > LEAK_MAX)
		n = LEAK_MAX;
	memcpy(leak_out, leak_area, (size_t)n);
	http_respond(fd, 200, "application/octet-stream", leak_out, (size_t)n, keep);
}

static void state_handle(int fd, const struct http_req *rq, int keep)
{
	long off = query_long(rq->query, "off", -1);
	char msg[96];

	if (!g_srv.state || off < 0 || (size_t)off >= g_srv.state_len) {
		http_respond(fd, 400, "text/plain", "", 0, keep);
		return;
	}
	/* the sum of the 4 KiB page holding off: the whole of it must be the start-up state */
	size_t pg = (size_t)off & ~(size_t)4095;
	unsigned long sum = 0;
	for (size_t i = pg; i < pg + 4096 && i < g_srv.state_len; i++)
		sum += g_srv.state[i];
	int len = snprintf(msg, sizeof(msg), "byte=%u sum=%lu\n", g_srv.state[off], sum);
	http_respond(fd, 200, "text/plain", msg, (size_t)len, keep);
}

static void stats_handle(int fd, int keep)
{
	struct srv_counters c;
	char msg[256];

	counters_fetch(&c);
	counters_format(&c, msg, sizeof(msg));
	http_respond(fd, 200, "text/plain", msg, strlen(msg), keep);
}

/* A file under --root: no ".." segment, and openat2 keeps symlinks from leaving the tree too. */
static void file_handle(int fd, const struct http_req *rq, int keep)
{
	static char fbuf[65536];
	const char *rel = rq->path + 1;
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	struct stat st;

	if (g_srv.rootfd < 0) {
		http_respond(fd, 404, "text/plain", "", 0, keep);
		return;
	}
	for (const char *p = rel; (p = strstr(p, "..")); p += 2)
		if ((p == rel || p[-1] == '/') && (p[2] == 0 || p[2] == '/')) {
			http_respond(fd, 403, "text/plain", "", 0, keep);
			return;
		}
	if (*rel == 0)
		rel = "index.html";
	int f = (int)syscall(SYS_openat2, g_srv.rootfd, rel, &how, sizeof(how));
	if (f < 0 || fstat(f, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)sizeof(fbuf)) {
		if (f >= 0)
			close(f);
		http_respond(fd, 404, "text/plain", "", 0, keep);
		return;
	}
	size_t have = 0;
	while (have < (size_t)st.st_size) {
		ssize_t r = read(f, fbuf + have, (size_t)st.st_size - have);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	close(f);
	http_respond(fd, 200, "application/octet-stream", fbuf, have, keep);
}

void request_handle(int fd, const struct http_req *rq, int keep)
{
	int get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;

	if (get && strcmp(rq->path, "/hello") == 0)
		http_respond(fd, 200, "text/plain", "hello\n", 6, keep);
	else if (post && strcmp(rq->path, "/secret") == 0)
		secret_handle(fd, rq, keep);
	else if (get && strcmp(rq->path, "/peek") == 0)
		http_respond(fd, 200, "application/octet-stream", secret_buf, secret_len, keep);
	else if (get && strcmp(rq->path, "/leak") == 0)
		leak_handle(fd, rq, keep);
	else if (get && strcmp(rq->path, "/crash") == 0)
		*crash_ptr = 1;
	else if (get && strcmp(rq->path, "/state") == 0)
		state_handle(fd, rq, keep);
	else if (get && strcmp(rq->path, "/stats") == 0)
		stats_handle(fd, keep);
	else if (get)
		file_handle(fd, rq, keep);
	else
		http_respond(fd, 405, "text/plain", "", 0, keep);
}
