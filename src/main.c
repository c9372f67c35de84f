/* vecgate: command line, configuration, signals and the event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/opensslv.h>
#include <uv.h>

#include "admin/endpoint.h"
#include "cache/cache.h"
#include "cache/segment.h"
#include "session/sess_cache.h"
#include "core/config.h"
#include "core/log.h"
#include "core/upstream.h"
#include "net/net.h"
#include "net/rsa.h"
#include "pool/pool.h"
#include "proto/mysql.h"
#include "session/session.h"

/* Capabilities vecgate declares in its own SSLRequest to TiDB; the client's
 * handshake response, relayed next, carries the client's own choice. */
#define UPSTREAM_SSL_CAPS                                                                          \
	(PROTO_CLIENT_LONG_PASSWORD | PROTO_CLIENT_LONG_FLAG | PROTO_CLIENT_PROTOCOL_41 |          \
	 PROTO_CLIENT_TRANSACTIONS | PROTO_CLIENT_SECURE_CONNECTION | PROTO_CLIENT_MULTI_RESULTS | \
	 PROTO_CLIENT_PLUGIN_AUTH | PROTO_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |                  \
	 PROTO_CLIENT_SSL)

struct app {
	uv_loop_t *loop;
	const char *config_path;
	struct config cfg;
	SSL_CTX *client_tls;
	SSL_CTX *up_tls;
	struct upstream_group *upstream; /* the servers and TLS of every link to TiDB */
	struct pool *pool;
	struct cache *cache;
	struct config_table_list cache_tables;
	struct proxy px;
	struct net_listener *listener;
	struct admin_endpoint *admin;
	uv_signal_t sig_term, sig_int, sig_hup;
	struct net_timer drain_timer;
	bool stopping;
	bool rsa_pending; /* the key for caching_sha2 is being made */
	struct net_rsa *rsa_new;
	char rsa_err[256];
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vecgate [--config FILE] [--check-config] [--print-default-config]\n"
	           "               [--version] [--help]\n"
	           "\n"
	           "MySQL-protocol proxy for TiDB with an exact in-memory vector kNN cache.\n"
	           "\n"
	           "  -c, --config FILE          configuration file (without one, the defaults)\n"
	           "      --check-config         validate the configuration (and its files), then "
	           "exit\n"
	           "      --print-default-config print the annotated default configuration\n"
	           "  -V, --version              print version information and exit\n"
	           "  -h, --help                 print this help and exit\n"
	           "\n"
	           "Signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the configuration.\n");
}

static SSL_CTX *make_client_tls(const struct config *cfg)
{
	if (!*cfg->server.tls_cert)
		return NULL;
	char err[512];
	SSL_CTX *ctx = net_tls_server_ctx(
	        cfg->server.tls_cert, cfg->server.tls_key, cfg->server.tls_ca,
	        cfg->server.tls_min_version == CONFIG_TLS_1_3 ? 3 : 2, err, sizeof(err));
	if (!ctx)
		log_error("client TLS: %s", err);
	return ctx;
}

static bool healthy_hook(void *ctx, const char **reason)
{
	struct app *a = ctx;
	if (a->stopping) {
		*reason = "draining";
		return false;
	}
	if (a->rsa_pending) {
		*reason = "starting";
		return false;
	}
	return true;
}

static void rsa_work(void *data)
{
	struct app *a = data;
	a->rsa_new = net_rsa_generate(2048, a->rsa_err, sizeof(a->rsa_err));
}

static void rsa_done(void *data, int status)
{
	struct app *a = data;
	a->rsa_pending = false;
	a->px.rsa = a->rsa_new;
	if (!a->px.rsa)
		log_warn("%s: caching_sha2_password needs TLS from clients", a->rsa_err);
}

static int status_hook(void *ctx, struct buf *out)
{
	struct app *a = ctx;
	int rc = buf_appendf(out,
	                     "{\"version\":\"%s\",\"draining\":%s,\"sessions\":%d,\"by_state\":",
	                     VECGATE_VERSION, a->stopping ? "true" : "false", a->px.n_sessions);
	if (rc == 0)
		rc = proxy_status_json(&a->px, out);
	if (rc == 0)
		rc = buf_append(out, ",\"upstreams\":", 13);
	if (rc == 0)
		rc = pool_status_json(a->pool, out);
	if (rc == 0 && a->cache)
		rc = buf_append(out, ",\"cache\":", 9);
	if (rc == 0 && a->cache)
		rc = cache_status_json(a->cache, out);
	if (rc == 0)
		rc = buf_append(out, ",\"config\":", 10);
	if (rc == 0)
		rc = config_dump_json(&a->cfg, out);
	return rc ? rc : buf_append(out, "}", 1);
}

