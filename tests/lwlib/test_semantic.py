"""Semantic spec: each reference rule raises its own code; reference dicts round-trip losslessly."""

from __future__ import annotations

import copy
import json

import pytest

from lwlib.errors import SemanticSpecError
from lwlib.semantic import REFERENCE_KEY_ORDER, IOSpec, SemanticQuery, SemanticSpec, make_semantic_spec

REF = {
    "Data": {"Type": "Class", "Values": ["Table"]},
    "Task": {"Type": "Class", "Values": ["Classification"]},
    "Library": {"Type": "Class", "Values": ["Scikit-learn"]},
    "License": {"Type": "Class", "Values": ["MIT"]},
    "Scenario": {"Type": "Tag", "Values": ["Education", "Computer"]},
    "Name": {"Type": "String", "Values": "learnware_1"},
    "Description": {"Type": "String", "Values": "test_learnware_number_1"},
    "Input": {"Dimension": 3, "Description": {"0": "age", "2": "income"}},
    "Output": {"Dimension": 2, "Description": {"0": "no", "1": "yes"}},
}


def _err(d: dict) -> str:
    with pytest.raises(SemanticSpecError) as ei:
        SemanticSpec.from_reference(d)
    return ei.value.code


def _with(**changes) -> dict:
    d = copy.deepcopy(REF)
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return d


def test_round_trip_equal_dicts_and_key_order() -> None:
    s = SemanticSpec.from_reference(json.loads(json.dumps(REF)))
    out = s.to_reference()
    assert out == REF
    assert tuple(out) == REFERENCE_KEY_ORDER
    assert SemanticSpec.from_reference(out) == s
    assert s.input == IOSpec(dimension=3, descriptions={0: "age", 2: "income"})


def test_text_spec_without_io_round_trips_with_empty_dicts() -> None:
    d = _with(Data={"Type": "Class", "Values": ["Text"]}, Task={"Type": "Class", "Values": ["Others"]},
              Input={}, Output={})
    assert SemanticSpec.from_reference(d).to_reference() == d


@pytest.mark.parametrize("changes,code", [
    ({"Data": None}, "semantic_missing_key"),
    ({"Name": {"Type": "String"}}, "semantic_missing_key"),
    ({"Data": {"Type": "Tag", "Values": ["Table"]}}, "semantic_bad_type"),
    ({"Data": {"Type": "Class", "Values": ["Tabel"]}}, "semantic_bad_value"),
    ({"Task": {"Type": "Class", "Values": []}}, "semantic_cardinality"),
    ({"Task": {"Type": "Class", "Values": ["Classification", "Regression"]}}, "semantic_cardinality"),
    ({"Library": {"Type": "Class", "Values": ["Keras"]}}, "semantic_bad_value"),
    ({"License": {"Type": "Class", "Values": ["WTFPL"]}}, "semantic_bad_value"),
    ({"Scenario": {"Type": "Tag", "Values": []}}, "semantic_cardinality"),
    ({"Scenario": {"Type": "Tag", "Values": ["Education", "Space"]}}, "semantic_bad_value"),
    ({"Name": {"Type": "String", "Values": ""}}, "semantic_empty"),
    ({"Description": {"Type": "String", "Values": 5}}, "semantic_bad_value"),
    ({"Input": {}}, "semantic_io_missing"),
    ({"Input": None}, "semantic_io_missing"),
    ({"Output": {}}, "semantic_io_missing"),
    ({"Output": {"Dimension": 1, "Description": {}}}, "semantic_io_dimension"),
    ({"Input": {"Dimension": 3, "Description": {"3": "out of range"}}}, "semantic_io_key"),
    ({"Input": {"Dimension": 3, "Description": {"-1": "negative"}}}, "semantic_io_key"),
    ({"Input": {"Dimension": 3, "Description": {"x": "not an int"}}}, "semantic_io_key"),
    ({"Input": {"Dimension": 0, "Description": {}}}, "semantic_io_invalid"),
    ({"Input": {"Dimension": 3, "Description": {"0": 7}}}, "semantic_io_invalid"),
    ({"Input": {"Description": {}}}, "semantic_io_invalid"),
])
def test_rules(changes: dict, code: str) -> None:
    assert _err(_with(**changes)) == code


def test_error_message_names_key_allowed_and_given() -> None:
    with pytest.raises(SemanticSpecError) as ei:
        SemanticSpec.from_reference(_with(Data={"Type": "Class", "Values": ["Tabel"]}))
    msg = ei.value.message
    assert "Data" in msg and "Tabel" in msg and "Image" in msg


def test_regression_output_dimension_one_ok() -> None:
    d = _with(Task={"Type": "Class", "Values": ["Regression"]}, Output={"Dimension": 1, "Description": {}})
    assert SemanticSpec.from_reference(d).task_type == "Regression"


def test_missing_license_gets_reference_default() -> None:
    assert SemanticSpec.from_reference(_with(License=None)).license == "Apache-2.0"


