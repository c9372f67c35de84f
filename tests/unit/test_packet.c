/* Unit tests for src/proto/packet: framing, split packets, the writer. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "proto/packet.h"

Test(packet, read_physical)
{
	const uint8_t d[] = {0x03, 0x00, 0x00, 0x07, 'a', 'b', 'c', 0xFF};
	struct proto_pkt pk;
	for (size_t n = 0; n < 7; n++)
		cr_assert_eq(proto_read_packet(d, n, &pk), 0, "truncated at %zu", n);
	cr_assert_eq(proto_read_packet(d, sizeof(d), &pk), 7);
	cr_assert_eq(pk.len, 3);
	cr_assert_eq(pk.seq, 7);
	cr_assert_eq(memcmp(pk.payload, "abc", 3), 0);
}

Test(packet, empty_payload)
{
	const uint8_t d[] = {0, 0, 0, 2};
	struct proto_pkt pk;
	cr_assert_eq(proto_read_packet(d, sizeof(d), &pk), 4);
	cr_assert_eq(pk.len, 0);
}

/* Builds a logical packet of n payload bytes (value i % 251) starting at seq. */
static struct buf make_logical(size_t n, uint8_t seq)
{
	struct buf b;
	buf_init(&b);
	ssize_t start = proto_pkt_begin(&b);
	cr_assert_geq(start, 0);
	cr_assert_eq(buf_reserve(&b, n), 0);
	for (size_t i = 0; i < n; i++)
		b.data[b.len + i] = (uint8_t)(i % 251);
	b.len += n;
	cr_assert_eq(proto_pkt_end(&b, (size_t)start, &seq), 0);
	return b;
}

Test(packet, writer_small)
{
	struct buf b;
	buf_init(&b);
	uint8_t seq = 5;
	cr_assert_eq(proto_write_packet(&b, &seq, "\x0e", 1), 0);
	cr_assert_eq(seq, 6);
	const uint8_t want[] = {1, 0, 0, 5, 0x0e};
	cr_assert_eq(b.len, sizeof(want));
	cr_assert_eq(memcmp(b.data, want, sizeof(want)), 0);
	buf_free(&b);
}

struct split_case {
	size_t payload;
	unsigned chunks;
};

Test(packet, split_round_trip, .timeout = 30)
{
	const struct split_case cases[] = {
	        {0, 1},
	        {PROTO_MAX_CHUNK - 1, 1},
	        {PROTO_MAX_CHUNK, 2}, /* exactly 16 MiB - 1: an empty packet follows */
	        {PROTO_MAX_CHUNK + 1, 2},
	        {2 * PROTO_MAX_CHUNK, 3},
	        {20u << 20, 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct split_case *c = &cases[i];
		struct buf b = make_logical(c->payload, 250);
		cr_assert_eq(b.len, c->payload + c->chunks * PROTO_HDR, "case %zu", i);

		struct proto_logical lp;
		/* Every strict prefix needs more bytes. Probe at chunk edges. */
		size_t probes[] = {0, 3, 4, b.len / 2, b.len - 1};
		for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++)
			if (probes[k] < b.len)
				cr_assert_eq(proto_scan_logical(b.data, probes[k], SIZE_MAX, &lp),
				             0, "case %zu prefix %zu", i, probes[k]);
		cr_assert_eq(proto_scan_logical(b.data, b.len, SIZE_MAX, &lp), (ssize_t)b.len);
		cr_assert_eq(lp.payload_len, c->payload);
		cr_assert_eq(lp.chunks, c->chunks);
		cr_assert_eq(lp.first_seq, 250);
		cr_assert_eq(lp.last_seq, (uint8_t)(250 + c->chunks - 1), "seq wraps mod 256");

		struct buf out;
		buf_init(&out);
		cr_assert_eq(proto_gather_payload(b.data, &lp, &out), 0);
		cr_assert_eq(out.len, c->payload);
		for (size_t j = 0; j < out.len; j += 4093)
			cr_assert_eq(out.data[j], (uint8_t)(j % 251), "case %zu byte %zu", i, j);
		if (out.len)
			cr_assert_eq(out.data[out.len - 1], (uint8_t)((out.len - 1) % 251));
		buf_free(&out);
		buf_free(&b);
	}
}

Test(packet, oversize_rejected_from_header)
{
	/* Header claims 1000 bytes; only the header has arrived. */
	const uint8_t d[] = {0xE8, 0x03, 0x00, 0x00};
	struct proto_logical lp;
	cr_assert_eq(proto_scan_logical(d, sizeof(d), 999, &lp), -EMSGSIZE);
	cr_assert_eq(proto_scan_logical(d, sizeof(d), 1000, &lp), 0);
}

Test(packet, bad_continuation_sequence)
{
	struct buf b = make_logical(PROTO_MAX_CHUNK + 10, 0);
	b.data[PROTO_HDR + PROTO_MAX_CHUNK + 3] = 9; /* second header's seq */
	struct proto_logical lp;
	cr_assert_eq(proto_scan_logical(b.data, b.len, SIZE_MAX, &lp), -EPROTO);
	buf_free(&b);
}

Test(packet, consecutive_packets)
{
	struct buf b;
	buf_init(&b);
	uint8_t seq = 0;
	cr_assert_eq(proto_write_packet(&b, &seq, "one", 3), 0);
	cr_assert_eq(proto_write_packet(&b, &seq, "", 0), 0);
	cr_assert_eq(proto_write_packet(&b, &seq, "three", 5), 0);
	size_t pos = 0;
	const char *want[] = {"one", "", "three"};
	for (int i = 0; i < 3; i++) {
		struct proto_logical lp;
		ssize_t used = proto_scan_logical(b.data + pos, b.len - pos, 1 << 20, &lp);
		cr_assert_gt(used, 0);
		cr_assert_eq(lp.payload_len, strlen(want[i]));
		cr_assert_eq(lp.first_seq, i);
		cr_assert_eq(memcmp(b.data + pos + PROTO_HDR, want[i], lp.payload_len), 0);
		pos += (size_t)used;
	}
	cr_assert_eq(pos, b.len);
	buf_free(&b);
}
