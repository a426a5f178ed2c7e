"""Write commands: ``submit``, ``delete``, ``recheck``, ``reuse``. They run the dock's Prefect flows.

User files are checked before Prefect starts, so a typo costs one ``error:`` line, not a server start-up.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from deployments.cli.common import (EPILOG, EXIT, HomeOpt, ReuserChoice, RuntimeChoice, VerboseOpt, configure,
                                    console, fail, home_of, read_json_file, show_text)
from deployments.cli.reads import STATUS_STYLE, _resolve, _status

_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


@contextmanager
def flow_session(home: Path) -> Iterator[None]:
    """A Prefect API for this command (dies with it, migrated once per home) and runs tagged with our pid."""
    from deployments.prefect_server import prefect_api, process_tags

    with prefect_api(home), process_tags():
        yield


def _user_file(path: Path, what: str) -> Path:
    if not path.exists():
        fail(f"{what} {path} does not exist")
    if not path.is_file():
        fail(f"{what} {path} is not a file")
    return path.resolve()


def _reason_for(reason: str, learnware_id: Optional[str], source: str) -> str:
    """The reason as the submitter should read it: their file's name instead of the content hash."""
    text = reason or ""
    text = re.sub(r"^\s*[0-9a-f]{64}\s*[:\-]\s*", "", text)
    if learnware_id:
        text = text.replace(f"{learnware_id}.zip", source).replace(learnware_id, source)
    return _HEX64.sub(lambda m: m.group(0)[:12], text)


