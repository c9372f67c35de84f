/* Response tracker: where a command's response ends, and the status it left.
 *
 * Row phase rules: a text row never starts with 0xFF (no lenenc does), a
 * binary row always starts with 0x00, so 0xFF there is an ERR (which can end
 * a result set mid-stream). A row starts with 0xFE only when its first cell is
 * 2^24 bytes or more, so a 0xFE packet is a terminator only while short: < 9
 * bytes for EOF, < 0xFFFFFF for the OK that replaces it under DEPRECATE_EOF. */
#include "proto/resp.h"

#include <errno.h>
#include <string.h>

#include "proto/mysql.h"
#include "proto/packets.h"

#define PREPARE_OK_LEN 12 /* 0x00, id u32, columns u16, params u16, filler, warnings u16 */

void proto_resp_init(struct proto_resp *r, uint16_t status)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
}

bool proto_resp_expects_reply(uint8_t command)
{
	return command != PROTO_COM_QUIT && command != PROTO_COM_STMT_CLOSE &&
	       command != PROTO_COM_STMT_SEND_LONG_DATA;
}

void proto_resp_start(struct proto_resp *r, uint8_t command, uint32_t caps,
                      const uint8_t *cmd_payload, size_t cmd_len)
{
	uint16_t status = r->status;
	memset(r, 0, sizeof(*r));
	r->status = status;
	r->command = command;
	r->caps = caps;
	switch (command) {
	case PROTO_COM_QUERY:
	case PROTO_COM_PROCESS_INFO:
		r->state = PROTO_RESP_ST_FIRST;
		break;
	case PROTO_COM_STMT_EXECUTE:
		r->state = PROTO_RESP_ST_FIRST;
		r->binary = true;
		/* payload: command, statement id u32, flags */
		r->cursor_requested = cmd_payload && cmd_len > 5 &&
		                      (cmd_payload[5] &
		                       (PROTO_CURSOR_TYPE_READ_ONLY | PROTO_CURSOR_TYPE_FOR_UPDATE |
		                        PROTO_CURSOR_TYPE_SCROLLABLE));
		break;
	case PROTO_COM_STMT_FETCH:
		r->state = PROTO_RESP_ST_ROWS;
		r->binary = true;
		break;
	case PROTO_COM_STMT_PREPARE:
		r->state = PROTO_RESP_ST_PREPARE;
		break;
	case PROTO_COM_FIELD_LIST:
		r->state = PROTO_RESP_ST_FIELD_LIST;
		break;
	case PROTO_COM_STATISTICS:
		r->state = PROTO_RESP_ST_STATISTICS;
		break;
	case PROTO_COM_QUIT:
	case PROTO_COM_STMT_CLOSE:
	case PROTO_COM_STMT_SEND_LONG_DATA:
		r->state = PROTO_RESP_ST_DONE;
		break;
	default:
		r->state = PROTO_RESP_ST_SIMPLE;
		break;
	}
}

static int fail(struct proto_resp *r)
{
	r->state = PROTO_RESP_ST_BROKEN;
	return -EPROTO;
}

static int done(struct proto_resp *r)
{
	r->state = PROTO_RESP_ST_DONE;
	return PROTO_RESP_DONE;
}

static int on_err(struct proto_resp *r, const uint8_t *p, size_t n)
{
	struct proto_err e;
	if (proto_parse_err(p, n, r->caps, &e) < 0)
		return fail(r);
	r->is_err = true;
	r->err_code = e.code;
	/* An ERR inside a result set ends that result, which then failed. */
	bool in_set = r->state == PROTO_RESP_ST_COLUMNS || r->state == PROTO_RESP_ST_COLUMNS_EOF ||
	              r->state == PROTO_RESP_ST_ROWS;
	r->results_before_err = r->results - (in_set && r->results ? 1u : 0u);
	r->cursor_open = false;
	/* An ERR ends every response: no further result follows. */
	r->status &= (uint16_t)~PROTO_STATUS_MORE_RESULTS_EXISTS;
	return done(r);
}

