/* vec_arith_tool: vecgate's four distances in one arithmetic, in the format
 * of tests/golden/godist, so tests/integration/test_go_arith.py can compare
 * them with what Go computes.
 *
 *   vec_arith_tool separate|fused|fused-except-ip < pairs
 *
 * Input, one pair a line: the dimension, then a's and b's elements as
 * float32 bit patterns in hex. Output, one line per pair: cosine, L2, L1 and
 * negative inner product as float64 bit patterns in hex (16 digits), or
 * "null" for a NULL (NaN) result: vec_distance_arith()'s. Every pair also
 * goes through the scan kernels of each ISA this CPU has (a table of 17
 * copies of a, so both blocks' lanes run): a kernel that disagrees with
 * vec_distance_arith() stops the tool with status 1. Bad input: status 2. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "vec/block.h"
#include "vec/scan.h"
#include "vec/vec.h"

#include "test_vec.h"

#define COPIES 17

/* Reads one whitespace-separated hex word of at most 8 digits. */
static int read_bits(const char **p, uint32_t *out)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t')
		s++;
	uint32_t v = 0;
	int n = 0;
	for (; n < 9; n++, s++) {
		int c = (unsigned char)*s, d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		v = v << 4 | (uint32_t)d;
	}
	if (n == 0 || n > 8)
		return -EINVAL;
	*p = s;
	*out = v;
	return 0;
}

static int read_vector(const char **p, float *v, size_t dim)
{
	for (size_t j = 0; j < dim; j++) {
		uint32_t bits;
		if (read_bits(p, &bits) != 0)
			return -EINVAL;
		memcpy(&v[j], &bits, sizeof(bits));
	}
	return 0;
}

static void print_distance(double d, bool is_null, const char *sep)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	if (is_null)
		printf("null%s", sep);
	else
		printf("%016llx%s", (unsigned long long)bits, sep);
}

/* Every ISA's scan of COPIES copies of a against b equals want. */
static int check_kernels(enum vec_arith arith, const float *a, const float *b, size_t dim,
                         const double *want, const bool *want_null, size_t line)
{
	struct vec_builder bld;
	if (vec_builder_init(&bld, dim) != 0)
		return -ENOMEM;
	for (int i = 0; i < COPIES; i++)
		if (vec_builder_add(&bld, a, dim) != 0) {
			vec_builder_free(&bld);
			return -ENOMEM;
		}
	struct vec_table *t = vec_builder_finish(&bld);
	double d[COPIES];
	bool nul[COPIES];
	int rc = 0;
	for (size_t ii = 0; ii < sizeof(isas) / sizeof(isas[0]) && rc == 0; ii++) {
		if (vec_scan_force(isas[ii]) != 0)
			continue;
		for (size_t mi = 0; mi < 4 && rc == 0; mi++) {
			if (vec_scan_table_arith(t, metrics[mi], arith, b, dim, d, nul) != 0) {
				rc = -EINVAL;
				break;
			}
			for (int r = 0; r < COPIES; r++)
				if (nul[r] != want_null[mi] ||
				    (!nul[r] && memcmp(&d[r], &want[mi], sizeof(double)) != 0)) {
					fprintf(stderr,
					        "vec_arith_tool: line %zu: %s kernel, metric %d, "
					        "row %d: %a, reference %a\n",
					        line, vec_isa_name(isas[ii]), (int)metrics[mi], r,
					        d[r], want[mi]);
					rc = 1;
					break;
				}
		}
	}
	if (vec_scan_force(VEC_ISA_AUTO) != 0 && rc == 0)
		rc = -EINVAL; /* cannot happen: AUTO is always supported */
	vec_table_free(t);
	return rc;
}

int main(int argc, char **argv)
{
	enum vec_arith arith;
	if (argc != 2 || vec_arith_parse(argv[1], strlen(argv[1]), &arith) != 0) {
		fprintf(stderr, "usage: vec_arith_tool separate|fused|fused-except-ip < pairs\n");
		return 2;
	}
	size_t cap = 0, line = 0;
	char *text = NULL;
	float *a = malloc(VEC_MAX_DIM * sizeof(float)), *b = malloc(VEC_MAX_DIM * sizeof(float));
	if (!a || !b)
		return 2;
	ssize_t len;
	int status = 0;
	while (status == 0 && (len = getline(&text, &cap, stdin)) >= 0) {
		line++;
		const char *p = text;
		char *end;
		errno = 0;
		unsigned long dim = strtoul(p, &end, 10);
		if (end == p) {
			if (strspn(p, " \t\r\n") == (size_t)len)
				continue; /* a blank line */
			status = 2;
		} else if (errno || dim > VEC_MAX_DIM) {
			status = 2;
		} else {
			p = end;
			if (read_vector(&p, a, dim) != 0 || read_vector(&p, b, dim) != 0 ||
			    strspn(p, " \t\r\n") != strlen(p))
				status = 2;
		}
		if (status) {
			fprintf(stderr,
			        "vec_arith_tool: line %zu: want a dimension (at most %d) and "
			        "2*dim hex float32s\n",
			        line, VEC_MAX_DIM);
			break;
		}
		double want[4];
		bool want_null[4];
		for (size_t mi = 0; mi < 4; mi++) {
			want[mi] =
			        vec_distance_arith(metrics[mi], arith, a, b, dim, &want_null[mi]);
			print_distance(want[mi], want_null[mi], mi == 3 ? "\n" : " ");
		}
		int rc = check_kernels(arith, a, b, dim, want, want_null, line);
		if (rc)
			status = rc < 0 ? 2 : 1;
	}
	free(text);
	free(a);
	free(b);
	if (fflush(stdout) != 0)
		status = 2;
	return status;
}
