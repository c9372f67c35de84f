/* Selection of the k smallest distances in TiDB's ORDER BY distance ASC
 * order: NULL first, then ascending (-0 equals 0). Exact ties are broken by
 * row index, which makes the answer deterministic; TiDB's own order among
 * exact ties is not (its TopN heap keeps the first arrival and its final sort
 * is unstable), so tests compare tie-aware (docs/tidb.md §5). */
#ifndef VECGATE_VEC_TOPK_H
#define VECGATE_VEC_TOPK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h" /* MUST_CHECK */

struct vec_hit {
	size_t row;
	double dist; /* NaN when is_null */
	bool is_null;
};

/* WHERE distance < value, or <= value when inclusive. NULL never passes. */
struct vec_threshold {
	double value;
	bool inclusive;
};

/* The best `want` hits offered so far (want = LIMIT + OFFSET). Bounded: a
 * max-heap of want entries, worst at h[0]. Unbounded (want >= the rows that
 * can be offered): every passing hit, sorted at the end. */
struct vec_topk {
	struct vec_hit *h;
	size_t n, cap, want;
	bool bounded;
	bool has_th, th_inclusive;
	double th;
};

/* want: k + offset (saturated by the caller); max_rows: how many hits can be
 * offered at most (a bound, used to choose and size the mode); th may be
 * NULL. 0 or -ENOMEM. */
int vec_topk_init(struct vec_topk *s, size_t want, size_t max_rows,
                  const struct vec_threshold *th) MUST_CHECK;
void vec_topk_free(struct vec_topk *s);

/* Whether a sorts before b: NULL first, then by distance, then by row. */
static inline bool vec_hit_before(const struct vec_hit *a, const struct vec_hit *b)
{
	if (a->is_null != b->is_null)
		return a->is_null;
	if (!a->is_null && a->dist != b->dist)
		return a->dist < b->dist;
	return a->row < b->row;
}

/* The slow path of vec_topk_offer: the hit passed the threshold and the
 * bound. 0 or -ENOMEM (unbounded mode past max_rows only). */
int vec_topk_insert(struct vec_topk *s, size_t row, double dist, bool is_null) MUST_CHECK;

/* Offers row's distance; rejects what fails the threshold or cannot enter
 * the best want. Offers may come in any row order. 0 or -ENOMEM. */
static inline int vec_topk_offer(struct vec_topk *s, size_t row, double dist, bool is_null)
{
	if (s->has_th && (is_null || !(s->th_inclusive ? dist <= s->th : dist < s->th)))
		return 0;
	if (s->bounded && s->n == s->want) {
		if (s->want == 0)
			return 0;
		struct vec_hit c = {row, dist, is_null};
		if (!vec_hit_before(&c, &s->h[0]))
			return 0;
	}
	return vec_topk_insert(s, row, dist, is_null);
}

/* Sorts what was kept and copies hits [offset, offset + k) of that order to
 * out (room for k); returns how many were copied. No offer may follow. */
size_t vec_topk_finish(struct vec_topk *s, size_t offset, size_t k, struct vec_hit *out);

#endif
