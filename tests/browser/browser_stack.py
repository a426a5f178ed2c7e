"""The real dock stack the browser tests drive (helpers; the fixtures are in conftest.py).

The stack is what a user runs: `prefect server start`, `python -m deployments.serve`, `lwdock api` and `mlflow ui`,
each a subprocess in its own session on a free port with temp homes, torn down by process group whatever happens.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TOKEN = "browser-test-token"
QUIET_ENV = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
             "HF_HUB_OFFLINE": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=10)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Stack:
    """The running dock: URLs, homes, and the services (for logs in failure messages)."""

    base: Path
    home: Path
    prefect_api: str
    prefect_ui: str
    api: str
    mlflow_ui: str
    services: dict[str, Service] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path = REPO) -> Service:
        log = self.base / f"{name}.log"
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.services[name] = svc = Service(name, proc, log)
        return svc

    def wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        svc = self.services[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if svc.proc.poll() is not None:
                pytest.fail(f"{name} exited with {svc.proc.returncode}:\n{svc.tail()}")
            if ready():
                return
            time.sleep(0.5)
        pytest.fail(f"{name} not ready after {timeout:.0f} s:\n{svc.tail()}")

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.tail()}" for n, s in self.services.items())


def base_env(home: Path, prefect_home: Path) -> dict[str, str]:
    env = {**os.environ, **QUIET_ENV, "PREFECT_HOME": str(prefect_home), "LWDOCK_HOME": str(home)}
    for key in ("PREFECT_API_URL", "PREFECT_UI_URL", "PREFECT_UI_API_URL", "LWDOCK_API_TOKEN", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    return env
