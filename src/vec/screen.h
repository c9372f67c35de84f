/* The screened exact kNN: a compact int8 copy of a vec_table's rows gives
 * every row a proven interval [lb, ub] around TiDB's distance, and only the
 * blocks that may hold an answer row are read in float32 and computed
 * exactly. The answer is vec_knn_arith's, hit for hit and bit for bit; the
 * proof is in screen.c, next to the bounds. The int8 pass reads about a
 * quarter of the float32 bytes: on AVX-512 with VNNI and VBMI it sums c * q'
 * exactly in integers (q' the query in two int8 terms), elsewhere in
 * float32 (AVX-512F, AVX2) or in integers (scalar); L1 always in float32. */
#ifndef VECGATE_VEC_SCREEN_H
#define VECGATE_VEC_SCREEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vec/batch.h"
#include "vec/block.h"
#include "vec/topk.h"
#include "vec/vec.h"

/* Per row: dim int8 codes c and a scale s (symmetric: s = max|a| / 127,
 * c = round(a / s)), transposed in blocks of VEC_BLOCK_W like the float
 * blocks (element j of a block's 16 rows is 16 contiguous bytes), and the
 * error terms of the bounds, rounded up: ||a - s*c||_2, ||a - s*c||_1,
 * ||a||_2, ||s*c||_2. Rows with a non-finite element, a zero scale or a
 * magnitude where float32 sums could overflow or lose everything to
 * underflow (max|a| > 1e15 or < 1e-15) are "in doubt" and always computed
 * exactly. Read-only once built; it belongs to the table it was built from,
 * which must outlive it. */
struct vec_screen;

/* The compact copy of a finished table; NULL when out of memory. */
struct vec_screen *vec_screen_build(const struct vec_table *t);
void vec_screen_free(struct vec_screen *s);
/* Whether vec_screen_build quantizes a block's rows together in AVX-512
 * vectors where the CPU can (the default) or row by row: the same screen
 * bit for bit either way; for tests and benchmarks. */
void vec_screen_build_use_vectors(bool use);
/* Whether screens a and b (built from tables of the same shape) hold the
 * same codes and per-row terms, bit for bit: for tests. */
bool vec_screen_same(const struct vec_screen *a, const struct vec_screen *b);
/* What vec_screen_bytes() of vec_screen_build(t) will be, before it is
 * built. */
size_t vec_screen_build_bytes(const struct vec_table *t);
/* Bytes allocated for the screen (about dim + 29 bytes per row). */
size_t vec_screen_bytes(const struct vec_screen *s);
/* Rows in doubt (always computed exactly). */
size_t vec_screen_doubt_rows(const struct vec_screen *s);

/* What one screened query did. */
struct vec_screen_stats {
	size_t blocks;          /* blocks in the table */
	size_t blocks_screened; /* blocks whose int8 codes were read */
	size_t rows_screened;   /* allowed rows in those blocks */
	size_t blocks_exact;    /* blocks computed exactly in float32 */
	size_t blocks_second;   /* blocks whose query's second int8 term was summed */
	size_t shared_first;    /* batch: queries whose first term was summed with others' */
	size_t lb_shortcut;     /* groups of 8 rows pruned without their square roots */
	size_t candidates;      /* non-NULL rows offered to the selection */
	size_t doubt;           /* of them, rows in doubt */
	bool fallback;          /* the query itself was in doubt: a plain exact scan */
};

/* vec_knn_arith(t, m, arith, q, dim, k, offset, th, allowed, out, n_out),
 * answered through the screen s built from t: the same return codes, the
 * same hits in the same order, the same distances bit for bit. A query
 * with a non-finite element, all zeros, or max|q| outside [1e-15, 1e15] is
 * answered by vec_knn_arith itself. -EINVAL also when s was not built from
 * t. Thread-safe like vec_knn. */
int vec_knn_screened(const struct vec_table *t, const struct vec_screen *s, enum vec_metric m,
                     enum vec_arith arith, const float *q, size_t dim, size_t k, size_t offset,
                     const struct vec_threshold *th, const uint64_t *allowed, struct vec_hit *out,
                     size_t *n_out) MUST_CHECK;
/* vec_knn_screened, and what it did in *st (not NULL). */
int vec_knn_screened_stats(const struct vec_table *t, const struct vec_screen *s, enum vec_metric m,
                           enum vec_arith arith, const float *q, size_t dim, size_t k,
                           size_t offset, const struct vec_threshold *th, const uint64_t *allowed,
                           struct vec_hit *out, size_t *n_out,
                           struct vec_screen_stats *st) MUST_CHECK;

