"""Faults under load: 16 clients write and read through vecgate (TLS) while
the network between vecgate and the database cuts a connection in the middle
of a result, resets connections, stalls, slows down and refuses new
connections (faultrelay.py), and while the database is killed with SIGKILL
and restarted.

What must hold:
- every statement ends, within the timeouts, with an answer or a clean MySQL
  error (never a hang, never a malformed packet);
- every acknowledged write is in the database afterwards and no write ran
  twice (each client writes (client, seq) pairs it never reuses, and after an
  error it moves on to the next seq: a duplicate pair would be a replay);
- a kNN read right after an acknowledged write sees that row (read your
  writes), and a write made straight on the restarted database is seen
  within max_staleness;
- vecgate stays up and the sessions a fault does not touch go on without
  errors.

Short mode runs one round of every fault (about a minute). VECGATE_LONG=1
repeats the rounds for VECGATE_LONG_SECONDS (600 by default);
VECGATE_FAULTS_LOG=debug runs vecgate with that log level (info by default)."""
import json
import os
import random
import signal
import subprocess
import threading
import time
import traceback

import pymysql
import pytest

from conftest import TOP, Database, Vecgate, free_port
from faultrelay import FaultRelay, wait_until

LONG = os.environ.get("VECGATE_LONG") == "1"
LONG_SECONDS = float(os.environ.get("VECGATE_LONG_SECONDS", "600"))
CLIENTS = 16
MAX_STALENESS = 2.0
STALL = 5.0 if LONG else 2.5
# A statement may wait out a stall, a restart or a login retry, never longer.
STATEMENT_BOUND = STALL + 8.0
LOST = (2006, 2013)  # the connection is gone: reconnect


