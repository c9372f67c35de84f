/* Unit tests for src/proto/command: COM_STMT_EXECUTE parameters (every
 * type family, NULL bitmaps, bound and reused types, cursor flags), the
 * statement id helper and COM_CHANGE_USER, each with every truncation of
 * its valid packets and with malformed lengths. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/command.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(s) (const uint8_t *)(s), sizeof(s) - 1
#define U    PROTO_PARAM_UNSIGNED

/* An exact-size heap copy, so that ASan reports any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	cr_assert(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* ---- binary integer widths ---- */

Test(proto_command, binary_int_width)
{
	for (int t = 0; t < 256; t++) {
		int want = t == PROTO_TYPE_TINY                            ? 1
		           : t == PROTO_TYPE_SHORT || t == PROTO_TYPE_YEAR ? 2
		           : t == PROTO_TYPE_INT24 || t == PROTO_TYPE_LONG ? 4
		           : t == PROTO_TYPE_LONGLONG                      ? 8
		                                                           : 0;
		cr_assert_eq(proto_binary_int_width((uint8_t)t), want, "type %#x", t);
	}
}

/* ---- statement id ---- */

struct id_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	int rc;
	uint32_t id;
};

static const struct id_case id_cases[] = {
        {"execute", S("\x17\x01\x02\x03\x04\x00\x01\x00\x00\x00"), 0, 0x04030201},
        {"fetch", S("\x1c\x07\x00\x00\x00\x0a\x00\x00\x00"), 0, 7},
        {"close", S("\x19\xff\xff\xff\xff"), 0, 0xffffffff},
        {"reset", S("\x1a\x02\x00\x00\x00"), 0, 2},
        {"send_long_data", S("\x18\x03\x00\x00\x00\x00\x00xyz"), 0, 3},
        {"short", S("\x19\x01\x00\x00"), -EPROTO, 0},
        {"command_only", S("\x19"), -EPROTO, 0},
        {"empty", S(""), -EPROTO, 0},
        {"query_has_none", S("\x03SELECT 1"), -EINVAL, 0},
        {"prepare_has_none", S("\x16SELECT ?"), -EINVAL, 0},
};

Test(proto_command, stmt_id)
{
	for (size_t i = 0; i < N(id_cases); i++) {
		const struct id_case *c = &id_cases[i];
		uint8_t *p = dup_exact(c->p, c->n);
		uint32_t id = 0xdeadbeef;
		int rc = proto_stmt_id(p, c->n, &id);
		cr_assert_eq(rc, c->rc, "%s: rc %d", c->name, rc);
		cr_assert_eq(id, rc == 0 ? c->id : 0xdeadbeef, "%s: id %#x", c->name, id);
		free(p);
	}
}

/* ---- COM_STMT_EXECUTE ---- */

/* An expected parameter. */
struct want {
	enum proto_param_kind kind;
	uint16_t type;
	uint8_t width;
	int64_t i;
	uint64_t u;
	double d; /* FLOAT and DOUBLE */
	const char *s;
	size_t n;
};

#define WNULL(t)                                                                                   \
	{                                                                                          \
		.kind = PROTO_PARAM_NULL, .type = (t)                                              \
	}
#define WI(t, w, v)                                                                                \
	{                                                                                          \
		.kind = PROTO_PARAM_INT, .type = (t), .width = (w), .i = (v)                       \
	}
#define WU(t, w, v)                                                                                \
	{                                                                                          \
		.kind = PROTO_PARAM_UINT, .type = (t), .width = (w), .u = (v)                      \
	}
#define WF(v)                                                                                      \
	{                                                                                          \
		.kind = PROTO_PARAM_FLOAT, .type = PROTO_TYPE_FLOAT, .d = (v)                      \
	}
#define WD(v)                                                                                      \
	{                                                                                          \
		.kind = PROTO_PARAM_DOUBLE, .type = PROTO_TYPE_DOUBLE, .d = (v)                    \
	}
#define WS(t, str)                                                                                 \
	{                                                                                          \
		.kind = PROTO_PARAM_BYTES, .type = (t), .s = (str), .n = sizeof(str) - 1           \
	}
#define WT(t, str)                                                                                 \
	{                                                                                          \
		.kind = PROTO_PARAM_TEMPORAL, .type = (t), .s = (str), .n = sizeof(str) - 1        \
	}
#define MAX_PARAMS 9

