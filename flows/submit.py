"""Submitting stage: validate → containerize → check → specify → register → catalog (ARCHITECTURE.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.forms import SubmitRequest
from flows.results import SubmissionResult, markdown_table
from lwlib.check import CheckReport
from lwlib.dock import RuntimeInfo
from lwlib.errors import InvalidPackageError, LwdockError, RuntimeBuildError
from lwlib.status import Status
from tasks._common import get_dock
from tasks.catalog import catalog
from tasks.check import check
from tasks.containerize import containerize
from tasks.register import register, unregister
from tasks.specify import specify
from tasks.validate import validate

RuntimeMode = Literal["auto", "venv", "inherit"]


def _timed(timings: dict[str, float], name: str, fn: Callable[..., Any], *args: Any) -> Any:
    t0 = time.perf_counter()
    try:
        return fn(*args)
    finally:
        timings[name] = round(time.perf_counter() - t0, 3)


def _publish(result: SubmissionResult) -> SubmissionResult:
    create_markdown_artifact(
        key="submission", description=f"Submission {result.status.value}",
        markdown=f"## Learnware submission: **{result.status.value}**\n\n{result.reason}\n\n" + markdown_table(
            ["id", "name", "status", "reason", "registry", "time"], [result.row()])
        + "\n" + markdown_table(["step", "seconds"], [[k, v] for k, v in result.timings.items()]))
    get_run_logger().info("submission %s: %s (%s)", (result.learnware_id or "?")[:12], result.status.value, result.reason)
    return result


def _reject(dock: Any, sha: str, exc: LwdockError, timings: dict[str, float]) -> SubmissionResult:
    """INVALID: remove what was stored for this zip and report the reason (nothing half-written)."""
    dock.discard_package(sha)
    return _publish(SubmissionResult(learnware_id=sha, status=Status.INVALID, reason=exc.message, code=exc.code,
                                     timings=timings))


@flow(name="submit-learnware", log_prints=False)
def submit_learnware(zip_path: str | None = None, zip_bytes: bytes | None = None,
                     semantic_spec: dict[str, Any] | None = None, home: str | None = None,
                     runtime_mode: RuntimeMode = "auto") -> SubmissionResult:
    """Submit one learnware zip (a path on the dock's storage, or uploaded bytes) and return its status."""
    dock = get_dock(home, runtime_mode)
    stored = dock.store_package(zip_bytes if zip_bytes is not None else Path(str(zip_path)))
    sha, timings = stored.stem, {}
    try:
        lw = _timed(timings, "validate", validate, dock, str(stored), semantic_spec)
    except InvalidPackageError as exc:
        return _reject(dock, sha, exc, timings)
    if (rec := dock.existing(lw.id)) is not None:
        return _publish(SubmissionResult(learnware_id=lw.id, name=rec.name, status=rec.status, duplicate=True,
                                         reason=f"already in the market ({rec.reason or rec.status.value})",
                                         registry_uri=rec.registry_uri, timings=timings))
    try:
        runtime = _timed(timings, "containerize", containerize, dock, lw)
        report = _timed(timings, "check", check, dock, lw)
    except RuntimeBuildError as exc:
        if exc.code == "requirement_disallowed":
            return _reject(dock, sha, exc, timings)
        runtime = RuntimeInfo(env_key="unbuilt", mode="unbuilt", python="", image_note=exc.message)
        report = CheckReport(Status.NONUSABLE, f"runtime could not be built: {exc.message}", exc.code)
    try:
        spec = _timed(timings, "specify", specify, dock, lw)
    except InvalidPackageError as exc:
        return _reject(dock, sha, exc, timings)
    ref = _timed(timings, "register", register, dock, lw, report, spec, runtime, dict(timings))
    try:  # compensate only after catalog's retries are spent: Prefect 3.8.8 fires on_rollback on a failed attempt
        _timed(timings, "catalog", catalog, dock, lw, report, spec, runtime, ref)
    except Exception:
        unregister(dock, ref)
        raise
    return _publish(SubmissionResult(
        learnware_id=lw.id, name=lw.semantic_spec.name, status=report.status, reason=report.reason, code=report.code,
        registry_uri=ref.uri, runtime_mode=runtime.mode, protections=list(report.protections), timings=timings))


@task(name="submit-one", cache_policy=NONE, tags=["submit"])
def _submit_one(zip_path: str, semantic_spec: dict[str, Any] | None, home: str | None,
                runtime_mode: RuntimeMode) -> SubmissionResult:
    """Run the submission flow for one zip (a subflow, so each submission has its own run in the UI)."""
    return submit_learnware(zip_path=zip_path, semantic_spec=semantic_spec, home=home, runtime_mode=runtime_mode)


@flow(name="submit-batch", task_runner=ThreadPoolTaskRunner(max_workers=2))
def submit_batch(zip_paths: list[str], semantic_specs: list[dict[str, Any] | None] | None = None,
                 home: str | None = None, runtime_mode: RuntimeMode = "auto") -> list[SubmissionResult]:
    """Submit many zips concurrently; one submission subflow per zip, a summary table at the end."""
    specs = semantic_specs or [None] * len(zip_paths)
    futures = [_submit_one.submit(z, s, home, runtime_mode) for z, s in zip(zip_paths, specs)]
    results = [f.result() for f in futures]
    create_markdown_artifact(key="submission-batch", description="Batch submission", markdown=markdown_table(
        ["id", "name", "status", "reason", "registry", "time"], [r.row() for r in results]))
    return results


@flow(name="submit-from-ui")
def submit_from_ui(request: SubmitRequest, home: str | None = None) -> SubmissionResult:
    """Submit a learnware described by a form (rendered by the Prefect UI from the typed parameters)."""
    semantic = request.semantic.to_reference() if request.semantic is not None else None
    return submit_learnware(zip_path=request.zip_location, semantic_spec=semantic, home=home)
