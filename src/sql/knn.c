/* The kNN recogniser: a strict recursive-descent reader of the few SELECT
 * forms the vector cache answers (flat ORM queries and pytidb's derived-table
 * wrapper). Every token must fit; the first misfit names the reason. */
#include "sql/knn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sql/digest.h"

/* The lexer flags sql_knn_parse passes on. */
#define LEX_FLAGS (SQL_LEX_NO_BACKSLASH_ESCAPES | SQL_LEX_ANSI_QUOTES)
/* Parentheses may nest this deep in WHERE / HAVING. */
#define MAX_DEPTH 32
/* Select items whose result column is named by their text: at most this many. */
#define MAX_SPANS 16

/* A parsed distance expression: METRIC(column, vector) in either order. */
struct dist {
	enum vec_metric metric;
	struct sql_name schema, qual, col;
	bool is_param;
	unsigned param;
	struct sql_tok lit; /* literal form: the string token */
	bool vec_first;
	size_t off, len;
};

/* A column reference as written: [[schema.]qual.]name. */
struct ref {
	struct sql_name schema, qual, name;
	size_t off, len;
};

struct kp {
	const char *s;
	size_t n;
	unsigned flags;
	struct sql_lexer lx;
	struct sql_tok t; /* the current token */
	unsigned t_param; /* its index, when it is a '?' */
	size_t prev_end;  /* end of the last token consumed */
	unsigned nparams;
	struct sql_knn *k;
	const char *reason;
	int err;        /* -ENOMEM */
	bool have_dist; /* the canonical distance is set */
	struct dist dist;
	char *vec_text; /* the canonical literal, unescaped (owned) */
	size_t vec_text_len;
	unsigned depth; /* parentheses open in the current condition */
};

static bool fail(struct kp *p, const char *reason)
{
	if (!p->reason)
		p->reason = reason;
	return false;
}

static bool nomem(struct kp *p)
{
	p->err = -ENOMEM;
	return fail(p, "nomem");
}

/* Moves to the next token. Executable comments and hints end recognition:
 * the server would read them. */
static void adv(struct kp *p)
{
	if (p->reason)
		return;
	p->prev_end = p->t.off + p->t.len;
	if (sql_lex_next(&p->lx, &p->t) < 0) {
		fail(p, "syntax");
		p->t.kind = SQL_TOK_END;
		return;
	}
	switch (p->t.kind) {
	case SQL_TOK_EXEC_COMMENT:
		fail(p, "exec_comment");
		break;
	case SQL_TOK_HINT:
		fail(p, "hint");
		break;
	case SQL_TOK_PARAM:
		p->t_param = p->nparams++;
		break;
	case SQL_TOK_STRING:
		if (p->s[p->t.body_off - 1] == '"' && !(p->flags & SQL_KNN_DQUOTE_STRINGS))
			fail(p, "dquote");
		break;
	default:
		break;
	}
}

/* The token after the current one (no '?' counting, no failure). */
static struct sql_tok peek(const struct kp *p)
{
	struct sql_lexer lx = p->lx;
	struct sql_tok t;
	if (sql_lex_next(&lx, &t) < 0)
		t.kind = SQL_TOK_END;
	return t;
}

static bool kw(const struct kp *p, const char *w)
{
	return sql_tok_is_kw(p->s, &p->t, w);
}
static bool op(const struct kp *p, int o)
{
	return sql_tok_is_op(&p->t, o);
}

static bool accept_kw(struct kp *p, const char *w)
{
	if (p->reason || !kw(p, w))
		return false;
	adv(p);
	return true;
}

static bool accept_op(struct kp *p, int o)
{
	if (p->reason || !op(p, o))
		return false;
	adv(p);
	return true;
}

static bool expect_kw(struct kp *p, const char *w, const char *reason)
{
	return accept_kw(p, w) || fail(p, reason);
}

static bool reserved(const struct kp *p, const struct sql_tok *t)
{
	return t->kind == SQL_TOK_IDENT && sql_is_reserved(p->s + t->off, t->len);
}

/* A token that can be a name here: a quoted identifier, a word that is not
 * reserved, or any word right after a '.'. */
static bool is_name(const struct kp *p, const struct sql_tok *t, bool after_dot)
{
	return t->kind == SQL_TOK_QIDENT ||
	       (t->kind == SQL_TOK_IDENT && (after_dot || !reserved(p, t)));
}

static struct sql_name name_here(const struct kp *p)
{
	return sql_name_of(&p->t, p->s, p->flags);
}

/* [[schema.]qual.]name; the cursor is on a name. With star, "q.*" and
 * "s.q.*" end in '*' (the name is then absent, *is_star set). */
static bool column_ref(struct kp *p, struct ref *r, bool *is_star)
{
	struct sql_name parts[3];
	size_t n = 0;
	memset(r, 0, sizeof(*r));
	r->off = p->t.off;
	if (is_star)
		*is_star = false;
	for (;;) {
		if (!is_name(p, &p->t, n > 0))
			return fail(p, n ? "syntax" : "expression");
		parts[n++] = name_here(p);
		adv(p);
		if (!op(p, '.'))
			break;
		adv(p);
		if (op(p, '*') && is_star) {
			*is_star = true;
			adv(p);
			break;
		}
		if (n == 3)
			return fail(p, "syntax");
	}
	if (is_star && *is_star) {
		if (n == 2)
			r->schema = parts[0];
		r->qual = parts[n - 1];
	} else {
		r->name = parts[n - 1];
		if (n >= 2)
			r->qual = parts[n - 2];
		if (n == 3)
			r->schema = parts[0];
	}
	r->len = p->prev_end - r->off;
	return !p->reason;
}

