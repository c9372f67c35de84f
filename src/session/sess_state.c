/* Session-state tracking from the server's answers: database, roles,
 * settings, and the tables an open transaction wrote. */
#include "session/sess_state.h"

#include <stdio.h>
#include <string.h>

#include "proto/mysql.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Session settings after which an answer from memory could differ from
 * TiDB's (another character set, time zone, snapshot, row limit, quoting). */
#define SETTINGS_THAT_STOP_SERVING                                                                 \
	(SQL_SETF_SQL_MODE | SQL_SETF_CHARSET | SQL_SETF_TIME_ZONE | SQL_SETF_SNAPSHOT |           \
	 SQL_SETF_SELECT_LIMIT | SQL_SETF_UNKNOWN)

static void txn_discard(struct sess_state *st);

void sess_state_init(struct sess_state *st, const struct sess_state_ops *ops, void *ctx)
{
	memset(st, 0, sizeof(*st));
	st->ops = ops;
	st->ctx = ctx;
	st->serving_ok = true;
}

void sess_state_login(struct sess_state *st, const char *user, const char *db, size_t db_len,
                      uint8_t charset)
{
	snprintf(st->user, sizeof(st->user), "%s", user);
	st->db_known = db_len < sizeof(st->db);
	if (st->db_known) {
		memcpy(st->db, db, db_len);
		st->db[db_len] = 0;
	}
	st->charset = charset;
	st->settings = charset;
	st->roles = 0;
	st->serving_ok = true;
	st->results_raw = false;
	txn_discard(st);
}

/* ---- transactions ---- */

static void drop_keys(struct sess_state *st, void **keys)
{
	if (*keys)
		st->ops->keys_free(st->ctx, *keys);
	*keys = NULL;
}

/* Notes a write to t in the open transaction, with the rows it touched
 * when this statement's keys are t's. */
static void txn_add(struct sess_state *st, struct cache_table *t)
{
	void *keys = NULL;
	const char *reason = "statement";
	if (st->stmt_table == t) {
		keys = st->stmt_keys;
		reason = st->stmt_reason;
		st->stmt_keys = NULL;
		st->stmt_table = NULL;
	}
	for (size_t i = 0; i < st->ntxn; i++) {
		struct sess_state_write *w = &st->txn[i];
		if (w->t != t)
			continue;
		if (w->keys && keys) {
			if (!st->ops->keys_merge(st->ctx, w->keys, keys)) {
				w->keys = NULL;
				w->reason = "memory";
			}
		} else if (w->keys) {
			drop_keys(st, &w->keys);
			w->reason = reason;
		} else {
			drop_keys(st, &keys);
		}
		return;
	}
	if (st->ntxn < SESS_STATE_MAX_TXN_TABLES) {
		st->txn[st->ntxn++] = (struct sess_state_write){t, keys, keys ? NULL : reason};
	} else {
		drop_keys(st, &keys);
		st->txn_all = true;
	}
}

bool sess_state_txn_has(const struct sess_state *st, const struct cache_table *t)
{
	if (st->txn_all)
		return true;
	for (size_t i = 0; i < st->ntxn; i++)
		if (st->txn[i].t == t)
			return true;
	return false;
}

/* The session's writes are committed: the snapshots they touch are stale
 * until patched or reloaded. */
static void txn_commit(struct sess_state *st)
{
	if (st->txn_all) {
		for (size_t i = 0; i < st->ntxn; i++)
			drop_keys(st, &st->txn[i].keys);
		st->ops->all_changed(st->ctx);
	} else {
		for (size_t i = 0; i < st->ntxn; i++) {
			struct sess_state_write *w = &st->txn[i];
			st->ops->written(st->ctx, w->t, w->keys, w->reason);
			w->keys = NULL;
		}
	}
	st->ntxn = 0;
	st->txn_all = false;
}

static void txn_discard(struct sess_state *st)
{
	for (size_t i = 0; i < st->ntxn; i++)
		drop_keys(st, &st->txn[i].keys);
	st->ntxn = 0;
	st->txn_all = false;
}

