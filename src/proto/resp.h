/* Response tracker: a resumable state machine fed with each server packet of
 * a command's response. It finds where the response ends and what status it
 * left (IN_TRANS, AUTOCOMMIT, open cursor, ...) without decoding rows. */
#ifndef VECGATE_PROTO_RESP_H
#define VECGATE_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* proto_resp_feed() results (errors are negative). */
enum {
	PROTO_RESP_MORE = 0,   /* keep feeding server packets */
	PROTO_RESP_DONE = 1,   /* the response is complete */
	PROTO_RESP_INFILE = 2, /* LOCAL INFILE: relay the client's file packets */
};

/* What the last packet fed was (proto_resp.role). */
enum proto_pkt_role {
	PROTO_ROLE_NONE,         /* nothing fed yet, or the packet was impossible */
	PROTO_ROLE_OK,           /* an OK that is a whole result (or the infile reply) */
	PROTO_ROLE_ERR,          /* the ERR that ends the response */
	PROTO_ROLE_COLUMN_COUNT, /* a result set's first packet */
	PROTO_ROLE_COLUMN_DEF,   /* one of its column definitions */
	PROTO_ROLE_COLUMNS_END,  /* the EOF after them (without DEPRECATE_EOF) */
	PROTO_ROLE_ROW,          /* a row, text or binary */
	PROTO_ROLE_RESULT_END,   /* the EOF or OK-as-EOF that ends a result set (or an
	                          * opened cursor's EOF after the definitions) */
	PROTO_ROLE_OTHER,        /* anything else: prepare, field list, statistics, infile */
};

enum proto_resp_state {
	PROTO_RESP_ST_IDLE,             /* nothing started; any packet is an error */
	PROTO_RESP_ST_FIRST,            /* a result's first packet: OK, ERR, LOCAL INFILE
	                                 * (COM_QUERY only) or a column count */
	PROTO_RESP_ST_COLUMNS,          /* column definitions, cols_left more */
	PROTO_RESP_ST_COLUMNS_EOF,      /* the EOF after the definitions (no DEPRECATE_EOF) */
	PROTO_RESP_ST_ROWS,             /* rows until EOF / OK-as-EOF, or ERR */
	PROTO_RESP_ST_INFILE,           /* the client is sending the file; no server packet
	                                 * until proto_resp_infile_done() */
	PROTO_RESP_ST_INFILE_REPLY,     /* OK or ERR for the uploaded file */
	PROTO_RESP_ST_PREPARE,          /* COM_STMT_PREPARE: OK-prepare or ERR */
	PROTO_RESP_ST_PARAMS,           /* parameter definitions, cols_left more */
	PROTO_RESP_ST_PARAMS_EOF,       /* the EOF after them (no DEPRECATE_EOF) */
	PROTO_RESP_ST_PREP_COLUMNS,     /* the prepared statement's column definitions */
	PROTO_RESP_ST_PREP_COLUMNS_EOF, /* the EOF after them (no DEPRECATE_EOF) */
	PROTO_RESP_ST_FIELD_LIST,       /* COM_FIELD_LIST: definitions until EOF / OK-as-EOF,
	                                 * or ERR */
	PROTO_RESP_ST_SIMPLE,           /* exactly one OK, EOF (or OK-as-EOF) or ERR */
	PROTO_RESP_ST_STATISTICS,       /* exactly one packet of text */
	PROTO_RESP_ST_DONE,             /* complete; any further packet is an error */
	PROTO_RESP_ST_BROKEN,           /* a packet was impossible; stays here */
};

struct proto_resp {
	enum proto_resp_state state;
	uint8_t command;
	uint32_t caps;         /* negotiated with the client */
	bool binary;           /* rows are binary protocol rows (always start 0x00) */
	bool cursor_requested; /* COM_STMT_EXECUTE asked for a cursor */
	uint64_t cols_left;
	enum proto_pkt_role role; /* of the packet fed last */

	/* Results, complete after PROTO_RESP_DONE. status is the last status
	 * seen by any response (an ERR, COM_STATISTICS or a prepare under
	 * DEPRECATE_EOF carry none): status_seen says whether this one had one.
	 * MORE_RESULTS_EXISTS is cleared when an ERR ends the response. */
	uint16_t status;
	bool status_seen;
	uint16_t warnings;
	bool is_err; /* ended with ERR (which ends every kind of response) */
	uint16_t err_code;
	uint64_t affected_rows; /* from the last OK (0 after an EOF) */
	uint64_t last_insert_id;
	unsigned results; /* OKs and result sets */
	/* With is_err: the results that ended well before the ERR. A
	 * multi-statement COM_QUERY stops at its first failing statement, so
	 * with one result per statement this is that statement's index. */
	unsigned results_before_err;
	unsigned result_sets; /* results with columns */
	uint64_t rows;        /* rows in all result sets */
	bool cursor_open;     /* COM_STMT_EXECUTE opened a server-side cursor */
	uint32_t stmt_id;     /* COM_STMT_PREPARE */
	uint16_t num_columns;
	uint16_t num_params;
};

/* Sets up a tracker once per connection, with the status from the
 * handshake's OK; proto_resp_start() keeps the status between commands. */
void proto_resp_init(struct proto_resp *r, uint16_t status);

/* False for commands the server never answers: COM_QUIT, COM_STMT_CLOSE,
 * COM_STMT_SEND_LONG_DATA. The session must not start a tracker for them. */
bool proto_resp_expects_reply(uint8_t command);

/* Starts tracking the response to a command. caps are the capabilities
 * negotiated with this client. cmd_payload (may be NULL) is the command
 * packet's payload, command byte included; COM_STMT_EXECUTE's flags byte is
 * read from it. COM_CHANGE_USER is an auth exchange for the session to
 * handle: here only a direct OK or ERR ends it, and an AuthSwitchRequest
 * (0xFE) gives -EPROTO. Commands with no tracking of
 * their own (COM_SHUTDOWN, COM_DAEMON, unknown bytes, ...) expect one OK /
 * EOF / ERR, which is how TiDB and MySQL refuse them. The tracker assumes
 * CLIENT_OPTIONAL_RESULTSET_METADATA and MariaDB's CACHE_METADATA are not
 * negotiated (vecgate masks them): their column count packets give -EPROTO. */
void proto_resp_start(struct proto_resp *r, uint8_t command, uint32_t caps,
                      const uint8_t *cmd_payload, size_t cmd_len);

/* Feeds one complete logical server packet (payload only, n bytes). Returns
 * PROTO_RESP_MORE, PROTO_RESP_DONE, PROTO_RESP_INFILE, or -EPROTO for a
 * packet that cannot occur in this state; after -EPROTO (or after DONE)
 * every feed returns -EPROTO. Reads only p[0, n) and keeps no pointer.
 * A packet of 16 MiB or more is always a row, a definition or statistics
 * text, judged by its first byte: feeding just its first physical packet
 * (n = PROTO_MAX_CHUNK) and skipping the continuations gives the same answer. */
int proto_resp_feed(struct proto_resp *r, const uint8_t *p, size_t n) MUST_CHECK;

/* After PROTO_RESP_INFILE, once the client's closing empty packet has been
 * relayed: the server's OK or ERR comes next. -EPROTO in any other state. */
int proto_resp_infile_done(struct proto_resp *r) MUST_CHECK;

#endif
