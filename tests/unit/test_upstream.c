/* Unit tests for src/core/upstream: the description built from config
 * values (and the values it refuses), the --check-config warnings, and the
 * health shared by sessions and cache connections. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/upstream.h"

static void quiet(void)
{
	log_set_level(LOG_ERROR);
}

TestSuite(upstream, .init = quiet);

static struct config cfg;
static struct upstream_target target;
static char err[512];

/* A config from INI text, asserting that the parser takes it. */
static void parse(const char *text)
{
	struct config_err e;
	int rc = config_parse_string(text, "t.conf", &cfg, &e);
	cr_assert_eq(rc, 0, "%s: %d: %s", text, e.line, e.msg);
}

Test(upstream, defaults)
{
	config_init_defaults(&cfg);
	cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(target.n_servers, 1);
	cr_assert_str_eq(target.servers[0].host, "127.0.0.1");
	cr_assert_eq(target.servers[0].port, 4000);
	cr_assert_str_eq(target.servers[0].name, "127.0.0.1:4000");
	cr_assert(target.tls && target.tls_verify);
	cr_assert_str_eq(target.ca_file, "");
	cr_assert_eq(target.tls_min_minor, 2);
	cr_assert_eq(target.connect_timeout_ms, 5000);
	cr_assert_eq(target.read_timeout_ms, 600000);
	cr_assert_str_eq(upstream_verify_name(&target, 0), "127.0.0.1");
	cr_assert(!upstream_name_differs(&target, 0));
	cr_assert_str_eq(upstream_tls_versions(&target), "TLSv1.2,TLSv1.3");
}

Test(upstream, every_key_reaches_the_description)
{
	parse("[upstream]\n"
	      "servers = db1.example:4000, [::1]:4001, 10.0.0.7:4002\n"
	      "tls_ca_file = /etc/ca.pem\n"
	      "tls_server_name = tidb.example\n"
	      "tls_cert = /etc/client.pem\n"
	      "tls_key = /etc/client-key.pem\n"
	      "tls_min_version = 1.3\n"
	      "connect_timeout = 1500ms\n"
	      "[cache]\n"
	      "load_timeout = 90s\n");
	cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(target.n_servers, 3);
	cr_assert_str_eq(target.servers[0].host, "db1.example");
	cr_assert_str_eq(target.servers[1].host, "::1");
	cr_assert_eq(target.servers[1].port, 4001);
	cr_assert_str_eq(target.servers[1].name, "[::1]:4001");
	cr_assert_str_eq(target.servers[2].name, "10.0.0.7:4002");
	cr_assert_str_eq(target.ca_file, "/etc/ca.pem");
	cr_assert_str_eq(target.cert_file, "/etc/client.pem");
	cr_assert_str_eq(target.key_file, "/etc/client-key.pem");
	cr_assert_eq(target.tls_min_minor, 3);
	cr_assert_str_eq(upstream_tls_versions(&target), "TLSv1.3");
	cr_assert_eq(target.connect_timeout_ms, 1500);
	cr_assert_eq(target.read_timeout_ms, 90000);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_str_eq(upstream_verify_name(&target, i), "tidb.example");
		cr_assert(upstream_name_differs(&target, i));
	}
}

Test(upstream, a_name_equal_to_the_host_is_checked_by_address)
{
	parse("[upstream]\nservers = TiDB.example:4000, 127.0.0.1:4000\n"
	      "tls_server_name = tidb.example\n");
	cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), 0, "%s", err);
	cr_assert(!upstream_name_differs(&target, 0)); /* names compare without case */
	cr_assert(upstream_name_differs(&target, 1));
}

Test(upstream, verification_needs_tls)
{
	parse("[upstream]\ntls = false\ntls_verify = true\n");
	cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), 0, "%s", err);
	cr_assert(!target.tls && !target.tls_verify);
}

Test(upstream, timeouts_in_whole_seconds_round_up)
{
	cr_assert_eq(upstream_timeout_s(100), 1);
	cr_assert_eq(upstream_timeout_s(1000), 1);
	cr_assert_eq(upstream_timeout_s(1001), 2);
	cr_assert_eq(upstream_timeout_s(1500), 2);
	cr_assert_eq(upstream_timeout_s(300000), 300);
	cr_assert_eq(upstream_timeout_s(0), 1); /* never "no timeout" */
}

