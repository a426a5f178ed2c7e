"""Keeping the three stores in step: rebuild the catalog from the registry, and find and remove orphans.

The MLflow registry is the system of record; the DuckDB catalog is a rebuildable index of it; the package store
holds the zips. A kill -9 between two writes can leave one store ahead of another. :func:`doctor` finds every such
leftover (a zip or OCI context nothing records, a registry version with no catalog row, a catalog row whose
registry model is gone, temp files of interrupted copies, MLflow runs whose process died) and, with
``repair=True``, restores or removes it. Submissions in flight hold their content lock and are left alone.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwlib.check import CheckReport
from lwlib.locks import process_alive
from lwlib.status import Status

if TYPE_CHECKING:
    from lwlib.dock import Dock
    from lwlib.registry import RegisteredVersion

__all__ = ["rebuild_catalog", "restore_from_registry", "DoctorReport", "doctor", "delete_learnware"]

logger = logging.getLogger(__name__)


def restore_from_registry(dock: Dock, version: RegisteredVersion) -> None:
    """Write the catalog row of one registered learnware version from what the registry holds."""
    from lwlib import submission
    from lwlib.submission import RegistryRef

    with tempfile.TemporaryDirectory(prefix="lwdock-rebuild-") as tmp:
        files = dock.registry.download_submission(version, tmp)
        stored = dock.packages.put(files["zip"])
        semantic = json.loads(files["semantic"].read_text()) if "semantic" in files else None
        sub = submission.validate(dock, stored, semantic)
        check = (CheckReport.from_dict(json.loads(files["check"].read_text())) if "check" in files
                 else CheckReport(Status.USABLE, "rebuilt from registry"))
        status = Status.USABLE if version.usable else Status.NONUSABLE
        check = CheckReport(status, check.reason if status is check.status else "usable alias not set in registry",
                            check.code, check.input_shape, check.output_shape, check.probes, check.protections)
        label_spec = _label_spec(files.get("label_spec"))
        ref = RegistryRef(version.name, version.version, f"models:/{version.name}/{version.version}", version.run_id)
        from dataclasses import replace

        submission.catalog(dock, replace(sub, check=check, reference=ref, label_spec=label_spec))


def _label_spec(path: Path | None) -> Any:
    if path is None:
        return None
    from lwlib.rkme.label_aware import LabelAwareSpec

    return LabelAwareSpec.from_dict(json.loads(path.read_text()))


def rebuild_catalog(dock: Dock) -> int:
    """Re-create every learnware row from its newest registered version; returns how many were written.

    Status comes from the registry (``usable`` alias ⇒ USABLE, else NONUSABLE), the reason from the submission
    run's check report. The existing catalog rows are replaced; check history is kept.
    """
    newest: dict[str, RegisteredVersion] = {}
    for v in dock.registry.list_versions():
        if v.sha256 and v.tags.get("lwdock.kind", "learnware") == "learnware":
            newest[v.name] = v
    for v in newest.values():
        restore_from_registry(dock, v)
    from lwlib.market import rebuild_index

    rebuild_index(dock.settings)
    logger.info("catalog rebuilt: %d learnwares from %s", len(newest), dock.settings.mlflow_uri)
    return len(newest)


@dataclass
class DoctorReport:
    """What :func:`doctor` found (and, with ``repaired``, fixed), one list per kind of leftover."""

    orphan_packages: list[str] = field(default_factory=list)
    orphan_contexts: list[str] = field(default_factory=list)
    partial_files: list[str] = field(default_factory=list)
    registry_without_catalog: list[str] = field(default_factory=list)
    catalog_without_registry: list[str] = field(default_factory=list)
    stale_mlflow_runs: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def problems(self) -> int:
        return sum(len(v) for k, v in self.__dict__.items() if isinstance(v, list) and k != "in_flight")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def doctor(dock: Dock, *, repair: bool = False) -> DoctorReport:
    """Find (and with ``repair`` fix) leftovers across the package store, the catalog and the registry."""
    report = DoctorReport(repaired=repair)
    catalog_rows: dict[str, Any] = {}
    if dock.settings.catalog_path.exists():
        with dock.catalog(read_only=True) as cat:
            catalog_rows = {r.id: r for r in cat.list()}
    versions = [v for v in dock.registry.list_versions()
                if v.sha256 and v.tags.get("lwdock.kind", "learnware") == "learnware"]
    registered = {str(v.sha256): v for v in versions}
    busy = {i for i in dock.packages.ids() | set(registered) if dock.locks.is_held(i)}
    report.in_flight = sorted(busy)

    report.orphan_packages = sorted(dock.packages.ids() - set(catalog_rows) - set(registered) - busy)
    oci = dock.settings.oci_dir
    contexts = {p.name for p in oci.iterdir() if p.is_dir() and not p.name.startswith(".")} if oci.is_dir() else set()
    report.orphan_contexts = sorted(contexts - set(catalog_rows) - set(registered) - busy)
    partials = list(dock.packages.partials()) + (sorted(oci.glob(".part-*")) if oci.is_dir() else [])
    if dock.settings.packages_dir.is_dir():  # extraction staging folders of an interrupted open_learnware
        partials += [p for pat in (".*.part-*", ".*.check-*", ".*.old-*") for p in dock.settings.packages_dir.glob(pat)]
    report.partial_files = sorted(str(p.relative_to(dock.settings.home)) for p in partials) if not busy else []
    report.registry_without_catalog = sorted(set(registered) - set(catalog_rows) - busy)
    names = {v.name for v in versions}
    report.catalog_without_registry = sorted(i for i, r in catalog_rows.items()
                                             if r.registry_name not in names and i not in busy)
    host = socket.gethostname()
    for run in dock.registry.running_runs():
        pid, run_host = run.get("pid"), run.get("host")
        if pid and pid.isdigit() and run_host == host and not process_alive(int(pid)):
            report.stale_mlflow_runs.append(str(run["run_id"]))
    if repair:
        _repair(dock, report, registered, catalog_rows)
    return report


def _repair(dock: Dock, report: DoctorReport, registered: dict[str, RegisteredVersion],
            catalog_rows: dict[str, Any]) -> None:
    for lid in report.orphan_packages:
        dock.packages.discard(lid)
    for lid in report.orphan_contexts:
        dock.discard_runtime_context(lid)
    for rel in report.partial_files:
        path = dock.settings.home / rel
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    for lid in report.registry_without_catalog:  # registered, killed before the catalog write: complete it
        restore_from_registry(dock, registered[lid])
    if report.catalog_without_registry:  # the registry is the system of record: drop rows it does not hold
        from lwlib.market import update_index

        with dock.catalog_writer() as cat:
            with cat.transaction():
                for lid in report.catalog_without_registry:
                    cat.delete(lid)
            update_index(dock.settings, removed=report.catalog_without_registry, catalog=cat)
        for lid in report.catalog_without_registry:
            dock.packages.discard(lid)
            dock.discard_runtime_context(lid)
    for run_id in report.stale_mlflow_runs:
        dock.registry.end_run(run_id, status="KILLED")
    logger.info("doctor repaired %d problems", report.problems)


def delete_learnware(dock: Dock, learnware_id: str) -> Any:
    """Remove one learnware everywhere: registry first (the system of record), then the catalog row and its
    index entry, then its package and OCI context. Returns the removed catalog row."""
    from lwlib.market import update_index

    rec = dock.get(learnware_id)
    if rec.registry_name:
        dock.registry.delete_learnware(rec.registry_name)
    with dock.catalog_writer() as cat:
        with cat.transaction():
            cat.delete(learnware_id)
        update_index(dock.settings, removed=[learnware_id], catalog=cat)
    dock.packages.discard(learnware_id)
    dock.discard_runtime_context(learnware_id)
    return rec
