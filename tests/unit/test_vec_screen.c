/* Unit tests for src/vec/screen.c: the screened kNN answers exactly what
 * vec_knn_arith answers (rows, distances bit for bit, NULLs, order) on
 * adversarial tables, every metric and arithmetic, offsets, thresholds and
 * row filters; weakening either part of the bounds makes it answer wrongly
 * on crafted data; and on ordinary data it computes few blocks exactly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vec/block.h"
#include "vec/knn.h"
#include "vec/scan.h"
#include "vec/screen.h"
#include "vec/vec.h"

#define TEST_RNG_SEED 0x2545F4914F6CDD1Dull
#include "test_rand.h"
#include "test_vec.h"

TestSuite(vec_screen, .fini = reset_isa);

/* A table and its rows, row-major (NULL rows flagged, their floats unused). */
struct table {
	struct vec_table *t;
	struct vec_screen *s;
	float *rows;
	bool *is_null;
	size_t n, dim;
};

static void finish_table(struct table *tb)
{
	tb->t = test_table_of(tb->rows, tb->is_null, tb->n, tb->dim, tb->dim);
	cr_assert_not_null(tb->t);
	tb->s = vec_screen_build(tb->t);
	cr_assert_not_null(tb->s);
}

static struct table alloc_table(size_t n, size_t dim)
{
	struct table tb = {NULL, NULL, calloc(n * dim + 1, sizeof(float)), calloc(n + 1, 1),
	                   n,    dim};
	cr_assert(tb.rows && tb.is_null);
	return tb;
}

static void free_table(struct table *tb)
{
	vec_screen_free(tb->s);
	vec_table_free(tb->t);
	free(tb->rows);
	free(tb->is_null);
}

/* The kinds of adversarial table. */
enum kind {
	K_NORMAL,     /* plain random normal rows */
	K_DUPLICATES, /* few distinct vectors, many copies: exact ties */
	K_ULP,        /* one base vector, each row one element one ulp away */
	K_NEAR_TIES,  /* a base plus noise far below the int8 step */
	K_SCALES,     /* normal rows times 10^e, e in [-25, 25]: huge, tiny, doubt */
	K_INTEGERS,   /* small integers: exact ties, exact codes */
	K_AWKWARD,    /* zero vectors, an Inf, a NaN, one-hot rows, NULLs */
	N_KINDS,
};

static struct table make_table(enum kind kind, size_t n, size_t dim)
{
	struct table tb = alloc_table(n, dim);
	float *base = malloc(dim * sizeof(float) * 4);
	for (size_t j = 0; j < dim * 4; j++)
		base[j] = gauss();
	for (size_t r = 0; r < n; r++) {
		float *v = tb.rows + r * dim;
		tb.is_null[r] = rnd() % 23 == 0; /* some NULL rows in every kind */
		switch (kind) {
		case K_NORMAL:
			for (size_t j = 0; j < dim; j++)
				v[j] = gauss();
			break;
		case K_DUPLICATES:
			memcpy(v, base + rnd() % 4 * dim, dim * sizeof(float));
			break;
		case K_ULP: {
			memcpy(v, base, dim * sizeof(float));
			size_t j = rnd() % dim;
			v[j] = nextafterf(v[j], rnd() % 2 ? INFINITY : -INFINITY);
			break;
		}
		case K_NEAR_TIES:
			for (size_t j = 0; j < dim; j++)
				v[j] = base[j] + (float)(gauss() * 1e-5);
			break;
		case K_SCALES: {
			float f = (float)pow(10.0, (double)(rnd() % 51) - 25);
			for (size_t j = 0; j < dim; j++)
				v[j] = gauss() * f;
			break;
		}
		case K_INTEGERS:
			for (size_t j = 0; j < dim; j++)
				v[j] = (float)((int)(rnd() % 7) - 3);
			break;
		case K_AWKWARD:
			for (size_t j = 0; j < dim; j++)
				v[j] = gauss();
			switch (r % 11) {
			case 0:
				memset(v, 0, dim * sizeof(float));
				break;
			case 1:
				v[rnd() % dim] = INFINITY;
				break;
			case 2:
				v[rnd() % dim] = NAN;
				break;
			case 3:
				memset(v, 0, dim * sizeof(float));
				v[rnd() % dim] = 1.0f;
				break;
			case 4:
				v[rnd() % dim] = 1e-30f; /* one element far below the rest */
				break;
			case 5:
				for (size_t j = 0; j < dim; j++)
					v[j] *= 1e-16f; /* below the screen's range: doubt */
				break;
			}
			break;
		case N_KINDS:
			break;
		}
	}
	free(base);
	finish_table(&tb);
	return tb;
}

/* A query of kind qk for table tb. */
static void make_query(const struct table *tb, int qk, float *q)
{
	size_t dim = tb->dim;
	size_t r = rnd() % tb->n;
	switch (qk) {
	case 0: /* a row itself: distance 0, duplicates tie */
	case 1: /* a row, scaled: cosine ties */
		for (size_t j = 0; j < dim; j++)
			q[j] = tb->is_null[r] ? gauss()
			                      : tb->rows[r * dim + j] * (qk ? 3.0f : 1.0f);
		break;
	case 2: /* zero: every cosine NULL (the query is in doubt) */
		memset(q, 0, dim * sizeof(float));
		break;
	case 3: /* one-hot */
		memset(q, 0, dim * sizeof(float));
		q[rnd() % dim] = -2.5f;
		break;
	case 4: /* tiny and huge: products near underflow and overflow */
		for (size_t j = 0; j < dim; j++)
			q[j] = gauss() * (rnd() % 2 ? 1e-14f : 1e14f);
		break;
	default:
		for (size_t j = 0; j < dim; j++)
			q[j] = gauss();
		break;
	}
}

