"""The Prefect API the CLI's flows talk to: one per dock home, shared by concurrent commands, gone when unused.

Why not Prefect's own ephemeral server: each CLI process started a private one that outlived a ``kill -9`` of the
CLI (18 of 22 kills left one behind), and parallel CLI calls on a fresh home raced on its database migration
(``duplicate column name``, then ``Application startup failed``); eight parallel submits also paid for eight
server start-ups on two cores.

Here a small supervisor process per home starts the API server (its child, killed with it by a parent-death
signal) and watches a lease file: every command using the API holds a shared ``flock`` on it, which the kernel
drops when the command exits or is killed. When no command has held a lease for ``LWDOCK_PREFECT_IDLE_S``
seconds (default 30), the supervisor stops the server and exits. Starting and stopping happen under one lock, so
the database is migrated by exactly one server start, and a command never joins a server that is shutting down.
Runs are tagged with the command's pid, so the next start (or ``lwdock doctor --repair``) marks the runs of a
killed command Crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from lwlib.locks import file_lock, is_locked, process_alive

__all__ = ["prefect_api", "process_tags", "crash_stale_runs", "PID_TAG_PREFIX", "HOST_TAG_PREFIX"]

PID_TAG_PREFIX = "lwdock-pid:"
HOST_TAG_PREFIX = "lwdock-host:"
IDLE_ENV = "LWDOCK_PREFECT_IDLE_S"
_PR_SET_PDEATHSIG = 1
STATE_FILE = "api.json"
LEASE_FILE = "api.lease"
START_LOCK = "api.start.lock"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str, timeout: float = 2.0) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ supervisor side
def _server_argv(port: int) -> list[str]:
    import prefect

    return [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
            "error", "--lifespan", "on"]


def _idle(prefect_home: Path) -> bool:
    """No command holds a lease on this home's API."""
    return not is_locked(prefect_home / LEASE_FILE)


def supervise(prefect_home: Path, port: int, idle_s: float) -> int:
    """Run the API server until no command has used it for ``idle_s`` seconds (the supervisor process body)."""
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PREFECT_UI_ENABLED": "0",
           "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with (prefect_home / "api-server.log").open("ab") as log:
        server = subprocess.Popen(_server_argv(port), env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                  preexec_fn=_die_with_parent)
    stop = False

    def _on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_term)
    idle_since: float | None = None
    while not stop and server.poll() is None:
        time.sleep(0.5)
        with file_lock(prefect_home / START_LOCK, timeout_s=600, what="the Prefect API"):
            if not _idle(prefect_home):
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since < idle_s:
                continue
            (prefect_home / STATE_FILE).unlink(missing_ok=True)  # no new command can join from here on
            break
    with contextlib.suppress(FileNotFoundError):
        state = json.loads((prefect_home / STATE_FILE).read_text())
        if state.get("supervisor") == os.getpid():
            (prefect_home / STATE_FILE).unlink(missing_ok=True)
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


# ------------------------------------------------------------------------------------------------ command side
def _running(prefect_home: Path) -> str | None:
    """The URL of this home's live API server, if one runs."""
    try:
        state = json.loads((prefect_home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    url, pid = state.get("url"), state.get("supervisor")
    if isinstance(url, str) and isinstance(pid, int) and process_alive(pid) and _healthy(url):
        return url
    return None


def _start(prefect_home: Path, timeout_s: float) -> str:
    port = _free_port()
    idle = os.environ.get(IDLE_ENV, "30")
    proc = subprocess.Popen([sys.executable, "-m", "deployments.prefect_server", "supervise", "--prefect-home",
                             str(prefect_home), "--port", str(port), "--idle", idle],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=str(Path(__file__).resolve().parents[1]))
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect API server exited while starting (log: {prefect_home}/api-server.log)")
        if _healthy(url):
            (prefect_home / STATE_FILE).write_text(json.dumps({"url": url, "supervisor": proc.pid}))
            return url
        time.sleep(0.25)
    proc.terminate()
    raise RuntimeError(f"the Prefect API server did not answer within {timeout_s:.0f} s "
                       f"(log: {prefect_home}/api-server.log)")


@contextlib.contextmanager
def prefect_api(home: Path, *, timeout_s: float = 300.0) -> Iterator[str]:
    """Use (or start) the dock home's Prefect API for the duration of the block; yields its URL.

    Does nothing (yields the configured URL) when ``PREFECT_API_URL`` already points at a server.
    """
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    prefect_home = Path(os.environ.get("PREFECT_HOME") or home / "prefect")
    prefect_home.mkdir(parents=True, exist_ok=True)
    lease = os.open(prefect_home / LEASE_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with file_lock(prefect_home / START_LOCK, timeout_s=timeout_s, what="the Prefect API"):
            url = _running(prefect_home) or _start(prefect_home, timeout_s)
            fcntl.flock(lease, fcntl.LOCK_SH)  # held until this command ends; the kernel drops it on kill -9
        os.environ["PREFECT_API_URL"] = url
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: url}):
            crash_stale_runs()
            try:
                yield url
            finally:
                _drain_logs()  # the run logs still queued go to the API before this command lets it go
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        os.close(lease)


def _drain_logs() -> None:
    try:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
    except Exception:  # noqa: BLE001 - losing a log line must not turn a finished command into an error
        pass


def process_tags() -> contextlib.AbstractContextManager[None]:
    """Tag the flow runs this process starts with its pid and host (see :func:`crash_stale_runs`)."""
    from prefect import tags

    return tags(f"{PID_TAG_PREFIX}{os.getpid()}", f"{HOST_TAG_PREFIX}{socket.gethostname()}")


def crash_stale_runs() -> list[str]:
    """Mark Crashed the RUNNING/PENDING flow runs started by a dock process on this host that no longer exists."""
    import asyncio

    return asyncio.run(_crash_stale_runs())


async def _crash_stale_runs() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    host = socket.gethostname()
    crashed: list[str] = []
    async with get_client() as client:
        active = FlowRunFilter(state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])))
        runs: list[Any] = []
        offset = 0
        while True:  # the API pages at 200
            page = await client.read_flow_runs(flow_run_filter=active, limit=200, offset=offset)
            runs += page
            offset += len(page)
            if len(page) < 200:
                break
        for run in runs:
            tags = set(run.tags or ())
            pids = [t[len(PID_TAG_PREFIX):] for t in tags if t.startswith(PID_TAG_PREFIX)]
            if not pids or f"{HOST_TAG_PREFIX}{host}" not in tags or not pids[0].isdigit():
                continue
            if not process_alive(int(pids[0])):
                await client.set_flow_run_state(run.id, Crashed(message=f"the dock process {pids[0]} that ran "
                                                                         "this flow is gone (killed)"), force=True)
                crashed.append(str(run.id))
    return crashed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The dock's shared Prefect API supervisor (started by the CLI).")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("supervise")
    s.add_argument("--prefect-home", type=Path, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--idle", type=float, default=30.0)
    args = p.parse_args(argv)
    return supervise(args.prefect_home, args.port, args.idle)


if __name__ == "__main__":
    sys.exit(main())
