/* Unit tests for the fast paths of vector text: vec_parse()'s number reader
 * against strtod on many random and edge-case numbers, vec_format_f32()'s
 * shortest digits against a plain search with printf and strtof, and the
 * canonical-text check and unallocated printing the cache uses. */
#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec/vec.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static bool same_bits(float a, float b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

/* ---- parsing: every number against strtod ---- */

/* What TiDB master makes of the one-number literal "[tok]": the float, or
 * false when it refuses it. tok is a valid number token (digits, '.',
 * exponent), so strtod's reading is ParseFloat's; overflowing a double is
 * an error, and so is a double beyond float32's range. */
static bool expected(const char *tok, float *out)
{
	double d = strtod(tok, NULL);
	if (isinf(d) || d > FLT_MAX || d < -FLT_MAX)
		return false;
	*out = (float)d;
	return true;
}

static void check_number(const char *tok)
{
	char lit[512];
	int n = snprintf(lit, sizeof(lit), "[%s]", tok);
	cr_assert(n > 0 && (size_t)n < sizeof(lit));
	struct vec_f32 v;
	struct vec_err e;
	vec_f32_init(&v);
	float want;
	bool ok = expected(tok, &want);
	int rc = vec_parse(lit, (size_t)n, &v, &e);
	if (!ok) {
		cr_assert_eq(rc, -EINVAL, "%s: accepted", lit);
	} else {
		cr_assert_eq(rc, 0, "%s: %s", lit, e.msg);
		cr_assert_eq(v.dim, 1);
		cr_assert(same_bits(v.v[0], want), "%s: %a, strtod gives %a", lit, (double)v.v[0],
		          (double)want);
	}
	vec_f32_free(&v);
}

/* A random number token: up to 25 digits around an optional '.', leading
 * zeros, an optional exponent of up to 3 digits, an optional sign. */
static void random_token(char *out, size_t cap)
{
	size_t n = 0;
	uint64_t r = rng();
	if (r & 1)
		out[n++] = '-';
	int int_digits = (int)(rng() % 12), frac_digits = (int)(rng() % 16);
	if (int_digits == 0 && frac_digits == 0)
		int_digits = 1;
	if (int_digits == 0 || rng() % 4 == 0) {
		out[n++] = '0'; /* "0.xxx": json-iterator wants no other leading 0 */
		int_digits = 0;
	}
	for (int i = 0; i < int_digits; i++)
		out[n++] = (char)('0' + (i == 0 ? 1 + rng() % 9 : rng() % 10));
	if (frac_digits) {
		out[n++] = '.';
		int zeros = rng() % 3 == 0 ? (int)(rng() % 40) : 0;
		for (int i = 0; i < zeros && n + 40 < cap; i++)
			out[n++] = '0';
		for (int i = 0; i < frac_digits; i++)
			out[n++] = (char)('0' + rng() % 10);
	}
	if (rng() % 3 == 0) {
		out[n++] = rng() % 2 ? 'e' : 'E';
		int s = (int)(rng() % 3);
		if (s)
			out[n++] = s == 1 ? '-' : '+';
		n += (size_t)snprintf(out + n, cap - n, "%d",
		                      (int)(rng() % (rng() % 4 ? 50 : 400)));
	}
	out[n] = '\0';
}

Test(vec_text, parse_random_numbers, .timeout = 120)
{
	char tok[256];
	for (int i = 0; i < 200000; i++) {
		random_token(tok, sizeof(tok));
		check_number(tok);
	}
}

Test(vec_text, parse_printed_floats)
{
	/* Every way a float32 or a double gets printed: shortest, %.9g,
	 * %.17g, exact (%.60e), the last two mostly beyond the fast path. */
	char tok[128];
	for (int i = 0; i < 100000; i++) {
		uint32_t u = (uint32_t)rng();
		float x;
		memcpy(&x, &u, sizeof(x));
		if (!isfinite(x))
			continue;
		vec_format_f32(x, tok);
		check_number(tok);
		snprintf(tok, sizeof(tok), "%.9g", (double)x);
		check_number(tok);
		snprintf(tok, sizeof(tok), "%.17g", (double)x * 1.2345);
		check_number(tok);
		if (i % 16 == 0) {
			snprintf(tok, sizeof(tok), "%.60e", (double)x);
			check_number(tok);
		}
	}
}

