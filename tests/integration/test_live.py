"""Live snapshots: writes through vecgate patch the cached snapshot (their
rows read back by primary key after the commit) instead of reloading it.
Every write form is interleaved with kNN reads, each read compared with the
database's own answer to the same query, tie-aware: 0 mismatches, and the
metrics show that patches were used and reads stayed in memory. (The test
database has no VECTOR type: vectors are in LONGTEXT columns there.)"""
import json
import random
import threading
import time

import mysql.connector
import pytest

from conftest import Vecgate
from test_cache import dist_col_of, raw_query, tie_aware_equal

DB = "livetest"
METRICS = ["VEC_COSINE_DISTANCE", "VEC_L2_DISTANCE", "VEC_L1_DISTANCE",
           "VEC_NEGATIVE_INNER_PRODUCT"]


def vtext(rng, dim=4):
    return "[" + ",".join(str(rng.randint(-4, 4) / 2) for _ in range(dim)) + "]"


def status_of(vg, table):
    for t in json.loads(vg.admin("/status")).get("cache", []):
        if t["table"] == f"{DB}.{table}":
            return t
    return None


@pytest.fixture(scope="module")
def live(db, tmp_path_factory):
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
    vg = Vecgate(db, tmp_path_factory.mktemp("live"), cache__tables="auto", cache__user=db.user,
                 cache__max_staleness="1h").start()
    yield vg
    assert vg.stop() == 0


def make_table(db, name, key="id INT PRIMARY KEY", extra=""):
    rng = random.Random(name)
    with db.connect(DB, autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} ({key}, cat VARCHAR(8) COLLATE utf8mb4_bin, "
                    f"embedding {db.vector_type(4)}{extra})")
        rows = [(i, rng.choice("abc"), None if i % 29 == 0 else vtext(rng))
                for i in range(1, 301)]
        cur.executemany(f"INSERT INTO {name} (id, cat, embedding) VALUES (%s, %s, %s)", rows)
    return rng


def reads(rng, table, n=6):
    out = []
    for _ in range(n):
        m = rng.choice(METRICS)
        q = vtext(rng)
        # (No range filter on the key: the stand-in database sets
        # SERVER_QUERY_NO_INDEX_USED by the plan it picks, which changes as
        # rows come and go; TiDB sends no such flag.)
        where = rng.choice(["", "WHERE cat = 'a'", "WHERE cat IN ('b', 'c')"])
        out.append(f"SELECT id, cat, embedding, {m}(embedding, '{q}') AS distance FROM {table} "
                   f"{where} ORDER BY distance LIMIT {rng.choice([1, 5, 20])}")
    return out


def compare(direct, proxied, sqls, mismatches):
    for sql in sqls:
        d, p = raw_query(direct, sql), raw_query(proxied, sql)
        dist = dist_col_of(d[0]) if d[0] not in ("error", "ok") else None
        if not tie_aware_equal(d, p, dist):
            mismatches.append(sql)


def counters(vg):
    return {
        "hits": vg.served(),
        "patches": vg.metric("vecgate_cache_patches_total", result="ok"),
        "loads": vg.metric("vecgate_cache_loads_total", result="ok"),
    }


def prove(vg, direct, proxied, table, rng):
    """First reads load the table and prove the shapes."""
    compare(direct, proxied, reads(rng, table, 2), [])
    vg.wait_servable(f"{DB}.{table}", step=0.02)
    for _ in range(3):
        compare(direct, proxied, reads(rng, table, 4), [])
        time.sleep(0.05)


TEXT_WRITES = [
    "INSERT INTO {t} (id, cat, embedding) VALUES ({n}, 'a', '{v}')",
    "INSERT INTO {t} (id, cat, embedding) VALUES ({n}, 'b', '{v}'), ({n1}, 'c', '{v}')",
    "REPLACE INTO {t} (id, cat, embedding) VALUES ({e}, 'c', '{v}')",
    "INSERT INTO {t} (id, cat, embedding) VALUES ({e}, 'a', '{v}') "
    "ON DUPLICATE KEY UPDATE embedding = VALUES(embedding), cat = 'b'",
    "UPDATE {t} SET embedding = '{v}' WHERE id = {e}",
    "UPDATE {t} SET cat = 'c', embedding = '{v}' WHERE id IN ({e}, {e1}) AND cat <> 'z'",
    "DELETE FROM {t} WHERE id = {e}",
    "DELETE FROM {t} WHERE id IN ({e}, {e1})",
    "INSERT IGNORE INTO {t} (id, cat, embedding) VALUES ({n}, 'a', '{v}')",
    "UPDATE {t} SET embedding = NULL WHERE id = {e}",
]


