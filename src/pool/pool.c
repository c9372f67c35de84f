/* Upstream servers, spare pre-handshaken connections, least-connections
 * balancing, health checks and refill. */
#include "pool/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <assert.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "proto/mysql.h"
#include "proto/packet.h"
#include "proto/packets.h"

#define MAINT_INTERVAL_MS 250
/* Servers tried at once when none is healthy: one bit each. */
_Static_assert(CONFIG_ADDRS_MAX <= 64, "the tried set is a uint64_t");

/* A server of the upstream description; its health (healthy, back-off,
 * last error) is the description's, shared with the cache's connections. */
struct pool_server {
	struct pool *pool;
	size_t index; /* in the upstream description */
	const struct upstream_server *addr;
	struct list_node spares;  /* UP_SPARE, newest first */
	struct list_node pending; /* connecting, greeting or TLS */
	/* Counts and counters are atomic: /status sums every worker's pool
	 * from the admin's loop (docs/design.md §2). */
	_Atomic int n_spares;
	_Atomic int n_pending;
	void *tls_session;      /* the last TLS session, to resume */
	struct upstream *probe; /* the health check in flight, if any */
	/* When the last check started: a healthy server's next one is due an
	 * interval later (the interval as configured then: SIGHUP). */
	uint64_t check_started_ms;
	struct metric *m_spares;
	_Atomic uint64_t connects, connect_failures, handed_out, retired, resumed;
};

struct pool {
	uv_loop_t *loop;
	struct pool_options opt;
	struct upstream_group *up;
	const struct upstream_target *target;
	struct pool_server *servers;
	int n_servers;
	struct list_node waiters; /* oldest first */
	int n_waiters;
	/* With no server healthy, waiting clients try each server once, in
	 * the back-off order: those already tried in this round. */
	uint64_t tried;
	char last_err[1024]; /* the last failure, for clients nothing could serve */
	struct net_timer maint;
	bool shutting_down;
};

static void refill(struct pool *p);
static void dispatch(struct pool *p);
static void probe_finish(struct upstream *u, bool ok, const char *what);

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
		list_remove(&u->link); /* a probe is on no list: harmless */
		if (!u->probe)
			s->n_pending--;
	}
	if (from == UP_BOUND)
		upstream_sessions_add(s->pool->up, s->index, -1);
	u->state = st;
	if (st == UP_SPARE) {
		list_push_front(&s->spares, &u->link);
		s->n_spares++;
	}
	if (st == UP_BOUND)
		upstream_sessions_add(s->pool->up, s->index, 1);
	/* The gauge sums every worker's pool. */
	if (from == UP_SPARE && s->m_spares)
		metrics_gauge_add(s->m_spares, -1);
	if (st == UP_SPARE && s->m_spares)
		metrics_gauge_add(s->m_spares, 1);
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

static bool server_healthy(const struct pool_server *s, uint64_t *retry_at_ms)
{
	struct upstream_health h;
	upstream_health(s->pool->up, s->index, &h);
	if (retry_at_ms)
		*retry_at_ms = h.retry_at_ms;
	return h.healthy;
}

/* A server taken out keeps no spares: they would go to new sessions. */
static void drop_spares(struct pool_server *s)
{
	struct upstream *u;
	while ((u = first_upstream(&s->spares)))
		upstream_close(u);
}

static void server_failed(struct pool_server *s, const char *what)
{
	struct pool *p = s->pool;
	s->connect_failures++;
	snprintf(p->last_err, sizeof(p->last_err), "upstream %s: %s", s->addr->name, what);
	upstream_failed(p->up, s->index, what);
	drop_spares(s);
}

/* A connection failed before it was handed out: a probe reports a failed
 * check, a pool connection a failed link (dispatch() then serves waiting
 * clients from other servers, or refill() gives them the error once every
 * server failed). */
static void up_fail(struct upstream *u, const char *what)
{
	if (u->probe) {
		probe_finish(u, false, what);
		return;
	}
	struct pool_server *s = u->server;
	upstream_close(u);
	server_failed(s, what);
	/* Clients waiting for a connection to s may take a spare elsewhere. */
	dispatch(s->pool);
}

