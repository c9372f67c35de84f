/* Client sessions: greeting with the upstream's salt, TLS upgrade, relayed
 * login, then command relay with a response tracker that keeps the session's
 * transaction state. Every state change goes through set_state(), which
 * keeps the per-state lists whose lengths /metrics shows. */
#include "session/session.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "core/clock.h"
#include "core/list.h"
#include "core/metrics.h"
#include "core/log.h"
#include "proto/handshake.h"
#include "proto/mysql.h"
#include "proto/packet.h"
#include "proto/command.h"
#include "proto/packets.h"
#include "session/sess_cache.h"

/* Capabilities vecgate can relay: no compression (it would have to be
 * implemented end to end), no query attributes or optional metadata (they
 * change packet layouts the tracker reads). */
#define RELAYABLE_CAPS                                                                             \
	(~(PROTO_CLIENT_COMPRESS | PROTO_CLIENT_ZSTD_COMPRESSION_ALGORITHM |                       \
	   PROTO_CLIENT_QUERY_ATTRIBUTES | PROTO_CLIENT_OPTIONAL_RESULTSET_METADATA |              \
	   PROTO_CLIENT_SSL | PROTO_CLIENT_MULTI_FACTOR_AUTHENTICATION |                           \
	   PROTO_CLIENT_CAPABILITY_EXTENSION | PROTO_CLIENT_SSL_VERIFY_SERVER_CERT |               \
	   PROTO_CLIENT_REMEMBER_OPTIONS))

/* Login packets are small; anything larger is not a login. */
#define AUTH_PACKET_MAX (64u << 10)

static struct {
	bool ready;
	struct metric *state[SESS_NSTATES];
	struct metric *accepted, *rejected;
	struct metric *login_ok, *login_denied, *login_failed;
	struct metric *tls_ok, *tls_failed;
	struct metric *command[256];
	struct metric *latency, *cache_latency;
	struct metric *bytes_client_in, *bytes_client_out;
	struct metric *upstream_lost, *protocol_errors;
} m;

static const char *const state_names[SESS_NSTATES] = {
        "queued", "wait_upstream", "greeted",     "client_tls", "auth",    "idle",
        "query",  "infile",        "change_user", "cache",      "closing",
};

const char *session_state_name(enum session_state s)
{
	return state_names[s];
}

static void metrics_setup(void)
{
	if (m.ready)
		return;
	m.ready = true;
	struct metrics_family *f = metrics_family(METRICS_GAUGE, "vecgate_client_sessions",
	                                          "Client sessions by state.", "state", NULL);
	for (int i = 0; i < SESS_NSTATES; i++)
		m.state[i] = metrics_series(f, state_names[i], NULL);
	f = metrics_family(METRICS_COUNTER, "vecgate_client_connections_total",
	                   "Client connections accepted or rejected at the door.", "result", NULL);
	m.accepted = metrics_series(f, "accepted", NULL);
	m.rejected = metrics_series(f, "rejected", NULL);
	f = metrics_family(METRICS_COUNTER, "vecgate_client_logins_total",
	                   "Client logins relayed to TiDB, by outcome.", "result", NULL);
	m.login_ok = metrics_series(f, "ok", NULL);
	m.login_denied = metrics_series(f, "denied", NULL);
	m.login_failed = metrics_series(f, "failed", NULL);
	f = metrics_family(METRICS_COUNTER, "vecgate_tls_handshakes_total",
	                   "TLS handshakes by side and outcome.", "side", "result");
	m.tls_ok = metrics_series(f, "client", "ok");
	m.tls_failed = metrics_series(f, "client", "failed");
	f = metrics_family(METRICS_COUNTER, "vecgate_commands_total",
	                   "Commands received from clients, by command.", "command", NULL);
	for (int i = 0; i < 256; i++) {
		const char *name = proto_command_name((uint8_t)i);
		/* One series per name: unknown bytes share "unknown". */
		int first = i;
		for (int j = 0; j < i; j++)
			if (strcmp(proto_command_name((uint8_t)j), name) == 0) {
				first = j;
				break;
			}
		m.command[i] = first == i ? metrics_series(f, name, NULL) : m.command[first];
	}
	m.latency = metrics_histogram(
	        "vecgate_passthrough_seconds",
	        "Time from relaying a command to TiDB to the end of its response.");
	m.cache_latency =
	        metrics_histogram("vecgate_cache_hit_seconds",
	                          "Time from a kNN command's arrival to the end of vecgate's "
	                          "own answer.");
	f = metrics_family(METRICS_COUNTER, "vecgate_client_bytes_total",
	                   "Bytes received from and sent to clients.", "direction", NULL);
	m.bytes_client_in = metrics_series(f, "in", NULL);
	m.bytes_client_out = metrics_series(f, "out", NULL);
	f = metrics_family(METRICS_COUNTER, "vecgate_session_errors_total",
	                   "Sessions ended by an upstream failure or a protocol error.", "kind",
	                   NULL);
	m.upstream_lost = metrics_series(f, "upstream_lost", NULL);
	m.protocol_errors = metrics_series(f, "protocol", NULL);
}

int proxy_shared_init(struct proxy_shared *sh)
{
	memset(sh, 0, sizeof(*sh));
	atomic_init(&sh->sessions, 0);
	return -pthread_mutex_init(&sh->mu, NULL);
}

void proxy_shared_free(struct proxy_shared *sh)
{
	pthread_mutex_destroy(&sh->mu);
	free(sh->addrs);
	sh->addrs = NULL;
}

static void admit_posted(struct net_post *p);

int proxy_init(struct proxy *px, uv_loop_t *loop, struct proxy_shared *shared, struct pool *pool,
               SSL_CTX *client_tls, const struct proxy_limits *lim)
{
	memset(px, 0, sizeof(*px));
	px->loop = loop;
	px->shared = shared;
	px->pool = pool;
	px->client_tls = client_tls;
	px->lim = *lim;
	px->id_step = 1;
	px->admit_post.fn = admit_posted;
	for (int i = 0; i < SESS_NSTATES; i++) {
		list_init(&px->by_state[i]);
		atomic_init(&px->n_by_state[i], 0);
	}
	atomic_init(&px->n_sessions, 0);
	metrics_setup();
	pthread_mutex_lock(&shared->mu);
	bool room = shared->nproxies < sizeof(shared->proxies) / sizeof(shared->proxies[0]);
	if (room)
		shared->proxies[shared->nproxies++] = px;
	pthread_mutex_unlock(&shared->mu);
	return room ? 0 : -ENOSPC;
}

