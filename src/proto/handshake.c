/* Greeting, handshake response, SSLRequest, auth switch and auth more data. */
#include "proto/handshake.h"

#include <errno.h>
#include <string.h>

#include "proto/packet.h"

#define GREETING_RESERVED 10
#define RESPONSE_FILLER   23
#define SALT1_LEN         8
#define SALT2_MIN         13 /* part 2 is at least 12 bytes and a NUL */

/* Appends s[0, n) and a NUL; a NUL inside would end the field early. */
static int put_nulstr(struct buf *b, const char *s, size_t n)
{
	if (n > 0 && memchr(s, 0, n))
		return -EINVAL;
	int rc = buf_append(b, s, n);
	return rc ? rc : wr_u8(b, 0);
}

static int put_zeros(struct buf *b, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc)
		return rc;
	memset(b->data + b->len, 0, n);
	b->len += n;
	return 0;
}

static bool get_nulstr(struct rd *r, const char **s, size_t *n)
{
	const uint8_t *p;
	if (!rd_nulstr(r, &p, n))
		return false;
	*s = (const char *)p;
	return true;
}

ssize_t proto_parse_greeting(const uint8_t *p, size_t n, struct proto_greeting *g)
{
	struct rd r = rd_make(p, n);
	const uint8_t *part, *reserved;
	uint16_t lo, hi;
	uint8_t filler;

	memset(g, 0, sizeof(*g));
	if (!rd_u8(&r, &g->protocol_version))
		return -EPROTO;
	if (g->protocol_version == PROTO_ERR)
		return -ECONNREFUSED;
	if (g->protocol_version != PROTO_HANDSHAKE_V10)
		return -EPROTONOSUPPORT;
	if (!get_nulstr(&r, &g->server_version, &g->server_version_len) ||
	    !rd_u32(&r, &g->conn_id) || !rd_bytes(&r, SALT1_LEN, &part) || !rd_u8(&r, &filler) ||
	    !rd_u16(&r, &lo))
		return -EPROTO;
	memcpy(g->salt, part, SALT1_LEN);
	g->salt_len = SALT1_LEN;
	if (rd_left(&r) == 0)
		return -EPROTONOSUPPORT;
	if (!rd_u8(&r, &g->charset) || !rd_u16(&r, &g->status) || !rd_u16(&r, &hi) ||
	    !rd_u8(&r, &g->auth_data_len) || !rd_bytes(&r, GREETING_RESERVED, &reserved))
		return -EPROTO;
	g->caps = (uint32_t)lo | (uint32_t)hi << 16;
	g->mariadb_caps = (uint32_t)reserved[6] | (uint32_t)reserved[7] << 8 |
	                  (uint32_t)reserved[8] << 16 | (uint32_t)reserved[9] << 24;
	if (g->caps & PROTO_CLIENT_SECURE_CONNECTION) {
		size_t len2 = g->auth_data_len > SALT1_LEN + SALT2_MIN
		                      ? (size_t)g->auth_data_len - SALT1_LEN
		                      : SALT2_MIN;
		if (!rd_bytes(&r, len2, &part))
			return -EPROTO;
		/* The NUL that ends part 2 is a terminator, not salt. */
		if (part[len2 - 1] == 0)
			len2--;
		memcpy(g->salt + SALT1_LEN, part, len2);
		g->salt_len += len2;
	}
	if ((g->caps & PROTO_CLIENT_PLUGIN_AUTH) && !get_nulstr(&r, &g->plugin, &g->plugin_len))
		return -EPROTO;
	return (ssize_t)(r.p - p);
}

int proto_write_greeting(struct buf *b, uint8_t *seq, const struct proto_greeting *g)
{
	if (g->salt_len < SALT1_LEN || g->salt_len > PROTO_SALT_MAX - 1)
		return -EINVAL;
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	size_t len2 = g->salt_len - SALT1_LEN;
	bool plugin = g->caps & PROTO_CLIENT_PLUGIN_AUTH;
	int rc = wr_u8(b, g->protocol_version);
	if (!rc)
		rc = put_nulstr(b, g->server_version, g->server_version_len);
	if (!rc)
		rc = wr_u32(b, g->conn_id);
	if (!rc)
		rc = buf_append(b, g->salt, SALT1_LEN);
	if (!rc)
		rc = wr_u8(b, 0);
	if (!rc)
		rc = wr_u16(b, (uint16_t)g->caps);
	if (!rc)
		rc = wr_u8(b, g->charset);
	if (!rc)
		rc = wr_u16(b, g->status);
	if (!rc)
		rc = wr_u16(b, (uint16_t)(g->caps >> 16));
	if (!rc)
		rc = wr_u8(b, plugin ? (uint8_t)(g->salt_len + 1) : 0);
	if (!rc)
		rc = put_zeros(b, GREETING_RESERVED - 4);
	if (!rc)
		rc = wr_u32(b, g->mariadb_caps);
	if (!rc && (g->caps & PROTO_CLIENT_SECURE_CONNECTION)) {
		rc = buf_append(b, g->salt + SALT1_LEN, len2);
		if (!rc)
			rc = put_zeros(b, len2 + 1 < SALT2_MIN ? SALT2_MIN - len2 : 1);
	}
	if (!rc && plugin)
		rc = put_nulstr(b, g->plugin, g->plugin_len);
	return proto_pkt_finish(b, start, seq, rc);
}

