/* Decoders for the client commands vecgate reads: COM_STMT_EXECUTE,
 * the statement id of the prepared-statement commands, COM_CHANGE_USER. */
#include "proto/command.h"

#include <errno.h>
#include <string.h>

int proto_stmt_id(const uint8_t *p, size_t n, uint32_t *id)
{
	if (n < 5)
		return -EPROTO;
	switch (p[0]) {
	case PROTO_COM_STMT_EXECUTE:
	case PROTO_COM_STMT_FETCH:
	case PROTO_COM_STMT_CLOSE:
	case PROTO_COM_STMT_RESET:
	case PROTO_COM_STMT_SEND_LONG_DATA:
		break;
	default:
		return -EINVAL;
	}
	*id = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
	return 0;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

/* A temporal value's length byte must give one of MySQL's layouts (TiDB
 * calls any other length a malformed packet): date [+ time [+ microseconds
 * [+ time zone]]] or, for TIME, sign and days + time [+ microseconds]. */
static bool temporal_len_ok(uint8_t type, uint8_t len)
{
	if (type == PROTO_TYPE_TIME)
		return len == 0 || len == 8 || len == 12;
	return len == 0 || len == 4 || len == 7 || len == 11 || len == 13;
}

/* Reads one non-NULL value of type t. */
static int read_value(struct rd *r, uint16_t t, struct proto_param *pa)
{
	uint8_t type = (uint8_t)t;
	const uint8_t *v;
	int width = proto_binary_int_width(type);
	if (width) {
		if (!rd_bytes(r, (size_t)width, &v))
			return -EPROTO;
		uint64_t x = le(v, (unsigned)width);
		pa->width = (uint8_t)width;
		if (t & PROTO_PARAM_UNSIGNED) {
			pa->kind = PROTO_PARAM_UINT;
			pa->u = x;
		} else {
			pa->kind = PROTO_PARAM_INT;
			pa->i = width == 8   ? (int64_t)x
			        : width == 4 ? (int32_t)(uint32_t)x
			        : width == 2 ? (int16_t)(uint16_t)x
			                     : (int8_t)(uint8_t)x;
		}
		return 0;
	}
	switch (type) {
	case PROTO_TYPE_NULL:
		/* TiDB and MySQL read no bytes for it: a NULL whatever the bitmap says. */
		pa->kind = PROTO_PARAM_NULL;
		return 0;
	case PROTO_TYPE_FLOAT: {
		uint32_t bits;
		if (!rd_u32(r, &bits))
			return -EPROTO;
		pa->kind = PROTO_PARAM_FLOAT;
		memcpy(&pa->f, &bits, sizeof(bits));
		return 0;
	}
	case PROTO_TYPE_DOUBLE: {
		uint64_t bits;
		if (!rd_u64(r, &bits))
			return -EPROTO;
		pa->kind = PROTO_PARAM_DOUBLE;
		memcpy(&pa->d, &bits, sizeof(bits));
		return 0;
	}
	case PROTO_TYPE_DATE:
	case PROTO_TYPE_DATETIME:
	case PROTO_TYPE_TIMESTAMP:
	case PROTO_TYPE_TIME: {
		uint8_t len;
		if (!rd_u8(r, &len) || !temporal_len_ok(type, len) || !rd_bytes(r, len, &v))
			return -EPROTO;
		pa->kind = PROTO_PARAM_TEMPORAL;
		pa->s.p = v;
		pa->s.n = len;
		return 0;
	}
	case PROTO_TYPE_DECIMAL:
	case PROTO_TYPE_NEWDECIMAL:
	case PROTO_TYPE_VARCHAR:
	case PROTO_TYPE_VAR_STRING:
	case PROTO_TYPE_STRING:
	case PROTO_TYPE_TINY_BLOB:
	case PROTO_TYPE_MEDIUM_BLOB:
	case PROTO_TYPE_LONG_BLOB:
	case PROTO_TYPE_BLOB:
	case PROTO_TYPE_JSON:
	case PROTO_TYPE_ENUM:
	case PROTO_TYPE_SET:
	case PROTO_TYPE_GEOMETRY:
	case PROTO_TYPE_BIT: {
		uint64_t len;
		if (!rd_lenenc_str(r, &v, &len))
			return -EPROTO;
		pa->kind = PROTO_PARAM_BYTES;
		pa->s.p = v;
		pa->s.n = (size_t)len;
		return 0;
	}
	default:
		/* NEWDATE, the *2 types, vectors: server-internal or unknown,
		 * with no framing a client would use. */
		return -ENOTSUP;
	}
}

static uint16_t type_at(const uint8_t *wire, const uint16_t *bound, unsigned i)
{
	return wire ? (uint16_t)(wire[2 * i] | wire[2 * i + 1] << 8) : bound[i];
}

int proto_parse_stmt_execute(const uint8_t *p, size_t n, unsigned nparams,
                             const uint16_t *bound_types, struct proto_stmt_execute *ex,
                             uint16_t *types, struct proto_param *params)
{
	struct rd r = rd_make(p, n);
	uint8_t cmd;
	memset(ex, 0, sizeof(*ex));
	if (!rd_u8(&r, &cmd) || cmd != PROTO_COM_STMT_EXECUTE || !rd_u32(&r, &ex->stmt_id) ||
	    !rd_u8(&r, &ex->flags) || !rd_u32(&r, &ex->iterations))
		return -EPROTO;
	if (nparams == 0) {
		/* Nothing follows: no bitmap, no flag (MySQL and TiDB read none). */
		ex->used = n - rd_left(&r);
		return 0;
	}
	uint8_t bound;
	const uint8_t *wire = NULL;
	if (!rd_bytes(&r, (nparams + 7u) / 8u, &ex->null_bitmap) || !rd_u8(&r, &bound))
		return -EPROTO;
	/* MySQL takes any non-zero flag as "types follow", TiDB only 1:
	 * anything else means different layouts to the two. */
	if (bound > 1)
		return -EPROTO;
	if (bound) {
		if (!rd_bytes(&r, 2u * (size_t)nparams, &wire))
			return -EPROTO;
	} else if (!bound_types) {
		return -EPROTO;
	}
	for (unsigned i = 0; i < nparams; i++) {
		struct proto_param *pa = &params[i];
		memset(pa, 0, sizeof(*pa));
		pa->type = type_at(wire, bound_types, i);
		if (ex->null_bitmap[i / 8] & (1u << (i % 8))) {
			pa->kind = PROTO_PARAM_NULL;
			continue;
		}
		int rc = read_value(&r, pa->type, pa);
		if (rc < 0)
			return rc;
	}
	/* Written last, so types may be the caller's bound_types array. */
	if (types && (wire || types != bound_types))
		for (unsigned i = 0; i < nparams; i++)
			types[i] = type_at(wire, bound_types, i);
	ex->new_types = bound == 1;
	ex->used = n - rd_left(&r);
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

int proto_parse_change_user(const uint8_t *p, size_t n, uint32_t caps, struct proto_change_user *cu)
{
	struct rd r = rd_make(p, n);
	uint8_t cmd;
	memset(cu, 0, sizeof(*cu));
	if (!rd_u8(&r, &cmd) || cmd != PROTO_COM_CHANGE_USER ||
	    !get_nulstr(&r, &cu->user, &cu->user_len))
		return -EPROTO;
	if (caps & PROTO_CLIENT_SECURE_CONNECTION) {
		uint8_t len;
		if (!rd_u8(&r, &len) || !rd_bytes(&r, len, &cu->auth))
			return -EPROTO;
		cu->auth_len = len;
	} else if (!rd_nulstr(&r, &cu->auth, &cu->auth_len)) {
		return -EPROTO;
	}
	/* From here on the packet may end before any field; a field that has
	 * begun must be complete. */
	if (rd_left(&r) > 0) {
		if (!get_nulstr(&r, &cu->db, &cu->db_len))
			return -EPROTO;
		cu->has_db = true;
	}
	if ((caps & PROTO_CLIENT_PROTOCOL_41) && rd_left(&r) > 0) {
		if (!rd_u16(&r, &cu->charset))
			return -EPROTO;
		cu->has_charset = true;
	}
	if ((caps & PROTO_CLIENT_PLUGIN_AUTH) && rd_left(&r) > 0) {
		if (!get_nulstr(&r, &cu->plugin, &cu->plugin_len))
			return -EPROTO;
		cu->has_plugin = true;
	}
	if ((caps & PROTO_CLIENT_CONNECT_ATTRS) && rd_left(&r) > 0) {
		uint64_t len;
		if (!rd_lenenc_str(&r, &cu->attrs, &len))
			return -EPROTO;
		cu->attrs_len = (size_t)len;
		cu->has_attrs = true;
	}
	cu->used = n - rd_left(&r);
	return 0;
}
