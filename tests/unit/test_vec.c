/* Unit tests for src/vec: TiDB's vector literal parser, its number printing
 * and its distances, against values taken from TiDB (docs/tidb.md and a Go
 * harness around TiDB's own code), compared bit for bit and byte for byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec/vec.h"

/* A string literal and its length, so cases may hold NUL bytes. */
#define S(x) x, sizeof(x) - 1

/* An exact-size heap copy: under ASan any read past n is caught. */
static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	memcpy(p, s, n);
	return p;
}

/* Parses s[0..n) and returns what TiDB would show: the vector as TiDB
 * prints it, or the error message. The caller frees the result. */
static char *parse_outcome(const char *s, size_t n, enum vec_dialect d)
{
	char *in = dup_exact(s, n);
	struct vec_f32 v;
	struct vec_err e;
	struct buf b;
	vec_f32_init(&v);
	buf_init(&b);
	int rc = vec_parse_dialect(in, n, d, &v, &e);
	if (rc == 0) {
		cr_assert_eq(vec_format_f32_array(v.v, v.dim, &b), 0);
	} else {
		cr_assert_eq(rc, -EINVAL);
		cr_assert_eq(e.code, 1105);
		cr_assert_str_eq(e.sqlstate, "HY000");
		cr_assert_eq(v.dim, 0);
		cr_assert_eq(vec_err_message(&e, &b), 0);
	}
	cr_assert_eq(buf_append(&b, "", 1), 0);
	char *out = strdup((char *)b.data);
	buf_free(&b);
	vec_f32_free(&v);
	free(in);
	return out;
}

struct parse_case {
	const char *in;
	size_t len;
	const char *master; /* "[...]" when accepted, else the error message */
	const char *v85;    /* NULL: same as master */
};

