/* session/sess_state: the session's database, roles, settings and written
 * tables follow what the server did with each statement, never the request
 * alone (a refused USE, statements after a failure in a multi-statement
 * packet, SET ROLE, statements vecgate does not understand). */
#include <criterion/criterion.h>
#include <string.h>

#include "proto/mysql.h"
#include "session/sess_state.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Two cached tables: a.t and b.t; the fake cache counts what it is told. */
static struct cache_table *const TA = (struct cache_table *)0x1000;
static struct cache_table *const TB = (struct cache_table *)0x2000;

struct fake {
	int written_a, written_b, ddl, all, privileges;
	int keys_live; /* key objects not freed yet */
	int last_keys; /* rows in the keys of the last write (-1: unknown) */
	const char *last_reason;
};

/* Fake keys: a count of rows. */
static void *keys(struct fake *f, int rows)
{
	int *k = malloc(sizeof(*k));
	cr_assert(k);
	*k = rows;
	f->keys_live++;
	return k;
}

static struct cache_table *find(void *ctx, const char *db, const char *table)
{
	(void)ctx;
	if (!strcmp(table, "t") && !strcmp(db, "a"))
		return TA;
	if (!strcmp(table, "t") && !strcmp(db, "b"))
		return TB;
	return NULL;
}
static void written(void *ctx, struct cache_table *t, void *k, const char *reason)
{
	struct fake *f = ctx;
	if (t == TA)
		f->written_a++;
	else if (t == TB)
		f->written_b++;
	f->last_keys = k ? *(int *)k : -1;
	f->last_reason = reason;
	if (k) {
		free(k);
		f->keys_live--;
	}
}
static bool keys_merge(void *ctx, void *into, void *from)
{
	struct fake *f = ctx;
	*(int *)into += *(int *)from;
	free(from);
	f->keys_live--;
	return true;
}
static void keys_free(void *ctx, void *k)
{
	struct fake *f = ctx;
	free(k);
	f->keys_live--;
}
static void ddl(void *ctx, struct cache_table *t)
{
	(void)t;
	((struct fake *)ctx)->ddl++;
}
static void all_changed(void *ctx)
{
	((struct fake *)ctx)->all++;
}
static void privileges(void *ctx)
{
	((struct fake *)ctx)->privileges++;
}

static const struct sess_state_ops ops = {
        .find = find,
        .written = written,
        .keys_merge = keys_merge,
        .keys_free = keys_free,
        .ddl = ddl,
        .all_changed = all_changed,
        .privileges_changed = privileges,
};

static void fresh(struct sess_state *st, struct fake *f)
{
	memset(f, 0, sizeof(*f));
	sess_state_init(st, &ops, f);
	sess_state_login(st, "u2", "a", 1, 46);
}

/* Runs one command as the server answered it. */
static void run(struct sess_state *st, const char *sql, bool is_err, unsigned before_err,
                uint16_t status)
{
	struct sql_class cls[16];
	size_t n = 0;
	bool unknown = sql_classify(sql, strlen(sql), st->lexflags, cls, N(cls), &n) < 0;
	sess_state_account(st, sql, cls, n, unknown, is_err, before_err);
	sess_state_status(st, status);
}

#define AC PROTO_STATUS_AUTOCOMMIT
#define TX (PROTO_STATUS_AUTOCOMMIT | PROTO_STATUS_IN_TRANS)

struct db_case {
	const char *name;
	const char *sql;
	bool is_err;
	unsigned before_err;
	bool db_known;
	const char *db;
};

Test(sess_state, current_database_follows_the_server)
{
	static const struct db_case cases[] = {
	        {"use_ok", "USE b", false, 0, true, "b"},
	        {"use_refused", "USE b", true, 0, true, "a"},
	        {"quoted", "USE `b`", false, 0, true, "b"},
	        {"err_before_use", "SELECT 1 FROM nosuch; USE b", true, 0, true, "a"},
	        {"use_after_ok", "SELECT 1; USE b", false, 0, true, "b"},
	        {"use_then_err", "SELECT 1; USE b; SELECT x FROM nosuch", true, 2, true, "b"},
	        {"use_is_the_failure", "SELECT 1; USE b; SELECT 2", true, 1, true, "a"},
	        {"err_mid_rows_of_first", "SELECT 1; USE b", true, 0, true, "a"},
	        /* CALL may give several results: which statement failed is
	         * not known, so neither is the database. */
	        {"call_hides_failure", "CALL p(); USE b", true, 2, false, ""},
	        {"call_ok_then_use", "CALL p(); USE b", false, 0, true, "b"},
	        /* More results than statements with an error: impossible unless
	         * counting is off; not trusted. */
	        {"count_off", "SELECT 1; USE b", true, 5, false, ""},
	        /* EXECUTE may run a prepared USE. */
	        {"execute", "EXECUTE s", false, 0, false, ""},
	        {"execute_failed", "EXECUTE s", true, 0, false, ""},
	};
	for (size_t i = 0; i < N(cases); i++) {
		const struct db_case *c = &cases[i];
		struct sess_state st;
		struct fake f;
		fresh(&st, &f);
		run(&st, c->sql, c->is_err, c->before_err, AC);
		cr_assert_eq(st.db_known, c->db_known, "%s: db_known %d", c->name, st.db_known);
		cr_assert_str_eq(sess_state_db(&st), c->db, "%s: db '%s'", c->name,
		                 sess_state_db(&st));
	}
}

