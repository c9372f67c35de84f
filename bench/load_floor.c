/* load-floor: how fast a snapshot of one table loads, against how fast the
 * database can send it.
 *
 *   floor  the same rows over the same protocol and number of connections
 *          as the loader uses, to a client that discards them: what no
 *          loader can beat;
 *   new    cache_load_base() (src/cache/loader.c);
 *   check  loads once and compares every cell and vector of the segment,
 *          and every column's wire type, with the rows of a plain
 *          SELECT * read here; for a table that cannot load, prints the
 *          loader's error.
 *
 *   load-floor [--host H] [--port P] [--user U] [--password W] [--ca FILE]
 *              [--db D] [--table T] [--column C] [--repeat N]
 *              [--connections N] [--threads N] [--split] [--memory-limit B]
 *              [--no-screen]
 *              [floor|new ...|check]
 *
 * Defaults: the test database of build/tidb/conn.json as root, verified TLS
 * when a CA is given, bench.vec100k(embedding), floor then new, best of 3.
 * --connections and --threads are the loader's (0: its own choice);
 * --no-screen loads without building the int8 screen ([cache] screening =
 * off) that a load builds by default. --split splits the key range over connections on MariaDB too
 * (no shared snapshot: a benchmark of the split only). The floor uses as many connections as the
 * loader does (TiDB: one per core, at least 2; MariaDB: 1 unless --split), over the same
 * primary-key ranges. Prints rows/s, MB/s of cells, and bytes of snapshot per row.
 *
 * Built with -DLOAD_FLOOR_OLD against a tree whose loader is the single
 * SELECT of src/cache/snapshot.c, it measures that loader as "old" instead
 * of "new" (the figures docs/design.md §14 compares). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mysql.h>

#include "cache/snapshot.h"
#include "core/clock.h"
#ifndef LOAD_FLOOR_OLD
#include "core/config.h"
#include "core/upstream.h"
#endif
#include "vec/vec.h"
#ifdef LOAD_FLOOR_OLD
#define CACHE_LOAD_MAX_CONNECTIONS 16
struct cache_load_tuning {
	unsigned connections, parse_threads;
	bool split_without_snapshot;
};
#else
#include "cache/loader.h"
#include "cache/patch.h"
#include "cache/segment.h"
#endif

struct opts {
	struct cache_load_spec spec;
	struct cache_load_tuning tuning;
	int repeat;
};

/* The loader's own connection (same TLS, timeouts, character set), so the
 * floor is measured over the protocol the loader uses. */
static MYSQL *connect_db(const struct cache_load_spec *spec)
{
	char err[512];
	MYSQL *my = cache_connect(spec, err, sizeof(err));
	if (!my)
		fprintf(stderr, "load-floor: %s\n", err);
	return my;
}

/* One value of a one-row query, or "" (NULL or no row). */
static int query_value(MYSQL *my, const char *q, char *out, size_t n)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	*out = 0;
	if (mysql_query(my, q) != 0 || !(res = mysql_store_result(my))) {
		fprintf(stderr, "load-floor: %s: %s\n", q, mysql_error(my));
		return -1;
	}
	if ((row = mysql_fetch_row(res)) && row[0])
		snprintf(out, n, "%s", row[0]);
	mysql_free_result(res);
	return 0;
}

/* ---- the floor ---- */

struct reader {
	const struct opts *o;
	char query[4096];
	uint64_t rows, bytes;
	int rc;
	pthread_t th;
};

