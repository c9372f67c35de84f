/* Unit tests for src/proto/handshake: greetings from TiDB, MariaDB and MySQL,
 * handshake responses as real clients send them, SSLRequest, auth switch and
 * caching_sha2 messages; every truncation, malformed input, byte-identical
 * rewrites and capability rewrites. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/handshake.h"
#include "proto/packet.h"

#define N(a)      (sizeof(a) / sizeof((a)[0]))
#define LIT(s)    (const uint8_t *)(s), sizeof(s) - 1
#define TIDB_CAPS (0x051BA6AFu | PROTO_CLIENT_SSL)

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	cr_assert(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* Checks that b holds exactly one packet: sequence seq, payload want[0, n). */
static void check_packet(const struct buf *b, uint8_t seq, const uint8_t *want, size_t n,
                         const char *what)
{
	cr_assert_eq(b->len, PROTO_HDR + n, "%s: length %zu, want %zu", what, b->len - PROTO_HDR,
	             n);
	cr_assert_eq(b->data[0] | b->data[1] << 8 | b->data[2] << 16, (int)n, "%s", what);
	cr_assert_eq(b->data[3], seq, "%s: sequence id", what);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(b->data[PROTO_HDR + i], want[i], "%s: byte %zu is %02x, want %02x",
		             what, i, b->data[PROTO_HDR + i], want[i]);
}

/* ---- Greetings ---------------------------------------------------------- */

#define SALT20 "gA4#r8&Kd1!pQz7^mX2$"

/* TiDB v8.5.6 (pkg/server/conn.go writeInitialHandshake), written by hand. */
static const char TIDB_GREETING[] = "\x0a"                   /* protocol 10 */
                                    "8.0.11-TiDB-v8.5.6\x00" /* server version */
                                    "\x03\x00\x20\x00"       /* connection id 0x200003 */
                                    "gA4#r8&K"               /* salt part 1 */
                                    "\x00"                   /* filler */
                                    "\xaf\xae"               /* caps low: 0x051BA6AF | SSL */
                                    "\x2e"                   /* utf8mb4_bin */
                                    "\x02\x00"               /* AUTOCOMMIT */
                                    "\x1b\x05"               /* caps high */
                                    "\x15"                   /* auth data length 21 = salt + NUL */
                                    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" /* reserved */
                                    "d1!pQz7^mX2$\x00" /* salt part 2 and its NUL */
                                    "mysql_native_password\x00";

/* MariaDB 10.11: bit 0 (CLIENT_MYSQL) cleared, extended caps in the reserved
 * bytes' last four. */
static const char MARIADB_GREETING[] = "\x0a"
                                       "5.5.5-10.11.6-MariaDB-0+deb12u1\x00"
                                       "\x2a\x00\x00\x00"
                                       "Xo<7;r%N"
                                       "\x00"
                                       "\xfe\xf7"
                                       "\x2d" /* utf8mb4_general_ci */
                                       "\x02\x00"
                                       "\xff\x81"
                                       "\x15"
                                       "\x00\x00\x00\x00\x00\x00"
                                       "\x1d\x00\x00\x00"
                                       "Q8+tP}w?Ff|j\x00"
                                       "mysql_native_password\x00";

/* MySQL 8.0 with caching_sha2_password and a salt with high bytes. */
static const char MYSQL8_GREETING[] = "\x0a"
                                      "8.0.36\x00"
                                      "\x0b\x00\x00\x00"
                                      "\x01\x7f\x80\xfe\x2c\x3d\x4e\x5f"
                                      "\x00"
                                      "\xff\xff"
                                      "\xff"
                                      "\x02\x00"
                                      "\xff\xdf"
                                      "\x15"
                                      "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                                      "\x60\x71\x82\x93\xa4\xb5\xc6\xd7\xe8\xf9\x0a\x1b\x00"
                                      "caching_sha2_password\x00";

/* A server that declares 30 bytes of auth data: part 2 is 22 bytes. */
static const char LONG_SALT_GREETING[] = "\x0a"
                                         "x\x00"
                                         "\x01\x00\x00\x00"
                                         "ABCDEFGH"
                                         "\x00"
                                         "\x00\x82"
                                         "\x21"
                                         "\x02\x00"
                                         "\x08\x00"
                                         "\x1e"
                                         "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                                         "IJKLMNOPQRSTUVWXYZabc\x00"
                                         "p\x00";

