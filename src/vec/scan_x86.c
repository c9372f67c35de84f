/* AVX2 and AVX-512 distance kernels. Each lane of a register is one row of a
 * block, so lane l sums row l's terms in element order. The separate kernels
 * multiply, then add, as two instructions (_mm*_mul_ps, _mm*_add_ps; the
 * build's -ffp-contract=off keeps the compiler from fusing them); the fused
 * ones make each step one _mm*_fmadd_ps (acc + x*y rounded once, as fmaf).
 * The target attributes enable the instructions for these functions only. */
#include "vec/scan_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#define W VEC_BLOCK_W

/* One block at a time: the scan then reads one sequential stream, which
 * measured faster here than interleaving 2 or 4 blocks (several streams);
 * the lane's add chain (768 adds of 3-4 cycles for 48 KiB) is far from
 * the limit. */
#define T512 __attribute__((target("avx512f")))

/* One step per element j: s the 16 lanes' sums, a the rows' element j, qj
 * the query's element broadcast; gives the new sums. */
#define DOT512(s, a, qj)        _mm512_add_ps(s, _mm512_mul_ps(a, qj))
#define L2SQ512(s, a, qj)       sq_add512(s, _mm512_sub_ps(a, qj))
#define L1512(s, a, qj)         _mm512_add_ps(s, _mm512_abs_ps(_mm512_sub_ps(a, qj)))
#define DOT_FUSED512(s, a, qj)  _mm512_fmadd_ps(a, qj, s)
#define L2SQ_FUSED512(s, a, qj) sq_fma512(s, _mm512_sub_ps(a, qj))

T512 static inline __m512 sq_add512(__m512 s, __m512 d)
{
	return _mm512_add_ps(s, _mm512_mul_ps(d, d));
}

T512 static inline __m512 sq_fma512(__m512 s, __m512 d)
{
	return _mm512_fmadd_ps(d, d, s);
}

#define KERNEL512(name, STEP)                                                                      \
	T512 static void name(const float *blocks, size_t n, size_t dim, const float *q,           \
	                      float *acc)                                                          \
	{                                                                                          \
		for (size_t b = 0; b < n; b++) {                                                   \
			const float *p = blocks + b * dim * W;                                     \
			__m512 s = _mm512_setzero_ps();                                            \
			for (size_t j = 0; j < dim; j++)                                           \
				s = STEP(s, _mm512_load_ps(p + j * W), _mm512_set1_ps(q[j]));      \
			_mm512_storeu_ps(acc + b * W, s);                                          \
		}                                                                                  \
	}

KERNEL512(dot_avx512, DOT512)
KERNEL512(l2sq_avx512, L2SQ512)
KERNEL512(l1_avx512, L1512)
KERNEL512(dot_fused_avx512, DOT_FUSED512)
KERNEL512(l2sq_fused_avx512, L2SQ_FUSED512)

/* Cosine's finish, 8 rows at a time in double: conversion from float, the
 * product, sqrt and division are each exactly rounded as the scalar ones
 * are, and min/max clamp as the scalar comparisons do for any non-NaN sim.
 * A NaN lane keeps the NaN the division produced, as the scalar code does. */
T512 static void cos_finish_avx512(const float *dot, const float *norms, float qnorm, size_t n,
                                   double *dist, bool *is_null)
{
	const __m512d qn = _mm512_set1_pd((double)qnorm);
	const __m512d one = _mm512_set1_pd(1.0), minus_one = _mm512_set1_pd(-1.0);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m512d d = _mm512_cvtps_pd(_mm256_loadu_ps(dot + i));
		__m512d nr = _mm512_cvtps_pd(_mm256_loadu_ps(norms + i));
		__m512d sim = _mm512_div_pd(d, _mm512_sqrt_pd(_mm512_mul_pd(nr, qn)));
		__mmask8 nan = _mm512_cmp_pd_mask(sim, sim, _CMP_UNORD_Q);
		__m512d c = _mm512_min_pd(_mm512_max_pd(sim, minus_one), one);
		_mm512_storeu_pd(dist + i, _mm512_mask_mov_pd(_mm512_sub_pd(one, c), nan, sim));
		for (size_t l = 0; l < 8; l++)
			is_null[i + l] = nan >> l & 1;
	}
	for (; i < n; i++) {
		double sim = (double)dot[i] / sqrt((double)norms[i] * (double)qnorm);
		if (isnan(sim)) {
			dist[i] = sim;
			is_null[i] = true;
			continue;
		}
		dist[i] = 1.0 - (sim > 1.0 ? 1.0 : sim < -1.0 ? -1.0 : sim);
		is_null[i] = false;
	}
}

