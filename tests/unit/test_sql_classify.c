/* Unit tests for src/sql/classify: statement kinds, the tables writes and
 * DDL name, SET effects, multi-statement splitting, and the safe answer for
 * everything else (truncated and malformed text included). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/classify.h"
#include "sql/digest.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	memcpy(p, s, n);
	return p;
}

__attribute__((format(printf, 3, 4))) static void cat(char *out, size_t cap, const char *fmt, ...)
{
	size_t l = strlen(out);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out + l, cap - l, fmt, ap);
	va_end(ap);
}

/* Renders one statement's class: "kind +flags [db.t,...] {set...} db=x". */
static void render_one(const char *s, const struct sql_class *k, char *out, size_t cap)
{
	static const struct {
		unsigned f;
		const char *name;
	} cf[] = {{SQL_CF_LOCKING, "lock"},     {SQL_CF_ALL_TABLES, "all"},
	          {SQL_CF_STALE_READ, "stale"}, {SQL_CF_READ_ONLY, "ro"},
	          {SQL_CF_CHAIN, "chain"},      {SQL_CF_EXEC_COMMENT, "exec"},
	          {SQL_CF_TEMPORARY, "temp"}},
	  sf[] = {{SQL_SETF_AUTOCOMMIT, "autocommit"},
	          {SQL_SETF_SQL_MODE, "sql_mode"},
	          {SQL_SETF_CHARSET, "charset"},
	          {SQL_SETF_TIME_ZONE, "time_zone"},
	          {SQL_SETF_SNAPSHOT, "snapshot"},
	          {SQL_SETF_TRANSACTION, "txn"},
	          {SQL_SETF_SELECT_LIMIT, "select_limit"},
	          {SQL_SETF_USER_VAR, "user"},
	          {SQL_SETF_OTHER_VAR, "other"},
	          {SQL_SETF_GLOBAL, "global"},
	          {SQL_SETF_UNKNOWN, "unknown"}};
	char name[128];
	cat(out, cap, "%s", sql_kind_name(k->kind));
	for (size_t i = 0; i < N(cf); i++)
		if (k->flags & cf[i].f)
			cat(out, cap, " +%s", cf[i].name);
	for (size_t i = 0; i < k->ntables; i++) {
		cat(out, cap, "%s", i ? "," : " [");
		if (sql_name_present(&k->tables[i].db)) {
			cr_assert_eq(sql_name_copy(s, &k->tables[i].db, name, sizeof(name)), 0);
			cat(out, cap, "%s.", name);
		}
		cr_assert_eq(sql_name_copy(s, &k->tables[i].table, name, sizeof(name)), 0);
		cat(out, cap, "%s", name);
	}
	if (k->ntables)
		cat(out, cap, "%s", "]");
	if (k->kind == SQL_KIND_SET) {
		bool first = true;
		cat(out, cap, "%s", " {");
		for (size_t i = 0; i < N(sf); i++) {
			if (!(k->set_flags & sf[i].f))
				continue;
			cat(out, cap, "%s%s", first ? "" : ",", sf[i].name);
			first = false;
			if (sf[i].f == SQL_SETF_AUTOCOMMIT)
				cat(out, cap, "%s",
				    k->autocommit < 0 ? "=?"
				    : k->autocommit   ? "=1"
				                      : "=0");
		}
		cat(out, cap, "%s", "}");
	}
	if (sql_name_present(&k->db)) {
		cr_assert_eq(sql_name_copy(s, &k->db, name, sizeof(name)), 0);
		cat(out, cap, " db=%s", name);
	}
}

/* Classifies s and renders every statement, joined with " ; ". */
static char *render(const char *s, size_t n, unsigned flags)
{
	char *in = dup_exact(s, n);
	struct sql_class cls[8];
	size_t count = 0;
	char *out = calloc(1, 2048);
	cr_assert_not_null(out);
	int rc = sql_classify(in, n, flags, cls, N(cls), &count);
	cr_assert(rc == 0 || rc == -E2BIG);
	cr_assert_geq(count, 1);
	for (size_t i = 0; i < count; i++) {
		if (i)
			cat(out, 2048, "%s", " ; ");
		cr_assert_leq(cls[i].off + cls[i].len, n);
		render_one(in, &cls[i], out, 2048);
	}
	if (rc == -E2BIG)
		cat(out, 2048, "%s", " E2BIG");
	free(in);
	return out;
}

