/* Where vecgate's links to TiDB go and how each is protected: one
 * description built from [upstream] (struct upstream_target), and the
 * shared runtime object around it (struct upstream_group) that the session pool
 * and the cache's own connections (snapshot loads, patches) both use. Both
 * kinds of link choose a server from the same health, report failures to
 * it, and take their TLS settings from the same description
 * (docs/design.md §5). */
#ifndef VECGATE_CORE_UPSTREAM_H
#define VECGATE_CORE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct ssl_ctx_st; /* OpenSSL's SSL_CTX, built by net_tls_client_ctx() */

/* One server of [upstream] servers. */
struct upstream_server {
	char host[CONFIG_HOST_MAX];
	uint16_t port;
	char name[CONFIG_HOST_MAX + 8]; /* "host:port" as the file spells it, for logs */
};

/* How every link to TiDB is made. */
struct upstream_target {
	struct upstream_server servers[CONFIG_ADDRS_MAX];
	size_t n_servers;
	bool tls;        /* TLS on every link, never a plaintext fallback */
	bool tls_verify; /* the chain (ca_file or the system store) and the name */
	/* [upstream] tls_server_name: sent as SNI and matched against the
	 * certificate instead of each server's host; "" = the host. */
	char server_name[CONFIG_HOST_MAX];
	char ca_file[CONFIG_STR_MAX]; /* "" = the system's trust store */
	char cert_file[CONFIG_STR_MAX];
	char key_file[CONFIG_STR_MAX];
	int tls_min_minor;           /* lowest TLS 1.x accepted: 2 or 3 */
	uint64_t connect_timeout_ms; /* TCP connect, greeting and TLS handshake */
	/* The longest wait for one reply on a cache connection ([cache]
	 * load_timeout); sessions wait as long as their client does. */
	uint64_t read_timeout_ms;
};

/* Fills *t from cfg's [upstream] keys and [cache] load_timeout, checking
 * what the config parser does not: 0, or -EINVAL with one line in err. */
int upstream_target_from_config(const struct config *cfg, struct upstream_target *t, char *err,
                                size_t errlen) MUST_CHECK;

/* The name server i's certificate must carry and that goes out as SNI. */
const char *upstream_verify_name(const struct upstream_target *t, size_t i);
/* Whether that name is not server i's host, so that a client which can
 * only check the host it connected to (libmariadb) cannot check it. */
bool upstream_name_differs(const struct upstream_target *t, size_t i);
/* The TLS versions allowed, as libmariadb's MARIADB_OPT_TLS_VERSION takes
 * them: "TLSv1.2,TLSv1.3" or "TLSv1.3". */
const char *upstream_tls_versions(const struct upstream_target *t);
/* A timeout in ms as libmariadb takes it (whole seconds): rounded up, so
 * that it is never shorter than configured and never 0 (no timeout). */
unsigned upstream_timeout_s(uint64_t ms);

/* ---- --check-config: settings that leave a link less protected ---- */

/* Calls warn (when not NULL) once per problem with a one-line description
 * and returns the number of problems. */
size_t upstream_config_warnings(const struct config *cfg, void (*warn)(void *ctx, const char *line),
                                void *ctx);

/* ---- the shared object ---- */

struct upstream_group;

/* A copy of *t with health for each server (all healthy until one fails),
 * and the TLS context links verify with (NULL when TLS is off; owned by
 * the caller, who frees it after upstream_free). NULL when out of memory. */
struct upstream_group *upstream_group_new(const struct upstream_target *t,
                                          struct ssl_ctx_st *tls_ctx, uint64_t retry_max_ms);
void upstream_group_free(struct upstream_group *u);

/* The description. Everything but the timeouts is fixed for the object's
 * life; read those through upstream_timeouts(). */
const struct upstream_target *upstream_group_target(const struct upstream_group *u);
struct ssl_ctx_st *upstream_tls_ctx(const struct upstream_group *u);

/* SIGHUP: the reloadable keys. Thread safe. */
void upstream_set_timeouts(struct upstream_group *u, uint64_t connect_ms, uint64_t read_ms,
                           uint64_t retry_max_ms);
void upstream_timeouts(struct upstream_group *u, uint64_t *connect_ms, uint64_t *read_ms);

/* Health, shared by every thread: a server is healthy until a link fails
 * to reach it; then no new link is tried before retry_at_ms, which backs
 * off from 200 ms doubling up to health_check_interval, and the first link
 * that succeeds makes it healthy again. The pool's health checks are links
 * too (upstream_checked). Each change is logged once. */
struct upstream_health {
	bool healthy;
	uint64_t retry_at_ms;
	uint64_t failures; /* links that failed to reach it, all kinds */
	char last_error[256];
	uint64_t sessions;      /* client sessions bound to it now */
	uint64_t checks;        /* health checks completed */
	uint64_t last_check_ms; /* when the last one completed (core_now_ms), 0 = none */
	bool last_check_ok;
};
void upstream_health(struct upstream_group *u, size_t i, struct upstream_health *out);
/* A link to server i failed (what: why, for the log and /status). */
void upstream_failed(struct upstream_group *u, size_t i, const char *what);
/* A link to server i got through. */
void upstream_reachable(struct upstream_group *u, size_t i);
/* A health check of server i completed: recorded as the last check, then
 * counted as a link that failed (what) or got through. */
void upstream_checked(struct upstream_group *u, size_t i, bool ok, const char *what);
/* The interval between health checks of a healthy server, which is also
 * the longest back-off (health_check_interval). */
uint64_t upstream_check_interval(struct upstream_group *u);
/* A client session was bound to server i (+1) or ended (-1). */
void upstream_sessions_add(struct upstream_group *u, size_t i, int delta);

/* Servers in the order a new link tries them: healthy ones first, fewest
 * sessions first and, among equals, starting one further each call (the
 * pool's least-connections balancing and the cache's connections share
 * it); then failed ones whose back-off is over; then the rest, soonest
 * back-off end first. Writes n_servers indexes to order; returns
 * n_servers. */
size_t upstream_order(struct upstream_group *u, size_t *order);
/* How many of the servers are healthy. */
size_t upstream_healthy_count(struct upstream_group *u);

#endif