def fill(tmpl, table, rng, state):
    state["next"] += 2
    return tmpl.format(t=table, n=state["next"], n1=state["next"] + 1,
                       e=rng.randint(1, 300), e1=rng.randint(1, 300), v=vtext(rng))


def test_text_writes_patch_and_reads_match(live, db):
    table = "tw"
    rng = make_table(db, table)
    direct = db.connect(DB, autocommit=True)
    proxied = live.connect(DB, autocommit=True)
    prove(live, direct, proxied, table, rng)
    before = counters(live)
    state = {"next": 1000}
    mismatches = []
    for i in range(60):
        sql = fill(TEXT_WRITES[i % len(TEXT_WRITES)], table, rng, state)
        with proxied.cursor() as cur:
            cur.execute(sql)
        compare(direct, proxied, reads(rng, table, 3), mismatches)
    after = counters(live)
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    assert after["patches"] > before["patches"], "no write was patched"
    assert after["loads"] == before["loads"], "a write made the table reload"
    assert after["hits"] - before["hits"] >= 100, after
    st = status_of(live, table)
    assert st["patch_failures"] == 0 and st["pending_writes"] == 0, st


def test_transactions_rollbacks_and_read_your_writes(live, db):
    table = "txw"
    rng = make_table(db, table)
    # Both as PyMySQL/SQLAlchemy applications run: autocommit off (the
    # status flags of every answer say so).
    direct = db.connect(DB, autocommit=False)
    proxied = live.connect(DB, autocommit=False)
    prove(live, direct, proxied, table, rng)
    proxied.commit()
    direct.commit()
    before = counters(live)
    mismatches = []
    state = {"next": 2000}
    for i in range(15):
        with proxied.cursor() as cur:
            for j in range(3):
                cur.execute(fill(TEXT_WRITES[(i + j) % len(TEXT_WRITES)], table, rng, state))
        if i % 4 == 3:
            proxied.rollback()
        else:
            proxied.commit()
        # read your writes: straight after the commit, from the same session
        # (the direct session starts a fresh transaction to see them too)
        direct.commit()
        compare(direct, proxied, reads(rng, table, 3), mismatches)
        proxied.commit()
    after = counters(live)
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    assert after["patches"] > before["patches"]
    assert after["loads"] == before["loads"]


def test_prepared_writes_and_auto_increment(live, db):
    table = "pw"
    make_table(db, table, key="id INT AUTO_INCREMENT PRIMARY KEY")
    rng = random.Random(5)
    direct = db.connect(DB, autocommit=True)
    proxied = live.connect(DB, autocommit=True)
    prove(live, direct, proxied, table, rng)
    before = counters(live)
    conn = mysql.connector.connect(host="127.0.0.1", port=live.port, user=db.user,
                                   password=db.password, database=DB, ssl_ca=db.ca,
                                   ssl_verify_cert=True, use_pure=True, autocommit=True)
    cur = conn.cursor(prepared=True)
    mismatches = []
    for i in range(20):
        k = i % 5
        if k == 0:  # generated keys, three rows
            cur.execute(f"INSERT INTO {table} (cat, embedding) VALUES (?, ?), (?, ?), (?, ?)",
                        ("a", vtext(rng), "b", vtext(rng), "c", vtext(rng)))
        elif k == 1:
            cur.execute(f"UPDATE {table} SET embedding = ? WHERE id = ?",
                        (vtext(rng), rng.randint(1, 300)))
        elif k == 2:
            cur.execute(f"DELETE FROM {table} WHERE id = ?", (rng.randint(1, 300),))
        elif k == 3:
            cur.execute(f"REPLACE INTO {table} (id, cat, embedding) VALUES (?, ?, ?)",
                        (rng.randint(1, 300), "c", vtext(rng)))
        else:  # text form, generated key
            with proxied.cursor() as c2:
                c2.execute(f"INSERT INTO {table} (cat, embedding) VALUES ('a', '{vtext(rng)}')")
        compare(direct, proxied, reads(rng, table, 3), mismatches)
    conn.close()
    after = counters(live)
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mismatches[0]}"
    assert after["patches"] > before["patches"]
    assert after["loads"] == before["loads"], "a write made the table reload"