def submit(paths: list[Path] = typer.Argument(..., metavar="ZIP...", help="Learnware zip files."),
           semantic: Optional[Path] = typer.Option(None, "--semantic", "-s", metavar="FILE",
                                                   help="Semantic spec JSON (reference format) for every zip."),
           runtime: RuntimeChoice = typer.Option(RuntimeChoice.auto, "--runtime", case_sensitive=False,
                                                 help="How models are isolated."),
           home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Submit learnware zips through the submission flow (validate → containerize → check → specify → register →
    catalog). Exit code 1 when any zip is refused (INVALID)."""
    files = [_user_file(p, "learnware zip") for p in paths]
    spec = read_json_file(semantic, "semantic spec")
    if spec is not None and not isinstance(spec, dict):
        fail(f"semantic spec {semantic} must be a JSON object (reference format), not {type(spec).__name__}")
    h = configure(home, verbose)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from flows.submit import submit_learnware

    results = []
    with flow_session(h), Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                   MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("submitting", total=len(files))
        for p in files:
            bar.update(task, description=f"submitting {show_text(p.name)}")
            results.append(submit_learnware(zip_path=str(p), semantic_spec=spec, runtime_mode=runtime.value,
                                            source_name=p.name))
            bar.advance(task)
    _print_submissions(files, results)
    if any(r.status.value == "INVALID" for r in results):
        raise typer.Exit(EXIT.NOTHING)


def _print_submissions(files: list[Path], results: list[Any]) -> None:
    from rich.table import Table

    table = Table("file", "name", "status", "id", "registry", title="Submissions", title_justify="left")
    for p, r in zip(files, results):
        table.add_row(show_text(p.name), show_text(r.name or "-", max_chars=40),
                      _status(r.status) + (" (dup)" if r.duplicate else ""), (r.learnware_id or "-")[:12],
                      show_text(r.registry_uri or "-"))
    console.print(table)
    for p, r in zip(files, results):
        if r.status.value != "USABLE" or r.duplicate:
            style = STATUS_STYLE.get(r.status.value, "white")
            console.print(f"[{style}]{show_text(p.name)}: {r.status.value}[/] — "
                          f"{show_text(_reason_for(r.reason, r.learnware_id, p.name), max_chars=2000)}")
        missing = getattr(r, "missing_protections", None)
        if missing:
            console.print(f"[yellow]{show_text(p.name)}: the model ran without {show_text(', '.join(missing))}[/]")


def delete(learnware: str = typer.Argument(..., metavar="ID_OR_NAME", help="Id, id prefix or exact name."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
           home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Delete a learnware from the registry, the catalog, the search index and the package store."""
    h = home_of(home)
    lid = _resolve(h, learnware)
    if not yes and not typer.confirm(f"Delete learnware {lid[:12]}?"):
        raise typer.Exit(EXIT.NOTHING)
    configure(h, verbose)
    name = delete_learnware(h, lid)
    console.print(f"deleted {show_text(name)} ({lid[:12]})")


def delete_learnware(home: Path, learnware_id: str) -> str:
    """Remove one learnware everywhere (registry, catalog, search index, package store); returns its name."""
    from lwlib.dock import Dock
    from lwlib.maintenance import delete_learnware as delete_everywhere
    from lwlib.settings import Settings

    return str(delete_everywhere(Dock(Settings(home=home)), learnware_id).name)


def recheck(ids: Optional[list[str]] = typer.Argument(None, metavar="[ID_OR_NAME]...",
                                                      help="Learnwares to re-check (default: all)."),
            home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Re-run the usability check; flips the status and the `usable` alias when a learnware breaks or recovers."""
    h = home_of(home)
    full = [_resolve(h, i) for i in ids] if ids else None
    configure(h, verbose)
    from flows.recheck import recheck_market

    with flow_session(h), console.status("re-checking the market..."):
        out = recheck_market(learnware_ids=full)
    from lwlib.market import MarketSnapshot
    from rich.table import Table

    names = MarketSnapshot.open(h, sync=False).records_for(list(out))
    table = Table("name", "id", "status", title="Re-check", title_justify="left")
    for lid, status in out.items():
        rec = names.get(lid)
        table.add_row(show_text(rec.name if rec else "?"), lid[:12], _status(status))
    console.print(table)


def reuse(data: Path = typer.Option(..., "--data", "-d", metavar="FILE", help="Your unlabelled rows (.csv/.npy/.npz)."),
          semantic: Optional[Path] = typer.Option(None, "--semantic", "-s", metavar="FILE",
                                                  help="Semantic requirement JSON."),
          labels: Optional[Path] = typer.Option(None, "--labels", "-l", metavar="FILE",
                                                help="Labelled rows: .npz with X and y, or .csv with y last."),
          reuser: ReuserChoice = typer.Option(ReuserChoice.auto, "--reuser", case_sensitive=False,
                                              help="How to combine the learnwares found."),
          out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Folder for the predictions (.npy)."),
          register: Optional[str] = typer.Option(None, "--register", metavar="NAME",
                                                 help="Registered model name for the solution."),
          home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Search, reuse the best learnware(s) for your data and deploy the solution as an MLflow model."""
    data = _user_file(data, "user data")
    labels = _user_file(labels, "labelled data") if labels is not None else None
    requirement = read_json_file(semantic, "semantic requirement")
    from lwlib.userdata import load_table

    load_table(data)  # refuse bad data here, in one line, before Prefect starts
    if labels is not None:
        load_table(labels, labelled=True)
    h = configure(home, verbose)
    from flows.deploy import find_and_reuse

    with flow_session(h), console.status("searching and reusing..."):
        res = find_and_reuse(user_data=str(data), requirement=requirement,
                             labelled_data=str(labels) if labels else None, reuser=reuser.value,
                             register_name=register, out_dir=str(out.resolve()) if out else None)
    from rich.table import Table

    rows = getattr(res, "rows", None) or []
    if rows:
        table = Table("rank", "name", "id", "score", "MMD²", "weights", title="Matches", title_justify="left")
        for r in rows:
            table.add_row(str(r["rank"]), show_text(r["name"], max_chars=60), show_text(r["id"]),
                          f"{r['score']:.3f}", f"{r['mmd2']:.5f}", show_text(r.get("weights", "")))
        console.print(table)
    if res.model_uri:
        console.print(f"[green]reused[/green] {show_text(res.reuser)} over {len(res.learnware_ids)} learnware(s); "
                      f"predictions in {show_text(res.predictions_path)}\nmodel: {show_text(res.model_uri)}")
        for w in getattr(res, "warnings", []) or []:
            console.print(f"[yellow]warning:[/] {show_text(w, max_chars=500)}")
        return
    console.print(f"[yellow]{show_text(res.message or 'nothing to reuse', max_chars=None)}[/yellow]")
    raise typer.Exit(EXIT.NOTHING)


def register(app: typer.Typer) -> None:
    app.command("submit", epilog=EPILOG)(submit)
    app.command("delete", epilog=EPILOG)(delete)
    app.command("recheck", epilog=EPILOG)(recheck)
    app.command("reuse", epilog=EPILOG)(reuse)
