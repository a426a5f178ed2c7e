"""The one-machine cluster for the tests in this folder: started once with `python -m deployments.cluster up`
on free ports under a temp home, stopped with `down` whatever happens (and checked to leave no process).

These tests run only when selected with ``-m cluster`` (`make test-cluster`), so `make test` does not start a
cluster; they skip with the reason when PostgreSQL is not installed.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import run_cli


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "cluster" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="cluster tests start PostgreSQL, two servers and workers: run them with "
                                   "`make test-cluster` (pytest -m cluster tests/cluster)")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)


def _postgres_missing() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        return "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): apt-get install -y postgresql"
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
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


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running cluster: ``{"home", "state", "env", "up_s", "ports"}``; `down` in the finally."""
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
        down = run_cli("down", "--home", str(home), "--grace", "5")
        print(down.stdout, down.stderr)
        left = [p for p in pids if _alive(p)]
        assert not left, f"processes left after `cluster down`: {left}"
        status = run_cli("status", "--home", str(home))
        assert status.returncode == 3 and "running" not in status.stdout, status.stdout  # PostgreSQL too


def _recorded_pids(state: Path) -> list[int]:
    """Every pid the cluster started (pid files) plus their descendants now, to check `down` leaves none."""
    import psutil

    pids: list[int] = []
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
