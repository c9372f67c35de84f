/* Key extraction for writes: a strict reader of single-table INSERT, REPLACE,
 * UPDATE and DELETE that names the primary key of every row the statement can
 * touch, or refuses. Every doubt ends in a refusal: a refusal costs a reload
 * of the table, a missed key a cache that disagrees with TiDB
 * (docs/design.md §10).
 *
 * UPDATE and DELETE: WHERE is read as a conjunction. A conjunct that fixes
 * key columns (col = v, v = col, col IN (...), (c1, c2) IN ((...), ...),
 * (c1, c2) = (...)) is a "fix"; anything else AND-ed only narrows the rows,
 * so it is skipped. The keys are the product of fixes that together cover
 * the key, a superset of the rows touched: reading back a row that was not
 * touched is harmless. */
#include "sql/keys.h"

#include <errno.h>
#include <string.h>

#include "sql/lex.h"

/* The lexer flags that change how the statement splits into tokens. */
#define LEX_FLAGS (SQL_LEX_NO_BACKSLASH_ESCAPES | SQL_LEX_ANSI_QUOTES)
/* Parenthesised groups in WHERE may nest this deep. */
#define MAX_DEPTH 32
/* Fixes kept per statement. Later ones are dropped, which can only leave a
 * key column unfixed (a refusal), never add a wrong key. */
#define MAX_FIXES 32
/* A quoted integer compared with an integer column is compared as a double
 * (MySQL's rule for string and number), and from 2^53 on several integers
 * share one double: such a value would match rows with other keys. */
static const char exact_double_max[] = "9007199254740991";

/* Where the reader is: restoring a copy re-reads the same tokens, with the
 * same '?' numbers. */
struct cursor {
	struct sql_lexer lx;
	struct sql_tok t;
	unsigned t_param; /* the current token's index among the '?', when it is one */
	unsigned nparams; /* '?' read so far */
};

/* A conjunct of WHERE that fixes key columns: nrows tuples of values for
 * the key columns cols[0..ncols), as offsets into vidx from first on. */
struct fix {
	unsigned mask;
	size_t ncols;
	size_t cols[SQL_KEYS_MAX_COLS];
	size_t nrows;
	size_t first;
};

/* The working space's fill, to undo a speculative read of a term. */
struct mark {
	size_t nfixes, scratch, vidx;
};

struct kp {
	const char *s;
	unsigned lexflags;
	const char *db;
	const struct sql_key_table *t;
	const struct sql_key_param *params;
	size_t nparams;
	struct sql_write_keys *w;
	struct cursor c;
	const char *reason; /* the refusal, once decided */
	int err;            /* -ENOMEM */
	/* Why a WHERE term on a key column could not be used (its value was
	 * not a literal the key can hold ...), for the refusal when the key is
	 * left unfixed. */
	const char *soft;
	bool saw_or; /* a group joined by OR could not fix anything */
	/* The next token may start INSERT's query: refused as insert_select,
	 * not as a subquery. */
	bool select_ok;
	struct sql_name alias;
	bool have_alias;
	unsigned depth;
	struct fix fixes[MAX_FIXES];
	size_t nfixes;
};

/* What a key value read as. */
enum val {
	V_MISSING, /* INSERT: the column was not given */
	V_OK,      /* a value, in scratch */
	V_NULL,
	V_DEFAULT,
	V_BAD, /* not a literal the key can hold: the reason says why */
};

static void fail(struct kp *p, const char *reason)
{
	if (!p->reason)
		p->reason = reason;
	/* Every loop stops at the end: a failure ends the reading. */
	p->c.t.kind = SQL_TOK_END;
}

static void nomem(struct kp *p)
{
	p->err = -ENOMEM;
	fail(p, "nomem");
}

static void soft(struct kp *p, const char *reason)
{
	if (!p->soft)
		p->soft = reason;
}

static bool kw(const struct kp *p, const char *w)
{
	return sql_tok_is_kw(p->s, &p->c.t, w);
}

static bool op(const struct kp *p, int o)
{
	return sql_tok_is_op(&p->c.t, o);
}

static bool stop(const struct kp *p)
{
	return p->reason || p->c.t.kind == SQL_TOK_END;
}

/* Moves to the next token. Executable comments are read by the server, and
 * hints may set variables for the statement (SET_VAR), so both refuse; so
 * does a query anywhere but where INSERT ... SELECT has it. */
static void adv(struct kp *p)
{
	struct cursor *c = &p->c;
	if (p->reason)
		return;
	bool dot = sql_tok_is_op(&c->t, '.');
	if (sql_lex_next(&c->lx, &c->t) < 0) {
		fail(p, "unknown_syntax");
		return;
	}
	switch (c->t.kind) {
	case SQL_TOK_EXEC_COMMENT:
		fail(p, "exec_comment");
		break;
	case SQL_TOK_HINT:
		fail(p, "hint");
		break;
	case SQL_TOK_PARAM:
		c->t_param = c->nparams++;
		break;
	case SQL_TOK_IDENT:
		if (!dot && !p->select_ok && (kw(p, "SELECT") || kw(p, "TABLE")))
			fail(p, "subquery");
		break;
	default:
		break;
	}
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

static void expect_kw(struct kp *p, const char *w)
{
	if (!accept_kw(p, w))
		fail(p, "unknown_syntax");
}

/* A name here: a quoted identifier, a word that is not reserved, or any
 * word right after a '.'. */
static bool is_name(const struct kp *p, bool after_dot)
{
	const struct sql_tok *t = &p->c.t;
	return t->kind == SQL_TOK_QIDENT ||
	       (t->kind == SQL_TOK_IDENT && (after_dot || !sql_is_reserved(p->s + t->off, t->len)));
}

static struct sql_name name_here(const struct kp *p)
{
	return sql_name_of(&p->c.t, p->s, p->lexflags);
}

static bool name_is(const struct kp *p, const struct sql_name *nm, const char *s)
{
	return sql_name_eq(p->s, nm, s, strlen(s));
}

static bool str_eq_nocase(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
		if (x >= 'a' && x <= 'z')
			x -= 32;
		if (y >= 'a' && y <= 'z')
			y -= 32;
		if (x != y)
			return false;
		if (!x)
			return true;
	}
}

