/* report.c: prints results as a table on stdout and writes CSV and JSON. */
#include "report.h"
#include "workload.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

double result_qps(const struct result *r)
{
	return r->seconds > 0 ? (double)r->ops / r->seconds : 0;
}

double result_read_qps(const struct result *r)
{
	return r->seconds > 0 ? (double)r->reads / r->seconds : 0;
}

static bool split_reads(const struct bench_cfg *cfg)
{
	return (cfg->workload->flags & WL_WRITES) != 0;
}

double result_cpu_per_op(const struct result *r, double cpu)
{
	uint64_t n = r->ops + r->errors;
	if (cpu < 0 || n == 0)
		return -1;
	return cpu * 1e6 / (double)n;
}

static double us(double ns)
{
	return ns / 1000.0;
}

/* A number, or "-" when unknown (negative), right-aligned in width w. */
static void put_opt(double v, int w, int prec)
{
	if (v < 0)
		printf(" %*s", w, "-");
	else
		printf(" %*.*f", w, prec, v);
}

void report_header(const struct bench_cfg *cfg)
{
	printf("%-12s %4s %3s %9s %10s %8s %8s %8s %8s %9s %6s %9s %9s %9s %5s\n", "target", "thr",
	       "rnd", "ops", "qps", "p50", "p90", "p99", "p99.9", "max", "errors", "proxy", "db",
	       "bench", "busy");
	printf("%-12s %4s %3s %9s %10s %8s %8s %8s %8s %9s %6s %9s %9s %9s %5s\n", "", "", "", "",
	       "", "us", "us", "us", "us", "us", "", "cpu us/op", "cpu us/op", "cpu us/op", "%");
	(void)cfg;
}

void report_line(const struct bench_cfg *cfg, const struct result *r)
{
	const struct hist *h = &r->hist;
	char rnd[8];
	if (r->round)
		snprintf(rnd, sizeof(rnd), "%d", r->round);
	else
		snprintf(rnd, sizeof(rnd), "all");
	printf("%-12s %4d %3s %9" PRIu64 " %10.1f %8.1f %8.1f %8.1f %8.1f %9.1f %6" PRIu64,
	       cfg->targets[r->target].name, r->threads, rnd, r->ops, result_qps(r),
	       us(hist_percentile(h, 50)), us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
	       us(hist_percentile(h, 99.9)), us((double)h->max), r->errors);
	put_opt(result_cpu_per_op(r, r->proxy_cpu), 9, 1);
	put_opt(result_cpu_per_op(r, r->db_cpu), 9, 1);
	put_opt(result_cpu_per_op(r, r->bench_cpu), 9, 1);
	put_opt(r->host_busy < 0 ? -1 : r->host_busy * 100, 5, 0);
	printf("\n");
	if (split_reads(cfg)) {
		/* The same window's reads alone (the row above is reads and writes). */
		const struct hist *rh = &r->read_hist;
		printf("%-12s %4d %3s %9" PRIu64 " %10.1f %8.1f %8.1f %8.1f %8.1f %9.1f %6s\n",
		       "  reads", r->threads, rnd, r->reads, result_read_qps(r),
		       us(hist_percentile(rh, 50)), us(hist_percentile(rh, 90)),
		       us(hist_percentile(rh, 99)), us(hist_percentile(rh, 99.9)),
		       us((double)rh->max), "-");
	}
	if (r->errors && r->round)
		printf("%-12s first error: %s\n", "", r->first_error);
}

static void aggregate(const struct bench_cfg *cfg, struct result *const *runs, int nruns,
                      struct result *aggs)
{
	for (int ti = 0; ti < cfg->nthreads; ti++) {
		for (int t = 0; t < cfg->ntargets; t++) {
			struct result *a = &aggs[ti * cfg->ntargets + t];
			memset(a, 0, offsetof(struct result, hist));
			hist_init(&a->hist);
			hist_init(&a->read_hist);
			a->target = t;
			a->threads = cfg->threads[ti];
			a->proxy_cpu = a->proxy_sys = a->db_cpu = a->bench_cpu = a->host_busy = 0;
			double busy_weighted = 0;
			bool have_proxy = true, have_db = true, have_busy = true;
			for (int i = 0; i < nruns; i++) {
				const struct result *r = runs[i];
				if (r->target != t || r->threads != a->threads)
					continue;
				double qps = result_qps(r), p50 = hist_percentile(&r->hist, 50);
				if (!a->nrounds) {
					a->start_unix = r->start_unix;
					a->qps_min = a->qps_max = qps;
					a->p50_min = a->p50_max = p50;
				}
				a->qps_min = fmin(a->qps_min, qps);
				a->qps_max = fmax(a->qps_max, qps);
				a->p50_min = fmin(a->p50_min, p50);
				a->p50_max = fmax(a->p50_max, p50);
				a->nrounds++;
				a->seconds += r->seconds;
				a->ops += r->ops;
				a->reads += r->reads;
				if (!a->errors && r->errors)
					snprintf(a->first_error, sizeof(a->first_error), "%s",
					         r->first_error);
				a->errors += r->errors;
				have_proxy &= r->proxy_cpu >= 0;
				have_db &= r->db_cpu >= 0;
				have_busy &= r->host_busy >= 0;
				a->proxy_cpu += r->proxy_cpu;
				a->proxy_sys += r->proxy_sys;
				a->db_cpu += r->db_cpu;
				a->bench_cpu += r->bench_cpu;
				busy_weighted += r->host_busy * r->seconds;
				hist_merge(&a->hist, &r->hist);
				hist_merge(&a->read_hist, &r->read_hist);
			}
			if (!have_proxy || !a->nrounds)
				a->proxy_cpu = a->proxy_sys = -1;
			if (!have_db || !a->nrounds)
				a->db_cpu = -1;
			a->host_busy =
			        have_busy && a->seconds > 0 ? busy_weighted / a->seconds : -1;
		}
	}
}

