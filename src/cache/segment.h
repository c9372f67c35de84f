/* A segment: rows of one cached table held in memory, immutable once built
 * and shared by reference count. Each row keeps its cells as the server
 * printed them in a text-protocol row, except the vector cell, which is
 * kept only as float32 when the server's own formatting of those floats
 * gives the cell's text back byte for byte (TiDB always prints its canonical
 * form; the MariaDB stand-in returns the text its clients inserted, so its
 * rows may keep their text). The vectors are in the SIMD layout (vec/block.h).
 * A snapshot is a base segment with tombstones plus a small delta segment
 * (snapshot.h). Built on a pool thread; read by any number of threads. */
#ifndef VECGATE_CACHE_SEGMENT_H
#define VECGATE_CACHE_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "vec/block.h"
#include "vec/vec.h"

struct cache_segment;

/* What a builder needs to know of the table. */
struct cache_segment_shape {
	size_t n_cols;
	size_t vec_col;           /* index of the vector column */
	size_t dim;               /* declared dimension, or VEC_DIM_ANY */
	enum vec_dialect dialect; /* how the server's vector text parses */
	/* The server prints vectors as TiDB does: a cell whose text is the
	 * canonical form of its floats need not be kept. False: keep every
	 * vector cell's text. */
	bool canonical_vectors;
};

/* Largest text of one vector cell the segment can rebuild: what
 * cache_segment_cell() needs as scratch for a dim-dimensional vector. dim
 * is the column's declared dimension or the segment's (vec_table_dim());
 * VEC_DIM_ANY counts as VEC_MAX_DIM. Only rows of the segment's dimension
 * are rebuilt (others keep their text), so one size serves every row. */
size_t cache_segment_vec_text_max(size_t dim);

/* Builds a segment row by row. Not thread-safe; a loader may use one
 * builder per thread and join them in order (cache_segment_builder_join). */
struct cache_segment_builder {
	void *impl; /* private */
};

/* 0, -EINVAL (vec_col >= n_cols, dim above VEC_MAX_DIM), -ENOMEM. */
int cache_segment_builder_init(struct cache_segment_builder *b,
                               const struct cache_segment_shape *shape) MUST_CHECK;
/* A builder for rows that will be joined into another builder (a loader's
 * thread's share): it keeps its vectors as plain arrays, so the join
 * copies each vector once instead of twice. Otherwise the same; finishing
 * one works too. */
int cache_segment_builder_init_part(struct cache_segment_builder *b,
                                    const struct cache_segment_shape *shape) MUST_CHECK;
/* Appends the next row: cells[i] (lens[i] bytes; NULL for SQL NULL) as the
 * server sent them. The vector cell is parsed as the server's text; -EINVAL
 * with the reason in err (errlen bytes) when it is not a vector (the
 * builder is unchanged); -ENOMEM, -EOVERFLOW past UINT32_MAX rows (then
 * the builder may only be freed). */
int cache_segment_builder_add(struct cache_segment_builder *b, const char *const *cells,
                              const unsigned long *lens, char *err, size_t errlen) MUST_CHECK;
/* cache_segment_builder_add in two steps, so that the parsing may run on
 * other threads than the builder: cache_segment_parse reads a vector cell
 * as a builder of that shape would (into v; *canonical: the text need not
 * be kept; errors as for _add), cache_segment_builder_add_parsed appends
 * the row with that vector and what cache_segment_parse said of it (v and
 * dim are ignored when the vector cell is NULL). */
int cache_segment_parse(const struct cache_segment_shape *shape, const char *cell,
                        unsigned long len, struct vec_f32 *v, bool *canonical, char *err,
                        size_t errlen) MUST_CHECK;
int cache_segment_builder_add_parsed(struct cache_segment_builder *b, const char *const *cells,
                                     const unsigned long *lens, const float *v, size_t dim,
                                     bool canonical) MUST_CHECK;
/* Appends row r of segment s as it is (for copying rows into a new delta):
 * a rebuilt vector cell stays rebuilt unless the row's dimension is not
 * b's table's. -ERANGE when r is not a row of s; errors as for _add. */
int cache_segment_builder_copy(struct cache_segment_builder *b, const struct cache_segment *s,
                               size_t r) MUST_CHECK;
/* Appends every row of other (same shape) after b's, and frees other's
 * builder state (freeing other afterwards does nothing). 0 or -ENOMEM;
 * after an error both may only be freed. */
int cache_segment_builder_join(struct cache_segment_builder *b,
                               struct cache_segment_builder *other) MUST_CHECK;
/* Rows and bytes so far (for memory limits). */
size_t cache_segment_builder_rows(const struct cache_segment_builder *b);
size_t cache_segment_builder_bytes(const struct cache_segment_builder *b);
/* The finished segment (refs 1), or NULL when out of memory; the builder
 * is empty afterwards either way (it may take new rows; free it when
 * done). */
struct cache_segment *cache_segment_builder_finish(struct cache_segment_builder *b);
/* The segment cache_segment_builder_finish() gives will build its screen
 * later (cache_segment_build_screen), not in the finish. */
void cache_segment_builder_defer_screen(struct cache_segment_builder *b);
void cache_segment_builder_free(struct cache_segment_builder *b);

void cache_segment_ref(struct cache_segment *s);
void cache_segment_unref(struct cache_segment *s);

size_t cache_segment_rows(const struct cache_segment *s);
size_t cache_segment_bytes(const struct cache_segment *s);
const struct vec_table *cache_segment_vecs(const struct cache_segment *s);
/* The int8 screen of the segment's vectors (vec/screen.h), for a segment
 * finished while screening was on whose table has a few blocks of at least
 * 16 dimensions: built when the segment is finished, or, for a builder
 * told cache_segment_builder_defer_screen(), later by
 * cache_segment_build_screen() on any thread while the segment is already
 * in use (scans take the plain exact path until then). NULL otherwise,
 * while it is pending, or while screening is off. Its memory is part of
 * cache_segment_bytes() from the segment's finish on, built or pending:
 * cache_segment_screen_bytes (even while screening is off: it is still
 * held). Any thread. */
struct vec_screen;
const struct vec_screen *cache_segment_screen(const struct cache_segment *s);
size_t cache_segment_screen_bytes(const struct cache_segment *s);
/* Whether the segment's screen is still to be built. */
bool cache_segment_screen_pending(const struct cache_segment *s);
/* Builds a pending screen (one caller does; the others return at once):
 * true when this call built it. Any thread, while holding a reference. */
bool cache_segment_build_screen(struct cache_segment *s);
/* [cache] screening (default on): whether segments finished from now on
 * get a screen, and whether scans use the screens of existing ones.
 * Process-wide; any thread. */
void cache_segment_set_screening(bool on);
bool cache_segment_screening(void);
/* What scratch cache_segment_cell() needs for this segment's vector cells:
 * cache_segment_vec_text_max() of its dimension, 0 when no cell is
 * rebuilt. */
size_t cache_segment_scratch_size(const struct cache_segment *s);
/* Rows whose vector text is rebuilt from the floats. */
size_t cache_segment_rebuilt_rows(const struct cache_segment *s);

/* Row r's cell of column c as the server printed it: false for NULL. *p
 * points into the segment, or into scratch (at least
 * cache_segment_vec_text_max(dim) bytes, any alignment; may be NULL when c
 * is not the vector column) for a vector cell rebuilt from its floats.
 * Allocates nothing; any number of threads may call it at once, each with
 * its own scratch. */
bool cache_segment_cell(const struct cache_segment *s, size_t r, size_t c, char *scratch,
                        const uint8_t **p, size_t *n);

#endif
