"""Integration fixtures: real MLflow sqlite and DuckDB per module (the Prefect test server is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dock home (MLflow sqlite + artifacts, DuckDB file, runtimes) shared by a test module."""
    return tmp_path_factory.mktemp("dock-home")
