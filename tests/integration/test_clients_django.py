"""Django through vecgate: djcheck (tests/integration/clients/django/check.py),
Django's ORM on the django-tidb backend over mysqlclient, runs once straight
against the test database and once through vecgate, into separate fresh
databases, and the two printed outputs must be identical. Its vector searches
(django-tidb's CosineDistance / L2Distance annotations, ordered, filtered,
limited) are repeated in rounds, and vecgate must answer the later rounds from
memory. TLS is verified on every link (mysqlclient's ssl_mode=VERIFY_IDENTITY
with the test CA; vecgate verifies the database).

On the MariaDB stand-in djcheck runs with --stand-in: it creates its table
with LONGTEXT for the vector column (db.vector_type) instead of the model's
VECTOR(3), and, since django-tidb refuses a version string without TiDB's
(the stand-in reports 10.11.x-MariaDB-...), takes the server for TiDB 8.5.
"""
import subprocess
import sys

import pytest

from test_clients import CLIENTS, assert_same, auto_cache_fixture, commands, databases, run  # noqa: F401 (fixture)

for module in ("django", "django_tidb", "MySQLdb"):
    pytest.importorskip(module, reason=f"{module} is not installed (requirements.txt)")

CHECK = CLIENTS / "django" / "check.py"


cached = auto_cache_fixture("django")


def argv_for(db, ca):
    def argv(host, port, name):
        return [sys.executable, str(CHECK), "--host", host, "--port", str(port), "--user", db.user,
                "--password", db.password, "--db", name, "--ca", ca, "--rounds", "6"] + (
                    [] if db.is_tidb else ["--stand-in"])
    return argv


def test_django(db, cached, databases):
    argv = argv_for(db, db.ca)
    direct = run(argv(db.host, db.port, databases["direct"]), "djcheck (direct)")
    before, served0 = commands(cached), cached.served()
    through = run(argv(cached.host, cached.port, databases["vecgate"]), "djcheck (through vecgate)",
                  cached)
    assert_same(direct, through, cached, "djcheck")
    assert through.rstrip().endswith("done")
    for line in ("server sees tls: True", "bulk_create: 40", "count: 41 exists 1: True",
                 "cosine r5: 41 'ünïcode ✓' 2024 9.99 [1.0,2.0,3.0] 0.0",
                 "cosine by name r5: 14 'item 2'", "error: ProgrammingError 1146"):
        assert line in through, f"djcheck printed no {line!r}:\n{through[-3000:]}"
    assert commands(cached).get("query", 0) - before.get("query", 0) >= 30
    # 3 searches x 6 rounds. Round 0 goes to the database: its first search
    # admits the table, the others arrive while it loads. Round 1 proves each
    # shape (the database answers, vecgate compares); rounds 2-5 are answered
    # from memory (one round of slack for a slow load).
    hits = cached.served() - served0
    assert hits >= 9, f"only {hits} searches answered from memory:\n{cached.admin('/metrics')}"


def test_django_refuses_an_untrusted_certificate(db, cached, databases, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "ca.pem")], check=True, capture_output=True)
    p = subprocess.run(argv_for(db, str(tmp_path / "ca.pem"))(cached.host, cached.port,
                                                            databases["vecgate"]),
                       capture_output=True, timeout=60)
    assert p.returncode != 0, "djcheck logged in through vecgate with an untrusted CA"
    assert b"server sees tls" not in p.stdout
    assert b"certificate" in p.stderr.lower() or b"ssl" in p.stderr.lower(), p.stderr[-2000:]
