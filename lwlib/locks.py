"""Cross-process locks on the dock home (``fcntl.flock``): per learnware content id, and named ones.

Why: eight ``lwdock submit`` processes with the same zip all found "not yet in the market" and all registered it.
Holding a lock on the content id from the duplicate check to the catalog write, and re-checking after acquiring it,
gives exactly one registry version. ``flock`` locks die with their process, so a kill -9 never leaves a stale lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Iterator

from lwlib.errors import LwdockError

__all__ = ["BusyError", "LockDir", "file_lock", "is_locked", "process_alive"]


class BusyError(LwdockError):
    """Another process holds the lock past the wait; retrying later is the fix."""

    default_code = "busy"


@contextmanager
def file_lock(path: Path, *, timeout_s: float = 600.0, poll_s: float = 0.05, what: str = "") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); raise :class:`BusyError` after ``timeout_s``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise BusyError(f"{what or path.name} is busy in another process; retry in a moment",
                                    code="busy", lock=str(path)) from None
                time.sleep(poll_s)
                poll_s = min(poll_s * 1.5, 1.0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def is_locked(path: Path) -> bool:
    """Whether some live process holds any ``flock`` (shared or exclusive) on ``path``."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (for runs and leases left by a killed process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LockDir:
    """Named locks under one folder (``<home>/locks``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def content(self, learnware_id: str, *, timeout_s: float = 1800.0) -> AbstractContextManager[None]:
        """The lock of one learnware content id (held from the duplicate check to the catalog write)."""
        return file_lock(self.root / f"lw-{learnware_id}.lock", timeout_s=timeout_s,
                         what=f"learnware {learnware_id[:12]}")

    def named(self, name: str, *, timeout_s: float = 600.0) -> AbstractContextManager[None]:
        return file_lock(self.root / f"{name}.lock", timeout_s=timeout_s, what=name)

    def is_held(self, learnware_id: str) -> bool:
        """Whether some live process holds this content id's lock (an in-flight submission: not an orphan)."""
        return is_locked(self.root / f"lw-{learnware_id}.lock")
