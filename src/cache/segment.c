/* Segments (segment.h): rows as text-protocol payloads, minus the vector
 * cells that the server's formatting of their floats gives back.
 *
 * A row whose vector cell is rebuilt keeps an empty string in the cell's
 * place and has its bit set in `rebuilt`; cache_segment_cell() prints the
 * floats again (vec_format_f32_array_to()). Only rows whose dimension is the
 * table's are rebuilt, so one scratch size serves every row.
 *
 * A builder keeps its vectors in a vec_builder; a part
 * (cache_segment_builder_init_part) keeps them as plain arrays, so that
 * joining it into another builder copies each vector once. */
#include "cache/segment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec/screen.h"

/* A segment's screen: settled (built, or none to build), pending (the
 * finish left it for cache_segment_build_screen), or being built. */
enum screen_state { SCREEN_SETTLED, SCREEN_PENDING, SCREEN_BUILDING };

struct cache_segment {
	atomic_int refs;
	struct cache_segment_shape shape;
	size_t n_rows;
	uint8_t *rows;     /* payloads, back to back */
	size_t *row_off;   /* [n_rows + 1]: row r is rows[row_off[r], row_off[r + 1]) */
	uint64_t *rebuilt; /* bit r: row r's vector text is rebuilt; NULL when none is */
	size_t n_rebuilt;
	struct vec_table *vecs;
	/* The int8 copy screening the scans of vecs (vec/screen.h); NULL when
	 * the table is too small to gain from it, screening was off, or while
	 * it is still to be built (screen_state). Written once, by whichever
	 * thread builds it (release), read by scans (acquire). */
	_Atomic(struct vec_screen *) screen;
	atomic_int screen_state; /* enum screen_state */
	size_t screen_bytes;     /* counted in bytes: built, or reserved while pending */
	size_t scratch;          /* what cache_segment_cell() needs; 0 when nothing is rebuilt */
	size_t bytes;            /* everything above, the screen included */
};

/* [cache] screening: whether new segments get a screen and scans use it. */
static atomic_bool screening = true;

void cache_segment_set_screening(bool on)
{
	atomic_store_explicit(&screening, on, memory_order_relaxed);
}

bool cache_segment_screening(void)
{
	return atomic_load_explicit(&screening, memory_order_relaxed);
}

/* A screen pays when its int8 pass skips whole blocks of float32 reads:
 * below a few blocks, or below 16 dimensions (where the codes and the
 * per-row bounds are about as large as the floats), it only costs memory.
 * A table with rows of another dimension is never scanned (vec_knn refuses
 * it). */
#define SCREEN_MIN_BLOCKS 8
#define SCREEN_MIN_DIM    16

static bool wants_screen(const struct vec_table *t)
{
	return cache_segment_screening() && t->n_blocks >= SCREEN_MIN_BLOCKS &&
	       vec_table_dim(t, NULL) >= SCREEN_MIN_DIM && !vec_table_mixed(t, NULL, NULL);
}

/* A NULL vector in a part's dims[]. */
#define NULL_DIM UINT32_MAX

struct builder {
	struct cache_segment_shape shape;
	bool part;
	struct buf rows;    /* payloads */
	struct buf offs;    /* size_t per row: where its payload starts */
	struct buf rebuilt; /* uint64_t words */
	size_t n, n_rebuilt;
	/* Vectors: a vec_builder (vb.t is NULL until the first row), or in a
	 * part, the floats of the non-NULL rows back to back and each row's
	 * dimension (NULL_DIM for NULL). */
	struct vec_builder vb;
	struct buf flat;
	struct buf dims;
	size_t part_dim; /* a part's table dimension, as a vec_builder would take it */
	bool part_dim_set;
	struct vec_f32 v;  /* parsed vector, or a copied one */
	struct buf text;   /* a vector's text when a row must get it back */
	bool defer_screen; /* cache_segment_builder_defer_screen() */
};

size_t cache_segment_vec_text_max(size_t dim)
{
	if (dim > VEC_MAX_DIM)
		dim = VEC_MAX_DIM;
	/* The text, then room for the floats it is printed from. */
	return vec_f32_array_text_max(dim) + dim * sizeof(float) + _Alignof(float);
}

