/* The screened exact kNN (screen.h): an int8 pass bounds every row's TiDB
 * distance, a threshold T from the bounds prunes the rows that cannot be
 * answers, and the blocks holding the others go through the exact kernels
 * of scan.h in the query's arithmetic. Built with -ffp-contract=off like
 * the rest of src/vec: every float and double operation below is the one
 * written, rounded once, which the error analysis relies on.
 *
 * Notation: a is a row (float32 values, taken as exact reals), q the query,
 * n the dimension, c the row's int8 codes, s its float32 scale, a' = s*c
 * (exact reals), u = 2^-24 (float32's unit roundoff), gamma_k =
 * k*u / (1 - k*u). A float32 operation returns the exact result times
 * (1 + delta), |delta| <= u, plus, for a product or a fused multiply-add
 * whose result is below the normal range, an absolute eta, |eta| <= 2^-150
 * (a sum or difference of floats is exact when it is subnormal). Summing n
 * rounded terms in any order, each term passes through at most n roundings
 * (its own product, at most n - 1 additions on its way up the tree), so
 * |fl(sum) - sum| <= gamma_n * sum |terms| + UF, UF = n * 2^-149, with
 * gamma_{n+2} when each term is (x - y)^2 of a rounded difference (two
 * more roundings). No sum can overflow: rows and queries in doubt (max|x|
 * above 1e15) are never bounded, so every |term| <= (2e15)^2 and n <=
 * 16383 keeps every partial sum below 1e35 < FLT_MAX. */
#include "vec/screen.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vec/knn.h"
#include "vec/scan.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCREEN_X86 1
#endif

#define W VEC_BLOCK_W
/* Blocks per int8 kernel call (256 rows' estimates stay in L1), and per
 * exact kernel call, as knn.c. */
#define SCREEN_BATCH 16
#define EXACT_BATCH  16
/* Rows and queries beyond these magnitudes are in doubt (see above: no
 * float32 overflow; and a row's float32 squared norm, >= (1e-15)^2, is a
 * positive normal number, so cosine is never NULL for a bounded row). */
#define MAG_MAX 1e15
#define MAG_MIN 1e-15
/* Relative slack of the double-precision steps at build and query time:
 * a double sum of at most 16386 terms is off by at most gamma_16386 in
 * double precision, 1.9e-12 relative to the sum of the |terms|. */
#define BUILD_REL 1e-11
/* The final widening of every bound (each double operation rounds by at
 * most 1.2e-16 relative to its result), and an absolute floor. */
#define WIDEN_REL 1e-12
#define WIDEN_ABS 1e-300
/* widen_down(1.0): cosine's lower bound when the dot is at most 0. */
#define ONE_DOWN (1.0 - 1e-12 - 1e-300)

struct vec_screen {
	const struct vec_table *t;
	size_t dim, n_slots, n_blocks;
	int8_t *codes; /* n_blocks * dim * W, block b at b * dim * W */
	/* Per slot. Every float is rounded up from its double value. */
	float *scale;  /* s; 0 for a row in doubt */
	float *err2;   /* >= ||a - a'||_2 */
	float *err1;   /* >= ||a - a'||_1 */
	float *norm;   /* >= ||a||_2 */
	float *norm_q; /* >= ||a'||_2 */
	uint32_t *k2;  /* sum of c_i^2, exact: ||a'||_2^2 = s^2 * k2 */
	int32_t *csum; /* sum of c_i, exact (the integer kernels' bias) */
	uint8_t *doubt;
	size_t n_doubt;
	size_t bytes;
	/* vec_screen_weaken_bounds (tests only). */
	double err_scale;
	bool drop_gamma;
};

/* The smallest float >= x (x finite). */
static float f_up(double x)
{
	float f = (float)x;
	if ((double)f < x)
		f = nextafterf(f, INFINITY);
	return f;
}

/* The largest float <= x (x finite). */
static float f_down(double x)
{
	float f = (float)x;
	if ((double)f > x)
		f = nextafterf(f, -INFINITY);
	return f;
}

static double widen_down(double x)
{
	return x - fabs(x) * WIDEN_REL - WIDEN_ABS;
}

static double widen_up(double x)
{
	return x + fabs(x) * WIDEN_REL + WIDEN_ABS;
}

/* A row's per-slot terms from its sums (quantize_row, quantize_block). */
static void finish_row(struct vec_screen *s, size_t slot, float sc, double e2, double e1, double na,
                       uint32_t k2, int32_t csum)
{
	s->scale[slot] = sc;
	s->err2[slot] = f_up(sqrt(e2) * (1 + BUILD_REL));
	s->err1[slot] = f_up(e1 * (1 + BUILD_REL));
	s->norm[slot] = f_up(sqrt(na) * (1 + BUILD_REL));
	s->norm_q[slot] = f_up((double)sc * sqrt((double)k2) * (1 + BUILD_REL));
	s->k2[slot] = k2;
	s->csum[slot] = csum;
}

/* Codes of slot (block f's lane l) into block c; its per-slot terms. */
static void quantize_row(struct vec_screen *s, const float *f, int8_t *c, size_t l, size_t slot)
{
	size_t dim = s->dim;
	double mx = 0;
	bool finite = true;
	for (size_t j = 0; j < dim; j++) {
		float a = f[j * W + l];
		finite &= isfinite(a) != 0;
		double x = fabs((double)a);
		mx = x > mx ? x : mx; /* a NaN is caught by finite */
	}
	if (!finite || !(mx <= MAG_MAX) || mx < MAG_MIN) {
		/* Codes stay 0 and scale 0: the kernels' estimate is
		 * harmless, and the query never reads its bounds. */
		s->doubt[slot] = 1;
		s->n_doubt++;
		return;
	}
	float sc = (float)(mx / 127.0); /* >= 7.8e-18: normal, nonzero */
	double inv = 1.0 / sc;
	double e2 = 0, e1 = 0, na = 0;
	uint32_t k2 = 0;
	int32_t csum = 0;
	for (size_t j = 0; j < dim; j++) {
		double a = f[j * W + l];
		double r = a * inv;                        /* within +-127 (1 + 1e-7) */
		int ri = (int)(r + (r >= 0 ? 0.5 : -0.5)); /* nearest, halves away from 0 */
		int8_t ci = (int8_t)(ri > 127 ? 127 : ri < -127 ? -127 : ri);
		c[j * W + l] = ci;
		/* s * c is exact in double (24 + 7 bits); the error terms
		 * hold whatever code was chosen, so nothing depends on how
		 * a / s was rounded. */
		double d = a - (double)sc * ci;
		e2 += d * d;
		e1 += fabs(d);
		na += a * a;
		k2 += (uint32_t)(ci * ci); /* <= 16383 * 127^2 < 2^32 */
		csum += ci;
	}
	finish_row(s, slot, sc, e2, e1, na, k2, csum);
}

/* 64-byte aligned, huge-page aligned and advised when large (the int8 pass
 * streams it like the float blocks). */
#define HUGE_ALIGN ((size_t)2 << 20)

/* What alloc_codes() allocates for bytes. */
static size_t codes_alloc_size(size_t bytes, size_t *align)
{
	*align = bytes >= HUGE_ALIGN ? HUGE_ALIGN : 64;
	return (bytes + *align - 1) / *align * *align;
}

static int8_t *alloc_codes(size_t bytes)
{
	size_t align, n = codes_alloc_size(bytes, &align);
	int8_t *p = aligned_alloc(align, n);
	if (!p)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (align == HUGE_ALIGN)
		(void)madvise(p, n, MADV_HUGEPAGE); /* advice only */
#endif
	return p;
}

#ifdef SCREEN_X86
#define TQB __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))

/* quantize_row for the first `lanes` rows of block f at once, eight lanes
 * in a vector of doubles: each lane's operations are quantize_row's, in
 * the same order and unfused, so every code and term is the same, bit for
 * bit (test_vec_screen checks it against the scalar build). */
TQB static void quantize_half(struct vec_screen *s, const float *f, int8_t *c, size_t slot0,
                              size_t half, size_t lanes)
{
	size_t dim = s->dim, l0 = half * 8;
	__mmask8 valid = (__mmask8)(lanes > l0 + 8 ? 0xff : (1u << (lanes - l0)) - 1);
	__m256 mxf = _mm256_setzero_ps();
	__mmask8 bad = 0;
	for (size_t j = 0; j < dim; j++) {
		__m256 a = _mm256_loadu_ps(f + j * W + l0);
		bad |= _mm256_fpclass_ps_mask(a, 0x99); /* NaN or +-Inf */
		mxf = _mm256_max_ps(mxf, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a));
	}
	__m512d mx = _mm512_cvtps_pd(mxf);
	bad |= _mm512_cmp_pd_mask(mx, _mm512_set1_pd(MAG_MAX), _CMP_NLE_UQ) |
	       _mm512_cmp_pd_mask(mx, _mm512_set1_pd(MAG_MIN), _CMP_LT_OQ);
	bad &= valid;
	__mmask8 ok = valid & (__mmask8)~bad;
	__m256 scf = _mm512_cvtpd_ps(_mm512_div_pd(mx, _mm512_set1_pd(127.0)));
	scf = _mm256_maskz_mov_ps(ok, scf);
	__m512d sc = _mm512_cvtps_pd(scf);
	/* 1 / 0 in the lanes that are not ok: never used */
	__m512d inv = _mm512_div_pd(_mm512_set1_pd(1.0), sc);
	__m512d e2 = _mm512_setzero_pd(), e1 = e2, na = e2;
	__m256i k2 = _mm256_setzero_si256(), cs = k2;
	const __m512d zero = _mm512_setzero_pd(), half_up = _mm512_set1_pd(0.5),
	              half_dn = _mm512_set1_pd(-0.5);
	const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
	for (size_t j = 0; j < dim; j++) {
		__m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(f + j * W + l0));
		__m512d r = _mm512_mul_pd(a, inv);
		__m512d h = _mm512_mask_mov_pd(half_dn, _mm512_cmp_pd_mask(r, zero, _CMP_GE_OQ),
		                               half_up);
		__m256i ri = _mm512_maskz_cvttpd_epi32(ok, _mm512_add_pd(r, h));
		ri = _mm256_min_epi32(_mm256_max_epi32(ri, nlim), lim);
		_mm_mask_storeu_epi8(c + j * W + l0, ok, _mm256_cvtepi32_epi8(ri));
		__m512d d = _mm512_sub_pd(a, _mm512_mul_pd(sc, _mm512_cvtepi32_pd(ri)));
		e2 = _mm512_add_pd(e2, _mm512_mul_pd(d, d));
		e1 = _mm512_add_pd(e1, _mm512_abs_pd(d));
		na = _mm512_add_pd(na, _mm512_mul_pd(a, a));
		k2 = _mm256_add_epi32(k2, _mm256_mullo_epi32(ri, ri));
		cs = _mm256_add_epi32(cs, ri);
	}
	double e2v[8], e1v[8], nav[8];
	float scv[8];
	uint32_t k2v[8];
	int32_t csv[8];
	_mm512_storeu_pd(e2v, e2);
	_mm512_storeu_pd(e1v, e1);
	_mm512_storeu_pd(nav, na);
	_mm256_storeu_ps(scv, scf);
	_mm256_storeu_si256((__m256i *)k2v, k2);
	_mm256_storeu_si256((__m256i *)csv, cs);
	for (size_t l = 0; l < 8; l++) {
		if (!(valid >> l & 1))
			continue;
		size_t slot = slot0 + l0 + l;
		if (bad >> l & 1) {
			s->doubt[slot] = 1;
			s->n_doubt++;
			continue;
		}
		finish_row(s, slot, scv[l], e2v[l], e1v[l], nav[l], k2v[l], csv[l]);
	}
}
#endif

/* One block's rows into the screen: vectors on AVX-512 (unless a test
 * turned them off), quantize_row otherwise. */
static _Atomic bool build_vectors_off;

void vec_screen_build_use_vectors(bool use)
{
	atomic_store_explicit(&build_vectors_off, !use, memory_order_relaxed);
}

static void quantize_block(struct vec_screen *s, const float *f, int8_t *c, size_t b, size_t lanes)
{
#ifdef SCREEN_X86
	if (!atomic_load_explicit(&build_vectors_off, memory_order_relaxed) &&
	    __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")) {
		quantize_half(s, f, c, b * W, 0, lanes);
		if (lanes > 8)
			quantize_half(s, f, c, b * W, 1, lanes);
		return;
	}
#endif
	for (size_t l = 0; l < lanes; l++)
		quantize_row(s, f, c, l, b * W + l);
}

/* Per-slot arrays cover the last block's spare lanes too (the L1 kernel
 * loads a whole block's scales), and never malloc(0). */
static size_t slot_arrays(const struct vec_table *t)
{
	size_t ns = t->n_blocks * W;
	return (ns > t->n_slots ? ns : t->n_slots) + 1;
}

/* scale, err2, err1, norm, norm_q, k2, csum, doubt */
#define SLOT_BYTES (5 * sizeof(float) + 2 * sizeof(uint32_t) + 1)

size_t vec_screen_build_bytes(const struct vec_table *t)
{
	size_t blk = t->dim * W, align,
	       bytes = sizeof(struct vec_screen) + slot_arrays(t) * SLOT_BYTES;
	if (blk && t->n_blocks)
		bytes += codes_alloc_size(t->n_blocks * blk, &align);
	return bytes;
}

