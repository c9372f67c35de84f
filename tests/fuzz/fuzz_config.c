/* The config file parser, from a buffer (config_parse_string) and, for the
 * inputs that hold a NUL byte or whose length is a multiple of 64, from a
 * file (config_load on a memfd), which must agree with the buffer: same
 * result, same config, same first error. A loaded config must dump as JSON,
 * its table list must parse, each address must format, and a config applied
 * to itself as a reload must find no differences. */
#include "fuzz.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERROR);
	return 0;
}

static void check_loaded(const struct config *cfg)
{
	struct buf json;
	buf_init(&json);
	FUZZ_CHECK(config_dump_json(cfg, &json) == 0);
	FUZZ_CHECK(json.len > 2 && json.data[0] == '{' && json.data[json.len - 1] == '}');
	buf_free(&json);

	struct config_table_list *tl = malloc(sizeof(*tl));
	char msg[256];
	if (cfg->cache.tables[0]) {
		int rc = config_parse_tables(cfg->cache.tables, tl, msg, sizeof(msg));
		FUZZ_CHECK(rc == 0);
		FUZZ_CHECK(tl->n <= CONFIG_TABLES_MAX);
	}
	free(tl);

	char a[CONFIG_HOST_MAX + 16];
	for (size_t i = 0; i < cfg->upstream.servers.n; i++) {
		const struct config_addr *ad = &cfg->upstream.servers.v[i];
		int n = config_addr_format(ad, a, sizeof(a));
		FUZZ_CHECK(n >= 0 && (size_t)n < sizeof(a) && strlen(a) == (size_t)n);
		FUZZ_CHECK(ad->host[0] != 0);
	}

	struct config *live = malloc(sizeof(*live));
	memcpy(live, cfg, sizeof(*live));
	struct config_change ch[4];
	FUZZ_CHECK(config_apply_reload(live, cfg, ch, 4) == 0);
	config_free(live);
	free(live);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CONFIG_FILE_MAX)
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	bool has_nul = memchr(data, 0, size) != NULL;

	static struct config cfg, cfg2;
	struct config_err err, err2;
	int rc = config_parse_string(text, "fuzz.conf", &cfg, &err);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc == 0) {
		FUZZ_CHECK(err.count == 0);
		check_loaded(&cfg);
	} else {
		FUZZ_CHECK(err.count >= 1 && err.line >= 0 && err.msg[0] != 0);
		FUZZ_CHECK(strcmp(err.file, "fuzz.conf") == 0);
	}

	if (has_nul || size % 64 == 0) {
		int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
		FUZZ_CHECK(fd >= 0);
		FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		int rc2 = config_load(path, &cfg2, &err2);
		if (has_nul) {
			FUZZ_CHECK(rc2 == -EINVAL && err2.line >= 1 &&
			           strstr(err2.msg, "NUL") != NULL);
		} else {
			FUZZ_CHECK(rc2 == rc);
			FUZZ_CHECK(memcmp(&cfg, &cfg2, sizeof(cfg)) == 0);
			FUZZ_CHECK(err2.count == err.count && err2.line == err.line &&
			           strcmp(err2.msg, err.msg) == 0);
		}
		config_free(&cfg2);
		close(fd);
	}
	config_free(&cfg);
	free(text);
	return 0;
}
