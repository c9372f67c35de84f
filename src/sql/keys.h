/* Which rows a write statement touches, by primary key, when the statement
 * fixes them: the keys that vecgate reads back after the write commits to
 * patch a cached snapshot instead of reloading it (docs/design.md §10).
 * Anything not certain is refused with a reason, and the caller falls back
 * to marking the whole table stale. Pure: no allocation beyond the buffers
 * of the caller's struct sql_write_keys. */
#ifndef VECGATE_SQL_KEYS_H
#define VECGATE_SQL_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SQL_KEYS_MAX_COLS 8
/* UPDATE / DELETE: at most this many key tuples (the product of the values
 * WHERE allows each key column); more is refused ("too_many_keys"). */
#define SQL_KEYS_MAX_TUPLES 10000

/* How a key column's values compare, so that a literal in a statement and a
 * cell the server printed can be matched exactly. */
enum sql_key_type {
	SQL_KEY_INT,   /* signed integer types */
	SQL_KEY_UINT,  /* unsigned integer types */
	SQL_KEY_BYTES, /* binary strings and *_bin collations (PAD SPACE ones too) */
};

/* The cached table, as the extractor must know it. */
struct sql_key_table {
	const char *db;    /* the table's database */
	const char *table; /* the table's name */
	size_t ncols;      /* primary-key columns, in key order (1..SQL_KEYS_MAX_COLS) */
	const char *cols[SQL_KEYS_MAX_COLS];
	enum sql_key_type types[SQL_KEYS_MAX_COLS];
	/* The single-column key is AUTO_INCREMENT: an INSERT may omit it (or
	 * give NULL, DEFAULT or 0) and the server generates it. Only for one
	 * integer column (else the table is refused, "bad_table"). */
	bool auto_increment;
	/* The table has a UNIQUE key other than the primary key: REPLACE and
	 * INSERT ... ON DUPLICATE KEY UPDATE may then touch rows whose key the
	 * statement never names. */
	bool other_unique;
};

/* A prepared statement's bound value for '?' number i (0-based): as text
 * (strings) or decimal text (integers). Any numeric parameter (DECIMAL,
 * FLOAT, DOUBLE too) must set is_int with its text: the server compares a
 * number with a string column as numbers, so no number fixes a string key,
 * and only integer text fixes an integer key. Strings are the bytes of a
 * string or blob parameter; a temporal parameter must not be passed as one. */
struct sql_key_param {
	const char *p;
	size_t n;
	bool is_null;
	bool is_int;
};

enum sql_write_kind {
	SQL_WRITE_INSERT,
	SQL_WRITE_INSERT_IGNORE,
	SQL_WRITE_INSERT_ODKU, /* INSERT ... ON DUPLICATE KEY UPDATE */
	SQL_WRITE_REPLACE,
	SQL_WRITE_UPDATE,
	SQL_WRITE_DELETE,
};

struct sql_write_keys {
	enum sql_write_kind kind;
	/* INSERT / REPLACE: rows in VALUES (or the one row of SET a = ...). */
	size_t nrows;
	/* Explicit key tuples: nkeys tuples of ncols values each. Each value is
	 * stored in keys as a u32 length (host order) and its bytes: for
	 * SQL_KEY_INT/UINT the canonical decimal text (no '+', no leading
	 * zeros, "-0" is "0"), for SQL_KEY_BYTES the string's bytes after
	 * unescaping (introducers and COLLATE refused). Duplicates may repeat. */
	size_t nkeys;
	struct buf keys;
	/* INSERT / REPLACE rows whose AUTO_INCREMENT key the server generates
	 * (the column omitted, NULL, DEFAULT or 0): the caller reads them back
	 * from the OK packet's last insert id and affected rows. */
	size_t n_generated;
	/* Private to keys.c: the key's column count, where each tuple starts
	 * in keys (size_t each), and working space. */
	size_t ncols;
	struct buf offs;
	struct buf scratch;
	struct buf vidx;
};

void sql_write_keys_init(struct sql_write_keys *w);
void sql_write_keys_free(struct sql_write_keys *w);

/* lexflags option: the session's sql_mode has NO_AUTO_VALUE_ON_ZERO, so an
 * INSERT's 0 for the AUTO_INCREMENT key is that key, not a generated one. */
#define SQL_KEYS_NO_AUTO_VALUE_ON_ZERO 0x100u

/* Extracts the keys of one write statement (sql[0..n), lexed with lexflags:
 * SQL_LEX_NO_BACKSLASH_ESCAPES, SQL_LEX_ANSI_QUOTES as the session has them,
 * and SQL_KEYS_NO_AUTO_VALUE_ON_ZERO) on table t. db is the session's
 * current database for an unqualified name (NULL: not known). Returns 0 with
 * *w filled; a positive SQL_KEYS_NO with *reason (static text, a metric
 * label) when the keys are not certain; -ENOMEM ("nomem"). Refused, among
 * others: another table or several tables, a key column assigned by UPDATE
 * (SET pk = ...), WHERE that does not fix every key column with = or IN of
 * literals (AND of such, other conditions AND-ed are fine), OR, subqueries,
 * INSERT ... SELECT, REPLACE or ODKU with t->other_unique, a generated key
 * on a table without auto_increment, expressions for key values, parameters
 * out of range, executable comments and hints, a second statement. The key
 * values are the statement's; the caller checks the server's answer (a
 * warning means a value may have been clipped or truncated). */
#define SQL_KEYS_NO 1
int sql_write_keys(const char *sql, size_t n, unsigned lexflags, const char *db,
                   const struct sql_key_table *t, const struct sql_key_param *params,
                   size_t nparams, struct sql_write_keys *w, const char **reason) MUST_CHECK;

/* The i-th key tuple's value of key column c: *p points into w->keys (until
 * the next sql_write_keys on w); NULL and 0 when i or c is out of range. */
void sql_write_key(const struct sql_write_keys *w, size_t i, size_t c, const uint8_t **p,
                   size_t *len);

#endif
