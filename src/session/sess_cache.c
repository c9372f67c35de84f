/* A session's use of the vector cache: whether a recognised kNN statement
 * may be answered from memory, the answer's computation on a pool thread,
 * the session's prepared statements, and admission of new tables. */
#include "session/sess_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "cache/rcache.h"
#include "cache/serve.h"
#include "cache/shape.h"
#include "cache/verify.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "net/net.h"
#include "proto/answer.h"
#include "proto/command.h"
#include "proto/mysql.h"
#include "proto/resp.h"
#include "session/sess_state.h"
#include "sql/classify.h"
#include "sql/keys.h"
#include "sql/knn.h"

#define MAX_STATEMENTS 16

static struct {
	bool ready;
	struct metric *hits, *misses, *result_hits, *renewing;
	struct metrics_family *bypass;
	struct metric *latency;
	struct metric *batched, *shared_passes, *split, *screened, *gathered, *joined;
} m;

struct bypass_reason {
	const char *name;
	struct metric *m;
};
static struct bypass_reason bypass_reasons[32];
static size_t n_bypass_reasons;

/* The list of reasons is shared by every loop: under the cache's lock. */
static void count_bypass(const char *reason)
{
	cache_lock();
	size_t i = 0;
	while (i < n_bypass_reasons && bypass_reasons[i].name != reason &&
	       strcmp(bypass_reasons[i].name, reason) != 0)
		i++;
	if (i == n_bypass_reasons && i < sizeof(bypass_reasons) / sizeof(bypass_reasons[0])) {
		bypass_reasons[i].name = reason;
		bypass_reasons[i].m = metrics_series(m.bypass, reason, NULL);
		n_bypass_reasons++;
	}
	if (i < n_bypass_reasons)
		metrics_inc(bypass_reasons[i].m, 1);
	cache_unlock();
}

static void metrics_setup(void)
{
	if (m.ready)
		return;
	m.ready = true;
	struct metrics_family *f = metrics_family(
	        METRICS_COUNTER, "vecgate_cache_queries_total",
	        "Recognised kNN queries, by how they were answered.", "result", NULL);
	m.hits = metrics_series(f, "hit", NULL);
	m.result_hits = metrics_series(f, "result_cache_hit", NULL);
	m.misses = metrics_series(f, "miss", NULL);
	m.bypass =
	        metrics_family(METRICS_COUNTER, "vecgate_cache_bypass_total",
	                       "Recognised kNN queries sent to TiDB, by reason.", "reason", NULL);
	m.latency =
	        metrics_histogram("vecgate_cache_answer_seconds",
	                          "Time to answer a kNN query from the cache (scan and encoding).");
	m.batched = metrics_counter("vecgate_cache_batched_queries_total",
	                            "kNN queries answered by one job together with other queries "
	                            "of the same table snapshot.");
	m.shared_passes = metrics_counter("vecgate_cache_shared_passes_total",
	                                  "Passes over a segment (its int8 screen or its "
	                                  "float32 vectors) shared by several queries.");
	m.split = metrics_counter("vecgate_cache_split_scans_total",
	                          "kNN queries whose scan was split over several threads.");
	m.screened = metrics_counter("vecgate_cache_screened_scans_total",
	                             "Segment scans that read the int8 screen first and only the "
	                             "candidate blocks in float32.");
	m.renewing = metrics_counter("vecgate_cache_renewal_grace_total",
	                             "kNN queries answered from memory under a proof past "
	                             "proof_max_age while another session of the same identity "
	                             "renewed it.");
	m.gathered =
	        metrics_counter("vecgate_cache_gathered_passes_total",
	                        "Shared passes that waited (at most 1 ms) for the next queries "
	                        "of the sessions the previous pass had just answered.");
	m.joined = metrics_counter("vecgate_cache_pass_joins_total",
	                           "kNN queries that joined a shared pass while it ran (and "
	                           "wrapped around to the blocks it had read before they came).");
}

/* A prepared statement, as far as the cache cares. */
struct stmt {
	uint32_t id;
	char *sql;
	size_t len;
	uint16_t nparams;
	uint16_t *types; /* the last bound parameter types */
	bool long_data;  /* COM_STMT_SEND_LONG_DATA since the last execute */
	struct stmt *next;
};

struct sess_cache {
	struct proxy_cache *pc;
	uv_loop_t *loop;
	const struct sess_cache_ops *ops;
	void *owner;
	struct sess_state st;
	bool deprecate_eof; /* negotiated at login: part of a proof's key */
	/* The command in flight. */
	uint8_t cmd;
	uint16_t cmd_status; /* the session's status when it arrived */
	char *cmd_copy;      /* its payload, kept while it may be served */
	size_t cmd_len;
	struct sql_class cls[MAX_STATEMENTS];
	size_t ncls;
	bool cls_unknown;
	char *text; /* the statement text the classes point into */
	size_t text_len;
	struct stmt *exec_stmt;
	/* An executed write's parameters, for its keys. */
	struct cache_param *exec_params;
	char *exec_scratch;
	bool exec_params_ok;
	char pending_db[256];
	bool pending_db_set;
	struct cache_capture *cap;
	/* cap renews the proof of shape key renew_key (shape.h renewing_ms). */
	bool renewing;
	uint64_t renew_key;
	/* A kNN query on a table not cached yet: admitted (tables = auto) only
	 * if the database answers it. */
	bool admit_pending;
	char admit_db[256], admit_table[256], admit_column[256];
	/* Waiting for a patch of the table the command reads (cmd_copy kept). */
	struct cache_waiter waiter;
	uint64_t wait_need; /* the table version when the waiting read arrived */
	/* The command is decided again after its answer from memory could not
	 * be told apart in the two arithmetics: TiDB answers, and its answer is
	 * compared (design.md §8). */
	bool force_capture;
	int jobs;      /* serve jobs on pool threads, and wakes posted to its loop */
	bool detached; /* the session is gone; the last job frees this */
	/* The table's wake-up, handed from the cache's loop to this session's
	 * (worker loops, docs/design.md §2). */
	struct net_post wake;
	struct stmt *stmts;
};

static void waiter_cb(struct cache_waiter *w);
static void decide_again(struct sess_cache *kc);
struct pump_post;
static struct pump_post *pump_post_of(uv_loop_t *loop);
static void batches_setup(void);

/* ---- the cache as sess_state sees it ---- */

static struct cache_table *state_find(void *ctx, const char *db, const char *table)
{
	struct sess_cache *kc = ctx;
	return cache_find(kc->pc->cache, db, strlen(db), table, strlen(table));
}

static void state_written(void *ctx, struct cache_table *t, void *keys, const char *reason)
{
	(void)ctx;
	struct cache_write *w = keys;
	cache_table_written(t, w, reason);
	free(w);
}

static bool state_keys_merge(void *ctx, void *into, void *from)
{
	(void)ctx;
	bool ok = cache_write_merge(into, from) == 0;
	cache_write_free(from);
	free(from);
	if (!ok) {
		cache_write_free(into);
		free(into);
	}
	return ok;
}

static void state_keys_free(void *ctx, void *keys)
{
	(void)ctx;
	cache_write_free(keys);
	free(keys);
}

static void state_ddl(void *ctx, struct cache_table *t)
{
	struct sess_cache *kc = ctx;
	cache_table_changed(t, true);
	cache_shapes_drop_table(kc->pc->shapes, t);
}

static void state_all_changed(void *ctx)
{
	struct sess_cache *kc = ctx;
	cache_all_changed(kc->pc->cache);
}

static void state_privileges(void *ctx)
{
	struct sess_cache *kc = ctx;
	cache_shapes_drop_table(kc->pc->shapes, NULL);
}

static const struct sess_state_ops state_ops = {
        .find = state_find,
        .written = state_written,
        .keys_merge = state_keys_merge,
        .keys_free = state_keys_free,
        .ddl = state_ddl,
        .all_changed = state_all_changed,
        .privileges_changed = state_privileges,
};

/* ---- lifetime ---- */

