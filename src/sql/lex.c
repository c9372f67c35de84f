/* The tokenizer: the byte rules of TiDB's lexer (identifiers that start with
 * digits, "--" comments, version comments, number forms), a reserved-word
 * table, and string unescaping. */
#include "sql/lex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* TiDB skips unicode.IsSpace(rune(b)) between tokens, which for single bytes
 * adds NEL (0x85) and NBSP (0xA0) to the ASCII white space. */
static bool is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85 || c == 0xA0;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_ident_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
	       c == '$' || c >= 0x80;
}

/* User variable names may also hold dots: @a.b is one name. */
static bool is_var_char(unsigned char c)
{
	return is_ident_char(c) || c == '.';
}

static unsigned char upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static bool eq_nocase(const char *a, size_t n, const char *b)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (b[i] == '\0' || upper((unsigned char)a[i]) != upper((unsigned char)b[i]))
			return false;
	return b[i] == '\0';
}

static unsigned char at(const struct sql_lexer *lx, size_t p)
{
	return p < lx->n ? (unsigned char)lx->s[p] : 0;
}

static size_t skip_while(const struct sql_lexer *lx, size_t p, bool (*fn)(unsigned char))
{
	while (p < lx->n && fn((unsigned char)lx->s[p]))
		p++;
	return p;
}

/* Offset of the first star-slash at or after p, or n when there is none. */
static size_t find_comment_end(const struct sql_lexer *lx, size_t p)
{
	for (; p + 1 < lx->n; p++)
		if (lx->s[p] == '*' && lx->s[p + 1] == '/')
			return p;
	return lx->n;
}

void sql_lex_init(struct sql_lexer *lx, const char *s, size_t n, unsigned flags)
{
	memset(lx, 0, sizeof(*lx));
	lx->s = s;
	lx->n = n;
	lx->flags = flags;
}

/* The charsets TiDB accepts after '_' as a literal's introducer. */
static bool is_introducer(const char *s, size_t n)
{
	static const char *const names[] = {"utf8",   "utf8mb4", "ascii",  "latin1",
	                                    "binary", "gbk",     "gb18030"};
	if (n < 2 || s[0] != '_')
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (eq_nocase(s + 1, n - 1, names[i]))
			return true;
	return false;
}

/* Scans a quoted body whose opening quote is at p. Returns the offset after
 * the closing quote, or 0 when the input ends first. */
static size_t scan_quoted(const struct sql_lexer *lx, size_t p, bool backslash, bool *escaped)
{
	char q = lx->s[p++];
	while (p < lx->n) {
		char c = lx->s[p++];
		if (c == q) {
			if (p < lx->n && lx->s[p] == q) {
				*escaped = true;
				p++;
				continue;
			}
			return p;
		}
		if (c == '\\' && backslash) {
			if (p >= lx->n)
				return 0;
			*escaped = true;
			p++;
		}
	}
	return 0;
}

static int tok_quoted(struct sql_lexer *lx, struct sql_tok *t, size_t start, size_t qpos,
                      enum sql_tok_kind kind)
{
	bool escaped = false;
	/* Backticks only double; strings (and ANSI "identifiers", which TiDB
	 * scans as strings) also take backslash escapes. */
	bool backslash = lx->s[qpos] != '`' && !(lx->flags & SQL_LEX_NO_BACKSLASH_ESCAPES);
	size_t end = scan_quoted(lx, qpos, backslash, &escaped);
	t->kind = kind;
	t->off = start;
	if (!end) {
		t->len = lx->n - start;
		lx->pos = lx->n;
		return -EINVAL;
	}
	t->len = end - start;
	t->body_off = qpos + 1;
	t->body_len = end - 1 - t->body_off;
	if (escaped)
		t->flags |= SQL_TOKF_ESCAPED;
	if (qpos != start)
		t->flags |= SQL_TOKF_INTRO;
	lx->pos = end;
	return 0;
}

static bool is_string_quote(const struct sql_lexer *lx, unsigned char c)
{
	return c == '\'' || (c == '"' && !(lx->flags & SQL_LEX_ANSI_QUOTES));
}

/* TiDB's scanFloat from start: digits [. digits] [e [+-] digits]. An 'e'
 * without digits turns the whole run into an identifier, as TiDB does. */
