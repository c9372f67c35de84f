/* Unit tests for src/core/buf: growable buffers, readers and writers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/buf.h"

Test(buf, append_consume_compact)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(buf_append(&b, "abcd", 4), 0);
	cr_assert_eq(buf_unread(&b), 4000);
	buf_consume(&b, 3998);
	cr_assert_eq(buf_unread(&b), 2);
	cr_assert_eq(memcmp(buf_head(&b), "cd", 2), 0);
	buf_compact(&b);
	cr_assert_eq(b.off, 0);
	cr_assert_eq(memcmp(b.data, "cd", 2), 0);
	buf_consume(&b, 10); /* more than unread: drains, does not underflow */
	cr_assert_eq(buf_unread(&b), 0);
	cr_assert_eq(b.len, 0);
	buf_free(&b);
}

Test(buf, reserve_reuses_consumed_space)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(buf_append(&b, "0123456789", 10), 0);
	size_t cap = b.cap;
	cr_assert_eq(buf_append(&b, memset((char[256]){0}, 'x', 256), cap - 10), 0);
	buf_consume(&b, cap - 4);
	cr_assert_eq(buf_reserve(&b, 100), 0);
	cr_assert_eq(b.cap, cap, "compacted instead of growing");
	cr_assert_eq(buf_unread(&b), 4);
	buf_free(&b);
}

Test(buf, reserve_overflow)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(buf_reserve(&b, SIZE_MAX - 3), -ENOMEM);
	buf_free(&b);
}

Test(rd, fixed_ints_and_truncation)
{
	const uint8_t d[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
	struct rd r = rd_make(d, sizeof(d));
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	cr_assert(rd_u8(&r, &u8));
	cr_assert_eq(u8, 1);
	cr_assert(rd_u16(&r, &u16));
	cr_assert_eq(u16, 0x0302);
	cr_assert(rd_u24(&r, &u32));
	cr_assert_eq(u32, 0x060504);
	cr_assert_not(rd_u32(&r, &u32), "only 3 bytes left");
	cr_assert_eq(rd_left(&r), 3, "failed read leaves the cursor");
	cr_assert_not(rd_u64(&r, &u64));
	cr_assert_not(rd_skip(&r, 4));
	cr_assert(rd_skip(&r, 3));
	cr_assert_not(rd_u8(&r, &u8));
}

struct lenenc_case {
	uint8_t bytes[10];
	size_t n;
	bool ok;
	bool null_allowed;
	uint64_t value;
	bool is_null;
	size_t used;
};

Test(rd, lenenc_table)
{
	const struct lenenc_case cases[] = {
	        {{0x00}, 1, true, false, 0, false, 1},
	        {{0xFA}, 1, true, false, 250, false, 1},
	        {{0xFB}, 1, true, true, 0, true, 1},
	        {{0xFB}, 1, false, false, 0, false, 0},
	        {{0xFC, 0xFB, 0x00}, 3, true, false, 251, false, 3},
	        {{0xFC, 0xFF}, 2, false, false, 0, false, 0},
	        {{0xFD, 0x01, 0x02, 0x03}, 4, true, false, 0x030201, false, 4},
	        {{0xFD, 0x01, 0x02}, 3, false, false, 0, false, 0},
	        {{0xFE, 1, 2, 3, 4, 5, 6, 7, 8}, 9, true, false, 0x0807060504030201ull, false, 9},
	        {{0xFE, 1, 2, 3, 4, 5, 6, 7}, 8, false, false, 0, false, 0},
	        {{0xFF, 0, 0}, 3, false, true, 0, false, 0},
	        {{0}, 0, false, true, 0, false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct lenenc_case *c = &cases[i];
		struct rd r = rd_make(c->bytes, c->n);
		uint64_t v = 99;
		bool is_null = false;
		bool ok = rd_lenenc(&r, &v, c->null_allowed ? &is_null : NULL);
		cr_assert_eq(ok, c->ok, "case %zu", i);
		if (!ok) {
			cr_assert_eq(rd_left(&r), c->n, "case %zu: cursor moved on failure", i);
			continue;
		}
		cr_assert_eq(v, c->value, "case %zu", i);
		cr_assert_eq(is_null, c->is_null, "case %zu", i);
		cr_assert_eq(c->n - rd_left(&r), c->used, "case %zu", i);
	}
}

Test(wr, lenenc_round_trip)
{
	const uint64_t vals[] = {0, 1, 250, 251, 0xFFFF, 0x10000, 0xFFFFFF, 0x1000000, UINT64_MAX};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct buf b;
		buf_init(&b);
		cr_assert_eq(wr_lenenc(&b, vals[i]), 0);
		cr_assert_eq(b.len, lenenc_size(vals[i]), "value %zu", i);
		struct rd r = rd_make(b.data, b.len);
		uint64_t v;
		cr_assert(rd_lenenc(&r, &v, NULL));
		cr_assert_eq(v, vals[i]);
		cr_assert_eq(rd_left(&r), 0);
		buf_free(&b);
	}
}

Test(rd, lenenc_str_and_nulstr)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(wr_lenenc_str(&b, "hello", 5), 0);
	cr_assert_eq(wr_nulstr(&b, "world"), 0);
	cr_assert_eq(wr_u32(&b, 0xDEADBEEF), 0);
	struct rd r = rd_make(b.data, b.len);
	const uint8_t *p;
	uint64_t n;
	size_t zn;
	uint32_t u;
	cr_assert(rd_lenenc_str(&r, &p, &n));
	cr_assert_eq(n, 5);
	cr_assert_eq(memcmp(p, "hello", 5), 0);
	cr_assert(rd_nulstr(&r, &p, &zn));
	cr_assert_eq(zn, 5);
	cr_assert_eq(memcmp(p, "world", 5), 0);
	cr_assert(rd_u32(&r, &u));
	cr_assert_eq(u, 0xDEADBEEF);

	/* A length past the end and a missing NUL are errors, not overreads. */
	const uint8_t bad[] = {0x05, 'a', 'b'};
	r = rd_make(bad, sizeof(bad));
	cr_assert_not(rd_lenenc_str(&r, &p, &n));
	cr_assert_eq(rd_left(&r), 3);
	cr_assert_not(rd_nulstr(&r, &p, &zn));
	buf_free(&b);
}
