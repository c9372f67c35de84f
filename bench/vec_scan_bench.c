/* vec_scan_bench: one exact kNN query at a time on one core, against the
 * machine's memory-read limit. Default: 100,000 x 768 float32, cosine, top
 * 10, for every kernel the CPU has; then a streaming read of the same block
 * memory (best of N), and the ratio of the two.
 *
 *   vec_scan_bench [rows [dim [queries [cosine|l2|l1|negip]]]]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity; the CMake build defines it already */
#endif
#include <math.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vec/block.h"
#include "vec/knn.h"
#include "vec/scan.h"

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

int main(int argc, char **argv)
{
	size_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
	size_t dim = argc > 2 ? strtoull(argv[2], NULL, 10) : 768;
	int queries = argc > 3 ? atoi(argv[3]) : 30;
	const size_t k = 10;
	enum vec_metric metric = VEC_COSINE;
	static const char *const metric_names[] = {"cosine", "l2", "l1", "negip"};
	for (int m = 0; argc > 4 && m < 4; m++)
		if (strcmp(argv[4], metric_names[m]) == 0)
			metric = (enum vec_metric)m;

	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		perror("sched_setaffinity (continuing unpinned)");

	struct vec_builder b;
	float *v = malloc(dim * sizeof(float));
	if (vec_builder_init(&b, dim) != 0)
		return 1;
	for (size_t r = 0; r < rows; r++) {
		for (size_t j = 0; j < dim; j++)
			v[j] = uniform();
		if (vec_builder_add(&b, v, dim) != 0)
			return 1;
	}
	struct vec_table *t = vec_builder_finish(&b);
	double bytes = (double)t->n_blocks * t->blk_floats * sizeof(float);
	printf("table: %zu rows x %zu dims, %s top %zu, %.1f MB of blocks, %.1f MB held "
	       "(%.1f bytes/row)\n",
	       rows, dim, metric_names[metric], k, bytes / 1e6, vec_table_bytes(t) / 1e6,
	       (double)vec_table_bytes(t) / rows);

	float *q = malloc(queries * dim * sizeof(float));
	for (size_t i = 0; i < queries * dim; i++)
		q[i] = uniform();

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
	struct vec_hit ref[10], out[10];
	size_t n_ref = 0;
	double *times = malloc(queries * sizeof(double));
	for (size_t ii = 0; ii < sizeof(isas) / sizeof(isas[0]); ii++) {
		if (vec_scan_force(isas[ii]) != 0)
			continue;
		size_t n;
		int nq = isas[ii] == VEC_ISA_SCALAR ? (queries < 5 ? queries : 5) : queries;
		for (int i = 0; i < nq; i++) {
			double t0 = now_ms();
			if (vec_knn(t, metric, q + i * dim, dim, k, 0, NULL, NULL, out, &n) != 0)
				return 1;
			times[i] = now_ms() - t0;
			if (i == 0 && n_ref == 0) {
				memcpy(ref, out, sizeof(out));
				n_ref = n;
			} else if (i == 0) {
				for (size_t h = 0; h < n; h++)
					if (out[h].row != ref[h].row ||
					    memcmp(&out[h].dist, &ref[h].dist, sizeof(double)))
						printf("  MISMATCH with the first kernel at hit "
						       "%zu\n",
						       h);
			}
		}
		qsort(times, nq, sizeof(double), cmp_double);
		double med = times[nq / 2], best = times[0];
		printf("%-8s %7.2f ms/query median (%5.1f GB/s, %.2fx the floor), best %6.2f ms "
		       "(%5.1f GB/s, %.2fx), %d queries\n",
		       vec_isa_name(isas[ii]), med, bytes / med / 1e6, med / best_read, best,
		       bytes / best / 1e6, best / best_read, nq);
	}

	/* The two-pass alternative: every distance materialised, then top-k. */
	if (vec_scan_force(VEC_ISA_AUTO) == 0) {
		double *d = malloc(rows * sizeof(double));
		bool *nul = malloc(rows);
		for (int i = 0; i < queries; i++) {
			double t0 = now_ms();
			struct vec_topk s;
			if (vec_scan_table(t, metric, q + i * dim, dim, d, nul) != 0 ||
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
	printf("top hit: row %zu distance %.17g\n", ref[0].row, ref[0].dist);
	free(times);
	free(q);
	free(v);
	vec_table_free(t);
	return sink == 12345.0f;
}