def test_image_without_input_ok() -> None:
    d = _with(Data={"Type": "Class", "Values": ["Image"]}, Input={})
    assert SemanticSpec.from_reference(d).input is None


def test_not_a_dict() -> None:
    assert _err(["Data"]) == "semantic_bad_type"  # type: ignore[arg-type]


def test_frozen() -> None:
    s = SemanticSpec.from_reference(REF)
    with pytest.raises(ValueError):  # pydantic's frozen-instance error is a ValueError
        s.name = "other"  # type: ignore[misc]


def test_make_semantic_spec() -> None:
    s = make_semantic_spec(name="n", description="d", input_dimension=3, output_dimension=2,
                           input_descriptions={0: "age"}, scenarios="Business")
    assert s.scenarios == ["Business"] and s.input.descriptions == {0: "age"}
    with pytest.raises(SemanticSpecError) as ei:
        make_semantic_spec(name="n", description="d", task_type="Clasification", input_dimension=3)
    assert ei.value.code == "semantic_bad_value"


def test_query_from_reference_user_info() -> None:
    user = {"Data": {"Values": ["Table"], "Type": "Class"}, "Task": {"Values": ["Classification"], "Type": "Class"},
            "Library": {"Values": ["Scikit-learn"], "Type": "Class"}, "Scenario": {"Values": ["Education"],
            "Type": "Tag"}, "Description": {"Values": "", "Type": "String"}, "Name": {"Values": "", "Type": "String"}}
    q = SemanticQuery.from_reference(user)
    assert q.data_type == ["Table"] and q.license == [] and q.name == "" and not q.is_empty
    assert SemanticQuery.from_reference({"learnware_id": {"Values": "0001"}}).learnware_id == "0001"
    assert SemanticQuery.from_reference({}).is_empty
    assert SemanticQuery.from_reference(q.to_reference()) == q
    with pytest.raises(SemanticSpecError):
        SemanticQuery.from_reference({"Data": {"Type": "Class", "Values": ["Video"]}})


# ---------------------------------------------------------------- untrusted input (issue 10)
def test_parse_untrusted_accepts_text_bytes_dicts_and_specs() -> None:
    spec = SemanticSpec.from_reference(REF)
    text = json.dumps(REF)
    assert SemanticSpec.parse_untrusted(text) == spec
    assert SemanticSpec.parse_untrusted(b"\xef\xbb\xbf" + text.encode()) == spec  # UTF-8 BOM
    assert SemanticSpec.parse_untrusted(REF) == spec
    assert SemanticSpec.parse_untrusted(spec) is spec


def test_markup_is_data_but_control_characters_are_refused() -> None:
    assert SemanticSpec.from_reference(_with(Name={"Type": "String", "Values": "[/bold] %s {0}"})).name == \
        "[/bold] %s {0}"
    assert _err(_with(Name={"Type": "String", "Values": "a\x1b[31mb"})) == "semantic_control_chars"
    multi = SemanticSpec.from_reference(_with(Description={"Type": "String", "Values": "line 1\nline 2\tx"}))
    assert multi.description == "line 1\nline 2\tx"


def test_text_bounds() -> None:
    from lwlib.constants import SEMANTIC_MAX_DESCRIPTION_CHARS, SEMANTIC_MAX_NAME_CHARS

    ok = _with(Name={"Type": "String", "Values": "n" * SEMANTIC_MAX_NAME_CHARS},
               Description={"Type": "String", "Values": "d" * SEMANTIC_MAX_DESCRIPTION_CHARS})
    assert len(SemanticSpec.from_reference(ok).name) == SEMANTIC_MAX_NAME_CHARS
    assert _err(_with(Name={"Type": "String", "Values": "n" * (SEMANTIC_MAX_NAME_CHARS + 1)})) == "semantic_too_long"


def test_errors_never_echo_the_payload() -> None:
    huge = {"Dimension": "x" * 5_000, "Description": {}}
    with pytest.raises(SemanticSpecError) as ei:
        SemanticSpec.from_reference(_with(Input=huge))
    assert len(ei.value.message) < 500


def test_query_bounds() -> None:
    assert SemanticQuery.from_reference({"Name": {"Values": "digits [x]"}}).name == "digits [x]"
    with pytest.raises(SemanticSpecError):
        SemanticQuery(data_type=["Table"] * 100)


def test_from_stored_reads_rows_accepted_before_the_bounds() -> None:
    old_row = _with(Name={"Type": "String", "Values": "old\x1b[31m" + "n" * 300})
    assert _err(old_row) == "semantic_too_long"
    assert SemanticSpec.from_stored(old_row).name.startswith("old\x1b[31m")
    assert _err(old_row) == "semantic_too_long"  # the lenient mode does not leak out
    with pytest.raises(SemanticSpecError):
        SemanticSpec.from_stored(_with(Data={"Type": "Class", "Values": ["Video"]}))  # vocabulary still applies
