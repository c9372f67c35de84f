/* Numbers printed as TiDB prints them: vector elements (Go's
 * strconv.AppendFloat(x, 'f', -1, 32)), DOUBLE cells (TiDB's
 * AppendFormatFloat with prec -1) and Go's "%v" for error messages.
 * Vector elements take the Ryu algorithm's route (Adams, "Ryu: fast
 * float-to-string conversion", PLDI 2018), as Go <= 1.25 does: printing
 * vectors is on the answer path and checking cells is on the load path.
 * Doubles, printed once per answered row, search with printf and strtod. */
#include "vec/vec.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A positive decimal: 0.d[0]d[1]..d[nd-1] * 10^dp, d[0] != '0', no
 * trailing zeros. */
struct digits {
	char d[24];
	int nd;
	int dp;
};

static uint64_t pow10u(int k)
{
	uint64_t p = 1;
	while (k-- > 0)
		p *= 10;
	return p;
}

/* Whether m * 10^e10 reads back as x. The text has no decimal point, so
 * the process locale cannot matter. */
static bool reads_back(uint64_t m, int e10, double x)
{
	char s[48], *p = s + sizeof(s) - 1;
	int e = e10 < 0 ? -e10 : e10;
	*p = '\0';
	do
		*--p = (char)('0' + e % 10);
	while ((e /= 10) > 0);
	if (e10 < 0)
		*--p = '-';
	*--p = 'e';
	do
		*--p = (char)('0' + m % 10);
	while ((m /= 10) > 0);
	return strtod(p, NULL) == x;
}
/* The decimal with nd significant digits closest to x (printf rounds
 * exactly, ties to even as Go does), as m * 10^e10. Any byte that is
 * neither digit nor 'e' is the locale's decimal point and is skipped. */
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

/* Finds a decimal of nd significant digits that reads back as x > 0. The
 * closest one wins when it reads back. When it does not, it lies outside
 * x's rounding interval on its side, and so does everything beyond it; only
 * its neighbour on the other side of x can still be inside (at a power of
 * two the interval is twice as wide above as below). Trying both
 * neighbours is simpler than finding which side x is on. */
static bool try_digits(double x, int nd, uint64_t *m, int *e10)
{
	uint64_t c;
	int e;
	nearest(x, nd, &c, &e);
	if (reads_back(c, e, x)) {
		*m = c;
		*e10 = e;
		return true;
	}
	if (reads_back(c + 1, e, x)) {
		*m = c + 1;
		*e10 = e;
		return true;
	}
	/* Below 1000 comes 9999 at the next finer step, not 999. */
	uint64_t lo = c == pow10u(nd - 1) ? pow10u(nd) - 1 : c - 1;
	int lo_e = c == pow10u(nd - 1) ? e - 1 : e;
	if (reads_back(lo, lo_e, x)) {
		*m = lo;
		*e10 = lo_e;
		return true;
	}
	return false;
}

/* Go's shortest formatting of a double x > 0 (finite): the fewest
 * significant digits that read back as x, the closest such decimal if
 * several, ties to even. Having some n-digit decimal that reads back implies
 * one with n + 1 digits, so the length can be binary-searched; 17 always
 * do. */
static void shortest(double x, struct digits *out)
{
	int lo = 1, hi = 17;
	uint64_t m = 0;
	int e10 = 0;
	bool found = false;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		uint64_t mm;
		int ee;
		if (try_digits(x, mid, &mm, &ee)) {
			hi = mid;
			m = mm;
			e10 = ee;
			found = true;
		} else {
			lo = mid + 1;
		}
	}
	/* Nothing shorter did: the longest length always does. */
	if (!found && !try_digits(x, hi, &m, &e10))
		nearest(x, hi, &m, &e10); /* unreachable */
	while (m % 10 == 0) {
		m /= 10;
		e10++;
	}
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, m);
	memcpy(out->d, tmp, (size_t)n);
	out->nd = n;
	out->dp = n + e10;
}

