from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import submission
from lwlib.dock import Dock
from lwlib.package_store import StoredPackage
from lwlib.submission import Submission


@task(name="validate", tags=["submit"], cache_policy=NONE, timeout_seconds=300, retries=0)
def validate(dock: Dock, stored: StoredPackage, semantic_spec: dict[str, Any] | None = None) -> Submission:
    """Safe-extract the zip, parse manifest, specs and semantic spec, check spec ↔ semantic (never retried)."""
    sub = submission.validate(dock, stored, semantic_spec)
    get_run_logger().info("valid package %s (%s), spec %s %dx%d", sub.source_name, sub.semantic.name,
                          sub.spec.spec_type, sub.spec.reduced_set_size, sub.spec.n_features)
    return sub
