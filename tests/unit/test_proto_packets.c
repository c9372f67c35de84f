/* Unit tests for src/proto/packets: OK / ERR / EOF parse and write, and the
 * classification of server payloads, with truncated and malformed input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/packet.h"
#include "proto/packets.h"

#define N(a)  (sizeof(a) / sizeof((a)[0]))
#define S(s)  (const uint8_t *)(s), sizeof(s) - 1
#define P41   PROTO_CLIENT_PROTOCOL_41
#define TIDB  (0x051BA6AFu | PROTO_CLIENT_SSL) /* TiDB's server capabilities */
#define TRACK (P41 | PROTO_CLIENT_SESSION_TRACK)
/* A case that must not parse (all other fields zero). */
#define BAD(nm, s, c)                                                                              \
	{                                                                                          \
		.name = nm, .p = (const uint8_t *)(s), .n = sizeof(s) - 1, .caps = c               \
	}

/* An exact-size heap copy, so that ASan reports any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	cr_assert(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

struct ok_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	uint32_t caps;
	bool ok; /* parses, using all n bytes */
	uint64_t affected, insert_id;
	uint16_t status, warnings;
	const char *info;
	const char *state; /* session state bytes, NULL when none */
	size_t state_len;
	bool canonical; /* the writer reproduces it byte for byte */
};

static const struct ok_case ok_cases[] = {
        {"insert", S("\x00\x01\x05\x02\x00\x00\x00"), TIDB, true, 1, 5, 2, 0, "", NULL, 0, true},
        {"update_info_lenenc",
         S("\x00\x01\x00\x03\x00\x00\x00"
           "\x28"
           "Rows matched: 1  Changed: 1  Warnings: 0"),
         TIDB, true, 1, 0, 3, 0, "Rows matched: 1  Changed: 1  Warnings: 0", NULL, 0, true},
        /* What MySQL's docs describe (string<EOF>) and some proxies send. */
        {"info_raw_tail", S("\x00\x03\x00\x02\x00\x00\x00Records: 3  Duplicates: 0  Warnings: 0"),
         TIDB, true, 3, 0, 2, 0, "Records: 3  Duplicates: 0  Warnings: 0", NULL, 0, false},
        {"lenenc_2byte", S("\x00\xfc\x10\x27\x00\x02\x00\x01\x00"), TIDB, true, 10000, 0, 2, 1, "",
         NULL, 0, true},
        {"lenenc_3byte_8byte",
         S("\x00\xfd\x00\x00\x01\xfe\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00"), TIDB, true,
         0x10000, 1ull << 32, 1, 0, "", NULL, 0, true},
        {"eof_ok_header", S("\xfe\x00\x00\x22\x00\x00\x00"), TIDB, true, 0, 0, 0x22, 0, "", NULL, 0,
         true},
        {"in_trans", S("\x00\x00\x00\x01\x00\x00\x00"), TIDB, true, 0, 0, 1, 0, "", NULL, 0, true},
        {"track_schema",
         S("\x00\x00\x00\x02\x40\x00\x00"
           "\x00"
           "\x07\x01\x05\x04"
           "test"),
         TRACK, true, 0, 0, 0x4002, 0, "", "\x01\x05\x04test", 7, true},
        {"track_no_info", S("\x00\x00\x00\x02\x00\x00\x00"), TRACK, true, 0, 0, 2, 0, "", NULL, 0,
         true},
        {"track_info",
         S("\x00\x01\x00\x02\x00\x00\x00\x03"
           "abc"),
         TRACK, true, 1, 0, 2, 0, "abc", NULL, 0, true},
        {"pre41_transactions", S("\x00\x01\x00\x02\x00"), PROTO_CLIENT_TRANSACTIONS, true, 1, 0, 2,
         0, "", NULL, 0, true},
        {"pre41_bare", S("\x00\x01\x00"), 0, true, 1, 0, 0, 0, "", NULL, 0, true},
        /* malformed */
        BAD("empty", "", TIDB),
        BAD("header_only", "\x00", TIDB),
        BAD("no_status", "\x00\x00\x00", TIDB),
        BAD("short_status", "\x00\x00\x00\x02", TIDB),
        BAD("short_warnings", "\x00\x00\x00\x02\x00\x00", TIDB),
        BAD("wrong_header", "\x01\x00\x00\x02\x00\x00\x00", TIDB),
        BAD("lenenc_ff", "\x00\xff\x00\x02\x00\x00\x00", TIDB),
        BAD("lenenc_null", "\x00\xfb\x00\x02\x00\x00\x00", TIDB),
        BAD("lenenc_cut", "\x00\xfc\x10", TIDB),
        BAD("track_info_cut",
            "\x00\x00\x00\x02\x00\x00\x00\x05"
            "ab",
            TRACK),
        BAD("track_state_missing", "\x00\x00\x00\x02\x40\x00\x00\x00", TRACK),
};

