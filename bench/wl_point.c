/* wl_point.c: the "point" workload, a primary-key SELECT on a sysbench-like
 * table: SELECT c FROM vecgate_bench.sbtest WHERE id = ? with uniform random
 * ids, as a text query or (--prepared) a prepared statement. setup() creates
 * and fills the table when it is absent. */
#include "workload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POINT_SQL   "SELECT c FROM vecgate_bench.sbtest WHERE id = ?"
#define POINT_BATCH 500

struct point_shared {
	uint64_t max_id; /* ids are 1..max_id */
};

struct point_thread {
	MYSQL_STMT *stmt; /* with --prepared */
	long long id;     /* bound parameter */
	MYSQL_BIND bind;
};

static int query(MYSQL *c, const char *sql, char *err, size_t errlen)
{
	if (mysql_query(c, sql) != 0 || bench_drain(c, err, errlen) < 0) {
		if (mysql_errno(c))
			bench_conn_error(c, err, errlen);
		return -1;
	}
	return 0;
}

/* sysbench's c column: groups of 11 digits joined by '-'. */
static void fill_digits(char *out, size_t groups, uint64_t *rng)
{
	char *p = out;
	for (size_t g = 0; g < groups; g++) {
		if (g)
			*p++ = '-';
		for (int i = 0; i < 11; i++)
			*p++ = (char)('0' + bench_rand_below(rng, 10));
	}
	*p = '\0';
}

static int fill(MYSQL *c, uint64_t rows, char *err, size_t errlen)
{
	if (query(c,
	          "CREATE TABLE vecgate_bench.sbtest ("
	          " id INT NOT NULL PRIMARY KEY,"
	          " k INT NOT NULL DEFAULT 0,"
	          " c CHAR(120) NOT NULL DEFAULT '',"
	          " pad CHAR(60) NOT NULL DEFAULT '',"
	          " KEY k_1 (k))",
	          err, errlen) != 0)
		return -1;
	size_t cap = 64 + POINT_BATCH * 220;
	char *sql = malloc(cap);
	if (!sql) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	uint64_t rng = 0x5eed5eed5eedULL;
	int rc = 0;
	for (uint64_t id = 1; id <= rows && rc == 0;) {
		size_t n = (size_t)snprintf(
		        sql, cap, "INSERT INTO vecgate_bench.sbtest (id, k, c, pad) VALUES ");
		for (int i = 0; i < POINT_BATCH && id <= rows; i++, id++) {
			char cval[130], pad[64];
			fill_digits(cval, 10, &rng);
			fill_digits(pad, 5, &rng);
			n += (size_t)snprintf(sql + n, cap - n,
			                      "%s(%" PRIu64 ",%" PRIu64 ",'%s','%s')", i ? "," : "",
			                      id, 1 + bench_rand_below(&rng, rows), cval, pad);
		}
		rc = query(c, sql, err, errlen);
	}
	free(sql);
	return rc;
}

