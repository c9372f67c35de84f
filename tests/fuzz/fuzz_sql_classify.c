/* The statement classifier, with the session's lexer flags from the input's
 * first byte. Statements must come in order, inside the text, without
 * overlapping, with their names inside them; and a statement that was
 * understood must classify the same when its text is classified alone. */
#include "fuzz.h"

#include <errno.h>

#include "sql/classify.h"

#define CAP 32

static bool name_inside(const struct sql_name *nm, size_t off, size_t len)
{
	if (!sql_name_present(nm))
		return true;
	return nm->off >= off && nm->len <= len && nm->off - off <= len - nm->len;
}

/* Compares two names of two texts by value, case ignored. */
static bool name_equal(const char *a, const struct sql_name *na, const char *b,
                       const struct sql_name *nb)
{
	if (sql_name_present(na) != sql_name_present(nb))
		return false;
	char va[1024], vb[1024];
	int ra = sql_name_copy(a, na, va, sizeof(va)), rb = sql_name_copy(b, nb, vb, sizeof(vb));
	if (ra || rb)
		return ra == rb;
	return strcasecmp(va, vb) == 0;
}

static void check_one(const char *s, size_t n, const struct sql_class *c)
{
	FUZZ_CHECK(c->off <= n && c->len <= n - c->off);
	FUZZ_CHECK(c->ntables <= SQL_CLASS_MAX_TABLES);
	FUZZ_CHECK(name_inside(&c->db, c->off, c->len));
	for (size_t j = 0; j < c->ntables; j++) {
		FUZZ_CHECK(name_inside(&c->tables[j].db, c->off, c->len));
		FUZZ_CHECK(name_inside(&c->tables[j].table, c->off, c->len));
	}
	if (c->kind == SQL_KIND_SET)
		FUZZ_CHECK(!(c->set_flags & SQL_SETF_AUTOCOMMIT) || c->autocommit >= -1);
	FUZZ_CHECK(c->autocommit >= -1 && c->autocommit <= 1);
	FUZZ_CHECK(sql_kind_name(c->kind) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned flags = fuzz_u8(&in) & (SQL_LEX_NO_BACKSLASH_ESCAPES | SQL_LEX_ANSI_QUOTES);
	char *s = (char *)fuzz_dup(in.p, in.n);
	size_t n = in.n;
	static struct sql_class out[CAP], alone[CAP];
	size_t count = SIZE_MAX, acount;

	int rc = sql_classify(s, n, flags, out, CAP, &count);
	FUZZ_CHECK(rc == 0 || rc == -E2BIG);
	FUZZ_CHECK(count <= CAP);
	if (rc == -E2BIG)
		FUZZ_CHECK(count == CAP);
	/* An executable comment may hold a ';': the statements on either side
	 * of it then begin or end inside the comment, and read differently on
	 * their own. */
	bool exec = memmem(s, n, "/*!", 3) || memmem(s, n, "/*T!", 4);
	size_t prev_end = 0;
	for (size_t i = 0; i < count; i++) {
		const struct sql_class *c = &out[i];
		check_one(s, n, c);
		FUZZ_CHECK(c->off >= prev_end);
		prev_end = c->off + c->len;
		if (c->kind == SQL_KIND_UNKNOWN || c->kind == SQL_KIND_EMPTY || rc || exec)
			continue;
		/* The same text on its own. */
		const char *t = s + c->off;
		FUZZ_CHECK(sql_classify(t, c->len, flags, alone, CAP, &acount) == 0);
		FUZZ_CHECK(acount == 1);
		const struct sql_class *a = &alone[0];
		/* "--" right at the end of a text is a comment, so a statement
		 * ending in "--" that were operators ("x ----") loses them (and
		 * the white space before) alone, and may then read differently:
		 * only the length is checked then. */
		FUZZ_CHECK(a->off == 0 && a->len <= c->len);
		if (a->len < c->len) {
			FUZZ_CHECK(c->len - a->len >= 2 && t[c->len - 1] == '-' &&
			           t[c->len - 2] == '-');
			continue;
		}
		FUZZ_CHECK(a->kind == c->kind && a->flags == c->flags &&
		           a->set_flags == c->set_flags && a->autocommit == c->autocommit);
		FUZZ_CHECK(a->ntables == c->ntables);
		FUZZ_CHECK(name_equal(t, &a->db, s, &c->db));
		for (size_t j = 0; j < c->ntables; j++) {
			FUZZ_CHECK(name_equal(t, &a->tables[j].db, s, &c->tables[j].db));
			FUZZ_CHECK(name_equal(t, &a->tables[j].table, s, &c->tables[j].table));
		}
	}
	free(s);
	return 0;
}
