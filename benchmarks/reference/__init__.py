"""Run the reference ``learnware`` package (PyPI 0.4.0.post1) side by side with Learnware Dock.

``driver`` (our venv) prepares inputs and calls ``runner`` (executed by file path inside ``.venv-reference``, which
``setup_env.sh`` builds). Exports are lazy so importing this package never pulls numpy or lwlib by itself.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ReferenceUser", "available", "run_reference", "run_reference_timing", "setup"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from benchmarks.reference import driver

        return getattr(driver, name)
    raise AttributeError(f"module 'benchmarks.reference' has no attribute {name!r}")
