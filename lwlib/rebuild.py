"""Rebuild the DuckDB catalog from the MLflow registry, the system of record (ARCHITECTURE.md)."""

from __future__ import annotations

import json
import logging
import tempfile
from typing import Any

from lwlib.check import CheckReport
from lwlib.status import Status

__all__ = ["rebuild_catalog"]

logger = logging.getLogger(__name__)


def rebuild_catalog(dock: Any) -> int:
    """Re-create every learnware row from its newest registered version; returns how many were written.

    Status comes from the registry (``usable`` alias ⇒ USABLE, else NONUSABLE), the reason from the submission
    run's check report. The existing catalog rows are replaced; check history is kept.
    """
    from lwlib.dock import RegistryRef, RuntimeInfo

    reg = dock.registry()
    newest: dict[str, Any] = {}
    for v in reg.list_versions():
        if v.sha256 and v.tags.get("lwdock.kind", "learnware") == "learnware":
            newest[v.name] = v
    written = 0
    for v in newest.values():
        with tempfile.TemporaryDirectory(prefix="lwdock-rebuild-") as tmp:
            files = reg.download_submission(v, tmp)
            stored = dock.store_package(files["zip"])
            semantic = json.loads(files["semantic"].read_text()) if "semantic" in files else None
            lw = dock.validate(stored, semantic)
            check = (CheckReport.from_dict(json.loads(files["check"].read_text())) if "check" in files
                     else CheckReport(Status.USABLE, "rebuilt from registry"))
            status = Status.USABLE if v.usable else Status.NONUSABLE
            check = CheckReport(status, check.reason if status is check.status else "usable alias not set in registry",
                                check.code, check.input_shape, check.output_shape, check.probes, check.protections)
            ref = RegistryRef(v.name, v.version, f"models:/{v.name}/{v.version}", v.run_id)
            dock.record(lw, check, dock.specify(lw), RuntimeInfo(env_key="", mode="rebuilt", python=""), ref,
                        kind="submit")
            written += 1
    logger.info("catalog rebuilt: %d learnwares from %s", written, dock.settings.mlflow_uri)
    return written