/* Reads every row of one query and keeps nothing. */
static void *read_all(void *arg)
{
	struct reader *r = arg;
	r->rc = -1;
	MYSQL *my = connect_db(&r->o->spec);
	if (!my)
		return NULL;
	MYSQL_RES *res = NULL;
	if (mysql_query(my, r->query) != 0 || !(res = mysql_use_result(my))) {
		fprintf(stderr, "load-floor: %s: %s\n", r->query, mysql_error(my));
		mysql_close(my);
		return NULL;
	}
	unsigned nf = mysql_num_fields(res);
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res))) {
		unsigned long *len = mysql_fetch_lengths(res);
		for (unsigned i = 0; i < nf; i++)
			r->bytes += len[i];
		r->rows++;
	}
	r->rc = mysql_errno(my) ? -1 : 0;
	if (r->rc)
		fprintf(stderr, "load-floor: reading: %s\n", mysql_error(my));
	mysql_free_result(res);
	mysql_close(my);
	return NULL;
}

/* The rows over n connections, ranges of the integer primary key split as
 * the loader splits them (n 1: one SELECT *), discarded. */
static int floor_run(const struct opts *o, unsigned n, double *secs, uint64_t *rows,
                     uint64_t *bytes)
{
	char qd[600], qt[600], qk[600] = "", q[2048];
	cache_quote_ident(o->spec.db, qd, sizeof(qd));
	cache_quote_ident(o->spec.table, qt, sizeof(qt));
	struct reader rd[CACHE_LOAD_MAX_CONNECTIONS];
	char lo_s[32] = "", hi_s[32] = "";
	if (n > CACHE_LOAD_MAX_CONNECTIONS)
		n = CACHE_LOAD_MAX_CONNECTIONS;
	if (n > 1) {
		MYSQL *my = connect_db(&o->spec);
		char key[256] = "", count[32] = "";
		if (!my)
			return -1;
		snprintf(q, sizeof(q),
		         "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
		         "'%s' AND TABLE_NAME = '%s' AND INDEX_NAME = 'PRIMARY'",
		         o->spec.db, o->spec.table);
		int rc = query_value(my, q, count, sizeof(count));
		snprintf(q, sizeof(q),
		         "SELECT MIN(COLUMN_NAME) FROM information_schema.STATISTICS WHERE "
		         "TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' AND INDEX_NAME = 'PRIMARY'",
		         o->spec.db, o->spec.table);
		if (rc == 0)
			rc = query_value(my, q, key, sizeof(key));
		cache_quote_ident(key, qk, sizeof(qk));
		if (rc == 0 && atoi(count) == 1) {
			snprintf(q, sizeof(q), "SELECT MIN(%s) FROM %s.%s", qk, qd, qt);
			rc = query_value(my, q, lo_s, sizeof(lo_s));
			snprintf(q, sizeof(q), "SELECT MAX(%s) FROM %s.%s", qk, qd, qt);
			if (rc == 0)
				rc = query_value(my, q, hi_s, sizeof(hi_s));
		}
		mysql_close(my);
		if (rc < 0)
			return -1;
		if (!*lo_s || !*hi_s)
			n = 1;
	}
	int64_t lo = strtoll(lo_s, NULL, 10), hi = strtoll(hi_s, NULL, 10);
	uint64_t span = (uint64_t)hi - (uint64_t)lo;
	if (n > 1 && span < (uint64_t)n - 1)
		n = (unsigned)span + 1;
	int64_t b[CACHE_LOAD_MAX_CONNECTIONS + 1];
	for (unsigned i = 1; i < n; i++)
		b[i] = (int64_t)((uint64_t)lo + (uint64_t)((unsigned __int128)span * i / n));
	uint64_t t0 = core_now_ns();
	unsigned started = 0;
	for (unsigned i = 0; i < n; i++, started++) {
		memset(&rd[i], 0, sizeof(rd[i]));
		rd[i].o = o;
		if (n == 1)
			snprintf(rd[i].query, sizeof(rd[i].query), "SELECT * FROM %s.%s", qd, qt);
		else if (i == 0)
			snprintf(rd[i].query, sizeof(rd[i].query),
			         "SELECT * FROM %s.%s WHERE %s < %" PRId64, qd, qt, qk, b[1]);
		else if (i + 1 == n)
			snprintf(rd[i].query, sizeof(rd[i].query),
			         "SELECT * FROM %s.%s WHERE %s >= %" PRId64, qd, qt, qk, b[i]);
		else
			snprintf(rd[i].query, sizeof(rd[i].query),
			         "SELECT * FROM %s.%s WHERE %s >= %" PRId64 " AND %s < %" PRId64,
			         qd, qt, qk, b[i], qk, b[i + 1]);
		if (pthread_create(&rd[i].th, NULL, read_all, &rd[i]) != 0)
			break;
	}
	int rc = started == n ? 0 : -1;
	*rows = *bytes = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(rd[i].th, NULL);
		rc |= rd[i].rc;
		*rows += rd[i].rows;
		*bytes += rd[i].bytes;
	}
	*secs = (double)(core_now_ns() - t0) / 1e9;
	return rc;
}

