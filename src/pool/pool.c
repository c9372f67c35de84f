/* Upstream servers, spare pre-handshaken connections, health and refill. */
#include "pool/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <assert.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "proto/mysql.h"
#include "proto/packet.h"
#include "proto/packets.h"

#define MAINT_INTERVAL_MS 250
#define BACKOFF_MIN_MS    200

struct pool_server {
	struct pool *pool;
	char host[256];
	int port;
	char name[300];
	struct list_node spares;  /* UP_SPARE, newest first */
	struct list_node pending; /* connecting, greeting or TLS */
	int n_spares;
	int n_pending;
	bool healthy;
	uint64_t retry_at_ms; /* no new connection before this after failures */
	uint64_t backoff_ms;
	char last_error[256];
	void *tls_session; /* the last TLS session, to resume */
	uint64_t connects, connect_failures, handed_out, retired, resumed;
};

struct pool {
	uv_loop_t *loop;
	struct pool_options opt;
	struct pool_server *servers;
	int n_servers;
	int rr;
	struct list_node waiters; /* oldest first */
	int n_waiters;
	struct net_timer maint;
	bool shutting_down;
};

static void refill(struct pool *p);
static void dispatch(struct pool *p);

uint64_t pool_now_ms(void)
{
	return core_now_ms();
}

static bool pending_state(enum upstream_state st)
{
	return st == UP_CONNECTING || st == UP_GREETING || st == UP_TLS;
}

/* The only place an upstream changes state: asserts the transition is one
 * the lifecycle allows and keeps the server's lists and counts in step. */
static void set_state(struct upstream *u, enum upstream_state st)
{
	struct pool_server *s = u->server;
	enum upstream_state from = u->state;
	assert(st == UP_CLOSING || (from == UP_CONNECTING && st == UP_GREETING) ||
	       (from == UP_GREETING && (st == UP_TLS || st == UP_SPARE)) ||
	       (from == UP_TLS && st == UP_SPARE) || (from == UP_SPARE && st == UP_BOUND));
	assert(from != UP_CLOSING);
	if (from == UP_SPARE) {
		list_remove(&u->link);
		s->n_spares--;
	} else if (pending_state(from) && !pending_state(st)) {
		list_remove(&u->link);
		s->n_pending--;
	}
	u->state = st;
	if (st == UP_SPARE) {
		list_push_front(&s->spares, &u->link);
		s->n_spares++;
	}
}

static struct upstream *first_upstream(const struct list_node *head)
{
	return list_entry(list_first(head), struct upstream, link);
}

static struct pool_waiter *first_waiter(const struct pool *p)
{
	return list_entry(list_first(&p->waiters), struct pool_waiter, link);
}

static void upstream_free(struct upstream *u)
{
	buf_free(&u->greeting_raw);
	free(u);
}

static void up_event_cb(struct net_conn *c, enum net_event ev, int status);

void upstream_close(struct upstream *u)
{
	if (u->state == UP_CLOSING)
		return;
	set_state(u, UP_CLOSING);
	if (u->conn) {
		u->conn->cb = up_event_cb;
		u->conn->data = u;
		net_close(u->conn);
	} else {
		upstream_free(u);
	}
}

static void server_failed(struct pool_server *s, const char *what)
{
	struct pool *p = s->pool;
	s->connect_failures++;
	snprintf(s->last_error, sizeof(s->last_error), "%s", what);
	if (s->healthy)
		log_warn("upstream %s: %s", s->name, what);
	s->healthy = false;
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > p->opt.retry_max_ms)
		s->backoff_ms = p->opt.retry_max_ms;
	s->retry_at_ms = pool_now_ms() + s->backoff_ms;

	/* With every server failing and nothing in flight, waiting clients get
	 * the error now, as they would connecting straight to TiDB. */
	bool any = false;
	for (int i = 0; i < p->n_servers; i++)
		any |= p->servers[i].healthy || p->servers[i].n_pending > 0;
	if (any)
		return;
	char msg[400];
	snprintf(msg, sizeof(msg), "upstream %s: %s", s->name, what);
	struct pool_waiter *w;
	while ((w = first_waiter(p))) {
		pool_cancel(p, w);
		w->cb(w, NULL, msg);
	}
}

static void up_fail(struct upstream *u, const char *what)
{
	struct pool_server *s = u->server;
	upstream_close(u);
	server_failed(s, what);
	refill(s->pool);
}

static void became_ready(struct upstream *u)
{
	struct pool_server *s = u->server;
	set_state(u, UP_SPARE);
	u->ready_ms = pool_now_ms();
	if (!s->healthy)
		log_info("upstream %s: reachable again", s->name);
	s->healthy = true;
	s->backoff_ms = 0;
	s->last_error[0] = 0;
	dispatch(s->pool);
}