static struct mark mark_here(const struct kp *p)
{
	struct mark m = {p->nfixes, p->w->scratch.len, p->w->vidx.len};
	return m;
}

static void rollback(struct kp *p, const struct mark *m)
{
	p->nfixes = m->nfixes;
	p->w->scratch.len = m->scratch;
	p->w->vidx.len = m->vidx;
}

/* Appends a value (u32 length, bytes) to b. */
static bool put_value(struct kp *p, struct buf *b, const void *v, size_t n)
{
	uint32_t len = (uint32_t)n;
	if (n > UINT32_MAX) {
		fail(p, "key_range");
		return false;
	}
	if (buf_append(b, &len, sizeof(len)) < 0 || buf_append(b, v, n) < 0) {
		nomem(p);
		return false;
	}
	return true;
}

static uint32_t value_len(const struct buf *b, size_t off)
{
	uint32_t len;
	memcpy(&len, b->data + off, sizeof(len));
	return len;
}

/* Compares two runs of decimal digits without leading zeros as numbers. */
static int cmp_digits(const char *a, size_t na, const char *b)
{
	size_t nb = strlen(b);
	if (na != nb)
		return na < nb ? -1 : 1;
	return memcmp(a, b, na);
}

/* Appends the canonical text of the integer [-]d[0..n) (digits only, n > 0)
 * to scratch as a value of type ty; *off is where it starts. quoted: it was
 * written as a string, so it must also compare exactly as a double. NULL on
 * success, else why not. */
static const char *canon_int(struct kp *p, bool neg, const char *d, size_t n, enum sql_key_type ty,
                             bool quoted, size_t *off)
{
	char out[24];
	size_t o = 0;
	while (n > 1 && d[0] == '0') {
		d++;
		n--;
	}
	if (n == 1 && d[0] == '0')
		neg = false;
	if (ty == SQL_KEY_BYTES)
		return "expression_key";
	if (ty == SQL_KEY_UINT) {
		if (neg || cmp_digits(d, n, "18446744073709551615") > 0)
			return "key_range";
	} else if (cmp_digits(d, n, neg ? "9223372036854775808" : "9223372036854775807") > 0) {
		return "key_range";
	}
	if (quoted && cmp_digits(d, n, exact_double_max) > 0)
		return "key_range";
	if (neg)
		out[o++] = '-';
	memcpy(out + o, d, n);
	*off = p->w->scratch.len;
	if (!put_value(p, &p->w->scratch, out, o + n))
		return "nomem";
	return NULL;
}

static bool all_digits(const char *d, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (d[i] < '0' || d[i] > '9')
			return false;
	return true;
}

/* Text that the server converts to an integer exactly: [+-]digits. */
static const char *text_int(struct kp *p, const char *s, size_t n, enum sql_key_type ty,
                            bool quoted, size_t *off, const char *bad)
{
	bool neg = false;
	if (n > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		s++;
		n--;
	}
	if (!all_digits(s, n))
		return bad;
	return canon_int(p, neg, s, n, ty, quoted, off);
}

/* A '?' as the value of key column c. */
static enum val param_value(struct kp *p, size_t c, size_t *off, const char **why)
{
	enum sql_key_type ty = p->t->types[c];
	unsigned i = p->c.t_param;
	if (i >= p->nparams) {
		*why = "params";
		return V_BAD;
	}
	const struct sql_key_param *v = &p->params[i];
	if (v->is_null)
		return V_NULL;
	if (ty == SQL_KEY_BYTES) {
		if (v->is_int) {
			*why = "params";
			return V_BAD;
		}
		*off = p->w->scratch.len;
		if (!put_value(p, &p->w->scratch, v->p, v->n)) {
			*why = p->reason;
			return V_BAD;
		}
		return V_OK;
	}
	*why = text_int(p, v->p, v->n, ty, !v->is_int, off, "params");
	return *why ? V_BAD : V_OK;
}