static void became_ready(struct upstream *u)
{
	struct pool_server *s = u->server;
	if (u->probe) {
		probe_finish(u, true, NULL);
		return;
	}
	set_state(u, UP_SPARE);
	u->ready_ms = pool_now_ms();
	/* A spare whose TLS waits for its client has only shown a greeting:
	 * the server counts as reachable once a handshake gets through (its
	 * session's, upstream_tls_done, or a health check's). */
	if (!u->tls_late)
		upstream_reachable(s->pool->up, s->index);
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
	if (!p->target->tls) {
		became_ready(u);
		return;
	}
	if (!(u->greeting.caps & PROTO_CLIENT_SSL)) {
		up_fail(u, "server does not offer TLS (set [upstream] tls = false to allow "
		           "plaintext)");
		return;
	}
	/* TiDB takes the client's flags from the handshake response after TLS;
	 * other servers keep those of the SSLRequest (see struct upstream). A
	 * probe is never handed to a client: it completes TLS either way. */
	if (!u->probe &&
	    !memmem(u->greeting.server_version, u->greeting.server_version_len, "TiDB", 4)) {
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
	const char *name = upstream_verify_name(p->target, u->server->index);
	u->tls_late = false;
	/* A check makes a full handshake: a resumed one would skip the
	 * certificate it is there to verify. */
	c->resume = u->probe ? NULL : &u->server->tls_session;
	return net_start_tls_client(c, upstream_tls_ctx(p->up), name, p->target->tls_verify);
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
		if (!u->probe) {
			u->server->connects++;
			net_keepalive(c, u->server->pool->opt.keepalive_s);
		}
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

/* Starts a connection to s: a future spare, or the server's health check
 * (probe). NULL when it could not even be started (out of memory). */
static struct upstream *open_conn(struct pool_server *s, bool probe)
{
	struct pool *p = s->pool;
	struct upstream *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->server = s;
	u->state = UP_CONNECTING;
	u->probe = probe;
	list_init(&u->link);
	u->created_ms = pool_now_ms();
	buf_init(&u->greeting_raw);
	u->conn = net_connect(p->loop, s->addr->host, s->addr->port, up_event_cb, u);
	if (!u->conn) {
		upstream_free(u);
		return NULL;
	}
	if (!probe) {
		list_push_front(&s->pending, &u->link);
		s->n_pending++;
	}
	return u;
}

static bool open_one(struct pool_server *s)
{
	return open_conn(s, false) != NULL;
}

/* ---- health checks ----
 *
 * A check does what a spare does short of being handed out: TCP connect,
 * TiDB's greeting (an ERR there, such as "too many connections", fails
 * it) and, with TLS on, the full handshake with the sessions' verification.
 * It never logs in, so it needs no account and leaves nothing in the
 * server's session list. A check that stopped at the greeting would pass
 * a server whose certificate no longer verifies, and put it back in
 * rotation only for every session to fail there. The connection is then
 * closed, as an unused spare is. */

static void start_check(struct pool_server *s, uint64_t now)
{
	s->check_started_ms = now;
	s->probe = open_conn(s, true);
}

static void probe_finish(struct upstream *u, bool ok, const char *what)
{
	struct pool_server *s = u->server;
	struct pool *p = s->pool;
	if (s->probe == u)
		s->probe = NULL;
	upstream_close(u);
	char msg[400];
	if (!ok)
		snprintf(msg, sizeof(msg), "health check: %s", what);
	upstream_checked(p->up, s->index, ok, ok ? NULL : msg);
	if (!ok) {
		snprintf(p->last_err, sizeof(p->last_err), "upstream %s: %s", s->addr->name, msg);
		drop_spares(s);
	}
	/* Back in: spares for it now, and waiting clients may go there. */
	dispatch(p);
}

/* Starts the checks that are due: a healthy server every
 * health_check_interval, a failed one when its back-off ends. */
static void run_checks(struct pool *p, uint64_t now)
{
	uint64_t interval = upstream_check_interval(p->up), connect_timeout_ms;
	upstream_timeouts(p->up, &connect_timeout_ms, NULL);
	for (int i = 0; i < p->n_servers; i++) {
		struct pool_server *s = &p->servers[i];
		if (s->probe) {
			if (now - s->probe->created_ms >= connect_timeout_ms)
				probe_finish(s->probe, false, "timed out");
			continue;
		}
		uint64_t retry_at;
		bool healthy = server_healthy(s, &retry_at);
		if (!healthy)
			drop_spares(s); /* marked down by a cache connection */
		if (healthy ? now - s->check_started_ms >= interval : now >= retry_at)
			start_check(s, now);
	}
}

/* No server is healthy: rather than refuse waiting clients outright, try
 * each server once for them, one connection at a time, in the back-off
 * order (those whose back-off is over first). When all of them failed,
 * the clients get the last error, as they would connecting straight to
 * TiDB; the next client starts a new round. */
static void try_all(struct pool *p, int in_flight)
{
	if (p->n_waiters == 0) {
		p->tried = 0;
		return;
	}
	if (in_flight > 0)
		return;
	size_t order[CONFIG_ADDRS_MAX];
	size_t n = upstream_order(p->up, order);
	for (size_t j = 0; j < n; j++) {
		uint64_t bit = (uint64_t)1 << order[j];
		if (p->tried & bit)
			continue;
		p->tried |= bit;
		if (open_one(&p->servers[order[j]]))
			return;
	}
	p->tried = 0;
	const char *msg = *p->last_err ? p->last_err : "no upstream server is reachable";
	struct pool_waiter *w;
	while ((w = first_waiter(p))) {
		pool_cancel(p, w);
		w->cb(w, NULL, msg);
	}
}

/* Keeps `spares` ready per healthy server, plus one connection in flight
 * for each waiting client beyond what is already coming, opened on the
 * healthy servers with the fewest sessions. A failed server gets none: its
 * health check puts it back. */
static void refill(struct pool *p)
{
	if (p->shutting_down)
		return;
	int in_flight = 0;
	bool healthy[CONFIG_ADDRS_MAX];
	size_t n_healthy = 0;
	for (int i = 0; i < p->n_servers; i++) {
		in_flight += p->servers[i].n_pending;
		healthy[i] = server_healthy(&p->servers[i], NULL);
		n_healthy += healthy[i];
	}
	if (n_healthy == 0) {
		try_all(p, in_flight);
		return;
	}
	p->tried = 0;
	int extra = p->n_waiters - in_flight;
	for (int i = 0; i < p->n_servers; i++) {
		struct pool_server *s = &p->servers[i];
		while (healthy[i] && s->n_spares + s->n_pending < p->opt.spares)
			if (!open_one(s))
				break;
	}
	if (extra <= 0)
		return;
	size_t order[CONFIG_ADDRS_MAX];
	size_t n = upstream_order(p->up, order);
	for (size_t k = 0; extra > 0 && k < n * 4; k++) {
		size_t i = order[k % n];
		if (!healthy[i])
			continue;
		if (!open_one(&p->servers[i]))
			break;
		extra--;
	}
}

/* The spare of the first server in the group's order that has one:
 * healthy servers with the fewest sessions first, ties in turn. With none
 * healthy, a spare try_all() opened (its TLS still to come) goes out too.
 * NULL when there is none, or when taking it would put a server more than
 * one session ahead of a healthy one that has a connection on the way:
 * the client waits for that one instead (it is ready in a moment, or fails
 * and takes its server out), which keeps sessions even when many clients
 * log in at once. */
static struct upstream *take_spare(struct pool *p)
{
	size_t order[CONFIG_ADDRS_MAX];
	size_t n = upstream_order(p->up, order);
	struct upstream_health h[CONFIG_ADDRS_MAX];
	bool any_healthy = false;
	uint64_t coming = UINT64_MAX; /* fewest sessions where a connection is coming */
	for (size_t k = 0; k < n; k++) {
		const struct pool_server *s = &p->servers[order[k]];
		upstream_health(p->up, s->index, &h[k]);
		any_healthy |= h[k].healthy;
		if (h[k].healthy && s->n_pending > 0 && h[k].sessions < coming)
			coming = h[k].sessions;
	}
	for (size_t k = 0; k < n; k++) {
		struct pool_server *s = &p->servers[order[k]];
		struct upstream *u = first_upstream(&s->spares);
		if (!u || (any_healthy && !h[k].healthy))
			continue;
		if (h[k].healthy && coming != UINT64_MAX && h[k].sessions > coming + 1)
			return NULL;
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
	uint64_t now = pool_now_ms(), connect_timeout_ms;
	upstream_timeouts(p->up, &connect_timeout_ms, NULL);
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
				    now - u->created_ms >= connect_timeout_ms) {
					up_fail(u, "connect timeout");
					again = true;
					break;
				}
			}
		}
	}
	struct pool_waiter *w;
	while ((w = first_waiter(p)) && now - w->since_ms >= connect_timeout_ms) {
		pool_cancel(p, w);
		w->cb(w, NULL, "timed out waiting for an upstream connection");
	}
	if (!p->opt.no_health_checks)
		run_checks(p, now);
	refill(p);
	uint64_t interval = upstream_check_interval(p->up);
	net_timer_start(&p->maint, interval < MAINT_INTERVAL_MS ? interval : MAINT_INTERVAL_MS);
}

