/* One cached table's snapshot: its rows as the text-protocol row payloads
 * TiDB sent (every cell exactly as TiDB formats it) and its vector column in
 * the SIMD layout. Immutable once loaded and shared by reference count, so
 * scans on pool threads and serving on the loop read it without locks. */
#ifndef VECGATE_CACHE_SNAPSHOT_H
#define VECGATE_CACHE_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "vec/block.h"

/* How WHERE filters can compare a column's cells exactly as TiDB does. */
enum cache_cmp {
	CACHE_CMP_NONE,     /* not supported: such a filter leaves the query to TiDB */
	CACHE_CMP_INT,      /* signed integer types: compare as int64 */
	CACHE_CMP_UINT,     /* unsigned integer types: compare as uint64 */
	CACHE_CMP_BYTES,    /* binary strings (binary collation): compare bytes */
	CACHE_CMP_PADSPACE, /* *_bin PAD SPACE collations: bytes, trailing spaces ignored */
};

struct cache_column {
	char name[256];
	char data_type[32]; /* information_schema DATA_TYPE, lower case: int, vector, ... */
	char collation[64]; /* COLLATION_NAME; "" when not a string */
	enum cache_cmp cmp;
	uint8_t wire_type; /* the type byte in this column's result definition */
	uint16_t wire_flags;
	uint8_t decimals;
};

struct cache_snapshot {
	atomic_int refs;
	uint64_t id; /* unique per load, for the result cache */
	char db[256];
	char table[256];
	uint64_t version;   /* the table's version when the load began */
	uint64_t loaded_ms; /* monotonic time the load's read began */
	uint64_t load_ms;   /* how long the load took */
	size_t n_cols;
	size_t vec_col; /* index of the vector column */
	struct cache_column *cols;
	size_t n_rows;
	uint8_t *rows;          /* text-protocol row payloads, back to back */
	size_t *row_off;        /* [n_rows + 1]: row r is rows[row_off[r], row_off[r+1]) */
	struct vec_table *vecs; /* row r of the table is row r here */
	size_t bytes;           /* memory held */
	bool mariadb;           /* the upstream is MariaDB (the test stand-in), not TiDB */
};

static inline void cache_snapshot_ref(struct cache_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}
void cache_snapshot_unref(struct cache_snapshot *s);

/* Row r's cell of column c: *p and *n point into the snapshot; false for
 * NULL. (Walks the row's length-encoded cells: rows are narrow.) */
bool cache_snapshot_cell(const struct cache_snapshot *s, size_t r, size_t c, const uint8_t **p,
                         size_t *n);

/* Where and how to load from. */
struct cache_load_spec {
	const char *host;
	int port;
	const char *user;
	const char *password;
	bool tls;
	bool tls_verify;
	const char *tls_ca_file; /* NULL or "": system store */
	const char *db, *table, *column;
	uint64_t version;    /* stamped on the snapshot */
	size_t memory_limit; /* give up past this many bytes */
	unsigned timeout_s;
};

/* Loads a snapshot over a control-plane connection: one SELECT, so TiDB
 * reads it at one consistent timestamp. Blocking: call it on a pool
 * thread. NULL with the reason in err. */
struct cache_snapshot *cache_snapshot_load(const struct cache_load_spec *spec, char *err,
                                           size_t errlen);

#endif
