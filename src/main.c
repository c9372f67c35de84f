/* vecgate: command line, configuration, signals and the event loop. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/opensslv.h>
#include <openssl/ssl.h>
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

/* The most worker loops ([server] workers' maximum). */
#define WORKERS_MAX 64

struct app;

/* One event loop with its own sessions, pool and listener (docs/design.md
 * §5). Worker 0 runs on the main thread's loop, which also has the
 * signals, the admin endpoint and the cache's loads; the others on
 * threads of their own. What the main loop asks of a worker reaches it as
 * a post, run on the worker's thread. */
struct worker {
	struct app *a;
	int index;
	uv_loop_t own_loop; /* workers 1..N-1 */
	uv_loop_t *loop;
	uv_thread_t thread;
	bool thread_started;
	struct pool *pool;
	struct proxy px;
	struct net_listener *listener;
	/* SIGHUP's settings for this worker, handed over under app.mu. */
	struct proxy_limits next_lim;
	SSL_CTX *next_tls; /* referenced */
	int next_spares;
	uint64_t next_spare_age_ms;
	bool next_set;
	struct net_post p_drain, p_close_all, p_apply, p_rsa, p_stop;
};

struct app {
	uv_loop_t *loop;
	const char *config_path;
	struct config cfg;
	SSL_CTX *client_tls;
	SSL_CTX *up_tls;
	struct upstream_group *upstream; /* the servers and TLS of every link to TiDB */
	struct cache *cache;
	struct proxy_cache *pcache;
	struct config_table_list cache_tables;
	struct proxy_shared shared;
	struct worker *workers;
	int nworkers;
	pthread_mutex_t mu; /* workers' next_* */
	atomic_int drained; /* workers with no session left after SIGTERM */
	struct net_post p_drained;
	struct admin_endpoint *admin;
	uv_signal_t sig_term, sig_int, sig_hup;
	struct net_timer drain_timer;
	struct net_timer quiesce_timer;
	bool stopping;
	bool stopped;
	atomic_bool rsa_pending; /* the key for caching_sha2 is being made */
	struct net_rsa *rsa_new;
	char rsa_err[256];
	unsigned pool_threads; /* libuv's thread pool (size_thread_pool) */
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

/* Posts to a worker: on worker 0 (the main loop's) the call runs at once. */
static void to_worker(struct worker *w, struct net_post *p)
{
	if (w->index == 0)
		p->fn(p);
	else if (net_loop_post(w->loop, p) < 0)
		log_debug("worker %d: its loop is closed", w->index);
}

static void rsa_posted(struct net_post *p)
{
	struct worker *w = container_of(p, struct worker, p_rsa);
	w->px.rsa = w->a->rsa_new;
}

static void rsa_done(void *data, int status)
{
	struct app *a = data;
	if (!a->rsa_new)
		log_warn("%s: caching_sha2_password needs TLS from clients", a->rsa_err);
	for (int i = 0; i < a->nworkers; i++)
		to_worker(&a->workers[i], &a->workers[i].p_rsa);
	a->rsa_pending = false;
}

static int status_hook(void *ctx, struct buf *out)
{
	struct app *a = ctx;
	int rc = buf_appendf(
	        out,
	        "{\"version\":\"%s\",\"draining\":%s,\"sessions\":%d,\"thread_pool\":%u,"
	        "\"workers\":[",
	        VECGATE_VERSION, a->stopping ? "true" : "false", atomic_load(&a->shared.sessions),
	        a->pool_threads);
	/* Each worker loop's sessions: how the kernel spread the clients. */
	for (int i = 0; i < a->nworkers && rc == 0; i++)
		rc = buf_appendf(out, "%s{\"sessions\":%d}", i ? "," : "",
		                 atomic_load(&a->workers[i].px.n_sessions));
	if (rc == 0)
		rc = buf_append(out, "],\"by_state\":", 13);
	struct proxy *pxs[WORKERS_MAX];
	struct pool *pools[WORKERS_MAX];
	for (int i = 0; i < a->nworkers; i++) {
		pxs[i] = &a->workers[i].px;
		pools[i] = a->workers[i].pool;
	}
	if (rc == 0)
		rc = proxy_status_json(pxs, (size_t)a->nworkers, out);
	if (rc == 0)
		rc = buf_append(out, ",\"upstreams\":", 13);
	if (rc == 0)
		rc = pool_status_json(pools, (size_t)a->nworkers, out);
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
	struct worker *w = net_listener_data(l);
	session_accept(&w->px, c);
}

/* ---- the end: drain every worker, wait for the pool's work, close ---- */

static void worker_stop_posted(struct net_post *p)
{
	struct worker *w = container_of(p, struct worker, p_stop);
	pool_shutdown(w->pool);
	pool_free(w->pool);
	w->pool = NULL;
	net_loop_keep_alive(w->loop, false);
	net_loop_close(w->loop); /* its uv_run returns when the handles are closed */
}

static void quiesce_closed(struct net_timer *t)
{
	(void)t;
}

/* No work left on any loop's pool jobs: no loop will post to another one
 * again, and each can close. */
static void quiesce_cb(struct net_timer *t)
{
	struct app *a = t->data;
	if (net_work_in_flight() > 0) {
		net_timer_start(t, 10);
		return;
	}
	net_timer_close(t, quiesce_closed);
	for (int i = 1; i < a->nworkers; i++)
		to_worker(&a->workers[i], &a->workers[i].p_stop);
	pool_shutdown(a->workers[0].pool);
	pool_free(a->workers[0].pool);
	a->workers[0].pool = NULL;
	net_loop_close(a->loop);
}

static void stop_everything(struct app *a)
{
	if (a->stopped)
		return;
	a->stopped = true;
	if (a->cache)
		cache_free(a->cache);
	if (a->admin)
		admin_endpoint_close(a->admin);
	uv_close((uv_handle_t *)&a->sig_term, NULL);
	uv_close((uv_handle_t *)&a->sig_int, NULL);
	uv_close((uv_handle_t *)&a->sig_hup, NULL);
	net_timer_stop(&a->drain_timer);
	uv_close((uv_handle_t *)&a->drain_timer.t, NULL);
	/* Answers still computed for sessions that closed end first. */
	net_timer_init(a->loop, &a->quiesce_timer, quiesce_cb, a);
	net_timer_start(&a->quiesce_timer, 0);
}

static void all_drained_posted(struct net_post *p)
{
	struct app *a = container_of(p, struct app, p_drained);
	if (atomic_load(&a->drained) < a->nworkers)
		return;
	log_info("all sessions closed; exiting");
	stop_everything(a);
}

/* On the worker's loop: its last session is gone. */
static void drained_cb(struct proxy *px)
{
	struct worker *w = container_of(px, struct worker, px);
	struct app *a = w->a;
	px->on_drained = NULL;
	atomic_fetch_add(&a->drained, 1);
	if (w->index == 0)
		all_drained_posted(&a->p_drained);
	else if (net_loop_post(a->loop, &a->p_drained) < 0)
		log_debug("worker %d: the main loop is closed", w->index);
}

static void drain_posted(struct net_post *p)
{
	struct worker *w = container_of(p, struct worker, p_drain);
	if (w->listener)
		net_listener_close(w->listener);
	w->listener = NULL;
	w->px.on_drained = drained_cb;
	proxy_drain(&w->px);
}

static void close_all_posted(struct net_post *p)
{
	struct worker *w = container_of(p, struct worker, p_close_all);
	proxy_close_all(&w->px);
}

static void drain_timeout_cb(struct net_timer *t)
{
	struct app *a = t->data;
	log_warn("drain timeout: closing %d remaining sessions", atomic_load(&a->shared.sessions));
	for (int i = 0; i < a->nworkers; i++)
		to_worker(&a->workers[i], &a->workers[i].p_close_all);
}

static void sigterm_cb(uv_signal_t *h, int signum)
{
	struct app *a = h->data;
	if (a->stopping)
		return;
	a->stopping = true;
	log_warn("%s received: draining %d sessions (at most %llu ms)", strsignal(signum),
	         atomic_load(&a->shared.sessions), (unsigned long long)a->cfg.server.drain_timeout);
	net_timer_start(&a->drain_timer, a->cfg.server.drain_timeout);
	for (int i = 0; i < a->nworkers; i++)
		to_worker(&a->workers[i], &a->workers[i].p_drain);
}

/* Each worker's share of a per-server spare count: the spares of all
 * workers together are about what the setting asks. */
static int spares_per_worker(const struct app *a)
{
	int n = a->cfg.upstream.pool_spares;
	return n <= 0 ? n : (n + a->nworkers - 1) / a->nworkers;
}

static void apply_posted(struct net_post *p)
{
	struct worker *w = container_of(p, struct worker, p_apply);
	struct app *a = w->a;
	pthread_mutex_lock(&a->mu);
	bool set = w->next_set;
	struct proxy_limits lim = w->next_lim;
	SSL_CTX *tls = w->next_tls;
	int spares = w->next_spares;
	uint64_t spare_age_ms = w->next_spare_age_ms;
	w->next_set = false;
	w->next_tls = NULL;
	pthread_mutex_unlock(&a->mu);
	if (!set)
		return;
	w->px.lim = lim;
	/* Sessions already in TLS keep a reference to the context they began with. */
	net_tls_ctx_free(w->px.client_tls);
	w->px.client_tls = tls;
	if (w->pool)
		pool_update(w->pool, spares, spare_age_ms);
	/* A raised max_pending_logins lets queued logins start now. */
	proxy_admit_queued(&w->px);
}

static struct proxy_limits limits_of(const struct config *c)
{
	return (struct proxy_limits){
	        .max_packet = c->server.max_packet_size,
	        .handshake_timeout_ms = c->server.handshake_timeout,
	        .idle_timeout_ms = c->server.idle_timeout,
	        .max_client_conns = c->server.max_client_conns,
	        .max_pending_logins = c->server.max_pending_logins,
	        .max_pending_logins_per_address = c->server.max_pending_logins_per_address,
	        .require_tls = c->server.require_tls,
	        .write_buffer_limit = c->server.write_buffer_limit,
	        .keepalive_s = (unsigned)(c->server.tcp_keepalive / 1000),
	};
}

/* The running configuration to every part; the workers' own parts (limits,
 * client TLS, spares) reach them as posts. */
static void apply_limits(struct app *a)
{
	const struct config *c = &a->cfg;
	if (a->cache)
		cache_set_max_staleness(a->cache, c->cache.max_staleness);
	if (a->pcache) {
		cache_lock();
		a->pcache->proof_max_age_ms = c->cache.proof_max_age;
		cache_unlock();
	}
	cache_segment_set_screening(c->cache.screening);
	log_set_level((enum log_level)c->server.log_level);
	log_set_format((enum log_format)c->server.log_format);
	if (a->upstream)
		upstream_set_timeouts(a->upstream, c->upstream.connect_timeout,
		                      c->cache.load_timeout, c->upstream.health_check_interval);
	for (int i = 0; i < a->nworkers; i++) {
		struct worker *w = &a->workers[i];
		pthread_mutex_lock(&a->mu);
		w->next_lim = limits_of(c);
		w->next_spares = spares_per_worker(a);
		w->next_spare_age_ms = c->upstream.spare_max_age;
		net_tls_ctx_free(w->next_tls);
		w->next_tls = a->client_tls;
		if (w->next_tls)
			SSL_CTX_up_ref(w->next_tls);
		w->next_set = true;
		pthread_mutex_unlock(&a->mu);
		to_worker(w, &w->p_apply);
	}
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
	net_tls_ctx_free(a->client_tls);
	a->client_tls = tls;
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

/* The upstream description (servers, TLS, timeouts, health), shared by
 * every worker's pool and the cache. */
static int setup_upstream(struct app *a, char *err, size_t errlen)
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
	return 0;
}

/* A worker's loop, pool of session connections and proxy (its thread is
 * started later). Worker 0's loop is the main one. */
static int setup_worker(struct app *a, int i, char *err, size_t errlen)
{
	const struct config *c = &a->cfg;
	struct worker *w = &a->workers[i];
	w->a = a;
	w->index = i;
	w->p_drain.fn = drain_posted;
	w->p_close_all.fn = close_all_posted;
	w->p_apply.fn = apply_posted;
	w->p_rsa.fn = rsa_posted;
	w->p_stop.fn = worker_stop_posted;
	if (i == 0) {
		w->loop = a->loop;
	} else {
		int rc = uv_loop_init(&w->own_loop);
		if (rc < 0) {
			snprintf(err, errlen, "worker loop: %s", uv_strerror(rc));
			return rc;
		}
		w->loop = &w->own_loop;
		if ((rc = net_loop_init(w->loop)) < 0) {
			snprintf(err, errlen, "worker loop: %s", uv_strerror(rc));
			return rc;
		}
	}
	struct pool_options opt = {
	        .upstream = a->upstream,
	        .client_caps = UPSTREAM_SSL_CAPS,
	        .spares = spares_per_worker(a),
	        .spare_max_age_ms = c->upstream.spare_max_age,
	        .keepalive_s = (unsigned)(c->upstream.tcp_keepalive / 1000),
	        .no_health_checks = i > 0,
	};
	if (!(w->pool = pool_new(w->loop, &opt, err, errlen)))
		return -EINVAL;
	struct proxy_limits lim = limits_of(c);
	if (a->client_tls)
		SSL_CTX_up_ref(a->client_tls);
	if (proxy_init(&w->px, w->loop, &a->shared, w->pool, a->client_tls, &lim) < 0) {
		snprintf(err, errlen, "too many workers");
		return -ENOSPC;
	}
	/* Session ids unique over the workers: i, i + N, i + 2N, ... */
	w->px.next_id = (uint64_t)i;
	w->px.id_step = (uint64_t)a->nworkers;
	return 0;
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
	if (!(a->pcache = proxy_cache_new(a->cache, c->cache.result_cache_size,
	                                  c->cache.proof_max_age))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < a->nworkers; i++)
		a->workers[i].px.cache = a->pcache;
	return 0;
}

static void worker_main(void *arg)
{
	struct worker *w = arg;
	net_loop_run(w->loop);
}

/* Starts listening on every worker's loop: with several, each has its own
 * socket on the same port (SO_REUSEPORT) and the kernel spreads new
 * connections over them. */
static int listen_all(struct app *a)
{
	const struct config_addr *l = &a->cfg.server.listen;
	int rc;
	for (int i = 0; i < a->nworkers; i++) {
		struct worker *w = &a->workers[i];
		w->listener = net_listen(w->loop, l->host, l->port, a->cfg.server.backlog,
		                         a->nworkers > 1, accept_cb, w, &rc);
		if (!w->listener) {
			log_error("listen %s:%u: %s", l->host, l->port, uv_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static void free_workers(struct app *a)
{
	for (int i = 0; i < a->nworkers; i++) {
		struct worker *w = &a->workers[i];
		if (w->thread_started)
			uv_thread_join(&w->thread);
		if (i > 0 && w->loop) {
			/* Closed by its stop post; a loop that never ran closes here. */
			if (w->pool) {
				pool_shutdown(w->pool);
				pool_free(w->pool);
				w->pool = NULL;
			}
			if (w->listener)
				net_listener_close(w->listener);
			net_loop_close(w->loop);
			uv_run(w->loop, UV_RUN_DEFAULT);
			uv_loop_close(w->loop);
		}
		net_tls_ctx_free(w->px.client_tls);
		net_tls_ctx_free(w->next_tls);
	}
	free(a->workers);
}

static int run(struct app *a)
{
	char err[512];
	/* The port must be free: with several loops, SO_REUSEPORT would
	 * otherwise let them share it with another process that uses it too (a
	 * second vecgate started by mistake). Checked before anything is set
	 * up, so that this common mistake ends with nothing to undo. */
	const struct config_addr *l = &a->cfg.server.listen;
	int rc = net_listen_check(l->host, l->port);
	if (rc < 0) {
		log_error("listen %s:%u: %s", l->host, l->port, uv_strerror(rc));
		return 1;
	}
	a->loop = uv_default_loop();
	signal(SIGPIPE, SIG_IGN);
	if (net_loop_init(a->loop) < 0)
		return 1;
	a->client_tls = make_client_tls(&a->cfg);
	if (*a->cfg.server.tls_cert && !a->client_tls)
		return 1;
	if (setup_upstream(a, err, sizeof(err)) < 0) {
		log_error("upstream: %s", err);
		return 1;
	}
	/* 0: one per core, at most as many as the setting allows. */
	a->nworkers =
	        a->cfg.server.workers > 0 ? a->cfg.server.workers : (int)uv_available_parallelism();
	if (a->nworkers < 1)
		a->nworkers = 1;
	if (a->nworkers > WORKERS_MAX)
		a->nworkers = WORKERS_MAX;
	pthread_mutex_init(&a->mu, NULL);
	a->p_drained.fn = all_drained_posted;
	a->workers = calloc((size_t)a->nworkers, sizeof(*a->workers));
	if (!a->workers || proxy_shared_init(&a->shared) < 0) {
		log_error("out of memory");
		return 1;
	}
	for (int i = 0; i < a->nworkers && rc == 0; i++)
		if ((rc = setup_worker(a, i, err, sizeof(err))) < 0)
			log_error("worker %d: %s", i, err);
	if (rc == 0 && (rc = setup_cache(a, err, sizeof(err))) < 0)
		log_error("cache: %s", err);
	apply_limits(a);
	if (rc == 0)
		rc = listen_all(a);
	if (rc < 0) {
		free_workers(a);
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
	for (int i = 1; i < a->nworkers; i++) {
		struct worker *w = &a->workers[i];
		net_loop_keep_alive(w->loop, true);
		if (uv_thread_create(&w->thread, worker_main, w) < 0) {
			log_error("worker %d: could not start its thread", i);
			return 1;
		}
		w->thread_started = true;
	}

	log_info("vecgate %s listening on %s:%u (%d worker loop%s), upstream %s%s, client TLS %s",
	         VECGATE_VERSION, l->host, l->port, a->nworkers, a->nworkers == 1 ? "" : "s",
	         upstream_group_target(a->upstream)->servers[0].name,
	         a->cfg.upstream.servers.n > 1 ? " (and more)" : "",
	         a->client_tls ? "available" : "off");
	uv_run(a->loop, UV_RUN_DEFAULT);
	free_workers(a);
	net_tls_ctx_free(a->client_tls);
	upstream_group_free(a->upstream);
	net_tls_ctx_free(a->up_tls);
	net_rsa_free(a->rsa_new);
	proxy_cache_free(a->pcache);
	proxy_shared_free(&a->shared);
	pthread_mutex_destroy(&a->mu);
	uv_loop_close(a->loop);
	return 0;
}

/* libuv's thread pool runs the kNN scans (one per core at once,
 * docs/design.md §6), snapshot loads, screen builds and verifications; its
 * default of 4 threads would leave cores idle on a larger machine. Unless
 * UV_THREADPOOL_SIZE says otherwise: a thread per core and 2 more (a load
 * and a screen build beside a scan on every core), at least libuv's 4.
 * Set before the pool starts (at the first job). Returns the size. */
static unsigned size_thread_pool(void)
{
	const char *v = getenv("UV_THREADPOOL_SIZE");
	if (v) {
		/* libuv's own reading of it: atoi() into an unsigned, 0 is 1,
		 * at most 1024 */
		unsigned n = (unsigned)atoi(v);
		return n == 0 ? 1u : n > 1024 ? 1024u : n;
	}
	unsigned n = uv_available_parallelism() + 2;
	if (n < 4)
		n = 4;
	if (n > 1024)
		n = 1024;
	char text[16];
	snprintf(text, sizeof(text), "%u", n);
	(void)setenv("UV_THREADPOOL_SIZE", text, 1);
	return n;
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
	a.pool_threads = size_thread_pool();
	rc = run(&a);
	config_free(&a.cfg);
	return rc;
}