/* Header: statement 1, the given flags byte, one iteration. */
#define EXEC(flags) "\x17\x01\x00\x00\x00" flags "\x01\x00\x00\x00"

struct exec_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	unsigned nparams;
	const uint16_t *bound; /* types of an earlier execution; NULL: none */
	int rc;
	uint8_t flags;
	bool new_types;
	size_t used; /* 0: all n bytes */
	struct want want[MAX_PARAMS];
};

static const uint16_t bound_long_str[] = {PROTO_TYPE_LONGLONG, PROTO_TYPE_VAR_STRING};
static const uint16_t bound_unsigned_tiny[] = {PROTO_TYPE_TINY | U};

static const struct exec_case exec_cases[] = {
        {.name = "no_params", S(EXEC("\x00")), .nparams = 0},
        /* Nothing is read after the iteration count without parameters. */
        {.name = "no_params_trailing_bytes", S(EXEC("\x00") "\x00\x01"), .nparams = 0, .used = 10},
        {.name = "cursor_read_only", S(EXEC("\x01")), .nparams = 0, .flags = 1},
        {.name = "cursor_all_bits",
         S(EXEC("\x0f")),
         .nparams = 0,
         .flags = PROTO_CURSOR_TYPE_READ_ONLY | PROTO_CURSOR_TYPE_FOR_UPDATE |
                  PROTO_CURSOR_TYPE_SCROLLABLE | PROTO_PARAMETER_COUNT_AVAILABLE},
        {.name = "longlong",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x08\x00"
                        "\x2a\x00\x00\x00\x00\x00\x00\x00"),
         .nparams = 1,
         .new_types = true,
         .want = {WI(PROTO_TYPE_LONGLONG, 8, 42)}},
        {.name = "signed_ints_every_width",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x01\x00\x02\x00\x0d\x00\x09\x00\x03\x00\x08\x00"
                        "\xff"
                        "\xfe\xff"
                        "\xe8\x07"
                        "\xfd\xff\xff\xff"
                        "\x00\x00\x00\x80"
                        "\x00\x00\x00\x00\x00\x00\x00\x80"),
         .nparams = 6,
         .new_types = true,
         .want = {WI(PROTO_TYPE_TINY, 1, -1), WI(PROTO_TYPE_SHORT, 2, -2),
                  WI(PROTO_TYPE_YEAR, 2, 2024), WI(PROTO_TYPE_INT24, 4, -3),
                  WI(PROTO_TYPE_LONG, 4, INT32_MIN), WI(PROTO_TYPE_LONGLONG, 8, INT64_MIN)}},
        {.name = "unsigned_flag",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x01\x80\x02\x80\x03\x80\x08\x80"
                        "\xff"
                        "\xff\xff"
                        "\xff\xff\xff\xff"
                        "\xff\xff\xff\xff\xff\xff\xff\xff"),
         .nparams = 4,
         .new_types = true,
         .want = {WU(PROTO_TYPE_TINY | U, 1, 255), WU(PROTO_TYPE_SHORT | U, 2, 65535),
                  WU(PROTO_TYPE_LONG | U, 4, 4294967295u),
                  WU(PROTO_TYPE_LONGLONG | U, 8, UINT64_MAX)}},
        {.name = "float_double",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x04\x00\x05\x00"
                        "\x00\x00\xc0\x3f"
                        "\x9a\x99\x99\x99\x99\x99\xb9\x3f"),
         .nparams = 2,
         .new_types = true,
         .want = {WF(1.5), WD(0.1)}},
        {.name = "byte_strings",
         S(EXEC("\x00") "\x00\x00"
                        "\x01"
                        "\x0f\x00\xfd\x00\xfe\x00\xfc\x00\xfb\x00\xf6\x00\x00\x00\xf5\x00\xf9"
                        "\x00"
                        "\x03"
                        "abc"
                        "\x00"
                        "\x01"
                        "x"
                        "\x02\x00\xff"
                        "\x05"
                        "[1,2]"
                        "\x04"
                        "1.50"
                        "\x02"
                        "-1"
                        "\x02"
                        "{}"
                        "\x00"),
         .nparams = 9,
         .new_types = true,
         .want = {WS(PROTO_TYPE_VARCHAR, "abc"), WS(PROTO_TYPE_VAR_STRING, ""),
                  WS(PROTO_TYPE_STRING, "x"), WS(PROTO_TYPE_BLOB, "\x00\xff"),
                  WS(PROTO_TYPE_LONG_BLOB, "[1,2]"), WS(PROTO_TYPE_NEWDECIMAL, "1.50"),
                  WS(PROTO_TYPE_DECIMAL, "-1"), WS(PROTO_TYPE_JSON, "{}"),
                  WS(PROTO_TYPE_TINY_BLOB, "")}},
        /* Bits 0 and 2 set: those two send no value, whatever their type. */
        {.name = "null_bitmap",
         S(EXEC("\x00") "\x05"
                        "\x01"
                        "\xf2\x00\x01\x00\xfe\x00"
                        "\x07"),
         .nparams = 3,
         .new_types = true,
         .want = {WNULL(0xf2), WI(PROTO_TYPE_TINY, 1, 7), WNULL(PROTO_TYPE_STRING)}},
        /* Nine parameters: a two-byte bitmap, the ninth NULL. */
        {.name = "null_bitmap_second_byte",
         S(EXEC("\x00") "\x80\x01"
                        "\x01"
                        "\x01\x00\x01\x00\x01\x00\x01\x00\x01\x00\x01\x00\x01\x00\x01\x00\xfd"
                        "\x00"
                        "\x01\x02\x03\x04\x05\x06\x07"),
         .nparams = 9,
         .new_types = true,
         .want = {WI(1, 1, 1), WI(1, 1, 2), WI(1, 1, 3), WI(1, 1, 4), WI(1, 1, 5), WI(1, 1, 6),
                  WI(1, 1, 7), WNULL(1), WNULL(PROTO_TYPE_VAR_STRING)}},
        {.name = "all_null",
         S(EXEC("\x00") "\x03"
                        "\x01"
                        "\x08\x00\xfd\x00"),
         .nparams = 2,
         .new_types = true,
         .want = {WNULL(PROTO_TYPE_LONGLONG), WNULL(PROTO_TYPE_VAR_STRING)}},
        /* Type NULL reads no bytes even when its bit is clear. */
        {.name = "type_null",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x06\x00\x01\x00"
                        "\x09"),
         .nparams = 2,
         .new_types = true,
         .want = {WNULL(PROTO_TYPE_NULL), WI(PROTO_TYPE_TINY, 1, 9)}},
        {.name = "reuse_bound_types",
         S(EXEC("\x00") "\x00"
                        "\x00"
                        "\x05\x00\x00\x00\x00\x00\x00\x00"
                        "\x02"
                        "hi"),
         .nparams = 2,
         .bound = bound_long_str,
         .want = {WI(PROTO_TYPE_LONGLONG, 8, 5), WS(PROTO_TYPE_VAR_STRING, "hi")}},
        {.name = "reuse_bound_unsigned",
         S(EXEC("\x00") "\x00"
                        "\x00"
                        "\x80"),
         .nparams = 1,
         .bound = bound_unsigned_tiny,
         .want = {WU(PROTO_TYPE_TINY | U, 1, 128)}},
        /* New types win over the bound ones. */
        {.name = "rebind_types",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x01\x00"
                        "\x80"),
         .nparams = 1,
         .bound = bound_unsigned_tiny,
         .new_types = true,
         .want = {WI(PROTO_TYPE_TINY, 1, -128)}},
        {.name = "cursor_with_params",
         S(EXEC("\x01") "\x00"
                        "\x01"
                        "\x03\x00"
                        "\x01\x00\x00\x00"),
         .nparams = 1,
         .flags = 1,
         .new_types = true,
         .want = {WI(PROTO_TYPE_LONG, 4, 1)}},
        {.name = "temporal",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x0a\x00\x0c\x00\x07\x00\x0b\x00\x0c\x00\x0c\x00"
                        "\x04\xe8\x07\x01\x02"
                        "\x07\xe8\x07\x01\x02\x03\x04\x05"
                        "\x00"
                        "\x08\x01\x01\x00\x00\x00\x02\x03\x04"
                        "\x0b\xe8\x07\x01\x02\x03\x04\x05\x40\x42\x0f\x00"
                        "\x0d\xe8\x07\x01\x02\x03\x04\x05\x00\x00\x00\x00\x3c\x00"),
         .nparams = 6,
         .new_types = true,
         .want = {WT(PROTO_TYPE_DATE, "\xe8\x07\x01\x02"),
                  WT(PROTO_TYPE_DATETIME, "\xe8\x07\x01\x02\x03\x04\x05"),
                  WT(PROTO_TYPE_TIMESTAMP, ""),
                  WT(PROTO_TYPE_TIME, "\x01\x01\x00\x00\x00\x02\x03\x04"),
                  WT(PROTO_TYPE_DATETIME, "\xe8\x07\x01\x02\x03\x04\x05\x40\x42\x0f\x00"),
                  WT(PROTO_TYPE_DATETIME, "\xe8\x07\x01\x02\x03\x04\x05\x00\x00\x00\x00\x3c\x00")}},
        /* A 2-byte lenenc length (0xFC) for a short string is allowed. */
        {.name = "lenenc_long_form",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\xfd\x00"
                        "\xfc\x02\x00"
                        "ab"),
         .nparams = 1,
         .new_types = true,
         .want = {WS(PROTO_TYPE_VAR_STRING, "ab")}},
        {.name = "trailing_bytes_ignored",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x01\x00"
                        "\x05"
                        "junk"),
         .nparams = 1,
         .new_types = true,
         .used = 15,
         .want = {WI(PROTO_TYPE_TINY, 1, 5)}},

        /* ---- malformed ---- */
        {.name = "empty", S(""), .nparams = 0, .rc = -EPROTO},
        {.name = "not_execute", S("\x16\x01\x00\x00\x00\x00\x01\x00\x00\x00"), .rc = -EPROTO},
        {.name = "no_iterations", S("\x17\x01\x00\x00\x00\x00\x01\x00"), .rc = -EPROTO},
        {.name = "no_bitmap", S(EXEC("\x00")), .nparams = 1, .rc = -EPROTO},
        {.name = "no_bound_flag", S(EXEC("\x00") "\x00"), .nparams = 1, .rc = -EPROTO},
        {.name = "bound_flag_2",
         S(EXEC("\x00") "\x00"
                        "\x02"
                        "\x01\x00"
                        "\x01"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "unbound_types",
         S(EXEC("\x00") "\x00"
                        "\x00"
                        "\x01"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "unbound_types_all_null",
         S(EXEC("\x00") "\x01"
                        "\x00"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "types_cut",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x01\x00\x01"),
         .nparams = 2,
         .rc = -EPROTO},
        {.name = "int_cut",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x08\x00"
                        "\x01\x02\x03"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "missing_second_value",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x01\x00\x01\x00"
                        "\x01"),
         .nparams = 2,
         .rc = -EPROTO},
        {.name = "string_past_end",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x0f\x00"
                        "\x05"
                        "ab"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "lenenc_huge",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\xfc\x00"
                        "\xfe\xff\xff\xff\xff\xff\xff\xff\xff"
                        "abc"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "lenenc_3byte_past_end",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\xfb\x00"
                        "\xfd\x00\x00\x01"
                        "abc"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "lenenc_null_marker",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\xfe\x00"
                        "\xfb"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "lenenc_ff",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\xfe\x00"
                        "\xff\x00"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "date_bad_length",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x0a\x00"
                        "\x05\xe8\x07\x01\x02\x03"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "time_datetime_length",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x0b\x00"
                        "\x07\xe8\x07\x01\x02\x03\x04\x05"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "date_past_end",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x0a\x00"
                        "\x04\xe8\x07"),
         .nparams = 1,
         .rc = -EPROTO},
        {.name = "vector_type",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\xf2\x00"
                        "\x00"),
         .nparams = 1,
         .rc = -ENOTSUP},
        {.name = "timestamp2_type",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x11\x00"
                        "\x00"),
         .nparams = 1,
         .rc = -ENOTSUP},
        {.name = "newdate_type",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x0e\x00"
                        "\x00"),
         .nparams = 1,
         .rc = -ENOTSUP},
        {.name = "unknown_type",
         S(EXEC("\x00") "\x00"
                        "\x01"
                        "\x20\x00"
                        "\x00"),
         .nparams = 1,
         .rc = -ENOTSUP},
        /* The statement's parameter count is the caller's: a payload
         * written for fewer parameters is short, never read past. */
        {.name = "many_params_short_payload",
         S(EXEC("\x00") "\x00\x00"
                        "\x01"
                        "\x01\x00"),
         .nparams = 65535,
         .rc = -EPROTO},
};

