/* NEON distance kernels (AArch64): a block is four 4-lane quarters, each lane
 * one row summed in element order with vmulq_f32 then vaddq_f32. Never
 * vfmaq_f32 / vmlaq_f32: TiDB on amd64 does not fuse (docs/tidb.md §3), and
 * -ffp-contract=off keeps the compiler from fusing the pair. */
#include "vec/scan_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define W VEC_BLOCK_W

#define DOTQ(a, qj)  vmulq_f32(a, qj)
#define L1Q(a, qj)   vabsq_f32(vsubq_f32(a, qj))
#define L2SQQ(a, qj) sqq(vsubq_f32(a, qj))

static inline float32x4_t sqq(float32x4_t d)
{
	return vmulq_f32(d, d);
}

#define KERNELQ(name, TERM)                                                                        \
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
				s0 = vaddq_f32(s0, TERM(vld1q_f32(r), qj));                        \
				s1 = vaddq_f32(s1, TERM(vld1q_f32(r + 4), qj));                    \
				s2 = vaddq_f32(s2, TERM(vld1q_f32(r + 8), qj));                    \
				s3 = vaddq_f32(s3, TERM(vld1q_f32(r + 12), qj));                   \
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

const struct vec__kernels vec__kernels_neon = {dot_neon, l2sq_neon, l1_neon, NULL};

#endif
