"""``Runtime.open(learnware, envs=..., hide=...)``: run a learnware's model in its own environment and sandbox.

Why: the dock must never import uploader code in-process. A :class:`RuntimeModel` owns a private writable copy of
the learnware, an environment (venv or inherit), and one persistent sandboxed worker; if the worker dies or times
out, the next call starts a fresh one. Outputs are validated here (length, dtype, finiteness) before anyone uses them.

Everything the runtime needs from the dock's configuration is passed in (the environment manager, the paths to hide):
it never reads settings itself, so a dock opened on any home hides that home. Under bubblewrap the worker sees fixed
paths (``/sandbox/learnware``, ``/sandbox/home``, ``/sandbox/env``, ``/sandbox/runtime``), never the host's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from lwlib.errors import LwdockError, MalformedOutputError, ModelRuntimeError
from lwlib.learnware.requirements import Requirements, as_requirements
from lwlib.runtime.env import Environment, EnvironmentManager
from lwlib.runtime.limits import RuntimeLimits, make_preexec
from lwlib.runtime.sandbox import SANDBOX_GID, SANDBOX_UID, Backend, Bind, etc_stubs, resolve_backend, wrap_command
from lwlib.runtime.worker import Worker

logger = logging.getLogger(__name__)

__all__ = ["RUNNER_DIR", "ModelEntrySpec", "Runtime", "RuntimeModel", "RuntimeTarget"]

RUNNER_DIR = Path(__file__).resolve().parent
SHIM_DIR = RUNNER_DIR / "shim"
INSIDE = Path("/sandbox")
MAX_SHAPE_DIMS = 8


class ModelEntryLike(Protocol):
    """What the runtime reads from a manifest's ``model`` section."""

    @property
    def class_name(self) -> str: ...

    @property
    def module_path(self) -> str: ...

    @property
    def kwargs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ModelEntrySpec:
    """Where the model class lives (mirrors ``learnware.yaml``'s ``model`` section)."""

    class_name: str = "Model"
    module_path: str = "__init__.py"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeTarget:
    """What the runtime needs from a learnware: its extracted dir, model entry and typed requirements.

    ``requirements`` may be given as pip lines for convenience; they go through the one requirements policy
    (:func:`lwlib.learnware.requirements.as_requirements`).
    """

    root: Path
    model: ModelEntryLike = field(default_factory=ModelEntrySpec)
    requirements: Requirements = field(default_factory=Requirements)
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())
        object.__setattr__(self, "requirements", as_requirements(self.requirements))
        if not self.root.is_dir():
            raise FileNotFoundError(f"learnware directory {self.root} does not exist")

    @classmethod
    def coerce(cls, obj: Any) -> RuntimeTarget:
        """Accept a ``RuntimeTarget``, a ``Learnware`` (``.root``/``.manifest.model``/``.requirements``) or a
        ``(root, model_entry, requirements)`` tuple."""
        if isinstance(obj, RuntimeTarget):
            return obj
        if hasattr(obj, "root") and hasattr(obj, "manifest"):
            return cls(Path(obj.root), obj.manifest.model, obj.requirements, str(getattr(obj, "id", "")))
        if isinstance(obj, (tuple, list)) and len(obj) == 3:
            root, model, reqs = obj
            return cls(Path(root), model if model is not None else ModelEntrySpec(), reqs, Path(root).name)
        raise TypeError(f"Runtime.open needs a Learnware, RuntimeTarget or (root, model_entry, requirements); "
                        f"got {type(obj).__name__}")


def _worker_env(limits: RuntimeLimits, home: Path) -> dict[str, str]:
    """A minimal environment: nothing of the dock's (tokens, tracking URIs) leaks into the worker."""
    t = str(max(1, limits.threads))
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": t,
            "OPENBLAS_NUM_THREADS": t, "MKL_NUM_THREADS": t, "TORCH_NUM_THREADS": t, "HF_HUB_OFFLINE": "1",
            "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg"}


def _check_output(out: np.ndarray, n: int, name: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise MalformedOutputError(f"predict returned {type(out).__name__}, expected an array", learnware=name)
    if out.dtype.kind not in "iuf":
        raise MalformedOutputError(f"predict returned dtype {out.dtype}; int/float expected", learnware=name)
    if out.ndim == 0 or out.shape[0] != n:
        raise MalformedOutputError(f"predict returned shape {out.shape} for {n} samples; the first dimension must "
                                   "equal len(X)", expected=n, shape=out.shape, learnware=name)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise MalformedOutputError("predict returned NaN or infinite values", learnware=name,
                                   n_bad=int((~np.isfinite(out)).sum()))
    return out


def _shape(value: Any, what: str, name: str) -> tuple[int, ...] | None:
    """A declared per-sample shape from the ready frame: at most 8 positive ints, else a clear error."""
    if value is None:
        return None
    if (not isinstance(value, list) or not 0 < len(value) <= MAX_SHAPE_DIMS
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31 for v in value)):
        raise MalformedOutputError(f"the model declares an invalid {what}: expected up to {MAX_SHAPE_DIMS} positive "
                                   "integers", code="model_shape_invalid", learnware=name)
    return tuple(value)


