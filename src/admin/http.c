/* Admin endpoint HTTP: request parsing with http-parser (one request per
 * call, pipelining-safe), responses, and the routes /metrics, /status,
 * /health. No sockets here: src/net feeds bytes in and sends the buffer. */
#include "admin/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "core/metrics.h"

struct parse {
	struct admin_req *req;
	const char *url;
	size_t url_len;
	bool head_done;
	bool done;
	int err; /* set by a callback that stops the parser */
};

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct parse *ps = hp->data;
	/* One call per execute over contiguous bytes; a second call can only
	 * come from the second execute, after an over-long head. */
	if (!ps->url)
		ps->url = at;
	ps->url_len += len;
	return 0;
}

static int on_headers_complete(http_parser *hp)
{
	struct parse *ps = hp->data;
	ps->head_done = true;
	if (hp->http_major != 1) {
		ps->err = -EPROTONOSUPPORT;
		return -1;
	}
	if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > ADMIN_HTTP_MAX_BODY) {
		ps->err = -EFBIG;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct parse *ps = hp->data;
	ps->req->body_len += len;
	if (ps->req->body_len > ADMIN_HTTP_MAX_BODY) { /* chunked bodies have no length up front */
		ps->err = -EFBIG;
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	struct parse *ps = hp->data;
	struct admin_req *req = ps->req;
	ps->done = true;
	req->method = hp->method == HTTP_GET    ? ADMIN_GET
	              : hp->method == HTTP_HEAD ? ADMIN_HEAD
	                                        : ADMIN_OTHER;
	req->http_minor = hp->http_minor;
	/* An upgrade (or CONNECT) asks for another protocol on this
	 * connection: answer in HTTP and close instead. */
	req->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
	/* Stop right after this request: pipelined bytes wait for the next call. */
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_url = on_url,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

/* Feeds n bytes; false when the parser stopped on an error (in *rc). */
static bool feed(http_parser *hp, const uint8_t *p, size_t n, size_t *used, ssize_t *rc)
{
	struct parse *ps = hp->data;
	*used += http_parser_execute(hp, &settings, (const char *)p, n);
	enum http_errno e = HTTP_PARSER_ERRNO(hp);
	if (e == HPE_OK || e == HPE_PAUSED)
		return true;
	*rc = ps->err ? ps->err : -EINVAL;
	return false;
}

/* http-parser outside its strict mode (Debian builds it so) takes any letters
 * where "HTTP" belongs: check that the request line ends in HTTP/d.d. */
static bool version_ok(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n && (p[i] == '\r' || p[i] == '\n'))
		i++;
	const uint8_t *nl = memchr(p + i, '\n', n - i);
	if (!nl)
		return false;
	size_t end = (size_t)(nl - p);
	if (end > i && p[end - 1] == '\r')
		end--;
	if (end - i < 9)
		return false;
	const uint8_t *v = p + end - 9;
	return memcmp(v, " HTTP/", 6) == 0 && v[6] >= '0' && v[6] <= '9' && v[7] == '.' &&
	       v[8] >= '0' && v[8] <= '9';
}

static void split_target(struct parse *ps)
{
	struct admin_req *req = ps->req;
	const char *u = ps->url ? ps->url : "";
	size_t n = ps->url ? ps->url_len : 0;
	struct http_parser_url pu;
	/* Absolute form (GET http://host:9100/metrics) is legal too. */
	if (n > 0 && u[0] != '/') {
		http_parser_url_init(&pu);
		if (http_parser_parse_url(u, n, 0, &pu) == 0) {
			if (pu.field_set & (1 << UF_QUERY)) {
				req->query = u + pu.field_data[UF_QUERY].off;
				req->query_len = pu.field_data[UF_QUERY].len;
			}
			if (pu.field_set & (1 << UF_PATH)) {
				req->path = u + pu.field_data[UF_PATH].off;
				req->path_len = pu.field_data[UF_PATH].len;
			} else {
				req->path = "/";
				req->path_len = 1;
			}
			return;
		}
	}
	size_t end = 0;
	while (end < n && u[end] != '?' && u[end] != '#')
		end++;
	req->path = u;
	req->path_len = end;
	if (end < n && u[end] == '?') {
		size_t q = end + 1, qe = q;
		while (qe < n && u[qe] != '#')
			qe++;
		req->query = u + q;
		req->query_len = qe - q;
	}
}

ssize_t admin_http_parse(const uint8_t *p, size_t n, struct admin_req *req)
{
	struct parse ps = {.req = req};
	http_parser hp;
	memset(req, 0, sizeof(*req));
	http_parser_init(&hp, HTTP_REQUEST);
	hp.data = &ps;

	/* The head must end within the first ADMIN_HTTP_MAX_HEAD bytes: feed
	 * those alone first, so a client cannot make us hold more. */
	size_t first = n < ADMIN_HTTP_MAX_HEAD ? n : ADMIN_HTTP_MAX_HEAD;
	size_t used = 0;
	ssize_t rc = 0;
	if (!feed(&hp, p, first, &used, &rc))
		return rc;
	if (!ps.head_done)
		return n >= ADMIN_HTTP_MAX_HEAD ? -E2BIG : 0;
	if (!version_ok(p, first))
		return -EINVAL;
	if (!ps.done && first < n && !feed(&hp, p + first, n - first, &used, &rc))
		return rc;
	if (!ps.done)
		return 0;
	split_target(&ps);
	return (ssize_t)used;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

/* The whole response; with head set, everything but the body (whose length
 * Content-Length still gives, as for GET). extra: more header lines. */
static int respond(struct buf *out, int status, const char *ctype, const void *body, size_t len,
                   bool keep_alive, bool head, const char *extra)
{
	char h[512];
	int n = snprintf(h, sizeof(h),
	                 "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s"
	                 "Connection: %s\r\n\r\n",
	                 status, reason(status), ctype ? "Content-Type: " : "", ctype ? ctype : "",
	                 ctype ? "\r\n" : "", len, extra ? extra : "",
	                 keep_alive ? "keep-alive" : "close");
	if (n < 0 || (size_t)n >= sizeof(h))
		return -EINVAL;
	int rc = buf_append(out, h, (size_t)n);
	if (rc == 0 && !head && len > 0)
		rc = buf_append(out, body, len);
	return rc;
}

int admin_http_respond(struct buf *out, int status, const char *content_type, const void *body,
                       size_t len, bool keep_alive)
{
	return respond(out, status, content_type, body, len, keep_alive, false, NULL);
}

int admin_http_error(struct buf *out, ssize_t parse_rc)
{
	int status = parse_rc == -E2BIG             ? 431
	             : parse_rc == -EFBIG           ? 413
	             : parse_rc == -EPROTONOSUPPORT ? 505
	                                            : 400;
	char body[64];
	int n = snprintf(body, sizeof(body), "%s\n", reason(status));
	return respond(out, status, "text/plain; charset=utf-8", body, (size_t)n, false, false,
	               NULL);
}

static bool path_is(const struct admin_req *req, const char *path)
{
	return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

#define TEXT "text/plain; charset=utf-8"

int admin_route(const struct admin_req *req, struct buf *out, const struct admin_hooks *hooks)
{
	static const struct admin_hooks none;
	const struct admin_hooks *hk = hooks ? hooks : &none;
	bool head = req->method == ADMIN_HEAD, ka = req->keep_alive;
	if (req->method == ADMIN_OTHER) {
		static const char msg[] = "method not allowed: use GET or HEAD\n";
		return respond(out, 405, TEXT, msg, sizeof(msg) - 1, ka, false,
		               "Allow: GET, HEAD\r\n");
	}

	struct buf body;
	buf_init(&body);
	int rc;
	if (path_is(req, "/metrics")) {
		rc = metrics_render(&body);
		if (rc == 0)
			rc = respond(out, 200, "text/plain; version=0.0.4; charset=utf-8",
			             body.data, body.len, ka, head, NULL);
	} else if (path_is(req, "/status") && hk->status_json) {
		if (hk->status_json(hk->ctx, &body) < 0) {
			static const char msg[] = "status unavailable\n";
			rc = respond(out, 500, TEXT, msg, sizeof(msg) - 1, ka, head, NULL);
		} else {
			rc = respond(out, 200, "application/json", body.data, body.len, ka, head,
			             NULL);
		}
	} else if (path_is(req, "/health")) {
		const char *why = NULL;
		if (!hk->healthy || hk->healthy(hk->ctx, &why)) {
			rc = respond(out, 200, TEXT, "ok\n", 3, ka, head, NULL);
		} else {
			char msg[256];
			int n = snprintf(msg, sizeof(msg), "unavailable: %s\n",
			                 why ? why : "not ready");
			if (n >= (int)sizeof(msg))
				n = (int)sizeof(msg) - 1;
			rc = respond(out, 503, TEXT, msg, (size_t)n, ka, head, NULL);
		}
	} else {
		static const char msg[] = "not found: try /metrics, /status or /health\n";
		rc = respond(out, 404, TEXT, msg, sizeof(msg) - 1, ka, head, NULL);
	}
	buf_free(&body);
	return rc;
}
