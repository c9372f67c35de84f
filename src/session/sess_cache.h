/* A session's side of the vector cache: what its statements write (so
 * snapshots go stale on commit, and its own uncommitted writes keep its kNN
 * reads on TiDB), which session settings forbid answering from memory, the
 * capture of TiDB's first answer to a query shape, and answering later ones
 * from the snapshot. Called by session.c at fixed points of the relay. */
#ifndef VECGATE_SESSION_SESS_CACHE_H
#define VECGATE_SESSION_SESS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct proxy;
struct cache;
struct cache_shapes;
struct proto_logical;
struct proto_resp;

/* What every session of a proxy shares for the cache. */
struct proxy_cache {
	struct cache *cache;
	struct cache_shapes *shapes;
	struct rcache *results; /* NULL: no result cache */
	unsigned lexflags_default;
};

struct proxy_cache *proxy_cache_new(struct cache *c, size_t result_cache_bytes);
void proxy_cache_free(struct proxy_cache *pc);

/* Per-session state; NULL when the proxy has no cache. */
struct sess_cache *sess_cache_new(struct session *s);
void sess_cache_free(struct sess_cache *kc);
/* Login finished: the user, database and charset the client chose. */
void sess_cache_login(struct sess_cache *kc, const char *user, const char *db, size_t db_len,
                      uint8_t charset);

/* A complete client command in SESS_IDLE, before it is relayed. Returns
 * true when the cache has taken it (an answer from memory is on its way:
 * the session waits in SESS_CACHE until sess_cache_answer_done), false to
 * relay it to TiDB. */
bool sess_cache_command(struct sess_cache *kc, const uint8_t *payload, size_t len);
/* Each server packet of the response being relayed (the first physical
 * packet of a >= 16 MiB one: n is then 0xFFFFFF). */
void sess_cache_response_packet(struct sess_cache *kc, const uint8_t *p, size_t n);
/* The response is complete: r is its tracker (error, results, prepared
 * statement id), status the session's status after it. What the command did
 * to the session is taken from the server's answer, never from the request
 * alone. */
void sess_cache_response_done(struct sess_cache *kc, const struct proto_resp *r, uint16_t status);
/* COM_RESET_CONNECTION succeeded: transaction, statements and settings
 * are back to a fresh session's. */
void sess_cache_reset(struct sess_cache *kc);
/* COM_CHANGE_USER succeeded: as a reset, with another user and database. */
void sess_cache_changed_user(struct sess_cache *kc, const char *user, const char *db,
                             size_t db_len);
/* COM_CHANGE_USER was refused: who the session is now is not certain. */
void sess_cache_change_user_failed(struct sess_cache *kc);
/* Whether a job for this session is still on a pool thread. */
bool sess_cache_busy(const struct sess_cache *kc);

#endif
