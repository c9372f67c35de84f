/* Building and reading the blocked, transposed vector layout of block.h.
 * The squared norms must match vec_dist.c's cosine bit for bit, in both
 * arithmetics: this file is built with -ffp-contract=off like the rest of
 * src/vec. */
#include "vec/block.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vec/vec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Chunks grow geometrically up to about this size, so a small table wastes
 * little and a large one is a few hundred chunks. */
#define CHUNK_TARGET (4u << 20)
/* Chunks this large are huge-page aligned and advised: a streaming scan
 * then walks far fewer TLB entries. */
#define HUGE_PAGE (2u << 20)

/* What a dimension-0 block points at: kernels never read it. */
static _Alignas(VEC_BLOCK_ALIGN) const float no_floats[VEC_BLOCK_W];

static size_t round_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* Grows *p (elements of size sz, *cap of them) to hold at least need. */
static int grow(void **p, size_t *cap, size_t need, size_t sz, size_t *bytes)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * sz);
	if (!np)
		return -ENOMEM;
	*bytes += (ncap - *cap) * sz;
	*p = np;
	*cap = ncap;
	return 0;
}

int vec_builder_init(struct vec_builder *b, size_t dim)
{
	b->t = NULL;
	if (dim != VEC_DIM_ANY && dim > VEC_MAX_DIM)
		return -EINVAL;
	struct vec_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->bytes = sizeof(*t);
	if (dim != VEC_DIM_ANY) {
		t->dim = dim;
		t->dim_set = true;
		t->blk_floats = dim * VEC_BLOCK_W;
	}
	b->t = t;
	return 0;
}

/* Makes room for block t->n_blocks, zeroed. */
static int new_block(struct vec_table *t)
{
	size_t blk_bytes = t->blk_floats * sizeof(float);
	if (blk_bytes == 0)
		return 0;
	struct vec_chunk *last = t->n_chunks ? &t->chunks[t->n_chunks - 1] : NULL;
	if (!last || t->n_blocks - last->first_block == last->cap) {
		int rc = grow((void **)&t->chunks, &t->chunks_cap, t->n_chunks + 1,
		              sizeof(*t->chunks), &t->bytes);
		if (rc)
			return rc;
		size_t max_cap = CHUNK_TARGET / blk_bytes ? CHUNK_TARGET / blk_bytes : 1;
		size_t cap = t->n_blocks ? t->n_blocks : 1;
		if (cap > max_cap)
			cap = max_cap;
		size_t align = VEC_BLOCK_ALIGN, bytes = round_up(cap * blk_bytes, VEC_BLOCK_ALIGN);
		if (bytes >= HUGE_PAGE) {
			align = HUGE_PAGE;
			bytes = round_up(bytes, HUGE_PAGE);
		}
		float *data = aligned_alloc(align, bytes);
		if (!data)
			return -ENOMEM;
#ifdef MADV_HUGEPAGE
		if (align == HUGE_PAGE)
			(void)madvise(data, bytes, MADV_HUGEPAGE); /* advice only */
#endif
		last = &t->chunks[t->n_chunks++];
		last->data = data;
		last->first_block = t->n_blocks;
		last->cap = bytes / blk_bytes;
		last->bytes = bytes;
		t->bytes += bytes;
	}
	float *blk = last->data + (t->n_blocks - last->first_block) * t->blk_floats;
	memset(blk, 0, blk_bytes); /* spare lanes of a last block stay zero */
	return 0;
}

/* Makes room for ncap slots in norms (and slot_row once it exists). */
static int reserve_slots(struct vec_table *t, size_t ncap)
{
	float *norms = realloc(t->norms, ncap * sizeof(*norms));
	if (!norms)
		return -ENOMEM;
	t->norms = norms;
	norms = realloc(t->norms_fused, ncap * sizeof(*norms));
	if (!norms)
		return -ENOMEM; /* norms' extra room is harmless */
	t->norms_fused = norms;
	if (t->slot_row) {
		uint32_t *map = realloc(t->slot_row, ncap * sizeof(*map));
		if (!map)
			return -ENOMEM; /* norms' extra room is harmless */
		t->slot_row = map;
	}
	size_t per_slot = 2 * sizeof(float) + (t->slot_row ? sizeof(uint32_t) : 0);
	t->bytes = t->bytes - t->slots_cap * per_slot + ncap * per_slot;
	t->slots_cap = ncap;
	return 0;
}