/* A random row filter over n rows (density in 1/8ths), or NULL. */
static uint64_t *make_allowed(size_t n, int density)
{
	if (density >= 8)
		return NULL;
	uint64_t *a = calloc(n / 64 + 1, sizeof(uint64_t));
	for (size_t r = 0; r < n; r++)
		if ((int)(rnd() % 8) < density)
			a[r / 64] |= 1ull << (r % 64);
	return a;
}

/* Whether compare() logs differences (not where they are the point). */
static bool log_differences = true;

/* Whether two answers are the same hits, distances bit for bit. */
static bool same_hit_lists(const struct vec_hit *a, size_t na, const struct vec_hit *b, size_t nb)
{
	bool same = na == nb;
	for (size_t h = 0; same && h < na; h++)
		same = a[h].row == b[h].row && a[h].is_null == b[h].is_null &&
		       memcmp(&a[h].dist, &b[h].dist, sizeof(double)) == 0;
	return same;
}

/* One query both ways; returns 1 on any difference (and logs it). */
static int compare(const struct table *tb, enum vec_metric m, enum vec_arith arith, const float *q,
                   size_t k, size_t offset, const struct vec_threshold *th, const uint64_t *allowed,
                   struct vec_screen_stats *st)
{
	struct vec_hit *want = calloc(k + 1, sizeof(*want)), *got = calloc(k + 1, sizeof(*got));
	size_t n_want = 99, n_got = 77;
	struct vec_screen_stats local;
	int rc_want =
	        vec_knn_arith(tb->t, m, arith, q, tb->dim, k, offset, th, allowed, want, &n_want);
	int rc_got = vec_knn_screened_stats(tb->t, tb->s, m, arith, q, tb->dim, k, offset, th,
	                                    allowed, got, &n_got, st ? st : &local);
	int bad = rc_want != rc_got || !same_hit_lists(want, n_want, got, n_got);
	if (bad && log_differences)
		cr_log_info("differ: dim %zu metric %d arith %d k %zu offset %zu th %s filter %s: "
		            "rc %d/%d n %zu/%zu first %zu %a / %zu %a",
		            tb->dim, m, arith, k, offset, th ? "yes" : "no", allowed ? "yes" : "no",
		            rc_want, rc_got, n_want, n_got, want[0].row, want[0].dist, got[0].row,
		            got[0].dist);
	free(want);
	free(got);
	return bad;
}

/* A threshold at one of the exact answer's own distances, so that rows
 * tie with it, inclusive or not; NULL when there is none to take. */
static bool pick_threshold(const struct table *tb, enum vec_metric m, enum vec_arith arith,
                           const float *q, struct vec_threshold *th)
{
	struct vec_hit h[12];
	size_t n;
	if (vec_knn_arith(tb->t, m, arith, q, tb->dim, 12, 0, NULL, NULL, h, &n) != 0 || n == 0)
		return false;
	size_t i = rnd() % n;
	if (h[i].is_null)
		return false;
	th->value = h[i].dist;
	th->inclusive = rnd() % 2;
	return true;
}

/* Every kind, dimension, metric, arithmetic, with offsets, thresholds and
 * filters: no difference at all, hit for hit. */
static size_t property_run(size_t dim, size_t n, int queries, size_t *mismatches, size_t *pruned)
{
	size_t compared = 0;
	float *q = malloc(dim * sizeof(float));
	for (int kind = 0; kind < N_KINDS; kind++) {
		struct table tb = make_table((enum kind)kind, n, dim);
		for (int qi = 0; qi < queries; qi++) {
			make_query(&tb, qi % 7, q);
			for (size_t mi = 0; mi < N_METRICS; mi++) {
				for (size_t ai = 0; ai < N_ARITHS; ai++) {
					static const size_t ks[] = {1, 3, 10, 40};
					size_t k = ks[rnd() % 4];
					size_t offset = rnd() % 3 == 0 ? rnd() % 20 : 0;
					struct vec_threshold th, *thp = NULL;
					if (rnd() % 3 == 0 &&
					    pick_threshold(&tb, metrics[mi], ariths[ai], q, &th))
						thp = &th;
					uint64_t *allowed = make_allowed(n, (int)(rnd() % 10));
					struct vec_screen_stats st;
					*mismatches += compare(&tb, metrics[mi], ariths[ai], q, k,
					                       offset, thp, allowed, &st);
					*pruned += st.candidates < st.rows_screened;
					compared++;
					free(allowed);
				}
			}
		}
		free_table(&tb);
	}
	free(q);
	return compared;
}

Test(vec_screen, identical_to_exact_knn, .timeout = 600)
{
	static const size_t dims[] = {1, 2, 3, 5, 16, 17, 33, 100, 257, 768, 1536};
	size_t compared = 0, mismatches = 0, pruned = 0;
	for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
		size_t dim = dims[di];
		size_t n = dim >= 768 ? 300 : dim >= 100 ? 800 : 2000;
		compared += property_run(dim, n, dim >= 768 ? 7 : 14, &mismatches, &pruned);
	}
	cr_log_info("compared %zu queries, %zu pruned rows", compared, pruned);
	cr_expect_eq(mismatches, 0, "%zu of %zu queries differ", mismatches, compared);
	cr_assert_geq(compared, 5000);
	/* Not vacuous: many queries really left rows out (not the ties of
	 * the duplicate, one-ulp and near-tie tables, nor the zero query). */
	cr_expect_gt(pruned * 3, compared, "only %zu of %zu queries pruned", pruned, compared);
}

/* The same with every ISA's kernels (int8 and float32), and on AVX-512 with
 * and without the VNNI kernel. */
