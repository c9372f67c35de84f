"""Two vecgate processes in front of one database, clients spread over both
(README, "Several TiDB servers and several vecgate instances"): each
instance caches on its own, both answer kNN queries from memory with the
database's answer, a write through one is seen at once through that one and
within [cache] max_staleness through the other."""
import random
import time

import pytest

from conftest import Vecgate
from test_cache import cells, raw_query, tie_aware_equal

STALENESS = 1.0  # [cache] max_staleness, seconds
DIM = 4
ROWS = 300


def vec(rng):
    return "[" + ",".join(f"{rng.uniform(-1, 1):.6f}" for _ in range(DIM)) + "]"


def knn(v, k=10):
    return (f"SELECT id, VEC_L2_DISTANCE(embedding, '{v}') AS distance FROM items "
            f"ORDER BY distance LIMIT {k}")


@pytest.fixture
def pair(db, schema, tmp_path):
    rng = random.Random(7)
    with db.connect(schema, autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE items (id INT PRIMARY KEY, embedding {db.vector_type(DIM)})")
        cur.executemany("INSERT INTO items VALUES (%s, VEC_FROM_TEXT(%s))",
                        [(i, vec(rng)) for i in range(1, ROWS + 1)])
    gates = []
    for i in range(2):
        d = tmp_path / f"vg{i}"
        d.mkdir()
        gates.append(Vecgate(db, d, cache__tables=f"{schema}.items(embedding)",
                             cache__user=db.user,
                             cache__max_staleness=f"{int(STALENESS * 1000)}ms").start())
    yield gates
    for vg in gates:
        assert vg.stop() == 0, vg.log.read_text()[-4000:]


def test_both_answer_from_memory_like_the_database(pair, db, schema):
    rng = random.Random(11)
    for vg in pair:
        vg.wait_servable(f"{schema}.items", timeout=30)
    # Clients spread over both instances, as an L4 balancer would.
    clients = [pair[i % 2].connect(schema, autocommit=True) for i in range(6)]
    direct = db.connect(schema, autocommit=True)
    # Warm-up: a shape is answered from memory once the database answered
    # it for the user.
    for c in clients:
        for _ in range(3):
            raw_query(c, knn(vec(rng)))
    before = [vg.served() for vg in pair]
    mismatches = []
    for i in range(60):
        sql = knn(vec(rng))
        want = raw_query(direct, sql)
        got = [raw_query(c, sql) for c in (clients[i % 6], clients[(i + 1) % 6])]
        assert want[0] not in ("error", "ok"), want
        for g in got:
            if not tie_aware_equal(want, g, 1):
                mismatches.append(sql)
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    served = [vg.served() - b for vg, b in zip(pair, before)]
    # Each instance got 60 of the 120 queries; most came from its memory.
    assert all(n >= 30 for n in served), served
    for vg in pair:
        assert vg.metric("vecgate_cache_verifications_total", result="mismatch") == 0
    for c in clients + [direct]:
        c.close()


def test_write_through_one_is_seen_by_the_other_within_max_staleness(pair, schema):
    a, b = pair
    for vg in pair:
        vg.wait_servable(f"{schema}.items", timeout=30)
    writer = a.connect(schema, autocommit=True)
    other_on_a = a.connect(schema, autocommit=True)
    reader_on_b = b.connect(schema, autocommit=True)
    target = "[9,9,9,9]"  # far from every row: only the new one is at 0
    sql = knn(target, 1)
    for c in (writer, other_on_a, reader_on_b):
        for _ in range(3):  # capture, verify, serve
            assert cells(raw_query(c, sql)[1][0])[1] != b"0"
    served_b = b.served()

    for n, new_id in enumerate((10001, 10002, 10003)):
        raw_query(writer, f"INSERT INTO items VALUES ({new_id}, VEC_FROM_TEXT('{target}'))")
        t0 = time.time()
        want = [str(i).encode() for i in range(10001, new_id + 1)]

        def at_zero(c):
            got = raw_query(c, knn(target, n + 2))
            return sorted(cells(r)[0] for r in got[1] if cells(r)[1] == b"0")

        # Read-your-writes on the instance that took the write: at once,
        # for the writer and for its other sessions.
        assert at_zero(writer) == want
        assert at_zero(other_on_a) == want
        # The other instance sees it once its own snapshot is refreshed:
        # within max_staleness (plus the reload and the polling).
        while at_zero(reader_on_b) != want:
            assert time.time() - t0 < STALENESS + 1.5, \
                f"row {new_id} not seen through the other instance within max_staleness"
            time.sleep(0.02)
    # b answered from memory along the way, not only from the database.
    assert b.served() > served_b
    for c in (writer, other_on_a, reader_on_b):
        c.close()
