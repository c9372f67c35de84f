/* Result-set rows (src/proto/rows.c): text and binary protocol rows encoded
 * from cells the input describes (NULL, text with or without the unsigned
 * flag, a computed double) for columns of input-chosen types. The driver
 * decodes every row the encoders produce and checks it carries exactly the
 * cells: NULL bits at their offset, lenenc strings, integers cut to their
 * column's width from a decimal text, FLOAT and DOUBLE as the text's value;
 * and a refused row must leave the buffer as it was. */
#include "fuzz.h"

#include <ctype.h>
#include <errno.h>

#include "proto/mysql.h"
#include "proto/rows.h"

#define MAX_COLS 40

static const uint8_t col_types[] = {
        PROTO_TYPE_TINY,       PROTO_TYPE_SHORT,      PROTO_TYPE_LONG,      PROTO_TYPE_FLOAT,
        PROTO_TYPE_DOUBLE,     PROTO_TYPE_NULL,       PROTO_TYPE_TIMESTAMP, PROTO_TYPE_LONGLONG,
        PROTO_TYPE_INT24,      PROTO_TYPE_DATE,       PROTO_TYPE_TIME,      PROTO_TYPE_DATETIME,
        PROTO_TYPE_YEAR,       PROTO_TYPE_VARCHAR,    PROTO_TYPE_BIT,       PROTO_TYPE_JSON,
        PROTO_TYPE_NEWDECIMAL, PROTO_TYPE_ENUM,       PROTO_TYPE_SET,       PROTO_TYPE_BLOB,
        PROTO_TYPE_LONG_BLOB,  PROTO_TYPE_VAR_STRING, PROTO_TYPE_STRING,    PROTO_TYPE_GEOMETRY,
        PROTO_TYPE_DECIMAL,    PROTO_TYPE_NEWDATE,    PROTO_TYPE_VECTOR,    PROTO_TYPE_TIME2,
};

