"""The submitting stage's typed steps, run directly (no Prefect): one value extended per step, cleanup policy,
idempotency, and the settings passed down to the sandbox."""

from __future__ import annotations

import dataclasses
import os
import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest
from fixtures.reference_zip import make_reference_zip, reference_semantic

from lwlib import submission
from lwlib.dock import Dock
from lwlib.errors import InvalidPackageError
from lwlib.settings import Settings
from lwlib.status import Status

pytestmark = pytest.mark.integration


@pytest.fixture
def dock(tmp_path: Path) -> Dock:
    return Dock(Settings(home=tmp_path / "home"))


def _leftovers(dock: Dock, learnware_id: str) -> list[str]:
    s = dock.settings
    paths = [s.packages_dir / f"{learnware_id}.zip", s.packages_dir / learnware_id, s.oci_dir / learnware_id]
    return [str(p) for p in paths if p.exists()] + [str(p) for p in dock.packages.partials()]


def test_each_step_extends_one_value_and_the_content_id_is_computed_once(dock: Dock, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    zp = make_reference_zip(tmp_path / "ok.zip", seed=1)
    stored = submission.store(dock, zp)
    calls: list[object] = []
    import lwlib.learnware.package as package

    real = package.sha256_file
    monkeypatch.setattr(package, "sha256_file", lambda p: calls.append(p) or real(p))
    sub = submission.validate(dock, stored, reference_semantic())
    assert sub.id == stored.id and sub.source_name == "ok.zip" and calls == []  # the id is passed along
    sub = submission.containerize(dock, sub)
    assert sub.runtime is not None and sub.runtime.environment is not None
    sub = submission.check(dock, sub)
    assert sub.check is not None and sub.check.status is Status.USABLE, sub.check.reason
    sub = submission.specify(dock, sub)
    sub = submission.register(dock, sub)
    sub = submission.catalog(dock, sub)
    assert sub.record is not None and sub.record.status is Status.USABLE
    assert set(sub.timings) == {"validate", "containerize", "check", "specify", "register", "catalog"}
    from lwlib.registry.payload import model_name_for

    assert sub.reference is not None and sub.reference.name == model_name_for(sub.id, sub.semantic.name)
    assert sub.label_spec is not None and sub.rkme_outputs is None  # made at specify from check's outputs
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.check = None  # type: ignore[misc]
    assert submission.existing(dock, sub.id) is not None


def test_discard_removes_what_a_submission_wrote_unless_it_is_recorded(dock: Dock, tmp_path: Path) -> None:
    zp = make_reference_zip(tmp_path / "a.zip", seed=2)
    stored = submission.store(dock, zp)
    sub = submission.containerize(dock, submission.validate(dock, stored, reference_semantic()))
    assert _leftovers(dock, sub.id)  # zip, tree and OCI context exist
    submission.discard(dock, sub.id)
    assert _leftovers(dock, sub.id) == []


def test_invalid_spec_is_refused_at_validate_before_any_environment_is_built(dock: Dock, tmp_path: Path) -> None:
    sem = reference_semantic()
    sem["Input"] = {"Dimension": 63, "Description": {}}  # the RKME has 64 features
    stored = submission.store(dock, make_reference_zip(tmp_path / "dim.zip", seed=3))
    with pytest.raises(InvalidPackageError, match="63"):
        submission.validate(dock, stored, sem)
    assert not dock.settings.oci_dir.exists() or not any(dock.settings.oci_dir.iterdir())
    submission.discard(dock, stored.id)
    assert _leftovers(dock, stored.id) == []


def test_store_refuses_a_missing_file_naming_the_users_path(dock: Dock, tmp_path: Path) -> None:
    with pytest.raises(InvalidPackageError, match="nothere.zip") as exc:
        submission.store(dock, tmp_path / "nothere.zip")
    assert str(tmp_path) not in exc.value.message  # the user's file name, not the dock's paths


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed: the dock home cannot be hidden")
def test_sandbox_hides_the_dock_home_in_use_even_when_lwdock_home_is_unset(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (issue 10/14): a flow called with home= hid $HOME/.lwdock instead of its own home."""
    monkeypatch.delenv("LWDOCK_HOME", raising=False)
    home = tmp_path / "dockhome"
    dock = Dock(Settings(home=home))
    dock.settings.catalog_path.write_bytes(b"SECRET-CATALOG")
    src = make_reference_zip(tmp_path / "spy.zip", seed=4)
    spy = tmp_path / "spy2.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(spy, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("__init__.py"):
                data += textwrap.dedent(f"""
                    _orig = PickleLoadedModel.predict
                    def _spy(self, X):
                        try:
                            open({str(dock.settings.catalog_path)!r}, "rb").read()
                        except OSError:
                            return _orig(self, X)
                        raise RuntimeError("catalog readable")
                    PickleLoadedModel.predict = _spy
                    """).encode()
            zout.writestr(item, data)
    sub = submission.validate(dock, submission.store(dock, spy), reference_semantic())
    sub = submission.check(dock, submission.containerize(dock, sub))
    assert sub.check is not None and sub.check.status is Status.USABLE, sub.check.reason
    assert os.environ.get("LWDOCK_HOME") is None


def test_a_model_that_cannot_start_ends_nonusable_not_in_a_crash(dock: Dock, tmp_path: Path) -> None:
    stored = submission.store(dock, make_reference_zip(tmp_path / "imp.zip", broken="import_error", seed=7))
    sub = submission.check(dock, submission.containerize(dock, submission.validate(dock, stored, reference_semantic())))
    assert sub.check is not None and sub.check.status is Status.NONUSABLE and sub.check.code != "ok"
    assert sub.rkme_outputs is None and submission.specify(dock, sub).label_spec is None
