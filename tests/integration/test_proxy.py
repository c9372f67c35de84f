"""vecgate as a transparent proxy: the same clients and statements give the
same results through vecgate as straight against the database, with TLS on
both links."""
import hashlib
import json
import os
import ssl
import subprocess
import sys
import threading

import mysql.connector
import pymysql
import pytest
from pymysql.constants import CLIENT, SERVER_STATUS

from conftest import TOP


def fetch(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_login_is_tls_on_both_links(vecgate, db):
    with vecgate.connect() as conn:
        # The client verified vecgate's certificate (ssl_verify_identity) and
        # speaks TLS to it.
        assert isinstance(conn._sock, ssl.SSLSocket)
        assert conn._sock.version() in ("TLSv1.2", "TLSv1.3")
        # The server sees a TLS session too: vecgate's own link to it.
        (_, version), = fetch(conn, "SHOW STATUS LIKE 'Ssl_version'")
        assert version in ("TLSv1.2", "TLSv1.3")


def test_greeting_shows_the_upstream_version(vecgate, db):
    with db.connect() as direct, vecgate.connect() as proxied:
        assert proxied.get_server_info() == direct.get_server_info()
        assert fetch(proxied, "SELECT VERSION()") == fetch(direct, "SELECT VERSION()")
        if db.is_tidb:
            assert "TiDB" in proxied.get_server_info()


def test_vector_quickstart_same_output(vecgate, db):
    run = lambda *extra: subprocess.run(
        [sys.executable, str(TOP / "tools" / "quickstart.py"), "--flavor", db.flavor,
         "--ca", db.ca, *extra], capture_output=True, text=True, timeout=60, check=True).stdout
    direct = run("--port", str(db.port), "--database", "qs_direct")
    proxied = run("--port", str(vecgate.port), "--database", "qs_proxied")
    assert proxied == direct
    assert "fish  [1.0, 2.0, 4.0]  distance: 0.00853986601633272" in proxied


def players_crud(port, ca, database):
    """The SQLAlchemy 2 CRUD quickstart (players): insert, query, update, delete."""
    from sqlalchemy import Integer, String, create_engine, delete, func, select, text, update
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Player(Base):
        __tablename__ = "players"
        id: Mapped[str] = mapped_column(String(36), primary_key=True)
        coins: Mapped[int] = mapped_column(Integer)
        goods: Mapped[int] = mapped_column(Integer)

    ssl_args = {"ssl_ca": ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    root = create_engine(f"mysql+pymysql://root:@127.0.0.1:{port}/", connect_args=ssl_args)
    with root.begin() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        c.execute(text(f"CREATE DATABASE {database}"))
    root.dispose()
    engine = create_engine(f"mysql+pymysql://root:@127.0.0.1:{port}/{database}",
                           connect_args=ssl_args)
    Base.metadata.create_all(engine)
    out = []
    with Session(engine) as s:
        s.add_all([Player(id=f"p{i}", coins=i * 10, goods=i) for i in range(1, 21)])
        s.commit()
        out.append(s.scalar(select(func.count()).select_from(Player)))
        out.append([(p.id, p.coins, p.goods) for p in
                    s.scalars(select(Player).where(Player.coins > 150).order_by(Player.id))])
        s.execute(update(Player).where(Player.id == "p1").values(coins=Player.coins + 5))
        s.commit()
        out.append(s.get(Player, "p1").coins)
        s.execute(delete(Player).where(Player.goods > 15))
        s.commit()
        out.append(s.scalar(select(func.sum(Player.coins))))
    engine.dispose()
    return out


def test_sqlalchemy_crud_same_results(vecgate, db):
    direct = players_crud(db.port, db.ca, "crud_direct")
    proxied = players_crud(vecgate.port, db.ca, "crud_proxied")
    assert proxied == direct
    assert direct[0] == 20 and direct[2] == 15


def test_wrong_password_gets_the_servers_error(vecgate, db, schema):
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'vg_user'@'%'")
        cur.execute("CREATE USER 'vg_user'@'%' IDENTIFIED BY 'right-secret'")
        cur.execute(f"GRANT ALL ON `{schema}`.* TO 'vg_user'@'%'")
    errors = []
    for target in (db, vecgate):
        with pytest.raises(pymysql.err.OperationalError) as e:
            target.connect(user="vg_user", password="wrong")
        errors.append(e.value.args)
    assert errors[0] == errors[1]
    assert errors[0][0] == 1045
    # And the right password works through vecgate.
    with vecgate.connect(schema, user="vg_user", password="right-secret") as conn:
        assert fetch(conn, "SELECT CURRENT_USER()")[0][0].startswith("vg_user@")


def test_mysql_connector_server_side_prepared(vecgate, db, schema):
    def run(port):
        conn = mysql.connector.connect(host="127.0.0.1", port=port, user="root", password="",
                                       database=schema, ssl_ca=db.ca, ssl_verify_cert=True,
                                       ssl_verify_identity=True, use_pure=True)
        cur = conn.cursor(prepared=True)
        cur.execute("CREATE TABLE IF NOT EXISTS ps (id INT PRIMARY KEY, name VARCHAR(50), "
                    "score DOUBLE, note TEXT)")
        cur.execute("DELETE FROM ps")
        for i in range(1, 11):
            cur.execute("INSERT INTO ps VALUES (?, ?, ?, ?)",
                        (i, f"n'{i}\u00e9", i / 3, None if i % 3 == 0 else "x" * i))
        conn.commit()
        cur.execute("SELECT id, name, score, note FROM ps WHERE id > ? ORDER BY id", (3,))
        rows = cur.fetchall()
        cur.close()
        conn.close()
        return rows
    direct = run(db.port)
    proxied = run(vecgate.port)
    assert proxied == direct and len(direct) == 7


def test_blob_20mib_round_trip(vecgate, schema):
    blob = os.urandom(20 << 20)
    with vecgate.connect(schema, max_allowed_packet=64 << 20) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE b (id INT PRIMARY KEY, data LONGBLOB)")
        cur.execute("INSERT INTO b VALUES (1, %s)", (blob,))
        conn.commit()
        cur.execute("SELECT data, LENGTH(data) FROM b WHERE id = 1")
        data, length = cur.fetchone()
        assert length == len(blob)
        assert hashlib.sha256(data).digest() == hashlib.sha256(blob).digest()


def test_load_data_local_infile(vecgate, schema, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("".join(f"{i},name{i}\n" for i in range(5000)))
    with vecgate.connect(schema, local_infile=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE li (id INT PRIMARY KEY, name VARCHAR(20))")
        cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE li "
                    "FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'")
        conn.commit()
        cur.execute("SELECT COUNT(*), MAX(id) FROM li")
        assert cur.fetchone() == (5000, 4999)
        # The session is usable afterwards.
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_transactions_commit_and_rollback(vecgate, schema):
    # b reads outside any transaction, so it sees each commit at once.
    with vecgate.connect(schema, autocommit=False) as a, vecgate.connect(schema, autocommit=True) as b:
        fetch(a, "CREATE TABLE t (id INT PRIMARY KEY)")
        fetch(a, "INSERT INTO t VALUES (1)")
        assert a.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS
        a.rollback()
        assert not a.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS
        assert fetch(b, "SELECT COUNT(*) FROM t") == ((0,),)
        fetch(a, "INSERT INTO t VALUES (2)")
        assert fetch(b, "SELECT COUNT(*) FROM t") == ((0,),), "not visible before commit"
        a.commit()
        assert fetch(b, "SELECT id FROM t") == ((2,),)


def test_multi_statements_and_results(vecgate, schema):
    with vecgate.connect(schema, client_flag=CLIENT.MULTI_STATEMENTS) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; DO 0")
            assert cur.fetchall() == ((1,),)
            assert cur.nextset()
            assert cur.fetchall() == (("x", 2),)
            assert cur.nextset()
            assert not cur.nextset()
            cur.execute("SELECT 3")
            assert cur.fetchall() == ((3,),)


def test_errors_pass_through_and_session_survives(vecgate, db, schema):
    with vecgate.connect(schema) as conn, db.connect(schema) as direct:
        for sql in ("SELECT * FROM no_such_table", "SELEKT 1", "SELECT 1 FROM DUAL WHERE"):
            errs = []
            for c in (direct, conn):
                with pytest.raises(pymysql.err.MySQLError) as e:
                    fetch(c, sql)
                errs.append(e.value.args)
            assert errs[0] == errs[1]
        assert fetch(conn, "SELECT 42") == ((42,),)


def test_ping_init_db_and_rows_starting_with_special_bytes(vecgate, schema):
    with vecgate.connect() as conn:
        conn.ping(reconnect=False)
        conn.select_db(schema)
        assert fetch(conn, "SELECT DATABASE()") == ((schema,),)
        # Cells whose lenenc prefix is 0xFB (NULL), 0xFC (251+ bytes) and a
        # first cell of 0xFE-like length (a 16 MiB value) must not end a result.
        rows = fetch(conn, "SELECT NULL, REPEAT('a', 300), 'x' UNION ALL "
                           "SELECT 'z', REPEAT('b', 70000), NULL")
        assert rows[0][0] is None and len(rows[0][1]) == 300
        assert len(rows[1][1]) == 70000 and rows[1][2] is None
    with vecgate.connect(schema, max_allowed_packet=64 << 20) as conn:
        fetch(conn, "SET SESSION max_allowed_packet = 67108864") if False else None
        (big,), = fetch(conn, "SELECT REPEAT('c', 17000000)")
        assert len(big) == 17000000


def test_many_concurrent_connections(vecgate, schema):
    n, errors = 500, []
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            with vecgate.connect(schema) as conn:
                barrier.wait(timeout=120)
                for _ in range(3):
                    assert fetch(conn, "SELECT %s + 1", (i,)) == ((i + 1,),)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:5]
    status = json.loads(vecgate.admin("/status"))
    assert status["sessions"] < n, "sessions were released"


def test_admin_endpoint(vecgate, schema):
    with vecgate.connect(schema) as conn:
        fetch(conn, "SELECT 1")
    assert vecgate.admin("/health").strip() in ("ok", "OK")
    status = json.loads(vecgate.admin("/status"))
    assert status["upstreams"][0]["healthy"] is True
    assert status["config"]["server"]["listen"].endswith(str(vecgate.port))
    assert vecgate.metric("vecgate_commands_total", command="query") >= 1
    assert vecgate.metric("vecgate_client_logins_total", result="ok") >= 1
    assert vecgate.metric("vecgate_passthrough_seconds_count") >= 1
    assert vecgate.metric("vecgate_tls_handshakes_total", side="client", result="ok") >= 1
    # Upstream TLS sessions are resumed: later logins skip the full handshake.
    for _ in range(3):
        vecgate.connect().close()
    assert json.loads(vecgate.admin("/status"))["upstreams"][0]["tls_resumed"] >= 1


@pytest.mark.parametrize("size", [1_100_000, 2_000_000, 4_000_000])
def test_large_request_and_response_then_more(vecgate, schema, size):
    # A command or result bigger than write_buffer_limit pauses one side;
    # it must resume even when the kernel took the bytes at once.
    with vecgate.connect(schema, max_allowed_packet=64 << 20) as conn:
        assert fetch(conn, "SELECT LENGTH(%s)", ("x" * size,)) == ((size,),)
        assert fetch(conn, "SELECT 'second'") == (("second",),)
        (big,), = fetch(conn, f"SELECT REPEAT('y', {size})")
        assert len(big) == size
        assert fetch(conn, "SELECT 'third'") == (("third",),)
