/* What the vector tests and checks share: every metric, arithmetic and ISA
 * to loop over, and a finished vec_table from reference rows. */
#ifndef VECGATE_TEST_VEC_H
#define VECGATE_TEST_VEC_H

#include <stdbool.h>
#include <stddef.h>

#include "vec/block.h"
#include "vec/scan.h"
#include "vec/vec.h"

static const enum vec_metric metrics[] = {VEC_COSINE, VEC_L2, VEC_L1, VEC_NEG_IP};
static const enum vec_arith ariths[] = {VEC_ARITH_SEPARATE, VEC_ARITH_FUSED,
                                        VEC_ARITH_FUSED_EXCEPT_IP};
/* Every ISA; vec_scan_force() refuses those the CPU lacks. */
static const enum vec_isa isas[] = {VEC_ISA_SCALAR, VEC_ISA_AVX2, VEC_ISA_AVX512, VEC_ISA_NEON};
#define N_METRICS (sizeof(metrics) / sizeof(metrics[0]))
#define N_ARITHS  (sizeof(ariths) / sizeof(ariths[0]))
#define N_ISAS    (sizeof(isas) / sizeof(isas[0]))

/* A finished table of n rows of dim floats (rows row-major; is_null[r]
 * true: row r is NULL and its floats unused; is_null may be NULL), built
 * with vec_builder_init(declared). NULL when the builder fails. */
static inline struct vec_table *test_table_of(const float *rows, const bool *is_null, size_t n,
                                              size_t dim, size_t declared)
{
	struct vec_builder b;
	if (vec_builder_init(&b, declared) != 0)
		return NULL;
	for (size_t r = 0; r < n; r++) {
		int rc = is_null && is_null[r] ? vec_builder_add_null(&b)
		                               : vec_builder_add(&b, rows + r * dim, dim);
		if (rc != 0) {
			vec_builder_free(&b);
			return NULL;
		}
	}
	struct vec_table *t = vec_builder_finish(&b);
	vec_builder_free(&b);
	return t;
}

#ifdef CRITERION_H_
/* A suite's .fini: back to the CPU's own kernels after a test forced some. */
static inline void reset_isa(void)
{
	cr_assert_eq(vec_scan_force(VEC_ISA_AUTO), 0);
}
#endif

#endif
