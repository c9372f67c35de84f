"""Operations: the Grafana dashboard and the Prometheus rules name only metrics
a running vecgate exports, promtool accepts the rules (and their unit test),
`cmake --install` lays out the usual tree with a systemd unit that
systemd-analyze verifies, and [server] log_format = json writes one valid
JSON object per line, switchable by SIGHUP."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pymysql
import pytest

from conftest import TOP, Vecgate

DASHBOARD = TOP / "conf" / "grafana" / "vecgate.json"
ALERTS = TOP / "conf" / "prometheus" / "alerts.yml"
ALERTS_TEST = TOP / "conf" / "prometheus" / "alerts_test.yml"
UNIT = TOP / "conf" / "systemd" / "vecgate.service"

# Series Prometheus itself adds to every scrape: the only names not exported
# by vecgate that the rules may use.
SCRAPE_SERIES = {"up"}
# Families whose series appear only once a first event names their label
# value (the reasons are open-ended): their values are checked against the
# source instead.
LAZY_LABELS = {("vecgate_cache_bypass_total", "reason"),
               ("vecgate_cache_patch_fallbacks_total", "reason")}


def binary():
    return Path(os.environ.get("VECGATE_BINARY", str(TOP / "build" / "vecgate")))


def dashboard_exprs():
    d = json.loads(DASHBOARD.read_text())
    out = []

    def walk(panels):
        for p in panels:
            out.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
            walk(p.get("panels", []))
    walk(d["panels"])
    for v in d["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            out.append(q["query"])
    return out


def rule_exprs():
    # The rules file is simple YAML: each expression is one line after
    # "expr:" or a folded block (">-") under it.
    exprs, lines = [], ALERTS.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not m:
            continue
        if m.group(2) != ">-":
            exprs.append(m.group(2))
            continue
        block, j = [], i + 1
        while j < len(lines) and (not lines[j].strip() or
                                  len(lines[j]) - len(lines[j].lstrip()) > len(m.group(1))):
            block.append(lines[j].strip())
            j += 1
        exprs.append(" ".join(block))
    return exprs


def promql_for_promtool(expr):
    """A dashboard query with Grafana's variables replaced by what they
    expand to, so that promtool can parse it."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__range", "3h")
    return expr.replace("$instance", ".*")


