"""Per-requirements Python environments for learnwares, built with uv and shared by equal requirements.

Why: the reference builds one conda env per learnware with a full solve, no timeout, latest ``learnware`` from PyPI,
and Python 3.8. Here environments are keyed by the hash of the normalised requirements (equal requirements share one
venv), built with uv against the local indexes pip uses, under a file lock into a temp dir that is atomically renamed
with a marker written last. Torch never gets installed into a venv (it would pull GBs of CUDA): torch learnwares run
in ``inherit`` mode on the dock's own interpreter, in a separate sandboxed process. What may be installed at all is
decided once, at validate, by :mod:`lwlib.learnware.requirements`; this module only keys and builds from the typed
:attr:`Requirements.pins`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lwlib.errors import RuntimeBuildError
from lwlib.learnware.requirements import Pin, Requirements, as_requirements, unmet_by_dock

logger = logging.getLogger(__name__)

__all__ = ["Environment", "EnvironmentManager", "pip_index_args", "requirements_key"]

Mode = Literal["auto", "venv", "inherit"]
READY_MARKER = ".lwdock-ready"
LOCK_FILE = "requirements.lock"
PYPI = "https://pypi.org/simple"


@dataclass(frozen=True)
class Environment:
    """A ready interpreter for a learnware: ``python`` to run, ``mode`` (``venv``/``inherit``), ``key``."""

    key: str
    python: Path
    mode: str
    path: Path | None = None
    packages: tuple[str, ...] = ()
    build_seconds: float = 0.0
    lock_lines: tuple[str, ...] = field(default=(), repr=False)


def requirements_key(requirements: Requirements) -> str:
    """Stable key of the requirements' pins + interpreter version: equal requirements share an env."""
    tag = f"py{sys.version_info.major}.{sys.version_info.minor}-{sys.platform}-{os.uname().machine}"
    return hashlib.sha256("\n".join([tag, *map(str, requirements.pins)]).encode()).hexdigest()[:20]


def pip_index_args() -> list[str]:
    """uv flags for the indexes pip is configured with here (find-links, extra-index-url) plus PyPI as default."""
    values: dict[str, list[str]] = {"find-links": [], "extra-index-url": [], "index-url": []}
    try:
        text = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                              timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    for line in text.splitlines():
        m = re.match(r"^[^.]*\.(find-links|extra-index-url|index-url)='(.*)'$", line.strip())
        if m:
            for v in m.group(2).split():
                if v not in values[m.group(1)]:
                    values[m.group(1)].append(v)
    args = [f"--find-links={v}" for v in values["find-links"] if Path(v.removeprefix("file://")).exists()
            or "://" in v]
    args += [f"--extra-index-url={v}" for v in values["extra-index-url"]]
    args.append(f"--index-url={values['index-url'][0] if values['index-url'] else PYPI}")
    return args


def _named_packages(stderr: str, reqs: Iterable[Pin]) -> list[str]:
    low = stderr.lower().replace("_", "-")
    named = [r.name for r in reqs if re.search(rf"(?<![\w-]){re.escape(r.name)}(?![\w-])", low)]
    if not named:
        named = re.findall(r"because ([a-z0-9][a-z0-9._-]*)", low)[:3]
    return named


def _readable_by_sandbox(path: Path) -> None:
    """Environments are entered by the sandbox's unprivileged uid: their top folder (a ``mkdtemp``, 0700) must be
    traversable by others, as uv makes everything inside (0755/0644)."""
    mode = path.stat().st_mode
    if mode & 0o005 != 0o005:
        path.chmod(mode | 0o055)


