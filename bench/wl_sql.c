/* wl_sql.c: the "sql" workload: the statement given with --workload-sql, as a
 * text query or (--prepared) a prepared statement without parameters. Every
 * result set is read to the end and thrown away. */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sql_thread_init(struct wl_thread *th, char *err, size_t errlen)
{
	if (!th->cfg->prepared)
		return 0;
	MYSQL_STMT *st = mysql_stmt_init(th->conn);
	if (!st) {
		bench_conn_error(th->conn, err, errlen);
		return -1;
	}
	th->state = st;
	if (mysql_stmt_prepare(st, th->cfg->sql, strlen(th->cfg->sql)) != 0) {
		snprintf(err, errlen, "prepare: %u (%s): %s", mysql_stmt_errno(st),
		         mysql_stmt_sqlstate(st), mysql_stmt_error(st));
		return -1;
	}
	return 0;
}

static int sql_run(struct wl_thread *th, char *err, size_t errlen)
{
	MYSQL_STMT *st = th->state;
	if (!st) {
		if (mysql_real_query(th->conn, th->cfg->sql, (unsigned long)strlen(th->cfg->sql)) !=
		    0) {
			bench_conn_error(th->conn, err, errlen);
			return -1;
		}
		return bench_drain(th->conn, err, errlen) < 0 ? -1 : 0;
	}
	if (mysql_stmt_execute(st) != 0)
		goto failed;
	for (;;) {
		if (mysql_stmt_field_count(st) > 0) {
			if (mysql_stmt_store_result(st) != 0)
				goto failed;
			mysql_stmt_free_result(st);
		}
		int more = mysql_stmt_next_result(st);
		if (more > 0)
			goto failed;
		if (more < 0)
			break;
	}
	return 0;
failed:
	th->broken = bench_stmt_error(st, NULL, err, errlen);
	return -1;
}

static void sql_thread_done(struct wl_thread *th)
{
	if (th->state)
		mysql_stmt_close(th->state);
	th->state = NULL;
}

const struct workload wl_sql = {
        .name = "sql",
        .summary =
                "the statement of --workload-sql \"...\" (text, or --prepared without parameters)",
        .thread_init = sql_thread_init,
        .run = sql_run,
        .thread_done = sql_thread_done,
};
