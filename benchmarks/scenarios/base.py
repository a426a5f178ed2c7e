"""Benchmark scenario objects and the registry that builds them by name.

A scenario is the offline stand-in for one reference experiment (LEARNWARE_FORMAT.md §8.2–8.3): a market of fitted
models, each with the data an honest uploader would turn into a specification, and a list of user tasks whose
truth is kept apart for scoring only. Builders are pure Python (no Prefect, no MLflow) so flows, tests and notebooks
share exactly the same data.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from benchmarks.errors import BenchmarkDataError

__all__ = [
    "LearnwareSource",
    "UserTask",
    "Scenario",
    "SIZES",
    "register",
    "build",
    "available_scenarios",
    "reference_semantic",
    "fit_quietly",
]

logger = logging.getLogger(__name__)

SIZES = ("small", "full")
TaskName = Literal["classification", "regression"]
_BUILDER_MODULES = ("benchmarks.scenarios.tabular", "benchmarks.scenarios.image", "benchmarks.scenarios.text",
                    "benchmarks.scenarios.conditional")
_REGISTRY: dict[str, Callable[[str, int], Scenario]] = {}
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class LearnwareSource:
    """One uploader's contribution: a fitted model and the training data its specification is made from.

    Attributes
    ----------
    name : str
        Unique within the scenario; the learnware's semantic ``Name``.
    description : str
        Human text (also the semantic ``Description``).
    model : estimator
        Fitted sklearn estimator; ``model.predict(X)`` takes rows of ``X_train``'s feature space.
    X_train : ndarray of shape (n_samples, n_features), float64
        What the uploader fitted on; the RKME is generated from it.
    semantic : dict
        Reference-format semantic specification (LEARNWARE_FORMAT.md §2.1).
    group : str
        Source group (series, class set) the learnware was trained on.
    feature_space : str
        Name of the feature engineering; learnwares and users sharing it can be compared directly.
    """

    name: str
    description: str
    model: Any
    X_train: NDArray[np.float64]
    semantic: dict[str, Any]
    group: str
    feature_space: str = ""


@dataclass(frozen=True)
class UserTask:
    """One market user: unlabelled data to predict, a labelled pool for label-budget curves, and hidden truth.

    Attributes
    ----------
    X, y : ndarray
        Test data (what the user brings) and its truth (scoring only, never shown to searchers or reusers).
    X_label, y_label : ndarray
        Labelled data from the same distribution as ``X`` (may have zero rows).
    semantic_query : dict
        Reference-format user semantic spec; empty lists / strings mean "no filter".
    truth_learnwares : tuple of str
        Names of learnwares whose training distribution generated this user, when known.
    feature_space : str
        Feature engineering of ``X``.
    views : mapping of str to ndarray
        The same rows of ``X`` in other feature engineerings, for oracle baselines in heterogeneous scenarios only.
    """

    name: str
    X: NDArray[np.float64]
    y: NDArray[Any]
    X_label: NDArray[np.float64]
    y_label: NDArray[Any]
    semantic_query: dict[str, Any]
    truth_learnwares: tuple[str, ...] = ()
    feature_space: str = ""
    views: Mapping[str, NDArray[np.float64]] = field(default_factory=lambda: _EMPTY)

    def view(self, feature_space: str) -> NDArray[np.float64] | None:
        """Return ``X`` in ``feature_space`` (``None`` when the user's rows are not known there)."""
        if feature_space == self.feature_space:
            return self.X
        return self.views.get(feature_space)


@dataclass(frozen=True)
class Scenario:
    """A market and its users, plus what the scores mean.

    Attributes
    ----------
    name : str
    task : {'classification', 'regression'}
    learnwares : tuple of LearnwareSource
    users : tuple of UserTask
    feature_space : str
        Human summary of the feature space(s) in play.
    loss_name : str
        ``'mse'`` or ``'error'``.
    info : mapping
        Data source, size, seed and build facts for result files.
    """

    name: str
    task: TaskName
    learnwares: tuple[LearnwareSource, ...]
    users: tuple[UserTask, ...]
    feature_space: str
    loss_name: str
    info: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def learnware(self, name: str) -> LearnwareSource:
        """Return the learnware called ``name``."""
        for lw in self.learnwares:
            if lw.name == name:
                return lw
        raise BenchmarkDataError(f"scenario {self.name!r} has no learnware {name!r}; names are listed in "
                                 "scenario.learnwares.", code="unknown_learnware", name=name)


def reference_semantic(
    *,
    data: str,
    task: str,
    name: str = "",
    description: str = "",
    library: str | None = "Scikit-learn",
    scenarios: tuple[str, ...] = (),
    license: str | None = None,
    input_descriptions: list[str] | None = None,
    output_dimension: int | None = None,
    output_descriptions: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Build a semantic dict in the reference format (Class/Tag values are lists; empty means "no filter").

    Used both for learnwares (everything filled) and for user queries (library, licence, name left empty).
    """
    def _cls(value: str | None) -> dict[str, Any]:
        return {"Type": "Class", "Values": [value] if value else []}

    spec: dict[str, Any] = {
        "Data": _cls(data),
        "Task": _cls(task),
        "Library": _cls(library),
        "Scenario": {"Type": "Tag", "Values": list(scenarios)},
        "License": _cls(license),
        "Name": {"Type": "String", "Values": name},
        "Description": {"Type": "String", "Values": description},
    }
    if input_descriptions is not None:
        spec["Input"] = {"Dimension": len(input_descriptions),
                         "Description": {str(i): d for i, d in enumerate(input_descriptions)}}
    if output_dimension is not None:
        spec["Output"] = {"Dimension": int(output_dimension),
                          "Description": {str(k): v for k, v in (output_descriptions or {}).items()}}
    return spec


def fit_quietly(model: Any, X: NDArray[Any], y: NDArray[Any]) -> Any:
    """Fit ``model`` on one thread with convergence warnings silenced; returns the fitted model.

    One thread because on a shared 2-core box OpenMP spin-waiting made HistGradientBoosting up to 15x slower;
    silenced because a capped ``max_iter`` is a deliberate choice for small benchmark models.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def register(name: str) -> Callable[[Callable[[str, int], Scenario]], Callable[[str, int], Scenario]]:
    """Decorator: make ``builder(size, seed) -> Scenario`` buildable as ``build(name, ...)``."""
    def _wrap(builder: Callable[[str, int], Scenario]) -> Callable[[str, int], Scenario]:
        _REGISTRY[name] = builder
        return builder
    return _wrap


def _load_builders() -> None:
    for module in _BUILDER_MODULES:
        importlib.import_module(module)


def available_scenarios() -> list[str]:
    """Names accepted by :func:`build` (whether their data is installed is checked at build time)."""
    _load_builders()
    return sorted(_REGISTRY)


def build(name: str, size: str = "small", seed: int = 0) -> Scenario:
    """Build scenario ``name`` deterministically from offline data.

    Parameters
    ----------
    name : str
        One of :func:`available_scenarios` (e.g. ``'tabular'``, ``'tabular_hetero'``, ``'image'``, ``'text'``).
    size : {'small', 'full'}
        ``'small'`` for tests and demos (about 20 learnwares, 10 users), ``'full'`` for BENCHMARKS.md part A.
    seed : int
        Seeds every sampling and model; the same seed gives the same scenario.

    Raises
    ------
    BenchmarkDataError
        Unknown name or size, or the scenario's data set is not installed.
    """
    _load_builders()
    if name not in _REGISTRY:
        raise BenchmarkDataError(f"unknown benchmark scenario {name!r}; choose one of {sorted(_REGISTRY)}.",
                                 code="unknown_scenario", name=name)
    if size not in SIZES:
        raise BenchmarkDataError(f"scenario size must be one of {SIZES}, got {size!r}.", code="unknown_size",
                                 size=size)
    scenario = _REGISTRY[name](size, int(seed))
    logger.info("built scenario %s (%s, seed %d): %d learnwares, %d users", scenario.name, size, seed,
                len(scenario.learnwares), len(scenario.users))
    return scenario
