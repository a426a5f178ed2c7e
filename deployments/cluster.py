"""`lwdock cluster up|down|status`: the production topology on one machine, started and stopped by one command.

PostgreSQL (scripts/cluster/postgres.sh) holds the Prefect and MLflow databases; a Prefect server with API
authentication; an MLflow tracking server that serves artifacts over HTTP (workers need no shared disk for
them); the `lwdock-process` work pool with N process workers; the deployments from deployments/prefect.yaml
(`prefect deploy`); the `lwdock-catalog-writes` global concurrency limit (1 slot) that serializes catalog writes
across workers; automations that mark flow runs crashed when their process died; optionally a Dask scheduler
and workers for batch submissions. Everything lives under ``$LWDOCK_HOME/cluster/`` (state, logs, pid files,
secrets 0600) and is stopped by pid, SIGKILL after a grace period, so `down` leaves no process behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

REPO = Path(__file__).resolve().parents[1]


def _load_procs() -> Any:
    """scripts/cluster/procs.py: the process plumbing, kept beside the shell helpers (not an installed package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lwdock_cluster_procs", REPO / "scripts" / "cluster" / "procs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


procs = _load_procs()
PidFile, free_port, http_ok, port_open = procs.PidFile, procs.free_port, procs.http_ok, procs.port_open
start_daemon, stop_daemon, wait_for = procs.start_daemon, procs.stop_daemon, procs.wait_for
BIN = Path(sys.executable).parent
PG_SCRIPT = REPO / "scripts" / "cluster" / "postgres.sh"
POOL = "lwdock-process"
CATALOG_LIMIT = "lwdock-catalog-writes"
DEPLOYMENTS = ("submit", "submit-batch", "nightly-recheck", "find-and-reuse", "catalog-refresh")
DEFAULT_PORTS = {"postgres": 55432, "prefect": 4200, "mlflow": 5000, "dask": 8786}
QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
         "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
#: Flow runs send a heartbeat this often; the crash automation fires after ZOMBIE_AFTER_S without one.
HEARTBEAT_S, ZOMBIE_AFTER_S, PENDING_AFTER_S = 30, 90, 120

cluster_app = typer.Typer(help="Start, stop and inspect the dock's one-machine cluster (PostgreSQL, Prefect "
                               "server with auth, MLflow server, work pool + workers, optional Dask).",
                          no_args_is_help=True, add_completion=False)
HomeOpt = typer.Option(None, "--home", envvar="LWDOCK_HOME", help="Dock home; cluster state in HOME/cluster")


class Cluster:
    """Paths, ports and secrets of one cluster, persisted in ``HOME/cluster/cluster.json`` (ports stay stable)."""

    def __init__(self, home: Path | None) -> None:
        self.home = Path(home or os.environ.get("LWDOCK_HOME") or Path.home() / ".lwdock").expanduser().resolve()
        self.state = self.home / "cluster"
        self.logs = self.state / "logs"
        self.config_path, self.secrets_path, self.env_path = (self.state / "cluster.json",
                                                              self.state / "secrets.json", self.state / "cluster.env")
        self.config: dict[str, Any] = (json.loads(self.config_path.read_text())
                                       if self.config_path.is_file() else {})

    # -- configuration --------------------------------------------------------------------------------------
    def configure(self, *, host: str, ports: dict[str, int | None], workers: int, worker_limit: int,
                  dask_workers: int, search_node: bool) -> None:
        for d in (self.state, self.logs, self.state / "pids"):
            d.mkdir(parents=True, exist_ok=True)
        old = self.config.get("ports", {})
        chosen: dict[str, int] = {}
        for name, default in DEFAULT_PORTS.items():
            wanted = ports.get(name) or old.get(name)
            if wanted is None:
                wanted = default if not port_open("127.0.0.1", default) else free_port()
            chosen[name] = int(wanted)
        self.config = {"host": host, "ports": chosen, "workers": workers, "worker_limit": worker_limit,
                       "dask_workers": dask_workers,
                       "search_node": search_node, "pg_root": self.config.get("pg_root") or str(self._pg_root())}
        self.config_path.write_text(json.dumps(self.config, indent=2))
        if not self.secrets_path.exists():
            fd = os.open(self.secrets_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"pg_password": secrets.token_hex(16),
                           "prefect_auth": f"lwdock:{secrets.token_urlsafe(24)}"}, fh)

    def _pg_root(self) -> Path:
        """``HOME/cluster/pg`` when the postgres user can reach it, else a folder under its own home (root only)."""
        here = self.state / "pg"
        if os.geteuid() != 0:
            return here
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(self.state)],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return here
        import hashlib

        return Path("/var/lib/postgresql/lwdock-cluster") / hashlib.sha256(str(self.state).encode()).hexdigest()[:12]

    @property
    def secrets(self) -> dict[str, str]:
        return dict(json.loads(self.secrets_path.read_text()))

    def port(self, name: str) -> int:
        return int(self.config["ports"][name])

    @property
    def host(self) -> str:
        return str(self.config.get("host", "127.0.0.1"))

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port('prefect')}/api"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.port('mlflow')}"

    @property
    def dask_address(self) -> str:
        return f"tcp://{self.host}:{self.port('dask')}" if self.config.get("dask_workers") else ""

    def pg_url(self, driver: str, db: str) -> str:
        return f"{driver}://lwdock:{self.secrets['pg_password']}@127.0.0.1:{self.port('postgres')}/{db}"

    def pid(self, name: str) -> PidFile:
        return PidFile(self.state / "pids" / f"{name}.pid")

    def client_env(self) -> dict[str, str]:
        """What a worker, a flow run, a Dask worker and a user's shell need to talk to this cluster."""
        env = {"PREFECT_API_URL": self.api_url, "PREFECT_API_AUTH_STRING": self.secrets["prefect_auth"],
               "LWDOCK_TRACKING_URI": self.mlflow_url, "MLFLOW_TRACKING_URI": self.mlflow_url,
               "LWDOCK_HOME": str(self.home), "LWDOCK_CATALOG_LIMIT": CATALOG_LIMIT,
               "LWDOCK_DASK_ADDRESS": self.dask_address}
        return env

    def process_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        env.update(QUIET)
        env.update(self.client_env())
        env.update({"PREFECT_HOME": str(self.state / "prefect-client"), "LWDOCK_REPO": str(REPO),
                    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S), "PREFECT_LOGGING_LEVEL": "INFO",
                    "PREFECT_WORKER_QUERY_SECONDS": "5",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
        env.update(extra)
        return env

    def write_env_file(self) -> None:
        lines = [f"export {k}={v}" for k, v in self.client_env().items() if v]
        tmp = self.env_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# source me: the dock's cluster (lwdock cluster up)\n" + "\n".join(lines) + "\n")
        os.replace(tmp, self.env_path)

    # -- components -----------------------------------------------------------------------------------------
    def postgres(self, action: str) -> None:
        root, port = self.config["pg_root"], str(self.port("postgres"))
        env = {**os.environ, "LWDOCK_PG_PASSWORD": self.secrets["pg_password"]}
        steps = ["init", "start", "createdbs"] if action == "start" else [action]
        for step in steps:
            res = subprocess.run(["bash", str(PG_SCRIPT), step, root, port], env=env, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise ClusterError(f"postgres {step} failed (exit {res.returncode}): {res.stderr.strip()[-800:]}")

    def postgres_running(self) -> bool:
        return subprocess.run(["bash", str(PG_SCRIPT), "status", self.config["pg_root"]],
                              capture_output=True).returncode == 0

    def daemons(self) -> list[tuple[str, list[str], dict[str, str], Callable[[], bool]]]:
        """(name, argv, env, ready-check) of every long-running process, in start order."""
        host, secret = self.host, self.secrets
        server_env = self.process_env(
            PREFECT_HOME=str(self.state / "prefect-server"),
            PREFECT_API_DATABASE_CONNECTION_URL=self.pg_url("postgresql+asyncpg", "prefect"),
            PREFECT_SERVER_API_AUTH_STRING=secret["prefect_auth"], PREFECT_SERVER_API_HOST=host,
            PREFECT_SERVER_API_PORT=str(self.port("prefect")), PREFECT_UI_API_URL=self.api_url)
        for k in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING"):
            server_env.pop(k)
        mlflow_env = self.process_env(MLFLOW_BACKEND_STORE_URI=self.pg_url("postgresql", "mlflow"),
                                      MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        out: list[tuple[str, list[str], dict[str, str], Callable[[], bool]]] = [
            ("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", host, "--port",
                                str(self.port("prefect"))], server_env,
             lambda: http_ok(f"{self.api_url}/health")),
            ("mlflow-server", [str(BIN / "mlflow"), "server", "--serve-artifacts", "--artifacts-destination",
                               str(self.state / "mlflow-artifacts"), "--host", host, "--port",
                               str(self.port("mlflow")), "--workers", "1"], mlflow_env,
             lambda: http_ok(f"{self.mlflow_url}/health")),
        ]
        if self.config.get("dask_workers"):
            out.append(("dask-scheduler", [str(BIN / "dask"), "scheduler", "--host", host, "--port",
                                           str(self.port("dask")), "--no-dashboard"], self.process_env(),
                        lambda: port_open(host, self.port("dask"))))
            out.append(("dask-workers", [str(BIN / "dask"), "worker", self.dask_address, "--nworkers",
                                         str(self.config["dask_workers"]), "--nthreads", "1", "--no-dashboard",
                                         "--local-directory", str(self.state / "dask")], self.process_env(),
                        lambda: True))
        return out

    def workers(self) -> list[tuple[str, list[str], dict[str, str]]]:
        out = []
        for i in range(1, int(self.config.get("workers", 2)) + 1):
            name = f"lwdock-worker-{i}"
            out.append((name, [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--work-queue", "default",
                               "--name", name, "--type", "process", "--limit",
                               str(self.config.get("worker_limit", 2))], self.process_env()))
        if self.config.get("search_node"):
            search_home = self.state / "search-node"
            out.append(("lwdock-search-1", [str(BIN / "prefect"), "worker", "start", "--pool", POOL,
                                            "--work-queue", "search", "--name", "lwdock-search-1", "--type",
                                            "process"], self.process_env(LWDOCK_HOME=str(search_home))))
        return out

    def all_names(self) -> list[str]:
        """Stop order: workers first (they hold runs), then Dask, then the servers; plus any other pid file
        (a worker from an earlier `up` with more workers)."""
        names = [n for n, *_ in self.workers()] + [n for n, *_ in reversed(self.daemons())]
        extra = sorted(p.stem for p in (self.state / "pids").glob("*.pid") if p.stem not in names)
        return extra + names


class ClusterError(RuntimeError):
    """A component did not start; the message says which and where its log is."""


@contextmanager
def prefect_client(api_url: str, auth: str | None) -> Iterator[Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        temporary_settings,
    )

    with temporary_settings({PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: auth}):
        with get_client(sync_client=True) as client:
            yield client


def setup_prefect(api_url: str, auth: str | None) -> None:
    """Work pool, catalog-write limit and crash-detection automations; idempotent."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with prefect_client(api_url, auth) as client:
        try:
            client.read_work_pool(POOL)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process",
                                                   base_job_template=ProcessWorker.get_default_base_job_template()))
        client.upsert_global_concurrency_limit_by_name(CATALOG_LIMIT, 1)
        for automation in procs.crash_automations(ZOMBIE_AFTER_S, PENDING_AFTER_S):
            for old in client.read_automations_by_name(automation.name):  # replaced, so a changed rule applies
                client.delete_automation(old.id)
            client.create_automation(automation)


def setup_mlflow(mlflow_url: str, experiment: str = "learnware-dock") -> None:
    """Create the dock's experiment on the server with the server's default artifact root (``mlflow-artifacts:``).

    Why: a client that creates it passes an explicit local ``artifact_location`` (file://...) and its runs then
    write artifacts to that path on whichever machine runs them, bypassing the server's artifact proxy.
    """
    try:
        procs.ensure_mlflow_experiment(mlflow_url, experiment)
    except (OSError, ValueError) as exc:
        raise ClusterError(f"MLflow server {mlflow_url}: cannot create experiment {experiment} ({exc})") from exc


def deploy(env: dict[str, str], log: Path, search_node: bool) -> None:
    """`prefect deploy` of deployments/prefect.yaml (the operator's own command) with the given client env."""
    argv = [str(BIN / "prefect"), "--no-prompt", "deploy", "--prefect-file", str(REPO / "deployments" / "prefect.yaml")]
    for name in DEPLOYMENTS:
        argv += ["--name", name]
    res = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise ClusterError(f"prefect deploy failed (exit {res.returncode}); see {log}")
    if search_node:
        with prefect_client(env["PREFECT_API_URL"], env.get("PREFECT_API_AUTH_STRING")) as client:
            dep = client.read_deployment_by_name("catalog-refresh/catalog-refresh")
            for sched in dep.schedules:
                client.update_deployment_schedule(dep.id, sched.id, active=True)


def workers_online(c: Cluster, names: list[str]) -> bool:
    online = procs.online_workers(c.api_url, POOL, c.secrets["prefect_auth"])
    return set(names) <= online


def up(c: Cluster, started: list[str], echo: Callable[[str], None]) -> dict[str, float]:
    """Start whatever is not running yet; returns seconds per step. ``started`` collects what this call began."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if not c.postgres_running():
        started.append("postgres")
    c.postgres("start")
    timings["postgres"] = time.perf_counter() - t0
    daemons = c.daemons()
    for name, argv, env, _ in daemons:  # start all, then wait: the servers boot in parallel
        if start_daemon(c.pid(name), argv, env, c.logs / f"{name}.log", cwd=REPO):
            started.append(name)
    for name, _, _, ready in daemons:
        try:
            wait_for(ready, 180, name, c.pid(name), c.logs / f"{name}.log")
        except RuntimeError as exc:
            raise ClusterError(str(exc)) from exc
        timings[name] = time.perf_counter() - t0
        echo(f"  {name} ready ({timings[name]:.1f} s)")
    t = time.perf_counter()
    setup_prefect(c.api_url, c.secrets["prefect_auth"])
    setup_mlflow(c.mlflow_url)
    deploy(c.process_env(), c.logs / "deploy.log", bool(c.config.get("search_node")))
    timings["pool+limit+deploy"] = time.perf_counter() - t
    workers = c.workers()
    for name, argv, env in workers:
        if start_daemon(c.pid(name), argv, env, c.logs / f"{name}.log", cwd=REPO):
            started.append(name)
    names = [n for n, *_ in workers]
    try:
        wait_for(lambda: workers_online(c, names), 180, "workers", c.pid(names[0]), c.logs / f"{names[0]}.log")
    except RuntimeError as exc:
        raise ClusterError(str(exc)) from exc
    timings["total"] = time.perf_counter() - t0
    c.write_env_file()
    return timings


def down(c: Cluster, names: list[str] | None = None, grace: float = 10.0) -> list[str]:
    """Stop the named components (default: all) by pid; returns what was still running and got stopped."""
    stopped = []
    for name in names if names is not None else c.all_names():
        if stop_daemon(c.pid(name), grace):
            stopped.append(name)
    if (names is None or "postgres" in names) and c.config and c.postgres_running():
        c.postgres("stop")
        stopped.append("postgres")
    return stopped


def status(c: Cluster) -> list[tuple[str, str, str]]:
    rows = [("postgres", "running" if c.config and c.postgres_running() else "stopped",
             f"127.0.0.1:{c.port('postgres')}" if c.config else "")]
    for name in [d[0] for d in c.daemons()] + [w[0] for w in c.workers()]:
        pid = c.pid(name).alive()
        rows.append((name, f"running (pid {pid})" if pid else "stopped", ""))
    if c.config:
        auth = ("(auth on)" if _auth_enforced(c) else "(auth OFF)") if rows[1][1].startswith("running") else ""
        rows[1] = (rows[1][0], rows[1][1], f"{c.api_url} {auth}".strip())
        rows[2] = (rows[2][0], rows[2][1], c.mlflow_url)
    return rows


def _auth_enforced(c: Cluster) -> bool:
    return bool(procs.refuses_anonymous(c.api_url))


# ------------------------------------------------------------------------------------------------- commands
@cluster_app.command("up")
def up_cmd(home: Path | None = HomeOpt,
           workers: int = typer.Option(2, min=1, help="Process workers on the lwdock-process pool"),
           worker_limit: int = typer.Option(2, min=1, help="Flow runs one worker executes at a time"),
           dask_workers: int = typer.Option(0, min=0, help="Dask worker processes (0: no Dask cluster)"),
           search_node: bool = typer.Option(False, "--search-node/--no-search-node",
                                            help="Also run a search-node worker (queue `search`, own home) that "
                                                 "refreshes its catalog from the registry every 10 min"),
           host: str = typer.Option("127.0.0.1", help="Address the servers bind to"),
           prefect_port: int | None = typer.Option(None), mlflow_port: int | None = typer.Option(None),
           postgres_port: int | None = typer.Option(None), dask_port: int | None = typer.Option(None)) -> None:
    """Start PostgreSQL, the Prefect server (auth on), the MLflow server, the work pool and its workers."""
    c = Cluster(home)
    c.configure(host=host, ports={"prefect": prefect_port, "mlflow": mlflow_port, "postgres": postgres_port,
                                  "dask": dask_port}, workers=workers, worker_limit=worker_limit,
                dask_workers=dask_workers,
                search_node=search_node)
    started: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        timings = up(c, started, typer.echo)
    except (KeyboardInterrupt, ClusterError) as exc:
        typer.echo(f"error: cluster up stopped ({exc or 'interrupted'}); stopping what this call started: "
                   f"{', '.join(started) or 'nothing'}", err=True)
        _quiet_down(c, started)
        raise typer.Exit(1 if isinstance(exc, ClusterError) else 143) from None
    typer.echo(f"cluster up in {timings['total']:.1f} s; env file {c.env_path} (0600):")
    for line in c.env_path.read_text().splitlines()[1:]:
        typer.echo("  " + (line.split("=", 1)[0] + "=<secret>" if "AUTH_STRING" in line else line))
    typer.echo(f"  source {c.env_path}   # then: lwdock submit / prefect deployment run 'submit-from-ui/submit'")
    typer.echo(f"Prefect UI {c.api_url[:-4]} (user:password in {c.secrets_path}), MLflow UI {c.mlflow_url}")


def _quiet_down(c: Cluster, names: list[str]) -> None:
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        down(c, [n for n in c.all_names() if n in names] + (["postgres"] if "postgres" in names else []))
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@cluster_app.command("setup")
def setup_cmd(search_node: bool = typer.Option(False, "--search-node/--no-search-node",
                                               help="Turn on the catalog-refresh schedule (search nodes exist)"),
              log: Path = typer.Option(Path("deploy.log"), help="Where `prefect deploy` writes its output")) -> None:
    """Prepare servers someone else runs (compose, Kubernetes): pool, limit, automations, experiment, deployments.

    Reads PREFECT_API_URL, PREFECT_API_AUTH_STRING, LWDOCK_TRACKING_URI (or MLFLOW_TRACKING_URI) and LWDOCK_REPO
    from the environment.
    """
    api = os.environ.get("PREFECT_API_URL")
    mlflow_url = os.environ.get("LWDOCK_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if not api or not mlflow_url or not mlflow_url.startswith(("http://", "https://")):
        typer.echo("error: set PREFECT_API_URL and LWDOCK_TRACKING_URI (http://...) to the servers to prepare",
                   err=True)
        raise typer.Exit(2)
    try:
        setup_prefect(api, os.environ.get("PREFECT_API_AUTH_STRING"))
        setup_mlflow(mlflow_url)
        deploy({**os.environ, "LWDOCK_REPO": os.environ.get("LWDOCK_REPO", str(REPO))}, log, search_node)
    except ClusterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"prepared {api}: pool {POOL}, limit {CATALOG_LIMIT}, crash automations, deployments; {mlflow_url}")


@cluster_app.command("down")
def down_cmd(home: Path | None = HomeOpt,
             grace: float = typer.Option(10.0, help="Seconds between SIGTERM and SIGKILL per process"),
             purge: bool = typer.Option(False, "--purge", help="Also delete the cluster's state: databases, "
                                                                "artifacts, logs, secrets (the dock home stays)")) -> None:
    """Stop workers, Dask, the servers and PostgreSQL by pid; leaves no process behind. SIGTERM waits for it."""
    c = Cluster(home)
    if not c.config:
        typer.echo(f"no cluster under {c.state}")
        return
    old = {s: signal.signal(s, lambda *_: typer.echo("stopping; please wait", err=True))
           for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        stopped = down(c, grace=grace)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    if purge:
        import shutil

        shutil.rmtree(c.config["pg_root"], ignore_errors=True)  # may live outside the state dir (root)
        shutil.rmtree(c.state, ignore_errors=True)
        typer.echo(f"purged {c.state} and {c.config['pg_root']}")


@cluster_app.command("status")
def status_cmd(home: Path | None = HomeOpt) -> None:
    """Show each component, its pid and address; exit 0 when all run, 3 otherwise."""
    c = Cluster(home)
    if not c.config:
        typer.echo(f"no cluster under {c.state}")
        raise typer.Exit(3)
    rows = status(c)
    for name, state, where in rows:
        typer.echo(f"{name:16} {state:22} {where}")
    if c.env_path.exists():
        typer.echo(f"env file: {c.env_path}")
    raise typer.Exit(0 if all(s.startswith("running") for _, s, _ in rows) else 3)


if __name__ == "__main__":
    cluster_app()
