/* Answering a recognised kNN query from a snapshot: the plan (which cells
 * and computed columns the answer has, the filters as exact comparisons on
 * cached cells), its execution (filters, SIMD scan, top-k, pytidb's outer
 * query) and the answer's rows as packets (each row's bytes are built by
 * proto/rows.h). */
#ifndef VECGATE_CACHE_SERVE_H
#define VECGATE_CACHE_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/snapshot.h"
#include "core/buf.h"
#include "sql/knn.h"
#include "vec/topk.h"

enum cache_out_kind {
	CACHE_OUT_CELL,  /* a table column's cell, as TiDB sent it */
	CACHE_OUT_DIST,  /* the distance, a DOUBLE (NULL for a NULL vector) */
	CACHE_OUT_SCORE, /* 1 - distance (pytidb's _score) */
};

struct cache_out_col {
	enum cache_out_kind kind;
	size_t col; /* CELL: the snapshot column */
};

/* A filter compiled to an exact comparison on one column's cells. */
struct cache_filter {
	size_t col;
	int op; /* enum sql_knn_op */
	enum cache_cmp cmp;
	size_t nvals;
	int64_t *ints;   /* CACHE_CMP_INT / UINT (as uint64 bits) */
	struct buf strs; /* BYTES / PADSPACE: values back to back */
	size_t *str_off; /* [nvals + 1] */
};

/* How the upstream prints a DOUBLE in text rows. */
enum cache_double_format {
	CACHE_DOUBLE_TIDB,    /* TiDB: shortest digits, fixed for 1e-15 <= |x| < 1e15 */
	CACHE_DOUBLE_MARIADB, /* MariaDB (the test stand-in): see serve.c */
};

struct cache_plan {
	struct cache_snapshot *snap; /* referenced while the plan lives */
	enum vec_metric metric;
	/* The float32 arithmetic of the distances: the one the shape's
	 * verification found in TiDB's answer (design.md §8); build leaves it
	 * VEC_ARITH_SEPARATE. */
	enum vec_arith arith;
	float *q;
	size_t dim;
	size_t k, offset; /* the (inner) LIMIT and OFFSET */
	bool has_th;
	struct vec_threshold th;
	struct cache_filter *filters; /* inner filters on cells */
	size_t nfilters;
	/* pytidb's outer query over the inner answer. */
	bool outer;
	size_t outer_k, outer_offset;
	bool outer_has_th;
	struct vec_threshold outer_th;
	struct cache_filter *outer_filters;
	size_t nouter_filters;
	struct cache_out_col *cols; /* the answer's columns, in order */
	size_t ncols;
	enum cache_double_format dfmt;
};

/* Binds a recognised query to a snapshot. db is the session's current
 * database (for an unqualified table); params (NULL for a text query) are
 * a prepared statement's bound values: params[i] for '?' number i, as
 * text (strings) or decimal text (integers). Returns 0, or a positive
 * value with *reason (static text) when the snapshot cannot answer exactly
 * (the caller sends the query to TiDB), or -ENOMEM. */
struct cache_param {
	const char *p;
	size_t n;
	bool is_null;
	bool is_int;
};
int cache_plan_build(struct cache_plan *plan, const char *sql, const struct sql_knn *k,
                     unsigned lexflags, struct cache_snapshot *snap, const char *db, size_t db_len,
                     const struct cache_param *params, size_t nparams,
                     const char **reason) MUST_CHECK;
void cache_plan_free(struct cache_plan *plan);

/* Runs the plan (filters, scan, top-k, outer query): thread-safe, for a
 * pool thread. *hits (malloc'd, caller frees) gets the answer's rows in
 * order. 0, or a negative errno (-EDOM: a row of another dimension, which
 * TiDB answers with an error: the caller leaves the query to TiDB). */
int cache_plan_run(const struct cache_plan *plan, struct vec_hit **hits, size_t *nhits) MUST_CHECK;

/* What runs did (counted by the caller's metrics). */
struct cache_run_stats {
	size_t screened;       /* segment scans read through a segment's int8 screen */
	size_t batched_passes; /* shared passes over a segment (screened or float32) */
};
/* cache_plan_run, adding to *st (may be NULL) what it did. */
int cache_plan_run_stats(const struct cache_plan *plan, struct vec_hit **hits, size_t *nhits,
                         struct cache_run_stats *st) MUST_CHECK;

