/* Unit tests for src/cache/segment.c: rows kept as the server sent them,
 * vector cells rebuilt from their floats when their text is canonical,
 * copies, joins of parts, and the memory a row takes. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/segment.h"
#include "vec/screen.h"

#define MAX_COLS 4
#define MAX_ROWS 12

struct row {
	const char *cells[MAX_COLS]; /* NULL: SQL NULL */
	bool rebuilt;                /* the vector text is not kept */
};

struct seg_case {
	const char *name;
	size_t n_cols, vec_col, dim;
	bool canonical;
	struct row rows[MAX_ROWS];
	size_t n_rows;
};

/* Rows in the order they are added; cells exactly as a server sent them. */
static const struct seg_case cases[] = {
        {"canonical text is dropped, other text is kept",
         3,
         1,
         3,
         true,
         {
                 {{"1", "[1,0.5,-0]", "a"}, true},
                 {{"2", "[1.0,0.5,-0]", "b"}, false},
                 {{"3", "[1, 0.5, -0]", "c"}, false},
                 {{"4", "[1,0.50,0]", ""}, false},
                 {{"5", "[0.1,0.2,0.3]", NULL}, true},
                 {{"6", "[0.1,0.2,0.30000001]", "x"}, false}, /* reads as 0.3 */
                 {{"7", "[1e0,2,3]", "y"}, false},
                 {{"8", "[16777217,0,0]", "z"}, false}, /* a float prints 16777216 */
                 {{"9", "[16777216,0,0]", "z"}, true},
                 {{NULL, "[-0.0000001,100000000000000000000,1]", NULL}, true},
         },
         10},
        {"NULL vectors stay NULL",
         2,
         0,
         2,
         true,
         {
                 {{NULL, "1"}, false},
                 {{"[1,2]", "2"}, true},
                 {{NULL, NULL}, false},
                 {{"[3,4]", NULL}, true},
         },
         4},
        {"canonical_vectors off keeps every text",
         2,
         1,
         2,
         false,
         {
                 {{"1", "[1,2]"}, false},
                 {{"2", "[1.5,2]"}, false},
                 {{"3", NULL}, false},
         },
         3},
        {"rows of another dimension keep their text (any dimension)",
         2,
         1,
         VEC_DIM_ANY,
         true,
         {
                 {{"1", NULL}, false},
                 {{"2", "[1,2,3]"}, true},
                 {{"3", "[1,2]"}, false},
                 {{"4", "[]"}, false},
                 {{"5", "[4,5,6]"}, true},
                 {{"6", "[7,8,9,10]"}, false},
         },
         6},
        {"rows of another dimension keep their text (declared)",
         2,
         1,
         2,
         true,
         {
                 {{"1", "[1,2,3]"}, false},
                 {{"2", "[1,2]"}, true},
         },
         2},
        {"the vector column alone, first",
         1,
         0,
         VEC_DIM_ANY,
         true,
         {
                 {{"[]"}, true},
                 {{"[]"}, true},
                 {{NULL}, false},
                 {{"[0]"}, false},
         },
         4},
        {"long and empty cells",
         4,
         3,
         1,
         true,
         {
                 {{"", "", "", "[1]"}, true},
                 {{"a longer cell of text, over 250 bytes so that its length takes three "
                   "bytes: 0123456789012345678901234567890123456789012345678901234567890123456"
                   "7890123456789012345678901234567890123456789012345678901234567890123456789"
                   "0123456789012345678901234567890123456789",
                   NULL, "\xF0\x9F\x99\x82", "[2]"},
                  true},
         },
         2},
};

static struct cache_segment_shape shape_of(const struct seg_case *c)
{
	return (struct cache_segment_shape){
	        .n_cols = c->n_cols,
	        .vec_col = c->vec_col,
	        .dim = c->dim,
	        .dialect = VEC_TIDB_MASTER,
	        .canonical_vectors = c->canonical,
	};
}

