"""The closed spec-type table: dispatch by type string, legacy alias, and refusal of anything else."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lwlib.errors import SpecFormatError
from lwlib.rkme import SPEC_TYPES, RKMETableSpec, RKMETextSpec, load_spec_file, spec_from_dict
from lwlib.rkme.base import read_spec_json


def _dict(type_: str, **extra: object) -> dict:
    return {"z": [[0.0, 1.0], [1.0, 0.0]], "beta": [0.5, 0.5], "gamma": 0.1, "num_points": 10, "type": type_,
            **extra}


def test_table_lists_exactly_the_supported_types() -> None:
    assert SPEC_TYPES == {"RKMETableSpecification": RKMETableSpec, "RKMEStatSpecification": RKMETableSpec,
                          "RKMETextSpecification": RKMETextSpec}


def test_dispatch_by_type() -> None:
    table = spec_from_dict(_dict("RKMETableSpecification"))
    legacy = spec_from_dict(_dict("RKMEStatSpecification"))
    text = spec_from_dict(_dict("RKMETextSpecification", language=["en"]))
    assert type(table) is RKMETableSpec and type(legacy) is RKMETableSpec and type(text) is RKMETextSpec
    assert text.language == ["en"]
    np.testing.assert_array_equal(legacy.z_, table.z_)


@pytest.mark.parametrize("bad_type", ["os.system", "learnware.specification.RKMETableSpecification", None, 3])
def test_unknown_types_refused(bad_type: object) -> None:
    with pytest.raises(SpecFormatError) as err:
        spec_from_dict(_dict(bad_type))  # type: ignore[arg-type]
    assert err.value.code == "spec_unknown_type"


def test_load_spec_file_checks_expected_type(tmp_path) -> None:
    p = tmp_path / "stat.json"
    p.write_text(json.dumps(_dict("RKMEStatSpecification"), separators=(",", ":")))
    assert isinstance(load_spec_file(p, expected_type="RKMETableSpecification"), RKMETableSpec)
    with pytest.raises(SpecFormatError) as err:
        load_spec_file(p, expected_type="RKMETextSpecification")
    assert err.value.code == "spec_type_mismatch"


def test_load_spec_file_errors(tmp_path) -> None:
    with pytest.raises(SpecFormatError) as err:
        load_spec_file(tmp_path / "missing.json")
    assert err.value.code == "spec_missing_file"
    p = tmp_path / "big.json"
    p.write_text(json.dumps(_dict("RKMETableSpecification")))
    with pytest.raises(SpecFormatError) as err:
        read_spec_json(p, max_bytes=20)
    assert err.value.code == "spec_too_large"
    p.write_bytes(b"\xff\xfe{")
    with pytest.raises(SpecFormatError) as err:
        load_spec_file(p)
    assert err.value.code == "spec_bad_json"
    p.write_text('{"z":[[Infinity]],"beta":[1],"gamma":0.1,"num_points":1,"type":"RKMETableSpecification"}')
    with pytest.raises(SpecFormatError) as err:
        load_spec_file(p)
    assert err.value.code == "spec_nonfinite"