/* A quoted string as the value of key column c. */
static enum val string_value(struct kp *p, size_t c, size_t *off, const char **why)
{
	const struct sql_tok *t = &p->c.t;
	struct buf *sc = &p->w->scratch;
	size_t len;
	/* Under ANSI_QUOTES "x" is a column: a session whose sql_mode the
	 * caller got wrong must not turn a column into a key. */
	if (p->s[t->body_off - 1] == '"') {
		*why = "dquote";
		return V_BAD;
	}
	if (t->flags & SQL_TOKF_INTRO) {
		*why = "expression_key";
		return V_BAD;
	}
	size_t start = sc->len;
	if (buf_reserve(sc, sizeof(uint32_t) + t->body_len) < 0) {
		nomem(p);
		*why = "nomem";
		return V_BAD;
	}
	if (sql_unescape_string(p->s, t, p->lexflags, (char *)sc->data + start + sizeof(uint32_t),
	                        t->body_len, &len) < 0) {
		*why = "unknown_syntax";
		return V_BAD;
	}
	if (p->t->types[c] != SQL_KEY_BYTES) {
		/* The integer MySQL converts the string to, if it is one. The
		 * text is copied out first: the integer is written over it. */
		const char *txt = (const char *)sc->data + start + sizeof(uint32_t);
		char tmp[64];
		if (len >= sizeof(tmp)) {
			*why = "expression_key";
			return V_BAD;
		}
		memcpy(tmp, txt, len);
		*why = text_int(p, tmp, len, p->t->types[c], true, off, "expression_key");
		return *why ? V_BAD : V_OK;
	}
	uint32_t l32 = (uint32_t)len;
	memcpy(sc->data + start, &l32, sizeof(l32));
	sc->len = start + sizeof(uint32_t) + len;
	*off = start;
	return V_OK;
}

static bool at_value_end(const struct kp *p);

/* Reads one literal for key column c at the cursor: an integer (with one
 * sign), a string, a '?', NULL or DEFAULT. V_OK appends the canonical value
 * to scratch at *off. The cursor moves past what was read. */
static enum val key_value(struct kp *p, size_t c, size_t *off, const char **why)
{
	enum val v = V_BAD;
	*why = "expression_key";
	if (op(p, '-') || op(p, '+')) {
		bool neg = op(p, '-');
		adv(p);
		if (p->c.t.kind != SQL_TOK_INT)
			return V_BAD;
		*why = canon_int(p, neg, p->s + p->c.t.off, p->c.t.len, p->t->types[c], false, off);
		v = *why ? V_BAD : V_OK;
	} else {
		switch (p->c.t.kind) {
		case SQL_TOK_INT:
			*why = canon_int(p, false, p->s + p->c.t.off, p->c.t.len, p->t->types[c],
			                 false, off);
			v = *why ? V_BAD : V_OK;
			break;
		case SQL_TOK_STRING:
			v = string_value(p, c, off, why);
			break;
		case SQL_TOK_PARAM:
			v = param_value(p, c, off, why);
			break;
		default:
			if (kw(p, "NULL") || op(p, SQL_OP_NULL_ESC))
				v = V_NULL;
			else if (kw(p, "DEFAULT"))
				v = V_DEFAULT;
			else
				return V_BAD;
			break;
		}
	}
	if (p->reason) {
		*why = p->reason;
		return V_BAD;
	}
	adv(p);
	/* 'a' 'b' is one string, 5 COLLATE x another value, 1 + 1 an
	 * expression: a value must end where the literal does. */
	if (!at_value_end(p)) {
		*why = "expression_key";
		return V_BAD;
	}
	return v;
}

/* What may follow a key value: a list separator, a bracket, AND or the end
 * of a condition or statement, '=' (v = col), ON (INSERT ... SET ... ON
 * DUPLICATE KEY). The callers check which one they want. */
static bool at_value_end(const struct kp *p)
{
	return p->c.t.kind == SQL_TOK_END || op(p, ',') || op(p, ')') || op(p, ';') || op(p, '=') ||
	       op(p, SQL_OP_ANDAND) || kw(p, "AND") || kw(p, "ON") || kw(p, "ORDER") ||
	       kw(p, "LIMIT");
}

/* A column reference [[db.]table.]column at the cursor. False when the text
 * is not one, or its qualifier names something else than the statement's
 * table (or alias); else *key is the key column it names, or -1. */
static bool colref(struct kp *p, int *key)
{
	struct sql_name parts[3];
	size_t n = 0;
	for (;;) {
		if (!is_name(p, n > 0))
			return false;
		parts[n++] = name_here(p);
		adv(p);
		if (!op(p, '.'))
			break;
		if (n == 3)
			return false;
		adv(p);
	}
	if (n == 3 && (p->have_alias || !name_is(p, &parts[0], p->t->db)))
		return false;
	if (n >= 2) {
		const struct sql_name *q = &parts[n - 2];
		if (p->have_alias ? !sql_name_same(p->s, q, &p->alias)
		                  : !name_is(p, q, p->t->table))
			return false;
	}
	*key = -1;
	for (size_t c = 0; c < p->t->ncols; c++)
		if (name_is(p, &parts[n - 1], p->t->cols[c]))
			*key = (int)c;
	return !p->reason;
}

/* [db.]table at the cursor, which must be the cached table. */
static bool target(struct kp *p)
{
	struct sql_name a, b = {0, 0, 0, false, false};
	bool qualified = false;
	if (!is_name(p, false)) {
		fail(p, "unknown_syntax");
		return false;
	}
	a = name_here(p);
	adv(p);
	if (op(p, '.')) {
		adv(p);
		if (!is_name(p, true)) {
			fail(p, "unknown_syntax");
			return false;
		}
		b = name_here(p);
		qualified = true;
		adv(p);
	}
	if (!name_is(p, qualified ? &b : &a, p->t->table) ||
	    (qualified && !name_is(p, &a, p->t->db)))
		fail(p, "other_table");
	else if (!qualified && !p->db)
		fail(p, "database_unknown");
	else if (!qualified && !str_eq_nocase(p->db, p->t->db))
		fail(p, "other_table");
	return !p->reason;
}

/* [AS] alias after an UPDATE or DELETE table: any word that is not
 * reserved (WHERE, SET, JOIN ... all are). */
