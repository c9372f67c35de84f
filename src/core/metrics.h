/* Metrics registry: counters, gauges and latency histograms, optionally with
 * one or two labels, rendered in the Prometheus text format 0.0.4. Updates are
 * one relaxed atomic add on a handle taken at start-up: no lookups, no locks. */
#ifndef VECGATE_CORE_METRICS_H
#define VECGATE_CORE_METRICS_H

#include <stdint.h>

#include "core/buf.h"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

/* Latency histograms share these bucket bounds (seconds): 50us .. 10s, +Inf. */
#define METRICS_BUCKETS 17

/* A metric name with its help, type and label names, and its series. */
struct metrics_family;
/* One time series: a family with one set of label values. The handle that
 * metrics_inc() and friends take. */
struct metric;

/* Registers a family. label1 and label2 name its labels (NULL for fewer);
 * names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 * and not start with "__" ("le" is taken by histograms). Registering the same
 * name again with the same type, help and labels returns the same family.
 * NULL on a bad or conflicting name, or out of memory. Families and series
 * live until metrics_reset(). Registration may happen on any thread but
 * should happen at start-up: it takes the registry's lock. */
struct metrics_family *metrics_family(enum metrics_type type, const char *name, const char *help,
                                      const char *label1, const char *label2);
/* The series of f with these label values (as many as f has labels; NULL for
 * the others), created on first use; values may hold any bytes but NUL. NULL
 * when the count of values is wrong or out of memory. Call it once and keep
 * the handle: it searches the family's series. */
struct metric *metrics_series(struct metrics_family *f, const char *value1, const char *value2);

/* Unlabelled shortcuts: metrics_family() + metrics_series(f, NULL, NULL). */
struct metric *metrics_counter(const char *name, const char *help);
struct metric *metrics_gauge(const char *name, const char *help);
struct metric *metrics_histogram(const char *name, const char *help);

/* Hot path, safe from any thread; m must be a series of the right type.
 * Each thread adds to a shard of its own (no cache line passed between
 * cores); a gauge is either set or added to, not both. */
void metrics_inc(struct metric *m, uint64_t n);          /* counter */
void metrics_gauge_set(struct metric *m, int64_t v);     /* gauge */
void metrics_gauge_add(struct metric *m, int64_t delta); /* gauge */
void metrics_observe_ns(struct metric *m, uint64_t ns);  /* histogram, a duration */

/* Reads a series back (tests, /status): a counter's count, a gauge's value,
 * a histogram's observation count. */
int64_t metrics_value(const struct metric *m);

/* Appends every family in registration order, each series in creation order,
 * in the text exposition format 0.0.4. 0, or -ENOMEM with part of the text
 * appended. Safe while other threads update: each number is read atomically,
 * though a histogram's buckets, sum and count are not one snapshot. */
int metrics_render(struct buf *out) MUST_CHECK;

/* Frees every family and series. Only when no thread holds a handle (tests,
 * the very end of shutdown). */
void metrics_reset(void);

#endif
