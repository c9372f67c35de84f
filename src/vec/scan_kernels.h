/* Internal to src/vec: the per-ISA kernel sets that scan.c dispatches to.
 * Each kernel keeps one float32 accumulator per lane (per row) and adds the
 * terms in element order: the separate kernels multiply then add (never an
 * FMA instruction), the fused ones do each acc + x*y as one FMA (never a
 * multiply then an add). */
#ifndef VECGATE_VEC_SCAN_KERNELS_H
#define VECGATE_VEC_SCAN_KERNELS_H

#include "vec/scan.h"

struct vec__kernels {
	vec_kernel_fn *dot;            /* sum of a*q: cosine, negative inner product */
	vec_kernel_fn *l2sq;           /* sum of (a-q)*(a-q) */
	vec_kernel_fn *l1;             /* sum of |a-q| (both arithmetics) */
	vec_kernel_fn *dot_fused;      /* dot in VEC_ARITH_FUSED */
	vec_kernel_fn *l2sq_fused;     /* l2sq in VEC_ARITH_FUSED */
	vec_cos_finish_fn *cos_finish; /* NULL: scan.c's scalar loop */
};

extern const struct vec__kernels vec__kernels_scalar;
#if defined(__x86_64__) || defined(__i386__)
#define VEC__HAVE_X86 1
extern const struct vec__kernels vec__kernels_avx2;
extern const struct vec__kernels vec__kernels_avx512;
#endif
#if defined(__aarch64__)
#define VEC__HAVE_NEON 1
extern const struct vec__kernels vec__kernels_neon;
#endif

#endif
