/* COM_STMT_EXECUTE parameter decoding. The statement's context comes from
 * the input's first bytes: the parameter count its COM_STMT_PREPARE answer
 * gave, and whether an earlier execution bound types (then 2 bytes each
 * follow); the rest is the payload. A decoded execution is encoded again
 * with the types sent, and must decode to the same values. */
#include "fuzz.h"

#include <errno.h>
#include <math.h>

#include "proto/command.h"

#define MAX_PARAMS 256

/* Writes the values back in MySQL's layout, types sent ("new params bound"). */
static int encode(struct buf *b, const struct proto_stmt_execute *ex, unsigned nparams,
                  const uint16_t *types, const struct proto_param *params)
{
	int rc = wr_u8(b, PROTO_COM_STMT_EXECUTE);
	rc = rc ? rc : wr_u32(b, ex->stmt_id);
	rc = rc ? rc : wr_u8(b, ex->flags);
	rc = rc ? rc : wr_u32(b, ex->iterations);
	if (rc || nparams == 0)
		return rc;
	uint8_t bitmap[MAX_PARAMS / 8] = {0};
	for (unsigned i = 0; i < nparams; i++)
		if (params[i].kind == PROTO_PARAM_NULL && (uint8_t)types[i] != PROTO_TYPE_NULL)
			bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
	rc = buf_append(b, bitmap, (nparams + 7) / 8);
	rc = rc ? rc : wr_u8(b, 1);
	for (unsigned i = 0; !rc && i < nparams; i++)
		rc = wr_u16(b, types[i]);
	for (unsigned i = 0; !rc && i < nparams; i++) {
		const struct proto_param *pa = &params[i];
		switch (pa->kind) {
		case PROTO_PARAM_NULL:
			break;
		case PROTO_PARAM_INT:
		case PROTO_PARAM_UINT: {
			uint64_t x = pa->kind == PROTO_PARAM_INT ? (uint64_t)pa->i : pa->u;
			for (unsigned k = 0; !rc && k < pa->width; k++)
				rc = wr_u8(b, (uint8_t)(x >> (8 * k)));
			break;
		}
		case PROTO_PARAM_FLOAT: {
			uint32_t bits;
			memcpy(&bits, &pa->f, sizeof(bits));
			rc = wr_u32(b, bits);
			break;
		}
		case PROTO_PARAM_DOUBLE: {
			uint64_t bits;
			memcpy(&bits, &pa->d, sizeof(bits));
			rc = wr_u64(b, bits);
			break;
		}
		case PROTO_PARAM_BYTES:
			rc = wr_lenenc_str(b, pa->s.p, pa->s.n);
			break;
		case PROTO_PARAM_TEMPORAL:
			rc = wr_u8(b, (uint8_t)pa->s.n);
			rc = rc ? rc : buf_append(b, pa->s.p, pa->s.n);
			break;
		}
	}
	return rc;
}

static bool same_param(const struct proto_param *a, const struct proto_param *b)
{
	if (a->kind != b->kind || a->type != b->type)
		return false;
	switch (a->kind) {
	case PROTO_PARAM_NULL:
		return true;
	case PROTO_PARAM_INT:
		return a->width == b->width && a->i == b->i;
	case PROTO_PARAM_UINT:
		return a->width == b->width && a->u == b->u;
	case PROTO_PARAM_FLOAT:
		return memcmp(&a->f, &b->f, sizeof(a->f)) == 0;
	case PROTO_PARAM_DOUBLE:
		return memcmp(&a->d, &b->d, sizeof(a->d)) == 0;
	case PROTO_PARAM_BYTES:
	case PROTO_PARAM_TEMPORAL:
		return a->s.n == b->s.n && (a->s.n == 0 || memcmp(a->s.p, b->s.p, a->s.n) == 0);
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned nparams = fuzz_u8(&in);
	bool have_bound = fuzz_u8(&in) & 1;
	uint16_t bound[MAX_PARAMS];
	if (have_bound)
		for (unsigned i = 0; i < nparams; i++)
			bound[i] = fuzz_u16(&in);
	uint8_t *p = fuzz_dup(in.p, in.n);
	size_t n = in.n;

	static struct proto_param params[MAX_PARAMS], params2[MAX_PARAMS];
	uint16_t types[MAX_PARAMS], types2[MAX_PARAMS];
	struct proto_stmt_execute ex, ex2;
	int rc = proto_parse_stmt_execute(p, n, nparams, have_bound ? bound : NULL, &ex, types,
	                                  params);
	uint32_t id;
	int idrc = proto_stmt_id(p, n, &id);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EPROTO || rc == -ENOTSUP);
		free(p);
		return 0;
	}
	FUZZ_CHECK(idrc == 0 && id == ex.stmt_id);
	FUZZ_CHECK(ex.used <= n && ex.used >= 10);
	if (nparams == 0) {
		FUZZ_CHECK(ex.null_bitmap == NULL && !ex.new_types && ex.used == 10);
	} else {
		FUZZ_CHECK(fuzz_within(p, n, ex.null_bitmap, (nparams + 7) / 8));
		FUZZ_CHECK(ex.new_types || have_bound);
	}
	for (unsigned i = 0; i < nparams; i++) {
		const struct proto_param *pa = &params[i];
		FUZZ_CHECK(pa->type == types[i]);
		FUZZ_CHECK(ex.new_types || types[i] == bound[i]);
		if (ex.null_bitmap[i / 8] & (1u << (i % 8)))
			FUZZ_CHECK(pa->kind == PROTO_PARAM_NULL);
		if (pa->kind == PROTO_PARAM_INT || pa->kind == PROTO_PARAM_UINT)
			FUZZ_CHECK(pa->width == 1 || pa->width == 2 || pa->width == 4 ||
			           pa->width == 8);
		if (pa->kind == PROTO_PARAM_BYTES || pa->kind == PROTO_PARAM_TEMPORAL)
			FUZZ_CHECK(fuzz_within(p, ex.used, pa->s.p, pa->s.n));
		if (pa->kind == PROTO_PARAM_TEMPORAL)
			FUZZ_CHECK(pa->s.n == 0 || pa->s.n == 4 || pa->s.n == 7 || pa->s.n == 8 ||
			           pa->s.n == 11 || pa->s.n == 12 || pa->s.n == 13);
	}

	struct buf b;
	buf_init(&b);
	FUZZ_CHECK(encode(&b, &ex, nparams, types, params) == 0);
	rc = proto_parse_stmt_execute(b.data, b.len, nparams, NULL, &ex2, types2, params2);
	FUZZ_CHECK(rc == 0 && ex2.used == b.len);
	FUZZ_CHECK(ex2.stmt_id == ex.stmt_id && ex2.flags == ex.flags &&
	           ex2.iterations == ex.iterations);
	for (unsigned i = 0; i < nparams; i++)
		FUZZ_CHECK(types2[i] == types[i] && same_param(&params[i], &params2[i]));
	/* The decoded layout is at least as long as the canonical one. */
	if (ex.new_types || nparams == 0)
		FUZZ_CHECK(b.len <= ex.used);
	buf_free(&b);
	free(p);
	return 0;
}
