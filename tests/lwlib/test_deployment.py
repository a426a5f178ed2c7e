"""The deploying stage's pure parts: which learnwares an explicit reuser takes, and the one result renderer."""

from __future__ import annotations

from lwlib.catalog import LearnwareRecord
from lwlib.deployment import choose_reuser, result_rows
from lwlib.search.result import MixtureMatch, SearchResult, SingleMatch
from lwlib.status import Status


def _result(with_mixture: bool) -> SearchResult:
    singles = tuple(SingleMatch(f"lw{i}", 0.9 - i / 10, 0.1 + i / 10, i) for i in range(4))
    mixtures = (MixtureMatch(("lw0", "lw2"), (0.7, 0.3), 0.95, 0.05),) if with_mixture else ()
    return SearchResult(singles, mixtures, (), {}, "")


def test_top1_takes_the_first_single() -> None:
    assert choose_reuser("top1", _result(True)) == ("top1", ["lw0"], [1.0])


def test_explicit_averaging_and_job_selector_keep_the_mixture_and_its_weights() -> None:
    assert choose_reuser("averaging", _result(True)) == ("averaging", ["lw0", "lw2"], [0.7, 0.3])
    assert choose_reuser("job_selector", _result(True))[1] == ["lw0", "lw2"]


def test_learning_reusers_take_the_best_singles() -> None:
    kind, ids, weights = choose_reuser("ensemble_pruning", _result(False), n_labels=50)
    assert kind == "ensemble_pruning" and ids == ["lw0", "lw1", "lw2", "lw3"] and sum(weights) == 1.0


def test_result_rows_show_names_with_ids_beside_and_mixture_weights() -> None:
    records = {"lw0": LearnwareRecord(id="0" * 64, name="Digits 0-9", status=Status.USABLE)}
    rows = result_rows(_result(True), records)
    assert rows[0]["name"] == "Digits 0-9" and rows[0]["id"] == "lw0"[:12]
    assert rows[1]["name"] == "lw1"  # unknown ids fall back to the id
    assert rows[-1]["rank"] == "mixture" and rows[-1]["weights"] == "0.70, 0.30"
