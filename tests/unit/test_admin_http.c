/* Unit tests for src/admin/http: request parsing (good, pipelined, truncated
 * at every byte, oversized, malformed), responses and every route. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http.h"
#include "core/metrics.h"

struct good {
	const char *raw;
	enum admin_method method;
	const char *path;
	const char *query; /* NULL: none */
	bool keep_alive;
	int minor;
	size_t body_len;
};

static const struct good goods[] = {
        {"GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\nAccept: */*\r\n\r\n", ADMIN_GET,
         "/metrics", NULL, true, 1, 0},
        {"HEAD /health HTTP/1.1\r\n\r\n", ADMIN_HEAD, "/health", NULL, true, 1, 0},
        {"GET /status?pretty=1&x HTTP/1.1\r\nConnection: close\r\n\r\n", ADMIN_GET, "/status",
         "pretty=1&x", false, 1, 0},
        {"GET /status? HTTP/1.1\r\n\r\n", ADMIN_GET, "/status", "", true, 1, 0},
        {"GET / HTTP/1.0\r\n\r\n", ADMIN_GET, "/", NULL, false, 0, 0},
        {"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ADMIN_GET, "/x", NULL, true, 0, 0},
        {"GET /metrics HTTP/1.1\nHost: x\n\n", ADMIN_GET, "/metrics", NULL, true, 1, 0},
        {"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", ADMIN_OTHER, "/metrics", NULL,
         true, 1, 5},
        {"GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", ADMIN_GET, "/metrics", NULL, true, 1,
         0},
        {"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
         ADMIN_OTHER, "/a", NULL, true, 1, 8},
        {"GET http://localhost:9100/metrics?a=b HTTP/1.1\r\n\r\n", ADMIN_GET, "/metrics", "a=b",
         true, 1, 0},
        {"GET http://localhost:9100 HTTP/1.1\r\n\r\n", ADMIN_GET, "/", NULL, true, 1, 0},
        {"OPTIONS * HTTP/1.1\r\n\r\n", ADMIN_OTHER, "*", NULL, true, 1, 0},
        {"DELETE /metrics HTTP/1.1\r\n\r\n", ADMIN_OTHER, "/metrics", NULL, true, 1, 0},
        {"GET /health HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", ADMIN_GET,
         "/health", NULL, false, 1, 0},
        {"\r\nGET /health HTTP/1.1\r\n\r\n", ADMIN_GET, "/health", NULL, true, 1, 0},
};

static void check_good(const struct good *g, const struct admin_req *req)
{
	cr_expect_eq(req->method, g->method, "%s", g->raw);
	cr_expect_eq(req->path_len, strlen(g->path), "%s", g->raw);
	cr_expect(req->path && memcmp(req->path, g->path, req->path_len) == 0, "%s: path %.*s",
	          g->raw, (int)req->path_len, req->path);
	if (g->query) {
		cr_expect(req->query && req->query_len == strlen(g->query) &&
		                  memcmp(req->query, g->query, req->query_len) == 0,
		          "%s: query", g->raw);
	} else {
		cr_expect_null(req->query, "%s", g->raw);
	}
	cr_expect_eq(req->keep_alive, g->keep_alive, "%s", g->raw);
	cr_expect_eq(req->http_minor, g->minor, "%s", g->raw);
	cr_expect_eq(req->body_len, g->body_len, "%s", g->raw);
}

Test(admin_http, good_requests)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		size_t n = strlen(g->raw);
		struct admin_req req;
		ssize_t rc = admin_http_parse((const uint8_t *)g->raw, n, &req);
		cr_expect_eq(rc, (ssize_t)n, "%s: rc %zd", g->raw, rc);
		check_good(g, &req);
	}
}

