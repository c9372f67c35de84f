/* Unit tests for src/admin/metrics: registration rules, the exact exposition
 * text, and exact sums under concurrent updates. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "core/metrics.h"

static void reset(void)
{
	metrics_reset();
}

TestSuite(metrics, .init = reset, .fini = reset);

static char *render(struct buf *b)
{
	buf_reset(b);
	cr_assert_eq(metrics_render(b), 0);
	cr_assert_eq(buf_append(b, "", 1), 0);
	return (char *)b->data;
}

Test(metrics, exposition_text)
{
	struct metric *conns = metrics_counter("vecgate_connections_total", "Client connections.");
	struct metrics_family *st = metrics_family(METRICS_COUNTER, "vecgate_statements_total",
	                                           "Statements by kind.", "kind", NULL);
	struct metric *rd = metrics_series(st, "read", NULL);
	struct metric *odd = metrics_series(st, "a\"b\\c\nd", NULL);
	struct metrics_family *g =
	        metrics_family(METRICS_GAUGE, "vecgate_pool_conns",
	                       "Upstream connections\nby \"state\" \\ server.", "server", "state");
	struct metric *idle = metrics_series(g, "10.0.0.1:4000", "idle");
	struct metrics_family *empty =
	        metrics_family(METRICS_GAUGE, "vecgate_unused", "No series yet.", "x", NULL);
	struct metric *lat = metrics_histogram("vecgate_query_seconds", "Latency.");
	struct metrics_family *hf =
	        metrics_family(METRICS_HISTOGRAM, "vecgate_kind_seconds", "By kind.", "kind", NULL);
	struct metric *hw = metrics_series(hf, "write", NULL);
	cr_assert(conns && st && rd && odd && g && idle && empty && lat && hf && hw);

	metrics_inc(conns, 3);
	metrics_inc(rd, 1);
	metrics_inc(rd, 41);
	metrics_gauge_set(idle, 5);
	metrics_gauge_add(idle, -7);
	metrics_observe_ns(lat, 50000);          /* exactly 50us: le is inclusive */
	metrics_observe_ns(lat, 50001);          /* the 100us bucket */
	metrics_observe_ns(lat, 1500000000);     /* 2.5s */
	metrics_observe_ns(lat, 60000000000ULL); /* +Inf */
	metrics_observe_ns(hw, 0);

	struct buf b;
	buf_init(&b);
	const char *want =
	        "# HELP vecgate_connections_total Client connections.\n"
	        "# TYPE vecgate_connections_total counter\n"
	        "vecgate_connections_total 3\n"
	        "# HELP vecgate_statements_total Statements by kind.\n"
	        "# TYPE vecgate_statements_total counter\n"
	        "vecgate_statements_total{kind=\"read\"} 42\n"
	        "vecgate_statements_total{kind=\"a\\\"b\\\\c\\nd\"} 0\n"
	        "# HELP vecgate_pool_conns Upstream connections\\nby \"state\" \\\\ server.\n"
	        "# TYPE vecgate_pool_conns gauge\n"
	        "vecgate_pool_conns{server=\"10.0.0.1:4000\",state=\"idle\"} -2\n"
	        "# HELP vecgate_unused No series yet.\n"
	        "# TYPE vecgate_unused gauge\n"
	        "# HELP vecgate_query_seconds Latency.\n"
	        "# TYPE vecgate_query_seconds histogram\n"
	        "vecgate_query_seconds_bucket{le=\"0.00005\"} 1\n"
	        "vecgate_query_seconds_bucket{le=\"0.0001\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.00025\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.0005\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.001\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.0025\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.005\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.01\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.025\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.05\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.1\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.25\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"0.5\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"1\"} 2\n"
	        "vecgate_query_seconds_bucket{le=\"2.5\"} 3\n"
	        "vecgate_query_seconds_bucket{le=\"5\"} 3\n"
	        "vecgate_query_seconds_bucket{le=\"10\"} 3\n"
	        "vecgate_query_seconds_bucket{le=\"+Inf\"} 4\n"
	        "vecgate_query_seconds_sum 61.500100001\n"
	        "vecgate_query_seconds_count 4\n"
	        "# HELP vecgate_kind_seconds By kind.\n"
	        "# TYPE vecgate_kind_seconds histogram\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.00005\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.0001\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.00025\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.0005\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.001\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.0025\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.005\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.01\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.025\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.05\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.1\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.25\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"0.5\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"1\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"2.5\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"5\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"10\"} 1\n"
	        "vecgate_kind_seconds_bucket{kind=\"write\",le=\"+Inf\"} 1\n"
	        "vecgate_kind_seconds_sum{kind=\"write\"} 0\n"
	        "vecgate_kind_seconds_count{kind=\"write\"} 1\n";
	cr_assert_str_eq(render(&b), want);
	cr_assert_eq(metrics_value(rd), 42);
	cr_assert_eq(metrics_value(idle), -2);
	cr_assert_eq(metrics_value(lat), 4);
	buf_free(&b);
}

