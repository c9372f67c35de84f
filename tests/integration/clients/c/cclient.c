/* cclient: libmariadb (Connector/C) against a MySQL-protocol server over
 * verified TLS, exercising the commands the scripting clients never send:
 * server-side cursors (COM_STMT_FETCH), COM_STMT_SEND_LONG_DATA, COM_STMT_RESET,
 * COM_FIELD_LIST, COM_STATISTICS, COM_PING, COM_INIT_DB, COM_CHANGE_USER,
 * COM_RESET_CONNECTION and multi-statement queries with several results.
 * Prints deterministic lines; the integration tests compare a direct run with
 * a run through vecgate. Exits 1 with mysql_error() on the first failure.
 *   vecgate_test_cclient --host H --port P --ca CA.pem --db DB [--user U] [--password P]
 */
#include <mysql.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static MYSQL *conn;
static const char *opt_db;

static void die(const char *what)
{
	fprintf(stderr, "cclient: %s: error %u (%s): %s\n", what, mysql_errno(conn),
	        mysql_sqlstate(conn), mysql_error(conn));
	exit(1);
}

static void die_stmt(MYSQL_STMT *st, const char *what)
{
	fprintf(stderr, "cclient: %s: error %u (%s): %s\n", what, mysql_stmt_errno(st),
	        mysql_stmt_sqlstate(st), mysql_stmt_error(st));
	exit(1);
}

static void fail(const char *what)
{
	fprintf(stderr, "cclient: %s\n", what);
	exit(1);
}

/* FNV-1a, enough to tell long values apart in the printed output. */
static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* One cell: NULL, a quoted string with non-printable bytes as \xNN, or the
 * length and hash of a long value. */