Test(upstream, server_names_that_are_accepted)
{
	static const char *const good[] = {
	        "tidb.example.com",
	        "tidb",
	        "tidb-0.tidb-peer.ns.svc",
	        "internal_name.corp",
	        "10.1.2.3",
	        "::1",
	        "fe80::1",
	        "a23456789012345678901234567890123456789012345678901234567890123.example",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		config_init_defaults(&cfg);
		snprintf(cfg.upstream.tls_server_name, sizeof(cfg.upstream.tls_server_name), "%s",
		         good[i]);
		cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), 0,
		             "%s: %s", good[i], err);
		cr_assert_str_eq(upstream_verify_name(&target, 0), good[i]);
	}
}

/* Values the config parser takes but no link could use: each refused with
 * a message naming the key and the reason. */
struct bad_case {
	const char *what;
	void (*set)(struct config *c);
	const char *msg;
};

static void name_empty_label(struct config *c)
{
	strcpy(c->upstream.tls_server_name, "tidb..example");
}
static void name_trailing_dot(struct config *c)
{
	strcpy(c->upstream.tls_server_name, "tidb.example.");
}
static void name_leading_dot(struct config *c)
{
	strcpy(c->upstream.tls_server_name, ".tidb.example");
}
static void name_space(struct config *c)
{
	strcpy(c->upstream.tls_server_name, "tidb example");
}
static void name_wildcard(struct config *c)
{
	strcpy(c->upstream.tls_server_name, "*.example.com");
}
static void name_leading_hyphen(struct config *c)
{
	strcpy(c->upstream.tls_server_name, "-tidb.example");
}
static void name_trailing_hyphen(struct config *c)
{
	strcpy(c->upstream.tls_server_name, "tidb-.example");
}
static void name_long_label(struct config *c)
{
	memset(c->upstream.tls_server_name, 'a', 64);
	strcpy(c->upstream.tls_server_name + 64, ".example");
}
static void name_too_long(struct config *c)
{
	char *p = c->upstream.tls_server_name;
	for (int i = 0; i < 51; i++, p += 5)
		memcpy(p, "abcd.", 5);
	strcpy(p, "end");
}
static void name_slash(struct config *c)
{
	strcpy(c->upstream.tls_server_name, "tidb.example/x");
}
static void no_servers(struct config *c)
{
	c->upstream.servers.n = 0;
}
static void server_without_host(struct config *c)
{
	c->upstream.servers.v[0].host[0] = '\0';
}
static void server_without_port(struct config *c)
{
	c->upstream.servers.v[0].port = 0;
}
static void server_twice(struct config *c)
{
	c->upstream.servers.n = 2;
	c->upstream.servers.v[1] = c->upstream.servers.v[0];
	strcpy(c->upstream.servers.v[1].host, "127.0.0.1");
}
static void cert_without_key(struct config *c)
{
	strcpy(c->upstream.tls_cert, "/etc/client.pem");
}
static void key_without_cert(struct config *c)
{
	strcpy(c->upstream.tls_key, "/etc/client-key.pem");
}
static void unknown_tls_version(struct config *c)
{
	c->upstream.tls_min_version = 7;
}
static void zero_connect_timeout(struct config *c)
{
	c->upstream.connect_timeout = 0;
}
static void zero_load_timeout(struct config *c)
{
	c->cache.load_timeout = 0;
}

