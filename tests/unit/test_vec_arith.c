/* Unit tests for the arithmetics of enum vec_arith: the scalar reference
 * vec_distance_arith() against values Go itself computed, and every kernel
 * of src/vec/scan*.c this CPU can run against that reference (memcmp on the
 * doubles), in all arithmetics and metrics, on random and adversarial
 * tables. The fused and separate results must differ often, and a kernel of
 * the wrong arithmetic must be caught, or the 0 mismatches prove nothing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vec/block.h"
#include "vec/knn.h"
#include "vec/scan.h"
#include "vec/vec.h"

#define TEST_RNG_SEED 0x2545F4914F6CDD1Dull
#include "test_rand.h"
#include "test_vec.h"

TestSuite(vec_arith, .fini = reset_isa);

static float f32(uint32_t bits)
{
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

static double f64(uint64_t bits)
{
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

static bool same(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

Test(vec_arith, names)
{
	for (size_t i = 0; i < N_ARITHS; i++) {
		const char *name = vec_arith_name(ariths[i]);
		enum vec_arith back = (enum vec_arith)99;
		cr_assert_eq(vec_arith_parse(name, strlen(name), &back), 0, "%s", name);
		cr_assert_eq(back, ariths[i]);
	}
	cr_assert_str_eq(vec_arith_name(VEC_ARITH_SEPARATE), "separate");
	cr_assert_str_eq(vec_arith_name(VEC_ARITH_FUSED), "fused");
	cr_assert_str_eq(vec_arith_name((enum vec_arith)7), "?");
	static const char *const bad[] = {"", "fuse", "fusedx", "Fused", "separate ", "?"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum vec_arith out = VEC_ARITH_FUSED;
		cr_assert_eq(vec_arith_parse(bad[i], strlen(bad[i]), &out), -EINVAL, "'%s'",
		             bad[i]);
		cr_assert_eq(out, VEC_ARITH_FUSED, "untouched after '%s'", bad[i]);
	}
	/* Only the first n bytes count: "fused" inside a longer buffer. */
	enum vec_arith out;
	cr_assert_eq(vec_arith_parse("fusedXYZ", 5, &out), 0);
	cr_assert_eq(out, VEC_ARITH_FUSED);
	cr_assert_eq(vec_arith_of_metric(VEC_ARITH_FUSED_EXCEPT_IP, VEC_NEG_IP),
	             VEC_ARITH_SEPARATE);
	cr_assert_eq(vec_arith_of_metric(VEC_ARITH_FUSED_EXCEPT_IP, VEC_COSINE), VEC_ARITH_FUSED);
	cr_assert_eq(vec_arith_of_metric((enum vec_arith)7, VEC_L2), -1);
}

/* Golden values. Each row: the float32 bits of a and b, then the float64
 * bits of cosine, L2, L1 and negative inner product as Go's loops of TiDB's
 * form print them (tests/golden/godist): built for arm64 (every step fused),
 * for amd64 GOAMD64=v1 (separate) and GOAMD64=v3 (cosine and L2 fused). */
struct golden {
	uint32_t a[3], b[3];
	size_t dim;
	uint64_t separate[4], fused[4], fused_except_ip[4];
};

