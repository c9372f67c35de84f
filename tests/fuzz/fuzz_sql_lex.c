/* The SQL lexer, with the session flags from the input's first byte. Every
 * token must lie inside the text, after the one before it, and move forward;
 * its body inside the token; the end must stay the end; and the value of a
 * string or quoted name must unescape into a buffer of its body's length. */
#include "fuzz.h"

#include <errno.h>

#include "sql/lex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned flags = fuzz_u8(&in) &
	                 (SQL_LEX_NO_BACKSLASH_ESCAPES | SQL_LEX_ANSI_QUOTES | SQL_LEX_EXPAND_EXEC);
	char *s = (char *)fuzz_dup(in.p, in.n);
	size_t n = in.n;
	char *val = malloc(n ? n : 1);

	struct sql_lexer lx;
	sql_lex_init(&lx, s, n, flags);
	size_t prev_end = 0;
	/* Each token takes at least one byte, so the loop ends within n + 1. */
	for (size_t i = 0; i <= n + 1; i++) {
		FUZZ_CHECK(i <= n);
		struct sql_tok t;
		int rc = sql_lex_next(&lx, &t);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL);
		FUZZ_CHECK(t.off <= n && t.len <= n - t.off);
		if (rc < 0) {
			FUZZ_CHECK(t.off >= prev_end || lx.in_exec);
			break;
		}
		if (t.kind == SQL_TOK_END) {
			struct sql_tok t2;
			FUZZ_CHECK(sql_lex_next(&lx, &t2) == 0 && t2.kind == SQL_TOK_END);
			break;
		}
		FUZZ_CHECK(t.len > 0);
		FUZZ_CHECK(t.off >= prev_end);
		prev_end = t.off + t.len;
		FUZZ_CHECK(t.body_off >= t.off && t.body_len <= t.len &&
		           t.body_off + t.body_len <= t.off + t.len);
		if (t.kind == SQL_TOK_STRING && (t.flags & SQL_TOKF_INTRO))
			FUZZ_CHECK(t.intro_len > 0 && t.intro_len < t.len);
		if (t.kind == SQL_TOK_OP)
			FUZZ_CHECK(t.op >= 0 && t.op <= SQL_OP_NULL_ESC); /* a NUL byte is op 0 */
		if (t.kind == SQL_TOK_STRING || t.kind == SQL_TOK_QIDENT) {
			size_t vn = SIZE_MAX;
			FUZZ_CHECK(sql_unescape_string(s, &t, flags, val, t.body_len, &vn) == 0);
			FUZZ_CHECK(vn <= t.body_len);
			if (!(t.flags & SQL_TOKF_ESCAPED))
				FUZZ_CHECK(vn == t.body_len &&
				           (vn == 0 || memcmp(val, s + t.body_off, vn) == 0));
		}
		if (t.kind == SQL_TOK_IDENT || t.kind == SQL_TOK_QIDENT) {
			struct sql_name nm = sql_name_of(&t, s, flags);
			FUZZ_CHECK(nm.off >= t.off && nm.off + nm.len <= t.off + t.len);
			char *name = malloc(nm.len + 1);
			FUZZ_CHECK(sql_name_copy(s, &nm, name, nm.len + 1) == 0);
			/* A name equals its own value (unless a NUL byte, which
			 * ends the copy, is in it), and is the same as itself. */
			if (!nm.backslash && !memchr(s + nm.off, 0, nm.len))
				FUZZ_CHECK(sql_name_eq(s, &nm, name, strlen(name)));
			FUZZ_CHECK(sql_name_same(s, &nm, &nm));
			free(name);
		}
		if (t.kind == SQL_TOK_IDENT)
			(void)sql_is_reserved(s + t.off, t.len);
	}
	free(val);
	free(s);
	return 0;
}
