"""Serve the dock's deployments with one command (`lwdock serve`), and the flow entrypoints `prefect.yaml` uses.

Needs a Prefect server (`prefect server start`, or `lwdock cluster up`) and PREFECT_API_URL pointing at it;
`prefect.yaml` next to this file describes the same deployments for a work pool + worker setup (see
deployments/README.md). Both paths use the same flow and deployment names, so use one of them per Prefect server.

The deployment fixes the dock home: the deployed flows take no ``home`` parameter (issue 12: any UI user could
otherwise point a submission at any directory). A run uses the ``LWDOCK_HOME`` of the process that executes it:
the `lwdock serve` process, or the worker plus the deployment's job variables (``env: {LWDOCK_HOME: ...}`` in
prefect.yaml). With ``LWDOCK_DASK_ADDRESS`` set, batch submissions run their items on that Dask cluster.
"""

import logging
import os
import signal
import threading
import urllib.request
from collections.abc import Callable
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval
from prefect.task_runners import ThreadPoolTaskRunner

from flows.deploy import find_and_reuse
from flows.recheck import recheck_market
from flows.submit import submit_batch, submit_from_ui

logger = logging.getLogger(__name__)

NIGHTLY = "0 3 * * *"
NIGHTLY_TIMEZONE = "UTC"
#: How often a search node refreshes its catalog from the registry (the `catalog-refresh` deployment).
REFRESH_EVERY_S = 600
#: Scheduler address of a Dask cluster; when set, batch submissions run their items on it (prefect-dask).
DASK_ADDRESS_ENV = "LWDOCK_DASK_ADDRESS"
#: Seconds `lwdock serve` waits for a clean shutdown after SIGTERM before it exits anyway.
STOP_GRACE_ENV = "LWDOCK_SERVE_STOP_GRACE"
#: Full names ("flow/deployment") as `prefect deployment run` expects them, in `build_deployments()` order.
DEPLOYMENT_NAMES = ("submit-from-ui/submit", "submit-batch/submit-batch", "recheck-market/nightly-recheck",
                    "find-and-reuse/find-and-reuse")


def _batch_task_runner() -> Any:
    """A DaskTaskRunner on ``LWDOCK_DASK_ADDRESS`` when set (read where the flow is loaded: the worker's run)."""
    address = os.environ.get(DASK_ADDRESS_ENV, "").strip()
    if not address:
        return None
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


@task(name="submit-one", cache_policy=NONE, tags=["submit"])
def _submit_one_anywhere(zip_path: str, semantic_spec: dict[str, Any] | None, home: str, runtime_mode: str) -> Any:
    """One submission subflow, runnable on a Dask worker.

    Why the import in the body: a task is shipped to Dask by value (cloudpickle), with only the globals its code
    names, so a subflow referenced from the task's module would lose the globals its string type hints need
    (``RuntimeMode`` under ``from __future__ import annotations``) and fail parameter validation there.
    Importing it on the worker gives the real module.
    """
    from flows.submit import submit_learnware

    return submit_learnware(zip_path=zip_path, semantic_spec=semantic_spec, home=home, runtime_mode=runtime_mode)


@flow(name="submit-batch", task_runner=_batch_task_runner() or ThreadPoolTaskRunner(max_workers=2))
def submit_on_dask(zip_paths: list[str], semantic_specs: list[dict[str, Any] | None] | None = None,
                   runtime_mode: Literal["auto", "venv", "inherit"] = "auto") -> list[Any]:
    """Submit many zips, one submission subflow each, spread over the Dask cluster at ``LWDOCK_DASK_ADDRESS``.

    The dock home is this run's ``LWDOCK_HOME`` (fixed by the deployment) and is passed to every item, so a Dask
    worker started with another environment still writes to the same dock.
    """
    from flows.results import markdown_table
    from lwlib.settings import Settings

    home = str(Settings.from_env().home)
    specs = semantic_specs or [None] * len(zip_paths)
    futures = [_submit_one_anywhere.submit(z, s, home, runtime_mode) for z, s in zip(zip_paths, specs)]
    results = [f.result() for f in futures]
    create_markdown_artifact(key="submission-batch", description="Batch submission (Dask)", markdown=markdown_table(
        ["id", "name", "status", "reason", "registry", "time"], [r.row() for r in results]))
    return results


