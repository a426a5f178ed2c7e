"""`lwdock serve` stops on SIGTERM even when the Prefect server went away first (issue 12 §7).

Prefect's runner pauses its schedules through the API on shutdown; with the server gone that call retried for
minutes and the process hung. Real processes: a `prefect server start` (sqlite, its own home) and
`python -m deployments.serve`, each in its own session, killed by process group in a `finally`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cluster_helpers import REPO, require_selected

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.slow]


def _wait(cond, timeout: float, what: str, log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} not ready after {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def test_serve_exits_on_sigterm_after_the_server_is_gone(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    import socket

    require_selected(request.config)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "MLFLOW_TRACKING"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "LWDOCK_HOME": str(tmp_path / "home"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "LWDOCK_SERVE_STOP_GRACE": "15"})
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    server = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], env=env, cwd=REPO, stdout=server_log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    serve = None
    try:
        _wait(lambda: urllib.request.urlopen(f"{api}/health", timeout=2).status == 200, 120, "server", server_log)
        serve = subprocess.Popen([sys.executable, "-m", "deployments.serve"], env={**env, "PREFECT_API_URL": api},
                                 cwd=REPO, stdout=serve_log.open("w"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        _wait(lambda: "being served" in serve_log.read_text(), 180, "deployments.serve", serve_log)
        _killpg(server)  # the server goes first
        t0 = time.perf_counter()
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
        stop_s = time.perf_counter() - t0
    finally:
        for proc in (serve, server):
            if proc is not None and proc.poll() is None:
                _killpg(proc)
    assert code in (0, 143), serve_log.read_text()[-2000:]
    assert stop_s < 25, f"serve took {stop_s:.1f} s to stop"
    print(f"serve stopped {stop_s:.1f} s after SIGTERM with the server gone (exit {code})")
