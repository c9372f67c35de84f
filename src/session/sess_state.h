/* What a client session is, as far as answering from memory cares: its user,
 * current database, active roles, settings, and the cached tables its open
 * transaction wrote. Changed only by the server's answers to the session's
 * statements (docs/design.md §9), never by the request alone. Pure: the cache
 * is reached through the ops below, so the rules are unit-tested without
 * one. */
#ifndef VECGATE_SESSION_SESS_STATE_H
#define VECGATE_SESSION_SESS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sql/classify.h"

struct cache_table;

/* How the tracker reaches the cache. Tables are opaque: only their identity
 * matters here. */
struct sess_state_ops {
	/* The cached table db.table, or NULL. */
	struct cache_table *(*find)(void *ctx, const char *db, const char *table);
	/* Writes to t committed: keys (taken over) name every row they
	 * touched, or NULL when that is not known (reason says why). */
	void (*written)(void *ctx, struct cache_table *t, void *keys, const char *reason);
	/* Appends from's rows to into's, frees from; false (both freed) when
	 * out of memory. */
	bool (*keys_merge)(void *ctx, void *into, void *from);
	void (*keys_free)(void *ctx, void *keys);
	/* t's definition may have changed (DDL). */
	void (*ddl)(void *ctx, struct cache_table *t);
	/* Any table may have been written or redefined. */
	void (*all_changed)(void *ctx);
	/* Privileges changed (GRANT, REVOKE, users, roles): every proof is void. */
	void (*privileges_changed)(void *ctx);
};

#define SESS_STATE_MAX_TXN_TABLES 32

struct sess_state {
	const struct sess_state_ops *ops;
	void *ctx;
	char user[64];
	char db[256];
	bool db_known; /* false: unqualified names are not resolved */
	uint8_t charset;
	/* The handshake's character set and every harmless character-set SET
	 * since (SET NAMES utf8mb4, character_set_results = NULL, ...), hashed:
	 * answers are captured and served per value. */
	uint64_t settings;
	/* 0: the roles a login gets; else a hash of the SET ROLE the server last
	 * accepted (each replaces the whole set), or a value no other session
	 * has once vecgate cannot be sure who the session is. */
	uint64_t roles;
	bool serving_ok; /* false: settings under which memory could differ */
	/* SET character_set_results = NULL is in force: results are sent
	 * unconverted, the same bytes only for tables whose text is utf8mb4
	 * (the cache checks each table). */
	bool results_raw;
	unsigned lexflags; /* SQL_LEX_* from the server status */
	/* The tables the open transaction wrote, with the rows it touched. */
	struct sess_state_write {
		struct cache_table *t;
		void *keys;         /* NULL: not known */
		const char *reason; /* why not */
	} txn[SESS_STATE_MAX_TXN_TABLES];
	size_t ntxn;
	/* The rows the statement being accounted touched in one table
	 * (sess_state_statement_keys), consumed by its write. */
	struct cache_table *stmt_table;
	void *stmt_keys;
	const char *stmt_reason;
	bool txn_all; /* the open transaction may have written any table */
};

void sess_state_init(struct sess_state *st, const struct sess_state_ops *ops, void *ctx);

/* A login (or COM_CHANGE_USER) the server accepted. */
void sess_state_login(struct sess_state *st, const char *user, const char *db, size_t db_len,
                      uint8_t charset);
/* COM_RESET_CONNECTION succeeded: transaction, settings and roles are a
 * fresh session's; user and database stay. */
void sess_state_reset(struct sess_state *st);
/* COM_CHANGE_USER was refused: servers differ on who the session is then. */
void sess_state_identity_unknown(struct sess_state *st);
/* COM_INIT_DB succeeded. */
void sess_state_init_db(struct sess_state *st, const char *db, size_t len);

/* The statements of one finished command (text, classified), with what the
 * server did: no error, all ran; with an error, the statement at index
 * results_before_err failed and the later ones never ran, provided each
 * earlier statement gives exactly one result. unknown: the text could not be
 * classified. */
void sess_state_account(struct sess_state *st, const char *text, const struct sql_class *cls,
                        size_t n, bool unknown, bool is_err, unsigned results_before_err);

/* Before sess_state_account of a command with one write: the rows it
 * touched in t (keys taken over; NULL and a reason when not known). */
void sess_state_statement_keys(struct sess_state *st, struct cache_table *t, void *keys,
                               const char *reason);

/* The server status after a response: a session outside a transaction has
 * committed what it wrote. */
void sess_state_status(struct sess_state *st, uint16_t status);

/* The cached table a statement names (*t NULL when not cached): an
 * unqualified name is in the session's database. -1 when which table is
 * not known (the database is unknown, a name too long). */
int sess_state_table(const struct sess_state *st, const char *text, const struct sql_table_ref *r,
                     struct cache_table **t);

/* Whether the open transaction wrote t (its kNN reads must see that). */
bool sess_state_txn_has(const struct sess_state *st, const struct cache_table *t);

/* Settings and roles hashed together: part of a proof's key. */
uint64_t sess_state_identity(const struct sess_state *st);

/* The current database for the key of a proof ("" when not known). */
static inline const char *sess_state_db(const struct sess_state *st)
{
	return st->db_known ? st->db : "";
}

#endif