class CrashableDatabase:
    """A private database (tools/tidb with its own run directory and ports)
    that can be killed with SIGKILL and started again on the same data.

    tools/tidb starts MariaDB in a fresh data directory each time, with the
    redo log flushed once a second, so a plain restart keeps nothing. Here
    the server is restarted once with its own command line but a redo log
    flushed at every commit, and after SIGKILL that same command line runs
    again on the same data directory: InnoDB's crash recovery must then keep
    every commit it acknowledged."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.env = dict(os.environ, VECGATE_TIDB_RUN=str(run_dir),
                        VECGATE_TIDB_PORT=str(free_port()),
                        VECGATE_TIDB_STATUS_PORT=str(free_port()))
        self.proc = None  # the server once this class has restarted it
        self.argv = None

    def tidb(self, cmd):
        subprocess.run([str(TOP / "tools" / "tidb"), cmd], env=self.env, check=True,
                       capture_output=True, timeout=300)

    def start(self):
        self.tidb("start")
        self.db = Database(json.loads((self.run_dir / "conn.json").read_text()))
        if self.db.flavor == "mariadb":
            pid = int((self.run_dir / "pid").read_text())
            argv = (open(f"/proc/{pid}/cmdline", "rb").read().rstrip(b"\0").decode().split("\0"))
            self.argv = [a.replace("--innodb-flush-log-at-trx-commit=0",
                                   "--innodb-flush-log-at-trx-commit=1") for a in argv]
            os.kill(pid, signal.SIGTERM)
            assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30)
            self._launch()
        return self.db

    @property
    def durable(self):
        return self.argv is not None

    def _launch(self):
        log = open(self.run_dir / "server.log", "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, start_new_session=True)
        (self.run_dir / "pid").write_text(str(self.proc.pid))
        deadline = time.time() + 60
        while True:
            try:
                self.db.connect(connect_timeout=2).close()
                return
            except pymysql.err.MySQLError:
                assert self.proc.poll() is None, "database exited on restart"
                assert time.time() < deadline, "database did not come back"
                time.sleep(0.1)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self):
        self._launch()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tidb("stop")  # removes the data directory (and stops a server it started)


class Recorder:
    """What every client saw, with times, for the checks at the end."""

    def __init__(self):
        self.lock = threading.Lock()
        self.errors = []      # (time, client, code, message, statement kind)
        self.unclean = []     # (client, traceback) for anything but a MySQL error
        self.slow = []        # (client, kind, seconds, start) over STATEMENT_BOUND
        self.ryw = []         # (client, seq, what the read returned) when it missed the row
        self.ok = {}          # client -> times of successful statements
        self.statements = 0

    def error(self, client, e, kind):
        with self.lock:
            self.errors.append((time.time(), client, e.args[0], str(e.args[1:])[:200], kind))

    def success(self, client):
        with self.lock:
            self.statements += 1
            self.ok.setdefault(client, []).append(time.time())


class Client(threading.Thread):
    def __init__(self, cid, vg, rec, stop):
        super().__init__(daemon=True, name=f"client{cid}")
        self.cid, self.vg, self.rec, self.stop = cid, vg, rec, stop
        self.seq = 0
        self.acked = set()
        self.attempted = set()
        self.conn = None
        self.rng = random.Random(cid)

    def timed(self, kind, fn):
        t0 = time.time()
        try:
            return fn()
        finally:
            dt = time.time() - t0
            if dt > STATEMENT_BOUND:
                with self.rec.lock:
                    self.rec.slow.append((self.cid, kind, dt, t0))

    def connect(self):
        self.conn = self.timed("connect", lambda: self.vg.connect(
            "faults", autocommit=True, connect_timeout=10, read_timeout=30, write_timeout=30))

    def write(self):
        """One row in autocommit, or two in a transaction; acknowledged only
        when the server said OK (to the COMMIT)."""
        seqs = [self.seq + 1] if self.rng.random() < 0.8 else [self.seq + 1, self.seq + 2]
        self.seq = seqs[-1]
        self.attempted.update(seqs)
        with self.conn.cursor() as cur:
            if len(seqs) == 1:
                cur.execute("INSERT INTO w (client, seq, embedding) VALUES (%s, %s, %s)",
                            (self.cid, seqs[0], f"[{self.cid},{seqs[0]},1]"))
            else:
                cur.execute("BEGIN")
                for s in seqs:
                    cur.execute("INSERT INTO w (client, seq, embedding) VALUES (%s, %s, %s)",
                                (self.cid, s, f"[{self.cid},{s},1]"))
                cur.execute("COMMIT")
        self.acked.update(seqs)
        # Read your writes: the nearest row to the vector just written is that row.
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT client, seq, VEC_L2_DISTANCE(embedding, '[{self.cid},{self.seq},1]') "
                        f"AS d FROM w WHERE client = {self.cid} ORDER BY d LIMIT 1")
            row = cur.fetchone()
        if row is None or (row[0], row[1]) != (self.cid, self.seq):
            with self.rec.lock:
                self.rec.ryw.append((self.cid, self.seq, row))

    def read(self):
        q = ",".join(str(self.rng.randint(-3, 3)) for _ in range(3))
        with self.conn.cursor() as cur:
            if self.rng.random() < 0.3:
                # A result of ~10 KB through the relay, so cuts land mid-result.
                cur.execute("SELECT id, client, seq, embedding FROM w WHERE client = -1")
                assert len(cur.fetchall()) == 200
            else:
                cur.execute(f"SELECT id, VEC_COSINE_DISTANCE(embedding, '[{q}]') AS d FROM w "
                            f"WHERE client = -1 ORDER BY d LIMIT 5")
                assert len(cur.fetchall()) == 5

    def run(self):
        while not self.stop.is_set():
            kind = "connect"
            try:
                if self.conn is None:
                    self.connect()
                    self.rec.success(self.cid)
                kind = "write" if self.rng.random() < 0.5 else "read"
                self.timed(kind, self.write if kind == "write" else self.read)
                self.rec.success(self.cid)
            except pymysql.err.MySQLError as e:
                if not isinstance(e.args[0], int) or e.args[0] == 0:
                    with self.rec.lock:
                        self.rec.unclean.append((self.cid, traceback.format_exc()))
                self.rec.error(self.cid, e, kind)
                if self.conn is not None and (e.args[0] in LOST or not self.conn.open):
                    self.conn.close()
                    self.conn = None
                if self.conn is None:
                    time.sleep(0.1)
            except Exception:
                with self.rec.lock:
                    self.rec.unclean.append((self.cid, traceback.format_exc()))
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
            time.sleep(0.005)
        if self.conn is not None:
            self.conn.close()


@pytest.fixture
def crashable(tmp_path):
    d = CrashableDatabase(tmp_path / "db")
    yield d
    d.stop()


def alive(vg):
    assert vg.proc.poll() is None, "vecgate exited:\n" + vg.log.read_text()[-4000:]
    json.loads(vg.admin("/status"))


def errors_between(rec, t0, t1):
    with rec.lock:
        return [e for e in rec.errors if t0 <= e[0] < t1]


def visible_within(vg, db, marker, timeout):
    """Time until a kNN read through vecgate returns the row written straight on
    the database (with client = marker, at the query vector)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        # A login may still fail while vecgate's health checks catch up with
        # the restart (a clean error): that time counts against the bound.
        try:
            with vg.connect("faults", autocommit=True, read_timeout=30) as c, c.cursor() as cur:
                while time.time() - t0 < timeout:
                    cur.execute(f"SELECT client FROM w WHERE client = {marker} ORDER BY "
                                f"VEC_L2_DISTANCE(embedding, '[{marker},0,1]') LIMIT 1")
                    if cur.fetchone() == (marker,):
                        return time.time() - t0
                    time.sleep(0.05)
        except pymysql.err.OperationalError:
            time.sleep(0.05)
    return None


