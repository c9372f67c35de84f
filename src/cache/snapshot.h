/* One cached table's snapshot: a base segment (the rows of the last full
 * load) with tombstones over the base rows that later writes replaced or
 * removed, and a small delta segment holding the rows those writes left,
 * read back from the database after they committed. Every version is
 * immutable and shared by reference count, so scans on pool threads and
 * serving on the loop read it without locks; a patch makes a new version
 * that shares the base (docs/design.md §10). Row r of a snapshot is base row
 * r for r < base rows, else delta row r - base rows. */
#ifndef VECGATE_CACHE_SNAPSHOT_H
#define VECGATE_CACHE_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/segment.h"
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

/* What a load established and every version of it shares: the columns,
 * the base rows, and the base rows' primary-key index. */
struct cache_base {
	atomic_int refs;
	size_t n_cols;
	size_t vec_col; /* index of the vector column */
	struct cache_column *cols;
	bool mariadb;             /* the upstream is MariaDB (the test stand-in), not TiDB */
	enum vec_dialect dialect; /* how its vector text parses */
	struct cache_segment *rows;
	/* The primary key, when patches are possible (else n_key 0, and
	 * why_no_key says why). */
	size_t n_key;
	size_t key_cols[8];
	const char *why_no_key;
	bool auto_increment;           /* the single key column is AUTO_INCREMENT */
	bool auto_random;              /* TiDB AUTO_RANDOM: generated keys cannot be read back */
	bool other_unique;             /* a UNIQUE key besides the primary key */
	struct cache_key_index *index; /* base row of each key; NULL without a key */
	uint64_t loaded_ms;            /* monotonic time the load's read began */
	uint64_t load_ms;              /* how long the load took */
	/* Per row: a hash of its bytes as the server sent them, and whether
	 * its vector cell is the canonical text of its floats (a refresh
	 * copies unchanged rows, cache_load_spec.prev). NULL: not kept. */
	uint64_t *row_fp;
	uint8_t *row_canonical;
	size_t reused_rows; /* rows the load copied from the previous base */
	size_t bytes;
};

struct cache_snapshot {
	atomic_int refs;
	uint64_t id; /* unique per version, for the result cache */
	char db[256];
	char table[256];
	uint64_t version;   /* the table's version whose writes it reflects */
	uint64_t loaded_ms; /* the base's load start: the age of rows not patched */
	uint64_t load_ms;
	/* The base's, for the readers of columns. */
	size_t n_cols;
	size_t vec_col;
	struct cache_column *cols;
	bool mariadb;
	struct cache_base *base;
	uint64_t *live;              /* [ceil(base rows / 64)] set for base rows not replaced;
	                              * NULL: every base row is live */
	size_t n_dead;               /* base rows replaced or removed */
	struct cache_segment *delta; /* NULL: none */
	size_t n_base;               /* base rows */
	size_t n_rows;               /* base rows + delta rows (dead ones still numbered) */
	size_t bytes;                /* memory held by this version alone plus the base */
};

static inline void cache_snapshot_ref(struct cache_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}
void cache_snapshot_unref(struct cache_snapshot *s);
void cache_base_unref(struct cache_base *b);
static inline void cache_base_ref(struct cache_base *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}
/* The base row holding a canonical key, or SIZE_MAX; tmp is scratch (one
 * per thread). Thread-safe. */
size_t cache_base_find(const struct cache_base *b, const uint8_t *key, size_t n, struct buf *tmp);

/* Live rows (base rows not replaced, plus the delta). */
size_t cache_snapshot_live_rows(const struct cache_snapshot *s);

/* Row r's cell of column c as the server printed it: false for NULL. *p
 * points into the snapshot, or into scratch for a vector cell rebuilt from
 * its floats (scratch: cache_snapshot_scratch_size(s) bytes; may be NULL
 * when c is not the vector column or that size is 0). */
bool cache_snapshot_cell(const struct cache_snapshot *s, size_t r, size_t c, char *scratch,
                         const uint8_t **p, size_t *n);
size_t cache_snapshot_scratch_size(const struct cache_snapshot *s);

/* A version made from a freshly loaded base: every row live, no delta. The
 * base is taken over. NULL when out of memory. */
struct cache_snapshot *cache_snapshot_from_base(struct cache_base *b, const char *db,
                                                const char *table, uint64_t version);

/* ---- primary keys ---- */

/* A key in canonical form: for each key column a u32 length (host order)
 * and the value's bytes (integers as canonical decimal text; strings as
 * their bytes, trailing spaces removed for PAD SPACE collations). */
struct cache_key_index;
/* Indexes the base rows by primary key (on a pool thread). 0, -ENOMEM, or
 * -EEXIST when two rows share a key (not a primary key after all). */
int cache_base_index(struct cache_base *b) MUST_CHECK;
/* Appends row r's canonical key (of a segment with the base's columns). */
int cache_key_of_row(const struct cache_base *b, const struct cache_segment *seg, size_t r,
                     struct buf *out) MUST_CHECK;
/* Canonical form of one key column's value as a statement wrote it (the
 * bytes sql/keys extracted): PAD SPACE strings lose trailing spaces. */
int cache_key_append(const struct cache_base *b, size_t key_col, const uint8_t *p, size_t n,
                     struct buf *out) MUST_CHECK;

/* A patch: the keys a batch of committed writes touched and the rows the
 * database holds for them now, read after those commits. */
struct cache_patch {
	struct buf keys; /* canonical keys back to back, each after a u32 length */
	size_t nkeys;
	struct cache_segment *rows; /* the rows read back (their keys may be new) */
	uint64_t version;           /* the table version the patch brings a snapshot to */
};

/* s with the patch applied: base rows and delta rows whose key is among the
 * patch's keys or its rows' keys are dropped, then the patch's rows are
 * added to the delta. A new version (refs 1) sharing s's base, or NULL when
 * out of memory. Runs on a pool thread. */
struct cache_snapshot *cache_snapshot_patch(const struct cache_snapshot *s,
                                            const struct cache_patch *p);

/* ---- loading ---- */

struct upstream_group;

/* Where and how to load from. */
struct cache_load_spec {
	/* The servers, TLS settings, timeouts and health the sessions use
	 * (core/upstream.h): loads and patches connect as they do. */
	struct upstream_group *upstream;
	const char *user;
	const char *password;
	const char *db, *table, *column;
	uint64_t version;    /* stamped on the snapshot */
	size_t memory_limit; /* give up past this many bytes */
	/* The base of the snapshot being refreshed, or NULL: a row whose bytes
	 * are what they were then is copied from it instead of parsed. The
	 * caller keeps it referenced during the load. */
	const struct cache_base *prev;
};

#endif
