/* Vector literals read exactly as TiDB's ParseVectorFloat32 reads them: with
 * json-iterator (github.com/json-iterator/go v1.1.12), whose number reader is
 * laxer than JSON in places, then Go's strconv.ParseFloat and float32().
 * Numbers like those TiDB prints take an exact fast path (docs/tidb.md §4);
 * the rest go through strtod. vec_parse_canonical() also tells, as it
 * reads, whether the text is exactly what vec_format_f32_array() prints for
 * the result: the cache does not keep such text (src/cache/segment.h). */
#include "vec/vec.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vec_f32_init(struct vec_f32 *a)
{
	memset(a, 0, sizeof(*a));
}

void vec_f32_free(struct vec_f32 *a)
{
	free(a->v);
	vec_f32_init(a);
}

static int grow(struct vec_f32 *a)
{
	size_t cap = a->cap ? a->cap * 2 : 16;
	if (cap > SIZE_MAX / sizeof(float))
		return -ENOMEM;
	float *v = realloc(a->v, cap * sizeof(float));
	if (!v)
		return -ENOMEM;
	a->v = v;
	a->cap = cap;
	return 0;
}

static inline int push(struct vec_f32 *a, float x)
{
	if (a->dim == a->cap) {
		int rc = grow(a);
		if (rc)
			return rc;
	}
	a->v[a->dim++] = x;
	return 0;
}

int vec_f32_push(struct vec_f32 *a, float x)
{
	return push(a, x);
}

int vec_err_message(const struct vec_err *e, struct buf *out)
{
	int rc = buf_append(out, e->msg, strlen(e->msg));
	return rc ? rc : buf_append(out, e->echo, e->echo_len);
}

static int fail(struct vec_err *err, int rc, const char *text, const char *echo, size_t echo_len)
{
	err->code = rc == -ENOMEM ? 0 : VEC_ER_UNKNOWN;
	memcpy(err->sqlstate, "HY000", 6);
	snprintf(err->msg, sizeof(err->msg), "%s", text);
	err->echo = echo;
	err->echo_len = echo_len;
	return rc;
}

/* What the input looks like to the parser: bytes s[p..n) are unread. */
struct scanner {
	const char *s;
	size_t n;
	size_t p;
};

