/* The read-back of a patch: SELECT * ... WHERE key IN (...). */
#include "cache/patch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys per statement: a long IN list is cut into statements of this many
 * (each row is still read after the commit that wrote it). */
#define KEYS_PER_QUERY 500

static int append_ident(struct buf *q, const char *name)
{
	char quoted[2 * 256 + 3]; /* a name of up to 256 bytes, every byte doubled */
	cache_quote_ident(name, quoted, sizeof(quoted));
	return buf_append(q, quoted, strlen(quoted)) < 0 ? -ENOMEM : 0;
}

/* One value of a canonical key as an SQL literal. */
static int append_value(MYSQL *my, struct buf *q, const struct cache_column *col, const uint8_t *p,
                        uint32_t n)
{
	if (col->cmp == CACHE_CMP_INT || col->cmp == CACHE_CMP_UINT)
		return buf_append(q, p, n) < 0 ? -ENOMEM : 0;
	if (buf_reserve(q, 2u * n + 3) < 0)
		return -ENOMEM;
	q->data[q->len++] = '\'';
	q->len += mysql_real_escape_string(my, (char *)q->data + q->len, (const char *)p, n);
	q->data[q->len++] = '\'';
	return 0;
}

/* Appends "(v1, v2)" (or "v" for one column) for the key at keys[*off]. */
static int append_key(MYSQL *my, struct buf *q, const struct cache_base *b, const struct buf *keys,
                      size_t *off)
{
	if (b->n_key > 1 && buf_append(q, "(", 1) < 0)
		return -ENOMEM;
	for (size_t c = 0; c < b->n_key; c++) {
		uint32_t n;
		if (keys->len - *off < 4)
			return -EINVAL;
		memcpy(&n, keys->data + *off, 4);
		*off += 4;
		if (keys->len - *off < n)
			return -EINVAL;
		if ((c && buf_append(q, ", ", 2) < 0) ||
		    append_value(my, q, &b->cols[b->key_cols[c]], keys->data + *off, n) < 0)
			return -ENOMEM;
		*off += n;
	}
	return b->n_key > 1 && buf_append(q, ")", 1) < 0 ? -ENOMEM : 0;
}

static int append_key_columns(struct buf *q, const struct cache_base *b)
{
	if (b->n_key > 1 && buf_append(q, "(", 1) < 0)
		return -ENOMEM;
	for (size_t c = 0; c < b->n_key; c++)
		if ((c && buf_append(q, ", ", 2) < 0) ||
		    append_ident(q, b->cols[b->key_cols[c]].name) < 0)
			return -ENOMEM;
	return b->n_key > 1 && buf_append(q, ")", 1) < 0 ? -ENOMEM : 0;
}

static int run(MYSQL *my, const struct buf *q, const struct cache_base *b,
               struct cache_segment_builder *sb, char *err, size_t errlen)
{
	if (mysql_real_query(my, (const char *)q->data, q->len) != 0) {
		snprintf(err, errlen, "read back: %s", mysql_error(my));
		return -EIO;
	}
	MYSQL_RES *res = mysql_use_result(my);
	if (!res) {
		snprintf(err, errlen, "read back: %s", mysql_error(my));
		return -EIO;
	}
	int rc = 0;
	if (mysql_num_fields(res) != b->n_cols) {
		snprintf(err, errlen, "the table's columns changed");
		rc = -ESTALE;
	}
	MYSQL_ROW row;
	while (rc == 0 && (row = mysql_fetch_row(res))) {
		unsigned long *len = mysql_fetch_lengths(res);
		char why[256];
		rc = cache_segment_builder_add(sb, (const char *const *)row, len, why, sizeof(why));
		if (rc < 0 && rc != -ENOMEM)
			snprintf(err, errlen, "a row read back is not a vector: %s", why);
	}
	/* Drain what is left so the connection can be used again. */
	while (rc < 0 && mysql_fetch_row(res))
		;
	if (rc == 0 && mysql_errno(my)) {
		snprintf(err, errlen, "read back: %s", mysql_error(my));
		rc = -EIO;
	}
	mysql_free_result(res);
	return rc;
}

int cache_patch_read(MYSQL **conn, const struct cache_load_spec *spec, const struct cache_base *b,
                     const struct buf *keys, size_t nkeys, const struct cache_key_range *ranges,
                     size_t nranges, struct cache_segment **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!*conn && !(*conn = cache_connect(spec, err, errlen)))
		return -EIO;
	MYSQL *my = *conn;
	bool dim_set;
	size_t dim = vec_table_dim(cache_segment_vecs(b->rows), &dim_set);
	struct cache_segment_shape shape = {
	        .n_cols = b->n_cols,
	        .vec_col = b->vec_col,
	        .dim = dim_set ? dim : VEC_DIM_ANY,
	        .dialect = b->dialect,
	        .canonical_vectors = !b->mariadb,
	};
	struct cache_segment_builder sb = {0};
	struct buf q, head;
	buf_init(&q);
	buf_init(&head);
	int rc = cache_segment_builder_init(&sb, &shape);
	if (rc == 0 &&
	    (buf_append(&head, "SELECT * FROM ", 14) < 0 || append_ident(&head, spec->db) < 0 ||
	     buf_append(&head, ".", 1) < 0 || append_ident(&head, spec->table) < 0 ||
	     buf_append(&head, " WHERE ", 7) < 0))
		rc = -ENOMEM;
	size_t off = 0, done = 0;
	while (rc == 0 && done < nkeys) {
		buf_reset(&q);
		if (buf_append(&q, head.data, head.len) < 0 || append_key_columns(&q, b) < 0 ||
		    buf_append(&q, " IN (", 5) < 0) {
			rc = -ENOMEM;
			break;
		}
		for (size_t i = 0; rc == 0 && i < KEYS_PER_QUERY && done < nkeys; i++, done++)
			if ((i && buf_append(&q, ", ", 2) < 0) ||
			    (rc = append_key(my, &q, b, keys, &off)) < 0)
				rc = rc < 0 ? rc : -ENOMEM;
		if (rc == 0 && buf_append(&q, ")", 1) < 0)
			rc = -ENOMEM;
		if (rc == 0)
			rc = run(my, &q, b, &sb, err, errlen);
	}
	for (size_t i = 0; rc == 0 && i < nranges; i++) {
		buf_reset(&q);
		char lim[80];
		int w = ranges[i].is_signed
		                ? snprintf(lim, sizeof(lim), " BETWEEN %lld AND %lld",
		                           (long long)ranges[i].lo, (long long)ranges[i].hi)
		                : snprintf(lim, sizeof(lim), " BETWEEN %llu AND %llu",
		                           (unsigned long long)ranges[i].lo,
		                           (unsigned long long)ranges[i].hi);
		if (b->n_key != 1 || buf_append(&q, head.data, head.len) < 0 ||
		    append_ident(&q, b->cols[b->key_cols[0]].name) < 0 ||
		    buf_append(&q, lim, (size_t)w) < 0)
			rc = b->n_key != 1 ? -EINVAL : -ENOMEM;
		if (rc == 0)
			rc = run(my, &q, b, &sb, err, errlen);
	}
	buf_free(&q);
	buf_free(&head);
	if (rc == 0 && !(*out = cache_segment_builder_finish(&sb)))
		rc = -ENOMEM;
	cache_segment_builder_free(&sb);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc == -EIO) {
		mysql_close(my);
		*conn = NULL;
	}
	return rc;
}
