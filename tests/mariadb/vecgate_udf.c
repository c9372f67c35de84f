/* MariaDB UDFs with TiDB's vector functions (VEC_COSINE_DISTANCE, VEC_AS_TEXT,
 * ...), computed by src/vec, so a MariaDB server can stand in for TiDB in
 * tests when tidb-server cannot be built. Load with functions.sql. */
#include <mysql.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec/vec.h"

/* Per-statement scratch, made in *_init and freed in *_deinit: the server
 * may run the same function in many threads at once, so nothing mutable is
 * static (but the arithmetic below, set once at load). VECGATE_UDF_DIALECT=v8.5
 * in the server's environment selects TiDB v8.5.x parsing (see enum
 * vec_dialect). */
struct scratch {
	enum vec_dialect dialect;
	enum vec_arith arith; /* the server's when the statement started */
	struct vec_f32 a;
	struct vec_f32 b;
	struct buf text;
};

#define EXPORT __attribute__((visibility("default")))

/* The distances' arithmetic (enum vec_arith), from VECGATE_UDF_ARITH in the
 * server's environment ("separate", the default; "fused"; "fused-except-ip"),
 * read once when the server loads the library, before any function runs:
 * a database then answers as one TiDB build would. An unknown name makes
 * every distance function refuse to start (arith_ok false), so a test
 * never runs against an arithmetic it did not ask for.
 * VECGATE_UDF_SET_ARITH('fused') changes it for statements that start
 * afterwards, as a TiDB whose plan moves the distance between TiKV and
 * TiDB's own (fused) code would: a test of how vecgate notices. */
static _Atomic int arith = VEC_ARITH_SEPARATE;
static bool arith_ok = true;
static char arith_env[32];

__attribute__((constructor)) static void read_arith(void)
{
	const char *e = getenv("VECGATE_UDF_ARITH");
	enum vec_arith a;
	if (!e || !*e)
		return;
	if (vec_arith_parse(e, strlen(e), &a) != 0) {
		arith_ok = false;
		snprintf(arith_env, sizeof(arith_env), "%s", e);
		return;
	}
	atomic_store(&arith, (int)a);
}

/* The entry points MariaDB looks up by name. */
#define REAL_FN(name)                                                                              \
	EXPORT my_bool name##_init(UDF_INIT *initid, UDF_ARGS *args, char *message);               \
	EXPORT void name##_deinit(UDF_INIT *initid);                                               \
	EXPORT double name(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error);
REAL_FN(vec_cosine_distance)
REAL_FN(vec_l2_distance)
REAL_FN(vec_l1_distance)
REAL_FN(vec_negative_inner_product)
REAL_FN(vec_l2_norm)
EXPORT my_bool vec_dims_init(UDF_INIT *initid, UDF_ARGS *args, char *message);
EXPORT void vec_dims_deinit(UDF_INIT *initid);
EXPORT long long vec_dims(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error);
#define STRING_FN(name)                                                                            \
	EXPORT my_bool name##_init(UDF_INIT *initid, UDF_ARGS *args, char *message);               \
	EXPORT void name##_deinit(UDF_INIT *initid);                                               \
	EXPORT char *name(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length,   \
	                  char *is_null, char *error);
STRING_FN(vec_from_text)
STRING_FN(vec_as_text)
STRING_FN(vecgate_udf_set_arith)

/* Common *_init: nargs string arguments, scratch in initid->ptr. */
static my_bool setup(UDF_INIT *initid, UDF_ARGS *args, char *message, unsigned nargs,
                     const char *name)
{
	if (args->arg_count != nargs) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "%s() takes %u argument%s", name, nargs,
		         nargs == 1 ? "" : "s");
		return 1;
	}
	for (unsigned i = 0; i < nargs; i++)
		args->arg_type[i] = STRING_RESULT;
	struct scratch *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "%s(): out of memory", name);
		return 1;
	}
	const char *d = getenv("VECGATE_UDF_DIALECT");
	s->dialect = d && strcmp(d, "v8.5") == 0 ? VEC_TIDB_V8_5 : VEC_TIDB_MASTER;
	s->arith = (enum vec_arith)atomic_load(&arith);
	vec_f32_init(&s->a);
	vec_f32_init(&s->b);
	buf_init(&s->text);
	initid->ptr = (char *)s;
	initid->maybe_null = 1;
	initid->decimals = 31; /* NOT_FIXED_DEC, as TiDB's DOUBLE results */
	initid->const_item = 0;
	return 0;
}

static void teardown(UDF_INIT *initid)
{
	struct scratch *s = (struct scratch *)initid->ptr;
	if (!s)
		return;
	vec_f32_free(&s->a);
	vec_f32_free(&s->b);
	buf_free(&s->text);
	free(s);
	initid->ptr = NULL;
}

/* TiDB's error goes to the server's error log; the row gets NULL. */
static void report(const char *fn, const struct vec_err *e)
{
	fprintf(stderr, "vecgate_udf: %s(): ERROR %d (%s): %s%.*s\n", fn, e->code, e->sqlstate,
	        e->msg, (int)(e->echo_len > 4096 ? 4096 : e->echo_len), e->echo ? e->echo : "");
}

/* Parses argument i into v. 1 when the result is decided (NULL argument
 * gives NULL; a bad literal sets *error), 0 to go on. */
static int arg_vector(struct scratch *s, UDF_ARGS *args, unsigned i, struct vec_f32 *v,
                      const char *fn, char *is_null, char *error)
{
	if (!args->args[i]) {
		*is_null = 1;
		return 1;
	}
	struct vec_err e;
	if (vec_parse_dialect(args->args[i], args->lengths[i], s->dialect, v, &e) != 0) {
		report(fn, &e);
		*error = 1;
		return 1;
	}
	return 0;
}

