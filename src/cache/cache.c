/* Cached tables: versions, staleness, single-flight background loads. */
#include "cache/cache.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache/loader.h"
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

/* Loads and patches asked for on another loop's thread, started on the
 * cache's own loop (its handles and pool jobs live there). */
struct cache_kick {
	struct net_post post;
	struct cache *c; /* NULL: the cache is gone; the kick frees itself */
};

struct cache {
	struct cache_options opt;
	struct cache_kick *kick;
	bool kick_posted;
	char user[256], password[1024];
	struct cache_table *tables;
	size_t n_tables;
	struct net_timer timer;
	bool closing;
	int loads_in_flight;
	struct metric *m_loads_ok, *m_loads_failed, *m_load_seconds, *m_rows, *m_bytes;
	struct metric *m_memory, *m_tables, *m_oldest_ms;
	struct metric *m_patches_ok, *m_patches_failed, *m_patched_rows, *m_patch_seconds;
	struct metric *m_waits;
	struct metrics_family *m_fallbacks;
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
	struct cache_base *prev; /* referenced while the load runs */
	struct cache_snapshot *snap;
	char err[512];
};

/* ---- the lock of every worker loop (docs/design.md §2) ---- */

static pthread_mutex_t cache_mu;
static pthread_once_t cache_mu_once = PTHREAD_ONCE_INIT;

static void cache_mu_init(void)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&cache_mu, &a);
	pthread_mutexattr_destroy(&a);
}

void cache_lock(void)
{
	pthread_once(&cache_mu_once, cache_mu_init);
	pthread_mutex_lock(&cache_mu);
}

void cache_unlock(void)
{
	pthread_mutex_unlock(&cache_mu);
}

static void kick_cb(struct net_post *p);

/* Asks the cache's loop to start what t->start_wanted and t->patch_wanted
 * ask for. */
static void kick(struct cache *c)
{
	if (c->kick_posted)
		return;
	if (net_loop_post(c->opt.loop, &c->kick->post) == 0)
		c->kick_posted = true;
}

uint64_t cache_now_ms(void)
{
	return core_now_ms();
}

static void start_load(struct cache_table *t);
static void fill_spec(struct cache_table *t, struct cache_load_spec *spec);
static void forget(struct cache_table *t);
static void maybe_patch(struct cache_table *t);
static void pending_prune(struct cache_table *t);
static void pending_clear(struct cache_table *t);
static bool unresolved_after(const struct cache_table *t, uint64_t v);
static void wake_waiters(struct cache_table *t);

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

/* A load failed (t->fail_streak counts it): the next waits. */
static void back_off(struct cache_table *t)
{
	t->failed_at_ms = cache_now_ms();
	t->retry_at_ms = t->failed_at_ms + retry_delay_ms(t->fail_streak);
}

static uint64_t snapshot_bytes(const struct cache *c)
{
	uint64_t n = 0;
	for (const struct cache_table *t = c->tables; t; t = t->next_table)
		n += t->snap ? t->snap->bytes : 0;
	return n;
}

static void load_work(void *data)
{
	struct load_job *j = data;
	j->snap = cache_snapshot_load(&j->spec, j->err, sizeof(j->err));
}

/* A base segment's screen, built on a pool thread after its snapshot is
 * published (src/cache/segment.h): the job holds a reference, so the
 * segment outlives it whatever happens to the table. */
static void screen_work(void *data)
{
	struct cache_segment *seg = data;
	uint64_t t0 = cache_now_ms();
	if (cache_segment_build_screen(seg))
		log_debug("cache: screen of %zu rows built in %" PRIu64 " ms",
		          cache_segment_rows(seg), cache_now_ms() - t0);
}

static void screen_done(void *data, int status)
{
	(void)status;
	cache_lock();
	cache_segment_unref(data);
	cache_unlock();
}

static void build_screen_later(struct cache *c, struct cache_segment *seg)
{
	if (!cache_segment_screen_pending(seg))
		return;
	cache_segment_ref(seg);
	if (net_work_submit(c->opt.loop, screen_work, screen_done, seg) < 0) {
		screen_work(seg); /* no pool: on the loop, once */
		cache_segment_unref(seg);
	}
}

