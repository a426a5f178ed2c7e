"""``python -m benchmarks.scale``: the read path at market scale, end to end, on a real catalog.

For each N (default 10³, 10⁴, 10⁵) synthetic spec-only learnwares (:mod:`benchmarks.scale.market`) are
bulk-loaded into a fresh home, then measured, every number from real processes:

* index build (``lwdock catalog reindex``, a subprocess: wall time and peak RSS);
* incremental update: one learnware added (then one deleted) and ``update_index`` with hints (median of 5);
* ``lwdock search -d user.npy`` and ``lwdock list``: process start to exit, ``--runs`` runs (min/median/max)
  after one warm-up, peak RSS;
* ``lwdock api``: p50/p99 of ``POST /search`` with the user's rows (RKME fitted in the request) and with an RKME,
  sequential requests over loopback, and the server's peak RSS (VmHWM);
* recall@10 of the default search (sketch shortlist of 50) against the exact ranking, and top-1 = source.

Written to ``benchmarks/results/scale.{json,md}`` with the machine stamp. ``--only list`` re-measures just
``lwdock list`` (bulk load, no index build) and replaces that cell of the stored rows. Submission throughput needs
real learnware zips and the submission flow: ``--submissions N [--submit-workers K]`` packages N + 1 small
scikit-learn learnwares, submits one alone to warm the dock, then times ``flows.submit.submit_batch`` on the N with
K threads, checks every one is USABLE in the catalog and the registry, and records per-stage seconds, the CPU of
the whole process tree and the load average (``--sizes`` with no value skips the market sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scale.market import D, make_query, market_means, synthetic_id, write_market

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
LWDOCK = [sys.executable, "-m", "deployments.cli"]


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, peak RSS MiB, result) of one subprocess, start to exit; its CPU seconds in ``result.cpu_s``.

    Peak RSS and CPU come from GNU time around the command (a forked child's own rusage would count the
    benchmark's memory it was forked from). CPU seconds are reported beside wall time because the 2 cores are
    shared: wall time includes waiting for other processes, CPU time is what the command itself costs.
    """
    with tempfile.NamedTemporaryFile("r") as stats:
        t0 = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", stats.name, *cmd], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
        wall = time.perf_counter() - t0
        last = (Path(stats.name).read_text().strip().splitlines() or ["nan nan nan"])[-1].split()
    try:
        rss, cpu = float(last[0]) / 1024, float(last[1]) + float(last[2])
    except (ValueError, IndexError):
        rss = cpu = float("nan")
    out.cpu_s = cpu  # type: ignore[attr-defined]
    return wall, rss, out


def _stats(xs: list[float]) -> dict[str, float]:
    return {"min": round(min(xs), 4), "median": round(statistics.median(xs), 4), "max": round(max(xs), 4),
            "runs": len(xs)}


