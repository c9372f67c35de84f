/* A session's use of the vector cache: write and transaction tracking,
 * session settings, capture and verification of TiDB's answers, and
 * answers from snapshots. */
#include "session/sess_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/metrics.h"
#include "cache/cache.h"
#include "cache/rcache.h"
#include "cache/serve.h"
#include "cache/shape.h"
#include "core/log.h"
#include "net/net.h"
#include "proto/mysql.h"
#include "proto/packet.h"
#include "proto/packets.h"
#include "proto/resp.h"
#include "session/session.h"
#include "sql/classify.h"
#include "sql/knn.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAX_TXN_TABLES       32
#define MAX_STATEMENTS       16
#define CAPTURE_MAX          (8u << 20) /* larger answers are not captured */
#define MISMATCHES_TO_REJECT 3
/* A user's right to read an answer was proved by TiDB answering it; privileges
 * changed directly on TiDB are not seen by vecgate, so the proof is renewed
 * (one execution of the shape goes to TiDB again) at least this often. */
#define PROOF_MAX_AGE_MS (5 * 60 * 1000)

/* The bits of the server status a statement leaves as it found them. */
#define SESSION_STATUS_BITS                                                                        \
	(PROTO_STATUS_IN_TRANS | PROTO_STATUS_AUTOCOMMIT | PROTO_STATUS_IN_TRANS_READONLY |        \
	 PROTO_STATUS_NO_BACKSLASH_ESCAPES)

static struct {
	bool ready;
	struct metric *hits, *misses, *result_hits, *verified, *mismatches;
	struct metrics_family *bypass;
	struct metric *latency;
} m;

struct bypass_reason {
	const char *name;
	struct metric *m;
};
static struct bypass_reason bypass_reasons[32];
static size_t n_bypass_reasons;

