"""pytidb through vecgate: the same pytidb program runs once straight against
the test database and once through vecgate, into separate fresh databases,
and the two transcripts must be identical.

The program connects both ways pytidb offers (parameters, and a URL), over
TLS verified against the test CA on every link; bulk-inserts and edits rows of
a table with a vector field through pytidb's Table API; then runs
`table.search(...)` in its forms: pytidb's default post-filter form, a
subquery (`SELECT candidates.*, 1 - candidates._distance AS _score FROM
(SELECT ... ORDER BY _distance LIMIT k*10) AS candidates [WHERE filters] ...`),
with and without filters and a distance threshold, and the prefilter form, a
single SELECT with WHERE. Through vecgate every search after the first of its
shape is answered from memory, which /metrics shows search by search.

On the MariaDB stand-in pytidb cannot create the table (it writes VECTOR(3)):
the test creates it with db.vector_type(3) (LONGTEXT) and opens it with
pytidb's open_table(); on TiDB pytidb's create_table() is used.
"""

import pytest

from conftest import Vecgate
from test_clients import assert_same, databases  # noqa: F401 (fixture)

pytidb = pytest.importorskip("pytidb", reason="pytidb is not installed (requirements.txt)")
from pytidb import TiDBClient  # noqa: E402
from pytidb.schema import Field, TableModel, VectorField  # noqa: E402
from sqlalchemy import Column, String  # noqa: E402

TABLE = "pytidb_docs"

# pytidb reads vectors back as numpy arrays into list[float] fields, which
# pydantic reports when it dumps a row.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")


class Doc(TableModel):
    __tablename__ = TABLE
    id: int = Field(primary_key=True)
    # utf8mb4_bin is TiDB's default collation; vecgate filters only binary
    # comparisons from memory.
    title: str = Field(sa_column=Column(String(64, collation="utf8mb4_bin")))
    year: int = Field()
    embedding: list[float] = VectorField(dimensions=3, index=False)


def rows(n):
    out = []
    for i in range(1, n + 1):
        out.append({"id": i, "title": f"doc {i % 7}", "year": 1990 + i % 35,
                    "embedding": [float(i % 5), float(i % 3) - 1, 0.25 * (i % 11)]})
    return out


SEARCHES = {
    # pytidb's default: the subquery with candidates = limit * 10.
    "plain": lambda t: t.search([1, 2, 3]).limit(3),
    "post-filter int": lambda t: t.search([1, 0, 0.5]).filter({"year": {"$gte": 2010}}).limit(4),
    "post-filter str": lambda t: t.search([2, 1, 1]).filter({"title": "doc 3"}).limit(2),
    "l2 threshold": lambda t: (t.search([0.5, -1, 2]).distance_metric("L2")
                               .distance_threshold(1.5).limit(5)),
    "prefilter": lambda t: t.search([3, 1, 0]).filter({"year": {"$lt": 2000}}, prefilter=True)
                            .limit(3),
    "numpy-like": lambda t: t.search([0.1, 0.2, 0.3]).num_candidate(50).limit(2),
}


def show(value):
    if hasattr(value, "tolist"):  # pytidb reads vectors back as numpy arrays
        value = value.tolist()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(show(v) for v in value) + "]"
    return repr(value)


def transcript_of_results(label, results):
    lines = [f"{label}: {len(results)} rows"]
    for r in results:
        lines.append(f"  {label}: " + " ".join(f"{k}={show(r[k])}" for k in sorted(r)))
    return lines


