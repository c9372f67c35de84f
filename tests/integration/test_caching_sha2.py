"""caching_sha2_password through vecgate.

The test database standing in for TiDB here (MariaDB) has no
caching_sha2_password, so the upstream in this file is a scripted server that
performs TiDB's side of the exchange as pkg/server/conn.go (authSha) does it:
greeting naming caching_sha2_password, "perform full authentication"
(0x01 0x04) for every non-empty scramble, then the password in clear over
TLS. What is under test is vecgate: a TLS client's password is relayed, and a
plaintext client's RSA exchange is answered by vecgate with its own key and
the decrypted password passed on to the upstream over TLS."""
import os
import socket
import ssl
import struct
import threading
from pathlib import Path

import pymysql
import pytest

from conftest import Vecgate, free_port

PASSWORD = "s3cret-pw"


def read_packet(sock):
    hdr = b""
    while len(hdr) < 4:
        chunk = sock.recv(4 - len(hdr))
        if not chunk:
            raise ConnectionError
        hdr += chunk
    n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise ConnectionError
        body += chunk
    return hdr[3], body


def send_packet(sock, seq, payload):
    sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


OK = b"\x00\x00\x00\x02\x00\x00\x00"


class TidbAuthUpstream:
    """Speaks TiDB's caching_sha2 login, then answers every command with OK."""

    caps = 0x051BA6AF | 0x800 | 0x80000  # TiDB's flags, SSL, PLUGIN_AUTH

    def __init__(self, certs):
        self.port = free_port()
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(certs / "server.pem", certs / "server-key.pem")
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.received = []  # (user, password bytes, over_tls)
        self.stop = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            self.session(conn)
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def session(self, sock):
        salt = bytes(0x21 + b % 90 for b in os.urandom(20))
        greeting = (b"\x0a" + b"8.0.11-TiDB-v8.5.6\x00" + struct.pack("<I", 7) + salt[:8] + b"\x00"
                    + struct.pack("<H", self.caps & 0xFFFF) + b"\x2e" + struct.pack("<H", 2)
                    + struct.pack("<H", self.caps >> 16) + bytes([21]) + b"\x00" * 10
                    + salt[8:] + b"\x00" + b"caching_sha2_password\x00")
        send_packet(sock, 0, greeting)
        seq, resp = read_packet(sock)
        tls = False
        if len(resp) == 32 and struct.unpack("<I", resp[:4])[0] & 0x800:
            sock = self.ctx.wrap_socket(sock, server_side=True)
            tls = True
            seq, resp = read_packet(sock)
        caps = struct.unpack("<I", resp[:4])[0]
        pos = 32
        user_end = resp.index(b"\x00", pos)
        user = resp[pos:user_end].decode()
        pos = user_end + 1
        if caps & 0x200000:  # lenenc auth data
            n = resp[pos]
            pos += 1
        else:
            n = resp[pos]
            pos += 1
        scramble = resp[pos:pos + n]
        if not scramble:
            self.received.append((user, b"", tls))
            send_packet(sock, seq + 1, b"\xff\x15\x04#28000Access denied (no password)")
            return
        send_packet(sock, seq + 1, b"\x01\x04")  # perform full authentication
        seq, pw = read_packet(sock)
        password = pw.strip(b"\x00")
        self.received.append((user, password, tls))
        if password != PASSWORD.encode() or not tls:
            send_packet(sock, seq + 1, b"\xff\x15\x04#28000Access denied for user '"
                        + user.encode() + b"'@'127.0.0.1' (using password: YES)")
            return
        send_packet(sock, seq + 1, OK)
        while True:
            seq, cmd = read_packet(sock)
            if cmd[:1] == b"\x01":
                return
            send_packet(sock, 1, OK)

    def close(self):
        self.stop = True
        self.sock.close()


@pytest.fixture
def sha2_vecgate(db, tmp_path):
    certs = Path(db.ca).parent
    up = TidbAuthUpstream(certs)

    class Upstream:
        host, port, ca, user, password = "127.0.0.1", up.port, db.ca, "root", ""
    vg = Vecgate(Upstream, tmp_path).start()
    yield vg, up
    vg.stop()
    up.close()


def test_plaintext_client_rsa_exchange(sha2_vecgate):
    vg, up = sha2_vecgate
    conn = pymysql.connect(host=vg.host, port=vg.port, user="alice", password=PASSWORD,
                           ssl_disabled=True)
    conn.ping(reconnect=False)
    conn.close()
    user, password, tls = up.received[-1]
    assert (user, password, tls) == ("alice", PASSWORD.encode(), True)


def test_tls_client_password_is_relayed(sha2_vecgate):
    vg, up = sha2_vecgate
    conn = pymysql.connect(host=vg.host, port=vg.port, user="bob", password=PASSWORD,
                           ssl_ca=vg.ca, ssl_verify_cert=True, ssl_verify_identity=True)
    conn.ping(reconnect=False)
    conn.close()
    assert up.received[-1] == ("bob", PASSWORD.encode(), True)


def test_wrong_password_is_refused_by_upstream(sha2_vecgate):
    vg, up = sha2_vecgate
    for kw in ({"ssl_disabled": True}, {"ssl_ca": vg.ca, "ssl_verify_cert": True}):
        with pytest.raises(pymysql.err.OperationalError) as e:
            pymysql.connect(host=vg.host, port=vg.port, user="carol", password="nope", **kw)
        assert e.value.args[0] == 1045
        assert up.received[-1][:2] == ("carol", b"nope")