/* From the first row kept out of the blocks on, slots need their rows. */
static int need_slot_map(struct vec_table *t)
{
	if (t->slot_row)
		return 0;
	if (t->slots_cap == 0) {
		int rc = reserve_slots(t, 64);
		if (rc)
			return rc;
	}
	t->slot_row = malloc(t->slots_cap * sizeof(*t->slot_row));
	if (!t->slot_row)
		return -ENOMEM;
	t->bytes += t->slots_cap * sizeof(*t->slot_row);
	for (size_t s = 0; s < t->n_slots; s++)
		t->slot_row[s] = (uint32_t)s;
	return 0;
}

/* The norms of block b's 16 lanes (a spare lane's are 0, as its floats),
 * once its rows are all in it.
 * TiDB's cosine sums |v|^2 in float32, left to right, multiply then add;
 * the fused sum too (one fmaf a step), at 4 bytes a row, so that a fused
 * cosine scan reads the blocks once, as the separate one does
 * (docs/tidb.md §3). On AVX-512 the 16 rows' sums run in the lanes of a
 * vector, each lane the same operations in the same order as
 * vec_norm_sq_f32(), so the same floats. */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void block_norms_avx512(const float *blk, size_t dim,
                                                                  float *norms, float *norms_fused)
{
	__m512 s = _mm512_setzero_ps(), f = s;
	for (size_t j = 0; j < dim; j++) {
		__m512 x = _mm512_load_ps(blk + j * VEC_BLOCK_W);
		s = _mm512_add_ps(s, _mm512_mul_ps(x, x));
		f = _mm512_fmadd_ps(x, x, f);
	}
	_mm512_storeu_ps(norms, s);
	_mm512_storeu_ps(norms_fused, f);
}
#endif

static void block_norms(struct vec_table *t, size_t b)
{
	const float *blk = vec_table_block(t, b, NULL);
	size_t s0 = b * VEC_BLOCK_W;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx512f")) {
		block_norms_avx512(blk, t->dim, t->norms + s0, t->norms_fused + s0);
		return;
	}
#endif
	for (size_t l = 0; l < VEC_BLOCK_W; l++) {
		float sum = 0, fused = 0;
		for (size_t j = 0; j < t->dim; j++) {
			float x = blk[j * VEC_BLOCK_W + l];
			sum += x * x;
			fused = fmaf(x, x, fused);
		}
		t->norms[s0 + l] = sum;
		t->norms_fused[s0 + l] = fused;
	}
}

static int add_slot(struct vec_table *t, const float *v)
{
	if (t->n_slots == t->slots_cap) {
		int rc = reserve_slots(t, t->slots_cap ? t->slots_cap * 2 : 64);
		if (rc)
			return rc;
	}
	if (t->n_slots % VEC_BLOCK_W == 0) {
		int rc = new_block(t);
		if (rc)
			return rc;
		t->n_blocks++;
	}
	size_t lane = t->n_slots % VEC_BLOCK_W;
	float *blk = (float *)vec_table_block(t, t->n_blocks - 1, NULL);
	for (size_t j = 0; j < t->dim; j++)
		blk[j * VEC_BLOCK_W + lane] = v[j];
	if (t->slot_row)
		t->slot_row[t->n_slots] = (uint32_t)t->n_rows;
	t->n_slots++;
	t->n_rows++;
	if (lane == VEC_BLOCK_W - 1)
		block_norms(t, t->n_blocks - 1);
	return 0;
}