ssize_t proto_parse_hs_response(const uint8_t *p, size_t n, struct proto_hs_response *r)
{
	struct rd d = rd_make(p, n);
	const uint8_t *filler;
	uint64_t len;

	memset(r, 0, sizeof(*r));
	if (n >= 2 && !(((uint32_t)p[0] | (uint32_t)p[1] << 8) & PROTO_CLIENT_PROTOCOL_41))
		return -EPROTONOSUPPORT;
	if (!rd_u32(&d, &r->caps) || !rd_u32(&d, &r->max_packet) || !rd_u8(&d, &r->charset) ||
	    !rd_bytes(&d, RESPONSE_FILLER, &filler))
		return -EPROTO;
	r->mariadb_caps = (uint32_t)filler[19] | (uint32_t)filler[20] << 8 |
	                  (uint32_t)filler[21] << 16 | (uint32_t)filler[22] << 24;
	if (rd_left(&d) == 0) {
		if (!(r->caps & PROTO_CLIENT_SSL))
			return -EPROTO;
		r->ssl_request = true;
		return PROTO_SSL_REQUEST_LEN;
	}
	if (!get_nulstr(&d, &r->user, &r->user_len))
		return -EPROTO;
	if (r->caps & PROTO_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
		if (!rd_lenenc_str(&d, &r->auth, &len))
			return -EPROTO;
		r->auth_len = (size_t)len;
	} else if (r->caps & PROTO_CLIENT_SECURE_CONNECTION) {
		uint8_t l;
		if (!rd_u8(&d, &l) || !rd_bytes(&d, l, &r->auth))
			return -EPROTO;
		r->auth_len = l;
	} else if (!rd_nulstr(&d, &r->auth, &r->auth_len)) {
		return -EPROTO;
	}

	/* From here on the packet may end before a flagged field: stop there. */
	if (r->caps & PROTO_CLIENT_CONNECT_WITH_DB) {
		if (rd_left(&d) == 0)
			return (ssize_t)n;
		if (!get_nulstr(&d, &r->db, &r->db_len))
			return -EPROTO;
		r->has_db = true;
	}
	if (r->caps & PROTO_CLIENT_PLUGIN_AUTH) {
		if (rd_left(&d) == 0)
			return (ssize_t)n;
		if (!get_nulstr(&d, &r->plugin, &r->plugin_len))
			return -EPROTO;
		r->has_plugin = true;
	}
	if (r->caps & PROTO_CLIENT_CONNECT_ATTRS) {
		if (rd_left(&d) == 0)
			return (ssize_t)n;
		if (!rd_lenenc_str(&d, &r->attrs, &len))
			return -EPROTO;
		r->attrs_len = (size_t)len;
		r->has_attrs = true;
	}
	/* TiDB treats a missing level byte as a malformed packet. */
	if (r->caps & PROTO_CLIENT_ZSTD_COMPRESSION_ALGORITHM) {
		if (!rd_u8(&d, &r->zstd_level))
			return -EPROTO;
		r->has_zstd_level = true;
	}
	return (ssize_t)(d.p - p);
}

static int put_head(struct buf *b, uint32_t caps, uint32_t max_packet, uint8_t charset,
                    uint32_t mariadb_caps)
{
	int rc = wr_u32(b, caps);
	if (!rc)
		rc = wr_u32(b, max_packet);
	if (!rc)
		rc = wr_u8(b, charset);
	if (!rc)
		rc = put_zeros(b, RESPONSE_FILLER - 4);
	return rc ? rc : wr_u32(b, mariadb_caps);
}

