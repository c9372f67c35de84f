/* wl_knn.c: the "knn" workload, a vector nearest-neighbour search:
 *   SELECT id, <FN>(<column>, '[v1,...]') AS distance FROM <table>
 *   ORDER BY distance LIMIT <k>
 * with a query vector picked at random per request, as a text query or
 * (--prepared) a prepared statement binding the vector as a string and k as an
 * integer. Options (--param KEY=VALUE or their own flags): table (required),
 * column (embedding), metric (cosine|l2|l1|negip), k (10), queries (a float32
 * .npy 2-D array or an .fvecs file), dim (without queries: the dimension of the
 * random normal query vectors; by default that of the table's first row). */
#include "workload.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KNN_RANDOM_QUERIES 1000 /* pool of random query vectors without --queries */

struct knn_shared {
	char **vtext; /* "[v1,v2,...]" per query vector */
	size_t *vlen;
	size_t nq;
	char *prefix; /* "SELECT id, FN(col, '" */
	char *suffix; /* "') AS distance FROM t ORDER BY distance LIMIT k" */
	long long k;
};

struct knn_thread {
	MYSQL_STMT *stmt;
	char *sql; /* text query buffer */
	size_t cap;
	MYSQL_BIND bind[2];
	unsigned long vlen;
	long long k;
};

static const char *metric_fn(const char *m)
{
	if (strcmp(m, "cosine") == 0)
		return "VEC_COSINE_DISTANCE";
	if (strcmp(m, "l2") == 0)
		return "VEC_L2_DISTANCE";
	if (strcmp(m, "l1") == 0)
		return "VEC_L1_DISTANCE";
	if (strcmp(m, "negip") == 0)
		return "VEC_NEGATIVE_INNER_PRODUCT";
	return NULL;
}

/* Names go into SQL unquoted: letters, digits, '_', '$' and (table) one '.'. */
static bool plain_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '$' && *s != '.')
			return false;
	return true;
}