static void scan_float(struct sql_lexer *lx, struct sql_tok *t, size_t start)
{
	size_t p = skip_while(lx, start, is_digit);
	if (at(lx, p) == '.')
		p = skip_while(lx, p + 1, is_digit);
	t->kind = SQL_TOK_DECIMAL;
	if (at(lx, p) == 'e' || at(lx, p) == 'E') {
		p++;
		if (at(lx, p) == '+' || at(lx, p) == '-')
			p++;
		if (is_digit(at(lx, p))) {
			p = skip_while(lx, p, is_digit);
			t->kind = SQL_TOK_FLOAT;
		} else {
			p = skip_while(lx, start, is_ident_char);
			t->kind = SQL_TOK_IDENT;
		}
	}
	lx->pos = p;
}

static bool is_bit(unsigned char c)
{
	return c == '0' || c == '1';
}

/* TiDB's startWithNumber: integers, 0x / 0b literals, and identifiers that
 * start with digits ("1abc", "0x", "0b12"). */
static void scan_number(struct sql_lexer *lx, struct sql_tok *t, size_t start)
{
	size_t p = start + 1;
	if (lx->s[start] == '0') {
		unsigned char c1 = at(lx, p);
		if (c1 == 'x' || c1 == 'X' || c1 == 'b') {
			size_t d = skip_while(lx, p + 1, c1 == 'b' ? is_bit : is_hex);
			if (d == p + 1 || is_digit(at(lx, d))) {
				lx->pos = skip_while(lx, d, is_ident_char);
				t->kind = SQL_TOK_IDENT;
				return;
			}
			lx->pos = d;
			t->kind = c1 == 'b' ? SQL_TOK_BIT : SQL_TOK_HEX;
			t->body_off = p + 1;
			t->body_len = d - (p + 1);
			return;
		}
		if (c1 == '.') {
			scan_float(lx, t, start);
			return;
		}
		if (c1 == 'B') {
			lx->pos = skip_while(lx, start, is_ident_char);
			t->kind = SQL_TOK_IDENT;
			return;
		}
	}
	p = skip_while(lx, p, is_digit);
	unsigned char c = at(lx, p);
	if (c == '.' || c == 'e' || c == 'E') {
		scan_float(lx, t, start);
		return;
	}
	if (p < lx->n && is_ident_char(c)) {
		lx->pos = skip_while(lx, p, is_ident_char);
		t->kind = SQL_TOK_IDENT;
		return;
	}
	lx->pos = p;
	t->kind = SQL_TOK_INT;
}

/* X'..' and B'..': the quote follows the letter directly. */
static int scan_quoted_digits(struct sql_lexer *lx, struct sql_tok *t, size_t start, bool hex)
{
	size_t d = skip_while(lx, start + 2, hex ? is_hex : is_bit);
	t->kind = hex ? SQL_TOK_HEX : SQL_TOK_BIT;
	if (at(lx, d) != '\'') {
		lx->pos = d < lx->n ? d + 1 : lx->n;
		t->len = lx->pos - start;
		return -EINVAL;
	}
	t->body_off = start + 2;
	t->body_len = d - (start + 2);
	lx->pos = d + 1;
	return 0;
}

static int scan_var(struct sql_lexer *lx, struct sql_tok *t, size_t start)
{
	size_t p = start + 1;
	t->kind = SQL_TOK_VAR;
	if (at(lx, p) == '@') {
		static const char *const scopes[] = {"global.", "session.", "local."};
		p++;
		for (size_t i = 0; i < 3; i++) {
			size_t l = strlen(scopes[i]);
			if (lx->n - p >= l && eq_nocase(lx->s + p, l, scopes[i])) {
				p += l;
				break;
			}
		}
	}
	unsigned char c = at(lx, p);
	if (p < lx->n && (c == '\'' || c == '"' || c == '`')) {
		bool escaped = false;
		size_t end = scan_quoted(
		        lx, p, c != '`' && !(lx->flags & SQL_LEX_NO_BACKSLASH_ESCAPES), &escaped);
		if (!end) {
			lx->pos = lx->n;
			t->len = lx->n - start;
			return -EINVAL;
		}
		lx->pos = end;
		return 0;
	}
	lx->pos = skip_while(lx, p, is_var_char);
	return 0;
}

static void op(struct sql_lexer *lx, struct sql_tok *t, size_t start, int code, size_t len)
{
	t->kind = SQL_TOK_OP;
	t->op = code;
	lx->pos = start + len;
}