@flow(name="catalog-refresh")
def catalog_refresh() -> int:
    """Rebuild this node's DuckDB catalog from the MLflow registry (the system of record); returns the count.

    A search node runs it on a schedule (the `catalog-refresh` deployment on the `search` work queue), with its
    own ``LWDOCK_HOME`` and ``MLFLOW_TRACKING_URI`` pointing at the shared tracking server.
    """
    from lwlib.dock import Dock
    from lwlib.maintenance import rebuild_catalog

    dock = Dock.from_env()
    n = rebuild_catalog(dock)
    get_run_logger().info("catalog %s refreshed: %d learnwares from %s", dock.settings.catalog_path, n,
                          dock.settings.mlflow_uri)
    return n


#: On Dask when LWDOCK_DASK_ADDRESS is set where the run loads this module, else the dock's own batch flow.
submit_many = submit_on_dask if os.environ.get(DASK_ADDRESS_ENV, "").strip() else submit_batch


def build_deployments() -> list[RunnerDeployment]:
    """Build the four served deployments; kept separate from `serve_all` so tests can inspect them offline.

    The nightly re-check carries an explicit UTC timezone so the run time does not depend on the server's zone.
    """
    return [
        submit_from_ui.to_deployment(name="submit", tags=["submit"],
                                  description="Submit a learnware zip from the dock's storage (form)."),
        submit_many.to_deployment(name="submit-batch", tags=["submit"],
                                  description="Submit many learnware zips concurrently, one subflow each."),
        recheck_market.to_deployment(name="nightly-recheck", schedule=Cron(NIGHTLY, timezone=NIGHTLY_TIMEZONE),
                              tags=["recheck"],
                              description="Re-check every learnware in its runtime; flip broken ones."),
        find_and_reuse.to_deployment(name="find-and-reuse", tags=["deploy"],
                                 description="Search the market for a user's data, reuse and deploy."),
    ]


def refresh_deployment(every_s: int = REFRESH_EVERY_S) -> RunnerDeployment:
    """The search node's periodic catalog refresh, for `serve` on a search node (`lwdock serve --search-node`)."""
    return catalog_refresh.to_deployment(name="catalog-refresh", schedule=Interval(every_s), tags=["search"],
                                         description="Refresh this search node's catalog from the registry.")


def _api_reachable(timeout: float = 2.0) -> bool:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return False
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _sigterm_guard(runner: Any, grace_s: float) -> Callable[..., None]:
    """SIGTERM handler for the runner: shut down cleanly, but never hang (issue 12 §7).

    Prefect's runner pauses its schedules on shutdown through the API; with the server already gone that call
    retries for minutes. So: skip the pause when the API does not answer, exit after ``grace_s`` whatever is
    still pending, and exit at once on a second SIGTERM. Installed before the runner starts too, so a SIGTERM
    during start-up also ends in this path (not in the default action).
    """
    fired = threading.Event()

    def handle(*_args: Any) -> None:
        if fired.is_set():
            os._exit(143)
        fired.set()
        timer = threading.Timer(grace_s, lambda: os._exit(143))
        timer.daemon = True
        timer.start()
        if runner.pause_on_shutdown and not _api_reachable():
            logger.warning("Prefect API unreachable at shutdown: not pausing the served schedules")
            runner.pause_on_shutdown = False
        logger.info("SIGTERM received, shutting down")
        try:
            runner.stop()
        except Exception:  # noqa: BLE001 - not started yet, or its loop is already gone: exit anyway
            pass
        raise SystemExit(0)

    return handle


def serve_all(limit: int | None = None, *, search_node: bool = False) -> None:
    """Register the deployments and execute their runs in this process until interrupted (Ctrl-C or SIGTERM).

    Parameters
    ----------
    limit : int, optional
        Maximum concurrent flow runs (each run is a subprocess; the default leaves it to Prefect).
    search_node : bool
        Also serve `catalog-refresh` every ``REFRESH_EVERY_S`` seconds (a node that answers searches from its
        own catalog copy).
    """
    import asyncio

    from prefect.runner import Runner

    deployments = build_deployments() + ([refresh_deployment()] if search_node else [])
    logger.info("serving %d deployments: %s", len(deployments), ", ".join(f"{d.flow_name}/{d.name}"
                                                                            for d in deployments))
    runner = Runner(pause_on_shutdown=True, limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)
    guard = _sigterm_guard(runner, float(os.environ.get(STOP_GRACE_ENV, "20")))
    runner.handle_sigterm = guard  # type: ignore[method-assign]  # what runner.start() installs
    signal.signal(signal.SIGTERM, guard)  # until then
    print("Your deployments are being served: " + ", ".join(f"{d.flow_name}/{d.name}" for d in deployments),
          flush=True)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        logger.info("interrupted, shutting down")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


if __name__ == "__main__":
    import sys

    signal.signal(signal.SIGINT, signal.default_int_handler)
    serve_all(search_node="--search-node" in sys.argv[1:])
