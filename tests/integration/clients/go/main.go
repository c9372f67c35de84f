// gocheck: go-sql-driver/mysql against a MySQL-protocol server over verified
// TLS, with server-side prepared statements (interpolateParams=false), so
// COM_STMT_PREPARE / EXECUTE / CLOSE run. Prints one deterministic line per
// result; the integration tests compare a direct run with a run through vecgate.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "gocheck: %s: %v\n", what, err)
	os.Exit(1)
}

func check(what string, err error) {
	if err != nil {
		fail(what, err)
	}
}

// cell prints one scanned value the same way for every run: NULL, a number,
// a quoted string, or the length and SHA-256 of a long byte string.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		if len(x) > 64 {
			sum := sha256.Sum256(x)
			return fmt.Sprintf("bytes(len=%d sha256=%s)", len(x), hex.EncodeToString(sum[:]))
		}
		return strconv.Quote(string(x))
	case string:
		return strconv.Quote(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// dump runs a query and prints its columns and then one line per row.
func dump(ctx context.Context, label string, q querier, query string, args ...any) {
	rows, err := q.QueryContext(ctx, query, args...)
	check(label, err)
	dumpRows(label, rows)
}

// dumpStmt executes a prepared statement and prints its rows like dump.
func dumpStmt(ctx context.Context, label string, st *sql.Stmt, args ...any) {
	rows, err := st.QueryContext(ctx, args...)
	check(label, err)
	dumpRows(label, rows)
}

func dumpRows(label string, rows *sql.Rows) {
	defer rows.Close()
	cols, err := rows.Columns()
	check(label+": columns", err)
	types, err := rows.ColumnTypes()
	check(label+": column types", err)
	tnames := make([]string, len(types))
	for i, t := range types {
		tnames[i] = t.DatabaseTypeName()
	}
	fmt.Printf("%s: columns %s types %s\n", label, strings.Join(cols, ","), strings.Join(tnames, ","))
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		check(label+": scan", rows.Scan(ptrs...))
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = cell(v)
		}
		fmt.Printf("%s: row %s\n", label, strings.Join(out, " | "))
		n++
	}
	check(label+": rows", rows.Err())
	fmt.Printf("%s: %d rows\n", label, n)
}

func result(label string, r sql.Result, err error) {
	check(label, err)
	aff, err := r.RowsAffected()
	check(label+": rows affected", err)
	id, err := r.LastInsertId()
	check(label+": last insert id", err)
	fmt.Printf("%s: affected %d last_insert_id %d\n", label, aff, id)
}