static void accept_cb(struct net_listener *l, struct net_conn *c)
{
	struct app *a = net_listener_data(l);
	session_accept(&a->px, c);
}

static void stop_everything(struct app *a)
{
	pool_shutdown(a->pool);
	pool_free(a->pool);
	if (a->cache)
		cache_free(a->cache);
	if (a->admin)
		admin_endpoint_close(a->admin);
	uv_close((uv_handle_t *)&a->sig_term, NULL);
	uv_close((uv_handle_t *)&a->sig_int, NULL);
	uv_close((uv_handle_t *)&a->sig_hup, NULL);
	net_timer_stop(&a->drain_timer);
	uv_close((uv_handle_t *)&a->drain_timer.t, NULL);
	net_loop_close(a->loop);
}

static void drained_cb(struct proxy *px)
{
	struct app *a = (struct app *)((char *)px - offsetof(struct app, px));
	log_info("all sessions closed; exiting");
	stop_everything(a);
}

static void drain_timeout_cb(struct net_timer *t)
{
	struct app *a = t->data;
	log_warn("drain timeout: closing %d remaining sessions", a->px.n_sessions);
	proxy_close_all(&a->px);
}

static void sigterm_cb(uv_signal_t *h, int signum)
{
	struct app *a = h->data;
	if (a->stopping)
		return;
	a->stopping = true;
	log_warn("%s received: draining %d sessions (at most %llu ms)", strsignal(signum),
	         a->px.n_sessions, (unsigned long long)a->cfg.server.drain_timeout);
	net_listener_close(a->listener);
	a->listener = NULL;
	a->px.on_drained = drained_cb;
	net_timer_start(&a->drain_timer, a->cfg.server.drain_timeout);
	proxy_drain(&a->px);
}

static void apply_limits(struct app *a)
{
	const struct config *c = &a->cfg;
	a->px.lim.max_packet = c->server.max_packet_size;
	a->px.lim.handshake_timeout_ms = c->server.handshake_timeout;
	a->px.lim.idle_timeout_ms = c->server.idle_timeout;
	a->px.lim.max_client_conns = c->server.max_client_conns;
	a->px.lim.max_pending_logins = c->server.max_pending_logins;
	a->px.lim.max_pending_logins_per_address = c->server.max_pending_logins_per_address;
	a->px.lim.require_tls = c->server.require_tls;
	a->px.lim.write_buffer_limit = c->server.write_buffer_limit;
	a->px.lim.keepalive_s = (unsigned)(c->server.tcp_keepalive / 1000);
	if (a->cache)
		cache_set_max_staleness(a->cache, c->cache.max_staleness);
	if (a->px.cache)
		a->px.cache->proof_max_age_ms = c->cache.proof_max_age;
	cache_segment_set_screening(c->cache.screening);
	log_set_level((enum log_level)c->server.log_level);
	log_set_format((enum log_format)c->server.log_format);
	if (a->upstream)
		upstream_set_timeouts(a->upstream, c->upstream.connect_timeout,
		                      c->cache.load_timeout, c->upstream.health_check_interval);
	if (a->pool)
		pool_update(a->pool, c->upstream.pool_spares, c->upstream.spare_max_age);
	/* A raised max_pending_logins lets queued logins start now. */
	proxy_admit_queued(&a->px);
}

static void sighup_cb(uv_signal_t *h, int signum)
{
	struct app *a = h->data;
	if (!a->config_path) {
		log_info("SIGHUP: no configuration file to reload");
		return;
	}
	struct config fresh;
	struct config_err err;
	if (config_load(a->config_path, &fresh, &err) < 0 || config_check_files(&fresh, &err) < 0) {
		log_error("SIGHUP: %s:%d: %s; keeping the running configuration", err.file,
		          err.line, err.msg);
		config_free(&fresh);
		return;
	}
	SSL_CTX *tls = make_client_tls(&fresh);
	if (*fresh.server.tls_cert && !tls) {
		log_error("SIGHUP: keeping the running configuration");
		config_free(&fresh);
		return;
	}
	struct config_change changes[64];
	size_t n = config_apply_reload(&a->cfg, &fresh, changes, 64);
	config_free(&fresh);
	/* Sessions already in TLS keep a reference to the context they began with. */
	net_tls_ctx_free(a->px.client_tls);
	a->px.client_tls = a->client_tls = tls;
	apply_limits(a);
	log_info("SIGHUP: configuration reloaded (%zu keys differed)", n);
}