static const struct golden goldens[] = {
        /* a = [1.057, -2.676, 2.397], b = [1.68, 2.247, 1.787]: all three
         * sums round differently when fused. */
        {{0x3f874bc7, 0xc02b4396, 0x40196873},
         {0x3fd70a3d, 0x400fced9, 0x3fe4bc6a},
         3,
         {0x3fefe19978e85fce, 0x4013ff9b589c51eb, 0x40189fbea0000000, 0xbfa7ab1000000000},
         {0x3fefe1998021f951, 0x4013ff9b65695f20, 0x40189fbea0000000, 0xbfa7ab0a60000000},
         {0x3fefe1998021f951, 0x4013ff9b65695f20, 0x40189fbea0000000, 0xbfa7ab1000000000}},
        /* a = [2.882, 0.944, -0.898], b = [0.292, -2.214, -2.915] */
        {{0x403872b0, 0x3f71a9fc, 0xbf65e354},
         {0x3e958106, 0xc00db22d, 0xc03a8f5c},
         3,
         {0x3fec3a3eaad57781, 0x40123878251812fe, 0x401f0f5c40000000, 0xbff5e83c40000000},
         {0x3fec3a3eae1b3016, 0x40123878170b4347, 0x401f0f5c40000000, 0xbff5e83c20000000},
         {0x3fec3a3eae1b3016, 0x40123878170b4347, 0x401f0f5c40000000, 0xbff5e83c40000000}},
        /* a = [1, x], b = [-1, x], x = 1 + 2^-12, by hand: x*x = 1 + 2^-11
         * + 2^-24, whose float32 rounding drops the 2^-24 (a tie, to
         * even). Separate: -1 + (1 + 2^-11) = 2^-11; fused: fmaf(x, x, -1)
         * = 2^-11 + 2^-24 exactly. L2 ([2, 0]) and L1 are exact. */
        {{0x3f800000, 0x3f800800},
         {0xbf800000, 0x3f800800},
         2,
         {0x3feffe001ffe0020, 0x4000000000000000, 0x4000000000000000, 0xbf40000000000000},
         {0x3feffe000fff0010, 0x4000000000000000, 0x4000000000000000, 0xbf40008000000000},
         {0x3feffe000fff0010, 0x4000000000000000, 0x4000000000000000, 0xbf40000000000000}},
        /* docs/tidb.md §3's [1,2,3] and [4,5,6]: small integers are exact
         * in both, so the arithmetics agree. */
        {{0x3f800000, 0x40000000, 0x40400000},
         {0x40800000, 0x40a00000, 0x40c00000},
         3,
         {0x3f99fa1bfbc61940, 0x4014c8dc2e423980, 0x4022000000000000, 0xc040000000000000},
         {0x3f99fa1bfbc61940, 0x4014c8dc2e423980, 0x4022000000000000, 0xc040000000000000},
         {0x3f99fa1bfbc61940, 0x4014c8dc2e423980, 0x4022000000000000, 0xc040000000000000}},
};

/* The reference and every kernel (through one-row tables) on the golden
 * rows. */
Test(vec_arith, golden_values)
{
	for (size_t g = 0; g < sizeof(goldens) / sizeof(goldens[0]); g++) {
		const struct golden *c = &goldens[g];
		float a[3], b[3];
		for (size_t j = 0; j < c->dim; j++) {
			a[j] = f32(c->a[j]);
			b[j] = f32(c->b[j]);
		}
		struct vec_builder bld;
		cr_assert_eq(vec_builder_init(&bld, c->dim), 0);
		cr_assert_eq(vec_builder_add(&bld, a, c->dim), 0);
		struct vec_table *t = vec_builder_finish(&bld);
		for (size_t ai = 0; ai < N_ARITHS; ai++) {
			const uint64_t *want = ariths[ai] == VEC_ARITH_SEPARATE ? c->separate
			                       : ariths[ai] == VEC_ARITH_FUSED  ? c->fused
			                                                       : c->fused_except_ip;
			for (size_t mi = 0; mi < N_METRICS; mi++) {
				bool is_null;
				double d = vec_distance_arith(metrics[mi], ariths[ai], a, b, c->dim,
				                              &is_null);
				cr_expect(!is_null && same(d, f64(want[mi])),
				          "golden %zu %s metric %d: %a, want %a", g,
				          vec_arith_name(ariths[ai]), metrics[mi], d,
				          f64(want[mi]));
				for (size_t ii = 0; ii < N_ISAS; ii++) {
					if (vec_scan_force(isas[ii]) != 0)
						continue;
					cr_assert_eq(vec_scan_table_arith(t, metrics[mi],
					                                  ariths[ai], b, c->dim, &d,
					                                  &is_null),
					             0);
					cr_expect(!is_null && same(d, f64(want[mi])),
					          "golden %zu %s metric %d isa %s: %a", g,
					          vec_arith_name(ariths[ai]), metrics[mi],
					          vec_isa_name(isas[ii]), d);
				}
				reset_isa();
			}
		}
		vec_table_free(t);
	}
}

