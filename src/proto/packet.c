/* MySQL packet framing and the header-backfilling packet writer. */
#include "proto/packet.h"

#include <errno.h>
#include <string.h>

size_t proto_read_packet(const uint8_t *p, size_t n, struct proto_pkt *out)
{
	if (n < PROTO_HDR)
		return 0;
	uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
	if (n - PROTO_HDR < len)
		return 0;
	out->len = len;
	out->seq = p[3];
	out->payload = p + PROTO_HDR;
	return PROTO_HDR + (size_t)len;
}

ssize_t proto_scan_logical(const uint8_t *p, size_t n, size_t max_payload,
                           struct proto_logical *out)
{
	size_t pos = 0, payload = 0;
	unsigned chunks = 0;
	uint8_t first = 0, last = 0;

	for (;;) {
		if (n - pos < PROTO_HDR)
			return 0;
		uint32_t len =
		        (uint32_t)p[pos] | (uint32_t)p[pos + 1] << 8 | (uint32_t)p[pos + 2] << 16;
		uint8_t seq = p[pos + 3];
		if (chunks == 0)
			first = seq;
		else if (seq != (uint8_t)(last + 1))
			return -EPROTO;
		last = seq;
		/* Judge the size from the header alone, before the body arrives. */
		if (len > max_payload - payload)
			return -EMSGSIZE;
		if (n - pos - PROTO_HDR < len)
			return 0;
		pos += PROTO_HDR + len;
		payload += len;
		chunks++;
		if (len < PROTO_MAX_CHUNK)
			break;
	}
	out->wire_len = pos;
	out->payload_len = payload;
	out->first_seq = first;
	out->last_seq = last;
	out->chunks = chunks;
	return (ssize_t)pos;
}

int proto_gather_payload(const uint8_t *p, const struct proto_logical *lp, struct buf *dst)
{
	int rc = buf_reserve(dst, lp->payload_len);
	if (rc < 0)
		return rc;
	size_t pos = 0;
	for (unsigned i = 0; i < lp->chunks; i++) {
		struct proto_pkt pk;
		size_t used = proto_read_packet(p + pos, lp->wire_len - pos, &pk);
		if (used == 0)
			return -EPROTO;
		rc = buf_append(dst, pk.payload, pk.len);
		if (rc < 0)
			return rc;
		pos += used;
	}
	return 0;
}

ssize_t proto_pkt_begin(struct buf *b)
{
	int rc = buf_reserve(b, PROTO_HDR);
	if (rc < 0)
		return rc;
	size_t start = b->len;
	memset(b->data + b->len, 0, PROTO_HDR);
	b->len += PROTO_HDR;
	return (ssize_t)start;
}

static void put_hdr(uint8_t *h, size_t len, uint8_t seq)
{
	h[0] = (uint8_t)len;
	h[1] = (uint8_t)(len >> 8);
	h[2] = (uint8_t)(len >> 16);
	h[3] = seq;
}

int proto_pkt_end(struct buf *b, size_t start, uint8_t *seq)
{
	size_t payload = b->len - start - PROTO_HDR;
	if (payload < PROTO_MAX_CHUNK) {
		put_hdr(b->data + start, payload, (*seq)++);
		return 0;
	}
	/* 16 MiB or more: one extra header per full chunk, plus the final
	 * (possibly empty) packet that tells the reader the chain has ended. */
	size_t extra = payload / PROTO_MAX_CHUNK;
	int rc = buf_reserve(b, extra * PROTO_HDR);
	if (rc < 0)
		return rc;
	uint8_t *body = b->data + start + PROTO_HDR;
	/* Move chunks back to front so no byte is overwritten before it moves. */
	for (size_t i = extra; i > 0; i--) {
		size_t from = i * PROTO_MAX_CHUNK;
		size_t clen = i == extra ? payload - from : PROTO_MAX_CHUNK;
		memmove(body + from + i * PROTO_HDR, body + from, clen);
	}
	for (size_t i = 0; i <= extra; i++) {
		size_t clen = i == extra ? payload - i * PROTO_MAX_CHUNK : PROTO_MAX_CHUNK;
		put_hdr(b->data + start + i * (PROTO_HDR + PROTO_MAX_CHUNK), clen, (*seq)++);
	}
	b->len += extra * PROTO_HDR;
	return 0;
}

int proto_write_packet(struct buf *b, uint8_t *seq, const void *payload, size_t len)
{
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = buf_append(b, payload, len);
	return rc < 0 ? rc : proto_pkt_end(b, (size_t)start, seq);
}

int proto_pkt_finish(struct buf *b, ssize_t start, uint8_t *seq, int rc)
{
	if (!rc)
		rc = proto_pkt_end(b, (size_t)start, seq);
	if (rc)
		b->len = (size_t)start;
	return rc;
}