/* nextToken() skips exactly these; strings.TrimSpace trims more (below). */
static bool json_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scanner *sc)
{
	while (sc->p < sc->n && json_ws((unsigned char)sc->s[sc->p]))
		sc->p++;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* The bytes readNumberAsString() collects into a number. */
static bool num_char(unsigned char c)
{
	return is_digit(c) || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
}

/* floatDigits[c] == endOfNumber: a number may not start with these. */
static bool end_of_number(unsigned char c)
{
	return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n';
}

/* The grammar strconv.ParseFloat accepts for a token made of num_char bytes,
 * after json-iterator's validateFloat(): no leading '-' (ReadFloat64 took
 * it), a '.' must be followed by a digit. So "+1", "+.5" and "+01" pass;
 * "1.", "1.e5", "1e", "1e+" and "1-2" do not. */
static bool valid_token(const char *t, size_t n)
{
	size_t i = 0;
	if (n == 0 || t[0] == '-')
		return false;
	const char *dot = memchr(t, '.', n);
	if (dot && (dot == t + n - 1 || !is_digit((unsigned char)dot[1])))
		return false;
	if (t[0] == '+')
		i++;
	bool sawdot = false, sawdigits = false;
	for (; i < n; i++) {
		if (t[i] == '.' && !sawdot)
			sawdot = true;
		else if (is_digit((unsigned char)t[i]))
			sawdigits = true;
		else
			break;
	}
	if (!sawdigits)
		return false;
	if (i < n && (t[i] == 'e' || t[i] == 'E')) {
		i++;
		if (i < n && (t[i] == '+' || t[i] == '-'))
			i++;
		if (i >= n || !is_digit((unsigned char)t[i]))
			return false;
		while (i < n && is_digit((unsigned char)t[i]))
			i++;
	}
	return i == n;
}

/* Beyond these decimal exponents a double is surely +-Inf or 0. */
#define DEC_EXP_HUGE 400

/* strconv.ParseFloat(t, 64) for a valid_token(): the correctly rounded
 * double (glibc's strtod is correctly rounded too). Go stops growing an
 * exponent once it reaches 10000, and so do we. Overflow is -EINVAL, as
 * ParseFloat's ErrRange; underflow is 0 without error. The digits are handed
 * to strtod as "DIGITSeEXP", without a decimal point, so that the process
 * locale (LC_NUMERIC) cannot matter. Known difference: Go's slow path keeps
 * 800 digits and then misplaces the decimal point of a number with more than
 * 800 digits before it (ParseFloat("1" + 800 zeros + "e-800") is 0.1); we
 * return the true value there. */
static int token_value(const char *t, size_t n, double *out)
{
	size_t i = t[0] == '+' ? 1 : 0;
	size_t first = 0, last = 0, nd = 0; /* significant digits t[first..last] */
	long long dp = 0;                   /* value = 0.DIGITS * 10^dp */
	bool sawdot = false;
	for (; i < n && (t[i] == '.' || is_digit((unsigned char)t[i])); i++) {
		if (t[i] == '.') {
			sawdot = true;
			continue;
		}
		if (nd == 0 && t[i] == '0') {
			if (sawdot)
				dp--;
			continue;
		}
		if (nd == 0)
			first = i;
		if (t[i] != '0')
			last = i;
		nd++;
		if (!sawdot)
			dp++;
	}
	if (i < n) {
		int esign = 1, e = 0;
		i++;
		if (t[i] == '+' || t[i] == '-')
			esign = t[i++] == '-' ? -1 : 1;
		for (; i < n; i++)
			if (e < 10000)
				e = e * 10 + (t[i] - '0');
		dp += (long long)esign * e;
	}
	*out = 0;
	if (nd == 0 || dp < -DEC_EXP_HUGE)
		return 0;
	if (dp > DEC_EXP_HUGE)
		return -EINVAL;

	/* Keep t[first..last] minus any '.', so the digits are d1..dk and the
	 * value is d1..dk * 10^(dp - k). */
	size_t cap = last - first + 32;
	char small[128];
	char *s = cap <= sizeof(small) ? small : malloc(cap);
	if (!s)
		return -ENOMEM;
	size_t k = 0;
	for (size_t j = first; j <= last; j++)
		if (t[j] != '.')
			s[k++] = t[j];
	snprintf(s + k, cap - k, "e%lld", dp - (long long)k);
	double v = strtod(s, NULL);
	if (s != small)
		free(s);
	if (isinf(v))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Exactly representable powers of ten: 10^22 < 2^53 * 2^22 is the last. */
static const double pow10_exact[23] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The value of eight ASCII digits at once (SWAR, as in Lemire's
 * fast_float): v holds them little-endian, the first in the low byte. */
static uint32_t eight_value(uint64_t v)
{
	v -= 0x3030303030303030u;
	v = v * 10 + (v >> 8); /* pairs of digits, in every other byte */
	v = (((v & 0x000000FF000000FFu) * 0x000F424000000064u) +
	     (((v >> 16) & 0x000000FF000000FFu) * 0x0000271000000001u)) >>
	    32;
	return (uint32_t)v;
}
#endif

static const uint64_t pow10_u64[20] = {
        1u,
        10u,
        100u,
        1000u,
        10000u,
        100000u,
        1000000u,
        10000000u,
        100000000u,
        1000000000u,
        10000000000u,
        100000000000u,
        1000000000000u,
        10000000000000u,
        100000000000000u,
        1000000000000000u,
        10000000000000000u,
        100000000000000000u,
        1000000000000000000u,
        10000000000000000000u,
};

/* A decimal being read: its significant digits so far, and the '0' digits
 * past the 19th that were left out of w (each a factor of ten). */
struct acc {
	uint64_t w;
	int nd;    /* digits in w */
	int extra; /* zeros left out */
};

/* Reads the digits at t[*i..avail) into a (the first significant); false
 * when a nonzero digit comes past 19 significant digits. A long run of
 * trailing zeros ("340282330000000000000000000000000000000") fits. */
static inline bool digits(const char *t, size_t avail, size_t *i, struct acc *a)
{
	size_t j = *i;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Up to eight digits a step: the run's length from a mask of the
	 * bytes that are not digits (nothing before the first such byte can
	 * carry into it), then the run shifted up behind '0's. */
	while (avail - j >= 8) {
		uint64_t v;
		memcpy(&v, t + j, 8);
		uint64_t not_digit = ((v & 0xF0F0F0F0F0F0F0F0u) |
		                      (((v + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) ^
		                     0x3333333333333333u;
		int k = not_digit ? __builtin_ctzll(not_digit) / 8 : 8;
		if (k == 0)
			break;
		uint32_t d =
		        k == 8 ? eight_value(v)
		               : eight_value(v << (8 * (8 - k)) | 0x3030303030303030u >> (8 * k));
		if (a->nd + k <= 19 && !a->extra) {
			a->w = a->w * pow10_u64[k] + d;
			a->nd += k;
		} else if (d == 0) {
			a->extra += k;
		} else {
			return false;
		}
		j += (size_t)k;
		if (k < 8) {
			*i = j;
			return true;
		}
	}
#endif
	for (; j < avail && is_digit((unsigned char)t[j]); j++) {
		unsigned d = (unsigned)(t[j] - '0');
		if (a->nd < 19 && !a->extra) {
			a->w = a->w * 10 + d;
			a->nd++;
		} else if (d == 0) {
			a->extra++;
		} else {
			return false;
		}
	}
	*i = j;
	return true;
}

/* What scan_number() saw of a token: its value is w * 10^e10, and `plain`
 * says it is laid out as vec_format_f32() lays numbers out (no exponent,
 * no trailing zero after a '.', "0" alone for zero). */
struct token {
	uint64_t w;
	int e10;
	bool plain;
};

/* The tokens TiDB prints, and numbers like them: digits, optionally '.'
 * and digits, optionally an exponent, with at most 19 significant digits;
 * every such token is a valid_token(). Reads t[0..avail) (t[0] is not a '0'
 * before a digit); true with the token's length in *len and what it says
 * in *tk when the token is one of these and ends before avail (at a byte
 * that cannot continue a number); false: the slow path judges it. */
static bool scan_number(const char *t, size_t avail, size_t *len, struct token *tk)
{
	size_t i = 0;
	struct acc a = {0, 0, 0};
	int e10 = 0;
	if (!is_digit((unsigned char)t[0]))
		return false; /* '+' or '.' first */
	if (t[0] == '0')
		i = 1; /* "0" alone: a '0' before a digit was refused */
	else if (!digits(t, avail, &i, &a))
		return false;
	tk->plain = true;
	if (i < avail && t[i] == '.') {
		size_t f = ++i;
		if (a.w == 0)
			while (i < avail && t[i] == '0')
				i++; /* leading zeros: not significant */
		if (!digits(t, avail, &i, &a))
			return false;
		if (i == f)
			return false;
		e10 -= (int)(i - f);
		tk->plain = t[i - 1] != '0';
	}
	e10 += a.extra;
	if (i < avail && (t[i] == 'e' || t[i] == 'E')) {
		int sign = 1, e = 0;
		size_t d0;
		if (++i < avail && (t[i] == '+' || t[i] == '-'))
			sign = t[i++] == '-' ? -1 : 1;
		for (d0 = i; i < avail && is_digit((unsigned char)t[i]) && i - d0 < 4; i++)
			e = e * 10 + (t[i] - '0');
		if (i == d0)
			return false;
		e10 += sign * e;
		tk->plain = false;
	}
	/* The token must end here, before the end of the input. */
	if (i == avail || num_char((unsigned char)t[i]))
		return false;
	*len = i;
	tk->w = a.w;
	tk->e10 = e10;
	if (a.w == 0)
		tk->plain = i == 1;
	return true;
}

/* token_value() for a scanned token, fast when the decimal w * 10^e has
 * w <= 2^53 and |e| <= 22 (or e a little above 22 with w small enough to
 * take the excess exactly): w and 10^|e| are then exact doubles, and one
 * IEEE multiplication or division rounds their product or quotient
 * correctly (Clinger, "How to read floating point numbers accurately",
 * 1990): the double strtod gives. Needs round-to-nearest without excess
 * precision, as C's default environment on every target vecgate builds
 * for has; elsewhere every value takes the slow path. */
static bool fast_value(const struct token *tk, double *out)
{
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
	(void)tk, (void)out;
	return false;
#else
	uint64_t w = tk->w;
	int e10 = tk->e10;
	if (w == 0) {
		*out = 0;
		return true;
	}
	const uint64_t exact = UINT64_C(1) << 53;
	if (e10 > 22 && e10 <= 22 + 15 && w <= exact / pow10_u64[e10 - 22]) {
		w *= pow10_u64[e10 - 22];
		e10 = 22;
	}
	if (w > exact || e10 < -22 || e10 > 22)
		return false;
	double v = (double)(int64_t)w; /* w <= 2^53: the one-instruction conversion */
	*out = e10 < 0 ? v / pow10_exact[-e10] : v * pow10_exact[e10];
	return true;
#endif
}

typedef unsigned __int128 u128;

/* canonical_token() without printing, for most floats: whether w * 10^e10
 * (w >= 10, no trailing zero) is the decimal vec_f32_digits() gives for f.
 * That decimal is the closest (ties to even) of those with the fewest
 * digits that read back as f, i.e. that lie in f's rounding interval I
 * (between the midpoints to f's neighbours; the ends belong to I when f's
 * mantissa is even). w * 10^e10 is it exactly when
 *   (a) it lies in I;
 *   (b) no decimal with fewer digits does: a shorter decimal in I makes
 *       I hold a multiple of 10^(e10+1), and the nearest ones around w are
 *       (w / 10) * 10 and that plus 10;
 *   (c) neither w - 1 nor w + 1 (same length: (b) excludes the others)
 *       lies in I closer to f, or as close and even.
 * With f = mv * 2^e2 and both exponents <= 0, comparing a decimal c *
 * 10^e10 with x * 2^e2 is comparing c << -e2 with x * 10^-e10, in 128
 * bits while -e2 <= 90 and -e10 <= 28; in doubles for -e10 <= 11. 1 yes,
 * 0 no, -1 out of that range (w < 10, e10 > 0, subnormal f...). */
static int canonical_fast(float f, uint64_t w, int e10)
{
	uint32_t bits;
	memcpy(&bits, &f, sizeof(bits));
	uint32_t ieee_m = bits & 0x7FFFFFu, ieee_e = (bits >> 23) & 0xFFu;
	int e2 = (int)ieee_e - 127 - 23 - 2;
	if (w < 10 || e10 > 0 || ieee_e == 0 || ieee_e == 0xFF)
		return -1;
	uint32_t m2 = (1u << 23) | ieee_m;
	bool even = (m2 & 1) == 0;
	if (e10 >= -11) {
		/* The same in doubles, exactly: I's ends have 26 significant
		 * bits and 10^11 = 5^11 * 2^11 has 26, so f, I's ends and the
		 * decimals all scale by 10^-e10 without rounding; and every
		 * point of I lies within a factor 2 of every other (I lies
		 * between c0 >= 10 and c0 + 10), so their differences are exact
		 * too (Sterbenz). */
		uint64_t ub = (uint64_t)(ieee_e - 150 + 1023) << 52;
		double ulp, fd = fabs((double)f);
		memcpy(&ulp, &ub, sizeof(ulp));
		double p = pow10_exact[-e10];
		double lo = (fd - ulp * (ieee_m == 0 && ieee_e > 1 ? 0.25 : 0.5)) * p;
		double hi = (fd + ulp * 0.5) * p, x = fd * p;
		double y = (double)(int64_t)w, c0 = (double)(int64_t)(w / 10 * 10);
#define IN_D(v) (even ? (lo <= (v) && (v) <= hi) : (lo < (v) && (v) < hi))
		if (!IN_D(y) || IN_D(c0) || IN_D(c0 + 10))
			return 0;
		/* (c): w is the integer nearest x, or the nearer one is not in I
		 * (a tie goes to the even one). */
		double d = fabs(y - x);
		if (d < 0.5 || (d == 0.5 && !(w & 1)))
			return 1;
		double n = x > y ? y + 1 : y - 1;
		return !IN_D(n);
#undef IN_D
	}
	if (e10 < -28 || e2 > 0 || e2 < -90)
		return -1;
	uint32_t mv = 4 * m2, mp = mv + 2, mm = mv - 1 - (ieee_m != 0 || ieee_e <= 1);
	int b = -e10, a = -e2;
	u128 p10 = (u128)pow10_u64[b < 19 ? b : 19] * pow10_u64[b < 19 ? 0 : b - 19];
	u128 lo = p10 * mm, hi = p10 * mp, x = p10 * mv;
#define IN_I(y) (even ? (lo <= (y) && (y) <= hi) : (lo < (y) && (y) < hi))
	u128 y = (u128)w << a;
	if (!IN_I(y))
		return 0;
	uint64_t c0 = w / 10 * 10;
	u128 y0 = (u128)c0 << a, y1 = (u128)(c0 + 10) << a;
	if (IN_I(y0) || IN_I(y1))
		return 0;
	u128 d = y > x ? y - x : x - y, unit = (u128)1 << a;
	u128 n[2] = {y - unit, y + unit};
	for (int i = 0; i < 2; i++) {
		if (!IN_I(n[i]))
			continue;
		u128 dn = n[i] > x ? n[i] - x : x - n[i];
		if (dn < d || (dn == d && (w & 1)))
			return 0;
	}
#undef IN_I
	return 1;
}

/* Whether vec_format_f32() prints (float)v as the token tk read (the sign
 * matches by construction). */
static bool canonical_token(double v, const struct token *tk)
{
	if (!tk->plain)
		return false;
	if (tk->w == 0)
		return true; /* "0" or "-0", as -0 prints */
	float f = (float)v;
	if (f == 0 || isinf(f))
		return false;
	uint64_t w = tk->w;
	int e10 = tk->e10;
	while (w % 10 == 0) {
		w /= 10;
		e10++;
	}
	int fast = canonical_fast(f, w, e10);
	if (fast >= 0)
		return fast;
	int32_t fe;
	uint32_t d = vec_f32_digits(f, &fe);
	return d == w && fe == e10;
}

/* canonical_token() for an element the fast paths took, read as d and
 * rounded to f, trying canonical_fast() first. */
static bool element_canonical(double d, float f, uint64_t w, int frac, bool plain)
{
	/* A fraction ending in a nonzero digit: w has no trailing zero and
	 * is not 0, and f is finite. */
	int fast = frac && plain ? canonical_fast(f, w, -frac) : -1;
	struct token tk = {w, -frac, w ? plain : frac == 0};
	return fast >= 0 ? fast : canonical_token(d, &tk);
}

/* ReadFloat64() at sc->p (whitespace already skipped). 0 with the value,
 * -EINVAL when json-iterator records an error, or -ENOMEM. The checks before
 * the token are its fast path's: an empty number, a leading '.', a leading
 * zero followed by a digit (only there: "+01" goes to the slow path and
 * passes). A token that runs into the end of the input makes json-iterator
 * record io.EOF, which fails the whole parse whatever the number was. */
static int read_number(struct scanner *sc, double *out, bool *canon)
{
	bool neg = false;
	if (sc->p < sc->n && sc->s[sc->p] == '-') {
		neg = true;
		sc->p++;
	}
	if (sc->p == sc->n)
		return -EINVAL;
	const char *t = sc->s + sc->p;
	unsigned char c = (unsigned char)t[0];
	if (end_of_number(c) || c == '.')
		return -EINVAL;
	if (c == '0' && sc->p + 1 < sc->n && is_digit((unsigned char)t[1]))
		return -EINVAL;
	size_t len = 0;
	int rc = 0;
	struct token tk = {0, 0, false};
	bool scanned = scan_number(t, sc->n - sc->p, &len, &tk);
	if (!scanned) {
		len = 0;
		while (sc->p + len < sc->n && num_char((unsigned char)t[len]))
			len++;
		if (sc->p + len == sc->n || !valid_token(t, len))
			return -EINVAL;
	}
	if (!scanned || !fast_value(&tk, out))
		rc = token_value(t, len, out);
	if (neg)
		*out = -*out;
	if (canon && *canon)
		*canon = rc == 0 && scanned && canonical_token(*out, &tk);
	sc->p += len;
	return rc;
}

/* Whether s[0..n) is all Unicode White_Space (Go's unicode.IsSpace) in
 * valid UTF-8: what strings.TrimSpace would remove entirely. */
static bool all_unicode_space(const char *s, size_t n)
{
	static const char *const wide[] = {
	        "\xC2\x85",     "\xC2\xA0",     "\xE1\x9A\x80", "\xE2\x80\xA8",
	        "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80",
	};
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || (c >= '\t' && c <= '\r')) {
			i++;
			continue;
		}
		/* U+2000..U+200A */
		if (n - i >= 3 && c == 0xE2 && (unsigned char)s[i + 1] == 0x80 &&
		    (unsigned char)s[i + 2] >= 0x80 && (unsigned char)s[i + 2] <= 0x8A) {
			i += 3;
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof(wide) / sizeof(wide[0]); k++) {
			size_t w = strlen(wide[k]);
			if (n - i >= w && memcmp(s + i, wide[k], w) == 0) {
				i += w;
				break;
			}
		}
		if (k == sizeof(wide) / sizeof(wide[0]))
			return false;
	}
	return true;
}

/* Master's check after the array: SkipAndReturnBytes() returns the bytes
 * Skip() consumed, and strings.TrimSpace must leave nothing of them. Skip()
 * consumes the JSON whitespace and at least the next byte, so "[1] " passes,
 * "[1]x" and "[1] [2]" fail; but a '\v' or '\f' there is trimmed, whatever
 * follows it ("[1]\vabc" passes), and a '0' followed by a digit is handed
 * back by ReadFloat32's leading-zero error, so "[1] 01x" passes too. */
static bool trailing_ok(struct scanner *sc)
{
	skip_ws(sc);
	if (sc->p == sc->n)
		return true;
	char c = sc->s[sc->p];
	if (c == '0')
		return sc->p + 1 < sc->n && is_digit((unsigned char)sc->s[sc->p + 1]);
	return c == '\v' || c == '\f';
}

/* ReadArrayCB() saw 'n': it accepts "null" as an empty array. Master first
 * rejects any input that strings.TrimSpace turns into "null". */
static bool null_ok(struct scanner *sc, enum vec_dialect dialect)
{
	if (sc->n - sc->p < 3 || memcmp(sc->s + sc->p, "ull", 3) != 0)
		return false;
	sc->p += 3;
	if (dialect == VEC_TIDB_V8_5)
		return true;
	if (all_unicode_space(sc->s + sc->p, sc->n - sc->p))
		return false;
	return trailing_ok(sc);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&                        \
        defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
/* How many of the 8 bytes of v (little-endian) are digits before the first
 * that is not (nothing before that byte carries into it). */
static int digit_run(uint64_t v)
{
	uint64_t not_digit = ((v & 0xF0F0F0F0F0F0F0F0u) |
	                      (((v + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) ^
	                     0x3333333333333333u;
	return not_digit ? __builtin_ctzll(not_digit) / 8 : 8;
}

/* The value of the first k (0..8) digits of v. */
static uint64_t run_value(uint64_t v, int k)
{
	if (k == 0)
		return 0;
	return eight_value(k == 8 ? v : v << (8 * (8 - k)) | 0x3030303030303030u >> (8 * k));
}

static uint64_t load8(const char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

#if defined(__x86_64__)
#include <immintrin.h>
#define CANON_X86 1
#endif

/* 0 (VEC_PARSE_AUTO) or the forced path; atomic so that a test forcing a
 * path never races a parse in another thread into undefined behaviour. */
static _Atomic int forced_isa;

static bool isa_supported(enum vec_parse_isa isa)
{
	switch (isa) {
	case VEC_PARSE_AUTO:
	case VEC_PARSE_SCALAR:
		return true;
#ifdef CANON_X86
	/* libgcc's constructor has filled the CPU model: no
	 * __builtin_cpu_init(), whose writes would race between threads. */
	case VEC_PARSE_AVX512: /* the elements are read as on AVX2 */
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
		       __builtin_cpu_supports("avx512vl") && isa_supported(VEC_PARSE_AVX2);
	case VEC_PARSE_AVX2:
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("sse4.1") &&
		       __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi");
#endif
	default:
		return false;
	}
}

int vec_parse_force(enum vec_parse_isa isa)
{
	if (!isa_supported(isa))
		return -ENOTSUP;
	atomic_store(&forced_isa, (int)isa);
	return 0;
}

enum vec_parse_isa vec_parse_isa(void)
{
	int f = atomic_load_explicit(&forced_isa, memory_order_relaxed);
	if (f != VEC_PARSE_AUTO)
		return (enum vec_parse_isa)f;
	static _Atomic int best; /* computed once; every thread computes the same */
	int b = atomic_load_explicit(&best, memory_order_relaxed);
	if (b == 0) {
		b = isa_supported(VEC_PARSE_AVX512) ? VEC_PARSE_AVX512
		    : isa_supported(VEC_PARSE_AVX2) ? VEC_PARSE_AVX2
		                                    : VEC_PARSE_SCALAR;
		atomic_store_explicit(&best, b, memory_order_relaxed);
	}
	return (enum vec_parse_isa)b;
}

/* Elements waiting for canonical_fast's check in vectors: each one's
 * float, digits w (no trailing zero, >= 10), fraction digits (1..11) and
 * w's last digit; only elements canonical_fast would judge in its double
 * branch are put here. */
struct canon_batch {
	int n;
	float f[8];
	uint64_t w[8];
	int32_t frac[8];
	double last[8];
};

#ifdef CANON_X86
#define TCB __attribute__((target("avx512f,avx512dq,avx512vl")))

/* canonical_fast's double branch for the batch's lanes, 8 at a time: the
 * same operations on the same doubles (each exact, as shown there), so the
 * same verdicts; a mask of the lanes that are canonical. */
static inline __attribute__((always_inline)) TCB unsigned
canon8v(__mmask8 live, __m256 f, __m512i wv, __m256i frac, __m512d last)
{
	__m256i bits = _mm256_castps_si256(f);
	__m256i e = _mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xFF));
	__m256i mant = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFF));
	__m512d ulp = _mm512_castsi512_pd(_mm512_slli_epi64(
	        _mm512_add_epi64(_mm512_cvtepi32_epi64(e), _mm512_set1_epi64(1023 - 150)), 52));
	__mmask8 quarter = _mm256_cmpeq_epi32_mask(mant, _mm256_setzero_si256()) &
	                   _mm256_cmpgt_epi32_mask(e, _mm256_set1_epi32(1));
	__mmask8 even = _mm256_testn_epi32_mask(mant, _mm256_set1_epi32(1));
	__m512d fd = _mm512_abs_pd(_mm512_cvtps_pd(_mm256_castsi256_ps(bits)));
	__m512d p =
	        _mm512_permutex2var_pd(_mm512_loadu_pd(pow10_exact), _mm512_cvtepi32_epi64(frac),
	                               _mm512_loadu_pd(pow10_exact + 8)); /* frac <= 11 */
	__m512d fac = _mm512_mask_mov_pd(_mm512_set1_pd(0.5), quarter, _mm512_set1_pd(0.25));
	__m512d lo = _mm512_mul_pd(_mm512_sub_pd(fd, _mm512_mul_pd(ulp, fac)), p);
	__m512d hi = _mm512_mul_pd(_mm512_add_pd(fd, _mm512_mul_pd(ulp, _mm512_set1_pd(0.5))), p);
	__m512d x = _mm512_mul_pd(fd, p);
	__m512d y = _mm512_cvtepi64_pd(wv); /* w <= 2^53: exact */
	__m512d c0 = _mm512_sub_pd(y, last);
#define IN8(v)                                                                                     \
	((__mmask8)((even & _mm512_cmp_pd_mask(lo, (v), _CMP_LE_OQ) &                              \
	             _mm512_cmp_pd_mask((v), hi, _CMP_LE_OQ)) |                                    \
	            (~even & _mm512_cmp_pd_mask(lo, (v), _CMP_LT_OQ) &                             \
	             _mm512_cmp_pd_mask((v), hi, _CMP_LT_OQ))))
	__mmask8 ok =
	        IN8(y) & (__mmask8)~IN8(c0) & (__mmask8)~IN8(_mm512_add_pd(c0, _mm512_set1_pd(10)));
	__m512d d = _mm512_abs_pd(_mm512_sub_pd(y, x));
	__mmask8 w_even = _mm512_testn_epi64_mask(wv, _mm512_set1_epi64(1));
	__mmask8 near = _mm512_cmp_pd_mask(d, _mm512_set1_pd(0.5), _CMP_LT_OQ) |
	                (_mm512_cmp_pd_mask(d, _mm512_set1_pd(0.5), _CMP_EQ_OQ) & w_even);
	__mmask8 up = _mm512_cmp_pd_mask(x, y, _CMP_GT_OQ);
	__m512d n =
	        _mm512_mask_add_pd(_mm512_sub_pd(y, _mm512_set1_pd(1)), up, y, _mm512_set1_pd(1));
	__mmask8 yes = ok & (near | (__mmask8)~IN8(n));
#undef IN8
	return (unsigned)(yes & live);
}

/* Eight elements simd_element() read, to be rounded and judged at once. */
struct elem_batch {
	int n;
	unsigned neg, plain; /* bit i: lane i's */
	uint64_t w[8];
	int32_t frac[8];
	int32_t last[8]; /* the last digit's value */
};

/* element_canonical() for the lanes o + i of b, i a bit of rest, whose
 * doubles and floats are d[i] and f[i], while *canon holds. */
static void judge_lanes(const struct elem_batch *b, int o, unsigned rest, const double *d,
                        const float *f, bool *canon)
{
	for (; rest && *canon; rest &= rest - 1) {
		int i = __builtin_ctz(rest);
		*canon = element_canonical(d[i], f[i], b->w[o + i], b->frac[o + i],
		                           b->plain >> (o + i) & 1);
	}
}

/* take_element() for the batch's 8 lanes: the same division of the same
 * exact doubles, the same roundings (one lane each), so the same floats;
 * canon8v() for the lanes canonical_fast's double branch judges and
 * element_canonical() for the others, as take_element() splits them.
 * Stores the floats at out->v[out->dim..+8), which the caller made room
 * for. */
TCB static void batch8(const struct elem_batch *b, struct vec_f32 *out, bool *canon)
{
	__m512i wv = _mm512_loadu_si512(b->w);
	__m256i frac = _mm256_loadu_si256((const __m256i *)(const void *)b->frac);
	__m512d p =
	        _mm512_permutex2var_pd(_mm512_loadu_pd(pow10_exact), _mm512_cvtepi32_epi64(frac),
	                               _mm512_loadu_pd(pow10_exact + 8)); /* frac <= 15 */
	__m512i db = _mm512_castpd_si512(_mm512_div_pd(_mm512_cvtepi64_pd(wv), p));
	db = _mm512_mask_xor_epi64(db, (__mmask8)b->neg, db, _mm512_set1_epi64(INT64_MIN));
	__m512d d = _mm512_castsi512_pd(db);
	__m256 f = _mm512_cvtpd_ps(d);
	_mm256_storeu_ps(out->v + out->dim, f);
	out->dim += 8;
	if (!canon || !*canon)
		return;
	__m256i e = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(f), 23),
	                             _mm256_set1_epi32(0xFF));
	__mmask8 batched = (__mmask8)b->plain &
	                   _mm256_cmpgt_epi32_mask(frac, _mm256_setzero_si256()) &
	                   _mm256_cmple_epi32_mask(frac, _mm256_set1_epi32(11)) &
	                   _mm512_cmpge_epu64_mask(wv, _mm512_set1_epi64(10)) &
	                   _mm256_cmpneq_epi32_mask(e, _mm256_setzero_si256()) &
	                   _mm256_cmpneq_epi32_mask(e, _mm256_set1_epi32(0xFF));
	__m512d last =
	        _mm512_cvtepi32_pd(_mm256_loadu_si256((const __m256i *)(const void *)b->last));
	if (canon8v(batched, f, wv, frac, last) != batched) {
		*canon = false;
		return;
	}
	unsigned rest = (unsigned)(__mmask8)~batched;
	if (!rest)
		return;
	double dd[8];
	float ff[8];
	_mm512_storeu_pd(dd, d);
	_mm256_storeu_ps(ff, f);
	judge_lanes(b, 0, rest, dd, ff, canon);
}

TCB static unsigned canon8(const struct canon_batch *cb)
{
	__mmask8 live = (__mmask8)((1u << cb->n) - 1);
	return canon8v(
	        live, _mm256_maskz_loadu_ps(live, cb->f), _mm512_maskz_loadu_epi64(live, cb->w),
	        _mm256_maskz_loadu_epi32(live, cb->frac), _mm512_maskz_loadu_pd(live, cb->last));
}

#else
static unsigned canon8(const struct canon_batch *cb)
{
	unsigned m = 0;
	for (int i = 0; i < cb->n; i++)
		m |= (unsigned)(canonical_fast(cb->f[i], cb->w[i], -cb->frac[i]) == 1) << i;
	return m;
}

#endif

/* Judges the batch into *canon and empties it. */
static void canon_flush(struct canon_batch *cb, bool *canon)
{
	if (cb->n && canon8(cb) != (1u << cb->n) - 1)
		*canon = false;
	cb->n = 0;
}

/* One element as TiDB prints it, read at t (after any '-'): "D+(.D+)?"
 * followed by ',', at most 7 digits before a '.' and 15 after it, no
 * leading zero. True with its digits in *w (w * 10^-*frac is its value),
 * *plain as scan_number() sets it and its length (',' excluded) in *len;
 * false: read_number() judges it. t[0..16) are readable. */
static bool scalar_element(const char *t, uint64_t *w, int *frac, bool *plain, size_t *len)
{
	int k = digit_run(load8(t));
	if (k == 0 || k == 8 || (t[0] == '0' && k > 1))
		return false;
	uint64_t v = run_value(load8(t), k);
	const char *e = t + k;
	*frac = 0;
	*plain = true;
	if (*e == '.') {
		e++;
		uint64_t v1 = load8(e), v2 = load8(e + 8);
		int k1 = digit_run(v1), k2 = k1 == 8 ? digit_run(v2) : 0;
		if (k1 == 0 || k2 == 8)
			return false;
		*frac = k1 + k2;
		v = (v * pow10_u64[k1] + run_value(v1, k1)) * pow10_u64[k2] + run_value(v2, k2);
		e += *frac;
		*plain = e[-1] != '0';
	}
	if (*e != ',' || v > (UINT64_C(1) << 53))
		return false;
	*w = v;
	*len = (size_t)(e - t);
	return true;
}

/* The end of reading an element the fast paths took: its value
 * w * 10^-frac, negated when neg, rounded to double (one correctly rounded
 * division of exact doubles: fast_value()) and then to float as TiDB does;
 * its canonical verdict (last: its last digit; with avx512, judged 8 at a
 * time through cb); and the push. */
static inline __attribute__((always_inline)) int take_element(struct vec_f32 *out, size_t *count,
                                                              bool *canon, struct canon_batch *cb,
                                                              bool avx512, uint64_t w, int frac,
                                                              bool plain, bool neg, char last)
{
	double d = (double)(int64_t)w; /* w <= 2^53 */
	d = frac ? d / pow10_exact[frac] : d;
	uint64_t db;
	memcpy(&db, &d, sizeof(db));
	db ^= (uint64_t)neg << 63; /* -d without a branch on a coin toss */
	memcpy(&d, &db, sizeof(d));
	float f = (float)d;
	if (canon && *canon) {
		uint32_t fb;
		memcpy(&fb, &f, sizeof(fb));
		uint32_t fe = fb >> 23 & 0xFFu;
		if (avx512 && frac && frac <= 11 && plain && w >= 10 && fe != 0 && fe != 0xFF) {
			/* canonical_fast's double branch, 8 elements a time */
			int i = cb->n++;
			cb->f[i] = f;
			cb->w[i] = w;
			cb->frac[i] = frac;
			cb->last[i] = (double)(last - '0');
			if (cb->n == 8)
				canon_flush(cb, canon);
		} else {
			*canon = element_canonical(d, f, w, frac, plain);
		}
	}
	if (++*count > VEC_MAX_DIM)
		return 0;
	if (out->dim == out->cap)
		return push(out, f);
	out->v[out->dim++] = f;
	return 0;
}

#ifdef CANON_X86
#define TSSE  __attribute__((target("sse4.1,popcnt,bmi")))
#define TAVX2 __attribute__((target("avx2,sse4.1,popcnt,bmi")))

/* scalar_element() in 128-bit vectors, for an element whose length n
 * (1..15 bytes after any '-', ',' excluded) is known: its bytes are
 * classified 16 at once, its digits shuffled behind zeros with the '.'
 * left out, and summed in pairs, fours and eights (pmaddubsw, pmaddwd: the
 * SSE form of eight_value()). Takes digits with one '.' or none, a digit
 * on each side of it and no leading zero: at most 14 digits, so
 * w < 10^14 < 2^53. Its value w * 10^-frac is the number's whichever path
 * reads it, so the verdicts do not depend on the path. t[0..16) are
 * readable. */
static inline __attribute__((always_inline)) TSSE bool
simd_element(const char *t, unsigned n, uint64_t *w, int *frac, bool *plain)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)t);
	__m128i dv = _mm_sub_epi8(v, _mm_set1_epi8('0'));
	unsigned digit =
	        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(dv, _mm_set1_epi8(9)), dv));
	unsigned dot = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
	unsigned all = (1u << n) - 1;
	dot &= all;
	if (((digit | dot) & all) != all)
		return false;
	unsigned d = dot ? _tzcnt_u32(dot) : 16; /* the '.' */
	if (dot ? (dot & (dot - 1)) || d == 0 || d + 1 >= n || (t[0] == '0' && d > 1)
	        : t[0] == '0' && n > 1)
		return false;
	int nd = (int)n - (dot != 0); /* digits */
	/* Byte j of the result takes digit i = j - (16 - nd) (none when i < 0),
	 * found at i, or i + 1 past the '.': a negative index is a zero. */
	__m128i idx =
	        _mm_add_epi8(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
	                     _mm_set1_epi8((char)(nd - 16)));
	idx = _mm_sub_epi8(idx, _mm_cmpgt_epi8(idx, _mm_set1_epi8((char)(d - 1))));
	__m128i digits = _mm_shuffle_epi8(dv, idx);
	__m128i pairs = _mm_maddubs_epi16(digits, _mm_set1_epi16(0x010A)); /* 10a + b */
	__m128i fours = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00010064)); /* 100a + b */
	__m128i eights = _mm_madd_epi16(_mm_packus_epi32(fours, fours),
	                                _mm_set1_epi32(0x00012710)); /* 10000a + b */
	*w = (uint64_t)(uint32_t)_mm_cvtsi128_si32(eights) * 100000000u +
	     (uint32_t)_mm_extract_epi32(eights, 1);
	*frac = dot ? (int)(n - d - 1) : 0;
	*plain = !dot || t[n - 1] != '0';
	return true;
}

