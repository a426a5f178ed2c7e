"""Operator commands: ``serve``, ``api``, ``ui``, ``demo``, ``doctor`` and the ``catalog`` group."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from deployments.cli.common import (EPILOG, EXIT, HomeOpt, JsonOpt, VerboseOpt, configure, console, fail,
                                    home_of, print_json, show_text, state)

catalog_app = typer.Typer(help="Maintain the DuckDB market catalog and its search index.", no_args_is_help=True,
                          rich_markup_mode=None)
api_app = typer.Typer(help="The dock's HTTP JSON service (search, list, show, submit, delete).",
                      rich_markup_mode=None, invoke_without_command=True)


@catalog_app.command("rebuild")
def catalog_rebuild(home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Recreate the catalog from the MLflow registry (the system of record), then its search index."""
    h = configure(home, verbose)
    from lwlib.dock import Dock
    from lwlib.maintenance import rebuild_catalog
    from lwlib.market import rebuild_index
    from lwlib.settings import Settings

    dock = Dock(Settings(home=h))
    n = rebuild_catalog(dock)
    upd = rebuild_index(dock.settings)
    console.print(f"catalog rebuilt with {n} learnwares from {show_text(dock.settings.mlflow_uri)}; search index: "
                  f"{upd.live} searchable in {upd.groups} feature space(s), {upd.seconds:.1f}s")