/* The greeting arrived: remember it, then start TLS if configured. */
static void on_greeting(struct upstream *u)
{
	struct pool *p = u->server->pool;
	struct net_conn *c = u->conn;
	struct proto_logical lp;
	ssize_t n = proto_scan_logical(buf_head(&c->in), buf_unread(&c->in), 64 * 1024, &lp);
	if (n == 0)
		return;
	if (n < 0 || lp.chunks != 1) {
		up_fail(u, "malformed greeting");
		return;
	}
	const uint8_t *payload = buf_head(&c->in) + PROTO_HDR;
	if (lp.payload_len > 0 && payload[0] == PROTO_ERR) {
		struct proto_err e;
		char msg[300];
		if (proto_parse_err(payload, lp.payload_len, PROTO_CLIENT_PROTOCOL_41, &e) >= 0)
			snprintf(msg, sizeof(msg), "refused: %u %.*s", e.code, (int)e.msg_len,
			         e.msg);
		else
			snprintf(msg, sizeof(msg), "refused with an unreadable error");
		up_fail(u, msg);
		return;
	}
	buf_reset(&u->greeting_raw);
	if (buf_append(&u->greeting_raw, payload, lp.payload_len) < 0 ||
	    proto_parse_greeting(u->greeting_raw.data, u->greeting_raw.len, &u->greeting) < 0) {
		up_fail(u, "unreadable greeting");
		return;
	}
	buf_consume(&c->in, (size_t)n);
	u->next_seq = (uint8_t)(lp.last_seq + 1);
	if (!p->opt.tls) {
		became_ready(u);
		return;
	}
	if (!(u->greeting.caps & PROTO_CLIENT_SSL)) {
		up_fail(u, "server does not offer TLS (set [upstream] tls = false to allow "
		           "plaintext)");
		return;
	}
	/* TiDB takes the client's flags from the handshake response after TLS;
	 * other servers keep those of the SSLRequest (see struct upstream). */
	if (!memmem(u->greeting.server_version, u->greeting.server_version_len, "TiDB", 4)) {
		u->tls_late = true;
		became_ready(u);
		return;
	}
	uint32_t caps = p->opt.client_caps & u->greeting.caps;
	if (upstream_start_tls(u, caps, 1u << 30, u->greeting.charset) < 0) {
		up_fail(u, "could not start TLS");
		return;
	}
	set_state(u, UP_TLS);
}

int upstream_start_tls(struct upstream *u, uint32_t caps, uint32_t max_packet, uint8_t charset)
{
	struct pool *p = u->server->pool;
	struct net_conn *c = u->conn;
	struct buf req;
	buf_init(&req);
	int rc = proto_write_ssl_request(&req, &u->next_seq, caps | PROTO_CLIENT_SSL, max_packet,
	                                 charset);
	if (rc == 0)
		rc = net_write(c, req.data, req.len);
	buf_free(&req);
	if (rc < 0)
		return rc;
	net_flush(c);
	const char *name = *p->opt.tls_server_name ? p->opt.tls_server_name : u->server->host;
	u->tls_late = false;
	c->resume = &u->server->tls_session;
	return net_start_tls_client(c, p->opt.tls_ctx, name, p->opt.tls_verify);
}

static void up_event_cb(struct net_conn *c, enum net_event ev, int status)
{
	struct upstream *u = c->data;
	char msg[300];
	switch (ev) {
	case NET_EV_CONNECTED:
		if (status < 0) {
			snprintf(msg, sizeof(msg), "connect: %s", uv_strerror(status));
			up_fail(u, msg);
			return;
		}
		set_state(u, UP_GREETING);
		u->server->connects++;
		net_keepalive(c, u->server->pool->opt.keepalive_s);
		break;
	case NET_EV_DATA:
		if (u->state == UP_GREETING)
			on_greeting(u);
		else if (u->state == UP_SPARE) {
			/* A spare has nothing to say until a client speaks: this is
			 * the server giving up on it (an error before closing). */
			upstream_close(u);
			refill(u->server->pool);
		}
		break;
	case NET_EV_TLS_DONE:
		if (status < 0) {
			snprintf(msg, sizeof(msg), "TLS handshake: %s", net_tls_error());
			up_fail(u, msg);
			return;
		}
		if (net_tls_resumed(c))
			u->server->resumed++;
		became_ready(u);
		break;
	case NET_EV_EOF:
		if (u->state == UP_SPARE) {
			upstream_close(u);
			refill(u->server->pool);
		} else {
			snprintf(msg, sizeof(msg), "closed during %s: %s",
			         u->state == UP_TLS ? "TLS handshake" : "handshake",
			         uv_strerror(status));
			up_fail(u, msg);
		}
		break;
	case NET_EV_CLOSED:
		upstream_free(u);
		break;
	case NET_EV_DRAINED:
		break;
	}
}

