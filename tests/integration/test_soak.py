"""Soak: many client connections with a mixed load (kNN reads from the cache,
writes that patch it, logins and logouts), against an ASan+LSan build.

- no leak reported when vecgate exits (LeakSanitizer writes to its log);
- RSS after the warm-up grows by less than 10% to the end of the run;
- vecgate's descriptors return to their baseline once the clients leave;
- the load itself sees no errors.

Also measured (non-ASan build): memory per idle logged-in session.

Short mode: 200 connections for about 30 s. VECGATE_LONG=1: 1,000 connections
for VECGATE_SOAK_SECONDS (600). The binary is VECGATE_BINARY, else
build-asan/vecgate when it exists, else build/vecgate (then leaks are not
checked); the load tool is VECGATE_BENCH, else build/vecgate-bench."""
import csv
import json
import os
import random
import subprocess
import threading
import time

import pytest

from conftest import TOP, PrivateDatabase, Vecgate, fds, raise_fd_limit, rss_kib
from faultrelay import wait_until

LONG = os.environ.get("VECGATE_LONG") == "1"
CONNS = 1000 if LONG else 200
SECONDS = float(os.environ.get("VECGATE_SOAK_SECONDS", "600")) if LONG else 30.0
DIM = 16


def soak_binary():
    if os.environ.get("VECGATE_BINARY"):
        return os.environ["VECGATE_BINARY"]
    asan = TOP / "build-asan" / "vecgate"
    return str(asan if asan.exists() else TOP / "build" / "vecgate")


def is_asan(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def bench_binary():
    path = os.environ.get("VECGATE_BENCH", str(TOP / "build" / "vecgate-bench"))
    if not os.path.exists(path):
        pytest.skip(f"no load tool at {path} (cmake --build build --target vecgate-bench)")
    return path


@pytest.fixture(scope="module")
def private_db(tmp_path_factory):
    p = PrivateDatabase(tmp_path_factory.mktemp("soakdb"))
    db = p.start()
    try:
        with db.connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE soak")
            cur.execute(f"CREATE TABLE soak.v (id BIGINT PRIMARY KEY, embedding {db.vector_type(DIM)})")
            rng = random.Random(3)
            cur.executemany("INSERT INTO soak.v VALUES (%s, %s)", [
                (i, "[" + ",".join(f"{rng.gauss(0, 1):.4f}" for _ in range(DIM)) + "]")
                for i in range(1, 2001)])
        yield db
    finally:
        p.tidb("stop")


class Sampler(threading.Thread):
    def __init__(self, pid, every=0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples = []  # (time, rss KiB, descriptors)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.time(), rss_kib(self.pid), fds(self.pid)))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(self.every)

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] < t1]


