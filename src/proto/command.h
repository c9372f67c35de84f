/* Client commands the proxy reads rather than only relays: the parameters of
 * COM_STMT_EXECUTE, the statement id of the prepared-statement commands, and
 * COM_CHANGE_USER. Decoders over one complete payload, command byte
 * included; nothing is allocated and every pointer they return points into
 * the payload, which must outlive it. */
#ifndef VECGATE_PROTO_COMMAND_H
#define VECGATE_PROTO_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/mysql.h"

/* Set in a COM_STMT_EXECUTE parameter type (its second byte) when an
 * integer parameter is unsigned. */
#define PROTO_PARAM_UNSIGNED 0x8000

/* The statement id of COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_CLOSE,
 * COM_STMT_RESET or COM_STMT_SEND_LONG_DATA (the 4 bytes after the command
 * byte). 0, -EPROTO when the payload is shorter than 5 bytes, -EINVAL for
 * any other command. */
int proto_stmt_id(const uint8_t *p, size_t n, uint32_t *id) MUST_CHECK;

enum proto_param_kind {
	PROTO_PARAM_NULL,     /* marked in the NULL bitmap, or of type NULL */
	PROTO_PARAM_INT,      /* i: TINY, SHORT, YEAR, INT24, LONG, LONGLONG, sign-extended */
	PROTO_PARAM_UINT,     /* u: the same types with PROTO_PARAM_UNSIGNED */
	PROTO_PARAM_FLOAT,    /* f */
	PROTO_PARAM_DOUBLE,   /* d */
	PROTO_PARAM_BYTES,    /* s: a length-encoded string (strings, blobs, DECIMAL, JSON, ...) */
	PROTO_PARAM_TEMPORAL, /* s: DATE, DATETIME, TIMESTAMP or TIME in MySQL's binary form,
	                       * without its length byte (0, 4, 7, 11 or 13 bytes; TIME 0, 8
	                       * or 12) */
};

/* One parameter value: kind says which member of the union is set. */
struct proto_param {
	enum proto_param_kind kind;
	uint16_t type; /* the type it was sent as, PROTO_PARAM_UNSIGNED included */
	uint8_t width; /* INT / UINT: bytes on the wire (1, 2, 4 or 8) */
	union {
		int64_t i;
		uint64_t u;
		float f;
		double d;
		struct {
			const uint8_t *p;
			size_t n;
		} s;
	};
};

struct proto_stmt_execute {
	uint32_t stmt_id;
	uint8_t flags;       /* cursor type: PROTO_CURSOR_TYPE_* */
	uint32_t iterations; /* always 1 from MySQL's and TiDB's clients */
	/* With parameters: (nparams + 7) / 8 bytes, bit i set when parameter i
	 * is NULL (no offset, unlike result rows). NULL without parameters. */
	const uint8_t *null_bitmap;
	/* The types were sent with this execution ("new params bound" flag):
	 * the caller keeps them for later executions that do not send them. */
	bool new_types;
	size_t used; /* payload bytes decoded; bytes after them are ignored */
};

/* Decodes a COM_STMT_EXECUTE payload for a statement with nparams
 * parameters (the count its COM_STMT_PREPARE answer gave), laid out as
 * without CLIENT_QUERY_ATTRIBUTES (vecgate does not pass that capability
 * on). bound_types are the types the statement's last execution that sent
 * types sent (NULL when none has yet); the execution's own types are used
 * when its "new params bound" flag is set. On success types[0, nparams)
 * gets the types in effect (it may be the bound_types array: it is written
 * only on success) and params[0, nparams) the values; both may be NULL when
 * nparams is 0. Returns 0, -EPROTO when the payload is malformed or ends
 * early, is not COM_STMT_EXECUTE, or reuses types that were never bound, or
 * -ENOTSUP for a parameter type whose value cannot be framed (types only
 * the server uses internally, unknown types). A parameter sent before with
 * COM_STMT_SEND_LONG_DATA has no value in the payload, which this layout
 * cannot tell: the caller must not decode such an execution. */
int proto_parse_stmt_execute(const uint8_t *p, size_t n, unsigned nparams,
                             const uint16_t *bound_types, struct proto_stmt_execute *ex,
                             uint16_t *types, struct proto_param *params) MUST_CHECK;

/* COM_CHANGE_USER. The fields after the auth data may be missing from the
 * end of the packet (MySQL's and TiDB's servers read only what is there):
 * has_* says whether each was present. */
struct proto_change_user {
	const char *user; /* NUL-terminated in the payload */
	size_t user_len;
	const uint8_t *auth;
	size_t auth_len;
	bool has_db;
	const char *db; /* NUL-terminated in the payload */
	size_t db_len;
	bool has_charset; /* with CLIENT_PROTOCOL_41 */
	uint16_t charset;
	bool has_plugin;    /* with CLIENT_PLUGIN_AUTH */
	const char *plugin; /* NUL-terminated in the payload */
	size_t plugin_len;
	bool has_attrs;       /* with CLIENT_CONNECT_ATTRS */
	const uint8_t *attrs; /* raw lenenc key/value pairs, without the block's length */
	size_t attrs_len;
	size_t used; /* payload bytes decoded; bytes after them are ignored */
};

/* Decodes a COM_CHANGE_USER payload sent by a client with capabilities
 * caps. The auth data has a 1-byte length with CLIENT_SECURE_CONNECTION
 * (as TiDB reads it, whatever else is negotiated) and is NUL-terminated
 * without it. 0, or -EPROTO when malformed, truncated inside a field, or
 * not COM_CHANGE_USER. */
int proto_parse_change_user(const uint8_t *p, size_t n, uint32_t caps,
                            struct proto_change_user *cu) MUST_CHECK;

#endif