struct proxy_cache *proxy_cache_new(struct cache *c, size_t result_cache_bytes,
                                    uint64_t proof_max_age_ms)
{
	metrics_setup();
	batches_setup();
	struct proxy_cache *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->cache = c;
	/* A user's right to read an answer was proved by TiDB answering it;
	 * privileges changed directly on TiDB are not seen by vecgate, so the
	 * proof is renewed at least this often. */
	pc->proof_max_age_ms = proof_max_age_ms;
	pc->shapes = cache_shapes_new(20000);
	pc->results = result_cache_bytes ? rcache_new(result_cache_bytes) : NULL;
	if (!pc->shapes) {
		rcache_free(pc->results);
		free(pc);
		return NULL;
	}
	return pc;
}

void proxy_cache_free(struct proxy_cache *pc)
{
	if (!pc)
		return;
	cache_shapes_free(pc->shapes);
	rcache_free(pc->results);
	free(pc);
}

struct sess_cache *sess_cache_new(struct proxy_cache *pc, uv_loop_t *loop,
                                  const struct sess_cache_ops *ops, void *owner)
{
	struct sess_cache *kc = calloc(1, sizeof(*kc));
	if (!kc)
		return NULL;
	kc->pc = pc;
	kc->loop = loop;
	kc->ops = ops;
	kc->owner = owner;
	list_init(&kc->waiter.link);
	kc->waiter.cb = waiter_cb;
	sess_state_init(&kc->st, &state_ops, kc);
	cache_lock();
	bool registered = pump_post_of(loop) != NULL;
	cache_unlock();
	if (!registered) {
		free(kc);
		return NULL;
	}
	return kc;
}

static void stmt_free(struct stmt *st)
{
	free(st->sql);
	free(st->types);
	free(st);
}

static void free_stmts(struct sess_cache *kc)
{
	while (kc->stmts) {
		struct stmt *st = kc->stmts;
		kc->stmts = st->next;
		stmt_free(st);
	}
}

/* This session's renewal ended (its capture is about to be freed), under
 * cache_lock. A comparison of its answer that still runs ends the renewal
 * itself; a renewal that renewed the proof has cleared renewing_ms. One
 * that did not (TiDB refused the query, nothing could be compared) leaves
 * the proof expired and ends the answers under it: the shape's queries go
 * to TiDB until a renewal succeeds. */
static void end_renewal(struct sess_cache *kc)
{
	if (!kc->renewing)
		return;
	kc->renewing = false;
	struct cache_shape *sh = cache_shapes_find(kc->pc->shapes, kc->renew_key);
	if (!sh || sh->verifying || !sh->renewing_ms)
		return;
	sh->renewing_ms = 0;
	sh->renewal_failed = true;
}

/* Frees the session's capture, under cache_lock; a renewal it carried
 * ends with it. */
static void drop_capture(struct sess_cache *kc)
{
	end_renewal(kc);
	cache_capture_free(kc->cap);
	kc->cap = NULL;
}

static void clear_command(struct sess_cache *kc)
{
	free(kc->cmd_copy);
	kc->cmd_copy = NULL;
	free(kc->text);
	kc->text = NULL;
	kc->ncls = 0;
	kc->cls_unknown = false;
	kc->exec_stmt = NULL;
	free(kc->exec_params);
	free(kc->exec_scratch);
	kc->exec_params = NULL;
	kc->exec_scratch = NULL;
	kc->exec_params_ok = false;
	kc->pending_db_set = false;
	kc->admit_pending = false;
}

void sess_cache_free(struct sess_cache *kc)
{
	if (!kc)
		return;
	cache_lock();
	cache_waiter_cancel(&kc->waiter);
	drop_capture(kc);
	if (kc->jobs > 0) {
		kc->detached = true; /* freed when its last job returns */
	} else {
		clear_command(kc);
		free_stmts(kc);
		free(kc);
	}
	cache_unlock();
}

void sess_cache_login(struct sess_cache *kc, const char *user, const char *db, size_t db_len,
                      uint8_t charset, uint32_t caps)
{
	cache_lock();
	sess_state_login(&kc->st, user, db, db_len, charset);
	kc->deprecate_eof = caps & PROTO_CLIENT_DEPRECATE_EOF;
	cache_unlock();
}

void sess_cache_changed_user(struct sess_cache *kc, const char *user, const char *db, size_t db_len)
{
	cache_lock();
	free_stmts(kc);
	sess_state_login(&kc->st, user, db, db_len, kc->st.charset);
	cache_unlock();
}

void sess_cache_change_user_failed(struct sess_cache *kc)
{
	/* Servers differ on who the session is after a refused change of user
	 * (MariaDB keeps the old one): vecgate does not guess. */
	cache_lock();
	sess_state_identity_unknown(&kc->st);
	cache_unlock();
}

/* ---- answers ---- */

struct serve_job {
	struct sess_cache *kc;
	struct cache_plan plan;
	struct cache_shape *shape; /* shape->users counts this job */
	bool binary;
	uint64_t t0;
	uint64_t rkey;
	struct buf rows; /* row packets */
	size_t nrows;
	/* The shape's arithmetic is not known yet: computed in both, served
	 * only if they agree (-EAGAIN otherwise). */
	bool both_arith;
	int rc;
	/* Answered by a batch that ran on another loop: serve_done runs on
	 * the session's own loop (worker loops, docs/design.md §2). */
	struct net_post post;
	int status;
	/* Answered by a sweep whose post to the session's loop was refused
	 * (the loop closed): batch_done frees it. */
	struct serve_job *next_late;
};

static bool same_hits(const struct vec_hit *a, size_t na, const struct vec_hit *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].row != b[i].row || a[i].is_null != b[i].is_null ||
		    (!a[i].is_null && memcmp(&a[i].dist, &b[i].dist, sizeof(double)) != 0))
			return false;
	return true;
}

/* The answer's row packets into j->rows (on the pool thread); frees hits. */
static void serve_encode(struct serve_job *j, struct vec_hit *hits, size_t n)
{
	const struct cache_shape *sh = j->shape;
	uint8_t seq = (uint8_t)(1 + proto_answer_header_packets(sh->ncols, sh->meta.mid.len));
	j->rc = cache_encode_rows(&j->plan, hits, n, j->binary, sh->types, &j->rows, &seq);
	j->nrows = n;
	free(hits);
}

static void count_stats(const struct cache_run_stats *st)
{
	if (st->screened)
		metrics_inc(m.screened, st->screened);
	if (st->batched_passes)
		metrics_inc(m.shared_passes, st->batched_passes);
}

/* The shape's arithmetic is not known (j->both_arith): j's plan run again
 * in the other arithmetic, alone; -EAGAIN when its answer differs from
 * hits[0..n), else that run's return code. */
static int check_other_arith(struct serve_job *j, const struct vec_hit *hits, size_t n)
{
	struct vec_hit *other;
	size_t n_other;
	j->plan.arith = j->plan.arith == VEC_ARITH_FUSED ? VEC_ARITH_SEPARATE : VEC_ARITH_FUSED;
	int rc = cache_plan_run(&j->plan, &other, &n_other);
	if (rc == 0) {
		if (!same_hits(hits, n, other, n_other))
			rc = -EAGAIN;
		free(other);
	}
	return rc;
}

/* One query alone. */
static void serve_work(void *data)
{
	struct serve_job *j = data;
	struct vec_hit *hits;
	size_t n;
	struct cache_run_stats st = {0};
	j->rc = cache_plan_run_stats(&j->plan, &hits, &n, &st);
	count_stats(&st);
	if (j->rc < 0)
		return;
	if (j->both_arith) {
		j->rc = check_other_arith(j, hits, n);
		if (j->rc < 0) {
			free(hits);
			return;
		}
	}
	serve_encode(j, hits, n);
}

/* A whole answer for shape sh with the status TiDB would send now. header
 * is the column count and definitions as packets (NULL: made from sh). */
static int compose(struct buf *out, const struct cache_shape *sh, const struct cache_meta *meta,
                   const uint8_t *header, size_t header_len, const uint8_t *rows, size_t rows_len,
                   size_t nrows, uint16_t now, uint16_t *status)
{
	*status = proto_answer_status(now, meta->after);
	struct proto_answer a = {
	        .ncols = sh->ncols,
	        .defs = sh->defs.data,
	        .defs_len = sh->defs.len,
	        .mid = meta->mid.data,
	        .mid_len = meta->mid.len,
	        .mid_status = proto_answer_status(now, meta->mid_status),
	        .rows = rows,
	        .rows_len = rows_len,
	        .nrows = nrows,
	        .term = meta->term.data,
	        .term_len = meta->term.len,
	        .status = *status,
	};
	return proto_append_answer(out, &a, header, header_len);
}

