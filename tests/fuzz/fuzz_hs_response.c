/* The client's HandshakeResponse41 or SSLRequest (client to vecgate), as
 * proto_parse_hs_response reads it. A parsed response is written again with
 * proto_write_hs_response: that must parse, give the same fields, and be
 * written the same way a second time (the writer's output is its own fixed
 * point, so a relayed response with rewritten capabilities stays stable). */
#include "fuzz.h"

#include <errno.h>

#include "proto/handshake.h"
#include "proto/packet.h"

static bool same_str(const void *a, size_t an, const void *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* The fields a rewrite keeps: the flagged optional fields the writer wrote
 * (present, maybe empty where a later one forced them out). */
static void check_same(const struct proto_hs_response *a, const struct proto_hs_response *b)
{
	FUZZ_CHECK(a->caps == b->caps && a->max_packet == b->max_packet &&
	           a->charset == b->charset && a->mariadb_caps == b->mariadb_caps);
	FUZZ_CHECK(a->ssl_request == b->ssl_request);
	if (a->ssl_request)
		return;
	FUZZ_CHECK(same_str(a->user, a->user_len, b->user, b->user_len));
	FUZZ_CHECK(same_str(a->auth, a->auth_len, b->auth, b->auth_len));
	FUZZ_CHECK(a->has_db == b->has_db && same_str(a->db, a->db_len, b->db, b->db_len));
	FUZZ_CHECK(a->has_plugin == b->has_plugin &&
	           same_str(a->plugin, a->plugin_len, b->plugin, b->plugin_len));
	FUZZ_CHECK(a->has_attrs == b->has_attrs &&
	           same_str(a->attrs, a->attrs_len, b->attrs, b->attrs_len));
	FUZZ_CHECK(a->has_zstd_level == b->has_zstd_level && a->zstd_level == b->zstd_level);
}

/* Parses the payload of the single packet in b. */
static ssize_t reparse(const struct buf *b, struct proto_hs_response *r)
{
	struct proto_pkt pk;
	size_t used = proto_read_packet(b->data, b->len, &pk);
	FUZZ_CHECK(used == b->len);
	ssize_t rc = proto_parse_hs_response(pk.payload, pk.len, r);
	FUZZ_CHECK(rc > 0 && (size_t)rc == pk.len);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_hs_response r, r2, r3;
	ssize_t rc = proto_parse_hs_response(data, size, &r);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EPROTO || rc == -EPROTONOSUPPORT);
		return 0;
	}
	FUZZ_CHECK(rc > 0 && (size_t)rc <= size);
	FUZZ_CHECK(r.caps & PROTO_CLIENT_PROTOCOL_41);
	if (r.ssl_request) {
		FUZZ_CHECK(rc == PROTO_SSL_REQUEST_LEN && (r.caps & PROTO_CLIENT_SSL));
	} else {
		FUZZ_CHECK(fuzz_within(data, size, r.user, r.user_len + 1));
		FUZZ_CHECK(fuzz_within(data, size, r.auth, r.auth_len));
		FUZZ_CHECK(!r.has_db || fuzz_within(data, size, r.db, r.db_len + 1));
		FUZZ_CHECK(!r.has_plugin || fuzz_within(data, size, r.plugin, r.plugin_len + 1));
		FUZZ_CHECK(!r.has_attrs || fuzz_within(data, size, r.attrs, r.attrs_len));
		FUZZ_CHECK(memchr(r.user, 0, r.user_len) == NULL);
	}

	struct buf w1, w2;
	buf_init(&w1);
	buf_init(&w2);
	uint8_t seq = 1;
	int wrc = proto_write_hs_response(&w1, &seq, &r);
	if (wrc == 0) {
		FUZZ_CHECK(seq == 2);
		reparse(&w1, &r2);
		/* Fields the writer had to put out before a later one come back
		 * present and empty; everything else is as parsed. */
		struct proto_hs_response want = r;
		if (!r.ssl_request) {
			if (r2.has_db && !r.has_db)
				want.has_db = true, want.db = "", want.db_len = 0;
			if (r2.has_plugin && !r.has_plugin)
				want.has_plugin = true, want.plugin = "", want.plugin_len = 0;
			if (r2.has_attrs && !r.has_attrs)
				want.has_attrs = true, want.attrs = NULL, want.attrs_len = 0;
		}
		check_same(&want, &r2);
		seq = 1;
		FUZZ_CHECK(proto_write_hs_response(&w2, &seq, &r2) == 0);
		FUZZ_CHECK(w2.len == w1.len && memcmp(w1.data, w2.data, w1.len) == 0);
		reparse(&w2, &r3);
		check_same(&r2, &r3);
	} else {
		/* Only auth data that a 1-byte length cannot carry, or a NUL
		 * where the NUL-terminated form cannot hold it, is refused. */
		FUZZ_CHECK(wrc == -EINVAL);
		FUZZ_CHECK(!(r.caps & PROTO_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA));
		FUZZ_CHECK(r.caps & PROTO_CLIENT_SECURE_CONNECTION
		                   ? r.auth_len > 0xFF
		                   : memchr(r.auth, 0, r.auth_len) != NULL);
	}
	buf_free(&w1);
	buf_free(&w2);
	return 0;
}
