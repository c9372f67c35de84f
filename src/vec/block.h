/* The in-memory copy of one cached table's vector column, laid out for
 * row-parallel SIMD: rows in blocks of VEC_BLOCK_W, each block transposed so
 * that element j of its rows is contiguous (block[j * W + lane]). */
#ifndef VECGATE_VEC_BLOCK_H
#define VECGATE_VEC_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h" /* MUST_CHECK */
#include "vec/vec.h"  /* enum vec_arith */

/* Rows per block: one AVX-512 float32 register. AVX2 reads a block as two
 * 8-lane halves, NEON as four 4-lane quarters, scalar code lane by lane, so
 * one layout serves every kernel. */
#define VEC_BLOCK_W 16
/* Alignment of every block (a cache line, an AVX-512 load). */
#define VEC_BLOCK_ALIGN 64
/* vec_builder_init's dim when the table's dimension is not declared: the
 * first non-NULL row's dimension becomes the table's. */
#define VEC_DIM_ANY SIZE_MAX

/* A run of blocks contiguous in memory. Blocks are allocated in chunks that
 * never move once written, so appending never copies the vectors. */
struct vec_chunk {
	float *data;        /* cap blocks of dim * VEC_BLOCK_W floats, 64-aligned */
	size_t first_block; /* index of data's first block in the table */
	size_t cap;         /* blocks that data has room for */
	size_t bytes;       /* allocated */
};

/* A row kept out of the blocks because its dimension is not the table's. */
struct vec_mixed_row {
	uint32_t row;
	uint32_t dim;
	float *v; /* dim floats, owned */
};

/* Read-only once vec_builder_finish() returns it, so any number of threads
 * may scan it at once. Rows are numbered 0..n_rows-1 in the order they were
 * added. The fields are for the scan kernels; others use the functions below. */
struct vec_table {
	size_t dim;        /* the common dimension (0 while no row has set it) */
	bool dim_set;      /* dim is declared or taken from a row */
	size_t n_rows;     /* every row: in blocks, NULL and mixed */
	size_t n_slots;    /* rows in blocks; slot s is lane s % W of block s / W */
	size_t n_blocks;   /* ceil(n_slots / W); the last block's spare lanes are 0 */
	size_t blk_floats; /* dim * VEC_BLOCK_W: floats per block */
	struct vec_chunk *chunks;
	size_t n_chunks, chunks_cap;
	float *norms;        /* [n_blocks * W]: TiDB's float32 sum of v[i]*v[i], for cosine
	                      * (0 in the last block's spare lanes) */
	float *norms_fused;  /* [n_blocks * W]: the same sum with fmaf (fused arithmetics) */
	uint32_t *slot_row;  /* [n_slots]: row of each slot (ascending); NULL when
	                      * every row is in a block (slot == row) */
	uint32_t *null_rows; /* [n_null]: rows whose vector is NULL, ascending */
	size_t n_null;
	struct vec_mixed_row *mixed; /* [n_mixed], ascending rows */
	size_t n_mixed;
	size_t slots_cap, null_cap, mixed_cap;
	size_t bytes; /* memory held, for the cache's budget */
};

/* Appends rows, in order, to a table that is not yet shared. */
struct vec_builder {
	struct vec_table *t;
};

/* dim: the column's declared dimension (VECTOR(768)), or VEC_DIM_ANY.
 * 0, -EINVAL (dim above VEC_MAX_DIM), -ENOMEM. */
int vec_builder_init(struct vec_builder *b, size_t dim) MUST_CHECK;
/* Appends the next row: v[0..dim) is copied, v may be NULL when dim is 0.
 * A row of another dimension than the table's is kept aside (see
 * vec_table_mixed). 0, -ENOMEM, -EOVERFLOW past UINT32_MAX rows, -EINVAL
 * (dim above VEC_MAX_DIM). After an error the builder may only be freed. */
int vec_builder_add(struct vec_builder *b, const float *v, size_t dim) MUST_CHECK;
/* Appends a NULL vector. 0, -ENOMEM, -EOVERFLOW. */
int vec_builder_add_null(struct vec_builder *b) MUST_CHECK;
/* Hands over the table (the caller frees it with vec_table_free) and leaves
 * the builder empty. Never fails. */
struct vec_table *vec_builder_finish(struct vec_builder *b);
/* Frees what an unfinished builder holds; safe after finish. */
void vec_builder_free(struct vec_builder *b);

void vec_table_free(struct vec_table *t);

/* Every row, NULL and mixed ones included. */
size_t vec_table_rows(const struct vec_table *t);
/* The common dimension, 0 when no row set it (empty or all-NULL table with
 * VEC_DIM_ANY); *is_set tells a real 0 from none, when not NULL. */
size_t vec_table_dim(const struct vec_table *t, bool *is_set);
size_t vec_table_null_count(const struct vec_table *t);
/* Rows whose dimension is not the table's. TiDB computes a distance for
 * them and fails the query with "vectors have different dimensions: %d and
 * %d", so vec_knn refuses such a table (-EDOM) and the caller leaves the
 * query to TiDB. When there is one, *row and *dim (if not NULL) get the
 * first one's. */
size_t vec_table_mixed(const struct vec_table *t, size_t *row, size_t *dim);
/* Bytes allocated for the table (vectors, norms, indexes, the struct):
 * 4 * dim + 8 per row (+ 4 once a NULL or mixed row exists), the last
 * block's padding, and at most one partly filled chunk (chunks grow to
 * about 4 MiB; those of 2 MiB or more are huge-page aligned and advised). */
size_t vec_table_bytes(const struct vec_table *t);

/* The rows' squared norms (cosine) in arithmetic arith, indexed by slot:
 * norms or norms_fused. */
static inline const float *vec_table_norms(const struct vec_table *t, enum vec_arith arith)
{
	return vec_arith_of_metric(arith, VEC_COSINE) == VEC_ARITH_FUSED ? t->norms_fused
	                                                                 : t->norms;
}

/* Block b (< n_blocks): its first float, 64-byte aligned; *run (if not NULL)
 * gets how many blocks from b on are contiguous in memory. */
const float *vec_table_block(const struct vec_table *t, size_t b, size_t *run);
/* Bit l set when lane l of block b holds a row (unset: zero padding). */
uint32_t vec_table_lane_mask(const struct vec_table *t, size_t b);
/* Whether row r passes a row filter: a bit per row (bit r % 64 of word
 * r / 64), or NULL for every row. */
static inline bool vec_row_allowed(const uint64_t *allowed, size_t r)
{
	return !allowed || (allowed[r / 64] >> (r % 64) & 1);
}
/* The lanes of block b that hold a row the filter lets through (allowed as
 * for vec_row_allowed). */
uint32_t vec_table_block_mask(const struct vec_table *t, size_t b, const uint64_t *allowed);
/* The row held by slot s (< n_slots). */
static inline size_t vec_table_slot_row(const struct vec_table *t, size_t s)
{
	return t->slot_row ? t->slot_row[s] : s;
}

/* Row r's vector: copies up to cap floats into out, sets *dim and *is_null.
 * 0, or -ERANGE when r >= n_rows. */
int vec_table_get(const struct vec_table *t, size_t r, float *out, size_t cap, size_t *dim,
                  bool *is_null) MUST_CHECK;

#endif