Test(sess_state, init_db_and_login)
{
	struct sess_state st;
	struct fake f;
	fresh(&st, &f);
	sess_state_init_db(&st, "b", 1);
	cr_assert_str_eq(sess_state_db(&st), "b");
	char long_name[300];
	memset(long_name, 'x', sizeof(long_name));
	sess_state_init_db(&st, long_name, sizeof(long_name));
	cr_assert_not(st.db_known);
	sess_state_login(&st, "u3", "", 0, 45);
	cr_assert(st.db_known);
	cr_assert_str_eq(st.user, "u3");
	cr_assert_eq(st.settings, 45);
}

Test(sess_state, roles_are_part_of_the_identity)
{
	struct sess_state s1, s2, s3;
	struct fake f1, f2, f3;
	fresh(&s1, &f1);
	fresh(&s2, &f2);
	fresh(&s3, &f3);
	uint64_t login = sess_state_identity(&s1);
	cr_assert_eq(sess_state_identity(&s2), login);

	run(&s1, "SET ROLE rb", false, 0, AC);
	cr_assert_neq(sess_state_identity(&s1), login, "a role changes the identity");
	run(&s2, "SET ROLE rb", false, 0, AC);
	cr_assert_eq(sess_state_identity(&s2), sess_state_identity(&s1), "same role, same key");
	cr_assert_eq(f1.privileges, 0, "SET ROLE voids nobody else's proofs");

	/* A refused SET ROLE keeps the roles the server kept. */
	uint64_t before = sess_state_identity(&s1);
	run(&s1, "SET ROLE nosuch", true, 0, AC);
	cr_assert_eq(sess_state_identity(&s1), before);

	/* SET ROLE NONE is another set than the login's defaults (which may
	 * hold roles): not shared with fresh sessions. */
	run(&s1, "SET ROLE NONE", false, 0, AC);
	cr_assert_neq(sess_state_identity(&s1), before);

	/* Not understood: the session's proofs become its own. */
	run(&s3, "EXECUTE r", false, 0, AC);
	uint64_t private1 = sess_state_identity(&s3);
	cr_assert_neq(private1, login);
	run(&s2, "EXECUTE r", false, 0, AC);
	cr_assert_neq(sess_state_identity(&s2), private1, "private identities are never shared");

	/* Refused change of user: likewise. */
	struct sess_state s4;
	struct fake f4;
	fresh(&s4, &f4);
	sess_state_identity_unknown(&s4);
	cr_assert_neq(sess_state_identity(&s4), login);

	/* A failure hidden behind CALL: the role may or may not be set. */
	struct sess_state s5;
	struct fake f5;
	fresh(&s5, &f5);
	run(&s5, "CALL p(); SET ROLE rb", true, 1, AC);
	cr_assert_neq(sess_state_identity(&s5), login);
	cr_assert_neq(sess_state_identity(&s5), sess_state_identity(&s2));

	/* A reset brings the login's roles back. */
	sess_state_reset(&s1);
	cr_assert_eq(sess_state_identity(&s1), login);
}

Test(sess_state, grants_void_proofs_even_when_refused)
{
	struct sess_state st;
	struct fake f;
	fresh(&st, &f);
	run(&st, "GRANT SELECT ON b.* TO u2", false, 0, AC);
	cr_assert_eq(f.privileges, 1);
	run(&st, "REVOKE SELECT ON b.* FROM u2", true, 0, AC);
	cr_assert_eq(f.privileges, 2);
	run(&st, "SET DEFAULT ROLE rb TO u2", false, 0, AC);
	cr_assert_eq(f.privileges, 3);
}

