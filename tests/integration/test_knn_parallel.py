"""Concurrent kNN queries on one cached table: 16 clients at once through
vecgate, every answer compared with the database's own (tie-aware,
docs/tidb.md §5). Queries pending together share one pass over the table
(vecgate_cache_batched_queries_total), with every core busy a query joins a
pass while it runs (vecgate_cache_pass_joins_total), a query alone with idle
cores has its scan split over them (vecgate_cache_split_scans_total), and
scans read the table's int8 screen first
(vecgate_cache_screened_scans_total): none of it may change a single
answer."""
import json
import os
import random
import threading
import time

import numpy as np
import pytest

from conftest import Vecgate
from test_cache import dist_col_of, raw_query, tie_aware_equal, vec_text

DIM = 32
# 9000 rows are 563 blocks of 16: enough for a split in two parts of at
# least 256 blocks each (serve.c), and for a screen.
ROWS = 9000
CLIENTS = 16
PER_CLIENT = 12

SHAPES = [
    "SELECT id, VEC_COSINE_DISTANCE(embedding, '{v}') AS distance FROM {t} "
    "ORDER BY distance LIMIT {k}",
    "SELECT id, cat, VEC_L2_DISTANCE(embedding, '{v}') AS distance FROM {t} "
    "ORDER BY distance LIMIT {k}",
    "SELECT id, VEC_COSINE_DISTANCE(embedding, '{v}') AS distance FROM {t} "
    "WHERE cat = 'a' ORDER BY distance LIMIT {k}",
    "SELECT id, VEC_L2_DISTANCE(embedding, '{v}') AS distance FROM {t} "
    "ORDER BY distance LIMIT {k} OFFSET 3",
    "SELECT id, VEC_NEGATIVE_INNER_PRODUCT(embedding, '{v}') AS distance FROM {t} "
    "ORDER BY distance LIMIT {k}",
    "SELECT id, VEC_L1_DISTANCE(embedding, '{v}') AS distance FROM {t} "
    "ORDER BY distance LIMIT {k}",
]


@pytest.fixture(scope="module")
def table(db, tmp_path_factory):
    """A table with ties (duplicated rows, values from a small set), NULL
    vectors and zero vectors, cached by a vecgate of its own."""
    rng = random.Random(11)
    vs = []
    for i in range(ROWS):
        r = rng.random()
        if r < 0.02:
            vs.append(None)
        elif r < 0.03:
            vs.append(np.zeros(DIM, dtype=np.float32))
        elif r < 0.10 and vs:
            vs.append(vs[rng.randrange(len(vs))])
        elif r < 0.30:
            vs.append(np.array([rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0]) for _ in range(DIM)],
                               dtype=np.float32))
        else:
            vs.append(np.array([rng.gauss(0, 1) for _ in range(DIM)], dtype=np.float32))
    with db.connect() as c, c.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS knnpar")
        cur.execute("CREATE DATABASE knnpar")
        cur.execute(f"CREATE TABLE knnpar.t (id INT PRIMARY KEY, cat VARCHAR(4) COLLATE "
                    f"utf8mb4_bin, embedding {db.vector_type(DIM)})")
        data = [(i, rng.choice(["a", "b"]), None if v is None else vec_text(v))
                for i, v in enumerate(vs)]
        for s in range(0, ROWS, 1000):
            cur.executemany("INSERT INTO knnpar.t VALUES (%s, %s, VEC_FROM_TEXT(%s))",
                            data[s:s + 1000])
        c.commit()
    vg = Vecgate(db, tmp_path_factory.mktemp("knnpar"), cache__tables="knnpar.t(embedding)",
                 cache__user=db.user, cache__max_staleness="1h").start()
    # Servable first; the screen is built after that, in the background.
    st = vg.wait_servable("knnpar.t", timeout=120, step=0.1, screened=True)
    yield vg, vs, st
    assert vg.stop() == 0


def query(rng, vs, shape):
    base = rng.choice([v for v in vs if v is not None])
    # A row of the table (distance 0, ties with its copies) or a new vector.
    q = base if rng.random() < 0.3 else np.array([rng.gauss(0, 1) for _ in range(DIM)],
                                                 dtype=np.float32)
    return shape.format(v=vec_text(q), t="t", k=rng.choice([1, 5, 10, 40]))


def compare(db, answers):
    """Each (sql, vecgate's answer) against the database's answer."""
    mismatches = []
    with db.connect("knnpar", autocommit=True) as direct:
        for sql, got in answers:
            want = raw_query(direct, sql)
            dist = dist_col_of(want[0]) if want[0] not in ("error", "ok") else None
            if not tie_aware_equal(want, got, dist, "OFFSET" in sql):
                mismatches.append(sql)
    return mismatches


