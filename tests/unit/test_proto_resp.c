/* Unit tests for src/proto/resp: the response tracker fed with realistic
 * TiDB / MySQL server packet sequences for every command, with and without
 * CLIENT_DEPRECATE_EOF, plus truncated and impossible packets. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mysql.h"
#include "proto/resp.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define PK(s)                                                                                      \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}
#define DONE   PROTO_RESP_DONE
#define INFILE PROTO_RESP_INFILE
#define BAD    (-EPROTO)

/* Capabilities negotiated with a client: without and with DEPRECATE_EOF. */
#define C41                                                                                        \
	(PROTO_CLIENT_PROTOCOL_41 | PROTO_CLIENT_TRANSACTIONS | PROTO_CLIENT_LOCAL_FILES |         \
	 PROTO_CLIENT_MULTI_STATEMENTS | PROTO_CLIENT_MULTI_RESULTS |                              \
	 PROTO_CLIENT_PS_MULTI_RESULTS)
#define CDEP (C41 | PROTO_CLIENT_DEPRECATE_EOF)

/* test.t.id INT: catalog, schema, table, org_table, name, org_name, 0x0c,
 * charset 63, length 11, type LONG, flags NOT_NULL|PRI_KEY|NUM.., decimals. */
#define COLDEF                                                                                     \
	"\x03"                                                                                     \
	"def"                                                                                      \
	"\x04"                                                                                     \
	"test"                                                                                     \
	"\x01"                                                                                     \
	"t"                                                                                        \
	"\x01"                                                                                     \
	"t"                                                                                        \
	"\x02"                                                                                     \
	"id"                                                                                       \
	"\x02"                                                                                     \
	"id"                                                                                       \
	"\x0c"                                                                                     \
	"\x3f\x00"                                                                                 \
	"\x0b\x00\x00\x00"                                                                         \
	"\x03"                                                                                     \
	"\x03\x42"                                                                                 \
	"\x00"                                                                                     \
	"\x00\x00"
/* TiDB vector column: LONG_BLOB, charset 46, length 0xFFFFFFFF. */
#define VECDEF                                                                                     \
	"\x03"                                                                                     \
	"def"                                                                                      \
	"\x04"                                                                                     \
	"test"                                                                                     \
	"\x04"                                                                                     \
	"docs"                                                                                     \
	"\x04"                                                                                     \
	"docs"                                                                                     \
	"\x09"                                                                                     \
	"embedding"                                                                                \
	"\x09"                                                                                     \
	"embedding"                                                                                \
	"\x0c"                                                                                     \
	"\x2e\x00"                                                                                 \
	"\xff\xff\xff\xff"                                                                         \
	"\xfb"                                                                                     \
	"\x00\x00"                                                                                 \
	"\x00"                                                                                     \
	"\x00\x00"
/* VEC_COSINE_DISTANCE(...) AS distance: DOUBLE, charset 63, length 23,
 * BINARY, decimals 31 (docs/tidb.md §2). */
#define DISTDEF                                                                                    \
	"\x03"                                                                                     \
	"def"                                                                                      \
	"\x00"                                                                                     \
	"\x00"                                                                                     \
	"\x00"                                                                                     \
	"\x08"                                                                                     \
	"distance"                                                                                 \
	"\x00"                                                                                     \
	"\x0c"                                                                                     \
	"\x3f\x00"                                                                                 \
	"\x17\x00\x00\x00"                                                                         \
	"\x05"                                                                                     \
	"\x80\x00"                                                                                 \
	"\x1f"                                                                                     \
	"\x00\x00"
/* A prepared statement's parameter: TiDB sends name "?" and VAR_STRING. */
#define PARAMDEF                                                                                   \
	"\x03"                                                                                     \
	"def"                                                                                      \
	"\x00"                                                                                     \
	"\x00"                                                                                     \
	"\x00"                                                                                     \
	"\x01"                                                                                     \
	"?"                                                                                        \
	"\x00"                                                                                     \
	"\x0c"                                                                                     \
	"\x3f\x00"                                                                                 \
	"\x00\x00\x00\x00"                                                                         \
	"\xfd"                                                                                     \
	"\x80\x00"                                                                                 \
	"\x00"                                                                                     \
	"\x00\x00"

#define EOF_AC       "\xfe\x00\x00\x02\x00"
#define EOF_MORE     "\xfe\x00\x00\x0a\x00"
#define EOF_CURSOR   "\xfe\x00\x00\x42\x00" /* AUTOCOMMIT | CURSOR_EXISTS */
#define EOF_LAST     "\xfe\x00\x00\x82\x00" /* AUTOCOMMIT | LAST_ROW_SENT */
#define OKEOF_AC     "\xfe\x00\x00\x02\x00\x00\x00"
#define OKEOF_WARN   "\xfe\x00\x00\x03\x00\x01\x00" /* IN_TRANS, 1 warning */
#define OKEOF_MORE   "\xfe\x00\x00\x0a\x00\x00\x00"
#define OKEOF_CURSOR "\xfe\x00\x00\x42\x00\x00\x00"
#define OKEOF_LAST   "\xfe\x00\x00\x82\x00\x00\x00"
#define OK_AC        "\x00\x00\x00\x02\x00\x00\x00"
#define OK_INSERT    "\x00\x01\x07\x03\x00\x00\x00" /* 1 row, id 7, IN_TRANS */
#define OK_MORE      "\x00\x00\x00\x0a\x00\x00\x00"
#define OK_LOAD                                                                                    \
	"\x00\x03\x00\x02\x00\x00\x00"                                                             \
	"\x2f"                                                                                     \
	"Records: 3  Deleted: 0  Skipped: 0  Warnings: 0"
