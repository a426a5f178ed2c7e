from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.dock import Dock


@task(name="validate", tags=["submit"], cache_policy=NONE, timeout_seconds=300, retries=0)
def validate(dock: Dock, zip_path: str, semantic_spec: dict | None = None) -> Any:
    """Safe-extract the zip, parse the manifest, specs and semantic spec (invalid input is never retried)."""
    lw = dock.validate(zip_path, semantic_spec)
    get_run_logger().info("valid package %s (%s), specs %s", lw.id[:12], lw.semantic_spec.name, list(lw.stat_specs))
    return lw
