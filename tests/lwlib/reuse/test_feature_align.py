from __future__ import annotations

import numpy as np
import pytest
from reuse_markets import fn_learnware
from sklearn.linear_model import LogisticRegression

from lwlib.errors import ReuseError
from lwlib.reuse import FeatureAlignReuser, InProcessLearnware, predict_solution
from lwlib.rkme.rkme import RKMETableSpec

CENTRES = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 3.0, 1.5]])
SPREADS = np.array([0.4, 0.7, 1.0])
PROPORTIONS = np.array([0.55, 0.3, 0.15])  # majority-class "chance" accuracy is 0.55


def _draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.choice(3, n, p=PROPORTIONS)
    return CENTRES[y] + SPREADS[y, None] * rng.normal(size=(n, 3)), y


@pytest.fixture(scope="module")
def task() -> dict:
    """A learnware classifying three unequal clusters, and user rows in a transformed copy of its space."""
    rng = np.random.default_rng(0)
    Xa, ya = _draw(600, rng)
    lw = InProcessLearnware("clusters", LogisticRegression().fit(Xa, ya),
                            RKMETableSpec(reduced_set_size=50, random_state=0).fit(Xa))
    Xu, yu = _draw(300, rng)
    return {"lw": lw, "Xu": Xu, "yu": yu, "mix": rng.normal(size=(3, 3)), "perm": np.eye(3)[[2, 0, 1]]}


@pytest.mark.parametrize("transform", ["perm", "mix"])
@pytest.mark.parametrize("hidden", [(), (64,)])
def test_recovers_a_permuted_or_mixed_space(task: dict, transform: str, hidden: tuple) -> None:
    X_user = task["Xu"] @ task[transform]
    naive = (task["lw"].predict(X_user) == task["yu"]).mean()  # feeding the columns as they are
    r = FeatureAlignReuser(task["lw"], hidden=hidden, epochs=200, n_restarts=2).fit(X_user)
    acc = (r.predict(X_user) == task["yu"]).mean()
    assert acc > 0.85 > PROPORTIONS.max() + 0.25
    assert acc > naive + 0.2
    assert r.transform(X_user).shape == (300, 3)


def test_different_width_and_determinism(task: dict) -> None:
    rng = np.random.default_rng(5)
    X_user = np.hstack([task["Xu"] @ task["mix"], rng.normal(size=(300, 1))])  # 4 user columns -> 3
    a = FeatureAlignReuser(task["lw"], hidden=(32,), epochs=200, n_restarts=2).fit(X_user)
    b = FeatureAlignReuser(task["lw"], hidden=(32,), epochs=200, n_restarts=2).fit(X_user)
    np.testing.assert_array_equal(a.transform(X_user), b.transform(X_user))
    assert (a.predict(X_user) == task["yu"]).mean() > 0.75


def test_supervised_refinement_and_solution(task: dict) -> None:
    X_user = task["Xu"] @ task["mix"]
    r = FeatureAlignReuser(task["lw"], hidden=(), epochs=200, n_restarts=2).fit(X_user[:30], task["yu"][:30])
    assert r.head_ is not None and "head" in r.parts()
    assert (r.predict(X_user[30:]) == task["yu"][30:]).mean() > 0.85
    sol = r.to_solution()
    assert sol["augment"]["output_classes"] == [0, 1, 2]
    np.testing.assert_array_equal(predict_solution(sol, [task["lw"]], X_user, parts=r.parts()), r.predict(X_user))
    with pytest.raises(ReuseError, match="head"):
        predict_solution(sol, [task["lw"]], X_user)


def test_needs_spec_and_user_rows(task: dict) -> None:
    with pytest.raises(ReuseError) as err:
        FeatureAlignReuser(fn_learnware("bare", lambda X: X[:, 0])).fit(np.zeros((5, 2)))
    assert err.value.code == "spec_required"
    with pytest.raises(ReuseError) as err:
        FeatureAlignReuser(task["lw"]).fit()
    assert err.value.code == "user_data_required"
