"""Driver plumbing for the reference ``learnware`` package: inputs, subprocess, parsing, failure modes.

The fast tests use a fake ``.venv-reference`` whose ``bin/python`` is a shell script writing canned JSON; the
integration test runs the real reference on 3 hand-made reference-layout zips when ``.venv-reference`` exists.
"""
from __future__ import annotations

import ast
import json
import pickle
import stat
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks.reference import driver
from benchmarks.reference.driver import ReferenceUser, available, run_reference, write_inputs
from benchmarks.errors import ReferenceRunError

FAKE_PY = """#!/usr/bin/env bash
# Fake interpreter: records its argv and HOME, then writes canned runner output to the --out path.
out=""; prev=""
for a in "$@"; do if [ "$prev" = "--out" ]; then out="$a"; fi; prev="$a"; done
{MODE}
printf '{"mode": "market", "argv": "%s", "home": "%s", "users": {"u1": {"reuse": {{REUSE}}}}}' "$*" "$HOME" > "$out"
""".replace("{REUSE}", '"top1": {"pred": [1, 0], "seconds": 0.1}, '
              '"ensemble_pruning": {"10": {"error": "ModuleNotFoundError: geatpy"}}')


def _fake_venv(tmp_path: Path, mode: str = "") -> Path:
    venv = tmp_path / "fakevenv"
    (venv / "bin").mkdir(parents=True)
    py = venv / "bin" / "python"
    py.write_text(FAKE_PY.replace("{MODE}", mode))
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    (venv / driver.STAMP_NAME).write_text("x")
    return venv


def _zips(tmp_path: Path) -> Path:
    d = tmp_path / "zips"
    d.mkdir(exist_ok=True)
    (d / "abc.zip").write_bytes(b"PK")
    return d


def _users(rng: np.random.Generator) -> list[ReferenceUser]:
    return [ReferenceUser(key="u1", X=rng.normal(size=(30, 4)), semantic={"Data": {"Values": ["Table"],
                                                                                   "Type": "Class"}},
                          X_labelled=rng.normal(size=(20, 4)), y_labelled=rng.integers(0, 2, 20),
                          labelled_sizes=(10, 20)),
            {"key": "u2", "X": rng.normal(size=(5, 2, 2)), "task": "regression"}]


def test_write_inputs_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    users = _users(rng)
    js, npz = write_inputs(users, tmp_path / "in")
    meta = json.loads(js.read_text())
    arrays = np.load(npz)
    assert [m["key"] for m in meta] == ["u1", "u2"]
    assert meta[0]["labelled_sizes"] == [10, 20] and meta[1]["labelled_sizes"] == []
    assert meta[1]["task"] == "regression" and meta[0]["semantic"]["Data"]["Values"] == ["Table"]
    np.testing.assert_allclose(arrays["u1__X"], users[0].X)
    assert arrays["u2__X"].shape == (5, 4)  # flattened per sample, as the reference reshapes (n, -1)
    np.testing.assert_array_equal(arrays["u1__yl"], users[0].y_labelled)
    assert "u2__Xl" not in arrays


@pytest.mark.parametrize("bad", [
    [{"key": "a", "X": np.zeros((2, 2))}, {"key": "a", "X": np.zeros((2, 2))}],
    [{"key": "a__b", "X": np.zeros((2, 2))}],
    [{"key": "a", "X": np.zeros((2, 2)), "labelled_sizes": (5,)}],
])
def test_write_inputs_rejects_bad_users(tmp_path: Path, bad: list) -> None:
    with pytest.raises(ValueError):
        write_inputs(bad, tmp_path)


def test_available_reports_why(tmp_path: Path) -> None:
    ok, reason = available(tmp_path / "nothing")
    assert not ok and "setup_env.sh" in reason
    venv = _fake_venv(tmp_path)
    (venv / driver.STAMP_NAME).unlink()
    ok, reason = available(venv)
    assert not ok and "incomplete" in reason
    (venv / driver.STAMP_NAME).write_text("x")
    assert available(venv)[0]


def test_run_reference_parses_runner_output(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path)
    out = tmp_path / "res" / "ref.json"
    res = run_reference(_zips(tmp_path), _users(np.random.default_rng(1)), out, timeout=30, venv=venv,
                        search_method="auto", herding_num=7)
    assert out.exists() and res["meta"]["wall_seconds"] > 0
    assert res["users"]["u1"]["reuse"]["top1"]["pred"] == [1, 0]
    assert "error" in res["users"]["u1"]["reuse"]["ensemble_pruning"]["10"]
    argv = res["argv"]
    assert argv.startswith(str(driver.RUNNER)) and " market " in f" {argv} "
    assert "--search-method auto" in argv and "--herding-num 7" in argv and "--users-npz" in argv
    assert res["home"] != str(Path.home()) and "lwref-drv-" in res["home"]  # private HOME


def test_run_reference_failures_raise(tmp_path: Path) -> None:
    users = _users(np.random.default_rng(2))
    with pytest.raises(ReferenceRunError, match="no reference venv"):
        run_reference(_zips(tmp_path), users, tmp_path / "o.json", venv=tmp_path / "missing")
    crash = _fake_venv(tmp_path / "c", mode='echo "boom from runner" >&2; exit 3')
    with pytest.raises(ReferenceRunError, match="boom from runner") as exc:
        run_reference(_zips(tmp_path), users, tmp_path / "o.json", timeout=30, venv=crash)
    assert exc.value.facts["returncode"] == 3
    slow = _fake_venv(tmp_path / "s", mode="sleep 20")
    with pytest.raises(ReferenceRunError, match="timeout"):
        run_reference(_zips(tmp_path), users, tmp_path / "o.json", timeout=1, venv=slow)
    with pytest.raises(ReferenceRunError, match="no \\*.zip"):
        run_reference(tmp_path / "c", users, tmp_path / "o.json", venv=crash)