struct class_case {
	const char *sql;
	const char *want;
};

static void run_cases(const struct class_case *cases, size_t ncases, unsigned flags)
{
	for (size_t i = 0; i < ncases; i++) {
		char *got = render(cases[i].sql, strlen(cases[i].sql), flags);
		cr_expect_str_eq(got, cases[i].want, "case %zu: %s\n got: %s\nwant: %s", i,
		                 cases[i].sql, got, cases[i].want);
		free(got);
	}
}

Test(sql_classify, reads)
{
	static const struct class_case cases[] = {
	        {"SELECT 1", "read"},
	        {"  /* c */ -- x\n select * from t", "read"},
	        {"(SELECT 1) UNION (SELECT 2)", "read"},
	        {"((select 1))", "read"},
	        {"SELECT * FROM t FOR UPDATE", "read +lock"},
	        {"SELECT * FROM t FOR UPDATE NOWAIT", "read +lock"},
	        {"select * from t for share", "read +lock"},
	        {"SELECT * FROM t LOCK IN SHARE MODE", "read +lock"},
	        {"SELECT * FROM t WHERE a IN (SELECT b FROM u FOR UPDATE)", "read +lock"},
	        {"SELECT 'FOR UPDATE' FROM t", "read"},
	        {"SELECT * FROM t AS OF TIMESTAMP NOW()", "read +stale"},
	        {"SELECT a INTO @x FROM t", "read"},
	        {"WITH c AS (SELECT 1) SELECT * FROM c", "read"},
	        {"WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT * FROM c",
	         "read"},
	        {"TABLE t", "read"},
	        {"VALUES ROW(1, 2)", "read"},
	        {"SHOW TABLES", "read"},
	        {"DESC t", "read"},
	        {"describe t", "read"},
	        {"EXPLAIN SELECT 1", "read"},
	        {"EXPLAIN FORMAT = 'brief' DELETE FROM t", "read"},
	        {"EXPLAIN ANALYZE SELECT 1", "read"},
	        {"EXPLAIN ANALYZE DELETE FROM t", "write [t]"},
	        {"TRACE DELETE FROM t", "write [t]"},
	        {"TRACE FORMAT='row' SELECT 1", "read"},
	        {"SELECT /*+ HINT(a) */ 1", "read"},
	        {"/*!50100 SELECT 1 */", "read +exec"},
	        {"", "empty"},
	        {"  -- only a comment", "empty"},
	        {";", "empty"},
	        {"/*+ hint only */", "empty"},
	};
	run_cases(cases, N(cases), 0);
}

Test(sql_classify, writes)
{
	static const struct class_case cases[] = {
	        {"INSERT INTO t VALUES (1)", "write [t]"},
	        {"insert into `my db`.`t``x` (a) values (1)", "write [my db.t`x]"},
	        {"INSERT IGNORE INTO db.t SELECT * FROM u", "write [db.t]"},
	        {"INSERT LOW_PRIORITY t SET a = 1", "write [t]"},
	        {"INSERT INTO t PARTITION (p0) VALUES (1) ON DUPLICATE KEY UPDATE a = 2",
	         "write [t]"},
	        {"REPLACE INTO t VALUES (1)", "write [t]"},
	        {"UPDATE t SET a = 1 WHERE b = 2", "write [t]"},
	        {"UPDATE LOW_PRIORITY IGNORE db.t AS x SET x.a = 1", "write [db.t]"},
	        {"UPDATE a JOIN b ON a.id = b.id SET a.x = b.y", "write [a,b]"},
	        {"UPDATE a INNER JOIN b USING (id) LEFT OUTER JOIN c ON (c.k = a.k) SET a.x = 1",
	         "write [a,b,c]"},
	        {"UPDATE a, b SET a.x = b.y", "write [a,b]"},
	        {"UPDATE (a, b) SET a.x = 1", "write [a,b]"},
	        {"UPDATE a JOIN (SELECT * FROM u) d ON a.id = d.id SET a.x = 1", "write [a]"},
	        {"UPDATE a STRAIGHT_JOIN b ON a.id IN (SELECT id FROM u) SET a.x = 1",
	         "write [a,b]"},
	        {"UPDATE t USE INDEX (i) SET a = 1", "write [t]"},
	        {"DELETE FROM t WHERE id = 1", "write [t]"},
	        {"DELETE QUICK IGNORE FROM db.t AS a ORDER BY id LIMIT 3", "write [db.t]"},
	        {"DELETE a, b FROM t1 AS a JOIN t2 AS b ON a.id = b.id WHERE a.x = 1",
	         "write [a,b,t1,t2]"},
	        {"DELETE t1.* FROM t1 JOIN t2 ON t1.id = t2.id", "write [t1,t1,t2]"},
	        {"DELETE FROM t1, t2 USING t1 JOIN t2 JOIN t3 WHERE 1", "write [t1,t2,t1,t2,t3]"},
	        {"LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE db.t FIELDS TERMINATED BY ','",
	         "write [db.t]"},
	        {"LOAD DATA INFILE 'x' REPLACE INTO TABLE t", "write [t]"},
	        {"IMPORT INTO t FROM 's3://x'", "write [t]"},
	        {"BATCH ON id LIMIT 1000 DELETE FROM t WHERE a < 1", "write [t]"},
	        {"WITH c AS (SELECT 1) UPDATE t JOIN c SET t.a = 1", "write [t,c]"},
	        {"WITH c AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM c)", "write [t]"},
	        {"LOAD STATS '/tmp/s.json'", "other"},
	};
	run_cases(cases, N(cases), 0);
}

