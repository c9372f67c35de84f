/* A MySQL/TiDB tokenizer over a byte range (not NUL-terminated), following
 * TiDB's own lexer (pkg/parser/lexer.go) where MySQL and TiDB differ. Pure:
 * tokens point into the caller's text, nothing is allocated. */
#ifndef VECGATE_SQL_LEX_H
#define VECGATE_SQL_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Lexer flags: the session state that changes how text splits into tokens. */
/* sql_mode NO_BACKSLASH_ESCAPES (server status flag 0x0200): '\' is an
 * ordinary byte inside strings. */
#define SQL_LEX_NO_BACKSLASH_ESCAPES 0x1u
/* sql_mode ANSI_QUOTES: "..." is a quoted identifier, not a string. */
#define SQL_LEX_ANSI_QUOTES 0x2u
/* Read the inside of executable comments (slash-star-bang with an optional
 * 5-digit version, and TiDB's slash-star-T-bang with a feature list) as the
 * server does, instead of returning each as one SQL_TOK_EXEC_COMMENT. */
#define SQL_LEX_EXPAND_EXEC 0x4u

enum sql_tok_kind {
	SQL_TOK_END = 0,      /* end of input */
	SQL_TOK_IDENT,        /* unquoted identifier or keyword (see sql_tok_is_kw) */
	SQL_TOK_QIDENT,       /* `quoted` identifier, or "quoted" under ANSI_QUOTES */
	SQL_TOK_STRING,       /* '...' or "...", maybe after _charset or N */
	SQL_TOK_INT,          /* 123 (also 0123: TiDB reads it as decimal 123) */
	SQL_TOK_DECIMAL,      /* 1.5, .5, 1. */
	SQL_TOK_FLOAT,        /* 1e5, 0.2e0, .5E-3 */
	SQL_TOK_HEX,          /* 0x1F, X'1F' */
	SQL_TOK_BIT,          /* 0b101, B'101' */
	SQL_TOK_PARAM,        /* ? */
	SQL_TOK_VAR,          /* @name, @'name', @@name, @@session.name */
	SQL_TOK_OP,           /* operator or punctuation: see op */
	SQL_TOK_EXEC_COMMENT, /* a whole executable comment (without SQL_LEX_EXPAND_EXEC) */
	SQL_TOK_HINT,         /* an optimizer hint comment, slash-star-plus ... star-slash */
};

/* Operators longer than one byte; a one-byte operator's op is the byte. */
enum sql_op {
	SQL_OP_LE = 256,     /* <= */
	SQL_OP_GE,           /* >= */
	SQL_OP_NE,           /* <> */
	SQL_OP_NE_BANG,      /* != */
	SQL_OP_NULLEQ,       /* <=> */
	SQL_OP_ASSIGN,       /* := */
	SQL_OP_PIPES,        /* || (OR, or CONCAT under PIPES_AS_CONCAT) */
	SQL_OP_ANDAND,       /* && */
	SQL_OP_JSON_EXTRACT, /* -> */
	SQL_OP_JSON_UNQUOTE, /* ->> */
	SQL_OP_SHL,          /* << */
	SQL_OP_SHR,          /* >> */
	SQL_OP_ANDNOT,       /* &^ (TiDB) */
	SQL_OP_NULL_ESC,     /* \N, the NULL literal */
};

/* Token flags. STRING / QIDENT: the body holds escapes or doubled quotes, so
 * read its value with sql_unescape_string (or sql_name_copy). */
#define SQL_TOKF_ESCAPED 0x1u
#define SQL_TOKF_INTRO   0x2u /* STRING: a charset introducer precedes the quote */
#define SQL_TOKF_SPACE   0x4u /* whitespace or a comment precedes the token */

struct sql_tok {
	enum sql_tok_kind kind;
	int op;          /* SQL_TOK_OP: the byte, or an enum sql_op */
	unsigned flags;  /* SQL_TOKF_* */
	size_t off, len; /* the whole token in the input, introducer and quotes included */
	/* STRING, QIDENT: the bytes between the quotes; HEX, BIT: the digits;
	 * otherwise the same as off, len. */
	size_t body_off, body_len;
	/* STRING with SQL_TOKF_INTRO: the introducer is [off, off + intro_len),
	 * e.g. "_utf8mb4" or "N". */
	size_t intro_len;
};

