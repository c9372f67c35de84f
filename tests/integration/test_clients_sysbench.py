"""sysbench oltp_read_write through vecgate: a short smoke run (2 tables of
1000 rows, 2 threads, 8 s) with prepare, run and cleanup all through vecgate
over TLS. Nothing is compared byte for byte: the run must complete with no
errors and no reconnects, vecgate must have relayed server-side prepared
statements, and the tables must hold their 1000 rows afterwards (each
transaction deletes a row and inserts it again).

Debian's sysbench 1.0.20 has no way to ask for server-certificate
verification: --mysql-ssl=on loads cacert.pem, client-cert.pem and
client-key.pem from the working directory and libmariadb then only encrypts.
The test gives it the test CA and a client certificate the test CA signs;
vecgate's own link to the database is verified as everywhere else.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Vecgate

SECONDS = 8


def sysbench():
    exe = shutil.which("sysbench")
    if not exe:
        pytest.fail("sysbench is not installed (tools/setup installs the Debian package)",
                    pytrace=False)
    return exe


def tls_files(db, where):
    """cacert.pem, and a client key and certificate signed by the test CA."""
    shutil.copy(db.ca, where / "cacert.pem")
    ca_key = Path(db.ca).with_name("ca-key.pem")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=sysbench",
                    "-keyout", str(where / "client-key.pem"), "-out", str(where / "client.csr")],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(where / "client.csr"), "-CA", db.ca,
                    "-CAkey", str(ca_key), "-CAcreateserial", "-days", "1",
                    "-out", str(where / "client-cert.pem")], check=True, capture_output=True)


def test_sysbench_oltp_read_write(db, schema, tmp_path):
    exe = sysbench()
    vg = Vecgate(db, tmp_path, server__require_tls="true").start()
    try:
        tls_files(db, tmp_path)
        base = [exe, "oltp_read_write", "--db-driver=mysql", f"--mysql-host={vg.host}",
                f"--mysql-port={vg.port}", f"--mysql-user={db.user}",
                f"--mysql-password={db.password}", f"--mysql-db={schema}", "--mysql-ssl=on",
                "--tables=2", "--table-size=1000", "--threads=2", f"--time={SECONDS}",
                "--report-interval=0", "--db-ps-mode=auto"]

        def step(command):
            p = subprocess.run(base + [command], cwd=tmp_path, capture_output=True, text=True,
                               timeout=SECONDS + 60)
            assert p.returncode == 0, (f"sysbench {command}: exit {p.returncode}\n{p.stderr}\n"
                                       f"{p.stdout[-3000:]}\n{vg.log.read_text()[-4000:]}")
            return p.stdout

        handshakes0 = vg.metric("vecgate_tls_handshakes_total", side="client", result="ok")
        step("prepare")
        out = step("run")
        counts = {}
        for key in ("transactions", "queries", "ignored errors", "reconnects"):
            m = re.search(rf"^\s*{key}:\s+(\d+)", out, re.M)
            assert m, f"sysbench printed no {key!r}:\n{out}"
            counts[key] = int(m.group(1))
        assert counts["transactions"] > 0, out
        # "ignored errors" are the deadlocks and lock-wait timeouts that
        # sysbench retries (error 1213, 1205): two threads updating the same
        # rows meet them straight on the database too. They must stay rare;
        # any other error ends the run with a non-zero exit.
        assert counts["ignored errors"] * 50 <= counts["transactions"], out
        assert counts["reconnects"] == 0, out
        m = re.search(r"^\s*other:\s+\d+\s*\n\s*total:\s+(\d+)", out, re.M)
        assert m and int(m.group(1)) == counts["queries"], out
        # Every connection (prepare's, and one per thread) was TLS.
        assert vg.metric("vecgate_tls_handshakes_total", side="client", result="ok") - \
            handshakes0 >= 3
        assert vg.metric("vecgate_commands_total", command="stmt_execute") >= \
            counts["transactions"] * 10, "sysbench's prepared statements were not relayed"
        with db.connect(schema) as conn, conn.cursor() as cur:
            for t in ("sbtest1", "sbtest2"):
                cur.execute(f"SELECT COUNT(*) FROM {t}")
                assert cur.fetchone()[0] == 1000, t
        step("cleanup")
    finally:
        assert vg.stop() == 0, vg.log.read_text()[-4000:]
