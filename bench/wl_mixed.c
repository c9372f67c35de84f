/* wl_mixed.c: the "mixed" workload: the knn workload (wl_knn.c, same options)
 * with a share of writes to the same table (--write-share P, 0..1, default 0.1).
 * Writes cycle per thread through
 *   INSERT INTO <table> (id, <column>) VALUES (<new id>, VEC_FROM_TEXT('[..]'))
 *   UPDATE <table> SET <column> = VEC_FROM_TEXT('[..]') WHERE id = <existing id>
 *   DELETE FROM <table> WHERE id = <an id this workload inserted>
 * with a fresh random normal vector of the table's dimension (--dim overrides).
 * New ids come from one counter for the whole run, starting at 1000000000 (or
 * above the largest id already there), so threads and targets never collide;
 * updated ids are uniform over the table's ids below 1000000000 as found at
 * setup. A DELETE removes a random row of those the target's threads inserted
 * earlier in the run (kept in one list per target), so inserts and deletes
 * balance and the table neither grows nor shrinks for long; with none left
 * to delete, the thread writes the next kind (an INSERT) instead. Text queries,
 * or with --prepared prepared statements (vector bound as a string). Writes
 * flag themselves (th->write), so the driver keeps the reads' latencies apart
 * as well; how many of each succeeded (warm-up included) is printed to stderr
 * at the end. */
#include "workload.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIXED_ID_BASE 1000000000LL

static atomic_llong next_insert_id = MIXED_ID_BASE;

enum write_kind { W_INSERT, W_UPDATE, W_DELETE, W_KINDS };
static const char *const write_names[W_KINDS] = {"insert", "update", "delete"};

struct mixed_shared {
	void *knn; /* wl_knn's shared data */
	double write_share;
	size_t dim;
	long long min_id, max_id; /* rows to update */
	char *sql[W_KINDS];       /* prepared forms */
	const char *table, *col;
	atomic_ullong reads, writes[W_KINDS];
	/* Ids inserted by this target's threads and not deleted yet. */
	pthread_mutex_t lock;
	long long *ids;
	size_t nids, cap;
};

struct mixed_thread {
	void *knn;                  /* wl_knn's thread state */
	struct bench_target knn_tg; /* the target as wl_knn sees it (its shared data) */
	struct bench_target *tg;    /* the real one */
	MYSQL_STMT *stmt[W_KINDS];
	char *sql;
	char *vec;
	size_t cap;
	enum write_kind next; /* the kind of the thread's next write */
	unsigned long vlen;
	long long id;
	MYSQL_BIND bind[2];
};

