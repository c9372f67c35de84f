/* Unit tests for src/core/config: every value type, bounds, file:line errors,
 * rules between keys, reload, the annotated file and the committed conf/. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

static void quiet(void)
{
	log_set_level(LOG_ERROR);
}

TestSuite(config, .init = quiet);

/* Parses text; returns rc and leaves the result in the statics below. */
static struct config cfg;
static struct config_err err;

static int parse(const char *text)
{
	return config_parse_string(text, "t.conf", &cfg, &err);
}

Test(config, defaults)
{
	config_init_defaults(&cfg);
	cr_assert_str_eq(cfg.server.listen.host, "127.0.0.1");
	cr_assert_eq(cfg.server.listen.port, 4100);
	cr_assert_eq(cfg.server.max_client_conns, 1000);
	cr_assert_eq(cfg.server.max_pending_logins, 64);
	cr_assert_eq(cfg.server.max_packet_size, 1ULL << 30);
	cr_assert_eq(cfg.server.handshake_timeout, 10000);
	cr_assert_eq(cfg.server.idle_timeout, 0);
	cr_assert_eq(cfg.server.drain_timeout, 30000);
	cr_assert_eq(cfg.server.log_level, LOG_INFO);
	cr_assert_eq(cfg.server.log_format, LOG_FORMAT_TEXT);
	cr_assert_str_eq(cfg.server.tls_cert, "");
	cr_assert_eq(cfg.server.require_tls, false);
	cr_assert_eq(cfg.server.workers, 0); /* one per core */
	cr_assert_eq(cfg.upstream.servers.n, 1);
	cr_assert_str_eq(cfg.upstream.servers.v[0].host, "127.0.0.1");
	cr_assert_eq(cfg.upstream.servers.v[0].port, 4000);
	cr_assert(cfg.upstream.tls);
	cr_assert(cfg.upstream.tls_verify);
	cr_assert_eq(cfg.upstream.tls_min_version, CONFIG_TLS_1_2);
	cr_assert_eq(cfg.upstream.connect_timeout, 5000);
	cr_assert_eq(cfg.upstream.pool_spares, 4);
	cr_assert_eq(cfg.upstream.spare_max_age, 3000);
	cr_assert_str_eq(cfg.admin.listen.host, "127.0.0.1");
	cr_assert_eq(cfg.admin.listen.port, 9100);
	config_free(&cfg);
}

Test(config, log_levels_match_enum)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++) {
		char text[64];
		snprintf(text, sizeof(text), "[server]\nlog_level = %s\n", names[i]);
		cr_assert_eq(parse(text), 0);
		cr_assert_eq(cfg.server.log_level, i);
		cr_assert_eq(log_level_from_name(names[i]), i);
	}
}

enum kind { K_INT, K_U64, K_BOOL };

struct good {
	const char *text;
	size_t off;
	enum kind kind;
	uint64_t want;
};

#define OFF(f) offsetof(struct config, f)

