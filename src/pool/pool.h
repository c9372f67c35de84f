/* Upstream TiDB servers and their spare connections: each spare is already
 * past TCP, TiDB's greeting and TLS, so a client login costs no handshake to
 * TiDB. A spare's salt is shown to exactly one client. New sessions go to
 * the healthy server with the fewest sessions; every server is checked
 * every health_check_interval (docs/design.md §2). */
#ifndef VECGATE_POOL_POOL_H
#define VECGATE_POOL_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "core/list.h"
#include "core/upstream.h"
#include "net/net.h"
#include "proto/handshake.h"

struct pool;
struct pool_server;

/* Every change goes through one setter in pool.c, which checks that the
 * transition is legal and moves the connection between its server's lists
 * (pending: CONNECTING, GREETING, TLS; spares: SPARE; none otherwise). */
enum upstream_state {
	UP_CONNECTING, /* TCP connect in flight */
	UP_GREETING,   /* waiting for the server's greeting */
	UP_TLS,        /* SSLRequest sent, TLS handshake in flight */
	UP_SPARE,      /* ready, holding an unused greeting, in the spare list */
	UP_BOUND,      /* handed to a client session, which owns its events */
	UP_CLOSING,    /* closed, waiting for the handle to be released */
};

/* One connection to a TiDB server. */
struct upstream {
	struct net_conn *conn;
	struct pool_server *server;
	enum upstream_state state;
	struct proto_greeting greeting; /* strings point into greeting_raw */
	struct buf greeting_raw;        /* the greeting payload as TiDB sent it */
	uint8_t next_seq;               /* sequence id the server expects next */
	/* TLS is configured but not started: MySQL and MariaDB take the
	 * capabilities of the SSLRequest as final, so TLS waits for the
	 * client's own flags (upstream_start_tls). TiDB re-reads them from
	 * the handshake response, so its spares are ready past TLS. */
	bool tls_late;
	/* A health check: connect, greeting and (with TLS) the handshake,
	 * then closed without logging in. Never a spare. */
	bool probe;
	uint64_t created_ms;
	uint64_t ready_ms;
	struct list_node link; /* on the server's spare or pending list */
};

/* A session waiting for an upstream connection. */
struct pool_waiter {
	void (*cb)(struct pool_waiter *w, struct upstream *up, const char *err);
	struct list_node link; /* on the pool's waiters while queued */
	uint64_t since_ms;
	bool queued;
};

struct pool_options {
	/* The servers, how to reach and verify them (TLS, name, timeouts), and
	 * their health, shared with the cache's connections (core/upstream.h). */
	struct upstream_group *upstream;
	uint32_t client_caps; /* capabilities vecgate declares in SSLRequest */
	int spares;           /* spare connections kept per server */
	uint64_t spare_max_age_ms;
	unsigned keepalive_s; /* TCP keepalive idle time, 0 = off */
	/* Another worker's pool checks the servers' health (one check per
	 * server and interval, whatever the number of workers). */
	bool no_health_checks;
};

/* Creates the pool and starts connecting spares. NULL with *err set. */
struct pool *pool_new(uv_loop_t *loop, const struct pool_options *opt, char *err, size_t errlen);
/* Stops refilling and closes every connection the pool still owns. */
void pool_shutdown(struct pool *p);
void pool_free(struct pool *p);

/* Hands out a ready spare: at once through w->cb when there is one,
 * otherwise when one becomes ready, or with err after connect_timeout. The
 * caller owns the upstream afterwards (it becomes UP_BOUND). */
void pool_acquire(struct pool *p, struct pool_waiter *w);
/* Withdraws a waiting request (the client went away). */
void pool_cancel(struct pool *p, struct pool_waiter *w);

/* For a tls_late upstream: sends the SSLRequest with the client's flags
 * and starts TLS; NET_EV_TLS_DONE reaches the owner. Data written after
 * this call is held until the handshake is over. */
int upstream_start_tls(struct upstream *u, uint32_t caps, uint32_t max_packet,
                       uint8_t charset) MUST_CHECK;

/* A bound upstream finished its late TLS handshake (for the counters). */
void upstream_tls_done(struct upstream *u);

/* Closes a bound upstream the session no longer needs. */
void upstream_close(struct upstream *up);

/* SIGHUP: new spare count and age (the timeouts are the upstream
 * description's; the rest needs a restart). */
void pool_update(struct pool *p, int spares, uint64_t spare_max_age_ms);

/* JSON array with each server: health, sessions, spares, counters and the
 * last health check, for /status; the counts summed over every worker's
 * pool (pools[0] checks the servers' health and runs on this thread). */
int pool_status_json(struct pool *const *pools, size_t npools, struct buf *out) MUST_CHECK;

uint64_t pool_now_ms(void);

#endif
