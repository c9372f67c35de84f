/* Unit tests for src/core/log: line format, levels, escaping, truncation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <string.h>
#include <unistd.h>

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
