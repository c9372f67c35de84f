/* The configuration table and everything it drives: INI parsing (inih) with
 * file:line errors, defaults, rules between keys, SIGHUP reload, the annotated
 * default file and the JSON for /status. To add a key: a field in struct config,
 * a row in keys[] below; the parser, the docs and /status follow. */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "core/log.h"

/* Debian's inih makes the line limit a variable; upstream inih fixes it at
 * 200 at build time. Weak, so that vecgate links against either. */
#pragma weak ini_max_line

enum type {
	T_STRING,
	T_PATH,
	T_BOOL,
	T_INT,
	T_SIZE,     /* uint64_t bytes */
	T_DURATION, /* uint64_t milliseconds */
	T_ENUM,     /* int: index into choices */
	T_ADDR,
	T_ADDR_LIST,
	T_TABLES, /* string: "auto" or db.table(column), ... (see config_parse_tables) */
	T_SECRET, /* string never shown in logs or /status */
};

struct key {
	const char *section;
	const char *name;
	enum type type;
	const char *def;
	const char *min, *max; /* T_INT, T_SIZE, T_DURATION: bounds, in the file's syntax */
	const char *const *choices;
	bool reloadable;
	bool optional; /* T_ADDR: empty disables */
	size_t off, size;
	const char *help;
};

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};

#define F(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define RELOAD   true
#define RESTART  false

