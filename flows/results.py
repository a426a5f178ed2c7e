"""Typed results the flows return (pydantic: they cross into the Prefect UI and the CLI)."""

from typing import Any, Mapping

from pydantic import BaseModel, Field

from lwlib.errors import LwdockError
from lwlib.text import escape_markdown
from lwlib.status import Status
from lwlib.submission import Submission


class SubmissionResult(BaseModel):
    """Outcome of one submission: status with the reason (cause first), and where the learnware now lives."""

    source: str = ""
    learnware_id: str | None = None
    name: str | None = None
    status: Status
    reason: str
    code: str = "ok"
    duplicate: bool = False
    registry_uri: str | None = None
    runtime_mode: str | None = None
    protections: list[str] = Field(default_factory=list)
    missing_protections: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def invalid(cls, source: str, exc: LwdockError, *, learnware_id: str | None = None,
                timings: Mapping[str, float] | None = None) -> "SubmissionResult":
        """Refused at validation: nothing of it is stored."""
        return cls(source=source, learnware_id=learnware_id, status=Status.INVALID, reason=exc.message,
                   code=exc.code, timings=dict(timings or {}))

    @classmethod
    def duplicate_of(cls, source: str, record: Any, timings: Mapping[str, float]) -> "SubmissionResult":
        """The same bytes are already in the market: nothing new is written."""
        return cls(source=source, learnware_id=record.id, name=record.name, status=record.status, duplicate=True,
                   reason=f"already in the market ({record.reason or record.status.value})",
                   registry_uri=record.registry_uri, timings=dict(timings))

    @classmethod
    def accepted(cls, sub: Submission) -> "SubmissionResult":
        """Recorded in the registry and the catalog, USABLE or NONUSABLE with the reason."""
        check = sub.check
        assert check is not None and sub.reference is not None
        return cls(source=sub.source_name, learnware_id=sub.id, name=sub.semantic.name, status=check.status,
                   reason=check.reason, code=check.code, registry_uri=sub.reference.uri,
                   runtime_mode=sub.runtime.mode if sub.runtime is not None else None,
                   protections=list(check.protections),
                   missing_protections=list(getattr(check, "missing_protections", ()) or ()),
                   timings=dict(sub.timings))

    def row(self) -> list[Any]:
        return [self.source or "-", self.name or "-", self.status.value + (" (dup)" if self.duplicate else ""),
                self.reason[:200], self.registry_uri or "-", (self.learnware_id or "-")[:12],
                f"{sum(self.timings.values()):.1f}s"]


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A small Markdown table for Prefect artifacts (cells escaped: names are data, never markup)."""
    line = "| " + " | ".join(headers) + " |\n|" + "---|" * len(headers) + "\n"
    return line + "".join("| " + " | ".join(escape_markdown(c, max_chars=300) for c in r) + " |\n" for r in rows)
