/* Unit tests for src/sql/lex: token boundaries and kinds as TiDB's lexer
 * draws them (comments, quoting, numbers, executable comments), string
 * unescaping, names, and every prefix of tricky text under ASan. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/lex.h"

/* An exact-size heap copy: under ASan any read past n is caught. */
static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	memcpy(p, s, n);
	return p;
}

static const char *kind_name(enum sql_tok_kind k)
{
	switch (k) {
	case SQL_TOK_END:
		return "end";
	case SQL_TOK_IDENT:
		return "id";
	case SQL_TOK_QIDENT:
		return "qid";
	case SQL_TOK_STRING:
		return "str";
	case SQL_TOK_INT:
		return "int";
	case SQL_TOK_DECIMAL:
		return "dec";
	case SQL_TOK_FLOAT:
		return "float";
	case SQL_TOK_HEX:
		return "hex";
	case SQL_TOK_BIT:
		return "bit";
	case SQL_TOK_PARAM:
		return "param";
	case SQL_TOK_VAR:
		return "var";
	case SQL_TOK_OP:
		return "op";
	case SQL_TOK_EXEC_COMMENT:
		return "exec";
	case SQL_TOK_HINT:
		return "hint";
	}
	return "?";
}

/* Tokenizes s and renders "kind:text kind:text ...", with "!" after a
 * string needing unescaping, and " ERR" when the lexer fails. */
static char *render(const char *s, size_t n, unsigned flags)
{
	char *in = dup_exact(s, n);
	struct sql_lexer lx;
	struct sql_tok t;
	size_t cap = 64 + 4 * n, len = 0;
	char *out = calloc(cap, 1);
	cr_assert_not_null(out);
	sql_lex_init(&lx, in, n, flags);
	for (int i = 0; i < 1000; i++) {
		int rc = sql_lex_next(&lx, &t);
		if (rc < 0) {
			cr_assert_eq(rc, -EINVAL);
			len += (size_t)snprintf(out + len, cap - len, "%sERR", len ? " " : "");
			break;
		}
		if (t.kind == SQL_TOK_END)
			break;
		cr_assert_leq(t.off + t.len, n);
		cr_assert_leq(t.body_off + t.body_len, n);
		len += (size_t)snprintf(out + len, cap - len, "%s%s:%.*s%s", len ? " " : "",
		                        kind_name(t.kind), (int)t.len, in + t.off,
		                        (t.flags & SQL_TOKF_ESCAPED) ? "!" : "");
	}
	free(in);
	return out;
}

struct lex_case {
	const char *in;
	unsigned flags;
	const char *want;
};

