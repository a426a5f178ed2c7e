"""Serve the dock's deployments with one command (`lwdock serve`): submit form, nightly re-check, find-and-reuse.

Needs a Prefect server (`prefect server start`) and PREFECT_API_URL pointing at it; `prefect.yaml` next to this
file describes the same deployments for a work pool + worker setup (see deployments/README.md). Both paths use
the same flow and deployment names, so use one of them per Prefect server.
"""

from __future__ import annotations

import logging

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.deploy import find_and_reuse
from flows.recheck import recheck_market
from flows.submit import submit_batch, submit_from_ui

logger = logging.getLogger(__name__)

NIGHTLY = "0 3 * * *"
NIGHTLY_TIMEZONE = "UTC"
#: Full names ("flow/deployment") as `prefect deployment run` expects them, in `build_deployments()` order.
DEPLOYMENT_NAMES = ("submit-from-ui/submit", "submit-batch/submit-batch", "recheck-market/nightly-recheck",
                    "find-and-reuse/find-and-reuse")


def build_deployments() -> list[RunnerDeployment]:
    """Build the four served deployments; kept separate from `serve_all` so tests can inspect them offline.

    The nightly re-check carries an explicit UTC timezone so the run time does not depend on the server's zone.
    """
    return [
        submit_from_ui.to_deployment(name="submit", tags=["submit"],
                                     description="Submit a learnware zip from the dock's storage (form)."),
        submit_batch.to_deployment(name="submit-batch", tags=["submit"],
                                   description="Submit many learnware zips concurrently, one subflow each."),
        recheck_market.to_deployment(name="nightly-recheck", schedule=Cron(NIGHTLY, timezone=NIGHTLY_TIMEZONE),
                                     tags=["recheck"],
                                     description="Re-check every learnware in its runtime; flip broken ones."),
        find_and_reuse.to_deployment(name="find-and-reuse", tags=["deploy"],
                                     description="Search the market for a user's data, reuse and deploy."),
    ]


def serve_all(limit: int | None = None) -> None:
    """Register the deployments and execute their runs in this process until interrupted.

    Parameters
    ----------
    limit : int, optional
        Maximum concurrent flow runs (each run is a subprocess; the default leaves it to Prefect).
    """
    deployments = build_deployments()
    logger.info("serving %d deployments: %s", len(deployments), ", ".join(DEPLOYMENT_NAMES))
    serve(*deployments, limit=limit)


if __name__ == "__main__":
    serve_all()
