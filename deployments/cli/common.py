"""What every `lwdock` command shares: consoles, exit codes, one-line errors, option types, safe text.

Errors a user can cause (a bad option value, a file the dock cannot read, an unknown learnware id) print one
``error:`` line naming the user's own value and exit non-zero; ``--verbose`` adds the traceback. Catalog text is
data, never markup: everything printed from the catalog goes through :func:`show_text`.
"""

from __future__ import annotations

import enum
import json
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer

from deployments.cli.term import console, err, show_text

__all__ = ["console", "err", "EXIT", "EPILOG", "UserError", "fail", "handle_error", "show_text", "HomeOpt",
           "VerboseOpt", "JsonOpt", "StatusChoice", "ReuserChoice", "RuntimeChoice", "configure", "home_of",
           "print_json", "read_json_file", "state"]


class EXIT(enum.IntEnum):
    """Exit codes, listed in ``lwdock --help``."""

    OK = 0
    NOTHING = 1  # ran fine, nothing matched (search) or a submission was refused (INVALID)
    USAGE = 2  # bad option or argument, or a file of yours the dock cannot read
    NOT_FOUND = 3  # no such learnware (or an ambiguous id prefix)
    DOCK = 4  # the dock could not do it: catalog busy or damaged, registry, runtime, Prefect unreachable
    INTERRUPTED = 130


EPILOG = ("Exit codes: 0 ok; 1 nothing matched, or a submission was INVALID; 2 bad option, argument or input file; "
          "3 no such learnware; 4 the dock failed (catalog busy or damaged, registry, runtime, Prefect); "
          "130 interrupted. Add --verbose to see the traceback of an error.")


class state:  # noqa: N801 - process-wide CLI flags set by the root callback
    verbose = False


class UserError(Exception):
    """An error the user can fix, shown as one line."""

    def __init__(self, message: str, code: int = EXIT.USAGE) -> None:
        super().__init__(message)
        self.code = int(code)


def fail(message: str, code: int = EXIT.USAGE) -> NoReturn:
    raise UserError(message, code)


def _code_of(exc: BaseException) -> int:
    """Exit code of an error raised by the dock."""
    code = str(getattr(exc, "code", ""))
    if code in ("catalog_not_found", "not_found", "unknown_learnware", "ambiguous_id", "learnware_not_found") \
            or code.endswith("_not_found"):
        return EXIT.NOT_FOUND
    if code.startswith(("user_data", "invalid_input", "invalid_query", "invalid_parameter", "semantic", "spec_",
                        "invalid_semantic", "invalid_stat_spec", "labels_required", "unknown_reuser", "mixed_tasks")):
        return EXIT.USAGE
    return EXIT.DOCK


def handle_error(exc: BaseException) -> int:
    """Print one ``error:`` line (plus the traceback with ``--verbose``); return the exit code."""
    from lwlib.errors import LwdockError

    if isinstance(exc, UserError):
        msg, code = str(exc), exc.code
    elif isinstance(exc, LwdockError):
        msg, code = exc.message, _code_of(exc)
    elif isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        msg, code = f"cannot read {exc.filename}: {exc.strerror}", EXIT.USAGE
    else:
        msg, code = f"{type(exc).__name__}: {exc} (this is a bug in the dock; rerun with --verbose and report it)", \
            EXIT.DOCK
    if state.verbose:
        err.print("".join(traceback.format_exception(exc)), markup=False, highlight=False)
    err.print(f"[red]error:[/red] {show_text(' '.join(str(msg).split()), max_chars=2000)}")
    return code


def print_json(payload: Any) -> None:
    """Machine-readable output on stdout (one JSON document)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


def read_json_file(path: Optional[Path], what: str) -> Any:
    """Parse a JSON file the user gave; one-line error naming the file otherwise."""
    if path is None:
        return None
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror or exc}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")


class StatusChoice(str, enum.Enum):
    USABLE = "USABLE"
    NONUSABLE = "NONUSABLE"
    INVALID = "INVALID"


class ReuserChoice(str, enum.Enum):
    auto = "auto"
    top1 = "top1"
    job_selector = "job_selector"
    averaging = "averaging"
    ensemble_pruning = "ensemble_pruning"
    feature_augment = "feature_augment"


class RuntimeChoice(str, enum.Enum):
    auto = "auto"
    venv = "venv"
    inherit = "inherit"


HomeOpt = typer.Option(None, "--home", metavar="DIR", envvar="LWDOCK_HOME", show_envvar=False,
                       help="Dock home (catalog, MLflow store, runtimes); default $LWDOCK_HOME or ~/.lwdock.")
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Show logs and the traceback of an error.")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")


def home_of(home: Optional[Path]) -> Path:
    """The dock home to use (does not configure Prefect; read commands need nothing more)."""
    import os

    if home is not None:
        return Path(home).expanduser().resolve()
    return Path(os.environ.get("LWDOCK_HOME") or Path.home() / ".lwdock").expanduser().resolve()


def configure(home: Optional[Path], verbose: bool = False) -> Path:
    """Point the dock, Prefect and MLflow at one home, offline, before Prefect is imported (write commands)."""
    import os

    from lwlib.settings import configure_process

    state.verbose = state.verbose or verbose
    if not state.verbose:  # the terminal stays quiet; the Prefect UI still gets every run's logs
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    return configure_process(home, quiet=not state.verbose)