static int put_auth(struct buf *b, const struct proto_hs_response *r)
{
	if (r->caps & PROTO_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
		return wr_lenenc_str(b, r->auth, r->auth_len);
	if (r->caps & PROTO_CLIENT_SECURE_CONNECTION) {
		if (r->auth_len > 0xFF)
			return -EINVAL;
		int rc = wr_u8(b, (uint8_t)r->auth_len);
		return rc ? rc : buf_append(b, r->auth, r->auth_len);
	}
	return put_nulstr(b, (const char *)r->auth, r->auth_len);
}

int proto_write_hs_response(struct buf *b, uint8_t *seq, const struct proto_hs_response *r)
{
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = put_head(b, r->caps, r->max_packet, r->charset, r->mariadb_caps);
	if (rc || r->ssl_request)
		return proto_pkt_finish(b, start, seq, rc);

	/* A field the flags announce must be on the wire if a later one is. */
	uint32_t c = r->caps;
	bool zstd = (c & PROTO_CLIENT_ZSTD_COMPRESSION_ALGORITHM) && r->has_zstd_level;
	bool attrs = (c & PROTO_CLIENT_CONNECT_ATTRS) && (r->has_attrs || zstd);
	bool plugin = (c & PROTO_CLIENT_PLUGIN_AUTH) && (r->has_plugin || attrs || zstd);
	bool db = (c & PROTO_CLIENT_CONNECT_WITH_DB) && (r->has_db || plugin || attrs || zstd);

	rc = put_nulstr(b, r->user, r->user_len);
	if (!rc)
		rc = put_auth(b, r);
	if (!rc && db)
		rc = put_nulstr(b, r->db, r->has_db ? r->db_len : 0);
	if (!rc && plugin)
		rc = put_nulstr(b, r->plugin, r->has_plugin ? r->plugin_len : 0);
	if (!rc && attrs)
		rc = wr_lenenc_str(b, r->attrs, r->has_attrs ? r->attrs_len : 0);
	if (!rc && zstd)
		rc = wr_u8(b, r->zstd_level);
	return proto_pkt_finish(b, start, seq, rc);
}

int proto_write_ssl_request(struct buf *b, uint8_t *seq, uint32_t caps, uint32_t max_packet,
                            uint8_t charset)
{
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = put_head(b, caps | PROTO_CLIENT_SSL, max_packet, charset, 0);
	return proto_pkt_finish(b, start, seq, rc);
}

ssize_t proto_parse_auth_switch(const uint8_t *p, size_t n, struct proto_auth_switch *sw)
{
	struct rd r = rd_make(p, n);
	uint8_t h;
	memset(sw, 0, sizeof(*sw));
	if (!rd_u8(&r, &h) || h != PROTO_AUTH_SWITCH)
		return -EPROTO;
	if (rd_left(&r) == 0) {
		sw->plugin = "";
		return (ssize_t)n;
	}
	if (!get_nulstr(&r, &sw->plugin, &sw->plugin_len))
		return -EPROTO;
	sw->data = r.p;
	sw->data_len = rd_left(&r);
	return (ssize_t)n;
}

int proto_write_auth_switch(struct buf *b, uint8_t *seq, const char *plugin, const void *data,
                            size_t data_len)
{
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = wr_u8(b, PROTO_AUTH_SWITCH);
	if (!rc)
		rc = put_nulstr(b, plugin, strlen(plugin));
	if (!rc)
		rc = buf_append(b, data, data_len);
	return proto_pkt_finish(b, start, seq, rc);
}

ssize_t proto_parse_auth_more(const uint8_t *p, size_t n, const uint8_t **data, size_t *data_len)
{
	if (n < 1 || p[0] != PROTO_AUTH_MORE_DATA)
		return -EPROTO;
	*data = p + 1;
	*data_len = n - 1;
	return (ssize_t)n;
}

int proto_write_auth_more(struct buf *b, uint8_t *seq, const void *data, size_t data_len)
{
	ssize_t start = proto_pkt_begin(b);
	if (start < 0)
		return (int)start;
	int rc = wr_u8(b, PROTO_AUTH_MORE_DATA);
	if (!rc)
		rc = buf_append(b, data, data_len);
	return proto_pkt_finish(b, start, seq, rc);
}

enum proto_sha2_msg proto_sha2_message(const uint8_t *p, size_t n)
{
	/* Exactly two bytes: a PEM key after 0x01 is always longer. */
	if (n != 2 || p[0] != PROTO_AUTH_MORE_DATA)
		return PROTO_SHA2_MSG_NONE;
	if (p[1] == PROTO_SHA2_FAST_AUTH_SUCCESS)
		return PROTO_SHA2_MSG_FAST_OK;
	if (p[1] == PROTO_SHA2_PERFORM_FULL_AUTH)
		return PROTO_SHA2_MSG_FULL_AUTH;
	return PROTO_SHA2_MSG_NONE;
}
