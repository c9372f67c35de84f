/* Statement normalisation over the token stream, written either to a buffer
 * or straight into an XXH3 state (no allocation on the digest path). */
#define XXH_STATIC_LINKING_ONLY
#include "sql/digest.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

#include "sql/lex.h"

/* Where normalised bytes go: a buffer or a hash state. */
struct sink {
	struct buf *out;
	XXH3_state_t *st;
};

static int put(struct sink *k, const char *p, size_t n)
{
	if (k->out)
		return buf_append(k->out, p, n);
	return XXH3_64bits_update(k->st, p, n) == XXH_OK ? 0 : -ENOMEM;
}

/* Tokens that end a select list at its own parenthesis depth. */
static bool ends_select_list(const char *s, const struct sql_tok *t)
{
	static const char *const kws[] = {"FROM",      "INTO",  "WHERE", "GROUP", "HAVING",
	                                  "WINDOW",    "ORDER", "LIMIT", "UNION", "EXCEPT",
	                                  "INTERSECT", "FOR",   "LOCK"};
	if (t->kind == SQL_TOK_END || sql_tok_is_op(t, ';') || sql_tok_is_op(t, ')'))
		return true;
	for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
		if (sql_tok_is_kw(s, t, kws[i]))
			return true;
	return false;
}

static bool is_literal(const struct sql_tok *t)
{
	switch (t->kind) {
	case SQL_TOK_STRING:
	case SQL_TOK_INT:
	case SQL_TOK_DECIMAL:
	case SQL_TOK_FLOAT:
	case SQL_TOK_HEX:
	case SQL_TOK_BIT:
		return true;
	default:
		return false;
	}
}

/* The state of one normalisation pass. */
struct norm {
	const char *s;
	struct sink *k;
	bool started; /* something was written */
	size_t semis; /* ';' held back until something follows them */
	int rc;
};

/* Writes the separator before a token (held-back ';', then one space when
 * the token had white space or a comment before it). */
static void sep(struct norm *m, bool space)
{
	for (; m->semis > 0 && m->rc == 0; m->semis--)
		m->rc = put(m->k, ";", 1);
	if (m->started && space && m->rc == 0)
		m->rc = put(m->k, " ", 1);
	m->started = true;
}

static void raw(struct norm *m, bool space, size_t off, size_t len)
{
	sep(m, space);
	if (m->rc == 0)
		m->rc = put(m->k, m->s + off, len);
}

static void emit_tok(struct norm *m, const struct sql_tok *t, bool name_ctx, unsigned nf)
{
	if (sql_tok_is_op(t, ';')) {
		m->semis++;
		return;
	}
	sep(m, t->flags & SQL_TOKF_SPACE);
	if (m->rc)
		return;
	if ((nf & SQL_NORM_MASK_LITERALS) && is_literal(t)) {
		m->rc = put(m->k, "?", 1);
	} else if (t->kind == SQL_TOK_IDENT && !name_ctx &&
	           sql_is_reserved(m->s + t->off, t->len)) {
		char w[32]; /* reserved words are short: sql_is_reserved checked */
		for (size_t i = 0; i < t->len; i++) {
			char c = m->s[t->off + i];
			w[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
		}
		m->rc = put(m->k, w, t->len);
	} else {
		m->rc = put(m->k, m->s + t->off, t->len);
	}
}

static int run(const char *sql, size_t n, unsigned lexflags, unsigned nf,
               const struct sql_span *keep, size_t nkeep, struct sink *k)
{
	struct norm m = {sql, k, false, 0, 0};
	struct sql_lexer lx;
	struct sql_tok t;
	size_t ki = 0, depth = 0;
	bool prev_dot = false, span_done = false;
	/* The select list being copied: its depth, first token, end. */
	bool in_list = false, list_open = false, list_space = false;
	size_t list_depth = 0, list_start = 0, list_end = 0;

	sql_lex_init(&lx, sql, n, lexflags & ~SQL_LEX_EXPAND_EXEC);
	for (;;) {
		if (sql_lex_next(&lx, &t) < 0)
			return -EINVAL;
		bool before_dot = lx.ident_dot;
		if (in_list) {
			if (t.kind == SQL_TOK_END ||
			    (depth == list_depth && ends_select_list(sql, &t))) {
				if (list_open)
					raw(&m, list_space, list_start, list_end - list_start);
				in_list = false;
			} else {
				if (!list_open) {
					list_open = true;
					list_space = t.flags & SQL_TOKF_SPACE;
					list_start = t.off;
				}
				list_end = t.off + t.len;
				depth += sql_tok_is_op(&t, '(');
				depth -= sql_tok_is_op(&t, ')') && depth > 0;
				prev_dot = sql_tok_is_op(&t, '.');
				continue;
			}
		}
		if (t.kind == SQL_TOK_END)
			break;
		while (ki < nkeep && keep[ki].off + keep[ki].len <= t.off) {
			ki++;
			span_done = false;
		}
		if (ki < nkeep && t.off >= keep[ki].off) {
			if (!span_done)
				raw(&m, t.flags & SQL_TOKF_SPACE, keep[ki].off, keep[ki].len);
			span_done = true;
			depth += sql_tok_is_op(&t, '(');
			depth -= sql_tok_is_op(&t, ')') && depth > 0;
			prev_dot = sql_tok_is_op(&t, '.');
			continue;
		}
		bool name_ctx = prev_dot || before_dot;
		emit_tok(&m, &t, name_ctx, nf);
		if (m.rc)
			return m.rc;
		depth += sql_tok_is_op(&t, '(');
		depth -= sql_tok_is_op(&t, ')') && depth > 0;
		prev_dot = sql_tok_is_op(&t, '.');
		if ((nf & SQL_NORM_KEEP_SELECT_LISTS) && !name_ctx &&
		    sql_tok_is_kw(sql, &t, "SELECT")) {
			in_list = true;
			list_open = false;
			list_depth = depth;
		}
	}
	return m.rc;
}

int sql_normalize(const char *sql, size_t n, unsigned lexflags, unsigned normflags,
                  const struct sql_span *keep, size_t nkeep, struct buf *out)
{
	struct sink k = {out, NULL};
	return run(sql, n, lexflags, normflags, keep, nkeep, &k);
}

int sql_normalize_hash(const char *sql, size_t n, unsigned lexflags, unsigned normflags,
                       const struct sql_span *keep, size_t nkeep, uint64_t seed, uint64_t *hash)
{
	XXH3_state_t st;
	struct sink k = {NULL, &st};
	XXH3_INITSTATE(&st);
	if (XXH3_64bits_reset_withSeed(&st, seed) != XXH_OK)
		return -ENOMEM;
	int rc = run(sql, n, lexflags, normflags, keep, nkeep, &k);
	if (rc == 0)
		*hash = XXH3_64bits_digest(&st);
	return rc;
}

uint64_t sql_digest(const char *sql, size_t n, unsigned lexflags, uint64_t seed)
{
	uint64_t h;
	if (sql_normalize_hash(sql, n, lexflags, SQL_NORM_KEEP_SELECT_LISTS, NULL, 0, seed, &h) ==
	    0)
		return h;
	/* A different seed keeps raw and normalised texts apart. */
	return XXH3_64bits_withSeed(sql, n, seed ^ 0x9e3779b97f4a7c15ull);
}