static const struct key keys[] = {
        {"server", "listen", T_ADDR, "127.0.0.1:4100", NULL, NULL, NULL, RESTART, false,
         F(server.listen),
         "Address for MySQL clients. 0.0.0.0:port or [::]:port listens on every interface."},
        {"server", "workers", T_INT, "0", "0", "64", NULL, RESTART, false, F(server.workers),
         "Event loop threads, each with its own sessions and upstream pool, accepting on "
         "the same port (SO_REUSEPORT); cached snapshots are shared by all. 0 = one per "
         "core. kNN scans run on libuv's thread pool either way."},
        {"server", "backlog", T_INT, "511", "1", "65535", NULL, RESTART, false, F(server.backlog),
         "Length of the kernel's queue of connections not yet accepted."},
        {"server", "max_client_conns", T_INT, "1000", "1", "1000000", NULL, RELOAD, false,
         F(server.max_client_conns),
         "Most client connections at once, over all workers. Further clients get MySQL error "
         "1040 (Too many connections)."},
        {"server", "max_pending_logins", T_INT, "64", "1", "100000", NULL, RELOAD, false,
         F(server.max_pending_logins),
         "Most clients at once between connecting and the end of their login that hold a "
         "TiDB connection (each login needs one: the greeting carries its salt). Further "
         "clients wait for a slot, oldest first, holding none; handshake_timeout still "
         "applies to them. Logged-in sessions do not count. Keep it well under the "
         "server's connection limit (max_connections, 151 by default on MySQL and "
         "MariaDB)."},
        {"server", "max_pending_logins_per_address", T_INT, "32", "1", "100000", NULL, RELOAD,
         false, F(server.max_pending_logins_per_address),
         "Of max_pending_logins, most held by clients from one address: clients that connect "
         "and stay silent from one place cannot keep others from logging in. Its queued "
         "clients wait while others go first."},
        {"server", "max_packet_size", T_SIZE, "1G", "1K", "1G", NULL, RESTART, false,
         F(server.max_packet_size),
         "Largest MySQL payload (a statement, after joining split packets) accepted from a "
         "client. A larger one gets error 1153 and the session is closed. Results from TiDB "
         "are relayed packet by packet whatever their size."},
        {"server", "write_buffer_limit", T_SIZE, "1M", "16K", "1G", NULL, RESTART, false,
         F(server.write_buffer_limit),
         "Bytes waiting to be sent to a slow reader (client or TiDB) before vecgate stops "
         "reading from the other side, so a slow client never makes vecgate hold a whole "
         "result set in memory. It also bounds what a client sends ahead of the session "
         "(pipelined commands while a statement runs): past it, vecgate stops reading from "
         "that client until the session has consumed them. One statement still being "
         "received may grow up to max_packet_size."},
        {"server", "handshake_timeout", T_DURATION, "10s", "100ms", "10m", NULL, RELOAD, false,
         F(server.handshake_timeout),
         "Time a client has from connecting to the end of its login, TLS included."},
        {"server", "idle_timeout", T_DURATION, "0", "0", "720h", NULL, RELOAD, false,
         F(server.idle_timeout),
         "Disconnect a client that sends nothing for this long. 0 = never."},
        {"server", "drain_timeout", T_DURATION, "30s", "0", "1h", NULL, RELOAD, false,
         F(server.drain_timeout),
         "On SIGTERM or SIGINT, stop accepting and give sessions this long to finish their "
         "statement or transaction before closing them."},
        {"server", "tcp_keepalive", T_DURATION, "60s", "0", "2h", NULL, RESTART, false,
         F(server.tcp_keepalive),
         "TCP keepalive idle time on client connections. 0 = keepalive off."},
        {"server", "log_level", T_ENUM, "info", NULL, NULL, log_levels, RELOAD, false,
         F(server.log_level), "Most verbose log level written to stderr."},
        {"server", "log_format", T_ENUM, "text", NULL, NULL, log_formats, RELOAD, false,
         F(server.log_format),
         "How each log line on stderr is written. text: 2026-11-21T06:00:00.123Z INFO "
         "[component] message. json: one object per line with the same fields, "
         "{\"time\":...,\"level\":\"INFO\",\"component\":...,\"message\":...}, for log "
         "collectors that parse JSON."},
        {"server", "tls_cert", T_PATH, "", NULL, NULL, NULL, RELOAD, false, F(server.tls_cert),
         "Certificate chain (PEM) vecgate presents to clients. Empty: clients cannot use TLS."},
        {"server", "tls_key", T_PATH, "", NULL, NULL, NULL, RELOAD, false, F(server.tls_key),
         "Private key (PEM) of tls_cert."},
        {"server", "tls_ca", T_PATH, "", NULL, NULL, NULL, RELOAD, false, F(server.tls_ca),
         "CA bundle (PEM) for client certificates. When set, TLS clients must present a "
         "certificate signed by it (plaintext clients are not affected: see require_tls). "
         "Empty: no client certificate is asked for."},
        {"server", "tls_min_version", T_ENUM, "1.2", NULL, NULL, tls_versions, RELOAD, false,
         F(server.tls_min_version), "Lowest TLS version accepted from clients."},
        {"server", "require_tls", T_BOOL, "false", NULL, NULL, NULL, RELOAD, false,
         F(server.require_tls),
         "Refuse clients that do not switch to TLS before logging in (needs tls_cert)."},

        {"upstream", "servers", T_ADDR_LIST, "127.0.0.1:4000", NULL, NULL, NULL, RESTART, false,
         F(upstream.servers),
         "TiDB servers, comma separated. Each new client session goes to the healthy one "
         "with the fewest sessions (in turn among equals); with none healthy, each is tried."},
        {"upstream", "tls", T_BOOL, "true", NULL, NULL, NULL, RESTART, false, F(upstream.tls),
         "Connect to TiDB with TLS. Off sends logins and data in clear: only for a TiDB on the "
         "same host."},
        {"upstream", "tls_verify", T_BOOL, "true", NULL, NULL, NULL, RESTART, false,
         F(upstream.tls_verify),
         "Verify TiDB's certificate chain and host name. Off allows anyone on the path to "
         "impersonate TiDB; vecgate logs a warning at every start."},
        {"upstream", "tls_ca_file", T_PATH, "", NULL, NULL, NULL, RESTART, false,
         F(upstream.tls_ca_file),
         "CA bundle (PEM) that TiDB's certificate must chain to. Empty: the system's trust "
         "store."},
        {"upstream", "tls_server_name", T_STRING, "", NULL, NULL, NULL, RESTART, false,
         F(upstream.tls_server_name),
         "Name sent as SNI and matched against TiDB's certificate. Empty: the host of each "
         "server."},
        {"upstream", "tls_cert", T_PATH, "", NULL, NULL, NULL, RESTART, false, F(upstream.tls_cert),
         "Client certificate chain (PEM) vecgate presents to TiDB. Empty: none."},
        {"upstream", "tls_key", T_PATH, "", NULL, NULL, NULL, RESTART, false, F(upstream.tls_key),
         "Private key (PEM) of upstream tls_cert."},
        {"upstream", "tls_min_version", T_ENUM, "1.2", NULL, NULL, tls_versions, RESTART, false,
         F(upstream.tls_min_version), "Lowest TLS version accepted from TiDB."},
        {"upstream", "connect_timeout", T_DURATION, "5s", "100ms", "5m", NULL, RELOAD, false,
         F(upstream.connect_timeout),
         "Time allowed for the TCP connect, the TLS handshake and TiDB's greeting."},
        {"upstream", "pool_spares", T_INT, "4", "0", "256", NULL, RELOAD, false,
         F(upstream.pool_spares),
         "Spare connections per server, kept past TLS and holding a fresh greeting, so a new "
         "client logs in without waiting for a connect. 0 = connect on demand."},
        {"upstream", "spare_max_age", T_DURATION, "3s", "1s", "1h", NULL, RELOAD, false,
         F(upstream.spare_max_age),
         "Replace spares older than this, before the server drops a connection whose greeting "
         "went unanswered (MySQL and MariaDB do after connect_timeout, 10 s by default) or a "
         "load balancer drops it as idle. A client logs in on a spare's greeting, so it has "
         "that server limit minus the spare's age: keep the sum of this and the client's "
         "login time well under it."},
        {"upstream", "health_check_interval", T_DURATION, "5s", "100ms", "1h", NULL, RELOAD, false,
         F(upstream.health_check_interval),
         "How often each server is checked (TCP connect, greeting and, with tls, the TLS "
         "handshake; never a login). A server that fails a check or a connection is taken "
         "out and checked again after 200 ms, doubling up to this interval, until one "
         "passes."},
        {"upstream", "tcp_keepalive", T_DURATION, "60s", "0", "2h", NULL, RESTART, false,
         F(upstream.tcp_keepalive),
         "TCP keepalive idle time on connections to TiDB. 0 = keepalive off."},

        {"cache", "tables", T_TABLES, "", NULL, NULL, NULL, RESTART, false, F(cache.tables),
         "Tables whose vector kNN queries vecgate answers from memory: db.table(column), ... "
         "(backticks allowed), or auto to admit tables as their kNN queries arrive, within "
         "memory_limit. Empty: no cache, every statement goes to TiDB."},
        {"cache", "user", T_STRING, "", NULL, NULL, NULL, RESTART, false, F(cache.user),
         "Account vecgate uses to load snapshots of cached tables (it needs SELECT on them). "
         "Client logins are never used for this."},
        {"cache", "password", T_SECRET, "", NULL, NULL, NULL, RESTART, false, F(cache.password),
         "Password of the cache user. Never shown in logs or /status. The environment "
         "variable VECGATE_CACHE_PASSWORD overrides it."},
        {"cache", "memory_limit", T_SIZE, "4G", "16M", "1024G", NULL, RESTART, false,
         F(cache.memory_limit),
         "Most memory all snapshots together may use (vectors, row cells and indexes). A table "
         "that would not fit is not cached and its queries go to TiDB."},
        {"cache", "max_staleness", T_DURATION, "5s", "100ms", "24h", NULL, RELOAD, false,
         F(cache.max_staleness),
         "Writes that bypass vecgate (other clients of TiDB) are seen within this time: an "
         "older snapshot is not served, and snapshots are reloaded in the background before "
         "they reach this age. It must be longer than a table takes to load (about 2.5 s for "
         "100k x 768 vectors on 2 cores), or that table is never answered from memory."},
        {"cache", "result_cache_size", T_SIZE, "64M", "0", "64G", NULL, RESTART, false,
         F(cache.result_cache_size),
         "Memory for replaying the encoded answers of identical repeated kNN queries until "
         "their table changes. 0 turns the result cache off."},
        {"cache", "load_timeout", T_DURATION, "10m", "1s", "24h", NULL, RELOAD, false,
         F(cache.load_timeout), "Longest time one snapshot load may take before it is abandoned."},
        {"cache", "patches", T_BOOL, "true", NULL, NULL, NULL, RESTART, false, F(cache.patches),
         "Writes through vecgate whose rows are known by primary key (INSERT, REPLACE, UPDATE "
         "and DELETE that name their keys) patch the snapshot: the rows are read back after "
         "the commit and a new version is published in milliseconds. Off: every write makes "
         "the table's snapshot stale until a full reload."},
        {"cache", "screening", T_BOOL, "true", NULL, NULL, NULL, RELOAD, false, F(cache.screening),
         "Keep an int8 copy of each cached table's vectors (about dim + 29 bytes a row, counted "
         "in memory_limit) and read it before the float32 vectors: only the blocks that may "
         "hold an answer are then computed exactly. Answers are the same bit for bit either "
         "way. Off: scans read every float32 vector, and tables loaded from then on get no "
         "copy."},
        {"cache", "proof_max_age", T_DURATION, "60s", "1s", "1h", NULL, RELOAD, false,
         F(cache.proof_max_age),
         "A query shape is answered from memory for a user only after the database answered "
         "it for that user (and role, database, settings); the proof is renewed by sending one "
         "execution to the database again once it is this old. Privileges revoked straight on "
         "the database (not through vecgate) are therefore honoured within this time; lower "
         "is safer, each renewal costs one query on the database per user and shape."},
        {"cache", "max_tables", T_INT, "32", "1", "100000", NULL, RESTART, false,
         F(cache.max_tables),
         "With tables = auto: most tables admitted at once. A table is admitted only after "
         "the database answered a kNN query on it, never from a system schema (mysql, "
         "information_schema, performance_schema, metrics_schema, sys); one whose load fails "
         "is forgotten and not admitted again for a back-off that doubles with each failure."},

        {"admin", "listen", T_ADDR, "127.0.0.1:9100", NULL, NULL, NULL, RESTART, true,
         F(admin.listen),
         "HTTP endpoint for /metrics, /status and /health. Empty disables it. It has no "
         "authentication: keep it on loopback or a private network."},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const sections[] = {"server", "upstream", "cache", "admin"};

static void *field(struct config *cfg, const struct key *k)
{
	return (char *)cfg + k->off;
}

static const void *cfield(const struct config *cfg, const struct key *k)
{
	return (const char *)cfg + k->off;
}

/* ---- value parsers: each returns 0, or -EINVAL with a message in msg ---- */

struct unit {
	const char *suffix;
	uint64_t mult;
};

static const struct unit size_units[] = {
        {"", 1},
        {"K", 1ULL << 10},
        {"KiB", 1ULL << 10},
        {"M", 1ULL << 20},
        {"MiB", 1ULL << 20},
        {"G", 1ULL << 30},
        {"GiB", 1ULL << 30},
        {NULL, 0},
};

static const struct unit duration_units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {NULL, 0},
};