static const struct bad_case bad_cases[] = {
        {"empty label", name_empty_label,
         "[upstream] tls_server_name 'tidb..example' has an empty label"},
        {"trailing dot", name_trailing_dot, "ends with a dot"},
        {"leading dot", name_leading_dot, "has an empty label"},
        {"space", name_space, "has a character not allowed in a host name"},
        {"wildcard", name_wildcard, "is a wildcard"},
        {"leading hyphen", name_leading_hyphen, "has a label starting with '-'"},
        {"trailing hyphen", name_trailing_hyphen, "has a label ending with '-'"},
        {"64-byte label", name_long_label, "has a label longer than 63 characters"},
        {"254 bytes", name_too_long, "longer than 253 characters"},
        {"slash", name_slash, "has a character not allowed in a host name"},
        {"no server", no_servers, "[upstream] servers: no server"},
        {"no host", server_without_host, "[upstream] servers: server 1 has no host"},
        {"no port", server_without_port, "[upstream] servers: server 1 has no port"},
        {"twice", server_twice, "127.0.0.1:4000 is listed twice (servers 1 and 2)"},
        {"cert alone", cert_without_key, "[upstream] tls_cert needs tls_key"},
        {"key alone", key_without_cert, "[upstream] tls_key needs tls_cert"},
        {"tls version", unknown_tls_version, "[upstream] tls_min_version: not TLS 1.2 or 1.3"},
        {"connect timeout", zero_connect_timeout, "[upstream] connect_timeout: must be more"},
        {"load timeout", zero_load_timeout, "[cache] load_timeout: must be more"},
};

Test(upstream, malformed_values_are_refused)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *b = &bad_cases[i];
		config_init_defaults(&cfg);
		b->set(&cfg);
		err[0] = '\0';
		cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), -EINVAL,
		             "%s: accepted", b->what);
		cr_assert(strstr(err, b->msg), "%s: got '%s', want '%s'", b->what, err, b->msg);
		cr_assert(!strchr(err, '\n'), "%s: one line", b->what);
	}
}

Test(upstream, tls_versions_below_1_2_do_not_parse)
{
	static const char *const old[] = {"1.0", "1.1", "TLSv1.1", "ssl3"};
	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		char text[128];
		struct config_err e;
		snprintf(text, sizeof(text), "[upstream]\ntls_min_version = %s\n", old[i]);
		cr_assert_eq(config_parse_string(text, "t.conf", &cfg, &e), -EINVAL, "%s", old[i]);
		cr_assert_eq(e.line, 2);
		cr_assert(strstr(e.msg, "tls_min_version"), "%s", e.msg);
	}
}

/* ---- warnings ---- */

struct collected {
	size_t n;
	char lines[8][600];
};

static void collect(void *ctx, const char *line)
{
	struct collected *c = ctx;
	if (c->n < 8)
		snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", line);
	c->n++;
}

/* A config that leaves no link weaker than another: the base of every
 * case below, which changes one thing. */
#define SAFE                                                                                       \
	"[server]\ntls_cert = /etc/vg.pem\ntls_key = /etc/vg-key.pem\nrequire_tls = true\n"        \
	"[upstream]\ntls_ca_file = /etc/ca.pem\n"

struct warn_case {
	const char *what;
	const char *text;
	const char *want[3]; /* each must be one of the lines; NULL-terminated */
	size_t n;            /* lines in all */
};

static const struct warn_case warn_cases[] = {
        {"safe", SAFE, {NULL}, 0},
        {"safe with the cache", SAFE "[cache]\ntables = auto\n", {NULL}, 0},
        {"upstream TLS off",
         SAFE "tls = false\n",
         {"[upstream] tls = false: sessions send logins, statements and rows to TiDB in clear",
          "[upstream] tls_ca_file is set but tls = false: it has no effect"},
         2},
        {"upstream TLS off, cache on",
         "[server]\ntls_cert = /a\ntls_key = /b\nrequire_tls = true\n[upstream]\ntls = false\n"
         "[cache]\ntables = d.t(v)\n",
         {"[upstream] tls = false: sessions, snapshot loads and patches send logins"},
         1},
        {"upstream TLS off, every TLS key set",
         SAFE "tls = false\ntls_server_name = tidb\ntls_cert = /c\ntls_key = /k\n"
              "tls_min_version = 1.3\n",
         {"[upstream] tls_server_name is set but tls = false",
          "[upstream] tls_key is set but tls = false",
          "[upstream] tls_min_version is set but tls = false"},
         6},
        {"unverified",
         SAFE "tls_verify = false\n",
         {"[upstream] tls_verify = false: no link checks TiDB's certificate"},
         1},
        {"client side in clear",
         "[upstream]\ntls_ca_file = /etc/ca.pem\n",
         {"[server] tls_cert is empty while [upstream] tls is on"},
         1},
        {"client side TLS optional",
         "[server]\ntls_cert = /a\ntls_key = /b\n",
         {"[server] require_tls = false while [upstream] tls is on"},
         1},
        {"client side older TLS",
         SAFE "tls_min_version = 1.3\n",
         {"[server] tls_min_version 1.2 is below [upstream] tls_min_version 1.3"},
         1},
        {"upstream older TLS",
         "[server]\ntls_cert = /a\ntls_key = /b\nrequire_tls = true\ntls_min_version = 1.3\n",
         {"[upstream] tls_min_version 1.2 is below [server] tls_min_version 1.3"},
         1},
        {"a name libmariadb cannot check",
         SAFE "tls_server_name = tidb.example\n[cache]\ntables = auto\n",
         {"[upstream] tls_server_name = tidb.example: libmariadb checks only the address"},
         1},
        {"that name without the cache", SAFE "tls_server_name = tidb.example\n", {NULL}, 0},
        {"that name is the host",
         SAFE "servers = tidb.example:4000\ntls_server_name = tidb.example\n[cache]\n"
              "tables = auto\n",
         {NULL},
         0},
        {"admin on every interface",
         SAFE "[admin]\nlisten = 0.0.0.0:9100\n",
         {"[admin] listen = 0.0.0.0:9100 is not a loopback address"},
         1},
        {"admin on IPv6 loopback", SAFE "[admin]\nlisten = [::1]:9100\n", {NULL}, 0},
        {"admin on localhost", SAFE "[admin]\nlisten = localhost:9100\n", {NULL}, 0},
        {"admin off", SAFE "[admin]\nlisten =\n", {NULL}, 0},
};

