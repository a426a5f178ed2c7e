"""Requirements: one model, one policy. environment.yaml preferred, lines normalised, options/URLs/paths refused,
torch pins checked against the dock, all with one error class and one code."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from lwlib.errors import InvalidPackageError
from lwlib.learnware.requirements import (
    Requirements,
    RequirementsError,
    as_requirements,
    normalize_requirement_lines,
    read_requirements,
)

TORCH = importlib.metadata.version("torch")


def test_requirements_txt_normalised(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# pinned\nScikit_Learn == 1.5.2  # comment\n\nnumpy>=1.24,<3\nnumpy >=1.24, <3\n"
        "scipy --hash=sha256:abc\nrequests[socks,security]>=2 ; python_version >= '3.8'\n")
    req = read_requirements(tmp_path)
    assert req.kind == "pip" and req.python is None
    assert req.packages == ("numpy<3,>=1.24", "requests[security,socks]>=2; python_version >= \"3.8\"",
                            "scikit-learn==1.5.2", "scipy")


@pytest.mark.parametrize("line", [
    "-e .", "-r other.txt", "--index-url https://evil.example/simple", "--extra-index-url http://x",
    "-c constraints.txt", "https://evil.example/pkg.whl", "git+https://github.com/x/y.git",
    "pkg @ https://evil.example/pkg.tar.gz", "./local_pkg", "/abs/path/pkg", "../pkg.whl", "dist/pkg-1.0.tar.gz",
    "C:\\pkgs\\x.whl", "~/pkg",
])
def test_disallowed_lines_name_the_line(tmp_path: Path, line: str) -> None:
    (tmp_path / "requirements.txt").write_text(f"numpy\n{line}\n")
    with pytest.raises(InvalidPackageError) as ei:
        read_requirements(tmp_path)
    assert isinstance(ei.value, RequirementsError) and ei.value.code == "requirements_disallowed"
    assert ei.value.facts["line"] == line and repr(line) in ei.value.message
    assert ei.value.facts["reason"] in ("pip_option", "url", "local_path")


@pytest.mark.parametrize("text, reason", [
    ("numpy = = 1\n", "unparsable"),
    ("numpy==" + "1" * 2000 + "\n", "unparsable"),
    ("torch==2.0.1\n", "torch_unmet"),
    (f"torch=={TORCH}\nnumpy==1.0.0\n", "needs_dock"),
])
def test_every_refusal_is_one_class_and_one_code(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "requirements.txt").write_text(text)
    with pytest.raises(RequirementsError) as ei:
        read_requirements(tmp_path)
    assert ei.value.code == "requirements_disallowed" and ei.value.facts["reason"] == reason


@pytest.mark.parametrize("raw, reason", [(b"numpy\n" * 60000, "too_large"), (b"\xff\xfenump\xd8", "encoding"),
                                          (b"numpy\xff\n", "encoding")])
def test_unreadable_files_are_refused_the_same_way(tmp_path: Path, raw: bytes, reason: str) -> None:
    (tmp_path / "requirements.txt").write_bytes(raw)
    with pytest.raises(RequirementsError) as ei:
        read_requirements(tmp_path)
    assert ei.value.code == "requirements_disallowed" and ei.value.facts["reason"] == reason


@pytest.mark.parametrize("text", ["dependencies: 3\n", "[1, 2]\n", "dependencies:\n  - {x: 1}\n",
                                  "dependencies:\n  - pip: [1]\n", "a: [" * 200 + "\n"])
def test_malformed_environment_yaml(tmp_path: Path, text: str) -> None:
    (tmp_path / "environment.yaml").write_text(text)
    with pytest.raises(RequirementsError) as ei:
        read_requirements(tmp_path)
    assert ei.value.facts["reason"] == "structure"


def test_torch_pin_the_dock_meets_is_kept_and_learnware_dropped_from_pins(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(f"torch=={TORCH}\nlearnware==0.1.2.99\nnumpy\n")
    req = read_requirements(tmp_path)
    assert [p.name for p in req.host_only] == ["torch"]
    assert [p.name for p in req.pins] == ["numpy", "torch"]
    assert "learnware==0.1.2.99" in req.packages


def test_pins_merge_duplicate_names_and_evaluate_markers() -> None:
    req = as_requirements(["numpy>=1.20", "NumPy<3", "requests[socks]; python_version >= '3'",
                           "requests[security]", "pywin32; sys_platform == 'win32'"])
    assert [str(p) for p in req.pins] == ["numpy<3,>=1.20", "requests[security,socks]"]
    assert req.pins[0].met_by("2.0") and not req.pins[0].met_by("3.1")


def test_environment_yaml_preferred(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("pandas\n")
    (tmp_path / "environment.yaml").write_text(
        "name: lw\nchannels: [defaults]\ndependencies:\n  - python=3.8.16=h7a1cb2a_2\n  - numpy=1.24.4=py38h\n"
        "  - pip=23.0\n  - pip:\n    - learnware==0.1.2.99\n    - Scikit-Learn==1.2.2\nprefix: /opt/conda/envs/lw\n")
    req = read_requirements(tmp_path)
    assert req.kind == "conda"
    assert req.python == "3.8"
    assert req.packages == ("learnware==0.1.2.99", "scikit-learn==1.2.2")
    assert req.ignored == ("numpy=1.24.4=py38h",)


def test_environment_yaml_rejects_urls_in_pip(tmp_path: Path) -> None:
    (tmp_path / "environment.yaml").write_text("dependencies:\n  - pip:\n    - --index-url http://evil\n")
    with pytest.raises(InvalidPackageError) as ei:
        read_requirements(tmp_path)
    assert ei.value.code == "requirements_disallowed"


def test_none(tmp_path: Path) -> None:
    assert read_requirements(tmp_path) == Requirements(kind="none")


def test_utf16_requirements(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes("numpy==2.0\r\n".encode("utf-16"))
    assert read_requirements(tmp_path).packages == ("numpy==2.0",)


def test_continuation_lines() -> None:
    assert normalize_requirement_lines(["numpy>=1 \\", "  ,<3", "scipy"]) == ("numpy<3,>=1", "scipy")


def test_normalized_key() -> None:
    a = Requirements("pip", normalize_requirement_lines(["Numpy==2.0", "scikit_learn==1.5"]))
    b = Requirements("pip", normalize_requirement_lines(["scikit-learn == 1.5", "numpy==2.0"]))
    c = Requirements("conda", a.packages, python="3.10")
    d = Requirements("pip", normalize_requirement_lines(["numpy==2.1", "scikit-learn==1.5"]))
    assert a.normalized_key() == b.normalized_key()
    assert len({a.normalized_key(), c.normalized_key(), d.normalized_key()}) == 3
    assert a.to_text() == "numpy==2.0\nscikit-learn==1.5\n"
