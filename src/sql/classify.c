/* Statement classification by the leading keywords and a light walk over
 * table references. Whenever the text leaves the forms known here, the answer
 * leans to the safe side: SQL_KIND_UNKNOWN or SQL_CF_ALL_TABLES. */
#include "sql/classify.h"

#include <errno.h>
#include <string.h>

/* A cursor over one statement's tokens. ';' and lexing errors read as the
 * end; optimizer hints are skipped (they change plans, not effects). */
struct cur {
	const char *s;
	unsigned lexflags;
	struct sql_lexer lx;
	struct sql_tok t;
	bool err;        /* the text stopped tokenizing */
	bool exec_tok;   /* a nested executable comment we did not read */
	bool saw_exec;   /* an executable comment was read in this statement */
	size_t last_end; /* end of the last token of the statement so far */
};

static void next(struct cur *c)
{
	if (c->err || c->t.kind == SQL_TOK_END || sql_tok_is_op(&c->t, ';'))
		return;
	c->last_end = c->t.off + c->t.len;
	for (;;) {
		if (sql_lex_next(&c->lx, &c->t) < 0) {
			c->err = true;
			c->t.kind = SQL_TOK_END;
			return;
		}
		c->saw_exec |= c->lx.saw_exec;
		c->lx.saw_exec = false;
		if (c->t.kind == SQL_TOK_HINT)
			continue;
		if (c->t.kind == SQL_TOK_EXEC_COMMENT) {
			c->exec_tok = true;
			continue;
		}
		return;
	}
}

static bool at_end(const struct cur *c)
{
	return c->t.kind == SQL_TOK_END || sql_tok_is_op(&c->t, ';');
}

static bool kw(const struct cur *c, const char *w)
{
	return sql_tok_is_kw(c->s, &c->t, w);
}

static bool accept(struct cur *c, const char *w)
{
	if (!kw(c, w))
		return false;
	next(c);
	return true;
}

static bool is_op(const struct cur *c, int op)
{
	return sql_tok_is_op(&c->t, op);
}

static bool is_name(const struct cur *c)
{
	return c->t.kind == SQL_TOK_IDENT || c->t.kind == SQL_TOK_QIDENT;
}

/* Skips a parenthesised group; the cursor is on its '('. */
static void skip_group(struct cur *c)
{
	size_t depth = 0;
	do {
		if (is_op(c, '('))
			depth++;
		else if (is_op(c, ')'))
			depth--;
		next(c);
	} while (depth > 0 && !at_end(c));
}

static void add_table(struct sql_class *k, const struct sql_table_ref *r)
{
	if (k->ntables == SQL_CLASS_MAX_TABLES) {
		k->flags |= SQL_CF_ALL_TABLES;
		return;
	}
	k->tables[k->ntables++] = *r;
}

/* Reads [db.]table (and a trailing ".*" of DELETE targets) and records it.
 * False, without moving, when the cursor is not on a name. */
static bool table_name(struct cur *c, struct sql_class *k)
{
	struct sql_table_ref r;
	memset(&r, 0, sizeof(r));
	if (!is_name(c))
		return false;
	r.table = sql_name_of(&c->t, c->s, c->lexflags);
	next(c);
	if (is_op(c, '.')) {
		next(c);
		if (is_name(c)) {
			r.db = r.table;
			r.table = sql_name_of(&c->t, c->s, c->lexflags);
			next(c);
			if (is_op(c, '.')) { /* db.t.* */
				next(c);
				if (is_op(c, '*'))
					next(c);
			}
		} else if (is_op(c, '*')) {
			next(c);
		} else {
			k->flags |= SQL_CF_ALL_TABLES;
		}
	}
	add_table(k, &r);
	return true;
}

static bool kw_in(const struct cur *c, const char *const *stops)
{
	for (; *stops; stops++)
		if (kw(c, *stops))
			return true;
	return false;
}

static bool starts_query(const struct cur *c)
{
	return kw(c, "SELECT") || kw(c, "WITH") || kw(c, "TABLE") || kw(c, "VALUES");
}

/* Walks table references (FROM lists, joins, UPDATE targets) up to a stop
 * keyword at depth 0, recording every base table named where a table may
 * stand. Subqueries (derived tables, ON conditions) only read and are
 * skipped; aliases and DELETE targets may add a name that is not a table,
 * which only makes the cache drop more than it must. */