/* Digits, then one of units' suffixes (exact case, except that size suffixes
 * also take a lower-case k/m/g). false on anything else or on overflow. */
static bool parse_scaled(const char *v, const struct unit *units, bool icase, uint64_t *out)
{
	uint64_t n = 0;
	const char *p = v;
	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	for (const struct unit *u = units; u->suffix; u++) {
		if (icase ? strcasecmp(p, u->suffix) != 0 : strcmp(p, u->suffix) != 0)
			continue;
		if (n > UINT64_MAX / u->mult)
			return false;
		*out = n * u->mult;
		return true;
	}
	return false;
}

static int fail(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Parses a T_INT, T_SIZE or T_DURATION value (without bounds). */
static bool parse_number(enum type t, const char *v, uint64_t *out)
{
	if (t == T_SIZE)
		return parse_scaled(v, size_units, true, out);
	if (t == T_DURATION)
		return parse_scaled(v, duration_units, false, out);
	static const struct unit plain[] = {{"", 1}, {NULL, 0}};
	return parse_scaled(v, plain, false, out) && *out <= INT32_MAX;
}

static bool valid_hostname(const char *h)
{
	size_t len = strlen(h), label = 0;
	bool only_digits_dots = true;
	if (len == 0 || len > 253)
		return false;
	for (const char *p = h; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (!isdigit(c))
			only_digits_dots = false;
		if (++label > 63)
			return false;
	}
	if (label == 0 || h[len - 1] == '-')
		return false;
	/* 1.2.3.256 is a mistyped address, not a host name. */
	struct in_addr a4;
	return !only_digits_dots || inet_pton(AF_INET, h, &a4) == 1;
}

static int parse_addr(const char *v, size_t len, struct config_addr *a, char *msg, size_t n)
{
	const char *host = v, *colon;
	size_t hlen;
	memset(a, 0, sizeof(*a));
	if (len == 0)
		return fail(msg, n, "empty address");
	if (v[0] == '[') {
		const char *end = memchr(v, ']', len);
		if (!end || end + 1 == v + len || end[1] != ':')
			return fail(msg, n, "expected [IPv6]:port");
		host = v + 1;
		hlen = (size_t)(end - host);
		colon = end + 1;
	} else {
		colon = memchr(v, ':', len);
		if (!colon)
			return fail(msg, n, "missing :port");
		if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - v)))
			return fail(msg, n, "an IPv6 address needs brackets: [::1]:4000");
		hlen = (size_t)(colon - v);
	}
	if (hlen == 0 || hlen >= sizeof(a->host))
		return fail(msg, n, "missing or too long host");
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	unsigned long port = 0;
	size_t plen = len - (size_t)(colon + 1 - v);
	if (plen == 0 || plen > 5)
		return fail(msg, n, "port must be 1..65535");
	for (size_t i = 0; i < plen; i++) {
		if (!isdigit((unsigned char)colon[1 + i]))
			return fail(msg, n, "port must be 1..65535");
		port = port * 10 + (unsigned long)(colon[1 + i] - '0');
	}
	if (port == 0 || port > 65535)
		return fail(msg, n, "port must be 1..65535");
	a->port = (uint16_t)port;
	if (v[0] == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, a->host, &a6) != 1)
			return fail(msg, n, "bad IPv6 address '%s'", a->host);
	} else if (!valid_hostname(a->host)) {
		return fail(msg, n, "bad host name or IPv4 address '%s'", a->host);
	}
	return 0;
}

