/* Plans, runs and encodes answers to recognised kNN queries from snapshots.
 * Whatever cannot be answered exactly is refused with a reason, and the
 * query goes to TiDB. */
#include "cache/serve.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/mysql.h"
#include "proto/packet.h"
#include "proto/rows.h"
#include "vec/batch.h"
#include "vec/knn.h"
#include "vec/screen.h"
#include "vec/vec.h"

#define REFUSE(why)                                                                                \
	do {                                                                                       \
		*reason = (why);                                                                   \
		return 1;                                                                          \
	} while (0)

size_t cache_format_double(double x, enum cache_double_format f, char out[static 48])
{
	/* MariaDB's my_gcvt uses TiDB's thresholds (checked against 10.11:
	 * fixed for 1e-15 <= |x| < 1e15, shortest digits) but prints -0 as 0. */
	if (f == CACHE_DOUBLE_MARIADB && x == 0) {
		out[0] = '0';
		out[1] = 0;
		return 1;
	}
	return vec_format_double(x, out);
}

/* ---- plan ---- */

static bool name_is(const char *sql, const struct sql_name *n, const char *s)
{
	return sql_name_eq(sql, n, s, strlen(s));
}

/* A column's qualifier: absent, the alias if there is one, else the table
 * name; its schema (db.t.col) must be the table's. */
static bool qualifier_ok(const char *sql, const struct sql_knn *k, const struct sql_name *schema,
                         const struct sql_name *qual, const struct cache_snapshot *s)
{
	if (sql_name_present(schema) && !name_is(sql, schema, s->db))
		return false;
	if (!sql_name_present(qual))
		return true;
	if (sql_name_present(&k->alias))
		return sql_name_same(sql, qual, &k->alias) && !sql_name_present(schema);
	return name_is(sql, qual, s->table);
}

static ssize_t find_column(const char *sql, const struct sql_name *name,
                           const struct cache_snapshot *s)
{
	for (size_t i = 0; i < s->n_cols; i++)
		if (name_is(sql, name, s->cols[i].name))
			return (ssize_t)i;
	return -1;
}

static int add_out(struct cache_plan *p, enum cache_out_kind kind, size_t col)
{
	struct cache_out_col *c = realloc(p->cols, (p->ncols + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	p->cols = c;
	c[p->ncols].kind = kind;
	c[p->ncols].col = col;
	p->ncols++;
	return 0;
}

/* A constant's value: from the statement, or from a bound parameter. */
struct value {
	bool is_int, is_str, is_num, is_null;
	bool negative;
	const char *digits; /* is_int: without sign */
	size_t ndigits;
	double num;
	char *str; /* is_str: unescaped, malloc'd */
	size_t nstr;
};

static int literal_value(const char *sql, unsigned lexflags, const struct sql_lit *lit,
                         const struct cache_param *params, size_t nparams, struct value *v)
{
	memset(v, 0, sizeof(*v));
	if (lit->kind == SQL_LIT_PARAM) {
		if (lit->param >= nparams)
			return 1;
		const struct cache_param *pa = &params[lit->param];
		if (pa->is_null) {
			v->is_null = true;
			return 0;
		}
		if (pa->is_int) {
			v->is_int = v->is_num = true;
			v->negative = pa->n > 0 && pa->p[0] == '-';
			v->digits = pa->p + v->negative;
			v->ndigits = pa->n - v->negative;
			v->num = strtod(pa->p, NULL);
			return 0;
		}
		/* A string parameter: TiDB compares it as a string to string
		 * columns; against numbers it would convert: not handled here. */
		v->is_str = true;
		v->str = malloc(pa->n + 1);
		if (!v->str)
			return -ENOMEM;
		memcpy(v->str, pa->p, pa->n);
		v->nstr = pa->n;
		return 0;
	}
	if (lit->kind == SQL_LIT_STRING) {
		if (lit->flags & SQL_TOKF_INTRO)
			return 1; /* _latin1'..': another character set */
		v->is_str = true;
		v->str = malloc(lit->len + 1);
		if (!v->str)
			return -ENOMEM;
		if (sql_lit_string(sql, lit, lexflags, v->str, lit->len + 1, &v->nstr) < 0)
			return 1;
		return 0;
	}
	v->is_num = true;
	v->num = lit->num;
	v->negative = lit->negative;
	if (lit->kind == SQL_LIT_INT) {
		v->is_int = true;
		v->digits = sql + lit->off;
		v->ndigits = lit->len;
	}
	return 0;
}

/* Parses decimal digits into a magnitude; false past UINT64_MAX. */
static bool parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

/* Adds one constant to f as its column's comparison needs it. */
static int add_constant(struct cache_filter *f, const struct value *v)
{
	if (f->cmp == CACHE_CMP_INT || f->cmp == CACHE_CMP_UINT) {
		uint64_t mag;
		if (!v->is_int || !parse_u64(v->digits, v->ndigits, &mag))
			return 1;
		int64_t x;
		if (f->cmp == CACHE_CMP_UINT) {
			/* A negative constant against an unsigned column: TiDB's
			 * answer is easy to get wrong; leave it to TiDB. */
			if (v->negative)
				return 1;
			x = (int64_t)mag;
		} else {
			if (v->negative ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
				return 1;
			x = v->negative ? (int64_t)(0 - mag) : (int64_t)mag;
		}
		int64_t *ints = realloc(f->ints, (f->nvals + 1) * sizeof(*ints));
		if (!ints)
			return -ENOMEM;
		f->ints = ints;
		ints[f->nvals++] = x;
		return 0;
	}
	if (!v->is_str)
		return 1;
	size_t n = v->nstr;
	if (f->cmp == CACHE_CMP_PADSPACE)
		while (n > 0 && v->str[n - 1] == ' ')
			n--;
	size_t *off = realloc(f->str_off, (f->nvals + 2) * sizeof(*off));
	if (!off)
		return -ENOMEM;
	f->str_off = off;
	if (f->nvals == 0)
		off[0] = 0;
	if (buf_append(&f->strs, v->str, n) < 0)
		return -ENOMEM;
	off[++f->nvals] = f->strs.len;
	return 0;
}

static void free_filters(struct cache_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].ints);
		buf_free(&f[i].strs);
		free(f[i].str_off);
	}
	free(f);
}