#define ERR_1146    "\xff\x7a\x04#42S02Table 'test.t' doesn't exist"
#define ERR_1317    "\xff\x25\x05#70100Query execution was interrupted"
#define ERR_1326    "\xff\x2e\x05#24000Cursor is not open"
#define ERR_1053    "\xff\x1d\x04#08S01Server shutdown in progress"
#define ERR_1049    "\xff\x19\x04#42000Unknown database 'nope'"
#define ERR_UNKNOWN "\xff\x51\x04#HY000command 32 not supported now"
#define INFILE_REQ                                                                                 \
	"\xfb"                                                                                     \
	"/tmp/vecs.csv"
#define ROW_1                                                                                      \
	"\x01"                                                                                     \
	"1"
#define ROW_NULL  "\xfb"                     /* NULL first cell */
#define ROW_EMPTY "\x00"                     /* empty string first cell */
#define BROW      "\x00\x00\x01\x00\x00\x00" /* binary: header, null bitmap, INT 1 */
#define BROW_NULL "\x00\x04"                 /* binary: the only column NULL */
/* OK-prepare: id 1, 2 columns, 1 parameter, filler, 0 warnings */
#define PREP_1_2_1                                                                                 \
	"\x00"                                                                                     \
	"\x01\x00\x00\x00"                                                                         \
	"\x02\x00"                                                                                 \
	"\x01\x00"                                                                                 \
	"\x00"                                                                                     \
	"\x00\x00"
#define STATS                                                                                      \
	"Uptime: 86400  Threads: 0  Questions: 0  Slow queries: 0  Opens: 0  "                     \
	"Flush tables: 0  Open tables: 0  Queries per second avg: 0.000"

#define EXEC_PLAIN                                                                                 \
	"\x17"                                                                                     \
	"\x01\x00\x00\x00"                                                                         \
	"\x00"                                                                                     \
	"\x01\x00\x00\x00"
#define EXEC_CURSOR                                                                                \
	"\x17"                                                                                     \
	"\x01\x00\x00\x00"                                                                         \
	"\x01"                                                                                     \
	"\x01\x00\x00\x00"

struct pk {
	const char *b;
	size_t n;
};

struct rcase {
	const char *name;
	uint8_t cmd;
	uint32_t caps;
	struct pk cmdp;   /* the command payload, command byte included */
	struct pk pk[16]; /* server packets, until b == NULL */
	int want[16];     /* feed result per packet; 0 = PROTO_RESP_MORE */
	/* Checked when the last packet gives DONE. The tracker starts with
	 * status 0x0002 (from the handshake's OK). */
	uint16_t status;
	bool status_seen;
	uint16_t warnings;
	uint16_t err; /* 0: no ERR */
	unsigned results, result_sets;
	unsigned before_err; /* with err: results that ended well before it */
	uint64_t rows;
	uint64_t affected, insert_id;
	bool cursor;
	uint32_t stmt_id;
	uint16_t ncols, nparams;
};