static struct builder *impl(const struct cache_segment_builder *b)
{
	return b->impl;
}

static int init(struct cache_segment_builder *b, const struct cache_segment_shape *shape, bool part)
{
	b->impl = NULL;
	if (shape->vec_col >= shape->n_cols ||
	    (shape->dim != VEC_DIM_ANY && shape->dim > VEC_MAX_DIM))
		return -EINVAL;
	struct builder *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->shape = *shape;
	x->part = part;
	buf_init(&x->rows);
	buf_init(&x->offs);
	buf_init(&x->rebuilt);
	buf_init(&x->flat);
	buf_init(&x->dims);
	buf_init(&x->text);
	vec_f32_init(&x->v);
	if (shape->dim != VEC_DIM_ANY) {
		x->part_dim = shape->dim;
		x->part_dim_set = true;
	}
	b->impl = x;
	return 0;
}

int cache_segment_builder_init(struct cache_segment_builder *b,
                               const struct cache_segment_shape *shape)
{
	return init(b, shape, false);
}

int cache_segment_builder_init_part(struct cache_segment_builder *b,
                                    const struct cache_segment_shape *shape)
{
	return init(b, shape, true);
}

/* The table's dimension so far: false while no row has set it. */
static bool table_dim(const struct builder *x, size_t *dim)
{
	if (x->part || !x->vb.t) {
		*dim = x->part_dim;
		return x->part_dim_set;
	}
	*dim = x->vb.t->dim;
	return x->vb.t->dim_set;
}

/* Appends the next row's vector (v[0..dim), or NULL). *common: whether it
 * has the table's dimension (so its text may be rebuilt). */
static int put_vec(struct builder *x, const float *v, size_t dim, bool is_null, bool *common)
{
	*common = false;
	if (x->part) {
		uint32_t d = is_null ? NULL_DIM : (uint32_t)dim;
		if (!is_null && dim > VEC_MAX_DIM)
			return -EINVAL;
		if (!is_null && !x->part_dim_set) {
			x->part_dim = dim;
			x->part_dim_set = true;
		}
		int rc = buf_append(&x->dims, &d, sizeof(d));
		if (rc == 0 && !is_null && dim)
			rc = buf_append(&x->flat, v, dim * sizeof(float));
		*common = !is_null && dim == x->part_dim;
		return rc;
	}
	if (!x->vb.t) {
		int rc = vec_builder_init(&x->vb, x->shape.dim);
		if (rc)
			return rc;
	}
	if (is_null)
		return vec_builder_add_null(&x->vb);
	int rc = vec_builder_add(&x->vb, v, dim);
	*common = rc == 0 && dim == x->vb.t->dim;
	if (rc == 0 && !x->part_dim_set) {
		x->part_dim = x->vb.t->dim;
		x->part_dim_set = true;
	}
	return rc;
}

/* Sets or clears the next row's rebuilt bit (row x->n). */
static int put_bit(struct builder *x, bool on)
{
	size_t word = x->n / 64;
	if (word * sizeof(uint64_t) >= x->rebuilt.len) {
		uint64_t zero = 0;
		int rc = buf_append(&x->rebuilt, &zero, sizeof(zero));
		if (rc)
			return rc;
	}
	if (on) {
		((uint64_t *)x->rebuilt.data)[word] |= UINT64_C(1) << (x->n % 64);
		x->n_rebuilt++;
	}
	return 0;
}

static bool bit(const uint64_t *words, size_t r)
{
	return words && (words[r / 64] >> (r % 64)) & 1;
}

/* Appends a payload: cells[i] (NULL: SQL NULL), the vector cell's text
 * left out when rebuilt. */
static int put_row(struct builder *x, const char *const *cells, const unsigned long *lens,
                   bool rebuilt)
{
	size_t off = x->rows.len;
	int rc = buf_append(&x->offs, &off, sizeof(off));
	for (size_t i = 0; rc == 0 && i < x->shape.n_cols; i++) {
		if (!cells[i])
			rc = wr_u8(&x->rows, 0xFB);
		else if (i == x->shape.vec_col && rebuilt)
			rc = wr_u8(&x->rows, 0); /* the empty string */
		else
			rc = wr_lenenc_str(&x->rows, cells[i], lens[i]);
	}
	if (rc == 0)
		rc = put_bit(x, rebuilt);
	if (rc == 0)
		x->n++;
	return rc;
}