void sess_state_statement_keys(struct sess_state *st, struct cache_table *t, void *keys,
                               const char *reason)
{
	drop_keys(st, &st->stmt_keys);
	st->stmt_table = t;
	st->stmt_keys = keys;
	st->stmt_reason = keys ? NULL : reason;
}

void sess_state_reset(struct sess_state *st)
{
	/* The transaction was rolled back; settings and roles are the
	 * defaults again. */
	txn_discard(st);
	st->serving_ok = true;
	st->results_raw = false;
	st->settings = st->charset;
	st->roles = 0;
}

/* vecgate cannot be sure who the session is any more (a refused change of
 * user, a SET ROLE whose outcome is unknown, a statement it does not
 * understand, such as EXECUTE of a prepared USE or SET ROLE): from now on its
 * proofs are its own, made again by the database, and shared with no other
 * session, until it logs in again or resets. */
void sess_state_identity_unknown(struct sess_state *st)
{
	static uint64_t seq;
	seq++;
	st->roles = XXH3_64bits_withSeed(&seq, sizeof(seq), 0x707269766174u) | 1u;
}

void sess_state_init_db(struct sess_state *st, const char *db, size_t len)
{
	st->db_known = len < sizeof(st->db);
	if (st->db_known) {
		memcpy(st->db, db, len);
		st->db[len] = 0;
	}
}

uint64_t sess_state_identity(const struct sess_state *st)
{
	return st->roles ? XXH3_64bits_withSeed(&st->roles, sizeof(st->roles), st->settings)
	                 : st->settings;
}

void sess_state_status(struct sess_state *st, uint16_t status)
{
	st->lexflags =
	        status & PROTO_STATUS_NO_BACKSLASH_ESCAPES ? SQL_LEX_NO_BACKSLASH_ESCAPES : 0;
	if (!(status & PROTO_STATUS_IN_TRANS))
		txn_commit(st);
}

/* ---- statements ---- */

int sess_state_table(const struct sess_state *st, const char *text, const struct sql_table_ref *r,
                     struct cache_table **t)
{
	char db[256], table[256];
	*t = NULL;
	if (sql_name_copy(text, &r->table, table, sizeof(table)) < 0)
		return -1;
	if (r->db.len || r->db.quote) {
		if (sql_name_copy(text, &r->db, db, sizeof(db)) < 0)
			return -1;
	} else if (st->db_known) {
		snprintf(db, sizeof(db), "%s", st->db);
	} else {
		return -1;
	}
	*t = st->ops->find(st->ctx, db, table);
	return 0;
}

/* Applies f to every cached table a statement names. An unqualified name is
 * in the session's database; when that is not known, any table. */
static void for_tables(struct sess_state *st, const char *text, const struct sql_class *c,
                       void (*f)(struct sess_state *, struct cache_table *), bool ddl)
{
	if (c->flags & SQL_CF_ALL_TABLES) {
		if (ddl)
			st->ops->all_changed(st->ctx);
		st->txn_all = true;
		return;
	}
	for (size_t i = 0; i < c->ntables; i++) {
		struct cache_table *t;
		if (sess_state_table(st, text, &c->tables[i], &t) < 0)
			st->txn_all = true;
		else if (t)
			f(st, t);
	}
}

static void note_write(struct sess_state *st, struct cache_table *t)
{
	txn_add(st, t);
}

static void note_ddl(struct sess_state *st, struct cache_table *t)
{
	st->ops->ddl(st->ctx, t);
}

/* Whether one normalised assignment of a character-set SET keeps every
 * cell the bytes the snapshot holds: NAMES utf8mb4 [COLLATE utf8mb4_...],
 * character_set_client / _connection / _results = utf8mb4, collation_
 * connection = utf8mb4_..., or character_set_results = NULL (results sent
 * unconverted: the same bytes while the table's text is utf8mb4, which the
 * cache checks per table: results_raw). */