static const struct good goods[] = {
        {"[server]\nmax_packet_size = 1K", OFF(server.max_packet_size), K_U64, 1024},
        {"[server]\nmax_packet_size = 1k", OFF(server.max_packet_size), K_U64, 1024},
        {"[server]\nmax_packet_size = 2KiB", OFF(server.max_packet_size), K_U64, 2048},
        {"[server]\nmax_packet_size = 64M", OFF(server.max_packet_size), K_U64, 64 << 20},
        {"[server]\nmax_packet_size = 3MiB", OFF(server.max_packet_size), K_U64, 3 << 20},
        {"[server]\nmax_packet_size = 1GiB", OFF(server.max_packet_size), K_U64, 1 << 30},
        {"[server]\nmax_packet_size = 1g", OFF(server.max_packet_size), K_U64, 1 << 30},
        {"[server]\nmax_packet_size = 4096", OFF(server.max_packet_size), K_U64, 4096},
        {"[server]\nmax_packet_size = 1073741824", OFF(server.max_packet_size), K_U64, 1 << 30},
        {"[server]\nhandshake_timeout = 500ms", OFF(server.handshake_timeout), K_U64, 500},
        {"[server]\nhandshake_timeout = 100ms", OFF(server.handshake_timeout), K_U64, 100},
        {"[server]\nhandshake_timeout = 7", OFF(server.handshake_timeout), K_U64, 7000},
        {"[server]\nhandshake_timeout = 2s", OFF(server.handshake_timeout), K_U64, 2000},
        {"[server]\nhandshake_timeout = 10m", OFF(server.handshake_timeout), K_U64, 600000},
        {"[server]\nidle_timeout = 1h", OFF(server.idle_timeout), K_U64, 3600000},
        {"[server]\nidle_timeout = 0", OFF(server.idle_timeout), K_U64, 0},
        {"[server]\nidle_timeout = 0ms", OFF(server.idle_timeout), K_U64, 0},
        {"[server]\nidle_timeout = 720h", OFF(server.idle_timeout), K_U64, 720ULL * 3600000},
        {"[server]\nrequire_tls = true\ntls_cert = c\ntls_key = k", OFF(server.require_tls), K_BOOL,
         1},
        {"[upstream]\ntls = yes", OFF(upstream.tls), K_BOOL, 1},
        {"[upstream]\ntls = On", OFF(upstream.tls), K_BOOL, 1},
        {"[upstream]\ntls = 1", OFF(upstream.tls), K_BOOL, 1},
        {"[upstream]\ntls = FALSE", OFF(upstream.tls), K_BOOL, 0},
        {"[upstream]\ntls = no", OFF(upstream.tls), K_BOOL, 0},
        {"[upstream]\ntls = off", OFF(upstream.tls), K_BOOL, 0},
        {"[upstream]\ntls = 0", OFF(upstream.tls), K_BOOL, 0},
        {"[server]\nbacklog = 65535", OFF(server.backlog), K_INT, 65535},
        {"[server]\nworkers = 1", OFF(server.workers), K_INT, 1},
        {"[server]\nbacklog = 007", OFF(server.backlog), K_INT, 7},
        {"[upstream]\npool_spares = 0", OFF(upstream.pool_spares), K_INT, 0},
        {"[server]\nlog_level = DEBUG", OFF(server.log_level), K_INT, LOG_DEBUG},
        {"[server]\nlog_format = json", OFF(server.log_format), K_INT, LOG_FORMAT_JSON},
        {"[server]\nlog_format = JSON", OFF(server.log_format), K_INT, LOG_FORMAT_JSON},
        {"[server]\nlog_format = text", OFF(server.log_format), K_INT, LOG_FORMAT_TEXT},
        {"[upstream]\ntls_min_version = 1.3", OFF(upstream.tls_min_version), K_INT, CONFIG_TLS_1_3},
};

Test(config, good_values)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		int rc = parse(g->text);
		cr_expect_eq(rc, 0, "%s: %d %s", g->text, err.line, err.msg);
		const char *p = (const char *)&cfg + g->off;
		uint64_t got = g->kind == K_INT   ? (uint64_t) * (const int *)p
		               : g->kind == K_U64 ? *(const uint64_t *)p
		                                  : (uint64_t) * (const bool *)p;
		cr_expect_eq(got, g->want, "%s: got %llu", g->text, (unsigned long long)got);
	}
}

Test(config, addresses)
{
	cr_assert_eq(parse("[server]\nlisten = [::1]:4100\n"), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.server.listen.host, "::1");
	cr_assert_eq(cfg.server.listen.port, 4100);
	char s[300];
	config_addr_format(&cfg.server.listen, s, sizeof(s));
	cr_assert_str_eq(s, "[::1]:4100");

	cr_assert_eq(parse("[server]\nlisten = 0.0.0.0:65535\n"), 0, "%s", err.msg);
	cr_assert_eq(cfg.server.listen.port, 65535);

	cr_assert_eq(parse("[upstream]\nservers = tidb-0.db.example.com:4000 , 10.0.0.2:4001,"
	                   "[fe80::1]:4002,db_1:1\n"),
	             0, "%s", err.msg);
	cr_assert_eq(cfg.upstream.servers.n, 4);
	cr_assert_str_eq(cfg.upstream.servers.v[0].host, "tidb-0.db.example.com");
	cr_assert_eq(cfg.upstream.servers.v[0].port, 4000);
	cr_assert_str_eq(cfg.upstream.servers.v[1].host, "10.0.0.2");
	cr_assert_str_eq(cfg.upstream.servers.v[2].host, "fe80::1");
	cr_assert_eq(cfg.upstream.servers.v[3].port, 1);

	cr_assert_eq(parse("[admin]\nlisten =\n"), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.admin.listen.host, "", "empty disables the admin endpoint");
	cr_assert_eq(parse("[admin]\nlisten = localhost:9200\n"), 0, "%s", err.msg);
	cr_assert_str_eq(cfg.admin.listen.host, "localhost");
}

