/* Write-key extraction. The input's first bytes describe the cached table
 * (key columns, their types, AUTO_INCREMENT, other unique keys), the session
 * (lexer flags, current database) and up to 8 bound parameters; the rest is
 * the statement. Keys must come in whole tuples, integer keys in canonical
 * decimal, and a second extraction into the same buffers must give the same
 * keys. */
#include "fuzz.h"

#include <errno.h>

#include "sql/keys.h"
#include "sql/lex.h"

static const char *const col_names[SQL_KEYS_MAX_COLS] = {"k1", "k2", "k3", "k4",
                                                         "k5", "k6", "k7", "k8"};

/* The table: one of the unit tests' (so their statements make good seeds)
 * or a generic one whose key columns and types come from the input. */
static void make_table(struct sql_key_table *t, uint8_t a, uint8_t b)
{
	memset(t, 0, sizeof(*t));
	t->db = "app";
	t->other_unique = b & 0x80;
	switch (a % 5) {
	case 0: /* items: id BIGINT AUTO_INCREMENT PRIMARY KEY */
		t->table = "items";
		t->ncols = 1;
		t->cols[0] = "id";
		t->types[0] = SQL_KEY_INT;
		t->auto_increment = true;
		break;
	case 1: /* users: uid BIGINT UNSIGNED PRIMARY KEY */
		t->table = "users";
		t->ncols = 1;
		t->cols[0] = "uid";
		t->types[0] = SQL_KEY_UINT;
		break;
	case 2: /* docs: name VARBINARY PRIMARY KEY */
		t->table = "docs";
		t->ncols = 1;
		t->cols[0] = "name";
		t->types[0] = SQL_KEY_BYTES;
		break;
	case 3: /* App.Pairs: PRIMARY KEY (a INT, b VARCHAR COLLATE utf8mb4_bin) */
		t->db = "App";
		t->table = "Pairs";
		t->ncols = 2;
		t->cols[0] = "a";
		t->cols[1] = "b";
		t->types[0] = SQL_KEY_INT;
		t->types[1] = SQL_KEY_BYTES;
		break;
	default:
		/* 0 and 9 columns are out of range on purpose: refused. */
		t->table = "t";
		t->ncols = (size_t)(a / 5) % 10;
		for (size_t i = 0; i < SQL_KEYS_MAX_COLS; i++) {
			t->cols[i] = col_names[i];
			t->types[i] = (enum sql_key_type)(((b >> (i % 3 * 2)) & 3) % 3);
		}
		t->auto_increment = b & 0x40;
		break;
	}
}

static bool canonical_int(const uint8_t *p, size_t n, bool is_signed)
{
	if (n == 0)
		return false;
	size_t i = 0;
	if (p[0] == '-') {
		if (!is_signed || n == 1 || (n == 2 && p[1] == '0'))
			return false;
		i = 1;
	}
	if (p[i] == '0' && n - i > 1)
		return false;
	for (; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static void check_keys(const struct sql_write_keys *w, const struct sql_key_table *t)
{
	FUZZ_CHECK(w->ncols == t->ncols);
	for (size_t i = 0; i < w->nkeys; i++)
		for (size_t c = 0; c < t->ncols; c++) {
			const uint8_t *p = NULL;
			size_t len = SIZE_MAX;
			sql_write_key(w, i, c, &p, &len);
			FUZZ_CHECK(p != NULL && len != SIZE_MAX);
			FUZZ_CHECK(fuzz_within(w->keys.data, w->keys.len, p, len));
			if (t->types[c] != SQL_KEY_BYTES)
				FUZZ_CHECK(canonical_int(p, len, t->types[c] == SQL_KEY_INT));
		}
	const uint8_t *p;
	size_t len;
	sql_write_key(w, w->nkeys, 0, &p, &len);
	FUZZ_CHECK(p == NULL && len == 0);
	sql_write_key(w, 0, t->ncols, &p, &len);
	FUZZ_CHECK(p == NULL && len == 0);
	if (w->kind == SQL_WRITE_UPDATE || w->kind == SQL_WRITE_DELETE)
		FUZZ_CHECK(w->nrows == 0 && w->n_generated == 0 && w->nkeys <= SQL_KEYS_MAX_TUPLES);
	else /* each row names its key or has it generated */
		FUZZ_CHECK(w->nrows >= 1 && w->nkeys + w->n_generated == w->nrows);
	if (w->n_generated)
		FUZZ_CHECK(t->auto_increment);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t a = fuzz_u8(&in), b = fuzz_u8(&in), c = fuzz_u8(&in);
	struct sql_key_table t;
	make_table(&t, a, b);
	unsigned lexflags = (c & (SQL_LEX_NO_BACKSLASH_ESCAPES | SQL_LEX_ANSI_QUOTES)) |
	                    (c & 0x80 ? SQL_KEYS_NO_AUTO_VALUE_ON_ZERO : 0);
	const char *db = c & 0x40 ? NULL : c & 0x20 ? "other" : "app";

	/* Parameters: a count, then each as a kind byte, a length byte and its
	 * bytes. */
	struct sql_key_param params[8];
	size_t nparams = fuzz_u8(&in) % 9;
	for (size_t i = 0; i < nparams; i++) {
		uint8_t kind = fuzz_u8(&in);
		size_t len = fuzz_u8(&in);
		if (len > in.n)
			len = in.n;
		params[i] = (struct sql_key_param){
		        .p = (const char *)in.p, .n = len, .is_null = kind & 1, .is_int = kind & 2};
		in.p += len;
		in.n -= len;
	}
	char *s = (char *)fuzz_dup(in.p, in.n);
	size_t n = in.n;

	struct sql_write_keys w;
	sql_write_keys_init(&w);
	const char *reason = NULL;
	int rc = sql_write_keys(s, n, lexflags, db, &t, params, nparams, &w, &reason);
	FUZZ_CHECK(rc == 0 || rc == SQL_KEYS_NO || rc == -ENOMEM);
	if (rc == 0) {
		FUZZ_CHECK(t.ncols >= 1 && t.ncols <= SQL_KEYS_MAX_COLS);
		FUZZ_CHECK(!t.auto_increment || (t.ncols == 1 && t.types[0] != SQL_KEY_BYTES));
		check_keys(&w, &t);
	} else {
		FUZZ_CHECK(reason != NULL && reason[0] != 0);
	}
	size_t nkeys = w.nkeys, nrows = w.nrows, ngen = w.n_generated;
	enum sql_write_kind kind = w.kind;
	struct buf keys;
	buf_init(&keys);
	FUZZ_CHECK(buf_append(&keys, w.keys.data, w.keys.len) == 0);

	const char *reason2 = NULL;
	int rc2 = sql_write_keys(s, n, lexflags, db, &t, params, nparams, &w, &reason2);
	FUZZ_CHECK(rc2 == rc && reason2 == reason);
	if (rc == 0) {
		FUZZ_CHECK(w.nkeys == nkeys && w.nrows == nrows && w.n_generated == ngen &&
		           w.kind == kind);
		FUZZ_CHECK(w.keys.len == keys.len &&
		           (keys.len == 0 || memcmp(w.keys.data, keys.data, keys.len) == 0));
	}
	buf_free(&keys);
	sql_write_keys_free(&w);
	free(s);
	return 0;
}