static void check_param(const struct exec_case *c, unsigned i, const struct proto_param *pa)
{
	const struct want *w = &c->want[i];
	cr_assert_eq(pa->kind, w->kind, "%s: param %u kind %d", c->name, i, pa->kind);
	cr_assert_eq(pa->type, w->type, "%s: param %u type %#x", c->name, i, pa->type);
	switch (w->kind) {
	case PROTO_PARAM_INT:
		cr_assert_eq(pa->width, w->width, "%s: param %u width", c->name, i);
		cr_assert_eq(pa->i, w->i, "%s: param %u = %lld", c->name, i, (long long)pa->i);
		break;
	case PROTO_PARAM_UINT:
		cr_assert_eq(pa->width, w->width, "%s: param %u width", c->name, i);
		cr_assert_eq(pa->u, w->u, "%s: param %u = %llu", c->name, i,
		             (unsigned long long)pa->u);
		break;
	case PROTO_PARAM_FLOAT:
		cr_assert_eq(pa->f, (float)w->d, "%s: param %u", c->name, i);
		break;
	case PROTO_PARAM_DOUBLE:
		cr_assert_eq(pa->d, w->d, "%s: param %u", c->name, i);
		break;
	case PROTO_PARAM_BYTES:
	case PROTO_PARAM_TEMPORAL:
		cr_assert_eq(pa->s.n, w->n, "%s: param %u length %zu", c->name, i, pa->s.n);
		if (w->n)
			cr_assert_eq(memcmp(pa->s.p, w->s, w->n), 0, "%s: param %u bytes", c->name,
			             i);
		break;
	case PROTO_PARAM_NULL:
		break;
	}
}

