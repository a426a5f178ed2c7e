"""Runtime overhead: environment build times (cold / warm cache / reuse) and per-call cost of the sandboxed worker.

Run: ``.venv/bin/python -m benchmarks.runtime_overhead [--calls 1000] [--json out.json]``.
Cold = empty uv cache (packages come from the local indexes/find-links); warm = shared cache, new env dir;
reuse = the env already exists (lock + marker check only). Prediction overhead compares the persistent, sandboxed
worker (venv, bwrap when available) against calling the same scikit-learn model in-process.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import pickle
import statistics
import tempfile
import textwrap
import time
from pathlib import Path


from lwlib.runtime import EnvironmentManager, ModelEntrySpec, Runtime, RuntimeTarget

INIT = textwrap.dedent('''
    import os, pickle
    from learnware.model import BaseModel

    class Model(BaseModel):
        def __init__(self):
            super().__init__(input_shape=(4,), output_shape=(1,))
            with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.pkl"), "rb") as fh:
                self.model = pickle.load(fh)

        def predict(self, X):
            return self.model.predict(X)
''')


def _timed(fn):  # noqa: ANN001, ANN202
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _latencies(fn, calls: int) -> list[float]:  # noqa: ANN001
    """Seconds per call of ``fn`` over ``calls`` calls."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(calls: int = 1000) -> dict[str, float]:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    reqs = [f"numpy=={importlib.metadata.version('numpy')}",
            f"scikit-learn=={importlib.metadata.version('scikit-learn')}"]
    res: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cold = EnvironmentManager(tmp_path / "envs-cold", tmp_path / "uv-cache")
        _, res["env_build_cold_cache_s"] = _timed(lambda: cold.ensure(reqs, mode="venv"))
        warm = EnvironmentManager(tmp_path / "envs-warm", tmp_path / "uv-cache")
        _, res["env_build_warm_cache_s"] = _timed(lambda: warm.ensure(reqs, mode="venv"))
        _, res["env_reuse_s"] = _timed(lambda: warm.ensure(reqs, mode="venv"))

        X, y = make_classification(n_samples=500, n_features=4, random_state=0)
        clf = LogisticRegression().fit(X, y)
        root = tmp_path / "lw"
        root.mkdir()
        (root / "__init__.py").write_text(INIT)
        (root / "model.pkl").write_bytes(pickle.dumps(clf))
        xb = X[:10]
        model, res["worker_start_s"] = _timed(lambda: Runtime.open(RuntimeTarget(root, ModelEntrySpec(), reqs),
                                                                   mode="venv", envs=warm))
        with model:
            res["protections"] = ",".join(model.protections)  # type: ignore[assignment]
            _, res["first_call_runtime_s"] = _timed(lambda: model.predict(xb))
            lat = _latencies(lambda: model.predict(xb), calls)
        res[f"runtime_{calls}_calls_s"] = sum(lat)
        res["runtime_median_call_us"] = statistics.median(lat) * 1e6
        _, res["inprocess_1_call_s"] = _timed(lambda: clf.predict(xb))
        inproc = _latencies(lambda: clf.predict(xb), calls)
        res[f"inprocess_{calls}_calls_s"] = sum(inproc)
        res["inprocess_median_call_us"] = statistics.median(inproc) * 1e6
        res["overhead_per_call_us"] = res["runtime_median_call_us"] - res["inprocess_median_call_us"]
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    res = run(args.calls)
    for k, v in res.items():
        print(f"{k:32s} {v:.4f}" if isinstance(v, float) else f"{k:32s} {v}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
