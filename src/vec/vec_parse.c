/* Vector literals read exactly as TiDB's ParseVectorFloat32 reads them: with
 * json-iterator (github.com/json-iterator/go v1.1.12), whose number reader is
 * laxer than JSON in places, then Go's strconv.ParseFloat and float32(). */
#include "vec/vec.h"

#include <errno.h>
#include <float.h>
#include <math.h>
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

int vec_f32_push(struct vec_f32 *a, float x)
{
	if (a->dim == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		if (cap > SIZE_MAX / sizeof(float))
			return -ENOMEM;
		float *v = realloc(a->v, cap * sizeof(float));
		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->dim++] = x;
	return 0;
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

/* ReadFloat64() at sc->p (whitespace already skipped). 0 with the value,
 * -EINVAL when json-iterator records an error, or -ENOMEM. The checks before
 * the token are its fast path's: an empty number, a leading '.', a leading
 * zero followed by a digit (only there: "+01" goes to the slow path and
 * passes). A token that runs into the end of the input makes json-iterator
 * record io.EOF, which fails the whole parse whatever the number was. */
static int read_number(struct scanner *sc, double *out)
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
	while (sc->p + len < sc->n && num_char((unsigned char)t[len]))
		len++;
	if (sc->p + len == sc->n || !valid_token(t, len))
		return -EINVAL;
	sc->p += len;
	int rc = token_value(t, len, out);
	if (neg)
		*out = -*out;
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

/* The elements after '[' up to and including ']'. Returns 0, -EINVAL for a
 * syntax error, -ERANGE for a number beyond float32 (master only; *bad is
 * the number), or -ENOMEM. Counts every element in *count but stores at
 * most VEC_MAX_DIM: the dimension check comes after the syntax check. */
static int read_elements(struct scanner *sc, enum vec_dialect dialect, struct vec_f32 *out,
                         size_t *count, double *bad)
{
	skip_ws(sc);
	if (sc->p < sc->n && sc->s[sc->p] == ']') {
		sc->p++;
		return 0;
	}
	for (;;) {
		double v;
		skip_ws(sc);
		int rc = read_number(sc, &v);
		if (rc)
			return rc;
		/* ParseFloat never yields NaN or +-Inf here (overflow is an
		 * error), so TiDB's NaN and infinity checks cannot fire. */
		if (dialect == VEC_TIDB_MASTER && (v < -(double)FLT_MAX || v > (double)FLT_MAX)) {
			*bad = v;
			return -ERANGE;
		}
		if (++*count <= VEC_MAX_DIM && (rc = vec_f32_push(out, (float)v)) != 0)
			return rc;
		skip_ws(sc);
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
                 double *bad)
{
	skip_ws(sc);
	if (sc->p == sc->n)
		return -EINVAL;
	char c = sc->s[sc->p++];
	if (c == 'n')
		return null_ok(sc, dialect) ? 0 : -EINVAL;
	if (c != '[')
		return -EINVAL;
	int rc = read_elements(sc, dialect, out, count, bad);
	if (rc == 0 && dialect == VEC_TIDB_MASTER && !trailing_ok(sc))
		rc = -EINVAL;
	return rc;
}

int vec_parse_dialect(const char *s, size_t n, enum vec_dialect dialect, struct vec_f32 *out,
                      struct vec_err *err)
{
	struct scanner sc = {s, n, 0};
	size_t count = 0;
	double bad = 0;
	out->dim = 0;
	int rc = parse(&sc, dialect, out, &count, &bad);
	if (rc == 0 && count > VEC_MAX_DIM)
		rc = -E2BIG;
	if (rc == 0)
		return 0;
	out->dim = 0;
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

int vec_parse(const char *s, size_t n, struct vec_f32 *out, struct vec_err *err)
{
	return vec_parse_dialect(s, n, VEC_TIDB_MASTER, out, err);
}
