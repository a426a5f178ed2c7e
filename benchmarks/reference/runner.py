"""Run the reference ``learnware`` package (PyPI 0.4.0.post1) on our inputs; executed INSIDE ``.venv-reference``.

Why a separate script: the reference needs numpy<2 / an older scikit-learn, so it lives in its own venv and is
driven through files by ``benchmarks/reference/driver.py``. This file may import ``learnware``; it must never import
our ``lwlib``. Every component is wrapped so one failure becomes ``{"error": ...}`` in the JSON instead of a crash.

Modes
-----
``market``: build an ``easy`` market from a folder of learnware zips, then for each user generate the reference
RKME, search, and reuse (top-1, JobSelector, Averaging; EnsemblePruning / FeatureAugment when labels are given).
``timing``: RKME generation time for n x d grids and statistical search latency over N synthetic learnwares.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, Callable

# Executed by file path: drop this folder from sys.path so sibling files (driver.py) never shadow a library module.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import numpy as np  # noqa: E402

SPEC_TYPE = "RKMETableSpecification"


def _err(exc: BaseException) -> dict:
    """Error cell: the table leaves it empty; the traceback tail says why."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"error": f"{type(exc).__name__}: {exc}", "traceback": "".join(tb[-3:])[-1500:]}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _tolist(pred: Any) -> list:
    if hasattr(pred, "detach"):
        pred = pred.detach().cpu().numpy()
    return np.asarray(pred).tolist()


def _summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def init_reference(root: Path) -> None:
    """Point every reference path (market, sqlite DB, cache) at ``root`` so nothing touches ~/.learnware."""
    import learnware

    root.mkdir(parents=True, exist_ok=True)
    db = root / "database"
    learnware.init(
        verbose=False,
        root_path=str(root),
        market_root_path=str(root),
        database_path=str(db),
        stdout_path=str(root / "stdout"),
        cache_path=str(root / "cache"),
        database_url=f"sqlite:///{db}",
    )


def _read_zip_semantic(zip_path: Path) -> tuple[dict, list[str]]:
    """Semantic spec shipped in the zip, patched to what 0.4.0.post1's checker insists on.

    0.4.0.post1 added an ``Model`` key (``Optional``; Table/Image require ``Others``) that older-format specs lack,
    and the market itself patches a missing ``License`` to Apache-2.0. Patches are reported, never silent.
    """
    patches: list[str] = []
    with zipfile.ZipFile(zip_path) as zf:
        names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "semantic_specification.json"]
        if not names:
            raise FileNotFoundError(f"{zip_path.name}: no semantic_specification.json in the zip")
        sem = json.loads(zf.read(sorted(names, key=len)[0]).decode("utf-8"))
    if "Model" not in sem:
        sem["Model"] = {"Values": ["Others"], "Type": "Optional"}
        patches.append("Model=Others")
    if "License" not in sem:
        sem["License"] = {"Values": ["Apache-2.0"], "Type": "Class"}
        patches.append("License=Apache-2.0")
    return sem, patches


def build_market(zips_dir: Path, market_id: str) -> tuple[Any, dict, dict]:
    """Add every zip to a fresh ``easy`` market; returns (market, ref_id -> our id, per-zip report)."""
    from learnware.market import instantiate_learnware_market

    market = instantiate_learnware_market(market_id=market_id, name="easy", rebuild=True)
    id_map: dict[str, str] = {}
    report: dict[str, dict] = {}
    for zp in sorted(zips_dir.glob("*.zip")):
        ours = zp.stem
        try:
            sem, patches = _read_zip_semantic(zp)
            (ref_id, status), secs = _timed(lambda: market.add_learnware(str(zp), semantic_spec=sem))
            report[ours] = {"ref_id": ref_id, "status": int(status), "seconds": secs, "semantic_patches": patches}
            if ref_id is not None:
                id_map[ref_id] = ours
            else:
                report[ours]["error"] = "rejected as INVALID by the reference checkers"
        except Exception as exc:  # noqa: BLE001 - one bad zip must not stop the run
            report[ours] = _err(exc)
    return market, id_map, report


def _labelled_reuse(learnwares: list, X: np.ndarray, Xl: np.ndarray, yl: np.ndarray, sizes: list[int],
                    mode: str, maxgen: int) -> dict:
    """FeatureAugment and EnsemblePruning fitted on the first n labelled rows, for each n."""
    from learnware.reuse import EnsemblePruningReuser, FeatureAugmentReuser

    out: dict[str, dict] = {"feature_augment": {}, "ensemble_pruning": {}}
    for n in sizes:
        Xn, yn = Xl[:n], yl[:n]
        for name, make, fit in (
            ("feature_augment", lambda: FeatureAugmentReuser(learnwares, mode=mode), lambda r: r.fit(Xn, yn)),
            ("ensemble_pruning", lambda: EnsemblePruningReuser(learnwares, mode=mode),
             lambda r: r.fit(Xn, yn, maxgen=maxgen)),
        ):
            try:
                t0 = time.perf_counter()
                reuser = make()
                fit(reuser)
                t_fit = time.perf_counter() - t0
                pred, t_pred = _timed(lambda: reuser.predict(X))
                out[name][str(n)] = {"pred": _tolist(pred), "fit_seconds": t_fit, "seconds": t_pred}
            except Exception as exc:  # noqa: BLE001
                out[name][str(n)] = _err(exc)
    return out


