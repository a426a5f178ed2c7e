"""Process protections for learnware workers: rlimits, bubblewrap namespaces, fallbacks.

Why: the reference runs uploader code with the dock's user, filesystem and network, with no limits at all. Here a
worker gets rlimits (address space, CPU, processes, files, file size, no core dumps) in a ``preexec_fn`` and, when
available, a bubblewrap sandbox: no network, own PID namespace, read-only view of the host, private ``/tmp``, and only
its private copy of the learnware writable. Without ``bwrap`` it falls back to ``unshare --net`` and then to rlimits
only, and says so in the log and in the returned protections list.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

logger = logging.getLogger(__name__)

__all__ = ["RuntimeLimits", "SandboxPlan", "make_preexec", "bwrap_available", "unshare_available", "wrap_command"]

Backend = Literal["auto", "bwrap", "unshare", "none"]


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
        RLIMIT_NPROC (counts threads of the user; a fork-bomb brake, not an exact quota).
    max_open_files : int or None
        RLIMIT_NOFILE.
    max_file_mb : int or None
        RLIMIT_FSIZE: largest file the model may write.
    threads : int
        Value for OMP/MKL/OpenBLAS/torch thread variables (keeps a 2-core box responsive).
    """

    startup_timeout: float = 60.0
    call_timeout: float = 60.0
    memory_mb: int | None = 4096
    cpu_seconds: int | None = 600
    max_processes: int | None = 4096
    max_open_files: int | None = 1024
    max_file_mb: int | None = 1024
    threads: int = 1


@dataclass(frozen=True)
class SandboxPlan:
    """The command to run and the protections it gives."""

    argv: list[str]
    protections: tuple[str, ...]
    backend: str


def make_preexec(limits: RuntimeLimits) -> Callable[[], None]:
    """Return a ``preexec_fn`` that applies ``limits`` as rlimits in the child before ``exec``."""
    pairs: list[tuple[int, int, int]] = [(resource.RLIMIT_CORE, 0, 0)]
    if limits.memory_mb:
        n = int(limits.memory_mb) * 1024 * 1024
        pairs.append((resource.RLIMIT_AS, n, n))
    if limits.cpu_seconds:
        pairs.append((resource.RLIMIT_CPU, int(limits.cpu_seconds), int(limits.cpu_seconds) + 5))
    if limits.max_processes:
        pairs.append((resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes))
    if limits.max_open_files:
        pairs.append((resource.RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files))
    if limits.max_file_mb:
        n = int(limits.max_file_mb) * 1024 * 1024
        pairs.append((resource.RLIMIT_FSIZE, n, n))

    def preexec() -> None:  # runs in the forked child: keep it tiny, never log here
        for which, soft, hard in pairs:
            cur_soft, cur_hard = resource.getrlimit(which)
            if cur_hard != resource.RLIM_INFINITY:
                hard, soft = min(hard, cur_hard), min(soft, cur_hard)
            resource.setrlimit(which, (soft, hard))

    return preexec


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=15, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=None)
def bwrap_available() -> str | None:
    """Path of a working ``bwrap`` (probed once with the namespaces we use), else ``None``."""
    exe = shutil.which("bwrap")
    if exe and _probe([exe, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent",
                       "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc", "true"]):
        return exe
    return None


@functools.lru_cache(maxsize=None)
def _unshare_argv() -> tuple[str, ...] | None:
    exe = shutil.which("unshare")
    if not exe:
        return None
    argv = (exe, "--net") if os.geteuid() == 0 else (exe, "--net", "--map-root-user")
    return argv if _probe([*argv, "true"]) else None


def unshare_available() -> bool:
    """Whether ``unshare --net`` works here (network-only fallback)."""
    return _unshare_argv() is not None


def _bwrap_argv(exe: str, *, writable: Sequence[Path], readable: Sequence[Path], hide: Sequence[Path],
                chdir: Path | None) -> list[str]:
    argv = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    if os.geteuid() == 0:
        argv += ["--cap-drop", "ALL"]
    for p in hide:
        if Path(p).is_dir():
            argv += ["--tmpfs", str(p)]
    argv += ["--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    for p in readable:  # re-expose what a tmpfs above may have covered (envs or runner under /tmp in tests)
        argv += ["--ro-bind", str(p), str(p)]
    for p in writable:
        argv += ["--bind", str(p), str(p)]
    if chdir is not None:
        argv += ["--chdir", str(chdir)]
    return argv


def wrap_command(argv: Sequence[str], *, writable: Sequence[Path] = (), readable: Sequence[Path] = (),
                 hide: Sequence[Path] = (), chdir: Path | None = None, backend: Backend = "auto") -> SandboxPlan:
    """Wrap ``argv`` in the strongest sandbox available (or the one asked for).

    Parameters
    ----------
    argv : sequence of str
        The worker command.
    writable : sequence of Path
        Directories bound read-write (the learnware's private copy).
    readable : sequence of Path
        Directories re-bound read-only after the private tmpfs mounts (interpreter, env, runner).
    hide : sequence of Path
        Host directories replaced by an empty tmpfs (e.g. the dock home with catalog and other learnwares).
    chdir : Path, optional
        Working directory inside the sandbox.
    backend : {"auto", "bwrap", "unshare", "none"}
        ``auto`` picks bwrap, then unshare, then rlimits only.

    Returns
    -------
    SandboxPlan
    """
    base = ["rlimits", "process-group", "minimal-env"]
    exe = bwrap_available() if backend in ("auto", "bwrap") else None
    if exe:
        prefix = _bwrap_argv(exe, writable=writable, readable=readable, hide=hide, chdir=chdir)
        prot = [*base, "bwrap", "no-network", "pid-namespace", "read-only-host", "private-tmp", "private-copy"]
        if hide:
            prot.append("hidden-dock-home")
        return SandboxPlan([*prefix, *argv], tuple(prot), "bwrap")
    if backend == "bwrap":
        logger.warning("bwrap was requested but does not work here; falling back")
    un = _unshare_argv() if backend in ("auto", "bwrap", "unshare") else None
    if un:
        logger.warning("bubblewrap unavailable: worker gets network isolation (unshare) and rlimits only; "
                       "the host filesystem stays writable for the worker's user")
        return SandboxPlan([*un, *argv], (*base, "no-network", "private-copy"), "unshare")
    if backend != "none":
        logger.warning("no namespace sandbox available (install bubblewrap): worker is limited by rlimits only")
    return SandboxPlan(list(argv), (*base, "private-copy"), "none")