/* The four distances: TiDB evaluates the first argument, then the second. */
static double distance(enum vec_metric m, const char *fn, UDF_INIT *initid, UDF_ARGS *args,
                       char *is_null, char *error)
{
	struct scratch *s = (struct scratch *)initid->ptr;
	if (arg_vector(s, args, 0, &s->a, fn, is_null, error) ||
	    arg_vector(s, args, 1, &s->b, fn, is_null, error))
		return 0;
	struct vec_err e;
	double d;
	bool null;
	if (vec_distance_check_arith(m, s->arith, s->a.v, s->a.dim, s->b.v, s->b.dim, &d, &null,
	                             &e) != 0) {
		report(fn, &e);
		*error = 1;
		return 0;
	}
	*is_null = null;
	return null ? 0 : d;
}

#define DISTANCE_FN(name, metric)                                                                  \
	my_bool name##_init(UDF_INIT *initid, UDF_ARGS *args, char *message)                       \
	{                                                                                          \
		if (!arith_ok) {                                                                   \
			snprintf(message, MYSQL_ERRMSG_SIZE, "unknown VECGATE_UDF_ARITH=%s",       \
			         arith_env);                                                       \
			return 1;                                                                  \
		}                                                                                  \
		return setup(initid, args, message, 2, #name);                                     \
	}                                                                                          \
	void name##_deinit(UDF_INIT *initid)                                                       \
	{                                                                                          \
		teardown(initid);                                                                  \
	}                                                                                          \
	double name(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)                  \
	{                                                                                          \
		return distance(metric, #name, initid, args, is_null, error);                      \
	}
DISTANCE_FN(vec_cosine_distance, VEC_COSINE)
DISTANCE_FN(vec_l2_distance, VEC_L2)
DISTANCE_FN(vec_l1_distance, VEC_L1)
DISTANCE_FN(vec_negative_inner_product, VEC_NEG_IP)

my_bool vec_l2_norm_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	return setup(initid, args, message, 1, "vec_l2_norm");
}

void vec_l2_norm_deinit(UDF_INIT *initid)
{
	teardown(initid);
}

double vec_l2_norm(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)
{
	struct scratch *s = (struct scratch *)initid->ptr;
	if (arg_vector(s, args, 0, &s->a, "vec_l2_norm", is_null, error))
		return 0;
	bool null;
	double d = vec_norm(s->a.v, s->a.dim, &null);
	*is_null = null;
	return null ? 0 : d;
}

my_bool vec_dims_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	return setup(initid, args, message, 1, "vec_dims");
}

void vec_dims_deinit(UDF_INIT *initid)
{
	teardown(initid);
}

long long vec_dims(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)
{
	struct scratch *s = (struct scratch *)initid->ptr;
	if (arg_vector(s, args, 0, &s->a, "vec_dims", is_null, error))
		return 0;
	return (long long)s->a.dim;
}

/* VEC_FROM_TEXT and VEC_AS_TEXT: a string argument is parsed either way, and
 * the vector printed TiDB's way, so '[1, 2, 3]' becomes '[1,2,3]'. The text
 * lives in the scratch buffer until the next row. */
static char *as_text(const char *fn, UDF_INIT *initid, UDF_ARGS *args, unsigned long *length,
                     char *is_null, char *error)
{
	struct scratch *s = (struct scratch *)initid->ptr;
	if (arg_vector(s, args, 0, &s->a, fn, is_null, error))
		return NULL;
	buf_reset(&s->text);
	if (vec_format_f32_array(s->a.v, s->a.dim, &s->text) != 0) {
		fprintf(stderr, "vecgate_udf: %s(): out of memory\n", fn);
		*error = 1;
		return NULL;
	}
	*length = s->text.len;
	return (char *)s->text.data;
}

#define TEXT_FN(name)                                                                              \
	my_bool name##_init(UDF_INIT *initid, UDF_ARGS *args, char *message)                       \
	{                                                                                          \
		my_bool rc = setup(initid, args, message, 1, #name);                               \
		initid->max_length = VEC_MAX_DIM * 50 + 2;                                         \
		initid->decimals = 0;                                                              \
		return rc;                                                                         \
	}                                                                                          \
	void name##_deinit(UDF_INIT *initid)                                                       \
	{                                                                                          \
		teardown(initid);                                                                  \
	}                                                                                          \
	char *name(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length,          \
	           char *is_null, char *error)                                                     \
	{                                                                                          \
		(void)result;                                                                      \
		return as_text(#name, initid, args, length, is_null, error);                       \
	}
TEXT_FN(vec_from_text)
TEXT_FN(vec_as_text)

/* VECGATE_UDF_SET_ARITH(name): the arithmetic of distance functions in
 * statements that start from now on; returns its name. */
my_bool vecgate_udf_set_arith_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	return setup(initid, args, message, 1, "vecgate_udf_set_arith");
}

void vecgate_udf_set_arith_deinit(UDF_INIT *initid)
{
	teardown(initid);
}

char *vecgate_udf_set_arith(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length,
                            char *is_null, char *error)
{
	(void)initid;
	enum vec_arith a;
	if (!args->args[0] || vec_arith_parse(args->args[0], args->lengths[0], &a) != 0) {
		*error = 1;
		return NULL;
	}
	atomic_store(&arith, (int)a);
	*is_null = 0;
	*length = strlen(vec_arith_name(a));
	memcpy(result, vec_arith_name(a), *length);
	return result;
}
