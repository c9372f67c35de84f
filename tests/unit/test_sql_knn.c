/* Unit tests for src/sql/knn: the exact statements real clients send
 * (SQLAlchemy + tidb-vector, pytidb 0.0.14, prepared statements) with every
 * extracted field checked, one rejected case per reason, shapes, and every
 * prefix of accepted statements under ASan. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/digest.h"
#include "sql/knn.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	memcpy(p, s, n);
	return p;
}

/* A growing text the renderers append to. */
struct out {
	char s[4096];
	size_t n;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(o->s + o->n, sizeof(o->s) - o->n, fmt, ap);
	va_end(ap);
	cr_assert(w >= 0 && (size_t)w < sizeof(o->s) - o->n);
	o->n += (size_t)w;
}

static void put_name(struct out *o, const char *s, const struct sql_name *nm)
{
	char buf[256];
	cr_assert_eq(sql_name_copy(s, nm, buf, sizeof(buf)), 0);
	put(o, "%s", buf);
}

/* [schema.][qual.]name, the parts that are present. */
static void put_ref(struct out *o, const char *s, const struct sql_name *schema,
                    const struct sql_name *qual, const struct sql_name *name)
{
	if (sql_name_present(schema)) {
		put_name(o, s, schema);
		put(o, ".");
	}
	if (sql_name_present(qual)) {
		put_name(o, s, qual);
		put(o, ".");
	}
	put_name(o, s, name);
}

static void put_lit(struct out *o, const char *s, const struct sql_lit *l, unsigned flags)
{
	char buf[256];
	size_t len;
	switch (l->kind) {
	case SQL_LIT_PARAM:
		put(o, "?%u", l->param);
		break;
	case SQL_LIT_STRING:
		cr_assert_eq(sql_lit_string(s, l, flags, buf, sizeof(buf), &len), 0);
		put(o, "'%.*s'", (int)len, buf);
		break;
	default:
		put(o, "%s%.*s", l->negative ? "-" : "", (int)l->len, s + l->off);
		/* The double agrees with the text. */
		snprintf(buf, sizeof(buf), "%s%.*s", l->negative ? "-" : "", (int)l->len,
		         s + l->off);
		cr_assert_eq(l->num, strtod(buf, NULL));
		break;
	}
}

static void put_count(struct out *o, const struct sql_knn_count *c)
{
	if (c->is_param)
		put(o, "?%u", c->param);
	else
		put(o, "%llu", (unsigned long long)c->value);
}

