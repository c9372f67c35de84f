/* Unit tests for src/proto/rows: text and binary protocol row payloads from
 * typed cells, the binary NULL bitmap with its 2-bit offset, every integer
 * width, values that cannot be converted, and rollback on error. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/rows.h"

#define N(a)     (sizeof(a) / sizeof((a)[0]))
#define MAX_COLS 10
#define NUL                                                                                        \
	{                                                                                          \
		.kind = PROTO_CELL_NULL                                                            \
	}
#define TXT(s)                                                                                     \
	{                                                                                          \
		.kind = PROTO_CELL_TEXT, .p = (const uint8_t *)(s), .n = sizeof(s) - 1             \
	}
#define UTXT(s)                                                                                    \
	{                                                                                          \
		.kind = PROTO_CELL_TEXT, .is_unsigned = true, .p = (const uint8_t *)(s),           \
		.n = sizeof(s) - 1                                                                 \
	}
#define DBL(v)                                                                                     \
	{                                                                                          \
		.kind = PROTO_CELL_DOUBLE, .d = (v)                                                \
	}
#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1
#define NONE     NULL, 0
/* Bytes already in the buffer, which a failed append must leave alone. */
#define BEFORE     "prev"
#define BEFORE_LEN 4

struct row_case {
	const char *name;
	size_t ncols;
	struct proto_cell cells[MAX_COLS];
	uint8_t types[MAX_COLS]; /* binary rows */
	int rc;
	const uint8_t *want; /* the payload when rc is 0 */
	size_t want_len;
};

static const struct row_case text_cases[] = {
        {"no_columns", 0, {NUL}, {0}, 0, NONE},
        {"nulls", 3, {NUL, NUL, NUL}, {0}, 0, BYTES("\xfb\xfb\xfb")},
        {"cells",
         4,
         {TXT("7"), TXT(""), TXT("[1,2.5]"), NUL},
         {0},
         0,
         BYTES("\x01"
               "7"
               "\x00"
               "\x07"
               "[1,2.5]"
               "\xfb")},
        /* The bytes are the cell's whatever they are: text rows never
         * convert (is_unsigned only matters to binary rows). */
        {"bytes_as_they_are",
         2,
         {TXT("\xfb\x00"), UTXT("-1")},
         {0},
         0,
         BYTES("\x02\xfb\x00\x02-1")},
        {"double_is_formatted_by_the_caller", 2, {TXT("x"), DBL(0.5)}, {0}, -EINVAL, NONE},
        {"bad_kind", 1, {{.kind = (enum proto_cell_kind)7}}, {0}, -EINVAL, NONE},
};

static void check_append(const struct row_case *c, bool binary)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(buf_append(&b, BEFORE, BEFORE_LEN), 0);
	int rc = binary ? proto_append_binary_row(&b, c->cells, c->types, c->ncols)
	                : proto_append_text_row(&b, c->cells, c->ncols);
	cr_assert_eq(rc, c->rc, "%s: rc %d, want %d", c->name, rc, c->rc);
	cr_assert_eq(memcmp(b.data, BEFORE, BEFORE_LEN), 0, "%s", c->name);
	if (rc == 0) {
		cr_assert_eq(b.len, BEFORE_LEN + c->want_len, "%s: %zu bytes, want %zu", c->name,
		             b.len - BEFORE_LEN, c->want_len);
		for (size_t i = 0; i < c->want_len; i++)
			cr_assert_eq(b.data[BEFORE_LEN + i], c->want[i],
			             "%s: byte %zu is %#x, want %#x", c->name, i,
			             b.data[BEFORE_LEN + i], c->want[i]);
	} else {
		cr_assert_eq(b.len, BEFORE_LEN, "%s: a failed row left %zu bytes", c->name,
		             b.len - BEFORE_LEN);
	}
	buf_free(&b);
}

Test(proto_rows, text_table)
{
	for (size_t i = 0; i < N(text_cases); i++)
		check_append(&text_cases[i], false);
}

Test(proto_rows, text_long_cells)
{
	static const size_t lens[] = {250, 251, 65535, 65536, 1u << 24};
	for (size_t i = 0; i < N(lens); i++) {
		uint8_t *cell = malloc(lens[i]);
		cr_assert(cell);
		memset(cell, 'v', lens[i]);
		struct proto_cell cells[2] = {
		        {.kind = PROTO_CELL_TEXT, .p = cell, .n = lens[i]},
		        {.kind = PROTO_CELL_NULL},
		};
		struct buf b;
		buf_init(&b);
		cr_assert_eq(proto_append_text_row(&b, cells, 2), 0);
		size_t hdr = lenenc_size(lens[i]);
		cr_assert_eq(b.len, hdr + lens[i] + 1);
		struct rd r = rd_make(b.data, b.len);
		const uint8_t *p;
		uint64_t n;
		cr_assert(rd_lenenc_str(&r, &p, &n));
		cr_assert_eq(n, lens[i]);
		cr_assert_eq(memcmp(p, cell, n), 0);
		cr_assert_eq(rd_left(&r), 1);
		cr_assert_eq(*r.p, 0xfb);
		buf_free(&b);
		free(cell);
	}
}