Test(sess_state, writes_commit_or_roll_back)
{
	struct sess_state st;
	struct fake f;
	fresh(&st, &f);
	/* autocommit: committed at once */
	run(&st, "INSERT INTO t VALUES (1)", false, 0, AC);
	cr_assert_eq(f.written_a, 1);
	cr_assert_not(sess_state_txn_has(&st, TA));
	/* in a transaction: the session's reads of t go to the database */
	run(&st, "BEGIN", false, 0, TX);
	run(&st, "UPDATE b.t SET v = '[1]'", false, 0, TX);
	cr_assert(sess_state_txn_has(&st, TB));
	cr_assert_not(sess_state_txn_has(&st, TA));
	cr_assert_eq(f.written_b, 0);
	/* a refused COMMIT keeps tracking (the transaction may still be open) */
	run(&st, "COMMIT", true, 0, TX);
	cr_assert(sess_state_txn_has(&st, TB));
	run(&st, "COMMIT", false, 0, AC);
	cr_assert_eq(f.written_b, 1);
	cr_assert_not(sess_state_txn_has(&st, TB));
	/* rolled back: nothing changed */
	run(&st, "BEGIN; DELETE FROM t", false, 0, TX);
	cr_assert(sess_state_txn_has(&st, TA));
	run(&st, "ROLLBACK", false, 0, AC);
	cr_assert_eq(f.written_a, 1);
	/* a refused write still counts (it may have written before failing) */
	run(&st, "BEGIN", false, 0, TX);
	run(&st, "INSERT INTO t VALUES (1), (1)", true, 0, TX);
	cr_assert(sess_state_txn_has(&st, TA));
	/* after a refused USE, an unqualified write is still a.t's */
	run(&st, "USE b", true, 0, TX);
	run(&st, "INSERT INTO t VALUES (2)", false, 0, TX);
	cr_assert_not(sess_state_txn_has(&st, TB));
	run(&st, "ROLLBACK", false, 0, AC);
	/* a write vecgate cannot attribute: every table */
	run(&st, "CALL p()", false, 0, AC);
	cr_assert_eq(f.all, 1);
	/* CALL may have moved the session: unqualified names are unknown
	 * until the next USE. DDL then changes the table. */
	cr_assert_not(st.db_known);
	run(&st, "USE a", false, 0, AC);
	run(&st, "ALTER TABLE t ADD c INT", false, 0, AC);
	cr_assert_eq(f.ddl, 1);
}

/* Character-set statements drivers send on connect: harmless ones join the
 * settings hash; anything else stops answers from memory. */