static void add_row(struct cache_segment_builder *b, const struct seg_case *c, const struct row *r)
{
	unsigned long lens[MAX_COLS];
	for (size_t i = 0; i < c->n_cols; i++)
		lens[i] = r->cells[i] ? (unsigned long)strlen(r->cells[i]) : 0;
	char err[128] = "";
	cr_assert_eq(cache_segment_builder_add(b, r->cells, lens, err, sizeof(err)), 0, "%s: %s",
	             c->name, err);
}

/* A scratch of exactly the size the segment asks for, misaligned, so that
 * ASan sees any write past it. */
static char *scratch_for(const struct cache_segment *s, const struct seg_case *c)
{
	size_t need = cache_segment_scratch_size(s);
	if (need)
		cr_assert_eq(need, cache_segment_vec_text_max(
		                           vec_table_dim(cache_segment_vecs(s), NULL)));
	if (c->dim != VEC_DIM_ANY && need)
		cr_assert_leq(need, cache_segment_vec_text_max(c->dim));
	char *p = malloc(need + 1);
	cr_assert_not_null(p);
	return p;
}

/* Every cell of segment rows [first, first + n) equals c's rows [from, ...). */
static void check_rows(const struct cache_segment *s, size_t first, const struct seg_case *c,
                       size_t from, size_t n, const char *what)
{
	char *scratch = scratch_for(s, c);
	for (size_t k = 0; k < n; k++) {
		const struct row *r = &c->rows[from + k];
		for (size_t i = 0; i < c->n_cols; i++) {
			const uint8_t *p = NULL;
			size_t len = 0;
			bool got = cache_segment_cell(s, first + k, i, scratch + 1, &p, &len);
			if (!r->cells[i]) {
				cr_expect_not(got, "%s (%s): row %zu col %zu is NULL", c->name,
				              what, from + k, i);
				continue;
			}
			cr_assert(got, "%s (%s): row %zu col %zu", c->name, what, from + k, i);
			cr_expect(len == strlen(r->cells[i]) && memcmp(p, r->cells[i], len) == 0,
			          "%s (%s): row %zu col %zu: %.*s, want %s", c->name, what,
			          from + k, i, (int)len, (const char *)p, r->cells[i]);
			bool in_scratch = (const char *)p == scratch + 1;
			cr_expect_eq(in_scratch, i == c->vec_col && r->rebuilt,
			             "%s (%s): row %zu col %zu rebuilt", c->name, what, from + k,
			             i);
		}
		/* The vector is the text's. */
		const char *text = r->cells[c->vec_col];
		float v[8];
		size_t dim;
		bool is_null;
		cr_assert_eq(vec_table_get(cache_segment_vecs(s), first + k, v, 8, &dim, &is_null),
		             0);
		cr_expect_eq(is_null, text == NULL);
		if (text) {
			struct vec_f32 want;
			struct vec_err e;
			vec_f32_init(&want);
			cr_assert_eq(vec_parse(text, strlen(text), &want, &e), 0);
			cr_expect_eq(dim, want.dim);
			cr_expect(dim == 0 || memcmp(v, want.v, dim * sizeof(float)) == 0);
			vec_f32_free(&want);
		}
	}
	free(scratch);
}

static size_t rebuilt_in(const struct seg_case *c, size_t from, size_t n)
{
	size_t k = 0;
	for (size_t i = from; i < from + n; i++)
		k += c->rows[i].rebuilt;
	return k;
}

static struct cache_segment *build(const struct seg_case *c)
{
	struct cache_segment_builder b;
	struct cache_segment_shape shape = shape_of(c);
	cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
	for (size_t r = 0; r < c->n_rows; r++)
		add_row(&b, c, &c->rows[r]);
	cr_assert_eq(cache_segment_builder_rows(&b), c->n_rows);
	cr_assert_gt(cache_segment_builder_bytes(&b), 0);
	struct cache_segment *s = cache_segment_builder_finish(&b);
	cr_assert_not_null(s);
	cr_assert_eq(cache_segment_builder_rows(&b), 0, "empty after finish");
	cache_segment_builder_free(&b);
	return s;
}

