/* Unit tests for src/core/log: line format, levels, escaping, truncation, in
 * text and in JSON. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#define LOG_COMPONENT "unit"
#include "core/log.h"

static int fds[2];

static void setup(void)
{
	cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
	log_set_fd(fds[1]);
	log_set_level(LOG_INFO);
}

static void teardown(void)
{
	log_set_format(LOG_FORMAT_TEXT);
	log_set_fd(STDERR_FILENO);
	close(fds[0]);
	close(fds[1]);
}

TestSuite(log, .init = setup, .fini = teardown);

/* Everything written so far, NUL-terminated, in a static buffer. */
static const char *drain(void)
{
	static char text[3 * LOG_LINE_MAX];
	ssize_t n = read(fds[0], text, sizeof(text) - 1);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	cr_assert_eq(regexec(&re, text, 0, NULL, 0), 0, "'%s' does not match %s", text, pattern);
	regfree(&re);
}

Test(log, line_format)
{
	log_info("listening on %s:%d", "127.0.0.1", 4100);
	assert_matches(drain(),
	               "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
	               "\\.[0-9]{3}Z INFO \\[unit\\] listening on 127\\.0\\.0\\.1:4100\n$");
	log_error("x");
	assert_matches(drain(), "Z ERROR \\[unit\\] x\n$");
	log_write(LOG_WARN, "src/pool/pool.c", "from %s", "a path");
	assert_matches(drain(), "Z WARN \\[pool\\] from a path\n$");
	log_write(LOG_WARN, NULL, "no component");
	assert_matches(drain(), "Z WARN \\[-\\] no component\n$");
}

static int evaluated;

static int side_effect(void)
{
	return ++evaluated;
}

Test(log, levels_skip_formatting)
{
	log_debug("%d", side_effect());
	cr_assert_eq(evaluated, 0, "arguments of a disabled level are not evaluated");
	cr_assert_str_eq(drain(), "");
	log_set_level(LOG_DEBUG);
	log_debug("%d", side_effect());
	cr_assert_eq(evaluated, 1);
	assert_matches(drain(), "DEBUG \\[unit\\] 1\n$");
	log_set_level(LOG_ERROR);
	log_warn("hidden");
	log_info("hidden");
	cr_assert_str_eq(drain(), "");
	cr_assert_eq(log_get_level(), LOG_ERROR);
	log_set_level((enum log_level)42);
	cr_assert_eq(log_get_level(), LOG_ERROR, "out of range is ignored");
}

