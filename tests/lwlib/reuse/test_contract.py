"""One contract run over every reuser, as sklearn's estimator checks do."""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import pytest

from lwlib.base import clone
from lwlib.errors import LwdockError, NotFittedError
from lwlib.reuse import (AveragingReuser, EnsemblePruningReuser, FeatureAlignReuser, FeatureAugmentReuser,
                         JobSelectorReuser, predict_solution)
from lwlib.reuse.base import BaseReuser

# name -> (build reuser from a market, whether fit needs labels)
FACTORIES: dict[str, tuple[Callable[[Any], BaseReuser], bool]] = {
    "averaging": (lambda m: AveragingReuser(m.learnwares, task=m.task), False),
    "averaging_mixture": (lambda m: AveragingReuser(m.learnwares, task=m.task, weights="mixture"), False),
    "job_selector": (lambda m: JobSelectorReuser(m.learnwares, task=m.task, herding_size=300), False),
    "ensemble_pruning": (lambda m: EnsemblePruningReuser(m.learnwares, task=m.task), True),
    "feature_augment": (lambda m: FeatureAugmentReuser(m.learnwares, task=m.task), True),
    "feature_align": (lambda m: FeatureAlignReuser(m.learnwares[0], task=m.task, hidden=(16,), epochs=30,
                                                   n_restarts=1), False),
}


@pytest.fixture(params=sorted(FACTORIES))
def case(request: pytest.FixtureRequest, regression_market: Any) -> tuple[BaseReuser, Any, tuple]:
    build, needs_labels = FACTORIES[request.param]
    m = regression_market
    fit_args = (m.X_lab, m.y_lab) if needs_labels else (m.X_user,)
    return build(m), m, fit_args


def test_fit_returns_self_and_predicts_one_row_each(case: tuple) -> None:
    reuser, m, fit_args = case
    assert reuser.fit(*fit_args) is reuser
    pred = reuser.predict(m.X_user)
    assert pred.shape[0] == m.X_user.shape[0]
    assert np.isfinite(np.asarray(pred, dtype=float)).all()


def test_not_fitted_errors(case: tuple) -> None:
    reuser, m, _ = case
    with pytest.raises(NotFittedError):
        reuser.predict(m.X_user)
    with pytest.raises(NotFittedError):
        reuser.to_solution()


def test_clone_keeps_params_and_drops_state(case: tuple) -> None:
    reuser, m, fit_args = case
    reuser.fit(*fit_args)
    twin = clone(reuser)
    assert set(twin.get_params(deep=False)) == set(reuser.get_params(deep=False))
    assert twin.get_params(deep=False)["task"] == reuser.task
    with pytest.raises(NotFittedError):
        twin.predict(m.X_user)
    # same params, same data => same predictions (fitting is deterministic)
    np.testing.assert_allclose(np.asarray(twin.fit(*fit_args).predict(m.X_user), dtype=float),
                               np.asarray(reuser.predict(m.X_user), dtype=float))


def test_set_params_works_and_is_validated_at_fit(case: tuple) -> None:
    reuser, _, fit_args = case
    assert reuser.set_params(task="classification") is reuser
    assert reuser.get_params()["task"] == "classification"
    reuser.set_params(task="banana")
    with pytest.raises(LwdockError, match="task"):
        reuser.fit(*fit_args)


def test_shape_and_value_errors(case: tuple) -> None:
    reuser, m, fit_args = case
    reuser.fit(*fit_args)
    with pytest.raises(LwdockError, match="features"):
        reuser.predict(m.X_user[:, :-1])
    bad = m.X_user[:5].copy()
    bad[0, 0] = np.nan
    with pytest.raises(LwdockError, match="NaN"):
        reuser.predict(bad)
    with pytest.raises(LwdockError):
        clone(reuser).fit(m.X_lab, m.y_lab[:-1])


def test_solution_is_json_and_recomputes_predict(case: tuple) -> None:
    reuser, m, fit_args = case
    reuser.fit(*fit_args)
    solution = json.loads(json.dumps(reuser.to_solution()))
    assert solution["kind"] == reuser.kind
    assert set(solution["learnware_ids"]) <= {lw.id for lw in m.learnwares}
    shuffled = list(reversed(m.learnwares))  # predictors are matched by id, not position
    np.testing.assert_array_equal(predict_solution(solution, shuffled, m.X_user, parts=reuser.parts()),
                                  reuser.predict(m.X_user))
