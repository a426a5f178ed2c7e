"""Helpers and the `cluster` fixture of the cluster tests (no conftest.py here: with --doctest-modules a second
`conftest` module name clashes with tests/flows/conftest.py when both folders are collected).

The cluster is started once with `python -m deployments.cluster up` on free ports under a temp home and stopped
with `down` whatever happens, checked to leave no process. Tests that need it run only when selected with
``-m cluster`` (`make test-cluster`), and skip with the reason when PostgreSQL is not installed.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

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


def kill_worker(state: Path, name: str, ids: list[Any], timeout: float, after_completed: int) -> dict[str, list[str]]:
    """SIGKILL worker ``name`` and its flow-run processes once it runs one of ``ids`` and ``after_completed`` of
    them have completed (mid-batch: both workers have done work, some is left).

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
        now = datetime.now(timezone.utc)
        # a run that started Running moments ago still has most of its work ahead: killing now is mid-run
        fresh = [i for i in mine if states.get(i) and states[i].type.value == "RUNNING"
                 and (now - states[i].timestamp).total_seconds() < 15]
        if fresh and done >= after_completed:
            pid = PidFile(state / "pids" / f"{name}.pid").alive()
            assert pid, f"{name} is not running"
            procs.kill_tree(pid)
            after = read_states(list(ids))  # what its processes can no longer finish
            return {"running": [i for i in mine if after[i].type.value == "RUNNING"],
                    "pending": [i for i in mine if after[i].type.value == "PENDING"]}
        time.sleep(1)
    raise AssertionError(f"{name} never ran one of the submissions within {timeout:.0f} s")


def _postgres_missing() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        return "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): apt-get install -y postgresql"
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True, check=False).returncode != 0:
        return "running as root but there is no `postgres` user to run the database server as"
    return None


def _free_ports(n: int) -> list[int]:
    import socket

    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            out[key] = value
    return out


def require_selected(config: pytest.Config) -> None:
    """Skip unless the run selected these tests (``-m cluster``, as `make test-cluster` does): `make test` must
    not start a cluster."""
    if "cluster" not in (config.getoption("markexpr") or ""):
        pytest.skip("cluster tests start PostgreSQL, two servers and workers: run them with `make test-cluster` "
                    "(pytest -m cluster tests/cluster)")


@pytest.fixture(scope="session", name="cluster")
def cluster_fixture(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running cluster: ``{"home", "state", "env", "up_s", "ports"}``; `down` in the finally."""
    require_selected(request.config)
    reason = _postgres_missing()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("cluster") / "home"
    prefect_port, mlflow_port, pg_port = _free_ports(3)
    args = ["--home", str(home), "--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port),
            "--postgres-port", str(pg_port), "--workers", "2", "--worker-limit", "2"]
    t0 = time.perf_counter()
    try:
        res = run_cli("up", *args)
        up_s = time.perf_counter() - t0
        assert res.returncode == 0, f"cluster up failed:\n{res.stdout}\n{res.stderr}"
        state = home / "cluster"
        yield {"home": home, "state": state, "env": _env_file(state / "cluster.env"), "up_s": up_s,
               "args": args, "up_out": res.stdout,
               "ports": {"prefect": prefect_port, "mlflow": mlflow_port, "postgres": pg_port}}
    finally:
        pids = _recorded_pids(home / "cluster")
        if (home / "cluster" / "logs").is_dir():  # kept for a failed run's post-mortem; --purge removes the state
            import shutil

            shutil.copytree(home / "cluster" / "logs", home.parent / "cluster-logs", dirs_exist_ok=True)
        down = run_cli("down", "--home", str(home), "--grace", "5", "--purge")
        print(down.stdout, down.stderr)
        left = [p for p in pids if _alive(p)]
        assert not left, f"processes left after `cluster down`: {left}"
        assert down.returncode == 0 and not (home / "cluster").exists(), down.stdout + down.stderr


def _recorded_pids(state: Path) -> list[int]:
    """Every pid the cluster started (pid files, PostgreSQL's postmaster) plus their descendants now, to check
    `down` leaves none."""
    import psutil

    pids: list[int] = []
    try:
        pg_root = Path(json.loads((state / "cluster.json").read_text())["pg_root"])
        pids.append(int((pg_root / "data" / "postmaster.pid").read_text().split()[0]))
    except (OSError, ValueError, KeyError, IndexError):
        pass
    for f in (state / "pids").glob("*.pid"):
        try:
            proc = psutil.Process(int(json.loads(f.read_text())["pid"]))
            pids += [proc.pid] + [c.pid for c in proc.children(recursive=True)]
        except (OSError, ValueError, KeyError, psutil.Error):
            continue
    return pids


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
