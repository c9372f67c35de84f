"""In-process kNN baselines for bench/knn-compare, run as a child process so
its threads and memory are its own: numpy exact, FAISS IndexFlatIP, hnswlib,
USearch, and a numpy memory-read probe. One query at a time, every query a
different vector. Prints one JSON object on stdout.

    python bench/knn/libs.py --rows N --dim D --seed S --queries Q.npy --truth T.npy
        [--methods numpy,faiss,hnswlib,usearch,probe] [--threads 1,2] [--k 10]

The table is regenerated from the seed with tools/dataset.py's generator (the
same float32 values as the database table), or read with --npy.
"""
import argparse
import gc
import json
import os
import sys
import time

import numpy as np

TOP = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tools"))


def log(msg):
    print(f"knn-compare[libs]: {msg}", file=sys.stderr, flush=True)


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stats(ns):
    a = np.sort(np.asarray(ns, dtype=np.float64)) / 1e6  # ms
    return {"n": int(a.size), "median_ms": float(np.median(a)), "mean_ms": float(a.mean()),
            "p90_ms": float(a[int(0.9 * (a.size - 1))]), "p99_ms": float(a[int(0.99 * (a.size - 1))]),
            "best_ms": float(a[0])}


def recall(found, truth, k):
    hits = sum(len(set(map(int, f[:k])) & set(map(int, t[:k]))) for f, t in zip(found, truth))
    return hits / (k * len(truth))


def timed(fn, queries, warm=3):
    for q in queries[:warm]:
        fn(q)
    out, ns = [], []
    for q in queries:
        t0 = time.perf_counter_ns()
        r = fn(q)
        ns.append(time.perf_counter_ns() - t0)
        out.append(r)
    return out, ns


def blas_info():
    try:
        from threadpoolctl import threadpool_info
        return [{k: v for k, v in d.items() if k in ("internal_api", "version", "num_threads",
                                                      "architecture", "filepath", "threading_layer")}
                for d in threadpool_info()]
    except Exception as e:  # noqa: BLE001
        return [{"error": repr(e)}]