/* The exact doubles of 4 integers w <= 2^53: each 32-bit half through
 * the 2^52 bit pattern (exact), the high one scaled by 2^32 (exact), and
 * the sum, an integer below 2^53, exact too. (AVX2 has no conversion of
 * 64-bit integers.) */
static inline __attribute__((always_inline)) TAVX2 __m256d u53_to_pd(__m256i w)
{
	const __m256i magic = _mm256_set1_epi64x(0x4330000000000000); /* 2^52 */
	const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
	__m256d lo =
	        _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(
	                              _mm256_and_si256(w, _mm256_set1_epi64x(0xFFFFFFFF)), magic)),
	                      two52);
	__m256d hi = _mm256_sub_pd(
	        _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(w, 32), magic)), two52);
	return _mm256_add_pd(_mm256_mul_pd(hi, _mm256_set1_pd(4294967296.0)), lo);
}

/* batch8() with AVX2, four lanes at a time: the same division of the same
 * exact doubles and the same roundings, so the same floats; canon8v()'s
 * operations on the same doubles for the lanes it judges (so the same
 * verdicts), element_canonical() for the others. */
TAVX2 static void batch4x2(const struct elem_batch *b, struct vec_f32 *out, bool *canon)
{
	for (int h = 0; h < 2; h++) {
		const int o = 4 * h;
		__m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)(b->w + o));
		__m128i frac = _mm_loadu_si128((const __m128i *)(const void *)(b->frac + o));
		__m256d p = _mm256_i32gather_pd(pow10_exact, frac, 8); /* frac <= 15 */
		__m256d y = u53_to_pd(wv);
		unsigned nb = b->neg >> o;
		__m256i neg = _mm256_set_epi64x(-(int64_t)(nb >> 3 & 1), -(int64_t)(nb >> 2 & 1),
		                                -(int64_t)(nb >> 1 & 1), -(int64_t)(nb & 1));
		__m256d d =
		        _mm256_xor_pd(_mm256_div_pd(y, p), _mm256_and_pd(_mm256_castsi256_pd(neg),
		                                                         _mm256_set1_pd(-0.0)));
		__m128 f = _mm256_cvtpd_ps(d);
		_mm_storeu_ps(out->v + out->dim + o, f);
		if (!canon || !*canon)
			continue;
		__m128i bits = _mm_castps_si128(f);
		__m128i e = _mm_and_si128(_mm_srli_epi32(bits, 23), _mm_set1_epi32(0xFF));
		__m128i mant = _mm_and_si128(bits, _mm_set1_epi32(0x7FFFFF));
		unsigned batched = (b->plain >> o & 0xFu) &
		                   (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_and_si128(
		                           _mm_cmpgt_epi32(frac, _mm_setzero_si128()),
		                           _mm_cmplt_epi32(frac, _mm_set1_epi32(12))))) &
		                   (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(
		                           _mm256_cmpgt_epi64(wv, _mm256_set1_epi64x(9)))) &
		                   ~(unsigned)_mm_movemask_ps(_mm_castsi128_ps(
		                           _mm_or_si128(_mm_cmpeq_epi32(e, _mm_setzero_si128()),
		                                        _mm_cmpeq_epi32(e, _mm_set1_epi32(0xFF)))));
		__m256d ulp = _mm256_castsi256_pd(_mm256_slli_epi64(
		        _mm256_add_epi64(_mm256_cvtepi32_epi64(e), _mm256_set1_epi64x(1023 - 150)),
		        52));
		__m256d quarter = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(
		        _mm_and_si128(_mm_cmpeq_epi32(mant, _mm_setzero_si128()),
		                      _mm_cmpgt_epi32(e, _mm_set1_epi32(1)))));
		__m256d even = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpeq_epi32(
		        _mm_and_si128(mant, _mm_set1_epi32(1)), _mm_setzero_si128())));
		__m256d fd = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_cvtps_pd(f));
		__m256d fac = _mm256_blendv_pd(_mm256_set1_pd(0.5), _mm256_set1_pd(0.25), quarter);
		__m256d lo = _mm256_mul_pd(_mm256_sub_pd(fd, _mm256_mul_pd(ulp, fac)), p);
		__m256d hi = _mm256_mul_pd(
		        _mm256_add_pd(fd, _mm256_mul_pd(ulp, _mm256_set1_pd(0.5))), p);
		__m256d x = _mm256_mul_pd(fd, p);
		__m256d c0 =
		        _mm256_sub_pd(y, _mm256_cvtepi32_pd(_mm_loadu_si128(
		                                 (const __m128i *)(const void *)(b->last + o))));
