"""Deployments: what `lwdock serve` registers, and the submit form run end to end on a real Prefect server.

The fast tests inspect `build_deployments()` and `prefect.yaml` offline. The integration test starts a real
`prefect server start` and `python -m deployments.serve` as subprocesses (own session each, killed by process group
in a `finally`), triggers the submit deployment with `run_deployment` and checks the catalog.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator, get_args

import pytest
import yaml

from lwlib import semantic

REPO = Path(__file__).resolve().parents[2]
PREFECT_BIN = Path(sys.executable).with_name("prefect")
QUIET_ENV = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
             "HF_HUB_OFFLINE": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
VOCABULARIES = {"data_type": semantic.DataType, "task_type": semantic.TaskType,
                "library_type": semantic.LibraryType, "scenarios": semantic.ScenarioType,
                "license": semantic.LicenseType}


def _form_enums(schema: dict[str, Any]) -> dict[str, list[str]]:
    """Drop-down choices of the semantic form inside a flow's parameter schema (enum or array-of-enum fields)."""
    props = schema["definitions"]["SemanticForm"]["properties"]
    found = {}
    for name, prop in props.items():
        enum = prop.get("enum") or prop.get("items", {}).get("enum")
        if enum:
            found[name] = list(enum)
    return found


def _assert_form(schema: dict[str, Any]) -> None:
    assert schema["required"] == ["request"]
    assert schema["definitions"]["SubmitRequest"]["required"] == ["zip_location"]
    assert _form_enums(schema) == {k: list(get_args(v)) for k, v in VOCABULARIES.items()}


# ---------------------------------------------------------------------------------------------- fast, offline
def test_build_deployments_names_schedule_and_form() -> None:
    from deployments.serve import DEPLOYMENT_NAMES, NIGHTLY, build_deployments

    deployments = build_deployments()
    assert tuple(f"{d.flow_name}/{d.name}" for d in deployments) == DEPLOYMENT_NAMES
    by_name = {d.name: d for d in deployments}
    (recheck_schedule,) = by_name["nightly-recheck"].schedules
    assert recheck_schedule.schedule.cron == NIGHTLY == "0 3 * * *"
    assert recheck_schedule.schedule.timezone == "UTC" and recheck_schedule.active
    assert all(not d.schedules for n, d in by_name.items() if n != "nightly-recheck")
    _assert_form(by_name["submit"]._parameter_openapi_schema.model_dump())