def verify_shapes(vg, vs, rng):
    """Each shape's first execution goes to the database and is compared
    (design.md §8); afterwards the shape is answered from memory."""
    with vg.connect("knnpar", autocommit=True) as c:
        for shape in SHAPES:
            for _ in range(3):
                raw_query(c, query(rng, vs, shape))


def test_screen_is_built_and_counted(table):
    vg, _, status = table
    assert status["screen_bytes"] > ROWS * DIM, status
    assert status["bytes"] > status["screen_bytes"] + ROWS * DIM * 4, status


def test_screen_is_built_after_the_load(db, tmp_path):
    """A load publishes its snapshot before the screen exists (answers from
    memory take the plain scan meanwhile); the screen's bytes count from
    the start; then it is built and the scans use it."""
    vg = Vecgate(db, tmp_path, cache__tables="knnpar.t(embedding)", cache__user=db.user,
                 cache__max_staleness="1h").start()
    try:
        seen = []
        deadline = time.time() + 120
        while time.time() < deadline:
            st = [t for t in json.loads(vg.admin("/status")).get("cache", [])
                  if t["table"] == "knnpar.t"]
            if st and st[0]["servable"]:
                seen.append(st[0]["screen_pending"])
                assert st[0]["screen_bytes"] > ROWS * DIM, st
                if not st[0]["screen_pending"]:
                    break
            time.sleep(0.005)
        assert seen and seen[-1] is False, seen
        rng = random.Random(3)
        with db.connect("knnpar") as c, c.cursor() as cur:
            cur.execute("SELECT VEC_AS_TEXT(embedding) FROM t WHERE embedding IS NOT NULL LIMIT 1")
            vs = [np.array(json.loads(cur.fetchone()[0]), dtype=np.float32)]
        screened0 = vg.metric("vecgate_cache_screened_scans_total")
        verify_shapes(vg, vs, rng)
        assert vg.metric("vecgate_cache_screened_scans_total") > screened0
    finally:
        assert vg.stop() == 0


def test_single_client_splits_and_screens(table, db):
    vg, vs, _ = table
    rng = random.Random(5)
    verify_shapes(vg, vs, rng)
    hits0 = vg.metric("vecgate_cache_queries_total", result="hit")
    split0 = vg.metric("vecgate_cache_split_scans_total")
    screened0 = vg.metric("vecgate_cache_screened_scans_total")
    gathered0 = vg.metric("vecgate_cache_gathered_passes_total")
    answers = []
    with vg.connect("knnpar", autocommit=True) as c:
        for i in range(60):
            sql = query(rng, vs, SHAPES[i % len(SHAPES)])
            answers.append((sql, raw_query(c, sql)))
    mismatches = compare(db, answers)
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    hits = vg.metric("vecgate_cache_queries_total", result="hit") - hits0
    assert hits >= 50, f"only {hits} of 60 answered from memory"
    assert vg.metric("vecgate_cache_screened_scans_total") > screened0
    # A lone client's query never waits for company: each pass answered one
    # session, so no pass gathers.
    assert vg.metric("vecgate_cache_gathered_passes_total") == gathered0
    if (os.cpu_count() or 1) >= 2:
        # One client: nothing waits, so its scans take the idle cores.
        assert vg.metric("vecgate_cache_split_scans_total") - split0 >= hits * 0.5, "\n".join(l for l in vg.admin("/metrics").splitlines() if "cache" in l and not l.startswith("#"))


