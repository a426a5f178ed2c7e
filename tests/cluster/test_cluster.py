"""The production topology on one machine, for real: PostgreSQL, a Prefect server with API auth and an MLflow
tracking server (both on PostgreSQL), the `lwdock-process` pool with two process workers, Dask for batches.

- 20 submissions through the `submit-from-ui/submit` deployment spread over both workers; one worker is killed
  (SIGKILL, with its flow-run processes: a machine that dies) while it runs a submission. Its runs end CRASHED
  (the cluster's heartbeat automation), never stay Running; resubmitting them completes them. At the end all 20
  learnwares are in the catalog and in the registry, each exactly once.
- A batch on a `distributed.LocalCluster` through prefect-dask, against the same servers.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import REPO, kill_worker, make_zips, prefect_env, run_cli, wait_runs
from cluster_helpers import cluster_fixture  # noqa: F401  (the session fixture `cluster`)

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.slow]

N_SUBMISSIONS = 20
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _request(url: str, auth: str | None = None, body: bytes | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_servers_run_on_postgres_with_auth(cluster: dict[str, Any]) -> None:
    env, state = cluster["env"], cluster["state"]
    api, auth = env["PREFECT_API_URL"], env["PREFECT_API_AUTH_STRING"]
    assert _request(f"{api}/health") == 200  # probes stay open (load balancers, k8s)
    assert _request(f"{api}/flows/filter", body=b"{}") == 401  # a stranger who reaches the port
    assert _request(f"{api}/flows/filter", auth="lwdock:wrong", body=b"{}") == 401
    assert _request(f"{api}/flows/filter", auth=auth, body=b"{}") == 200
    ui = api[: -len("/api")]
    assert _request(f"{ui}/") == 200
    with urllib.request.urlopen(f"{ui}/ui-settings", timeout=10) as resp:
        settings = json.loads(resp.read())
    assert settings["auth"] == "BASIC" and settings["api_url"] == api  # the UI asks for the password
    assert _request(f"{env['MLFLOW_TRACKING_URI']}/health") == 200
    assert (os.stat(state / "secrets.json").st_mode & 0o077) == 0
    assert (os.stat(state / "cluster.env").st_mode & 0o077) == 0

    config = json.loads((state / "cluster.json").read_text())
    for db, table in (("prefect", "flow_run"), ("mlflow", "registered_models")):
        res = subprocess.run(["bash", str(REPO / "scripts" / "cluster" / "postgres.sh"), "psql", config["pg_root"],
                              str(config["ports"]["postgres"]), "-d", db, "-At", "-c",
                              f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'"],
                             capture_output=True, text=True, check=False)
        assert res.stdout.strip() == "1", f"{db}.{table} missing: {res.stdout} {res.stderr}"
    print(f"cluster up {cluster['up_s']:.1f} s")


def test_twenty_submissions_over_two_workers_survive_a_killed_worker(cluster: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    from prefect.deployments import run_deployment

    from lwlib.catalog import Catalog
    from lwlib.registry import Registry
    from lwlib.settings import Settings

    state, home = cluster["state"], cluster["home"]
    zips = make_zips(tmp_path, N_SUBMISSIONS)
    t0 = time.perf_counter()
    with prefect_env(cluster["env"]):
        runs = {str(run_deployment("submit-from-ui/submit", parameters={"request": {"zip_location": str(z)}},
                                   timeout=0).id): z for z in zips}
        killed = kill_worker(state, "lwdock-worker-1", list(runs), timeout=600, after_completed=N_SUBMISSIONS // 2)
        kill_s = time.perf_counter() - t0
        final = wait_runs(list(runs), FINAL, timeout=900)  # generous: this machine is shared
        first_pass_s = time.perf_counter() - t0
        crashed = {rid: s for rid, s in final.items() if s.type.value == "CRASHED"}
        assert not [s for s in final.values() if s.type.value in ("FAILED", "CANCELLED")], final
        assert killed["running"] or killed["pending"], killed  # the kill left unfinished work behind
        assert set(killed["running"]) | set(killed["pending"]) <= set(crashed), (killed, crashed)  # not left Running
        assert all("resubmit" in (s.message or "") for s in crashed.values())
        by_worker = _runs_by_worker(state)
        assert by_worker.get("lwdock-worker-1") and by_worker.get("lwdock-worker-2"), by_worker

        again = {str(run_deployment("submit-from-ui/submit", parameters={"request": {"zip_location": str(runs[r])}},
                                    timeout=0).id): runs[r] for r in crashed}
        final_again = wait_runs(list(again), FINAL, timeout=600)
        assert all(s.type.value == "COMPLETED" for s in final_again.values()), final_again
    total_s = time.perf_counter() - t0

    from lwlib.learnware.archive import sha256_file

    ids = {sha256_file(z) for z in zips}
    settings = Settings(home=home, tracking_uri=cluster["env"]["MLFLOW_TRACKING_URI"])
    with Catalog.open(settings.catalog_path, read_only=True) as cat:
        rows = [r for r in cat.list() if r.id in ids]
    assert sorted(r.id for r in rows) == sorted(ids)  # all 20, none twice
    registry = Registry(settings.mlflow_uri, settings.mlflow_artifacts_dir)
    for lid in ids:
        versions = registry.list_versions(sha256=lid)
        assert len(versions) == 1, (lid, versions)  # registered exactly once, resubmission included
        assert versions[0].source.startswith("mlflow-artifacts:"), versions[0].source  # served by the server
    print(f"{N_SUBMISSIONS} submissions: worker-1 killed at {kill_s:.0f} s holding {killed}; first pass final "
          f"{first_pass_s:.0f} s ({len(crashed)} crashed), resubmitted and done at {total_s:.0f} s; "
          f"runs per worker { {k: len(v) for k, v in by_worker.items()} }")


def test_up_again_restarts_only_the_missing_worker(cluster: dict[str, Any]) -> None:
    state = cluster["state"]
    before = {p.stem: json.loads(p.read_text())["pid"] for p in (state / "pids").glob("*.pid")}
    t0 = time.perf_counter()
    res = run_cli("up", *cluster["args"])
    assert res.returncode == 0, res.stdout + res.stderr
    after = {p.stem: json.loads(p.read_text())["pid"] for p in (state / "pids").glob("*.pid")}
    assert {k: v for k, v in after.items() if k != "lwdock-worker-1"} == \
        {k: v for k, v in before.items() if k != "lwdock-worker-1"}
    assert "lwdock-worker-1" in after
    status = run_cli("status", "--home", str(cluster["home"]))
    assert status.returncode == 0, status.stdout
    print(f"second `cluster up` {time.perf_counter() - t0:.1f} s")


def test_search_node_rebuilds_its_catalog_from_the_registry(cluster: dict[str, Any], tmp_path: Path) -> None:
    """What the `catalog-refresh` deployment runs on a search node: a fresh home, the shared MLflow server."""
    from lwlib.catalog import Catalog
    from lwlib.registry import Registry
    from lwlib.settings import Settings

    search_home = tmp_path / "search-node"
    env = {**cluster["env"], "LWDOCK_HOME": str(search_home)}
    shared = Settings(home=cluster["home"], tracking_uri=env["MLFLOW_TRACKING_URI"])
    registered = {v.sha256 for v in Registry(shared.mlflow_uri, shared.mlflow_artifacts_dir).list_versions()
                  if v.sha256 and v.tags.get("lwdock.kind", "learnware") == "learnware"}
    assert registered, "the registry is empty: run after the submissions test"
    with prefect_env(env, process=True):
        from deployments.serve import catalog_refresh

        n = catalog_refresh()
    with Catalog.open(Settings(home=search_home).catalog_path, read_only=True) as cat:
        ids = {r.id for r in cat.list()}
    assert n == len(registered) and ids == registered


def test_batch_on_dask_local_cluster(cluster: dict[str, Any], tmp_path: Path) -> None:
    from distributed import Client, LocalCluster
    from prefect_dask import DaskTaskRunner

    from lwlib.catalog import Catalog
    from lwlib.learnware.archive import sha256_file
    from lwlib.settings import Settings

    zips = make_zips(tmp_path, 3, seed=100)
    env = {**cluster["env"], "LWDOCK_HOME": str(cluster["home"])}
    with prefect_env(env, process=True):
        from deployments.serve import submit_on_dask

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as dc:
            flow = submit_on_dask.with_options(task_runner=DaskTaskRunner(address=dc.scheduler_address))
            results = flow(zip_paths=[str(z) for z in zips])
            with Client(dc) as client:
                executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert [r.status.value for r in results] == ["USABLE"] * 3, [r.reason for r in results]
    assert sum(executed.values()) >= 3 and len(executed) == 2, executed
    with Catalog.open(Settings(home=cluster["home"]).catalog_path, read_only=True) as cat:
        assert {sha256_file(z) for z in zips} <= {r.id for r in cat.list()}


def _runs_by_worker(state: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for log in (state / "logs").glob("lwdock-worker-*.log"):
        for m in re.finditer(r"Worker '([\w-]+)' submitting flow run '([0-9a-f-]+)'", log.read_text(errors="replace")):
            out.setdefault(m.group(1), set()).add(m.group(2))
    return out


def test_runs_by_worker_reads_the_worker_log_line(tmp_path: Path) -> None:
    """The log line the distribution check relies on (Prefect 3.8.8 workers/base.py) parses as expected."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "lwdock-worker-2.log").write_text(
        "12:00:00.000 | INFO | prefect.flow_runs.worker - Worker 'lwdock-worker-2' submitting flow run "
        "'0b0e5a3c-9a45-4c1e-8e33-9d3b1b2d2f10'\n")
    assert _runs_by_worker(tmp_path) == {"lwdock-worker-2": {"0b0e5a3c-9a45-4c1e-8e33-9d3b1b2d2f10"}}
