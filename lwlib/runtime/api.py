"""``Runtime.open(learnware)``: run a learnware's model in its own environment and sandbox, get numpy back.

Why: the dock must never import uploader code in-process. A :class:`RuntimeModel` owns a private writable copy of
the learnware, an environment (venv or inherit), and one persistent sandboxed worker; if the worker dies or times
out, the next call starts a fresh one. Outputs are validated here (length, dtype, finiteness) before anyone uses them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lwlib.errors import MalformedOutputError, ModelRuntimeError
from lwlib.runtime.env import Environment, EnvironmentManager
from lwlib.runtime.sandbox import Backend, RuntimeLimits, make_preexec, wrap_command
from lwlib.runtime.worker import Worker
from lwlib.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["ModelEntrySpec", "RuntimeTarget", "Runtime", "RuntimeModel", "RUNNER_DIR"]

RUNNER_DIR = Path(__file__).resolve().parent
SHIM_DIR = RUNNER_DIR / "shim"


@dataclass(frozen=True)
class ModelEntrySpec:
    """Where the model class lives (mirrors ``learnware.yaml``'s ``model`` section)."""

    class_name: str = "Model"
    module_path: str = "__init__.py"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeTarget:
    """What the runtime needs from a learnware: its extracted dir, model entry and pip requirements."""

    root: Path
    model: Any = field(default_factory=ModelEntrySpec)
    requirements: Any = ()
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())
        if not (self.root / "__init__.py").is_file() and not self.root.is_dir():
            raise FileNotFoundError(f"learnware directory {self.root} does not exist")

    @classmethod
    def coerce(cls, obj: Any) -> "RuntimeTarget":
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
        raise MalformedOutputError(f"learnware {name}: predict returned {type(out).__name__}, expected an array")
    if out.dtype.kind not in "iuf":
        raise MalformedOutputError(f"learnware {name}: predict returned dtype {out.dtype}; int/float expected")
    if out.ndim == 0 or out.shape[0] != n:
        raise MalformedOutputError(f"learnware {name}: predict returned shape {out.shape} for {n} samples; the "
                                   "first dimension must equal len(X)", expected=n, shape=out.shape)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise MalformedOutputError(f"learnware {name}: predict returned NaN or infinite values",
                                   n_bad=int((~np.isfinite(out)).sum()))
    return out


