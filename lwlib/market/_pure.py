"""Import the numpy-only modules of :mod:`lwlib.search` without running its package ``__init__``.

Why: ``lwlib/search/__init__.py`` re-exports the torch-based index and searchers, so ``import
lwlib.search.result`` costs ~3 s of torch + scikit-learn start-up, more than the whole budget of a command-line
search. The result types, the score formulas and the requirement type are plain numpy; this loads exactly those
files under their real module names and registers them in ``sys.modules``, so the classes are the very same
objects the torch path uses (``isinstance`` and pickling keep working when ``lwlib.search`` is imported later).
When ``lwlib.search`` is already imported, the normal import is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["pure_search_module"]

_PURE = frozenset({"result", "scores", "requirement"})


def pure_search_module(name: str) -> ModuleType:
    """Return ``lwlib.search.<name>`` for a numpy-only submodule, loading it without the package init."""
    if name not in _PURE:
        raise ValueError(f"lwlib.search.{name} is not one of the numpy-only modules {sorted(_PURE)}")
    full = f"lwlib.search.{name}"
    if full in sys.modules:
        return sys.modules[full]
    if "lwlib.search" in sys.modules:
        return importlib.import_module(full)
    path = Path(__file__).resolve().parents[1] / "search" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(full, path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with lwlib
        raise ImportError(f"cannot load {full} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(full, None)
        raise
    return module