Test(admin_http, truncated_at_every_byte_needs_more)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const char *raw = goods[i].raw;
		size_t n = strlen(raw);
		for (size_t k = 0; k < n; k++) {
			/* A copy of exactly k bytes, so ASan sees any read past them. */
			uint8_t *cut = malloc(k ? k : 1);
			memcpy(cut, raw, k);
			struct admin_req req;
			ssize_t rc = admin_http_parse(cut, k, &req);
			cr_expect_eq(rc, 0, "%s cut at %zu: rc %zd", raw, k, rc);
			free(cut);
		}
	}
}

Test(admin_http, pipelined_requests)
{
	/* Every good request back to back, then half of one more. */
	char all[8192] = "";
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++)
		strcat(all, goods[i].raw);
	strcat(all, "GET /metr");
	size_t n = strlen(all), off = 0;
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		struct admin_req req;
		ssize_t rc = admin_http_parse((const uint8_t *)all + off, n - off, &req);
		cr_assert_eq(rc, (ssize_t)strlen(goods[i].raw), "request %zu: rc %zd", i, rc);
		check_good(&goods[i], &req);
		off += (size_t)rc;
	}
	struct admin_req req;
	cr_assert_eq(admin_http_parse((const uint8_t *)all + off, n - off, &req), 0);
	cr_assert_eq(n - off, 9);
}

/* "GET / HTTP/1.1\r\nX: aaa...\r\n\r\n" with a head of exactly len bytes. */
static char *head_of(size_t len)
{
	const char *start = "GET / HTTP/1.1\r\nX: ", *end = "\r\n\r\n";
	char *p = malloc(len + 1);
	size_t a = strlen(start), b = strlen(end);
	memcpy(p, start, a);
	memset(p + a, 'a', len - a - b);
	memcpy(p + len - b, end, b);
	p[len] = '\0';
	return p;
}

Test(admin_http, oversized)
{
	struct admin_req req;
	char *p = head_of(ADMIN_HTTP_MAX_HEAD);
	cr_assert_eq(admin_http_parse((uint8_t *)p, ADMIN_HTTP_MAX_HEAD, &req), ADMIN_HTTP_MAX_HEAD,
	             "a head of exactly the limit is fine");
	free(p);
	p = head_of(ADMIN_HTTP_MAX_HEAD + 1);
	cr_assert_eq(admin_http_parse((uint8_t *)p, ADMIN_HTTP_MAX_HEAD + 1, &req), -E2BIG);
	cr_assert_eq(admin_http_parse((uint8_t *)p, ADMIN_HTTP_MAX_HEAD, &req), -E2BIG,
	             "the limit reached without the end of the head");
	cr_assert_eq(admin_http_parse((uint8_t *)p, ADMIN_HTTP_MAX_HEAD - 1, &req), 0);
	free(p);

	const char *cl = "POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n";
	cr_assert_eq(admin_http_parse((const uint8_t *)cl, strlen(cl), &req), -EFBIG,
	             "refused before the body arrives");
	cl = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
	cr_assert_eq(admin_http_parse((const uint8_t *)cl, strlen(cl), &req), -EINVAL);

	/* A chunked body grows past the limit chunk by chunk. */
	struct buf b;
	buf_init(&b);
	const char *h = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	cr_assert_eq(buf_append(&b, h, strlen(h)), 0);
	char chunk[4096 + 16];
	int cn = snprintf(chunk, sizeof(chunk), "1000\r\n");
	memset(chunk + cn, 'z', 4096);
	memcpy(chunk + cn + 4096, "\r\n", 2);
	for (int i = 0; i < 17; i++)
		cr_assert_eq(buf_append(&b, chunk, (size_t)cn + 4096 + 2), 0);
	cr_assert_eq(admin_http_parse(b.data, b.len, &req), -EFBIG);
	b.len = strlen(h) + 16 * ((size_t)cn + 4096 + 2);
	cr_assert_eq(admin_http_parse(b.data, b.len, &req), 0, "64 KiB so far: still fine");
	cr_assert_eq(buf_append(&b, "0\r\n\r\n", 5), 0);
	cr_assert_eq(admin_http_parse(b.data, b.len, &req), (ssize_t)b.len);
	cr_assert_eq(req.body_len, 65536);
	buf_free(&b);
}

