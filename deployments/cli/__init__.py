"""`lwdock`: the dock's command line (typer + rich). Read commands read the stores directly; writes run the flows.

The console script ``lwdock = "deployments.cli:main"`` points here.
"""

from deployments.cli.app import app, main

__all__ = ["app", "main"]