static void alias(struct kp *p)
{
	bool as = accept_kw(p, "AS");
	if (!is_name(p, false)) {
		if (as)
			fail(p, "unknown_syntax");
		return;
	}
	p->alias = name_here(p);
	p->have_alias = true;
	adv(p);
}

/* What may follow the table of UPDATE / DELETE before SET / WHERE. */
static void after_table(struct kp *p)
{
	static const char *const joins[] = {"JOIN",    "INNER", "LEFT",          "RIGHT", "CROSS",
	                                    "NATURAL", "OUTER", "STRAIGHT_JOIN", "USING", NULL};
	if (op(p, ',')) {
		fail(p, "multi_table");
		return;
	}
	for (const char *const *j = joins; *j; j++)
		if (kw(p, *j)) {
			fail(p, "multi_table");
			return;
		}
	if (kw(p, "PARTITION"))
		fail(p, "partition");
}

static bool kw_in(const struct kp *p, const char *const *words)
{
	for (; words && *words; words++)
		if (kw(p, *words))
			return true;
	return false;
}

/* Skips an expression that is not a key value: to a ',' (or, in a VALUES
 * row, the ')' closing it) at its level, a keyword of stops there, or the end
 * of the statement. */
static void skip_expr(struct kp *p, bool in_row, const char *const *stops)
{
	size_t depth = 0, n = 0;
	while (!stop(p) && !op(p, ';')) {
		if (depth == 0 && (op(p, ',') || kw_in(p, stops)))
			break;
		if (op(p, '(')) {
			depth++;
		} else if (op(p, ')')) {
			if (depth == 0) {
				if (in_row)
					break;
				fail(p, "unknown_syntax");
				return;
			}
			depth--;
		}
		adv(p);
		n++;
	}
	if (n == 0 || depth > 0)
		fail(p, "unknown_syntax");
}

/* col = expr [, ...] of UPDATE ... SET and ON DUPLICATE KEY UPDATE: no key
 * column may be assigned. */
static void assignments(struct kp *p, const char *const *stops)
{
	do {
		int key;
		if (!colref(p, &key)) {
			fail(p, "unknown_syntax");
			return;
		}
		if (key >= 0) {
			fail(p, "key_assigned");
			return;
		}
		if (!accept_op(p, '=')) {
			fail(p, "unknown_syntax");
			return;
		}
		skip_expr(p, false, stops);
	} while (accept_op(p, ','));
}

/* ---- INSERT / REPLACE ---- */

/* One row's key values: the tuple, a generated key, or a refusal. */
static void end_row(struct kp *p, const enum val *v, const size_t *off)
{
	struct sql_write_keys *w = p->w;
	const struct sql_key_table *t = p->t;
	/* A value of this row was refused: v holds V_BAD with no bytes behind
	 * its offset, and the statement is refused anyway. */
	if (p->reason)
		return;
	w->nrows++;
	if (t->auto_increment) {
		bool zero = v[0] == V_OK && value_len(&w->scratch, off[0]) == 1 &&
		            w->scratch.data[off[0] + sizeof(uint32_t)] == '0';
		if (v[0] == V_MISSING || v[0] == V_NULL || v[0] == V_DEFAULT ||
		    (zero && !(p->lexflags & SQL_KEYS_NO_AUTO_VALUE_ON_ZERO))) {
			w->n_generated++;
			buf_reset(&w->scratch);
			return;
		}
	}
	for (size_t c = 0; c < t->ncols; c++) {
		if (v[c] == V_MISSING || v[c] == V_DEFAULT) {
			/* The column's default: not known here. */
			fail(p, "key_missing");
			return;
		}
		if (v[c] == V_NULL) {
			/* An error, or without strict mode the type's zero. */
			fail(p, "null_key");
			return;
		}
	}
	size_t start = w->keys.len;
	if (buf_append(&w->offs, &start, sizeof(start)) < 0) {
		nomem(p);
		return;
	}
	for (size_t c = 0; c < t->ncols; c++) {
		uint32_t len = value_len(&w->scratch, off[c]);
		if (buf_append(&w->keys, w->scratch.data + off[c], sizeof(len) + len) < 0) {
			nomem(p);
			return;
		}
	}
	w->nkeys++;
	buf_reset(&w->scratch);
}

/* A key value of an INSERT row; a value the key cannot take refuses. */
static void insert_value(struct kp *p, size_t c, enum val *v, size_t *off)
{
	const char *why;
	v[c] = key_value(p, c, &off[c], &why);
	if (v[c] == V_BAD)
		fail(p, why);
}

/* VALUES (...), (...): keypos[c] is key column c's place in the column
 * list, or -1. */
static void values_rows(struct kp *p, const long *keypos, size_t nlist)
{
	static const char *const row_end[] = {NULL};
	do {
		enum val v[SQL_KEYS_MAX_COLS] = {V_MISSING};
		size_t off[SQL_KEYS_MAX_COLS] = {0};
		size_t i = 0;
		if (!accept_op(p, '(')) {
			fail(p, "unknown_syntax");
			return;
		}
		if (!op(p, ')')) {
			do {
				int key = -1;
				for (size_t c = 0; c < p->t->ncols; c++)
					if (keypos[c] == (long)i)
						key = (int)c;
				if (key >= 0)
					insert_value(p, (size_t)key, v, off);
				else
					skip_expr(p, true, row_end);
				i++;
			} while (accept_op(p, ','));
		}
		if (!accept_op(p, ')') || i != nlist) {
			/* A column count that does not match is the server's error. */
			fail(p, "unknown_syntax");
			return;
		}
		end_row(p, v, off);
	} while (!p->reason && accept_op(p, ','));
}