/* Decodes the first n bytes of the case's payload from an exact-size copy,
 * which *copy receives (the caller frees it after looking at params). */
static int parse_exec(const struct exec_case *c, size_t n, struct proto_stmt_execute *ex,
                      uint16_t *types, struct proto_param *params, uint8_t **copy)
{
	uint8_t *p = dup_exact(c->p, n);
	int rc = proto_parse_stmt_execute(p, n, c->nparams, c->bound, ex, types, params);
	if (rc == 0 && c->nparams) {
		/* Pointers stay inside the payload. */
		cr_assert(ex->null_bitmap >= p && ex->null_bitmap < p + n, "%s", c->name);
		for (unsigned i = 0; i < c->nparams; i++)
			if (params[i].kind == PROTO_PARAM_BYTES ||
			    params[i].kind == PROTO_PARAM_TEMPORAL)
				cr_assert(params[i].s.p >= p &&
				                  params[i].s.p + params[i].s.n <= p + n,
				          "%s: param %u", c->name, i);
	}
	if (rc == 0)
		cr_assert_leq(ex->used, n, "%s", c->name);
	*copy = p;
	return rc;
}

Test(proto_command, stmt_execute_table)
{
	static struct proto_param params[65535];
	static uint16_t types[65535];
	for (size_t i = 0; i < N(exec_cases); i++) {
		const struct exec_case *c = &exec_cases[i];
		struct proto_stmt_execute ex;
		uint8_t *copy;
		int rc = parse_exec(c, c->n, &ex, types, params, &copy);
		cr_assert_eq(rc, c->rc, "%s: rc %d, want %d", c->name, rc, c->rc);
		if (rc < 0) {
			free(copy);
			continue;
		}
		cr_assert_eq(ex.stmt_id, 1, "%s", c->name);
		cr_assert_eq(ex.flags, c->flags, "%s: flags %#x", c->name, ex.flags);
		cr_assert_eq(ex.iterations, 1, "%s", c->name);
		cr_assert_eq(ex.new_types, c->new_types, "%s: new_types", c->name);
		cr_assert_eq(ex.used, c->used ? c->used : c->n, "%s: used %zu", c->name, ex.used);
		cr_assert_eq(ex.null_bitmap == NULL, c->nparams == 0, "%s", c->name);
		for (unsigned j = 0; j < c->nparams; j++) {
			check_param(c, j, &params[j]);
			cr_assert_eq(types[j], c->want[j].type, "%s: types[%u]", c->name, j);
		}
		free(copy);
	}
}