static void put_select(struct out *o, const char *s, const struct sql_knn *k,
                       const struct sql_knn_select *sel, unsigned flags)
{
	static const char *const ops[] = {"=",  "<>", "<",      "<=",      ">",
	                                  ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"};
	static const char *const orders[] = {"expr", "alias", "pos", "derived"};
	put(o, "sel=[");
	for (size_t i = 0; i < sel->nitems; i++) {
		const struct sql_knn_item *it = &sel->items[i];
		if (i)
			put(o, ", ");
		switch (it->kind) {
		case SQL_KNN_ITEM_COLUMN:
			put(o, "c:");
			put_ref(o, s, &it->schema, &it->qual, &it->name);
			break;
		case SQL_KNN_ITEM_STAR:
			if (sql_name_present(&it->qual)) {
				put_ref(o, s, &it->schema, &(struct sql_name){0}, &it->qual);
				put(o, ".");
			}
			put(o, "*");
			break;
		case SQL_KNN_ITEM_DISTANCE:
			put(o, "dist");
			if (sql_name_present(&it->name)) {
				put(o, ":");
				put_ref(o, s, &it->schema, &it->qual, &it->name);
			}
			break;
		case SQL_KNN_ITEM_SCORE:
			put(o, "score");
			break;
		}
		if (it->inner >= 0)
			put(o, "->%d", it->inner);
		if (sql_name_present(&it->alias)) {
			put(o, " as ");
			put_name(o, s, &it->alias);
		}
	}
	put(o, "]");
	if (sel->nfilters) {
		put(o, " where=[");
		for (size_t i = 0; i < sel->nfilters; i++) {
			const struct sql_knn_filter *f = &sel->filters[i];
			if (i)
				put(o, " AND ");
			if (f->on_distance)
				put(o, "dist");
			else
				put_ref(o, s, &f->schema, &f->qual, &f->column);
			if (f->inner >= 0)
				put(o, "->%d", f->inner);
			put(o, " %s", ops[f->op]);
			if (f->op == SQL_KNN_IN || f->op == SQL_KNN_NOT_IN)
				put(o, " (");
			for (size_t j = 0; j < f->nlit; j++) {
				put(o, j                                                  ? ", "
				       : (f->op == SQL_KNN_IN || f->op == SQL_KNN_NOT_IN) ? ""
				                                                          : " ");
				put_lit(o, s, &k->lits[f->lit + j], flags);
			}
			if (f->op == SQL_KNN_IN || f->op == SQL_KNN_NOT_IN)
				put(o, ")");
		}
		put(o, "]");
	}
	put(o, " order=%s limit=", orders[sel->order_by]);
	put_count(o, &sel->limit);
	if (sel->offset.present) {
		put(o, " offset=");
		put_count(o, &sel->offset);
	}
}

/* Everything sql_knn_parse extracted, as one line. */
static void render(struct out *o, const char *s, const struct sql_knn *k, unsigned flags)
{
	static const char *const metrics[] = {"cosine", "l2", "l1", "nip"};
	struct buf b;
	put(o, "from=");
	put_ref(o, s, &(struct sql_name){0}, &k->schema, &k->table);
	if (sql_name_present(&k->alias)) {
		put(o, "@");
		put_name(o, s, &k->alias);
	}
	put(o, " %s(", metrics[k->metric]);
	struct out vec = {.n = 0};
	if (k->vec_is_param) {
		for (size_t i = 0; i < k->nvec_params; i++)
			put(&vec, "%s?%u", i ? "," : "", k->vec_params[i]);
	} else {
		buf_init(&b);
		cr_assert_eq(vec_format_f32_array(k->vec.v, k->vec.dim, &b), 0);
		put(&vec, "%.*s", (int)b.len, (char *)b.data);
		buf_free(&b);
	}
	if (k->vec_first)
		put(o, "%s, ", vec.s);
	put_ref(o, s, &k->vcol_schema, &k->vcol_qual, &k->vcol);
	if (!k->vec_first)
		put(o, ", %s", vec.s);
	put(o, ") ");
	put_select(o, s, k, &k->inner, flags);
	if (k->has_outer) {
		put(o, " | outer ");
		put_name(o, s, &k->outer_alias);
		put(o, " ");
		put_select(o, s, k, &k->outer, flags);
	}
	put(o, " params=%u", k->nparams);
}

struct knn_case {
	const char *sql;
	unsigned flags;
	const char *want; /* the rendering, or the reason when rejected */
};

/* Parses an exact-size copy; returns the rendering or "NO:reason". */
static void parse_case(const char *sql, size_t n, unsigned flags, struct out *o)
{
	char *in = dup_exact(sql, n);
	struct sql_knn k;
	sql_knn_init(&k);
	int rc = sql_knn_parse(in, n, flags, &k);
	cr_assert(rc == 0 || rc == SQL_KNN_NO, "rc %d", rc);
	if (rc == 0) {
		cr_assert_null(k.reason);
		render(o, in, &k, flags);
		cr_assert_eq(k.shape, sql_shape_hash(in, n, flags, &k));
	} else {
		cr_assert_not_null(k.reason);
		put(o, "NO:%s", k.reason);
	}
	sql_knn_free(&k);
	free(in);
}

static void run_cases(const struct knn_case *cases, size_t ncases, bool accept)
{
	for (size_t i = 0; i < ncases; i++) {
		struct out o = {.n = 0};
		char want[256];
		parse_case(cases[i].sql, strlen(cases[i].sql), cases[i].flags, &o);
		if (accept)
			snprintf(want, sizeof(want), "%s", cases[i].want);
		else
			snprintf(want, sizeof(want), "NO:%s", cases[i].want);
		cr_expect_str_eq(o.s, accept ? cases[i].want : want,
		                 "case %zu: %s\n got: %s\nwant: %s", i, cases[i].sql, o.s,
		                 accept ? cases[i].want : want);
	}
}

/* What the clients send, copied from their output (newlines are real). */
#define SQLA_1                                                                                     \
	"SELECT documents.id AS documents_id, documents.content AS documents_content, "            \
	"documents.embedding AS documents_embedding, VEC_COSINE_DISTANCE(documents.embedding, "    \
	"'[1, 2, 3]') AS distance \nFROM documents ORDER BY distance \n LIMIT 3"
#define SQLA_FILTER                                                                                \
	"SELECT documents.id AS documents_id, documents.content AS documents_content, "            \
	"documents.embedding AS documents_embedding, VEC_COSINE_DISTANCE(documents.embedding, "    \
	"'[1, 2, 3]') AS distance \nFROM documents \nWHERE "                                       \
	"VEC_COSINE_DISTANCE(documents.embedding, '[1, 2, 3]') < 0.2e0 ORDER BY distance \n "      \
	"LIMIT 3"
#define SQLA_ORDER_EXPR                                                                            \
	"SELECT documents.id AS documents_id, documents.content AS documents_content, "            \
	"documents.embedding AS documents_embedding \nFROM documents ORDER BY "                    \
	"VEC_L2_DISTANCE(documents.embedding, '[1.0, 2.0, 3.0]') \n LIMIT 3"
#define SQLA_CORE                                                                                  \
	"SELECT documents.id, VEC_NEGATIVE_INNER_PRODUCT(documents.embedding, '[1, 2, 3]') AS d "  \
	"\nFROM documents \nWHERE documents.id IN (1, 2) ORDER BY d \n LIMIT 2, 5"
#define PYTIDB_INNER(fn, vec, lim)                                                                 \
	"SELECT candidates.id, candidates.text, candidates.user_id, candidates.text_vec, "         \
	"candidates._distance, 1 - candidates._distance AS _score \nFROM (SELECT "                 \
	"_inner_hit.id AS id, _inner_hit.text AS text, _inner_hit.user_id AS user_id, "            \
	"_inner_hit.text_vec AS text_vec, " fn "(_inner_hit.text_vec, '" vec "') AS _distance "    \
	"\nFROM chunks AS _inner_hit ORDER BY _distance ASC \n LIMIT " lim ") AS candidates "
#define PYTIDB_1                                                                                   \
	PYTIDB_INNER("VEC_COSINE_DISTANCE", "[1.0, 2.0, 3.0]", "30")                               \
	"ORDER BY candidates._distance ASC \n LIMIT 3"
#define PYTIDB_FILTER                                                                              \
	PYTIDB_INNER("VEC_COSINE_DISTANCE", "[0.1, 0.2, 0.3]", "50")                               \
	"\nWHERE candidates.user_id = 1 ORDER BY candidates._distance ASC \n LIMIT 5"
#define PYTIDB_THRESHOLD                                                                           \
	PYTIDB_INNER("VEC_COSINE_DISTANCE", "[0.1, 0.2, 0.3]", "50")                               \
	"\nWHERE candidates._distance <= 0.5e0 ORDER BY candidates._distance ASC \n LIMIT 5"
#define PYTIDB_NUMPY_IN                                                                            \
	PYTIDB_INNER("VEC_L2_DISTANCE", "[0.1,0.2,0.3]", "200")                                    \
	"\nWHERE candidates.user_id IN (1, 2) ORDER BY candidates._distance ASC \n LIMIT 200"
#define PYTIDB_NIN                                                                                 \
	PYTIDB_INNER("VEC_COSINE_DISTANCE", "[1, 2, 3]", "100")                                    \
	"\nWHERE (candidates.user_id NOT IN (1, 2)) AND candidates.text = 'it\\'s' AND "           \
	"candidates._distance IS NOT NULL ORDER BY candidates._distance ASC \n LIMIT 10"
#define PYTIDB_RANGE                                                                               \
	PYTIDB_INNER("VEC_L1_DISTANCE", "[1.5, 2, 3]", "100")                                      \
	"\nWHERE candidates.user_id > 1.5e0 AND candidates.user_id <= 9 AND "                      \
	"candidates._distance >= 0.1e0 AND candidates._distance <= 0.9e0 ORDER BY "                \
	"candidates._distance ASC \n LIMIT 10"
#define PYTIDB_OR                                                                                  \
	PYTIDB_INNER("VEC_COSINE_DISTANCE", "[1.5, 2, 3]", "100")                                  \
	"\nWHERE candidates.user_id = 1 OR candidates.user_id = 2 ORDER BY candidates._distance "  \
	"ASC \n LIMIT 10"
#define PYTIDB_PREFILTER                                                                           \
	"SELECT _hit.id, _hit.text, _hit.user_id, _hit.text_vec, "                                 \
	"VEC_COSINE_DISTANCE(_hit.text_vec, '[1.5, 2, 3]') AS _distance, 1 - "                     \
	"VEC_COSINE_DISTANCE(_hit.text_vec, '[1.5, 2, 3]') AS _score \nFROM chunks AS _hit "       \
	"\nWHERE _hit.user_id > 1.5e0 AND _hit.user_id <= 9 \nHAVING _distance IS NOT NULL AND "   \
	"_distance <= 0.4e0 ORDER BY _distance ASC \n LIMIT 10"
#define PYTIDB_INNER_OUT                                                                           \
	" sel=[c:_inner_hit.id as id, c:_inner_hit.text as text, c:_inner_hit.user_id as "         \
	"user_id, c:_inner_hit.text_vec as text_vec, dist as _distance] order=alias limit="
#define PYTIDB_OUTER_SEL                                                                           \
	" | outer candidates sel=[c:candidates.id->0, c:candidates.text->1, "                      \
	"c:candidates.user_id->2, c:candidates.text_vec->3, dist:candidates._distance->4, "        \
	"score->4 as _score]"

Test(sql_knn, client_forms)
{
	static const struct knn_case cases[] = {
	        {SQLA_1, 0,
	         "from=documents cosine(documents.embedding, [1,2,3]) sel=[c:documents.id as "
	         "documents_id, c:documents.content as documents_content, c:documents.embedding as "
	         "documents_embedding, dist as distance] order=alias limit=3 params=0"},
	        {SQLA_FILTER, 0,
	         "from=documents cosine(documents.embedding, [1,2,3]) sel=[c:documents.id as "
	         "documents_id, c:documents.content as documents_content, c:documents.embedding as "
	         "documents_embedding, dist as distance] where=[dist < 0.2e0] order=alias limit=3 "
	         "params=0"},
	        {SQLA_ORDER_EXPR, 0,
	         "from=documents l2(documents.embedding, [1,2,3]) sel=[c:documents.id as "
	         "documents_id, c:documents.content as documents_content, c:documents.embedding as "
	         "documents_embedding] order=expr limit=3 params=0"},
	        {SQLA_CORE, 0,
	         "from=documents nip(documents.embedding, [1,2,3]) sel=[c:documents.id, dist as d] "
	         "where=[documents.id IN (1, 2)] order=alias limit=5 offset=2 params=0"},
	        {PYTIDB_1, 0,
	         "from=chunks@_inner_hit cosine(_inner_hit.text_vec, [1,2,3])" PYTIDB_INNER_OUT
	         "30" PYTIDB_OUTER_SEL " order=derived limit=3 params=0"},
	        {PYTIDB_FILTER, 0,
	         "from=chunks@_inner_hit cosine(_inner_hit.text_vec, "
	         "[0.1,0.2,0.3])" PYTIDB_INNER_OUT "50" PYTIDB_OUTER_SEL
	         " where=[candidates.user_id->2 = 1] order=derived limit=5 "
	         "params=0"},
	        {PYTIDB_THRESHOLD, 0,
	         "from=chunks@_inner_hit cosine(_inner_hit.text_vec, "
	         "[0.1,0.2,0.3])" PYTIDB_INNER_OUT "50" PYTIDB_OUTER_SEL
	         " where=[dist->4 <= 0.5e0] order=derived limit=5 params=0"},
	        {PYTIDB_NUMPY_IN, 0,
	         "from=chunks@_inner_hit l2(_inner_hit.text_vec, [0.1,0.2,0.3])" PYTIDB_INNER_OUT
	         "200" PYTIDB_OUTER_SEL " where=[candidates.user_id->2 IN (1, 2)] order=derived "
	         "limit=200 params=0"},
	        {PYTIDB_NIN, 0,
	         "from=chunks@_inner_hit cosine(_inner_hit.text_vec, [1,2,3])" PYTIDB_INNER_OUT
	         "100" PYTIDB_OUTER_SEL " where=[candidates.user_id->2 NOT IN (1, 2) AND "
	         "candidates.text->1 = 'it's' AND dist->4 IS NOT NULL] order=derived limit=10 "
	         "params=0"},
	        {PYTIDB_RANGE, 0,
	         "from=chunks@_inner_hit l1(_inner_hit.text_vec, [1.5,2,3])" PYTIDB_INNER_OUT
	         "100" PYTIDB_OUTER_SEL " where=[candidates.user_id->2 > 1.5e0 AND "
	         "candidates.user_id->2 <= 9 AND dist->4 >= 0.1e0 AND dist->4 <= 0.9e0] "
	         "order=derived limit=10 params=0"},
	        {PYTIDB_PREFILTER, 0,
	         "from=chunks@_hit cosine(_hit.text_vec, [1.5,2,3]) sel=[c:_hit.id, c:_hit.text, "
	         "c:_hit.user_id, c:_hit.text_vec, dist as _distance, score as _score] "
	         "where=[_hit.user_id > 1.5e0 AND _hit.user_id <= 9 AND dist IS NOT NULL AND dist "
	         "<= 0.4e0] order=alias limit=10 params=0"},
	        /* docs/tidb.md §6's sketch of the wrapper, with candidates.* */
	        {"SELECT candidates.*, 1 - candidates._distance AS _score FROM (SELECT id, "
	         "VEC_COSINE_DISTANCE(embedding, '[1,2]') AS _distance FROM t AS _inner_hit ORDER "
	         "BY "
	         "_distance ASC LIMIT 30) AS candidates ORDER BY candidates._distance ASC LIMIT 3",
	         0,
	         "from=t@_inner_hit cosine(embedding, [1,2]) sel=[c:id, dist as _distance] "
	         "order=alias limit=30 | outer candidates sel=[candidates.*, score->1 as _score] "
	         "order=derived limit=3 params=0"},
	};
	run_cases(cases, N(cases), true);
}

Test(sql_knn, accepted_variants)
{
	static const struct knn_case cases[] = {
	        /* metric names in any case, column and vector in either order */
	        {"select id, vec_l2_distance(v, '[1,2]') d from t order by d limit 1", 0,
	         "from=t l2(v, [1,2]) sel=[c:id, dist as d] order=alias limit=1 params=0"},
	        {"SELECT Vec_L1_Distance('[1,2]', v) FROM t ORDER BY 1 LIMIT 1", 0,
	         "from=t l1([1,2], v) sel=[dist] order=pos limit=1 params=0"},
	        {"SELECT * FROM t ORDER BY VEC_COSINE_DISTANCE('[1, 2, 3]', t.v) ASC LIMIT 10;", 0,
	         "from=t cosine([1,2,3], t.v) sel=[*] order=expr limit=10 params=0"},
	        {"SELECT t.* FROM db.t ORDER BY vec_negative_inner_product(db.t.v, "
	         "'[0.1,0.2,0.3]') "
	         "LIMIT 5 OFFSET 10",
	         0,
	         "from=db.t nip(db.t.v, [0.1,0.2,0.3]) sel=[t.*] order=expr limit=5 offset=10 "
	         "params=0"},
	        /* exponents, spaces, and numbers TiDB rounds to float32 */
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[ 1e0 , 2.5E-1,-3e+2 ]') LIMIT 1",
	         0, "from=t l2(v, [1,0.25,-300]) sel=[c:id] order=expr limit=1 params=0"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[]') LIMIT 1", 0,
	         "from=t l2(v, []) sel=[c:id] order=expr limit=1 params=0"},
	        /* prepared statements: vector, filter and LIMIT as '?' */
	        {"SELECT id, VEC_COSINE_DISTANCE(embedding, ?) AS d FROM t WHERE category = ? "
	         "ORDER BY d LIMIT ?",
	         0,
	         "from=t cosine(embedding, ?0) sel=[c:id, dist as d] where=[category = ?1] "
	         "order=alias limit=?2 params=3"},
	        {"SELECT id FROM t WHERE VEC_COSINE_DISTANCE(v, ?) < 0.5 ORDER BY "
	         "VEC_COSINE_DISTANCE(v, ?) LIMIT ?, ?",
	         0,
	         "from=t cosine(v, ?0,?1) sel=[c:id] where=[dist < 0.5] order=expr limit=?3 "
	         "offset=?2 params=4"},
	        /* comments, quoting and odd spacing */
	        {"SELECT /* c */ id, VEC_COSINE_DISTANCE(v, '[1]') d -- x\n FROM t # y\n ORDER BY "
	         "d "
	         "LIMIT 1 -- end",
	         0, "from=t cosine(v, [1]) sel=[c:id, dist as d] order=alias limit=1 params=0"},
	        {"SELECT `my id`, VEC_L2_DISTANCE(`emb``x`, '[1]') AS `d d` FROM `db`.`t t` AS `a` "
	         "ORDER BY `d d` LIMIT 1",
	         0,
	         "from=db.t t@a l2(emb`x, [1]) sel=[c:my id, dist as d d] order=alias limit=1 "
	         "params=0"},
	        {"SELECT id FROM t WHERE name = 'it\\'s' AND title <> 'a''b' AND c = '-- no' AND "
	         "e != \"q\" ORDER BY VEC_L2_DISTANCE(v, _utf8mb4'[1]') LIMIT 1",
	         SQL_KNN_DQUOTE_STRINGS,
	         "from=t l2(v, [1]) sel=[c:id] where=[name = 'it's' AND title <> 'a'b' AND c = '-- "
	         "no' AND e <> 'q'] order=expr limit=1 params=0"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, N'[1,\\ 2]') LIMIT 1", 0,
	         "from=t l2(v, [1,2]) sel=[c:id] order=expr limit=1 params=0"},
	        {"SELECT id FROM \"t\" ORDER BY VEC_L2_DISTANCE(\"v\", '[1]') LIMIT 1",
	         SQL_LEX_ANSI_QUOTES, "from=t l2(v, [1]) sel=[c:id] order=expr limit=1 params=0"},
	        {"SELECT id FROM t WHERE a = 'x\\' ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         SQL_LEX_NO_BACKSLASH_ESCAPES,
	         "from=t l2(v, [1]) sel=[c:id] where=[a = 'x\\'] order=expr limit=1 params=0"},
	        /* filters: either order, signs, IN lists, IS NULL, parentheses */
	        {"SELECT id FROM t WHERE (5 < a) AND ((b >= -1.5) AND c IS NULL) AND d IS NOT NULL "
	         "AND 'x' = e AND f NOT IN ('a', -2, 3.5e1) AND 0.3 >= VEC_L1_DISTANCE(v, '[1]') "
	         "ORDER BY VEC_L1_DISTANCE(v, '[1]') LIMIT 1",
	         0,
	         "from=t l1(v, [1]) sel=[c:id] where=[a > 5 AND b >= -1.5 AND c IS NULL AND d IS "
	         "NOT "
	         "NULL AND e = 'x' AND f NOT IN ('a', -2, 3.5e1) AND dist <= 0.3] order=expr "
	         "limit=1 "
	         "params=0"},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t WHERE (VEC_L2_DISTANCE(v, "
	         "'[1]') "
	         "< 2) ORDER BY d ASC LIMIT 18446744073709551615",
	         0,
	         "from=t l2(v, [1]) sel=[c:id, dist as d] where=[dist < 2] order=alias "
	         "limit=18446744073709551615 params=0"},
	        /* the same vector written differently is still the same text */
	        {"SELECT id FROM t WHERE VEC_L2_DISTANCE(V, '[1]') < 2 ORDER BY vec_l2_distance(v, "
	         "'[1]') LIMIT 1",
	         0, "from=t l2(V, [1]) sel=[c:id] where=[dist < 2] order=expr limit=1 params=0"},
	        /* keywords that are not reserved are names */
	        {"SELECT text, status data FROM t ORDER BY VEC_L2_DISTANCE(t.v, '[1]') LIMIT 1", 0,
	         "from=t l2(t.v, [1]) sel=[c:text, c:status as data] order=expr limit=1 params=0"},
	};
	run_cases(cases, N(cases), true);
}