/* SET col = v, ...: one row. */
static void set_row(struct kp *p)
{
	static const char *const set_end[] = {"ON", NULL};
	enum val v[SQL_KEYS_MAX_COLS] = {V_MISSING};
	size_t off[SQL_KEYS_MAX_COLS] = {0};
	do {
		int key;
		if (!colref(p, &key) || !accept_op(p, '=')) {
			fail(p, "unknown_syntax");
			return;
		}
		if (key < 0) {
			skip_expr(p, false, set_end);
			continue;
		}
		if (v[key] != V_MISSING) {
			fail(p, "unknown_syntax");
			return;
		}
		insert_value(p, (size_t)key, v, off);
		if (!p->reason && !op(p, ',') && !kw(p, "ON") && !op(p, ';') &&
		    p->c.t.kind != SQL_TOK_END)
			fail(p, "expression_key");
	} while (accept_op(p, ','));
	end_row(p, v, off);
}

/* INSERT ... SELECT / TABLE / WITH / (SELECT ...) */
static bool at_query(const struct kp *p)
{
	return kw(p, "SELECT") || kw(p, "TABLE") || kw(p, "WITH") || op(p, '(');
}

/* Moves on where the next token may begin INSERT's query. */
static void adv_query_ok(struct kp *p)
{
	p->select_ok = true;
	adv(p);
	p->select_ok = false;
}

/* INSERT [LOW_PRIORITY | DELAYED | HIGH_PRIORITY] [IGNORE] [INTO] t (cols)
 * VALUES ... | SET ... [ON DUPLICATE KEY UPDATE ...]; REPLACE likewise,
 * without IGNORE and ON DUPLICATE KEY. */
static void insert_stmt(struct kp *p, bool replace)
{
	long keypos[SQL_KEYS_MAX_COLS];
	size_t nlist = 0;
	bool ignore = false, list = false;
	for (size_t c = 0; c < SQL_KEYS_MAX_COLS; c++)
		keypos[c] = -1;
	adv(p);
	for (;;) {
		if (accept_kw(p, "LOW_PRIORITY") || accept_kw(p, "DELAYED") ||
		    accept_kw(p, "HIGH_PRIORITY"))
			continue;
		if (!replace && accept_kw(p, "IGNORE")) {
			ignore = true;
			continue;
		}
		break;
	}
	p->w->kind = replace  ? SQL_WRITE_REPLACE
	             : ignore ? SQL_WRITE_INSERT_IGNORE
	                      : SQL_WRITE_INSERT;
	accept_kw(p, "INTO");
	/* The table's last token is read with select_ok, for INSERT t SELECT. */
	p->select_ok = true;
	bool ok = target(p);
	p->select_ok = false;
	if (!ok)
		return;
	if (replace && p->t->other_unique) {
		/* REPLACE deletes every row that conflicts on any unique key. */
		fail(p, "other_unique");
		return;
	}
	if (kw(p, "PARTITION")) {
		fail(p, "partition");
		return;
	}
	if (op(p, '(')) {
		adv_query_ok(p);
		if (at_query(p)) {
			fail(p, "insert_select");
			return;
		}
		list = true;
		if (!op(p, ')')) {
			do {
				int key;
				if (!colref(p, &key)) {
					fail(p, "unknown_syntax");
					return;
				}
				if (key >= 0) {
					if (keypos[key] >= 0) {
						fail(p, "unknown_syntax");
						return;
					}
					keypos[key] = (long)nlist;
				}
				nlist++;
			} while (accept_op(p, ','));
		}
		if (!op(p, ')')) {
			fail(p, "unknown_syntax");
			return;
		}
		adv_query_ok(p);
	}
	if (at_query(p)) {
		fail(p, "insert_select");
		return;
	}
	if (accept_kw(p, "VALUES") || accept_kw(p, "VALUE")) {
		/* The values are in the table's column order, which is not
		 * known here. */
		if (!list) {
			fail(p, "no_column_list");
			return;
		}
		values_rows(p, keypos, nlist);
	} else if (!list && accept_kw(p, "SET")) {
		set_row(p);
	} else {
		fail(p, "unknown_syntax");
		return;
	}
	if (!replace && accept_kw(p, "ON")) {
		expect_kw(p, "DUPLICATE");
		expect_kw(p, "KEY");
		expect_kw(p, "UPDATE");
		if (p->reason)
			return;
		/* A conflict on another unique key updates a row whose key the
		 * statement never names. */
		if (p->t->other_unique) {
			fail(p, "other_unique");
			return;
		}
		p->w->kind = SQL_WRITE_INSERT_ODKU;
		assignments(p, NULL);
	}
}

/* ---- WHERE ---- */

static bool is_and(const struct kp *p)
{
	return kw(p, "AND") || op(p, SQL_OP_ANDAND);
}

static bool is_or(const struct kp *p)
{
	return kw(p, "OR") || kw(p, "XOR") || op(p, SQL_OP_PIPES);
}

/* The end of a condition: of WHERE (top), or of a group (its ')'). */
static bool cond_end(const struct kp *p, bool top)
{
	if (p->c.t.kind == SQL_TOK_END || op(p, ';'))
		return true;
	return top ? kw(p, "ORDER") || kw(p, "LIMIT") : op(p, ')');
}