/* Lays the digits out in fixed notation: "123.45", "0.00012", "1200". */
static size_t put_fixed(const struct digits *g, bool neg, char *out)
{
	size_t n = 0;
	if (neg)
		out[n++] = '-';
	if (g->dp <= 0) {
		out[n++] = '0';
		out[n++] = '.';
		for (int i = 0; i < -g->dp; i++)
			out[n++] = '0';
		memcpy(out + n, g->d, (size_t)g->nd);
		n += (size_t)g->nd;
	} else if (g->dp >= g->nd) {
		memcpy(out + n, g->d, (size_t)g->nd);
		n += (size_t)g->nd;
		for (int i = g->nd; i < g->dp; i++)
			out[n++] = '0';
	} else {
		memcpy(out + n, g->d, (size_t)g->dp);
		n += (size_t)g->dp;
		out[n++] = '.';
		memcpy(out + n, g->d + g->dp, (size_t)(g->nd - g->dp));
		n += (size_t)(g->nd - g->dp);
	}
	out[n] = '\0';
	return n;
}

/* Go's 'e' layout, "1.5e+15" with at least two exponent digits; TiDB drops
 * the '+' (plus = false). */
static size_t put_exp(const struct digits *g, bool neg, bool plus, char *out)
{
	size_t n = 0;
	if (neg)
		out[n++] = '-';
	out[n++] = g->d[0];
	if (g->nd > 1) {
		out[n++] = '.';
		memcpy(out + n, g->d + 1, (size_t)(g->nd - 1));
		n += (size_t)(g->nd - 1);
	}
	int exp = g->dp - 1;
	out[n++] = 'e';
	if (exp < 0)
		out[n++] = '-';
	else if (plus)
		out[n++] = '+';
	n += (size_t)sprintf(out + n, "%02d", exp < 0 ? -exp : exp);
	return n;
}

static size_t put_str(char *out, const char *s)
{
	size_t n = strlen(s);
	memcpy(out, s, n + 1);
	return n;
}

/* ---- float32: shortest digits by Ryu ----
 *
 * The digits the search above finds for doubles, found for float32 (with
 * strtof) some thirty times faster (tests/unit/test_vec_text.c checks the
 * two agree). Ties go to even like Go <= 1.25's Ryu; Go 1.26's Dragonbox
 * breaks one float32 tie upwards: 2^-12 prints 0.00024414063 there,
 * 0.00024414062 here.
 *
 * x = mv * 2^e2 exactly (mv = 4 * mantissa: two spare bits), and the
 * decimals that read back as x lie strictly between the midpoints to its
 * neighbours, mm * 2^e2 and mp * 2^e2 (inclusive when the mantissa is
 * even: a tie reads back to the even one). Ryu divides all three by a power
 * of ten chosen so the quotients fit 32 bits, computing each quotient as a
 * product with a 61-bit approximation of 5^+-q and a shift, which the
 * paper proves exact (floor) for every float32; then it drops digits while
 * the interval still holds a shorter decimal, keeping track of whether
 * everything dropped was zero so that the last digit rounds to the closest,
 * ties to even, as Go's ryuFtoaShortest does. */

#define POW5_BITS     61 /* bits of each 5^i approximation */
#define POW5_INV_BITS 59 /* bits of each 5^-q approximation */
#define POW5_N        48 /* 5^i for i < POW5_N: e2 >= -151 needs i <= 47 */
#define POW5_INV_N    31 /* 5^-q for q < POW5_INV_N: e2 <= 102 needs q <= 30 */

typedef unsigned __int128 u128;

/* pow5[i]: the top POW5_BITS bits of 5^i (5^i shifted to exactly that many
 * bits). pow5_inv[q]: floor(2^(bitlen(5^q) - 1 + POW5_INV_BITS) / 5^q) + 1.
 * Computed once, exactly, before main() runs. */
static uint64_t pow5[POW5_N], pow5_inv[POW5_INV_N];