struct greeting_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	const char *version;
	uint32_t conn_id;
	const uint8_t *salt;
	size_t salt_len;
	uint32_t caps;
	uint8_t charset;
	uint16_t status;
	uint32_t mariadb_caps;
	const char *plugin;
};

static const struct greeting_case greetings[] = {
        {"tidb", LIT(TIDB_GREETING), "8.0.11-TiDB-v8.5.6", 0x200003, LIT(SALT20), TIDB_CAPS, 46, 2,
         0, "mysql_native_password"},
        {"mariadb", LIT(MARIADB_GREETING), "5.5.5-10.11.6-MariaDB-0+deb12u1", 42,
         LIT("Xo<7;r%NQ8+tP}w?Ff|j"), 0x81FFF7FE, 45, 2, 0x1d, "mysql_native_password"},
        {"mysql8", LIT(MYSQL8_GREETING), "8.0.36", 11,
         LIT("\x01\x7f\x80\xfe\x2c\x3d\x4e\x5f\x60\x71\x82\x93\xa4\xb5\xc6\xd7\xe8\xf9\x0a\x1b"),
         0xDFFFFFFF, 255, 2, 0, "caching_sha2_password"},
        {"long_salt", LIT(LONG_SALT_GREETING), "x", 1, LIT("ABCDEFGHIJKLMNOPQRSTUVWXYZabc"),
         0x00088200, 0x21, 2, 0, "p"},
};

Test(proto_handshake, greeting_parse_and_rewrite)
{
	for (size_t i = 0; i < N(greetings); i++) {
		const struct greeting_case *c = &greetings[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_greeting g;
		cr_assert_eq(proto_parse_greeting(p, c->n, &g), (ssize_t)c->n, "%s", c->name);
		cr_assert_eq(g.protocol_version, 10);
		cr_assert_eq(g.server_version_len, strlen(c->version), "%s", c->name);
		cr_assert_str_eq(g.server_version, c->version); /* NUL-terminated in place */
		cr_assert_eq(g.conn_id, c->conn_id, "%s", c->name);
		cr_assert_eq(g.salt_len, c->salt_len, "%s: salt %zu", c->name, g.salt_len);
		cr_assert_eq(memcmp(g.salt, c->salt, c->salt_len), 0, "%s", c->name);
		cr_assert_eq(g.caps, c->caps, "%s: caps %08x", c->name, g.caps);
		cr_assert_eq(g.charset, c->charset, "%s", c->name);
		cr_assert_eq(g.status, c->status, "%s", c->name);
		cr_assert_eq(g.mariadb_caps, c->mariadb_caps, "%s", c->name);
		cr_assert_str_eq(g.plugin, c->plugin, "%s", c->name);
		cr_assert_eq(g.plugin_len, strlen(c->plugin));

		struct buf b;
		buf_init(&b);
		uint8_t seq = 0;
		cr_assert_eq(proto_write_greeting(&b, &seq, &g), 0);
		cr_assert_eq(seq, 1);
		check_packet(&b, 0, c->p, c->n, c->name);
		buf_free(&b);
		free(p);
	}
}

/* vecgate's own greeting for a client: TiDB's, built field by field. */
Test(proto_handshake, greeting_build_tidb)
{
	struct proto_greeting g = {
	        .protocol_version = PROTO_HANDSHAKE_V10,
	        .server_version = "8.0.11-TiDB-v8.5.6",
	        .server_version_len = 18,
	        .conn_id = 0x200003,
	        .salt_len = 20,
	        .caps = 0x051BA6AF | PROTO_CLIENT_SSL,
	        .charset = PROTO_CHARSET_UTF8MB4_BIN,
	        .status = PROTO_STATUS_AUTOCOMMIT,
	        .plugin = "mysql_native_password",
	        .plugin_len = 21,
	};
	memcpy(g.salt, SALT20, 20);
	struct buf b;
	buf_init(&b);
	uint8_t seq = 0;
	cr_assert_eq(proto_write_greeting(&b, &seq, &g), 0);
	check_packet(&b, 0, LIT(TIDB_GREETING), "built tidb greeting");

	/* Bad input is refused and leaves the buffer as it was. */
	g.salt_len = 7;
	cr_assert_eq(proto_write_greeting(&b, &seq, &g), -EINVAL);
	g.salt_len = 20;
	g.server_version = "8.0\0x";
	g.server_version_len = 5;
	cr_assert_eq(proto_write_greeting(&b, &seq, &g), -EINVAL);
	cr_assert_eq(b.len, PROTO_HDR + sizeof(TIDB_GREETING) - 1);
	buf_free(&b);
}

Test(proto_handshake, greeting_every_prefix_fails)
{
	for (size_t i = 0; i < N(greetings); i++) {
		const struct greeting_case *c = &greetings[i];
		for (size_t k = 0; k < c->n; k++) {
			uint8_t *p = dup_exact(c->p, k);
			struct proto_greeting g;
			ssize_t rc = proto_parse_greeting(p, k, &g);
			cr_assert_lt(rc, 0, "%s: prefix %zu parsed", c->name, k);
			free(p);
		}
	}
}

struct bad_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	ssize_t rc;
};