Test(vec_text, parse_edge_numbers)
{
	static const char *const toks[] = {
	        /* zeros and signs */
	        "0",
	        "-0",
	        "0.0",
	        "-0.0",
	        "0e0",
	        "-0e-0",
	        "0.000000000000000000000000",
	        "0e999",
	        "-0E+999",
	        "0.0e-400",
	        /* the fast path's limits: 2^53, 19 and 20 digits, 10^+-22 and 23 */
	        "9007199254740992",
	        "9007199254740993",
	        "9007199254740994",
	        "9999999999999999999",
	        "99999999999999999999",
	        "1234567890123456789",
	        "12345678901234567890",
	        "1e22",
	        "1e23",
	        "1e-22",
	        "1e-23",
	        "9007199254740993e22",
	        "123456789e-22",
	        "0.1234567890123456789",
	        "0.12345678901234567890",
	        "4.9406564584124654e-324",
	        "0.000000000000000000001",
	        /* float32 subnormals, the smallest float32 and half of it, the
	         * largest, and just beyond it */
	        "1.4e-45",
	        "1.401298464324817e-45",
	        "7.006492321624085e-46",
	        "7.006492321624086e-46",
	        "7.0064923216240854e-46",
	        "1e-45",
	        "3e-46",
	        "1.17549435e-38",
	        "1.1754942e-38",
	        "5.877472e-39",
	        "3.4028234e38",
	        "3.4028235e38",
	        "3.40282346638528859811704183484516925440e38",
	        "3.4028235677973366e38",
	        "3.4028236e38",
	        "340282356779733661637539395458142568448",
	        "340282356779733661637539395458142568447",
	        /* doubles: the smallest, subnormal, largest, overflow */
	        "4.9e-324",
	        "2.4703282292062327e-324",
	        "2.4703282292062328e-324",
	        "1e-400",
	        "2.2250738585072014e-308",
	        "1.7976931348623157e308",
	        "1.7976931348623159e308",
	        "1e309",
	        /* exponents: huge, many digits, zeros */
	        "1e0000000000000000000000001",
	        "1e-0000000000000000000000001",
	        "1e99999",
	        "1e-99999",
	        "0.00001e5",
	        "100000e-5",
	        /* 17+ digit mantissas */
	        "0.30000000000000004",
	        "0.30000000000000004441",
	        "1.00000005960464477539062500001",
	        "1.00000005960464477539062500000",
	        "1.000000059604644775390625",
	        "1.0000000596046447753906249999999999999",
	        "16777217",
	        "16777217.000000000001",
	        "33554435",
	        "33554433",
	        "0.1000000000000000055511151231257827",
	        "123456789012345678901234567890e-30",
	        /* '+' forms, which take the slow path */
	        "+1",
	        "+01",
	        "+.5",
	        "+0.5e+1",
	};
	for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
		check_number(toks[i]);
}

Test(vec_text, parse_ties)
{
	/* Midpoints between neighbouring float32s, exactly (as %.70e prints
	 * them) and one digit either side: double-then-float rounding. And
	 * midpoints between doubles, where strtod's correct rounding shows. */
	char tok[160];
	for (int i = 0; i < 20000; i++) {
		uint32_t u = (uint32_t)rng() & 0x7F7FFFFFu;
		float a;
		memcpy(&a, &u, sizeof(a));
		double mid = ((double)a + (double)nextafterf(a, INFINITY)) / 2;
		snprintf(tok, sizeof(tok), "%.70e", mid);
		check_number(tok);
		snprintf(tok, sizeof(tok), "%.12e", mid);
		check_number(tok);
		uint64_t b = rng() & 0x7FEFFFFFFFFFFFFFull;
		double d;
		memcpy(&d, &b, sizeof(d));
		long double m = ((long double)d + (long double)nextafter(d, INFINITY)) / 2;
		snprintf(tok, sizeof(tok), "%.40Le", m);
		check_number(tok);
	}
}

Test(vec_text, parse_many_elements)
{
	/* A whole vector through the fast path equals each element parsed
	 * alone. */
	struct buf b;
	buf_init(&b);
	float want[300];
	cr_assert_eq(buf_append(&b, "[", 1), 0);
	for (int i = 0; i < 300; i++) {
		char tok[256];
		do {
			random_token(tok, sizeof(tok));
		} while (!expected(tok, &want[i]));
		cr_assert_eq(buf_appendf(&b, "%s%s", i ? " , " : "", tok), 0);
	}
	cr_assert_eq(buf_append(&b, "]", 1), 0);
	struct vec_f32 v;
	struct vec_err e;
	vec_f32_init(&v);
	cr_assert_eq(vec_parse((char *)b.data, b.len, &v, &e), 0);
	cr_assert_eq(v.dim, 300);
	for (int i = 0; i < 300; i++)
		cr_assert(same_bits(v.v[i], want[i]), "element %d", i);
	vec_f32_free(&v);
	buf_free(&b);
}

/* ---- the element readers: every path gives the same results ---- */

static const enum vec_parse_isa every_path[] = {VEC_PARSE_SCALAR, VEC_PARSE_AVX2, VEC_PARSE_AVX512};

/* What one parse gave. */
struct outcome {
	int rc;
	struct vec_f32 v;
	bool canon;
	char msg[160];
	int rc_plain; /* vec_parse's */
	struct vec_f32 plain;
};

static void parse_on(enum vec_parse_isa isa, const char *s, size_t n, struct outcome *o)
{
	cr_assert_eq(vec_parse_force(isa), 0);
	struct vec_err e;
	vec_f32_init(&o->v);
	vec_f32_init(&o->plain);
	o->canon = true;
	o->rc = vec_parse_canonical(s, n, VEC_TIDB_MASTER, &o->v, &o->canon, &e);
	snprintf(o->msg, sizeof(o->msg), "%s", o->rc ? e.msg : "");
	o->rc_plain = vec_parse(s, n, &o->plain, &e);
	cr_assert_eq(vec_parse_force(VEC_PARSE_AUTO), 0);
}

static void outcome_free(struct outcome *o)
{
	vec_f32_free(&o->v);
	vec_f32_free(&o->plain);
}

static bool same_floats(const struct vec_f32 *a, const struct vec_f32 *b)
{
	return a->dim == b->dim && (a->dim == 0 || memcmp(a->v, b->v, a->dim * sizeof(float)) == 0);
}

/* s[0..n), copied to a buffer of exactly n bytes (so a read past it is a
 * sanitizer error), parsed on every path this CPU has: the same return,
 * message, floats and canonical verdict as the scalar path, for
 * vec_parse_canonical and vec_parse. Returns how many paths ran. */