static void load_done_locked(void *data, int status)
{
	struct load_job *j = data;
	struct cache_table *t = j->t;
	struct cache *c = t->cache;
	c->loads_in_flight--;
	t->loading = false;
	cache_base_unref(j->prev);
	j->prev = NULL;
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
		/* Tried again when the back-off ends (the timer), even with a
		 * snapshot: the one it was to replace may be stale by writes,
		 * which nothing else reloads. */
		back_off(t);
		if (t->auto_admitted && !c->closing &&
		    (!t->snap || t->fail_streak >= AUTO_FORGET_FAILURES)) {
			free(j);
			forget(t);
			return;
		}
	} else {
		/* Published at once unless patches moved the published version
		 * past the load's start: then it catches up first (as t->next,
		 * patched with the writes after its start). */
		struct cache_snapshot *old = NULL;
		if (!t->snap || t->snap->version <= j->snap->version) {
			old = t->snap;
			t->snap = j->snap;
			if (t->next && t->next->version <= j->snap->version) {
				cache_snapshot_unref(t->next);
				t->next = NULL;
			}
		} else {
			cache_snapshot_unref(t->next);
			t->next = j->snap;
		}
		set_table_state(t, CACHE_READY);
		t->loads++;
		t->fail_streak = 0;
		t->last_error[0] = 0;
		metrics_inc(c->m_loads_ok, 1);
		metrics_observe_ns(c->m_load_seconds, j->snap->load_ms * 1000000u);
		metrics_inc(c->m_rows, j->snap->n_rows);
		metrics_inc(c->m_bytes, j->snap->bytes);
		log_info("cache %s.%s: loaded %zu rows (%zu unchanged, not parsed again), %zu "
		         "bytes in %" PRIu64 " ms (version %" PRIu64 "%s)",
		         t->db, t->table, j->snap->n_rows, j->snap->base->reused_rows,
		         j->snap->bytes, j->snap->load_ms, j->snap->version,
		         j->snap->version == t->version ? "" : ", already stale");
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
			t->fail_streak++;
			back_off(t);
		}
		/* Kept (published, or catching up): its screen now. */
		if (t->snap == j->snap || t->next == j->snap)
			build_screen_later(c, j->snap->base->rows);
	}
	free(j);
	if (c->closing) {
		if (c->loads_in_flight == 0)
			cache_free(c);
		return;
	}
	uint64_t built = t->next ? t->next->version : t->snap ? t->snap->version : 0;
	/* After a failure the timer retries, after the back-off. */
	if (t->state != CACHE_FAILED && t->last_error[0] == 0 &&
	    (t->reload_again || unresolved_after(t, built))) {
		t->reload_again = false;
		start_load(t);
	}
	pending_prune(t);
	maybe_patch(t);
	if (!t->patching)
		wake_waiters(t);
}

static void load_done(void *data, int status)
{
	cache_lock();
	load_done_locked(data, status);
	cache_unlock();
}

/* Whether a load asked for now waits: after a failure, a write or a failed
 * patch may ask again only RETRY_AFTER_FAILURE_MS later (otherwise every
 * write to a table that cannot load would open a connection to the
 * database that fails again), and no sooner than the table's own retry
 * when that comes first. Meanwhile the snapshot is stale and TiDB answers
 * its reads. DDL does not wait: it may be what makes the load work. */
static bool load_waits(const struct cache_table *t, uint64_t now)
{
	return t->fail_streak > 0 && now < t->retry_at_ms &&
	       now - t->failed_at_ms < RETRY_AFTER_FAILURE_MS;
}

static void start_load_now(struct cache_table *t);

static void start_load(struct cache_table *t)
{
	if (!t->loading && !t->cache->closing && load_waits(t, cache_now_ms())) {
		t->load_asked = true; /* the timer starts it */
		return;
	}
	start_load_now(t);
}