enum kind { PLAIN, AWKWARD, TIES, SCALED };

struct table {
	struct vec_table *t;
	float *rows; /* n * dim, row-major: the reference copy */
	size_t n, dim;
};

/* n rows of dim values of one kind. TIES repeats a few rows (equal
 * distances); SCALED gives each row one scale, from tiny to huge norms.
 * Row 3 (when n > 3) is all zeros: cosine's NULLs. */
static struct table make_table(size_t n, size_t dim, enum kind kind)
{
	struct table tb = {NULL, malloc(n * dim * sizeof(float) + 1), n, dim};
	for (size_t r = 0; r < n; r++) {
		float *v = tb.rows + r * dim;
		float scale = kind == SCALED ? powf(10.0f, (float)((int)(rnd() % 61) - 30)) : 1;
		for (size_t j = 0; j < dim; j++)
			v[j] = kind == AWKWARD ? awkward() : uniform() * scale;
		if (kind == TIES && r >= 4)
			memcpy(v, tb.rows + (r % 4) * dim, dim * sizeof(float));
		if (r == 3)
			memset(v, 0, dim * sizeof(float));
	}
	tb.t = test_table_of(tb.rows, NULL, n, dim, dim);
	cr_assert_not_null(tb.t);
	return tb;
}

static void free_table(struct table *tb)
{
	vec_table_free(tb->t);
	free(tb->rows);
}

/* Scans tb in arithmetic scan_arith with isa's kernels and compares every
 * row with vec_distance_arith in ref_arith: the number of rows that differ
 * (bits or NULL). *compared counts the distances. */
static size_t mismatches(const struct table *tb, const float *q, enum vec_metric m,
                         enum vec_arith scan_arith, enum vec_arith ref_arith, double *got,
                         bool *got_null, size_t *compared)
{
	cr_assert_eq(vec_scan_table_arith(tb->t, m, scan_arith, q, tb->dim, got, got_null), 0);
	size_t bad = 0;
	for (size_t r = 0; r < tb->n; r++) {
		bool want_null;
		double want = vec_distance_arith(m, ref_arith, tb->rows + r * tb->dim, q, tb->dim,
		                                 &want_null);
		if (want_null != got_null[r] || (!want_null && !same(want, got[r])))
			bad++;
	}
	*compared += tb->n;
	return bad;
}

/* How many rows' reference distances differ between the fused and the
 * separate arithmetic (NULL on one side only counts too). */
static size_t fused_vs_separate(const struct table *tb, const float *q, enum vec_metric m)
{
	size_t n = 0;
	for (size_t r = 0; r < tb->n; r++) {
		bool fn, sn;
		double f = vec_distance_arith(m, VEC_ARITH_FUSED, tb->rows + r * tb->dim, q,
		                              tb->dim, &fn);
		double s = vec_distance_arith(m, VEC_ARITH_SEPARATE, tb->rows + r * tb->dim, q,
		                              tb->dim, &sn);
		n += fn != sn || (!fn && !same(f, s));
	}
	return n;
}

/* The proof: every kernel equals the reference in every arithmetic, over
 * dimensions 1..1536 and four kinds of data, at least 500k distances, and
 * the fused and separate arithmetics differ in a large share of them. */