/* ---- login slots, over every worker's proxy ---- */

static struct slot_addr *slot_addr_find(struct proxy_shared *sh, uint64_t addr)
{
	for (size_t i = 0; i < sh->naddrs; i++)
		if (sh->addrs[i].addr == addr)
			return &sh->addrs[i];
	return NULL;
}

static int slots_of(struct proxy_shared *sh, uint64_t addr)
{
	const struct slot_addr *a = slot_addr_find(sh, addr);
	return a ? a->n : 0;
}

/* Under sh->mu. False when out of memory (the session is not admitted now). */
static bool slot_take(struct proxy_shared *sh, uint64_t addr)
{
	struct slot_addr *a = slot_addr_find(sh, addr);
	if (!a) {
		if (sh->naddrs == sh->addrs_cap) {
			size_t cap = sh->addrs_cap ? sh->addrs_cap * 2 : 16;
			struct slot_addr *v = realloc(sh->addrs, cap * sizeof(*v));
			if (!v)
				return false;
			sh->addrs = v;
			sh->addrs_cap = cap;
		}
		a = &sh->addrs[sh->naddrs++];
		*a = (struct slot_addr){.addr = addr};
	}
	a->n++;
	sh->pending++;
	return true;
}

static void slot_release(struct proxy_shared *sh, uint64_t addr)
{
	struct slot_addr *a = slot_addr_find(sh, addr);
	if (a && --a->n == 0)
		*a = sh->addrs[--sh->naddrs];
	sh->pending--;
}

/* ---- state ---- */

/* The per-state lists and their counts (what /metrics and /status show).
 * Oldest first: the queue of sessions waiting for a login slot is FIFO. */
static void state_list_remove(struct session *s)
{
	struct proxy *px = s->px;
	list_remove(&s->link);
	atomic_fetch_sub_explicit(&px->n_by_state[s->state], 1, memory_order_relaxed);
	metrics_gauge_add(m.state[s->state], -1);
}

static void state_list_add(struct session *s, enum session_state st)
{
	struct proxy *px = s->px;
	s->state = st;
	list_push_back(&px->by_state[st], &s->link);
	atomic_fetch_add_explicit(&px->n_by_state[st], 1, memory_order_relaxed);
	metrics_gauge_add(m.state[st], 1);
}

/* The oldest session in state st, or NULL. */
static struct session *first_in(const struct proxy *px, enum session_state st)
{
	return list_entry(list_first(&px->by_state[st]), struct session, link);
}

#define B(st) (1u << (st))
/* The states each state may go to (besides CLOSING, which any may). */
static const unsigned legal_next[SESS_NSTATES] = {
        [SESS_QUEUED] = B(SESS_WAIT_UPSTREAM),
        [SESS_WAIT_UPSTREAM] = B(SESS_GREETED),
        [SESS_GREETED] = B(SESS_CLIENT_TLS) | B(SESS_AUTH),
        [SESS_CLIENT_TLS] = B(SESS_GREETED),
        [SESS_AUTH] = B(SESS_IDLE),
        [SESS_IDLE] = B(SESS_QUERY) | B(SESS_CACHE) | B(SESS_CHANGE_USER),
        [SESS_QUERY] = B(SESS_IDLE) | B(SESS_INFILE),
        [SESS_INFILE] = B(SESS_QUERY),
        [SESS_CHANGE_USER] = B(SESS_IDLE),
        [SESS_CACHE] = B(SESS_IDLE) | B(SESS_QUERY),
        [SESS_CLOSING] = 0,
};
#undef B

/* A login in progress holds a TiDB connection: from waiting for one (the
 * greeting carries the salt the client must answer) to the end of its
 * auth exchange. */
static bool holds_login_slot(enum session_state st)
{
	return st >= SESS_WAIT_UPSTREAM && st <= SESS_AUTH;
}

static void admit_queued(struct proxy *px);
static void slot_freed(struct session *s);

/* The client's address without its port ("ip:port", "[v6]:port"), hashed. */
static uint64_t addr_key(const char *peer)
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
	return XXH3_64bits(peer, n);
}

static void set_state(struct session *s, enum session_state st)
{
	/* Closing is final; nothing leaves it. */
	if (s->state == st || s->state == SESS_CLOSING)
		return;
	if (st != SESS_CLOSING && !(legal_next[s->state] & (1u << st))) {
		/* A bug: debug builds stop here, release builds say so. */
		log_error("session %llu: illegal state change %s -> %s", (unsigned long long)s->id,
		          state_names[s->state], state_names[st]);
		assert(!"illegal session state change");
	}
	bool freed = holds_login_slot(s->state) && !holds_login_slot(st);
	state_list_remove(s);
	state_list_add(s, st);
	if (freed)
		slot_freed(s);
}

static void session_close(struct session *s, const char *why);

static void maybe_free(struct session *s)
{
	if (s->client || s->timer_open)
		return;
	struct proxy *px = s->px;
	state_list_remove(s);
	atomic_fetch_sub(&px->n_sessions, 1);
	atomic_fetch_sub(&px->shared->sessions, 1);
	sess_cache_free(s->kc);
	free(s);
	if (px->draining && atomic_load(&px->n_sessions) == 0 && px->on_drained)
		px->on_drained(px);
}

static void timer_closed(struct net_timer *t)
{
	struct session *s = container_of(t, struct session, timer);
	s->timer_open = false;
	maybe_free(s);
}

/* Sends an ERR packet to the client and closes the session. */
static void fail_client(struct session *s, uint8_t seq, uint16_t code, const char *sqlstate,
                        const char *msg)
{
	struct buf b;
	buf_init(&b);
	uint32_t caps = s->caps ? s->caps : PROTO_CLIENT_PROTOCOL_41;
	if (s->client && proto_write_err(&b, &seq, caps, code, sqlstate, "%s", msg) == 0 &&
	    net_write(s->client, b.data, b.len) == 0)
		metrics_inc(m.bytes_client_out, b.len);
	buf_free(&b);
	session_close(s, msg);
}