Test(sql_classify, ddl)
{
	static const struct class_case cases[] = {
	        {"TRUNCATE TABLE t", "ddl [t]"},
	        {"truncate db.t", "ddl [db.t]"},
	        {"ALTER TABLE t ADD COLUMN c INT", "ddl [t]"},
	        {"ALTER TABLE t RENAME TO u", "ddl [t,u]"},
	        {"ALTER TABLE t RENAME COLUMN a TO b, RENAME INDEX i TO j", "ddl [t]"},
	        {"ALTER TABLE t EXCHANGE PARTITION p WITH TABLE db.u", "ddl [t,db.u]"},
	        {"DROP TABLE a", "ddl [a]"},
	        {"DROP TABLE IF EXISTS a, db.b, `c d` CASCADE", "ddl [a,db.b,c d]"},
	        {"DROP TEMPORARY TABLE a", "ddl +temp [a]"},
	        {"DROP VIEW v", "ddl [v]"},
	        {"RENAME TABLE a TO b, db.c TO db.d", "ddl [a,b,db.c,db.d]"},
	        {"CREATE TABLE t (id INT PRIMARY KEY, v VECTOR(3))", "ddl [t]"},
	        {"CREATE TABLE IF NOT EXISTS db.t LIKE u", "ddl [db.t]"},
	        {"CREATE TEMPORARY TABLE t AS SELECT 1", "ddl +temp [t]"},
	        {"CREATE GLOBAL TEMPORARY TABLE t (a INT) ON COMMIT DELETE ROWS", "ddl [t]"},
	        {"CREATE INDEX i ON t (a)", "ddl [t]"},
	        {"CREATE UNIQUE INDEX i USING BTREE ON db.t (a)", "ddl [db.t]"},
	        {"CREATE VECTOR INDEX i ON t ((VEC_COSINE_DISTANCE(v))) USING HNSW", "ddl [t]"},
	        {"DROP INDEX i ON t", "ddl [t]"},
	        {"DROP INDEX IF EXISTS i ON db.t", "ddl [db.t]"},
	        {"CREATE OR REPLACE ALGORITHM=MERGE DEFINER=CURRENT_USER VIEW v AS SELECT 1",
	         "ddl [v]"},
	        {"CREATE DATABASE d", "ddl"},
	        {"DROP DATABASE IF EXISTS d", "ddl +all db=d"},
	        {"DROP SCHEMA `x`", "ddl +all db=x"},
	        {"FLASHBACK TABLE t TO t2", "ddl [t,t2]"},
	        {"FLASHBACK CLUSTER TO TIMESTAMP '2024-01-01 00:00:00'", "ddl +all"},
	        {"RECOVER TABLE BY JOB 5", "ddl +all"},
	        {"/*!40000 ALTER TABLE `t` DISABLE KEYS */;", "ddl +exec [t]"},
	        {"CREATE USER u", "acl"},
	        {"GRANT SELECT ON db.* TO u", "acl"},
	        {"REVOKE SELECT ON db.t FROM u", "acl"},
	        {"DROP USER u", "acl"},
	        {"RENAME USER a TO b", "acl"},
	        {"CREATE GLOBAL BINDING FOR SELECT 1 USING SELECT 1", "other"},
	        {"DROP STATS t", "other"},
	        {"CREATE PROCEDURE p() BEGIN END", "unknown"},
	        {"ALTER TABLE", "unknown"},
	        {"DROP TABLE", "unknown"},
	        {"CREATE TABLE", "unknown"},
	};
	run_cases(cases, N(cases), 0);
}