Test(log, level_names)
{
	static const struct {
		const char *name;
		int want;
	} cases[] = {
	        {"error", LOG_ERROR}, {"WARN", LOG_WARN},   {"Info", LOG_INFO},
	        {"debug", LOG_DEBUG}, {"warning", -EINVAL}, {"", -EINVAL},
	        {"trace", -EINVAL},   {"info ", -EINVAL},   {NULL, -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(log_level_from_name(cases[i].name), cases[i].want, "%s",
		             cases[i].name ? cases[i].name : "NULL");
	cr_assert_str_eq(log_level_name(LOG_WARN), "warn");
	cr_assert_str_eq(log_level_name((enum log_level)9), "?");
}

Test(log, one_line_per_event)
{
	log_info("user %s said \"%s\"", "bob\n2026-01-01T00:00:00.000Z ERROR [fake] x",
	         "a\r\tb\x7f");
	const char *t = drain();
	cr_assert_eq(strchr(t, '\n'), t + strlen(t) - 1, "a single line: %s", t);
	cr_assert(
	        strstr(t,
	               "bob\\x0a2026-01-01T00:00:00.000Z ERROR [fake] x said \"a\\x0d\tb\\x7f\"\n"),
	        "%s", t);
}

Test(log, long_messages_are_cut)
{
	static char big[2 * LOG_LINE_MAX];
	memset(big, 'y', sizeof(big) - 1);
	log_info("%s", big);
	const char *t = drain();
	size_t n = strlen(t);
	cr_assert_lt(n, (size_t)LOG_LINE_MAX + 128);
	cr_assert(strcmp(t + n - 4, "...\n") == 0, "%s", t + n - 10);
	/* Escapes that would overflow the line are cut too. */
	memset(big, '\n', sizeof(big) - 1);
	log_info("%s", big);
	t = drain();
	n = strlen(t);
	cr_assert_lt(n, (size_t)LOG_LINE_MAX + 128);
	cr_assert(strcmp(t + n - 4, "...\n") == 0);
	cr_assert_eq(strchr(t, '\n'), t + n - 1);
}

/* ---- JSON ---- */

/* A strict reader for the one shape log_write produces: an object of string
 * members. Decodes each value (\uXXXX below U+0080 only, which is all the
 * writer emits) and fails on anything that is not JSON. */
struct member {
	char key[32];
	char val[2 * LOG_LINE_MAX];
};

static bool read_string(const char **pp, char *out, size_t cap)
{
	const char *p = *pp;
	size_t n = 0;
	if (*p++ != '"')
		return false;
	for (;;) {
		unsigned char c = (unsigned char)*p++;
		if (c == '\0' || c < 0x20 || n + 1 >= cap)
			return false;
		if (c == '"')
			break;
		if (c == '\\') {
			char e = *p++;
			switch (e) {
			case '"':
				c = '"';
				break;
			case '\\':
				c = '\\';
				break;
			case '/':
				c = '/';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'u': {
				unsigned v = 0;
				for (int i = 0; i < 4; i++) {
					char h = *p++;
					v <<= 4;
					if (h >= '0' && h <= '9')
						v |= (unsigned)(h - '0');
					else if (h >= 'a' && h <= 'f')
						v |= (unsigned)(h - 'a' + 10);
					else if (h >= 'A' && h <= 'F')
						v |= (unsigned)(h - 'A' + 10);
					else
						return false;
				}
				if (v >= 0x80)
					return false;
				c = (unsigned char)v;
				break;
			}
			default:
				return false;
			}
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	*pp = p;
	return true;
}

/* Parses one line "{...}\n" into members; returns their count or -1. */
static int parse_line(const char *line, struct member *m, int max)
{
	const char *p = line;
	int n = 0;
	if (*p++ != '{')
		return -1;
	for (;;) {
		if (n == max || !read_string(&p, m[n].key, sizeof(m[n].key)) || *p++ != ':' ||
		    !read_string(&p, m[n].val, sizeof(m[n].val)))
			return -1;
		n++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (p[0] == '}' && p[1] == '\n' && p[2] == '\0')
			return n;
		return -1;
	}
}

static struct member members[8];

/* Checks that t is one JSON object with exactly time, level, component and
 * message; returns the decoded message. */
static const char *json_message_of(const char *t)
{
	int n = parse_line(t, members, 8);
	cr_assert_eq(n, 4, "not the four members: %s", t);
	cr_assert_str_eq(members[0].key, "time");
	cr_assert_str_eq(members[1].key, "level");
	cr_assert_str_eq(members[2].key, "component");
	cr_assert_str_eq(members[3].key, "message");
	return members[3].val;
}

/* The same, for the line written since the last read. */
static const char *json_message(void)
{
	return json_message_of(drain());
}

Test(log, json_has_every_field_of_the_text_line)
{
	cr_assert_eq(log_get_format(), LOG_FORMAT_TEXT, "text is the default");
	log_set_format(LOG_FORMAT_JSON);
	cr_assert_eq(log_get_format(), LOG_FORMAT_JSON);
	log_set_format((enum log_format)7);
	cr_assert_eq(log_get_format(), LOG_FORMAT_JSON, "out of range is ignored");

	log_info("listening on %s:%d", "127.0.0.1", 4100);
	cr_assert_str_eq(json_message(), "listening on 127.0.0.1:4100");
	assert_matches(members[0].val, "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:"
	                               "[0-6][0-9]\\.[0-9]{3}Z$");
	cr_assert_str_eq(members[1].val, "INFO");
	cr_assert_str_eq(members[2].val, "unit");

	log_write(LOG_WARN, "src/pool/pool.c", "x");
	cr_assert_str_eq(json_message(), "x");
	cr_assert_str_eq(members[1].val, "WARN");
	cr_assert_str_eq(members[2].val, "pool");
	log_write(LOG_ERROR, NULL, "%s", "");
	cr_assert_str_eq(json_message(), "");
	cr_assert_str_eq(members[1].val, "ERROR");
	cr_assert_str_eq(members[2].val, "-");
	log_write((enum log_level)9, "odd \"comp\"\n.c", "y");
	cr_assert_str_eq(json_message(), "y");
	cr_assert_str_eq(members[1].val, "?");
	cr_assert_str_eq(members[2].val, "odd \"comp\"\n");

	/* The switch back is immediate. */
	log_set_format(LOG_FORMAT_TEXT);
	log_info("plain");
	assert_matches(drain(), "Z INFO \\[unit\\] plain\n$");
}

Test(log, json_escapes_quotes_backslashes_and_control_characters)
{
	log_set_format(LOG_FORMAT_JSON);
	static char every[32 + 8];
	size_t n = 0;
	for (int c = 1; c < 0x20; c++)
		every[n++] = (char)c;
	memcpy(every + n, "\x7f\"\\/ok", 6);
	log_info("[%s]", every);
	const char *raw = drain();
	cr_assert_eq(strchr(raw, '\n'), raw + strlen(raw) - 1, "one line: %s", raw);
	for (const char *p = raw; *p; p++)
		cr_assert((unsigned char)*p >= 0x20 || *p == '\n', "raw control byte in %s", raw);
	cr_assert(strstr(raw, "\\n") && strstr(raw, "\\t") && strstr(raw, "\\r") &&
	                  strstr(raw, "\\u0001") && strstr(raw, "\\u001f") &&
	                  strstr(raw, "\\u007f") && strstr(raw, "\\\"\\\\/ok"),
	          "%s", raw);
	/* And it decodes back to exactly what was logged. */
	char want[64];
	snprintf(want, sizeof(want), "[%s]", every);
	cr_assert_str_eq(json_message_of(raw), want);

	/* A forged second event stays inside the first one's message. */
	log_info("user %s", "bob\"}\n{\"time\":\"x\",\"level\":\"ERROR\"");
	cr_assert_str_eq(json_message(), "user bob\"}\n{\"time\":\"x\",\"level\":\"ERROR\"");
	cr_assert_str_eq(members[1].val, "INFO");
}

Test(log, json_keeps_utf8_and_marks_other_bytes)
{
	log_set_format(LOG_FORMAT_JSON);
	/* Two, three and four byte sequences pass as they are. */
	log_info("%s", "d\xc3\xa9j\xc3\xa0 \xe2\x82\xac \xf0\x9f\x98\x80");
	const char *raw = drain();
	cr_assert(strstr(raw, "\"message\":\"d\xc3\xa9j\xc3\xa0 \xe2\x82\xac \xf0\x9f\x98\x80\"}"),
	          "%s", raw);
	static const struct {
		const char *in, *want;
	} cases[] = {
	        {"a\xff"
	         "b",
	         "a\\xffb"},                                  /* never valid */
	        {"\x80", "\\x80"},                            /* stray continuation */
	        {"\xc3", "\\xc3"},                            /* cut at the end */
	        {"\xc3(", "\\xc3("},                          /* cut by another byte */
	        {"\xc0\xaf", "\\xc0\\xaf"},                   /* overlong '/' */
	        {"\xe0\x80\xaf", "\\xe0\\x80\\xaf"},          /* overlong, three bytes */
	        {"\xed\xa0\x80", "\\xed\\xa0\\x80"},          /* surrogate U+D800 */
	        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"}, /* past U+10FFFF */
	        {"\xf0\x9f\x98", "\\xf0\\x9f\\x98"},          /* four bytes cut */
	        {"\xef\xbf\xbf", "\xef\xbf\xbf"},             /* U+FFFF is valid */
	        {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},     /* U+10FFFF is valid */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		log_info("%s", cases[i].in);
		cr_expect_str_eq(json_message(), cases[i].want, "case %zu", i);
	}
}

/* Every byte of a line is either ASCII or part of a well-formed sequence:
 * what a JSON parser that insists on UTF-8 needs. */
static void assert_utf8(const char *t)
{
	for (const unsigned char *p = (const unsigned char *)t; *p;) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;
		for (int i = 1; i < n; i++)
			cr_assert_eq(p[i] & 0xc0, 0x80, "broken sequence at offset %td",
			             (const char *)p - t);
		p += n;
	}
}

Test(log, json_long_messages_are_cut_and_still_valid)
{
	log_set_format(LOG_FORMAT_JSON);
	static char big[2 * LOG_LINE_MAX];
	/* Plain text, then text that escapes to six bytes per byte, then
	 * multi-byte characters: each is cut with "..." before the closing
	 * quote, never inside an escape or a character. */
	const char fills[][5] = {"y", "\x01", "\xe2\x82\xac", "\"", "\xff"};
	for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
		size_t k = strlen(fills[f]), n = 0;
		while (n + k < sizeof(big))
			memcpy(big + n, fills[f], k), n += k;
		big[n] = '\0';
		log_info("%s", big);
		const char *raw = drain();
		size_t len = strlen(raw);
		cr_assert_leq(len, (size_t)LOG_LINE_MAX + 256, "fill %zu", f);
		cr_assert(strcmp(raw + len - 6, "...\"}\n") == 0, "fill %zu: %s", f,
		          raw + len - 20);
		assert_utf8(raw);
		const char *msg = json_message_of(raw);
		cr_assert_gt(strlen(msg), (size_t)LOG_LINE_MAX / 8, "fill %zu: %zu", f,
		             strlen(msg));
	}
}

Test(log, bad_format_string_is_reported)
{
	/* A conversion vsnprintf rejects: the line says so instead of vanishing. */
	log_set_format(LOG_FORMAT_JSON);
	static const wchar_t bad[] = {0xd800, 0};
	log_info("%ls", bad);
	cr_assert_str_eq(json_message(), "(bad log format \"%ls\")");
}