/* Several screened queries on one table (metric m, arithmetic arith for
 * all), answered together: pass 1 runs over the int8 codes 16 blocks at a
 * time (196 KiB at 768 dimensions), every query's bounds computed from them
 * while they are in the cache (the first int8 term of up to 16 queries in
 * one sweep), so the codes are read from memory once for the
 * batch; then each query's candidate blocks are computed exactly. Each
 * query's out, n_out and rc are what vec_knn_screened (so vec_knn_arith)
 * gives for it alone; queries in doubt share one plain pass
 * (vec_knn_batch). Returns 0 when every rc is 0, else the first nonzero
 * rc. *st (may be NULL): the queries' statistics summed (blocks is the
 * table's). Thread-safe like vec_knn. */
int vec_knn_screened_batch(const struct vec_table *t, const struct vec_screen *s, enum vec_metric m,
                           enum vec_arith arith, struct vec_batch_query *qs, size_t n,
                           struct vec_screen_stats *st) MUST_CHECK;
/* A shared pass that queries join while it runs. vec_knn_screened_batch
 * answers the queries it was given; a sweep reads the screen's codes one
 * tile (SCREEN_BATCH blocks) per vec_sweep_step for every query it holds,
 * and a query added at any step starts at the tile the sweep is at,
 * wraps around from the last tile to the first, and is answered after the
 * step that completes its round. Its answer does not depend on where it
 * started (docs/design.md §6): out, n_out and rc are vec_knn_screened's for
 * it alone. At most VEC_SWEEP_MAX queries at once. Not thread-safe: one
 * thread steps a sweep and adds to it; any number of sweeps (and other
 * scans) may share one finished table and screen. */
#define VEC_SWEEP_MAX 16
struct vec_sweep;
/* A sweep over t through s (built from t), for queries of metric m and
 * arithmetic arith; NULL when out of memory. */
struct vec_sweep *vec_sweep_new(const struct vec_table *t, const struct vec_screen *s,
                                enum vec_metric m, enum vec_arith arith);
/* Adds bq (kept by the caller, q, th, allowed and out included, until it
 * is answered). 0: it takes part from the next step; 1: it is answered
 * already (a query in doubt, k = 0, a table without blocks, or an error:
 * bq->rc says); -EBUSY: the sweep holds VEC_SWEEP_MAX queries. */
int vec_sweep_add(struct vec_sweep *w, struct vec_batch_query *bq) MUST_CHECK;
/* Reads the next tile for every query the sweep holds, and answers those
 * whose round it completes: they are stored in done[0..n) (room for
 * VEC_SWEEP_MAX) and leave the sweep; returns n. shared[i] (may be NULL):
 * whether done[i] shared a step with another query. */
size_t vec_sweep_step(struct vec_sweep *w, struct vec_batch_query **done, bool *shared);
/* The queries the sweep holds. */
size_t vec_sweep_size(const struct vec_sweep *w);
/* Frees w; queries it still holds are left unanswered (their rc is
 * -ECANCELED). */
void vec_sweep_free(struct vec_sweep *w);

/* Whether screened scans on an AVX-512 CPU with VNNI and VBMI use the
 * integer kernel (the default) or the float one of CPUs without them: for
 * tests and benchmarks; call it while no scan runs. */
void vec_screen_use_vnni(bool use);

/* Whether screened scans on AVX-512 compute the rows' lower bounds 16 at a
 * time in vectors first (the default) or row by row only: the same answers
 * either way; for tests and benchmarks; call it while no scan runs. */
void vec_screen_use_lb_gate(bool use);
/* Whether the AVX-512 lower-bound step prunes eight cosine or L2 rows at
 * once without their square roots (and cosine's divisions) when it can
 * prove every one of them pruned (the default), or always computes their
 * bounds: the same rows pruned either way; for tests and benchmarks; call
 * it while no scan runs. */
void vec_screen_use_lb_shortcut(bool use);
/* For tests: that shortcut at its edge. For every block of s (built from
 * t), metric m and query q, with the threshold at each row's own lower
 * bound, just below it and just above it, *settled counts the groups of
 * eight the shortcut settled and *unsound those among them with a row
 * whose bound is not above the threshold (must be 0). Both stay 0 where
 * the shortcut does not run (no AVX-512, L1 and negative inner product, or
 * vec_screen_use_lb_shortcut(false)). -EDOM: the query is in doubt. */
int vec_screen_check_lb_shortcut(const struct vec_table *t, const struct vec_screen *s,
                                 enum vec_metric m, enum vec_arith arith, const float *q,
                                 size_t dim, size_t *unsound, size_t *settled) MUST_CHECK;
/* For tests only: makes the bounds UNSOUND, to show that each part of them
 * matters. The quantization errors (||a - s*c||_2 and _1) are multiplied
 * by err_scale (1 restores them), and with drop_gamma the float32 rounding
 * terms are left out. Call it before the screen is shared. */
void vec_screen_weaken_bounds(struct vec_screen *s, double err_scale, bool drop_gamma);

#endif
