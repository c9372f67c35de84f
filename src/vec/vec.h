/* TiDB's VECTOR(FLOAT32) semantics, byte for byte: parsing vector literals,
 * printing vectors and DOUBLE results as TiDB's text protocol does, and the
 * scalar distance functions. Pure functions over memory. */
#ifndef VECGATE_VEC_VEC_H
#define VECGATE_VEC_VEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* TiDB's limit on a vector's dimension (CheckVectorDimValid). */
#define VEC_MAX_DIM 16383
/* Error number of every vector error TiDB raises (ER_UNKNOWN_ERROR). */
#define VEC_ER_UNKNOWN 1105
/* Room, NUL included, that the single-number formatters below may use. */
#define VEC_F32_TEXT_MAX    64
#define VEC_DOUBLE_TEXT_MAX 48

/* A growable float32 array: v[0..dim) are the elements. */
struct vec_f32 {
	float *v;
	size_t dim;
	size_t cap;
};

void vec_f32_init(struct vec_f32 *a);
void vec_f32_free(struct vec_f32 *a);
/* Appends one element; 0 or -ENOMEM. */
int vec_f32_push(struct vec_f32 *a, float x) MUST_CHECK;

/* An error as TiDB reports it. The message is msg followed by the bytes
 * echo[0..echo_len): "Invalid vector text: " echoes the rejected input, and
 * echo then points into the caller's input (valid as long as it is). */
struct vec_err {
	int code;         /* MySQL error number: VEC_ER_UNKNOWN, 0 for -ENOMEM */
	char sqlstate[6]; /* "HY000", NUL-terminated */
	char msg[128];    /* NUL-terminated */
	const char *echo;
	size_t echo_len;
};

/* Appends the whole message (msg then echo) to out; 0 or -ENOMEM. */
int vec_err_message(const struct vec_err *e, struct buf *out) MUST_CHECK;

/* Which TiDB's ParseVectorFloat32 to reproduce. Both read the text with
 * json-iterator; master added three checks that v8.5.x does not make. */
enum vec_dialect {
	/* master (2025-2026): rejects "null", anything but whitespace after
	 * the closing ']', and numbers beyond float32's range. */
	VEC_TIDB_MASTER = 0,
	/* v8.5.x (checked at v8.5.6, ae18096e0237): "null" is the empty vector,
	 * bytes after ']' are ignored, and a number beyond float32's range is
	 * stored as +-Inf. */
	VEC_TIDB_V8_5,
};

/* Parses the vector literal s[0..n) (not NUL-terminated; never read past n)
 * as TiDB master does, replacing out's elements. Returns 0; -EINVAL with
 * *err set to TiDB's error (1105/HY000, exact message) when TiDB would reject
 * the text; -ENOMEM. On error out->dim is 0. */
int vec_parse(const char *s, size_t n, struct vec_f32 *out, struct vec_err *err) MUST_CHECK;
/* vec_parse for a chosen TiDB version. */
int vec_parse_dialect(const char *s, size_t n, enum vec_dialect dialect, struct vec_f32 *out,
                      struct vec_err *err) MUST_CHECK;
/* vec_parse_dialect, and whether s[0..n) is exactly what
 * vec_format_f32_array() prints for the result (*canonical): then the text
 * need not be kept. Faster than printing and comparing; a few canonical
 * texts of extreme values (beyond 19 digits or 10^+-22) are reported not
 * canonical, never the reverse. *canonical is false after an error. */
int vec_parse_canonical(const char *s, size_t n, enum vec_dialect dialect, struct vec_f32 *out,
                        bool *canonical, struct vec_err *err) MUST_CHECK;
/* How the parsers read the elements of long vectors: the best way the CPU
 * allows (the default), one element at a time in scalar code, with 128- and
 * 256-bit vectors (SSE4.1 and AVX2), or those and AVX-512 for rounding and
 * judging 8 elements at a time. Every path gives the same results. */
enum vec_parse_isa {
	VEC_PARSE_AUTO = 0,
	VEC_PARSE_SCALAR,
	VEC_PARSE_AVX2,
	VEC_PARSE_AVX512,
};
/* Makes later parses use isa, for tests and benchmarks that compare the
 * paths; 0, or -ENOTSUP when the CPU or the build lacks it. */
int vec_parse_force(enum vec_parse_isa isa) MUST_CHECK;
/* The path parses take now (never VEC_PARSE_AUTO). */
enum vec_parse_isa vec_parse_isa(void);

/* Appends v[0..dim) as TiDB prints a vector: "[1,0.5,-0]", each element the
 * shortest decimal that reads back as the same float32, in fixed notation
 * (+-Inf and NaN, which only VEC_TIDB_V8_5 lets in, print as Go does:
 * "+Inf", "-Inf", "NaN"). 0 or -ENOMEM. */
int vec_format_f32_array(const float *v, size_t dim, struct buf *out) MUST_CHECK;
/* One element as vec_format_f32_array prints it; NUL-terminated, returns the
 * length (at most VEC_F32_FIXED_MAX). */
size_t vec_format_f32(float x, char out[static VEC_F32_TEXT_MAX]);
/* The longest element vec_format_f32() prints: "-0." and 44 zeros before
 * the digit of -2^-149 (checked against every float32). */
#define VEC_F32_FIXED_MAX 48
/* Room vec_format_f32_array_to() needs for dim elements (dim <=
 * VEC_MAX_DIM). */
