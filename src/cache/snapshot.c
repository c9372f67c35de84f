/* Snapshot versions (a shared base, tombstones, a delta), cell access,
 * primary-key canonical forms and index, patches, and the full load over
 * libmariadb (on a pool thread). */
#include "cache/snapshot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/clock.h"
#include "vec/vec.h"

static atomic_uint_fast64_t next_id = 1;

/* ---- lifetime ---- */

void cache_base_unref(struct cache_base *b)
{
	if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(b->cols);
	free(b->row_fp);
	free(b->row_canonical);
	cache_segment_unref(b->rows);
	if (b->index) {
		free(((void **)b->index)[0]);
		free(b->index);
	}
	free(b);
}

void cache_snapshot_unref(struct cache_snapshot *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	cache_base_unref(s->base);
	cache_segment_unref(s->delta);
	free(s->live);
	free(s);
}

static struct cache_snapshot *new_version(const struct cache_base *b, const char *db,
                                          const char *table, uint64_t version)
{
	struct cache_snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	atomic_init(&s->refs, 1);
	s->id = atomic_fetch_add(&next_id, 1);
	snprintf(s->db, sizeof(s->db), "%s", db);
	snprintf(s->table, sizeof(s->table), "%s", table);
	s->version = version;
	s->loaded_ms = b->loaded_ms;
	s->load_ms = b->load_ms;
	s->n_cols = b->n_cols;
	s->vec_col = b->vec_col;
	s->cols = b->cols;
	s->mariadb = b->mariadb;
	s->n_base = cache_segment_rows(b->rows);
	return s;
}

static void count_bytes(struct cache_snapshot *s)
{
	s->n_rows = s->n_base + (s->delta ? cache_segment_rows(s->delta) : 0);
	s->bytes = sizeof(*s) + s->base->bytes + (s->delta ? cache_segment_bytes(s->delta) : 0) +
	           (s->live ? (s->n_base + 63) / 64 * 8 : 0);
}

struct cache_snapshot *cache_snapshot_from_base(struct cache_base *b, const char *db,
                                                const char *table, uint64_t version)
{
	struct cache_snapshot *s = new_version(b, db, table, version);
	if (!s) {
		cache_base_unref(b);
		return NULL;
	}
	s->base = b;
	count_bytes(s);
	return s;
}

size_t cache_snapshot_live_rows(const struct cache_snapshot *s)
{
	return s->n_rows - s->n_dead;
}

size_t cache_snapshot_scratch_size(const struct cache_snapshot *s)
{
	size_t a = cache_segment_scratch_size(s->base->rows);
	size_t b = s->delta ? cache_segment_scratch_size(s->delta) : 0;
	return a > b ? a : b;
}

bool cache_snapshot_cell(const struct cache_snapshot *s, size_t r, size_t c, char *scratch,
                         const uint8_t **p, size_t *n)
{
	if (r < s->n_base)
		return cache_segment_cell(s->base->rows, r, c, scratch, p, n);
	return cache_segment_cell(s->delta, r - s->n_base, c, scratch, p, n);
}

/* ---- keys ---- */

/* Canonical decimal text of an integer cell or literal: no sign for zero,
 * no '+', no leading zeros. -EINVAL when it is not a decimal integer. */
static int canon_int(const uint8_t *p, size_t n, struct buf *out)
{
	size_t i = 0;
	bool neg = false;
	if (i < n && (p[i] == '-' || p[i] == '+'))
		neg = p[i++] == '-';
	if (i == n)
		return -EINVAL;
	for (size_t j = i; j < n; j++)
		if (p[j] < '0' || p[j] > '9')
			return -EINVAL;
	while (i + 1 < n && p[i] == '0')
		i++;
	if (n - i == 1 && p[i] == '0')
		neg = false;
	uint32_t len = (uint32_t)(n - i + neg);
	if (buf_append(out, &len, 4) < 0 || (neg && buf_append(out, "-", 1) < 0) ||
	    buf_append(out, p + i, n - i) < 0)
		return -ENOMEM;
	return 0;
}

int cache_key_append(const struct cache_base *b, size_t key_col, const uint8_t *p, size_t n,
                     struct buf *out)
{
	const struct cache_column *c = &b->cols[b->key_cols[key_col]];
	if (c->cmp == CACHE_CMP_INT || c->cmp == CACHE_CMP_UINT)
		return canon_int(p, n, out);
	if (c->cmp == CACHE_CMP_PADSPACE)
		while (n > 0 && p[n - 1] == ' ')
			n--;
	uint32_t len = (uint32_t)n;
	return buf_append(out, &len, 4) < 0 || buf_append(out, p, n) < 0 ? -ENOMEM : 0;
}