static double ratio(double a, double b)
{
	return a >= 0 && b > 0 ? a / b : -1;
}

void report_summary(const struct bench_cfg *cfg, struct result *const *runs, int nruns,
                    struct result *aggs)
{
	aggregate(cfg, runs, nruns, aggs);
	printf("\nAll rounds together (latencies from the merged histograms, qps = statements / "
	       "measured seconds):\n");
	report_header(cfg);
	for (int i = 0; i < cfg->nthreads * cfg->ntargets; i++)
		if (aggs[i].nrounds)
			report_line(cfg, &aggs[i]);
	if (cfg->rounds > 1) {
		printf("\nSpread over the rounds:\n%-12s %4s %23s %21s\n", "target", "thr",
		       "qps min..max", "p50 us min..max");
		for (int i = 0; i < cfg->nthreads * cfg->ntargets; i++) {
			const struct result *a = &aggs[i];
			if (a->nrounds)
				printf("%-12s %4d %11.1f..%-10.1f %10.1f..%-10.1f\n",
				       cfg->targets[a->target].name, a->threads, a->qps_min,
				       a->qps_max, us(a->p50_min), us(a->p50_max));
		}
	}
	if (cfg->ntargets < 2)
		return;
	printf("\nEach target against %s (p50 diff = its p50 minus %s's; ratios = its figure / "
	       "%s's):\n",
	       cfg->targets[0].name, cfg->targets[0].name, cfg->targets[0].name);
	printf("%-12s %4s %12s %10s %16s %13s\n", "target", "thr", "p50 diff us", "qps ratio",
	       "proxy cpu/op x", "db cpu/op x");
	for (int ti = 0; ti < cfg->nthreads; ti++) {
		const struct result *base = &aggs[ti * cfg->ntargets];
		for (int t = 1; t < cfg->ntargets; t++) {
			const struct result *a = &aggs[ti * cfg->ntargets + t];
			if (!a->nrounds || !base->nrounds)
				continue;
			printf("%-12s %4d %+12.1f", cfg->targets[t].name, a->threads,
			       us(hist_percentile(&a->hist, 50) -
			          hist_percentile(&base->hist, 50)));
			put_opt(ratio(result_qps(a), result_qps(base)), 10, 3);
			put_opt(ratio(result_cpu_per_op(a, a->proxy_cpu),
			              result_cpu_per_op(base, base->proxy_cpu)),
			        16, 3);
			put_opt(ratio(result_cpu_per_op(a, a->db_cpu),
			              result_cpu_per_op(base, base->db_cpu)),
			        13, 3);
			printf("\n");
		}
	}
}

/* CSV: quoted when needed. */
static void csv_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s == '\n' ? ' ' : *s, f);
	}
	fputc('"', f);
}

static void csv_opt(FILE *f, double v)
{
	if (v < 0)
		fputs(",", f);
	else
		fprintf(f, ",%.3f", v);
}

