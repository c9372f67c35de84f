/* Client sessions: one state machine per client connection, bound for its
 * whole life to one upstream TiDB connection taken from the pool; the login
 * is relayed to TiDB, then every command and its response. */
#ifndef VECGATE_SESSION_SESSION_H
#define VECGATE_SESSION_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "net/net.h"
#include "net/rsa.h"
#include "pool/pool.h"
#include "proto/mysql.h"
#include "proto/resp.h"

enum session_state {
	SESS_QUEUED,        /* accepted; waiting for a login slot (max_pending_logins) */
	SESS_WAIT_UPSTREAM, /* waiting for a spare upstream (its greeting) */
	SESS_GREETED,       /* greeting sent; waiting for SSLRequest or handshake response */
	SESS_CLIENT_TLS,    /* TLS handshake with the client in flight */
	SESS_AUTH,          /* handshake response relayed; relaying auth rounds */
	SESS_IDLE,          /* logged in; waiting for the client's next command */
	SESS_QUERY,         /* command relayed; relaying its response */
	SESS_INFILE,        /* relaying the client's LOCAL INFILE data */
	SESS_CHANGE_USER,   /* COM_CHANGE_USER relayed; relaying its auth rounds */
	SESS_CACHE,         /* a kNN query is being answered from the cache */
	SESS_CLOSING,       /* closing both connections */
	SESS_NSTATES
};

struct proxy_limits {
	size_t max_packet;
	size_t write_buffer_limit; /* back-pressure threshold */
	unsigned keepalive_s;      /* client TCP keepalive, 0 = off */
	uint64_t handshake_timeout_ms;
	uint64_t idle_timeout_ms;
	int max_client_conns;
	int max_pending_logins;             /* sessions from SESS_WAIT_UPSTREAM to SESS_AUTH */
	int max_pending_logins_per_address; /* of them, from one client address */
	bool require_tls;
};

struct session;
struct proxy;

/* What the proxies of every worker loop share (docs/design.md §2): the
 * limits that hold over all of them. */
struct proxy_shared {
	atomic_int sessions; /* client sessions, all workers: max_client_conns */
	pthread_mutex_t mu;  /* the login slots and the proxies below */
	int pending;         /* sessions holding a login slot */
	struct slot_addr {
		uint64_t addr;
		int n;
	} * addrs; /* the slots held per client address (n > 0) */
	size_t naddrs, addrs_cap;
	struct proxy *proxies[128];
	size_t nproxies;
};
int proxy_shared_init(struct proxy_shared *sh) MUST_CHECK;
void proxy_shared_free(struct proxy_shared *sh);

/* What all sessions of one event loop share. */
struct proxy {
	uv_loop_t *loop;
	struct proxy_shared *shared;
	/* Run admit_queued here: a login slot freed on another loop. */
	struct net_post admit_post;
	struct pool *pool;
	SSL_CTX *client_tls;       /* NULL: clients cannot use TLS */
	struct net_rsa *rsa;       /* for caching_sha2 over plaintext client links; may be NULL */
	struct proxy_cache *cache; /* the vector cache; NULL when off */
	struct proxy_limits lim;
	struct list_node by_state[SESS_NSTATES]; /* oldest first */
	atomic_int n_by_state[SESS_NSTATES];     /* read by other loops' /status */
	atomic_int n_sessions;
	bool draining; /* SIGTERM: idle sessions close, no new ones */
	uint64_t next_id;
	uint64_t id_step; /* session ids: next_id + id_step each (unique over workers) */
	void (*on_drained)(struct proxy *px); /* last session gone while draining */
};

struct session {
	struct proxy *px;
	uint64_t id;
	enum session_state state;
	struct net_conn *client;
	struct upstream *up;
	struct pool_waiter waiter;
	struct net_timer timer; /* handshake or idle timeout */
	struct proto_resp resp; /* tracks the response to the command in flight */
	uint32_t greet_caps;    /* capabilities offered to the client */
	uint32_t caps;          /* capabilities the client asked for */
	uint16_t status;        /* server status flags from the last OK/EOF */
	int8_t seq_delta;       /* upstream seq - client seq during login */
	uint8_t login_seq;      /* sequence id of the client's handshake response */
	bool sha2;              /* the auth exchange runs caching_sha2_password */
	bool sha2_full;         /* TiDB asked a plaintext client for its password:
	                         * vecgate does the RSA part (TiDB takes it over TLS only) */
	uint8_t auth_salt[PROTO_SCRAMBLE_LEN + 12];
	uint8_t auth_salt_len;
	uint8_t cmd; /* command in flight */
	bool client_tls;
	bool up_cont; /* relaying continuation packets of a >= 16 MiB packet */
	bool client_cont;
	bool paused_client; /* back-pressure */
	bool paused_up;
	bool paused_input;   /* too many client bytes wait unconsumed */
	bool timer_open;     /* the timer handle is not closed yet */
	uint64_t counted_in; /* client bytes already added to the metric */
	uint64_t cmd_start_ns;
	char user[64];
	char login_db[256]; /* the database named at login (or change user) */
	size_t login_db_len;
	uint8_t charset;       /* from the handshake response */
	struct sess_cache *kc; /* the cache's view of this session, or NULL */
	struct list_node link; /* on px->by_state[state] */
	uint64_t addr;         /* the client's address (no port), hashed */
};

/* shared: the limits over every worker's proxy (registered there; at most
 * 128 proxies). -ENOSPC when it has no room. */
int proxy_init(struct proxy *px, uv_loop_t *loop, struct proxy_shared *shared, struct pool *pool,
               SSL_CTX *client_tls, const struct proxy_limits *lim) MUST_CHECK;
/* Takes an accepted client connection. */
void session_accept(struct proxy *px, struct net_conn *client);
/* Stops taking new commands: idle sessions close now, busy ones after their
 * response; px->on_drained runs when none is left. */
void proxy_drain(struct proxy *px);
/* Closes every session at once. */
void proxy_close_all(struct proxy *px);
/* Starts the logins of queued sessions that px->lim now leaves room for
 * (after a reload raised max_pending_logins). */
void proxy_admit_queued(struct proxy *px);
const char *session_state_name(enum session_state s);

/* JSON counts by state summed over n proxies (any thread), for /status. */
int proxy_status_json(struct proxy *const *px, size_t n, struct buf *out) MUST_CHECK;

#endif
