/* Connection phase messages: the server greeting (Initial Handshake v10),
 * the client's HandshakeResponse41 and SSLRequest, AuthSwitchRequest and
 * AuthMoreData (caching_sha2_password fast / full auth). Parse and write. */
#ifndef VECGATE_PROTO_HANDSHAKE_H
#define VECGATE_PROTO_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "proto/mysql.h"

/* Largest salt a greeting can carry: 8 bytes + up to 247 in part 2. */
#define PROTO_SALT_MAX 255
/* The SSLRequest is the first 32 bytes of a HandshakeResponse41. */
#define PROTO_SSL_REQUEST_LEN 32

struct proto_greeting {
	uint8_t protocol_version;   /* 10 */
	const char *server_version; /* NUL-terminated in the payload */
	size_t server_version_len;
	uint32_t conn_id;
	/* Part 1 (8 bytes) and part 2 joined, without part 2's trailing NUL:
	 * 20 bytes from MySQL, MariaDB and TiDB. */
	uint8_t salt[PROTO_SALT_MAX];
	size_t salt_len;
	uint32_t caps; /* lower and upper halves joined */
	uint8_t charset;
	uint16_t status;
	uint8_t auth_data_len; /* as received; the writer derives it from salt_len */
	/* The last 4 of the 10 reserved bytes: MariaDB's extended capabilities
	 * when caps lacks PROTO_CLIENT_MYSQL; zero from MySQL and TiDB. */
	uint32_t mariadb_caps;
	const char *plugin; /* with CLIENT_PLUGIN_AUTH; NUL-terminated in the payload */
	size_t plugin_len;
};

/* Parses a greeting payload into g (strings point into p). Returns n, or
 * -ECONNREFUSED when the payload is an ERR (a server refusing the connection
 * sends one instead of a greeting; parse it with proto_parse_err),
 * -EPROTONOSUPPORT for a protocol version other than 10 or a pre-4.1 greeting
 * that ends after the lower capability flags, -EPROTO when malformed. Part 2
 * of the salt is max(13, auth_data_len - 8) bytes, the last one a NUL that is
 * not part of the salt, the way libmysqlclient and PyMySQL read it. */
ssize_t proto_parse_greeting(const uint8_t *p, size_t n, struct proto_greeting *g) MUST_CHECK;

/* Appends a greeting packet with sequence id *seq (normally 0). Writes salt
 * part 2 followed by a NUL (padded with zeros to 13 bytes), auth_data_len =
 * salt_len + 1 with CLIENT_PLUGIN_AUTH (else 0), 6 zero reserved bytes and
 * mariadb_caps; so a TiDB, MySQL or MariaDB greeting is rewritten byte for
 * byte. 0, -EINVAL (salt shorter than 8 bytes, NUL inside a string) or
 * -ENOMEM. */
int proto_write_greeting(struct buf *b, uint8_t *seq, const struct proto_greeting *g) MUST_CHECK;

/* A HandshakeResponse41, or the SSLRequest that precedes it under TLS. */
struct proto_hs_response {
	uint32_t caps;
	uint32_t max_packet;
	uint8_t charset;
	/* The last 4 of the 23 filler bytes: MariaDB's extended capabilities
	 * when caps lacks PROTO_CLIENT_MYSQL. */
	uint32_t mariadb_caps;
	/* The payload was a 32-byte SSLRequest: the fields below are unset. */
	bool ssl_request;
	const char *user; /* NUL-terminated in the payload */
	size_t user_len;
	const uint8_t *auth;
	size_t auth_len;
	/* The optional fields are present when their capability is set, except
	 * that (as MySQL and TiDB allow) the packet may end before db, plugin or
	 * attrs: has_* then says it did, and the writer reproduces that. */
	bool has_db;
	const char *db; /* NUL-terminated in the payload */
	size_t db_len;
	bool has_plugin;
	const char *plugin; /* NUL-terminated in the payload */
	size_t plugin_len;
	bool has_attrs;
	const uint8_t *attrs; /* raw lenenc key/value pairs, without the block's length */
	size_t attrs_len;
	bool has_zstd_level;
	uint8_t zstd_level;
};