func main() {
	host := flag.String("host", "127.0.0.1", "server host")
	port := flag.Int("port", 4000, "server port")
	ca := flag.String("ca", "", "CA certificate (PEM) that signed the server's certificate")
	dbname := flag.String("db", "", "database to work in (must exist, should be empty)")
	user := flag.String("user", "root", "user")
	password := flag.String("password", "", "password")
	flag.Parse()
	if *ca == "" || *dbname == "" {
		fmt.Fprintln(os.Stderr, "usage: gocheck -host H -port P -ca CA.pem -db DB")
		os.Exit(2)
	}

	pem, err := os.ReadFile(*ca)
	check("read CA", err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("read CA", fmt.Errorf("no certificate in %s", *ca))
	}
	check("register TLS", mysql.RegisterTLSConfig("verified", &tls.Config{
		RootCAs: pool, ServerName: *host, MinVersion: tls.VersionTLS12,
	}))

	cfg := mysql.NewConfig()
	cfg.User = *user
	cfg.Passwd = *password
	cfg.Net = "tcp"
	cfg.Addr = fmt.Sprintf("%s:%d", *host, *port)
	cfg.DBName = *dbname
	cfg.TLSConfig = "verified"
	cfg.InterpolateParams = false
	cfg.ParseTime = false
	cfg.Timeout = 10 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	cfg.Collation = "utf8mb4_general_ci"
	connector, err := mysql.NewConnector(cfg)
	check("connector", err)
	db := sql.OpenDB(connector)
	defer db.Close()
	// One connection, so every statement below runs in one session in order.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	check("ping", db.PingContext(ctx))
	fmt.Println("connected")

	var cipher string
	var ignore string
	check("ssl cipher", db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&ignore, &cipher))
	fmt.Printf("tls in use: %v\n", cipher != "")

	var current string
	check("database()", db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&current))
	fmt.Printf("database() is -db: %v\n", current == *dbname)

	_, err = db.ExecContext(ctx, `CREATE TABLE items (
		id INT PRIMARY KEY,
		n BIGINT NULL,
		s VARCHAR(200) CHARACTER SET utf8mb4 NULL,
		f DOUBLE NULL,
		d DECIMAL(12,3) NULL,
		t DATETIME NULL,
		b LONGBLOB NULL)`)
	check("create table", err)
	fmt.Println("create table: ok")

	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = byte(i*7 + i>>8)
	}
	small := []byte{0, 1, 2, 0xff, '\'', '"', '\\', 0}

	ins, err := db.PrepareContext(ctx, "INSERT INTO items (id, n, s, f, d, t, b) VALUES (?, ?, ?, ?, ?, ?, ?)")
	check("prepare insert", err)
	inserts := [][]any{
		{1, 42, "it's a \"quoted\" string", 1.5, "12.345", "2024-02-29 12:34:56", small},
		{2, int64(-9223372036854775808), "héllo wörld ✓ 日本語 🙂", -0.25, "-0.001", nil, []byte{}},
		{3, nil, nil, nil, nil, nil, blob},
		{4, int64(9223372036854775807), "back\\slash\nnewline\ttab\x00nul", 1e300, "999999999.999", "1999-12-31 23:59:59", nil},
		{5, 0, "", 0.0, "0", "2000-01-01 00:00:00", []byte("plain")},
	}
	for _, args := range inserts {
		r, err := ins.ExecContext(ctx, args...)
		result(fmt.Sprintf("insert id=%v", args[0]), r, err)
	}
	check("close insert", ins.Close())

	sel, err := db.PrepareContext(ctx, "SELECT id, n, s, f, d, t, b, LENGTH(b) AS blen FROM items WHERE id >= ? AND (s IS NULL OR s <> ?) ORDER BY id")
	check("prepare select", err)
	dumpStmt(ctx, "select id>=1", sel, 1, "no such string")
	dumpStmt(ctx, "select id>=3", sel, 3, "")
	check("close select", sel.Close())
	// Prepared statements with typed parameters that come back as results.
	dump(ctx, "echo", db, "SELECT ? AS i, ? AS s, ? AS nul, ? AS f, CONCAT(?, '|') AS c", 7, "ünï'cødé", nil, 2.5, "x")

	// A transaction that commits.
	tx, err := db.BeginTx(ctx, nil)
	check("begin", err)
	r, err := tx.ExecContext(ctx, "INSERT INTO items (id, s) VALUES (?, ?)", 10, "committed")
	result("tx1 insert", r, err)
	r, err = tx.ExecContext(ctx, "UPDATE items SET n = n + ? WHERE id = ?", 1, 1)
	result("tx1 update", r, err)
	check("commit", tx.Commit())
	fmt.Println("tx1: committed")
	dump(ctx, "after commit", db, "SELECT id, n, s FROM items WHERE id IN (?, ?) ORDER BY id", 1, 10)

	// A transaction that rolls back: its row is visible inside, gone after.
	tx, err = db.BeginTx(ctx, nil)
	check("begin", err)
	r, err = tx.ExecContext(ctx, "INSERT INTO items (id, s) VALUES (?, ?)", 11, "rolled back")
	result("tx2 insert", r, err)
	r, err = tx.ExecContext(ctx, "DELETE FROM items WHERE id = ?", 5)
	result("tx2 delete", r, err)
	dump(ctx, "inside tx2", tx, "SELECT COUNT(*), SUM(id) FROM items WHERE id > ?", 0)
	check("rollback", tx.Rollback())
	fmt.Println("tx2: rolled back")
	dump(ctx, "after rollback", db, "SELECT COUNT(*), SUM(id) FROM items WHERE id > ?", 0)

	// Text protocol (no arguments): the server's version string.
	var version string
	check("version", db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version))
	fmt.Printf("version: %s\n", version)

	// An error from the server comes back as a MySQL error, and the session goes on.
	_, err = db.ExecContext(ctx, "INSERT INTO items (id) VALUES (?)", 1)
	if me, ok := err.(*mysql.MySQLError); ok {
		fmt.Printf("duplicate key: error %d\n", me.Number)
	} else {
		fail("duplicate key", fmt.Errorf("expected a MySQL error, got %v", err))
	}
	dump(ctx, "final", db, "SELECT id FROM items ORDER BY id")
	fmt.Println("done")
}
