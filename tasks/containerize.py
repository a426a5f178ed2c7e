from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import submission
from lwlib.dock import Dock
from lwlib.submission import Submission
from tasks._common import transient_only


@task(name="containerize", tags=["submit", "runtime"], cache_policy=NONE, timeout_seconds=1800, retries=2,
      retry_delay_seconds=5, retry_condition_fn=transient_only)
def containerize(dock: Dock, sub: Submission) -> Submission:
    """Build or reuse the isolated environment (uv venv or inherit) and write the OCI build context."""
    sub = submission.containerize(dock, sub)
    info, log = sub.runtime, get_run_logger()
    assert info is not None
    log.info("runtime %s mode=%s", info.env_key[:12], info.mode)
    log.info("OCI image %s", f"built: {info.image_id}" if info.image_built else f"not built: {info.note}")
    return sub