int cache_segment_parse(const struct cache_segment_shape *shape, const char *cell,
                        unsigned long len, struct vec_f32 *v, bool *canonical, char *err,
                        size_t errlen)
{
	struct vec_err ve;
	*canonical = false;
	int rc = shape->canonical_vectors
	                 ? vec_parse_canonical(cell, len, shape->dialect, v, canonical, &ve)
	                 : vec_parse_dialect(cell, len, shape->dialect, v, &ve);
	if (rc == 0)
		return 0;
	if (ve.code == 0)
		return -ENOMEM;
	snprintf(err, errlen, "%s", ve.msg);
	return -EINVAL;
}

int cache_segment_builder_add_parsed(struct cache_segment_builder *b, const char *const *cells,
                                     const unsigned long *lens, const float *v, size_t dim,
                                     bool canonical)
{
	struct builder *x = impl(b);
	bool is_null = !cells[x->shape.vec_col], common;
	int rc = put_vec(x, v, is_null ? 0 : dim, is_null, &common);
	return rc ? rc : put_row(x, cells, lens, common && canonical && x->shape.canonical_vectors);
}

int cache_segment_builder_add(struct cache_segment_builder *b, const char *const *cells,
                              const unsigned long *lens, char *err, size_t errlen)
{
	struct builder *x = impl(b);
	const char *cell = cells[x->shape.vec_col];
	bool canonical = false;
	if (cell) {
		int rc = cache_segment_parse(&x->shape, cell, lens[x->shape.vec_col], &x->v,
		                             &canonical, err, errlen);
		if (rc)
			return rc;
	}
	return cache_segment_builder_add_parsed(b, cells, lens, x->v.v, x->v.dim, canonical);
}

/* Makes x->v hold at least dim floats. */
static int reserve_floats(struct builder *x, size_t dim)
{
	if (x->v.cap >= dim)
		return 0;
	float *v = realloc(x->v.v, (dim ? dim : 1) * sizeof(float));
	if (!v)
		return -ENOMEM;
	x->v.v = v;
	x->v.cap = dim;
	return 0;
}

/* Appends a payload taken from another builder or segment. When the vector
 * text was rebuilt there but cannot be here (the row's dimension is not
 * this table's), the text v[0..dim) prints is put back in its cell. With
 * recheck, a kept text that could not be rebuilt there (its dimension was
 * not that table's) but can here is dropped when canonical. */
static int put_payload(struct builder *x, const uint8_t *p, size_t n, bool rebuilt, bool common,
                       const float *v, size_t dim, bool recheck)
{
	bool drop = !rebuilt && common && recheck && x->shape.canonical_vectors;
	if (rebuilt ? common : !drop) {
		size_t off = x->rows.len;
		int rc = buf_append(&x->offs, &off, sizeof(off));
		if (rc == 0)
			rc = buf_append(&x->rows, p, n);
		if (rc == 0)
			rc = put_bit(x, rebuilt);
		if (rc == 0)
			x->n++;
		return rc;
	}
	const char **cells = malloc(x->shape.n_cols * sizeof(*cells));
	unsigned long *lens = malloc(x->shape.n_cols * sizeof(*lens));
	int rc = cells && lens ? 0 : -ENOMEM;
	struct rd rd = rd_make(p, n);
	for (size_t i = 0; rc == 0 && i < x->shape.n_cols; i++) {
		uint64_t len;
		bool is_null;
		/* Written by a builder: well formed. */
		if (!rd_lenenc(&rd, &len, &is_null) || (!is_null && rd_left(&rd) < len)) {
			rc = -EINVAL;
			break;
		}
		cells[i] = is_null ? NULL : (const char *)rd.p;
		lens[i] = (unsigned long)len;
		if (!is_null)
			rd.p += len;
	}
	if (rc == 0 && drop) {
		const char *t = cells[x->shape.vec_col];
		rc = put_row(x, cells, lens,
		             t && vec_format_f32_array_is(v, dim, t, lens[x->shape.vec_col]));
	} else if (rc == 0) {
		buf_reset(&x->text);
		rc = vec_format_f32_array(v, dim, &x->text);
		if (rc == 0) {
			cells[x->shape.vec_col] = (const char *)x->text.data;
			lens[x->shape.vec_col] = (unsigned long)x->text.len;
			rc = put_row(x, cells, lens, false);
		}
	}
	free(cells);
	free(lens);
	return rc;
}