static void csv_row(FILE *f, const struct bench_cfg *cfg, const struct result *r)
{
	const struct bench_target *t = &cfg->targets[r->target];
	const struct hist *h = &r->hist;
	csv_str(f, cfg->label ? cfg->label : "");
	fprintf(f, ",%s,%s,%s,", cfg->workload->name, cfg->prepared ? "prepared" : "text",
	        cfg->tls ? "tls" : "plain");
	csv_str(f, t->name);
	fprintf(f, ",%s:%u,%d,", t->host, t->port, r->threads);
	if (r->round)
		fprintf(f, "%d", r->round);
	else
		fprintf(f, "all");
	fprintf(f, ",%.3f,%" PRIu64 ",%" PRIu64 ",%.1f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f", r->seconds,
	        r->ops, r->errors, result_qps(r), us(hist_mean(h)), us(hist_percentile(h, 50)),
	        us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
	        us(hist_percentile(h, 99.9)), us((double)h->max));
	csv_opt(f, result_cpu_per_op(r, r->proxy_cpu));
	csv_opt(f, result_cpu_per_op(r, r->proxy_sys));
	csv_opt(f, result_cpu_per_op(r, r->db_cpu));
	csv_opt(f, result_cpu_per_op(r, r->bench_cpu));
	csv_opt(f, r->host_busy < 0 ? -1 : r->host_busy * 100);
	fputc(',', f);
	csv_str(f, r->first_error);
	if (split_reads(cfg)) {
		const struct hist *rh = &r->read_hist;
		fprintf(f, ",%" PRIu64 ",%.1f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f", r->reads,
		        result_read_qps(r), us(hist_mean(rh)), us(hist_percentile(rh, 50)),
		        us(hist_percentile(rh, 90)), us(hist_percentile(rh, 99)),
		        us(hist_percentile(rh, 99.9)), us((double)rh->max));
	}
	fputc('\n', f);
}

int report_csv(const struct bench_cfg *cfg, struct result *const *runs, int nruns,
               const struct result *aggs)
{
	FILE *f = fopen(cfg->csv, "w");
	if (!f)
		return -1;
	fprintf(f, "label,workload,mode,client_tls,target,address,threads,round,seconds,ops,errors,"
	           "qps,mean_us,"
	           "p50_us,p90_us,p99_us,p999_us,max_us,proxy_cpu_us_per_op,proxy_sys_us_per_op,db_"
	           "cpu_us_per_op,"
	           "bench_cpu_us_per_op,host_busy_pct,first_error");
	if (split_reads(cfg))
		fprintf(f, ",reads,read_qps,read_mean_us,read_p50_us,read_p90_us,read_p99_us,"
		           "read_p999_us,read_max_us");
	fputc('\n', f);
	for (int i = 0; i < nruns; i++)
		csv_row(f, cfg, runs[i]);
	for (int i = 0; i < cfg->nthreads * cfg->ntargets; i++)
		if (aggs[i].nrounds)
			csv_row(f, cfg, &aggs[i]);
	return fclose(f) == 0 ? 0 : -1;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v)
{
	fprintf(f, ", \"%s\": ", key);
	if (v < 0 || isnan(v))
		fputs("null", f);
	else
		fprintf(f, "%.3f", v);
}

static void json_result(FILE *f, const struct bench_cfg *cfg, const struct result *r)
{
	const struct hist *h = &r->hist;
	fprintf(f, "    {\"target\": ");
	json_str(f, cfg->targets[r->target].name);
	fprintf(f, ", \"threads\": %d, \"round\": ", r->threads);
	if (r->round)
		fprintf(f, "%d", r->round);
	else
		fprintf(f, "\"all\", \"rounds\": %d", r->nrounds);
	fprintf(f,
	        ", \"start_unix\": %.3f, \"seconds\": %.3f, \"ops\": %" PRIu64
	        ", \"errors\": %" PRIu64,
	        r->start_unix, r->seconds, r->ops, r->errors);
	json_num(f, "qps", result_qps(r));
	json_num(f, "mean_us", us(hist_mean(h)));
	json_num(f, "min_us", h->count ? us((double)h->min) : -1);
	json_num(f, "p50_us", us(hist_percentile(h, 50)));
	json_num(f, "p90_us", us(hist_percentile(h, 90)));
	json_num(f, "p99_us", us(hist_percentile(h, 99)));
	json_num(f, "p999_us", us(hist_percentile(h, 99.9)));
	json_num(f, "max_us", us((double)h->max));
	json_num(f, "proxy_cpu_s", r->proxy_cpu);
	json_num(f, "proxy_cpu_us_per_op", result_cpu_per_op(r, r->proxy_cpu));
	json_num(f, "proxy_sys_us_per_op", result_cpu_per_op(r, r->proxy_sys));
	json_num(f, "db_cpu_us_per_op", result_cpu_per_op(r, r->db_cpu));
	json_num(f, "bench_cpu_us_per_op", result_cpu_per_op(r, r->bench_cpu));
	json_num(f, "host_busy_pct", r->host_busy < 0 ? -1 : r->host_busy * 100);
	if (split_reads(cfg)) {
		const struct hist *rh = &r->read_hist;
		fprintf(f, ", \"reads\": %" PRIu64, r->reads);
		json_num(f, "read_qps", result_read_qps(r));
		json_num(f, "read_mean_us", us(hist_mean(rh)));
		json_num(f, "read_p50_us", us(hist_percentile(rh, 50)));
		json_num(f, "read_p90_us", us(hist_percentile(rh, 90)));
		json_num(f, "read_p99_us", us(hist_percentile(rh, 99)));
		json_num(f, "read_p999_us", us(hist_percentile(rh, 99.9)));
		json_num(f, "read_max_us", us((double)rh->max));
	}
	if (!r->round) {
		json_num(f, "qps_min", r->qps_min);
		json_num(f, "qps_max", r->qps_max);
		json_num(f, "p50_min_us", us(r->p50_min));
		json_num(f, "p50_max_us", us(r->p50_max));
	}
	fprintf(f, ", \"first_error\": ");
	json_str(f, r->errors ? r->first_error : NULL);
	fprintf(f, "}");
}