static void session_close(struct session *s, const char *why)
{
	if (s->state == SESS_CLOSING)
		return;
	log_debug("session %llu (%s): closing in state %s: %s", (unsigned long long)s->id,
	          s->client ? s->client->peer : "-", state_names[s->state], why);
	if (s->state == SESS_WAIT_UPSTREAM)
		pool_cancel(s->px->pool, &s->waiter);
	set_state(s, SESS_CLOSING);
	if (s->up) {
		/* Tell TiDB the session is over rather than leave it guessing. */
		if (s->up->conn && s->up->conn->tls != NET_TLS_HANDSHAKE) {
			static const uint8_t quit[] = {1, 0, 0, 0, PROTO_COM_QUIT};
			if (net_write(s->up->conn, quit, sizeof(quit)) < 0)
				log_debug("session %llu: COM_QUIT not sent",
				          (unsigned long long)s->id);
		}
		upstream_close(s->up);
		s->up = NULL;
	}
	net_timer_stop(&s->timer);
	net_timer_close(&s->timer, timer_closed);
	if (s->client)
		net_close(s->client);
	else
		maybe_free(s);
}

static void timeout_cb(struct net_timer *t)
{
	struct session *s = t->data;
	if (s->state == SESS_IDLE)
		session_close(s, "idle timeout");
	else if (s->state < SESS_IDLE)
		session_close(s, "handshake timeout");
}

static void process_client(struct session *s);

static void arm_idle_timer(struct session *s);

/* The one end of every command: relayed (TiDB's response is complete) or
 * answered from memory (at once or after a scan). The session takes the
 * next command, or closes when draining outside a transaction. False when
 * it closed. */
static bool command_finished(struct session *s)
{
	if (s->px->draining && !(s->status & PROTO_STATUS_IN_TRANS)) {
		session_close(s, "draining");
		return false;
	}
	set_state(s, SESS_IDLE);
	arm_idle_timer(s);
	return true;
}

static void arm_idle_timer(struct session *s)
{
	if (s->px->lim.idle_timeout_ms)
		net_timer_start(&s->timer, s->px->lim.idle_timeout_ms);
	else
		net_timer_stop(&s->timer);
}

/* ---- writing ---- */

static bool to_client(struct session *s, const void *p, size_t n)
{
	if (net_write(s->client, p, n) < 0) {
		session_close(s, "out of memory");
		return false;
	}
	metrics_inc(m.bytes_client_out, n);
	return true;
}

static bool to_upstream(struct session *s, const void *p, size_t n)
{
	if (net_write(s->up->conn, p, n) < 0) {
		session_close(s, "out of memory");
		return false;
	}
	return true;
}

/* Relays one packet, rewriting its sequence id by delta. */
static bool relay_packet(struct session *s, bool to_up, const uint8_t *wire, size_t len, int delta)
{
	uint8_t hdr[PROTO_HDR];
	memcpy(hdr, wire, PROTO_HDR);
	hdr[3] = (uint8_t)(hdr[3] + delta);
	bool (*send)(struct session *, const void *, size_t) = to_up ? to_upstream : to_client;
	return send(s, hdr, PROTO_HDR) && send(s, wire + PROTO_HDR, len - PROTO_HDR);
}

/* Pipelined bytes wait in c->in while the session cannot take them (a
 * statement runs, the login waits for a slot or a greeting): past
 * write_buffer_limit, reading stops until the session consumes them, or a
 * client could make vecgate buffer without bound. A packet still arriving
 * (want_more) is not held back: the scan already bounds it by
 * max_packet_size, or the login packet limit. Upstream back-pressure
 * (paused_client) pauses the same connection: it reads again only when
 * neither holds. */
static void limit_client_input(struct session *s, bool want_more)
{
	struct net_conn *c = s->client;
	if (!c)
		return;
	bool over = !want_more && buf_unread(&c->in) > s->px->lim.write_buffer_limit;
	if (over == s->paused_input)
		return;
	s->paused_input = over;
	if (over)
		net_pause(c);
	else if (!s->paused_client)
		net_resume(c); /* may deliver decrypted bytes at once: the caller's last step */
}

static void check_backpressure(struct session *s)
{
	if (!s->up || !s->client)
		return;
	/* A reader is paused while its peer has this much unsent. */
	size_t high = s->px->lim.write_buffer_limit;
	size_t client_pending = s->client->queued + buf_unread(&s->client->out);
	size_t up_pending = s->up->conn->queued + buf_unread(&s->up->conn->out);
	if (client_pending > high && !s->paused_up) {
		s->paused_up = true;
		net_pause(s->up->conn);
		net_notify_drained(s->client);
	}
	if (up_pending > high && !s->paused_client) {
		s->paused_client = true;
		net_pause(s->client);
		net_notify_drained(s->up->conn);
	}
}

/* ---- login ---- */

static void send_greeting(struct session *s)
{
	struct proxy *px = s->px;
	struct proto_greeting g = s->up->greeting;
	g.caps &= RELAYABLE_CAPS;
	if (px->client_tls)
		g.caps |= PROTO_CLIENT_SSL;
	/* MariaDB's extended capabilities (progress reports, cached metadata)
	 * change the packet layouts: none are offered. */
	g.mariadb_caps = 0;
	s->greet_caps = g.caps;
	struct buf b;
	buf_init(&b);
	uint8_t seq = 0;
	int rc = proto_write_greeting(&b, &seq, &g);
	if (rc == 0)
		to_client(s, b.data, b.len);
	buf_free(&b);
	if (rc < 0) {
		session_close(s, "could not relay the greeting");
		return;
	}
	set_state(s, SESS_GREETED);
}

static void got_upstream_cb(struct pool_waiter *w, struct upstream *up, const char *err);
static const struct sess_cache_ops cache_ops;

static void client_event_cb(struct net_conn *c, enum net_event ev, int status);
static void up_event_cb(struct net_conn *c, enum net_event ev, int status);
static void process_client(struct session *s);
static void process_upstream(struct session *s);