/* ---- the loaders ---- */

#ifdef LOAD_FLOOR_OLD
static int load_run(const struct opts *o, double *secs, uint64_t *rows, size_t *snap_bytes,
                    unsigned *conns, unsigned *threads)
{
	char err[512];
	uint64_t t0 = core_now_ns();
	struct cache_snapshot *s = cache_snapshot_load(&o->spec, err, sizeof(err));
	*secs = (double)(core_now_ns() - t0) / 1e9;
	if (!s) {
		fprintf(stderr, "load-floor: old: %s\n", err);
		return -1;
	}
	*rows = s->n_rows;
	*snap_bytes = s->bytes;
	*conns = *threads = 1;
	cache_snapshot_unref(s);
	return 0;
}
#else
/* The last load's screen build, after the load (0 when none). */
static double screen_secs;

static int load_run(const struct opts *o, double *secs, uint64_t *rows, size_t *snap_bytes,
                    unsigned *conns, unsigned *threads)
{
	char err[512];
	struct cache_load_result res;
	uint64_t t0 = core_now_ns();
	int rc = cache_load_base_tuned(&o->spec, &o->tuning, &res, err, sizeof(err));
	*secs = (double)(core_now_ns() - t0) / 1e9;
	if (rc < 0) {
		fprintf(stderr, "load-floor: new: %s\n", err);
		return -1;
	}
	*rows = cache_segment_rows(res.base);
	*snap_bytes = cache_segment_bytes(res.base) + res.n_cols * sizeof(*res.cols);
	*conns = res.connections;
	*threads = res.parse_threads;
	/* The screen, built after the load as vecgate builds it (in the
	 * background, while the snapshot already answers): timed apart. */
	uint64_t s0 = core_now_ns();
	if (cache_segment_build_screen(res.base))
		screen_secs = (double)(core_now_ns() - s0) / 1e9;
	cache_load_result_free(&res);
	return 0;
}

/* Loads the table and compares the segment with a plain SELECT * read
 * here: every cell byte for byte, every vector bit for bit, every column's
 * wire type. */
