/* Sockets and TLS on the event loop: the only code that calls libuv's stream
 * API and OpenSSL. A net_conn is a TCP stream that can switch to TLS mid-way
 * (MySQL's SSLRequest), with plaintext in/out buffers for its owner. */
#ifndef VECGATE_NET_NET_H
#define VECGATE_NET_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"

struct net_conn;
typedef struct ssl_ctx_st SSL_CTX;

enum net_event {
	NET_EV_CONNECTED, /* outgoing TCP connect finished; status 0 or a libuv error */
	NET_EV_TLS_DONE,  /* TLS handshake finished; status 0 or negative error */
	NET_EV_DATA,      /* new plaintext bytes appended to c->in */
	NET_EV_EOF,       /* the peer closed or the stream failed (status: error or UV_EOF) */
	NET_EV_DRAINED,   /* every queued byte has been handed to the kernel */
	NET_EV_CLOSED,    /* the handle is closed: the owner may free its state now */
};

typedef void (*net_event_cb)(struct net_conn *c, enum net_event ev, int status);

enum net_tls_state {
	NET_TLS_NONE,      /* plaintext */
	NET_TLS_HANDSHAKE, /* handshake in progress: c->in receives nothing */
	NET_TLS_ON,        /* encrypted */
};

struct net_conn {
	uv_tcp_t tcp;
	uv_loop_t *loop;
	net_event_cb cb;
	void *data;         /* the owner's */
	struct buf in;      /* plaintext received, not yet consumed by the owner */
	struct buf out;     /* plaintext queued by net_write, flushed before the next poll */
	struct ssl_st *ssl; /* NULL until TLS starts */
	/* Ciphertext from the peer, read by OpenSSL through the connection's
	 * BIO: rd/rd_len is the chunk just read (libuv's buffer, valid during
	 * the read callback only), cin what is left of earlier chunks. */
	const uint8_t *rd;
	size_t rd_len;
	struct buf cin;
	struct buf cout; /* ciphertext from OpenSSL, sent to the peer on flush */
	enum net_tls_state tls;
	size_t queued;               /* bytes handed to uv_write and not yet written */
	struct net_conn *dirty_next; /* on the loop's flush list */
	struct net_conn **dirty_pprev;
	bool reading;
	bool paused; /* the owner stopped reading (back-pressure) */
	bool closing;
	bool eof_sent;     /* NET_EV_EOF delivered once */
	bool notify_drain; /* the owner waits for NET_EV_DRAINED */
	void **resume;     /* TLS client: where the session to resume is kept
	                    * (and new tickets are stored); NULL: none */
	uint64_t bytes_in;
	uint64_t bytes_out;
	char peer[64]; /* "ip:port", for logs */
};

/* Per-loop state (flush list, posts). net_loop_init() once per loop before
 * use, on the thread that runs the loop. */
int net_loop_init(uv_loop_t *loop) MUST_CHECK;
/* Runs the posts still queued, then closes the loop's own handles. */
void net_loop_close(uv_loop_t *loop);
/* The loop of the calling thread: the one net_loop_run() runs there, else
 * the first net_loop_init() made there; NULL on a pool thread. */
uv_loop_t *net_loop_current(void);
/* Whether the calling thread may act for loop's: it runs loop, or it has no
 * loop of its own (a test's thread, a process with one loop). */
bool net_loop_is_current(const uv_loop_t *loop);
/* Runs loop on the calling thread (a worker loop's) until it ends. */
int net_loop_run(uv_loop_t *loop);

/* A call to run on another loop's thread (worker loops, docs/design.md §2):
 * embedded in the caller's struct, so posting never allocates. */
struct net_post {
	struct net_post *next;
	void (*fn)(struct net_post *p);
	bool queued; /* under the loop's post lock */
};
/* Queues p->fn(p) to run on loop's thread, from any thread; a post still
 * queued is not queued again. 0, or -EPIPE when the loop is closed. The
 * loop must outlive the call. */
int net_loop_post(uv_loop_t *loop, struct net_post *p) MUST_CHECK;
/* Whether an idle loop keeps running for its posts (worker loops wait for
 * work from the others; the main loop ends when its handles close). */
void net_loop_keep_alive(uv_loop_t *loop, bool on);

/* Listening socket. accept_cb gets a new connection already reading, whose
 * owner must set c->cb and c->data at once (events start on the next read). */
struct net_listener;
typedef void (*net_accept_cb)(struct net_listener *l, struct net_conn *c);
/* host:port to bind (reuseport: for several worker loops). NULL on error,
 * with *err set to a libuv error. */