struct bad {
	const char *text;
	int line;
	const char *msg; /* a substring of err.msg */
};

static const struct bad bads[] = {
        /* sizes */
        {"[server]\nmax_packet_size = 1T", 2, "expected a size"},
        {"[server]\nmax_packet_size = 1 G", 2, "expected a size"},
        {"[server]\nmax_packet_size = 1.5G", 2, "expected a size"},
        {"[server]\nmax_packet_size = G", 2, "expected a size"},
        {"[server]\nmax_packet_size = -1", 2, "expected a size"},
        {"[server]\nmax_packet_size = 1KB", 2, "expected a size"},
        {"[server]\nmax_packet_size =", 2, "expected a size"},
        {"[server]\nmax_packet_size = 1023", 2, "below the minimum 1K"},
        {"[server]\nmax_packet_size = 2G", 2, "above the maximum 1G"},
        {"[server]\nmax_packet_size = 1073741825", 2, "above the maximum 1G"},
        {"[server]\nmax_packet_size = 99999999999999999999", 2, "expected a size"},
        {"[server]\nmax_packet_size = 17179869184G", 2, "expected a size"},
        /* durations */
        {"[server]\nhandshake_timeout = 10S", 2, "expected a duration"},
        {"[server]\nhandshake_timeout = 1d", 2, "expected a duration"},
        {"[server]\nhandshake_timeout = 1.5s", 2, "expected a duration"},
        {"[server]\nhandshake_timeout = s", 2, "expected a duration"},
        {"[server]\nhandshake_timeout = 10mss", 2, "expected a duration"},
        {"[server]\nhandshake_timeout = 99ms", 2, "below the minimum 100ms"},
        {"[server]\nhandshake_timeout = 0", 2, "below the minimum"},
        {"[server]\nhandshake_timeout = 11m", 2, "above the maximum 10m"},
        {"[server]\nidle_timeout = 721h", 2, "above the maximum 720h"},
        {"[server]\nidle_timeout = 18446744073709551615h", 2, "expected a duration"},
        /* integers */
        {"[server]\nbacklog = 0", 2, "below the minimum 1"},
        {"[server]\nbacklog = 65536", 2, "above the maximum 65535"},
        {"[server]\nmax_pending_logins = 0", 2, "below the minimum 1"},
        {"[server]\nmax_pending_logins = 100001", 2, "above the maximum 100000"},
        {"[server]\nbacklog = 1e3", 2, "expected a whole number"},
        {"[server]\nbacklog = 0x10", 2, "expected a whole number"},
        {"[server]\nbacklog = +1", 2, "expected a whole number"},
        {"[server]\nbacklog = -1", 2, "expected a whole number"},
        {"[server]\nbacklog = 4294967297", 2, "expected a whole number"},
        {"[upstream]\npool_spares = 257", 2, "above the maximum 256"},
        /* booleans, enums */
        {"[upstream]\ntls = maybe", 2, "expected true or false"},
        {"[upstream]\ntls =", 2, "expected true or false"},
        {"[upstream]\ntls = 2", 2, "expected true or false"},
        {"[server]\nlog_level = verbose", 2, "expected one of error, warn, info, debug"},
        {"[server]\nlog_format = logfmt", 2, "log_format = logfmt: expected one of text, json"},
        {"[server]\nlog_format =", 2, "expected one of text, json"},
        {"[server]\nlog_format = json,text", 2, "expected one of text, json"},
        {"[upstream]\ntls_min_version = 1.1", 2, "expected one of 1.2, 1.3"},
        /* addresses */
        {"[server]\nlisten = localhost", 2, "missing :port"},
        {"[server]\nlisten =", 2, "empty address"},
        {"[server]\nlisten = ::1:4000", 2, "needs brackets"},
        {"[server]\nlisten = [::1]4000", 2, "expected [IPv6]:port"},
        {"[server]\nlisten = [::1]", 2, "expected [IPv6]:port"},
        {"[server]\nlisten = [::g]:1", 2, "bad IPv6 address"},
        {"[server]\nlisten = []:1", 2, "missing or too long host"},
        {"[server]\nlisten = :4000", 2, "missing or too long host"},
        {"[server]\nlisten = host:0", 2, "port must be 1..65535"},
        {"[server]\nlisten = host:65536", 2, "port must be 1..65535"},
        {"[server]\nlisten = host:", 2, "port must be 1..65535"},
        {"[server]\nlisten = host:12a", 2, "port must be 1..65535"},
        {"[server]\nlisten = host:-1", 2, "port must be 1..65535"},
        {"[server]\nlisten = -bad:1", 2, "bad host name"},
        {"[server]\nlisten = bad-:1", 2, "bad host name"},
        {"[server]\nlisten = a..b:1", 2, "bad host name"},
        {"[server]\nlisten = a b:1", 2, "bad host name"},
        {"[server]\nlisten = 1.2.3.256:1", 2, "bad host name or IPv4"},
        {"[server]\nlisten = a/b:1", 2, "bad host name"},
        {"[upstream]\nservers =", 2, "address 1: empty address"},
        {"[upstream]\nservers = a:1,", 2, "address 2: empty address"},
        {"[upstream]\nservers = a:1,,b:2", 2, "address 2: empty"},
        {"[upstream]\nservers = a:1, b:x", 2, "address 2: port"},
        {"[upstream]\nservers = a:1, b:2, a:1", 2, "address 3 repeats address 1"},
        /* strings */
        {"[upstream]\n\n\ntls_server_name = "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         4, "longer than 255 bytes"},
        /* structure */
        {"[server]\nlisten = 127.0.0.1:1\nbogus = 1\n", 3, "unknown key 'bogus' in [server]"},
        {"# c\n\n[server]\n\n[nope]\nx = 1\n[admin]\nlisten =\n", 5, "unknown section [nope]"},
        {"listen = 127.0.0.1:1\n[server]\n", 1, "'listen' is outside a section"},
        {"[server]\nbacklog = 2\n; again\nbacklog = 3\n", 4,
         "[server] backlog is already set on line 2"},
        {"[server\nworkers = 2\n", 1, "missing ']'"},
        {"[server]\nworkers 2\n", 2, "expected 'key = value'"},
        {"[server]\n[upstream]\ntls = true\n[server]\nlisten = a:1\nlisten = a:2\n", 6,
         "already set on line 5"},
        {"[Server]\nworkers = 2\n", 1, "unknown section [Server]"},
        {"[server]\nWorkers = 2\n", 2, "unknown key 'Workers'"},
        /* rules between keys: the later of the two keys' lines */
        {"[server]\ntls_cert = /c.pem\n", 2, "tls_cert and tls_key go together"},
        {"[server]\n\ntls_key = /k.pem\n", 3, "tls_cert and tls_key go together"},
        {"[server]\nrequire_tls = yes\n", 2, "require_tls needs tls_cert"},
        {"[server]\ntls_ca = /ca.pem\n", 2, "tls_ca (client certificates) needs tls_cert"},
        {"[upstream]\ntls_key = /k.pem\n", 2, "[upstream] tls_cert and tls_key go together"},
        {"[upstream]\nmax_lifetime = 5m\n", 2, "unknown key 'max_lifetime'"},
        {"[server]\nworkers = 65\n", 2, "above the maximum 64"},
        {"[server]\nworkers = -1\n", 2, "expected a whole number"},
        {"[admin]\nlisten = 127.0.0.1:4100\n", 2, "are the same address"},
};

