"""One upstream description for every link to the database: the sessions'
pool and the cache's own connections (snapshot loads, patches) go to the
same healthy servers and verify the same things (docs/design.md §5).

A TLS-terminating relay stands in front of the database where a test needs
to see or shape a link's TLS: it answers with its own certificate (signed by
the test CA, for a name of the test's choosing), its own TLS versions, and
asks for a client certificate; it records for every connection the SNI, the
negotiated version, the client certificate and the user that logged in. The
cache logs in as its own user, so its connections are told apart from the
sessions'."""
import asyncio
import json
import os
import random
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pymysql
import pytest

from conftest import TOP, Vecgate

SCHEMA = "upstream_target"
LOADER = "vg_target_loader"
LOADER_PW = "loader-pw-7"
ROWS = 50


def binary():
    return os.environ.get("VECGATE_BINARY", str(TOP / "build" / "vecgate"))


# ---- certificates ----

def make_cert(tmp_path, ca_pem, name, cn, sans=None, client=False):
    """A key and certificate signed by the test CA (never touching its
    directory: a random serial, no serial file)."""
    ca_dir = Path(ca_pem).parent
    key, csr, cert = (tmp_path / f"{name}-key.pem", tmp_path / f"{name}.csr",
                      tmp_path / f"{name}.pem")
    ext = tmp_path / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE",
             "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth")]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-subj", f"/CN={cn}", "-out", str(csr)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.pem"),
                    "-CAkey", str(ca_dir / "ca-key.pem"), "-set_serial",
                    str(random.getrandbits(63)), "-days", "2", "-extfile", str(ext),
                    "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


# ---- the relay ----

async def recv_exactly(loop, sock, n):
    """Exactly n bytes and not one more: what follows (a ClientHello right
    behind the SSLRequest) stays in the socket for TLS to read."""
    data = b""
    while len(data) < n:
        got = await loop.sock_recv(sock, n - len(data))
        if not got:
            raise ConnectionResetError("peer closed")
        data += got
    return data


async def recv_packet(loop, sock):
    hdr = await recv_exactly(loop, sock, 4)
    return hdr + await recv_exactly(loop, sock, hdr[0] | hdr[1] << 8 | hdr[2] << 16)


async def read_packet(r):
    hdr = await r.readexactly(4)
    return hdr + await r.readexactly(hdr[0] | hdr[1] << 8 | hdr[2] << 16)


class TlsRelay:
    def __init__(self, db, cert, key, max_version=None):
        self.db, self.cert, self.key, self.max_version = db, cert, key, max_version
        self.conns = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.listener.close()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self._accept())
        self.loop.run_forever()
        tasks = asyncio.all_tasks(self.loop)
        for t in tasks:
            t.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    async def _accept(self):
        while True:
            sock, _ = await self.loop.sock_accept(self.listener)
            self.loop.create_task(self._handle(sock))

    def records(self, user=None):
        with self.lock:
            return [dict(c) for c in self.conns if user is None or c["user"] == user]

    def _client_ctx(self, rec):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        if self.max_version:
            ctx.maximum_version = self.max_version
        # Asked for, not required: the record says whether one came.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(self.db.ca)

        def sni(obj, name, _ctx):
            rec["sni"] = name
        ctx.sni_callback = sni
        return ctx

    async def _streams(self, sock, ctx=None, server_side=False):
        reader = asyncio.StreamReader()
        proto = asyncio.StreamReaderProtocol(reader)
        if server_side:
            transport, _ = await self.loop.connect_accepted_socket(lambda: proto, sock, ssl=ctx)
        else:
            transport, _ = await self.loop.create_connection(
                lambda: proto, sock=sock, ssl=ctx, server_hostname="" if ctx else None)
        return reader, asyncio.StreamWriter(transport, proto, reader, self.loop)

    async def _handle(self, csock):
        loop = self.loop
        rec = {"sni": None, "version": None, "client_cn": None, "user": None, "error": None}
        with self.lock:
            self.conns.append(rec)
        usock = socket.socket()
        usock.setblocking(False)
        cw = uw = None
        try:
            await loop.sock_connect(usock, (self.db.host, self.db.port))
            await loop.sock_sendall(csock, await recv_packet(loop, usock))
            pkt = await recv_packet(loop, csock)
            await loop.sock_sendall(usock, pkt)
            tls = len(pkt) - 4 == 32 and int.from_bytes(pkt[4:8], "little") & 0x800
            if tls:
                up = ssl.create_default_context(cafile=self.db.ca)
                up.check_hostname = False
                ur, uw = await self._streams(usock, up)
                try:
                    cr, cw = await self._streams(csock, self._client_ctx(rec), server_side=True)
                except (ssl.SSLError, OSError) as e:
                    rec["error"] = str(e)
                    return
                obj = cw.get_extra_info("ssl_object")
                rec["version"] = obj.version()
                subject = dict(x[0] for x in (obj.getpeercert() or {}).get("subject", ()))
                rec["client_cn"] = subject.get("commonName")
                try:
                    pkt = await read_packet(cr)
                except (asyncio.IncompleteReadError, OSError, ssl.SSLError):
                    return  # a client that only wanted the handshake
                rec["user"] = pkt[4 + 32:].split(b"\0", 1)[0].decode()
                uw.write(pkt)
                await uw.drain()
            else:
                rec["user"] = pkt[4 + 32:].split(b"\0", 1)[0].decode()
                ur, uw = await self._streams(usock)
                cr, cw = await self._streams(csock)

            async def pipe(r, w):
                try:
                    while data := await r.read(65536):
                        w.write(data)
                        await w.drain()
                except (OSError, ssl.SSLError):
                    pass
                finally:
                    w.close()
            await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as e:
            rec["error"] = rec["error"] or repr(e)
        finally:
            for w in (cw, uw):
                if w:
                    w.close()
            if not cw:
                csock.close()
            if not uw:
                usock.close()