class RuntimeModel:
    """A learnware model running in an isolated persistent worker. Use as a context manager.

    Attributes
    ----------
    input_shape, output_shape : tuple or None
        Per-sample shapes reported by the model.
    protections : list of str
        Protections active for the worker (e.g. ``bwrap``, ``no-network``, ``rlimits``).
    environment : Environment
        The interpreter environment used.
    """

    def __init__(self, target: RuntimeTarget, environment: Environment, *, limits: RuntimeLimits,
                 sandbox: Backend = "auto", hide: tuple[Path, ...] = ()) -> None:
        self.target = target
        self.environment = environment
        self.limits = limits
        self.sandbox = sandbox
        self.hide = hide
        self.name = target.id or target.root.name
        self._tmp = Path(tempfile.mkdtemp(prefix="lwdock-lw-"))
        self.workdir = self._tmp / "learnware"
        shutil.copytree(target.root, self.workdir, symlinks=True)
        (self._tmp / "home").mkdir()
        self._worker: Worker | None = None
        self.protections: list[str] = []
        self.restarts = 0
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None

    def _argv(self) -> list[str]:
        m = self.target.model

        return [str(self.environment.python), "-I", "-B", str(RUNNER_DIR / "runner.py"), "--root",
                str(self.workdir), "--module", str(getattr(m, "module_path", "__init__.py")), "--class",
                str(getattr(m, "class_name", "Model")), "--kwargs", json.dumps(dict(getattr(m, "kwargs", {}) or {})),
                "--shim", str(SHIM_DIR)]

    def start(self) -> "RuntimeModel":
        """Start (or restart) the worker and wait until the model is loaded."""
        readable = [RUNNER_DIR, Path(sys.base_prefix), Path(sys.prefix)]
        if self.environment.path is not None:
            readable.append(self.environment.path)
        plan = wrap_command(self._argv(), writable=[self._tmp], readable=readable, hide=self.hide,
                            chdir=self.workdir, backend=self.sandbox)
        self.protections = list(plan.protections)
        logger.info("starting learnware %s (%s env %s) with protections: %s", self.name, self.environment.mode,
                    self.environment.key, ", ".join(self.protections))
        self._worker = Worker(plan.argv, env=_worker_env(self.limits, self._tmp / "home"), cwd=str(self.workdir),
                              preexec=make_preexec(self.limits), name=self.name)
        info = self._worker.wait_ready(self.limits.startup_timeout)
        self.input_shape = tuple(info["input_shape"]) if info.get("input_shape") is not None else None
        self.output_shape = tuple(info["output_shape"]) if info.get("output_shape") is not None else None
        return self

    def _live_worker(self) -> Worker:
        if self._worker is None or not self._worker.alive:
            if self._worker is not None:
                self._worker.kill()
                self.restarts += 1
                logger.info("learnware %s: worker gone, starting a fresh one", self.name)
            self.start()
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
        (out,) = self._live_worker().call("predict", [arr], self.limits.call_timeout)
        return _check_output(out, len(arr), self.name)

    def _train(self, method: str, X: Any, y: Any) -> "RuntimeModel":
        arrays = [self._as_input(X, "X")] + ([] if y is None else [self._as_input(y, "y")])
        self._live_worker().call(method, arrays, self.limits.call_timeout)
        return self

    def fit(self, X: Any, y: Any = None) -> "RuntimeModel":
        """Call the model's ``fit`` in the worker (state lives in the worker; lost if it restarts)."""
        return self._train("fit", X, y)

    def finetune(self, X: Any, y: Any = None) -> "RuntimeModel":
        """Call the model's ``finetune`` in the worker."""
        return self._train("finetune", X, y)

    @property
    def pid(self) -> int | None:
        return self._worker.pid if self._worker is not None and self._worker.alive else None

    def close(self) -> None:
        """Stop the worker (whole process group) and delete the private copy."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "RuntimeModel":
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
    def open(cls, learnware: Any, *, mode: Literal["auto", "venv", "inherit"] = "auto",
             limits: RuntimeLimits | None = None, envs: EnvironmentManager | None = None,
             sandbox: Backend = "auto") -> RuntimeModel:
        """Build/reuse the learnware's environment, start its worker and return a ready :class:`RuntimeModel`.

        Parameters
        ----------
        learnware : Learnware or RuntimeTarget or tuple
            The package (already extracted) to run.
        mode : {"auto", "venv", "inherit"}
            ``auto`` inherits the dock's interpreter when it satisfies the requirements, else builds a venv.
        limits : RuntimeLimits, optional
        envs : EnvironmentManager, optional
            Default: ``Settings.from_env()`` runtimes dir and uv cache.
        sandbox : {"auto", "bwrap", "unshare", "none"}

        Raises
        ------
        RuntimeBuildError, ModelImportError, ModelTimeoutError, ModelCrashedError

        Examples
        --------
        >>> with Runtime.open(learnware) as model:  # doctest: +SKIP
        ...     y = model.predict(X)
        """
        target = RuntimeTarget.coerce(learnware)
        settings = Settings.from_env()
        if envs is None:
            envs = EnvironmentManager(settings.runtimes_dir, settings.uv_cache_dir)
        environment = envs.ensure(target.requirements, mode=mode)
        hide = tuple(p for p in (settings.home,) if p.is_dir() and not _contains_any(p))
        model = RuntimeModel(target, environment, limits=limits or RuntimeLimits(), sandbox=sandbox, hide=hide)
        try:
            return model.start()
        except BaseException:
            model.close()
            raise


def _contains_any(home: Path) -> bool:
    """Hiding the dock home is only safe if the interpreter and runner do not live under it."""
    needed = [Path(sys.prefix), RUNNER_DIR]
    return any(os.path.commonpath([home, p.resolve()]) == str(home) for p in needed)