static const struct rcase cases[] = {
        /* ---- COM_QUERY ---- */
        {.name = "q_insert_ok",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(OK_INSERT)},
         .want = {DONE},
         .status = 3,
         .status_seen = true,
         .results = 1,
         .affected = 1,
         .insert_id = 7},
        {.name = "q_err",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(ERR_1146)},
         .want = {DONE},
         .status = 2,
         .err = 1146},
        {.name = "q_select_eof",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1), PK(ROW_NULL), PK(ROW_EMPTY),
                PK(EOF_AC)},
         .want = {[6] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 3},
        {.name = "q_select_deprecate",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x01"), PK(COLDEF), PK(ROW_1), PK(ROW_NULL), PK(ROW_EMPTY), PK(OKEOF_AC)},
         .want = {[5] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 3},
        {.name = "q_no_rows",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(EOF_AC)},
         .want = {[3] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1},
        {.name = "q_no_rows_dep",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x01"), PK(COLDEF), PK(OKEOF_AC)},
         .want = {[2] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1},
        /* MySQL with SESSION_TRACK: the terminating 0xFE OK carries session
         * state, so it is longer than an EOF could be: still the terminator. */
        {.name = "q_long_ok_terminator_dep",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP | PROTO_CLIENT_SESSION_TRACK,
         .pk = {PK("\x01"), PK(COLDEF), PK(ROW_1),
                PK("\xfe\x00\x00\x02\x40\x00\x00"
                   "\x00"
                   "\x07\x01\x05\x04"
                   "test")},
         .want = {[3] = DONE},
         .status = 0x4002,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 1},
        {.name = "q_knn_vector_dep",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x02"), PK(VECDEF), PK(DISTDEF),
                PK("\x07"
                   "[1,2,3]"
                   "\x14"
                   "0.025368153802923787"),
                PK("\xfb\xfb"), PK(OKEOF_WARN)},
         .want = {[5] = DONE},
         .status = 3,
         .status_seen = true,
         .warnings = 1,
         .results = 1,
         .result_sets = 1,
         .rows = 2},
        {.name = "q_knn_vector",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x02"), PK(VECDEF), PK(DISTDEF), PK(EOF_AC),
                PK("\x07"
                   "[1,2,3]"
                   "\x14"
                   "0.025368153802923787"),
                PK(EOF_AC)},
         .want = {[5] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 1},
        {.name = "q_multi_two_selects",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1), PK(EOF_MORE), PK("\x01"), PK(COLDEF),
                PK(EOF_AC), PK(ROW_1), PK(EOF_AC)},
         .want = {[9] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 2,
         .result_sets = 2,
         .rows = 2},
        {.name = "q_multi_select_insert_dep",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x01"), PK(COLDEF), PK(ROW_1), PK(OKEOF_MORE), PK(OK_INSERT)},
         .want = {[4] = DONE},
         .status = 3,
         .status_seen = true,
         .results = 2,
         .result_sets = 1,
         .rows = 1,
         .affected = 1,
         .insert_id = 7},
        {.name = "q_multi_ok_then_select",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(OK_MORE), PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1), PK(EOF_AC)},
         .want = {[5] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 2,
         .result_sets = 1,
         .rows = 1},
        {.name = "q_multi_err_second",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(OK_MORE), PK(ERR_1146)},
         .want = {[1] = DONE},
         .status = 2,
         .status_seen = true,
         .err = 1146,
         .results = 1,
         .before_err = 1},
        {.name = "q_multi_select_then_err_third",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1), PK(EOF_MORE), PK(OK_MORE),
                PK(ERR_1146)},
         .want = {[6] = DONE},
         .status = 2,
         .status_seen = true,
         .err = 1146,
         .results = 2,
         .result_sets = 1,
         .before_err = 2,
         .rows = 1},
        {.name = "q_err_mid_rows",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1), PK(ROW_1), PK(ERR_1317)},
         .want = {[5] = DONE},
         .status = 2,
         .status_seen = true,
         .err = 1317,
         .results = 1,
         .result_sets = 1,
         .rows = 2},
        {.name = "q_err_mid_rows_dep",
         .before_err = 0,
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x01"), PK(COLDEF), PK(ROW_1), PK(ERR_1317)},
         .want = {[3] = DONE},
         .status = 2,
         .err = 1317,
         .results = 1,
         .result_sets = 1,
         .rows = 1},
        {.name = "q_local_infile",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(INFILE_REQ), PK(OK_LOAD)},
         .want = {INFILE, DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .affected = 3},
        {.name = "q_local_infile_err_dep",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK(INFILE_REQ), PK(ERR_1146)},
         .want = {INFILE, DONE},
         .status = 2,
         .err = 1146},
        {.name = "q_local_infile_then_select",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(INFILE_REQ), PK(OK_MORE), PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1),
                PK(EOF_AC)},
         .want = {INFILE, [6] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 2,
         .result_sets = 1,
         .rows = 1},
        {.name = "q_select_then_infile_dep",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x01"), PK(COLDEF), PK(OKEOF_MORE), PK(INFILE_REQ), PK(OK_LOAD)},
         .want = {[3] = INFILE, [4] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 2,
         .result_sets = 1,
         .affected = 3},
        /* impossible packets */
        {.name = "q_bad_fe_first",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(EOF_AC)},
         .want = {BAD}},
        {.name = "q_bad_count_trailing",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01\x00")},
         .want = {BAD}},
        {.name = "q_bad_eof_before_defs",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x02"), PK(COLDEF), PK(EOF_AC)},
         .want = {[2] = BAD}},
        {.name = "q_bad_missing_col_eof",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01"), PK(COLDEF), PK(ROW_1)},
         .want = {[2] = BAD}},
        {.name = "q_bad_empty_packet",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("")},
         .want = {BAD}},
        {.name = "q_bad_empty_row",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x01"), PK(COLDEF), PK("")},
         .want = {[2] = BAD}},
        {.name = "q_bad_ok_truncated",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x00\x00")},
         .want = {BAD}},
        {.name = "q_bad_err_truncated",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\xff\x01")},
         .want = {BAD}},
        {.name = "q_bad_after_done",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK(OK_AC), PK(OK_AC)},
         .want = {DONE, BAD}},
        {.name = "q_bad_eof_dep_short_ok",
         .cmd = PROTO_COM_QUERY,
         .caps = CDEP,
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC)},
         .want = {[2] = BAD}},
        {.name = "q_bad_col_eof_is_ok",
         .cmd = PROTO_COM_QUERY,
         .caps = C41,
         .pk = {PK("\x01"), PK(COLDEF), PK(OK_AC)},
         .want = {[2] = BAD}},

        /* ---- COM_STMT_PREPARE ---- */
        {.name = "prep_err",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = C41,
         .pk = {PK(ERR_1146)},
         .want = {DONE},
         .status = 2,
         .err = 1146},
        {.name = "prep_full",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = C41,
         .pk = {PK(PREP_1_2_1), PK(PARAMDEF), PK(EOF_AC), PK(COLDEF), PK(DISTDEF), PK(EOF_AC)},
         .want = {[5] = DONE},
         .status = 2,
         .status_seen = true,
         .stmt_id = 1,
         .ncols = 2,
         .nparams = 1},
        {.name = "prep_full_dep",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = CDEP,
         .pk = {PK(PREP_1_2_1), PK(PARAMDEF), PK(COLDEF), PK(DISTDEF)},
         .want = {[3] = DONE},
         .status = 2,
         .stmt_id = 1,
         .ncols = 2,
         .nparams = 1},
        {.name = "prep_no_params",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = C41,
         .pk = {PK("\x00\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"), PK(COLDEF), PK(EOF_AC)},
         .want = {[2] = DONE},
         .status = 2,
         .status_seen = true,
         .stmt_id = 2,
         .ncols = 1},
        {.name = "prep_no_columns",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = C41,
         .pk = {PK("\x00\x03\x00\x00\x00\x00\x00\x02\x00\x00\x01\x00"), PK(PARAMDEF), PK(PARAMDEF),
                PK("\xfe\x01\x00\x02\x00")},
         .want = {[3] = DONE},
         .status = 2,
         .status_seen = true,
         .warnings = 1,
         .stmt_id = 3,
         .nparams = 2},
        {.name = "prep_nothing_dep",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = CDEP,
         .pk = {PK("\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00")},
         .want = {DONE},
         .status = 2,
         .warnings = 2,
         .stmt_id = 4},
        {.name = "prep_metadata_follows_byte",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = CDEP,
         .pk = {PK("\x00\x05\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01"), PK(COLDEF)},
         .want = {[1] = DONE},
         .status = 2,
         .stmt_id = 5,
         .ncols = 1},
        {.name = "prep_bad_short_ok",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = C41,
         .pk = {PK("\x00\x01\x00\x00\x00\x02")},
         .want = {BAD}},
        {.name = "prep_bad_result_set",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = C41,
         .pk = {PK("\x01")},
         .want = {BAD}},
        {.name = "prep_bad_missing_param_eof",
         .cmd = PROTO_COM_STMT_PREPARE,
         .caps = C41,
         .pk = {PK("\x00\x03\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00"), PK(PARAMDEF), PK(PARAMDEF)},
         .want = {[2] = BAD}},

        /* ---- COM_STMT_EXECUTE ---- */
        {.name = "exec_ok",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK(OK_INSERT)},
         .want = {DONE},
         .status = 3,
         .status_seen = true,
         .results = 1,
         .affected = 1,
         .insert_id = 7},
        {.name = "exec_err",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = CDEP,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK(ERR_1146)},
         .want = {DONE},
         .status = 2,
         .err = 1146},
        {.name = "exec_rows",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(BROW), PK(BROW_NULL), PK(EOF_AC)},
         .want = {[5] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 2},
        {.name = "exec_rows_dep",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = CDEP,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK("\x01"), PK(COLDEF), PK(BROW), PK(BROW), PK(OKEOF_AC)},
         .want = {[4] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 2},
        /* TiDB writeExecuteResultWithCursor: columns, then writeEOF with
         * CURSOR_EXISTS (an EOF, or an 0xFE OK under DEPRECATE_EOF), no rows. */
        {.name = "exec_cursor_tidb",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_CURSOR),
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_CURSOR)},
         .want = {[2] = DONE},
         .status = 0x42,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .cursor = true},
        {.name = "exec_cursor_tidb_dep",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = CDEP,
         .cmdp = PK(EXEC_CURSOR),
         .pk = {PK("\x01"), PK(COLDEF), PK(OKEOF_CURSOR)},
         .want = {[2] = DONE},
         .status = 0x42,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .cursor = true},
        /* A server may decline the cursor and send the rows. */
        {.name = "exec_cursor_declined",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_CURSOR),
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(BROW), PK(EOF_AC)},
         .want = {[4] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 1},
        /* MariaDB can flag a stored procedure's cursor the client never asked
         * for (mariadb-connector-c d09ac51): rows still follow. */
        {.name = "exec_cursor_flag_unrequested",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_CURSOR), PK(BROW), PK(EOF_AC)},
         .want = {[4] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1,
         .result_sets = 1,
         .rows = 1},
        /* TiDB: a cursor asked for a statement without rows gets a plain OK. */
        {.name = "exec_cursor_no_result_set",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_CURSOR),
         .pk = {PK(OK_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "exec_call_multi_dep",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = CDEP,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK("\x01"), PK(COLDEF), PK(BROW), PK(OKEOF_MORE), PK(OK_AC)},
         .want = {[4] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 2,
         .result_sets = 1,
         .rows = 1},
        {.name = "exec_err_mid_rows",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(BROW), PK(ERR_1317)},
         .want = {[4] = DONE},
         .status = 2,
         .status_seen = true,
         .err = 1317,
         .results = 1,
         .result_sets = 1,
         .rows = 1},
        {.name = "exec_bad_text_row",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1)},
         .want = {[3] = BAD}},
        {.name = "exec_bad_infile",
         .cmd = PROTO_COM_STMT_EXECUTE,
         .caps = C41,
         .cmdp = PK(EXEC_PLAIN),
         .pk = {PK(INFILE_REQ)},
         .want = {BAD}},

        /* ---- COM_STMT_FETCH (TiDB writeChunksWithFetchSize) ---- */
        {.name = "fetch_more_left",
         .cmd = PROTO_COM_STMT_FETCH,
         .caps = C41,
         .cmdp = PK("\x1c\x01\x00\x00\x00\x02\x00\x00\x00"),
         .pk = {PK(BROW), PK(BROW), PK(EOF_CURSOR)},
         .want = {[2] = DONE},
         .status = 0x42,
         .status_seen = true,
         .rows = 2,
         .cursor = true},
        {.name = "fetch_last",
         .cmd = PROTO_COM_STMT_FETCH,
         .caps = C41,
         .pk = {PK(BROW_NULL), PK(EOF_LAST)},
         .want = {[1] = DONE},
         .status = 0x82,
         .status_seen = true,
         .rows = 1},
        {.name = "fetch_more_left_dep",
         .cmd = PROTO_COM_STMT_FETCH,
         .caps = CDEP,
         .pk = {PK(BROW), PK(OKEOF_CURSOR)},
         .want = {[1] = DONE},
         .status = 0x42,
         .status_seen = true,
         .rows = 1,
         .cursor = true},
        {.name = "fetch_nothing_left_dep",
         .cmd = PROTO_COM_STMT_FETCH,
         .caps = CDEP,
         .pk = {PK(OKEOF_LAST)},
         .want = {DONE},
         .status = 0x82,
         .status_seen = true},
        {.name = "fetch_err",
         .cmd = PROTO_COM_STMT_FETCH,
         .caps = C41,
         .pk = {PK(ERR_1326)},
         .want = {DONE},
         .status = 2,
         .err = 1326},
        {.name = "fetch_bad_text_row",
         .cmd = PROTO_COM_STMT_FETCH,
         .caps = C41,
         .pk = {PK("\x05")},
         .want = {BAD}},

        /* ---- COM_FIELD_LIST ---- */
        {.name = "field_list",
         .cmd = PROTO_COM_FIELD_LIST,
         .caps = C41,
         .pk = {PK(COLDEF), PK(VECDEF), PK(EOF_AC)},
         .want = {[2] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "field_list_dep",
         .cmd = PROTO_COM_FIELD_LIST,
         .caps = CDEP,
         .pk = {PK(COLDEF), PK(OKEOF_AC)},
         .want = {[1] = DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "field_list_err",
         .cmd = PROTO_COM_FIELD_LIST,
         .caps = C41,
         .pk = {PK(ERR_1146)},
         .want = {DONE},
         .status = 2,
         .err = 1146},
        {.name = "field_list_bad_long_fe",
         .cmd = PROTO_COM_FIELD_LIST,
         .caps = C41,
         .pk = {PK(COLDEF), PK("\xfe\x00\x00\x02\x00\x00\x00\x00\x00\x00")},
         .want = {[1] = BAD}},

        /* ---- COM_STATISTICS: one packet of text ---- */
        {.name = "statistics",
         .cmd = PROTO_COM_STATISTICS,
         .caps = C41,
         .pk = {PK(STATS)},
         .want = {DONE},
         .status = 2},
        {.name = "statistics_any_first_byte",
         .cmd = PROTO_COM_STATISTICS,
         .caps = CDEP,
         .pk = {PK("\xfe"
                   "odd")},
         .want = {DONE},
         .status = 2},
        {.name = "statistics_bad_second",
         .cmd = PROTO_COM_STATISTICS,
         .caps = C41,
         .pk = {PK(STATS), PK(STATS)},
         .want = {DONE, BAD}},

        /* ---- one OK / EOF / ERR ---- */
        {.name = "ping",
         .cmd = PROTO_COM_PING,
         .caps = C41,
         .pk = {PK(OK_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "ping_shutdown",
         .cmd = PROTO_COM_PING,
         .caps = C41,
         .pk = {PK(ERR_1053)},
         .want = {DONE},
         .status = 2,
         .err = 1053},
        {.name = "init_db",
         .cmd = PROTO_COM_INIT_DB,
         .caps = CDEP,
         .pk = {PK(OK_INSERT)},
         .want = {DONE},
         .status = 3,
         .status_seen = true,
         .results = 1,
         .affected = 1,
         .insert_id = 7},
        {.name = "init_db_err",
         .cmd = PROTO_COM_INIT_DB,
         .caps = C41,
         .pk = {PK(ERR_1049)},
         .want = {DONE},
         .status = 2,
         .err = 1049},
        {.name = "reset_connection",
         .cmd = PROTO_COM_RESET_CONNECTION,
         .caps = CDEP,
         .pk = {PK(OK_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "stmt_reset",
         .cmd = PROTO_COM_STMT_RESET,
         .caps = C41,
         .pk = {PK(OK_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        /* TiDB handleSetOption answers with writeEOF */
        {.name = "set_option_eof",
         .cmd = PROTO_COM_SET_OPTION,
         .caps = C41,
         .cmdp = PK("\x1b\x00\x00"),
         .pk = {PK(EOF_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "set_option_eof_dep",
         .cmd = PROTO_COM_SET_OPTION,
         .caps = CDEP,
         .pk = {PK(OKEOF_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "refresh",
         .cmd = PROTO_COM_REFRESH,
         .caps = C41,
         .pk = {PK(OK_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "process_kill",
         .cmd = PROTO_COM_PROCESS_KILL,
         .caps = C41,
         .pk = {PK(OK_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "debug",
         .cmd = PROTO_COM_DEBUG,
         .caps = C41,
         .pk = {PK(EOF_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "unknown_command",
         .cmd = 0x20,
         .caps = C41,
         .pk = {PK(ERR_UNKNOWN)},
         .want = {DONE},
         .status = 2,
         .err = 1105},
        {.name = "change_user_ok",
         .cmd = PROTO_COM_CHANGE_USER,
         .caps = C41,
         .pk = {PK(OK_AC)},
         .want = {DONE},
         .status = 2,
         .status_seen = true,
         .results = 1},
        {.name = "change_user_bad_auth_switch",
         .cmd = PROTO_COM_CHANGE_USER,
         .caps = CDEP,
         .pk = {PK("\xfe"
                   "mysql_native_password\x00"
                   "gA4#r8&Kd1!pQz7^mX2$\x00")},
         .want = {BAD}},
        {.name = "ping_bad_data",
         .cmd = PROTO_COM_PING,
         .caps = C41,
         .pk = {PK("\x01\x31")},
         .want = {BAD}},
        {.name = "ping_bad_two",
         .cmd = PROTO_COM_PING,
         .caps = CDEP,
         .pk = {PK(OK_AC), PK(OK_AC)},
         .want = {DONE, BAD}},

        /* ---- no reply ---- */
        {.name = "stmt_close_bad_any",
         .cmd = PROTO_COM_STMT_CLOSE,
         .caps = C41,
         .pk = {PK(OK_AC)},
         .want = {BAD}},
};

static size_t npk(const struct rcase *c)
{
	size_t n = 0;
	while (n < N(c->pk) && c->pk[n].b)
		n++;
	return n;
}

static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	cr_assert(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

static int feed_copy(struct proto_resp *r, const struct pk *pk, size_t n)
{
	uint8_t *p = dup_exact(pk->b, n);
	int rc = proto_resp_feed(r, p, n);
	free(p);
	return rc;
}

static void start(struct proto_resp *r, const struct rcase *c)
{
	proto_resp_init(r, PROTO_STATUS_AUTOCOMMIT);
	uint8_t *cp = c->cmdp.b ? dup_exact(c->cmdp.b, c->cmdp.n) : NULL;
	proto_resp_start(r, c->cmd, c->caps, cp, c->cmdp.n);
	free(cp);
}

Test(proto_resp, sequences)
{
	for (size_t i = 0; i < N(cases); i++) {
		const struct rcase *c = &cases[i];
		size_t n = npk(c);
		cr_assert_gt(n, 0, "%s", c->name);
		struct proto_resp r;
		start(&r, c);
		int rc = 0;
		for (size_t j = 0; j < n; j++) {
			rc = feed_copy(&r, &c->pk[j], c->pk[j].n);
			cr_assert_eq(rc, c->want[j], "%s: packet %zu gave %d, want %d", c->name, j,
			             rc, c->want[j]);
			if (rc == INFILE) {
				/* a server packet now is out of turn */
				struct proto_resp early = r;
				cr_assert_eq(feed_copy(&early, &c->pk[0], c->pk[0].n), BAD);
				cr_assert_eq(proto_resp_infile_done(&r), 0);
			}
			if (rc < 0)
				cr_assert_eq(j, n - 1, "%s: packets after an error", c->name);
		}
		if (rc < 0) {
			/* sticky */
			cr_assert_eq(feed_copy(&r, &c->pk[0], c->pk[0].n), BAD, "%s", c->name);
			continue;
		}
		cr_assert_eq(rc, DONE, "%s: did not finish", c->name);
		cr_assert_eq(r.status, c->status, "%s: status %#x", c->name, r.status);
		cr_assert_eq(r.status_seen, c->status_seen, "%s: status_seen", c->name);
		cr_assert_eq(r.warnings, c->warnings, "%s: warnings", c->name);
		cr_assert_eq(r.is_err, c->err != 0, "%s: is_err", c->name);
		cr_assert_eq(r.err_code, c->err, "%s: err_code %u", c->name, r.err_code);
		cr_assert_eq(r.results, c->results, "%s: results %u", c->name, r.results);
		cr_assert_eq(r.result_sets, c->result_sets, "%s: result_sets %u", c->name,
		             r.result_sets);
		if (c->err)
			cr_assert_eq(r.results_before_err, c->before_err,
			             "%s: results_before_err %u", c->name, r.results_before_err);
		cr_assert_eq(r.rows, c->rows, "%s: rows %lu", c->name, (unsigned long)r.rows);
		cr_assert_eq(r.affected_rows, c->affected, "%s: affected", c->name);
		cr_assert_eq(r.last_insert_id, c->insert_id, "%s: insert id", c->name);
		cr_assert_eq(r.cursor_open, c->cursor, "%s: cursor", c->name);
		cr_assert_eq(r.stmt_id, c->stmt_id, "%s: stmt id", c->name);
		cr_assert_eq(r.num_columns, c->ncols, "%s: columns", c->name);
		cr_assert_eq(r.num_params, c->nparams, "%s: params", c->name);
		/* nothing may follow a complete response */
		cr_assert_eq(feed_copy(&r, &c->pk[0], c->pk[0].n), BAD, "%s", c->name);
	}
}

/* Every prefix of every packet, fed where the whole packet would go: the
 * tracker answers something (usually -EPROTO) and never reads past the end. */
Test(proto_resp, truncated_packets)
{
	for (size_t i = 0; i < N(cases); i++) {
		const struct rcase *c = &cases[i];
		size_t n = npk(c);
		for (size_t j = 0; j < n; j++) {
			if (c->want[j] < 0)
				break;
			for (size_t k = 0; k < c->pk[j].n; k++) {
				struct proto_resp r;
				start(&r, c);
				for (size_t m = 0; m < j; m++) {
					int rc = feed_copy(&r, &c->pk[m], c->pk[m].n);
					if (rc == INFILE)
						cr_assert_eq(proto_resp_infile_done(&r), 0);
				}
				int rc = feed_copy(&r, &c->pk[j], k);
				cr_assert(rc == BAD || rc == PROTO_RESP_MORE || rc == DONE ||
				                  rc == INFILE,
				          "%s: packet %zu prefix %zu gave %d", c->name, j, k, rc);
			}
		}
	}
}

/* A text row whose first cell is 2^24 bytes starts with 0xFE: it is a row,
 * not a terminator, with and without DEPRECATE_EOF. */
Test(proto_resp, row_starting_with_fe, .timeout = 30)
{
	size_t cell = (size_t)1 << 24;
	size_t n = 9 + cell;
	uint8_t *row = malloc(n);
	cr_assert(row);
	row[0] = 0xfe;
	for (int i = 0; i < 8; i++)
		row[1 + i] = (uint8_t)(cell >> (8 * i));
	memset(row + 9, 'x', cell);

	for (int dep = 0; dep < 2; dep++) {
		struct proto_resp r;
		uint32_t caps = dep ? CDEP : C41;
		proto_resp_init(&r, 2);
		proto_resp_start(&r, PROTO_COM_QUERY, caps, NULL, 0);
		cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)"\x01", 1), PROTO_RESP_MORE);
		cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)COLDEF, sizeof(COLDEF) - 1),
		             PROTO_RESP_MORE);
		if (!dep)
			cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)EOF_AC, 5),
			             PROTO_RESP_MORE);
		cr_assert_eq(proto_resp_feed(&r, row, n), PROTO_RESP_MORE, "dep %d", dep);
		/* The session may feed only the first physical packet of the
		 * chain (0xFFFFFF bytes): the same answer. */
		cr_assert_eq(proto_resp_feed(&r, row, 0xFFFFFF), PROTO_RESP_MORE, "dep %d", dep);
		if (dep)
			cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)OKEOF_AC, 7), DONE);
		else
			cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)EOF_AC, 5), DONE);
		cr_assert_eq(r.rows, 2);
	}
	/* In a binary result set the same packet is impossible. */
	struct proto_resp r;
	proto_resp_init(&r, 2);
	proto_resp_start(&r, PROTO_COM_STMT_EXECUTE, CDEP, (const uint8_t *)EXEC_PLAIN,
	                 sizeof(EXEC_PLAIN) - 1);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)"\x01", 1), PROTO_RESP_MORE);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)COLDEF, sizeof(COLDEF) - 1),
	             PROTO_RESP_MORE);
	cr_assert_eq(proto_resp_feed(&r, row, n), BAD);
	free(row);
}