static void set_status(struct proto_resp *r, uint16_t status, uint16_t warnings)
{
	r->status = status;
	r->warnings = warnings;
	r->status_seen = true;
}

/* Reads an OK (0x00 or 0xFE) or EOF packet into the results. */
static int read_end(struct proto_resp *r, const uint8_t *p, size_t n, enum proto_kind kind)
{
	if (kind == PROTO_KIND_EOF) {
		struct proto_eof e;
		if (proto_parse_eof(p, n, r->caps, &e) < 0)
			return -EPROTO;
		set_status(r, e.status, e.warnings);
		r->affected_rows = r->last_insert_id = 0;
		return 0;
	}
	struct proto_ok ok;
	if (proto_parse_ok(p, n, r->caps, &ok) < 0)
		return -EPROTO;
	set_status(r, ok.status, ok.warnings);
	r->affected_rows = ok.affected_rows;
	r->last_insert_id = ok.last_insert_id;
	return 0;
}

/* A result (OK, or a result set's terminator) has ended: another follows
 * when the status says so, for the commands that can have several. */
static int end_result(struct proto_resp *r)
{
	if (r->command == PROTO_COM_STMT_EXECUTE)
		r->cursor_open = r->cursor_requested && (r->status & PROTO_STATUS_CURSOR_EXISTS);
	else if (r->command == PROTO_COM_STMT_FETCH)
		r->cursor_open = r->status & PROTO_STATUS_CURSOR_EXISTS;
	if ((r->status & PROTO_STATUS_MORE_RESULTS_EXISTS) &&
	    (r->command == PROTO_COM_QUERY || r->command == PROTO_COM_STMT_EXECUTE)) {
		r->state = PROTO_RESP_ST_FIRST;
		return PROTO_RESP_MORE;
	}
	return done(r);
}

static bool is_end(enum proto_kind k)
{
	return k == PROTO_KIND_EOF || k == PROTO_KIND_EOF_OK;
}

static int first(struct proto_resp *r, const uint8_t *p, size_t n)
{
	switch (p[0]) {
	case PROTO_OK:
		if (read_end(r, p, n, PROTO_KIND_OK) < 0)
			return fail(r);
		r->results++;
		return end_result(r);
	case PROTO_ERR:
		return on_err(r, p, n);
	case PROTO_LOCAL_INFILE:
		if (r->command != PROTO_COM_QUERY)
			return fail(r);
		r->state = PROTO_RESP_ST_INFILE;
		return PROTO_RESP_INFILE;
	case PROTO_EOF:
		return fail(r);
	}
	/* A column count: one lenenc integer and nothing else. */
	struct rd d = rd_make(p, n);
	uint64_t count;
	if (!rd_lenenc(&d, &count, NULL) || rd_left(&d) != 0 || count == 0)
		return fail(r);
	r->cols_left = count;
	r->results++;
	r->result_sets++;
	r->state = PROTO_RESP_ST_COLUMNS;
	return PROTO_RESP_MORE;
}

/* After the parameter definitions (and their EOF) of a prepare. */
static int after_params(struct proto_resp *r)
{
	if (r->num_columns == 0)
		return done(r);
	r->cols_left = r->num_columns;
	r->state = PROTO_RESP_ST_PREP_COLUMNS;
	return PROTO_RESP_MORE;
}

/* One definition in COLUMNS, PARAMS or PREP_COLUMNS. A definition starts
 * with the lenenc catalog "def" (0x03): 0xFF is an ERR, 0xFE impossible. */
