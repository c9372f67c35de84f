/* vecgate_bench.c: load generator for vecgate and whatever it is compared
 * with. N client threads, each with its own blocking libmariadb connection,
 * run one workload against each target in turn, alternating in rounds so that
 * drift on a shared machine hits every target alike. Reports latency
 * percentiles, throughput, errors and, with --pid, the CPU a proxy process
 * spent per statement. */
#include "bench.h"
#include "hist.h"
#include "report.h"
#include "workload.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum phase { PHASE_CONNECT, PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };

/* What the client threads of one measurement share. */
struct run {
	const struct bench_cfg *cfg;
	struct bench_target *target;
	int nthreads;
	_Atomic int phase;
	_Atomic int ready;        /* threads connected and initialised */
	_Atomic int finished;     /* threads out of their loop */
	_Atomic uint64_t claimed; /* --requests: statements handed out in the window */
	uint64_t pace_start_ns;   /* --rate: when the schedule starts */
	double pace_interval_ns;  /* --rate: per thread */
	/* The connect phase's hand-overs, so that a thousand waiting threads
	 * sleep instead of polling (which would starve the server under test
	 * on a small machine): ready_cv tells the main thread a client is
	 * ready, phase_cv the clients that the phase changed. */
	pthread_mutex_t gate;
	pthread_cond_t ready_cv, phase_cv;
};

struct client {
	pthread_t tid;
	struct run *run;
	struct wl_thread wl;
	struct hist hist;
	struct hist read_hist;     /* WL_WRITES: the statements that were not writes */
	_Atomic uint64_t progress; /* statements done in the window, read by the progress line */
	uint64_t ops, errors, reads;
	char first_error[BENCH_ERR_LEN];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double now_unix(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until_ns(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u),
	                      .tv_nsec = (long)(t % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void sleep_ms(unsigned ms)
{
	sleep_until_ns(now_ns() + (uint64_t)ms * 1000000u);
}

/* CPU seconds (user + system, all threads) process pid has used, from
 * /proc/PID/stat fields 14 and 15, and the system part in *sys; -1 if it
 * cannot be read. */
static double proc_cpu_seconds(int pid, double *sys)
{
	*sys = -1;
	if (pid <= 0)
		return -1;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long utime, stime;
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
	           &stime) != 2)
		return -1;
	double hz = (double)sysconf(_SC_CLK_TCK);
	*sys = (double)stime / hz;
	return (double)(utime + stime) / hz;
}

static double self_cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Busy and total jiffies of the whole machine, from /proc/stat. */
static bool host_jiffies(unsigned long long *busy, unsigned long long *total)
{
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return false;
	unsigned long long v[8] = {0};
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	               &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5)
		return false;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*busy = *total - v[3] - v[4]; /* minus idle and iowait */
	return true;
}

/* prefix + text into dst, cut to fit. */
static void set_text(char *dst, size_t size, const char *prefix, const char *text)
{
	size_t p = strlen(prefix), t = strlen(text);
	if (p > size - 1)
		p = size - 1;
	memcpy(dst, prefix, p);
	if (t > size - 1 - p)
		t = size - 1 - p;
	memcpy(dst + p, text, t);
	dst[p + t] = '\0';
}

static void client_error(struct client *c, bool measured, const char *prefix, const char *err)
{
	if (!measured)
		return;
	if (!c->errors)
		set_text(c->first_error, sizeof(c->first_error), prefix, err);
	c->errors++;
	atomic_fetch_add_explicit(&c->progress, 1, memory_order_relaxed);
}

/* Opens the thread's connection and runs thread_init; false with err on failure. */
static bool client_open(struct client *c, char *err, size_t errlen)
{
	const struct workload *w = c->run->cfg->workload;
	if (!(w->flags & WL_OWN_CONNECTION)) {
		c->wl.conn = bench_connect(c->run->cfg, c->run->target, err, errlen);
		if (!c->wl.conn)
			return false;
	}
	if (w->thread_init && w->thread_init(&c->wl, err, errlen) != 0) {
		if (w->thread_done)
			w->thread_done(&c->wl);
		if (c->wl.conn)
			mysql_close(c->wl.conn);
		c->wl.conn = NULL;
		return false;
	}
	return true;
}