/* 251 columns: the count is a 3-byte lenenc (0xFC 0xFB 0x00). */
Test(proto_resp, many_columns)
{
	for (int dep = 0; dep < 2; dep++) {
		struct proto_resp r;
		proto_resp_init(&r, 2);
		proto_resp_start(&r, PROTO_COM_QUERY, dep ? CDEP : C41, NULL, 0);
		cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)"\xfc\xfb\x00", 3), 0);
		for (int i = 0; i < 251; i++)
			cr_assert_eq(
			        proto_resp_feed(&r, (const uint8_t *)COLDEF, sizeof(COLDEF) - 1),
			        0);
		if (!dep)
			cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)EOF_AC, 5), 0);
		cr_assert_eq(r.state, PROTO_RESP_ST_ROWS);
	}
}

/* The status carries over responses that have none of their own. */
Test(proto_resp, status_carries_over)
{
	struct proto_resp r;
	proto_resp_init(&r, PROTO_STATUS_AUTOCOMMIT);
	/* PyMySQL's SET AUTOCOMMIT = 0, then an INSERT opens a transaction. */
	proto_resp_start(&r, PROTO_COM_QUERY, CDEP, NULL, 0);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)"\x00\x00\x00\x00\x00\x00\x00", 7), DONE);
	cr_assert_eq(r.status, 0);
	proto_resp_start(&r, PROTO_COM_QUERY, CDEP, NULL, 0);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)"\x00\x01\x00\x01\x00\x00\x00", 7), DONE);
	cr_assert_eq(r.status, PROTO_STATUS_IN_TRANS);
	/* An error and a prepare under DEPRECATE_EOF leave it as it was. */
	proto_resp_start(&r, PROTO_COM_QUERY, CDEP, NULL, 0);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)ERR_1146, sizeof(ERR_1146) - 1), DONE);
	cr_assert_eq(r.status, PROTO_STATUS_IN_TRANS);
	cr_assert(!r.status_seen);
	static const char prep_ok[] = "\x00\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
	proto_resp_start(&r, PROTO_COM_STMT_PREPARE, CDEP, NULL, 0);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)prep_ok, 12), DONE);
	cr_assert_eq(r.status, PROTO_STATUS_IN_TRANS);
	cr_assert_eq(r.stmt_id, 9);
	cr_assert(!r.is_err);
}