/* Outcomes confirmed against json-iterator v1.1.12 with TiDB's code. */
static const struct parse_case parse_cases[] = {
        {S("[1, 2, 3]"), "[1,2,3]", NULL},
        {S("[0.1,0.2,0.3]"), "[0.1,0.2,0.3]", NULL},
        {S(" [ 1e2 , -3.5E-1 ] "), "[100,-0.35]", NULL},
        {S("[]"), "[]", NULL},
        {S(" [ ] "), "[]", NULL},
        {S("[1\r,\t2\n]"), "[1,2]", NULL},
        {S("[1,2,3]  \n\t"), "[1,2,3]", NULL},
        {S("[-0]"), "[-0]", NULL},
        {S("[16777217]"), "[16777216]", NULL},
        {S("[1e-400]"), "[0]", NULL},
        {S("[-1e-400]"), "[-0]", NULL},
        {S("[0e5]"), "[0]", NULL},
        {S("[0.0000001]"), "[0.0000001]", NULL},
        /* json-iterator's slow path hands "+..." to strconv.ParseFloat. */
        {S("[+1]"), "[1]", NULL},
        {S("[+01]"), "[1]", NULL},
        {S("[+.5]"), "[0.5]", NULL},
        {S("[-+1]"), "[-1]", NULL},
        {S("[1,]"), "Invalid vector text: [1,]", NULL},
        {S("[1 2]"), "Invalid vector text: [1 2]", NULL},
        {S("[[1]]"), "Invalid vector text: [[1]]", NULL},
        {S("[\"1\"]"), "Invalid vector text: [\"1\"]", NULL},
        {S("[true]"), "Invalid vector text: [true]", NULL},
        {S("[null]"), "Invalid vector text: [null]", NULL},
        {S("[01]"), "Invalid vector text: [01]", NULL},
        {S("[-01]"), "Invalid vector text: [-01]", NULL},
        {S("[.5]"), "Invalid vector text: [.5]", NULL},
        {S("[-.5]"), "Invalid vector text: [-.5]", NULL},
        {S("[1.]"), "Invalid vector text: [1.]", NULL},
        {S("[1.e5]"), "Invalid vector text: [1.e5]", NULL},
        {S("[1e]"), "Invalid vector text: [1e]", NULL},
        {S("[1e+]"), "Invalid vector text: [1e+]", NULL},
        {S("[1-2]"), "Invalid vector text: [1-2]", NULL},
        {S("[1.2.3]"), "Invalid vector text: [1.2.3]", NULL},
        {S("[--1]"), "Invalid vector text: [--1]", NULL},
        {S("[-]"), "Invalid vector text: [-]", NULL},
        {S("[- 1]"), "Invalid vector text: [- 1]", NULL},
        {S("[,1]"), "Invalid vector text: [,1]", NULL},
        {S("[1,,2]"), "Invalid vector text: [1,,2]", NULL},
        {S("[1}"), "Invalid vector text: [1}", NULL},
        {S("["), "Invalid vector text: [", NULL},
        {S(""), "Invalid vector text: ", NULL},
        {S("[NaN]"), "Invalid vector text: [NaN]", NULL},
        {S("[Infinity]"), "Invalid vector text: [Infinity]", NULL},
        {S("[0x10]"), "Invalid vector text: [0x10]", NULL},
        /* Overflowing a double is ParseFloat's ErrRange: invalid text. */
        {S("[1e400]"), "Invalid vector text: [1e400]", NULL},
        {S("[1e10000]"), "Invalid vector text: [1e10000]", NULL},
        {S("[1e39"), "Invalid vector text: [1e39", NULL},
        /* A finite double beyond float32: master's check, v8.5 stores Inf. */
        {S("[1e39]"), "value 1e+39 out of range for float32", "[+Inf]"},
        {S("[-1e39]"), "value -1e+39 out of range for float32", "[-Inf]"},
        {S("[1e39x]"), "value 1e+39 out of range for float32", "Invalid vector text: [1e39x]"},
        /* TiDB prints FLT_MAX as a number above FLT_MAX that master rejects. */
        {S("[340282350000000000000000000000000000000]"),
         "value 3.4028235e+38 out of range for float32",
         "[340282350000000000000000000000000000000]"},
        {S("[3.4028234e38]"), "[340282350000000000000000000000000000000]", NULL},
        /* After ']': master wants whitespace, v8.5 ignores anything. */
        {S("[1]x"), "Invalid vector text: [1]x", "[1]"},
        {S("[1] x"), "Invalid vector text: [1] x", "[1]"},
        {S("[1] [2]"), "Invalid vector text: [1] [2]", "[1]"},
        {S("[1] 0"), "Invalid vector text: [1] 0", "[1]"},
        {S("[1]\0"), "Invalid vector text: [1]", "[1]"},
        {S("[1]\v"), "[1]", NULL},
        {S("[1]\vxyz"), "[1]", NULL},
        {S("[1]\f"), "[1]", NULL},
        {S("[1] 01x"), "[1]", NULL},
        /* json-iterator reads null as an empty array; master rejects it. */
        {S("null"), "Invalid vector text: null", "[]"},
        {S(" null "), "Invalid vector text:  null ", "[]"},
        {S("null\xe3\x80\x80"), "Invalid vector text: null\xe3\x80\x80", "[]"},
        {S("null x"), "Invalid vector text: null x", "[]"},
        {S("null\vx"), "[]", NULL},
        {S("nul"), "Invalid vector text: nul", NULL},
        {S("nulx"), "Invalid vector text: nulx", NULL},
};

Test(vec_parse, table)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		char *m = parse_outcome(c->in, c->len, VEC_TIDB_MASTER);
		char *l = parse_outcome(c->in, c->len, VEC_TIDB_V8_5);
		cr_expect_str_eq(m, c->master, "case %zu (master)", i);
		cr_expect_str_eq(l, c->v85 ? c->v85 : c->master, "case %zu (v8.5)", i);
		free(m);
		free(l);
	}
}

static float parse_one(const char *s)
{
	struct vec_f32 v;
	struct vec_err e;
	vec_f32_init(&v);
	cr_assert_eq(vec_parse(s, strlen(s), &v, &e), 0, "%s", s);
	cr_assert_eq(v.dim, 1);
	float x = v.v[0];
	vec_f32_free(&v);
	return x;
}

