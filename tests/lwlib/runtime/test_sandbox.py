"""Sandbox plans and rlimits, checked on real child processes."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lwlib.runtime.sandbox import RuntimeLimits, bwrap_available, make_preexec, wrap_command

PROBE = ("import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0], "
         "resource.getrlimit(resource.RLIMIT_CPU)[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0], "
         "resource.getrlimit(resource.RLIMIT_FSIZE)[0], resource.getrlimit(resource.RLIMIT_CORE)[0])")


def test_preexec_applies_rlimits() -> None:
    limits = RuntimeLimits(memory_mb=1024, cpu_seconds=30, max_open_files=256, max_file_mb=8)
    out = subprocess.run([sys.executable, "-c", PROBE], preexec_fn=make_preexec(limits), capture_output=True,
                         text=True, check=True).stdout.split()
    assert [int(v) for v in out] == [1024 * 2**20, 30, 256, 8 * 2**20, 0]


def test_file_size_limit_stops_big_writes(tmp_path: Path) -> None:
    code = f"open({str(tmp_path / 'big')!r}, 'wb').write(b'x' * (3 * 2**20))"
    res = subprocess.run([sys.executable, "-c", code], preexec_fn=make_preexec(RuntimeLimits(max_file_mb=1)),
                         capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert (tmp_path / "big").stat().st_size <= 2**20


def test_no_backend_means_rlimits_only() -> None:
    plan = wrap_command(["python", "x.py"], backend="none")
    assert plan.argv == ["python", "x.py"] and plan.backend == "none"
    assert "rlimits" in plan.protections and "no-network" not in plan.protections


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap not available")
def test_bwrap_plan_isolates_tmp_network_and_host(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    host_file = Path("/tmp") / f"lwdock-sbx-{tmp_path.name}"
    code = ("import socket, pathlib\n"
            f"pathlib.Path({str(work / 'ok.txt')!r}).write_text('ok')\n"
            f"pathlib.Path({str(host_file)!r}).write_text('hidden')\n"
            "try:\n    pathlib.Path('/usr/lwdock-sbx').write_text('x'); print('host-writable')\n"
            "except OSError: print('host-ro')\n"
            "print(sorted(n for _, n in socket.if_nameindex()))\n")
    plan = wrap_command([sys.executable, "-I", "-c", code], writable=[work], readable=[Path(sys.prefix)],
                        chdir=work)
    assert {"bwrap", "no-network", "private-tmp", "read-only-host"} <= set(plan.protections)
    res = subprocess.run(plan.argv, capture_output=True, text=True, check=True, start_new_session=True)
    assert "host-ro" in res.stdout
    assert "eth0" not in res.stdout  # only an (unconfigured) loopback in the private net namespace
    assert (work / "ok.txt").read_text() == "ok"
    assert not host_file.exists()


def test_current_limits_unchanged_in_parent() -> None:
    before = resource.getrlimit(resource.RLIMIT_AS)
    make_preexec(RuntimeLimits(memory_mb=64))  # building the hook must not touch the dock's own limits
    assert resource.getrlimit(resource.RLIMIT_AS) == before
