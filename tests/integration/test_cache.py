"""The vector cache, differentially: random tables and thousands of random
kNN queries through vecgate (answered from memory once their shape is
verified) against the same queries sent straight to the database, compared
packet by packet, tie-aware (docs/tidb.md §5). Writes between queries check
that a session reads its own writes and that snapshots go stale on commit."""
import json
import random
import time

import numpy as np
import pymysql
import pytest
from pymysql.constants import COMMAND

from conftest import Vecgate

METRICS = ["VEC_COSINE_DISTANCE", "VEC_L2_DISTANCE", "VEC_L1_DISTANCE",
           "VEC_NEGATIVE_INNER_PRODUCT"]


def lenenc(b, i):
    c = b[i]
    if c < 0xFB:
        return c, i + 1
    if c == 0xFB:
        return None, i + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[c]
    return int.from_bytes(b[i + 1:i + 1 + width], "little"), i + 1 + width


def cells(row):
    out, i = [], 0
    while i < len(row):
        n, i = lenenc(row, i)
        if n is None:
            out.append(None)
        else:
            out.append(bytes(row[i:i + n]))
            i += n
    return out


def raw_query(conn, sql):
    """The server's answer as raw payloads: (header packets, rows, terminator)
    or ('error', code, message)."""
    try:
        conn._execute_command(COMMAND.COM_QUERY, sql)
        first = conn._read_packet().get_all_data()
        if first[0] == 0:
            return ("ok", first)
        ncols, _ = lenenc(first, 0)
        header = [first] + [conn._read_packet().get_all_data() for _ in range(ncols)]
        header.append(conn._read_packet().get_all_data())  # EOF (no DEPRECATE_EOF)
        rows = []
        while True:
            p = conn._read_packet().get_all_data()
            if p[0] == 0xFE and len(p) < 9:
                return (header, rows, p)
            rows.append(p)
    except pymysql.err.MySQLError as e:
        return ("error", e.args[0], e.args[1])


def tie_aware_equal(direct, proxied, dist_col, offset=False):
    """Same header and terminator bytes; the same distance at every rank; the
    same rows wherever the distance at a rank is unique; within a group of
    equal distances, the same rows in any order. A group at the end (or at
    the start, after an OFFSET) may be a cut of a larger group of ties, so
    there only the distances must agree (docs/tidb.md §5)."""
    if direct[0] in ("error", "ok") or proxied[0] in ("error", "ok"):
        return direct == proxied
    (dh, dr, dt), (ph, pr, pt) = direct, proxied
    if dh != ph or dt != pt or len(dr) != len(pr):
        return False
    if dist_col is None:
        return dr == pr
    dd = [cells(r)[dist_col] for r in dr]
    if dd != [cells(r)[dist_col] for r in pr]:
        return False
    i = 0
    while i < len(dr):
        j = i
        while j < len(dr) and dd[j] == dd[i]:
            j += 1
        cut = j == len(dr) or (i == 0 and offset)
        if not cut and sorted(dr[i:j]) != sorted(pr[i:j]):
            return False
        i = j
    return True


def vec_text(v):
    return "[" + ",".join(repr(float(x)) for x in v) + "]"


def make_vectors(rng, n, dim):
    vs = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.05:
            vs.append(None)
        elif kind < 0.08:
            vs.append(np.zeros(dim, dtype=np.float32))
        elif kind < 0.18 and vs:
            vs.append(next((v for v in reversed(vs) if v is not None), None))  # duplicates: ties
        elif kind < 0.25:
            vs.append((np.array([rng.gauss(0, 1) for _ in range(dim)]) * 1e-20).astype(np.float32))
        else:
            vs.append(np.array([rng.gauss(0, 1) for _ in range(dim)], dtype=np.float32))
    return vs


CATS = ["a", "b", "c", "a ", "dé", None]


def create_table(conn, db, name, dim, rows, rng):
    vtype = db.vector_type(dim)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, cat VARCHAR(8) COLLATE utf8mb4_bin, "
                    f"n INT, big BIGINT UNSIGNED, tag VARBINARY(8), embedding {vtype})")
        vs = make_vectors(rng, rows, dim)
        data = []
        for i, v in enumerate(vs):
            data.append((i, rng.choice(CATS), rng.choice([None, *range(10)]),
                         rng.choice([None, 0, 2 ** 63 + i]), rng.choice([None, b"x", b"\x00y"]),
                         None if v is None else vec_text(v)))
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s, VEC_FROM_TEXT(%s))", data)
    conn.commit()
    return vs