/* Every prefix of a valid payload is refused as truncated (or, where the
 * payload had bytes after its last field, decodes the same), and nothing is
 * read past its end (ASan build). */
Test(proto_command, stmt_execute_every_prefix)
{
	struct proto_param params[MAX_PARAMS];
	uint16_t types[MAX_PARAMS];
	for (size_t i = 0; i < N(exec_cases); i++) {
		const struct exec_case *c = &exec_cases[i];
		if (c->rc != 0)
			continue;
		size_t used = c->used ? c->used : c->n;
		for (size_t k = 0; k < c->n; k++) {
			struct proto_stmt_execute ex;
			uint8_t *copy;
			int rc = parse_exec(c, k, &ex, types, params, &copy);
			free(copy);
			if (k < used)
				cr_assert_eq(rc, -EPROTO, "%s: prefix %zu gave %d", c->name, k, rc);
			else
				cr_assert(rc == 0 && ex.used == used, "%s: prefix %zu gave %d",
				          c->name, k, rc);
		}
	}
}

/* The types array may be the statement's own bound types: it is updated on
 * success only. */
Test(proto_command, stmt_execute_types_in_place)
{
	uint16_t st_types[2] = {PROTO_TYPE_LONGLONG, PROTO_TYPE_VAR_STRING};
	struct proto_param params[2];
	struct proto_stmt_execute ex;
	/* A rebind whose values are cut: the stored types stay. */
	static const uint8_t cut[] = EXEC("\x00") "\x00\x01\x01\x00\x03\x00\x07";
	cr_assert_eq(
	        proto_parse_stmt_execute(cut, sizeof(cut) - 1, 2, st_types, &ex, st_types, params),
	        -EPROTO);
	cr_assert_eq(st_types[0], PROTO_TYPE_LONGLONG);
	cr_assert_eq(st_types[1], PROTO_TYPE_VAR_STRING);
	/* A complete rebind replaces them ... */
	static const uint8_t rebind[] = EXEC("\x00") "\x00\x01\x01\x00\x03\x80\x07\x09\x00\x00\x00";
	cr_assert_eq(proto_parse_stmt_execute(rebind, sizeof(rebind) - 1, 2, st_types, &ex,
	                                      st_types, params),
	             0);
	cr_assert(ex.new_types);
	cr_assert_eq(st_types[0], PROTO_TYPE_TINY);
	cr_assert_eq(st_types[1], PROTO_TYPE_LONG | U);
	cr_assert_eq(params[1].kind, PROTO_PARAM_UINT);
	cr_assert_eq(params[1].u, 9);
	/* ... and the next execution without types uses them. */
	static const uint8_t reuse[] = EXEC("\x00") "\x00\x00\xff\xff\xff\xff\xff";
	cr_assert_eq(proto_parse_stmt_execute(reuse, sizeof(reuse) - 1, 2, st_types, &ex, st_types,
	                                      params),
	             0);
	cr_assert(!ex.new_types);
	cr_assert_eq(params[0].kind, PROTO_PARAM_INT);
	cr_assert_eq(params[0].i, -1);
	cr_assert_eq(params[1].u, 0xffffffffu);
	cr_assert_eq(ex.used, sizeof(reuse) - 1);
}

