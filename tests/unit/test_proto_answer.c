/* proto/answer: status flags as the server would set them, terminator
 * status offsets (every truncation), and whole answers byte for byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/answer.h"
#include "proto/mysql.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(proto_answer, status)
{
	static const struct {
		uint16_t now, captured, want;
	} cases[] = {
	        /* autocommit, no transaction: the answer leaves it so */
	        {0x0002, 0x0002, 0x0002},
	        /* captured inside a transaction, answered outside one */
	        {0x0002, 0x0003, 0x0002},
	        /* captured outside, answered inside */
	        {0x0003, 0x0002, 0x0003},
	        /* autocommit off: the statement opens a transaction (PyMySQL
	         * sessions right after COMMIT) */
	        {0x0000, 0x0001, 0x0001},
	        {0x0000, 0x0000, 0x0001},
	        /* per-statement bits come from the captured answer, not from
	         * the session's previous statement */
	        {0x0022, 0x0002, 0x0002},
	        {0x0002, 0x0022, 0x0022},
	        {0x0001, 0x0080, 0x0081},
	        /* session bits stay the session's */
	        {0x0202, 0x0002, 0x0202},
	        {0x2003, 0x0003, 0x2003},
	        /* never more results or a cursor */
	        {0x0002, 0x004a, 0x0002},
	};
	for (size_t i = 0; i < N(cases); i++)
		cr_assert_eq(proto_answer_status(cases[i].now, cases[i].captured), cases[i].want,
		             "case %zu: %#x", i,
		             proto_answer_status(cases[i].now, cases[i].captured));
}

static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	cr_assert(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

Test(proto_answer, terminator_offsets)
{
	static const struct {
		const char *p;
		size_t n;
		int want;
	} cases[] = {
	        {"\xfe\x00\x00\x02\x00", 5, 3},                       /* EOF */
	        {"\xfe\x00\x00\x02\x00\x00\x00", 7, 3},               /* OK-as-EOF, 0 rows */
	        {"\xfe\xfc\x10\x27\x05\x02\x00\x00\x00", 9, 5},       /* 10000 rows, id 5 */
	        {"\x00\x00\x00\x02\x00", 5, -EPROTO},                 /* not 0xFE */
	        {"\xfe\x00\x00\x02", 4, -EPROTO},                     /* short */
	        {"\xfe\xfc\x10", 3, -EPROTO},                         /* lenenc cut */
	        {"\xfe\x00\x00\x02\x00\x00", 6, -EPROTO},             /* status cut */
	        {"\xfe\xff\x00\x00\x00\x00\x00\x00\x00", 9, -EPROTO}, /* 0xFF lenenc */
	};
	for (size_t i = 0; i < N(cases); i++) {
		uint8_t *p = dup_exact(cases[i].p, cases[i].n);
		cr_assert_eq(proto_terminator_status_offset(p, cases[i].n), cases[i].want,
		             "case %zu", i);
		free(p);
		/* every prefix of a valid one is refused, never read past */
		if (cases[i].want < 0)
			continue;
		for (size_t k = 0; k < cases[i].n; k++) {
			p = dup_exact(cases[i].p, k);
			int off = proto_terminator_status_offset(p, k);
			cr_assert(off == -EPROTO || (off > 0 && (size_t)off + 2 <= k),
			          "case %zu prefix %zu: %d", i, k, off);
			free(p);
		}
	}
}

/* defs: u32 length + payload, twice. */
static size_t make_defs(uint8_t *out)
{
	static const char *d[] = {"\x03"
	                          "def"
	                          "\x00\x00\x00\x01"
	                          "a"
	                          "\x00\x0c\x3f\x00\x0b\x00\x00\x00"
	                          "\x03\x80\x00\x00\x00\x00",
	                          "\x03"
	                          "def"
	                          "\x00\x00\x00\x01"
	                          "d"
	                          "\x00\x0c\x3f\x00\x17\x00\x00\x00"
	                          "\x05\x80\x00\x1f\x00\x00"};
	static const uint32_t len[] = {24, 24};
	size_t off = 0;
	for (int i = 0; i < 2; i++) {
		memcpy(out + off, &len[i], 4);
		memcpy(out + off + 4, d[i], len[i]);
		off += 4 + len[i];
	}
	return off;
}

Test(proto_answer, header_and_answer)
{
	uint8_t defs[64];
	size_t defs_len = make_defs(defs);
	struct buf b;
	buf_init(&b);
	cr_assert_eq(proto_append_answer_header(&b, 2, defs, defs_len), 0);
	/* count (seq 1), two definitions (seq 2, 3) */
	cr_assert_eq(b.len, 4 + 1 + 2 * (4 + 24));
	cr_assert_eq(memcmp(b.data, "\x01\x00\x00\x01\x02", 5), 0);
	cr_assert_eq(b.data[5 + 3], 2);
	cr_assert_eq(b.data[5 + 28 + 3], 3);
	/* definitions that do not add up are refused and nothing is left */
	cr_assert_eq(proto_append_answer_header(&b, 3, defs, defs_len), -EPROTO);
	cr_assert_eq(proto_append_answer_header(&b, 1, defs, defs_len), -EPROTO);
	cr_assert_eq(proto_append_answer_header(&b, 2, defs, defs_len - 1), -EPROTO);
	cr_assert_eq(b.len, 61);

	/* a whole answer: one row (seq 5), EOF after definitions (seq 4),
	 * terminator (seq 6) with the session's status */
	static const uint8_t row[] = {0x05, 0x00, 0x00, 0x05, 0x01, '1', 0x01, '0', 0xfb};
	static const uint8_t eof[] = {0xfe, 0x00, 0x00, 0x02, 0x00};
	struct proto_answer a = {
	        .ncols = 2,
	        .defs = defs,
	        .defs_len = defs_len,
	        .mid = eof,
	        .mid_len = sizeof(eof),
	        .mid_status = 0x0003,
	        .rows = row,
	        .rows_len = 9,
	        .nrows = 1,
	        .term = eof,
	        .term_len = sizeof(eof),
	        .status = 0x0023,
	};
	struct buf c;
	buf_init(&c);
	cr_assert_eq(proto_append_answer(&c, &a, NULL, 0), 0);
	cr_assert_eq(c.len, 61 + 9 + 9 + 9);
	cr_assert_eq(memcmp(c.data, b.data, 61), 0);
	static const uint8_t tail[] = {0x05, 0, 0, 4, 0xfe, 0,   0,    0x03, 0x00, /* mid */
	                               0x05, 0, 0, 5, 0x01, '1', 0x01, '0',  0xfb,
	                               0x05, 0, 0, 6, 0xfe, 0,   0,    0x23, 0x00};
	cr_assert_eq(memcmp(c.data + 61, tail, sizeof(tail)), 0);
	/* with the header given, the same bytes */
	struct buf d;
	buf_init(&d);
	cr_assert_eq(proto_append_answer(&d, &a, b.data, b.len), 0);
	cr_assert_eq(d.len, c.len);
	cr_assert_eq(memcmp(d.data, c.data, c.len), 0);
	/* a bad terminator: refused, nothing appended */
	a.term_len = 4;
	size_t before = d.len;
	cr_assert_eq(proto_append_answer(&d, &a, b.data, b.len), -EPROTO);
	cr_assert_eq(d.len, before);
	buf_free(&b);
	buf_free(&c);
	buf_free(&d);
}
