/* cache/snapshot: versions made by patches (tombstones over the base, a
 * delta), canonical keys and the base's key index, and scans over base and
 * delta answering as one fresh table would. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/segment.h"
#include "cache/serve.h"
#include "cache/snapshot.h"
#include "vec/vec.h"

#define DIM 3

/* A table (id INT PRIMARY KEY, name VARBINARY, v VECTOR(3)). */
static struct cache_column cols[3] = {
        {.name = "id", .data_type = "int", .cmp = CACHE_CMP_INT},
        {.name = "name", .data_type = "varbinary", .cmp = CACHE_CMP_BYTES},
        {.name = "v", .data_type = "vector", .cmp = CACHE_CMP_NONE},
};

static const struct cache_segment_shape shape = {.n_cols = 3,
                                                 .vec_col = 2,
                                                 .dim = DIM,
                                                 .dialect = VEC_TIDB_MASTER,
                                                 .canonical_vectors = true};

struct row {
	int id;
	const char *name;
	float v[DIM];
	bool null_v;
};

static void add(struct cache_segment_builder *b, const struct row *r)
{
	char id[16], vt[128];
	snprintf(id, sizeof(id), "%d", r->id);
	struct buf t;
	buf_init(&t);
	cr_assert_eq(vec_format_f32_array(r->v, DIM, &t), 0);
	snprintf(vt, sizeof(vt), "%.*s", (int)t.len, (const char *)t.data);
	buf_free(&t);
	const char *cells[3] = {id, r->name, r->null_v ? NULL : vt};
	unsigned long lens[3] = {strlen(id), r->name ? strlen(r->name) : 0,
	                         r->null_v ? 0 : strlen(vt)};
	char err[128];
	cr_assert_eq(cache_segment_builder_add(b, cells, lens, err, sizeof(err)), 0, "%s", err);
}

static struct cache_segment *segment(const struct row *rows, size_t n)
{
	struct cache_segment_builder b;
	cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
	for (size_t i = 0; i < n; i++)
		add(&b, &rows[i]);
	struct cache_segment *s = cache_segment_builder_finish(&b);
	cache_segment_builder_free(&b);
	cr_assert(s);
	return s;
}

static struct cache_snapshot *base_snapshot(const struct row *rows, size_t n)
{
	struct cache_base *b = calloc(1, sizeof(*b));
	cr_assert(b);
	atomic_init(&b->refs, 1);
	b->n_cols = 3;
	b->vec_col = 2;
	b->cols = malloc(sizeof(cols));
	memcpy(b->cols, cols, sizeof(cols));
	b->dialect = VEC_TIDB_MASTER;
	b->rows = segment(rows, n);
	b->n_key = 1;
	b->key_cols[0] = 0;
	cr_assert_eq(cache_base_index(b), 0);
	struct cache_snapshot *s = cache_snapshot_from_base(b, "db", "t", 1);
	cr_assert(s);
	return s;
}

static void key_of(const struct cache_snapshot *s, const char *id, struct buf *out)
{
	cr_assert_eq(cache_key_append(s->base, 0, (const uint8_t *)id, strlen(id), out), 0);
}

static struct cache_snapshot *patch(const struct cache_snapshot *s, const char *const *ids,
                                    size_t nids, const struct row *rows, size_t nrows,
                                    uint64_t version)
{
	struct cache_patch p = {.version = version};
	buf_init(&p.keys);
	for (size_t i = 0; i < nids; i++)
		key_of(s, ids[i], &p.keys);
	p.nkeys = nids;
	p.rows = nrows ? segment(rows, nrows) : NULL;
	struct cache_snapshot *n = cache_snapshot_patch(s, &p);
	cr_assert(n);
	cache_segment_unref(p.rows);
	buf_free(&p.keys);
	return n;
}