static int bitlen128(u128 v)
{
	int n = 0;
	while (v) {
		v >>= 1;
		n++;
	}
	return n;
}

__attribute__((constructor)) static void ryu_tables(void)
{
	u128 p = 1; /* 5^47 < 2^110 */
	for (int i = 0; i < POW5_N; i++, p *= 5) {
		int bits = bitlen128(p);
		pow5[i] = (uint64_t)(bits > POW5_BITS ? p >> (bits - POW5_BITS)
		                                      : p << (POW5_BITS - bits));
		if (i >= POW5_INV_N)
			continue;
		/* Long division, one bit at a time: 2^(bits - 1 + POW5_INV_BITS)
		 * does not fit 128 bits, the quotient (< 2^60) does. */
		int k = bits - 1 + POW5_INV_BITS;
		u128 r = 0, q = 0;
		for (int b = k; b >= 0; b--) {
			r = r * 2 + (b == k);
			q *= 2;
			if (r >= p) {
				r -= p;
				q |= 1;
			}
		}
		pow5_inv[i] = (uint64_t)q + 1;
	}
}

/* bitlen(5^e) for 0 <= e <= 3528. */
static int32_t pow5_bits(int32_t e)
{
	return (int32_t)(((uint32_t)e * 1217359u) >> 19) + 1;
}

/* floor(e * log10(2)) for 0 <= e <= 1650. */
static uint32_t log10_pow2(int32_t e)
{
	return ((uint32_t)e * 78913u) >> 18;
}

/* floor(e * log10(5)) for 0 <= e <= 2620. */
static uint32_t log10_pow5(int32_t e)
{
	return ((uint32_t)e * 732923u) >> 20;
}

static uint32_t pow5_factor(uint32_t v)
{
	uint32_t n = 0;
	while (v % 5 == 0) {
		v /= 5;
		n++;
	}
	return n;
}

static uint32_t mul_shift(uint32_t m, uint64_t factor, int32_t shift)
{
	return (uint32_t)(((u128)m * factor) >> shift);
}

/* x (finite, > 0, as its bits) as out * 10^*e10 with the fewest digits,
 * the closest such decimal, ties to even. */
