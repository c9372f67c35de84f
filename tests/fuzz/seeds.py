#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<driver>/.

Two sources:
  * the statements, vector literals, requests and byte arrays of the unit
    and integration tests (always);
  * with --capture, real traffic: a relay in front of the test database
    (tools/tidb) records what PyMySQL (text protocol) and mysql-connector's
    prepared cursors (binary protocol) send and receive, and the packets are
    cut into seeds for the framing, handshake, command and response drivers.

Each seed is named by the SHA-1 of its bytes, as libFuzzer names its own, so
running the script again adds nothing twice. The layout of each driver's
leading parameter bytes is described in the driver's own comment.
"""
import argparse
import ast
import hashlib
import json
import os
import re
import socket
import struct
import sys
import threading

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(TOP, "tests", "fuzz", "corpus")
MAX_SEED = 4096
MAX_PER_DRIVER = 60

counts = {}  # seeds added by this run
present = {}  # seeds in the corpus directory


def put(driver, data):
    d = os.path.join(CORPUS, driver)
    if driver not in present:
        present[driver] = len(os.listdir(d)) if os.path.isdir(d) else 0
    if len(data) > MAX_SEED or present[driver] >= MAX_PER_DRIVER:
        return
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        counts[driver] = counts.get(driver, 0) + 1
        present[driver] += 1


def c_strings(path):
    """The C string literals of a file, adjacent ones joined, escapes read."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"(?:\s*"(?:[^"\\\n]|\\.)*")*', text):
        parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(0))
        raw = "".join(parts)
        try:
            val = ast.literal_eval('b"' + raw.replace('"', '\\"') + '"') if raw.isascii() else None
        except (ValueError, SyntaxError):
            val = None
        if val is None:
            val = raw.encode()
        out.append(val)
    return out


def py_strings(path):
    out = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value.encode())
    return out


SQL_START = re.compile(rb"^\s*(/\*.*?\*/\s*)?(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH|SET|BEGIN|"
                       rb"START|COMMIT|ROLLBACK|CREATE|ALTER|DROP|USE|SHOW|EXPLAIN|TABLE|VALUES|"
                       rb"GRANT|LOCK|DO|PREPARE|ANALYZE|TRUNCATE|RENAME|LOAD|IMPORT|FLASHBACK|SAVEPOINT|"
                       rb"KILL|FLUSH|DESC)\b", re.I | re.S)


def unit(name):
    return os.path.join(TOP, "tests", "unit", name)


