/* Snapshot loading over libmariadb (on a pool thread) and cell access. */
#include "cache/snapshot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mysql.h>

#include "core/clock.h"
#include "vec/vec.h"

static void snapshot_free(struct cache_snapshot *s)
{
	if (!s)
		return;
	free(s->cols);
	free(s->rows);
	free(s->row_off);
	vec_table_free(s->vecs);
	free(s);
}

void cache_snapshot_unref(struct cache_snapshot *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		snapshot_free(s);
}

bool cache_snapshot_cell(const struct cache_snapshot *s, size_t r, size_t c, const uint8_t **p,
                         size_t *n)
{
	struct rd rd = rd_make(s->rows + s->row_off[r], s->row_off[r + 1] - s->row_off[r]);
	for (size_t i = 0;; i++) {
		uint64_t len;
		bool is_null;
		/* The loader wrote these rows: they are well formed. */
		if (!rd_lenenc(&rd, &len, &is_null))
			return false;
		if (i == c) {
			if (is_null)
				return false;
			*p = rd.p;
			*n = (size_t)len;
			return true;
		}
		if (!is_null && !rd_skip(&rd, (size_t)len))
			return false;
	}
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

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

static int load_columns(MYSQL *my, struct cache_snapshot *s, const char *column,
                        size_t *declared_dim, char *err, size_t errlen)
{
	char q[2400], edb[520], etable[520];
	mysql_real_escape_string(my, edb, s->db, (unsigned long)strlen(s->db));
	mysql_real_escape_string(my, etable, s->table, (unsigned long)strlen(s->table));
	snprintf(q, sizeof(q),
	         "SELECT COLUMN_NAME, LOWER(DATA_TYPE), IFNULL(COLLATION_NAME, ''), "
	         "LOWER(COLUMN_TYPE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' "
	         "AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION",
	         edb, etable);
	if (mysql_query(my, q) != 0) {
		seterr(err, errlen, "columns of %s.%s: %s", s->db, s->table, mysql_error(my));
		return -EIO;
	}
	MYSQL_RES *res = mysql_store_result(my);
	size_t n = res ? (size_t)mysql_num_rows(res) : 0;
	if (n == 0) {
		seterr(err, errlen, "table %s.%s not found", s->db, s->table);
		mysql_free_result(res);
		return -ENOENT;
	}
	s->cols = calloc(n, sizeof(*s->cols));
	if (!s->cols) {
		mysql_free_result(res);
		return -ENOMEM;
	}
	s->n_cols = n;
	s->vec_col = SIZE_MAX;
	MYSQL_ROW row;
	for (size_t i = 0; (row = mysql_fetch_row(res)); i++) {
		struct cache_column *c = &s->cols[i];
		snprintf(c->name, sizeof(c->name), "%s", row[0]);
		snprintf(c->data_type, sizeof(c->data_type), "%s", row[1]);
		snprintf(c->collation, sizeof(c->collation), "%s", row[2]);
		c->cmp = comparison(c->data_type, row[3], c->collation);
		if (strcasecmp(c->name, column) == 0) {
			s->vec_col = i;
			/* VECTOR(768): rows of another dimension cannot exist, and
			 * the first row does not get to decide the table's. */
			unsigned long d;
			if (sscanf(row[3], "vector(%lu)", &d) == 1 && d > 0)
				*declared_dim = d;
		}
	}
	mysql_free_result(res);
	if (s->vec_col == SIZE_MAX) {
		seterr(err, errlen, "%s.%s has no column %s", s->db, s->table, column);
		return -ENOENT;
	}
	return 0;
}

/* Appends one text row payload: each cell as TiDB sent it (NULL: 0xFB). */
static int append_row(struct buf *b, MYSQL_ROW row, const unsigned long *len, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = row[i] ? wr_lenenc_str(b, row[i], len[i]) : wr_u8(b, 0xFB);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static MYSQL *connect_upstream(const struct cache_load_spec *spec, char *err, size_t errlen)
{
	MYSQL *my = mysql_init(NULL);
	if (!my) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	unsigned timeout = spec->timeout_s ? spec->timeout_s : 600;
	unsigned connect_timeout = 10;
	mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
	mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &timeout);
	mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (spec->tls) {
		my_bool yes = 1, verify = spec->tls_verify;
		mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &yes);
		mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
		if (spec->tls_ca_file && *spec->tls_ca_file)
			mysql_optionsv(my, MYSQL_OPT_SSL_CA, spec->tls_ca_file);
	}
	if (!mysql_real_connect(my, spec->host, spec->user, spec->password, NULL,
	                        (unsigned)spec->port, NULL, 0)) {
		seterr(err, errlen, "connect to %s:%d as %s: %s", spec->host, spec->port,
		       spec->user, mysql_error(my));
		mysql_close(my);
		return NULL;
	}
	return my;
}

static char *quote_ident(const char *name, char *out, size_t n)
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

