"""Serve the dock's deployments with one command (`lwdock serve`): submit form, nightly re-check, find-and-reuse.

Needs a Prefect server (`prefect server start`) and PREFECT_API_URL pointing at it; `prefect.yaml` next to this
file describes the same deployments for a work pool + worker setup.
"""

from __future__ import annotations

from prefect import serve

from flows.deploy import find_and_reuse
from flows.recheck import recheck_market
from flows.submit import submit_batch, submit_from_ui

NIGHTLY = "0 3 * * *"


def build_deployments() -> list:
    return [
        submit_from_ui.to_deployment(name="submit", tags=["submit"],
                                     description="Submit a learnware zip from the dock's storage (form)."),
        submit_batch.to_deployment(name="submit-batch", tags=["submit"]),
        recheck_market.to_deployment(name="nightly-recheck", cron=NIGHTLY, tags=["recheck"],
                                     description="Re-check every learnware in its runtime; flip broken ones."),
        find_and_reuse.to_deployment(name="find-and-reuse", tags=["deploy"],
                                     description="Search the market for a user's data, reuse and deploy."),
    ]


def serve_all() -> None:
    serve(*build_deployments())


if __name__ == "__main__":
    serve_all()