Test(proto_packets, ok_table)
{
	for (size_t i = 0; i < N(ok_cases); i++) {
		const struct ok_case *c = &ok_cases[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_ok ok;
		ssize_t rc = proto_parse_ok(p, c->n, c->caps, &ok);
		cr_assert_eq(rc, c->ok ? (ssize_t)c->n : -EPROTO, "%s: rc %zd", c->name, rc);
		if (rc >= 0) {
			cr_assert_eq(ok.affected_rows, c->affected, "%s", c->name);
			cr_assert_eq(ok.last_insert_id, c->insert_id, "%s", c->name);
			cr_assert_eq(ok.status, c->status, "%s", c->name);
			cr_assert_eq(ok.warnings, c->warnings, "%s", c->name);
			cr_assert_eq(ok.info_len, strlen(c->info), "%s", c->name);
			if (ok.info_len)
				cr_assert_eq(memcmp(ok.info, c->info, ok.info_len), 0, "%s",
				             c->name);
			cr_assert_eq(ok.session_state_len, c->state_len, "%s", c->name);
			if (c->state)
				cr_assert_eq(memcmp(ok.session_state, c->state, c->state_len), 0);

			struct buf b;
			buf_init(&b);
			uint8_t seq = 1;
			cr_assert_eq(proto_write_ok(&b, &seq, c->caps, &ok), 0);
			cr_assert_eq(seq, 2);
			cr_assert_eq(b.data[3], 1, "%s: seq in header", c->name);
			if (c->canonical) {
				cr_assert_eq(b.len, PROTO_HDR + c->n, "%s", c->name);
				cr_assert_eq(memcmp(b.data + PROTO_HDR, c->p, c->n), 0, "%s",
				             c->name);
			} else {
				struct proto_ok again;
				cr_assert_gt(proto_parse_ok(b.data + PROTO_HDR, b.len - PROTO_HDR,
				                            c->caps, &again),
				             0);
				cr_assert_eq(again.info_len, ok.info_len);
			}
			buf_free(&b);
		}
		free(p);
	}
}

/* Every prefix of a valid packet parses to an error or to a shorter packet,
 * and never reads past its end (ASan build). */
Test(proto_packets, ok_err_eof_prefixes)
{
	for (size_t i = 0; i < N(ok_cases); i++) {
		const struct ok_case *c = &ok_cases[i];
		for (size_t k = 0; k < c->n; k++) {
			uint8_t *p = dup_exact(c->p, k);
			struct proto_ok ok;
			struct proto_err e;
			struct proto_eof eof;
			ssize_t rc = proto_parse_ok(p, k, c->caps, &ok);
			cr_assert(rc < 0 || (size_t)rc <= k, "%s prefix %zu", c->name, k);
			/* The fixed part (up to the warnings) must be complete. */
			if (c->ok && (c->caps & P41) && k < 7)
				cr_assert_lt(rc, 0, "%s prefix %zu", c->name, k);
			rc = proto_parse_err(p, k, c->caps, &e);
			cr_assert(rc < 0 || (size_t)rc <= k);
			rc = proto_parse_eof(p, k, c->caps, &eof);
			cr_assert(rc < 0 || (size_t)rc <= k);
			free(p);
		}
	}
}

struct err_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	uint32_t caps;
	bool ok; /* parses, using all n bytes */
	uint16_t code;
	const char *state; /* "" when absent */
	const char *msg;
};

static const struct err_case err_cases[] = {
        {"no_such_table", S("\xff\x7a\x04#42S02Table 'test.t' doesn't exist"), TIDB, true, 1146,
         "42S02", "Table 'test.t' doesn't exist"},
        {"tidb_multi_stmt",
         S("\xff\xc2\x1f#HY000client has multi-statement capability disabled. Run SET GLOBAL "
           "tidb_multi_statement_mode='ON' after you understand the security risk"),
         TIDB, true, 8130, "HY000",
         "client has multi-statement capability disabled. Run SET GLOBAL "
         "tidb_multi_statement_mode='ON' after you understand the security risk"},
        /* Sent instead of a greeting, before any capability is known. */
        {"host_not_allowed",
         S("\xff\x6a\x04Host '10.0.0.1' is not allowed to connect to this MySQL server"), TIDB,
         true, 1130, "", "Host '10.0.0.1' is not allowed to connect to this MySQL server"},
        {"pre41_hash_is_text", S("\xff\x7a\x04#42S02x"), 0, true, 1146, "", "#42S02x"},
        {"no_message", S("\xff\x7a\x04"), TIDB, true, 1146, "", ""},
        {"state_no_message", S("\xff\x28\x04#HY000"), TIDB, true, 1064, "HY000", ""},
        BAD("empty", "", TIDB),
        BAD("header_only", "\xff", TIDB),
        BAD("half_code", "\xff\x7a", TIDB),
        BAD("state_cut", "\xff\x7a\x04#42S", TIDB),
        BAD("not_err", "\x00\x7a\x04", TIDB),
};

