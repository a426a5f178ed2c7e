"""Host-side client of one persistent learnware worker process.

Why: one interpreter start per learnware, not per call (the reference pays ``conda run`` + import per predict), and
every way a worker can misbehave (hang, die, babble, send junk) maps to one clear error. The worker is a session
leader so a timeout or close kills its whole process group; dead workers are reaped and ``atexit`` kills leftovers.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import select
import signal
import subprocess
import threading
import time
import weakref
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lwlib.errors import (MalformedOutputError, ModelCrashedError, ModelImportError, ModelRuntimeError,
                          ModelTimeoutError)
from lwlib.runtime import protocol

logger = logging.getLogger(__name__)

__all__ = ["Worker"]

_LIVE: "weakref.WeakSet[Worker]" = weakref.WeakSet()
STDERR_TAIL_LINES = 200


class _Timeout(Exception):
    pass


class _Closed(Exception):
    pass


def _tail(lines: Sequence[str], n: int = 15) -> str:
    return "\n".join(list(lines)[-n:])


def _describe_status(rc: int | None) -> str:
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    if rc > 128:
        try:  # bwrap reports a signalled child as 128 + signo
            return f"exit status {rc} (child likely killed by {signal.Signals(rc - 128).name})"
        except ValueError:
            pass
    return f"exit status {rc}"


class Worker:
    """One running learnware worker speaking the frame protocol on stdin/stdout.

    Parameters
    ----------
    argv : sequence of str
        Full command (sandbox prefix + interpreter + runner).
    env : mapping
        The worker's complete environment (nothing inherited from the dock).
    cwd : str
        Working directory.
    preexec : callable
        Applies rlimits in the child.
    name : str
        Label for logs and error messages (the learnware id).
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str,
                 preexec: Callable[[], None] | None, name: str) -> None:
        self.name = name
        self.argv = list(argv)
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.info: dict[str, Any] = {}
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(env), cwd=cwd, preexec_fn=preexec,
                                     start_new_session=True, close_fds=True)
        self._in_fd = self.proc.stdin.fileno()
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._in_fd, False)
        self._drain = threading.Thread(target=self._drain_stderr, name=f"lw-stderr-{name[:12]}", daemon=True)
        self._drain.start()
        _LIVE.add(self)

    # -- low level -----------------------------------------------------------------------------------------
    def _drain_stderr(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()[:1000]
            self.stderr_lines.append(line)
            logger.debug("[%s] %s", self.name[:12], line)

    def _read_exact(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            ready, _, _ = select.select([self._out_fd], [], [], left)
            if not ready:
                raise _Timeout
            chunk = os.read(self._out_fd, min(n - len(buf), 1 << 20))
            if not chunk:
                raise _Closed
            buf += chunk
        return bytes(buf)

    def _write_all(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            _, ready, _ = select.select([], [self._in_fd], [], left)
            if not ready:
                raise _Timeout
            try:
                view = view[os.write(self._in_fd, view):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise _Closed from None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- errors --------------------------------------------------------------------------------------------
    def _crashed(self, what: str) -> ModelCrashedError:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        self.kill()
        self._drain.join(timeout=2)
        status = _describe_status(rc)
        tail = _tail(self.stderr_lines)
        return ModelCrashedError(
            f"learnware {self.name} worker died during {what} ({status}). Last stderr lines:\n{tail}\n"
            "Fix the model or raise RuntimeLimits (memory_mb / cpu_seconds) if it was killed by a limit.",
            returncode=rc, status=status, stderr_tail=tail, learnware=self.name)

    def _timed_out(self, what: str, seconds: float) -> ModelTimeoutError:
        self.kill()
        return ModelTimeoutError(
            f"learnware {self.name} did not answer {what} within {seconds:g} s; its worker (pid {self.pid}) and "
            "process group were killed. Raise RuntimeLimits.startup_timeout/call_timeout if the model is just slow.",
            seconds=seconds, call=what, learnware=self.name)

    def _exchange(self, header: dict[str, Any] | None, arrays: Sequence[np.ndarray], what: str,
                  timeout: float) -> tuple[dict[str, Any], list[np.ndarray]]:
        deadline = time.monotonic() + timeout
        try:
            if header is not None:
                self._write_all(protocol.encode_message(header, list(arrays)), deadline)
            return protocol.read_message(lambda n: self._read_exact(n, deadline))
        except _Timeout:
            raise self._timed_out(what, timeout) from None
        except _Closed:
            raise self._crashed(what) from None
        except protocol.ProtocolError as exc:
            self.kill()
            raise MalformedOutputError(
                f"learnware {self.name} sent a malformed frame during {what}: {exc}. The worker was killed; a model "
                "must not write to the protocol descriptor.", learnware=self.name) from None

    # -- public --------------------------------------------------------------------------------------------
    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Wait for the runner's ``ready`` frame; raise ModelImportError if the model failed to load."""
        head, _ = self._exchange(None, (), "startup (model import)", timeout)
        if not head.get("ok"):
            self.kill()
            tb = "\n".join(str(head.get("traceback", "")).strip().splitlines()[-12:])
            raise ModelImportError(
                f"learnware {self.name}: importing or constructing the model failed: {head.get('message')}\n{tb}\n"
                "Check model.module_path / class_name / kwargs in learnware.yaml and the requirements.",
                traceback=tb, learnware=self.name)
        self.info = head
        return head

    def call(self, method: str, arrays: Sequence[np.ndarray], timeout: float) -> list[np.ndarray]:
        """Run one model method and return the result arrays, mapping every failure to an error class."""
        head, out = self._exchange({"method": method}, arrays, method, timeout)
        if head.get("ok"):
            return out
        kind, msg = head.get("kind"), head.get("message")
        tb = "\n".join(str(head.get("traceback", "")).strip().splitlines()[-12:])
        if kind == "memory":
            self.kill()
            raise ModelCrashedError(
                f"learnware {self.name} ran out of memory in {method} ({msg}); the address-space limit stopped it and "
                "the worker was stopped (the next call starts a fresh one). Raise RuntimeLimits.memory_mb or send "
                "smaller batches.",
                code="model_out_of_memory", learnware=self.name, traceback=tb)
        if kind == "output":
            raise MalformedOutputError(f"learnware {self.name}: {method} output rejected: {msg}",
                                       learnware=self.name)
        raise ModelRuntimeError(f"learnware {self.name}: {method} raised {msg}\n{tb}", learnware=self.name,
                                traceback=tb)

    def kill(self) -> None:
        """Kill the whole process group and reap the leader (idempotent)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.warning("worker %s (pid %d) did not die after SIGKILL", self.name, self.proc.pid)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        _LIVE.discard(self)

    def close(self, grace: float = 2.0) -> None:
        """Ask the runner to exit (EOF on its input), then kill the group whatever happened."""
        if self.alive:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


@atexit.register
def _kill_all_workers() -> None:
    for w in list(_LIVE):
        w.kill()