static bool same_bits(float a, float b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

Test(vec_parse, values_are_double_then_float)
{
	cr_assert(same_bits(parse_one("[0.1]"), 0.1f));
	cr_assert(same_bits(parse_one("[-0]"), -0.0f));
	cr_assert(same_bits(parse_one("[-1e-400]"), -0.0f));
	cr_assert(same_bits(parse_one("[7.1e-46]"), FLT_TRUE_MIN));
	cr_assert(same_bits(parse_one("[3.4028234e38]"), FLT_MAX));
	/* Just above the midpoint of 1 and the next float: strtof would round
	 * up, but the double is the midpoint itself and ties to even. */
	const char *mid = "[1.00000005960464477539062500001]";
	cr_assert(same_bits(parse_one(mid), 1.0f));
	cr_assert(same_bits(strtof(mid + 1, NULL), nextafterf(1.0f, 2.0f)));
	/* Go stops reading an exponent once it reaches 10000, which a long
	 * mantissa can notice: 0.(100004 zeros)1e100005 is 1, Go reads 0. */
	size_t z = 100004;
	char *s = malloc(z + 16);
	memcpy(s, "[0.", 3);
	memset(s + 3, '0', z);
	memcpy(s + 3 + z, "1e100005]", 10);
	cr_assert(same_bits(parse_one(s), 0.0f));
	memcpy(s + 3 + z, "1e99995]", 9);
	cr_assert(same_bits(parse_one(s), 1e-10f));
	free(s);
}

Test(vec_parse, long_numbers)
{
	/* 100000 digits: the conversion buffer comes from the heap. */
	size_t n = 100000;
	char *s = malloc(n + 8);
	memcpy(s, "[0.", 3);
	memset(s + 3, '3', n);
	memcpy(s + 3 + n, "]", 2);
	cr_assert(same_bits(parse_one(s), 1.0f / 3));
	free(s);
}

/* A vector literal of dim elements, each "1", with a tail after ']'. */
static char *ones(size_t dim, const char *last, const char *tail)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(buf_append(&b, "[", 1), 0);
	for (size_t i = 0; i < dim; i++) {
		const char *x = i + 1 == dim && last ? last : "1";
		cr_assert_eq(buf_append(&b, x, strlen(x)), 0);
		cr_assert_eq(buf_append(&b, i + 1 < dim ? "," : "]", 1), 0);
	}
	cr_assert_eq(buf_append(&b, tail, strlen(tail) + 1), 0);
	return (char *)b.data;
}

Test(vec_parse, dimensions)
{
	struct vec_f32 v;
	struct vec_err e;
	vec_f32_init(&v);
	char *ok = ones(16383, NULL, "");
	cr_assert_eq(vec_parse(ok, strlen(ok), &v, &e), 0);
	cr_assert_eq(v.dim, 16383);
	free(ok);

	const char *too_many = "vector cannot have more than 16383 dimensions";
	char *big = ones(16384, NULL, "");
	char *m = parse_outcome(big, strlen(big), VEC_TIDB_MASTER);
	char *l = parse_outcome(big, strlen(big), VEC_TIDB_V8_5);
	cr_assert_str_eq(m, too_many);
	cr_assert_str_eq(l, too_many);
	free(m);
	free(l);
	free(big);

	/* Text errors come before the dimension check; a range error stops
	 * the parse before it too. */
	big = ones(16384, NULL, "x");
	m = parse_outcome(big, strlen(big), VEC_TIDB_MASTER);
	cr_assert(strncmp(m, "Invalid vector text: [1,1,", 26) == 0);
	free(m);
	free(big);
	big = ones(16384, "1e39", "");
	m = parse_outcome(big, strlen(big), VEC_TIDB_MASTER);
	cr_assert_str_eq(m, "value 1e+39 out of range for float32");
	free(m);
	free(big);
	vec_f32_free(&v);
}

