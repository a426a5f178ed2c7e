"""Registry behaviour on a real MLflow sqlite store + artifact folder in a temp dir (schema created once)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

from lwlib.errors import RegistryError  # noqa: E402
from lwlib.registry import USABLE_ALIAS, Registry, model_name_for  # noqa: E402


def _zip(path: Path, payload: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("learnware.yaml", f"name: {payload}\n")
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lwdock-home")


@pytest.fixture(scope="module")
def registry(home: Path) -> Registry:
    reg = Registry(f"sqlite:///{home / 'mlflow.db'}", home / "artifacts")
    assert reg.experiment_id  # creates the schema + experiment once for the module
    return reg


def test_register_creates_model_version_tags_and_alias(registry: Registry, tmp_path: Path) -> None:
    zp = _zip(tmp_path / "a.zip", "a")
    sha = _sha(zp)
    name, version = registry.register_learnware(zp, tags={"data_type": "Table", "scenarios": ["Business", "Health"]})
    assert name == model_name_for(sha) and version == "1"
    (v,) = registry.list_versions(name)
    assert (v.sha256, v.usable, v.aliases) == (sha, True, (USABLE_ALIAS,))
    assert v.tags["data_type"] == "Table" and json.loads(v.tags["scenarios"]) == ["Business", "Health"]
    assert registry.client.get_registered_model(name).tags["lwdock.sha256"] == sha
    assert v.source.startswith((registry.artifact_root.as_uri(), str(registry.artifact_root)))
    model_dir = Path(registry.client.download_artifacts(v.run_id, "model", str(tmp_path / "dl")))
    assert (model_dir / "MLmodel").is_file()
    stored = [p for p in (model_dir / "artifacts").rglob("*.zip")]
    assert len(stored) == 1 and _sha(stored[0]) == sha  # the artifact is the learnware zip, byte for byte
    assert not list(model_dir.rglob("*.pkl"))  # saved from code: nothing pickled


def test_resubmission_is_idempotent_by_sha(registry: Registry, tmp_path: Path) -> None:
    zp = _zip(tmp_path / "b.zip", "b")
    first = registry.register_learnware(zp)
    assert registry.find_version(_sha(zp)) == first
    assert registry.register_learnware(zp) == first
    assert len(registry.list_versions(first[0])) == 1
    assert registry.find_version("0" * 64) is None
    with pytest.raises(RegistryError):
        registry.find_version("'; drop table --")


def test_alias_moves_to_the_last_checked_version(registry: Registry, tmp_path: Path) -> None:
    z1, z2 = _zip(tmp_path / "v1.zip", "v1"), _zip(tmp_path / "v2.zip", "v2")
    name, v1 = registry.register_learnware(z1, name="lw-moving")
    _, v2 = registry.register_learnware(z2, name="lw-moving")
    assert (v1, v2) == ("1", "2") and registry.usable_version(name) == "2"
    registry.set_usable(name, v1, usable=False)  # not the alias holder: nothing changes
    assert registry.usable_version(name) == "2"
    registry.set_usable(name, v1, usable=True)
    assert registry.usable_version(name) == "1"
    assert [v.usable for v in registry.list_versions(name)] == [True, False]
    registry.set_usable(name, v1, usable=False)
    assert registry.usable_version(name) is None
    with pytest.raises(RegistryError):
        registry.load_pyfunc(name)
    assert registry.delete_learnware(name) is True and registry.delete_learnware(name) is False
    assert registry.list_versions(name) == [] and registry.find_version(_sha(z1)) is None


def test_submission_run_logs_params_metrics_artifacts(registry: Registry, tmp_path: Path) -> None:
    zp = _zip(tmp_path / "c.zip", "c")
    sha = _sha(zp)
    with registry.start_submission_run(sha, {"name": "c", "scenarios": ["x"]}) as run:
        run.log_metrics({"check_seconds": 1.25, "predict_ok": 1})
        run.log_dict({"status": "USABLE"}, "check_report.json")
        name, version = registry.register_learnware(zp, run=run)
    got = registry.client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.data.params["name"] == "c"
    assert got.data.metrics["check_seconds"] == 1.25 and got.data.tags["lwdock.sha256"] == sha
    assert registry.list_versions(name)[0].run_id == run.run_id
    report = Path(registry.client.download_artifacts(run.run_id, "check_report.json", str(tmp_path)))
    assert json.loads(report.read_text()) == {"status": "USABLE"}
    with pytest.raises(RegistryError):  # a run for another zip cannot register this one
        registry.register_learnware(_zip(tmp_path / "d.zip", "d"), run=run)
    with pytest.raises(ValueError), registry.start_submission_run(sha, {}) as failed:
        raise ValueError("check crashed")
    assert registry.client.get_run(failed.run_id).info.status == "FAILED"


def test_register_solution_versions_and_alias(registry: Registry, tmp_path: Path) -> None:
    za, zb = _zip(tmp_path / "sa.zip", "sa"), _zip(tmp_path / "sb.zip", "sb")
    sol = {"kind": "averaging", "mode": "mean", "learnware_ids": [_sha(za), _sha(zb)], "weights": [0.5, 0.5]}
    assert registry.register_solution("sol-demo", [za, zb], sol, tags={"user": "t"}) == ("sol-demo", "1")
    assert registry.register_solution("sol-demo", {_sha(za): za, _sha(zb): zb}, sol) == ("sol-demo", "2")
    assert registry.usable_version("sol-demo") == "2"
    with pytest.raises(RegistryError):
        registry.register_solution("sol-demo", [za], sol)


# ---------------------------------------------------------------- end to end through the runtime

_E2E_READY = all(importlib.util.find_spec(m) is not None for m in ("lwlib.learnware.package", "lwlib.runtime.api"))

_MODEL_SRC = """import numpy as np
from learnware.model import BaseModel


