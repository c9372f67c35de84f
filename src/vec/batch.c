/* vec_knn_batch: the blocks are read a short run at a time; for each block
 * and element j, the 16 rows' values are loaded once and each query of a
 * group accumulates them into its own register (one per query on AVX-512,
 * two halves on AVX2, an array lane by lane in the scalar fallback). Each
 * lane's step is the single-query kernel's (scan_x86.c, scan.c): separate
 * multiply and add, or one fused multiply-add, in element order, so every
 * query's sums are bit for bit those of its own scan. Each query's sums then
 * go through vec_scan_finish and into its own top-k, exactly as knn.c does.
 * Built with -ffp-contract=off like the rest of src/vec. */
#include "vec/batch.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vec/scan.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BATCH_X86 1
#endif

#define W VEC_BLOCK_W
/* Blocks per kernel call: a run of 768-dimensional blocks (192 KiB) stays
 * in L2 while a second group of queries reads it again, and the run's sums
 * (RUN * W per query) stay in L1. */
#define RUN 4
/* Most queries summed in one group: AVX-512 keeps one register of 16 lanes
 * per query, 16 of its 32, leaving room for the loaded elements, the
 * broadcast query element and a difference. More queries make more groups,
 * each reading the run again (from L2). */
#define GROUP_MAX 16
/* AVX2 keeps two 8-lane registers per query in 16: 6 queries (12), the two
 * loaded halves, the broadcast and a difference. */
#define GROUP_AVX2 6

/* Sums of nblk contiguous blocks for g queries whose elements are
 * transposed in qt (element j of the group's query i at qt[j * g + i]):
 * query i's lane sums of block b go to acc[i * stride + b * W + lane]. */
typedef void bkernel_fn(const float *blocks, size_t nblk, size_t dim, const float *qt, size_t g,
                        float *acc, size_t stride);

/* ---- scalar: any CPU, and NEON (whose single-query kernels give the
 * same bits as every other ISA's) ---- */

static inline float t_dot(float s, float a, float q)
{
	return s + a * q; /* two roundings: the build never contracts */
}

static inline float t_l2sq(float s, float a, float q)
{
	float d = a - q;
	return s + d * d;
}

static inline float t_l1(float s, float a, float q)
{
	return s + fabsf(a - q);
}

static inline float t_dot_fused(float s, float a, float q)
{
	return fmaf(a, q, s);
}

static inline float t_l2sq_fused(float s, float a, float q)
{
	float d = a - q;
	return fmaf(d, d, s);
}

#define KERNEL_SCALAR(name, STEP)                                                                  \
	static void name(const float *blocks, size_t nblk, size_t dim, const float *qt, size_t g,  \
	                 float *acc, size_t stride)                                                \
	{                                                                                          \
		for (size_t b = 0; b < nblk; b++) {                                                \
			const float *p = blocks + b * dim * W;                                     \
			float s[GROUP_MAX][W];                                                     \
			memset(s, 0, sizeof(s));                                                   \
			for (size_t j = 0; j < dim; j++) {                                         \
				const float *a = p + j * W, *qj = qt + j * g;                      \
				for (size_t i = 0; i < g; i++)                                     \
					for (size_t l = 0; l < W; l++)                             \
						s[i][l] = STEP(s[i][l], a[l], qj[i]);              \
			}                                                                          \
			for (size_t i = 0; i < g; i++)                                             \
				memcpy(acc + i * stride + b * W, s[i], sizeof(s[i]));              \
		}                                                                                  \
	}

KERNEL_SCALAR(dot_scalar, t_dot)
KERNEL_SCALAR(l2sq_scalar, t_l2sq)
KERNEL_SCALAR(l1_scalar, t_l1)
KERNEL_SCALAR(dot_fused_scalar, t_dot_fused)
KERNEL_SCALAR(l2sq_fused_scalar, t_l2sq_fused)

#ifdef BATCH_X86
#define INLINE inline __attribute__((always_inline))

/* The kernels are written once for any group size g and instantiated for
 * each g from 1 to the group maximum (a switch on constants), so that the
 * compiler unrolls the loop over the group and keeps every query's sums in
 * registers. */
#define CASE(f, n)                                                                                 \
	case n:                                                                                    \
		f##_g(blocks, nblk, dim, qt, n, acc, stride);                                      \
		return;
