"""Validation helpers, and the agreement between validator bounds and the catalog's column types."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lwlib._validation import check_json_tree
from lwlib.catalog import Catalog, LearnwareRecord, SpecPayload
from lwlib.constants import (RKME_MAX_DIM, RKME_MAX_K, RKME_MAX_NUM_POINTS, RKME_MAX_VALUES, RKME_TABLE_TYPE,
                             SEMANTIC_MAX_DESCRIPTION_CHARS, SEMANTIC_MAX_DIMENSION, SEMANTIC_MAX_NAME_CHARS)
from lwlib.errors import LwdockError, SemanticSpecError, SpecFormatError
from lwlib.rkme.types import spec_from_dict
from lwlib.semantic import VOCABULARIES, SemanticSpec, make_semantic_spec


def _tree(obj: object, **kw: object) -> None:
    args = {"what": "kwargs", "max_depth": 3, "max_nodes": 20, "max_str_chars": 10, **kw}
    check_json_tree(obj, **args)  # type: ignore[arg-type]


def test_json_tree_accepts_plain_values_within_bounds() -> None:
    _tree({"a": [1, 2.5, True, None, "text"], "b": {"c": (1, 2)}})


@pytest.mark.parametrize("obj,code,field", [
    ({"a": {"b": {"c": [1]}}}, "input_too_deep", "kwargs.a.b.c"),
    ({"a": list(range(30))}, "input_too_many_nodes", "kwargs"),
    ({"a": "x" * 11}, "input_too_long", "kwargs.a"),
    ({"x" * 11: 1}, "input_too_long", "kwargs"),
    ({"when": datetime.date(2001, 1, 1)}, "input_bad_type", "kwargs.when"),
    ({"blob": b"bytes"}, "input_bad_type", "kwargs.blob"),
    ({"s": {1, 2}}, "input_bad_type", "kwargs.s"),
    ({"n": float("nan")}, "input_bad_type", "kwargs.n"),
    ({"n": 2 ** 64}, "input_bad_type", "kwargs.n"),
    ({1: "int key"}, "input_bad_type", "kwargs"),
])
def test_json_tree_refusals_name_the_field(obj: object, code: str, field: str) -> None:
    with pytest.raises(LwdockError) as ei:
        _tree(obj)
    assert ei.value.code == code and ei.value.facts["field"] == field


def test_json_tree_is_not_recursive() -> None:
    deep: object = 1
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    with pytest.raises(LwdockError) as ei:
        _tree(deep, max_depth=50, max_nodes=10**6)
    assert ei.value.code == "input_too_deep"


def test_parse_untrusted_round_trips_and_refuses_a_non_object() -> None:
    spec = make_semantic_spec(name="n", description="d", input_dimension=3, output_dimension=2)
    assert SemanticSpec.parse_untrusted(json.dumps(spec.to_reference())) == spec
    with pytest.raises(SemanticSpecError):
        SemanticSpec.parse_untrusted("[]")


def _sha(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def _spec(k: int, d: int, num_points: int) -> object:
    rng = np.random.default_rng(k)
    return spec_from_dict({"z": rng.normal(size=(k, d)).tolist(), "beta": np.full(k, 1.0 / k).tolist(),
                           "gamma": 0.1, "num_points": num_points, "type": RKME_TABLE_TYPE})


def test_catalog_columns_hold_the_largest_values_validators_accept(tmp_path: Path) -> None:
    """Every bound a validator accepts must fit its catalog column (overflow was `catalog_write_failed`)."""
    sem = make_semantic_spec(
        name="[/bold]" + "n" * (SEMANTIC_MAX_NAME_CHARS - 7), description="d" * SEMANTIC_MAX_DESCRIPTION_CHARS,
        scenarios=VOCABULARIES["Scenario"], input_dimension=SEMANTIC_MAX_DIMENSION,
        output_dimension=SEMANTIC_MAX_DIMENSION)
    wide_k = RKME_MAX_VALUES // RKME_MAX_DIM
    shapes = {"most-points": (RKME_MAX_K, RKME_MAX_VALUES // RKME_MAX_K), "widest": (wide_k, RKME_MAX_DIM)}
    with Catalog.open(tmp_path / "catalog.duckdb") as cat:
        for tag, (k, d) in shapes.items():
            lw_id = _sha(tag)
            spec = _spec(k, d, RKME_MAX_NUM_POINTS)
            rec = LearnwareRecord.from_semantic(lw_id, sem, spec_type=RKME_TABLE_TYPE, spec_dim=d, spec_k=k)
            cat.upsert_learnware(rec, [SpecPayload.from_spec(lw_id, spec)])
    with Catalog.open(tmp_path / "catalog.duckdb", read_only=True) as cat:
        for tag, (k, d) in shapes.items():
            got = cat.get(_sha(tag))
            assert got is not None and got.input_dim == got.output_dim == SEMANTIC_MAX_DIMENSION
            assert (got.spec_k, got.spec_dim) == (k, d) and got.name == sem.name
            assert got.semantic_spec() == sem
            (payload,) = cat.load_spec_payloads(ids=[_sha(tag)])
            assert payload.num_points == RKME_MAX_NUM_POINTS and np.asarray(payload.z).shape == (k, d)


def test_one_past_each_bound_is_refused() -> None:
    with pytest.raises(SemanticSpecError):
        make_semantic_spec(name="n", description="d", input_dimension=SEMANTIC_MAX_DIMENSION + 1,
                           output_dimension=2)
    with pytest.raises(SemanticSpecError):
        make_semantic_spec(name="n" * (SEMANTIC_MAX_NAME_CHARS + 1), description="d", input_dimension=2,
                           output_dimension=2)
    with pytest.raises(SpecFormatError) as ei:
        _spec(1, 1, RKME_MAX_NUM_POINTS + 1)
    assert ei.value.code == "spec_num_points"
    with pytest.raises(SpecFormatError) as ei:
        _spec(RKME_MAX_K + 1, 1, 10)
    assert ei.value.code == "spec_too_large"
    assert isinstance(SemanticSpec.parse_untrusted(make_semantic_spec(
        name="n", description="d", input_dimension=2, output_dimension=2)), SemanticSpec)
