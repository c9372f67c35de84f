/* TiDB's vector distances (pkg/types/vector_functions.go), bit for bit:
 * float32 accumulators summed left to right, widened to double only at the
 * end, in each arithmetic of enum vec_arith: separate multiply and add (a
 * Go build that does not fuse, e.g. amd64 by default; this file must be
 * built with -ffp-contract=off so the compiler keeps them apart) or one
 * fmaf per step (arm64), or the mix of an amd64 GOAMD64=v3 build. */
#include "vec/vec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const enum vec_arith all_ariths[] = {VEC_ARITH_SEPARATE, VEC_ARITH_FUSED,
                                            VEC_ARITH_FUSED_EXCEPT_IP};

const char *vec_arith_name(enum vec_arith arith)
{
	switch (arith) {
	case VEC_ARITH_SEPARATE:
		return "separate";
	case VEC_ARITH_FUSED:
		return "fused";
	case VEC_ARITH_FUSED_EXCEPT_IP:
		return "fused-except-ip";
	}
	return "?";
}

int vec_arith_parse(const char *s, size_t n, enum vec_arith *out)
{
	for (size_t i = 0; i < sizeof(all_ariths) / sizeof(all_ariths[0]); i++) {
		const char *name = vec_arith_name(all_ariths[i]);
		if (strlen(name) == n && memcmp(s, name, n) == 0) {
			*out = all_ariths[i];
			return 0;
		}
	}
	return -EINVAL;
}

int vec_arith_of_metric(enum vec_arith arith, enum vec_metric m)
{
	switch (arith) {
	case VEC_ARITH_SEPARATE:
	case VEC_ARITH_FUSED:
		return (int)arith;
	case VEC_ARITH_FUSED_EXCEPT_IP:
		return m == VEC_NEG_IP ? VEC_ARITH_SEPARATE : VEC_ARITH_FUSED;
	}
	return -1;
}

/* Cosine's end, from the three float32 sums. */
static double cosine_finish(float dot, float na, float nb)
{
	double sim = (double)dot / sqrt((double)na * (double)nb);
	if (isnan(sim))
		return sim; /* a zero vector, or [] against []: NULL */
	if (sim > 1.0)
		sim = 1.0;
	else if (sim < -1.0)
		sim = -1.0;
	return 1.0 - sim;
}

static double cosine(const float *a, const float *b, size_t dim)
{
	float dot = 0, na = 0, nb = 0;
	for (size_t i = 0; i < dim; i++) {
		dot += a[i] * b[i];
		na += a[i] * a[i];
		nb += b[i] * b[i];
	}
	return cosine_finish(dot, na, nb);
}

static double l2(const float *a, const float *b, size_t dim)
{
	float sum = 0;
	for (size_t i = 0; i < dim; i++) {
		float d = a[i] - b[i];
		sum += d * d;
	}
	return sqrt((double)sum);
}

static double l1(const float *a, const float *b, size_t dim)
{
	float sum = 0;
	for (size_t i = 0; i < dim; i++)
		sum += fabsf(a[i] - b[i]);
	return (double)sum;
}

static double neg_ip(const float *a, const float *b, size_t dim)
{
	float sum = 0;
	for (size_t i = 0; i < dim; i++)
		sum += a[i] * b[i];
	return (double)sum * -1.0; /* 0 becomes -0, which TiDB prints "-0" */
}

/* The fused loops: fmaf is exact x*y + z rounded once to float32 (C11
 * 7.12.13.1), whether the compiler emits an FMA instruction or calls libm's
 * correctly rounded fmaf, so these are what a fused Go build computes. */
static double cosine_fused(const float *a, const float *b, size_t dim)
{
	float dot = 0, na = 0, nb = 0;
	for (size_t i = 0; i < dim; i++) {
		dot = fmaf(a[i], b[i], dot);
		na = fmaf(a[i], a[i], na);
		nb = fmaf(b[i], b[i], nb);
	}
	return cosine_finish(dot, na, nb);
}

static double l2_fused(const float *a, const float *b, size_t dim)
{
	float sum = 0;
	for (size_t i = 0; i < dim; i++) {
		float d = a[i] - b[i];
		sum = fmaf(d, d, sum);
	}
	return sqrt((double)sum);
}

static double neg_ip_fused(const float *a, const float *b, size_t dim)
{
	float sum = 0;
	for (size_t i = 0; i < dim; i++)
		sum = fmaf(a[i], b[i], sum);
	return (double)sum * -1.0;
}

double vec_distance_arith(enum vec_metric m, enum vec_arith arith, const float *a, const float *b,
                          size_t dim, bool *is_null)
{
	double d = NAN;
	int how = vec_arith_of_metric(arith, m);
	bool fused = how == VEC_ARITH_FUSED;
	if (how >= 0) {
		switch (m) {
		case VEC_COSINE:
			d = fused ? cosine_fused(a, b, dim) : cosine(a, b, dim);
			break;
		case VEC_L2:
			d = fused ? l2_fused(a, b, dim) : l2(a, b, dim);
			break;
		case VEC_L1:
			d = l1(a, b, dim); /* no multiply: one arithmetic */
			break;
		case VEC_NEG_IP:
			d = fused ? neg_ip_fused(a, b, dim) : neg_ip(a, b, dim);
			break;
		}
	}
	*is_null = isnan(d);
	return d;
}

double vec_distance(enum vec_metric m, const float *a, const float *b, size_t dim, bool *is_null)
{
	return vec_distance_arith(m, VEC_ARITH_SEPARATE, a, b, dim, is_null);
}

float vec_norm_sq_f32(const float *a, size_t dim, enum vec_arith arith)
{
	float sum = 0;
	if (vec_arith_of_metric(arith, VEC_COSINE) == VEC_ARITH_FUSED)
		for (size_t i = 0; i < dim; i++)
			sum = fmaf(a[i], a[i], sum);
	else
		for (size_t i = 0; i < dim; i++)
			sum += a[i] * a[i];
	return sum;
}

int vec_distance_check(enum vec_metric m, const float *a, size_t adim, const float *b, size_t bdim,
                       double *out, bool *is_null, struct vec_err *err)
{
	return vec_distance_check_arith(m, VEC_ARITH_SEPARATE, a, adim, b, bdim, out, is_null, err);
}

int vec_distance_check_arith(enum vec_metric m, enum vec_arith arith, const float *a, size_t adim,
                             const float *b, size_t bdim, double *out, bool *is_null,
                             struct vec_err *err)
{
	if (adim != bdim) {
		err->code = VEC_ER_UNKNOWN;
		memcpy(err->sqlstate, "HY000", 6);
		snprintf(err->msg, sizeof(err->msg),
		         "vectors have different dimensions: %zu and %zu", adim, bdim);
		err->echo = NULL;
		err->echo_len = 0;
		return -EINVAL;
	}
	*out = vec_distance_arith(m, arith, a, b, adim, is_null);
	return 0;
}

double vec_norm(const float *a, size_t dim, bool *is_null)
{
	double sum = 0;
	for (size_t i = 0; i < dim; i++)
		sum += (double)a[i] * (double)a[i];
	double d = sqrt(sum);
	*is_null = isnan(d);
	return d;
}