def test_composite_and_string_keys(live, db):
    table = "ck"
    with db.connect(DB, autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (a INT, b VARCHAR(10) COLLATE utf8mb4_bin, "
                    f"embedding {db.vector_type(4)}, PRIMARY KEY (a, b))")
        rng = random.Random(11)
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)",
                        [(i % 20, f"k{i}", vtext(rng)) for i in range(200)])
    direct = db.connect(DB, autocommit=True)
    proxied = live.connect(DB, autocommit=True)

    def knn():
        return [f"SELECT a, b, {m}(embedding, '{vtext(rng)}') AS distance FROM {table} "
                f"ORDER BY distance LIMIT 7" for m in METRICS[:2]]
    compare(direct, proxied, knn(), [])
    live.wait_servable(f"{DB}.{table}", step=0.02)
    for _ in range(3):
        compare(direct, proxied, knn(), [])
    before = counters(live)
    mismatches = []
    for i in range(20):
        a, b = rng.randrange(20), f"k{rng.randrange(200)}"
        with proxied.cursor() as cur:
            [lambda: cur.execute(f"UPDATE {table} SET embedding = '{vtext(rng)}' "
                                 f"WHERE a = {a} AND b = '{b}'"),
             lambda: cur.execute(f"DELETE FROM {table} WHERE (a, b) IN (({a}, '{b}'), (1, 'k1'))"),
             lambda: cur.execute(f"INSERT INTO {table} (a, b, embedding) "
                                 f"VALUES ({a}, 'new{i}', '{vtext(rng)}')"),
             ][i % 3]()
        compare(direct, proxied, knn(), mismatches)
    assert not mismatches, mismatches[0]
    assert counters(live)["patches"] > before["patches"]


def test_unresolvable_writes_fall_back_and_stay_correct(live, db):
    table = "fb"
    rng = make_table(db, table)
    direct = db.connect(DB, autocommit=True)
    proxied = live.connect(DB, autocommit=True)
    prove(live, direct, proxied, table, rng)
    mismatches = []
    fallbacks0 = live.metric("vecgate_cache_patch_fallbacks_total", reason="no_key_in_where")
    for sql in [f"UPDATE {table} SET cat = 'z' WHERE cat = 'a'",
                f"DELETE FROM {table} WHERE id > 290",
                f"UPDATE {table} SET id = id + 1000 WHERE id = 5",
                f"INSERT INTO {table} (id, cat, embedding) SELECT id + 5000, cat, embedding "
                f"FROM {table} WHERE id < 3",
                # no column list; a duplicate ignored (the warning could as
                # well be a clipped key)
                f"INSERT INTO {table} VALUES (7001, 'a', '{vtext(rng)}')",
                f"INSERT IGNORE INTO {table} (id, cat, embedding) VALUES (1, 'a', '[1,1,1,1]')"]:
        with proxied.cursor() as cur:
            cur.execute(sql)
        compare(direct, proxied, reads(rng, table, 4), mismatches)
    assert not mismatches, mismatches[0]
    assert live.metric("vecgate_cache_patch_fallbacks_total",
                       reason="no_key_in_where") > fallbacks0
    for reason in ("key_assigned", "insert_select", "no_column_list", "warnings"):
        assert live.metric("vecgate_cache_patch_fallbacks_total", reason=reason) > 0, reason


def test_concurrent_writers_compose(live, db):
    table = "cw"
    rng = make_table(db, table)
    direct = db.connect(DB, autocommit=True)
    proxied = live.connect(DB, autocommit=True)
    prove(live, direct, proxied, table, rng)
    errors = []

    def writer(seed):
        r = random.Random(seed)
        try:
            with live.connect(DB, autocommit=True) as c, c.cursor() as cur:
                for i in range(40):
                    e = r.randint(1, 300)
                    [lambda: cur.execute(f"UPDATE {table} SET embedding = '{vtext(r)}' "
                                         f"WHERE id = {e}"),
                     lambda: cur.execute(f"REPLACE INTO {table} (id, cat, embedding) "
                                         f"VALUES ({e}, 'b', '{vtext(r)}')"),
                     lambda: cur.execute(f"INSERT INTO {table} (id, cat, embedding) VALUES "
                                         f"({seed * 10000 + i}, 'a', '{vtext(r)}')"),
                     lambda: cur.execute(f"DELETE FROM {table} WHERE id = {e}")][i % 4]()
        except Exception as ex:  # reported below
            errors.append(repr(ex))
    threads = [threading.Thread(target=writer, args=(s,)) for s in (1, 2, 3)]
    for t in threads:
        t.start()
    mismatches = []
    while any(t.is_alive() for t in threads):
        # reads race the writers: only their distances can be compared
        # with a later direct read, so just check they get answers
        raw_query(proxied, reads(rng, table, 1)[0])
    for t in threads:
        t.join()
    assert not errors, errors
    # once the writers are done, every read equals the database's
    compare(direct, proxied, reads(rng, table, 12), mismatches)
    assert not mismatches, mismatches[0]
    st = status_of(live, table)
    assert st["patches"] > 0 and st["pending_writes"] == 0, st