static void start_load_now(struct cache_table *t)
{
	struct cache *c = t->cache;
	if (t->loading || c->closing)
		return;
	if (!net_loop_is_current(c->opt.loop)) {
		t->start_wanted = true;
		kick(c);
		return;
	}
	t->start_wanted = false;
	t->load_asked = false;
	struct load_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->t = t;
	fill_spec(t, &j->spec);
	/* A refresh copies the rows that did not change from the published
	 * base instead of parsing them again. */
	if (t->snap) {
		j->prev = t->snap->base;
		cache_base_ref(j->prev);
		j->spec.prev = j->prev;
	}
	if (net_work_submit(c->opt.loop, load_work, load_done, j) < 0) {
		cache_base_unref(j->prev);
		free(j);
		return;
	}
	t->loading = true;
	t->load_version = t->version;
	t->reload_again = false;
	c->loads_in_flight++;
}

/* ---- live snapshots ---- */

struct cache_pending {
	uint64_t version;
	bool resolved; /* w names every row the write touched */
	struct cache_write w;
};

void cache_write_init(struct cache_write *w)
{
	memset(w, 0, sizeof(*w));
	buf_init(&w->keys);
}

void cache_write_free(struct cache_write *w)
{
	if (!w)
		return;
	buf_free(&w->keys);
	free(w->ranges);
	free(w->range_rows);
	cache_write_init(w);
}

