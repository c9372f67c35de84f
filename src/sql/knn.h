/* The kNN recogniser: decides whether a statement is exactly one of the
 * vector top-k forms the cache can answer (one table, select list of columns
 * and the distance, a conjunction of simple filters, ORDER BY the distance
 * ASC, LIMIT), and describes it. Anything else is "not recognised". */
#ifndef VECGATE_SQL_KNN_H
#define VECGATE_SQL_KNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "sql/lex.h"
#include "vec/vec.h"

/* sql_knn_parse's answer when the statement is not a recognised form. */
#define SQL_KNN_NO 1

/* Options for sql_knn_parse (besides the SQL_LEX_* bits, which it passes to
 * the lexer: NO_BACKSLASH_ESCAPES and ANSI_QUOTES must match the session). */
/* The caller knows ANSI_QUOTES is off, so "..." is a string. Without it a
 * double-quoted token is not recognised ("dquote"): under ANSI_QUOTES it
 * would be a column. */
#define SQL_KNN_DQUOTE_STRINGS 0x100u

enum sql_knn_item_kind {
	SQL_KNN_ITEM_COLUMN,   /* a column reference */
	SQL_KNN_ITEM_STAR,     /* * or t.* */
	SQL_KNN_ITEM_DISTANCE, /* the distance expression; in the outer query, the
	                        * derived table's distance column */
	SQL_KNN_ITEM_SCORE,    /* 1 - distance (pytidb's _score) */
};

/* A select item. Names point into the statement (see struct sql_name). */
struct sql_knn_item {
	enum sql_knn_item_kind kind;
	struct sql_name schema; /* COLUMN / STAR: db of db.t.col, else absent */
	struct sql_name qual;   /* COLUMN / STAR: t of t.col or t.*, else absent */
	struct sql_name name;   /* COLUMN: the column */
	struct sql_name alias;  /* AS alias or bare alias; absent when none */
	size_t off, len;        /* the expression's text, alias excluded */
	/* Outer query: index of the inner item whose output it reads (COLUMN,
	 * DISTANCE, SCORE); -1 for STAR and in the inner query. */
	int inner;
};

enum sql_lit_kind {
	SQL_LIT_INT,     /* 42 (sign in negative) */
	SQL_LIT_DECIMAL, /* 4.2, .5, 1. */
	SQL_LIT_FLOAT,   /* 4.2e0 */
	SQL_LIT_STRING,  /* '...' */
	SQL_LIT_PARAM,   /* ? */
};

/* A filter's constant. */
struct sql_lit {
	enum sql_lit_kind kind;
	bool negative;   /* numbers: a unary minus came before */
	size_t off, len; /* numbers: the digits; STRING: the body between quotes */
	unsigned flags;  /* STRING: SQL_TOKF_ESCAPED / SQL_TOKF_INTRO of the token */
	char quote;      /* STRING: ' or " */
	unsigned param;  /* PARAM: 0-based index among the statement's '?' */
	double num;      /* numbers: the value as a double (sign applied) */
};

enum sql_knn_op {
	SQL_KNN_EQ,          /* = */
	SQL_KNN_NE,          /* <> or != */
	SQL_KNN_LT,          /* < */
	SQL_KNN_LE,          /* <= */
	SQL_KNN_GT,          /* > */
	SQL_KNN_GE,          /* >= */
	SQL_KNN_IN,          /* IN (lits) */
	SQL_KNN_NOT_IN,      /* NOT IN (lits) */
	SQL_KNN_IS_NULL,     /* IS NULL */
	SQL_KNN_IS_NOT_NULL, /* IS NOT NULL */
};

/* One term of the WHERE (or HAVING) conjunction. The subject is on the left:
 * "0.5 > d" is stored as d < 0.5. */
struct sql_knn_filter {
	bool on_distance;       /* the subject is the distance (else a column) */
	struct sql_name schema; /* column subject: db of db.t.col, else absent */
	struct sql_name qual;   /* column subject: its table qualifier, else absent */
	struct sql_name column; /* column subject */
	int inner;              /* outer query: the inner item read, else -1 */
	enum sql_knn_op op;
	size_t lit, nlit; /* constants: lits[lit .. lit + nlit) of the sql_knn */
};

/* A LIMIT count or OFFSET: absent, a literal, or a '?'. */
struct sql_knn_count {
	bool present;
	bool is_param;
	uint64_t value; /* literal */
	unsigned param; /* is_param: index among the statement's '?' */
};

