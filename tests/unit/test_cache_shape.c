/* The query shape's states and the arithmetic its answers compute in
 * (src/cache/shape.h): every transition the comparisons can make. */
#include <criterion/criterion.h>

#include "cache/shape.h"

static struct cache_shape fresh(enum vec_arith hint)
{
	struct cache_shape sh = {0};
	sh.state = CACHE_SHAPE_PENDING;
	sh.arith = hint;
	return sh;
}

Test(cache_shape, match_verifies_in_the_arithmetic_that_matched)
{
	struct cache_shape sh = fresh(VEC_ARITH_SEPARATE);
	cache_shape_verify_start(&sh);
	cr_assert(sh.verifying);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_FUSED, true, 1000);
	cr_assert_not(sh.verifying);
	cr_assert_eq(sh.state, CACHE_SHAPE_VERIFIED);
	cr_assert(sh.arith_known);
	cr_assert_eq(sh.arith, VEC_ARITH_FUSED);
	cr_assert_eq(sh.verified_ms, 1000);
	cr_assert_eq(sh.mismatches, 0);
}

/* A match in both arithmetics (an empty answer, small integers) proves the
 * answer but not the arithmetic. */
Test(cache_shape, a_match_in_both_decides_nothing)
{
	struct cache_shape sh = fresh(VEC_ARITH_SEPARATE);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_SEPARATE, false, 1000);
	cr_assert_eq(sh.state, CACHE_SHAPE_VERIFIED);
	cr_assert_not(sh.arith_known);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_FUSED, true, 2000);
	cr_assert(sh.arith_known);
	cr_assert_eq(sh.arith, VEC_ARITH_FUSED);
	/* Known stays known through later undecided matches. */
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_SEPARATE, false, 3000);
	cr_assert(sh.arith_known);
	cr_assert_eq(sh.arith, VEC_ARITH_FUSED);
	cr_assert_eq(sh.verified_ms, 3000);
}

Test(cache_shape, nothing_compared_changes_nothing)
{
	struct cache_shape sh = fresh(VEC_ARITH_FUSED);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, false, false, VEC_ARITH_SEPARATE, true, 1000);
	cr_assert_eq(sh.state, CACHE_SHAPE_PENDING);
	cr_assert_eq(sh.arith, VEC_ARITH_FUSED);
	cr_assert_eq(sh.mismatches, 0);
	cr_assert_eq(sh.verified_ms, 0);
}

Test(cache_shape, third_mismatch_rejects_for_good)
{
	struct cache_shape sh = fresh(VEC_ARITH_SEPARATE);
	for (int i = 1; i <= CACHE_SHAPE_MISMATCHES_TO_REJECT; i++) {
		cr_assert_eq(sh.state, CACHE_SHAPE_PENDING);
		cache_shape_verify_start(&sh);
		cache_shape_verify_end(&sh, true, false, VEC_ARITH_SEPARATE, true, 1000);
		cr_assert_eq(sh.mismatches, i);
	}
	cr_assert_eq(sh.state, CACHE_SHAPE_REJECTED);
}

/* A renewal's comparison: TiDB's plan changed to the other arithmetic. */
Test(cache_shape, renewal_switches_arithmetic)
{
	struct cache_shape sh = fresh(VEC_ARITH_SEPARATE);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_SEPARATE, true, 1000);
	cache_shape_verify_start(&sh);
	cr_assert_eq(sh.state, CACHE_SHAPE_VERIFIED, "still served while compared");
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_FUSED, true, 5000);
	cr_assert_eq(sh.state, CACHE_SHAPE_VERIFIED);
	cr_assert_eq(sh.arith, VEC_ARITH_FUSED);
	cr_assert_eq(sh.verified_ms, 5000);
}

/* A renewal whose answer matches neither arithmetic: never served again
 * until a comparison matches. */
Test(cache_shape, renewal_mismatch_stops_serving)
{
	struct cache_shape sh = fresh(VEC_ARITH_SEPARATE);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_SEPARATE, true, 1000);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, false, VEC_ARITH_SEPARATE, true, 5000);
	cr_assert_eq(sh.state, CACHE_SHAPE_PENDING);
	cr_assert_eq(sh.mismatches, 1);
	cr_assert_eq(sh.verified_ms, 1000, "the old proof is not renewed");
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_FUSED, true, 9000);
	cr_assert_eq(sh.state, CACHE_SHAPE_VERIFIED);
	cr_assert_eq(sh.arith, VEC_ARITH_FUSED);
}

Test(cache_shape, renew_keeps_arithmetic)
{
	struct cache_shape sh = fresh(VEC_ARITH_FUSED);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_FUSED, true, 1000);
	cache_shape_renew(&sh, 2000);
	cr_assert_eq(sh.verified_ms, 2000);
	cr_assert_eq(sh.arith, VEC_ARITH_FUSED);
}

/* A renewal in flight (renewing_ms) ends with the proof renewed, or with its
 * comparison, whatever that found; a successful one also lifts the block a
 * refused renewal left (renewal_failed), and a mismatch does not. */
Test(cache_shape, renewal_end_clears_the_renewal)
{
	struct cache_shape sh = fresh(VEC_ARITH_FUSED);
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_FUSED, true, 1000);
	sh.renewing_ms = 61000;
	sh.renewal_failed = true;
	cache_shape_renew(&sh, 61500);
	cr_assert_eq(sh.renewing_ms, 0);
	cr_assert_not(sh.renewal_failed);
	cr_assert_eq(sh.verified_ms, 61500);

	sh.renewing_ms = 122000;
	sh.renewal_failed = true;
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, false, VEC_ARITH_FUSED, true, 122500);
	cr_assert_eq(sh.renewing_ms, 0);
	cr_assert(sh.renewal_failed, "a mismatch renewed nothing");
	cr_assert_eq(sh.state, CACHE_SHAPE_PENDING);

	sh.renewing_ms = 183000;
	cache_shape_verify_start(&sh);
	cache_shape_verify_end(&sh, true, true, VEC_ARITH_FUSED, true, 183500);
	cr_assert_eq(sh.renewing_ms, 0);
	cr_assert_not(sh.renewal_failed);
	cr_assert_eq(sh.state, CACHE_SHAPE_VERIFIED);
	cr_assert_eq(sh.verified_ms, 183500);
}