Test(vec_screen, identical_on_every_isa, .timeout = 600)
{
	size_t compared = 0, mismatches = 0, ran = 0, pruned = 0;
	for (size_t ii = 0; ii < sizeof(isas) / sizeof(isas[0]); ii++) {
		if (vec_scan_force(isas[ii]) != 0)
			continue;
		ran++;
		compared += property_run(7, 200, 7, &mismatches, &pruned);
		compared += property_run(130, 100, 7, &mismatches, &pruned);
		if (isas[ii] == VEC_ISA_AVX512) { /* the float kernel of CPUs without VNNI */
			vec_screen_use_vnni(false);
			compared += property_run(7, 200, 7, &mismatches, &pruned);
			compared += property_run(130, 100, 7, &mismatches, &pruned);
			vec_screen_use_vnni(true);
			/* the lower bounds row by row only, without the vector gate */
			vec_screen_use_lb_gate(false);
			compared += property_run(7, 200, 7, &mismatches, &pruned);
			compared += property_run(130, 100, 7, &mismatches, &pruned);
			vec_screen_use_lb_gate(true);
		}
	}
	reset_isa();
	cr_expect_eq(mismatches, 0, "%zu of %zu queries differ", mismatches, compared);
	cr_expect_gt(pruned * 3, compared, "only %zu of %zu queries pruned", pruned, compared);
	cr_assert_geq(ran, 1);
}

/* Rows near the k-th distance: many rows within the int8 error of each
 * other around a base vector, so the pruning threshold cuts through them. */
Test(vec_screen, near_ties_at_the_kth_distance)
{
	size_t mismatches = 0, compared = 0;
	for (int round = 0; round < 6; round++) {
		size_t dim = round < 3 ? 64 : 768, n = 400;
		struct table tb = alloc_table(n, dim);
		float *q = malloc(dim * sizeof(float));
		for (size_t j = 0; j < dim; j++)
			q[j] = gauss();
		for (size_t r = 0; r < n; r++)
			for (size_t j = 0; j < dim; j++) /* noise up to ~1/3 int8 step */
				tb.rows[r * dim + j] =
				        q[j] * 0.7f + (float)(gauss() * 2e-3 * round);
		finish_table(&tb);
		for (size_t mi = 0; mi < N_METRICS; mi++)
			for (size_t ai = 0; ai < N_ARITHS; ai++)
				for (size_t k = 1; k <= 30; k += 7) {
					mismatches += compare(&tb, metrics[mi], ariths[ai], q, k,
					                      k % 2 ? 0 : 5, NULL, NULL, NULL);
					compared++;
				}
		free(q);
		free_table(&tb);
	}
	cr_expect_eq(mismatches, 0, "%zu of %zu queries differ", mismatches, compared);
}

