"""Drive the reference ``learnware`` package from our venv: write inputs, run its runner, parse its JSON.

Why: the reference (PyPI 0.4.0.post1) needs numpy<2 and an older scikit-learn, so it runs in its own
``.venv-reference`` (built by ``setup_env.sh``). This module never imports ``learnware``; it only moves files and
runs ``runner.py`` as a subprocess with a timeout, in a throw-away ``HOME`` so the reference's ``~/.learnware``
side effects stay out of the user's home.

Usage: ``python -m benchmarks.reference.driver [--setup] [--out results.json]`` builds the venv when asked and runs
the timing mode (RKME generation grid, search latency at N = 100 / 1 000); part A of the benchmark calls
:func:`run_reference` with its market zips and users.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.errors import ReferenceRunError

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
RUNNER = HERE / "runner.py"
SETUP_SCRIPT = HERE / "setup_env.sh"
STAMP_NAME = ".reference-installed"
#: Variables that keep the reference (transformers, hf hub, torch) offline and quiet.
_QUIET_ENV = {"DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
              "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore", "CUDA_VISIBLE_DEVICES": ""}


@dataclass
class ReferenceUser:
    """One benchmark user as the reference sees it.

    Parameters
    ----------
    key : str
        Unique name; keys the results.
    X : ndarray (n, d)
        The user's unlabelled data (RKME + prediction target).
    semantic : dict, optional
        Reference-format semantic query (``{"Data": {"Values": [...], "Type": "Class"}, ...}``); empty = no filter.
    task : {"classification", "regression"}
        Selects the EnsemblePruning / FeatureAugment mode and the default averaging mode.
    averaging_mode : str, optional
        ``mean`` / ``vote_by_label`` / ``vote_by_prob``; default ``mean`` for regression, ``vote_by_label`` else.
    X_labelled, y_labelled : ndarray, optional
        Labelled pool; the first n rows are used for each n in ``labelled_sizes``.
    labelled_sizes : sequence of int
        Label budgets for the labelled reusers (empty: skip them).
    """

    key: str
    X: np.ndarray
    semantic: dict | None = None
    task: str = "classification"
    averaging_mode: str | None = None
    X_labelled: np.ndarray | None = None
    y_labelled: np.ndarray | None = None
    labelled_sizes: Sequence[int] = field(default_factory=tuple)


def venv_path() -> Path:
    """Reference venv location (``LWDOCK_REFERENCE_VENV`` overrides ``<repo>/.venv-reference``)."""
    return Path(os.environ.get("LWDOCK_REFERENCE_VENV", REPO_ROOT / ".venv-reference"))


def available(venv: Path | None = None) -> tuple[bool, str]:
    """Whether the reference can run here, and if not, why (the benchmark prints the reason in its table)."""
    venv = Path(venv) if venv is not None else venv_path()
    py = venv / "bin" / "python"
    if not py.exists():
        return False, f"no reference venv at {venv}: run `bash {SETUP_SCRIPT.relative_to(REPO_ROOT)}`"
    if not (venv / STAMP_NAME).exists():
        return False, f"reference venv at {venv} is incomplete (no {STAMP_NAME}): re-run the setup script"
    return True, f"learnware 0.4.0.post1 in {venv}"


def setup(timeout: float = 1800.0) -> Path:
    """Build (or verify) the reference venv with ``setup_env.sh``; idempotent and cheap when up to date."""
    env = {**os.environ, "REFERENCE_VENV": str(venv_path())}
    try:
        proc = subprocess.run(["bash", str(SETUP_SCRIPT)], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ReferenceRunError(f"building the reference venv took over {timeout:.0f} s; re-run "
                                f"`bash {SETUP_SCRIPT}` by hand to see where it stalls") from exc
    if proc.returncode != 0:
        raise ReferenceRunError(f"building the reference venv failed (exit {proc.returncode}): "
                                f"{proc.stderr.strip()[-800:]}", returncode=proc.returncode)
    return venv_path()


def write_inputs(users: Sequence[ReferenceUser | dict], workdir: Path) -> tuple[Path, Path]:
    """Write ``users.json`` (metadata) and ``users.npz`` (arrays ``<key>__X``, ``__Xl``, ``__yl``) for the runner."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    meta: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    for u in users:
        u = u if isinstance(u, ReferenceUser) else ReferenceUser(**u)
        if "__" in u.key or any(m["key"] == u.key for m in meta):
            raise ValueError(f"user key {u.key!r} is duplicated or contains '__'; give each user a plain unique key")
        X = np.asarray(u.X, dtype=np.float64)
        arrays[f"{u.key}__X"] = X.reshape(len(X), -1)
        sizes = [int(n) for n in u.labelled_sizes]
        if sizes and (u.X_labelled is None or u.y_labelled is None):
            raise ValueError(f"user {u.key!r} asks for labelled sizes {sizes} but has no X_labelled / y_labelled")
        if sizes:
            arrays[f"{u.key}__Xl"] = np.asarray(u.X_labelled, dtype=np.float64).reshape(len(u.X_labelled), -1)
            arrays[f"{u.key}__yl"] = np.asarray(u.y_labelled)
        meta.append({"key": u.key, "semantic": u.semantic or {}, "task": u.task,
                     "averaging_mode": u.averaging_mode, "labelled_sizes": sizes})
    users_json, users_npz = workdir / "users.json", workdir / "users.npz"
    users_json.write_text(json.dumps(meta))
    np.savez(users_npz, **arrays)
    return users_json, users_npz