def selectors(expr):
    """(metric name, [(label, op, value)]) for each vector selector."""
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    out = []
    for m in re.finditer(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?', text):
        name, body = m.group(1), m.group(2)
        rest = text[m.end():].lstrip()
        if rest.startswith("(") or name in ("and", "or", "unless", "bool", "offset", "by"):
            continue  # a function or a keyword
        if text[:m.start()].rstrip().endswith(("{", ",")) and re.match(r'\s*(=~|!=|!~|=)', rest):
            continue
        if re.fullmatch(r"\d.*|e\d*", name) or text[max(0, m.start() - 1):m.start()] in ('"', "["):
            continue
        if not name.startswith("vecgate_") and name not in SCRAPE_SERIES and not body:
            continue  # a string's or a number's remains
        matchers = re.findall(r'([a-zA-Z_]\w*)\s*(=~|!=|!~|=)\s*"([^"]*)"', body or "")
        out.append((name, matchers))
    return out


@pytest.fixture(scope="module")
def exported(db, tmp_path_factory):
    """The series and families of a vecgate that has served traffic of every
    kind the dashboard shows: logins (ok, denied), kNN queries answered from
    memory, replayed, proved by TiDB and relayed, writes that patch and that
    fall back, a snapshot load."""
    vg = Vecgate(db, tmp_path_factory.mktemp("ops"), cache__tables="auto",
                 cache__user=db.user, cache__max_staleness="3s").start()
    vtype = db.vector_type(3)
    with db.connect() as c, c.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS opstest")
        cur.execute("CREATE DATABASE opstest")
        cur.execute(f"CREATE TABLE opstest.docs (id INT PRIMARY KEY, n INT, embedding {vtype})")
        cur.execute("INSERT INTO opstest.docs VALUES (1, 1, VEC_FROM_TEXT('[1,2,3]')), "
                    "(2, 2, VEC_FROM_TEXT('[3,2,1]')), (3, 3, VEC_FROM_TEXT('[0,0,1]'))")
        c.commit()
    try:
        with vg.connect("opstest", autocommit=True) as c, c.cursor() as cur:
            knn = "SELECT id, VEC_L2_DISTANCE(embedding, '[1,2,{}]') AS d FROM docs ORDER BY d LIMIT 2"
            deadline = time.time() + 30
            while time.time() < deadline:
                for i in range(4):
                    cur.execute(knn.format(i))
                if (vg.metric("vecgate_cache_queries_total", result="hit") and
                        vg.metric("vecgate_cache_queries_total", result="result_cache_hit")):
                    break
                time.sleep(0.1)
            # A write known by key patches; one that is not makes the snapshot stale.
            cur.execute("UPDATE docs SET n = 5 WHERE id = 1")
            cur.execute("UPDATE docs SET n = n + 1 WHERE n > 0")
            cur.execute(knn.format(7))
        with pytest.raises(pymysql.err.OperationalError):
            vg.connect("opstest", password="not the password").close()
        text = vg.admin("/metrics")
    finally:
        assert vg.stop() == 0
        with db.connect() as c, c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS opstest")
    series, families = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
        elif line and not line.startswith("#"):
            name, _, labels = line.split(" ")[0].partition("{")
            series.add((name, frozenset(re.findall(r'(\w+)="([^"]*)"', labels))))
    return series, families


def test_every_metric_in_the_dashboard_and_rules_is_exported(exported):
    series, families = exported
    names = {name for name, _ in series}
    # The traffic above reached every kind the panels show.
    for want in ["vecgate_cache_queries_total", "vecgate_cache_bypass_total",
                 "vecgate_cache_patch_fallbacks_total", "vecgate_cache_patches_total"]:
        assert want in names, f"the traffic did not make {want}"
    source = "".join(p.read_text() for p in (TOP / "src").rglob("*.c"))
    used = set()
    exprs = dashboard_exprs() + rule_exprs()
    assert len(exprs) > 30
    for expr in exprs:
        found = selectors(expr)
        assert found, f"no metric in {expr!r}"
        for name, matchers in found:
            used.add(name)
            if name in SCRAPE_SERIES:
                continue
            assert name in names, f"{name} (in {expr!r}) is not exported by vecgate"
            for label, op, value in matchers:
                if label in ("job", "instance") or value.startswith("$"):
                    continue  # added by Prometheus, or a dashboard variable
                family = re.sub(r"_(bucket|sum|count)$", "", name)
                values = value.split("|") if op == "=~" else [value]
                for v in values:
                    assert re.fullmatch(r"[a-z0-9_]+", v), f"{v!r} in {expr!r}"
                    if (family, label) in LAZY_LABELS:
                        assert f'"{v}"' in source, f"{label}={v} (in {expr!r}) is no reason vecgate uses"
                    else:
                        assert any(n == name and (label, v) in ls for n, ls in series), \
                            f"{name}{{{label}={v!r}}} (in {expr!r}) is not exported"
    # The dashboard covers what operators look at.
    for want in ["vecgate_client_sessions", "vecgate_session_errors_total",
                 "vecgate_passthrough_seconds_bucket", "vecgate_cache_queries_total",
                 "vecgate_cache_bypass_total", "vecgate_cache_staleness_milliseconds",
                 "vecgate_cache_loads_total", "vecgate_client_logins_total"]:
        assert want in used, f"nothing shows {want}"


def test_selector_extraction_catches_a_wrong_name():
    """The check above would notice a misspelt metric or label value."""
    got = selectors('sum by (result) (rate(vecgat_cache_loads_total{result="failed", '
                    'instance=~"$instance"}[5m])) / on (job) up == 0')
    assert got == [("vecgat_cache_loads_total", [("result", "=", "failed"),
                                                  ("instance", "=~", "$instance")]),
                   ("up", [])]


def promtool():
    exe = shutil.which("promtool")
    if not exe:
        pytest.fail("promtool is missing: tools/setup installs it (Debian package prometheus)")
    return exe


def test_promtool_checks_the_rules_and_their_unit_test():
    out = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 10 rules found" in out.stdout, out.stdout
    out = subprocess.run([promtool(), "test", "rules", ALERTS_TEST.name], cwd=ALERTS_TEST.parent,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_promtool_parses_every_dashboard_query(tmp_path):
    exprs = dashboard_exprs()[:-1]  # the last is the variable's label_values(), not PromQL
    rules = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard:query_{i}\n        expr: {json.dumps(promql_for_promtool(e))}\n"
        for i, e in enumerate(exprs))
    f = tmp_path / "dashboard_rules.yml"
    f.write_text(rules)
    out = subprocess.run([promtool(), "check", "rules", str(f)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in out.stdout
    # And promtool does reject a broken query: the check can fail.
    f.write_text(rules.replace("sum by (state)", "sum by (state", 1))
    assert subprocess.run([promtool(), "check", "rules", str(f)],
                          capture_output=True).returncode != 0


def build_dir():
    d = binary().parent
    if not (d / "cmake_install.cmake").exists():
        pytest.fail(f"{d} is not a configured build directory (VECGATE_BINARY)")
    return d


def test_cmake_install_layout_and_systemd_unit(tmp_path):
    prefix = tmp_path / "prefix"
    out = subprocess.run(["cmake", "--install", str(build_dir()), "--prefix", str(prefix)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    files = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    assert files == [
        "bin/vecgate",
        "etc/vecgate/vecgate.conf",
        "lib/systemd/system/vecgate.service",
        "share/doc/vecgate/README.md",
        "share/doc/vecgate/design.md",
        "share/doc/vecgate/grafana/vecgate.json",
        "share/doc/vecgate/prometheus/alerts.yml",
        "share/doc/vecgate/prometheus/alerts_test.yml",
        "share/doc/vecgate/tidb.md",
    ], files
    assert os.access(prefix / "bin/vecgate", os.X_OK)
    conf = prefix / "etc/vecgate/vecgate.conf"
    assert conf.read_text() == (TOP / "conf" / "vecgate.conf").read_text()
    ok = subprocess.run([str(prefix / "bin/vecgate"), "--check-config", "--config", str(conf)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "configuration OK" in ok.stdout, ok.stderr

    unit = (prefix / "lib/systemd/system/vecgate.service").read_text()
    assert f"ExecStart={prefix}/bin/vecgate --config {prefix}/etc/vecgate/vecgate.conf\n" in unit
    assert "/usr/bin/vecgate" not in unit and "/etc/vecgate/" not in unit.replace(
        f"{prefix}/etc/vecgate/", "")
    # The committed unit, apart from the install paths, is what got installed.
    assert unit.replace(str(prefix) + "/bin", "/usr/bin").replace(
        str(prefix) + "/etc", "/etc").replace(str(prefix) + "/share", "/usr/share") == \
        UNIT.read_text()
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    v = subprocess.run([exe, "verify", str(prefix / "lib/systemd/system/vecgate.service")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    # verify does look at ExecStart: the committed unit names /usr/bin/vecgate,
    # which is not installed here.
    if not Path("/usr/bin/vecgate").exists():
        (tmp_path / "vecgate.service").write_text(UNIT.read_text())
        bad = subprocess.run([exe, "verify", str(tmp_path / "vecgate.service")],
                             capture_output=True, text=True)
        assert bad.returncode != 0 and "/usr/bin/vecgate" in bad.stderr


def unit_settings():
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            settings.setdefault(k, []).append(v)
    return settings


def test_unit_is_hardened_and_stops_after_the_drain():
    s = unit_settings()
    for key, want in [("DynamicUser", "yes"), ("NoNewPrivileges", "yes"),
                      ("CapabilityBoundingSet", ""), ("ProtectSystem", "strict"),
                      ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                      ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                      ("KillSignal", "SIGTERM")]:
        assert s.get(key) == [want], f"{key}: {s.get(key)}"
    assert "@system-service" in s["SystemCallFilter"]
    assert s["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    # The stop timeout leaves room for vecgate's default drain.
    drain = re.search(r"^drain_timeout = (\d+)s$", (TOP / "conf/vecgate.conf").read_text(), re.M)
    stop = re.fullmatch(r"(\d+)s", s["TimeoutStopSec"][0])
    assert drain and stop and int(stop.group(1)) > int(drain.group(1)) + 5


JSON_KEYS = ["time", "level", "component", "message"]


def test_json_log_lines_and_switch_by_sighup(db, tmp_path):
    vg = Vecgate(db, tmp_path, server__log_format="json").start()
    try:
        with vg.connect() as c, c.cursor() as cur:
            cur.execute("SELECT 'a \"quoted\"\\n line', 1")
        with pytest.raises(pymysql.err.OperationalError):
            vg.connect(user="no\tsuch \"user\"", password="x").close()
        lines = vg.log.read_text().splitlines()
        assert len(lines) >= 5, lines
        objs = [json.loads(line) for line in lines]
        for o in objs:
            assert list(o) == JSON_KEYS, o
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"])
            assert o["level"] in ("ERROR", "WARN", "INFO", "DEBUG")
        assert any(o["message"].startswith("vecgate ") and "listening on" in o["message"]
                   and o["level"] == "INFO" and o["component"] == "main" for o in objs), objs

        # SIGHUP with log_format = text: the reload is logged in JSON, what
        # follows in text.
        vg.conf.write_text(vg.conf.read_text().replace("log_format = json", "log_format = text"))
        n = len(lines)
        vg.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "configuration reloaded" not in vg.log.read_text() and time.time() < deadline:
            time.sleep(0.05)
        after = vg.log.read_text().splitlines()[n:]
        switch = [i for i, line in enumerate(after) if "reloaded [server] log_format" in line]
        assert len(switch) == 1, after
        assert json.loads(after[switch[0]])["message"] == "reloaded [server] log_format = text"
        for line in after[:switch[0]]:
            assert list(json.loads(line)) == JSON_KEYS
        assert re.match(r"^\S+Z INFO \[main\] SIGHUP: configuration reloaded", after[-1]), after
    finally:
        assert vg.stop() == 0


def test_other_log_formats_are_refused(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nlog_format = logfmt\n")
    out = subprocess.run([str(binary()), "--check-config", "--config", str(conf)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == f"{conf}:2: [server] log_format = logfmt: expected one of text, json"
