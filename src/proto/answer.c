/* Composing answers in the server's place from captured parts. */
#include "proto/answer.h"

#include <errno.h>
#include <string.h>

#include "proto/mysql.h"
#include "proto/packet.h"

/* The bits that belong to the session rather than to one statement. */
#define SESSION_BITS                                                                               \
	(PROTO_STATUS_IN_TRANS | PROTO_STATUS_AUTOCOMMIT | PROTO_STATUS_IN_TRANS_READONLY |        \
	 PROTO_STATUS_NO_BACKSLASH_ESCAPES)

uint16_t proto_answer_status(uint16_t now, uint16_t captured)
{
	uint16_t s = now & SESSION_BITS;
	if (!(now & PROTO_STATUS_AUTOCOMMIT))
		s |= PROTO_STATUS_IN_TRANS;
	/* MORE_RESULTS_EXISTS and CURSOR_EXISTS describe a response vecgate
	 * never composes (one result, no cursor). */
	uint16_t stmt = captured & (uint16_t) ~(SESSION_BITS | PROTO_STATUS_MORE_RESULTS_EXISTS |
	                                        PROTO_STATUS_CURSOR_EXISTS);
	return (uint16_t)(s | stmt);
}

int proto_terminator_status_offset(const uint8_t *p, size_t n)
{
	if (n < 5 || p[0] != PROTO_EOF)
		return -EPROTO;
	if (n == 5)
		return 3;
	struct rd r = rd_make(p + 1, n - 1);
	uint64_t v;
	if (!rd_lenenc(&r, &v, NULL) || !rd_lenenc(&r, &v, NULL) || rd_left(&r) < 4)
		return -EPROTO;
	return (int)(n - rd_left(&r));
}

size_t proto_answer_header_packets(uint32_t ncols, size_t mid_len)
{
	return 1 + (size_t)ncols + (mid_len ? 1 : 0);
}

/* A terminator packet with its status replaced. */
static int put_terminator(struct buf *out, uint8_t *seq, const uint8_t *term, size_t n,
                          uint16_t status)
{
	int off = proto_terminator_status_offset(term, n);
	if (off < 0)
		return off;
	ssize_t start = proto_pkt_begin(out);
	if (start < 0 || buf_append(out, term, n) < 0)
		return -ENOMEM;
	uint8_t *p = out->data + out->len - n + off;
	p[0] = (uint8_t)status;
	p[1] = (uint8_t)(status >> 8);
	return proto_pkt_end(out, (size_t)start, seq) < 0 ? -ENOMEM : 0;
}

int proto_append_answer_header(struct buf *out, uint32_t ncols, const uint8_t *defs,
                               size_t defs_len)
{
	size_t len0 = out->len;
	uint8_t seq = 1;
	ssize_t start = proto_pkt_begin(out);
	int rc = start < 0 || wr_lenenc(out, ncols) < 0 || proto_pkt_end(out, (size_t)start, &seq)
	                 ? -ENOMEM
	                 : 0;
	size_t off = 0;
	for (uint32_t i = 0; i < ncols && rc == 0; i++) {
		uint32_t len;
		if (defs_len - off < 4) {
			rc = -EPROTO;
			break;
		}
		memcpy(&len, defs + off, 4);
		off += 4;
		if (defs_len - off < len) {
			rc = -EPROTO;
			break;
		}
		if (proto_write_packet(out, &seq, defs + off, len) < 0)
			rc = -ENOMEM;
		off += len;
	}
	if (rc == 0 && off != defs_len)
		rc = -EPROTO;
	if (rc < 0)
		out->len = len0;
	return rc;
}

int proto_append_answer(struct buf *out, const struct proto_answer *a, const uint8_t *header,
                        size_t header_len)
{
	size_t len0 = out->len;
	uint8_t mid_seq = (uint8_t)(2 + a->ncols);
	uint8_t seq = (uint8_t)(1 + proto_answer_header_packets(a->ncols, a->mid_len) + a->nrows);
	int rc = header ? (buf_append(out, header, header_len) < 0 ? -ENOMEM : 0)
	                : proto_append_answer_header(out, a->ncols, a->defs, a->defs_len);
	if (rc == 0 && a->mid_len)
		rc = put_terminator(out, &mid_seq, a->mid, a->mid_len, a->mid_status);
	if (rc == 0 && buf_append(out, a->rows, a->rows_len) < 0)
		rc = -ENOMEM;
	if (rc == 0)
		rc = put_terminator(out, &seq, a->term, a->term_len, a->status);
	if (rc < 0)
		out->len = len0;
	return rc;
}
