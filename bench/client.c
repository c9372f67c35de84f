/* client.c: libmariadb helpers shared by the driver and the workloads. */
#include "bench.h"

#include <errmsg.h>
#include <stdio.h>
#include <string.h>

MYSQL *bench_connect(const struct bench_cfg *cfg, const struct bench_target *t, char *err,
                     size_t errlen)
{
	MYSQL *c = mysql_init(NULL);
	if (!c) {
		snprintf(err, errlen, "mysql_init: out of memory");
		return NULL;
	}
	unsigned proto = MYSQL_PROTOCOL_TCP;
	mysql_optionsv(c, MYSQL_OPT_PROTOCOL, &proto);
	mysql_optionsv(c, MYSQL_OPT_CONNECT_TIMEOUT, &cfg->timeout);
	mysql_optionsv(c, MYSQL_OPT_READ_TIMEOUT, &cfg->timeout);
	mysql_optionsv(c, MYSQL_OPT_WRITE_TIMEOUT, &cfg->timeout);
	if (cfg->tls) {
		/* Verified TLS: the chain must reach --ssl-ca and the certificate must
		 * name the host we dialled. */
		my_bool on = 1;
		mysql_optionsv(c, MYSQL_OPT_SSL_ENFORCE, &on);
		mysql_optionsv(c, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
		if (cfg->ssl_ca)
			mysql_optionsv(c, MYSQL_OPT_SSL_CA, cfg->ssl_ca);
	}
	if (!mysql_real_connect(c, t->host, cfg->user, cfg->password, cfg->database, t->port, NULL,
	                        cfg->multi_statements ? CLIENT_MULTI_STATEMENTS : 0)) {
		bench_conn_error(c, err, errlen);
		mysql_close(c);
		return NULL;
	}
	return c;
}

void bench_conn_error(MYSQL *c, char *err, size_t errlen)
{
	snprintf(err, errlen, "%u (%s): %s", mysql_errno(c), mysql_sqlstate(c), mysql_error(c));
}

bool bench_stmt_error(MYSQL_STMT *st, const char *what, char *err, size_t errlen)
{
	unsigned e = mysql_stmt_errno(st);
	snprintf(err, errlen, "%s%s%u (%s): %s", what ? what : "", what ? ": " : "", e,
	         mysql_stmt_sqlstate(st), mysql_stmt_error(st));
	return e >= 2000 && e < 3000;
}

bool bench_conn_broken(MYSQL *c)
{
	unsigned e = mysql_errno(c);
	/* Client-side errors (2000-2999) other than "commands out of sync" leave
	 * the protocol state unknown; a server ERR packet (< 2000) does not. */
	return e >= 2000 && e < 3000 && e != CR_COMMANDS_OUT_OF_SYNC;
}

long bench_drain(MYSQL *c, char *err, size_t errlen)
{
	long first_rows = -1;
	for (;;) {
		MYSQL_RES *res = mysql_store_result(c);
		if (res) {
			if (first_rows < 0)
				first_rows = (long)mysql_num_rows(res);
			mysql_free_result(res);
		} else if (mysql_field_count(c) != 0) {
			bench_conn_error(c, err, errlen);
			return -1;
		} else if (first_rows < 0) {
			first_rows = 0; /* a statement without a result set */
		}
		int more = mysql_next_result(c);
		if (more > 0) {
			bench_conn_error(c, err, errlen);
			return -1;
		}
		if (more < 0)
			break;
	}
	return first_rows;
}

const char *bench_param(const struct bench_cfg *cfg, const char *key, const char *def)
{
	size_t n = strlen(key);
	for (int i = cfg->nparams - 1; i >= 0; i--)
		if (strncmp(cfg->params[i], key, n) == 0 && cfg->params[i][n] == '=')
			return cfg->params[i] + n + 1;
	return def;
}