static void table_refs(struct cur *c, struct sql_class *k, const char *const *stops)
{
	bool want = true;
	size_t depth = 0;
	while (!at_end(c) && !(depth == 0 && kw_in(c, stops))) {
		if (want && is_op(c, '(')) {
			struct cur la = *c;
			next(&la);
			if (starts_query(&la)) {
				skip_group(c);
				want = false;
			} else {
				depth++;
				next(c);
			}
		} else if (want) {
			if (!table_name(c, k)) {
				k->flags |= SQL_CF_ALL_TABLES;
				next(c);
			}
			want = false;
		} else if (is_op(c, ',') || kw(c, "JOIN") || kw(c, "STRAIGHT_JOIN")) {
			want = true;
			next(c);
		} else if (is_op(c, '(')) {
			skip_group(c);
		} else if (is_op(c, ')')) {
			if (depth == 0)
				return;
			depth--;
			next(c);
		} else {
			next(c);
		}
	}
}

static const char *const stop_set[] = {"SET", NULL};
static const char *const stop_where[] = {"WHERE", "ORDER", "LIMIT", "USING", NULL};
static const char *const stop_from[] = {"FROM", NULL};

/* Reads the rest of a query for the flags that matter to a read. */
static void read_rest(struct cur *c, struct sql_class *k)
{
	k->kind = SQL_KIND_READ;
	while (!at_end(c)) {
		if (kw(c, "FOR")) {
			next(c);
			if (kw(c, "UPDATE") || kw(c, "SHARE"))
				k->flags |= SQL_CF_LOCKING;
			continue;
		}
		if (kw(c, "LOCK")) {
			next(c);
			if (kw(c, "IN"))
				k->flags |= SQL_CF_LOCKING;
			continue;
		}
		if (kw(c, "AS")) {
			next(c);
			if (kw(c, "OF"))
				k->flags |= SQL_CF_STALE_READ;
			continue;
		}
		next(c);
	}
}

static void classify_stmt(struct cur *c, struct sql_class *k);

/* INSERT / REPLACE [modifiers] [INTO] t */
static void insert_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	while (accept(c, "LOW_PRIORITY") || accept(c, "DELAYED") || accept(c, "HIGH_PRIORITY") ||
	       accept(c, "IGNORE"))
		;
	accept(c, "INTO");
	if (table_name(c, k))
		k->kind = SQL_KIND_WRITE;
}

static void update_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	while (accept(c, "LOW_PRIORITY") || accept(c, "IGNORE"))
		;
	table_refs(c, k, stop_set);
	if (k->ntables || (k->flags & SQL_CF_ALL_TABLES))
		k->kind = SQL_KIND_WRITE;
}

/* DELETE [mods] FROM refs [USING refs] ... | DELETE [mods] targets FROM refs */
static void delete_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	while (accept(c, "LOW_PRIORITY") || accept(c, "QUICK") || accept(c, "IGNORE"))
		;
	if (!accept(c, "FROM")) {
		table_refs(c, k, stop_from);
		if (!accept(c, "FROM"))
			return;
	}
	table_refs(c, k, stop_where);
	if (accept(c, "USING"))
		table_refs(c, k, stop_where);
	if (k->ntables || (k->flags & SQL_CF_ALL_TABLES))
		k->kind = SQL_KIND_WRITE;
}

/* Moves to the next depth-0 keyword w; false at the end. */
static bool seek(struct cur *c, const char *w)
{
	while (!at_end(c)) {
		if (kw(c, w))
			return true;
		if (is_op(c, '('))
			skip_group(c);
		else
			next(c);
	}
	return false;
}

/* [IF [NOT] EXISTS] */
static void if_exists(struct cur *c)
{
	if (accept(c, "IF")) {
		accept(c, "NOT");
		accept(c, "EXISTS");
	}
}

/* name [, name ...] as DDL targets. */
static void name_list(struct cur *c, struct sql_class *k)
{
	if_exists(c);
	do {
		if (!table_name(c, k))
			return;
	} while (is_op(c, ',') && (next(c), true));
	k->kind = SQL_KIND_DDL;
}

/* ... ON t, for CREATE / DROP INDEX. */
static void index_on(struct cur *c, struct sql_class *k)
{
	if (seek(c, "ON")) {
		next(c);
		if (table_name(c, k))
			k->kind = SQL_KIND_DDL;
	}
}

