/* Unit tests for src/sql/digest: normalised text (spacing, comments, keyword
 * case, verbatim select lists, masked literals) and the XXH3 digests. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sql/digest.h"
#include "sql/lex.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	memcpy(p, s, n);
	return p;
}

struct norm_case {
	const char *in;
	unsigned normflags;
	const char *want; /* NULL: -EINVAL */
};

Test(sql_digest, normalize)
{
	static const unsigned K = SQL_NORM_KEEP_SELECT_LISTS, M = SQL_NORM_MASK_LITERALS;
	static const struct norm_case cases[] = {
	        {"SELECT  a ,b FROM t WHERE x=1", 0, "select a ,b from t where x=1"},
	        {"  SELECT\n\ta  FROM\tt   WHERE  x = 1  ", 0, "select a from t where x = 1"},
	        {"SELECT 1 /* c */ + 2", 0, "select 1 + 2"},
	        {"SELECT 1 /* c */ + 2", K, "select 1 /* c */ + 2"},
	        {"SELECT COUNT(*), a  +  1 AS x FROM T Where Y = 'A'", K,
	         "select COUNT(*), a  +  1 AS x from T where Y = 'A'"},
	        {"SELECT COUNT(*), a  +  1 AS x FROM T Where Y = 'A'", 0,
	         "select COUNT(*), a + 1 as x from T where Y = 'A'"},
	        {"SELECT a FROM (SELECT  b+1 FROM u) AS d", K,
	         "select a from (select b+1 from u) as d"},
	        {"SELECT a, (SELECT  b FROM u) FROM t", K, "select a, (SELECT  b FROM u) from t"},
	        {"SELECT 1 ;  ", 0, "select 1"},
	        {"SELECT 1;;", 0, "select 1"},
	        {"SELECT 1 ; SELECT 2", 0, "select 1; select 2"},
	        {"SELECT t.select, `from`.x FROM order.t", 0,
	         "select t.select, `from`.x from order.t"},
	        {"-/**/-1", 0, "- -1"},
	        {"a--b -- c", 0, "a--b"},
	        {"SELECT a FROM t WHERE b = 'x' AND c IN (1, 2.5, 0x1F, X'AB', b'1', 1e3) LIMIT 3",
	         M, "select a from t where b = ? and c in (?, ?, ?, ?, ?, ?) limit ?"},
	        {"SELECT _utf8mb4'x', N'y', -1, ?", M, "select ?, ?, -?, ?"},
	        {"SELECT /*!50100 1 */ FROM t", 0, "select /*!50100 1 */ from t"},
	        {"SELECT /*+ HINT(x) */ a FROM t", 0, "select /*+ HINT(x) */ a from t"},
	        {"SELECT /*+ HINT(x) */ a FROM t", K, "select /*+ HINT(x) */ a from t"},
	        {"", 0, ""},
	        {"-- only\n/* comments */", 0, ""},
	        {"SELECT 'x", 0, NULL},
	        {"SELECT /* x", 0, NULL},
	};
	for (size_t i = 0; i < N(cases); i++) {
		const struct norm_case *c = &cases[i];
		char *in = dup_exact(c->in, strlen(c->in));
		struct buf b;
		buf_init(&b);
		int rc = sql_normalize(in, strlen(c->in), 0, c->normflags, NULL, 0, &b);
		if (!c->want) {
			cr_expect_eq(rc, -EINVAL, "case %zu", i);
		} else {
			cr_assert_eq(rc, 0, "case %zu", i);
			cr_assert_eq(buf_append(&b, "", 1), 0);
			cr_expect_str_eq((char *)b.data, c->want,
			                 "case %zu: %s\n got: %s\nwant: %s", i, c->in,
			                 (char *)b.data, c->want);
			uint64_t h;
			cr_assert_eq(sql_normalize_hash(in, strlen(c->in), 0, c->normflags, NULL, 0,
			                                7, &h),
			             0);
			cr_expect_eq(h, XXH3_64bits_withSeed(b.data, b.len - 1, 7), "case %zu", i);
		}
		buf_free(&b);
		free(in);
	}
}