struct bad {
	const char *raw;
	size_t len; /* 0: strlen */
	ssize_t rc;
};

static const struct bad bads[] = {
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, -EINVAL},
        {"G@T / HTTP/1.1\r\n\r\n", 0, -EINVAL},
        {"get / HTTP/1.1\r\n\r\n", 0, -EINVAL},
        {"GET / HTTX/1.1\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1 extra\r\n\r\n", 0, -EINVAL},
        {" GET / HTTP/1.1\r\n\r\n", 0, -EINVAL},
        {"GET /\x01 HTTP/1.1\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26, -EINVAL},
        {"GET / HTTP/1.1\r\nX\x7f: a\r\n\r\n", 0, -EINVAL},
        {"GET / HTTP/1.1\r\n: a\r\n\r\n", 0, -EINVAL},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, -EINVAL},
        {"\0\0\0\0", 4, -EINVAL},
        {"GET / HTTP/2.0\r\n\r\n", 0, -EPROTONOSUPPORT},
        {"GET / HTTP/0.9\r\n\r\n", 0, -EPROTONOSUPPORT},
        {"GET / HTTP/1.1\rX", 0, -EINVAL},
};

Test(admin_http, malformed)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		size_t n = b->len ? b->len : strlen(b->raw);
		struct admin_req req;
		ssize_t rc = admin_http_parse((const uint8_t *)b->raw, n, &req);
		cr_expect_eq(rc, b->rc, "case %zu (%.20s): rc %zd, want %zd", i, b->raw, rc, b->rc);
	}
}

