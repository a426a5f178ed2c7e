"""Requirements: environment.yaml preferred, lines normalised, options/URLs/paths refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwlib.errors import InvalidPackageError
from lwlib.learnware.requirements import Requirements, normalize_requirement_lines, read_requirements


def test_requirements_txt_normalised(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# pinned\nScikit_Learn == 1.5.2  # comment\n\nnumpy>=1.24,<3\nnumpy >=1.24, <3\n"
        "torch==2.0.1 --hash=sha256:abc\nrequests[socks,security]>=2 ; python_version >= '3.8'\n")
    req = read_requirements(tmp_path)
    assert req.kind == "pip" and req.python is None
    assert req.packages == ("numpy<3,>=1.24", "requests[security,socks]>=2; python_version >= \"3.8\"",
                            "scikit-learn==1.5.2", "torch==2.0.1")


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
    assert ei.value.code == "requirements_disallowed"
    assert ei.value.facts["line"] == line and repr(line) in ei.value.message


def test_invalid_line(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("numpy = = 1\n")
    with pytest.raises(InvalidPackageError) as ei:
        read_requirements(tmp_path)
    assert ei.value.code == "requirements_invalid"


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