static void got_upstream_cb(struct pool_waiter *w, struct upstream *up, const char *err)
{
	struct session *s = container_of(w, struct session, waiter);
	if (!up) {
		metrics_inc(m.login_failed, 1);
		char msg[512];
		snprintf(msg, sizeof(msg), "vecgate: cannot reach TiDB: %s", err);
		fail_client(s, 0, 1105, "HY000", msg);
		return;
	}
	s->up = up;
	up->conn->cb = up_event_cb;
	up->conn->data = s;
	send_greeting(s);
	/* Bytes the client sent before its greeting were kept, and may have
	 * paused its reading: they are read as login packets now. */
	if (s->state == SESS_GREETED && s->client && buf_unread(&s->client->in))
		process_client(s);
}

/* The client's first packet: an SSLRequest or its handshake response. */
static bool on_client_login_packet(struct session *s, const uint8_t *wire, size_t wire_len,
                                   const struct proto_logical *lp)
{
	struct proxy *px = s->px;
	const uint8_t *payload = wire + PROTO_HDR;
	uint8_t want_seq = s->client_tls ? 2 : 1;
	if (lp->first_seq != want_seq) {
		fail_client(s, (uint8_t)(lp->last_seq + 1), 1156, "08S01",
		            "Got packets out of order");
		return false;
	}
	struct proto_hs_response r;
	ssize_t rc = proto_parse_hs_response(payload, lp->payload_len, &r);
	if (rc < 0) {
		fail_client(s, (uint8_t)(lp->last_seq + 1), 1043, "08S01", "Bad handshake");
		return false;
	}
	if (r.ssl_request) {
		if (!px->client_tls || s->client_tls) {
			fail_client(s, (uint8_t)(lp->last_seq + 1), 1043, "08S01", "Bad handshake");
			return false;
		}
		buf_consume(&s->client->in, wire_len);
		if (net_start_tls_server(s->client, px->client_tls) < 0) {
			session_close(s, "cannot start TLS");
			return false;
		}
		set_state(s, SESS_CLIENT_TLS);
		return false;
	}
	/* Bit 0 (CLIENT_MYSQL / LONG_PASSWORD) describes the client: MariaDB
	 * servers clear it in their greeting and read it to tell MySQL clients
	 * from MariaDB ones, so it passes through as the client set it. */
	s->caps = r.caps & (s->greet_caps | PROTO_CLIENT_MYSQL);
	if (px->lim.require_tls && !s->client_tls) {
		metrics_inc(m.login_denied, 1);
		fail_client(s, (uint8_t)(lp->last_seq + 1), 3159, "HY000",
		            "Connections using insecure transport are prohibited while "
		            "--require_secure_transport=ON.");
		return false;
	}
	snprintf(s->user, sizeof(s->user), "%.*s", (int)r.user_len, r.user);
	s->charset = r.charset;
	s->login_db_len = r.has_db && r.db_len < sizeof(s->login_db) ? r.db_len : 0;
	memcpy(s->login_db, r.has_db ? r.db : "", s->login_db_len);
	log_debug("session %llu: login of '%s' (db '%.*s', caps 0x%x, plugin '%.*s')",
	          (unsigned long long)s->id, s->user, (int)r.db_len, r.has_db ? r.db : "", r.caps,
	          (int)r.plugin_len, r.has_plugin ? r.plugin : "");

	/* TiDB sees the flags the client chose, with TLS as vecgate's own link
	 * to TiDB has it, and nothing TiDB did not offer. */
	struct upstream *up = s->up;
	r.caps = s->caps & (up->greeting.caps | PROTO_CLIENT_MYSQL);
	if (up->conn->tls == NET_TLS_ON || up->tls_late)
		r.caps |= PROTO_CLIENT_SSL;
	else
		r.caps &= ~PROTO_CLIENT_SSL;
	r.mariadb_caps = 0;
	s->login_seq = lp->last_seq;
	s->sha2 = r.has_plugin && r.plugin_len == 21 &&
	          !memcmp(r.plugin, "caching_sha2_password", 21);
	s->auth_salt_len =
	        (uint8_t)(up->greeting.salt_len < sizeof(s->auth_salt) ? up->greeting.salt_len
	                                                               : sizeof(s->auth_salt));
	memcpy(s->auth_salt, up->greeting.salt, s->auth_salt_len);
	if (up->tls_late && upstream_start_tls(up, r.caps, r.max_packet, r.charset) < 0) {
		fail_client(s, (uint8_t)(lp->last_seq + 1), 1105, "HY000",
		            "vecgate: cannot start TLS to TiDB");
		return false;
	}
	/* Written now, sent once the upstream TLS handshake (if any) is over. */
	s->seq_delta = (int8_t)(up->next_seq - lp->first_seq);
	struct buf b;
	buf_init(&b);
	uint8_t seq = up->next_seq;
	int wrc = proto_write_hs_response(&b, &seq, &r);
	if (wrc == 0)
		wrc = net_write(up->conn, b.data, b.len);
	buf_free(&b);
	buf_consume(&s->client->in, wire_len);
	if (wrc < 0) {
		fail_client(s, (uint8_t)(lp->last_seq + 1), 1043, "08S01", "Bad handshake");
		return false;
	}
	set_state(s, SESS_AUTH);
	return true;
}

/* Follows the auth plugin through AuthSwitchRequests (with its new salt) and
 * notes when TiDB asks a plaintext client for its caching_sha2 password. */
static void note_auth_step(struct session *s, const uint8_t *p, size_t n)
{
	if (n > 1 && p[0] == PROTO_AUTH_SWITCH) {
		struct proto_auth_switch sw;
		if (proto_parse_auth_switch(p, n, &sw) < 0)
			return;
		s->sha2 = sw.plugin_len == 21 && !memcmp(sw.plugin, "caching_sha2_password", 21);
		size_t len = sw.data_len;
		if (len > 0 && sw.data[len - 1] == 0)
			len--; /* the salt's terminating NUL */
		s->auth_salt_len =
		        (uint8_t)(len < sizeof(s->auth_salt) ? len : sizeof(s->auth_salt));
		memcpy(s->auth_salt, sw.data, s->auth_salt_len);
	} else if (s->sha2 && !s->client_tls && s->px->rsa &&
	           proto_sha2_message(p, n) == PROTO_SHA2_MSG_FULL_AUTH) {
		s->sha2_full = true;
	}
}

/* A client packet during login or COM_CHANGE_USER. Relayed, except the
 * caching_sha2 exchange of a plaintext client: vecgate answers its public
 * key request itself and passes the decrypted password on to TiDB, which
 * receives it over TLS as from a TLS client. */
