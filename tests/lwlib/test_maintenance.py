"""`lwdock doctor`'s engine: every kind of leftover a kill -9 can leave is found, and repair leaves a consistent
market (real MLflow sqlite, real DuckDB, real package store)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.reference_zip import make_reference_zip, reference_semantic

from lwlib import submission
from lwlib.dock import Dock
from lwlib.maintenance import doctor, rebuild_catalog
from lwlib.settings import Settings
from lwlib.status import Status

pytestmark = pytest.mark.integration


def _through(dock: Dock, zp: Path, last: str) -> submission.Submission:
    """Run the submission steps up to and including ``last`` (what a kill -9 after that step leaves)."""
    sub = submission.validate(dock, submission.store(dock, zp), reference_semantic())
    for name in ("containerize", "check", "specify", "register", "catalog"):
        sub = getattr(submission, name)(dock, sub)
        if name == last:
            break
    return sub


def test_doctor_finds_every_leftover_and_repair_makes_the_stores_agree(tmp_path: Path) -> None:
    dock = Dock(Settings(home=tmp_path / "home"))
    complete = _through(dock, make_reference_zip(tmp_path / "ok.zip", seed=1), "catalog")
    stored_only = _through(dock, make_reference_zip(tmp_path / "a.zip", seed=2), "containerize")
    registered_only = _through(dock, make_reference_zip(tmp_path / "b.zip", seed=3), "register")
    lost_model = _through(dock, make_reference_zip(tmp_path / "c.zip", seed=4), "catalog")
    assert lost_model.reference is not None
    dock.registry.delete_learnware(lost_model.reference.name)
    (dock.settings.packages_dir / ".part-x.zip").write_bytes(b"half")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with dock.registry.start_submission_run("a" * 64, {}) as run:  # a run whose process "died" mid-way
        dock.registry.client.set_tag(run.run_id, "lwdock.pid", dead.stdout.strip())
        stale_id = run.run_id
    dock.registry.client.update_run(stale_id, status="RUNNING")

    found = doctor(dock)
    assert found.orphan_packages == [stored_only.id] and found.orphan_contexts == [stored_only.id]
    assert found.registry_without_catalog == [registered_only.id]
    assert found.catalog_without_registry == [lost_model.id]
    assert found.partial_files == ["learnwares/.part-x.zip"] and stale_id in found.stale_mlflow_runs
    assert complete.id not in found.orphan_packages

    doctor(dock, repair=True)
    again = doctor(dock)
    assert again.problems == 0, again.to_dict()
    with dock.catalog(read_only=True) as cat:
        ids = {r.id: r.status for r in cat.list()}
    assert ids == {complete.id: Status.USABLE, registered_only.id: Status.USABLE}  # the registered one completed
    assert not (dock.settings.packages_dir / f"{stored_only.id}.zip").exists()
    assert dock.registry.client.get_run(stale_id).info.status == "KILLED"


def test_doctor_leaves_a_submission_in_flight_alone(tmp_path: Path) -> None:
    dock = Dock(Settings(home=tmp_path / "home"))
    sub = _through(dock, make_reference_zip(tmp_path / "a.zip", seed=5), "containerize")
    with dock.locks.content(sub.id):
        report = doctor(dock, repair=True)
        assert report.in_flight == [sub.id] and report.orphan_packages == []
    assert (dock.settings.packages_dir / f"{sub.id}.zip").exists()


def test_rebuild_restores_the_label_aware_spec_from_the_registry(tmp_path: Path) -> None:
    dock = Dock(Settings(home=tmp_path / "home"))
    sub = _through(dock, make_reference_zip(tmp_path / "ok.zip", seed=6), "catalog")
    assert sub.label_spec is not None
    with dock.catalog(read_only=True) as cat:
        before = sorted((p.spec_type, p.to_dict() == p.to_dict()) for p in cat.load_spec_payloads(ids=[sub.id]))
    dock.settings.catalog_path.unlink()
    assert rebuild_catalog(dock) == 1
    with dock.catalog(read_only=True) as cat:
        payloads = {p.spec_type: p for p in cat.load_spec_payloads(ids=[sub.id])}
    assert sorted((t, True) for t in payloads) == before
    restored = payloads[sub.label_spec.type_name].to_spec()
    assert restored.to_dict() == sub.label_spec.to_dict()