Test(sql_knn, rejected)
{
	static const struct knn_case cases[] = {
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') DESC LIMIT 1", 0, "desc"},
	        {"SELECT id FROM t WHERE a = 1 OR b = 2 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "or"},
	        {"SELECT id FROM t WHERE (a = 1 OR b = 2) ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT "
	         "1",
	         0, "or"},
	        {"SELECT id FROM t WHERE a = 1 || b = 2 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "or"},
	        {"SELECT id FROM t WHERE a = 1 && b = 2 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "operator"},
	        {"SELECT id FROM t WHERE NOT a = 1 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "not"},
	        {"SELECT t.id FROM t JOIN u ON t.id = u.id ORDER BY VEC_L2_DISTANCE(v, '[1]') "
	         "LIMIT 1",
	         0, "join"},
	        {"SELECT id FROM t, u ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0, "join"},
	        {"SELECT id FROM t a LEFT JOIN u b ON 1 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "join"},
	        {"SELECT id FROM t WHERE a IN (SELECT a FROM u) ORDER BY VEC_L2_DISTANCE(v, '[1]') "
	         "LIMIT 1",
	         0, "subquery"},
	        {"SELECT id FROM t WHERE (SELECT 1) = a ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "subquery"},
	        {"SELECT id FROM t WHERE EXISTS (SELECT 1) ORDER BY VEC_L2_DISTANCE(v, '[1]') "
	         "LIMIT 1",
	         0, "subquery"},
	        {"SELECT (SELECT 1) FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "subquery"},
	        {"SELECT id FROM t GROUP BY id ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "group_by"},
	        {"SELECT UPPER(name) FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "function"},
	        {"SELECT VEC_EMBED_COSINE_DISTANCE(v, 'text') d FROM t ORDER BY d LIMIT 1", 0,
	         "function"},
	        {"SELECT id + 1 FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "expression"},
	        {"SELECT 1, id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0, "expression"},
	        {"SELECT 'x' FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0, "expression"},
	        {"SELECT 1 - VEC_L2_DISTANCE(v, '[2]') FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') "
	         "LIMIT 1",
	         0, "expression"},
	        {"SELECT DISTINCT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "distinct"},
	        {"SELECT SQL_CALC_FOUND_ROWS id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "calc_found_rows"},
	        {"SELECT SQL_NO_CACHE id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "modifier"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1 FOR UPDATE", 0,
	         "for_update"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1 LOCK IN SHARE MODE",
	         0, "for_update"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1; SELECT 1", 0,
	         "trailing"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1;;", 0, "trailing"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]')", 0, "no_limit"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]');", 0, "no_limit"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1 + 1", 0, "limit"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT -1", 0, "limit"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1.5", 0, "limit"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT @n", 0, "limit"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 18446744073709551616",
	         0, "limit"},
	        {"SELECT id FROM t LIMIT 1", 0, "no_order"},
	        {"SELECT id FROM t", 0, "no_order"},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') d FROM t ORDER BY id LIMIT 1", 0, "order"},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') d FROM t ORDER BY d, id LIMIT 1", 0,
	         "order"},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') d FROM t ORDER BY 1 LIMIT 1", 0, "order"},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') d FROM t ORDER BY 3 LIMIT 1", 0, "order"},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') d FROM t ORDER BY t.d LIMIT 1", 0, "order"},
	        {"SELECT id d, VEC_L2_DISTANCE(v, '[1]') d FROM t ORDER BY d LIMIT 1", 0,
	         "ambiguous"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') + 1 LIMIT 1", 0,
	         "expression"},
	        {"SELECT /*+ USE_INDEX(t, i) */ id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT "
	         "1",
	         0, "hint"},
	        {"SELECT /*!50100 id */ FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "exec_comment"},
	        {"SELECT id FROM t /*T![x] WHERE 0 */ ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "exec_comment"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1,2') LIMIT 1", 0, "vector"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1,,2]') LIMIT 1", 0, "vector"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]x') LIMIT 1", 0, "vector"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, 'null') LIMIT 1", 0, "vector"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1e39]') LIMIT 1", 0, "vector"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, _binary'[1]') LIMIT 1", 0,
	         "charset"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, X'5B315D') LIMIT 1", 0,
	         "expression"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, VEC_FROM_TEXT('[1]')) LIMIT 1", 0,
	         "expression"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, w) LIMIT 1", 0, "expression"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE('[1]', '[2]') LIMIT 1", 0,
	         "expression"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]', 3) LIMIT 1", 0, "expression"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, \"[1]\") LIMIT 1", 0, "dquote"},
	        {"SELECT id FROM t WHERE VEC_L2_DISTANCE(v, '[2]') < 1 ORDER BY VEC_L2_DISTANCE(v, "
	         "'[1]') LIMIT 1",
	         0, "expression"},
	        {"SELECT id FROM t WHERE VEC_COSINE_DISTANCE(v, '[1]') < 1 ORDER BY "
	         "VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "expression"},
	        {"SELECT id FROM t WHERE VEC_L2_DISTANCE(w, '[1]') < 1 ORDER BY VEC_L2_DISTANCE(v, "
	         "'[1]') LIMIT 1",
	         0, "expression"},
	        {"SELECT id FROM t WHERE VEC_L2_DISTANCE(v, '[1]') = 1 ORDER BY VEC_L2_DISTANCE(v, "
	         "'[1]') LIMIT 1",
	         0, "operator"},
	        {"SELECT id FROM t WHERE VEC_L2_DISTANCE(v, '[1]') < '1' ORDER BY "
	         "VEC_L2_DISTANCE(v, "
	         "'[1]') LIMIT 1",
	         0, "literal"},
	        {"SELECT id FROM t WHERE a = NULL ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "null"},
	        {"SELECT id FROM t WHERE a IN (1, NULL) ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "null"},
	        {"SELECT id FROM t WHERE a LIKE 'x%' ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "operator"},
	        {"SELECT id FROM t WHERE a BETWEEN 1 AND 2 ORDER BY VEC_L2_DISTANCE(v, '[1]') "
	         "LIMIT 1",
	         0, "operator"},
	        {"SELECT id FROM t WHERE a <=> 1 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "operator"},
	        {"SELECT id FROM t WHERE a = b ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "expression"},
	        {"SELECT id FROM t WHERE a = 0x1F ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "expression"},
	        {"SELECT id FROM t WHERE a = 'x' COLLATE utf8mb4_bin ORDER BY VEC_L2_DISTANCE(v, "
	         "'[1]') LIMIT 1",
	         0, "syntax"},
	        {"SELECT id FROM t WHERE a = DATE '2020-01-01' ORDER BY VEC_L2_DISTANCE(v, '[1]') "
	         "LIMIT 1",
	         0, "expression"},
	        {"SELECT id FROM t WHERE a = _latin1'x' ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1",
	         0, "charset"},
	        {"SELECT id FROM t WHERE a = 1 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1 UNION "
	         "SELECT 1",
	         0, "union"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1 INTO @x", 0, "into"},
	        {"SELECT id INTO @x FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0, "into"},
	        {"SELECT id FROM t WINDOW w AS () ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "window"},
	        {"SELECT id FROM t HAVING id > 1 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "having"},
	        {"SELECT id FROM t PARTITION (p0) ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "partition"},
	        {"SELECT id FROM t USE INDEX (i) ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "index_hint"},
	        {"SELECT id FROM t AS OF TIMESTAMP NOW() ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT "
	         "1",
	         0, "stale_read"},
	        {"SELECT t.id FROM t AS x ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "qualifier"},
	        {"SELECT id FROM t AS x ORDER BY VEC_L2_DISTANCE(t.v, '[1]') LIMIT 1", 0,
	         "qualifier"},
	        {"SELECT id FROM t WHERE u.a = 1 ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "qualifier"},
	        {"SELECT db.t.id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0,
	         "qualifier"},
	        {"SELECT id 'x' FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1", 0, "alias"},
	        {"UPDATE t SET a = 1", 0, "not_select"},
	        {"(SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]') LIMIT 1)", 0, "parenthesis"},
	        {"", 0, "not_select"},
	        {"SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[1]) LIMIT 1", 0, "syntax"},
	        {"SELECT id FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM (SELECT * FROM t) "
	         "x ORDER BY d LIMIT 5) c ORDER BY c.d LIMIT 1",
	         0, "subquery"},
	        {"SELECT c.nope FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT 5) c ORDER BY c.d LIMIT 1",
	         0, "column"},
	        {"SELECT c.* FROM (SELECT *, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT "
	         "5) c ORDER BY c.d LIMIT 1",
	         0, "star"},
	        {"SELECT c.* FROM (SELECT id, id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT 5) c ORDER BY c.d LIMIT 1",
	         0, "duplicate"},
	        {"SELECT c.* FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT "
	         "5) c ORDER BY c.id LIMIT 1",
	         0, "order"},
	        {"SELECT c.* FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT "
	         "5) c ORDER BY c.d DESC LIMIT 1",
	         0, "desc"},
	        {"SELECT c.* FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT "
	         "5) c WHERE c.id = 1 OR c.id = 2 ORDER BY c.d LIMIT 1",
	         0, "or"},
	        {PYTIDB_OR, 0, "or"},
	        {"SELECT c.* FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT "
	         "5) c ORDER BY c.d",
	         0, "no_limit"},
	        {"SELECT c.* FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d) c "
	         "ORDER BY c.d LIMIT 1",
	         0, "no_limit"},
	        {"SELECT c.*, VEC_L2_DISTANCE(c.v, '[1]') FROM (SELECT id, VEC_L2_DISTANCE(v, "
	         "'[1]') "
	         "AS d FROM t ORDER BY d LIMIT 5) c ORDER BY c.d LIMIT 1",
	         0, "expression"},
	        {"SELECT c.* FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT "
	         "5) ORDER BY d LIMIT 1",
	         0, "syntax"},
	        {"SELECT x.* FROM (SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d "
	         "LIMIT "
	         "5) c ORDER BY c.d LIMIT 1",
	         0, "qualifier"},
	};
	run_cases(cases, N(cases), false);
}

Test(sql_knn, struct_reuse_and_offsets)
{
	const char *a = SQLA_FILTER;
	const char *b = "SELECT id FROM t ORDER BY VEC_COSINE_DISTANCE(v, ?) LIMIT 2";
	struct sql_knn k;
	sql_knn_init(&k);
	cr_assert_eq(sql_knn_parse(a, strlen(a), 0, &k), 0);
	cr_assert_eq(k.vec.dim, 3);
	cr_assert_eq(k.inner.items[3].kind, SQL_KNN_ITEM_DISTANCE);
	const struct sql_knn_item *it = &k.inner.items[3];
	cr_assert_eq(strncmp(a + it->off, "VEC_COSINE_DISTANCE(documents.embedding, '[1, 2, 3]')",
	                     it->len),
	             0);
	cr_assert_eq(strncmp(a + k.vec_lit.off, "[1, 2, 3]", k.vec_lit.len), 0);
	cr_assert_eq(k.vec_lit.len, 9);
	cr_assert_not(k.vec_first);
	cr_assert_eq(k.lits[k.inner.filters[0].lit].num, 0.2);
	cr_assert_eq(sql_knn_parse("DELETE", 6, 0, &k), SQL_KNN_NO);
	cr_assert_str_eq(k.reason, "not_select");
	cr_assert_eq(sql_knn_parse(b, strlen(b), 0, &k), 0);
	cr_assert_null(k.reason);
	cr_assert(k.vec_is_param);
	cr_assert_eq(k.nvec_params, 1);
	cr_assert_eq(k.vec.dim, 0);
	cr_assert_eq(k.inner.nfilters, 0);
	cr_assert_eq(k.nlits, 0);
	cr_assert_eq(k.nparams, 1);
	cr_assert_not(k.has_outer);
	sql_knn_free(&k);
}

/* Statements that differ only in constants share a shape; the text of a
 * select item that names its column is part of it. */
Test(sql_knn, shapes)
{
	static const struct {
		const char *a, *b;
		bool same;
	} pairs[] = {
	        {SQLA_1,
	         "SELECT documents.id AS documents_id, documents.content AS "
	         "documents_content, documents.embedding AS documents_embedding, "
	         "VEC_COSINE_DISTANCE(documents.embedding, '[4,5,6]') AS distance FROM documents "
	         "ORDER BY distance LIMIT 10",
	         true},
	        {"select id, vec_l2_distance(v, '[1]') as d from t where a = 'x' order by d limit "
	         "1",
	         "SELECT id, vec_l2_distance(v, '[2, 3]') AS d FROM t WHERE a = 7 ORDER  BY d "
	         "LIMIT ?",
	         true},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d LIMIT 1",
	         "SELECT ID, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d LIMIT 1", false},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t ORDER BY d LIMIT 1",
	         "SELECT id, vec_l2_distance(v, '[1]') AS d FROM t ORDER BY d LIMIT 1", false},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') FROM t ORDER BY 2 LIMIT 1",
	         "SELECT id, VEC_L2_DISTANCE(v, '[2]') FROM t ORDER BY 2 LIMIT 1", false},
	        {"SELECT id, 1 - VEC_L2_DISTANCE(v, '[1]') AS s FROM t ORDER BY VEC_L2_DISTANCE(v, "
	         "'[1]') LIMIT 1",
	         "SELECT id, 1 - VEC_L2_DISTANCE(v, '[2]') AS s FROM t ORDER BY VEC_L2_DISTANCE(v, "
	         "'[2]') LIMIT 1",
	         true},
	        {"SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t WHERE a IN (1) ORDER BY d LIMIT "
	         "1",
	         "SELECT id, VEC_L2_DISTANCE(v, '[1]') AS d FROM t WHERE a IN (1, 2) ORDER BY d "
	         "LIMIT 1",
	         false},
	        {PYTIDB_FILTER,
	         PYTIDB_INNER("VEC_COSINE_DISTANCE", "[9, 9, 9]",
	                      "70") "\nWHERE candidates.user_id = 42 ORDER BY candidates._distance "
	                            "ASC \n LIMIT 7",
	         true},
	};
	for (size_t i = 0; i < N(pairs); i++) {
		struct sql_knn ka, kb;
		sql_knn_init(&ka);
		sql_knn_init(&kb);
		cr_assert_eq(sql_knn_parse(pairs[i].a, strlen(pairs[i].a), 0, &ka), 0, "pair %zu",
		             i);
		cr_assert_eq(sql_knn_parse(pairs[i].b, strlen(pairs[i].b), 0, &kb), 0, "pair %zu",
		             i);
		cr_expect_eq(ka.shape == kb.shape, pairs[i].same, "pair %zu", i);
		sql_knn_free(&ka);
		sql_knn_free(&kb);
	}
	const char *s = SQLA_FILTER;
	struct sql_knn k;
	struct buf b;
	sql_knn_init(&k);
	buf_init(&b);
	cr_assert_eq(sql_knn_parse(s, strlen(s), 0, &k), 0);
	cr_assert_eq(sql_shape_text(s, strlen(s), 0, &k, &b), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	cr_expect_str_eq(
	        (char *)b.data,
	        "select documents.id as documents_id, documents.content as documents_content, "
	        "documents.embedding as documents_embedding, "
	        "VEC_COSINE_DISTANCE(documents.embedding, ?) as distance from documents where "
	        "VEC_COSINE_DISTANCE(documents.embedding, ?) < ? order by distance limit ?");
	buf_reset(&b);
	const char *u = "SELECT id, VEC_L2_DISTANCE(v, '[1]')  FROM t ORDER BY 2 LIMIT 1";
	cr_assert_eq(sql_knn_parse(u, strlen(u), 0, &k), 0);
	cr_assert_eq(sql_shape_text(u, strlen(u), 0, &k, &b), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	cr_expect_str_eq((char *)b.data,
	                 "select id, VEC_L2_DISTANCE(v, '[1]') from t order by ? limit ?");
	buf_free(&b);
	sql_knn_free(&k);
}

/* A rendering up to its last " limit=": what a statement reads as, apart
 * from the (outermost) LIMIT and OFFSET. */
static size_t before_last_limit(const char *r)
{
	const char *last = NULL;
	for (const char *p = strstr(r, " limit="); p; p = strstr(p + 1, " limit="))
		last = p;
	cr_assert_not_null(last, "%s", r);
	return (size_t)(last - r);
}

/* Every prefix of accepted statements parses or is refused, never crashes
 * (run the ASan build), and a refused prefix names a reason. A prefix is
 * accepted only where it cuts the outermost LIMIT / OFFSET clause or what
 * follows it: it must read as the whole statement apart from those counts
 * (never as a shorter vector, a lost filter or another table). */
Test(sql_knn, truncated_prefixes)
{
	static const char *const texts[] = {
	        SQLA_FILTER,
	        SQLA_CORE,
	        PYTIDB_NIN,
	        PYTIDB_RANGE,
	        PYTIDB_PREFILTER,
	        "SELECT `a``b` AS `c d`, VEC_L1_DISTANCE(?, db.t.v) FROM db.t WHERE x IN ('a''b', "
	        "-1.5e3, ?) AND (y IS NOT NULL) ORDER BY 2 ASC LIMIT ? OFFSET 3; -- end",
	};
	for (size_t i = 0; i < N(texts); i++) {
		size_t len = strlen(texts[i]);
		struct out whole = {.n = 0};
		parse_case(texts[i], len, 0, &whole);
		cr_assert(strncmp(whole.s, "NO:", 3) != 0, "text %zu: %s", i, whole.s);
		size_t keep = before_last_limit(whole.s);
		for (size_t n = 0; n < len; n++) {
			struct out o = {.n = 0};
			parse_case(texts[i], n, 0, &o);
			if (strncmp(o.s, "NO:", 3) == 0)
				continue;
			cr_assert(before_last_limit(o.s) == keep &&
			                  strncmp(o.s, whole.s, keep) == 0,
			          "text %zu prefix %zu reads as %s", i, n, o.s);
		}
	}
}

/* Single-byte mutations of accepted statements (quotes, brackets, comment
 * openers, NUL...): each parses or is refused (parse_case checks how), the
 * same text always gets the same answer, and a mutant that normalises to the
 * original's text is recognised as the original: the recogniser reads nothing
 * that sql_normalize, which query shapes are keyed by, drops (spacing,
 * comments, keyword case). Both outcomes must occur, or nothing was
 * exercised. */
Test(sql_knn, mutations)
{
	static const char *const texts[] = {SQLA_FILTER, PYTIDB_NIN, PYTIDB_PREFILTER};
	static const char subst[] = {'\'', '"',  '`', '(', ')', ' ', '-', '/', '*',
	                             '\\', '\0', '#', '?', ';', '.', ',', '1', 'e'};
	for (size_t i = 0; i < N(texts); i++) {
		size_t n = strlen(texts[i]);
		char *m = dup_exact(texts[i], n);
		struct out orig = {.n = 0};
		parse_case(texts[i], n, SQL_KNN_DQUOTE_STRINGS, &orig);
		cr_assert(strncmp(orig.s, "NO:", 3) != 0, "text %zu: %s", i, orig.s);
		struct buf norm, mnorm;
		buf_init(&norm);
		buf_init(&mnorm);
		cr_assert_eq(sql_normalize(texts[i], n, 0, 0, NULL, 0, &norm), 0);
		size_t accepted = 0, refused = 0, same_norm = 0;
		for (size_t pos = 0; pos < n; pos++) {
			char keep = m[pos];
			for (size_t j = 0; j < sizeof(subst); j++) {
				struct out o = {.n = 0}, again = {.n = 0};
				m[pos] = subst[j];
				parse_case(m, n, SQL_KNN_DQUOTE_STRINGS, &o);
				parse_case(m, n, SQL_KNN_DQUOTE_STRINGS, &again);
				cr_assert_str_eq(o.s, again.s, "text %zu pos %zu '%c'", i, pos,
				                 subst[j]);
				if (strncmp(o.s, "NO:", 3) == 0)
					refused++;
				else
					accepted++;
				buf_reset(&mnorm);
				if (sql_normalize(m, n, 0, 0, NULL, 0, &mnorm) == 0 &&
				    mnorm.len == norm.len &&
				    memcmp(mnorm.data, norm.data, norm.len) == 0) {
					same_norm++;
					cr_assert_str_eq(
					        o.s, orig.s,
					        "text %zu pos %zu '%c' normalises as the original",
					        i, pos, subst[j]);
				}
			}
			m[pos] = keep;
		}
		cr_assert_gt(accepted, 0, "text %zu: no mutant accepted", i);
		cr_assert_gt(refused, 0, "text %zu: no mutant refused", i);
		/* At least the mutants that change nothing (a space for a space). */
		cr_assert_gt(same_norm, 0, "text %zu", i);
		buf_free(&norm);
		buf_free(&mnorm);
		free(m);
	}
}
