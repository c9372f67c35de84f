"""Bad input, limits, timeouts, signals and configuration errors: a client
that misbehaves gets an error or is closed, vecgate keeps running, and other
sessions do not notice."""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import time

import pymysql
import pytest

from conftest import TOP, commit_and_expect_exit, open_transaction


def read_packet(sock):
    hdr = recv_exact(sock, 4)
    n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
    return hdr[3], recv_exact(sock, n)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def raw_connect(vg):
    s = socket.create_connection((vg.host, vg.port), timeout=10)
    seq, greeting = read_packet(s)
    assert seq == 0 and greeting[0] == 10
    return s


def handshake_response(user=b"root", seq=1, caps=0x000FA685):
    # PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | ...; no SSL, no db.
    body = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + user + b"\0" + b"\0"
    body += b"mysql_native_password\0"
    return packet(seq, body)


def expect_err(sock):
    """The next packet is an ERR; returns (code, message)."""
    _, p = read_packet(sock)
    assert p[0] == 0xFF, p
    code = p[1] | p[2] << 8
    msg = p[9:].decode() if p[3:4] == b"#" else p[3:].decode()
    return code, msg


def expect_closed(sock, within=5.0):
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass


def still_serving(vg):
    with vg.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


@pytest.fixture(scope="module")
def vg(db, tmp_path_factory):
    from conftest import Vecgate
    v = Vecgate(db, tmp_path_factory.mktemp("robust"), server__handshake_timeout="1s",
                server__max_packet_size="1M").start()
    yield v
    assert v.stop() == 0


def test_garbage_handshake_gets_bad_handshake(vg):
    s = raw_connect(vg)
    s.sendall(packet(1, b"\x01\x02hello"))
    assert expect_err(s) == (1043, "Bad handshake")
    expect_closed(s)
    still_serving(vg)


def test_wrong_sequence_id(vg):
    s = raw_connect(vg)
    s.sendall(handshake_response(seq=5))
    code, msg = expect_err(s)
    assert code == 1156 and "out of order" in msg
    expect_closed(s)
    still_serving(vg)


def test_plaintext_login_then_commands(vg):
    s = raw_connect(vg)
    s.sendall(handshake_response())
    seq, ok = read_packet(s)
    assert ok[0] == 0x00 and seq == 2
    s.sendall(packet(0, b"\x03SELECT 7"))
    packets = [read_packet(s)[1] for _ in range(5)]
    # Column count, its definition, EOF, the row "7", EOF (no DEPRECATE_EOF).
    assert packets[0] == b"\x01" and packets[3] == b"\x017"
    assert packets[2][0] == packets[4][0] == 0xFE
    # An empty command packet is not a command.
    s.sendall(packet(0, b""))
    assert expect_err(s)[0] == 1047
    expect_closed(s)


def login_raw(vg):
    s = raw_connect(vg)
    s.sendall(handshake_response())
    assert read_packet(s)[1][0] == 0x00
    return s


def test_oversized_command_is_refused(vg):
    s = login_raw(vg)
    # Only the header of a 2 MiB command: the refusal must not wait for the body.
    s.sendall(struct.pack("<I", 2 << 20)[:3] + b"\x00" + b"\x03SELECT '")
    code, msg = expect_err(s)
    assert code == 1153 and "max_allowed_packet" in msg
    expect_closed(s)
    still_serving(vg)


def test_command_with_wrong_sequence(vg):
    s = login_raw(vg)
    s.sendall(packet(3, b"\x03SELECT 1"))
    assert expect_err(s)[0] == 1156
    expect_closed(s)


def test_silent_client_is_closed_after_handshake_timeout(vg):
    s = raw_connect(vg)
    t0 = time.time()
    expect_closed(s, within=5)
    assert 0.5 < time.time() - t0 < 4


def test_half_packets_and_random_bytes_do_not_hurt(vg):
    rng = random.Random(7)
    with vg.connect() as bystander, bystander.cursor() as cur:
        for i in range(200):
            s = raw_connect(vg)
            kind = i % 4
            if kind == 0:
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
            elif kind == 1:
                s.sendall(handshake_response()[: rng.randrange(1, 40)])
            elif kind == 2:
                s.sendall(handshake_response())
                read_packet(s)
                s.sendall(packet(0, bytes([rng.randrange(0x20)]) +
                                 bytes(rng.randrange(256) for _ in range(rng.randrange(50)))))
            else:
                s.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(100))  # a TLS hello, no SSLRequest
            s.close()
            if i % 50 == 0:
                cur.execute("SELECT %s", (i,))
                assert cur.fetchone() == (i,)
    still_serving(vg)
    assert json.loads(vg.admin("/status"))["upstreams"][0]["healthy"]