static const struct bad_case bad_greetings[] = {
        {"err_instead", LIT("\xff\x10\x04Too many connections"), -ECONNREFUSED},
        {"protocol_9",
         LIT("\x09"
             "5.0\x00\x01\x00\x00\x00"
             "abcdefgh\x00"),
         -EPROTONOSUPPORT},
        /* 4.0-era: nothing after the lower capability flags */
        {"pre41",
         LIT("\x0a"
             "4.0.1\x00\x01\x00\x00\x00"
             "abcdefgh\x00\x2c\x82"),
         -EPROTONOSUPPORT},
        {"version_no_nul",
         LIT("\x0a"
             "8.0.11-TiDB"),
         -EPROTO},
        {"plugin_no_nul",
         LIT("\x0a"
             "x\x00"
             "\x01\x00\x00\x00"
             "ABCDEFGH"
             "\x00"
             "\x00\x82"
             "\x21"
             "\x02\x00"
             "\x08\x00"
             "\x15"
             "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
             "IJKLMNOPQRST\x00"
             "mysql_native"),
         -EPROTO},
        {"empty", LIT(""), -EPROTO},
};

Test(proto_handshake, greeting_malformed)
{
	for (size_t i = 0; i < N(bad_greetings); i++) {
		const struct bad_case *c = &bad_greetings[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_greeting g;
		cr_assert_eq(proto_parse_greeting(p, c->n, &g), c->rc, "%s", c->name);
		free(p);
	}
}

/* ---- Handshake responses ------------------------------------------------ */

#define FILLER19 "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#define NOEXT    "\x00\x00\x00\x00"
#define SCR20    "\x8a\x1f\x3c\x5e\x91\x02\x7d\xee\x40\x13\xb6\x99\x27\x6c\xd0\x55\x0e\xfa\x31\x48"
#define SCR32    "abcdefghijklmnopqrstuvwxyz{|}~\x7f\x80"

/* PyMySQL 1.1 under SQLAlchemy: FOUND_ROWS, lenenc auth data, attrs. */
static const char PYMYSQL[] = "\x0f\xa2\x3a\x00"
                              "\x00\x00\x00\x01"
                              "\x2d" FILLER19 NOEXT "root\x00"
                              "\x14" SCR20 "test\x00"
                              "mysql_native_password\x00"
                              "\x4a"
                              "\x0c_client_name"
                              "\x07pymysql"
                              "\x04_pid"
                              "\x05"
                              "12345"
                              "\x0f_client_version"
                              "\x05"
                              "1.1.1"
                              "\x0cprogram_name"
                              "\x06"
                              "app.py";

/* libmariadb 3.3 to MariaDB: CLIENT_MYSQL cleared, extended caps 0x1c. */
static const char LIBMARIADB[] = "\x8c\xa2\xbf\x00"
                                 "\x00\x00\x00\x40"
                                 "\x2d" FILLER19 "\x1c\x00\x00\x00"
                                 "app\x00"
                                 "\x14" SCR20 "shop\x00"
                                 "mysql_native_password\x00"
                                 "\x63"
                                 "\x0c_client_name"
                                 "\x0alibmariadb"
                                 "\x0f_client_version"
                                 "\x05"
                                 "3.3.8"
                                 "\x03_os"
                                 "\x05Linux"
                                 "\x04_pid"
                                 "\x04"
                                 "4242"
                                 "\x09_platform"
                                 "\x06x86_64"
                                 "\x0c_server_host"
                                 "\x02"
                                 "db";

/* mysql-connector-python: 1-byte auth length (SECURE_CONNECTION only). */
static const char CONNECTOR_PYTHON[] = "\x0d\xa2\x1b\x00"
                                       "\x00\x00\x00\x40"
                                       "\xff" FILLER19 NOEXT "shop_rw\x00"
                                       "\x20" SCR32 "shop\x00"
                                       "caching_sha2_password\x00"
                                       "\x8c"
                                       "\x04_pid"
                                       "\x03"
                                       "777"
                                       "\x09_platform"
                                       "\x06x86_64"
                                       "\x0c_source_host"
                                       "\x04"
                                       "app1"
                                       "\x0c_client_name"
                                       "\x16mysql-connector-python"
                                       "\x0f_client_license"
                                       "\x07GPL-2.0"
                                       "\x0f_client_version"
                                       "\x05"
                                       "8.4.0"
                                       "\x03_os"
                                       "\x09Linux-6.1";

/* mysql 8.0 CLI with --compression-algorithms=zstd: no db, level byte 3. */
static const char MYSQL_CLI_ZSTD[] = "\x87\xa6\xff\x0d"
                                     "\x00\x00\x00\x01"
                                     "\xff" FILLER19 NOEXT "prefix.root\x00"
                                     "\x20" SCR32 "caching_sha2_password\x00"
                                     "\x66"
                                     "\x03_os"
                                     "\x05Linux"
                                     "\x0c_client_name"
                                     "\x08libmysql"
                                     "\x04_pid"
                                     "\x05"
                                     "31337"
                                     "\x0f_client_version"
                                     "\x06"
                                     "8.0.36"
                                     "\x09_platform"
                                     "\x06x86_64"
                                     "\x0cprogram_name"
                                     "\x05mysql"
                                     "\x03";

/* Without SECURE_CONNECTION: NUL-terminated auth data. */
static const char NUL_AUTH[] = "\x05\x22\x00\x00"
                               "\x00\x00\x00\x01"
                               "\x21" FILLER19 NOEXT "legacy\x00"
                               "\x11\x22\x33\x44\x55\x66\x77\x88\x00";

/* PyMySQL with an empty password and no database. */
static const char EMPTY_PASSWORD[] = "\x07\xa2\x3a\x00"
                                     "\x00\x00\x00\x01"
                                     "\x2e" FILLER19 NOEXT "root\x00"
                                     "\x00"
                                     "mysql_native_password\x00"
                                     "\x15"
                                     "\x0c_client_name"
                                     "\x07pymysql";

/* CONNECT_WITH_DB set, but the packet ends after the auth data (TiDB and
 * MySQL accept this). */
static const char DB_FLAG_NO_DB[] = "\x0f\xa2\x3a\x00"
                                    "\x00\x00\x00\x01"
                                    "\x2d" FILLER19 NOEXT "root\x00"
                                    "\x14" SCR20;

static const char SSL_REQUEST[] = "\x0f\xaa\x3a\x00"
                                  "\x00\x00\x00\x01"
                                  "\x2d" FILLER19 NOEXT;

struct resp_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	size_t want_n; /* the generator's length, to catch a typo in the fixture */
	uint32_t caps;
	uint32_t max_packet;
	uint8_t charset;
	uint32_t mariadb_caps;
	bool ssl;
	const char *user;
	size_t auth_len;
	const char *db;     /* NULL: absent */
	const char *plugin; /* NULL: absent */
	size_t attrs_len;   /* 0: absent */
	int zstd;           /* -1: absent */
};

