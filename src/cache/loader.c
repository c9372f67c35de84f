/* Loading a cached table into a base segment (loader.h).
 *
 * One or more readers (each a connection and a thread) fetch rows and hand
 * them over in batches; parser threads turn each batch into a segment part
 * (cache_segment_builder_init_part); whichever thread finishes the batch
 * that comes next in row order joins the waiting parts into the result,
 * in order: reader 0's batches, then reader 1's, and so on. Readers wait
 * when the queue of unparsed batches is full, so memory stays bounded by
 * the segment being built plus a few batches (and, with several readers,
 * the parts of later key ranges that wait for the earlier ones). */
#include "cache/loader.h"

#include "cache/patch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysql.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/clock.h"
#include "core/upstream.h"
#include "net/tls_probe.h"

/* A batch ends after this many rows or bytes, whichever comes first. */
#define BATCH_ROWS  512
#define BATCH_BYTES (1u << 20)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- the table's definition ---- */

/* Which exact comparisons WHERE filters may make on a column. */
static enum cache_cmp comparison(const char *type, const char *column_type, const char *coll)
{
	static const char *const ints[] = {"tinyint", "smallint", "mediumint",
	                                   "int",     "bigint",   NULL};
	for (int i = 0; ints[i]; i++)
		if (!strcmp(type, ints[i]))
			return strstr(column_type, "unsigned") ? CACHE_CMP_UINT : CACHE_CMP_INT;
	static const char *const binaries[] = {"binary",     "varbinary", "tinyblob", "blob",
	                                       "mediumblob", "longblob",  NULL};
	for (int i = 0; binaries[i]; i++)
		if (!strcmp(type, binaries[i]))
			return CACHE_CMP_BYTES;
	static const char *const strings[] = {"char",       "varchar",  "tinytext", "text",
	                                      "mediumtext", "longtext", NULL};
	for (int i = 0; strings[i]; i++) {
		if (strcmp(type, strings[i]) != 0)
			continue;
		/* utf8mb4_bin / utf8_bin / ascii_bin / latin1_bin compare bytes
		 * with trailing spaces ignored (PAD SPACE). Other collations
		 * fold case or accents: not compared here. */
		size_t n = strlen(coll);
		if (n > 4 && !strcmp(coll + n - 4, "_bin"))
			return CACHE_CMP_PADSPACE;
		return CACHE_CMP_NONE;
	}
	return CACHE_CMP_NONE;
}

char *cache_quote_ident(const char *name, char *out, size_t n)
{
	size_t j = 0;
	out[j++] = '`';
	for (const char *p = name; *p && j + 3 < n; p++) {
		if (*p == '`')
			out[j++] = '`';
		out[j++] = *p;
	}
	out[j++] = '`';
	out[j] = 0;
	return out;
}

/* The table's name as SQL string literals ('...' contents). */
struct names {
	char db[520], table[520];
};

static void escape_names(MYSQL *my, const struct cache_load_spec *spec, struct names *n)
{
	mysql_real_escape_string(my, n->db, spec->db, (unsigned long)strlen(spec->db));
	mysql_real_escape_string(my, n->table, spec->table, (unsigned long)strlen(spec->table));
}

