/* hist.c: log-linear latency histogram; see hist.h. */
#include "hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static unsigned msb(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

/* Below 2^HIST_SUB_BITS the index is the value. Above, a value with its top bit
 * at position b keeps its HIST_SUB_BITS leading bits: shift = b - (SUB_BITS-1),
 * and each shift adds SUB_COUNT/2 buckets. */
static unsigned bucket_of(uint64_t v)
{
	if (v < HIST_SUB_COUNT)
		return (unsigned)v;
	unsigned shift = msb(v) - (HIST_SUB_BITS - 1);
	unsigned sub = (unsigned)(v >> shift); /* in [SUB_COUNT/2, SUB_COUNT) */
	unsigned idx =
	        HIST_SUB_COUNT + (shift - 1) * (HIST_SUB_COUNT / 2) + (sub - HIST_SUB_COUNT / 2);
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Lowest value of bucket idx and its width. */
static void bucket_range(unsigned idx, uint64_t *lo, uint64_t *width)
{
	if (idx < HIST_SUB_COUNT) {
		*lo = idx;
		*width = 1;
		return;
	}
	unsigned rel = idx - HIST_SUB_COUNT;
	unsigned shift = rel / (HIST_SUB_COUNT / 2) + 1;
	uint64_t sub = rel % (HIST_SUB_COUNT / 2) + HIST_SUB_COUNT / 2;
	*lo = sub << shift;
	*width = (uint64_t)1 << shift;
}

void hist_record(struct hist *h, uint64_t ns)
{
	h->counts[bucket_of(ns)]++;
	h->count++;
	h->sum += (double)ns;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

double hist_percentile(const struct hist *h, double p)
{
	if (!h->count)
		return 0;
	if (p >= 100)
		return (double)h->max;
	/* The rank-th smallest value, rank counted from 1 (nearest-rank method). */
	uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t lo, width;
			bucket_range(i, &lo, &width);
			double mid = (double)lo + (double)(width - 1) / 2.0;
			/* Never report outside what was seen. */
			if (mid > (double)h->max)
				mid = (double)h->max;
			if (mid < (double)h->min)
				mid = (double)h->min;
			return mid;
		}
	}
	return (double)h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0;
}
