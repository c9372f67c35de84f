/* Levelled, line-atomic logging to stderr (or a test's fd). */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

atomic_int log_threshold = LOG_INFO;
static atomic_int out_fd = STDERR_FILENO;

static const char *const lower_names[] = {"error", "warn", "info", "debug"};
static const char *const upper_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_set_level(enum log_level level)
{
	if ((int)level < LOG_ERROR || level > LOG_DEBUG)
		return;
	atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

int log_level_from_name(const char *name)
{
	for (int i = LOG_ERROR; i <= LOG_DEBUG; i++)
		if (name && strcasecmp(name, lower_names[i]) == 0)
			return i;
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	if ((int)level < LOG_ERROR || level > LOG_DEBUG)
		return "?";
	return lower_names[level];
}

void log_set_fd(int fd)
{
	atomic_store(&out_fd, fd);
}

/* Appends s to line[*len], escaping control bytes; stops with "..." when the
 * line (which keeps room for the final newline) is full. */
static void put_escaped(char *line, size_t *len, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = *len;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = (c < 0x20 && c != '\t') || c == 0x7f ? 4 : 1;
		if (n + need + 4 > cap) {
			memcpy(line + n, "...", 3);
			n += 3;
			break;
		}
		if (need == 1) {
			line[n++] = (char)c;
		} else {
			line[n++] = '\\';
			line[n++] = 'x';
			line[n++] = hex[c >> 4];
			line[n++] = hex[c & 15];
		}
	}
	*len = n;
}

void log_write(enum log_level level, const char *component, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	char line[LOG_LINE_MAX + 128];
	va_list ap;
	va_start(ap, fmt);
	int mlen = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (mlen < 0)
		snprintf(msg, sizeof(msg), "(bad log format \"%s\")", fmt);
	else if ((size_t)mlen >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	int k = snprintf(line + len, sizeof(line) - len, ".%03ldZ %s [", ts.tv_nsec / 1000000,
	                 (int)level >= LOG_ERROR && level <= LOG_DEBUG ? upper_names[level] : "?");
	len += (size_t)k;
	/* The component is ours, but escape it anyway: it costs nothing. */
	char comp[64] = "-";
	if (component) {
		const char *base = strrchr(component, '/');
		base = base ? base + 1 : component;
		size_t n = strcspn(base, ".");
		snprintf(comp, sizeof(comp), "%.*s", (int)n, base);
	}
	put_escaped(line, &len, 128, comp);
	line[len++] = ']';
	line[len++] = ' ';
	put_escaped(line, &len, sizeof(line), msg);
	line[len++] = '\n';

	/* One write per line: lines from threads never interleave mid-line
	 * (pipes guarantee it up to PIPE_BUF; files opened O_APPEND always). */
	int fd = atomic_load(&out_fd);
	const char *p = line;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}
