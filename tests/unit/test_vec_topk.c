/* Unit tests for src/vec/topk.c and src/vec/knn.c: TiDB's ORDER BY distance
 * ASC (NULL first, ties by row), LIMIT/OFFSET, thresholds and row filters,
 * in both selection modes, against a brute-force reference built on
 * vec_distance(), for every ISA, and from several threads at once. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vec/block.h"
#include "vec/knn.h"
#include "vec/scan.h"
#include "vec/topk.h"

#define TEST_RNG_SEED 0x1234567887654321ull
#include "test_rand.h"

#define NUL NAN /* a NULL distance in the case tables */
#define ROWS(...)                                                                                  \
	(const size_t[]){__VA_ARGS__}, sizeof((const size_t[]){__VA_ARGS__}) / sizeof(size_t)
#define NONE NULL, 0
#define DISTS(...)                                                                                 \
	(const double[]){__VA_ARGS__}, sizeof((const double[]){__VA_ARGS__}) / sizeof(double)

struct topk_case {
	const char *name;
	const double *d; /* d[r] is row r's distance, NUL for NULL */
	size_t n;
	size_t k, offset;
	const struct vec_threshold *th;
	const size_t *want; /* rows, in order */
	size_t n_want;
};

static const struct vec_threshold lt_1 = {1.0, false}, le_1 = {1.0, true}, lt_neg = {-5, false};

static const struct topk_case topk_cases[] = {
        {"empty", NULL, 0, 3, 0, NULL, NONE},
        {"k=0", DISTS(1, 2, 3), 0, 0, NULL, NONE},
        {"k>rows", DISTS(3, 1, 2), 10, 0, NULL, ROWS(1, 2, 0)},
        {"k=rows", DISTS(3, 1, 2), 3, 0, NULL, ROWS(1, 2, 0)},
        {"top1", DISTS(3, 1, 2), 1, 0, NULL, ROWS(1)},
        {"null first", DISTS(0.5, NUL, -1, NUL), 3, 0, NULL, ROWS(1, 3, 2)},
        {"all null", DISTS(NUL, NUL, NUL, NUL), 2, 1, NULL, ROWS(1, 2)},
        {"ties by row", DISTS(2, 1, 2, 1, 2), 4, 0, NULL, ROWS(1, 3, 0, 2)},
        {"-0 ties 0", DISTS(0.0, -0.0, 0.0, -0.0), 3, 0, NULL, ROWS(0, 1, 2)},
        {"inf last", DISTS(INFINITY, 1e300, -INFINITY), 3, 0, NULL, ROWS(2, 1, 0)},
        {"offset", DISTS(5, 4, 3, 2, 1, 0), 2, 3, NULL, ROWS(2, 1)},
        {"offset partial", DISTS(5, 4, 3, 2, 1, 0), 4, 4, NULL, ROWS(1, 0)},
        {"offset at end", DISTS(5, 4, 3), 2, 3, NULL, NONE},
        {"offset past end", DISTS(5, 4, 3), 2, 100, NULL, NONE},
        {"offset huge", DISTS(5, 4, 3), SIZE_MAX, SIZE_MAX, NULL, NONE},
        {"k huge", DISTS(5, 4, 3), SIZE_MAX, 1, NULL, ROWS(1, 0)},
        {"lt", DISTS(1, 0.5, NUL, 2, 1), 10, 0, &lt_1, ROWS(1)},
        {"le", DISTS(1, 0.5, NUL, 2, 1), 10, 0, &le_1, ROWS(1, 0, 4)},
        {"le top1 offset", DISTS(1, 0.5, NUL, 2, 1), 1, 1, &le_1, ROWS(0)},
        {"threshold excludes all", DISTS(1, 0.5, NUL, 2), 10, 0, &lt_neg, NONE},
        {"threshold vs nulls", DISTS(NUL, NUL), 10, 0, &le_1, NONE},
};