static void scan_op(struct sql_lexer *lx, struct sql_tok *t, size_t p)
{
	unsigned char c = (unsigned char)lx->s[p], c1 = at(lx, p + 1), c2 = at(lx, p + 2);
	switch (c) {
	case '<':
		if (c1 == '=' && c2 == '>')
			return op(lx, t, p, SQL_OP_NULLEQ, 3);
		if (c1 == '=')
			return op(lx, t, p, SQL_OP_LE, 2);
		if (c1 == '>')
			return op(lx, t, p, SQL_OP_NE, 2);
		if (c1 == '<')
			return op(lx, t, p, SQL_OP_SHL, 2);
		break;
	case '>':
		if (c1 == '=')
			return op(lx, t, p, SQL_OP_GE, 2);
		if (c1 == '>')
			return op(lx, t, p, SQL_OP_SHR, 2);
		break;
	case '!':
		if (c1 == '=')
			return op(lx, t, p, SQL_OP_NE_BANG, 2);
		break;
	case ':':
		if (c1 == '=')
			return op(lx, t, p, SQL_OP_ASSIGN, 2);
		break;
	case '|':
		if (c1 == '|')
			return op(lx, t, p, SQL_OP_PIPES, 2);
		break;
	case '&':
		if (c1 == '&')
			return op(lx, t, p, SQL_OP_ANDAND, 2);
		if (c1 == '^')
			return op(lx, t, p, SQL_OP_ANDNOT, 2);
		break;
	case '-':
		if (c1 == '>' && c2 == '>')
			return op(lx, t, p, SQL_OP_JSON_UNQUOTE, 3);
		if (c1 == '>')
			return op(lx, t, p, SQL_OP_JSON_EXTRACT, 2);
		break;
	case '\\':
		if (c1 == 'N')
			return op(lx, t, p, SQL_OP_NULL_ESC, 2);
		break;
	default:
		break;
	}
	op(lx, t, p, c, 1);
}

/* Skips white space and comments. Returns 0, 1 when an executable comment
 * starts at lx->pos and must become a token, or -EINVAL (unterminated). */
static int skip_gap(struct sql_lexer *lx, struct sql_tok *t)
{
	for (;;) {
		size_t p = lx->pos;
		if (p >= lx->n)
			return 0;
		unsigned char c = (unsigned char)lx->s[p];
		if (is_space(c)) {
			lx->pos = skip_while(lx, p, is_space);
		} else if (c == '#' || (c == '-' && at(lx, p + 1) == '-' &&
		                        (p + 2 >= lx->n || is_space(at(lx, p + 2))))) {
			while (lx->pos < lx->n && lx->s[lx->pos] != '\n')
				lx->pos++;
		} else if (c == '*' && lx->in_exec && at(lx, p + 1) == '/') {
			lx->in_exec = false;
			lx->pos = p + 2;
		} else if (c == '/' && at(lx, p + 1) == '*') {
			unsigned char c2 = at(lx, p + 2);
			bool bang = c2 == '!', tbang = c2 == 'T' && at(lx, p + 3) == '!';
			if (bang || tbang)
				lx->saw_exec = true;
			if ((bang || tbang) && (lx->flags & SQL_LEX_EXPAND_EXEC) && !lx->in_exec) {
				size_t q = p + (bang ? 3 : 4);
				if (bang) {
					/* TiDB takes exactly five version digits, or none. */
					size_t d = skip_while(lx, q, is_digit);
					if (d - q >= 5)
						q += 5;
				} else if (at(lx, q) == '[') {
					size_t d = q + 1;
					while (d < lx->n &&
					       (is_ident_char(at(lx, d)) || at(lx, d) == ','))
						d++;
					if (at(lx, d) == ']')
						q = d + 1;
				}
				lx->in_exec = true;
				lx->pos = q;
			} else if (bang || tbang || c2 == '+') {
				return 1;
			} else {
				size_t e = find_comment_end(lx, p + 2);
				if (e >= lx->n) {
					t->off = p;
					t->len = lx->n - p;
					lx->pos = lx->n;
					return -EINVAL;
				}
				lx->pos = e + 2;
			}
		} else {
			return 0;
		}
		t->flags |= SQL_TOKF_SPACE;
	}
}