static int check_run(const struct opts *o)
{
	char err[512];
	struct cache_load_result res;
	if (cache_load_base_tuned(&o->spec, &o->tuning, &res, err, sizeof(err)) < 0) {
		printf("check %s.%s: %s\n", o->spec.db, o->spec.table, err);
		return 0;
	}
	MYSQL *my = connect_db(&o->spec);
	char qd[600], qt[600], q[1400];
	cache_quote_ident(o->spec.db, qd, sizeof(qd));
	cache_quote_ident(o->spec.table, qt, sizeof(qt));
	snprintf(q, sizeof(q), "SELECT * FROM %s.%s", qd, qt);
	MYSQL_RES *rs = NULL;
	if (!my || mysql_query(my, q) != 0 || !(rs = mysql_use_result(my))) {
		fprintf(stderr, "load-floor: %s: %s\n", q, my ? mysql_error(my) : "no connection");
		return -1;
	}
	const struct cache_segment *s = res.base;
	const struct vec_table *vt = cache_segment_vecs(s);
	size_t n_scratch = cache_segment_scratch_size(s);
	char *scratch = malloc(n_scratch ? n_scratch : 1);
	float *v = malloc((VEC_MAX_DIM + 1) * sizeof(float));
	struct vec_f32 want;
	vec_f32_init(&want);
	int bad = 0;
	MYSQL_FIELD *fields = mysql_fetch_fields(rs);
	if (mysql_num_fields(rs) != res.n_cols) {
		fprintf(stderr, "check: %u columns, the loader has %zu\n", mysql_num_fields(rs),
		        res.n_cols);
		bad++;
	}
	for (size_t c = 0; !bad && c < res.n_cols; c++)
		if (res.cols[c].wire_type != fields[c].type ||
		    res.cols[c].wire_flags != (uint16_t)fields[c].flags ||
		    res.cols[c].decimals != fields[c].decimals ||
		    strcmp(res.cols[c].name, fields[c].name)) {
			fprintf(stderr, "check: column %zu (%s) differs\n", c, res.cols[c].name);
			bad++;
		}
	MYSQL_ROW row;
	size_t r = 0;
	while (!bad && (row = mysql_fetch_row(rs))) {
		unsigned long *len = mysql_fetch_lengths(rs);
		if (r >= cache_segment_rows(s)) {
			fprintf(stderr, "check: more rows than the loader's %zu\n", r);
			bad++;
			break;
		}
		for (size_t c = 0; c < res.n_cols; c++) {
			const uint8_t *p;
			size_t n;
			bool got = cache_segment_cell(s, r, c, scratch, &p, &n);
			if (got != (row[c] != NULL) ||
			    (got && (n != len[c] || memcmp(p, row[c], n) != 0))) {
				fprintf(stderr,
				        "check: row %zu column %zu: %.*s, the server's %.*s\n", r,
				        c, got ? (int)(n < 80 ? n : 80) : 4,
				        got ? (const char *)p : "NULL",
				        row[c] ? (int)(len[c] < 80 ? len[c] : 80) : 4,
				        row[c] ? row[c] : "NULL");
				bad++;
				break;
			}
		}
		size_t dim;
		bool is_null;
		struct vec_err e;
		const char *cell = row[res.vec_col];
		if (vec_table_get(vt, r, v, VEC_MAX_DIM + 1, &dim, &is_null) != 0 ||
		    is_null != (cell == NULL) ||
		    (cell &&
		     (vec_parse_dialect(cell, len[res.vec_col], res.dialect, &want, &e) != 0 ||
		      want.dim != dim || memcmp(want.v, v, dim * sizeof(float)) != 0))) {
			fprintf(stderr, "check: row %zu: the vector differs\n", r);
			bad++;
		}
		r++;
	}
	if (!bad && r != cache_segment_rows(s)) {
		fprintf(stderr, "check: %zu rows, the loader has %zu\n", r, cache_segment_rows(s));
		bad++;
	}
	printf("check %s.%s: %zu rows, dimension %zu, %zu vector texts rebuilt from floats, %u "
	       "connection%s, key %s%s%s%s: %s\n",
	       o->spec.db, o->spec.table, cache_segment_rows(s), vec_table_dim(vt, NULL),
	       cache_segment_rebuilt_rows(s), res.connections, res.connections == 1 ? "" : "s",
	       res.n_pk ? res.cols[res.pk[0]].name : "(none)", res.n_pk > 1 ? "+..." : "",
	       res.pk_auto_increment ? " auto_increment" : "",
	       res.other_unique ? ", another unique index" : "", bad ? "DIFFERENT" : "same");
	if (bad)
		mariadb_cancel(my);
	mysql_free_result(rs);
	mysql_close(my);
	vec_f32_free(&want);
	free(scratch);
	free(v);
	cache_load_result_free(&res);
	return bad ? -1 : 0;
}
#endif

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: load-floor [--host H] [--port P] [--user U] [--password W] "
	        "[--ca FILE] [--db D] [--table T] [--column C] [--repeat N] "
	        "[--connections N] [--threads N] [--split] [--memory-limit B] [--no-screen] "
	        "[floor|new ...|check]\n");
	exit(2);
}

