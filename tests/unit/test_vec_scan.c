/* Unit tests for src/vec/block.c and the SIMD kernels of src/vec/scan*.c:
 * the blocked layout round-trips, and every kernel's distances are
 * bit-identical to vec_distance() (memcmp on the doubles) on random tables
 * full of negatives, tiny, huge and zero values, for every ISA the CPU has. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vec/block.h"
#include "vec/scan.h"
#include "vec/vec.h"

#include "test_rand.h"
#include "test_vec.h"

TestSuite(vec_scan, .fini = reset_isa);

struct table {
	struct vec_table *t;
	float *rows; /* n * dim, row-major: the reference copy */
	size_t n, dim;
};

/* n rows of dim random values; row 5 (when n > 5) is all zeros, and with
 * awk = false no awkward values (a plain table). */
static struct table make_table(size_t n, size_t dim, bool awk)
{
	struct table tb = {NULL, malloc(n * dim * sizeof(float) + 1), n, dim};
	for (size_t r = 0; r < n; r++)
		for (size_t j = 0; j < dim; j++)
			tb.rows[r * dim + j] = r == 5 ? 0.0f : awk ? awkward() : uniform();
	tb.t = test_table_of(tb.rows, NULL, n, dim, VEC_DIM_ANY);
	cr_assert_not_null(tb.t);
	return tb;
}

static void free_table(struct table *tb)
{
	vec_table_free(tb->t);
	free(tb->rows);
}

/* Compares vec_scan_table with vec_distance for every row; returns the
 * number of distances compared, asserts there is no mismatch. */
static size_t check_all(const struct table *tb, const float *q, const char *what)
{
	size_t compared = 0;
	double *got = malloc((tb->n + 1) * sizeof(double));
	bool *got_null = malloc(tb->n + 1);
	for (size_t mi = 0; mi < N_METRICS; mi++) {
		for (size_t ii = 0; ii < N_ISAS; ii++) {
			if (vec_scan_force(isas[ii]) != 0)
				continue;
			cr_assert_eq(vec_scan_table(tb->t, metrics[mi], q, tb->dim, got, got_null),
			             0);
			size_t bad = 0;
			for (size_t r = 0; r < tb->n; r++) {
				bool want_null;
				double want = vec_distance(metrics[mi], tb->rows + r * tb->dim, q,
				                           tb->dim, &want_null);
				if (want_null != got_null[r] ||
				    memcmp(&want, &got[r], sizeof(want)) != 0) {
					if (bad++ < 3)
						cr_log_error("%s dim %zu metric %d isa %s row %zu: "
						             "%a (null %d) "
						             "vs %a (null %d)",
						             what, tb->dim, metrics[mi],
						             vec_isa_name(isas[ii]), r, got[r],
						             got_null[r], want, want_null);
				}
				compared++;
			}
			cr_expect_eq(bad, 0, "%s dim %zu metric %d isa %s: %zu mismatches", what,
			             tb->dim, metrics[mi], vec_isa_name(isas[ii]), bad);
		}
	}
	reset_isa();
	free(got);
	free(got_null);
	return compared;
}

/* The bit-identity proof: >= 300k distances over every required dimension. */
Test(vec_scan, bit_identical_to_vec_distance)
{
	static const size_t dims[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 100, 768, 1536};
	size_t total = 0;
	for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
		size_t dim = dims[di], n = dim >= 768 ? 67 : 203; /* not multiples of 16 */
		for (int awk = 0; awk <= 1; awk++) {
			struct table tb = make_table(n, dim, awk);
			float *q = malloc(dim * sizeof(float));
			for (int qi = 0; qi < 10; qi++) {
				for (size_t j = 0; j < dim; j++)
					q[j] = awk ? awkward() : uniform();
				if (qi == 1)
					memset(q, 0, dim * sizeof(float)); /* every cosine NULL */
				if (qi == 2)
					memcpy(q, tb.rows + 7 * dim,
					       dim * sizeof(float)); /* a row itself */
				total += check_all(&tb, q, awk ? "awkward" : "plain");
			}
			free(q);
			free_table(&tb);
		}
	}
	cr_log_info("compared %zu distances", total);
	cr_assert_geq(total, 100000);
}

