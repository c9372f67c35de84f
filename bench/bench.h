/* bench.h: what vecgate_bench's parts share: the run configuration, targets,
 * connection helpers and a per-thread random generator. */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#define BENCH_MAX_TARGETS      16
#define BENCH_MAX_THREADS_LIST 16
#define BENCH_MAX_PARAMS       32
#define BENCH_ERR_LEN          512

struct workload;

struct bench_target {
	char name[64];
	char host[256];
	unsigned port;
	int pid;      /* process whose CPU time is charged to this target; 0 = none */
	void *shared; /* what the workload's setup() left for this target */
	bool set_up;
	char tls_cipher[96]; /* cipher the setup connection negotiated, "none" without TLS */
	char server_version[96];
};

struct bench_cfg {
	struct bench_target targets[BENCH_MAX_TARGETS];
	int ntargets;
	const char *user;
	const char *password;
	const char *database; /* default schema for every connection; NULL = none */
	bool tls;
	const char *ssl_ca;
	int threads[BENCH_MAX_THREADS_LIST];
	int nthreads;
	double duration;   /* seconds measured per target per round (0 with requests) */
	uint64_t requests; /* statements measured per target per round (0 with duration) */
	double warmup;     /* seconds run and thrown away before each measurement */
	double rate;       /* total statements per second, open loop; 0 = closed loop */
	int rounds;
	unsigned timeout; /* seconds for connect, read and write */
	const struct workload *workload;
	bool prepared;
	bool multi_statements; /* log in with CLIENT_MULTI_STATEMENTS */
	uint64_t rows;
	const char *sql;                      /* --workload-sql */
	const char *params[BENCH_MAX_PARAMS]; /* --param key=value, for workloads */
	int nparams;
	int server_pid; /* --server-pid: the database, reported for every target */
	const char *csv;
	const char *json;
	const char *label; /* free text copied into csv/json (e.g. "tls" / "plain") */
	bool quiet;
	uint64_t seed;
};

/* Opens a connection to target t with cfg's user, TLS and timeouts. Returns the
 * handle, or NULL with the client library's message in err. The caller closes it. */
MYSQL *bench_connect(const struct bench_cfg *cfg, const struct bench_target *t, char *err,
                     size_t errlen);

/* Reads and frees every result of the last text query on c. Returns the number
 * of rows of the first result set, or -1 with the error in err. */
long bench_drain(MYSQL *c, char *err, size_t errlen);

/* Copies c's last error as "ERRNO (SQLSTATE): message" into err. */
void bench_conn_error(MYSQL *c, char *err, size_t errlen);

/* Copies st's last error as "[what: ]ERRNO (SQLSTATE): message" into err
 * (what may be NULL) and returns whether it was a client-side error
 * (2000-2999) that leaves the connection unusable. */
bool bench_stmt_error(MYSQL_STMT *st, const char *what, char *err, size_t errlen);

/* True when the error on c means the connection is unusable (lost, timed out,
 * never open), so the thread must reconnect. */
bool bench_conn_broken(MYSQL *c);

/* Value of --param key=value for key, or def. */
const char *bench_param(const struct bench_cfg *cfg, const char *key, const char *def);

/* xorshift64*: fast, per thread, good enough for picking ids. */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n). */
static inline uint64_t bench_rand_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)bench_rand(s) * n) >> 64);
}

#endif
