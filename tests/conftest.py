"""Test-wide environment: no telemetry, offline model hubs, Prefect and the dock home in temp folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="lwdock-tests-"))
for key, value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_HOME": str(_SESSION_TMP / "prefect"),
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "LWDOCK_HOME": str(_SESSION_TMP / "home"),
    "LWDOCK_UV_CACHE": os.environ.get("LWDOCK_UV_CACHE", str(Path.home() / ".cache" / "lwdock-test-uv")),
}.items():
    if key.startswith("PREFECT_FLOWS_HEARTBEAT"):
        os.environ.pop(key, None)
        continue
    os.environ.setdefault(key, value)


@pytest.fixture
def dock_home(tmp_path: Path) -> Path:
    """A fresh dock home for one test."""
    home = tmp_path / "dock"
    home.mkdir()
    return home


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real Prefect test server for the whole session (integration tests ask for it)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
