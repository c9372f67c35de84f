/* report.h: one measurement's results, and how they are printed: a human table
 * on stdout, CSV and JSON files, and the ratios of each target to the first. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include "bench.h"
#include "hist.h"

struct result {
	int target; /* index into cfg->targets */
	int threads;
	int round;         /* 1.., or 0 for the sum over rounds */
	int nrounds;       /* rounds summed (aggregates) */
	double start_unix; /* wall clock at the start of the window */
	double seconds;    /* measured window */
	uint64_t ops;      /* statements that succeeded in the window */
	uint64_t errors;   /* statements (or reconnects) that failed in the window */
	uint64_t reads;    /* WL_WRITES: the successful statements that were not writes */
	char first_error[BENCH_ERR_LEN];
	double proxy_cpu;        /* seconds of CPU the target's --pid used; < 0 unknown */
	double proxy_sys;        /* the part of proxy_cpu spent in the kernel */
	double db_cpu;           /* seconds of CPU --server-pid used; < 0 unknown */
	double bench_cpu;        /* seconds of CPU this process used */
	double host_busy;        /* share of the machine's CPU time busy, 0..1; < 0 unknown */
	double qps_min, qps_max; /* aggregates: spread of the rounds' throughput */
	double p50_min, p50_max; /* aggregates: spread of the rounds' p50, ns */
	struct hist hist;        /* latencies of the successful statements */
	struct hist read_hist;   /* WL_WRITES: those of the reads alone */
};

double result_qps(const struct result *r);
/* WL_WRITES: reads (successful statements that were not writes) per second. */
double result_read_qps(const struct result *r);
/* CPU microseconds per statement (successful or not) from cpu seconds; < 0 unknown. */
double result_cpu_per_op(const struct result *r, double cpu);

void report_header(const struct bench_cfg *cfg);
void report_line(const struct bench_cfg *cfg, const struct result *r);
/* Sums the rounds of each (threads, target) into aggs (caller-allocated, size
 * nthreads * ntargets, index [ti * ntargets + target]) and prints them with the
 * ratios to the first target. */
void report_summary(const struct bench_cfg *cfg, struct result *const *runs, int nruns,
                    struct result *aggs);
int report_csv(const struct bench_cfg *cfg, struct result *const *runs, int nruns,
               const struct result *aggs);
int report_json(const struct bench_cfg *cfg, struct result *const *runs, int nruns,
                const struct result *aggs);

#endif