#define CASES6(f) CASE(f, 1) CASE(f, 2) CASE(f, 3) CASE(f, 4) CASE(f, 5) CASE(f, 6)
#define CASES16(f)                                                                                 \
	CASES6(f)                                                                                  \
	CASE(f, 7)                                                                                 \
	CASE(f, 8)                                                                                 \
	CASE(f, 9)                                                                                 \
	CASE(f, 10) CASE(f, 11) CASE(f, 12) CASE(f, 13) CASE(f, 14) CASE(f, 15) CASE(f, 16)

/* Left to itself the compiler folds the block's load into every query's
 * multiply, so each element is read from L1 once per query, and the loads
 * (with the broadcasts of the query elements) become the bottleneck. An
 * empty asm that claims to change the register makes it load once. */
#define KEEP_IN_REGISTER(x) __asm__("" : "+v"(x))

#define T512 __attribute__((target("avx512f")))

/* The steps of scan_x86.c's KERNEL512, one lane per row. */
T512 static INLINE __m512 dot512(__m512 s, __m512 a, __m512 q)
{
	return _mm512_add_ps(s, _mm512_mul_ps(a, q));
}

T512 static INLINE __m512 l2sq512(__m512 s, __m512 a, __m512 q)
{
	__m512 d = _mm512_sub_ps(a, q);
	return _mm512_add_ps(s, _mm512_mul_ps(d, d));
}

T512 static INLINE __m512 l1512(__m512 s, __m512 a, __m512 q)
{
	return _mm512_add_ps(s, _mm512_abs_ps(_mm512_sub_ps(a, q)));
}

T512 static INLINE __m512 dot_fused512(__m512 s, __m512 a, __m512 q)
{
	return _mm512_fmadd_ps(a, q, s);
}

T512 static INLINE __m512 l2sq_fused512(__m512 s, __m512 a, __m512 q)
{
	__m512 d = _mm512_sub_ps(a, q);
	return _mm512_fmadd_ps(d, d, s);
}

#define KERNEL512(name, STEP)                                                                      \
	T512 static INLINE void name##_g(const float *blocks, size_t nblk, size_t dim,             \
	                                 const float *qt, const size_t g, float *acc,              \
	                                 size_t stride)                                            \
	{                                                                                          \
		for (size_t b = 0; b < nblk; b++) {                                                \
			const float *p = blocks + b * dim * W;                                     \
			__m512 s[GROUP_MAX];                                                       \
			_Pragma("GCC unroll 16") for (size_t i = 0; i < g; i++) s[i] =             \
			        _mm512_setzero_ps();                                               \
			for (size_t j = 0; j < dim; j++) {                                         \
				__m512 a = _mm512_load_ps(p + j * W);                              \
				KEEP_IN_REGISTER(a);                                               \
				const float *qj = qt + j * g;                                      \
				_Pragma("GCC unroll 16") for (size_t i = 0; i < g; i++) s[i] =     \
				        STEP(s[i], a, _mm512_set1_ps(qj[i]));                      \
			}                                                                          \
			_Pragma("GCC unroll 16") for (size_t i = 0; i < g; i++)                    \
			        _mm512_storeu_ps(acc + i * stride + b * W, s[i]);                  \
		}                                                                                  \
	}                                                                                          \
	T512 static void name(const float *blocks, size_t nblk, size_t dim, const float *qt,       \
	                      size_t g, float *acc, size_t stride)                                 \
	{                                                                                          \
		switch (g) {                                                                       \
			CASES16(name)                                                              \
		default:                                                                           \
			abort(); /* groups never exceed GROUP_MAX */                               \
		}                                                                                  \
	}

KERNEL512(dot_avx512, dot512)
KERNEL512(l2sq_avx512, l2sq512)
KERNEL512(l1_avx512, l1512)
KERNEL512(dot_fused_avx512, dot_fused512)
KERNEL512(l2sq_fused_avx512, l2sq_fused512)

/* AVX2: lanes 0-7 and 8-15 of a block in two registers per query, as
 * scan_x86.c's KERNEL256. The fused steps need FMA besides AVX2; the
 * dispatch below runs them only where scan.c would (vec_isa_for_arith). */
#define T256  __attribute__((target("avx2")))
#define T256F __attribute__((target("avx2,fma")))

T256 static INLINE __m256 dot256(__m256 s, __m256 a, __m256 q)
{
	return _mm256_add_ps(s, _mm256_mul_ps(a, q));
}

