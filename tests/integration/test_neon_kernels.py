"""The NEON kernels (src/vec/scan_neon.c) on an x86 machine: cross-compiled
with Debian's gcc-aarch64-linux-gnu together with tests/golden/
vec_kernel_check.c, run under qemu-aarch64 (Debian's qemu-user), and
checked bit for bit against the scalar reference in every arithmetic. The
disassembly shows the fused kernels use FMLA only and the separate ones
FMUL then FADD, never FMLA. Skipped with the reason when the cross compiler
or the emulator is missing (tools/setup installs both)."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("VECGATE_BINARY", TOP / "build" / "vecgate")).parent
# What the kernels and their reference need from src/vec, no more.
SOURCES = ["vec_dist.c", "scan.c", "scan_neon.c", "scan_x86.c", "block.c"]


@pytest.fixture(scope="module")
def program():
    cc = shutil.which("aarch64-linux-gnu-gcc")
    if not cc:
        pytest.skip("no aarch64-linux-gnu-gcc (Debian gcc-aarch64-linux-gnu)")
    if not shutil.which("qemu-aarch64"):
        pytest.skip("no qemu-aarch64 (Debian qemu-user)")
    out = BUILD / "aarch64" / "vec_kernel_check"
    out.parent.mkdir(parents=True, exist_ok=True)
    # The project's flags that matter for the arithmetic: no contraction
    # into FMA, no fast math; warnings are errors as in the main build.
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O2", "-ffp-contract=off",
                    "-fno-fast-math", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror",
                    f"-I{TOP / 'src'}", f"-I{TOP / 'tests' / 'common'}", "-static", "-o", str(out),
                    str(TOP / "tests" / "golden" / "vec_kernel_check.c"),
                    *(str(TOP / "src" / "vec" / s) for s in SOURCES), "-lm"],
                   check=True, timeout=300)
    return out


def test_neon_equals_scalar_reference(program):
    p = subprocess.run(["qemu-aarch64", str(program), "neon"], capture_output=True, text=True,
                       timeout=600)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"compared (\d+) distances, (\d+) mismatches; fused != separate in (\d+) of "
                  r"(\d+)", p.stdout)
    assert m, p.stdout
    compared, bad, differ, total = map(int, m.groups())
    assert bad == 0 and compared >= 30000 and differ * 5 >= total


def test_neon_instructions(program):
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if not objdump:
        pytest.skip("no aarch64-linux-gnu-objdump")
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(program)],
                          capture_output=True, text=True, check=True).stdout

    def body(fn):
        m = re.search(rf"^[0-9a-f]+ <{fn}>:\n(.*?)(?:\n\n|\Z)", text, re.M | re.S)
        assert m, fn
        return m.group(1)

    fmla, fmul = re.compile(r"\sfmla\s+v"), re.compile(r"\sfmul\s+v")
    for fn in ("dot_fused_neon", "l2sq_fused_neon"):
        assert fmla.search(body(fn)) and not fmul.search(body(fn)), fn
    for fn in ("dot_neon", "l2sq_neon"):
        assert fmul.search(body(fn)) and not fmla.search(body(fn)), fn


def test_every_vec_file_builds_for_aarch64():
    """The parts of src/vec the NEON program leaves out (the parsers, the
    screen, the batches) build for AArch64 too, with the main build's
    warnings as errors: their x86-only paths must leave no unused code
    behind on other machines."""
    cc = shutil.which("aarch64-linux-gnu-gcc")
    if not cc:
        pytest.skip("no aarch64-linux-gnu-gcc (Debian gcc-aarch64-linux-gnu)")
    for src in sorted((TOP / "src" / "vec").glob("*.c")):
        p = subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O2", "-ffp-contract=off",
                            "-fno-fast-math", "-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes",
                            "-Wmissing-prototypes", "-Wformat=2", "-Wno-unused-parameter",
                            "-Werror", f"-I{TOP / 'src'}", "-c", "-o", os.devnull, str(src)],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"{src.name}:\n{p.stderr}"
