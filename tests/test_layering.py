"""Dependencies point one way (deployments → flows → tasks → lwlib; benchmarks on top): checked on every import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_lwlib_never_imports_prefect() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "lwlib").rglob("*.py") if "prefect" in _imported_modules(p)]
    assert offenders == []


def test_only_registry_imports_mlflow() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "lwlib").rglob("*.py")
        if "mlflow" in _imported_modules(p) and "registry" not in p.relative_to(ROOT).parts
    ]
    assert offenders == []


def test_tasks_do_not_import_flows_or_deployments() -> None:
    for p in (ROOT / "tasks").rglob("*.py"):
        assert not ({"flows", "deployments"} & _imported_modules(p)), p


LAYERS = {  # package -> top-level packages of this repo it must never import
    "lwlib": {"tasks", "flows", "deployments", "benchmarks"},
    "tasks": {"flows", "deployments", "benchmarks"},
    "flows": {"deployments", "benchmarks"},
    "deployments": {"benchmarks"},
}


def test_layers_point_one_way() -> None:
    offenders = {}
    for pkg, forbidden in LAYERS.items():
        for p in (ROOT / pkg).rglob("*.py"):
            bad = forbidden & _imported_modules(p)
            if bad:
                offenders[str(p.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_layering_check_sees_lazy_imports(tmp_path: Path) -> None:
    """The checker must catch an import hidden inside a function, not only module-level ones."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from benchmarks.demo import run_demo\n    import flows.deploy\n")
    assert {"benchmarks", "flows"} <= _imported_modules(f)
