"""Resource bounds a client cannot push past: bytes sent ahead of the session
(pipelined commands while a statement runs) and logins that never finish
(each holds a database connection). Every loop here is bounded in count and
time; everything runs on loopback."""
import json
import os
import select
import signal
import socket
import ssl
import struct
import threading
import time

import pytest

from conftest import rss_kib

# PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | MULTI_RESULTS ...; no SSL,
# no DEPRECATE_EOF (results end with EOF packets).
CAPS = 0x000FA685


def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def query(sql):
    """COM_QUERY, split into 16 MiB - 1 chunks when it is that large."""
    payload, out, seq = b"\x03" + sql.encode(), [], 0
    while True:
        chunk, payload = payload[:0xFFFFFF], payload[0xFFFFFF:]
        out.append(packet(seq, chunk))
        seq = (seq + 1) % 256
        if len(chunk) < 0xFFFFFF:
            return b"".join(out)


class NeedMore(Exception):
    pass


class ByteSource:
    """Bytes already received, read like a socket; NeedMore past their end."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise NeedMore
        self.pos += n
        return bytes(self.data[self.pos - n:self.pos])


def read_exact(src, n):
    if isinstance(src, ByteSource):
        return src.take(n)
    data = b""
    while len(data) < n:
        chunk = src.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_packet(src):
    hdr = read_exact(src, 4)
    n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
    return hdr[3], read_exact(src, n)


def lenenc(p, i):
    c = p[i]
    if c < 0xFB:
        return c, i + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[c]
    return int.from_bytes(p[i + 1:i + 1 + width], "little"), i + 1 + width


def read_result(src):
    """One text-protocol response: ("ok", payload), ("err", payload) or
    ("rows", [[bytes, ...], ...])."""
    _, p = read_packet(src)
    if p[0] == 0x00:
        return "ok", p
    if p[0] == 0xFF:
        return "err", p
    ncols, _ = lenenc(p, 0)
    for _ in range(ncols):
        read_packet(src)
    assert read_packet(src)[1][0] == 0xFE
    rows = []
    while True:
        _, p = read_packet(src)
        if p[0] == 0xFE and len(p) < 9:
            return "rows", rows
        if p[0] == 0xFF:
            return "err", p
        row, i = [], 0
        for _ in range(ncols):
            n, i = lenenc(p, i)
            row.append(p[i:i + n])
            i += n
        rows.append(row)


def handshake_response(user=b"root", seq=1):
    body = struct.pack("<IIB", CAPS, 1 << 24, 45) + b"\0" * 23 + user + b"\0" + b"\0"
    return packet(seq, body + b"mysql_native_password\0")


def raw_login(vg, timeout=10):
    """A plaintext client logged in as root (empty password) by hand."""
    s = socket.create_connection((vg.host, vg.port), timeout=timeout)
    seq, greeting = read_packet(s)
    assert seq == 0 and greeting[0] == 10
    s.sendall(handshake_response())
    assert read_packet(s)[1][0] == 0x00
    return s


def still_serving(vg):
    with vg.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def by_state(vg):
    return json.loads(vg.admin("/status"))["by_state"]


# ---- bytes sent ahead ----


def send_nonblocking(sock, data, stop, sent, deadline):
    """Sends data as fast as the socket takes it, until stop or deadline;
    adds what went out to sent[0]. False when it stopped early."""
    view = memoryview(data)
    off = 0
    while off < len(view):
        if stop.is_set() or time.time() > deadline:
            return False
        _, w, _ = select.select([], [sock], [], 0.1)
        if not w:
            continue
        try:
            n = sock.send(view[off:off + (1 << 20)])
        except BlockingIOError:
            continue
        except OSError:
            return False
        off += n
        sent[0] += n
    return True


def test_pipelined_flood_keeps_memory_bounded(make_vecgate):
    """SELECT SLEEP(3) and then 400 MiB of further statements sent at once:
    vecgate stops reading once write_buffer_limit bytes wait, instead of
    buffering all of it while the statement runs."""
    vg = make_vecgate()
    pid = vg.proc.pid
    still_serving(vg)
    rss_start = rss_kib(pid)

    flood = raw_login(vg)
    in_start = bytes_in(vg)
    flood.sendall(query("SELECT SLEEP(3)"))
    stmt = query("DO 1 /*" + "x" * (64 * 1024 - 16) + "*/")
    chunk = stmt * ((1 << 20) // len(stmt) + 1)  # about 1 MiB of whole packets
    total = 400 << 20
    stop, sent = threading.Event(), [0]

    def sender():
        flood.setblocking(False)
        deadline = time.time() + 30
        while sent[0] < total and send_nonblocking(flood, chunk, stop, sent, deadline):
            pass

    t = threading.Thread(target=sender, daemon=True)
    t0 = time.time()
    t.start()
    peak, bystander_ok, during_sleep = rss_start, False, None
    while time.time() - t0 < 4.5:
        peak = max(peak, rss_kib(pid))
        if during_sleep is None and time.time() - t0 > 2.5:
            during_sleep = bytes_in(vg) - in_start
        if not bystander_ok and time.time() - t0 > 1.5:
            # Another session is served while the flood is held back.
            with vg.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT 'bystander'")
                bystander_ok = cur.fetchone() == ("bystander",)
        time.sleep(0.05)
    stop.set()
    t.join(10)
    flood.close()
    print(f"\nflood: vecgate read {int(during_sleep) >> 10} KiB in the first 2.5 s (the "
          f"statement still running), {sent[0] >> 20} MiB sent in 4.5 s; vecgate RSS "
          f"{rss_start >> 10} MiB at start, peak {peak >> 10} MiB (+{(peak - rss_start) >> 10} MiB)")
    assert bystander_ok
    assert vg.proc.poll() is None
    assert peak - rss_start < 200 * 1024, f"RSS grew by {(peak - rss_start) >> 10} MiB"
    # About write_buffer_limit (1 MiB) plus one read, and the bystander's bytes.
    assert during_sleep < 4 << 20, f"read {int(during_sleep)} bytes while the statement ran"
    still_serving(vg)
    assert vg.stop() == 0


def pipelined_batch(n, pad):
    """SELECT SLEEP(0.5), then n statements SELECT i padded with a comment."""
    batch = [query("SELECT SLEEP(0.5)")]
    batch += [query(f"SELECT {i} /*{'p' * pad}*/") for i in range(n)]
    return b"".join(batch)


def bytes_in(vg):
    return vg.metric("vecgate_client_bytes_total", direction="in")


WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def run_pipelined(vg, sock, n, pad, limit):
    """Writes the batch as fast as the socket takes it while reading the
    answers, in one thread (an SSL socket must not be used by two at once).
    Checks every answer in order, and that while SLEEP(0.5) runs vecgate
    reads about limit bytes ahead, not the whole batch. Returns the bytes
    read ahead."""
    data = memoryview(pipelined_batch(n, pad))
    assert len(data) > 8 * limit
    sock.setblocking(False)
    before, ahead, t0 = bytes_in(vg), None, time.time()
    off, inbuf, answers = 0, bytearray(), []
    while len(answers) < n + 1:
        assert time.time() - t0 < 60, f"{len(answers)} of {n + 1} answers"
        if ahead is None and time.time() - t0 > 0.3:
            ahead = bytes_in(vg) - before  # the sleep still runs
        select.select([sock], [sock] if off < len(data) else [], [], 0.05)
        if off < len(data):
            try:
                off += sock.send(data[off:off + 65536])
            except WOULD_BLOCK:
                pass
        while True:
            try:
                chunk = sock.recv(65536)
            except WOULD_BLOCK:
                break
            if not chunk:
                raise ConnectionError("vecgate closed the connection")
            inbuf += chunk
        src = ByteSource(inbuf)
        while True:
            try:
                answers.append(read_result(src))
            except NeedMore:
                break
            del inbuf[:src.pos]
            src = ByteSource(inbuf)
    sock.setblocking(True)
    assert answers[0] == ("rows", [[b"0"]])
    for i in range(n):
        assert answers[i + 1] == ("rows", [[str(i).encode()]]), f"statement {i}"
    # One read (64 KiB of plaintext, or of TLS records) may land past the limit.
    assert ahead < limit + 256 * 1024, f"read {ahead} bytes ahead of a {limit}-byte limit"
    return ahead


def test_pipelined_batch_answered_in_order(make_vecgate):
    """Thousands of statements in one write, past a small write_buffer_limit:
    vecgate pauses and resumes the client and answers every one in order."""
    limit = 16 * 1024
    vg = make_vecgate(server__write_buffer_limit="16K")
    s = raw_login(vg)
    n = 4000
    ahead = run_pipelined(vg, s, n, 400, limit)
    print(f"\nplaintext: {n} pipelined statements answered; {ahead} bytes read ahead")
    s.sendall(query("SELECT 'after'"))
    assert read_result(s) == ("rows", [[b"after"]])
    s.close()
    still_serving(vg)
    assert vg.stop() == 0


def test_pipelined_batch_over_tls(make_vecgate):
    """The same over client TLS, where decrypted bytes may already wait in
    vecgate when it pauses: nothing stalls."""
    limit = 16 * 1024
    vg = make_vecgate(server__write_buffer_limit="16K")
    conn = vg.connect()
    n = 4000
    assert isinstance(conn._sock, ssl.SSLSocket)
    ahead = run_pipelined(vg, conn._sock, n, 400, limit)
    print(f"\nTLS: {n} pipelined statements answered; {ahead} bytes read ahead")
    with conn.cursor() as cur:
        cur.execute("SELECT 'after'")
        assert cur.fetchone() == ("after",)
    conn.close()
    assert vg.stop() == 0


def test_large_statement_still_fits(make_vecgate, db):
    """A 20 MiB statement is one packet being received, not input sent ahead:
    it may grow past write_buffer_limit up to max_packet_size, alone or
    pipelined behind a running statement."""
    vg = make_vecgate(server__write_buffer_limit="16K")
    big = "a" * (20 << 20)
    sql = f"SELECT LENGTH(x), MD5(x) FROM (SELECT '{big}' AS x) t"
    with db.connect(max_allowed_packet=64 << 20) as direct, direct.cursor() as cur:
        cur.execute(sql)
        expected = cur.fetchone()
    assert expected[0] == 20 << 20
    with vg.connect(max_allowed_packet=64 << 20, read_timeout=30, write_timeout=30) as conn, \
            conn.cursor() as cur:
        cur.execute(sql)
        assert cur.fetchone() == expected
    s = raw_login(vg, timeout=30)
    data = query("SELECT SLEEP(1)") + query(sql)
    t = threading.Thread(target=s.sendall, args=(data,), daemon=True)
    t.start()
    assert read_result(s) == ("rows", [[b"0"]])
    kind, rows = read_result(s)
    t.join(10)
    assert kind == "rows" and rows == [[str(expected[0]).encode(), expected[1].encode()]]
    s.close()
    assert vg.stop() == 0


# ---- logins that never finish ----


def upstream_conns(vg):
    """vecgate's established TCP connections to the database, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{vg.proc.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{vg.proc.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                port = int(cols[2].split(":")[1], 16)
                if port == vg.db.port and cols[3] == "01" and cols[9] in inodes:
                    n += 1
    return n