/* How ORDER BY named the distance. */
enum sql_knn_order {
	SQL_KNN_ORDER_EXPR,    /* the expression, verbatim */
	SQL_KNN_ORDER_ALIAS,   /* a select item's name */
	SQL_KNN_ORDER_POS,     /* a select item's position (ORDER BY 4) */
	SQL_KNN_ORDER_DERIVED, /* outer query: the derived table's distance column */
};

/* One SELECT level: its items, filters, limit and offset. */
struct sql_knn_select {
	struct sql_knn_item *items;
	size_t nitems, cap_items;
	struct sql_knn_filter *filters;
	size_t nfilters, cap_filters;
	struct sql_knn_count limit, offset;
	enum sql_knn_order order_by; /* how ORDER BY named the distance */
};

#define SQL_KNN_MAX_VEC_PARAMS 8

/* A recognised kNN statement. Offsets and names point into the statement
 * text the caller passed, which must outlive this description. */
struct sql_knn {
	struct sql_name schema, table, alias; /* FROM [schema.]table [AS alias] */
	enum vec_metric metric;
	/* The vector column, as written in the distance expression. */
	struct sql_name vcol_schema, vcol_qual, vcol;
	bool vec_first;    /* the query vector is the function's first argument */
	bool vec_is_param; /* the query vector is a '?' */
	/* Literal form: the string constant (lit.off/len is its body) and its
	 * value parsed as TiDB master does. */
	struct sql_lit vec_lit;
	struct vec_f32 vec;
	/* Parameter form: every '?' that stands for the query vector (the
	 * expression may be written more than once); the cache must check they
	 * were all bound to the same bytes. */
	unsigned vec_params[SQL_KNN_MAX_VEC_PARAMS];
	size_t nvec_params;
	unsigned nparams; /* number of '?' in the statement */
	/* The SELECT over the table. Without an outer query it is the
	 * statement; with one (pytidb) it is the derived table. */
	struct sql_knn_select inner;
	bool has_outer;
	struct sql_name outer_alias; /* the derived table's alias ("candidates") */
	struct sql_knn_select outer;
	struct sql_lit *lits; /* every filter constant */
	size_t nlits, cap_lits;
	uint64_t shape;     /* sql_shape_hash of the statement */
	const char *reason; /* why not recognised (static), or NULL */
};

void sql_knn_init(struct sql_knn *k);
/* Frees what sql_knn_parse allocated; k can be parsed into again. */
void sql_knn_free(struct sql_knn *k);

/* Decides whether sql[0..n) (one whole statement, text or prepared) is a
 * recognised kNN query; flags are SQL_LEX_* and SQL_KNN_*. Returns 0 and
 * fills k; SQL_KNN_NO with k->reason set to a short static word for metrics
 * ("join", "or", "desc", "hint", "expression", "syntax", "vector", ...); or
 * -ENOMEM. A query vector that TiDB would reject (bad text, NaN, too many
 * dimensions...) is SQL_KNN_NO with reason "vector": TiDB gives the error.
 * k keeps its allocations between calls; free with sql_knn_free. */
int sql_knn_parse(const char *sql, size_t n, unsigned flags, struct sql_knn *k) MUST_CHECK;

/* The query's shape: the statement normalised (sql_normalize) with every
 * literal (the vector, filter constants, LIMIT) masked as '?', except the
 * text of select items that name their result column by their own text (a
 * distance or score without an alias), which is kept as typed. Two statements
 * with one shape differ only in constants and so get the same result columns
 * from TiDB. k is the statement's sql_knn_parse result; flags as given to it.
 * sql_shape_hash is XXH3-64 of that text (also stored in k->shape);
 * sql_shape_text appends the text itself to out (0, -ENOMEM, -EINVAL). */
uint64_t sql_shape_hash(const char *sql, size_t n, unsigned flags, const struct sql_knn *k);
int sql_shape_text(const char *sql, size_t n, unsigned flags, const struct sql_knn *k,
                   struct buf *out) MUST_CHECK;

/* A STRING constant's value, unescaped, into out[0..cap) (a cap of lit->len
 * always suffices); flags as given to sql_knn_parse. 0 or -ENOSPC. */
int sql_lit_string(const char *sql, const struct sql_lit *lit, unsigned flags, char *out,
                   size_t cap, size_t *out_len) MUST_CHECK;

#endif
