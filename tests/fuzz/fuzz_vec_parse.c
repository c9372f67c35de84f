/* Vector literals as TiDB reads them (vec_parse, both dialects, and the
 * canonical-text check). vec_parse and vec_parse_canonical must agree; a
 * text reported canonical must be exactly what vec_format_f32_array prints;
 * a parsed vector must print, and its text must parse back to the same bits;
 * every element reader the CPU has gives the same results.
 * Errors are TiDB's (1105, HY000) and echo only the caller's bytes. (TiDB's
 * binary protocol sends vectors as this same text: there is no binary
 * literal form to read.) */
#include "fuzz.h"

#include <errno.h>
#include <float.h>
#include <math.h>

#include "vec/vec.h"

static void check_err(const char *s, size_t n, const struct vec_err *err)
{
	FUZZ_CHECK(err->code == VEC_ER_UNKNOWN && strcmp(err->sqlstate, "HY000") == 0);
	FUZZ_CHECK(memchr(err->msg, 0, sizeof(err->msg)) != NULL && err->msg[0] != 0);
	FUZZ_CHECK(err->echo_len == 0 || fuzz_within(s, n, err->echo, err->echo_len));
	struct buf m;
	buf_init(&m);
	FUZZ_CHECK(vec_err_message(err, &m) == 0);
	FUZZ_CHECK(m.len == strlen(err->msg) + err->echo_len);
	buf_free(&m);
}

static bool same_bits(const struct vec_f32 *a, const struct vec_f32 *b)
{
	return a->dim == b->dim && (a->dim == 0 || memcmp(a->v, b->v, a->dim * sizeof(float)) == 0);
}

static void one_dialect(const char *s, size_t n, enum vec_dialect d)
{
	struct vec_f32 a, b, c;
	struct vec_err e1, e2, e3;
	vec_f32_init(&a);
	vec_f32_init(&b);
	vec_f32_init(&c);
	bool canon = true;
	int r1 = d == VEC_TIDB_MASTER ? vec_parse(s, n, &a, &e1)
	                              : vec_parse_dialect(s, n, d, &a, &e1);
	int r2 = vec_parse_canonical(s, n, d, &b, &canon, &e2);
	FUZZ_CHECK(r1 == 0 || r1 == -EINVAL);
	FUZZ_CHECK(r1 == r2);
	if (r1 < 0) {
		FUZZ_CHECK(a.dim == 0 && b.dim == 0 && !canon);
		check_err(s, n, &e1);
		check_err(s, n, &e2);
		FUZZ_CHECK(strcmp(e1.msg, e2.msg) == 0 && e1.echo_len == e2.echo_len);
		goto out;
	}
	FUZZ_CHECK(same_bits(&a, &b));
	FUZZ_CHECK(a.dim <= VEC_MAX_DIM);
	if (d == VEC_TIDB_MASTER)
		for (size_t i = 0; i < a.dim; i++)
			FUZZ_CHECK(isfinite(a.v[i]));

	struct buf t;
	buf_init(&t);
	FUZZ_CHECK(vec_format_f32_array(a.v, a.dim, &t) == 0);
	bool is = vec_format_f32_array_is(a.v, a.dim, s, n);
	FUZZ_CHECK(is == (t.len == n && memcmp(t.data, s, n) == 0));
	if (canon)
		FUZZ_CHECK(is);
	/* The bounded formatter prints the same text. */
	size_t cap = vec_f32_array_text_max(a.dim);
	char *o = malloc(cap);
	size_t on = vec_format_f32_array_to(a.v, a.dim, o);
	FUZZ_CHECK(on <= cap && on == t.len && memcmp(o, t.data, on) == 0);
	free(o);
	/* Printed, then read again: the same bits. Not for +-Inf and NaN (v8.5
	 * lets them in; they print as Go does and do not read back), nor for
	 * +-FLT_MAX, whose shortest text 3.4028235e38 is above FLT_MAX as a
	 * float64, which TiDB master refuses as out of range (TiDB itself cannot
	 * read back the text it prints for it). */
	bool finite = true;
	for (size_t i = 0; i < a.dim; i++)
		finite = finite && isfinite(a.v[i]) && fabsf(a.v[i]) < FLT_MAX;
	if (finite) {
		bool canon2;
		FUZZ_CHECK(vec_parse_canonical((const char *)t.data, t.len, d, &c, &canon2, &e3) ==
		           0);
		FUZZ_CHECK(same_bits(&a, &c));
		if (is)
			FUZZ_CHECK(canon2 == canon);
	}
	buf_free(&t);
out:
	vec_f32_free(&a);
	vec_f32_free(&b);
	vec_f32_free(&c);
}

/* Every element reader this CPU has (vec_parse_force) gives the scalar
 * one's return, floats and canonical verdict. */
static void every_path(const char *s, size_t n)
{
	static const enum vec_parse_isa paths[] = {VEC_PARSE_AVX2, VEC_PARSE_AVX512};
	struct vec_f32 a, b;
	struct vec_err e;
	vec_f32_init(&a);
	vec_f32_init(&b);
	bool ca = true, cb = true;
	FUZZ_CHECK(vec_parse_force(VEC_PARSE_SCALAR) == 0);
	int ra = vec_parse_canonical(s, n, VEC_TIDB_MASTER, &a, &ca, &e);
	for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		if (vec_parse_force(paths[k]) != 0)
			continue;
		int rb = vec_parse_canonical(s, n, VEC_TIDB_MASTER, &b, &cb, &e);
		FUZZ_CHECK(ra == rb && ca == cb && same_bits(&a, &b));
	}
	FUZZ_CHECK(vec_parse_force(VEC_PARSE_AUTO) == 0);
	vec_f32_free(&a);
	vec_f32_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	one_dialect(s, size, VEC_TIDB_MASTER);
	one_dialect(s, size, VEC_TIDB_V8_5);
	every_path(s, size);
	return 0;
}