int sql_lex_next(struct sql_lexer *lx, struct sql_tok *t)
{
	bool after_dot = lx->after_dot, ident_dot = lx->ident_dot;
	memset(t, 0, sizeof(*t));
	lx->after_dot = lx->ident_dot = false;
	int rc = skip_gap(lx, t);
	if (rc < 0)
		return rc;
	size_t p = lx->pos;
	t->off = p;
	if (p >= lx->n) {
		t->kind = SQL_TOK_END;
		t->body_off = p;
		return 0;
	}
	unsigned char c = (unsigned char)lx->s[p];
	if (rc == 1) {
		/* A hint or (not expanded) executable comment as one token. */
		size_t e = find_comment_end(lx, p + 3);
		t->kind = at(lx, p + 2) == '+' ? SQL_TOK_HINT : SQL_TOK_EXEC_COMMENT;
		if (t->kind == SQL_TOK_HINT)
			lx->saw_hint = true;
		if (e >= lx->n) {
			t->len = lx->n - p;
			lx->pos = lx->n;
			return -EINVAL;
		}
		lx->pos = e + 2;
	} else if (c == '\'') {
		rc = tok_quoted(lx, t, p, p, SQL_TOK_STRING);
	} else if (c == '"') {
		rc = tok_quoted(lx, t, p, p,
		                lx->flags & SQL_LEX_ANSI_QUOTES ? SQL_TOK_QIDENT : SQL_TOK_STRING);
	} else if (c == '`') {
		rc = tok_quoted(lx, t, p, p, SQL_TOK_QIDENT);
	} else if (is_digit(c) && after_dot) {
		/* After "name." TiDB reads "1abc" or even "123" as a name. */
		lx->pos = skip_while(lx, p, is_ident_char);
		t->kind = SQL_TOK_IDENT;
	} else if (is_digit(c)) {
		scan_number(lx, t, p);
	} else if (c == '.' && !ident_dot && is_digit(at(lx, p + 1))) {
		scan_float(lx, t, p);
		if (t->kind == SQL_TOK_IDENT) /* ".5e": TiDB's invalid token */
			rc = -EINVAL;
	} else if ((c == 'x' || c == 'X') && at(lx, p + 1) == '\'') {
		rc = scan_quoted_digits(lx, t, p, true);
	} else if ((c == 'b' || c == 'B') && at(lx, p + 1) == '\'') {
		rc = scan_quoted_digits(lx, t, p, false);
	} else if (c == '?') {
		t->kind = SQL_TOK_PARAM;
		lx->pos = p + 1;
	} else if (c == '@') {
		rc = scan_var(lx, t, p);
	} else if (is_ident_char(c)) {
		size_t e = skip_while(lx, p, is_ident_char);
		t->kind = SQL_TOK_IDENT;
		lx->pos = e;
		if ((e - p == 1 && (c == 'N' || c == 'n') && at(lx, e) == '\'') ||
		    is_introducer(lx->s + p, e - p)) {
			size_t q = e;
			if (c == '_')
				q = skip_while(lx, e, is_space);
			if (q < lx->n && is_string_quote(lx, at(lx, q))) {
				rc = tok_quoted(lx, t, p, q, SQL_TOK_STRING);
				t->intro_len = e - p;
			}
		}
	} else {
		scan_op(lx, t, p);
		if (t->op == '.' && ident_dot)
			lx->after_dot = true;
	}
	if (rc < 0) {
		if (t->len == 0)
			t->len = lx->pos - p;
		return rc;
	}
	t->len = lx->pos - p;
	/* Quoted tokens and 0x / 0b literals set their body; the rest are all body. */
	if (t->body_off == 0) {
		t->body_off = t->off;
		t->body_len = t->len;
	}
	if (t->kind == SQL_TOK_IDENT || t->kind == SQL_TOK_QIDENT)
		lx->ident_dot = lx->pos < lx->n && lx->s[lx->pos] == '.';
	return 0;
}

bool sql_tok_is_kw(const char *s, const struct sql_tok *t, const char *kw)
{
	return t->kind == SQL_TOK_IDENT && eq_nocase(s + t->off, t->len, kw);
}

/* TiDB's reserved keywords (pkg/parser/keywords.go, section "reserved"),
 * sorted for bsearch. */
