/* The result cache: whole encoded answers to identical repeated kNN
 * queries (same text, database, user, character set and protocol), replayed
 * until their table's snapshot changes. Bounded by bytes; the oldest
 * entries go first. */
#ifndef VECGATE_CACHE_RCACHE_H
#define VECGATE_CACHE_RCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/shape.h"
#include "cache/snapshot.h"

struct rcache;

struct rcache_hit {
	const uint8_t *prefix; /* column count and definitions, as packets */
	size_t prefix_len;
	const struct cache_meta *meta;
	const uint8_t *rows; /* row packets */
	size_t rows_len;
	size_t nrows;
};

struct rcache *rcache_new(size_t max_bytes);
void rcache_free(struct rcache *rc);
/* key: see cache_shape_key (plus the statement's text and parameters). */
uint64_t rcache_key(uint64_t shape_key, const void *text, size_t len);
/* A stored answer computed from snapshot snap (its id and the table's
 * schema version are checked on lookup). Copies everything it needs. */
void rcache_put(struct rcache *rc, uint64_t key, const struct cache_snapshot *snap,
                const struct cache_shape *sh, const uint8_t *rows, size_t rows_len, size_t nrows);
/* The answer for key if it was computed from snapshot snap_id of a table
 * still at schema_version; false otherwise (a stale entry is dropped). */
bool rcache_get(struct rcache *rc, uint64_t key, uint64_t snap_id, uint64_t schema_version,
                struct rcache_hit *hit);
size_t rcache_bytes(const struct rcache *rc);

#endif
