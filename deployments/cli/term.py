"""The terminal: the two Rich consoles and the one call that makes catalog text safe to print in them.

Apart from :mod:`deployments.cli.common` (which re-exports all of it) because it must not import typer:
:mod:`deployments.cli.listing` prints through it on the path that starts without Typer.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console

__all__ = ["console", "err", "show_text"]

console = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_CTRL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def show_text(value: Any, *, max_chars: int | None = 200) -> str:
    """Catalog or user text made safe for Rich: control characters stripped, markup escaped, length bounded."""
    try:
        from lwlib.text import display_text
    except ImportError:  # pragma: no cover - lwlib.text ships with lwlib; keep the CLI safe without it
        from rich.markup import escape

        text = _CTRL.sub("", "" if value is None else str(value))
        if max_chars is not None and len(text) > max_chars:
            text = text[:max_chars - 1] + "…"
        return escape(text)
    return display_text("" if value is None else value, max_chars=max_chars)
