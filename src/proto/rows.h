/* Result set rows as a server sends them: text protocol rows (each cell a
 * length-encoded string, 0xFB for NULL) and binary protocol rows (0x00, a
 * NULL bitmap whose first bit is bit 2, then each non-NULL value in its
 * column type's binary form). Pure encoding of one row's payload: the
 * caller frames it as a packet (proto_pkt_begin / proto_pkt_end). */
#ifndef VECGATE_PROTO_ROWS_H
#define VECGATE_PROTO_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/mysql.h"

enum proto_cell_kind {
	PROTO_CELL_NULL,
	PROTO_CELL_TEXT,   /* p, n: the cell as a text protocol row carries it */
	PROTO_CELL_DOUBLE, /* d: a value computed by vecgate, for a DOUBLE column */
};

struct proto_cell {
	enum proto_cell_kind kind;
	/* TEXT in a binary row of an integer column: the column is unsigned
	 * (its text may then exceed INT64_MAX and may not be negative). */
	bool is_unsigned;
	const uint8_t *p;
	size_t n;
	double d;
};

/* Bytes of a binary row's NULL bitmap for ncols columns. */
size_t proto_binary_row_bitmap_len(size_t ncols);

/* Appends a text row's payload. A DOUBLE cell gives -EINVAL: its text
 * depends on the server being imitated, so the caller formats it and
 * passes TEXT. 0, -EINVAL or -ENOMEM; on error b is as it was. */
int proto_append_text_row(struct buf *b, const struct proto_cell *cells, size_t ncols) MUST_CHECK;

/* Appends a binary row's payload for columns of the given types (one
 * PROTO_TYPE_* per column, from the result's column definitions). A TEXT
 * cell is converted from the text protocol form: integers of the column's
 * width (the text must be a decimal integer; values are not range-checked
 * against narrower columns), FLOAT and DOUBLE parsed from their text,
 * everything else (strings, blobs, DECIMAL, JSON, BIT, ENUM, SET, vectors)
 * as the same length-encoded bytes. A DOUBLE cell needs a DOUBLE column.
 * 0, -ENOMEM, or -ENOTSUP when a cell cannot be given in its column's type
 * (dates and times, text that is not a number of the column's type, a
 * DOUBLE cell in another type); on error b is as it was. */
int proto_append_binary_row(struct buf *b, const struct proto_cell *cells, const uint8_t *types,
                            size_t ncols) MUST_CHECK;

#endif