# ---- the database side ----

@pytest.fixture(scope="module")
def table(db):
    with db.connect(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SCHEMA}")
        cur.execute(f"CREATE DATABASE {SCHEMA}")
        cur.execute(f"CREATE TABLE {SCHEMA}.t (id INT PRIMARY KEY, embedding {db.vector_type(3)})")
        vals = ",".join(f"({i}, '[{i},{i + 1},{i + 2}]')" for i in range(ROWS))
        cur.execute(f"INSERT INTO {SCHEMA}.t VALUES {vals}")
        for host in ("%", "localhost"):
            cur.execute(f"DROP USER IF EXISTS '{LOADER}'@'{host}'")
            cur.execute(f"CREATE USER '{LOADER}'@'{host}' IDENTIFIED BY '{LOADER_PW}'")
            cur.execute(f"GRANT SELECT ON {SCHEMA}.* TO '{LOADER}'@'{host}'")
    yield f"{SCHEMA}.t"
    with db.connect(autocommit=True) as conn, conn.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(f"DROP USER IF EXISTS '{LOADER}'@'{host}'")
        cur.execute(f"DROP DATABASE IF EXISTS {SCHEMA}")


def cached_vecgate(db, tmp_path, table, **overrides):
    kw = dict(cache__tables=f"{table}(embedding)", cache__user=LOADER,
              cache__password=LOADER_PW)
    kw.update(overrides)
    return Vecgate(db, tmp_path, **kw)


def table_status(vg, table):
    for t in json.loads(vg.admin("/status")).get("cache", []):
        if t["table"] == table:
            return t
    return None


def wait_load(vg, table, timeout=20):
    """The table's status once it loaded or its first load failed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = table_status(vg, table)
        if t and (t["state"] == "ready" or t["last_error"]):
            return t
        time.sleep(0.05)
    raise AssertionError(f"no load outcome: {vg.admin('/status')}")


def session_works(vg):
    try:
        with vg.connect() as c, c.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    except pymysql.err.OperationalError:
        return False


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound, never listening: connections are refused
    return port


# ---- the tests ----

@pytest.mark.parametrize("spares", ["0", "2"])
def test_load_goes_past_a_server_that_is_down(db, table, tmp_path, spares):
    """First server refuses connections, second is the database: the load
    succeeds. With no spares the load itself finds the first server down,
    and the sessions' pool then avoids it too."""
    down = closed_port()
    vg = cached_vecgate(db, tmp_path, table,
                        upstream__servers=f"127.0.0.1:{down}, {db.host}:{db.port}",
                        upstream__pool_spares=spares).start()
    try:
        t = wait_load(vg, table)
        assert t["state"] == "ready", t
        assert t["rows"] == ROWS
        ups = json.loads(vg.admin("/status"))["upstreams"]
        assert ups[0]["server"] == f"127.0.0.1:{down}"
        assert ups[0]["healthy"] is False, ups
        assert ups[1]["healthy"] is True, ups
        if spares == "0":
            # The cache's failed connection is what marked it down (the
            # pool then probes it, and the last error becomes the probe's).
            assert f"upstream 127.0.0.1:{down}: cache connection: connect to" in \
                vg.log.read_text(), vg.log.read_text()[-3000:]
        assert session_works(vg)
        ups = json.loads(vg.admin("/status"))["upstreams"]
        assert ups[1]["handed_out"] >= 1 and ups[0]["handed_out"] == 0, ups
    finally:
        assert vg.stop() == 0