/* The comparison above catches a fused kernel: with FMA, some of these
 * plain distances differ (so 0 mismatches means something). */
Test(vec_scan, fused_arithmetic_would_be_caught)
{
	struct table tb = make_table(64, 768, false);
	float q[768];
	for (size_t j = 0; j < 768; j++)
		q[j] = uniform();
	size_t differ = 0;
	for (size_t r = 0; r < tb.n; r++) {
		const float *a = tb.rows + r * 768;
		float fused = 0;
		for (size_t j = 0; j < 768; j++)
			fused = fmaf(a[j], q[j], fused);
		bool is_null;
		double d = vec_distance(VEC_NEG_IP, a, q, 768, &is_null);
		differ += (double)fused * -1.0 != d;
	}
	cr_expect_gt(differ, 0);
	free_table(&tb);
}

/* docs/tidb.md §3's reference values, through the blocks. */
Test(vec_scan, tidb_reference_values)
{
	static const struct {
		float a[3], b[3];
		size_t dim;
		enum vec_metric m;
		double want;
		bool is_null;
	} cases[] = {
	        {{1, 2, 3}, {4, 5, 6}, 3, VEC_COSINE, 0.025368153802923787, false},
	        {{1, 2, 3}, {4, 5, 6}, 3, VEC_L2, 5.196152422706632, false},
	        {{1, 2, 3}, {4, 5, 6}, 3, VEC_NEG_IP, -32, false},
	        {{1, 2, 3}, {4, 5, 6}, 3, VEC_L1, 9, false},
	        {{1, 0}, {0, 1}, 2, VEC_COSINE, 1, false},
	        {{1, 0}, {0, 1}, 2, VEC_NEG_IP, -0.0, false},
	        {{1, 1}, {-1, -1}, 2, VEC_COSINE, 2, false},
	        {{1, 2, 4}, {1, 2, 3}, 3, VEC_COSINE, 0.00853986601633272, false},
	        {{0, 0}, {1, 1}, 2, VEC_COSINE, NAN, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t ii = 0; ii < N_ISAS; ii++) {
			if (vec_scan_force(isas[ii]) != 0)
				continue;
			struct vec_builder b;
			cr_assert_eq(vec_builder_init(&b, cases[i].dim), 0);
			cr_assert_eq(vec_builder_add(&b, cases[i].a, cases[i].dim), 0);
			struct vec_table *t = vec_builder_finish(&b);
			double d;
			bool is_null;
			cr_assert_eq(vec_scan_table(t, cases[i].m, cases[i].b, cases[i].dim, &d,
			                            &is_null),
			             0);
			cr_expect_eq(is_null, cases[i].is_null, "case %zu", i);
			if (!is_null)
				cr_expect(memcmp(&d, &cases[i].want, sizeof(d)) == 0,
				          "case %zu isa %s: %.17g", i, vec_isa_name(isas[ii]), d);
			vec_table_free(t);
		}
	}
}

/* Layout: alignment, transposition, zero padding, lane masks, row lookup
 * with NULL and mixed-dimension rows interleaved. */
