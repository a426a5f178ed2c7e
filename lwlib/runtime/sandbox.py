"""Process sandbox for learnware workers: bubblewrap with only what the worker needs, as an unprivileged user.

Why: the reference runs uploader code with the dock's user, filesystem and network. An earlier version of this module
kept the dock's uid (root, in the dock container) and bound the whole host read-only, so a model could read
``/etc/shadow`` and ``connect()`` to host sockets under ``/run``. Now:

- **Nothing of the host is bound but what the worker needs**: ``/usr`` (with the ``/lib*``, ``/bin`` links), the
  loader cache and time zone from ``/etc``, the interpreter (``sys.base_prefix`` and the venv), the runner, and the
  learnware's private copy. No ``/``, no ``/etc/shadow``, ``/root``, ``/home``, no host ``/run`` (an empty tmpfs),
  no ``/sys``; ``/tmp`` and ``/dev/shm`` are private, size-bounded tmpfs.
- **Namespaces**: network (no interfaces but an unconfigured loopback; abstract Unix sockets are per network
  namespace too), PID, IPC, UTS, cgroup; a new session (no terminal injection); killed with its parent.
- **Identity**: the model runs as uid/gid 65534 with no capabilities and ``no_new_privs``, and that is the identity
  the kernel checks file permissions with, so a root-owned 0600 file stays unreadable even if it were visible. As
  root, bubblewrap sets up the mounts with its privileges (it must traverse e.g. ``/root/.pyenv``, mode 0700) and
  ``setpriv`` drops to 65534 before the interpreter starts. Run as another user, bubblewrap uses an unprivileged
  user namespace mapping 65534 to that user, with nested user namespaces disabled. Mapping 65534 onto real root
  (plain ``--unshare-user --uid``) is used only if neither works, and then reported as missing ``unprivileged-uid``.

Without ``bwrap`` the worker falls back to ``unshare --net --ipc`` and then to rlimits only; every plan lists the
protections it gives and, just as explicitly, the ones it does not (:attr:`SandboxPlan.missing`).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lwlib.runtime.limits import MIB, RuntimeLimits, make_preexec

logger = logging.getLogger(__name__)

__all__ = [
    "ALL_PROTECTIONS",
    "PROTECTIONS",
    "SANDBOX_GID",
    "SANDBOX_UID",
    "Backend",
    "RuntimeLimits",
    "SandboxPlan",
    "bwrap_available",
    "etc_stubs",
    "make_preexec",
    "resolve_backend",
    "unshare_available",
    "wrap_command",
]

Backend = Literal["auto", "bwrap", "unshare", "none"]
Bind = Path | tuple[Path, Path]  # a host path bound at the same path inside, or (host path, inside path)
Identity = Literal["setpriv", "userns", "root-userns"]

SANDBOX_UID = SANDBOX_GID = 65534
BASE = ("rlimits", "process-group", "minimal-env", "private-copy")
PROTECTIONS: dict[str, str] = {
    "rlimits": "address space, CPU, processes, open files and file size limited; no core dumps",
    "process-group": "the worker's whole process group is killed on timeout or close",
    "minimal-env": "no environment variable of the dock reaches the model",
    "private-copy": "the model runs in a private copy of its learnware, deleted afterwards",
    "unprivileged-uid": "runs as uid/gid 65534 without capabilities; file permissions are checked for that uid",
    "no-new-privileges": "no_new_privs set: setuid binaries and file capabilities cannot raise privileges",
    "no-network": "own network namespace: no interface but loopback, no abstract sockets of the host",
    "pid-namespace": "own PID namespace: host processes are invisible and cannot be signalled",
    "ipc-namespace": "own System V IPC and POSIX message queue namespace",
    "minimal-filesystem": "only /usr, the interpreter, its environment, the runner and its own copy are mounted",
    "hidden-host-secrets": "/etc (but the loader cache and time zone), /root, /home and /sys are not mounted",
    "hidden-dock-home": "the dock home in use (catalog, registry, other learnwares) is not visible",
    "no-host-sockets": "/run is an empty tmpfs and no host socket path is mounted",
    "private-tmp": "/tmp and /dev/shm are private, size-bounded tmpfs",
    "new-session": "new terminal session: the model cannot inject input into the dock's terminal",
    "die-with-parent": "the sandbox is killed when the dock's worker handle dies",
}
ALL_PROTECTIONS: tuple[str, ...] = tuple(PROTECTIONS)
_BWRAP_ONLY = ("no-new-privileges", "pid-namespace", "minimal-filesystem", "hidden-host-secrets",
               "no-host-sockets", "private-tmp", "new-session", "die-with-parent")
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_SYSTEM_ETC = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")  # loader cache: multiarch lib dirs


@dataclass(frozen=True)
class SandboxPlan:
    """The command to run, the protections it gives and those it lacks, and how to prepare for it.

    Attributes
    ----------
    argv : list of str
    protections : tuple of str
        Names from :data:`PROTECTIONS` in force.
    missing : tuple of str
        Names from :data:`PROTECTIONS` this plan does not give (empty only with the full bubblewrap sandbox).
    backend : {"bwrap", "unshare", "none"}
    chown_writable : bool
        The model runs as :data:`SANDBOX_UID` on the host: its writable directories must be owned by that uid.
    """

    argv: list[str]
    protections: tuple[str, ...]
    missing: tuple[str, ...]
    backend: str
    chown_writable: bool = False


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=15, check=False, start_new_session=True).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _split(bind: Bind) -> tuple[Path, Path]:
    host, inside = (bind, bind) if isinstance(bind, (Path, str)) else bind
    return Path(host).resolve(), Path(inside)


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _system_args() -> tuple[list[str], list[Path]]:
    """``/usr`` + the merged-usr links (or directories) + the few ``/etc`` files the loader and libc need."""
    args, roots = ["--ro-bind", "/usr", "/usr"], [Path("/usr")]
    for name in _SYSTEM_LINKS:
        p = Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
            roots.append(p)
    args += ["--perms", "0755", "--dir", "/etc"]
    for f in _SYSTEM_ETC:
        if Path(f).exists():
            args += ["--ro-bind", f, f]
            roots.append(Path(f))
    return args, roots


def _mount_args(readable: Sequence[Bind], writable: Sequence[Bind], hide: Sequence[Path],
                roots: list[Path]) -> list[str]:
    """Bind arguments in depth order: parents created 0755 (bwrap makes them 0700, which the unprivileged uid could
    not traverse); a hidden host path that some bind would expose gets an empty tmpfs, and binds inside it return."""
    binds = [(*_split(b), False) for b in readable] + [(*_split(b), True) for b in writable]
    binds.sort(key=lambda b: len(b[1].parts))
    hidden = [Path(h).resolve() for h in hide]
    args: list[str] = []
    made: set[Path] = set()
    visible = list(roots)

    def emit(host: Path, inside: Path, rw: bool) -> None:
        for parent in reversed(inside.parents):
            if parent != Path("/") and parent not in made and not any(_under(parent, v) for v in visible):
                args.extend(["--perms", "0755", "--dir", str(parent)])
                made.add(parent)
        args.extend(["--bind" if rw else "--ro-bind", str(host), str(inside)])
        visible.append(inside)

    for host, inside, rw in binds:
        if not host.exists():
            continue
        if not rw and any(_under(inside, v) for v in visible) and host == inside:
            continue  # already visible through a parent bind (e.g. an interpreter under /usr)
        emit(host, inside, rw)
    for h in hidden:  # hide what a bind exposes: the dock home under a bound directory
        for host, inside, _ in binds:
            if h != host and _under(h, host) and h.is_dir():
                cover = inside / h.relative_to(host)
                args.extend(["--perms", "0755", "--tmpfs", str(cover)])
                for h2, i2, rw2 in binds:
                    if _under(h2, h) and h2.exists():
                        for parent in reversed(i2.parents):
                            if _under(parent, cover) and parent != cover:
                                args.extend(["--perms", "0755", "--dir", str(parent)])
                        args.extend(["--bind" if rw2 else "--ro-bind", str(h2), str(i2)])
    return args


def _bwrap_argv(exe: str, identity: Identity, *, readable: Sequence[Bind], writable: Sequence[Bind],
                hide: Sequence[Path], chdir: Path | None, tmp_mb: int) -> list[str]:
    argv = [exe, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session"]
    uid = ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
    if identity == "setpriv":  # real root sets up mounts; setpriv needs these three to drop to 65534 for good
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    elif identity == "userns":
        argv += ["--unshare-user", *uid, "--disable-userns"]
    else:
        argv += ["--unshare-user", *uid, "--cap-drop", "ALL"]
    size = str(max(1, int(tmp_mb)) * MIB)
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
             "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm", "--perms", "0755", "--size", str(MIB),
             "--tmpfs", "/run"]
    system, roots = _system_args()
    argv += system + _mount_args(readable, writable, hide, roots)
    if chdir is not None:
        argv += ["--chdir", str(chdir)]
    if identity == "setpriv":
        argv += [_setpriv() or "setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return argv


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv")


@functools.cache
def _bwrap_mode() -> tuple[str, Identity] | None:
    """The working ``bwrap`` and the strongest identity drop it supports here, probed once per process."""
    exe = shutil.which("bwrap")
    true = shutil.which("true") or "/usr/bin/true"
    if not exe:
        return None
    if os.geteuid() == 0:
        order: tuple[Identity, ...] = ("setpriv", "root-userns") if _setpriv() else ("root-userns",)
    else:
        order = ("userns",)
    for identity in order:
        if _probe([*_bwrap_argv(exe, identity, readable=(), writable=(), hide=(), chdir=None, tmp_mb=1), true]):
            if identity == "root-userns":
                logger.warning("bubblewrap cannot drop to a real unprivileged uid here (no setpriv?): the model's "
                               "uid 65534 maps onto the dock's root; protection 'unprivileged-uid' is missing")
            return exe, identity
    return None


def bwrap_available() -> str | None:
    """Path of a working ``bwrap`` (probed once with the flags we use), else ``None``."""
    mode = _bwrap_mode()
    return mode[0] if mode else None


@functools.cache
def _unshare_argv() -> tuple[str, ...] | None:
    exe = shutil.which("unshare")
    if not exe:
        return None
    argv = (exe, "--net", "--ipc") if os.geteuid() == 0 else (exe, "--net", "--ipc", "--map-root-user")
    return argv if _probe([*argv, "true"]) else None


def unshare_available() -> bool:
    """Whether ``unshare --net --ipc`` works here (network-only fallback)."""
    return _unshare_argv() is not None


def resolve_backend(backend: Backend = "auto") -> Literal["bwrap", "unshare", "none"]:
    """The backend :func:`wrap_command` will use for ``backend`` (callers lay out paths differently for bwrap)."""
    if backend in ("auto", "bwrap") and _bwrap_mode() is not None:
        return "bwrap"
    if backend in ("auto", "bwrap", "unshare") and _unshare_argv() is not None:
        return "unshare"
    return "none"


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


def _plan(argv: list[str], given: Sequence[str], backend: str, *, hide: Sequence[Path],
          chown: bool = False) -> SandboxPlan:
    names = [p for p in ALL_PROTECTIONS if p in given]
    missing = [p for p in ALL_PROTECTIONS if p not in given and (p != "hidden-dock-home" or hide)]
    return SandboxPlan(argv, tuple(names), tuple(missing), backend, chown)


def etc_stubs(directory: Path) -> list[tuple[Path, Path]]:
    """Write the ``/etc`` files a worker may look up (its own user, localhost) into ``directory``; returns
    (host, inside) read-only binds. The host's ``passwd``/``group``/``hosts`` are never shown."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"passwd": f"sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:/sandbox/home:/usr/sbin/nologin\n",
             "group": f"sandbox:x:{SANDBOX_GID}:\n", "hosts": "127.0.0.1 localhost\n::1 localhost\n"}
    out = []
    for name, text in files.items():
        (directory / name).write_text(text)
        out.append((directory / name, Path("/etc") / name))
    return out