static void serve_done(void *data, int status)
{
	struct serve_job *j = data;
	struct sess_cache *kc = j->kc;
	kc->jobs--;
	if (kc->detached) {
		/* The session closed while the scan ran: nobody to answer. */
		if (kc->jobs == 0) {
			kc->detached = false;
			sess_cache_free(kc);
		}
	} else if (status == 0 && j->rc == -EAGAIN) {
		/* The two arithmetics answer differently and the shape's is not
		 * known: TiDB answers, and the comparison of its answer tells. */
		count_bypass("arith_undecided");
		kc->force_capture = true;
		decide_again(kc);
	} else if (status < 0 || j->rc < 0) {
		/* Not answerable here after all (a row of another dimension, out
		 * of memory): TiDB answers, as it would have anyway. */
		count_bypass(j->rc == -EDOM ? "dimension" : "error");
		char *cmd = kc->cmd_copy;
		kc->cmd_copy = NULL;
		kc->ops->relay(kc->owner, (const uint8_t *)cmd, kc->cmd_len);
		free(cmd);
	} else {
		metrics_inc(m.hits, 1);
		metrics_observe_ns(m.latency, core_now_ns() - j->t0);
		j->shape->hits++;
		if (kc->pc->results && j->rkey)
			rcache_put(kc->pc->results, j->rkey, j->plan.snap, j->shape, j->rows.data,
			           j->rows.len, j->nrows);
		struct buf out;
		buf_init(&out);
		uint16_t after;
		free(kc->cmd_copy);
		kc->cmd_copy = NULL;
		if (compose(&out, j->shape, &j->shape->meta, NULL, 0, j->rows.data, j->rows.len,
		            j->nrows, kc->cmd_status, &after) == 0)
			kc->ops->answer(kc->owner, out.data, out.len, after);
		else
			kc->ops->failed(kc->owner);
		buf_free(&out);
	}
	j->shape->users--;
	cache_plan_free(&j->plan);
	buf_free(&j->rows);
	free(j);
}

/* ---- answers on the thread pool: batches and split scans ----
 *
 * A query becomes a pool job at once when a core is free; otherwise it
 * waits, and queries that arrive meanwhile for the same snapshot (same
 * metric and arithmetic) join its batch, so that one pass answers all of
 * them. A batch stays open until its job starts (batches.mu guards the
 * open flag and the list, which the loop and the starting job share).
 * Serve jobs in flight are kept to the cores: more would only share the
 * CPUs, and a query waiting here can still join a batch. A query alone,
 * with idle cores and nothing waiting, has its base segment split over
 * them (cache_split_part), the last part to end merging the answer.
 *
 * With several worker loops (docs/design.md §2) a batch may hold queries of
 * sessions on any loop. It is handed to the pool by the loop that made it
 * (libuv takes work only from a loop's own thread), and each query's answer
 * reaches its session on the session's loop. The cores are counted over
 * all loops (running, under cache_lock()); a loop that frees a core while
 * the oldest waiting batch is another loop's asks that loop to start it. */

#define BATCH_MAX 16
/* How long at most the other sessions of an identity are answered under
 * an expired proof while one session renews it (see try_serve_locked). */
#define RENEW_GRACE_MS 10000u
#define PUMP_LOOPS     128 /* loops that may start batches: more than [server] workers allows */

/* How long a pass may wait for company, and how soon after the previous
 * pass ended it must start for that (see serve_submit). */
#define GATHER_NS 1000000u

struct serve_batch {
	struct list_node link; /* on batches.waiting until its job starts */
	bool open;             /* other queries may join (under batches.mu) */
	bool submitted;        /* handed to the pool (under cache_lock) */
	uv_loop_t *loop;       /* the loop that made it, and hands it to the pool */
	struct serve_job *jobs[BATCH_MAX];
	size_t n;
	/* Its job waits until it holds `gather` queries or gather_until_ns
	 * passes (0: it starts at once). */
	size_t gather;
	uint64_t gather_until_ns;
	uint64_t scan_ns; /* when its scan started (the pool thread's) */
	/* Its job runs a sweep (cache_sweep) that queries join while it runs:
	 * on batches.sweeping while it takes them; serve_submit queues a
	 * query in joining, and the job adds it at its next step. load is
	 * the queries in the sweep and joining. (batches.mu) */
	struct cache_sweep *sweep;
	struct serve_job *joining[BATCH_MAX];
	size_t n_joining, load;
	struct serve_job *late; /* see serve_job.next_late (its job's thread) */
};

static struct {
	pthread_mutex_t mu;
	struct list_node waiting;  /* batches whose job has not started, oldest first */
	struct list_node sweeping; /* sweeps that take queries */
	unsigned cores;
	unsigned running;      /* serve jobs submitted and not done (under cache_lock) */
	pthread_cond_t joined; /* a query joined a gathering batch (with mu) */
	/* The queries the last shared pass answered, when, and how long its
	 * scan took (cache_lock). */
	size_t last_answered;
	uint64_t last_done_ns, last_scan_ns;
	/* Each loop's request to start its waiting batches. */
	struct pump_post {
		uv_loop_t *loop;
		struct net_post post;
	} loops[PUMP_LOOPS];
	size_t nloops;
} batches = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void batches_setup(void)
{
	if (batches.cores)
		return;
	list_init(&batches.waiting);
	list_init(&batches.sweeping);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* core_now_ns()'s clock */
	pthread_cond_init(&batches.joined, &ca);
	pthread_condattr_destroy(&ca);
	batches.cores = uv_available_parallelism();
	if (batches.cores < 1)
		batches.cores = 1;
}

static void job_posted(struct net_post *p);

/* j's answer from its sweep (on the sweep's thread): encoded, then handed
 * to the session's loop. */
static void sweep_deliver(struct serve_batch *b, struct serve_job *j, struct cache_sweep_done *d)
{
	j->rc = d->rc;
	if (j->rc == 0 && j->both_arith)
		j->rc = check_other_arith(j, d->hits, d->nhits);
	if (j->rc == 0)
		serve_encode(j, d->hits, d->nhits);
	else
		free(d->hits);
	metrics_inc(m.screened, 1); /* its base segment, through the screen */
	if (d->shared)
		metrics_inc(m.batched, 1);
	j->status = 0;
	j->post.fn = job_posted;
	if (net_loop_post(j->kc->loop, &j->post) < 0) {
		j->next_late = b->late;
		b->late = j;
	}
}

/* j into sw, or answered at once (delivered). */
static void sweep_take(struct serve_batch *b, struct cache_sweep *sw, struct serve_job *j)
{
	struct cache_sweep_done d = {.tag = j};
	int rc = cache_sweep_add(sw, &j->plan, j, &d);
	if (rc < 0)
		d.rc = rc; /* TiDB answers it */
	if (rc != 0)
		sweep_deliver(b, j, &d);
}

/* b's queries answered by sweep sw, which other queries join while it runs
 * (open: b is on batches.sweeping): it reads the base segment a tile at a
 * time for every query it holds, and answers each as soon as its round is
 * complete, until none is left. It stops taking queries when a batch waits
 * for a core (another table, another snapshot) or other work waits for a
 * pool thread, so that it ends and frees its core. */
static void sweep_work(struct serve_batch *b, struct cache_sweep *sw, bool open)
{
	for (size_t i = 0; i < b->n; i++)
		sweep_take(b, sw, b->jobs[i]);
	b->n = 0;            /* each is delivered on its own */
	bool shared = false; /* a step read a tile for several queries */
	for (;;) {
		struct cache_sweep_done done[CACHE_SWEEP_MAX];
		size_t nd = cache_sweep_step(sw, done);
		for (size_t i = 0; i < nd; i++) {
			shared |= done[i].shared;
			sweep_deliver(b, done[i].tag, &done[i]);
		}
		struct serve_job *joining[BATCH_MAX];
		size_t nj = 0;
		if (open) {
			pthread_mutex_lock(&batches.mu);
			nj = b->n_joining;
			memcpy(joining, b->joining, nj * sizeof(joining[0]));
			b->n_joining = 0;
			if (!list_empty(&batches.waiting) || net_work_queued() > 0 ||
			    (nj == 0 && cache_sweep_size(sw) == 0)) {
				/* Another batch needs a core, other work (a load,
				 * a patch, a verification) waits for a pool thread,
				 * or nothing is left: no more joins, and the sweep
				 * ends once empty, within a round. A sweep that
				 * took queries for as long as they came would keep
				 * its thread from that work, and reads waiting for
				 * a patch with it (docs/design.md §6). */
				list_remove(&b->link);
				b->sweep = NULL;
				open = false;
			}
			b->load = cache_sweep_size(sw) + nj;
			pthread_mutex_unlock(&batches.mu);
		}
		for (size_t i = 0; i < nj; i++)
			sweep_take(b, sw, joining[i]);
		if (!open && cache_sweep_size(sw) == 0)
			break;
	}
	if (shared)
		metrics_inc(m.shared_passes, 1);
	cache_sweep_free(sw);
}