static bool on_client_auth_packet(struct session *s, const uint8_t *wire, size_t wire_len,
                                  const struct proto_logical *lp)
{
	const uint8_t *payload = wire + PROTO_HDR;
	bool ok = true;
	if (!s->sha2_full) {
		ok = relay_packet(s, true, wire, wire_len, s->seq_delta);
	} else if (lp->payload_len == 1 && payload[0] == PROTO_SHA2_REQUEST_PUBLIC_KEY) {
		size_t pem_len;
		const char *pem = net_rsa_public_pem(s->px->rsa, &pem_len);
		struct buf b;
		buf_init(&b);
		uint8_t seq = (uint8_t)(lp->last_seq + 1);
		ok = proto_write_auth_more(&b, &seq, pem, pem_len) == 0 &&
		     to_client(s, b.data, b.len);
		buf_free(&b);
		/* Two packets TiDB never sees. */
		s->seq_delta = (int8_t)(s->seq_delta - 2);
	} else {
		s->sha2_full = false;
		struct buf pw, b;
		buf_init(&pw);
		buf_init(&b);
		if (net_rsa_decrypt_password(s->px->rsa, payload, lp->payload_len, s->auth_salt,
		                             s->auth_salt_len, &pw) == 0) {
			uint8_t seq = (uint8_t)(lp->first_seq + s->seq_delta);
			ok = proto_write_packet(&b, &seq, pw.data, pw.len) == 0 &&
			     to_upstream(s, b.data, b.len);
		} else {
			/* Not ours to read: TiDB refuses it as it would directly. */
			ok = relay_packet(s, true, wire, wire_len, s->seq_delta);
		}
		/* The password must not linger in freed memory. */
		if (pw.data)
			explicit_bzero(pw.data, pw.cap);
		buf_free(&pw);
		if (b.data)
			explicit_bzero(b.data, b.cap);
		buf_free(&b);
	}
	if (ok)
		buf_consume(&s->client->in, wire_len);
	return ok;
}

/* A server packet during login or COM_CHANGE_USER: relay it, and see
 * whether it ends the exchange. */
static void on_upstream_auth_packet(struct session *s, const uint8_t *wire, size_t wire_len,
                                    const struct proto_logical *lp)
{
	const uint8_t *payload = wire + PROTO_HDR;
	note_auth_step(s, payload, lp->payload_len);
	if (!relay_packet(s, false, wire, wire_len, -s->seq_delta))
		return;
	buf_consume(&s->up->conn->in, wire_len);
	uint8_t h = lp->payload_len ? payload[0] : 0xFF;
	bool login = s->state == SESS_AUTH;
	if (h == PROTO_OK) {
		struct proto_ok ok;
		uint32_t caps = s->caps | PROTO_CLIENT_PROTOCOL_41;
		if (proto_parse_ok(payload, lp->payload_len, caps, &ok) >= 0)
			s->status = ok.status;
		proto_resp_init(&s->resp, s->status);
		if (s->kc && login)
			sess_cache_login(s->kc, s->user, s->login_db, s->login_db_len, s->charset,
			                 s->caps);
		else if (s->kc)
			sess_cache_changed_user(s->kc, s->user, s->login_db, s->login_db_len);
		if (login) {
			metrics_inc(m.login_ok, 1);
			log_debug("session %llu: %s logged in", (unsigned long long)s->id, s->user);
		}
		set_state(s, SESS_IDLE);
		arm_idle_timer(s);
	} else if (h == PROTO_ERR) {
		if (login) {
			metrics_inc(m.login_denied, 1);
			/* TiDB closes the connection after a failed login. */
			session_close(s, "login refused by TiDB");
		} else {
			if (s->kc)
				sess_cache_change_user_failed(s->kc);
			set_state(s, SESS_IDLE);
			arm_idle_timer(s);
		}
	}
}

/* ---- commands ---- */

/* COM_CHANGE_USER names the new user and database (kept until the server
 * accepts them) and the auth plugin (it may switch later); a payload that
 * cannot be read names nobody. */
static void note_change_user(struct session *s, const uint8_t *p, size_t n)
{
	struct proto_change_user cu;
	s->sha2 = false;
	if (n == 0 || proto_parse_change_user(p, n, s->caps, &cu) < 0) {
		s->user[0] = 0;
		s->login_db_len = 0;
		return;
	}
	s->sha2 = cu.has_plugin && cu.plugin_len == 21 &&
	          !memcmp(cu.plugin, "caching_sha2_password", 21);
	snprintf(s->user, sizeof(s->user), "%.*s", (int)cu.user_len, cu.user);
	s->login_db_len = cu.has_db && cu.db_len < sizeof(s->login_db) ? cu.db_len : 0;
	if (s->login_db_len)
		memcpy(s->login_db, cu.db, s->login_db_len);
}

/* One complete command from the client, in SESS_IDLE. Returns false when
 * the session stops taking commands for now. */
