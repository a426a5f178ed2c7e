"""Semantic filters with the reference semantics, exact and fuzzy text matching."""

from __future__ import annotations

import pytest

from lwlib.errors import SearchError
from lwlib.search.semantic import SemanticSearcher
from lwlib.semantic import SemanticQuery, SemanticSpec, make_semantic_spec


def _spec(name: str, desc: str, **kw: object) -> SemanticSpec:
    task = kw.pop("task_type", "Classification")
    out = 1 if task == "Regression" else 3
    return make_semantic_spec(name=name, description=desc, input_dimension=4, output_dimension=out,
                              task_type=task, **kw)


@pytest.fixture(scope="module")
def entries() -> list[tuple[str, SemanticSpec | None]]:
    return [
        ("aa11", _spec("Iris flower classifier", "Predicts the species of iris flowers", scenarios=["Nature"])),
        ("bb22", _spec("House price model", "Regression of housing prices in cities", task_type="Regression",
                       scenarios=["Business", "Financial"], license="MIT")),
        ("cc33", _spec("Credit default", "Predicts loan default risk for banks", scenarios=["Financial"],
                       library_type="PyTorch")),
        ("dd44", None),
    ]


def _ids(matches: list) -> list[str]:
    return [m.learnware_id for m in matches]


def test_empty_query_keeps_everything(entries) -> None:
    assert sorted(_ids(SemanticSearcher().search(SemanticQuery(), entries))) == ["aa11", "bb22", "cc33", "dd44"]


def test_class_filter_allows_listed_values(entries) -> None:
    q = SemanticQuery(task_type=["Regression", "Segmentation"])
    assert _ids(SemanticSearcher().search(q, entries)) == ["bb22"]
    q = SemanticQuery(library_type=["Scikit-learn"], license=["Apache-2.0"])
    assert sorted(_ids(SemanticSearcher().search(q, entries))) == ["aa11"]


def test_tag_filter_needs_intersection(entries) -> None:
    q = SemanticQuery(scenarios=["Financial", "Health"])
    assert sorted(_ids(SemanticSearcher().search(q, entries))) == ["bb22", "cc33"]


def test_missing_or_empty_value_fails_active_filter(entries) -> None:
    empty = SemanticSpec.model_construct(data_type="Table", task_type="Classification", library_type="Others",
                                         scenarios=[], license="MIT", name="x", description="y")
    got = _ids(SemanticSearcher().search(SemanticQuery(scenarios=["Nature"]), entries + [("ee55", empty)]))
    assert got == ["aa11"]  # neither the spec-less dd44 nor the empty-scenario ee55 pass


def test_learnware_id_substring_filter(entries) -> None:
    assert _ids(SemanticSearcher().search(SemanticQuery(learnware_id="B2"), entries)) == ["bb22"]


def test_exact_name_substring_over_name_and_description(entries) -> None:
    got = SemanticSearcher().search(SemanticQuery(name="loan default"), entries)
    assert _ids(got) == ["cc33"] and got[0].matched_on == "description" and got[0].score == 1.0
    got = SemanticSearcher().search(SemanticQuery(name="IRIS"), entries)
    assert _ids(got) == ["aa11"] and got[0].matched_on == "name"


def test_fuzzy_name_with_typos(entries) -> None:
    got = SemanticSearcher().search(SemanticQuery(name="iris flwoer clasifier"), entries)
    assert _ids(got)[0] == "aa11"
    assert 0.75 <= got[0].score < 1.0
    assert got[0].matched_on.startswith("fuzzy")
    assert SemanticSearcher().search(SemanticQuery(name="quantum chromodynamics"), entries) == []


def test_min_fuzzy_score_is_respected(entries) -> None:
    q = SemanticQuery(name="iris flwoer clasifier")
    assert SemanticSearcher(min_fuzzy_score=99.0).search(q, entries) == []


def test_description_ranks_without_filtering(entries) -> None:
    got = SemanticSearcher().search(SemanticQuery(description="housing prices regression"), entries)
    assert got[0].learnware_id == "bb22"
    assert len(got) == 4
    assert got[0].score > got[1].score


def test_reference_dicts_are_accepted(entries) -> None:
    q = {"Task": {"Type": "Class", "Values": ["Regression"]}, "Name": {"Type": "String", "Values": ""}}
    ref_entries = [(i, s.to_reference() if s is not None else None) for i, s in entries]
    assert _ids(SemanticSearcher().search(q, ref_entries)) == ["bb22"]


def test_top_k_and_bad_query(entries) -> None:
    assert len(SemanticSearcher(top_k=2).search(SemanticQuery(), entries)) == 2
    with pytest.raises(SearchError):
        SemanticSearcher().search(42, entries)  # type: ignore[arg-type]