static bool metric_of(const struct kp *p, enum vec_metric *m)
{
	static const struct {
		const char *name;
		enum vec_metric m;
	} fns[] = {
	        {"VEC_COSINE_DISTANCE", VEC_COSINE},
	        {"VEC_L2_DISTANCE", VEC_L2},
	        {"VEC_L1_DISTANCE", VEC_L1},
	        {"VEC_NEGATIVE_INNER_PRODUCT", VEC_NEG_IP},
	};
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (kw(p, fns[i].name)) {
			*m = fns[i].m;
			return true;
		}
	return false;
}

/* A function call starts here: a word followed by '('. */
static bool at_call(const struct kp *p)
{
	if (p->t.kind != SQL_TOK_IDENT)
		return false;
	struct sql_tok t = peek(p);
	return sql_tok_is_op(&t, '(');
}

/* A string constant's introducer must leave the text utf8mb4 as it is. */
static bool intro_ok(const struct kp *p, const struct sql_tok *t)
{
	if (!(t->flags & SQL_TOKF_INTRO))
		return true;
	struct sql_name nm = {t->off, t->intro_len, 0, false, false};
	return sql_name_eq(p->s, &nm, "N", 1) || sql_name_eq(p->s, &nm, "_utf8mb4", 8) ||
	       sql_name_eq(p->s, &nm, "_utf8", 5);
}

static bool same_opt_name(const char *s, const struct sql_name *a, const struct sql_name *b)
{
	if (sql_name_present(a) != sql_name_present(b))
		return false;
	return !sql_name_present(a) || sql_name_same(s, a, b);
}

/* The unescaped value of a string token, in a new allocation. */
static char *string_value(struct kp *p, const struct sql_tok *t, size_t *len)
{
	char *v = malloc(t->body_len ? t->body_len : 1);
	if (!v)
		return NULL;
	if (sql_unescape_string(p->s, t, p->flags, v, t->body_len, len) != 0) {
		free(v);
		return NULL;
	}
	return v;
}

/* The first distance expression becomes the statement's; later ones must
 * say the same thing (metric, column as written, vector value). */
static bool settle_dist(struct kp *p, const struct dist *d)
{
	struct sql_knn *k = p->k;
	if (!p->have_dist) {
		p->have_dist = true;
		p->dist = *d;
		k->metric = d->metric;
		k->vcol_schema = d->schema;
		k->vcol_qual = d->qual;
		k->vcol = d->col;
		k->vec_first = d->vec_first;
		k->vec_is_param = d->is_param;
		if (d->is_param) {
			k->vec_params[k->nvec_params++] = d->param;
			return true;
		}
		memset(&k->vec_lit, 0, sizeof(k->vec_lit));
		k->vec_lit.kind = SQL_LIT_STRING;
		k->vec_lit.off = d->lit.body_off;
		k->vec_lit.len = d->lit.body_len;
		k->vec_lit.flags = d->lit.flags;
		k->vec_lit.quote = p->s[d->lit.body_off - 1];
		p->vec_text = string_value(p, &d->lit, &p->vec_text_len);
		if (!p->vec_text)
			return nomem(p);
		struct vec_err e;
		int rc = vec_parse(p->vec_text, p->vec_text_len, &k->vec, &e);
		if (rc == -ENOMEM)
			return nomem(p);
		if (rc != 0)
			return fail(p, "vector");
		return true;
	}
	if (d->metric != p->dist.metric || d->is_param != p->dist.is_param ||
	    !same_opt_name(p->s, &d->schema, &p->dist.schema) ||
	    !same_opt_name(p->s, &d->qual, &p->dist.qual) ||
	    !sql_name_same(p->s, &d->col, &p->dist.col))
		return fail(p, "expression");
	if (d->is_param) {
		if (k->nvec_params == SQL_KNN_MAX_VEC_PARAMS)
			return fail(p, "too_many");
		k->vec_params[k->nvec_params++] = d->param;
		return true;
	}
	size_t len;
	char *v = string_value(p, &d->lit, &len);
	if (!v)
		return nomem(p);
	bool same = len == p->vec_text_len && memcmp(v, p->vec_text, len) == 0;
	free(v);
	return same || fail(p, "expression");
}

/* METRIC ( column , vector ) or METRIC ( vector , column ); the cursor is on
 * the function name, which metric_of accepted. */
static bool distance(struct kp *p, struct dist *d)
{
	bool have_col = false, have_vec = false;
	memset(d, 0, sizeof(*d));
	d->off = p->t.off;
	metric_of(p, &d->metric);
	adv(p);
	if (!accept_op(p, '('))
		return fail(p, "syntax");
	for (int arg = 0; arg < 2; arg++) {
		if (arg == 1 && !accept_op(p, ','))
			return fail(p, "expression");
		if (p->t.kind == SQL_TOK_STRING || p->t.kind == SQL_TOK_PARAM) {
			if (have_vec)
				return fail(p, "expression");
			if (p->t.kind == SQL_TOK_STRING && !intro_ok(p, &p->t))
				return fail(p, "charset");
			have_vec = true;
			d->vec_first = arg == 0;
			d->is_param = p->t.kind == SQL_TOK_PARAM;
			d->param = p->t_param;
			d->lit = p->t;
			adv(p);
		} else if (is_name(p, &p->t, false) && !at_call(p)) {
			struct ref r;
			if (have_col)
				return fail(p, "expression");
			if (!column_ref(p, &r, NULL))
				return false;
			have_col = true;
			d->schema = r.schema;
			d->qual = r.qual;
			d->col = r.name;
		} else {
			return fail(p, "expression");
		}
	}
	if (!accept_op(p, ')'))
		return fail(p, "expression");
	d->len = p->prev_end - d->off;
	return settle_dist(p, d);
}

