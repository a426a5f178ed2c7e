"""Scenario builders: deterministic, the promised counts, truth for every user, sane baselines."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from benchmarks.metrics import best_in_market, loss, market_losses, mean_in_market
from benchmarks.scenarios import Scenario, available_scenarios, build
from benchmarks.scenarios.image import FASHION_DIR, load_image_pools
from benchmarks.errors import BenchmarkDataError

FAST = ["tabular", "tabular_hetero", "image"]
SEMANTIC_KEYS = {"Data", "Task", "Library", "Scenario", "License", "Name", "Description", "Input", "Output"}


@lru_cache(maxsize=None)
def _built(name: str, seed: int = 0) -> Scenario:
    return build(name, "small", seed)


def _fingerprint(sc: Scenario) -> tuple:
    return (
        tuple(lw.name for lw in sc.learnwares),
        tuple(lw.X_train.shape for lw in sc.learnwares),
        tuple(u.name for u in sc.users),
        tuple(u.X.shape for u in sc.users),
        tuple(u.y.tobytes() for u in sc.users),
        tuple(u.y_label.tobytes() for u in sc.users),
    )


def test_registry_lists_scenarios_and_rejects_unknown() -> None:
    assert set(FAST + ["text"]) <= set(available_scenarios())
    with pytest.raises(BenchmarkDataError, match="unknown benchmark scenario"):
        build("no-such-scenario")
    with pytest.raises(BenchmarkDataError, match="size"):
        build("tabular", size="huge")


@pytest.mark.parametrize("name", FAST)
def test_build_is_deterministic_per_seed(name: str) -> None:
    first = _built(name)
    again = build(name, "small", 0)
    assert _fingerprint(first) == _fingerprint(again)
    np.testing.assert_array_equal(first.learnwares[0].X_train, again.learnwares[0].X_train)
    np.testing.assert_array_equal(first.learnwares[0].model.predict(first.users[0].view(
        first.learnwares[0].feature_space)), again.learnwares[0].model.predict(again.users[0].view(
            again.learnwares[0].feature_space)))
    assert _fingerprint(first) != _fingerprint(_built(name, 1))


@pytest.mark.parametrize(("name", "n_learnwares", "n_users"), [("tabular", 22, 10), ("tabular_hetero", 22, 10),
                                                                ("image", 20, 10)])
def test_small_sizes_and_well_formed_users(name: str, n_learnwares: int, n_users: int) -> None:
    sc = _built(name)
    assert (len(sc.learnwares), len(sc.users)) == (n_learnwares, n_users)
    assert len({lw.name for lw in sc.learnwares}) == n_learnwares
    names = {lw.name for lw in sc.learnwares}
    for lw in sc.learnwares:
        assert lw.X_train.dtype == np.float64 and lw.X_train.ndim == 2 and np.isfinite(lw.X_train).all()
        assert SEMANTIC_KEYS <= set(lw.semantic)
        assert lw.semantic["Input"]["Dimension"] == lw.X_train.shape[1]
        assert lw.semantic["Name"]["Values"] == lw.name
        assert (lw.X_train.std(axis=0) > 0).mean() > 0.5  # feature scales are not degenerate
    for user in sc.users:
        assert user.X.shape[0] == user.y.shape[0] > 0
        assert user.X_label.shape[0] == user.y_label.shape[0]
        assert user.X_label.shape[1] == user.X.shape[1]
        assert np.isfinite(user.X).all()
        assert user.semantic_query["Input"]["Dimension"] == user.X.shape[1]
        assert set(user.truth_learnwares) <= names


def test_tabular_has_market_and_new_groups_with_truth() -> None:
    sc = _built("tabular")
    market = {lw.group for lw in sc.learnwares}
    held = [u for u in sc.users if u.truth_learnwares]
    assert held and len(held) < len(sc.users)  # some users come from series outside the market
    for u in held:
        lw = sc.learnware(u.truth_learnwares[0])
        assert lw.group in u.name and lw.group in market
        assert lw.X_train.shape[0] == u.X_label.shape[0]  # the labelled pool is that series' training period
    # groups genuinely differ: the spread of target variance across users is wide
    variances = np.array([u.y.var() for u in sc.users])
    assert variances.max() > 3 * variances.min()


def test_hetero_users_differ_from_every_learnware_space() -> None:
    sc = _built("tabular_hetero")
    lw_spaces = {lw.feature_space for lw in sc.learnwares}
    assert len(lw_spaces) == 2
    lw_dims = {lw.X_train.shape[1] for lw in sc.learnwares}
    for user in sc.users:
        assert user.feature_space not in lw_spaces
        assert user.X.shape[1] not in lw_dims
        assert set(user.views) == lw_spaces  # oracle views, same rows
        assert all(v.shape[0] == user.X.shape[0] for v in user.views.values())


def test_loss_functions() -> None:
    assert loss("regression", [1.0, 2.0, 3.0], [1.0, 4.0, 3.0]) == pytest.approx(4.0 / 3.0)
    assert loss("classification", [0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(0.25)
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert loss("classification", [0, 1, 1], scores) == pytest.approx(1.0 / 3.0)
    assert loss("regression", np.array([1.0, 2.0]), np.array([[1.0], [2.0]])) == 0.0
    with pytest.raises(BenchmarkDataError):
        loss("regression", [1.0, 2.0], [1.0])
    with pytest.raises(BenchmarkDataError):
        loss("ranking", [1.0], [1.0])


@pytest.mark.parametrize("name", FAST)
def test_best_in_market_not_worse_than_mean(name: str) -> None:
    sc = _built(name)
    means, bests = [], []
    for user in sc.users:
        losses = market_losses(sc, user)
        best, which = best_in_market(sc, user, losses)
        mean = mean_in_market(sc, user, losses)
        assert best <= mean + 1e-12
        assert losses[which] == best and best == min(losses.values())
        assert mean == pytest.approx(np.mean(list(losses.values())))
        means.append(mean)
        bests.append(best)
    assert np.mean(bests) < np.mean(means)
    user, lw = sc.users[0], sc.learnwares[0]
    assert market_losses(sc, user)[lw.name] == pytest.approx(
        loss(sc.task, user.y, lw.model.predict(user.view(lw.feature_space))))
    assert best_in_market(sc, user) == best_in_market(sc, user, market_losses(sc, user))


def test_image_learnwares_are_specialists() -> None:
    sc = _built("image")
    assert sc.info["pixel_max"] == 16.0  # digits pixels stay raw (0-16)
    X = np.concatenate([u.X for u in sc.users])
    y = np.concatenate([u.y for u in sc.users])
    own_acc, other_acc = [], []
    with threadpool_limits(1):
        preds = [lw.model.predict(X) for lw in sc.learnwares]
        train_preds = [lw.model.predict(lw.X_train) for lw in sc.learnwares]
    for lw, pred, train_pred in zip(sc.learnwares, preds, train_preds, strict=True):
        classes = np.array([int(c) for c in lw.group.split("-")])
        mine = np.isin(y, classes)
        own_acc.append(np.mean(pred[mine] == y[mine]))
        other_acc.append(np.mean(pred[~mine] == y[~mine]))
        counts = np.bincount(train_pred, minlength=10)
        assert np.count_nonzero(counts) <= 4
    assert np.mean(own_acc) > 0.8
    assert np.mean(own_acc) > np.mean(other_acc) + 0.5
    for user in sc.users:
        shares = np.sort(np.bincount(user.y, minlength=10))[::-1] / user.y.size
        np.testing.assert_allclose(shares[:6], [0.3, 0.3, 0.1, 0.1, 0.1, 0.1], atol=0.01)


@pytest.mark.skipif(not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file(), reason="dataset-fashion-mnist absent")
def test_fashion_idx_reader() -> None:
    pools = load_image_pools("fashion")
    assert pools.X_train.shape == (60000, 784) and pools.X_test.shape == (10000, 784)
    assert np.bincount(pools.y_test).tolist() == [1000] * 10
    assert pools.X_train.max() == 255.0


@pytest.mark.slow
def test_text_scenario_builds_from_cached_embeddings() -> None:
    sc = build("text", "small", 0)
    assert (len(sc.learnwares), len(sc.users)) == (20, 10)
    for lw in sc.learnwares:
        assert lw.X_train.shape[1] == 384 and len(np.unique(lw.model.predict(lw.X_train))) <= 3
    for user in sc.users:
        assert user.X.shape[1] == 384 and len(np.unique(user.y)) == 2
        best, _ = best_in_market(sc, user)
        assert best <= mean_in_market(sc, user)