int vec_builder_add(struct vec_builder *b, const float *v, size_t dim)
{
	struct vec_table *t = b->t;
	if (t->n_rows >= UINT32_MAX)
		return -EOVERFLOW;
	if (dim > VEC_MAX_DIM)
		return -EINVAL;
	if (!t->dim_set) {
		t->dim = dim;
		t->dim_set = true;
		t->blk_floats = dim * VEC_BLOCK_W;
	}
	if (dim == t->dim)
		return add_slot(t, v);

	int rc = need_slot_map(t);
	if (rc)
		return rc;
	rc = grow((void **)&t->mixed, &t->mixed_cap, t->n_mixed + 1, sizeof(*t->mixed), &t->bytes);
	if (rc)
		return rc;
	float *copy = malloc(dim ? dim * sizeof(float) : 1);
	if (!copy)
		return -ENOMEM;
	if (dim)
		memcpy(copy, v, dim * sizeof(float));
	t->bytes += dim * sizeof(float);
	t->mixed[t->n_mixed++] = (struct vec_mixed_row){(uint32_t)t->n_rows, (uint32_t)dim, copy};
	t->n_rows++;
	return 0;
}

int vec_builder_add_null(struct vec_builder *b)
{
	struct vec_table *t = b->t;
	if (t->n_rows >= UINT32_MAX)
		return -EOVERFLOW;
	int rc = need_slot_map(t);
	if (rc)
		return rc;
	rc = grow((void **)&t->null_rows, &t->null_cap, t->n_null + 1, sizeof(uint32_t), &t->bytes);
	if (rc)
		return rc;
	t->null_rows[t->n_null++] = (uint32_t)t->n_rows++;
	return 0;
}

/* Gives back the slack of a growable array; keeping it is harmless. */
static void shrink(void **p, size_t *cap, size_t n, size_t sz, size_t *bytes)
{
	if (n == *cap || n == 0)
		return;
	void *np = realloc(*p, n * sz);
	if (!np)
		return;
	*bytes -= (*cap - n) * sz;
	*p = np;
	*cap = n;
}

/* Gives back the unused end of the last chunk when it is large (a chunk
 * rounded up to whole huge pages can be a third empty): its blocks move to
 * an allocation of their size. Keeping it is harmless (out of memory). */
static void trim_last_chunk(struct vec_table *t)
{
	if (!t->n_chunks)
		return;
	struct vec_chunk *last = &t->chunks[t->n_chunks - 1];
	size_t blk_bytes = t->blk_floats * sizeof(float);
	size_t used = round_up((t->n_blocks - last->first_block) * blk_bytes, VEC_BLOCK_ALIGN);
	if (used == 0 || last->bytes - used < last->bytes / 8)
		return;
	/* Huge-page alignment only where it costs little: the scan's TLB
	 * gain is not worth an eighth of the chunk. */
	size_t align = VEC_BLOCK_ALIGN, bytes = used;
	if (used >= HUGE_PAGE && round_up(used, HUGE_PAGE) - used < used / 8) {
		align = HUGE_PAGE;
		bytes = round_up(used, HUGE_PAGE);
	}
	if (bytes >= last->bytes)
		return;
	float *data = aligned_alloc(align, bytes);
	if (!data)
		return;
#ifdef MADV_HUGEPAGE
	if (align == HUGE_PAGE)
		(void)madvise(data, bytes, MADV_HUGEPAGE); /* advice only */
#endif
	memcpy(data, last->data, used);
	free(last->data);
	t->bytes = t->bytes - last->bytes + bytes;
	last->data = data;
	last->cap = bytes / blk_bytes;
	last->bytes = bytes;
}

struct vec_table *vec_builder_finish(struct vec_builder *b)
{
	struct vec_table *t = b->t;
	b->t = NULL;
	if (!t)
		return NULL;
	if (t->n_slots % VEC_BLOCK_W) /* the last block's rows */
		block_norms(t, t->n_blocks - 1);
	trim_last_chunk(t);
	/* Only gives back slack; the norms keep whole blocks (block_norms). */
	size_t keep = round_up(t->n_slots, VEC_BLOCK_W);
	if (keep && keep < t->slots_cap)
		(void)reserve_slots(t, keep);
	shrink((void **)&t->null_rows, &t->null_cap, t->n_null, sizeof(uint32_t), &t->bytes);
	shrink((void **)&t->mixed, &t->mixed_cap, t->n_mixed, sizeof(*t->mixed), &t->bytes);
	shrink((void **)&t->chunks, &t->chunks_cap, t->n_chunks, sizeof(*t->chunks), &t->bytes);
	return t;
}