def run_user(market: Any, id_map: dict, user: dict, arrays: Any, opts: argparse.Namespace) -> dict:
    """One user: RKME -> search -> reuse; each step records its own time or error."""
    from learnware.market import BaseUserInfo
    from learnware.reuse import AveragingReuser, JobSelectorReuser
    from learnware.specification import generate_rkme_table_spec

    key = user["key"]
    X = np.asarray(arrays[f"{key}__X"], dtype=np.float64)
    res: dict[str, Any] = {"n": int(X.shape[0]), "d": int(X.shape[1]) if X.ndim > 1 else 1}
    try:
        spec, secs = _timed(lambda: generate_rkme_table_spec(X, gamma=opts.gamma, cuda_idx=-1))
        res["rkme"] = {"seconds": secs, "K": int(spec.z.shape[0])}
    except Exception as exc:  # noqa: BLE001
        res["rkme"] = _err(exc)
        return res
    try:
        info = BaseUserInfo(semantic_spec=user.get("semantic") or {}, stat_info={SPEC_TYPE: spec})
        result, secs = _timed(lambda: market.search_learnware(
            info, max_search_num=opts.max_search_num, search_method=opts.search_method))
        singles = result.get_single_results()
        mixes = result.get_multiple_results()
        res["search"] = {
            "seconds": secs,
            "single": [{"id": id_map.get(s.learnware.id, s.learnware.id), "ref_id": s.learnware.id,
                        "score": None if s.score is None else float(s.score)} for s in singles],
            "mixture": None if not mixes else {
                "ids": [id_map.get(lw.id, lw.id) for lw in mixes[0].learnwares], "score": float(mixes[0].score)},
        }
    except Exception as exc:  # noqa: BLE001
        res["search"] = _err(exc)
        return res
    if not singles:
        res["reuse"] = {"error": "search returned no learnware"}
        return res

    # The reference examples reuse the mixture when there is one, else the top-1 single.
    pool = list(mixes[0].learnwares) if mixes else [singles[0].learnware]
    res["reuse_pool"] = [id_map.get(lw.id, lw.id) for lw in pool]
    mode = user.get("task", "classification")
    avg_mode = user.get("averaging_mode") or ("mean" if mode == "regression" else "vote_by_label")
    reuse: dict[str, Any] = {}
    for name, fn in (
        ("top1", lambda: singles[0].learnware.predict(X)),
        ("job_selector", lambda: JobSelectorReuser(pool, herding_num=opts.herding_num).predict(X)),
        ("averaging", lambda: AveragingReuser(pool, mode=avg_mode).predict(X)),
    ):
        try:
            pred, secs = _timed(fn)
            reuse[name] = {"pred": _tolist(pred), "seconds": secs}
        except Exception as exc:  # noqa: BLE001
            reuse[name] = _err(exc)
    sizes = [int(n) for n in user.get("labelled_sizes") or []]
    if sizes and f"{key}__Xl" in arrays:
        Xl = np.asarray(arrays[f"{key}__Xl"], dtype=np.float64)
        yl = np.asarray(arrays[f"{key}__yl"])
        reuse.update(_labelled_reuse(pool, X, Xl, yl, sizes, mode, opts.maxgen))
    res["reuse"] = reuse
    return res


def run_market(opts: argparse.Namespace) -> dict:
    users = json.loads(Path(opts.users_json).read_text())
    arrays = np.load(opts.users_npz, allow_pickle=False)
    out: dict[str, Any] = {"mode": "market"}
    try:
        (market, id_map, report), secs = _timed(lambda: build_market(Path(opts.zips), opts.market_id))
        out["market"] = {"seconds": secs, "learnwares": report, "size": len(id_map)}
    except Exception as exc:  # noqa: BLE001
        out["market"] = _err(exc)
        return out
    out["users"] = {}
    for user in users:
        try:
            out["users"][user["key"]] = run_user(market, id_map, user, arrays, opts)
        except Exception as exc:  # noqa: BLE001
            out["users"][user["key"]] = _err(exc)
    return out


def _synthetic_learnwares(N: int, d: int, K: int, rng: np.random.Generator) -> list:
    """N in-memory learnwares (no model) with random RKMEs: cluster centres around a per-learnware mean."""
    import torch
    from learnware.learnware import Learnware
    from learnware.specification import RKMETableSpecification, Specification

    mus = rng.normal(0.0, 2.0, size=(N, 1, d))
    zs = mus + rng.normal(0.0, 1.0, size=(N, K, d))
    betas = rng.dirichlet(np.ones(K), size=N)
    sem = {"Data": {"Values": ["Table"], "Type": "Class"}}
    out = []
    for i in range(N):  # the reference stores one object per learnware; building them is not what we time
        spec = RKMETableSpecification(gamma=0.1, cuda_idx=-1)
        spec.z = torch.from_numpy(zs[i])
        spec.beta = torch.from_numpy(betas[i])
        spec.num_points = 1000
        out.append(Learnware(id="%08d" % i, model={"class_name": "Model", "module_path": "__init__.py"},
                             specification=Specification(semantic_spec=sem, stat_spec={SPEC_TYPE: spec}),
                             learnware_dirpath=""))
    return out


