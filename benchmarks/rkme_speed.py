"""Speed and quality of table RKME fitting, against a reference-like baseline.

Run ``python -m benchmarks.rkme_speed [--quick] [--out FILE]``. For each (n, d) the script times
``RKMETableSpec(reduced_set_size=100).fit`` (min/median/max over ``--repeats`` runs), samples the peak resident
memory during the fit, and evaluates MMD²(spec, data). The baseline re-implements what LEARNWARE_FORMAT.md §3.1
describes for the reference: MiniBatchKMeans init, β by the simplex QP, then 3 × (one step of 0.1 along the
half-weighted gradient, β QP).

MMD² = βᵀKzzβ − 2βᵀc(full data) + S, where the data self-term S is estimated on one fixed subsample of at most
5 000 points (shared by both methods, so their difference is exact).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lwlib.rkme.kernels import rbf_kernel
from lwlib.rkme.rkme import RKMETableSpec, _data_terms, _solve_beta

logger = logging.getLogger(__name__)

SIZES = [1_000, 10_000, 50_000]
DIMS = [10, 50]
K = 100
GAMMA = 0.1
SELF_TERM_SAMPLE = 5_000


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """A 5-component Gaussian mixture with unit-scale centres and 0.5 within-cluster std (standardised-ish)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (5, d))
    labels = rng.integers(0, 5, n)
    return centres[labels] + 0.5 * rng.normal(size=(n, d))


class PeakRSS:
    """Samples this process's resident set size in a thread to catch the peak during a block (torch-aware)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.base = self.rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def reference_like(X: np.ndarray, k: int, gamma: float, steps: int = 3, step_size: float = 0.1,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The reference recipe (§3.1), vectorised: MiniBatchKMeans, QP, 3 × (half-weighted gradient step, QP)."""
    from sklearn.cluster import MiniBatchKMeans

    Xt = torch.from_numpy(X)
    x2 = (Xt * Xt).sum(1)
    km = MiniBatchKMeans(n_clusters=k, max_iter=100, n_init="auto", random_state=seed).fit(X.astype(np.float32))
    Z = torch.from_numpy(km.cluster_centers_.astype(np.float64))
    c, M = _data_terms(Z, Xt, x2, gamma)
    beta = _solve_beta(rbf_kernel(Z, Z, gamma), c, True)
    for _ in range(steps):
        W = rbf_kernel(Z, Z, gamma) * beta[None, :]
        A = W.sum(1, keepdim=True) * Z - W @ Z
        B = c[:, None] * Z - M
        grad = -2.0 * gamma * beta[:, None] * (A - 2.0 * B)  # Z–Z term half-weighted, as in the reference
        Z = Z - step_size * grad
        c, M = _data_terms(Z, Xt, x2, gamma)
        beta = _solve_beta(rbf_kernel(Z, Z, gamma), c, True)
    return Z.numpy(), beta.numpy()


def mmd2_to_data(z: np.ndarray, beta: np.ndarray, X: np.ndarray, self_term: float, gamma: float) -> float:
    """βᵀKβ − 2βᵀc over all of X, plus the shared data self-term estimate."""
    Zt, bt, Xt = torch.from_numpy(z), torch.from_numpy(beta), torch.from_numpy(X)
    c, _ = _data_terms(Zt, Xt, (Xt * Xt).sum(1), gamma, need_m=False)
    return float(bt @ rbf_kernel(Zt, Zt, gamma) @ bt - 2.0 * (bt @ c)) + self_term


def data_self_term(X: np.ndarray, gamma: float, seed: int = 1) -> float:
    """mean k(x, x') on a fixed subsample (exact when n ≤ SELF_TERM_SAMPLE)."""
    if X.shape[0] > SELF_TERM_SAMPLE:
        X = X[np.random.default_rng(seed).choice(X.shape[0], SELF_TERM_SAMPLE, replace=False)]
    return float(rbf_kernel(X, X, gamma).mean())


def _timed(fn: Any, repeats: int) -> tuple[list[float], float, Any]:
    times, peak, out = [], 0.0, None
    for _ in range(repeats):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        peak = max(peak, mem.delta_mb)
    return times, peak, out


def run(quick: bool = False, repeats: int = 3) -> list[dict[str, Any]]:
    """Benchmark every (n, d); ``quick`` keeps n ≤ 10 000 and one repeat."""
    rows = []
    sizes = [s for s in SIZES if s <= 10_000] if quick else SIZES
    for n in sizes:
        for d in DIMS:
            X = make_data(n, d)
            S = data_self_term(X, GAMMA)
            times, peak, spec = _timed(lambda: RKMETableSpec(reduced_set_size=K, gamma=GAMMA).fit(X), repeats)
            btimes, bpeak, (bz, bb) = _timed(lambda: reference_like(X, spec.z_.shape[0], GAMMA), repeats)
            row = {
                "n": n, "d": d, "K": int(spec.z_.shape[0]), "threads": torch.get_num_threads(),
                "fit_s": {"min": min(times), "median": statistics.median(times), "max": max(times)},
                "peak_rss_delta_mb": round(peak, 1),
                "iterations": len(spec.objective_history_) - 1,
                "mmd2": mmd2_to_data(spec.z_, spec.beta_, X, S, GAMMA),
                "baseline_fit_s": {"min": min(btimes), "median": statistics.median(btimes), "max": max(btimes)},
                "baseline_peak_rss_delta_mb": round(bpeak, 1),
                "baseline_mmd2": mmd2_to_data(bz, bb, X, S, GAMMA),
            }
            rows.append(row)
            sys.stdout.write(
                f"n={n:>6} d={d:>3} K={row['K']:>3} fit min/med/max {row['fit_s']['min']:.2f}/"
                f"{row['fit_s']['median']:.2f}/{row['fit_s']['max']:.2f}s  peak+{row['peak_rss_delta_mb']:.0f}MB  "
                f"iters {row['iterations']:>2}  MMD² {row['mmd2']:.3e}  | baseline "
                f"{row['baseline_fit_s']['median']:.2f}s MMD² {row['baseline_mmd2']:.3e}\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n ≤ 10 000, one repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(quick=args.quick, repeats=args.repeats or (1 if args.quick else 3))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"benchmark": "rkme_speed", "cpus": os.cpu_count(), "load_avg_after": os.getloadavg()}
        args.out.write_text(json.dumps({**meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