static int parse_list(const char *v, struct config_addr_list *l, char *msg, size_t n)
{
	memset(l, 0, sizeof(*l));
	for (const char *p = v;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		const char *e = end;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		if (l->n == CONFIG_ADDRS_MAX)
			return fail(msg, n, "more than %d addresses", CONFIG_ADDRS_MAX);
		struct config_addr *a = &l->v[l->n];
		char why[256];
		if (parse_addr(p, (size_t)(e - p), a, why, sizeof(why)) < 0)
			return fail(msg, n, "address %zu: %s", l->n + 1, why);
		for (size_t i = 0; i < l->n; i++)
			if (l->v[i].port == a->port && strcmp(l->v[i].host, a->host) == 0)
				return fail(msg, n, "address %zu repeats address %zu", l->n + 1,
				            i + 1);
		l->n++;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Parses v as k's type into dst (k's field in some struct config). */
static int parse_value(const struct key *k, const char *v, void *dst, char *msg, size_t n)
{
	uint64_t num, lo, hi;
	switch (k->type) {
	case T_TABLES: {
		struct config_table_list tl;
		if (config_parse_tables(v, &tl, msg, n) < 0)
			return -EINVAL;
	}
		/* Valid: stored as the text. */
		__attribute__((fallthrough));
	case T_STRING:
	case T_PATH:
	case T_SECRET:
		if (strlen(v) >= k->size)
			return fail(msg, n, "longer than %zu bytes", k->size - 1);
		memset(dst, 0, k->size);
		memcpy(dst, v, strlen(v));
		return 0;
	case T_BOOL:
		if (parse_bool(v, dst) < 0)
			return fail(msg, n, "expected true or false (also yes/no, on/off, 1/0)");
		return 0;
	case T_INT:
	case T_SIZE:
	case T_DURATION:
		if (!parse_number(k->type, v, &num))
			return fail(msg, n, "%s",
			            k->type == T_INT    ? "expected a whole number"
			            : k->type == T_SIZE ? "expected a size such as 512K, 64M or 1G"
			                                : "expected a duration such as 500ms, 10s, "
			                                  "5m or 1h");
		if (!parse_number(k->type, k->min, &lo) || !parse_number(k->type, k->max, &hi))
			return fail(msg, n, "bad bounds in the key table");
		if (num < lo)
			return fail(msg, n, "below the minimum %s", k->min);
		if (num > hi)
			return fail(msg, n, "above the maximum %s", k->max);
		if (k->type == T_INT)
			*(int *)dst = (int)num;
		else
			*(uint64_t *)dst = num;
		return 0;
	case T_ENUM:
		for (int i = 0; k->choices[i]; i++) {
			if (strcasecmp(v, k->choices[i]) == 0) {
				*(int *)dst = i;
				return 0;
			}
		}
		{
			char list[128] = "";
			for (int i = 0; k->choices[i]; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				         i ? ", " : "", k->choices[i]);
			return fail(msg, n, "expected one of %s", list);
		}
	case T_ADDR:
		if (*v == '\0' && k->optional) {
			memset(dst, 0, sizeof(struct config_addr));
			return 0;
		}
		return parse_addr(v, strlen(v), dst, msg, n);
	case T_ADDR_LIST:
		return parse_list(v, dst, msg, n);
	}
	return fail(msg, n, "unknown type");
}

void config_init_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++) {
		char msg[256];
		/* The defaults go through the parser, so they obey their own
		 * bounds; test_config checks that every one parses. */
		if (parse_value(&keys[i], keys[i].def, field(cfg, &keys[i]), msg, sizeof(msg)) < 0)
			log_error("default of [%s] %s: %s", keys[i].section, keys[i].name, msg);
	}
}