struct vec_screen *vec_screen_build(const struct vec_table *t)
{
	struct vec_screen *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->t = t;
	s->dim = t->dim;
	s->n_slots = t->n_slots;
	s->n_blocks = t->n_blocks;
	s->err_scale = 1;
	size_t blk = s->dim * W, ns = slot_arrays(t);
	s->bytes = vec_screen_build_bytes(t); /* what the allocations below take */
	s->scale = calloc(ns, sizeof(float));
	s->err2 = calloc(ns, sizeof(float));
	s->err1 = calloc(ns, sizeof(float));
	s->norm = calloc(ns, sizeof(float));
	s->norm_q = calloc(ns, sizeof(float));
	s->k2 = calloc(ns, sizeof(uint32_t));
	s->csum = calloc(ns, sizeof(int32_t));
	s->doubt = calloc(ns, 1);
	if (!s->scale || !s->err2 || !s->err1 || !s->norm || !s->norm_q || !s->k2 || !s->csum ||
	    !s->doubt)
		goto fail;
	if (blk && s->n_blocks) {
		s->codes = alloc_codes(s->n_blocks * blk);
		if (!s->codes)
			goto fail;
	}
	for (size_t b = 0; b < s->n_blocks; b++) {
		size_t lanes = s->n_slots - b * W < W ? s->n_slots - b * W : W;
		if (blk == 0) { /* dimension 0: nothing to bound */
			for (size_t l = 0; l < lanes; l++)
				s->doubt[b * W + l] = 1;
			s->n_doubt += lanes;
			continue;
		}
		const float *f = vec_table_block(t, b, NULL);
		int8_t *c = s->codes + b * blk;
		memset(c, 0, blk); /* spare lanes of the last block */
		quantize_block(s, f, c, b, lanes);
	}
	return s;
fail:
	vec_screen_free(s);
	return NULL;
}

void vec_screen_free(struct vec_screen *s)
{
	if (!s)
		return;
	free(s->codes);
	free(s->scale);
	free(s->err2);
	free(s->err1);
	free(s->norm);
	free(s->norm_q);
	free(s->k2);
	free(s->csum);
	free(s->doubt);
	free(s);
}

size_t vec_screen_bytes(const struct vec_screen *s)
{
	return s ? s->bytes : 0;
}

bool vec_screen_same(const struct vec_screen *a, const struct vec_screen *b)
{
	if (a->dim != b->dim || a->n_slots != b->n_slots || a->n_blocks != b->n_blocks ||
	    a->n_doubt != b->n_doubt)
		return false;
	size_t ns = a->n_slots;
	size_t codes = a->n_blocks * a->dim * W;
	return (codes == 0 || memcmp(a->codes, b->codes, codes) == 0) &&
	       memcmp(a->scale, b->scale, ns * sizeof(float)) == 0 &&
	       memcmp(a->err2, b->err2, ns * sizeof(float)) == 0 &&
	       memcmp(a->err1, b->err1, ns * sizeof(float)) == 0 &&
	       memcmp(a->norm, b->norm, ns * sizeof(float)) == 0 &&
	       memcmp(a->norm_q, b->norm_q, ns * sizeof(float)) == 0 &&
	       memcmp(a->k2, b->k2, ns * sizeof(uint32_t)) == 0 &&
	       memcmp(a->csum, b->csum, ns * sizeof(int32_t)) == 0 &&
	       memcmp(a->doubt, b->doubt, ns) == 0;
}

size_t vec_screen_doubt_rows(const struct vec_screen *s)
{
	return s->n_doubt;
}

void vec_screen_weaken_bounds(struct vec_screen *s, double err_scale, bool drop_gamma)
{
	s->err_scale = err_scale;
	s->drop_gamma = drop_gamma;
}

/* The int8 kernels, two kinds. Per lane (row) of n contiguous blocks:
 * - float kernels give est[b * W + l], a float32 sum evaluated in any
 *   order (the bounds allow for that): dot, sum c_i * q_i (each product
 *   rounded, or fused into its add); l1, sum |fl(s * c_i - q_i)| with that
 *   difference one fused multiply-add, rounded once;
 * - integer kernels give the exact sums a1 = sum c_i * r1_i and a2 = sum
 *   c_i * r2_i for the query quantized in two int8 terms, q' = t1 * r1 +
 *   t2 * r2 (struct qprep): no rounding at all, |a| <= 16383 * 127 * 255
 *   < 2^31. */
typedef void float_fn(const int8_t *codes, size_t n, size_t dim, const float *q, const float *scale,
                      float *est);

/* One query in the integer kernels' terms: ub1/ub2 are r1/r2 biased by
 * +128 into unsigned bytes (AVX-512 VNNI multiplies unsigned by signed
 * bytes; the bias is taken off with the rows' sum of codes), dim rounded up
 * to 4 with 128 (a zero term) past the end. */
struct qprep {
	double t1, t2;
	uint8_t *ub1, *ub2;
};

typedef void int_fn(const int8_t *codes, size_t n, size_t dim, const struct qprep *qp,
                    const int32_t *csum, int32_t *a1, int32_t *a2);

static void dot_int_scalar(const int8_t *codes, size_t n, size_t dim, const struct qprep *qp,
                           const int32_t *csum, int32_t *a1, int32_t *a2)
{
	(void)csum;
	for (size_t b = 0; b < n; b++) {
		const int8_t *p = codes + b * dim * W;
		int32_t s1[W] = {0}, s2[W] = {0};
		for (size_t j = 0; j < dim; j++) {
			int32_t r1 = (int32_t)qp->ub1[j] - 128, r2 = (int32_t)qp->ub2[j] - 128;
			for (size_t l = 0; l < W; l++) {
				s1[l] += p[j * W + l] * r1;
				s2[l] += p[j * W + l] * r2;
			}
		}
		memcpy(a1 + b * W, s1, sizeof(s1));
		memcpy(a2 + b * W, s2, sizeof(s2));
	}
}

static void l1_scalar(const int8_t *codes, size_t n, size_t dim, const float *q, const float *scale,
                      float *est)
{
	for (size_t b = 0; b < n; b++) {
		const int8_t *p = codes + b * dim * W;
		const float *sc = scale + b * W;
		float acc[W] = {0};
		for (size_t j = 0; j < dim; j++)
			for (size_t l = 0; l < W; l++)
				acc[l] += fabsf(fmaf(sc[l], (float)p[j * W + l], -q[j]));
		memcpy(est + b * W, acc, sizeof(acc));
	}
}

/* Whether AVX-512 scans may use the VNNI kernel (vec_screen_use_vnni). */
static _Atomic bool vnni_off;

void vec_screen_use_vnni(bool use)
{
	atomic_store(&vnni_off, !use);
}

#ifdef SCREEN_X86
#define T512 __attribute__((target("avx512f")))

/* Element j of 16 rows: 16 codes, widened to int32 and converted (exactly)
 * to float32. */
T512 static inline __m512 codes512(const int8_t *p)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/* Four accumulators, so the adds of consecutive elements overlap. */
T512 static void dot_avx512(const int8_t *codes, size_t n, size_t dim, const float *q,
                            const float *scale, float *est)
{
	(void)scale;
	for (size_t b = 0; b < n; b++) {
		const int8_t *p = codes + b * dim * W;
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		size_t j = 0;
		for (; j + 4 <= dim; j += 4) {
			s0 = _mm512_fmadd_ps(codes512(p + j * W), _mm512_set1_ps(q[j]), s0);
			s1 = _mm512_fmadd_ps(codes512(p + (j + 1) * W), _mm512_set1_ps(q[j + 1]),
			                     s1);
			s2 = _mm512_fmadd_ps(codes512(p + (j + 2) * W), _mm512_set1_ps(q[j + 2]),
			                     s2);
			s3 = _mm512_fmadd_ps(codes512(p + (j + 3) * W), _mm512_set1_ps(q[j + 3]),
			                     s3);
		}
		for (; j < dim; j++)
			s0 = _mm512_fmadd_ps(codes512(p + j * W), _mm512_set1_ps(q[j]), s0);
		_mm512_storeu_ps(est + b * W,
		                 _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
	}
}

T512 static inline __m512 absdiff512(__m512 sc, const int8_t *p, float qj)
{
	return _mm512_abs_ps(_mm512_fmsub_ps(sc, codes512(p), _mm512_set1_ps(qj)));
}

T512 static void l1_avx512(const int8_t *codes, size_t n, size_t dim, const float *q,
                           const float *scale, float *est)
{
	for (size_t b = 0; b < n; b++) {
		const int8_t *p = codes + b * dim * W;
		const __m512 sc = _mm512_loadu_ps(scale + b * W);
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		size_t j = 0;
		for (; j + 4 <= dim; j += 4) {
			s0 = _mm512_add_ps(s0, absdiff512(sc, p + j * W, q[j]));
			s1 = _mm512_add_ps(s1, absdiff512(sc, p + (j + 1) * W, q[j + 1]));
			s2 = _mm512_add_ps(s2, absdiff512(sc, p + (j + 2) * W, q[j + 2]));
			s3 = _mm512_add_ps(s3, absdiff512(sc, p + (j + 3) * W, q[j + 3]));
		}
		for (; j < dim; j++)
			s0 = _mm512_add_ps(s0, absdiff512(sc, p + j * W, q[j]));
		_mm512_storeu_ps(est + b * W,
		                 _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
	}
}

#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni")))

/* Four query bytes in every 32-bit lane, broadcast straight from memory
 * (a load, not a shuffle: the shuffle port is vpermb's). */
TVNNI static inline __m512i bcast4(const uint8_t *p)
{
	int32_t w;
	memcpy(&w, p, 4);
	return _mm512_set1_epi32(w);
}

/* AVX-512 VNNI: four elements of a block's 16 rows are one 64-byte load;
 * vpermb regroups it so that each 32-bit lane holds its row's four codes,
 * and vpdpbusd adds the four products with the query's biased bytes
 * (broadcast) into the lane's int32 sum, a[b * W + i] = c.r over block b's
 * row i, for the biased bytes ub of one query term r. Four chains (groups
 * g..g+3), so that the latency of one vpdpbusd does not hold up the next;
 * integer sums are exact in any order. */
/* vpermb's index that regroups 64 bytes of codes (four elements of a
 * block's 16 rows) so that each 32-bit lane holds its row's four codes. */
TVNNI static inline __m512i row_groups(void)
{
	uint8_t perm[64];
	for (int i = 0; i < 16; i++)
		for (int k = 0; k < 4; k++)
			perm[4 * i + k] = (uint8_t)(16 * k + i);
	return _mm512_loadu_si512(perm);
}

TVNNI static void dot_vnni1(const int8_t *codes, size_t n, size_t dim, const uint8_t *ub,
                            const int32_t *csum, int32_t *a)
{
	const __m512i idx = row_groups();
	size_t groups = dim / 4, tail = dim % 4;
	const __mmask64 tail_mask = tail ? (1ull << (tail * W)) - 1 : 0;
	for (size_t b = 0; b < n; b++) {
		const int8_t *p = codes + b * dim * W;
		__m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
		size_t g = 0;
		for (; g + 4 <= groups; g += 4) {
			const int8_t *pg = p + g * 64;
			s0 = _mm512_dpbusd_epi32(
			        s0, bcast4(ub + 4 * g),
			        _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(pg)));
			s1 = _mm512_dpbusd_epi32(
			        s1, bcast4(ub + 4 * g + 4),
			        _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(pg + 64)));
			s2 = _mm512_dpbusd_epi32(
			        s2, bcast4(ub + 4 * g + 8),
			        _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(pg + 128)));
			s3 = _mm512_dpbusd_epi32(
			        s3, bcast4(ub + 4 * g + 12),
			        _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(pg + 192)));
		}
		for (; g < groups; g++)
			s0 = _mm512_dpbusd_epi32(
			        s0, bcast4(ub + 4 * g),
			        _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(p + g * 64)));
		if (tail)
			s0 = _mm512_dpbusd_epi32(
			        s0, bcast4(ub + 4 * groups),
			        _mm512_permutexvar_epi8(
			                idx, _mm512_maskz_loadu_epi8(tail_mask, p + groups * 64)));
		s0 = _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
		__m512i bias = _mm512_slli_epi32(_mm512_loadu_si512(csum + b * W), 7);
		_mm512_storeu_si512(a + b * W, _mm512_sub_epi32(s0, bias));
	}
}

/* dot_vnni1() for NQ queries of a batch at once: each 64-byte group of
 * codes is loaded and regrouped (vpermb) once and meets every query's
 * bytes (one vpdpbusd each), so the shuffle and the load are shared NQ
 * ways; NQ accumulators are NQ independent chains. The sums are the same
 * integers as dot_vnni1's (exact in any order). out[q] + b * W receives
 * block b's sums for query q.
 *
 * Each group's line is asked for CODES_AHEAD bytes before it is read: with
 * NQ vpdpbusd per line the loop reads memory too slowly for the hardware's
 * own prefetching to run far enough ahead, and it waited for memory about
 * as long as it computed (a batch of 16 over 100k x 768: 1.2-1.5 ms of CPU
 * per query without, 0.86-0.90 with; any distance from 4 KiB to 32 KiB,
 * into L1 or L2, gave the same). A lone query's dot_vnni1 reads fast
 * enough that asking ahead changes nothing. */