static bool grow(void **arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 8;
	while (c < need)
		c *= 2;
	void *a = realloc(*arr, c * size);
	if (!a)
		return false;
	*arr = a;
	*cap = c;
	return true;
}

static struct sql_knn_item *new_item(struct kp *p, struct sql_knn_select *sel)
{
	if (!grow((void **)&sel->items, &sel->cap_items, sel->nitems + 1, sizeof(*sel->items))) {
		nomem(p);
		return NULL;
	}
	struct sql_knn_item *it = &sel->items[sel->nitems++];
	memset(it, 0, sizeof(*it));
	it->inner = -1;
	return it;
}

/* [AS] alias after a select item or table. */
static bool alias(struct kp *p, struct sql_name *out)
{
	if (accept_kw(p, "AS")) {
		if (kw(p, "OF"))
			return fail(p, "stale_read");
		if (p->t.kind == SQL_TOK_STRING)
			return fail(p, "alias");
		if (!is_name(p, &p->t, false))
			return fail(p, "syntax");
	} else if (p->t.kind == SQL_TOK_STRING) {
		return fail(p, "alias");
	} else if (!is_name(p, &p->t, false)) {
		return true;
	}
	*out = name_here(p);
	adv(p);
	return true;
}

/* SELECT modifiers, all refused. */
static bool modifiers(struct kp *p)
{
	static const char *const mods[] = {"ALL",
	                                   "HIGH_PRIORITY",
	                                   "STRAIGHT_JOIN",
	                                   "SQL_SMALL_RESULT",
	                                   "SQL_BIG_RESULT",
	                                   "SQL_BUFFER_RESULT",
	                                   "SQL_CACHE",
	                                   "SQL_NO_CACHE"};
	if (kw(p, "DISTINCT") || kw(p, "DISTINCTROW"))
		return fail(p, "distinct");
	if (kw(p, "SQL_CALC_FOUND_ROWS"))
		return fail(p, "calc_found_rows");
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
		if (kw(p, mods[i]))
			return fail(p, "modifier");
	return true;
}

/* One select item with its alias. */
static bool select_item(struct kp *p, struct sql_knn_select *sel)
{
	struct sql_knn_item *it = new_item(p, sel);
	if (!it)
		return false;
	it->off = p->t.off;
	if (accept_op(p, '*')) {
		it->kind = SQL_KNN_ITEM_STAR;
	} else if (p->t.kind == SQL_TOK_INT) {
		/* 1 - distance, or 1 - derived.distance (resolved later). */
		struct sql_tok minus = peek(p);
		struct dist d;
		struct ref r;
		if (p->t.len != 1 || p->s[p->t.off] != '1' || !sql_tok_is_op(&minus, '-'))
			return fail(p, "expression");
		adv(p);
		adv(p);
		it->kind = SQL_KNN_ITEM_SCORE;
		if (metric_of(p, &d.metric) && at_call(p)) {
			if (!distance(p, &d))
				return false;
		} else {
			if (!column_ref(p, &r, NULL))
				return false;
			it->qual = r.qual;
			it->schema = r.schema;
			it->name = r.name;
		}
	} else if (op(p, '(')) {
		struct sql_tok t = peek(p);
		return fail(p, sql_tok_is_kw(p->s, &t, "SELECT") ? "subquery" : "expression");
	} else if (at_call(p)) {
		struct dist d;
		if (!metric_of(p, &d.metric))
			return fail(p, "function");
		it->kind = SQL_KNN_ITEM_DISTANCE;
		if (!distance(p, &d))
			return false;
	} else if (is_name(p, &p->t, false)) {
		struct ref r;
		bool star;
		if (!column_ref(p, &r, &star))
			return false;
		it->kind = star ? SQL_KNN_ITEM_STAR : SQL_KNN_ITEM_COLUMN;
		it->schema = r.schema;
		it->qual = r.qual;
		it->name = r.name;
	} else {
		return fail(p, "expression");
	}
	it->len = p->prev_end - it->off;
	if (it->kind != SQL_KNN_ITEM_STAR && !alias(p, &it->alias))
		return false;
	if (!op(p, ',') && !kw(p, "FROM"))
		return fail(p, kw(p, "INTO")             ? "into"
		               : p->t.kind == SQL_TOK_OP ? "expression"
		                                         : "syntax");
	return !p->reason;
}

/* A filter constant: [-]number, string, or '?'. */
static bool literal(struct kp *p, struct sql_lit *l)
{
	memset(l, 0, sizeof(*l));
	if (accept_op(p, '-')) {
		l->negative = true;
		if (p->t.kind != SQL_TOK_INT && p->t.kind != SQL_TOK_DECIMAL &&
		    p->t.kind != SQL_TOK_FLOAT)
			return fail(p, "expression");
	}
	switch (p->t.kind) {
	case SQL_TOK_INT:
	case SQL_TOK_DECIMAL:
	case SQL_TOK_FLOAT: {
		char buf[80];
		if (p->t.len >= sizeof(buf) - 1)
			return fail(p, "literal");
		l->kind = p->t.kind == SQL_TOK_INT       ? SQL_LIT_INT
		          : p->t.kind == SQL_TOK_DECIMAL ? SQL_LIT_DECIMAL
		                                         : SQL_LIT_FLOAT;
		buf[0] = '-';
		memcpy(buf + 1, p->s + p->t.off, p->t.len);
		buf[p->t.len + 1] = '\0';
		l->num = strtod(l->negative ? buf : buf + 1, NULL);
		break;
	}
	case SQL_TOK_STRING:
		if (!intro_ok(p, &p->t))
			return fail(p, "charset");
		l->kind = SQL_LIT_STRING;
		l->flags = p->t.flags & (SQL_TOKF_ESCAPED | SQL_TOKF_INTRO);
		l->quote = p->s[p->t.body_off - 1];
		l->off = p->t.body_off;
		l->len = p->t.body_len;
		adv(p);
		return !p->reason;
	case SQL_TOK_PARAM:
		l->kind = SQL_LIT_PARAM;
		l->param = p->t_param;
		break;
	default:
		return fail(p, kw(p, "NULL") ? "null" : "literal");
	}
	l->off = p->t.off;
	l->len = p->t.len;
	adv(p);
	return !p->reason;
}