SELECTS = ["id, cat, n, embedding, {e} AS distance", "*, {e} AS distance",
           "id, big, tag, {e} AS distance", "id, {e} AS distance"]
WHERES = ["", "WHERE cat = {s}", "WHERE n > {i}", "WHERE cat IN ({s}, {s}) AND n <= {i}",
          "WHERE tag IS NULL", "WHERE big = 0", "WHERE n != {i}", "WHERE {e} < {f}",
          "WHERE n BETWEEN {i} AND {i}"]
ORDERS = ["ORDER BY distance", "ORDER BY {e}", "ORDER BY distance ASC"]
LIMITS = ["LIMIT {k}", "LIMIT {k} OFFSET {o}", "LIMIT {o}, {k}"]


def templates(rng, n=24):
    """The query shapes of an application: a few structures, each run with
    many different vectors and constants."""
    return [(rng.choice(METRICS), rng.choice(SELECTS), rng.choice(WHERES), rng.choice(ORDERS),
             rng.choice(LIMITS), rng.random() < 0.8) for _ in range(n)]


def random_query(rng, table, dim, vs, tmpl):
    metric, select, where, order, limit, col_first = tmpl
    base = rng.choice([v for v in vs if v is not None])
    q = base if rng.random() < 0.3 else np.array(
        [rng.gauss(0, 1) for _ in range(dim)], dtype=np.float32)
    lit = "'" + vec_text(q) + "'"
    e = f"{metric}(embedding, {lit})" if col_first else f"{metric}({lit}, embedding)"

    def fill(t):
        out = t.replace("{e}", e)
        while "{s}" in out:
            out = out.replace("{s}", repr(rng.choice(["a", "b", "c", "a   ", "dé"])), 1)
        while "{i}" in out:
            out = out.replace("{i}", str(rng.randrange(10)), 1)
        out = out.replace("{f}", f"{rng.uniform(0, 2):.3f}e0")
        out = out.replace("{k}", str(rng.choice([1, 5, 10, 50])))
        return out.replace("{o}", str(rng.choice([1, 2, 7])))
    return f"SELECT {fill(select)} FROM {table} {fill(where)} {fill(order)} {fill(limit)}"


def column_name(definition):
    """The name (the fifth length-encoded string) of a column definition."""
    i = 0
    for _ in range(4):
        n, i = lenenc(definition, i)
        i += n
    n, i = lenenc(definition, i)
    return bytes(definition[i:i + n])


def dist_col_of(header):
    for i, d in enumerate(header[1:-1]):
        if column_name(d) in (b"distance", b"d", b"_distance"):
            return i
    return None


@pytest.fixture(scope="module")
def cached(db, tmp_path_factory):
    vg = Vecgate(db, tmp_path_factory.mktemp("cache"), cache__tables="auto", cache__user=db.user,
                 cache__max_staleness="2s").start()
    with db.connect() as c, c.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS cachetest")
        cur.execute("CREATE DATABASE cachetest")
    yield vg
    assert vg.stop() == 0


def connect_pair(db, vg):
    direct = db.connect("cachetest", autocommit=True)
    proxied = vg.connect("cachetest", autocommit=True)
    return direct, proxied


def cache_counters(vg):
    """(answers computed from memory, answers replayed from the result cache,
    snapshot loads) from one read of /metrics."""
    want = ['vecgate_cache_queries_total{result="hit"}',
            'vecgate_cache_queries_total{result="result_cache_hit"}',
            'vecgate_cache_loads_total{result="ok"}']
    got = dict.fromkeys(want, 0.0)
    for line in vg.admin("/metrics").splitlines():
        name, _, value = line.rpartition(" ")
        if name in got:
            got[name] = float(value)
    return tuple(got[w] for w in want)


@pytest.mark.parametrize("dim,rows,seed", [(1, 200, 4), (3, 300, 1), (17, 800, 2),
                                           (128, 1500, 3), (1536, 200, 5)])
def test_differential_random_queries(cached, db, dim, rows, seed):
    run_differential(cached, db, dim, rows, seed)