def _timed_cli(args: list[str], runs: int) -> dict[str, Any]:
    _run(LWDOCK + args)  # warm-up: page cache, index sync
    walls, rsss, cpus, loads = [], [], [], []
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        wall, rss, out = _run(LWDOCK + args)
        if out.returncode != 0:
            raise RuntimeError(f"lwdock {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
        walls.append(wall)
        rsss.append(rss)
        cpus.append(out.cpu_s)  # type: ignore[attr-defined]
    return {"wall_s": _stats(walls), "cpu_s": _stats(cpus), "peak_rss_mib_max": round(max(rsss), 1),
            "load_avg_1min": _stats(loads)}


_UPDATE = """
import json, sys, time
from pathlib import Path
from benchmarks.scale.market import write_market, synthetic_id, delete_rows
from lwlib.catalog import Catalog
from lwlib.market import update_index
home, n, reps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = {"add": [], "add_in_writer": [], "remove": []}
for j in range(2 * reps):
    write_market(home, 1, start=n + j)
    if j < reps:  # the hook after the writer closed its connection: a read-only open of its own
        t = time.perf_counter(); u = update_index(home, added=[synthetic_id(n + j)])
        out["add"].append((time.perf_counter() - t, u.path, u.refitted))
    else:  # the hook inside the writer's catalog connection, after COMMIT (how the submission calls it)
        with Catalog.open(home / "catalog.duckdb") as cat:
            t = time.perf_counter(); u = update_index(home, added=[synthetic_id(n + j)], catalog=cat)
            out["add_in_writer"].append((time.perf_counter() - t, u.path, u.refitted))
for j in range(2 * reps):
    delete_rows(home, [synthetic_id(n + j)])
    t = time.perf_counter(); u = update_index(home, removed=[synthetic_id(n + j)])
    out["remove"].append((time.perf_counter() - t, u.path, u.refitted))
print(json.dumps(out))
"""


def measure_updates(home: Path, n: int, reps: int = 5) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _UPDATE, str(home), str(n), str(reps)], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: {"seconds": _stats([r[0] for r in v]), "paths": sorted({r[1] for r in v}),
                "refitted": any(r[2] for r in v)} for k, v in res.items()}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_api(home: Path, queries: list[np.ndarray], specs: list[dict[str, Any]]) -> dict[str, Any]:
    import urllib.request

    port = _free_port()
    log = home / "api.log"
    t0 = time.perf_counter()
    proc = subprocess.Popen(LWDOCK + ["api", "--home", str(home), "--port", str(port)], cwd=ROOT,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def post(body: dict[str, Any]) -> float:
        req = urllib.request.Request(url + "/search", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
        return time.perf_counter() - t

    try:
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=300).read()
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 600:
                    raise RuntimeError(f"api did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        ready = time.perf_counter() - t0
        post({"rkme": specs[0]})  # warm
        rk = [post({"rkme": s}) * 1000 for s in specs]
        data = [post({"data": q.tolist()}) * 1000 for q in queries]
        hwm = _vm_hwm_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)

    def pct(xs: list[float]) -> dict[str, float]:
        return {"p50_ms": round(float(np.percentile(xs, 50)), 2), "p99_ms": round(float(np.percentile(xs, 99)), 2),
                "n": len(xs)}

    return {"ready_s": round(ready, 2), "search_rkme": pct(rk), "search_rows": pct(data),
            "peak_rss_mib": round(hwm, 1)}


def measure_recall(home: Path, queries: list[np.ndarray], sources: list[int], seed: int) -> dict[str, Any]:
    from lwlib.market import MarketSnapshot

    snap = MarketSnapshot.open(home)
    rec, top1, t_fast, t_exact = [], [], [], []
    for q, src in zip(queries, sources):
        spec = snap.user_spec(q)
        t = time.perf_counter()
        fast = snap.search(None, user_spec=spec, max_mixture=0)
        t_fast.append(time.perf_counter() - t)
        t = time.perf_counter()
        exact = snap.search(None, user_spec=spec, max_mixture=0, shortlist=None)
        t_exact.append(time.perf_counter() - t)
        a = {m.learnware_id for m in fast.singles[:10]}
        b = {m.learnware_id for m in exact.singles[:10]}
        rec.append(len(a & b) / max(1, len(b)))
        top1.append(fast.singles[0].learnware_id == synthetic_id(src, seed))
    return {"recall_at_10": round(float(np.mean(rec)), 4), "top1_is_source": round(float(np.mean(top1)), 4),
            "engine_single_ms": _stats([x * 1000 for x in t_fast]),
            "engine_exact_ms": _stats([x * 1000 for x in t_exact])}


def _build(home: Path, n: int, seed: int) -> dict[str, Any]:
    """Bulk-load and index a synthetic market, or reuse one a previous ``--workdir`` run left (same N, seed)."""
    stamp = home / "bench-build.json"
    if stamp.exists():
        done = json.loads(stamp.read_text())
        if done.get("n") == n and done.get("seed") == seed:
            return {**done, "reused": True}
        raise RuntimeError(f"{home} holds another synthetic market; use another --workdir")
    load_s: float | None = None
    if _loaded(home, n, seed) != n:  # a previous run may have loaded the rows and died while indexing
        t = time.perf_counter()
        write_market(home, n, seed=seed)
        load_s = round(time.perf_counter() - t, 2)
    build_wall, build_rss, out = _run(LWDOCK + ["catalog", "reindex", "--home", str(home)])
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    done = {"n": n, "seed": seed, "bulk_load_s": load_s,
            "index_build": {"wall_s": round(build_wall, 2), "cpu_s": round(out.cpu_s, 2),  # type: ignore[attr-defined]
                            "peak_rss_mib": round(build_rss, 1)}}
    stamp.write_text(json.dumps(done))
    return done


def _loaded(home: Path, n: int, seed: int) -> int:
    """Learnwares 0 … n−1 already in a synthetic market's catalog; rows a killed run left beyond them are deleted."""
    from benchmarks.scale.market import MARKER_FILE, delete_rows
    from lwlib.market.scan import open_read_only, page_ids

    if not (home / MARKER_FILE).exists() or not (home / "catalog.duckdb").exists():
        return 0
    with open_read_only(home / "catalog.duckdb") as cat:
        total, ids = page_ids(cat, limit=10**9)
    wanted = {synthetic_id(i, seed) for i in range(n)}
    extra = [i for i in ids if i not in wanted]
    if extra:
        delete_rows(home, extra)
    return total - len(extra)


def run_size(n: int, base: Path, *, runs: int, queries: int, seed: int) -> dict[str, Any]:
    home = base / f"n{n}"
    built = _build(home, n, seed)
    means = market_means(n, seed)
    rng = np.random.default_rng(seed + 1)
    pairs = [make_query(means, rng) for _ in range(queries)]
    qs = [p[1] for p in pairs]
    np.save(home / "user.npy", qs[0])
    from benchmarks.report import machine_stamp

    row: dict[str, Any] = {"n": n, "machine": machine_stamp(), "bulk_load_s": built["bulk_load_s"],
                           "index_build": built["index_build"],
                           "market_reused": built.get("reused", False)}
    row["incremental"] = measure_updates(home, n)
    row["cli_search"] = _timed_cli(["search", "-d", str(home / "user.npy"), "--home", str(home)], runs)
    row["cli_list"] = _timed_cli(["list", "--home", str(home)], runs)
    k = len(qs) if n < 50_000 else min(len(qs), 20)  # the exact ranking costs ~10 s per query at 10⁵
    row["recall"] = measure_recall(home, qs[:k], [p[0] for p in pairs][:k], seed)
    from lwlib.market import MarketSnapshot

    snap = MarketSnapshot.open(home)
    specs = [snap.user_spec(q).to_dict() for q in qs]
    row["api"] = measure_api(home, qs, specs)
    row["index_bytes"] = sum(p.stat().st_size for p in (home / "search-index").rglob("*") if p.is_file())
    row["catalog_bytes"] = (home / "catalog.duckdb").stat().st_size
    return row


def _tree_cpu_s() -> dict[str, float]:
    """CPU seconds of this process, of its reaped children (the sandboxed checks) and of its live descendants
    (the Prefect API server)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    parent: dict[int, int] = {}
    ticks: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)] = int(fields[1])
        ticks[int(d.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    live = 0.0
    for pid in ticks:
        p = parent.get(pid)
        while p and p != os.getpid():
            p = parent.get(p)
        if p == os.getpid() and pid != os.getpid():
            live += ticks[pid]
    return {"process": me.ru_utime + me.ru_stime, "reaped_children": kids.ru_utime + kids.ru_stime,
            "live_descendants": live}


def measure_submissions(n: int, base: Path, *, workers: int | None = None) -> dict[str, Any]:
    """Issue 13's throughput row: ``n`` distinct small learnwares through ``flows.submit.submit_batch``, warm.

    One extra learnware is submitted first, alone, to warm what a running dock has warm (the runtime cache for
    scikit-learn, the Prefect API, MLflow's store); then the ``n`` go in one batch flow, ``workers`` at a time
    (``LWDOCK_SUBMIT_WORKERS``; default the flow's). Afterwards every one must be USABLE in the catalog and have
    a registry version. Per-stage seconds are the submissions' own step timings (``SubmissionResult.timings``),
    summed over the batch: with ``workers`` > 1 they overlap, so their sum exceeds the wall time.
    """
    from sklearn.linear_model import LogisticRegression

    from lwlib.learnware.packager import package_learnware
    from lwlib.semantic import make_semantic_spec

    home = base / "submissions"
    if workers:
        os.environ["LWDOCK_SUBMIT_WORKERS"] = str(workers)
    from lwlib.settings import configure_process

    configure_process(home)
    from flows.submit import batch_workers, submit_batch

    rng = np.random.default_rng(0)
    zips = []
    t = time.perf_counter()
    for i in range(n + 1):
        X = rng.normal(i % 7, 1, (200, D))
        y = (X[:, 0] > i % 7).astype(int)
        spec = make_semantic_spec(name=f"throughput {i}", description="throughput benchmark", input_dimension=D,
                                  output_dimension=2)
        z = base / "zips" / f"lw{i}.zip"  # a kept --workdir keeps its zips: a re-run (new home) skips packaging
        zips.append(str(z if z.exists() else package_learnware(LogisticRegression().fit(X, y), X, spec, z)))
    package_s = time.perf_counter() - t
    t = time.perf_counter()
    warm = submit_batch(zip_paths=zips[:1])  # the runtime cache, the Prefect API, MLflow's store
    warm_s = time.perf_counter() - t
    load_before = os.getloadavg()
    cpu0, t = _tree_cpu_s(), time.perf_counter()
    results = submit_batch(zip_paths=zips[1:])
    wall = time.perf_counter() - t
    cpu1 = _tree_cpu_s()
    parts = {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0}
    cpu = sum(parts.values())
    load_after = os.getloadavg()
    from lwlib.catalog import Catalog
    from lwlib.dock import Dock

    dock = Dock.from_env(str(home))
    with Catalog.open(home / "catalog.duckdb", read_only=True) as cat:
        usable_in_catalog = {r.id for r in cat.list(status="USABLE")}
    registered = {v.sha256 for v in dock.registry.list_versions() if v.usable}  # sha256 of the zip = the id
    ids = [r.learnware_id for r in results]
    stages: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.timings.items():
            stages.setdefault(k, []).append(float(v))
    from benchmarks.report import machine_stamp

    return {"n": len(results), "workers": batch_workers(), "wall_s": round(wall, 1),
            "per_minute": round(60 * len(results) / wall, 1), "target_s": 180,
            "usable": sum(r.status.value == "USABLE" for r in results),
            "in_catalog_usable": sum(i in usable_in_catalog for i in ids),
            "in_registry_usable": sum(i in registered for i in ids),
            "duplicates": sum(r.duplicate for r in results),
            "not_usable": [{"source": r.source, "status": r.status.value, "reason": r.reason[:300]}
                           for r in results if r.status.value != "USABLE"][:10],
            "warm_up": {"n": len(warm), "wall_s": round(warm_s, 1), "status": [r.status.value for r in warm]},
            "package_s": round(package_s, 1),
            "cpu_s": {"total": round(cpu, 1), "per_submission": round(cpu / max(1, len(results)), 2), **parts,
                      "note": "a child that ended during the batch counts once reaped (its parent waited)"},
            "stage_seconds": {k: {"sum": round(sum(v), 1), "median": round(statistics.median(v), 2),
                                  "max": round(max(v), 2)} for k, v in stages.items()},
            "load_avg_before": [round(x, 2) for x in load_before], "load_avg_after": [round(x, 2) for x in load_after],
            "machine": machine_stamp()}


def markdown(rows: list[dict[str, Any]], commands: dict[str, str], extra: dict[str, Any]) -> str:
    head = ("| N | search CLI s (min/med/max, CPU med) | list CLI s (min/med/max, CPU med, 1-min load med) "
            "| API p50/p99 ms (RKME) "
            "| API p50/p99 ms (rows) | recall@10 | top-1 = source | add 1, ms median (in the writer's connection) "
            "| delete 1 (ms) | index build s | build RSS MiB | API RSS MiB | CLI search RSS MiB |\n|" + "---|" * 13
            + "\n")
    lines = []
    for r in rows:
        cs, cl, api = r["cli_search"]["wall_s"], r["cli_list"]["wall_s"], r["api"]
        lines.append(
            f"| {r['n']:,} | {cs['min']:.2f} / {cs['median']:.2f} / {cs['max']:.2f} "
            f"(CPU {r['cli_search']['cpu_s']['median']:.2f}) | {cl['min']:.2f} / {cl['median']:.2f} / {cl['max']:.2f} "
            f"(CPU {r['cli_list']['cpu_s']['median']:.2f}, load {r['cli_list']['load_avg_1min']['median']:.1f}) | "
            f"{api['search_rkme']['p50_ms']:.1f} / "
            f"{api['search_rkme']['p99_ms']:.1f} | {api['search_rows']['p50_ms']:.1f} / "
            f"{api['search_rows']['p99_ms']:.1f} | {r['recall']['recall_at_10']:.3f} | "
            f"{r['recall']['top1_is_source']:.2f} | {1000 * r['incremental']['add']['seconds']['median']:.0f} "
            f"({1000 * r['incremental'].get('add_in_writer', r['incremental']['add'])['seconds']['median']:.0f}) | "
            f"{1000 * r['incremental']['remove']['seconds']['median']:.0f} | {r['index_build']['wall_s']:.1f} | "
            f"{r['index_build']['peak_rss_mib']:.0f} | {api['peak_rss_mib']:.0f} | "
            f"{r['cli_search']['peak_rss_mib_max']:.0f} |")
    how = "".join(f"- {what}: `{c}`\n" for what, c in (("rows", commands.get("rows")),
                                                        ("list column (re-measured alone)", commands.get("cli_list")),
                                                        ("submissions", commands.get("submissions"))) if c)
    return (f"Reproduce:\n{how}\nSynthetic spec-only learnwares (K=100, d=20; registry_name `lwdock-synthetic`), "
            "fresh home per N. Targets (issue 13): search CLI ≤ 1.5 s at 10⁴ and ≤ 3 s at 10⁵; list ≤ 0.5 s "
            "at 10⁵; API p50 ≤ 50 ms, p99 ≤ 200 ms, recall@10 ≥ 0.98 at 10⁵; add one ≤ 100 ms at 10⁵; API RSS "
            "≤ 2 GB. Wall times on a shared 2-core machine include waiting for other processes: the 1-minute load "
            "average during the CLI runs is in the JSON (`load_avg_1min`), and CPU seconds are given beside.\n\n"
            + head + "\n".join(lines) + "\n" + _submissions_md(extra.get("submissions")))


def _submissions_md(sub: dict[str, Any] | None) -> str:
    if not sub:
        return ""
    stages = " · ".join(f"{k} {v['median']:.1f} s" for k, v in sub.get("stage_seconds", {}).items())
    cpu = sub.get("cpu_s")
    split = (f" (dock process {cpu['process']:.0f} s, sandboxed checks {cpu['reaped_children']:.0f} s, Prefect API "
             f"server {cpu['live_descendants']:.0f} s)" if cpu and "process" in cpu else "")
    cpu_line = (f"CPU of the whole batch (this process, its children and the Prefect API server): {cpu['total']:.0f} s"
                f"{split}, {cpu['per_submission']:.1f} s per submission.\n" if cpu else "")
    return (f"\n## Submission throughput (issue 13: 100 warm submissions ≤ 3 min)\n\n"
            f"| submissions | workers | wall s | per minute | USABLE | in catalog (USABLE) | in registry (USABLE) "
            f"| load avg 1 min before → after |\n|---|---|---|---|---|---|---|---|\n"
            f"| {sub['n']} | {sub.get('workers', '?')} | {sub['wall_s']:.1f} | {sub['per_minute']:.1f} | {sub['usable']} "
            f"| {sub.get('in_catalog_usable', '?')} | {sub.get('in_registry_usable', '?')} "
            f"| {sub.get('load_avg_before', ['?'])[0]} → {sub.get('load_avg_after', ['?'])[0]} |\n\n"
            f"Median seconds per stage (each submission's own timings; they overlap across workers): {stages}.\n"
            + cpu_line + (f"Machine: {sub['machine']}\n" if "machine" in sub else ""))


def list_only(n: int, base: Path, *, runs: int, seed: int) -> dict[str, Any]:
    """``lwdock list`` alone on a bulk-loaded market (it reads no index, so none is built): the ``cli_list`` cell."""
    from benchmarks.report import machine_stamp

    home = base / f"n{n}"
    if _loaded(home, n, seed) != n:
        write_market(home, n, seed=seed)
    return {**_timed_cli(["list", "--home", str(home)], runs), "machine": machine_stamp()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    ap.add_argument("--runs", type=int, default=5, help="CLI runs per command after one warm-up (≥ 3)")
    ap.add_argument("--queries", type=int, default=100, help="API requests / recall queries per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="where the synthetic homes go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic homes")
    ap.add_argument("--only", choices=["list"], default=None,
                    help="measure only `lwdock list` (no index build) and replace that cell of the stored rows")
    ap.add_argument("--submissions", type=int, default=0, help="also time N warm submissions (needs the flows)")
    ap.add_argument("--submit-workers", type=int, default=None,
                    help="submissions run at once by the batch flow (default: LWDOCK_SUBMIT_WORKERS or the flow's)")
    ap.add_argument("--out", default="scale", help="result file stem under benchmarks/results/")
    ap.add_argument("--merge", action="store_true", help="keep rows of other sizes already in the result file")
    a = ap.parse_args(argv)
    cmd = ("python -m benchmarks.scale " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    base = a.workdir or Path(tempfile.mkdtemp(prefix="lwdock-scale-"))
    rows: list[dict[str, Any]] = []
    lists: dict[int, dict[str, Any]] = {}
    try:
        for n in a.sizes:
            print(f"N = {n:,} …", flush=True)
            if a.only == "list":
                lists[n] = list_only(n, base, runs=max(3, a.runs), seed=a.seed)
                print(json.dumps(lists[n], indent=1), flush=True)
            else:
                rows.append(run_size(n, base, runs=max(3, a.runs), queries=a.queries, seed=a.seed))
                print(json.dumps(rows[-1], indent=1), flush=True)
        extra = {"submissions": measure_submissions(a.submissions, base, workers=a.submit_workers)} \
            if a.submissions else {}
    finally:
        if not a.keep and a.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    from benchmarks.report import write_results

    previous = RESULTS / f"{a.out}.json"  # read now, not at the start: another run may have written it meanwhile
    old = json.loads(previous.read_text()) if previous.exists() and (a.merge or a.only) else {}
    commands = dict(old.get("commands") or ({"rows": old["command"]} if "command" in old else {}))
    if a.sizes and not a.only:
        commands["rows"] = cmd
    if lists:
        commands["cli_list"] = cmd
    if extra:
        commands["submissions"] = cmd
    if old:  # keep what this run did not measure (each row, list cell and submission row has its own stamp)
        rows = sorted([r for r in old.get("rows", []) if r["n"] not in {x["n"] for x in rows}] + rows,
                      key=lambda r: r["n"])
        extra = {**{k: v for k, v in old.items() if k == "submissions"}, **extra}
    missing = sorted(set(lists) - {r["n"] for r in rows})
    if missing:
        raise SystemExit(f"--only list replaces the list cell of stored rows; no row for N = {missing}: run the "
                         "full benchmark for those sizes first")
    for r in rows:
        if r["n"] in lists:
            r["cli_list"] = lists[r["n"]]
    write_results(RESULTS, a.out, {"commands": commands, "rows": rows, **extra}, markdown(rows, commands, extra))
    print(f"wrote {RESULTS / a.out}.json and .md")


if __name__ == "__main__":
    main()