struct pool *pool_new(uv_loop_t *loop, const struct pool_options *opt, char *err, size_t errlen)
{
	const struct upstream_target *t =
	        opt->upstream ? upstream_group_target(opt->upstream) : NULL;
	if (!t || t->n_servers == 0) {
		snprintf(err, errlen, "no upstream servers");
		return NULL;
	}
	if (t->tls && !upstream_tls_ctx(opt->upstream)) {
		snprintf(err, errlen, "upstream TLS is on but has no TLS context");
		return NULL;
	}
	struct pool *p = calloc(1, sizeof(*p));
	if (!p || !(p->servers = calloc(t->n_servers, sizeof(*p->servers)))) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->loop = loop;
	p->opt = *opt;
	p->up = opt->upstream;
	p->target = t;
	list_init(&p->waiters);
	p->n_servers = (int)t->n_servers;
	struct metrics_family *spares = metrics_family(
	        METRICS_GAUGE, "vecgate_upstream_spares",
	        "Spare connections to the server, ready for a client login.", "server", NULL);
	/* Every server starts healthy; the first checks come one interval on
	 * (the spares being opened now are the first sign of life). */
	uint64_t now = pool_now_ms();
	for (int i = 0; i < p->n_servers; i++) {
		struct pool_server *s = &p->servers[i];
		s->pool = p;
		s->index = (size_t)i;
		s->addr = &t->servers[i];
		list_init(&s->spares);
		list_init(&s->pending);
		s->check_started_ms = now;
		s->m_spares = spares ? metrics_series(spares, s->addr->name, NULL) : NULL;
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
	upstream_reachable(u->server->pool->up, u->server->index);
}

void pool_update(struct pool *p, int spares, uint64_t spare_max_age_ms)
{
	p->opt.spares = spares;
	p->opt.spare_max_age_ms = spare_max_age_ms;
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
		if ((u = s->probe)) {
			s->probe = NULL;
			upstream_close(u);
		}
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

int pool_status_json(struct pool *const *pools, size_t npools, struct buf *out)
{
	const struct pool *p = pools[0];
	uint64_t now = pool_now_ms();
	int rc = buf_append(out, "[", 1);
	for (int i = 0; i < p->n_servers && rc == 0; i++) {
		const struct pool_server *s = &p->servers[i];
		struct upstream_health h;
		upstream_health(p->up, s->index, &h);
		/* The counts of every worker's pool for this server. */
		long long spares = 0, connecting = 0;
		unsigned long long connects = 0, connect_failures = 0, handed_out = 0, retired = 0,
		                   resumed = 0;
		bool checking = false;
		for (size_t k = 0; k < npools; k++) {
			const struct pool_server *x = &pools[k]->servers[i];
			spares += x->n_spares;
			connecting += x->n_pending;
			connects += x->connects;
			connect_failures += x->connect_failures;
			handed_out += x->handed_out;
			retired += x->retired;
			resumed += x->resumed;
			/* Only the pool that checks (on this thread) has probes. */
			checking |= !pools[k]->opt.no_health_checks && x->probe;
		}
		rc = buf_append(out, i ? ",{\"server\":" : "{\"server\":", i ? 11 : 10);
		if (rc == 0)
			rc = buf_append_json_str(out, s->addr->name);
		if (rc == 0)
			rc = buf_appendf(
			        out,
			        ",\"healthy\":%s,\"sessions\":%llu,\"spares\":%lld,\"connecting\":%"
			        "lld,"
			        "\"connects\":%llu,\"connect_failures\":%llu,\"handed_out\":%llu,"
			        "\"retired\":%llu,\"tls_resumed\":%llu,\"failures\":%llu,"
			        "\"retry_in_ms\":%llu,\"checks\":%llu,\"checking\":%s,",
			        h.healthy ? "true" : "false", (unsigned long long)h.sessions,
			        spares, connecting, connects, connect_failures, handed_out, retired,
			        resumed, (unsigned long long)h.failures,
			        (unsigned long long)(h.retry_at_ms > now ? h.retry_at_ms - now : 0),
			        (unsigned long long)h.checks, checking ? "true" : "false");
		/* The last health check: how long ago it completed and whether it
		 * passed; null before the first. */
		if (rc == 0 && h.last_check_ms)
			rc = buf_appendf(out, "\"last_check\":{\"ms_ago\":%llu,\"ok\":%s},",
			                 (unsigned long long)(now - h.last_check_ms),
			                 h.last_check_ok ? "true" : "false");
		else if (rc == 0)
			rc = buf_appendf(out, "\"last_check\":null,");
		if (rc == 0)
			rc = buf_append(out, "\"last_error\":", 13);
		if (rc == 0)
			rc = buf_append_json_str(out, h.last_error);
		if (rc == 0)
			rc = buf_append(out, "}", 1);
	}
	return rc ? rc : buf_append(out, "]", 1);
}