Test(admin_http, error_responses)
{
	static const struct {
		ssize_t rc;
		const char *status;
	} cases[] = {
	        {-EINVAL, "HTTP/1.1 400 Bad Request\r\n"},
	        {-E2BIG, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
	        {-EFBIG, "HTTP/1.1 413 Content Too Large\r\n"},
	        {-EPROTONOSUPPORT, "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b);
		cr_assert_eq(admin_http_error(&b, cases[i].rc), 0);
		cr_assert_eq(buf_append(&b, "", 1), 0);
		const char *s = (const char *)b.data;
		cr_expect(strncmp(s, cases[i].status, strlen(cases[i].status)) == 0, "%s", s);
		cr_expect(strstr(s, "\r\nConnection: close\r\n\r\n"), "%s", s);
		buf_free(&b);
	}
}

Test(admin_http, respond_exact)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(admin_http_respond(&b, 200, "text/plain", "hi", 2, true), 0);
	cr_assert_eq(admin_http_respond(&b, 204, NULL, NULL, 0, false), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	cr_assert_str_eq((const char *)b.data,
	                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
	                 "Connection: keep-alive\r\n\r\nhi"
	                 "HTTP/1.1 204 Unknown\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	buf_free(&b);
}

/* Routes: parse a request, route it, return the response text. */
static int status_ok(void *ctx, struct buf *out)
{
	return buf_append(out, ctx, strlen(ctx));
}

static int status_fails(void *ctx, struct buf *out)
{
	return -EIO;
}

static bool down(void *ctx, const char **reason)
{
	*reason = "no upstream server reachable";
	return false;
}

static bool up(void *ctx, const char **reason)
{
	return true;
}

static char *route(const char *raw, const struct admin_hooks *hooks)
{
	static struct buf b;
	struct admin_req req;
	buf_free(&b);
	cr_assert_eq(admin_http_parse((const uint8_t *)raw, strlen(raw), &req),
	             (ssize_t)strlen(raw), "%s", raw);
	cr_assert_eq(admin_route(&req, &b, hooks), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	return (char *)b.data;
}

static void reset(void)
{
	metrics_reset();
}

TestSuite(admin_route, .fini = reset);

Test(admin_route, metrics_get_and_head)
{
	metrics_inc(metrics_counter("vecgate_test_total", "A test counter."), 7);
	const char *body = "# HELP vecgate_test_total A test counter.\n"
	                   "# TYPE vecgate_test_total counter\n"
	                   "vecgate_test_total 7\n";
	char want[512];
	snprintf(want, sizeof(want),
	         "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	         "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n%s",
	         strlen(body), body);
	cr_assert_str_eq(route("GET /metrics HTTP/1.1\r\n\r\n", NULL), want);
	*strstr(want, "\r\n\r\n") = '\0';
	strcat(want, "\r\n\r\n");
	cr_assert_str_eq(route("HEAD /metrics HTTP/1.1\r\n\r\n", NULL), want,
	                 "HEAD: GET's headers, no body");
	cr_assert(strstr(route("GET /metrics?x=1 HTTP/1.0\r\n\r\n", NULL),
	                 "Connection: close\r\n\r\n# HELP"));
}

Test(admin_route, status)
{
	struct admin_hooks h = {.status_json = status_ok, .ctx = "{\"ok\":true}"};
	cr_assert_str_eq(route("GET /status HTTP/1.1\r\n\r\n", &h),
	                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                 "Content-Length: 11\r\nConnection: keep-alive\r\n\r\n{\"ok\":true}");
	h.status_json = status_fails;
	cr_assert(strncmp(route("GET /status HTTP/1.1\r\n\r\n", &h),
	                  "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
	cr_assert(strncmp(route("GET /status HTTP/1.1\r\n\r\n", NULL), "HTTP/1.1 404 ", 13) == 0,
	          "no hook, no /status");
}

Test(admin_route, health)
{
	struct admin_hooks h = {.healthy = up};
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";
	cr_assert_str_eq(route("GET /health HTTP/1.1\r\n\r\n", &h), ok);
	cr_assert_str_eq(route("GET /health HTTP/1.1\r\n\r\n", NULL), ok);
	h.healthy = down;
	cr_assert_str_eq(route("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", &h),
	                 "HTTP/1.1 503 Service Unavailable\r\n"
	                 "Content-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Length: 42\r\nConnection: close\r\n\r\n"
	                 "unavailable: no upstream server reachable\n");
	cr_assert_str_eq(route("HEAD /health HTTP/1.1\r\n\r\n", &h),
	                 "HTTP/1.1 503 Service Unavailable\r\n"
	                 "Content-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Length: 42\r\nConnection: keep-alive\r\n\r\n");
}

Test(admin_route, not_found_and_not_allowed)
{
	static const char *const missing[] = {"/",         "/metrics/",  "/Metrics",
	                                      "/metricsx", "/%6detrics", "/health/../metrics",
	                                      NULL};
	for (int i = 0; missing[i]; i++) {
		char raw[128];
		snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\n\r\n", missing[i]);
		cr_expect_str_eq(
		        route(raw, NULL),
		        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
		        "Content-Length: 44\r\nConnection: keep-alive\r\n\r\n"
		        "not found: try /metrics, /status or /health\n",
		        "%s", missing[i]);
	}
	cr_assert(strstr(route("HEAD /nope HTTP/1.1\r\n\r\n", NULL), "\r\n\r\n")[4] == '\0',
	          "HEAD 404 has no body");
	static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", NULL};
	for (int i = 0; methods[i]; i++) {
		char raw[128];
		snprintf(raw, sizeof(raw), "%s /metrics HTTP/1.1\r\n\r\n", methods[i]);
		cr_expect_str_eq(
		        route(raw, NULL),
		        "HTTP/1.1 405 Method Not Allowed\r\n"
		        "Content-Type: text/plain; charset=utf-8\r\n"
		        "Content-Length: 36\r\nAllow: GET, HEAD\r\nConnection: keep-alive\r\n"
		        "\r\nmethod not allowed: use GET or HEAD\n",
		        "%s", methods[i]);
	}
}
