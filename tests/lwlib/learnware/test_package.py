"""open_learnware on reference-template zips: round trip, reuse, and every broken variant's error code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fixtures.reference_zip import make_reference_zip, reference_semantic
from lwlib.errors import InvalidPackageError, SemanticSpecError
from lwlib.learnware import open_learnware, sha256_file


@pytest.fixture(scope="module")
def ref_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_reference_zip(tmp_path_factory.mktemp("ref") / "ref.zip", with_semantic=True)


def test_reference_zip_round_trip(ref_zip: Path, tmp_path: Path) -> None:
    lw = open_learnware(ref_zip, tmp_path)
    assert lw.id == sha256_file(ref_zip) and lw.root == tmp_path / lw.id
    assert lw.manifest.model.class_name == "PickleLoadedModel"
    assert lw.manifest.model.kwargs["input_shape"] == (64,)
    spec = lw.stat_specs["RKMETableSpecification"]
    assert spec.z_.shape[1] == 64 and abs(spec.beta_.sum() - 1) < 1e-6
    assert lw.semantic_spec is not None and lw.semantic_spec.to_reference() == reference_semantic()
    assert lw.requirements.kind == "pip" and "learnware==0.4.0.post1" in lw.requirements.packages
    assert lw.model_path.is_file()


def test_reopen_reuses_extraction(ref_zip: Path, tmp_path: Path) -> None:
    lw = open_learnware(ref_zip, tmp_path)
    stamp = (lw.root / "__init__.py").stat().st_mtime_ns
    again = open_learnware(ref_zip, tmp_path)
    assert again.root == lw.root and (lw.root / "__init__.py").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [lw.id]


def test_semantic_argument_overrides(ref_zip: Path, tmp_path: Path) -> None:
    sem = reference_semantic()
    sem["Name"]["Values"] = "override"
    assert open_learnware(ref_zip, tmp_path, semantic_spec=sem).semantic_spec.name == "override"


def test_no_semantic_file_gives_none(tmp_path: Path) -> None:
    z = make_reference_zip(tmp_path / "a.zip")
    assert open_learnware(z, tmp_path / "w").semantic_spec is None


def test_top_folder_zip_opens(tmp_path: Path) -> None:
    z = make_reference_zip(tmp_path / "a.zip", top_folder="my_learnware")
    lw = open_learnware(z, tmp_path / "w")
    assert (lw.root / "learnware.yaml").is_file() and "RKMETableSpecification" in lw.stat_specs


def test_never_imports_model_code(tmp_path: Path) -> None:
    z = make_reference_zip(tmp_path / "a.zip", broken="import_error")
    before = set(sys.modules)
    lw = open_learnware(z, tmp_path / "w")
    assert lw.manifest.model.class_name == "PickleLoadedModel"
    assert not any("module_that_does_not_exist" in m or m == "learnware" for m in set(sys.modules) - before)


@pytest.mark.parametrize("broken,codes", [
    ("no_manifest", {"manifest_missing"}),
    ("bad_yaml", {"manifest_bad_yaml"}),
    ("unsafe_spec_module", {"manifest_unknown_spec_type", "manifest_bad_spec_module"}),
    ("missing_stat", {"spec_missing_file"}),
    ("nan_stat", {"spec_nonfinite"}),
    ("missing_model", {"model_module_missing"}),
    ("zip_slip", {"archive_path_traversal"}),
])
def test_broken_variants(tmp_path: Path, broken: str, codes: set[str]) -> None:
    z = make_reference_zip(tmp_path / "a.zip", broken=broken)
    with pytest.raises(InvalidPackageError) as ei:
        open_learnware(z, tmp_path / "w")
    assert ei.value.code in codes, ei.value


def test_missing_zip(tmp_path: Path) -> None:
    with pytest.raises(InvalidPackageError) as ei:
        open_learnware(tmp_path / "nope.zip", tmp_path)
    assert ei.value.code == "package_not_found"


def test_refused_zip_leaves_nothing_and_reason_has_no_host_path(tmp_path: Path) -> None:
    z = make_reference_zip(tmp_path / "a.zip", broken="missing_stat")
    work = tmp_path / "w"
    with pytest.raises(InvalidPackageError) as ei:
        open_learnware(z, work)
    assert list(work.iterdir()) == [], "no extracted tree, no staging folder"
    assert str(work) not in ei.value.message and str(tmp_path) not in ei.value.message
    assert "stat_spec.json" in ei.value.message


def test_bad_semantic_override_is_refused_before_extraction(ref_zip: Path, tmp_path: Path) -> None:
    with pytest.raises(SemanticSpecError) as ei:
        open_learnware(ref_zip, tmp_path / "w", semantic_spec='{"Name": "x\\u001b[2J"}')
    assert ei.value.code in {"semantic_missing_key", "semantic_control_chars"}
    assert not (tmp_path / "w").exists()
    sem = reference_semantic()
    lw = open_learnware(ref_zip, tmp_path / "w", semantic_spec=json.dumps(sem))  # JSON text is accepted too
    assert lw.semantic_spec is not None and lw.semantic_spec.to_reference() == sem