Test(vec_parse, every_prefix_is_invalid)
{
	static const char *const lits[] = {
	        "[1, 2, 3]", " [ 1e2 , -3.5E-1 ]", "[0.1,-0.25e-3,+7,16777217]", "[]",
	        "null",      "[1.5E+10,\t-0,\n3]",
	};
	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t n = strlen(lits[i]);
		for (size_t k = 0; k < n; k++) {
			char want[64];
			snprintf(want, sizeof(want), "Invalid vector text: %.*s", (int)k, lits[i]);
			for (int d = 0; d < 2; d++) {
				char *got = parse_outcome(lits[i], k,
				                          d ? VEC_TIDB_V8_5 : VEC_TIDB_MASTER);
				cr_expect_str_eq(got, want, "prefix %zu of %s", k, lits[i]);
				free(got);
			}
		}
	}
}

Test(vec_parse, error_struct)
{
	const char *s = "[1,]";
	struct vec_f32 v;
	struct vec_err e;
	vec_f32_init(&v);
	cr_assert_eq(vec_parse(s, 4, &v, &e), -EINVAL);
	cr_assert_eq(e.code, VEC_ER_UNKNOWN);
	cr_assert_str_eq(e.sqlstate, "HY000");
	cr_assert_str_eq(e.msg, "Invalid vector text: ");
	cr_assert_eq(e.echo, s, "the echo points into the input");
	cr_assert_eq(e.echo_len, 4);
	vec_f32_free(&v);
}

struct f32_case {
	float x;
	const char *text;
};