const struct vec__kernels vec__kernels_avx512 = {
        .dot = dot_avx512,
        .l2sq = l2sq_avx512,
        .l1 = l1_avx512,
        .dot_fused = dot_fused_avx512,
        .l2sq_fused = l2sq_fused_avx512,
        .cos_finish = cos_finish_avx512,
};

/* AVX2: a block is two 8-lane halves, lanes 0-7 at j * W, lanes 8-15 at
 * j * W + 8, summed in two registers. The fused kernels also need FMA,
 * which AVX2 does not imply: scan.c picks them only on a CPU that has it
 * (vec_isa_for_arith). */
#define T256  __attribute__((target("avx2")))
#define T256F __attribute__((target("avx2,fma")))

#define DOT256(s, a, qj)        _mm256_add_ps(s, _mm256_mul_ps(a, qj))
#define L2SQ256(s, a, qj)       sq_add256(s, _mm256_sub_ps(a, qj))
#define L1256(s, a, qj)         _mm256_add_ps(s, _mm256_and_ps(_mm256_sub_ps(a, qj), abs_mask))
#define DOT_FUSED256(s, a, qj)  _mm256_fmadd_ps(a, qj, s)
#define L2SQ_FUSED256(s, a, qj) sq_fma256(s, _mm256_sub_ps(a, qj))

T256 static inline __m256 sq_add256(__m256 s, __m256 d)
{
	return _mm256_add_ps(s, _mm256_mul_ps(d, d));
}

T256F static inline __m256 sq_fma256(__m256 s, __m256 d)
{
	return _mm256_fmadd_ps(d, d, s);
}

#define KERNEL256(name, TARGET, STEP)                                                              \
	TARGET static void name(const float *blocks, size_t n, size_t dim, const float *q,         \
	                        float *acc)                                                        \
	{                                                                                          \
		const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));        \
		(void)abs_mask;                                                                    \
		for (size_t b = 0; b < n; b++) {                                                   \
			const float *p = blocks + b * dim * W;                                     \
			__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                 \
			for (size_t j = 0; j < dim; j++) {                                         \
				__m256 qj = _mm256_set1_ps(q[j]);                                  \
				s0 = STEP(s0, _mm256_load_ps(p + j * W), qj);                      \
				s1 = STEP(s1, _mm256_load_ps(p + j * W + 8), qj);                  \
			}                                                                          \
			_mm256_storeu_ps(acc + b * W, s0);                                         \
			_mm256_storeu_ps(acc + b * W + 8, s1);                                     \
		}                                                                                  \
	}

KERNEL256(dot_avx2, T256, DOT256)
KERNEL256(l2sq_avx2, T256, L2SQ256)
KERNEL256(l1_avx2, T256, L1256)
KERNEL256(dot_fused_avx2, T256F, DOT_FUSED256)
KERNEL256(l2sq_fused_avx2, T256F, L2SQ_FUSED256)

const struct vec__kernels vec__kernels_avx2 = {
        .dot = dot_avx2,
        .l2sq = l2sq_avx2,
        .l1 = l1_avx2,
        .dot_fused = dot_fused_avx2,
        .l2sq_fused = l2sq_fused_avx2,
        .cos_finish = NULL,
};

#endif