def wrap_command(argv: Sequence[str], *, writable: Sequence[Bind] = (), readable: Sequence[Bind] = (),
                 hide: Sequence[Path] = (), chdir: Path | None = None, backend: Backend = "auto",
                 tmp_mb: int = 256) -> SandboxPlan:
    """Wrap ``argv`` in the strongest sandbox available (or the one asked for).

    Parameters
    ----------
    argv : sequence of str
        The worker command, with paths as the worker sees them (inside paths under bwrap).
    writable : sequence of Path or (host, inside) pairs
        Directories bound read-write (the learnware's private copy and home).
    readable : sequence of Path or (host, inside) pairs
        Everything else the worker needs, bound read-only (interpreter, environment, runner, ``/etc`` stubs).
    hide : sequence of Path
        Host paths that must stay invisible (the dock home in use); under bwrap nothing is visible unless bound,
        and a hidden path inside a bound directory is covered with an empty tmpfs.
    chdir : Path, optional
        Working directory inside the sandbox.
    backend : {"auto", "bwrap", "unshare", "none"}
        ``auto`` picks bwrap, then unshare, then rlimits only.
    tmp_mb : int
        Size of the private ``/tmp`` and ``/dev/shm``.

    Returns
    -------
    SandboxPlan
    """
    chosen = resolve_backend(backend)
    mode = _bwrap_mode()
    if chosen == "bwrap" and mode is not None:
        exe, identity = mode
        prefix = _bwrap_argv(exe, identity, readable=readable, writable=writable, hide=hide, chdir=chdir,
                             tmp_mb=tmp_mb)
        given = [*BASE, "no-network", "ipc-namespace", *_BWRAP_ONLY]
        if identity != "root-userns":
            given.append("unprivileged-uid")
        if hide:
            given.append("hidden-dock-home")
        return _plan([*prefix, *argv], given, "bwrap", hide=hide, chown=identity == "setpriv")
    if backend == "bwrap":
        _warn_once("bwrap was requested but does not work here; falling back")
    if chosen == "unshare":
        _warn_once("bubblewrap unavailable: learnware workers get network and IPC isolation (unshare) and rlimits "
                   "only; they run with the dock's uid and see the host filesystem")
        return _plan([*(_unshare_argv() or ()), *argv], [*BASE, "no-network", "ipc-namespace"], "unshare", hide=hide)
    if backend != "none":
        _warn_once("no namespace sandbox available (install bubblewrap): learnware workers are limited by rlimits "
                   "only")
    return _plan(list(argv), BASE, "none", hide=hide)