static bool on_client_command(struct session *s, const uint8_t *wire, size_t wire_len,
                              const struct proto_logical *lp)
{
	const uint8_t *payload = wire + PROTO_HDR;
	if (lp->first_seq != 0) {
		fail_client(s, (uint8_t)(lp->last_seq + 1), 1156, "08S01",
		            "Got packets out of order");
		return false;
	}
	if (lp->payload_len == 0) {
		fail_client(s, 1, 1047, "08S01", "Unknown command");
		return false;
	}
	uint8_t cmd = payload[0];
	metrics_inc(m.command[cmd], 1);
	if (cmd == PROTO_COM_QUIT) {
		buf_consume(&s->client->in, wire_len);
		session_close(s, "client quit");
		return false;
	}
	if (s->kc && cmd != PROTO_COM_CHANGE_USER && lp->chunks == 1) {
		s->cmd = cmd;
		s->cmd_start_ns = core_now_ns();
		struct buf out;
		buf_init(&out);
		uint16_t status;
		enum sess_cache_verdict v = sess_cache_command(s->kc, payload, lp->payload_len,
		                                               s->status, &out, &status);
		if (v == SESS_CACHE_ANSWERED) {
			buf_consume(&s->client->in, wire_len);
			bool ok = to_client(s, out.data, out.len);
			buf_free(&out);
			if (!ok)
				return false;
			s->status = status;
			metrics_observe_ns(m.cache_latency, core_now_ns() - s->cmd_start_ns);
			return command_finished(s);
		}
		buf_free(&out);
		if (v == SESS_CACHE_PENDING) {
			buf_consume(&s->client->in, wire_len);
			net_timer_stop(&s->timer);
			set_state(s, SESS_CACHE);
			return false;
		}
	}
	if (!to_upstream(s, wire, wire_len))
		return false;
	if (cmd == PROTO_COM_CHANGE_USER) {
		/* Sequence ids restart at 0 on both links; the plugin is the one
		 * the client names (it may switch), and the salt stays the
		 * greeting's, which TiDB keeps for the connection. */
		s->seq_delta = 0;
		s->sha2_full = false;
		note_change_user(s, payload, lp->chunks == 1 ? lp->payload_len : 0);
		buf_consume(&s->client->in, wire_len);
		net_timer_stop(&s->timer);
		set_state(s, SESS_CHANGE_USER);
		return false;
	}
	if (!proto_resp_expects_reply(cmd)) {
		buf_consume(&s->client->in, wire_len);
		return true;
	}
	s->cmd = cmd;
	s->cmd_start_ns = core_now_ns();
	proto_resp_start(&s->resp, cmd, s->caps, payload,
	                 lp->chunks == 1 ? lp->payload_len : PROTO_MAX_CHUNK);
	buf_consume(&s->client->in, wire_len);
	net_timer_stop(&s->timer);
	set_state(s, SESS_QUERY);
	return false;
}

/* LOCAL INFILE data from the client: physical packets relayed as they come
 * until the empty packet that ends the file. */
static void relay_infile(struct session *s)
{
	struct buf *in = &s->client->in;
	while (s->state == SESS_INFILE) {
		struct proto_pkt pk;
		size_t used = proto_read_packet(buf_head(in), buf_unread(in), &pk);
		if (used == 0)
			return;
		if (!to_upstream(s, buf_head(in), used))
			return;
		buf_consume(in, used);
		bool last = pk.len == 0 && !s->client_cont;
		s->client_cont = pk.len == PROTO_MAX_CHUNK;
		if (last) {
			if (proto_resp_infile_done(&s->resp) < 0) {
				session_close(s, "LOCAL INFILE out of step");
				return;
			}
			set_state(s, SESS_QUERY);
			process_upstream(s);
		}
	}
}

static void process_client(struct session *s)
{
	struct net_conn *c = s->client;
	bool want_more = false; /* stopped inside a packet, not for the state */
	while (s->state != SESS_CLOSING) {
		if (s->state == SESS_INFILE) {
			relay_infile(s);
			want_more = s->state == SESS_INFILE;
			if (s->state == SESS_INFILE || s->state == SESS_CLOSING)
				break;
			continue;
		}
		if (s->state == SESS_QUEUED || s->state == SESS_WAIT_UPSTREAM ||
		    s->state == SESS_CLIENT_TLS || s->state == SESS_QUERY || s->state == SESS_CACHE)
			break; /* kept until the session can take it */
		size_t max = s->state == SESS_IDLE ? s->px->lim.max_packet : AUTH_PACKET_MAX;
		struct proto_logical lp;
		ssize_t n = proto_scan_logical(buf_head(&c->in), buf_unread(&c->in), max, &lp);
		if (n == 0) {
			want_more = true;
			break;
		}
		if (n == -EMSGSIZE) {
			fail_client(s, 1, 1153, "08S01",
			            "Got a packet bigger than 'max_allowed_packet' bytes");
			return;
		}
		if (n < 0) {
			metrics_inc(m.protocol_errors, 1);
			fail_client(s, 1, 1156, "08S01", "Got packets out of order");
			return;
		}
		bool go_on = false;
		switch (s->state) {
		case SESS_GREETED:
			go_on = on_client_login_packet(s, buf_head(&c->in), (size_t)n, &lp);
			break;
		case SESS_AUTH:
		case SESS_CHANGE_USER:
			go_on = on_client_auth_packet(s, buf_head(&c->in), (size_t)n, &lp);
			break;
		case SESS_IDLE:
			go_on = on_client_command(s, buf_head(&c->in), (size_t)n, &lp);
			break;
		default:
			break;
		}
		if (!go_on)
			break;
	}
	if (s->state != SESS_CLOSING) {
		check_backpressure(s);
		limit_client_input(s, want_more);
	}
}

/* The response to the command in flight: each physical packet is fed to
 * the tracker (the first of a >= 16 MiB chain only) and relayed as is. The
 * complete packets at hand go to the client in one write: a result set is
 * several packets, and one net_write per packet cost more than the copy. The
 * run stops at the packet that ends the response (or is impossible), so
 * that what follows it waits for the next command, and those bytes reach
 * the client before anything the state change makes the session send. */
static void relay_response(struct session *s)
{
	struct buf *in = &s->up->conn->in;
	while (s->state == SESS_QUERY) {
		const uint8_t *p = buf_head(in);
		size_t avail = buf_unread(in), used = 0;
		int r = PROTO_RESP_MORE;
		while (r == PROTO_RESP_MORE) {
			struct proto_pkt pk;
			size_t n = proto_read_packet(p + used, avail - used, &pk);
			if (n == 0)
				break;
			if (!s->up_cont) {
				r = proto_resp_feed(&s->resp, pk.payload, pk.len);
				if (s->kc)
					sess_cache_response_packet(s->kc, &s->resp, pk.payload,
					                           pk.len);
			}
			s->up_cont = pk.len == PROTO_MAX_CHUNK;
			used += n;
		}
		if (used == 0)
			break;
		if (!to_client(s, p, used))
			return;
		buf_consume(in, used);
		if (r < 0) {
			metrics_inc(m.protocol_errors, 1);
			log_warn("session %llu: unexpected packet from TiDB in the response to %s",
			         (unsigned long long)s->id, proto_command_name(s->cmd));
			session_close(s, "protocol error from upstream");
			return;
		}
		if (r == PROTO_RESP_INFILE) {
			set_state(s, SESS_INFILE);
			s->client_cont = false;
			process_client(s);
			return;
		}
		if (r == PROTO_RESP_DONE) {
			metrics_observe_ns(m.latency, core_now_ns() - s->cmd_start_ns);
			s->status = s->resp.status;
			if (s->kc)
				sess_cache_response_done(s->kc, &s->resp, s->status);
			if (command_finished(s))
				process_client(s);
		}
	}
}

