"""`lwdock`: the dock's command line (typer + rich). Read commands read the stores directly; writes run the flows.

The console script ``lwdock = "deployments.cli:main"`` points here. ``lwdock list`` in its plain spellings runs
without importing Typer (:func:`deployments.cli.listing.fast_main`); everything else, and ``list`` whenever the fast
path declines, goes through the Typer app, imported on first use.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

__all__ = ["app", "main"]


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: one ``error:`` line and a documented exit code for every failure."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["list"]:
        from deployments.cli.listing import fast_main

        code = fast_main(args[1:])
        if code is not None:
            sys.exit(code)
    from deployments.cli.app import main as app_main

    app_main(args)


def __getattr__(name: str) -> Any:
    if name == "app":  # the Typer app costs ~0.2 s to import: only for those who ask for it
        from deployments.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
