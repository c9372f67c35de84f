"""The arithmetic of TiDB's distances (docs/tidb.md §3, docs/design.md §8).

TiDB's float32 loops are computed with a separate multiply and add (TiKV,
TiDB's Go code on amd64) or with fused multiply-adds (TiDB's Go code on
arm64, or amd64 built for GOAMD64=v3). vecgate learns per query shape which
one the database's answers use. The stand-in database computes in the
arithmetic that VECGATE_UDF_ARITH names when it starts, and
VECGATE_UDF_SET_ARITH() switches it for later statements, as a changed plan
would (tests/mariadb/vecgate_udf.c). Private database instances: the shared
one keeps the default arithmetic."""
import json
import random
import time

import numpy as np
import pytest

from conftest import PrivateDatabase, Vecgate
from test_cache import cells, raw_query, run_differential, run_quickstart, vec_text


@pytest.fixture(scope="module")
def fused_db(db, tmp_path_factory):
    if db.is_tidb:
        pytest.skip("the arithmetic is TiDB's own build's; only the stand-in can switch it")
    p = PrivateDatabase(tmp_path_factory.mktemp("fused") / "db", VECGATE_UDF_ARITH="fused")
    try:
        yield p.start()
    finally:
        p.tidb("stop")


def random_table(conn, name, dim, rows, seed):
    rng = np.random.default_rng(seed)
    vs = rng.standard_normal((rows, dim)).astype(np.float32)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, embedding LONGTEXT)")
        cur.executemany(f"INSERT INTO {name} VALUES (%s, VEC_FROM_TEXT(%s))",
                        [(i, vec_text(v)) for i, v in enumerate(vs)])
    conn.commit()
    return vs


def distances(conn, sql):
    got = raw_query(conn, sql)
    assert got[0] not in ("error", "ok"), got
    return [cells(r)[1] for r in got[1]]


def test_the_fused_database_differs_from_the_separate_one(db, fused_db):
    """The stand-in really computes the other arithmetic: the same query on
    the same rows prints different distances in many rows (so the tests
    below could not pass by computing in either)."""
    for d in (db, fused_db):
        with d.connect() as c, c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS arith_probe")
            cur.execute("CREATE DATABASE arith_probe")
    a, b = db.connect("arith_probe"), fused_db.connect("arith_probe")
    try:
        random_table(a, "t", 64, 300, 7)
        random_table(b, "t", 64, 300, 7)
        q = vec_text(np.random.default_rng(8).standard_normal(64).astype(np.float32))
        differ = 0
        for fn in ("VEC_COSINE_DISTANCE", "VEC_L2_DISTANCE", "VEC_NEGATIVE_INNER_PRODUCT"):
            sql = f"SELECT id, {fn}(embedding, '{q}') AS d FROM t ORDER BY id"
            differ += sum(x != y for x, y in zip(distances(a, sql), distances(b, sql)))
        sql = f"SELECT id, VEC_L1_DISTANCE(embedding, '{q}') AS d FROM t ORDER BY id"
        assert distances(a, sql) == distances(b, sql), "L1 has no multiply"
        assert differ > 100, f"only {differ} of 900 distances differ"
    finally:
        a.close()
        b.close()


@pytest.fixture(scope="module")
def cached_fused(fused_db, tmp_path_factory):
    vg = Vecgate(fused_db, tmp_path_factory.mktemp("cache_fused"), cache__tables="auto",
                 cache__user=fused_db.user, cache__max_staleness="2s").start()
    with fused_db.connect() as c, c.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS cachetest")
        cur.execute("CREATE DATABASE cachetest")
    yield vg
    assert vg.stop() == 0


def table_status(vg, name):
    for t in json.loads(vg.admin("/status")).get("cache", []):
        if t["table"] == name:
            return t
    raise AssertionError(f"{name} not in /status: {vg.admin('/status')}")


