"""Scheduled re-check of the market: re-run `check` for every learnware (or a filtered set)."""

from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.results import markdown_table
from lwlib.status import Status
from tasks._common import get_dock
from tasks.recheck import recheck_one


def _recheck_run_name() -> str:
    from datetime import datetime, timezone

    return "recheck-" + datetime.now(timezone.utc).strftime("%Y-%m-%d-%H%M")


@flow(name="recheck-market", flow_run_name=_recheck_run_name)
def recheck_market(learnware_ids: list[str] | None = None,
                   status: Literal["any", "USABLE", "NONUSABLE"] = "any") -> dict[str, str]:
    """Re-check learnwares; move the `usable` alias and catalog status when one breaks or recovers."""
    dock = get_dock()  # the deployment's dock home
    if not dock.settings.catalog_path.exists():
        return {}
    with dock.catalog(read_only=True) as cat:
        records = cat.list(status=None if status == "any" else Status(status))
    chosen = [r for r in records if not learnware_ids or any(r.id.startswith(p) for p in learnware_ids)]
    outcome = {r.id: recheck_one(dock, r).status.value for r in chosen}
    rows = [[r.name, r.id[:12], r.status.value, outcome[r.id], "changed" if r.status.value != outcome[r.id] else ""]
            for r in chosen]
    create_markdown_artifact(key="recheck", description="Market re-check", markdown="## Market re-check\n\n"
                             + markdown_table(["learnware", "id", "before", "after", ""], rows))
    return outcome