class EnvironmentManager:
    """Builds and caches learnware environments under ``root`` with a shared uv package cache.

    Parameters
    ----------
    root : Path
        Where environments live (``Settings.runtimes_dir``): ``<root>/<key>/`` plus ``<root>/.locks/``.
    cache_dir : Path
        uv package cache shared by all builds (``Settings.uv_cache_dir`` / ``LWDOCK_UV_CACHE``).
    build_timeout : float
        Seconds allowed for one environment build.
    index_args : list of str, optional
        uv index flags; default: read from pip's configuration.
    """

    def __init__(self, root: Path, cache_dir: Path, *, build_timeout: float = 900.0,
                 index_args: list[str] | None = None) -> None:
        self.root = Path(root)
        self.cache_dir = Path(cache_dir)
        self.build_timeout = build_timeout
        self.index_args = index_args
        self.builds = 0  # number of venvs this manager actually built (not reused)

    @staticmethod
    def uv_bin() -> str:
        import uv  # the pip-installed uv binary ships with its finder

        return uv.find_uv_bin()

    def _index_args(self) -> list[str]:
        if self.index_args is None:
            self.index_args = pip_index_args()
        return self.index_args

    def ensure(self, requirements: Requirements | Iterable[str], *, mode: Mode = "auto") -> Environment:
        """Return a ready environment for ``requirements`` (building it once if needed).

        Parameters
        ----------
        requirements : Requirements
            The learnware's typed requirements (``Learnware.requirements``), already checked by the requirements
            policy at validate. Plain pip lines are accepted for convenience and go through that same policy.
        mode : {"auto", "venv", "inherit"}
            ``auto`` inherits the dock's interpreter when it meets every pin, else builds a venv.

        Raises
        ------
        RuntimeBuildError
            ``inherit_unsatisfied`` (inherit asked, pins not met), ``inherit_required`` (a torch learnware with
            ``mode="venv"``), unresolvable requirements, ``runtime_build_timeout``.
        """
        reqs = as_requirements(requirements)
        pins = reqs.pins
        if reqs.python and not sys.version.startswith(reqs.python):
            logger.warning("learnware asks for Python %s; it runs on the dock's Python %s", reqs.python,
                           sys.version.split()[0])
        key = requirements_key(reqs)
        missing = unmet_by_dock(pins)
        if mode == "inherit" or (mode == "auto" and not missing):
            if missing:
                raise RuntimeBuildError(
                    f"inherit mode needs the dock's interpreter to meet every requirement; it does not meet: "
                    f"{', '.join(missing)}. Use mode='venv' or relax the pins.", code="inherit_unsatisfied",
                    package=missing[0].split()[0])
            logger.info("learnware env %s: inherit mode (dock interpreter meets %d requirements)", key, len(pins))
            return Environment(key=key, python=Path(sys.executable), mode="inherit", path=None,
                               packages=tuple(map(str, pins)))
        if reqs.host_only:
            raise RuntimeBuildError(
                f"{reqs.host_only[0].name} learnwares run on the dock's own interpreter (torch is never installed into "
                "a learnware venv), but mode='venv' was requested; use mode='auto' or 'inherit'.",
                code="inherit_required", package=reqs.host_only[0].name)
        return self._build(key, pins)

    # -- building ------------------------------------------------------------------------------------------
    def _uv(self, args: list[str], deadline: float, reqs: Iterable[Pin], what: str) -> str:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeBuildError(f"environment build exceeded {self.build_timeout:g} s before {what}",
                                    code="runtime_build_timeout")
        env = {**os.environ, "UV_CACHE_DIR": str(self.cache_dir), "UV_NO_PROGRESS": "1", "NO_COLOR": "1"}
        try:
            res = subprocess.run([self.uv_bin(), *args], capture_output=True, text=True, timeout=left, env=env,
                                 check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeBuildError(f"environment build timed out after {self.build_timeout:g} s during {what}; "
                                    "raise build_timeout or check the package indexes",
                                    code="runtime_build_timeout") from None
        if res.returncode != 0:
            named = _named_packages(res.stderr, reqs)
            tail = "\n".join(res.stderr.strip().splitlines()[-8:])
            raise RuntimeBuildError(
                f"uv could not {what} (packages: {', '.join(named) or 'unknown'}):\n{tail}\n"
                "Fix or relax these requirements in the learnware's requirements.txt/environment.yaml.",
                package=named[0] if named else None, packages=named, stderr=tail)
        return res.stdout

    def _build(self, key: str, reqs: tuple[Pin, ...]) -> Environment:
        target = self.root / key
        (self.root / ".locks").mkdir(parents=True, exist_ok=True)
        with open(self.root / ".locks" / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / READY_MARKER).is_file():
                _readable_by_sandbox(target)
                return self._environment(key, target, reqs, 0.0)
            if target.exists():  # half-built leftovers from a crash: no marker means not usable
                shutil.rmtree(target, ignore_errors=True)
            t0 = time.monotonic()
            deadline = t0 + self.build_timeout
            tmp = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=self.root))
            try:
                venv = tmp / "venv"
                self._uv(["venv", "--quiet", "--relocatable", "--python", sys.executable, str(venv)], deadline, reqs,
                         "create the venv")
                py = venv / "bin" / "python"
                runner_deps = [] if any(r.name == "numpy" for r in reqs) else ["numpy"]  # the runner needs numpy
                (tmp / "requirements.in").write_text("".join(f"{r}\n" for r in [*reqs, *runner_deps]))
                self._uv(["pip", "install", "--compile-bytecode", "--python", str(py), *self._index_args(), "-r",
                          str(tmp / "requirements.in")], deadline, reqs, "resolve/install the requirements")
                frozen = self._uv(["pip", "freeze", "--python", str(py)], deadline, reqs, "freeze the venv")
                (tmp / LOCK_FILE).write_text(frozen)
                (tmp / READY_MARKER).write_text(f"{time.time():.0f}\n")  # written last
                _readable_by_sandbox(tmp)
                os.rename(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self.builds += 1
            seconds = time.monotonic() - t0
            logger.info("built learnware env %s (%d requirements) in %.1f s", key, len(reqs), seconds)
            return self._environment(key, target, reqs, seconds)

    @staticmethod
    def _environment(key: str, target: Path, reqs: tuple[Pin, ...], seconds: float) -> Environment:
        lock = (target / LOCK_FILE).read_text().splitlines() if (target / LOCK_FILE).is_file() else []
        return Environment(key=key, python=target / "venv" / "bin" / "python", mode="venv", path=target,
                           packages=tuple(str(r) for r in reqs), build_seconds=seconds, lock_lines=tuple(lock))