#define IN4(v)                                                                                     \
	_mm256_blendv_pd(_mm256_and_pd(_mm256_cmp_pd(lo, (v), _CMP_LT_OQ),                         \
	                               _mm256_cmp_pd((v), hi, _CMP_LT_OQ)),                        \
	                 _mm256_and_pd(_mm256_cmp_pd(lo, (v), _CMP_LE_OQ),                         \
	                               _mm256_cmp_pd((v), hi, _CMP_LE_OQ)),                        \
	                 even)
		__m256d ok = _mm256_andnot_pd(
		        _mm256_or_pd(IN4(c0), IN4(_mm256_add_pd(c0, _mm256_set1_pd(10)))), IN4(y));
		__m256d dd = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_sub_pd(y, x));
		__m256d w_even = _mm256_castsi256_pd(_mm256_cmpeq_epi64(
		        _mm256_and_si256(wv, _mm256_set1_epi64x(1)), _mm256_setzero_si256()));
		__m256d near = _mm256_or_pd(
		        _mm256_cmp_pd(dd, _mm256_set1_pd(0.5), _CMP_LT_OQ),
		        _mm256_and_pd(_mm256_cmp_pd(dd, _mm256_set1_pd(0.5), _CMP_EQ_OQ), w_even));
		__m256d n = _mm256_blendv_pd(_mm256_sub_pd(y, _mm256_set1_pd(1)),
		                             _mm256_add_pd(y, _mm256_set1_pd(1)),
		                             _mm256_cmp_pd(x, y, _CMP_GT_OQ));
		unsigned yes = (unsigned)_mm256_movemask_pd(_mm256_and_pd(
		        ok, _mm256_or_pd(near,
		                         _mm256_xor_pd(IN4(n), _mm256_castsi256_pd(
		                                                       _mm256_set1_epi64x(-1))))));
