/* wl_connect.c: the "connect" workload: each request is a whole login (TCP,
 * TLS with --tls, authentication), one SELECT 1 and a close, so the figures
 * are logins per second and the latency of a login. */
#include "workload.h"

#include <stdio.h>

static int connect_run(struct wl_thread *th, char *err, size_t errlen)
{
	MYSQL *c = bench_connect(th->cfg, th->target, err, errlen);
	if (!c)
		return -1;
	long rows = -1;
	if (mysql_query(c, "SELECT 1") != 0)
		bench_conn_error(c, err, errlen);
	else
		rows = bench_drain(c, err, errlen);
	mysql_close(c); /* sends COM_QUIT */
	if (rows < 0)
		return -1;
	if (rows != 1) {
		snprintf(err, errlen, "SELECT 1: expected 1 row, got %ld", rows);
		return -1;
	}
	return 0;
}

const struct workload wl_connect = {
        .name = "connect",
        .summary = "login + SELECT 1 + close per request (logins per second)",
        .flags = WL_OWN_CONNECTION,
        .run = connect_run,
};
