"""Typed results the flows return (pydantic: they cross into the Prefect UI and the CLI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lwlib.status import Status


class SubmissionResult(BaseModel):
    """Outcome of one submission: status with reason, and where the learnware now lives."""

    learnware_id: str | None = None
    name: str | None = None
    status: Status
    reason: str
    code: str = "ok"
    duplicate: bool = False
    registry_uri: str | None = None
    runtime_mode: str | None = None
    protections: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)

    def row(self) -> list[Any]:
        return [(self.learnware_id or "-")[:12], self.name or "-", self.status.value, self.reason[:80],
                self.registry_uri or "-", f"{sum(self.timings.values()):.1f}s"]


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A small Markdown table for Prefect artifacts."""
    line = "| " + " | ".join(headers) + " |\n|" + "---|" * len(headers) + "\n"
    return line + "".join("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |\n" for r in rows)