void config_free(struct config *cfg)
{
	(void)cfg;
}

/* ---- the file parser ---- */

struct parse {
	const char *p; /* text not yet handed to inih */
	int line;      /* lines handed to inih so far: the one being parsed */
	bool section_ok;
	struct config *cfg;
	struct config_err *err;
	int key_line[NKEYS];
};

static void report(struct parse *ps, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void report(struct parse *ps, int line, const char *fmt, ...)
{
	if (ps->err->count++ > 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
	va_end(ap);
	ps->err->line = line;
}

/* Checks the syntax of one line the way inih will read it, so that every
 * problem (not only inih's first) is reported with its own line, and tracks
 * whether the current section is one we know. */
static void check_line(struct parse *ps, const char *s)
{
	if (*s == '\0' || *s == '\n' || *s == '\r' || *s == ';' || *s == '#')
		return;
	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (!end) {
			report(ps, ps->line, "missing ']' in section header");
			return;
		}
		ps->section_ok = false;
		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
			if (strlen(sections[i]) == (size_t)(end - s - 1) &&
			    memcmp(sections[i], s + 1, (size_t)(end - s - 1)) == 0)
				ps->section_ok = true;
		if (!ps->section_ok)
			report(ps, ps->line, "unknown section [%.*s]", (int)(end - s - 1), s + 1);
		return;
	}
	if (!strpbrk(s, "=:"))
		report(ps, ps->line, "expected 'key = value' or '[section]'");
}

/* inih's reader: hands over one line per call, so that counting calls gives
 * the line number inih's handler (built without INI_HANDLER_LINENO) lacks. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	if (*ps->p == '\0')
		return NULL;
	const char *s = ps->p, *nl = strchr(s, '\n');
	size_t n = nl ? (size_t)(nl - s) + 1 : strlen(s);
	ps->p += n;
	ps->line++;
	if (ps->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
		n -= 3;
	}
	/* Leading blanks would make inih join the line to the previous value
	 * (multi-line values); an indented key is just a key here. */
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (n + 1 > (size_t)num) {
		report(ps, ps->line, "line longer than %d bytes", num - 2);
		memcpy(str, "\n", 2);
		return str;
	}
	memcpy(str, s, n);
	str[n] = '\0';
	check_line(ps, str);
	return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;
	if (!ps->section_ok) {
		if (*section == '\0')
			report(ps, ps->line, "'%s' is outside a section", name);
		return 1; /* the section header was reported */
	}
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
			continue;
		if (ps->key_line[i]) {
			report(ps, ps->line, "[%s] %s is already set on line %d", section, name,
			       ps->key_line[i]);
			return 1;
		}
		ps->key_line[i] = ps->line;
		char msg[300];
		if (parse_value(k, value, field(ps->cfg, k), msg, sizeof(msg)) < 0)
			report(ps, ps->line, "[%s] %s = %.80s: %s", section, name, value, msg);
		return 1;
	}
	report(ps, ps->line, "unknown key '%s' in [%s]", name, section);
	return 1;
}

static const struct key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Line of the later of two keys set in the file, 0 when neither was. */
static int rule_line(const struct parse *ps, const char *sa, const char *a, const char *sb,
                     const char *b)
{
	int la = ps->key_line[find_key(sa, a) - keys];
	int lb = b ? ps->key_line[find_key(sb, b) - keys] : 0;
	return la > lb ? la : lb;
}