int report_json(const struct bench_cfg *cfg, struct result *const *runs, int nruns,
                const struct result *aggs)
{
	FILE *f = fopen(cfg->json, "w");
	if (!f)
		return -1;
	char date[32];
	time_t now = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "{\n  \"date\": \"%s\",\n  \"label\": ", date);
	json_str(f, cfg->label);
	fprintf(f, ",\n  \"workload\": \"%s\", \"mode\": \"%s\", \"client_tls\": %s,\n",
	        cfg->workload->name, cfg->prepared ? "prepared" : "text",
	        cfg->tls ? "true" : "false");
	fprintf(f,
	        "  \"duration_s\": %.3f, \"requests\": %" PRIu64
	        ", \"warmup_s\": %.3f, \"rate_qps\": %.3f, "
	        "\"rounds\": %d,\n",
	        cfg->duration, cfg->requests, cfg->warmup, cfg->rate, cfg->rounds);
	if (cfg->sql) {
		fprintf(f, "  \"sql\": ");
		json_str(f, cfg->sql);
		fprintf(f, ",\n");
	}
	fprintf(f, "  \"targets\": [\n");
	for (int i = 0; i < cfg->ntargets; i++) {
		const struct bench_target *t = &cfg->targets[i];
		fprintf(f, "    {\"name\": ");
		json_str(f, t->name);
		fprintf(f, ", \"address\": \"%s:%u\", \"pid\": %d, \"tls_cipher\": ", t->host,
		        t->port, t->pid);
		json_str(f, t->tls_cipher);
		fprintf(f, ", \"server_version\": ");
		json_str(f, t->server_version);
		fprintf(f, "}%s\n", i + 1 < cfg->ntargets ? "," : "");
	}
	fprintf(f, "  ],\n  \"runs\": [\n");
	for (int i = 0; i < nruns; i++) {
		json_result(f, cfg, runs[i]);
		fprintf(f, "%s\n", i + 1 < nruns ? "," : "");
	}
	fprintf(f, "  ],\n  \"aggregates\": [\n");
	bool first = true;
	for (int i = 0; i < cfg->nthreads * cfg->ntargets; i++) {
		if (!aggs[i].nrounds)
			continue;
		fprintf(f, "%s", first ? "" : ",\n");
		json_result(f, cfg, &aggs[i]);
		first = false;
	}
	fprintf(f, "\n  ],\n  \"ratios\": [\n");
	first = true;
	for (int ti = 0; ti < cfg->nthreads; ti++) {
		const struct result *base = &aggs[ti * cfg->ntargets];
		for (int t = 1; t < cfg->ntargets; t++) {
			const struct result *a = &aggs[ti * cfg->ntargets + t];
			if (!a->nrounds || !base->nrounds)
				continue;
			fprintf(f, "%s    {\"target\": ", first ? "" : ",\n");
			json_str(f, cfg->targets[t].name);
			fprintf(f, ", \"baseline\": ");
			json_str(f, cfg->targets[0].name);
			fprintf(f, ", \"threads\": %d, \"p50_diff_us\": %.3f", a->threads,
			        us(hist_percentile(&a->hist, 50) -
			           hist_percentile(&base->hist, 50)));
			json_num(f, "qps_ratio", ratio(result_qps(a), result_qps(base)));
			json_num(f, "proxy_cpu_per_op_ratio",
			         ratio(result_cpu_per_op(a, a->proxy_cpu),
			               result_cpu_per_op(base, base->proxy_cpu)));
			json_num(f, "db_cpu_per_op_ratio",
			         ratio(result_cpu_per_op(a, a->db_cpu),
			               result_cpu_per_op(base, base->db_cpu)));
			fprintf(f, "}");
			first = false;
		}
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f) == 0 ? 0 : -1;
}