#define CODES_AHEAD 8192
#define UNROLL_Q    _Pragma("GCC unroll 16")
#define DEF_VNNI_MULTI(NQ)                                                                         \
	TVNNI static void dot_vnni_q##NQ(const int8_t *codes, size_t n, size_t dim,                \
	                                 const uint8_t *const *ub, const int32_t *csum,            \
	                                 int32_t *const *out)                                      \
	{                                                                                          \
		const __m512i idx = row_groups();                                                  \
		const uint8_t *u[NQ];                                                              \
		UNROLL_Q for (int q = 0; q < NQ; q++) u[q] = ub[q];                                \
		size_t groups = dim / 4, tail = dim % 4;                                           \
		const __mmask64 tail_mask = tail ? (1ull << (tail * W)) - 1 : 0;                   \
		for (size_t b = 0; b < n; b++) {                                                   \
			const int8_t *p = codes + b * dim * W;                                     \
			__m512i acc[NQ];                                                           \
			UNROLL_Q for (int q = 0; q < NQ; q++) acc[q] = _mm512_setzero_si512();     \
			for (size_t g = 0; g < groups; g++) {                                      \
				_mm_prefetch((const char *)p + g * 64 + CODES_AHEAD, _MM_HINT_T0); \
				__m512i c = _mm512_permutexvar_epi8(                               \
				        idx, _mm512_loadu_si512(p + g * 64));                      \
				UNROLL_Q for (int q = 0; q < NQ; q++) acc[q] =                     \
				        _mm512_dpbusd_epi32(acc[q], bcast4(u[q] + 4 * g), c);      \
			}                                                                          \
			if (tail) {                                                                \
				__m512i c = _mm512_permutexvar_epi8(                               \
				        idx, _mm512_maskz_loadu_epi8(tail_mask, p + groups * 64)); \
				UNROLL_Q for (int q = 0; q < NQ; q++) acc[q] =                     \
				        _mm512_dpbusd_epi32(acc[q], bcast4(u[q] + 4 * groups), c); \
			}                                                                          \
			__m512i bias = _mm512_slli_epi32(_mm512_loadu_si512(csum + b * W), 7);     \
			UNROLL_Q for (int q = 0; q < NQ; q++) _mm512_storeu_si512(                 \
			        out[q] + b * W, _mm512_sub_epi32(acc[q], bias));                   \
		}                                                                                  \
	}
DEF_VNNI_MULTI(2)
DEF_VNNI_MULTI(3)
DEF_VNNI_MULTI(4)
DEF_VNNI_MULTI(5)
DEF_VNNI_MULTI(6)
DEF_VNNI_MULTI(7)
DEF_VNNI_MULTI(8)
DEF_VNNI_MULTI(9)
DEF_VNNI_MULTI(10)
DEF_VNNI_MULTI(11)
DEF_VNNI_MULTI(12)
DEF_VNNI_MULTI(13)
DEF_VNNI_MULTI(14)
DEF_VNNI_MULTI(15)
DEF_VNNI_MULTI(16)
#undef DEF_VNNI_MULTI
#undef UNROLL_Q

typedef void vnni_multi_fn(const int8_t *codes, size_t n, size_t dim, const uint8_t *const *ub,
                           const int32_t *csum, int32_t *const *out);
/* dot_vnni_q<NQ> by NQ. */
static vnni_multi_fn *const vnni_multi[17] = {
        NULL,         NULL,         dot_vnni_q2,  dot_vnni_q3,  dot_vnni_q4,  dot_vnni_q5,
        dot_vnni_q6,  dot_vnni_q7,  dot_vnni_q8,  dot_vnni_q9,  dot_vnni_q10, dot_vnni_q11,
        dot_vnni_q12, dot_vnni_q13, dot_vnni_q14, dot_vnni_q15, dot_vnni_q16,
};

/* The first-term sums of nq queries (biased bytes ub[q]) over n blocks,
 * into out[q]: up to 16 queries per sweep over the codes. */
static void dot_vnni_multi(const int8_t *codes, size_t n, size_t dim, const uint8_t *const *ub,
                           size_t nq, const int32_t *csum, int32_t *const *out)
{
	while (nq > 0) {
		size_t k = nq < 16 ? nq : 16;
		if (k == 1)
			dot_vnni1(codes, n, dim, ub[0], csum, out[0]);
		else
			vnni_multi[k](codes, n, dim, ub, csum, out);
		ub += k;
		out += k;
		nq -= k;
	}
}

/* Both query terms: a1 = c.r1 and a2 = c.r2 over every row of n blocks
 * (the codes of a batch of blocks stay in the core's cache between the
 * two passes). */
TVNNI static void dot_vnni(const int8_t *codes, size_t n, size_t dim, const struct qprep *qp,
                           const int32_t *csum, int32_t *a1, int32_t *a2)
{
	dot_vnni1(codes, n, dim, qp->ub1, csum, a1);
	dot_vnni1(codes, n, dim, qp->ub2, csum, a2);
}

/* AVX2: a block's element j is two 8-lane halves (8 bytes each). The dot
 * multiplies and adds separately, so it needs no FMA; the L1 kernel's
 * difference must be fused and runs only on a CPU with FMA. */
#define T256  __attribute__((target("avx2")))
#define T256F __attribute__((target("avx2,fma")))

T256 static inline __m256 codes256(const int8_t *p)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

T256 static void dot_avx2(const int8_t *codes, size_t n, size_t dim, const float *q,
                          const float *scale, float *est)
{
	(void)scale;
	for (size_t b = 0; b < n; b++) {
		const int8_t *p = codes + b * dim * W;
		__m256 lo0 = _mm256_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
		size_t j = 0;
		for (; j + 2 <= dim; j += 2) {
			__m256 q0 = _mm256_set1_ps(q[j]), q1 = _mm256_set1_ps(q[j + 1]);
			lo0 = _mm256_add_ps(lo0, _mm256_mul_ps(codes256(p + j * W), q0));
			hi0 = _mm256_add_ps(hi0, _mm256_mul_ps(codes256(p + j * W + 8), q0));
			lo1 = _mm256_add_ps(lo1, _mm256_mul_ps(codes256(p + (j + 1) * W), q1));
			hi1 = _mm256_add_ps(hi1, _mm256_mul_ps(codes256(p + (j + 1) * W + 8), q1));
		}
		for (; j < dim; j++) {
			__m256 q0 = _mm256_set1_ps(q[j]);
			lo0 = _mm256_add_ps(lo0, _mm256_mul_ps(codes256(p + j * W), q0));
			hi0 = _mm256_add_ps(hi0, _mm256_mul_ps(codes256(p + j * W + 8), q0));
		}
		_mm256_storeu_ps(est + b * W, _mm256_add_ps(lo0, lo1));
		_mm256_storeu_ps(est + b * W + 8, _mm256_add_ps(hi0, hi1));
	}
}

T256F static void l1_avx2(const int8_t *codes, size_t n, size_t dim, const float *q,
                          const float *scale, float *est)
{
	const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	for (size_t b = 0; b < n; b++) {
		const int8_t *p = codes + b * dim * W;
		const __m256 sl = _mm256_loadu_ps(scale + b * W);
		const __m256 sh = _mm256_loadu_ps(scale + b * W + 8);
		__m256 lo = _mm256_setzero_ps(), hi = lo;
		for (size_t j = 0; j < dim; j++) {
			__m256 qj = _mm256_set1_ps(q[j]);
			__m256 dl = _mm256_fmsub_ps(sl, codes256(p + j * W), qj);
			__m256 dh = _mm256_fmsub_ps(sh, codes256(p + j * W + 8), qj);
			lo = _mm256_add_ps(lo, _mm256_and_ps(dl, abs_mask));
			hi = _mm256_add_ps(hi, _mm256_and_ps(dh, abs_mask));
		}
		_mm256_storeu_ps(est + b * W, lo);
		_mm256_storeu_ps(est + b * W + 8, hi);
	}
}
#endif

/* The int8 kernel for metric m on the ISA that scans use now (so a test
 * forcing an ISA runs these kernels too): *ff a float kernel, or *fi an
 * integer one. AVX-512 runs the integer kernel where the CPU has VNNI and
 * VBMI, AVX2 the float ones, anything else the scalar integer kernel
 * (L1 is always a float kernel). */
static void pick_kernel(enum vec_metric m, float_fn **ff, int_fn **fi)
{
	bool l1 = m == VEC_L1;
	*ff = l1 ? l1_scalar : NULL;
	*fi = l1 ? NULL : dot_int_scalar;
#ifdef SCREEN_X86
	switch (vec_scan_isa()) {
	case VEC_ISA_AVX512:
		if (l1) {
			*ff = l1_avx512;
		} else if (!atomic_load_explicit(&vnni_off, memory_order_relaxed) &&
		           __builtin_cpu_supports("avx512bw") &&
		           __builtin_cpu_supports("avx512vbmi") &&
		           __builtin_cpu_supports("avx512vnni")) {
			*fi = dot_vnni;
		} else {
			*ff = dot_avx512;
			*fi = NULL;
		}
		return;
	case VEC_ISA_AVX2:
		if (!l1) {
			*ff = dot_avx2;
			*fi = NULL;
		} else if (__builtin_cpu_supports("fma")) {
			*ff = l1_avx2;
		}
		return;
	default:
		return;
	}
#endif
}

/* One query's constants for the bounds. */
struct qctx {
	const struct vec_screen *s;
	enum vec_metric m;
	const float *norms;  /* cosine: the table's float32 squared norms in the arithmetic */
	double nb;           /* cosine: the query's float32 squared norm, as TiDB sums it */
	double qn;           /* >= ||q||_2 */
	double qq_lo, qq_hi; /* ||q||_2^2 lies in [qq_lo, qq_hi] */
	double g_n, g_n2;    /* gamma_n, gamma_{n+2} (0 when weakened) */
	double uf;           /* n * 2^-149 (0 when weakened) */
	double es;           /* err_scale */
	/* The int8 pass's own error on c.q: |cq - c.q| <= ||c|| own_q + own_uf
	 * (see bounds()). */
	double own_q, own_uf;
	/* cos_block_settled's coefficients of r, each a float at or above its
	 * real value (qctx_floats). */
	float f_err2, f_norm, f_norm_q, f_sc, f_uf;
	/* l2_block_settled's: ||q||^2 bounds rounded outwards, the
	 * coefficient of e2 (es) rounded up; e's are 2 f_norm_q and 2 f_sc
	 * (doubling a float is exact). */
	float f_qq_lo, f_qq_hi, f_es;
};

/* The float coefficients of bounds()'s r for cos_block_settled: r = qn (es
 * err2 + g_n norm) + own_q norm_q + own_uf sc + uf, each coefficient's real
 * value (a product of doubles) at most the float kept (the factor 1 + 1e-9
 * covers the double product's rounding). */
static void qctx_floats(struct qctx *c)
{
	const double up = 1 + 1e-9;
	c->f_err2 = f_up(c->qn * c->es * up);
	c->f_norm = f_up(c->qn * c->g_n * up);
	c->f_norm_q = f_up(c->own_q * up);
	c->f_sc = f_up(c->own_uf * up);
	c->f_uf = f_up(c->uf * up);
	c->f_qq_lo = f_down(c->qq_lo);
	c->f_qq_hi = f_up(c->qq_hi);
	c->f_es = f_up(c->es * up);
}

static double gamma_k(double k)
{
	double ku = ldexp(k, -24);
	return widen_up(ku / (1 - ku));
}

static double clamp1(double x)
{
	return x > 1.0 ? 1.0 : x < -1.0 ? -1.0 : x;
}

/* [*lb, *ub] contains TiDB's distance between slot's row and q (never NULL
 * for a row not in doubt), given cq, the int8 pass's estimate of c.q (dot
 * metrics), or est, its float32 L1 sum.
 *
 * The estimate. With a float kernel (q' = q), summing the n rounded
 * products in any order, |cq - c.q| <= gamma_n ||c|| ||q|| + UF. With an
 * integer kernel, a1 and a2 are exact and cq = fl(fl(t1 a1) + fl(t2 a2))
 * in double, |t1 a1| + |t2 a2| <= ||c|| (t1 ||r1|| + t2 ||r2||) (Cauchy-
 * Schwarz), so its three roundings cost at most 1e-15 ||c|| (t1 ||r1|| +
 * t2 ||r2||); and c.q' differs from c.q by at most ||c|| ||q - q'||. Either
 * way |cq - c.q| <= ||c|| own_q + own_uf, and times s: |s cq - s c.q| <=
 * ||a'|| own_q + s own_uf (||a'|| = s ||c||).
 *
 * Dot (cosine, negative inner product). TiDB's float32 dot D satisfies
 * |D - a.q| <= gamma_n * sum|a_i q_i| + UF <= gamma_n ||a|| ||q|| + UF.
 * a.q = s (c.q) + (a - a').q, |(a - a').q| <= ||a - a'|| ||q|| (Cauchy-
 * Schwarz). Hence D lies within R = ||q|| (E2 + gamma_n ||a||) + ||a'||
 * own_q + s own_uf + UF of s cq. s cq is rounded once (relative to itself),
 * so it is widened on its own before R (a sum of nonnegative terms, widened
 * too) is added or taken off, and the ends are widened again (each one
 * double rounding relative to its own result): [lo, hi] holds D.
 * - Negative inner product: TiDB returns -(double)D, exactly: [-hi, -lo].
 * - Cosine: TiDB returns 1 - clamp(D / sqrt(na * nb)) with na, nb the very
 *   float32 norms used here (the table's, the query's), every double step
 *   rounded to nearest. For a fixed positive denominator, x -> fl(x / den)
 *   is nondecreasing over the reals, so D <= hi gives fl(D / den) <=
 *   fl(hi / den); clamp is nondecreasing, x -> fl(1 - x) nonincreasing:
 *   lb = 1 - clamp(fl(hi / den)) <= TiDB's distance, and ub likewise from lo.
 *   na >= 1e-30 and nb > 0 (rows and queries in doubt excluded), so den > 0.
 *
 * L2. ||a - q|| lies in [P - E2, P + E2], P = ||a' - q|| (triangle
 * inequality), P^2 = ||a'||^2 + ||q||^2 - 2 s (c.q): ||a'||^2 = s^2 k2 (one
 * double rounding), ||q||^2 within [qq_lo, qq_hi], s (c.q) within s cq +-
 * (||a'|| own_q + s own_uf). The double evaluation of that difference may
 * cancel, so its error is bounded by an absolute slack relative to the sum
 * of the magnitudes, not to the result. TiDB's float32 sum of the rounded
 * squares of the rounded differences is within gamma_{n+2} relative of
 * ||a - q||^2 (nonnegative terms, so relative to the result), plus UF;
 * then sqrt((double)sum), nondecreasing: sqrt of the sum's bounds.
 *
 * L1 (float kernels only). With v_i = s c_i - q_i, the kernel's terms are
 * |v_i| (1 + delta) + eta, summed with at most n - 1 more roundings:
 * |est - sum|v_i|| <= gamma_n sum|v_i| + UF, so sum|v_i| = ||a' - q||_1
 * lies in [(est - UF) / (1 + gamma_n), (est + UF) / (1 - gamma_n)];
 * ||a - q||_1 is within E1 of it (triangle inequality). TiDB sums
 * |fl(a_i - q_i)| (exact differences up to one rounding, never an absolute
 * error) with n - 1 additions: within gamma_n relative of ||a - q||_1, and
 * (double)sum is exact.
 *
 * Each case finds lb first: when lb > t_run the row is pruned and its ub
 * could not enter the heap (ub >= lb > t_run), so ub is left at +Inf, an
 * upper bound too, which saves half the work on most rows. */
