/* Unit tests for src/vec/batch.c: vec_knn_batch answers every query of a
 * batch exactly as vec_knn_arith answers it alone (return code, rows,
 * distances bit for bit, NULLs, order) on adversarial tables, for every
 * metric, arithmetic and kernel, 1 to 20 queries per batch, each with its
 * own k, offset, threshold and row filter; and a scan split into parts by
 * vec_split_rows, merged by vec_hits_merge, answers what one scan does. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec/batch.h"
#include "vec/block.h"
#include "vec/knn.h"
#include "vec/scan.h"
#include "vec/screen.h"
#include "vec/vec.h"

#include "test_rand.h"
#include "test_vec.h"

TestSuite(vec_batch, .fini = reset_isa);

/* A value of an adversarial table: few distinct values (many exact ties
 * between rows and between distances), or noise, or awkward magnitudes. */
static float value(int style)
{
	static const float few[] = {-1.0f, -0.5f, 0.0f, 0.25f, 0.5f, 1.0f, 2.0f};
	switch (style) {
	case 0:
		return few[below(sizeof(few) / sizeof(few[0]))];
	case 1:
		return gauss();
	default:
		return gauss() * (below(4) == 0 ? 1e-20f : below(4) == 0 ? 1e18f : 1.0f);
	}
}

struct table {
	struct vec_table *t;
	float *rows; /* row-major; NULL rows' floats unused */
	bool *is_null;
	size_t n, dim;
};

/* n rows of dim: NULL rows, zero vectors, duplicates of earlier rows. */
static struct table make_table(size_t n, size_t dim, int style)
{
	struct table tb = {NULL, calloc(n * dim + 1, sizeof(float)), calloc(n + 1, 1), n, dim};
	cr_assert(tb.rows && tb.is_null);
	for (size_t r = 0; r < n; r++) {
		float *v = tb.rows + r * dim;
		size_t kind = below(20);
		if (kind == 0) {
			tb.is_null[r] = true;
		} else if (kind == 1) {
			/* zero vector: cosine NULL */
		} else if (kind <= 4 && r > 0) {
			memcpy(v, tb.rows + below(r) * dim, dim * sizeof(float));
		} else {
			for (size_t j = 0; j < dim; j++)
				v[j] = value(style);
		}
	}
	tb.t = test_table_of(tb.rows, tb.is_null, n, dim, dim);
	cr_assert_not_null(tb.t);
	return tb;
}

static void free_table(struct table *tb)
{
	vec_table_free(tb->t);
	free(tb->rows);
	free(tb->is_null);
}

/* A query's own settings. */
struct qspec {
	float *q;
	size_t k, offset;
	bool has_th;
	struct vec_threshold th;
	uint64_t *allowed; /* NULL: every row */
};

static void make_query(const struct table *tb, enum vec_metric m, enum vec_arith a, struct qspec *s)
{
	size_t dim = tb->dim;
	s->q = calloc(dim + 1, sizeof(float));
	cr_assert(s->q);
	size_t kind = below(8);
	if (kind == 0 && tb->n) /* a row of the table: distance 0, ties with its copies */
		memcpy(s->q, tb->rows + below(tb->n) * dim, dim * sizeof(float));
	else if (kind == 1) /* the zero vector: every cosine NULL */
		;
	else
		for (size_t j = 0; j < dim; j++)
			s->q[j] = value((int)below(3));
	s->k = below(4) == 0 ? below(tb->n + 3) : 1 + below(12);
	s->offset = below(3) == 0 ? below(tb->n + 2) : 0;
	s->has_th = below(3) == 0;
	if (s->has_th) {
		/* A row's own distance: rows exactly at it pass only <=. */
		bool is_null = true;
		double d = 0;
		for (int tries = 0; tries < 4 && is_null && tb->n; tries++) {
			size_t r = below(tb->n);
			if (!tb->is_null[r])
				d = vec_distance_arith(m, a, tb->rows + r * dim, s->q, dim,
				                       &is_null);
		}
		s->th.value = is_null ? 1.0 : d;
		s->th.inclusive = below(2);
	}
	s->allowed = NULL;
	if (below(2)) {
		size_t words = (tb->n + 63) / 64 + 1;
		s->allowed = calloc(words, sizeof(uint64_t));
		cr_assert(s->allowed);
		size_t keep = below(5); /* density 0, 1/4 .. 1 */
		for (size_t r = 0; r < tb->n; r++)
			if (below(4) < keep)
				s->allowed[r / 64] |= 1ull << (r % 64);
	}
}