static int same_on_every_path(const char *text, size_t n)
{
	char *s = malloc(n ? n : 1);
	memcpy(s, text, n);
	struct outcome ref;
	parse_on(VEC_PARSE_SCALAR, s, n, &ref);
	cr_assert_eq(ref.rc, ref.rc_plain, "%.*s", (int)n, s);
	cr_assert(same_floats(&ref.v, &ref.plain), "%.*s", (int)n, s);
	int paths = 1;
	for (size_t k = 1; k < sizeof(every_path) / sizeof(every_path[0]); k++) {
		if (vec_parse_force(every_path[k]) != 0)
			continue; /* not on this CPU */
		struct outcome o;
		parse_on(every_path[k], s, n, &o);
		cr_assert_eq(o.rc, ref.rc, "path %d: %.*s", (int)every_path[k], (int)n, s);
		cr_assert_str_eq(o.msg, ref.msg);
		cr_assert(same_floats(&o.v, &ref.v), "path %d: %.*s", (int)every_path[k], (int)n,
		          s);
		cr_assert_eq(o.canon, ref.canon, "path %d: %.*s", (int)every_path[k], (int)n, s);
		cr_assert_eq(o.rc_plain, ref.rc_plain);
		cr_assert(same_floats(&o.plain, &ref.plain));
		outcome_free(&o);
		paths++;
	}
	outcome_free(&ref);
	free(s);
	return paths;
}

/* Elements of every form the fast readers take or must refuse, each put
 * at every offset of the 64-byte windows (behind 0..70 bytes of other
 * elements), in the middle of a long vector and last: every path agrees
 * with the scalar one, on the floats, the verdict and the error. */
Test(vec_text, element_forms_on_every_path, .timeout = 120)
{
	static const char *const forms[] = {
	        /* taken: digits, one '.', digits on both sides, up to 15 bytes */
	        "0",
	        "-0",
	        "7",
	        "-7",
	        "10",
	        "1234567",
	        "0.5",
	        "-0.5",
	        "0.0",
	        "-0.0",
	        "1.0",
	        "0.000001",
	        "0.1234567",
	        "-1.2345678",
	        "12.375",
	        "123456.7890123",
	        "0.12345678901234",
	        "1234567.1234567",
	        "99999999999999",
	        "12345678",
	        "1.50",
	        "3.000",
	        "0.10000000149011612",
	        "1.17549435e-38",
	        /* 16 bytes and more: the scalar reader's */
	        "0.123456789012345",
	        "-0.12345678901234",
	        "1234567890.123456",
	        "123456789012345678",
	        "9007199254740993",
	        "0.00000000000000000001",
	        "340282346638528860000000000000000000000",
	        /* refused by the fast readers, judged by the number reader */
	        "00",
	        "01",
	        "-01",
	        "00.5",
	        "0.",
	        "1.",
	        ".5",
	        "-.5",
	        "-",
	        "--1",
	        "1..2",
	        "1.2.3",
	        "1e5",
	        "1E-5",
	        "1.5e3",
	        "+1",
	        "+.5",
	        "1-2",
	        "1.5 ",
	        " 1.5",
	        "1 .5",
	        "1. 5",
	        "1.5x",
	        "x",
	        "",
	        "0x10",
	        "1,5",
	        "1e",
	        "1e+",
	        "-0e0",
	        "3.4028236e38",
	        "1e39",
	        "-1e39",
	        "1e-50",
	        "NaN",
	        "Inf",
	};
	static const char *const fill[] = {"0.5", "-1.25", "12",   "-0.0078125", "3.14159274101257",
	                                   "0",   "-7",    "100.5"};
	size_t runs = 0;
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		for (size_t lead = 0; lead < 72; lead++) {
			struct buf b;
			buf_init(&b);
			cr_assert_eq(buf_append(&b, "[", 1), 0);
			/* About `lead` bytes of other elements first. */
			size_t k = lead;
			while (b.len < 1 + lead) {
				const char *x = fill[k++ % 8];
				cr_assert_eq(buf_appendf(&b, "%s,", x), 0);
			}
			cr_assert_eq(buf_appendf(&b, "%s", forms[f]), 0);
			size_t at_end = b.len;
			/* Then enough elements for the fast path to go on. */
			for (int j = 0; j < 24; j++)
				cr_assert_eq(buf_appendf(&b, ",%s", fill[(j + lead) % 8]), 0);
			cr_assert_eq(buf_append(&b, "]", 1), 0);
			cr_assert_geq(same_on_every_path((char *)b.data, b.len), 1);
			/* The same element last. */
			cr_assert_geq(same_on_every_path((char *)b.data, at_end), 1);
			char *closed = malloc(at_end + 1);
			memcpy(closed, b.data, at_end);
			closed[at_end] = ']';
			runs += (size_t)same_on_every_path(closed, at_end + 1);
			free(closed);
			buf_free(&b);
		}
	}
	/* Not vacuous: the scalar path and at least one other ran where the
	 * CPU has one (every x86-64 machine vecgate targets has AVX2). */
	size_t per = 2 * 72 * (sizeof(forms) / sizeof(forms[0]));
	cr_expect_geq(runs, per / 2);
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi"))
		cr_expect_geq(runs, per, "only the scalar path ran");
#endif
}

/* Powers of two, whose rounding interval is narrower below than above
 * (the canonical check's special case), and their neighbours, printed as
 * TiDB prints them and with the last digit moved, in long vectors: every
 * path agrees with the scalar one and with printing. */