static void create_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	if (accept(c, "OR"))
		accept(c, "REPLACE");
	bool global = accept(c, "GLOBAL");
	if (global && kw(c, "BINDING")) {
		k->kind = SQL_KIND_OTHER;
		return;
	}
	accept(c, "SESSION");
	/* A session's own TEMPORARY table hides a base table of the same name
	 * from that session; a GLOBAL TEMPORARY one is a real table name. */
	if (accept(c, "TEMPORARY") && !global)
		k->flags |= SQL_CF_TEMPORARY;
	/* View options: ALGORITHM = x, DEFINER = user, SQL SECURITY x. */
	while (kw(c, "ALGORITHM") || kw(c, "DEFINER") || kw(c, "SQL")) {
		while (!at_end(c) && !kw(c, "VIEW"))
			next(c);
	}
	if (accept(c, "TABLE")) {
		if_exists(c);
		if (table_name(c, k))
			k->kind = SQL_KIND_DDL;
	} else if (kw(c, "UNIQUE") || kw(c, "FULLTEXT") || kw(c, "SPATIAL") || kw(c, "VECTOR") ||
	           kw(c, "COLUMNAR") || kw(c, "INDEX") || kw(c, "KEY")) {
		index_on(c, k);
	} else if (accept(c, "VIEW") || accept(c, "SEQUENCE")) {
		if_exists(c);
		if (table_name(c, k))
			k->kind = SQL_KIND_DDL;
	} else if (kw(c, "DATABASE") || kw(c, "SCHEMA")) {
		k->kind = SQL_KIND_DDL;
	} else if (kw(c, "USER") || kw(c, "ROLE")) {
		k->kind = SQL_KIND_ACL;
	} else if (kw(c, "BINDING") || kw(c, "PLACEMENT") || kw(c, "RESOURCE")) {
		k->kind = SQL_KIND_OTHER;
	}
}

static void alter_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	if (accept(c, "TABLE")) {
		if (!table_name(c, k))
			return;
		k->kind = SQL_KIND_DDL;
		/* RENAME [TO|AS] t2 and EXCHANGE PARTITION p WITH TABLE t2 name a
		 * second table. */
		while (!at_end(c)) {
			if (accept(c, "RENAME")) {
				if (kw(c, "COLUMN") || kw(c, "INDEX") || kw(c, "KEY"))
					continue;
				if (!accept(c, "TO"))
					accept(c, "AS");
				if (!table_name(c, k))
					k->flags |= SQL_CF_ALL_TABLES;
			} else if (accept(c, "WITH")) {
				if (accept(c, "TABLE") && !table_name(c, k))
					k->flags |= SQL_CF_ALL_TABLES;
			} else if (is_op(c, '(')) {
				skip_group(c);
			} else {
				next(c);
			}
		}
	} else if (kw(c, "DATABASE") || kw(c, "SCHEMA")) {
		k->kind = SQL_KIND_DDL;
	} else if (kw(c, "USER")) {
		k->kind = SQL_KIND_ACL;
	} else if (accept(c, "VIEW") || accept(c, "SEQUENCE")) {
		if (table_name(c, k))
			k->kind = SQL_KIND_DDL;
	} else if (kw(c, "PLACEMENT") || kw(c, "RESOURCE") || kw(c, "INSTANCE")) {
		k->kind = SQL_KIND_OTHER;
	}
}

static void drop_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	bool global = accept(c, "GLOBAL");
	accept(c, "SESSION");
	if (accept(c, "TEMPORARY") && !global)
		k->flags |= SQL_CF_TEMPORARY;
	if (accept(c, "TABLE") || accept(c, "TABLES") || accept(c, "VIEW") ||
	    accept(c, "SEQUENCE")) {
		name_list(c, k);
	} else if (accept(c, "INDEX") || accept(c, "KEY")) {
		index_on(c, k);
	} else if (accept(c, "DATABASE") || accept(c, "SCHEMA")) {
		if_exists(c);
		k->kind = SQL_KIND_DDL;
		k->flags |= SQL_CF_ALL_TABLES;
		if (is_name(c))
			k->db = sql_name_of(&c->t, c->s, c->lexflags);
	} else if (kw(c, "USER") || kw(c, "ROLE")) {
		k->kind = SQL_KIND_ACL;
	} else if (kw(c, "STATS") || kw(c, "BINDING") || kw(c, "PLACEMENT") || kw(c, "RESOURCE")) {
		k->kind = SQL_KIND_OTHER;
	}
}