Test(upstream, check_config_warnings)
{
	for (size_t i = 0; i < sizeof(warn_cases) / sizeof(warn_cases[0]); i++) {
		const struct warn_case *w = &warn_cases[i];
		parse(w->text);
		struct collected got = {0};
		size_t n = upstream_config_warnings(&cfg, collect, &got);
		cr_assert_eq(n, got.n, "%s", w->what);
		cr_assert_eq(n, w->n, "%s: %zu warnings, first: %s", w->what, n,
		             n ? got.lines[0] : "-");
		for (size_t k = 0; k < 3 && w->want[k]; k++) {
			bool found = false;
			for (size_t j = 0; j < got.n && j < 8; j++)
				found |= strstr(got.lines[j], w->want[k]) != NULL;
			cr_assert(found, "%s: no line with '%s'", w->what, w->want[k]);
		}
		for (size_t j = 0; j < got.n && j < 8; j++)
			cr_assert(!strchr(got.lines[j], '\n'), "%s: one line each", w->what);
	}
}

/* The key-pair rule: the parser refuses the file, and the warning stands
 * for a config built some other way. */
Test(upstream, client_certificate_without_key_warns)
{
	config_init_defaults(&cfg);
	strcpy(cfg.upstream.tls_cert, "/etc/client.pem");
	struct collected got = {0};
	upstream_config_warnings(&cfg, collect, &got);
	bool found = false;
	for (size_t j = 0; j < got.n; j++)
		found |= strstr(got.lines[j], "[upstream] tls_cert without tls_key") != NULL;
	cr_assert(found);
	cr_assert_eq(upstream_config_warnings(&cfg, NULL, NULL), got.n);
}

/* ---- health ---- */

static struct upstream_group *three_servers(void)
{
	parse("[upstream]\nservers = 127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3\n"
	      "health_check_interval = 1s\n");
	cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), 0, "%s", err);
	struct upstream_group *u = upstream_group_new(&target, NULL, 1000);
	cr_assert(u);
	return u;
}

