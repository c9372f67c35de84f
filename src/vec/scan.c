/* Run-time choice of the distance kernels, the scalar kernels every CPU can
 * run (both arithmetics), and the per-row finish that turns float32 sums
 * into TiDB's doubles exactly as vec_dist.c does (built with
 * -ffp-contract=off). */
#include "vec/scan.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vec/scan_kernels.h"

#define W VEC_BLOCK_W

/* Lane by lane, element by element: STEP(s, x, q) is one lane's step with
 * row element x and query element q. The compiler may run the 16 lanes of
 * the inner loop in SSE registers, which keeps each lane's order. */
#define KERNEL_SCALAR(name, STEP)                                                                  \
	static void name(const float *blocks, size_t n, size_t dim, const float *q, float *acc)    \
	{                                                                                          \
		for (size_t b = 0; b < n; b++) {                                                   \
			const float *p = blocks + b * dim * W;                                     \
			float s[W] = {0};                                                          \
			for (size_t j = 0; j < dim; j++) {                                         \
				float qj = q[j];                                                   \
				for (size_t l = 0; l < W; l++)                                     \
					s[l] = STEP(s[l], p[j * W + l], qj);                       \
			}                                                                          \
			memcpy(acc + b * W, s, sizeof(s));                                         \
		}                                                                                  \
	}

static inline float dot_step(float s, float x, float q)
{
	return s + x * q;
}
static inline float l2sq_step(float s, float x, float q)
{
	return s + (x - q) * (x - q);
}
static inline float l1_step(float s, float x, float q)
{
	return s + fabsf(x - q);
}
/* The fused pair: one fmaf per step. x86-64 code built without -mfma calls
 * libm's fmaf for it (glibc picks its FMA instruction at load time on a CPU
 * that has one, a correctly rounded software path otherwise): exact either
 * way, and only run when no fused SIMD kernel can (vec_isa_for_arith) or
 * when forced. */
static inline float dot_fused_step(float s, float x, float q)
{
	return fmaf(x, q, s);
}
static inline float l2sq_fused_step(float s, float x, float q)
{
	return fmaf(x - q, x - q, s);
}

KERNEL_SCALAR(dot_scalar, dot_step)
KERNEL_SCALAR(l2sq_scalar, l2sq_step)
KERNEL_SCALAR(l1_scalar, l1_step)
KERNEL_SCALAR(dot_fused_scalar, dot_fused_step)
KERNEL_SCALAR(l2sq_fused_scalar, l2sq_fused_step)

static void cos_finish_scalar(const float *dot, const float *norms, float qnorm, size_t n,
                              double *dist, bool *is_null)
{
	for (size_t i = 0; i < n; i++) {
		double sim = (double)dot[i] / sqrt((double)norms[i] * (double)qnorm);
		if (isnan(sim)) {
			dist[i] = sim; /* a zero vector on either side: NULL */
			is_null[i] = true;
			continue;
		}
		if (sim > 1.0)
			sim = 1.0;
		else if (sim < -1.0)
			sim = -1.0;
		dist[i] = 1.0 - sim;
		is_null[i] = false;
	}
}

const struct vec__kernels vec__kernels_scalar = {
        .dot = dot_scalar,
        .l2sq = l2sq_scalar,
        .l1 = l1_scalar,
        .dot_fused = dot_fused_scalar,
        .l2sq_fused = l2sq_fused_scalar,
        .cos_finish = cos_finish_scalar,
};

/* 0 (VEC_ISA_AUTO) or the forced ISA; atomic so that a test forcing an ISA
 * never races a scan in another thread into undefined behaviour. */
static _Atomic int forced_isa;

const char *vec_isa_name(enum vec_isa isa)
{
	switch (isa) {
	case VEC_ISA_AUTO:
		return "auto";
	case VEC_ISA_SCALAR:
		return "scalar";
	case VEC_ISA_AVX2:
		return "avx2";
	case VEC_ISA_AVX512:
		return "avx512";
	case VEC_ISA_NEON:
		return "neon";
	}
	return "?";
}

bool vec_isa_supported(enum vec_isa isa)
{
	switch (isa) {
	case VEC_ISA_AUTO:
	case VEC_ISA_SCALAR:
		return true;
#ifdef VEC__HAVE_X86
	case VEC_ISA_AVX2:
		/* libgcc's constructor has filled the CPU model: no
		 * __builtin_cpu_init(), whose writes would race between threads. */
		return __builtin_cpu_supports("avx2");
	case VEC_ISA_AVX512:
		return __builtin_cpu_supports("avx512f");
#endif
#ifdef VEC__HAVE_NEON
	case VEC_ISA_NEON:
		return true; /* Advanced SIMD is part of AArch64 */
#endif
	default:
		return false;
	}
}

int vec_scan_force(enum vec_isa isa)
{
	if (!vec_isa_supported(isa))
		return -ENOTSUP;
	atomic_store(&forced_isa, (int)isa);
	return 0;
}

enum vec_isa vec_scan_isa(void)
{
	int f = atomic_load_explicit(&forced_isa, memory_order_relaxed);
	if (f != VEC_ISA_AUTO)
		return (enum vec_isa)f;
	if (vec_isa_supported(VEC_ISA_AVX512))
		return VEC_ISA_AVX512;
	if (vec_isa_supported(VEC_ISA_AVX2))
		return VEC_ISA_AVX2;
	if (vec_isa_supported(VEC_ISA_NEON))
		return VEC_ISA_NEON;
	return VEC_ISA_SCALAR;
}