static void batch_work(void *data)
{
	struct serve_batch *b = data;
	/* Through a sweep wherever the base segment has a screen: it starts at
	 * once, since queries may join it later. */
	struct cache_sweep *sw = cache_sweep_new(&b->jobs[0]->plan);
	bool open = false;
	pthread_mutex_lock(&batches.mu);
	if (b->gather && !sw) {
		struct timespec until = {(time_t)(b->gather_until_ns / 1000000000u),
		                         (long)(b->gather_until_ns % 1000000000u)};
		/* Until enough joined, or timed out (or failed: start with
		 * what came). */
		while (b->n < b->gather &&
		       pthread_cond_timedwait(&batches.joined, &batches.mu, &until) == 0)
			;
		metrics_inc(m.gathered, 1);
	}
	b->open = false;
	list_remove(&b->link);
	if (sw && list_empty(&batches.waiting)) {
		b->sweep = sw;
		b->load = b->n;
		list_push_back(&batches.sweeping, &b->link);
		open = true;
	}
	pthread_mutex_unlock(&batches.mu);
	if (sw) {
		sweep_work(b, sw, open);
		return;
	}
	b->scan_ns = core_now_ns();
	if (b->n == 1) {
		serve_work(b->jobs[0]);
		return;
	}
	const struct cache_plan *plans[BATCH_MAX];
	struct vec_hit *hits[BATCH_MAX];
	size_t nhits[BATCH_MAX];
	int rcs[BATCH_MAX];
	for (size_t i = 0; i < b->n; i++)
		plans[i] = &b->jobs[i]->plan;
	struct cache_run_stats st = {0};
	int rc = cache_plans_run_batch(plans, b->n, hits, nhits, rcs, &st);
	(void)rc; /* each query's own rcs[i] tells */
	count_stats(&st);
	metrics_inc(m.batched, b->n);
	for (size_t i = 0; i < b->n; i++) {
		struct serve_job *j = b->jobs[i];
		j->rc = rcs[i];
		if (j->rc == 0 && j->both_arith)
			/* The other arithmetic for this one alone (the shape's
			 * is not known yet): served only if both agree. */
			j->rc = check_other_arith(j, hits[i], nhits[i]);
		if (j->rc == 0)
			serve_encode(j, hits[i], nhits[i]);
		else
			free(hits[i]);
	}
}

static void pump(void);

/* A batch's answer for a session of another loop, on the session's loop. */
static void job_posted(struct net_post *p)
{
	struct serve_job *j = container_of(p, struct serve_job, post);
	cache_lock();
	serve_done(j, j->status);
	cache_unlock();
}

static void batch_done(void *data, int status)
{
	struct serve_batch *b = data;
	cache_lock();
	batches.running--;
	batches.last_answered = status == 0 ? b->n : 0;
	batches.last_done_ns = core_now_ns();
	batches.last_scan_ns = b->scan_ns ? batches.last_done_ns - b->scan_ns : 0;
	for (size_t i = 0; i < b->n; i++) {
		struct serve_job *j = b->jobs[i];
		j->status = status;
		j->post.fn = job_posted;
		/* (A loop that is closed has no session left to answer:
		 * serve_done here only frees.) */
		if (net_loop_is_current(j->kc->loop) || net_loop_post(j->kc->loop, &j->post) < 0)
			serve_done(j, status);
	}
	while (b->late) {
		struct serve_job *j = b->late;
		b->late = j->next_late;
		serve_done(j, j->status);
	}
	free(b);
	pump();
	cache_unlock();
}

static void pump_posted(struct net_post *p)
{
	(void)p;
	cache_lock();
	pump();
	cache_unlock();
}

/* The loop's request to start its batches (registered by its first
 * session). */
static struct pump_post *pump_post_of(uv_loop_t *loop)
{
	for (size_t i = 0; i < batches.nloops; i++)
		if (batches.loops[i].loop == loop)
			return &batches.loops[i];
	if (batches.nloops == PUMP_LOOPS)
		return NULL;
	struct pump_post *pp = &batches.loops[batches.nloops++];
	pp->loop = loop;
	pp->post.fn = pump_posted;
	return pp;
}

/* Starts waiting batches while cores are free (under cache_lock). A batch
 * that cannot be handed to the pool leaves its queries to TiDB. The oldest
 * waiting batch goes first: when it is another loop's, that loop is asked
 * to start it (and the ones after it). */
static void pump(void)
{
	while (batches.running < batches.cores) {
		struct serve_batch *b = NULL;
		pthread_mutex_lock(&batches.mu);
		struct list_node *n, *tmp;
		list_for_each_safe(n, tmp, &batches.waiting)
		{
			struct serve_batch *x = container_of(n, struct serve_batch, link);
			if (!x->submitted) {
				b = x;
				break;
			}
		}
		if (b && net_loop_is_current(b->loop))
			b->submitted = true;
		pthread_mutex_unlock(&batches.mu);
		if (!b)
			return;
		if (!b->submitted) {
			struct pump_post *pp = pump_post_of(b->loop);
			if (pp && net_loop_post(b->loop, &pp->post) == 0)
				return;
			/* Its loop cannot start it (closed): its queries go to
			 * TiDB. */
			pthread_mutex_lock(&batches.mu);
			list_remove(&b->link);
			pthread_mutex_unlock(&batches.mu);
			batches.running++;
			batch_done(b, UV_ECANCELED);
			return;
		}
		batches.running++;
		if (net_work_submit(b->loop, batch_work, batch_done, b) < 0) {
			pthread_mutex_lock(&batches.mu);
			list_remove(&b->link);
			pthread_mutex_unlock(&batches.mu);
			batch_done(b, UV_ENOMEM); /* relays each query; pumps again */
			return;
		}
	}
}

/* A query's scan split over the pool. */
struct serve_split {
	struct serve_job *j;
	struct cache_split *sp;
	/* The shape's arithmetic is not known (both_arith): the same scan in
	 * the other one, on the same threads; the answer is served only if
	 * both agree. other is j->plan with the other arithmetic (it shares
	 * j->plan's memory and is never freed itself). */
	struct cache_split *sp2;
	struct cache_plan other;
	size_t nparts;
	atomic_size_t left; /* parts whose work has not ended */
	atomic_int rc;      /* the first part that failed */
	size_t done;        /* parts whose done ran (loop) */
	int status;
	struct serve_part {
		struct serve_split *s;
		size_t i;
	} parts[];
};

static void part_work(void *data)
{
	struct serve_part *pt = data;
	struct serve_split *s = pt->s;
	int rc = cache_split_part(s->sp, pt->i);
	if (rc == 0 && s->sp2)
		rc = cache_split_part(s->sp2, pt->i);
	if (rc) {
		int zero = 0;
		atomic_compare_exchange_strong(&s->rc, &zero, rc);
	}
	/* The last part to end sees every other's hits (acq_rel) and
	 * finishes the answer on its thread. */
	if (atomic_fetch_sub(&s->left, 1) != 1)
		return;
	struct serve_job *j = s->j;
	if ((j->rc = atomic_load(&s->rc)) != 0)
		return;
	struct vec_hit *hits;
	size_t n;
	struct cache_run_stats st = {0};
	j->rc = cache_split_finish(s->sp, &hits, &n, &st);
	if (j->rc == 0 && s->sp2) {
		struct vec_hit *other;
		size_t n_other;
		j->rc = cache_split_finish(s->sp2, &other, &n_other, &st);
		if (j->rc == 0 && !same_hits(hits, n, other, n_other))
			j->rc = -EAGAIN;
		free(other);
		if (j->rc)
			free(hits);
	}
	count_stats(&st);
	if (j->rc == 0)
		serve_encode(j, hits, n);
}