static void client_close(struct client *c)
{
	const struct workload *w = c->run->cfg->workload;
	if (w->thread_done)
		w->thread_done(&c->wl);
	if (c->wl.conn)
		mysql_close(c->wl.conn);
	c->wl.conn = NULL;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct run *run = c->run;
	const struct bench_cfg *cfg = run->cfg;
	const struct workload *w = cfg->workload;
	char err[BENCH_ERR_LEN];
	bool open = client_open(c, err, sizeof(err));
	/* A thread that cannot connect keeps trying in the loop below; its first
	 * failure is kept in case no measured attempt fails the same way. */
	if (!open)
		set_text(c->first_error, sizeof(c->first_error), "connect: ", err);
	pthread_mutex_lock(&run->gate);
	atomic_fetch_add(&run->ready, 1);
	pthread_cond_signal(&run->ready_cv);
	while (atomic_load(&run->phase) == PHASE_CONNECT)
		pthread_cond_wait(&run->phase_cv, &run->gate);
	pthread_mutex_unlock(&run->gate);

	uint64_t next = run->pace_start_ns +
	                (uint64_t)(run->pace_interval_ns * c->wl.index / run->nthreads);
	for (;;) {
		int ph = atomic_load_explicit(&run->phase, memory_order_acquire);
		if (ph == PHASE_STOP || interrupted)
			break;
		bool measured = ph == PHASE_MEASURE;
		if (measured && cfg->requests &&
		    atomic_fetch_add_explicit(&run->claimed, 1, memory_order_relaxed) >=
		            cfg->requests)
			break;
		uint64_t start;
		if (run->pace_interval_ns > 0) {
			/* Open loop: latency counts from when the statement was due, so a
			 * stall shows in the percentiles instead of slowing the schedule. */
			next += (uint64_t)run->pace_interval_ns;
			if (next > now_ns())
				sleep_until_ns(next);
			start = next;
		} else {
			start = now_ns();
		}
		if (!open) {
			open = client_open(c, err, sizeof(err));
			if (!open) {
				client_error(c, measured, "connect: ", err);
				sleep_ms(100);
				continue;
			}
		}
		c->wl.broken = false;
		c->wl.write = false;
		int rc = w->run(&c->wl, err, sizeof(err));
		uint64_t end = now_ns();
		if (rc == 0) {
			if (measured) {
				hist_record(&c->hist, end - start);
				if (!c->wl.write) {
					hist_record(&c->read_hist, end - start);
					c->reads++;
				}
				c->ops++;
				atomic_fetch_add_explicit(&c->progress, 1, memory_order_relaxed);
			}
			continue;
		}
		client_error(c, measured, "", err);
		if (c->wl.broken || (c->wl.conn && bench_conn_broken(c->wl.conn))) {
			client_close(c);
			open = false;
		}
	}
	if (open)
		client_close(c);
	atomic_fetch_add(&run->finished, 1);
	return NULL;
}

static uint64_t sum_progress(struct client *cl, int n)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += atomic_load_explicit(&cl[i].progress, memory_order_relaxed);
	return s;
}

static void progress_line(const struct bench_cfg *cfg, const struct run *run, int round,
                          double elapsed, uint64_t done, uint64_t last, double dt)
{
	if (cfg->quiet)
		return;
	char goal[48];
	if (cfg->requests)
		snprintf(goal, sizeof(goal), "%" PRIu64 "/%" PRIu64 " stmts", done, cfg->requests);
	else
		snprintf(goal, sizeof(goal), "%.0f/%.0f s, %" PRIu64 " stmts", elapsed,
		         cfg->duration, done);
	fprintf(stderr, "%s[%s, %d thr, round %d/%d] %s, %.0f qps now%s", isatty(2) ? "\r" : "",
	        run->target->name, run->nthreads, round, cfg->rounds, goal,
	        dt > 0 ? (double)(done - last) / dt : 0, isatty(2) ? "   " : "\n");
	fflush(stderr);
}

