"""Time, resource and size limits for one learnware worker, and the rlimits hook that applies them.

Why: a learnware is uploader code. Its worker gets rlimits (address space, CPU, processes, files, file size, no core
dumps) in a ``preexec_fn``; its sandbox gets size-bounded private tmpfs mounts; and the dock bounds what it reads back
(the answer's bytes, the stderr it keeps) so a hostile model cannot grow the dock's own memory.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RuntimeLimits", "make_preexec"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class RuntimeLimits:
    """Time and resource limits for one learnware worker.

    Parameters
    ----------
    startup_timeout : float
        Seconds allowed for interpreter start + model import + construction.
    call_timeout : float
        Seconds allowed for one predict/fit/finetune call.
    memory_mb : int or None
        Address-space limit (RLIMIT_AS) in MiB.
    cpu_seconds : int or None
        CPU time limit (RLIMIT_CPU) over the worker's life.
    max_processes : int or None
        RLIMIT_NPROC (counts every process and thread of the sandbox user; a fork-bomb brake).
    max_open_files : int or None
        RLIMIT_NOFILE.
    max_file_mb : int or None
        RLIMIT_FSIZE: largest file the model may write.
    threads : int
        Value for OMP/MKL/OpenBLAS/torch thread variables (keeps a 2-core box responsive).
    max_output_mb : int
        Largest answer (sum of array bytes in one frame) the dock reads back; a larger one is refused before any
        of it is read ("output too large") and the worker is stopped.
    tmp_mb : int
        Size of the sandbox's private ``/tmp`` and ``/dev/shm`` (tmpfs: their pages are host memory).
    stderr_lines : int
        How many of the worker's last stderr lines the dock keeps (a ring buffer).
    stderr_line_chars : int
        Longest stderr line kept; the rest of a longer line (even one with no newline at all) is dropped as read.
    """

    startup_timeout: float = 60.0
    call_timeout: float = 60.0
    memory_mb: int | None = 4096
    cpu_seconds: int | None = 600
    max_processes: int | None = 4096
    max_open_files: int | None = 1024
    max_file_mb: int | None = 1024
    threads: int = 1
    max_output_mb: int = 256
    tmp_mb: int = 256
    stderr_lines: int = 200
    stderr_line_chars: int = 1000

    @property
    def max_output_bytes(self) -> int:
        return int(self.max_output_mb * MIB)


def make_preexec(limits: RuntimeLimits) -> Callable[[], None]:
    """Return a ``preexec_fn`` that applies ``limits`` as rlimits in the child before ``exec``."""
    pairs: list[tuple[int, int, int]] = [(resource.RLIMIT_CORE, 0, 0)]
    if limits.memory_mb:
        n = int(limits.memory_mb) * MIB
        pairs.append((resource.RLIMIT_AS, n, n))
    if limits.cpu_seconds:
        pairs.append((resource.RLIMIT_CPU, int(limits.cpu_seconds), int(limits.cpu_seconds) + 5))
    if limits.max_processes:
        pairs.append((resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes))
    if limits.max_open_files:
        pairs.append((resource.RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files))
    if limits.max_file_mb:
        n = int(limits.max_file_mb) * MIB
        pairs.append((resource.RLIMIT_FSIZE, n, n))

    def preexec() -> None:  # runs in the forked child: keep it tiny, never log here
        for which, soft, hard in pairs:
            cur_soft, cur_hard = resource.getrlimit(which)
            if cur_hard != resource.RLIM_INFINITY:
                hard, soft = min(hard, cur_hard), min(soft, cur_hard)
            resource.setrlimit(which, (soft, hard))

    return preexec
