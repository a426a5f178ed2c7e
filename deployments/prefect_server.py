"""The Prefect API for one CLI process: started by us, migrated once under a lock, killed with its parent.

Why not Prefect's own ephemeral server: it is a child process that outlives a ``kill -9`` of the CLI (18 of 22 kills
left one behind), and parallel CLI calls on a fresh home race on its database migration (``duplicate column
name``, then ``Application startup failed``). Here the server is started with a parent-death signal, the first start
on a home runs the migration while holding a file lock, and runs of this process are tagged with its pid so a
later start (or ``lwdock doctor``) can mark the runs of a killed process Crashed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from lwlib.locks import file_lock

__all__ = ["prefect_api", "process_tags", "PID_TAG_PREFIX", "HOST_TAG_PREFIX"]

PID_TAG_PREFIX = "lwdock-pid:"
HOST_TAG_PREFIX = "lwdock-host:"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgrp()  # the terminal's Ctrl-C reaches the CLI, which stops the server itself


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect API server exited with code {proc.returncode} while starting")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the Prefect API server did not answer within {timeout_s:.0f} s")


def _start(prefect_home: Path, timeout_s: float) -> tuple[subprocess.Popen[bytes], str]:
    import prefect

    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PREFECT_UI_ENABLED": "0",
           "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = (prefect_home / "api-server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
         "error", "--lifespan", "on"],
        env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    log.close()
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(url, proc, timeout_s)
    except BaseException:
        _stop(proc)
        raise
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def prefect_api(home: Path, *, timeout_s: float = 120.0) -> Iterator[str]:
    """Run a Prefect API for this process on the dock home's Prefect database; yields its URL.

    Does nothing (yields the configured URL) when ``PREFECT_API_URL`` already points at a server.
    """
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    prefect_home = Path(os.environ.get("PREFECT_HOME") or home / "prefect")
    prefect_home.mkdir(parents=True, exist_ok=True)
    import prefect

    marker = prefect_home / f".migrated-{prefect.__version__}"
    if marker.exists():
        proc, url = _start(prefect_home, timeout_s)
    else:  # the first start on this home migrates the database: one process at a time
        with file_lock(prefect_home / ".migrate.lock", timeout_s=timeout_s * 2, what="the Prefect database"):
            proc, url = _start(prefect_home, timeout_s)
            marker.touch()
    os.environ["PREFECT_API_URL"] = url
    try:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: url}):
            crash_stale_runs()
            yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        _stop(proc)


def process_tags() -> contextlib.AbstractContextManager[None]:
    """Tag the flow runs this process starts with its pid and host (see :func:`crash_stale_runs`)."""
    from prefect import tags

    return tags(f"{PID_TAG_PREFIX}{os.getpid()}", f"{HOST_TAG_PREFIX}{socket.gethostname()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        runs, offset = [], 0
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
            if not _alive(int(pids[0])):
                await client.set_flow_run_state(run.id, Crashed(message=f"the dock process {pids[0]} that ran "
                                                                         "this flow is gone (killed)"), force=True)
                crashed.append(str(run.id))
    return crashed
