/* Server packets of the connection phase (server to vecgate), dispatched on
 * their first byte as the pool does: the greeting (Initial Handshake v10),
 * AuthSwitchRequest, AuthMoreData and the caching_sha2 status messages, and
 * an ERR refusing the connection. A parsed greeting is written again with
 * proto_write_greeting: that must parse back to the same fields, and write
 * the same bytes again. */
#include "fuzz.h"

#include <errno.h>

#include "proto/handshake.h"
#include "proto/packet.h"
#include "proto/packets.h"

static const uint8_t *payload_of(const struct buf *b, size_t *n)
{
	struct proto_pkt pk;
	FUZZ_CHECK(proto_read_packet(b->data, b->len, &pk) == b->len);
	*n = pk.len;
	return pk.payload;
}

static void check_greeting_same(const struct proto_greeting *a, const struct proto_greeting *b)
{
	FUZZ_CHECK(a->protocol_version == b->protocol_version && a->conn_id == b->conn_id);
	FUZZ_CHECK(a->server_version_len == b->server_version_len &&
	           memcmp(a->server_version, b->server_version, a->server_version_len) == 0);
	FUZZ_CHECK(a->caps == b->caps && a->charset == b->charset && a->status == b->status);
	FUZZ_CHECK(a->mariadb_caps == b->mariadb_caps);
	FUZZ_CHECK(a->salt_len == b->salt_len && memcmp(a->salt, b->salt, a->salt_len) == 0);
	FUZZ_CHECK(a->plugin_len == b->plugin_len &&
	           (a->plugin_len == 0 || memcmp(a->plugin, b->plugin, a->plugin_len) == 0));
}

static void greeting(const uint8_t *p, size_t n)
{
	struct proto_greeting g, g2, g3;
	ssize_t rc = proto_parse_greeting(p, n, &g);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EPROTO || rc == -EPROTONOSUPPORT || rc == -ECONNREFUSED);
		return;
	}
	FUZZ_CHECK((size_t)rc <= n);
	FUZZ_CHECK(g.salt_len >= 8 && g.salt_len <= PROTO_SALT_MAX);
	FUZZ_CHECK(fuzz_within(p, n, g.server_version, g.server_version_len + 1));
	FUZZ_CHECK(g.plugin_len == 0 || fuzz_within(p, n, g.plugin, g.plugin_len + 1));

	struct buf w1, w2;
	buf_init(&w1);
	buf_init(&w2);
	uint8_t seq = 0;
	int wrc = proto_write_greeting(&w1, &seq, &g);
	if (wrc == 0) {
		size_t n1, n2;
		const uint8_t *p1 = payload_of(&w1, &n1);
		/* Without CLIENT_PLUGIN_AUTH the writer sends no auth data length,
		 * so part 2 of the salt is read as 13 bytes: a longer salt cannot
		 * come back whole (its tail is left over), a 13-byte one leaves
		 * the NUL written after it, and a 13-byte one ending in a zero
		 * byte loses that byte (it reads as the terminator). */
		bool salt_kept = (g.caps & PROTO_CLIENT_PLUGIN_AUTH) || g.salt_len < 8 + 13 ||
		                 (g.salt_len == 8 + 13 && g.salt[8 + 12] != 0);
		if (!(g.caps & PROTO_CLIENT_SECURE_CONNECTION))
			salt_kept = g.salt_len == 8;
		rc = proto_parse_greeting(p1, n1, &g2);
		FUZZ_CHECK(rc > 0 && (size_t)rc <= n1);
		FUZZ_CHECK(!salt_kept || n1 - (size_t)rc <= 1);
		if (salt_kept)
			check_greeting_same(&g, &g2);
		seq = 0;
		FUZZ_CHECK(proto_write_greeting(&w2, &seq, &g2) == 0);
		p1 = payload_of(&w1, &n1);
		const uint8_t *p2 = payload_of(&w2, &n2);
		if (salt_kept)
			FUZZ_CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
		rc = proto_parse_greeting(p2, n2, &g3);
		FUZZ_CHECK(rc > 0 && (size_t)rc <= n2);
		check_greeting_same(&g2, &g3);
	} else {
		FUZZ_CHECK(wrc == -EINVAL && g.salt_len > PROTO_SALT_MAX - 1);
	}
	buf_free(&w1);
	buf_free(&w2);
}

static void auth_switch(const uint8_t *p, size_t n)
{
	struct proto_auth_switch sw;
	ssize_t rc = proto_parse_auth_switch(p, n, &sw);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EPROTO);
		return;
	}
	FUZZ_CHECK((size_t)rc == n);
	FUZZ_CHECK(sw.plugin != NULL && strlen(sw.plugin) == sw.plugin_len);
	FUZZ_CHECK(fuzz_within(p, n, sw.data, sw.data_len));
	if (n == 1)
		return;
	/* The plugin name was NUL-terminated in the payload: the writer sends
	 * the same bytes back. */
	struct buf w;
	buf_init(&w);
	uint8_t seq = 2;
	FUZZ_CHECK(proto_write_auth_switch(&w, &seq, sw.plugin, sw.data, sw.data_len) == 0);
	size_t wn;
	const uint8_t *wp = payload_of(&w, &wn);
	FUZZ_CHECK(wn == n && memcmp(wp, p, n) == 0);
	buf_free(&w);
}

static void auth_more(const uint8_t *p, size_t n)
{
	const uint8_t *d;
	size_t dn;
	ssize_t rc = proto_parse_auth_more(p, n, &d, &dn);
	enum proto_sha2_msg m = proto_sha2_message(p, n);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EPROTO && m == PROTO_SHA2_MSG_NONE);
		return;
	}
	FUZZ_CHECK((size_t)rc == n && d == p + 1 && dn == n - 1);
	FUZZ_CHECK(m == PROTO_SHA2_MSG_NONE || n == 2);
	struct buf w;
	buf_init(&w);
	uint8_t seq = 3;
	FUZZ_CHECK(proto_write_auth_more(&w, &seq, d, dn) == 0);
	size_t wn;
	const uint8_t *wp = payload_of(&w, &wn);
	FUZZ_CHECK(wn == n && memcmp(wp, p, n) == 0);
	buf_free(&w);
}

static void err_packet(const uint8_t *p, size_t n, uint32_t caps)
{
	struct proto_err e;
	ssize_t rc = proto_parse_err(p, n, caps, &e);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EPROTO);
		return;
	}
	FUZZ_CHECK((size_t)rc <= n);
	/* The state is copied as sent (a NUL in it is the server's business),
	 * and always NUL-terminated. */
	FUZZ_CHECK(e.sqlstate[5] == 0 && (e.has_sqlstate || e.sqlstate[0] == 0));
	FUZZ_CHECK(fuzz_within(p, n, e.msg, e.msg_len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0]) {
	case 0x0a:
		greeting(data, size);
		break;
	case PROTO_AUTH_SWITCH:
		auth_switch(data, size);
		break;
	case PROTO_AUTH_MORE_DATA:
		auth_more(data, size);
		break;
	case PROTO_ERR:
		err_packet(data, size, 0);
		err_packet(data, size, PROTO_CLIENT_PROTOCOL_41);
		/* The greeting parser hands a refusal over to the ERR parser. */
		greeting(data, size);
		break;
	default:
		greeting(data, size);
		auth_more(data, size);
		break;
	}
	return 0;
}
