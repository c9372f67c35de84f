"""What a session may see: rows answered from memory must never reach a
session that the database would refuse, whatever the client asked for. Each
case compares vecgate's answer with the database's own answer to the same
session, as a less privileged user would probe it (docs/design.md, "Who may
see cached rows"). Also: auto-admission cannot be turned into a load flood,
and a NULL parameter in a recognised prepared statement is handled."""
import json
import os
import threading
import time
from pathlib import Path

import pymysql
import pytest
from pymysql.constants import CLIENT

from conftest import TOP, Vecgate

A, B = "sec_a", "sec_b"
PW = "Sec-pw-1"
KNN = ("SELECT id, v, VEC_COSINE_DISTANCE(v, '[1,2,3]') AS d FROM {t} WHERE id = {id} "
       "ORDER BY d LIMIT 3")


def rows(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def outcome(conn, sql):
    """Rows, or the error code and message, as a client sees them."""
    try:
        return ("rows", rows(conn, sql))
    except pymysql.err.MySQLError as e:
        return ("error", e.args[0], e.args[1])


@pytest.fixture(scope="module")
def setup(db):
    """Two databases with a table t of the same columns: a.t is empty, b.t
    holds rows. u2 may read a only; u3 may read b only through role rb."""
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        for d in (A, B):
            cur.execute(f"DROP DATABASE IF EXISTS {d}")
            cur.execute(f"CREATE DATABASE {d}")
            cur.execute(f"CREATE TABLE {d}.t (id INT PRIMARY KEY, v {db.vector_type(3)})")
        cur.execute(f"INSERT INTO {B}.t VALUES (1, '[1,2,3]'), (2, '[3,2,1]'), (3, '[1,1,1]')")
        for u in ("u2", "u3"):
            cur.execute(f"DROP USER IF EXISTS '{u}'@'%'")
            cur.execute(f"CREATE USER '{u}'@'%' IDENTIFIED BY '{PW}'")
        cur.execute("DROP ROLE IF EXISTS rb")
        cur.execute("CREATE ROLE rb")
        cur.execute(f"GRANT SELECT ON {B}.* TO rb")
        cur.execute("GRANT rb TO 'u3'@'%'")
        cur.execute(f"GRANT SELECT ON {A}.* TO 'u2'@'%'")
        cur.execute(f"GRANT SELECT ON {A}.* TO 'u3'@'%'")
    yield
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        for u in ("u2", "u3"):
            cur.execute(f"DROP USER IF EXISTS '{u}'@'%'")
        cur.execute("DROP ROLE IF EXISTS rb")
        for d in (A, B):
            cur.execute(f"DROP DATABASE IF EXISTS {d}")


@pytest.fixture(scope="module")
def vg(db, setup, tmp_path_factory):
    """b.t is cached because another application queries it."""
    v = Vecgate(db, tmp_path_factory.mktemp("sec"), cache__tables=f"{B}.t(v)",
                cache__user=db.user).start()
    v.wait_servable(f"{B}.t")
    yield v
    assert v.stop() == 0


def probe(target, user, first, database=A, **kw):
    """Runs the statements in `first` (errors expected and ignored), proves
    the shape three times with an id that matches nothing, then asks for
    row 1 of the unqualified table t."""
    conn = target.connect(database, user=user, password=PW, autocommit=True, **kw)
    try:
        for sql in first:
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    while cur.nextset():
                        pass
            except pymysql.err.MySQLError:
                pass
        for _ in range(3):
            assert outcome(conn, KNN.format(t="t", id=12345)) == ("rows", ())
            time.sleep(0.05)
        return outcome(conn, KNN.format(t="t", id=1))
    finally:
        conn.close()


def test_failed_use_does_not_switch_the_database(vg, db):
    direct = probe(db, "u2", [f"USE {B}"])
    assert direct == ("rows", ())
    for _ in range(2):  # the second round would find the shape proven
        assert probe(vg, "u2", [f"USE {B}"]) == direct


def test_failed_statement_before_use_in_one_packet(vg, db):
    first = [f"SELECT 1 FROM no_such_table; USE {B}"]
    direct = probe(db, "u2", first, client_flag=CLIENT.MULTI_STATEMENTS)
    assert direct == ("rows", ())
    for _ in range(2):
        assert probe(vg, "u2", first, client_flag=CLIENT.MULTI_STATEMENTS) == direct


def test_honest_user_after_failed_multi_statement_gets_its_own_database(vg, db):
    """root may read both databases: after a failed first statement, t is
    still a.t (empty), never b.t from memory."""
    def run(target):
        conn = target.connect(A, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
        try:
            with pytest.raises(pymysql.err.MySQLError):
                with conn.cursor() as cur:
                    cur.execute(f"SELECT 1 FROM no_such_table; USE {B}")
            out = [outcome(conn, KNN.format(t="t", id=i)) for i in (12345, 12345, 12345, 1)]
            out.append(rows(conn, "SELECT DATABASE()"))
            return out
        finally:
            conn.close()
    direct = run(db)
    assert direct[-2] == ("rows", ()) and direct[-1] == ((A,),)
    assert run(vg) == direct
    assert run(vg) == direct


def test_successful_use_in_a_multi_statement_packet_is_followed(vg, db):
    """The other way round: USE that the server accepted moves the session,
    and answers from memory follow it."""
    conn = vg.connect(A, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT 1; USE {B}")
            while cur.nextset():
                pass
        before = vg.served()
        got = [outcome(conn, KNN.format(t="t", id=1)) for _ in range(5)]
    finally:
        conn.close()
    assert all(g == ("rows", ((1, "[1,2,3]", 0.0),)) for g in got), got
    assert vg.served() > before


def knn_b(conn):
    return outcome(conn, KNN.format(t=f"{B}.t", id=1))


def test_proof_made_under_a_role_does_not_serve_a_session_without_it(vg, db):
    # u3 with role rb proves the shape on b.t ...
    with vg.connect(A, user="u3", password=PW, autocommit=True) as conn:
        rows(conn, "SET ROLE rb")
        first = [knn_b(conn) for _ in range(4)]
    assert all(f[0] == "rows" and len(f[1]) == 1 for f in first), first
    # ... a second u3 session without the role gets the database's error.
    with db.connect(A, user="u3", password=PW, autocommit=True) as conn:
        direct = knn_b(conn)
    assert direct[0] == "error" and direct[1] == 1142, direct
    with vg.connect(A, user="u3", password=PW, autocommit=True) as conn:
        assert rows(conn, "SELECT CURRENT_ROLE()") == ((None,),)
        for _ in range(3):
            assert knn_b(conn) == direct


def test_set_role_none_and_failed_set_role_follow_the_server(vg, db):
    def run(target):
        with target.connect(A, user="u3", password=PW, autocommit=True) as conn:
            out = [outcome(conn, "SET ROLE rb"), knn_b(conn), knn_b(conn), knn_b(conn)]
            out.append(outcome(conn, "SET ROLE no_such_role"))  # refused: rb stays
            out += [knn_b(conn), knn_b(conn)]
            out.append(outcome(conn, "SET ROLE NONE"))
            out += [knn_b(conn), knn_b(conn)]
            out.append(rows(conn, "SELECT CURRENT_ROLE()"))
            return out
    direct = run(db)
    assert direct[5][0] == "rows" and direct[-2][0] == "error"
    assert run(vg) == direct


def test_role_set_through_a_prepared_statement_is_not_trusted(vg, db):
    """PREPARE r FROM 'SET ROLE NONE'; EXECUTE r changes the roles where
    vecgate cannot read it: the session's proofs are its own from then on."""
    def run(target):
        with target.connect(A, user="u3", password=PW, autocommit=True) as conn:
            out = [outcome(conn, "SET ROLE rb"), knn_b(conn), knn_b(conn), knn_b(conn)]
            time.sleep(0.2)
            out.append(outcome(conn, "PREPARE r FROM 'SET ROLE NONE'"))
            out.append(outcome(conn, "EXECUTE r"))
            out += [knn_b(conn), knn_b(conn), knn_b(conn)]
            return out
    direct = run(db)
    assert direct[-1][0] == "error" and direct[-1][1] == 1142, direct
    assert run(vg) == direct


def test_sessions_with_the_same_role_share_proofs(vg, db):
    """Keying proofs by role is not a reason to stop serving: a second
    session that set the same role is answered from memory."""
    vg.wait_servable(f"{B}.t")
    with vg.connect(A, user="u3", password=PW, autocommit=True) as conn:
        rows(conn, "SET ROLE rb")
        for _ in range(5):
            knn_b(conn)
            time.sleep(0.05)
    time.sleep(0.3)
    before = vg.served()
    with vg.connect(A, user="u3", password=PW, autocommit=True) as conn:
        rows(conn, "SET ROLE rb")
        got = [knn_b(conn) for _ in range(5)]
    assert all(g == ("rows", ((1, "[1,2,3]", 0.0),)) for g in got), got
    assert vg.served() > before


def test_failed_change_user_makes_the_session_prove_again(vg, db):
    """After a refused COM_CHANGE_USER vecgate cannot be sure who the session
    is (MariaDB keeps the old user, other servers may not): the proofs made
    before do not answer it; the database answers it again first."""
    import mysql.connector

    def run(port):
        conn = mysql.connector.connect(host="127.0.0.1", port=port, user=db.user,
                                       password=db.password, database=B, ssl_ca=db.ca,
                                       ssl_verify_cert=True, use_pure=True, autocommit=True)
        cur = conn.cursor()
        sql = KNN.format(t="t", id=1)
        out = []
        for _ in range(3):
            cur.execute(sql)
            out.append(cur.fetchall())
        time.sleep(0.2)
        with pytest.raises(mysql.connector.Error) as e:
            conn.cmd_change_user(username="u2", password="wrong", database=A)
        out.append(e.value.errno)
        before = vg.served()
        cur.execute(sql)
        out.append(cur.fetchall())
        hits = vg.served() - before
        for _ in range(3):
            cur.execute(sql)
            out.append(cur.fetchall())
        conn.close()
        return out, hits
    direct, _ = run(db.port)
    proxied, hits = run(vg.port)
    assert proxied == direct and direct[3] == 1045
    assert hits == 0


# ---- admission ----

def cache_tables(vg):
    return {t["table"]: t for t in json.loads(vg.admin("/status")).get("cache", [])}


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_admission_flood_loads_nothing(db, setup, tmp_path):
    vg = Vecgate(db, tmp_path, cache__tables="auto", cache__user=db.user).start()
    try:
        with vg.connect(A, user="u2", password=PW, autocommit=True) as conn, conn.cursor() as cur:
            t0 = time.time()
            for i in range(1500):
                with pytest.raises(pymysql.err.MySQLError):
                    cur.execute(KNN.format(t=f"nosuchdb{i}.t", id=1))
            # a table the user may not read, and a system table
            for sql in (KNN.format(t=f"{B}.t", id=1),
                        "SELECT User, VEC_COSINE_DISTANCE(User, '[1]') AS d FROM mysql.user "
                        "ORDER BY d LIMIT 1",
                        "SELECT 1, VEC_COSINE_DISTANCE(TABLE_NAME, '[1]') AS d "
                        "FROM information_schema.TABLES ORDER BY d LIMIT 1"):
                try:
                    cur.execute(sql)
                except pymysql.err.MySQLError:
                    pass
            assert time.time() - t0 < 60
        time.sleep(1.0)
        tables = cache_tables(vg)
        assert not any(n.startswith("nosuchdb") for n in tables), tables
        assert f"{B}.t" not in tables and not any(n.lower().startswith(("mysql.", "information_schema."))
                                                  for n in tables), tables
        assert vg.metric("vecgate_cache_loads_total", result="failed") == 0
        # Nothing keeps running after the client left.
        c0 = cpu_seconds(vg.proc.pid)
        time.sleep(2.0)
        assert cpu_seconds(vg.proc.pid) - c0 < 0.3
        # A table the database did answer for is admitted and served.
        with vg.connect(B, autocommit=True) as conn:
            assert knn_b(conn)[0] == "rows"
            vg.wait_servable(f"{B}.t")
    finally:
        vg.stop()


def test_admission_is_bounded_and_failed_loads_are_forgotten(db, setup, tmp_path):
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'vg_loader'@'%'")
        cur.execute(f"CREATE USER 'vg_loader'@'%' IDENTIFIED BY '{PW}'")
        cur.execute(f"GRANT SELECT ON {A}.* TO 'vg_loader'@'%'")
        cur.execute("DROP DATABASE IF EXISTS sec_many")
        cur.execute("CREATE DATABASE sec_many")
        for i in range(4):
            cur.execute(f"CREATE TABLE sec_many.t{i} (id INT PRIMARY KEY, v {db.vector_type(3)})")
            cur.execute(f"INSERT INTO sec_many.t{i} VALUES (1, '[1,2,3]')")
        cur.execute("GRANT SELECT ON sec_many.* TO 'vg_loader'@'%'")
    # The cache account may read a and sec_many, not b.
    vg = Vecgate(db, tmp_path, cache__tables="auto", cache__user="vg_loader",
                 cache__password=PW, cache__max_tables="2").start()
    try:
        with vg.connect(autocommit=True) as conn:
            # b.t: the database answers root, the cache account cannot load it.
            assert knn_b(conn)[0] == "rows"
            deadline = time.time() + 10
            while time.time() < deadline and vg.metric("vecgate_cache_loads_total",
                                                       result="failed") < 1:
                time.sleep(0.05)
            assert vg.metric("vecgate_cache_loads_total", result="failed") == 1
            time.sleep(0.5)
            assert f"{B}.t" not in cache_tables(vg)  # forgotten
            for _ in range(20):  # asking again within the back-off loads nothing
                knn_b(conn)
            time.sleep(1.0)
            assert vg.metric("vecgate_cache_loads_total", result="failed") == 1
            assert f"{B}.t" not in cache_tables(vg)
            # At most max_tables admitted; the forgotten one holds no place.
            for i in range(4):
                assert outcome(conn, KNN.format(t=f"sec_many.t{i}", id=1))[0] == "rows"
            time.sleep(1.0)
            many = [n for n in cache_tables(vg) if n.startswith("sec_many.")]
            assert len(many) == 2, cache_tables(vg)
            for n in many:
                vg.wait_servable(n)
    finally:
        vg.stop()
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'vg_loader'@'%'")
            cur.execute("DROP DATABASE IF EXISTS sec_many")


# ---- prepared statements ----

def test_null_parameter_in_a_recognised_prepared_statement(db, setup, tmp_path):
    """A NULL parameter reaches the capture of TiDB's first answer; the
    ASan+UBSan build must not abort there."""
    import mysql.connector
    asan = TOP / "build-asan" / "vecgate"
    vg = Vecgate(db, tmp_path, binary=str(asan) if asan.exists() else None,
                 cache__tables=f"{B}.t(v)", cache__user=db.user).start()
    try:
        vg.wait_servable(f"{B}.t")

        def run(port):
            conn = mysql.connector.connect(host="127.0.0.1", port=port, user=db.user,
                                           password=db.password, database=B, ssl_ca=db.ca,
                                           ssl_verify_cert=True, use_pure=True, autocommit=True)
            cur = conn.cursor(prepared=True)
            out = []
            for param in (None, None, 1, None, 2, None):
                cur.execute("SELECT id, VEC_COSINE_DISTANCE(v, '[1,2,3]') AS d FROM t "
                            "WHERE id = ? ORDER BY d LIMIT 3", (param,))
                out.append(cur.fetchall())
            conn.close()
            return out
        assert run(vg.port) == run(db.port)
        assert vg.proc.poll() is None, vg.log.read_text()[-3000:]
    finally:
        rc = vg.stop()
    assert rc == 0, vg.log.read_text()[-3000:]


# ---- privileges changed after a proof ----

def test_revoke_on_the_database_while_sessions_read_from_memory(db, setup, tmp_path):
    """SELECT revoked straight on the database while six sessions of the
    user read the table from memory as fast as they can: once the proof has
    run out ([cache] proof_max_age) and one renewal went to the database,
    every session receives TiDB's refusal. The renewal's refusal ends the
    grace in which the others are answered under the old proof at once, so
    no session receives rows later than the proof's age plus that one query
    (docs/design.md §9)."""
    vg = Vecgate(db, tmp_path, cache__tables=f"{B}.t(v)", cache__user=db.user,
                 cache__proof_max_age="1s").start()
    sql = KNN.format(t=f"{B}.t", id=1)
    try:
        vg.wait_servable(f"{B}.t")
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"GRANT SELECT ON {B}.t TO 'u2'@'%'")
        conn = vg.connect(A, user="u2", password=PW, autocommit=True)
        for _ in range(4):  # proved, then answered from memory
            assert outcome(conn, sql)[0] == "rows"
            time.sleep(0.05)
        conn.close()
        log, errors = [], []
        lock = threading.Lock()
        stop = time.time() + 5.0

        def client():
            try:
                with vg.connect(A, user="u2", password=PW, autocommit=True) as c:
                    while time.time() < stop:
                        got = outcome(c, sql)
                        with lock:
                            log.append((time.time(), got[0], got[1] if got[0] == "error" else 0))
            except Exception as e:  # reported below
                with lock:
                    errors.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for th in threads:
            th.start()
        time.sleep(1.5)
        served_before = vg.served()
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"REVOKE SELECT ON {B}.t FROM 'u2'@'%'")
        revoked = time.time()
        for th in threads:
            th.join()
        assert not errors, errors
        assert served_before > 50, "the sessions were not answered from memory"
        late = [e for e in log if e[0] > revoked + 1.5 and e[1] == "rows"]
        assert not late, f"{len(late)} answers with rows after the proof's age, first {late[0]}"
        after = [e for e in log if e[0] > revoked + 1.5]
        assert len(after) >= 6 and all(e[1] == "error" and e[2] == 1142 for e in after), after[:5]
        assert vg.metric("vecgate_cache_renewal_grace_total") > 0
    finally:
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            try:  # u2 reads a only, whatever happened above
                cur.execute(f"REVOKE SELECT ON {B}.t FROM 'u2'@'%'")
            except pymysql.err.MySQLError:
                pass  # already revoked
        assert vg.stop() == 0


def test_revoke_through_vecgate_and_straight_on_the_database(db, setup, tmp_path):
    """A user whose SELECT is revoked never receives the table's rows from
    memory again: at once when the REVOKE goes through vecgate, within
    [cache] proof_max_age when it is made straight on the database."""
    vg = Vecgate(db, tmp_path, cache__tables=f"{B}.t(v)", cache__user=db.user,
                 cache__proof_max_age="1s").start()
    sql = KNN.format(t=f"{B}.t", id=1)
    try:
        vg.wait_servable(f"{B}.t")
        for revoke_via in (vg, db):
            with db.connect(autocommit=True) as c, c.cursor() as cur:
                cur.execute(f"GRANT SELECT ON {B}.t TO 'u2'@'%'")
            conn = vg.connect(A, user="u2", password=PW, autocommit=True)
            try:
                for _ in range(4):  # proved, then answered from memory
                    assert outcome(conn, sql)[0] == "rows"
                    time.sleep(0.05)
                before = vg.served()
                assert outcome(conn, sql)[0] == "rows"
                assert vg.served() > before, "the shape was not answered from memory"
                with revoke_via.connect(autocommit=True) as c, c.cursor() as cur:
                    cur.execute(f"REVOKE SELECT ON {B}.t FROM 'u2'@'%'")
                if revoke_via is db:
                    time.sleep(1.2)  # the proof's age bound
                got = outcome(conn, sql)
                assert got[0] == "error" and got[1] == 1142, (revoke_via, got)
                assert outcome(conn, sql)[0] == "error"
            finally:
                conn.close()
    finally:
        assert vg.stop() == 0