/* host, port, user and ca from build/tidb/conn.json (flat JSON written by
 * tools/tidb), when it is there. */
static void conn_json(char host[256], int *port, char user[256], char ca[1024])
{
	FILE *f = fopen("build/tidb/conn.json", "r");
	if (!f)
		return;
	char text[4096];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	const char *p;
	if ((p = strstr(text, "\"host\": \"")))
		sscanf(p + 9, "%255[^\"]", host);
	if ((p = strstr(text, "\"port\": ")))
		*port = atoi(p + 8);
	if ((p = strstr(text, "\"user\": \"")))
		sscanf(p + 9, "%255[^\"]", user);
	if ((p = strstr(text, "\"ca\": \"")))
		sscanf(p + 7, "%1023[^\"]", ca);
}

#ifndef LOAD_FLOOR_OLD
static struct upstream_group *group;

static void free_group(void)
{
	upstream_group_free(group);
}
#endif

int main(int argc, char **argv)
{
	static char host[256] = "127.0.0.1", user[256] = "root", ca[1024] = "";
	int port = 4000;
	conn_json(host, &port, user, ca);
	struct opts o = {
	        .spec =
	                {
#ifdef LOAD_FLOOR_OLD
	                        .host = host,
	                        .port = port,
	                        .timeout_s = 600,
#endif
	                        .user = user,
	                        .password = "",
	                        .db = "bench",
	                        .table = "vec100k",
	                        .column = "embedding",
	                        .memory_limit = (size_t)64 << 30,
	                },
	        .repeat = 3,
	};
	bool modes[2] = {false, false}, any = false, check = false;
#ifdef LOAD_FLOOR_OLD
	static const char *const names[2] = {"floor", "old"};
#else
	static const char *const names[2] = {"floor", "new"};
#endif
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--split")) {
			o.tuning.split_without_snapshot = true;
			continue;
		}
#ifndef LOAD_FLOOR_OLD
		if (!strcmp(a, "--no-screen")) {
			cache_segment_set_screening(false);
			continue;
		}
#endif
		bool takes = a[0] == '-' && a[1] == '-';
		if (takes && !v)
			usage();
		if (!strcmp(a, "--host"))
			snprintf(host, sizeof(host), "%s", v);
		else if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--user"))
			o.spec.user = v;
		else if (!strcmp(a, "--password"))
			o.spec.password = v;
		else if (!strcmp(a, "--ca"))
			snprintf(ca, sizeof(ca), "%s", v);
		else if (!strcmp(a, "--db"))
			o.spec.db = v;
		else if (!strcmp(a, "--table"))
			o.spec.table = v;
		else if (!strcmp(a, "--column"))
			o.spec.column = v;
		else if (!strcmp(a, "--repeat"))
			o.repeat = atoi(v);
		else if (!strcmp(a, "--connections"))
			o.tuning.connections = (unsigned)atoi(v);
		else if (!strcmp(a, "--threads"))
			o.tuning.parse_threads = (unsigned)atoi(v);
		else if (!strcmp(a, "--memory-limit"))
			o.spec.memory_limit = (size_t)strtoull(v, NULL, 10);
		else
			takes = false;
		if (takes) {
			i++;
			continue;
		}
		if (!strcmp(a, "check"))
			check = true;
		else if (!strcmp(a, "floor"))
			modes[0] = any = true;
		else if (!strcmp(a, names[1]))
			modes[1] = any = true;
		else
			usage();
	}
	if (!any)
		modes[0] = modes[1] = true;
