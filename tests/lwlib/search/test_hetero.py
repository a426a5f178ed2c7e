"""Heterogeneous search and reuse: description column maps, cross-space ranking, reuse through the map."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from lwlib.errors import NotFittedError, SearchError
from lwlib.reuse import AveragingReuser, InProcessLearnware, JobSelectorReuser
from lwlib.reuse.hetero import AlignedLearnware, HeteroLearnware, pullback_spec, reusable_in_user_space
from lwlib.search.hetero import (ColumnMap, HeteroSearcher, align_by_descriptions, combined_score,
                                 description_similarity, input_descriptions)
from lwlib.semantic import SemanticSpec
from lwlib.rkme.rkme import RKMETableSpec

# Six latent columns, each with a description; feature engineerings pick subsets in their own order and wording.
LATENT = ("outdoor temperature in degrees celsius", "relative humidity percent", "wind speed in km per hour",
          "hours of sunshine per day", "rainfall in millimetres", "atmospheric pressure in hectopascal")
REWORDED = ("Outdoor temperature (degrees Celsius)", "Relative humidity, percent", "Wind speed in km per hour",
            "Sunshine hours per day", "Rainfall (millimetres)", "Atmospheric pressure, hectopascal")
SPACE_P = (0, 1, 2, 3, 4)      # 5 columns, latent order
SPACE_Q = (5, 3, 1, 0, 2)      # 5 columns, shuffled, other subset
USER = (2, 0, 5, 1)            # 4 columns, shuffled, in no learnware's space
CENTRES = np.array([[-4.0, 0, 0, 0, 0, 0], [0, 4.0, 0, 0, 0, 0], [4.0, -4.0, 2, 0, 0, 0]])
WEIGHTS = np.array([[1.0, -2.0, 0.5, 0, 0, 0], [-1.5, 1.0, 2.0, 0, 0, 0], [2.0, 0.5, -1.0, 0, 0, 0]])


def _latent(c: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    L = CENTRES[c] + rng.normal(size=(n, 6))
    L[:, 3] += 0.8 * L[:, 0]  # a column the user lacks but can be predicted from one it has
    return L, L @ WEIGHTS[c] + 0.1 * rng.normal(size=n)


def _semantic(cols: tuple[int, ...], texts: tuple[str, ...] = LATENT) -> SemanticSpec:
    return SemanticSpec.from_reference({
        "Data": {"Type": "Class", "Values": ["Table"]}, "Task": {"Type": "Class", "Values": ["Regression"]},
        "Library": {"Type": "Class", "Values": ["Scikit-learn"]}, "Scenario": {"Type": "Tag", "Values": ["Nature"]},
        "License": {"Type": "Class", "Values": ["MIT"]}, "Name": {"Type": "String", "Values": "lw"},
        "Description": {"Type": "String", "Values": "weather model"},
        "Input": {"Dimension": len(cols), "Description": {str(i): texts[c] for i, c in enumerate(cols)}},
        "Output": {"Dimension": 1, "Description": {"0": "next-day energy demand"}}})


@pytest.fixture(scope="module")
def market() -> dict:
    rng = np.random.default_rng(0)
    lws, entries = {}, []
    for space, cols in (("P", SPACE_P), ("Q", SPACE_Q)):
        for c in range(3):
            L, y = _latent(c, 300, rng)
            X = L[:, cols]
            spec = RKMETableSpec(reduced_set_size=30).fit(X)
            name = f"{space}-{c}"
            lws[name] = (InProcessLearnware(name, LinearRegression().fit(X, y), spec), cols)
            entries.append((name, _semantic(cols), {spec.type_name: spec}))
    searcher = HeteroSearcher(max_mixture=3, user_reduced_set_size=30).fit(entries)
    L, y = _latent(1, 200, rng)
    return {"lws": lws, "searcher": searcher, "L": L, "y": y, "X": L[:, USER],
            "desc": {i: REWORDED[c] for i, c in enumerate(USER)}}


def test_right_learnware_is_top1_across_spaces(market: dict) -> None:
    res = market["searcher"].search(market["X"], market["desc"])
    assert res.singles[0].learnware_id in {"P-1", "Q-1"}
    spaces = {m.space for m in res.matches.values()}
    assert len(spaces) == 2  # both feature spaces were searched and offered
    scores = [s.score for s in res.singles]
    assert scores == sorted(scores, reverse=True) and [s.rank for s in res.singles] == list(range(len(scores)))


def test_predictions_through_the_map_beat_mean_in_market(market: dict) -> None:
    res = market["searcher"].search(market["X"], market["desc"])
    top = res.singles[0].learnware_id
    lw = HeteroLearnware(market["lws"][top][0], res.matches[top].column_map, user_X=market["X"])
    mse = float(np.mean((lw.predict(market["X"]) - market["y"]) ** 2))
    oracle = [float(np.mean((m.predict(market["L"][:, cols]) - market["y"]) ** 2))
              for m, cols in market["lws"].values()]  # every learnware on the user's rows in its own space
    assert mse < 0.5 * np.mean(oracle)


def test_existing_reusers_work_through_hetero_learnwares(market: dict) -> None:
    res = market["searcher"].search(market["X"], market["desc"])
    ids = [m.learnware_id for m in res.singles[:3]]
    members = [HeteroLearnware(market["lws"][i][0], res.matches[i].column_map, user_X=market["X"]) for i in ids]
    assert all(m.spec.z_.shape[1] == len(USER) for m in members)
    for reuser in (AveragingReuser(members, task="regression"), JobSelectorReuser(members, task="regression")):
        pred = reuser.fit(market["X"]).predict(market["X"])
        assert pred.shape == (len(market["y"]),) and np.all(np.isfinite(pred))


def test_missing_descriptions_give_empty_result_with_message(market: dict) -> None:
    res = market["searcher"].search(market["X"], {})
    assert res.empty and "descriptions" in res.message and "FeatureAlignReuser" in res.message
    res = market["searcher"].search(market["X"], {0: "number of goals scored", 1: "stadium capacity"})
    assert res.empty and "min coverage" in res.message


def test_fallback_to_feature_align_without_a_map(market: dict) -> None:
    lw = market["lws"]["P-1"][0]
    out = reusable_in_user_space(lw, None, market["X"], task="regression", epochs=20, n_restarts=1, hidden=(8,))
    assert isinstance(out, AlignedLearnware) and out.id == "P-1"
    assert out.predict(market["X"]).shape == (len(market["y"]),)
    cmap = align_by_descriptions(market["desc"], dict(enumerate(LATENT[c] for c in SPACE_P)), n_user=4,
                                 n_target=5).with_spec(lw.spec)
    assert isinstance(reusable_in_user_space(lw, cmap, market["X"]), HeteroLearnware)


def test_column_map_copies_matched_columns_and_fills_the_rest() -> None:
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(200, 4))
    Z[:, 2] = 2.0 * Z[:, 0] - Z[:, 1] + 3.0  # exactly determined by the matched columns
    spec = RKMETableSpec(reduce=False).fit(Z)
    cmap = align_by_descriptions({0: "b", 1: "a", 2: "ignored"}, {0: "a", 1: "b", 2: "c", 3: "d"},
                                 n_user=3, n_target=4)
    assert cmap.user_cols.tolist() == [1, 0] and cmap.target_cols.tolist() == [0, 1]
    assert cmap.dropped_cols.tolist() == [2] and cmap.missing_cols.tolist() == [2, 3]
    with pytest.raises(SearchError, match="with_spec"):
        cmap.transform(np.zeros((2, 3)))
    Xu = rng.normal(size=(5, 3))
    lin = cmap.with_spec(spec).transform(Xu)
    np.testing.assert_allclose(lin[:, [0, 1]], Xu[:, [1, 0]])
    np.testing.assert_allclose(lin[:, 2], 2.0 * Xu[:, 1] - Xu[:, 0] + 3.0, atol=0.02)  # ridge shrinks a little
    mean = cmap.with_spec(spec, fill="mean").transform(Xu)
    np.testing.assert_allclose(mean[:, 3], Z[:, 3].mean())
    assert cmap.with_spec(spec).coverage > cmap.with_spec(spec, fill="mean").coverage
    with pytest.raises(SearchError, match="3 columns"):
        cmap.transform(np.zeros((2, 5)))
    back = pullback_spec(spec, cmap.with_spec(spec), Xu)
    np.testing.assert_allclose(back.z_[:, [1, 0]], Z[:, [0, 1]])


def test_matching_respects_numbers_and_substituted_words() -> None:
    user = {0: "growth 1 month before", 1: "max minus min growth over the last 12 months"}
    lw = {0: "growth 12 month(s) before", 1: "growth 1 month(s) before", 2: "std of growth over the last 12 months"}
    cmap = align_by_descriptions(user, lw)
    assert cmap.user_cols.tolist() == [0] and cmap.target_cols.tolist() == [1]
    S = description_similarity(["sin of month"], ["sin of month", "cos of month"])
    assert S[0, 0] == pytest.approx(1.0) and S[0, 1] < 0.8


def test_input_descriptions_reads_both_formats() -> None:
    spec = _semantic(SPACE_Q)
    assert input_descriptions(spec) == input_descriptions(spec.to_reference()) == \
        {i: LATENT[c] for i, c in enumerate(SPACE_Q)}
    assert input_descriptions(None) == {}


def test_combined_score_discounts_low_coverage_but_keeps_order() -> None:
    assert combined_score(1.0, 0.3) == 1.0
    assert combined_score(0.99, 0.5) < combined_score(0.99, 0.9) < 0.99 + 1e-12
    assert combined_score(0.999, 0.5) > combined_score(0.99, 0.9)


def test_search_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        HeteroSearcher().search(np.zeros((3, 2)), {0: "a"})
    assert isinstance(align_by_descriptions({}, {0: "a"}), ColumnMap)