Test(proto_resp, infile_done_out_of_turn)
{
	struct proto_resp r;
	proto_resp_init(&r, 2);
	proto_resp_start(&r, PROTO_COM_QUERY, C41, NULL, 0);
	cr_assert_eq(proto_resp_infile_done(&r), BAD);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)OK_AC, 7), BAD, "broken stays broken");
	proto_resp_init(&r, 2);
	cr_assert_eq(proto_resp_feed(&r, (const uint8_t *)OK_AC, 7), BAD, "nothing started");
}

Test(proto_resp, expects_reply)
{
	for (int c = 0; c < 256; c++) {
		bool none = c == PROTO_COM_QUIT || c == PROTO_COM_STMT_CLOSE ||
		            c == PROTO_COM_STMT_SEND_LONG_DATA;
		cr_assert_eq(proto_resp_expects_reply((uint8_t)c), !none, "command %#x", c);
	}
}

Test(proto_resp, command_names)
{
	static const struct {
		uint8_t cmd;
		const char *name;
	} names[] = {
	        {PROTO_COM_SLEEP, "sleep"},
	        {PROTO_COM_QUIT, "quit"},
	        {PROTO_COM_QUERY, "query"},
	        {PROTO_COM_FIELD_LIST, "field_list"},
	        {PROTO_COM_STATISTICS, "statistics"},
	        {PROTO_COM_PING, "ping"},
	        {PROTO_COM_CHANGE_USER, "change_user"},
	        {PROTO_COM_STMT_PREPARE, "stmt_prepare"},
	        {PROTO_COM_STMT_EXECUTE, "stmt_execute"},
	        {PROTO_COM_STMT_SEND_LONG_DATA, "stmt_send_long_data"},
	        {PROTO_COM_STMT_CLOSE, "stmt_close"},
	        {PROTO_COM_STMT_FETCH, "stmt_fetch"},
	        {PROTO_COM_RESET_CONNECTION, "reset_connection"},
	        {0x20, "unknown"},
	        {0xfe, "unknown"},
	        {0xff, "unknown"},
	};
	for (size_t i = 0; i < N(names); i++)
		cr_assert_str_eq(proto_command_name(names[i].cmd), names[i].name);
	for (int c = 0; c <= PROTO_COM_RESET_CONNECTION; c++)
		cr_assert_str_neq(proto_command_name((uint8_t)c), "unknown", "command %#x", c);
}