Test(cache_segment, cells)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct seg_case *c = &cases[i];
		struct cache_segment *s = build(c);
		cr_assert_eq(cache_segment_rows(s), c->n_rows, "%s", c->name);
		cr_expect_eq(cache_segment_rebuilt_rows(s), rebuilt_in(c, 0, c->n_rows), "%s",
		             c->name);
		cr_expect_eq(cache_segment_scratch_size(s) != 0, rebuilt_in(c, 0, c->n_rows) != 0);
		check_rows(s, 0, c, 0, c->n_rows, "built");
		cr_assert_gt(cache_segment_bytes(s), 0);
		cache_segment_ref(s);
		cache_segment_unref(s);
		cache_segment_unref(s);
	}
}

Test(cache_segment, copy)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct seg_case *c = &cases[i];
		struct cache_segment *s = build(c);
		struct cache_segment_builder b;
		struct cache_segment_shape shape = shape_of(c);
		cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
		/* Every row, in order, then row 0 again after them. */
		for (size_t r = 0; r < c->n_rows; r++)
			cr_assert_eq(cache_segment_builder_copy(&b, s, r), 0);
		cr_assert_eq(cache_segment_builder_copy(&b, s, 0), 0);
		cr_assert_eq(cache_segment_builder_copy(&b, s, c->n_rows), -ERANGE);
		struct cache_segment *d = cache_segment_builder_finish(&b);
		cr_assert_not_null(d);
		cr_assert_eq(cache_segment_rows(d), c->n_rows + 1);
		check_rows(d, 0, c, 0, c->n_rows, "copied");
		cr_expect_eq(cache_segment_rebuilt_rows(d),
		             cache_segment_rebuilt_rows(s) + c->rows[0].rebuilt);
		cache_segment_builder_free(&b);
		cache_segment_unref(d);
		cache_segment_unref(s);
	}
}

/* Parsing apart from the builder (as a loader's threads do), then adding
 * the parsed rows: the same segment as cache_segment_builder_add's. */
Test(cache_segment, parse_then_add)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct seg_case *c = &cases[i];
		struct cache_segment_shape shape = shape_of(c);
		struct cache_segment_builder b;
		cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
		struct vec_f32 v;
		vec_f32_init(&v);
		for (size_t r = 0; r < c->n_rows; r++) {
			const struct row *row = &c->rows[r];
			unsigned long lens[MAX_COLS];
			for (size_t k = 0; k < c->n_cols; k++)
				lens[k] = row->cells[k] ? (unsigned long)strlen(row->cells[k]) : 0;
			const char *cell = row->cells[c->vec_col];
			bool canonical = false;
			char err[64];
			if (cell)
				cr_assert_eq(cache_segment_parse(&shape, cell, lens[c->vec_col], &v,
				                                 &canonical, err, sizeof(err)),
				             0);
			cr_assert_eq(cache_segment_builder_add_parsed(&b, row->cells, lens, v.v,
			                                              cell ? v.dim : 0, canonical),
			             0);
		}
		struct cache_segment *s = cache_segment_builder_finish(&b);
		cr_assert_not_null(s);
		check_rows(s, 0, c, 0, c->n_rows, "parsed apart");
		cr_expect_eq(cache_segment_rebuilt_rows(s), rebuilt_in(c, 0, c->n_rows));
		vec_f32_free(&v);
		cache_segment_builder_free(&b);
		cache_segment_unref(s);
	}
	/* A parse error leaves the reason, as _add gives it. */
	struct cache_segment_shape shape = shape_of(&cases[0]);
	struct vec_f32 v;
	vec_f32_init(&v);
	bool canonical = true;
	char err[64];
	cr_assert_eq(cache_segment_parse(&shape, "[1,", 3, &v, &canonical, err, sizeof(err)),
	             -EINVAL);
	cr_expect_str_eq(err, "Invalid vector text: ");
	cr_expect_not(canonical);
	vec_f32_free(&v);
}

/* Copies of rows into a builder whose table took another dimension first:
 * their vectors cannot be rebuilt there, so their text comes back. */