/* Runs one case with the given max_rows (choosing the mode) and offer order. */
static void run_topk_case(const struct topk_case *c, size_t max_rows, bool reverse)
{
	struct vec_topk s;
	size_t want = c->k > SIZE_MAX - c->offset ? SIZE_MAX : c->k + c->offset;
	cr_assert_eq(vec_topk_init(&s, want, max_rows, c->th), 0, "%s", c->name);
	for (size_t i = 0; i < c->n; i++) {
		size_t r = reverse ? c->n - 1 - i : i;
		cr_assert_eq(vec_topk_offer(&s, r, c->d[r], isnan(c->d[r])), 0);
	}
	struct vec_hit out[16];
	size_t room = c->k < 16 ? c->k : 16;
	size_t n = vec_topk_finish(&s, c->offset, room, out);
	cr_assert_eq(n, c->n_want, "%s (max_rows %zu reverse %d): %zu hits", c->name, max_rows,
	             reverse, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(out[i].row, c->want[i], "%s hit %zu", c->name, i);
		double d = c->d[out[i].row];
		cr_assert_eq(out[i].is_null, isnan(d));
		if (!out[i].is_null)
			cr_assert(memcmp(&out[i].dist, &d, sizeof(d)) == 0, "%s hit %zu", c->name,
			          i);
	}
	vec_topk_free(&s);
}

Test(vec_topk, table)
{
	for (size_t i = 0; i < sizeof(topk_cases) / sizeof(topk_cases[0]); i++) {
		const struct topk_case *c = &topk_cases[i];
		for (int rev = 0; rev <= 1; rev++) {
			run_topk_case(c, c->n, rev); /* the mode vec_knn would choose */
			run_topk_case(c, 0, rev);    /* keep-all, grown on the way */
			if (c->k < 64 && c->offset < 64)
				run_topk_case(c, SIZE_MAX, rev); /* always the heap */
		}
	}
}

/* ---- vec_knn against brute force ---- */

static float value(void)
{
	uint64_t x = rnd();
	if (x % 13 == 0)
		return 0;
	if (x % 13 == 1)
		return 1e30f;
	return (float)((int64_t)(x >> 40) % 7) * 0.5f; /* small grid: many exact ties */
}

struct ref {
	size_t row;
	double d;
	bool is_null;
};

static int ref_cmp(const void *pa, const void *pb)
{
	const struct ref *a = pa, *b = pb;
	if (a->is_null != b->is_null)
		return a->is_null ? -1 : 1;
	if (!a->is_null && a->d < b->d)
		return -1;
	if (!a->is_null && a->d > b->d)
		return 1;
	return a->row < b->row ? -1 : a->row > b->row;
}

struct knn_fixture {
	struct vec_table *t;
	float *rows; /* n * dim; a NULL row has is_null_row[r] */
	bool *null_row;
	size_t n, dim;
};

static struct knn_fixture make_fixture(size_t n, size_t dim, unsigned null_every)
{
	struct knn_fixture f = {NULL, malloc(n * dim * sizeof(float) + 1), calloc(n + 1, 1), n,
	                        dim};
	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, dim), 0);
	for (size_t r = 0; r < n; r++) {
		float *v = f.rows + r * dim;
		for (size_t j = 0; j < dim; j++)
			v[j] = r % 13 == 12 ? 0 : value(); /* zero rows: NULL cosine in a block */
		if (null_every && r % null_every == 1) {
			f.null_row[r] = true;
			cr_assert_eq(vec_builder_add_null(&b), 0);
		} else {
			cr_assert_eq(vec_builder_add(&b, v, dim), 0);
		}
	}
	f.t = vec_builder_finish(&b);
	return f;
}

static void free_fixture(struct knn_fixture *f)
{
	vec_table_free(f->t);
	free(f->rows);
	free(f->null_row);
}