Test(proto_rows, bitmap_len)
{
	/* Columns 0..5 use the first byte (bits 2..7), then 8 per byte. */
	static const size_t want[] = {1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3};
	for (size_t n = 0; n < N(want); n++)
		cr_assert_eq(proto_binary_row_bitmap_len(n), want[n], "%zu columns", n);
}

#define T_TINY     PROTO_TYPE_TINY
#define T_SHORT    PROTO_TYPE_SHORT
#define T_YEAR     PROTO_TYPE_YEAR
#define T_INT24    PROTO_TYPE_INT24
#define T_LONG     PROTO_TYPE_LONG
#define T_LONGLONG PROTO_TYPE_LONGLONG
#define T_FLOAT    PROTO_TYPE_FLOAT
#define T_DOUBLE   PROTO_TYPE_DOUBLE
#define T_VAR      PROTO_TYPE_VAR_STRING
#define T_LBLOB    PROTO_TYPE_LONG_BLOB

static const struct row_case binary_cases[] = {
        {"no_columns", 0, {NUL}, {0}, 0, BYTES("\x00\x00")},
        /* The first column's NULL bit is bit 2 of the first byte. */
        {"first_null", 1, {NUL}, {T_LONG}, 0, BYTES("\x00\x04")},
        {"sixth_null",
         6,
         {TXT("1"), TXT("2"), TXT("3"), TXT("4"), TXT("5"), NUL},
         {T_TINY, T_TINY, T_TINY, T_TINY, T_TINY, T_TINY},
         0,
         BYTES("\x00\x80\x01\x02\x03\x04\x05")},
        /* The seventh column's bit is the first of a second byte. */
        {"seventh_null",
         7,
         {TXT("1"), NUL, TXT("3"), TXT("4"), TXT("5"), TXT("6"), NUL},
         {T_TINY, T_TINY, T_TINY, T_TINY, T_TINY, T_TINY, T_TINY},
         0,
         BYTES("\x00\x08\x01\x01\x03\x04\x05\x06")},
        {"all_null_ten",
         10,
         {NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL},
         {0},
         0,
         BYTES("\x00\xfc\x0f")},
        /* A NULL cell needs no conversion, even in a type that has none. */
        {"null_date", 1, {NUL}, {PROTO_TYPE_DATE}, 0, BYTES("\x00\x04")},
        {"signed_every_width",
         6,
         {TXT("-1"), TXT("-2"), TXT("2024"), TXT("-3"), TXT("2147483647"),
          TXT("-9223372036854775808")},
         {T_TINY, T_SHORT, T_YEAR, T_INT24, T_LONG, T_LONGLONG},
         0,
         BYTES("\x00\x00"
               "\xff"
               "\xfe\xff"
               "\xe8\x07"
               "\xfd\xff\xff\xff"
               "\xff\xff\xff\x7f"
               "\x00\x00\x00\x00\x00\x00\x00\x80")},
        {"unsigned",
         3,
         {UTXT("255"), UTXT("4294967295"), UTXT("18446744073709551615")},
         {T_TINY, T_LONG, T_LONGLONG},
         0,
         BYTES("\x00\x00"
               "\xff"
               "\xff\xff\xff\xff"
               "\xff\xff\xff\xff\xff\xff\xff\xff")},
        /* Not range-checked: the column's type bounds what the server
         * sent, and the value is cut to the column's width. */
        {"wider_than_column", 1, {TXT("300")}, {T_TINY}, 0, BYTES("\x00\x00\x2c")},
        {"int_too_big_signed", 1, {TXT("9223372036854775808")}, {T_LONGLONG}, -ENOTSUP, NONE},
        {"int_too_big_unsigned", 1, {UTXT("18446744073709551616")}, {T_LONGLONG}, -ENOTSUP, NONE},
        {"negative_unsigned", 1, {UTXT("-1")}, {T_LONG}, -ENOTSUP, NONE},
        {"int_empty", 1, {TXT("")}, {T_LONG}, -ENOTSUP, NONE},
        {"int_sign_only", 1, {TXT("-")}, {T_LONG}, -ENOTSUP, NONE},
        {"int_plus", 1, {TXT("+1")}, {T_LONG}, -ENOTSUP, NONE},
        {"int_space", 1, {TXT(" 1")}, {T_LONG}, -ENOTSUP, NONE},
        {"int_decimal", 1, {TXT("1.0")}, {T_LONG}, -ENOTSUP, NONE},
        {"float_double_text",
         3,
         {TXT("1.5"), TXT("0.1"), TXT("1e15")},
         {T_FLOAT, T_DOUBLE, T_DOUBLE},
         0,
         BYTES("\x00\x00"
               "\x00\x00\xc0\x3f"
               "\x9a\x99\x99\x99\x99\x99\xb9\x3f"
               "\x00\x00\x34\x26\xf5\x6b\x0c\x43")},
        {"double_text_garbage", 1, {TXT("0.5x")}, {T_DOUBLE}, -ENOTSUP, NONE},
        {"float_text_garbage", 1, {TXT("abc")}, {T_FLOAT}, -ENOTSUP, NONE},
        /* strtod reads no number from these, or stops early: not numbers. */
        {"double_text_empty", 1, {TXT("")}, {T_DOUBLE}, -ENOTSUP, NONE},
        {"float_text_empty", 1, {TXT("")}, {T_FLOAT}, -ENOTSUP, NONE},
        {"double_text_nul", 1, {TXT("1\0x")}, {T_DOUBLE}, -ENOTSUP, NONE},
        {"float_text_space", 1, {TXT(" 1.5")}, {T_FLOAT}, -ENOTSUP, NONE},
        {"double_text_too_long",
         1,
         {TXT("0.000000000000000000000000000000000000000000000000000000000000001")},
         {T_DOUBLE},
         -ENOTSUP,
         NONE},
        /* Computed doubles: the bits as they are, -0 included. */
        {"computed_doubles",
         3,
         {DBL(0.5), DBL(-0.0), NUL},
         {T_DOUBLE, T_DOUBLE, T_DOUBLE},
         0,
         BYTES("\x00\x10"
               "\x00\x00\x00\x00\x00\x00\xe0\x3f"
               "\x00\x00\x00\x00\x00\x00\x00\x80")},
        {"computed_double_in_float", 1, {DBL(0.5)}, {T_FLOAT}, -ENOTSUP, NONE},
        {"computed_double_in_string", 1, {DBL(0.5)}, {T_VAR}, -ENOTSUP, NONE},
        /* Strings, blobs, decimals, JSON, vectors: the text row's bytes. */
        {"lenenc_types",
         5,
         {TXT("ab"), TXT("[1,2]"), TXT("1.50"), TXT("{}"), TXT("")},
         {T_VAR, T_LBLOB, PROTO_TYPE_NEWDECIMAL, PROTO_TYPE_JSON, PROTO_TYPE_STRING},
         0,
         BYTES("\x00\x00"
               "\x02"
               "ab"
               "\x05"
               "[1,2]"
               "\x04"
               "1.50"
               "\x02"
               "{}"
               "\x00")},
        {"date", 1, {TXT("2024-01-02")}, {PROTO_TYPE_DATE}, -ENOTSUP, NONE},
        {"datetime", 1, {TXT("2024-01-02 03:04:05")}, {PROTO_TYPE_DATETIME}, -ENOTSUP, NONE},
        {"timestamp", 1, {TXT("2024-01-02 03:04:05")}, {PROTO_TYPE_TIMESTAMP}, -ENOTSUP, NONE},
        {"time", 1, {TXT("03:04:05")}, {PROTO_TYPE_TIME}, -ENOTSUP, NONE},
        {"null_type", 1, {TXT("x")}, {PROTO_TYPE_NULL}, -ENOTSUP, NONE},
        /* A failure after good cells leaves nothing behind. */
        {"fails_late", 3, {TXT("1"), TXT("ab"), TXT("x")}, {T_LONG, T_VAR, T_LONG}, -ENOTSUP, NONE},
        {"bad_kind", 1, {{.kind = (enum proto_cell_kind)7}}, {T_LONG}, -EINVAL, NONE},
        /* What a kNN answer looks like: id, content NULL, vector, distance. */
        {"knn_answer",
         4,
         {TXT("7"), NUL, TXT("[1,2]"), DBL(0.25)},
         {T_LONGLONG, T_VAR, T_LBLOB, T_DOUBLE},
         0,
         BYTES("\x00\x08"
               "\x07\x00\x00\x00\x00\x00\x00\x00"
               "\x05"
               "[1,2]"
               "\x00\x00\x00\x00\x00\x00\xd0\x3f")},
};