Test(proto_packets, err_table)
{
	for (size_t i = 0; i < N(err_cases); i++) {
		const struct err_case *c = &err_cases[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_err e;
		ssize_t rc = proto_parse_err(p, c->n, c->caps, &e);
		cr_assert_eq(rc, c->ok ? (ssize_t)c->n : -EPROTO, "%s: rc %zd", c->name, rc);
		if (rc >= 0) {
			cr_assert_eq(e.code, c->code, "%s", c->name);
			cr_assert_str_eq(e.sqlstate, c->state, "%s", c->name);
			cr_assert_eq(e.has_sqlstate, c->state[0] != 0);
			cr_assert_eq(e.msg_len, strlen(c->msg), "%s", c->name);
			cr_assert_eq(memcmp(e.msg, c->msg, e.msg_len), 0, "%s", c->name);
			/* Rewriting a parsed ERR gives the same bytes. */
			if (e.has_sqlstate || !(c->caps & P41)) {
				struct buf b;
				buf_init(&b);
				uint8_t seq = 0;
				cr_assert_eq(proto_write_err_msg(&b, &seq, c->caps, e.code,
				                                 e.has_sqlstate ? e.sqlstate : NULL,
				                                 e.msg, e.msg_len),
				             0);
				cr_assert_eq(b.len, PROTO_HDR + c->n, "%s", c->name);
				cr_assert_eq(memcmp(b.data + PROTO_HDR, c->p, c->n), 0, "%s",
				             c->name);
				buf_free(&b);
			}
		}
		for (size_t k = 0; k < c->n; k++) {
			uint8_t *q = dup_exact(c->p, k);
			rc = proto_parse_err(q, k, c->caps, &e);
			cr_assert(rc < 0 || (size_t)rc == k, "%s prefix %zu", c->name, k);
			free(q);
		}
		free(p);
	}
}

Test(proto_packets, err_write_format)
{
	struct buf b;
	buf_init(&b);
	uint8_t seq = 1;
	cr_assert_eq(proto_write_err(&b, &seq, TIDB, 1105, "HY000",
	                             "vectors have different dimensions: %d and %d", 3, 2),
	             0);
	const char want[] = "\xff\x51\x04#HY000vectors have different dimensions: 3 and 2";
	cr_assert_eq(b.len, PROTO_HDR + sizeof(want) - 1);
	cr_assert_eq(b.data[0], sizeof(want) - 1);
	cr_assert_eq(b.data[1] | b.data[2] | (b.data[3] ^ 1), 0);
	cr_assert_eq(memcmp(b.data + PROTO_HDR, want, sizeof(want) - 1), 0);
	cr_assert_eq(seq, 2);

	/* NULL state means HY000; no '#' state without PROTOCOL_41; a short
	 * state is padded rather than shifting the message. */
	buf_reset(&b);
	seq = 0;
	cr_assert_eq(proto_write_err(&b, &seq, TIDB, 1045, NULL, "%s", "denied"), 0);
	cr_assert_eq(memcmp(b.data + PROTO_HDR, "\xff\x15\x04#HY000denied", 15), 0);
	buf_reset(&b);
	cr_assert_eq(proto_write_err(&b, &seq, 0, 1045, "28000", "denied"), 0);
	cr_assert_eq(b.len, PROTO_HDR + 9);
	cr_assert_eq(memcmp(b.data + PROTO_HDR,
	                    "\xff\x15\x04"
	                    "denied",
	                    9),
	             0);
	buf_reset(&b);
	cr_assert_eq(proto_write_err(&b, &seq, P41, 1, "42", "x"), 0);
	cr_assert_eq(memcmp(b.data + PROTO_HDR, "\xff\x01\x00#42000x", 10), 0);
	buf_reset(&b);
	cr_assert_eq(proto_write_err(&b, &seq, P41, 1, "HY000", "%s", ""), 0);
	cr_assert_eq(b.len, PROTO_HDR + 9);
	buf_free(&b);
}

struct eof_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	uint32_t caps;
	bool ok; /* parses, using all n bytes */
	uint16_t warnings, status;
};

