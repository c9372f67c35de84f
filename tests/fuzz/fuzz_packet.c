/* Packet framing: proto_read_packet, proto_scan_logical and
 * proto_gather_payload over a stream of client or server bytes, as the
 * session splits its input. The first two bytes choose the payload limit.
 * Each logical packet is written again with proto_write_packet and must scan
 * back to the same payload. */
#include "fuzz.h"

#include <errno.h>

#include "proto/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	/* Up to 64 KiB, or unlimited (as a relay that does not buffer). */
	uint16_t lim = fuzz_u16(&in);
	size_t max = lim == 0xFFFF ? SIZE_MAX : lim;
	const uint8_t *p = in.p;
	size_t n = in.n;

	/* Physical packets back to back. */
	for (size_t pos = 0;;) {
		struct proto_pkt pk;
		size_t used = proto_read_packet(p + pos, n - pos, &pk);
		if (used == 0)
			break;
		FUZZ_CHECK(used == PROTO_HDR + (size_t)pk.len && used <= n - pos);
		FUZZ_CHECK(pk.payload == p + pos + PROTO_HDR);
		pos += used;
	}

	struct buf payload, again;
	buf_init(&payload);
	buf_init(&again);
	for (size_t pos = 0; pos < n;) {
		struct proto_logical lp;
		ssize_t rc = proto_scan_logical(p + pos, n - pos, max, &lp);
		if (rc <= 0) {
			FUZZ_CHECK(rc == 0 || rc == -EMSGSIZE || rc == -EPROTO);
			break;
		}
		FUZZ_CHECK((size_t)rc == lp.wire_len && lp.wire_len <= n - pos);
		FUZZ_CHECK(lp.chunks >= 1);
		FUZZ_CHECK(lp.payload_len <= max);
		FUZZ_CHECK(lp.wire_len == lp.payload_len + (size_t)lp.chunks * PROTO_HDR);
		FUZZ_CHECK((uint8_t)(lp.first_seq + lp.chunks - 1) == lp.last_seq);
		/* Any prefix of a logical packet needs more bytes. */
		struct proto_logical part;
		FUZZ_CHECK(proto_scan_logical(p + pos, lp.wire_len - 1, max, &part) == 0);

		payload.len = 0;
		if (proto_gather_payload(p + pos, &lp, &payload) == 0) {
			FUZZ_CHECK(payload.len == lp.payload_len);
			/* The writer frames it the same way, from the same sequence id. */
			again.len = 0;
			uint8_t seq = lp.first_seq;
			if (proto_write_packet(&again, &seq, payload.data, payload.len) == 0) {
				FUZZ_CHECK(seq == (uint8_t)(lp.last_seq + 1));
				FUZZ_CHECK(again.len == lp.wire_len);
				FUZZ_CHECK(memcmp(again.data, p + pos, lp.wire_len) == 0);
			}
		}
		pos += lp.wire_len;
	}
	buf_free(&payload);
	buf_free(&again);
	return 0;
}