static void bounds(const struct qctx *c, size_t slot, double cq, double t_run, double *lb,
                   double *ub)
{
	const struct vec_screen *s = c->s;
	double sc = s->scale[slot];
	*ub = INFINITY;
	switch (c->m) {
	case VEC_COSINE:
	case VEC_NEG_IP: {
		double ctr = sc * cq;
		double r = c->qn * (c->es * s->err2[slot] + c->g_n * (double)s->norm[slot]) +
		           (double)s->norm_q[slot] * c->own_q + sc * c->own_uf + c->uf;
		r = widen_up(r);
		double lo = widen_down(widen_down(ctr) - r), hi = widen_up(widen_up(ctr) + r);
		if (c->m == VEC_NEG_IP) {
			*lb = -hi;
			*ub = -lo;
			return;
		}
		if (hi <= 0 && t_run < ONE_DOWN) {
			/* fl(D / den) <= fl(hi / den) <= 0: TiDB's distance is at
			 * least 1 > t_run, so the row is pruned without the square
			 * root and the division (about half the rows). */
			*lb = ONE_DOWN;
			return;
		}
		double den = sqrt((double)c->norms[slot] * c->nb);
		*lb = widen_down(1.0 - clamp1(hi / den));
		if (*lb <= t_run)
			*ub = widen_up(1.0 - clamp1(lo / den));
		return;
	}
	case VEC_L2: {
		double aa = sc * sc * (double)s->k2[slot];
		double x = 2 * sc * cq;
		double e = widen_up(2 * ((double)s->norm_q[slot] * c->own_q + sc * c->own_uf));
		double slack = (aa + c->qq_hi + fabs(x) + e) * WIDEN_REL + WIDEN_ABS;
		double e2 = c->es * s->err2[slot];
		double p2lo = aa + c->qq_lo - x - e - slack;
		double plo = p2lo > 0 ? widen_down(sqrt(p2lo)) : 0;
		double dlo = widen_down(plo - e2);
		dlo = dlo > 0 ? dlo : 0;
		double slo = widen_down(dlo * dlo * (1 - c->g_n2)) - c->uf;
		*lb = slo > 0 ? widen_down(sqrt(slo)) : 0;
		if (*lb > t_run)
			return;
		double p2hi = aa + c->qq_hi - x + e + slack;
		double phi = widen_up(sqrt(p2hi > 0 ? p2hi : 0));
		double dhi = widen_up(phi + e2);
		double shi = widen_up(dhi * dhi * (1 + c->g_n2)) + c->uf;
		*ub = widen_up(sqrt(shi));
		return;
	}
	case VEC_L1: {
		double tlo = widen_down((cq - c->uf) / (1 + c->g_n));
		double thi = widen_up((cq + c->uf) / (1 - c->g_n));
		double e1 = c->es * s->err1[slot];
		double llo = widen_down(tlo - e1), lhi = widen_up(thi + e1);
		llo = llo > 0 ? llo : 0;
		*lb = widen_down(llo * (1 - c->g_n));
		*ub = widen_up(lhi * (1 + c->g_n));
		return;
	}
	}
	*lb = -INFINITY; /* unreachable: the metric was checked */
}

static _Atomic bool lb_shortcut_off;

void vec_screen_use_lb_shortcut(bool use)
{
	atomic_store_explicit(&lb_shortcut_off, !use, memory_order_relaxed);
}

#ifdef SCREEN_X86
/* The first step of bounds() for the 16 rows of one block, eight at a time
 * in AVX-512 doubles: a mask of the lanes whose lb may be <= t (those
 * bounds() must then see), for cosine, negative inner product and L2. Every
 * operation is the one bounds() performs, in the same order (explicit
 * multiplies and adds, never fused; IEEE sqrt and division are correctly
 * rounded in vectors as in scalars), so each lane's lb is bounds()'s, bit
 * for bit; a lane whose lb is not greater than t, or unordered (NaN), is in
 * the mask. The cosine shortcut (hi <= 0 gives ONE_DOWN while
 * t < ONE_DOWN) is applied the same way. cq[0..16) is each lane's c.q
 * estimate as bounds() receives it. */
#define TPD __attribute__((target("avx512f,avx512dq")))

TPD static inline __m512d abs8(__m512d x)
{
	return _mm512_castsi512_pd(
	        _mm512_and_si512(_mm512_castpd_si512(x), _mm512_set1_epi64(0x7fffffffffffffffLL)));
}

TPD static inline __m512d wdown8(__m512d x)
{
	return _mm512_sub_pd(_mm512_sub_pd(x, _mm512_mul_pd(abs8(x), _mm512_set1_pd(WIDEN_REL))),
	                     _mm512_set1_pd(WIDEN_ABS));
}

TPD static inline __m512d wup8(__m512d x)
{
	return _mm512_add_pd(_mm512_add_pd(x, _mm512_mul_pd(abs8(x), _mm512_set1_pd(WIDEN_REL))),
	                     _mm512_set1_pd(WIDEN_ABS));
}

TPD static inline __m512d f2d8(const float *p)
{
	return _mm512_cvtps_pd(_mm256_loadu_ps(p));
}

/* Cosine without the square root and the division, when every lane of
 * eight is pruned: cos_prune_k(c, t) gives K > 0 such that a lane with
 * hi > 0 and fl(hi * hi) < fl(K * N) (N = c->norms[slot]) has bounds()'s
 * lb > t, or 0 when there is no such K (t too close to 1 or above).
 *
 * Proof. K = fl(fl(fl(a * a) * nb) * (1 - 1e-9)) with a = fl(1 - t - 1e-9)
 * > 0; u = 2^-53. Each rounding is within a factor (1 +- u), so
 * hi^2 (1 - u) <= fl(hi^2) < fl(K N) <= a^2 nb N (1 - 1e-9) (1 + u)^4, hence
 * hi / sqrt(N nb) < a (1 - 4e-10). bounds()'s den = fl(sqrt(fl(N nb))) >=
 * sqrt(N nb) (1 - 2u) and its x = fl(hi / den) <= (hi / den) (1 + u), so
 * x < a (1 - 4e-10) (1 + 4u) < a <= 1 - t - 1e-9 + 4u (a's own two
 * roundings, |1 - t| <= 3 where K is made). clamp1(x) <= x, so
 * 1 - clamp1(x) > t + 1e-9 - 4u, and its rounding and widen_down take off
 * at most 2 (u + 1e-12) + 1e-300 (|1 - clamp1(x)| <= 2): lb > t. A lane with
 * hi <= 0 has lb = ONE_DOWN > t (K is made only for t < ONE_DOWN), as in
 * bounds(). NaN fails both tests and takes the exact path. */
static double cos_prune_k(const struct qctx *c, double t)
{
	if (!(t < ONE_DOWN) || !(t > -2.0))
		return 0;
	double a = 1.0 - t - 1e-9;
	return a > 0 ? a * a * c->nb * (1 - 1e-9) : 0;
}

/* L2 without the two square roots, when every lane of eight is pruned:
 * l2_prune_d(c, t) gives D > 0 such that a lane whose p2lo (as bounds()
 * computes it) is above fl(fl(r * r) * (1 + 3e-9)), r = fl(e2 + D), has
 * bounds()'s lb > t; 0 when there is none (t below 1e-100 or not finite
 * enough to square).
 *
 * Proof (e = 1e-9, u = 2^-53; bounds()'s widen_down(x) >= x (1 - 2e-12) -
 * 2e-300 for x > 0, its roundings each within a factor (1 +- u)).
 * D >= sqrt((t^2 (1 + e) + uf + 1e-290) / ((1 - g_{n+2}) (1 - 1e-11))), its
 * own roundings covered by its factor (1 + e). (1) p2lo > r^2 (1 + 3e)
 * (1 - u)^2 and r >= (e2 + D) (1 - u), so sqrt(p2lo) > (e2 + D)(1 + 0.4e).
 * (2) plo = widen_down(fl(sqrt(p2lo))) > (e2 + D)(1 + 0.3e) - 2e-300, so
 * plo - e2 > D (1 + 0.3e) - 2e-300, and dlo, its rounded and widened value,
 * >= D (1 + 0.2e) - 5e-300 >= D (1 + 0.1e) > 0 (D >= 1e-100). (3) slo =
 * fl(widen_down(fl(fl(dlo^2) (1 - g_{n+2}))) - uf) >= dlo^2 (1 - g_{n+2})
 * (1 - 3e-12) - uf - 3e-300 >= (t^2 (1 + e) + uf + 1e-290) - uf - 3e-300
 * > t^2 (1 + e) > 0. (4) lb = widen_down(fl(sqrt(slo))) >= t (1 + 0.4e)
 * (1 - 3e-12) - 2e-300 > t, as t >= 1e-100. NaN or infinite values fail the
 * comparison and take the exact path. */
static double l2_prune_d(const struct qctx *c, double t)
{
	if (!(t >= 1e-100) || !(t < 1e150))
		return 0;
	return sqrt((t * t * (1 + 1e-9) + c->uf + 1e-290) / ((1 - c->g_n2) * (1 - 1e-11))) *
	       (1 + 1e-9);
}