static void add_fix(struct kp *p, const struct fix *f)
{
	if (p->nfixes < MAX_FIXES)
		p->fixes[p->nfixes++] = *f;
}

static bool push_vidx(struct kp *p, size_t off)
{
	if (buf_append(&p->w->vidx, &off, sizeof(off)) < 0) {
		nomem(p);
		return false;
	}
	return true;
}

/* One value for key column c in a term; false (with the soft reason) when
 * it is not one the term can be used with. */
static bool term_value(struct kp *p, size_t c)
{
	const char *why;
	size_t off;
	switch (key_value(p, c, &off, &why)) {
	case V_OK:
		return push_vidx(p, off);
	case V_NULL:
		/* = NULL matches nothing; not worth a special case. */
		soft(p, "null_key");
		return false;
	default:
		soft(p, why);
		return false;
	}
}

/* col = v or col IN (v, ...), the cursor past "=" or "IN". */
static bool values_fix(struct kp *p, size_t c, bool list)
{
	struct fix f = {.mask = 1u << c, .ncols = 1, .cols = {c}};
	f.first = p->w->vidx.len / sizeof(size_t);
	if (list && !accept_op(p, '('))
		return false;
	do {
		if (!term_value(p, c))
			return false;
		f.nrows++;
	} while (list && accept_op(p, ','));
	if (list && !accept_op(p, ')'))
		return false;
	add_fix(p, &f);
	return !p->reason;
}

/* (v, v, ...) for the columns of f. */
static bool tuple_values(struct kp *p, struct fix *f)
{
	if (!accept_op(p, '('))
		return false;
	for (size_t j = 0; j < f->ncols; j++) {
		if (j > 0 && !accept_op(p, ','))
			return false;
		if (!term_value(p, f->cols[j]))
			return false;
	}
	if (!accept_op(p, ')'))
		return false;
	f->nrows++;
	return true;
}

/* (c1, c2, ...) IN ((v, v), ...) or (c1, c2, ...) = (v, v): key columns
 * only, each once. */
static bool tuple_term(struct kp *p)
{
	struct fix f;
	memset(&f, 0, sizeof(f));
	adv(p);
	do {
		int key;
		if (f.ncols == SQL_KEYS_MAX_COLS || !colref(p, &key) || key < 0 ||
		    (f.mask & (1u << key)))
			return false;
		f.cols[f.ncols++] = (size_t)key;
		f.mask |= 1u << key;
	} while (accept_op(p, ','));
	if (f.ncols < 2 || !accept_op(p, ')'))
		return false;
	f.first = p->w->vidx.len / sizeof(size_t);
	if (accept_op(p, '=')) {
		if (!tuple_values(p, &f))
			return false;
	} else if (accept_kw(p, "IN")) {
		if (!accept_op(p, '('))
			return false;
		do {
			if (!tuple_values(p, &f))
				return false;
		} while (accept_op(p, ','));
		if (!accept_op(p, ')'))
			return false;
	} else {
		return false;
	}
	add_fix(p, &f);
	return !p->reason;
}

static bool conjunction(struct kp *p, bool top);

/* ( condition ): its fixes count when it is a conjunction. */
static bool group_term(struct kp *p)
{
	if (p->depth >= MAX_DEPTH) {
		fail(p, "unknown_syntax");
		return false;
	}
	adv(p);
	p->depth++;
	bool pure = conjunction(p, false);
	p->depth--;
	if (!pure) {
		p->saw_or = true;
		return false;
	}
	return accept_op(p, ')');
}

/* A literal at the cursor, as v = col may start. */
static bool at_literal(const struct kp *p)
{
	enum sql_tok_kind k = p->c.t.kind;
	return k == SQL_TOK_INT || k == SQL_TOK_STRING || k == SQL_TOK_PARAM || op(p, '-') ||
	       op(p, '+') || kw(p, "NULL") || op(p, SQL_OP_NULL_ESC);
}

/* Reads a term that fixes key columns, recording its fix. False when it is
 * not one (the caller rewinds and skips it as a term that only narrows). */
static bool key_term(struct kp *p)
{
	int key;
	if (op(p, '(')) {
		struct cursor at = p->c;
		struct mark m = mark_here(p);
		if (tuple_term(p) || p->reason)
			return !p->reason;
		rollback(p, &m);
		p->c = at;
		return group_term(p);
	}
	if (is_name(p, false)) {
		if (!colref(p, &key) || key < 0)
			return false;
		if (accept_op(p, '='))
			return values_fix(p, (size_t)key, false);
		if (accept_kw(p, "IN"))
			return values_fix(p, (size_t)key, true);
		return false;
	}
	if (at_literal(p)) {
		/* v = col: find the column first, then read v as its type. */
		struct cursor at = p->c;
		if (op(p, '-') || op(p, '+'))
			adv(p);
		adv(p);
		if (!accept_op(p, '=') || !colref(p, &key) || key < 0)
			return false;
		struct cursor after = p->c;
		p->c = at;
		bool ok = values_fix(p, (size_t)key, false) && op(p, '=');
		p->c = after;
		return ok;
	}
	return false;
}

/* Skips a term that fixes no key: to the next AND of this level or the end
 * of the condition. False when an OR (XOR, ||) follows at this level, which
 * makes a group no conjunction; at the top level that refuses. */