def _chown_tree(root: Path) -> None:
    """Give the sandbox uid its private copy (owner read/write, whatever modes the package came with)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for p in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
            os.chown(p, SANDBOX_UID, SANDBOX_GID, follow_symlinks=False)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | (0o700 if os.path.isdir(p) else 0o600))


class RuntimeModel:
    """A learnware model running in an isolated persistent worker. Use as a context manager.

    Attributes
    ----------
    input_shape, output_shape : tuple or None
        Per-sample shapes reported by the model.
    protections : list of str
        Protections in force for the worker (names from :data:`lwlib.runtime.sandbox.PROTECTIONS`).
    missing_protections : list of str
        Protections the available sandbox could not give (empty under the full bubblewrap sandbox).
    environment : Environment
        The interpreter environment used.
    """

    def __init__(self, target: RuntimeTarget, environment: Environment, *, limits: RuntimeLimits,
                 sandbox: Backend = "auto", hide: Sequence[Path] = ()) -> None:
        self.target = target
        self.environment = environment
        self.limits = limits
        self.sandbox = sandbox
        self.hide = tuple(Path(p) for p in hide)
        self.name = target.id or target.root.name
        self._worker: Worker | None = None
        self.protections: list[str] = []
        self.missing_protections: list[str] = []
        self.restarts = 0
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="lwdock-lw-"))
        self.workdir = self._tmp / "learnware"
        shutil.copytree(target.root, self.workdir, symlinks=True)
        (self._tmp / "home").mkdir()

    def _plan_args(self, bwrap: bool) -> tuple[list[str], list[Bind], list[Bind], Path, Path]:
        """argv, read-only and writable binds, working dir and HOME as the worker sees them."""
        m = self.target.model
        env = self.environment
        runner, root, home, python = RUNNER_DIR, self.workdir, self._tmp / "home", env.python
        readable: list[Bind] = [Path(sys.base_prefix)]
        writable: list[Bind] = []
        if bwrap:
            runner, root, home = INSIDE / "runtime", INSIDE / "learnware", INSIDE / "home"
            readable += [(RUNNER_DIR, runner), *etc_stubs(self._tmp / "etc")]
            if env.path is not None:
                readable.append((env.path, INSIDE / "env"))
                python = INSIDE / "env" / env.python.relative_to(env.path)
            else:
                readable.append(Path(sys.prefix))
            writable = [(self.workdir, root), (self._tmp / "home", home)]
        argv = [str(python), "-I", "-B", str(runner / "runner.py"), "--root", str(root), "--module",
                str(m.module_path), "--class", str(m.class_name), "--kwargs", json.dumps(dict(m.kwargs or {})),
                "--shim", str(runner / "shim")]
        return argv, readable, writable, root, home

    def start(self) -> RuntimeModel:
        """Start (or restart) the worker and wait until the model is loaded."""
        bwrap = resolve_backend(self.sandbox) == "bwrap"
        argv, readable, writable, root, home = self._plan_args(bwrap)
        plan = wrap_command(argv, writable=writable, readable=readable, hide=self.hide, chdir=None,
                            backend=self.sandbox, tmp_mb=self.limits.tmp_mb)  # the runner enters its root itself
        if plan.chown_writable:
            _chown_tree(self.workdir)
            _chown_tree(self._tmp / "home")
        self.protections, self.missing_protections = list(plan.protections), list(plan.missing)
        logger.info("starting learnware %s (%s env %s) with protections: %s; missing: %s", self.name[:12],
                    self.environment.mode, self.environment.key, ", ".join(self.protections),
                    ", ".join(self.missing_protections) or "none")
        self._worker = Worker(plan.argv, env=_worker_env(self.limits, home), cwd="/" if bwrap else str(root),
                              preexec=make_preexec(self.limits), name=self.name, limits=self.limits)
        info = self._worker.wait_ready(self.limits.startup_timeout)
        try:
            self.input_shape = _shape(info.get("input_shape"), "input_shape", self.name)
            self.output_shape = _shape(info.get("output_shape"), "output_shape", self.name)
        except MalformedOutputError:
            self._worker.kill()
            raise
        return self

    def _live_worker(self) -> Worker:
        if self._worker is None or not self._worker.alive:
            if self._worker is not None:
                self._worker.kill()
                self.restarts += 1
                logger.info("learnware %s: worker gone, starting a fresh one", self.name[:12])
            self.start()
        assert self._worker is not None
        return self._worker

    @staticmethod
    def _as_input(X: Any, name: str) -> np.ndarray:
        arr = np.asarray(X)
        if arr.dtype.kind not in "biufU" or arr.dtype.fields is not None:
            raise ModelRuntimeError(f"{name} has dtype {arr.dtype}; only numeric or str arrays can be sent to a "
                                    "learnware", code="invalid_input")
        return arr

    def predict(self, X: Any) -> np.ndarray:
        """Predict in the worker; output validated (length == len(X), int/float dtype, finite)."""
        arr = self._as_input(X, "X")
        out = self._live_worker().call("predict", [arr], self.limits.call_timeout)
        if len(out) != 1:
            raise MalformedOutputError(f"predict answered {len(out)} arrays, expected 1", learnware=self.name)
        return _check_output(out[0], len(arr), self.name)

    def _train(self, method: str, X: Any, y: Any) -> RuntimeModel:
        arrays = [self._as_input(X, "X")] + ([] if y is None else [self._as_input(y, "y")])
        self._live_worker().call(method, arrays, self.limits.call_timeout)
        return self

    def fit(self, X: Any, y: Any = None) -> RuntimeModel:
        """Call the model's ``fit`` in the worker (state lives in the worker; lost if it restarts)."""
        return self._train("fit", X, y)

    def finetune(self, X: Any, y: Any = None) -> RuntimeModel:
        """Call the model's ``finetune`` in the worker."""
        return self._train("finetune", X, y)

    @property
    def pid(self) -> int | None:
        return self._worker.pid if self._worker is not None and self._worker.alive else None

    @property
    def stderr_tail(self) -> list[str]:
        """The last stderr lines of the current worker (bounded, sanitised)."""
        return self._worker.stderr.tail(self.limits.stderr_lines) if self._worker is not None else []

    def close(self) -> None:
        """Stop the worker (whole process group) and delete the private copy."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> RuntimeModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # last resort; close() is the contract
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


class Runtime:
    """Factory for isolated learnware models."""

    @classmethod
    def open(cls, learnware: Any, *, envs: EnvironmentManager | None = None, hide: Sequence[Path] = (),
             environment: Environment | None = None, mode: Literal["auto", "venv", "inherit"] = "auto",
             limits: RuntimeLimits | None = None, sandbox: Backend = "auto") -> RuntimeModel:
        """Build/reuse the learnware's environment, start its worker and return a ready :class:`RuntimeModel`.

        Parameters
        ----------
        learnware : Learnware or RuntimeTarget or tuple
            The package (already extracted) to run.
        envs : EnvironmentManager
            Where environments are built and cached (``EnvironmentManager(settings.runtimes_dir,
            settings.uv_cache_dir)``). Required unless ``environment`` is given.
        hide : sequence of Path
            Host paths the model must not see: pass the dock home in use (``(settings.home,)``). Listed as
            ``hidden-dock-home`` in the protections when the sandbox can hide them, else in the missing ones.
        environment : Environment, optional
            An environment already built for this learnware (by ``containerize``): used as is, ``envs`` and
            ``mode`` are then ignored.
        mode : {"auto", "venv", "inherit"}
            ``auto`` inherits the dock's interpreter when it satisfies the requirements, else builds a venv.
        limits : RuntimeLimits, optional
        sandbox : {"auto", "bwrap", "unshare", "none"}

        Raises
        ------
        RuntimeBuildError, ModelImportError, ModelTimeoutError, ModelCrashedError, MalformedOutputError

        Examples
        --------
        >>> with Runtime.open(learnware, envs=envs, hide=(home,)) as model:  # doctest: +SKIP
        ...     y = model.predict(X)
        """
        target = RuntimeTarget.coerce(learnware)
        if environment is None:
            if envs is None:
                raise TypeError("Runtime.open needs envs= (an EnvironmentManager) or environment= (a built one)")
            environment = envs.ensure(target.requirements, mode=mode)
        model = RuntimeModel(target, environment, limits=limits or RuntimeLimits(), sandbox=sandbox, hide=hide)
        try:
            return model.start()
        except BaseException as exc:
            if isinstance(exc, LwdockError):  # so a report made from this error knows how the model was contained
                exc.sandbox_protections = tuple(model.protections)  # type: ignore[attr-defined]
                exc.sandbox_missing = tuple(model.missing_protections)  # type: ignore[attr-defined]
            model.close()
            raise