def test_load_with_every_server_down_names_each(db, table, tmp_path):
    a, b = closed_port(), closed_port()
    vg = cached_vecgate(db, tmp_path, table, upstream__servers=f"127.0.0.1:{a}, 127.0.0.1:{b}",
                        upstream__pool_spares="0").start()
    try:
        t = wait_load(vg, table)
        assert t["state"] == "failed", t
        assert f"127.0.0.1:{a}" in t["last_error"] and f"127.0.0.1:{b}" in t["last_error"], t
    finally:
        assert vg.stop() == 0


@pytest.fixture(scope="module")
def named_cert(db, tmp_path_factory):
    """A server certificate for db.vecgate.test only (no address in it)."""
    return make_cert(tmp_path_factory.mktemp("certs"), db.ca, "named", "db.vecgate.test",
                     sans=["DNS:db.vecgate.test"])


def test_name_other_than_the_address_is_verified(db, table, tmp_path, named_cert):
    """Servers are listed by address, the certificate names a host:
    tls_server_name makes both links check that name (libmariadb cannot
    itself), and nothing reaches the database without the check."""
    with TlsRelay(db, *named_cert) as relay:
        vg = cached_vecgate(db, tmp_path, table, upstream__servers=f"127.0.0.1:{relay.port}",
                            upstream__tls_server_name="db.vecgate.test").start()
        try:
            t = wait_load(vg, table)
            assert t["state"] == "ready" and t["rows"] == ROWS, t
            assert session_works(vg)
        finally:
            assert vg.stop() == 0
        loads = relay.records(LOADER)
        assert loads and all(r["version"] for r in loads), relay.records()
        sessions = relay.records(db.user)
        assert sessions and all(r["sni"] == "db.vecgate.test" for r in sessions), sessions
        # The cache's own check sent the name as SNI, as sessions do.
        assert any(r["sni"] == "db.vecgate.test" and r["user"] is None
                   for r in relay.records()), relay.records()


@pytest.mark.parametrize("name", ["other.vecgate.test", None])
def test_certificate_for_another_name_is_refused_by_every_link(db, table, tmp_path, named_cert,
                                                               name):
    """A certificate that does not match tls_server_name (or, without one,
    the address): the load fails verification and sessions refuse too; the
    cache user's login never reaches the database."""
    over = {"upstream__tls_server_name": name} if name else {}
    with TlsRelay(db, *named_cert) as relay:
        vg = cached_vecgate(db, tmp_path, table, upstream__servers=f"127.0.0.1:{relay.port}",
                            **over).start()
        try:
            t = wait_load(vg, table)
            assert t["state"] == "failed", t
            err = t["last_error"].lower()
            assert "certificate" in err or "ssl" in err or "tls" in err, t
            if name:
                assert "hostname mismatch" in err, t
            assert not session_works(vg)
            ups = json.loads(vg.admin("/status"))["upstreams"]
            assert ups[0]["healthy"] is False, ups
        finally:
            assert vg.stop() == 0
        assert relay.records(LOADER) == [], relay.records()
        assert relay.records(db.user) == [], relay.records()


@pytest.mark.parametrize("relay_max,minimum,want", [
    (None, "1.3", "TLSv1.3"),
    (ssl.TLSVersion.TLSv1_2, "1.2", "TLSv1.2"),
    (ssl.TLSVersion.TLSv1_2, "1.3", None),
])
def test_tls_min_version_holds_for_the_loader(db, table, tmp_path, named_cert, relay_max,
                                              minimum, want):
    """The loader negotiates what the relay offers above the minimum, and
    refuses a server that offers only less (as sessions do)."""
    with TlsRelay(db, *named_cert, max_version=relay_max) as relay:
        vg = cached_vecgate(db, tmp_path, table, upstream__servers=f"127.0.0.1:{relay.port}",
                            upstream__tls_server_name="db.vecgate.test",
                            upstream__tls_min_version=minimum).start()
        try:
            t = wait_load(vg, table)
            assert (t["state"] == "ready") == (want is not None), (t["state"], t["last_error"])
            assert session_works(vg) == (want is not None)
        finally:
            assert vg.stop() == 0
        loads = relay.records(LOADER)
        if want:
            assert loads and {r["version"] for r in loads} == {want}, relay.records()
        else:
            assert loads == []
            assert all(r["version"] is None for r in relay.records()), relay.records()