def test_sixteen_clients_share_passes(table, db):
    vg, vs, _ = table
    rng = random.Random(7)
    verify_shapes(vg, vs, rng)
    hits0 = vg.metric("vecgate_cache_queries_total", result="hit")
    batched0 = vg.metric("vecgate_cache_batched_queries_total")
    joins0 = vg.metric("vecgate_cache_pass_joins_total")
    answers, errors = [], []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(seed):
        r = random.Random(seed)
        try:
            with vg.connect("knnpar", autocommit=True) as c:
                start.wait()
                mine = []
                for i in range(PER_CLIENT):
                    # Every client the same shape at the same step, with
                    # its own vector: queries that can share a pass.
                    sql = query(r, vs, SHAPES[i % len(SHAPES)])
                    mine.append((sql, raw_query(c, sql)))
            with lock:
                answers.extend(mine)
        except Exception as e:  # reported below, with the others
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(100 + n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(answers) == CLIENTS * PER_CLIENT
    mismatches = compare(db, answers)
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    hits = vg.metric("vecgate_cache_queries_total", result="hit") - hits0
    assert hits >= len(answers) * 0.8, f"only {hits} of {len(answers)} answered from memory"
    batched = vg.metric("vecgate_cache_batched_queries_total") - batched0
    assert batched > 0, "no two of 16 concurrent clients' queries shared a job"
    # With every core busy, a query joins a pass that is already running.
    joins = vg.metric("vecgate_cache_pass_joins_total") - joins0
    assert joins > 0, "no query joined a running pass"
    assert vg.metric("vecgate_cache_verifications_total", result="mismatch") == 0


def test_screening_off_answers_the_same(table, db, tmp_path):
    """[cache] screening = off: no screen, no screened scan, same answers."""
    vg = Vecgate(db, tmp_path, cache__tables="knnpar.t(embedding)", cache__user=db.user,
                 cache__max_staleness="1h", cache__screening="off").start()
    try:
        st = vg.wait_servable("knnpar.t", timeout=120, step=0.1)
        assert st["screen_bytes"] == 0, st
        with db.connect("knnpar") as c, c.cursor() as cur:
            cur.execute("SELECT id, embedding FROM t ORDER BY id")
            vs = [None if e is None else np.array(json.loads(e), dtype=np.float32)
                  for _, e in cur.fetchall()]
        rng = random.Random(9)
        verify_shapes(vg, vs, rng)
        hits0 = vg.metric("vecgate_cache_queries_total", result="hit")
        answers = []
        with vg.connect("knnpar", autocommit=True) as c:
            for i in range(24):
                sql = query(rng, vs, SHAPES[i % len(SHAPES)])
                answers.append((sql, raw_query(c, sql)))
        mismatches = compare(db, answers)
        assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
        assert vg.metric("vecgate_cache_queries_total", result="hit") - hits0 >= 20
        assert vg.metric("vecgate_cache_screened_scans_total") == 0
    finally:
        assert vg.stop() == 0


def test_a_renewal_sends_one_query_to_the_database(table, db, tmp_path):
    """When an identity's proof runs out ([cache] proof_max_age), one
    session's query renews it at the database while the identity's other
    queries of that shape are still answered from memory
    (vecgate_cache_renewal_grace_total), instead of every one of them going
    to the database until the renewal ends. Eight clients, 1 s proofs, 4 s:
    a handful of renewals, each one query to the database. The answers
    during the renewals are compared with the database's."""
    _, vs, _ = table
    vg = Vecgate(db, tmp_path, cache__tables="knnpar.t(embedding)", cache__user=db.user,
                 cache__max_staleness="1h", cache__proof_max_age="1s").start()
    shape = SHAPES[0]
    try:
        vg.wait_servable("knnpar.t", timeout=120, step=0.1)
        rng = random.Random(13)
        with vg.connect("knnpar", autocommit=True) as c:
            for _ in range(3):  # proved, then answered from memory
                raw_query(c, query(rng, vs, shape))
        miss0 = vg.metric("vecgate_cache_queries_total", result="miss")
        grace0 = vg.metric("vecgate_cache_renewal_grace_total")
        answers, errors, counts = [], [], []
        lock = threading.Lock()
        start = threading.Barrier(8)
        until = time.time() + 4.5

        def client(seed):
            r = random.Random(seed)
            n = 0
            try:
                with vg.connect("knnpar", autocommit=True) as c:
                    start.wait()
                    while time.time() < until:
                        sql = query(r, vs, shape)
                        got = raw_query(c, sql)
                        n += 1
                        if n % 10 == 0:
                            with lock:
                                answers.append((sql, got))
            except Exception as e:  # reported below
                with lock:
                    errors.append(repr(e))
            with lock:
                counts.append(n)

        threads = [threading.Thread(target=client, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        misses = vg.metric("vecgate_cache_queries_total", result="miss") - miss0
        grace = vg.metric("vecgate_cache_renewal_grace_total") - grace0
        total = sum(counts)
        # 4.5 s of 1 s proofs: about four renewals, one query each at the
        # database (and one more where a renewal's comparison had to wait
        # for the snapshot); without the grace, every client's queries
        # during a renewal went to the database.
        assert 2 <= misses <= 8, (misses, grace, total)
        assert grace > 0, (misses, grace, total)
        assert total >= 200, counts
        mismatches = compare(db, answers)
        assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    finally:
        assert vg.stop() == 0