class Model(BaseModel):
    def __init__(self):
        super().__init__(input_shape=(4,), output_shape=(1,))
        self.w = np.array({w})

    def predict(self, X):
        return np.asarray(X, dtype=np.float64) @ self.w
"""


def _package(tmp_path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, Path]:
    """A reference-format learnware zip written by hand: linear model ``X @ w`` + a table RKME spec."""
    rng = np.random.default_rng(seed)
    w, X = rng.normal(size=4), rng.normal(size=(20, 4))
    spec = {"z": X[:5].tolist(), "beta": [0.2] * 5, "gamma": 0.1, "num_points": 20, "type": "RKMETableSpecification"}
    zp = tmp_path / f"linear{seed}.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("learnware.yaml", "model:\n  class_name: Model\n  module_path: __init__.py\n"
                    "stat_specifications:\n  - module_path: learnware.specification\n"
                    "    class_name: RKMETableSpecification\n    file_name: stat.json\n")
        zf.writestr("__init__.py", _MODEL_SRC.format(w=w.tolist()))
        zf.writestr("stat.json", json.dumps(spec))
        zf.writestr("requirements.txt", "numpy\n")
    return w, X, zp


@pytest.mark.integration
@pytest.mark.skipif(not _E2E_READY, reason="needs lwlib.learnware.package and lwlib.runtime (other helpers)")
def test_pyfunc_loaded_by_alias_predicts_like_the_model(registry: Registry, home: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("LWDOCK_PYFUNC_CACHE", str(home / "pyfunc-cache"))
    w, X, zp = _package(tmp_path, 0)
    name, _ = registry.register_learnware(zp, runtime_mode="inherit")
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@usable")
    try:
        np.testing.assert_allclose(np.asarray(loaded.predict(X[:10])).reshape(-1), X[:10] @ w,
                                   rtol=1e-6, atol=1e-8)
    finally:
        loaded.unwrap_python_model().close()


@pytest.mark.integration
@pytest.mark.skipif(not _E2E_READY, reason="needs lwlib.learnware.package and lwlib.runtime (other helpers)")
def test_solution_pyfunc_averages_learnwares(registry: Registry, home: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWDOCK_PYFUNC_CACHE", str(home / "pyfunc-cache"))
    (w1, X, z1), (w2, _, z2) = _package(tmp_path, 1), _package(tmp_path, 2)
    sol = {"kind": "averaging", "mode": "mean", "learnware_ids": [_sha(z1), _sha(z2)], "weights": [0.25, 0.75]}
    registry.register_solution("sol-e2e", [z1, z2], sol, runtime_mode="inherit")
    loaded = registry.load_pyfunc("sol-e2e")
    try:
        expected = 0.25 * (X[:8] @ w1) + 0.75 * (X[:8] @ w2)
        np.testing.assert_allclose(np.asarray(loaded.predict(X[:8])).reshape(-1), expected, rtol=1e-6, atol=1e-8)
    finally:
        loaded.unwrap_python_model().close()


def test_processes_opening_a_fresh_store_together_all_succeed(tmp_path: Path) -> None:
    """Eight processes open one fresh SQLite store at once (parallel `lwdock submit` on a new home): MLflow's
    first-open migration runs once, under the store's init lock, and every process gets the same experiment."""
    import subprocess
    import sys

    db = tmp_path / "mlflow.db"
    code = ("import sys; from lwlib.registry import Registry; "
            f"r = Registry('sqlite:///{db}', {str(tmp_path / 'artifacts')!r}); print(r.experiment_id)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e[-800:] for _, e in outs]
    assert len({o.strip() for o, _ in outs}) == 1
