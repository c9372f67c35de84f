/* Cached tables: versions, staleness, single-flight background loads. */
#include "cache/cache.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/metrics.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/net.h"

/* A failed load is retried after RETRY_AFTER_FAILURE_MS, doubled with each
 * failure in a row up to RETRY_MAX_MS: a table that cannot load costs the
 * database a few connections an hour, not a stream of them. */
#define RETRY_AFTER_FAILURE_MS 5000
#define RETRY_MAX_MS           (10 * 60 * 1000)
/* An auto-admitted table is forgotten when its first load fails, or after
 * this many failures in a row once it has loaded. */
#define AUTO_FORGET_FAILURES 3
/* Names forgotten recently, refused by admission until their back-off ends. */
#define FORGOTTEN_MEMORY 256

struct cache {
	struct cache_options opt;
	char user[256], password[1024], host[256], ca[1024];
	struct cache_table *tables;
	size_t n_tables;
	struct net_timer timer;
	bool closing;
	int loads_in_flight;
	struct metric *m_loads_ok, *m_loads_failed, *m_load_seconds, *m_rows, *m_bytes;
	struct metric *m_memory, *m_tables, *m_oldest_ms;
	int n_auto; /* auto-admitted tables not forgotten */
	struct forgotten {
		uint64_t name; /* hash of lower-case db.table; 0 = free */
		uint64_t until_ms;
		unsigned times;
	} forgotten[FORGOTTEN_MEMORY];
};

/* What a load on a pool thread needs and produces. */
struct load_job {
	struct cache_table *t;
	struct cache_load_spec spec;
	struct cache_snapshot *snap;
	char err[512];
};

uint64_t cache_now_ms(void)
{
	return core_now_ms();
}

static void start_load(struct cache_table *t);
static void forget(struct cache_table *t);

/* The only place a table's state changes after admission (which starts it
 * EMPTY): EMPTY and FAILED go to READY or FAILED, READY to FAILED (memory
 * limit); only auto-admitted tables are FORGOTTEN, and nothing leaves that
 * but a reuse by admission. */
static void set_table_state(struct cache_table *t, enum cache_table_state st)
{
	assert(t->state != CACHE_FORGOTTEN);
	assert(st != CACHE_FORGOTTEN || t->auto_admitted);
	assert(st != CACHE_EMPTY);
	t->state = st;
}

static uint64_t retry_delay_ms(unsigned failures)
{
	uint64_t d = RETRY_AFTER_FAILURE_MS;
	for (unsigned i = 1; i < failures && d < RETRY_MAX_MS; i++)
		d *= 2;
	return d < RETRY_MAX_MS ? d : RETRY_MAX_MS;
}

static uint64_t snapshot_bytes(const struct cache *c)
{
	uint64_t n = 0;
	for (const struct cache_table *t = c->tables; t; t = t->next)
		n += t->snap ? t->snap->bytes : 0;
	return n;
}

static void load_work(void *data)
{
	struct load_job *j = data;
	j->snap = cache_snapshot_load(&j->spec, j->err, sizeof(j->err));
}

