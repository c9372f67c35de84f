"""Shared fixtures: the database that tools/tidb runs, started once per session.

If tools/test (or a developer) already started it, the running server is used
and left running; otherwise this session starts it and stops it at the end.
"""
import json
import os
import resource
import subprocess
import time
from pathlib import Path

import pymysql
import pytest

TOP = Path(__file__).resolve().parents[2]
CONN_FILE = TOP / "build" / "tidb" / "conn.json"


class Database:
    """Connection details of the running server, plus the SQL that differs
    between a real TiDB and the MariaDB fallback."""

    def __init__(self, info):
        self.info = info
        self.flavor = info["flavor"]
        self.host = info["host"]
        self.port = info["port"]
        self.user = info["user"]
        self.password = info["password"]
        self.ca = info["ca"]
        self.version = info["version"]

    @property
    def is_tidb(self):
        return self.flavor == "tidb"

    def vector_type(self, dim):
        # MariaDB has no VECTOR type: the fallback keeps TiDB's text form in a
        # LONGTEXT column and computes distances with the vecgate UDF.
        return f"VECTOR({dim})" if self.is_tidb else "LONGTEXT"

    def ssl_args(self):
        # PyMySQL replaces an ssl={...} dict when any ssl_* argument is given:
        # the ssl_* arguments alone are the reliable spelling.
        return {"ssl_ca": self.ca, "ssl_verify_cert": True, "ssl_verify_identity": True}

    def connect(self, database=None, **kw):
        args = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                    database=database, charset="utf8mb4", **self.ssl_args())
        args.update(kw)
        return pymysql.connect(**args)


@pytest.fixture(scope="session")
def db():
    started = False
    if not CONN_FILE.exists():
        subprocess.run([str(TOP / "tools" / "tidb"), "start"], check=True)
        started = True
    try:
        yield Database(json.loads(CONN_FILE.read_text()))
    finally:
        if started:
            subprocess.run([str(TOP / "tools" / "tidb"), "stop"], check=False)


@pytest.fixture
def schema(db, request):
    """A fresh database for one test, dropped afterwards."""
    name = "t_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:50]
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def pytest_report_header(config):
    if CONN_FILE.exists():
        info = json.loads(CONN_FILE.read_text())
        return f"database: {info['flavor']} {info['version']} on {info['host']}:{info['port']}"
    return "database: started by the session fixture"


def raise_fd_limit(need):
    """Raises this process's descriptor limit (and its children's) to need,
    or skips the test when the hard limit is lower. Returns the old (soft,
    hard) for resource.setrlimit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"descriptor limit {hard} < {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return soft, hard


def rss_kib(pid):
    """Resident memory of a process, KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fds(pid):
    """Open descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port():
    """A loopback port nothing listens on, never one this process handed out
    before: the kernel may offer a port it just offered again, and a
    vecgate whose [server] and [admin] ports came out equal refuses to
    start."""
    import socket
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


_PORTS_GIVEN = set()


def open_transaction(vg, schema):
    """A session of vg with a transaction open in schema: table d created
    and one row inserted, not committed (what a drain must wait for)."""
    conn = vg.connect(schema, autocommit=False)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE d (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO d VALUES (1)")
    return conn


def commit_and_expect_exit(vg, conn, schema):
    """vg drains and has not exited while conn's transaction is open;
    once it commits, vg exits 0 and the row is in the database."""
    assert vg.proc.poll() is None, "exited with a transaction open"
    conn.commit()
    assert vg.proc.wait(10) == 0
    with vg.db.connect(schema) as direct, direct.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM d")
        assert cur.fetchone() == (1,)


class PrivateDatabase:
    """A database instance of a test's own (tools/tidb with its own run
    directory and free ports), for tests that stop, kill, reconfigure or
    crowd it; env adds to the instance's environment (for example the
    stand-in's VECGATE_UDF_ARITH). The test stops what it starts."""

    def __init__(self, run_dir, **env):
        self.run_dir = run_dir
        self.env = dict(os.environ, VECGATE_TIDB_RUN=str(run_dir),
                        VECGATE_TIDB_PORT=str(free_port()),
                        VECGATE_TIDB_STATUS_PORT=str(free_port()), **env)

    def tidb(self, cmd):
        subprocess.run([str(TOP / "tools" / "tidb"), cmd], env=self.env, check=True,
                       capture_output=True, timeout=300)

    def start(self):
        self.tidb("start")
        return Database(json.loads((self.run_dir / "conn.json").read_text()))


