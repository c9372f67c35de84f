/* Result cache: a hash table of encoded answers with a FIFO byte bound. */
#include "cache/rcache.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cache/cache.h"
#include "proto/answer.h"

struct entry {
	uint64_t key;
	uint64_t snap_id;
	uint64_t schema_version;
	struct cache_meta meta;
	struct buf prefix;
	struct buf rows;
	size_t nrows;
	size_t bytes;
	struct entry *chain;         /* hash bucket */
	struct entry *older, *newer; /* FIFO */
};

struct rcache {
	struct entry **slots;
	size_t nslots;
	size_t bytes, max;
	struct entry *oldest, *newest;
};

uint64_t rcache_key(uint64_t shape_key, const void *text, size_t len)
{
	return XXH3_64bits_withSeed(text, len, shape_key);
}

struct rcache *rcache_new(size_t max_bytes)
{
	struct rcache *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return NULL;
	rc->nslots = 4096;
	rc->max = max_bytes;
	rc->slots = calloc(rc->nslots, sizeof(*rc->slots));
	if (!rc->slots) {
		free(rc);
		return NULL;
	}
	return rc;
}

static void entry_free(struct entry *e)
{
	cache_meta_free(&e->meta);
	buf_free(&e->prefix);
	buf_free(&e->rows);
	free(e);
}

static void unlink_entry(struct rcache *rc, struct entry *e)
{
	struct entry **pp = &rc->slots[e->key % rc->nslots];
	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	if (e->older)
		e->older->newer = e->newer;
	else
		rc->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		rc->newest = e->older;
	rc->bytes -= e->bytes;
	entry_free(e);
}

void rcache_free(struct rcache *rc)
{
	if (!rc)
		return;
	while (rc->oldest)
		unlink_entry(rc, rc->oldest);
	free(rc->slots);
	free(rc);
}

static struct entry *find(struct rcache *rc, uint64_t key)
{
	for (struct entry *e = rc->slots[key % rc->nslots]; e; e = e->chain)
		if (e->key == key)
			return e;
	return NULL;
}

void rcache_put(struct rcache *rc, uint64_t key, const struct cache_snapshot *snap,
                const struct cache_shape *sh, const uint8_t *rows, size_t rows_len, size_t nrows)
{
	struct entry *old = find(rc, key);
	if (old)
		unlink_entry(rc, old);
	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return;
	buf_init(&e->prefix);
	buf_init(&e->rows);
	bool ok = cache_meta_copy(&e->meta, &sh->meta) == 0 &&
	          proto_append_answer_header(&e->prefix, sh->ncols, sh->defs.data, sh->defs.len) ==
	                  0 &&
	          buf_append(&e->rows, rows, rows_len) == 0;
	e->bytes = sizeof(*e) + e->prefix.cap + e->rows.cap + e->meta.mid.cap + e->meta.term.cap;
	if (!ok || e->bytes > rc->max / 4) {
		entry_free(e);
		return;
	}
	e->key = key;
	e->snap_id = snap->id;
	e->schema_version = sh->schema_version;
	e->nrows = nrows;
	while (rc->oldest && rc->bytes + e->bytes > rc->max)
		unlink_entry(rc, rc->oldest);
	e->chain = rc->slots[key % rc->nslots];
	rc->slots[key % rc->nslots] = e;
	e->older = rc->newest;
	if (rc->newest)
		rc->newest->newer = e;
	else
		rc->oldest = e;
	rc->newest = e;
	rc->bytes += e->bytes;
}

bool rcache_get(struct rcache *rc, uint64_t key, uint64_t snap_id, uint64_t schema_version,
                struct rcache_hit *hit)
{
	struct entry *e = find(rc, key);
	if (!e)
		return false;
	if (e->snap_id != snap_id || e->schema_version != schema_version) {
		unlink_entry(rc, e);
		return false;
	}
	hit->prefix = e->prefix.data;
	hit->prefix_len = e->prefix.len;
	hit->meta = &e->meta;
	hit->rows = e->rows.data;
	hit->rows_len = e->rows.len;
	hit->nrows = e->nrows;
	return true;
}

size_t rcache_bytes(const struct rcache *rc)
{
	return rc->bytes;
}