def test_prefect_yaml_matches_served_deployments() -> None:
    from deployments.serve import DEPLOYMENT_NAMES, NIGHTLY
    from prefect import Flow

    spec = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    assert spec["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $LWDOCK_REPO }}"
    flows = {}
    for dep in spec["deployments"]:
        path, func = dep["entrypoint"].split(":")
        mod_spec = importlib.util.spec_from_file_location(f"_entry_{func}", REPO / path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        flow = getattr(module, func)
        assert isinstance(flow, Flow), dep["entrypoint"]
        flows[dep["name"]] = (flow.name, dep)
    prod = {f"{fname}/{name}" for name, (fname, dep) in flows.items() if "prod" in dep["tags"]}
    assert prod == set(DEPLOYMENT_NAMES)
    assert flows["nightly-recheck"][1]["schedules"][0]["cron"] == NIGHTLY
    staging = [dep for _, dep in flows.values() if "staging" in dep["tags"]]
    assert staging and all(d["work_pool"]["work_queue_name"] == "staging"
                           and d["work_pool"]["job_variables"]["env"]["LWDOCK_HOME"]
                           and "home" not in d.get("parameters", {}) for d in staging)


async def _tasks_and_artifacts(flow_run_id: Any) -> tuple[list[str], list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return [t.name for t in tasks], [a.key for a in arts if a.key]


# ------------------------------------------------------------------------------------ real server, subprocesses
def _free_port(lo: int = 4300, hi: int = 4399) -> int:
    ports = list(range(lo, hi + 1))
    random.shuffle(ports)  # other test sessions on this box may be probing the same range
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {lo}-{hi}")


def _stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL after a grace period (a Prefect runner may ignore SIGTERM)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _wait(cond: Any, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def served_dock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real Prefect server plus `python -m deployments.serve`, both torn down whatever happens."""
    base = tmp_path_factory.mktemp("served")
    home, port = base / "home", _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, **QUIET_ENV, "PREFECT_HOME": str(base / "prefect"), "LWDOCK_HOME": str(home),
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"}  # schedule tests need not wait a minute
    env.pop("PREFECT_API_URL", None)
    procs: list[subprocess.Popen] = []
    try:
        server_log = base / "server.log"
        t0 = time.perf_counter()
        procs.append(subprocess.Popen([str(PREFECT_BIN), "server", "start", "--host", "127.0.0.1", "--port",
                                       str(port)], cwd=REPO, env=env, stdout=server_log.open("w"),
                                      stderr=subprocess.STDOUT, start_new_session=True))
        _wait(lambda: urllib.request.urlopen(f"{api}/health", timeout=2).status == 200, 120, "prefect server",
              procs[0], server_log)
        server_s = time.perf_counter() - t0
        serve_log = base / "serve.log"
        procs.append(subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=REPO,
                                      env={**env, "PREFECT_API_URL": api}, stdout=serve_log.open("w"),
                                      stderr=subprocess.STDOUT, start_new_session=True))
        _wait(lambda: "being served" in serve_log.read_text(), 120, "deployments.serve", procs[1], serve_log)
        yield {"api": api, "home": home, "base": base, "server_s": server_s, "serve_log": serve_log}
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.mark.integration
@pytest.mark.slow
def test_submit_deployment_runs_end_to_end(served_dock: dict[str, Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from deployments.serve import DEPLOYMENT_NAMES
    from lwlib.catalog import Catalog
    from lwlib.learnware.archive import sha256_file
    from lwlib.learnware.packager import package_learnware
    from lwlib.semantic import make_semantic_spec
    from lwlib.settings import Settings
    from lwlib.status import Status

    X, y = load_digits(return_X_y=True)
    spec = make_semantic_spec(name="Served digits", description="Logistic regression on 8x8 digits",
                              input_dimension=64, output_dimension=10, scenarios=["Education"])
    zip_path = package_learnware(LogisticRegression(max_iter=300).fit(X, y), X, spec,
                                 served_dock["base"] / "digits.zip")

    async def _read() -> dict[str, Any]:
        async with get_client() as client:
            deps = {n: await client.read_deployment_by_name(n) for n in DEPLOYMENT_NAMES}
        return deps

    with temporary_settings({PREFECT_API_URL: served_dock["api"]}):
        deps = run_coro_as_sync(_read())
        _assert_form(deps["submit-from-ui/submit"].parameter_openapi_schema)
        crons = [s.schedule.cron for s in deps["recheck-market/nightly-recheck"].schedules]
        assert crons == ["0 3 * * *"]
        t0 = time.perf_counter()
        run = run_deployment("submit-from-ui/submit", parameters={"request": {"zip_location": str(zip_path)}},
                             timeout=240, poll_interval=2)
        run_s = time.perf_counter() - t0
        tasks, artifacts = run_coro_as_sync(_tasks_and_artifacts(run.id))
    assert run.state is not None and run.state.is_completed(), (
        f"{run.state}\n{served_dock['serve_log'].read_text()[-3000:]}")
    # the run the user opens holds every step and the result table: no nested subflow to dig into
    assert {"validate", "containerize", "check", "specify", "register", "catalog"} <= {t.split("-")[0] for t in tasks}
    assert "submission" in artifacts and run.name == "submit-digits.zip"
    with Catalog.open(Settings(home=served_dock["home"]).catalog_path, read_only=True) as cat:
        rec = cat.get(sha256_file(zip_path))
    assert rec is not None and rec.status == Status.USABLE, rec
    print(f"server start {served_dock['server_s']:.1f} s, submit deployment run {run_s:.1f} s")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("request_", [
    {"zip_location": "~/Downloads/not-there.zip"},
    {"zip_location": "/nonexistent/x.zip", "semantic": {"name": "t", "description": "table, no dimension"}},
], ids=["tilde-path", "table-without-input-dimension"])
def test_bad_form_input_ends_invalid_not_failed(served_dock: dict[str, Any], request_: dict[str, Any]) -> None:
    """A form value the dock cannot use is an INVALID result on a Completed run, never a Failed run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def _artifact(flow_run_id: Any) -> Any:
        async with get_client() as client:
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        return next(a for a in arts if a.key == "submission")

    with temporary_settings({PREFECT_API_URL: served_dock["api"]}):
        run = run_deployment("submit-from-ui/submit", parameters={"request": request_}, timeout=240,
                             poll_interval=2)
        art = run_coro_as_sync(_artifact(run.id))
    assert run.state is not None and run.state.is_completed(), run.state
    assert art.description.startswith("Submission INVALID") and "INVALID" in art.data
    assert str(served_dock["home"]) not in art.data


SCHEDULED = """
from datetime import timedelta
from flows.recheck import recheck_market
recheck_market.serve(name="recheck-every-5s", interval=timedelta(seconds=5))
"""


@pytest.mark.integration
@pytest.mark.slow
def test_scheduled_recheck_runs_are_created_and_complete(served_dock: dict[str, Any]) -> None:
    """Regression: Prefect 3.8.8's scheduler failed every minute on SQLAlchemy 2.1 and scheduled runs never came."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    base = served_dock["base"]
    log = base / "scheduled.log"
    env = {**os.environ, **QUIET_ENV, "PREFECT_HOME": str(base / "prefect"), "LWDOCK_HOME": str(served_dock["home"]),
           "PREFECT_API_URL": served_dock["api"], "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    proc = subprocess.Popen([sys.executable, "-c", SCHEDULED], cwd=REPO, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)

    async def _states() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["recheck-every-5s"])))
        return [r.state_type.value for r in runs if r.state_type is not None]

    try:
        with temporary_settings({PREFECT_API_URL: served_dock["api"]}):
            _wait(lambda: run_coro_as_sync(_states()).count("COMPLETED") >= 2, 180, "two scheduled re-checks",
                  proc, log)
            states = run_coro_as_sync(_states())
    finally:
        _stop(proc)
    assert states.count("COMPLETED") >= 2 and "FAILED" not in states and "CRASHED" not in states, states