Test(vec_arith, kernels_bit_identical_to_reference, .timeout = 600)
{
	size_t dims[64], n_dims = 0;
	for (size_t d = 1; d <= 40; d++)
		dims[n_dims++] = d;
	static const size_t big[] = {63,  64,  65,  100, 127, 128,  129,
	                             255, 256, 300, 512, 768, 1000, 1536};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		dims[n_dims++] = big[i];

	size_t compared = 0, bad = 0, differ = 0, multiplied = 0, differ_by_metric[N_METRICS] = {0};
	for (size_t di = 0; di < n_dims; di++) {
		size_t dim = dims[di], n = dim >= 512 ? 21 : 37; /* not multiples of 16 */
		for (enum kind kind = PLAIN; kind <= SCALED; kind++) {
			struct table tb = make_table(n, dim, kind);
			double *got = malloc(n * sizeof(double));
			bool *got_null = malloc(n);
			float *q = malloc(dim * sizeof(float));
			for (int qi = 0; qi < 3; qi++) {
				for (size_t j = 0; j < dim; j++)
					q[j] = kind == AWKWARD ? awkward() : uniform();
				if (qi == 1) /* a row itself: distance 0 ties */
					memcpy(q, tb.rows + 2 * dim, dim * sizeof(float));
				for (size_t mi = 0; mi < N_METRICS; mi++) {
					if (metrics[mi] != VEC_L1) {
						size_t dv = fused_vs_separate(&tb, q, metrics[mi]);
						differ += dv;
						differ_by_metric[mi] += dv;
						multiplied += n;
					}
					for (size_t ii = 0; ii < N_ISAS; ii++) {
						if (vec_scan_force(isas[ii]) != 0)
							continue;
						for (size_t ai = 0; ai < N_ARITHS; ai++) {
							size_t b = mismatches(&tb, q, metrics[mi],
							                      ariths[ai],
							                      ariths[ai], got,
							                      got_null, &compared);
							if (b)
								cr_log_error(
								        "dim %zu kind %d metric %d "
								        "isa %s %s: %zu mismatches",
								        dim, kind, metrics[mi],
								        vec_isa_name(isas[ii]),
								        vec_arith_name(ariths[ai]),
								        b);
							bad += b;
						}
					}
					reset_isa();
				}
			}
			free(q);
			free(got);
			free(got_null);
			free_table(&tb);
		}
	}
	cr_log_info("compared %zu distances, %zu mismatches; fused != separate in %zu of %zu "
	            "(cosine %zu, L2 %zu, negative inner product %zu)",
	            compared, bad, differ, multiplied, differ_by_metric[0], differ_by_metric[1],
	            differ_by_metric[3]);
	cr_assert_eq(bad, 0);
	cr_assert_geq(compared, 500000);
	/* On these data over a third of the distances of the three metrics
	 * with a multiply come out different (zeros, exact integers and
	 * overflows agree); a quarter is far above what a fused kernel that is
	 * really the separate one could show (none). */
	cr_assert_geq(differ * 4, multiplied, "fused != separate in only %zu of %zu", differ,
	              multiplied);
	for (size_t mi = 0; mi < N_METRICS; mi++)
		if (metrics[mi] != VEC_L1)
			cr_assert_geq(differ_by_metric[mi] * 8, multiplied / 3, "metric %d: %zu",
			              metrics[mi], differ_by_metric[mi]);
}

/* The comparison above catches a kernel of the wrong arithmetic: scans in
 * one arithmetic checked against the reference in another give many
 * mismatches, for every ISA, for each metric with a multiply. */
Test(vec_arith, wrong_arithmetic_is_caught)
{
	struct table tb = make_table(203, 100, PLAIN);
	double got[203];
	bool got_null[203];
	float q[100];
	for (size_t j = 0; j < 100; j++)
		q[j] = uniform();
	size_t compared = 0;
	static const enum vec_metric multiplied[] = {VEC_COSINE, VEC_L2, VEC_NEG_IP};
	for (size_t ii = 0; ii < N_ISAS; ii++) {
		if (vec_scan_force(isas[ii]) != 0)
			continue;
		for (size_t mi = 0; mi < 3; mi++) {
			enum vec_metric m = multiplied[mi];
			size_t a = mismatches(&tb, q, m, VEC_ARITH_SEPARATE, VEC_ARITH_FUSED, got,
			                      got_null, &compared);
			size_t b = mismatches(&tb, q, m, VEC_ARITH_FUSED, VEC_ARITH_SEPARATE, got,
			                      got_null, &compared);
			cr_expect_geq(a, 203 / 4, "isa %s metric %d: separate scan passed as fused",
			              vec_isa_name(isas[ii]), m);
			cr_expect_geq(b, 203 / 4, "isa %s metric %d: fused scan passed as separate",
			              vec_isa_name(isas[ii]), m);
			/* fused-except-ip is fused but for the inner product. */
			size_t c =
			        mismatches(&tb, q, m, VEC_ARITH_FUSED_EXCEPT_IP,
			                   m == VEC_NEG_IP ? VEC_ARITH_FUSED : VEC_ARITH_SEPARATE,
			                   got, got_null, &compared);
			cr_expect_geq(c, 203 / 4, "isa %s metric %d: fused-except-ip",
			              vec_isa_name(isas[ii]), m);
		}
		/* L1 has no multiply: one answer in every arithmetic. */
		cr_expect_eq(mismatches(&tb, q, VEC_L1, VEC_ARITH_FUSED, VEC_ARITH_SEPARATE, got,
		                        got_null, &compared),
		             0);
	}
	reset_isa();
	free_table(&tb);
}

