/* vec_scan_bench: one exact kNN query at a time on one core, against the
 * machine's memory-read limit. Default: 100,000 x 768 float32, cosine, top
 * 10, for every kernel the CPU has; then a streaming read of the same block
 * memory (best of N), and the ratio of the two.
 *
 *   vec_scan_bench [rows [dim [queries [cosine|l2|l1|negip [ARITH|both]]]]]
 *
 * ARITH is the arithmetic of every scan (separate, the default; fused;
 * fused-except-ip); "both" times each kernel in the separate and the fused
 * arithmetic, one after the other in the same run, and prints fused/separate.
 *
 * A 7th argument "normal" draws rows and queries from the standard normal
 * distribution instead of uniform [-1, 1). Last, mode=screened times the
 * int8 screen with exact rescoring (src/vec/screen.h) on the same table and
 * queries, in the first arithmetic, checks every answer against the exact
 * scan's, and prints one line per mode:
 *   vec_scan_bench: mode=screened rows=... ms_per_query=... floor_ms=... ratio=...
 * mode=batch16 answers 16 queries per pass over the table (src/vec/batch.h),
 * each block read once for all of them: the pass's time / 16 per query,
 * every answer checked against the exact scan's too; mode=screened16 the
 * same passes of 16 screened together (vec_knn_screened_batch: the int8
 * codes read once a tile for all 16, then each query's exact rescoring).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity; the CMake build defines it already */