Test(vec_text, powers_of_two_on_every_path)
{
	size_t canonical = 0, texts = 0;
	for (int k = -149; k <= 127; k++) {
		for (int variant = 0; variant < 3; variant++) {
			struct buf b;
			buf_init(&b);
			cr_assert_eq(buf_append(&b, "[", 1), 0);
			for (int j = 0; j < 24; j++) {
				float x = ldexpf(j % 2 ? -1.0f : 1.0f, k);
				if (j % 3 == 1)
					x = nextafterf(x, INFINITY);
				else if (j % 3 == 2)
					x = nextafterf(x, -INFINITY);
				char t[VEC_F32_TEXT_MAX + 2];
				size_t n = vec_format_f32(x, t);
				/* variant 1: last digit one up, 2: one down (when not
				 * a '0' or a '9' already) */
				if (variant && n > 1 && t[n - 1] > '0' && t[n - 1] < '9')
					t[n - 1] = (char)(t[n - 1] + (variant == 1 ? 1 : -1));
				cr_assert_eq(buf_appendf(&b, "%s%s", j ? "," : "", t), 0);
			}
			cr_assert_eq(buf_append(&b, "]", 1), 0);
			cr_assert_geq(same_on_every_path((char *)b.data, b.len), 1);
			struct vec_f32 v;
			struct vec_err e;
			vec_f32_init(&v);
			bool canon = true;
			if (vec_parse_canonical((char *)b.data, b.len, VEC_TIDB_MASTER, &v, &canon,
			                        &e) == 0) {
				cr_assert_eq(canon, vec_format_f32_array_is(v.v, v.dim,
				                                            (char *)b.data, b.len));
				canonical += canon;
				texts++;
			}
			vec_f32_free(&v);
			buf_free(&b);
		}
	}
	cr_assert_gt(canonical, 200);
	cr_assert_gt(texts, 600);
}

/* The forced path is the one parses take, and a path the CPU lacks is
 * refused without changing it. */
Test(vec_text, parse_force)
{
	cr_assert_eq(vec_parse_force(VEC_PARSE_SCALAR), 0);
	cr_assert_eq(vec_parse_isa(), VEC_PARSE_SCALAR);
	for (size_t k = 0; k < sizeof(every_path) / sizeof(every_path[0]); k++) {
		int rc = vec_parse_force(every_path[k]);
		cr_assert(rc == 0 || rc == -ENOTSUP);
		if (rc == 0)
			cr_assert_eq(vec_parse_isa(), every_path[k]);
	}
	cr_assert_eq(vec_parse_force(VEC_PARSE_AUTO), 0);
	cr_assert_neq(vec_parse_isa(), VEC_PARSE_AUTO);
	cr_assert_eq(vec_parse_force((enum vec_parse_isa)99), -ENOTSUP);
	cr_assert_neq(vec_parse_isa(), VEC_PARSE_AUTO);
}

/* ---- printing: shortest digits against a plain search ---- */

/* The nd-digit decimal nearest x (printf rounds exactly), as m * 10^e10. */
static void nearest(double x, int nd, uint64_t *m, int *e10)
{
	char s[64];
	snprintf(s, sizeof(s), "%.*e", nd - 1, x);
	uint64_t v = 0;
	const char *p = s;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			v = v * 10 + (uint64_t)(*p - '0');
	*m = v;
	*e10 = atoi(p + 1) - (nd - 1);
}

static bool reads_back(uint64_t m, int e10, float x)
{
	char s[48];
	snprintf(s, sizeof(s), "%" PRIu64 "e%d", m, e10);
	return strtof(s, NULL) == x;
}

/* Go's shortest digits of a float32 x > 0 the slow way: for 1, 2, ... 9
 * digits, the nearest decimal or its neighbours, whichever reads back
 * first (the nearest wins a tie: printf rounds ties to even). */
static void reference_digits(float x, uint64_t *m, int *e10)
{
	for (int nd = 1; nd <= 9; nd++) {
		uint64_t c;
		int e;
		nearest(x, nd, &c, &e);
		uint64_t lo = c, p10 = 1;
		for (int i = 1; i < nd; i++)
			p10 *= 10;
		int lo_e = e;
		if (c == p10) {
			lo = p10 * 10 - 1;
			lo_e = e - 1;
		} else {
			lo = c - 1;
		}
		if (reads_back(c, e, x)) {
			*m = c, *e10 = e;
			return;
		}
		/* Only one neighbour can read back: the one on x's side. */
		if (reads_back(c + 1, e, x)) {
			*m = c + 1, *e10 = e;
			return;
		}
		if (reads_back(lo, lo_e, x)) {
			*m = lo, *e10 = lo_e;
			return;
		}
	}
	cr_assert_fail("no 9-digit decimal reads back as %a", (double)x);
}

/* The text vec_format_f32 must print for x, from reference_digits(). */
static void reference_text(float x, char *out)
{
	if (x == 0) {
		strcpy(out, signbit(x) ? "-0" : "0");
		return;
	}
	uint64_t m;
	int e10;
	reference_digits(fabsf(x), &m, &e10);
	while (m % 10 == 0) {
		m /= 10;
		e10++;
	}
	char d[24];
	int nd = snprintf(d, sizeof(d), "%" PRIu64, m), dp = nd + e10;
	size_t n = 0;
	if (signbit(x))
		out[n++] = '-';
	if (dp <= 0) {
		out[n++] = '0';
		out[n++] = '.';
		for (int i = 0; i < -dp; i++)
			out[n++] = '0';
		for (int i = 0; i < nd; i++)
			out[n++] = d[i];
	} else {
		for (int i = 0; i < nd || i < dp; i++) {
			if (i == dp)
				out[n++] = '.';
			out[n++] = i < nd ? d[i] : '0';
		}
	}
	out[n] = '\0';
}