TPD static __mmask8 lb_pass8(const struct qctx *c, size_t slot, const double *cq, double t,
                             double k, size_t *settled)
{
	const struct vec_screen *s = c->s;
	const __m512d sc = f2d8(s->scale + slot), q = _mm512_loadu_pd(cq);
	const __m512d zero = _mm512_setzero_pd();
	__m512d lb;
	if (c->m == VEC_L2) {
		__m512d k2 =
		        _mm512_cvtepu32_pd(_mm256_loadu_si256((const __m256i *)(s->k2 + slot)));
		__m512d aa = _mm512_mul_pd(_mm512_mul_pd(sc, sc), k2);
		__m512d x = _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(2), sc), q);
		__m512d e = wup8(
		        _mm512_mul_pd(_mm512_set1_pd(2),
		                      _mm512_add_pd(_mm512_mul_pd(f2d8(s->norm_q + slot),
		                                                  _mm512_set1_pd(c->own_q)),
		                                    _mm512_mul_pd(sc, _mm512_set1_pd(c->own_uf)))));
		__m512d slack = _mm512_add_pd(
		        _mm512_mul_pd(
		                _mm512_add_pd(
		                        _mm512_add_pd(_mm512_add_pd(aa, _mm512_set1_pd(c->qq_hi)),
		                                      abs8(x)),
		                        e),
		                _mm512_set1_pd(WIDEN_REL)),
		        _mm512_set1_pd(WIDEN_ABS));
		__m512d e2 = _mm512_mul_pd(_mm512_set1_pd(c->es), f2d8(s->err2 + slot));
		__m512d p2lo = _mm512_sub_pd(
		        _mm512_sub_pd(_mm512_sub_pd(_mm512_add_pd(aa, _mm512_set1_pd(c->qq_lo)), x),
		                      e),
		        slack);
		if (k > 0) {
			__m512d r = _mm512_add_pd(e2, _mm512_set1_pd(k));
			__m512d rhs = _mm512_mul_pd(_mm512_mul_pd(r, r), _mm512_set1_pd(1 + 3e-9));
			if (_mm512_cmp_pd_mask(p2lo, rhs, _CMP_GT_OQ) == 0xff) {
				++*settled;
				return 0; /* l2_prune_d: every lane's lb > t */
			}
		}
		__mmask8 pos = _mm512_cmp_pd_mask(p2lo, zero, _CMP_GT_OQ);
		__m512d plo = _mm512_maskz_mov_pd(pos, wdown8(_mm512_sqrt_pd(p2lo)));
		__m512d dlo = wdown8(_mm512_sub_pd(plo, e2));
		dlo = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(dlo, zero, _CMP_GT_OQ), dlo);
		__m512d slo = _mm512_sub_pd(
		        wdown8(_mm512_mul_pd(_mm512_mul_pd(dlo, dlo), _mm512_set1_pd(1 - c->g_n2))),
		        _mm512_set1_pd(c->uf));
		__mmask8 spos = _mm512_cmp_pd_mask(slo, zero, _CMP_GT_OQ);
		lb = _mm512_maskz_mov_pd(spos, wdown8(_mm512_sqrt_pd(slo)));
	} else {
		__m512d ctr = _mm512_mul_pd(sc, q);
		__m512d a = _mm512_mul_pd(
		        _mm512_set1_pd(c->qn),
		        _mm512_add_pd(_mm512_mul_pd(_mm512_set1_pd(c->es), f2d8(s->err2 + slot)),
		                      _mm512_mul_pd(_mm512_set1_pd(c->g_n), f2d8(s->norm + slot))));
		__m512d r = _mm512_add_pd(
		        _mm512_add_pd(_mm512_add_pd(a, _mm512_mul_pd(f2d8(s->norm_q + slot),
		                                                     _mm512_set1_pd(c->own_q))),
		                      _mm512_mul_pd(sc, _mm512_set1_pd(c->own_uf))),
		        _mm512_set1_pd(c->uf));
		r = wup8(r);
		__m512d hi = wup8(_mm512_add_pd(wup8(ctr), r));
		if (c->m == VEC_NEG_IP) {
			lb = _mm512_sub_pd(zero, hi); /* -hi: exact, as the scalar negation */
		} else {
			const __m512d n = f2d8(c->norms + slot);
			if (k > 0 &&
			    (__mmask8)(_mm512_cmp_pd_mask(hi, zero, _CMP_LE_OQ) |
			               _mm512_cmp_pd_mask(_mm512_mul_pd(hi, hi),
			                                  _mm512_mul_pd(_mm512_set1_pd(k), n),
			                                  _CMP_LT_OQ)) == 0xff) {
				++*settled;
				return 0; /* cos_prune_k: every lane's lb > t */
			}
			__m512d den = _mm512_sqrt_pd(_mm512_mul_pd(n, _mm512_set1_pd(c->nb)));
			__m512d v = _mm512_div_pd(hi, den);
			/* clamp1: x > 1 ? 1 : x < -1 ? -1 : x (NaN stays NaN) */
			v = _mm512_mask_mov_pd(v,
			                       _mm512_cmp_pd_mask(v, _mm512_set1_pd(1), _CMP_GT_OQ),
			                       _mm512_set1_pd(1));
			v = _mm512_mask_mov_pd(
			        v, _mm512_cmp_pd_mask(v, _mm512_set1_pd(-1), _CMP_LT_OQ),
			        _mm512_set1_pd(-1));
			lb = wdown8(_mm512_sub_pd(_mm512_set1_pd(1.0), v));
			if (t < ONE_DOWN)
				lb = _mm512_mask_mov_pd(lb,
				                        _mm512_cmp_pd_mask(hi, zero, _CMP_LE_OQ),
				                        _mm512_set1_pd(ONE_DOWN));
		}
	}
	/* not (lb > t): lb <= t, or unordered */
	return _mm512_cmp_pd_mask(lb, _mm512_set1_pd(t), _CMP_NGT_UQ);
}

/* lb_pass8()'s shortcut constant for threshold t: cos_prune_k or
 * l2_prune_d by the metric, 0 (no shortcut) for the others or while
 * vec_screen_use_lb_shortcut(false). */
static double shortcut_k(const struct qctx *c, double t)
{
	if (atomic_load_explicit(&lb_shortcut_off, memory_order_relaxed))
		return 0;
	return c->m == VEC_COSINE ? cos_prune_k(c, t) : c->m == VEC_L2 ? l2_prune_d(c, t) : 0;
}

/* A block's 16 c.q estimates in float32 (each rounded to nearest). */
TPD static inline __m512 floats16(const double *cq)
{
	return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_loadu_pd(cq))),
	                          _mm512_cvtpd_ps(_mm512_loadu_pd(cq + 8)), 1);
}

/* Cosine, a whole block in float32 before lb_pass8: whether every lane of
 * `want` is proven to have bounds()'s lb > t, for k = cos_prune_k(c, t) > 0.
 * Sixteen lanes a vector, a few multiplies and adds, none of lb_pass8's
 * conversions to double: on random data most blocks of the first pass end
 * here.
 *
 * Proof. Let X = sc cq + R and Y = |sc cq| + R (reals), R the real value
 * of bounds()'s r before widen_up (all its terms >= 0). bounds() computes
 * hi = widen_up(widen_up(fl(sc cq)) + widen_up(r)) with r within (1 + 10u)
 * of R and each widening adding 1e-12 relative and 1e-300 (u = 2^-53), so
 * hi <= X + 1e-11 Y + 1e-299. Here, with v = 2^-24: the coefficients are
 * floats at or above their real products (qctx_floats), so the float sum
 * R' of four products and uf (seven roundings of terms >= 0) is >= R (1 -
 * 7v) - 7 * 2^-150; c' = fl(sc fl(cq)) is within 2.5v |sc cq| + 2^-105 of
 * sc cq (sc < 2^44 where a row is not in doubt). Then h = fl(fl(fl(c' + R') +
 * fl(fl(|c'| + R') E)) + A) with E = 1e-5, A = 1e-30: its four roundings
 * are each within v (|c'| + R') (1 + E), so h >= X - 7.1v Y + E Y (1 - 7.1v)
 * - 4.1v Y + A - 2^-130 >= X + 9e-6 Y + 1e-31 >= hi, for any X, Y (every
 * absolute error above is far below A). (1) h <= 0: hi <= 0, and bounds()
 * gives lb = ONE_DOWN > t (k > 0 only for t < ONE_DOWN). (2) fl(h h) <
 * fl(kf n) with kf = f_down(k (1 - 1e-6)) and fl(kf n) >= 1e-30 (normal,
 * rounded within v): if hi <= 0, (1); else hi^2 <= h^2 <= fl(h h) (1 + 2v)
 * < kf n (1 + 4v) < k n (1 - 9e-7), so fl(hi hi) < fl(k n) and
 * cos_prune_k's proof gives lb > t. NaN fails every comparison; an
 * infinite h fails (2) and (1). */
TPD static bool cos_block_settled(const struct qctx *c, size_t slot, const double *cq, double k,
                                  uint32_t want)
{
	const struct vec_screen *s = c->s;
	float kf = f_down(k * (1 - 1e-6));
	if (!(kf > 0))
		return false;
	__m512 q = floats16(cq);
	__m512 sc = _mm512_loadu_ps(s->scale + slot);
	__m512 ctr = _mm512_mul_ps(sc, q);
	__m512 r = _mm512_add_ps(
	        _mm512_mul_ps(_mm512_set1_ps(c->f_err2), _mm512_loadu_ps(s->err2 + slot)),
	        _mm512_mul_ps(_mm512_set1_ps(c->f_norm), _mm512_loadu_ps(s->norm + slot)));
	r = _mm512_add_ps(
	        r, _mm512_mul_ps(_mm512_set1_ps(c->f_norm_q), _mm512_loadu_ps(s->norm_q + slot)));
	r = _mm512_add_ps(r, _mm512_mul_ps(_mm512_set1_ps(c->f_sc), sc));
	r = _mm512_add_ps(r, _mm512_set1_ps(c->f_uf));
	__m512 h = _mm512_add_ps(
	        _mm512_add_ps(ctr, r),
	        _mm512_mul_ps(_mm512_add_ps(_mm512_abs_ps(ctr), r), _mm512_set1_ps(1e-5f)));
	h = _mm512_add_ps(h, _mm512_set1_ps(1e-30f));
	__m512 kn = _mm512_mul_ps(_mm512_set1_ps(kf), _mm512_loadu_ps(c->norms + slot));
	__mmask16 below = _mm512_cmp_ps_mask(_mm512_mul_ps(h, h), kn, _CMP_LT_OQ) &
	                  _mm512_cmp_ps_mask(kn, _mm512_set1_ps(1e-30f), _CMP_GE_OQ);
	__mmask16 settled = _mm512_cmp_ps_mask(h, _mm512_setzero_ps(), _CMP_LE_OQ) | below;
	return (want & ~(uint32_t)settled) == 0;
}

/* L2, a whole block in float32 before lb_pass8: whether every lane of want
 * is proven to have bounds()'s lb > t, for d = l2_prune_d(c, t) > 0.
 *
 * Proof. Let aa = sc^2 k2, x = 2 sc cq, e = 2 (norm_q own_q + sc own_uf)
 * (reals), L = aa + qq_lo - x - e and M = aa + qq_hi + |x| + e >= |each
 * term|. lb_pass8 computes p2lo (as bounds() does) from the same terms with
 * a few roundings of 2^-53 and widenings of 1e-12 relative and 1e-300, each
 * within M of its term: p2lo >= L - 1e-11 M - 1e-299. Here, with v =
 * 2^-24, coefficients rounded up and qq_lo down (qctx_floats), every
 * float operation of p' = fl(fl(fl(fl(aa' + qq_lo') - x') - e') - fl(M' E))
 * (E = 1e-5, M' >= M (1 - 6v) the float M) errs by at most v (1 + E) M
 * plus 2^-130 (sc < 2^44, k2 < 2^25; denormal terms), so p = fl(p' - A)
 * with A = 1e-30 is <= L - M (E - 25v) - A/2 < p2lo. And rhs' =
 * fl(fl(r' r') (1 + E)), r' = fl(fl(es' err2) + d') with es' >= es and d'
 * = f_up(d), is >= (e2 + d)^2 (1 + E - 7v) > lb_pass8's fl(fl(r r) (1 +
 * 3e-9)) whenever rhs' >= 1e-30 (normal floats, relative roundings). So
 * p > rhs' >= 1e-30 gives p2lo > fl(fl(r r) (1 + 3e-9)): l2_prune_d's test,
 * whose proof gives lb > t. NaN fails every comparison; an infinite or
 * overflowing term makes p -Inf or NaN, or rhs' +Inf: not settled. */
TPD static bool l2_block_settled(const struct qctx *c, size_t slot, const double *cq, double d,
                                 uint32_t want)
{
	const struct vec_screen *s = c->s;
	float df = f_up(d);
	if (!(df < INFINITY))
		return false;
	__m512 q = floats16(cq);
	__m512 sc = _mm512_loadu_ps(s->scale + slot);
	__m512 k2 = _mm512_cvtepu32_ps(_mm512_loadu_si512(s->k2 + slot));
	__m512 aa = _mm512_mul_ps(_mm512_mul_ps(sc, sc), k2);
	__m512 x = _mm512_mul_ps(_mm512_add_ps(sc, sc), q);
	__m512 e = _mm512_add_ps(
	        _mm512_mul_ps(_mm512_set1_ps(2 * c->f_norm_q), _mm512_loadu_ps(s->norm_q + slot)),
	        _mm512_mul_ps(_mm512_set1_ps(2 * c->f_sc), sc));
	__m512 m = _mm512_add_ps(
	        _mm512_add_ps(_mm512_add_ps(aa, _mm512_set1_ps(c->f_qq_hi)), _mm512_abs_ps(x)), e);
	__m512 p = _mm512_sub_ps(
	        _mm512_sub_ps(_mm512_sub_ps(_mm512_add_ps(aa, _mm512_set1_ps(c->f_qq_lo)), x), e),
	        _mm512_mul_ps(m, _mm512_set1_ps(1e-5f)));
	p = _mm512_sub_ps(p, _mm512_set1_ps(1e-30f));
	__m512 r = _mm512_add_ps(
	        _mm512_mul_ps(_mm512_set1_ps(c->f_es), _mm512_loadu_ps(s->err2 + slot)),
	        _mm512_set1_ps(df));
	__m512 rhs = _mm512_mul_ps(_mm512_mul_ps(r, r), _mm512_set1_ps(1 + 1e-5f));
	__mmask16 settled = _mm512_cmp_ps_mask(p, rhs, _CMP_GT_OQ) &
	                    _mm512_cmp_ps_mask(rhs, _mm512_set1_ps(1e-30f), _CMP_GE_OQ);
	return (want & ~(uint32_t)settled) == 0;
}

/* cos_block_settled or l2_block_settled by c's metric (k = shortcut_k(c,
 * t) > 0). */
TPD static bool block_settled(const struct qctx *c, size_t slot, const double *cq, double k,
                              uint32_t want)
{
	return c->m == VEC_COSINE ? cos_block_settled(c, slot, cq, k, want)
	                          : l2_block_settled(c, slot, cq, k, want);
}

/* *settled counts the groups of eight that the shortcut settled (a block
 * settled by block_settled counts as two). want: the lanes whose
 * answer matters (allowed, not in doubt); the others' bits may be either. */
TPD static uint32_t lb_pass16(const struct qctx *c, size_t slot, const double *cq, double t,
                              size_t *settled, uint32_t want)
{
	double k = shortcut_k(c, t);
	if (k > 0 && block_settled(c, slot, cq, k, want)) {
		*settled += 2;
		return 0;
	}
	return (uint32_t)lb_pass8(c, slot, cq, t, k, settled) |
	       (uint32_t)lb_pass8(c, slot + 8, cq + 8, t, k, settled) << 8;
}
#else
static uint32_t lb_pass16(const struct qctx *c, size_t slot, const double *cq, double t,
                          size_t *settled, uint32_t want)
{
	(void)c, (void)slot, (void)cq, (void)t, (void)settled, (void)want;
	return 0xffff; /* never called: the gate is AVX-512 only */
}
#endif