Test(cache_segment, copy_into_other_dimension)
{
	const struct seg_case *c = &cases[0]; /* dimension 3 */
	struct cache_segment *s = build(c);
	struct cache_segment_shape shape = shape_of(c);
	shape.dim = VEC_DIM_ANY;
	struct cache_segment_builder b;
	cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
	const char *first[3] = {"0", "[1,2]", "w"};
	unsigned long lens[3] = {1, 5, 1};
	char err[64];
	cr_assert_eq(cache_segment_builder_add(&b, first, lens, err, sizeof(err)), 0);
	for (size_t r = 0; r < c->n_rows; r++)
		cr_assert_eq(cache_segment_builder_copy(&b, s, r), 0);
	struct cache_segment *d = cache_segment_builder_finish(&b);
	cr_assert_not_null(d);
	cr_expect_eq(cache_segment_rebuilt_rows(d), 1, "only the first row");
	char *scratch = malloc(cache_segment_scratch_size(d));
	for (size_t r = 0; r < c->n_rows; r++) {
		const uint8_t *p;
		size_t n;
		cr_assert(cache_segment_cell(d, r + 1, 1, scratch, &p, &n));
		cr_expect(n == strlen(c->rows[r].cells[1]) &&
		                  memcmp(p, c->rows[r].cells[1], n) == 0,
		          "row %zu: %.*s", r, (int)n, (const char *)p);
		cr_expect_neq((const char *)p, scratch);
	}
	free(scratch);
	cache_segment_builder_free(&b);
	cache_segment_unref(d);
	cache_segment_unref(s);
}

/* Rows split into pieces built apart (parts or plain builders), joined in
 * order: the same cells as one builder's. */
Test(cache_segment, join)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct seg_case *c = &cases[i];
		struct cache_segment_shape shape = shape_of(c);
		for (int mode = 0; mode < 4; mode++) {
			/* mode bit 0: the first builder is a part; bit 1: the
			 * pieces are parts. Pieces of 1, 2, 3, ... rows. */
			struct cache_segment_builder b;
			cr_assert_eq(mode & 1 ? cache_segment_builder_init_part(&b, &shape)
			                      : cache_segment_builder_init(&b, &shape),
			             0);
			size_t r = 0;
			for (size_t len = 1; r < c->n_rows; len++) {
				struct cache_segment_builder p;
				cr_assert_eq(mode & 2 ? cache_segment_builder_init_part(&p, &shape)
				                      : cache_segment_builder_init(&p, &shape),
				             0);
				for (size_t k = 0; k < len && r < c->n_rows; k++, r++)
					add_row(&p, c, &c->rows[r]);
				cr_assert_eq(cache_segment_builder_join(&b, &p), 0);
				cache_segment_builder_free(&p); /* nothing left to free */
			}
			/* An empty piece joins too. */
			struct cache_segment_builder e;
			cr_assert_eq(cache_segment_builder_init_part(&e, &shape), 0);
			cr_assert_eq(cache_segment_builder_join(&b, &e), 0);
			cr_assert_eq(cache_segment_builder_rows(&b), c->n_rows);
			struct cache_segment *s = cache_segment_builder_finish(&b);
			cr_assert_not_null(s);
			check_rows(s, 0, c, 0, c->n_rows, "joined");
			cr_expect_eq(cache_segment_rebuilt_rows(s), rebuilt_in(c, 0, c->n_rows),
			             "%s mode %d", c->name, mode);
			cache_segment_builder_free(&b);
			cache_segment_unref(s);
		}
	}
}

/* Pieces whose first rows set different dimensions (VEC_DIM_ANY): the
 * joined table takes the first piece's; the other's rebuilt rows get their
 * text back. */
