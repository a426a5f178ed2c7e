"""The engine stays orchestration-free: lwlib must not import prefect, and only lwlib/registry imports mlflow."""

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
