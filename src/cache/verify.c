/* Capture of the server's first answer to a shape and its comparison with
 * vecgate's own answer. */
#include "cache/verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "cache/shape.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "net/net.h"
#include "proto/answer.h"
#include "proto/mysql.h"
#include "proto/packet.h"
#include "vec/topk.h"

#define CAPTURE_MAX (8u << 20) /* larger answers are not captured */

static struct {
	bool ready;
	struct metric *match, *mismatch;
	struct metric *arith[2], *switches;
} m;

static void metrics_setup(void)
{
	if (m.ready)
		return;
	m.ready = true;
	struct metrics_family *f = metrics_family(
	        METRICS_COUNTER, "vecgate_cache_verifications_total",
	        "Comparisons of vecgate's answer with TiDB's first answer to a shape.", "result",
	        NULL);
	m.match = metrics_series(f, "match", NULL);
	m.mismatch = metrics_series(f, "mismatch", NULL);
	f = metrics_family(METRICS_COUNTER, "vecgate_cache_arith_matches_total",
	                   "Comparisons that matched TiDB's answer in one float32 arithmetic and "
	                   "not in the other (separate or fused multiply-add), by that one.",
	                   "arith", NULL);
	m.arith[VEC_ARITH_SEPARATE] = metrics_series(f, "separate", NULL);
	m.arith[VEC_ARITH_FUSED] = metrics_series(f, "fused", NULL);
	m.switches = metrics_counter("vecgate_cache_arith_switches_total",
	                             "Comparisons that found TiDB computing a shape's distances in "
	                             "the other arithmetic than before (its plan changed).");
}

struct cache_capture {
	const char *src; /* the statement text, owned by the caller */
	size_t src_len;
	struct sql_knn k;
	struct cache_param *params;
	size_t nparams;
	char *param_text;
	bool binary;
	uint64_t key;
	struct cache_table *table;
	uint64_t schema_version;
	uint64_t version; /* the table's when TiDB was asked */
	uint16_t before_status;
	uint64_t ncols, seen;
	struct buf defs, mid, rows, term;
	bool done;   /* the result set's terminator arrived */
	bool broken; /* not a single result set vecgate can compare */
};

struct cache_capture *cache_capture_new(const char *sql, size_t sql_len, struct sql_knn *k,
                                        struct cache_table *t, uint64_t key, bool binary,
                                        const struct cache_param *params, size_t nparams,
                                        uint16_t status)
{
	metrics_setup();
	struct cache_capture *c = calloc(1, sizeof(*c));
	size_t text = 0;
	for (size_t i = 0; i < nparams; i++)
		text += params[i].n;
	if (!c || (nparams && (!(c->params = calloc(nparams, sizeof(*params))) ||
	                       !(c->param_text = malloc(text + 1))))) {
		if (c) {
			free(c->params);
			free(c);
		}
		return NULL;
	}
	size_t off = 0;
	for (size_t i = 0; i < nparams; i++) {
		c->params[i] = params[i];
		/* A NULL parameter has no text (p is NULL, n is 0). */
		if (params[i].n)
			memcpy(c->param_text + off, params[i].p, params[i].n);
		c->params[i].p = c->param_text + off;
		off += params[i].n;
	}
	c->nparams = nparams;
	c->k = *k; /* its names point into sql, which outlives the capture */
	sql_knn_init(k);
	c->src = sql;
	c->src_len = sql_len;
	c->binary = binary;
	c->key = key;
	c->table = t;
	c->schema_version = t->schema_version;
	c->version = t->version;
	c->before_status = status;
	buf_init(&c->defs);
	buf_init(&c->mid);
	buf_init(&c->rows);
	buf_init(&c->term);
	return c;
}

void cache_capture_free(struct cache_capture *c)
{
	if (!c)
		return;
	sql_knn_free(&c->k);
	free(c->params);
	free(c->param_text);
	buf_free(&c->defs);
	buf_free(&c->mid);
	buf_free(&c->rows);
	buf_free(&c->term);
	free(c);
}

