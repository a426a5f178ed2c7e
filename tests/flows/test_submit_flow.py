"""The submitting stage against a real Prefect test server, a real MLflow sqlite store and a real DuckDB file."""

from __future__ import annotations

import os
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures.reference_zip import digits_data, make_reference_zip

from lwlib.catalog import Catalog
from lwlib.dock import Dock
from lwlib.settings import Settings
from lwlib.status import Status

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

SEMANTIC = {
    "Data": {"Type": "Class", "Values": ["Table"]},
    "Task": {"Type": "Class", "Values": ["Classification"]},
    "Library": {"Type": "Class", "Values": ["Scikit-learn"]},
    "Scenario": {"Type": "Tag", "Values": ["Education"]},
    "License": {"Type": "Class", "Values": ["MIT"]},
    "Name": {"Type": "String", "Values": "Digits classifier"},
    "Description": {"Type": "String", "Values": "Logistic regression on 8x8 handwritten digits"},
    "Input": {"Dimension": 64, "Description": {"0": "pixel 0"}},
    "Output": {"Dimension": 10, "Description": {"0": "digit 0"}},
}


def _dock(home: Path) -> Dock:
    return Dock(Settings(home=home))


def _state(home: Path, learnware_id: str) -> tuple[object, object]:
    dock = _dock(home)
    with dock.catalog() as cat:
        row = cat.get(learnware_id)
    return row, dock.registry.find_version(learnware_id)


def _mlflow_load(home: Path, uri: str):
    import mlflow

    mlflow.set_tracking_uri(Settings(home=home).mlflow_uri)
    return mlflow.pyfunc.load_model(uri)


def test_reference_template_zip_is_accepted_unchanged_and_loadable_by_alias(module_home: Path, tmp_path: Path) -> None:
    from flows.submit import submit_learnware

    zp = make_reference_zip(tmp_path / "ref.zip", with_semantic=False)
    res = submit_learnware(zip_path=str(zp), semantic_spec=SEMANTIC, home=str(module_home))
    assert res.status is Status.USABLE, res.reason
    row, version = _state(module_home, res.learnware_id)
    assert row is not None and row.status is Status.USABLE and row.spec_dim == 64
    assert version is not None
    model = _mlflow_load(module_home, f"models:/{row.registry_name}@usable")
    _, X, _, _ = digits_data()
    got = np.asarray(model.predict(X[:20]))
    with zipfile.ZipFile(zp) as zf:  # the test built this pickle itself: trusted, in-process comparison only
        member = next(n for n in zf.namelist() if n.endswith("model.pkl"))
        expected = __import__("pickle").loads(zf.read(member)).predict_proba(X[:20])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)

    again = submit_learnware(zip_path=str(zp), semantic_spec=SEMANTIC, home=str(module_home))
    assert again.duplicate and again.learnware_id == res.learnware_id
    dock = _dock(module_home)
    assert len(dock.registry.list_versions(row.registry_name)) == 1
    with dock.catalog() as cat:
        assert cat.count() >= 1 and len([r for r in cat.list() if r.id == res.learnware_id]) == 1


def test_crashing_model_ends_nonusable_with_reason(module_home: Path, tmp_path: Path) -> None:
    from flows.submit import submit_learnware

    zp = make_reference_zip(tmp_path / "crash.zip", broken="predict_error")
    res = submit_learnware(zip_path=str(zp), semantic_spec=SEMANTIC, home=str(module_home))
    assert res.status is Status.NONUSABLE
    assert "RuntimeError" in res.reason and "always fails" not in res.reason  # facts, not the model's own words
    row, version = _state(module_home, res.learnware_id)
    assert row is not None and row.status is Status.NONUSABLE and row.reason == res.reason
    dock = _dock(module_home)
    assert version is not None and dock.registry.usable_version(row.registry_name) is None


@pytest.mark.parametrize("broken", ["no_manifest", "bad_yaml", "unsafe_spec_module", "nan_stat", "missing_model",
                                    "zip_slip"])
def test_malformed_zip_is_invalid_and_leaves_nothing(module_home: Path, tmp_path: Path, broken: str) -> None:
    from flows.submit import submit_learnware

    zp = make_reference_zip(tmp_path / f"{broken}.zip", broken=broken)
    res = submit_learnware(zip_path=str(zp), semantic_spec=SEMANTIC, home=str(module_home))
    assert res.status is Status.INVALID and res.reason and res.code != "ok"
    row, version = _state(module_home, res.learnware_id)
    assert row is None and version is None
    packages = Settings(home=module_home).packages_dir
    assert not (packages / f"{res.learnware_id}.zip").exists() and not (packages / res.learnware_id).exists()