enum vec_isa vec_isa_for_arith(enum vec_isa isa, enum vec_arith arith)
{
	if (isa == VEC_ISA_AUTO)
		isa = vec_scan_isa();
#ifdef VEC__HAVE_X86
	/* AVX2 does not imply FMA (AVX-512F does): without it the fused
	 * kernels would fault, so fused scans run the scalar ones. */
	if (isa == VEC_ISA_AVX2 && arith != VEC_ARITH_SEPARATE && !__builtin_cpu_supports("fma"))
		return VEC_ISA_SCALAR;
#endif
	return isa;
}

static const struct vec__kernels *kernels(enum vec_isa isa)
{
	switch (isa) {
#ifdef VEC__HAVE_X86
	case VEC_ISA_AVX2:
		return &vec__kernels_avx2;
	case VEC_ISA_AVX512:
		return &vec__kernels_avx512;
#endif
#ifdef VEC__HAVE_NEON
	case VEC_ISA_NEON:
		return &vec__kernels_neon;
#endif
	default:
		return &vec__kernels_scalar;
	}
}

int vec_scan_prepare_arith(struct vec_scan_query *sq, enum vec_metric m, enum vec_arith arith,
                           const float *q, size_t dim)
{
	int how = vec_arith_of_metric(arith, m);
	if (how < 0)
		return -EINVAL;
	/* L1 has no multiply: its one kernel runs wherever the ISA does. */
	bool fused = how == VEC_ARITH_FUSED && m != VEC_L1;
	sq->isa = vec_isa_for_arith(vec_scan_isa(), fused ? VEC_ARITH_FUSED : VEC_ARITH_SEPARATE);
	const struct vec__kernels *k = kernels(sq->isa);
	sq->metric = m;
	sq->arith = arith;
	sq->q = q;
	sq->dim = dim;
	sq->qnorm = 0;
	sq->cos_finish = k->cos_finish ? k->cos_finish : cos_finish_scalar;
	switch (m) {
	case VEC_COSINE:
		/* The same float32 loop as vec_dist.c's nb. */
		sq->qnorm = vec_norm_sq_f32(q, dim, arith);
		sq->kernel = fused ? k->dot_fused : k->dot;
		return 0;
	case VEC_NEG_IP:
		sq->kernel = fused ? k->dot_fused : k->dot;
		return 0;
	case VEC_L2:
		sq->kernel = fused ? k->l2sq_fused : k->l2sq;
		return 0;
	case VEC_L1:
		sq->kernel = k->l1;
		return 0;
	}
	return -EINVAL;
}

int vec_scan_prepare(struct vec_scan_query *sq, enum vec_metric m, const float *q, size_t dim)
{
	return vec_scan_prepare_arith(sq, m, VEC_ARITH_SEPARATE, q, dim);
}

void vec_scan_sums(const struct vec_scan_query *sq, const float *blocks, size_t n, float *acc)
{
	sq->kernel(blocks, n, sq->dim, sq->q, acc);
}

void vec_scan_finish(const struct vec_scan_query *sq, const float *acc, const float *norms,
                     size_t n, double *dist, bool *is_null)
{
	switch (sq->metric) {
	case VEC_COSINE:
		sq->cos_finish(acc, norms, sq->qnorm, n, dist, is_null);
		return;
	case VEC_L2:
		for (size_t i = 0; i < n; i++) {
			dist[i] = sqrt((double)acc[i]);
			is_null[i] = isnan(dist[i]);
		}
		return;
	case VEC_L1:
		for (size_t i = 0; i < n; i++) {
			dist[i] = (double)acc[i];
			is_null[i] = isnan(dist[i]);
		}
		return;
	case VEC_NEG_IP:
		for (size_t i = 0; i < n; i++) {
			dist[i] = (double)acc[i] * -1.0; /* 0 becomes -0, as in TiDB */
			is_null[i] = isnan(dist[i]);
		}
		return;
	}
}

/* Blocks per kernel call: sums and distances stay in L1. */
#define BATCH 16

int vec_scan_table(const struct vec_table *t, enum vec_metric m, const float *q, size_t dim,
                   double *dist, bool *is_null)
{
	return vec_scan_table_arith(t, m, VEC_ARITH_SEPARATE, q, dim, dist, is_null);
}

int vec_scan_table_arith(const struct vec_table *t, enum vec_metric m, enum vec_arith arith,
                         const float *q, size_t dim, double *dist, bool *is_null)
{
	struct vec_scan_query sq;
	if (t->n_mixed)
		return -EDOM;
	if (t->n_slots && dim != t->dim)
		return -EINVAL;
	int rc = vec_scan_prepare_arith(&sq, m, arith, q, dim);
	if (rc)
		return rc;
	for (size_t i = 0; i < t->n_null; i++) {
		dist[t->null_rows[i]] = NAN;
		is_null[t->null_rows[i]] = true;
	}
	const float *norms = vec_table_norms(t, arith);
	float acc[BATCH * W];
	double d[BATCH * W];
	bool nul[BATCH * W];
	for (size_t b = 0; b < t->n_blocks;) {
		size_t run;
		const float *blk = vec_table_block(t, b, &run);
		if (run > BATCH)
			run = BATCH;
		vec_scan_sums(&sq, blk, run, acc);
		size_t s0 = b * W, n = run * W;
		if (s0 + n > t->n_slots)
			n = t->n_slots - s0;
		vec_scan_finish(&sq, acc, norms ? norms + s0 : NULL, n, d, nul);
		for (size_t i = 0; i < n; i++) {
			size_t r = vec_table_slot_row(t, s0 + i);
			dist[r] = d[i];
			is_null[r] = nul[i];
		}
		b += run;
	}
	return 0;
}
