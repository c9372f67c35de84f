/* OK, ERR and EOF packets, and server payload classification. */
#include "proto/packets.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/packet.h"

static ssize_t used(const uint8_t *p, const struct rd *r)
{
	return (ssize_t)(r->p - p);
}

ssize_t proto_parse_ok(const uint8_t *p, size_t n, uint32_t caps, struct proto_ok *ok)
{
	struct rd r = rd_make(p, n);
	memset(ok, 0, sizeof(*ok));
	if (!rd_u8(&r, &ok->header) || (ok->header != PROTO_OK && ok->header != PROTO_EOF))
		return -EPROTO;
	if (!rd_lenenc(&r, &ok->affected_rows, NULL) || !rd_lenenc(&r, &ok->last_insert_id, NULL))
		return -EPROTO;
	if (caps & PROTO_CLIENT_PROTOCOL_41) {
		if (!rd_u16(&r, &ok->status) || !rd_u16(&r, &ok->warnings))
			return -EPROTO;
	} else if (caps & PROTO_CLIENT_TRANSACTIONS) {
		if (!rd_u16(&r, &ok->status))
			return -EPROTO;
	}
	if (caps & PROTO_CLIENT_SESSION_TRACK) {
		uint64_t len;
		/* info is omitted when empty and no state changed */
		if (rd_left(&r) > 0) {
			if (!rd_lenenc_str(&r, &ok->info, &len))
				return -EPROTO;
			ok->info_len = (size_t)len;
		}
		if (ok->status & PROTO_STATUS_SESSION_STATE_CHANGED) {
			if (!rd_lenenc_str(&r, &ok->session_state, &len))
				return -EPROTO;
			ok->session_state_len = (size_t)len;
		}
		return used(p, &r);
	}
	if (rd_left(&r) > 0) {
		struct rd s = r;
		uint64_t len;
		if (rd_lenenc_str(&s, &ok->info, &len) && rd_left(&s) == 0) {
			ok->info_len = (size_t)len;
		} else {
			ok->info = r.p;
			ok->info_len = rd_left(&r);
		}
		r.p = r.end;
	}
	return used(p, &r);
}

int proto_write_ok(struct buf *b, uint8_t *seq, uint32_t caps, const struct proto_ok *ok)
{
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = wr_u8(b, ok->header);
	if (!rc)
		rc = wr_lenenc(b, ok->affected_rows);
	if (!rc)
		rc = wr_lenenc(b, ok->last_insert_id);
	if (!rc && (caps & PROTO_CLIENT_PROTOCOL_41)) {
		rc = wr_u16(b, ok->status);
		if (!rc)
			rc = wr_u16(b, ok->warnings);
	} else if (!rc && (caps & PROTO_CLIENT_TRANSACTIONS)) {
		rc = wr_u16(b, ok->status);
	}
	bool state = (caps & PROTO_CLIENT_SESSION_TRACK) &&
	             (ok->status & PROTO_STATUS_SESSION_STATE_CHANGED);
	if (!rc && (ok->info_len > 0 || state))
		rc = wr_lenenc_str(b, ok->info, ok->info_len);
	if (!rc && state)
		rc = wr_lenenc_str(b, ok->session_state, ok->session_state_len);
	return proto_pkt_finish(b, start, seq, rc);
}

ssize_t proto_parse_err(const uint8_t *p, size_t n, uint32_t caps, struct proto_err *err)
{
	struct rd r = rd_make(p, n);
	uint8_t h;
	memset(err, 0, sizeof(*err));
	if (!rd_u8(&r, &h) || h != PROTO_ERR || !rd_u16(&r, &err->code))
		return -EPROTO;
	if ((caps & PROTO_CLIENT_PROTOCOL_41) && rd_left(&r) > 0 && r.p[0] == '#') {
		const uint8_t *st;
		if (!rd_skip(&r, 1) || !rd_bytes(&r, PROTO_SQLSTATE_LEN, &st))
			return -EPROTO;
		memcpy(err->sqlstate, st, PROTO_SQLSTATE_LEN);
		err->has_sqlstate = true;
	}
	err->msg = r.p;
	err->msg_len = rd_left(&r);
	return (ssize_t)n;
}

