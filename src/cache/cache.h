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

#include "cache/patch.h"
#include "cache/snapshot.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/list.h"
#include "vec/vec.h"

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
	bool reload_again; /* a write arrived during the load in flight */
	/* A load or patch asked for on another loop's thread: the cache's
	 * loop starts it (docs/design.md §2). */
	bool start_wanted, patch_wanted;
	uint64_t retry_at_ms; /* after a failed or a too slow load */
	unsigned fail_streak; /* loads failed in a row: the back-off doubles with each */
	/* After a failed load (failed_at_ms, fail_streak > 0): the table's own
	 * retry is due at retry_at_ms, one asked for by a write or a failed
	 * patch RETRY_AFTER_FAILURE_MS after the failure (load_asked); the
	 * timer starts either. */
	uint64_t failed_at_ms;
	bool load_asked;
	bool auto_admitted; /* admitted by a query (tables = auto), not by config */
	bool too_slow;      /* its load takes longer than max_staleness */
	char last_error[600];
	uint64_t loads, load_failures;
	/* Live snapshots (docs/design.md §10): the writes committed since the
	 * oldest version anyone still builds on, in version order. */
	struct cache_pending *pending;
	size_t n_pending, pending_cap;
	uint64_t load_version;       /* the version the load in flight started at */
	struct cache_snapshot *next; /* a reloaded base catching up with patches */
	bool patching;               /* a patch job is on a pool thread */
	uint64_t lost_version;       /* a write not recorded (out of memory) */
	MYSQL *patch_conn;           /* the patch jobs' connection (one job at a time) */
	struct list_node waiters;    /* reads waiting for the next version */
	uint64_t patches, patched_rows, patch_failures;
	/* The arithmetic TiDB's distances for this table were last found in
	 * (a new shape tries it first), and how many comparisons matched in
	 * each (docs/design.md §8). */
	enum vec_arith arith;
	uint64_t arith_matches[2];
	struct cache_table *next_table;
};

/* The rows one committed write touched, by primary key: canonical keys
 * (cache_key_append's form) and AUTO_INCREMENT ranges with the number of
 * rows each must hold. */
struct cache_write {
	struct buf keys;
	size_t nkeys;
	struct cache_key_range *ranges;
	size_t *range_rows;
	size_t nranges;
};
void cache_write_init(struct cache_write *w);
void cache_write_free(struct cache_write *w);
/* Appends src's keys and ranges to dst. 0 or -ENOMEM. */
int cache_write_merge(struct cache_write *dst, const struct cache_write *src) MUST_CHECK;
int cache_write_add_range(struct cache_write *w, struct cache_key_range r, size_t rows) MUST_CHECK;

/* A read waiting until its table's snapshot has caught up with the writes
 * vecgate has seen. cb runs once, on the cache's loop under cache_lock(),
 * when the table published a version or gave up patching; the read then
 * decides again (on its own loop: the callback hands it there). */
struct cache_waiter {
	struct list_node link;
	void (*cb)(struct cache_waiter *w);
};

struct cache_options {
	uv_loop_t *loop;
	const struct config_table_list *tables;
	const char *user, *password;
	/* Where loads and patches connect, and how (core/upstream.h): the
	 * sessions' servers, TLS settings, timeouts and health. */
	struct upstream_group *upstream;
	uint64_t memory_limit;
	uint64_t max_staleness_ms;
	int max_tables; /* auto admission: most tables admitted at once */
	bool patches;   /* writes through vecgate patch snapshots (else: reload) */
};

/* Worker loops (docs/design.md §2): the cache's tables, the shapes, the
 * result cache and the sessions' cache state are shared by every loop, and
 * every loop holds this one lock while it reads or changes them (it nests:
 * a session answered under it may call in again). The cache's own loads,
 * patches and timer run on opt.loop; asked for on another loop's thread,
 * they start there soon after. Pool threads never take it. */
void cache_lock(void);
void cache_unlock(void);

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
/* A write to the table committed and touched the rows w names (taken over):
 * the snapshot is stale until a patch reads those rows back and publishes
 * a new version. w NULL (or a table that cannot be patched): as
 * cache_table_changed, counted under reason. */
void cache_table_written(struct cache_table *t, struct cache_write *w, const char *reason);
/* The published snapshot's base (columns, key), for key extraction; NULL
 * before the first load. */
const struct cache_base *cache_table_base(const struct cache_table *t);
/* Parks w until t's snapshot catches up, when that is worth waiting for (a
 * patch is running or due, no reload is needed); false otherwise. */
bool cache_table_wait(struct cache_table *t, struct cache_waiter *w);
void cache_waiter_cancel(struct cache_waiter *w);
/* A statement vecgate cannot attribute may have written anything. */
void cache_all_changed(struct cache *c);

/* Why a snapshot cannot answer now; NULL when it can. */
const char *cache_table_unservable(const struct cache_table *t, uint64_t now_ms);
/* The same for a read that arrived when the table was at need_version: a
 * snapshot that reflects every write committed before the read arrived may
 * answer it, even if writes committed since (they are concurrent with it). */
const char *cache_table_unservable_for(const struct cache_table *t, uint64_t now_ms,
                                       uint64_t need_version);

uint64_t cache_now_ms(void);

/* JSON array of tables with state, rows, bytes, age, versions, for /status. */
int cache_status_json(const struct cache *c, struct buf *out) MUST_CHECK;

#endif