T256 static INLINE __m256 l2sq256(__m256 s, __m256 a, __m256 q)
{
	__m256 d = _mm256_sub_ps(a, q);
	return _mm256_add_ps(s, _mm256_mul_ps(d, d));
}

/* |x| by clearing the sign bit, as scan_x86.c's mask 0x7fffffff does. */
T256 static INLINE __m256 l1256(__m256 s, __m256 a, __m256 q)
{
	return _mm256_add_ps(s, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(a, q)));
}

T256F static INLINE __m256 dot_fused256(__m256 s, __m256 a, __m256 q)
{
	return _mm256_fmadd_ps(a, q, s);
}

T256F static INLINE __m256 l2sq_fused256(__m256 s, __m256 a, __m256 q)
{
	__m256 d = _mm256_sub_ps(a, q);
	return _mm256_fmadd_ps(d, d, s);
}

#define KERNEL256(name, TARGET, STEP)                                                              \
	TARGET static INLINE void name##_g(const float *blocks, size_t nblk, size_t dim,           \
	                                   const float *qt, const size_t g, float *acc,            \
	                                   size_t stride)                                          \
	{                                                                                          \
		for (size_t b = 0; b < nblk; b++) {                                                \
			const float *p = blocks + b * dim * W;                                     \
			__m256 s0[GROUP_AVX2], s1[GROUP_AVX2];                                     \
			_Pragma("GCC unroll 6") for (size_t i = 0; i < g; i++) s0[i] = s1[i] =     \
			        _mm256_setzero_ps();                                               \
			for (size_t j = 0; j < dim; j++) {                                         \
				__m256 a0 = _mm256_load_ps(p + j * W);                             \
				__m256 a1 = _mm256_load_ps(p + j * W + 8);                         \
				KEEP_IN_REGISTER(a0);                                              \
				KEEP_IN_REGISTER(a1);                                              \
				const float *qj = qt + j * g;                                      \
				_Pragma("GCC unroll 6") for (size_t i = 0; i < g; i++)             \
				{                                                                  \
					const __m256 qb = _mm256_set1_ps(qj[i]);                   \
					s0[i] = STEP(s0[i], a0, qb);                               \
					s1[i] = STEP(s1[i], a1, qb);                               \
				}                                                                  \
			}                                                                          \
			_Pragma("GCC unroll 6") for (size_t i = 0; i < g; i++)                     \
			{                                                                          \
				_mm256_storeu_ps(acc + i * stride + b * W, s0[i]);                 \
				_mm256_storeu_ps(acc + i * stride + b * W + 8, s1[i]);             \
			}                                                                          \
		}                                                                                  \
	}                                                                                          \
	TARGET static void name(const float *blocks, size_t nblk, size_t dim, const float *qt,     \
	                        size_t g, float *acc, size_t stride)                               \
	{                                                                                          \
		switch (g) {                                                                       \
			CASES6(name)                                                               \
		default:                                                                           \
			abort(); /* groups never exceed GROUP_AVX2 */                              \
		}                                                                                  \
	}

KERNEL256(dot_avx2, T256, dot256)
KERNEL256(l2sq_avx2, T256, l2sq256)
KERNEL256(l1_avx2, T256, l1256)
KERNEL256(dot_fused_avx2, T256F, dot_fused256)
KERNEL256(l2sq_fused_avx2, T256F, l2sq_fused256)
#endif

/* The kernel the single-query scan of sq would run (the same sums, the
 * same ISA where there is a batch kernel for it), and its group size. */
static bkernel_fn *pick_kernel(const struct vec_scan_query *sq, size_t *group)
{
	bool fused = vec_arith_of_metric(sq->arith, sq->metric) == VEC_ARITH_FUSED;
	enum { DOT, L2SQ, L1 } kind = sq->metric == VEC_L2 ? L2SQ : sq->metric == VEC_L1 ? L1 : DOT;
#ifdef BATCH_X86
	if (sq->isa == VEC_ISA_AVX512) {
		*group = GROUP_MAX;
		return kind == L1     ? l1_avx512
		       : kind == L2SQ ? (fused ? l2sq_fused_avx512 : l2sq_avx512)
		                      : (fused ? dot_fused_avx512 : dot_avx512);
	}
	if (sq->isa == VEC_ISA_AVX2) {
		/* vec_scan_prepare_arith chose AVX2 for a fused scan only on a
		 * CPU with FMA (vec_isa_for_arith). */
		*group = GROUP_AVX2;
		return kind == L1     ? l1_avx2
		       : kind == L2SQ ? (fused ? l2sq_fused_avx2 : l2sq_avx2)
		                      : (fused ? dot_fused_avx2 : dot_avx2);
	}
#endif
	*group = GROUP_MAX;
	return kind == L1     ? l1_scalar
	       : kind == L2SQ ? (fused ? l2sq_fused_scalar : l2sq_scalar)
	                      : (fused ? dot_fused_scalar : dot_scalar);
}

