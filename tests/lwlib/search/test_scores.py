"""Score mappings: the absolute score's properties and the reference's relative normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from lwlib.search.scores import absolute_scores, reference_scores


def test_reference_scores_documented_example() -> None:
    s = reference_scores([0.01, 0.02, 0.05, 0.1, 0.3])
    np.testing.assert_allclose(s, [0.999, 0.964, 0.861, 0.70, 0.0], atol=1e-3)


def test_reference_scores_anchor_best_at_one_when_min_below_eps() -> None:
    s = reference_scores([0.0001, 0.2, 0.3, 0.4])
    assert s[0] == pytest.approx(1.0)
    assert s[-1] == pytest.approx(0.0)


def test_reference_scores_anchor_best_at_092_when_spread_small() -> None:
    s = reference_scores([1.0, 1.01, 1.02, 1.05])  # min above eps, tiny spread => best forced to 0.92
    assert s[0] == pytest.approx(0.92)
    assert np.all(np.diff(s) <= 0)


def test_reference_scores_degenerate_inputs() -> None:
    np.testing.assert_array_equal(reference_scores([0.3, 0.3]), [1.0, 1.0])
    assert reference_scores([]).size == 0


def test_absolute_scores_bounds_and_monotonic() -> None:
    s = absolute_scores([0.0, 0.1, 0.5, 2.0, np.nan], 0.5, [0.5, 0.5, 0.5, 0.5, 0.5])
    assert s[0] == 1.0 and s[3] == 0.0 and s[4] == 0.0
    assert np.all((s >= 0) & (s <= 1))
    assert s[0] > s[1] > s[2]


def test_absolute_scores_do_not_depend_on_other_items() -> None:
    a = absolute_scores([0.1, 0.2], 0.4, [0.4, 0.4])
    b = absolute_scores([0.1, 0.9, 5.0], 0.4, [0.4, 0.4, 0.4])
    assert a[0] == b[0]  # unlike the reference's min-max normalisation
    r1, r2 = reference_scores([0.1, 0.2]), reference_scores([0.1, 0.9, 5.0])
    assert r1[0] != r2[0]