/* A decimal integer: optional '-' (signed only), then digits only. */
static bool decimal(const uint8_t *p, size_t n, bool is_unsigned)
{
	size_t i = n > 0 && p[0] == '-' && !is_unsigned;
	if (i == n)
		return false;
	for (; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static void check_text_row(const struct buf *b, size_t start, const struct proto_cell *cells,
                           size_t ncols)
{
	struct rd r = rd_make(b->data + start, b->len - start);
	for (size_t c = 0; c < ncols; c++) {
		if (cells[c].kind == PROTO_CELL_NULL) {
			uint8_t x;
			FUZZ_CHECK(rd_u8(&r, &x) && x == 0xFB);
			continue;
		}
		const uint8_t *p;
		uint64_t n;
		FUZZ_CHECK(rd_lenenc_str(&r, &p, &n));
		FUZZ_CHECK(n == cells[c].n && (n == 0 || memcmp(p, cells[c].p, n) == 0));
	}
	FUZZ_CHECK(rd_left(&r) == 0);
}

static void check_value(struct rd *r, uint8_t type, const struct proto_cell *cell)
{
	int width = proto_binary_int_width(type);
	const uint8_t *v;
	if (cell->kind == PROTO_CELL_DOUBLE) {
		uint64_t bits, want;
		FUZZ_CHECK(type == PROTO_TYPE_DOUBLE && rd_u64(r, &bits));
		memcpy(&want, &cell->d, sizeof(want));
		FUZZ_CHECK(bits == want);
		return;
	}
	if (width) {
		/* A decimal integer that fits 64 bits (signed unless the column is
		 * unsigned), cut to the column's width. */
		FUZZ_CHECK(decimal(cell->p, cell->n, cell->is_unsigned));
		bool neg = cell->p[0] == '-';
		uint64_t mag = 0;
		for (size_t i = neg; i < cell->n; i++) {
			unsigned d = cell->p[i] - '0';
			FUZZ_CHECK(mag <= (UINT64_MAX - d) / 10);
			mag = mag * 10 + d;
		}
		if (!cell->is_unsigned)
			FUZZ_CHECK(mag <= (uint64_t)INT64_MAX + neg);
		uint64_t want = neg ? 0 - mag : mag;
		FUZZ_CHECK(rd_bytes(r, (size_t)width, &v));
		for (int i = 0; i < width; i++)
			FUZZ_CHECK(v[i] == (uint8_t)(want >> (8 * i)));
		return;
	}
	char tmp[64];
	if (type == PROTO_TYPE_FLOAT || type == PROTO_TYPE_DOUBLE) {
		/* Only a whole number text is converted. */
		FUZZ_CHECK(cell->n > 0 && cell->n < sizeof(tmp) && !memchr(cell->p, 0, cell->n) &&
		           !isspace(cell->p[0]));
		memcpy(tmp, cell->p, cell->n);
		tmp[cell->n] = 0;
	}
	if (type == PROTO_TYPE_FLOAT) {
		uint32_t bits, want;
		FUZZ_CHECK(rd_u32(r, &bits));
		float f = strtof(tmp, NULL);
		memcpy(&want, &f, sizeof(want));
		FUZZ_CHECK(bits == want);
		return;
	}
	if (type == PROTO_TYPE_DOUBLE) {
		uint64_t bits, want;
		FUZZ_CHECK(rd_u64(r, &bits));
		double d = strtod(tmp, NULL);
		memcpy(&want, &d, sizeof(want));
		FUZZ_CHECK(bits == want);
		return;
	}
	uint64_t n;
	FUZZ_CHECK(rd_lenenc_str(r, &v, &n));
	FUZZ_CHECK(n == cell->n && (n == 0 || memcmp(v, cell->p, n) == 0));
}

static void check_binary_row(const struct buf *b, size_t start, const struct proto_cell *cells,
                             const uint8_t *types, size_t ncols)
{
	struct rd r = rd_make(b->data + start, b->len - start);
	uint8_t h;
	const uint8_t *bitmap;
	size_t nb = proto_binary_row_bitmap_len(ncols);
	FUZZ_CHECK(nb == (ncols + 9) / 8);
	FUZZ_CHECK(rd_u8(&r, &h) && h == 0 && rd_bytes(&r, nb, &bitmap));
	FUZZ_CHECK((bitmap[0] & 3) == 0);
	for (size_t c = 0; c < ncols; c++) {
		size_t bit = c + 2;
		bool null = bitmap[bit / 8] & (1u << (bit % 8));
		FUZZ_CHECK(null == (cells[c].kind == PROTO_CELL_NULL));
		if (!null)
			check_value(&r, types[c], &cells[c]);
	}
	FUZZ_CHECK(rd_left(&r) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	size_t ncols = fuzz_u8(&in) % (MAX_COLS + 1);
	struct proto_cell cells[MAX_COLS];
	uint8_t types[MAX_COLS];
	bool has_double = false;
	for (size_t c = 0; c < ncols; c++) {
		uint8_t k = fuzz_u8(&in);
		types[c] = col_types[fuzz_u8(&in) % sizeof(col_types)];
		memset(&cells[c], 0, sizeof(cells[c]));
		cells[c].is_unsigned = k & 0x80;
		switch (k % 4) {
		case 0:
			cells[c].kind = PROTO_CELL_NULL;
			break;
		case 1: {
			uint64_t bits = (uint64_t)fuzz_u32(&in) | (uint64_t)fuzz_u32(&in) << 32;
			cells[c].kind = PROTO_CELL_DOUBLE;
			memcpy(&cells[c].d, &bits, sizeof(bits));
			has_double = true;
			break;
		}
		default: {
			size_t len = fuzz_u8(&in);
			if (len > in.n)
				len = in.n;
			cells[c].kind = PROTO_CELL_TEXT;
			cells[c].p = in.p;
			cells[c].n = len;
			in.p += len;
			in.n -= len;
			break;
		}
		}
	}

	struct buf b;
	buf_init(&b);
	/* Something before the row, as in an output buffer. */
	FUZZ_CHECK(buf_append(&b, "\x05\x00\x00\x01", 4) == 0);
	int rc = proto_append_text_row(&b, cells, ncols);
	if (has_double) {
		FUZZ_CHECK(rc == -EINVAL && b.len == 4);
	} else {
		FUZZ_CHECK(rc == 0);
		check_text_row(&b, 4, cells, ncols);
	}
	b.len = 4;
	rc = proto_append_binary_row(&b, cells, types, ncols);
	if (rc == 0)
		check_binary_row(&b, 4, cells, types, ncols);
	else
		FUZZ_CHECK(rc == -ENOTSUP && b.len == 4);
	buf_free(&b);
	return 0;
}
