/* The kNN recogniser, with lexer and recogniser flags from the input's first
 * byte. A recognised statement must describe itself inside its own text:
 * names, items, filters and constants in bounds, parameter numbers below the
 * count of '?', the query vector as vec_parse reads its literal, and the
 * shape hash that of the shape text. Parsing again into the same
 * description (as the session reuses it) must give the same answer. The
 * shape hash, streamed while normalising, must be the hash of the shape text.
 */
#include "fuzz.h"

#include <errno.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sql/digest.h"
#include "sql/knn.h"

static size_t g_n;

static void name_ok(const struct sql_name *nm)
{
	if (sql_name_present(nm))
		FUZZ_CHECK(nm->off <= g_n && nm->len <= g_n - nm->off);
}

static void count_ok(const struct sql_knn_count *c, const struct sql_knn *k)
{
	if (c->present && c->is_param)
		FUZZ_CHECK(c->param < k->nparams);
}

static void select_ok(const struct sql_knn_select *sel, const struct sql_knn *k, bool outer)
{
	FUZZ_CHECK(sel->nitems <= sel->cap_items && sel->nfilters <= sel->cap_filters);
	FUZZ_CHECK(sel->nitems > 0);
	for (size_t i = 0; i < sel->nitems; i++) {
		const struct sql_knn_item *it = &sel->items[i];
		name_ok(&it->schema);
		name_ok(&it->qual);
		name_ok(&it->name);
		name_ok(&it->alias);
		FUZZ_CHECK(it->off <= g_n && it->len <= g_n - it->off);
		if (outer && it->kind != SQL_KNN_ITEM_STAR)
			FUZZ_CHECK(it->inner >= 0 && (size_t)it->inner < k->inner.nitems);
		else
			FUZZ_CHECK(it->inner == -1);
	}
	for (size_t i = 0; i < sel->nfilters; i++) {
		const struct sql_knn_filter *f = &sel->filters[i];
		name_ok(&f->schema);
		name_ok(&f->qual);
		name_ok(&f->column);
		FUZZ_CHECK(f->lit <= k->nlits && f->nlit <= k->nlits - f->lit);
		if (outer)
			FUZZ_CHECK(f->inner >= 0 && (size_t)f->inner < k->inner.nitems);
		if (f->op == SQL_KNN_IS_NULL || f->op == SQL_KNN_IS_NOT_NULL)
			FUZZ_CHECK(f->nlit == 0);
		else if (f->op == SQL_KNN_IN || f->op == SQL_KNN_NOT_IN)
			FUZZ_CHECK(f->nlit >= 1);
		else
			FUZZ_CHECK(f->nlit == 1);
	}
	count_ok(&sel->limit, k);
	count_ok(&sel->offset, k);
}

static void check(const char *s, size_t n, unsigned flags, const struct sql_knn *k)
{
	name_ok(&k->schema);
	name_ok(&k->table);
	name_ok(&k->alias);
	name_ok(&k->vcol_schema);
	name_ok(&k->vcol_qual);
	name_ok(&k->vcol);
	FUZZ_CHECK(sql_name_present(&k->table) && sql_name_present(&k->vcol));
	FUZZ_CHECK(k->reason == NULL);
	FUZZ_CHECK(k->nlits <= k->cap_lits);
	for (size_t i = 0; i < k->nlits; i++) {
		const struct sql_lit *l = &k->lits[i];
		FUZZ_CHECK(l->off <= n && l->len <= n - l->off);
		if (l->kind == SQL_LIT_PARAM)
			FUZZ_CHECK(l->param < k->nparams);
		if (l->kind == SQL_LIT_STRING) {
			char *v = malloc(l->len + 1);
			size_t vn;
			FUZZ_CHECK(sql_lit_string(s, l, flags, v, l->len, &vn) == 0 &&
			           vn <= l->len);
			free(v);
		}
	}
	select_ok(&k->inner, k, false);
	if (k->has_outer)
		select_ok(&k->outer, k, true);
	FUZZ_CHECK(k->nvec_params <= SQL_KNN_MAX_VEC_PARAMS);
	if (k->vec_is_param) {
		FUZZ_CHECK(k->nvec_params >= 1);
		for (size_t i = 0; i < k->nvec_params; i++)
			FUZZ_CHECK(k->vec_params[i] < k->nparams);
	} else {
		/* The literal's value is what vec_parse makes of it. */
		const struct sql_lit *l = &k->vec_lit;
		FUZZ_CHECK(l->kind == SQL_LIT_STRING && l->off <= n && l->len <= n - l->off);
		/* '[]' is a vector too: TiDB answers the dimension mismatch. */
		FUZZ_CHECK(k->vec.dim <= VEC_MAX_DIM);
		char *v = malloc(l->len + 1);
		size_t vn;
		FUZZ_CHECK(sql_lit_string(s, l, flags, v, l->len, &vn) == 0);
		struct vec_f32 a;
		struct vec_err err;
		vec_f32_init(&a);
		FUZZ_CHECK(vec_parse(v, vn, &a, &err) == 0);
		FUZZ_CHECK(a.dim == k->vec.dim &&
		           (a.dim == 0 || memcmp(a.v, k->vec.v, a.dim * sizeof(float)) == 0));
		vec_f32_free(&a);
		free(v);
	}
	struct buf shape;
	buf_init(&shape);
	FUZZ_CHECK(sql_shape_text(s, n, flags, k, &shape) == 0);
	FUZZ_CHECK(sql_shape_hash(s, n, flags, k) == k->shape);
	/* The hash is streamed while normalising; it must be the hash of the
	 * text (or, with too many kept spans, of the statement itself). */
	if (shape.len == n && n > 0 && memcmp(shape.data, s, n) == 0 &&
	    k->shape == XXH3_64bits_withSeed(s, n, 1))
		;
	else
		FUZZ_CHECK(k->shape == XXH3_64bits(shape.data, shape.len));
	buf_free(&shape);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t f = fuzz_u8(&in);
	unsigned flags = (f & (SQL_LEX_NO_BACKSLASH_ESCAPES | SQL_LEX_ANSI_QUOTES)) |
	                 (f & 0x80 ? SQL_KNN_DQUOTE_STRINGS : 0);
	char *s = (char *)fuzz_dup(in.p, in.n);
	size_t n = in.n;
	g_n = n;

	struct sql_knn k;
	sql_knn_init(&k);
	int rc = sql_knn_parse(s, n, flags, &k);
	FUZZ_CHECK(rc == 0 || rc == SQL_KNN_NO || rc == -ENOMEM);
	if (rc == SQL_KNN_NO)
		FUZZ_CHECK(k.reason != NULL && k.reason[0] != 0);
	if (rc == 0)
		check(s, n, flags, &k);
	uint64_t shape = k.shape;
	size_t nitems = k.inner.nitems, nlits = k.nlits;
	const char *reason = k.reason;

	/* Again, into the same description. */
	int rc2 = sql_knn_parse(s, n, flags, &k);
	FUZZ_CHECK(rc2 == rc);
	if (rc == 0) {
		FUZZ_CHECK(k.shape == shape && k.inner.nitems == nitems && k.nlits == nlits);
		check(s, n, flags, &k);
	} else if (rc == SQL_KNN_NO) {
		FUZZ_CHECK(k.reason == reason);
	}
	sql_knn_free(&k);
	free(s);
	return 0;
}
