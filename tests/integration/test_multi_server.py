"""vecgate in front of three database servers (docs/design.md §5): new
sessions go to the healthy server with the fewest sessions; a server that
dies under load costs its own sessions a clean error, is taken out within a
health-check interval and shown down in /status and /metrics; once back, its
health check puts it back and it gets sessions again.

The three servers are private instances (tools/tidb with their own run
directories and ports), each with its own data: a session tells which one it
reached by the port the server reports (@@port), nothing else needs shared
data. Their certificates are copies of the shared test database's, so one CA
file verifies all three."""
import json
import os
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest

from conftest import PrivateDatabase, Vecgate

CHECK_INTERVAL = 1.0  # [upstream] health_check_interval, seconds


@pytest.fixture(scope="module")
def servers(db, tmp_path_factory):
    base = tmp_path_factory.mktemp("servers")
    certs = os.path.dirname(db.ca)
    privates = []
    for i in range(3):
        run = base / f"db{i}"
        (run / "certs").mkdir(parents=True)
        for f in ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem"):
            shutil.copy(os.path.join(certs, f), run / "certs" / f)
        privates.append(PrivateDatabase(run))
    try:
        with ThreadPoolExecutor(3) as ex:
            dbs = list(ex.map(lambda p: p.start(), privates))
        yield list(zip(privates, dbs))
    finally:
        with ThreadPoolExecutor(3) as ex:
            list(ex.map(lambda p: p.tidb("stop"), privates))


@pytest.fixture
def gate(servers, db, tmp_path):
    first = servers[0][1]
    vg = Vecgate(first, tmp_path,
                 upstream__servers=", ".join(f"{d.host}:{d.port}" for _, d in servers),
                 upstream__tls_ca_file=db.ca,
                 upstream__health_check_interval=f"{int(CHECK_INTERVAL * 1000)}ms",
                 upstream__connect_timeout="2s",
                 upstream__pool_spares="2").start()
    yield vg
    assert vg.stop() == 0, vg.log.read_text()[-4000:]