size_t vec_f32_array_text_max(size_t dim);
/* vec_format_f32_array() into out, which has room for
 * vec_f32_array_text_max(dim) bytes; returns the length (no NUL). */
size_t vec_format_f32_array_to(const float *v, size_t dim, char *out);
/* Whether vec_format_f32_array(v, dim) prints exactly s[0..n). */
bool vec_format_f32_array_is(const float *v, size_t dim, const char *s, size_t n);
/* The digits vec_format_f32() prints for x (finite, not zero): x is
 * d * 10^*e10, d the fewest digits that read back as x (no trailing zero),
 * the closest such decimal, ties to even. */
uint32_t vec_f32_digits(float x, int32_t *e10);
/* x as TiDB's text protocol prints a DOUBLE column with 31 decimals (every
 * VEC_*_DISTANCE result): shortest round-trip digits, fixed notation when
 * 1e-15 <= |x| < 1e15 or x == 0, else "1.5e15" / "9.99e-16"; NaN and +-Inf
 * print "0". NUL-terminated, returns the length. */
size_t vec_format_double(double x, char out[static VEC_DOUBLE_TEXT_MAX]);
/* x as Go's fmt "%v" prints a float64 ("1e+39", "0.0001", "1e-05",
 * "123456", "1.234567e+06"). NUL-terminated, returns the length. */
size_t vec_format_go_float(double x, char out[static VEC_DOUBLE_TEXT_MAX]);

enum vec_metric {
	VEC_COSINE, /* VEC_COSINE_DISTANCE */
	VEC_L2,     /* VEC_L2_DISTANCE */
	VEC_L1,     /* VEC_L1_DISTANCE */
	VEC_NEG_IP, /* VEC_NEGATIVE_INNER_PRODUCT */
};

/* How each float32 step x*y + acc of a distance is rounded. TiDB computes
 * the distances in Go loops (distance += a[i]*b[i]) that the Go compiler
 * may fuse into fused multiply-adds, depending on the build (docs/tidb.md
 * §3). L1 has no multiply, so it is the same in all of them. */
enum vec_arith {
	/* Round the product, then round the sum: amd64 as built by default
	 * (GOAMD64=v1), and TiKV. */
	VEC_ARITH_SEPARATE = 0,
	/* Every step one fmaf (x*y + acc exact, rounded once): arm64. */
	VEC_ARITH_FUSED = 1,
	/* Cosine's and L2's sums fused, the inner product's separate: amd64
	 * built with GOAMD64=v3 (Go folds the inner product's loads into its
	 * multiply, which then no longer matches the fusing rule; checked
	 * with Go 1.26 on TiDB's own code). */
	VEC_ARITH_FUSED_EXCEPT_IP = 2,
};

/* Which of the two roundings metric m's sums use in arithmetic arith:
 * VEC_ARITH_SEPARATE or VEC_ARITH_FUSED (-1 for an unknown arithmetic). */
int vec_arith_of_metric(enum vec_arith arith, enum vec_metric m);

/* "separate", "fused" or "fused-except-ip" ("?" for anything else). */
const char *vec_arith_name(enum vec_arith arith);
/* The arithmetic named s[0..n) (vec_arith_name's spelling): 0, or -EINVAL
 * with *out untouched. */
int vec_arith_parse(const char *s, size_t n, enum vec_arith *out) MUST_CHECK;

/* TiDB's distance between a[0..dim) and b[0..dim): float32 accumulation,
 * left to right, no FMA. *is_null is set when TiDB answers NULL (a NaN
 * result, e.g. cosine against a zero vector); +-Inf is returned as is. */
double vec_distance(enum vec_metric m, const float *a, const float *b, size_t dim, bool *is_null);
/* vec_distance in a chosen arithmetic (VEC_ARITH_SEPARATE is vec_distance):
 * the same float32 loops, element order, with every x*y + acc step (cosine's
 * three sums, L2's d*d, the inner product) one fmaf where
 * vec_arith_of_metric says fused. An unknown metric or arithmetic gives NaN
 * (NULL). */
double vec_distance_arith(enum vec_metric m, enum vec_arith arith, const float *a, const float *b,
                          size_t dim, bool *is_null);
/* vec_distance for vectors of possibly different dimensions: -EINVAL with
 * TiDB's "vectors have different dimensions: %d and %d" in *err when
 * adim != bdim, else 0 with the result in *out. */
int vec_distance_check(enum vec_metric m, const float *a, size_t adim, const float *b, size_t bdim,
                       double *out, bool *is_null, struct vec_err *err) MUST_CHECK;
/* vec_distance_check in a chosen arithmetic. */
int vec_distance_check_arith(enum vec_metric m, enum vec_arith arith, const float *a, size_t adim,
                             const float *b, size_t bdim, double *out, bool *is_null,
                             struct vec_err *err) MUST_CHECK;
/* Cosine's float32 squared norm of a[0..dim), exactly as
 * vec_distance_arith(VEC_COSINE, arith) sums it (the kernels' stored row
 * norms and the query's own). */
float vec_norm_sq_f32(const float *a, size_t dim, enum vec_arith arith);
/* VEC_L2_NORM: accumulated in double, unlike the distances. (Not named
 * vec_l2_norm: that is the UDF's symbol in tests/mariadb.) */
double vec_norm(const float *a, size_t dim, bool *is_null);

#endif
