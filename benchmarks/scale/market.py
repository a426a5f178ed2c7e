"""Synthetic learnwares for the scale benchmark, bulk-loaded into a real catalog in a home of their own.

Each learnware is a Gaussian blob N(μ_i, I) in d = 20 features with μ_i ~ N(0, 2²I), summarised by K = 100 points
drawn from its blob with Dirichlet weights (as ``benchmarks.search_speed``): spec-only rows — no model, no zip,
no registry version. They are marked three ways so they can never pass for a user's learnwares:

* ``registry_name = "lwdock-synthetic"`` and no registry version or URI (``lwdock catalog rebuild`` would drop them:
  the registry, the system of record, does not know them);
* names ``synthetic-000123`` and the description "Synthetic benchmark learnware: spec only, no model";
* they are only ever written to a home the benchmark creates (default: a temporary directory), never
  ``$LWDOCK_HOME``: :func:`write_market` refuses a home that already holds a catalog it did not create.

Rows go in through the catalog's own schema (``Catalog.open`` migrates) and one bulk ``INSERT … SELECT`` from
Arrow per batch; the spec arrays travel as flat Arrow list buffers, never as Python lists.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SYNTHETIC_REGISTRY", "K", "D", "BATCH", "make_specs", "market_means", "write_market", "synthetic_id",
           "make_query"]

SYNTHETIC_REGISTRY = "lwdock-synthetic"
MARKER_FILE = ".lwdock-synthetic-market"
K, D, GAMMA = 100, 20, 0.1
BATCH = 10_000  # rows per bulk insert; also fixes which random stream each learnware is drawn from
_SCENARIOS = ("Business", "Financial", "Health", "Nature", "Education", "Industry")


def synthetic_id(i: int, seed: int = 0) -> str:
    return hashlib.sha256(f"lwdock-synthetic-{seed}-{i}".encode()).hexdigest()


def make_specs(n: int, seed: int = 0, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means (n, D), Z (n, K, D), beta (n, K)) of learnwares ``start … start+n-1`` (deterministic per index)."""
    means = np.empty((n, D))
    Z = np.empty((n, K, D))
    B = np.empty((n, K))
    for s in range(0, n, 4096):  # blocks of rows, each drawn from its own seeded stream (reproducible slices)
        e = min(n, s + 4096)
        rng = np.random.default_rng([seed, start + s])
        means[s:e] = rng.normal(0.0, 2.0, (e - s, D))
        Z[s:e] = means[s:e, None, :] + rng.normal(size=(e - s, K, D))
        B[s:e] = rng.dirichlet(np.ones(K), size=e - s)
    return means, Z, B


def market_means(n: int, seed: int = 0, batch: int = BATCH) -> np.ndarray:
    """Blob centres of learnwares 0 … n−1 exactly as :func:`write_market` drew them (batch by batch)."""
    return np.concatenate([make_specs(min(batch, n - s), seed, s)[0] for s in range(0, n, batch)])


def make_query(means: np.ndarray, rng: np.random.Generator, n_rows: int = 300) -> tuple[int, np.ndarray]:
    """User rows drawn from one learnware's blob: (that learnware's index, X of shape (n_rows, D))."""
    a = int(rng.integers(means.shape[0]))
    return a, means[a] + rng.normal(size=(n_rows, D))


def _semantic(i: int) -> dict[str, Any]:
    return {"Data": {"Type": "Class", "Values": ["Table"]}, "Task": {"Type": "Class", "Values": ["Classification"]},
            "Library": {"Type": "Class", "Values": ["Scikit-learn"]}, "License": {"Type": "Class", "Values": ["MIT"]},
            "Scenario": {"Type": "Tag", "Values": [_SCENARIOS[i % len(_SCENARIOS)]]},
            "Name": {"Type": "String", "Values": f"synthetic-{i:06d}"},
            "Description": {"Type": "String", "Values": "Synthetic benchmark learnware: spec only, no model"},
            "Input": {"Dimension": D, "Description": {}}, "Output": {"Dimension": 2, "Description": {}}}