/* The stored fused norms are the reference's, and counted in bytes. */
Test(vec_arith, table_norms)
{
	struct table tb = make_table(100, 33, AWKWARD);
	const float *sep = vec_table_norms(tb.t, VEC_ARITH_SEPARATE);
	const float *fus = vec_table_norms(tb.t, VEC_ARITH_FUSED);
	cr_assert_eq(vec_table_norms(tb.t, VEC_ARITH_FUSED_EXCEPT_IP), fus);
	size_t differ = 0;
	for (size_t r = 0; r < tb.n; r++) {
		float s = 0, f = 0;
		for (size_t j = 0; j < tb.dim; j++) {
			float x = tb.rows[r * tb.dim + j];
			s += x * x;
			f = fmaf(x, x, f);
		}
		cr_assert(memcmp(&sep[r], &s, sizeof(s)) == 0, "row %zu", r);
		cr_assert(memcmp(&fus[r], &f, sizeof(f)) == 0, "row %zu", r);
		differ += memcmp(&s, &f, sizeof(s)) != 0;
	}
	cr_expect_gt(differ, 0);
	cr_assert_geq(vec_table_bytes(tb.t),
	              sizeof(*tb.t) + tb.n * (tb.dim * sizeof(float) + 2 * sizeof(float)));
	free_table(&tb);
}

static int cmp_hit(const void *x, const void *y)
{
	const struct vec_hit *a = x, *b = y;
	if (a->is_null != b->is_null)
		return a->is_null ? -1 : 1;
	if (!a->is_null && a->dist != b->dist)
		return a->dist < b->dist ? -1 : 1;
	return a->row < b->row ? -1 : a->row > b->row;
}

/* vec_knn_arith equals a brute-force sort of the reference distances in
 * each arithmetic, for every ISA; and the fused and separate answers are
 * not the same list of distances. */