#endif
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vec/batch.h"
#include "vec/block.h"
#include "vec/knn.h"
#include "vec/scan.h"
#include "vec/screen.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rng = 88172645463325252ull;
static float uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Rows and queries: uniform(), or standard normal (Box-Muller). */
static bool normal_data;
static float sample(void)
{
	if (!normal_data)
		return uniform();
	double u1 = ((double)uniform() + 1.0) / 2.0, u2 = ((double)uniform() + 1.0) / 2.0;
	u1 = u1 > 0 && u1 < 1 ? u1 : 0.5;
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Whether a batched query's answer is the exact scan's nw hits w, bit for
 * bit. */
static bool same_hits(const struct vec_hit *w, size_t nw, const struct vec_batch_query *bq)
{
	if (nw != bq->n_out)
		return false;
	for (size_t h = 0; h < nw; h++)
		if (w[h].row != bq->out[h].row || w[h].is_null != bq->out[h].is_null ||
		    memcmp(&w[h].dist, &bq->out[h].dist, sizeof(double)) != 0)
			return false;
	return true;
}

/* What a batch of queries runs on, and the exact answers to check it by. */
struct batch_run {
	const struct vec_table *t;
	const struct vec_screen *scr; /* screened batches */
	enum vec_metric metric;
	enum vec_arith arith;
	const float *q; /* the query set: nq queries of dim */
	size_t dim, k;
	int nq;
	const struct vec_hit *want; /* k per query */
	const size_t *n_want;
	struct vec_hit *out; /* room for 16 * k */
};

/* One batch of nb <= 16 queries (first + i of the set, cycling), screened
 * together (screened) or in one float32 pass: the call's time per query
 * in ms, or -1 when it fails. Each answer that is not the exact scan's
 * counts in *mismatches. */
static double run_batch(const struct batch_run *r, bool screened, int first, int nb,
                        size_t *mismatches)
{
	struct vec_batch_query bq[16];
	for (int i = 0; i < nb; i++)
		bq[i] = (struct vec_batch_query){
		        .q = r->q + (size_t)((first + i) % r->nq) * r->dim,
		        .dim = r->dim,
		        .k = r->k,
		        .out = r->out + (size_t)i * r->k,
		};
	double t0 = now_ms();
	if (screened ? vec_knn_screened_batch(r->t, r->scr, r->metric, r->arith, bq, (size_t)nb,
	                                      NULL) != 0
	             : vec_knn_batch(r->t, r->metric, r->arith, bq, (size_t)nb) != 0)
		return -1;
	double ms = (now_ms() - t0) / nb;
	for (int i = 0; i < nb; i++) {
		size_t qi = (size_t)((first + i) % r->nq);
		*mismatches += !same_hits(r->want + qi * r->k, r->n_want[qi], &bq[i]);
	}
	return ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Streaming reads of every block: the floor for any exact scan. Several
 * loops (one or four accumulators, AVX-512 or AVX2 or plain C), and the
 * fastest is the floor, so the ratio below is never flattered by a slow
 * probe. The order of the sums does not matter here. */
typedef float read_fn(const float *p, size_t n);

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float read_avx512x4(const float *p, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	for (size_t i = 0; i + 64 <= n; i += 64) {
		s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
		s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
		s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
		s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx512f"))) static float read_avx512x1(const float *p, size_t n)
{
	__m512 s = _mm512_setzero_ps();
	for (size_t i = 0; i + 16 <= n; i += 16)
		s = _mm512_add_ps(s, _mm512_load_ps(p + i));
	return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2"))) static float read_avx2x4(const float *p, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	for (size_t i = 0; i + 32 <= n; i += 32) {
		s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
		s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
		s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
		s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
	}
	s0 = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
	float l[8];
	_mm256_storeu_ps(l, s0);
	return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}
#endif

static float read_c(const float *p, size_t n)
{
	float s[8] = {0};
	for (size_t i = 0; i + 8 <= n; i += 8)
		for (int l = 0; l < 8; l++)
			s[l] += p[i + l];
	return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static const struct {
	const char *name;
	read_fn *fn;
	const char *needs; /* CPU feature, or NULL */
} readers[] = {
#if defined(__x86_64__)
        {"avx512 x4", read_avx512x4, "avx512f"},
        {"avx512 x1", read_avx512x1, "avx512f"},
        {"avx2 x4", read_avx2x4, "avx2"},
#endif
        {"c x8", read_c, NULL},
};

static float read_all(const struct vec_table *t, read_fn *fn)
{
	float sum = 0;
	for (size_t b = 0; b < t->n_blocks;) {
		size_t run;
		const float *p = vec_table_block(t, b, &run);
		sum += fn(p, run * t->blk_floats);
		b += run;
	}
	return sum;
}

static bool cpu_has(const char *f)
{
#if defined(__x86_64__)
	if (f && strcmp(f, "avx512f") == 0)
		return __builtin_cpu_supports("avx512f");
	if (f && strcmp(f, "avx2") == 0)
		return __builtin_cpu_supports("avx2");
#endif
	return f == NULL;
}

/* A positive whole number argument, or 0 (not one). */
static unsigned long long count_arg(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? 0 : v;
}

int main(int argc, char **argv)
{
	static const char usage[] = "usage: vec_scan_bench [rows [dim [queries "
	                            "[cosine|l2|l1|negip [ARITH|both [normal]]]]]]\n";
	size_t rows = argc > 1 ? (size_t)count_arg(argv[1]) : 100000;
	size_t dim = argc > 2 ? (size_t)count_arg(argv[2]) : 768;
	unsigned long long n_queries = argc > 3 ? count_arg(argv[3]) : 30;
	if (rows == 0 || dim == 0 || dim > VEC_MAX_DIM || n_queries == 0 || n_queries > 1000000) {
		fputs(usage, stderr);
		return 2;
	}
	int queries = (int)n_queries;
	const size_t k = 10;
	enum vec_metric metric = VEC_COSINE;
	static const char *const metric_names[] = {"cosine", "l2", "l1", "negip"};
	bool known = argc <= 4;
	for (int m = 0; argc > 4 && m < 4; m++)
		if (strcmp(argv[4], metric_names[m]) == 0) {
			metric = (enum vec_metric)m;
			known = true;
		}
	if (!known) {
		fprintf(stderr, "unknown metric %s\n%s", argv[4], usage);
		return 2;
	}
	enum vec_arith ariths[2] = {VEC_ARITH_SEPARATE, VEC_ARITH_FUSED};
	size_t n_ariths = 1;
	if (argc > 5 && strcmp(argv[5], "both") == 0)
		n_ariths = 2;
	else if (argc > 5 && vec_arith_parse(argv[5], strlen(argv[5]), &ariths[0]) != 0) {
		fprintf(stderr, "unknown arithmetic %s (separate, fused, fused-except-ip, both)\n",
		        argv[5]);
		return 2;
	}
	normal_data = argc > 6 && strcmp(argv[6], "normal") == 0;

	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		perror("sched_setaffinity (continuing unpinned)");

	struct vec_builder b;
	float *v = malloc(dim * sizeof(float));
	if (vec_builder_init(&b, dim) != 0)
		return 1;
	double build_ms = 0, norm_ms = 0;
	volatile float norm_sink = 0;
	for (size_t r = 0; r < rows; r++) {
		for (size_t j = 0; j < dim; j++)
			v[j] = sample();
		double t0 = now_ms();
		if (vec_builder_add(&b, v, dim) != 0)
			return 1;
		double t1 = now_ms();
		/* What the fused norm costs the build (vec_builder_add sums it
		 * beside the separate one): timed again on its own. */
		norm_sink += vec_norm_sq_f32(v, dim, VEC_ARITH_FUSED);
		norm_ms += now_ms() - t1;
		build_ms += t1 - t0;
	}
	struct vec_table *t = vec_builder_finish(&b);
	double bytes = (double)t->n_blocks * t->blk_floats * sizeof(float);
	printf("table: %zu rows x %zu dims, %s top %zu, %.1f MB of blocks, %.1f MB held "
	       "(%.1f bytes/row)\n",
	       rows, dim, metric_names[metric], k, bytes / 1e6, vec_table_bytes(t) / 1e6,
	       (double)vec_table_bytes(t) / rows);
	printf("build: %.1f ms, of which the fused squared norms about %.1f ms\n", build_ms,
	       norm_ms);

	float *q = malloc(queries * dim * sizeof(float));
	for (size_t i = 0; i < queries * dim; i++)
		q[i] = sample();

	/* The read floor: the fastest reader, best of N runs each. */
	double best_read = 1e30;
	const char *best_reader = "?";
	volatile float sink = 0;
	int runs = 10 + queries / 3;
	for (size_t ri = 0; ri < sizeof(readers) / sizeof(readers[0]); ri++) {
		if (!cpu_has(readers[ri].needs))
			continue;
		double best = 1e30;
		for (int i = 0; i < runs; i++) {
			double t0 = now_ms();
			sink += read_all(t, readers[ri].fn);
			double ms = now_ms() - t0;
			best = ms < best ? ms : best;
		}
		printf("read %-9s %6.2f ms  %5.1f GB/s\n", readers[ri].name, best,
		       bytes / best / 1e6);
		if (best < best_read) {
			best_read = best;
			best_reader = readers[ri].name;
		}
	}
	printf("read floor:  %7.2f ms  %5.1f GB/s (%s, best of %d)\n", best_read,
	       bytes / best_read / 1e6, best_reader, runs);

	static const enum vec_isa isas[] = {VEC_ISA_SCALAR, VEC_ISA_AVX2, VEC_ISA_AVX512,
	                                    VEC_ISA_NEON};
	struct vec_hit ref[2][10], out[10];
	size_t n_ref[2] = {0, 0};
	double *times = malloc(queries * sizeof(double));
	for (size_t ii = 0; ii < sizeof(isas) / sizeof(isas[0]); ii++) {
		if (vec_scan_force(isas[ii]) != 0)
			continue;
		int nq = isas[ii] == VEC_ISA_SCALAR ? (queries < 5 ? queries : 5) : queries;
		double med_of[2] = {0, 0};
		for (size_t ai = 0; ai < n_ariths; ai++) {
			size_t n;
			for (int i = 0; i < nq; i++) {
				double t0 = now_ms();
				if (vec_knn_arith(t, metric, ariths[ai], q + i * dim, dim, k, 0,
				                  NULL, NULL, out, &n) != 0)
					return 1;
				times[i] = now_ms() - t0;
				/* Each arithmetic's first kernel is the reference for
				 * the others: same rows, same bits. */
				if (i == 0 && n_ref[ai] == 0) {
					memcpy(ref[ai], out, sizeof(out));
					n_ref[ai] = n;
				} else if (i == 0) {
					for (size_t h = 0; h < n; h++)
						if (out[h].row != ref[ai][h].row ||
						    memcmp(&out[h].dist, &ref[ai][h].dist,
						           sizeof(double)))
							printf("  MISMATCH with the first kernel "
							       "at "
							       "hit %zu\n",
							       h);
				}
			}
			qsort(times, nq, sizeof(double), cmp_double);
			double med = times[nq / 2], best = times[0];
			med_of[ai] = med;
			printf("%-8s %-8s %7.2f ms/query median (%5.1f GB/s, %.2fx the floor), "
			       "best "
			       "%6.2f ms (%5.1f GB/s, %.2fx), %d queries\n",
			       vec_isa_name(isas[ii]), vec_arith_name(ariths[ai]), med,
			       bytes / med / 1e6, med / best_read, best, bytes / best / 1e6,
			       best / best_read, nq);
		}
		if (n_ariths == 2)
			printf("%-8s fused/separate: %.3f (median)\n", vec_isa_name(isas[ii]),
			       med_of[1] / med_of[0]);
	}

	/* The two-pass alternative: every distance materialised, then top-k. */
	if (vec_scan_force(VEC_ISA_AUTO) == 0) {
		double *d = malloc(rows * sizeof(double));
		bool *nul = malloc(rows);
		for (int i = 0; i < queries; i++) {
			double t0 = now_ms();
			struct vec_topk s;
			if (vec_scan_table_arith(t, metric, ariths[0], q + i * dim, dim, d, nul) !=
			            0 ||
			    vec_topk_init(&s, k, rows, NULL) != 0)
				return 1;
			for (size_t r = 0; r < rows; r++)
				if (vec_topk_offer(&s, r, d[r], nul[r]) != 0)
					return 1;
			vec_topk_finish(&s, 0, k, out);
			vec_topk_free(&s);
			times[i] = now_ms() - t0;
		}
		qsort(times, queries, sizeof(double), cmp_double);
		printf("two-pass %-6s %5.2f ms/query median (scan to an array, then top-k)\n",
		       vec_isa_name(vec_scan_isa()), times[queries / 2]);
		free(d);
		free(nul);
	}
	for (size_t ai = 0; ai < n_ariths; ai++)
		printf("top hit (%s): row %zu distance %.17g\n", vec_arith_name(ariths[ai]),
		       ref[ai][0].row, ref[ai][0].dist);

	/* mode=screened beside mode=exact, each mode's queries back to back
	 * (its steady state), in the first arithmetic; a mismatch is any
	 * difference from the exact scan's answer to the same query in rows,
	 * distance bits or NULLs. Then the screened queries again, each right
	 * after an exact one (its int8 codes evicted from the cache: "cold"). */
	if (vec_scan_force(VEC_ISA_AUTO) != 0)
		return 1;
	double sb0 = now_ms();
	struct vec_screen *scr = vec_screen_build(t);
	if (!scr)
		return 1;
	double screen_build_ms = now_ms() - sb0;
	double *times_s = malloc(queries * sizeof(double));
	double *times_c = malloc(queries * sizeof(double));
	struct vec_hit *want = malloc(queries * k * sizeof(*want));
	size_t *n_want = malloc(queries * sizeof(size_t));
	size_t mismatches = 0, blocks_exact = 0, blocks_all = 0;
	for (int i = 0; i < queries; i++) {
		double t0 = now_ms();
		if (vec_knn_arith(t, metric, ariths[0], q + i * dim, dim, k, 0, NULL, NULL,
		                  want + i * k, &n_want[i]) != 0)
			return 1;
		times[i] = now_ms() - t0;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < queries; i++) {
			struct vec_hit got[10], *w = want + i * k, tmp[10];
			size_t n_got, n_tmp;
			struct vec_screen_stats st;
			if (pass == 1 && vec_knn_arith(t, metric, ariths[0], q + i * dim, dim, k, 0,
			                               NULL, NULL, tmp, &n_tmp) != 0)
				return 1;
			double t0 = now_ms();
			if (vec_knn_screened_stats(t, scr, metric, ariths[0], q + i * dim, dim, k,
			                           0, NULL, NULL, got, &n_got, &st) != 0)
				return 1;
			(pass ? times_c : times_s)[i] = now_ms() - t0;
			bool same = n_want[i] == n_got;
			for (size_t h = 0; same && h < n_got; h++)
				same = w[h].row == got[h].row && w[h].is_null == got[h].is_null &&
				       memcmp(&w[h].dist, &got[h].dist, sizeof(double)) == 0;
			mismatches += !same;
			blocks_exact += st.blocks_exact;
			blocks_all += st.blocks;
		}
	}
	qsort(times, queries, sizeof(double), cmp_double);
	qsort(times_s, queries, sizeof(double), cmp_double);
	qsort(times_c, queries, sizeof(double), cmp_double);
	printf("screen: %s data, %.1f MB (%.1f bytes/row), built in %.0f ms; %.2f%% of blocks "
	       "computed exactly; screened best %.2f ms; cold (after an exact query) median "
	       "%.2f ms, %.2fx the floor\n",
	       normal_data ? "normal" : "uniform", vec_screen_bytes(scr) / 1e6,
	       (double)vec_screen_bytes(scr) / rows, screen_build_ms,
	       100.0 * blocks_exact / (blocks_all ? blocks_all : 1), times_s[0],
	       times_c[queries / 2], times_c[queries / 2] / best_read);

	/* mode=batch16: passes of 16 queries (query p * 16 + i, cycling
	 * through the set), at least 5 passes; each pass's time / 16. */
	enum { BATCH_N = 16 };
	int passes = queries / BATCH_N > 5 ? queries / BATCH_N : 5;
	double *times_b = malloc(passes * sizeof(double));
	struct vec_hit *bout = malloc(BATCH_N * k * sizeof(*bout));
	size_t mismatches_b = 0;
	/* mode 0: the float32 shared pass (batch16); mode 1: the same queries
	 * screened together (screened16, src/vec/screen.h). */
	double *times_sb = malloc(passes * sizeof(double));
	size_t mismatches_sb = 0;
	const struct batch_run br = {.t = t,
	                             .scr = scr,
	                             .metric = metric,
	                             .arith = ariths[0],
	                             .q = q,
	                             .dim = dim,
	                             .k = k,
	                             .nq = queries,
	                             .want = want,
	                             .n_want = n_want,
	                             .out = bout};
	for (int bm = 0; bm < 2; bm++)
		for (int p = 0; p < passes; p++) {
			double ms = run_batch(&br, bm, p * BATCH_N, BATCH_N,
			                      bm ? &mismatches_sb : &mismatches_b);
			if (ms < 0)
				return 1;
			(bm ? times_sb : times_b)[p] = ms;
		}
	/* Batches of other sizes screened together: the cost per query as a
	 * pass is shared by more (best of 5 passes each; answers checked too,
	 * their differences counted with screened16's). */
	static const int sweep[] = {1, 2, 4, 6, 8, 12};
	printf("screened batches, ms per query (best of 5):");
	for (size_t si = 0; si < sizeof(sweep) / sizeof(sweep[0]); si++) {
		int nb = sweep[si];
		double best = 0;
		for (int p = 0; p < 5; p++) {
			double ms = run_batch(&br, true, p * nb, nb, &mismatches_sb);
			if (ms < 0)
				return 1;
			if (best == 0 || ms < best)
				best = ms;
		}
		printf(" %d: %.2f", nb, best);
	}
	printf("; 16: see screened16\n");
	/* The lower bounds' shortcut (cosine and L2, src/vec/screen.h) off and
	 * on, in turns in this run: all queries one at a time, and in batches
	 * of 8; answers checked (counted with screened16's). */
	if (metric == VEC_COSINE || metric == VEC_L2) {
		double alone[2] = {0, 0}, eight[2] = {0, 0};
		for (int round = 0; round < 6; round++) {
			int on = round & 1;
			vec_screen_use_lb_shortcut(on);
			double t0 = now_ms();
			for (int i = 0; i < queries; i++) {
				struct vec_batch_query bq = {
				        .q = q + (size_t)i * dim, .dim = dim, .k = k, .out = bout};
				if (vec_knn_screened(t, scr, metric, ariths[0], bq.q, dim, k, 0,
				                     NULL, NULL, bq.out, &bq.n_out) != 0)
					return 1;
				mismatches_sb += !same_hits(want + (size_t)i * k, n_want[i], &bq);
			}
			double ms = (now_ms() - t0) / queries;
			if (alone[on] == 0 || ms < alone[on])
				alone[on] = ms;
			int n8 = queries / 8 > 0 ? queries / 8 * 8 : 8;
			ms = 0;
			for (int b0 = 0; b0 < n8; b0 += 8) {
				double per = run_batch(&br, true, b0, 8, &mismatches_sb);
				if (per < 0)
					return 1;
				ms += per * 8 / n8;
			}
			if (eight[on] == 0 || ms < eight[on])
				eight[on] = ms;
		}
		vec_screen_use_lb_shortcut(true);
		printf("lower-bound shortcut off / on, ms per query (best of 3): one at a time "
		       "%.3f / %.3f (%.2fx), batches of 8 %.3f / %.3f (%.2fx)\n",
		       alone[0], alone[1], alone[1] / alone[0], eight[0], eight[1],
		       eight[1] / eight[0]);
	}
	qsort(times_b, passes, sizeof(double), cmp_double);
	qsort(times_sb, passes, sizeof(double), cmp_double);
	for (int mode = 0; mode < 4; mode++) {
		static const char *const mode_names[] = {"exact", "screened", "batch16",
		                                         "screened16"};
		double med = mode == 3   ? times_sb[passes / 2]
		             : mode == 2 ? times_b[passes / 2]
		             : mode == 1 ? times_s[queries / 2]
		                         : times[queries / 2];
		size_t mis = mode == 3   ? mismatches_sb
		             : mode == 2 ? mismatches_b
		             : mode == 1 ? mismatches
		                         : 0;
		printf("vec_scan_bench: mode=%s rows=%zu dim=%zu metric=%s ms_per_query=%.2f "
		       "floor_ms=%.2f ratio=%.2f mismatches=%zu\n",
		       mode_names[mode], rows, dim, metric_names[metric], med, best_read,
		       med / best_read, mis);
	}
	free(times_b);
	free(times_sb);
	free(bout);
	free(times_c);
	free(want);
	free(n_want);
	free(times_s);
	vec_screen_free(scr);
	free(times);
	free(q);
	free(v);
	vec_table_free(t);
	return sink == 12345.0f && norm_sink == 12345.0f;
}