Test(config, bad_values_and_lines)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		int rc = parse(b->text);
		cr_expect_eq(rc, -EINVAL, "%s: rc %d", b->text, rc);
		cr_expect_eq(err.line, b->line, "%s: line %d, want %d (%s)", b->text, err.line,
		             b->line, err.msg);
		cr_expect(strstr(err.msg, b->msg) != NULL, "%s: message '%s', want '%s'", b->text,
		          err.msg, b->msg);
		cr_expect_str_eq(err.file, "t.conf");
		cr_expect_geq(err.count, 1);
	}
}

Test(config, every_error_is_counted_the_first_is_kept)
{
	cr_assert_eq(parse("[server]\nworkers = x\n[bad]\nlisten = 1\n[upstream]\ntls = 3\n"),
	             -EINVAL);
	cr_assert_eq(err.line, 2);
	cr_assert_eq(err.count, 3, "workers, [bad]; 'listen' inside [bad] is skipped; tls");
	cr_assert_eq(parse("[server]\nnope = 1\nnope2 = 2\nworkers 1\n"), -EINVAL);
	cr_assert_eq(err.count, 3);
	cr_assert_eq(err.line, 2);
}

Test(config, comments_blank_lines_and_layout)
{
	const char *text = "\xEF\xBB\xBF# a comment\n"
	                   "; another\n"
	                   "\n"
	                   "   \n"
	                   "[server]\r\n"
	                   "  listen = 10.1.1.1:5000 ; inline comment\r\n"
	                   "\tbacklog=3\n"
	                   "max_client_conns: 7\n"
	                   "tls_cert = /etc/vecgate/a;b.pem\n"
	                   "tls_key = /etc/vecgate/key.pem\n"
	                   "[upstream]\n"
	                   "\n"
	                   "# servers = 1.1.1.1:1\n"
	                   "servers = h:1";
	cr_assert_eq(parse(text), 0, "%d: %s", err.line, err.msg);
	cr_assert_str_eq(cfg.server.listen.host, "10.1.1.1");
	cr_assert_eq(cfg.server.listen.port, 5000);
	cr_assert_eq(cfg.server.backlog, 3, "an indented key is a key, not a continuation");
	cr_assert_eq(cfg.server.max_client_conns, 7);
	cr_assert_str_eq(cfg.server.tls_cert, "/etc/vecgate/a;b.pem", "; needs a space before it");
	cr_assert_eq(cfg.upstream.servers.n, 1);
	cr_assert_str_eq(cfg.upstream.servers.v[0].host, "h");
	cr_assert_eq(parse(""), 0);
	cr_assert_eq(parse("\n\n# nothing\n"), 0);
}