static void part_done(void *data, int status)
{
	struct serve_part *pt = data;
	struct serve_split *s = pt->s;
	cache_lock();
	batches.running--;
	if (status < 0 && !s->status)
		s->status = status;
	if (++s->done == s->nparts) {
		serve_done(s->j, s->status);
		cache_split_free(s->sp);
		cache_split_free(s->sp2);
		free(s);
	}
	pump();
	cache_unlock();
}

/* 0: the parts are on the pool (or some are, and the last done answers);
 * <0: none is, the caller still owns j. */
static int split_submit(struct serve_job *j, size_t parts)
{
	struct serve_split *s = calloc(1, sizeof(*s) + parts * sizeof(s->parts[0]));
	if (!s || !(s->sp = cache_split_new(&j->plan, parts))) {
		free(s);
		return -ENOMEM;
	}
	if (j->both_arith) {
		s->other = j->plan;
		s->other.arith =
		        j->plan.arith == VEC_ARITH_FUSED ? VEC_ARITH_SEPARATE : VEC_ARITH_FUSED;
		if (!(s->sp2 = cache_split_new(&s->other, parts))) {
			cache_split_free(s->sp);
			free(s);
			return -ENOMEM;
		}
	}
	s->j = j;
	s->nparts = parts;
	atomic_init(&s->left, parts);
	atomic_init(&s->rc, 0);
	size_t i = 0;
	for (; i < parts; i++) {
		s->parts[i] = (struct serve_part){s, i};
		if (net_work_submit(j->kc->loop, part_work, part_done, &s->parts[i]) < 0)
			break;
		batches.running++;
	}
	if (i == 0) {
		cache_split_free(s->sp);
		cache_split_free(s->sp2);
		free(s);
		return -ENOMEM;
	}
	if (i < parts) {
		/* The parts on the pool end, and the answer goes to TiDB. */
		s->nparts = i;
		s->status = UV_ENOMEM;
		atomic_fetch_sub(&s->left, parts - i);
	}
	metrics_inc(m.split, 1);
	return 0;
}

/* Hands j to the pool: joins a waiting batch, or is split, or becomes a
 * batch of its own. 0, or <0 when nothing took it (the caller still owns
 * j and leaves the query to TiDB). */
static int serve_submit(struct serve_job *j)
{
	bool joined = false, nobody_waiting;
	unsigned busy = batches.running;
	pthread_mutex_lock(&batches.mu);
	struct list_node *n, *tmp;
	if (busy >= batches.cores && list_empty(&batches.waiting)) {
		/* Every core busy and no batch waiting: the running sweep with
		 * the fewest queries that this one can join takes it (a free
		 * core would rather start a pass of its own, below; a waiting
		 * batch would wait longer for the sweeps to end). The loop
		 * over the waiting batches below then finds none. */
		struct serve_batch *best = NULL;
		list_for_each_safe(n, tmp, &batches.sweeping)
		{
			struct serve_batch *b = container_of(n, struct serve_batch, link);
			if (b->load < BATCH_MAX && cache_sweep_joins(b->sweep, &j->plan) &&
			    (!best || b->load < best->load))
				best = b;
		}
		if (best) {
			best->joining[best->n_joining++] = j;
			best->load++;
			joined = true;
			metrics_inc(m.joined, 1);
		}
	}
	list_for_each_safe(n, tmp, &batches.waiting)
	{
		struct serve_batch *b = container_of(n, struct serve_batch, link);
		if (b->open && b->n < BATCH_MAX &&
		    cache_plans_batchable(&b->jobs[0]->plan, &j->plan)) {
			b->jobs[b->n++] = j;
			joined = true;
			if (b->gather)
				pthread_cond_broadcast(&batches.joined);
			break;
		}
	}
	nobody_waiting = list_empty(&batches.waiting);
	pthread_mutex_unlock(&batches.mu);
	if (joined)
		return 0;
	unsigned idle = batches.cores > batches.running ? batches.cores - batches.running : 0;
	if (nobody_waiting && idle >= 2) {
		size_t parts = cache_plan_split_parts(&j->plan, idle);
		if (parts >= 2 && split_submit(j, parts) == 0)
			return 0;
	}
	struct serve_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->jobs[0] = j;
	b->n = 1;
	b->open = true;
	b->loop = j->kc->loop;
	b->submitted = batches.running < batches.cores;
	/* Company worth a short wait: a pass that just answered several
	 * sessions, whose next queries are on their way. Such a batch is
	 * started now, but its job waits (only until as many queries joined
	 * as that pass answered, at most GATHER_NS and a quarter of that
	 * pass's scan: a wait longer than what it saves would cost more) so
	 * that they share its pass instead of one pass each. A query with no
	 * such company (a lone client, a quiet moment) never waits. */
	uint64_t now = core_now_ns();
	uint64_t wait = batches.last_scan_ns / 4 < GATHER_NS ? batches.last_scan_ns / 4 : GATHER_NS;
	if (b->submitted && batches.last_answered >= 2 && now - batches.last_done_ns < GATHER_NS &&
	    wait > 0) {
		b->gather = batches.last_answered < BATCH_MAX ? batches.last_answered : BATCH_MAX;
		b->gather_until_ns = now + wait;
	}
	pthread_mutex_lock(&batches.mu);
	list_push_back(&batches.waiting, &b->link);
	pthread_mutex_unlock(&batches.mu);
	if (!b->submitted)
		return 0; /* pump() starts it when a core is free */
	batches.running++;
	if (net_work_submit(b->loop, batch_work, batch_done, b) < 0) {
		batches.running--;
		pthread_mutex_lock(&batches.mu);
		list_remove(&b->link);
		pthread_mutex_unlock(&batches.mu);
		free(b);
		return -ENOMEM;
	}
	return 0;
}

/* The wake-up on the session's own loop. */
static void wake_posted(struct net_post *p)
{
	struct sess_cache *kc = container_of(p, struct sess_cache, wake);
	cache_lock();
	kc->jobs--;
	if (kc->detached) {
		if (kc->jobs == 0) {
			kc->detached = false;
			sess_cache_free(kc);
		}
	} else {
		decide_again(kc);
	}
	cache_unlock();
}

/* The table this session waited for published a version or gave up: the
 * command is decided again, on the session's loop (this runs on the
 * cache's). */
static void waiter_cb(struct cache_waiter *w)
{
	struct sess_cache *kc = container_of(w, struct sess_cache, waiter);
	if (net_loop_is_current(kc->loop)) {
		decide_again(kc);
		return;
	}
	kc->wake.fn = wake_posted;
	kc->jobs++;
	if (net_loop_post(kc->loop, &kc->wake) < 0) {
		kc->jobs--; /* its loop is closed: no session is left there */
		decide_again(kc);
	}
}

static void decide_again(struct sess_cache *kc)
{
	uint8_t *cmd = (uint8_t *)kc->cmd_copy;
	size_t len = kc->cmd_len;
	kc->cmd_copy = NULL;
	struct buf out;
	buf_init(&out);
	uint16_t status = kc->cmd_status;
	enum sess_cache_verdict v = sess_cache_command(kc, cmd, len, kc->cmd_status, &out, &status);
	if (v != SESS_CACHE_PENDING || !list_linked(&kc->waiter.link))
		kc->wait_need = 0;
	switch (v) {
	case SESS_CACHE_ANSWERED:
		kc->ops->answer(kc->owner, out.data, out.len, status);
		break;
	case SESS_CACHE_RELAY:
		kc->ops->relay(kc->owner, cmd, len);
		break;
	case SESS_CACHE_PENDING:
		break;
	}
	buf_free(&out);
	free(cmd);
}

/* ---- the decision ---- */

static bool mentions_vec(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++)
		if ((p[i] | 0x20) == 'v' && (p[i + 1] | 0x20) == 'e' && (p[i + 2] | 0x20) == 'c' &&
		    p[i + 3] == '_')
			return true;
	return false;
}

static char *copy_bytes(const void *p, size_t n)
{
	char *c = malloc(n + 1);
	if (c) {
		memcpy(c, p, n);
		c[n] = 0;
	}
	return c;
}

