/* The upstream description, the --check-config warnings about it, and the
 * health every link to TiDB shares (upstream.h). */
#include "core/upstream.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"

/* The first wait after a failure; it doubles up to retry_max_ms. */
#define BACKOFF_MIN_MS 200

static int failf(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int failf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool is_ip_literal(const char *s)
{
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* A host name a certificate can be checked against: labels of letters,
 * digits, '-' and '_' (used by internal names), 1..63 bytes, not starting
 * or ending with '-', 253 bytes in all. Wildcards are for certificates,
 * not for the name checked against them. NULL when fine, else why not. */
static const char *bad_host_name(const char *s)
{
	size_t n = strlen(s);
	if (n > 253)
		return "longer than 253 characters";
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0)
				return c == '\0' && i > 0 ? "ends with a dot"
				                          : "has an empty label";
			if (s[i - 1] == '-')
				return "has a label ending with '-'";
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-' && c != '_')
			return c == '*' ? "is a wildcard"
			                : "has a character not allowed in a host name";
		if (label == 0 && c == '-')
			return "has a label starting with '-'";
		if (++label > 63)
			return "has a label longer than 63 characters";
	}
	return NULL;
}

int upstream_target_from_config(const struct config *cfg, struct upstream_target *t, char *err,
                                size_t errlen)
{
	const __typeof__(cfg->upstream) *up = &cfg->upstream;
	memset(t, 0, sizeof(*t));
	if (up->servers.n == 0)
		return failf(err, errlen, "[upstream] servers: no server");
	if (up->servers.n > CONFIG_ADDRS_MAX)
		return failf(err, errlen, "[upstream] servers: more than %d", CONFIG_ADDRS_MAX);
	for (size_t i = 0; i < up->servers.n; i++) {
		const struct config_addr *a = &up->servers.v[i];
		struct upstream_server *s = &t->servers[i];
		if (!*a->host || a->port == 0)
			return failf(err, errlen, "[upstream] servers: server %zu has no %s", i + 1,
			             *a->host ? "port" : "host");
		snprintf(s->host, sizeof(s->host), "%s", a->host);
		s->port = a->port;
		config_addr_format(a, s->name, sizeof(s->name));
		for (size_t j = 0; j < i; j++)
			if (t->servers[j].port == s->port &&
			    !strcasecmp(t->servers[j].host, s->host))
				return failf(err, errlen,
				             "[upstream] servers: %s is listed twice (servers %zu "
				             "and %zu)",
				             s->name, j + 1, i + 1);
	}
	t->n_servers = up->servers.n;
	const char *why;
	if (*up->tls_server_name && !is_ip_literal(up->tls_server_name) &&
	    (why = bad_host_name(up->tls_server_name)))
		return failf(err, errlen, "[upstream] tls_server_name '%s' %s", up->tls_server_name,
		             why);
	if (*up->tls_cert && !*up->tls_key)
		return failf(err, errlen, "[upstream] tls_cert needs tls_key");
	if (*up->tls_key && !*up->tls_cert)
		return failf(err, errlen, "[upstream] tls_key needs tls_cert");
	if (up->tls_min_version != CONFIG_TLS_1_2 && up->tls_min_version != CONFIG_TLS_1_3)
		return failf(err, errlen, "[upstream] tls_min_version: not TLS 1.2 or 1.3");
	if (up->connect_timeout == 0)
		return failf(err, errlen, "[upstream] connect_timeout: must be more than 0");
	if (cfg->cache.load_timeout == 0)
		return failf(err, errlen, "[cache] load_timeout: must be more than 0");
	t->tls = up->tls;
	t->tls_verify = up->tls && up->tls_verify;
	snprintf(t->server_name, sizeof(t->server_name), "%s", up->tls_server_name);
	snprintf(t->ca_file, sizeof(t->ca_file), "%s", up->tls_ca_file);
	snprintf(t->cert_file, sizeof(t->cert_file), "%s", up->tls_cert);
	snprintf(t->key_file, sizeof(t->key_file), "%s", up->tls_key);
	t->tls_min_minor = up->tls_min_version == CONFIG_TLS_1_3 ? 3 : 2;
	t->connect_timeout_ms = up->connect_timeout;
	t->read_timeout_ms = cfg->cache.load_timeout;
	return 0;
}

const char *upstream_verify_name(const struct upstream_target *t, size_t i)
{
	return *t->server_name ? t->server_name : t->servers[i].host;
}

bool upstream_name_differs(const struct upstream_target *t, size_t i)
{
	return *t->server_name && strcasecmp(t->server_name, t->servers[i].host) != 0;
}

const char *upstream_tls_versions(const struct upstream_target *t)
{
	return t->tls_min_minor >= 3 ? "TLSv1.3" : "TLSv1.2,TLSv1.3";
}

