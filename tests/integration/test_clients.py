"""Real non-Python clients through vecgate: each runs once straight against the
test database and once through vecgate, into separate fresh databases, over
verified TLS on every link; the two printed outputs must be identical.

  Go   go-sql-driver/mysql, server-side prepared statements    build/clients/gocheck
  Node mysql2 connection.execute()                              build/clients/node
  C    libmariadb: cursors, long data, COM_* commands           build/vecgate_test_cclient
  CLI  Debian's mariadb command-line client                     mariadb

The Go and Node clients are built by tests/integration/clients/setup.sh (run by
tools/setup), the C client by CMake.
"""
import difflib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
CLIENTS = TOP / "tests" / "integration" / "clients"
BUILD = TOP / "build"
TIMEOUT = 120


def need(path, how):
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: {how}", pytrace=False)
    return str(path)


def go_client():
    return [need(BUILD / "clients" / "gocheck", "run tests/integration/clients/setup.sh")]


def node_client():
    need(BUILD / "clients" / "node" / "node_modules" / "mysql2",
         "run tests/integration/clients/setup.sh")
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed", pytrace=False)
    return [node, str(CLIENTS / "node" / "check.js")]


def c_client():
    return [need(BUILD / "vecgate_test_cclient", "build it: cmake --build build")]


def node_env():
    # check.js stays in the source tree; its node_modules is under build/.
    return dict(os.environ, NODE_PATH=str(BUILD / "clients" / "node" / "node_modules"))


