/* vec_kernel_check: every scan kernel this CPU runs against the scalar
 * reference vec_distance_arith(), in every arithmetic and metric, bit for
 * bit. Self-contained (no test framework), so that it can be cross-compiled
 * with src/vec alone and run under an emulator: that is how the NEON
 * kernels are checked on a machine without them
 * (tests/integration/test_neon_kernels.py).
 *
 *   vec_kernel_check [isa]    (default: every ISA the CPU has but scalar)
 *
 * Prints one summary line; exit status 0 only when there is no mismatch, the
 * checked ISA really ran, the fused and separate results differ in a large
 * share of the distances, and a scan in the wrong arithmetic is caught. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec/block.h"
#include "vec/scan.h"
#include "vec/vec.h"

#include "test_rand.h"
#include "test_vec.h"

/* Ordinary values, or awkward ones. */
static float value(bool awk)
{
	return awk ? awkward() : uniform();
}

static bool same(double a, bool an, double b, bool bn)
{
	return an == bn && (an || memcmp(&a, &b, sizeof(a)) == 0);
}

int main(int argc, char **argv)
{
	enum vec_isa only = VEC_ISA_AUTO;
	if (argc > 1) {
		for (size_t i = 0; i < sizeof(isas) / sizeof(isas[0]); i++)
			if (strcmp(argv[1], vec_isa_name(isas[i])) == 0)
				only = isas[i];
		if (only == VEC_ISA_AUTO) {
			fprintf(stderr, "usage: vec_kernel_check [scalar|avx2|avx512|neon]\n");
			return 2;
		}
		if (!vec_isa_supported(only)) {
			fprintf(stderr, "vec_kernel_check: this CPU cannot run %s\n",
			        vec_isa_name(only));
			return 1;
		}
	}
	static const size_t dims[] = {1,  2,  3,  4,  5,   7,   8,   15,  16,
	                              17, 31, 33, 64, 100, 257, 768, 1536};
	size_t compared = 0, bad = 0, differ = 0, multiplied = 0, caught = 0, cross = 0, runs = 0;
	for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
		size_t dim = dims[di], n = dim >= 768 ? 37 : 101;
		for (int awkward = 0; awkward <= 1; awkward++) {
			float *rows = malloc(n * dim * sizeof(float)),
			      *q = malloc(dim * sizeof(float));
			double *got = malloc(n * sizeof(double)), *ref = malloc(n * sizeof(double));
			bool *got_null = malloc(n), *ref_null = malloc(n);
			struct vec_builder b;
			if (!rows || !q || !got || !ref || !got_null || !ref_null ||
			    vec_builder_init(&b, dim) != 0)
				return 2;
			for (size_t r = 0; r < n; r++) {
				for (size_t j = 0; j < dim; j++)
					rows[r * dim + j] = r == 3 ? 0.0f : value(awkward);
				if (vec_builder_add(&b, rows + r * dim, dim) != 0)
					return 2;
			}
			struct vec_table *t = vec_builder_finish(&b);
			for (size_t j = 0; j < dim; j++)
				q[j] = value(awkward);
			for (size_t mi = 0; mi < 4; mi++) {
				enum vec_metric m = metrics[mi];
				for (size_t ai = 0; ai < 3; ai++) {
					for (size_t r = 0; r < n; r++)
						ref[r] = vec_distance_arith(m, ariths[ai],
						                            rows + r * dim, q, dim,
						                            &ref_null[r]);
					for (size_t ii = 0; ii < 4; ii++) {
						enum vec_isa isa = isas[ii];
						if (isa == VEC_ISA_SCALAR ||
						    (only != VEC_ISA_AUTO && isa != only) ||
						    vec_scan_force(isa) != 0)
							continue;
						runs++;
						if (vec_scan_table_arith(t, m, ariths[ai], q, dim,
						                         got, got_null) != 0)
							return 2;
						for (size_t r = 0; r < n; r++, compared++)
							if (!same(got[r], got_null[r], ref[r],
							          ref_null[r]) &&
							    bad++ < 5)
								printf("MISMATCH dim %zu metric %d "
								       "%s isa "
								       "%s row %zu: %a vs %a\n",
								       dim, (int)m,
								       vec_arith_name(ariths[ai]),
								       vec_isa_name(isa), r, got[r],
								       ref[r]);
						/* The same scan against the other arithmetic's
						 * reference: must disagree. */
						if (ariths[ai] == VEC_ARITH_SEPARATE &&
						    m != VEC_L1) {
							for (size_t r = 0; r < n; r++) {
								bool fn;
								double f = vec_distance_arith(
								        m, VEC_ARITH_FUSED,
								        rows + r * dim, q, dim,
								        &fn);
								caught += !same(got[r], got_null[r],
								                f, fn);
								cross++;
							}
						}
					}
					if (vec_scan_force(VEC_ISA_AUTO) != 0)
						return 2;
				}
				if (m == VEC_L1)
					continue;
				for (size_t r = 0; r < n; r++) {
					bool sn, fn;
					double s = vec_distance_arith(m, VEC_ARITH_SEPARATE,
					                              rows + r * dim, q, dim, &sn);
					double f = vec_distance_arith(m, VEC_ARITH_FUSED,
					                              rows + r * dim, q, dim, &fn);
					differ += !same(s, sn, f, fn);
					multiplied++;
				}
			}
			vec_table_free(t);
			free(rows);
			free(q);
			free(got);
			free(ref);
			free(got_null);
			free(ref_null);
		}
	}
	printf("kernels of %s: compared %zu distances, %zu mismatches; fused != separate in %zu "
	       "of %zu; a separate scan taken for fused caught in %zu of %zu\n",
	       only == VEC_ISA_AUTO ? "every ISA" : vec_isa_name(only), compared, bad, differ,
	       multiplied, caught, cross);
	if (runs == 0) {
		printf("no SIMD kernel ran\n");
		return 1;
	}
	return bad == 0 && differ * 5 >= multiplied && caught * 5 >= cross ? 0 : 1;
}