/* One measurement: nthreads clients against target t. Fills r (r->hist too). */
static int measure(struct bench_cfg *cfg, int ti, int nthreads, int round, struct result *r)
{
	struct bench_target *t = &cfg->targets[ti];
	struct run run = {.cfg = cfg, .target = t, .nthreads = nthreads};
	atomic_init(&run.phase, PHASE_CONNECT);
	pthread_mutex_init(&run.gate, NULL);
	pthread_cond_init(&run.ready_cv, NULL);
	pthread_cond_init(&run.phase_cv, NULL);
	atomic_init(&run.ready, 0);
	atomic_init(&run.finished, 0);
	atomic_init(&run.claimed, 0);
	if (cfg->rate > 0)
		run.pace_interval_ns = 1e9 * nthreads / cfg->rate;
	struct client *cl = calloc((size_t)nthreads, sizeof(*cl));
	if (!cl)
		return -1;
	int started = 0;
	for (int i = 0; i < nthreads; i++) {
		cl[i].run = &run;
		cl[i].wl.cfg = cfg;
		cl[i].wl.target = t;
		cl[i].wl.index = i;
		cl[i].wl.rng = cfg->seed ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL) ^
		               ((uint64_t)round << 32) ^ (uint64_t)ti;
		bench_rand(&cl[i].wl.rng);
		hist_init(&cl[i].hist);
		hist_init(&cl[i].read_hist);
		atomic_init(&cl[i].progress, 0);
		if (pthread_create(&cl[i].tid, NULL, client_main, &cl[i]) != 0) {
			fprintf(stderr, "vecgate_bench: pthread_create failed after %d threads\n",
			        i);
			break;
		}
		started++;
	}
	run.nthreads = started;
	pthread_mutex_lock(&run.gate);
	while (atomic_load(&run.ready) < started)
		pthread_cond_wait(&run.ready_cv, &run.gate);
	run.pace_start_ns = now_ns();
	atomic_store(&run.phase, PHASE_WARMUP);
	pthread_cond_broadcast(&run.phase_cv);
	pthread_mutex_unlock(&run.gate);

	if (cfg->warmup > 0)
		sleep_until_ns(run.pace_start_ns + (uint64_t)(cfg->warmup * 1e9));

	unsigned long long busy0 = 0, total0 = 0, busy1 = 0, total1 = 0;
	bool have_host = host_jiffies(&busy0, &total0);
	double psys0, psys1, dsys;
	double proxy0 = proc_cpu_seconds(t->pid, &psys0),
	       db0 = proc_cpu_seconds(cfg->server_pid, &dsys);
	double self0 = self_cpu_seconds();
	uint64_t t0 = now_ns();
	r->start_unix = now_unix();
	atomic_store_explicit(&run.phase, PHASE_MEASURE, memory_order_release);

	uint64_t last = 0, last_t = t0, t1;
	for (;;) {
		uint64_t tick = last_t + 1000000000u;
		if (cfg->requests) {
			/* Wake often to end the window as soon as the last statement is done. */
			while (atomic_load(&run.finished) < started && now_ns() < tick &&
			       !interrupted)
				sleep_ms(5);
			if (atomic_load(&run.finished) >= started || interrupted)
				break;
		} else {
			uint64_t end = t0 + (uint64_t)(cfg->duration * 1e9);
			sleep_until_ns(tick < end ? tick : end);
			if (now_ns() >= end || interrupted)
				break;
		}
		uint64_t now = now_ns(), done = sum_progress(cl, started);
		progress_line(cfg, &run, round, (double)(now - t0) / 1e9, done, last,
		              (double)(now - last_t) / 1e9);
		last = done;
		last_t = now;
	}
	t1 = now_ns();
	double proxy1 = proc_cpu_seconds(t->pid, &psys1),
	       db1 = proc_cpu_seconds(cfg->server_pid, &dsys);
	double self1 = self_cpu_seconds();
	have_host = host_jiffies(&busy1, &total1) && have_host;
	atomic_store(&run.phase, PHASE_STOP);
	for (int i = 0; i < started; i++)
		pthread_join(cl[i].tid, NULL);
	pthread_cond_destroy(&run.phase_cv);
	pthread_cond_destroy(&run.ready_cv);
	pthread_mutex_destroy(&run.gate);
	if (!cfg->quiet && isatty(2))
		fprintf(stderr, "\r\033[K");

	r->seconds = (double)(t1 - t0) / 1e9;
	r->proxy_cpu = proxy0 >= 0 && proxy1 >= 0 ? proxy1 - proxy0 : -1;
	r->proxy_sys = r->proxy_cpu >= 0 ? psys1 - psys0 : -1;
	r->db_cpu = db0 >= 0 && db1 >= 0 ? db1 - db0 : -1;
	r->bench_cpu = self1 - self0;
	r->host_busy = have_host && total1 > total0
	                       ? (double)(busy1 - busy0) / (double)(total1 - total0)
	                       : -1;
	for (int i = 0; i < started; i++) {
		hist_merge(&r->hist, &cl[i].hist);
		hist_merge(&r->read_hist, &cl[i].read_hist);
		r->ops += cl[i].ops;
		r->reads += cl[i].reads;
		if (!r->errors && cl[i].errors)
			snprintf(r->first_error, sizeof(r->first_error), "%s", cl[i].first_error);
		r->errors += cl[i].errors;
	}
	/* Threads that never connected and made no measured attempt still count. */
	for (int i = 0; i < started && !r->errors; i++)
		if (cl[i].first_error[0] && !cl[i].errors) {
			snprintf(r->first_error, sizeof(r->first_error), "%s", cl[i].first_error);
			r->errors = 1;
		}
	if (started < nthreads && !r->errors) {
		snprintf(r->first_error, sizeof(r->first_error), "only %d of %d threads started",
		         started, nthreads);
		r->errors = 1;
	}
	free(cl);
	return 0;
}

