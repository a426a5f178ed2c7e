from __future__ import annotations

import json

import numpy as np
import pytest
from reuse_markets import fn_learnware

from lwlib.errors import ReuseError
from lwlib.reuse import (AveragingReuser, EnsemblePruningReuser, FeatureAugmentReuser, JobSelectorReuser,
                         predict_solution)
from lwlib.reuse.combine import (augment_features, average_values, mean_proba, mlp_forward, route_rows,
                                 vote_labels)


def test_average_values_rejects_mixed_shapes() -> None:
    with pytest.raises(ReuseError, match="shape"):
        average_values([np.zeros((3, 2)), np.zeros((3, 1))])
    np.testing.assert_allclose(average_values([np.ones(3), 3 * np.ones(3)], [1, 3]), 2.5 * np.ones(3))


def test_vote_ties_go_to_the_smallest_label_and_strings_work() -> None:
    np.testing.assert_array_equal(vote_labels([np.array([3, 1]), np.array([1, 3])]), [1, 1])
    np.testing.assert_array_equal(vote_labels([np.array(["b"]), np.array(["a"]), np.array(["b"])]), ["b"])


def test_mean_proba_mixes_labels_and_probabilities() -> None:
    P = mean_proba([np.array([2, 0]), np.array([[0.2, 0.8], [1.0, 0.0]])])
    np.testing.assert_allclose(P, [[0.1, 0.4, 0.5], [1.0, 0.0, 0.0]])


def test_route_rows_scatters_back_in_order() -> None:
    lws = [fn_learnware("a", lambda X: X[:, 0] * 10), fn_learnware("b", lambda X: -X[:, 0])]
    X = np.arange(6.0).reshape(6, 1)
    out = route_rows(lws, np.array([1, 0, 1, 1, 0, 0]), X)
    np.testing.assert_array_equal(out, [-0.0, 10, -2, -3, 40, 50])
    assert lws[0].model.calls == [3] and lws[1].model.calls == [3]


def test_augment_features_fill_and_one_hot() -> None:
    X = np.zeros((2, 1))
    A = augment_features(X, [np.array([1, 2]), np.array([[np.nan], [4.0]])], fill_values=np.array([0, 0, 0, 0, 7.0]),
                         output_classes=[1, 2, 3], label_outputs=[True, False])
    np.testing.assert_array_equal(A, [[0, 1, 0, 0, 7], [0, 0, 1, 0, 4]])


def test_mlp_forward_is_affine_without_hidden_layers() -> None:
    mapper = {"x_mean": [1.0, 1.0], "x_scale": [2.0, 2.0], "t_mean": [5.0], "t_scale": [10.0],
              "layers": [{"W": [[1.0, -1.0]], "b": [0.5]}]}
    np.testing.assert_allclose(mlp_forward(mapper, np.array([[3.0, 1.0]])), [[5.0 + 10.0 * 1.5]])


def test_predict_solution_errors() -> None:
    lw = fn_learnware("a", lambda X: X[:, 0])
    with pytest.raises(ReuseError, match="'b'"):
        predict_solution({"kind": "averaging", "learnware_ids": ["b"], "mode": "mean"}, [lw], np.zeros((2, 1)))
    with pytest.raises(ReuseError, match="unknown solution kind"):
        predict_solution({"kind": "magic", "learnware_ids": ["a"]}, [lw], np.zeros((2, 1)))
    with pytest.raises(ReuseError, match="router"):
        predict_solution({"kind": "job_selector", "learnware_ids": ["a", "a"]}, [lw], np.zeros((2, 1)))


@pytest.mark.parametrize("build", [
    lambda m: AveragingReuser(m.learnwares, weights="mixture").fit(m.X_user),
    lambda m: AveragingReuser(m.learnwares, mode="vote_by_label").fit(m.X_user),
    lambda m: JobSelectorReuser(m.learnwares, herding_size=300).fit(m.X_user),
    lambda m: EnsemblePruningReuser(m.learnwares).fit(m.X_lab, m.y_lab),
    lambda m: FeatureAugmentReuser(m.learnwares).fit(m.X_lab, m.y_lab),
], ids=["avg-mixture", "avg-vote", "job-selector", "pruning", "augment"])
def test_solution_roundtrip_on_classification(build, digits_market) -> None:
    m = digits_market
    r = build(m)
    sol = json.loads(json.dumps(r.to_solution()))
    np.testing.assert_array_equal(predict_solution(sol, m.learnwares, m.X_user, parts=r.parts()), r.predict(m.X_user))
