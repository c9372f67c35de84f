"""MySQL Connector/J through vecgate: javacheck (tests/integration/clients/java)
runs once straight against the test database and once through vecgate, into
separate fresh databases, and the two printed outputs must be identical.

It covers the text protocol with rewritten batches, server-side prepared
statements (useServerPrepStmts=true: COM_STMT_PREPARE / EXECUTE / CLOSE),
cursor fetches (COM_STMT_FETCH), a 1 MiB parameter, transactions, errors and
warnings, and kNN queries whose vector is a bound parameter, repeated so that
vecgate answers them from memory. TLS is verified on every link:
sslMode=VERIFY_IDENTITY and VERIFY_CA against a PKCS12 truststore built from
the test CA (build/clients/java/ca-*.p12), and vecgate verifies the database.

On the MariaDB stand-in the vector column is LONGTEXT instead of VECTOR(3)
(db.vector_type); the client receives the type as an argument.

Connector/J and the compiled client are built by
tests/integration/clients/setup.sh (run by tools/setup) into build/clients/java.
"""
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from test_clients import BUILD, assert_same, auto_cache_fixture, commands, databases, run  # noqa: F401 (fixture)

JAVA_DIR = BUILD / "clients" / "java"
STOREPASS = "vecgate-test"


def java_client():
    java = shutil.which("java")
    if not java:
        pytest.fail("java is not installed", pytrace=False)
    if not (JAVA_DIR / "classes" / "Check.class").exists() or not list(JAVA_DIR.glob("lib/*.jar")):
        pytest.fail(f"{JAVA_DIR} is missing: run tests/integration/clients/setup.sh", pytrace=False)
    return [java, "-cp", f"{JAVA_DIR / 'classes'}:{JAVA_DIR / 'lib'}/*", "Check"]


def truststore(ca, where):
    """A PKCS12 truststore holding `ca`, made once per CA certificate."""
    digest = hashlib.sha256(Path(ca).read_bytes()).hexdigest()[:16]
    path = Path(where) / f"ca-{digest}.p12"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(ca),
                        "-keystore", str(tmp), "-storetype", "PKCS12", "-storepass", STOREPASS],
                       check=True, capture_output=True)
        tmp.rename(path)
    return str(path)


cached = auto_cache_fixture("java")


def argv_for(db, store):
    base = java_client()

    def argv(host, port, name):
        return base + ["--host", host, "--port", str(port), "--db", name, "--user", db.user,
                       "--password", db.password, "--truststore", store, "--storepass", STOREPASS,
                       "--vector-type", db.vector_type(3), "--knn-rounds", "6"]
    return argv


def test_connector_j(db, cached, databases):
    argv = argv_for(db, truststore(db.ca, JAVA_DIR))
    direct = run(argv(db.host, db.port, databases["direct"]), "javacheck (direct)")
    before, served0 = commands(cached), cached.served()
    settings0 = cached.metric("vecgate_cache_bypass_total", reason="session_settings")
    through = run(argv(cached.host, cached.port, databases["vecgate"]),
                  "javacheck (through vecgate)", cached)
    after = commands(cached)
    assert_same(direct, through, cached, "javacheck")
    assert through.rstrip().endswith("done")
    for line in ("connected: text protocol, VERIFY_IDENTITY",
                 "connected: server-side prepared statements, VERIFY_CA",
                 "connected: cursor fetch, VERIFY_IDENTITY", "server sees tls: true",
                 "batch rewritten: [", "prepared batch: [1,1,1,1,1,1,1,1,1,1]",
                 "blob row: Integer(1) bytes(len=1048576 ", "cursor rows: 11",
                 "missing table: error 1146 42S02", "text knn round 5 row: Integer(1)",
                 "server-prepared knn round 5 row: Integer(1)",
                 "text utf8mb4 knn filtered round 5 row: Integer(2)"):
        assert line in through, f"javacheck printed no {line!r}:\n{through[-3000:]}"
    sent = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    for command, least in {"query": 20, "stmt_prepare": 8, "stmt_execute": 30,
                           "stmt_close": 8, "stmt_fetch": 5}.items():
        assert sent.get(command, 0) >= least, f"vecgate counted {sent}"
    # Connections 1, 2 and 4: 3 x 6 rounds x 3 kNN queries. The first of
    # each shape goes to the database (it admits the table and proves the
    # shape), later rounds are answered from memory once the snapshot is
    # loaded. Connection 1 keeps the driver's defaults, whose SET
    # character_set_results = NULL at login leaves utf8mb4 text as it is:
    # answered from memory too.
    hits = cached.served() - served0
    assert hits >= 36, f"only {hits} kNN answers from memory:\n{cached.admin('/metrics')}"
    assert cached.metric("vecgate_cache_bypass_total", reason="session_settings") == settings0

def test_connector_j_refuses_an_untrusted_certificate(db, cached, databases, tmp_path):
    """The same client with a truststore whose CA did not sign vecgate's
    certificate must not log in: the comparison above really verifies TLS."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "ca.pem")], check=True, capture_output=True)
    argv = argv_for(db, truststore(tmp_path / "ca.pem", tmp_path))
    p = subprocess.run(argv(cached.host, cached.port, databases["vecgate"]), capture_output=True,
                       timeout=60)
    assert p.returncode != 0, "javacheck logged in through vecgate with an untrusted CA"
    assert b"connected" not in p.stdout
    assert b"PKIX" in p.stderr or b"certificat" in p.stderr, p.stderr.decode()[-2000:]