def run_differential(cached, db, dim, rows, seed):
    """Random queries on a random table, each compared with the database's
    own answer; writes through vecgate between them. Also run in front of a
    database computing in the other float32 arithmetic (test_arith.py)."""
    rng = random.Random(seed)
    table = f"t{dim}_{rows}"
    direct, proxied = connect_pair(db, cached)
    vs = create_table(direct, db, table, dim, rows, rng)
    # Auto admission starts with the first kNN query of the table.
    raw_query(proxied, f"SELECT id, VEC_L2_DISTANCE(embedding, '{vec_text(vs[0] if vs[0] is not None else np.zeros(dim))}') AS distance FROM {table} ORDER BY distance LIMIT 1")
    cached.wait_servable(f"cachetest.{table}")
    hits0 = cached.metric("vecgate_cache_queries_total", result="hit")
    # Fewer queries at 1536 dimensions: the stand-in parses every row's text
    # on each of its own scans.
    mismatches, n = [], 600 if dim <= 128 else 200
    computed = replayed = 0
    next_id = rows
    shapes = templates(rng)
    for i in range(n):
        if i and i % 150 == 0:
            # A write through vecgate; the writer must see it at once.
            v = np.array([rng.gauss(0, 1) for _ in range(dim)], dtype=np.float32)
            raw_query(proxied, f"INSERT INTO {table} VALUES ({next_id}, 'a', 1, 0, NULL, "
                               f"VEC_FROM_TEXT('{vec_text(v)}'))")
            sql = (f"SELECT id, VEC_L2_DISTANCE(embedding, '{vec_text(v)}') AS distance "
                   f"FROM {table} ORDER BY distance LIMIT 200")
            got = raw_query(proxied, sql)
            # NULL vectors sort first; the new row is the first at distance 0.
            first = next(cells(r) for r in got[1] if cells(r)[1] is not None)
            assert first == [str(next_id).encode(), b"0"], "read-your-writes"
            assert tie_aware_equal(raw_query(direct, sql), got, 1)
            next_id += 1
            vs.append(v)
        sql = random_query(rng, table, dim, vs, rng.choice(shapes))
        repeat = i % 10 == 9
        if repeat:
            before = cache_counters(cached)
        d, p = raw_query(direct, sql), raw_query(proxied, sql)
        dist = dist_col_of(d[0]) if d[0] not in ("error", "ok") else None
        offset = "OFFSET" in sql or "," in sql.rsplit("LIMIT", 1)[1]
        if not tie_aware_equal(d, p, dist, offset):
            mismatches.append(sql)
        if repeat:
            # The same text again at once. An answer vecgate computed from
            # memory is replayed from the result cache, byte for byte, unless
            # a snapshot load finished in between (the entry is then void).
            mid = cache_counters(cached)
            again = raw_query(proxied, sql)
            after = cache_counters(cached)
            if mid[0] > before[0]:
                computed += 1
                if after[1] > mid[1]:
                    replayed += 1
                    assert again == p, f"the replay differs from the answer it replays: {sql}"
                else:
                    assert after[2] > before[2], f"not replayed from the result cache: {sql}"
            if not tie_aware_equal(d, again, dist, offset):
                mismatches.append("repeated: " + sql)
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    hits = cached.metric("vecgate_cache_queries_total", result="hit") - hits0
    assert hits >= n * 0.4, f"only {hits} of {n} queries were answered from memory"
    assert cached.metric("vecgate_cache_verifications_total", result="mismatch") == 0
    assert replayed > 0, f"none of {computed} repeated answers came from the result cache"


def test_uncommitted_write_reads_tidb_and_commit_invalidates(cached, db):
    direct, proxied = connect_pair(db, cached)
    with direct.cursor() as cur:
        cur.execute("CREATE TABLE txn (id INT PRIMARY KEY, embedding "
                    f"{db.vector_type(2)})")
        cur.executemany("INSERT INTO txn VALUES (%s, VEC_FROM_TEXT(%s))",
                        [(i, f"[{i},1]") for i in range(1, 50)])
    sql = "SELECT id, VEC_L2_DISTANCE(embedding, '[0,1]') AS distance FROM txn ORDER BY distance LIMIT 2"
    raw_query(proxied, sql)
    cached.wait_servable("cachetest.txn")
    for _ in range(3):  # capture, verify, serve
        raw_query(proxied, sql)
        time.sleep(0.1)
    writer = cached.connect("cachetest", autocommit=False)
    with writer.cursor() as cur:
        cur.execute("INSERT INTO txn VALUES (100, VEC_FROM_TEXT('[0,1]'))")
    # Inside its transaction the writer sees its own row (from TiDB) ...
    got = raw_query(writer, sql)
    assert cells(got[1][0])[0] == b"100"
    # ... while other sessions do not, and still may be answered from memory.
    assert cells(raw_query(proxied, sql)[1][0])[0] == b"1"
    writer.commit()
    # After the commit every session sees it at once.
    assert cells(raw_query(proxied, sql)[1][0])[0] == b"100"
    writer.close()