/* The errors TiDB answers with, and what a query in doubt does. */
Test(vec_screen, errors_and_fallback)
{
	struct table tb = make_table(K_NORMAL, 40, 8);
	float q[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	struct vec_hit h[5];
	size_t n = 7;
	struct vec_screen_stats st;
	cr_expect_eq(vec_knn_screened(tb.t, tb.s, VEC_L2, VEC_ARITH_SEPARATE, q, 9, 5, 0, NULL,
	                              NULL, h, &n),
	             -EINVAL);
	cr_expect_eq(n, 0);
	cr_expect_eq(vec_knn_screened(tb.t, tb.s, (enum vec_metric)9, VEC_ARITH_SEPARATE, q, 8, 5,
	                              0, NULL, NULL, h, &n),
	             -EINVAL);
	cr_expect_eq(vec_knn_screened(tb.t, tb.s, VEC_L2, (enum vec_arith)7, q, 8, 5, 0, NULL, NULL,
	                              h, &n),
	             -EINVAL);
	cr_expect_eq(vec_knn_screened(tb.t, tb.s, VEC_L2, VEC_ARITH_SEPARATE, q, 8, 0, 0, NULL,
	                              NULL, h, &n),
	             0);
	cr_expect_eq(n, 0);
	/* A screen of another table is refused. */
	struct table other = make_table(K_NORMAL, 40, 8);
	cr_expect_eq(vec_knn_screened(tb.t, other.s, VEC_L2, VEC_ARITH_SEPARATE, q, 8, 5, 0, NULL,
	                              NULL, h, &n),
	             -EINVAL);
	free_table(&other);
	/* A query in doubt goes to the exact scan, with the same answer. */
	q[3] = 1e20f;
	cr_expect_eq(compare(&tb, VEC_L2, VEC_ARITH_SEPARATE, q, 5, 0, NULL, NULL, &st), 0);
	cr_expect(st.fallback);
	q[3] = NAN;
	cr_expect_eq(compare(&tb, VEC_COSINE, VEC_ARITH_FUSED, q, 5, 0, NULL, NULL, &st), 0);
	cr_expect(st.fallback);
	q[3] = 4;
	cr_expect_eq(compare(&tb, VEC_COSINE, VEC_ARITH_FUSED, q, 5, 0, NULL, NULL, &st), 0);
	cr_expect(!st.fallback);
	cr_expect_eq(st.blocks, tb.t->n_blocks);
	free_table(&tb);

	/* A row of another dimension: -EDOM, as vec_knn. */
	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	cr_assert_eq(vec_builder_add(&b, q, 8), 0);
	cr_assert_eq(vec_builder_add(&b, q, 3), 0);
	struct vec_table *t = vec_builder_finish(&b);
	vec_builder_free(&b);
	struct vec_screen *s = vec_screen_build(t);
	cr_assert_not_null(s);
	cr_expect_eq(
	        vec_knn_screened(t, s, VEC_L1, VEC_ARITH_SEPARATE, q, 8, 5, 0, NULL, NULL, h, &n),
	        -EDOM);
	vec_screen_free(s);
	vec_table_free(t);
}

/* Empty, all-NULL and dimension-0 tables answer as vec_knn_arith does. */
Test(vec_screen, degenerate_tables)
{
	float q[4] = {1, -1, 2, 0.5f};
	struct vec_hit h[4], w[4];
	size_t n, nw;
	for (int c = 0; c < 3; c++) {
		struct vec_builder b;
		cr_assert_eq(vec_builder_init(&b, c == 2 ? 0 : 4), 0);
		for (int r = 0; r < 5 && c > 0; r++)
			cr_assert_eq(c == 1 ? vec_builder_add_null(&b) : vec_builder_add(&b, q, 0),
			             0);
		struct vec_table *t = vec_builder_finish(&b);
		vec_builder_free(&b);
		struct vec_screen *s = vec_screen_build(t);
		cr_assert_not_null(s);
		size_t dim = c == 2 ? 0 : 4;
		for (size_t mi = 0; mi < N_METRICS; mi++) {
			int rw = vec_knn_arith(t, metrics[mi], VEC_ARITH_SEPARATE, q, dim, 4, 1,
			                       NULL, NULL, w, &nw);
			int rg = vec_knn_screened(t, s, metrics[mi], VEC_ARITH_SEPARATE, q, dim, 4,
			                          1, NULL, NULL, h, &n);
			cr_expect_eq(rw, rg);
			cr_expect_eq(nw, n);
			for (size_t i = 0; i < n && i < nw; i++) {
				cr_expect_eq(h[i].row, w[i].row);
				cr_expect_eq(h[i].is_null, w[i].is_null);
			}
		}
		vec_screen_free(s);
		vec_table_free(t);
	}
}

/* Rows the screen cannot bound are flagged and still answered exactly. */
Test(vec_screen, doubt_rows)
{
	struct table tb = alloc_table(64, 32);
	for (size_t r = 0; r < tb.n; r++)
		for (size_t j = 0; j < tb.dim; j++)
			tb.rows[r * 32 + j] = gauss();
	memset(tb.rows + 3 * 32, 0, 32 * sizeof(float)); /* zero scale */
	tb.rows[9 * 32 + 4] = INFINITY;                  /* not finite */
	tb.rows[17 * 32 + 1] = 3e15f;                    /* too large */
	for (size_t j = 0; j < 32; j++)
		tb.rows[40 * 32 + j] *= 1e-17f; /* too small */
	finish_table(&tb);
	cr_expect_eq(vec_screen_doubt_rows(tb.s), 4);
	cr_expect_geq(vec_screen_bytes(tb.s), 64 * 32 + 64 * 4 * 5);
	float q[32];
	for (size_t j = 0; j < 32; j++)
		q[j] = gauss();
	struct vec_screen_stats st;
	for (size_t mi = 0; mi < N_METRICS; mi++) {
		cr_expect_eq(
		        compare(&tb, metrics[mi], VEC_ARITH_SEPARATE, q, 3, 0, NULL, NULL, &st), 0);
		cr_expect_eq(st.doubt, 4, "metric %d: %zu doubt candidates", metrics[mi], st.doubt);
	}
	free_table(&tb);
}

/* Counts the queries whose answer differs, over every metric and
 * arithmetic and a few k, on tb. */
static size_t count_differences(const struct table *tb, const float *q)
{
	size_t bad = 0;
	for (size_t mi = 0; mi < N_METRICS; mi++)
		for (size_t ai = 0; ai < N_ARITHS; ai++)
			for (size_t k = 1; k <= 9; k += 4)
				bad += compare(tb, metrics[mi], ariths[ai], q, k, 0, NULL, NULL,
				               NULL);
	return bad;
}

/* Without the quantization error terms (||a - a'||), the bounds describe
 * the int8 copy, not the rows: on rows that differ by less than an int8
 * step the screen then prunes true answers. With them: no difference. */
Test(vec_screen, quantization_term_matters)
{
	size_t weak = 0, sound = 0;
	for (int round = 0; round < 4; round++) {
		size_t dim = 48, n = 300;
		struct table tb = alloc_table(n, dim);
		float q[48], base[48];
		for (size_t j = 0; j < dim; j++) {
			base[j] = gauss();
			q[j] = gauss();
		}
		for (size_t r = 0; r < n; r++)
			for (size_t j = 0; j < dim; j++)
				tb.rows[r * dim + j] = base[j] + (float)(gauss() * 5e-3);
		finish_table(&tb);
		sound += count_differences(&tb, q);
		vec_screen_weaken_bounds(tb.s, 0.0, false);
		log_differences = false;
		weak += count_differences(&tb, q);
		log_differences = true;
		free_table(&tb);
	}
	cr_log_info("quantization term dropped: %zu differences", weak);
	cr_expect_eq(sound, 0);
	cr_expect_gt(weak, 0, "dropping ||a - a'|| must change some answer");
}

/* Differences over every metric and arithmetic with the rounding terms
 * dropped, on integer rows with max |element| 127 (scale 1: the int8 copy is
 * exact) and q_j = A + k_j / 256 (q_0 = 127, one k_j = 127: the two int8
 * terms of the query are exact too). Rows are one base vector of 60s and
 * 61s with a few elements swapped, so their real distances differ by
 * multiples of 1/256, less than TiDB's float32 rounding (partial sums near
 * 4e5, where one ulp is 1/32): TiDB's order is decided by rounding, which
 * only the gamma terms allow for. Returns (sound, weakened) differences. */
static void rounding_round(size_t *sound, size_t *weak)
{
	size_t dim = 64, n = 200;
	struct table tb = alloc_table(n, dim);
	float q[64];
	int base[64];
	for (size_t j = 0; j < dim; j++) {
		int kj = j == 1 ? 127 : (int)(rnd() % 255) - 127;
		q[j] = j == 0 ? 127.0f : 100.0f + (float)kj / 256;
		base[j] = j == 0 ? 127 : 60 + (int)(rnd() % 2);
	}
	for (size_t r = 0; r < n; r++) {
		float *v = tb.rows + r * dim;
		for (size_t j = 0; j < dim; j++)
			v[j] = (float)base[j];
		for (int sw = 0; sw < 3; sw++) {
			size_t i = 1 + rnd() % (dim - 1), j = 1 + rnd() % (dim - 1);
			float x = v[i];
			v[i] = v[j];
			v[j] = x;
		}
	}
	finish_table(&tb);
	cr_assert_eq(vec_screen_doubt_rows(tb.s), 0);
	*sound += count_differences(&tb, q);
	vec_screen_weaken_bounds(tb.s, 1.0, true);
	log_differences = false;
	*weak += count_differences(&tb, q);
	log_differences = true;
	free_table(&tb);
}

/* Without the float32 rounding terms (gamma), the bounds trust one
 * evaluation of the sums, exact or float32, as if it were TiDB's: on data
 * where rounding decides the order, answers change, with every kernel
 * (integer or float). With them: no difference. */
Test(vec_screen, rounding_term_matters)
{
	static const struct {
		enum vec_isa isa;
		bool vnni;
	} kernels[] = {
	        {VEC_ISA_AUTO, true},
	        {VEC_ISA_AVX512, false},
	        {VEC_ISA_AVX2, true},
	        {VEC_ISA_SCALAR, true},
	};
	for (size_t ki = 0; ki < sizeof(kernels) / sizeof(kernels[0]); ki++) {
		if (vec_scan_force(kernels[ki].isa) != 0)
			continue;
		vec_screen_use_vnni(kernels[ki].vnni);
		size_t weak = 0, sound = 0;
		for (int round = 0; round < 5; round++)
			rounding_round(&sound, &weak);
		cr_log_info("isa %s vnni %d: rounding terms dropped: %zu differences",
		            vec_isa_name(kernels[ki].isa), kernels[ki].vnni, weak);
		cr_expect_eq(sound, 0);
		cr_expect_gt(weak, 0, "isa %s: dropping the gamma terms must change some answer",
		             vec_isa_name(kernels[ki].isa));
	}
	vec_screen_use_vnni(true);
	reset_isa();
}

/* The point of the screen: on ordinary data (random normal, 768
 * dimensions) a top-10 query computes fewer than 20% of the blocks
 * exactly, for every metric, with the exact answer. */
Test(vec_screen, prunes_most_blocks, .timeout = 300)
{
	size_t n = 16000, dim = 768;
	struct table tb = alloc_table(n, dim);
	for (size_t i = 0; i < n * dim; i++)
		tb.rows[i] = gauss();
	finish_table(&tb);
	float *q = malloc(dim * sizeof(float));
	for (size_t mi = 0; mi < N_METRICS; mi++) {
		size_t exact = 0, blocks = 0;
		for (int qi = 0; qi < 3; qi++) {
			for (size_t j = 0; j < dim; j++)
				q[j] = gauss();
			struct vec_screen_stats st;
			cr_expect_eq(compare(&tb, metrics[mi], VEC_ARITH_SEPARATE, q, 10, 0, NULL,
			                     NULL, &st),
			             0);
			cr_expect(!st.fallback);
			cr_expect_eq(st.blocks_screened, st.blocks);
			exact += st.blocks_exact;
			blocks += st.blocks;
		}
		cr_log_info("metric %d: %zu of %zu blocks exact", metrics[mi], exact, blocks);
		cr_expect_lt(exact * 5, blocks, "metric %d: %zu of %zu blocks computed exactly",
		             metrics[mi], exact, blocks);
	}
	free(q);
	free_table(&tb);
}

/* One query of the batch and sweep tests: its arguments (random k, offset,
 * threshold and filter), its answer, and whether it came. */
struct query_case {
	struct vec_batch_query bq;
	struct vec_threshold th;
	uint64_t *allowed;
	bool answered;
};

static void query_case_make(struct query_case *c, const struct table *tb, enum vec_metric m,
                            enum vec_arith arith, float *qv)
{
	static const size_t ks[] = {1, 3, 10, 40};
	make_query(tb, (int)(rnd() % 7), qv);
	*c = (struct query_case){.bq = {.q = qv, .dim = tb->dim, .k = ks[rnd() % 4]}};
	c->bq.offset = rnd() % 3 == 0 ? rnd() % 20 : 0;
	if (rnd() % 3 == 0 && pick_threshold(tb, m, arith, qv, &c->th))
		c->bq.th = &c->th;
	c->bq.allowed = c->allowed = make_allowed(tb->n, (int)(rnd() % 10));
	c->bq.out = calloc(c->bq.k + 1, sizeof(struct vec_hit));
	cr_assert_not_null(c->bq.out);
}

/* Whether c's answer is the plain exact scan's; frees what c holds. */
static bool query_case_check(struct query_case *c, const struct table *tb, enum vec_metric m,
                             enum vec_arith arith)
{
	struct vec_hit *want = calloc(c->bq.k + 1, sizeof(*want));
	size_t n_want = 0;
	int rc_want = vec_knn_arith(tb->t, m, arith, c->bq.q, tb->dim, c->bq.k, c->bq.offset,
	                            c->bq.th, c->bq.allowed, want, &n_want);
	bool ok = c->answered && rc_want == c->bq.rc &&
	          same_hit_lists(want, n_want, c->bq.out, c->bq.n_out);
	if (!ok)
		cr_log_info("differs: dim %zu metric %d arith %d answered %d rc %d/%d n "
		            "%zu/%zu",
		            tb->dim, m, arith, c->answered, rc_want, c->bq.rc, n_want, c->bq.n_out);
	free(want);
	free(c->bq.out);
	free(c->allowed);
	return ok;
}

/* Batches of 1..20 screened queries (each its own k, offset, threshold and
 * filter; queries in doubt among them) against each query's plain exact
 * scan, on tables of one group of 16 blocks and of several (pass 1 runs a
 * group at a time), every metric and arithmetic: no difference at all. */
Test(vec_screen, batch_identical_to_exact_knn, .timeout = 600)
{
	static const struct {
		size_t dim, n;
	} shapes[] = {{7, 500}, {130, 300}, {768, 300}, {1536, 600}};
	size_t compared = 0, mismatches = 0, batches = 0, fallbacks = 0, multi_tile = 0, shared = 0;
	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		size_t dim = shapes[si].dim, n = shapes[si].n;
		for (int kind = 0; kind < N_KINDS; kind += 2) {
			struct table tb = make_table((enum kind)kind, n, dim);
			multi_tile += tb.t->n_blocks > 16 && dim == 1536;
			for (int round = 0; round < 3; round++) {
				size_t nq = 1 + rnd() % 20;
				enum vec_metric m = metrics[rnd() % N_METRICS];
				enum vec_arith arith = ariths[rnd() % N_ARITHS];
				float *qv = malloc(nq * dim * sizeof(float));
				struct query_case *cs = calloc(nq, sizeof(*cs));
				struct vec_batch_query *qs = calloc(nq, sizeof(*qs));
				cr_assert(qv && cs && qs);
				for (size_t i = 0; i < nq; i++) {
					query_case_make(&cs[i], &tb, m, arith, qv + i * dim);
					qs[i] = cs[i].bq;
				}
				struct vec_screen_stats st;
				int rc = vec_knn_screened_batch(tb.t, tb.s, m, arith, qs, nq, &st);
				batches++;
				fallbacks += st.fallback;
				shared += st.shared_first;
				for (size_t i = 0; i < nq; i++) {
					cs[i].bq = qs[i];
					cs[i].answered = true;
					/* the batch's rc is 0 only when every query's is */
					bool bad = rc == 0 && qs[i].rc != 0;
					if (bad)
						cr_log_info(
						        "batch gave 0, query %zu of %zu gave %d", i,
						        nq, qs[i].rc);
					bad |= !query_case_check(&cs[i], &tb, m, arith);
					mismatches += bad;
					compared++;
				}
				free(qv);
				free(cs);
				free(qs);
			}
			free_table(&tb);
		}
	}
	cr_log_info("batches %zu, queries %zu, batches with a query in doubt %zu", batches,
	            compared, fallbacks);
	cr_expect_eq(mismatches, 0, "%zu of %zu batched queries differ", mismatches, compared);
	cr_assert_geq(compared, 300);
	cr_expect_gt(fallbacks, 0, "no batch had a query in doubt");
	cr_expect_gt(multi_tile, 0, "no table spanned several groups of blocks");
#if defined(__x86_64__)
	/* Where the VNNI kernel runs, batches sum their queries' first terms
	 * together (dot_vnni_multi), and the comparison above covers it. */
	if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi"))
		cr_expect_gt(shared, 0, "no batch summed its queries' first terms together");
#endif
}

