/* Statement classifier: what each statement of a COM_QUERY text does to the
 * session and to table data (read, write, DDL, transaction, SET, USE), and
 * which tables a write or DDL names, so the cache knows what became stale. */
#ifndef VECGATE_SQL_CLASSIFY_H
#define VECGATE_SQL_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "sql/lex.h"

enum sql_kind {
	/* Not understood: treat as a write to every table (the safe side). */
	SQL_KIND_UNKNOWN = 0,
	SQL_KIND_EMPTY,    /* only white space and comments */
	SQL_KIND_READ,     /* SELECT, TABLE, VALUES, SHOW, DESCRIBE, EXPLAIN (not ANALYZE) */
	SQL_KIND_WRITE,    /* INSERT, REPLACE, UPDATE, DELETE, LOAD DATA, IMPORT INTO */
	SQL_KIND_DDL,      /* CREATE / ALTER / DROP / RENAME / TRUNCATE / FLASHBACK ... */
	SQL_KIND_BEGIN,    /* BEGIN, START TRANSACTION */
	SQL_KIND_COMMIT,   /* COMMIT */
	SQL_KIND_ROLLBACK, /* ROLLBACK of the whole transaction */
	SQL_KIND_SET,      /* SET (see set_flags) */
	SQL_KIND_USE,      /* USE db */
	SQL_KIND_ACL,      /* GRANT, REVOKE, users, roles, SET DEFAULT ROLE, SET PASSWORD */
	SQL_KIND_ROLE,     /* SET ROLE: the session's active roles (its privileges) */
	/* Known not to change table data or the transaction: savepoints,
	 * ROLLBACK TO, ANALYZE, KILL, FLUSH, PREPARE, DO, LOCK TABLES ... */
	SQL_KIND_OTHER,
};

/* A table a statement names: db.len == 0 when unqualified (the session's
 * current database). */
struct sql_table_ref {
	struct sql_name db, table;
};

/* Classification flags. */
#define SQL_CF_LOCKING      0x01u /* SELECT ... FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE */
#define SQL_CF_ALL_TABLES   0x02u /* which tables is not known: every table (of db, if set) */
#define SQL_CF_STALE_READ   0x04u /* AS OF TIMESTAMP: a read of older data */
#define SQL_CF_READ_ONLY    0x08u /* START TRANSACTION READ ONLY */
#define SQL_CF_CHAIN        0x10u /* COMMIT / ROLLBACK AND CHAIN: a new transaction starts */
#define SQL_CF_EXEC_COMMENT 0x20u /* the text held an executable comment (read inside) */
/* CREATE / DROP TEMPORARY TABLE: a table of this session only, which hides a
 * base table of the same name from the session while it exists. */
#define SQL_CF_TEMPORARY 0x40u

/* What a SET changes (set_flags). */
#define SQL_SETF_AUTOCOMMIT   0x001u /* autocommit (value in autocommit) */
#define SQL_SETF_SQL_MODE     0x002u /* sql_mode: lexing (ANSI_QUOTES ...) may change */
#define SQL_SETF_CHARSET      0x004u /* NAMES, CHARACTER SET, character_set_*, collation_* */
#define SQL_SETF_TIME_ZONE    0x008u /* time_zone: TIMESTAMP cells print differently */
#define SQL_SETF_SNAPSHOT     0x010u /* tidb_snapshot, tidb_read_staleness, tx_read_ts ... */
#define SQL_SETF_TRANSACTION  0x020u /* SET TRANSACTION, isolation, read-only */
#define SQL_SETF_SELECT_LIMIT 0x040u /* sql_select_limit: caps every SELECT's rows */
#define SQL_SETF_USER_VAR     0x080u /* @user variables */
#define SQL_SETF_OTHER_VAR    0x100u /* some other system variable of the session */
#define SQL_SETF_GLOBAL       0x200u /* a GLOBAL / INSTANCE / PERSIST assignment */
#define SQL_SETF_UNKNOWN      0x400u /* could not read the assignments: anything may change */

/* At most this many tables per statement; more sets SQL_CF_ALL_TABLES. */
#define SQL_CLASS_MAX_TABLES 16

struct sql_class {
	enum sql_kind kind;
	unsigned flags;     /* SQL_CF_* */
	unsigned set_flags; /* SQL_KIND_SET: SQL_SETF_* */
	/* SQL_SETF_AUTOCOMMIT: 0 or 1 when the session's new value is a literal
	 * (0/1, ON/OFF, TRUE/FALSE, quoted or not), -1 otherwise. */
	int autocommit;
	size_t off, len; /* the statement's text, without the ';' */
	/* SQL_KIND_USE: the database; SQL_CF_ALL_TABLES from DROP DATABASE: its
	 * name; else absent. */
	struct sql_name db;
	size_t ntables;
	struct sql_table_ref tables[SQL_CLASS_MAX_TABLES];
};

/* Splits sql[0..n) into statements on ';' outside quotes and comments and
 * classifies each, in order, into out[0..cap); *count is how many there are
 * (empty statements between ';' are left out; an empty text gives one
 * SQL_KIND_EMPTY). lexflags are SQL_LEX_* (NO_BACKSLASH_ESCAPES,
 * ANSI_QUOTES); executable comments are always read inside, as TiDB does.
 * Text that does not tokenize (an unterminated quote or comment) ends the
 * split: the rest is one SQL_KIND_UNKNOWN statement.
 * Returns 0, or -E2BIG when there are more than cap statements (out holds the
 * first cap and *count is cap: treat the text as SQL_KIND_UNKNOWN). */
int sql_classify(const char *sql, size_t n, unsigned lexflags, struct sql_class *out, size_t cap,
                 size_t *count) MUST_CHECK;

/* A short constant name for a kind ("read", "write", ...), for metrics. */
const char *sql_kind_name(enum sql_kind kind);

#endif