/* --check-config: each setting that leaves a link less protected. */
static void print_warning(void *ctx, const char *line)
{
	fprintf(stderr, "%s: warning: %s\n", (const char *)ctx, line);
}

static void log_warning(void *ctx, const char *line)
{
	log_warn("%s", line);
}

/* The upstream description (servers, TLS, timeouts, health), then the pool
 * of session connections on it. */
static int setup_pool(struct app *a, char *err, size_t errlen)
{
	const struct config *c = &a->cfg;
	static struct upstream_target target; /* large: kept off the stack */
	if (upstream_target_from_config(c, &target, err, errlen) < 0)
		return -EINVAL;
	upstream_config_warnings(c, log_warning, NULL);
	if (target.tls) {
		a->up_tls =
		        net_tls_client_ctx(target.ca_file, target.tls_verify, target.tls_min_minor,
		                           target.cert_file, target.key_file, err, errlen);
		if (!a->up_tls)
			return -EINVAL;
	}
	if (!(a->upstream =
	              upstream_group_new(&target, a->up_tls, c->upstream.health_check_interval))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	struct pool_options opt = {
	        .upstream = a->upstream,
	        .client_caps = UPSTREAM_SSL_CAPS,
	        .spares = c->upstream.pool_spares,
	        .spare_max_age_ms = c->upstream.spare_max_age,
	        .keepalive_s = (unsigned)(c->upstream.tcp_keepalive / 1000),
	};
	a->pool = pool_new(a->loop, &opt, err, errlen);
	return a->pool ? 0 : -EINVAL;
}

/* The vector cache, when [cache] tables names any (or is auto). */
static int setup_cache(struct app *a, char *err, size_t errlen)
{
	const struct config *c = &a->cfg;
	if (config_parse_tables(c->cache.tables, &a->cache_tables, err, errlen) < 0)
		return -EINVAL;
	if (a->cache_tables.n == 0 && !a->cache_tables.auto_admit)
		return 0;
	struct cache_options opt = {
	        .loop = a->loop,
	        .tables = &a->cache_tables,
	        .user = c->cache.user,
	        .password = c->cache.password,
	        .upstream = a->upstream,
	        .memory_limit = c->cache.memory_limit,
	        .max_staleness_ms = c->cache.max_staleness,
	        .max_tables = c->cache.max_tables,
	        .patches = c->cache.patches,
	};
	if (!(a->cache = cache_new(&opt, err, errlen)))
		return -EINVAL;
	if (!(a->px.cache = proxy_cache_new(a->cache, c->cache.result_cache_size,
	                                    c->cache.proof_max_age))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int run(struct app *a)
{
	char err[512];
	a->loop = uv_default_loop();
	signal(SIGPIPE, SIG_IGN);
	if (net_loop_init(a->loop) < 0)
		return 1;
	a->client_tls = make_client_tls(&a->cfg);
	if (*a->cfg.server.tls_cert && !a->client_tls)
		return 1;
	if (setup_pool(a, err, sizeof(err)) < 0) {
		log_error("upstream: %s", err);
		return 1;
	}
	struct proxy_limits lim = {0};
	proxy_init(&a->px, a->loop, a->pool, a->client_tls, &lim);
	apply_limits(a);
	if (setup_cache(a, err, sizeof(err)) < 0) {
		log_error("cache: %s", err);
		return 1;
	}
	/* caching_sha2 users on plaintext client links need vecgate's own RSA
	 * key (TiDB does full authentication over TLS only). Making one takes
	 * ~100 ms of CPU: a pool thread does it while vecgate starts serving;
	 * /health says "starting" until it is there. */
	if (!a->cfg.server.require_tls) {
		a->rsa_pending = true;
		if (net_work_submit(a->loop, rsa_work, rsa_done, a) < 0)
			a->rsa_pending = false;
	}

	int rc;
	const struct config_addr *l = &a->cfg.server.listen;
	a->listener = net_listen(a->loop, l->host, l->port, a->cfg.server.backlog, false, accept_cb,
	                         a, &rc);
	if (!a->listener) {
		log_error("listen %s:%u: %s", l->host, l->port, uv_strerror(rc));
		return 1;
	}
	if (*a->cfg.admin.listen.host) {
		struct admin_hooks hooks = {
		        .status_json = status_hook, .healthy = healthy_hook, .ctx = a};
		a->admin = admin_endpoint_start(a->loop, a->cfg.admin.listen.host,
		                                a->cfg.admin.listen.port, &hooks, &rc);
		if (!a->admin) {
			log_error("admin listen %s:%u: %s", a->cfg.admin.listen.host,
			          a->cfg.admin.listen.port, uv_strerror(rc));
			return 1;
		}
	}
	net_timer_init(a->loop, &a->drain_timer, drain_timeout_cb, a);
	uv_signal_init(a->loop, &a->sig_term);
	uv_signal_init(a->loop, &a->sig_int);
	uv_signal_init(a->loop, &a->sig_hup);
	a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
	uv_signal_start(&a->sig_term, sigterm_cb, SIGTERM);
	uv_signal_start(&a->sig_int, sigterm_cb, SIGINT);
	uv_signal_start(&a->sig_hup, sighup_cb, SIGHUP);

	log_info("vecgate %s listening on %s:%u, upstream %s%s, client TLS %s", VECGATE_VERSION,
	         l->host, l->port, upstream_group_target(a->upstream)->servers[0].name,
	         a->cfg.upstream.servers.n > 1 ? " (and more)" : "",
	         a->client_tls ? "available" : "off");
	uv_run(a->loop, UV_RUN_DEFAULT);
	net_tls_ctx_free(a->px.client_tls);
	upstream_group_free(a->upstream);
	net_tls_ctx_free(a->up_tls);
	net_rsa_free(a->px.rsa);
	proxy_cache_free(a->px.cache);
	uv_loop_close(a->loop);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"check-config", no_argument, NULL, 'C'},
	        {"print-default-config", no_argument, NULL, 'P'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct app a;
	memset(&a, 0, sizeof(a));
	bool check_only = false;
	int c;
	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a.config_path = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'P': {
			struct buf b;
			buf_init(&b);
			int rc = config_write_annotated(&b);
			if (rc == 0)
				fwrite(b.data, 1, b.len, stdout);
			buf_free(&b);
			return rc == 0 ? 0 : 1;
		}
		case 'V':
			printf("vecgate %s (libuv %s, %s)\n", VECGATE_VERSION, uv_version_string(),
			       OPENSSL_VERSION_TEXT);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vecgate: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	struct config_err err;
	int rc = a.config_path ? config_load(a.config_path, &a.cfg, &err)
	                       : (config_init_defaults(&a.cfg), 0);
	if (rc == 0)
		rc = config_check_files(&a.cfg, &err);
	if (rc < 0) {
		if (err.line > 0)
			fprintf(stderr, "%s:%d: %s\n", err.file, err.line, err.msg);
		else
			fprintf(stderr, "%s: %s\n", err.file ? err.file : "vecgate", err.msg);
		if (err.count > 1)
			fprintf(stderr, "(%d problems in all)\n", err.count);
		config_free(&a.cfg);
		return 2;
	}
	if (check_only) {
		const char *name = a.config_path ? a.config_path : "defaults";
		static struct upstream_target target; /* large: kept off the stack */
		if (upstream_target_from_config(&a.cfg, &target, err.msg, sizeof(err.msg)) < 0) {
			fprintf(stderr, "%s: %s\n", name, err.msg);
			config_free(&a.cfg);
			return 2;
		}
		size_t n = upstream_config_warnings(&a.cfg, print_warning, (void *)name);
		printf("%s: configuration OK", name);
		printf(n ? " (%zu warning%s)\n" : "\n", n, n == 1 ? "" : "s");
		config_free(&a.cfg);
		return 0;
	}
	log_set_level((enum log_level)a.cfg.server.log_level);
	log_set_format((enum log_format)a.cfg.server.log_format);
	rc = run(&a);
	config_free(&a.cfg);
	return rc;
}
