/* Numbers printed as TiDB prints them: vector elements (Go's
 * strconv.AppendFloat(x, 'f', -1, 32)), DOUBLE cells (TiDB's
 * AppendFormatFloat with prec -1) and Go's "%v" for error messages. */
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

/* Whether m * 10^e10 reads back as x (as a float32 when f32). The text has
 * no decimal point, so the process locale cannot matter. */
static bool reads_back(uint64_t m, int e10, double x, bool f32)
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
	if (f32)
		return strtof(p, NULL) == (float)x;
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
static bool try_digits(double x, bool f32, int nd, uint64_t *m, int *e10)
{
	uint64_t c;
	int e;
	nearest(x, nd, &c, &e);
	if (reads_back(c, e, x, f32)) {
		*m = c;
		*e10 = e;
		return true;
	}
	if (reads_back(c + 1, e, x, f32)) {
		*m = c + 1;
		*e10 = e;
		return true;
	}
	/* Below 1000 comes 9999 at the next finer step, not 999. */
	uint64_t lo = c == pow10u(nd - 1) ? pow10u(nd) - 1 : c - 1;
	int lo_e = c == pow10u(nd - 1) ? e - 1 : e;
	if (reads_back(lo, lo_e, x, f32)) {
		*m = lo;
		*e10 = lo_e;
		return true;
	}
	return false;
}

/* Go's shortest formatting of x > 0 (finite): the fewest significant
 * digits that read back as x, the closest such decimal if several, ties to
 * even. (Go 1.26's Dragonbox breaks one float32 tie upwards: 2^-12 prints
 * 0.00024414063 there, 0.00024414062 with Go <= 1.25's Ryu and here.) Having
 * some n-digit decimal that reads back implies one with n + 1 digits, so the
 * length can be binary-searched; 9 (float32) or 17 (double) always do. */
static void shortest(double x, bool f32, struct digits *out)
{
	int lo = 1, hi = f32 ? 9 : 17;
	uint64_t m = 0;
	int e10 = 0;
	bool found = false;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		uint64_t mm;
		int ee;
		if (try_digits(x, f32, mid, &mm, &ee)) {
			hi = mid;
			m = mm;
			e10 = ee;
			found = true;
		} else {
			lo = mid + 1;
		}
	}
	/* Nothing shorter did: the longest length always does. */
	if (!found && !try_digits(x, f32, hi, &m, &e10))
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

size_t vec_format_f32(float x, char out[static VEC_F32_TEXT_MAX])
{
	if (isnan(x))
		return put_str(out, "NaN");
	if (isinf(x))
		return put_str(out, x > 0 ? "+Inf" : "-Inf");
	if (x == 0)
		return put_str(out, signbit(x) ? "-0" : "0");
	struct digits g;
	shortest(fabs((double)x), true, &g);
	return put_fixed(&g, x < 0, out);
}

int vec_format_f32_array(const float *v, size_t dim, struct buf *out)
{
	char tmp[VEC_F32_TEXT_MAX];
	int rc = buf_reserve(out, dim < SIZE_MAX / 16 ? dim * 12 + 2 : dim);
	if (rc == 0)
		rc = buf_append(out, "[", 1);
	for (size_t i = 0; rc == 0 && i < dim; i++) {
		if (i > 0)
			rc = buf_append(out, ",", 1);
		if (rc == 0)
			rc = buf_append(out, tmp, vec_format_f32(v[i], tmp));
	}
	return rc ? rc : buf_append(out, "]", 1);
}

size_t vec_format_double(double x, char out[static VEC_DOUBLE_TEXT_MAX])
{
	if (isnan(x) || isinf(x))
		return put_str(out, "0");
	if (x == 0)
		return put_str(out, signbit(x) ? "-0" : "0");
	double a = fabs(x);
	struct digits g;
	shortest(a, false, &g);
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
	shortest(fabs(x), false, &g);
	/* %v is %g with the shortest digits, and then strconv uses an
	 * exponent when it is < -4 or >= 6 (not the 21 of encoding/json). */
	int exp = g.dp - 1;
	if (exp < -4 || exp >= 6)
		return put_exp(&g, x < 0, true, out);
	return put_fixed(&g, x < 0, out);
}