static uint32_t f32_shortest(uint32_t bits, int32_t *e10_out)
{
	uint32_t ieee_m = bits & ((1u << 23) - 1), ieee_e = bits >> 23;
	int32_t e2;
	uint32_t m2;
	if (ieee_e == 0) {
		e2 = 1 - 127 - 23 - 2;
		m2 = ieee_m;
	} else {
		e2 = (int32_t)ieee_e - 127 - 23 - 2;
		m2 = (1u << 23) | ieee_m;
	}
	bool even = (m2 & 1) == 0;
	uint32_t mv = 4 * m2, mp = 4 * m2 + 2;
	/* At a power of two the neighbour below is half as far. */
	uint32_t mm_shift = ieee_m != 0 || ieee_e <= 1;
	uint32_t mm = 4 * m2 - 1 - mm_shift;

	uint32_t vr, vp, vm, last = 0;
	int32_t e10;
	/* Whether vm is exactly the lower bound; whether everything below
	 * the digit in last is zero. */
	bool vm_zeros = false, vr_zeros = false;
	if (e2 >= 0) {
		uint32_t q = log10_pow2(e2);
		e10 = (int32_t)q;
		int32_t k = POW5_INV_BITS + pow5_bits((int32_t)q) - 1;
		int32_t i = -e2 + (int32_t)q + k;
		vr = mul_shift(mv, pow5_inv[q], i);
		vp = mul_shift(mp, pow5_inv[q], i);
		vm = mul_shift(mm, pow5_inv[q], i);
		if (q != 0 && (vp - 1) / 10 <= vm / 10) {
			/* The loop below drops nothing: the digit below vr's is
			 * needed for rounding all the same. */
			int32_t l = POW5_INV_BITS + pow5_bits((int32_t)q - 1) - 1;
			last = mul_shift(mv, pow5_inv[q - 1], -e2 + (int32_t)q - 1 + l) % 10;
		}
		if (q <= 9) {
			/* At most one of mm, mv, mp is a multiple of 5. */
			if (mv % 5 == 0)
				vr_zeros = pow5_factor(mv) >= q;
			else if (even)
				vm_zeros = pow5_factor(mm) >= q;
			else
				vp -= pow5_factor(mp) >= q;
		}
	} else {
		uint32_t q = log10_pow5(-e2);
		e10 = (int32_t)q + e2;
		int32_t i = -e2 - (int32_t)q;
		int32_t j = (int32_t)q - (pow5_bits(i) - POW5_BITS);
		vr = mul_shift(mv, pow5[i], j);
		vp = mul_shift(mp, pow5[i], j);
		vm = mul_shift(mm, pow5[i], j);
		if (q != 0 && (vp - 1) / 10 <= vm / 10) {
			j = (int32_t)q - 1 - (pow5_bits(i + 1) - POW5_BITS);
			last = mul_shift(mv, pow5[i + 1], j) % 10;
		}
		if (q <= 1) {
			/* mv has two trailing zero bits, mp one, mm one iff
			 * mm_shift. */
			vr_zeros = true;
			if (even)
				vm_zeros = mm_shift == 1;
			else
				vp--;
		} else if (q < 31) {
			vr_zeros = (mv & ((1u << (q - 1)) - 1)) == 0;
		}
	}

	int32_t removed = 0;
	uint32_t out;
	if (vm_zeros || vr_zeros) {
		while (vp / 10 > vm / 10) {
			vm_zeros &= vm % 10 == 0;
			vr_zeros &= last == 0;
			last = vr % 10;
			vr /= 10;
			vp /= 10;
			vm /= 10;
			removed++;
		}
		if (vm_zeros) {
			while (vm % 10 == 0) {
				vr_zeros &= last == 0;
				last = vr % 10;
				vr /= 10;
				vp /= 10;
				vm /= 10;
				removed++;
			}
		}
		if (vr_zeros && last == 5 && vr % 2 == 0)
			last = 4; /* exactly halfway: round to even */
		out = vr + ((vr == vm && (!even || !vm_zeros)) || last >= 5);
	} else {
		while (vp / 10 > vm / 10) {
			last = vr % 10;
			vr /= 10;
			vp /= 10;
			vm /= 10;
			removed++;
		}
		out = vr + (vr == vm || last >= 5);
	}
	*e10_out = e10 + removed;
	return out;
}

uint32_t vec_f32_digits(float x, int32_t *e10)
{
	uint32_t bits;
	memcpy(&bits, &x, sizeof(bits));
	uint32_t m = f32_shortest(bits & 0x7FFFFFFFu, e10);
	while (m % 10 == 0) {
		m /= 10;
		++*e10;
	}
	return m;
}

/* Lays x out as put_fixed() would, straight into out (at least
 * VEC_F32_FIXED_MAX + 1 bytes), without library calls in the common case:
 * this runs for every element of every vector printed or checked. Returns
 * the length; no NUL. */
static size_t put_f32(float x, char *out)
{
	uint32_t bits;
	memcpy(&bits, &x, sizeof(bits));
	size_t n = 0;
	if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
		memcpy(out, "NaN", 3);
		return 3;
	}
	if (bits >> 31)
		out[n++] = '-';
	bits &= 0x7FFFFFFFu;
	if (bits == 0x7F800000u) {
		memcpy(out + n, n ? "Inf" : "+Inf", 4 - n);
		return 4;
	}
	if (bits == 0) {
		out[n++] = '0';
		return n;
	}
	int32_t e10;
	uint32_t m = vec_f32_digits(x, &e10);
	char d[10];
	int nd = 0;
	do {
		d[9 - nd++] = (char)('0' + m % 10);
	} while ((m /= 10) > 0);
	const char *dig = d + 10 - nd;
	int dp = nd + e10;
	if (dp <= 0) {
		out[n++] = '0';
		out[n++] = '.';
		for (int i = 0; i < -dp; i++)
			out[n++] = '0';
		for (int i = 0; i < nd; i++)
			out[n++] = dig[i];
	} else if (dp >= nd) {
		for (int i = 0; i < nd; i++)
			out[n++] = dig[i];
		for (int i = nd; i < dp; i++)
			out[n++] = '0';
	} else {
		for (int i = 0; i < dp; i++)
			out[n++] = dig[i];
		out[n++] = '.';
		for (int i = dp; i < nd; i++)
			out[n++] = dig[i];
	}
	return n;
}