static double gauss(uint64_t *rng)
{
	double u1 = ((double)(bench_rand(rng) >> 11) + 1.0) / 9007199254740993.0;
	double u2 = (double)(bench_rand(rng) >> 11) / 9007199254740992.0;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int query_ll2(MYSQL *c, const char *sql, long long *a, long long *b, char *err,
                     size_t errlen)
{
	if (mysql_query(c, sql) != 0) {
		bench_conn_error(c, err, errlen);
		return -1;
	}
	MYSQL_RES *res = mysql_store_result(c);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	*a = row && row[0] ? strtoll(row[0], NULL, 10) : 0;
	*b = row && row[1] ? strtoll(row[1], NULL, 10) : 0;
	if (res)
		mysql_free_result(res);
	return 0;
}

/* Remembers an inserted id for a later DELETE; false when out of memory
 * (the row then stays). */
static bool ids_push(struct mixed_shared *s, long long id)
{
	bool ok = true;
	pthread_mutex_lock(&s->lock);
	if (s->nids == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		long long *n = realloc(s->ids, cap * sizeof(*n));
		if (n) {
			s->ids = n;
			s->cap = cap;
		}
	}
	if (s->nids < s->cap)
		s->ids[s->nids++] = id;
	else
		ok = false;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* Takes a random id of those inserted; false when there is none. */
static bool ids_take(struct mixed_shared *s, uint64_t *rng, long long *id)
{
	bool ok = false;
	pthread_mutex_lock(&s->lock);
	if (s->nids) {
		size_t i = (size_t)bench_rand_below(rng, s->nids);
		*id = s->ids[i];
		s->ids[i] = s->ids[--s->nids];
		ok = true;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void mixed_teardown(struct bench_target *t)
{
	struct mixed_shared *s = t->shared;
	if (!s)
		return;
	unsigned long long w[W_KINDS];
	for (int i = 0; i < W_KINDS; i++)
		w[i] = atomic_load(&s->writes[i]);
	fprintf(stderr,
	        "mixed: %s: %llu reads, %llu writes (%llu inserts, %llu updates, %llu deletes), "
	        "warm-up included; %zu inserted rows left\n",
	        t->name, atomic_load(&s->reads), w[W_INSERT] + w[W_UPDATE] + w[W_DELETE],
	        w[W_INSERT], w[W_UPDATE], w[W_DELETE], s->nids);
	t->shared = s->knn;
	wl_knn.teardown(t);
	for (int i = 0; i < W_KINDS; i++)
		free(s->sql[i]);
	pthread_mutex_destroy(&s->lock);
	free(s->ids);
	free(s);
	t->shared = NULL;
}

static int mixed_setup(const struct bench_cfg *cfg, struct bench_target *t, MYSQL *c, char *err,
                       size_t errlen)
{
	char *end;
	const char *ws = bench_param(cfg, "write-share", "0.1");
	double share = strtod(ws, &end);
	if (*end || end == ws || !(share >= 0 && share <= 1)) {
		snprintf(err, errlen, "bad --write-share '%s' (0..1)", ws);
		return -1;
	}
	if (wl_knn.setup(cfg, t, c, err, errlen) != 0)
		return -1;
	struct mixed_shared *s = calloc(1, sizeof(*s));
	if (!s) {
		wl_knn.teardown(t);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->knn = t->shared;
	t->shared = s;
	pthread_mutex_init(&s->lock, NULL);
	s->write_share = share;
	s->table = bench_param(cfg, "table", NULL); /* checked by knn_setup */
	s->col = bench_param(cfg, "column", "embedding");
	char sql[700];
	long long dim = strtoll(bench_param(cfg, "dim", "0"), NULL, 10), d0, unused;
	if (dim <= 0) {
		snprintf(sql, sizeof(sql), "SELECT VEC_DIMS(%s), 0 FROM %s LIMIT 1", s->col,
		         s->table);
		if (query_ll2(c, sql, &d0, &unused, err, errlen) != 0)
			goto fail;
		dim = d0;
	}
	if (dim <= 0 || dim > 65536) {
		snprintf(err, errlen, "%s is empty: give --dim", s->table);
		goto fail;
	}
	s->dim = (size_t)dim;
	snprintf(sql, sizeof(sql), "SELECT MIN(id), MAX(id) FROM %s WHERE id < %lld", s->table,
	         MIXED_ID_BASE);
	if (query_ll2(c, sql, &s->min_id, &s->max_id, err, errlen) != 0)
		goto fail;
	if (share > 0 && s->max_id < s->min_id) {
		snprintf(err, errlen, "%s has no rows to update", s->table);
		goto fail;
	}
	long long top, unused2;
	snprintf(sql, sizeof(sql), "SELECT COALESCE(MAX(id), 0), 0 FROM %s", s->table);
	if (query_ll2(c, sql, &top, &unused2, err, errlen) != 0)
		goto fail;
	long long cur = atomic_load(&next_insert_id);
	while (top >= cur && !atomic_compare_exchange_weak(&next_insert_id, &cur, top + 1))
		;
	size_t n = strlen(s->table) + strlen(s->col) + 96;
	for (int i = 0; i < W_KINDS; i++)
		if (!(s->sql[i] = malloc(n))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	snprintf(s->sql[W_INSERT], n, "INSERT INTO %s (id, %s) VALUES (?, VEC_FROM_TEXT(?))",
	         s->table, s->col);
	snprintf(s->sql[W_UPDATE], n, "UPDATE %s SET %s = VEC_FROM_TEXT(?) WHERE id = ?", s->table,
	         s->col);
	snprintf(s->sql[W_DELETE], n, "DELETE FROM %s WHERE id = ?", s->table);
	fprintf(stderr,
	        "mixed: %s: write share %.3g (insert, update, delete in turn), updates of ids "
	        "%lld..%lld, inserts from %lld\n",
	        t->name, share, s->min_id, s->max_id, (long long)atomic_load(&next_insert_id));
	return 0;
fail:
	mixed_teardown(t);
	return -1;
}

static MYSQL_STMT *prepare(MYSQL *c, const char *sql, char *err, size_t errlen)
{
	MYSQL_STMT *st = mysql_stmt_init(c);
	if (!st) {
		bench_conn_error(c, err, errlen);
		return NULL;
	}
	if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
		snprintf(err, errlen, "prepare: %u (%s): %s", mysql_stmt_errno(st),
		         mysql_stmt_sqlstate(st), mysql_stmt_error(st));
		mysql_stmt_close(st);
		return NULL;
	}
	return st;
}

static int mixed_thread_init(struct wl_thread *th, char *err, size_t errlen)
{
	struct mixed_shared *s = th->target->shared;
	struct mixed_thread *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	th->state = p;
	p->next = (enum write_kind)(th->index % W_KINDS);
	p->cap = strlen(s->table) + strlen(s->col) + 96 + s->dim * 17;
	if (!(p->sql = malloc(p->cap)) || !(p->vec = malloc(2 + s->dim * 17))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->tg = th->target;
	p->knn_tg = *th->target;
	p->knn_tg.shared = s->knn;
	th->target = &p->knn_tg;
	th->state = NULL;
	int rc = wl_knn.thread_init(th, err, errlen);
	th->target = p->tg;
	p->knn = th->state;
	th->state = p;
	if (rc != 0 || !th->cfg->prepared)
		return rc;
	for (int i = 0; i < W_KINDS; i++)
		if (!(p->stmt[i] = prepare(th->conn, s->sql[i], err, errlen)))
			return -1;
	return 0;
}

static int mixed_write(struct wl_thread *th, struct mixed_shared *s, struct mixed_thread *p,
                       char *err, size_t errlen)
{
	enum write_kind kind = p->next;
	if (kind == W_DELETE && !ids_take(s, &th->rng, &p->id))
		kind = W_INSERT; /* nothing of ours to delete: the next kind */
	p->next = (enum write_kind)((kind + 1) % W_KINDS);
	th->write = true;
	char *v = p->vec;
	size_t n = 0;
	if (kind != W_DELETE) {
		size_t vcap = 2 + s->dim * 17;
		v[n++] = '[';
		for (size_t i = 0; i < s->dim; i++)
			n += (size_t)snprintf(v + n, vcap - n, "%s%.9g", i ? "," : "",
			                      (double)(float)gauss(&th->rng));
		v[n++] = ']';
		v[n] = '\0';
	}
	if (kind == W_UPDATE)
		p->id = s->min_id + (long long)bench_rand_below(
		                            &th->rng, (uint64_t)(s->max_id - s->min_id + 1));
	else if (kind == W_INSERT)
		p->id = (long long)atomic_fetch_add(&next_insert_id, 1);
	int rc = 0;
	if (p->stmt[kind]) {
		MYSQL_STMT *st = p->stmt[kind];
		/* INSERT binds (id, vector), UPDATE (vector, id), DELETE (id). */
		MYSQL_BIND *ib = &p->bind[kind == W_UPDATE ? 1 : 0];
		memset(p->bind, 0, sizeof(p->bind));
		if (kind != W_DELETE) {
			MYSQL_BIND *vb = &p->bind[kind == W_UPDATE ? 0 : 1];
			p->vlen = (unsigned long)n;
			vb->buffer_type = MYSQL_TYPE_STRING;
			vb->buffer = v;
			vb->buffer_length = p->vlen;
			vb->length = &p->vlen;
		}
		ib->buffer_type = MYSQL_TYPE_LONGLONG;
		ib->buffer = &p->id;
		if (mysql_stmt_bind_param(st, p->bind) != 0 || mysql_stmt_execute(st) != 0) {
			th->broken = bench_stmt_error(st, write_names[kind], err, errlen);
			rc = -1;
		}
	} else {
		int len;
		if (kind == W_UPDATE)
			len = snprintf(p->sql, p->cap,
			               "UPDATE %s SET %s = VEC_FROM_TEXT('%s') WHERE id = %lld",
			               s->table, s->col, v, p->id);
		else if (kind == W_INSERT)
			len = snprintf(p->sql, p->cap,
			               "INSERT INTO %s (id, %s) VALUES (%lld, VEC_FROM_TEXT('%s'))",
			               s->table, s->col, p->id, v);
		else
			len = snprintf(p->sql, p->cap, "DELETE FROM %s WHERE id = %lld", s->table,
			               p->id);
		if (mysql_real_query(th->conn, p->sql, (unsigned long)len) != 0 ||
		    bench_drain(th->conn, err, errlen) < 0) {
			if (mysql_errno(th->conn))
				bench_conn_error(th->conn, err, errlen);
			rc = -1;
		}
	}
	if (rc != 0) {
		/* The row may still be there: a later DELETE tries again (of a row
		 * that is gone, it deletes nothing). */
		if (kind == W_DELETE)
			ids_push(s, p->id);
		return -1;
	}
	if (kind == W_INSERT)
		ids_push(s, p->id);
	atomic_fetch_add_explicit(&s->writes[kind], 1, memory_order_relaxed);
	return 0;
}

static int mixed_run(struct wl_thread *th, char *err, size_t errlen)
{
	struct mixed_shared *s = th->target->shared;
	struct mixed_thread *p = th->state;
	double r = (double)(bench_rand(&th->rng) >> 11) / 9007199254740992.0;
	if (r < s->write_share)
		return mixed_write(th, s, p, err, errlen);
	th->target = &p->knn_tg;
	th->state = p->knn;
	int rc = wl_knn.run(th, err, errlen);
	th->target = p->tg;
	th->state = p;
	if (rc == 0)
		atomic_fetch_add_explicit(&s->reads, 1, memory_order_relaxed);
	return rc;
}

static void mixed_thread_done(struct wl_thread *th)
{
	struct mixed_thread *p = th->state;
	if (!p)
		return;
	for (int i = 0; i < W_KINDS; i++)
		if (p->stmt[i])
			mysql_stmt_close(p->stmt[i]);
	if (p->tg) {
		th->target = &p->knn_tg;
		th->state = p->knn;
		wl_knn.thread_done(th);
		th->target = p->tg;
	}
	free(p->sql);
	free(p->vec);
	free(p);
	th->state = NULL;
}

const struct workload wl_mixed = {
        .name = "mixed",
        .summary = "knn plus --write-share P (0.1) of writes to --table: INSERT, UPDATE, "
                   "DELETE in turn",
        .flags = WL_WRITES,
        .setup = mixed_setup,
        .thread_init = mixed_thread_init,
        .run = mixed_run,
        .thread_done = mixed_thread_done,
        .teardown = mixed_teardown,
};
