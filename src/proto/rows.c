/* Text and binary protocol row payloads from typed cells. */
#include "proto/rows.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first two bits of a binary row's NULL bitmap are reserved (MySQL's
 * protocol: the offset is 2 for result rows, 0 for statement parameters). */
#define ROW_NULL_OFFSET 2

size_t proto_binary_row_bitmap_len(size_t ncols)
{
	return (ncols + 7 + ROW_NULL_OFFSET) / 8;
}

int proto_append_text_row(struct buf *b, const struct proto_cell *cells, size_t ncols)
{
	size_t start = b->len;
	int rc = 0;
	for (size_t c = 0; c < ncols && rc == 0; c++) {
		switch (cells[c].kind) {
		case PROTO_CELL_NULL:
			rc = wr_u8(b, 0xFB);
			break;
		case PROTO_CELL_TEXT:
			rc = wr_lenenc_str(b, cells[c].p, cells[c].n);
			break;
		default:
			rc = -EINVAL;
			break;
		}
	}
	if (rc < 0)
		b->len = start;
	return rc;
}

/* Parses a decimal integer (an optional '-' unless is_unsigned, then
 * digits, nothing else) into the 64 bits the column's width is cut from. */
static bool parse_int(const uint8_t *p, size_t n, bool is_unsigned, uint64_t *out)
{
	bool neg = n > 0 && p[0] == '-';
	if (neg && is_unsigned)
		return false;
	p += neg;
	n -= neg;
	if (n == 0)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (!is_unsigned && v > (uint64_t)INT64_MAX + neg)
		return false;
	*out = neg ? 0 - v : v;
	return true;
}

/* FLOAT and DOUBLE from their text; the whole text must be the number.
 * strtod would take an empty text as 0, stop at a NUL byte and skip leading
 * white space, so those are refused first. */
static int put_real(struct buf *b, uint8_t type, const uint8_t *p, size_t n)
{
	char tmp[64];
	char *end;
	if (n == 0 || n >= sizeof(tmp) || memchr(p, 0, n) || isspace(p[0]))
		return -ENOTSUP;
	memcpy(tmp, p, n);
	tmp[n] = 0;
	if (type == PROTO_TYPE_FLOAT) {
		float f = strtof(tmp, &end);
		uint32_t bits;
		memcpy(&bits, &f, sizeof(bits));
		return *end ? -ENOTSUP : wr_u32(b, bits);
	}
	double d = strtod(tmp, &end);
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	return *end ? -ENOTSUP : wr_u64(b, bits);
}

static int put_text_as(struct buf *b, uint8_t type, const struct proto_cell *cell)
{
	int width = proto_binary_int_width(type);
	if (width) {
		uint64_t v;
		if (!parse_int(cell->p, cell->n, cell->is_unsigned, &v))
			return -ENOTSUP;
		for (int i = 0; i < width; i++)
			if (wr_u8(b, (uint8_t)(v >> (8 * i))) < 0)
				return -ENOMEM;
		return 0;
	}
	switch (type) {
	case PROTO_TYPE_DOUBLE:
	case PROTO_TYPE_FLOAT:
		return put_real(b, type, cell->p, cell->n);
	case PROTO_TYPE_DATE:
	case PROTO_TYPE_DATETIME:
	case PROTO_TYPE_TIMESTAMP:
	case PROTO_TYPE_TIME:
	case PROTO_TYPE_NEWDATE:
	case PROTO_TYPE_TIMESTAMP2:
	case PROTO_TYPE_DATETIME2:
	case PROTO_TYPE_TIME2:
	case PROTO_TYPE_NULL:
		/* Binary dates and times would have to be built from their
		 * text: not done, so such answers are left to the server. */
		return -ENOTSUP;
	default:
		return wr_lenenc_str(b, cell->p, cell->n);
	}
}

int proto_append_binary_row(struct buf *b, const struct proto_cell *cells, const uint8_t *types,
                            size_t ncols)
{
	size_t start = b->len;
	size_t nb = proto_binary_row_bitmap_len(ncols);
	if (wr_u8(b, 0x00) < 0 || buf_reserve(b, nb) < 0) {
		b->len = start;
		return -ENOMEM;
	}
	size_t bitmap = b->len;
	memset(b->data + bitmap, 0, nb);
	b->len += nb;
	int rc = 0;
	for (size_t c = 0; c < ncols && rc == 0; c++) {
		const struct proto_cell *cell = &cells[c];
		switch (cell->kind) {
		case PROTO_CELL_NULL: {
			size_t bit = c + ROW_NULL_OFFSET;
			b->data[bitmap + bit / 8] |= (uint8_t)(1u << (bit % 8));
			break;
		}
		case PROTO_CELL_TEXT:
			rc = put_text_as(b, types[c], cell);
			break;
		case PROTO_CELL_DOUBLE: {
			uint64_t bits;
			memcpy(&bits, &cell->d, sizeof(bits));
			rc = types[c] == PROTO_TYPE_DOUBLE ? wr_u64(b, bits) : -ENOTSUP;
			break;
		}
		default:
			rc = -EINVAL;
			break;
		}
	}
	if (rc < 0)
		b->len = start;
	return rc;
}