Test(config, long_lines)
{
	/* A list of 64 addresses is about 1.4 KB: longer than inih's usual 200-byte line. */
	char text[CONFIG_LINE_MAX + 64];
	size_t n = (size_t)snprintf(text, sizeof(text), "[upstream]\nservers = ");
	for (int i = 0; i < CONFIG_ADDRS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%shost-%02d.example:4000",
		                      i ? ", " : "", i);
	cr_assert_eq(parse(text), 0, "%d: %s", err.line, err.msg);
	cr_assert_eq(cfg.upstream.servers.n, CONFIG_ADDRS_MAX);
	n += (size_t)snprintf(text + n, sizeof(text) - n, ", one-more:1");
	cr_assert_eq(parse(text), -EINVAL);
	cr_assert(strstr(err.msg, "more than 64 addresses"), "%s", err.msg);

	n = (size_t)snprintf(text, sizeof(text), "[server]\n\ntls_cert = ");
	memset(text + n, 'x', CONFIG_LINE_MAX);
	snprintf(text + n + CONFIG_LINE_MAX, sizeof(text) - n - CONFIG_LINE_MAX,
	         "\nbacklog = 2\nbogus = 1\n");
	cr_assert_eq(parse(text), -EINVAL);
	cr_assert_eq(err.line, 3, "%s", err.msg);
	cr_assert(strstr(err.msg, "line longer than"), "%s", err.msg);
	cr_assert_eq(err.count, 2, "the rest of the file is still read: bogus on line 5");
}

