/* hist.h: latency histogram with log-linear buckets (HdrHistogram-like).
 * Values are nanoseconds; each bucket is at most 1/256 of its value wide, so
 * every latency is kept to better than 0.4% (and exactly below 256 ns). */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  8 /* 256 sub-buckets per power of two */
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS  42 /* values up to 2^42 ns, about 73 minutes */
#define HIST_BUCKETS   (HIST_SUB_COUNT + (HIST_MAX_BITS - HIST_SUB_BITS) * (HIST_SUB_COUNT / 2))

struct hist {
	uint64_t count;
	uint64_t min; /* exact, ns; UINT64_MAX while empty */
	uint64_t max; /* exact, ns */
	double sum;   /* for the mean */
	uint64_t counts[HIST_BUCKETS];
};

void hist_init(struct hist *h);
/* Adds one value in ns; values past the range go into the last bucket (max stays exact). */
void hist_record(struct hist *h, uint64_t ns);
/* Adds every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* Value at percentile p (0..100) in ns: the middle of the bucket holding it
 * (the exact max for p = 100); 0 when empty. */
double hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);

#endif
