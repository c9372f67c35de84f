/* Growable byte buffers with a read cursor, and bounds-checked readers and
 * little-endian writers for the MySQL wire format. Used by every layer. */
#ifndef VECGATE_CORE_BUF_H
#define VECGATE_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUST_CHECK __attribute__((warn_unused_result))

/* A byte buffer: bytes [off, len) are unread, [len, cap) is free space.
 * Readers advance off with buf_consume(); writers append at len. */
struct buf {
	uint8_t *data;
	size_t off;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Makes room for at least n more bytes after len. 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t n) MUST_CHECK;
int buf_append(struct buf *b, const void *p, size_t n) MUST_CHECK;
/* Drops n unread bytes (n <= buf_unread(b)); rewinds to empty when drained. */
void buf_consume(struct buf *b, size_t n);
/* Moves unread bytes to the front so free space is contiguous. */
void buf_compact(struct buf *b);
void buf_reset(struct buf *b);

static inline size_t buf_unread(const struct buf *b)
{
	return b->len - b->off;
}
static inline const uint8_t *buf_head(const struct buf *b)
{
	return b->data + b->off;
}

/* Bounds-checked reader over a byte range. Every rd_* returns false (and
 * leaves the reader unchanged) when the bytes it needs are not there. */
struct rd {
	const uint8_t *p;
	const uint8_t *end;
};

static inline struct rd rd_make(const void *p, size_t n)
{
	struct rd r = {(const uint8_t *)p, (const uint8_t *)p + n};
	return r;
}
static inline size_t rd_left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

bool rd_u8(struct rd *r, uint8_t *v) MUST_CHECK;
bool rd_u16(struct rd *r, uint16_t *v) MUST_CHECK;
bool rd_u24(struct rd *r, uint32_t *v) MUST_CHECK;
bool rd_u32(struct rd *r, uint32_t *v) MUST_CHECK;
bool rd_u64(struct rd *r, uint64_t *v) MUST_CHECK;
bool rd_skip(struct rd *r, size_t n) MUST_CHECK;
bool rd_bytes(struct rd *r, size_t n, const uint8_t **p) MUST_CHECK;
/* Length-encoded integer. *is_null is set for the 0xFB NULL marker (when
 * is_null is NULL, the marker is an error). 0xFF is always an error. */
bool rd_lenenc(struct rd *r, uint64_t *v, bool *is_null) MUST_CHECK;
/* Length-encoded string: *p points into the reader's memory. */
bool rd_lenenc_str(struct rd *r, const uint8_t **p, uint64_t *n) MUST_CHECK;
/* NUL-terminated string; *n excludes the NUL, which is consumed. */
bool rd_nulstr(struct rd *r, const uint8_t **p, size_t *n) MUST_CHECK;

/* Writers append to a buffer; 0 or -ENOMEM. */
int wr_u8(struct buf *b, uint8_t v) MUST_CHECK;
int wr_u16(struct buf *b, uint16_t v) MUST_CHECK;
int wr_u24(struct buf *b, uint32_t v) MUST_CHECK;
int wr_u32(struct buf *b, uint32_t v) MUST_CHECK;
int wr_u64(struct buf *b, uint64_t v) MUST_CHECK;
int wr_lenenc(struct buf *b, uint64_t v) MUST_CHECK;
int wr_lenenc_str(struct buf *b, const void *p, size_t n) MUST_CHECK;
int wr_nulstr(struct buf *b, const char *s) MUST_CHECK;
/* Appends printf-formatted text (no NUL). 0, -ENOMEM or -EINVAL. */
int buf_appendf(struct buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3))) MUST_CHECK;
/* Appends s as a JSON string, quoted and escaped. 0 or -ENOMEM. */
int buf_append_json_str(struct buf *b, const char *s) MUST_CHECK;
/* Number of bytes wr_lenenc() writes for v. */
size_t lenenc_size(uint64_t v);

#endif