def test_refresh_reuses_unchanged_rows_and_sees_bypassing_writes(db, tmp_path):
    """The max_staleness refresh reads every row again but parses only the
    ones whose bytes changed; a write straight to the database is seen."""
    table = "rf"
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        cur.execute(f"DROP TABLE IF EXISTS {DB}.{table}")
    make_table(db, table)
    vg = Vecgate(db, tmp_path, cache__tables=f"{DB}.{table}(embedding)", cache__user=db.user,
                 cache__max_staleness="1s").start()
    try:
        vg.wait_servable(f"{DB}.{table}", step=0.02)
        with db.connect(DB, autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"UPDATE {table} SET embedding = '[9,9,9,9]' WHERE id = 7")
        loads0 = status_of(vg, table)["loads"]
        deadline = time.time() + 10
        while status_of(vg, table)["loads"] < loads0 + 2:  # a refresh begun after it
            assert time.time() < deadline, status_of(vg, table)
            time.sleep(0.05)
        st = status_of(vg, table)
        # 290 rows hold a vector (every 29th is NULL: nothing to parse);
        # at most the one written is parsed again
        assert st["rows"] == 300 and 289 <= st["reused_rows"] <= 290, st
        # (rows with a NULL vector come first: NULL distances sort first)
        sql = (f"SELECT id, VEC_L2_DISTANCE(embedding, '[9,9,9,9]') AS d FROM {table} "
               f"ORDER BY d LIMIT 20")
        with vg.connect(DB, autocommit=True) as conn:
            for _ in range(4):
                with conn.cursor() as cur:
                    cur.execute(sql)
                    assert (7, 0.0) in cur.fetchall()
                time.sleep(0.05)
        assert vg.served() > 0
    finally:
        assert vg.stop() == 0


def test_failed_loads_back_off_while_writes_go_on(db, tmp_path):
    """A table whose loads fail (here the cache account lost its grant) is
    loaded again after the back-off, however many writes come meanwhile:
    each write used to start a load at once, a stream of failing
    connections to the database while the writes went on. Reads stay
    correct (the database answers them), and once the grant is back the
    table is loaded and served again."""
    table, user, pw = "bo", "vg_backoff", "Backoff-pw-1"
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        cur.execute(f"DROP TABLE IF EXISTS {DB}.{table}")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}'")
    rng = make_table(db, table)
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"GRANT SELECT ON {DB}.{table} TO '{user}'@'%'")
    vg = Vecgate(db, tmp_path, cache__tables=f"{DB}.{table}(embedding)", cache__user=user,
                 cache__password=pw, cache__max_staleness="1h").start()
    try:
        vg.wait_servable(f"{DB}.{table}")
        direct = db.connect(DB, autocommit=True)
        proxied = vg.connect(DB, autocommit=True)
        mismatches = []
        fixed = reads(random.Random(5), table, 3)
        for _ in range(2):  # their shapes proven, then answered from memory
            compare(direct, proxied, fixed, mismatches)
        assert vg.served() > 0
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"REVOKE SELECT ON {DB}.{table} FROM '{user}'@'%'")
        for i in range(40):
            with proxied.cursor() as cur:
                # by key (patched) and by another column (a reload)
                cur.execute(f"UPDATE {table} SET embedding = '{vtext(rng)}' WHERE id = {i + 1}"
                            if i % 2 else
                            f"UPDATE {table} SET embedding = '{vtext(rng)}' WHERE cat = 'a' "
                            f"AND id = {i + 100} + 0")
            if i % 8 == 0:
                compare(direct, proxied, reads(rng, table, 1), mismatches)
            time.sleep(0.05)
        assert not mismatches, mismatches[0]
        # The first failure starts the back-off (5 s): no load meanwhile.
        failed = vg.metric("vecgate_cache_loads_total", result="failed")
        assert 1 <= failed <= 2, (failed, status_of(vg, table))
        st = status_of(vg, table)
        assert st["last_error"], st
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"GRANT SELECT ON {DB}.{table} TO '{user}'@'%'")
        # The timer loads it when the back-off ends, with no write to ask.
        vg.wait_servable(f"{DB}.{table}", timeout=15)
        hits0 = vg.served()
        compare(direct, proxied, fixed, mismatches)
        assert not mismatches, mismatches[0]
        assert vg.served() > hits0
    finally:
        vg.stop()
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
