"""Direct connection to the test database over verified TLS: the seed's vector
example gives TiDB's order and TiDB's exact distance text."""
import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.converters import conversions

SEED = [("dog", "[1,2,1]"), ("fish", "[1,2,4]"), ("tree", "[1,0,0]")]

# Keep DOUBLE cells as the server's text, so the test sees the bytes on the wire.
RAW = dict(conversions)
RAW[FIELD_TYPE.DOUBLE] = str


def test_tls_is_verified_and_in_use(db):
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
        name, cipher = cur.fetchone()
        assert cipher, "connection is not encrypted"
        cur.execute("SHOW STATUS LIKE 'Ssl_version'")
        assert cur.fetchone()[1] in ("TLSv1.2", "TLSv1.3")


def test_untrusted_ca_is_refused(db, tmp_path):
    # A CA that did not sign the server certificate must make the login fail.
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "ca.pem")], check=True, capture_output=True)
    try:
        db.connect(ssl_ca=str(tmp_path / "ca.pem")).close()
    except pymysql.err.OperationalError:
        return
    raise AssertionError("login succeeded with an untrusted CA")


def test_seed_vector_order_and_distance_text(db, schema):
    with db.connect(schema, conv=RAW) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE documents (id INT PRIMARY KEY AUTO_INCREMENT, "
                    f"content TEXT, embedding {db.vector_type(3)})")
        cur.executemany("INSERT INTO documents (content, embedding) VALUES (%s, %s)", SEED)
        conn.commit()
        cur.execute("SELECT content, VEC_COSINE_DISTANCE(embedding, '[1, 2, 3]') AS distance "
                    "FROM documents ORDER BY distance LIMIT 3")
        rows = cur.fetchall()
        assert [r[0] for r in rows] == ["fish", "dog", "tree"]
        assert rows[0][1] == "0.00853986601633272"
        assert rows[1][1] == "0.12712843905603044"
        assert rows[2][1] == "0.7327387580875756"
        assert cur.description[1][1] == FIELD_TYPE.DOUBLE


def test_vector_cell_text(db, schema):
    # VEC_FROM_TEXT parses and VEC_AS_TEXT / the cell print TiDB's normal form.
    with db.connect(schema) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE v (id INT PRIMARY KEY, embedding {db.vector_type(3)})")
        cur.execute("INSERT INTO v VALUES (1, VEC_FROM_TEXT('[1, 2.50, 1e-7]'))")
        cur.execute("SELECT embedding, VEC_DIMS(embedding), VEC_AS_TEXT(embedding) FROM v")
        cell, dims, text = cur.fetchone()
        if not db.is_tidb:
            # MariaDB types a UDF's string result as binary.
            text = text.decode()
        assert cell == "[1,2.5,0.0000001]"
        assert text == cell
        assert dims == 3