Test(metrics, registration_rules)
{
	struct metrics_family *f = metrics_family(METRICS_COUNTER, "a_total", "h", "kind", NULL);
	cr_assert_not_null(f);
	cr_assert_eq(metrics_family(METRICS_COUNTER, "a_total", "h", "kind", NULL), f,
	             "same again");
	cr_assert_null(metrics_family(METRICS_GAUGE, "a_total", "h", "kind", NULL), "other type");
	cr_assert_null(metrics_family(METRICS_COUNTER, "a_total", "other", "kind", NULL));
	cr_assert_null(metrics_family(METRICS_COUNTER, "a_total", "h", NULL, NULL));
	cr_assert_null(metrics_family(METRICS_COUNTER, "a_total", "h", "kind", "x"));

	struct metric *s = metrics_series(f, "x", NULL);
	cr_assert_not_null(s);
	cr_assert_eq(metrics_series(f, "x", NULL), s, "same series again");
	cr_assert_neq(metrics_series(f, "y", NULL), s);
	cr_assert_null(metrics_series(f, NULL, NULL), "one value needed");
	cr_assert_null(metrics_series(f, "x", "y"), "one value only");
	cr_assert_null(metrics_series(NULL, NULL, NULL), "failed registration propagates");
	cr_assert_not_null(metrics_series(f, "", NULL), "an empty value is a value");

	static const char *const bad_names[] = {"", "0abc", "a-b", "a b", "é", "a.b", NULL};
	for (int i = 0; bad_names[i]; i++)
		cr_expect_null(metrics_counter(bad_names[i], "h"), "%s", bad_names[i]);
	cr_expect_not_null(metrics_counter("ns:sub_total", "colons are allowed in names"));
	cr_expect_not_null(metrics_counter("_x", "h"));
	cr_expect_null(metrics_counter(NULL, "h"));
	cr_expect_null(metrics_counter("no_help", NULL));

	static const char *const bad_labels[] = {"", "0a", "a:b", "__reserved", "a-b", NULL};
	for (int i = 0; bad_labels[i]; i++)
		cr_expect_null(metrics_family(METRICS_GAUGE, "g", "h", bad_labels[i], NULL), "%s",
		               bad_labels[i]);
	cr_expect_null(metrics_family(METRICS_GAUGE, "g", "h", NULL, "b"), "label2 needs label1");
	cr_expect_null(metrics_family(METRICS_GAUGE, "g", "h", "a", "a"), "twice the same label");
	cr_expect_null(metrics_family(METRICS_HISTOGRAM, "hh", "h", "le", NULL), "le is taken");
	cr_expect_not_null(metrics_family(METRICS_GAUGE, "g", "h", "le", NULL),
	                   "le is fine on a gauge");
}

Test(metrics, seconds_are_exact)
{
	struct metric *h = metrics_histogram("h_seconds", "h");
	metrics_observe_ns(h, 1);
	metrics_observe_ns(h, 10000000000ULL); /* exactly 10s: the last finite bucket */
	struct buf b;
	buf_init(&b);
	const char *text = render(&b);
	cr_assert(strstr(text, "h_seconds_sum 10.000000001\n"), "%s", text);
	cr_assert(strstr(text, "h_seconds_bucket{le=\"10\"} 2\n"), "%s", text);
	cr_assert(strstr(text, "h_seconds_bucket{le=\"+Inf\"} 2\n"), "%s", text);
	cr_assert(strstr(text, "h_seconds_bucket{le=\"0.00005\"} 1\n"), "%s", text);
	buf_free(&b);
}

#define THREADS 8
#define ROUNDS  100000

struct worker {
	struct metric *counter, *gauge, *hist;
	int id;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < ROUNDS; i++) {
		metrics_inc(w->counter, 1);
		metrics_gauge_add(w->gauge, (i & 1) ? -1 : 2);
		metrics_observe_ns(w->hist, (uint64_t)(i % 7) * 1000000);
	}
	return NULL;
}

static void *render_loop(void *arg)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 50; i++) {
		buf_reset(&b);
		if (metrics_render(&b) != 0)
			break;
	}
	buf_free(&b);
	return arg;
}

Test(metrics, concurrent_updates_sum_exactly)
{
	struct metrics_family *f = metrics_family(METRICS_COUNTER, "ops_total", "h", "t", NULL);
	struct worker w[THREADS];
	pthread_t th[THREADS + 1];
	struct metric *shared = metrics_series(f, "shared", NULL);
	struct metric *gauge = metrics_gauge("level", "h");
	struct metric *hist = metrics_histogram("lat_seconds", "h");
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){shared, gauge, hist, i};
		cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	cr_assert_eq(pthread_create(&th[THREADS], NULL, render_loop, NULL), 0);
	for (int i = 0; i <= THREADS; i++)
		pthread_join(th[i], NULL);

	cr_assert_eq(metrics_value(shared), (int64_t)THREADS * ROUNDS);
	cr_assert_eq(metrics_value(gauge), (int64_t)THREADS * (ROUNDS / 2));
	cr_assert_eq(metrics_value(hist), (int64_t)THREADS * ROUNDS);
	/* Sum of (i % 7) ms over the rounds, per thread. */
	uint64_t per = 0;
	for (int i = 0; i < ROUNDS; i++)
		per += (uint64_t)(i % 7);
	cr_assert_eq(per, 299995);
	struct buf b;
	buf_init(&b);
	const char *text = render(&b);
	cr_assert(strstr(text, "lat_seconds_sum 2399.96\n"), "%s", text);
	cr_assert(strstr(text, "ops_total{t=\"shared\"} 800000\n"), "%s", text);
	buf_free(&b);
}