Test(cache_segment, join_other_dimension)
{
	struct cache_segment_shape shape = {.n_cols = 1,
	                                    .vec_col = 0,
	                                    .dim = VEC_DIM_ANY,
	                                    .dialect = VEC_TIDB_MASTER,
	                                    .canonical_vectors = true};
	static const char *const a[] = {"[1,2]", "[3,4]"}, *const bt[] = {"[5,6,7]", "[8,9]"};
	for (int mode = 0; mode < 4; mode++) {
		struct cache_segment_builder x, y;
		cr_assert_eq(mode & 1 ? cache_segment_builder_init_part(&x, &shape)
		                      : cache_segment_builder_init(&x, &shape),
		             0);
		cr_assert_eq(mode & 2 ? cache_segment_builder_init_part(&y, &shape)
		                      : cache_segment_builder_init(&y, &shape),
		             0);
		char err[64];
		for (int i = 0; i < 2; i++) {
			unsigned long la = (unsigned long)strlen(a[i]),
			              lb = (unsigned long)strlen(bt[i]);
			cr_assert_eq(cache_segment_builder_add(&x, &a[i], &la, err, sizeof(err)),
			             0);
			cr_assert_eq(cache_segment_builder_add(&y, &bt[i], &lb, err, sizeof(err)),
			             0);
		}
		cr_assert_eq(cache_segment_builder_join(&x, &y), 0);
		struct cache_segment *s = cache_segment_builder_finish(&x);
		cr_assert_not_null(s);
		cr_expect_eq(vec_table_dim(cache_segment_vecs(s), NULL), 2);
		cr_expect_eq(cache_segment_rebuilt_rows(s), 3, "mode %d", mode);
		char *scratch = malloc(cache_segment_scratch_size(s));
		static const char *const want[] = {"[1,2]", "[3,4]", "[5,6,7]", "[8,9]"};
		for (size_t r = 0; r < 4; r++) {
			const uint8_t *p;
			size_t n;
			cr_assert(cache_segment_cell(s, r, 0, scratch, &p, &n));
			cr_expect(n == strlen(want[r]) && memcmp(p, want[r], n) == 0,
			          "row %zu: %.*s", r, (int)n, (const char *)p);
		}
		free(scratch);
		cache_segment_builder_free(&x);
		cache_segment_unref(s);
	}
}

Test(cache_segment, not_a_vector)
{
	struct cache_segment_shape shape = {.n_cols = 2,
	                                    .vec_col = 1,
	                                    .dim = VEC_DIM_ANY,
	                                    .dialect = VEC_TIDB_MASTER,
	                                    .canonical_vectors = true};
	struct cache_segment_builder b;
	cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
	static const struct {
		const char *text;
		const char *err;
	} bad[] = {
	        {"[1,]", "Invalid vector text: "},
	        {"null", "Invalid vector text: "},
	        {"[1e39]", "value 1e+39 out of range for float32"},
	};
	char err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *cells[2] = {"1", bad[i].text};
		unsigned long lens[2] = {1, (unsigned long)strlen(bad[i].text)};
		cr_assert_eq(cache_segment_builder_add(&b, cells, lens, err, sizeof(err)), -EINVAL);
		cr_expect_str_eq(err, bad[i].err);
		cr_assert_eq(cache_segment_builder_rows(&b), 0, "unchanged");
	}
	/* v8.5 stores what master refuses. */
	shape.dialect = VEC_TIDB_V8_5;
	struct cache_segment_builder v;
	cr_assert_eq(cache_segment_builder_init(&v, &shape), 0);
	const char *cells[2] = {"1", "[1e39]"};
	unsigned long lens[2] = {1, 6};
	cr_assert_eq(cache_segment_builder_add(&v, cells, lens, err, sizeof(err)), 0);
	cache_segment_builder_free(&v);
	cache_segment_builder_free(&b);

	struct cache_segment_shape wrong = {.n_cols = 2, .vec_col = 2, .dim = 3};
	cr_assert_eq(cache_segment_builder_init(&b, &wrong), -EINVAL);
	wrong.vec_col = 1;
	wrong.dim = VEC_MAX_DIM + 1;
	cr_assert_eq(cache_segment_builder_init(&b, &wrong), -EINVAL);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* 768 dimensions, canonical text: at most 1.2 times the float32 plus the
 * other cells, per row. With the text kept, that is where 11.5 KB a row
 * came from. */