Test(vec_format, f32_table)
{
	const struct f32_case cases[] = {
	        {1, "1"},
	        {0.0f, "0"},
	        {-0.0f, "-0"},
	        {1e-7f, "0.0000001"},
	        {0.1f, "0.1"},
	        {-0.35f, "-0.35"},
	        {1.0f / 3, "0.33333334"},
	        {16777217.0f, "16777216"},
	        {1e20f, "100000000000000000000"},
	        {FLT_MAX, "340282350000000000000000000000000000000"},
	        {-FLT_MAX, "-340282350000000000000000000000000000000"},
	        {FLT_MIN, "0.000000000000000000000000000000000000011754944"},
	        {FLT_TRUE_MIN, "0.000000000000000000000000000000000000000000001"},
	        /* 2^-12 = 0.000244140625: two 8-digit decimals read back and are
	         * equally close; ties go to even as in Go <= 1.25 (Go 1.26's
	         * Dragonbox prints ...063 here, for this one value). */
	        {0.000244140625f, "0.00024414062"},
	        {2097152.25f, "2097152.2"},
	        {2097152.75f, "2097152.8"},
	        {INFINITY, "+Inf"},
	        {-INFINITY, "-Inf"},
	        {NAN, "NaN"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[VEC_F32_TEXT_MAX];
		size_t n = vec_format_f32(cases[i].x, out);
		cr_expect_str_eq(out, cases[i].text, "case %zu", i);
		cr_expect_eq(n, strlen(cases[i].text), "case %zu", i);
	}
}

Test(vec_format, f32_array)
{
	const float v[] = {1, 2, 3, -0.0f, 0.5f};
	struct buf b;
	buf_init(&b);
	cr_assert_eq(vec_format_f32_array(v, 0, &b), 0);
	cr_assert_eq(b.len, 2);
	cr_assert_eq(memcmp(b.data, "[]", 2), 0);
	buf_reset(&b);
	cr_assert_eq(vec_format_f32_array(v, 3, &b), 0);
	cr_assert_eq(memcmp(b.data, "[1,2,3]", b.len), 0);
	cr_assert_eq(b.len, 7);
	buf_reset(&b);
	cr_assert_eq(vec_format_f32_array(v, 5, &b), 0);
	cr_assert_eq(memcmp(b.data, "[1,2,3,-0,0.5]", b.len), 0);
	buf_free(&b);
}

/* Significant digits of a printed number (mantissa only, before any 'e'). */
static int sig_digits(const char *s)
{
	int first = -1, last = -1, k = 0;
	for (; *s && *s != 'e'; s++) {
		if (*s < '0' || *s > '9')
			continue;
		if (*s != '0') {
			if (first < 0)
				first = k;
			last = k;
		}
		k++;
	}
	return first < 0 ? 1 : last - first + 1;
}

/* Whether the nd-digit decimal next to x > 0 on one side (rounding mode
 * FE_TOWARDZERO or FE_UPWARD: glibc's printf honours it) reads back as x. */
static bool side_reads_back(double x, int nd, int mode, bool f32)
{
	char s[64];
	fesetround(mode);
	snprintf(s, sizeof(s), "%.*e", nd - 1, x);
	fesetround(FE_TONEAREST);
	return f32 ? strtof(s, NULL) == (float)x : strtod(s, NULL) == x;
}

/* No decimal with fewer digits than text reads back as x: the closest ones
 * below and above x with one digit less both miss it. */
static void assert_shortest(double x, const char *text, bool f32)
{
	int nd = sig_digits(text);
	if (nd < 2 || x == 0)
		return;
	double a = fabs(x);
	cr_assert_not(side_reads_back(a, nd - 1, FE_TOWARDZERO, f32), "%s is not shortest", text);
	cr_assert_not(side_reads_back(a, nd - 1, FE_UPWARD, f32), "%s is not shortest", text);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

Test(vec_format, f32_round_trip_random, .timeout = 120)
{
	float vals[512];
	size_t nv = 0;
	for (int i = 0; i < 300000; i++) {
		uint32_t u = (uint32_t)rng();
		float x;
		memcpy(&x, &u, 4);
		if (!isfinite(x))
			continue;
		char out[VEC_F32_TEXT_MAX];
		vec_format_f32(x, out);
		cr_assert_not(strchr(out, 'e'), "%s: fixed notation", out);
		cr_assert(same_bits(strtof(out, NULL), x), "%s does not read back", out);
		assert_shortest(x, out, true);
		if (nv < 512 && fabsf(x) < FLT_MAX)
			vals[nv++] = x;
	}
	/* And through TiDB's own parser, as a whole vector. */
	struct buf b;
	struct vec_f32 v;
	struct vec_err e;
	buf_init(&b);
	vec_f32_init(&v);
	cr_assert_eq(vec_format_f32_array(vals, nv, &b), 0);
	cr_assert_eq(vec_parse((char *)b.data, b.len, &v, &e), 0);
	cr_assert_eq(v.dim, nv);
	cr_assert_eq(memcmp(v.v, vals, nv * sizeof(float)), 0);
	buf_free(&b);
	vec_f32_free(&v);
}

struct double_case {
	double x;
	const char *text;
};

Test(vec_format, double_table)
{
	const struct double_case cases[] = {
	        {0.0, "0"},
	        {-0.0, "-0"},
	        {1e15, "1e15"},
	        {1.5e15, "1.5e15"},
	        {-1.5e15, "-1.5e15"},
	        {999999999999999.0, "999999999999999"},
	        {999999999999999.9, "999999999999999.9"},
	        {1e-15, "0.000000000000001"},
	        {9.99e-16, "9.99e-16"},
	        {-1.5e-20, "-1.5e-20"},
	        {NAN, "0"},
	        {INFINITY, "0"},
	        {-INFINITY, "0"},
	        {0.1, "0.1"},
	        {5e-324, "5e-324"},
	        {DBL_MAX, "1.7976931348623157e308"},
	        {123456789012345680.0, "1.2345678901234568e17"},
	        {1e100, "1e100"},
	        {0.025368153802923787, "0.025368153802923787"},
	        {-32, "-32"},
	        {1e14, "100000000000000"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[VEC_DOUBLE_TEXT_MAX];
		size_t n = vec_format_double(cases[i].x, out);
		cr_expect_str_eq(out, cases[i].text, "case %zu", i);
		cr_expect_eq(n, strlen(cases[i].text), "case %zu", i);
	}
}

Test(vec_format, double_round_trip_random, .timeout = 120)
{
	for (int i = 0; i < 200000; i++) {
		uint64_t u = rng();
		double x;
		memcpy(&x, &u, 8);
		if (!isfinite(x))
			continue;
		char out[VEC_DOUBLE_TEXT_MAX];
		vec_format_double(x, out);
		double y = strtod(out, NULL);
		cr_assert_eq(memcmp(&x, &y, 8), 0, "%s does not read back", out);
		double a = fabs(x);
		cr_assert_eq(strchr(out, 'e') != NULL, a >= 1e15 || a < 1e-15, "%s: notation", out);
		cr_assert_null(strchr(out, '+'), "%s", out);
		assert_shortest(x, out, false);
	}
}

Test(vec_format, go_float)
{
	const struct double_case cases[] = {
	        {1e39, "1e+39"},
	        {-1e39, "-1e+39"},
	        {3.4028235e38, "3.4028235e+38"},
	        {1.5e300, "1.5e+300"},
	        {1e6, "1e+06"},
	        {123456, "123456"},
	        {1234567, "1.234567e+06"},
	        {123456.7, "123456.7"},
	        {0.0001, "0.0001"},
	        {0.00001, "1e-05"},
	        {1e21, "1e+21"},
	        {5e-324, "5e-324"},
	        {0, "0"},
	        {-0.0, "-0"},
	        {NAN, "NaN"},
	        {INFINITY, "+Inf"},
	        {-INFINITY, "-Inf"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[VEC_DOUBLE_TEXT_MAX];
		vec_format_go_float(cases[i].x, out);
		cr_expect_str_eq(out, cases[i].text, "case %zu", i);
	}
}

struct dist_case {
	enum vec_metric m;
	const char *a, *b;
	uint64_t bits; /* the double's bits; ignored when is_null */
	const char *text;
	bool is_null;
};

static double from_bits(uint64_t u)
{
	double d;
	memcpy(&d, &u, 8);
	return d;
}

static void parse_ok(const char *s, struct vec_f32 *v)
{
	struct vec_err e;
	cr_assert_eq(vec_parse(s, strlen(s), v, &e), 0, "%s", s);
}

/* docs/tidb.md §3, and values from TiDB's Go code on amd64 (no FMA). */
Test(vec_dist, golden)
{
	const struct dist_case cases[] = {
	        {VEC_COSINE, "[1,2,3]", "[4,5,6]", 0x3f99fa1bfbc61940ull, "0.025368153802923787",
	         false},
	        {VEC_L2, "[1,2,3]", "[4,5,6]", 0x4014c8dc2e423980ull, "5.196152422706632", false},
	        {VEC_NEG_IP, "[1,2,3]", "[4,5,6]", 0xc040000000000000ull, "-32", false},
	        {VEC_L1, "[1,2,3]", "[4,5,6]", 0x4022000000000000ull, "9", false},
	        {VEC_COSINE, "[1,0]", "[0,1]", 0x3ff0000000000000ull, "1", false},
	        {VEC_NEG_IP, "[1,0]", "[0,1]", 0x8000000000000000ull, "-0", false},
	        {VEC_COSINE, "[1,1]", "[-1,-1]", 0x4000000000000000ull, "2", false},
	        {VEC_COSINE, "[1,2,4]", "[1, 2, 3]", 0x3f817d596a04db00ull, "0.00853986601633272",
	         false},
	        {VEC_COSINE, "[1,2,1]", "[1,2,3]", 0x3fc045bea4118f1cull, "0.12712843905603044",
	         false},
	        {VEC_COSINE, "[1,0,0]", "[1,2,3]", 0x3fe772988d4fedebull, "0.7327387580875756",
	         false},
	        {VEC_COSINE, "[1,2]", "[3,4]", 0x3f9084680268e560ull, "0.01613008990009257", false},
	        {VEC_COSINE, "[0,0]", "[1,2]", 0, NULL, true},
	        {VEC_COSINE, "[]", "[]", 0, NULL, true},
	        {VEC_L2, "[]", "[]", 0, "0", false},
	        {VEC_NEG_IP, "[]", "[]", 0x8000000000000000ull, "-0", false},
	        /* float32 sums, in order: 1e8 + 1 + 1 stays 1e8. */
	        {VEC_L1, "[100000000,1,1]", "[0,0,0]", 0x4197d78400000000ull, "100000000", false},
	        {VEC_NEG_IP, "[16777216,1,1]", "[1,1,1]", 0xc170000000000000ull, "-16777216",
	         false},
	        /* Separate multiply and add; a fused multiply-add differs here. */
	        {VEC_NEG_IP, "[0.3333333,-0.7071068,0.5773503]", "[0.1,0.9,-0.4]",
	         0x3feab026c0000000ull, "0.8340028524398804", false},
	        {VEC_COSINE, "[0.3333333,-0.7071068,0.5773503]", "[0.1,0.9,-0.4]",
	         0x3ffddeccd48a2513ull, "1.8668945600823619", false},
	        {VEC_L2, "[0.3333333,-0.7071068,0.5773503]", "[0.1,0.9,-0.4]",
	         0x3ffe5375e7d2a94cull, "1.895376115377604", false},
	        {VEC_L1, "[0.3333333,-0.7071068,0.5773503]", "[0.1,0.9,-0.4]",
	         0x40068ad5c0000000ull, "2.8177905082702637", false},
	        /* float32 overflow: +-Inf is a value (printed "0"), NaN is NULL. */
	        {VEC_L2, "[1e38,1e38]", "[-1e38,-1e38]", 0x7ff0000000000000ull, "0", false},
	        {VEC_NEG_IP, "[1e20,1e20]", "[1e20,1e20]", 0xfff0000000000000ull, "0", false},
	        {VEC_COSINE, "[1e20,1e20]", "[1e20,1e20]", 0, NULL, true},
	};
	struct vec_f32 a, b;
	vec_f32_init(&a);
	vec_f32_init(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dist_case *c = &cases[i];
		parse_ok(c->a, &a);
		parse_ok(c->b, &b);
		bool is_null = !c->is_null;
		double d = vec_distance(c->m, a.v, b.v, a.dim, &is_null);
		cr_expect_eq(is_null, c->is_null, "case %zu", i);
		if (c->is_null)
			continue;
		if (c->bits)
			cr_expect_eq(memcmp(&d, &(double){from_bits(c->bits)}, 8), 0,
			             "case %zu: %a", i, d);
		char out[VEC_DOUBLE_TEXT_MAX];
		vec_format_double(d, out);
		cr_expect_str_eq(out, c->text, "case %zu", i);
	}
	vec_f32_free(&a);
	vec_f32_free(&b);
}

Test(vec_dist, dimension_mismatch)
{
	const float a[] = {1, 2}, b[] = {1, 2, 3};
	struct vec_err e;
	double d = 42;
	bool is_null = false;
	cr_assert_eq(vec_distance_check(VEC_COSINE, a, 2, b, 3, &d, &is_null, &e), -EINVAL);
	cr_assert_eq(e.code, 1105);
	cr_assert_str_eq(e.sqlstate, "HY000");
	cr_assert_str_eq(e.msg, "vectors have different dimensions: 2 and 3");
	cr_assert_eq(e.echo_len, 0);
	cr_assert_eq(vec_distance_check(VEC_L2, b, 3, a, 2, &d, &is_null, &e), -EINVAL);
	cr_assert_str_eq(e.msg, "vectors have different dimensions: 3 and 2");
	cr_assert_eq(vec_distance_check(VEC_L1, a, 2, a, 2, &d, &is_null, &e), 0);
	cr_assert_eq(d, 0);
	cr_assert_not(is_null);
}

Test(vec_dist, l2_norm_in_double)
{
	struct vec_f32 a;
	bool is_null = true;
	vec_f32_init(&a);
	parse_ok("[3,4]", &a);
	cr_assert_eq(vec_norm(a.v, a.dim, &is_null), 5.0);
	cr_assert_not(is_null);
	/* 1e20f squared overflows a float, not a double. */
	parse_ok("[1e20,1e20]", &a);
	double d = vec_norm(a.v, a.dim, &is_null);
	cr_assert_eq(memcmp(&d, &(double){from_bits(0x441eaa76632c1b15ull)}, 8), 0, "%a", d);
	parse_ok("[16777216,1,1]", &a);
	d = vec_norm(a.v, a.dim, &is_null);
	cr_assert_eq(memcmp(&d, &(double){from_bits(0x4170000000000010ull)}, 8), 0, "%a", d);
	parse_ok("[]", &a);
	cr_assert_eq(vec_norm(a.v, a.dim, &is_null), 0);
	cr_assert_not(is_null);
	vec_f32_free(&a);
}