def static_seeds():
    knn = [s for s in c_strings(unit("test_sql_knn.c")) if SQL_START.match(s)]
    cls = [s for s in c_strings(unit("test_sql_classify.c")) if SQL_START.match(s)]
    lex = [s for s in c_strings(unit("test_sql_lex.c")) if len(s) > 2]
    keys = [s for s in c_strings(unit("test_sql_keys.c")) if SQL_START.match(s)]
    integ = []
    for f in sorted(os.listdir(os.path.join(TOP, "tests", "integration"))):
        if f.endswith(".py"):
            integ += [s for s in py_strings(os.path.join(TOP, "tests", "integration", f))
                      if SQL_START.match(s) and b"{" not in s]
    stmts = knn + cls + keys + integ
    # Lexer: flags byte (0 plain, 1 NO_BACKSLASH_ESCAPES, 2 ANSI_QUOTES, 4 expand).
    for i, s in enumerate(lex + stmts[::3]):
        put("fuzz_sql_lex", bytes([(0, 1, 2, 4)[i % 4]]) + s)
    for i, s in enumerate(cls + integ + knn[::4] + keys[::4]):
        put("fuzz_sql_classify", bytes([i % 2]) + s)
    multi = b";".join(cls[:4]) if cls else b"SELECT 1;SELECT 2"
    put("fuzz_sql_classify", b"\x00" + multi)
    # kNN: 0x80 = SQL_KNN_DQUOTE_STRINGS.
    for i, s in enumerate(knn + integ):
        put("fuzz_sql_knn", bytes([0x80 if i % 3 else 0]) + s)
    # Keys: table shape, flags, session, then no parameters.
    for s in keys:
        low = s.lower()
        shape = (1 if b"users" in low else 2 if b"docs" in low else 3 if b"pairs" in low else 0)
        put("fuzz_sql_keys", bytes([shape, 0, 0, 0]) + s)
    put("fuzz_sql_keys", bytes([0, 0, 0, 2, 2, 1]) + b"7" + bytes([0, 0]) +
        b"UPDATE items SET v = ? WHERE id = ?")
    # Vector literals.
    vecs = [s for s in c_strings(unit("test_vec_text.c")) if s.lstrip()[:1] in (b"[", b"n", b" ")]
    vecs += [b"[1,2,3]", b"[0.5,-0.25,1e-3]", b"[]", b"null", b" [1 , 2] ", b"[1e39]",
             b"[3.4028235e38,-1.4e-45]", b"[0.1,0.2,0.30000001]", b"[1,2]x", b"[-0]"]
    for s in vecs:
        put("fuzz_vec_parse", s)
    # HTTP.
    for s in c_strings(unit("test_admin_http.c")):
        if re.match(rb"^[A-Z]+ ", s) and b"HTTP/" in s:
            put("fuzz_admin_http", s)
    for s in [b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD /health HTTP/1.0\r\n\r\n",
              b"GET /status?pretty=1 HTTP/1.1\r\nConnection: close\r\n\r\n",
              b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
              b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
              b"GET /metrics HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n"]:
        put("fuzz_admin_http", s)
    # Config: the annotated default file and the unit tests' texts.
    conf = open(os.path.join(TOP, "conf", "vecgate.conf"), "rb").read()
    put("fuzz_config", conf[:MAX_SEED])
    for s in c_strings(unit("test_config.c")):
        if b"=" in s and (b"[" in s or b"\n" in s):
            put("fuzz_config", s)
    # Rows: ncols, then per cell kind, type index, and for text a length and bytes.
    def text(kind, ty, b):
        return bytes([kind, ty, len(b)]) + b
    put("fuzz_rows", bytes([4]) + text(2, 7, b"7") + bytes([0, 13]) + text(2, 20, b"[1,2]") +
        bytes([1, 4]) + struct.pack("<d", 0.25))
    put("fuzz_rows", bytes([3]) + text(2, 3, b"1.5") + text(2, 4, b"0.1") + text(0x82, 7, b"18446744073709551615"))
    put("fuzz_rows", bytes([6]) + b"".join(text(2, i, b"-12") for i in (0, 1, 2, 8, 12, 7)))
    put("fuzz_rows", bytes([2]) + text(2, 9, b"2024-01-02") + text(2, 15, b"{}"))
    # One column of each type (the driver's col_types order) with typical texts.
    samples = [b"0", b"-1", b"255", b"-9223372036854775808", b"18446744073709551615", b"1.5",
               b"1e3", b"0.1", b"abc", b"[1,2]", b"2024-01-02 03:04:05", b"", b"{}"]
    for ty in range(28):
        sample = samples[ty % len(samples)]
        put("fuzz_rows", bytes([1]) + text(0x82 if ty % 3 == 0 else 2, ty, sample))
    put("fuzz_rows", bytes([10]) + bytes([0, 0]) * 10)
    put("fuzz_rows", bytes([7]) + b"".join(text(2, 0, b"1") for _ in range(6)) + bytes([0, 0]))
    # Connection-phase server packets as MySQL 8, TiDB and MariaDB send them.
    salt = bytes(range(0x21, 0x35))
    def greeting(version, caps, plugin, auth_len=21, mariadb=0):
        return (b"\x0a" + version + b"\x00" + struct.pack("<I", 7) + salt[:8] + b"\x00" +
                struct.pack("<HBHHB", caps & 0xFFFF, 46, 2, caps >> 16, auth_len) +
                b"\x00" * 6 + struct.pack("<I", mariadb) + salt[8:] + b"\x00" +
                (plugin + b"\x00" if caps & (1 << 19) else b""))
    full = 0xDFFFF7FF
    put("fuzz_server_auth", greeting(b"8.0.11-TiDB-v8.5.0", full, b"mysql_native_password"))
    put("fuzz_server_auth", greeting(b"8.0.36", full, b"caching_sha2_password"))
    put("fuzz_server_auth", greeting(b"5.5.5-10.11.6-MariaDB", full & ~1, b"mysql_native_password",
                                     mariadb=0x1D))
    put("fuzz_server_auth", greeting(b"5.7.25", full & ~(1 << 19), b"", auth_len=0))
    put("fuzz_server_auth", b"\x0a4.0.0\x00\x07\x00\x00\x00" + salt[:8] + b"\x00\xff\xf7")
    put("fuzz_server_auth", b"\xfemysql_native_password\x00" + salt + b"\x00")
    put("fuzz_server_auth", b"\xfecaching_sha2_password\x00" + salt + b"\x00")
    put("fuzz_server_auth", b"\xfe")
    put("fuzz_server_auth", b"\x01\x03")
    put("fuzz_server_auth", b"\x01\x04")
    put("fuzz_server_auth", b"\x01-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n")
    put("fuzz_server_auth", b"\xff\x15\x04#28000Access denied for user 'root'@'localhost'")
    put("fuzz_server_auth", b"\xff\x10\x04Too many connections")
    # Framing: split packets (a 0xFFFFFF-long first chunk cannot fit a seed,
    # so the limit and sequence rules are what these exercise).
    put("fuzz_packet", b"\x00\x01" + b"\x05\x00\x00\x00\x03SELEC" + b"\x00\x00\x00\x01")
    put("fuzz_packet", b"\x04\x00" + b"\x01\x00\x00\x00\x0e" * 4)
    put("fuzz_packet", b"\xff\xff" + b"\xff\xff\xff\x00" + b"x" * 16)
    put("fuzz_packet", b"\xff\xff" + b"\x02\x00\x00\x05\x01\x03\x07\x00\x00\x06\x00\x00\x00\x02\x00\x00\x00")
    # Packets and commands from the unit tests' byte arrays.
    for name in ("test_packet.c", "test_proto_handshake.c", "test_proto_command.c",
                 "test_proto_resp.c", "test_proto_packets.c"):
        for s in c_strings(unit(name)):
            if len(s) < 4:
                continue
            if name == "test_proto_handshake.c":
                if len(s) < 32 and s[:1] not in (b"\x01", b"\xfe", b"\xff"):
                    continue
                put("fuzz_hs_response" if s[:1] != b"\x0a" else "fuzz_server_auth", s)
            elif name == "test_proto_command.c":
                if s[:1] == b"\x17":
                    put("fuzz_stmt_execute", bytes([1, 0]) + s)
                elif s[:1] == b"\x11":
                    put("fuzz_change_user", struct.pack("<I", 0x000FA20F) + s)
            elif name == "test_packet.c":
                put("fuzz_packet", b"\xff\xff" + s)