def blas_limit(n):
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=n, user_api="blas")
    except Exception:  # noqa: BLE001
        import contextlib
        return contextlib.nullcontext()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--npy")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--methods", default="probe,numpy,faiss,hnswlib,usearch")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--nq", type=int, default=100, help="queries per exact method")
    ap.add_argument("--nq-ann", type=int, default=200, help="queries per ANN setting")
    ap.add_argument("--hnsw-m", type=int, default=16)
    ap.add_argument("--hnsw-efc", type=int, default=100)
    ap.add_argument("--ef", default="16,64,256")
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    methods = args.methods.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    efs = [int(e) for e in args.ef.split(",")]
    k = args.k
    out = {"rows": args.rows, "dim": args.dim, "results": [], "env": {}}

    t0 = time.monotonic()
    if args.npy:
        X = np.ascontiguousarray(np.load(args.npy), dtype=np.float32)
    else:
        import dataset
        X = dataset.generate(args.rows, args.dim, args.seed)
    Q = np.load(args.queries).astype(np.float32)
    T = np.load(args.truth)
    log(f"{X.shape[0]} x {X.shape[1]} float32 ready in {time.monotonic() - t0:.1f} s")
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Xn = np.ascontiguousarray(Xn, dtype=np.float32)
    out["env"]["numpy"] = np.__version__
    out["env"]["cpu_count"] = os.cpu_count()

    def add(method, config, threads_, st, rec=None, **extra):
        r = {"method": method, "config": config, "threads": threads_, **st}
        if rec is not None:
            r["recall_at_k"] = rec
        r.update(extra)
        out["results"].append(r)
        log(f"{method:<16} {config:<40} {threads_} thr: median {st['median_ms']:.3f} ms"
            + (f", recall@{k} {rec:.4f}" if rec is not None else ""))

    # The memory-read probe: one pass over the float32 matrix, best of several.
    if "probe" in methods:
        with blas_limit(1):
            acc = np.empty(args.dim, dtype=np.float32)
            best = {"sum": 1e30, "add.reduce axis 0": 1e30}
            for _ in range(12):
                a = time.perf_counter_ns()
                X.sum()
                best["sum"] = min(best["sum"], time.perf_counter_ns() - a)
                a = time.perf_counter_ns()
                np.add.reduce(X, axis=0, out=acc)
                best["add.reduce axis 0"] = min(best["add.reduce axis 0"], time.perf_counter_ns() - a)
        name = min(best, key=best.get)
        ns = best[name]
        out["probe_numpy"] = {"best_ms": ns / 1e6, "how": f"numpy {name}, best of 12",
                              "gb_per_s": X.nbytes / ns, "bytes": X.nbytes,
                              "all": {k_: v / 1e6 for k_, v in best.items()}}
        log(f"numpy read probe: {ns / 1e6:.2f} ms ({X.nbytes / ns:.1f} GB/s, {name})")

    qs = Q[:args.nq]
    truth = T[:args.nq]

    if "numpy" in methods:
        for th in threads:
            with blas_limit(th):
                def q_numpy(q):
                    qn = q / np.linalg.norm(q)
                    s = Xn @ qn
                    idx = np.argpartition(-s, k)[:k]
                    return idx[np.argsort(-s[idx])]
                found, ns = timed(q_numpy, qs)
            add("numpy", "Xn @ q (float32 GEMV), argpartition", th, stats(ns), recall(found, truth, k))

    if "faiss" in methods:
        try:
            import faiss
            out["env"]["faiss"] = {"version": faiss.__version__,
                                   "compile_options": faiss.get_compile_options(),
                                   "max_threads": faiss.omp_get_max_threads()}
            try:
                from faiss import loader
                out["env"]["faiss"]["instruction_sets"] = sorted(loader.instruction_sets or [])
            except Exception:  # noqa: BLE001
                pass
            index = faiss.IndexFlatIP(args.dim)
            index.add(Xn)
            for th in threads:
                faiss.omp_set_num_threads(th)

                def q_faiss(q):
                    qn = (q / np.linalg.norm(q)).reshape(1, -1)
                    _, i = index.search(qn, k)
                    return i[0]
                found, ns = timed(q_faiss, qs)
                add("faiss_flat", "IndexFlatIP on unit vectors, nq=1", th, stats(ns),
                    recall(found, truth, k))
            faiss.omp_set_num_threads(out["env"]["faiss"]["max_threads"])
            del index
        except ImportError as e:
            out["env"]["faiss"] = f"not installed: {e}"
            log(f"faiss: not installed ({e})")
    gc.collect()

    qa = Q[:args.nq_ann]
    ta = T[:args.nq_ann]
    if "hnswlib" in methods:
        try:
            import hnswlib
            r0 = rss_mb()
            t = time.monotonic()
            p = hnswlib.Index(space="cosine", dim=args.dim)
            p.init_index(max_elements=len(X), ef_construction=args.hnsw_efc, M=args.hnsw_m)
            p.set_num_threads(args.build_threads)
            p.add_items(X, np.arange(len(X)))
            build = time.monotonic() - t
            mem = rss_mb() - r0
            log(f"hnswlib built in {build:.1f} s ({args.build_threads} threads), +{mem:.0f} MB")
            for ef in efs:
                p.set_ef(max(ef, k))
                found, ns = timed(lambda q: p.knn_query(q, k=k, num_threads=1)[0][0], qa)
                add("hnswlib", f"M={args.hnsw_m} ef_construction={args.hnsw_efc} ef={max(ef, k)}", 1,
                    stats(ns), recall(found, ta, k), build_s=build, index_mb=mem,
                    build_threads=args.build_threads)
            del p
        except ImportError as e:
            log(f"hnswlib: not installed ({e})")
    gc.collect()

    if "usearch" in methods:
        try:
            from usearch.index import Index
            import usearch
            r0 = rss_mb()
            t = time.monotonic()
            u = Index(ndim=args.dim, metric="cos", dtype="f32", connectivity=args.hnsw_m,
                      expansion_add=args.hnsw_efc)
            u.add(np.arange(len(X)), X, threads=args.build_threads)
            build = time.monotonic() - t
            mem = rss_mb() - r0
            out["env"]["usearch"] = {"version": usearch.__version__,
                                     "hardware_acceleration": str(u.hardware_acceleration)}
            log(f"usearch built in {build:.1f} s ({args.build_threads} threads), +{mem:.0f} MB, "
                f"{u.hardware_acceleration}")
            for ef in efs:
                u.expansion_search = max(ef, k)
                found, ns = timed(lambda q: u.search(q, k, threads=1).keys, qa)
                add("usearch", f"connectivity={args.hnsw_m} expansion_add={args.hnsw_efc} "
                    f"expansion_search={max(ef, k)}", 1, stats(ns), recall(found, ta, k),
                    build_s=build, index_mb=mem, build_threads=args.build_threads)
            del u
        except ImportError as e:
            log(f"usearch: not installed ({e})")

    out["env"]["blas"] = blas_info()  # every BLAS/OpenMP library loaded by now
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
