/* vec_parse_bench: the cost of reading and printing vector text on one core,
 * per vector: vec_parse() of TiDB's text of a vector, vec_format_f32_array()
 * of its floats, and the loader's parse that also tells whether a cell is
 * the canonical text of its floats (vec_parse_canonical), against printing
 * and comparing. The vectors are random normal float32, as embeddings are,
 * printed as TiDB prints them. Built with -DVEC_PARSE_BENCH_OLD it runs
 * against an older vec/ that lacks the canonical check.
 *
 *   vec_parse_bench [dim [vectors [rounds]]]     default 768 1000 5
 *
 * Prints the best round's microseconds per vector and nanoseconds per
 * element. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vec/vec.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Box-Muller: a standard normal. */
static float normal(void)
{
	return (float)(sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform()));
}

static void report(const char *what, double best, size_t n, size_t dim)
{
	printf("%-28s %9.2f us/vector %7.2f ns/element\n", what, best / (double)n * 1e6,
	       best / (double)n / (double)dim * 1e9);
}

/* The best round's seconds for parsing every text (and, when canonical,
 * telling that each is canonical), checking the floats; -1 on a wrong
 * result. */
static double time_parse(const struct buf *text, const float *v, size_t n, size_t dim, int rounds,
                         bool canonical)
{
	struct vec_f32 out;
	struct vec_err err;
	vec_f32_init(&out);
	double best = 0;
	for (int r = 0; r < rounds && best >= 0; r++) {
		double t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			bool canon = true;
			const char *s = (const char *)text[i].data;
			int rc;
#ifndef VEC_PARSE_BENCH_OLD
			if (canonical)
				rc = vec_parse_canonical(s, text[i].len, VEC_TIDB_MASTER, &out,
				                         &canon, &err);
			else
#endif
				rc = vec_parse(s, text[i].len, &out, &err);
			if (rc != 0 || !canon || out.dim != dim ||
			    memcmp(out.v, v + i * dim, dim * sizeof(float)) != 0) {
				fprintf(stderr, "%s: wrong result for vector %zu\n",
				        canonical ? "vec_parse_canonical" : "vec_parse", i);
				best = -1;
				break;
			}
		}
		double t = now_s() - t0;
		if (best == 0 || (best > 0 && t < best))
			best = t;
	}
	vec_f32_free(&out);
	return best;
}

int main(int argc, char **argv)
{
	size_t dim = argc > 1 ? strtoul(argv[1], NULL, 10) : 768;
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
	int rounds = argc > 3 ? atoi(argv[3]) : 5;
	if (dim == 0 || n == 0 || rounds < 1) {
		fprintf(stderr, "usage: vec_parse_bench [dim [vectors [rounds]]]\n");
		return 2;
	}
	float *v = malloc(n * dim * sizeof(float));
	struct buf *text = calloc(n, sizeof(*text));
	if (!v || !text)
		return 1;
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < dim; j++)
			v[i * dim + j] = normal();
		buf_init(&text[i]);
		if (vec_format_f32_array(v + i * dim, dim, &text[i]) != 0)
			return 1;
		bytes += text[i].len;
	}
	printf("%zu vectors of %zu dimensions, %.1f bytes of text per element\n", n, dim,
	       (double)bytes / (double)n / (double)dim);

	double best = time_parse(text, v, n, dim, rounds, false);
	if (best < 0)
		return 1;
	report("vec_parse", best, n, dim);

	struct buf b;
	buf_init(&b);
	best = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			buf_reset(&b);
			if (vec_format_f32_array(v + i * dim, dim, &b) != 0 ||
			    b.len != text[i].len) {
				fprintf(stderr, "vec_format_f32_array: wrong length\n");
				return 1;
			}
		}
		double t = now_s() - t0;
		if (best == 0 || t < best)
			best = t;
	}
	report("vec_format_f32_array", best, n, dim);

#ifndef VEC_PARSE_BENCH_OLD
	/* What a load does with each cell: parse it and tell whether its text
	 * is the canonical one (then it need not be kept). */
	best = time_parse(text, v, n, dim, rounds, true);
	if (best < 0)
		return 1;
	report("vec_parse_canonical", best, n, dim);

	best = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			if (!vec_format_f32_array_is(v + i * dim, dim, (const char *)text[i].data,
			                             text[i].len)) {
				fprintf(stderr, "vec_format_f32_array_is: not canonical\n");
				return 1;
			}
		}
		double t = now_s() - t0;
		if (best == 0 || t < best)
			best = t;
	}
	report("vec_format_f32_array_is", best, n, dim);

	/* Each way of reading the elements this CPU has, side by side. */
	static const struct {
		enum vec_parse_isa isa;
		const char *name;
	} paths[] = {
	        {VEC_PARSE_SCALAR, "scalar"},
	        {VEC_PARSE_AVX2, "avx2"},
	        {VEC_PARSE_AVX512, "avx512"},
	};
	for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		if (vec_parse_force(paths[k].isa) != 0)
			continue;
		for (int canonical = 0; canonical < 2; canonical++) {
			char what[64];
			best = time_parse(text, v, n, dim, rounds, canonical);
			if (best < 0)
				return 1;
			snprintf(what, sizeof(what), "%s [%s]",
			         canonical ? "vec_parse_canonical" : "vec_parse", paths[k].name);
			report(what, best, n, dim);
		}
	}
	if (vec_parse_force(VEC_PARSE_AUTO) != 0)
		return 1;
#endif

	buf_free(&b);
	for (size_t i = 0; i < n; i++)
		buf_free(&text[i]);
	free(text);
	free(v);
	return 0;
}