#undef IN4
		if ((yes & batched) != batched) {
			*canon = false;
			continue;
		}
		unsigned rest = ~batched & 0xFu;
		if (!rest)
			continue;
		double dv[4];
		float fv[4];
		_mm256_storeu_pd(dv, d);
		_mm_storeu_ps(fv, f);
		judge_lanes(b, o, rest, dv, fv, canon);
	}
	out->dim += 8;
}

/* The ','s among s[0..64). */
static inline __attribute__((always_inline)) TAVX2 uint64_t commas64(const char *s)
{
	__m256i c = _mm256_set1_epi8(',');
	uint32_t lo = (uint32_t)_mm256_movemask_epi8(
	        _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(const void *)s), c));
	uint32_t hi = (uint32_t)_mm256_movemask_epi8(
	        _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(s + 32)), c));
	return (uint64_t)hi << 32 | lo;
}

/* batch8() (batch4x2() without AVX-512) for a full batch, or take_element()
 * for each of its lanes when
 * the vector is too long to keep them (the elements are still counted);
 * empties the batch. */
static int flush_batch(struct elem_batch *eb, struct vec_f32 *out, size_t *count, bool *canon,
                       struct canon_batch *cb, bool avx512)
{
	int rc = 0;
	if (*count + 8 <= VEC_MAX_DIM) {
		while (rc == 0 && out->cap - out->dim < 8)
			rc = grow(out);
		if (rc == 0) {
			if (avx512)
				batch8(eb, out, canon);
			else
				batch4x2(eb, out, canon);
			*count += 8;
		}
	} else {
		for (int i = 0; rc == 0 && i < 8; i++)
			rc = take_element(out, count, canon, cb, avx512, eb->w[i], eb->frac[i],
			                  eb->plain >> i & 1, eb->neg >> i & 1,
			                  (char)('0' + eb->last[i]));
	}
	eb->n = 0;
	eb->neg = eb->plain = 0;
	return rc;
}

