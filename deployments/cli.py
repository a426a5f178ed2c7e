"""`lwdock`: the dock's command line (typer + rich). Every command runs the real flows or reads the real stores."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Learnware Dock: submit learnwares (model + specification), search the market, reuse "
                       "what fits. State lives under --home (default $LWDOCK_HOME or ~/.lwdock).",
                  no_args_is_help=True, add_completion=False)
catalog_app = typer.Typer(help="Maintain the DuckDB market catalog.")
app.add_typer(catalog_app, name="catalog")
console = Console()
err = Console(stderr=True)

HomeOpt = typer.Option(None, "--home", help="Dock home (catalog, MLflow store, runtimes). Default: $LWDOCK_HOME "
                                            "or ~/.lwdock", envvar="LWDOCK_HOME")
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Show Prefect's task logs")

STATUS_STYLE = {"USABLE": "green", "NONUSABLE": "yellow", "INVALID": "red"}


def configure(home: Optional[Path], verbose: bool = False) -> Path:
    """Point the dock, Prefect and MLflow at one home, offline, before Prefect is imported."""
    from lwlib.settings import configure_process

    return configure_process(home, quiet=not verbose)


def _dock(home: Path) -> Any:
    from lwlib.dock import Dock
    from lwlib.settings import Settings

    return Dock(Settings(home=home))


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=2)


def _read_semantic(path: Optional[Path]) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        _fail(ValueError(f"cannot read semantic spec {path}: {exc}"))
    return None


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


@app.command()
def submit(paths: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="Learnware zip files"),
           semantic: Optional[Path] = typer.Option(None, "--semantic", "-s", exists=True,
                                                   help="Semantic spec JSON (reference format) for every zip"),
           runtime: str = typer.Option("auto", help="auto | venv | inherit: how models are isolated"),
           home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Submit learnware zips through the submission flow (validate → containerize → check → specify → register → catalog)."""
    configure(home, verbose)
    from flows.submit import submit_learnware

    spec = _read_semantic(semantic)
    results = []
    with _progress() as bar:
        task = bar.add_task("submitting", total=len(paths))
        for p in paths:
            bar.update(task, description=f"submitting {p.name}")
            results.append(submit_learnware(zip_path=str(p.resolve()), semantic_spec=spec, runtime_mode=runtime))
            bar.advance(task)
    table = Table("file", "id", "name", "status", "reason", "registry", title="Submissions")
    for p, r in zip(paths, results):
        table.add_row(p.name, (r.learnware_id or "-")[:12], r.name or "-",
                      f"[{STATUS_STYLE[r.status.value]}]{r.status.value}[/]" + (" (dup)" if r.duplicate else ""),
                      r.reason[:70], r.registry_uri or "-")
    console.print(table)
    if any(r.status.value == "INVALID" for r in results):
        raise typer.Exit(code=1)


@app.command("list")
def list_(status: Optional[str] = typer.Option(None, help="USABLE | NONUSABLE"), home: Optional[Path] = HomeOpt) -> None:
    """List the learnwares in the market catalog."""
    dock = _dock(configure(home))
    if not dock.settings.catalog_path.exists():
        console.print("The market is empty: submit a learnware with `lwdock submit FILE.zip`.")
        return
    with dock.catalog() as cat:
        rows = cat.list(status=status)
    table = Table("id", "name", "status", "data", "task", "dim", "registry", title=f"{len(rows)} learnwares")
    for r in rows:
        table.add_row(r.id[:12], r.name, f"[{STATUS_STYLE[r.status.value]}]{r.status.value}[/]", r.data_type or "-",
                      r.task_type or "-", str(r.spec_dim or "-"), f"{r.registry_name}@{r.registry_version}")
    console.print(table)