#ifdef LOAD_FLOOR_OLD
	o.spec.host = host;
	o.spec.port = port;
	if (*ca) {
		o.spec.tls = o.spec.tls_verify = true;
		o.spec.tls_ca_file = ca;
	}
#else
	/* The servers and TLS of a vecgate whose [upstream] names this one
	 * server, verified against ca when given. */
	static struct config cfg;
	static struct upstream_target target;
	char err[512];
	config_init_defaults(&cfg);
	snprintf(cfg.upstream.servers.v[0].host, sizeof(cfg.upstream.servers.v[0].host), "%s",
	         host);
	cfg.upstream.servers.v[0].port = (uint16_t)port;
	cfg.upstream.servers.n = 1;
	cfg.upstream.tls = cfg.upstream.tls_verify = *ca != '\0';
	snprintf(cfg.upstream.tls_ca_file, sizeof(cfg.upstream.tls_ca_file), "%s", ca);
	cfg.cache.load_timeout = 600 * 1000;
	if (upstream_target_from_config(&cfg, &target, err, sizeof(err)) < 0) {
		fprintf(stderr, "load-floor: %s\n", err);
		return 1;
	}
	if (!(o.spec.upstream = upstream_group_new(&target, NULL, 1000)))
		return 1;
	group = o.spec.upstream;
	atexit(free_group);
#endif
	if (o.repeat < 1)
		o.repeat = 1;
	if (check) {
#ifdef LOAD_FLOOR_OLD
		usage();
#else
		return check_run(&o) < 0;
#endif
	}
	/* The loader's number of connections. */
	unsigned floor_conns = 1;
	MYSQL *probe = connect_db(&o.spec);
	if (!probe)
		return 1;
	const char *version = mysql_get_server_info(probe);
	bool tidb = strstr(version, "TiDB") != NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (tidb || o.tuning.split_without_snapshot)
		floor_conns = o.tuning.connections ? o.tuning.connections
		              : ncpu < 2           ? 2
		                                   : (unsigned)ncpu;
	printf("%s.%s(%s) at %s:%d (%s)%s, %ld cores\n", o.spec.db, o.spec.table, o.spec.column,
	       host, port, version, *ca ? " over verified TLS" : "", ncpu);
	mysql_close(probe);
	double floor_rps = 0;
	for (int m = 0; m < 2; m++) {
		if (!modes[m])
			continue;
		double best = 0;
		uint64_t rows = 0, bytes = 0;
		size_t snap = 0;
		unsigned conns = 1, threads = 1;
		for (int r = 0; r < o.repeat; r++) {
			double secs = 0;
			int rc = m == 0 ? floor_run(&o, floor_conns, &secs, &rows, &bytes)
			                : load_run(&o, &secs, &rows, &snap, &conns, &threads);
			if (rc < 0)
				return 1;
			if (best == 0 || secs < best)
				best = secs;
		}
		double rps = (double)rows / best;
		printf("%-5s %8" PRIu64 " rows in %7.3f s: %9.0f rows/s", names[m], rows, best,
		       rps);
		if (m == 0) {
			floor_rps = rps;
			printf(", %.1f MB/s of cells (%u connection%s)", (double)bytes / best / 1e6,
			       floor_conns, floor_conns == 1 ? "" : "s");
		} else {
			printf(", %.0f bytes/row", rows ? (double)snap / (double)rows : 0.0);
			if (floor_rps > 0)
				printf(", %.2fx the floor's time", floor_rps / rps);
			printf(" (%u connection%s, %u parse thread%s)", conns,
			       conns == 1 ? "" : "s", threads, threads == 1 ? "" : "s");
#ifndef LOAD_FLOOR_OLD
			if (screen_secs > 0)
				printf("; then its screen in %.3f s, in the background",
				       screen_secs);
#endif
		}
		printf("\n");
		fflush(stdout);
	}
	return 0;
}
