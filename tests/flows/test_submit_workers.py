"""How many submissions a batch flow runs at once: ``LWDOCK_SUBMIT_WORKERS``, read when ``flows.submit`` loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _flow_workers(env_value: str | None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "LWDOCK_SUBMIT_WORKERS"}
    if env_value is not None:
        env["LWDOCK_SUBMIT_WORKERS"] = env_value
    code = "from flows.submit import submit_batch; print(submit_batch.task_runner._max_workers)"  # Prefect keeps it private
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_the_batch_flow_runs_as_many_submissions_at_once_as_configured():
    assert _flow_workers(None).stdout.strip() == "2"
    assert _flow_workers("5").stdout.strip() == "5"


def test_a_bad_worker_count_is_refused_naming_the_variable():
    out = _flow_workers("many")
    assert out.returncode != 0 and "LWDOCK_SUBMIT_WORKERS='many'" in out.stderr