/* The columns, in order; *auto_inc[i]: column i is AUTO_INCREMENT. */
static int load_columns(MYSQL *my, const struct cache_load_spec *spec, const struct names *nm,
                        struct cache_load_result *out, bool **auto_inc, char *err, size_t errlen)
{
	char q[2400];
	snprintf(q, sizeof(q),
	         "SELECT COLUMN_NAME, LOWER(DATA_TYPE), IFNULL(COLLATION_NAME, ''), "
	         "LOWER(COLUMN_TYPE), LOWER(EXTRA) FROM information_schema.COLUMNS WHERE "
	         "TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION",
	         nm->db, nm->table);
	if (mysql_query(my, q) != 0) {
		seterr(err, errlen, "columns of %s.%s: %s", spec->db, spec->table, mysql_error(my));
		return -EIO;
	}
	MYSQL_RES *res = mysql_store_result(my);
	size_t n = res ? (size_t)mysql_num_rows(res) : 0;
	if (n == 0) {
		seterr(err, errlen, "table %s.%s not found", spec->db, spec->table);
		mysql_free_result(res);
		return -ENOENT;
	}
	out->cols = calloc(n, sizeof(*out->cols));
	*auto_inc = calloc(n, sizeof(**auto_inc));
	if (!out->cols || !*auto_inc) {
		mysql_free_result(res);
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	out->n_cols = n;
	out->vec_col = SIZE_MAX;
	out->dim = VEC_DIM_ANY;
	MYSQL_ROW row;
	for (size_t i = 0; (row = mysql_fetch_row(res)); i++) {
		struct cache_column *c = &out->cols[i];
		snprintf(c->name, sizeof(c->name), "%s", row[0]);
		snprintf(c->data_type, sizeof(c->data_type), "%s", row[1]);
		snprintf(c->collation, sizeof(c->collation), "%s", row[2]);
		c->cmp = comparison(c->data_type, row[3], c->collation);
		(*auto_inc)[i] = row[4] && strstr(row[4], "auto_increment");
		if (row[4] && strstr(row[4], "auto_random"))
			out->pk_auto_random = true; /* only a key column can be */
		if (strcasecmp(c->name, spec->column) == 0) {
			out->vec_col = i;
			/* VECTOR(768): rows of another dimension cannot exist, and
			 * the first row does not get to decide the table's. */
			unsigned long d;
			if (sscanf(row[3], "vector(%lu)", &d) == 1 && d > 0)
				out->dim = d;
		}
	}
	mysql_free_result(res);
	if (out->vec_col == SIZE_MAX) {
		seterr(err, errlen, "%s.%s has no column %s", spec->db, spec->table, spec->column);
		return -ENOENT;
	}
	return 0;
}

static size_t column_index(const struct cache_load_result *r, const char *name)
{
	for (size_t i = 0; name && i < r->n_cols; i++)
		if (strcasecmp(r->cols[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

/* The primary key's columns in key order, and whether another UNIQUE
 * index exists. */
static int load_keys(MYSQL *my, const struct cache_load_spec *spec, const struct names *nm,
                     struct cache_load_result *out, const bool *auto_increment_col, char *err,
                     size_t errlen)
{
	char q[2400];
	snprintf(
	        q, sizeof(q),
	        "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS "
	        "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
	        nm->db, nm->table);
	if (mysql_query(my, q) != 0) {
		seterr(err, errlen, "keys of %s.%s: %s", spec->db, spec->table, mysql_error(my));
		return -EIO;
	}
	MYSQL_RES *res = mysql_store_result(my);
	size_t n = res ? (size_t)mysql_num_rows(res) : 0;
	out->pk = calloc(n ? n : 1, sizeof(*out->pk));
	if (!out->pk) {
		mysql_free_result(res);
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	MYSQL_ROW row;
	while (res && (row = mysql_fetch_row(res))) {
		bool primary = row[0] && strcasecmp(row[0], "PRIMARY") == 0;
		if (!primary) {
			if (row[2] && atoi(row[2]) == 0)
				out->other_unique = true;
			continue;
		}
		size_t c = column_index(out, row[1]);
		if (c == SIZE_MAX) {
			/* A key on an expression is not a key of rows we hold. */
			out->n_pk = 0;
			break;
		}
		out->pk[out->n_pk++] = c;
		if (auto_increment_col[c])
			out->pk_auto_increment = true;
	}
	mysql_free_result(res);
	return 0;
}

/* TiDB only: whether the key is AUTO_RANDOM, and whether the integer key is
 * the rows' handle (clustered), so that its ranges are ranges of the table.
 * Both are left as they are when TiDB does not say. */
static void tidb_table_info(MYSQL *my, const struct cache_load_spec *spec, const struct names *nm,
                            struct cache_load_result *out, bool *clustered)
{
	char q[2400];
	snprintf(q, sizeof(q),
	         "SELECT IFNULL(TIDB_PK_TYPE, ''), IFNULL(TIDB_ROW_ID_SHARDING_INFO, '') FROM "
	         "information_schema.TABLES WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s'",
	         nm->db, nm->table);
	MYSQL_RES *res;
	MYSQL_ROW row;
	if (mysql_query(my, q) == 0 && (res = mysql_store_result(my))) {
		if ((row = mysql_fetch_row(res))) {
			if (row[0] && strcasecmp(row[0], "NONCLUSTERED") == 0)
				*clustered = false;
			if (row[1] && strncasecmp(row[1], "PK_AUTO_RANDOM", 14) == 0)
				out->pk_auto_random = true;
		}
		mysql_free_result(res);
	}
	/* SHOW CREATE TABLE marks the key's column "[auto_rand] AUTO_RANDOM(5)"
	 * inside a TiDB-only comment. */
	char qd[520], qt[520];
	snprintf(q, sizeof(q), "SHOW CREATE TABLE %s.%s",
	         cache_quote_ident(spec->db, qd, sizeof(qd)),
	         cache_quote_ident(spec->table, qt, sizeof(qt)));
	if (mysql_query(my, q) == 0 && (res = mysql_store_result(my))) {
		if ((row = mysql_fetch_row(res)) && mysql_num_fields(res) >= 2 && row[1] &&
		    strstr(row[1], "[auto_rand] AUTO_RANDOM"))
			out->pk_auto_random = true;
		mysql_free_result(res);
	}
}

/* ---- connections ---- */

/* Errors that say the server (or the path to it) cannot be used, so that
 * another server may do: libmariadb's own (2000-2999: connect, TLS, lost
 * connection) and the server turning every login away. Others (a wrong
 * password, a missing grant) would be the same on every server. */
static bool server_fault(unsigned e)
{
	return (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR) || e == 1040 /* too many connections */ ||
	       e == 1053 /* shutting down */ || e == 1129 /* host blocked */ ||
	       e == 1130 /* host not allowed */;
}

/* One connection to server i as the description says: TLS required,
 * verified, client certificate, TLS versions, timeouts. *fault: a failure
 * that is the server's (see server_fault). */
static MYSQL *connect_server(const struct cache_load_spec *spec, size_t i, bool *fault, char *err,
                             size_t errlen)
{
	struct upstream_group *u = spec->upstream;
	const struct upstream_target *t = upstream_group_target(u);
	const struct upstream_server *s = &t->servers[i];
	uint64_t connect_ms, read_ms;
	upstream_timeouts(u, &connect_ms, &read_ms);
	*fault = true;

	/* libmariadb matches the certificate only against the address it
	 * connects to: a different name is checked by a handshake of vecgate's
	 * own (the sessions' SNI, chain and name rules), and libmariadb must
	 * then see that very certificate before it sends the login. */
	char fp[NET_TLS_FP_HEX + 1] = "";
	bool pin = t->tls_verify && upstream_name_differs(t, i);
	if (pin) {
		char why[400];
		if (net_tls_probe(s->host, s->port, upstream_tls_ctx(u), upstream_verify_name(t, i),
		                  connect_ms, fp, why, sizeof(why)) < 0) {
			seterr(err, errlen, "%s: %s", s->name, why);
			return NULL;
		}
	}

	MYSQL *my = mysql_init(NULL);
	if (!my) {
		*fault = false;
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	unsigned connect_s = upstream_timeout_s(connect_ms), read_s = upstream_timeout_s(read_ms);
	/* TCP always: libmariadb takes "localhost" for its Unix socket. */
	unsigned protocol = MYSQL_PROTOCOL_TCP;
	mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &protocol);
	mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
	mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &read_s);
	mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &read_s);
	mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (t->tls) {
		/* Without verification the CA is left out too: libmariadb would
		 * check the chain against it, which sessions do not. */
		my_bool yes = 1, verify_address = t->tls_verify && !pin;
		mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &yes);
		mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify_address);
		if (t->tls_verify && *t->ca_file)
			mysql_optionsv(my, MYSQL_OPT_SSL_CA, t->ca_file);
		if (*t->cert_file) {
			mysql_optionsv(my, MYSQL_OPT_SSL_CERT, t->cert_file);
			mysql_optionsv(my, MYSQL_OPT_SSL_KEY, t->key_file);
		}
		mysql_optionsv(my, MARIADB_OPT_TLS_VERSION, upstream_tls_versions(t));
		if (pin)
			mysql_optionsv(my, MARIADB_OPT_TLS_PEER_FP, fp);
	}
	if (!mysql_real_connect(my, s->host, spec->user, spec->password, NULL, s->port, NULL, 0)) {
		unsigned e = mysql_errno(my);
		*fault = server_fault(e);
		seterr(err, errlen, "connect to %s as %s: %s%s", s->name, spec->user,
		       mysql_error(my),
		       pin && e == CR_SSL_CONNECTION_ERROR
		               ? " (the certificate differs from the one checked for the name)"
		               : "");
		mysql_close(my);
		return NULL;
	}
	return my;
}

MYSQL *cache_connect_server(const struct cache_load_spec *spec, size_t *server, char *err,
                            size_t errlen)
{
	struct upstream_group *u = spec->upstream;
	size_t order[CONFIG_ADDRS_MAX], n;
	if (*server != CACHE_ANY_SERVER) {
		order[0] = *server;
		n = 1;
	} else {
		n = upstream_order(u, order);
	}
	size_t used = 0;
	err[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		char why[600];
		bool fault;
		MYSQL *my = connect_server(spec, order[k], &fault, why, sizeof(why));
		if (my) {
			upstream_reachable(u, order[k]);
			*server = order[k];
			return my;
		}
		if (fault) {
			char what[700];
			snprintf(what, sizeof(what), "cache connection: %s", why);
			upstream_failed(u, order[k], what);
		}
		/* Every server's reason, so that the last error tells them all. */
		int w = snprintf(err + used, errlen > used ? errlen - used : 0, "%s%s",
		                 used ? "; " : "", why);
		if (w > 0)
			used = used + (size_t)w < errlen ? used + (size_t)w : errlen;
		if (!fault)
			break;
	}
	return NULL;
}

MYSQL *cache_connect(const struct cache_load_spec *spec, char *err, size_t errlen)
{
	size_t server = CACHE_ANY_SERVER;
	return cache_connect_server(spec, &server, err, errlen);
}

/* ---- the pipeline ---- */

/* Rows read by one reader, parsed by a parser, then waiting for their turn
 * to be added to the segment. Once parsed, a batch holds its rows as they
 * will be kept (a canonical vector text already left out) and gives the
 * rows as read back for a reader to reuse: with several readers, batches
 * of later key ranges wait for the earlier ranges, and should not hold the
 * vectors' text meanwhile. Batches and buffers are reused: a load would
 * otherwise have the kernel clear fresh pages for every batch. */
struct batch {
	struct batch *next;
	unsigned stream; /* the reader */
	size_t seq;      /* its place among that reader's batches */
	size_t n_rows;
	struct buf rows;   /* as read: text-protocol payloads, back to back */
	struct buf kept;   /* as parsed: canonical vector cells emptied */
	struct buf floats; /* the parsed vectors, back to back */
	struct buf meta;   /* struct parsed per row */
	size_t parsed;     /* rows parsed */
	int rc;            /* 0, -EINVAL (row `parsed` is not a vector: err), -ENOMEM... */
	char err[160];
	size_t bytes; /* held while queued or waiting */
};

/* A parsed row's vector: dim floats at the batch's next ones, or NULL. */
struct parsed {
	uint32_t dim;
	bool is_null;
	bool canonical; /* the cell is the canonical text of the floats */
	bool reused;    /* copied from the previous base, not parsed */
	uint64_t fp;    /* hash of the row's bytes as sent */
};

struct reader {
	struct load *L;
	unsigned stream;
	MYSQL *my; /* stream 0's is the control connection */
	char query[3000];
	pthread_t thread;
	bool started;
};

struct load {
	const struct cache_load_spec *spec;
	struct cache_load_result *res;
	struct cache_segment_shape shape;
	uint64_t read_ts;
	size_t server; /* the control connection's: every reader reads there */
	pthread_mutex_t mu;
	pthread_cond_t can_take; /* a batch is queued, or none will come */
	pthread_cond_t can_put;  /* the queue has room */
	struct batch *q_head, *q_tail;
	size_t q_len, q_cap;
	struct batch *spare; /* batches to reuse */
	size_t n_spare, max_spare;
	struct buf *spare_rows; /* [max_spare] read buffers to reuse */
	size_t n_spare_rows;
	unsigned readers_running;
	/* Parsed batches waiting for their turn, and whose turn it is. */
	struct batch *done;
	unsigned n_streams, cur_stream;
	size_t next_seq;
	size_t stream_batches[CACHE_LOAD_MAX_CONNECTIONS]; /* SIZE_MAX while reading */
	bool assembling;                                   /* a thread is adding rows to seg */
	struct cache_segment_builder seg;
	const char **cells; /* the adding thread's */
	unsigned long *lens;
	size_t out_bytes; /* of seg, after the last batch */
	size_t rows_out;  /* rows in seg */
	/* A refresh: the previous base, when its columns and key are the same. */
	const struct cache_base *prev;
	struct buf fps, canon; /* per row out: fingerprint, canonical flag */
	size_t reused;
	size_t rows_read; /* rows handed to the parsers */
	size_t pending;   /* bytes of batches queued or waiting */
	bool failed;
	int rc;
	char err[512];
};

static size_t batch_bytes(const struct batch *b)
{
	return sizeof(*b) + b->rows.cap + b->kept.cap + b->floats.cap + b->meta.cap;
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	buf_free(&b->rows);
	buf_free(&b->kept);
	buf_free(&b->floats);
	buf_free(&b->meta);
	free(b);
}

/* A batch to fill: a spare one, or a new one. */
static struct batch *batch_get(struct load *L)
{
	pthread_mutex_lock(&L->mu);
	struct batch *b = L->spare;
	if (b) {
		L->spare = b->next;
		L->n_spare--;
	} else if ((b = calloc(1, sizeof(*b)))) {
		buf_init(&b->rows);
		buf_init(&b->kept);
		buf_init(&b->floats);
		buf_init(&b->meta);
	}
	if (b && !b->rows.cap && L->n_spare_rows)
		b->rows = L->spare_rows[--L->n_spare_rows];
	pthread_mutex_unlock(&L->mu);
	if (b) {
		b->next = NULL;
		b->n_rows = b->parsed = 0;
		b->rc = 0;
		b->err[0] = 0;
		buf_reset(&b->rows);
		buf_reset(&b->kept);
		buf_reset(&b->floats);
		buf_reset(&b->meta);
	}
	return b;
}

/* Gives a batch back for reuse (called with L->mu held). */
static void batch_put_locked(struct load *L, struct batch *b)
{
	if (L->n_spare >= L->max_spare) {
		batch_free(b);
		return;
	}
	b->next = L->spare;
	L->spare = b;
	L->n_spare++;
}

/* Records the load's first failure and wakes every waiting thread. Called
 * with L->mu held. */
static void fail_locked(struct load *L, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fail_locked(struct load *L, int rc, const char *fmt, ...)
{
	if (!L->failed) {
		L->failed = true;
		L->rc = rc;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(L->err, sizeof(L->err), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&L->can_take);
	pthread_cond_broadcast(&L->can_put);
}

static void fail_nomem_locked(struct load *L, int rc)
{
	if (rc == -EOVERFLOW)
		fail_locked(L, rc, "%s.%s has more rows than a snapshot holds", L->spec->db,
		            L->spec->table);
	else if (rc == -EIO)
		fail_locked(L, rc, "loading %s.%s: a malformed row", L->spec->db, L->spec->table);
	else
		fail_locked(L, -ENOMEM, "out of memory");
}

static bool over_limit_locked(struct load *L)
{
	if (L->out_bytes + L->pending <= L->spec->memory_limit)
		return false;
	fail_locked(L, -ENOMEM, "%s.%s needs more than memory_limit (%zu bytes) after %zu rows",
	            L->spec->db, L->spec->table, L->spec->memory_limit, L->rows_read);
	return true;
}

/* Splits row payloads into cells: the next row of *rd. */
static bool next_row(struct rd *rd, size_t n_cols, const char **cells, unsigned long *lens)
{
	for (size_t i = 0; i < n_cols; i++) {
		uint64_t len = 0;
		bool is_null = false;
		/* A reader wrote these: well formed. */
		if (!rd_lenenc(rd, &len, &is_null) || (!is_null && rd_left(rd) < len))
			return false;
		cells[i] = is_null ? NULL : (const char *)rd->p;
		lens[i] = (unsigned long)len;
		if (!is_null)
			rd->p += len;
	}
	return true;
}

/* Gives a batch's read buffer back for reuse (with L->mu held). */
static void rows_put_locked(struct load *L, struct batch *b)
{
	if (L->n_spare_rows < L->max_spare) {
		buf_reset(&b->rows);
		L->spare_rows[L->n_spare_rows++] = b->rows;
	} else {
		buf_free(&b->rows);
	}
	buf_init(&b->rows);
}

/* Adds a parsed batch's rows to L->seg. */
static int add_batch(struct load *L, struct batch *b)
{
	struct rd rd = rd_make(b->kept.data, b->kept.len);
	const struct parsed *meta = (const struct parsed *)b->meta.data;
	const float *v = (const float *)b->floats.data;
	for (size_t r = 0; r < b->parsed; r++) {
		if (!next_row(&rd, L->shape.n_cols, L->cells, L->lens))
			return -EIO;
		int rc = cache_segment_builder_add_parsed(&L->seg, L->cells, L->lens, v,
		                                          meta[r].dim, meta[r].canonical);
		uint8_t canon = meta[r].canonical;
		if (rc == 0 && (buf_append(&L->fps, &meta[r].fp, sizeof(meta[r].fp)) < 0 ||
		                buf_append(&L->canon, &canon, 1) < 0))
			rc = -ENOMEM;
		if (rc)
			return rc;
		L->reused += meta[r].reused;
		v += meta[r].dim;
		L->rows_out++;
	}
	return 0;
}

/* Adds every parsed batch whose turn has come to L->seg. Any thread may
 * call it after a change; one at a time does the work. */
static void assemble(struct load *L)
{
	pthread_mutex_lock(&L->mu);
	if (L->assembling) {
		pthread_mutex_unlock(&L->mu);
		return;
	}
	L->assembling = true;
	while (!L->failed) {
		while (L->cur_stream < L->n_streams &&
		       L->stream_batches[L->cur_stream] == L->next_seq) {
			L->cur_stream++;
			L->next_seq = 0;
		}
		if (L->cur_stream == L->n_streams)
			break;
		struct batch **pp = &L->done, *b;
		while ((b = *pp) && (b->stream != L->cur_stream || b->seq != L->next_seq))
			pp = &b->next;
		if (!b)
			break;
		*pp = b->next;
		L->next_seq++;
		pthread_mutex_unlock(&L->mu);
		int rc = add_batch(L, b);
		size_t bytes = cache_segment_builder_bytes(&L->seg);
		pthread_mutex_lock(&L->mu);
		L->pending -= b->bytes;
		L->out_bytes = bytes;
		if (rc)
			fail_nomem_locked(L, rc);
		else if (b->rc == -EINVAL)
			fail_locked(L, -EINVAL, "row %zu: column %s is not a vector: %s",
			            L->rows_out, L->spec->column, b->err);
		else if (b->rc)
			fail_nomem_locked(L, b->rc);
		else
			(void)over_limit_locked(L);
		batch_put_locked(L, b);
	}
	L->assembling = false;
	pthread_mutex_unlock(&L->mu);
}

/* Hands a batch to the parsers; false when the load failed meanwhile (the
 * batch is freed). */
static bool queue_put(struct load *L, struct batch *b)
{
	pthread_mutex_lock(&L->mu);
	while (L->q_len >= L->q_cap && !L->failed)
		pthread_cond_wait(&L->can_put, &L->mu);
	bool ok = !L->failed;
	if (ok) {
		if (L->q_tail)
			L->q_tail->next = b;
		else
			L->q_head = b;
		L->q_tail = b;
		L->q_len++;
		b->bytes = batch_bytes(b);
		L->pending += b->bytes;
		L->rows_read += b->n_rows;
		pthread_cond_signal(&L->can_take);
	}
	pthread_mutex_unlock(&L->mu);
	if (!ok)
		batch_free(b);
	return ok;
}

/* The next batch to parse, or NULL when none will come. */
static struct batch *queue_take(struct load *L)
{
	pthread_mutex_lock(&L->mu);
	while (!L->q_head && L->readers_running && !L->failed)
		pthread_cond_wait(&L->can_take, &L->mu);
	struct batch *b = L->failed ? NULL : L->q_head;
	if (b) {
		L->q_head = b->next;
		if (!L->q_head)
			L->q_tail = NULL;
		L->q_len--;
		b->next = NULL;
		pthread_cond_signal(&L->can_put);
	}
	pthread_mutex_unlock(&L->mu);
	return b;
}

/* Parses the vector cells of one batch's rows, and keeps the rows as the
 * segment will: the vector cell empty when its text is canonical (the
 * builder does not keep it). */
/* A refresh: the previous base's copy of this row when its bytes are the
 * same (same key, same fingerprint); its floats go to v. */
static bool reuse_row(struct load *L, const uint8_t *const *kcell, const size_t *klen, uint64_t fp,
                      struct vec_f32 *v, struct parsed *m, struct buf *key, struct buf *tmp)
{
	const struct cache_base *p = L->prev;
	buf_reset(key);
	for (size_t k = 0; k < p->n_key; k++)
		if (!kcell[k] || cache_key_append(p, k, kcell[k], klen[k], key) < 0)
			return false;
	size_t r = cache_base_find(p, key->data, key->len, tmp);
	if (r == SIZE_MAX || p->row_fp[r] != fp)
		return false;
	const struct vec_table *vt = cache_segment_vecs(p->rows);
	size_t dim;
	bool is_null;
	size_t cap = vec_table_dim(vt, NULL);
	if (cap == 0 || v->cap < cap) {
		/* Room for the table's dimension; another one is parsed. */
		v->dim = 0;
		for (size_t i = 0; i < cap; i++)
			if (vec_f32_push(v, 0) < 0)
				return false;
	}
	if (vec_table_get(vt, r, v->v, v->cap, &dim, &is_null) < 0 || is_null || dim > v->cap)
		return false;
	v->dim = dim;
	m->dim = (uint32_t)dim;
	m->canonical = p->row_canonical[r];
	m->reused = true;
	return true;
}

static void parse_batch(struct load *L, struct batch *b, struct vec_f32 *v)
{
	size_t vc = L->shape.vec_col;
	struct rd rd = rd_make(b->rows.data, b->rows.len);
	struct buf key, tmp;
	buf_init(&key);
	buf_init(&tmp);
	for (size_t r = 0; r < b->n_rows; r++) {
		const uint8_t *row = rd.p, *vcell = NULL, *vend = NULL, *text = NULL;
		const uint8_t *kcell[8] = {0};
		size_t klen[8] = {0};
		uint64_t len = 0;
		for (size_t i = 0; i < L->shape.n_cols; i++) {
			bool is_null = false;
			uint64_t n;
			const uint8_t *at = rd.p;
			/* The reader wrote these: well formed. */
			if (!rd_lenenc(&rd, &n, &is_null) || (!is_null && rd_left(&rd) < n)) {
				b->rc = -EIO;
				goto out;
			}
			if (L->prev)
				for (size_t k = 0; k < L->prev->n_key; k++)
					if (L->prev->key_cols[k] == i && !is_null) {
						kcell[k] = rd.p;
						klen[k] = (size_t)n;
					}
			if (!is_null)
				rd.p += n;
			if (i == vc) {
				vcell = at;
				vend = rd.p;
				text = is_null ? NULL : rd.p - n;
				len = n;
			}
		}
		struct parsed m = {0, text == NULL, false, false, 0};
		m.fp = XXH3_64bits(row, (size_t)(rd.p - row));
		if (text && L->prev && reuse_row(L, kcell, klen, m.fp, v, &m, &key, &tmp)) {
			b->rc = 0;
		} else if (text) {
			b->rc = cache_segment_parse(&L->shape, (const char *)text,
			                            (unsigned long)len, v, &m.canonical, b->err,
			                            sizeof(b->err));
			if (b->rc)
				goto out;
			m.dim = (uint32_t)v->dim;
		}
		b->rc = buf_append(&b->meta, &m, sizeof(m));
		if (b->rc == 0 && m.dim)
			b->rc = buf_append(&b->floats, v->v, m.dim * sizeof(float));
		if (b->rc == 0)
			b->rc = buf_append(&b->kept, row, (size_t)(vcell - row));
		if (b->rc == 0)
			b->rc = m.canonical ? wr_u8(&b->kept, 0) /* "" */
			                    : buf_append(&b->kept, vcell, (size_t)(vend - vcell));
		if (b->rc == 0)
			b->rc = buf_append(&b->kept, vend, (size_t)(rd.p - vend));
		if (b->rc)
			goto out;
		b->parsed++;
	}
out:
	buf_free(&key);
	buf_free(&tmp);
}

static void *parser_main(void *arg)
{
	struct load *L = arg;
	struct vec_f32 v;
	vec_f32_init(&v);
	struct batch *b;
	while ((b = queue_take(L))) {
		parse_batch(L, b, &v);
		pthread_mutex_lock(&L->mu);
		rows_put_locked(L, b);
		size_t bytes = batch_bytes(b);
		L->pending = L->pending - b->bytes + bytes;
		b->bytes = bytes;
		b->next = L->done;
		L->done = b;
		(void)over_limit_locked(L);
		pthread_mutex_unlock(&L->mu);
		assemble(L);
	}
	vec_f32_free(&v);
	return NULL;
}

/* Appends one row to b as a text-protocol payload. */
static int append_row(struct buf *b, MYSQL_ROW row, const unsigned long *len, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = row[i] ? wr_lenenc_str(b, row[i], len[i]) : wr_u8(b, 0xFB);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void reader_done(struct load *L, unsigned stream, size_t batches)
{
	pthread_mutex_lock(&L->mu);
	L->stream_batches[stream] = batches;
	L->readers_running--;
	pthread_cond_broadcast(&L->can_take);
	pthread_mutex_unlock(&L->mu);
	assemble(L);
}

/* One reader: its connection's query, every row into batches. */
static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct load *L = rd->L;
	const struct cache_load_spec *spec = L->spec;
	size_t n_cols = L->shape.n_cols, seq = 0;
	char err[512];
	int rc = -EIO;
	MYSQL_RES *res = NULL;
	struct batch *b = NULL;
	bool cancel = false;
	if (!rd->my) {
		size_t server = L->server;
		if (!(rd->my = cache_connect_server(spec, &server, err, sizeof(err))))
			goto failed;
		if (L->read_ts) {
			char q[96];
			snprintf(q, sizeof(q), "SET @@tidb_snapshot = '%" PRIu64 "'", L->read_ts);
			if (mysql_query(rd->my, q) != 0) {
				seterr(err, sizeof(err), "%s: %s", q, mysql_error(rd->my));
				goto failed;
			}
		}
	}
	if (mysql_query(rd->my, rd->query) != 0 || !(res = mysql_use_result(rd->my))) {
		seterr(err, sizeof(err), "%s: %s", rd->query, mysql_error(rd->my));
		goto failed;
	}
	if (mysql_num_fields(res) != n_cols) {
		seterr(err, sizeof(err), "%s.%s changed while loading", spec->db, spec->table);
		cancel = true;
		goto failed;
	}
	if (rd->stream == 0) {
		MYSQL_FIELD *fields = mysql_fetch_fields(res);
		for (size_t i = 0; i < n_cols; i++) {
			L->res->cols[i].wire_type = (uint8_t)fields[i].type;
			L->res->cols[i].wire_flags = (uint16_t)fields[i].flags;
			L->res->cols[i].decimals = (uint8_t)fields[i].decimals;
		}
	}
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res))) {
		if (!b && !(b = batch_get(L))) {
			cancel = true;
			goto nomem;
		}
		unsigned long *len = mysql_fetch_lengths(res);
		if (append_row(&b->rows, row, len, n_cols) < 0) {
			cancel = true;
			goto nomem;
		}
		if (++b->n_rows < BATCH_ROWS && b->rows.len < BATCH_BYTES)
			continue;
		b->stream = rd->stream;
		b->seq = seq++;
		bool ok = queue_put(L, b);
		b = NULL;
		if (!ok) {
			cancel = true;
			goto out;
		}
	}
	if (mysql_errno(rd->my)) {
		seterr(err, sizeof(err), "reading %s.%s: %s", spec->db, spec->table,
		       mysql_error(rd->my));
		goto failed;
	}
	if (b && b->n_rows) {
		b->stream = rd->stream;
		b->seq = seq++;
		bool ok = queue_put(L, b);
		b = NULL;
		if (!ok)
			goto out;
	}
	batch_free(b);
	mysql_free_result(res);
	reader_done(L, rd->stream, seq);
	return NULL;
nomem:
	seterr(err, sizeof(err), "out of memory");
	rc = -ENOMEM;
failed:
	pthread_mutex_lock(&L->mu);
	fail_locked(L, rc, "%s", err);
	pthread_mutex_unlock(&L->mu);
out:
	batch_free(b);
	if (res) {
		/* Not the rest of the table: end the connection's reading. */
		if (cancel)
			mariadb_cancel(rd->my);
		mysql_free_result(res);
	}
	reader_done(L, rd->stream, SIZE_MAX);
	return NULL;
}

/* ---- planning ---- */

static unsigned cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

/* A range split needs at least this many keys per connection: below that,
 * more connections cost more than they save. */
#define SPLIT_MIN_KEYS 1024

/* The key range [lo, hi] in n parts: each reader's WHERE clause. */
struct split {
	unsigned n;
	char where[CACHE_LOAD_MAX_CONNECTIONS][1600];
};

static void split_range(const char *key, bool is_unsigned, const char *lo_s, const char *hi_s,
                        unsigned want, uint64_t min_keys, struct split *sp)
{
	uint64_t lo = is_unsigned ? strtoull(lo_s, NULL, 10) : (uint64_t)strtoll(lo_s, NULL, 10);
	uint64_t hi = is_unsigned ? strtoull(hi_s, NULL, 10) : (uint64_t)strtoll(hi_s, NULL, 10);
	uint64_t span = hi - lo; /* hi >= lo in the key's own order */
	unsigned n = want;
	if (span / min_keys < (uint64_t)n - 1)
		n = (unsigned)(span / min_keys) + 1;
	sp->n = n;
	if (n <= 1) {
		sp->n = 1;
		sp->where[0][0] = 0;
		return;
	}
	char b[CACHE_LOAD_MAX_CONNECTIONS + 1][24];
	for (unsigned i = 1; i < n; i++) {
		uint64_t v = lo + (uint64_t)((unsigned __int128)span * i / n);
		if (is_unsigned)
			snprintf(b[i], sizeof(b[i]), "%" PRIu64, v);
		else
			snprintf(b[i], sizeof(b[i]), "%" PRId64, (int64_t)v);
	}
	/* The first and last ranges are open: together they cover every key
	 * whatever the bounds. */
	for (unsigned i = 0; i < n; i++) {
		if (i == 0)
			snprintf(sp->where[i], sizeof(sp->where[i]), " WHERE %s < %s", key, b[1]);
		else if (i + 1 == n)
			snprintf(sp->where[i], sizeof(sp->where[i]), " WHERE %s >= %s", key, b[i]);
		else
			snprintf(sp->where[i], sizeof(sp->where[i]), " WHERE %s >= %s AND %s < %s",
			         key, b[i], key, b[i + 1]);
	}
}

/* Reads MIN and MAX of the key (at the read timestamp, on TiDB) and splits
 * its range. On TiDB, first takes the timestamp every reader will read at:
 * the start timestamp of a transaction begun now. false: read over one
 * connection (an empty table, or TiDB did not give a timestamp). */
static bool plan_split(MYSQL *my, const struct cache_load_spec *spec, const char *key,
                       bool is_unsigned, bool tidb, unsigned want, uint64_t min_keys,
                       uint64_t *read_ts, struct split *sp)
{
	char q[1600], qd[520], qt[520];
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	bool ok = false;
	*read_ts = 0;
	if (tidb) {
		if (mysql_query(my, "START TRANSACTION WITH CONSISTENT SNAPSHOT") != 0)
			return false;
		if (mysql_query(my, "SELECT @@tidb_current_ts") != 0 ||
		    !(res = mysql_store_result(my)))
			goto out;
		if ((row = mysql_fetch_row(res)) && row[0])
			*read_ts = strtoull(row[0], NULL, 10);
		mysql_free_result(res);
		res = NULL;
		if (*read_ts == 0)
			goto out;
	}
	snprintf(q, sizeof(q), "SELECT MIN(%s), MAX(%s) FROM %s.%s", key, key,
	         cache_quote_ident(spec->db, qd, sizeof(qd)),
	         cache_quote_ident(spec->table, qt, sizeof(qt)));
	if (mysql_query(my, q) != 0 || !(res = mysql_store_result(my)))
		goto out;
	if ((row = mysql_fetch_row(res)) && row[0] && row[1]) {
		split_range(key, is_unsigned, row[0], row[1], want, min_keys, sp);
		ok = sp->n > 1;
	}
out:
	if (res)
		mysql_free_result(res);
	if (tidb && mysql_query(my, "COMMIT") != 0)
		ok = false;
	if (!ok)
		*read_ts = 0;
	return ok;
}

/* ---- the load ---- */

void cache_load_result_free(struct cache_load_result *r)
{
	if (!r)
		return;
	free(r->cols);
	free(r->pk);
	free(r->row_fp);
	free(r->row_canonical);
	cache_segment_unref(r->base);
	memset(r, 0, sizeof(*r));
}

int cache_load_base(const struct cache_load_spec *spec, struct cache_load_result *out, char *err,
                    size_t errlen)
{
	return cache_load_base_tuned(spec, NULL, out, err, errlen);
}

int cache_load_base_tuned(const struct cache_load_spec *spec,
                          const struct cache_load_tuning *tuning, struct cache_load_result *out,
                          char *err, size_t errlen)
{
	static const struct cache_load_tuning defaults;
	if (!tuning)
		tuning = &defaults;
	uint64_t t0 = core_now_ms();
	memset(out, 0, sizeof(*out));
	struct load *L = NULL;
	struct reader *readers = NULL;
	pthread_t *parsers = NULL;
	unsigned n_parsers = 0;
	bool *auto_inc = NULL, sync_init = false;
	int rc = -EIO;
	size_t server = CACHE_ANY_SERVER;
	MYSQL *my = cache_connect_server(spec, &server, err, errlen);
	if (!my)
		return -EIO;
	struct names nm;
	escape_names(my, spec, &nm);
	if ((rc = load_columns(my, spec, &nm, out, &auto_inc, err, errlen)) < 0 ||
	    (rc = load_keys(my, spec, &nm, out, auto_inc, err, errlen)) < 0)
		goto failed;
	free(auto_inc);
	auto_inc = NULL;

	/* TiDB's vector literal grammar changed after v8.5 (docs/tidb.md §4);
	 * cells TiDB printed parse the same either way, MariaDB's LONGTEXT
	 * stand-in holds the text its clients inserted. */
	const char *version = mysql_get_server_info(my);
	snprintf(out->server_version, sizeof(out->server_version), "%s", version);
	out->dialect = strstr(version, "TiDB-v8.5") ? VEC_TIDB_V8_5 : VEC_TIDB_MASTER;
	out->mariadb = strstr(version, "MariaDB") != NULL;
	bool tidb = strstr(version, "TiDB") != NULL;
	bool clustered = true;
	if (tidb)
		tidb_table_info(my, spec, &nm, out, &clustered);

	L = calloc(1, sizeof(*L));
	if (!L) {
		seterr(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto failed;
	}
	L->spec = spec;
	L->res = out;
	L->server = server;
	buf_init(&L->fps);
	buf_init(&L->canon);
	/* A refresh reuses the rows of the previous base that did not change,
	 * when that base has the same columns and key (and kept fingerprints). */
	const struct cache_base *pv = spec->prev;
	if (pv && pv->row_fp && pv->row_canonical && pv->n_key && pv->n_key == out->n_pk &&
	    pv->n_cols == out->n_cols && pv->vec_col == out->vec_col &&
	    pv->dialect == out->dialect) {
		bool same = true;
		for (size_t k = 0; k < pv->n_key; k++)
			same &= pv->key_cols[k] == out->pk[k];
		for (size_t c = 0; c < out->n_cols && same; c++)
			same &= !strcmp(pv->cols[c].name, out->cols[c].name) &&
			        !strcmp(pv->cols[c].data_type, out->cols[c].data_type);
		L->prev = same ? pv : NULL;
	}
	/* Whatever the server, a cell that is exactly vec_format_f32_array()
	 * of its floats is what the server sends for that row: the text need
	 * not be kept (segment.h). */
	L->shape = (struct cache_segment_shape){
	        .n_cols = out->n_cols,
	        .vec_col = out->vec_col,
	        .dim = out->dim,
	        .dialect = out->dialect,
	        .canonical_vectors = true,
	};
	if ((rc = cache_segment_builder_init(&L->seg, &L->shape)) < 0) {
		seterr(err, errlen, rc == -ENOMEM ? "out of memory" : "%s.%s: bad vector column",
		       spec->db, spec->table);
		goto failed;
	}

	/* Several connections: ranges of a single-column integer key, read at
	 * one timestamp (TiDB), or for tests without one. */
	struct split sp = {.n = 1};
	unsigned want = tuning->connections ? tuning->connections : cores() < 2 ? 2 : cores();
	if (want > CACHE_LOAD_MAX_CONNECTIONS)
		want = CACHE_LOAD_MAX_CONNECTIONS;
	bool int_key = out->n_pk == 1 && (out->cols[out->pk[0]].cmp == CACHE_CMP_INT ||
	                                  out->cols[out->pk[0]].cmp == CACHE_CMP_UINT);
	char qd[520], qt[520], qk[520];
	cache_quote_ident(spec->db, qd, sizeof(qd));
	cache_quote_ident(spec->table, qt, sizeof(qt));
	out->loaded_ms = core_now_ms();
	if (int_key && want > 1 && ((tidb && clustered) || tuning->split_without_snapshot)) {
		cache_quote_ident(out->cols[out->pk[0]].name, qk, sizeof(qk));
		if (!plan_split(my, spec, qk, out->cols[out->pk[0]].cmp == CACHE_CMP_UINT,
		                tidb && !tuning->split_without_snapshot, want,
		                tuning->split_without_snapshot ? 1 : SPLIT_MIN_KEYS, &L->read_ts,
		                &sp))
			sp.n = 1;
		if (L->read_ts && sp.n > 1) {
			char q[96];
			snprintf(q, sizeof(q), "SET @@tidb_snapshot = '%" PRIu64 "'", L->read_ts);
			if (mysql_query(my, q) != 0) {
				/* No stale read: one connection, one read. */
				sp.n = 1;
				L->read_ts = 0;
			}
		}
		if (sp.n == 1) {
			sp.where[0][0] = 0;
			out->loaded_ms = core_now_ms();
		}
	}
	out->read_ts = L->read_ts;

	L->n_streams = sp.n;
	n_parsers = tuning->parse_threads ? tuning->parse_threads : cores();
	if (n_parsers > 64)
		n_parsers = 64;
	L->q_cap = 2 * (size_t)n_parsers + 2;
	L->max_spare = L->q_cap + n_parsers + sp.n + 1;
	L->spare_rows = calloc(L->max_spare, sizeof(*L->spare_rows));
	L->cells = malloc(out->n_cols * sizeof(*L->cells));
	L->lens = malloc(out->n_cols * sizeof(*L->lens));
	L->readers_running = sp.n;
	for (unsigned i = 0; i < sp.n; i++)
		L->stream_batches[i] = SIZE_MAX;
	readers = calloc(sp.n, sizeof(*readers));
	parsers = calloc(n_parsers, sizeof(*parsers));
	if (!readers || !parsers || !L->cells || !L->lens || !L->spare_rows ||
	    pthread_mutex_init(&L->mu, NULL) != 0) {
		seterr(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto failed;
	}
	pthread_cond_init(&L->can_take, NULL);
	pthread_cond_init(&L->can_put, NULL);
	sync_init = true;
	for (unsigned i = 0; i < sp.n; i++) {
		readers[i].L = L;
		readers[i].stream = i;
		snprintf(readers[i].query, sizeof(readers[i].query), "SELECT * FROM %s.%s%s", qd,
		         qt, sp.where[i]);
	}
	readers[0].my = my;
	my = NULL;
	unsigned started = 0;
	for (; started < n_parsers; started++)
		if (pthread_create(&parsers[started], NULL, parser_main, L) != 0)
			break;
	for (unsigned i = 1; i < sp.n && started; i++)
		readers[i].started =
		        pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]) == 0;
	pthread_mutex_lock(&L->mu);
	if (!started)
		fail_locked(L, -EAGAIN, "cannot start a thread to load %s.%s", spec->db,
		            spec->table);
	for (unsigned i = 1; i < sp.n; i++) {
		if (readers[i].started)
			continue;
		fail_locked(L, -EAGAIN, "cannot start a thread to load %s.%s", spec->db,
		            spec->table);
		L->readers_running--;
		L->stream_batches[i] = SIZE_MAX;
	}
	pthread_mutex_unlock(&L->mu);
	if (started)
		reader_main(&readers[0]);
	else
		L->readers_running--;
	for (unsigned i = 1; i < sp.n; i++)
		if (readers[i].started)
			pthread_join(readers[i].thread, NULL);
	for (unsigned i = 0; i < started; i++)
		pthread_join(parsers[i], NULL);
	assemble(L);
	out->connections = sp.n;
	out->parse_threads = started;
	if (!L->failed && L->cur_stream != L->n_streams) {
		L->failed = true;
		L->rc = -EIO;
		snprintf(L->err, sizeof(L->err), "loading %s.%s: rows lost", spec->db, spec->table);
	}
	if (L->failed) {
		seterr(err, errlen, "%s", L->err);
		rc = L->rc;
		goto failed;
	}
	/* The screen is built after the snapshot is published (cache.c), so
	 * that a load takes the database's time and not the screen's. */
	cache_segment_builder_defer_screen(&L->seg);
	out->base = cache_segment_builder_finish(&L->seg);
	if (!out->base) {
		seterr(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto failed;
	}
	out->row_fp = (uint64_t *)L->fps.data;
	out->row_canonical = L->canon.data;
	buf_init(&L->fps);
	buf_init(&L->canon);
	out->reused_rows = L->reused;
	rc = 0;
failed:
	if (L) {
		while (L->q_head) {
			struct batch *b = L->q_head;
			L->q_head = b->next;
			batch_free(b);
		}
		while (L->done) {
			struct batch *b = L->done;
			L->done = b->next;
			batch_free(b);
		}
		while (L->spare) {
			struct batch *b = L->spare;
			L->spare = b->next;
			batch_free(b);
		}
		for (size_t i = 0; L->spare_rows && i < L->n_spare_rows; i++)
			buf_free(&L->spare_rows[i]);
		free(L->spare_rows);
		free(L->cells);
		free(L->lens);
		cache_segment_builder_free(&L->seg);
		if (sync_init) {
			pthread_mutex_destroy(&L->mu);
			pthread_cond_destroy(&L->can_take);
			pthread_cond_destroy(&L->can_put);
		}
	}
	if (readers)
		for (unsigned i = 0; i < L->n_streams; i++)
			if (readers[i].my)
				mysql_close(readers[i].my);
	if (my)
		mysql_close(my);
	free(readers);
	free(parsers);
	if (L) {
		buf_free(&L->fps);
		buf_free(&L->canon);
	}
	free(L);
	free(auto_inc);
	if (rc < 0)
		cache_load_result_free(out);
	else
		out->load_ms = core_now_ms() - t0;
	return rc;
}

/* ---- a snapshot from a load ---- */

struct cache_snapshot *cache_snapshot_load(const struct cache_load_spec *spec, char *err,
                                           size_t errlen)
{
	struct cache_load_result r;
	if (cache_load_base(spec, &r, err, errlen) < 0)
		return NULL;
	struct cache_base *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		cache_load_result_free(&r);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->n_cols = r.n_cols;
	b->vec_col = r.vec_col;
	b->cols = r.cols;
	r.cols = NULL;
	b->mariadb = r.mariadb;
	b->dialect = r.dialect;
	b->rows = r.base;
	r.base = NULL;
	b->row_fp = r.row_fp;
	b->row_canonical = r.row_canonical;
	r.row_fp = NULL;
	r.row_canonical = NULL;
	b->reused_rows = r.reused_rows;
	b->loaded_ms = r.loaded_ms;
	b->load_ms = r.load_ms;
	b->other_unique = r.other_unique;
	b->auto_random = r.pk_auto_random;
	b->why_no_key = "no_primary_key";
	if (r.n_pk > 0 && r.n_pk <= sizeof(b->key_cols) / sizeof(b->key_cols[0])) {
		b->why_no_key = NULL;
		for (size_t i = 0; i < r.n_pk; i++) {
			const struct cache_column *c = &b->cols[r.pk[i]];
			/* Keys whose literals and cells compare exactly: integers,
			 * binary and *_bin strings (not fixed BINARY(n), padded
			 * with zero bytes). */
			if (c->cmp == CACHE_CMP_NONE || !strcmp(c->data_type, "binary"))
				b->why_no_key = "key_type";
			b->key_cols[i] = r.pk[i];
		}
		b->n_key = b->why_no_key ? 0 : r.n_pk;
		b->auto_increment = b->n_key == 1 && r.pk_auto_increment;
		if (b->auto_random) {
			b->n_key = 0;
			b->why_no_key = "auto_random";
		}
	} else if (r.n_pk) {
		b->why_no_key = "key_columns";
	}
	cache_load_result_free(&r);
	b->bytes = sizeof(*b) + b->n_cols * sizeof(*b->cols) + cache_segment_bytes(b->rows) +
	           cache_segment_rows(b->rows) * (sizeof(*b->row_fp) + 1);
	int rc = cache_base_index(b);
	if (rc == -ENOMEM) {
		snprintf(err, errlen, "out of memory");
		cache_base_unref(b);
		return NULL;
	}
	if (rc < 0) {
		b->n_key = 0;
		b->why_no_key = "duplicate_key";
	}
	struct cache_snapshot *snap =
	        cache_snapshot_from_base(b, spec->db, spec->table, spec->version);
	if (!snap)
		snprintf(err, errlen, "out of memory");
	return snap;
}