int cache_segment_builder_copy(struct cache_segment_builder *b, const struct cache_segment *s,
                               size_t r)
{
	struct builder *x = impl(b);
	if (r >= s->n_rows)
		return -ERANGE;
	size_t dim = 0;
	bool is_null = false, common;
	int rc = vec_table_get(s->vecs, r, x->v.v, x->v.cap, &dim, &is_null);
	if (rc == 0 && !is_null && dim > x->v.cap) {
		if ((rc = reserve_floats(x, dim)) == 0)
			rc = vec_table_get(s->vecs, r, x->v.v, x->v.cap, &dim, &is_null);
	}
	if (rc == 0)
		rc = put_vec(x, x->v.v, dim, is_null, &common);
	if (rc == 0)
		rc = put_payload(x, s->rows + s->row_off[r], s->row_off[r + 1] - s->row_off[r],
		                 bit(s->rebuilt, r), common, x->v.v, dim, false);
	return rc;
}

static void builder_release(struct builder *x)
{
	buf_free(&x->rows);
	buf_free(&x->offs);
	buf_free(&x->rebuilt);
	buf_free(&x->flat);
	buf_free(&x->dims);
	buf_free(&x->text);
	vec_f32_free(&x->v);
	vec_builder_free(&x->vb);
}

void cache_segment_builder_free(struct cache_segment_builder *b)
{
	struct builder *x = impl(b);
	if (!x)
		return;
	builder_release(x);
	free(x);
	b->impl = NULL;
}

/* Row r of builder o's vector: *v (into o's floats or x->v), *dim,
 * *is_null. *flat_at walks o's floats row by row (parts). */
static int other_vec(struct builder *x, struct builder *o, size_t r, size_t *flat_at,
                     const float **v, size_t *dim, bool *is_null)
{
	if (o->part) {
		uint32_t d = ((const uint32_t *)o->dims.data)[r];
		*is_null = d == NULL_DIM;
		*dim = *is_null ? 0 : d;
		*v = (const float *)(o->flat.data + *flat_at);
		*flat_at += *dim * sizeof(float);
		return 0;
	}
	*v = x->v.v;
	int rc = vec_table_get(o->vb.t, r, x->v.v, x->v.cap, dim, is_null);
	if (rc == 0 && !*is_null && *dim > x->v.cap) {
		if ((rc = reserve_floats(x, *dim)) == 0)
			rc = vec_table_get(o->vb.t, r, x->v.v, x->v.cap, dim, is_null);
		*v = x->v.v;
	}
	return rc;
}

int cache_segment_builder_join(struct cache_segment_builder *b, struct cache_segment_builder *other)
{
	struct builder *x = impl(b), *o = impl(other);
	if (!o)
		return 0;
	size_t flat_at = 0;
	const size_t *offs = (const size_t *)o->offs.data;
	const uint64_t *bits = (const uint64_t *)o->rebuilt.data;
	int rc = 0;
	if (x->part && o->part &&
	    (!x->part_dim_set || !o->part_dim_set || x->part_dim == o->part_dim)) {
		/* Part into part: the arrays go over as they are. */
		size_t base = x->rows.len;
		for (size_t r = 0; rc == 0 && r < o->n; r++) {
			size_t off = base + offs[r];
			rc = buf_append(&x->offs, &off, sizeof(off));
			if (rc == 0)
				rc = put_bit(x, bit(bits, r));
			if (rc == 0)
				x->n++;
		}
		if (rc == 0)
			rc = buf_append(&x->rows, o->rows.data, o->rows.len);
		if (rc == 0)
			rc = buf_append(&x->dims, o->dims.data, o->dims.len);
		if (rc == 0)
			rc = buf_append(&x->flat, o->flat.data, o->flat.len);
		if (rc == 0 && !x->part_dim_set && o->part_dim_set) {
			x->part_dim = o->part_dim;
			x->part_dim_set = true;
		}
		if (rc == 0)
			cache_segment_builder_free(other);
		return rc;
	}
	/* Rows of the other dimension were judged against another table's. */
	size_t xd, od;
	bool recheck = table_dim(x, &xd) && table_dim(o, &od) && xd != od;
	for (size_t r = 0; rc == 0 && r < o->n; r++) {
		const float *v;
		size_t dim;
		bool is_null, common;
		rc = other_vec(x, o, r, &flat_at, &v, &dim, &is_null);
		if (rc == 0)
			rc = put_vec(x, v, dim, is_null, &common);
		if (rc == 0) {
			size_t end = r + 1 < o->n ? offs[r + 1] : o->rows.len;
			rc = put_payload(x, o->rows.data + offs[r], end - offs[r], bit(bits, r),
			                 common, v, dim, recheck);
		}
	}
	if (rc == 0)
		cache_segment_builder_free(other);
	return rc;
}