/* Queries join a sweep at random steps, so they start at every tile and
 * wrap around (up to VEC_SWEEP_MAX at once; more are refused with -EBUSY
 * and added later), on every kind of adversarial table, tables of one tile
 * and of many, every metric and arithmetic, queries in doubt among them:
 * each answer is the plain exact scan's, with no difference at all. */
Test(vec_screen, sweep_identical_to_exact_knn, .timeout = 600)
{
	static const struct {
		size_t dim, n;
	} shapes[] = {{7, 5000}, {16, 300}, {130, 2000}, {768, 1200}};
	size_t compared = 0, mismatches = 0, late = 0, busy = 0, at_once = 0, multi = 0;
	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		size_t dim = shapes[si].dim, n = shapes[si].n;
		for (int kind = 0; kind < N_KINDS; kind++) {
			struct table tb = make_table((enum kind)kind, n, dim);
			size_t n_tiles = (tb.t->n_blocks + 15) / 16;
			enum vec_metric m = metrics[rnd() % N_METRICS];
			enum vec_arith arith = ariths[rnd() % N_ARITHS];
			struct vec_sweep *w = vec_sweep_new(tb.t, tb.s, m, arith);
			cr_assert_not_null(w);
			enum { NQ = 40 };
			float *qv = malloc(NQ * dim * sizeof(float));
			struct query_case *cs = calloc(NQ, sizeof(*cs));
			cr_assert(qv && cs);
			size_t next = 0, answered = 0, steps = 0;
			while (answered < NQ) {
				/* 0 to 3 arrivals before each step (a burst of 20 once) */
				size_t arrive = steps == 3 ? 20 : rnd() % 4;
				for (size_t a = 0; a < arrive && next < NQ; a++) {
					struct query_case *c = &cs[next];
					if (!c->bq.out)
						query_case_make(c, &tb, m, arith, qv + next * dim);
					int rc = vec_sweep_add(w, &c->bq);
					if (rc == -EBUSY) {
						busy++;
						break;
					}
					cr_assert(rc == 0 || rc == 1, "vec_sweep_add gave %d", rc);
					late += rc == 0 && steps % n_tiles != 0;
					if (rc == 1) {
						at_once++;
						c->answered = true;
						answered++;
					}
					next++;
				}
				struct vec_batch_query *done[VEC_SWEEP_MAX];
				multi += vec_sweep_size(w) >= 2;
				bool shared[VEC_SWEEP_MAX];
				size_t held = vec_sweep_size(w);
				size_t nd = vec_sweep_step(w, done, shared);
				cr_assert_leq(nd, VEC_SWEEP_MAX);
				for (size_t d = 0; d < nd; d++) {
					struct query_case *c = (struct query_case *)done[d];
					if (held >= 2)
						cr_assert(shared[d]);
					cr_assert(!c->answered);
					c->answered = true;
					answered++;
				}
				steps++;
				cr_assert_lt(steps, 100000, "the sweep does not end");
			}
			cr_expect_eq(vec_sweep_size(w), 0);
			vec_sweep_free(w);
			for (size_t i = 0; i < NQ; i++) {
				mismatches += !query_case_check(&cs[i], &tb, m, arith);
				compared++;
			}
			free(cs);
			free(qv);
			free_table(&tb);
		}
	}
	cr_log_info("sweeps: %zu queries, %zu joined after tile 0, %zu refused while full, %zu "
	            "answered when added, %zu steps with several",
	            compared, late, busy, at_once, multi);
	cr_expect_eq(mismatches, 0, "%zu of %zu queries of sweeps differ", mismatches, compared);
	cr_expect_gt(late, compared / 2, "few queries started after the first tile");
	cr_expect_gt(busy, 0, "no sweep was ever full");
	cr_expect_gt(at_once, 0, "no query was answered when added (in doubt)");
	cr_expect_gt(multi, 0);
}

