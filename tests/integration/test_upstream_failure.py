"""The database goes away under vecgate: clients see what they would see
connected straight to it, nothing is re-sent, vecgate stays up, and logins
work again as soon as the database is back. Uses a private database instance
(tools/tidb with its own run directory and port), restarted by the test."""
import threading
import time

import pymysql
import pytest

from conftest import PrivateDatabase, Vecgate


@pytest.fixture
def private_db(tmp_path):
    p = PrivateDatabase(tmp_path / "db")
    yield p
    p.tidb("stop")


def lost(conn):
    with pytest.raises(pymysql.err.OperationalError) as e:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
    return e.value.args[0]


def test_database_restart(private_db, tmp_path):
    db = private_db.start()
    vg = Vecgate(db, tmp_path).start()
    try:
        direct = db.connect()
        proxied = vg.connect()
        for c in (direct, proxied):
            with c.cursor() as cur:
                cur.execute("SELECT 1")

        private_db.tidb("stop")
        # The same client-side error both ways (the server closed the link).
        code_direct, code_proxied = lost(direct), lost(proxied)
        assert code_proxied == code_direct
        assert code_direct in (2006, 2013)

        # vecgate is up; a login now fails with a clear error.
        assert vg.admin("/health").strip() in ("ok", "OK")
        with pytest.raises(pymysql.err.OperationalError) as e:
            vg.connect()
        assert "vecgate" in str(e.value) or e.value.args[0] in (2003, 2013)

        private_db.start()
        deadline = time.time() + 30
        while True:
            try:
                with vg.connect() as c, c.cursor() as cur:
                    cur.execute("SELECT 2")
                    assert cur.fetchone() == (2,)
                break
            except pymysql.err.OperationalError:
                assert time.time() < deadline, "no login after the database came back"
                time.sleep(0.2)
    finally:
        assert vg.stop() == 0


def test_statement_cut_off_is_not_replayed(private_db, tmp_path):
    db = private_db.start()
    vg = Vecgate(db, tmp_path).start()
    try:
        with db.connect() as admin, admin.cursor() as cur:
            cur.execute("CREATE DATABASE r")
            cur.execute("CREATE TABLE r.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
        conn = vg.connect("r", autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            upstream_id = cur.fetchone()[0]
        errors = []

        def slow_insert():
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO t (v) SELECT SLEEP(2)")
            except pymysql.err.MySQLError as e:
                errors.append(e.args[0])

        t = threading.Thread(target=slow_insert)
        t.start()
        time.sleep(0.5)
        with db.connect() as admin, admin.cursor() as cur:
            cur.execute(f"KILL CONNECTION {upstream_id}")
        t.join(10)
        assert errors, "the client was told its statement failed"
        time.sleep(2.5)
        with db.connect() as admin, admin.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM r.t")
            assert cur.fetchone()[0] <= 1, "the statement ran more than once"
        # Other clients are unaffected.
        with vg.connect() as c, c.cursor() as cur:
            cur.execute("SELECT 3")
            assert cur.fetchone() == (3,)
    finally:
        assert vg.stop() == 0


def test_login_the_database_gave_up_on_gets_an_error(private_db, tmp_path):
    """MySQL-protocol servers drop a connection whose login has not arrived
    within their connect_timeout, counted from the greeting vecgate fetched
    (perhaps for a spare, before the client came). A client whose login
    comes after that gets error 1043 from vecgate, not a silent close, and
    the next client logs in."""
    from test_robustness import expect_err, handshake_response, raw_connect
    db = private_db.start()
    with db.connect() as admin, admin.cursor() as cur:
        cur.execute("SET GLOBAL connect_timeout = 2")
    vg = Vecgate(db, tmp_path, upstream__tls="false", upstream__pool_spares="0",
                 server__handshake_timeout="20s").start()
    try:
        s = raw_connect(vg)  # the greeting: the database's timer runs
        time.sleep(3.5)
        try:
            s.sendall(handshake_response())
        except OSError:
            pass
        code, msg = expect_err(s)
        assert code == 1043 and "before the login finished" in msg, (code, msg)
        s.close()
        with vg.connect() as c, c.cursor() as cur:
            cur.execute("SELECT 4")
            assert cur.fetchone() == (4,)
    finally:
        assert vg.stop() == 0