size_t cache_segment_builder_rows(const struct cache_segment_builder *b)
{
	return impl(b)->n;
}

size_t cache_segment_builder_bytes(const struct cache_segment_builder *b)
{
	const struct builder *x = impl(b);
	return sizeof(*x) + x->rows.cap + x->offs.cap + x->rebuilt.cap + x->flat.cap + x->dims.cap +
	       (x->vb.t ? vec_table_bytes(x->vb.t) : 0);
}

/* A part's vectors into a vec_builder. */
static int unflatten(struct builder *x)
{
	int rc = vec_builder_init(&x->vb, x->shape.dim);
	size_t at = 0;
	for (size_t r = 0; rc == 0 && r < x->n; r++) {
		uint32_t d = ((const uint32_t *)x->dims.data)[r];
		if (d == NULL_DIM) {
			rc = vec_builder_add_null(&x->vb);
		} else {
			rc = vec_builder_add(&x->vb, (const float *)(x->flat.data + at), d);
			at += (size_t)d * sizeof(float);
		}
	}
	buf_free(&x->flat);
	buf_free(&x->dims);
	return rc;
}

/* Leaves x empty, as if just initialised. */
static void builder_empty(struct builder *x)
{
	struct cache_segment_shape shape = x->shape;
	bool part = x->part;
	builder_release(x);
	memset(x, 0, sizeof(*x));
	x->shape = shape;
	x->part = part;
	if (shape.dim != VEC_DIM_ANY) {
		x->part_dim = shape.dim;
		x->part_dim_set = true;
	}
}

struct cache_segment *cache_segment_builder_finish(struct cache_segment_builder *b)
{
	struct builder *x = impl(b);
	struct cache_segment *s = calloc(1, sizeof(*s));
	size_t end = x->rows.len;
	if (!s || buf_append(&x->offs, &end, sizeof(end)) < 0)
		goto fail;
	if (x->part ? unflatten(x) < 0 : !x->vb.t && vec_builder_init(&x->vb, x->shape.dim) < 0)
		goto fail;
	atomic_init(&s->refs, 1);
	s->shape = x->shape;
	s->n_rows = x->n;
	s->vecs = vec_builder_finish(&x->vb);
	/* Hand over the buffers' memory, shrunk to fit. */
	uint8_t *rows = x->rows.len ? realloc(x->rows.data, x->rows.len) : NULL;
	s->rows = rows ? rows : x->rows.data;
	x->rows.data = NULL;
	s->row_off = realloc(x->offs.data, x->offs.len);
	if (!s->row_off)
		s->row_off = (size_t *)x->offs.data;
	x->offs.data = NULL;
	if (x->n_rebuilt) {
		s->rebuilt = (uint64_t *)x->rebuilt.data;
		x->rebuilt.data = NULL;
		s->n_rebuilt = x->n_rebuilt;
		s->scratch = cache_segment_vec_text_max(vec_table_dim(s->vecs, NULL));
	}
	atomic_init(&s->screen, NULL);
	atomic_init(&s->screen_state, SCREEN_SETTLED);
	if (wants_screen(s->vecs)) {
		/* Counted from now on, so that memory_limit sees it before it
		 * is built. */
		s->screen_bytes = vec_screen_build_bytes(s->vecs);
		if (x->defer_screen) {
			atomic_store(&s->screen_state, SCREEN_PENDING);
		} else {
			/* Out of memory: the segment is still whole, its scans
			 * exact. */
			struct vec_screen *scr = vec_screen_build(s->vecs);
			atomic_store(&s->screen, scr);
		}
	}
	s->bytes = sizeof(*s) + x->rows.len + x->offs.len + (s->rebuilt ? x->rebuilt.len : 0) +
	           vec_table_bytes(s->vecs) + s->screen_bytes;
	builder_empty(x);
	return s;
fail:
	free(s);
	builder_empty(x);
	return NULL;
}

