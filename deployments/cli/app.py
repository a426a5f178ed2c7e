"""The `lwdock` application: one Typer app, its command groups, and the error handling around all of them.

Commands live in modules by role: :mod:`.reads` (list, show, search — fast, no Prefect), :mod:`.writes`
(submit, delete, recheck, reuse — Prefect flows), :mod:`.ops` (serve, api, ui, demo, catalog, doctor). Each
module only imports heavy packages inside the command that needs them, so ``lwdock --help`` and the read
commands start in a fraction of a second.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

try:  # typer ≥ 0.26 vendors click; its exceptions are not click's
    from typer._click import exceptions as click
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click  # type: ignore[no-redef]

from deployments.cli import ops, reads, writes
from deployments.cli.common import EPILOG, EXIT, UserError, handle_error, state

__all__ = ["app", "main"]

app = typer.Typer(
    help="Learnware Dock: submit learnwares (model + specification), search the market, reuse what fits. "
         "State lives under --home (default $LWDOCK_HOME or ~/.lwdock).",
    epilog=EPILOG, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show logs and tracebacks for every command.")
          ) -> None:
    state.verbose = state.verbose or verbose


for module in (reads, writes, ops):
    module.register(app)


def _mount_cluster() -> None:
    """`lwdock cluster up|down` when the cluster module is present (it brings its own dependencies)."""
    try:
        from deployments.cluster import cluster_app
    except Exception:  # noqa: BLE001 - a broken optional group must not break every other command
        if state.verbose:
            raise
        return
    if not any(g.name == "cluster" for g in app.registered_groups):
        app.add_typer(cluster_app, name="cluster")


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: one ``error:`` line and a documented exit code for every failure."""
    args = list(sys.argv[1:] if argv is None else argv)
    state.verbose = state.verbose or any(a in ("-v", "--verbose") for a in args)
    if not args or args[0] in ("cluster", "--help", "-h"):  # only then: the cluster module costs ~60 ms to import
        _mount_cluster()
    try:
        rv = app(args=args, prog_name="lwdock", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx is not None else "")
        sys.exit(EXIT.OK if not args else EXIT.USAGE)
    except click.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx is not None else "lwdock"
        msg = exc.format_message().replace("Value error, ", "")
        sys.exit(handle_error(UserError(f"{msg} (see: {path} --help)", EXIT.USAGE)))
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(EXIT.INTERRUPTED)
    except click.ClickException as exc:
        sys.exit(handle_error(UserError(exc.format_message(), EXIT.USAGE)))
    except Exception as exc:  # noqa: BLE001 - every error ends as one line (traceback with --verbose)
        sys.exit(handle_error(exc))
    sys.exit(int(rv) if isinstance(rv, int) else EXIT.OK)
