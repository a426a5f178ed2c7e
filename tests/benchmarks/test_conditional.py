"""shared_inputs: one input distribution, many labelling rules — the scenario P(X)-only matching cannot solve."""

from __future__ import annotations

import pytest

from benchmarks.labelled_eval import evaluate_labelled, fit_label_aware
from benchmarks.metrics import best_in_market, market_losses
from benchmarks.quality import fit_specs
from benchmarks.scenarios import build
from benchmarks.scenarios.conditional import labelling_rules


@pytest.fixture(scope="module")
def scenario():
    return build("shared_inputs", "small", 0)


def test_rules_are_distinct_groupings() -> None:
    rules = labelling_rules(12, 10, 0)
    assert len({tuple(r) for r in rules}) == 12
    assert all(2 <= r.max() + 1 <= 5 and set(range(r.max() + 1)) == set(r.tolist()) for r in rules)


def test_each_users_own_rule_is_the_best_learnware(scenario) -> None:
    assert (len(scenario.learnwares), len(scenario.users)) == (12, 10)
    for user in scenario.users[:4]:
        table = market_losses(scenario, user)
        assert best_in_market(scenario, user, table)[1] == user.truth_learnwares[0]


@pytest.mark.slow
def test_labels_find_the_rule_where_p_of_x_cannot(scenario) -> None:
    specs = fit_specs(scenario)
    la, _ = fit_label_aware(scenario, specs)
    out = evaluate_labelled(scenario, specs, la, budgets=(20,), auto_users=2)
    s = out["summary"]
    assert s["20"]["top1_is_best_share"] >= 0.8
    assert s["20"]["top1_ratio"] < s["auto_nolabel"]["top1_loss"] / s["20"]["best_loss"]
    assert {"auto", "top1_loss"} <= set(out["users"][0]["k"][20])
