/* The metrics registry and its Prometheus text rendering. Series are never
 * freed while the process serves, so a handle stays valid without counting
 * references; updates are relaxed atomics (a metric needs no ordering). */
#include "core/metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bucket upper bounds, in nanoseconds and as rendered in le="...". */
static const uint64_t bucket_ns[METRICS_BUCKETS] = {
        50000,     100000,     250000,     500000,     1000000,     2500000,
        5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
        500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const bucket_le[METRICS_BUCKETS + 1] = {
        "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
        "0.05",    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",   "+Inf",
};

/* A series' numbers are kept in shards, each on cache lines of its own: a
 * thread adds to its own shard, so that worker loops on different cores
 * counting the same statements do not pass one cache line back and forth
 * (docs/design.md §2); reading sums the shards. A gauge is either set (its
 * value in shard 0) or added to, never both. */
#define SHARDS 8

struct shard {
	_Alignas(64) atomic_uint_least64_t count;           /* counter; gauge (as int64 bits) */
	atomic_uint_least64_t sum_ns;                       /* histogram */
	atomic_uint_least64_t buckets[METRICS_BUCKETS + 1]; /* histogram, not cumulative */
};

struct metric {
	struct shard shard[SHARDS];
	struct metrics_family *fam;
	char *values[2];
	char *labels; /* rendered: a="x",b="y"; NULL without labels */
	struct metric *next;
};

struct metrics_family {
	enum metrics_type type;
	char *name;
	char *help;
	char *label[2];
	int nlabels;
	struct metric *series, **tail;
	struct metrics_family *next;
};

static atomic_uint next_shard;
static _Thread_local int my_shard = -1;

/* The calling thread's shard of m: threads take shards in turn. */
static struct shard *mine(struct metric *m)
{
	if (my_shard < 0)
		my_shard = (int)(atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) %
		                 SHARDS);
	return &m->shard[my_shard];
}

static uint64_t sum_of(const struct metric *m, size_t off)
{
	uint64_t v = 0;
	for (int i = 0; i < SHARDS; i++)
		v += atomic_load_explicit(
		        (const atomic_uint_least64_t *)((const char *)&m->shard[i] + off),
		        memory_order_relaxed);
	return v;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_family *families;
static struct metrics_family **families_tail = &families;

static bool valid_name(const char *s, bool colon)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon && c == ':')))
			return false;
	}
	return true;
}

