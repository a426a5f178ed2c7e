"""Part B of BENCHMARKS.md: RKME generation, search latency, submission through the flow, runtime overhead."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["rkme_figures", "search_figures", "runtime_figures", "submission_figures"]


def rkme_figures(full: bool) -> list[dict[str, Any]]:
    from benchmarks import rkme_speed

    return rkme_speed.run(quick=not full, repeats=3 if full else 1)


def search_figures(full: bool) -> list[dict[str, Any]]:
    from benchmarks import search_speed

    sizes = (100, 1_000, 10_000) if full else (100, 1_000)
    return [search_speed.run(n, queries=6, baseline=n <= 1_000) for n in sizes]


def runtime_figures(calls: int = 1000) -> dict[str, Any]:
    from benchmarks import runtime_overhead

    return runtime_overhead.run(calls=calls)


def _digit_zips(out: Path, count: int) -> list[str]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from lwlib.learnware.packager import package_learnware
    from lwlib.semantic import make_semantic_spec

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    zips = []
    for i in range(count):
        classes = rng.choice(10, size=4, replace=False)
        m = np.isin(y, classes)
        clf = LogisticRegression(max_iter=300).fit(X[m], y[m])
        sem = make_semantic_spec(name=f"Digits {i} {sorted(classes.tolist())}", description="digits subset model",
                                 input_dimension=64, output_dimension=10)
        zips.append(str(package_learnware(clf, X[m], sem, out / f"lw{i:02d}.zip")))
    return zips


def submission_figures(n: int = 20) -> dict[str, Any]:
    """End-to-end submission through the Prefect flow: one learnware with a cold runtime (a uv venv to build from
    an empty cache), one warm (same requirements: environment reused), and a batch of ``n`` (inherit mode)."""
    from flows.submit import submit_batch, submit_learnware

    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lwdock-bench-submit-") as tmp:
        root = Path(tmp)
        zips = _digit_zips(root / "zips", n + 2)
        import os

        os.environ["LWDOCK_UV_CACHE"] = str(root / "uv-cache")  # really cold: nothing downloaded yet
        home = root / "home-venv"
        t0 = time.perf_counter()
        r = submit_learnware(zip_path=zips[0], home=str(home), runtime_mode="venv")
        res["one_cold_venv_s"] = time.perf_counter() - t0
        res["one_cold_status"] = r.status.value
        res["one_cold_steps"] = r.timings
        t0 = time.perf_counter()
        r = submit_learnware(zip_path=zips[1], home=str(home), runtime_mode="venv")
        res["one_warm_venv_s"] = time.perf_counter() - t0
        res["one_warm_steps"] = r.timings
        t0 = time.perf_counter()
        rs = submit_batch(zip_paths=zips[2:], home=str(root / "home-batch"))
        res[f"batch_{n}_inherit_s"] = time.perf_counter() - t0
        res[f"batch_{n}_usable"] = sum(x.status.value == "USABLE" for x in rs)
    return res