@pytest.mark.parametrize("step", ["register", "catalog"])
def test_failure_then_rerun_leaves_registry_and_catalog_consistent(tmp_path: Path, step: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.submit import submit_learnware

    home = tmp_path / "home"
    zp = make_reference_zip(tmp_path / "ok.zip", seed=3)
    monkeypatch.setenv("LWDOCK_INJECT_FAULT", step)
    with pytest.raises(Exception, match="fault injected"):
        submit_learnware(zip_path=str(zp), semantic_spec=SEMANTIC, home=str(home))
    sha = __import__("hashlib").sha256(zp.read_bytes()).hexdigest()
    row, version = _state(home, sha)
    assert row is None and version is None  # the transaction compensated: nothing half-written

    monkeypatch.delenv("LWDOCK_INJECT_FAULT")
    res = submit_learnware(zip_path=str(zp), semantic_spec=SEMANTIC, home=str(home))
    assert res.status is Status.USABLE
    row, version = _state(home, sha)
    assert row is not None and version == (row.registry_name, row.registry_version)


def _flaky_zip(path: Path, flag: Path) -> Path:
    """A learnware whose model depends on an outside resource (a file) and breaks when it disappears."""
    src = make_reference_zip(path.with_suffix(".base.zip"), seed=5)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("__init__.py"):
                data += textwrap.dedent(f"""
                    _orig_predict = PickleLoadedModel.predict
                    def _predict(self, X):
                        if not __import__("os").path.exists({str(flag)!r}):
                            raise RuntimeError("upstream resource {flag.name} is gone")
                        return _orig_predict(self, X)
                    PickleLoadedModel.predict = _predict
                    """).encode()
            zout.writestr(item, data)
    return path


def test_recheck_flips_status_and_alias_when_a_learnware_breaks_and_recovers(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.recheck import recheck_market
    from flows.submit import submit_learnware

    home = tmp_path / "home"
    monkeypatch.setenv("LWDOCK_HOME", str(home))  # the re-check deployment's home comes from its environment
    # an outside resource the model may read: the interpreter prefix is bound read-only into the sandbox
    flag_dir = Path(sys.prefix) / f".lwdock-test-flag-{os.getpid()}"
    flag_dir.mkdir(parents=True, exist_ok=True)
    flag = flag_dir / "resource.ok"
    flag.write_text("ok")
    try:
        zp = _flaky_zip(tmp_path / "flaky.zip", flag)
        res = submit_learnware(zip_path=str(zp), semantic_spec=SEMANTIC, home=str(home))
        assert res.status is Status.USABLE, res.reason
        dock = _dock(home)
        name = _state(home, res.learnware_id)[0].registry_name

        flag.unlink()
        out = recheck_market()
        assert out[res.learnware_id] == "NONUSABLE"
        row, _ = _state(home, res.learnware_id)
        assert row.status is Status.NONUSABLE and "RuntimeError" in row.reason  # the class, never the model's text
        assert "gone" not in row.reason
        assert dock.registry.usable_version(name) is None

        flag.write_text("ok")
        out = recheck_market()
        assert out[res.learnware_id] == "USABLE"
        assert dock.registry.usable_version(name) is not None
        with dock.catalog() as cat:
            kinds = [h.kind for h in cat.history(res.learnware_id)]
        assert kinds.count("recheck") == 2 and "submit" in kinds
    finally:
        flag.unlink(missing_ok=True)
        flag_dir.rmdir()


def test_batch_submission_runs_concurrently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.submit import submit_batch

    home = tmp_path / "home"
    monkeypatch.setenv("LWDOCK_HOME", str(home))
    zips = [str(make_reference_zip(tmp_path / f"b{i}.zip", seed=10 + i)) for i in range(3)]
    zips.append(str(make_reference_zip(tmp_path / "bad.zip", broken="bad_yaml")))
    results = submit_batch(zip_paths=zips, semantic_specs=[SEMANTIC] * 4)
    assert [r.status for r in results] == [Status.USABLE] * 3 + [Status.INVALID]
    with Catalog.open(Settings(home=home).catalog_path, read_only=True) as cat:
        assert cat.count() == 3


def test_catalog_rebuild_from_registry_restores_rows(tmp_path: Path) -> None:
    from flows.submit import submit_learnware
    from lwlib.maintenance import rebuild_catalog

    home = tmp_path / "home"
    ok = submit_learnware(zip_path=str(make_reference_zip(tmp_path / "a.zip", seed=21)), semantic_spec=SEMANTIC,
                          home=str(home))
    bad = submit_learnware(zip_path=str(make_reference_zip(tmp_path / "b.zip", broken="predict_error", seed=22)),
                           semantic_spec=SEMANTIC, home=str(home))
    dock = _dock(home)
    with dock.catalog() as cat:
        before = {r.id: (r.status, r.name, r.registry_name, r.spec_dim) for r in cat.list()}
    dock.settings.catalog_path.unlink()
    assert rebuild_catalog(_dock(home)) == 2
    with dock.catalog() as cat:
        after = {r.id: (r.status, r.name, r.registry_name, r.spec_dim) for r in cat.list()}
    assert after == before and after[ok.learnware_id][0] is Status.USABLE
    assert after[bad.learnware_id][0] is Status.NONUSABLE


def test_transient_catalog_failure_retried_keeps_registry_version(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog write that fails once and succeeds on retry must not lose the registry version (regression:
    Prefect's on_rollback fired on the failed attempt and deleted it)."""
    from flows.submit import submit_learnware

    home = tmp_path / "home"
    monkeypatch.setenv("LWDOCK_INJECT_FAULT", "catalog:once")
    res = submit_learnware(zip_path=str(make_reference_zip(tmp_path / "t.zip", seed=31)), semantic_spec=SEMANTIC,
                           home=str(home))
    assert res.status is Status.USABLE
    row, version = _state(home, res.learnware_id)
    assert row is not None and version == (row.registry_name, row.registry_version)
    assert _dock(home).registry.usable_version(row.registry_name) == row.registry_version