static bool at_literal(const struct kp *p)
{
	switch (p->t.kind) {
	case SQL_TOK_INT:
	case SQL_TOK_DECIMAL:
	case SQL_TOK_FLOAT:
	case SQL_TOK_STRING:
	case SQL_TOK_PARAM:
		return true;
	case SQL_TOK_OP:
		return p->t.op == '-';
	default:
		return false;
	}
}

static bool push_lit(struct kp *p, const struct sql_lit *l)
{
	struct sql_knn *k = p->k;
	if (!grow((void **)&k->lits, &k->cap_lits, k->nlits + 1, sizeof(*k->lits)))
		return nomem(p);
	k->lits[k->nlits++] = *l;
	return true;
}

/* A comparison operator, or -1. */
static int cmp_op(const struct kp *p)
{
	if (p->t.kind != SQL_TOK_OP)
		return -1;
	switch (p->t.op) {
	case '=':
		return SQL_KNN_EQ;
	case SQL_OP_NE:
	case SQL_OP_NE_BANG:
		return SQL_KNN_NE;
	case '<':
		return SQL_KNN_LT;
	case SQL_OP_LE:
		return SQL_KNN_LE;
	case '>':
		return SQL_KNN_GT;
	case SQL_OP_GE:
		return SQL_KNN_GE;
	default:
		return -1;
	}
}

/* c OP x is x MIRROR(OP) c. */
static enum sql_knn_op mirror(enum sql_knn_op o)
{
	switch (o) {
	case SQL_KNN_LT:
		return SQL_KNN_GT;
	case SQL_KNN_LE:
		return SQL_KNN_GE;
	case SQL_KNN_GT:
		return SQL_KNN_LT;
	case SQL_KNN_GE:
		return SQL_KNN_LE;
	default:
		return o;
	}
}

/* Where a filter term is: WHERE, or HAVING (only the distance, by alias or
 * expression). */
enum clause { IN_WHERE, IN_HAVING };

/* The subject of a term: the distance expression, or a column reference
 * (resolved against the select list later). */
static bool subject(struct kp *p, struct sql_knn_filter *f, struct ref *r)
{
	memset(r, 0, sizeof(*r));
	if (kw(p, "NOT") || op(p, '!'))
		return fail(p, "not");
	if (kw(p, "EXISTS"))
		return fail(p, "subquery");
	if (at_call(p)) {
		struct dist d;
		if (!metric_of(p, &d.metric))
			return fail(p, "function");
		if (!distance(p, &d))
			return false;
		f->on_distance = true;
		return true;
	}
	if (!is_name(p, &p->t, false))
		return fail(p, "expression");
	if (!column_ref(p, r, NULL))
		return false;
	f->schema = r->schema;
	f->qual = r->qual;
	f->column = r->name;
	return true;
}

/* The distance accepts < <= > >= a number, and IS [NOT] NULL. */
static bool distance_term_ok(struct kp *p, const struct sql_knn_filter *f)
{
	if (f->op == SQL_KNN_IS_NULL || f->op == SQL_KNN_IS_NOT_NULL)
		return true;
	if (f->op != SQL_KNN_LT && f->op != SQL_KNN_LE && f->op != SQL_KNN_GT &&
	    f->op != SQL_KNN_GE)
		return fail(p, "operator");
	enum sql_lit_kind lk = p->k->lits[f->lit].kind;
	if (lk == SQL_LIT_STRING || lk == SQL_LIT_PARAM)
		return fail(p, "literal");
	return true;
}

static bool new_filter(struct kp *p, struct sql_knn_select *sel, struct sql_knn_filter **out)
{
	if (!grow((void **)&sel->filters, &sel->cap_filters, sel->nfilters + 1,
	          sizeof(*sel->filters)))
		return nomem(p);
	*out = &sel->filters[sel->nfilters++];
	memset(*out, 0, sizeof(**out));
	(*out)->inner = -1;
	return true;
}

static bool conjunction(struct kp *p, struct sql_knn_select *sel, enum clause cl);

/* Names in filters are resolved after the whole statement is read; a
 * filter's column subject is kept as written in f (schema/qual/column). */
