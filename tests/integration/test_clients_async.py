"""Async Python through vecgate: SQLAlchemy's asyncio engine on aiomysql and on
asyncmy (two separate protocol implementations), each program run once
straight against the test database and once through vecgate, into separate
fresh databases; the two transcripts must be identical. The program inserts
rows with executemany, reads them back, checks a rollback, and runs kNN
searches (tidb-vector's SQLAlchemy comparators) several at a time on pooled
connections with asyncio.gather, in rounds; vecgate must answer the later
rounds from memory. TLS is verified on every link (an ssl.SSLContext with the
test CA and host-name checking; vecgate verifies the database).

On the MariaDB stand-in the vector column is LONGTEXT (db.vector_type(3)).
"""
import asyncio
import ssl

import pytest

from test_clients import assert_same, auto_cache_fixture, databases  # noqa: F401 (fixture)

sa_asyncio = pytest.importorskip("sqlalchemy.ext.asyncio")
pytest.importorskip("greenlet", reason="greenlet is not installed (requirements.txt)")
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text  # noqa: E402
from tidb_vector.sqlalchemy import VectorType  # noqa: E402

ROUNDS = 5
QUERIES = [[1, 2, 3], [0.5, -1, 2], [3, 0, 1], [1, 1, 1]]


def items_table(metadata):
    return Table("async_items", metadata, Column("id", Integer, primary_key=True),
                 Column("name", String(40)), Column("year", Integer),
                 Column("embedding", VectorType(3)))


def vec(v):
    return None if v is None else "[" + ",".join(repr(float(x)) for x in v) + "]"


async def program(db, driver, host, port, name, vg=None):
    ctx = ssl.create_default_context(cafile=db.ca)  # verifies the chain and the host name
    engine = sa_asyncio.create_async_engine(
        f"mysql+{driver}://{db.user}:{db.password}@{host}:{port}/{name}?charset=utf8mb4",
        connect_args={"ssl": ctx}, pool_size=4, max_overflow=0)
    t = items_table(MetaData())
    out = []
    try:
        async with engine.begin() as conn:
            cipher = (await conn.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'"))).one()[1]
            out.append(f"server sees tls: {bool(cipher)}")
            await conn.execute(text(
                "CREATE TABLE async_items (id INT PRIMARY KEY, name VARCHAR(40) COLLATE "
                f"utf8mb4_bin, year INT, embedding {db.vector_type(3)})"))
            await conn.execute(insert(t), [
                {"id": i, "name": f"n{i % 5}", "year": 2000 + i % 20,
                 "embedding": None if i == 17 else [i % 3, (i % 7) - 3, i / 8]}
                for i in range(1, 81)])
        try:
            async with engine.begin() as conn:
                await conn.execute(t.delete().where(t.c.id > 40))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT COUNT(*), SUM(year) FROM async_items"))).one()
            out.append(f"count: {count[0]} {count[1]}")
            rows = (await conn.execute(select(t).where(t.c.id.in_([1, 2, 17])).order_by(t.c.id)))
            for r in rows:
                out.append(f"row: {r.id} {r.name} {r.year} {vec(r.embedding)}")

        async def search(q, metric):
            dist = getattr(t.c.embedding, metric)(q).label("distance")
            stmt = select(t.c.id, t.c.name, dist).order_by(dist).limit(3)
            if metric == "l2_distance":
                stmt = stmt.where(t.c.year >= 2010)
            async with engine.connect() as conn:
                return [f"{r.id} {r.name} {r.distance!r}" for r in await conn.execute(stmt)]

        for rnd in range(ROUNDS):
            if rnd:
                await asyncio.sleep(0.15)  # lets a proxy's cache load the table
            jobs = [search(q, m) for q in QUERIES for m in ("cosine_distance", "l2_distance")]
            for i, got in enumerate(await asyncio.gather(*jobs)):
                out.append(f"search {i} r{rnd}: " + " | ".join(got))
        async with engine.connect() as conn:
            try:
                await conn.execute(text("SELECT * FROM no_such_table"))
            except Exception as e:
                out.append(f"error: {e.orig.args[0]}")
    finally:
        await engine.dispose()
    out.append("done")
    return "\n".join(out) + "\n"


cached = auto_cache_fixture("async")


@pytest.mark.parametrize("driver", ["aiomysql", "asyncmy"])
def test_async(db, cached, databases, driver):
    pytest.importorskip(driver, reason=f"{driver} is not installed (requirements.txt)")
    direct = asyncio.run(program(db, driver, db.host, db.port, databases["direct"]))
    served0 = cached.served()
    through = asyncio.run(program(db, driver, cached.host, cached.port, databases["vecgate"]))
    assert_same(direct, through, cached, driver)
    assert "server sees tls: True" in through
    assert "count: 80 " in through
    assert f"search 7 r{ROUNDS - 1}: " in through
    assert "error: 1146" in through
    # 8 searches a round; round 0 admits the table and proves the shapes
    # (some arrive while it loads, proved in round 1), later rounds are
    # answered from memory.
    hits = cached.served() - served0
    assert hits >= 8 * (ROUNDS - 3), f"{driver}: only {hits} answers from memory:\n" + "\n".join(
        line for line in cached.admin("/metrics").splitlines()
        if line.startswith(("vecgate_cache_queries", "vecgate_cache_bypass")))


@pytest.mark.parametrize("driver", ["aiomysql", "asyncmy"])
def test_async_refuses_an_untrusted_certificate(db, cached, databases, driver, tmp_path):
    pytest.importorskip(driver, reason=f"{driver} is not installed (requirements.txt)")
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "ca.pem")], check=True, capture_output=True)

    class Other:
        user, password, ca = db.user, db.password, str(tmp_path / "ca.pem")
        vector_type = db.vector_type
    with pytest.raises(Exception) as failed:
        asyncio.run(program(Other, driver, cached.host, cached.port, databases["vecgate"]))
    # aiomysql reports "Can't connect"; the TLS failure is in the chain.
    chain, e = [], failed.value
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    assert any(isinstance(x, ssl.SSLCertVerificationError) or "certificate" in str(x).lower()
               for x in chain), chain
