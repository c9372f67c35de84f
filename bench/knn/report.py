"""bench/knn-compare's output: results.csv, summary.md and PNG plots."""
import csv
import os

TARGET_FLOOR = 0.5    # vecgate's time per query <= 0.5 x the one-core float32 read limit
TARGET_DB = 100.0     # vecgate >= 100 x faster than the database's brute force
TARGET_CLIENTS = 4.0  # 16 clients' aggregate queries/s >= 4 x one client's

DB_NOTE = (
    "**The database here is not TiDB.** tidb-server cannot be built on this machine, so the "
    "test database (tools/tidb) is Debian's MariaDB 10.11 with TiDB's vector functions loaded as "
    "a UDF (tests/mariadb/vecgate_udf.c); the vector column is a LONGTEXT holding TiDB's text "
    "form. \"Database brute force\" is therefore MariaDB running VEC_COSINE_DISTANCE as a UDF, "
    "which parses both vectors' text on every row: a stand-in for TiDB's own brute force, not a "
    "measurement of it."
)


def rows_of(meta, results):
    """Flat rows for the CSV: one per size x method x setting."""
    out = []

    def add(size, method, config, threads, d, **extra):
        out.append({"rows": size["rows"], "dim": size["dim"], "method": method, "config": config,
                    "threads": threads, "n": d.get("n"), "median_ms": d.get("median_ms"),
                    "mean_ms": d.get("mean_ms"), "p90_ms": d.get("p90_ms"), "p99_ms": d.get("p99_ms"),
                    "best_ms": d.get("best_ms"), "recall_at_10": d.get("recall_at_k"),
                    "build_s": d.get("build_s"), "index_mb": d.get("index_mb"),
                    "busy_cores": d.get("busy_cores"), **extra})

    for s in results:
        if "vecgate" in s:
            v = s["vecgate"]
            add(s, "vecgate", v["config"], 1, v, scan_encode_mean_ms=v.get("answer_mean_ms"),
                in_vecgate_mean_ms=v.get("hit_mean_ms"))
        if "vecgate_floor" in s:
            add(s, "vecgate_16_rows", "same SQL on a 16-row table (protocol floor)", 1,
                s["vecgate_floor"])
        if "database" in s:
            add(s, "database", s["database"]["config"], 1, s["database"])
        for r in s.get("libs", {}).get("results", []):
            add(s, r["method"], r["config"], r["threads"], r)
        p = s.get("libs", {}).get("probe_numpy")
        if p:
            add(s, "read_probe_numpy", p["how"], 1, {"n": 12, "median_ms": p["best_ms"],
                                                     "best_ms": p["best_ms"]})
        sb = s.get("scan_bench", {})
        if "floor_ms" in sb:
            add(s, "read_floor", f"vec_scan_bench streaming read ({sb['reader']}), best", 1,
                {"median_ms": sb["floor_ms"], "best_ms": sb["floor_ms"]})
        for isa in ("avx512", "avx2", "neon", "scalar"):
            if f"{isa}_median_ms" in sb:
                add(s, "vecgate_kernel", f"vec_scan_bench vec_knn {isa}, in process", 1,
                    {"median_ms": sb[f"{isa}_median_ms"], "best_ms": sb[f"{isa}_best_ms"]})
    return out


def floor_of(s):
    sb = s.get("scan_bench", {})
    cands = []
    if "floor_ms" in sb:
        cands.append((sb["floor_ms"], f"vec_scan_bench {sb['reader']} read of the vecgate blocks"))
    p = s.get("libs", {}).get("probe_numpy")
    if p:
        cands.append((p["best_ms"], p["how"]))
    return min(cands) if cands else (None, None)


def kernel_of(s):
    sb = s.get("scan_bench", {})
    for isa in ("avx512", "avx2", "neon", "scalar"):
        if f"{isa}_median_ms" in sb:
            return sb[f"{isa}_median_ms"], isa
    return None, None


