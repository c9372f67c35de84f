/* vec_knn: the blocks are scanned a batch at a time (sums, then TiDB's
 * finish), and each batch's distances go straight to the top-k selection,
 * so no per-row distance array is ever materialised. */
#include "vec/knn.h"

#include <errno.h>
#include <math.h>

#include "vec/scan.h"

#define W VEC_BLOCK_W
/* Blocks per kernel call: 256 rows' sums and distances stay in L1. */
#define BATCH 16

int vec_knn(const struct vec_table *t, enum vec_metric m, const float *q, size_t dim, size_t k,
            size_t offset, const struct vec_threshold *th, const uint64_t *allowed,
            struct vec_hit *out, size_t *n_out)
{
	return vec_knn_arith(t, m, VEC_ARITH_SEPARATE, q, dim, k, offset, th, allowed, out, n_out);
}

int vec_knn_arith(const struct vec_table *t, enum vec_metric m, enum vec_arith arith,
                  const float *q, size_t dim, size_t k, size_t offset,
                  const struct vec_threshold *th, const uint64_t *allowed, struct vec_hit *out,
                  size_t *n_out)
{
	_Static_assert(64 % W == 0, "a block's filter bits must sit in one word");
	*n_out = 0;
	if (t->n_mixed)
		return -EDOM;
	if (t->n_slots && dim != t->dim)
		return -EINVAL;
	struct vec_scan_query sq;
	int rc = vec_scan_prepare_arith(&sq, m, arith, q, dim);
	if (rc || k == 0)
		return rc;

	size_t want = k > SIZE_MAX - offset ? SIZE_MAX : k + offset;
	struct vec_topk s;
	rc = vec_topk_init(&s, want, t->n_rows, th);
	if (rc)
		goto done;
	for (size_t i = 0; i < t->n_null && rc == 0; i++)
		if (vec_row_allowed(allowed, t->null_rows[i]))
			rc = vec_topk_offer(&s, t->null_rows[i], NAN, true);

	const float *norms = vec_table_norms(t, arith);
	float acc[BATCH * W];
	double d[BATCH * W];
	bool nul[BATCH * W];
	uint32_t masks[BATCH];
	double worst = NAN; /* a real distance >= worst cannot enter; NaN: any can */
	for (size_t b = 0; b < t->n_blocks && rc == 0;) {
		size_t run;
		const float *blk = vec_table_block(t, b, &run);
		if (run > BATCH)
			run = BATCH;
		/* A run of blocks with at least one wanted row each; blocks the
		 * filter empties are skipped unread. */
		size_t n = 0;
		while (n < run && (masks[n] = vec_table_block_mask(t, b + n, allowed)) != 0)
			n++;
		if (n == 0) {
			b++;
			continue;
		}
		/* Spare lanes of the last block have no norm: finish rows only. */
		size_t rows = t->n_slots - b * W < n * W ? t->n_slots - b * W : n * W;
		vec_scan_sums(&sq, blk, n, acc);
		vec_scan_finish(&sq, acc, norms ? norms + b * W : NULL, rows, d, nul);
		for (size_t i = 0; i < rows && rc == 0; i++) {
			if (!(masks[i / W] >> (i % W) & 1) || (!nul[i] && d[i] >= worst))
				continue;
			rc = vec_topk_offer(&s, vec_table_slot_row(t, b * W + i), d[i], nul[i]);
			/* Once the selection is full of real distances, a later
			 * row (so a larger index) needs a strictly smaller one. */
			if (s.bounded && s.n == s.want && !s.h[0].is_null)
				worst = s.h[0].dist;
		}
		b += n;
	}
	if (rc == 0)
		*n_out = vec_topk_finish(&s, offset, k, out);
done:
	vec_topk_free(&s);
	return rc;
}