static bool term(struct kp *p, struct sql_knn_select *sel, enum clause cl)
{
	struct sql_knn_filter *f;
	struct ref r;
	struct sql_lit l;
	if (accept_op(p, '(')) {
		if (kw(p, "SELECT"))
			return fail(p, "subquery");
		if (++p->depth > MAX_DEPTH)
			return fail(p, "syntax");
		if (!conjunction(p, sel, cl))
			return false;
		p->depth--;
		return accept_op(p, ')') || fail(p, "expression");
	}
	if (!new_filter(p, sel, &f))
		return false;
	if (at_literal(p)) {
		/* constant OP subject */
		if (!literal(p, &l))
			return false;
		int o = cmp_op(p);
		if (o < 0)
			return fail(p, "operator");
		adv(p);
		if (!subject(p, f, &r))
			return false;
		f->op = mirror((enum sql_knn_op)o);
		f->lit = p->k->nlits;
		f->nlit = 1;
		if (!push_lit(p, &l))
			return false;
	} else {
		if (!subject(p, f, &r))
			return false;
		int o = cmp_op(p);
		f->lit = p->k->nlits;
		if (o >= 0) {
			adv(p);
			f->op = (enum sql_knn_op)o;
			if (!at_literal(p) && !kw(p, "NULL"))
				return fail(p, "expression");
			if (!literal(p, &l) || !push_lit(p, &l))
				return false;
			f->nlit = 1;
		} else if (accept_kw(p, "IS")) {
			f->op = accept_kw(p, "NOT") ? SQL_KNN_IS_NOT_NULL : SQL_KNN_IS_NULL;
			if (!accept_kw(p, "NULL"))
				return fail(p, "operator");
		} else if (kw(p, "IN") || kw(p, "NOT")) {
			f->op = accept_kw(p, "NOT") ? SQL_KNN_NOT_IN : SQL_KNN_IN;
			if (!accept_kw(p, "IN"))
				return fail(p, "operator");
			if (!accept_op(p, '('))
				return fail(p, "expression");
			if (kw(p, "SELECT"))
				return fail(p, "subquery");
			do {
				if (!literal(p, &l) || !push_lit(p, &l))
					return false;
				f->nlit++;
			} while (accept_op(p, ','));
			if (!accept_op(p, ')'))
				return fail(p, "expression");
		} else {
			return fail(p, "operator");
		}
	}
	if (f->on_distance && !distance_term_ok(p, f))
		return false;
	if (cl == IN_HAVING && !f->on_distance && (sql_name_present(&f->qual) || !r.len))
		return fail(p, "having");
	return true;
}

/* term { AND term }, stopping before the next clause. */
static bool conjunction(struct kp *p, struct sql_knn_select *sel, enum clause cl)
{
	do {
		if (!term(p, sel, cl))
			return false;
	} while (accept_kw(p, "AND"));
	if (kw(p, "OR") || kw(p, "XOR") || op(p, SQL_OP_PIPES))
		return fail(p, "or");
	if (op(p, SQL_OP_ANDAND))
		return fail(p, "operator");
	return true;
}

