/* Proof before service: the server's first answer to a query shape for a
 * session is recorded as it is relayed (its column definitions, how it ended
 * and its rows), then compared, on a pool thread, with the answer vecgate
 * computes from the snapshot. Only a shape whose answers matched is ever
 * answered from memory (docs/design.md §8). */
#ifndef VECGATE_CACHE_VERIFY_H
#define VECGATE_CACHE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cache/serve.h"
#include "proto/resp.h"
#include "sql/knn.h"

struct cache_table;
struct cache_shapes;
struct cache_capture;

/* Starts recording the server's answer to a recognised kNN statement. sql
 * is the statement text (the caller keeps it alive until the capture is
 * freed); k is taken over (left empty) on success; params are copied. key is the shape's key for
 * the session; status the session's status before the statement. NULL when
 * out of memory (nothing is recorded then). */
struct cache_capture *cache_capture_new(const char *sql, size_t sql_len, struct sql_knn *k,
                                        struct cache_table *t, uint64_t key, bool binary,
                                        const struct cache_param *params, size_t nparams,
                                        uint16_t status);

/* One packet of the answer as the response tracker read it. */
void cache_capture_packet(struct cache_capture *c, enum proto_pkt_role role, const uint8_t *p,
                          size_t n);

/* The answer ended without an error: a new or changed shape gets the
 * captured definitions and a comparison on a pool thread; a verified one
 * has its proof renewed. db is the session's database ("" unknown). */
void cache_capture_finish(struct cache_capture *c, struct cache_shapes *shapes, uv_loop_t *loop,
                          unsigned lexflags, const char *db);

void cache_capture_free(struct cache_capture *c);

#endif