static int point_setup(const struct bench_cfg *cfg, struct bench_target *t, MYSQL *c, char *err,
                       size_t errlen)
{
	if (query(c, "CREATE DATABASE IF NOT EXISTS vecgate_bench", err, errlen) != 0)
		return -1;
	uint64_t count = 0, max_id = 0;
	bool exists = false;
	if (mysql_query(c, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM vecgate_bench.sbtest") ==
	    0) {
		MYSQL_RES *res = mysql_store_result(c);
		MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
		if (row && row[0] && row[1]) {
			count = strtoull(row[0], NULL, 10);
			max_id = strtoull(row[1], NULL, 10);
			exists = true;
		}
		if (res)
			mysql_free_result(res);
	} else if (mysql_errno(c) != 1146 /* ER_NO_SUCH_TABLE */) {
		bench_conn_error(c, err, errlen);
		return -1;
	}
	if (!exists) {
		fprintf(stderr,
		        "point: creating vecgate_bench.sbtest with %" PRIu64 " rows via %s\n",
		        cfg->rows, t->name);
		if (fill(c, cfg->rows, err, errlen) != 0)
			return -1;
		count = max_id = cfg->rows;
	} else if (count != max_id || count == 0) {
		snprintf(err, errlen,
		         "vecgate_bench.sbtest holds %" PRIu64 " rows with ids up to %" PRIu64
		         "; expected ids 1..N: DROP TABLE vecgate_bench.sbtest to refill",
		         count, max_id);
		return -1;
	} else if (count != cfg->rows) {
		fprintf(stderr,
		        "point: vecgate_bench.sbtest already holds %" PRIu64
		        " rows (--rows %" PRIu64
		        " ignored; DROP TABLE vecgate_bench.sbtest to refill)\n",
		        count, cfg->rows);
	}
	struct point_shared *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->max_id = max_id;
	t->shared = s;
	return 0;
}

static int point_thread_init(struct wl_thread *th, char *err, size_t errlen)
{
	struct point_thread *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	th->state = p;
	if (!th->cfg->prepared)
		return 0;
	p->stmt = mysql_stmt_init(th->conn);
	if (!p->stmt || mysql_stmt_prepare(p->stmt, POINT_SQL, strlen(POINT_SQL)) != 0) {
		if (p->stmt)
			snprintf(err, errlen, "prepare: %u (%s): %s", mysql_stmt_errno(p->stmt),
			         mysql_stmt_sqlstate(p->stmt), mysql_stmt_error(p->stmt));
		else
			bench_conn_error(th->conn, err, errlen);
		return -1;
	}
	p->bind.buffer_type = MYSQL_TYPE_LONGLONG;
	p->bind.buffer = &p->id;
	if (mysql_stmt_bind_param(p->stmt, &p->bind) != 0) {
		snprintf(err, errlen, "bind: %s", mysql_stmt_error(p->stmt));
		return -1;
	}
	return 0;
}

static int point_run(struct wl_thread *th, char *err, size_t errlen)
{
	const struct point_shared *s = th->target->shared;
	struct point_thread *p = th->state;
	uint64_t id = 1 + bench_rand_below(&th->rng, s->max_id);
	long rows;
	if (p->stmt) {
		p->id = (long long)id;
		if (mysql_stmt_execute(p->stmt) != 0 || mysql_stmt_store_result(p->stmt) != 0) {
			th->broken = bench_stmt_error(p->stmt, NULL, err, errlen);
			return -1;
		}
		rows = (long)mysql_stmt_num_rows(p->stmt);
		mysql_stmt_free_result(p->stmt);
	} else {
		char sql[96];
		int n = snprintf(sql, sizeof(sql),
		                 "SELECT c FROM vecgate_bench.sbtest WHERE id = %" PRIu64, id);
		if (mysql_real_query(th->conn, sql, (unsigned long)n) != 0) {
			bench_conn_error(th->conn, err, errlen);
			return -1;
		}
		rows = bench_drain(th->conn, err, errlen);
		if (rows < 0)
			return -1;
	}
	if (rows != 1) {
		snprintf(err, errlen, "id %" PRIu64 ": expected 1 row, got %ld", id, rows);
		return -1;
	}
	return 0;
}

static void point_thread_done(struct wl_thread *th)
{
	struct point_thread *p = th->state;
	if (p && p->stmt)
		mysql_stmt_close(p->stmt);
	free(p);
	th->state = NULL;
}

static void point_teardown(struct bench_target *t)
{
	free(t->shared);
	t->shared = NULL;
}

const struct workload wl_point = {
        .name = "point",
        .summary =
                "SELECT c FROM vecgate_bench.sbtest WHERE id = ? (random id; --rows, --prepared)",
        .setup = point_setup,
        .thread_init = point_thread_init,
        .run = point_run,
        .thread_done = point_thread_done,
        .teardown = point_teardown,
};
