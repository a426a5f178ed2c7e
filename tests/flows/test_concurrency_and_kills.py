"""Several `lwdock submit` processes on one home, and kill -9 at every submission stage, through the real CLI.

What must hold (issue 10 §6–7): the same bytes submitted concurrently give exactly one registry version and every
other call says "(dup)"; distinct zips all land once; a killed command leaves either nothing or a complete record
(and `lwdock doctor --repair` makes it so), takes its sandbox workers with it, its Prefect runs end Crashed, and a
re-run completes the submission.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.reference_zip import make_reference_zip, reference_semantic

from lwlib.dock import Dock
from lwlib.settings import Settings
from lwlib.status import Status

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LWDOCK = str(Path(sys.executable).with_name("lwdock"))
STAGES = ("validate", "containerize", "check", "specify", "register", "catalog")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "LWDOCK_INJECT"))}
    env.update(LWDOCK_HOME=str(home), PREFECT_HOME=str(home / "prefect"), LWDOCK_PREFECT_IDLE_S="2", **extra)
    return env


def _submit(home: Path, zips: list[Path], sem: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([LWDOCK, "submit", *map(str, zips), "--semantic", str(sem), "--home", str(home)],
                            env=_env(home, **extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _state(home: Path) -> tuple[dict[str, Status], dict[str, int]]:
    dock = Dock(Settings(home=home))
    rows: dict[str, Status] = {}
    if dock.settings.catalog_path.exists():
        with dock.catalog(read_only=True) as cat:
            rows = {r.id: r.status for r in cat.list()}
    versions: dict[str, int] = {}
    for v in dock.registry.list_versions():
        if v.sha256:
            versions[v.sha256] = versions.get(v.sha256, 0) + 1
    return rows, versions


def _procs_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in out if text in line and "ps -eo" not in line]


def _wait_gone(text: str, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _procs_mentioning(text)
        if not left:
            return []
        time.sleep(0.5)
    return _procs_mentioning(text)


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("conc")
    sem = root / "semantic.json"
    sem.write_text(json.dumps(reference_semantic()))
    return {"root": root, "sem": sem, "same": make_reference_zip(root / "same.zip", seed=40),
            "distinct": [make_reference_zip(root / f"d{i}.zip", seed=50 + i) for i in range(8)]}


def test_eight_parallel_submits_of_one_zip_give_one_version_and_seven_dups(zips: dict[str, Any]) -> None:
    home = zips["root"] / "same-home"  # a fresh home: the Prefect database migration races too
    procs = [_submit(home, [zips["same"]], zips["sem"]) for _ in range(8)]
    outs = [p.communicate(timeout=1500)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, "\n".join(o[-800:] for o in outs)
    assert sum("(dup)" in o for o in outs) == 7 and all("USABLE" in o for o in outs)
    rows, versions = _state(home)
    assert list(rows.values()) == [Status.USABLE] and list(versions.values()) == [1]
    assert _wait_gone(str(home / "prefect")) == []  # the shared API server went away when no command used it


def test_eight_parallel_submits_of_distinct_zips_all_land_once(zips: dict[str, Any]) -> None:
    home = zips["root"] / "distinct-home"
    procs = [_submit(home, [z], zips["sem"]) for z in zips["distinct"]]
    outs = [p.communicate(timeout=1500)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, "\n".join(o[-800:] for o in outs)
    rows, versions = _state(home)
    assert len(rows) == 8 and set(rows.values()) == {Status.USABLE} and set(versions.values()) == {1}
    assert set(rows) == set(versions)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def test_kill_9_mid_check_takes_the_sandbox_worker_with_it(zips: dict[str, Any]) -> None:
    home = zips["root"] / "kill-worker-home"
    zp = make_reference_zip(zips["root"] / "slow.zip", broken="slow_predict", seed=80)
    proc = _submit(home, [zp], zips["sem"])
    deadline, workers = time.monotonic() + 600, set()
    while time.monotonic() < deadline and not workers:  # wait until the model runs in its sandbox
        workers = {p for p in _descendants(proc.pid)
                   if "bwrap" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")} \
            if proc.poll() is None else set()
        time.sleep(0.5)
    assert workers, "the check never started a sandbox worker"
    tree = _descendants(proc.pid) - {p for p in _descendants(proc.pid) if "prefect_server" in
                                     Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in tree):
        time.sleep(0.5)
    assert not any(Path(f"/proc/{p}").exists() for p in tree), "a sandbox process outlived the killed command"
    assert _wait_gone(str(home / "prefect")) == []


def _crashed_runs(home: Path) -> list[str]:
    """States of this home's flow runs, read through a fresh CLI-style API session (which crashes stale runs)."""
    script = """
import asyncio, json, sys
from pathlib import Path
from deployments.prefect_server import prefect_api
with prefect_api(Path(sys.argv[1])):
    from prefect.client.orchestration import get_client
    async def main():
        async with get_client() as c:
            return [r.state_type.value for r in await c.read_flow_runs()]
    print(json.dumps(asyncio.run(main())))
"""
    out = subprocess.run([sys.executable, "-c", script, str(home)], env=_env(home), capture_output=True, text=True,
                         timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_kill_9_at_every_stage_leaves_nothing_or_a_complete_record(zips: dict[str, Any]) -> None:
    home = zips["root"] / "kill-home"
    killed: dict[str, str] = {}
    for i, stage in enumerate(STAGES):
        zp = make_reference_zip(zips["root"] / f"k{i}.zip", seed=70 + i)
        proc = _submit(home, [zp], zips["sem"], LWDOCK_INJECT_FAULT=f"{stage}:kill")
        out = proc.communicate(timeout=900)[0]
        assert proc.returncode == -signal.SIGKILL, f"{stage}: {out[-1500:]}"
        killed[stage] = str(zp)
    assert _wait_gone(str(home / "prefect")) == []  # and the API server once no command used it

    rows, versions = _state(home)
    assert all(versions.get(i, 0) <= 1 for i in rows) and all(n == 1 for n in versions.values())
    states = _crashed_runs(home)
    assert "RUNNING" not in states and "PENDING" not in states and states.count("CRASHED") >= len(STAGES) - 1

    doctor = subprocess.run([LWDOCK, "doctor", "--repair", "--json", "--home", str(home)], env=_env(home),
                            capture_output=True, text=True, timeout=900)
    assert doctor.returncode == 0, doctor.stdout[-2000:] + doctor.stderr[-2000:]
    check = subprocess.run([LWDOCK, "doctor", "--json", "--home", str(home)], env=_env(home), capture_output=True,
                           text=True, timeout=900)
    assert check.returncode == 0 and json.loads(check.stdout)["stale_mlflow_runs"] == [], check.stdout[-2000:]
    rows, versions = _state(home)
    assert set(rows) == set(versions)  # after repair: every learnware either complete in both stores or in neither

    rerun = _submit(home, [Path(z) for z in killed.values()], zips["sem"])
    out = rerun.communicate(timeout=1500)[0]
    assert rerun.returncode == 0, out[-2000:]
    rows, versions = _state(home)
    assert len(rows) == len(STAGES) and set(rows.values()) == {Status.USABLE} and set(versions.values()) == {1}