/* Appends a payload after its u32 length, as the shapes keep definitions. */
static int put_payload(struct buf *b, const uint8_t *p, size_t n)
{
	uint32_t len = (uint32_t)n;
	return buf_append(b, &len, 4) < 0 || buf_append(b, p, n) < 0 ? -ENOMEM : 0;
}

void cache_capture_packet(struct cache_capture *c, enum proto_pkt_role role, const uint8_t *p,
                          size_t n)
{
	if (c->broken)
		return;
	/* Exactly one result set, each part in turn; a packet of 16 MiB or
	 * more (only its first physical packet is seen) is not compared. */
	bool ok = !c->done && n < PROTO_MAX_CHUNK;
	switch (role) {
	case PROTO_ROLE_COLUMN_COUNT: {
		struct rd r = rd_make(p, n);
		ok = ok && c->ncols == 0 && rd_lenenc(&r, &c->ncols, NULL) && c->ncols > 0 &&
		     c->ncols <= 4096;
		break;
	}
	case PROTO_ROLE_COLUMN_DEF:
		ok = ok && c->seen < c->ncols && put_payload(&c->defs, p, n) == 0;
		c->seen++;
		break;
	case PROTO_ROLE_COLUMNS_END:
		ok = ok && c->seen == c->ncols && !c->mid.len && buf_append(&c->mid, p, n) == 0;
		break;
	case PROTO_ROLE_ROW:
		ok = ok && c->seen == c->ncols && c->rows.len + n <= CAPTURE_MAX &&
		     put_payload(&c->rows, p, n) == 0;
		break;
	case PROTO_ROLE_RESULT_END:
		ok = ok && c->seen == c->ncols && c->ncols > 0 && buf_append(&c->term, p, n) == 0;
		c->done = true;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		c->broken = true;
}

/* ---- comparison ---- */

static bool same_distance_hit(const struct vec_hit *a, const struct vec_hit *b)
{
	return a->is_null == b->is_null && (a->is_null || a->dist == b->dist);
}

struct verify_job {
	struct cache_shape *shape;
	char sql[512]; /* the statement's start, for the log */
	struct cache_plan plan;
	struct buf tidb_rows; /* u32-prefixed payloads */
	struct buf ours;
	bool binary;
	bool renewal; /* the shape was VERIFIED: a renewed proof compared again */
	int dist_col;
	enum vec_arith arith; /* tried first; after the work, the one that matched */
	bool decided;         /* it matched, and the other arithmetic did not */
	int rc;
	bool match;
};

/* Computes the answer in arithmetic a and compares it with TiDB's rows:
 * j->rc and j->match. */
static void compare_in(struct verify_job *j, enum vec_arith a, size_t k, size_t before, bool outer)
{
	struct vec_hit *hits;
	size_t n;
	struct cache_plan *p = &j->plan;
	p->arith = a;
	buf_reset(&j->ours);
	j->match = false;
	j->rc = cache_plan_run(p, &hits, &n);
	if (j->rc < 0)
		return;
	size_t got = n > before ? n - before : 0;
	if (got > k)
		got = k;
	struct vec_hit *mine = hits + (n > before ? before : n);
	bool first_cut = outer || (before && n > 1 && same_distance_hit(&hits[0], &hits[1]));
	bool last_cut = outer || (got > 0 && n > before + got &&
	                          same_distance_hit(&mine[got - 1], &mine[got]));
	struct buf packets;
	buf_init(&packets);
	uint8_t seq = 0;
	j->rc = cache_encode_rows(p, mine, got, j->binary, j->shape->types, &packets, &seq);
	/* Packets to u32-prefixed payloads, as the capture holds them. */
	for (size_t off = 0; j->rc == 0 && off < packets.len;) {
		struct proto_logical lp;
		ssize_t used =
		        proto_scan_logical(packets.data + off, packets.len - off, SIZE_MAX, &lp);
		uint32_t len = (uint32_t)lp.payload_len;
		if (used <= 0 || buf_append(&j->ours, &len, 4) < 0 ||
		    proto_gather_payload(packets.data + off, &lp, &j->ours) < 0) {
			j->rc = -ENOMEM;
			break;
		}
		off += (size_t)used;
	}
	buf_free(&packets);
	if (j->rc == 0)
		j->match = cache_rows_equivalent(&j->tidb_rows, &j->ours, mine, got,
		                                 j->binary ? -1 : j->dist_col, first_cut, last_cut);
	free(hits);
}

static void verify_work(void *data)
{
	struct verify_job *j = data;
	/* One row more on each side than asked, to see whether a group of equal
	 * distances at either end of the answer goes on past it. (pytidb's
	 * outer query: both ends are taken as cut, which only loosens.) */
	struct cache_plan *p = &j->plan;
	size_t k = p->k, before = 0;
	bool outer = p->outer;
	if (!outer) {
		before = p->offset > 0;
		p->offset -= before;
		p->k = k + before + 1 < k ? k : k + before + 1;
	}
	/* TiDB's distances come from float32 loops that its build may fuse
	 * (docs/tidb.md §3): an answer that differs in the arithmetic tried
	 * first is computed in the other one. Either match is a proof: the
	 * rows, their order and every printed distance are TiDB's. A match
	 * tells which arithmetic TiDB used only if the other one does not
	 * match too (an empty answer, small integers: the same in both). L1
	 * has no multiply: the same in both, always. */
	enum vec_arith first = j->arith;
	enum vec_arith other = first == VEC_ARITH_FUSED ? VEC_ARITH_SEPARATE : VEC_ARITH_FUSED;
	compare_in(j, first, k, before, outer);
	if (j->rc < 0 || p->metric == VEC_L1) {
		j->decided = j->rc == 0 && j->match;
		return;
	}
	bool first_match = j->match;
	compare_in(j, other, k, before, outer);
	if (j->rc < 0) {
		/* The second computation failed (out of memory): the first one
		 * stands, deciding nothing. */
		j->rc = first_match ? 0 : j->rc;
		j->match = first_match;
		j->decided = false;
		return;
	}
	j->decided = first_match != j->match;
	if (!first_match && j->match)
		j->arith = other;
	j->match = first_match || j->match;
}

static void verify_done_locked(void *data, int status)
{
	struct verify_job *j = data;
	struct cache_shape *sh = j->shape;
	bool compared = status == 0 && j->rc == 0;
	enum vec_arith was = sh->arith;
	bool was_known = sh->arith_known;
	uint64_t now = core_now_ms();
	cache_shape_verify_end(sh, compared, j->match, j->arith, j->decided, now);
	if (!compared && j->renewal)
		cache_shape_renew(sh, now); /* nothing compared: the proof of identity stands */
	if (compared && j->match) {
		metrics_inc(m.match, 1);
		if (j->decided) {
			metrics_inc(m.arith[j->arith], 1);
			sh->table->arith = j->arith;
			sh->table->arith_matches[j->arith]++;
		}
		if (j->decided && was_known && was != j->arith) {
			metrics_inc(m.switches, 1);
			log_info("cache %s.%s: TiDB's distances for a query shape are now computed "
			         "in %s arithmetic (were %s)",
			         sh->table->db, sh->table->table, vec_arith_name(j->arith),
			         vec_arith_name(was));
		}
	} else if (compared) {
		metrics_inc(m.mismatch, 1);
		log_debug("cache %s.%s: answer differs from TiDB's (%zu vs %zu bytes of rows): %s",
		          sh->table->db, sh->table->table, j->tidb_rows.len, j->ours.len, j->sql);
		if (sh->state == CACHE_SHAPE_REJECTED)
			log_warn("cache %s.%s: answers for a query shape differ from TiDB's %d "
			         "times; that shape now always goes to TiDB",
			         sh->table->db, sh->table->table, sh->mismatches);
	}
	cache_plan_free(&j->plan);
	buf_free(&j->tidb_rows);
	buf_free(&j->ours);
	free(j);
}

static void verify_done(void *data, int status)
{
	cache_lock();
	verify_done_locked(data, status);
	cache_unlock();
}

static int dist_column(const struct cache_plan *p)
{
	for (size_t i = 0; i < p->ncols; i++)
		if (p->cols[i].kind == CACHE_OUT_DIST)
			return (int)i;
	return -1;
}

/* Keeps what the answer's terminators did to the status, for the answers
 * vecgate sends in its place. */
static int keep_meta(struct cache_shape *sh, const struct cache_capture *c)
{
	int off = proto_terminator_status_offset(c->term.data, c->term.len);
	if (off < 0)
		return off;
	sh->meta.before = c->before_status;
	sh->meta.after = (uint16_t)(c->term.data[off] | c->term.data[off + 1] << 8);
	if (c->mid.len) {
		int moff = proto_terminator_status_offset(c->mid.data, c->mid.len);
		if (moff < 0)
			return moff;
		sh->meta.mid_status = (uint16_t)(c->mid.data[moff] | c->mid.data[moff + 1] << 8);
	}
	if (buf_append(&sh->meta.term, c->term.data, c->term.len) < 0 ||
	    buf_append(&sh->meta.mid, c->mid.data, c->mid.len) < 0)
		return -ENOMEM;
	return 0;
}

void cache_capture_finish(struct cache_capture *c, struct cache_shapes *shapes, uv_loop_t *loop,
                          unsigned lexflags, const char *db)
{
	if (c->broken || !c->done)
		return;
	struct cache_table *t = c->table;
	uint64_t now = core_now_ms();
	if (t->schema_version != c->schema_version)
		return; /* compare next time, against the new definition */
	struct cache_shape *sh = cache_shapes_find(shapes, c->key);
	/* A renewed proof: TiDB answered this session's identity again. The
	 * shape's answers matched before; they are compared again when the
	 * snapshot allows, since TiDB's plan (and with it the arithmetic of
	 * its distances) may have changed since. */
	bool renewal = sh && sh->state == CACHE_SHAPE_VERIFIED && !sh->verifying &&
	               sh->schema_version == c->schema_version;
	/* A comparison needs the snapshot of the data TiDB answered from: no
	 * write through vecgate committed while TiDB answered, and the
	 * snapshot has them all. Otherwise compare next time. */
	bool comparable = !cache_table_unservable(t, now) && t->version == c->version &&
	                  t->snap->version == c->version;
	if (renewal && !comparable) {
		cache_shape_renew(sh, now);
		return;
	}
	if (!comparable)
		return;
	/* A shape captured before the table's definition may have changed
	 * (DDL, or a statement vecgate could not attribute) is captured and
	 * compared again, like a new one. */
	if (!renewal) {
		if (sh && ((sh->state != CACHE_SHAPE_PENDING &&
		            sh->schema_version == c->schema_version) ||
		           sh->verifying))
			return;
		int mismatches = sh ? sh->mismatches : 0;
		sh = cache_shapes_put(shapes, c->key, t, c->schema_version, &c->defs,
		                      (uint32_t)c->ncols);
		if (!sh)
			return;
		sh->mismatches = mismatches;
		sh->arith = t->arith;
		if (keep_meta(sh, c) < 0)
			return;
	}
	struct verify_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	const char *why;
	if (cache_plan_build(&j->plan, c->src, &c->k, lexflags, t->snap, db, strlen(db), c->params,
	                     c->nparams, &why) != 0) {
		cache_plan_free(&j->plan);
		free(j);
		if (renewal)
			cache_shape_renew(sh, now);
		return;
	}
	j->shape = sh;
	j->renewal = renewal;
	j->arith = sh->arith;
	snprintf(j->sql, sizeof(j->sql), "%.*s", (int)(c->src_len < 511 ? c->src_len : 511),
	         c->src);
	j->binary = c->binary;
	j->dist_col = dist_column(&j->plan);
	j->tidb_rows = c->rows; /* moved */
	buf_init(&c->rows);
	buf_init(&j->ours);
	cache_shape_verify_start(sh);
	if (net_work_submit(loop, verify_work, verify_done, j) < 0) {
		cache_shape_verify_end(sh, false, false, sh->arith, false, now);
		if (renewal)
			cache_shape_renew(sh, now);
		cache_plan_free(&j->plan);
		buf_free(&j->tidb_rows);
		free(j);
	}
}