def lib(s, method, threads=None, config_has=None):
    for r in s.get("libs", {}).get("results", []):
        if r["method"] == method and (threads is None or r["threads"] == threads) and (
                config_has is None or config_has in r["config"]):
            return r
    return None


def fmt_ms(x):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x / 1000:.2f} s"
    if x >= 10:
        return f"{x:.1f} ms"
    if x >= 1:
        return f"{x:.2f} ms"
    return f"{x * 1000:.0f} µs"


def fmt_s(x):
    return "-" if x is None else f"{x:.1f} s"


def fmt_r(x):
    return "-" if x is None else f"{x:.4f}"


def write(run_dir, meta, results, args):
    flat = rows_of(meta, results)
    keys = []
    for r in flat:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(os.path.join(run_dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in flat:
            w.writerow(r)
    plots = []
    try:
        plots = make_plots(run_dir, results, args)
    except Exception as e:  # noqa: BLE001
        meta["notes"].append(f"plots not made: {e!r}")
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write(summary(meta, results, args, plots))


def summary(meta, results, args, plots):
    m = meta["machine"]
    L = []
    L.append("# kNN: vecgate against the memory-read limit, the database and libraries\n")
    L.append(f"{meta['date']}, {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, Linux "
             f"{m['kernel']}; {m['vecgate']} (commit {m['vecgate_commit']}"
             f"{', src/ with uncommitted changes' if m['vecgate_tree_dirty'] else ''}); database "
             f"{m['database']}. Run took {meta['elapsed_s'] / 60:.1f} min"
             f"{' (--quick)' if args.quick else ''}.\n")
    L.append(DB_NOTE + "\n")
    data = getattr(args, "data", "normal")
    if data == "normal":
        what = (f"each query a different random vector (seeded normal float32 data, {args.dim} "
                f"dimensions)")
    elif data == "fashion-mnist":
        what = (f"Fashion-MNIST training images as {args.dim}-dimensional pixel vectors (Debian's "
                f"dataset-fashion-mnist); each query a different held-out image")
    else:
        what = (f"all-MiniLM-L6-v2 embeddings ({args.dim} dimensions) of sentences from Debian's "
                f"license and copyright texts; each query a different held-out sentence")
    L.append(f"Cosine distance, top {args.k}, one query at a time, {what}. Times are per query.\n")
    main = next((s for s in results if s["rows"] == args.rows), results[-1] if results else None)
    if not main:
        return "\n".join(L)
    floor, floor_how = floor_of(main)
    v = main.get("vecgate", {})
    db = main.get("database", {})
    f1 = lib(main, "faiss_flat", 1)
    fall = lib(main, "faiss_flat", m["cores"])
    kern, isa = kernel_of(main)
    L.append(f"## {main['rows']:,} x {main['dim']}: the yardsticks\n")
    L.append("| ratio | value | target |")
    L.append("| --- | --- | --- |")
    if floor and v:
        r = v["median_ms"] / floor
        L.append(f"| vecgate end to end (median, PyMySQL + TLS) / memory-read limit | "
                 f"{r:.2f}x ({fmt_ms(v['median_ms'])} / {fmt_ms(floor)}) | <= {TARGET_FLOOR}x "
                 f"{'met' if r <= TARGET_FLOOR else 'not met'} |")
        r = v["mean_ms"] / floor
        L.append(f"| vecgate end to end (mean) / memory-read limit | "
                 f"{r:.2f}x ({fmt_ms(v['mean_ms'])}) | <= {TARGET_FLOOR}x "
                 f"{'met' if r <= TARGET_FLOOR else 'not met'} |")
        if v.get("answer_mean_ms"):
            r = v["answer_mean_ms"] / floor
            L.append(f"| vecgate scan + encode alone (vecgate_cache_answer_seconds sum/count) / "
                     f"limit | {r:.2f}x ({fmt_ms(v['answer_mean_ms'])}) | <= {TARGET_FLOOR}x "
                     f"{'met' if r <= TARGET_FLOOR else 'not met'} |")
        if kern:
            L.append(f"| vecgate's kernel in process (vec_scan_bench, {isa}, median) / limit | "
                     f"{kern / floor:.2f}x ({fmt_ms(kern)}) | |")
    if db and v:
        r = db["median_ms"] / v["median_ms"]
        L.append(f"| database brute force / vecgate (medians) | {r:,.0f}x "
                 f"({fmt_ms(db['median_ms'])} / {fmt_ms(v['median_ms'])}) | >= {TARGET_DB:.0f}x "
                 f"{'met' if r >= TARGET_DB else 'not met'} |")
    if f1 and v:
        L.append(f"| vecgate end to end / FAISS IndexFlatIP, 1 thread, in process | "
                 f"{v['median_ms'] / f1['median_ms']:.2f}x ({fmt_ms(f1['median_ms'])}) | |")
    if fall and v and fall is not f1:
        L.append(f"| vecgate end to end / FAISS IndexFlatIP, {fall['threads']} threads | "
                 f"{v['median_ms'] / fall['median_ms']:.2f}x ({fmt_ms(fall['median_ms'])}) | |")
    if f1 and v.get("answer_mean_ms"):
        L.append(f"| vecgate scan + encode / FAISS 1 thread | "
                 f"{v['answer_mean_ms'] / f1['median_ms']:.2f}x | |")
    conc = main.get("vecgate_concurrency")
    if conc and conc.get("ratio"):
        r = conc["ratio"]
        L.append(f"| 16 clients' aggregate / 1 client (queries/s) | {r:.2f}x "
                 f"({conc['sixteen']['qps']:,.1f} / {conc['one']['qps']:,.1f}) | "
                 f">= {TARGET_CLIENTS:.0f}x {'met' if r >= TARGET_CLIENTS else 'not met'} |")
    L.append("")
    L.append(f"Memory-read limit: {fmt_ms(floor)} = {floor_how} (the fastest read of "
             f"the {main['rows']:,} x {main['dim']} float32 vectors, best of several runs).\n")

    L.append(f"## {main['rows']:,} x {main['dim']}: every method\n")
    L.append("| method | configuration | threads | median | p90 | p99 | recall@10 | build |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows_of(meta, [main]):
        L.append(f"| {r['method']} | {r['config']} | {r['threads']} | {fmt_ms(r['median_ms'])} | "
                 f"{fmt_ms(r['p90_ms'])} | {fmt_ms(r['p99_ms'])} | {fmt_r(r['recall_at_10'])} | "
                 f"{fmt_s(r['build_s'])} |")
    L.append("")
    ann = next((s for s in reversed(results) if lib(s, "hnswlib") or lib(s, "usearch")), None)
    if ann and ann is not main:
        L.append(f"hnswlib and USearch were built at {ann['rows']:,} rows only:\n")
        L.append("| method | configuration | median | p99 | recall@10 | build | vecgate at that size |")
        L.append("| --- | --- | --- | --- | --- | --- | --- |")
        for r in ann["libs"]["results"]:
            if r["method"] in ("hnswlib", "usearch"):
                L.append(f"| {r['method']} | {r['config']} | {fmt_ms(r['median_ms'])} | "
                         f"{fmt_ms(r['p99_ms'])} | {fmt_r(r['recall_at_k'])} | {fmt_s(r['build_s'])} | "
                         f"{fmt_ms(ann.get('vecgate', {}).get('median_ms'))} |")
        L.append("")
    if v:
        L.append("## Where the time of a vecgate hit goes\n")
        fl = main.get("vecgate_floor", {})
        L.append("| part | time |")
        L.append("| --- | --- |")
        L.append(f"| client, end to end (median; mean {fmt_ms(v['mean_ms'])}) | {fmt_ms(v['median_ms'])} |")
        L.append(f"| inside vecgate: command arrival to answer sent (vecgate_cache_hit_seconds, mean) "
                 f"| {fmt_ms(v.get('hit_mean_ms'))} |")
        L.append(f"| of which on the thread pool: scan + top-k + row encoding "
                 f"(vecgate_cache_answer_seconds, mean) | {fmt_ms(v.get('answer_mean_ms'))} |")
        if kern:
            L.append(f"| vecgate's scan kernel alone, in process (vec_scan_bench {isa}) | {fmt_ms(kern)} |")
        L.append(f"| memory-read limit | {fmt_ms(floor)} |")
        if fl:
            L.append(f"| the same query on a 16-row table, end to end (protocol, TLS, SQL and "
                     f"vector-literal parsing; median) | {fmt_ms(fl['median_ms'])} |")
            L.append(f"| ... of which inside vecgate (hit_seconds mean) | {fmt_ms(fl.get('hit_mean_ms'))} |")
            L.append(f"| ... of which on the thread pool (answer_seconds mean) | "
                     f"{fmt_ms(fl.get('answer_mean_ms'))} |")
        if main.get("client_format_ms"):
            L.append(f"| client: formatting the {main['dim']}-float SQL text in Python (not in the "
                     f"timings above) | {fmt_ms(main['client_format_ms'])} |")
        L.append(f"| vecgate CPU per query (/proc utime+stime) | "
                 f"{fmt_ms(v.get('vecgate_cpu_ms_per_query'))} |")
        L.append("")
        L.append(f"/metrics over the timed queries: {v.get('hits', 0):.0f} hits, "
                 f"{v.get('result_cache_hits', 0):.0f} result-cache replays, {v.get('misses', 0):.0f} "
                 f"misses (of {v['n']}). First query of the shape (the database answers and vecgate "
                 f"verifies): {main.get('vecgate_first_query_s', 0):.2f} s.\n")

    concs = [s for s in results if s.get("vecgate_concurrency")]
    if concs:
        L.append("## 1 client, then 16 clients at once\n")
        L.append("Each client sends its queries one after another, each with its own vector (none "
                 "replayed from the result cache), end to end over TLS; the clients run in this "
                 "machine's processes too. Queries pending together share passes, a query joins "
                 "a running pass, and one alone takes the idle cores (docs/design.md §6). The "
                 "ceiling is the machine's cores divided by the CPU per query (clients' and "
                 "vecgate's, from /proc) at 16 clients.\n")
        L.append("| rows | 1 client | 16 clients | ratio | CPU per query at 16: clients + "
                 "vecgate | cores allow | shared passes | joins | split | screened |")
        L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for s in concs:
            c = s["vecgate_concurrency"]
            one, six = c["one"], c["sixteen"]
            ceil = c.get("ceiling_qps")
            allow = f"{ceil:,.0f} q/s = {ceil / one['qps']:.2f}x" if ceil and one["qps"] else "-"
            L.append(f"| {s['rows']:,} | {one['qps']:,.1f} q/s | {six['qps']:,.1f} q/s | "
                     f"{c['ratio'] or 0:.2f}x | {six['client_cpu_ms_per_query'] or 0:.2f} + "
                     f"{six['vecgate_cpu_ms_per_query'] or 0:.2f} ms | {allow} | "
                     f"{c.get('shared_passes', 0):.0f} | {c.get('joined', 0):.0f} | "
                     f"{c.get('split', 0):.0f} | {c.get('screened', 0):.0f} |")
        L.append("")

    L.append("## Snapshot load and memory\n")
    L.append("| rows | load (log) | time to servable | rows/s | bytes in /status | per row | "
             "RSS after load | RSS per row | peak RSS | float32 alone |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in results:
        ld = s.get("vecgate_load")
        if not ld:
            continue
        lm = ld.get("log_load_ms")
        secs = (lm / 1000) if lm else ld["ready_s"]
        L.append(f"| {s['rows']:,} | {fmt_ms(lm) if lm else '-'} | {ld['ready_s']:.2f} s | "
                 f"{s['rows'] / secs:,.0f} | {ld['bytes'] / 1e6:.1f} MB | {ld['bytes_per_row']:,.0f} B | "
                 f"{ld['rss_mb'] or 0:.0f} MiB | {ld['rss_bytes_per_row']:,.0f} B | "
                 f"{ld['hwm_mb'] or 0:.0f} MiB | {4 * s['dim']:,} B |")
    L.append("")
    L.append("bytes in /status include each row's cells as the database printed them (the vector's "
             "text as well as its float32 copy).\n")

    if len(results) > 1:
        L.append("## Time per query against table size (medians)\n")
        cols = [("vecgate", lambda s: s.get("vecgate", {}).get("median_ms")),
                ("vecgate scan+encode", lambda s: s.get("vecgate", {}).get("answer_mean_ms")),
                ("read limit", lambda s: floor_of(s)[0]),
                ("database", lambda s: s.get("database", {}).get("median_ms")),
                ("numpy 1 thr", lambda s: (lib(s, "numpy", 1) or {}).get("median_ms")),
                ("FAISS flat 1 thr", lambda s: (lib(s, "faiss_flat", 1) or {}).get("median_ms")),
                (f"FAISS flat {m['cores']} thr",
                 lambda s: (lib(s, "faiss_flat", m["cores"]) or {}).get("median_ms")),
                ("hnswlib ef=64", lambda s: (lib(s, "hnswlib", None, "ef=64") or {}).get("median_ms")),
                ("USearch ef=64", lambda s: (lib(s, "usearch", None, "expansion_search=64") or {}).get(
                    "median_ms"))]
        L.append("| rows | " + " | ".join(c[0] for c in cols) + " | database / vecgate |")
        L.append("| --- | " + " | ".join("---" for _ in cols) + " | --- |")
        for s in results:
            vv = s.get("vecgate", {}).get("median_ms")
            dd = s.get("database", {}).get("median_ms")
            ratio = f"{dd / vv:,.0f}x" if vv and dd else "-"
            L.append(f"| {s['rows']:,} | " + " | ".join(fmt_ms(c[1](s)) for c in cols)
                     + f" | {ratio} |")
        L.append("")

    env = main.get("libs", {}).get("env", {})
    L.append("## How the libraries ran\n")
    if isinstance(env.get("faiss"), dict):
        fz = env["faiss"]
        isets = fz.get("instruction_sets") or []
        L.append(f"- FAISS {fz.get('version')} (PyPI wheel faiss-cpu), compile options "
                 f"`{fz.get('compile_options', '').strip()}` (DD: one library, SIMD level chosen "
                 f"at run time; this CPU has {'AVX512' if 'AVX512F' in isets else 'AVX2'}), "
                 f"OpenMP max threads {fz.get('max_threads')}; IndexFlatIP over unit-length "
                 f"vectors, `search()` with one query.")
    elif env.get("faiss"):
        L.append(f"- FAISS: {env['faiss']}")
    for b in env.get("blas", []):
        lib_file = os.path.basename(str(b.get("filepath")))
        if b.get("internal_api") == "openmp":
            L.append(f"- OpenMP: `{lib_file}`, {b.get('num_threads')} threads by default")
            continue
        who = "FAISS's" if "faiss" in str(b.get("filepath")) else "numpy's"
        L.append(f"- {who} BLAS: {b.get('internal_api')} {b.get('version')} "
                 f"({b.get('threading_layer')}), core type detected {b.get('architecture')}, "
                 f"{b.get('num_threads')} threads by default, `{lib_file}`")
    if isinstance(env.get("usearch"), dict):
        L.append(f"- USearch {env['usearch']['version']}, kernels: "
                 f"{env['usearch']['hardware_acceleration']}")
    if args.openblas_coretype:
        L.append(f"- OPENBLAS_CORETYPE={args.openblas_coretype}")
    L.append("")

    L.append("## Load on the machine\n")
    L.append("Other benchmarks (`pgrep -af 'vecgate-bench|haproxy|vec_scan_bench|knn-compare'`, "
             "other runs of this script included) were checked "
             "before each measurement and waited for (up to --max-wait), then up to --quiet-wait "
             "(and --quiet-budget in all) for the machine to drop below 0.5 busy cores. 1-minute "
             "load average and busy cores just "
             "before each, and the machine's busy cores during it (this benchmark's own work "
             "included; a single-threaded measurement alone shows about 1):\n")
    L.append("| measurement | load avg before | busy cores just before | busy cores during "
             "| waited | other benchmarks |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for e in meta["load_seen"]:
        bc = e.get("busy_cores")
        L.append(f"| {e['what']} | {e['loadavg_1m']:.2f} | {e.get('busy_before', 0):.2f} | "
                 f"{'-' if bc is None else f'{bc:.2f}'} | {e['waited_s']:.0f} s | "
                 f"{len(e['other_benchmarks']) or 'none'} |")
    L.append("")
    if meta["notes"]:
        L.append("## Notes\n")
        for n in meta["notes"]:
            L.append(f"- {n}")
        L.append("")
    for p in plots:
        L.append(f"![{p}]({p})\n")
    return "\n".join(L)


def make_plots(run_dir, results, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    cores = os.cpu_count() or 1
    series = [
        ("vecgate (end to end, TLS)", lambda s: s.get("vecgate", {}).get("median_ms"), "o-", "C0"),
        ("vecgate scan+encode", lambda s: s.get("vecgate", {}).get("answer_mean_ms"), "o--", "C0"),
        ("memory-read limit", lambda s: floor_of(s)[0], "k:", "k"),
        ("database brute force (MariaDB + UDF)", lambda s: s.get("database", {}).get("median_ms"),
         "s-", "C3"),
        ("numpy exact, 1 thread", lambda s: (lib(s, "numpy", 1) or {}).get("median_ms"), "^-", "C1"),
        ("FAISS IndexFlatIP, 1 thread", lambda s: (lib(s, "faiss_flat", 1) or {}).get("median_ms"),
         "v-", "C2"),
        (f"FAISS IndexFlatIP, {cores} threads",
         lambda s: (lib(s, "faiss_flat", cores) or {}).get("median_ms"), "v--", "C2"),
        ("hnswlib ef=64 (approx.)", lambda s: (lib(s, "hnswlib", None, "ef=64") or {}).get("median_ms"),
         "D-", "C4"),
        ("USearch ef=64 (approx.)",
         lambda s: (lib(s, "usearch", None, "expansion_search=64") or {}).get("median_ms"), "P-", "C5"),
    ]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, fn, style, color in series:
        pts = [(s["rows"], fn(s)) for s in results if fn(s)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style.lstrip("k"), color=color,
                    label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows in the table")
    ax.set_ylabel("time per query, ms (median)")
    ax.set_title(f"kNN time per query vs table size ({getattr(args, 'data', 'normal')}, "
                 f"{args.dim} dims, cosine, top {args.k})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "time_vs_size.png"), dpi=110)
    plt.close(fig)
    made.append("time_vs_size.png")

    main = next((s for s in results if s["rows"] == args.rows), None)
    if main and main.get("vecgate"):
        v = main["vecgate"]
        kern, isa = kernel_of(main)
        bars = [("memory-read limit (best)", floor_of(main)[0]),
                (f"vecgate kernel in process ({isa}, median)", kern),
                ("vecgate scan+encode on the pool (mean)", v.get("answer_mean_ms")),
                ("inside vecgate, arrival to sent (mean)", v.get("hit_mean_ms")),
                ("end to end, PyMySQL + TLS (mean)", v.get("mean_ms")),
                ("end to end, PyMySQL + TLS (median)", v.get("median_ms")),
                ("16-row table end to end (median)", main.get("vecgate_floor", {}).get("median_ms")),
                ("FAISS flat 1 thread (median)", (lib(main, "faiss_flat", 1) or {}).get("median_ms")),
                ("numpy 1 thread (median)", (lib(main, "numpy", 1) or {}).get("median_ms"))]
        bars = [b for b in bars if b[1]]
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color="C0")
        for i, b in enumerate(bars):
            ax.text(b[1], i, f" {b[1]:.2f} ms", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("ms per query")
        ax.set_title(f"Where a vecgate hit's time goes, {main['rows']:,} x {main['dim']}")
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, "vecgate_breakdown.png"), dpi=110)
        plt.close(fig)
        made.append("vecgate_breakdown.png")

    concs = [s for s in results if s.get("vecgate_concurrency")]
    if concs:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        width = 0.27
        xs = range(len(concs))
        bars = [("1 client", lambda c: c["one"]["qps"], "C7"),
                ("16 clients", lambda c: c["sixteen"]["qps"], "C0"),
                (f"{cores} cores' ceiling at 16 clients' CPU per query",
                 lambda c: c.get("ceiling_qps") or 0, "C9")]
        for i, (name, fn, color) in enumerate(bars):
            vals = [fn(s["vecgate_concurrency"]) for s in concs]
            ax.bar([x + (i - 1) * width for x in xs], vals, width, label=name, color=color)
        for x, s in zip(xs, concs):
            c = s["vecgate_concurrency"]
            ax.text(x, c["sixteen"]["qps"], f"{c['ratio'] or 0:.2f}x", ha="center", va="bottom",
                    fontsize=9)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{s['rows']:,} x {s['dim']}" for s in concs])
        ax.set_ylabel("kNN queries/s, end to end over TLS")
        ax.set_title(f"1 client, then 16 clients at once (target: 16 >= {TARGET_CLIENTS:.0f}x 1)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, "clients_1_vs_16.png"), dpi=110)
        plt.close(fig)
        made.append("clients_1_vs_16.png")

    ann = next((s for s in reversed(results) if lib(s, "hnswlib") or lib(s, "usearch")), None)
    if ann:
        v = ann.get("vecgate", {})
        main = ann
        fig, ax = plt.subplots(figsize=(7, 5))
        for meth, marker, color in (("hnswlib", "D", "C4"), ("usearch", "P", "C5")):
            rs = [r for r in main.get("libs", {}).get("results", []) if r["method"] == meth]
            if rs:
                ax.plot([r["median_ms"] for r in rs], [r["recall_at_k"] for r in rs], marker + "-",
                        color=color, label=meth + " (ef sweep)")
        exact = [("vecgate", v.get("median_ms"), v.get("recall_at_k"), "C0"),
                 ("FAISS flat 1 thr", *((lambda r: (r["median_ms"], r["recall_at_k"]))(
                     lib(main, "faiss_flat", 1)) if lib(main, "faiss_flat", 1) else (None, None)), "C2"),
                 ("numpy 1 thr", *((lambda r: (r["median_ms"], r["recall_at_k"]))(
                     lib(main, "numpy", 1)) if lib(main, "numpy", 1) else (None, None)), "C1")]
        for name, t, rc, color in exact:
            if t:
                ax.plot([t], [rc], "o", color=color, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("ms per query (median)")
        ax.set_ylabel(f"recall@{args.k} against the exact answer")
        ax.set_title(f"Recall vs time, {main['rows']:,} x {main['dim']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, "recall_vs_time.png"), dpi=110)
        plt.close(fig)
        made.append("recall_vs_time.png")
    return made
