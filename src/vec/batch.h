/* Several exact kNN queries on one vec_table answered by one pass over its
 * blocks: each block is read once for all of them, element j of its 16 rows
 * loaded once and accumulated into every query's sums, then each query's
 * distances go to its own top-k. Every lane still sums its row in element
 * order with the single-query kernels' arithmetic, so each query's answer
 * is vec_knn_arith's, hit for hit and bit for bit. */
#ifndef VECGATE_VEC_BATCH_H
#define VECGATE_VEC_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "vec/block.h"
#include "vec/topk.h"
#include "vec/vec.h"

/* One query of a batch: vec_knn_arith's arguments, and its results. */
struct vec_batch_query {
	const float *q; /* q[0..dim), kept by the caller during the call */
	size_t dim;
	size_t k, offset;
	const struct vec_threshold *th; /* NULL: none */
	const uint64_t *allowed;        /* NULL: every row (vec_knn's row filter) */
	struct vec_hit *out;            /* room for k */
	/* Set by vec_knn_batch: */
	size_t n_out;
	int rc; /* what vec_knn_arith would return for this query */
};

/* Answers qs[0..n) (metric m, arithmetic arith for all) in one pass over
 * t: each query's out, n_out and rc are what vec_knn_arith(t, m, arith,
 * q, dim, k, offset, th, allowed, out, &n_out) gives. Returns 0 when every
 * rc is 0, else the first nonzero rc; -ENOMEM for the batch's own memory
 * sets every rc. Thread-safe like vec_knn: any number of calls may share
 * one finished table. */
int vec_knn_batch(const struct vec_table *t, enum vec_metric m, enum vec_arith arith,
                  struct vec_batch_query *qs, size_t n) MUST_CHECK;

/* A scan split over threads: part `part` of `nparts` (0 <= part < nparts)
 * covers rows [*first, *end) of t. The parts are consecutive, cover every
 * row (NULL rows included) exactly once, hold about as many blocks each,
 * and never share a block, so each part's scan is vec_knn's with a row
 * filter limited to its rows, and no block is read twice. */
void vec_split_rows(const struct vec_table *t, size_t part, size_t nparts, size_t *first,
                    size_t *end);

/* Merges nlists hit lists, each in TiDB's order (vec_hit_before), into that
 * order, skips the first offset hits and copies up to k to out; returns how
 * many. When list i holds the best (offset + k) hits of row set i and the
 * sets are disjoint, the result is the answer over their union. At most
 * VEC_MERGE_MAX lists. */
#define VEC_MERGE_MAX 64
size_t vec_hits_merge(const struct vec_hit *const *lists, const size_t *n, size_t nlists,
                      size_t offset, size_t k, struct vec_hit *out);

#endif