@pytest.fixture
def databases(db, request):
    """Two fresh databases, one for the direct run and one for the run
    through vecgate; dropped afterwards."""
    base = "clients_" + request.node.name.removeprefix("test_")[:40]
    names = {"direct": base + "_direct", "vecgate": base + "_vecgate"}
    with db.connect() as conn, conn.cursor() as cur:
        for name in names.values():
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}`")
    yield names
    with db.connect() as conn, conn.cursor() as cur:
        for name in names.values():
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def run(argv, what, vecgate=None, env=None):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{what}: no exit after {TIMEOUT} s\nstdout:\n"
                             f"{(e.stdout or b'').decode(errors='replace')[-3000:]}"
                             + vecgate_log(vecgate)) from None
    out = p.stdout.decode("utf-8", errors="replace")
    err = p.stderr.decode("utf-8", errors="replace")
    rc = p.returncode
    assert rc == 0, (f"{what}: exit {rc}\nstderr:\n{err[-3000:]}\n"
                               f"stdout (end):\n{out[-3000:]}" + vecgate_log(vecgate))
    assert out.strip(), f"{what}: printed nothing\nstderr:\n{err[-3000:]}"
    return out


def auto_cache_fixture(name):
    """A module fixture: vecgate admitting every table whose kNN queries it
    sees (tables = auto), stopped cleanly at the end of the module."""
    @pytest.fixture(scope="module")
    def cached(db, tmp_path_factory):
        from conftest import Vecgate
        vg = Vecgate(db, tmp_path_factory.mktemp(name), cache__tables="auto",
                     cache__user=db.user).start()
        yield vg
        assert vg.stop() == 0, vg.log.read_text()[-4000:]
    return cached


def vecgate_log(vg):
    if vg is None:
        return ""
    return f"\nvecgate log ({vg.log}), end:\n{vg.log.read_text(errors='replace')[-6000:]}"


def assert_same(direct, through, vecgate, what):
    if direct != through:
        diff = "".join(difflib.unified_diff(direct.splitlines(True), through.splitlines(True),
                                            "direct", "through vecgate", n=2))
        raise AssertionError(f"{what}: output through vecgate differs from the direct run:\n"
                             f"{diff[:6000]}" + vecgate_log(vecgate))


def commands(vg):
    """vecgate's count of client commands, by command name."""
    counts = {}
    prefix = 'vecgate_commands_total{command="'
    for line in vg.admin("/metrics").splitlines():
        if line.startswith(prefix):
            name, _, value = line[len(prefix):].partition('"} ')
            counts[name] = float(value)
    return counts


def compare(argv_for, db, vecgate, databases, what, env=None, expect=None):
    """Runs argv_for(host, port, database) directly and through vecgate; with
    `expect` ({command: at least n}), checks that vecgate relayed those commands."""
    direct = run(argv_for(db.host, db.port, databases["direct"]), f"{what} (direct)", env=env)
    before = commands(vecgate)
    through = run(argv_for(vecgate.host, vecgate.port, databases["vecgate"]),
                  f"{what} (through vecgate)", vecgate, env=env)
    after = commands(vecgate)
    assert_same(direct, through, vecgate, what)
    assert direct.rstrip().endswith("done")
    sent = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    for command, least in (expect or {}).items():
        assert sent.get(command, 0) >= least, \
            f"{what}: vecgate counted {sent.get(command, 0)} {command}, expected >= {least}: {sent}"
    return through


def test_go(db, vecgate, databases):
    exe = go_client()
    out = compare(lambda host, port, name: exe + ["-host", host, "-port", str(port),
                                                  "-ca", vecgate.ca, "-db", name],
                  db, vecgate, databases, "gocheck",
                  expect={"stmt_prepare": 10, "stmt_execute": 10, "stmt_close": 10})
    assert "tls in use: true" in out
    assert "bytes(len=1048576 " in out


def test_node(db, vecgate, databases):
    cmd = node_client()
    out = compare(lambda host, port, name: cmd + ["--host", host, "--port", str(port),
                                                  "--ca", vecgate.ca, "--db", name],
                  db, vecgate, databases, "node check.js", env=node_env(),
                  expect={"stmt_prepare": 8, "stmt_execute": 15, "stmt_close": 2})
    assert "tls in use: true" in out
    assert "bytes(len=1048576 " in out


def test_c(db, vecgate, databases):
    exe = c_client()
    out = compare(lambda host, port, name: exe + ["--host", host, "--port", str(port),
                                                  "--ca", vecgate.ca, "--db", name],
                  db, vecgate, databases, "vecgate_test_cclient",
                  expect={"stmt_fetch": 10, "stmt_send_long_data": 49, "stmt_reset": 2,
                          "field_list": 3, "statistics": 1, "ping": 1, "init_db": 3,
                          "change_user": 1, "reset_connection": 1, "query": 10})
    assert "cursor all: 10 rows" in out
    assert "long data read back: fetch 0 null 0 len 3145728 equal 1" in out


CLI_SQL = """
CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40), score DOUBLE, note TEXT);
INSERT INTO t VALUES (1, 'alpha', 1.5, NULL), (2, 'béta ✓', -2, 'it''s'),
  (3, 'gamma', 1e10, 'tab\\there'), (4, '日本語', 0.1, ''), (5, 'epsilon', NULL, 'e');
SELECT * FROM t ORDER BY id;
SELECT COUNT(*), SUM(score), MIN(name), MAX(id) FROM t;
UPDATE t SET score = score * 2 WHERE id < 3;
SELECT id, score FROM t WHERE id < 3 ORDER BY id;
SELECT 1/0;
SHOW WARNINGS;
SELECT * FROM no_such_table;
BEGIN;
DELETE FROM t WHERE id > 3;
ROLLBACK;
SELECT id, name FROM t WHERE id > 2 ORDER BY id;
SHOW COLUMNS FROM t;
"""


def test_mysql_cli(db, vecgate, databases):
    cli = shutil.which("mariadb")
    if not cli:
        pytest.fail("the mariadb command-line client is not installed (mariadb-client-core)",
                    pytrace=False)

    def run_cli(host, port, name, vg=None):
        argv = [cli, "--no-defaults", "--ssl", f"--ssl-ca={vecgate.ca}", "--ssl-verify-server-cert",
                "-h", host, "-P", str(port), "-u", db.user, f"--password={db.password}", "-D", name,
                "--default-character-set=utf8mb4", "--table", "-vv", "--force", "-e", CLI_SQL]
        try:
            p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"mariadb CLI: no exit after {TIMEOUT} s" + vecgate_log(vg)) from None
        out = p.stdout.decode("utf-8", errors="replace")
        err = p.stderr.decode("utf-8", errors="replace")
        # --force runs on after the missing table, then exits 1 for it; the
        # error message names the database, which differs between the runs.
        assert p.returncode == 1, f"mariadb CLI: exit {p.returncode}\n{err}\n{out[-3000:]}" + vecgate_log(vg)
        assert "ERROR 1146 (42S02)" in err, err + vecgate_log(vg)
        assert out.strip(), "mariadb CLI printed nothing"
        return out + "stderr: " + err.replace(name, "<db>")

    direct = run_cli(db.host, db.port, databases["direct"])
    through = run_cli(vecgate.host, vecgate.port, databases["vecgate"], vecgate)
    assert_same(direct, through, vecgate, "mariadb CLI")
    assert "5 rows in set" in through
    assert "| béta ✓" in through
    assert "Rows matched: 2  Changed: 2  Warnings: 0" in through


def test_clients_refuse_an_untrusted_vecgate_certificate(vecgate, tmp_path, databases):
    """The same clients, given a CA that did not sign vecgate's certificate,
    must refuse to log in: the comparisons above really verify TLS."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "ca.pem")], check=True, capture_output=True)
    bad = str(tmp_path / "ca.pem")
    name = databases["vecgate"]
    port = str(vecgate.port)
    cases = {
        "go": (go_client() + ["-host", vecgate.host, "-port", port, "-ca", bad, "-db", name], None),
        "node": (node_client() + ["--host", vecgate.host, "--port", port, "--ca", bad, "--db", name],
                 node_env()),
        "c": (c_client() + ["--host", vecgate.host, "--port", port, "--ca", bad, "--db", name], None),
    }
    for what, (argv, env) in cases.items():
        p = subprocess.run(argv, capture_output=True, timeout=60, env=env)
        assert p.returncode != 0, f"{what}: logged in through vecgate with an untrusted CA"
        assert b"connected" not in p.stdout, what