def test_writes_that_bypass_vecgate_are_seen_within_max_staleness(cached, db):
    direct, proxied = connect_pair(db, cached)
    with direct.cursor() as cur:
        cur.execute(f"CREATE TABLE ext (id INT PRIMARY KEY, embedding {db.vector_type(2)})")
        cur.executemany("INSERT INTO ext VALUES (%s, VEC_FROM_TEXT(%s))",
                        [(i, f"[{i},{i}]") for i in range(1, 30)])
    sql = "SELECT id, VEC_L1_DISTANCE(embedding, '[0,0]') AS distance FROM ext ORDER BY distance LIMIT 1"
    raw_query(proxied, sql)
    cached.wait_servable("cachetest.ext")
    for _ in range(3):
        raw_query(proxied, sql)
    with direct.cursor() as cur:  # not through vecgate
        cur.execute("INSERT INTO ext VALUES (0, VEC_FROM_TEXT('[0,0]'))")
    t0 = time.time()
    while cells(raw_query(proxied, sql)[1][0])[0] != b"0":
        assert time.time() - t0 < 2.0 + 1.0, "not seen within max_staleness (2 s)"
        time.sleep(0.05)


def test_prepared_statements_are_served(cached, db):
    import mysql.connector
    direct, proxied = connect_pair(db, cached)
    with direct.cursor() as cur:
        cur.execute(f"CREATE TABLE ps (id INT PRIMARY KEY, label VARCHAR(10) COLLATE utf8mb4_bin, "
                    f"embedding {db.vector_type(4)})")
        rng = random.Random(9)
        cur.executemany("INSERT INTO ps VALUES (%s, %s, VEC_FROM_TEXT(%s))",
                        [(i, rng.choice("xyz"), vec_text([rng.gauss(0, 1) for _ in range(4)]))
                         for i in range(400)])

    def run(port, n=30):
        conn = mysql.connector.connect(host="127.0.0.1", port=port, user=db.user, password="",
                                       database="cachetest", ssl_ca=db.ca, ssl_verify_cert=True,
                                       use_pure=True, autocommit=True)
        cur = conn.cursor(prepared=True)
        out = []
        r = random.Random(4)
        for _ in range(n):
            q = vec_text([r.gauss(0, 1) for _ in range(4)])
            cur.execute("SELECT id, label, VEC_COSINE_DISTANCE(embedding, ?) AS distance FROM ps "
                        "WHERE label = ? ORDER BY distance LIMIT ?", (q, r.choice("xyz"), 5))
            out.append(cur.fetchall())
            time.sleep(0.02)
        conn.close()
        return out

    run(cached.port, 1)
    cached.wait_servable("cachetest.ps")
    hits0 = cached.metric("vecgate_cache_queries_total", result="hit")
    assert run(cached.port) == run(db.port)
    assert cached.metric("vecgate_cache_queries_total", result="hit") - hits0 >= 20