static const struct resp_case responses[] = {
        {"pymysql", LIT(PYMYSQL), 160, 0x003aa20f, 1u << 24, 45, 0, false, "root", 20, "test",
         "mysql_native_password", 0x4a, -1},
        {"libmariadb", LIT(LIBMARIADB), 184, 0x00bfa28c, 1u << 30, 45, 0x1c, false, "app", 20,
         "shop", "mysql_native_password", 0x63, -1},
        {"connector_python", LIT(CONNECTOR_PYTHON), 241, 0x001ba20d, 1u << 30, 255, 0, false,
         "shop_rw", 32, "shop", "caching_sha2_password", 0x8c, -1},
        {"mysql_cli_zstd", LIT(MYSQL_CLI_ZSTD), 203, 0x0dffa687, 1u << 24, 255, 0, false,
         "prefix.root", 32, NULL, "caching_sha2_password", 0x66, 3},
        {"nul_auth", LIT(NUL_AUTH), 48, 0x00002205, 1u << 24, 33, 0, false, "legacy", 8, NULL, NULL,
         0, -1},
        {"empty_password", LIT(EMPTY_PASSWORD), 82, 0x003aa207, 1u << 24, 46, 0, false, "root", 0,
         NULL, "mysql_native_password", 0x15, -1},
        {"db_flag_no_db", LIT(DB_FLAG_NO_DB), 58, 0x003aa20f, 1u << 24, 45, 0, false, "root", 20,
         NULL, NULL, 0, -1},
        {"ssl_request", LIT(SSL_REQUEST), 32, 0x003aaa0f, 1u << 24, 45, 0, true, NULL, 0, NULL,
         NULL, 0, -1},
};