Test(vec_arith, knn_against_brute_force)
{
	enum { N = 500, DIM = 48, K = 20 };
	struct table tb = make_table(N, DIM, PLAIN);
	/* Exact ties: every 50th row repeats row 7. */
	for (size_t r = 57; r < N; r += 50)
		memcpy(tb.rows + r * DIM, tb.rows + 7 * DIM, DIM * sizeof(float));
	vec_table_free(tb.t);
	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, DIM), 0);
	for (size_t r = 0; r < N; r++)
		cr_assert_eq(vec_builder_add(&b, tb.rows + r * DIM, DIM), 0);
	tb.t = vec_builder_finish(&b);
	float q[DIM];
	for (size_t j = 0; j < DIM; j++)
		q[j] = uniform();
	static struct vec_hit all[N];
	for (size_t mi = 0; mi < N_METRICS; mi++) {
		struct vec_hit first[N_ARITHS][K];
		for (size_t ai = 0; ai < N_ARITHS; ai++) {
			for (size_t r = 0; r < N; r++) {
				all[r].row = r;
				all[r].dist = vec_distance_arith(metrics[mi], ariths[ai],
				                                 tb.rows + r * DIM, q, DIM,
				                                 &all[r].is_null);
			}
			qsort(all, N, sizeof(all[0]), cmp_hit);
			memcpy(first[ai], all, sizeof(first[ai]));
			for (size_t ii = 0; ii < N_ISAS; ii++) {
				if (vec_scan_force(isas[ii]) != 0)
					continue;
				struct vec_hit out[K];
				size_t n;
				cr_assert_eq(vec_knn_arith(tb.t, metrics[mi], ariths[ai], q, DIM, K,
				                           0, NULL, NULL, out, &n),
				             0);
				cr_assert_eq(n, K);
				for (size_t h = 0; h < K; h++)
					cr_expect(out[h].row == all[h].row &&
					                  out[h].is_null == all[h].is_null &&
					                  (all[h].is_null ||
					                   same(out[h].dist, all[h].dist)),
					          "metric %d %s isa %s hit %zu", metrics[mi],
					          vec_arith_name(ariths[ai]),
					          vec_isa_name(isas[ii]), h);
			}
			reset_isa();
		}
		size_t differ = 0;
		for (size_t h = 0; h < K; h++)
			differ += !same(first[0][h].dist, first[1][h].dist);
		if (metrics[mi] == VEC_L1)
			cr_expect_eq(differ, 0);
		else
			cr_expect_gt(differ, 0, "metric %d", metrics[mi]);
	}
	free_table(&tb);
}

Test(vec_arith, refusals_and_isa_choice)
{
	struct table tb = make_table(20, 4, PLAIN);
	float q[4] = {1, 2, 3, 4};
	double d[20];
	bool nul[20];
	struct vec_hit out[4];
	size_t n = 99;
	enum vec_arith bogus = (enum vec_arith)3;
	cr_assert_eq(vec_scan_table_arith(tb.t, VEC_L2, bogus, q, 4, d, nul), -EINVAL);
	cr_assert_eq(vec_knn_arith(tb.t, VEC_L2, bogus, q, 4, 4, 0, NULL, NULL, out, &n), -EINVAL);
	cr_assert_eq(n, 0);
	struct vec_scan_query sq;
	cr_assert_eq(vec_scan_prepare_arith(&sq, VEC_COSINE, bogus, q, 4), -EINVAL);
	cr_assert_eq(vec_scan_prepare_arith(&sq, (enum vec_metric)9, VEC_ARITH_FUSED, q, 4),
	             -EINVAL);
	bool is_null;
	cr_assert(isnan(vec_distance_arith(VEC_L2, bogus, q, q, 4, &is_null)) && is_null);
	float other[3] = {1, 2, 3};
	double out1;
	struct vec_err err;
	cr_assert_eq(vec_distance_check_arith(VEC_L2, VEC_ARITH_FUSED, q, 4, other, 3, &out1,
	                                      &is_null, &err),
	             -EINVAL);
	cr_assert_str_eq(err.msg, "vectors have different dimensions: 4 and 3");

	/* Each ISA this CPU has runs its own fused kernels (this machine's AVX2
	 * comes with FMA), and the query's norm is the arithmetic's. */
	for (size_t ii = 0; ii < N_ISAS; ii++) {
		if (vec_scan_force(isas[ii]) != 0)
			continue;
		for (size_t ai = 0; ai < N_ARITHS; ai++) {
			cr_assert_eq(vec_scan_prepare_arith(&sq, VEC_COSINE, ariths[ai], q, 4), 0);
			cr_assert_eq(sq.arith, ariths[ai]);
			cr_assert_eq(sq.qnorm, vec_norm_sq_f32(q, 4, ariths[ai]));
#if defined(__x86_64__)
			if (__builtin_cpu_supports("fma"))
				cr_assert_eq(sq.isa, isas[ii], "%s", vec_isa_name(isas[ii]));
#endif
		}
		cr_assert_eq(vec_isa_for_arith(isas[ii], VEC_ARITH_SEPARATE), isas[ii]);
	}
	reset_isa();
	cr_assert_eq(vec_isa_for_arith(VEC_ISA_AUTO, VEC_ARITH_SEPARATE), vec_scan_isa());
	free_table(&tb);
}
