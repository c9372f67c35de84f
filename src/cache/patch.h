/* Reading rows back by primary key after writes committed, on a pool thread
 * over a control-plane connection kept for the table (docs/design.md §10). */
#ifndef VECGATE_CACHE_PATCH_H
#define VECGATE_CACHE_PATCH_H

#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "cache/snapshot.h"

/* A connection as loads make it (TLS, verification, timeouts). NULL with
 * the reason in err. */
MYSQL *cache_connect(const struct cache_load_spec *spec, char *err, size_t errlen);

/* name as a backquoted SQL identifier in out (n bytes; names longer than
 * fit are cut). Returns out. */
char *cache_quote_ident(const char *name, char *out, size_t n);

/* An inclusive range of a single integer key (rows an AUTO_INCREMENT insert
 * generated). */
struct cache_key_range {
	uint64_t lo, hi;
	bool is_signed;
};

/* Reads the rows of keys (nkeys canonical keys, cache_key_append's form)
 * and of ranges from spec's table into a new segment with b's columns
 * (*out; empty when no row exists). *conn is opened when NULL and kept
 * open for the next call; closed and set NULL after an error. 0, or -EIO /
 * -ENOMEM / -ESTALE (the table's columns changed) with the reason in err. */
int cache_patch_read(MYSQL **conn, const struct cache_load_spec *spec, const struct cache_base *b,
                     const struct buf *keys, size_t nkeys, const struct cache_key_range *ranges,
                     size_t nranges, struct cache_segment **out, char *err,
                     size_t errlen) MUST_CHECK;

#endif