/* Whether every text column of the snapshot holds utf8mb4 (or utf8mb3,
 * ascii: the same bytes in utf8mb4) or binary strings, so results sent
 * unconverted (character_set_results = NULL) are the bytes it holds. */
static bool text_is_utf8mb4(const struct cache_snapshot *s)
{
	for (size_t i = 0; i < s->n_cols; i++) {
		const char *c = s->cols[i].collation;
		if (*c && strncmp(c, "utf8mb4_", 8) != 0 && strncmp(c, "utf8mb3_", 8) != 0 &&
		    strncmp(c, "utf8_", 5) != 0 && strncmp(c, "ascii_", 6) != 0 &&
		    strcmp(c, "binary") != 0)
			return false;
	}
	return true;
}

static enum sess_cache_verdict bypass(struct sql_knn *k, const char *reason)
{
	count_bypass(reason);
	sql_knn_free(k);
	return SESS_CACHE_RELAY;
}

/* Answers a recognised kNN statement from the cache if the rules allow
 * (docs/design.md §8, §9, §10). cmd: the command payload, kept to relay it if the
 * answer cannot be computed after all. */
static enum sess_cache_verdict try_serve_locked(struct sess_cache *kc, const char *sql, size_t n,
                                                bool binary, const struct cache_param *params,
                                                size_t nparams, const uint8_t *cmd, size_t cmd_len,
                                                struct buf *out, uint16_t *out_status)
{
	struct sess_state *st = &kc->st;
	struct sql_knn k;
	sql_knn_init(&k);
	if (sql_knn_parse(sql, n, st->lexflags, &k) != 0) {
		sql_knn_free(&k);
		return SESS_CACHE_RELAY;
	}
	char db[256], table[256], column[256];
	if (sql_name_present(&k.schema)
	            ? sql_name_copy(sql, &k.schema, db, sizeof(db)) < 0
	            : !st->db_known || snprintf(db, sizeof(db), "%s", st->db) < 0)
		return bypass(&k, "database");
	if (sql_name_copy(sql, &k.table, table, sizeof(table)) < 0 ||
	    sql_name_copy(sql, &k.vcol, column, sizeof(column)) < 0)
		return bypass(&k, "name");
	struct cache *cache = kc->pc->cache;
	struct cache_table *t = cache_find(cache, db, strlen(db), table, strlen(table));
	if (!t) {
		/* Admitted only once the database has answered this query for
		 * this client: a name nobody may read is never loaded. */
		if (cache_may_admit(cache, db, strlen(db), table, strlen(table))) {
			kc->admit_pending = true;
			snprintf(kc->admit_db, sizeof(kc->admit_db), "%s", db);
			snprintf(kc->admit_table, sizeof(kc->admit_table), "%s", table);
			snprintf(kc->admit_column, sizeof(kc->admit_column), "%s", column);
		}
		return bypass(&k, "not_cached");
	}
	if (!st->serving_ok || (st->results_raw && t->snap && !text_is_utf8mb4(t->snap)))
		return bypass(&k, "session_settings");
	if (sess_state_txn_has(st, t))
		return bypass(&k, "own_uncommitted_write");
	uint64_t now = core_now_ms();
	/* A read that waited needs the writes committed before it arrived. */
	uint64_t need = kc->wait_need ? kc->wait_need : t->version;
	const char *why = cache_table_unservable_for(t, now, need);
	if (why && !strcmp(why, "stale_write")) {
		/* A write vecgate saw is being read back: the next version is
		 * milliseconds away, TiDB's brute force much further. */
		char *copy = copy_bytes(cmd, cmd_len);
		if (copy && cache_table_wait(t, &kc->waiter)) {
			free(kc->cmd_copy);
			kc->cmd_copy = copy;
			kc->cmd_len = cmd_len;
			kc->wait_need = need;
			sql_knn_free(&k);
			return SESS_CACHE_PENDING;
		}
		free(copy);
	}
	if (why)
		return bypass(&k, why);
	uint64_t key = cache_shape_key(k.shape, st->user, sess_state_db(st),
	                               sess_state_identity(st), binary, kc->deprecate_eof);
	struct cache_shape *sh = cache_shapes_find(kc->pc->shapes, key);
	if (sh && sh->state == CACHE_SHAPE_REJECTED)
		return bypass(&k, "rejected_shape");
	bool force = kc->force_capture;
	kc->force_capture = false;
	bool proven = sh && sh->state == CACHE_SHAPE_VERIFIED &&
	              sh->schema_version == t->schema_version && !force;
	bool expired = proven && now - sh->verified_ms >= kc->pc->proof_max_age_ms;
	/* While one session renews an expired proof (its query at TiDB, then
	 * the comparison), the identity's other queries are still answered
	 * under the old one, for at most min(proof_max_age, RENEW_GRACE_MS):
	 * otherwise every query of the shape would go to TiDB until the
	 * renewal ends, all at once on a busy server (docs/design.md §9). */
	uint64_t grace = kc->pc->proof_max_age_ms < RENEW_GRACE_MS ? kc->pc->proof_max_age_ms
	                                                           : RENEW_GRACE_MS;
	bool renewing =
	        expired && !sh->renewal_failed && sh->renewing_ms && now - sh->renewing_ms < grace;
	if (!proven || (expired && !renewing)) {
		/* The first execution of the shape for this identity, or the
		 * renewal of its proof: TiDB answers, and its answer is recorded
		 * to be compared with vecgate's. */
		metrics_inc(m.misses, 1);
		if (!(sh && sh->verifying)) {
			kc->cap = cache_capture_new(sql, n, &k, t, key, binary, params, nparams,
			                            kc->cmd_status);
			if (kc->cap && expired) {
				sh->renewing_ms = now ? now : 1;
				kc->renewing = true;
				kc->renew_key = key;
			}
		}
		sql_knn_free(&k);
		return SESS_CACHE_RELAY;
	}
	if (renewing)
		metrics_inc(m.renewing, 1);
	uint64_t rkey = 0;
	if (kc->pc->results) {
		/* The arithmetic is part of the key: after the shape's switches,
		 * answers computed in the other one are never reused. */
		uint64_t arith = sh->arith_known ? (uint64_t)sh->arith + 1 : 0;
		rkey = rcache_key(key ^ arith * 0x9E3779B97F4A7C15ull, cmd, cmd_len);
		struct rcache_hit hit;
		if (rcache_get(kc->pc->results, rkey, t->snap->id, t->schema_version, &hit)) {
			sql_knn_free(&k);
			if (compose(out, sh, hit.meta, hit.prefix, hit.prefix_len, hit.rows,
			            hit.rows_len, hit.nrows, kc->cmd_status, out_status) < 0) {
				count_bypass("memory");
				return SESS_CACHE_RELAY;
			}
			metrics_inc(m.result_hits, 1);
			return SESS_CACHE_ANSWERED;
		}
	}
	struct serve_job *j = calloc(1, sizeof(*j));
	if (!j)
		return bypass(&k, "memory");
	int rc = cache_plan_build(&j->plan, sql, &k, st->lexflags, t->snap, st->db,
	                          st->db_known ? strlen(st->db) : 0, params, nparams, &why);
	sql_knn_free(&k);
	j->plan.arith = sh->arith;
	j->both_arith = !sh->arith_known && j->plan.metric != VEC_L1;
	if (rc != 0 || !(kc->cmd_copy = copy_bytes(cmd, cmd_len))) {
		cache_plan_free(&j->plan);
		free(j);
		count_bypass(rc > 0 ? why : "memory");
		return SESS_CACHE_RELAY;
	}
	kc->cmd_len = cmd_len;
	j->kc = kc;
	j->shape = sh;
	j->binary = binary;
	j->t0 = core_now_ns();
	j->rkey = rkey;
	buf_init(&j->rows);
	if (serve_submit(j) < 0) {
		cache_plan_free(&j->plan);
		free(j);
		free(kc->cmd_copy);
		kc->cmd_copy = NULL;
		count_bypass("memory");
		return SESS_CACHE_RELAY;
	}
	sh->users++;
	kc->jobs++;
	return SESS_CACHE_PENDING;
}