/* Runs the workload's setup on a connection of the target's own and records
 * the TLS cipher and server version it saw. */
static int target_setup(const struct bench_cfg *cfg, struct bench_target *t, char *err,
                        size_t errlen)
{
	MYSQL *c = bench_connect(cfg, t, err, errlen);
	if (!c)
		return -1;
	const char *cipher = mysql_get_ssl_cipher(c);
	snprintf(t->tls_cipher, sizeof(t->tls_cipher), "%s", cipher ? cipher : "none");
	snprintf(t->server_version, sizeof(t->server_version), "%s", mysql_get_server_info(c));
	int rc = 0;
	if (cfg->workload->setup)
		rc = cfg->workload->setup(cfg, t, c, err, errlen);
	mysql_close(c);
	if (rc == 0)
		t->set_up = true;
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: vecgate-bench --targets NAME=HOST:PORT[,...] [options]\n"
	        "\n"
	        "Runs one workload with N client threads (one blocking connection each)\n"
	        "against each target in turn; with --rounds R the targets alternate R times\n"
	        "(t1,t2,t1,t2,...) so drift on the machine hits them alike.\n"
	        "\n"
	        "Targets and login:\n"
	        "  --targets LIST       name=host:port, comma separated (a bare host:port is its "
	        "own name)\n"
	        "  --user USER          (root)      --password PASS  ('')\n"
	        "  --database DB        default schema of every connection (none)\n"
	        "  --tls                TLS to the target, verified: needs --ssl-ca (or the system "
	        "store)\n"
	        "  --ssl-ca FILE        CA the target's certificate must chain to\n"
	        "  --timeout SECONDS    connect/read/write timeout per statement (10)\n"
	        "\n"
	        "Load:\n"
	        "  --workload NAME      point (default), connect, sql, knn, mixed\n"
	        "  --workload-sql SQL   run SQL (implies --workload sql)\n"
	        "  --prepared           prepared statements (binary protocol) instead of text "
	        "queries\n"
	        "  --multi-statements   log in with CLIENT_MULTI_STATEMENTS (for \"SELECT 1; "
	        "SELECT 2\")\n"
	        "  --rows N             point: rows of vecgate_bench.sbtest when it is created "
	        "(10000)\n"
	        "  --param KEY=VALUE    a workload parameter (repeatable)\n"
	        "  --table DB.T --column C --metric cosine|l2|l1|negip --k N --dim D\n"
	        "  --queries FILE.npy|FILE.fvecs --write-share P\n"
	        "                       knn and mixed: see bench/README.md (same as --param "
	        "KEY=VALUE)\n"
	        "  --threads N[,N...]   client threads; a list runs each (1)\n"
	        "  --duration SECONDS   measured time per target per round (10)\n"
	        "  --requests N         measure N statements instead of a duration\n"
	        "  --warmup SECONDS     unmeasured load before each measurement (2)\n"
	        "  --rate QPS           open loop: this many statements per second in total, "
	        "latency\n"
	        "                       counted from when each was due (default: closed loop)\n"
	        "  --rounds R           alternate the targets R times (1)\n"
	        "  --seed N             random seed (fixed by default, so runs pick the same ids)\n"
	        "\n"
	        "Measuring and output:\n"
	        "  --pid NAME=PID       charge process PID's CPU time to target NAME (repeatable, "
	        "or comma list)\n"
	        "  --server-pid PID     the database process: its CPU per statement, for every "
	        "target\n"
	        "  --csv FILE           one row per measurement, then one per target and thread "
	        "count\n"
	        "  --json FILE          the same, with the settings and the ratios\n"
	        "  --label TEXT         copied into the CSV and JSON\n"
	        "  --quiet              no progress line on stderr\n"
	        "\n"
	        "Workloads:\n");
	for (int i = 0; bench_workloads[i]; i++)
		fprintf(f, "  %-10s %s\n", bench_workloads[i]->name, bench_workloads[i]->summary);
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return false;
	*out = v;
	return true;
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < 0)
		return false;
	*out = v;
	return true;
}