Test(proto_rows, binary_table)
{
	for (size_t i = 0; i < N(binary_cases); i++)
		check_append(&binary_cases[i], true);
}

/* Several rows appended to one buffer keep their own bitmaps. */
Test(proto_rows, rows_back_to_back)
{
	struct proto_cell a[2] = {{.kind = PROTO_CELL_NULL}, {.kind = PROTO_CELL_DOUBLE, .d = 1}};
	struct proto_cell b2[2] = {{.kind = PROTO_CELL_DOUBLE, .d = 1}, {.kind = PROTO_CELL_NULL}};
	static const uint8_t types[2] = {PROTO_TYPE_DOUBLE, PROTO_TYPE_DOUBLE};
	struct buf b;
	buf_init(&b);
	cr_assert_eq(proto_append_binary_row(&b, a, types, 2), 0);
	cr_assert_eq(proto_append_binary_row(&b, b2, types, 2), 0);
	static const uint8_t want[] = "\x00\x04\x00\x00\x00\x00\x00\x00\xf0\x3f"
	                              "\x00\x08\x00\x00\x00\x00\x00\x00\xf0\x3f";
	cr_assert_eq(b.len, sizeof(want) - 1);
	cr_assert_eq(memcmp(b.data, want, b.len), 0);
	buf_free(&b);
}