static void check_response(const struct resp_case *c, const struct proto_hs_response *r)
{
	cr_assert_eq(r->caps, c->caps, "%s: caps %08x", c->name, r->caps);
	cr_assert_eq(r->max_packet, c->max_packet, "%s", c->name);
	cr_assert_eq(r->charset, c->charset, "%s", c->name);
	cr_assert_eq(r->mariadb_caps, c->mariadb_caps, "%s", c->name);
	cr_assert_eq(r->ssl_request, c->ssl, "%s", c->name);
	if (c->ssl)
		return;
	cr_assert_str_eq(r->user, c->user, "%s", c->name);
	cr_assert_eq(r->user_len, strlen(c->user));
	cr_assert_eq(r->auth_len, c->auth_len, "%s", c->name);
	cr_assert_eq(r->has_db, c->db != NULL, "%s", c->name);
	if (c->db)
		cr_assert_str_eq(r->db, c->db, "%s", c->name);
	cr_assert_eq(r->has_plugin, c->plugin != NULL, "%s", c->name);
	if (c->plugin)
		cr_assert_str_eq(r->plugin, c->plugin, "%s", c->name);
	cr_assert_eq(r->has_attrs, c->attrs_len != 0, "%s", c->name);
	cr_assert_eq(r->attrs_len, c->attrs_len, "%s", c->name);
	cr_assert_eq(r->has_zstd_level, c->zstd >= 0, "%s", c->name);
	if (c->zstd >= 0)
		cr_assert_eq(r->zstd_level, c->zstd);
}

Test(proto_handshake, response_parse_and_identical_rewrite)
{
	for (size_t i = 0; i < N(responses); i++) {
		const struct resp_case *c = &responses[i];
		cr_assert_eq(c->n, c->want_n, "%s: fixture is %zu bytes", c->name, c->n);
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_hs_response r;
		cr_assert_eq(proto_parse_hs_response(p, c->n, &r), (ssize_t)c->n, "%s", c->name);
		check_response(c, &r);

		/* Relayed with nothing changed: the same bytes, sequence 1. */
		struct buf b;
		buf_init(&b);
		uint8_t seq = 1;
		cr_assert_eq(proto_write_hs_response(&b, &seq, &r), 0);
		cr_assert_eq(seq, 2);
		check_packet(&b, 1, c->p, c->n, c->name);
		buf_free(&b);
		free(p);
	}
}

/* Each prefix is an error, except where the protocol makes it a complete
 * message: the 32-byte SSLRequest form, or a response that ends before
 * db / plugin / attrs. Those must rewrite to exactly the prefix. */
