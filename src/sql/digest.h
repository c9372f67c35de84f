/* Normalised statement text and its XXH3 digest: the result cache's key and,
 * with literals masked, the kNN recogniser's per-shape key. */
#ifndef VECGATE_SQL_DIGEST_H
#define VECGATE_SQL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* A byte range of the statement. */
struct sql_span {
	size_t off, len;
};

/* Every literal (string, number, hex, bit) becomes '?'. */
#define SQL_NORM_MASK_LITERALS 0x1u
/* Keep each SELECT's select list byte for byte (see sql_normalize). */
#define SQL_NORM_KEEP_SELECT_LISTS 0x2u

/* Appends the normalised form of sql[0..n) to out. Tokens are copied as
 * they are, except that TiDB's reserved keywords are lower-cased (not right
 * before or after a '.', where they are names); each run of white space and
 * ordinary comments becomes one space, and none is kept at either end nor
 * before trailing ';' (which are dropped). Executable comments and hints
 * are kept as they are.
 * Never lower-cased or re-spaced: names and function names, because a result
 * column that is not aliased is named after its text as typed ("COUNT(*)",
 * "a  +  1"), and a result cache must not give one statement's column names to
 * another. For the same reason SQL_NORM_KEEP_SELECT_LISTS copies select lists
 * verbatim, and keep[0..nkeep) (sorted, disjoint, on token boundaries) names
 * more ranges to copy verbatim (not masked either).
 * lexflags are SQL_LEX_* (EXPAND_EXEC is ignored). Returns 0, -EINVAL when the
 * text does not tokenize (out then holds a partial result), or -ENOMEM. */
int sql_normalize(const char *sql, size_t n, unsigned lexflags, unsigned normflags,
                  const struct sql_span *keep, size_t nkeep, struct buf *out) MUST_CHECK;

/* XXH3-64 (with seed) of what sql_normalize would append, without building
 * it. 0 or -EINVAL (the text does not tokenize; *hash is then unset). */
int sql_normalize_hash(const char *sql, size_t n, unsigned lexflags, unsigned normflags,
                       const struct sql_span *keep, size_t nkeep, uint64_t seed,
                       uint64_t *hash) MUST_CHECK;

/* The result cache's statement digest: XXH3-64 with seed over the text
 * normalised with SQL_NORM_KEEP_SELECT_LISTS. Text that does not tokenize is
 * hashed raw (under a different seed), so two such texts share a digest only
 * when they are byte-identical. The caller mixes schema, user, charset and
 * protocol flags into seed. */
uint64_t sql_digest(const char *sql, size_t n, unsigned lexflags, uint64_t seed);

#endif
