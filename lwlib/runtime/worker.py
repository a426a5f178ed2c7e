"""Host-side client of one persistent learnware worker process.

Why: one interpreter start per learnware, not per call (the reference pays ``conda run`` + import per predict), and
every way a worker can misbehave (hang, die, babble, send junk, answer gigabytes) maps to one clear error. The worker
is a session leader so a timeout or close kills its whole process group (and, under bubblewrap, its PID namespace);
dead workers are reaped and ``atexit`` kills leftovers.

Memory on the dock side is bounded whatever the model does: an answer larger than ``RuntimeLimits.max_output_mb`` is
refused from its header before a byte of it is read, an accepted answer is read into one buffer and decoded in place,
and stderr is kept as a ring buffer of the last lines, each cut to a fixed length as it is read, so a gigabyte line
without a newline costs nothing.
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lwlib.errors import MalformedOutputError, ModelCrashedError, ModelImportError, ModelRuntimeError, ModelTimeoutError
from lwlib.runtime import protocol
from lwlib.runtime.limits import RuntimeLimits
from lwlib.runtime.text import exception_name, first_line, strip_control

logger = logging.getLogger(__name__)

__all__ = ["StderrTail", "Worker"]

_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()
CHUNK = 1 << 16


class _Timeout(Exception):
    pass


class _Closed(Exception):
    pass


class StderrTail:
    """The last ``max_lines`` lines of a stream, each at most ``max_chars``; memory stays bounded for any input.

    A line longer than ``max_chars`` keeps its head and drops the rest as it arrives (``dropped_bytes`` counts it).
    """

    def __init__(self, max_lines: int = 200, max_chars: int = 1000) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=max(1, max_lines))
        self.max_bytes = max(1, max_chars) * 4  # UTF-8: up to 4 bytes a character
        self.max_chars = max(1, max_chars)
        self.dropped_bytes = 0
        self.total_bytes = 0
        self._partial = bytearray()
        self._lock = threading.Lock()

    def _finish(self, raw: bytes | bytearray) -> None:
        line = strip_control(bytes(raw).decode("utf-8", "replace")).rstrip()[: self.max_chars]
        with self._lock:
            self.lines.append(line)

    def feed(self, chunk: bytes) -> None:
        """Split ``chunk`` into lines; keep at most ``max_bytes`` of the unfinished line."""
        self.total_bytes += len(chunk)
        *complete, rest = chunk.split(b"\n")
        for part in complete:
            self._take(part)
            self._finish(self._partial)
            self._partial.clear()
        self._take(rest)

    def _take(self, part: bytes) -> None:
        room = self.max_bytes - len(self._partial)
        self._partial += part[:max(0, room)]
        self.dropped_bytes += max(0, len(part) - max(0, room))

    def close(self) -> None:
        if self._partial:
            self._finish(self._partial)
            self._partial.clear()

    def tail(self, n: int = 15) -> list[str]:
        with self._lock:
            return list(self.lines)[-n:]


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
    limits : RuntimeLimits, optional
        Output byte limit and stderr ring-buffer size.
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str,
                 preexec: Callable[[], None] | None, name: str, limits: RuntimeLimits | None = None) -> None:
        limits = limits or RuntimeLimits()
        self.name = name
        self.argv = list(argv)
        self.max_output_bytes = limits.max_output_bytes
        self.stderr = StderrTail(limits.stderr_lines, limits.stderr_line_chars)
        self.info: dict[str, Any] = {}
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(env), cwd=cwd, preexec_fn=preexec,
                                     start_new_session=True, close_fds=True, bufsize=0)
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self._in_fd = self.proc.stdin.fileno()
        self._out_fd = self.proc.stdout.fileno()
        self._err = self.proc.stderr
        os.set_blocking(self._in_fd, False)
        self._drain = threading.Thread(target=self._drain_stderr, name=f"lw-stderr-{name[:12]}", daemon=True)
        self._drain.start()
        _LIVE.add(self)

    @property
    def stderr_lines(self) -> list[str]:
        """The kept stderr lines (oldest first)."""
        return self.stderr.tail(len(self.stderr.lines))

    # -- low level -----------------------------------------------------------------------------------------
    def _drain_stderr(self) -> None:
        fd = self._err.fileno()
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except OSError:
                break
            if not chunk:
                break
            self.stderr.feed(chunk)
        self.stderr.close()

    def _read_exact(self, n: int, deadline: float) -> bytearray:
        buf = bytearray(n)  # one allocation of the announced size, already checked against the limit
        view = memoryview(buf)
        got = 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            ready, _, _ = select.select([self._out_fd], [], [], left)
            if not ready:
                raise _Timeout
            k = os.readv(self._out_fd, [view[got:]])
            if not k:
                raise _Closed
            got += k
        return buf

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
            except OSError:
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
        tail = "\n".join(self.stderr.tail(15))
        return ModelCrashedError(
            f"model worker died during {what} ({status}); learnware {self.name[:12]}. Last stderr lines:\n{tail}\n"
            "Fix the model or raise RuntimeLimits (memory_mb / cpu_seconds) if it was killed by a limit.",
            returncode=rc, status=status, stderr_tail=tail, learnware=self.name, call=what)

    def _timed_out(self, what: str, seconds: float) -> ModelTimeoutError:
        self.kill()
        return ModelTimeoutError(
            f"model did not answer {what} within {seconds:g} s; its worker (pid {self.pid}) and process group were "
            f"killed (learnware {self.name[:12]}). Raise RuntimeLimits.startup_timeout/call_timeout if the model "
            "is just slow.", seconds=seconds, call=what, learnware=self.name)

    def _exchange(self, header: dict[str, Any] | None, arrays: Sequence[np.ndarray], what: str,
                  timeout: float) -> tuple[dict[str, Any], list[np.ndarray]]:
        deadline = time.monotonic() + timeout
        try:
            if header is not None:
                self._write_all(protocol.encode_message(header, list(arrays)), deadline)
            return protocol.read_message(lambda n: self._read_exact(n, deadline), max_bytes=self.max_output_bytes)
        except _Timeout:
            raise self._timed_out(what, timeout) from None
        except _Closed:
            raise self._crashed(what) from None
        except protocol.PayloadTooLarge as exc:
            self.kill()
            raise MalformedOutputError(
                f"output too large: the model answered {what} with {exc.size} bytes, the limit is {exc.limit} "
                f"(RuntimeLimits.max_output_mb); the worker was stopped (learnware {self.name[:12]}).",
                code="model_output_too_large", size=exc.size, limit=exc.limit, call=what,
                learnware=self.name) from None
        except protocol.ProtocolError as exc:
            self.kill()
            raise MalformedOutputError(
                f"malformed frame during {what}: {first_line(exc, 200)}. The worker was killed; a model must not "
                f"write to the protocol descriptor (learnware {self.name[:12]}).", code="model_protocol_violation",
                call=what, learnware=self.name) from None

    @staticmethod
    def _model_error(head: dict[str, Any]) -> tuple[str, str, str]:
        """Exception type, first message line (both bounded and sanitised) and a bounded traceback tail."""
        etype = exception_name(head.get("type") or str(head.get("message", "")).split(":", 1)[0])
        message = str(head.get("message", ""))
        if message.startswith(etype + ":"):
            message = message[len(etype) + 1:]
        tb = "\n".join(first_line(ln, 300) for ln in str(head.get("traceback", "")).strip().splitlines()[-12:])
        return etype, first_line(message, 200), tb

    @staticmethod
    def _module(head: dict[str, Any]) -> str:
        name = exception_name(head.get("module") or "")
        return "" if name == "Exception" else name

    # -- public --------------------------------------------------------------------------------------------
    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Wait for the runner's ``ready`` frame; raise ModelImportError if the model failed to load."""
        head, _ = self._exchange(None, (), "startup (model import)", timeout)
        if not head.get("ok"):
            self.kill()
            etype, line, tb = self._model_error(head)
            raise ModelImportError(
                f"importing or constructing the model failed: {etype}: {line}\n{tb}\nCheck model.module_path / "
                "class_name / kwargs in learnware.yaml and the requirements.", traceback=tb, learnware=self.name,
                error_type=etype, error_line=line, error_module=self._module(head),
                call="startup")
        self.info = head
        return head

    def call(self, method: str, arrays: Sequence[np.ndarray], timeout: float) -> list[np.ndarray]:
        """Run one model method and return the result arrays, mapping every failure to an error class."""
        head, out = self._exchange({"method": method}, arrays, method, timeout)
        if head.get("ok"):
            return out
        kind = head.get("kind")
        etype, line, tb = self._model_error(head)
        facts = {"learnware": self.name, "traceback": tb, "error_type": etype, "error_line": line, "call": method}
        if kind == "memory":
            self.kill()
            raise ModelCrashedError(
                f"model ran out of memory in {method} ({etype}); the address-space limit stopped it and the worker "
                "was stopped (the next call starts a fresh one). Raise RuntimeLimits.memory_mb or send smaller "
                "batches.", code="model_out_of_memory", **facts)
        if kind == "output":
            raise MalformedOutputError(f"{method} output rejected: {line}", **facts)
        raise ModelRuntimeError(f"{method} raised {etype}: {line}\n{tb}", **facts)

    def kill(self) -> None:
        """Kill the whole process group and reap the leader (idempotent)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.warning("worker %s (pid %d) did not die after SIGKILL", self.name[:12], self.proc.pid)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        _LIVE.discard(self)

    def close(self, grace: float = 2.0) -> None:
        """Ask the runner to exit (EOF on its input), then kill the group whatever happened."""
        if self.alive:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self._drain.join(timeout=2)
        if not self._drain.is_alive():  # never close an fd a blocked reader could see reused
            try:
                self._err.close()
            except OSError:
                pass


@atexit.register
def _kill_all_workers() -> None:
    for w in list(_LIVE):
        w.kill()