/* One plan's run split over threads: the base segment's blocks in nparts
 * ranges (vec_split_rows), each scanned by cache_split_part on any thread
 * for its best OFFSET + LIMIT; then cache_split_finish, once every part
 * returned 0, scans the delta and merges everything in TiDB's order: the
 * answer of cache_plan_run, hit for hit. The plan must outlive the split.
 * cache_split_new: NULL when out of memory. */
struct cache_split;
/* How many parts are worth it for the plan's base segment, at most
 * max_parts (1: do not split). */
size_t cache_plan_split_parts(const struct cache_plan *plan, size_t max_parts);
struct cache_split *cache_split_new(const struct cache_plan *plan, size_t nparts);
int cache_split_part(struct cache_split *sp, size_t part) MUST_CHECK;
int cache_split_finish(struct cache_split *sp, struct vec_hit **hits, size_t *nhits,
                       struct cache_run_stats *st) MUST_CHECK;
void cache_split_free(struct cache_split *sp);

/* Whether two plans can share a pass: the same snapshot, metric,
 * arithmetic and query dimension. */
bool cache_plans_batchable(const struct cache_plan *a, const struct cache_plan *b);
/* Runs n batchable plans together: each segment is read once for all of
 * them, its int8 screen a tile at a time when it has one
 * (vec_knn_screened_batch), else its float32 blocks (vec_knn_batch); filters, the delta merge,
 * OFFSET and the outer query as cache_plan_run. hits[i], nhits[i], rcs[i]: plan i's answer (hits[i]
 * malloc'd, the caller frees it) and return code (cache_plan_run's;
 * -EINVAL for a plan not batchable with plans[0]). Returns the first
 * nonzero rcs[i], or 0. Thread-safe like cache_plan_run. */
int cache_plans_run_batch(const struct cache_plan *const *plans, size_t n, struct vec_hit **hits,
                          size_t *nhits, int *rcs, struct cache_run_stats *st) MUST_CHECK;

/* A shared pass over a snapshot's base segment that plans join while it
 * runs (vec_sweep over the segment's screen): each plan added starts at the
 * tile the pass is at and wraps around; once its round is complete, the
 * delta is scanned for it and everything merged as cache_plan_run does,
 * with the same answer. cache_sweep_new: NULL when the base segment has no
 * screen (the plan goes to cache_plans_run_batch) or out of memory; the
 * sweep references the plan's snapshot until it is freed. Plans must be
 * batchable with the first (cache_sweep_joins) and outlive their answer.
 * One thread steps a sweep and adds to it. */
struct cache_sweep;
/* A plan's answer: its tag (what cache_sweep_add was given), hits
 * (malloc'd, the caller frees them), and cache_plan_run's return code. */
struct cache_sweep_done {
	void *tag;
	struct vec_hit *hits;
	size_t nhits;
	int rc;
	bool shared; /* it shared a step of the sweep with another plan */
};
#define CACHE_SWEEP_MAX 16 /* VEC_SWEEP_MAX */
struct cache_sweep *cache_sweep_new(const struct cache_plan *plan);
/* Whether plan may join sw: the first plan's snapshot, metric, arithmetic
 * and dimension. */
bool cache_sweep_joins(const struct cache_sweep *sw, const struct cache_plan *plan);
/* 0: plan joined; 1: answered at once, in *done; -EBUSY: the sweep holds
 * CACHE_SWEEP_MAX plans; -EINVAL: not batchable; -ENOMEM. */
int cache_sweep_add(struct cache_sweep *sw, const struct cache_plan *plan, void *tag,
                    struct cache_sweep_done *done) MUST_CHECK;
/* One tile for every plan the sweep holds; the plans whose round it
 * completes are answered in done[0..n) (room for CACHE_SWEEP_MAX) and
 * leave the sweep. Returns n. */
size_t cache_sweep_step(struct cache_sweep *sw, struct cache_sweep_done *done);
/* The plans the sweep holds. */
size_t cache_sweep_size(const struct cache_sweep *sw);
/* Frees sw; the plans it still holds are not answered. */
void cache_sweep_free(struct cache_sweep *sw);

/* Appends the answer's rows as packets starting at sequence id *seq: text
 * protocol rows, or binary protocol rows for the column types in types[]
 * (one per column, from the captured definitions). 0, -ENOMEM, or
 * -ENOTSUP when a binary column type cannot be produced from text cells. */
int cache_encode_rows(const struct cache_plan *plan, const struct vec_hit *hits, size_t nhits,
                      bool binary, const uint8_t *types, struct buf *out, uint8_t *seq) MUST_CHECK;

/* The DOUBLE's text as the upstream prints it. */
size_t cache_format_double(double x, enum cache_double_format f, char out[static 48]);

#endif
