/* vecgate's configuration: one table of keys (see config.c) drives the INI
 * file parser, the defaults, validation, SIGHUP reload, the annotated default
 * file conf/vecgate.conf and the JSON shown by /status. */
#ifndef VECGATE_CORE_CONFIG_H
#define VECGATE_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define CONFIG_STR_MAX   1024 /* longest string or path value, with its NUL */
#define CONFIG_HOST_MAX  256  /* longest host name (253) or address, with its NUL */
#define CONFIG_ADDRS_MAX 64   /* most addresses in one list */
#define CONFIG_LINE_MAX  4096 /* longest line of a config file */
#define CONFIG_FILE_MAX  (1024 * 1024)

/* host:port. host is an IPv4 address, an IPv6 address (written [::1]:4000 in
 * the file, stored without brackets) or a host name. */
struct config_addr {
	char host[CONFIG_HOST_MAX];
	uint16_t port;
};

struct config_addr_list {
	size_t n;
	struct config_addr v[CONFIG_ADDRS_MAX];
};

#define CONFIG_TABLES_MAX 64
#define CONFIG_NAME_MAX   65 /* MySQL identifiers: 64 characters, with the NUL */

/* A cached table: db.table(vector column). */
struct config_table {
	char db[CONFIG_NAME_MAX * 4]; /* identifiers are up to 64 characters of UTF-8 */
	char table[CONFIG_NAME_MAX * 4];
	char column[CONFIG_NAME_MAX * 4];
};

struct config_table_list {
	bool auto_admit; /* "auto": tables are admitted as their kNN queries arrive */
	size_t n;
	struct config_table v[CONFIG_TABLES_MAX];
};

enum config_tls_version {
	CONFIG_TLS_1_2,
	CONFIG_TLS_1_3,
};

/* Every key's typed value. Durations are milliseconds, sizes bytes; an empty
 * string means "not set"; an address with an empty host means "disabled". The
 * struct owns no heap memory today, but pass it to config_free() anyway. */
struct config {
	struct {
		struct config_addr listen;
		int workers;
		int backlog;
		int max_client_conns;
		int max_pending_logins;
		int max_pending_logins_per_address;
		uint64_t max_packet_size;
		uint64_t write_buffer_limit;
		uint64_t handshake_timeout;
		uint64_t idle_timeout;
		uint64_t drain_timeout;
		uint64_t tcp_keepalive;
		int log_level;  /* enum log_level */
		int log_format; /* enum log_format */
		char tls_cert[CONFIG_STR_MAX];
		char tls_key[CONFIG_STR_MAX];
		char tls_ca[CONFIG_STR_MAX];
		int tls_min_version; /* enum config_tls_version */
		bool require_tls;
	} server;
	struct {
		struct config_addr_list servers;
		bool tls;
		bool tls_verify;
		char tls_ca_file[CONFIG_STR_MAX];
		char tls_server_name[CONFIG_HOST_MAX];
		char tls_cert[CONFIG_STR_MAX];
		char tls_key[CONFIG_STR_MAX];
		int tls_min_version; /* enum config_tls_version */
		uint64_t connect_timeout;
		int pool_spares;
		uint64_t spare_max_age;
		uint64_t health_check_interval;
		uint64_t tcp_keepalive;
	} upstream;
	struct {
		char tables[CONFIG_STR_MAX]; /* see config_parse_tables() */
		char user[CONFIG_NAME_MAX * 4];
		char password[CONFIG_STR_MAX];
		uint64_t memory_limit;
		uint64_t max_staleness;
		uint64_t result_cache_size;
		uint64_t load_timeout;
		int max_tables;
		bool patches;
		bool screening;
		uint64_t proof_max_age;
	} cache;
	struct {
		struct config_addr listen;
	} admin;
};

/* Where loading failed: file:line: msg. line is 0 when the problem is not on
 * one line (unreadable file, a rule between two keys both left at defaults).
 * file points to the path given to config_load() (or the name given to
 * config_parse_string()); count is how many problems the file has in all, msg
 * describes the first. */
struct config_err {
	const char *file;
	int line;
	int count;
	char msg[512];
};

/* A key that differs between the running and a newly loaded config. */
struct config_change {
	const char *section;
	const char *name;
	bool reloadable;
};

void config_init_defaults(struct config *cfg);
void config_free(struct config *cfg);

/* Reads the INI file at path into *out: defaults first, then every key in the
 * file, then the rules between keys. Returns 0, or a negative errno-style code
 * with *err filled in (-ENOENT etc. when the file cannot be read, -EINVAL for
 * a bad file). *out must be released with config_free() either way. Not
 * thread safe (inih's line-length setting is process-wide): call it from the
 * main thread only. */
int config_load(const char *path, struct config *out, struct config_err *err) MUST_CHECK;
/* Same, from a NUL-terminated text; name is used as the file in *err. */
int config_parse_string(const char *text, const char *name, struct config *out,
                        struct config_err *err) MUST_CHECK;

/* Checks that every path key that is set names a readable file (used by
 * --check-config and at start-up, not by config_load(), so that a config can be
 * parsed where its certificates do not exist). 0, or -EINVAL with *err: line
 * 0, msg naming the key and the path, file left as it was (pass the err that
 * config_load() filled, and it names the config file). */
int config_check_files(const struct config *cfg, struct config_err *err) MUST_CHECK;

/* SIGHUP: copies the reloadable keys that differ from fresh into live and
 * leaves the others. Records up to max differing keys of both kinds in out,
 * logs "reloaded [s] k" for each applied key and "restart needed for [s] k"
 * for each other, and returns the number of differing keys. live is not
 * locked: call it on the thread that owns live. */
size_t config_apply_reload(struct config *live, const struct config *fresh,
                           struct config_change *out, size_t max);

/* The annotated default config file: every key set to its default, with its
 * help, type, bounds, default and whether SIGHUP applies it. 0 or -ENOMEM. */
int config_write_annotated(struct buf *out) MUST_CHECK;

/* cfg as a JSON object {"server": {...}, ...}: sizes in bytes, durations in
 * milliseconds, addresses as "host:port". Holds no secrets (the config has
 * none: key files are named by path). 0 or -ENOMEM. */
int config_dump_json(const struct config *cfg, struct buf *out) MUST_CHECK;

/* Parses [cache] tables: "auto", or comma-separated db.table(column) with
 * bare or backticked names. 0, or -EINVAL with the reason in msg. */
int config_parse_tables(const char *v, struct config_table_list *out, char *msg,
                        size_t n) MUST_CHECK;

/* Formats an address as the file would spell it ("[::1]:4000"); "" when the
 * host is empty. Returns the length snprintf would have written. */
int config_addr_format(const struct config_addr *a, char *out, size_t n);

#endif