static bool skip_term(struct kp *p, bool top)
{
	size_t depth = 0, between = 0;
	/* A CASE at this level: its WHEN a AND b cannot be told from ours
	 * without knowing where it ends (END is no reserved word), so the
	 * rest of the condition is this one term. */
	bool swallow = false;
	for (; !stop(p); adv(p)) {
		if (depth == 0) {
			if (cond_end(p, top))
				return true;
			if (is_or(p)) {
				if (top)
					fail(p, "or");
				return top;
			}
			if (is_and(p) && !swallow) {
				/* x BETWEEN a AND b: that AND is BETWEEN's. */
				if (between == 0)
					return true;
				between--;
			}
			if (op(p, SQL_OP_ASSIGN) || op(p, ')')) {
				fail(p, "unknown_syntax");
				return true;
			}
			if (kw(p, "BETWEEN"))
				between++;
			if (kw(p, "CASE"))
				swallow = true;
		}
		if (op(p, '('))
			depth++;
		else if (op(p, ')'))
			depth--;
	}
	if (depth > 0)
		fail(p, "unknown_syntax");
	return true;
}

/* One term of a conjunction, leaving the cursor on the AND or the end
 * after it. False when an OR follows at this level. */
static bool term(struct kp *p, bool top)
{
	struct cursor at = p->c;
	struct mark m = mark_here(p);
	bool group = op(p, '(');
	if (key_term(p)) {
		if (is_and(p) || cond_end(p, top))
			return true;
		/* id = 5 IS FALSE, id = 5 + 1: the value is part of an
		 * expression. (A group followed by more is just an
		 * expression.) */
		if (!group)
			soft(p, "expression_key");
	}
	if (p->reason)
		return true;
	rollback(p, &m);
	p->c = at;
	return skip_term(p, top);
}

/* term {AND term} up to the end of the condition. False when an OR joins
 * terms at this level (a group; at the top level that refuses). */
static bool conjunction(struct kp *p, bool top)
{
	for (;;) {
		if (cond_end(p, top) || is_and(p)) {
			fail(p, "unknown_syntax");
			return true;
		}
		if (!term(p, top))
			return false;
		if (p->reason || (!accept_kw(p, "AND") && !accept_op(p, SQL_OP_ANDAND)))
			return true;
	}
}

/* WHERE cond [ORDER BY ...] [LIMIT n] */
static void where_tail(struct kp *p)
{
	if (!accept_kw(p, "WHERE")) {
		fail(p, "no_where");
		return;
	}
	conjunction(p, true);
	if (accept_kw(p, "ORDER")) {
		size_t depth = 0, n = 0;
		expect_kw(p, "BY");
		for (; !stop(p) && !op(p, ';') && !(depth == 0 && kw(p, "LIMIT")); adv(p), n++) {
			if (op(p, '(')) {
				depth++;
			} else if (op(p, ')')) {
				if (depth == 0)
					fail(p, "unknown_syntax");
				else
					depth--;
			}
		}
		if (n == 0 || depth > 0)
			fail(p, "unknown_syntax");
	}
	if (accept_kw(p, "LIMIT")) {
		if (p->c.t.kind != SQL_TOK_INT && p->c.t.kind != SQL_TOK_PARAM)
			fail(p, "unknown_syntax");
		adv(p);
	}
}

/* UPDATE [LOW_PRIORITY] [IGNORE] t [[AS] a] SET ... WHERE ... */
static void update_stmt(struct kp *p)
{
	static const char *const set_end[] = {"WHERE", "ORDER", "LIMIT", NULL};
	p->w->kind = SQL_WRITE_UPDATE;
	adv(p);
	while (accept_kw(p, "LOW_PRIORITY") || accept_kw(p, "IGNORE"))
		;
	if (op(p, '(')) {
		fail(p, "multi_table");
		return;
	}
	if (!target(p))
		return;
	alias(p);
	after_table(p);
	expect_kw(p, "SET");
	assignments(p, set_end);
	where_tail(p);
}

/* DELETE [LOW_PRIORITY] [QUICK] [IGNORE] FROM t [[AS] a] WHERE ... */
static void delete_stmt(struct kp *p)
{
	p->w->kind = SQL_WRITE_DELETE;
	adv(p);
	while (accept_kw(p, "LOW_PRIORITY") || accept_kw(p, "QUICK") || accept_kw(p, "IGNORE"))
		;
	if (!accept_kw(p, "FROM")) {
		/* DELETE t1, t2 FROM ... */
		fail(p, is_name(p, false) ? "multi_table" : "unknown_syntax");
		return;
	}
	if (!target(p))
		return;
	alias(p);
	after_table(p);
	where_tail(p);
}

/* The key tuples of UPDATE / DELETE: fixes with disjoint columns that
 * together cover the key, wider ones first, and their product. */