def threads_connected(conn):
    with conn.cursor() as cur:
        cur.execute("SHOW STATUS LIKE 'Threads_connected'")
        return int(cur.fetchone()[1])


def test_slow_logins_hold_bounded_db_connections(make_vecgate, db):
    """40 clients dribble their login a byte a second: at most
    max_pending_logins of them hold a database connection, the others wait
    without one, a normal client still logs in, and the handshake timeout
    closes them all."""
    limit, spares, timeout = 10, 2, 4.0
    vg = make_vecgate(server__max_pending_logins=str(limit), server__handshake_timeout="4s",
                      upstream__pool_spares=str(spares))
    still_serving(vg)
    direct = db.connect()
    time.sleep(0.3)
    base_vg, base_db = upstream_conns(vg), threads_connected(direct)

    hello = handshake_response()
    clients = []
    t0 = time.time()
    for _ in range(40):
        s = socket.create_connection((vg.host, vg.port), timeout=5)
        s.setblocking(False)
        clients.append(s)

    normal = {}

    def normal_client():
        start = time.time()
        try:
            with vg.connect(connect_timeout=10) as conn, conn.cursor() as cur:
                cur.execute("SELECT 'normal'")
                normal["row"] = cur.fetchone()
        except Exception as e:  # reported by the assertion below
            normal["error"] = repr(e)
        normal["seconds"] = time.time() - start

    peak_vg, peak_db, peak_queued, peak_pending = 0, 0, 0, 0
    nt = threading.Thread(target=normal_client, daemon=True)
    sent_bytes = 0
    while time.time() - t0 < 3.2:
        elapsed = time.time() - t0
        if elapsed > 1.5 and nt.ident is None:
            nt.start()
        if sent_bytes < int(elapsed) + 1:  # one byte a second from each client
            for s in clients:
                try:
                    s.send(hello[sent_bytes:sent_bytes + 1])
                except OSError:
                    pass
            sent_bytes += 1
        st = by_state(vg)
        pending = st["wait_upstream"] + st["greeted"] + st["client_tls"] + st["auth"]
        peak_queued = max(peak_queued, st["queued"])
        peak_pending = max(peak_pending, pending)
        peak_vg = max(peak_vg, upstream_conns(vg))
        peak_db = max(peak_db, threads_connected(direct))
        time.sleep(0.1)

    # Every dribbler is closed by the handshake timeout, queued or not.
    closed = 0
    for s in clients:
        s.setblocking(True)
        s.settimeout(max(0.1, t0 + timeout + 3 - time.time()))
        try:
            while s.recv(65536):
                pass  # a greeting, for those that got a slot
            closed += 1
        except ConnectionResetError:
            pass
        except socket.timeout:
            pass
        s.close()
    nt.join(15)
    print(f"\n40 slow logins, max_pending_logins {limit}: vecgate's database connections "
          f"{base_vg} -> peak {peak_vg}; Threads_connected {base_db} -> peak {peak_db}; "
          f"peak queued {peak_queued}, peak pending {peak_pending}; normal client "
          f"{normal}")
    assert closed == 40, f"{40 - closed} slow clients were not closed cleanly"
    assert peak_pending <= limit
    assert peak_queued >= 40 - limit
    assert peak_vg <= limit + spares + 3, f"vecgate held {peak_vg} database connections"
    assert normal.get("row") == ("normal",), normal
    assert vg.proc.poll() is None
    deadline = time.time() + 5
    while time.time() < deadline:
        st = by_state(vg)
        if st["queued"] == 0 and st["greeted"] == 0 and st["closing"] == 0:
            break
        time.sleep(0.1)
    assert st["queued"] == st["wait_upstream"] == st["greeted"] == st["auth"] == 0, st
    assert vg.metric("vecgate_client_sessions", state="queued") == 0
    still_serving(vg)
    direct.close()
    assert vg.stop() == 0