void vec_builder_free(struct vec_builder *b)
{
	vec_table_free(b->t);
	b->t = NULL;
}

void vec_table_free(struct vec_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_chunks; i++)
		free(t->chunks[i].data);
	for (size_t i = 0; i < t->n_mixed; i++)
		free(t->mixed[i].v);
	free(t->chunks);
	free(t->mixed);
	free(t->null_rows);
	free(t->slot_row);
	free(t->norms);
	free(t->norms_fused);
	free(t);
}

size_t vec_table_rows(const struct vec_table *t)
{
	return t->n_rows;
}

size_t vec_table_dim(const struct vec_table *t, bool *is_set)
{
	if (is_set)
		*is_set = t->dim_set;
	return t->dim;
}

size_t vec_table_null_count(const struct vec_table *t)
{
	return t->n_null;
}

size_t vec_table_mixed(const struct vec_table *t, size_t *row, size_t *dim)
{
	if (t->n_mixed) {
		if (row)
			*row = t->mixed[0].row;
		if (dim)
			*dim = t->mixed[0].dim;
	}
	return t->n_mixed;
}

size_t vec_table_bytes(const struct vec_table *t)
{
	return t->bytes;
}

const float *vec_table_block(const struct vec_table *t, size_t b, size_t *run)
{
	if (t->blk_floats == 0) {
		if (run)
			*run = t->n_blocks - b;
		return no_floats;
	}
	/* Chunks are few and ascending: binary search for the one holding b. */
	size_t lo = 0, hi = t->n_chunks;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->chunks[mid].first_block <= b)
			lo = mid;
		else
			hi = mid;
	}
	const struct vec_chunk *c = &t->chunks[lo];
	size_t in = b - c->first_block;
	if (run) {
		size_t end = c->first_block + c->cap;
		*run = (end < t->n_blocks ? end : t->n_blocks) - b;
	}
	return c->data + in * t->blk_floats;
}

uint32_t vec_table_lane_mask(const struct vec_table *t, size_t b)
{
	size_t left = t->n_slots - b * VEC_BLOCK_W;
	return left >= VEC_BLOCK_W ? (1u << VEC_BLOCK_W) - 1 : (1u << left) - 1;
}

uint32_t vec_table_block_mask(const struct vec_table *t, size_t b, const uint64_t *allowed)
{
	uint32_t lanes = vec_table_lane_mask(t, b);
	if (!allowed)
		return lanes;
	size_t s0 = b * VEC_BLOCK_W;
	if (!t->slot_row) /* slot == row: 16 bits of one word (W divides 64) */
		return lanes & (uint32_t)(allowed[s0 / 64] >> (s0 % 64) & 0xffff);
	uint32_t m = 0;
	for (size_t l = 0; l < VEC_BLOCK_W; l++)
		if (lanes >> l & 1 && vec_row_allowed(allowed, t->slot_row[s0 + l]))
			m |= 1u << l;
	return m;
}

/* Index of r in a[0..n) (ascending), or n. */
static size_t find_u32(const uint32_t *a, size_t n, size_t r)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t v = a[mid];
		if (v == r)
			return mid;
		if (v < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return n;
}

int vec_table_get(const struct vec_table *t, size_t r, float *out, size_t cap, size_t *dim,
                  bool *is_null)
{
	if (r >= t->n_rows)
		return -ERANGE;
	*is_null = false;
	size_t s = t->slot_row ? find_u32(t->slot_row, t->n_slots, r) : r;
	if (s < t->n_slots) {
		const float *blk = vec_table_block(t, s / VEC_BLOCK_W, NULL);
		*dim = t->dim;
		for (size_t j = 0; j < t->dim && j < cap; j++)
			out[j] = blk[j * VEC_BLOCK_W + s % VEC_BLOCK_W];
		return 0;
	}
	for (size_t i = 0; i < t->n_mixed && t->mixed[i].row <= r; i++) {
		if (t->mixed[i].row != r)
			continue;
		*dim = t->mixed[i].dim;
		if (cap)
			memcpy(out, t->mixed[i].v, (*dim < cap ? *dim : cap) * sizeof(float));
		return 0;
	}
	*dim = 0;
	*is_null = true;
	return 0;
}