static void free_query(struct qspec *s)
{
	free(s->q);
	free(s->allowed);
}

static void assert_same(const struct vec_hit *want, size_t nw, const struct vec_hit *got, size_t ng,
                        const char *what)
{
	cr_assert_eq(ng, nw, "%s: %zu hits, expected %zu", what, ng, nw);
	for (size_t h = 0; h < nw; h++) {
		cr_assert_eq(got[h].row, want[h].row, "%s: hit %zu row %zu, expected %zu", what, h,
		             got[h].row, want[h].row);
		cr_assert_eq(got[h].is_null, want[h].is_null, "%s: hit %zu NULL", what, h);
		if (!want[h].is_null)
			cr_assert(memcmp(&got[h].dist, &want[h].dist, sizeof(double)) == 0,
			          "%s: hit %zu distance %.17g, expected %.17g", what, h,
			          got[h].dist, want[h].dist);
	}
}

/* Every query of a batch of nq on tb against vec_knn_arith alone. */
static void check_batch(const struct table *tb, enum vec_metric m, enum vec_arith a, size_t nq)
{
	struct qspec spec[20];
	struct vec_batch_query bq[20];
	cr_assert(nq <= 20);
	for (size_t i = 0; i < nq; i++) {
		make_query(tb, m, a, &spec[i]);
		bq[i] = (struct vec_batch_query){
		        .q = spec[i].q,
		        .dim = tb->dim,
		        .k = spec[i].k,
		        .offset = spec[i].offset,
		        .th = spec[i].has_th ? &spec[i].th : NULL,
		        .allowed = spec[i].allowed,
		        .out = calloc(spec[i].k + 1, sizeof(struct vec_hit)),
		        .n_out = 777,
		        .rc = 777,
		};
		cr_assert(bq[i].out);
	}
	int rc = vec_knn_batch(tb->t, m, a, bq, nq);
	int first = 0;
	for (size_t i = 0; i < nq; i++) {
		struct vec_hit *want = calloc(spec[i].k + 1, sizeof(*want));
		size_t nw = 0;
		int wrc = vec_knn_arith(tb->t, m, a, spec[i].q, tb->dim, spec[i].k, spec[i].offset,
		                        bq[i].th, spec[i].allowed, want, &nw);
		cr_assert_eq(bq[i].rc, wrc, "query %zu of %zu: rc %d, alone %d", i, nq, bq[i].rc,
		             wrc);
		if (!first)
			first = wrc;
		char what[160];
		snprintf(what, sizeof(what),
		         "rows %zu dim %zu metric %d arith %d isa %s query %zu/%zu k %zu off %zu",
		         tb->n, tb->dim, (int)m, (int)a, vec_isa_name(vec_scan_isa()), i, nq,
		         spec[i].k, spec[i].offset);
		assert_same(want, nw, bq[i].out, bq[i].n_out, what);
		free(want);
		free(bq[i].out);
		free_query(&spec[i]);
	}
	cr_assert_eq(rc, first);
}