static void open_one(struct pool_server *s)
{
	struct pool *p = s->pool;
	struct upstream *u = calloc(1, sizeof(*u));
	if (!u)
		return;
	u->server = s;
	u->state = UP_CONNECTING;
	list_init(&u->link);
	u->created_ms = pool_now_ms();
	buf_init(&u->greeting_raw);
	u->conn = net_connect(p->loop, s->host, s->port, up_event_cb, u);
	if (!u->conn) {
		upstream_free(u);
		return;
	}
	list_push_front(&s->pending, &u->link);
	s->n_pending++;
}

/* Keeps `spares` ready per usable server, plus one connection in flight for
 * each waiting client beyond what is already coming. */
static void refill(struct pool *p)
{
	if (p->shutting_down)
		return;
	uint64_t now = pool_now_ms();
	int in_flight = 0;
	for (int i = 0; i < p->n_servers; i++)
		in_flight += p->servers[i].n_pending;
	int extra = p->n_waiters - in_flight;
	for (int i = 0; i < p->n_servers; i++) {
		struct pool_server *s = &p->servers[i];
		if (now < s->retry_at_ms) {
			continue;
		}
		/* A server that failed gets one probe at a time until it answers. */
		int want = s->healthy ? p->opt.spares : (s->n_pending == 0);
		while (s->n_spares + s->n_pending < want)
			open_one(s);
	}
	for (int k = 0; extra > 0 && k < p->n_servers * 4; k++) {
		struct pool_server *s = &p->servers[(p->rr + k) % p->n_servers];
		if (now < s->retry_at_ms || (!s->healthy && s->n_pending > 0))
			continue;
		open_one(s);
		extra--;
	}
}

static struct upstream *take_spare(struct pool *p)
{
	for (int k = 0; k < p->n_servers; k++) {
		struct pool_server *s = &p->servers[(p->rr + k) % p->n_servers];
		struct upstream *u = first_upstream(&s->spares);
		if (!u)
			continue;
		p->rr = (p->rr + k + 1) % p->n_servers;
		set_state(u, UP_BOUND);
		s->handed_out++;
		return u;
	}
	return NULL;
}

static void dispatch(struct pool *p)
{
	while (!list_empty(&p->waiters)) {
		struct upstream *u = take_spare(p);
		if (!u)
			break;
		struct pool_waiter *w = first_waiter(p);
		pool_cancel(p, w);
		w->cb(w, u, NULL);
	}
	refill(p);
}

void pool_acquire(struct pool *p, struct pool_waiter *w)
{
	w->since_ms = pool_now_ms();
	struct upstream *u = list_empty(&p->waiters) ? take_spare(p) : NULL;
	if (u) {
		refill(p);
		w->cb(w, u, NULL);
		return;
	}
	list_push_back(&p->waiters, &w->link);
	w->queued = true;
	p->n_waiters++;
	refill(p);
}

void pool_cancel(struct pool *p, struct pool_waiter *w)
{
	if (!w->queued)
		return;
	list_remove(&w->link);
	w->queued = false;
	p->n_waiters--;
}

static void maint_cb(struct net_timer *t)
{
	struct pool *p = t->data;
	uint64_t now = pool_now_ms();
	for (int i = 0; i < p->n_servers; i++) {
		struct pool_server *s = &p->servers[i];
		/* Retire spares before the server would give up on their
		 * unanswered greeting; refill() replaces them. */
		struct list_node *pos, *tmp;
		list_for_each_safe(pos, tmp, &s->spares)
		{
			struct upstream *u = container_of(pos, struct upstream, link);
			if (now - u->ready_ms >= p->opt.spare_max_age_ms) {
				s->retired++;
				upstream_close(u);
			}
		}
		/* up_fail() refills, which may add connections to this list:
		 * walk it afresh after each failure (new ones are not due). */
		bool again = true;
		while (again) {
			again = false;
			list_for_each_safe(pos, tmp, &s->pending)
			{
				struct upstream *u = container_of(pos, struct upstream, link);
				if (u->created_ms <= now &&
				    now - u->created_ms >= p->opt.connect_timeout_ms) {
					up_fail(u, "connect timeout");
					again = true;
					break;
				}
			}
		}
	}
	struct pool_waiter *w;
	while ((w = first_waiter(p)) && now - w->since_ms >= p->opt.connect_timeout_ms) {
		pool_cancel(p, w);
		w->cb(w, NULL, "timed out waiting for an upstream connection");
	}
	refill(p);
	net_timer_start(&p->maint, MAINT_INTERVAL_MS);
}