/* Parses a HandshakeResponse41 or SSLRequest payload into r (pointers into
 * p). The auth data is read as CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA (lenenc
 * length) or else CLIENT_SECURE_CONNECTION (1-byte length) or else
 * NUL-terminated. Returns the bytes used (32 for an SSLRequest; trailing bytes
 * after the last field are ignored), -EPROTONOSUPPORT without
 * CLIENT_PROTOCOL_41 (TiDB refuses such clients), -EPROTO when malformed. */
ssize_t proto_parse_hs_response(const uint8_t *p, size_t n, struct proto_hs_response *r) MUST_CHECK;

/* Appends r as a packet with sequence id *seq: the 32-byte SSLRequest when
 * r->ssl_request, else the whole response laid out for r->caps (so a relayed
 * response can have its capabilities rewritten: the auth data is re-encoded
 * for the flags, fields whose flag is cleared are dropped, a field whose flag
 * is set but that is absent is written empty when a later field follows).
 * Unchanged, a parsed response is rewritten byte for byte. 0, -EINVAL (auth
 * data too long for a 1-byte length, or a NUL where a NUL ends the field), or
 * -ENOMEM. */
int proto_write_hs_response(struct buf *b, uint8_t *seq,
                            const struct proto_hs_response *r) MUST_CHECK;

/* Appends a 32-byte SSLRequest (CLIENT_SSL is added to caps). */
int proto_write_ssl_request(struct buf *b, uint8_t *seq, uint32_t caps, uint32_t max_packet,
                            uint8_t charset) MUST_CHECK;

/* AuthSwitchRequest: 0xFE, plugin name, NUL, plugin data (for the password
 * plugins MySQL and TiDB send the 20-byte salt and a NUL: data keeps it). */
struct proto_auth_switch {
	const char *plugin; /* NUL-terminated in the payload */
	size_t plugin_len;
	const uint8_t *data;
	size_t data_len;
};

/* Returns n or -EPROTO. A lone 0xFE (the pre-4.1 "use the old password"
 * request) parses with an empty plugin and no data. */
ssize_t proto_parse_auth_switch(const uint8_t *p, size_t n,
                                struct proto_auth_switch *sw) MUST_CHECK;
int proto_write_auth_switch(struct buf *b, uint8_t *seq, const char *plugin, const void *data,
                            size_t data_len) MUST_CHECK;

/* AuthMoreData: 0x01 and plugin data (a caching_sha2 status byte, or the
 * server's RSA public key in PEM). Returns n or -EPROTO. */
ssize_t proto_parse_auth_more(const uint8_t *p, size_t n, const uint8_t **data,
                              size_t *data_len) MUST_CHECK;
int proto_write_auth_more(struct buf *b, uint8_t *seq, const void *data,
                          size_t data_len) MUST_CHECK;

/* caching_sha2_password (and tidb_sm3_password) status bytes after 0x01. */
#define PROTO_SHA2_REQUEST_PUBLIC_KEY 0x02 /* client to server, a bare byte */
#define PROTO_SHA2_FAST_AUTH_SUCCESS  0x03
#define PROTO_SHA2_PERFORM_FULL_AUTH  0x04

enum proto_sha2_msg {
	PROTO_SHA2_MSG_NONE,      /* not one of the two status messages */
	PROTO_SHA2_MSG_FAST_OK,   /* 0x01 0x03: an OK packet follows */
	PROTO_SHA2_MSG_FULL_AUTH, /* 0x01 0x04: the client must send the password */
};

/* Recognises the two-byte caching_sha2 status messages in a server payload. */
enum proto_sha2_msg proto_sha2_message(const uint8_t *p, size_t n);

#endif