static void product(struct kp *p)
{
	struct sql_write_keys *w = p->w;
	size_t ncols = p->t->ncols;
	unsigned all = (1u << ncols) - 1, covered = 0;
	const struct fix *chosen[SQL_KEYS_MAX_COLS];
	size_t nchosen = 0, owner[SQL_KEYS_MAX_COLS], place[SQL_KEYS_MAX_COLS];
	for (size_t width = ncols; width > 0; width--)
		for (size_t i = 0; i < p->nfixes; i++) {
			const struct fix *f = &p->fixes[i];
			if (f->ncols != width || (f->mask & covered))
				continue;
			for (size_t j = 0; j < f->ncols; j++) {
				owner[f->cols[j]] = nchosen;
				place[f->cols[j]] = j;
			}
			chosen[nchosen++] = f;
			covered |= f->mask;
		}
	if (covered != all) {
		fail(p, p->saw_or ? "or" : p->soft ? p->soft : "no_key_in_where");
		return;
	}
	size_t total = 1;
	for (size_t i = 0; i < nchosen; i++) {
		if (chosen[i]->nrows > SQL_KEYS_MAX_TUPLES / total) {
			fail(p, "too_many_keys");
			return;
		}
		total *= chosen[i]->nrows;
	}
	for (size_t k = 0; k < total; k++) {
		/* k in mixed radix, the first chosen fix most significant. */
		size_t row[SQL_KEYS_MAX_COLS], rest = k;
		for (size_t i = nchosen; i-- > 0;) {
			row[i] = rest % chosen[i]->nrows;
			rest /= chosen[i]->nrows;
		}
		size_t start = w->keys.len;
		if (buf_append(&w->offs, &start, sizeof(start)) < 0) {
			nomem(p);
			return;
		}
		for (size_t c = 0; c < ncols; c++) {
			const struct fix *f = chosen[owner[c]];
			size_t at, i = f->first + row[owner[c]] * f->ncols + place[c];
			memcpy(&at, w->vidx.data + i * sizeof(at), sizeof(at));
			uint32_t len = value_len(&w->scratch, at);
			if (buf_append(&w->keys, w->scratch.data + at, sizeof(len) + len) < 0) {
				nomem(p);
				return;
			}
		}
		w->nkeys++;
	}
}

static bool table_ok(const struct sql_key_table *t)
{
	if (!t || !t->db || !t->table || t->ncols == 0 || t->ncols > SQL_KEYS_MAX_COLS)
		return false;
	for (size_t c = 0; c < t->ncols; c++)
		if (!t->cols[c] || (unsigned)t->types[c] > SQL_KEY_BYTES)
			return false;
	/* A generated key is a single integer column. */
	return !t->auto_increment || (t->ncols == 1 && t->types[0] != SQL_KEY_BYTES);
}

static void clear(struct sql_write_keys *w)
{
	w->kind = SQL_WRITE_INSERT;
	w->nrows = w->nkeys = w->n_generated = 0;
	buf_reset(&w->keys);
	buf_reset(&w->offs);
	buf_reset(&w->scratch);
	buf_reset(&w->vidx);
}

void sql_write_keys_init(struct sql_write_keys *w)
{
	memset(w, 0, sizeof(*w));
	buf_init(&w->keys);
	buf_init(&w->offs);
	buf_init(&w->scratch);
	buf_init(&w->vidx);
}

void sql_write_keys_free(struct sql_write_keys *w)
{
	buf_free(&w->keys);
	buf_free(&w->offs);
	buf_free(&w->scratch);
	buf_free(&w->vidx);
	sql_write_keys_init(w);
}

int sql_write_keys(const char *sql, size_t n, unsigned lexflags, const char *db,
                   const struct sql_key_table *t, const struct sql_key_param *params,
                   size_t nparams, struct sql_write_keys *w, const char **reason)
{
	struct kp *p, kp;
	clear(w);
	*reason = NULL;
	if (!table_ok(t)) {
		*reason = "bad_table";
		return SQL_KEYS_NO;
	}
	p = &kp;
	memset(p, 0, sizeof(*p));
	p->s = sql;
	p->lexflags = lexflags;
	p->db = db;
	p->t = t;
	p->params = params;
	p->nparams = params ? nparams : 0;
	p->w = w;
	w->ncols = t->ncols;
	sql_lex_init(&p->c.lx, sql, n, lexflags & LEX_FLAGS);
	p->c.t.kind = SQL_TOK_OP; /* not '.' nor the end */
	/* A SELECT first is no write, not a subquery. */
	adv_query_ok(p);
	if (kw(p, "INSERT"))
		insert_stmt(p, false);
	else if (kw(p, "REPLACE"))
		insert_stmt(p, true);
	else if (kw(p, "UPDATE"))
		update_stmt(p);
	else if (kw(p, "DELETE"))
		delete_stmt(p);
	else if (kw(p, "WITH"))
		fail(p, "with");
	else
		fail(p, "not_a_write");
	if (!p->reason && accept_op(p, ';') && p->c.t.kind != SQL_TOK_END)
		fail(p, "trailing");
	if (!p->reason && p->c.t.kind != SQL_TOK_END)
		fail(p, "unknown_syntax");
	if (!p->reason && p->c.nparams != nparams)
		fail(p, "params");
	if (!p->reason && (w->kind == SQL_WRITE_UPDATE || w->kind == SQL_WRITE_DELETE))
		product(p);
	if (p->reason) {
		enum sql_write_kind kind = w->kind;
		clear(w);
		w->kind = kind;
		*reason = p->reason;
		return p->err ? p->err : SQL_KEYS_NO;
	}
	buf_reset(&w->scratch);
	buf_reset(&w->vidx);
	return 0;
}

void sql_write_key(const struct sql_write_keys *w, size_t i, size_t c, const uint8_t **p,
                   size_t *len)
{
	size_t off;
	*p = NULL;
	*len = 0;
	if (i >= w->nkeys || c >= w->ncols)
		return;
	memcpy(&off, w->offs.data + i * sizeof(off), sizeof(off));
	for (;; c--) {
		uint32_t l = value_len(&w->keys, off);
		if (c == 0) {
			*p = w->keys.data + off + sizeof(l);
			*len = l;
			return;
		}
		off += sizeof(l) + l;
	}
}
