from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.dock import Dock, RuntimeInfo
from tasks._common import transient_only


@task(name="containerize", tags=["submit", "runtime"], cache_policy=NONE, timeout_seconds=1800, retries=2,
      retry_delay_seconds=5, retry_condition_fn=transient_only)
def containerize(dock: Dock, learnware: Any) -> RuntimeInfo:
    """Build or reuse the isolated environment (uv venv or inherit) and write the OCI build context."""
    info = dock.containerize(learnware)
    log = get_run_logger()
    log.info("runtime %s mode=%s python=%s", info.env_key[:12], info.mode, info.python)
    log.info("OCI image %s", f"built: {info.image_id}" if info.image_built else f"not built: {info.image_note}")
    return info