/* RENAME TABLE a TO b [, c TO d] */
static void rename_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	if (kw(c, "USER")) {
		k->kind = SQL_KIND_ACL;
		return;
	}
	if (!accept(c, "TABLE"))
		return;
	do {
		if (!table_name(c, k) || !accept(c, "TO") || !table_name(c, k))
			return;
	} while (is_op(c, ',') && (next(c), true));
	k->kind = SQL_KIND_DDL;
}

/* FLASHBACK TABLE t [TO t2] | FLASHBACK DATABASE / CLUSTER ...;
 * RECOVER TABLE t | RECOVER TABLE BY JOB n */
static void flashback_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	k->kind = SQL_KIND_DDL;
	if (accept(c, "TABLE") && !kw(c, "BY") && table_name(c, k)) {
		accept(c, "TO");
		table_name(c, k);
		return;
	}
	k->flags |= SQL_CF_ALL_TABLES;
}

/* A literal boolean of SET autocommit = v, or -1. */
static int bool_value(const struct cur *c)
{
	const struct sql_tok *t = &c->t;
	const char *p = c->s + t->body_off;
	size_t n = t->body_len;
	if (t->kind == SQL_TOK_INT ||
	    (t->kind == SQL_TOK_STRING && !(t->flags & SQL_TOKF_ESCAPED))) {
		if (n == 1 && (p[0] == '0' || p[0] == '1'))
			return p[0] - '0';
	}
	if (t->kind != SQL_TOK_IDENT &&
	    !(t->kind == SQL_TOK_STRING && !(t->flags & SQL_TOKF_ESCAPED)))
		return -1;
	struct sql_name nm = {t->body_off, t->body_len, 0, false, false};
	if (sql_name_eq(c->s, &nm, "ON", 2) || sql_name_eq(c->s, &nm, "TRUE", 4))
		return 1;
	if (sql_name_eq(c->s, &nm, "OFF", 3) || sql_name_eq(c->s, &nm, "FALSE", 5))
		return 0;
	return -1;
}

static bool name_is(const char *s, size_t n, const char *w)
{
	struct sql_name nm = {0, n, 0, false, false};
	return sql_name_eq(s, &nm, w, strlen(w));
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
	size_t l = strlen(pre);
	return n >= l && name_is(s, l, pre);
}

