"""The loader (src/cache/loader.c) against the database: `load-floor check`
loads a table into a segment and compares every cell, byte for byte, every
vector, bit for bit, and every column's wire type with a plain SELECT *.
Tables mix canonical vector text (not kept, printed again from the floats),
other text (kept), NULL vectors and NULL cells, over one connection and over
several key ranges; a cell that is not a vector fails the load with the
loader's own message."""
import os
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
DB = "loader_it"


def load_floor():
    # Next to the vecgate binary under test (VECGATE_BINARY), else build/.
    binary = Path(os.environ.get("VECGATE_BINARY", str(TOP / "build" / "vecgate")))
    path = binary.parent / "load-floor"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return path


def check(db, table, *extra):
    args = [str(load_floor()), "--host", db.host, "--port", str(db.port), "--user", db.user,
            "--password", db.password, "--ca", db.ca or "", "--db", DB, "--table", table,
            *extra, "check"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.rstrip("\n").splitlines()[-1]


@pytest.fixture(scope="module")
def tables(db):
    conn = db.connect(autocommit=True)
    vt = db.vector_type(4)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        cur.execute(f"DROP TABLE IF EXISTS {DB}.mixed, {DB}.keys, {DB}.bad")
        cur.execute(f"CREATE TABLE {DB}.mixed (id INT PRIMARY KEY, tag VARCHAR(16), "
                    f"big BIGINT UNSIGNED, embedding {vt})")
        rows = []
        for i in range(3000):
            tag = None if i % 7 == 0 else f"t{i % 13}"
            big = None if i % 11 == 0 else 2**64 - 1 - i
            if i % 10 == 3:
                emb = "NULL"
            elif i % 10 == 5 and not db.is_tidb:
                # Not TiDB's text: kept as it is.
                emb = f"'[{i}.0, 0.5, -0, 1e-3]'"
            elif db.is_tidb:  # TiDB stores and prints its canonical form
                emb = f"'[{i / 7},{-i / 3},0.{i},{i}]'"
            else:  # the stand-in keeps a text as given; VEC_FROM_TEXT gives TiDB's
                emb = f"VEC_FROM_TEXT('[{i / 7},{-i / 3},0.{i},{i}]')"
            rows.append(f"({i * 3 - 4000}, {'NULL' if tag is None else repr(tag)}, "
                        f"{'NULL' if big is None else big}, {emb})")
        for k in range(0, len(rows), 500):
            cur.execute(f"INSERT INTO {DB}.mixed VALUES " + ",".join(rows[k:k + 500]))
        cur.execute(f"CREATE TABLE {DB}.keys (k1 INT, k2 VARCHAR(8), u INT, embedding {vt}, "
                    f"PRIMARY KEY (k2, k1), UNIQUE KEY (u))")
        cur.execute(f"INSERT INTO {DB}.keys VALUES (1, 'b', 10, '[1,2,3,4]'), "
                    f"(2, 'a', NULL, NULL)")
        if not db.is_tidb:
            cur.execute(f"CREATE TABLE {DB}.bad (id INT PRIMARY KEY, embedding {vt})")
            cur.execute(f"INSERT INTO {DB}.bad VALUES (1, '[1,2,3,4]'), (2, '[1,2,3,4]'), "
                        f"(3, '[1,2,,4]'), (4, '[1,2,3,4]')")
    yield
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    conn.close()


def test_segment_holds_what_the_server_sent(db, tables):
    line = check(db, "mixed")
    assert line.endswith(": same"), line
    assert "3000 rows, dimension 4" in line
    # Canonical texts are not kept; every other is.
    rebuilt = int(line.split("dimension 4, ")[1].split(" ")[0])
    assert rebuilt == (2700 if db.is_tidb else 2400), line


def test_key_ranges_over_several_connections(db, tables):
    line = check(db, "mixed", "--split", "--connections", "3")
    assert line.endswith(": same"), line
    assert "3 connections" in line, line


def test_keys_and_unique_indexes(db, tables):
    line = check(db, "keys")
    assert line.endswith(": same"), line
    assert "key k2+..." in line and "another unique index" in line, line
    line = check(db, "mixed")
    assert "key id:" in line and "unique" not in line, line


def test_not_a_vector_fails_with_its_row(db, tables):
    if db.is_tidb:
        pytest.skip("TiDB stores only vectors")
    line = check(db, "bad")
    assert line == (f"check {DB}.bad: row 2: column embedding is not a vector: "
                    "Invalid vector text: "), line
    line = check(db, "bad", "--split", "--connections", "2")
    assert line.endswith("row 2: column embedding is not a vector: Invalid vector text: "), line