/* The decision reads and changes what every loop shares: under the lock. */
static enum sess_cache_verdict try_serve(struct sess_cache *kc, const char *sql, size_t n,
                                         bool binary, const struct cache_param *params,
                                         size_t nparams, const uint8_t *cmd, size_t cmd_len,
                                         struct buf *out, uint16_t *out_status)
{
	cache_lock();
	enum sess_cache_verdict v = try_serve_locked(kc, sql, n, binary, params, nparams, cmd,
	                                             cmd_len, out, out_status);
	cache_unlock();
	return v;
}

static enum sess_cache_verdict on_query(struct sess_cache *kc, const uint8_t *payload, size_t len,
                                        struct buf *out, uint16_t *out_status)
{
	const char *sql = (const char *)payload + 1;
	size_t n = len - 1;
	if (!(kc->text = copy_bytes(sql, n))) {
		kc->cls_unknown = true;
		return SESS_CACHE_RELAY;
	}
	kc->text_len = n;
	if (sql_classify(kc->text, n, kc->st.lexflags, kc->cls, MAX_STATEMENTS, &kc->ncls) < 0) {
		kc->cls_unknown = true;
		return SESS_CACHE_RELAY;
	}
	const struct sql_class *c = &kc->cls[0];
	if (kc->ncls != 1 || c->kind != SQL_KIND_READ ||
	    (c->flags & (SQL_CF_LOCKING | SQL_CF_STALE_READ | SQL_CF_EXEC_COMMENT)) ||
	    !mentions_vec(payload, len))
		return SESS_CACHE_RELAY;
	return try_serve(kc, kc->text, n, false, NULL, 0, payload, len, out, out_status);
}

static struct stmt *find_stmt(struct sess_cache *kc, uint32_t id, struct stmt ***pp)
{
	struct stmt **link = &kc->stmts;
	for (; *link; link = &(*link)->next)
		if ((*link)->id == id) {
			if (pp)
				*pp = link;
			return *link;
		}
	return NULL;
}

/* COM_STMT_EXECUTE's parameters as the cache compares them: integers as
 * decimal text (in scratch, 24 bytes each), strings as they came. False
 * for a cursor or a type the cache does not compare exactly (doubles,
 * decimals, dates). */
static bool read_params(struct stmt *st, const uint8_t *payload, size_t len,
                        struct cache_param *params, char *scratch)
{
	struct proto_param *pv = calloc(st->nparams ? st->nparams : 1, sizeof(*pv));
	uint16_t *types = calloc(st->nparams ? st->nparams : 1, sizeof(*types));
	struct proto_stmt_execute ex;
	bool ok = pv && types &&
	          proto_parse_stmt_execute(payload, len, st->nparams, st->types, &ex, types, pv) ==
	                  0 &&
	          !(ex.flags & PROTO_CURSOR_TYPE_READ_ONLY); /* a cursor keeps state on TiDB */
	if (ok && st->nparams && ex.new_types) {
		if (!st->types)
			st->types = types, types = NULL;
		else
			memcpy(st->types, types, st->nparams * sizeof(*types));
	}
	for (unsigned i = 0; ok && i < st->nparams; i++) {
		struct cache_param *pa = &params[i];
		const struct proto_param *v = &pv[i];
		uint8_t type = (uint8_t)v->type;
		memset(pa, 0, sizeof(*pa));
		switch (v->kind) {
		case PROTO_PARAM_NULL:
			pa->is_null = true;
			break;
		case PROTO_PARAM_INT:
		case PROTO_PARAM_UINT: {
			char *o = scratch + 24 * i;
			int w = v->kind == PROTO_PARAM_INT
			                ? snprintf(o, 24, "%lld", (long long)v->i)
			                : snprintf(o, 24, "%llu", (unsigned long long)v->u);
			pa->p = o;
			pa->n = (size_t)w;
			pa->is_int = true;
			break;
		}
		case PROTO_PARAM_BYTES:
			ok = type == PROTO_TYPE_VARCHAR || type == PROTO_TYPE_VAR_STRING ||
			     type == PROTO_TYPE_STRING || type == PROTO_TYPE_BLOB ||
			     type == PROTO_TYPE_TINY_BLOB || type == PROTO_TYPE_MEDIUM_BLOB ||
			     type == PROTO_TYPE_LONG_BLOB;
			pa->p = (const char *)v->s.p;
			pa->n = v->s.n;
			break;
		default:
			ok = false; /* doubles, dates: not compared here */
			break;
		}
	}
	free(pv);
	free(types);
	return ok;
}

static enum sess_cache_verdict on_execute(struct sess_cache *kc, const uint8_t *payload, size_t len,
                                          struct buf *out, uint16_t *out_status)
{
	uint32_t id;
	if (proto_stmt_id(payload, len, &id) < 0)
		return SESS_CACHE_RELAY;
	struct stmt *st = find_stmt(kc, id, NULL);
	kc->exec_stmt = st;
	if (!st)
		return SESS_CACHE_RELAY;
	bool long_data = st->long_data;
	st->long_data = false;
	struct sql_class c;
	size_t count;
	bool classified = !long_data &&
	                  sql_classify(st->sql, st->len, kc->st.lexflags, &c, 1, &count) >= 0 &&
	                  count == 1;
	if (classified && c.kind == SQL_KIND_WRITE) {
		/* Its parameters name the rows it writes: kept for the keys. */
		size_t np = st->nparams ? st->nparams : 1;
		kc->exec_params = calloc(np, sizeof(*kc->exec_params));
		kc->exec_scratch = malloc(24u * np);
		kc->exec_params_ok =
		        kc->exec_params && kc->exec_scratch &&
		        read_params(st, payload, len, kc->exec_params, kc->exec_scratch);
		return SESS_CACHE_RELAY;
	}
	if (long_data || !mentions_vec((const uint8_t *)st->sql, st->len))
		return SESS_CACHE_RELAY;
	if (!classified || c.kind != SQL_KIND_READ ||
	    (c.flags & (SQL_CF_LOCKING | SQL_CF_STALE_READ | SQL_CF_EXEC_COMMENT)))
		return SESS_CACHE_RELAY;
	struct cache_param *params = calloc(st->nparams ? st->nparams : 1, sizeof(*params));
	char *scratch = malloc(24u * (st->nparams ? st->nparams : 1));
	enum sess_cache_verdict v = SESS_CACHE_RELAY;
	if (params && scratch && read_params(st, payload, len, params, scratch))
		v = try_serve(kc, st->sql, st->len, true, params, st->nparams, payload, len, out,
		              out_status);
	else if (params && scratch)
		count_bypass("parameters");
	free(params);
	free(scratch);
	return v;
}

enum sess_cache_verdict sess_cache_command(struct sess_cache *kc, const uint8_t *payload,
                                           size_t len, uint16_t status, struct buf *out,
                                           uint16_t *out_status)
{
	if (kc->cap) { /* the previous command's answer never completed */
		cache_lock();
		drop_capture(kc);
		cache_unlock();
	}
	clear_command(kc);
	kc->cmd = payload[0];
	kc->cmd_status = status;
	switch (kc->cmd) {
	case PROTO_COM_QUERY:
		return on_query(kc, payload, len, out, out_status);
	case PROTO_COM_STMT_PREPARE:
		kc->text = copy_bytes(payload + 1, len - 1);
		kc->text_len = len - 1;
		return SESS_CACHE_RELAY;
	case PROTO_COM_STMT_EXECUTE:
		return on_execute(kc, payload, len, out, out_status);
	case PROTO_COM_STMT_CLOSE:
	case PROTO_COM_STMT_SEND_LONG_DATA:
	case PROTO_COM_STMT_RESET: {
		uint32_t id;
		struct stmt **link;
		struct stmt *st;
		if (proto_stmt_id(payload, len, &id) < 0 || !(st = find_stmt(kc, id, &link)))
			return SESS_CACHE_RELAY;
		if (kc->cmd == PROTO_COM_STMT_CLOSE) {
			*link = st->next;
			stmt_free(st);
		} else {
			st->long_data = kc->cmd == PROTO_COM_STMT_SEND_LONG_DATA;
		}
		return SESS_CACHE_RELAY;
	}
	case PROTO_COM_INIT_DB:
		kc->pending_db_set = len - 1 < sizeof(kc->pending_db);
		if (kc->pending_db_set) {
			memcpy(kc->pending_db, payload + 1, len - 1);
			kc->pending_db[len - 1] = 0;
		}
		return SESS_CACHE_RELAY;
	default:
		return SESS_CACHE_RELAY;
	}
}