def run_timing(opts: argparse.Namespace) -> dict:
    """RKME generation grid and search latency; min/median/max over ``repeats`` runs."""
    from learnware.market import BaseUserInfo, EasyStatSearcher
    from learnware.specification import generate_rkme_table_spec

    rng = np.random.default_rng(opts.seed)
    data = np.load(opts.data_npz, allow_pickle=False) if opts.data_npz else None
    out: dict[str, Any] = {"mode": "timing", "rkme": {}, "search": {}}
    for n in opts.rkme_n:
        for d in opts.rkme_d:
            key = f"n={n},d={d}"
            try:
                name = f"rkme_{n}_{d}"
                X = np.asarray(data[name]) if data is not None and name in data else rng.standard_normal((n, d))
                runs, spec = [], None
                for _ in range(opts.repeats):
                    spec, secs = _timed(lambda: generate_rkme_table_spec(X, gamma=opts.gamma, cuda_idx=-1))
                    runs.append(secs)
                out["rkme"][key] = {**_summary(runs), "z": spec.get_z().tolist(), "beta": spec.get_beta().tolist()}
            except Exception as exc:  # noqa: BLE001
                out["rkme"][key] = _err(exc)
    for N in opts.search_n:
        key = f"N={N},d={opts.search_d}"
        try:
            lws = _synthetic_learnwares(N, opts.search_d, 100, rng)
            # The user's data: a blend of two learnwares' neighbourhoods, so a mixture is worth finding.
            Xu = np.concatenate([lws[0].specification.get_stat_spec()[SPEC_TYPE].get_z(),
                                 lws[1].specification.get_stat_spec()[SPEC_TYPE].get_z()])
            Xu = np.repeat(Xu, 5, axis=0) + rng.normal(0.0, 0.3, size=(Xu.shape[0] * 5, opts.search_d))
            info = BaseUserInfo(semantic_spec={}, stat_info={SPEC_TYPE: generate_rkme_table_spec(Xu, cuda_idx=-1)})
            searcher = EasyStatSearcher(organizer=None)
            full, single = [], []
            for _ in range(opts.repeats):
                res, secs = _timed(lambda: searcher(lws, info, max_search_num=opts.max_search_num,
                                                    search_method=opts.search_method))
                full.append(secs)
                searcher.stat_spec_type = SPEC_TYPE
                _, secs = _timed(lambda: searcher._search_by_rkme_spec_single(lws, info.stat_info[SPEC_TYPE]))
                single.append(secs)
            mixes = res.get_multiple_results()
            out["search"][key] = {
                "full": _summary(full), "single_only": _summary(single),
                "n_single_returned": len(res.get_single_results()),
                "mixture_ids": [lw.id for lw in mixes[0].learnwares] if mixes else [],
            }
        except Exception as exc:  # noqa: BLE001
            out["search"][key] = _err(exc)
    return out


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("market", "timing"):
        s = sub.add_parser(name)
        s.add_argument("--out", required=True)
        s.add_argument("--threads", type=int, default=1, help="torch threads (1 was the reference's fastest here)")
        s.add_argument("--gamma", type=float, default=0.1)
        s.add_argument("--max-search-num", type=int, default=5)
        s.add_argument("--search-method", default="greedy", choices=["greedy", "auto"])
        s.add_argument("--root", default=None, help="reference market root (default: a temp dir)")
    m = sub.choices["market"]
    m.add_argument("--zips", required=True)
    m.add_argument("--users-json", required=True)
    m.add_argument("--users-npz", required=True)
    m.add_argument("--market-id", default="bench")
    m.add_argument("--herding-num", type=int, default=100, help="as in the reference's table examples")
    m.add_argument("--maxgen", type=int, default=500)
    t = sub.choices["timing"]
    t.add_argument("--rkme-n", type=_ints, default=[1000, 10000, 50000])
    t.add_argument("--rkme-d", type=_ints, default=[10, 50])
    t.add_argument("--search-n", type=_ints, default=[100, 1000])
    t.add_argument("--search-d", type=int, default=10)
    t.add_argument("--repeats", type=int, default=3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-npz", default=None, help="optional arrays rkme_<n>_<d> to use instead of random data")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    import torch

    torch.set_num_threads(opts.threads)
    import learnware

    with tempfile.TemporaryDirectory(prefix="lwref-") as tmp:
        init_reference(Path(opts.root or tmp))
        t0 = time.perf_counter()
        out = run_market(opts) if opts.mode == "market" else run_timing(opts)
        out["meta"] = {
            "learnware": learnware.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "threads": opts.threads, "total_seconds": time.perf_counter() - t0,
            "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        }
    Path(opts.out).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
