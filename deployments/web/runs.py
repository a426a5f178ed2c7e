"""The Prefect side of an upload: is the submit deployment served, where its run is in the UI, how it ended.

Why check before storing: a deployment that is registered but that no `lwdock serve` polls accepts a run that
then waits forever in Scheduled. Prefect marks such a deployment NOT_READY (about a minute after the last poll),
so the page can say "not served" in one line, and store nothing, instead of handing out a link to a run that
never starts.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from uuid import UUID

from deployments.api import ApiError

__all__ = ["ui_url", "run_url", "check_served", "run_outcome", "START_HINT"]

#: How to get the submission deployment served, for the page's one-line message.
START_HINT = ("start a Prefect server (`prefect server start`), then `lwdock serve` with PREFECT_API_URL pointing "
              "at it, and restart `lwdock api` with the same PREFECT_API_URL")
_TIMEOUT_S = 10.0


def ui_url() -> str | None:
    """The Prefect UI: ``$PREFECT_UI_URL``, else ``$PREFECT_API_URL`` without its ``/api`` suffix."""
    explicit = os.environ.get("PREFECT_UI_URL", "").strip()
    if explicit:
        return explicit.rstrip("/")
    api = os.environ.get("PREFECT_API_URL", "").strip().rstrip("/")
    if not api:
        return None
    return api[:-4] if api.endswith("/api") else api


def run_url(flow_run_id: str) -> str | None:
    """Link to a flow run's page in the Prefect UI."""
    base = ui_url()
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


async def check_served(deployment: str) -> None:
    """Raise a 503 :class:`ApiError` unless ``deployment`` exists and a runner polls it (status READY).

    Raises
    ------
    ApiError
        ``prefect_not_configured``, ``prefect_unreachable``, ``deployment_not_served``.
    """
    api = os.environ.get("PREFECT_API_URL", "").strip()
    if not api:
        raise ApiError(503, "prefect_not_configured", f"no Prefect server is configured for submissions: {START_HINT}")
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        async with get_client() as client:
            dep = await asyncio.wait_for(client.read_deployment_by_name(deployment), _TIMEOUT_S)
    except ObjectNotFound as exc:
        raise ApiError(503, "deployment_not_served", f"the deployment {deployment} is not registered on {api}: "
                       f"{START_HINT}") from exc
    except Exception as exc:  # noqa: BLE001 - httpx/prefect connection errors vary by version
        raise ApiError(503, "prefect_unreachable", f"the Prefect server at {api} does not answer "
                       f"({type(exc).__name__}): {START_HINT}") from exc
    status = getattr(dep.status, "value", dep.status)
    if status is not None and str(status).upper() != "READY":
        raise ApiError(503, "deployment_not_served", f"the deployment {deployment} is registered on {api} but no "
                       f"`lwdock serve` is running for it: {START_HINT}")


async def run_outcome(flow_run_id: str) -> dict[str, Any]:
    """The run's state and, once it has one, the submission result (the "submission" artifact's headline).

    Raises
    ------
    ApiError
        404 ``run_not_found`` for an unknown or malformed id, 503 when Prefect does not answer.
    """
    try:
        rid = UUID(flow_run_id)
    except ValueError as exc:
        raise ApiError(404, "run_not_found", "no such flow run id") from exc
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.exceptions import ObjectNotFound

    try:
        async with get_client() as client:
            run = await asyncio.wait_for(client.read_flow_run(rid), _TIMEOUT_S)
            arts = await asyncio.wait_for(client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[rid]), key=ArtifactFilterKey(any_=["submission"]))),
                _TIMEOUT_S)
    except ObjectNotFound as exc:
        raise ApiError(404, "run_not_found", f"no flow run {flow_run_id} on this Prefect server") from exc
    except Exception as exc:  # noqa: BLE001
        raise ApiError(503, "prefect_unreachable", f"the Prefect server does not answer ({type(exc).__name__})") \
            from exc
    state = run.state
    result = reason = None
    if arts and (arts[0].description or "").startswith("Submission "):
        result = (arts[0].description or "").removeprefix("Submission ").strip()
        parts = str(arts[0].data or "").split("\n\n")  # heading, reason, tables (flows/submit.py _publish)
        reason = parts[1].strip()[:300] if len(parts) > 1 else None
    return {"flow_run_id": flow_run_id, "flow_run_name": run.name, "state": state.name if state else None,
            "final": bool(state and state.is_final()), "result": result, "reason": reason,
            "run_url": run_url(flow_run_id)}