/* plain_elements()'s bulk: each element ends at the next ',' of a mask of
 * 64 bytes at a time, so where the next element starts does not wait for
 * this one's digits, and the core reads several at once; every 8 elements
 * are rounded and judged together (flush_batch). Stops before the first
 * element simd_element() does not take, or once fewer than 80 bytes follow
 * the window (so every load stays inside the text). */
TAVX2 static int windowed_elements(struct scanner *sc, struct vec_f32 *out, size_t *count,
                                   bool *canon, struct canon_batch *cb, bool avx512)
{
	const char *s = sc->s;
	size_t p = sc->p, wb = p;
	if (wb + 80 > sc->n)
		return 0;
	uint64_t m = commas64(s + wb);
	int rc = 0;
	struct elem_batch eb = {0};
	for (;;) {
		while (m == 0) {
			wb += 64;
			if (wb + 80 > sc->n)
				goto done;
			m = commas64(s + wb);
		}
		size_t c = wb + _tzcnt_u64(m);
		m = _blsr_u64(m);
		size_t len = c - p;
		bool neg = len > 0 && s[p] == '-';
		unsigned n = (unsigned)(len - neg);
		uint64_t w;
		int frac;
		bool plain;
		if (len == 0 || len > 16 || n == 0 || n > 15 ||
		    !simd_element(s + p + neg, n, &w, &frac, &plain))
			break;
		int i = eb.n++;
		eb.w[i] = w;
		eb.frac[i] = frac;
		eb.last[i] = s[c - 1] - '0';
		eb.neg |= (unsigned)neg << i;
		eb.plain |= (unsigned)plain << i;
		if (eb.n == 8)
			rc = flush_batch(&eb, out, count, canon, cb, avx512);
		if (rc)
			break;
		p = c + 1;
	}
done:
	/* The lanes of a batch not full yet, in their order. */
	for (int i = 0; rc == 0 && i < eb.n; i++)
		rc = take_element(out, count, canon, cb, avx512, eb.w[i], eb.frac[i],
		                  eb.plain >> i & 1, eb.neg >> i & 1, (char)('0' + eb.last[i]));
	sc->p = p;
	return rc;
}