static void load_done(void *data, int status)
{
	struct load_job *j = data;
	struct cache_table *t = j->t;
	struct cache *c = t->cache;
	c->loads_in_flight--;
	t->loading = false;
	if (!j->snap) {
		t->load_failures++;
		metrics_inc(c->m_loads_failed, 1);
		snprintf(t->last_error, sizeof(t->last_error), "%s",
		         status ? "load cancelled" : j->err);
		t->fail_streak++;
		log_warn("cache %s.%s: load failed (%u in a row): %s", t->db, t->table,
		         t->fail_streak, t->last_error);
		if (!t->snap)
			set_table_state(t, CACHE_FAILED);
		t->retry_at_ms = cache_now_ms() + retry_delay_ms(t->fail_streak);
		if (t->auto_admitted && !c->closing &&
		    (!t->snap || t->fail_streak >= AUTO_FORGET_FAILURES)) {
			free(j);
			forget(t);
			return;
		}
	} else {
		struct cache_snapshot *old = t->snap;
		t->snap = j->snap;
		set_table_state(t, CACHE_READY);
		t->loads++;
		t->fail_streak = 0;
		t->last_error[0] = 0;
		metrics_inc(c->m_loads_ok, 1);
		metrics_observe_ns(c->m_load_seconds, j->snap->load_ms * 1000000u);
		metrics_inc(c->m_rows, j->snap->n_rows);
		metrics_inc(c->m_bytes, j->snap->bytes);
		log_info("cache %s.%s: loaded %zu rows, %zu bytes in %" PRIu64
		         " ms (version %" PRIu64 "%s)",
		         t->db, t->table, j->snap->n_rows, j->snap->bytes, j->snap->load_ms,
		         j->snap->version, j->snap->version == t->version ? "" : ", already stale");
		if (old)
			cache_snapshot_unref(old);
		/* A snapshot is as old as its read's start: a table that takes
		 * longer than max_staleness to load can never be served. Say so,
		 * and do not reload it back to back for nothing. */
		if (j->snap->load_ms >= c->opt.max_staleness_ms) {
			if (!t->too_slow)
				log_warn("cache %s.%s: loading takes %" PRIu64 " ms, longer than "
				         "max_staleness (%" PRIu64
				         " ms): it cannot be answered from "
				         "memory; raise [cache] max_staleness above the load time",
				         t->db, t->table, j->snap->load_ms,
				         c->opt.max_staleness_ms);
			t->too_slow = true;
			t->retry_at_ms = cache_now_ms() + j->snap->load_ms;
		} else {
			t->too_slow = false;
		}
		if (snapshot_bytes(c) > c->opt.memory_limit) {
			log_warn("cache %s.%s: snapshots exceed memory_limit; dropping this one",
			         t->db, t->table);
			cache_snapshot_unref(t->snap);
			t->snap = NULL;
			set_table_state(t, CACHE_FAILED);
			snprintf(t->last_error, sizeof(t->last_error), "memory_limit reached");
			t->retry_at_ms = cache_now_ms() + retry_delay_ms(++t->fail_streak);
		}
	}
	free(j);
	if (c->closing) {
		if (c->loads_in_flight == 0)
			cache_free(c);
		return;
	}
	if (t->reload_again || (t->snap && t->snap->version != t->version)) {
		t->reload_again = false;
		start_load(t);
	}
}

static void start_load(struct cache_table *t)
{
	struct cache *c = t->cache;
	if (t->loading || c->closing)
		return;
	struct load_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->t = t;
	j->spec = (struct cache_load_spec){
	        .host = c->host,
	        .port = c->opt.port,
	        .user = c->user,
	        .password = c->password,
	        .tls = c->opt.tls,
	        .tls_verify = c->opt.tls_verify,
	        .tls_ca_file = c->ca,
	        .db = t->db,
	        .table = t->table,
	        .column = t->column,
	        .version = t->version,
	        .memory_limit = c->opt.memory_limit,
	        .timeout_s = (unsigned)(c->opt.load_timeout_ms / 1000),
	};
	if (net_work_submit(c->opt.loop, load_work, load_done, j) < 0) {
		free(j);
		return;
	}
	t->loading = true;
	t->reload_again = false;
	c->loads_in_flight++;
}

void cache_table_changed(struct cache_table *t, bool ddl)
{
	if (t->state == CACHE_FORGOTTEN)
		return; /* a session's stale pointer: nothing is cached there now */
	t->version++;
	if (ddl)
		t->schema_version++;
	if (t->loading)
		t->reload_again = true; /* it read before this write */
	else
		start_load(t);
}

void cache_all_changed(struct cache *c)
{
	for (struct cache_table *t = c->tables; t; t = t->next)
		if (t->state != CACHE_FORGOTTEN)
			cache_table_changed(t, true);
}

const char *cache_table_unservable(const struct cache_table *t, uint64_t now_ms)
{
	if (!t->snap)
		return t->state == CACHE_FAILED ? "load_failed" : "loading";
	if (t->snap->version != t->version)
		return "stale_write";
	if (now_ms - t->snap->loaded_ms >= t->cache->opt.max_staleness_ms)
		return t->too_slow ? "load_slower_than_max_staleness" : "stale_age";
	return NULL;
}

