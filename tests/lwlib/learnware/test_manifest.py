"""learnware.yaml parsing: reference defaults, reference dumps, and refusal of anything that could run code."""

from __future__ import annotations

import yaml
import pytest

from lwlib.errors import InvalidPackageError
from lwlib.learnware.manifest import MAX_MANIFEST_BYTES, Manifest, ModelEntry, StatSpecEntry, parse_manifest
from lwlib.rkme.types import SPEC_TYPES


def _code(text: str | bytes) -> str:
    with pytest.raises(InvalidPackageError) as ei:
        parse_manifest(text)
    return ei.value.code


def test_defaults_for_empty_mapping() -> None:
    m = parse_manifest("{}\n")
    assert m.model == ModelEntry("Model", "__init__.py", {})
    assert m.stat_specs == (StatSpecEntry("RKMETableSpecification", "stat_spec.json", {}),)
    assert m.name is None and m.id is None and m.semantic_file is None


def test_reference_yaml_dump_with_tuples() -> None:
    config = {"model": {"class_name": "PickleLoadedModel", "kwargs": {"input_shape": (64,), "output_shape": (10,)}},
              "stat_specifications": [{"module_path": "learnware.specification", "class_name":
                                       "RKMETableSpecification", "file_name": "svm.json", "kwargs": {}}]}
    text = yaml.dump(config, allow_unicode=True)  # exactly how the reference writes it
    assert "!!python/tuple" in text
    m = parse_manifest(text)
    assert m.model.class_name == "PickleLoadedModel"
    assert m.model.kwargs["input_shape"] == (64,)
    assert m.stat_specs[0].file_name == "svm.json"


def test_legacy_spec_type_and_regular_module_accepted() -> None:
    text = ("stat_specifications:\n- module_path: learnware.specification.regular.table\n"
            "  class_name: RKMEStatSpecification\n  file_name: stat.json\n")
    assert parse_manifest(text).stat_specs[0].type_name == "RKMEStatSpecification"


def test_beimingwu_keys() -> None:
    m = parse_manifest("id: '00000042'\nsemantic_specification:\n  file_name: semantic_specification.json\n")
    assert m.id == "00000042" and m.semantic_file == "semantic_specification.json"


@pytest.mark.parametrize("entry,code", [
    ("{module_path: os, class_name: RKMETableSpecification, file_name: s.json}", "manifest_bad_spec_module"),
    ("{module_path: evil.module, class_name: RKMETableSpecification, file_name: s.json}",
     "manifest_bad_spec_module"),
    ("{module_path: learnware.specification, class_name: system, file_name: s.json}", "manifest_unknown_spec_type"),
    ("{class_name: Popen, file_name: s.json}", "manifest_unknown_spec_type"),
    ("{class_name: RKMETableSpecification, file_name: ../../etc/passwd}", "manifest_bad_file_name"),
    ("{class_name: RKMETableSpecification, file_name: /abs.json}", "manifest_bad_file_name"),
    ("{class_name: RKMETableSpecification}", "manifest_missing_key"),
    ("not-a-mapping", "manifest_bad_spec_entry"),
])
def test_rejects_bad_spec_entries(entry: str, code: str) -> None:
    assert _code(f"stat_specifications:\n- {entry}\n") == code


def test_spec_types_are_registry_keys() -> None:
    for name in SPEC_TYPES:
        assert parse_manifest(f"stat_specifications:\n- {{class_name: {name}, file_name: s.json}}\n")


@pytest.mark.parametrize("module_path", ["os.path", "evil", "../x.py", "/abs/x.py", "a\\\\b.py", "x.pyc"])
def test_rejects_model_module_paths(module_path: str) -> None:
    assert _code(f'model:\n  module_path: "{module_path}"\n') == "manifest_bad_module_path"


def test_accepts_nested_model_module() -> None:
    assert parse_manifest("model:\n  module_path: src/model.py\n").model.module_path == "src/model.py"


@pytest.mark.parametrize("cls", ["os.system", "1abc", "class", ""])
def test_rejects_bad_class_names(cls: str) -> None:
    assert _code(f'model:\n  class_name: "{cls}"\n') == "manifest_bad_class_name"


def test_rejects_python_object_tags(tmp_path) -> None:
    marker = tmp_path / "pwned"
    text = f"model: !!python/object/apply:os.system ['touch {marker}']\n"
    assert _code(text) == "manifest_unsafe_tag"
    assert not marker.exists()
    assert _code("model: !!python/name:os.system\n") == "manifest_unsafe_tag"


@pytest.mark.parametrize("text", ["model: [unclosed\n", "a: b: c\n", "\t- x\n"])
def test_rejects_bad_yaml(text: str) -> None:
    assert _code(text) == "manifest_bad_yaml"


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n", "42\n"])
def test_rejects_non_mapping(text: str) -> None:
    assert _code(text) == "manifest_not_mapping"


def test_rejects_aliases() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nmodel: {kwargs: {k: *c}}\n"
    assert _code(bomb) == "manifest_yaml_alias"


def test_rejects_oversize() -> None:
    assert _code("name: " + "x" * MAX_MANIFEST_BYTES + "\n") == "manifest_too_large"


def test_rejects_non_utf8() -> None:
    assert _code("name: caf\xe9\n".encode("latin-1")) == "manifest_encoding"


def test_rejects_duplicate_specs() -> None:
    text = ("stat_specifications:\n- {class_name: RKMETableSpecification, file_name: a.json}\n"
            "- {class_name: RKMEStatSpecification, file_name: a.json}\n")
    assert _code(text) == "manifest_duplicate_spec"


def test_rejects_bad_kwargs() -> None:
    assert _code("model:\n  kwargs: [1, 2]\n") == "manifest_bad_kwargs"


def test_to_yaml_round_trip() -> None:
    m = Manifest(name="lw", model=ModelEntry("Model", "__init__.py", {"input_shape": [64], "output_shape": [1]}),
                 stat_specs=(StatSpecEntry("RKMETableSpecification", "stat.json", {"gamma": 0.1}),),
                 semantic_file="semantic_specification.json", id="abc")
    text = m.to_yaml()
    assert "!!" not in text
    assert parse_manifest(text) == m
    assert yaml.safe_load(text)["stat_specifications"][0]["module_path"] == "learnware.specification"


def test_bounds_and_plain_kwargs() -> None:
    assert _code("model:\n  kwargs:\n    when: 2001-01-01\n") == "manifest_kwargs_bad_type"
    assert _code("model:\n  kwargs:\n    x: " + "[" * 100 + "]" * 100 + "\n") == "manifest_too_deep"
    assert _code("a: &x 1\nb: *x\n") == "manifest_yaml_alias"
    assert _code("name: {a: 1}\n") == "manifest_bad_name"
    ok = parse_manifest("name: 2024\nmodel:\n  kwargs: {shape: !!python/tuple [3, 4], lr: 0.1, tags: [a, b], "
                        "opt: {beta: null, enabled: true}}\n")
    assert ok.name == "2024"
    assert ok.model.kwargs == {"shape": (3, 4), "lr": 0.1, "tags": ["a", "b"], "opt": {"beta": None, "enabled": True}}
