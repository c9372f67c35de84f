/* Shape registry (a hash table with an entry cap) and the tie-aware
 * comparison of TiDB's rows with vecgate's. */
#include "cache/shape.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/clock.h"
#include "proto/mysql.h"
#include "vec/topk.h"

struct cache_shapes {
	struct cache_shape **slots;
	size_t nslots;
	size_t count;
	size_t max;
};

uint64_t cache_shape_key(uint64_t shape, const char *user, const char *db, uint64_t settings,
                         bool binary, bool deprecate_eof)
{
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, &shape, sizeof(shape));
	XXH3_64bits_update(&st, user, strlen(user) + 1);
	XXH3_64bits_update(&st, db, strlen(db) + 1);
	XXH3_64bits_update(&st, &settings, sizeof(settings));
	uint8_t tail[2] = {binary, deprecate_eof};
	XXH3_64bits_update(&st, tail, sizeof(tail));
	return XXH3_64bits_digest(&st);
}

struct cache_shapes *cache_shapes_new(size_t max)
{
	struct cache_shapes *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->nslots = 1024;
	s->max = max ? max : 10000;
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	if (!s->slots) {
		free(s);
		return NULL;
	}
	return s;
}

void cache_meta_free(struct cache_meta *m)
{
	buf_free(&m->mid);
	buf_free(&m->term);
}

int cache_meta_copy(struct cache_meta *dst, const struct cache_meta *src)
{
	dst->before = src->before;
	dst->after = src->after;
	dst->mid_status = src->mid_status;
	buf_init(&dst->mid);
	buf_init(&dst->term);
	if (buf_append(&dst->mid, src->mid.data, src->mid.len) < 0 ||
	    buf_append(&dst->term, src->term.data, src->term.len) < 0) {
		cache_meta_free(dst);
		return -ENOMEM;
	}
	return 0;
}

static bool in_use(const struct cache_shape *sh)
{
	return sh->verifying || sh->users > 0;
}

static void shape_free(struct cache_shape *sh)
{
	cache_meta_free(&sh->meta);
	free(sh->types);
	buf_free(&sh->defs);
	free(sh);
}

void cache_shapes_free(struct cache_shapes *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nslots; i++)
		for (struct cache_shape *sh = s->slots[i], *next; sh; sh = next) {
			next = sh->next;
			shape_free(sh);
		}
	free(s->slots);
	free(s);
}

struct cache_shape *cache_shapes_find(struct cache_shapes *s, uint64_t key)
{
	for (struct cache_shape *sh = s->slots[key % s->nslots]; sh; sh = sh->next)
		if (sh->key == key) {
			sh->last_used_ms = core_now_ms();
			return sh;
		}
	return NULL;
}

static void unlink_shape(struct cache_shapes *s, struct cache_shape *victim)
{
	struct cache_shape **pp = &s->slots[victim->key % s->nslots];
	while (*pp && *pp != victim)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = victim->next;
		s->count--;
		shape_free(victim);
	}
}

/* At the cap, the least recently used shape goes (a rare full pass). */
static void evict_one(struct cache_shapes *s)
{
	struct cache_shape *oldest = NULL;
	for (size_t i = 0; i < s->nslots; i++)
		for (struct cache_shape *sh = s->slots[i]; sh; sh = sh->next)
			if (!in_use(sh) && (!oldest || sh->last_used_ms < oldest->last_used_ms))
				oldest = sh;
	if (oldest)
		unlink_shape(s, oldest);
}

struct cache_shape *cache_shapes_put(struct cache_shapes *s, uint64_t key, struct cache_table *t,
                                     uint64_t schema_version, const struct buf *defs,
                                     uint32_t ncols)
{
	struct cache_shape *old = cache_shapes_find(s, key);
	if (old && !in_use(old))
		unlink_shape(s, old);
	else if (old)
		return NULL; /* still compared or answered from */
	if (s->count >= s->max)
		evict_one(s);
	struct cache_shape *sh = calloc(1, sizeof(*sh));
	if (!sh)
		return NULL;
	buf_init(&sh->defs);
	buf_init(&sh->meta.mid);
	buf_init(&sh->meta.term);
	sh->types = calloc(ncols ? ncols : 1, 1);
	if (!sh->types || buf_append(&sh->defs, buf_head(defs), buf_unread(defs)) < 0) {
		shape_free(sh);
		return NULL;
	}
	sh->key = key;
	sh->table = t;
	sh->schema_version = schema_version;
	sh->ncols = ncols;
	sh->last_used_ms = core_now_ms();
	/* A column definition: catalog, schema, table, org_table, name,
	 * org_name (lenenc strings), then 0x0C, charset u16, length u32, type. */
	for (uint32_t i = 0; i < ncols; i++) {
		uint32_t len;
		const uint8_t *d = cache_shape_def(sh, i, &len);
		struct rd r = rd_make(d, len);
		bool ok = true;
		for (int f = 0; f < 6 && ok; f++) {
			const uint8_t *p;
			uint64_t n;
			ok = rd_lenenc_str(&r, &p, &n);
		}
		uint64_t fixed;
		uint16_t cs;
		uint32_t length;
		if (!ok || !rd_lenenc(&r, &fixed, NULL) || !rd_u16(&r, &cs) ||
		    !rd_u32(&r, &length) || !rd_u8(&r, &sh->types[i])) {
			shape_free(sh);
			return NULL;
		}
	}
	sh->next = s->slots[key % s->nslots];
	s->slots[key % s->nslots] = sh;
	s->count++;
	return sh;
}

