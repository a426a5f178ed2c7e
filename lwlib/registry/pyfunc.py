"""MLflow pyfunc adapters that forward to the sandboxed runtime — they never import a learnware's code.

A registered learnware version is an MLflow *pyfunc* whose only artifact is the learnware zip. Loading it opens
the zip with :func:`lwlib.learnware.open_learnware` (safe extraction, no model import) into a private cache folder,
and ``predict`` talks to the model through :meth:`lwlib.runtime.Runtime.open` (a separate process). The models
are saved "from code" (a two-line script that builds the adapter), so nothing is pickled into the registry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from mlflow.pyfunc.model import PythonModel

logger = logging.getLogger(__name__)

__all__ = ["LearnwarePyfunc", "SolutionPyfunc", "LEARNWARE_ARTIFACT", "SOLUTION_ARTIFACT", "PARTS_ARTIFACT"]

LEARNWARE_ARTIFACT = "learnware"
SOLUTION_ARTIFACT = "solution"
PARTS_ARTIFACT = "parts"
_MEMBER_PREFIX = "lw-"


def _cache_root(home: Path) -> Path:
    """Where loaded models unpack their learnwares: ``LWDOCK_PYFUNC_CACHE`` or ``<LWDOCK_HOME>/pyfunc-cache``."""
    env = os.environ.get("LWDOCK_PYFUNC_CACHE")
    return Path(env).expanduser() if env else home / "pyfunc-cache"


def _as_matrix(model_input: Any) -> np.ndarray:
    """Accept what MLflow hands to ``predict`` (DataFrame, ndarray, lists) as a numeric array."""
    if isinstance(model_input, dict) and len(model_input) == 1:  # a tensor-signature request: {"X": array}
        model_input = next(iter(model_input.values()))
    to_numpy = getattr(model_input, "to_numpy", None)
    arr = to_numpy() if callable(to_numpy) else np.asarray(model_input)
    return np.asarray(arr, dtype=np.float64) if arr.dtype == object else np.asarray(arr)


class _Member:
    """A learnware running in its runtime, shaped like a ``ReusableLearnware`` (``.id`` + ``.predict``)."""

    def __init__(self, learnware_id: str, model: Any, spec: Any = None) -> None:
        self.id = learnware_id
        self._model = model
        self.spec = spec

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self._model.predict(X))


class _RuntimeHost:
    """Opens learnware zips into one cache folder and keeps their runtimes alive until closed."""

    def __init__(self, mode: str) -> None:
        from lwlib.runtime import EnvironmentManager
        from lwlib.settings import Settings

        settings = Settings.from_env()  # a serving process is an entry point: its settings are read here, once
        self.mode = mode
        self.home = settings.home
        self.envs = EnvironmentManager(settings.runtimes_dir, settings.uv_cache_dir)
        root = _cache_root(settings.home)
        root.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="pyfunc-", dir=root))
        self.stack = contextlib.ExitStack()
        self._finalizer = weakref.finalize(self, _RuntimeHost._cleanup, self.stack, self.workdir)

    def open(self, zip_path: str | os.PathLike[str], key: str) -> _Member:
        from lwlib.learnware import open_learnware
        from lwlib.runtime import Runtime

        lw = open_learnware(Path(zip_path), self.workdir / key)
        model = self.stack.enter_context(Runtime.open(lw, mode=self.mode, envs=self.envs,  # type: ignore[arg-type]
                                                      hide=(self.home,)))
        spec = next(iter(lw.stat_specs.values()), None) if getattr(lw, "stat_specs", None) else None
        logger.info("pyfunc opened learnware %s in a %s runtime", lw.id[:12], self.mode)
        return _Member(lw.id, model, spec)

    @staticmethod
    def _cleanup(stack: contextlib.ExitStack, workdir: Path) -> None:
        try:
            stack.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def close(self) -> None:
        self._finalizer()


class LearnwarePyfunc(PythonModel):
    """Pyfunc for one learnware: artifact ``learnware`` is its zip; ``predict`` runs it in its runtime.

    The runtime mode comes from the model config key ``runtime_mode`` (default ``"auto"``), so a deployment
    can choose ``"venv"`` or ``"inherit"`` without re-registering.
    """

    #: MLflow would read predict's type hints as a data schema; inputs are plain arrays checked by the runtime.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        config = dict(getattr(context, "model_config", None) or {})
        self._host = _RuntimeHost(str(config.get("runtime_mode", "auto")))
        self._member = self._host.open(context.artifacts[LEARNWARE_ARTIFACT], "learnware")

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # MLflow reads hints
        return self._member.predict(_as_matrix(model_input))

    def close(self) -> None:
        """Stop the runtime and delete the unpacked copy (also done at garbage collection)."""
        host = getattr(self, "_host", None)
        if host is not None:
            host.close()


class SolutionPyfunc(PythonModel):
    """Pyfunc for a deployed reuse solution: several learnware zips, a JSON recipe and our fitted parts.

    Artifacts: ``solution`` (JSON from ``reuser.to_solution()``), ``lw-<sha256>`` per learnware zip, and
    optionally ``parts`` (a joblib file of the dock's own fitted sklearn parts such as a router or a ridge head;
    written by the dock itself, never by a learnware). ``predict`` runs each learnware in its runtime and
    combines through :func:`lwlib.reuse.combine.predict_solution`.
    """

    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        config = dict(getattr(context, "model_config", None) or {})
        arts: Mapping[str, str] = context.artifacts
        self._solution = json.loads(Path(arts[SOLUTION_ARTIFACT]).read_text(encoding="utf-8"))
        self._parts: dict[str, Any] = {}
        if PARTS_ARTIFACT in arts:
            import joblib

            self._parts = dict(joblib.load(arts[PARTS_ARTIFACT]))
        self._host = _RuntimeHost(str(config.get("runtime_mode", "auto")))
        keys = sorted(k for k in arts if k.startswith(_MEMBER_PREFIX))
        self._members: list[Any] = [self._host.open(arts[k], k) for k in keys]
        maps = self._parts.pop("column_maps", None)  # cross-feature-space solutions (lwlib.deployment.COLUMN_MAPS_PART)
        if maps:
            from lwlib.reuse.hetero import HeteroLearnware

            self._members = [HeteroLearnware(m, maps[m.id]) if m.id in maps else m for m in self._members]

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # MLflow reads hints
        return predict_solution(self._solution, self._members, _as_matrix(model_input), self._parts)

    def close(self) -> None:
        host = getattr(self, "_host", None)
        if host is not None:
            host.close()


def predict_solution(solution: Mapping[str, Any], predictors: Sequence[Any], X: np.ndarray,
                     parts: Mapping[str, Any] | None = None) -> Any:
    """Combine learnware outputs as the reuse package does; plain weighted averaging if it is unavailable."""
    try:
        from lwlib.reuse.combine import predict_solution as combine
    except ImportError:  # pragma: no cover - the reuse package ships with lwlib
        by_id = {str(p.id): p for p in predictors}
        ids = solution.get("learnware_ids") or list(by_id)
        outs = np.stack([np.asarray(by_id[i].predict(X), dtype=np.float64) for i in ids])
        w = np.asarray(solution.get("weights") or np.full(len(ids), 1.0 / len(ids)), dtype=np.float64)
        return np.tensordot(w / w.sum(), outs, axes=1)
    return combine(solution, predictors, X, parts)


def model_script(class_name: str) -> str:
    """Source of the models-from-code script MLflow stores instead of a pickle."""
    return ("import mlflow\n\n"
            f"from lwlib.registry.pyfunc import {class_name}\n\n"
            f"mlflow.models.set_model({class_name}())\n")