class Vecgate:
    """A vecgate process in front of the test database, with TLS on both
    links: clients verify vecgate's certificate (the test CA signs it), and
    vecgate verifies the database's."""

    def __init__(self, db, tmp_path, binary=None, **overrides):
        self.db = db
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.admin_port = free_port()
        self.ca = db.ca
        certs = Path(db.ca).parent
        sections = {
            "server": {
                "listen": f"127.0.0.1:{self.port}",
                "tls_cert": str(certs / "server.pem"),
                "tls_key": str(certs / "server-key.pem"),
                "log_level": "debug",
                "handshake_timeout": "5s",
            },
            "upstream": {
                "servers": f"{db.host}:{db.port}",
                "tls_ca_file": db.ca,
                "pool_spares": "2",
            },
            "admin": {"listen": f"127.0.0.1:{self.admin_port}"},
        }
        for key, value in overrides.items():
            section, name = key.split("__", 1)
            sections.setdefault(section, {})[name] = value
        self.conf = tmp_path / "vecgate.conf"
        self.conf.write_text("".join(
            f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in sections.items()))
        self.log = tmp_path / "vecgate.log"
        self.proc = None

    def start(self):
        import time
        import urllib.request
        # VECGATE_BINARY runs the suite against another build (the ASan one).
        binary = self.binary or os.environ.get("VECGATE_BINARY", str(TOP / "build" / "vecgate"))
        self.proc = subprocess.Popen([binary, "--config", str(self.conf)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vecgate exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("vecgate did not become healthy:\n" + self.log.read_text())

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def admin(self, path):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        """Value of one series from /metrics (0 when absent)."""
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in self.admin("/metrics").splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def served(self):
        """kNN queries answered from memory (snapshot scans and result-cache
        replays)."""
        return (self.metric("vecgate_cache_queries_total", result="hit") +
                self.metric("vecgate_cache_queries_total", result="result_cache_hit"))

    def wait_servable(self, table, timeout=20, step=0.05, screened=False):
        """Waits until /status says `table` (db.table) is servable (and with
        screened, that its kNN screen is built too: loads publish before
        it); returns its /status entry, or fails the test after `timeout`
        seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t in json.loads(self.admin("/status")).get("cache", []):
                if t["table"] == table and t["servable"] and not (screened and t["screen_pending"]):
                    return t
            time.sleep(step)
        raise AssertionError(f"{table} never became servable: {self.admin('/status')}")

    def connect(self, database=None, **kw):
        args = dict(host=self.host, port=self.port, user=self.db.user, password=self.db.password,
                    database=database, charset="utf8mb4", ssl_ca=self.ca, ssl_verify_cert=True,
                    ssl_verify_identity=True)
        args.update(kw)
        return pymysql.connect(**args)


@pytest.fixture(scope="module")
def vecgate(db, tmp_path_factory):
    """A fresh vecgate for each test module."""
    vg = Vecgate(db, tmp_path_factory.mktemp("vecgate")).start()
    yield vg
    rc = vg.stop()
    assert rc == 0, f"vecgate exited {rc}:\n{vg.log.read_text()[-4000:]}"


@pytest.fixture
def make_vecgate(db, tmp_path):
    """Starts vecgates with config overrides (section__key=value); stops them after the test."""
    started = []

    def start(**overrides):
        d = tmp_path / f"vg{len(started)}"
        d.mkdir(parents=True, exist_ok=True)
        vg = Vecgate(db, d, **overrides).start()
        started.append(vg)
        return vg

    yield start
    for vg in started:
        vg.stop()