def test_format_timing_rows() -> None:
    res = {"rkme": {"n=1000,d=10": {"min": 0.1, "median": 0.2, "max": 0.3}},
           "search": {"N=100,d=10": {"full": {"min": 1.0, "median": 2.0, "max": 3.0}},
                      "N=1000,d=10": {"error": "MemoryError: x"}}}
    text = driver.format_timing(res)
    assert "| rkme n=1000,d=10 | 0.200 | 0.100 | 0.300 |" in text
    assert "| search N=100,d=10 | 2.000 |" in text and "error: MemoryError" in text


def test_runner_never_imports_lwlib() -> None:
    tree = ast.parse(driver.RUNNER.read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.split(".")[0] in {"lwlib", "benchmarks", "tasks", "flows"} for m in mods)


# ------------------------------------------------------------------ integration: the real reference package
MODEL_PY = '''
import os
import pickle

import numpy as np

try:
    from learnware.model import BaseModel
except ImportError:
    BaseModel = object


class Model(BaseModel):
    def __init__(self):
        shapes = dict(input_shape=({d},), output_shape=(1,))
        if BaseModel is object:
            self.__dict__.update(shapes)
        else:
            super().__init__(**shapes)
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.pkl"), "rb") as fh:
            self.model = pickle.load(fh)

    def fit(self, X, y):
        pass

    def finetune(self, X, y):
        pass

    def predict(self, X):
        return self.model.predict(np.asarray(X, dtype=np.float64).reshape(len(X), -1))
'''

YAML = """model:
  class_name: Model
  kwargs: {}
stat_specifications:
  - module_path: learnware.specification
    class_name: RKMETableSpecification
    file_name: stat.json
    kwargs: {}
"""


def _semantic(name: str, d: int) -> dict:
    return {"Data": {"Values": ["Table"], "Type": "Class"}, "Task": {"Values": ["Classification"], "Type": "Class"},
            "Library": {"Values": ["Scikit-learn"], "Type": "Class"},
            "Scenario": {"Values": ["Business"], "Type": "Tag"},
            "License": {"Values": ["MIT"], "Type": "Class"},
            "Name": {"Values": name, "Type": "String"}, "Description": {"Values": f"{name} test model",
                                                                      "Type": "String"},
            "Input": {"Dimension": d, "Description": {"0": "x0"}},
            "Output": {"Dimension": 2, "Description": {"0": "no", "1": "yes"}}}


def _make_zip(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    """A reference-layout learnware zip: LogisticRegression + RKME of a random subset with uniform weights."""
    from sklearn.linear_model import LogisticRegression

    d = X.shape[1]
    rng = np.random.default_rng(0)
    z = X[rng.choice(len(X), 20, replace=False)]
    rkme = {"z": z.tolist(), "beta": [1 / 20] * 20, "gamma": 0.1, "num_points": len(X),
            "type": "RKMETableSpecification"}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("learnware.yaml", YAML)
        zf.writestr("__init__.py", textwrap.dedent(MODEL_PY).replace("{d}", str(d)))
        zf.writestr("model.pkl", pickle.dumps(LogisticRegression().fit(X, y)))
        zf.writestr("stat.json", json.dumps(rkme, separators=(",", ":")))
        zf.writestr("semantic_specification.json", json.dumps(_semantic(path.stem, d)))
        zf.writestr("requirements.txt", "scikit-learn\nnumpy\n")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not available()[0], reason=available()[1])
def test_reference_end_to_end_on_three_zips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    zdir = tmp_path / "zips"
    zdir.mkdir()
    centres = {"lw_a": -3.0, "lw_b": 0.0, "lw_c": 3.0}
    for name, c in centres.items():
        X = rng.normal(c, 1.0, size=(200, 3))
        _make_zip(zdir / f"{name}.zip", X, (X[:, 0] > c).astype(int))
    Xu = rng.normal(3.0, 1.0, size=(120, 3))
    yu = (Xu[:, 0] > 3.0).astype(int)
    users = [ReferenceUser(key="near_c", X=Xu, semantic={"Data": {"Values": ["Table"], "Type": "Class"}},
                           X_labelled=Xu[:60], y_labelled=yu[:60], labelled_sizes=(30,)),
             ReferenceUser(key="between", X=np.concatenate([rng.normal(-3, 1, (60, 3)), rng.normal(0, 1, (60, 3))]))]
    res = run_reference(zdir, users, tmp_path / "ref.json", timeout=600, herding_num=50)

    assert res["meta"]["learnware"] == "0.4.0.post1"
    lws = res["market"]["learnwares"]
    assert set(lws) == set(centres) and all(v["status"] == 1 for v in lws.values()), lws
    assert all("Model=Others" in v["semantic_patches"] for v in lws.values())
    near = res["users"]["near_c"]
    assert near["search"]["single"][0]["id"] == "lw_c"
    top1 = np.asarray(near["reuse"]["top1"]["pred"])
    assert top1.shape == (120,) and (top1 == yu).mean() > 0.8
    for name in ("job_selector", "averaging"):
        assert len(near["reuse"][name]["pred"]) == 120, near["reuse"][name]
    assert len(near["reuse"]["feature_augment"]["30"]["pred"]) == 120
    assert "geatpy" in near["reuse"]["ensemble_pruning"]["30"]["error"]  # no geatpy wheel for Python 3.11
    between = res["users"]["between"]
    found = {s["id"] for s in between["search"]["single"]} | set((between["search"]["mixture"] or {}).get("ids", []))
    assert {"lw_a", "lw_b"} <= found