static bool valid_label(const char *s, enum metrics_type type)
{
	return valid_name(s, false) && strncmp(s, "__", 2) != 0 &&
	       !(type == METRICS_HISTOGRAM && strcmp(s, "le") == 0);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void free_family(struct metrics_family *f)
{
	for (struct metric *m = f->series, *next; m; m = next) {
		next = m->next;
		free(m->values[0]);
		free(m->values[1]);
		free(m->labels);
		free(m);
	}
	free(f->name);
	free(f->help);
	free(f->label[0]);
	free(f->label[1]);
	free(f);
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

struct metrics_family *metrics_family(enum metrics_type type, const char *name, const char *help,
                                      const char *label1, const char *label2)
{
	if (!valid_name(name, true) || !help || (label2 && !label1) ||
	    (label1 && !valid_label(label1, type)) || (label2 && !valid_label(label2, type)) ||
	    (label1 && label2 && strcmp(label1, label2) == 0))
		return NULL;
	pthread_mutex_lock(&lock);
	struct metrics_family *f;
	for (f = families; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			break;
	if (f) {
		bool same = f->type == type && strcmp(f->help, help) == 0 &&
		            same_str(f->label[0], label1) && same_str(f->label[1], label2);
		pthread_mutex_unlock(&lock);
		return same ? f : NULL;
	}
	f = calloc(1, sizeof(*f));
	bool oom = !f;
	if (f) {
		f->type = type;
		f->name = dup_or_null(name, &oom);
		f->help = dup_or_null(help, &oom);
		f->label[0] = dup_or_null(label1, &oom);
		f->label[1] = dup_or_null(label2, &oom);
		f->nlabels = label2 ? 2 : label1 ? 1 : 0;
		f->tail = &f->series;
	}
	if (oom) {
		if (f)
			free_family(f);
		f = NULL;
	} else {
		*families_tail = f;
		families_tail = &f->next;
	}
	pthread_mutex_unlock(&lock);
	return f;
}

/* Appends s with the label-value escapes of the exposition format (or, with
 * help set, those of HELP text, which leaves quotes alone). */
static int put_escaped(struct buf *out, const char *s, bool help)
{
	const char *run = s;
	int rc = 0;
	for (; *s && rc == 0; s++) {
		const char *esc = *s == '\\'           ? "\\\\"
		                  : *s == '\n'         ? "\\n"
		                  : *s == '"' && !help ? "\\\""
		                                       : NULL;
		if (!esc)
			continue;
		rc = buf_append(out, run, (size_t)(s - run));
		if (rc == 0)
			rc = buf_append(out, esc, 2);
		run = s + 1;
	}
	return rc ? rc : buf_append(out, run, strlen(run));
}

static int put(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s));
}

/* a="x",b="y" for a new series. */
static char *render_labels(const struct metrics_family *f, const char *const v[2])
{
	struct buf b;
	buf_init(&b);
	int rc = 0;
	for (int i = 0; i < f->nlabels && rc == 0; i++) {
		rc = put(&b, i ? "," : "");
		if (rc == 0)
			rc = put(&b, f->label[i]);
		if (rc == 0)
			rc = put(&b, "=\"");
		if (rc == 0)
			rc = put_escaped(&b, v[i], false);
		if (rc == 0)
			rc = put(&b, "\"");
	}
	if (rc == 0)
		rc = buf_append(&b, "", 1);
	if (rc < 0) {
		buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

struct metric *metrics_series(struct metrics_family *f, const char *value1, const char *value2)
{
	const char *v[2] = {value1, value2};
	int n = value2 ? 2 : value1 ? 1 : 0;
	if (!f || n != f->nlabels || (value2 && !value1))
		return NULL;
	pthread_mutex_lock(&lock);
	struct metric *m;
	for (m = f->series; m; m = m->next)
		if (same_str(m->values[0], value1) && same_str(m->values[1], value2))
			break;
	if (!m) {
		bool oom = false;
		m = aligned_alloc(64, (sizeof(*m) + 63) / 64 * 64);
		if (m) {
			memset(m, 0, sizeof(*m));
			m->fam = f;
			m->values[0] = dup_or_null(value1, &oom);
			m->values[1] = dup_or_null(value2, &oom);
			if (n > 0 && !oom) {
				m->labels = render_labels(f, v);
				oom = !m->labels;
			}
		}
		if (!m || oom) {
			if (m) {
				free(m->values[0]);
				free(m->values[1]);
				free(m);
			}
			m = NULL;
		} else {
			*f->tail = m;
			f->tail = &m->next;
		}
	}
	pthread_mutex_unlock(&lock);
	return m;
}

static struct metric *unlabelled(enum metrics_type type, const char *name, const char *help)
{
	return metrics_series(metrics_family(type, name, help, NULL, NULL), NULL, NULL);
}

struct metric *metrics_counter(const char *name, const char *help)
{
	return unlabelled(METRICS_COUNTER, name, help);
}

struct metric *metrics_gauge(const char *name, const char *help)
{
	return unlabelled(METRICS_GAUGE, name, help);
}

struct metric *metrics_histogram(const char *name, const char *help)
{
	return unlabelled(METRICS_HISTOGRAM, name, help);
}

void metrics_inc(struct metric *m, uint64_t n)
{
	assert(m->fam->type == METRICS_COUNTER);
	atomic_fetch_add_explicit(&mine(m)->count, n, memory_order_relaxed);
}

/* Gauges keep an int64 in the counter's bits: two's complement makes the
 * unsigned atomic add a signed one. */
void metrics_gauge_set(struct metric *m, int64_t v)
{
	assert(m->fam->type == METRICS_GAUGE);
	atomic_store_explicit(&m->shard[0].count, (uint64_t)v, memory_order_relaxed);
}

void metrics_gauge_add(struct metric *m, int64_t delta)
{
	assert(m->fam->type == METRICS_GAUGE);
	atomic_fetch_add_explicit(&mine(m)->count, (uint64_t)delta, memory_order_relaxed);
}

void metrics_observe_ns(struct metric *m, uint64_t ns)
{
	assert(m->fam->type == METRICS_HISTOGRAM);
	int i = 0;
	while (i < METRICS_BUCKETS && ns > bucket_ns[i])
		i++;
	struct shard *sh = mine(m);
	atomic_fetch_add_explicit(&sh->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->sum_ns, ns, memory_order_relaxed);
}

int64_t metrics_value(const struct metric *m)
{
	if (m->fam->type != METRICS_HISTOGRAM)
		return (int64_t)sum_of(m, offsetof(struct shard, count));
	uint64_t n = 0;
	for (int i = 0; i <= METRICS_BUCKETS; i++)
		n += sum_of(m, offsetof(struct shard, buckets) + (size_t)i * sizeof(uint64_t));
	return (int64_t)n;
}

/* name[suffix]{labels[,extra]} : the start of a sample line. */
static int put_sample_name(struct buf *out, const struct metric *m, const char *suffix,
                           const char *extra)
{
	int rc = put(out, m->fam->name);
	if (rc == 0)
		rc = put(out, suffix);
	if (rc || (!m->labels && !extra))
		return rc;
	rc = put(out, "{");
	if (rc == 0 && m->labels)
		rc = put(out, m->labels);
	if (rc == 0 && extra)
		rc = buf_appendf(out, "%s%s", m->labels ? "," : "", extra);
	return rc ? rc : put(out, "}");
}

/* Seconds from nanoseconds, exactly: "0.00025", "12", "1.5". */
static int put_seconds(struct buf *out, uint64_t ns)
{
	char frac[16];
	snprintf(frac, sizeof(frac), "%09" PRIu64, ns % 1000000000);
	size_t n = strlen(frac);
	while (n > 0 && frac[n - 1] == '0')
		n--;
	frac[n] = '\0';
	return buf_appendf(out, "%" PRIu64 "%s%s", ns / 1000000000, n ? "." : "", frac);
}

static int render_histogram(struct buf *out, const struct metric *m)
{
	uint64_t cum = 0;
	int rc = 0;
	for (int i = 0; i <= METRICS_BUCKETS && rc == 0; i++) {
		char le[32];
		snprintf(le, sizeof(le), "le=\"%s\"", bucket_le[i]);
		cum += sum_of(m, offsetof(struct shard, buckets) + (size_t)i * sizeof(uint64_t));
		rc = put_sample_name(out, m, "_bucket", le);
		if (rc == 0)
			rc = buf_appendf(out, " %" PRIu64 "\n", cum);
	}
	if (rc == 0)
		rc = put_sample_name(out, m, "_sum", NULL);
	if (rc == 0)
		rc = put(out, " ");
	if (rc == 0)
		rc = put_seconds(out, sum_of(m, offsetof(struct shard, sum_ns)));
	if (rc == 0)
		rc = put(out, "\n");
	if (rc == 0)
		rc = put_sample_name(out, m, "_count", NULL);
	if (rc == 0)
		rc = buf_appendf(out, " %" PRIu64 "\n", cum);
	return rc;
}

static int render_family(struct buf *out, const struct metrics_family *f)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	int rc = buf_appendf(out, "# HELP %s ", f->name);
	if (rc == 0)
		rc = put_escaped(out, f->help, true);
	if (rc == 0)
		rc = buf_appendf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
	for (const struct metric *m = f->series; m && rc == 0; m = m->next) {
		uint64_t v = sum_of(m, offsetof(struct shard, count));
		switch (f->type) {
		case METRICS_COUNTER:
			rc = put_sample_name(out, m, "", NULL);
			if (rc == 0)
				rc = buf_appendf(out, " %" PRIu64 "\n", v);
			break;
		case METRICS_GAUGE:
			rc = put_sample_name(out, m, "", NULL);
			if (rc == 0)
				rc = buf_appendf(out, " %" PRId64 "\n", (int64_t)v);
			break;
		case METRICS_HISTOGRAM:
			rc = render_histogram(out, m);
			break;
		}
	}
	return rc;
}

int metrics_render(struct buf *out)
{
	int rc = 0;
	pthread_mutex_lock(&lock);
	for (const struct metrics_family *f = families; f && rc == 0; f = f->next)
		rc = render_family(out, f);
	pthread_mutex_unlock(&lock);
	return rc;
}

void metrics_reset(void)
{
	pthread_mutex_lock(&lock);
	for (struct metrics_family *f = families, *next; f; f = next) {
		next = f->next;
		free_family(f);
	}
	families = NULL;
	families_tail = &families;
	pthread_mutex_unlock(&lock);
}