def test_not_recognised_and_bypassed_queries_stay_correct(cached, db):
    direct, proxied = connect_pair(db, cached)
    with direct.cursor() as cur:
        cur.execute(f"CREATE TABLE other (id INT PRIMARY KEY, embedding {db.vector_type(2)})")
        cur.executemany("INSERT INTO other VALUES (%s, VEC_FROM_TEXT(%s))",
                        [(i, f"[{i},-{i}]") for i in range(20)])
    queries = [
        "SELECT id FROM other ORDER BY VEC_L2_DISTANCE(embedding, '[1,1]') DESC LIMIT 3",
        "SELECT id, VEC_L2_DISTANCE(embedding, '[1,1]') d FROM other WHERE id < 5 OR id > 15 "
        "ORDER BY d LIMIT 3",
        "SELECT COUNT(*) FROM other",
        "SELECT id, VEC_L2_DISTANCE(embedding, '[1,1,1]') AS d FROM other ORDER BY d LIMIT 2",
        "SELECT id, VEC_L2_DISTANCE(embedding, '[1,') AS d FROM other ORDER BY d LIMIT 2",
        "SELECT /*+ HINT() */ id FROM other ORDER BY VEC_L2_DISTANCE(embedding, '[1,1]') LIMIT 1",
    ]
    for _ in range(3):
        for sql in queries:
            d, p = raw_query(direct, sql), raw_query(proxied, sql)
            dist = dist_col_of(d[0]) if d[0] not in ("error", "ok") else None
            # The dimension mismatch makes every distance NULL on the stand-in:
            # all rows tie, and their order is the server's choice.
            assert tie_aware_equal(d, p, dist), sql


def test_status_and_metrics_show_the_cache(cached):
    tables = json.loads(cached.admin("/status"))["cache"]
    assert any(t["rows"] > 0 and t["loads"] >= 1 for t in tables)
    assert cached.metric("vecgate_cache_loads_total", result="ok") >= 1
    assert cached.metric("vecgate_cache_loaded_rows_total") > 0
    assert cached.metric("vecgate_cache_memory_bytes") > 0
    assert cached.metric("vecgate_cache_load_seconds_count") >= 1


def run_quickstart(vg, db, database):
    """tools/quickstart.py (SQLAlchemy + tidb-vector) through vecgate into
    `database`, its searches repeated 6 times: what it printed."""
    import subprocess
    import sys
    from conftest import TOP
    return subprocess.run([sys.executable, str(TOP / "tools" / "quickstart.py"), "--port",
                           str(vg.port), "--ca", db.ca, "--flavor", db.flavor, "--database",
                           database, "--repeat", "6"],
                          capture_output=True, text=True, timeout=120, check=True).stdout


def test_quickstart_through_vecgate_is_served_from_memory(db, tmp_path):
    """The seed's quickstart (SQLAlchemy + tidb-vector) prints its expected
    output through vecgate while /metrics shows searches answered from memory."""
    vg = Vecgate(db, tmp_path, cache__tables="qs_cached.documents(embedding)",
                 cache__user=db.user).start()
    try:
        out = run_quickstart(vg, db, "qs_cached")
        assert "fish  [1.0, 2.0, 4.0]  distance: 0.00853986601633272" in out
        assert "dog   [1.0, 2.0, 1.0]  distance: 0.12712843905603044" in out
        assert "tree  [1.0, 0.0, 0.0]  distance: 0.7327387580875756" in out
        assert "identical answers" in out
        assert vg.served() >= 1, vg.admin("/metrics")
    finally:
        assert vg.stop() == 0


def test_client_leaving_during_a_scan(cached, db):
    """A session that closes while its answer is computed on the thread pool
    is cleaned up when the scan returns; vecgate and other sessions go on."""
    direct, proxied = connect_pair(db, cached)
    dim = 64
    rng = random.Random(11)
    with direct.cursor() as cur:
        cur.execute(f"CREATE TABLE gone (id INT PRIMARY KEY, embedding {db.vector_type(dim)})")
        cur.executemany("INSERT INTO gone VALUES (%s, VEC_FROM_TEXT(%s))",
                        [(i, vec_text([rng.gauss(0, 1) for _ in range(dim)]))
                         for i in range(3000)])

    def sql():
        return ("SELECT id, VEC_L2_DISTANCE(embedding, '" +
                vec_text([rng.gauss(0, 1) for _ in range(dim)]) +
                "') AS distance FROM gone ORDER BY distance LIMIT 5")
    raw_query(proxied, sql())
    cached.wait_servable("cachetest.gone")
    for _ in range(3):
        raw_query(proxied, sql())
    hits0 = cached.metric("vecgate_cache_queries_total", result="hit")
    for _ in range(20):
        c = cached.connect("cachetest", autocommit=True)
        c._execute_command(COMMAND.COM_QUERY, sql())
        c._sock.close()
    time.sleep(0.5)
    assert cached.admin("/health").strip() == "ok"
    got = raw_query(proxied, sql())
    assert len(got[1]) == 5
    assert cached.metric("vecgate_cache_queries_total", result="hit") > hits0


