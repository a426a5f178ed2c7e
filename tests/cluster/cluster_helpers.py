"""Helpers of the cluster tests: learnware zips, Prefect client settings, flow-run polling, killing a worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m deployments.cluster ARGS` from the repo, without this process's Prefect/MLflow client settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "MLFLOW_TRACKING"))}
    return subprocess.run([sys.executable, "-m", "deployments.cluster", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def make_zips(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` distinct small sklearn learnwares (iris, logistic regression with different C: different bytes).

    They share one RKME (same training data), fitted once: the spec fit dominates packaging time.
    """
    import numpy
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from lwlib.learnware.packager import package_learnware
    from lwlib.rkme.rkme import RKMETableSpec
    from lwlib.semantic import make_semantic_spec

    X, y = load_iris(return_X_y=True)
    rkme = RKMETableSpec().fit(X)
    reqs = [f"numpy=={numpy.__version__}", f"scikit-learn=={sklearn.__version__}"]
    out = []
    for i in range(n):
        spec = make_semantic_spec(name=f"cluster iris {seed + i:03d}", description="Logistic regression on iris",
                                  input_dimension=4, output_dimension=3, scenarios=["Education"])
        model = LogisticRegression(max_iter=500, C=0.05 * (seed + i + 1)).fit(X, y)
        out.append(package_learnware(model, X, spec, folder / f"lw-{seed + i:03d}.zip", spec=rkme,
                                     requirements=reqs))
    return out


@contextmanager
def prefect_env(env: dict[str, str], process: bool = False) -> Iterator[None]:
    """Talk to the cluster's Prefect server from this process (and, with ``process``, from its children)."""
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        temporary_settings,
    )

    saved = {k: os.environ.get(k) for k in env}
    if process:
        os.environ.update(env)
    try:
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"],
                                 PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"]}):
            yield
    finally:
        if process:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def read_states(ids: list[Any]) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids))),
                                     limit=len(ids))
    return {str(r.id): r.state for r in runs}


def wait_runs(ids: list[Any], final: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        states = read_states(ids)
        if len(states) == len(ids) and all(s is not None and s.type.value in final for s in states.values()):
            return states
        if time.monotonic() > deadline:
            counts: dict[str, int] = {}
            for s in states.values():
                counts[s.type.value if s else "?"] = counts.get(s.type.value if s else "?", 0) + 1
            raise AssertionError(f"flow runs not final after {timeout:.0f} s: {counts}")
        time.sleep(3)


def kill_worker(state: Path, name: str, ids: list[Any], timeout: float) -> dict[str, list[str]]:
    """SIGKILL worker ``name`` and its flow-run processes once it runs one of ``ids`` and 2 runs have completed.

    Returns the ids of its runs that were RUNNING / PENDING at that moment.
    """
    from deployments.cluster import PidFile, procs

    log = state / "logs" / f"{name}.log"
    wanted = {str(i) for i in ids}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        mine = set(re.findall(rf"Worker '{re.escape(name)}' submitting flow run '([0-9a-f-]+)'", text)) & wanted
        states = read_states(list(ids))
        done = sum(1 for s in states.values() if s and s.type.value == "COMPLETED")
        running = [i for i in mine if states.get(i) and states[i].type.value == "RUNNING"]
        if running and done >= 2:
            pid = PidFile(state / "pids" / f"{name}.pid").alive()
            assert pid, f"{name} is not running"
            procs.kill_tree(pid)
            pending = [i for i in mine if states.get(i) and states[i].type.value == "PENDING"]
            return {"running": running, "pending": pending}
        time.sleep(1)
    raise AssertionError(f"{name} never ran one of the submissions within {timeout:.0f} s")
