"""Scheduled re-check of the market: re-run `check` for every learnware (or a filtered set)."""

from __future__ import annotations

from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.results import markdown_table
from lwlib.status import Status
from tasks._common import get_dock
from tasks.recheck import recheck_one


@flow(name="recheck-market")
def recheck_market(learnware_ids: list[str] | None = None,
                   status: Literal["any", "USABLE", "NONUSABLE"] = "any",
                   home: str | None = None) -> dict[str, str]:
    """Re-check learnwares; move the `usable` alias and catalog status when one breaks or recovers."""
    dock = get_dock(home)
    with dock.catalog() as cat:
        records = cat.list(status=None if status == "any" else Status(status))
    ids = [r.id for r in records if not learnware_ids or any(r.id.startswith(p) for p in learnware_ids)]
    before = {r.id: r.status for r in records}
    outcome = {lid: recheck_one(dock, lid).status.value for lid in ids}
    rows = [[lid[:12], before[lid].value, new, "changed" if before[lid].value != new else ""]
            for lid, new in outcome.items()]
    create_markdown_artifact(key="recheck", description="Market re-check",
                             markdown="## Market re-check\n\n" + markdown_table(["id", "before", "after", ""], rows))
    return outcome