/* "name=host:port" or "host:port" (then named host:port); host may be [v6]. */
static bool parse_target(char *spec, struct bench_target *t)
{
	char *eq = strchr(spec, '=');
	char *addr = eq ? eq + 1 : spec;
	char *colon = strrchr(addr, ':');
	uint64_t port;
	if (!colon || colon == addr || !parse_u64(colon + 1, &port) || port == 0 || port > 65535)
		return false;
	t->port = (unsigned)port;
	if (eq)
		snprintf(t->name, sizeof(t->name), "%.*s", (int)(eq - spec), spec);
	else
		snprintf(t->name, sizeof(t->name), "%s", addr);
	if (addr[0] == '[' && colon[-1] == ']')
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(colon - addr - 2), addr + 1);
	else
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(colon - addr), addr);
	return t->name[0] != '\0' && t->host[0] != '\0';
}

enum {
	OPT_TARGETS = 256,
	OPT_USER,
	OPT_PASSWORD,
	OPT_DATABASE,
	OPT_TLS,
	OPT_SSL_CA,
	OPT_THREADS,
	OPT_DURATION,
	OPT_REQUESTS,
	OPT_WARMUP,
	OPT_RATE,
	OPT_ROUNDS,
	OPT_WORKLOAD,
	OPT_WORKLOAD_SQL,
	OPT_PREPARED,
	OPT_ROWS,
	OPT_PARAM,
	OPT_PID,
	OPT_SERVER_PID,
	OPT_CSV,
	OPT_JSON,
	OPT_LABEL,
	OPT_QUIET,
	OPT_TIMEOUT,
	OPT_SEED,
	OPT_MULTI,
	OPT_HELP,
	OPT_WL_PARAM = 1024, /* + index in wl_opt_names */
};

/* Workload options kept as --param NAME=VALUE (workloads read them with bench_param). */
static const char *const wl_opt_names[] = {"table", "column",  "metric",     "k",
                                           "dim",   "queries", "write-share"};
#define WL_OPT_COUNT (int)(sizeof(wl_opt_names) / sizeof(wl_opt_names[0]))

static const struct option long_opts[] = {
        {"targets", required_argument, NULL, OPT_TARGETS},
        {"user", required_argument, NULL, OPT_USER},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"database", required_argument, NULL, OPT_DATABASE},
        {"tls", no_argument, NULL, OPT_TLS},
        {"ssl-ca", required_argument, NULL, OPT_SSL_CA},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"requests", required_argument, NULL, OPT_REQUESTS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"rate", required_argument, NULL, OPT_RATE},
        {"rounds", required_argument, NULL, OPT_ROUNDS},
        {"workload", required_argument, NULL, OPT_WORKLOAD},
        {"workload-sql", required_argument, NULL, OPT_WORKLOAD_SQL},
        {"prepared", no_argument, NULL, OPT_PREPARED},
        {"multi-statements", no_argument, NULL, OPT_MULTI},
        {"rows", required_argument, NULL, OPT_ROWS},
        {"param", required_argument, NULL, OPT_PARAM},
        {"pid", required_argument, NULL, OPT_PID},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"csv", required_argument, NULL, OPT_CSV},
        {"json", required_argument, NULL, OPT_JSON},
        {"label", required_argument, NULL, OPT_LABEL},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"seed", required_argument, NULL, OPT_SEED},
        {"help", no_argument, NULL, OPT_HELP},
        {"table", required_argument, NULL, OPT_WL_PARAM + 0},
        {"column", required_argument, NULL, OPT_WL_PARAM + 1},
        {"metric", required_argument, NULL, OPT_WL_PARAM + 2},
        {"k", required_argument, NULL, OPT_WL_PARAM + 3},
        {"dim", required_argument, NULL, OPT_WL_PARAM + 4},
        {"queries", required_argument, NULL, OPT_WL_PARAM + 5},
        {"write-share", required_argument, NULL, OPT_WL_PARAM + 6},
        {NULL, 0, NULL, 0},
};