/* What setting the session variable s[0..n) changes. */
static unsigned sysvar_flag(const char *s, size_t n)
{
	static const struct {
		const char *name;
		unsigned flag;
	} vars[] = {
	        {"autocommit", SQL_SETF_AUTOCOMMIT},
	        {"sql_mode", SQL_SETF_SQL_MODE},
	        {"time_zone", SQL_SETF_TIME_ZONE},
	        {"tidb_snapshot", SQL_SETF_SNAPSHOT},
	        {"tidb_read_staleness", SQL_SETF_SNAPSHOT},
	        {"tx_read_ts", SQL_SETF_SNAPSHOT},
	        {"tidb_external_ts", SQL_SETF_SNAPSHOT},
	        {"tidb_enable_external_ts_read", SQL_SETF_SNAPSHOT},
	        {"transaction_isolation", SQL_SETF_TRANSACTION},
	        {"tx_isolation", SQL_SETF_TRANSACTION},
	        {"transaction_read_only", SQL_SETF_TRANSACTION},
	        {"tx_read_only", SQL_SETF_TRANSACTION},
	        {"sql_select_limit", SQL_SETF_SELECT_LIMIT},
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (name_is(s, n, vars[i].name))
			return vars[i].flag;
	if (has_prefix(s, n, "character_set_") || has_prefix(s, n, "collation_"))
		return SQL_SETF_CHARSET;
	return SQL_SETF_OTHER_VAR;
}

/* Skips an assignment's value: up to ',' at depth 0 or the end. */
static void skip_value(struct cur *c)
{
	while (!at_end(c) && !is_op(c, ',')) {
		if (is_op(c, '('))
			skip_group(c);
		else
			next(c);
	}
}

/* SET [scope] var = value [, ...], SET NAMES, SET TRANSACTION, ... */
static void set_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	k->kind = SQL_KIND_SET;
	if (kw(c, "ROLE")) {
		k->kind = SQL_KIND_ROLE;
		return;
	}
	if (kw(c, "PASSWORD") || kw(c, "DEFAULT")) {
		k->kind = SQL_KIND_ACL;
		return;
	}
	if (kw(c, "CONFIG") || kw(c, "BINDING") || kw(c, "RESOURCE")) {
		k->kind = SQL_KIND_OTHER;
		return;
	}
	for (;;) {
		bool global = false;
		const char *name = NULL;
		size_t nlen = 0;
		if (accept(c, "GLOBAL") || accept(c, "INSTANCE") || accept(c, "PERSIST") ||
		    accept(c, "PERSIST_ONLY"))
			global = true;
		else if (!accept(c, "SESSION"))
			accept(c, "LOCAL");
		if (accept(c, "TRANSACTION")) {
			k->set_flags |= global ? SQL_SETF_GLOBAL : SQL_SETF_TRANSACTION;
			while (!at_end(c)) {
				if (kw(c, "AS") && !global)
					k->set_flags |= SQL_SETF_SNAPSHOT;
				next(c);
			}
			return;
		}
		if (accept(c, "NAMES") || accept(c, "CHARSET") ||
		    (kw(c, "CHARACTER") && (next(c), accept(c, "SET")))) {
			k->set_flags |= SQL_SETF_CHARSET;
			skip_value(c);
			goto more;
		}
		if (c->t.kind == SQL_TOK_VAR) {
			const char *p = c->s + c->t.off;
			size_t n = c->t.len;
			if (n < 2 || p[1] != '@') {
				k->set_flags |= SQL_SETF_USER_VAR;
			} else {
				name = p + 2;
				nlen = n - 2;
				if (has_prefix(name, nlen, "global.")) {
					global = true;
					name += 7;
					nlen -= 7;
				} else if (has_prefix(name, nlen, "session.")) {
					name += 8;
					nlen -= 8;
				} else if (has_prefix(name, nlen, "local.")) {
					name += 6;
					nlen -= 6;
				}
			}
			next(c);
		} else if (c->t.kind == SQL_TOK_IDENT) {
			name = c->s + c->t.off;
			nlen = c->t.len;
			next(c);
			if (is_op(c, '.')) { /* component.variable */
				next(c);
				next(c);
				name = NULL;
				if (!global)
					k->set_flags |= SQL_SETF_OTHER_VAR;
			}
		} else {
			k->set_flags |= SQL_SETF_UNKNOWN;
			return;
		}
		if (!is_op(c, '=') && !sql_tok_is_op(&c->t, SQL_OP_ASSIGN)) {
			k->set_flags |= SQL_SETF_UNKNOWN;
			return;
		}
		next(c);
		if (global) {
			k->set_flags |= SQL_SETF_GLOBAL;
		} else if (name) {
			unsigned f = sysvar_flag(name, nlen);
			k->set_flags |= f;
			if (f == SQL_SETF_AUTOCOMMIT) {
				struct cur la = *c;
				k->autocommit = bool_value(c);
				next(&la);
				if (!at_end(&la) && !is_op(&la, ','))
					k->autocommit = -1;
			}
		}
		skip_value(c);
	more:
		if (!is_op(c, ','))
			break;
		next(c);
	}
	if (!at_end(c))
		k->set_flags |= SQL_SETF_UNKNOWN;
}

/* BEGIN [WORK | PESSIMISTIC | OPTIMISTIC]; START TRANSACTION [options] */
static void begin_stmt(struct cur *c, struct sql_class *k, bool start)
{
	next(c);
	if (start && !accept(c, "TRANSACTION"))
		return;
	k->kind = SQL_KIND_BEGIN;
	while (!at_end(c)) {
		if (accept(c, "READ")) {
			if (kw(c, "ONLY"))
				k->flags |= SQL_CF_READ_ONLY;
		} else if (accept(c, "AS")) {
			if (kw(c, "OF"))
				k->flags |= SQL_CF_STALE_READ;
		} else {
			next(c);
		}
	}
}