/* One query's selection while the pass runs. */
struct bq {
	struct vec_scan_query sq;
	struct vec_topk s;
	bool has_topk;      /* s was initialised (freed at the end) */
	bool scanning;      /* takes offers from the blocks */
	double worst;       /* as knn.c: a real distance >= worst cannot enter */
	uint32_t mask[RUN]; /* allowed lanes of each block of the current run */
};

/* knn.c's offers for one query and one run of blocks starting at block b. */
static int offer_run(const struct vec_table *t, struct bq *x, size_t b, size_t rows,
                     const double *d, const bool *nul)
{
	int rc = 0;
	for (size_t i = 0; i < rows && rc == 0; i++) {
		if (!(x->mask[i / W] >> (i % W) & 1) || (!nul[i] && d[i] >= x->worst))
			continue;
		rc = vec_topk_offer(&x->s, vec_table_slot_row(t, b * W + i), d[i], nul[i]);
		/* Once the selection is full of real distances, a later row (so
		 * a larger index) needs a strictly smaller one. */
		if (x->s.bounded && x->s.n == x->s.want && !x->s.h[0].is_null)
			x->worst = x->s.h[0].dist;
	}
	return rc;
}

int vec_knn_batch(const struct vec_table *t, enum vec_metric m, enum vec_arith arith,
                  struct vec_batch_query *qs, size_t n)
{
	_Static_assert(64 % W == 0, "a block's filter bits must sit in one word");
	for (size_t i = 0; i < n; i++) {
		qs[i].n_out = 0;
		qs[i].rc = 0;
	}
	if (n == 0)
		return 0;
	struct bq *st = calloc(n, sizeof(*st));
	size_t *act = malloc(n * sizeof(*act)); /* the queries that scan */
	float *qt = NULL;
	int rc = st && act ? 0 : -ENOMEM;