static const struct eof_case eof_cases[] = {
        {"autocommit", S("\xfe\x00\x00\x02\x00"), P41, true, 0, 2},
        {"more_results", S("\xfe\x01\x00\x0a\x00"), P41, true, 1, 0x0a},
        {"cursor", S("\xfe\x00\x00\x42\x00"), P41, true, 0, 0x42},
        {"pre41", S("\xfe"), 0, true, 0, 0},
        BAD("empty", "", P41),
        BAD("cut", "\xfe\x00\x00\x02", P41),
        BAD("header_only_41", "\xfe", P41),
        BAD("too_long_is_a_row", "\xfe\x00\x00\x02\x00\x00\x00\x00\x00", P41),
        BAD("not_eof", "\x00\x00\x00\x02\x00", P41),
};

Test(proto_packets, eof_table)
{
	for (size_t i = 0; i < N(eof_cases); i++) {
		const struct eof_case *c = &eof_cases[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_eof e;
		ssize_t rc = proto_parse_eof(p, c->n, c->caps, &e);
		cr_assert_eq(rc, c->ok ? (ssize_t)c->n : -EPROTO, "%s: rc %zd", c->name, rc);
		if (rc >= 0) {
			cr_assert_eq(e.warnings, c->warnings, "%s", c->name);
			cr_assert_eq(e.status, c->status, "%s", c->name);
			struct buf b;
			buf_init(&b);
			uint8_t seq = 3;
			cr_assert_eq(proto_write_eof(&b, &seq, c->caps, e.warnings, e.status), 0);
			cr_assert_eq(b.len, PROTO_HDR + c->n);
			cr_assert_eq(b.data[3], 3);
			cr_assert_eq(memcmp(b.data + PROTO_HDR, c->p, c->n), 0, "%s", c->name);
			buf_free(&b);
		}
		free(p);
	}
}

struct kind_case {
	uint8_t first;
	size_t n;
	bool deprecate;
	enum proto_kind kind;
};

static const struct kind_case kind_cases[] = {
        {0x00, 7, false, PROTO_KIND_OK},
        {0x00, 7, true, PROTO_KIND_OK},
        {0xff, 40, false, PROTO_KIND_ERR},
        {0xff, 40, true, PROTO_KIND_ERR},
        {0xfe, 1, false, PROTO_KIND_EOF},
        {0xfe, 5, false, PROTO_KIND_EOF},
        {0xfe, 8, false, PROTO_KIND_EOF},
        {0xfe, 9, false, PROTO_KIND_DATA},
        {0xfe, 0xFFFFFF + 9, false, PROTO_KIND_DATA},
        {0xfe, 7, true, PROTO_KIND_EOF_OK},
        {0xfe, 5, true, PROTO_KIND_EOF_OK},
        {0xfe, 0xFFFFFE, true, PROTO_KIND_EOF_OK},
        {0xfe, 0xFFFFFF, true, PROTO_KIND_DATA},
        {0xfe, 0xFFFFFF + 9, true, PROTO_KIND_DATA},
        {0xfb, 1, false, PROTO_KIND_DATA},
        {0xfb, 12, true, PROTO_KIND_DATA},
        {0x01, 2, false, PROTO_KIND_DATA},
        {0xfc, 300, true, PROTO_KIND_DATA},
        {0x00, 0, false, PROTO_KIND_DATA}, /* empty payload */
};

Test(proto_packets, classify_table)
{
	size_t max = 0xFFFFFF + 9;
	uint8_t *p = calloc(1, max);
	cr_assert(p);
	for (size_t i = 0; i < N(kind_cases); i++) {
		const struct kind_case *c = &kind_cases[i];
		p[0] = c->first;
		uint32_t caps = P41 | (c->deprecate ? PROTO_CLIENT_DEPRECATE_EOF : 0);
		cr_assert_eq(proto_classify(p, c->n, caps), c->kind, "case %zu", i);
	}
	free(p);
}

Test(proto_packets, write_rolls_back_nothing_on_success)
{
	/* Several packets in one buffer keep their sequence ids in order. */
	struct buf b;
	buf_init(&b);
	uint8_t seq = 0;
	struct proto_ok ok = {.header = 0, .status = 2};
	cr_assert_eq(proto_write_eof(&b, &seq, P41, 0, 2), 0);
	cr_assert_eq(proto_write_ok(&b, &seq, P41, &ok), 0);
	cr_assert_eq(proto_write_err(&b, &seq, P41, 1105, NULL, "x"), 0);
	cr_assert_eq(seq, 3);
	size_t pos = 0;
	for (int i = 0; i < 3; i++) {
		struct proto_pkt pk;
		size_t used = proto_read_packet(b.data + pos, b.len - pos, &pk);
		cr_assert_gt(used, 0);
		cr_assert_eq(pk.seq, i);
		pos += used;
	}
	cr_assert_eq(pos, b.len);
	buf_free(&b);
}