@pytest.mark.parametrize("dim,rows,seed", [(17, 800, 2), (128, 1500, 3)])
def test_differential_in_front_of_a_fused_database(cached_fused, fused_db, dim, rows, seed):
    """The differential cache test (random shapes, filters, OFFSET, ties,
    writes between reads) against a database computing with fused
    multiply-adds: 0 mismatches, answered from memory, in fused arithmetic."""
    run_differential(cached_fused, fused_db, dim, rows, seed)
    assert cached_fused.metric("vecgate_cache_arith_matches_total", arith="fused") > 0
    st = table_status(cached_fused, f"cachetest.t{dim}_{rows}")
    assert st["arith"] == "fused", st
    assert st["arith_matches"]["fused"] > 0, st


def test_quickstart_in_front_of_a_fused_database(fused_db, tmp_path):
    vg = Vecgate(fused_db, tmp_path, cache__tables="qs_fused.documents(embedding)",
                 cache__user=fused_db.user).start()
    try:
        out = run_quickstart(vg, fused_db, "qs_fused")
        assert "fish  [1.0, 2.0, 4.0]  distance: 0.00853986601633272" in out
        assert "identical answers" in out
        assert vg.served() >= 1, vg.admin("/metrics")
        assert vg.metric("vecgate_cache_verifications_total", result="mismatch") == 0
    finally:
        assert vg.stop() == 0


def test_a_changed_plan_switches_the_arithmetic(tmp_path, db):
    """The database starts computing in the other arithmetic while vecgate
    answers a shape from memory (as when TiDB's plan moves the distance from
    TiKV into its own fused Go code). Within proof_max_age the identity's
    proof is renewed by the database's answer; that answer is compared again,
    the shape switches arithmetic, and answers from memory match again."""
    if db.is_tidb:
        pytest.skip("only the stand-in database can switch its arithmetic")
    p = PrivateDatabase(tmp_path / "db", VECGATE_UDF_ARITH="separate")
    d = p.start()
    vg = None
    try:
        with d.connect() as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE plan")
        direct = d.connect("plan", autocommit=True)
        random_table(direct, "docs", 48, 400, 11)
        vg = Vecgate(d, tmp_path, cache__tables="plan.docs(embedding)",
                     cache__user=d.user, cache__proof_max_age="1s").start()
        proxied = vg.connect("plan", autocommit=True)
        rng = random.Random(5)

        def query():
            q = vec_text(np.array([rng.gauss(0, 1) for _ in range(48)], dtype=np.float32))
            return f"SELECT id, VEC_COSINE_DISTANCE(embedding, '{q}') AS d FROM docs " \
                   f"ORDER BY d LIMIT 10"

        def hits():
            return vg.served()

        def served_and_equal(rounds):
            """Runs queries until one is answered from memory; every answer
            equals the database's own."""
            for _ in range(rounds):
                sql = query()
                before = hits()
                got = raw_query(proxied, sql)
                assert got == raw_query(direct, sql), sql
                if hits() > before:
                    return True
                time.sleep(0.05)
            return False

        deadline = time.time() + 30
        while not served_and_equal(20):
            assert time.time() < deadline, vg.admin("/status")
        assert table_status(vg, "plan.docs")["arith"] == "separate"

        with direct.cursor() as cur:
            cur.execute("SELECT VECGATE_UDF_SET_ARITH('fused')")
            assert cur.fetchone()[0] in ("fused", b"fused")
        time.sleep(1.2)  # the proof runs out; the next answer comes from the database
        deadline = time.time() + 30
        while vg.metric("vecgate_cache_arith_switches_total") < 1:
            assert time.time() < deadline, vg.admin("/status")
            # Past the proof's age every answer is the database's own, or
            # computed from memory in the arithmetic just found.
            sql = query()
            assert raw_query(proxied, sql) == raw_query(direct, sql), sql
            time.sleep(0.05)
        assert served_and_equal(40), "not answered from memory after the switch"
        st = table_status(vg, "plan.docs")
        assert st["arith"] == "fused", st
        assert vg.metric("vecgate_cache_verifications_total", result="mismatch") == 0
        proxied.close()
        direct.close()
    finally:
        if vg:
            assert vg.stop() == 0
        p.tidb("stop")