def test_faults_under_mixed_load(crashable, tmp_path):
    db = crashable.start()
    with db.connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE faults")
        cur.execute(f"CREATE TABLE faults.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT NOT NULL, "
                    f"seq INT NOT NULL, embedding {db.vector_type(3)}, KEY (client, seq))")
        rng = random.Random(1)
        cur.executemany("INSERT INTO faults.w (client, seq, embedding) VALUES (-1, %s, %s)",
                        [(i, "[" + ",".join(str(rng.randint(-9, 9)) for _ in range(3)) + "]")
                         for i in range(200)])
    relay = FaultRelay(db.host, db.port).start()
    vg = Vecgate(db, tmp_path, upstream__servers=f"127.0.0.1:{relay.port}",
                 upstream__connect_timeout="1s", upstream__health_check_interval="1s",
                 server__handshake_timeout="3s",
                 server__log_level=os.environ.get("VECGATE_FAULTS_LOG", "info"),
                 cache__tables="faults.w(embedding)", cache__user=db.user,
                 cache__max_staleness=f"{MAX_STALENESS:g}s", cache__load_timeout="5s").start()
    rec = Recorder()
    stop = threading.Event()
    clients = [Client(i, vg, rec, stop) for i in range(CLIENTS)]
    phases = []  # (name, start, end, clients a fault may touch (None: all))

    def phase(name, touches, inject, hold, settle=1.0):
        t0 = time.time()
        inject()
        time.sleep(hold)
        phases.append((name, t0, time.time() + settle, touches))
        time.sleep(settle)

    try:
        assert wait_until(lambda: any(t["servable"] for t in json.loads(vg.admin("/status"))["cache"]),
                          20), vg.admin("/status")
        t_start = time.time()
        for c in clients:
            c.start()
        time.sleep(3)
        phases.append(("warm-up", 0, time.time(), 0))
        deadline = time.time() + (LONG_SECONDS if LONG else 0)
        rounds = 0
        restart_seen = []
        direct_seen = []
        while True:
            rounds += 1
            phase("cut mid-result", 2, lambda: relay.cut(2000, conns=2), 3)
            phase("reset", 2, lambda: relay.reset(conns=2), 2)
            phase("stall", 0, lambda: relay.stall(STALL), STALL + 1)
            phase("delay", 0, lambda: relay.delay(0.05), 3)
            relay.delay(0)
            phase("refuse new connections", 0, lambda: relay.refuse(True), 3)
            relay.refuse(False)
            alive(vg)

            if not crashable.durable:
                # A real tidb-server here keeps its data in memory: a restart
                # would lose the table, so there is nothing to check across it.
                if time.time() >= deadline:
                    break
                continue
            t_kill = time.time()
            crashable.kill9()
            time.sleep(1)
            crashable.restart()
            t_back = time.time()
            # Every client works again (reconnecting where it lost its session).
            assert wait_until(lambda: all(any(t > t_back for t in rec.ok.get(c.cid, []))
                                          for c in clients), 30), "clients did not recover"
            phases.append(("database killed", t_kill, time.time(), None))
            restart_seen.append(time.time() - t_back)
            alive(vg)

            # A write straight on the restarted database is seen within max_staleness.
            marker = -100 - rounds
            with db.connect("faults", autocommit=True) as c, c.cursor() as cur:
                cur.execute("INSERT INTO w (client, seq, embedding) VALUES (%s, 0, %s)",
                            (marker, f"[{marker},0,1]"))
            seen = visible_within(vg, db, marker, MAX_STALENESS + 5)
            assert seen is not None and seen <= MAX_STALENESS + 1.0, \
                f"direct write seen after {seen} s (max_staleness {MAX_STALENESS} s)"
            direct_seen.append(seen)
            if time.time() >= deadline:
                break
        time.sleep(2)
        alive(vg)
    finally:
        stop.set()
        for c in clients:
            c.join(60)
        relay_cuts = relay.cuts_done
        relay.stop()
        rc = vg.stop()
    assert rc == 0, vg.log.read_text()[-4000:]
    log = vg.log.read_text()
    assert "Sanitizer" not in log and "runtime error" not in log, log[-4000:]

    summary = {name: sorted({e[2] for e in errors_between(rec, t0, t1)}) or 0
               for name, t0, t1, _ in phases}
    print(f"\nrounds {rounds}, statements {rec.statements}, errors {len(rec.errors)}, "
          f"cuts {relay_cuts}, error codes by phase {summary}, clients back after restart "
          f"{[round(x, 2) for x in restart_seen]} s, direct writes seen after "
          f"{[round(x, 2) for x in direct_seen]} s")

    assert not any(c.is_alive() for c in clients), "a client hung"
    assert not rec.unclean, "not a clean MySQL error:\n" + "\n".join(t for _, t in rec.unclean[:3])
    def phase_of(t):
        return [name for name, t0, t1, _ in phases if t0 <= t < t1] or ["between phases"]

    assert not rec.slow, f"statements past {STATEMENT_BOUND} s: " + ", ".join(
        f"client {c} {kind} {dt:.1f} s from {t0 - t_start:.1f} s into the run (during "
        f"{phase_of(t0)})" for c, kind, dt, t0 in rec.slow[:10])
    assert not rec.ryw, f"a read after an acknowledged write missed it: {rec.ryw[:10]}"
    assert relay_cuts >= rounds, "no connection was cut mid-result"
    for name, t0, t1, touches in phases:
        if touches is None:
            continue
        hit = {e[1] for e in errors_between(rec, t0, t1)}
        assert len(hit) <= touches, f"{name}: clients {sorted(hit)} saw errors " \
                                    f"{errors_between(rec, t0, t1)[:5]}"
    # Every client got work done in every phase: the others went on.
    for name, t0, t1, touches in phases[1:]:
        done = {cid for cid, ts in rec.ok.items() if any(t0 <= t < t1 for t in ts)}
        assert len(done) >= CLIENTS - (touches if touches is not None else CLIENTS), \
            f"{name}: only clients {sorted(done)} made progress"

    with db.connect("faults") as c, c.cursor() as cur:
        cur.execute("SELECT client, seq, COUNT(*) FROM w WHERE client >= 0 GROUP BY client, seq")
        present = {}
        for client, seq, n in cur.fetchall():
            present[(client, seq)] = n
    twice = {k: n for k, n in present.items() if n > 1}
    assert not twice, f"writes executed more than once: {list(twice.items())[:10]}"
    acked = {(c.cid, s) for c in clients for s in c.acked}
    attempted = {(c.cid, s) for c in clients for s in c.attempted}
    if crashable.durable:
        missing = acked - set(present)
        assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:10]}"
    assert set(present) <= attempted, "rows nobody wrote"
    print(f"acknowledged writes {len(acked)}, attempted {len(attempted)}, "
          f"present {len(present)} (unacknowledged but committed {len(set(present) - acked)})")