def test_table_loading_slower_than_max_staleness_is_reported(db, tmp_path):
    """A snapshot is as old as the start of its read, so a table that loads
    more slowly than max_staleness can never be answered from memory: vecgate
    says so (log and /status) instead of reloading it back to back."""
    vg = Vecgate(db, tmp_path, cache__tables="slowload.t(embedding)", cache__user=db.user,
                 cache__max_staleness="100ms").start()
    try:
        rng = random.Random(3)
        with db.connect() as c, c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS slowload")
            cur.execute("CREATE DATABASE slowload")
            # No primary key: a refresh reuses unchanged rows by key, so
            # only a table without one parses every row again each time.
            cur.execute(f"CREATE TABLE slowload.t (id INT, embedding "
                        f"{db.vector_type(1536)})")
            cur.executemany("INSERT INTO slowload.t VALUES (%s, %s)",
                            [(i, vec_text([rng.gauss(0, 1) for _ in range(1536)]))
                             for i in range(1500)])
            c.commit()
        deadline = time.time() + 30
        while True:
            t = json.loads(vg.admin("/status"))["cache"][0]
            if t["reason"] == "load_slower_than_max_staleness":
                break
            assert time.time() < deadline, t
            time.sleep(0.1)
        loads = t["loads"]
        time.sleep(1.0)
        t = json.loads(vg.admin("/status"))["cache"][0]
        assert t["loads"] - loads <= 4, "reloads are paced by the load time"
        assert "longer than max_staleness" in vg.log.read_text()
        with vg.connect("slowload") as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM t ORDER BY VEC_L2_DISTANCE(embedding, %s) LIMIT 1",
                        (vec_text([0.0] * 1536),))
            assert len(cur.fetchall()) == 1
    finally:
        assert vg.stop() == 0


def test_unconverted_results_are_served_only_from_utf8mb4_text(cached, db):
    """SET character_set_results = NULL (Connector/J sends it at login): the
    server then sends text as stored. A utf8mb4 table's answers are the same
    bytes, answered from memory; a latin1 column's are not the snapshot's
    bytes, so such a table is left to the database. Both equal its answers."""
    direct, proxied = connect_pair(db, cached)
    with direct.cursor() as cur:
        for t, cs in (("raw_utf8", "utf8mb4 COLLATE utf8mb4_bin"),
                      ("raw_latin1", "latin1 COLLATE latin1_bin")):
            cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(8) CHARACTER SET "
                        f"{cs}, embedding {db.vector_type(3)})")
            cur.execute(f"INSERT INTO {t} VALUES (1, 'dé', VEC_FROM_TEXT('[1,2,3]')), "
                        f"(2, 'été', VEC_FROM_TEXT('[3,2,1]')), (3, 'x', VEC_FROM_TEXT('[1,1,1]'))")
    for c in (direct, proxied):
        with c.cursor() as cur:
            cur.execute("SET character_set_results = NULL")
    for t, served_expected in (("raw_utf8", True), ("raw_latin1", False)):
        raw_query(proxied, f"SELECT id, VEC_L2_DISTANCE(embedding, '[1,2,3]') AS distance "
                           f"FROM {t} ORDER BY distance LIMIT 1")
        cached.wait_servable(f"cachetest.{t}")
        before = cache_counters(cached)[:2]
        settings0 = cached.metric("vecgate_cache_bypass_total", reason="session_settings")
        for i in range(8):
            sql = (f"SELECT id, name, VEC_L2_DISTANCE(embedding, '[{i},2,3]') AS distance "
                   f"FROM {t} ORDER BY distance LIMIT 3")
            d, p = raw_query(direct, sql), raw_query(proxied, sql)
            assert tie_aware_equal(d, p, 2), (t, sql, d, p)
            time.sleep(0.05)
        served = sum(cache_counters(cached)[:2]) - sum(before)
        relayed = cached.metric("vecgate_cache_bypass_total", reason="session_settings") - settings0
        if served_expected:
            assert served >= 5 and relayed == 0, (t, served, relayed)
        else:
            assert served == 0 and relayed >= 8, (t, served, relayed)
    direct.close()
    proxied.close()