Test(vec_batch, every_query_as_alone)
{
	static const size_t dims[] = {1, 2, 3, 7, 15, 16, 17, 33, 100, 768, 1536};
	size_t checked = 0;
	for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
		size_t dim = dims[di];
		size_t n = dim >= 768 ? 40 + below(60) : 1 + below(300);
		struct table tb = make_table(n, dim, (int)(di % 3));
		for (size_t ii = 0; ii < N_ISAS; ii++) {
			if (vec_scan_force(isas[ii]) != 0)
				continue;
			for (size_t mi = 0; mi < N_METRICS; mi++)
				for (size_t ai = 0; ai < N_ARITHS; ai++) {
					size_t nq = dim >= 768 ? 1 + below(20)
					                       : 1 + (mi * 7 + ai * 5 + ii) % 20;
					check_batch(&tb, metrics[mi], ariths[ai], nq);
					checked += nq;
				}
		}
		free_table(&tb);
	}
	cr_assert_gt(checked, 500);
}

/* Group sizes around every boundary of the kernels' groups (AVX2 6,
 * AVX-512 16) on one table, every query with ties at the k-th distance. */
Test(vec_batch, group_boundaries)
{
	struct table tb = make_table(157, 19, 0);
	for (size_t ii = 0; ii < N_ISAS; ii++) {
		if (vec_scan_force(isas[ii]) != 0)
			continue;
		for (size_t nq = 1; nq <= 20; nq++)
			check_batch(&tb, metrics[nq % N_METRICS], ariths[nq % N_ARITHS], nq);
	}
	free_table(&tb);
}

/* The errors of vec_knn_arith, per query: a query of another dimension, an
 * unknown metric, a table with a row of another dimension; k = 0. */
Test(vec_batch, errors_per_query)
{
	struct table tb = make_table(50, 8, 1);
	float q8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, q3[3] = {1, 2, 3};
	struct vec_hit o[3][5];
	struct vec_batch_query bq[3] = {
	        {.q = q8, .dim = 8, .k = 5, .out = o[0]},
	        {.q = q3, .dim = 3, .k = 5, .out = o[1]},
	        {.q = q8, .dim = 8, .k = 0, .out = o[2]},
	};
	cr_assert_eq(vec_knn_batch(tb.t, VEC_L2, VEC_ARITH_SEPARATE, bq, 3), -EINVAL);
	cr_assert_eq(bq[0].rc, 0);
	cr_assert_eq(bq[0].n_out, 5);
	cr_assert_eq(bq[1].rc, -EINVAL);
	cr_assert_eq(bq[1].n_out, 0);
	cr_assert_eq(bq[2].rc, 0);
	cr_assert_eq(bq[2].n_out, 0);
	cr_assert_eq(vec_knn_batch(tb.t, (enum vec_metric)99, VEC_ARITH_SEPARATE, bq, 1), -EINVAL);
	free_table(&tb);

	struct vec_builder b;
	cr_assert_eq(vec_builder_init(&b, VEC_DIM_ANY), 0);
	cr_assert_eq(vec_builder_add(&b, q8, 8), 0);
	cr_assert_eq(vec_builder_add(&b, q3, 3), 0);
	struct vec_table *mixed = vec_builder_finish(&b);
	vec_builder_free(&b);
	cr_assert_eq(vec_knn_batch(mixed, VEC_COSINE, VEC_ARITH_SEPARATE, bq, 1), -EDOM);
	cr_assert_eq(bq[0].rc, -EDOM);
	vec_table_free(mixed);
}

/* Tables without blocks: empty, all NULL. */
Test(vec_batch, no_blocks)
{
	for (size_t n = 0; n < 3; n++) {
		struct vec_builder b;
		cr_assert_eq(vec_builder_init(&b, 4), 0);
		for (size_t r = 0; r < n; r++)
			cr_assert_eq(vec_builder_add_null(&b), 0);
		struct vec_table *t = vec_builder_finish(&b);
		vec_builder_free(&b);
		float q[4] = {1, 0, 0, 0};
		struct vec_hit o[4];
		struct vec_batch_query bq = {.q = q, .dim = 4, .k = 4, .out = o};
		cr_assert_eq(vec_knn_batch(t, VEC_COSINE, VEC_ARITH_FUSED, &bq, 1), 0);
		cr_assert_eq(bq.n_out, n);
		for (size_t h = 0; h < bq.n_out; h++)
			cr_assert(o[h].is_null && o[h].row == h);
		vec_table_free(t);
	}
}

