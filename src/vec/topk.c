/* The bounded max-heap (small LIMIT) and keep-all-then-sort (LIMIT at least
 * the table) selections behind topk.h. */
#include "vec/topk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int vec_topk_init(struct vec_topk *s, size_t want, size_t max_rows, const struct vec_threshold *th)
{
	*s = (struct vec_topk){0};
	s->want = want;
	s->bounded = want < max_rows;
	s->cap = s->bounded ? want : max_rows;
	if (th) {
		s->has_th = true;
		s->th = th->value;
		s->th_inclusive = th->inclusive;
	}
	if (s->cap) {
		s->h = malloc(s->cap * sizeof(*s->h));
		if (!s->h)
			return -ENOMEM;
	}
	return 0;
}

void vec_topk_free(struct vec_topk *s)
{
	free(s->h);
	s->h = NULL;
	s->n = s->cap = 0;
}

/* Max-heap on vec_hit_before: the worst kept hit is h[0]. */
static void sift_up(struct vec_hit *h, size_t i)
{
	struct vec_hit x = h[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!vec_hit_before(&h[p], &x))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = x;
}

static void sift_down(struct vec_hit *h, size_t n, size_t i)
{
	struct vec_hit x = h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && vec_hit_before(&h[c], &h[c + 1]))
			c++;
		if (!vec_hit_before(&x, &h[c]))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

int vec_topk_insert(struct vec_topk *s, size_t row, double dist, bool is_null)
{
	struct vec_hit c = {row, is_null ? NAN : dist, is_null};
	if (s->bounded) {
		if (s->n < s->want) {
			s->h[s->n] = c;
			sift_up(s->h, s->n++);
		} else {
			s->h[0] = c; /* vec_topk_offer checked that c beats the root */
			sift_down(s->h, s->n, 0);
		}
		return 0;
	}
	if (s->n == s->cap) {
		/* Only when the caller offered more than max_rows. */
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct vec_hit *nh = realloc(s->h, ncap * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		s->h = nh;
		s->cap = ncap;
	}
	s->h[s->n++] = c;
	return 0;
}

static int cmp_hit(const void *a, const void *b)
{
	/* A total order (rows are unique), so qsort's instability is harmless. */
	return vec_hit_before(a, b) ? -1 : vec_hit_before(b, a) ? 1 : 0;
}

size_t vec_topk_finish(struct vec_topk *s, size_t offset, size_t k, struct vec_hit *out)
{
	if (s->n > 1)
		qsort(s->h, s->n, sizeof(*s->h), cmp_hit);
	if (offset >= s->n)
		return 0;
	size_t n = s->n - offset < k ? s->n - offset : k;
	for (size_t i = 0; i < n; i++)
		out[i] = s->h[offset + i];
	return n;
}
