"""Submitting stage: validate → containerize → check → specify → register → catalog (ARCHITECTURE.md)."""

import os
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.forms import SubmitRequest
from flows.results import SubmissionResult, markdown_table
from lwlib import submission
from lwlib.dock import Dock
from lwlib.errors import InvalidPackageError, LwdockError, RuntimeBuildError
from lwlib.submission import Submission
from tasks._common import get_dock
from tasks.catalog import catalog
from tasks.check import check
from tasks.containerize import containerize
from tasks.register import register, unregister
from tasks.specify import specify
from tasks.validate import validate

RuntimeMode = Literal["auto", "venv", "inherit"]
SUBMIT_WORKERS_ENV = "LWDOCK_SUBMIT_WORKERS"


def batch_workers() -> int:
    """Submissions a batch flow runs at once: ``$LWDOCK_SUBMIT_WORKERS``, else 2 (read when this module loads).

    Why threads and how many: a submission spends most of its time outside the interpreter (the model's check
    in its runtime's own process, MLflow and DuckDB I/O), so threads overlap well; the catalog write is
    serialised anyway (DuckDB's file lock, the task's retries). More workers than that overlap buys only
    contention on a small machine: ``python -m benchmarks.scale --sizes --submissions 100 --submit-workers K``
    measures it.
    """
    raw = os.environ.get(SUBMIT_WORKERS_ENV, "").strip()
    if not raw:
        return 2
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{SUBMIT_WORKERS_ENV}={raw!r}: give a whole number of workers, 1 or more")
    return int(raw)


def run_submission(dock: Dock, source: str | bytes, semantic_spec: dict[str, Any] | None = None, *,
                   source_name: str | None = None) -> SubmissionResult:
    """The stage itself, wired like the diagram; its tasks attach to whichever flow run calls it.

    Every exit that does not end in a recorded learnware removes what it wrote (zip, tree, OCI context); the
    content lock makes concurrent submissions of the same bytes end in one registry version and "(dup)"s.
    """
    name = source_name or (os.path.basename(source) if isinstance(source, str) else "upload.zip")
    try:
        stored = submission.store(dock, source if isinstance(source, bytes) else submission.source_path(source),
                                  source_name=name)
    except InvalidPackageError as exc:
        return _publish(SubmissionResult.invalid(name, exc))
    try:
        with dock.locks.content(stored.id):
            try:
                sub = validate(dock, stored, semantic_spec)
            except InvalidPackageError as exc:
                submission.discard(dock, stored.id)
                return _publish(SubmissionResult.invalid(name, exc, learnware_id=stored.id))
            with dock.locks.named("catalog-write"):  # not beside this process's writer (another batch worker)
                rec = submission.existing(dock, sub.id)
            if rec is not None:
                return _publish(SubmissionResult.duplicate_of(name, rec, sub.timings))
            return _publish(SubmissionResult.accepted(_build_and_record(dock, sub)))
    except BaseException:
        _discard_quietly(dock, stored.id)  # a crash: nothing half-written stays (a recorded learnware is kept)
        raise


def _discard_quietly(dock: Dock, learnware_id: str) -> None:
    try:
        submission.discard(dock, learnware_id)
    except Exception as exc:  # noqa: BLE001 - never mask the crash being reported; `lwdock doctor` sweeps later
        get_run_logger().warning("could not clean up after a failed submission (%s); run `lwdock doctor`", exc)


def _build_and_record(dock: Dock, sub: Submission) -> Submission:
    try:
        sub = check(dock, containerize(dock, sub))
    except RuntimeBuildError as exc:  # retries spent: kept NONUSABLE with the reason, a re-check may revive it
        sub = submission.unbuilt(sub, exc)
    sub = register(dock, specify(dock, sub))
    try:  # compensate only after catalog's retries are spent: Prefect 3.8.8 fires on_rollback on a failed attempt
        return catalog(dock, sub)
    except BaseException:
        unregister(dock, sub)
        raise


def _publish(result: SubmissionResult) -> SubmissionResult:
    create_markdown_artifact(
        key="submission", description=f"Submission {result.status.value}: {result.name or result.source}"[:200],
        markdown=f"## Learnware submission: **{result.status.value}**\n\n{result.reason}\n\n" + markdown_table(
            ["file", "name", "status", "reason", "registry", "id", "time"], [result.row()])
        + "\n" + markdown_table(["step", "seconds"], [[k, v] for k, v in result.timings.items()]))
    get_run_logger().info("submission %s: %s (%s)", result.source, result.status.value, result.reason)
    return result


def _submission_run_name() -> str:
    params = flow_run.parameters or {}
    req = params.get("request")
    if isinstance(req, SubmitRequest):
        label = req.semantic.name if req.semantic is not None else os.path.basename(req.zip_location)
    else:
        label = os.path.basename(str(params.get("zip_path") or "upload.zip"))
    return "submit-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:60]


@flow(name="submit-learnware", flow_run_name=_submission_run_name, log_prints=False)
def submit_learnware(zip_path: str | None = None, zip_bytes: bytes | None = None,
                     semantic_spec: dict[str, Any] | None = None, home: str | None = None,
                     runtime_mode: RuntimeMode = "auto", source_name: str | None = None) -> SubmissionResult:
    """Submit one learnware zip (a path on the dock's storage, or uploaded bytes) and return its status."""
    source = zip_bytes if zip_bytes is not None else str(zip_path)
    return run_submission(get_dock(home, runtime_mode), source, semantic_spec, source_name=source_name)


@task(name="submit-one", cache_policy=NONE, tags=["submit"])
def _submit_one(zip_path: str, semantic_spec: dict[str, Any] | None, home: str,
                runtime_mode: RuntimeMode) -> SubmissionResult:
    """Run the submission flow for one zip (a subflow, so each submission has its own run in the UI)."""
    return submit_learnware(zip_path=zip_path, semantic_spec=semantic_spec, home=home, runtime_mode=runtime_mode)


@flow(name="submit-batch", task_runner=ThreadPoolTaskRunner(max_workers=batch_workers()))
def submit_batch(zip_paths: list[str], semantic_specs: list[dict[str, Any] | None] | None = None,
                 runtime_mode: RuntimeMode = "auto") -> list[SubmissionResult]:
    """Submit many zips concurrently (the dock home is the deployment's); one submission subflow per zip."""
    home = str(get_dock().settings.home)
    specs = semantic_specs or [None] * len(zip_paths)
    futures = [_submit_one.submit(z, s, home, runtime_mode) for z, s in zip(zip_paths, specs)]
    results = [f.result() for f in futures]
    create_markdown_artifact(key="submission-batch", description="Batch submission", markdown=markdown_table(
        ["file", "name", "status", "reason", "registry", "id", "time"], [r.row() for r in results]))
    return results


@flow(name="submit-from-ui", flow_run_name=_submission_run_name)
def submit_from_ui(request: SubmitRequest) -> SubmissionResult:
    """Submit a learnware described by a form; the run shows every step and the result table."""
    dock = get_dock()  # the deployment fixes the dock home; a form cannot point it elsewhere
    try:
        semantic = request.semantic.to_reference() if request.semantic is not None else None
    except LwdockError as exc:  # e.g. a Table form with no Input Dimension: INVALID with the reason, not a crash
        return _publish(SubmissionResult.invalid(os.path.basename(request.zip_location), exc))
    return run_submission(dock, request.zip_location, semantic)