/* Compiles one filter of a level. col is the resolved column (or SIZE_MAX
 * for the distance). Returns 0, 1 (refuse) or -ENOMEM. */
static int compile_filter(const char *sql, unsigned lexflags, const struct sql_knn *k,
                          const struct sql_knn_filter *kf, size_t col, struct cache_plan *p,
                          bool outer, const struct cache_param *params, size_t nparams)
{
	if (col == SIZE_MAX) {
		/* distance < x or <= x */
		bool *has = outer ? &p->outer_has_th : &p->has_th;
		struct vec_threshold *th = outer ? &p->outer_th : &p->th;
		if (*has || (kf->op != SQL_KNN_LT && kf->op != SQL_KNN_LE) || kf->nlit != 1)
			return 1;
		struct value v;
		int rc = literal_value(sql, lexflags, &k->lits[kf->lit], params, nparams, &v);
		free(v.str);
		if (rc != 0 || !v.is_num)
			return rc ? rc : 1;
		*has = true;
		th->value = v.num;
		th->inclusive = kf->op == SQL_KNN_LE;
		return 0;
	}
	struct cache_filter **fs = outer ? &p->outer_filters : &p->filters;
	size_t *nf = outer ? &p->nouter_filters : &p->nfilters;
	struct cache_filter *grown = realloc(*fs, (*nf + 1) * sizeof(**fs));
	if (!grown)
		return -ENOMEM;
	*fs = grown;
	struct cache_filter *f = &grown[*nf];
	memset(f, 0, sizeof(*f));
	buf_init(&f->strs);
	(*nf)++;
	f->col = col;
	f->op = kf->op;
	f->cmp = p->snap->cols[col].cmp;
	if (kf->op == SQL_KNN_IS_NULL || kf->op == SQL_KNN_IS_NOT_NULL)
		return 0;
	if (f->cmp == CACHE_CMP_NONE)
		return 1;
	for (size_t i = 0; i < kf->nlit; i++) {
		struct value v;
		int rc = literal_value(sql, lexflags, &k->lits[kf->lit + i], params, nparams, &v);
		if (rc == 0)
			rc = v.is_null ? 1 : add_constant(f, &v);
		free(v.str);
		if (rc != 0)
			return rc;
	}
	return f->nvals ? 0 : 1;
}

/* inner_target()'s answer for the distance: (ssize_t)SIZE_MAX would be -1,
 * "something else". */
#define TARGET_DISTANCE ((ssize_t)-2)

/* The table column an inner item or a filter names, TARGET_DISTANCE for the
 * distance, or -1 when it is something else. */
static ssize_t inner_target(const char *sql, const struct sql_knn *k, int inner,
                            const struct sql_name *name, const struct cache_snapshot *s)
{
	if (inner < 0 || (size_t)inner >= k->inner.nitems)
		return -1;
	const struct sql_knn_item *it = &k->inner.items[inner];
	if (it->kind == SQL_KNN_ITEM_DISTANCE)
		return TARGET_DISTANCE;
	if (it->kind == SQL_KNN_ITEM_COLUMN)
		return find_column(sql, &it->name, s);
	if (it->kind == SQL_KNN_ITEM_STAR && name)
		return find_column(sql, name, s);
	return -1;
}

