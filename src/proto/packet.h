/* MySQL packet framing: 3-byte length + sequence id headers, payloads of
 * 16 MiB and more split across physical packets, and a packet writer that
 * backfills headers. Pure functions over memory. */
#ifndef VECGATE_PROTO_PACKET_H
#define VECGATE_PROTO_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define PROTO_HDR 4
/* A physical packet of exactly this payload length is continued by the next. */
#define PROTO_MAX_CHUNK 0xFFFFFFu

/* One physical packet. */
struct proto_pkt {
	const uint8_t *payload;
	uint32_t len;
	uint8_t seq;
};

/* Reads one physical packet from p[0, n). Returns the bytes it spans
 * (PROTO_HDR + len) or 0 when the packet is not complete yet. */
size_t proto_read_packet(const uint8_t *p, size_t n, struct proto_pkt *out);

/* A logical packet: physical packets chained while their length is
 * PROTO_MAX_CHUNK, ended by a shorter (possibly empty) one. */
struct proto_logical {
	size_t wire_len;    /* bytes of all its physical packets, headers included */
	size_t payload_len; /* payload bytes, headers excluded */
	uint8_t first_seq;
	uint8_t last_seq;
	unsigned chunks; /* physical packets */
};

/* Scans one logical packet. Returns wire_len (> 0), 0 when more bytes are
 * needed, or -EMSGSIZE once its payload is known to exceed max_payload (so a
 * peer cannot make vecgate buffer an unbounded packet), or -EPROTO when the
 * continuation packets' sequence ids do not follow one another. */
ssize_t proto_scan_logical(const uint8_t *p, size_t n, size_t max_payload,
                           struct proto_logical *out) MUST_CHECK;

/* Appends the payload of the complete logical packet at p (as scanned by
 * proto_scan_logical) to dst, without headers. 0 or -ENOMEM. */
int proto_gather_payload(const uint8_t *p, const struct proto_logical *lp,
                         struct buf *dst) MUST_CHECK;

/* Packet writer. proto_pkt_begin() reserves a header at the end of b and
 * returns its offset (or a negative errno); the caller appends the payload;
 * proto_pkt_end() fills in the header, splitting payloads of 16 MiB and more
 * into several physical packets, and advances *seq by the packets written. */
ssize_t proto_pkt_begin(struct buf *b) MUST_CHECK;
int proto_pkt_end(struct buf *b, size_t start, uint8_t *seq) MUST_CHECK;

/* Ends a packet begun at start when rc is 0 (proto_pkt_end's result is
 * returned), or else drops its partial bytes and returns rc. */
int proto_pkt_finish(struct buf *b, ssize_t start, uint8_t *seq, int rc) MUST_CHECK;

/* Appends a whole packet with the given payload. */
int proto_write_packet(struct buf *b, uint8_t *seq, const void *payload, size_t len) MUST_CHECK;

#endif