static void count_bypass(const char *reason)
{
	for (size_t i = 0; i < n_bypass_reasons; i++)
		if (bypass_reasons[i].name == reason || !strcmp(bypass_reasons[i].name, reason)) {
			metrics_inc(bypass_reasons[i].m, 1);
			return;
		}
	if (n_bypass_reasons < sizeof(bypass_reasons) / sizeof(bypass_reasons[0])) {
		struct bypass_reason *b = &bypass_reasons[n_bypass_reasons++];
		b->name = reason;
		b->m = metrics_series(m.bypass, reason, NULL);
		metrics_inc(b->m, 1);
	}
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
	f = metrics_family(METRICS_COUNTER, "vecgate_cache_verifications_total",
	                   "Comparisons of vecgate's answer with TiDB's first answer to a shape.",
	                   "result", NULL);
	m.verified = metrics_series(f, "match", NULL);
	m.mismatches = metrics_series(f, "mismatch", NULL);
	m.latency =
	        metrics_histogram("vecgate_cache_answer_seconds",
	                          "Time to answer a kNN query from the cache (scan and encoding).");
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

/* TiDB's first answer to a shape, being recorded as it is relayed. */
struct capture {
	char *sql; /* unused: the statement text is borrowed (src) */
	size_t len;
	const char *src; /* the session's copy of the statement (text or prepared) */
	size_t src_len;
	struct sql_knn k;
	struct cache_param *params;
	size_t nparams;
	char *param_text;
	bool binary;
	uint64_t key;
	struct cache_table *table;
	uint64_t schema_version;
	uint16_t before_status;
	int phase; /* 0 count, 1 definitions, 2 EOF, 3 rows, 4 done */
	uint64_t ncols, seen;
	struct buf defs, mid, rows, term;
	bool broken;
};

struct sess_cache {
	struct session *s;
	struct proxy_cache *pc;
	char user[64];
	char db[256];
	bool db_known;
	uint8_t charset;
	/* The handshake's character set and every SET NAMES since, hashed:
	 * answers are captured and served per value (TiDB's definitions carry
	 * the connection's collation). */
	uint64_t settings;
	/* The session's active roles: 0 for the ones a login gets, else a hash
	 * of the SET ROLE statement the server last accepted (each replaces the
	 * whole set). Part of every proof's key: a proof made under one role
	 * never answers a session without it. When vecgate cannot be sure who
	 * the session is (see identity_private), a value no other session has. */
	uint64_t roles;
	bool serving_ok;
	unsigned lexflags;
	struct cache_table *txn[MAX_TXN_TABLES];
	size_t ntxn;
	bool txn_all;
	/* The command in flight. */
	uint8_t cmd;
	char *cmd_copy; /* its payload, kept while it may be served */
	size_t cmd_len;
	struct sql_class cls[MAX_STATEMENTS];
	size_t ncls;
	bool cls_unknown;
	char *text; /* the statement text the classes point into */
	size_t text_len;
	struct stmt *exec_stmt;
	char pending_db[256];
	bool pending_db_set;
	struct capture *cap;
	/* A kNN query on a table not cached yet: admitted (tables = auto) only
	 * if the database answers it. */
	bool admit_pending;
	char admit_db[256], admit_table[256], admit_column[256];
	int jobs;      /* serve jobs on pool threads */
	bool detached; /* the session is gone; the last job frees this */
	struct stmt *stmts;
};

struct proxy_cache *proxy_cache_new(struct cache *c, size_t result_cache_bytes)
{
	metrics_setup();
	struct proxy_cache *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->cache = c;
	pc->shapes = cache_shapes_new(20000);
	pc->results = result_cache_bytes ? rcache_new(result_cache_bytes) : NULL;
	if (!pc->shapes) {
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

struct sess_cache *sess_cache_new(struct session *s)
{
	struct sess_cache *kc = calloc(1, sizeof(*kc));
	if (!kc)
		return NULL;
	kc->s = s;
	kc->pc = s->px->cache;
	kc->serving_ok = true;
	return kc;
}

static void capture_free(struct capture *c)
{
	if (!c)
		return;
	sql_knn_free(&c->k);
	free(c->sql);
	free(c->params);
	free(c->param_text);
	buf_free(&c->defs);
	buf_free(&c->mid);
	buf_free(&c->rows);
	buf_free(&c->term);
	free(c);
}

static void stmt_free(struct stmt *st)
{
	free(st->sql);
	free(st->types);
	free(st);
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
	kc->pending_db_set = false;
	kc->admit_pending = false;
	capture_free(kc->cap);
	kc->cap = NULL;
}

void sess_cache_free(struct sess_cache *kc)
{
	if (!kc)
		return;
	if (kc->jobs > 0) {
		kc->detached = true; /* freed when its last job returns */
		kc->s = NULL;
		return;
	}
	clear_command(kc);
	while (kc->stmts) {
		struct stmt *st = kc->stmts;
		kc->stmts = st->next;
		stmt_free(st);
	}
	free(kc);
}

bool sess_cache_busy(const struct sess_cache *kc)
{
	return kc && kc->jobs > 0;
}

void sess_cache_login(struct sess_cache *kc, const char *user, const char *db, size_t db_len,
                      uint8_t charset)
{
	snprintf(kc->user, sizeof(kc->user), "%s", user);
	kc->db_known = db_len < sizeof(kc->db);
	if (kc->db_known) {
		memcpy(kc->db, db, db_len);
		kc->db[db_len] = 0;
	}
	kc->charset = charset;
	kc->settings = charset;
	kc->roles = 0;
}

/* ---- transactions and writes ---- */

static void txn_add(struct sess_cache *kc, struct cache_table *t)
{
	for (size_t i = 0; i < kc->ntxn; i++)
		if (kc->txn[i] == t)
			return;
	if (kc->ntxn < MAX_TXN_TABLES)
		kc->txn[kc->ntxn++] = t;
	else
		kc->txn_all = true;
}

static bool txn_has(const struct sess_cache *kc, const struct cache_table *t)
{
	if (kc->txn_all)
		return true;
	for (size_t i = 0; i < kc->ntxn; i++)
		if (kc->txn[i] == t)
			return true;
	return false;
}

/* The session's writes are committed: every snapshot they touch is stale. */
static void txn_commit(struct sess_cache *kc)
{
	if (kc->txn_all)
		cache_all_changed(kc->pc->cache);
	else
		for (size_t i = 0; i < kc->ntxn; i++)
			cache_table_changed(kc->txn[i], false);
	kc->ntxn = 0;
	kc->txn_all = false;
}

static void txn_discard(struct sess_cache *kc)
{
	kc->ntxn = 0;
	kc->txn_all = false;
}

/* Applies f to every cached table a statement names. An unqualified name is
 * in the session's database; when that is not known, any database. */
static void for_tables(struct sess_cache *kc, const char *text, const struct sql_class *c,
                       void (*f)(struct sess_cache *, struct cache_table *, bool), bool ddl)
{
	struct cache *cache = kc->pc->cache;
	if (c->flags & SQL_CF_ALL_TABLES) {
		if (ddl)
			cache_all_changed(cache);
		kc->txn_all = true;
		return;
	}
	for (size_t i = 0; i < c->ntables; i++) {
		char db[256], table[256];
		const struct sql_table_ref *r = &c->tables[i];
		if (sql_name_copy(text, &r->table, table, sizeof(table)) < 0) {
			kc->txn_all = true;
			continue;
		}
		if (r->db.len || r->db.quote) {
			if (sql_name_copy(text, &r->db, db, sizeof(db)) < 0) {
				kc->txn_all = true;
				continue;
			}
		} else if (kc->db_known) {
			snprintf(db, sizeof(db), "%s", kc->db);
		} else {
			/* Which database is not known: every table of that name. */
			kc->txn_all = true;
			continue;
		}
		struct cache_table *t = cache_find(cache, db, strlen(db), table, strlen(table));
		if (t)
			f(kc, t, ddl);
	}
}

static void note_write(struct sess_cache *kc, struct cache_table *t, bool ddl)
{
	(void)ddl;
	txn_add(kc, t);
}

static void note_ddl(struct sess_cache *kc, struct cache_table *t, bool ddl)
{
	cache_table_changed(t, true);
	cache_shapes_drop_table(kc->pc->shapes, t);
}

/* Session settings after which an answer from memory could differ from
 * TiDB's (another character set, time zone, snapshot, row limit, quoting). */
#define SETTINGS_THAT_STOP_SERVING                                                                 \
	(SQL_SETF_SQL_MODE | SQL_SETF_CHARSET | SQL_SETF_TIME_ZONE | SQL_SETF_SNAPSHOT |           \
	 SQL_SETF_SELECT_LIMIT | SQL_SETF_UNKNOWN)

/* SET NAMES utf8mb4 [COLLATE utf8mb4_...], which drivers send on connect:
 * cells stay the bytes the snapshot holds, only the definitions' collation
 * may change, so it joins the session's settings hash instead of stopping
 * answers from memory. False for anything else. */
static bool set_names_utf8mb4(struct sess_cache *kc, const char *p, size_t n)
{
	char norm[128];
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
		if (space)
			norm[j++] = ' ';
		space = false;
		norm[j++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	norm[j] = 0;
	static const char plain[] = "set names utf8mb4";
	static const char collate[] = "set names utf8mb4 collate utf8mb4_";
	bool ok = (j == sizeof(plain) - 1 && !memcmp(norm, plain, j)) ||
	          (j > sizeof(collate) - 1 && !memcmp(norm, collate, sizeof(collate) - 1));
	if (!ok)
		return false;
	kc->settings = XXH3_64bits_withSeed(norm, j, kc->settings);
	return true;
}

/* vecgate cannot be sure who the session is any more (a refused change of
 * user, a SET ROLE whose outcome is unknown, a statement it does not
 * understand, such as EXECUTE of a prepared USE or SET ROLE): from now on its
 * proofs are its own, made again by the database, and shared with no other
 * session, until it logs in again or resets. */
static void identity_private(struct sess_cache *kc)
{
	static uint64_t seq;
	seq++;
	kc->roles = XXH3_64bits_withSeed(&seq, sizeof(seq), 0x707269766174u) | 1u;
}

/* What a statement the server refused, or never ran, may still have done:
 * only effects that make vecgate answer less from memory are applied (a
 * write or DDL marks its tables stale, settings stop answers, grants void
 * proofs). The session's database and roles stay as the server kept them. */
static void account_failed(struct sess_cache *kc, const char *text, const struct sql_class *c)
{
	switch (c->kind) {
	case SQL_KIND_UNKNOWN:
		/* It may have done part of its work before failing (CALL). */
		kc->txn_all = true;
		kc->db_known = false;
		identity_private(kc);
		break;
	case SQL_KIND_WRITE:
		for_tables(kc, text, c, note_write, false);
		break;
	case SQL_KIND_DDL:
		if (c->flags & SQL_CF_TEMPORARY)
			kc->serving_ok = false;
		else
			for_tables(kc, text, c, note_ddl, true);
		break;
	case SQL_KIND_SET:
		if (c->set_flags & (SETTINGS_THAT_STOP_SERVING | SQL_SETF_CHARSET))
			kc->serving_ok = false;
		break;
	case SQL_KIND_ACL:
		cache_shapes_drop_table(kc->pc->shapes, NULL);
		break;
	default:
		break;
	}
}

/* A statement the server accepted. */
static void account_ok(struct sess_cache *kc, const char *text, const struct sql_class *c)
{
	switch (c->kind) {
	case SQL_KIND_UNKNOWN:
		/* It may have written anything, changed the database or the
		 * roles (MariaDB and TiDB can EXECUTE a prepared USE). */
		kc->txn_all = true;
		kc->db_known = false;
		identity_private(kc);
		break;
	case SQL_KIND_WRITE:
		for_tables(kc, text, c, note_write, false);
		break;
	case SQL_KIND_DDL:
		/* DDL commits what came before it, then changes tables. A
		 * session's TEMPORARY table hides a cached table of its name
		 * from this session. */
		txn_commit(kc);
		if (c->flags & SQL_CF_TEMPORARY)
			kc->serving_ok = false;
		else
			for_tables(kc, text, c, note_ddl, true);
		break;
	case SQL_KIND_BEGIN:
	case SQL_KIND_COMMIT:
		txn_commit(kc);
		break;
	case SQL_KIND_ROLLBACK:
		txn_discard(kc);
		break;
	case SQL_KIND_SET:
		if (c->set_flags == SQL_SETF_CHARSET &&
		    set_names_utf8mb4(kc, text + c->off, c->len))
			break;
		if (c->set_flags & SETTINGS_THAT_STOP_SERVING)
			kc->serving_ok = false;
		break;
	case SQL_KIND_USE:
		kc->db_known = sql_name_copy(text, &c->db, kc->db, sizeof(kc->db)) == 0;
		break;
	case SQL_KIND_ROLE:
		kc->roles = XXH3_64bits_withSeed(text + c->off, c->len, 0x726f6c6573u) | 1u;
		break;
	case SQL_KIND_ACL:
		/* Who may read what changed: every proof is void. */
		cache_shapes_drop_table(kc->pc->shapes, NULL);
		break;
	default:
		break;
	}
}

/* Walks the statements of a finished COM_QUERY (or a prepared one) in
 * order, with what the server did with each: with no error every statement
 * ran; a multi-statement packet stops at its first error, so with one
 * result per statement the statement at index `results` failed and the
 * ones after it never ran (docs/design.md, "Who may see cached rows"). A
 * statement that may give several results (CALL, anything not understood)
 * before the failure hides which one failed: then USE and SET ROLE leave the
 * session's database and identity unknown. */
static void account_statements(struct sess_cache *kc, const char *text, const struct sql_class *cls,
                               size_t n, bool unknown, bool is_err, unsigned results)
{
	if (unknown) {
		kc->txn_all = true;
		kc->db_known = false;
		identity_private(kc);
		return;
	}
	size_t ok = n;
	bool sure = true;
	if (is_err) {
		ok = results < n ? results : 0;
		sure = results < n;
		for (size_t i = 0; i < ok && sure; i++)
			sure = cls[i].kind != SQL_KIND_UNKNOWN;
		if (!sure)
			ok = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (i < ok) {
			account_ok(kc, text, &cls[i]);
			continue;
		}
		account_failed(kc, text, &cls[i]);
		if (!sure && cls[i].kind == SQL_KIND_USE)
			kc->db_known = false;
		if (!sure && cls[i].kind == SQL_KIND_ROLE)
			identity_private(kc);
	}
}

/* The session's settings and active roles, for the key of a proof. */
static uint64_t identity_settings(const struct sess_cache *kc)
{
	return kc->roles ? XXH3_64bits_withSeed(&kc->roles, sizeof(kc->roles), kc->settings)
	                 : kc->settings;
}

/* ---- answers ---- */

/* The status TiDB would send: the session's own bits now, changed as the
 * captured answer changed them. */
static uint16_t answer_status(uint16_t now, uint16_t cap_before, uint16_t cap_after)
{
	uint16_t added = (uint16_t)(cap_after & ~cap_before);
	uint16_t removed = (uint16_t)(cap_before & ~cap_after);
	return (uint16_t)((now | added) & ~removed);
}

static int status_offset(const uint8_t *p, size_t n)
{
	/* EOF: 0xFE, warnings, status. OK-as-EOF: 0xFE, lenenc affected rows,
	 * lenenc insert id, status, warnings. */
	if (n == 5)
		return 3;
	struct rd r = rd_make(p + 1, n - 1);
	uint64_t v;
	if (!rd_lenenc(&r, &v, NULL) || !rd_lenenc(&r, &v, NULL) || rd_left(&r) < 4)
		return -1;
	return (int)(n - rd_left(&r));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* A captured terminator with its status replaced. */
static int put_terminator(struct buf *out, uint8_t *seq, const struct buf *term, uint16_t status)
{
	int off = status_offset(term->data, term->len);
	ssize_t start = proto_pkt_begin(out);
	if (off < 0 || start < 0 || buf_append(out, term->data, term->len) < 0)
		return -ENOMEM;
	uint8_t *p = out->data + out->len - term->len + off;
	p[0] = (uint8_t)status;
	p[1] = (uint8_t)(status >> 8);
	return proto_pkt_end(out, (size_t)start, seq);
}

/* Column count and definitions, as packets from sequence id 1. */
static int put_prefix(struct buf *out, const struct cache_shape *sh)
{
	uint8_t seq = 1;
	ssize_t start = proto_pkt_begin(out);
	if (start < 0 || wr_lenenc(out, sh->ncols) < 0 || proto_pkt_end(out, (size_t)start, &seq))
		return -ENOMEM;
	for (uint32_t i = 0; i < sh->ncols; i++) {
		uint32_t len;
		const uint8_t *d = cache_shape_def(sh, i, &len);
		if (proto_write_packet(out, &seq, d, len) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- serve jobs ---- */

struct serve_job {
	struct sess_cache *kc;
	struct cache_plan plan;
	struct cache_shape *shape; /* shape->users counts this job */
	bool binary;
	uint64_t t0;
	uint64_t rkey;
	struct buf rows; /* row packets */
	size_t nrows;
	int rc;
};

static size_t header_packets(uint32_t ncols, const struct cache_meta *meta)
{
	return 1 + ncols + (meta->mid.len ? 1 : 0);
}

static void serve_work(void *data)
{
	struct serve_job *j = data;
	struct vec_hit *hits;
	size_t n;
	j->rc = cache_plan_run(&j->plan, &hits, &n);
	if (j->rc < 0)
		return;
	uint8_t seq = (uint8_t)(1 + header_packets(j->shape->ncols, &j->shape->meta));
	j->rc = cache_encode_rows(&j->plan, hits, n, j->binary, j->shape->types, &j->rows, &seq);
	j->nrows = n;
	free(hits);
}

/* Sends a whole answer: the prefix (count and definitions), the EOF after
 * them, the rows (their sequence ids already follow), the terminator, with
 * the status TiDB would have sent. False when memory ran out. */
static bool send_answer(struct sess_cache *kc, const uint8_t *prefix, size_t prefix_len,
                        uint32_t ncols, const struct cache_meta *meta, const uint8_t *rows,
                        size_t rows_len, size_t nrows)
{
	struct session *s = kc->s;
	uint16_t before = s->status;
	uint16_t status = answer_status(before, meta->before, meta->after);
	struct buf out;
	buf_init(&out);
	uint8_t mid_seq = (uint8_t)(2 + ncols);
	uint8_t seq = (uint8_t)(1 + header_packets(ncols, meta) + nrows);
	bool ok = buf_append(&out, prefix, prefix_len) == 0 &&
	          (!meta->mid.len ||
	           put_terminator(&out, &mid_seq, &meta->mid,
	                          answer_status(before, meta->before, meta->mid_status)) == 0) &&
	          buf_append(&out, rows, rows_len) == 0 &&
	          put_terminator(&out, &seq, &meta->term, status) == 0;
	if (ok)
		session_answer(s, out.data, out.len, status);
	buf_free(&out);
	return ok;
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
	} else if (status < 0 || j->rc < 0) {
		/* Not answerable here after all (a row of another dimension, out
		 * of memory): TiDB answers, as it would have anyway. */
		count_bypass(j->rc == -EDOM ? "dimension" : "error");
		session_relay_command(kc->s, (const uint8_t *)kc->cmd_copy, kc->cmd_len);
	} else {
		metrics_inc(m.hits, 1);
		metrics_observe_ns(m.latency, now_ns() - j->t0);
		j->shape->hits++;
		if (kc->pc->results && j->rkey)
			rcache_put(kc->pc->results, j->rkey, j->plan.snap, j->shape, j->rows.data,
			           j->rows.len, j->nrows);
		struct buf prefix;
		buf_init(&prefix);
		if (put_prefix(&prefix, j->shape) < 0 ||
		    !send_answer(kc, prefix.data, prefix.len, j->shape->ncols, &j->shape->meta,
		                 j->rows.data, j->rows.len, j->nrows))
			session_answer_failed(kc->s);
		buf_free(&prefix);
		free(kc->cmd_copy);
		kc->cmd_copy = NULL;
	}
	j->shape->users--;
	cache_plan_free(&j->plan);
	buf_free(&j->rows);
	free(j);
}

/* ---- verification ---- */

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
	int dist_col;
	int rc;
	bool match;
};

static void verify_work(void *data)
{
	struct verify_job *j = data;
	struct vec_hit *hits;
	size_t n;
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

static void verify_done(void *data, int status)
{
	struct verify_job *j = data;
	struct cache_shape *sh = j->shape;
	sh->verifying = false;
	if (status == 0 && j->rc == 0 && j->match) {
		sh->state = CACHE_SHAPE_VERIFIED;
		sh->verified_ms = cache_now_ms();
		metrics_inc(m.verified, 1);
	} else if (status == 0 && j->rc == 0) {
		metrics_inc(m.mismatches, 1);
		log_debug("cache %s.%s: answer differs from TiDB's (%zu vs %zu bytes of rows): %s",
		          sh->table->db, sh->table->table, j->tidb_rows.len, j->ours.len, j->sql);
		if (++sh->mismatches >= MISMATCHES_TO_REJECT) {
			sh->state = CACHE_SHAPE_REJECTED;
			log_warn("cache %s.%s: answers for a query shape differ from TiDB's %d "
			         "times; "
			         "that shape now always goes to TiDB",
			         sh->table->db, sh->table->table, sh->mismatches);
		}
	}
	cache_plan_free(&j->plan);
	buf_free(&j->tidb_rows);
	buf_free(&j->ours);
	free(j);
}

static int dist_column(const struct cache_plan *p)
{
	for (size_t i = 0; i < p->ncols; i++)
		if (p->cols[i].kind == CACHE_OUT_DIST)
			return (int)i;
	return -1;
}

/* The capture is complete: keep the definitions and compare answers. */
static void capture_finish(struct sess_cache *kc, uint16_t status)
{
	struct capture *c = kc->cap;
	struct proxy_cache *pc = kc->pc;
	if (c->broken || c->phase != 4)
		return;
	struct cache_table *t = c->table;
	if (cache_table_unservable(t, cache_now_ms()) || t->schema_version != c->schema_version)
		return; /* compare next time, against a fresh snapshot */
	struct cache_shape *sh = cache_shapes_find(pc->shapes, c->key);
	if (sh && sh->state == CACHE_SHAPE_VERIFIED && !sh->verifying &&
	    sh->schema_version == c->schema_version) {
		/* A renewed proof: TiDB answered this user again. */
		sh->verified_ms = cache_now_ms();
		return;
	}
	/* A shape captured before the table's definition may have changed
	 * (DDL, or a statement vecgate could not attribute) is captured and
	 * compared again, like a new one. */
	if (!sh || sh->state == CACHE_SHAPE_PENDING || sh->schema_version != c->schema_version) {
		if (sh && sh->verifying)
			return;
		int mismatches = sh ? sh->mismatches : 0;
		sh = cache_shapes_put(pc->shapes, c->key, t, c->schema_version, &c->defs,
		                      (uint32_t)c->ncols);
		if (!sh)
			return;
		sh->mismatches = mismatches;
		/* What this answer did to the status, for the ones vecgate sends. */
		int off = status_offset(c->term.data, c->term.len);
		if (off < 0)
			return;
		sh->meta.before = c->before_status;
		sh->meta.after = get_u16(c->term.data + off);
		sh->meta.mid_status = c->mid.len ? get_u16(c->mid.data + 3) : 0;
		if (buf_append(&sh->meta.term, c->term.data, c->term.len) < 0 ||
		    buf_append(&sh->meta.mid, c->mid.data, c->mid.len) < 0)
			return;
	} else {
		return;
	}
	struct verify_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	const char *why;
	if (cache_plan_build(&j->plan, c->src, &c->k, kc->lexflags, t->snap, kc->db,
	                     kc->db_known ? strlen(kc->db) : 0, c->params, c->nparams, &why) != 0) {
		cache_plan_free(&j->plan);
		free(j);
		return;
	}
	j->shape = sh;
	snprintf(j->sql, sizeof(j->sql), "%.*s", (int)(c->src_len < 511 ? c->src_len : 511),
	         c->src);
	j->binary = c->binary;
	j->dist_col = dist_column(&j->plan);
	j->tidb_rows = c->rows; /* moved */
	buf_init(&c->rows);
	buf_init(&j->ours);
	sh->verifying = true;
	if (net_work_submit(kc->s->px->loop, verify_work, verify_done, j) < 0) {
		sh->verifying = false;
		cache_plan_free(&j->plan);
		buf_free(&j->tidb_rows);
		free(j);
	}
	(void)status;
}

/* ---- commands ---- */

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

static bool bypass(struct sql_knn *k, const char *reason)
{
	count_bypass(reason);
	sql_knn_free(k);
	return false;
}

/* Starts recording TiDB's answer to this statement. k is taken over. */
static void start_capture(struct sess_cache *kc, const char *sql, size_t sql_len, struct sql_knn *k,
                          struct cache_table *t, uint64_t key, bool binary,
                          const struct cache_param *params, size_t nparams)
{
	struct capture *c = calloc(1, sizeof(*c));
	size_t text = 0;
	for (size_t i = 0; i < nparams; i++)
		text += params[i].n;
	if (!c || (nparams && (!(c->params = calloc(nparams, sizeof(*params))) ||
	                       !(c->param_text = malloc(text + 1))))) {
		capture_free(c);
		return;
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
	c->before_status = kc->s->status;
	buf_init(&c->defs);
	buf_init(&c->mid);
	buf_init(&c->rows);
	buf_init(&c->term);
	kc->cap = c;
}

/* Answers a recognised kNN statement from the cache if the rules allow;
 * false to relay it. cmd/cmd_len: the command payload, kept to relay it if
 * the answer cannot be computed after all. */
static bool try_serve(struct sess_cache *kc, const char *sql, size_t n, bool binary,
                      const struct cache_param *params, size_t nparams, const uint8_t *cmd,
                      size_t cmd_len)
{
	struct session *s = kc->s;
	struct sql_knn k;
	sql_knn_init(&k);
	if (sql_knn_parse(sql, n, kc->lexflags, &k) != 0) {
		sql_knn_free(&k);
		return false;
	}
	char db[256], table[256], column[256];
	if (sql_name_present(&k.schema)
	            ? sql_name_copy(sql, &k.schema, db, sizeof(db)) < 0
	            : !kc->db_known || snprintf(db, sizeof(db), "%s", kc->db) < 0)
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
	if (!kc->serving_ok)
		return bypass(&k, "session_settings");
	if (txn_has(kc, t))
		return bypass(&k, "own_uncommitted_write");
	const char *why = cache_table_unservable(t, cache_now_ms());
	if (why)
		return bypass(&k, why);
	bool deprecate_eof = s->caps & PROTO_CLIENT_DEPRECATE_EOF;
	uint64_t key = cache_shape_key(k.shape, kc->user, kc->db_known ? kc->db : "",
	                               identity_settings(kc), binary, deprecate_eof);
	struct cache_shape *sh = cache_shapes_find(kc->pc->shapes, key);
	if (sh && sh->state == CACHE_SHAPE_REJECTED)
		return bypass(&k, "rejected_shape");
	if (!sh || sh->state != CACHE_SHAPE_VERIFIED || sh->schema_version != t->schema_version ||
	    cache_now_ms() - sh->verified_ms >= PROOF_MAX_AGE_MS) {
		/* The first execution of the shape: TiDB answers, and its answer
		 * is recorded to be compared with vecgate's. */
		metrics_inc(m.misses, 1);
		if (!(sh && sh->verifying))
			start_capture(kc, sql, n, &k, t, key, binary, params, nparams);
		sql_knn_free(&k);
		return false;
	}
	uint64_t rkey = 0;
	if (kc->pc->results) {
		rkey = rcache_key(key, cmd, cmd_len);
		struct rcache_hit hit;
		if (rcache_get(kc->pc->results, rkey, t->snap->id, t->schema_version, &hit)) {
			sql_knn_free(&k);
			metrics_inc(m.result_hits, 1);
			if (send_answer(kc, hit.prefix, hit.prefix_len, sh->ncols, hit.meta,
			                hit.rows, hit.rows_len, hit.nrows))
				return true;
			return false;
		}
	}
	struct serve_job *j = calloc(1, sizeof(*j));
	if (!j)
		return bypass(&k, "memory");
	int rc = cache_plan_build(&j->plan, sql, &k, kc->lexflags, t->snap, kc->db,
	                          kc->db_known ? strlen(kc->db) : 0, params, nparams, &why);
	sql_knn_free(&k);
	if (rc != 0 || !(kc->cmd_copy = copy_bytes(cmd, cmd_len))) {
		cache_plan_free(&j->plan);
		free(j);
		count_bypass(rc > 0 ? why : "memory");
		return false;
	}
	kc->cmd_len = cmd_len;
	j->kc = kc;
	j->shape = sh;
	j->binary = binary;
	j->t0 = now_ns();
	j->rkey = rkey;
	buf_init(&j->rows);
	if (net_work_submit(s->px->loop, serve_work, serve_done, j) < 0) {
		cache_plan_free(&j->plan);
		free(j);
		count_bypass("memory");
		return false;
	}
	sh->users++;
	kc->jobs++;
	return true;
}

static bool on_query(struct sess_cache *kc, const uint8_t *payload, size_t len)
{
	const char *sql = (const char *)payload + 1;
	size_t n = len - 1;
	if (!(kc->text = copy_bytes(sql, n))) {
		kc->cls_unknown = true;
		return false;
	}
	kc->text_len = n;
	int rc = sql_classify(kc->text, n, kc->lexflags, kc->cls, MAX_STATEMENTS, &kc->ncls);
	if (rc < 0) {
		kc->cls_unknown = true;
		return false;
	}
	const struct sql_class *c = &kc->cls[0];
	if (kc->ncls != 1 || c->kind != SQL_KIND_READ ||
	    (c->flags & (SQL_CF_LOCKING | SQL_CF_STALE_READ | SQL_CF_EXEC_COMMENT)) ||
	    !mentions_vec(payload, len))
		return false;
	return try_serve(kc, kc->text, n, false, NULL, 0, payload, len);
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

/* Reads COM_STMT_EXECUTE's parameters into params (text for strings and
 * decimal text for integers, pointing into payload or scratch). false when
 * a parameter type is not one the cache can compare exactly. */
static bool read_params(struct stmt *st, const uint8_t *payload, size_t len,
                        struct cache_param *params, char *scratch)
{
	struct rd r = rd_make(payload, len);
	uint8_t cmd, flags;
	uint32_t id, iter;
	if (!rd_u8(&r, &cmd) || !rd_u32(&r, &id) || !rd_u8(&r, &flags) || !rd_u32(&r, &iter))
		return false;
	if (flags & PROTO_CURSOR_TYPE_READ_ONLY)
		return false; /* a cursor: TiDB keeps state for COM_STMT_FETCH */
	if (st->nparams == 0)
		return true;
	const uint8_t *nulls, *types;
	uint8_t bound;
	size_t nb = (st->nparams + 7u) / 8u;
	if (!rd_bytes(&r, nb, &nulls) || !rd_u8(&r, &bound))
		return false;
	if (bound) {
		if (!rd_bytes(&r, 2u * st->nparams, &types))
			return false;
		if (!st->types && !(st->types = calloc(st->nparams, sizeof(*st->types))))
			return false;
		for (unsigned i = 0; i < st->nparams; i++)
			st->types[i] = (uint16_t)(types[2 * i] | types[2 * i + 1] << 8);
	} else if (!st->types) {
		return false;
	}
	for (unsigned i = 0; i < st->nparams; i++) {
		struct cache_param *pa = &params[i];
		memset(pa, 0, sizeof(*pa));
		if (nulls[i / 8] & (1u << (i % 8))) {
			pa->is_null = true;
			continue;
		}
		uint8_t type = (uint8_t)st->types[i];
		bool is_unsigned = st->types[i] & 0x8000;
		int width = type == PROTO_TYPE_LONGLONG                           ? 8
		            : type == PROTO_TYPE_LONG || type == PROTO_TYPE_INT24 ? 4
		            : type == PROTO_TYPE_SHORT || type == PROTO_TYPE_YEAR ? 2
		            : type == PROTO_TYPE_TINY                             ? 1
		                                                                  : 0;
		if (width) {
			const uint8_t *v;
			if (!rd_bytes(&r, (size_t)width, &v))
				return false;
			uint64_t x = 0;
			for (int b = width - 1; b >= 0; b--)
				x = x << 8 | v[b];
			char *out = scratch + 24 * i;
			if (is_unsigned) {
				pa->n = (size_t)snprintf(out, 24, "%llu", (unsigned long long)x);
			} else {
				int64_t sx = width == 8   ? (int64_t)x
				             : width == 4 ? (int32_t)(uint32_t)x
				             : width == 2 ? (int16_t)(uint16_t)x
				                          : (int8_t)(uint8_t)x;
				pa->n = (size_t)snprintf(out, 24, "%lld", (long long)sx);
			}
			pa->p = out;
			pa->is_int = true;
			continue;
		}
		switch (type) {
		case PROTO_TYPE_VARCHAR:
		case PROTO_TYPE_VAR_STRING:
		case PROTO_TYPE_STRING:
		case PROTO_TYPE_BLOB:
		case PROTO_TYPE_TINY_BLOB:
		case PROTO_TYPE_MEDIUM_BLOB:
		case PROTO_TYPE_LONG_BLOB: {
			const uint8_t *v;
			uint64_t n;
			if (!rd_lenenc_str(&r, &v, &n))
				return false;
			pa->p = (const char *)v;
			pa->n = (size_t)n;
			break;
		}
		default:
			return false; /* doubles, decimals, dates: not compared here */
		}
	}
	return true;
}

static bool on_execute(struct sess_cache *kc, const uint8_t *payload, size_t len)
{
	if (len < 5)
		return false;
	uint32_t id = (uint32_t)(payload[1] | payload[2] << 8 | payload[3] << 16 |
	                         (uint32_t)payload[4] << 24);
	struct stmt *st = find_stmt(kc, id, NULL);
	kc->exec_stmt = st;
	if (!st)
		return false;
	bool long_data = st->long_data;
	st->long_data = false;
	if (long_data || !mentions_vec((const uint8_t *)st->sql, st->len))
		return false;
	struct sql_class c;
	size_t count;
	if (sql_classify(st->sql, st->len, kc->lexflags, &c, 1, &count) < 0 || count != 1 ||
	    c.kind != SQL_KIND_READ ||
	    (c.flags & (SQL_CF_LOCKING | SQL_CF_STALE_READ | SQL_CF_EXEC_COMMENT)))
		return false;
	struct cache_param *params = calloc(st->nparams ? st->nparams : 1, sizeof(*params));
	char *scratch = malloc(24u * (st->nparams ? st->nparams : 1));
	bool served = false;
	if (params && scratch && read_params(st, payload, len, params, scratch))
		served = try_serve(kc, st->sql, st->len, true, params, st->nparams, payload, len);
	else if (params && scratch && mentions_vec((const uint8_t *)st->sql, st->len))
		count_bypass("parameters");
	free(params);
	free(scratch);
	return served;
}

bool sess_cache_command(struct sess_cache *kc, const uint8_t *payload, size_t len)
{
	clear_command(kc);
	kc->cmd = payload[0];
	switch (kc->cmd) {
	case PROTO_COM_QUERY:
		return on_query(kc, payload, len);
	case PROTO_COM_STMT_PREPARE:
		kc->text = copy_bytes(payload + 1, len - 1);
		kc->text_len = len - 1;
		return false;
	case PROTO_COM_STMT_EXECUTE:
		return on_execute(kc, payload, len);
	case PROTO_COM_STMT_CLOSE:
	case PROTO_COM_STMT_SEND_LONG_DATA:
	case PROTO_COM_STMT_RESET: {
		if (len < 5)
			return false;
		uint32_t id = (uint32_t)(payload[1] | payload[2] << 8 | payload[3] << 16 |
		                         (uint32_t)payload[4] << 24);
		struct stmt **link;
		struct stmt *st = find_stmt(kc, id, &link);
		if (!st)
			return false;
		if (kc->cmd == PROTO_COM_STMT_CLOSE) {
			*link = st->next;
			stmt_free(st);
		} else {
			st->long_data = kc->cmd == PROTO_COM_STMT_SEND_LONG_DATA;
		}
		return false;
	}
	case PROTO_COM_INIT_DB:
		kc->pending_db_set = len - 1 < sizeof(kc->pending_db);
		if (kc->pending_db_set) {
			memcpy(kc->pending_db, payload + 1, len - 1);
			kc->pending_db[len - 1] = 0;
		}
		return false;
	default:
		return false;
	}
}

void sess_cache_response_packet(struct sess_cache *kc, const uint8_t *p, size_t n)
{
	struct capture *c = kc->cap;
	if (!c || c->broken)
		return;
	uint32_t len = (uint32_t)n;
	switch (c->phase) {
	case 0: {
		struct rd r = rd_make(p, n);
		if (n == 0 || p[0] == PROTO_OK || p[0] == PROTO_ERR || p[0] == PROTO_LOCAL_INFILE ||
		    !rd_lenenc(&r, &c->ncols, NULL) || c->ncols == 0 || c->ncols > 4096) {
			c->broken = true;
			return;
		}
		c->phase = 1;
		return;
	}
	case 1:
		if (buf_append(&c->defs, &len, 4) < 0 || buf_append(&c->defs, p, n) < 0)
			c->broken = true;
		if (++c->seen == c->ncols)
			c->phase = kc->s->caps & PROTO_CLIENT_DEPRECATE_EOF ? 3 : 2;
		return;
	case 2:
		if (n == 0 || p[0] != PROTO_EOF || n >= 9 || buf_append(&c->mid, p, n) < 0)
			c->broken = true;
		c->phase = 3;
		return;
	case 3:
		if (n > 0 && p[0] == PROTO_EOF && n < PROTO_MAX_CHUNK) {
			if (buf_append(&c->term, p, n) < 0)
				c->broken = true;
			c->phase = 4;
			return;
		}
		if (n == 0 || p[0] == PROTO_ERR || n >= PROTO_MAX_CHUNK ||
		    c->rows.len + n > CAPTURE_MAX || buf_append(&c->rows, &len, 4) < 0 ||
		    buf_append(&c->rows, p, n) < 0)
			c->broken = true;
		return;
	default:
		c->broken = true; /* more results */
		return;
	}
}

void sess_cache_response_done(struct sess_cache *kc, const struct proto_resp *r, uint16_t status)
{
	bool is_err = r->is_err;
	uint32_t stmt_id = r->stmt_id;
	uint16_t num_params = r->num_params;
	kc->lexflags =
	        status & PROTO_STATUS_NO_BACKSLASH_ESCAPES ? SQL_LEX_NO_BACKSLASH_ESCAPES : 0;
	switch (kc->cmd) {
	case PROTO_COM_QUERY:
		account_statements(kc, kc->text, kc->cls, kc->ncls, kc->cls_unknown || !kc->text,
		                   is_err, r->results_before_err);
		break;
	case PROTO_COM_STMT_EXECUTE: {
		struct stmt *st = kc->exec_stmt;
		struct sql_class cls[MAX_STATEMENTS];
		size_t count = 0;
		bool unknown = !st || sql_classify(st->sql, st->len, kc->lexflags, cls,
		                                   MAX_STATEMENTS, &count) < 0;
		account_statements(kc, st ? st->sql : NULL, cls, count, unknown, is_err,
		                   r->results_before_err);
		break;
	}
	case PROTO_COM_STMT_PREPARE:
		if (!is_err && kc->text) {
			struct stmt *st = calloc(1, sizeof(*st));
			if (st) {
				st->id = stmt_id;
				st->sql = kc->text;
				st->len = kc->text_len;
				st->nparams = num_params;
				kc->text = NULL;
				st->next = kc->stmts;
				kc->stmts = st;
			}
		}
		break;
	case PROTO_COM_INIT_DB:
		if (!is_err && kc->pending_db_set) {
			snprintf(kc->db, sizeof(kc->db), "%s", kc->pending_db);
			kc->db_known = true;
		}
		break;
	case PROTO_COM_RESET_CONNECTION:
		if (!is_err)
			sess_cache_reset(kc);
		break;
	default:
		break;
	}
	/* Outside a transaction now: what the session wrote is committed. */
	if (!(status & PROTO_STATUS_IN_TRANS))
		txn_commit(kc);
	/* The database answered a kNN query on a table not cached yet. */
	if (kc->admit_pending && !is_err && r->result_sets > 0)
		cache_admit(kc->pc->cache, kc->admit_db, strlen(kc->admit_db), kc->admit_table,
		            strlen(kc->admit_table), kc->admit_column, strlen(kc->admit_column));
	kc->admit_pending = false;
	if (kc->cap) {
		if (!is_err && kc->cap->phase == 4)
			capture_finish(kc, status);
		capture_free(kc->cap);
		kc->cap = NULL;
	}
}

void sess_cache_reset(struct sess_cache *kc)
{
	/* The transaction was rolled back and the statements deallocated; the
	 * session's settings are the defaults again. */
	txn_discard(kc);
	kc->serving_ok = true;
	kc->settings = kc->charset;
	kc->roles = 0;
	while (kc->stmts) {
		struct stmt *st = kc->stmts;
		kc->stmts = st->next;
		stmt_free(st);
	}
}

void sess_cache_changed_user(struct sess_cache *kc, const char *user, const char *db, size_t db_len)
{
	sess_cache_reset(kc);
	sess_cache_login(kc, user, db, db_len, kc->charset);
}

void sess_cache_change_user_failed(struct sess_cache *kc)
{
	/* Servers differ on who the session is after a refused change of user
	 * (MariaDB keeps the old one): vecgate does not guess. */
	identity_private(kc);
}
