/* NEON distance kernels (AArch64): a block is four 4-lane quarters, each lane
 * one row summed in element order. The separate kernels use vmulq_f32 then
 * vaddq_f32 (-ffp-contract=off keeps the compiler from fusing the pair);
 * the fused ones vfmaq_f32, which is one FMLA (acc + x*y rounded once, as
 * fmaf). Never vmlaq_f32: its multiply and add may be either, depending on
 * the compiler. */
#include "vec/scan_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define W VEC_BLOCK_W

/* One step per element j: s a quarter's sums, a its rows' element j, qj the
 * query's element broadcast; gives the new sums. */
#define DOTQ(s, a, qj)        vaddq_f32(s, vmulq_f32(a, qj))
#define L1Q(s, a, qj)         vaddq_f32(s, vabsq_f32(vsubq_f32(a, qj)))
#define L2SQQ(s, a, qj)       sq_addq(s, vsubq_f32(a, qj))
#define DOT_FUSEDQ(s, a, qj)  vfmaq_f32(s, a, qj)
#define L2SQ_FUSEDQ(s, a, qj) sq_fmaq(s, vsubq_f32(a, qj))

static inline float32x4_t sq_addq(float32x4_t s, float32x4_t d)
{
	return vaddq_f32(s, vmulq_f32(d, d));
}

static inline float32x4_t sq_fmaq(float32x4_t s, float32x4_t d)
{
	return vfmaq_f32(s, d, d);
}

#define KERNELQ(name, STEP)                                                                        \
	static void name(const float *blocks, size_t n, size_t dim, const float *q, float *acc)    \
	{                                                                                          \
		const size_t stride = dim * W;                                                     \
		for (size_t b = 0; b < n; b++) {                                                   \
			const float *p = blocks + b * stride;                                      \
			float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);                      \
			float32x4_t s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);                      \
			for (size_t j = 0; j < dim; j++) {                                         \
				float32x4_t qj = vdupq_n_f32(q[j]);                                \
				const float *r = p + j * W;                                        \
				s0 = STEP(s0, vld1q_f32(r), qj);                                   \
				s1 = STEP(s1, vld1q_f32(r + 4), qj);                               \
				s2 = STEP(s2, vld1q_f32(r + 8), qj);                               \
				s3 = STEP(s3, vld1q_f32(r + 12), qj);                              \
			}                                                                          \
			vst1q_f32(acc + b * W, s0);                                                \
			vst1q_f32(acc + b * W + 4, s1);                                            \
			vst1q_f32(acc + b * W + 8, s2);                                            \
			vst1q_f32(acc + b * W + 12, s3);                                           \
		}                                                                                  \
	}

KERNELQ(dot_neon, DOTQ)
KERNELQ(l2sq_neon, L2SQQ)
KERNELQ(l1_neon, L1Q)
KERNELQ(dot_fused_neon, DOT_FUSEDQ)
KERNELQ(l2sq_fused_neon, L2SQ_FUSEDQ)

const struct vec__kernels vec__kernels_neon = {
        .dot = dot_neon,
        .l2sq = l2sq_neon,
        .l1 = l1_neon,
        .dot_fused = dot_fused_neon,
        .l2sq_fused = l2sq_fused_neon,
        .cos_finish = NULL,
};

#endif