/* A LIMIT / OFFSET count: an integer literal or '?'. */
static bool count(struct kp *p, struct sql_knn_count *c)
{
	memset(c, 0, sizeof(*c));
	c->present = true;
	if (p->t.kind == SQL_TOK_PARAM) {
		c->is_param = true;
		c->param = p->t_param;
		adv(p);
		return !p->reason;
	}
	if (p->t.kind != SQL_TOK_INT)
		return fail(p, "limit");
	uint64_t v = 0;
	for (size_t i = 0; i < p->t.len; i++) {
		unsigned d = (unsigned)(p->s[p->t.off + i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return fail(p, "limit");
		v = v * 10 + d;
	}
	c->value = v;
	adv(p);
	return !p->reason;
}

/* LIMIT n | LIMIT off, n | LIMIT n OFFSET off */
static bool limit(struct kp *p, struct sql_knn_select *sel)
{
	if (!accept_kw(p, "LIMIT"))
		return fail(p, "no_limit");
	if (!count(p, &sel->limit))
		return false;
	if (accept_op(p, ',')) {
		sel->offset = sel->limit;
		return count(p, &sel->limit);
	}
	if (accept_kw(p, "OFFSET") && !count(p, &sel->offset))
		return false;
	if (p->t.kind == SQL_TOK_OP && !op(p, ';') && !op(p, ')'))
		return fail(p, "limit");
	return true;
}

/* The clause after the table: the reason a form is not recognised. */
static const char *clause_reason(const struct kp *p)
{
	static const struct {
		const char *kw, *reason;
	} words[] = {
	        {"JOIN", "join"},          {"INNER", "join"},          {"LEFT", "join"},
	        {"RIGHT", "join"},         {"CROSS", "join"},          {"NATURAL", "join"},
	        {"STRAIGHT_JOIN", "join"}, {"PARTITION", "partition"}, {"USE", "index_hint"},
	        {"FORCE", "index_hint"},   {"IGNORE", "index_hint"},   {"GROUP", "group_by"},
	        {"WINDOW", "window"},      {"UNION", "union"},         {"EXCEPT", "union"},
	        {"INTERSECT", "union"},    {"FOR", "for_update"},      {"LOCK", "for_update"},
	        {"INTO", "into"},          {"HAVING", "having"},       {"WHERE", "syntax"},
	};
	if (op(p, ','))
		return "join";
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (kw(p, words[i].kw))
			return words[i].reason;
	return p->t.kind == SQL_TOK_OP ? "expression" : "syntax";
}

static bool select_body(struct kp *p, struct sql_knn_select *sel, bool outer);

/* ORDER BY <distance> [ASC]; what names the distance is checked later
 * (check_table_query, check_outer) against the select list. */
struct order_key {
	enum { KEY_DIST, KEY_NAME, KEY_POS } kind;
	struct ref r;
	uint64_t pos;
};

static bool order_by(struct kp *p, struct order_key *key)
{
	if (!accept_kw(p, "ORDER"))
		return fail(p, kw(p, "LIMIT") || p->t.kind == SQL_TOK_END ? "no_order"
		                                                          : clause_reason(p));
	if (!expect_kw(p, "BY", "syntax"))
		return false;
	memset(key, 0, sizeof(*key));
	if (at_call(p)) {
		struct dist d;
		if (!metric_of(p, &d.metric))
			return fail(p, "order");
		if (!distance(p, &d))
			return false;
		key->kind = KEY_DIST;
	} else if (p->t.kind == SQL_TOK_INT) {
		struct sql_knn_count c;
		if (!count(p, &c))
			return false;
		key->kind = KEY_POS;
		key->pos = c.value;
	} else if (is_name(p, &p->t, false)) {
		if (!column_ref(p, &key->r, NULL))
			return false;
		key->kind = KEY_NAME;
	} else {
		return fail(p, "order");
	}
	if (kw(p, "DESC"))
		return fail(p, "desc");
	accept_kw(p, "ASC");
	if (op(p, ','))
		return fail(p, "order");
	if (!kw(p, "LIMIT"))
		return fail(p, p->t.kind == SQL_TOK_END || op(p, ';') || op(p, ')') ? "no_limit"
		               : p->t.kind == SQL_TOK_OP                            ? "expression"
		                                         : clause_reason(p));
	return true;
}

/* The result column name of an item: its alias, or a column's name. */
static const struct sql_name *out_name(const struct sql_knn_item *it)
{
	if (sql_name_present(&it->alias))
		return &it->alias;
	/* Columns, and the outer query's reference to the derived distance. */
	if (it->kind == SQL_KNN_ITEM_COLUMN ||
	    (it->kind == SQL_KNN_ITEM_DISTANCE && it->inner >= 0))
		return &it->name;
	return NULL;
}

/* Items of sel whose result name is nm: how many, and the last one. */
static size_t find_out(const struct kp *p, const struct sql_knn_select *sel,
                       const struct sql_name *nm, size_t *idx)
{
	size_t hits = 0;
	for (size_t i = 0; i < sel->nitems; i++) {
		const struct sql_name *o = out_name(&sel->items[i]);
		if (o && sql_name_same(p->s, o, nm)) {
			hits++;
			*idx = i;
		}
	}
	return hits;
}

/* The flat (or inner) query: every qualifier must name its table. */
static bool qual_ok(const struct kp *p, const struct sql_name *schema, const struct sql_name *qual)
{
	const struct sql_knn *k = p->k;
	if (!sql_name_present(qual))
		return !sql_name_present(schema);
	if (sql_name_present(&k->alias))
		return !sql_name_present(schema) && sql_name_same(p->s, qual, &k->alias);
	if (!sql_name_same(p->s, qual, &k->table))
		return false;
	/* db.t.col needs FROM db.t: the current database is not known here. */
	return !sql_name_present(schema) ||
	       (sql_name_present(&k->schema) && sql_name_same(p->s, schema, &k->schema));
}

/* Checks the table query's names: qualifiers, ORDER BY, HAVING names. */
static bool check_table_query(struct kp *p, struct sql_knn_select *sel, const struct order_key *key)
{
	struct sql_knn *k = p->k;
	if (!qual_ok(p, &k->vcol_schema, &k->vcol_qual))
		return fail(p, "qualifier");
	for (size_t i = 0; i < sel->nitems; i++) {
		struct sql_knn_item *it = &sel->items[i];
		if (it->kind == SQL_KNN_ITEM_SCORE && sql_name_present(&it->name))
			return fail(p, "expression"); /* 1 - column */
		if ((it->kind == SQL_KNN_ITEM_COLUMN || it->kind == SQL_KNN_ITEM_STAR) &&
		    !qual_ok(p, &it->schema, &it->qual))
			return fail(p, "qualifier");
	}
	for (size_t i = 0; i < sel->nfilters; i++) {
		struct sql_knn_filter *f = &sel->filters[i];
		if (f->on_distance || sql_name_present(&f->column) == false)
			continue;
		if (!qual_ok(p, &f->schema, &f->qual))
			return fail(p, "qualifier");
	}
	size_t idx = 0;
	switch (key->kind) {
	case KEY_DIST:
		sel->order_by = SQL_KNN_ORDER_EXPR;
		return true;
	case KEY_POS:
		if (key->pos == 0 || key->pos > sel->nitems ||
		    sel->items[key->pos - 1].kind != SQL_KNN_ITEM_DISTANCE)
			return fail(p, "order");
		sel->order_by = SQL_KNN_ORDER_POS;
		return true;
	case KEY_NAME:
		if (sql_name_present(&key->r.qual))
			return fail(p, "order");
		/* ORDER BY reads select aliases before table columns. */
		switch (find_out(p, sel, &key->r.name, &idx)) {
		case 0:
			return fail(p, "order");
		case 1:
			break;
		default:
			return fail(p, "ambiguous");
		}
		if (sel->items[idx].kind != SQL_KNN_ITEM_DISTANCE)
			return fail(p, "order");
		sel->order_by = SQL_KNN_ORDER_ALIAS;
		return true;
	}
	return fail(p, "order");
}

/* HAVING names a select alias: it must be the distance's. Terms were
 * recorded as column filters with only a name; turn them into distance
 * terms. */
static bool resolve_having(struct kp *p, struct sql_knn_select *sel, size_t first)
{
	for (size_t i = first; i < sel->nfilters; i++) {
		struct sql_knn_filter *f = &sel->filters[i];
		size_t idx = 0;
		if (f->on_distance)
			continue;
		if (find_out(p, sel, &f->column, &idx) != 1 ||
		    sel->items[idx].kind != SQL_KNN_ITEM_DISTANCE)
			return fail(p, "having");
		f->on_distance = true;
		memset(&f->column, 0, sizeof(f->column));
		if (!distance_term_ok(p, f))
			return false;
	}
	return true;
}

/* A name of the outer query: an inner result column, by [alias.]name. */
static bool outer_ref(struct kp *p, const struct sql_name *schema, const struct sql_name *qual,
                      const struct sql_name *name, int *inner)
{
	struct sql_knn *k = p->k;
	size_t idx = 0;
	if (sql_name_present(schema) ||
	    (sql_name_present(qual) && !sql_name_same(p->s, qual, &k->outer_alias)))
		return fail(p, "qualifier");
	if (find_out(p, &k->inner, name, &idx) != 1)
		return fail(p, "column");
	*inner = (int)idx;
	return true;
}

/* pytidb's wrapper: resolves the outer query's names against the derived
 * table's result columns. */
static bool check_outer(struct kp *p, const struct order_key *key)
{
	struct sql_knn *k = p->k;
	struct sql_knn_select *in = &k->inner, *out = &k->outer;
	int dist_col = -1;
	for (size_t i = 0; i < in->nitems; i++) {
		const struct sql_knn_item *it = &in->items[i];
		size_t idx = 0;
		if (it->kind == SQL_KNN_ITEM_STAR)
			return fail(p, "star");
		if (!out_name(it) || find_out(p, in, out_name(it), &idx) != 1)
			return fail(p, out_name(it) ? "duplicate" : "alias");
		if (it->kind == SQL_KNN_ITEM_DISTANCE)
			dist_col = (int)i;
	}
	if (dist_col < 0)
		return fail(p, "no_distance");
	for (size_t i = 0; i < out->nitems; i++) {
		struct sql_knn_item *it = &out->items[i];
		switch (it->kind) {
		case SQL_KNN_ITEM_STAR:
			if (sql_name_present(&it->schema) ||
			    (sql_name_present(&it->qual) &&
			     !sql_name_same(p->s, &it->qual, &k->outer_alias)))
				return fail(p, "qualifier");
			break;
		case SQL_KNN_ITEM_DISTANCE:
			return fail(p, "expression"); /* VEC_* over the derived table */
		case SQL_KNN_ITEM_SCORE:
			if (!sql_name_present(&it->name))
				return fail(p, "expression");
			if (!outer_ref(p, &it->schema, &it->qual, &it->name, &it->inner))
				return false;
			if (it->inner != dist_col)
				return fail(p, "expression");
			break;
		case SQL_KNN_ITEM_COLUMN:
			if (!outer_ref(p, &it->schema, &it->qual, &it->name, &it->inner))
				return false;
			if (in->items[it->inner].kind == SQL_KNN_ITEM_DISTANCE)
				it->kind = SQL_KNN_ITEM_DISTANCE;
			else if (in->items[it->inner].kind == SQL_KNN_ITEM_SCORE)
				return fail(p, "expression");
			break;
		}
	}
	for (size_t i = 0; i < out->nfilters; i++) {
		struct sql_knn_filter *f = &out->filters[i];
		if (f->on_distance)
			return fail(p, "expression"); /* VEC_* over the derived table */
		if (!outer_ref(p, &f->schema, &f->qual, &f->column, &f->inner))
			return false;
		enum sql_knn_item_kind ik = in->items[f->inner].kind;
		if (ik == SQL_KNN_ITEM_SCORE)
			return fail(p, "expression");
		if (ik == SQL_KNN_ITEM_DISTANCE) {
			f->on_distance = true;
			if (!distance_term_ok(p, f))
				return false;
		}
	}
	size_t idx = 0;
	switch (key->kind) {
	case KEY_DIST:
		return fail(p, "order");
	case KEY_POS:
		if (key->pos == 0 || key->pos > out->nitems ||
		    out->items[key->pos - 1].kind != SQL_KNN_ITEM_DISTANCE)
			return fail(p, "order");
		out->order_by = SQL_KNN_ORDER_POS;
		return true;
	case KEY_NAME:
		if (!sql_name_present(&key->r.qual)) {
			size_t hits = find_out(p, out, &key->r.name, &idx);
			if (hits > 1)
				return fail(p, "ambiguous");
			if (hits == 1) {
				if (out->items[idx].kind != SQL_KNN_ITEM_DISTANCE)
					return fail(p, "order");
				out->order_by = SQL_KNN_ORDER_ALIAS;
				return true;
			}
		}
		int inner = -1;
		if (!outer_ref(p, &key->r.schema, &key->r.qual, &key->r.name, &inner))
			return false;
		if (inner != dist_col)
			return fail(p, "order");
		out->order_by = SQL_KNN_ORDER_DERIVED;
		return true;
	}
	return fail(p, "order");
}

/* FROM ( SELECT ... ) [AS] alias: pytidb's derived table. */
static bool derived(struct kp *p)
{
	struct sql_knn *k = p->k;
	adv(p); /* ( */
	if (!accept_kw(p, "SELECT"))
		return fail(p, "subquery");
	if (!select_body(p, &k->inner, false))
		return false;
	if (!accept_op(p, ')'))
		return fail(p, "syntax");
	k->has_outer = true;
	if (!alias(p, &k->outer_alias))
		return false;
	if (!sql_name_present(&k->outer_alias))
		return fail(p, "syntax");
	return !p->reason;
}

/* The rest of a SELECT after the keyword: items, FROM, WHERE, HAVING, ORDER
 * BY, LIMIT. outer: this is the statement, whose FROM may be derived. */
static bool select_body(struct kp *p, struct sql_knn_select *sel, bool outer)
{
	struct sql_knn *k = p->k;
	struct order_key key;
	size_t having_from = 0;
	bool having = false;
	if (!modifiers(p))
		return false;
	do {
		if (!select_item(p, sel))
			return false;
	} while (accept_op(p, ','));
	if (!expect_kw(p, "FROM", "syntax"))
		return false;
	bool wrapped = false;
	if (op(p, '(')) {
		if (!outer)
			return fail(p, "subquery");
		if (!derived(p))
			return false;
		wrapped = true;
	} else {
		struct ref r;
		if (!is_name(p, &p->t, false))
			return fail(p, "syntax");
		if (!column_ref(p, &r, NULL))
			return false;
		if (sql_name_present(&r.schema))
			return fail(p, "syntax");
		k->schema = r.qual;
		k->table = r.name;
		if (!alias(p, &k->alias))
			return false;
	}
	if (accept_kw(p, "WHERE") && !conjunction(p, sel, IN_WHERE))
		return false;
	if (kw(p, "HAVING")) {
		if (wrapped)
			return fail(p, "having");
		adv(p);
		having = true;
		having_from = sel->nfilters;
		if (!conjunction(p, sel, IN_HAVING))
			return false;
	}
	if (!order_by(p, &key) || !limit(p, sel))
		return false;
	if (wrapped) {
		sel = &k->outer;
		return check_outer(p, &key);
	}
	if (having && !resolve_having(p, sel, having_from))
		return false;
	return check_table_query(p, sel, &key);
}

void sql_knn_init(struct sql_knn *k)
{
	memset(k, 0, sizeof(*k));
	vec_f32_init(&k->vec);
}

void sql_knn_free(struct sql_knn *k)
{
	free(k->inner.items);
	free(k->inner.filters);
	free(k->outer.items);
	free(k->outer.filters);
	free(k->lits);
	vec_f32_free(&k->vec);
	sql_knn_init(k);
}

/* Clears k's description, keeping its arrays. */
static void reset(struct sql_knn *k)
{
	struct sql_knn_select in = k->inner, out = k->outer;
	struct sql_lit *lits = k->lits;
	size_t cap_lits = k->cap_lits;
	struct vec_f32 vec = k->vec;
	memset(k, 0, sizeof(*k));
	k->inner.items = in.items;
	k->inner.cap_items = in.cap_items;
	k->inner.filters = in.filters;
	k->inner.cap_filters = in.cap_filters;
	k->outer.items = out.items;
	k->outer.cap_items = out.cap_items;
	k->outer.filters = out.filters;
	k->outer.cap_filters = out.cap_filters;
	k->lits = lits;
	k->cap_lits = cap_lits;
	k->vec = vec;
	k->vec.dim = 0;
}

/* The statement is read into k->outer, because only its FROM tells whether
 * it wraps a derived table (which is read into k->inner); a flat statement is
 * then moved to k->inner, where the table query always is. */
int sql_knn_parse(const char *sql, size_t n, unsigned flags, struct sql_knn *k)
{
	struct kp p;
	reset(k);
	memset(&p, 0, sizeof(p));
	p.s = sql;
	p.n = n;
	p.flags = flags;
	p.k = k;
	sql_lex_init(&p.lx, sql, n, flags & LEX_FLAGS);
	p.t.kind = SQL_TOK_OP; /* before the first token */
	adv(&p);
	if (!p.reason && !kw(&p, "SELECT"))
		fail(&p, op(&p, '(') ? "parenthesis" : "not_select");
	if (!p.reason) {
		adv(&p);
		if (select_body(&p, &k->outer, true) && !k->has_outer) {
			struct sql_knn_select t = k->inner;
			k->inner = k->outer;
			k->outer = t;
		}
	}
	if (!p.reason) {
		accept_op(&p, ';');
		if (p.t.kind != SQL_TOK_END)
			fail(&p, kw(&p, "FOR") || kw(&p, "LOCK") ? "for_update"
			         : kw(&p, "INTO")                ? "into"
			         : kw(&p, "UNION")               ? "union"
			                                         : "trailing");
	}
	free(p.vec_text);
	if (p.err)
		return p.err;
	if (p.reason) {
		k->reason = p.reason;
		return SQL_KNN_NO;
	}
	k->nparams = p.nparams;
	k->shape = sql_shape_hash(sql, n, flags, k);
	return 0;
}

/* The select items that name their result column by their text. */
static size_t name_spans(const struct sql_knn *k, struct sql_span *spans, size_t cap)
{
	const struct sql_knn_select *sels[2] = {&k->outer, &k->inner};
	size_t n = 0;
	for (size_t s = k->has_outer ? 0 : 1; s < 2; s++)
		for (size_t i = 0; i < sels[s]->nitems; i++) {
			const struct sql_knn_item *it = &sels[s]->items[i];
			bool expr = it->kind == SQL_KNN_ITEM_SCORE ||
			            (it->kind == SQL_KNN_ITEM_DISTANCE && it->inner < 0);
			if (!expr || sql_name_present(&it->alias))
				continue;
			if (n == cap)
				return cap + 1;
			spans[n].off = it->off;
			spans[n].len = it->len;
			n++;
		}
	return n;
}

uint64_t sql_shape_hash(const char *sql, size_t n, unsigned flags, const struct sql_knn *k)
{
	struct sql_span spans[MAX_SPANS];
	size_t ns = name_spans(k, spans, MAX_SPANS);
	uint64_t h = 0;
	if (ns > MAX_SPANS) /* a shape per text: no sharing, still correct */
		return XXH3_64bits_withSeed(sql, n, 1);
	if (sql_normalize_hash(sql, n, flags & LEX_FLAGS, SQL_NORM_MASK_LITERALS, spans, ns, 0,
	                       &h) != 0)
		return 0;
	return h;
}

int sql_shape_text(const char *sql, size_t n, unsigned flags, const struct sql_knn *k,
                   struct buf *out)
{
	struct sql_span spans[MAX_SPANS];
	size_t ns = name_spans(k, spans, MAX_SPANS);
	if (ns > MAX_SPANS)
		return buf_append(out, sql, n);
	return sql_normalize(sql, n, flags & LEX_FLAGS, SQL_NORM_MASK_LITERALS, spans, ns, out);
}

int sql_lit_string(const char *sql, const struct sql_lit *lit, unsigned flags, char *out,
                   size_t cap, size_t *out_len)
{
	return sql_unescape_body(sql + lit->off, lit->len, lit->quote, flags, out, cap, out_len);
}