Test(sess_state, charset_settings)
{
	static const struct {
		const char *sql;
		bool serving, raw;
	} cases[] = {
	        {"SET NAMES utf8mb4", true, false},
	        {"set names 'utf8mb4' collate 'utf8mb4_general_ci'", true, false},
	        {"SET character_set_results = NULL", true, true},
	        {"SET @@session.character_set_results=NULL", true, true},
	        {"SET SESSION character_set_results = null", true, true},
	        {"SET character_set_results = utf8mb4", true, false},
	        {"SET NAMES utf8mb4, character_set_results = NULL", true, true},
	        {"SET character_set_client = utf8mb4, @@character_set_connection = utf8mb4", true,
	         false},
	        {"SET collation_connection = utf8mb4_bin", true, false},
	        {"SET NAMES latin1", false, false},
	        {"SET character_set_results = latin1", false, false},
	        {"SET character_set_results = NULL, NAMES latin1", false, false},
	        {"SET character_set_results = NULLX", false, false},
	        {"SET character_set_results", false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sess_state st;
		struct fake f;
		fresh(&st, &f);
		uint64_t s0 = st.settings;
		run(&st, cases[i].sql, false, 0, AC);
		cr_expect_eq(st.serving_ok, cases[i].serving, "%s", cases[i].sql);
		cr_expect_eq(st.results_raw, cases[i].raw, "%s", cases[i].sql);
		if (cases[i].serving)
			cr_expect_neq(st.settings, s0, "%s", cases[i].sql);
	}
	/* NULL, then NAMES again: converted results once more. */
	struct sess_state st;
	struct fake f;
	fresh(&st, &f);
	run(&st, "SET character_set_results = NULL", false, 0, AC);
	cr_assert(st.results_raw);
	run(&st, "SET NAMES utf8mb4", false, 0, AC);
	cr_assert_not(st.results_raw);
	run(&st, "SET character_set_results = NULL", false, 0, AC);
	sess_state_reset(&st);
	cr_assert_not(st.results_raw);
	/* A refused one is not trusted. */
	run(&st, "SET character_set_results = NULL", true, 0, AC);
	cr_assert_not(st.serving_ok);
}

Test(sess_state, settings)
{
	struct sess_state st;
	struct fake f;
	fresh(&st, &f);
	uint64_t s0 = st.settings;
	run(&st, "SET NAMES utf8mb4", false, 0, AC);
	cr_assert(st.serving_ok);
	cr_assert_neq(st.settings, s0);
	run(&st, "SET NAMES latin1", true, 0, AC); /* refused: not trusted either way */
	cr_assert_not(st.serving_ok);
	sess_state_reset(&st);
	cr_assert(st.serving_ok);
	cr_assert_eq(st.settings, s0);
	run(&st, "SET time_zone = '+01:00'", false, 0, AC);
	cr_assert_not(st.serving_ok);
	sess_state_reset(&st);
	run(&st, "SET @x = 1", true, 0, AC); /* a refused user variable: harmless */
	cr_assert(st.serving_ok);
	run(&st, "CREATE TEMPORARY TABLE t (id INT)", false, 0, AC);
	cr_assert_not(st.serving_ok);
	/* backslashes follow the server's status */
	sess_state_status(&st, AC | PROTO_STATUS_NO_BACKSLASH_ESCAPES);
	cr_assert_eq(st.lexflags, SQL_LEX_NO_BACKSLASH_ESCAPES);
}

/* The rows a write touched travel with the transaction to its commit:
 * merged across statements, dropped on rollback, unknown once any write to
 * the table is not known (or failed). */
Test(sess_state, written_rows_reach_the_commit)
{
	struct sess_state st;
	struct fake f;
	fresh(&st, &f);
	/* autocommit: the statement's keys go with its commit */
	sess_state_statement_keys(&st, TA, keys(&f, 2), NULL);
	run(&st, "INSERT INTO t VALUES (1), (2)", false, 0, AC);
	cr_assert_eq(f.written_a, 1);
	cr_assert_eq(f.last_keys, 2);
	/* a transaction: keys of several statements merge */
	run(&st, "BEGIN", false, 0, TX);
	sess_state_statement_keys(&st, TA, keys(&f, 1), NULL);
	run(&st, "UPDATE t SET v = 1 WHERE id = 1", false, 0, TX);
	sess_state_statement_keys(&st, TA, keys(&f, 3), NULL);
	run(&st, "DELETE FROM t WHERE id IN (4, 5, 6)", false, 0, TX);
	cr_assert_eq(f.written_a, 1);
	run(&st, "COMMIT", false, 0, AC);
	cr_assert_eq(f.written_a, 2);
	cr_assert_eq(f.last_keys, 4);
	/* one write whose rows are not known: the table's keys are unknown */
	run(&st, "BEGIN", false, 0, TX);
	sess_state_statement_keys(&st, TA, keys(&f, 1), NULL);
	run(&st, "UPDATE t SET v = 1 WHERE id = 1", false, 0, TX);
	sess_state_statement_keys(&st, TA, NULL, "no_key_in_where");
	run(&st, "UPDATE t SET v = 2", false, 0, TX);
	sess_state_statement_keys(&st, TA, keys(&f, 1), NULL);
	run(&st, "UPDATE t SET v = 1 WHERE id = 2", false, 0, TX);
	run(&st, "COMMIT", false, 0, AC);
	cr_assert_eq(f.last_keys, -1);
	cr_assert_str_eq(f.last_reason, "no_key_in_where");
	/* a write without keys given at all */
	run(&st, "UPDATE t SET v = 3", false, 0, AC);
	cr_assert_eq(f.last_keys, -1);
	/* a refused write: its keys are not trusted */
	run(&st, "BEGIN", false, 0, TX);
	sess_state_statement_keys(&st, TA, keys(&f, 1), NULL);
	run(&st, "INSERT INTO t VALUES (1)", true, 0, TX);
	run(&st, "COMMIT", false, 0, AC);
	cr_assert_eq(f.last_keys, -1);
	/* keys for another table than the one written: unused, freed */
	sess_state_statement_keys(&st, TB, keys(&f, 1), NULL);
	run(&st, "INSERT INTO t VALUES (9)", false, 0, AC);
	cr_assert_eq(f.last_keys, -1);
	/* rollback frees them */
	run(&st, "BEGIN", false, 0, TX);
	sess_state_statement_keys(&st, TA, keys(&f, 5), NULL);
	run(&st, "INSERT INTO t VALUES (7)", false, 0, TX);
	int before = f.written_a;
	run(&st, "ROLLBACK", false, 0, AC);
	cr_assert_eq(f.written_a, before);
	/* a new login drops an open transaction's keys */
	run(&st, "BEGIN", false, 0, TX);
	sess_state_statement_keys(&st, TA, keys(&f, 5), NULL);
	run(&st, "INSERT INTO t VALUES (8)", false, 0, TX);
	sess_state_login(&st, "u2", "a", 1, 46);
	cr_assert_eq(f.keys_live, 0, "every key object freed (%d left)", f.keys_live);
}