void cache_segment_ref(struct cache_segment *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void cache_segment_unref(struct cache_segment *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(s->rows);
	free(s->row_off);
	free(s->rebuilt);
	vec_screen_free(atomic_load(&s->screen)); /* it reads vecs: freed first */
	vec_table_free(s->vecs);
	free(s);
}

size_t cache_segment_rows(const struct cache_segment *s)
{
	return s->n_rows;
}

size_t cache_segment_bytes(const struct cache_segment *s)
{
	return s->bytes;
}

const struct vec_table *cache_segment_vecs(const struct cache_segment *s)
{
	return s->vecs;
}

const struct vec_screen *cache_segment_screen(const struct cache_segment *s)
{
	return cache_segment_screening()
	               ? atomic_load_explicit(&((struct cache_segment *)s)->screen,
	                                      memory_order_acquire)
	               : NULL;
}

size_t cache_segment_screen_bytes(const struct cache_segment *s)
{
	return s->screen_bytes;
}

bool cache_segment_screen_pending(const struct cache_segment *s)
{
	return atomic_load(&((struct cache_segment *)s)->screen_state) != SCREEN_SETTLED;
}

void cache_segment_builder_defer_screen(struct cache_segment_builder *b)
{
	impl(b)->defer_screen = true;
}

bool cache_segment_build_screen(struct cache_segment *s)
{
	int pending = SCREEN_PENDING;
	if (!atomic_compare_exchange_strong(&s->screen_state, &pending, SCREEN_BUILDING))
		return false;
	/* Out of memory: no screen, scans exact; its bytes stay counted. */
	struct vec_screen *scr = vec_screen_build(s->vecs);
	atomic_store_explicit(&s->screen, scr, memory_order_release);
	atomic_store(&s->screen_state, SCREEN_SETTLED);
	return scr != NULL;
}

size_t cache_segment_scratch_size(const struct cache_segment *s)
{
	return s->scratch;
}

size_t cache_segment_rebuilt_rows(const struct cache_segment *s)
{
	return s->n_rebuilt;
}

bool cache_segment_cell(const struct cache_segment *s, size_t r, size_t c, char *scratch,
                        const uint8_t **p, size_t *n)
{
	struct rd rd = rd_make(s->rows + s->row_off[r], s->row_off[r + 1] - s->row_off[r]);
	for (size_t i = 0;; i++) {
		uint64_t len;
		bool is_null;
		/* The builder wrote these rows: they are well formed. */
		if (!rd_lenenc(&rd, &len, &is_null))
			return false;
		if (i == c) {
			if (is_null)
				return false;
			*p = rd.p;
			*n = (size_t)len;
			break;
		}
		if (!is_null && !rd_skip(&rd, (size_t)len))
			return false;
	}
	if (c != s->shape.vec_col || !bit(s->rebuilt, r))
		return true;
	/* The floats go after the longest text, aligned; the text is printed
	 * from them at the start. */
	size_t dim = vec_table_dim(s->vecs, NULL);
	uintptr_t at = (uintptr_t)(scratch + vec_f32_array_text_max(dim));
	float *v = (float *)((at + _Alignof(float) - 1) & ~(uintptr_t)(_Alignof(float) - 1));
	size_t got = 0;
	bool is_null = false;
	if (vec_table_get(s->vecs, r, v, dim, &got, &is_null) != 0 || is_null || got != dim)
		return false; /* not so: rebuilt rows have the table's dimension */
	*n = vec_format_f32_array_to(v, dim, scratch);
	*p = (const uint8_t *)scratch;
	return true;
}
