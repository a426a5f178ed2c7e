"""Search latency of the dock's batched searcher against a reference-like loop, and the shortlist's recall.

Run ``python -m benchmarks.search_speed [--sizes 100 1000 10000] [--full] [--queries 10] [--out FILE]``.

Market: N synthetic table RKMEs (K=100, d=20): each learnware is a Gaussian blob N(μ_i, I) with μ_i ~ N(0, 2²I),
summarised by 100 points drawn from its blob with Dirichlet weights (no fitting: this benchmarks the search).
Queries: 100 points drawn from one learnware's blob (uniform β); mixture queries mix two blobs 0.7/0.3.

Timed per query (median over ``--queries``):

* ``dock single``: :func:`score_single` + top-10 (market kernel: RFF sketch → exact MMD² on a shortlist of 50;
  reference kernel: exact for all, as ``shortlist="auto"`` does there);
* ``dock exact``: the same with every compatible learnware scored exactly (batched, cached self terms);
* ``dock +mixture``: sketch ranking + greedy mixture (incremental Gram, batched small-QP solves);
* ``reference-like`` (N ≤ 1000): a Python loop over learnwares computing the three kernel matrices of each MMD²
  with the self terms recomputed (what LEARNWARE_FORMAT.md §5.2 step 3 describes), then the greedy mixture with
  one Clarabel QP per candidate per round over the best 25 — all under the same kernel (reference mode, γ=0.1).

``recall@10`` compares the sketch shortlist's top-10 with the exact top-10. Both searches use the same machine in
the same run, so the speedup is a like-for-like ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lwlib.search.index import SpecIndex
from lwlib.search.mixture import mixture_weights, search_mixture_greedy
from lwlib.search.single import score_single
from lwlib.rkme.kernels import rbf_kernel
from lwlib.rkme.rkme import RKMETableSpec

K, D, GAMMA, TOP_K = 100, 20, 0.1, 10


def _spec(z: np.ndarray, beta: np.ndarray) -> RKMETableSpec:
    s = RKMETableSpec()
    s.z_, s.beta_, s.gamma_, s.num_points_ = z, beta, GAMMA, 1000
    return s


def make_market(n: int, seed: int = 0) -> tuple[list[str], list[RKMETableSpec], np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 2.0, (n, D))
    Z = means[:, None, :] + rng.normal(size=(n, K, D))
    B = rng.dirichlet(np.ones(K), size=n)
    return [f"lw{i:06d}" for i in range(n)], [_spec(Z[i], B[i]) for i in range(n)], means


def make_query(means: np.ndarray, rng: np.random.Generator, mix: bool = False) -> RKMETableSpec:
    a, b = rng.choice(means.shape[0], 2, replace=False)
    if mix:
        src = np.where(rng.random(K) < 0.7, a, b)
        z = means[src] + rng.normal(size=(K, D))
    else:
        z = means[a] + rng.normal(size=(K, D))
    return _spec(z, np.full(K, 1.0 / K))


def reference_like(specs: list[RKMETableSpec], query: RKMETableSpec, max_search: int = 5) -> tuple[list[int], Any]:
    """Loop baseline: per-learnware MMD² with 3 kernel matrices, then greedy mixture with one QP per candidate."""
    qz, qb = torch.from_numpy(query.z_), torch.from_numpy(query.beta_)
    dists = []
    for s in specs:  # the reference's per-learnware loop (deliberately unbatched)
        z, b = torch.from_numpy(s.z_), torch.from_numpy(s.beta_)
        d = (qb @ rbf_kernel(qz, qz, GAMMA) @ qb - 2 * qb @ rbf_kernel(qz, z, GAMMA) @ b
             + b @ rbf_kernel(z, z, GAMMA) @ b)
        dists.append(float(d))
    order = list(np.argsort(dists))
    pool = [specs[i] for i in order[:max_search * max_search]]
    inner = lambda s1, s2: float(torch.from_numpy(s1.beta_) @ rbf_kernel(s1.z_, s2.z_, GAMMA)  # noqa: E731
                                 @ torch.from_numpy(s2.beta_))
    q_self = inner(query, query)
    sel, best = [0], dists[order[0]]
    while len(sel) < max_search:
        cands = [j for j in range(len(pool)) if j not in sel]
        trial = []
        for j in cands:  # one QP per candidate, Gram rebuilt from pairwise inner products
            idx = sel + [j]
            Km = np.array([[inner(pool[u], pool[v]) for v in idx] for u in idx])
            c = np.array([inner(query, pool[u]) for u in idx])
            w = mixture_weights(Km, c)
            trial.append(q_self + w @ Km @ w - 2 * c @ w)
        j = int(np.argmin(trial))
        if trial[j] > 0.95 * best:
            break
        best = trial[j]
        sel.append(cands[j])
    return order[:TOP_K], sel


def _median_time(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def run(n: int, queries: int, baseline: bool, seed: int = 0, shortlist: int | str = "auto") -> dict[str, Any]:
    ids, specs, means = make_market(n, seed)
    t = time.perf_counter()
    index = SpecIndex.build(ids, specs, eager_modes=("market", "reference"))
    build = time.perf_counter() - t
    rng = np.random.default_rng(seed + 1)
    qs = [make_query(means, rng, mix=(i % 2 == 1)) for i in range(queries)]
    row: dict[str, Any] = {"n": n, "build_s": build}
    for kernel in ("market", "reference"):
        sl = shortlist if kernel == "market" else "auto"
        single, exact, mixt, recall = [], [], [], []
        for q in qs:
            ts, r = _median_time(lambda: score_single(index, q, kernel=kernel, shortlist=sl).matches(TOP_K), 3)
            te, e = _median_time(lambda: score_single(index, q, kernel=kernel, shortlist=None).matches(TOP_K), 1)
            tm, _ = _median_time(lambda: search_mixture_greedy(score_single(index, q, kernel=kernel,
                                                                            shortlist=sl)), 3)
            single.append(ts)
            exact.append(te)
            mixt.append(tm)
            recall.append(len({m.learnware_id for m in r} & {m.learnware_id for m in e}) / TOP_K)
        row[kernel] = {"single_ms": 1e3 * statistics.median(single), "exact_ms": 1e3 * statistics.median(exact),
                       "single+mixture_ms": 1e3 * statistics.median(mixt), "recall@10": float(np.mean(recall))}
    if baseline:
        tb, agree = [], []
        for q in qs[: max(2, queries // 3)]:
            tq, (top, _) = _median_time(lambda: reference_like(specs, q), 1)
            tb.append(tq)
            ours = [index.positions[m.learnware_id][1] for m in
                    score_single(index, q, kernel="reference", shortlist=None).matches(TOP_K)]
            agree.append(ours == [int(i) for i in top])
        row["reference_like_ms"] = 1e3 * statistics.median(tb)
        row["reference_ranking_identical"] = bool(all(agree))
        for kernel in ("market", "reference"):
            row[kernel]["speedup"] = row["reference_like_ms"] / row[kernel]["single+mixture_ms"]
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("| N | build s | kernel | single ms | exact ms | single+mixture ms | recall@10 | ref-like ms | speedup |\n"
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        for kernel in ("market", "reference"):
            k = r[kernel]
            ref = f"{r['reference_like_ms']:.0f}" if "reference_like_ms" in r else "–"
            sp = f"{k['speedup']:.0f}×" if "speedup" in k else "–"
            lines.append(f"| {r['n']} | {r['build_s']:.2f} | {kernel} | {k['single_ms']:.2f} | {k['exact_ms']:.1f} | "
                         f"{k['single+mixture_ms']:.2f} | {k['recall@10']:.2f} | {ref} | {sp} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[100, 1_000, 10_000])
    p.add_argument("--full", action="store_true", help="also N=100 000 (≈ 3.5 GB RAM)")
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--baseline-max", type=int, default=1_000)
    p.add_argument("--shortlist", default="auto", help="market-mode shortlist (int or auto)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for both sides (0 = torch default)")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    sizes = list(a.sizes) + ([100_000] if a.full else [])
    rows = []
    for n in sizes:
        sl = a.shortlist if a.shortlist == "auto" else int(a.shortlist)
        rows.append(run(n, a.queries, baseline=n <= a.baseline_max, shortlist=sl))
        print(json.dumps(rows[-1]), flush=True)  # noqa: T201 (benchmark script output)
    print(f"\ntorch threads: {torch.get_num_threads()}\n" + _table(rows))  # noqa: T201
    if a.out:
        a.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