static bool harmless_charset(struct sess_state *st, const char *a, size_t n)
{
	static const char *const exact[] = {
	        "names utf8mb4",
	        "character_set_client=utf8mb4",
	        "character_set_connection=utf8mb4",
	        "character_set_results=utf8mb4",
	};
	static const char *const prefix[] = {
	        "names utf8mb4 collate utf8mb4_",
	        "collation_connection=utf8mb4_",
	};
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (n == strlen(exact[i]) && !memcmp(a, exact[i], n)) {
			if (i == 0 || i == 3)
				st->results_raw = false;
			return true;
		}
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
		size_t m = strlen(prefix[i]);
		if (n > m && !memcmp(a, prefix[i], m)) {
			if (i == 0)
				st->results_raw = false;
			return true;
		}
	}
	if (n == strlen("character_set_results=null") &&
	    !memcmp(a, "character_set_results=null", n)) {
		st->results_raw = true;
		return true;
	}
	return false;
}

/* SET NAMES utf8mb4 [COLLATE utf8mb4_...], SET character_set_results = NULL
 * and the like, which drivers send on connect (alone or as a list): cells
 * stay the bytes the snapshot holds, only the definitions' character set may
 * change, so the statement joins the settings hash instead of stopping
 * answers from memory. False (nothing changed) for anything else. */
static bool charset_settings_harmless(struct sess_state *st, const char *p, size_t n)
{
	char norm[256];
	size_t j = 0;
	bool space = false;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '\'' || ch == '"' || ch == '`')
			continue;
		if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
			space = j > 0;
			continue;
		}
		if (j + 2 >= sizeof(norm))
			return false;
		/* No space around '=' and ','; one between words. */
		if (space && ch != '=' && ch != ',' && norm[j - 1] != '=' && norm[j - 1] != ',')
			norm[j++] = ' ';
		space = false;
		norm[j++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	norm[j] = 0;
	static const char set[] = "set ";
	if (j < sizeof(set) - 1 || memcmp(norm, set, sizeof(set) - 1) != 0)
		return false;
	struct sess_state tmp = *st;
	for (size_t i = sizeof(set) - 1; i < j;) {
		size_t e = i;
		while (e < j && norm[e] != ',')
			e++;
		const char *a = norm + i;
		size_t an = e - i;
		/* The session scope, spelt any of the ways the server takes. */
		static const char *const scopes[] = {"@@session.", "@@local.", "@@", "session ",
		                                     "local "};
		for (size_t k = 0; k < sizeof(scopes) / sizeof(scopes[0]); k++) {
			size_t m = strlen(scopes[k]);
			if (an > m && !memcmp(a, scopes[k], m)) {
				a += m;
				an -= m;
				break;
			}
		}
		if (!harmless_charset(&tmp, a, an))
			return false;
		i = e + 1;
	}
	st->results_raw = tmp.results_raw;
	st->settings = XXH3_64bits_withSeed(norm, j, st->settings);
	return true;
}

/* What a statement the server refused, or never ran, may still have done:
 * only effects that make vecgate answer less from memory are applied (a
 * write or DDL marks its tables stale, settings stop answers, grants void
 * proofs). The database and roles stay as the server kept them. */
static void account_failed(struct sess_state *st, const char *text, const struct sql_class *c)
{
	switch (c->kind) {
	case SQL_KIND_UNKNOWN:
		/* It may have done part of its work before failing (CALL). */
		st->txn_all = true;
		st->db_known = false;
		sess_state_identity_unknown(st);
		break;
	case SQL_KIND_WRITE:
		/* Its keys are not trusted: a refused statement's effect is
		 * not read back, its tables are reloaded. */
		drop_keys(st, &st->stmt_keys);
		st->stmt_table = NULL;
		for_tables(st, text, c, note_write, false);
		break;
	case SQL_KIND_DDL:
		if (c->flags & SQL_CF_TEMPORARY)
			st->serving_ok = false;
		else
			for_tables(st, text, c, note_ddl, true);
		break;
	case SQL_KIND_SET:
		if (c->set_flags & (SETTINGS_THAT_STOP_SERVING | SQL_SETF_CHARSET))
			st->serving_ok = false;
		break;
	case SQL_KIND_ACL:
		st->ops->privileges_changed(st->ctx);
		break;
	default:
		break;
	}
}