/* A string of 251 bytes or more has a 3-byte (0xFC) length; 2^16 bytes or
 * more a 4-byte (0xFD) one. */
Test(proto_command, stmt_execute_long_strings)
{
	static const size_t lens[] = {250, 251, 65535, 65536, 70000};
	for (size_t i = 0; i < N(lens); i++) {
		struct buf b;
		buf_init(&b);
		cr_assert_eq(buf_append(&b, EXEC("\x00") "\x00\x01\xfc\x00", 14), 0);
		cr_assert_eq(wr_lenenc(&b, lens[i]), 0);
		for (size_t j = 0; j < lens[i]; j++)
			cr_assert_eq(wr_u8(&b, (uint8_t)j), 0);
		uint8_t *p = dup_exact(b.data, b.len);
		struct proto_stmt_execute ex;
		struct proto_param pa;
		uint16_t t;
		cr_assert_eq(proto_parse_stmt_execute(p, b.len, 1, NULL, &ex, &t, &pa), 0);
		cr_assert_eq(pa.kind, PROTO_PARAM_BYTES);
		cr_assert_eq(pa.s.n, lens[i]);
		cr_assert_eq(pa.s.p + pa.s.n, p + b.len);
		/* One byte short of the string: truncated. */
		cr_assert_eq(proto_parse_stmt_execute(p, b.len - 1, 1, NULL, &ex, &t, &pa),
		             -EPROTO);
		free(p);
		buf_free(&b);
	}
}

/* ---- COM_CHANGE_USER ---- */