/* Refreshes snapshots before they reach max_staleness, retries failed
 * loads, and so keeps serving continuous while TiDB changes underneath. */
static void timer_cb(struct net_timer *tm)
{
	struct cache *c = tm->data;
	uint64_t now = cache_now_ms();
	for (struct cache_table *t = c->tables; t; t = t->next) {
		if (t->loading || t->state == CACHE_FORGOTTEN)
			continue;
		if (!t->snap) {
			if (now >= t->retry_at_ms)
				start_load(t);
		} else if (now - t->snap->loaded_ms >= c->opt.max_staleness_ms / 2 &&
		           now >= t->retry_at_ms) {
			start_load(t);
		}
	}
	/* The gauges /metrics shows. */
	int64_t servable = 0, oldest = 0;
	for (struct cache_table *t = c->tables; t; t = t->next)
		if (!cache_table_unservable(t, now)) {
			servable++;
			if ((int64_t)(now - t->snap->loaded_ms) > oldest)
				oldest = (int64_t)(now - t->snap->loaded_ms);
		}
	metrics_gauge_set(c->m_memory, (int64_t)snapshot_bytes(c));
	metrics_gauge_set(c->m_tables, servable);
	metrics_gauge_set(c->m_oldest_ms, oldest);
	uint64_t every = c->opt.max_staleness_ms / 8;
	net_timer_start(&c->timer, every < 50 ? 50 : every > 1000 ? 1000 : every);
}

static bool same_name(const char *a, const char *b, size_t bn)
{
	return strlen(a) == bn && strncasecmp(a, b, bn) == 0;
}

struct cache_table *cache_find(struct cache *c, const char *db, size_t db_len, const char *table,
                               size_t table_len)
{
	for (struct cache_table *t = c->tables; t; t = t->next)
		if (t->state != CACHE_FORGOTTEN && same_name(t->db, db, db_len) &&
		    same_name(t->table, table, table_len))
			return t;
	return NULL;
}

/* Hash of the lower-case name db.table: names compare case-insensitively. */
static uint64_t name_hash(const char *db, size_t db_len, const char *table, size_t table_len)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	for (size_t i = 0; i < db_len + 1 + table_len; i++) {
		char ch = i < db_len ? db[i] : i == db_len ? '.' : table[i - db_len - 1];
		h = (h ^ (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch)) * 1099511628211u;
	}
	return h ? h : 1;
}

static struct forgotten *forgotten_find(const struct cache *c, uint64_t name)
{
	for (size_t i = 0; i < FORGOTTEN_MEMORY; i++)
		if (c->forgotten[i].name == name)
			return (struct forgotten *)&c->forgotten[i];
	return NULL;
}

/* An auto-admitted table that cannot load leaves the cache: its snapshot and
 * its place under max_tables go, and its name is refused by admission for a
 * back-off that doubles each time it is forgotten again. */
static void forget(struct cache_table *t)
{
	struct cache *c = t->cache;
	uint64_t now = cache_now_ms();
	uint64_t name = name_hash(t->db, strlen(t->db), t->table, strlen(t->table));
	struct forgotten *f = forgotten_find(c, name);
	if (!f) {
		/* The slot whose back-off ends first. */
		f = &c->forgotten[0];
		for (size_t i = 1; i < FORGOTTEN_MEMORY; i++)
			if (c->forgotten[i].until_ms < f->until_ms)
				f = &c->forgotten[i];
		if (f->until_ms > now)
			log_info("cache: forgetting more failed tables than it remembers (%d); "
			         "the oldest back-off is cut short",
			         FORGOTTEN_MEMORY);
		*f = (struct forgotten){.name = name};
	}
	f->times++;
	f->until_ms = now + retry_delay_ms(f->times > t->fail_streak ? f->times : t->fail_streak);
	log_warn("cache %s.%s: not cached (load failed: %s); not admitted again for %llu s", t->db,
	         t->table, t->last_error, (unsigned long long)((f->until_ms - now + 999) / 1000));
	if (t->snap)
		cache_snapshot_unref(t->snap);
	t->snap = NULL;
	set_table_state(t, CACHE_FORGOTTEN);
	/* Column definitions captured for it are void, whatever it becomes. */
	t->version++;
	t->schema_version++;
	c->n_auto--;
}

