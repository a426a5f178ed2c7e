"""Label-aware spec: outputs at the RKME points, JSON round trip (old specs untouched), validation of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, Ridge

from lwlib.errors import SpecFormatError
from lwlib.rkme.label_aware import (LABEL_AWARE_TYPE, LabelAwareSpec, make_label_aware_spec, outputs_to_matrix,
                                    rkme_digest)
from lwlib.rkme.rkme import RKMETableSpec


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, RKMETableSpec]:
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600], RKMETableSpec(reduced_set_size=30, n_iter=2).fit(X[:600])


def test_classifier_outputs_become_one_hot_rows_at_the_rkme_points(digits) -> None:
    X, y, rkme = digits
    model = LogisticRegression(max_iter=2000).fit(X, y)
    spec = make_label_aware_spec(rkme, model.predict, "classification", n_classes=10)
    assert spec.outputs_.shape == (30, 10) and spec.output_kind_ == "labels"
    np.testing.assert_array_equal(spec.outputs_.argmax(1), model.predict(rkme.z_))
    assert spec.matches(rkme.z_, rkme.beta_)
    assert not spec.matches(rkme.z_ + 1.0, rkme.beta_)


def test_probabilities_are_kept_and_logits_softmaxed(digits) -> None:
    X, y, rkme = digits
    model = LogisticRegression(max_iter=2000).fit(X, y)
    proba = make_label_aware_spec(rkme, model.predict_proba, "classification")
    np.testing.assert_allclose(proba.outputs_, model.predict_proba(rkme.z_))
    logits = make_label_aware_spec(rkme, model.decision_function, "classification")
    np.testing.assert_allclose(logits.outputs_.sum(1), 1.0)
    np.testing.assert_array_equal(logits.outputs_.argmax(1), model.predict(rkme.z_))


def test_json_round_trip_and_rkme_json_unchanged(digits, tmp_path) -> None:
    X, y, rkme = digits
    before = rkme.to_json()
    reg = Ridge().fit(X, y.astype(float))
    spec = make_label_aware_spec(rkme, reg.predict, "regression")
    path = spec.save(tmp_path / "la.json")
    d = json.loads(path.read_text())
    assert d["type"] == LABEL_AWARE_TYPE and "z" not in d and len(d["outputs"]) == 30
    back = LabelAwareSpec.load(path)
    np.testing.assert_allclose(back.outputs_, spec.outputs_)
    assert back.rkme_digest_ == rkme_digest(rkme.z_, rkme.beta_) and back.task_ == "regression"
    assert rkme.to_json() == before  # the reference's fields are untouched
    again = RKMETableSpec.from_dict(json.loads(before))
    np.testing.assert_array_equal(again.z_, rkme.z_)


@pytest.mark.parametrize("bad, code", [
    ({"outputs": [[0.5, 0.2]]}, "spec_shape"),           # rows not on the simplex
    ({"num_points": 2}, "spec_shape"),                  # outputs rows != num_points
    ({"type": "RKMETableSpecification"}, "spec_type_mismatch"),
    ({"outputs": [["a", "b"]]}, "spec_shape"),
])
def test_from_dict_rejects_malformed_specs(bad: dict, code: str) -> None:
    good = {"type": LABEL_AWARE_TYPE, "version": 1, "task": "classification", "output_kind": "labels",
            "n_classes": 2, "num_points": 1, "rkme_digest": "ab", "outputs": [[1.0, 0.0]]}
    LabelAwareSpec.from_dict(good)
    with pytest.raises(SpecFormatError) as err:
        LabelAwareSpec.from_dict({**good, **bad})
    assert err.value.code == code


def test_outputs_that_cannot_be_a_spec_are_refused() -> None:
    with pytest.raises(SpecFormatError, match="one prediction per row"):
        outputs_to_matrix(np.zeros(3), 4, task="regression")
    with pytest.raises(SpecFormatError, match="NaN"):
        outputs_to_matrix(np.array([1.0, np.nan]), 2, task="regression")
    with pytest.raises(SpecFormatError, match="outside"):
        outputs_to_matrix(np.array([0, 5]), 2, task="classification", n_classes=3)