static bool same_addr(const struct config_addr *a, const struct config_addr *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* The rules between keys, checked once the whole file is read. */
static void check_rules(struct parse *ps)
{
	const struct config *c = ps->cfg;
	if (!*c->server.tls_cert != !*c->server.tls_key)
		report(ps, rule_line(ps, "server", "tls_cert", "server", "tls_key"),
		       "[server] tls_cert and tls_key go together");
	if (c->server.require_tls && !*c->server.tls_cert)
		report(ps, rule_line(ps, "server", "require_tls", "server", "tls_cert"),
		       "[server] require_tls needs tls_cert and tls_key");
	if (*c->server.tls_ca && !*c->server.tls_cert)
		report(ps, rule_line(ps, "server", "tls_ca", "server", "tls_cert"),
		       "[server] tls_ca (client certificates) needs tls_cert and tls_key");
	if (!*c->upstream.tls_cert != !*c->upstream.tls_key)
		report(ps, rule_line(ps, "upstream", "tls_cert", "upstream", "tls_key"),
		       "[upstream] tls_cert and tls_key go together");
	if (*c->admin.listen.host && same_addr(&c->admin.listen, &c->server.listen))
		report(ps, rule_line(ps, "admin", "listen", "server", "listen"),
		       "[admin] listen and [server] listen are the same address");
}

int config_parse_string(const char *text, const char *name, struct config *out,
                        struct config_err *err)
{
	struct parse ps = {.p = text, .cfg = out, .err = err};
	memset(err, 0, sizeof(*err));
	err->file = name;
	config_init_defaults(out);

	int saved = 0;
	if (&ini_max_line) {
		saved = ini_max_line;
		ini_max_line = CONFIG_LINE_MAX + 2; /* room for "\r\n" */
	}
	int rc = ini_parse_stream(read_line, &ps, on_key, &ps);
	if (&ini_max_line)
		ini_max_line = saved;

	if (rc > 0 && err->count == 0)
		report(&ps, rc, "syntax error"); /* inih saw what check_line did not */
	else if (rc < 0)
		report(&ps, 0, "out of memory");
	if (err->count == 0)
		check_rules(&ps);
	if (err->count > 0)
		return rc < 0 ? -ENOMEM : -EINVAL;
	/* Settings that leave a link less protected are reported by
	 * upstream_config_warnings() (core/upstream.h): at start and by
	 * --check-config. */
	return 0;
}

int config_load(const char *path, struct config *out, struct config_err *err)
{
	config_init_defaults(out);
	memset(err, 0, sizeof(*err));
	err->file = path;
	err->count = 1;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		snprintf(err->msg, sizeof(err->msg), "cannot open: %s", strerror(e));
		return -e;
	}
	char *text = malloc(CONFIG_FILE_MAX + 1);
	if (!text) {
		fclose(f);
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -ENOMEM;
	}
	size_t n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	int rerr = ferror(f);
	fclose(f);
	int rc = -EINVAL;
	if (rerr) {
		snprintf(err->msg, sizeof(err->msg), "read error");
		rc = -EIO;
	} else if (n > CONFIG_FILE_MAX) {
		snprintf(err->msg, sizeof(err->msg), "larger than %d bytes", CONFIG_FILE_MAX);
	} else if (memchr(text, '\0', n)) {
		const char *z = memchr(text, '\0', n);
		err->line = 1;
		for (const char *p = text; p < z; p++)
			err->line += *p == '\n';
		snprintf(err->msg, sizeof(err->msg), "NUL byte in the file");
	} else {
		text[n] = '\0';
		rc = config_parse_string(text, path, out, err);
	}
	free(text);
	return rc;
}

int config_check_files(const struct config *cfg, struct config_err *err)
{
	err->line = 0;
	err->count = 0;
	err->msg[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const char *path = cfield(cfg, k);
		if (k->type != T_PATH || *path == '\0')
			continue;
		if (k == find_key("upstream", "tls_ca_file") && !cfg->upstream.tls)
			continue;
		if (access(path, R_OK) < 0) {
			int e = errno;
			if (err->count++ == 0)
				snprintf(err->msg, sizeof(err->msg), "[%s] %s: cannot read %s: %s",
				         k->section, k->name, path, strerror(e));
		}
	}
	return err->count ? -EINVAL : 0;
}

/* ---- comparing, formatting ---- */

static bool same_value(const struct key *k, const void *a, const void *b)
{
	switch (k->type) {
	case T_STRING:
	case T_PATH:
	case T_TABLES:
	case T_SECRET:
		return strcmp(a, b) == 0;
	case T_ADDR:
		return same_addr(a, b);
	case T_ADDR_LIST: {
		const struct config_addr_list *x = a, *y = b;
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (!same_addr(&x->v[i], &y->v[i]))
				return false;
		return true;
	}
	default:
		return memcmp(a, b, k->size) == 0;
	}
}

int config_addr_format(const struct config_addr *a, char *out, size_t n)
{
	if (!*a->host)
		return snprintf(out, n, "%s", "");
	return snprintf(out, n, strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host,
	                (unsigned)a->port);
}

/* Writes a number with the largest unit that divides it exactly. */
static void format_scaled(uint64_t v, const struct unit *units, char *out, size_t n)
{
	const struct unit *best = NULL;
	for (const struct unit *u = units; u->suffix; u++)
		if (*u->suffix && strlen(u->suffix) <= 2 && v % u->mult == 0 &&
		    (!best || u->mult > best->mult))
			best = u;
	if (v == 0 || !best)
		best = units[0].mult == 1 ? &units[0] : &units[1];
	snprintf(out, n, "%" PRIu64 "%s", v / best->mult, best->suffix);
}