	/* Each query checked and started as vec_knn_arith does. */
	size_t na = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct vec_batch_query *x = &qs[i];
		struct bq *y = &st[i];
		int qrc;
		if (t->n_mixed)
			qrc = -EDOM;
		else if (t->n_slots && x->dim != t->dim)
			qrc = -EINVAL;
		else
			qrc = vec_scan_prepare_arith(&y->sq, m, arith, x->q, x->dim);
		if (qrc == 0 && x->k > 0) {
			size_t want = x->k > SIZE_MAX - x->offset ? SIZE_MAX : x->k + x->offset;
			y->has_topk = true;
			qrc = vec_topk_init(&y->s, want, t->n_rows, x->th);
			for (size_t r = 0; r < t->n_null && qrc == 0; r++)
				if (vec_row_allowed(x->allowed, t->null_rows[r]))
					qrc = vec_topk_offer(&y->s, t->null_rows[r], NAN, true);
			y->worst = NAN;
			if (qrc == 0) {
				y->scanning = true;
				act[na++] = i;
			}
		}
		x->rc = qrc;
	}

	/* Groups of at most gmax queries, as even as can be; each group's
	 * query elements transposed, so that element j of all of them is
	 * contiguous. Queries that scan have the table's dimension. */
	size_t gmax = GROUP_MAX;
	bkernel_fn *kern = NULL;
	size_t dim = t->dim;
	if (rc == 0 && na > 0 && t->n_blocks > 0) {
		kern = pick_kernel(&st[act[0]].sq, &gmax);
		qt = malloc((na * dim > 0 ? na * dim : 1) * sizeof(*qt));
		if (!qt)
			rc = -ENOMEM;
	}
	size_t ngroups = na ? (na + gmax - 1) / gmax : 0;
	for (size_t gi = 0; rc == 0 && qt && gi < ngroups; gi++) {
		size_t start = na * gi / ngroups, g = na * (gi + 1) / ngroups - start;
		float *q = qt + start * dim;
		for (size_t i = 0; i < g; i++) {
			const float *src = qs[act[start + i]].q;
			for (size_t j = 0; j < dim; j++)
				q[j * g + i] = src[j];
		}
	}

	const float *norms = vec_table_norms(t, arith);
	float acc[GROUP_MAX * RUN * W];
	double d[RUN * W];
	bool nul[RUN * W];
	for (size_t b = 0; rc == 0 && qt && b < t->n_blocks;) {
		size_t run;
		const float *blk = vec_table_block(t, b, &run);
		if (run > RUN)
			run = RUN;
		/* A run of blocks each of which holds a row some query wants;
		 * blocks no query wants are skipped unread. */
		size_t nb = 0;
		for (; nb < run; nb++) {
			uint32_t any = 0;
			for (size_t a = 0; a < na; a++) {
				struct bq *y = &st[act[a]];
				y->mask[nb] = y->scanning ? vec_table_block_mask(t, b + nb,
				                                                 qs[act[a]].allowed)
				                          : 0;
				any |= y->mask[nb];
			}
			if (!any)
				break;
		}
		if (nb == 0) {
			b++;
			continue;
		}
		/* Spare lanes of the last block have no norm: finish rows only. */
		size_t rows = t->n_slots - b * W < nb * W ? t->n_slots - b * W : nb * W;
		for (size_t gi = 0; gi < ngroups; gi++) {
			size_t start = na * gi / ngroups, g = na * (gi + 1) / ngroups - start;
			bool wanted = false;
			for (size_t i = 0; i < g && !wanted; i++)
				for (size_t k = 0; k < nb && !wanted; k++)
					wanted = st[act[start + i]].mask[k] != 0;
			if (!wanted)
				continue;
			kern(blk, nb, dim, qt + start * dim, g, acc, RUN * W);
			for (size_t i = 0; i < g; i++) {
				struct bq *y = &st[act[start + i]];
				bool any = false;
				for (size_t k = 0; k < nb; k++)
					any |= y->mask[k] != 0;
				if (!any)
					continue;
				vec_scan_finish(&y->sq, acc + i * RUN * W,
				                norms ? norms + b * W : NULL, rows, d, nul);
				int orc = offer_run(t, y, b, rows, d, nul);
				if (orc) {
					qs[act[start + i]].rc = orc;
					y->scanning = false;
				}
			}
		}
		b += nb;
	}

	int first = rc;
	for (size_t i = 0; i < n; i++) {
		if (rc)
			qs[i].rc = rc;
		if (st && st[i].has_topk) {
			if (qs[i].rc == 0)
				qs[i].n_out =
				        vec_topk_finish(&st[i].s, qs[i].offset, qs[i].k, qs[i].out);
			vec_topk_free(&st[i].s);
		}
		if (!first)
			first = qs[i].rc;
	}
	free(qt);
	free(act);
	free(st);
	return first;
}

void vec_split_rows(const struct vec_table *t, size_t part, size_t nparts, size_t *first,
                    size_t *end)
{
	/* Part boundaries fall on blocks; a boundary block's first slot gives
	 * the row, so the NULL rows before it (they have no slot) go to the
	 * part before. */
	size_t b0 = t->n_blocks * part / nparts, b1 = t->n_blocks * (part + 1) / nparts;
	*first = part == 0 || b0 >= t->n_blocks ? (part == 0 ? 0 : t->n_rows)
	                                        : vec_table_slot_row(t, b0 * W);
	*end = part + 1 >= nparts || b1 >= t->n_blocks ? t->n_rows : vec_table_slot_row(t, b1 * W);
}

size_t vec_hits_merge(const struct vec_hit *const *lists, const size_t *n, size_t nlists,
                      size_t offset, size_t k, struct vec_hit *out)
{
	size_t at[VEC_MERGE_MAX] = {0}, got = 0, seen = 0;
	if (nlists > VEC_MERGE_MAX)
		nlists = VEC_MERGE_MAX; /* never: the callers' contract */
	while (got < k) {
		size_t best = nlists;
		for (size_t i = 0; i < nlists; i++)
			if (at[i] < n[i] &&
			    (best == nlists ||
			     vec_hit_before(&lists[i][at[i]], &lists[best][at[best]])))
				best = i;
		if (best == nlists)
			break;
		if (seen++ >= offset)
			out[got++] = lists[best][at[best]];
		at[best]++;
	}
	return got;
}