Test(proto_handshake, response_every_prefix)
{
	for (size_t i = 0; i < N(responses); i++) {
		const struct resp_case *c = &responses[i];
		for (size_t k = 0; k < c->n; k++) {
			uint8_t *p = dup_exact(c->p, k);
			struct proto_hs_response r;
			ssize_t rc = proto_parse_hs_response(p, k, &r);
			if (rc >= 0) {
				cr_assert_eq(rc, (ssize_t)k, "%s prefix %zu", c->name, k);
				if (k == PROTO_SSL_REQUEST_LEN)
					cr_assert(r.ssl_request && (r.caps & PROTO_CLIENT_SSL));
				else
					cr_assert(!r.has_zstd_level && !r.has_attrs,
					          "%s prefix %zu", c->name, k);
				struct buf b;
				buf_init(&b);
				uint8_t seq = 1;
				cr_assert_eq(proto_write_hs_response(&b, &seq, &r), 0);
				check_packet(&b, 1, c->p, k, c->name);
				buf_free(&b);
			}
			free(p);
		}
	}
}

static const struct bad_case bad_responses[] = {
        {"no_protocol_41",
         LIT("\x05\x00\x00\x00"
             "\x00\x00\x00\x01"
             "\x21" FILLER19 NOEXT "u\x00\x00"),
         -EPROTONOSUPPORT},
        {"31_bytes",
         LIT("\x0f\xaa\x3a\x00"
             "\x00\x00\x00\x01"
             "\x2d" FILLER19 "\x00\x00\x00"),
         -EPROTO},
        {"32_bytes_without_ssl",
         LIT("\x0f\xa2\x3a\x00"
             "\x00\x00\x00\x01"
             "\x2d" FILLER19 NOEXT),
         -EPROTO},
        {"user_no_nul",
         LIT("\x0f\xa2\x3a\x00"
             "\x00\x00\x00\x01"
             "\x2d" FILLER19 NOEXT "root"),
         -EPROTO},
        {"auth_past_end",
         LIT("\x0f\xa2\x3a\x00"
             "\x00\x00\x00\x01"
             "\x2d" FILLER19 NOEXT "root\x00"
             "\x14"
             "abc"),
         -EPROTO},
        {"auth_lenenc_ff",
         LIT("\x0f\xa2\x3a\x00"
             "\x00\x00\x00\x01"
             "\x2d" FILLER19 NOEXT "root\x00"
             "\xff"),
         -EPROTO},
        {"secure_auth_past_end",
         LIT("\x0d\xa2\x1b\x00"
             "\x00\x00\x00\x40"
             "\xff" FILLER19 NOEXT "u\x00"
             "\x20"
             "abc"),
         -EPROTO},
        {"db_no_nul",
         LIT("\x0f\xa2\x3a\x00"
             "\x00\x00\x00\x01"
             "\x2d" FILLER19 NOEXT "root\x00"
             "\x00"
             "test"),
         -EPROTO},
        {"attrs_past_end",
         LIT("\x07\xa2\x3a\x00"
             "\x00\x00\x00\x01"
             "\x2e" FILLER19 NOEXT "root\x00"
             "\x00"
             "p\x00"
             "\x20"
             "\x03"
             "abc"),
         -EPROTO},
        {"zstd_level_missing",
         LIT("\x00\x02\x00\x04"
             "\x00\x00\x00\x01"
             "\xff" FILLER19 NOEXT "u\x00"
             "\x00"),
         -EPROTO},
        {"empty", LIT(""), -EPROTO},
        {"one_byte", LIT("\x0f"), -EPROTO},
};