/* k's value in the file's syntax, for log lines. */
static void format_value(const struct key *k, const void *v, char *out, size_t n)
{
	switch (k->type) {
	case T_STRING:
	case T_PATH:
	case T_TABLES:
		snprintf(out, n, "%s", (const char *)v);
		break;
	case T_SECRET:
		snprintf(out, n, "%s", *(const char *)v ? "(hidden)" : "");
		break;
	case T_BOOL:
		snprintf(out, n, "%s", *(const bool *)v ? "true" : "false");
		break;
	case T_INT:
		snprintf(out, n, "%d", *(const int *)v);
		break;
	case T_SIZE:
		format_scaled(*(const uint64_t *)v, size_units, out, n);
		break;
	case T_DURATION:
		format_scaled(*(const uint64_t *)v, duration_units, out, n);
		break;
	case T_ENUM:
		snprintf(out, n, "%s", k->choices[*(const int *)v]);
		break;
	case T_ADDR:
		config_addr_format(v, out, n);
		break;
	case T_ADDR_LIST: {
		const struct config_addr_list *l = v;
		size_t used = 0;
		out[0] = '\0';
		for (size_t i = 0; i < l->n && used + 1 < n; i++) {
			if (i)
				used += (size_t)snprintf(out + used, n - used, ", ");
			if (used + 1 < n)
				used += (size_t)config_addr_format(&l->v[i], out + used, n - used);
		}
		/* snprintf stops at n - 1 and NUL-terminates: a cut list is fine. */
		break;
	}
	}
}

size_t config_apply_reload(struct config *live, const struct config *fresh,
                           struct config_change *out, size_t max)
{
	size_t changed = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (same_value(k, field(live, k), cfield(fresh, k)))
			continue;
		if (changed < max)
			out[changed] = (struct config_change){k->section, k->name, k->reloadable};
		changed++;
		if (!k->reloadable) {
			log_warn("restart needed for [%s] %s", k->section, k->name);
			continue;
		}
		memcpy(field(live, k), cfield(fresh, k), k->size);
		char val[512];
		format_value(k, field(live, k), val, sizeof(val));
		log_info("reloaded [%s] %s = %s", k->section, k->name, val);
	}
	return changed;
}

/* ---- the annotated file ---- */

static int put(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s));
}