#else
static int windowed_elements(struct scanner *sc, struct vec_f32 *out, size_t *count, bool *canon,
                             struct canon_batch *cb, bool avx512)
{
	(void)sc, (void)out, (void)count, (void)canon, (void)cb, (void)avx512;
	return 0;
}

#endif

/* The elements as TiDB prints them, at full speed (windowed_elements(),
 * then scalar_element() near the end). Reads elements from sc->p while at
 * least 32 bytes follow, and stops before the first it cannot take (or
 * that ends with ']'), leaving it and the rest to read_elements(). Every
 * element it takes, read_number() reads the same way (scan_number(),
 * fast_value()), and canonical_token() judges it. */
static int plain_elements(struct scanner *sc, struct vec_f32 *out, size_t *count, bool *canon)
{
	struct canon_batch cb = {0};
	enum vec_parse_isa isa = vec_parse_isa();
	bool avx512 = isa == VEC_PARSE_AVX512;
	int rc =
	        isa != VEC_PARSE_SCALAR ? windowed_elements(sc, out, count, canon, &cb, avx512) : 0;
	const char *s = sc->s;
	size_t p = sc->p;
	while (rc == 0 && p + 32 <= sc->n) {
		const char *t = s + p;
		bool neg = t[0] == '-';
		t += neg;
		uint64_t w;
		int frac;
		bool plain;
		size_t len;
		if (!scalar_element(t, &w, &frac, &plain, &len))
			break;
		t += len;
		rc = take_element(out, count, canon, &cb, avx512, w, frac, plain, neg, t[-1]);
		p = (size_t)(t - s) + 1;
	}
	if (rc)
		return rc;
	if (canon && *canon)
		canon_flush(&cb, canon);
	sc->p = p;
	return 0;
}
#else
static int plain_elements(struct scanner *sc, struct vec_f32 *out, size_t *count, bool *canon)
{
	(void)sc, (void)out, (void)count, (void)canon;
	return 0;
}
#endif