/* A sweep freed with queries in it leaves them cancelled (and frees what it
 * held for them); a sweep over a table without blocks answers at once. */
Test(vec_screen, sweep_free_and_empty)
{
	struct table tb = make_table(K_NORMAL, 1000, 32);
	struct vec_sweep *w = vec_sweep_new(tb.t, tb.s, VEC_COSINE, VEC_ARITH_SEPARATE);
	cr_assert_not_null(w);
	float q[32];
	struct vec_hit out[3][5];
	struct vec_batch_query bq[3];
	for (int i = 0; i < 3; i++) {
		make_query(&tb, 0, q);
		bq[i] = (struct vec_batch_query){.q = q, .dim = 32, .k = 5, .out = out[i]};
		cr_assert_eq(vec_sweep_add(w, &bq[i]), 0);
	}
	struct vec_batch_query *done[VEC_SWEEP_MAX];
	cr_assert_eq(vec_sweep_step(w, done, NULL), 0); /* 4 tiles: nobody is done after one */
	cr_assert_eq(vec_sweep_size(w), 3);
	vec_sweep_free(w);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(bq[i].rc, -ECANCELED);
	free_table(&tb);

	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, 4), 0);
	for (int r = 0; r < 3; r++)
		cr_assert_eq(vec_builder_add_null(&b), 0);
	struct vec_table *t = vec_builder_finish(&b);
	vec_builder_free(&b);
	struct vec_screen *s = vec_screen_build(t);
	cr_assert_not_null(s);
	w = vec_sweep_new(t, s, VEC_L2, VEC_ARITH_SEPARATE);
	cr_assert_not_null(w);
	float q4[4] = {1, 2, 3, 4};
	struct vec_hit h[4];
	struct vec_batch_query one = {.q = q4, .dim = 4, .k = 4, .out = h};
	cr_expect_eq(vec_sweep_add(w, &one), 1);
	cr_expect_eq(one.rc, 0);
	cr_expect_eq(one.n_out, 3); /* the NULL rows, first */
	cr_expect_eq(vec_sweep_size(w), 0);
	cr_expect_eq(vec_sweep_step(w, done, NULL), 0);
	vec_sweep_free(w);
	vec_screen_free(s);
	vec_table_free(t);
}