/* The query in two int8 terms, q' = t1 r1 + t2 r2 (t1 = max|q| / 127, t2
 * the same for the remainder), biased bytes into qp (2 * round_up(dim, 4)
 * bytes at buf). Returns own_q for the integer kernels: >= ||q - q'|| +
 * 1e-15 (t1 ||r1|| + t2 ||r2||), computed with room for its own roundings;
 * *own_q1 the same for an estimate from the first term alone (see
 * sq_screen). */
static double quantize_query(const float *q, size_t dim, struct qprep *qp, uint8_t *buf,
                             double *own_q1)
{
	size_t padded = (dim + 3) / 4 * 4;
	qp->ub1 = buf;
	qp->ub2 = buf + padded;
	memset(buf, 128, 2 * padded);
	double mx = 0;
	for (size_t j = 0; j < dim; j++) {
		double x = fabs((double)q[j]);
		mx = x > mx ? x : mx;
	}
	float t1 = (float)(mx / 127.0); /* > 0: the query is not in doubt */
	double rmx = 0;
	for (size_t j = 0; j < dim; j++) {
		double r = nearbyint(q[j] / (double)t1);
		r = r > 127 ? 127 : r < -127 ? -127 : r;
		qp->ub1[j] = (uint8_t)(r + 128);
		double x = fabs(q[j] - (double)t1 * r);
		rmx = x > rmx ? x : rmx;
	}
	float t2 = (float)(rmx / 127.0);
	double d2 = 0, n1 = 0, n2 = 0;
	for (size_t j = 0; j < dim; j++) {
		double r1 = (double)qp->ub1[j] - 128, r2 = 0;
		if (t2 > 0) {
			r2 = nearbyint((q[j] - (double)t1 * r1) / t2);
			r2 = r2 > 127 ? 127 : r2 < -127 ? -127 : r2;
			qp->ub2[j] = (uint8_t)(r2 + 128);
		}
		/* Whatever the codes, d2 measures the q' they make. */
		double d = (q[j] - (double)t1 * r1) - (double)t2 * r2;
		d2 += d * d;
		n1 += r1 * r1;
		n2 += r2 * r2;
	}
	qp->t1 = t1;
	qp->t2 = t2;
	/* d's first difference rounds relative to the remainder (at most
	 * t1 / 2 an element), not to d: t1 sqrt(n) covers it. */
	double own_q = widen_up(sqrt(d2) * (1 + BUILD_REL)) +
	               1e-15 * widen_up(t1 * sqrt(n1) + t2 * sqrt(n2) + t1 * sqrt((double)dim)) *
	                       (1 + BUILD_REL);
	/* With the first term alone, cq = fl(t1 a1) misses t2 (c.r2), at most
	 * t2 ||c|| ||r2|| (Cauchy-Schwarz; n2 is an exact integer sum). */
	*own_q1 = widen_up(own_q + widen_up(t2 * sqrt(n2) * (1 + BUILD_REL)));
	return own_q;
}

/* The cap smallest upper bounds seen: a max-heap, largest at h[0]. */
struct ub_heap {
	double *h;
	size_t n, cap;
};

static void heap_offer(struct ub_heap *hp, double x)
{
	double *h = hp->h;
	if (hp->cap == 0)
		return;
	if (hp->n < hp->cap) {
		size_t i = hp->n++;
		while (i > 0 && h[(i - 1) / 2] < x) {
			h[i] = h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h[i] = x;
		return;
	}
	if (!(x < h[0]))
		return;
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, big = i;
		double v = x;
		if (l < hp->n && h[l] > v) {
			big = l;
			v = h[l];
		}
		if (r < hp->n && h[r] > v)
			big = r;
		if (big == i)
			break;
		h[i] = h[big];
		i = big;
	}
	h[i] = x;
}

/* The current T: the cap-th smallest upper bound, +Inf until cap seen. */
static double heap_t(const struct ub_heap *hp)
{
	return hp->n == hp->cap && hp->cap ? hp->h[0] : INFINITY;
}

struct cand {
	uint32_t slot;
	double lb; /* -Inf for a row in doubt */
};

struct cands {
	struct cand *c;
	size_t n, cap;
};