#define BAD(...)                                                                                   \
	do {                                                                                       \
		fprintf(stderr, "vecgate-bench: " __VA_ARGS__);                                    \
		fputc('\n', stderr);                                                               \
		return false;                                                                      \
	} while (0)

/* Copies of list arguments, which strtok_r cuts up in place, so that ps still
 * shows the command as given. Freed once the options are parsed. */
struct arg_copies {
	char *p[64];
	int n;
};

static bool parse_opts(int argc, char **argv, struct bench_cfg *cfg, struct arg_copies *ac);

static bool parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
	struct arg_copies ac = {.n = 0};
	bool ok = parse_opts(argc, argv, cfg, &ac);
	for (int i = 0; i < ac.n; i++)
		free(ac.p[i]);
	return ok;
}

static bool parse_opts(int argc, char **argv, struct bench_cfg *cfg, struct arg_copies *ac)
{
	char *pids[BENCH_MAX_TARGETS * 2];
	int npids = 0;
	int opt;
	uint64_t u;
	while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		if (opt == OPT_TARGETS || opt == OPT_THREADS || opt == OPT_PID) {
			if (ac->n == (int)(sizeof(ac->p) / sizeof(ac->p[0])) ||
			    !(ac->p[ac->n] = strdup(optarg)))
				BAD("too many lists, or out of memory");
			optarg = ac->p[ac->n++];
		}
		switch (opt) {
		case OPT_TARGETS:
			for (char *save = NULL, *s = strtok_r(optarg, ",", &save); s;
			     s = strtok_r(NULL, ",", &save)) {
				if (cfg->ntargets == BENCH_MAX_TARGETS)
					BAD("at most %d targets", BENCH_MAX_TARGETS);
				if (!parse_target(s, &cfg->targets[cfg->ntargets]))
					BAD("bad target '%s': want name=host:port", s);
				cfg->ntargets++;
			}
			break;
		case OPT_USER:
			cfg->user = optarg;
			break;
		case OPT_PASSWORD:
			cfg->password = optarg;
			break;
		case OPT_DATABASE:
			cfg->database = optarg;
			break;
		case OPT_TLS:
			cfg->tls = true;
			break;
		case OPT_SSL_CA:
			cfg->ssl_ca = optarg;
			break;
		case OPT_THREADS:
			cfg->nthreads = 0;
			for (char *save = NULL, *s = strtok_r(optarg, ",", &save); s;
			     s = strtok_r(NULL, ",", &save)) {
				if (!parse_u64(s, &u) || u < 1 || u > 10000)
					BAD("bad thread count '%s' (1..10000)", s);
				if (cfg->nthreads == BENCH_MAX_THREADS_LIST)
					BAD("at most %d thread counts", BENCH_MAX_THREADS_LIST);
				cfg->threads[cfg->nthreads++] = (int)u;
			}
			break;
		case OPT_DURATION:
			if (!parse_double(optarg, &cfg->duration) || cfg->duration <= 0)
				BAD("bad --duration '%s'", optarg);
			cfg->requests = 0;
			break;
		case OPT_REQUESTS:
			if (!parse_u64(optarg, &cfg->requests) || !cfg->requests)
				BAD("bad --requests '%s'", optarg);
			cfg->duration = 0;
			break;
		case OPT_WARMUP:
			if (!parse_double(optarg, &cfg->warmup))
				BAD("bad --warmup '%s'", optarg);
			break;
		case OPT_RATE:
			if (!parse_double(optarg, &cfg->rate))
				BAD("bad --rate '%s'", optarg);
			break;
		case OPT_ROUNDS:
			if (!parse_u64(optarg, &u) || u < 1 || u > 1000)
				BAD("bad --rounds '%s'", optarg);
			cfg->rounds = (int)u;
			break;
		case OPT_WORKLOAD:
			if (!(cfg->workload = workload_find(optarg)))
				BAD("unknown workload '%s' (see --help)", optarg);
			break;
		case OPT_WORKLOAD_SQL:
			cfg->sql = optarg;
			cfg->workload = &wl_sql;
			break;
		case OPT_PREPARED:
			cfg->prepared = true;
			break;
		case OPT_MULTI:
			cfg->multi_statements = true;
			break;
		case OPT_ROWS:
			if (!parse_u64(optarg, &cfg->rows) || !cfg->rows || cfg->rows > 2000000000u)
				BAD("bad --rows '%s'", optarg);
			break;
		case OPT_PARAM:
			if (cfg->nparams == BENCH_MAX_PARAMS || !strchr(optarg, '='))
				BAD("bad --param '%s': want key=value", optarg);
			cfg->params[cfg->nparams++] = optarg;
			break;
		case OPT_PID:
			for (char *save = NULL, *s = strtok_r(optarg, ",", &save); s;
			     s = strtok_r(NULL, ",", &save)) {
				if (npids == (int)(sizeof(pids) / sizeof(pids[0])))
					BAD("too many --pid");
				pids[npids++] = s;
			}
			break;
		case OPT_SERVER_PID:
			if (!parse_u64(optarg, &u) || !u || u > 0x7fffffff)
				BAD("bad --server-pid '%s'", optarg);
			cfg->server_pid = (int)u;
			break;
		case OPT_CSV:
			cfg->csv = optarg;
			break;
		case OPT_JSON:
			cfg->json = optarg;
			break;
		case OPT_LABEL:
			cfg->label = optarg;
			break;
		case OPT_QUIET:
			cfg->quiet = true;
			break;
		case OPT_TIMEOUT:
			if (!parse_u64(optarg, &u) || !u || u > 3600)
				BAD("bad --timeout '%s'", optarg);
			cfg->timeout = (unsigned)u;
			break;
		case OPT_SEED:
			if (!parse_u64(optarg, &cfg->seed))
				BAD("bad --seed '%s'", optarg);
			break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			if (opt >= OPT_WL_PARAM && opt < OPT_WL_PARAM + WL_OPT_COUNT) {
				static char kv[BENCH_MAX_PARAMS][1024];
				if (cfg->nparams == BENCH_MAX_PARAMS ||
				    snprintf(kv[cfg->nparams], sizeof(kv[0]), "%s=%s",
				             wl_opt_names[opt - OPT_WL_PARAM],
				             optarg) >= (int)sizeof(kv[0]))
					BAD("too many workload options, or too long: '%s'", optarg);
				cfg->params[cfg->nparams] = kv[cfg->nparams];
				cfg->nparams++;
				break;
			}
			return false;
		}
	}
	if (optind < argc)
		BAD("unexpected argument '%s'", argv[optind]);
	if (!cfg->ntargets)
		BAD("--targets is required (see --help)");
	if (cfg->workload == &wl_sql && !cfg->sql)
		BAD("--workload sql needs --workload-sql \"...\"");
	if (cfg->ssl_ca && !cfg->tls)
		BAD("--ssl-ca needs --tls");
	for (int i = 0; i < npids; i++) {
		char *eq = strchr(pids[i], '=');
		if (!eq || !parse_u64(eq + 1, &u) || !u || u > 0x7fffffff)
			BAD("bad --pid '%s': want name=PID", pids[i]);
		*eq = '\0';
		int found = 0;
		for (int t = 0; t < cfg->ntargets; t++)
			if (strcmp(cfg->targets[t].name, pids[i]) == 0) {
				cfg->targets[t].pid = (int)u;
				found = 1;
			}
		if (!found)
			BAD("--pid names '%s', which is not a target", pids[i]);
		double sys;
		if (proc_cpu_seconds((int)u, &sys) < 0)
			BAD("--pid %s=%" PRIu64 ": cannot read /proc/%" PRIu64 "/stat", pids[i], u,
			    u);
	}
	return true;
}

