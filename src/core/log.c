/* Levelled, line-atomic logging to stderr (or a test's fd), as text or JSON. */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

atomic_int log_threshold = LOG_INFO;
static atomic_int out_fd = STDERR_FILENO;
static atomic_int out_format = LOG_FORMAT_TEXT;

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

void log_set_format(enum log_format format)
{
	if ((int)format < LOG_FORMAT_TEXT || format > LOG_FORMAT_JSON)
		return;
	atomic_store_explicit(&out_format, (int)format, memory_order_relaxed);
}

enum log_format log_get_format(void)
{
	return (enum log_format)atomic_load_explicit(&out_format, memory_order_relaxed);
}

static const char hex[] = "0123456789abcdef";

/* Appends s to line[*len], escaping control bytes; stops with "..." when the
 * line (which keeps room for the final newline) is full. */
static void put_escaped(char *line, size_t *len, size_t cap, const char *s)
{
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

/* Length of the well-formed UTF-8 sequence at s (1 to 4 bytes), or 0: a
 * stray continuation byte, a cut sequence, an overlong form, a surrogate or a
 * code point past U+10FFFF is not one. s is NUL-terminated, and a NUL is not
 * a continuation byte, so nothing past it is read. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Appends s to line[*len] as the inside of a JSON string. Stops with "..."
 * when the next character would leave less than the room for the closing
 * '"}' and the newline, so that a cut line is still one valid object. */
static void put_json(char *line, size_t *len, size_t cap, const char *s)
{
	size_t n = *len;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		char esc[8];
		size_t need, take = 1;
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, need = 2;
		} else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
			esc[0] = '\\';
			esc[1] = c == '\n'   ? 'n'
			         : c == '\r' ? 'r'
			         : c == '\t' ? 't'
			         : c == '\b' ? 'b'
			                     : 'f';
			need = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4], esc[5] = hex[c & 15], need = 6;
		} else if ((take = utf8_len(p)) > 0) {
			memcpy(esc, p, take);
			need = take;
		} else {
			/* Not UTF-8: the text "\xNN", with its backslash escaped. */
			memcpy(esc, "\\\\x", 3);
			esc[3] = hex[c >> 4], esc[4] = hex[c & 15], need = 5, take = 1;
		}
		if (n + need + 3 + 3 > cap) {
			memcpy(line + n, "...", 3);
			n += 3;
			break;
		}
		memcpy(line + n, esc, need);
		n += need;
		p += take;
	}
	*len = n;
}

static void put_str(char *line, size_t *len, const char *s)
{
	size_t k = strlen(s);
	memcpy(line + *len, s, k);
	*len += k;
}

void log_write(enum log_level level, const char *component, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	/* Text lines take at most LOG_LINE_MAX + 128 bytes; JSON lines, whose
	 * fields take more room, at most LOG_LINE_MAX + 256. */
	char line[LOG_LINE_MAX + 256];
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
	char when[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t wlen = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + wlen, sizeof(when) - wlen, ".%03ldZ", ts.tv_nsec / 1000000);
	const char *lvl = (int)level >= LOG_ERROR && level <= LOG_DEBUG ? upper_names[level] : "?";
	char comp[64] = "-";
	if (component) {
		const char *base = strrchr(component, '/');
		base = base ? base + 1 : component;
		size_t n = strcspn(base, ".");
		snprintf(comp, sizeof(comp), "%.*s", (int)n, base);
	}

	size_t len = 0;
	if (log_get_format() == LOG_FORMAT_JSON) {
		put_str(line, &len, "{\"time\":\"");
		put_str(line, &len, when);
		put_str(line, &len, "\",\"level\":\"");
		put_str(line, &len, lvl);
		put_str(line, &len, "\",\"component\":\"");
		put_json(line, &len, 256, comp);
		put_str(line, &len, "\",\"message\":\"");
		put_json(line, &len, sizeof(line), msg);
		put_str(line, &len, "\"}");
	} else {
		int k = snprintf(line, 128, "%s %s [", when, lvl);
		len = (size_t)k;
		/* The component is ours, but escape it anyway: it costs nothing. */
		put_escaped(line, &len, 128, comp);
		line[len++] = ']';
		line[len++] = ' ';
		put_escaped(line, &len, LOG_LINE_MAX + 128, msg);
	}
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