/* clang-format off */
static const char *const reserved[] = {
	"ADD", "ALL", "ALTER", "ANALYZE", "AND", "ARRAY", "AS", "ASC", "BETWEEN", "BIGINT",
	"BINARY", "BLOB", "BOTH", "BY", "CALL", "CASCADE", "CASE", "CHANGE", "CHAR", "CHARACTER",
	"CHECK", "COLLATE", "COLUMN", "CONSTRAINT", "CONTINUE", "CONVERT", "CREATE", "CROSS",
	"CUME_DIST", "CURRENT_DATE", "CURRENT_ROLE", "CURRENT_TIME", "CURRENT_TIMESTAMP",
	"CURRENT_USER", "CURSOR", "DATABASE", "DATABASES", "DAY_HOUR", "DAY_MICROSECOND",
	"DAY_MINUTE", "DAY_SECOND", "DECIMAL", "DEFAULT", "DELAYED", "DELETE", "DENSE_RANK",
	"DESC", "DESCRIBE", "DISTINCT", "DISTINCTROW", "DIV", "DOUBLE", "DROP", "DUAL", "ELSE",
	"ELSEIF", "ENCLOSED", "ESCAPED", "EXCEPT", "EXISTS", "EXIT", "EXPLAIN", "FALSE", "FETCH",
	"FIRST_VALUE", "FLOAT", "FLOAT4", "FLOAT8", "FOR", "FORCE", "FOREIGN", "FROM", "FULLTEXT",
	"GENERATED", "GRANT", "GROUP", "GROUPS", "HAVING", "HIGH_PRIORITY", "HOUR_MICROSECOND",
	"HOUR_MINUTE", "HOUR_SECOND", "IF", "IGNORE", "ILIKE", "IN", "INDEX", "INFILE", "INNER",
	"INOUT", "INSERT", "INT", "INT1", "INT2", "INT3", "INT4", "INT8", "INTEGER", "INTERSECT",
	"INTERVAL", "INTO", "IS", "ITERATE", "JOIN", "KEY", "KEYS", "KILL", "LAG", "LAST_VALUE",
	"LEAD", "LEADING", "LEAVE", "LEFT", "LIKE", "LIMIT", "LINEAR", "LINES", "LOAD",
	"LOCALTIME", "LOCALTIMESTAMP", "LOCK", "LONG", "LONGBLOB", "LONGTEXT", "LOW_PRIORITY",
	"MATCH", "MAXVALUE", "MEDIUMBLOB", "MEDIUMINT", "MEDIUMTEXT", "MIDDLEINT",
	"MINUTE_MICROSECOND", "MINUTE_SECOND", "MOD", "NATURAL", "NOT", "NO_WRITE_TO_BINLOG",
	"NTH_VALUE", "NTILE", "NULL", "NUMERIC", "OF", "ON", "OPTIMIZE", "OPTION", "OPTIONALLY",
	"OR", "ORDER", "OUT", "OUTER", "OUTFILE", "OVER", "PARTITION", "PERCENT_RANK",
	"PRECISION", "PRIMARY", "PROCEDURE", "RANGE", "RANK", "READ", "REAL", "RECURSIVE",
	"REFERENCES", "REGEXP", "RELEASE", "RENAME", "REPEAT", "REPLACE", "REQUIRE", "RESTRICT",
	"REVOKE", "RIGHT", "RLIKE", "ROW", "ROWS", "ROW_NUMBER", "SECOND_MICROSECOND", "SELECT",
	"SET", "SHOW", "SMALLINT", "SPATIAL", "SQL", "SQLEXCEPTION", "SQLSTATE", "SQLWARNING",
	"SQL_BIG_RESULT", "SQL_CALC_FOUND_ROWS", "SQL_SMALL_RESULT", "SSL", "STARTING", "STORED",
	"STRAIGHT_JOIN", "TABLE", "TABLESAMPLE", "TERMINATED", "THEN", "TIDB_CURRENT_TSO",
	"TINYBLOB", "TINYINT", "TINYTEXT", "TO", "TRAILING", "TRIGGER", "TRUE", "UNION", "UNIQUE",
	"UNLOCK", "UNSIGNED", "UNTIL", "UPDATE", "USAGE", "USE", "USING", "UTC_DATE", "UTC_TIME",
	"UTC_TIMESTAMP", "VALUES", "VARBINARY", "VARCHAR", "VARCHARACTER", "VARYING", "VIRTUAL",
	"WHEN", "WHERE", "WHILE", "WINDOW", "WITH", "WRITE", "XOR", "YEAR_MONTH", "ZEROFILL",
};
/* clang-format on */

static int cmp_reserved(const void *key, const void *elem)
{
	return strcmp((const char *)key, *(const char *const *)elem);
}

bool sql_is_reserved(const char *s, size_t n)
{
	char w[32];
	if (n == 0 || n >= sizeof(w))
		return false;
	for (size_t i = 0; i < n; i++)
		w[i] = (char)upper((unsigned char)s[i]);
	w[n] = '\0';
	return bsearch(w, reserved, sizeof(reserved) / sizeof(reserved[0]), sizeof(reserved[0]),
	               cmp_reserved) != NULL;
}