/* The live rows as "id:name" strings, sorted. */
static void live_rows(const struct cache_snapshot *s, char out[][32], size_t *n)
{
	*n = 0;
	for (size_t r = 0; r < s->n_rows; r++) {
		if (r < s->n_base && s->live && !(s->live[r / 64] >> (r % 64) & 1))
			continue;
		const uint8_t *p, *q;
		size_t pn, qn;
		cr_assert(cache_snapshot_cell(s, r, 0, NULL, &p, &pn));
		bool has_name = cache_snapshot_cell(s, r, 1, NULL, &q, &qn);
		snprintf(out[*n], 32, "%.*s:%.*s", (int)pn, p, has_name ? (int)qn : 4,
		         has_name ? (const char *)q : "NULL");
		(*n)++;
	}
	qsort(out, *n, 32, (int (*)(const void *, const void *))strcmp);
}

Test(cache_snapshot, canonical_keys)
{
	static const struct row rows[] = {{1, "a", {1, 0, 0}, false}};
	struct cache_snapshot *s = base_snapshot(rows, 1);
	static const struct {
		const char *in, *want;
	} ints[] = {{"7", "7"},  {"+7", "7"},     {"007", "7"},
	            {"-0", "0"}, {"-012", "-12"}, {"0", "0"}};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		struct buf b;
		buf_init(&b);
		key_of(s, ints[i].in, &b);
		cr_assert_eq(b.len, 4 + strlen(ints[i].want), "%s", ints[i].in);
		cr_assert_eq(memcmp(b.data + 4, ints[i].want, strlen(ints[i].want)), 0, "%s",
		             ints[i].in);
		buf_free(&b);
	}
	struct buf b;
	buf_init(&b);
	cr_assert_lt(cache_key_append(s->base, 0, (const uint8_t *)"1.5", 3, &b), 0);
	cr_assert_lt(cache_key_append(s->base, 0, (const uint8_t *)"", 0, &b), 0);
	cr_assert_lt(cache_key_append(s->base, 0, (const uint8_t *)"-", 1, &b), 0);
	buf_free(&b);
	cache_snapshot_unref(s);
}

Test(cache_snapshot, duplicate_keys_are_not_a_primary_key)
{
	static const struct row rows[] = {{1, "a", {1, 0, 0}, false}, {1, "b", {0, 1, 0}, false}};
	struct cache_base *b = calloc(1, sizeof(*b));
	atomic_init(&b->refs, 1);
	b->n_cols = 3;
	b->vec_col = 2;
	b->cols = malloc(sizeof(cols));
	memcpy(b->cols, cols, sizeof(cols));
	b->rows = segment(rows, 2);
	b->n_key = 1;
	cr_assert_eq(cache_base_index(b), -EEXIST);
	cache_base_unref(b);
}

Test(cache_snapshot, patches_replace_insert_and_delete)
{
	static const struct row base[] = {{1, "a", {1, 0, 0}, false},
	                                  {2, "b", {0, 1, 0}, false},
	                                  {3, "c", {0, 0, 1}, false},
	                                  {4, "d", {1, 1, 0}, false}};
	struct cache_snapshot *s0 = base_snapshot(base, 4);
	cr_assert_eq(cache_snapshot_live_rows(s0), 4);
	/* UPDATE id 2, INSERT id 5, DELETE id 3 (no row read back) */
	static const struct row p1[] = {{2, "B", {0, 2, 0}, false}, {5, "e", {1, 0, 1}, false}};
	const char *k1[] = {"2", "5", "3"};
	struct cache_snapshot *s1 = patch(s0, k1, 3, p1, 2, 2);
	cr_assert_eq(s1->version, 2);
	cr_assert_eq(s1->base, s0->base, "the base is shared, not copied");
	cr_assert_eq(s1->n_dead, 2);
	cr_assert_eq(cache_snapshot_live_rows(s1), 4);
	char got[16][32];
	size_t n;
	live_rows(s1, got, &n);
	const char *want1[] = {"1:a", "2:B", "4:d", "5:e"};
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(got[i], want1[i]);
	/* the old version is untouched */
	live_rows(s0, got, &n);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(got[1], "2:b");
	/* a second patch: id 5 again (in the delta now), id 2 deleted, id 007
	 * written as the statement did: canonical */
	static const struct row p2[] = {{5, "E", {1, 1, 1}, false}};
	const char *k2[] = {"005", "2"};
	struct cache_snapshot *s2 = patch(s1, k2, 2, p2, 1, 3);
	live_rows(s2, got, &n);
	const char *want2[] = {"1:a", "4:d", "5:E"};
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(got[i], want2[i]);
	cr_assert_eq(cache_segment_rows(s2->delta), 1, "replaced delta rows leave the delta");
	/* a key with no row anywhere: nothing changes but the version */
	const char *k3[] = {"99"};
	struct cache_snapshot *s3 = patch(s2, k3, 1, NULL, 0, 4);
	live_rows(s3, got, &n);
	cr_assert_eq(n, 3);
	cr_assert_eq(s3->version, 4);
	/* re-inserting a deleted base row goes to the delta */
	static const struct row p4[] = {{3, "C", {0, 0, 3}, false}};
	const char *k4[] = {"3"};
	struct cache_snapshot *s4 = patch(s3, k4, 1, p4, 1, 5);
	live_rows(s4, got, &n);
	const char *want4[] = {"1:a", "3:C", "4:d", "5:E"};
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(got[i], want4[i]);
	cache_snapshot_unref(s0);
	cache_snapshot_unref(s1);
	cache_snapshot_unref(s2);
	cache_snapshot_unref(s3);
	cache_snapshot_unref(s4);
}