Test(cache_segment, bytes_per_row)
{
	enum { DIM = 768, ROWS = 2000 };
	struct cache_segment_shape shape = {.n_cols = 3,
	                                    .vec_col = 1,
	                                    .dim = DIM,
	                                    .dialect = VEC_TIDB_MASTER,
	                                    .canonical_vectors = true};
	struct cache_segment_builder b;
	cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
	float v[DIM];
	struct buf text;
	buf_init(&text);
	size_t other = 0;
	for (size_t r = 0; r < ROWS; r++) {
		for (size_t j = 0; j < DIM; j++)
			v[j] = (float)((double)(int64_t)rng() / 9.2e18);
		buf_reset(&text);
		cr_assert_eq(vec_format_f32_array(v, DIM, &text), 0);
		char id[24], tag[8];
		snprintf(id, sizeof(id), "%zu", r);
		snprintf(tag, sizeof(tag), "t%zu", r % 10);
		const char *cells[3] = {id, (const char *)text.data, tag};
		unsigned long lens[3] = {(unsigned long)strlen(id), (unsigned long)text.len,
		                         (unsigned long)strlen(tag)};
		other += lens[0] + lens[2];
		char err[64];
		cr_assert_eq(cache_segment_builder_add(&b, cells, lens, err, sizeof(err)), 0);
	}
	struct cache_segment *s = cache_segment_builder_finish(&b);
	cr_assert_not_null(s);
	cr_assert_eq(cache_segment_rebuilt_rows(s), ROWS);
	/* The int8 screen ([cache] screening) is counted in the bytes too:
	 * about dim + 29 bytes a row, apart from the rows themselves. */
	size_t screen = cache_segment_screen_bytes(s);
	cr_expect_leq((double)screen / ROWS, 1.2 * (DIM + 29), "screen: %zu bytes", screen);
	double per_row = (double)(cache_segment_bytes(s) - screen) / ROWS;
	double need = 4.0 * DIM + (double)other / ROWS;
	cr_expect_leq(per_row, 1.2 * need, "%.0f bytes a row, %.0f needed", per_row, need);
	/* The last row's text comes back from a scratch of the advertised size. */
	size_t n_scratch = cache_segment_vec_text_max(DIM);
	cr_assert_eq(cache_segment_scratch_size(s), n_scratch);
	char *scratch = malloc(n_scratch);
	const uint8_t *p;
	size_t n;
	cr_assert(cache_segment_cell(s, ROWS - 1, 1, scratch, &p, &n));
	cr_expect(n == text.len && memcmp(p, text.data, n) == 0);
	free(scratch);
	buf_free(&text);
	cache_segment_builder_free(&b);
	cache_segment_unref(s);
}

/* The longest text a vector can print fits the scratch, at every
 * alignment. */
Test(cache_segment, scratch_bound)
{
	enum { DIM = 100 };
	struct cache_segment_shape shape = {.n_cols = 1,
	                                    .vec_col = 0,
	                                    .dim = DIM,
	                                    .dialect = VEC_TIDB_MASTER,
	                                    .canonical_vectors = true};
	float v[DIM];
	for (size_t j = 0; j < DIM; j++)
		v[j] = j % 3 ? -FLT_TRUE_MIN : j % 2 ? -nextafterf(FLT_MAX, 0) : -1.17549435e-38f;
	struct buf text;
	buf_init(&text);
	cr_assert_eq(vec_format_f32_array(v, DIM, &text), 0);
	struct cache_segment_builder b;
	cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
	const char *cells[1] = {(const char *)text.data};
	unsigned long lens[1] = {(unsigned long)text.len};
	char err[64];
	cr_assert_eq(cache_segment_builder_add(&b, cells, lens, err, sizeof(err)), 0);
	struct cache_segment *s = cache_segment_builder_finish(&b);
	cr_assert_eq(cache_segment_rebuilt_rows(s), 1);
	size_t max = cache_segment_vec_text_max(DIM);
	cr_assert_leq(text.len, max);
	cr_assert_geq(cache_segment_vec_text_max(VEC_DIM_ANY),
	              cache_segment_vec_text_max(VEC_MAX_DIM));
	for (size_t a = 0; a < 4; a++) {
		char *raw = malloc(max + a);
		const uint8_t *p;
		size_t n;
		/* Exactly max bytes from raw + a: ASan catches anything past. */
		cr_assert(cache_segment_cell(s, 0, 0, raw + a, &p, &n));
		cr_expect(n == text.len && memcmp(p, text.data, n) == 0);
		free(raw);
	}
	buf_free(&text);
	cache_segment_builder_free(&b);
	cache_segment_unref(s);
}

