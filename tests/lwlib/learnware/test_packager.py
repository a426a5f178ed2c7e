"""package_learnware: output opens, is deterministic, and its generated model predicts like the original."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from lwlib.errors import InvalidPackageError, SemanticSpecError
from lwlib.learnware import open_learnware, package_learnware, sha256_file
from lwlib.semantic import make_semantic_spec

RNG = np.random.default_rng(0)
X = RNG.normal(size=(120, 5))
y_cls = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)


def _load_model(lw, name: str):
    """Import the generated module (test only; the dock itself never does this in-process)."""
    spec = importlib.util.spec_from_file_location(name, lw.root / "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod.Model(**lw.manifest.model.kwargs)


def test_sklearn_classifier(tmp_path: Path) -> None:
    clf = LogisticRegression(max_iter=500).fit(X, y_cls)
    sem = make_semantic_spec(name="toy clf", description="three classes", input_dimension=5, output_dimension=3)
    p1 = package_learnware(clf, X, sem, tmp_path / "a.zip")
    p2 = package_learnware(clf, X, sem, tmp_path / "b.zip")
    assert sha256_file(p1) == sha256_file(p2)
    lw = open_learnware(p1, tmp_path / "w")
    assert lw.semantic_spec == sem and lw.stat_specs["RKMETableSpecification"].z_.shape[1] == 5
    assert any(p.startswith("scikit-learn==") for p in lw.requirements.packages)
    model = _load_model(lw, "lw_generated_clf")
    assert model.input_shape == (5,) and model.output_shape == (1,)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))


def test_sklearn_regressor_and_custom_requirements(tmp_path: Path) -> None:
    reg = Ridge().fit(X, X @ np.arange(5.0))
    sem = make_semantic_spec(name="toy reg", description="ridge", task_type="Regression", input_dimension=5,
                             output_dimension=1)
    p = package_learnware(reg, X, sem, tmp_path / "r.zip", requirements=["Scikit_Learn>=1.0", "numpy"])
    lw = open_learnware(p, tmp_path / "w")
    assert lw.requirements.packages == ("numpy", "scikit-learn>=1.0")
    np.testing.assert_allclose(_load_model(lw, "lw_generated_reg").predict(X), reg.predict(X))


def test_rejects_mismatched_input_dimension(tmp_path: Path) -> None:
    sem = make_semantic_spec(name="bad", description="wrong dim", input_dimension=4, output_dimension=3)
    with pytest.raises(SemanticSpecError) as ei:
        package_learnware(LogisticRegression().fit(X, y_cls), X, sem, tmp_path / "a.zip")
    assert ei.value.code == "semantic_shape_mismatch"
    assert not (tmp_path / "a.zip").exists()


def test_rejects_disallowed_requirements(tmp_path: Path) -> None:
    sem = make_semantic_spec(name="x", description="y", input_dimension=5, output_dimension=3)
    with pytest.raises(InvalidPackageError) as ei:
        package_learnware(LogisticRegression().fit(X, y_cls), X, sem, tmp_path / "a.zip",
                          requirements=["--index-url http://evil"])
    assert ei.value.code == "requirements_disallowed"


def test_torch_module(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    sem = make_semantic_spec(name="toy net", description="mlp", library_type="PyTorch", input_dimension=5,
                             output_dimension=3)
    p = package_learnware(net, X.astype(np.float32), sem, tmp_path / "t.zip")
    lw = open_learnware(p, tmp_path / "w")
    assert any(r.startswith("torch==") for r in lw.requirements.packages)
    model = _load_model(lw, "lw_generated_torch")
    assert model.output_shape == (3,)
    with torch.no_grad():
        expected = net(torch.from_numpy(X.astype(np.float32))).numpy()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-6)