static int build_inner_cols(const char *sql, const struct sql_knn *k, struct cache_plan *p,
                            const char **reason)
{
	const struct cache_snapshot *s = p->snap;
	for (size_t i = 0; i < k->inner.nitems; i++) {
		const struct sql_knn_item *it = &k->inner.items[i];
		int rc = 0;
		switch (it->kind) {
		case SQL_KNN_ITEM_STAR:
			if (!qualifier_ok(sql, k, &it->schema, &it->qual, s))
				REFUSE("qualifier");
			for (size_t c = 0; c < s->n_cols && rc == 0; c++)
				rc = add_out(p, CACHE_OUT_CELL, c);
			break;
		case SQL_KNN_ITEM_COLUMN: {
			if (!qualifier_ok(sql, k, &it->schema, &it->qual, s))
				REFUSE("qualifier");
			ssize_t c = find_column(sql, &it->name, s);
			if (c < 0)
				REFUSE("column");
			rc = add_out(p, CACHE_OUT_CELL, (size_t)c);
			break;
		}
		case SQL_KNN_ITEM_DISTANCE:
			rc = add_out(p, CACHE_OUT_DIST, 0);
			break;
		case SQL_KNN_ITEM_SCORE:
			rc = add_out(p, CACHE_OUT_SCORE, 0);
			break;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* pytidb: SELECT candidates.*, 1 - candidates._distance AS _score FROM (...). */
static int build_outer_cols(const char *sql, const struct sql_knn *k, struct cache_plan *p,
                            const char **reason)
{
	struct cache_out_col *inner = p->cols;
	size_t ninner = p->ncols;
	p->cols = NULL;
	p->ncols = 0;
	int rc = 0;
	for (size_t i = 0; i < k->outer.nitems && rc == 0; i++) {
		const struct sql_knn_item *it = &k->outer.items[i];
		if (it->kind == SQL_KNN_ITEM_STAR) {
			for (size_t c = 0; c < ninner && rc == 0; c++)
				rc = add_out(p, inner[c].kind, inner[c].col);
		} else if (it->kind == SQL_KNN_ITEM_SCORE) {
			rc = add_out(p, CACHE_OUT_SCORE, 0);
		} else if (it->kind == SQL_KNN_ITEM_DISTANCE) {
			rc = add_out(p, CACHE_OUT_DIST, 0);
		} else {
			ssize_t c = inner_target(sql, k, it->inner, &it->name, p->snap);
			if (c == -1)
				rc = 1;
			else if (c == TARGET_DISTANCE)
				rc = add_out(p, CACHE_OUT_DIST, 0);
			else
				rc = add_out(p, CACHE_OUT_CELL, (size_t)c);
		}
	}
	free(inner);
	if (rc == 1)
		REFUSE("outer_column");
	return rc;
}

static int count_value(const struct sql_knn_count *c, const struct cache_param *params,
                       size_t nparams, size_t *out)
{
	if (!c->present) {
		*out = SIZE_MAX;
		return 0;
	}
	uint64_t v = c->value;
	if (c->is_param) {
		if (c->param >= nparams || !params[c->param].is_int || params[c->param].is_null ||
		    !parse_u64(params[c->param].p, params[c->param].n, &v))
			return 1;
	}
	*out = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
	return 0;
}

static int compile_level(const char *sql, unsigned lexflags, const struct sql_knn *k,
                         const struct sql_knn_select *lvl, bool outer, struct cache_plan *p,
                         const struct cache_param *params, size_t nparams, const char **reason)
{
	for (size_t i = 0; i < lvl->nfilters; i++) {
		const struct sql_knn_filter *f = &lvl->filters[i];
		ssize_t col;
		if (f->on_distance) {
			col = TARGET_DISTANCE;
		} else if (outer) {
			col = inner_target(sql, k, f->inner, &f->column, p->snap);
		} else {
			if (!qualifier_ok(sql, k, &f->schema, &f->qual, p->snap))
				REFUSE("qualifier");
			col = find_column(sql, &f->column, p->snap);
		}
		if (col == -1)
			REFUSE("filter_column");
		int rc = compile_filter(sql, lexflags, k, f,
		                        col == TARGET_DISTANCE ? SIZE_MAX : (size_t)col, p, outer,
		                        params, nparams);
		if (rc != 0) {
			if (rc > 0)
				*reason = "filter";
			return rc;
		}
	}
	size_t lim, off;
	if (count_value(&lvl->limit, params, nparams, &lim) ||
	    count_value(&lvl->offset, params, nparams, &off))
		REFUSE("limit");
	if (lim == SIZE_MAX)
		REFUSE("limit");
	if (off == SIZE_MAX)
		off = 0;
	if (outer) {
		p->outer_k = lim;
		p->outer_offset = off;
	} else {
		p->k = lim;
		p->offset = off;
	}
	return 0;
}

static int query_vector(const char *sql, const struct sql_knn *k, struct cache_plan *p,
                        const struct cache_param *params, size_t nparams)
{
	const float *v = k->vec.v;
	size_t dim = k->vec.dim;
	struct vec_f32 parsed;
	vec_f32_init(&parsed);
	if (k->vec_is_param) {
		/* Every '?' standing for the vector must hold the same text. */
		const struct cache_param *first = NULL;
		for (size_t i = 0; i < k->nvec_params; i++) {
			unsigned idx = k->vec_params[i];
			if (idx >= nparams || params[idx].is_null || params[idx].is_int)
				return 1;
			if (first && (first->n != params[idx].n ||
			              memcmp(first->p, params[idx].p, first->n) != 0))
				return 1;
			first = &params[idx];
		}
		struct vec_err err;
		if (!first || vec_parse(first->p, first->n, &parsed, &err) < 0) {
			vec_f32_free(&parsed);
			return 1; /* TiDB answers with its error */
		}
		v = parsed.v;
		dim = parsed.dim;
	}
	p->q = malloc((dim ? dim : 1) * sizeof(float));
	if (!p->q) {
		vec_f32_free(&parsed);
		return -ENOMEM;
	}
	if (dim)
		memcpy(p->q, v, dim * sizeof(float));
	p->dim = dim;
	vec_f32_free(&parsed);
	(void)sql;
	return 0;
}

int cache_plan_build(struct cache_plan *p, const char *sql, const struct sql_knn *k,
                     unsigned lexflags, struct cache_snapshot *snap, const char *db, size_t db_len,
                     const struct cache_param *params, size_t nparams, const char **reason)
{
	memset(p, 0, sizeof(*p));
	cache_snapshot_ref(snap);
	p->snap = snap;
	p->metric = k->metric;
	p->arith = VEC_ARITH_SEPARATE;
	p->dfmt = snap->mariadb ? CACHE_DOUBLE_MARIADB : CACHE_DOUBLE_TIDB;
	/* The table: db.table, or table in the session's database. */
	if (sql_name_present(&k->schema)
	            ? !name_is(sql, &k->schema, snap->db)
	            : (db_len != strlen(snap->db) || strncasecmp(db, snap->db, db_len) != 0))
		REFUSE("table");
	if (!name_is(sql, &k->table, snap->table))
		REFUSE("table");
	if (!qualifier_ok(sql, k, &k->vcol_schema, &k->vcol_qual, snap) ||
	    !name_is(sql, &k->vcol, snap->cols[snap->vec_col].name))
		REFUSE("vector_column");
	int rc = query_vector(sql, k, p, params, nparams);
	if (rc != 0) {
		*reason = "vector";
		return rc;
	}
	for (int part = 0; part < 2; part++) {
		const struct cache_segment *seg = part ? snap->delta : snap->base->rows;
		if (!seg)
			continue;
		const struct vec_table *vt = cache_segment_vecs(seg);
		size_t tdim = vec_table_dim(vt, NULL);
		if (vec_table_rows(vt) > vec_table_null_count(vt) && tdim != p->dim)
			REFUSE("dimension"); /* TiDB: vectors have different dimensions */
		if (vec_table_mixed(vt, NULL, NULL))
			REFUSE("dimension");
	}
	if ((rc = build_inner_cols(sql, k, p, reason)) != 0)
		return rc;
	if ((rc = compile_level(sql, lexflags, k, &k->inner, false, p, params, nparams, reason)))
		return rc;
	if (k->has_outer) {
		p->outer = true;
		if ((rc = build_outer_cols(sql, k, p, reason)) != 0)
			return rc;
		if ((rc = compile_level(sql, lexflags, k, &k->outer, true, p, params, nparams,
		                        reason)))
			return rc;
	}
	return 0;
}

void cache_plan_free(struct cache_plan *p)
{
	free(p->q);
	free(p->cols);
	free_filters(p->filters, p->nfilters);
	free_filters(p->outer_filters, p->nouter_filters);
	if (p->snap)
		cache_snapshot_unref(p->snap);
	memset(p, 0, sizeof(*p));
}

/* ---- run ---- */

static bool parse_i64(const uint8_t *p, size_t n, bool is_unsigned, int64_t *out)
{
	bool neg = n > 0 && p[0] == '-';
	uint64_t mag;
	if (!parse_u64((const char *)p + neg, n - neg, &mag))
		return false;
	if (is_unsigned) {
		*out = (int64_t)mag;
		return !neg;
	}
	if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return true;
}

static int compare_ints(int64_t a, int64_t b, bool is_unsigned)
{
	if (is_unsigned)
		return (uint64_t)a < (uint64_t)b ? -1 : (uint64_t)a > (uint64_t)b;
	return a < b ? -1 : a > b;
}

static int compare_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static bool op_holds(int op, int cmp)
{
	switch (op) {
	case SQL_KNN_EQ:
	case SQL_KNN_IN:
		return cmp == 0;
	case SQL_KNN_NE:
	case SQL_KNN_NOT_IN:
		return cmp != 0;
	case SQL_KNN_LT:
		return cmp < 0;
	case SQL_KNN_LE:
		return cmp <= 0;
	case SQL_KNN_GT:
		return cmp > 0;
	case SQL_KNN_GE:
		return cmp >= 0;
	}
	return false;
}

/* SQL semantics: a NULL cell satisfies only IS NULL. */
static bool filter_passes(const struct cache_filter *f, const struct cache_snapshot *s, size_t row)
{
	const uint8_t *cell;
	size_t n;
	/* Filters compare integer and string columns, never the vector. */
	bool present = cache_snapshot_cell(s, row, f->col, NULL, &cell, &n);
	if (f->op == SQL_KNN_IS_NULL)
		return !present;
	if (f->op == SQL_KNN_IS_NOT_NULL)
		return present;
	if (!present)
		return false;
	bool list = f->op == SQL_KNN_IN || f->op == SQL_KNN_NOT_IN;
	bool is_unsigned = f->cmp == CACHE_CMP_UINT;
	int64_t iv = 0;
	if ((f->cmp == CACHE_CMP_INT || is_unsigned) && !parse_i64(cell, n, is_unsigned, &iv))
		return false;
	if (f->cmp == CACHE_CMP_PADSPACE)
		while (n > 0 && cell[n - 1] == ' ')
			n--;
	for (size_t i = 0; i < f->nvals; i++) {
		int c = f->cmp == CACHE_CMP_INT || is_unsigned
		                ? compare_ints(iv, f->ints[i], is_unsigned)
		                : compare_bytes(cell, n, f->strs.data + f->str_off[i],
		                                f->str_off[i + 1] - f->str_off[i]);
		if (!list)
			return op_holds(f->op, c);
		if (c == 0)
			return f->op == SQL_KNN_IN;
	}
	return f->op == SQL_KNN_NOT_IN;
}

static bool row_passes(const struct cache_filter *fs, size_t n, const struct cache_snapshot *s,
                       size_t row)
{
	for (size_t i = 0; i < n; i++)
		if (!filter_passes(&fs[i], s, row))
			return false;
	return true;
}

static bool threshold_passes(const struct vec_threshold *th, const struct vec_hit *h)
{
	return !h->is_null && (th->inclusive ? h->dist <= th->value : h->dist < th->value);
}

/* The row filter of one segment's scan: the segment's rows [r0, r1) (its
 * own numbering; first is its first row in the snapshot) that are set in
 * live (NULL: all) and pass the inner filters. *out stays NULL when every
 * row takes part. */
static int seg_allowed(const struct cache_plan *p, const struct cache_segment *seg, size_t first,
                       const uint64_t *live, size_t r0, size_t r1, uint64_t **out)
{
	const struct cache_snapshot *s = p->snap;
	size_t rows = cache_segment_rows(seg);
	*out = NULL;
	if (r1 > rows)
		r1 = rows;
	if (!p->nfilters && !live && r0 == 0 && r1 == rows)
		return 0;
	size_t words = (rows + 63) / 64;
	uint64_t *allowed = calloc(words + 1, sizeof(uint64_t));
	if (!allowed)
		return -ENOMEM;
	for (size_t w = r0 / 64; r0 < r1 && w < (r1 + 63) / 64; w++) {
		uint64_t bits = live ? live[w] : ~0ull;
		size_t lo = w * 64;
		if (r0 > lo)
			bits &= ~0ull << (r0 - lo);
		if (r1 - lo < 64)
			bits &= (1ull << (r1 - lo)) - 1;
		if (p->nfilters)
			for (uint64_t b = bits; b; b &= b - 1) {
				size_t r = w * 64 + (size_t)__builtin_ctzll(b);
				if (!row_passes(p->filters, p->nfilters, s, first + r))
					bits &= ~(1ull << (r % 64));
			}
		allowed[w] = bits;
	}
	*out = allowed;
	return 0;
}

/* The best `want` hits (after skipping none) of rows [r0, r1) of one
 * segment, as snapshot rows, through the segment's screen when it has one:
 * the answers are the plain scan's either way (vec/screen.h). */
static int seg_scan(const struct cache_plan *p, const struct cache_segment *seg, size_t first,
                    const uint64_t *live, size_t r0, size_t r1, size_t want, struct vec_hit *out,
                    size_t *n, struct cache_run_stats *st)
{
	uint64_t *allowed;
	*n = 0;
	int rc = seg_allowed(p, seg, first, live, r0, r1, &allowed);
	if (rc)
		return rc;
	const struct vec_table *t = cache_segment_vecs(seg);
	const struct vec_screen *scr = cache_segment_screen(seg);
	const struct vec_threshold *th = p->has_th ? &p->th : NULL;
	if (scr)
		rc = vec_knn_screened(t, scr, p->metric, p->arith, p->q, p->dim, want, 0, th,
		                      allowed, out, n);
	else
		rc = vec_knn_arith(t, p->metric, p->arith, p->q, p->dim, want, 0, th, allowed, out,
		                   n);
	free(allowed);
	if (st && scr)
		st->screened++;
	for (size_t i = 0; rc == 0 && i < *n; i++)
		out[i].row += first;
	return rc;
}

/* The inner LIMIT cut to the snapshot's rows, and what each segment's scan
 * must give for the merge: its best OFFSET + LIMIT. */
static size_t plan_k(const struct cache_plan *p)
{
	return p->k < p->snap->n_rows ? p->k : p->snap->n_rows;
}

static size_t plan_want(const struct cache_plan *p)
{
	size_t k = plan_k(p);
	size_t want = p->offset + k < p->offset ? SIZE_MAX : p->offset + k;
	return want > p->snap->n_rows ? p->snap->n_rows : want;
}

/* The answer from the best hits of disjoint row sets (base parts, delta):
 * merged in TiDB's order (NULL first, ascending, ties by row), OFFSET
 * skipped, cut to LIMIT, then pytidb's outer query. *hits is malloc'd. */
static int plan_answer(const struct cache_plan *p, const struct vec_hit *const *lists,
                       const size_t *n, size_t nlists, struct vec_hit **hits, size_t *nhits)
{
	const struct cache_snapshot *s = p->snap;
	size_t k = plan_k(p);
	struct vec_hit *h = malloc((k ? k : 1) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	size_t nh = vec_hits_merge(lists, n, nlists, p->offset, k, h);
	if (p->outer) {
		/* The inner answer, filtered again and cut to the outer LIMIT;
		 * its order (by distance) stays the inner order. */
		size_t kept = 0, skipped = 0;
		for (size_t i = 0; i < nh && kept < p->outer_k; i++) {
			if (p->outer_has_th && !threshold_passes(&p->outer_th, &h[i]))
				continue;
			if (!row_passes(p->outer_filters, p->nouter_filters, s, h[i].row))
				continue;
			if (skipped < p->outer_offset) {
				skipped++;
				continue;
			}
			h[kept++] = h[i];
		}
		nh = kept;
	}
	*hits = h;
	*nhits = nh;
	return 0;
}

struct cache_split {
	const struct cache_plan *p;
	size_t nparts;
	size_t want;
	/* Part i's best hits at hits + i * want, n[i] of them; the delta's at
	 * hits + nparts * want, n[nparts]. */
	struct vec_hit *hits;
	size_t *n;
	struct cache_run_stats *st; /* one per part: written by its thread */
};

size_t cache_plan_split_parts(const struct cache_plan *p, size_t max_parts)
{
	/* Below this many blocks a part costs more to hand to a thread than
	 * its scan takes. */
	const size_t min_blocks = 256;
	const struct vec_table *t = cache_segment_vecs(p->snap->base->rows);
	size_t parts = t->n_blocks / min_blocks;
	if (parts > max_parts)
		parts = max_parts;
	if (parts > VEC_MERGE_MAX - 1)
		parts = VEC_MERGE_MAX - 1; /* the delta's list is one more */
	return parts ? parts : 1;
}

struct cache_split *cache_split_new(const struct cache_plan *p, size_t nparts)
{
	struct cache_split *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	if (nparts < 1)
		nparts = 1;
	if (nparts > VEC_MERGE_MAX - 1)
		nparts = VEC_MERGE_MAX - 1;
	sp->p = p;
	sp->nparts = nparts;
	sp->want = plan_want(p);
	sp->hits = malloc(((nparts + 1) * sp->want + 1) * sizeof(*sp->hits));
	sp->n = calloc(nparts + 1, sizeof(*sp->n));
	sp->st = calloc(nparts + 1, sizeof(*sp->st));
	if (!sp->hits || !sp->n || !sp->st) {
		cache_split_free(sp);
		return NULL;
	}
	return sp;
}

int cache_split_part(struct cache_split *sp, size_t part)
{
	const struct cache_plan *p = sp->p;
	const struct cache_segment *base = p->snap->base->rows;
	size_t r0, r1;
	vec_split_rows(cache_segment_vecs(base), part, sp->nparts, &r0, &r1);
	return seg_scan(p, base, 0, p->snap->live, r0, r1, sp->want, sp->hits + part * sp->want,
	                &sp->n[part], &sp->st[part]);
}

int cache_split_finish(struct cache_split *sp, struct vec_hit **hits, size_t *nhits,
                       struct cache_run_stats *st)
{
	const struct cache_plan *p = sp->p;
	const struct cache_snapshot *s = p->snap;
	size_t nl = sp->nparts;
	*hits = NULL;
	*nhits = 0;
	if (s->delta) {
		int rc = seg_scan(p, s->delta, s->n_base, NULL, 0, SIZE_MAX, sp->want,
		                  sp->hits + nl * sp->want, &sp->n[nl], &sp->st[nl]);
		if (rc)
			return rc;
		nl++;
	}
	const struct vec_hit *lists[VEC_MERGE_MAX];
	for (size_t i = 0; i < nl; i++)
		lists[i] = sp->hits + i * sp->want;
	if (st)
		for (size_t i = 0; i < nl; i++)
			st->screened += sp->st[i].screened;
	return plan_answer(p, lists, sp->n, nl, hits, nhits);
}

void cache_split_free(struct cache_split *sp)
{
	if (!sp)
		return;
	free(sp->hits);
	free(sp->n);
	free(sp->st);
	free(sp);
}

int cache_plan_run_stats(const struct cache_plan *p, struct vec_hit **hits, size_t *nhits,
                         struct cache_run_stats *st)
{
	*hits = NULL;
	*nhits = 0;
	struct cache_split *sp = cache_split_new(p, 1);
	if (!sp)
		return -ENOMEM;
	int rc = cache_split_part(sp, 0);
	if (rc == 0)
		rc = cache_split_finish(sp, hits, nhits, st);
	cache_split_free(sp);
	return rc;
}

int cache_plan_run(const struct cache_plan *p, struct vec_hit **hits, size_t *nhits)
{
	return cache_plan_run_stats(p, hits, nhits, NULL);
}

bool cache_plans_batchable(const struct cache_plan *a, const struct cache_plan *b)
{
	return a->snap == b->snap && a->metric == b->metric && a->arith == b->arith &&
	       a->dim == b->dim;
}

/* One segment's scan for every plan of a batch, in one shared pass:
 * through the segment's screen when it has one (the int8 codes a tile at a
 * time for all plans, then each plan's few candidate blocks exactly), else
 * over the float32 blocks. */
static void seg_scan_batch(const struct cache_plan *const *plans, size_t n,
                           const struct cache_segment *seg, size_t first, const uint64_t *live,
                           const size_t *want, struct vec_hit *const *out, size_t *nout, int *rcs,
                           struct cache_run_stats *st)
{
	struct vec_batch_query *bq = calloc(n, sizeof(*bq));
	uint64_t **allowed = calloc(n, sizeof(*allowed));
	size_t *who = calloc(n, sizeof(*who));
	size_t nb = 0;
	if (!bq || !allowed || !who) {
		for (size_t i = 0; i < n; i++)
			rcs[i] = rcs[i] ? rcs[i] : -ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cache_plan *p = plans[i];
		nout[i] = 0;
		if (rcs[i] != 0)
			continue;
		rcs[i] = seg_allowed(p, seg, first, live, 0, SIZE_MAX, &allowed[i]);
		if (rcs[i] != 0)
			continue;
		bq[nb] = (struct vec_batch_query){
		        .q = p->q,
		        .dim = p->dim,
		        .k = want[i],
		        .th = p->has_th ? &p->th : NULL,
		        .allowed = allowed[i],
		        .out = out[i],
		};
		who[nb++] = i;
	}
	if (nb > 0) {
		/* Each query's own rc says how it ended. */
		const struct vec_screen *scr = cache_segment_screen(seg);
		const struct vec_table *t = cache_segment_vecs(seg);
		enum vec_metric m = plans[who[0]]->metric;
		enum vec_arith arith = plans[who[0]]->arith;
		int rc = scr ? vec_knn_screened_batch(t, scr, m, arith, bq, nb, NULL)
		             : vec_knn_batch(t, m, arith, bq, nb);
		(void)rc;
		if (st) {
			st->batched_passes++;
			if (scr)
				st->screened += nb;
		}
	}
	for (size_t b = 0; b < nb; b++) {
		size_t i = who[b];
		rcs[i] = bq[b].rc;
		nout[i] = bq[b].n_out;
		for (size_t h = 0; rcs[i] == 0 && h < nout[i]; h++)
			out[i][h].row += first;
	}
done:
	for (size_t i = 0; allowed && i < n; i++)
		free(allowed[i]);
	free(allowed);
	free(bq);
	free(who);
}

int cache_plans_run_batch(const struct cache_plan *const *plans, size_t n, struct vec_hit **hits,
                          size_t *nhits, int *rcs, struct cache_run_stats *st)
{
	for (size_t i = 0; i < n; i++) {
		hits[i] = NULL;
		nhits[i] = 0;
		rcs[i] = i > 0 && !cache_plans_batchable(plans[0], plans[i]) ? -EINVAL : 0;
	}
	if (n == 0)
		return 0;
	const struct cache_snapshot *s = plans[0]->snap;
	int nseg = s->delta ? 2 : 1;
	size_t *want = calloc(n, sizeof(*want));
	size_t *nout = calloc(2 * n, sizeof(*nout));
	struct vec_hit **out = calloc(2 * n, sizeof(*out));
	int rc = want && nout && out ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		want[i] = plan_want(plans[i]);
		for (int g = 0; g < nseg; g++)
			if (!(out[g * n + i] = malloc((want[i] + 1) * sizeof(struct vec_hit))))
				rc = -ENOMEM;
	}
	if (rc == 0) {
		seg_scan_batch(plans, n, s->base->rows, 0, s->live, want, out, nout, rcs, st);
		if (s->delta)
			seg_scan_batch(plans, n, s->delta, s->n_base, NULL, want, out + n, nout + n,
			               rcs, st);
		for (size_t i = 0; i < n; i++) {
			if (rcs[i] != 0)
				continue;
			const struct vec_hit *lists[2] = {out[i], out[n + i]};
			size_t counts[2] = {nout[i], nout[n + i]};
			rcs[i] = plan_answer(plans[i], lists, counts, (size_t)nseg, &hits[i],
			                     &nhits[i]);
		}
	} else {
		for (size_t i = 0; i < n; i++)
			rcs[i] = rc;
	}
	for (size_t i = 0; out && i < 2 * n; i++)
		free(out[i]);
	free(out);
	free(nout);
	free(want);
	int first = 0;
	for (size_t i = 0; i < n && !first; i++)
		first = rcs[i];
	return first;
}

/* ---- encoding ---- */

/* One answer row as cells for proto/rows. A computed double in a text row
 * is formatted here, into dtext[c], as the upstream prints it. */
static void row_cells(const struct cache_plan *p, const struct vec_hit *h, bool binary,
                      struct proto_cell *cells, char (*dtext)[48], char *scratch,
                      size_t scratch_one)
{
	for (size_t c = 0; c < p->ncols; c++) {
		const struct cache_out_col *oc = &p->cols[c];
		struct proto_cell *cell = &cells[c];
		memset(cell, 0, sizeof(*cell));
		if (oc->kind == CACHE_OUT_CELL) {
			char *sc = NULL;
			if (oc->col == p->snap->vec_col && scratch) {
				sc = scratch;
				scratch += scratch_one;
			}
			if (cache_snapshot_cell(p->snap, h->row, oc->col, sc, &cell->p, &cell->n)) {
				cell->kind = PROTO_CELL_TEXT;
				cell->is_unsigned = p->snap->cols[oc->col].cmp == CACHE_CMP_UINT;
			}
			continue;
		}
		if (h->is_null)
			continue;
		double d = oc->kind == CACHE_OUT_DIST ? h->dist : 1.0 - h->dist;
		if (binary) {
			cell->kind = PROTO_CELL_DOUBLE;
			cell->d = d;
		} else {
			cell->kind = PROTO_CELL_TEXT;
			cell->n = cache_format_double(d, p->dfmt, dtext[c]);
			cell->p = (const uint8_t *)dtext[c];
		}
	}
}

int cache_encode_rows(const struct cache_plan *p, const struct vec_hit *hits, size_t nhits,
                      bool binary, const uint8_t *types, struct buf *out, uint8_t *seq)
{
	if (nhits == 0)
		return 0;
	size_t ncols = p->ncols ? p->ncols : 1;
	struct proto_cell *cells = malloc(ncols * sizeof(*cells));
	char(*dtext)[48] = malloc(ncols * sizeof(*dtext));
	/* Room for the vector cells of one row rebuilt from their floats. */
	size_t vec_cells = 0;
	for (size_t c = 0; c < p->ncols; c++)
		vec_cells +=
		        p->cols[c].kind == CACHE_OUT_CELL && p->cols[c].col == p->snap->vec_col;
	size_t scratch_one = cache_snapshot_scratch_size(p->snap);
	/* 0: no vector cell is rebuilt, every one is kept as sent. */
	bool need_scratch = vec_cells && scratch_one;
	char *scratch = need_scratch ? malloc(vec_cells * scratch_one) : NULL;
	int rc = cells && dtext && (scratch || !need_scratch) ? 0 : -ENOMEM;
	for (size_t i = 0; i < nhits && rc == 0; i++) {
		ssize_t start = proto_pkt_begin(out);
		if (start < 0) {
			rc = (int)start;
			break;
		}
		row_cells(p, &hits[i], binary, cells, dtext, scratch, scratch_one);
		rc = binary ? proto_append_binary_row(out, cells, types, p->ncols)
		            : proto_append_text_row(out, cells, p->ncols);
		if (rc == 0)
			rc = proto_pkt_end(out, (size_t)start, seq);
	}
	free(cells);
	free(dtext);
	free(scratch);
	return rc;
}

_Static_assert(CACHE_SWEEP_MAX == VEC_SWEEP_MAX, "a cache sweep is a vec sweep");

/* A plan in a sweep: its base segment's best hits go to part 0 of a
 * one-part split, whose cache_split_finish adds the delta and merges. */
struct sweep_plan {
	struct vec_batch_query bq; /* first: vec_sweep_step gives it back */
	struct cache_split *split;
	void *tag;
	uint64_t *allowed;
};

static void sweep_plan_free(struct sweep_plan *sp)
{
	cache_split_free(sp->split);
	free(sp->allowed);
	free(sp);
}

struct cache_sweep {
	/* What a plan must share to join (cache_plans_batchable): the
	 * snapshot is referenced while the sweep lives. */
	struct cache_snapshot *snap;
	enum vec_metric metric;
	enum vec_arith arith;
	size_t dim;
	struct vec_sweep *w;
	struct sweep_plan *held[CACHE_SWEEP_MAX]; /* the plans in w (NULL: free) */
};

struct cache_sweep *cache_sweep_new(const struct cache_plan *plan)
{
	const struct cache_segment *base = plan->snap->base->rows;
	const struct vec_screen *scr = cache_segment_screen(base);
	if (!scr)
		return NULL;
	struct cache_sweep *sw = calloc(1, sizeof(*sw));
	if (!sw)
		return NULL;
	sw->w = vec_sweep_new(cache_segment_vecs(base), scr, plan->metric, plan->arith);
	if (!sw->w) {
		free(sw);
		return NULL;
	}
	sw->snap = plan->snap;
	cache_snapshot_ref(sw->snap);
	sw->metric = plan->metric;
	sw->arith = plan->arith;
	sw->dim = plan->dim;
	return sw;
}

bool cache_sweep_joins(const struct cache_sweep *sw, const struct cache_plan *plan)
{
	return plan->snap == sw->snap && plan->metric == sw->metric && plan->arith == sw->arith &&
	       plan->dim == sw->dim;
}

size_t cache_sweep_size(const struct cache_sweep *sw)
{
	return vec_sweep_size(sw->w);
}

/* sp's base hits are in: the delta's, the merge, and the answer. Frees sp. */
static void sweep_answer(struct sweep_plan *sp, struct cache_sweep_done *done)
{
	*done = (struct cache_sweep_done){.tag = sp->tag, .rc = sp->bq.rc};
	if (done->rc == 0) {
		sp->split->n[0] = sp->bq.n_out;
		done->rc = cache_split_finish(sp->split, &done->hits, &done->nhits, NULL);
	}
	sweep_plan_free(sp);
}

int cache_sweep_add(struct cache_sweep *sw, const struct cache_plan *plan, void *tag,
                    struct cache_sweep_done *done)
{
	if (!cache_sweep_joins(sw, plan))
		return -EINVAL;
	if (cache_sweep_size(sw) == CACHE_SWEEP_MAX)
		return -EBUSY;
	const struct cache_snapshot *s = plan->snap;
	struct sweep_plan *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->tag = tag;
	sp->split = cache_split_new(plan, 1);
	int rc = sp->split ? seg_allowed(plan, s->base->rows, 0, s->live, 0, SIZE_MAX, &sp->allowed)
	                   : -ENOMEM;
	if (rc) {
		sweep_plan_free(sp);
		return rc;
	}
	sp->bq = (struct vec_batch_query){
	        .q = plan->q,
	        .dim = plan->dim,
	        .k = sp->split->want,
	        .th = plan->has_th ? &plan->th : NULL,
	        .allowed = sp->allowed,
	        .out = sp->split->hits,
	};
	rc = vec_sweep_add(sw->w, &sp->bq);
	if (rc < 0) {
		sweep_plan_free(sp);
		return rc;
	}
	if (rc == 1) {
		sweep_answer(sp, done);
		return 1;
	}
	for (size_t i = 0; i < CACHE_SWEEP_MAX; i++)
		if (!sw->held[i]) {
			sw->held[i] = sp;
			break;
		}
	return 0;
}

size_t cache_sweep_step(struct cache_sweep *sw, struct cache_sweep_done *done)
{
	struct vec_batch_query *fin[VEC_SWEEP_MAX];
	bool shared[VEC_SWEEP_MAX];
	size_t n = vec_sweep_step(sw->w, fin, shared);
	for (size_t i = 0; i < n; i++) {
		struct sweep_plan *sp = (struct sweep_plan *)fin[i];
		for (size_t h = 0; h < CACHE_SWEEP_MAX; h++)
			if (sw->held[h] == sp)
				sw->held[h] = NULL;
		sweep_answer(sp, &done[i]);
		done[i].shared = shared[i];
	}
	return n;
}

void cache_sweep_free(struct cache_sweep *sw)
{
	if (!sw)
		return;
	vec_sweep_free(sw->w);
	for (size_t i = 0; i < CACHE_SWEEP_MAX; i++)
		if (sw->held[i])
			sweep_plan_free(sw->held[i]);
	cache_snapshot_unref(sw->snap);
	free(sw);
}