Test(upstream, health_backs_off_and_recovers)
{
	struct upstream_group *u = three_servers();
	struct upstream_health h;
	upstream_health(u, 1, &h);
	cr_assert(h.healthy);
	cr_assert_eq(h.failures, 0);

	uint64_t t0 = core_now_ms();
	upstream_failed(u, 1, "connect: connection refused");
	upstream_health(u, 1, &h);
	cr_assert(!h.healthy);
	cr_assert_eq(h.failures, 1);
	cr_assert_str_eq(h.last_error, "connect: connection refused");
	cr_assert(h.retry_at_ms >= t0 + 200 && h.retry_at_ms <= core_now_ms() + 200);

	/* 200, 400, 800, then the 1 s cap. */
	for (int i = 0; i < 4; i++)
		upstream_failed(u, 1, "again");
	upstream_health(u, 1, &h);
	cr_assert_eq(h.failures, 5);
	cr_assert(h.retry_at_ms <= core_now_ms() + 1000 && h.retry_at_ms >= t0 + 1000);

	upstream_reachable(u, 1);
	upstream_health(u, 1, &h);
	cr_assert(h.healthy);
	cr_assert_eq(h.retry_at_ms, 0);
	cr_assert_str_eq(h.last_error, "");
	cr_assert_eq(h.failures, 5); /* a count, not a state */

	/* After recovering, a new failure starts the back-off over. */
	upstream_failed(u, 1, "x");
	upstream_health(u, 1, &h);
	cr_assert(h.retry_at_ms <= core_now_ms() + 200);
	upstream_group_free(u);
}

Test(upstream, order_puts_healthy_servers_first_and_rotates)
{
	struct upstream_group *u = three_servers();
	size_t order[CONFIG_ADDRS_MAX];
	size_t firsts[3];
	for (int k = 0; k < 3; k++) {
		cr_assert_eq(upstream_order(u, order), 3);
		firsts[k] = order[0];
	}
	cr_assert(firsts[0] != firsts[1] && firsts[1] != firsts[2] && firsts[0] != firsts[2],
	          "each server comes first in turn");

	upstream_failed(u, 0, "down");
	for (int k = 0; k < 3; k++) {
		cr_assert_eq(upstream_order(u, order), 3);
		cr_assert(order[0] != 0 && order[1] != 0, "a failed server comes last");
		cr_assert_eq(order[2], 0);
	}
	upstream_failed(u, 1, "down");
	upstream_failed(u, 1, "down"); /* backs off longer than server 0 */
	cr_assert_eq(upstream_order(u, order), 3);
	cr_assert_eq(order[0], 2);
	upstream_set_timeouts(u, 5000, 600000, 1000);
	uint64_t c, r;
	upstream_timeouts(u, &c, &r);
	cr_assert_eq(c, 5000);
	cr_assert_eq(r, 600000);
	upstream_group_free(u);
}

/* Least connections: the healthy server with the fewest sessions comes
 * first; equals take turns; a session that ends counts no more. */
Test(upstream, order_prefers_fewest_sessions)
{
	struct upstream_group *u = three_servers();
	size_t order[CONFIG_ADDRS_MAX];
	upstream_sessions_add(u, 0, 1);
	upstream_sessions_add(u, 0, 1);
	upstream_sessions_add(u, 1, 1);
	for (int k = 0; k < 4; k++) {
		cr_assert_eq(upstream_order(u, order), 3);
		cr_assert_eq(order[0], 2);
		cr_assert_eq(order[1], 1);
		cr_assert_eq(order[2], 0);
	}
	struct upstream_health h;
	upstream_health(u, 0, &h);
	cr_assert_eq(h.sessions, 2);

	/* Balancing by taking the first each time spreads 30 sessions evenly
	 * over servers that started at 2, 1 and 0. */
	int got[3] = {2, 1, 0};
	for (int k = 0; k < 30; k++) {
		upstream_order(u, order);
		upstream_sessions_add(u, order[0], 1);
		got[order[0]]++;
	}
	cr_assert(got[0] == 11 && got[1] == 11 && got[2] == 11, "%d %d %d", got[0], got[1], got[2]);

	/* Equal counts: each server comes first in turn. */
	bool first[3] = {false, false, false};
	for (int k = 0; k < 3; k++) {
		upstream_order(u, order);
		first[order[0]] = true;
	}
	cr_assert(first[0] && first[1] && first[2]);

	/* A failed server comes after every healthy one, however idle. */
	for (int k = 0; k < 11; k++)
		upstream_sessions_add(u, 2, -1);
	upstream_failed(u, 2, "down");
	upstream_order(u, order);
	cr_assert_eq(order[2], 2);
	/* Ending more sessions than were counted stops at 0. */
	upstream_sessions_add(u, 2, -5);
	upstream_health(u, 2, &h);
	cr_assert_eq(h.sessions, 0);
	upstream_group_free(u);
}

/* With every server down, links try those whose back-off is over first,
 * then the others by when their back-off ends. */