/* Whether host:port is free to bind without SO_REUSEPORT (another process
 * listening there with SO_REUSEPORT of its own would otherwise share the
 * port with several worker loops' sockets silently). 0 or -errno. */
int net_listen_check(const char *host, int port) MUST_CHECK;
struct net_listener *net_listen(uv_loop_t *loop, const char *host, int port, int backlog,
                                bool reuseport, net_accept_cb cb, void *data, int *err);
void *net_listener_data(struct net_listener *l);
void net_listener_close(struct net_listener *l);

/* Outgoing connection to host:port (numeric or resolved through getaddrinfo).
 * NET_EV_CONNECTED follows. NULL only when out of memory. */
struct net_conn *net_connect(uv_loop_t *loop, const char *host, int port, net_event_cb cb,
                             void *data);

/* Queues plaintext for the peer (encrypted if TLS is on). Flushed once per
 * loop iteration, so many small writes become one syscall. */
int net_write(struct net_conn *c, const void *p, size_t n) MUST_CHECK;
/* Sends what is queued now instead of at the end of the iteration. */
void net_flush(struct net_conn *c);

/* TCP keepalive with this idle time in seconds; 0 turns it off. */
void net_keepalive(struct net_conn *c, unsigned secs);

/* Asks for one NET_EV_DRAINED once everything queued so far has reached
 * the kernel, even when that happens without waiting (a write that the
 * kernel takes whole never calls back otherwise). */
void net_notify_drained(struct net_conn *c);

/* Back-pressure: stop/resume delivering NET_EV_DATA. */
void net_pause(struct net_conn *c);
void net_resume(struct net_conn *c);

/* Starts TLS on an established stream. The owner must have consumed the
 * plaintext it understood from c->in: what is left there is taken as the
 * peer's first TLS bytes (a client may send its ClientHello right behind
 * SSLRequest). For clients, server_name is sent as SNI (unless it is an IP
 * address) and verified against the certificate when verify is set.
 * NET_EV_TLS_DONE follows. */
int net_start_tls_server(struct net_conn *c, SSL_CTX *ctx) MUST_CHECK;
int net_start_tls_client(struct net_conn *c, SSL_CTX *ctx, const char *server_name,
                         bool verify) MUST_CHECK;
/* Frees a TLS session kept in a resume slot (see net_conn.resume). */
void net_tls_session_free(void *session);
/* Whether the TLS handshake resumed an earlier session. */
bool net_tls_resumed(const struct net_conn *c);
/* TLS version and cipher of an encrypted connection ("" when plaintext). */
const char *net_tls_version(const struct net_conn *c);
const char *net_tls_cipher(const struct net_conn *c);
/* Last TLS error text of this thread, for logs. */
const char *net_tls_error(void);

/* Closes the connection after handing queued data and a TLS close_notify to
 * the kernel where it takes them at once. NET_EV_CLOSED follows; the
 * net_conn is freed after it. */
void net_close(struct net_conn *c);

/* TLS contexts. Errors: NULL and a message in err. */
/* ca: when set, TLS clients must present a certificate that chains to it. */
SSL_CTX *net_tls_server_ctx(const char *cert, const char *key, const char *ca,
                            int min_version_minor, char *err, size_t errlen);
SSL_CTX *net_tls_client_ctx(const char *ca_file, bool verify, int min_version_minor,
                            const char *cert, const char *key, char *err, size_t errlen);
void net_tls_ctx_free(SSL_CTX *ctx);

/* Work off the event loop, in libuv's thread pool: work(data) runs on a
 * pool thread, then done(data, status) on the loop (status 0, or
 * UV_ECANCELED). The request is freed by net. 0 or a libuv error. */
int net_work_submit(uv_loop_t *loop, void (*work)(void *data), void (*done)(void *data, int status),
                    void *data) MUST_CHECK;
/* Work submitted on any loop whose done has not returned yet. */
size_t net_work_in_flight(void);
/* Work submitted on any loop that no pool thread has started yet: work that
 * waits for a thread (long-running work gives its thread back when it sees
 * some). */
size_t net_work_queued(void);

/* Timers, so that code above net needs no libuv of its own. */
struct net_timer {
	uv_timer_t t;
	void (*cb)(struct net_timer *t);
	void (*done)(struct net_timer *t);
	void *data;
	bool closing;
};
void net_timer_init(uv_loop_t *loop, struct net_timer *t, void (*cb)(struct net_timer *),
                    void *data);
void net_timer_start(struct net_timer *t, uint64_t ms);
void net_timer_stop(struct net_timer *t);
/* Closes the handle; the memory must stay valid until done(t) is called. */
void net_timer_close(struct net_timer *t, void (*done)(struct net_timer *));

#endif
