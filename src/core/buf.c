/* Growable byte buffers, bounds-checked readers and wire-format writers. */
#include "core/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->off = 0;
	b->len = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	/* Reclaim consumed space first: cheaper than growing when the reader
	 * keeps up with the writer, as it does on a relayed stream. */
	if (b->off > 0 && b->cap - b->len + b->off >= n && b->off >= b->cap / 2) {
		buf_compact(b);
		return 0;
	}
	if (n > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	size_t want = b->len + n;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc < 0)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n > buf_unread(b))
		n = buf_unread(b);
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void buf_compact(struct buf *b)
{
	if (b->off == 0)
		return;
	size_t n = buf_unread(b);
	if (n > 0)
		memmove(b->data, b->data + b->off, n);
	b->off = 0;
	b->len = n;
}

bool rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = r->p[0];
	r->p += 1;
	return true;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

bool rd_u16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)le(r->p, 2);
	r->p += 2;
	return true;
}

bool rd_u24(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 3)
		return false;
	*v = (uint32_t)le(r->p, 3);
	r->p += 3;
	return true;
}

bool rd_u32(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)le(r->p, 4);
	r->p += 4;
	return true;
}

bool rd_u64(struct rd *r, uint64_t *v)
{
	if (rd_left(r) < 8)
		return false;
	*v = le(r->p, 8);
	r->p += 8;
	return true;
}

bool rd_skip(struct rd *r, size_t n)
{
	if (rd_left(r) < n)
		return false;
	r->p += n;
	return true;
}

bool rd_bytes(struct rd *r, size_t n, const uint8_t **p)
{
	if (rd_left(r) < n)
		return false;
	*p = r->p;
	r->p += n;
	return true;
}

bool rd_lenenc(struct rd *r, uint64_t *v, bool *is_null)
{
	if (rd_left(r) < 1)
		return false;
	uint8_t c = r->p[0];
	int n;
	if (c < 0xFB) {
		*v = c;
		if (is_null)
			*is_null = false;
		r->p += 1;
		return true;
	}
	if (c == 0xFB) {
		if (!is_null)
			return false;
		*is_null = true;
		*v = 0;
		r->p += 1;
		return true;
	}
	if (c == 0xFC)
		n = 2;
	else if (c == 0xFD)
		n = 3;
	else if (c == 0xFE)
		n = 8;
	else
		return false;
	if (rd_left(r) < (size_t)n + 1)
		return false;
	*v = le(r->p + 1, n);
	if (is_null)
		*is_null = false;
	r->p += n + 1;
	return true;
}

bool rd_lenenc_str(struct rd *r, const uint8_t **p, uint64_t *n)
{
	struct rd save = *r;
	uint64_t len;
	if (!rd_lenenc(r, &len, NULL) || len > rd_left(r)) {
		*r = save;
		return false;
	}
	*p = r->p;
	*n = len;
	r->p += len;
	return true;
}

bool rd_nulstr(struct rd *r, const uint8_t **p, size_t *n)
{
	const uint8_t *z = memchr(r->p, 0, rd_left(r));
	if (!z)
		return false;
	*p = r->p;
	*n = (size_t)(z - r->p);
	r->p = z + 1;
	return true;
}

static int wr_le(struct buf *b, uint64_t v, int n)
{
	int rc = buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	for (int i = 0; i < n; i++)
		b->data[b->len++] = (uint8_t)(v >> (8 * i));
	return 0;
}

int wr_u8(struct buf *b, uint8_t v)
{
	return wr_le(b, v, 1);
}
int wr_u16(struct buf *b, uint16_t v)
{
	return wr_le(b, v, 2);
}
int wr_u24(struct buf *b, uint32_t v)
{
	return wr_le(b, v, 3);
}
int wr_u32(struct buf *b, uint32_t v)
{
	return wr_le(b, v, 4);
}
int wr_u64(struct buf *b, uint64_t v)
{
	return wr_le(b, v, 8);
}

size_t lenenc_size(uint64_t v)
{
	if (v < 0xFB)
		return 1;
	if (v <= 0xFFFF)
		return 3;
	if (v <= 0xFFFFFF)
		return 4;
	return 9;
}

int wr_lenenc(struct buf *b, uint64_t v)
{
	if (v < 0xFB)
		return wr_le(b, v, 1);
	uint8_t marker = v <= 0xFFFF ? 0xFC : v <= 0xFFFFFF ? 0xFD : 0xFE;
	int n = v <= 0xFFFF ? 2 : v <= 0xFFFFFF ? 3 : 8;
	int rc = wr_le(b, marker, 1);
	return rc < 0 ? rc : wr_le(b, v, n);
}

int wr_lenenc_str(struct buf *b, const void *p, size_t n)
{
	int rc = wr_lenenc(b, n);
	return rc ? rc : buf_append(b, p, n);
}

int wr_nulstr(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s) + 1);
}

int buf_append_json_str(struct buf *b, const char *s)
{
	int rc = buf_append(b, "\"", 1);
	for (; *s && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			rc = buf_append(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			rc = buf_append(b, esc, 6);
		} else {
			rc = buf_append(b, s, 1);
		}
	}
	return rc ? rc : buf_append(b, "\"", 1);
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	/* vsnprintf writes a NUL after the text: room for it, then drop it. */
	int rc = buf_reserve(b, (size_t)n + 1);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}