/* COMMIT / ROLLBACK [WORK] [TO [SAVEPOINT] x] [AND [NO] CHAIN] [[NO] RELEASE] */
static void end_stmt(struct cur *c, struct sql_class *k, enum sql_kind kind)
{
	next(c);
	accept(c, "WORK");
	if (kind == SQL_KIND_ROLLBACK && kw(c, "TO")) {
		k->kind = SQL_KIND_OTHER;
		return;
	}
	k->kind = kind;
	if (accept(c, "AND") && !kw(c, "NO") && kw(c, "CHAIN"))
		k->flags |= SQL_CF_CHAIN;
}

/* EXPLAIN / DESC [FORMAT = x] [ANALYZE] stmt; TRACE [FORMAT = x] stmt. An
 * EXPLAIN ANALYZE or TRACE runs the statement, so it is what it runs. */
static void explain_stmt(struct cur *c, struct sql_class *k, bool runs)
{
	next(c);
	if (accept(c, "FORMAT")) {
		if (is_op(c, '='))
			next(c);
		next(c);
	}
	if (runs || accept(c, "ANALYZE")) {
		if (accept(c, "PLAN"))
			while (!at_end(c) && !kw(c, "SELECT") && !kw(c, "INSERT") &&
			       !kw(c, "UPDATE") && !kw(c, "DELETE") && !kw(c, "REPLACE") &&
			       !kw(c, "WITH"))
				next(c);
		classify_stmt(c, k);
		return;
	}
	k->kind = SQL_KIND_READ;
}

/* WITH [RECURSIVE] cte AS (...) [, ...] then the statement that uses them. */
static void with_stmt(struct cur *c, struct sql_class *k)
{
	next(c);
	accept(c, "RECURSIVE");
	for (;;) {
		if (!is_name(c))
			return;
		next(c);
		if (is_op(c, '('))
			skip_group(c);
		if (!accept(c, "AS") || !is_op(c, '('))
			return;
		skip_group(c);
		if (!is_op(c, ','))
			break;
		next(c);
	}
	if (kw(c, "SELECT") || kw(c, "TABLE") || kw(c, "VALUES") || is_op(c, '('))
		read_rest(c, k);
	else if (kw(c, "UPDATE"))
		update_stmt(c, k);
	else if (kw(c, "DELETE"))
		delete_stmt(c, k);
}

static void classify_stmt(struct cur *c, struct sql_class *k)
{
	size_t parens = 0;
	while (is_op(c, '(')) {
		parens++;
		next(c);
	}
	if (kw(c, "SELECT") || kw(c, "TABLE") || kw(c, "VALUES")) {
		read_rest(c, k);
	} else if (kw(c, "WITH")) {
		with_stmt(c, k);
	} else if (parens) {
		return;
	} else if (kw(c, "INSERT") || kw(c, "REPLACE")) {
		insert_stmt(c, k);
	} else if (kw(c, "UPDATE")) {
		update_stmt(c, k);
	} else if (kw(c, "DELETE")) {
		delete_stmt(c, k);
	} else if (kw(c, "LOAD")) {
		next(c);
		if (kw(c, "STATS")) {
			k->kind = SQL_KIND_OTHER;
		} else if ((kw(c, "DATA") || kw(c, "XML")) && seek(c, "INTO")) {
			next(c);
			if (accept(c, "TABLE") && table_name(c, k))
				k->kind = SQL_KIND_WRITE;
		}
	} else if (kw(c, "IMPORT")) {
		next(c);
		if (accept(c, "INTO") && table_name(c, k))
			k->kind = SQL_KIND_WRITE;
	} else if (kw(c, "BATCH")) {
		while (!at_end(c) && !kw(c, "INSERT") && !kw(c, "UPDATE") && !kw(c, "DELETE") &&
		       !kw(c, "REPLACE"))
			next(c);
		if (!at_end(c))
			classify_stmt(c, k);
	} else if (kw(c, "CREATE")) {
		create_stmt(c, k);
	} else if (kw(c, "ALTER")) {
		alter_stmt(c, k);
	} else if (kw(c, "DROP")) {
		drop_stmt(c, k);
	} else if (kw(c, "RENAME")) {
		rename_stmt(c, k);
	} else if (kw(c, "TRUNCATE")) {
		next(c);
		accept(c, "TABLE");
		if (table_name(c, k))
			k->kind = SQL_KIND_DDL;
	} else if (kw(c, "FLASHBACK") || kw(c, "RECOVER")) {
		flashback_stmt(c, k);
	} else if (kw(c, "BEGIN")) {
		begin_stmt(c, k, false);
	} else if (kw(c, "START")) {
		begin_stmt(c, k, true);
	} else if (kw(c, "COMMIT")) {
		end_stmt(c, k, SQL_KIND_COMMIT);
	} else if (kw(c, "ROLLBACK")) {
		end_stmt(c, k, SQL_KIND_ROLLBACK);
	} else if (kw(c, "SET")) {
		set_stmt(c, k);
	} else if (kw(c, "USE")) {
		next(c);
		if (is_name(c)) {
			k->db = sql_name_of(&c->t, c->s, c->lexflags);
			k->kind = SQL_KIND_USE;
		}
	} else if (kw(c, "GRANT") || kw(c, "REVOKE")) {
		k->kind = SQL_KIND_ACL;
	} else if (kw(c, "EXPLAIN") || kw(c, "DESC") || kw(c, "DESCRIBE")) {
		explain_stmt(c, k, false);
	} else if (kw(c, "TRACE")) {
		explain_stmt(c, k, true);
	} else if (kw(c, "SHOW") || kw(c, "HELP")) {
		k->kind = SQL_KIND_READ;
	} else if (kw(c, "SAVEPOINT") || kw(c, "RELEASE") || kw(c, "ANALYZE") || kw(c, "KILL") ||
	           kw(c, "FLUSH") || kw(c, "DO") || kw(c, "PREPARE") || kw(c, "DEALLOCATE") ||
	           kw(c, "LOCK") || kw(c, "UNLOCK") || kw(c, "SPLIT") || kw(c, "SHUTDOWN")) {
		k->kind = SQL_KIND_OTHER;
	}
}