#define C_PLAIN  0u
#define C_SEC    (PROTO_CLIENT_PROTOCOL_41 | PROTO_CLIENT_SECURE_CONNECTION)
#define C_PLUG   (C_SEC | PROTO_CLIENT_PLUGIN_AUTH)
#define C_ALL    (C_PLUG | PROTO_CLIENT_CONNECT_ATTRS)
#define SCRAMBLE "\x0e\x8a\x1c\x33\x90\x55\x21\x7f\x02\x61\xa4\xc8\x19\x00\x47\x3b\x6e\xd0\xf1\x0a"
#define ATTRS                                                                                      \
	"\x03"                                                                                     \
	"_os"                                                                                      \
	"\x05"                                                                                     \
	"Linux"

/* A packet that must not decode (all other fields zero). */
#define BADCU(nm, s, c)                                                                            \
	{                                                                                          \
		.name = nm, .p = (const uint8_t *)(s), .n = sizeof(s) - 1, .caps = c,              \
		.rc = -EPROTO                                                                      \
	}

struct cu_case {
	const char *name;
	const uint8_t *p;
	size_t n;
	uint32_t caps;
	int rc;
	const char *user;
	const char *auth;
	size_t auth_len;
	const char *db; /* NULL: absent */
	int charset;    /* -1: absent */
	const char *plugin;
	const char *attrs;
	size_t attrs_len;
	size_t used; /* 0: all n bytes */
};

static const struct cu_case cu_cases[] = {
        /* What libmariadb sends: every field, a scramble with a NUL in it. */
        {"full",
         S("\x11"
           "app\x00"
           "\x14" SCRAMBLE "shop\x00"
           "\x2e\x00"
           "mysql_native_password\x00"
           "\x0a" ATTRS),
         C_ALL, 0, "app", SCRAMBLE, 20, "shop", 46, "mysql_native_password", ATTRS, 10, 0},
        {"no_password_no_db",
         S("\x11"
           "root\x00"
           "\x00"),
         C_ALL, 0, "root", "", 0, NULL, -1, NULL, NULL, 0, 0},
        {"empty_db",
         S("\x11"
           "root\x00"
           "\x00"
           "\x00"),
         C_ALL, 0, "root", "", 0, "", -1, NULL, NULL, 0, 0},
        {"db_then_charset",
         S("\x11"
           "u\x00"
           "\x01"
           "p"
           "d\x00"
           "\xff\x00"),
         C_ALL, 0, "u", "p", 1, "d", 255, NULL, NULL, 0, 0},
        {"plugin_no_attrs",
         S("\x11"
           "u\x00"
           "\x00"
           "d\x00"
           "\x2d\x00"
           "caching_sha2_password\x00"),
         C_ALL, 0, "u", "", 0, "d", 45, "caching_sha2_password", NULL, 0, 0},
        {"empty_attrs",
         S("\x11"
           "u\x00"
           "\x00"
           "d\x00"
           "\x2d\x00"
           "p\x00"
           "\x00"),
         C_ALL, 0, "u", "", 0, "d", 45, "p", "", 0, 0},
        /* Without the capability the plugin name is not read. */
        {"plugin_not_negotiated",
         S("\x11"
           "u\x00"
           "\x00"
           "d\x00"
           "\x2d\x00"
           "p\x00"),
         C_SEC, 0, "u", "", 0, "d", 45, NULL, NULL, 0, 8},
        {"pre41_nul_terminated_auth",
         S("\x11"
           "u\x00"
           "secret\x00"
           "db\x00"),
         C_PLAIN, 0, "u", "secret", 6, "db", -1, NULL, NULL, 0, 0},
        {"pre41_no_charset",
         S("\x11"
           "u\x00"
           "s\x00"
           "db\x00"
           "\x21\x00"),
         C_PLAIN, 0, "u", "s", 1, "db", -1, NULL, NULL, 0, 8},
        /* ---- malformed ---- */
        BADCU("empty", "", C_ALL),
        BADCU("not_change_user", "\x03u\x00\x00", C_ALL),
        BADCU("user_no_nul", "\x11root", C_ALL),
        BADCU("no_auth_length", "\x11root\x00", C_ALL),
        BADCU("auth_past_end",
              "\x11u\x00\x14"
              "abc",
              C_ALL),
        BADCU("pre41_auth_no_nul", "\x11u\x00secret", C_PLAIN),
        BADCU("db_no_nul", "\x11u\x00\x00shop", C_ALL),
        BADCU("charset_cut", "\x11u\x00\x00shop\x00\x2d", C_ALL),
        BADCU("plugin_no_nul", "\x11u\x00\x00shop\x00\x2d\x00mysql_native", C_ALL),
        BADCU("attrs_past_end",
              "\x11u\x00\x00"
              "d\x00\x2d\x00p\x00\x0b" ATTRS,
              C_ALL),
        BADCU("attrs_huge",
              "\x11u\x00\x00"
              "d\x00\x2d\x00p\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xff" ATTRS,
              C_ALL),
        BADCU("attrs_null_marker",
              "\x11u\x00\x00"
              "d\x00\x2d\x00p\x00\xfb",
              C_ALL),
};