def bench(db, vg, workload, threads, seconds, out, extra=()):
    args = [bench_binary(), "--targets", f"vecgate={vg.host}:{vg.port}", "--workload", workload,
            "--threads", str(threads), "--duration", str(int(seconds)), "--warmup", "1",
            "--timeout", "60", "--tls", "--ssl-ca", db.ca, "--quiet", "--csv", str(out), *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bench_totals(proc, out):
    """(statements, errors, what the tool printed); errors is -1 when it
    wrote no figures."""
    stdout, stderr = proc.communicate(timeout=SECONDS + 600)
    rows = [r for r in csv.DictReader(open(out)) if r.get("round") not in ("all", None)] \
        if os.path.exists(out) else []
    if not rows:
        return 0, -1, stdout[-3000:] + stderr[-3000:]
    errors = sum(int(r["errors"]) for r in rows) + (proc.returncode != 0 and not any(
        int(r["errors"]) for r in rows))
    return sum(int(r["ops"]) for r in rows), errors, stdout[-3000:] + stderr[-3000:]


def test_soak_many_connections_mixed_load(private_db, tmp_path, monkeypatch):
    db = private_db
    raise_fd_limit(4 * CONNS + 1000)
    binary = soak_binary()
    asan = is_asan(binary)
    # A small quarantine: ASan's default (256 MB of freed blocks held back)
    # would read as growth; 16 MB still catches use-after-free in this run.
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=16:abort_on_error=0")
    vg = Vecgate(db, tmp_path, binary=binary, server__max_client_conns=str(CONNS + 100),
                 # A thousand logins at once queue for max_pending_logins
                 # slots on a slow (ASan) build: give them time.
                 server__log_level="info", server__handshake_timeout="60s",
                 cache__tables="soak.v(embedding)", cache__user=db.user,
                 cache__max_staleness="5s").start()
    pid = vg.proc.pid
    sampler = Sampler(pid)
    try:
        assert wait_until(lambda: all(t["servable"] for t in json.loads(vg.admin("/status"))["cache"]),
                          60), vg.admin("/status")
        time.sleep(1)
        fd_base = fds(pid)
        sampler.start()
        t_start = time.time()
        # The many connections, paced (open loop) so that the machine keeps up:
        # every connection runs a statement every few seconds.
        mixed = bench(db, vg, "mixed", CONNS, SECONDS, tmp_path / "mixed.csv",
                      ["--table", "soak.v", "--column", "embedding", "--metric", "cosine",
                       "--k", "10", "--write-share", "0.1", "--rate", "200"])
        # Logins and logouts throughout.
        churn = bench(db, vg, "connect", 2, SECONDS, tmp_path / "connect.csv", ["--rate", "20"])
        mixed_ops, mixed_errors, mixed_out = bench_totals(mixed, tmp_path / "mixed.csv")
        churn_ops, churn_errors, churn_out = bench_totals(churn, tmp_path / "connect.csv")
        t_end = time.time()
        back = wait_until(lambda: fds(pid) <= fd_base + 4, 30, step=0.2)
        fd_after = fds(pid)
        time.sleep(1)
    finally:
        sampler.stop.set()
        sampler.join(5)
        rc = vg.stop(timeout=120)
    log = vg.log.read_text(errors="replace")

    peak_fds = max(s[2] for s in sampler.samples)
    # Warm-up: the logins and the first quarter of the run; then compare the
    # highest RSS just after it with the highest RSS of the last fifth.
    span = t_end - t_start
    warm = sampler.between(t_start + 0.25 * span, t_start + 0.35 * span)
    last = sampler.between(t_end - 0.2 * span, t_end)
    rss_warm = max(s[1] for s in warm)
    rss_last = max(s[1] for s in last)
    growth = rss_last / rss_warm - 1
    print(f"\n{binary} (ASan: {asan}): {CONNS} connections, {SECONDS:.0f} s: mixed ops {mixed_ops} "
          f"errors {mixed_errors}; logins {churn_ops} errors {churn_errors}; RSS after warm-up "
          f"{rss_warm} KiB, at the end {rss_last} KiB ({growth:+.1%}); descriptors "
          f"{fd_base} -> peak {peak_fds} -> {fd_after}")

    warnings = {}
    for line in log.splitlines():
        if " WARN " in line or " ERROR " in line:
            key = " ".join(w for w in line.split()[1:] if not any(ch.isdigit() for ch in w))[:100]
            warnings[key] = warnings.get(key, 0) + 1
    print("vecgate warnings and errors:", sorted(warnings.items(), key=lambda kv: -kv[1])[:8])
    metrics = [l for l in log.splitlines() if "LeakSanitizer" in l or "SUMMARY" in l]
    print("sanitizer lines:", metrics[:5])
    assert mixed_errors == 0 and churn_errors == 0, mixed_out + churn_out
    assert mixed_ops > CONNS and churn_ops > 0
    assert peak_fds >= CONNS, "the connections were not all open at once"
    assert back, f"descriptors did not return to the baseline {fd_base}: {fd_after}"
    assert growth < 0.10, f"RSS grew {growth:.1%} after the warm-up"
    if asan:
        assert "LeakSanitizer" not in log, log[log.find("LeakSanitizer") - 200:][:6000]
        assert "AddressSanitizer" not in log and "runtime error" not in log, log[-6000:]
    assert rc == 0, log[-4000:]


def test_memory_per_idle_session(private_db, tmp_path):
    """RSS per logged-in idle session, on the optimised build (ASan's shadow
    memory and quarantine would swamp it)."""
    binary = os.environ.get("VECGATE_RELEASE_BINARY", str(TOP / "build" / "vecgate"))
    if is_asan(binary):
        pytest.skip(f"{binary} is an ASan build")
    n = CONNS
    raise_fd_limit(4 * n + 1000)
    vg = Vecgate(private_db, tmp_path, binary=binary, server__max_client_conns=str(n + 100),
                 server__log_level="info").start()
    conns = []
    try:
        # Warm up the paths a login takes (TLS contexts, pool, allocator arenas).
        for _ in range(20):
            with vg.connect() as c, c.cursor() as cur:
                cur.execute("SELECT 1")
        time.sleep(1)
        before = rss_kib(vg.proc.pid)
        for _ in range(n):
            c = vg.connect()
            with c.cursor() as cur:
                cur.execute("SELECT 1")
            conns.append(c)
        time.sleep(1)
        after = rss_kib(vg.proc.pid)
        per = (after - before) / n
        print(f"\n{n} idle sessions: RSS {before} -> {after} KiB, {per:.1f} KiB per session")
        assert per < 512, f"{per:.0f} KiB per idle session"
        for c in conns:
            c.close()
        conns = []
    finally:
        for c in conns:
            c.close()
        assert vg.stop() == 0