int sql_classify(const char *sql, size_t n, unsigned lexflags, struct sql_class *out, size_t cap,
                 size_t *count)
{
	struct cur c;
	memset(&c, 0, sizeof(c));
	c.s = sql;
	c.lexflags = lexflags & ~SQL_LEX_EXPAND_EXEC;
	sql_lex_init(&c.lx, sql, n, lexflags | SQL_LEX_EXPAND_EXEC);
	*count = 0;
	/* Prime the cursor: next() refuses to move off an END token. */
	c.t.kind = SQL_TOK_OP;
	c.t.op = 0;
	next(&c);
	for (;;) {
		while (sql_tok_is_op(&c.t, ';') && !c.err) {
			c.t.op = 0; /* step over it */
			c.saw_exec = false;
			c.exec_tok = false;
			next(&c);
		}
		if (c.t.kind == SQL_TOK_END && !c.err) {
			if (*count == 0 && cap > 0) {
				memset(out, 0, sizeof(*out));
				out->kind = SQL_KIND_EMPTY;
				out->autocommit = -1;
				out->len = n;
				*count = 1;
			}
			return cap > 0 ? 0 : -E2BIG;
		}
		if (*count == cap)
			return -E2BIG;
		struct sql_class *k = &out[(*count)++];
		memset(k, 0, sizeof(*k));
		k->autocommit = -1;
		k->off = c.t.off;
		classify_stmt(&c, k);
		while (!at_end(&c))
			next(&c);
		k->len = c.last_end > k->off ? c.last_end - k->off : 0;
		if (c.saw_exec)
			k->flags |= SQL_CF_EXEC_COMMENT;
		if (c.exec_tok)
			k->kind = SQL_KIND_UNKNOWN;
		if (c.err) {
			k->kind = SQL_KIND_UNKNOWN;
			k->len = n - k->off;
			return 0;
		}
	}
}

const char *sql_kind_name(enum sql_kind kind)
{
	static const char *const names[] = {
	        [SQL_KIND_UNKNOWN] = "unknown", [SQL_KIND_EMPTY] = "empty",
	        [SQL_KIND_READ] = "read",       [SQL_KIND_WRITE] = "write",
	        [SQL_KIND_DDL] = "ddl",         [SQL_KIND_BEGIN] = "begin",
	        [SQL_KIND_COMMIT] = "commit",   [SQL_KIND_ROLLBACK] = "rollback",
	        [SQL_KIND_SET] = "set",         [SQL_KIND_USE] = "use",
	        [SQL_KIND_ACL] = "acl",         [SQL_KIND_ROLE] = "role",
	        [SQL_KIND_OTHER] = "other",
	};
	if ((unsigned)kind >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[kind];
}