static bool split_host_port(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return false;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= hostlen)
		return false;
	char *end;
	long v = strtol(colon + 1, &end, 10);
	if (*end || v <= 0 || v > 65535)
		return false;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (int)v;
	return true;
}

struct pool *pool_new(uv_loop_t *loop, const struct pool_options *opt, char *err, size_t errlen)
{
	if (opt->n_servers <= 0) {
		snprintf(err, errlen, "no upstream servers");
		return NULL;
	}
	struct pool *p = calloc(1, sizeof(*p));
	if (!p || !(p->servers = calloc((size_t)opt->n_servers, sizeof(*p->servers)))) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->loop = loop;
	p->opt = *opt;
	list_init(&p->waiters);
	p->n_servers = opt->n_servers;
	for (int i = 0; i < p->n_servers; i++) {
		struct pool_server *s = &p->servers[i];
		s->pool = p;
		s->healthy = true;
		list_init(&s->spares);
		list_init(&s->pending);
		if (!split_host_port(opt->servers[i], s->host, sizeof(s->host), &s->port)) {
			snprintf(err, errlen, "bad upstream address '%s'", opt->servers[i]);
			free(p->servers);
			free(p);
			return NULL;
		}
		snprintf(s->name, sizeof(s->name), "%s", opt->servers[i]);
	}
	net_timer_init(loop, &p->maint, maint_cb, p);
	net_timer_start(&p->maint, MAINT_INTERVAL_MS);
	refill(p);
	return p;
}

void upstream_tls_done(struct upstream *u)
{
	if (net_tls_resumed(u->conn))
		u->server->resumed++;
}

void pool_update(struct pool *p, int spares, uint64_t spare_max_age_ms, uint64_t connect_timeout_ms,
                 uint64_t retry_max_ms)
{
	p->opt.spares = spares;
	p->opt.spare_max_age_ms = spare_max_age_ms;
	p->opt.connect_timeout_ms = connect_timeout_ms;
	p->opt.retry_max_ms = retry_max_ms;
	/* Surplus spares age out; missing ones are opened now. */
	refill(p);
}

void pool_shutdown(struct pool *p)
{
	p->shutting_down = true;
	net_timer_stop(&p->maint);
	for (int i = 0; i < p->n_servers; i++) {
		struct pool_server *s = &p->servers[i];
		struct upstream *u;
		while ((u = first_upstream(&s->spares)))
			upstream_close(u);
		while ((u = first_upstream(&s->pending)))
			upstream_close(u);
	}
	struct pool_waiter *w;
	while ((w = first_waiter(p))) {
		pool_cancel(p, w);
		w->cb(w, NULL, "vecgate is shutting down");
	}
}

static void maint_closed(struct net_timer *t)
{
	free(t->data);
}

void pool_free(struct pool *p)
{
	for (int i = 0; i < p->n_servers; i++)
		if (p->servers[i].tls_session)
			net_tls_session_free(p->servers[i].tls_session);
	free(p->servers);
	p->maint.data = p;
	net_timer_close(&p->maint, maint_closed);
}

int pool_status_json(const struct pool *p, struct buf *out)
{
	int rc = buf_append(out, "[", 1);
	for (int i = 0; i < p->n_servers && rc == 0; i++) {
		const struct pool_server *s = &p->servers[i];
		rc = buf_append(out, i ? ",{\"server\":" : "{\"server\":", i ? 11 : 10);
		if (rc == 0)
			rc = buf_append_json_str(out, s->name);
		if (rc == 0)
			rc = buf_appendf(
			        out,
			        ",\"healthy\":%s,\"spares\":%d,\"connecting\":%d,"
			        "\"connects\":%llu,\"connect_failures\":%llu,\"handed_out\":%llu,"
			        "\"retired\":%llu,\"tls_resumed\":%llu,\"last_error\":",
			        s->healthy ? "true" : "false", s->n_spares, s->n_pending,
			        (unsigned long long)s->connects,
			        (unsigned long long)s->connect_failures,
			        (unsigned long long)s->handed_out, (unsigned long long)s->retired,
			        (unsigned long long)s->resumed);
		if (rc == 0)
			rc = buf_append_json_str(out, s->last_error);
		if (rc == 0)
			rc = buf_append(out, "}", 1);
	}
	return rc ? rc : buf_append(out, "]", 1);
}