@app.command()
def show(learnware_id: str = typer.Argument(..., help="Id or unique id prefix"), home: Optional[Path] = HomeOpt) -> None:
    """Show one learnware: semantic spec, status, registry location and check history."""
    dock = _dock(configure(home))
    try:
        lid = dock.resolve_id(learnware_id)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        _fail(exc)
    with dock.catalog() as cat:
        rec, history = cat.get(lid), cat.history(lid)
    table = Table(show_header=False, title=rec.name)
    for k in ("id", "status", "reason", "data_type", "task_type", "library_type", "license", "description",
              "input_dim", "output_dim", "spec_type", "spec_dim", "spec_k", "runtime_key", "registry_uri"):
        table.add_row(k, str(getattr(rec, k)))
    table.add_row("scenarios", ", ".join(rec.scenarios))
    console.print(table)
    hist = Table("when", "kind", "status", "reason", "seconds", title="Check history")
    for h in history:
        hist.add_row(str(h.created_at)[:19], h.kind, h.status.value, (h.reason or "")[:60], f"{h.duration_s or 0:.1f}")
    console.print(hist)


@app.command()
def recheck(ids: Optional[list[str]] = typer.Argument(None, help="Id prefixes (default: all)"),
            home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Re-run the usability check on the market; flips status and the `usable` alias when a learnware breaks."""
    configure(home, verbose)
    from flows.recheck import recheck_market

    with console.status("re-checking the market..."):
        out = recheck_market(learnware_ids=ids or None)
    table = Table("id", "status", title="Re-check")
    for lid, status in out.items():
        table.add_row(lid[:12], f"[{STATUS_STYLE[status]}]{status}[/]")
    console.print(table)


@app.command()
def delete(learnware_id: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask"),
           home: Optional[Path] = HomeOpt) -> None:
    """Delete a learnware from the registry, the catalog and the package store."""
    dock = _dock(configure(home))
    try:
        lid = dock.resolve_id(learnware_id)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    if not yes and not typer.confirm(f"Delete learnware {lid[:12]}?"):
        raise typer.Exit(code=1)
    dock.delete(lid)
    console.print(f"deleted {lid[:12]}")


def _print_search(out: Any) -> None:
    table = Table("rank", "learnware", "score", "MMD²", title="Single matches")
    for m in out.singles:
        table.add_row(str(m["rank"] + 1), m["learnware_id"][:12], f"{m['score']:.3f}", f"{m['mmd2']:.5f}")
    console.print(table)
    mix = Table("learnwares", "weights", "score", "MMD²", title="Best mixture")
    for m in out.mixtures:
        mix.add_row(" + ".join(i[:8] for i in m["learnware_ids"]), ", ".join(f"{w:.2f}" for w in m["weights"]),
                    f"{m['score']:.3f}", f"{m['mmd2']:.5f}")
    console.print(mix)
    if not out.singles:
        console.print(f"[yellow]{out.message}[/yellow]")


@app.command()
def search(data: Path = typer.Option(..., "--data", "-d", exists=True, help="Your unlabelled data: .csv, .npy or .npz (X)"),
           semantic: Optional[Path] = typer.Option(None, "--semantic", "-s", exists=True,
                                                   help="Semantic requirement JSON (reference format; empty values = no filter)"),
           top: int = typer.Option(10, "--top", "-k", help="How many single matches to show"),
           home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Find the learnwares (and the best weighted mixture) that fit your data. Your data stay here: only its RKME is compared."""
    dock = _dock(configure(home, verbose))
    from flows.deploy import DeployResult
    from lwlib.deploy import market_entries, semantic_filter, stat_search
    from lwlib.userdata import load_table

    X, _ = load_table(data)
    query = _read_semantic(semantic)
    with console.status("searching the market..."):
        entries, _ = semantic_filter(market_entries(dock), query)
        result = stat_search(entries, X, top_k=top, query=query)
    _print_search(DeployResult.from_search(result))


@app.command()
def reuse(data: Path = typer.Option(..., "--data", "-d", exists=True, help="Your unlabelled data (.csv/.npy/.npz)"),
          semantic: Optional[Path] = typer.Option(None, "--semantic", "-s", exists=True, help="Semantic requirement JSON"),
          labels: Optional[Path] = typer.Option(None, "--labels", "-l", exists=True,
                                                help="Labelled data: .npz with X and y, or .csv with y last"),
          reuser: str = typer.Option("auto", help="auto | top1 | job_selector | averaging | ensemble_pruning | feature_augment"),
          out: Optional[Path] = typer.Option(None, "--out", help="Folder for the predictions (.npy)"),
          register: Optional[str] = typer.Option(None, "--register", help="Registered model name for the solution"),
          home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Search, reuse the best learnware(s) for your data and deploy the solution as an MLflow model."""
    configure(home, verbose)
    from flows.deploy import find_and_reuse

    with console.status("searching and reusing..."):
        res = find_and_reuse(user_data=str(data.resolve()), requirement=_read_semantic(semantic),
                             labelled_data=str(labels.resolve()) if labels else None, reuser=reuser,
                             register_name=register, out_dir=str(out.resolve()) if out else None)
    _print_search(res)
    if res.model_uri:
        console.print(f"[green]reused[/green] {res.reuser} over {len(res.learnware_ids)} learnware(s); predictions "
                      f"in {res.predictions_path}\nmodel: {res.model_uri}  (serve: PATH=.venv/bin:$PATH mlflow models serve -m "
                      f"{res.model_uri} --env-manager local)")


@app.command()
def demo(size: str = typer.Option("small", help="small (the demo) | tiny (a smoke run)"),
         scenario: list[str] = typer.Option(["image_digits"], "--scenario",
                                            help="Scenarios to run (repeatable): image_digits, tabular, text, ..."),
         home: Optional[Path] = typer.Option(None, "--home", help="Dock home for the demo (default ./.lwdock-demo)"),
         verbose: bool = VerboseOpt) -> None:
    """Build a market from real bundled data through the submission flow, run user tasks through the deploying
    flow, print the results table and write a plot."""
    h = configure(home or Path(".lwdock-demo"), verbose)
    import importlib

    try:  # the benchmark package is an optional extra of the CLI, never a static dependency of deployments/
        run_demo = importlib.import_module("benchmarks.demo").run_demo
    except ImportError as exc:
        _fail(RuntimeError(f"the demo needs the benchmark package and its data extra ({exc}); run `make demo`"))
    run_demo(home=h, size=size, console=console, scenarios=tuple(scenario))
    console.print(ui_hints(h))


@catalog_app.command("rebuild")
def catalog_rebuild(home: Optional[Path] = HomeOpt) -> None:
    """Recreate the catalog from the MLflow registry (the system of record)."""
    dock = _dock(configure(home))
    from lwlib.rebuild import rebuild_catalog

    n = rebuild_catalog(dock)
    console.print(f"catalog rebuilt with {n} learnwares from {dock.settings.mlflow_uri}")


@app.command()
def serve(home: Optional[Path] = HomeOpt) -> None:
    """Serve the deployments (submit form, nightly recheck, deploy) to a Prefect server; Ctrl-C stops."""
    configure(home, verbose=True)
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():  # else prefect.serve runs on a throw-away ephemeral API no UI can reach
        _fail(RuntimeError("PREFECT_API_URL is not set: start a server with `prefect server start --host 127.0.0.1 "
                           "--port 4200` and export PREFECT_API_URL=http://127.0.0.1:4200/api (deployments/README.md)"))
    from deployments.serve import serve_all

    serve_all()


@app.command()
def ui(home: Optional[Path] = HomeOpt) -> None:
    """Print the commands that open the Prefect and MLflow UIs on this dock's runs."""
    h = configure(home)
    console.print(ui_hints(h))


def ui_hints(home: Path) -> str:
    return (f"[bold]Prefect UI[/bold] (flow runs, task logs, artifacts):\n"
            f"  PREFECT_HOME={home / 'prefect'} .venv/bin/prefect server start --host 127.0.0.1 --port 4200\n"
            f"  then open http://127.0.0.1:4200; serve the deployments (submit form, nightly recheck) with\n"
            f"  PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/lwdock serve --home {home}\n"
            f"[bold]MLflow UI[/bold] (submission runs, registered learnwares, deployed solutions):\n"
            f"  .venv/bin/mlflow ui --backend-store-uri sqlite:///{home / 'mlflow.db'} "
            f"--default-artifact-root {home / 'mlflow-artifacts'} --host 127.0.0.1 --port 5000\n"
            f"  then open http://127.0.0.1:5000")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
