/* Levelled logging to stderr: one line per event, written with one write(2),
 * "2026-11-21T06:00:00.123Z LEVEL [component] message" in UTC, or the same
 * fields as one JSON object per line (log_set_format). */
#ifndef VECGATE_CORE_LOG_H
#define VECGATE_CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

/* <syslog.h> defines LOG_INFO and LOG_DEBUG as macros too: say so plainly
 * rather than with a puzzling syntax error. */
#if defined(LOG_INFO) || defined(LOG_DEBUG)
#error "core/log.h cannot be used in a file that includes <syslog.h>"
#endif

/* Ordered by verbosity; the names match the config enum log_level. */
enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

/* How a line is written; the names match the config enum log_format. */
enum log_format {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,
};

/* The most verbose level written; read on every log call, so atomic. Set it
 * with log_set_level(), never directly. */
extern atomic_int log_threshold;

static inline bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info" or "debug" (any case): the level, or -EINVAL. */
int log_level_from_name(const char *name);
/* Lower-case name of a level ("info"); "?" for a value out of range. */
const char *log_level_name(enum log_level level);
/* LOG_FORMAT_JSON writes {"time":"2026-11-21T06:00:00.123Z","level":"INFO",
 * "component":"pool","message":"..."}: the text format's fields and values,
 * with JSON string escapes (control characters as \n, \t or \u00XX). Bytes
 * that are not UTF-8 (peer data) are written as the text "\xNN", as the text
 * format writes control bytes, so that every line is valid JSON. Out of range
 * values are ignored. */
void log_set_format(enum log_format format);
enum log_format log_get_format(void);
/* Sends lines to fd instead of stderr (tests); the caller keeps fd open. */
void log_set_fd(int fd);

/* Formats and writes one line, whatever the threshold: use the macros below,
 * which skip the formatting when the level is off. component may be a source
 * path: its base name without extension is shown ("src/pool/pool.c" ->
 * [pool]). Control characters in the message (newlines from peer data, say)
 * are escaped as \xNN so that an event stays on one line; a message longer
 * than LOG_LINE_MAX is cut with "...", and so is one whose escapes would not
 * fit in the line (LOG_LINE_MAX plus room for the other fields). */
void log_write(enum log_level level, const char *component, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define LOG_LINE_MAX 4096

/* A file's lines are tagged with its name ("pool" for src/pool/pool.c) unless
 * it defines LOG_COMPONENT before including this header. */
#ifndef LOG_COMPONENT
#ifdef __FILE_NAME__
#define LOG_COMPONENT __FILE_NAME__
#else
#define LOG_COMPONENT __FILE__
#endif
#endif

#define log_at(level, ...)                                                                         \
	do {                                                                                       \
		if (log_enabled(level))                                                            \
			log_write((level), LOG_COMPONENT, __VA_ARGS__);                            \
	} while (0)
/* log_info("upstream %s: reachable again", name): printf-style arguments. */
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
