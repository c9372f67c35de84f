/* Loading a cached table: its columns and keys from information_schema,
 * then every row, in one consistent read, into a base segment (segment.h).
 *
 * The rows come as fast as the database sends them: vectors are parsed on
 * several threads while one connection reads (a pipeline), and on TiDB a
 * table with a single-column integer primary key is read over several
 * connections, each a range of the key, all at one timestamp (TiDB's
 * tidb_snapshot), so the parts make one snapshot (docs/design.md §6).
 * Blocking: call it on a pool thread. */
#ifndef VECGATE_CACHE_LOADER_H
#define VECGATE_CACHE_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "cache/segment.h"
#include "cache/snapshot.h" /* struct cache_load_spec, struct cache_column */

/* cache_connect_server(): any server, in the order upstream_order() gives. */
#define CACHE_ANY_SERVER ((size_t)-1)

/* The most connections one load opens. */
#define CACHE_LOAD_MAX_CONNECTIONS 16

/* How a load may spread its work; zero fields let it choose. */
struct cache_load_tuning {
	/* Connections reading key ranges on TiDB: default one per core, at
	 * least 2, and at most one per 1024 keys of the range; 1 reads over
	 * one connection. */
	unsigned connections;
	/* Threads parsing vectors: default one per core. */
	unsigned parse_threads;
	/* Split the key range over connections (however few keys) on a
	 * server without a shared read timestamp (MariaDB), or on TiDB
	 * without taking one: each range is then consistent only in itself,
	 * so the result is not a snapshot. For tests and benchmarks of the
	 * split; never for serving. */
	bool split_without_snapshot;
};

/* What a load read: the table's definition and its rows. */
struct cache_load_result {
	struct cache_column *cols; /* [n_cols], with the wire type of each */
	size_t n_cols;
	size_t vec_col;           /* index of the vector column */
	size_t dim;               /* declared dimension (VECTOR(768)), or VEC_DIM_ANY */
	enum vec_dialect dialect; /* how the server's vector text parses */
	bool mariadb;             /* the upstream is MariaDB (the test stand-in), not TiDB */
	char server_version[96];
	/* The primary key: indexes into cols in the key's order; n_pk is 0
	 * when the table has none. */
	size_t *pk;
	size_t n_pk;
	bool pk_auto_increment;     /* a column of the key is AUTO_INCREMENT */
	bool pk_auto_random;        /* TiDB: the key is AUTO_RANDOM */
	bool other_unique;          /* a UNIQUE index besides the primary key */
	uint64_t loaded_ms;         /* monotonic time the read began */
	uint64_t load_ms;           /* how long the load took */
	uint64_t read_ts;           /* TiDB: the timestamp every connection read at; 0: one read */
	unsigned connections;       /* connections that read rows */
	unsigned parse_threads;     /* threads that parsed them */
	struct cache_segment *base; /* every row (refs 1: the result's) */
	uint64_t *row_fp;           /* [rows] hash of each row's bytes as sent */
	uint8_t *row_canonical;     /* [rows] its vector text was canonical */
	size_t reused_rows;         /* rows copied from spec->prev, unparsed */
};

/* Loads spec's table over the control-plane connection settings of spec
 * (TLS, verification, CA, timeouts), giving up past spec->memory_limit
 * bytes. 0 with *out filled (free it with cache_load_result_free), or a
 * negative errno with the reason in err (the messages cache_snapshot_load
 * gives) and *out empty. */
int cache_load_base(const struct cache_load_spec *spec, struct cache_load_result *out, char *err,
                    size_t errlen) MUST_CHECK;
/* cache_load_base with a chosen spread of work (tuning may be NULL). */
int cache_load_base_tuned(const struct cache_load_spec *spec,
                          const struct cache_load_tuning *tuning, struct cache_load_result *out,
                          char *err, size_t errlen) MUST_CHECK;
/* Frees what a result holds (unrefs base); safe on an empty result. */
void cache_load_result_free(struct cache_load_result *r);

/* Loads a table (cache_load_base) into a first snapshot version: every row
 * live, its primary key indexed when patches can use it. Blocking: call it
 * on a pool thread. NULL with the reason in err. */
struct cache_snapshot *cache_snapshot_load(const struct cache_load_spec *spec, char *err,
                                           size_t errlen);

/* A connection to TiDB for loads and patches, made as spec->upstream
 * describes (the sessions' servers, TLS settings and health). With *server
 * CACHE_ANY_SERVER, tries the servers in upstream_order()'s order and moves
 * on when one cannot be used (connect, TLS, greeting, a server turning
 * logins away), reporting each failure and the success to the shared
 * health; otherwise connects to server *server only. Sets *server to the
 * server used. NULL with every server's reason in err. cache_connect()
 * (patch.h) is this with any server. Blocking. */
MYSQL *cache_connect_server(const struct cache_load_spec *spec, size_t *server, char *err,
                            size_t errlen);

#endif