static int definition(struct proto_resp *r, const uint8_t *p, size_t n)
{
	bool deprecate = r->caps & PROTO_CLIENT_DEPRECATE_EOF;
	if (p[0] == PROTO_ERR)
		return on_err(r, p, n);
	if (p[0] == PROTO_EOF)
		return fail(r);
	if (--r->cols_left > 0)
		return PROTO_RESP_MORE;
	switch (r->state) {
	case PROTO_RESP_ST_COLUMNS:
		r->state = deprecate ? PROTO_RESP_ST_ROWS : PROTO_RESP_ST_COLUMNS_EOF;
		return PROTO_RESP_MORE;
	case PROTO_RESP_ST_PARAMS:
		if (deprecate)
			return after_params(r);
		r->state = PROTO_RESP_ST_PARAMS_EOF;
		return PROTO_RESP_MORE;
	default:
		if (deprecate)
			return done(r);
		r->state = PROTO_RESP_ST_PREP_COLUMNS_EOF;
		return PROTO_RESP_MORE;
	}
}

static int prepare_ok(struct proto_resp *r, const uint8_t *p, size_t n)
{
	struct rd d = rd_make(p, n);
	uint8_t h, filler;
	/* A 13th byte (metadata follows, MySQL 8 with OPTIONAL_RESULTSET_METADATA)
	 * is allowed and ignored. */
	if (n < PREPARE_OK_LEN || !rd_u8(&d, &h) || !rd_u32(&d, &r->stmt_id) ||
	    !rd_u16(&d, &r->num_columns) || !rd_u16(&d, &r->num_params) || !rd_u8(&d, &filler) ||
	    !rd_u16(&d, &r->warnings))
		return fail(r);
	if (r->num_params == 0)
		return after_params(r);
	r->cols_left = r->num_params;
	r->state = PROTO_RESP_ST_PARAMS;
	return PROTO_RESP_MORE;
}

static int rows(struct proto_resp *r, const uint8_t *p, size_t n)
{
	enum proto_kind k = proto_classify(p, n, r->caps);
	if (k == PROTO_KIND_ERR)
		return on_err(r, p, n);
	if (is_end(k)) {
		if (read_end(r, p, n, k) < 0)
			return fail(r);
		return end_result(r);
	}
	if (r->binary && p[0] != 0x00)
		return fail(r);
	r->rows++;
	return PROTO_RESP_MORE;
}

/* The EOF after a result set's column definitions (no DEPRECATE_EOF). When a
 * cursor was asked for and opened, it is the last packet: the rows come with
 * COM_STMT_FETCH. (MariaDB may set CURSOR_EXISTS for a stored procedure's
 * cursor that the client never asked for: rows follow then.) */
static int columns_eof(struct proto_resp *r, const uint8_t *p, size_t n)
{
	enum proto_kind k = proto_classify(p, n, r->caps);
	if (k == PROTO_KIND_ERR)
		return on_err(r, p, n);
	if (k != PROTO_KIND_EOF || read_end(r, p, n, k) < 0)
		return fail(r);
	if (r->command == PROTO_COM_STMT_EXECUTE && r->cursor_requested &&
	    (r->status & PROTO_STATUS_CURSOR_EXISTS))
		return end_result(r);
	r->state = PROTO_RESP_ST_ROWS;
	return PROTO_RESP_MORE;
}

/* The EOF after a prepare's parameter or column definitions. */
static int prepare_eof(struct proto_resp *r, const uint8_t *p, size_t n)
{
	enum proto_kind k = proto_classify(p, n, r->caps);
	if (k == PROTO_KIND_ERR)
		return on_err(r, p, n);
	if (k != PROTO_KIND_EOF || read_end(r, p, n, k) < 0)
		return fail(r);
	if (r->state == PROTO_RESP_ST_PARAMS_EOF)
		return after_params(r);
	return done(r);
}

/* One OK, EOF or ERR; and the end of COM_FIELD_LIST's definitions. */
static int simple(struct proto_resp *r, const uint8_t *p, size_t n)
{
	enum proto_kind k = proto_classify(p, n, r->caps);
	if (k == PROTO_KIND_ERR)
		return on_err(r, p, n);
	if (k == PROTO_KIND_OK || (is_end(k) && r->command != PROTO_COM_CHANGE_USER)) {
		if (read_end(r, p, n, k) < 0)
			return fail(r);
		r->results++;
		return done(r);
	}
	if (r->state == PROTO_RESP_ST_FIELD_LIST && k == PROTO_KIND_DATA && p[0] != PROTO_EOF)
		return PROTO_RESP_MORE;
	return fail(r);
}

