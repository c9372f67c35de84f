/* Exact distance kernels over a vec_table's blocks, chosen at run time
 * (AVX-512, AVX2, NEON, scalar), in either arithmetic of enum vec_arith.
 * Every lane sums its own row in TiDB's order, so each distance is
 * bit-identical to vec_distance_arith(). */
#ifndef VECGATE_VEC_SCAN_H
#define VECGATE_VEC_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "vec/block.h"
#include "vec/vec.h"

enum vec_isa {
	VEC_ISA_AUTO = 0, /* the best the CPU has (vec_scan_force's reset) */
	VEC_ISA_SCALAR,
	VEC_ISA_AVX2,
	VEC_ISA_AVX512, /* AVX-512F */
	VEC_ISA_NEON,
};

/* "auto", "scalar", "avx2", "avx512", "neon". */
const char *vec_isa_name(enum vec_isa isa);
/* Whether this build and this CPU can run isa's kernels. */
bool vec_isa_supported(enum vec_isa isa);
/* The ISA whose kernels a scan in arithmetic arith uses when isa is chosen
 * (isa itself, except VEC_ISA_AVX2 on a CPU without FMA, whose fused scans
 * use the scalar kernels; VEC_ISA_AUTO resolves to vec_scan_isa()'s). */
enum vec_isa vec_isa_for_arith(enum vec_isa isa, enum vec_arith arith);
/* Makes every later scan use isa (VEC_ISA_AUTO: the best available again).
 * For tests and benchmarks; call it while no scan runs. 0, or -ENOTSUP
 * when the CPU or the build lacks isa (nothing changes then). */
int vec_scan_force(enum vec_isa isa) MUST_CHECK;
/* The ISA scans use now (never VEC_ISA_AUTO). */
enum vec_isa vec_scan_isa(void);

/* Float32 accumulators of every lane of n contiguous blocks, block[b]
 * starting at blocks + b * dim * VEC_BLOCK_W: acc[b * W + lane]. */
typedef void vec_kernel_fn(const float *blocks, size_t n, size_t dim, const float *q, float *acc);

/* Cosine's finish for n rows, exactly as vec_dist.c ends (see
 * vec_scan_finish); an ISA may do it in double-precision SIMD, whose
 * division and square root round exactly as the scalar ones. */
typedef void vec_cos_finish_fn(const float *dot, const float *norms, float qnorm, size_t n,
                               double *dist, bool *is_null);

/* A query bound to a metric, an arithmetic and a kernel, prepared once per
 * scan. */
struct vec_scan_query {
	enum vec_metric metric;
	enum vec_arith arith;
	enum vec_isa isa; /* whose kernel runs (vec_isa_for_arith) */
	const float *q;
	size_t dim;
	float qnorm; /* cosine: q's float32 squared norm, as vec_dist.c sums it */
	vec_kernel_fn *kernel;
	vec_cos_finish_fn *cos_finish;
};

/* q[0..dim) must outlive sq. 0, or -EINVAL for an unknown metric or
 * arithmetic. */
int vec_scan_prepare_arith(struct vec_scan_query *sq, enum vec_metric m, enum vec_arith arith,
                           const float *q, size_t dim) MUST_CHECK;
/* vec_scan_prepare_arith in VEC_ARITH_SEPARATE. */
int vec_scan_prepare(struct vec_scan_query *sq, enum vec_metric m, const float *q,
                     size_t dim) MUST_CHECK;
/* Kernel sums for n contiguous blocks (see vec_table_block's run) into
 * acc[n * VEC_BLOCK_W]. blocks must hold sq->dim-dimensional rows. */
void vec_scan_sums(const struct vec_scan_query *sq, const float *blocks, size_t n, float *acc);
/* Turns kernel sums into TiDB's distances, as vec_distance() ends: norms
 * are the rows' squared norms in sq's arithmetic (vec_table_norms; cosine
 * only, may be NULL otherwise). A NaN
 * result is NULL: is_null[i] set (dist[i] is then NaN). */
void vec_scan_finish(const struct vec_scan_query *sq, const float *acc, const float *norms,
                     size_t n, double *dist, bool *is_null);
/* Every row's distance to q, indexed by row: NULL rows get is_null. 0;
 * -EDOM when the table has rows of another dimension (TiDB fails such a
 * query); -EINVAL when a row exists and dim is not the table's, or for an
 * unknown metric. dist and is_null have room for vec_table_rows(t). */
int vec_scan_table(const struct vec_table *t, enum vec_metric m, const float *q, size_t dim,
                   double *dist, bool *is_null) MUST_CHECK;
/* vec_scan_table in a chosen arithmetic (-EINVAL for an unknown one). */
int vec_scan_table_arith(const struct vec_table *t, enum vec_metric m, enum vec_arith arith,
                         const float *q, size_t dim, double *dist, bool *is_null) MUST_CHECK;

#endif