/* The screen built a block at a time in AVX-512 vectors is the one built
 * row by row, bit for bit, on every kind of table (NULLs, rows in doubt,
 * partial last blocks, dims not multiples of anything). */
Test(vec_screen, vector_build_same_as_row_by_row)
{
	static const struct {
		size_t dim, n;
	} shapes[] = {{1, 37}, {7, 300}, {16, 33}, {130, 200}, {768, 70}};
	size_t built = 0;
	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		for (int kind = 0; kind < N_KINDS; kind++) {
			struct table tb = make_table((enum kind)kind, shapes[si].n, shapes[si].dim);
			vec_screen_build_use_vectors(false);
			struct vec_screen *rows = vec_screen_build(tb.t);
			vec_screen_build_use_vectors(true);
			cr_assert_not_null(rows);
			cr_expect(vec_screen_same(tb.s, rows),
			          "dim %zu n %zu kind %d: screens differ", shapes[si].dim,
			          shapes[si].n, kind);
			vec_screen_free(rows);
			free_table(&tb);
			built++;
		}
	}
	cr_assert_eq(built, 5 * N_KINDS);
}

/* One query's statistics, without the shortcut's own count. */
static bool same_stats(const struct vec_screen_stats *a, const struct vec_screen_stats *b)
{
	return a->blocks == b->blocks && a->blocks_screened == b->blocks_screened &&
	       a->rows_screened == b->rows_screened && a->blocks_exact == b->blocks_exact &&
	       a->blocks_second == b->blocks_second && a->shared_first == b->shared_first &&
	       a->candidates == b->candidates && a->doubt == b->doubt && a->fallback == b->fallback;
}

/* The metrics whose lower bounds have the shortcut (cosine, L2). */
static const enum vec_metric shortcut_metrics[] = {VEC_COSINE, VEC_L2};

/* Where the shortcut runs (AVX-512), it settled groups for both metrics:
 * the comparisons around it are not vacuous. */
static void expect_shortcut_ran(const size_t settled[2])
{
#if defined(__x86_64__)
	if (vec_scan_isa() == VEC_ISA_AVX512 && __builtin_cpu_supports("avx512dq")) {
		cr_expect_gt(settled[0], 1000, "cosine: the shortcut settled %zu groups",
		             settled[0]);
		cr_expect_gt(settled[1], 1000, "L2: the shortcut settled %zu groups", settled[1]);
	}
#else
	(void)settled;
#endif
}

/* The lower-bound shortcut (vec_screen_use_lb_shortcut) settles only
 * groups of rows the bounds themselves prune: with it and without it every
 * cosine and L2 query reads the same blocks, keeps the same candidates and
 * answers the same hits, on every kind of table and on rows crowding the
 * k-th distance, alone and in batches; and where it can run (AVX-512) it
 * settles groups for both metrics. */