void sess_cache_response_packet(struct sess_cache *kc, const struct proto_resp *r, const uint8_t *p,
                                size_t n)
{
	if (kc->cap)
		cache_capture_packet(kc->cap, r->role, p, n);
}

static void prepared(struct sess_cache *kc, const struct proto_resp *r)
{
	if (r->is_err || !kc->text)
		return;
	struct stmt *st = calloc(1, sizeof(*st));
	if (!st)
		return;
	st->id = r->stmt_id;
	st->sql = kc->text;
	st->len = kc->text_len;
	st->nparams = r->num_params;
	kc->text = NULL;
	st->next = kc->stmts;
	kc->stmts = st;
}

/* utf8mb4 collations (MySQL numbers them 45, 46, 224-247 and 255-323). */
static bool utf8mb4_client(uint8_t charset)
{
	return charset == 45 || charset == 46 || (charset >= 224 && charset <= 247) ||
	       charset == 255;
}

/* The rows one successful single-statement write touched in the cached table
 * it names, handed to sess_state before it accounts the statement: read
 * back and patched in at commit (docs/design.md §10). Anything uncertain
 * leaves the keys unknown (with a reason): the table is reloaded then. */
static void statement_keys(struct sess_cache *kc, const char *text, size_t len,
                           const struct sql_class *c, const struct cache_param *params,
                           size_t nparams, const struct proto_resp *r)
{
	struct sess_state *st = &kc->st;
	if (c->kind != SQL_KIND_WRITE || c->ntables != 1 || (c->flags & SQL_CF_ALL_TABLES))
		return;
	struct cache_table *t;
	if (sess_state_table(st, text, &c->tables[0], &t) < 0 || !t)
		return;
	const struct cache_base *b = cache_table_base(t);
	const char *why = !b ? "not_loaded" : b->why_no_key;
	if (why) {
		sess_state_statement_keys(st, t, NULL, why);
		return;
	}
	struct sql_key_table kt = {
	        .db = t->db,
	        .table = t->table,
	        .ncols = b->n_key,
	        .auto_increment = b->auto_increment,
	        .other_unique = b->other_unique,
	};
	for (size_t i = 0; i < b->n_key; i++) {
		const struct cache_column *col = &b->cols[b->key_cols[i]];
		kt.cols[i] = col->name;
		kt.types[i] = col->cmp == CACHE_CMP_INT    ? SQL_KEY_INT
		              : col->cmp == CACHE_CMP_UINT ? SQL_KEY_UINT
		                                           : SQL_KEY_BYTES;
		/* A string key's bytes are the statement's: they equal the
		 * stored ones only when the client sends utf8mb4 as the
		 * cached cells are. */
		if (kt.types[i] == SQL_KEY_BYTES &&
		    (!utf8mb4_client(st->charset) || !st->serving_ok)) {
			sess_state_statement_keys(st, t, NULL, "charset");
			return;
		}
	}
	/* A warning may mean a value was clipped or converted on its way in:
	 * the stored key may not be the one the statement wrote. */
	if (r->warnings) {
		sess_state_statement_keys(st, t, NULL, "warnings");
		return;
	}
	struct sql_key_param kp[64];
	if (nparams > 64) {
		sess_state_statement_keys(st, t, NULL, "params");
		return;
	}
	for (size_t i = 0; i < nparams; i++)
		kp[i] = (struct sql_key_param){params[i].p, params[i].n, params[i].is_null,
		                               params[i].is_int};
	struct sql_write_keys wk;
	sql_write_keys_init(&wk);
	struct cache_write *w = calloc(1, sizeof(*w));
	int rc = w ? sql_write_keys(text + c->off, c->len, st->lexflags,
	                            st->db_known ? st->db : NULL, &kt, kp, nparams, &wk, &why)
	           : -ENOMEM;
	if (w)
		cache_write_init(w);
	if (rc == 0) {
		/* The OK packet checks what the statement says it did. */
		bool insert = wk.kind == SQL_WRITE_INSERT;
		if (insert && r->affected_rows != wk.nrows)
			why = "affected_rows";
		else if ((wk.kind == SQL_WRITE_UPDATE || wk.kind == SQL_WRITE_DELETE) &&
		         r->affected_rows > wk.nkeys)
			why = "affected_rows";
		else if (wk.n_generated &&
		         (!insert || wk.n_generated != wk.nrows || r->last_insert_id == 0))
			why = "generated_keys";
	} else {
		why = rc < 0 ? "memory" : why;
	}
	for (size_t i = 0; rc == 0 && !why && i < wk.nkeys; i++, w->nkeys++)
		for (size_t k = 0; k < b->n_key; k++) {
			const uint8_t *v;
			size_t vn;
			sql_write_key(&wk, i, k, &v, &vn);
			if (cache_key_append(b, k, v, vn, &w->keys) < 0)
				why = "memory";
		}
	if (rc == 0 && !why && wk.n_generated) {
		struct cache_key_range rg = {
		        .lo = r->last_insert_id,
		        .hi = r->last_insert_id + wk.n_generated - 1,
		        .is_signed = kt.types[0] == SQL_KEY_INT,
		};
		if (cache_write_add_range(w, rg, wk.n_generated) < 0)
			why = "memory";
	}
	sql_write_keys_free(&wk);
	if (why || rc != 0) {
		if (w) {
			cache_write_free(w);
			free(w);
		}
		sess_state_statement_keys(st, t, NULL, why ? why : "memory");
		return;
	}
	sess_state_statement_keys(st, t, w, NULL);
}

static void response_done_locked(struct sess_cache *kc, const struct proto_resp *r,
                                 uint16_t status);

void sess_cache_response_done(struct sess_cache *kc, const struct proto_resp *r, uint16_t status)
{
	cache_lock();
	response_done_locked(kc, r, status);
	cache_unlock();
}

static void response_done_locked(struct sess_cache *kc, const struct proto_resp *r, uint16_t status)
{
	struct sess_state *st = &kc->st;
	switch (kc->cmd) {
	case PROTO_COM_QUERY:
		if (kc->text && !kc->cls_unknown && kc->ncls == 1 && !r->is_err)
			statement_keys(kc, kc->text, kc->text_len, &kc->cls[0], NULL, 0, r);
		sess_state_account(st, kc->text, kc->cls, kc->ncls, kc->cls_unknown || !kc->text,
		                   r->is_err, r->results_before_err);
		break;
	case PROTO_COM_STMT_EXECUTE: {
		struct stmt *s = kc->exec_stmt;
		struct sql_class cls[MAX_STATEMENTS];
		size_t count = 0;
		bool unknown = !s || sql_classify(s->sql, s->len, st->lexflags, cls, MAX_STATEMENTS,
		                                  &count) < 0;
		if (!unknown && count == 1 && !r->is_err && kc->exec_params_ok)
			statement_keys(kc, s->sql, s->len, &cls[0], kc->exec_params, s->nparams, r);
		sess_state_account(st, s ? s->sql : NULL, cls, count, unknown, r->is_err,
		                   r->results_before_err);
		break;
	}
	case PROTO_COM_STMT_PREPARE:
		prepared(kc, r);
		break;
	case PROTO_COM_INIT_DB:
		if (!r->is_err && kc->pending_db_set)
			sess_state_init_db(st, kc->pending_db, strlen(kc->pending_db));
		break;
	case PROTO_COM_RESET_CONNECTION:
		if (!r->is_err) {
			/* The transaction was rolled back and the statements
			 * deallocated; settings and roles are the defaults. */
			sess_state_reset(st);
			free_stmts(kc);
		}
		break;
	default:
		break;
	}
	sess_state_status(st, status);
	/* The database answered a kNN query on a table not cached yet. */
	if (kc->admit_pending && !r->is_err && r->result_sets > 0)
		cache_admit(kc->pc->cache, kc->admit_db, strlen(kc->admit_db), kc->admit_table,
		            strlen(kc->admit_table), kc->admit_column, strlen(kc->admit_column));
	kc->admit_pending = false;
	if (kc->cap) {
		if (!r->is_err)
			cache_capture_finish(kc->cap, kc->pc->shapes, kc->loop, st->lexflags,
			                     sess_state_db(st));
		drop_capture(kc);
	}
}
