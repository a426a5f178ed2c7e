"""Which reuser the deploying stage picks (lwlib.deployment.choose_reuser)."""

from __future__ import annotations

import pytest

from lwlib.deployment import choose_reuser
from lwlib.search.result import MixtureMatch, SearchResult, SingleMatch


def _result(with_mixture: bool) -> SearchResult:
    singles = tuple(SingleMatch(f"lw{i}", 0.9 - i / 10, 0.1 + i / 10, i) for i in range(4))
    mixtures = (MixtureMatch(("lw0", "lw2"), (0.7, 0.3), 0.95, 0.05),) if with_mixture else ()
    return SearchResult(singles, mixtures, (), {}, "")


def test_auto_without_labels_averages_the_mixture_uniformly() -> None:
    assert choose_reuser("auto", _result(True)) == ("averaging", ["lw0", "lw2"], [0.5, 0.5])


def test_auto_without_mixture_is_top1() -> None:
    assert choose_reuser("auto", _result(False)) == ("top1", ["lw0"], [1.0])


@pytest.mark.parametrize("n_labels, expected", [(9, "averaging"), (10, "ensemble_pruning")])
def test_auto_switches_to_label_learning_at_ten_labels(n_labels: int, expected: str) -> None:
    assert choose_reuser("auto", _result(True), n_labels=n_labels)[0] == expected


def test_explicit_averaging_keeps_mixture_weights() -> None:
    assert choose_reuser("averaging", _result(True)) == ("averaging", ["lw0", "lw2"], [0.7, 0.3])


def test_feature_augment_when_few_candidates() -> None:
    res = SearchResult(_result(False).singles[:2], (), (), {}, "")
    assert choose_reuser("auto", res, n_labels=50)[0] == "feature_augment"