Test(proto_handshake, response_malformed)
{
	for (size_t i = 0; i < N(bad_responses); i++) {
		const struct bad_case *c = &bad_responses[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_hs_response r;
		cr_assert_eq(proto_parse_hs_response(p, c->n, &r), c->rc, "%s", c->name);
		free(p);
	}
}

/* vecgate relays a client's response to TiDB with capabilities masked. */
Test(proto_handshake, response_capability_rewrite)
{
	struct proto_hs_response r, again;
	struct buf b;
	uint8_t seq;
	buf_init(&b);

	/* PyMySQL: TiDB does not offer LENENC_CLIENT_DATA; drop attrs too. */
	cr_assert_gt(proto_parse_hs_response(LIT(PYMYSQL), &r), 0);
	r.caps &= ~(PROTO_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | PROTO_CLIENT_CONNECT_ATTRS);
	seq = 1;
	cr_assert_eq(proto_write_hs_response(&b, &seq, &r), 0);
	cr_assert_eq(b.len, PROTO_HDR + sizeof(PYMYSQL) - 1 - 1 - 0x4a);
	cr_assert_eq(proto_parse_hs_response(b.data + PROTO_HDR, b.len - PROTO_HDR, &again),
	             (ssize_t)(b.len - PROTO_HDR));
	cr_assert_eq(again.caps, 0x000aa20f);
	cr_assert_eq(again.auth_len, 20);
	cr_assert_eq(memcmp(again.auth, SCR20, 20), 0);
	cr_assert_str_eq(again.db, "test");
	cr_assert_str_eq(again.plugin, "mysql_native_password");
	cr_assert(!again.has_attrs);

	/* Under TLS the relayed response carries CLIENT_SSL: only the flags change. */
	cr_assert_gt(proto_parse_hs_response(LIT(PYMYSQL), &r), 0);
	r.caps |= PROTO_CLIENT_SSL;
	buf_reset(&b);
	seq = 2;
	cr_assert_eq(proto_write_hs_response(&b, &seq, &r), 0);
	cr_assert_eq(b.data[3], 2);
	cr_assert_eq(b.data[PROTO_HDR + 1], 0xaa);
	cr_assert_eq(memcmp(b.data + PROTO_HDR + 2, PYMYSQL + 2, sizeof(PYMYSQL) - 3), 0);

	/* zstd masked: the level byte goes. */
	cr_assert_gt(proto_parse_hs_response(LIT(MYSQL_CLI_ZSTD), &r), 0);
	r.caps &= ~PROTO_CLIENT_ZSTD_COMPRESSION_ALGORITHM;
	buf_reset(&b);
	cr_assert_eq(proto_write_hs_response(&b, &seq, &r), 0);
	cr_assert_eq(b.len, PROTO_HDR + sizeof(MYSQL_CLI_ZSTD) - 2);

	/* A flag set for an absent db, with the plugin after it: an empty db. */
	cr_assert_gt(proto_parse_hs_response(LIT(EMPTY_PASSWORD), &r), 0);
	r.caps |= PROTO_CLIENT_CONNECT_WITH_DB;
	buf_reset(&b);
	cr_assert_eq(proto_write_hs_response(&b, &seq, &r), 0);
	cr_assert_eq(proto_parse_hs_response(b.data + PROTO_HDR, b.len - PROTO_HDR, &again),
	             (ssize_t)(b.len - PROTO_HDR));
	cr_assert(again.has_db && again.db_len == 0);
	cr_assert_str_eq(again.plugin, "mysql_native_password");
	cr_assert_eq(again.attrs_len, 0x15);

	/* An auth response too long for a 1-byte length cannot lose LENENC. */
	uint8_t big[300] = {0};
	r.auth = big;
	r.auth_len = sizeof(big);
	r.caps &= ~PROTO_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
	size_t before = b.len;
	cr_assert_eq(proto_write_hs_response(&b, &seq, &r), -EINVAL);
	cr_assert_eq(b.len, before, "a failed write leaves the buffer as it was");
	r.caps &= ~PROTO_CLIENT_SECURE_CONNECTION; /* NUL-terminated: a NUL inside */
	cr_assert_eq(proto_write_hs_response(&b, &seq, &r), -EINVAL);
	buf_free(&b);
}

Test(proto_handshake, ssl_request_write)
{
	struct buf b;
	buf_init(&b);
	uint8_t seq = 1;
	cr_assert_eq(proto_write_ssl_request(&b, &seq, 0x003aa20f, 1u << 24, 45), 0);
	check_packet(&b, 1, LIT(SSL_REQUEST), "ssl request");
	cr_assert_eq(seq, 2);
	struct proto_hs_response r;
	cr_assert_eq(proto_parse_hs_response(b.data + PROTO_HDR, b.len - PROTO_HDR, &r), 32);
	cr_assert(r.ssl_request);
	/* and the parsed form writes back as an SSLRequest */
	buf_reset(&b);
	seq = 1;
	cr_assert_eq(proto_write_hs_response(&b, &seq, &r), 0);
	check_packet(&b, 1, LIT(SSL_REQUEST), "ssl request rewrite");
	buf_free(&b);
}

/* ---- Auth switch and more data ------------------------------------------ */

struct switch_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	bool ok;
	const char *plugin;
	size_t data_len;
};