/* The base + delta scan against one fresh table holding the same rows:
 * the same distances in the same order (rows may be numbered apart). */
Test(cache_snapshot, scan_over_base_and_delta_equals_a_fresh_table)
{
	struct row base[200], upd[60], fresh[200];
	srand(7);
	for (int i = 0; i < 200; i++) {
		base[i] = (struct row){.id = i, .name = "x"};
		for (int d = 0; d < DIM; d++)
			base[i].v[d] = (float)(rand() % 7 - 3);
		base[i].null_v = i % 37 == 0;
	}
	struct cache_snapshot *s = base_snapshot(base, 200);
	/* rewrite 60 rows (ids 0, 3, 6, ...) */
	const char *ids[60];
	char idbuf[60][8];
	for (int i = 0; i < 60; i++) {
		upd[i] = (struct row){.id = i * 3, .name = "y"};
		for (int d = 0; d < DIM; d++)
			upd[i].v[d] = (float)(rand() % 9 - 4) / 2;
		snprintf(idbuf[i], sizeof(idbuf[i]), "%d", i * 3);
		ids[i] = idbuf[i];
	}
	struct cache_snapshot *p = patch(s, ids, 60, upd, 60, 2);
	for (int i = 0; i < 200; i++)
		fresh[i] = i % 3 == 0 && i / 3 < 60 ? upd[i / 3] : base[i];
	struct cache_snapshot *f = base_snapshot(fresh, 200);
	float q[DIM] = {1, -1, 0.5f};
	for (enum vec_metric m = VEC_COSINE; m <= VEC_NEG_IP; m++) {
		for (size_t k = 1; k <= 210; k += 23) {
			for (size_t off = 0; off < 3; off++) {
				struct cache_plan a = {.snap = p,
				                       .metric = m,
				                       .q = q,
				                       .dim = DIM,
				                       .k = k,
				                       .offset = off};
				struct cache_plan b = a;
				b.snap = f;
				struct vec_hit *ha, *hb;
				size_t na, nb;
				cr_assert_eq(cache_plan_run(&a, &ha, &na), 0);
				cr_assert_eq(cache_plan_run(&b, &hb, &nb), 0);
				cr_assert_eq(na, nb, "metric %d k %zu offset %zu", m, k, off);
				for (size_t i = 0; i < na; i++) {
					cr_assert_eq(ha[i].is_null, hb[i].is_null);
					if (!ha[i].is_null)
						cr_assert_eq(ha[i].dist, hb[i].dist,
						             "metric %d k %zu rank %zu", m, k, i);
				}
				free(ha);
				free(hb);
			}
		}
	}
	cache_snapshot_unref(s);
	cache_snapshot_unref(p);
	cache_snapshot_unref(f);
}