static void process_upstream(struct session *s)
{
	struct buf *in = &s->up->conn->in;
	switch (s->state) {
	case SESS_QUERY:
		relay_response(s);
		break;
	case SESS_AUTH:
	case SESS_CHANGE_USER:
		while ((s->state == SESS_AUTH || s->state == SESS_CHANGE_USER) && s->up) {
			struct proto_logical lp;
			ssize_t n = proto_scan_logical(buf_head(in), buf_unread(in),
			                               AUTH_PACKET_MAX, &lp);
			if (n == 0)
				break;
			if (n < 0) {
				session_close(s, "malformed auth packet from upstream");
				return;
			}
			on_upstream_auth_packet(s, buf_head(in), (size_t)n, &lp);
		}
		if (s->state == SESS_IDLE)
			process_client(s);
		break;
	case SESS_IDLE:
		/* TiDB speaks unprompted only to say why it is about to close the
		 * connection; the client reads that with its next command. */
		to_client(s, buf_head(in), buf_unread(in));
		buf_reset(in);
		break;
	default:
		break; /* kept until the state can take it */
	}
	if (s->state != SESS_CLOSING)
		check_backpressure(s);
}

/* ---- events ---- */

static void client_event_cb(struct net_conn *c, enum net_event ev, int status)
{
	struct session *s = c->data;
	switch (ev) {
	case NET_EV_DATA:
		metrics_inc(m.bytes_client_in, c->bytes_in - s->counted_in);
		s->counted_in = c->bytes_in;
		process_client(s);
		break;
	case NET_EV_TLS_DONE:
		if (status < 0) {
			metrics_inc(m.tls_failed, 1);
			log_info("session %llu (%s): TLS handshake failed: %s",
			         (unsigned long long)s->id, c->peer, net_tls_error());
			session_close(s, "TLS handshake failed");
			return;
		}
		metrics_inc(m.tls_ok, 1);
		s->client_tls = true;
		set_state(s, SESS_GREETED);
		process_client(s);
		break;
	case NET_EV_EOF:
		session_close(s, "client closed the connection");
		break;
	case NET_EV_DRAINED:
		if (s->paused_up && s->up) {
			s->paused_up = false;
			net_resume(s->up->conn);
		}
		break;
	case NET_EV_CLOSED:
		metrics_inc(m.bytes_client_in, c->bytes_in - s->counted_in);
		s->client = NULL;
		if (s->state != SESS_CLOSING)
			session_close(s, "client connection closed");
		else
			maybe_free(s);
		break;
	case NET_EV_CONNECTED:
		break;
	}
}

static void up_event_cb(struct net_conn *c, enum net_event ev, int status)
{
	struct session *s = c->data;
	switch (ev) {
	case NET_EV_DATA:
		process_upstream(s);
		break;
	case NET_EV_EOF:
		/* Whatever TiDB said last (an ERR) goes to the client first. The
		 * statement in flight, if any, is not re-sent: it may have run. */
		if (buf_unread(&c->in) && s->client)
			to_client(s, buf_head(&c->in), buf_unread(&c->in));
		if (s->state != SESS_CLOSING) {
			metrics_inc(m.upstream_lost, 1);
			log_info("session %llu (%s): TiDB closed the connection in state %s",
			         (unsigned long long)s->id, s->client ? s->client->peer : "-",
			         state_names[s->state]);
		}
		if (s->state == SESS_GREETED && !buf_unread(&c->in)) {
			/* The client has the greeting and owes its login: its reply
			 * would come next (sequence 2, or 3 after TLS). A server
			 * that gave up waiting for the login (MySQL's
			 * connect_timeout) sends nothing: say so rather than close
			 * without a word. */
			fail_client(s, s->client_tls ? 3 : 2, 1043, "08S01",
			            "TiDB closed the connection before the login finished");
			break;
		}
		session_close(s, "upstream closed the connection");
		break;
	case NET_EV_DRAINED:
		if (s->paused_client && s->client) {
			s->paused_client = false;
			if (!s->paused_input)
				net_resume(s->client);
		}
		break;
	case NET_EV_TLS_DONE:
		/* Only a tls_late upstream starts TLS while bound: during login. */
		if (status == 0)
			upstream_tls_done(s->up);
		if (status < 0) {
			char msg[400];
			snprintf(msg, sizeof(msg), "vecgate: TLS handshake with TiDB failed: %s",
			         net_tls_error());
			log_warn("session %llu: %s", (unsigned long long)s->id, msg);
			metrics_inc(m.login_failed, 1);
			fail_client(s, (uint8_t)(s->login_seq + 1), 1105, "HY000", msg);
		}
		break;
	case NET_EV_CLOSED:
	case NET_EV_CONNECTED:
		break;
	}
}

void session_accept(struct proxy *px, struct net_conn *client)
{
	/* max_client_conns holds over every worker: a place is taken first,
	 * and given back when the session cannot have it. */
	bool full = !px->draining &&
	            atomic_fetch_add(&px->shared->sessions, 1) >= px->lim.max_client_conns;
	if (full)
		atomic_fetch_sub(&px->shared->sessions, 1);
	if (px->draining || full) {
		metrics_inc(m.rejected, 1);
		struct buf b;
		buf_init(&b);
		uint8_t seq = 0;
		if (proto_write_err(&b, &seq, PROTO_CLIENT_PROTOCOL_41, 1040, "08004",
		                    "Too many connections") == 0 &&
		    net_write(client, b.data, b.len) < 0)
			log_debug("could not tell %s it was refused", client->peer);
		buf_free(&b);
		client->cb = NULL;
		net_close(client);
		return;
	}
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		atomic_fetch_sub(&px->shared->sessions, 1);
		net_close(client);
		return;
	}
	metrics_inc(m.accepted, 1);
	s->px = px;
	s->id = px->next_id += px->id_step;
	s->client = client;
	s->addr = addr_key(client->peer);
	net_keepalive(client, px->lim.keepalive_s);
	client->cb = client_event_cb;
	client->data = s;
	atomic_fetch_add(&px->n_sessions, 1);
	state_list_add(s, SESS_QUEUED);

	net_timer_init(px->loop, &s->timer, timeout_cb, s);
	s->timer_open = true;
	net_timer_start(&s->timer, px->lim.handshake_timeout_ms);
	if (px->cache)
		s->kc = sess_cache_new(px->cache, px->loop, &cache_ops, s);
	s->waiter.cb = got_upstream_cb;
	admit_queued(px);
	if (s->state == SESS_QUEUED)
		log_debug("session %llu (%s): waits for a login slot (max_pending_logins %d)",
		          (unsigned long long)s->id, client->peer, px->lim.max_pending_logins);
}