Test(vec_scan, layout_and_row_kinds)
{
	static const size_t counts[] = {0, 1, 15, 16, 17, 33, 1000};
	for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
		size_t n = counts[ci], dim = 5, slots = 0, nulls = 0, mixed = 0;
		struct vec_builder b;
		cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
		for (size_t r = 0; r < n; r++) {
			float v[6] = {(float)r, 1, 2, 3, -(float)r, 9};
			if (r % 7 == 3) {
				cr_assert_eq(vec_builder_add_null(&b), 0);
				nulls++;
			} else if (r % 11 == 4) {
				cr_assert_eq(vec_builder_add(&b, v, r % 2 ? 6 : 4), 0);
				mixed++;
			} else {
				cr_assert_eq(vec_builder_add(&b, v, dim), 0);
				slots++;
			}
		}
		struct vec_table *t = vec_builder_finish(&b);
		cr_assert_not_null(t);
		cr_assert_eq(vec_table_rows(t), n);
		cr_assert_eq(vec_table_null_count(t), nulls);
		size_t mrow = 0, mdim = 0;
		cr_assert_eq(vec_table_mixed(t, &mrow, &mdim), mixed);
		if (mixed)
			cr_assert(mrow == 4 && mdim == 4);
		cr_assert_eq(t->n_slots, slots);
		cr_assert_eq(t->n_blocks, (slots + 15) / 16);
		cr_assert_geq(vec_table_bytes(t), sizeof(*t) + slots * dim * sizeof(float));
		for (size_t blk = 0; blk < t->n_blocks; blk++) {
			size_t run;
			const float *p = vec_table_block(t, blk, &run);
			cr_assert_eq((uintptr_t)p % VEC_BLOCK_ALIGN, 0);
			cr_assert(run >= 1 && blk + run <= t->n_blocks);
			uint32_t lanes = vec_table_lane_mask(t, blk);
			for (size_t l = 0; l < VEC_BLOCK_W; l++) {
				bool present = blk * 16 + l < slots;
				cr_assert_eq(lanes >> l & 1, present);
				for (size_t j = 0; !present && j < dim; j++)
					cr_assert(p[j * VEC_BLOCK_W + l] == 0 &&
					          !signbit(p[j * VEC_BLOCK_W + l]));
				if (present) {
					size_t r = vec_table_slot_row(t, blk * 16 + l);
					cr_assert_eq(p[0 * VEC_BLOCK_W + l], (float)r);
					cr_assert_eq(p[4 * VEC_BLOCK_W + l], -(float)r);
				}
			}
		}
		for (size_t r = 0; r < n; r++) {
			float out[8];
			size_t d;
			bool is_null;
			cr_assert_eq(vec_table_get(t, r, out, 8, &d, &is_null), 0);
			if (r % 7 == 3) {
				cr_assert(is_null && d == 0);
			} else {
				cr_assert(!is_null);
				cr_assert_eq(d, r % 11 == 4 ? (r % 2 ? 6u : 4u) : dim);
				cr_assert(out[0] == (float)r && out[1] == 1 && out[3] == 3,
				          "row %zu", r);
			}
		}
		size_t d;
		bool is_null;
		cr_assert_eq(vec_table_get(t, n, NULL, 0, &d, &is_null), -ERANGE);
		vec_table_free(t);
	}
}

/* The squared norms are vec_dist.c's: cosine on NULL-interleaved tables. */
Test(vec_scan, null_rows_and_norms)
{
	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, 33), 0);
	float rows[100][33];
	for (size_t r = 0; r < 100; r++) {
		for (size_t j = 0; j < 33; j++)
			rows[r][j] = awkward();
		if (r % 9 == 0)
			cr_assert_eq(vec_builder_add_null(&b), 0);
		else
			cr_assert_eq(vec_builder_add(&b, rows[r], 33), 0);
	}
	struct vec_table *t = vec_builder_finish(&b);
	float q[33];
	for (size_t j = 0; j < 33; j++)
		q[j] = awkward();
	double got[100];
	bool got_null[100];
	for (size_t mi = 0; mi < N_METRICS; mi++) {
		cr_assert_eq(vec_scan_table(t, metrics[mi], q, 33, got, got_null), 0);
		for (size_t r = 0; r < 100; r++) {
			bool want_null = true;
			double want = 0;
			if (r % 9)
				want = vec_distance(metrics[mi], rows[r], q, 33, &want_null);
			cr_assert_eq(got_null[r], want_null, "row %zu", r);
			if (!want_null)
				cr_assert(memcmp(&got[r], &want, sizeof(want)) == 0, "row %zu", r);
		}
	}
	cr_assert_eq(vec_scan_table(t, VEC_L2, q, 32, got, got_null), -EINVAL);
	vec_table_free(t);
}