Test(sql_classify, transactions)
{
	static const struct class_case cases[] = {
	        {"BEGIN", "begin"},
	        {"begin pessimistic", "begin"},
	        {"BEGIN OPTIMISTIC", "begin"},
	        {"BEGIN WORK", "begin"},
	        {"START TRANSACTION", "begin"},
	        {"START TRANSACTION READ ONLY", "begin +ro"},
	        {"START TRANSACTION READ WRITE", "begin"},
	        {"START TRANSACTION WITH CONSISTENT SNAPSHOT", "begin"},
	        {"START TRANSACTION READ ONLY AS OF TIMESTAMP NOW() - INTERVAL 5 SECOND",
	         "begin +stale +ro"},
	        {"START", "unknown"},
	        {"COMMIT", "commit"},
	        {"COMMIT WORK", "commit"},
	        {"COMMIT AND CHAIN", "commit +chain"},
	        {"COMMIT AND NO CHAIN", "commit"},
	        {"ROLLBACK", "rollback"},
	        {"rollback work", "rollback"},
	        {"ROLLBACK TO SAVEPOINT s", "other"},
	        {"ROLLBACK WORK TO s", "other"},
	        {"SAVEPOINT s", "other"},
	        {"RELEASE SAVEPOINT s", "other"},
	        {"USE db", "use db=db"},
	        {"use `my``db`", "use db=my`db"},
	        {"LOCK TABLES t WRITE", "other"},
	        {"UNLOCK TABLES", "other"},
	        {"ANALYZE TABLE t", "other"},
	        {"KILL 5", "other"},
	        {"PREPARE s FROM 'DELETE FROM t'", "other"},
	        {"EXECUTE s", "unknown"},
	        {"CALL p()", "unknown"},
	        {"ADMIN CHECK TABLE t", "unknown"},
	        {"XYZZY", "unknown"},
	        {"(INSERT INTO t VALUES (1))", "unknown"},
	};
	run_cases(cases, N(cases), 0);
}

