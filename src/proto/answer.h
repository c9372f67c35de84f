/* Result sets vecgate sends in the server's place: header packets captured
 * from one of the server's own answers (column count, definitions, the EOF
 * after them), rows vecgate encoded, and the captured terminator, with the
 * status flags the server would have sent now. Pure functions over bytes. */
#ifndef VECGATE_PROTO_ANSWER_H
#define VECGATE_PROTO_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* The status the server would send with a read-only result set, given the
 * session's status now and the status the server sent with a captured
 * answer of the same statement shape: the session's bits (autocommit,
 * read-only transaction, backslash escapes) stay as they are, IN_TRANS is
 * set when a transaction is open or autocommit is off (a statement then
 * opens one), and the bits that describe the statement itself (no index
 * used, last row sent, ...) are the captured answer's. */
uint16_t proto_answer_status(uint16_t now, uint16_t captured);

/* Offset of the status flags in the payload of an EOF (0xFE, warnings,
 * status) or an OK-as-EOF (0xFE, lenenc affected rows, lenenc insert id,
 * status, warnings); -EPROTO when it is neither. */
int proto_terminator_status_offset(const uint8_t *p, size_t n) MUST_CHECK;

/* The parts of one answer. defs holds ncols definition payloads, each after
 * its u32 (host order) length; mid is the EOF payload after them (n 0 under
 * DEPRECATE_EOF); rows are complete row packets whose sequence ids already
 * follow the header's (nrows of them); term is the terminator payload. */
struct proto_answer {
	uint32_t ncols;
	const uint8_t *defs;
	size_t defs_len;
	const uint8_t *mid;
	size_t mid_len;
	uint16_t mid_status;
	const uint8_t *rows;
	size_t rows_len;
	size_t nrows;
	const uint8_t *term;
	size_t term_len;
	uint16_t status;
};

/* Packets before the first row: count, definitions, and the EOF if any. The
 * first row's sequence id is 1 + this. */
size_t proto_answer_header_packets(uint32_t ncols, size_t mid_len);

/* Appends the column count and definition packets (sequence ids from 1).
 * 0, -EPROTO (defs do not hold ncols definitions) or -ENOMEM. */
int proto_append_answer_header(struct buf *out, uint32_t ncols, const uint8_t *defs,
                               size_t defs_len) MUST_CHECK;

/* Appends a whole answer: the header (unless header is given: the bytes
 * proto_append_answer_header made for these parts), the EOF after the
 * definitions, the rows and the terminator, each terminator with its status
 * replaced. 0, -EPROTO (a terminator that is neither EOF nor OK, defs that
 * do not hold ncols definitions) or -ENOMEM; out is as it was on error. */
int proto_append_answer(struct buf *out, const struct proto_answer *a, const uint8_t *header,
                        size_t header_len) MUST_CHECK;

#endif