static void check_float(float x)
{
	char got[VEC_F32_TEXT_MAX], want[VEC_F32_TEXT_MAX * 2];
	size_t n = vec_format_f32(x, got);
	reference_text(x, want);
	cr_assert_str_eq(got, want, "%a", (double)x);
	cr_assert_eq(n, strlen(got));
	cr_assert_leq(n, VEC_F32_FIXED_MAX);
}

Test(vec_text, format_reference_texts)
{
	/* The reference's own layout, on values whose text is known. */
	static const struct {
		float x;
		const char *text;
	} cases[] = {
	        {1.0f, "1"},           {0.5f, "0.5"},       {100.0f, "100"},        {0.1f, "0.1"},
	        {-0.0012f, "-0.0012"}, {123.45f, "123.45"}, {1e10f, "10000000000"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[VEC_F32_TEXT_MAX * 2];
		reference_text(cases[i].x, want);
		cr_assert_str_eq(want, cases[i].text);
		check_float(cases[i].x);
	}
}

Test(vec_text, format_against_search, .timeout = 120)
{
	/* Every exponent with its smallest and largest mantissas and a random
	 * one, both signs; then random bit patterns. */
	for (uint32_t e = 0; e < 255; e++) {
		for (uint32_t k = 0; k < 6; k++) {
			uint32_t m = k < 3 ? k : 0x7FFFFFu - (k - 3);
			uint32_t u = e << 23 | m;
			float x;
			memcpy(&x, &u, sizeof(x));
			check_float(x);
			check_float(-x);
		}
		uint32_t u = e << 23 | ((uint32_t)rng() & 0x7FFFFFu);
		float x;
		memcpy(&x, &u, sizeof(x));
		check_float(x);
	}
	/* Integers, short decimals, powers of two and of ten. */
	for (int i = 0; i < 2000; i++) {
		check_float((float)i);
		check_float((float)i / 1000);
		check_float((float)((double)i * 1e-7));
		check_float((float)i * 16777216.0f);
	}
	for (int i = -149; i < 128; i++)
		check_float(ldexpf(1, i));
	for (int i = -45; i < 39; i++)
		check_float((float)pow(10, i));
	for (int i = 0; i < 100000; i++) {
		uint32_t u = (uint32_t)rng();
		float x;
		memcpy(&x, &u, sizeof(x));
		if (isfinite(x))
			check_float(x);
	}
}

Test(vec_text, format_specials)
{
	char out[VEC_F32_TEXT_MAX];
	cr_assert_str_eq((vec_format_f32(NAN, out), out), "NaN");
	cr_assert_str_eq((vec_format_f32(-NAN, out), out), "NaN");
	cr_assert_str_eq((vec_format_f32(INFINITY, out), out), "+Inf");
	cr_assert_str_eq((vec_format_f32(-INFINITY, out), out), "-Inf");
	cr_assert_str_eq((vec_format_f32(-0.0f, out), out), "-0");
	cr_assert_str_eq((vec_format_f32(-FLT_TRUE_MIN, out), out),
	                 "-0.000000000000000000000000000000000000000000001");
	cr_assert_eq(strlen(out), VEC_F32_FIXED_MAX);
	cr_assert_str_eq((vec_format_f32(-FLT_MAX, out), out),
	                 "-340282350000000000000000000000000000000");
	/* Go <= 1.25 and vecgate round this tie to even (docs/tidb.md). */
	cr_assert_str_eq((vec_format_f32(ldexpf(1, -12), out), out), "0.00024414062");
}

/* ---- whole vectors: unallocated printing and the canonical check ---- */

Test(vec_text, array_to_and_bound)
{
	float worst[64];
	for (int i = 0; i < 64; i++)
		worst[i] = i % 2 ? -FLT_TRUE_MIN : -FLT_MAX;
	size_t max = vec_f32_array_text_max(64);
	char *out = malloc(max);
	size_t n = vec_format_f32_array_to(worst, 64, out);
	cr_assert_leq(n, max);
	struct buf b;
	buf_init(&b);
	cr_assert_eq(vec_format_f32_array(worst, 64, &b), 0);
	cr_assert_eq(b.len, n);
	cr_assert_eq(memcmp(b.data, out, n), 0);
	cr_assert(vec_format_f32_array_is(worst, 64, out, n));
	cr_assert_eq(vec_f32_array_text_max(0), 2);
	cr_assert_eq(vec_format_f32_array_to(NULL, 0, out), 2);
	cr_assert_eq(memcmp(out, "[]", 2), 0);
	buf_free(&b);
	free(out);
}

Test(vec_text, canonical_check)
{
	static const float v3[] = {1, 0.5f, -0.0f};
	static const struct {
		const char *text;
		size_t dim;
		bool is;
	} cases[] = {
	        {"[1,0.5,-0]", 3, true},   {"[1,0.5,0]", 3, false},    {"[1, 0.5,-0]", 3, false},
	        {"[1,0.50,-0]", 3, false}, {"[1.0,0.5,-0]", 3, false}, {"[1,.5,-0]", 3, false},
	        {"[+1,0.5,-0]", 3, false}, {"[1e0,0.5,-0]", 3, false}, {"[1,0.5,-0] ", 3, false},
	        {" [1,0.5,-0]", 3, false}, {"[1,0.5,-0,]", 3, false},  {"[1,0.5]", 3, false},
	        {"[1,0.5]", 2, true},      {"[1,0.5,-0,1]", 3, false}, {"[1,0.5,-0", 3, false},
	        {"[]", 0, true},           {"[ ]", 0, false},          {"", 0, false},
	        {"[1,0.5,-00]", 3, false}, {"[01,0.5,-0]", 3, false},  {"1,0.5,-0", 3, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(vec_format_f32_array_is(v3, cases[i].dim, cases[i].text,
		                                     strlen(cases[i].text)),
		             cases[i].is, "case %zu: %s", i, cases[i].text);
	/* Random vectors: their own text is canonical, %.9g's usually not. */
	for (int r = 0; r < 200; r++) {
		float v[32];
		for (int i = 0; i < 32; i++) {
			uint32_t u = (uint32_t)rng() & 0xBFFFFFFFu; /* finite */
			memcpy(&v[i], &u, sizeof(v[i]));
		}
		struct buf b;
		buf_init(&b);
		cr_assert_eq(vec_format_f32_array(v, 32, &b), 0);
		cr_assert(vec_format_f32_array_is(v, 32, (char *)b.data, b.len));
		/* Any single changed byte is not. */
		size_t at = rng() % b.len;
		char was = (char)b.data[at];
		b.data[at] = (uint8_t)(was == '1' ? '2' : '1');
		cr_assert_not(vec_format_f32_array_is(v, 32, (char *)b.data, b.len), "%.*s",
		              (int)b.len, (char *)b.data);
		buf_free(&b);
	}
}

/* ---- the canonical check inside the parser ---- */

/* vec_parse_canonical()'s verdict on "[tok]" is vec_format_f32_array_is()
 * of what it parsed: the text is kept exactly when it must be. */
static void check_canonical(const char *tok)
{
	char lit[160];
	int n = snprintf(lit, sizeof(lit), "[%s]", tok);
	cr_assert(n > 0 && (size_t)n < sizeof(lit));
	struct vec_f32 v;
	struct vec_err e;
	vec_f32_init(&v);
	bool canon = true;
	if (vec_parse_canonical(lit, (size_t)n, VEC_TIDB_MASTER, &v, &canon, &e) != 0) {
		cr_assert_not(canon, "%s", lit);
		vec_f32_free(&v);
		return;
	}
	bool want = vec_format_f32_array_is(v.v, v.dim, lit, (size_t)n);
	cr_assert_eq(canon, want, "%s: %s, printing says %s (%a)", lit, canon ? "canonical" : "not",
	             want ? "canonical" : "not", (double)v.v[0]);
	/* The same verdict as vec_parse's floats. */
	struct vec_f32 w;
	vec_f32_init(&w);
	cr_assert_eq(vec_parse(lit, (size_t)n, &w, &e), 0);
	cr_assert(w.dim == 1 && same_bits(w.v[0], v.v[0]));
	vec_f32_free(&w);
	vec_f32_free(&v);
}

/* Texts of x: its own, and near misses of it. */
static void canonical_variants(float x)
{
	char t[VEC_F32_TEXT_MAX], u[VEC_F32_TEXT_MAX + 8];
	size_t n = vec_format_f32(x, t);
	if (!strcmp(t, "NaN") || strchr(t, 'I'))
		return;
	check_canonical(t);
	/* The last digit one up or down, dropped, or one more digit. */
	if (n > 1 && t[n - 1] >= '0' && t[n - 1] <= '9') {
		for (int delta = -1; delta <= 1; delta += 2) {
			strcpy(u, t);
			char c = (char)(u[n - 1] + delta);
			if (c < '0' || c > '9')
				continue;
			u[n - 1] = c;
			check_canonical(u);
		}
		strcpy(u, t);
		if (u[n - 2] != '.' && u[n - 2] != '-') {
			u[n - 1] = 0;
			check_canonical(u);
		}
		snprintf(u, sizeof(u), "%s%s%c", t, strchr(t, '.') ? "" : ".",
		         (char)('1' + rng() % 9));
		check_canonical(u);
		snprintf(u, sizeof(u), "%s%s0", t, strchr(t, '.') ? "" : ".");
		check_canonical(u);
	}
	snprintf(u, sizeof(u), "%.9g", (double)x);
	check_canonical(u);
	snprintf(u, sizeof(u), "%.8f", (double)x);
	check_canonical(u);
}

Test(vec_text, canonical_against_printing, .timeout = 120)
{
	/* Random bits, embedding-like values at every scale, integers and
	 * round numbers, powers of two (asymmetric intervals), subnormals. */
	for (int i = 0; i < 40000; i++) {
		uint32_t u = (uint32_t)rng();
		float x;
		memcpy(&x, &u, sizeof(x));
		if (isfinite(x) && fabsf(x) <= nextafterf(FLT_MAX, 0))
			canonical_variants(x);
		double g = ((double)(int64_t)rng() / 9.2e18) * pow(10, (int)(rng() % 31) - 15);
		canonical_variants((float)g);
	}
	for (int i = 0; i < 3000; i++) {
		canonical_variants((float)i);
		canonical_variants((float)i / 100);
		canonical_variants(-(float)i * 1000);
	}
	for (int i = -149; i < 128; i++) {
		canonical_variants(ldexpf(1, i));
		canonical_variants(nextafterf(ldexpf(1, i), 0));
		canonical_variants(nextafterf(ldexpf(1, i), INFINITY));
	}
	for (int i = 0; i < 2000; i++)
		canonical_variants((float)((double)i * FLT_TRUE_MIN));
}

Test(vec_text, canonical_layout)
{
	static const struct {
		const char *text;
		bool canonical;
	} cases[] = {
	        {"[1,0.5,-0]", true},
	        {"[]", true},
	        {"[ 1,0.5,-0]", false},
	        {"[1 ,0.5,-0]", false},
	        {"[1, 0.5,-0]", false},
	        {"[1,0.5,-0] ", false},
	        {" [1,0.5,-0]", false},
	        {"[1,0.5,-0]\v", false},
	        {"[1,+0.5,-0]", false},
	        {"[1,5e-1,-0]", false},
	        {"[1,0.50,-0]", false},
	        {"[1.0,0.5,-0]", false},
	        {"[1,0.5,-0.0]", false},
	        {"[1,0.5,0e0]", false},
	        {"[100,0.001,1200]", true},
	        {"[100.0,0.001,1200]", false},
	        {"[1e2,0.001,1200]", false},
	        {"[340282330000000000000000000000000000000]", true},
	        {"[0.000000000000000000000000000000000000000000001]", true},
	        {"[0.0000000000000000000000000000000000000000000014]", false},
	        {"[16777216]", true},
	        {"[16777217]", false},
	        {"[0.1,0.2,0.3]", true},
	        {"[0.30000001]", false},
	        {"[ ]", false},
	        {"null", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vec_f32 v;
		struct vec_err e;
		vec_f32_init(&v);
		bool canon = !cases[i].canonical;
		int rc = vec_parse_canonical(cases[i].text, strlen(cases[i].text), VEC_TIDB_MASTER,
		                             &v, &canon, &e);
		if (!strcmp(cases[i].text, "null"))
			cr_expect_eq(rc, -EINVAL);
		else
			cr_expect_eq(rc, 0, "%s: %s", cases[i].text, e.msg);
		cr_expect_eq(canon, cases[i].canonical, "%s", cases[i].text);
		if (rc == 0)
			cr_expect_eq(vec_format_f32_array_is(v.v, v.dim, cases[i].text,
			                                     strlen(cases[i].text)),
			             cases[i].canonical, "%s", cases[i].text);
		vec_f32_free(&v);
	}
	/* v8.5 ignores what follows ']': not the canonical text. */
	struct vec_f32 v;
	struct vec_err e;
	vec_f32_init(&v);
	bool canon = true;
	cr_assert_eq(vec_parse_canonical("[1]x", 4, VEC_TIDB_V8_5, &v, &canon, &e), 0);
	cr_expect_not(canon);
	vec_f32_free(&v);
}

/* Whole vectors from exact-size heap copies (ASan sees any read past the
 * end): the fast lane reads ahead 32 bytes and must stop in time. */
Test(vec_text, whole_vectors_exact_size)
{
	for (int round = 0; round < 400; round++) {
		size_t dim = 1 + rng() % 100;
		float v[100];
		for (size_t j = 0; j < dim; j++) {
			double g =
			        ((double)(int64_t)rng() / 9.2e18) * pow(10, (int)(rng() % 9) - 4);
			v[j] = (float)g;
		}
		struct buf b;
		buf_init(&b);
		cr_assert_eq(vec_format_f32_array(v, dim, &b), 0);
		char *text = malloc(b.len);
		memcpy(text, b.data, b.len);
		struct vec_f32 out;
		struct vec_err e;
		vec_f32_init(&out);
		bool canon = false;
		cr_assert_eq(vec_parse_canonical(text, b.len, VEC_TIDB_MASTER, &out, &canon, &e),
		             0);
		cr_assert_eq(out.dim, dim);
		cr_assert_eq(memcmp(out.v, v, dim * sizeof(float)), 0);
		cr_assert(canon);
		/* Every prefix is invalid, and reads nothing past its end. */
		for (size_t k = b.len > 40 ? b.len - 40 : 0; k < b.len; k++) {
			char *pre = malloc(k ? k : 1);
			memcpy(pre, text, k);
			cr_assert_eq(vec_parse(pre, k, &out, &e), -EINVAL);
			free(pre);
		}
		vec_f32_free(&out);
		free(text);
		buf_free(&b);
	}
}

/* A text of x: its own (variant 0), or a near miss of it. */
static void variant_text(float x, int variant, char *u, size_t cap)
{
	char t[VEC_F32_TEXT_MAX];
	size_t n = vec_format_f32(x, t);
	switch (variant) {
	case 1: /* last digit one up */
		snprintf(u, cap, "%s", t);
		if (n > 1 && u[n - 1] >= '1' && u[n - 1] <= '8')
			u[n - 1]++;
		break;
	case 2: /* one more digit */
		snprintf(u, cap, "%s%s%c", t, strchr(t, '.') ? "" : ".", (char)('1' + rng() % 9));
		break;
	case 3:
		snprintf(u, cap, "%.9g", (double)x);
		break;
	case 4: /* last digit dropped */
		snprintf(u, cap, "%s", t);
		if (n > 2 && u[n - 2] != '.' && u[n - 2] != '-')
			u[n - 1] = 0;
		break;
	default:
		snprintf(u, cap, "%s", t);
	}
}

/* Long vectors (the parser's fast path, which judges their elements 8 at a
 * time in vectors where the CPU can): the verdict on the whole text is
 * vec_format_f32_array_is() of what it parsed, with one element in two
 * replaced by a near miss, at every position. */
Test(vec_text, canonical_in_long_vectors, .timeout = 120)
{
	size_t checked = 0, canonical = 0;
	for (int trial = 0; trial < 20000; trial++) {
		size_t dim = 20 + rng() % 60, len = 0;
		char *lit = malloc(dim * (VEC_F32_TEXT_MAX + 12) + 4);
		lit[len++] = '[';
		size_t odd = rng() % 2 ? rng() % dim : SIZE_MAX;
		for (size_t j = 0; j < dim; j++) {
			float x;
			switch (rng() % 6) {
			case 5: /* powers of two (their rounding interval is lopsided) and
			         * their neighbours */
				x = ldexpf(rng() % 2 ? 1.0f : -1.0f, (int)(rng() % 60) - 30);
				if (rng() % 3 == 0)
					x = nextafterf(x, rng() % 2 ? INFINITY : -INFINITY);
				break;
			case 4: /* zeros of both signs, small integers */
				x = rng() % 3 == 0 ? -0.0f : (float)((int)(rng() % 21) - 10);
				break;
			case 0: {
				uint32_t b = (uint32_t)rng();
				memcpy(&x, &b, sizeof(x));
				if (!isfinite(x))
					x = 1.5f;
				break;
			}
			case 1:
				x = (float)((double)(int64_t)rng() / 9.2e18 *
				            pow(10, (int)(rng() % 13) - 8));
				break;
			case 2:
				x = (float)((int)(rng() % 2001) - 1000) / 100;
				break;
			default:
				x = (float)((double)(int64_t)rng() / 9.2e18);
			}
			char u[VEC_F32_TEXT_MAX + 8];
			variant_text(x, j == odd ? 1 + (int)(rng() % 4) : 0, u, sizeof(u));
			len += (size_t)sprintf(lit + len, "%s%s", j ? "," : "", u);
		}
		lit[len++] = ']';
		struct vec_f32 v;
		struct vec_err e;
		vec_f32_init(&v);
		bool canon = true;
		cr_assert_eq(vec_parse_canonical(lit, len, VEC_TIDB_MASTER, &v, &canon, &e), 0,
		             "%.*s", (int)len, lit);
		/* Every element as strtod reads it, rounded to float (ParseFloat
		 * then float32, as TiDB): the same bits. */
		const char *q = lit + 1;
		for (size_t j = 0; j < dim; j++) {
			char *end;
			float x = (float)strtod(q, &end);
			cr_assert(end > q && (*end == ',' || *end == ']'));
			cr_assert(same_bits(x, v.v[j]), "element %zu of %.*s: %a, not %a", j,
			          (int)len, lit, (double)v.v[j], (double)x);
			q = end + 1;
		}
		bool want = vec_format_f32_array_is(v.v, v.dim, lit, len);
		cr_assert_eq(canon, want, "%.*s: %s, printing says %s", (int)len, lit,
		             canon ? "canonical" : "not", want ? "canonical" : "not");
		if (trial % 2 == 0)
			same_on_every_path(lit, len);
		canonical += canon;
		checked++;
		vec_f32_free(&v);
		free(lit);
	}
	/* Not vacuous: both verdicts are common. */
	cr_expect_gt(canonical, checked / 4);
	cr_expect_lt(canonical, checked * 3 / 4 + checked / 8);
}

/* Long vectors (the fast path) cut at every length, or with one byte
 * damaged: every prefix fails cleanly (never a vector, never "canonical");
 * a damaged text gives vec_parse's result, and when it still parses, the
 * same floats and a canonical verdict equal to printing's. */
Test(vec_text, long_vectors_truncated_and_damaged)
{
	static const char junk[] = {'x', ',', '.', '-', ']', '[', ' ', '0', 'e', '\0'};
	size_t cuts = 0, damaged = 0;
	for (int trial = 0; trial < 60; trial++) {
		size_t dim = 20 + rng() % 40, len = 0;
		char *lit = malloc(dim * (VEC_F32_TEXT_MAX + 2) + 4);
		lit[len++] = '[';
		for (size_t j = 0; j < dim; j++) {
			char t[VEC_F32_TEXT_MAX];
			vec_format_f32((float)((double)(int64_t)rng() / 9.2e18), t);
			len += (size_t)sprintf(lit + len, "%s%s", j ? "," : "", t);
		}
		lit[len++] = ']';
		struct vec_f32 v;
		struct vec_err e;
		vec_f32_init(&v);
		for (size_t cut = 0; cut < len; cut++) {
			bool canon = true;
			cr_assert_neq(
			        vec_parse_canonical(lit, cut, VEC_TIDB_MASTER, &v, &canon, &e), 0,
			        "a prefix of %zu bytes parsed: %.*s", cut, (int)cut, lit);
			if (cut % 7 == 0)
				same_on_every_path(lit, cut);
			cr_assert_not(canon);
			cuts++;
		}
		for (int d = 0; d < 40; d++) {
			char *bad = malloc(len);
			memcpy(bad, lit, len);
			bad[1 + rng() % (len - 2)] = junk[rng() % sizeof(junk)];
			bool canon = true;
			struct vec_f32 w;
			vec_f32_init(&w);
			int rc = vec_parse_canonical(bad, len, VEC_TIDB_MASTER, &v, &canon, &e);
			int rc_plain = vec_parse(bad, len, &w, &e);
			cr_assert_eq(rc, rc_plain, "%.*s", (int)len, bad);
			same_on_every_path(bad, len);
			if (rc == 0) {
				cr_assert_eq(v.dim, w.dim);
				cr_assert(memcmp(v.v, w.v, v.dim * sizeof(float)) == 0);
				cr_assert_eq(canon, vec_format_f32_array_is(v.v, v.dim, bad, len));
			} else {
				cr_assert_not(canon);
			}
			vec_f32_free(&w);
			free(bad);
			damaged++;
		}
		vec_f32_free(&v);
		free(lit);
	}
	cr_assert_geq(cuts, 60 * 100);
	cr_assert_eq(damaged, 60 * 40);
}