Test(sql_digest, keep_spans)
{
	const char *s = "SELECT  a  +  1, b FROM t WHERE c = 'x'";
	struct sql_span keep[] = {{8, 7}}; /* "a  +  1" */
	struct buf b;
	buf_init(&b);
	cr_assert_eq(sql_normalize(s, strlen(s), 0, SQL_NORM_MASK_LITERALS, keep, 1, &b), 0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	cr_expect_str_eq((char *)b.data, "select a  +  1, b from t where c = ?");
	buf_free(&b);
}

Test(sql_digest, digest)
{
	static const struct {
		const char *a, *b;
		bool same;
	} pairs[] = {
	        {"SELECT a FROM t WHERE x = 1", "select a\n from t  where x = 1 -- c", true},
	        {"SELECT a FROM t", "SELECT a FROM t;", true},
	        {"SELECT a FROM t", "SELECT A FROM t", false},       /* column name as typed */
	        {"SELECT a+1 FROM t", "SELECT a + 1 FROM t", false}, /* likewise */
	        {"SELECT COUNT(*) FROM t", "SELECT count(*) FROM t", false},
	        {"SELECT a FROM t", "SELECT a FROM T", false},
	        {"SELECT a FROM t WHERE x = 1", "SELECT a FROM t WHERE x = 2", false},
	        {"SELECT 'a", "SELECT 'a", true},
	        {"SELECT 'a", "SELECT 'b", false},
	        {"SELECT 'a", "select 'a", false},
	};
	for (size_t i = 0; i < N(pairs); i++) {
		uint64_t da = sql_digest(pairs[i].a, strlen(pairs[i].a), 0, 1);
		uint64_t db = sql_digest(pairs[i].b, strlen(pairs[i].b), 0, 1);
		cr_expect_eq(da == db, pairs[i].same, "pair %zu", i);
	}
	const char *s = "SELECT 1";
	cr_expect_neq(sql_digest(s, strlen(s), 0, 1), sql_digest(s, strlen(s), 0, 2), "seeded");
	/* The lexer mode is part of what the text means. */
	const char *q = "SELECT 'a\\' , 'b'";
	struct buf b;
	buf_init(&b);
	cr_assert_eq(sql_normalize(q, strlen(q), SQL_LEX_NO_BACKSLASH_ESCAPES,
	                           SQL_NORM_MASK_LITERALS, NULL, 0, &b),
	             0);
	cr_assert_eq(buf_append(&b, "", 1), 0);
	cr_expect_str_eq((char *)b.data, "select ? , ?");
	buf_reset(&b);
	cr_assert_eq(sql_normalize(q, strlen(q), 0, SQL_NORM_MASK_LITERALS, NULL, 0, &b), -EINVAL);
	buf_free(&b);
}

/* Every prefix normalises, or is refused as not tokenizing, alike with and
 * without masked literals; a normalised prefix has no space at either end,
 * and its digest is the hash of its normalised text, while a prefix that
 * does not tokenize is hashed raw under another seed (so that it cannot
 * share a digest with a text that normalises to its bytes). */
Test(sql_digest, truncated_prefixes)
{
	const char *s =
	        "SELECT `a``b`, (SELECT 'x''y' FROM u) FROM t /*! x */ WHERE a <=> ? -- z\n;";
	size_t normalised = 0, raw = 0;
	for (size_t n = 0; n <= strlen(s); n++) {
		char *in = dup_exact(s, n);
		struct buf masked, kept;
		buf_init(&masked);
		buf_init(&kept);
		int rc =
		        sql_normalize(in, n, 0, SQL_NORM_KEEP_SELECT_LISTS | SQL_NORM_MASK_LITERALS,
		                      NULL, 0, &masked);
		cr_assert(rc == 0 || rc == -EINVAL);
		cr_assert_eq(sql_normalize(in, n, 0, SQL_NORM_KEEP_SELECT_LISTS, NULL, 0, &kept),
		             rc, "prefix %zu", n);
		uint64_t d = sql_digest(in, n, 0, 0);
		if (rc == 0) {
			normalised++;
			cr_assert(masked.len == 0 || (masked.data[0] != ' ' &&
			                              masked.data[masked.len - 1] != ' '),
			          "prefix %zu", n);
			cr_assert_eq(d, XXH3_64bits_withSeed(kept.data, kept.len, 0), "prefix %zu",
			             n);
		} else {
			raw++;
			cr_assert_neq(d, XXH3_64bits_withSeed(in, n, 0), "prefix %zu", n);
		}
		buf_free(&masked);
		buf_free(&kept);
		free(in);
	}
	cr_assert_gt(normalised, 0);
	cr_assert_gt(raw, 0);
}