def _arrow_batch(start: int, n: int, seed: int, t0: np.datetime64) -> tuple[Any, Any]:
    import pyarrow as pa

    _, Z, B = make_specs(n, seed, start)
    idx = np.arange(start, start + n)
    ids = [synthetic_id(int(i), seed) for i in idx]
    created = (t0 + idx.astype("timedelta64[ms]")).astype("datetime64[us]")
    lw = pa.table({
        "id": ids, "name": [f"synthetic-{i:06d}" for i in idx], "version": pa.array(np.ones(n, np.int32)),
        "status": ["USABLE"] * n, "reason": pa.nulls(n, pa.string()), "data_type": ["Table"] * n,
        "task_type": ["Classification"] * n, "library_type": ["Scikit-learn"] * n,
        "scenarios": [[_SCENARIOS[i % len(_SCENARIOS)]] for i in idx], "license": ["MIT"] * n,
        "description": ["Synthetic benchmark learnware: spec only, no model"] * n,
        "input_dim": pa.array(np.full(n, D, np.int32)), "output_dim": pa.array(np.full(n, 2, np.int32)),
        "spec_type": ["RKMETableSpecification"] * n, "spec_dim": pa.array(np.full(n, D, np.int32)),
        "spec_k": pa.array(np.full(n, K, np.int32)), "runtime_key": pa.nulls(n, pa.string()),
        "registry_name": [SYNTHETIC_REGISTRY] * n, "registry_version": pa.nulls(n, pa.string()),
        "registry_uri": pa.nulls(n, pa.string()), "zip_path": pa.nulls(n, pa.string()),
        "semantic": [json.dumps(_semantic(int(i))) for i in idx],
        "created_at": pa.array(created), "updated_at": pa.array(created)})
    meta = json.dumps({"z": None, "beta": None, "gamma": GAMMA, "num_points": 1000, "type": "RKMETableSpecification"})
    z_off = pa.array(np.arange(n + 1, dtype=np.int32) * (K * D))
    b_off = pa.array(np.arange(n + 1, dtype=np.int32) * K)
    sp = pa.table({
        "learnware_id": ids, "spec_type": ["RKMETableSpecification"] * n, "payload": [meta] * n,
        "k": pa.array(np.full(n, K, np.int32)), "d": pa.array(np.full(n, D, np.int32)),
        "gamma": pa.array(np.full(n, GAMMA)), "num_points": pa.array(np.full(n, 1000, np.int64)),
        "z": pa.ListArray.from_arrays(z_off, pa.array(Z.reshape(-1))),
        "beta": pa.ListArray.from_arrays(b_off, pa.array(B.reshape(-1)))})
    return lw, sp


def write_market(home: Path, n: int, *, seed: int = 0, start: int = 0, batch: int = BATCH) -> Path:
    """Append synthetic learnwares ``start … start+n-1`` to the catalog of ``home`` (created and marked here).

    Raises
    ------
    RuntimeError
        ``home`` holds a catalog that is not a synthetic market (never mix synthetic rows into a user's market).
    """
    from lwlib.catalog import Catalog, connect

    home = Path(home)
    catalog = home / "catalog.duckdb"
    if catalog.exists() and not (home / MARKER_FILE).exists():
        raise RuntimeError(f"{home} holds a catalog that is not a synthetic market; use an empty directory")
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER_FILE).write_text("synthetic learnwares of benchmarks/scale.py: spec only, no models\n")
    with Catalog.open(catalog):  # creates the schema through the catalog's own migrations
        pass
    t0 = np.datetime64("2026-01-01T00:00:00", "ms")
    with connect(catalog) as con:
        for s in range(start, start + n, batch):
            lw, sp = _arrow_batch(s, min(batch, start + n - s), seed, t0)
            con.execute("BEGIN TRANSACTION")
            con.register("lw_batch", lw)
            con.register("sp_batch", sp)
            for table, view, cols in (("learnwares", "lw_batch", lw.column_names),
                                      ("spec_payloads", "sp_batch", sp.column_names)):
                names = ", ".join(cols)
                con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
            con.execute("COMMIT")
            con.unregister("lw_batch")
            con.unregister("sp_batch")
    return catalog


def delete_rows(home: Path, ids: list[str]) -> None:
    """Delete learnwares through the catalog's own delete (one transaction each)."""
    from lwlib.catalog import Catalog

    with Catalog.open(Path(home) / "catalog.duckdb") as cat:
        for i in ids:
            cat.delete(i)
