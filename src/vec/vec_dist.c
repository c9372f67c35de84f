/* TiDB's vector distances (pkg/types/vector_functions.go), bit for bit on
 * amd64: float32 accumulators summed left to right with separate multiply
 * and add (this file must be built with -ffp-contract=off), widened to
 * double only at the end. */
#include "vec/vec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static double cosine(const float *a, const float *b, size_t dim)
{
	float dot = 0, na = 0, nb = 0;
	for (size_t i = 0; i < dim; i++) {
		dot += a[i] * b[i];
		na += a[i] * a[i];
		nb += b[i] * b[i];
	}
	double sim = (double)dot / sqrt((double)na * (double)nb);
	if (isnan(sim))
		return sim; /* a zero vector, or [] against []: NULL */
	if (sim > 1.0)
		sim = 1.0;
	else if (sim < -1.0)
		sim = -1.0;
	return 1.0 - sim;
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

double vec_distance(enum vec_metric m, const float *a, const float *b, size_t dim, bool *is_null)
{
	double d;
	switch (m) {
	case VEC_COSINE:
		d = cosine(a, b, dim);
		break;
	case VEC_L2:
		d = l2(a, b, dim);
		break;
	case VEC_L1:
		d = l1(a, b, dim);
		break;
	case VEC_NEG_IP:
		d = neg_ip(a, b, dim);
		break;
	default:
		d = NAN;
		break;
	}
	*is_null = isnan(d);
	return d;
}

int vec_distance_check(enum vec_metric m, const float *a, size_t adim, const float *b, size_t bdim,
                       double *out, bool *is_null, struct vec_err *err)
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
	*out = vec_distance(m, a, b, adim, is_null);
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
