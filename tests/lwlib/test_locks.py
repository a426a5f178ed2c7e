"""Cross-process locks: exclusive across processes, released when the holder dies, busy after the wait."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from lwlib.locks import BusyError, LockDir, file_lock

HOLDER = """
import sys, time
from pathlib import Path
from lwlib.locks import LockDir
with LockDir(Path(sys.argv[1])).content(sys.argv[2]):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold_in_child(root: Path, lid: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), lid], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_held_by_another_process_is_busy_and_freed_by_kill_9(tmp_path: Path) -> None:
    locks, lid = LockDir(tmp_path), "a" * 64
    proc = _hold_in_child(tmp_path, lid)
    try:
        assert locks.is_held(lid)
        with pytest.raises(BusyError, match="busy"):
            with locks.content(lid, timeout_s=0.3):
                pass
    finally:
        proc.kill()
        proc.wait()
    assert not locks.is_held(lid)  # the kernel drops a dead process's flock: no stale lock after kill -9
    with locks.content(lid, timeout_s=1):
        pass


def test_waiters_get_the_lock_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "l.lock"
    proc = subprocess.Popen([sys.executable, "-c", f"""
import time
from pathlib import Path
from lwlib.locks import file_lock
with file_lock(Path({str(path)!r})):
    print("held", flush=True)
    time.sleep(0.5)
"""], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    with file_lock(path, timeout_s=10):
        waited = time.monotonic() - t0
    proc.wait()
    assert waited > 0.1  # it had to wait for the holder