int sql_unescape_body(const char *body, size_t n, char quote, unsigned flags, char *out, size_t cap,
                      size_t *out_len)
{
	bool backslash = quote != '`' && !(flags & SQL_LEX_NO_BACKSLASH_ESCAPES);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = body[i];
		char v[2];
		size_t vn = 1;
		if (c == quote && i + 1 < n && body[i + 1] == quote) {
			v[0] = c;
			i++;
		} else if (c == '\\' && backslash && i + 1 < n) {
			char e = body[++i];
			switch (e) {
			case '0':
				v[0] = '\0';
				break;
			case 'b':
				v[0] = '\b';
				break;
			case 'n':
				v[0] = '\n';
				break;
			case 'r':
				v[0] = '\r';
				break;
			case 't':
				v[0] = '\t';
				break;
			case 'Z':
				v[0] = 0x1A;
				break;
			case '%':
			case '_':
				/* Kept with the backslash, for LIKE patterns. */
				v[0] = '\\';
				v[1] = e;
				vn = 2;
				break;
			default:
				v[0] = e;
				break;
			}
		} else {
			v[0] = c;
		}
		if (cap - o < vn)
			return -ENOSPC;
		memcpy(out + o, v, vn);
		o += vn;
	}
	*out_len = o;
	return 0;
}

int sql_unescape_string(const char *s, const struct sql_tok *t, unsigned flags, char *out,
                        size_t cap, size_t *out_len)
{
	char quote = t->body_off > 0 ? s[t->body_off - 1] : '\'';
	return sql_unescape_body(s + t->body_off, t->body_len, quote, flags, out, cap, out_len);
}

struct sql_name sql_name_of(const struct sql_tok *t, const char *s, unsigned lexflags)
{
	struct sql_name nm = {t->body_off, t->body_len, 0, false, false};
	if (t->kind == SQL_TOK_QIDENT) {
		nm.quote = s[t->off];
		nm.escaped = t->flags & SQL_TOKF_ESCAPED;
		nm.backslash = nm.quote == '"' && !(lexflags & SQL_LEX_NO_BACKSLASH_ESCAPES);
	}
	return nm;
}

/* Reads a name's value one byte at a time: *i walks the raw text, and
 * *pending holds the second byte of a \% or \_ pair (both kept, as in
 * strings). Returns the byte, or -1 at the end. */
static int name_byte(const char *sql, const struct sql_name *nm, size_t *i, char *pending)
{
	if (*pending) {
		char c = *pending;
		*pending = 0;
		return (unsigned char)c;
	}
	if (*i >= nm->len)
		return -1;
	const char *p = sql + nm->off;
	char c = p[(*i)++];
	if (!nm->escaped)
		return (unsigned char)c;
	if (c == nm->quote && *i < nm->len && p[*i] == nm->quote) {
		(*i)++;
		return (unsigned char)c;
	}
	if (c == '\\' && nm->backslash && *i < nm->len) {
		char out[2];
		size_t n;
		if (sql_unescape_body(p + *i - 1, 2, nm->quote, 0, out, 2, &n) != 0)
			return -1;
		(*i)++;
		if (n == 2)
			*pending = out[1];
		return (unsigned char)out[0];
	}
	return (unsigned char)c;
}

int sql_name_copy(const char *sql, const struct sql_name *name, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	char pending = 0;
	int c;
	while ((c = name_byte(sql, name, &i, &pending)) >= 0) {
		if (o + 1 >= cap)
			return -ENOSPC;
		out[o++] = (char)c;
	}
	if (cap == 0)
		return -ENOSPC;
	out[o] = '\0';
	return 0;
}

bool sql_name_eq(const char *sql, const struct sql_name *name, const char *s, size_t n)
{
	size_t i = 0, j = 0;
	char pending = 0;
	int c;
	while ((c = name_byte(sql, name, &i, &pending)) >= 0) {
		if (j >= n || upper((unsigned char)c) != upper((unsigned char)s[j]))
			return false;
		j++;
	}
	return j == n;
}

bool sql_name_same(const char *sql, const struct sql_name *a, const struct sql_name *b)
{
	size_t i = 0, j = 0;
	char pa = 0, pb = 0;
	for (;;) {
		int x = name_byte(sql, a, &i, &pa), y = name_byte(sql, b, &j, &pb);
		if (x < 0 || y < 0)
			return x == y;
		if (upper((unsigned char)x) != upper((unsigned char)y))
			return false;
	}
}
