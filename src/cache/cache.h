/* The vector cache: which tables are cached, their snapshots and versions,
 * background loads (single flight per table), and the rules that decide
 * whether a snapshot may answer a query (docs/design.md §10). Lives on
 * the event loop; loads run on pool threads. */
#ifndef VECGATE_CACHE_CACHE_H
#define VECGATE_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cache/snapshot.h"
#include "core/buf.h"
#include "core/config.h"

struct cache;

enum cache_table_state {
	CACHE_EMPTY,  /* admitted, first load not finished */
	CACHE_READY,  /* holds a snapshot (possibly stale) */
	CACHE_FAILED, /* the last load failed; retried after a back-off */
	/* An auto-admitted table whose loads failed: invisible to cache_find,
	 * its struct kept (sessions may still point at it) and reused by the
	 * next admission. */
	CACHE_FORGOTTEN,
};

struct cache_table {
	struct cache *cache;
	char db[256], table[256], column[256];
	enum cache_table_state state;
	/* Bumped when a write through vecgate to this table commits; a snapshot
	 * whose version differs is stale and never served. */
	uint64_t version;
	/* Bumped by DDL: column definitions captured before it are void. */
	uint64_t schema_version;
	struct cache_snapshot *snap;
	bool loading;
	bool reload_again;    /* a write arrived during the load in flight */
	uint64_t retry_at_ms; /* after a failed or a too slow load */
	unsigned fail_streak; /* loads failed in a row: the back-off doubles with each */
	bool auto_admitted;   /* admitted by a query (tables = auto), not by config */
	bool too_slow;        /* its load takes longer than max_staleness */
	char last_error[600];
	uint64_t loads, load_failures;
	struct cache_table *next;
};

struct cache_options {
	uv_loop_t *loop;
	const struct config_table_list *tables;
	const char *user, *password;
	const char *host; /* the upstream loads read from */
	int port;
	bool tls, tls_verify;
	const char *tls_ca_file;
	uint64_t memory_limit;
	uint64_t max_staleness_ms;
	uint64_t load_timeout_ms;
	int max_tables; /* auto admission: most tables admitted at once */
};

/* Creates the cache and starts loading its tables. NULL when the options
 * are unusable (err says why). */
struct cache *cache_new(const struct cache_options *opt, char *err, size_t errlen);
void cache_free(struct cache *c);
void cache_set_max_staleness(struct cache *c, uint64_t ms);

/* The cached table db.table (names compare case-insensitively, as in TiDB),
 * or NULL. With auto admission, cache_admit() adds one. */
struct cache_table *cache_find(struct cache *c, const char *db, size_t db_len, const char *table,
                               size_t table_len);
/* Whether auto admission would take db.table now: on, not a system schema,
 * not in the back-off of a failed load, room under max_tables and
 * memory_limit. Admission itself must wait until the database has answered
 * a kNN query on the table for some client (docs/design.md §7):
 * the caller checks that, then calls cache_admit(). */
bool cache_may_admit(const struct cache *c, const char *db, size_t db_len, const char *table,
                     size_t table_len);
struct cache_table *cache_admit(struct cache *c, const char *db, size_t db_len, const char *table,
                                size_t table_len, const char *column, size_t column_len);

/* A write to the table committed (or, with ddl, its definition changed):
 * the snapshot is stale from now on and a reload starts. */
void cache_table_changed(struct cache_table *t, bool ddl);
/* A statement vecgate cannot attribute may have written anything. */
void cache_all_changed(struct cache *c);

/* Why a snapshot cannot answer now; NULL when it can. */
const char *cache_table_unservable(const struct cache_table *t, uint64_t now_ms);

uint64_t cache_now_ms(void);

/* JSON array of tables with state, rows, bytes, age, versions, for /status. */
int cache_status_json(const struct cache *c, struct buf *out) MUST_CHECK;

#endif