struct sql_lexer {
	const char *s;
	size_t n;
	size_t pos;
	unsigned flags;
	bool in_exec;   /* inside an expanded executable comment */
	bool ident_dot; /* the last identifier was followed directly by '.' */
	bool after_dot; /* the last token was that '.': a digit starts a name */
	bool saw_exec;  /* an executable comment was met (either mode) */
	bool saw_hint;  /* an optimizer hint was met */
};

/* Starts tokenizing s[0..n) with SQL_LEX_* flags. */
void sql_lex_init(struct sql_lexer *lx, const char *s, size_t n, unsigned flags);

/* Reads the next token into *t, skipping whitespace and ordinary comments.
 * Returns 0 (t->kind is SQL_TOK_END at the end of the input, and stays so), or
 * -EINVAL for an unterminated string, quoted identifier, comment, or a bad
 * X'..' / B'..' literal; *t then covers the bad text from its start. */
int sql_lex_next(struct sql_lexer *lx, struct sql_tok *t) MUST_CHECK;

/* True when t is an unquoted identifier equal to kw (ASCII, upper case),
 * ignoring case. */
bool sql_tok_is_kw(const char *s, const struct sql_tok *t, const char *kw);
/* True when the word s[0..n) is one of TiDB's reserved keywords (those that
 * cannot be an unquoted name, except right after a '.'), ignoring case. */
bool sql_is_reserved(const char *s, size_t n);
/* True when t is an SQL_TOK_OP for op (a byte or an enum sql_op). */
static inline bool sql_tok_is_op(const struct sql_tok *t, int op)
{
	return t->kind == SQL_TOK_OP && t->op == op;
}

/* Copies the value of a STRING or QIDENT token's body into out[0..cap):
 * escapes resolved as TiDB does (\0 \b \n \r \t \Z and \\ \' \"; \% and \_
 * keep their backslash; any other \x is x) unless SQL_LEX_NO_BACKSLASH_ESCAPES,
 * and doubled quotes collapsed. The value is never longer than the body, so a
 * buffer of t->body_len bytes always suffices. Sets *out_len; 0 or -ENOSPC. */
int sql_unescape_string(const char *s, const struct sql_tok *t, unsigned flags, char *out,
                        size_t cap, size_t *out_len) MUST_CHECK;
/* The same over a raw body: quote is the quote character (' " or `; for '`'
 * only doubling applies). */
int sql_unescape_body(const char *body, size_t n, char quote, unsigned flags, char *out, size_t cap,
                      size_t *out_len) MUST_CHECK;

/* A name as it appears in the statement: [off, off + len) is the text
 * between the quotes, or the bare word. quote is 0 (bare), '`', or '"' (an
 * ANSI_QUOTES identifier); escaped: the text holds doubled quotes or, when
 * backslash, backslash escapes, which sql_name_copy / sql_name_eq undo.
 * An absent name has len == 0 and quote == 0. */
struct sql_name {
	size_t off, len;
	char quote;
	bool escaped;
	bool backslash;
};

/* The name an IDENT or QIDENT token of s spells (lexflags as lexed). */
struct sql_name sql_name_of(const struct sql_tok *t, const char *s, unsigned lexflags);
static inline bool sql_name_present(const struct sql_name *n)
{
	return n->len || n->quote;
}
/* Writes name's value to out[0..cap), NUL-terminated; 0 or -ENOSPC. */
int sql_name_copy(const char *sql, const struct sql_name *name, char *out, size_t cap) MUST_CHECK;
/* True when name's value equals s[0..n), ASCII case ignored (TiDB compares
 * schema, table, alias and column names that way). */
bool sql_name_eq(const char *sql, const struct sql_name *name, const char *s, size_t n);
/* True when two names of sql have the same value, ASCII case ignored. */
bool sql_name_same(const char *sql, const struct sql_name *a, const struct sql_name *b);

#endif