static void check_str(const struct cu_case *c, const char *field, const void *got, size_t got_len,
                      const char *want, size_t want_len)
{
	cr_assert_eq(got_len, want_len, "%s: %s length %zu", c->name, field, got_len);
	if (want_len)
		cr_assert_eq(memcmp(got, want, want_len), 0, "%s: %s", c->name, field);
}

Test(proto_command, change_user_table)
{
	for (size_t i = 0; i < N(cu_cases); i++) {
		const struct cu_case *c = &cu_cases[i];
		uint8_t *p = dup_exact(c->p, c->n);
		struct proto_change_user cu;
		int rc = proto_parse_change_user(p, c->n, c->caps, &cu);
		cr_assert_eq(rc, c->rc, "%s: rc %d", c->name, rc);
		if (rc == 0) {
			check_str(c, "user", cu.user, cu.user_len, c->user, strlen(c->user));
			check_str(c, "auth", cu.auth, cu.auth_len, c->auth, c->auth_len);
			cr_assert_eq(cu.has_db, c->db != NULL, "%s: has_db", c->name);
			if (c->db)
				check_str(c, "db", cu.db, cu.db_len, c->db, strlen(c->db));
			cr_assert_eq(cu.has_charset, c->charset >= 0, "%s: has_charset", c->name);
			if (c->charset >= 0)
				cr_assert_eq(cu.charset, c->charset, "%s: charset", c->name);
			cr_assert_eq(cu.has_plugin, c->plugin != NULL, "%s: has_plugin", c->name);
			if (c->plugin)
				check_str(c, "plugin", cu.plugin, cu.plugin_len, c->plugin,
				          strlen(c->plugin));
			cr_assert_eq(cu.has_attrs, c->attrs != NULL, "%s: has_attrs", c->name);
			if (c->attrs)
				check_str(c, "attrs", cu.attrs, cu.attrs_len, c->attrs,
				          c->attrs_len);
			cr_assert_eq(cu.used, c->used ? c->used : c->n, "%s: used %zu", c->name,
			             cu.used);
		}
		free(p);
	}
}

/* Every prefix of a valid packet either is refused or decodes as a packet
 * that ends before a later field (each field it has complete), and nothing
 * is read past its end (ASan build). */
Test(proto_command, change_user_every_prefix)
{
	for (size_t i = 0; i < N(cu_cases); i++) {
		const struct cu_case *c = &cu_cases[i];
		if (c->rc != 0)
			continue;
		for (size_t k = 0; k < c->n; k++) {
			uint8_t *p = dup_exact(c->p, k);
			struct proto_change_user cu;
			int rc = proto_parse_change_user(p, k, c->caps, &cu);
			cr_assert(rc == 0 || rc == -EPROTO, "%s: prefix %zu gave %d", c->name, k,
			          rc);
			if (rc == 0) {
				cr_assert_leq(cu.used, k, "%s: prefix %zu", c->name, k);
				/* What it has is what the whole packet has. */
				cr_assert_eq(cu.user_len, strlen(c->user), "%s: prefix %zu",
				             c->name, k);
				cr_assert_eq(cu.auth_len, c->auth_len, "%s: prefix %zu", c->name,
				             k);
				if (cu.has_db)
					cr_assert_eq(cu.db_len, strlen(c->db), "%s: prefix %zu",
					             c->name, k);
				if (cu.has_plugin)
					cr_assert_eq(cu.plugin_len, strlen(c->plugin),
					             "%s: prefix %zu", c->name, k);
				cr_assert(!cu.has_attrs || cu.attrs_len == c->attrs_len,
				          "%s: prefix %zu", c->name, k);
			}
			free(p);
		}
	}
}