static void run_cases(const struct lex_case *cases, size_t ncases)
{
	for (size_t i = 0; i < ncases; i++) {
		char *got = render(cases[i].in, strlen(cases[i].in), cases[i].flags);
		cr_expect_str_eq(got, cases[i].want, "case %zu: %s\n got: %s\nwant: %s", i,
		                 cases[i].in, got, cases[i].want);
		free(got);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(sql_lex, comments)
{
	static const struct lex_case cases[] = {
	        {"--x", 0, "op:- op:- id:x"}, /* minus minus x */
	        {"-- x\n1", 0, "int:1"},
	        {"--\tx\n1", 0, "int:1"},
	        {"--", 0, ""},
	        {"1--2", 0, "int:1 op:- op:- int:2"},
	        {"1 -- 2", 0, "int:1"},
	        {"1-- 2\n3", 0, "int:1 int:3"},
	        {"# c\nx", 0, "id:x"},
	        {"a#c", 0, "id:a"},
	        {"a/* c */b", 0, "id:a id:b"},
	        {"a/**/b", 0, "id:a id:b"},
	        {"a/***/b", 0, "id:a id:b"},
	        {"/*/ x */y", 0, "id:y"},
	        {"/* ' */ 'x'", 0, "str:'x'"},
	        {"/* -- */ 1", 0, "int:1"},
	        {"'--' '/*' '#'", 0, "str:'--' str:'/*' str:'#'"},
	        {"/* unterminated", 0, "ERR"},
	        {"/*", 0, "ERR"},
	        {"/*!50100 SELECT 1 */", 0, "exec:/*!50100 SELECT 1 */"},
	        {"/*!SELECT*/", 0, "exec:/*!SELECT*/"},
	        {"/*!50100 SELECT 1 */", SQL_LEX_EXPAND_EXEC, "id:SELECT int:1"},
	        {"/*!40101 SET NAMES utf8 */;", SQL_LEX_EXPAND_EXEC,
	         "id:SET id:NAMES id:utf8 op:;"},
	        {"/*!12345678 x */", SQL_LEX_EXPAND_EXEC, "int:678 id:x"}, /* 5 digits only */
	        {"/*!1 x */", SQL_LEX_EXPAND_EXEC, "int:1 id:x"},
	        {"/*T![clustered_index] CLUSTERED */", 0,
	         "exec:/*T![clustered_index] CLUSTERED */"},
	        {"/*T![clustered_index] CLUSTERED */", SQL_LEX_EXPAND_EXEC, "id:CLUSTERED"},
	        {"/*T! x */", SQL_LEX_EXPAND_EXEC, "id:x"},
	        {"/*TX x */ y", 0, "id:y"},
	        {"/*M! x */ y", 0, "id:y"},
	        {"/*+ USE_INDEX(t, i) */", 0, "hint:/*+ USE_INDEX(t, i) */"},
	        {"SELECT /*+ x */ 1", SQL_LEX_EXPAND_EXEC, "id:SELECT hint:/*+ x */ int:1"},
	        {"/*! unterminated", 0, "ERR"},
	        {"/*+ unterminated", 0, "ERR"},
	        {"/*! a */ */", SQL_LEX_EXPAND_EXEC, "id:a op:* op:/"},
	};
	run_cases(cases, N(cases));
}

Test(sql_lex, quoting)
{
	static const struct lex_case cases[] = {
	        {"'a\\'b'", 0, "str:'a\\'b'!"},
	        {"'a''b'", 0, "str:'a''b'!"},
	        {"\"a\"\"b\"", 0, "str:\"a\"\"b\"!"},
	        {"'a\"b'", 0, "str:'a\"b'"},
	        {"'a\\\\'", 0, "str:'a\\\\'!"},
	        {"''", 0, "str:''"},
	        {"'abc", 0, "ERR"},
	        {"'a\\", 0, "ERR"},
	        {"'a\\'", 0, "ERR"},
	        {"'a\\'", SQL_LEX_NO_BACKSLASH_ESCAPES, "str:'a\\'"},
	        {"'a\\' OR 1=1 -- '", SQL_LEX_NO_BACKSLASH_ESCAPES,
	         "str:'a\\' id:OR int:1 op:= int:1"},
	        {"'a\\' OR 1=1 -- '", 0, "str:'a\\' OR 1=1 -- '!"},
	        {"`a b`", 0, "qid:`a b`"},
	        {"`a``b`", 0, "qid:`a``b`!"},
	        {"`a\\`", 0, "qid:`a\\`"},
	        {"`x", 0, "ERR"},
	        {"``", 0, "qid:``"},
	        {"\"a\"", SQL_LEX_ANSI_QUOTES, "qid:\"a\""},
	        {"\"a\"\"b\"", SQL_LEX_ANSI_QUOTES, "qid:\"a\"\"b\"!"},
	        {"_utf8mb4'x'", 0, "str:_utf8mb4'x'"},
	        {"_UTF8MB4 'x'", 0, "str:_UTF8MB4 'x'"},
	        {"_binary\"x\"", 0, "str:_binary\"x\""},
	        {"_binary\"x\"", SQL_LEX_ANSI_QUOTES, "id:_binary qid:\"x\""},
	        {"_foo'x'", 0, "id:_foo str:'x'"},
	        {"_utf8mb4", 0, "id:_utf8mb4"},
	        {"N'x'", 0, "str:N'x'"},
	        {"n'x'", 0, "str:n'x'"},
	        {"N 'x'", 0, "id:N str:'x'"},
	        {"Na'x'", 0, "id:Na str:'x'"},
	        {"@a @'q' @`b` @@autocommit @@SESSION.sql_mode @a.b", 0,
	         "var:@a var:@'q' var:@`b` var:@@autocommit var:@@SESSION.sql_mode var:@a.b"},
	        {"@'x", 0, "ERR"},
	        {"?,?", 0, "param:? op:, param:?"},
	        {"h\xc3\xa9llo $x a$", 0, "id:h\xc3\xa9llo id:$x id:a$"},
	        {"\xc2\xa0"
	         "1",
	         0,
	         "id:\xc2\xa0"
	         "1"},
	        {"\xa0"
	         "1",
	         0, "int:1"}, /* TiDB's unicode.IsSpace(rune(b)) */
	};
	run_cases(cases, N(cases));
}

Test(sql_lex, numbers)
{
	static const struct lex_case cases[] = {
	        {"123", 0, "int:123"},
	        {"0123", 0, "int:0123"},
	        {"0.2e0", 0, "float:0.2e0"},
	        {".5", 0, "dec:.5"},
	        {"1.", 0, "dec:1."},
	        {"1.5", 0, "dec:1.5"},
	        {"1e5", 0, "float:1e5"},
	        {"1E+5", 0, "float:1E+5"},
	        {"1.5e-3", 0, "float:1.5e-3"},
	        {"1.e3", 0, "float:1.e3"},
	        {".5e2", 0, "float:.5e2"},
	        {"1e", 0, "id:1e"},
	        {"1e+", 0, "id:1e op:+"},
	        {"9e9e", 0, "float:9e9 id:e"},
	        {"1abc", 0, "id:1abc"},
	        {"1.5abc", 0, "dec:1.5 id:abc"},
	        {"0x1F", 0, "hex:0x1F"},
	        {"0X1f", 0, "hex:0X1f"},
	        {"0x", 0, "id:0x"},
	        {"0x1g", 0, "hex:0x1 id:g"},
	        {"X'1F'", 0, "hex:X'1F'"},
	        {"x''", 0, "hex:x''"},
	        {"x'1g'", 0, "ERR"},
	        {"0b101", 0, "bit:0b101"},
	        {"0b12", 0, "id:0b12"},
	        {"0B1", 0, "id:0B1"},
	        {"b'101'", 0, "bit:b'101'"},
	        {"B'12'", 0, "ERR"},
	        {".5e", 0, "ERR"},
	        {"t.1abc", 0, "id:t op:. id:1abc"},
	        {"t.5", 0, "id:t op:. id:5"},
	        {"t. 5", 0, "id:t op:. id:5"},
	        {"t .5", 0, "id:t dec:.5"},
	        {"`t`.5e1", 0, "qid:`t` op:. id:5e1"},
	        {"-1", 0, "op:- int:1"},
	};
	run_cases(cases, N(cases));
}

Test(sql_lex, operators)
{
	static const struct lex_case cases[] = {
	        {"a<=>b", 0, "id:a op:<=> id:b"},
	        {"<= >= <> != := || && -> ->> << >> &^", 0,
	         "op:<= op:>= op:<> op:!= op::= op:|| op:&& op:-> op:->> op:<< op:>> op:&^"},
	        {"<>=", 0, "op:<> op:="},
	        {"(a,b);", 0, "op:( id:a op:, id:b op:) op:;"},
	        {"\\N", 0, "op:\\N"},
	        {"a.*", 0, "id:a op:. op:*"},
	};
	run_cases(cases, N(cases));
	struct sql_lexer lx;
	struct sql_tok t;
	const char *s = "<=> ->>";
	sql_lex_init(&lx, s, strlen(s), 0);
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert(sql_tok_is_op(&t, SQL_OP_NULLEQ));
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert(sql_tok_is_op(&t, SQL_OP_JSON_UNQUOTE));
	cr_assert(t.flags & SQL_TOKF_SPACE);
}

Test(sql_lex, token_fields)
{
	const char *s = "  _utf8mb4 'a''b' `c``d`x'0F'";
	struct sql_lexer lx;
	struct sql_tok t;
	sql_lex_init(&lx, s, strlen(s), 0);
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert_eq(t.kind, SQL_TOK_STRING);
	cr_assert_eq(t.off, 2);
	cr_assert_eq(t.intro_len, 8);
	cr_assert(t.flags & SQL_TOKF_INTRO);
	cr_assert(t.flags & SQL_TOKF_ESCAPED);
	cr_assert(t.flags & SQL_TOKF_SPACE);
	cr_assert_eq(t.body_off, 12);
	cr_assert_eq(t.body_len, 4);
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert_eq(t.kind, SQL_TOK_QIDENT);
	struct sql_name nm = sql_name_of(&t, s, 0);
	char buf[8];
	cr_assert_eq(sql_name_copy(s, &nm, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "c`d");
	cr_assert(sql_name_eq(s, &nm, "C`D", 3));
	cr_assert_not(sql_name_eq(s, &nm, "c`", 2));
	cr_assert_eq(sql_name_copy(s, &nm, buf, 3), -ENOSPC);
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert_eq(t.kind, SQL_TOK_HEX);
	cr_assert_eq(t.body_len, 2);
	cr_assert_eq(memcmp(s + t.body_off, "0F", 2), 0);
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert_eq(t.kind, SQL_TOK_END);
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert_eq(t.kind, SQL_TOK_END, "END repeats");
}

struct unescape_case {
	const char *tok;
	unsigned flags;
	const char *want;
	size_t want_len;
};

Test(sql_lex, unescape)
{
	static const struct unescape_case cases[] = {
	        {"'a\\nb'", 0, "a\nb", 3},
	        {"'\\0'", 0, "\0", 1},
	        {"'\\b\\r\\t\\Z'", 0, "\b\r\t\x1a", 4},
	        {"'\\%\\_'", 0, "\\%\\_", 4},
	        {"'\\x\\q'", 0, "xq", 2},
	        {"'it''s'", 0, "it's", 4},
	        {"'\\''", 0, "'", 1},
	        {"'\\\"'", 0, "\"", 1},
	        {"'\\\\'", 0, "\\", 1},
	        {"\"a\\\"b\"", 0, "a\"b", 3},
	        {"\"a\"\"b\"", 0, "a\"b", 3},
	        {"'a\\nb'", SQL_LEX_NO_BACKSLASH_ESCAPES, "a\\nb", 4},
	        {"_utf8mb4'[1, 2]'", 0, "[1, 2]", 6},
	        {"N'\\t'", 0, "\t", 1},
	        {"'\xe4\xb8\xad'", 0, "\xe4\xb8\xad", 3},
	};
	for (size_t i = 0; i < N(cases); i++) {
		const struct unescape_case *c = &cases[i];
		struct sql_lexer lx;
		struct sql_tok t;
		char out[32];
		size_t len = 99;
		sql_lex_init(&lx, c->tok, strlen(c->tok), c->flags);
		cr_assert_eq(sql_lex_next(&lx, &t), 0, "case %zu", i);
		cr_assert_eq(t.kind, SQL_TOK_STRING, "case %zu", i);
		cr_assert_eq(sql_unescape_string(c->tok, &t, c->flags, out, t.body_len, &len), 0,
		             "case %zu: the body's length always suffices", i);
		cr_assert_eq(len, c->want_len, "case %zu", i);
		cr_assert_eq(memcmp(out, c->want, len), 0, "case %zu", i);
		if (len > 0)
			cr_assert_eq(sql_unescape_string(c->tok, &t, c->flags, out, len - 1, &len),
			             -ENOSPC, "case %zu", i);
	}
}

Test(sql_lex, keywords)
{
	const char *s = "select `select` Select selectx";
	struct sql_lexer lx;
	struct sql_tok t;
	sql_lex_init(&lx, s, strlen(s), 0);
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert(sql_tok_is_kw(s, &t, "SELECT"));
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert_not(sql_tok_is_kw(s, &t, "SELECT"), "quoted is a name");
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert(sql_tok_is_kw(s, &t, "SELECT"));
	cr_assert_eq(sql_lex_next(&lx, &t), 0);
	cr_assert_not(sql_tok_is_kw(s, &t, "SELECT"));
	static const struct {
		const char *w;
		bool reserved;
	} words[] = {
	        {"select", true},
	        {"FROM", true},
	        {"Limit", true},
	        {"zerofill", true},
	        {"add", true},
	        {"status", false},
	        {"text", false},
	        {"offset", false},
	        {"data", false},
	        {"", false},
	        {"a_very_long_word_that_is_no_keyword_at_all", false},
	        {"VEC_COSINE_DISTANCE", false},
	        {"tidb_current_tso", true},
	};
	for (size_t i = 0; i < N(words); i++)
		cr_expect_eq(sql_is_reserved(words[i].w, strlen(words[i].w)), words[i].reserved,
		             "%s", words[i].w);
}

/* Lexes an exact-size copy of s[0..n) into toks (at most cap); *failed says
 * whether the lexer stopped with an error. Returns the number of tokens. */
static size_t lex_all(const char *s, size_t n, unsigned flags, struct sql_tok *toks, size_t cap,
                      bool *failed)
{
	char *in = dup_exact(s, n);
	struct sql_lexer lx;
	size_t k = 0;
	*failed = false;
	sql_lex_init(&lx, in, n, flags);
	for (;;) {
		cr_assert_lt(k, cap);
		int rc = sql_lex_next(&lx, &toks[k]);
		if (rc < 0) {
			cr_assert_eq(rc, -EINVAL);
			*failed = true;
			break;
		}
		if (toks[k].kind == SQL_TOK_END)
			break;
		k++;
	}
	free(in);
	return k;
}

/* The most bytes the lexer looks past a token's end before deciding it:
 * "1.5e-" is the number 1 and more once the "3" that makes "e-3" an
 * exponent is cut off. */
#define LEX_LOOKAHEAD 4

/* Every prefix of these texts lexes to its end or fails cleanly, into
 * tokens in order that do not overlap, and cutting the text changes no
 * token that ends more than LEX_LOOKAHEAD bytes before the cut. */
Test(sql_lex, truncated_prefixes)
{
	static const char *const texts[] = {
	        "SELECT `a``b`, 'it''s \\' x', \"q\" FROM t /* c */ WHERE a <=> ? -- x\n;",
	        "/*!50100 SELECT */ /*+ HINT(a) */ /*T![x] y */ # z\n 0x1F X'0f' b'01' 0b1 1.5e-3 "
	        ".5",
	        "_utf8mb4 'x' N'y' @@session.x @'u' t.1abc ->> \\N",
	};
	static const unsigned flags[] = {0, SQL_LEX_EXPAND_EXEC, SQL_LEX_ANSI_QUOTES,
	                                 SQL_LEX_NO_BACKSLASH_ESCAPES};
	static struct sql_tok full[256], cut[256];
	for (size_t i = 0; i < N(texts); i++)
		for (size_t f = 0; f < N(flags); f++) {
			size_t len = strlen(texts[i]);
			bool failed;
			size_t nfull = lex_all(texts[i], len, flags[f], full, N(full), &failed);
			cr_assert_gt(nfull, 0);
			for (size_t n = 0; n <= len; n++) {
				size_t ncut = lex_all(texts[i], n, flags[f], cut, N(cut), &failed);
				for (size_t k = 0; k < ncut; k++) {
					const struct sql_tok *t = &cut[k];
					cr_assert_leq(t->off + t->len, n, "text %zu prefix %zu", i,
					              n);
					if (k > 0)
						cr_assert_geq(
						        t->off, cut[k - 1].off + cut[k - 1].len,
						        "text %zu prefix %zu token %zu", i, n, k);
					if (t->off + t->len + LEX_LOOKAHEAD >= n)
						continue;
					cr_assert(k < nfull && t->kind == full[k].kind &&
					                  t->off == full[k].off &&
					                  t->len == full[k].len,
					          "text %zu flags %#x prefix %zu: token %zu '%.*s' "
					          "is "
					          "not the full text's",
					          i, flags[f], n, k, (int)t->len,
					          texts[i] + t->off);
				}
			}
		}
}