/* vec_knn must equal: filter, distance, threshold, full sort, slice. */
static void check_knn(const struct knn_fixture *f, enum vec_metric m, const float *q, size_t k,
                      size_t offset, const struct vec_threshold *th, const uint64_t *allowed)
{
	struct ref *all = malloc((f->n + 1) * sizeof(*all));
	size_t n_all = 0;
	for (size_t r = 0; r < f->n; r++) {
		if (allowed && !(allowed[r / 64] >> (r % 64) & 1))
			continue;
		struct ref x = {r, 0, true};
		if (!f->null_row[r])
			x.d = vec_distance(m, f->rows + r * f->dim, q, f->dim, &x.is_null);
		if (th && (x.is_null || !(th->inclusive ? x.d <= th->value : x.d < th->value)))
			continue;
		all[n_all++] = x;
	}
	qsort(all, n_all, sizeof(*all), ref_cmp);
	size_t n_want = offset >= n_all ? 0 : n_all - offset < k ? n_all - offset : k;

	struct vec_hit *out = malloc((k + 1) * sizeof(*out));
	size_t n_out = 12345;
	cr_assert_eq(vec_knn(f->t, m, q, f->dim, k, offset, th, allowed, out, &n_out), 0);
	cr_assert_eq(n_out, n_want, "n %zu metric %d k %zu offset %zu", f->n, m, k, offset);
	for (size_t i = 0; i < n_out; i++) {
		const struct ref *w = &all[offset + i];
		cr_assert_eq(out[i].row, w->row, "metric %d k %zu offset %zu hit %zu", m, k, offset,
		             i);
		cr_assert_eq(out[i].is_null, w->is_null);
		if (!w->is_null)
			cr_assert(memcmp(&out[i].dist, &w->d, sizeof(w->d)) == 0);
	}
	free(out);
	free(all);
}

Test(vec_knn, against_brute_force)
{
	static const enum vec_isa isas[] = {VEC_ISA_SCALAR, VEC_ISA_AVX2, VEC_ISA_AVX512,
	                                    VEC_ISA_NEON};
	static const enum vec_metric metrics[] = {VEC_COSINE, VEC_L2, VEC_L1, VEC_NEG_IP};
	static const struct {
		size_t n, dim;
		unsigned null_every;
	} shapes[] = {{0, 4, 0},   {1, 4, 0},    {5, 3, 0},     {16, 8, 0},    {17, 8, 3},
	              {100, 7, 0}, {100, 7, 10}, {1000, 17, 0}, {1000, 17, 5}, {333, 64, 2}};
	static const size_t ks[] = {0, 1, 3, 10, 16, 99, 1000, 5000};
	static const size_t offsets[] = {0, 1, 7, 500, 2000};
	const struct vec_threshold ths[] = {{0.5, false}, {0.5, true}, {-1e9, false}};
	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		struct knn_fixture f =
		        make_fixture(shapes[si].n, shapes[si].dim, shapes[si].null_every);
		float q[64];
		for (size_t j = 0; j < f.dim; j++)
			q[j] = value();
		uint64_t *bits = calloc(f.n / 64 + 1, 8);
		for (size_t r = 0; r < f.n; r++)
			if (rnd() % 3 == 0 || (r >= 32 && r < 64)) /* sparse, one dense run */
				bits[r / 64] |= 1ull << (r % 64);
		for (size_t ii = 0; ii < 4; ii++) {
			if (vec_scan_force(isas[ii]) != 0)
				continue;
			for (size_t mi = 0; mi < 4; mi++) {
				for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++)
					for (size_t oi = 0;
					     oi < sizeof(offsets) / sizeof(offsets[0]); oi++)
						check_knn(&f, metrics[mi], q, ks[ki], offsets[oi],
						          NULL, NULL);
				for (size_t ti = 0; ti < 3; ti++) {
					check_knn(&f, metrics[mi], q, 10, 0, &ths[ti], NULL);
					check_knn(&f, metrics[mi], q, 10, 2, &ths[ti], bits);
				}
				check_knn(&f, metrics[mi], q, 10, 0, NULL, bits);
				check_knn(&f, metrics[mi], q, 5000, 0, NULL, bits);
			}
		}
		cr_assert_eq(vec_scan_force(VEC_ISA_AUTO), 0);
		free(bits);
		free_fixture(&f);
	}
}