/* The role of each packet, as capture reads result sets through it. */
Test(proto_resp, packet_roles)
{
	static const struct {
		const char *name;
		uint32_t caps;
		struct pk pk[12];
		enum proto_pkt_role role[12];
	} seqs[] = {
	        {"two_selects",
	         C41,
	         {PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1), PK(EOF_MORE), PK("\x01"),
	          PK(COLDEF), PK(EOF_AC), PK(EOF_AC)},
	         {PROTO_ROLE_COLUMN_COUNT, PROTO_ROLE_COLUMN_DEF, PROTO_ROLE_COLUMNS_END,
	          PROTO_ROLE_ROW, PROTO_ROLE_RESULT_END, PROTO_ROLE_COLUMN_COUNT,
	          PROTO_ROLE_COLUMN_DEF, PROTO_ROLE_COLUMNS_END, PROTO_ROLE_RESULT_END}},
	        {"deprecate_eof_then_ok",
	         CDEP,
	         {PK("\x01"), PK(COLDEF), PK(ROW_1), PK(OKEOF_MORE), PK(OK_INSERT)},
	         {PROTO_ROLE_COLUMN_COUNT, PROTO_ROLE_COLUMN_DEF, PROTO_ROLE_ROW,
	          PROTO_ROLE_RESULT_END, PROTO_ROLE_OK}},
	        {"ok_then_err_mid_rows",
	         C41,
	         {PK(OK_MORE), PK("\x01"), PK(COLDEF), PK(EOF_AC), PK(ROW_1), PK(ERR_1317)},
	         {PROTO_ROLE_OK, PROTO_ROLE_COLUMN_COUNT, PROTO_ROLE_COLUMN_DEF,
	          PROTO_ROLE_COLUMNS_END, PROTO_ROLE_ROW, PROTO_ROLE_ERR}},
	        {"err_first", C41, {PK(ERR_1146)}, {PROTO_ROLE_ERR}},
	        {"impossible", C41, {PK(EOF_AC)}, {PROTO_ROLE_NONE}},
	};
	for (size_t i = 0; i < N(seqs); i++) {
		struct proto_resp r;
		proto_resp_init(&r, PROTO_STATUS_AUTOCOMMIT);
		cr_assert_eq(r.role, PROTO_ROLE_NONE);
		proto_resp_start(&r, PROTO_COM_QUERY, seqs[i].caps, NULL, 0);
		for (size_t j = 0; j < N(seqs[i].pk) && seqs[i].pk[j].b; j++) {
			int rc = feed_copy(&r, &seqs[i].pk[j], seqs[i].pk[j].n);
			(void)rc;
			cr_assert_eq(r.role, seqs[i].role[j], "%s: packet %zu has role %d, want %d",
			             seqs[i].name, j, r.role, seqs[i].role[j]);
		}
	}
}