/* A statement the server accepted. */
static void account_ok(struct sess_state *st, const char *text, const struct sql_class *c)
{
	switch (c->kind) {
	case SQL_KIND_UNKNOWN:
		/* It may have written anything, changed the database or the
		 * roles (MariaDB and TiDB can EXECUTE a prepared USE). */
		st->txn_all = true;
		st->db_known = false;
		sess_state_identity_unknown(st);
		break;
	case SQL_KIND_WRITE:
		for_tables(st, text, c, note_write, false);
		break;
	case SQL_KIND_DDL:
		/* DDL commits what came before it, then changes tables. A
		 * session's TEMPORARY table hides a cached table of its name
		 * from this session. */
		txn_commit(st);
		if (c->flags & SQL_CF_TEMPORARY)
			st->serving_ok = false;
		else
			for_tables(st, text, c, note_ddl, true);
		break;
	case SQL_KIND_BEGIN:
	case SQL_KIND_COMMIT:
		txn_commit(st);
		break;
	case SQL_KIND_ROLLBACK:
		txn_discard(st);
		break;
	case SQL_KIND_SET:
		if (c->set_flags == SQL_SETF_CHARSET &&
		    charset_settings_harmless(st, text + c->off, c->len))
			break;
		if (c->set_flags & SETTINGS_THAT_STOP_SERVING)
			st->serving_ok = false;
		break;
	case SQL_KIND_USE:
		st->db_known = sql_name_copy(text, &c->db, st->db, sizeof(st->db)) == 0;
		break;
	case SQL_KIND_ROLE:
		st->roles = XXH3_64bits_withSeed(text + c->off, c->len, 0x726f6c6573u) | 1u;
		break;
	case SQL_KIND_ACL:
		st->ops->privileges_changed(st->ctx);
		break;
	default:
		break;
	}
}

static void account(struct sess_state *st, const char *text, const struct sql_class *cls, size_t n,
                    bool unknown, bool is_err, unsigned results_before_err);

void sess_state_account(struct sess_state *st, const char *text, const struct sql_class *cls,
                        size_t n, bool unknown, bool is_err, unsigned results_before_err)
{
	account(st, text, cls, n, unknown, is_err, results_before_err);
	/* Keys of a statement that wrote another table than expected, or
	 * failed: unused. */
	drop_keys(st, &st->stmt_keys);
	st->stmt_table = NULL;
}

static void account(struct sess_state *st, const char *text, const struct sql_class *cls, size_t n,
                    bool unknown, bool is_err, unsigned results_before_err)
{
	if (unknown) {
		st->txn_all = true;
		st->db_known = false;
		sess_state_identity_unknown(st);
		return;
	}
	/* A multi-statement packet stops at its first error. A statement that
	 * may give several results (CALL, anything not understood) before the
	 * error hides which one failed: then USE and SET ROLE leave the
	 * database and the identity unknown. */
	size_t ok = n;
	bool sure = true;
	if (is_err) {
		sure = results_before_err < n;
		ok = sure ? results_before_err : 0;
		for (size_t i = 0; i < ok && sure; i++)
			sure = cls[i].kind != SQL_KIND_UNKNOWN;
		if (!sure)
			ok = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (i < ok) {
			account_ok(st, text, &cls[i]);
			continue;
		}
		account_failed(st, text, &cls[i]);
		if (!sure && cls[i].kind == SQL_KIND_USE)
			st->db_known = false;
		if (!sure && cls[i].kind == SQL_KIND_ROLE)
			sess_state_identity_unknown(st);
	}
}
