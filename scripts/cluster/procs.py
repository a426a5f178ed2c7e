"""Process plumbing for `lwdock cluster` (deployments/cluster.py loads this file by path).

Daemons start in their own session (``setsid nohup … &`` in Python: ``start_new_session=True``, stdin closed,
output to a log), each with a pid file that also records the process start time, so a recycled pid is never
signalled. Stopping walks the whole process tree first (a Prefect process worker starts each flow run in a
session of its own, so killing the worker's group would orphan them), sends SIGTERM, waits, then SIGKILLs what
is left: a Prefect worker may ignore SIGTERM.

Also usable by hand: ``python scripts/cluster/procs.py stop PIDFILE [GRACE]``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil


class PidFile:
    """``{"pid": N, "started": <psutil create_time>}``; :meth:`alive` is the pid only if it is still that process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        started = psutil.Process(pid).create_time()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": pid, "started": started}))
        os.replace(tmp, self.path)

    def process(self) -> psutil.Process | None:
        try:
            data = json.loads(self.path.read_text())
            proc = psutil.Process(int(data["pid"]))
            if abs(proc.create_time() - float(data["started"])) > 0.5 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (OSError, ValueError, KeyError, psutil.Error):
            return None

    def alive(self) -> int | None:
        proc = self.process()
        return proc.pid if proc else None


def start_daemon(pid: PidFile, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> bool:
    """Start ``argv`` detached (own session, log file) unless its pid file names a live process; True if started."""
    if pid.alive():
        return False
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    pid.write(proc.pid)
    return True


def stop_daemon(pid: PidFile, grace: float = 10.0) -> bool:
    """SIGTERM the process and all its descendants, SIGKILL survivors after ``grace`` s; True if it was running."""
    proc = pid.process()
    if proc is None:
        pid.path.unlink(missing_ok=True)
        return False
    try:
        tree = [proc] + proc.children(recursive=True)
    except psutil.Error:
        tree = [proc]
    for p in tree:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)
    try:  # reap it if it is our own child (tests); otherwise init does
        os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        pass
    pid.path.unlink(missing_ok=True)
    return True


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and every descendant at once (a machine that dies); returns the pids killed."""
    root = psutil.Process(pid)
    tree = [root] + root.children(recursive=True)
    for p in tree:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(tree, timeout=10)
    return [p.pid for p in tree]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def ensure_mlflow_experiment(mlflow_url: str, name: str) -> bool:
    """Create experiment ``name`` on an MLflow server with the server's artifact root; False if it existed."""
    base = f"{mlflow_url.rstrip('/')}/api/2.0/mlflow/experiments"
    try:
        urllib.request.urlopen(f"{base}/get-by-name?experiment_name={urllib.parse.quote(name)}", timeout=10).close()
        return False
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
    req = urllib.request.Request(f"{base}/create", data=json.dumps({"name": name}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()
    return True


def _basic(auth: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def online_workers(api_url: str, pool: str, auth: str) -> set[str]:
    """Names of the pool's workers the Prefect server sees ONLINE (they sent a recent heartbeat)."""
    req = urllib.request.Request(f"{api_url}/work_pools/{pool}/workers/filter", data=b"{}", method="POST",
                                 headers={**_basic(auth), "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return {w["name"] for w in json.loads(resp.read()) if w.get("status") == "ONLINE"}


def refuses_anonymous(api_url: str) -> bool:
    """The API answers 401 to a request without credentials (what a stranger reaching the port sees)."""
    try:
        urllib.request.urlopen(urllib.request.Request(f"{api_url}/flows/filter", data=b"{}", method="POST",
                                                      headers={"Content-Type": "application/json"}), timeout=3)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False
    return False


def wait_for(cond: Callable[[], bool], timeout: float, what: str, pid: PidFile, log: Path) -> None:
    """Poll ``cond`` until true; fail early with the log tail when the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        if pid.alive() is None:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{what} exited during start; log {log}:\n{tail}")
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s; log {log}")


def crash_automations(zombie_after_s: int, pending_after_s: int) -> list[Any]:
    """Automations that mark a flow run CRASHED when the process running it is gone.

    A flow run sends ``prefect.flow-run.heartbeat`` every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds, the first
    one a full period after it starts Running; with none for ``zombie_after_s`` after Running or after the last
    heartbeat (and no terminal state) its process died with its worker. (A rule that starts only after a
    heartbeat misses runs killed in their first period: they stay Running forever.) A run a worker claimed
    (Pending) that never started Running within ``pending_after_s`` was lost the same way. Prefect's own recipe
    for zombie flow runs, applied at cluster start.
    """
    from datetime import timedelta

    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    terminal = ["prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed"]

    def rule(name: str, after: set[str], expect: list[str], within: int, message: str) -> Any:
        return AutomationCore(
            name=name, description=message,
            trigger=EventTrigger(after=after, expect=set(expect), match={"prefect.resource.id": "prefect.flow-run.*"},
                                 for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
                                 within=timedelta(seconds=within)),
            actions=[ChangeFlowRunState(state="CRASHED", message=message)])

    return [
        rule("lwdock-crash-zombie-runs", {"prefect.flow-run.Running", "prefect.flow-run.heartbeat"},
             ["prefect.flow-run.heartbeat", *terminal], zombie_after_s,
             f"no heartbeat for {zombie_after_s} s: the process running this flow is gone; resubmit it"),
        rule("lwdock-crash-lost-pending-runs", {"prefect.flow-run.Pending"},
             ["prefect.flow-run.Running", *terminal], pending_after_s,
             f"claimed by a worker but not started within {pending_after_s} s: the worker is gone; resubmit it"),
    ]


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "stop":
        ok = stop_daemon(PidFile(Path(sys.argv[2])), float(sys.argv[3]) if len(sys.argv) > 3 else 10.0)
        print("stopped" if ok else "not running")
    else:
        print(__doc__)
        sys.exit(2)