/* A segment of n rows of dim random floats; defer: its screen is left for
 * cache_segment_build_screen(). */
static struct cache_segment *random_segment(size_t n, size_t dim, bool defer)
{
	struct cache_segment_shape shape = {.n_cols = 2,
	                                    .vec_col = 1,
	                                    .dim = dim,
	                                    .dialect = VEC_TIDB_MASTER,
	                                    .canonical_vectors = true};
	struct cache_segment_builder b;
	cr_assert_eq(cache_segment_builder_init(&b, &shape), 0);
	float *v = malloc(dim * sizeof(float));
	struct buf text;
	buf_init(&text);
	for (size_t r = 0; r < n; r++) {
		for (size_t j = 0; j < dim; j++)
			v[j] = (float)((double)(int64_t)rng() / 9.2e18);
		buf_reset(&text);
		cr_assert_eq(vec_format_f32_array(v, dim, &text), 0);
		char id[24];
		snprintf(id, sizeof(id), "%zu", r);
		const char *cells[2] = {id, (const char *)text.data};
		unsigned long lens[2] = {(unsigned long)strlen(id), (unsigned long)text.len};
		char err[64];
		cr_assert_eq(cache_segment_builder_add(&b, cells, lens, err, sizeof(err)), 0);
	}
	if (defer)
		cache_segment_builder_defer_screen(&b);
	struct cache_segment *s = cache_segment_builder_finish(&b);
	cr_assert_not_null(s);
	cache_segment_builder_free(&b);
	buf_free(&text);
	free(v);
	return s;
}

static void *build_screen_thread(void *arg)
{
	return cache_segment_build_screen(arg) ? arg : NULL;
}

/* A deferred screen: counted in the bytes before it exists (exactly what
 * it will take), absent from scans until built, built once however many
 * threads try at once; the same bytes as one built at the finish. */
Test(cache_segment, deferred_screen)
{
	static const size_t dims[] = {16, 100, 768};
	for (size_t di = 0; di < 3; di++) {
		size_t dim = dims[di], n = dim == 768 ? 3000 : 700;
		rng_state = 0x9E3779B97F4A7C15ull + di;
		struct cache_segment *now = random_segment(n, dim, false);
		rng_state = 0x9E3779B97F4A7C15ull + di;
		struct cache_segment *later = random_segment(n, dim, true);
		cr_assert_not_null(cache_segment_screen(now));
		cr_assert_not(cache_segment_screen_pending(now));
		cr_assert_null(cache_segment_screen(later));
		cr_assert(cache_segment_screen_pending(later));
		size_t reserved = cache_segment_screen_bytes(later);
		cr_assert_eq(reserved, vec_screen_bytes(cache_segment_screen(now)), "dim %zu", dim);
		cr_assert_eq(cache_segment_bytes(later), cache_segment_bytes(now));
		pthread_t th[4];
		for (int i = 0; i < 4; i++)
			cr_assert_eq(pthread_create(&th[i], NULL, build_screen_thread, later), 0);
		int built = 0;
		for (int i = 0; i < 4; i++) {
			void *r;
			pthread_join(th[i], &r);
			built += r != NULL;
		}
		cr_assert_eq(built, 1, "dim %zu: built %d times", dim, built);
		cr_assert_not(cache_segment_screen_pending(later));
		cr_assert_not_null(cache_segment_screen(later));
		cr_assert(vec_screen_same(cache_segment_screen(now), cache_segment_screen(later)));
		cr_assert_eq(vec_screen_bytes(cache_segment_screen(later)), reserved);
		cr_assert_not(cache_segment_build_screen(later));
		cache_segment_unref(now);
		cache_segment_unref(later);
	}
	/* Too small to screen: nothing pending, nothing counted. */
	struct cache_segment *small = random_segment(20, 100, true);
	cr_assert_not(cache_segment_screen_pending(small));
	cr_assert_eq(cache_segment_screen_bytes(small), 0);
	cr_assert_not(cache_segment_build_screen(small));
	cache_segment_unref(small);
}
