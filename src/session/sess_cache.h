/* A session's side of the vector cache: the decision to answer a recognised
 * kNN statement from memory or to relay it, answers computed on pool
 * threads, the session's prepared statements, and the admission of tables
 * the database answered for. The session calls in at fixed points of its
 * relay and hears back only through sess_cache_ops; what the session is
 * (database, roles, settings, transaction) is tracked by sess_state from the
 * server's answers. */
#ifndef VECGATE_SESSION_SESS_CACHE_H
#define VECGATE_SESSION_SESS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"

struct cache;
struct cache_shapes;
struct proto_resp;

/* What every session of a proxy shares for the cache. */
struct proxy_cache {
	struct cache *cache;
	struct cache_shapes *shapes;
	struct rcache *results; /* NULL: no result cache */
	/* A proof older than this is renewed: one execution goes to TiDB
	 * again ([cache] proof_max_age; reloadable). */
	uint64_t proof_max_age_ms;
};

struct proxy_cache *proxy_cache_new(struct cache *c, size_t result_cache_bytes,
                                    uint64_t proof_max_age_ms);
void proxy_cache_free(struct proxy_cache *pc);

/* How an answer computed off the loop reaches the session (owner). Each is
 * called at most once per SESS_CACHE_PENDING command, on the loop. */
struct sess_cache_ops {
	/* The whole answer, as TiDB would have sent it; status is the
	 * session's status after it. */
	void (*answer)(void *owner, const uint8_t *bytes, size_t len, uint16_t status);
	/* The command goes to TiDB after all (payload: the command's). */
	void (*relay)(void *owner, const uint8_t *payload, size_t len);
	/* No memory to compose the answer: the session cannot go on. */
	void (*failed)(void *owner);
};

enum sess_cache_verdict {
	SESS_CACHE_RELAY,    /* relay the command to TiDB */
	SESS_CACHE_ANSWERED, /* the answer is in *out (status in *out_status): send it */
	SESS_CACHE_PENDING,  /* an answer is being computed: wait for an op */
};

/* Per-session state. NULL when out of memory (the session then relays
 * everything). */
struct sess_cache *sess_cache_new(struct proxy_cache *pc, uv_loop_t *loop,
                                  const struct sess_cache_ops *ops, void *owner);
/* The session is gone; a computation in flight frees it when it returns
 * (no op is called then). */
void sess_cache_free(struct sess_cache *kc);
/* Login accepted by the server: the user, database and character set the
 * client chose, and the capabilities negotiated with it. */
void sess_cache_login(struct sess_cache *kc, const char *user, const char *db, size_t db_len,
                      uint8_t charset, uint32_t caps);

/* A complete client command (payload, command byte first) while the session
 * is idle, with its status now. The answer of SESS_CACHE_ANSWERED is
 * appended to out. */
enum sess_cache_verdict sess_cache_command(struct sess_cache *kc, const uint8_t *payload,
                                           size_t len, uint16_t status, struct buf *out,
                                           uint16_t *out_status) MUST_CHECK;
/* Each server packet of the response being relayed, after r read it (the
 * first physical packet of a >= 16 MiB one: n is then 0xFFFFFF). */
void sess_cache_response_packet(struct sess_cache *kc, const struct proto_resp *r, const uint8_t *p,
                                size_t n);
/* The response is complete: r is its tracker, status the session's status
 * after it. What the command did to the session is taken from the server's
 * answer, never from the request alone. */
void sess_cache_response_done(struct sess_cache *kc, const struct proto_resp *r, uint16_t status);
/* COM_CHANGE_USER accepted: as a reset, with another user and database. */
void sess_cache_changed_user(struct sess_cache *kc, const char *user, const char *db,
                             size_t db_len);
/* COM_CHANGE_USER refused: who the session is now is not certain. */
void sess_cache_change_user_failed(struct sess_cache *kc);

#endif