def test_too_many_connections(make_vecgate):
    vg = make_vecgate(server__max_client_conns="2")
    a, b = vg.connect(), vg.connect()
    with pytest.raises(pymysql.err.OperationalError) as e:
        vg.connect()
    assert e.value.args[0] == 1040
    a.close()
    time.sleep(0.2)
    vg.connect().close()
    b.close()


def test_require_tls_refuses_plaintext(make_vecgate):
    vg = make_vecgate(server__require_tls="true")
    with pytest.raises(pymysql.err.OperationalError) as e:
        pymysql.connect(host=vg.host, port=vg.port, user="root", password="", ssl_disabled=True)
    assert e.value.args[0] == 3159
    assert "insecure transport" in e.value.args[1]
    vg.connect().close()


def test_sigterm_drains_statements_in_flight(make_vecgate):
    import threading
    vg = make_vecgate(server__drain_timeout="10s")
    result = {}

    def slow():
        with vg.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT SLEEP(1.5), 'done'")
            result["row"] = cur.fetchone()

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    vg.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(pymysql.err.OperationalError):
        vg.connect()  # no longer accepting
    t.join(10)
    assert result.get("row") == (0, "done")
    assert vg.proc.wait(10) == 0


def test_sigterm_waits_for_open_transaction(make_vecgate, schema):
    vg = make_vecgate(server__drain_timeout="10s")
    conn = open_transaction(vg, schema)
    vg.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    commit_and_expect_exit(vg, conn, schema)


def test_sighup_reloads_limits_and_log_level(make_vecgate):
    vg = make_vecgate(server__max_client_conns="50")
    text = vg.conf.read_text().replace("max_client_conns = 50", "max_client_conns = 1")
    text = text.replace("log_level = debug", "log_level = warn")
    vg.conf.write_text(text)
    vg.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while json.loads(vg.admin("/status"))["config"]["server"]["max_client_conns"] != 1:
        assert time.time() < deadline, "reload not applied"
        time.sleep(0.05)
    assert json.loads(vg.admin("/status"))["config"]["server"]["log_level"] == "warn"
    a = vg.connect()
    with pytest.raises(pymysql.err.OperationalError) as e:
        vg.connect()
    assert e.value.args[0] == 1040
    a.close()
    # A broken file on SIGHUP keeps the running configuration.
    vg.conf.write_text(text + "\nbogus_key = 1\n")
    vg.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert vg.proc.poll() is None
    assert json.loads(vg.admin("/status"))["config"]["server"]["max_client_conns"] == 1


def run_vecgate(*args):
    return subprocess.run([str(TOP / "build" / "vecgate"), *args], capture_output=True,
                          text=True, timeout=20, cwd=TOP)


def test_config_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nlisten = 127.0.0.1:4100\nmax_client_conns = lots\n[nope]\n")
    r = run_vecgate("--config", str(bad))
    assert r.returncode == 2
    assert f"{bad}:3:" in r.stderr and "max_client_conns" in r.stderr
    bad.write_text("[server]\n\nunknown_key = 1\n")
    r = run_vecgate("--config", str(bad), "--check-config")
    assert r.returncode == 2 and f"{bad}:3: unknown key 'unknown_key'" in r.stderr


def test_shipped_configs_check(db):
    assert run_vecgate("--config", "conf/vecgate.conf", "--check-config").returncode == 0
    r = run_vecgate("--config", "conf/local-tidb.conf", "--check-config")
    assert r.returncode == 0, r.stderr
    generated = run_vecgate("--print-default-config").stdout
    assert generated == (TOP / "conf" / "vecgate.conf").read_text()
    assert run_vecgate("--version").stdout.startswith("vecgate ")
    assert "--config" in run_vecgate("--help").stdout


def test_readme_lists_every_config_key():
    readme = (TOP / "README.md").read_text()
    section = None
    for line in run_vecgate("--print-default-config").stdout.splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section and " = " in line + " " and not line.startswith("#") and line.strip():
            key = line.split("=")[0].strip()
            assert f"`[{section}] {key}`" in readme, f"README lacks [{section}] {key}"