/* Queued sessions looked at for one free slot: bounds the work when the
 * queue's head is all from addresses at their limit. */
#define ADMIT_SCAN_MAX 1024

/* Every login in progress holds a TiDB connection, so clients that connect
 * and never finish their login would hold as many as TiDB allows. Beyond
 * max_pending_logins they wait in SESS_QUEUED, oldest first, holding none;
 * their handshake timeout runs meanwhile. One client address holds at most
 * max_pending_logins_per_address of the slots, so clients that connect and
 * stay silent from one place cannot keep everyone else from logging in:
 * the oldest queued session whose address is under its share goes next.
 * Both limits count the logins of every worker loop (px->shared). */
static void admit_queued(struct proxy *px)
{
	struct proxy_shared *sh = px->shared;
	while (!px->draining) {
		struct session *pick = NULL;
		size_t scanned = 0;
		pthread_mutex_lock(&sh->mu);
		if (sh->pending < px->lim.max_pending_logins) {
			struct list_node *pos, *tmp;
			list_for_each_safe(pos, tmp, &px->by_state[SESS_QUEUED])
			{
				struct session *s = container_of(pos, struct session, link);
				if (++scanned > ADMIT_SCAN_MAX)
					break;
				if (slots_of(sh, s->addr) <
				    px->lim.max_pending_logins_per_address) {
					pick = s;
					break;
				}
			}
			if (pick && !slot_take(sh, pick->addr))
				pick = NULL;
		}
		pthread_mutex_unlock(&sh->mu);
		if (!pick)
			break;
		set_state(pick, SESS_WAIT_UPSTREAM); /* its slot is taken above */
		pool_acquire(px->pool, &pick->waiter);
	}
}

static void admit_posted(struct net_post *p)
{
	admit_queued(container_of(p, struct proxy, admit_post));
}

/* s's login slot is free: the next queued session here takes it, and the
 * other loops with queued sessions look too. */
static void slot_freed(struct session *s)
{
	struct proxy *px = s->px;
	struct proxy_shared *sh = px->shared;
	pthread_mutex_lock(&sh->mu);
	slot_release(sh, s->addr);
	struct proxy *others[sizeof(sh->proxies) / sizeof(sh->proxies[0])];
	size_t n = 0;
	for (size_t i = 0; i < sh->nproxies; i++)
		if (sh->proxies[i] != px &&
		    atomic_load_explicit(&sh->proxies[i]->n_by_state[SESS_QUEUED],
		                         memory_order_relaxed) > 0)
			others[n++] = sh->proxies[i];
	pthread_mutex_unlock(&sh->mu);
	admit_queued(px);
	for (size_t i = 0; i < n; i++)
		if (net_loop_post(others[i]->loop, &others[i]->admit_post) < 0)
			log_debug("a worker loop is closed: its queued logins are gone with it");
}

void proxy_admit_queued(struct proxy *px)
{
	admit_queued(px);
}

void proxy_drain(struct proxy *px)
{
	px->draining = true;
	/* Idle sessions outside a transaction go now; the others after their
	 * response or their transaction. */
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &px->by_state[SESS_IDLE])
	{
		struct session *s = container_of(pos, struct session, link);
		if (!(s->status & PROTO_STATUS_IN_TRANS))
			session_close(s, "draining");
	}
	struct session *s;
	for (int st = SESS_QUEUED; st < SESS_IDLE; st++)
		while ((s = first_in(px, (enum session_state)st)))
			session_close(s, "draining");
	if (atomic_load(&px->n_sessions) == 0 && px->on_drained)
		px->on_drained(px);
}

void proxy_close_all(struct proxy *px)
{
	struct session *s;
	for (int st = 0; st < SESS_CLOSING; st++)
		while ((s = first_in(px, (enum session_state)st)))
			session_close(s, "shutting down");
}

int proxy_status_json(struct proxy *const *px, size_t n, struct buf *out)
{
	int rc = buf_append(out, "{", 1);
	for (int i = 0; i < SESS_NSTATES && rc == 0; i++) {
		int sum = 0;
		for (size_t k = 0; k < n; k++)
			sum += atomic_load_explicit(&px[k]->n_by_state[i], memory_order_relaxed);
		rc = buf_appendf(out, "%s\"%s\":%d", i ? "," : "", state_names[i], sum);
	}
	return rc ? rc : buf_append(out, "}", 1);
}

/* ---- answers from the cache ---- */

static void cache_answer_cb(void *owner, const uint8_t *bytes, size_t len, uint16_t status)
{
	struct session *s = owner;
	if (s->state != SESS_CACHE || !to_client(s, bytes, len))
		return;
	s->status = status;
	metrics_observe_ns(m.cache_latency, core_now_ns() - s->cmd_start_ns);
	if (command_finished(s))
		process_client(s);
}

static void cache_relay_cb(void *owner, const uint8_t *payload, size_t len)
{
	struct session *s = owner;
	if (s->state != SESS_CACHE || !s->up)
		return;
	struct buf b;
	buf_init(&b);
	uint8_t seq = 0;
	bool ok = proto_write_packet(&b, &seq, payload, len) == 0 && to_upstream(s, b.data, b.len);
	buf_free(&b);
	if (!ok)
		return;
	s->cmd = payload[0];
	proto_resp_start(&s->resp, s->cmd, s->caps, payload, len);
	set_state(s, SESS_QUERY);
	if (buf_unread(&s->up->conn->in))
		process_upstream(s);
}

static void cache_failed_cb(void *owner)
{
	session_close(owner, "out of memory answering from the cache");
}

static const struct sess_cache_ops cache_ops = {
        .answer = cache_answer_cb,
        .relay = cache_relay_cb,
        .failed = cache_failed_cb,
};