static char *tmpfile_with(const char *text, size_t n)
{
	static char path[] = "/tmp/vecgate-test-XXXXXX";
	strcpy(path, "/tmp/vecgate-test-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

Test(config, load_files)
{
	const char text[] = "[server]\nbacklog = 4\n";
	char *path = tmpfile_with(text, sizeof(text) - 1);
	cr_assert_eq(config_load(path, &cfg, &err), 0, "%s", err.msg);
	cr_assert_eq(cfg.server.backlog, 4);
	config_free(&cfg);
	unlink(path);

	const char nul[] = "[server]\n\nbacklog = 4\0\n";
	path = tmpfile_with(nul, sizeof(nul) - 1);
	cr_assert_eq(config_load(path, &cfg, &err), -EINVAL);
	cr_assert_eq(err.line, 3);
	cr_assert(strstr(err.msg, "NUL byte"), "%s", err.msg);
	cr_assert_str_eq(err.file, path);
	unlink(path);

	cr_assert_eq(config_load("/nonexistent/vecgate.conf", &cfg, &err), -ENOENT);
	cr_assert_eq(err.line, 0);
	cr_assert(strstr(err.msg, "cannot open"), "%s", err.msg);
	cr_assert_eq(config_load("/tmp", &cfg, &err), -EIO, "a directory: %s", err.msg);
}

Test(config, check_files)
{
	cr_assert_eq(parse("[server]\ntls_cert = /dev/null\ntls_key = /dev/null\n"), 0);
	cr_assert_eq(config_check_files(&cfg, &err), 0, "%s", err.msg);
	cr_assert_eq(parse("[upstream]\ntls_ca_file = /nonexistent/ca.pem\n"), 0);
	cr_assert_eq(config_check_files(&cfg, &err), -EINVAL);
	cr_assert_str_eq(err.file, "t.conf", "kept from the parse");
	cr_assert_eq(err.line, 0);
	cr_assert(strstr(err.msg, "[upstream] tls_ca_file: cannot read /nonexistent/ca.pem"), "%s",
	          err.msg);
	cr_assert_eq(parse("[upstream]\ntls = off\ntls_ca_file = /nonexistent/ca.pem\n"), 0);
	cr_assert_eq(config_check_files(&cfg, &err), 0, "CA is unused without TLS");
}

Test(config, reload_applies_only_reloadable_keys)
{
	struct config live, fresh;
	cr_assert_eq(config_parse_string("[server]\nlog_level = info\n", "a", &live, &err), 0);
	cr_assert_eq(config_parse_string("[server]\nlog_level = debug\nlisten = 127.0.0.1:5000\n"
	                                 "idle_timeout = 5m\n[upstream]\nservers = a:1,b:2\n",
	                                 "b", &fresh, &err),
	             0);
	struct config_change ch[8];
	size_t n = config_apply_reload(&live, &fresh, ch, 8);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(ch[0].name, "listen");
	cr_assert_not(ch[0].reloadable);
	cr_assert_str_eq(ch[1].name, "idle_timeout");
	cr_assert(ch[1].reloadable);
	cr_assert_str_eq(ch[2].name, "log_level");
	cr_assert_str_eq(ch[3].section, "upstream");
	cr_assert_str_eq(ch[3].name, "servers");
	cr_assert_eq(live.server.log_level, LOG_DEBUG);
	cr_assert_eq(live.server.idle_timeout, 300000);
	cr_assert_eq(live.server.listen.port, 4100, "needs a restart: unchanged");
	cr_assert_eq(live.upstream.servers.n, 1);
	cr_assert_eq(config_apply_reload(&live, &fresh, ch, 1), 2, "the restart keys still differ");
	cr_assert_eq(config_apply_reload(&live, &live, NULL, 0), 0);
}

Test(config, log_format_is_reloaded_like_log_level)
{
	struct config live, fresh;
	cr_assert_eq(config_parse_string("[server]\nlog_level = info\n", "a", &live, &err), 0);
	cr_assert_eq(config_parse_string("[server]\nlog_format = json\n", "b", &fresh, &err), 0);
	struct config_change ch[4];
	cr_assert_eq(config_apply_reload(&live, &fresh, ch, 4), 1);
	cr_assert_str_eq(ch[0].section, "server");
	cr_assert_str_eq(ch[0].name, "log_format");
	cr_assert(ch[0].reloadable);
	cr_assert_eq(live.server.log_format, LOG_FORMAT_JSON);
	struct buf b;
	buf_init(&b);
	cr_assert_eq(config_dump_json(&live, &b), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	cr_assert(strstr((const char *)b.data, "\"log_format\":\"json\""), "%s", b.data);
	buf_free(&b);
}

Test(config, json)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(parse("[server]\ntls_cert = /a \"quoted\"\\path\ntls_key = /k\n"
	                   "[upstream]\nservers = a:1, [::1]:2\n[admin]\nlisten =\n"),
	             0, "%s", err.msg);
	cr_assert_eq(config_dump_json(&cfg, &b), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	const char *j = (const char *)b.data;
	cr_assert(strncmp(j, "{\"server\":{\"listen\":\"127.0.0.1:4100\",\"workers\":0,", 48) == 0,
	          "%s", j);
	cr_assert(strstr(j, "\"tls_cert\":\"/a \\\"quoted\\\"\\\\path\""), "%s", j);
	cr_assert(strstr(j, "\"max_packet_size\":1073741824"), "%s", j);
	cr_assert(strstr(j, "\"handshake_timeout\":10000"), "%s", j);
	cr_assert(strstr(j, "\"log_level\":\"info\""), "%s", j);
	cr_assert(strstr(j, "\"servers\":[\"a:1\",\"[::1]:2\"]"), "%s", j);
	cr_assert(strstr(j, "\"tls_verify\":true"), "%s", j);
	cr_assert(strstr(j, "},\"admin\":{\"listen\":\"\"}}"), "%s", j);
	buf_free(&b);
}

Test(config, annotated_round_trip)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(config_write_annotated(&b), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	const char *text = (const char *)b.data;
	struct config defaults;
	config_init_defaults(&defaults);
	cr_assert_eq(parse(text), 0, "%d: %s", err.line, err.msg);
	cr_assert_eq(memcmp(&cfg, &defaults, sizeof(cfg)), 0,
	             "parsing the file gives the defaults");
	cr_assert(strstr(text, "\n[server]\n"));
	cr_assert(strstr(text, "# Type: size, 1K..1G. Default: 1G. Restart needed.\n"
	                       "max_packet_size = 1G\n"));
	cr_assert(strstr(text, "SIGHUP reloads it.\nlog_level = info\n"));
	cr_assert(strstr(text, "\ntls_cert =\n"));
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		cr_assert_not_null(nl, "ends with a newline");
		cr_assert_leq(nl - p, 79, "line too long: %.*s", (int)(nl - p), p);
		p = nl + 1;
	}
	buf_free(&b);
}

/* The source tree: $VECGATE_SOURCE_DIR, else the nearest directory above the
 * working directory (ctest runs in the build directory) with CMakeLists.txt and
 * conf/vecgate.conf. */
static bool source_dir(char *out, size_t n)
{
	const char *env = getenv("VECGATE_SOURCE_DIR");
	if (env && *env) {
		snprintf(out, n, "%s", env);
		return true;
	}
	char dir[PATH_MAX];
	if (!getcwd(dir, sizeof(dir)))
		return false;
	for (;;) {
		char probe[PATH_MAX + 32];
		snprintf(probe, sizeof(probe), "%s/CMakeLists.txt", dir);
		if (access(probe, R_OK) == 0) {
			snprintf(probe, sizeof(probe), "%s/conf/vecgate.conf", dir);
			if (access(probe, R_OK) == 0) {
				snprintf(out, n, "%s", dir);
				return true;
			}
		}
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return false;
		*slash = '\0';
	}
}

static char *read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	char *p = malloc(CONFIG_FILE_MAX);
	*n = fread(p, 1, CONFIG_FILE_MAX, f);
	fclose(f);
	return p;
}

Test(config, committed_files_are_current)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	if (!source_dir(dir, sizeof(dir)))
		cr_skip_test("source tree not found: set VECGATE_SOURCE_DIR");

	snprintf(path, sizeof(path), "%s/conf/vecgate.conf", dir);
	size_t n;
	char *text = read_all(path, &n);
	struct buf b;
	buf_init(&b);
	cr_assert_eq(config_write_annotated(&b), 0);
	cr_assert(n == b.len && memcmp(text, b.data, n) == 0,
	          "%s is out of date: regenerate it from config_write_annotated()", path);
	free(text);
	buf_free(&b);

	snprintf(path, sizeof(path), "%s/conf/local-tidb.conf", dir);
	cr_assert_eq(config_load(path, &cfg, &err), 0, "%s:%d: %s", path, err.line, err.msg);
	cr_assert_str_eq(cfg.upstream.tls_ca_file, "build/tidb/certs/ca.pem");
	cr_assert_str_eq(cfg.server.tls_cert, "build/tidb/certs/server.pem");
	cr_assert_str_eq(cfg.server.tls_key, "build/tidb/certs/server-key.pem");
	cr_assert_eq(cfg.upstream.servers.v[0].port, 4000);
	cr_assert(cfg.upstream.tls_verify);

	snprintf(path, sizeof(path), "%s/conf/tidb-cloud.conf", dir);
	cr_assert_eq(config_load(path, &cfg, &err), 0, "%s:%d: %s", path, err.line, err.msg);
	cr_assert(cfg.upstream.tls && cfg.upstream.tls_verify);
	cr_assert_str_eq(cfg.upstream.tls_ca_file, "", "system store");
	cr_assert_str_eq(cfg.upstream.tls_server_name, "", "the host of each server");
	cr_assert_lt(cfg.upstream.spare_max_age, 30 * 60000);
}