static int cand_push(struct cands *cs, size_t slot, double lb)
{
	if (cs->n == cs->cap) {
		size_t ncap = cs->cap ? cs->cap * 2 : 256;
		struct cand *nc = realloc(cs->c, ncap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		cs->c = nc;
		cs->cap = ncap;
	}
	cs->c[cs->n++] = (struct cand){(uint32_t)slot, lb};
	return 0;
}

/* Whether a row whose distance is >= lb fails the threshold. */
static bool th_prunes(const struct vec_threshold *th, double lb)
{
	return th && (th->inclusive ? lb > th->value : lb >= th->value);
}

/* A query in doubt: max|q| outside [MAG_MIN, MAG_MAX], or not finite. */
static bool query_in_doubt(const float *q, size_t dim)
{
	double mx = 0;
	bool finite = true;
	for (size_t j = 0; j < dim; j++) {
		finite &= isfinite(q[j]) != 0;
		double x = fabs((double)q[j]);
		mx = x > mx ? x : mx;
	}
	return !finite || !(mx <= MAG_MAX) || mx < MAG_MIN;
}

int vec_knn_screened(const struct vec_table *t, const struct vec_screen *s, enum vec_metric m,
                     enum vec_arith arith, const float *q, size_t dim, size_t k, size_t offset,
                     const struct vec_threshold *th, const uint64_t *allowed, struct vec_hit *out,
                     size_t *n_out)
{
	struct vec_screen_stats st;
	return vec_knn_screened_stats(t, s, m, arith, q, dim, k, offset, th, allowed, out, n_out,
	                              &st);
}

/* Why the answer is vec_knn_arith's. Let M = offset + k (saturated): that
 * answer is hits [offset, M) of the total order (NULL first, then distance
 * d ascending, then row) over the allowed rows that pass the threshold (a
 * NULL never passes one). A row not in doubt is never NULL (see bounds())
 * and has lb <= d <= ub.
 *
 * Claim: an allowed row r not in doubt with lb_r > T, T the M-th smallest
 * ub over the allowed rows not in doubt (each row's ub as bounds() gives
 * it, which may be +Inf), is not among the first M. T is
 * finite, so there are M distinct such rows w with ub_w <= T; r is none of
 * them (ub_r >= lb_r > T). Each has d_w <= ub_w <= T < lb_r <= d_r, so
 * d_w < d_r strictly: w is before r whatever the tie-break by row. With a
 * threshold ("d < v" or "d <= v") that r passes, every w passes too,
 * since d_w < d_r. So at least M rows eligible for the answer precede r.
 * A row with lb > v (lb >= v for "<") fails the threshold outright.
 *
 * So every row of the first M is offered (the candidates, every row in
 * doubt, every allowed NULL row), and the first M of the offered rows,
 * a subset of the eligible rows containing the first M eligible ones, are
 * exactly those first M. The offered rows' distances come from the exact
 * kernels, so the selection, fed the same hits, keeps the same ones.
 *
 * The int8 pass keeps a running T (the M-th smallest ub so far, +Inf
 * before M rows), which only decreases to the final T: a row dropped
 * because lb > running T also has lb > final T. The survivors are then
 * filtered by the final T. A dropped row offers no ub to the heap, as if
 * its ub were +Inf (a valid upper bound), which changes no T the heap
 * computes once M rows are in it, and the pass never drops a row before.
 * Any valid lb may drop a row, so two cheaper ones come first on AVX-512:
 * lb_pass16 (the lb of bounds() itself, computed 16 rows at a time), and
 * with the VNNI kernel the two-stage pass: cq1 = fl(t1 a1) from the
 * query's first term alone satisfies |cq1 - c.q| <= ||c|| own_q1 +
 * own_uf, own_q1 = own_q + t2 ||r2|| (rounded up): c.q' - t1 a1 = t2 a2
 * and |a2| = |c.r2| <= ||c|| ||r2|| (Cauchy-Schwarz), the rounding of
 * fl(t1 a1) is inside own_q's 1e-15 term. So bounds() with own_q1 in
 * place of own_q (qctx c1) gives a valid, wider interval, and a row whose
 * lb from it exceeds the running T is dropped like any other; the second
 * term is summed only for blocks that keep a row. */
/* Whether sq_screen runs lb_pass16 before bounds(): on the AVX-512 scans
 * (forced or chosen) of a CPU with AVX-512DQ, unless a test turned it off. */
static _Atomic bool lb_gate_off;

void vec_screen_use_lb_gate(bool use)
{
	atomic_store_explicit(&lb_gate_off, !use, memory_order_relaxed);
}

static bool lb_gate_on(void)
{
#ifdef SCREEN_X86
	return !atomic_load_explicit(&lb_gate_off, memory_order_relaxed) &&
	       vec_scan_isa() == VEC_ISA_AVX512 && __builtin_cpu_supports("avx512dq");
#else
	return false;
#endif
}

/* One screened query through its phases: sq_begin (checks, the query's
 * constants), sq_screen over consecutive ranges of blocks (pass 1), and
 * sq_finish (pass 2). A batch runs pass 1 of every query over one group of
 * SCREEN_BATCH blocks after the other, so that their codes come from memory once
 * and from the cache for the other queries; each query's pass 1 still sees
 * every block in order, so its running T, candidates and answer are the
 * lone query's. */
struct sq {
	const struct vec_table *t;
	const struct vec_screen *s;
	enum vec_metric m;
	enum vec_arith arith;
	const float *q;
	size_t dim, k, offset, want;
	const struct vec_threshold *th;
	const uint64_t *allowed;
	struct vec_scan_query scan;
	struct qctx c;
	float_fn *ff;
	int_fn *fi;
	struct qprep qp;
	uint8_t *qbuf;
	struct ub_heap hp;
	struct cands cs;
	struct vec_screen_stats *st;
	bool lb_gate; /* lb_pass16 prunes before bounds() (AVX-512) */
	/* The VNNI pass in two stages: the query's first term for every block,
	 * its second only for blocks with a row that the first left in (c1:
	 * the bounds' constants with the first term's own_q). */
	bool two_stage;
	struct qctx c1;
	/* A batch's first-term sums, computed for several queries at once
	 * (dot_vnni_multi): pre[(b - pre_b) * W + lane] for the SCREEN_BATCH
	 * blocks from block pre_b; NULL: sq_screen sums them itself. */
	const int32_t *pre;
	size_t pre_b;
};

static void sq_free(struct sq *x)
{
	free(x->cs.c);
	free(x->hp.h);
	free(x->qbuf);
	x->cs.c = NULL;
	x->hp.h = NULL;
	x->qbuf = NULL;
}

/* 0 with *screen set when the query goes through the screen; 0 with
 * *screen false when it is answered otherwise: nothing to do (k == 0) or
 * by the plain exact scan (st->fallback); or the error vec_knn_arith
 * gives. */
static int sq_begin(struct sq *x, bool *screen)
{
	const struct vec_table *t = x->t;
	const struct vec_screen *s = x->s;
	struct vec_screen_stats *st = x->st;
	size_t dim = x->dim;
	*screen = false;
	memset(st, 0, sizeof(*st));
	st->blocks = t->n_blocks;
	if (t->n_mixed)
		return -EDOM;
	if (t->n_slots && dim != t->dim)
		return -EINVAL;
	if (s->t != t || s->n_slots != t->n_slots || s->dim != t->dim)
		return -EINVAL;
	int rc = vec_scan_prepare_arith(&x->scan, x->m, x->arith, x->q, dim);
	if (rc || x->k == 0)
		return rc;
	if (t->n_slots == 0 || dim == 0 || query_in_doubt(x->q, dim)) {
		st->fallback = true;
		st->blocks_exact = t->n_blocks;
		return 0;
	}

	struct qctx *c = &x->c;
	*c = (struct qctx){
	        .s = s, .m = x->m, .norms = vec_table_norms(t, x->arith), .nb = x->scan.qnorm};
	double qq = 0;
	for (size_t j = 0; j < dim; j++)
		qq += (double)x->q[j] * x->q[j];
	c->qq_lo = qq * (1 - BUILD_REL);
	c->qq_hi = qq * (1 + BUILD_REL);
	c->qn = widen_up(sqrt(c->qq_hi));
	c->g_n = s->drop_gamma ? 0 : gamma_k((double)dim);
	c->g_n2 = s->drop_gamma ? 0 : gamma_k((double)dim + 2);
	c->uf = s->drop_gamma ? 0 : ldexp((double)dim, -149);
	c->es = s->err_scale;
	pick_kernel(x->m, &x->ff, &x->fi);
	x->lb_gate = lb_gate_on();
	x->qp = (struct qprep){0, 0, NULL, NULL};
	if (x->fi) {
		x->qbuf = malloc(2 * ((dim + 3) / 4 * 4));
		if (!x->qbuf)
			return -ENOMEM;
		double own_q1;
		c->own_q = quantize_query(x->q, dim, &x->qp, x->qbuf, &own_q1);
		c->own_uf = 0;
		qctx_floats(c);
		x->c1 = *c;
		x->c1.own_q = own_q1;
		qctx_floats(&x->c1);
#ifdef SCREEN_X86
		x->two_stage = x->lb_gate && x->fi == dot_vnni;
#endif
	} else {
		c->own_q = c->g_n * c->qn;
		c->own_uf = c->uf;
		qctx_floats(c);
	}

	x->want = x->k > SIZE_MAX - x->offset ? SIZE_MAX : x->k + x->offset;
	/* Fewer slots than M: T stays +Inf (cap 0), every row is a candidate. */
	x->hp = (struct ub_heap){NULL, 0, x->want <= t->n_slots ? x->want : 0};
	x->cs = (struct cands){NULL, 0, 0};
	x->hp.h = malloc((x->hp.cap + 1) * sizeof(double));
	if (!x->hp.h) {
		sq_free(x);
		return -ENOMEM;
	}
	*screen = true;
	return 0;
}

#ifdef SCREEN_X86
/* The two-stage VNNI pass (x->two_stage): a1 for n blocks from b, and a2
 * for one block. */
static void screen_first_term(struct sq *x, size_t b, size_t n, int32_t *a1)
{
	const struct vec_screen *s = x->s;
	dot_vnni1(s->codes + b * x->dim * W, n, x->dim, x->qp.ub1, s->csum + b * W, a1);
}

static void screen_second_term(struct sq *x, size_t b, int32_t *a2)
{
	const struct vec_screen *s = x->s;
	dot_vnni1(s->codes + b * x->dim * W, 1, x->dim, x->qp.ub2, s->csum + b * W, a2);
}
#else
static void screen_first_term(struct sq *x, size_t b, size_t n, int32_t *a1)
{
	(void)x, (void)b, (void)n, (void)a1;
}

static void screen_second_term(struct sq *x, size_t b, int32_t *a2)
{
	(void)x, (void)b, (void)a2;
}
#endif

/* cq[l] = t1 * a[l] for a block's 16 lanes: each product of a double and
 * an int32 converted exactly is the same correctly rounded double in
 * vectors as in scalars. */
#ifdef SCREEN_X86
TPD static void first_estimates(double t1, const int32_t *a, double *cq)
{
	const __m512d t = _mm512_set1_pd(t1);
	_mm512_storeu_pd(
	        cq, _mm512_mul_pd(t, _mm512_cvtepi32_pd(_mm256_loadu_si256((const __m256i *)a))));
	_mm512_storeu_pd(
	        cq + 8,
	        _mm512_mul_pd(t, _mm512_cvtepi32_pd(_mm256_loadu_si256((const __m256i *)(a + 8)))));
}
#else
static void first_estimates(double t1, const int32_t *a, double *cq)
{
	for (size_t l = 0; l < W; l++)
		cq[l] = t1 * a[l];
}
#endif

/* Pass 1 over blocks [b, b_end): the int8 codes of every block with an
 * allowed row. Called for consecutive ranges from block 0 to the last. */
static int sq_screen(struct sq *x, size_t b, size_t b_end)
{
	const struct vec_table *t = x->t;
	const struct vec_screen *s = x->s;
	struct vec_screen_stats *st = x->st;
	size_t blk = x->dim * W;
	float est[SCREEN_BATCH * W];
	int32_t a1[SCREEN_BATCH * W], a2[SCREEN_BATCH * W];
	uint32_t masks[SCREEN_BATCH];
	int rc = 0;
	while (b < b_end && rc == 0) {
		size_t n = 0;
		while (n < SCREEN_BATCH && b + n < b_end &&
		       (masks[n] = vec_table_block_mask(t, b + n, x->allowed)) != 0)
			n++;
		if (n == 0) {
			b++;
			continue;
		}
		const int32_t *first = a1; /* the first term's sums of blocks b.. */
		if (x->two_stage && x->pre)
			first = x->pre + (b - x->pre_b) * W;
		else if (x->two_stage)
			screen_first_term(x, b, n, a1);
		else if (x->fi)
			x->fi(s->codes + b * blk, n, x->dim, &x->qp, s->csum + b * W, a1, a2);
		else
			x->ff(s->codes + b * blk, n, x->dim, x->q, s->scale + b * W, est);
		st->blocks_screened += n;
		bool gate = x->lb_gate && x->m != VEC_L1;
		for (size_t bi = 0; bi < n && rc == 0; bi++) {
			size_t slot0 = (b + bi) * W;
			uint32_t mask = masks[bi];
			st->rows_screened += (size_t)__builtin_popcount(mask);
			double T = heap_t(&x->hp);
			uint32_t doubt = 0; /* lanes in doubt: always candidates */
			for (size_t l = 0; s->n_doubt && l < W; l++)
				doubt |= (uint32_t)(s->doubt[slot0 + l] != 0) << l;
			if (x->two_stage) {
				/* The first term's bounds (c1) prune for good; the second
				 * term is summed only for a block with a row left. */
				if (T < INFINITY) {
					double cq1[W];
					first_estimates(x->qp.t1, first + bi * W, cq1);
					mask &= lb_pass16(&x->c1, slot0, cq1, T, &st->lb_shortcut,
					                  mask & ~doubt) |
					        doubt;
				}
				if (!mask)
					continue;
				screen_second_term(x, b + bi, a2 + bi * W);
				st->blocks_second++;
			}
			double cq[W]; /* each lane's estimate of c.q, as bounds() takes it */
			for (size_t l = 0; l < W; l++) {
				size_t i = bi * W + l;
				cq[l] = x->fi ? x->qp.t1 * first[i] + x->qp.t2 * a2[i]
				              : (double)est[i];
			}
			if (gate && T < INFINITY)
				/* Lanes whose lb is above the running T (no lower than
				 * the final one) and that are not in doubt are pruned
				 * here as bounds() would prune them: they would enter
				 * neither the heap (ub = +Inf) nor the candidates. */
				mask &= lb_pass16(&x->c, slot0, cq, T, &st->lb_shortcut,
				                  mask & ~doubt) |
				        doubt;
			for (; mask && rc == 0; mask &= mask - 1) {
				size_t l = (size_t)__builtin_ctz(mask), slot = slot0 + l;
				if (doubt >> l & 1) {
					rc = cand_push(&x->cs, slot, -INFINITY);
					continue;
				}
				double lb, ub;
				bounds(&x->c, slot, cq[l], heap_t(&x->hp), &lb, &ub);
				heap_offer(&x->hp, ub);
				if (lb <= heap_t(&x->hp) && !th_prunes(x->th, lb))
					rc = cand_push(&x->cs, slot, lb);
			}
		}
		b += n;
	}
	return rc;
}

int vec_screen_check_lb_shortcut(const struct vec_table *t, const struct vec_screen *s,
                                 enum vec_metric m, enum vec_arith arith, const float *q,
                                 size_t dim, size_t *unsound, size_t *settled)
{
	struct vec_screen_stats st;
	struct sq x = {
	        .t = t, .s = s, .m = m, .arith = arith, .q = q, .dim = dim, .k = 1, .st = &st};
	bool screen;
	*unsound = *settled = 0;
	int rc = sq_begin(&x, &screen);
	if (rc || !screen)
		return rc ? rc : -EDOM;
#ifdef SCREEN_X86
	if (x.lb_gate && m != VEC_L1) {
		int32_t a1[W], a2[W];
		float est[W];
		for (size_t b = 0; b < t->n_blocks; b++) {
			size_t slot0 = b * W;
			double cq[W], lb[W], cq1[W], lb1[W], ub;
			if (x.fi)
				x.fi(s->codes + slot0 * dim, 1, dim, &x.qp, s->csum + slot0, a1,
				     a2);
			else
				x.ff(s->codes + slot0 * dim, 1, dim, q, s->scale + slot0, est);
			uint32_t want = 0; /* lanes with a bound */
			for (size_t l = 0; l < W; l++) {
				cq[l] = x.fi ? x.qp.t1 * a1[l] + x.qp.t2 * a2[l] : (double)est[l];
				cq1[l] = x.fi ? x.qp.t1 * a1[l] : 0;
				lb[l] = lb1[l] = INFINITY; /* spare lanes and rows in doubt */
				if (slot0 + l < t->n_slots && !s->doubt[slot0 + l]) {
					bounds(&x.c, slot0 + l, cq[l], INFINITY, &lb[l], &ub);
					if (x.two_stage)
						bounds(&x.c1, slot0 + l, cq1[l], INFINITY, &lb1[l],
						       &ub);
					want |= 1u << l;
				}
			}
			/* t at each lane's own bound, just below and just above it */
			for (size_t l = 0; l < W; l++) {
				if (!(lb[l] < INFINITY))
					continue;
				const double ts[3] = {lb[l], nextafter(lb[l], -INFINITY),
				                      nextafter(lb[l], INFINITY)};
				for (size_t ti = 0; ti < 3; ti++) {
					double k = shortcut_k(&x.c, ts[ti]);
					/* Each group of eight as lb_pass16 passes it. */
					for (size_t g = 0; g < 2; g++) {
						size_t one = 0;
						(void)lb_pass8(&x.c, slot0 + g * 8, cq + g * 8,
						               ts[ti], k, &one);
						*settled += one;
						bool bad = false;
						for (size_t i = g * 8; one && i < g * 8 + 8; i++)
							bad |= lb[i] <= ts[ti];
						*unsound += bad;
					}
				}
			}
			/* The whole block as block_settled sees it, with both
			 * terms (x.c) and with the first alone (x.c1, the two-stage
			 * pass's first step), t at the block's smallest bound, one
			 * ulp above it, and 1e-7 to 1e-2 of it below. */
			for (int stage = 0; stage < 2 && want; stage++) {
				const struct qctx *c = stage ? &x.c1 : &x.c;
				const double *e = stage ? cq1 : cq, *bl = stage ? lb1 : lb;
				if (stage && !x.two_stage)
					continue;
				double lo = INFINITY;
				for (size_t i = 0; i < W; i++)
					if (want >> i & 1 && bl[i] < lo)
						lo = bl[i];
				if (!(lo < INFINITY))
					continue;
				static const double below[] = {0,    1e-7, 1e-6, 1e-5,
				                               1e-4, 1e-3, 1e-2};
				for (size_t d = 0; d <= sizeof(below) / sizeof(below[0]); d++) {
					double ts = d == sizeof(below) / sizeof(below[0])
					                    ? nextafter(lo, INFINITY)
					                    : lo - fabs(lo) * below[d];
					double kc = shortcut_k(c, ts);
					if (!(kc > 0) || !block_settled(c, slot0, e, kc, want))
						continue;
					++*settled;
					bool bad = false;
					for (size_t i = 0; i < W; i++)
						bad |= (want >> i & 1) && bl[i] <= ts;
					*unsound += bad;
				}
			}
		}
	}
#endif
	sq_free(&x);
	return 0;
}

/* Pass 2: the final T, then the survivors' blocks, exactly. Frees what
 * sq_begin took. */
static int sq_finish(struct sq *x, struct vec_hit *out, size_t *n_out)
{
	const struct vec_table *t = x->t;
	const struct vec_screen *s = x->s;
	struct vec_screen_stats *st = x->st;
	struct cands *cs = &x->cs;
	double T = heap_t(&x->hp);
	size_t nc = 0;
	for (size_t i = 0; i < cs->n; i++)
		if (cs->c[i].lb <= T) {
			st->doubt += s->doubt[cs->c[i].slot];
			cs->c[nc++] = cs->c[i];
		}
	st->candidates = nc;
	struct vec_topk top;
	int rc = vec_topk_init(&top, x->want, t->n_null + nc, x->th);
	if (rc) {
		sq_free(x);
		return rc;
	}
	for (size_t i = 0; i < t->n_null && rc == 0; i++)
		if (vec_row_allowed(x->allowed, t->null_rows[i]))
			rc = vec_topk_offer(&top, t->null_rows[i], NAN, true);

	float acc[EXACT_BATCH * W];
	double d[EXACT_BATCH * W];
	bool nul[EXACT_BATCH * W];
	for (size_t ci = 0; ci < nc && rc == 0;) {
		size_t b0 = cs->c[ci].slot / W, run;
		const float *fb = vec_table_block(t, b0, &run);
		if (run > EXACT_BATCH)
			run = EXACT_BATCH;
		/* Consecutive blocks that all hold a candidate go in one call. */
		size_t n = 1, cj = ci;
		for (;;) {
			while (cj < nc && cs->c[cj].slot / W < b0 + n)
				cj++;
			if (cj < nc && n < run && cs->c[cj].slot / W == b0 + n)
				n++;
			else
				break;
		}
		size_t rows = t->n_slots - b0 * W < n * W ? t->n_slots - b0 * W : n * W;
		vec_scan_sums(&x->scan, fb, n, acc);
		vec_scan_finish(&x->scan, acc, x->c.norms ? x->c.norms + b0 * W : NULL, rows, d,
		                nul);
		st->blocks_exact += n;
		for (; ci < cj && rc == 0; ci++) {
			size_t i = cs->c[ci].slot - b0 * W;
			rc = vec_topk_offer(&top, vec_table_slot_row(t, cs->c[ci].slot), d[i],
			                    nul[i]);
		}
		ci = cj;
	}
	if (rc == 0)
		*n_out = vec_topk_finish(&top, x->offset, x->k, out);
	vec_topk_free(&top);
	sq_free(x);
	return rc;
}

/* sq_begin; a query in doubt (*screen false, st->fallback) is answered
 * into out by the plain exact scan. */
static int sq_begin_or_exact(struct sq *x, bool *screen, struct vec_hit *out, size_t *n_out)
{
	int rc = sq_begin(x, screen);
	if (rc == 0 && !*screen && x->st->fallback)
		rc = vec_knn_arith(x->t, x->m, x->arith, x->q, x->dim, x->k, x->offset, x->th,
		                   x->allowed, out, n_out);
	return rc;
}

int vec_knn_screened_stats(const struct vec_table *t, const struct vec_screen *s, enum vec_metric m,
                           enum vec_arith arith, const float *q, size_t dim, size_t k,
                           size_t offset, const struct vec_threshold *th, const uint64_t *allowed,
                           struct vec_hit *out, size_t *n_out, struct vec_screen_stats *st)
{
	struct sq x = {.t = t,
	               .s = s,
	               .m = m,
	               .arith = arith,
	               .q = q,
	               .dim = dim,
	               .k = k,
	               .offset = offset,
	               .th = th,
	               .allowed = allowed,
	               .st = st};
	bool screen;
	*n_out = 0;
	int rc = sq_begin_or_exact(&x, &screen, out, n_out);
	if (rc || !screen)
		return rc;
	rc = sq_screen(&x, 0, t->n_blocks);
	if (rc) {
		sq_free(&x);
		return rc;
	}
	return sq_finish(&x, out, n_out);
}

/* x set up for query bq of a batch or sweep (sq_begin comes next). */
static void sq_of(struct sq *x, const struct vec_table *t, const struct vec_screen *s,
                  enum vec_metric m, enum vec_arith arith, const struct vec_batch_query *bq,
                  struct vec_screen_stats *st)
{
	*x = (struct sq){.t = t,
	                 .s = s,
	                 .m = m,
	                 .arith = arith,
	                 .q = bq->q,
	                 .dim = bq->dim,
	                 .k = bq->k,
	                 .offset = bq->offset,
	                 .th = bq->th,
	                 .allowed = bq->allowed,
	                 .st = st};
}

/* The first-term sums of a batch's two-stage queries for SCREEN_BATCH
 * blocks, summed together (dot_vnni_multi) before each query's sq_screen
 * reads its own. */
struct pre_batch {
	size_t n;
	const uint8_t **ub;
	int32_t **out;
	int32_t *sums; /* n * SCREEN_BATCH * W */
};

static void pre_free(struct pre_batch *pb)
{
	free(pb->ub);
	free(pb->out);
	free(pb->sums);
	*pb = (struct pre_batch){0};
}

/* Points two-stage query x at the next share of pb's sums (room for it). */
static void pre_add(struct pre_batch *pb, struct sq *x)
{
	pb->ub[pb->n] = x->qp.ub1;
	pb->out[pb->n] = pb->sums + pb->n * SCREEN_BATCH * W;
	x->pre = pb->out[pb->n];
	pb->n++;
}

/* Points each two-stage query of the batch at its share of pb's sums;
 * false (nothing changed) when out of memory: each sums its own. */
static bool multi_first_term(struct sq *x, const bool *screen, size_t n, size_t n_multi,
                             struct pre_batch *pb)
{
	pb->ub = malloc(n_multi * sizeof(*pb->ub));
	pb->out = malloc(n_multi * sizeof(*pb->out));
	pb->sums = malloc(n_multi * SCREEN_BATCH * W * sizeof(*pb->sums));
	if (!pb->ub || !pb->out || !pb->sums) {
		pre_free(pb);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (screen[i] && x[i].two_stage)
			pre_add(pb, &x[i]);
	return true;
}

/* pb's sums for blocks [b, e) (at most SCREEN_BATCH), which the queries'
 * next sq_screen(b, e) reads. */
static void pre_sums(struct pre_batch *pb, const struct vec_screen *s, size_t dim, size_t b,
                     size_t e)
{
#ifdef SCREEN_X86
	dot_vnni_multi(s->codes + b * dim * W, e - b, dim, pb->ub, pb->n, s->csum + b * W, pb->out);
#else
	(void)pb, (void)s, (void)dim, (void)b, (void)e;
#endif
}

int vec_knn_screened_batch(const struct vec_table *t, const struct vec_screen *s, enum vec_metric m,
                           enum vec_arith arith, struct vec_batch_query *qs, size_t n,
                           struct vec_screen_stats *st)
{
	struct sq *x = calloc(n ? n : 1, sizeof(*x));
	struct vec_screen_stats *sts = calloc(n ? n : 1, sizeof(*sts));
	bool *screen = calloc(n ? n : 1, sizeof(*screen));
	struct vec_batch_query *plain = calloc(n ? n : 1, sizeof(*plain));
	size_t *plain_of = calloc(n ? n : 1, sizeof(*plain_of));
	struct pre_batch pre = {0};
	int first = 0;
	if (st)
		memset(st, 0, sizeof(*st));
	if (!x || !sts || !screen || !plain || !plain_of) {
		for (size_t i = 0; i < n; i++) {
			qs[i].n_out = 0;
			qs[i].rc = -ENOMEM;
		}
		first = n ? -ENOMEM : 0;
		goto done;
	}
	size_t n_plain = 0, n_screen = 0;
	for (size_t i = 0; i < n; i++) {
		struct vec_batch_query *bq = &qs[i];
		sq_of(&x[i], t, s, m, arith, bq, &sts[i]);
		bq->n_out = 0;
		bq->rc = sq_begin(&x[i], &screen[i]);
		n_screen += screen[i];
		if (bq->rc == 0 && !screen[i] && sts[i].fallback) {
			/* In doubt: the plain exact scans, one shared pass for all. */
			plain[n_plain] = *bq;
			plain_of[n_plain++] = i;
		}
	}
	if (n_plain) {
		int rc = vec_knn_batch(t, m, arith, plain, n_plain);
		(void)rc; /* each query's rc says how it ended */
		for (size_t j = 0; j < n_plain; j++) {
			qs[plain_of[j]].rc = plain[j].rc;
			qs[plain_of[j]].n_out = plain[j].n_out;
		}
	}
	if (n_screen) {
		/* Queries whose first term several can sum at once: theirs are
		 * summed together, SCREEN_BATCH blocks at a time. */
		size_t n_multi = 0;
		for (size_t i = 0; i < n; i++)
			n_multi += screen[i] && x[i].two_stage;
		if (n_multi < 2 || !multi_first_term(x, screen, n, n_multi, &pre))
			n_multi = 0;
		if (st)
			st->shared_first = n_multi;
		/* Pass 1 of every query over SCREEN_BATCH blocks after the other
		 * (196 KiB of codes at 768 dimensions: they stay in the core's
		 * cache while each query reads them). */
		for (size_t b = 0; b < t->n_blocks; b += SCREEN_BATCH) {
			size_t e = t->n_blocks - b < SCREEN_BATCH ? t->n_blocks : b + SCREEN_BATCH;
			if (n_multi)
				pre_sums(&pre, s, t->dim, b, e);
			for (size_t i = 0; i < n; i++) {
				x[i].pre_b = b;
				if (screen[i] && qs[i].rc == 0)
					qs[i].rc = sq_screen(&x[i], b, e);
			}
		}
		pre_free(&pre);
		for (size_t i = 0; i < n; i++) {
			if (!screen[i])
				continue;
			if (qs[i].rc == 0)
				qs[i].rc = sq_finish(&x[i], qs[i].out, &qs[i].n_out);
			else
				sq_free(&x[i]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (qs[i].rc && !first)
			first = qs[i].rc;
		if (st) {
			st->blocks = sts[i].blocks;
			st->blocks_screened += sts[i].blocks_screened;
			st->rows_screened += sts[i].rows_screened;
			st->blocks_exact += sts[i].blocks_exact;
			st->blocks_second += sts[i].blocks_second;
			st->lb_shortcut += sts[i].lb_shortcut;
			st->candidates += sts[i].candidates;
			st->doubt += sts[i].doubt;
			st->fallback |= sts[i].fallback;
		}
	}
done:
	free(x);
	free(sts);
	free(screen);
	free(plain);
	free(plain_of);
	return first;
}

/* ---- sweeps: a shared pass that queries join while it runs ----
 *
 * Each query's pass 1 reads the tiles from the one the sweep was at when it
 * joined to the last, then from the first back to where it started. Its
 * answer is the same as from block 0 on: the running T is the k-th
 * smallest upper bound among the rows read so far, so it is never below
 * the final one whatever the order; a row is dropped only when its lower
 * bound is above the running T, hence above the final T; sq_finish keeps
 * exactly the candidates with lb <= the final T, computes them exactly, and
 * the top-k takes offers in any order (ties by row). Only the candidate
 * list's order changes: it is two ascending runs (from the start, then
 * after the wrap), which are put back in slot order before sq_finish. */
struct sweep_q {
	bool used;
	struct vec_batch_query *bq;
	struct sq x;
	struct vec_screen_stats st;
	size_t left;    /* tiles still to read */
	size_t wrap_at; /* candidates found before the sweep wrapped to tile 0 */
	bool shared;    /* a step read a tile for it and another query */
};

struct vec_sweep {
	const struct vec_table *t;
	const struct vec_screen *s;
	enum vec_metric m;
	enum vec_arith arith;
	size_t tile, n_tiles;
	size_t n;
	struct sweep_q q[VEC_SWEEP_MAX];
	/* The first-term sums of the two-stage queries, summed together:
	 * pre's ub and out are these, its sums VEC_SWEEP_MAX tiles' worth. */
	const uint8_t *ub[VEC_SWEEP_MAX];
	int32_t *out[VEC_SWEEP_MAX];
	struct pre_batch pre;
};

struct vec_sweep *vec_sweep_new(const struct vec_table *t, const struct vec_screen *s,
                                enum vec_metric m, enum vec_arith arith)
{
	struct vec_sweep *w = calloc(1, sizeof(*w));
	int32_t *sums = malloc(VEC_SWEEP_MAX * SCREEN_BATCH * W * sizeof(*sums));
	if (!w || !sums) {
		free(w);
		free(sums);
		return NULL;
	}
	w->t = t;
	w->s = s;
	w->m = m;
	w->arith = arith;
	w->n_tiles = (t->n_blocks + SCREEN_BATCH - 1) / SCREEN_BATCH;
	w->pre = (struct pre_batch){.ub = w->ub, .out = w->out, .sums = sums};
	return w;
}

size_t vec_sweep_size(const struct vec_sweep *w)
{
	return w->n;
}

/* Reverses c[0..n). */
static void cands_reverse(struct cand *c, size_t n)
{
	for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
		struct cand tmp = c[i];
		c[i] = c[j - 1];
		c[j - 1] = tmp;
	}
}

/* Answers q (its round complete): its candidates back in slot order, then
 * sq_finish. */
static void sweep_finish(struct sweep_q *q)
{
	struct cands *cs = &q->x.cs;
	if (q->wrap_at > 0 && q->wrap_at < cs->n) {
		/* [before the wrap][after it] -> [after][before]: both runs are
		 * ascending and every slot after the wrap is below every slot
		 * before it. */
		cands_reverse(cs->c, q->wrap_at);
		cands_reverse(cs->c + q->wrap_at, cs->n - q->wrap_at);
		cands_reverse(cs->c, cs->n);
	}
	q->bq->rc = sq_finish(&q->x, q->bq->out, &q->bq->n_out);
}

int vec_sweep_add(struct vec_sweep *w, struct vec_batch_query *bq)
{
	if (w->n == VEC_SWEEP_MAX)
		return -EBUSY;
	struct sweep_q *q = NULL;
	for (size_t i = 0; i < VEC_SWEEP_MAX && !q; i++)
		if (!w->q[i].used)
			q = &w->q[i];
	*q = (struct sweep_q){.bq = bq, .left = w->n_tiles};
	sq_of(&q->x, w->t, w->s, w->m, w->arith, bq, &q->st);
	bool screen;
	bq->n_out = 0;
	bq->rc = sq_begin_or_exact(&q->x, &screen, bq->out, &bq->n_out);
	if (bq->rc || !screen)
		return 1;
	if (w->n_tiles == 0) { /* nothing to read: NULL rows only, or none */
		sweep_finish(q);
		return 1;
	}
	q->used = true;
	w->n++;
	return 0;
}

size_t vec_sweep_step(struct vec_sweep *w, struct vec_batch_query **done, bool *shared)
{
	size_t nd = 0;
	if (w->n == 0)
		return 0;
	size_t b = w->tile * SCREEN_BATCH;
	size_t e = w->t->n_blocks - b < SCREEN_BATCH ? w->t->n_blocks : b + SCREEN_BATCH;
	/* The two-stage queries' first terms, summed together when there are
	 * several. */
	size_t n_multi = 0;
	for (size_t i = 0; i < VEC_SWEEP_MAX; i++)
		n_multi += w->q[i].used && w->q[i].x.two_stage;
	w->pre.n = 0;
	for (size_t i = 0; i < VEC_SWEEP_MAX; i++) {
		struct sq *x = &w->q[i].x;
		x->pre = NULL;
		x->pre_b = b;
		if (n_multi >= 2 && w->q[i].used && x->two_stage)
			pre_add(&w->pre, x);
	}
	if (w->pre.n)
		pre_sums(&w->pre, w->s, w->t->dim, b, e);
	bool wraps = w->tile + 1 == w->n_tiles;
	size_t held = w->n;
	for (size_t i = 0; i < VEC_SWEEP_MAX; i++) {
		struct sweep_q *q = &w->q[i];
		if (!q->used)
			continue;
		int rc = sq_screen(&q->x, b, e);
		q->left--;
		q->shared |= held >= 2;
		if (rc == 0 && wraps && q->left > 0)
			q->wrap_at = q->x.cs.n;
		if (rc == 0 && q->left > 0)
			continue;
		if (rc) {
			q->bq->rc = rc;
			q->bq->n_out = 0;
			sq_free(&q->x);
		} else {
			sweep_finish(q);
		}
		q->used = false;
		w->n--;
		if (shared)
			shared[nd] = q->shared;
		done[nd++] = q->bq;
	}
	w->tile = wraps ? 0 : w->tile + 1;
	return nd;
}

void vec_sweep_free(struct vec_sweep *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < VEC_SWEEP_MAX; i++)
		if (w->q[i].used) {
			w->q[i].bq->rc = -ECANCELED;
			w->q[i].bq->n_out = 0;
			sq_free(&w->q[i].x);
		}
	free(w->pre.sums);
	free(w);
}