static const struct switch_case switches[] = {
        /* TiDB's authSwitchRequest: plugin, NUL, 20-byte salt, NUL */
        {"tidb_native",
         LIT("\xfe"
             "mysql_native_password\x00" SALT20 "\x00"),
         true, "mysql_native_password", 21},
        {"caching_sha2",
         LIT("\xfe"
             "caching_sha2_password\x00" SALT20 "\x00"),
         true, "caching_sha2_password", 21},
        {"clear_password",
         LIT("\xfe"
             "mysql_clear_password\x00"),
         true, "mysql_clear_password", 0},
        {"old_password_request", LIT("\xfe"), true, "", 0},
        {"no_nul",
         LIT("\xfe"
             "mysql_native"),
         false, NULL, 0},
        {"not_switch", LIT("\x01\x04"), false, NULL, 0},
        {"empty", LIT(""), false, NULL, 0},
};

Test(proto_handshake, auth_switch)
{
	for (size_t i = 0; i < N(switches); i++) {
		const struct switch_case *c = &switches[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_auth_switch sw;
		ssize_t rc = proto_parse_auth_switch(p, c->n, &sw);
		cr_assert_eq(rc, c->ok ? (ssize_t)c->n : -EPROTO, "%s", c->name);
		if (c->ok) {
			cr_assert_str_eq(sw.plugin, c->plugin, "%s", c->name);
			cr_assert_eq(sw.data_len, c->data_len, "%s", c->name);
			if (c->n > 1) {
				struct buf b;
				buf_init(&b);
				uint8_t seq = 2;
				cr_assert_eq(proto_write_auth_switch(&b, &seq, sw.plugin, sw.data,
				                                     sw.data_len),
				             0);
				check_packet(&b, 2, c->p, c->n, c->name);
				buf_free(&b);
			}
		}
		for (size_t k = 0; k < c->n && c->ok; k++) {
			uint8_t *q = dup_exact(c->p, k);
			rc = proto_parse_auth_switch(q, k, &sw);
			cr_assert(rc < 0 || rc == (ssize_t)k);
			free(q);
		}
		free(p);
	}
}

struct more_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	bool ok;
	enum proto_sha2_msg msg;
};

static const struct more_case mores[] = {
        /* TiDB always answers caching_sha2 with "perform full authentication" */
        {"full_auth", LIT("\x01\x04"), true, PROTO_SHA2_MSG_FULL_AUTH},
        {"fast_auth_ok", LIT("\x01\x03"), true, PROTO_SHA2_MSG_FAST_OK},
        {"public_key",
         LIT("\x01-----BEGIN PUBLIC KEY-----\nMIIBIjANBg...\n-----END PUBLIC KEY-----\n"), true,
         PROTO_SHA2_MSG_NONE},
        {"other_status", LIT("\x01\x02"), true, PROTO_SHA2_MSG_NONE},
        {"longer", LIT("\x01\x03\x00"), true, PROTO_SHA2_MSG_NONE},
        {"bare", LIT("\x01"), true, PROTO_SHA2_MSG_NONE},
        {"ok_packet", LIT("\x00\x03"), false, PROTO_SHA2_MSG_NONE},
        {"empty", LIT(""), false, PROTO_SHA2_MSG_NONE},
};

Test(proto_handshake, auth_more_data)
{
	for (size_t i = 0; i < N(mores); i++) {
		const struct more_case *c = &mores[i];
		uint8_t *p = dup_exact(c->p, c->n);
		const uint8_t *data;
		size_t len;
		ssize_t rc = proto_parse_auth_more(p, c->n, &data, &len);
		cr_assert_eq(rc, c->ok ? (ssize_t)c->n : -EPROTO, "%s", c->name);
		cr_assert_eq(proto_sha2_message(p, c->n), c->msg, "%s", c->name);
		if (c->ok) {
			cr_assert_eq(len, c->n - 1);
			struct buf b;
			buf_init(&b);
			uint8_t seq = 3;
			cr_assert_eq(proto_write_auth_more(&b, &seq, data, len), 0);
			check_packet(&b, 3, c->p, c->n, c->name);
			buf_free(&b);
		}
		free(p);
	}
}