struct tables_case {
	const char *text;
	int rc;
	size_t n;
	const char *first_db, *first_table, *first_column;
	const char *msg;
};

Test(config, cache_tables)
{
	const struct tables_case cases[] = {
	        {"", 0, 0, NULL, NULL, NULL, NULL},
	        {"auto", 0, 0, NULL, NULL, NULL, NULL},
	        {"test.documents(embedding)", 0, 1, "test", "documents", "embedding", NULL},
	        {" a.b(c) , `my db`.`t``x`(`v e`) ", 0, 2, "a", "b", "c", NULL},
	        {"db.t$1(v_2)", 0, 1, "db", "t$1", "v_2", NULL},
	        {"t(c)", -EINVAL, 0, NULL, NULL, NULL, "table 1: expected db.table(column)"},
	        {"a.b", -EINVAL, 0, NULL, NULL, NULL, "expected db.table(column)"},
	        {"a.b(c) d.e(f)", -EINVAL, 0, NULL, NULL, NULL, "table 1: expected ','"},
	        {"a.b(c),", -EINVAL, 0, NULL, NULL, NULL, "table 2: expected db.table(column)"},
	        {"a.b(c), a.b(c)", -EINVAL, 0, NULL, NULL, NULL, "table 2 repeats table 1"},
	        {"`a.b(c)", -EINVAL, 0, NULL, NULL, NULL, "expected db.table(column)"},
	        {"a.`b`(c", -EINVAL, 0, NULL, NULL, NULL, "expected db.table(column)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tables_case *c = &cases[i];
		struct config_table_list tl;
		char msg[256] = "";
		int rc = config_parse_tables(c->text, &tl, msg, sizeof(msg));
		cr_assert_eq(rc, c->rc, "case %zu (%s): %s", i, c->text, msg);
		if (rc < 0) {
			cr_assert(strstr(msg, c->msg), "case %zu: %s", i, msg);
			continue;
		}
		cr_assert_eq(tl.n, c->n, "case %zu", i);
		cr_assert_eq(tl.auto_admit, strcmp(c->text, "auto") == 0);
		if (c->n) {
			cr_assert_str_eq(tl.v[0].db, c->first_db);
			cr_assert_str_eq(tl.v[0].table, c->first_table);
			cr_assert_str_eq(tl.v[0].column, c->first_column);
		}
	}
	/* The backticked names of case 3 keep their spaces and doubled backtick. */
	struct config_table_list tl;
	char msg[256];
	cr_assert_eq(config_parse_tables("a.b(c), `my db`.`t``x`(`v e`)", &tl, msg, sizeof(msg)),
	             0);
	cr_assert_str_eq(tl.v[1].db, "my db");
	cr_assert_str_eq(tl.v[1].table, "t`x");
	cr_assert_str_eq(tl.v[1].column, "v e");
	/* Through the file: a bad list is reported at its line. */
	cr_assert_eq(parse("[cache]\n\ntables = a.b\n"), -EINVAL);
	cr_assert_eq(err.line, 3);
	cr_assert_eq(parse("[cache]\ntables = a.b(c)\npassword = hunter2\n"), 0);
	struct buf j;
	buf_init(&j);
	cr_assert_eq(config_dump_json(&cfg, &j), 0);
	cr_assert_null(memmem(j.data, j.len, "hunter2", 7), "the password is never shown");
	buf_free(&j);
}