def server_port(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT @@port")
        return cur.fetchone()[0]


def upstreams(vg):
    return {u["server"]: u for u in json.loads(vg.admin("/status"))["upstreams"]}


def name(d):
    return f"{d.host}:{d.port}"


def wait_for(what, cond, timeout):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_sessions(vg, want, timeout=10):
    """/status sessions per server settle at want ({server: count})."""
    def settled():
        ups = upstreams(vg)
        return all(ups[s]["sessions"] == n for s, n in want.items())
    try:
        wait_for("session counts", settled, timeout)
    except AssertionError:
        raise AssertionError(f"want {want}, /status: {upstreams(vg)}") from None


def test_sessions_are_spread_by_least_connections(gate, servers):
    ports = [d.port for _, d in servers]
    conns, on = [], {p: [] for p in ports}
    for _ in range(30):
        c = gate.connect()
        conns.append(c)
        on[server_port(c)].append(c)
    counts = {p: len(v) for p, v in on.items()}
    assert all(9 <= n <= 11 for n in counts.values()), counts
    # /status and /metrics count the same sessions.
    wait_sessions(gate, {name(d): counts[d.port] for _, d in servers})
    for _, d in servers:
        assert gate.metric("vecgate_upstream_sessions", server=name(d)) == counts[d.port]
        assert gate.metric("vecgate_upstream_up", server=name(d)) == 1

    # Least connections, not turns: once one server's sessions end, the
    # next sessions all go there until it has caught up.
    emptied = ports[1]
    for c in on[emptied]:
        c.close()
    wait_sessions(gate, {name(servers[1][1]): 0})
    refill = [gate.connect() for _ in range(counts[emptied] - 1)]
    assert [server_port(c) for c in refill] == [emptied] * len(refill)
    for c in conns + refill:
        if c.open:
            c.close()
    wait_sessions(gate, {name(d): 0 for _, d in servers})

    # Logins at once: a client waits for a connection on the server with
    # the fewest sessions rather than load another one further.
    with ThreadPoolExecutor(30) as ex:
        conns = list(ex.map(lambda _: gate.connect(), range(30)))
    landed = [server_port(c) for c in conns]
    counts = {p: landed.count(p) for p in ports}
    assert all(9 <= n <= 11 for n in counts.values()), counts
    for c in conns:
        c.close()


def test_server_killed_under_load_then_back(gate, servers):
    victim_proc, victim = servers[2]
    healthy_ports = {servers[0][1].port, servers[1][1].port}
    # Sessions held on every server, among them some on the victim.
    held = [gate.connect(read_timeout=15) for _ in range(6)]
    on_victim = [c for c in held if server_port(c) == victim.port]
    assert on_victim, "no session reached the third server"

    # Several clients logging in and querying in a loop.
    stop = threading.Event()
    results = []  # (start time, port or None, seconds, error code)
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            t0 = time.time()
            try:
                with gate.connect(read_timeout=15, connect_timeout=15) as c:
                    port = server_port(c)
                    with c.cursor() as cur:
                        cur.execute("SELECT SLEEP(0.05)")
                rec = (t0, port, time.time() - t0, None)
            except pymysql.err.MySQLError as e:
                rec = (t0, None, time.time() - t0, e.args[0])
            with lock:
                results.append(rec)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        pid = json.loads((victim_proc.run_dir / "conn.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()

        # Its sessions get an error at once (the link is gone), not a hang.
        for c in on_victim:
            t0 = time.time()
            with pytest.raises(pymysql.err.OperationalError) as e:
                server_port(c)
            assert e.value.args[0] in (2006, 2013), e.value.args
            assert time.time() - t0 < 5
        # Sessions on the other servers go on.
        for c in held:
            if c not in on_victim:
                assert server_port(c) in healthy_ports

        wait_for("the server marked down", lambda: not upstreams(gate)[name(victim)]["healthy"],
                 CHECK_INTERVAL + 2)
        time.sleep(CHECK_INTERVAL + 1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a client hung"

    # After one health-check interval, every new session went to the two
    # healthy servers and got through.
    later = [r for r in results if r[0] > killed_at + CHECK_INTERVAL + 0.5]
    assert len(later) >= 4, results
    assert all(r[1] in healthy_ports for r in later), later
    # Nothing hung: every login and query, failed or not, ended quickly.
    assert max(r[2] for r in results) < 10, max(results, key=lambda r: r[2])
    # Until the kill, every session got through.
    before = [r for r in results if r[0] + r[2] < killed_at]
    assert before and all(r[1] is not None for r in before), before

    ups = upstreams(gate)
    assert ups[name(victim)]["healthy"] is False, ups
    assert ups[name(victim)]["last_error"], ups
    assert ups[name(victim)]["sessions"] == 0, ups
    assert ups[name(victim)]["spares"] == 0, ups
    assert gate.metric("vecgate_upstream_up", server=name(victim)) == 0
    assert gate.metric("vecgate_upstream_connect_failures_total", server=name(victim)) >= 1
    assert gate.metric("vecgate_upstream_health_checks_total", server=name(victim),
                       result="failed") >= 1
    for _, d in servers[:2]:
        assert ups[name(d)]["healthy"] is True, ups
        assert ups[name(d)]["last_check"]["ok"] is True, ups
        assert gate.metric("vecgate_upstream_up", server=name(d)) == 1

    # Back: its health check passes within an interval of it answering, and
    # as the server with the fewest sessions it gets the next ones.
    victim_proc.tidb("stop")  # clears what the killed instance left
    victim_proc.start()
    wait_for("the server back in", lambda: upstreams(gate)[name(victim)]["healthy"],
             CHECK_INTERVAL + 5)
    assert gate.metric("vecgate_upstream_up", server=name(victim)) == 1
    wait_for("spares on the server", lambda: upstreams(gate)[name(victim)]["spares"] > 0, 5)
    fresh = [gate.connect() for _ in range(3)]
    got = [server_port(c) for c in fresh]
    assert victim.port in got, got
    for c in fresh + held:
        if c.open:
            c.close()