unsigned upstream_timeout_s(uint64_t ms)
{
	uint64_t s = (ms + 999) / 1000;
	if (s == 0)
		s = 1;
	return s > 0xffffffffu ? 0xffffffffu : (unsigned)s;
}

/* ---- warnings ---- */

struct warner {
	void (*warn)(void *ctx, const char *line);
	void *ctx;
	size_t n;
};

static void warnf(struct warner *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(struct warner *w, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->n++;
	if (w->warn)
		w->warn(w->ctx, line);
}

static bool is_loopback(const char *host)
{
	if (!strcasecmp(host, "localhost"))
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static const char *tls_name(int v)
{
	return v == CONFIG_TLS_1_3 ? "1.3" : "1.2";
}

size_t upstream_config_warnings(const struct config *cfg, void (*warn)(void *ctx, const char *line),
                                void *ctx)
{
	struct warner w = {warn, ctx, 0};
	const __typeof__(cfg->upstream) *up = &cfg->upstream;
	const __typeof__(cfg->server) *sv = &cfg->server;
	bool cache_on = *cfg->cache.tables != '\0';
	const char *links = cache_on ? "sessions, snapshot loads and patches" : "sessions";

	if (!up->tls) {
		warnf(&w,
		      "[upstream] tls = false: %s send logins, statements and rows to TiDB in "
		      "clear",
		      links);
		static const struct {
			const char *name;
			size_t off;
		} unused[] = {
		        {"tls_ca_file", offsetof(struct config, upstream.tls_ca_file)},
		        {"tls_server_name", offsetof(struct config, upstream.tls_server_name)},
		        {"tls_cert", offsetof(struct config, upstream.tls_cert)},
		        {"tls_key", offsetof(struct config, upstream.tls_key)},
		};
		for (size_t i = 0; i < sizeof(unused) / sizeof(unused[0]); i++)
			if (*((const char *)cfg + unused[i].off))
				warnf(&w, "[upstream] %s is set but tls = false: it has no effect",
				      unused[i].name);
		if (up->tls_min_version != CONFIG_TLS_1_2)
			warnf(&w, "[upstream] tls_min_version is set but tls = false: it has no "
			          "effect");
	} else if (!up->tls_verify) {
		warnf(&w,
		      "[upstream] tls_verify = false: no link checks TiDB's certificate, so "
		      "anyone on the path can impersonate TiDB to %s",
		      links);
	}
	if (*up->tls_cert && !*up->tls_key)
		warnf(&w, "[upstream] tls_cert without tls_key: no link can present the client "
		          "certificate");
	if (*up->tls_key && !*up->tls_cert)
		warnf(&w, "[upstream] tls_key without tls_cert: no link presents a client "
		          "certificate");

	if (up->tls) {
		if (!*sv->tls_cert)
			warnf(&w, "[server] tls_cert is empty while [upstream] tls is on: clients "
			          "reach vecgate in clear, so their logins and statements are less "
			          "protected than on the way to TiDB");
		else if (!sv->require_tls)
			warnf(&w, "[server] require_tls = false while [upstream] tls is on: a "
			          "client may still log in to vecgate without TLS");
		if (*sv->tls_cert && sv->tls_min_version < up->tls_min_version)
			warnf(&w,
			      "[server] tls_min_version %s is below [upstream] tls_min_version "
			      "%s: clients may use an older TLS than the links to TiDB",
			      tls_name(sv->tls_min_version), tls_name(up->tls_min_version));
		if (*sv->tls_cert && up->tls_min_version < sv->tls_min_version)
			warnf(&w,
			      "[upstream] tls_min_version %s is below [server] tls_min_version "
			      "%s: links to TiDB may use an older TLS than clients must",
			      tls_name(up->tls_min_version), tls_name(sv->tls_min_version));
	}

	/* libmariadb (3.3) checks a certificate only against the address it
	 * connects to and sends no SNI: the cache's connections check the
	 * name in a handshake of their own and pin what they checked. */
	if (up->tls && up->tls_verify && cache_on && *up->tls_server_name) {
		bool differs = false;
		for (size_t i = 0; i < up->servers.n; i++)
			differs |= strcasecmp(up->servers.v[i].host, up->tls_server_name) != 0;
		if (differs)
			warnf(&w,
			      "[upstream] tls_server_name = %s: libmariadb checks only the address "
			      "it connects to and sends no SNI, so snapshot loads and patches "
			      "check the certificate for %s in a TLS handshake of their own, "
			      "then require libmariadb to see the same certificate (SHA-1 "
			      "fingerprint); a server that picks its certificate by SNI fails "
			      "them",
			      up->tls_server_name, up->tls_server_name);
	}

	if (*cfg->admin.listen.host && !is_loopback(cfg->admin.listen.host)) {
		char a[CONFIG_HOST_MAX + 16];
		config_addr_format(&cfg->admin.listen, a, sizeof(a));
		warnf(&w,
		      "[admin] listen = %s is not a loopback address: /status and /metrics are "
		      "served without TLS or authentication",
		      a);
	}
	return w.n;
}

/* ---- the shared object ---- */

/* Per-server series in /metrics, labelled server="host:port". */
struct upstream_metrics {
	struct metric *up, *sessions, *failures, *checks_ok, *checks_failed;
};

struct upstream_group {
	struct upstream_target t;
	struct ssl_ctx_st *tls_ctx;
	pthread_mutex_t mu;
	uint64_t retry_max_ms;
	struct upstream_health health[CONFIG_ADDRS_MAX];
	uint64_t backoff_ms[CONFIG_ADDRS_MAX];
	struct upstream_metrics m[CONFIG_ADDRS_MAX];
	size_t next; /* where upstream_order() starts among equals */
};

static void metrics_setup(struct upstream_group *u)
{
	struct metrics_family *up = metrics_family(
	        METRICS_GAUGE, "vecgate_upstream_up",
	        "Whether vecgate takes the server as healthy (1) or down (0).", "server", NULL);
	struct metrics_family *sessions = metrics_family(
	        METRICS_GAUGE, "vecgate_upstream_sessions",
	        "Client sessions bound to a connection to the server.", "server", NULL);
	struct metrics_family *failures = metrics_family(
	        METRICS_COUNTER, "vecgate_upstream_connect_failures_total",
	        "Links to the server that failed to get through (sessions' connections, "
	        "snapshot loads, patches and health checks).",
	        "server", NULL);
	struct metrics_family *checks =
	        metrics_family(METRICS_COUNTER, "vecgate_upstream_health_checks_total",
	                       "Health checks of the server by result.", "server", "result");
	for (size_t i = 0; i < u->t.n_servers; i++) {
		const char *name = u->t.servers[i].name;
		struct upstream_metrics *m = &u->m[i];
		m->up = up ? metrics_series(up, name, NULL) : NULL;
		m->sessions = sessions ? metrics_series(sessions, name, NULL) : NULL;
		m->failures = failures ? metrics_series(failures, name, NULL) : NULL;
		m->checks_ok = checks ? metrics_series(checks, name, "ok") : NULL;
		m->checks_failed = checks ? metrics_series(checks, name, "failed") : NULL;
		/* A series outlives a group (tests make several): start afresh. */
		if (m->up)
			metrics_gauge_set(m->up, 1);
		if (m->sessions)
			metrics_gauge_set(m->sessions, 0);
	}
}

struct upstream_group *upstream_group_new(const struct upstream_target *t,
                                          struct ssl_ctx_st *tls_ctx, uint64_t retry_max_ms)
{
	struct upstream_group *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->t = *t;
	u->tls_ctx = tls_ctx;
	u->retry_max_ms = retry_max_ms;
	pthread_mutex_init(&u->mu, NULL);
	for (size_t i = 0; i < t->n_servers; i++)
		u->health[i].healthy = true;
	metrics_setup(u);
	return u;
}

void upstream_group_free(struct upstream_group *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->mu);
	free(u);
}

const struct upstream_target *upstream_group_target(const struct upstream_group *u)
{
	return &u->t;
}

struct ssl_ctx_st *upstream_tls_ctx(const struct upstream_group *u)
{
	return u->tls_ctx;
}

void upstream_set_timeouts(struct upstream_group *u, uint64_t connect_ms, uint64_t read_ms,
                           uint64_t retry_max_ms)
{
	pthread_mutex_lock(&u->mu);
	u->t.connect_timeout_ms = connect_ms;
	u->t.read_timeout_ms = read_ms;
	u->retry_max_ms = retry_max_ms;
	pthread_mutex_unlock(&u->mu);
}

void upstream_timeouts(struct upstream_group *u, uint64_t *connect_ms, uint64_t *read_ms)
{
	pthread_mutex_lock(&u->mu);
	if (connect_ms)
		*connect_ms = u->t.connect_timeout_ms;
	if (read_ms)
		*read_ms = u->t.read_timeout_ms;
	pthread_mutex_unlock(&u->mu);
}

uint64_t upstream_check_interval(struct upstream_group *u)
{
	pthread_mutex_lock(&u->mu);
	uint64_t v = u->retry_max_ms;
	pthread_mutex_unlock(&u->mu);
	return v;
}

void upstream_health(struct upstream_group *u, size_t i, struct upstream_health *out)
{
	pthread_mutex_lock(&u->mu);
	*out = u->health[i];
	pthread_mutex_unlock(&u->mu);
}

static void set_gauge(struct metric *m, int64_t v)
{
	if (m)
		metrics_gauge_set(m, v);
}

void upstream_failed(struct upstream_group *u, size_t i, const char *what)
{
	pthread_mutex_lock(&u->mu);
	struct upstream_health *h = &u->health[i];
	bool was = h->healthy;
	h->healthy = false;
	h->failures++;
	snprintf(h->last_error, sizeof(h->last_error), "%s", what);
	uint64_t b = u->backoff_ms[i] ? u->backoff_ms[i] * 2 : BACKOFF_MIN_MS;
	if (b > u->retry_max_ms)
		b = u->retry_max_ms;
	u->backoff_ms[i] = b;
	h->retry_at_ms = core_now_ms() + b;
	pthread_mutex_unlock(&u->mu);
	if (u->m[i].failures)
		metrics_inc(u->m[i].failures, 1);
	set_gauge(u->m[i].up, 0);
	if (was)
		log_warn("upstream %s: %s; taken out until a link gets through",
		         u->t.servers[i].name, what);
}

void upstream_reachable(struct upstream_group *u, size_t i)
{
	pthread_mutex_lock(&u->mu);
	struct upstream_health *h = &u->health[i];
	bool was = h->healthy;
	h->healthy = true;
	h->retry_at_ms = 0;
	h->last_error[0] = '\0';
	u->backoff_ms[i] = 0;
	pthread_mutex_unlock(&u->mu);
	set_gauge(u->m[i].up, 1);
	if (!was)
		log_info("upstream %s: reachable again", u->t.servers[i].name);
}

void upstream_checked(struct upstream_group *u, size_t i, bool ok, const char *what)
{
	pthread_mutex_lock(&u->mu);
	struct upstream_health *h = &u->health[i];
	h->checks++;
	h->last_check_ms = core_now_ms();
	h->last_check_ok = ok;
	pthread_mutex_unlock(&u->mu);
	struct metric *m = ok ? u->m[i].checks_ok : u->m[i].checks_failed;
	if (m)
		metrics_inc(m, 1);
	if (ok)
		upstream_reachable(u, i);
	else
		upstream_failed(u, i, what);
}

void upstream_sessions_add(struct upstream_group *u, size_t i, int delta)
{
	pthread_mutex_lock(&u->mu);
	uint64_t *n = &u->health[i].sessions;
	*n = delta < 0 && *n < (uint64_t)-delta ? 0 : *n + (uint64_t)(int64_t)delta;
	int64_t v = (int64_t)*n;
	pthread_mutex_unlock(&u->mu);
	set_gauge(u->m[i].sessions, v);
}

size_t upstream_healthy_count(struct upstream_group *u)
{
	size_t k = 0;
	pthread_mutex_lock(&u->mu);
	for (size_t i = 0; i < u->t.n_servers; i++)
		k += u->health[i].healthy;
	pthread_mutex_unlock(&u->mu);
	return k;
}

/* Sort key of server i in upstream_order(): the class first (healthy,
 * back-off over, backing off), then within a class what decides there. */
struct order_key {
	int cls;
	uint64_t key; /* sessions (healthy), retry_at_ms (backing off), else 0 */
	size_t turn;  /* position after the rotating start: ties */
	size_t i;
};

static bool key_before(const struct order_key *a, const struct order_key *b)
{
	if (a->cls != b->cls)
		return a->cls < b->cls;
	if (a->key != b->key)
		return a->key < b->key;
	return a->turn < b->turn;
}

size_t upstream_order(struct upstream_group *u, size_t *order)
{
	size_t n = u->t.n_servers;
	struct order_key keys[CONFIG_ADDRS_MAX];
	uint64_t now = core_now_ms();
	pthread_mutex_lock(&u->mu);
	size_t start = u->next % n;
	u->next = (start + 1) % n;
	for (size_t j = 0; j < n; j++) {
		size_t i = (start + j) % n;
		const struct upstream_health *h = &u->health[i];
		struct order_key *k = &keys[j];
		k->i = i;
		k->turn = j;
		if (h->healthy) {
			k->cls = 0;
			k->key = h->sessions;
		} else if (now >= h->retry_at_ms) {
			k->cls = 1;
			k->key = 0;
		} else {
			k->cls = 2;
			k->key = h->retry_at_ms;
		}
	}
	pthread_mutex_unlock(&u->mu);
	/* Insertion sort: at most CONFIG_ADDRS_MAX servers, usually 1 to 5. */
	for (size_t a = 1; a < n; a++) {
		struct order_key k = keys[a];
		size_t b = a;
		while (b > 0 && key_before(&k, &keys[b - 1])) {
			keys[b] = keys[b - 1];
			b--;
		}
		keys[b] = k;
	}
	for (size_t j = 0; j < n; j++)
		order[j] = keys[j].i;
	return n;
}
