/* Generic server response packets: OK, ERR and EOF parse and write, and the
 * classification of a server payload by its header byte and length. */
#ifndef VECGATE_PROTO_PACKETS_H
#define VECGATE_PROTO_PACKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "proto/mysql.h"

/* Payload decoders in src/proto take one complete logical payload: they
 * return the bytes they used (> 0) or -EPROTO when the payload is malformed
 * or ends early (a complete payload cannot "need more"). Strings they return
 * point into the payload, which must outlive them. */

/* An OK packet; header 0x00, or 0xFE when it ends a result set under
 * CLIENT_DEPRECATE_EOF. */
struct proto_ok {
	uint8_t header;
	uint64_t affected_rows;
	uint64_t last_insert_id;
	uint16_t status;
	uint16_t warnings;
	const uint8_t *info;
	size_t info_len;
	/* Only with CLIENT_SESSION_TRACK and PROTO_STATUS_SESSION_STATE_CHANGED. */
	const uint8_t *session_state;
	size_t session_state_len;
};

/* Parses an OK payload as sent to a client with capabilities caps. The info
 * text: MySQL and TiDB both send it as a lenenc string (although MySQL's docs
 * say string<EOF> without CLIENT_SESSION_TRACK); a tail that is not exactly
 * one lenenc string is taken as raw text. */
ssize_t proto_parse_ok(const uint8_t *p, size_t n, uint32_t caps, struct proto_ok *ok) MUST_CHECK;
/* Appends an OK packet (header ok->header) with sequence id *seq. Writes
 * info as a lenenc string when non-empty (as MySQL and TiDB do) and the
 * session state when caps has SESSION_TRACK and the status says it changed. */
int proto_write_ok(struct buf *b, uint8_t *seq, uint32_t caps,
                   const struct proto_ok *ok) MUST_CHECK;

struct proto_err {
	uint16_t code;
	bool has_sqlstate;
	char sqlstate[PROTO_SQLSTATE_LEN + 1]; /* NUL-terminated; "" when absent */
	const uint8_t *msg;
	size_t msg_len;
};

/* Parses an ERR payload. The '#' + SQLSTATE marker is looked for only with
 * CLIENT_PROTOCOL_41 and is optional even then: a server that refuses a
 * connection before the handshake sends an ERR without it. */
ssize_t proto_parse_err(const uint8_t *p, size_t n, uint32_t caps,
                        struct proto_err *err) MUST_CHECK;
/* Appends an ERR packet. sqlstate (5 characters, NULL for "HY000") is sent
 * only with CLIENT_PROTOCOL_41. The message is not truncated. */
int proto_write_err_msg(struct buf *b, uint8_t *seq, uint32_t caps, uint16_t code,
                        const char *sqlstate, const void *msg, size_t msg_len) MUST_CHECK;
int proto_write_err(struct buf *b, uint8_t *seq, uint32_t caps, uint16_t code, const char *sqlstate,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7))) MUST_CHECK;

struct proto_eof {
	uint16_t warnings;
	uint16_t status;
};

/* Parses an EOF payload: 0xFE and shorter than 9 bytes; 5 bytes (warnings,
 * status) with CLIENT_PROTOCOL_41, else 1 byte (both fields zero). */
ssize_t proto_parse_eof(const uint8_t *p, size_t n, uint32_t caps,
                        struct proto_eof *eof) MUST_CHECK;
int proto_write_eof(struct buf *b, uint8_t *seq, uint32_t caps, uint16_t warnings,
                    uint16_t status) MUST_CHECK;

enum proto_kind {
	PROTO_KIND_DATA,   /* anything else: column count, definition, row, text */
	PROTO_KIND_OK,     /* 0x00 */
	PROTO_KIND_ERR,    /* 0xFF */
	PROTO_KIND_EOF,    /* 0xFE, shorter than 9 bytes, no DEPRECATE_EOF */
	PROTO_KIND_EOF_OK, /* 0xFE, shorter than 0xFFFFFF bytes, DEPRECATE_EOF */
};

/* Classifies a server payload by header byte and length alone. A 0xFE packet
 * that is too long to be a terminator is a row whose first cell is a lenenc
 * string of 2^24 bytes or more. Whether 0x00 means OK or a (binary) row, and
 * 0xFB LOCAL INFILE or a NULL cell, depends on the state: see resp.h. */
enum proto_kind proto_classify(const uint8_t *p, size_t n, uint32_t caps);

#endif