static int feed(struct proto_resp *r, const uint8_t *p, size_t n)
{
	if (n == 0 && r->state != PROTO_RESP_ST_STATISTICS)
		return fail(r);
	switch (r->state) {
	case PROTO_RESP_ST_FIRST:
		return first(r, p, n);
	case PROTO_RESP_ST_COLUMNS:
	case PROTO_RESP_ST_PARAMS:
	case PROTO_RESP_ST_PREP_COLUMNS:
		return definition(r, p, n);
	case PROTO_RESP_ST_COLUMNS_EOF:
		return columns_eof(r, p, n);
	case PROTO_RESP_ST_ROWS:
		return rows(r, p, n);
	case PROTO_RESP_ST_INFILE_REPLY:
		if (p[0] == PROTO_ERR)
			return on_err(r, p, n);
		if (p[0] != PROTO_OK || read_end(r, p, n, PROTO_KIND_OK) < 0)
			return fail(r);
		r->results++;
		return end_result(r);
	case PROTO_RESP_ST_PREPARE:
		if (p[0] == PROTO_ERR)
			return on_err(r, p, n);
		if (p[0] != PROTO_OK)
			return fail(r);
		return prepare_ok(r, p, n);
	case PROTO_RESP_ST_PARAMS_EOF:
	case PROTO_RESP_ST_PREP_COLUMNS_EOF:
		return prepare_eof(r, p, n);
	case PROTO_RESP_ST_FIELD_LIST:
	case PROTO_RESP_ST_SIMPLE:
		return simple(r, p, n);
	case PROTO_RESP_ST_STATISTICS:
		/* Free text ("Uptime: ..."); only an ERR-shaped packet is an ERR. */
		if (n > 0 && p[0] == PROTO_ERR)
			return on_err(r, p, n);
		return done(r);
	default:
		/* IDLE, INFILE (the client's turn), DONE, BROKEN */
		return fail(r);
	}
}

/* What the packet just fed was, from the state it arrived in and the state
 * it left: one result-set reader for every consumer (the relay, capture). */
static enum proto_pkt_role role_of(const struct proto_resp *r, enum proto_resp_state before, int rc)
{
	if (rc < 0)
		return PROTO_ROLE_NONE;
	if (r->is_err && r->state == PROTO_RESP_ST_DONE)
		return PROTO_ROLE_ERR;
	switch (before) {
	case PROTO_RESP_ST_FIRST:
		if (r->state == PROTO_RESP_ST_COLUMNS)
			return PROTO_ROLE_COLUMN_COUNT;
		return rc == PROTO_RESP_INFILE ? PROTO_ROLE_OTHER : PROTO_ROLE_OK;
	case PROTO_RESP_ST_COLUMNS:
		return PROTO_ROLE_COLUMN_DEF;
	case PROTO_RESP_ST_COLUMNS_EOF:
		return r->state == PROTO_RESP_ST_ROWS ? PROTO_ROLE_COLUMNS_END
		                                      : PROTO_ROLE_RESULT_END;
	case PROTO_RESP_ST_ROWS:
		return r->state == PROTO_RESP_ST_ROWS ? PROTO_ROLE_ROW : PROTO_ROLE_RESULT_END;
	case PROTO_RESP_ST_INFILE_REPLY:
		return PROTO_ROLE_OK;
	default:
		return PROTO_ROLE_OTHER;
	}
}

int proto_resp_feed(struct proto_resp *r, const uint8_t *p, size_t n)
{
	enum proto_resp_state before = r->state;
	int rc = feed(r, p, n);
	r->role = role_of(r, before, rc);
	return rc;
}

int proto_resp_infile_done(struct proto_resp *r)
{
	if (r->state != PROTO_RESP_ST_INFILE)
		return fail(r);
	r->state = PROTO_RESP_ST_INFILE_REPLY;
	return 0;
}
