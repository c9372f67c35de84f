/* The admin endpoint's HTTP/1.1, without sockets: parse one request from the
 * bytes received so far (http-parser), route it, and write the response into
 * a buffer that the connection code sends. */
#ifndef VECGATE_ADMIN_HTTP_H
#define VECGATE_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define ADMIN_HTTP_MAX_HEAD 8192  /* request line and headers */
#define ADMIN_HTTP_MAX_BODY 65536 /* the endpoint reads no bodies; it skips small ones */

enum admin_method {
	ADMIN_GET,
	ADMIN_HEAD,
	ADMIN_OTHER,
};

/* One parsed request. The pointers point into the bytes given to
 * admin_http_parse(): valid while those bytes are. */
struct admin_req {
	enum admin_method method;
	const char *path; /* "/metrics": the target without its query */
	size_t path_len;
	const char *query; /* after '?', without it; NULL when there is none */
	size_t query_len;
	int http_minor;  /* HTTP/1.x */
	bool keep_alive; /* the connection stays open after the response */
	size_t body_len; /* body bytes skipped (Content-Length or chunked) */
};

/* Parses the first request in p[0..n). Returns the bytes it takes (then *req
 * is filled; pipelined requests follow), 0 when more bytes are needed, or:
 *   -EINVAL           malformed request (answer 400)
 *   -E2BIG            request line and headers over ADMIN_HTTP_MAX_HEAD (431)
 *   -EFBIG            body over ADMIN_HTTP_MAX_BODY (413)
 *   -EPROTONOSUPPORT  not HTTP/1.x (505)
 * After an error, answer with admin_http_error() and close the connection. */
ssize_t admin_http_parse(const uint8_t *p, size_t n, struct admin_req *req) MUST_CHECK;

/* Appends a whole response: status line, Content-Type (omitted when NULL),
 * Content-Length, Connection: keep-alive or close, the body. 0 or -ENOMEM. */
int admin_http_respond(struct buf *out, int status, const char *content_type, const void *body,
                       size_t len, bool keep_alive) MUST_CHECK;

/* Appends the response to a negative admin_http_parse() result, with
 * Connection: close. 0 or -ENOMEM. */
int admin_http_error(struct buf *out, ssize_t parse_rc) MUST_CHECK;

/* What the server provides to the routes; any hook may be NULL. */
struct admin_hooks {
	/* Appends the /status JSON document; 0 or a negative errno (then 500).
	 * NULL hook: /status is 404. */
	int (*status_json)(void *ctx, struct buf *out);
	/* true when the proxy can serve; *reason (optional) says why not.
	 * NULL hook: always healthy. */
	bool (*healthy)(void *ctx, const char **reason);
	void *ctx;
};

/* Answers one request: GET or HEAD /metrics (Prometheus text 0.0.4), /status
 * (JSON from the hook), /health (200 "ok" or 503); 404 for other paths, 405
 * (with Allow) for other methods; HEAD gets the headers of GET without the
 * body. 0 or -ENOMEM (then out may hold part of a response: drop it). */
int admin_route(const struct admin_req *req, struct buf *out,
                const struct admin_hooks *hooks) MUST_CHECK;

#endif