/* Writes text as "# " comment lines of at most 79 columns, breaking at spaces. */
static int put_wrapped(struct buf *out, const char *text)
{
	const size_t width = 79 - 2;
	const char *p = text;
	while (*p) {
		size_t n = strlen(p);
		if (n > width) {
			n = width;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0)
				n = strcspn(p, " ");
		}
		int rc = buf_appendf(out, "# %.*s\n", (int)n, p);
		if (rc < 0)
			return rc;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static int put_type_line(struct buf *out, const struct key *k)
{
	static const char *const names[] = {
	        [T_STRING] = "string",
	        [T_PATH] = "path",
	        [T_BOOL] = "boolean",
	        [T_INT] = "integer",
	        [T_SIZE] = "size",
	        [T_DURATION] = "duration",
	        [T_ENUM] = "one of",
	        [T_ADDR] = "address",
	        [T_ADDR_LIST] = "addresses",
	        [T_TABLES] = "tables",
	        [T_SECRET] = "secret string",
	};
	char type[160];
	if (k->type == T_ENUM) {
		size_t used = (size_t)snprintf(type, sizeof(type), "one of");
		for (int i = 0; k->choices[i]; i++)
			used += (size_t)snprintf(type + used, sizeof(type) - used, "%s %s",
			                         i ? "," : "", k->choices[i]);
	} else if (k->min) {
		snprintf(type, sizeof(type), "%s, %s..%s", names[k->type], k->min, k->max);
	} else {
		snprintf(type, sizeof(type), "%s%s", names[k->type],
		         k->optional ? " or empty" : "");
	}
	return buf_appendf(out, "# Type: %s. Default: %s. %s\n", type, *k->def ? k->def : "empty",
	                   k->reloadable ? "SIGHUP reloads it." : "Restart needed.");
}

static const char annotated_header[] =
        "# vecgate configuration: every key, set to its default.\n"
        "#\n"
        "# Generated by config_write_annotated() from the key table in\n"
        "# src/core/config.c; test_config fails when conf/vecgate.conf differs.\n"
        "#\n"
        "# Syntax: [section] headers and \"key = value\" lines; a line starting with\n"
        "# # or ; is a comment. Value types:\n"
        "#   boolean    true/false, yes/no, on/off, 1/0\n"
        "#   size       bytes, or with K, M or G (KiB, MiB, GiB): powers of 1024\n"
        "#   duration   a whole number with ms, s, m or h; a bare number is seconds\n"
        "#   address    host:port, [IPv6]:port or hostname:port\n"
        "#   addresses  addresses separated by commas\n"
        "#   path       a file name; a relative one is taken from vecgate's working\n"
        "#              directory\n"
        "# Keys marked \"SIGHUP reloads it\" take effect on kill -HUP; a change to any\n"
        "# other key is logged as \"restart needed\" and waits for the next start.\n";

int config_write_annotated(struct buf *out)
{
	int rc = put(out, annotated_header);
	const char *section = "";
	for (size_t i = 0; i < NKEYS && rc == 0; i++) {
		const struct key *k = &keys[i];
		if (strcmp(section, k->section) != 0) {
			section = k->section;
			rc = buf_appendf(out, "\n[%s]\n", section);
		}
		if (rc == 0)
			rc = put(out, "\n");
		if (rc == 0)
			rc = put_wrapped(out, k->help);
		if (rc == 0)
			rc = put_type_line(out, k);
		if (rc == 0)
			rc = buf_appendf(out, *k->def ? "%s = %s\n" : "%s =%s\n", k->name, k->def);
	}
	return rc;
}

/* ---- JSON for /status ---- */

static int put_json_value(struct buf *out, const struct key *k, const void *v)
{
	char tmp[CONFIG_HOST_MAX + 16];
	switch (k->type) {
	case T_STRING:
	case T_PATH:
	case T_TABLES:
		return buf_append_json_str(out, v);
	case T_SECRET:
		return buf_append_json_str(out, *(const char *)v ? "***" : "");
	case T_BOOL:
		return put(out, *(const bool *)v ? "true" : "false");
	case T_INT:
		return buf_appendf(out, "%d", *(const int *)v);
	case T_SIZE:
	case T_DURATION:
		return buf_appendf(out, "%" PRIu64, *(const uint64_t *)v);
	case T_ENUM:
		return buf_append_json_str(out, k->choices[*(const int *)v]);
	case T_ADDR:
		config_addr_format(v, tmp, sizeof(tmp));
		return buf_append_json_str(out, tmp);
	case T_ADDR_LIST: {
		const struct config_addr_list *l = v;
		int rc = put(out, "[");
		for (size_t i = 0; i < l->n && rc == 0; i++) {
			config_addr_format(&l->v[i], tmp, sizeof(tmp));
			rc = i ? put(out, ",") : 0;
			if (rc == 0)
				rc = buf_append_json_str(out, tmp);
		}
		return rc ? rc : put(out, "]");
	}
	}
	return -EINVAL;
}

int config_dump_json(const struct config *cfg, struct buf *out)
{
	int rc = put(out, "{");
	const char *section = NULL;
	for (size_t i = 0; i < NKEYS && rc == 0; i++) {
		const struct key *k = &keys[i];
		if (!section || strcmp(section, k->section) != 0) {
			rc = buf_appendf(out, "%s\"%s\":{", section ? "}," : "", k->section);
			section = k->section;
		} else {
			rc = put(out, ",");
		}
		if (rc == 0)
			rc = buf_appendf(out, "\"%s\":", k->name);
		if (rc == 0)
			rc = put_json_value(out, k, cfield(cfg, k));
	}
	return rc ? rc : put(out, "}}");
}

/* One identifier of a table list: bare ([A-Za-z0-9_$] and bytes >= 0x80, as
 * MySQL allows unquoted) or backticked with `` for a backtick. */
static const char *parse_ident(const char *p, char *out, size_t n, char *msg, size_t mn)
{
	size_t len = 0;
	if (*p == '`') {
		for (p++;; p++) {
			if (*p == '\0')
				return fail(msg, mn, "unterminated backtick"), NULL;
			if (*p == '`') {
				if (p[1] != '`')
					break;
				p++;
			}
			if (len + 1 >= n)
				return fail(msg, mn, "name longer than %zu bytes", n - 1), NULL;
			out[len++] = *p;
		}
		p++;
	} else {
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '$' ||
		       (unsigned char)*p >= 0x80) {
			if (len + 1 >= n)
				return fail(msg, mn, "name longer than %zu bytes", n - 1), NULL;
			out[len++] = *p++;
		}
	}
	if (len == 0)
		return fail(msg, mn, "expected a name"), NULL;
	out[len] = '\0';
	return p;
}

int config_parse_tables(const char *v, struct config_table_list *out, char *msg, size_t n)
{
	memset(out, 0, sizeof(*out));
	while (isspace((unsigned char)*v))
		v++;
	if (strcasecmp(v, "auto") == 0) {
		out->auto_admit = true;
		return 0;
	}
	if (*v == '\0')
		return 0;
	const char *p = v;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (out->n == CONFIG_TABLES_MAX)
			return fail(msg, n, "more than %d tables", CONFIG_TABLES_MAX);
		struct config_table *t = &out->v[out->n];
		char why[128];
		if (!(p = parse_ident(p, t->db, sizeof(t->db), why, sizeof(why))) || *p != '.' ||
		    !(p = parse_ident(p + 1, t->table, sizeof(t->table), why, sizeof(why))) ||
		    *p != '(' ||
		    !(p = parse_ident(p + 1, t->column, sizeof(t->column), why, sizeof(why))) ||
		    *p != ')')
			return fail(msg, n, "table %zu: expected db.table(column)", out->n + 1);
		p++;
		for (size_t i = 0; i < out->n; i++)
			if (!strcmp(out->v[i].db, t->db) && !strcmp(out->v[i].table, t->table) &&
			    !strcmp(out->v[i].column, t->column))
				return fail(msg, n, "table %zu repeats table %zu", out->n + 1,
				            i + 1);
		out->n++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return fail(msg, n, "table %zu: expected ',' after it", out->n);
		p++;
	}
	return 0;
}