def open_clients(db, host, port, name):
    """pytidb's two ways in: parameters, and a URL; both verify TLS."""
    tls = {"ssl_ca": db.ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    by_params = TiDBClient.connect(host=host, port=port, username=db.user, password=db.password,
                                   database=name, enable_ssl=True, connect_args=tls)
    # In a URL, SQLAlchemy moves ssl_ca into PyMySQL's ssl dict, which PyMySQL
    # drops when ssl_verify_* arguments come too; with a CA alone PyMySQL
    # verifies the chain and the host name.
    by_url = TiDBClient.connect(
        url=f"mysql+pymysql://{db.user}:{db.password}@{host}:{port}/{name}"
            f"?ssl_ca={db.ca}&ssl_check_hostname=true")
    return by_params, by_url


def tls_cipher(client):
    # The server's view of its link: through vecgate, vecgate's TLS link.
    got = client.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'").to_rows()
    return bool(got and got[0][1])


def scenario(db, host, port, name, vg=None):
    """The program; returns its transcript. With `vg`, checks after every
    search past the first round that vecgate answered it from memory."""
    out = []
    client, url_client = open_clients(db, host, port, name)
    try:
        out.append(f"connected: params db={client.current_database() == name} "
                   f"url db={url_client.current_database() == name}")
        out.append(f"server sees tls: {tls_cipher(client)} {tls_cipher(url_client)}")
        if db.is_tidb:
            table = client.create_table(schema=Doc, if_exists="overwrite")
        else:
            client.execute(f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, title VARCHAR(64) "
                           f"COLLATE utf8mb4_bin, year INT, embedding {db.vector_type(3)})",
                           raise_error=True)
            table = client.open_table(TABLE)
        out.append(f"tables: {client.list_tables()} has={client.has_table(TABLE)}")
        inserted = table.bulk_insert(rows(60))
        out.append(f"bulk insert: {len(inserted)} first={inserted[0].id} last={inserted[-1].id}")
        one = table.insert({"id": 61, "title": "late", "year": 2024, "embedding": [1, 2, 3.5]})
        out.append(f"insert: {one.id} {one.title}")
        got = table.get(7)
        out.append(f"get 7: {got.title} {got.year} {show(list(got.embedding))}")
        table.update(values={"title": "edited"}, filters={"id": 8})
        table.delete(filters={"id": {"$in": [9, 10]}})
        out.append(f"rows: {table.rows()}")
        out += transcript_of_results("query", [r.model_dump() for r in
                                               table.query(filters={"year": {"$gt": 2020}})
                                               .to_pydantic()])
        url_table = url_client.open_table(TABLE)
        for rnd in range(4):
            for label, make in SEARCHES.items():
                for which, tbl in (("params", table), ("url", url_table)):
                    before = vg.served() if vg else None
                    results = make(tbl).to_list()
                    if vg and rnd > 0:
                        after = vg.served()
                        assert after == before + 1, (
                            f"search {label!r} ({which} client) round {rnd} was not answered "
                            f"from memory:\n{bypasses(vg)}")
                    out += transcript_of_results(f"{label} {which} r{rnd}", results)
            if vg and rnd == 0:
                vg.wait_servable(f"{name}.{TABLE}")
        sql = url_client.query(
            f"SELECT id, VEC_COSINE_DISTANCE(embedding, '[1, 2, 3]') AS d FROM {TABLE} "
            f"ORDER BY d LIMIT 2").to_list()
        out += transcript_of_results("raw sql", sql)
    finally:
        client.disconnect()
        url_client.disconnect()
    out.append("done")
    return "\n".join(out) + "\n"


def bypasses(vg):
    return "\n".join(line for line in vg.admin("/metrics").splitlines()
                     if line.startswith(("vecgate_cache_bypass_total", "vecgate_cache_queries")))


@pytest.fixture(scope="module")
def cached(db, tmp_path_factory):
    vg = Vecgate(db, tmp_path_factory.mktemp("pytidb"), cache__tables="auto",
                 cache__user=db.user).start()
    yield vg
    assert vg.stop() == 0, vg.log.read_text()[-4000:]


def test_pytidb(db, cached, databases):
    direct = scenario(db, db.host, db.port, databases["direct"])
    through = scenario(db, cached.host, cached.port, databases["vecgate"], cached)
    assert_same(direct.replace(databases["direct"], "<db>"),
                through.replace(databases["vecgate"], "<db>"), cached, "pytidb")
    assert "server sees tls: True True" in through
    assert "bulk insert: 60 first=1 last=60" in through
    assert "plain url r3: 3 rows" in through
    assert "post-filter str params r3: 2 rows" in through


def test_pytidb_refuses_an_untrusted_certificate(db, cached, databases, tmp_path):
    """Both ways of connecting really verify vecgate's certificate."""
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "ca.pem")], check=True, capture_output=True)

    class Other:
        user, password, ca = db.user, db.password, str(tmp_path / "ca.pem")
    for client in open_clients(Other, cached.host, cached.port, databases["vecgate"]):
        with pytest.raises(Exception, match="(?i)certificate"):
            client.current_database()
        client.disconnect()