struct cache_snapshot *cache_snapshot_load(const struct cache_load_spec *spec, char *err,
                                           size_t errlen)
{
	uint64_t t0 = core_now_ms();
	struct cache_snapshot *s = calloc(1, sizeof(*s));
	struct buf rows;
	struct buf offs;
	struct vec_builder vb = {0};
	struct vec_f32 v;
	buf_init(&rows);
	buf_init(&offs);
	vec_f32_init(&v);
	MYSQL *my = NULL;
	MYSQL_RES *res = NULL;
	if (!s) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	static atomic_uint_fast64_t next_id = 1;
	s->id = atomic_fetch_add(&next_id, 1);
	snprintf(s->db, sizeof(s->db), "%s", spec->db);
	snprintf(s->table, sizeof(s->table), "%s", spec->table);
	s->version = spec->version;
	size_t dim = VEC_DIM_ANY;
	if (!(my = connect_upstream(spec, err, errlen)) ||
	    load_columns(my, s, spec->column, &dim, err, errlen) < 0)
		goto failed;

	/* TiDB's vector literal grammar changed after v8.5 (docs/tidb.md §4);
	 * cells TiDB printed parse the same either way, MariaDB's LONGTEXT
	 * stand-in holds the text its clients inserted. */
	const char *version = mysql_get_server_info(my);
	enum vec_dialect dialect = strstr(version, "TiDB-v8.5") ? VEC_TIDB_V8_5 : VEC_TIDB_MASTER;
	s->mariadb = strstr(version, "MariaDB") != NULL;
	if (vec_builder_init(&vb, dim) < 0)
		goto nomem;
	char q[1600], qd[520], qt[520];
	snprintf(q, sizeof(q), "SELECT * FROM %s.%s", quote_ident(spec->db, qd, sizeof(qd)),
	         quote_ident(spec->table, qt, sizeof(qt)));
	s->loaded_ms = core_now_ms();
	if (mysql_query(my, q) != 0 || !(res = mysql_use_result(my))) {
		seterr(err, errlen, "%s: %s", q, mysql_error(my));
		goto failed;
	}
	if (mysql_num_fields(res) != s->n_cols) {
		seterr(err, errlen, "%s.%s changed while loading", spec->db, spec->table);
		goto failed;
	}
	MYSQL_FIELD *fields = mysql_fetch_fields(res);
	for (size_t i = 0; i < s->n_cols; i++) {
		s->cols[i].wire_type = (uint8_t)fields[i].type;
		s->cols[i].wire_flags = (uint16_t)fields[i].flags;
		s->cols[i].decimals = (uint8_t)fields[i].decimals;
	}
	MYSQL_ROW row;
	size_t n = 0;
	while ((row = mysql_fetch_row(res))) {
		unsigned long *len = mysql_fetch_lengths(res);
		size_t off = rows.len;
		if (buf_append(&offs, &off, sizeof(off)) < 0 ||
		    append_row(&rows, row, len, s->n_cols) < 0)
			goto nomem;
		const char *cell = row[s->vec_col];
		int rc;
		if (!cell) {
			rc = vec_builder_add_null(&vb);
		} else {
			struct vec_err ve;
			v.dim = 0;
			if (vec_parse_dialect(cell, len[s->vec_col], dialect, &v, &ve) < 0) {
				seterr(err, errlen, "row %zu: column %s is not a vector: %s", n,
				       spec->column, ve.msg);
				goto failed;
			}
			rc = vec_builder_add(&vb, v.v, v.dim);
		}
		if (rc < 0)
			goto nomem;
		n++;
		if (rows.cap + offs.cap + vb.t->bytes > spec->memory_limit) {
			seterr(err, errlen,
			       "%s.%s needs more than memory_limit (%zu bytes) after %zu rows",
			       spec->db, spec->table, spec->memory_limit, n);
			goto failed;
		}
	}
	if (mysql_errno(my)) {
		seterr(err, errlen, "reading %s.%s: %s", spec->db, spec->table, mysql_error(my));
		goto failed;
	}
	size_t end = rows.len;
	if (buf_append(&offs, &end, sizeof(end)) < 0)
		goto nomem;
	mysql_free_result(res);
	mysql_close(my);
	vec_f32_free(&v);
	s->n_rows = n;
	s->vecs = vec_builder_finish(&vb);
	/* Hand over the buffers' memory (shrunk to fit). */
	s->rows = rows.len ? realloc(rows.data, rows.len) : rows.data;
	if (!s->rows)
		s->rows = rows.data;
	s->row_off = (size_t *)offs.data;
	s->bytes = sizeof(*s) + s->n_cols * sizeof(*s->cols) + rows.len + offs.len +
	           vec_table_bytes(s->vecs);
	s->load_ms = core_now_ms() - t0;
	return s;
nomem:
	seterr(err, errlen, "out of memory");
failed:
	if (res)
		mysql_free_result(res);
	if (my)
		mysql_close(my);
	vec_builder_free(&vb);
	vec_f32_free(&v);
	buf_free(&rows);
	buf_free(&offs);
	snapshot_free(s);
	return NULL;
}
