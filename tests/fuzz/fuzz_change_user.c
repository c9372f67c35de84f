/* COM_CHANGE_USER, decoded for a client whose capabilities come from the
 * input's first 4 bytes. Every field must lie inside the payload, and the
 * fields written back in the same layout must decode the same. */
#include "fuzz.h"

#include <errno.h>

#include "proto/command.h"

static bool same(const void *a, size_t an, const void *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static int encode(struct buf *b, const struct proto_change_user *cu, uint32_t caps)
{
	int rc = wr_u8(b, PROTO_COM_CHANGE_USER);
	rc = rc ? rc : buf_append(b, cu->user, cu->user_len);
	rc = rc ? rc : wr_u8(b, 0);
	if (caps & PROTO_CLIENT_SECURE_CONNECTION) {
		rc = rc ? rc : wr_u8(b, (uint8_t)cu->auth_len);
		rc = rc ? rc : buf_append(b, cu->auth, cu->auth_len);
	} else {
		rc = rc ? rc : buf_append(b, cu->auth, cu->auth_len);
		rc = rc ? rc : wr_u8(b, 0);
	}
	if (cu->has_db) {
		rc = rc ? rc : buf_append(b, cu->db, cu->db_len);
		rc = rc ? rc : wr_u8(b, 0);
	}
	if (cu->has_charset)
		rc = rc ? rc : wr_u16(b, cu->charset);
	if (cu->has_plugin) {
		rc = rc ? rc : buf_append(b, cu->plugin, cu->plugin_len);
		rc = rc ? rc : wr_u8(b, 0);
	}
	if (cu->has_attrs)
		rc = rc ? rc : wr_lenenc_str(b, cu->attrs, cu->attrs_len);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint32_t caps = fuzz_u32(&in);
	const uint8_t *p = in.p;
	size_t n = in.n;
	struct proto_change_user cu, cu2;
	int rc = proto_parse_change_user(p, n, caps, &cu);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EPROTO);
		return 0;
	}
	FUZZ_CHECK(rc == 0 && cu.used <= n && cu.used >= 2);
	FUZZ_CHECK(fuzz_within(p, cu.used, cu.user, cu.user_len + 1));
	FUZZ_CHECK(memchr(cu.user, 0, cu.user_len) == NULL);
	FUZZ_CHECK(fuzz_within(p, cu.used, cu.auth, cu.auth_len));
	FUZZ_CHECK(!cu.has_db || fuzz_within(p, cu.used, cu.db, cu.db_len + 1));
	FUZZ_CHECK(!cu.has_plugin || fuzz_within(p, cu.used, cu.plugin, cu.plugin_len + 1));
	FUZZ_CHECK(!cu.has_attrs || fuzz_within(p, cu.used, cu.attrs, cu.attrs_len));
	FUZZ_CHECK(!cu.has_charset || (caps & PROTO_CLIENT_PROTOCOL_41));
	FUZZ_CHECK(!cu.has_plugin || (caps & PROTO_CLIENT_PLUGIN_AUTH));
	FUZZ_CHECK(!cu.has_attrs || (caps & PROTO_CLIENT_CONNECT_ATTRS));
	/* A later field is read only after an earlier one was there. */
	FUZZ_CHECK(!cu.has_charset || cu.has_db);
	FUZZ_CHECK(!cu.has_plugin || cu.has_db);
	FUZZ_CHECK(!cu.has_attrs || cu.has_db);

	struct buf b;
	buf_init(&b);
	FUZZ_CHECK(encode(&b, &cu, caps) == 0);
	rc = proto_parse_change_user(b.data, b.len, caps, &cu2);
	FUZZ_CHECK(rc == 0 && cu2.used == b.len && b.len <= cu.used);
	FUZZ_CHECK(same(cu.user, cu.user_len, cu2.user, cu2.user_len));
	FUZZ_CHECK(same(cu.auth, cu.auth_len, cu2.auth, cu2.auth_len));
	FUZZ_CHECK(cu.has_db == cu2.has_db && same(cu.db, cu.db_len, cu2.db, cu2.db_len));
	FUZZ_CHECK(cu.has_charset == cu2.has_charset && cu.charset == cu2.charset);
	FUZZ_CHECK(cu.has_plugin == cu2.has_plugin &&
	           same(cu.plugin, cu.plugin_len, cu2.plugin, cu2.plugin_len));
	FUZZ_CHECK(cu.has_attrs == cu2.has_attrs &&
	           same(cu.attrs, cu.attrs_len, cu2.attrs, cu2.attrs_len));
	buf_free(&b);
	return 0;
}