@catalog_app.command("reindex")
def catalog_reindex(home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Rebuild only the search index from the catalog (refits every feature space's kernel)."""
    state.verbose = state.verbose or verbose
    h = home_of(home)
    if not (h / "catalog.duckdb").exists():
        fail(f"no catalog under {h}: nothing to index", EXIT.NOT_FOUND)
    from lwlib.market import rebuild_index

    upd = rebuild_index(h)
    console.print(f"search index rebuilt: {upd.live} searchable learnwares in {upd.groups} feature space(s), "
                  f"{upd.seconds:.1f}s")


def doctor(repair: bool = typer.Option(False, "--repair", help="Remove leftovers and complete interrupted writes."),
           as_json: bool = JsonOpt, home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Find leftovers across the package store, the catalog, the registry and the search index (and fix them)."""
    h = configure(home, verbose)
    from lwlib.dock import Dock
    from lwlib.maintenance import doctor as run_doctor
    from lwlib.market import sync_index
    from lwlib.settings import Settings

    report = run_doctor(Dock(Settings(home=h)), repair=repair)
    if repair:
        sync_index(h)
        from deployments.prefect_server import prefect_api

        with prefect_api(h):  # starting the API marks the runs of killed dock processes Crashed
            pass
    if as_json:
        print_json(report.to_dict())
    else:
        for kind, items in report.to_dict().items():
            if isinstance(items, list) and items:
                more = "…" if len(items) > 5 else ""
                console.print(f"{kind.replace('_', ' ')}: {len(items)}  "
                              f"({show_text(', '.join(str(i)[:12] for i in items[:5]))}{more})")
        console.print(("repaired " if repair else "found ") + f"{report.problems} problem(s)"
                      + ("" if repair or not report.problems else "; run `lwdock doctor --repair` to fix them"))
    if report.problems and not repair:
        raise typer.Exit(EXIT.NOTHING)


def serve_model(name: str = typer.Argument(..., metavar="NAME", help="Registered model name (lwdock reuse --register)."),
                port: int = typer.Option(5001, "--port", min=1, max=65535, help="TCP port to serve on."),
                host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
                alias: str = typer.Option("usable", "--alias", help="Model alias to serve."),
                home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Serve a registered learnware or solution over HTTP (MLflow's scoring endpoints: POST /invocations).

    The tracking URI is this dock's registry, so the command works as printed from any shell; a request the model
    cannot take (wrong width) gets a 400 with a one-line message.
    """
    h = configure(home, verbose)
    from lwlib.settings import Settings

    settings = Settings.from_env(h)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(tracking_uri=settings.mlflow_uri).get_model_version_by_alias(name, alias)
    except MlflowException:
        fail(f"no model '{name}' with alias '{alias}' in {settings.mlflow_uri}; `lwdock reuse --register NAME` "
             "deploys one", EXIT.NOT_FOUND)
    from deployments.serve_model import serve_model as run

    console.print(f"serving models:/{show_text(name)}@{show_text(alias)} on http://{host}:{port}/invocations "
                  "(Ctrl-C stops)")
    run(f"models:/{name}@{alias}", settings.mlflow_uri, host=host, port=port)


def serve(home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Serve the deployments (submit form, nightly recheck, deploy) to a Prefect server; Ctrl-C stops."""
    configure(home, verbose=True)
    if not os.environ.get("PREFECT_API_URL"):  # else the runner serves a throw-away ephemeral API no UI can reach
        fail("PREFECT_API_URL is not set: start a server with `prefect server start --host 127.0.0.1 --port 4200` "
             "and export PREFECT_API_URL=http://127.0.0.1:4200/api (deployments/README.md)", EXIT.DOCK)
    from deployments.serve import serve_all

    serve_all()


@api_app.callback()
def api(ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
        port: int = typer.Option(8800, "--port", min=0, max=65535, metavar="PORT",
                                 help="TCP port (0 = any free port)."),
        protect_reads: bool = typer.Option(False, "--protect-reads",
                                           help="Require the bearer token for reads too (default: reads are open)."),
        home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Serve search, list and show (open by default) and submit and delete (bearer token) over HTTP JSON.

    The token comes from $LWDOCK_API_TOKEN or the file <home>/api-token (create it with `lwdock api token`);
    without one, writes are refused. OpenAPI docs at /docs.
    """
    if ctx.invoked_subcommand is not None:
        return
    h = configure(home, verbose)
    from deployments.api import ApiConfig, serve as serve_api

    serve_api(h, host=host, port=port, config=ApiConfig.from_home(h, protect_reads=protect_reads))


@api_app.command("token")
def api_token(home: Optional[Path] = HomeOpt,
              rotate: bool = typer.Option(False, "--rotate", help="Replace an existing token.")) -> None:
    """Create the API's bearer token in <home>/api-token (mode 600) and print it."""
    from deployments.api import create_token

    path, token = create_token(home_of(home), rotate=rotate)
    console.print(f"token in {show_text(path)}:\n{token}")


def ui(home: Optional[Path] = HomeOpt) -> None:
    """Print the commands that open the Prefect and MLflow UIs on this dock's runs."""
    console.print(ui_hints(home_of(home)), markup=True)


def ui_hints(home: Path) -> str:
    return (f"[bold]Prefect UI[/bold] (flow runs, task logs, artifacts):\n"
            f"  PREFECT_HOME={home / 'prefect'} .venv/bin/prefect server start --host 127.0.0.1 --port 4200\n"
            f"  then open http://127.0.0.1:4200; serve the deployments (submit form, nightly recheck) with\n"
            f"  PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/lwdock serve --home {home}\n"
            f"[bold]MLflow UI[/bold] (submission runs, registered learnwares, deployed solutions):\n"
            f"  .venv/bin/mlflow ui --backend-store-uri sqlite:///{home / 'mlflow.db'} "
            f"--default-artifact-root {home / 'mlflow-artifacts'} --host 127.0.0.1 --port 5000\n"
            f"  then open http://127.0.0.1:5000\n"
            f"[bold]HTTP API[/bold]: .venv/bin/lwdock api --home {home}  (docs at http://127.0.0.1:8800/docs)")


def demo(size: str = typer.Option("small", "--size", help="small (the demo) or tiny (a smoke run)."),
         scenario: list[str] = typer.Option(["image_digits"], "--scenario", metavar="NAME",
                                            help="Scenario to run (repeatable): image_digits, tabular, text, ..."),
         home: Optional[Path] = typer.Option(None, "--home", metavar="DIR",
                                             help="Dock home for the demo (default ./.lwdock-demo)."),
         verbose: bool = VerboseOpt) -> None:
    """Build a market from real bundled data through the submission flow, run user tasks through the deploying
    flow, print the results table and write a plot."""
    if size not in ("small", "tiny"):
        fail(f"--size must be small or tiny, not '{size}'")
    h = configure(home or Path(".lwdock-demo"), verbose)
    import importlib

    try:  # the benchmark package is an optional extra of the CLI, never a static dependency of deployments/
        run_demo = importlib.import_module("benchmarks.demo").run_demo
    except ImportError as exc:
        fail(f"the demo needs the benchmark package and its data extra ({exc}); run `make demo`", EXIT.DOCK)
    run_demo(home=h, size=size, console=console, scenarios=tuple(scenario))
    console.print(f"This market lives in {h}. Open it with:\n  export LWDOCK_HOME={h}\n  .venv/bin/lwdock list")
    console.print(ui_hints(h))


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
    app.add_typer(api_app, name="api")
    app.command("doctor", epilog=EPILOG)(doctor)
    app.command("serve", epilog=EPILOG)(serve)
    app.command("serve-model", epilog=EPILOG)(serve_model)
    app.command("ui", epilog=EPILOG)(ui)
    app.command("demo", epilog=EPILOG)(demo)