size_t vec_format_f32(float x, char out[static VEC_F32_TEXT_MAX])
{
	size_t n = put_f32(x, out);
	out[n] = '\0';
	return n;
}

int vec_format_f32_array(const float *v, size_t dim, struct buf *out)
{
	if (dim > VEC_MAX_DIM) {
		char tmp[VEC_F32_TEXT_MAX];
		int rc = buf_append(out, "[", 1);
		for (size_t i = 0; rc == 0 && i < dim; i++) {
			if (i > 0)
				rc = buf_append(out, ",", 1);
			if (rc == 0)
				rc = buf_append(out, tmp, vec_format_f32(v[i], tmp));
		}
		return rc ? rc : buf_append(out, "]", 1);
	}
	int rc = buf_reserve(out, vec_f32_array_text_max(dim));
	if (rc)
		return rc;
	out->len += vec_format_f32_array_to(v, dim, (char *)out->data + out->len);
	return 0;
}

size_t vec_f32_array_text_max(size_t dim)
{
	return 2 + dim * (VEC_F32_FIXED_MAX + 1);
}

size_t vec_format_f32_array_to(const float *v, size_t dim, char *out)
{
	size_t n = 0;
	out[n++] = '[';
	for (size_t i = 0; i < dim; i++) {
		if (i > 0)
			out[n++] = ',';
		n += put_f32(v[i], out + n);
	}
	out[n++] = ']';
	return n;
}

bool vec_format_f32_array_is(const float *v, size_t dim, const char *s, size_t n)
{
	char tmp[VEC_F32_FIXED_MAX + 1];
	if (n < 2 || s[0] != '[' || s[n - 1] != ']')
		return false;
	size_t p = 1, end = n - 1;
	for (size_t i = 0; i < dim; i++) {
		if (i > 0) {
			if (p >= end || s[p] != ',')
				return false;
			p++;
		}
		size_t k = put_f32(v[i], tmp);
		if (end - p < k)
			return false;
		for (size_t j = 0; j < k; j++)
			if (s[p + j] != tmp[j])
				return false;
		p += k;
	}
	return p == end;
}

size_t vec_format_double(double x, char out[static VEC_DOUBLE_TEXT_MAX])
{
	if (isnan(x) || isinf(x))
		return put_str(out, "0");
	if (x == 0)
		return put_str(out, signbit(x) ? "-0" : "0");
	double a = fabs(x);
	struct digits g;
	shortest(a, &g);
	if (a >= 1e15 || a < 1e-15)
		return put_exp(&g, x < 0, false, out);
	return put_fixed(&g, x < 0, out);
}

size_t vec_format_go_float(double x, char out[static VEC_DOUBLE_TEXT_MAX])
{
	if (isnan(x))
		return put_str(out, "NaN");
	if (isinf(x))
		return put_str(out, x > 0 ? "+Inf" : "-Inf");
	if (x == 0)
		return put_str(out, signbit(x) ? "-0" : "0");
	struct digits g;
	shortest(fabs(x), &g);
	/* %v is %g with the shortest digits, and then strconv uses an
	 * exponent when it is < -4 or >= 6 (not the 21 of encoding/json). */
	int exp = g.dp - 1;
	if (exp < -4 || exp >= 6)
		return put_exp(&g, x < 0, true, out);
	return put_fixed(&g, x < 0, out);
}