Test(upstream, order_without_healthy_servers_follows_back_off)
{
	struct upstream_group *u = three_servers();
	size_t order[CONFIG_ADDRS_MAX];
	for (int k = 0; k < 3; k++)
		upstream_failed(u, 0, "down"); /* 800 ms */
	upstream_failed(u, 1, "down");         /* 200 ms */
	upstream_failed(u, 2, "down");
	upstream_failed(u, 2, "down"); /* 400 ms */
	cr_assert_eq(upstream_healthy_count(u), 0);
	cr_assert_eq(upstream_order(u, order), 3);
	cr_assert_eq(order[0], 1);
	cr_assert_eq(order[1], 2);
	cr_assert_eq(order[2], 0);
	upstream_reachable(u, 0);
	cr_assert_eq(upstream_healthy_count(u), 1);
	upstream_order(u, order);
	cr_assert_eq(order[0], 0);
	upstream_group_free(u);
}

/* A health check is recorded as the last check and counts as a link: a
 * failed one takes the server out, a passing one puts it back. */
Test(upstream, health_checks_take_servers_out_and_back)
{
	struct upstream_group *u = three_servers();
	struct upstream_health h;
	upstream_health(u, 1, &h);
	cr_assert_eq(h.last_check_ms, 0);
	cr_assert_eq(h.checks, 0);
	cr_assert_eq(upstream_check_interval(u), 1000);

	uint64_t t0 = core_now_ms();
	upstream_checked(u, 1, false, "health check: connect: connection refused");
	upstream_health(u, 1, &h);
	cr_assert(!h.healthy);
	cr_assert_eq(h.checks, 1);
	cr_assert_eq(h.failures, 1);
	cr_assert(!h.last_check_ok);
	cr_assert(h.last_check_ms >= t0);
	cr_assert_str_eq(h.last_error, "health check: connect: connection refused");

	upstream_checked(u, 1, true, NULL);
	upstream_health(u, 1, &h);
	cr_assert(h.healthy);
	cr_assert(h.last_check_ok);
	cr_assert_eq(h.checks, 2);
	cr_assert_eq(h.failures, 1);
	cr_assert_str_eq(h.last_error, "");

	upstream_set_timeouts(u, 5000, 600000, 250);
	cr_assert_eq(upstream_check_interval(u), 250);
	upstream_group_free(u);
}

/* The per-server series in /metrics follow health and sessions. */
Test(upstream, metrics_per_server)
{
	parse("[upstream]\nservers = 127.0.0.1:7701, 127.0.0.1:7702\n");
	cr_assert_eq(upstream_target_from_config(&cfg, &target, err, sizeof(err)), 0, "%s", err);
	struct upstream_group *u = upstream_group_new(&target, NULL, 1000);
	cr_assert(u);
	upstream_sessions_add(u, 0, 3);
	upstream_failed(u, 1, "connect: connection refused");
	upstream_failed(u, 1, "connect: connection refused");
	upstream_checked(u, 1, false, "health check: timed out");
	upstream_checked(u, 0, true, NULL);
	struct buf b;
	buf_init(&b);
	cr_assert_eq(metrics_render(&b), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	const char *text = (const char *)b.data;
	static const char *const want[] = {
	        "vecgate_upstream_up{server=\"127.0.0.1:7701\"} 1\n",
	        "vecgate_upstream_up{server=\"127.0.0.1:7702\"} 0\n",
	        "vecgate_upstream_sessions{server=\"127.0.0.1:7701\"} 3\n",
	        "vecgate_upstream_sessions{server=\"127.0.0.1:7702\"} 0\n",
	        "vecgate_upstream_connect_failures_total{server=\"127.0.0.1:7702\"} 3\n",
	        "vecgate_upstream_connect_failures_total{server=\"127.0.0.1:7701\"} 0\n",
	        "vecgate_upstream_health_checks_total{server=\"127.0.0.1:7701\",result=\"ok\"} 1\n",
	        "vecgate_upstream_health_checks_total{server=\"127.0.0.1:7702\",result=\"failed\"} "
	        "1\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert(strstr(text, want[i]), "missing %s in\n%s", want[i], text);
	buf_free(&b);
	upstream_group_free(u);
}
