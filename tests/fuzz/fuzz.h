/* Shared helpers of the libFuzzer drivers: a reader that takes parameters
 * from the front of the input, and a check that stops the run with a message
 * when a parser breaks one of its documented promises (libFuzzer then keeps
 * the input as a crash). */
#ifndef VECGATE_FUZZ_H
#define VECGATE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input, consumed from the front: parameters first, the parser's bytes
 * last. Reading past the end gives zeros, so every input is usable. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	uint8_t v = in->p[0];
	in->p++;
	in->n--;
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t lo = fuzz_u8(in);
	return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t lo = fuzz_u16(in);
	return lo | (uint32_t)fuzz_u16(in) << 16;
}

/* True when q[0, qn) lies inside p[0, n) (an empty range may sit anywhere,
 * a NULL one too). */
static inline bool fuzz_within(const void *p, size_t n, const void *q, size_t qn)
{
	if (qn == 0)
		return true;
	const uint8_t *a = p, *b = q;
	return b >= a && b <= a + n && qn <= (size_t)(a + n - b);
}

/* A heap copy of the bytes, so that ASan catches a read one past the end
 * even where libFuzzer's own buffer has slack. */
static inline uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

#endif
