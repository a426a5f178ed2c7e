"""What a search returns: ranked single learnwares, mixtures with their weights, semantic hits, and provenance.

Results are frozen dataclasses so a result can be cached, logged and shipped to a Prefect artifact or a CLI table
without anyone mutating it on the way. ``kernel`` records which kernel (mode, γ, standardisation) produced the
scores, because an MMD² is only meaningful together with the kernel that measured it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["SingleMatch", "MixtureMatch", "SemanticMatch", "SearchResult"]


@dataclass(frozen=True)
class SingleMatch:
    """One learnware ranked by the distance of its RKME to the user's.

    Attributes
    ----------
    learnware_id : str
    score : float
        Absolute score in [0, 1] (1 = same distribution), see :mod:`lwlib.search.scores`.
    mmd2 : float
        Squared MMD under the kernel recorded in :attr:`SearchResult.kernel`.
    rank : int
        0-based position in the ranking.
    label_loss : float or None
        Observed loss on the user's labelled rows (labelled search, shortlisted learnwares only).
    combined_loss : float or None
        The labels-and-specs estimate the labelled ranking used (regression: on a log scale).
    """

    learnware_id: str
    score: float
    mmd2: float
    rank: int
    label_loss: float | None = None
    combined_loss: float | None = None


@dataclass(frozen=True)
class MixtureMatch:
    """A weighted set of learnwares whose mixed RKME matches the user's better than any single one.

    Unlike the reference, the weights are returned: a reuser (e.g. job selection) needs them.
    """

    learnware_ids: tuple[str, ...]
    weights: tuple[float, ...]
    score: float
    mmd2: float


@dataclass(frozen=True)
class SemanticMatch:
    """A learnware that passed the semantic filters, with a text score in [0, 1] and what matched."""

    learnware_id: str
    score: float
    matched_on: str  # "filter" | "name" | "description" | "fuzzy_name" | "fuzzy_description" | "id"


@dataclass(frozen=True)
class SearchResult:
    """Everything a search produced, plus how it was produced.

    Attributes
    ----------
    singles : tuple of SingleMatch, best first.
    mixtures : tuple of MixtureMatch (at most one today), best first.
    semantic : tuple of SemanticMatch, the survivors of the semantic stage.
    kernel : dict
        Kernel provenance, e.g. ``{"mode": "market", "gamma": 0.03, "standardized": True, ...}``; empty when
        no statistical search ran.
    message : str
        Human-readable explanation, always set when the result is empty.
    evidence : dict
        Which evidence decided the ranking (``decided_by``: ``"P(X)"``, ``"labels"``, ``"specifications"``,
        ``"agreement"`` or ``"combination"``), with the labels' weight; empty for plain searches.
    """

    singles: tuple[SingleMatch, ...] = ()
    mixtures: tuple[MixtureMatch, ...] = ()
    semantic: tuple[SemanticMatch, ...] = ()
    kernel: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when there is nothing to offer the user (no single, no mixture, no semantic hit)."""
        return not (self.singles or self.mixtures or self.semantic)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (lists instead of tuples)."""
        return {
            "singles": [asdict(s) for s in self.singles],
            "mixtures": [{**asdict(m), "learnware_ids": list(m.learnware_ids), "weights": list(m.weights)}
                         for m in self.mixtures],
            "semantic": [asdict(s) for s in self.semantic],
            "kernel": dict(self.kernel),
            "message": self.message,
            "evidence": dict(self.evidence),
        }

    def to_markdown(self) -> str:
        """Markdown tables (for Prefect artifacts and the CLI): singles, mixtures, and the kernel used."""
        lines: list[str] = []
        if self.message:
            lines += [f"_{self.message}_", ""]
        if self.singles and any(s.label_loss is not None for s in self.singles):
            lines += ["| rank | learnware | score | MMD² | loss on labels | combined |", "|---:|---|---:|---:|---:|---:|"]
            lines += [f"| {s.rank + 1} | `{s.learnware_id}` | {s.score:.3f} | {s.mmd2:.3g} | "
                      + ("" if s.label_loss is None else f"{s.label_loss:.4g}") + " | "
                      + ("" if s.combined_loss is None else f"{s.combined_loss:.4g}") + " |" for s in self.singles]
            lines.append("")
        elif self.singles:
            lines += ["| rank | learnware | score | MMD² |", "|---:|---|---:|---:|"]
            lines += [f"| {s.rank + 1} | `{s.learnware_id}` | {s.score:.3f} | {s.mmd2:.3g} |" for s in self.singles]
            lines.append("")
        if self.mixtures:
            lines += ["| mixture | weights | score | MMD² |", "|---|---|---:|---:|"]
            for m in self.mixtures:
                ids = ", ".join(f"`{i}`" for i in m.learnware_ids)
                ws = ", ".join(f"{w:.2f}" for w in m.weights)
                lines.append(f"| {ids} | {ws} | {m.score:.3f} | {m.mmd2:.3g} |")
            lines.append("")
        if self.semantic and not self.singles:
            lines += ["| learnware | text score | matched on |", "|---|---:|---|"]
            lines += [f"| `{s.learnware_id}` | {s.score:.2f} | {s.matched_on} |" for s in self.semantic]
            lines.append("")
        if self.evidence:
            lines.append("Evidence: " + ", ".join(f"{k}={v}" for k, v in self.evidence.items()))
        if self.kernel:
            lines.append("Kernel: " + ", ".join(f"{k}={v}" for k, v in self.kernel.items()))
        return "\n".join(lines).rstrip() + "\n"