def test_min_version_on_the_address_path(db, table, tmp_path):
    """Without tls_server_name libmariadb verifies by itself: the minimum
    still reaches it (the relay's certificate names the address)."""
    cert = make_cert(tmp_path, db.ca, "addr", "127.0.0.1", sans=["IP:127.0.0.1"])
    with TlsRelay(db, *cert, max_version=ssl.TLSVersion.TLSv1_2) as relay:
        vg = cached_vecgate(db, tmp_path, table, upstream__servers=f"127.0.0.1:{relay.port}",
                            upstream__tls_min_version="1.3").start()
        try:
            t = wait_load(vg, table)
            assert t["state"] == "failed", t
        finally:
            assert vg.stop() == 0
        assert relay.records(LOADER) == []
    (tmp_path / "b").mkdir()
    with TlsRelay(db, *cert) as relay:
        vg = cached_vecgate(db, tmp_path / "b", table,
                            upstream__servers=f"127.0.0.1:{relay.port}",
                            upstream__tls_min_version="1.3").start()
        try:
            t = wait_load(vg, table)
            assert t["state"] == "ready", t
        finally:
            assert vg.stop() == 0
        assert {r["version"] for r in relay.records(LOADER)} == {"TLSv1.3"}


def test_client_certificate_is_presented_by_the_loader(db, table, tmp_path, named_cert):
    client = make_cert(tmp_path, db.ca, "client", "vecgate-client", client=True)
    with TlsRelay(db, *named_cert) as relay:
        vg = cached_vecgate(db, tmp_path, table, upstream__servers=f"127.0.0.1:{relay.port}",
                            upstream__tls_server_name="db.vecgate.test",
                            upstream__tls_cert=client[0], upstream__tls_key=client[1]).start()
        try:
            assert wait_load(vg, table)["state"] == "ready"
            assert session_works(vg)
        finally:
            assert vg.stop() == 0
        loads, sessions = relay.records(LOADER), relay.records(db.user)
        assert loads and all(r["client_cn"] == "vecgate-client" for r in loads), loads
        assert sessions and all(r["client_cn"] == "vecgate-client" for r in sessions), sessions


class SilentListener:
    """Accepts connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        for c in self.held:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("name", [None, "db.vecgate.test"])
def test_connect_timeout_bounds_a_silent_server(db, table, tmp_path, name):
    """A server that accepts and never sends its greeting: the load gives up
    after about connect_timeout (not libmariadb's or a fixed one), on the
    address path and on the checked-name path alike."""
    silent = SilentListener()
    over = {"upstream__tls_server_name": name} if name else {}
    try:
        vg = cached_vecgate(db, tmp_path, table, upstream__servers=f"127.0.0.1:{silent.port}",
                            upstream__connect_timeout="2s", **over)
        t0 = time.monotonic()
        vg.start()
        try:
            t = wait_load(vg, table, timeout=30)
            elapsed = time.monotonic() - t0
            assert t["state"] == "failed", t
            assert 1.8 <= elapsed <= 5.0, (elapsed, t)
        finally:
            assert vg.stop() == 0
    finally:
        silent.close()


def check_config(tmp_path, text):
    conf = tmp_path / "check.conf"
    conf.write_text(text)
    return subprocess.run([binary(), "--check-config", "--config", str(conf)],
                          capture_output=True, text=True, timeout=20), conf


def test_check_config_warns_about_weaker_links(tmp_path):
    r, conf = check_config(tmp_path, "[upstream]\ntls_verify = false\n[cache]\ntables = auto\n"
                                     "[admin]\nlisten = 0.0.0.0:9100\n")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert f"{conf}: warning: [upstream] tls_verify = false: no link checks TiDB's certificate, " \
           "so anyone on the path can impersonate TiDB to sessions, snapshot loads and patches" \
           in lines, lines
    assert any("[server] tls_cert is empty while [upstream] tls is on" in x for x in lines)
    assert any("[admin] listen = 0.0.0.0:9100 is not a loopback address" in x for x in lines)
    assert len(lines) == 3, lines
    assert r.stdout.strip() == f"{conf}: configuration OK (3 warnings)"


def test_check_config_refuses_a_malformed_server_name(tmp_path):
    r, conf = check_config(tmp_path, "[upstream]\ntls_server_name = db..example\n")
    assert r.returncode == 2
    assert r.stderr.strip() == f"{conf}: [upstream] tls_server_name 'db..example' has an empty label"