/* The parts of a split cover every row once, on block boundaries. */
Test(vec_batch, split_parts_partition_rows)
{
	for (int round = 0; round < 30; round++) {
		struct table tb = make_table(below(400), 1 + below(20), round % 3);
		const struct vec_table *t = tb.t;
		for (size_t np = 1; np <= 9; np++) {
			size_t expect = 0;
			for (size_t p = 0; p < np; p++) {
				size_t first, end;
				vec_split_rows(t, p, np, &first, &end);
				cr_assert_eq(first, expect, "part %zu/%zu starts at %zu", p, np,
				             first);
				cr_assert_geq(end, first);
				expect = end;
				/* A boundary is the row of a block's first slot. */
				if (p > 0 && first < t->n_rows && t->n_slots) {
					bool at_block = false;
					for (size_t b = 0; b < t->n_blocks && !at_block; b++)
						at_block = vec_table_slot_row(t, b * VEC_BLOCK_W) ==
						           first;
					cr_assert(at_block);
				}
			}
			cr_assert_eq(expect, t->n_rows);
		}
		free_table(&tb);
	}
}

/* One scan split in parts (each filtered to its rows, its best offset + k),
 * merged: the single scan's answer, exact and screened. */
Test(vec_batch, split_scan_as_single)
{
	for (int round = 0; round < 60; round++) {
		size_t dim = 1 + below(round % 4 == 0 ? 200 : 40);
		struct table tb = make_table(1 + below(600), dim, round % 3);
		const struct vec_table *t = tb.t;
		struct vec_screen *scr = dim >= 16 ? vec_screen_build(t) : NULL;
		enum vec_metric m = metrics[round % N_METRICS];
		enum vec_arith a = ariths[round % N_ARITHS];
		struct qspec s;
		make_query(&tb, m, a, &s);
		const struct vec_threshold *th = s.has_th ? &s.th : NULL;
		size_t want_n = s.k + s.offset;
		struct vec_hit *want = calloc(s.k + 1, sizeof(*want));
		size_t nw;
		cr_assert_eq(
		        vec_knn_arith(t, m, a, s.q, dim, s.k, s.offset, th, s.allowed, want, &nw),
		        0);
		size_t words = (tb.n + 63) / 64 + 1;
		for (size_t np = 2; np <= 5; np++) {
			struct vec_hit *part[5];
			size_t npart[5];
			for (size_t p = 0; p < np; p++) {
				size_t first, end;
				vec_split_rows(t, p, np, &first, &end);
				uint64_t *allowed = calloc(words, sizeof(uint64_t));
				for (size_t r = first; r < end; r++)
					if (!s.allowed || (s.allowed[r / 64] >> (r % 64) & 1))
						allowed[r / 64] |= 1ull << (r % 64);
				part[p] = calloc(want_n + 1, sizeof(struct vec_hit));
				int rc = scr && p % 2
				                 ? vec_knn_screened(t, scr, m, a, s.q, dim, want_n,
				                                    0, th, allowed, part[p],
				                                    &npart[p])
				                 : vec_knn_arith(t, m, a, s.q, dim, want_n, 0, th,
				                                 allowed, part[p], &npart[p]);
				cr_assert_eq(rc, 0);
				for (size_t h = 0; h < npart[p]; h++)
					cr_assert(part[p][h].row >= first && part[p][h].row < end);
				free(allowed);
			}
			struct vec_hit *got = calloc(s.k + 1, sizeof(*got));
			size_t ng = vec_hits_merge((const struct vec_hit *const *)part, npart, np,
			                           s.offset, s.k, got);
			char what[96];
			snprintf(what, sizeof(what), "split in %zu, rows %zu dim %zu", np, tb.n,
			         dim);
			assert_same(want, nw, got, ng, what);
			free(got);
			for (size_t p = 0; p < np; p++)
				free(part[p]);
		}
		free(want);
		free_query(&s);
		vec_screen_free(scr);
		free_table(&tb);
	}
}