int cache_key_of_row(const struct cache_base *b, const struct cache_segment *seg, size_t r,
                     struct buf *out)
{
	for (size_t k = 0; k < b->n_key; k++) {
		const uint8_t *p;
		size_t n;
		if (!cache_segment_cell(seg, r, b->key_cols[k], NULL, &p, &n))
			return -EINVAL; /* a NULL key: not a primary key */
		int rc = cache_key_append(b, k, p, n, out);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Open addressing over (hash, row + 1); a key's bytes are compared by
 * rebuilding the row's key, so the index holds 12 bytes per slot. */
struct slot {
	uint64_t h;
	uint32_t row1;
};

struct cache_key_index {
	struct slot *slots; /* first member: freed by cache_base_unref */
	size_t mask;
};

static uint64_t key_hash(const uint8_t *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static bool row_has_key(const struct cache_base *b, size_t r, const uint8_t *key, size_t n,
                        struct buf *tmp)
{
	buf_reset(tmp);
	return cache_key_of_row(b, b->rows, r, tmp) == 0 && tmp->len == n &&
	       !memcmp(tmp->data, key, n);
}

size_t cache_base_find(const struct cache_base *b, const uint8_t *key, size_t n, struct buf *tmp)
{
	const struct cache_key_index *ix = b->index;
	if (!ix)
		return SIZE_MAX;
	uint64_t h = key_hash(key, n);
	for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
		const struct slot *sl = &ix->slots[i];
		if (!sl->row1)
			return SIZE_MAX;
		if (sl->h == h && row_has_key(b, sl->row1 - 1, key, n, tmp))
			return sl->row1 - 1;
	}
}

int cache_base_index(struct cache_base *b)
{
	if (!b->n_key)
		return 0;
	size_t rows = cache_segment_rows(b->rows);
	size_t cap = 16;
	while (cap < rows * 2)
		cap *= 2;
	struct cache_key_index *ix = calloc(1, sizeof(*ix));
	if (!ix || !(ix->slots = calloc(cap, sizeof(*ix->slots)))) {
		free(ix);
		return -ENOMEM;
	}
	ix->mask = cap - 1;
	struct buf key, tmp;
	buf_init(&key);
	buf_init(&tmp);
	int rc = 0;
	for (size_t r = 0; r < rows && rc == 0; r++) {
		buf_reset(&key);
		if ((rc = cache_key_of_row(b, b->rows, r, &key)) < 0)
			break;
		uint64_t h = key_hash(key.data, key.len);
		size_t i = h & ix->mask;
		for (; ix->slots[i].row1; i = (i + 1) & ix->mask) {
			if (ix->slots[i].h == h &&
			    row_has_key(b, ix->slots[i].row1 - 1, key.data, key.len, &tmp)) {
				rc = -EEXIST;
				break;
			}
		}
		if (rc == 0)
			ix->slots[i] = (struct slot){h, (uint32_t)(r + 1)};
	}
	buf_free(&key);
	buf_free(&tmp);
	if (rc < 0) {
		free(ix->slots);
		free(ix);
		return rc;
	}
	b->index = ix;
	b->bytes += cap * sizeof(*ix->slots);
	return 0;
}

/* ---- patches ---- */

/* A set of canonical keys: their hashes sorted, with the key bytes. */
struct key_set {
	struct ent {
		uint64_t h;
		size_t off, len;
	} * v;
	size_t n, cap;
	struct buf bytes;
};

static int set_add(struct key_set *s, const uint8_t *k, size_t n)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct ent *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct ent){key_hash(k, n), s->bytes.len, n};
	return buf_append(&s->bytes, k, n);
}

static int cmp_ent(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return x->h < y->h ? -1 : x->h > y->h;
}

static bool set_has(const struct key_set *s, const uint8_t *k, size_t n)
{
	uint64_t h = key_hash(k, n);
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->v[mid].h < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < s->n && s->v[lo].h == h; lo++)
		if (s->v[lo].len == n && !memcmp(s->bytes.data + s->v[lo].off, k, n))
			return true;
	return false;
}