# --- Capture ------------------------------------------------------------------

class Relay:
    """Accepts connections and forwards them to the database, recording the
    bytes each way."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(self.target)
            rec = {"c2s": bytearray(), "s2c": bytearray()}
            self.conns.append(rec)
            for a, b, k in ((c, s, "c2s"), (s, c, "s2c")):
                threading.Thread(target=self.pump, args=(a, b, rec[k]), daemon=True).start()

    @staticmethod
    def pump(a, b, out):
        while True:
            try:
                d = a.recv(65536)
            except OSError:
                d = b""
            if not d:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            out += d
            b.sendall(d)


def packets(stream):
    """Physical packets: (seq, payload, wire bytes)."""
    out, pos = [], 0
    while pos + 4 <= len(stream):
        n = stream[pos] | stream[pos + 1] << 8 | stream[pos + 2] << 16
        if pos + 4 + n > len(stream):
            break
        out.append((stream[pos + 3], bytes(stream[pos + 4:pos + 4 + n]),
                    bytes(stream[pos:pos + 4 + n])))
        pos += 4 + n
    return out


RESP_COMMANDS = [0x03, 0x17, 0x1c, 0x16, 0x04, 0x09, 0x11, 0x0e, 0x0a, 0x02, 0x1a, 0x1b, 0x1f,
                 0x01, 0x1d]
NO_REPLY = (0x01, 0x18, 0x19)


def cut_capture(rec, seed_no):
    c2s, s2c = packets(rec["c2s"]), packets(rec["s2c"])
    if not c2s or not s2c:
        return
    put("fuzz_packet", b"\x00\x40" + bytes(rec["c2s"][:MAX_SEED - 2]))
    put("fuzz_packet", b"\xff\xff" + bytes(rec["s2c"][:MAX_SEED - 2]))
    greeting = s2c[0][1]
    put("fuzz_server_auth", greeting)
    hs = c2s[0][1]
    put("fuzz_hs_response", hs)
    caps = struct.unpack_from("<I", hs)[0] if len(hs) >= 4 else 0
    # Server packets of the handshake: up to the first reply to a command.
    i = 1
    while i < len(s2c) and s2c[i][0] != 1:
        put("fuzz_server_auth", s2c[i][1])
        i += 1
    groups, cur = [], None
    for seq, payload, wire in s2c[i:]:
        if seq == 1:
            cur = []
            groups.append(cur)
        cur.append(wire)
    commands = [p for seq, p, _ in c2s if seq == 0 and p and p[0] not in NO_REPLY]
    nparams = {}
    for cmd, grp in zip(commands, groups):
        stream = b"".join(grp)
        op = cmd[0]
        if op == 0x16 and grp and grp[0][4] == 0:  # COM_STMT_PREPARE's OK
            sid, _, np = struct.unpack_from("<IHH", grp[0], 5)
            nparams[sid] = np
        if op == 0x17 and len(cmd) >= 5:
            np = nparams.get(struct.unpack_from("<I", cmd, 1)[0], 0)
            put("fuzz_stmt_execute", bytes([np, 0]) + cmd)
        if op == 0x11:
            put("fuzz_change_user", struct.pack("<I", caps) + cmd)
            # Its reply is an auth exchange, not a command response.
        idx = RESP_COMMANDS.index(op) if op in RESP_COMMANDS else len(RESP_COMMANDS) - 1
        xflags = cmd[5] if op == 0x17 and len(cmd) > 5 else 0
        seed_no += 1
        head = (bytes([idx]) + struct.pack("<IBHIB", caps, xflags, 0x0002,
                                           0x9E3779B9 ^ seed_no, 7 + seed_no % 60))
        put("fuzz_resp", head + stream[:MAX_SEED - len(head)])


def capture():
    conn = json.load(open(os.path.join(TOP, "build", "tidb", "conn.json")))
    relay = Relay(conn["host"], conn["port"])
    sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
    import pymysql
    import pymysql.constants.CLIENT as CL
    import mysql.connector

    kw = dict(host="127.0.0.1", port=relay.port, user=conn["user"], password=conn["password"])
    db = "vecgate_fuzz_seeds"  # temporary tables only; dropped at the end
    c = pymysql.connect(**kw, client_flag=CL.MULTI_STATEMENTS, ssl_disabled=True)
    with c.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
        cur.execute(f"USE {db}")
        cur.execute("CREATE TEMPORARY TABLE fz (id INT PRIMARY KEY, name VARCHAR(20), "
                    "v LONGBLOB, f FLOAT, d DOUBLE, t DATETIME, u BIGINT UNSIGNED)")
        cur.execute("INSERT INTO fz VALUES (1,'a','[1,2]',1.5,0.25,'2024-01-02 03:04:05',18446744073709551615),"
                    "(2,NULL,'[0.5,-1]',NULL,-0.0,NULL,0),(3,'ccc','[]',3.25e10,1e-300,'1999-12-31',7)")
        for q in ["SELECT * FROM fz ORDER BY id", "SELECT id, name FROM fz WHERE id = 2",
                  "SELECT 1; SELECT 'x', NULL; UPDATE fz SET name = 'b' WHERE id = 1",
                  "SELECT * FROM nosuchtable", "SHOW VARIABLES LIKE 'autocommit'",
                  "BEGIN", "UPDATE fz SET f = 2 WHERE id = 3", "COMMIT", "SET autocommit = 0",
                  "SELECT COUNT(*) FROM fz", "ROLLBACK", "SET autocommit = 1",
                  "SELECT id FROM fz ORDER BY id LIMIT 0", "DO 1"]:
            try:
                cur.execute(q)
                while cur.nextset():
                    pass
            except pymysql.MySQLError:
                pass
    c.ping()
    c.select_db("mysql")

    m = mysql.connector.connect(**kw, database=db, use_pure=True, ssl_disabled=True)
    cur = m.cursor(prepared=True)
    cur.execute("CREATE TEMPORARY TABLE fz (id INT PRIMARY KEY, name VARCHAR(20), v LONGBLOB, "
                "f FLOAT, d DOUBLE, t DATETIME, s SMALLINT, b TINYINT)")
    cur.execute("INSERT INTO fz VALUES (?,?,?,?,?,?,?,?)",
                (1, "a", b"[1,2]", 1.5, 0.25, "2024-01-02 03:04:05", -3, 7))
    cur.execute("INSERT INTO fz VALUES (?,?,?,?,?,?,?,?)",
                (2, None, b"[0.5]", None, -1e100, None, 300, -1))
    for q, args in [("SELECT * FROM fz WHERE id >= ? ORDER BY id", (1,)),
                    ("SELECT id, name, d FROM fz WHERE name = ? OR name IS NULL", ("a",)),
                    ("SELECT ? + 1, ?, ?", (41, "text", 2.5)),
                    ("SELECT * FROM fz WHERE id = ?", (99,))]:
        cur.execute(q, args)
        cur.fetchall()
    cur.close()
    m.cmd_statistics()
    m.cmd_reset_connection()
    try:
        m.cmd_change_user(username=conn["user"], password=conn["password"], database="mysql")
    except mysql.connector.Error:
        pass
    m.close()
    with c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
    c.close()

    import time
    time.sleep(0.5)
    for n, rec in enumerate(relay.conns):
        cut_capture(rec, n * 100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--capture", action="store_true", help="also record real traffic")
    a = ap.parse_args()
    static_seeds()
    if a.capture:
        capture()
    for d in sorted(counts):
        print(f"seeds: {d} +{counts[d]}")


if __name__ == "__main__":
    main()