Test(vec_screen, lb_shortcut_prunes_the_same_rows, .timeout = 300)
{
	size_t compared = 0, differ = 0, settled[2] = {0, 0};
	static const size_t dims[] = {16, 130, 768};
	for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
		size_t dim = dims[di], n = dim >= 768 ? 500 : 1200;
		float *qv = malloc(8 * dim * sizeof(float));
		for (int kind = 0; kind <= N_KINDS; kind++) {
			/* kind N_KINDS: rows q * 0.7 plus noise near the int8 step */
			struct table tb = kind < N_KINDS ? make_table((enum kind)kind, n, dim)
			                                 : alloc_table(n, dim);
			if (kind == N_KINDS) {
				for (size_t j = 0; j < dim; j++)
					qv[j] = gauss();
				for (size_t r = 0; r < n; r++)
					for (size_t j = 0; j < dim; j++)
						tb.rows[r * dim + j] =
						        qv[j] * 0.7f + (float)(gauss() * 4e-3);
				finish_table(&tb);
			}
			for (size_t i = kind == N_KINDS; i < 8; i++)
				make_query(&tb, (int)(i % 7), qv + i * dim);
			for (size_t mi = 0; mi < 2; mi++) {
				enum vec_metric m = shortcut_metrics[mi];
				for (size_t ai = 0; ai < N_ARITHS; ai++) {
					static const size_t ks[] = {1, 10, 40};
					struct vec_batch_query qs[2][8];
					struct vec_hit out[2][8][41];
					struct vec_screen_stats bst[2];
					for (int on = 0; on < 2; on++) {
						vec_screen_use_lb_shortcut(on);
						for (size_t i = 0; i < 8; i++)
							qs[on][i] = (struct vec_batch_query){
							        .q = qv + i * dim,
							        .dim = dim,
							        .k = ks[i % 3],
							        .offset = i % 4 == 3 ? 2 : 0,
							        .out = out[on][i]};
						int rc = vec_knn_screened_batch(tb.t, tb.s, m,
						                                ariths[ai], qs[on],
						                                8, &bst[on]);
						(void)rc; /* each query's rc is compared */
					}
					vec_screen_use_lb_shortcut(true);
					cr_expect_eq(bst[0].lb_shortcut, 0);
					settled[mi] += bst[1].lb_shortcut;
					differ += !same_stats(&bst[0], &bst[1]);
					for (size_t i = 0; i < 8; i++) {
						struct vec_batch_query *a = &qs[0][i],
						                       *b = &qs[1][i];
						bool same = a->rc == b->rc &&
						            same_hit_lists(a->out, a->n_out, b->out,
						                           b->n_out);
						/* and each alone */
						struct vec_screen_stats st[2];
						struct vec_hit h1[2][41];
						size_t n1[2];
						int rc1[2];
						for (int on = 0; on < 2; on++) {
							vec_screen_use_lb_shortcut(on);
							rc1[on] = vec_knn_screened_stats(
							        tb.t, tb.s, m, ariths[ai], a->q,
							        dim, a->k, a->offset, NULL, NULL,
							        h1[on], &n1[on], &st[on]);
						}
						vec_screen_use_lb_shortcut(true);
						settled[mi] += st[1].lb_shortcut;
						same = same && rc1[0] == rc1[1] &&
						       same_stats(&st[0], &st[1]) &&
						       same_hit_lists(h1[0], n1[0], h1[1], n1[1]);
						if (!same)
							cr_log_info("shortcut differs: dim %zu "
							            "kind %d metric %d "
							            "arith %d query %zu",
							            dim, kind, m, ariths[ai], i);
						differ += !same;
						compared++;
					}
				}
			}
			free_table(&tb);
		}
		free(qv);
	}
	vec_screen_use_lb_shortcut(true);
	cr_log_info("compared %zu queries; groups settled by the shortcut: cosine %zu, L2 %zu",
	            compared, settled[0], settled[1]);
	cr_expect_eq(differ, 0, "%zu of %zu queries differ with the shortcut", differ, compared);
	cr_assert_geq(compared, 600);
	expect_shortcut_ran(settled);
}

/* The shortcut at its edge: with the pruning threshold at a row's own lower
 * bound (and one ulp either side), it never settles a group with a row
 * whose bound is not above the threshold, for cosine and L2, on every kind
 * of table, both arithmetics and the integer and float kernels; and it
 * does settle groups (where it runs), so the check is not vacuous. A
 * shortcut without its margins, or with a margin's sign turned, fails
 * here. */
Test(vec_screen, lb_shortcut_at_its_edge, .timeout = 300)
{
	size_t unsound[2] = {0, 0}, settled[2] = {0, 0}, queries = 0;
	static const size_t dims[] = {8, 33, 768};
	for (int vnni = 1; vnni >= 0; vnni--) {
		vec_screen_use_vnni(vnni);
		for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
			size_t dim = dims[di], n = dim >= 768 ? 160 : 400;
			float *q = malloc(dim * sizeof(float));
			for (int kind = 0; kind < N_KINDS; kind++) {
				struct table tb = make_table((enum kind)kind, n, dim);
				for (int qi = 0; qi < 7; qi++) {
					make_query(&tb, qi, q);
					for (size_t mi = 0; mi < 2; mi++)
						for (size_t ai = 0; ai < N_ARITHS; ai++) {
							size_t u, s;
							if (vec_screen_check_lb_shortcut(
							            tb.t, tb.s,
							            shortcut_metrics[mi],
							            ariths[ai], q, dim, &u,
							            &s) != 0)
								continue; /* the query is in doubt
								           */
							unsound[mi] += u;
							settled[mi] += s;
							queries++;
						}
				}
				free_table(&tb);
			}
			free(q);
		}
	}
	vec_screen_use_vnni(true);
	cr_log_info("%zu queries; groups settled at the edge: cosine %zu, L2 %zu", queries,
	            settled[0], settled[1]);
	cr_expect_eq(unsound[0], 0,
	             "cosine: %zu groups settled with a row at or below the threshold", unsound[0]);
	cr_expect_eq(unsound[1], 0, "L2: %zu groups settled with a row at or below the threshold",
	             unsound[1]);
	cr_assert_geq(queries, 200);
	expect_shortcut_ran(settled);
}