def expect_greeting(s, within):
    s.settimeout(within)
    seq, greeting = read_packet(s)
    assert seq == 0 and greeting[0] == 10
    s.settimeout(10)


def expect_no_greeting(s, within=0.5):
    s.settimeout(within)
    with pytest.raises(socket.timeout):
        s.recv(1)
    s.settimeout(10)


def test_login_slot_frees_when_a_login_ends(make_vecgate):
    """With one slot: the next client gets its greeting as soon as the login
    ahead of it succeeds, is refused, or its client goes away."""
    vg = make_vecgate(server__max_pending_logins="1", server__handshake_timeout="5s")
    a = socket.create_connection((vg.host, vg.port), timeout=10)
    expect_greeting(a, 5)
    b = socket.create_connection((vg.host, vg.port), timeout=10)
    expect_no_greeting(b)
    assert by_state(vg)["queued"] == 1
    assert vg.metric("vecgate_client_sessions", state="queued") == 1

    a.sendall(handshake_response())  # succeeds
    assert read_packet(a)[1][0] == 0x00
    expect_greeting(b, 2)
    c = socket.create_connection((vg.host, vg.port), timeout=10)
    expect_no_greeting(c)

    b.sendall(handshake_response(user=b"no_such_user_x"))  # refused
    _, p = read_packet(b)
    assert p[0] == 0xFF and p[1] | p[2] << 8 == 1045
    expect_greeting(c, 2)
    d = socket.create_connection((vg.host, vg.port), timeout=10)
    expect_no_greeting(d)

    c.close()  # gone while logging in
    expect_greeting(d, 2)
    d.sendall(handshake_response())
    assert read_packet(d)[1][0] == 0x00

    # Logged-in sessions do not hold slots.
    for s in (a, d):
        s.sendall(query("SELECT 5"))
        assert read_result(s) == ("rows", [[b"5"]])
    still_serving(vg)
    for s in (a, b, d):
        s.close()
    assert vg.stop() == 0


def test_sighup_raises_max_pending_logins(make_vecgate):
    vg = make_vecgate(server__max_pending_logins="1", server__handshake_timeout="10s")
    a = socket.create_connection((vg.host, vg.port), timeout=10)
    expect_greeting(a, 5)
    b = socket.create_connection((vg.host, vg.port), timeout=10)
    expect_no_greeting(b)
    vg.conf.write_text(vg.conf.read_text().replace("max_pending_logins = 1",
                                                   "max_pending_logins = 3"))
    vg.proc.send_signal(signal.SIGHUP)
    expect_greeting(b, 3)
    assert json.loads(vg.admin("/status"))["config"]["server"]["max_pending_logins"] == 3
    b.sendall(handshake_response())
    assert read_packet(b)[1][0] == 0x00
    a.close()
    b.close()
    assert vg.stop() == 0