void cache_shapes_drop_table(struct cache_shapes *s, const struct cache_table *t)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct cache_shape **pp = &s->slots[i];
		while (*pp) {
			struct cache_shape *sh = *pp;
			if ((!t || sh->table == t) && !in_use(sh)) {
				*pp = sh->next;
				s->count--;
				shape_free(sh);
			} else {
				pp = &sh->next;
			}
		}
	}
}

size_t cache_shapes_count(const struct cache_shapes *s)
{
	return s->count;
}

const uint8_t *cache_shape_def(const struct cache_shape *sh, uint32_t nth, uint32_t *len)
{
	const uint8_t *p = sh->defs.data;
	uint32_t n;
	for (uint32_t i = 0;; i++) {
		memcpy(&n, p, 4);
		if (i == nth) {
			*len = n;
			return p + 4;
		}
		p += 4 + n;
	}
}

/* ---- comparing answers ---- */

struct row {
	const uint8_t *p;
	uint32_t n;
};

static size_t split_rows(const struct buf *b, struct row **out)
{
	size_t count = 0;
	for (size_t off = 0; off + 4 <= b->len;) {
		uint32_t n;
		memcpy(&n, b->data + off, 4);
		off += 4 + n;
		count++;
	}
	struct row *rows = malloc((count ? count : 1) * sizeof(*rows));
	if (!rows)
		return SIZE_MAX;
	size_t i = 0;
	for (size_t off = 0; off + 4 <= b->len; i++) {
		memcpy(&rows[i].n, b->data + off, 4);
		rows[i].p = b->data + off + 4;
		off += 4 + rows[i].n;
	}
	*out = rows;
	return count;
}

/* The text cell of column c in a text row (false for NULL or malformed). */
static bool text_cell(const struct row *r, int c, const uint8_t **p, uint64_t *n)
{
	struct rd rd = rd_make(r->p, r->n);
	for (int i = 0;; i++) {
		uint64_t len;
		bool is_null;
		if (!rd_lenenc(&rd, &len, &is_null))
			return false;
		if (i == c) {
			*p = rd.p;
			*n = is_null ? 0 : len;
			return !is_null && len <= rd_left(&rd);
		}
		if (!is_null && !rd_skip(&rd, (size_t)len))
			return false;
	}
}

static bool same_row(const struct row *a, const struct row *b)
{
	return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

static int row_cmp(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);
	return c ? c : (a->n > b->n) - (a->n < b->n);
}

static bool same_distance(const struct vec_hit *a, const struct vec_hit *b)
{
	return a->is_null == b->is_null && (a->is_null || a->dist == b->dist);
}

bool cache_rows_equivalent(const struct buf *tidb, const struct buf *ours,
                           const struct vec_hit *hits, size_t nhits, int dist_col, bool first_cut,
                           bool last_cut)
{
	struct row *a = NULL, *b = NULL;
	size_t na = split_rows(tidb, &a), nb = split_rows(ours, &b);
	bool ok = na != SIZE_MAX && nb != SIZE_MAX && na == nb && nb == nhits;
	/* TiDB's distance at every rank is vecgate's. */
	for (size_t i = 0; ok && dist_col >= 0 && i < na; i++) {
		const uint8_t *d, *e;
		uint64_t dn, en;
		bool x = text_cell(&a[i], dist_col, &d, &dn),
		     y = text_cell(&b[i], dist_col, &e, &en);
		ok = x == y && (!x || (dn == en && memcmp(d, e, dn) == 0));
	}
	for (size_t start = 0; ok && start < na;) {
		size_t end = start + 1;
		while (end < na && same_distance(&hits[end], &hits[start]))
			end++;
		bool cut = (end == na && last_cut) || (start == 0 && first_cut);
		if (!cut) {
			qsort(a + start, end - start, sizeof(*a), row_cmp);
			qsort(b + start, end - start, sizeof(*b), row_cmp);
			for (size_t i = start; i < end && ok; i++)
				ok = same_row(&a[i], &b[i]);
		}
		start = end;
	}
	free(a);
	free(b);
	return ok;
}

void cache_shape_verify_start(struct cache_shape *sh)
{
	assert(!sh->verifying && sh->state != CACHE_SHAPE_REJECTED);
	sh->verifying = true;
}

void cache_shape_verify_end(struct cache_shape *sh, bool ok, bool match, enum vec_arith arith,
                            bool decided, uint64_t now_ms)
{
	assert(sh->verifying);
	sh->verifying = false;
	sh->renewing_ms = 0;
	if (!ok)
		return;
	assert(sh->state != CACHE_SHAPE_REJECTED);
	if (match) {
		sh->state = CACHE_SHAPE_VERIFIED;
		sh->renewal_failed = false;
		if (decided) {
			sh->arith = arith;
			sh->arith_known = true;
		}
		sh->verified_ms = now_ms;
	} else if (++sh->mismatches >= CACHE_SHAPE_MISMATCHES_TO_REJECT) {
		sh->state = CACHE_SHAPE_REJECTED;
	} else {
		sh->state = CACHE_SHAPE_PENDING;
	}
}

void cache_shape_renew(struct cache_shape *sh, uint64_t now_ms)
{
	assert(sh->state == CACHE_SHAPE_VERIFIED);
	sh->verified_ms = now_ms;
	sh->renewing_ms = 0;
	sh->renewal_failed = false;
}
