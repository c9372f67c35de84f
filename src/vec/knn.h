/* The exact kNN query the cache runs: every row's TiDB distance to q from a
 * vec_table's blocks, fed block by block into a top-k selection. */
#ifndef VECGATE_VEC_KNN_H
#define VECGATE_VEC_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "vec/block.h"
#include "vec/topk.h"
#include "vec/vec.h"

/* SELECT ... ORDER BY <metric>(col, q) [ASC] LIMIT offset, k, with optional
 * WHERE <metric>(col, q) < / <= th->value and a row filter: row r takes part
 * only when bit r % 64 of allowed[r / 64] is set (allowed NULL: every row;
 * otherwise it holds ceil(rows / 64) words).
 *
 * out (room for k) gets up to k hits in TiDB's order (NULL first, ascending,
 * ties by row), *n_out how many. Distances are bit-identical to TiDB's.
 * Returns 0; -EDOM when the table holds a row of another dimension (TiDB
 * answers "vectors have different dimensions"); -EINVAL when the table has
 * a non-NULL row and dim is not the table's dimension (TiDB's error again),
 * or for an unknown metric; -ENOMEM. On any error the caller leaves the
 * query to TiDB. Thread-safe: any number of calls may share one finished
 * table; each allocates its own O(min(k + offset, rows)) selection. */
int vec_knn(const struct vec_table *t, enum vec_metric m, const float *q, size_t dim, size_t k,
            size_t offset, const struct vec_threshold *th, const uint64_t *allowed,
            struct vec_hit *out, size_t *n_out) MUST_CHECK;
/* vec_knn in a chosen arithmetic (enum vec_arith; vec_knn is
 * VEC_ARITH_SEPARATE): the distances are then bit-identical to those of a
 * TiDB whose Go build computes them that way. Same contract, and -EINVAL
 * for an unknown arithmetic. */
int vec_knn_arith(const struct vec_table *t, enum vec_metric m, enum vec_arith arith,
                  const float *q, size_t dim, size_t k, size_t offset,
                  const struct vec_threshold *th, const uint64_t *allowed, struct vec_hit *out,
                  size_t *n_out) MUST_CHECK;

#endif
