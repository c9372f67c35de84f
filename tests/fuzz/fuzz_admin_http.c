/* The admin endpoint's HTTP request parser, then the router on what it
 * parsed. A request must lie inside the bytes, parse alone to the same
 * length (a request is self-delimiting, whatever is pipelined after it), and
 * every prefix of it must ask for more bytes or fail as the whole does.
 * Every response must be a whole HTTP/1.1 message whose Content-Length is
 * the body sent (none for HEAD). */
#include "fuzz.h"

#include <errno.h>

#include "admin/http.h"

static int status_json(void *ctx, struct buf *out)
{
	return buf_append(out, "{}", 2);
}

static bool healthy(void *ctx, const char **reason)
{
	*reason = "loading";
	return *(const bool *)ctx;
}

/* Checks the framing of one response and returns its status code. */
static int check_response(const struct buf *out, bool head)
{
	const char *s = (const char *)out->data;
	FUZZ_CHECK(out->len > 12 && memcmp(s, "HTTP/1.1 ", 9) == 0);
	const char *end = memmem(s, out->len, "\r\n\r\n", 4);
	FUZZ_CHECK(end != NULL);
	size_t head_len = (size_t)(end - s) + 4, body = out->len - head_len;
	const char *cl = memmem(s, head_len, "Content-Length: ", 16);
	FUZZ_CHECK(cl != NULL);
	size_t want = strtoul(cl + 16, NULL, 10);
	FUZZ_CHECK(head ? body == 0 : body == want);
	return atoi(s + 9);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct admin_req req, req2;
	ssize_t rc = admin_http_parse(data, size, &req);
	struct buf out;
	buf_init(&out);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EINVAL || rc == -E2BIG || rc == -EFBIG || rc == -EPROTONOSUPPORT);
		FUZZ_CHECK(admin_http_error(&out, rc) == 0);
		int st = check_response(&out, false);
		FUZZ_CHECK(st >= 400 && st < 600);
		FUZZ_CHECK(memmem(out.data, out.len, "Connection: close", 17) != NULL);
		buf_free(&out);
		return 0;
	}
	if (rc == 0) {
		FUZZ_CHECK(size < ADMIN_HTTP_MAX_HEAD + ADMIN_HTTP_MAX_BODY + 1);
		return 0;
	}
	size_t used = (size_t)rc;
	FUZZ_CHECK(used <= size);
	FUZZ_CHECK(fuzz_within(data, used, req.path, req.path_len));
	FUZZ_CHECK(req.query == NULL || fuzz_within(data, used, req.query, req.query_len));
	FUZZ_CHECK(req.body_len <= ADMIN_HTTP_MAX_BODY && req.body_len < used);
	FUZZ_CHECK(req.http_minor >= 0 && req.http_minor <= 9);
	FUZZ_CHECK(memchr(req.path, '?', req.path_len) == NULL);

	/* The request alone, from a copy of just its bytes. */
	uint8_t *copy = fuzz_dup(data, used);
	FUZZ_CHECK(admin_http_parse(copy, used, &req2) == rc);
	FUZZ_CHECK(req2.method == req.method && req2.path_len == req.path_len &&
	           memcmp(req2.path, req.path, req.path_len) == 0 &&
	           req2.keep_alive == req.keep_alive && req2.body_len == req.body_len);
	/* A cut inside it (a few places) must not complete a request. */
	for (size_t k = 1; k <= 4 && k <= used; k++) {
		size_t cut = used - (used * k) / 4;
		if (cut == used)
			continue;
		ssize_t r = admin_http_parse(copy, cut, &req2);
		FUZZ_CHECK(r <= 0);
	}
	free(copy);

	bool ok = size & 1;
	struct admin_hooks hooks = {status_json, healthy, &ok};
	int route = admin_route(&req, &out, &hooks);
	FUZZ_CHECK(route == 0);
	int st = check_response(&out, req.method == ADMIN_HEAD);
	FUZZ_CHECK(st == 200 || st == 404 || st == 405 || st == 503 || st == 500);
	FUZZ_CHECK((memmem(out.data, out.len, "Connection: keep-alive", 22) != NULL) ==
	           req.keep_alive);
	/* Without hooks too: no /status, always healthy. */
	buf_free(&out);
	buf_init(&out);
	struct admin_hooks none = {0};
	FUZZ_CHECK(admin_route(&req, &out, &none) == 0);
	check_response(&out, req.method == ADMIN_HEAD);
	buf_free(&out);
	return 0;
}