Test(vec_knn, refusals_and_edges)
{
	struct vec_hit out[4];
	size_t n = 99;
	float q[3] = {1, 2, 3};

	/* Empty table, any dimension: no rows, no error. */
	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	struct vec_table *t = vec_builder_finish(&b);
	cr_assert_eq(vec_knn(t, VEC_COSINE, q, 3, 4, 0, NULL, NULL, out, &n), 0);
	cr_assert_eq(n, 0);
	vec_table_free(t);

	/* All NULL: no distance is computed, so any query dimension works. */
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(vec_builder_add_null(&b), 0);
	t = vec_builder_finish(&b);
	cr_assert_eq(vec_knn(t, VEC_L2, q, 2, 4, 1, NULL, NULL, out, &n), 0);
	cr_assert(n == 4 && out[0].row == 1 && out[3].row == 4 && out[0].is_null);
	cr_assert_eq(
	        vec_knn(t, VEC_L2, q, 2, 4, 0, &(struct vec_threshold){1e300, true}, NULL, out, &n),
	        0);
	cr_assert_eq(n, 0);
	vec_table_free(t);

	/* Dimension mismatch, mixed dimensions, unknown metric. */
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	cr_assert_eq(vec_builder_add(&b, q, 3), 0);
	t = vec_builder_finish(&b);
	cr_assert_eq(vec_knn(t, VEC_L2, q, 2, 4, 0, NULL, NULL, out, &n), -EINVAL);
	cr_assert_eq(n, 0);
	cr_assert_eq(vec_knn(t, (enum vec_metric)42, q, 3, 4, 0, NULL, NULL, out, &n), -EINVAL);
	cr_assert_eq(vec_knn(t, VEC_L2, q, 3, 0, 0, NULL, NULL, out, &n), 0);
	cr_assert_eq(n, 0);
	vec_table_free(t);

	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	cr_assert_eq(vec_builder_add_null(&b), 0);
	cr_assert_eq(vec_builder_add(&b, q, 3), 0);
	cr_assert_eq(vec_builder_add(&b, q, 2), 0);
	t = vec_builder_finish(&b);
	size_t row = 0, dim = 0;
	cr_assert_eq(vec_table_mixed(t, &row, &dim), 1);
	cr_assert(row == 2 && dim == 2);
	cr_assert_eq(vec_knn(t, VEC_L2, q, 3, 4, 0, NULL, NULL, out, &n), -EDOM);
	vec_table_free(t);
}

/* Several queries at once on one table: every thread gets the answer the
 * table gives alone (run it under TSan or ASan builds too). */
struct job {
	const struct knn_fixture *f;
	float q[16];
	struct vec_hit out[20];
	size_t n;
	int rc;
};

static void *run_job(void *arg)
{
	struct job *j = arg;
	for (int i = 0; i < 20 && j->rc == 0; i++)
		j->rc = vec_knn(j->f->t, VEC_COSINE, j->q, 16, 20, 0, NULL, NULL, j->out, &j->n);
	return NULL;
}

Test(vec_knn, concurrent_queries)
{
	struct knn_fixture f = make_fixture(5000, 16, 7);
	struct job jobs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct job){.f = &f};
		for (size_t d = 0; d < 16; d++)
			jobs[i].q[d] = value() + (float)i;
		cr_assert_eq(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(th[i], NULL), 0);
		cr_assert_eq(jobs[i].rc, 0);
		struct vec_hit alone[20];
		size_t n;
		cr_assert_eq(vec_knn(f.t, VEC_COSINE, jobs[i].q, 16, 20, 0, NULL, NULL, alone, &n),
		             0);
		cr_assert_eq(n, jobs[i].n);
		for (size_t h = 0; h < n; h++)
			cr_assert(alone[h].row == jobs[i].out[h].row &&
			          alone[h].is_null == jobs[i].out[h].is_null &&
			          memcmp(&alone[h].dist, &jobs[i].out[h].dist, sizeof(double)) ==
			                  0);
	}
	free_fixture(&f);
}