static bool system_schema(const char *db, size_t n)
{
	static const char *const names[] = {"mysql", "information_schema", "performance_schema",
	                                    "metrics_schema", "sys"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (same_name(names[i], db, n))
			return true;
	return false;
}

static struct cache_table *add_table(struct cache *c, const char *db, size_t dbn, const char *table,
                                     size_t tn, const char *col, size_t cn, bool auto_admitted)
{
	if (dbn >= 256 || tn >= 256 || cn >= 256)
		return NULL;
	struct cache_table *t = NULL;
	if (auto_admitted)
		for (struct cache_table *x = c->tables; x && !t; x = x->next)
			if (x->state == CACHE_FORGOTTEN)
				t = x;
	if (t) {
		/* Reused: versions go on from the forgotten table's, so nothing
		 * captured for it can match the new one. */
		uint64_t version = t->version + 1, schema_version = t->schema_version + 1;
		struct cache_table *next = t->next;
		memset(t, 0, sizeof(*t));
		t->next = next;
		t->version = version;
		t->schema_version = schema_version;
	} else {
		if (!(t = calloc(1, sizeof(*t))))
			return NULL;
		t->version = 1;
		t->next = c->tables;
		c->tables = t;
		c->n_tables++;
	}
	t->cache = c;
	memcpy(t->db, db, dbn);
	memcpy(t->table, table, tn);
	memcpy(t->column, col, cn);
	t->auto_admitted = auto_admitted;
	if (auto_admitted)
		c->n_auto++;
	start_load(t);
	return t;
}

bool cache_may_admit(const struct cache *c, const char *db, size_t db_len, const char *table,
                     size_t table_len)
{
	if (!c->opt.tables->auto_admit || c->closing || c->n_auto >= c->opt.max_tables ||
	    snapshot_bytes(c) >= c->opt.memory_limit || system_schema(db, db_len) || !db_len ||
	    !table_len || db_len >= 256 || table_len >= 256)
		return false;
	const struct forgotten *f = forgotten_find(c, name_hash(db, db_len, table, table_len));
	return !f || cache_now_ms() >= f->until_ms;
}

struct cache_table *cache_admit(struct cache *c, const char *db, size_t db_len, const char *table,
                                size_t table_len, const char *column, size_t column_len)
{
	struct cache_table *t = cache_find(c, db, db_len, table, table_len);
	if (t || !cache_may_admit(c, db, db_len, table, table_len))
		return t;
	t = add_table(c, db, db_len, table, table_len, column, column_len, true);
	if (t)
		log_info("cache: admitting %s.%s(%s)", t->db, t->table, t->column);
	return t;
}

void cache_set_max_staleness(struct cache *c, uint64_t ms)
{
	c->opt.max_staleness_ms = ms;
}

struct cache *cache_new(const struct cache_options *opt, char *err, size_t errlen)
{
	if (!*opt->user) {
		snprintf(err, errlen,
		         "[cache] tables needs [cache] user (and password) to load them");
		return NULL;
	}
	struct cache *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->opt = *opt;
	snprintf(c->user, sizeof(c->user), "%s", opt->user);
	const char *pw = getenv("VECGATE_CACHE_PASSWORD");
	snprintf(c->password, sizeof(c->password), "%s", pw ? pw : opt->password);
	snprintf(c->host, sizeof(c->host), "%s", opt->host);
	snprintf(c->ca, sizeof(c->ca), "%s", opt->tls_ca_file ? opt->tls_ca_file : "");
	struct metrics_family *f = metrics_family(METRICS_COUNTER, "vecgate_cache_loads_total",
	                                          "Snapshot loads, by outcome.", "result", NULL);
	c->m_loads_ok = metrics_series(f, "ok", NULL);
	c->m_loads_failed = metrics_series(f, "failed", NULL);
	c->m_load_seconds =
	        metrics_histogram("vecgate_cache_load_seconds", "Time to load one snapshot.");
	c->m_rows =
	        metrics_counter("vecgate_cache_loaded_rows_total", "Rows loaded into snapshots.");
	c->m_bytes =
	        metrics_counter("vecgate_cache_loaded_bytes_total", "Bytes of snapshots loaded.");
	c->m_memory = metrics_gauge("vecgate_cache_memory_bytes",
	                            "Memory held by the current snapshots of all cached tables.");
	c->m_tables = metrics_gauge("vecgate_cache_servable_tables",
	                            "Cached tables whose snapshot may answer queries now.");
	c->m_oldest_ms =
	        metrics_gauge("vecgate_cache_staleness_milliseconds",
	                      "Age of the oldest servable snapshot (bounded by max_staleness).");
	for (size_t i = 0; i < opt->tables->n; i++) {
		const struct config_table *ct = &opt->tables->v[i];
		add_table(c, ct->db, strlen(ct->db), ct->table, strlen(ct->table), ct->column,
		          strlen(ct->column), false);
	}
	net_timer_init(opt->loop, &c->timer, timer_cb, c);
	net_timer_start(&c->timer, 100);
	return c;
}

static void timer_closed(struct net_timer *t)
{
	struct cache *c = t->data;
	for (struct cache_table *x = c->tables, *next; x; x = next) {
		next = x->next;
		if (x->snap)
			cache_snapshot_unref(x->snap);
		free(x);
	}
	explicit_bzero(c->password, sizeof(c->password));
	free(c);
}

void cache_free(struct cache *c)
{
	if (!c->closing) {
		c->closing = true;
		net_timer_stop(&c->timer);
	}
	/* Loads in flight finish on their pool thread first; the last one to
	 * return calls back here. */
	if (c->loads_in_flight > 0)
		return;
	net_timer_close(&c->timer, timer_closed);
}

int cache_status_json(const struct cache *c, struct buf *out)
{
	int rc = buf_append(out, "[", 1);
	uint64_t now = cache_now_ms();
	bool first = true;
	for (const struct cache_table *t = c->tables; t && rc == 0; t = t->next) {
		if (t->state == CACHE_FORGOTTEN)
			continue;
		char name[600];
		snprintf(name, sizeof(name), "%s.%s", t->db, t->table);
		const char *why = cache_table_unservable(t, now);
		rc = buf_append(out, first ? "{\"table\":" : ",{\"table\":", first ? 9 : 10);
		first = false;
		if (rc == 0)
			rc = buf_append_json_str(out, name);
		if (rc == 0)
			rc = buf_append(out, ",\"column\":", 10);
		if (rc == 0)
			rc = buf_append_json_str(out, t->column);
		if (rc == 0)
			rc = buf_appendf(
			        out,
			        ",\"state\":\"%s\",\"servable\":%s,\"reason\":\"%s\",\"rows\":%zu,"
			        "\"bytes\":%zu,\"age_ms\":%" PRIu64 ",\"version\":%" PRIu64
			        ",\"snapshot_version\":%" PRIu64
			        ",\"loading\":%s,\"loads\":%" PRIu64 ",\"load_failures\":%" PRIu64
			        ",\"last_error\":",
			        t->state == CACHE_READY   ? "ready"
			        : t->state == CACHE_EMPTY ? "empty"
			                                  : "failed",
			        why ? "false" : "true", why ? why : "",
			        t->snap ? t->snap->n_rows : 0, t->snap ? t->snap->bytes : 0,
			        t->snap ? now - t->snap->loaded_ms : 0, t->version,
			        t->snap ? t->snap->version : 0, t->loading ? "true" : "false",
			        t->loads, t->load_failures);
		if (rc == 0)
			rc = buf_append_json_str(out, t->last_error);
		if (rc == 0)
			rc = buf_append(out, "}", 1);
	}
	return rc ? rc : buf_append(out, "]", 1);
}