static int err_head(struct buf *b, uint32_t caps, uint16_t code, const char *sqlstate)
{
	int rc = wr_u8(b, PROTO_ERR);
	if (!rc)
		rc = wr_u16(b, code);
	if (!rc && (caps & PROTO_CLIENT_PROTOCOL_41)) {
		char st[PROTO_SQLSTATE_LEN] = {'H', 'Y', '0', '0', '0'};
		/* A short state is padded with '0' so the length never slips. */
		if (sqlstate) {
			size_t len = strnlen(sqlstate, PROTO_SQLSTATE_LEN);
			memcpy(st, sqlstate, len);
			memset(st + len, '0', PROTO_SQLSTATE_LEN - len);
		}
		rc = wr_u8(b, '#');
		if (!rc)
			rc = buf_append(b, st, PROTO_SQLSTATE_LEN);
	}
	return rc;
}

int proto_write_err_msg(struct buf *b, uint8_t *seq, uint32_t caps, uint16_t code,
                        const char *sqlstate, const void *msg, size_t msg_len)
{
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = err_head(b, caps, code, sqlstate);
	if (!rc)
		rc = buf_append(b, msg, msg_len);
	return proto_pkt_finish(b, start, seq, rc);
}

int proto_write_err(struct buf *b, uint8_t *seq, uint32_t caps, uint16_t code, const char *sqlstate,
                    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return -EINVAL;

	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = err_head(b, caps, code, sqlstate);
	if (!rc)
		rc = buf_reserve(b, (size_t)len + 1); /* vsnprintf writes a NUL */
	if (!rc) {
		va_start(ap, fmt);
		vsnprintf((char *)b->data + b->len, (size_t)len + 1, fmt, ap);
		va_end(ap);
		b->len += (size_t)len;
	}
	return proto_pkt_finish(b, start, seq, rc);
}

ssize_t proto_parse_eof(const uint8_t *p, size_t n, uint32_t caps, struct proto_eof *eof)
{
	struct rd r = rd_make(p, n);
	uint8_t h;
	memset(eof, 0, sizeof(*eof));
	if (n >= 9 || !rd_u8(&r, &h) || h != PROTO_EOF)
		return -EPROTO;
	if ((caps & PROTO_CLIENT_PROTOCOL_41) &&
	    (!rd_u16(&r, &eof->warnings) || !rd_u16(&r, &eof->status)))
		return -EPROTO;
	return used(p, &r);
}

int proto_write_eof(struct buf *b, uint8_t *seq, uint32_t caps, uint16_t warnings, uint16_t status)
{
	uint8_t p[5] = {PROTO_EOF, (uint8_t)warnings, (uint8_t)(warnings >> 8), (uint8_t)status,
	                (uint8_t)(status >> 8)};
	return proto_write_packet(b, seq, p, (caps & PROTO_CLIENT_PROTOCOL_41) ? 5 : 1);
}

enum proto_kind proto_classify(const uint8_t *p, size_t n, uint32_t caps)
{
	if (n == 0)
		return PROTO_KIND_DATA;
	switch (p[0]) {
	case PROTO_OK:
		return PROTO_KIND_OK;
	case PROTO_ERR:
		return PROTO_KIND_ERR;
	case PROTO_EOF:
		if (caps & PROTO_CLIENT_DEPRECATE_EOF)
			return n < PROTO_MAX_CHUNK ? PROTO_KIND_EOF_OK : PROTO_KIND_DATA;
		return n < 9 ? PROTO_KIND_EOF : PROTO_KIND_DATA;
	default:
		return PROTO_KIND_DATA;
	}
}
