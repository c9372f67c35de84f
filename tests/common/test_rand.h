/* Reproducible random data for the vector tests and checks: xorshift64*
 * (no libc rand state), uniform and normal floats, and the awkward values
 * that catch kernels rounding or ordering differently from the reference.
 * A file may define TEST_RNG_SEED before including this header to get its
 * own sequence. */
#ifndef VECGATE_TEST_RAND_H
#define VECGATE_TEST_RAND_H

#include <float.h>
#include <math.h>
#include <stdint.h>

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9E3779B97F4A7C15ull
#endif

static uint64_t rng_state = TEST_RNG_SEED;

static inline uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* [0, n); 0 when n is 0. */
static inline size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* Uniform in [-1, 1). */
static inline float uniform(void)
{
	return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Uniform in (0, 1), as a double. */
static inline double unit(void)
{
	return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller). */
static inline float gauss(void)
{
	double u1 = unit(), u2 = unit();
	return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Awkward values: zeros of both signs, tiny (subnormal products or squares),
 * huge (squares overflow, sums give Inf or Inf - Inf), the edges of
 * float32's range, small integers (exact, so ties), and ordinary ones. */
static inline float awkward(void)
{
	switch (rnd() % 20) {
	case 0:
		return 0.0f;
	case 1:
		return -0.0f;
	case 2:
		return uniform() * 1e-30f;
	case 3:
		return uniform() * 1e-20f; /* squares are subnormal */
	case 4:
		return uniform() * 1e30f;
	case 5:
		return uniform() * 1e19f; /* squares near FLT_MAX */
	case 6:
		return (float)(int)(uniform() * 8); /* small integers: exact ties */
	case 7:
		return rnd() % 2 ? FLT_MAX : -FLT_MIN;
	case 8:
		return uniform() * 1e-40f; /* subnormal itself */
	default:
		return uniform() * 10.0f;
	}
}

#endif