static void print_cell(const char *v, unsigned long len)
{
	if (!v) {
		fputs("NULL", stdout);
		return;
	}
	if (len > 64) {
		printf("bytes(len=%lu fnv=%016llx)", len,
		       (unsigned long long)fnv1a((const unsigned char *)v, len));
		return;
	}
	putchar('"');
	for (unsigned long i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_fields(const char *label, MYSQL_RES *res)
{
	unsigned int n = mysql_num_fields(res);
	MYSQL_FIELD *f = mysql_fetch_fields(res);
	printf("%s: columns", label);
	for (unsigned int i = 0; i < n; i++)
		printf("%s%s:%d", i ? "," : " ", f[i].name, (int)f[i].type);
	putchar('\n');
}

/* Prints a text-protocol result: its columns, one line per row, the count. */
static void print_result(const char *label, MYSQL_RES *res)
{
	unsigned int n = mysql_num_fields(res);
	MYSQL_ROW row;
	unsigned long rows = 0;
	print_fields(label, res);
	while ((row = mysql_fetch_row(res))) {
		unsigned long *len = mysql_fetch_lengths(res);
		printf("%s: row ", label);
		for (unsigned int i = 0; i < n; i++) {
			if (i)
				fputs(" | ", stdout);
			print_cell(row[i], len[i]);
		}
		putchar('\n');
		rows++;
	}
	if (mysql_errno(conn))
		die(label);
	printf("%s: %lu rows\n", label, rows);
}

static void query(const char *sql)
{
	if (mysql_query(conn, sql))
		die(sql);
}

/* Runs a statement that returns no rows and prints its OK packet's fields. */
static void exec(const char *label, const char *sql)
{
	query(sql);
	const char *info = mysql_info(conn);
	printf("%s: affected %llu insert_id %llu warnings %u info %s\n", label,
	       (unsigned long long)mysql_affected_rows(conn),
	       (unsigned long long)mysql_insert_id(conn), mysql_warning_count(conn),
	       info ? info : "-");
}

static void dump(const char *label, const char *sql)
{
	query(sql);
	MYSQL_RES *res = mysql_store_result(conn);
	if (!res)
		die(label);
	print_result(label, res);
	mysql_free_result(res);
}

/* Walks every result of a multi-statement query: result sets are printed,
 * statements without one print their affected rows, an error ends the walk. */
static void multi(const char *label, const char *sql, int unbuffered)
{
	char name[64];
	int i = 0, status;
	if (mysql_query(conn, sql)) {
		printf("%s: error %u at statement 0\n", label, mysql_errno(conn));
		return;
	}
	do {
		snprintf(name, sizeof name, "%s[%d]", label, i);
		MYSQL_RES *res = unbuffered ? mysql_use_result(conn) : mysql_store_result(conn);
		if (res) {
			print_result(name, res);
			mysql_free_result(res);
		} else if (mysql_field_count(conn) == 0) {
			printf("%s: affected %llu\n", name,
			       (unsigned long long)mysql_affected_rows(conn));
		} else {
			die(name);
		}
		printf("%s: more results %d\n", name, mysql_more_results(conn) ? 1 : 0);
		status = mysql_next_result(conn);
		i++;
	} while (status == 0);
	if (status > 0)
		printf("%s: error %u (%s) at statement %d\n", label, mysql_errno(conn),
		       mysql_sqlstate(conn), i);
	else
		printf("%s: %d results\n", label, i);
}

static MYSQL_STMT *prepare(const char *sql)
{
	MYSQL_STMT *st = mysql_stmt_init(conn);
	if (!st)
		die("mysql_stmt_init");
	if (mysql_stmt_prepare(st, sql, strlen(sql)))
		die_stmt(st, sql);
	return st;
}

/* A cursor over `SELECT id, name FROM c WHERE id <= ?`: rows come two at a
 * time (COM_STMT_FETCH). Stops after `stop` rows (0: all) and returns the count. */
struct cursor_row {
	int id;
	char name[64];
	unsigned long name_len;
	my_bool id_null, name_null;
};

static void bind_cursor_result(MYSQL_STMT *st, struct cursor_row *r)
{
	MYSQL_BIND b[2];
	memset(b, 0, sizeof b);
	b[0].buffer_type = MYSQL_TYPE_LONG;
	b[0].buffer = &r->id;
	b[0].is_null = &r->id_null;
	b[1].buffer_type = MYSQL_TYPE_STRING;
	b[1].buffer = r->name;
	b[1].buffer_length = sizeof r->name;
	b[1].length = &r->name_len;
	b[1].is_null = &r->name_null;
	if (mysql_stmt_bind_result(st, b))
		die_stmt(st, "bind cursor result");
}

static int fetch_cursor(const char *label, MYSQL_STMT *st, struct cursor_row *r, int stop)
{
	int n = 0, rc = 0;
	while ((stop == 0 || n < stop) && (rc = mysql_stmt_fetch(st)) == 0) {
		printf("%s: row %d | ", label, r->id);
		print_cell(r->name_null ? NULL : r->name, r->name_len);
		putchar('\n');
		n++;
	}
	if (stop == 0 || n < stop) {
		if (rc == 1)
			die_stmt(st, label);
		if (rc == MYSQL_DATA_TRUNCATED)
			fail("cursor row truncated");
	}
	printf("%s: %d rows\n", label, n);
	return n;
}

static void test_cursor(void)
{
	MYSQL_STMT *st = prepare("SELECT id, name FROM c WHERE id <= ? ORDER BY id");
	unsigned long type = CURSOR_TYPE_READ_ONLY, prefetch = 2;
	if (mysql_stmt_attr_set(st, STMT_ATTR_CURSOR_TYPE, &type))
		die_stmt(st, "STMT_ATTR_CURSOR_TYPE");
	if (mysql_stmt_attr_set(st, STMT_ATTR_PREFETCH_ROWS, &prefetch))
		die_stmt(st, "STMT_ATTR_PREFETCH_ROWS");
	printf("cursor: params %lu fields %u\n", mysql_stmt_param_count(st),
	       mysql_stmt_field_count(st));

	int limit = 10;
	MYSQL_BIND p;
	memset(&p, 0, sizeof p);
	p.buffer_type = MYSQL_TYPE_LONG;
	p.buffer = &limit;
	if (mysql_stmt_bind_param(st, &p))
		die_stmt(st, "bind cursor param");
	struct cursor_row r;
	memset(&r, 0, sizeof r);
	bind_cursor_result(st, &r);

	if (mysql_stmt_execute(st))
		die_stmt(st, "cursor execute");
	MYSQL_RES *meta = mysql_stmt_result_metadata(st);
	if (!meta)
		die_stmt(st, "cursor metadata");
	print_fields("cursor", meta);
	mysql_free_result(meta);
	fetch_cursor("cursor all", st, &r, 0);

	/* Part of the rows, then COM_STMT_RESET closes the cursor; the statement
	 * runs again from the start with another parameter. */
	if (mysql_stmt_execute(st))
		die_stmt(st, "cursor execute 2");
	fetch_cursor("cursor partial", st, &r, 3);
	if (mysql_stmt_reset(st))
		die_stmt(st, "mysql_stmt_reset (cursor)");
	printf("cursor: reset\n");
	limit = 7;
	if (mysql_stmt_execute(st))
		die_stmt(st, "cursor execute after reset");
	fetch_cursor("cursor after reset", st, &r, 0);

	/* Closing a statement with its cursor still open (COM_STMT_CLOSE). */
	if (mysql_stmt_execute(st))
		die_stmt(st, "cursor execute 3");
	fetch_cursor("cursor left open", st, &r, 1);
	if (mysql_stmt_close(st))
		die("close cursor statement");
	dump("after cursor close", "SELECT COUNT(*) FROM c");
}

/* 3 MiB sent in 48 chunks of 64 KiB with COM_STMT_SEND_LONG_DATA. */
#define LONG_SIZE  (3u << 20)
#define LONG_CHUNK (64u << 10)

static void test_long_data(void)
{
	unsigned char *big = malloc(LONG_SIZE);
	if (!big)
		fail("out of memory");
	for (size_t i = 0; i < LONG_SIZE; i++)
		big[i] = (unsigned char)(i * 131 + (i >> 10) + (i >> 20));

	MYSQL_STMT *st = prepare("INSERT INTO c (id, name, big) VALUES (?, ?, ?)");
	int id = 100;
	char name[32] = "long data";
	unsigned long name_len = strlen(name);
	char inline_big[16] = "small inline";
	unsigned long inline_len = strlen(inline_big);
	MYSQL_BIND p[3];
	memset(p, 0, sizeof p);
	p[0].buffer_type = MYSQL_TYPE_LONG;
	p[0].buffer = &id;
	p[1].buffer_type = MYSQL_TYPE_STRING;
	p[1].buffer = name;
	p[1].buffer_length = sizeof name;
	p[1].length = &name_len;
	p[2].buffer_type = MYSQL_TYPE_LONG_BLOB;
	p[2].buffer = inline_big;
	p[2].buffer_length = sizeof inline_big;
	p[2].length = &inline_len;
	if (mysql_stmt_bind_param(st, p))
		die_stmt(st, "bind long data params");

	unsigned chunks = 0;
	for (size_t off = 0; off < LONG_SIZE; off += LONG_CHUNK, chunks++)
		if (mysql_stmt_send_long_data(st, 2, (const char *)big + off, LONG_CHUNK))
			die_stmt(st, "mysql_stmt_send_long_data");
	if (mysql_stmt_execute(st))
		die_stmt(st, "execute with long data");
	printf("long data: %u chunks, affected %llu\n", chunks,
	       (unsigned long long)mysql_stmt_affected_rows(st));

	/* Long data for a second row, then COM_STMT_RESET discards it: the row
	 * gets the inline value. */
	id = 101;
	strcpy(name, "reset");
	name_len = strlen(name);
	if (mysql_stmt_send_long_data(st, 2, "discarded by reset", 18))
		die_stmt(st, "mysql_stmt_send_long_data 2");
	if (mysql_stmt_reset(st))
		die_stmt(st, "mysql_stmt_reset");
	if (mysql_stmt_bind_param(st, p))
		die_stmt(st, "bind after reset");
	if (mysql_stmt_execute(st))
		die_stmt(st, "execute after reset");
	printf("long data after reset: affected %llu\n",
	       (unsigned long long)mysql_stmt_affected_rows(st));
	if (mysql_stmt_close(st))
		die("close long data statement");

	dump("long data rows",
	     "SELECT id, name, LENGTH(big), SHA2(big, 256) FROM c WHERE id >= 100 ORDER BY id");

	/* Read the 3 MiB back through the binary protocol and compare bytes. */
	st = prepare("SELECT big FROM c WHERE id = ?");
	id = 100;
	MYSQL_BIND q, res;
	memset(&q, 0, sizeof q);
	q.buffer_type = MYSQL_TYPE_LONG;
	q.buffer = &id;
	if (mysql_stmt_bind_param(st, &q))
		die_stmt(st, "bind read-back param");
	unsigned char *back = malloc(LONG_SIZE + 1);
	unsigned long back_len = 0;
	my_bool back_null = 0;
	if (!back)
		fail("out of memory");
	memset(&res, 0, sizeof res);
	res.buffer_type = MYSQL_TYPE_LONG_BLOB;
	res.buffer = back;
	res.buffer_length = LONG_SIZE + 1;
	res.length = &back_len;
	res.is_null = &back_null;
	if (mysql_stmt_execute(st))
		die_stmt(st, "read-back execute");
	if (mysql_stmt_bind_result(st, &res))
		die_stmt(st, "read-back bind");
	int rc = mysql_stmt_fetch(st);
	if (rc == 1)
		die_stmt(st, "read-back fetch");
	printf("long data read back: fetch %d null %d len %lu equal %d\n", rc, (int)back_null,
	       back_len, back_len == LONG_SIZE && memcmp(back, big, LONG_SIZE) == 0);
	if (mysql_stmt_fetch(st) != MYSQL_NO_DATA)
		die_stmt(st, "read-back: more than one row");
	if (mysql_stmt_close(st))
		die("close read-back statement");
	free(back);
	free(big);
}

static void test_list_fields(void)
{
	MYSQL_RES *res = mysql_list_fields(conn, "c", NULL);
	if (!res)
		die("mysql_list_fields");
	unsigned int n = mysql_num_fields(res);
	MYSQL_FIELD *f = mysql_fetch_fields(res);
	for (unsigned int i = 0; i < n; i++)
		printf("list fields: %s table %s org_table %s type %d length %lu flags %u decimals "
		       "%u charset %u\n",
		       f[i].name, f[i].table, f[i].org_table, (int)f[i].type, f[i].length,
		       f[i].flags, f[i].decimals, f[i].charsetnr);
	printf("list fields: %u fields\n", n);
	mysql_free_result(res);

	res = mysql_list_fields(conn, "c", "na%");
	if (!res)
		die("mysql_list_fields wild");
	n = mysql_num_fields(res);
	f = mysql_fetch_fields(res);
	for (unsigned int i = 0; i < n; i++)
		printf("list fields na%%: %s\n", f[i].name);
	mysql_free_result(res);

	if (mysql_list_fields(conn, "no_such_table", NULL))
		fail("mysql_list_fields of a missing table succeeded");
	printf("list fields missing table: error %u\n", mysql_errno(conn));
}

static void print_database(const char *label)
{
	query("SELECT DATABASE()");
	MYSQL_RES *res = mysql_store_result(conn);
	if (!res)
		die(label);
	MYSQL_ROW row = mysql_fetch_row(res);
	if (!row)
		die(label);
	const char *d = row[0];
	/* The test runs go to differently named databases: print a comparison. */
	printf("%s: database %s\n", label, !d ? "NULL" : strcmp(d, opt_db) == 0 ? "is --db" : d);
	mysql_free_result(res);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *ca = NULL, *user = "root", *password = "";
	unsigned int port = 4000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = (unsigned int)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--ca"))
			ca = argv[i + 1];
		else if (!strcmp(argv[i], "--db"))
			opt_db = argv[i + 1];
		else if (!strcmp(argv[i], "--user"))
			user = argv[i + 1];
		else if (!strcmp(argv[i], "--password"))
			password = argv[i + 1];
		else
			ca = NULL, i = argc;
	}
	if (!ca || !opt_db || argc % 2 == 0) {
		fprintf(stderr,
		        "usage: %s --host H --port P --ca CA.pem --db DB [--user U] [--password "
		        "PW]\n",
		        argv[0]);
		return 2;
	}

	conn = mysql_init(NULL);
	if (!conn)
		fail("mysql_init");
	my_bool verify = 1;
	unsigned int timeout = 30;
	mysql_options(conn, MYSQL_OPT_SSL_CA, ca);
	mysql_options(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
	mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &timeout);
	mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
	mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (!mysql_real_connect(conn, host, user, password, opt_db, port, NULL,
	                        CLIENT_MULTI_STATEMENTS))
		die("connect");
	printf("connected: server %s, tls %s\n", mysql_get_server_info(conn),
	       mysql_get_ssl_cipher(conn) ? "yes" : "no");
	dump("ssl status", "SHOW SESSION STATUS WHERE Variable_name = 'Ssl_version' AND Value IN "
	                   "('TLSv1.2', 'TLSv1.3')");
	print_database("connect");

	/* COM_INIT_DB: away, a missing database, and back. */
	if (mysql_select_db(conn, "information_schema"))
		die("mysql_select_db information_schema");
	print_database("select_db information_schema");
	if (!mysql_select_db(conn, "vecgate_no_such_database"))
		fail("mysql_select_db of a missing database succeeded");
	printf("select_db missing: error %u (%s)\n", mysql_errno(conn), mysql_sqlstate(conn));
	if (mysql_select_db(conn, opt_db))
		die("mysql_select_db back");
	print_database("select_db back");

	exec("create", "CREATE TABLE c (id INT PRIMARY KEY, name VARCHAR(32) CHARACTER SET "
	               "utf8mb4, big LONGBLOB)");
	exec("insert 10", "INSERT INTO c (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three'), "
	                  "(4, 'four'), (5, 'five'),"
	                  " (6, 'six'), (7, 'sept ✓'), (8, NULL), (9, 'nine''s'), (10, 'ten')");

	/* CLIENT_MULTI_STATEMENTS: two result sets around an OK, buffered and not. */
	multi("multi",
	      "SELECT 1 AS a, 'two' AS b; UPDATE c SET name = CONCAT(name, '!') WHERE id <= 2; "
	      "SELECT id, name FROM c WHERE id <= 3 ORDER BY id",
	      0);
	multi("multi unbuffered",
	      "SELECT id FROM c WHERE id > 7 ORDER BY id; SELECT COUNT(*) AS n FROM c", 1);
	multi("multi error", "SELECT 1; SELECT * FROM no_such_table; SELECT 3", 0);
	dump("after multi error", "SELECT 'still here'");

	test_cursor();
	test_long_data();
	test_list_fields();

	const char *stat = mysql_stat(conn);
	if (!stat)
		die("mysql_stat");
	printf("stat: non-empty %d\n", stat[0] != '\0');
	if (mysql_ping(conn))
		die("mysql_ping");
	printf("ping: ok\n");

	/* COM_CHANGE_USER to the same user: session state is gone, the database set. */
	query("SET @marker = 42");
	if (mysql_change_user(conn, user, password, opt_db))
		die("mysql_change_user");
	printf("change_user: ok\n");
	dump("after change_user", "SELECT @marker IS NULL AS marker_gone, CURRENT_USER() AS u");
	print_database("after change_user");

	/* COM_RESET_CONNECTION: user variables and the transaction are gone, the
	 * database stays. */
	query("SET @marker = 43");
	query("START TRANSACTION");
	query("INSERT INTO c (id, name) VALUES (200, 'uncommitted')");
	if (mysql_reset_connection(conn))
		die("mysql_reset_connection");
	printf("reset_connection: ok\n");
	dump("after reset_connection",
	     "SELECT @marker IS NULL AS marker_gone, @@autocommit AS ac, "
	     "(SELECT COUNT(*) FROM c WHERE id = 200) AS uncommitted_rows");
	print_database("after reset_connection");

	dump("final", "SELECT id, name, big IS NULL FROM c ORDER BY id");
	mysql_close(conn);
	printf("done\n");
	return 0;
}