/* Walks a buffer of keys, each after its u32 length. */
static bool next_key(const struct buf *b, size_t *off, const uint8_t **k, size_t *n, size_t nkey)
{
	/* A canonical key is nkey (u32 length, bytes) pairs: find its end. */
	size_t start = *off, o = *off;
	for (size_t c = 0; c < nkey; c++) {
		uint32_t len;
		if (b->len - o < 4)
			return false;
		memcpy(&len, b->data + o, 4);
		if (b->len - o - 4 < len)
			return false;
		o += 4 + len;
	}
	*k = b->data + start;
	*n = o - start;
	*off = o;
	return true;
}

struct cache_snapshot *cache_snapshot_patch(const struct cache_snapshot *s,
                                            const struct cache_patch *p)
{
	const struct cache_base *b = s->base;
	struct key_set set = {0};
	struct buf key, tmp;
	buf_init(&set.bytes);
	buf_init(&key);
	buf_init(&tmp);
	struct cache_snapshot *n = new_version(b, s->db, s->table, p->version);
	struct cache_segment_builder db = {0};
	struct cache_segment_shape shape = {
	        .n_cols = b->n_cols,
	        .vec_col = b->vec_col,
	        .dim = VEC_DIM_ANY,
	        .dialect = b->dialect,
	        .canonical_vectors = !b->mariadb,
	};
	if (!n)
		goto failed;
	bool dim_set;
	size_t dim = vec_table_dim(cache_segment_vecs(b->rows), &dim_set);
	if (dim_set)
		shape.dim = dim;
	atomic_fetch_add_explicit(&((struct cache_base *)b)->refs, 1, memory_order_relaxed);
	n->base = (struct cache_base *)b;
	/* Every key the patch covers: those the writes named, and those of the
	 * rows read back (an AUTO_INCREMENT insert names none). */
	size_t off = 0;
	const uint8_t *k;
	size_t kn;
	while (off < p->keys.len && next_key(&p->keys, &off, &k, &kn, b->n_key))
		if (set_add(&set, k, kn) < 0)
			goto failed;
	size_t prow = p->rows ? cache_segment_rows(p->rows) : 0;
	for (size_t r = 0; r < prow; r++) {
		buf_reset(&key);
		if (cache_key_of_row(b, p->rows, r, &key) < 0 ||
		    set_add(&set, key.data, key.len) < 0)
			goto failed;
	}
	qsort(set.v, set.n, sizeof(*set.v), cmp_ent);
	/* Tombstones: the base rows of those keys. */
	size_t words = (n->n_base + 63) / 64;
	n->n_dead = s->n_dead;
	if (set.n) {
		if (!(n->live = malloc((words ? words : 1) * 8)))
			goto failed;
		if (s->live)
			memcpy(n->live, s->live, words * 8);
		else
			memset(n->live, 0xff, words * 8);
		for (size_t i = 0; i < set.n; i++) {
			size_t r = cache_base_find(b, set.bytes.data + set.v[i].off, set.v[i].len,
			                           &tmp);
			if (r != SIZE_MAX && (n->live[r / 64] >> (r % 64) & 1)) {
				n->live[r / 64] &= ~(1ull << (r % 64));
				n->n_dead++;
			}
		}
	} else if (s->live) {
		if (!(n->live = malloc((words ? words : 1) * 8)))
			goto failed;
		memcpy(n->live, s->live, words * 8);
	}
	/* The delta: the old one's rows not covered, then the rows read back. */
	if (cache_segment_builder_init(&db, &shape) < 0)
		goto failed;
	size_t drows = s->delta ? cache_segment_rows(s->delta) : 0;
	for (size_t r = 0; r < drows; r++) {
		buf_reset(&key);
		if (cache_key_of_row(b, s->delta, r, &key) < 0)
			goto failed;
		if (set_has(&set, key.data, key.len))
			continue;
		if (cache_segment_builder_copy(&db, s->delta, r) < 0)
			goto failed;
	}
	for (size_t r = 0; r < prow; r++)
		if (cache_segment_builder_copy(&db, p->rows, r) < 0)
			goto failed;
	if (cache_segment_builder_rows(&db) && !(n->delta = cache_segment_builder_finish(&db)))
		goto failed;
	cache_segment_builder_free(&db);
	count_bytes(n);
	free(set.v);
	buf_free(&set.bytes);
	buf_free(&key);
	buf_free(&tmp);
	return n;
failed:
	cache_segment_builder_free(&db);
	free(set.v);
	buf_free(&set.bytes);
	buf_free(&key);
	buf_free(&tmp);
	cache_snapshot_unref(n);
	return NULL;
}