int main(int argc, char **argv)
{
	static struct bench_cfg cfg = {
	        .user = "root",
	        .password = "",
	        .threads = {1},
	        .nthreads = 1,
	        .duration = 10,
	        .warmup = 2,
	        .rounds = 1,
	        .timeout = 10,
	        .workload = &wl_point,
	        .rows = 10000,
	        .seed = 42,
	};
	if (!parse_args(argc, argv, &cfg))
		return 2;
	if (mysql_library_init(0, NULL, NULL) != 0) {
		fprintf(stderr, "vecgate-bench: mysql_library_init failed\n");
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	printf("vecgate-bench: workload %s (%s), client TLS %s, ", cfg.workload->name,
	       cfg.prepared ? "prepared statements" : "text queries", cfg.tls ? "on" : "off");
	if (cfg.sql)
		printf("\"%s\", ", cfg.sql);
	if (cfg.requests)
		printf("%" PRIu64 " statements", cfg.requests);
	else
		printf("%.1f s", cfg.duration);
	printf(" per target per round after %.1f s warm-up, %d round%s, %s\n", cfg.warmup,
	       cfg.rounds, cfg.rounds > 1 ? "s" : "", cfg.rate > 0 ? "open loop" : "closed loop");
	if (cfg.rate > 0)
		printf("open loop at %.1f statements/s in total; latency counted from when each "
		       "was due\n",
		       cfg.rate);

	int failed_setup = 0;
	for (int i = 0; i < cfg.ntargets; i++) {
		struct bench_target *t = &cfg.targets[i];
		char err[BENCH_ERR_LEN];
		if (target_setup(&cfg, t, err, sizeof(err)) != 0) {
			printf("target %-12s %s:%u: SETUP FAILED: %s (skipped)\n", t->name, t->host,
			       t->port, err);
			failed_setup++;
			continue;
		}
		printf("target %-12s %s:%u  server %s  TLS %s", t->name, t->host, t->port,
		       t->server_version, t->tls_cipher);
		if (t->pid)
			printf("  pid %d", t->pid);
		printf("\n");
	}
	if (cfg.server_pid)
		printf("database pid %d: its CPU per statement is the 'db' column\n",
		       cfg.server_pid);
	printf("\n");
	fflush(stdout);

	int maxruns = cfg.nthreads * cfg.rounds * cfg.ntargets;
	struct result **runs = calloc((size_t)maxruns, sizeof(*runs));
	struct result *aggs = calloc((size_t)(cfg.nthreads * cfg.ntargets), sizeof(*aggs));
	if (!runs || !aggs)
		return 1;
	int nruns = 0;
	bool any_errors = false;
	report_header(&cfg);
	for (int ti = 0; ti < cfg.nthreads && !interrupted; ti++) {
		for (int round = 1; round <= cfg.rounds && !interrupted; round++) {
			for (int t = 0; t < cfg.ntargets && !interrupted; t++) {
				if (!cfg.targets[t].set_up)
					continue;
				struct result *r = calloc(1, sizeof(*r));
				if (!r)
					return 1;
				hist_init(&r->hist);
				hist_init(&r->read_hist);
				r->target = t;
				r->threads = cfg.threads[ti];
				r->round = round;
				r->nrounds = 1;
				if (measure(&cfg, t, cfg.threads[ti], round, r) != 0) {
					free(r);
					continue;
				}
				runs[nruns++] = r;
				any_errors |= r->errors != 0;
				report_line(&cfg, r);
				fflush(stdout);
			}
		}
	}
	report_summary(&cfg, runs, nruns, aggs);
	int rc = 0;
	if (cfg.csv && report_csv(&cfg, runs, nruns, aggs) != 0) {
		fprintf(stderr, "vecgate-bench: cannot write %s: %s\n", cfg.csv, strerror(errno));
		rc = 1;
	}
	if (cfg.json && report_json(&cfg, runs, nruns, aggs) != 0) {
		fprintf(stderr, "vecgate-bench: cannot write %s: %s\n", cfg.json, strerror(errno));
		rc = 1;
	}
	for (int i = 0; i < cfg.ntargets; i++)
		if (cfg.targets[i].shared && cfg.workload->teardown)
			cfg.workload->teardown(&cfg.targets[i]);
	for (int i = 0; i < nruns; i++)
		free(runs[i]);
	free(runs);
	free(aggs);
	mysql_library_end();
	if (interrupted)
		return 130;
	return rc ? rc : (failed_setup || any_errors) ? 1 : 0;
}