def _run_runner(args: list[str], out_json: Path, timeout: float, venv: Path | None, workdir: Path) -> dict:
    """Run ``runner.py`` in the reference venv with a private HOME; return its parsed JSON or raise."""
    ok, reason = available(venv)
    if not ok:
        raise ReferenceRunError(reason)
    py = (Path(venv) if venv is not None else venv_path()) / "bin" / "python"
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(_QUIET_ENV, HOME=str(home))
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    if out_json.exists():
        out_json.unlink()
    log = workdir / "runner.log"
    cmd = [str(py), str(RUNNER), *args, "--out", str(out_json)]
    logger.info("running the reference: %s", " ".join(cmd))
    t0 = time.perf_counter()
    try:
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, env=env, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ReferenceRunError(f"the reference runner exceeded its {timeout:.0f} s timeout; raise `timeout` or "
                                f"shrink the inputs (log: {log})", log=log) from exc
    if proc.returncode != 0 or not out_json.exists():
        tail = log.read_text(errors="replace")[-1500:]
        raise ReferenceRunError(f"the reference runner exited with {proc.returncode} and "
                                f"{'no' if not out_json.exists() else 'an'} output; log tail:\n{tail}",
                                returncode=proc.returncode, log=log)
    result = json.loads(out_json.read_text())
    result.setdefault("meta", {})["wall_seconds"] = time.perf_counter() - t0
    return result


def run_reference(zips_dir: str | Path, users: Sequence[ReferenceUser | dict], out_json: str | Path,
                  timeout: float = 3600.0, *, threads: int = 1, max_search_num: int = 5,
                  search_method: str = "greedy", herding_num: int = 100, maxgen: int = 500,
                  venv: Path | None = None) -> dict:
    """Build a reference ``easy`` market from ``zips_dir`` and run every user through search and reuse.

    Zips must be in the reference layout and carry ``semantic_specification.json``; results name learnwares by
    zip stem (so name the zips ``<our id>.zip``). Returns the runner's JSON: ``market.learnwares[<id>]`` (ref id,
    status, errors), ``users[<key>]`` with ``rkme``, ``search`` (``single`` ids/scores, ``mixture``), ``reuse_pool``
    and ``reuse`` (``top1``, ``job_selector``, ``averaging``, ``feature_augment[n]``, ``ensemble_pruning[n]``,
    each ``{"pred", "seconds"}`` or ``{"error"}``).
    """
    zips_dir = Path(zips_dir)
    if not any(zips_dir.glob("*.zip")):
        raise ReferenceRunError(f"no *.zip in {zips_dir}: write the market's learnware zips there first")
    with tempfile.TemporaryDirectory(prefix="lwref-drv-") as tmp:
        work = Path(tmp)
        users_json, users_npz = write_inputs(users, work)
        args = ["market", "--zips", str(zips_dir.resolve()), "--users-json", str(users_json),
                "--users-npz", str(users_npz), "--threads", str(threads), "--max-search-num", str(max_search_num),
                "--search-method", search_method, "--herding-num", str(herding_num), "--maxgen", str(maxgen)]
        return _run_runner(args, Path(out_json), timeout, venv, work)


def run_reference_timing(out_json: str | Path, timeout: float = 3600.0, *,
                         rkme_n: Sequence[int] = (1000, 10000, 50000), rkme_d: Sequence[int] = (10, 50),
                         search_n: Sequence[int] = (100, 1000), search_d: int = 10, repeats: int = 3,
                         threads: int = 1, data: dict[str, np.ndarray] | None = None,
                         venv: Path | None = None) -> dict:
    """Time the reference's RKME generation (n x d grid) and statistical search (N synthetic learnwares).

    ``data`` may hold arrays ``rkme_<n>_<d>`` so both implementations fit the very same data; the returned
    ``rkme[<n,d>]`` carries the reference's ``z`` / ``beta`` so our side can score them with its own MMD code.
    """
    csv = lambda xs: ",".join(str(int(x)) for x in xs)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="lwref-drv-") as tmp:
        work = Path(tmp)
        args = ["timing", "--rkme-n", csv(rkme_n), "--rkme-d", csv(rkme_d), "--search-n", csv(search_n),
                "--search-d", str(search_d), "--repeats", str(repeats), "--threads", str(threads)]
        if data:
            np.savez(work / "timing_data.npz", **data)
            args += ["--data-npz", str(work / "timing_data.npz")]
        return _run_runner(args, Path(out_json), timeout, venv, work)


def format_timing(result: dict) -> str:
    """Markdown rows of a timing result (median [min–max] seconds)."""
    rows = ["| reference 0.4.0.post1 | median s | min s | max s |", "|---|---|---|---|"]
    for section in ("rkme", "search"):
        for key, cell in result.get(section, {}).items():
            stats = cell.get("full", cell) if isinstance(cell, dict) else {}
            if "error" in cell:
                rows.append(f"| {section} {key} | error: {cell['error'][:60]} | | |")
            elif "median" in stats:
                rows.append(f"| {section} {key} | {stats['median']:.3f} | {stats['min']:.3f} | {stats['max']:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``make bench-reference``: build the venv if needed, run the timing mode, write JSON + print a table."""
    p = argparse.ArgumentParser(description="Run the reference learnware package's timing benchmark.")
    p.add_argument("--setup", action="store_true", help="build/verify .venv-reference first")
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "reference_timing.json"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="small sizes only (n=1k, N=100)")
    p.add_argument("--timeout", type=float, default=3600.0)
    opts = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if opts.setup:
        setup()
    ok, reason = available()
    if not ok:
        logger.error("reference unavailable: %s", reason)
        return 2
    sizes = dict(rkme_n=(1000,), rkme_d=(10,), search_n=(100,)) if opts.quick else {}
    result = run_reference_timing(opts.out, opts.timeout, repeats=opts.repeats, threads=opts.threads, **sizes)
    sys.stdout.write(format_timing(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