Test(sql_classify, set)
{
	static const struct class_case cases[] = {
	        {"SET AUTOCOMMIT = 0", "set {autocommit=0}"},
	        {"set autocommit=1", "set {autocommit=1}"},
	        {"SET autocommit = ON", "set {autocommit=1}"},
	        {"SET autocommit = 'off'", "set {autocommit=0}"},
	        {"SET autocommit = TRUE", "set {autocommit=1}"},
	        {"SET @@autocommit := 0", "set {autocommit=0}"},
	        {"SET @@session.autocommit = 1", "set {autocommit=1}"},
	        {"SET SESSION autocommit = 0", "set {autocommit=0}"},
	        {"SET LOCAL autocommit = 0", "set {autocommit=0}"},
	        {"SET autocommit = @x", "set {autocommit=?}"},
	        {"SET autocommit = 1 + 0", "set {autocommit=?}"},
	        {"SET autocommit = DEFAULT", "set {autocommit=?}"},
	        {"SET GLOBAL autocommit = 0", "set {global}"},
	        {"SET @@GLOBAL.autocommit = 0", "set {global}"},
	        {"SET NAMES utf8mb4", "set {charset}"},
	        {"SET NAMES 'utf8mb4' COLLATE 'utf8mb4_bin', autocommit = 0",
	         "set {autocommit=0,charset}"},
	        {"SET CHARACTER SET utf8", "set {charset}"},
	        {"SET character_set_results = NULL", "set {charset}"},
	        {"SET sql_mode = 'ANSI_QUOTES'", "set {sql_mode}"},
	        {"SET @@SESSION.sql_mode = CONCAT(@@sql_mode, ',ANSI')", "set {sql_mode}"},
	        {"SET time_zone = '+00:00'", "set {time_zone}"},
	        {"SET tidb_snapshot = '2024-01-01'", "set {snapshot}"},
	        {"SET @@tidb_read_staleness = -5", "set {snapshot}"},
	        {"SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "set {txn}"},
	        {"SET SESSION TRANSACTION READ ONLY", "set {txn}"},
	        {"SET TRANSACTION READ ONLY AS OF TIMESTAMP '2024-01-01'", "set {snapshot,txn}"},
	        {"SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE", "set {global}"},
	        {"SET sql_select_limit = 1", "set {select_limit}"},
	        {"SET @a = 1, @b := (SELECT 2)", "set {user}"},
	        {"SET max_execution_time = 100", "set {other}"},
	        {"SET PASSWORD = 'x'", "acl"},
	        {"SET ROLE ALL", "role"},
	        {"SET ROLE rb", "role"},
	        {"set role none", "role"},
	        {"SET PASSWORD = 'x'", "acl"},
	        {"SET DEFAULT ROLE r TO u", "acl"},
	        {"SET", "set {unknown}"},
	        {"SET a", "set {unknown}"},
	        {"SET a = 1 b", "set {other}"},
	        {"/*!40101 SET NAMES utf8 */", "set +exec {charset}"},
	};
	run_cases(cases, N(cases), 0);
}

Test(sql_classify, multi_statement)
{
	static const struct class_case cases[] = {
	        {"SELECT 1; SELECT 2", "read ; read"},
	        {"BEGIN; INSERT INTO t VALUES (';'); COMMIT;", "begin ; write [t] ; commit"},
	        {"SELECT ';' -- ;\n; DELETE FROM t", "read ; write [t]"},
	        {"SELECT 1 /* ; */; UPDATE `a;b` SET x = 1", "read ; write [a;b]"},
	        {";; SELECT 1 ;; ", "read"},
	        {"SELECT 'unterminated; DELETE FROM t", "unknown"},
	        {"SELECT 1; SELECT 'x", "read ; unknown"},
	        {"SET autocommit=0; SELECT 1", "set {autocommit=0} ; read"},
	        {"/*!40101 SET NAMES utf8 */; /*!40014 SET FOREIGN_KEY_CHECKS=0 */",
	         "set +exec {charset} ; set +exec {other}"},
	        {"1;2;3;4;5;6;7;8;9", "unknown ; unknown ; unknown ; unknown ; unknown ; unknown ; "
	                              "unknown ; unknown E2BIG"},
	};
	run_cases(cases, N(cases), 0);
}

Test(sql_classify, statement_spans)
{
	const char *s = "  SELECT 1 ; /* c */ DELETE FROM t -- x\n";
	struct sql_class k[4];
	size_t count;
	cr_assert_eq(sql_classify(s, strlen(s), 0, k, 4, &count), 0);
	cr_assert_eq(count, 2);
	cr_assert_eq(k[0].off, 2);
	cr_assert_eq(k[0].len, 8);
	cr_assert_eq(memcmp(s + k[1].off, "DELETE FROM t", k[1].len), 0);
	cr_assert_eq(k[1].len, 13);
	cr_assert_eq(sql_classify(s, strlen(s), 0, k, 0, &count), -E2BIG);
}

Test(sql_classify, lexer_modes)
{
	/* The session's sql_mode decides where a string ends. */
	const char *s = "SELECT 'a\\'; DELETE FROM t; SELECT '";
	char *got = render(s, strlen(s), SQL_LEX_NO_BACKSLASH_ESCAPES);
	cr_expect_str_eq(got, "read ; write [t] ; unknown");
	free(got);
	got = render(s, strlen(s), 0);
	cr_expect_str_eq(got, "read");
	free(got);
	const char *a = "UPDATE \"t\" SET a = 1";
	got = render(a, strlen(a), SQL_LEX_ANSI_QUOTES);
	cr_expect_str_eq(got, "write [t]");
	free(got);
	got = render(a, strlen(a), 0);
	cr_expect_str_eq(got, "write +all");
	free(got);
}

/* Every prefix classifies without crashing; none is ever called a read
 * unless it is one. */
Test(sql_classify, truncated_prefixes)
{
	static const char *const texts[] = {
	        "UPDATE a JOIN b ON a.id = b.id SET a.x = 'y;z' WHERE a.k IN (SELECT k FROM c)",
	        "DELETE t1, t2 FROM t1 JOIN t2 USING (id) WHERE t1.x = 1; COMMIT AND CHAIN",
	        "SET @@session.autocommit = 'ON', NAMES utf8mb4; /*!40101 SET x = 1 */",
	        "WITH c AS (SELECT 1) UPDATE t SET a = (SELECT * FROM c) -- done",
	        "ALTER TABLE `a``b`.t RENAME TO u, EXCHANGE PARTITION p WITH TABLE v",
	};
	for (size_t i = 0; i < N(texts); i++)
		for (size_t n = 0; n <= strlen(texts[i]); n++) {
			char *got = render(texts[i], n, 0);
			cr_assert(strncmp(got, "read", 4) != 0 || i == 3 || n < 8,
			          "prefix %zu of %zu: %s", n, i, got);
			free(got);
		}
}

/* Single-byte mutations. Classification always answers (render checks how),
 * the same text gets the same answer, a mutant that normalises to the
 * original's text is classified as the original (nothing sql_normalize drops
 * changes what a statement does), and a mutant's first statement keeps the
 * original's kind, or becomes unknown (which vecgate takes as able to do
 * anything) or empty (the whole text is now a comment): a damaged write never
 * passes for a read. */
Test(sql_classify, mutations)
{
	static const struct {
		const char *text;
		const char *kind;
	} texts[] = {
	        {"UPDATE a JOIN b ON a.id = b.id SET a.x = 'y;z' WHERE a.k IN (SELECT k FROM c)",
	         "write"},
	        {"SET @@session.autocommit = 'ON', NAMES utf8mb4; /*!40101 SET x = 1 */ -- c",
	         "set"},
	        {"DELETE t1 FROM t1 JOIN t2 USING (id); COMMIT; ALTER TABLE `a``b` RENAME TO u",
	         "write"},
	};
	static const char subst[] = {'\'', '"',  '`',  '(', ')', ' ', '-', '/',
	                             '*',  '\\', '\0', '#', ';', '.', ',', '!'};
	for (size_t i = 0; i < N(texts); i++) {
		size_t n = strlen(texts[i].text);
		char *m = dup_exact(texts[i].text, n);
		char *orig = render(m, n, 0);
		size_t klen = strlen(texts[i].kind);
		cr_assert(strncmp(orig, texts[i].kind, klen) == 0 && orig[klen] == ' ', "%s", orig);
		struct buf norm, mnorm;
		buf_init(&norm);
		buf_init(&mnorm);
		cr_assert_eq(sql_normalize(m, n, 0, 0, NULL, 0, &norm), 0);
		size_t same_norm = 0;
		for (size_t pos = 0; pos < n; pos++) {
			char keep = m[pos];
			for (size_t j = 0; j < sizeof(subst); j++) {
				m[pos] = subst[j];
				char *got = render(m, n, 0);
				char *again = render(m, n, 0);
				cr_assert_str_eq(got, again, "text %zu pos %zu '%c'", i, pos,
				                 subst[j]);
				size_t k = strcspn(got, " ");
				bool kept = k == klen && strncmp(got, texts[i].kind, k) == 0;
				bool unknown = k == 7 && strncmp(got, "unknown", 7) == 0;
				bool empty = m[0] == '#' && strcmp(got, "empty") == 0;
				cr_assert(kept || unknown || empty, "text %zu pos %zu '%c': %s", i,
				          pos, subst[j], got);
				buf_reset(&mnorm);
				if (sql_normalize(m, n, 0, 0, NULL, 0, &mnorm) == 0 &&
				    mnorm.len == norm.len &&
				    memcmp(mnorm.data, norm.data, norm.len) == 0) {
					same_norm++;
					cr_assert_str_eq(
					        got, orig,
					        "text %zu pos %zu '%c' normalises as the original",
					        i, pos, subst[j]);
				}
				free(got);
				free(again);
			}
			m[pos] = keep;
		}
		cr_assert_gt(same_norm, 0, "text %zu", i);
		buf_free(&norm);
		buf_free(&mnorm);
		free(orig);
		free(m);
	}
}
