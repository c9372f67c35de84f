"""vecgate's arithmetics against Go itself.

TiDB computes vector distances in Go loops (pkg/types/vector_functions.go),
and whether the Go compiler turns `distance += va[i] * vb[i]` into fused
multiply-adds depends on the build. tests/golden/godist holds loops of that
form; it is built three ways and fed a few thousand seeded pairs of vectors:

  GOAMD64=v1   separate multiply and add       == vecgate "separate"
  GOAMD64=v3   cosine and L2 fused, the inner
               product not (its loads fold
               into the multiply first)        == vecgate "fused-except-ip"
  GOARCH=arm64 (run under qemu-aarch64)
               every step fused                == vecgate "fused"

vecgate's side is build/vec_arith_tool (tests/golden/vec_arith_tool.c), which
also runs every pair through each SIMD kernel this CPU has. Skipped with the
reason when Go (or, for arm64 only, qemu-aarch64) is missing.
"""
import os
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("VECGATE_BINARY", TOP / "build" / "vecgate")).parent
GODIST = TOP / "tests" / "golden" / "godist"
METRICS = ("cosine", "l2", "l1", "negip")


def go_build(out, **env):
    go = shutil.which("go")
    if not go:
        pytest.skip("no Go toolchain on PATH")
    full = dict(os.environ, GOTOOLCHAIN="local", GOWORK="off", CGO_ENABLED="0", **env)
    subprocess.run([go, "build", "-trimpath", "-o", str(out), "."], cwd=GODIST, env=full,
                   check=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def gobins():
    d = BUILD / "godist"
    d.mkdir(parents=True, exist_ok=True)
    return {
        "v1": go_build(d / "godist-amd64-v1", GOARCH="amd64", GOAMD64="v1"),
        "v3": go_build(d / "godist-amd64-v3", GOARCH="amd64", GOAMD64="v3"),
        "arm64": go_build(d / "godist-arm64", GOARCH="arm64"),
    }


@pytest.fixture(scope="module")
def tool():
    path = BUILD / "vec_arith_tool"
    if not path.exists():
        pytest.fail(f"missing {path}: build it (cmake --build {BUILD} --target vec_arith_tool)")
    return path


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def pairs(seed=20240611, n=3000):
    """Seeded pairs: plain values, awkward ones (zeros, tiny, huge, small
    integers), raw bit patterns over a wide exponent range, equal vectors,
    zero vectors and rows of very different norms."""
    rnd = random.Random(seed)

    def awkward():
        k = rnd.randrange(12)
        if k == 0:
            return 0.0
        if k == 1:
            return -0.0
        if k == 2:
            return rnd.uniform(-1, 1) * 1e-30
        if k == 3:
            return rnd.uniform(-1, 1) * 1e-20
        if k == 4:
            return rnd.uniform(-1, 1) * 1e30
        if k == 5:
            return rnd.uniform(-1, 1) * 1e19
        if k == 6:
            return float(rnd.randint(-8, 8))
        return rnd.uniform(-10, 10)

    def raw():
        # sign, exponent 127 +- 40, random mantissa: finite, never NaN.
        return (rnd.getrandbits(1) << 31 | rnd.randint(87, 167) << 23
                | rnd.getrandbits(23))

    lines = []
    for i in range(n):
        dim = rnd.choice((1, 2, 3, 5, 8, 16, 17, 31, 64, 100, 128, 300)) if i % 50 else 768
        kind = i % 6
        if kind == 0:
            a = [f32_bits(rnd.uniform(-1, 1)) for _ in range(dim)]
            b = [f32_bits(rnd.uniform(-1, 1)) for _ in range(dim)]
        elif kind == 1:
            a = [f32_bits(awkward()) for _ in range(dim)]
            b = [f32_bits(awkward()) for _ in range(dim)]
        elif kind == 2:
            a = [raw() for _ in range(dim)]
            b = [raw() for _ in range(dim)]
        elif kind == 3:
            a = [f32_bits(rnd.uniform(-3, 3)) for _ in range(dim)]
            b = list(a) if i % 12 == 3 else [0] * dim  # a tie at 0, or a zero vector
        elif kind == 4:
            s = 10.0 ** rnd.randint(-18, 18)
            a = [f32_bits(rnd.uniform(-1, 1) * s) for _ in range(dim)]
            b = [f32_bits(rnd.uniform(-1, 1)) for _ in range(dim)]
        else:
            a = [f32_bits(round(rnd.uniform(-4, 4), 3)) for _ in range(dim)]
            b = [f32_bits(round(rnd.uniform(-4, 4), 3)) for _ in range(dim)]
        lines.append(f"{dim} " + " ".join(f"{x:08x}" for x in a + b))
    return "\n".join(lines) + "\n"


def run(cmd, text):
    p = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{cmd[0]} exited {p.returncode}: {p.stderr[-2000:]}"
    rows = [line.split() for line in p.stdout.splitlines()]
    assert all(len(r) == 4 for r in rows)
    return rows


def compare(ours, theirs):
    """Per metric, how many pairs differ."""
    assert len(ours) == len(theirs)
    diff = dict.fromkeys(METRICS, 0)
    for a, b in zip(ours, theirs):
        for m, x, y in zip(METRICS, a, b):
            diff[m] += x != y
    return diff


def disasm(binary, symbol):
    """GNU objdump's text of one function (go tool objdump does not decode
    VEX-encoded FMA instructions and prints them as unrelated ones)."""
    objdump = shutil.which("objdump")
    if not objdump:
        pytest.skip("no GNU objdump")
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(binary)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^[0-9a-f]+ <{re.escape(symbol)}>:\n(.*?)(?:\n\n|\Z)", out, re.M | re.S)
    assert m, f"{symbol} not found in {binary}"
    return m.group(1)


def test_go_fuses_as_documented(gobins):
    """The builds do what the table above says: v3 fuses cosine's three sums
    and L2's, keeps the inner product a multiply then an add; v1 never fuses."""
    v1, v3 = gobins["v1"], gobins["v3"]
    fma = re.compile(r"\bvfmadd\d+ss\b")
    cos3, l23, ip3 = (disasm(v3, f"main.{f}") for f in ("cosineDistance", "l2Distance",
                                                         "innerProduct"))
    assert len(fma.findall(cos3)) == 3, cos3
    assert len(fma.findall(l23)) == 1, l23
    assert not fma.search(ip3) and re.search(r"\bmulss\b", ip3), ip3
    for f in ("cosineDistance", "l2Distance", "innerProduct"):
        text = disasm(v1, f"main.{f}")
        assert not fma.search(text) and re.search(r"\bmulss\b", text), text
    # go tool objdump is the toolchain's own view: it lists the same
    # functions; on arm64 it decodes the fused instruction (FMADDS).
    go = shutil.which("go")
    arm = subprocess.run([go, "tool", "objdump", "-s", r"^main\.(cosineDistance|l2Distance|innerProduct)$",
                          str(gobins["arm64"])], capture_output=True, text=True, check=True).stdout
    assert arm.count("FMADDS") == 5 and "FMULS" not in arm, arm


def test_distances_equal_go(gobins, tool):
    text = pairs()
    n = text.count("\n")
    ours = {a: run([str(tool), a], text) for a in ("separate", "fused", "fused-except-ip")}
    v1 = run([str(gobins["v1"])], text)
    v3 = run([str(gobins["v3"])], text)

    assert compare(ours["separate"], v1) == dict.fromkeys(METRICS, 0)
    assert compare(ours["fused-except-ip"], v3) == dict.fromkeys(METRICS, 0)

    # The arithmetics really differ: on cosine, L2 and the inner product a
    # large share of these pairs, never on L1 (no multiply).
    d = compare(ours["fused"], ours["separate"])
    print(f"{n} pairs; fused != separate: {d}")
    assert d["l1"] == 0
    for m in ("cosine", "l2", "negip"):
        assert d[m] >= n // 10, (m, d)
    d3 = compare(v3, v1)
    assert d3["negip"] == 0 and d3["cosine"] >= n // 10, d3

    qemu = shutil.which("qemu-aarch64")
    if not qemu:
        pytest.skip("no qemu-aarch64 (Debian qemu-user): the arm64 build was not run")
    arm = run([qemu, str(gobins["arm64"])], text)
    assert compare(ours["fused"], arm) == dict.fromkeys(METRICS, 0)
    assert compare(arm, v3)["negip"] >= n // 10
