"""Worker loops ([server] workers, docs/design.md §2): several event loops
accept on one port, each with its own sessions and pool, sharing the cache.
Sessions spread over the loops; kNN answers from memory stay the database's
whatever loop a session is on, while other sessions write; the limits hold
over all loops; SIGTERM drains every loop."""
import json
import random
import select
import socket
import threading
import time

import pymysql
import pytest

from conftest import commit_and_expect_exit, open_transaction
from test_cache import raw_query, tie_aware_equal
from test_limits import handshake_response, query, read_packet, read_result

DIM = 8
ROWS = 400


def vec(rng):
    return "[" + ",".join(f"{rng.uniform(-1, 1):.5f}" for _ in range(DIM)) + "]"


def knn(v, k=5):
    return (f"SELECT id, VEC_COSINE_DISTANCE(embedding, '{v}') AS distance FROM items "
            f"ORDER BY distance LIMIT {k}")


def status(vg):
    return json.loads(vg.admin("/status"))


def wait_sessions(vg, n, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = status(vg)
        if st["sessions"] == n and sum(w["sessions"] for w in st["workers"]) == n:
            return st
        time.sleep(0.05)
    raise AssertionError(f"sessions never reached {n}: {status(vg)}")


@pytest.fixture
def items(db, schema):
    rng = random.Random(5)
    with db.connect(schema, autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE items (id INT PRIMARY KEY, embedding {db.vector_type(DIM)})")
        cur.executemany("INSERT INTO items VALUES (%s, VEC_FROM_TEXT(%s))",
                        [(i, vec(rng)) for i in range(1, ROWS + 1)])
    return schema


def test_sessions_spread_over_the_loops(make_vecgate):
    vg = make_vecgate(server__workers="2")
    conns = [vg.connect() for _ in range(32)]
    st = wait_sessions(vg, 32)
    print(f"\n32 sessions over 2 loops: {[w['sessions'] for w in st['workers']]}")
    assert len(st["workers"]) == 2
    # The kernel hashes each connection to a socket: 32 on one loop would
    # happen once in 2^31 runs.
    assert all(w["sessions"] > 0 for w in st["workers"]), st["workers"]
    for i, c in enumerate(conns):
        with c.cursor() as cur:
            cur.execute("SELECT %s", (i,))
            assert cur.fetchone() == (i,)
    for c in conns:
        c.close()
    wait_sessions(vg, 0)
    assert vg.stop() == 0


def test_knn_from_memory_on_every_loop_while_others_write(make_vecgate, db, items):
    """Rounds: a session on some loop writes (INSERT, UPDATE or DELETE by
    key, autocommit or in a transaction), then 16 sessions on both loops ask
    the same kNN query at once: every answer is the database's, and most come
    from memory (patched snapshots shared by the loops)."""
    vg = make_vecgate(server__workers="2", cache__tables=f"{items}.items(embedding)",
                      cache__user=db.user, cache__max_staleness="30s")
    vg.wait_servable(f"{items}.items", timeout=30)
    rng = random.Random(9)
    conns = [vg.connect(items, autocommit=True) for _ in range(16)]
    st = wait_sessions(vg, 16)
    assert all(w["sessions"] > 0 for w in st["workers"]), st["workers"]
    direct = db.connect(items, autocommit=True)
    # Warm-up: a shape is answered from memory once the database answered
    # it for the user.
    for c in conns:
        raw_query(c, knn(vec(rng)))
    served0 = vg.served()
    next_id, mismatches, answers = ROWS + 1, [], 0
    for rnd in range(24):
        writer = conns[rnd % len(conns)]
        with writer.cursor() as cur:
            kind = rnd % 3
            if rnd % 4 == 3:
                writer.begin()
            if kind == 0:
                cur.execute("INSERT INTO items VALUES (%s, VEC_FROM_TEXT(%s))", (next_id, vec(rng)))
                next_id += 1
            elif kind == 1:
                cur.execute("UPDATE items SET embedding = VEC_FROM_TEXT(%s) WHERE id = %s",
                            (vec(rng), rng.randint(1, ROWS)))
            else:
                cur.execute("DELETE FROM items WHERE id = %s", (rng.randint(1, ROWS),))
            if rnd % 4 == 3:
                writer.commit()
        v = vec(rng)
        want = raw_query(direct, knn(v))
        got = [None] * len(conns)

        def ask(i):
            got[i] = raw_query(conns[i], knn(v))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for i, g in enumerate(got):
            answers += 1
            if g is None or g[0] in ("error", "ok") or not tie_aware_equal(want, g, 1):
                mismatches.append((rnd, i, g if g is None or g[0] == "error" else "rows differ"))
    served = vg.served() - served0
    patches = vg.metric("vecgate_cache_patches_total", result="ok")
    print(f"\n{answers} answers over 2 loops, 24 writes: {int(served)} from memory, "
          f"{int(patches)} patches, mismatches {len(mismatches)}")
    assert not mismatches, mismatches[:5]
    assert served >= answers // 2, f"only {served} of {answers} from memory"
    assert patches >= 1
    for c in conns:
        c.close()
    direct.close()
    assert vg.proc.poll() is None
    assert vg.stop() == 0


def test_concurrent_writers_and_readers_on_both_loops(make_vecgate, db, items):
    """8 threads on their own sessions read and write at random for a few
    seconds (no pause between): nothing fails, and afterwards every session
    answers as the database does."""
    vg = make_vecgate(server__workers="2", cache__tables=f"{items}.items(embedding)",
                      cache__user=db.user)
    vg.wait_servable(f"{items}.items", timeout=30)
    errors, counts = [], [0] * 8
    stop = time.time() + 4

    def client(n):
        rng = random.Random(100 + n)
        try:
            with vg.connect(items, autocommit=True) as c, c.cursor() as cur:
                while time.time() < stop:
                    if rng.random() < 0.2:
                        key = ROWS + 1000 * (n + 1) + rng.randint(0, 20)
                        cur.execute("REPLACE INTO items VALUES (%s, VEC_FROM_TEXT(%s))",
                                    (key, vec(rng)))
                    else:
                        r = raw_query(c, knn(vec(rng)))
                        if r[0] in ("error", "ok"):
                            errors.append(r)
                    counts[n] += 1
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print(f"\n8 clients over 2 loops: {sum(counts)} statements, errors {len(errors)}")
    assert not errors, errors[:5]
    rng = random.Random(3)
    direct = db.connect(items, autocommit=True)
    conns = [vg.connect(items, autocommit=True) for _ in range(8)]
    for _ in range(5):
        v = vec(rng)
        want = raw_query(direct, knn(v))
        for c in conns:
            assert tie_aware_equal(want, raw_query(c, knn(v)), 1)
    for c in conns:
        c.close()
    direct.close()
    assert vg.stop() == 0


def test_client_limit_holds_over_all_loops(make_vecgate):
    vg = make_vecgate(server__workers="2", server__max_client_conns="10")
    conns = [vg.connect() for _ in range(10)]
    wait_sessions(vg, 10)
    for _ in range(4):
        with pytest.raises(pymysql.err.OperationalError) as e:
            vg.connect()
        assert e.value.args[0] == 1040
    conns.pop().close()
    wait_sessions(vg, 9)
    conns.append(vg.connect())
    for c in conns:
        c.close()
    assert vg.stop() == 0


def test_login_slots_hold_over_all_loops(make_vecgate):
    """12 clients connect at once with max_pending_logins 3: three hold a
    slot whichever loop they are on, the others queue. The clients log in
    as their greeting comes; each login frees a slot, which a queued session
    on either loop takes: all 12 log in, never more than 3 at a time."""
    vg = make_vecgate(server__workers="2", server__max_pending_logins="3",
                      server__max_pending_logins_per_address="3", server__handshake_timeout="20s")
    socks = [socket.create_connection((vg.host, vg.port), timeout=10) for _ in range(12)]
    st = wait_sessions(vg, 12)
    spread = [w["sessions"] for w in st["workers"]]
    waiting, logged_in, peak = list(socks), [], 0
    deadline = time.time() + 15
    while waiting and time.time() < deadline:
        st = status(vg)["by_state"]
        pending = st["wait_upstream"] + st["greeted"] + st["client_tls"] + st["auth"]
        peak = max(peak, pending)
        ready, _, _ = select.select(waiting, [], [], 0.5)
        for s in ready:
            seq, greeting = read_packet(s)
            assert seq == 0 and greeting[0] == 10
            s.sendall(handshake_response())
            assert read_packet(s)[1][0] == 0x00
            waiting.remove(s)
            logged_in.append(s)
    print(f"\n12 logins over 2 loops {spread}, max_pending_logins 3: {len(logged_in)} logged "
          f"in, peak pending {peak}")
    assert not waiting, f"{len(waiting)} never got their greeting: {status(vg)['by_state']}"
    assert peak <= 3
    for s in logged_in:
        s.sendall(query("SELECT 7"))
        assert read_result(s) == ("rows", [[b"7"]])
        s.close()
    wait_sessions(vg, 0)
    assert vg.stop() == 0


def test_sigterm_drains_every_loop(make_vecgate, schema):
    """Idle sessions on both loops close at once; a transaction open on one
    loop finishes first; then vecgate exits 0."""
    vg = make_vecgate(server__workers="2", server__drain_timeout="10s")
    idle, busy = [], None
    try:
        # The kernel picks a loop for each connection by a hash of its
        # addresses: open idle ones until both loops have some (12 at least;
        # all on one loop is a 1-in-2^11 chance per dozen).
        while len(idle) < 64:
            idle.append(vg.connect())
            if len(idle) >= 12:
                st = wait_sessions(vg, len(idle))
                if all(w["sessions"] > 0 for w in st["workers"]):
                    break
        busy = open_transaction(vg, schema)
        st = wait_sessions(vg, len(idle) + 1)
        assert all(w["sessions"] > 0 for w in st["workers"]), st["workers"]
        vg.proc.terminate()
        deadline = time.time() + 5
        while time.time() < deadline:
            st = status(vg)
            if st["sessions"] == 1:
                break
            time.sleep(0.05)
        assert st["draining"] and st["sessions"] == 1, st
        commit_and_expect_exit(vg, busy, schema)
    finally:
        # Closed whatever happened: an open transaction would hold the
        # table's lock past the test and block dropping its schema.
        for c in idle + ([busy] if busy else []):
            try:
                c.close()
            except Exception:
                pass


def test_a_second_instance_on_the_same_port_is_refused(make_vecgate, db, tmp_path):
    """Each loop's socket has SO_REUSEPORT, which would let a second vecgate
    on the same port share it silently: it must fail to start instead, as
    it does with one loop."""
    from conftest import Vecgate
    first = make_vecgate(server__workers="2")
    for workers in ("2", "1"):
        d = tmp_path / f"second{workers}"
        d.mkdir()
        second = Vecgate(db, d, server__workers=workers, server__listen=f"127.0.0.1:{first.port}")
        with pytest.raises(RuntimeError, match="exited"):
            second.start()
        assert "address already in use" in second.log.read_text()
    with first.connect() as c, c.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    assert first.stop() == 0


def test_thread_pool_has_a_thread_per_core(make_vecgate, monkeypatch):
    """libuv's pool, where scans, loads and screens run, has a thread per
    core and 2 more (at least libuv's 4) unless UV_THREADPOOL_SIZE is set,
    which then decides (libuv's bounds: 1..1024)."""
    import os
    monkeypatch.delenv("UV_THREADPOOL_SIZE", raising=False)
    vg = make_vecgate()
    assert status(vg)["thread_pool"] == max(4, len(os.sched_getaffinity(0)) + 2)
    for value, want in (("7", 7), ("2000", 1024)):
        monkeypatch.setenv("UV_THREADPOOL_SIZE", value)
        assert status(make_vecgate())["thread_pool"] == want
