/* Captured answers' column definitions, per query shape: the first
 * execution of a shape by a user goes to TiDB, whose response gives the
 * exact column definition packets (and proves the user may read them);
 * vecgate then computes the same answer from its snapshot and compares it
 * with TiDB's rows before it ever answers that shape itself. */
#ifndef VECGATE_CACHE_SHAPE_H
#define VECGATE_CACHE_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "vec/vec.h"

struct cache_table;

/* How TiDB ended an answer: the EOF after the definitions (empty under
 * DEPRECATE_EOF) and the terminator, with the session status before and
 * after, so vecgate's answers change the status as TiDB's did. */
struct cache_meta {
	uint16_t before, after, mid_status;
	struct buf mid;
	struct buf term;
};
void cache_meta_free(struct cache_meta *m);
int cache_meta_copy(struct cache_meta *dst, const struct cache_meta *src) MUST_CHECK;

/* Changed only by the cache_shape_* functions below, which assert the
 * transitions: PENDING -> VERIFIED (a comparison matched) or REJECTED (the
 * third mismatch); VERIFIED stays VERIFIED when a renewal's comparison
 * matches (or none could be made) and goes back to PENDING when it does
 * not (TiDB's plan, and with it the arithmetic, may have changed), or to
 * REJECTED on the third mismatch; REJECTED is final. */
enum cache_shape_state {
	CACHE_SHAPE_PENDING,  /* captured, comparison not done yet */
	CACHE_SHAPE_VERIFIED, /* vecgate's answer matched TiDB's: served from the cache */
	CACHE_SHAPE_REJECTED, /* repeated mismatches: always sent to TiDB */
};

/* Answers that differ from TiDB's before a shape is rejected for good. */
#define CACHE_SHAPE_MISMATCHES_TO_REJECT 3

struct cache_shape {
	uint64_t key;
	struct cache_table *table;
	uint64_t schema_version; /* the table's at capture */
	enum cache_shape_state state;
	int mismatches;
	bool verifying;
	/* The arithmetic of TiDB's distances (docs/tidb.md §3), known once a
	 * comparison matched in one arithmetic and not in the other: answers
	 * from memory compute in it. Until then (every match so far was the
	 * same in both) an answer is served only when both agree on it. */
	enum vec_arith arith;
	bool arith_known;
	int users; /* answers in flight reading it: not evicted */
	struct cache_meta meta;
	uint32_t ncols;
	uint8_t *types;  /* [ncols] type byte of each definition */
	struct buf defs; /* each definition: u32 length, then the payload */
	uint64_t hits;
	uint64_t verified_ms; /* when TiDB last proved the user may read the answer */
	/* A session's renewal of the proof (its query at TiDB, then the
	 * comparison) in flight since then; 0: none (sess_cache.c). */
	uint64_t renewing_ms;
	/* The last renewal ended without renewing the proof (TiDB refused,
	 * nothing compared): no more answers under the expired proof until a
	 * renewal succeeds. */
	bool renewal_failed;
	uint64_t last_used_ms;
	struct cache_shape *next; /* hash chain */
};

/* The key of a shape for a session: the statement's shape hash with who
 * asks and how the answer is encoded. */
uint64_t cache_shape_key(uint64_t shape, const char *user, const char *db, uint64_t settings,
                         bool binary, bool deprecate_eof);

struct cache_shapes;
struct cache_shapes *cache_shapes_new(size_t max);
void cache_shapes_free(struct cache_shapes *s);
struct cache_shape *cache_shapes_find(struct cache_shapes *s, uint64_t key);
/* Adds (or replaces) the shape for key with the definitions of a response:
 * defs holds ncols payloads as described above. NULL when out of memory. */
struct cache_shape *cache_shapes_put(struct cache_shapes *s, uint64_t key, struct cache_table *t,
                                     uint64_t schema_version, const struct buf *defs,
                                     uint32_t ncols);
/* Forgets every shape of a table (its definition changed), or of every
 * table (t NULL: privileges may have changed). */
void cache_shapes_drop_table(struct cache_shapes *s, const struct cache_table *t);
size_t cache_shapes_count(const struct cache_shapes *s);

/* A comparison of vecgate's answer with TiDB's starts (one at a time). */
void cache_shape_verify_start(struct cache_shape *sh);
/* It ended: match makes the shape VERIFIED as of now_ms, and with
 * decided (only arith matched) computing in arith from then on; a match in
 * both arithmetics leaves the arithmetic as it was. A mismatch counts
 * towards REJECTED and takes a VERIFIED shape back to PENDING. ok false:
 * nothing was compared (out of memory). */
void cache_shape_verify_end(struct cache_shape *sh, bool ok, bool match, enum vec_arith arith,
                            bool decided, uint64_t now_ms);
/* TiDB answered a VERIFIED shape's user again: the proof is renewed. */
void cache_shape_renew(struct cache_shape *sh, uint64_t now_ms);

/* The nth definition payload of a shape. */
const uint8_t *cache_shape_def(const struct cache_shape *sh, uint32_t nth, uint32_t *len);

struct vec_hit;

/* Compares TiDB's rows with vecgate's, tie-aware (docs/tidb.md §5). Each buffer
 * holds row payloads, each prefixed by its u32 length; hits are vecgate's
 * rows with their distances. Rows form groups of equal distance (by hits):
 * a group must hold the same rows in any order (TiDB's order among exact
 * ties is not defined), except a group that continues past the end of the
 * answer (last_cut: the LIMIT cut it, so TiDB may have kept other rows of
 * it) or before its start (first_cut: the OFFSET did). With dist_col >= 0
 * (text rows), TiDB's distance cell must equal vecgate's at every rank. */
bool cache_rows_equivalent(const struct buf *tidb, const struct buf *ours,
                           const struct vec_hit *hits, size_t nhits, int dist_col, bool first_cut,
                           bool last_cut);

#endif