static double gauss(uint64_t *rng)
{
	double u1 = ((double)(bench_rand(rng) >> 11) + 1.0) / 9007199254740993.0;
	double u2 = (double)(bench_rand(rng) >> 11) / 9007199254740992.0;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* "[v1,v2,...]" with %.9g (float32 round-trips), malloc'd; NULL when out of memory. */
static char *vec_text(const float *v, size_t d, size_t *len)
{
	size_t cap = 2 + d * 17;
	char *s = malloc(cap), *p = s;
	if (!s)
		return NULL;
	*p++ = '[';
	for (size_t i = 0; i < d; i++)
		p += snprintf(p, cap - (size_t)(p - s), "%s%.9g", i ? "," : "", (double)v[i]);
	*p++ = ']';
	*p = '\0';
	*len = (size_t)(p - s);
	return s;
}

/* Reads a float32 .npy (C order, 2-D) or .fvecs file into *out (n x d). */
static int load_queries(const char *path, float **out, size_t *n, size_t *d, char *err,
                        size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	float *v = NULL;
	unsigned char magic[10];
	size_t got = fread(magic, 1, sizeof(magic), f);
	if (got == sizeof(magic) && memcmp(magic, "\x93NUMPY", 6) == 0) {
		size_t hlen;
		if (magic[6] == 1) {
			hlen = magic[8] | (size_t)magic[9] << 8;
		} else if (magic[6] == 2 || magic[6] == 3) {
			unsigned char b[2];
			if (fread(b, 1, 2, f) != 2)
				goto bad;
			hlen = magic[8] | (size_t)magic[9] << 8 | (size_t)b[0] << 16 |
			       (size_t)b[1] << 24;
		} else {
			goto bad;
		}
		char *h = malloc(hlen + 1);
		if (!h || fread(h, 1, hlen, f) != hlen) {
			free(h);
			goto bad;
		}
		h[hlen] = '\0';
		const char *descr = strstr(h, "'descr':");
		const char *fo = strstr(h, "'fortran_order':");
		const char *shape = strstr(h, "'shape':");
		unsigned long long rows = 0, cols = 0;
		int used = 0;
		bool ok = descr && fo && shape;
		if (ok) {
			descr += 8 + strspn(descr + 8, " ");
			fo += 16 + strspn(fo + 16, " ");
			ok = strncmp(descr, "'<f4'", 5) == 0 && strncmp(fo, "False", 5) == 0 &&
			     sscanf(shape + 8, " (%llu ,%llu )%n", &rows, &cols, &used) == 2 &&
			     used > 0;
		}
		free(h);
		if (!ok || !rows || !cols) {
			snprintf(
			        err, errlen,
			        "%s: want a 2-D C-order float32 array ('<f4', fortran_order False)",
			        path);
			fclose(f);
			return -1;
		}
		v = malloc(rows * cols * sizeof(float));
		if (!v || fread(v, sizeof(float), rows * cols, f) != rows * cols)
			goto bad;
		*n = rows;
		*d = cols;
	} else {
		/* .fvecs: repeated int32 dim, then dim float32 */
		rewind(f);
		size_t cap = 0, rows = 0, dim = 0;
		int32_t di;
		while (fread(&di, sizeof(di), 1, f) == 1) {
			if (di <= 0 || (dim && (size_t)di != dim) || di > 65536)
				goto bad;
			dim = (size_t)di;
			if (rows == cap) {
				cap = cap ? cap * 2 : 256;
				float *nv = realloc(v, cap * dim * sizeof(float));
				if (!nv)
					goto bad;
				v = nv;
			}
			if (fread(v + rows * dim, sizeof(float), dim, f) != dim)
				goto bad;
			rows++;
		}
		if (!rows)
			goto bad;
		*n = rows;
		*d = dim;
	}
	fclose(f);
	*out = v;
	return 0;
bad:
	free(v);
	fclose(f);
	snprintf(err, errlen, "%s: not a float32 .npy (2-D) or .fvecs file, or truncated", path);
	return -1;
}

static void knn_teardown(struct bench_target *t)
{
	struct knn_shared *s = t->shared;
	if (!s)
		return;
	for (size_t i = 0; i < s->nq && s->vtext; i++)
		free(s->vtext[i]);
	free(s->vtext);
	free(s->vlen);
	free(s->prefix);
	free(s->suffix);
	free(s);
	t->shared = NULL;
}

/* The dimension of the table's first vector; 0 when the table is empty. */
static long long table_dim(MYSQL *c, const char *table, const char *col, char *err, size_t errlen)
{
	char sql[600];
	snprintf(sql, sizeof(sql), "SELECT VEC_DIMS(%s) FROM %s LIMIT 1", col, table);
	if (mysql_query(c, sql) != 0) {
		bench_conn_error(c, err, errlen);
		return -1;
	}
	MYSQL_RES *res = mysql_store_result(c);
	MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
	long long d = row && row[0] ? strtoll(row[0], NULL, 10) : 0;
	if (res)
		mysql_free_result(res);
	return d;
}

static int knn_setup(const struct bench_cfg *cfg, struct bench_target *t, MYSQL *c, char *err,
                     size_t errlen)
{
	const char *table = bench_param(cfg, "table", NULL);
	const char *col = bench_param(cfg, "column", "embedding");
	const char *metric = bench_param(cfg, "metric", "cosine");
	const char *fn = metric_fn(metric);
	const char *qpath = bench_param(cfg, "queries", NULL);
	char *end;
	long long k = strtoll(bench_param(cfg, "k", "10"), &end, 10);
	long long dim = strtoll(bench_param(cfg, "dim", "0"), NULL, 10);
	if (!table || !plain_name(table) || !plain_name(col) || strchr(col, '.')) {
		snprintf(err, errlen, "needs --table db.table (and a plain --column name)");
		return -1;
	}
	if (!fn) {
		snprintf(err, errlen, "bad --metric '%s': cosine, l2, l1 or negip", metric);
		return -1;
	}
	if (*end || k < 1 || k > 1000000) {
		snprintf(err, errlen, "bad --k (1..1000000)");
		return -1;
	}
	long long tdim = table_dim(c, table, col, err, errlen);
	if (tdim < 0)
		return -1;
	float *v = NULL;
	size_t nq = 0, d = 0;
	if (qpath) {
		if (load_queries(qpath, &v, &nq, &d, err, errlen) != 0)
			return -1;
	} else {
		d = (size_t)(dim > 0 ? dim : tdim);
		if (!d || d > 65536) {
			snprintf(err, errlen, "%s is empty: give --dim or --queries", table);
			return -1;
		}
		nq = KNN_RANDOM_QUERIES;
		v = malloc(nq * d * sizeof(float));
		uint64_t rng = cfg->seed ^ 0x6b6e6e5eedULL;
		bench_rand(&rng);
		for (size_t i = 0; v && i < nq * d; i++)
			v[i] = (float)gauss(&rng);
	}
	if (tdim > 0 && (size_t)tdim != d)
		fprintf(stderr, "knn: warning: query vectors have %zu dimensions, %s.%s %lld\n", d,
		        table, col, tdim);
	struct knn_shared *s = calloc(1, sizeof(*s));
	t->shared = s;
	if (!v || !s || !(s->vtext = calloc(nq, sizeof(char *))) ||
	    !(s->vlen = calloc(nq, sizeof(size_t))))
		goto oom;
	s->nq = nq;
	s->k = k;
	for (size_t i = 0; i < nq; i++)
		if (!(s->vtext[i] = vec_text(v + i * d, d, &s->vlen[i])))
			goto oom;
	free(v);
	v = NULL;
	size_t plen = strlen(fn) + strlen(col) + 32, slen = strlen(table) + 96;
	if (!(s->prefix = malloc(plen)) || !(s->suffix = malloc(slen)))
		goto oom;
	snprintf(s->prefix, plen, "SELECT id, %s(%s, '", fn, col);
	snprintf(s->suffix, slen, "') AS distance FROM %s ORDER BY distance LIMIT %lld", table, k);
	fprintf(stderr, "knn: %s on %s: %zu query vectors of %zu dims, %s(%s), k=%lld\n", t->name,
	        table, nq, d, fn, col, k);
	return 0;
oom:
	free(v);
	knn_teardown(t);
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int knn_thread_init(struct wl_thread *th, char *err, size_t errlen)
{
	const struct knn_shared *s = th->target->shared;
	struct knn_thread *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	th->state = p;
	size_t maxv = 0;
	for (size_t i = 0; i < s->nq; i++)
		if (s->vlen[i] > maxv)
			maxv = s->vlen[i];
	p->cap = strlen(s->prefix) + maxv + strlen(s->suffix) + 1;
	if (!(p->sql = malloc(p->cap))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!th->cfg->prepared)
		return 0;
	/* the statement: the text query with '?' for the vector and for k */
	char *q = malloc(p->cap + 16);
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *lim = strstr(s->suffix, " LIMIT ");
	int n = snprintf(q, p->cap + 16, "%.*s?%.*s LIMIT ?", (int)(strlen(s->prefix) - 1),
	                 s->prefix, (int)(lim - s->suffix - 1), s->suffix + 1);
	p->stmt = mysql_stmt_init(th->conn);
	if (!p->stmt || mysql_stmt_prepare(p->stmt, q, (unsigned long)n) != 0) {
		if (p->stmt)
			snprintf(err, errlen, "prepare: %u (%s): %s", mysql_stmt_errno(p->stmt),
			         mysql_stmt_sqlstate(p->stmt), mysql_stmt_error(p->stmt));
		else
			bench_conn_error(th->conn, err, errlen);
		free(q);
		return -1;
	}
	free(q);
	p->k = s->k;
	p->bind[0].buffer_type = MYSQL_TYPE_STRING;
	p->bind[0].length = &p->vlen;
	p->bind[1].buffer_type = MYSQL_TYPE_LONGLONG;
	p->bind[1].buffer = &p->k;
	return 0;
}

static int knn_run(struct wl_thread *th, char *err, size_t errlen)
{
	const struct knn_shared *s = th->target->shared;
	struct knn_thread *p = th->state;
	size_t i = (size_t)bench_rand_below(&th->rng, s->nq);
	long rows;
	if (p->stmt) {
		p->bind[0].buffer = s->vtext[i];
		p->bind[0].buffer_length = p->vlen = (unsigned long)s->vlen[i];
		if (mysql_stmt_bind_param(p->stmt, p->bind) != 0 ||
		    mysql_stmt_execute(p->stmt) != 0 || mysql_stmt_store_result(p->stmt) != 0) {
			th->broken = bench_stmt_error(p->stmt, NULL, err, errlen);
			return -1;
		}
		rows = (long)mysql_stmt_num_rows(p->stmt);
		mysql_stmt_free_result(p->stmt);
	} else {
		int n = snprintf(p->sql, p->cap, "%s%s%s", s->prefix, s->vtext[i], s->suffix);
		if (mysql_real_query(th->conn, p->sql, (unsigned long)n) != 0) {
			bench_conn_error(th->conn, err, errlen);
			return -1;
		}
		rows = bench_drain(th->conn, err, errlen);
		if (rows < 0)
			return -1;
	}
	if (rows > s->k) {
		snprintf(err, errlen, "expected at most %lld rows, got %ld", s->k, rows);
		return -1;
	}
	return 0;
}

static void knn_thread_done(struct wl_thread *th)
{
	struct knn_thread *p = th->state;
	if (p && p->stmt)
		mysql_stmt_close(p->stmt);
	if (p)
		free(p->sql);
	free(p);
	th->state = NULL;
}

const struct workload wl_knn = {
        .name = "knn",
        .summary = "SELECT id, VEC_*_DISTANCE(col, '[..]') AS distance FROM --table ORDER BY "
                   "distance LIMIT --k",
        .setup = knn_setup,
        .thread_init = knn_thread_init,
        .run = knn_run,
        .thread_done = knn_thread_done,
        .teardown = knn_teardown,
};