int cache_write_add_range(struct cache_write *w, struct cache_key_range r, size_t rows)
{
	struct cache_key_range *v = realloc(w->ranges, (w->nranges + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	w->ranges = v;
	size_t *n = realloc(w->range_rows, (w->nranges + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->range_rows = n;
	w->ranges[w->nranges] = r;
	w->range_rows[w->nranges++] = rows;
	return 0;
}

int cache_write_merge(struct cache_write *dst, const struct cache_write *src)
{
	if (buf_append(&dst->keys, src->keys.data, src->keys.len) < 0)
		return -ENOMEM;
	dst->nkeys += src->nkeys;
	for (size_t i = 0; i < src->nranges; i++)
		if (cache_write_add_range(dst, src->ranges[i], src->range_rows[i]) < 0)
			return -ENOMEM;
	return 0;
}

static void count_fallback(struct cache *c, const char *reason)
{
	metrics_inc(metrics_series(c->m_fallbacks, reason, NULL), 1);
}

static void pending_add(struct cache_table *t, bool resolved, struct cache_write *w)
{
	if (t->n_pending == t->pending_cap) {
		size_t cap = t->pending_cap ? t->pending_cap * 2 : 16;
		struct cache_pending *v = realloc(t->pending, cap * sizeof(*v));
		if (!v) {
			/* Without a record this version cannot be reached by
			 * patches: only a load covers it. */
			t->lost_version = t->version;
			if (w)
				cache_write_free(w);
			return;
		}
		t->pending = v;
		t->pending_cap = cap;
	}
	struct cache_pending *e = &t->pending[t->n_pending++];
	e->version = t->version;
	e->resolved = resolved;
	cache_write_init(&e->w);
	if (w) {
		e->w = *w;
		cache_write_init(w);
	}
}

/* Drops entries every snapshot anyone builds on already reflects. */
static void pending_prune(struct cache_table *t)
{
	uint64_t keep_after = t->snap ? t->snap->version : 0;
	if (t->next && t->next->version < keep_after)
		keep_after = t->next->version;
	if (t->loading && t->load_version < keep_after)
		keep_after = t->load_version;
	size_t i = 0;
	while (i < t->n_pending && t->pending[i].version <= keep_after)
		cache_write_free(&t->pending[i++].w);
	if (i) {
		memmove(t->pending, t->pending + i, (t->n_pending - i) * sizeof(*t->pending));
		t->n_pending -= i;
	}
}

static void pending_clear(struct cache_table *t)
{
	for (size_t i = 0; i < t->n_pending; i++)
		cache_write_free(&t->pending[i].w);
	t->n_pending = 0;
}

/* Whether a write after version v cannot be patched (only a load covers it). */
static bool unresolved_after(const struct cache_table *t, uint64_t v)
{
	if (t->lost_version > v)
		return true;
	for (size_t i = 0; i < t->n_pending; i++)
		if (t->pending[i].version > v && !t->pending[i].resolved)
			return true;
	return false;
}

static void wake_waiters(struct cache_table *t)
{
	/* The ones waiting now: a read that waits again joins the table's
	 * list anew and is woken by the next publish, not by this one. */
	struct list_node woken, *n;
	list_init(&woken);
	while ((n = list_first(&t->waiters))) {
		list_remove(n);
		list_push_back(&woken, n);
	}
	while ((n = list_first(&woken))) {
		list_remove(n);
		struct cache_waiter *w = container_of(n, struct cache_waiter, link);
		w->cb(w);
	}
}

struct patch_job {
	struct cache_table *t;
	struct cache_load_spec spec;
	struct cache_snapshot *target; /* referenced */
	struct cache_write w;          /* every key of the entries it covers */
	uint64_t version;
	MYSQL *conn;
	struct cache_snapshot *result;
	size_t rows;
	uint64_t t0;
	int rc;
	char err[512];
};

static void fill_spec(struct cache_table *t, struct cache_load_spec *spec)
{
	struct cache *c = t->cache;
	*spec = (struct cache_load_spec){
	        .upstream = c->opt.upstream,
	        .user = c->user,
	        .password = c->password,
	        .db = t->db,
	        .table = t->table,
	        .column = t->column,
	        .version = t->version,
	        .memory_limit = c->opt.memory_limit,
	};
}

/* The rows of an AUTO_INCREMENT range read back must be exactly those the
 * insert reported: otherwise its keys were not consecutive and rows would
 * be missed. */
static bool ranges_complete(const struct patch_job *j, const struct cache_segment *rows)
{
	const struct cache_base *b = j->target->base;
	for (size_t i = 0; i < j->w.nranges; i++) {
		size_t have = 0;
		for (size_t r = 0; r < cache_segment_rows(rows); r++) {
			const uint8_t *p;
			size_t n;
			char num[32];
			if (!cache_segment_cell(rows, r, b->key_cols[0], NULL, &p, &n) ||
			    n >= sizeof(num))
				continue;
			memcpy(num, p, n);
			num[n] = 0;
			const struct cache_key_range *rg = &j->w.ranges[i];
			if (rg->is_signed) {
				long long v = strtoll(num, NULL, 10);
				have += v >= (long long)rg->lo && v <= (long long)rg->hi;
			} else {
				unsigned long long v = strtoull(num, NULL, 10);
				have += v >= rg->lo && v <= rg->hi;
			}
		}
		if (have != j->w.range_rows[i])
			return false;
	}
	return true;
}

static void patch_work(void *data)
{
	struct patch_job *j = data;
	struct cache_segment *rows = NULL;
	j->rc = cache_patch_read(&j->conn, &j->spec, j->target->base, &j->w.keys, j->w.nkeys,
	                         j->w.ranges, j->w.nranges, &rows, j->err, sizeof(j->err));
	if (j->rc < 0)
		return;
	j->rows = cache_segment_rows(rows);
	if (!ranges_complete(j, rows)) {
		snprintf(j->err, sizeof(j->err),
		         "an AUTO_INCREMENT insert's rows are not its reported range");
		j->rc = -ERANGE;
	} else {
		struct cache_patch p = {.nkeys = j->w.nkeys, .rows = rows, .version = j->version};
		p.keys = j->w.keys;
		j->result = cache_snapshot_patch(j->target, &p);
		if (!j->result) {
			snprintf(j->err, sizeof(j->err), "out of memory");
			j->rc = -ENOMEM;
		}
	}
	cache_segment_unref(rows);
}

static void patch_done_locked(void *data, int status)
{
	struct patch_job *j = data;
	struct cache_table *t = j->t;
	struct cache *c = t->cache;
	c->loads_in_flight--;
	t->patching = false;
	t->patch_conn = j->conn;
	if (status < 0 && j->rc == 0) {
		j->rc = -ECANCELED;
		snprintf(j->err, sizeof(j->err), "cancelled");
	}
	if (c->closing || t->state == CACHE_FORGOTTEN) {
		cache_snapshot_unref(j->result);
		if (t->state == CACHE_FORGOTTEN && t->patch_conn) {
			/* Nothing will patch a forgotten table again. */
			mysql_close(t->patch_conn);
			t->patch_conn = NULL;
		}
	} else if (j->rc < 0) {
		t->patch_failures++;
		metrics_inc(c->m_patches_failed, 1);
		count_fallback(c, j->rc == -ERANGE ? "range_check" : "read_back_failed");
		log_warn("cache %s.%s: patch failed, reloading: %s", t->db, t->table, j->err);
		/* The writes stay pending, unresolved: a reload covers them. */
		for (size_t i = 0; i < t->n_pending; i++)
			if (t->pending[i].version <= j->version)
				t->pending[i].resolved = false;
		if (t->loading)
			t->reload_again = true;
		else
			start_load(t);
	} else if (j->target == t->next || j->target == t->snap) {
		metrics_inc(c->m_patches_ok, 1);
		metrics_inc(c->m_patched_rows, j->rows);
		metrics_observe_ns(c->m_patch_seconds, (core_now_ms() - j->t0) * 1000000u);
		t->patches++;
		t->patched_rows += j->rows;
		if (j->target == t->next) {
			cache_snapshot_unref(t->next);
			t->next = j->result;
		} else {
			cache_snapshot_unref(t->snap);
			t->snap = j->result;
		}
		j->result = NULL;
		/* A reloaded base that caught up replaces the patched one. */
		if (t->next && (!t->snap || t->next->version >= t->snap->version)) {
			cache_snapshot_unref(t->snap);
			t->snap = t->next;
			t->next = NULL;
		}
		/* A delta as large as a sixteenth of the base: a reload folds
		 * it in (patches go on meanwhile). */
		if (t->snap && t->snap->delta &&
		    cache_segment_rows(t->snap->delta) > 1024 + t->snap->n_base / 16)
			start_load(t);
	} else {
		/* The version it patched is not current any more: its keys are
		 * still pending and are read again. */
		cache_snapshot_unref(j->result);
	}
	cache_snapshot_unref(j->target);
	cache_write_free(&j->w);
	free(j);
	if (c->closing) {
		if (c->loads_in_flight == 0)
			cache_free(c);
		return;
	}
	pending_prune(t);
	maybe_patch(t);
	/* Each waiting read decides again: served when this version has
	 * every write committed before it arrived, else waits again. */
	wake_waiters(t);
}

static void patch_done(void *data, int status)
{
	cache_lock();
	patch_done_locked(data, status);
	cache_unlock();
}

/* What other loops asked for (kick): loads and patches start here, and
 * reads that waited for a patch that cannot start decide again. */
static void kick_cb(struct net_post *p)
{
	struct cache_kick *k = container_of(p, struct cache_kick, post);
	cache_lock();
	struct cache *c = k->c;
	if (!c) {
		free(k);
	} else {
		c->kick_posted = false;
		for (struct cache_table *t = c->tables; t; t = t->next_table) {
			if (t->start_wanted) {
				t->start_wanted = false;
				start_load_now(t); /* it waited already where asked */
			}
			if (t->patch_wanted) {
				t->patch_wanted = false;
				maybe_patch(t);
				if (!t->patching)
					wake_waiters(t);
			}
		}
	}
	cache_unlock();
}

/* Starts a patch of the snapshot in catch-up (or the published one) with
 * every write after its version, when they are all resolved. */
static void maybe_patch(struct cache_table *t)
{
	struct cache *c = t->cache;
	if (t->patching || c->closing || t->state == CACHE_FORGOTTEN)
		return;
	if (!net_loop_is_current(c->opt.loop)) {
		t->patch_wanted = true;
		kick(c);
		return;
	}
	t->patch_wanted = false;
	struct cache_snapshot *target = t->next ? t->next : t->snap;
	if (!target || target->version >= t->version || unresolved_after(t, target->version))
		return;
	struct patch_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	cache_write_init(&j->w);
	for (size_t i = 0; i < t->n_pending; i++)
		if (t->pending[i].version > target->version &&
		    cache_write_merge(&j->w, &t->pending[i].w) < 0) {
			cache_write_free(&j->w);
			free(j);
			return;
		}
	j->t = t;
	fill_spec(t, &j->spec);
	j->target = target;
	cache_snapshot_ref(target);
	j->version = t->version;
	j->conn = t->patch_conn;
	j->t0 = core_now_ms();
	t->patch_conn = NULL;
	if (net_work_submit(c->opt.loop, patch_work, patch_done, j) < 0) {
		t->patch_conn = j->conn;
		cache_snapshot_unref(target);
		cache_write_free(&j->w);
		free(j);
		return;
	}
	t->patching = true;
	c->loads_in_flight++;
}

const struct cache_base *cache_table_base(const struct cache_table *t)
{
	return t->snap ? t->snap->base : NULL;
}

void cache_table_written(struct cache_table *t, struct cache_write *w, const char *reason)
{
	struct cache *c = t->cache;
	if (t->state == CACHE_FORGOTTEN) {
		cache_write_free(w);
		return;
	}
	const char *why = !c->opt.patches ? "off"
	                  : !w            ? reason
	                  : !t->snap      ? "not_loaded"
	                                  : t->snap->base->why_no_key;
	if (why) {
		cache_write_free(w);
		count_fallback(c, why);
		cache_table_changed(t, false);
		return;
	}
	t->version++;
	pending_add(t, true, w);
	maybe_patch(t);
}

bool cache_table_wait(struct cache_table *t, struct cache_waiter *w)
{
	struct cache_snapshot *target = t->next ? t->next : t->snap;
	if (!target || !(t->patching || t->patch_wanted) || unresolved_after(t, target->version))
		return false;
	list_push_back(&t->waiters, &w->link);
	metrics_inc(t->cache->m_waits, 1);
	return true;
}

void cache_waiter_cancel(struct cache_waiter *w)
{
	if (w->link.next && list_linked(&w->link))
		list_remove(&w->link);
}

void cache_table_changed(struct cache_table *t, bool ddl)
{
	if (t->state == CACHE_FORGOTTEN)
		return; /* a session's stale pointer: nothing is cached there now */
	t->version++;
	pending_add(t, false, NULL);
	if (ddl)
		t->schema_version++;
	/* Reads waiting for a patch would now wait for a reload: TiDB
	 * answers them meanwhile. */
	wake_waiters(t);
	if (t->loading)
		t->reload_again = true; /* it read before this write */
	else if (ddl)
		start_load_now(t);
	else
		start_load(t);
}

void cache_all_changed(struct cache *c)
{
	for (struct cache_table *t = c->tables; t; t = t->next_table)
		if (t->state != CACHE_FORGOTTEN)
			cache_table_changed(t, true);
}

const char *cache_table_unservable(const struct cache_table *t, uint64_t now_ms)
{
	return cache_table_unservable_for(t, now_ms, t->version);
}

const char *cache_table_unservable_for(const struct cache_table *t, uint64_t now_ms,
                                       uint64_t need_version)
{
	if (!t->snap)
		return t->state == CACHE_FAILED ? "load_failed" : "loading";
	if (t->snap->version < need_version)
		return "stale_write";
	if (now_ms - t->snap->loaded_ms >= t->cache->opt.max_staleness_ms)
		return t->too_slow ? "load_slower_than_max_staleness" : "stale_age";
	return NULL;
}

/* Refreshes snapshots before they reach max_staleness, retries failed
 * loads, and so keeps serving continuous while TiDB changes underneath. */
static void timer_cb_locked(struct net_timer *tm)
{
	struct cache *c = tm->data;
	uint64_t now = cache_now_ms();
	for (struct cache_table *t = c->tables; t; t = t->next_table) {
		if (t->loading || t->state == CACHE_FORGOTTEN)
			continue;
		if (!t->snap || t->fail_streak > 0) {
			if (now >= t->retry_at_ms || (t->load_asked && !load_waits(t, now)))
				start_load_now(t);
		} else if (now - t->snap->loaded_ms >= c->opt.max_staleness_ms / 2 &&
		           now >= t->retry_at_ms) {
			start_load(t);
		}
	}
	/* The gauges /metrics shows. */
	int64_t servable = 0, oldest = 0;
	for (struct cache_table *t = c->tables; t; t = t->next_table)
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

static void timer_cb(struct net_timer *tm)
{
	cache_lock();
	timer_cb_locked(tm);
	cache_unlock();
}

static bool same_name(const char *a, const char *b, size_t bn)
{
	return strlen(a) == bn && strncasecmp(a, b, bn) == 0;
}

struct cache_table *cache_find(struct cache *c, const char *db, size_t db_len, const char *table,
                               size_t table_len)
{
	for (struct cache_table *t = c->tables; t; t = t->next_table)
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
	cache_snapshot_unref(t->next);
	t->next = NULL;
	pending_clear(t);
	free(t->pending);
	t->pending = NULL;
	t->pending_cap = 0;
	if (t->patch_conn)
		mysql_close(t->patch_conn);
	t->patch_conn = NULL;
	wake_waiters(t);
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
		for (struct cache_table *x = c->tables; x && !t; x = x->next_table)
			if (x->state == CACHE_FORGOTTEN && !x->loading && !x->patching)
				t = x;
	if (t) {
		/* Reused: versions go on from the forgotten table's, so nothing
		 * captured for it can match the new one. */
		uint64_t version = t->version + 1, schema_version = t->schema_version + 1;
		struct cache_table *next = t->next_table;
		memset(t, 0, sizeof(*t));
		t->next_table = next;
		t->version = version;
		t->schema_version = schema_version;
	} else {
		if (!(t = calloc(1, sizeof(*t))))
			return NULL;
		t->version = 1;
		t->next_table = c->tables;
		c->tables = t;
		c->n_tables++;
	}
	t->cache = c;
	list_init(&t->waiters);
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
	cache_lock();
	c->opt.max_staleness_ms = ms;
	cache_unlock();
}

struct cache *cache_new(const struct cache_options *opt, char *err, size_t errlen)
{
	if (!*opt->user) {
		snprintf(err, errlen,
		         "[cache] tables needs [cache] user (and password) to load them");
		return NULL;
	}
	struct cache *c = calloc(1, sizeof(*c));
	if (!c || !(c->kick = calloc(1, sizeof(*c->kick)))) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->kick->c = c;
	c->kick->post.fn = kick_cb;
	c->opt = *opt;
	snprintf(c->user, sizeof(c->user), "%s", opt->user);
	const char *pw = getenv("VECGATE_CACHE_PASSWORD");
	snprintf(c->password, sizeof(c->password), "%s", pw ? pw : opt->password);
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
	f = metrics_family(METRICS_COUNTER, "vecgate_cache_patches_total",
	                   "Patches of snapshots with rows read back after writes through vecgate, "
	                   "by outcome.",
	                   "result", NULL);
	c->m_patches_ok = metrics_series(f, "ok", NULL);
	c->m_patches_failed = metrics_series(f, "failed", NULL);
	c->m_patched_rows =
	        metrics_counter("vecgate_cache_patched_rows_total", "Rows read back by patches.");
	c->m_patch_seconds = metrics_histogram(
	        "vecgate_cache_patch_seconds",
	        "Time from starting a patch's read-back to publishing the patched version.");
	c->m_waits = metrics_counter("vecgate_cache_read_waits_total",
	                             "Reads of a table with a patch in flight that waited for it "
	                             "instead of going to TiDB.");
	c->m_fallbacks = metrics_family(
	        METRICS_COUNTER, "vecgate_cache_patch_fallbacks_total",
	        "Writes through vecgate that made a whole snapshot stale (reloaded) instead of "
	        "patching it, by reason.",
	        "reason", NULL);
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
	cache_lock();
	/* A kick still queued on the loop finds the cache gone and frees
	 * itself. */
	if (c->kick_posted)
		c->kick->c = NULL;
	else
		free(c->kick);
	for (struct cache_table *x = c->tables, *next; x; x = next) {
		next = x->next_table;
		if (x->snap)
			cache_snapshot_unref(x->snap);
		cache_snapshot_unref(x->next);
		pending_clear(x);
		free(x->pending);
		if (x->patch_conn)
			mysql_close(x->patch_conn);
		free(x);
	}
	explicit_bzero(c->password, sizeof(c->password));
	free(c);
	cache_unlock();
}

static void cache_free_locked(struct cache *c);

void cache_free(struct cache *c)
{
	cache_lock();
	cache_free_locked(c);
	cache_unlock();
}

static void cache_free_locked(struct cache *c)
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

/* The int8 screens' part of a snapshot's bytes (design.md section 6). */
static size_t snapshot_screen_bytes(const struct cache_snapshot *s)
{
	return cache_segment_screen_bytes(s->base->rows) +
	       (s->delta ? cache_segment_screen_bytes(s->delta) : 0);
}

static int cache_status_json_locked(const struct cache *c, struct buf *out);

int cache_status_json(const struct cache *c, struct buf *out)
{
	cache_lock();
	int rc = cache_status_json_locked(c, out);
	cache_unlock();
	return rc;
}

static int cache_status_json_locked(const struct cache *c, struct buf *out)
{
	int rc = buf_append(out, "[", 1);
	uint64_t now = cache_now_ms();
	bool first = true;
	for (const struct cache_table *t = c->tables; t && rc == 0; t = t->next_table) {
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
			        "\"bytes\":%zu,\"screen_bytes\":%zu,\"screen_pending\":%s,\"age_"
			        "ms\":%" PRIu64 ",\"version\":%" PRIu64
			        ",\"snapshot_version\":%" PRIu64
			        ",\"loading\":%s,\"loads\":%" PRIu64 ",\"load_failures\":%" PRIu64
			        ",\"delta_rows\":%zu,\"replaced_rows\":%zu,\"patches\":%" PRIu64
			        ",\"patched_rows\":%" PRIu64 ",\"patch_failures\":%" PRIu64
			        ",\"pending_writes\":%zu,\"patch_key\":\"%s\",\"reused_rows\":%zu,"
			        "\"arith\":\"%s\",\"arith_matches\":{\"separate\":%" PRIu64
			        ",\"fused\":%" PRIu64 "},\"last_error\":",
			        t->state == CACHE_READY   ? "ready"
			        : t->state == CACHE_EMPTY ? "empty"
			                                  : "failed",
			        why ? "false" : "true", why ? why : "",
			        t->snap ? cache_snapshot_live_rows(t->snap) : 0,
			        t->snap ? t->snap->bytes : 0,
			        t->snap ? snapshot_screen_bytes(t->snap) : 0,
			        t->snap && cache_segment_screen_pending(t->snap->base->rows)
			                ? "true"
			                : "false",
			        t->snap ? now - t->snap->loaded_ms : 0, t->version,
			        t->snap ? t->snap->version : 0, t->loading ? "true" : "false",
			        t->loads, t->load_failures,
			        t->snap && t->snap->delta ? cache_segment_rows(t->snap->delta) : 0,
			        t->snap ? t->snap->n_dead : 0, t->patches, t->patched_rows,
			        t->patch_failures, t->n_pending,
			        !t->snap                    ? ""
			        : t->snap->base->why_no_key ? t->snap->base->why_no_key
			                                    : "ok",
			        t->snap ? t->snap->base->reused_rows : 0, vec_arith_name(t->arith),
			        t->arith_matches[VEC_ARITH_SEPARATE],
			        t->arith_matches[VEC_ARITH_FUSED]);
		if (rc == 0)
			rc = buf_append_json_str(out, t->last_error);
		if (rc == 0)
			rc = buf_append(out, "}", 1);
	}
	return rc ? rc : buf_append(out, "]", 1);
}