/* Skips JSON whitespace; when there was some, the text is not TiDB's
 * (*canon, when not NULL). */
static void skip_ws_canon(struct scanner *sc, bool *canon)
{
	size_t p = sc->p;
	skip_ws(sc);
	if (canon && sc->p != p)
		*canon = false;
}

/* The elements after '[' up to and including ']'. Returns 0, -EINVAL for a
 * syntax error, -ERANGE for a number beyond float32 (master only; *bad is
 * the number), or -ENOMEM. Counts every element in *count but stores at
 * most VEC_MAX_DIM: the dimension check comes after the syntax check.
 * canon (may be NULL) is cleared unless every element is as TiDB prints
 * it, with nothing between them but one ','. */
static int read_elements(struct scanner *sc, enum vec_dialect dialect, struct vec_f32 *out,
                         size_t *count, double *bad, bool *canon)
{
	skip_ws_canon(sc, canon);
	if (sc->p < sc->n && sc->s[sc->p] == ']') {
		sc->p++;
		return 0;
	}
	int rc = plain_elements(sc, out, count, canon);
	if (rc)
		return rc;
	for (;;) {
		double v;
		skip_ws_canon(sc, canon);
		rc = read_number(sc, &v, canon);
		if (rc)
			return rc;
		/* ParseFloat never yields NaN or +-Inf here (overflow is an
		 * error), so TiDB's NaN and infinity checks cannot fire. */
		if (dialect == VEC_TIDB_MASTER && (v < -(double)FLT_MAX || v > (double)FLT_MAX)) {
			*bad = v;
			return -ERANGE;
		}
		if (++*count <= VEC_MAX_DIM && (rc = push(out, (float)v)) != 0)
			return rc;
		skip_ws_canon(sc, canon);
		if (sc->p == sc->n)
			return -EINVAL;
		char c = sc->s[sc->p++];
		if (c == ']')
			return 0;
		if (c != ',')
			return -EINVAL;
	}
}

static int parse(struct scanner *sc, enum vec_dialect dialect, struct vec_f32 *out, size_t *count,
                 double *bad, bool *canon)
{
	skip_ws_canon(sc, canon);
	if (sc->p == sc->n)
		return -EINVAL;
	char c = sc->s[sc->p++];
	if (c == 'n') {
		if (canon)
			*canon = false;
		return null_ok(sc, dialect) ? 0 : -EINVAL;
	}
	if (c != '[')
		return -EINVAL;
	int rc = read_elements(sc, dialect, out, count, bad, canon);
	if (canon && sc->p != sc->n)
		*canon = false;
	if (rc == 0 && dialect == VEC_TIDB_MASTER && !trailing_ok(sc))
		rc = -EINVAL;
	return rc;
}

static int parse_text(const char *s, size_t n, enum vec_dialect dialect, struct vec_f32 *out,
                      bool *canon, struct vec_err *err)
{
	struct scanner sc = {s, n, 0};
	size_t count = 0;
	double bad = 0;
	out->dim = 0;
	if (canon)
		*canon = true;
	int rc = parse(&sc, dialect, out, &count, &bad, canon);
	if (rc == 0 && count > VEC_MAX_DIM)
		rc = -E2BIG;
	if (rc == 0)
		return 0;
	out->dim = 0;
	if (canon)
		*canon = false;
	if (rc == -ENOMEM)
		return fail(err, rc, "out of memory", NULL, 0);
	if (rc == -E2BIG)
		return fail(err, -EINVAL, "vector cannot have more than 16383 dimensions", NULL, 0);
	if (rc == -ERANGE) {
		char v[VEC_DOUBLE_TEXT_MAX], text[96];
		vec_format_go_float(bad, v);
		snprintf(text, sizeof(text), "value %s out of range for float32", v);
		return fail(err, -EINVAL, text, NULL, 0);
	}
	return fail(err, -EINVAL, "Invalid vector text: ", s, n);
}

int vec_parse_dialect(const char *s, size_t n, enum vec_dialect dialect, struct vec_f32 *out,
                      struct vec_err *err)
{
	return parse_text(s, n, dialect, out, NULL, err);
}

int vec_parse_canonical(const char *s, size_t n, enum vec_dialect dialect, struct vec_f32 *out,
                        bool *canonical, struct vec_err *err)
{
	return parse_text(s, n, dialect, out, canonical, err);
}

int vec_parse(const char *s, size_t n, struct vec_f32 *out, struct vec_err *err)
{
	return vec_parse_dialect(s, n, VEC_TIDB_MASTER, out, err);
}
