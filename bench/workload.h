/* workload.h: the interface every vecgate_bench workload implements.
 *
 * The driver calls, for each target: setup() once on a connection of its own
 * (create and fill tables, read what every thread needs), then in each client
 * thread thread_init() once on the thread's connection, run() once per measured
 * statement, thread_done() before the connection closes. A run() that fails
 * returns -1 with a message; when the connection is broken (bench_conn_broken)
 * the driver reconnects and calls thread_init() again.
 *
 * A workload with WL_OWN_CONNECTION gets no connection (t->conn is NULL) and
 * opens and closes its own inside run(): logins are what it measures.
 *
 * A workload with WL_WRITES mixes reads and writes: run() sets th->write for
 * a write (the driver clears it before each call), and the driver keeps the
 * other statements' (the reads') count and latencies apart as well. */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include "bench.h"

enum { WL_OWN_CONNECTION = 1u << 0, WL_WRITES = 1u << 1 };

struct wl_thread {
	const struct bench_cfg *cfg;
	struct bench_target *target;
	MYSQL *conn; /* the thread's connection; NULL with WL_OWN_CONNECTION */
	void *state; /* the workload's per-thread data, freed by thread_done */
	uint64_t rng;
	int index;   /* 0 .. threads-1 */
	bool broken; /* set by run() when the connection must be reopened (the
	                driver also checks bench_conn_broken on conn) */
	bool write;  /* WL_WRITES: set by run() when the request was a write */
};

struct workload {
	const char *name;
	const char *summary; /* one line for --help */
	unsigned flags;
	/* Once per target on conn (never NULL, even with WL_OWN_CONNECTION). May set
	 * t->shared. Returns 0, or -1 with a message in err. Optional. */
	int (*setup)(const struct bench_cfg *cfg, struct bench_target *t, MYSQL *conn, char *err,
	             size_t errlen);
	/* Once per thread connection: prepare statements, allocate state. Optional. */
	int (*thread_init)(struct wl_thread *th, char *err, size_t errlen);
	/* One measured request. 0, or -1 with a message in err. */
	int (*run)(struct wl_thread *th, char *err, size_t errlen);
	/* Frees th->state (statements first); the connection is still open if it was. Optional. */
	void (*thread_done)(struct wl_thread *th);
	/* Frees t->shared. Optional. */
	void (*teardown)(struct bench_target *t);
};

extern const struct workload wl_point;
extern const struct workload wl_connect;
extern const struct workload wl_sql;
extern const struct workload wl_knn;
extern const struct workload wl_mixed;

/* Every workload, NULL-terminated; new ones (kNN) are added here. */
extern const struct workload *const bench_workloads[];

const struct workload *workload_find(const char *name);

#endif
