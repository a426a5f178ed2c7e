"""Bounded, sanitised text from untrusted model output (error messages, stderr lines).

Why: whatever a model writes may end up in a log, an exception message, the check report, the catalog, MLflow and a
terminal. Control characters (terminal escapes, bidi overrides) are removed and every field is cut to a fixed size,
so a model can neither drive a terminal nor grow a record.
"""

from __future__ import annotations

import re

__all__ = ["exception_name", "first_line", "strip_control"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_SPACE = re.compile(r"\s+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def strip_control(text: str) -> str:
    """Remove control, zero-width and bidi-override characters (newlines and tabs become spaces)."""
    return _CONTROL.sub("", str(text).replace("\n", " ").replace("\t", " ").replace("\r", " "))


def first_line(text: object, limit: int = 200) -> str:
    """The first non-blank line of ``text``, control characters removed, whitespace collapsed, at most ``limit``
    characters (an ellipsis marks a cut)."""
    for line in str(text).splitlines():
        clean = _SPACE.sub(" ", strip_control(line)).strip()
        if clean:
            return clean if len(clean) <= limit else clean[: max(0, limit - 1)] + "…"
    return ""


def exception_name(name: object, limit: int = 80) -> str:
    """A dotted Python identifier (an exception class name) or ``"Exception"`` for anything else."""
    text = str(name)
    return text if len(text) <= limit and _IDENT.fullmatch(text) else "Exception"
