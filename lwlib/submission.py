"""The submitting stage as typed steps: validate → containerize → check → specify → register → catalog.

Each step takes the :class:`Submission` built so far and returns it extended, so a fact is computed once and handed
on: the content id from the store, the runtime from ``containerize`` (which ``check`` and ``specify`` run in), the
spec facts from ``validate``. The Prefect tasks in ``tasks/`` are a few lines around these functions; the CLI and
notebooks can call them directly. Every exit that does not end in a recorded learnware goes through
:func:`discard`, which removes what the submission wrote (zip, extracted tree, OCI build context).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from numpy.typing import NDArray

from lwlib.check import CheckReport, check_learnware, open_failure_report, runtime_unbuilt
from lwlib.errors import InvalidPackageError, LwdockError, SemanticSpecError
from lwlib.package_store import StoredPackage
from lwlib.specify import SpecReport, verify_specs
from lwlib.status import Status

if TYPE_CHECKING:
    from lwlib.catalog import LearnwareRecord
    from lwlib.dock import Dock
    from lwlib.learnware import Learnware
    from lwlib.runtime.env import Environment
    from lwlib.semantic import SemanticSpec

__all__ = ["Submission", "RuntimeInfo", "RegistryRef", "store", "validate", "containerize", "unbuilt", "check",
           "specify", "register", "catalog", "unregister", "recheck", "discard", "existing", "source_path",
           "inject_fault", "FAULT_ENV"]

logger = logging.getLogger(__name__)

FAULT_ENV = "LWDOCK_INJECT_FAULT"
_FIRED: set[str] = set()


def inject_fault(step: str) -> None:
    """Raise at ``step`` when ``LWDOCK_INJECT_FAULT`` names it: used by crash-consistency tests and chaos drills.

    ``step`` fails every time (not retried); ``step:once`` fails with a transient error the first time only in
    this process, so the task's retry succeeds (the case that must not lose the registry version); ``step:kill``
    kills this process with SIGKILL at that point (kill -9 drills).
    """
    wanted = {s.strip() for s in os.environ.get(FAULT_ENV, "").split(",") if s.strip()}
    if f"{step}:kill" in wanted:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if step in wanted:
        raise LwdockError(f"fault injected at step '{step}' ({FAULT_ENV})", code="fault_injected", step=step)
    if f"{step}:once" in wanted and step not in _FIRED:
        _FIRED.add(step)
        from lwlib.errors import CatalogError

        raise CatalogError(f"transient fault injected once at step '{step}' ({FAULT_ENV})",
                           code="transient_fault", step=step)


@dataclass(frozen=True)
class RuntimeInfo:
    """Where a learnware runs: its environment and the OCI build context (and image, if one was built)."""

    environment: Environment | None
    oci_context: str | None = None
    image_built: bool = False
    image_id: str | None = None
    note: str = ""

    @property
    def env_key(self) -> str:
        return self.environment.key if self.environment is not None else "unbuilt"

    @property
    def mode(self) -> str:
        return self.environment.mode if self.environment is not None else "unbuilt"


@dataclass(frozen=True)
class RegistryRef:
    """A registered model version (``models:/<name>/<version>``) and the MLflow run that produced it."""

    name: str
    version: str
    uri: str
    run_id: str | None = None


@dataclass(frozen=True)
class Submission:
    """One learnware on its way through the submitting stage; each step returns it extended.

    Attributes
    ----------
    learnware : Learnware
        The validated package (its ``id`` is the content id computed when the zip was stored).
    spec : SpecReport
        Facts of the verified statistical spec (checked at validate, before any environment is built).
    source_name : str
        The file name the submitter gave, for messages (never the content hash or a dock path).
    runtime, check, reference, record
        Filled by containerize, check, register and catalog.
    label_spec : BaseStatSpec or None
        The label-aware part of the statistical spec, made by ``specify`` from the model's own outputs.
    rkme_outputs : ndarray or None
        The model's outputs at its RKME points, taken in the sandbox by ``check`` and consumed by ``specify``.
    timings : mapping of str to float
        Seconds per step.
    """

    learnware: Learnware
    spec: SpecReport
    source_name: str = ""
    runtime: RuntimeInfo | None = None
    check: CheckReport | None = None
    label_spec: Any = None
    rkme_outputs: NDArray[Any] | None = None
    reference: RegistryRef | None = None
    record: LearnwareRecord | None = None
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.learnware.id

    @property
    def semantic(self) -> SemanticSpec:
        sem = self.learnware.semantic_spec
        assert sem is not None  # validate refuses a learnware without one
        return sem

    @property
    def status(self) -> Status:
        return self.check.status if self.check is not None else Status.NONUSABLE

    def extend(self, step: str, started: float, **changes: Any) -> Submission:
        """This submission with ``changes`` applied and ``step`` timed from ``started`` (a perf_counter value)."""
        return replace(self, **changes, timings={**self.timings, step: round(time.perf_counter() - started, 3)})


def store(dock: Dock, source: str | os.PathLike[str] | bytes, *, source_name: str | None = None) -> StoredPackage:
    """Put the zip into the content-addressed store (its sha256 is computed here, once)."""
    return dock.packages.put(source, source_name=source_name)


def validate(dock: Dock, stored: StoredPackage, semantic_spec: SemanticSpec | Mapping[str, Any] | None = None
             ) -> Submission:
    """Safe-extract and parse the package, then run the cheap pure checks (spec ↔ semantic) before any build.

    Raises
    ------
    InvalidPackageError
        Anything wrong with the package (the caller discards what was stored and reports INVALID).
    """
    from lwlib.learnware import open_learnware

    inject_fault("validate")
    t0 = time.perf_counter()
    try:
        lw = open_learnware(stored.path, dock.settings.packages_dir, semantic_spec=semantic_spec,
                            learnware_id=stored.id)
    except InvalidPackageError as exc:  # the user knows their file by its name, not by its content hash
        if stored.source_name and stored.id in exc.message:
            exc.message = exc.message.replace(f"{stored.id}.zip", stored.source_name).replace(stored.id,
                                                                                               stored.source_name)
        raise
    if lw.semantic_spec is None:
        raise SemanticSpecError("no semantic specification: pass one with the submission (--semantic FILE) or "
                                "ship semantic_specification.json in the zip", code="semantic_missing")
    return Submission(lw, verify_specs(lw), source_name=stored.source_name).extend("validate", t0)


def containerize(dock: Dock, sub: Submission) -> Submission:
    """Build (or reuse) the learnware's environment and its OCI build context; build the image if an engine answers.

    Raises
    ------
    RuntimeBuildError
        The environment cannot be built (transient ones are retried by the task; the flow records the rest as
        NONUSABLE).
    """
    from lwlib.runtime import oci

    inject_fault("containerize")
    t0 = time.perf_counter()
    env = dock.environments.ensure(sub.learnware.requirements, mode=dock.runtime_mode)
    ctx = oci.ensure_build_context(sub.learnware, dock.settings.oci_dir / sub.id, environment=env,
                                   envs=dock.environments)
    image = oci.build_image(ctx) if dock.build_images else oci.ImageBuildResult(False, "image builds disabled")
    info = RuntimeInfo(env, str(ctx.path), bool(image.built), image.image_id, image.reason or "")
    return sub.extend("containerize", t0, runtime=info)


def unbuilt(sub: Submission, exc: LwdockError) -> Submission:
    """The environment could not be built: the learnware is kept NONUSABLE with the reason (a re-check may revive it)."""
    report = runtime_unbuilt(exc)
    return replace(sub, runtime=RuntimeInfo(None, note=report.reason), check=report)


@contextmanager
def _borrowed(model: Any) -> Iterator[Any]:
    yield model  # the caller's ``with`` owns the worker; the check only borrows it


def check(dock: Dock, sub: Submission) -> Submission:
    """Run the model in the runtime ``containerize`` built: shapes, probes, finite outputs, label range.

    While the worker is up, the model's outputs at its own RKME points are taken too (one more predict of K rows
    instead of a second worker start); ``specify`` turns them into the label-aware spec.
    """
    from lwlib.specify import anchor_spec

    inject_fault("check")
    t0 = time.perf_counter()
    env = sub.runtime.environment if sub.runtime is not None else None
    outputs = None
    try:
        with dock.open_model(sub.learnware, environment=env) as model:
            report = check_learnware(sub.learnware, lambda _lw: _borrowed(model))
            rkme = anchor_spec(sub.learnware)
            if report.status is Status.USABLE and rkme is not None:
                try:
                    outputs = model.predict(rkme.z_)
                except LwdockError as exc:  # the check passed; a label-aware part is a bonus, not a condition
                    logger.warning("no outputs at the RKME points of %s: %s", sub.source_name, exc.code)
    except LwdockError as exc:  # the model did not even start (import error, startup timeout, bad shapes)
        report = open_failure_report(exc, duration_s=time.perf_counter() - t0)
    return sub.extend("check", t0, check=report, rkme_outputs=outputs)


def specify(dock: Dock, sub: Submission) -> Submission:
    """Add the label-aware part of the statistical spec from the model's own outputs at its RKME points.

    The RKME itself was verified at validate (before any build); a model that failed its check gets no label-aware
    part. Pure: the outputs were taken in the sandbox during ``check``.
    """
    from lwlib.specify import make_label_spec

    inject_fault("specify")
    t0 = time.perf_counter()
    if sub.status is not Status.USABLE or sub.rkme_outputs is None:
        return sub.extend("specify", t0)
    return sub.extend("specify", t0, label_spec=make_label_spec(sub.learnware, sub.rkme_outputs),
                      rkme_outputs=None)


def register(dock: Dock, sub: Submission) -> Submission:
    """One MLflow run for the submission and a registry version (idempotent by content id)."""
    inject_fault("register")
    t0 = time.perf_counter()
    ref = dock.registry.register_submission(sub)
    return sub.extend("register", t0, reference=ref)


def catalog(dock: Dock, sub: Submission) -> Submission:
    """Write the catalog row, spec payloads and the check in one transaction."""
    from lwlib.catalog import CheckRecord, LearnwareRecord, SpecPayload

    inject_fault("catalog")
    t0 = time.perf_counter()
    assert sub.check is not None and sub.reference is not None
    rec = LearnwareRecord.from_submission(sub)
    payloads = [SpecPayload.from_spec(sub.id, s) for s in sub.learnware.stat_specs.values()]
    if sub.label_spec is not None:
        payloads.append(SpecPayload.from_spec(sub.id, sub.label_spec))
    with dock.catalog_writer() as cat:
        with cat.transaction():
            stored = cat.upsert_learnware(rec, payloads)
            cat.add_check(CheckRecord(sub.id, "submit", sub.check.status, sub.check.reason, sub.check.to_dict(),
                                      sub.check.duration_s))
        _update_index(dock, cat, added=[sub.id])
    return sub.extend("catalog", t0, record=stored)


def _update_index(dock: Dock, cat: Any, *, added: Sequence[str] = (), removed: Sequence[str] = ()) -> None:
    """Bring the persisted search index up to date inside the writer's open connection (never raises: a stale
    index is brought up to date by the next reader)."""
    from lwlib.market import update_index

    update_index(dock.settings, added=added, removed=removed, catalog=cat)


def unregister(dock: Dock, sub: Submission) -> None:
    """Compensation when the catalog write failed for good: remove the registry entry written for ``sub``."""
    if sub.reference is not None:
        dock.registry.delete_learnware(sub.reference.name)


def recheck(dock: Dock, record: LearnwareRecord) -> tuple[CheckReport, Status]:
    """Re-run the check of a catalogued learnware; record history, status and the ``usable`` alias.

    Returns the new report and the status before.
    """
    from lwlib.catalog import CheckRecord

    try:
        report = check_learnware(dock.open_learnware(record), dock.open_model)
    except LwdockError as exc:  # e.g. a stored package that today's bounds refuse: a status, not a crash
        report = open_failure_report(exc)
    with dock.catalog_writer() as cat:
        with cat.transaction():
            cat.add_check(CheckRecord(record.id, "recheck", report.status, report.reason, report.to_dict(),
                                      report.duration_s))
            cat.set_status(record.id, report.status, report.reason)
        _update_index(dock, cat, added=[record.id])
    if record.registry_name and record.registry_version:
        dock.registry.set_usable(record.registry_name, record.registry_version, report.status is Status.USABLE)
    return report, record.status


def existing(dock: Dock, learnware_id: str) -> LearnwareRecord | None:
    """The catalog row of an already accepted submission whose registry version also exists (idempotency)."""
    if not dock.settings.catalog_path.exists():
        return None
    with dock.catalog(read_only=True) as cat:
        rec = cat.get(learnware_id)
    if rec is None or dock.registry.find_version(learnware_id) is None:
        return None
    return rec


def discard(dock: Dock, learnware_id: str) -> None:
    """Remove everything a submission wrote for this content id, unless the learnware is recorded in the catalog."""
    if existing(dock, learnware_id) is not None:
        return
    dock.packages.discard(learnware_id)
    dock.discard_runtime_context(learnware_id)


def source_path(path: str | os.PathLike[str]) -> Path:
    """A user-given zip path with ``~`` expanded (a form value like ``~/Downloads/x.zip`` must work)."""
    return Path(os.path.expanduser(os.fspath(path)))