Test(vec_scan, errors_and_edges)
{
	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, VEC_MAX_DIM + 1), -EINVAL);
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	float v[3] = {1, 2, 3};
	cr_assert_eq(vec_builder_add(&b, v, VEC_MAX_DIM + 1), -EINVAL);
	vec_builder_free(&b);
	vec_builder_free(&b); /* harmless twice */

	/* Dimension 0: "[]" rows. Cosine of [] and [] is NaN (NULL), L2 is 0. */
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(vec_builder_add(&b, NULL, 0), 0);
	struct vec_table *t = vec_builder_finish(&b);
	bool set;
	cr_assert_eq(vec_table_dim(t, &set), 0);
	cr_assert(set);
	double d[20];
	bool nul[20];
	cr_assert_eq(vec_scan_table(t, VEC_COSINE, NULL, 0, d, nul), 0);
	cr_assert(nul[0] && nul[19]);
	cr_assert_eq(vec_scan_table(t, VEC_L2, NULL, 0, d, nul), 0);
	cr_assert(!nul[19] && d[19] == 0);
	cr_assert_eq(vec_scan_table(t, VEC_L2, v, 3, d, nul), -EINVAL);
	vec_table_free(t);

	/* Mixed dimensions: TiDB fails the query, so does the scan. */
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	cr_assert_eq(vec_builder_add(&b, v, 3), 0);
	cr_assert_eq(vec_builder_add(&b, v, 2), 0);
	t = vec_builder_finish(&b);
	cr_assert_eq(vec_scan_table(t, VEC_L2, v, 3, d, nul), -EDOM);
	vec_table_free(t);

	/* An unsupported ISA is refused and changes nothing. */
	enum vec_isa before = vec_scan_isa();
	cr_assert_neq(before, VEC_ISA_AUTO);
	for (size_t ii = 0; ii < N_ISAS; ii++)
		if (!vec_isa_supported(isas[ii]))
			cr_assert_eq(vec_scan_force(isas[ii]), -ENOTSUP);
	cr_assert_eq(vec_scan_isa(), before);
	cr_assert_str_eq(vec_isa_name(VEC_ISA_AVX512), "avx512");
}

/* The table's row norms (both arithmetics), summed a block at a time when
 * its rows are all in, are vec_norm_sq_f32's, bit for bit, whatever the
 * row count (full and partial last blocks) and values. */
Test(vec_scan, norms_are_the_row_sums)
{
	static const size_t ns[] = {1, 15, 16, 17, 33, 100};
	static const size_t dims[] = {1, 3, 17, 768};
	size_t checked = 0;
	for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
		for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
			for (int awk = 0; awk <= 1; awk++) {
				struct table tb = make_table(ns[ni], dims[di], awk);
				const float *sep = vec_table_norms(tb.t, VEC_ARITH_SEPARATE);
				const float *fus = vec_table_norms(tb.t, VEC_ARITH_FUSED);
				for (size_t r = 0; r < tb.n; r++) {
					const float *v = tb.rows + r * tb.dim;
					float a = vec_norm_sq_f32(v, tb.dim, VEC_ARITH_SEPARATE);
					float b = vec_norm_sq_f32(v, tb.dim, VEC_ARITH_FUSED);
					cr_assert(memcmp(&a, &sep[r], sizeof(a)) == 0,
					          "n %zu dim %zu row %zu: %a, not %a", tb.n, tb.dim,
					          r, (double)sep[r], (double)a);
					cr_assert(memcmp(&b, &fus[r], sizeof(b)) == 0,
					          "n %zu dim %zu row %zu fused: %a, not %a", tb.n,
					          tb.dim, r, (double)fus[r], (double)b);
					checked++;
				}
				free_table(&tb);
			}
		}
	}
	cr_assert_eq(checked, 2 * 4 * (1 + 15 + 16 + 17 + 33 + 100));
}
