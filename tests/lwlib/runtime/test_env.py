"""Environment builder: normalisation/keys, inherit mode, torch guard, real uv venvs shared by equal requirements."""

from __future__ import annotations

import importlib.metadata
import sys
import threading
from pathlib import Path

import pytest

from lwlib.errors import RuntimeBuildError
from lwlib.learnware.requirements import Requirements, RequirementsError, as_requirements
from lwlib.runtime.env import READY_MARKER, EnvironmentManager, pip_index_args, requirements_key

UV_CACHE = Path.home() / ".cache" / "lwdock-test-uv"
NP = importlib.metadata.version("numpy")
SK = importlib.metadata.version("scikit-learn")


def test_pins_drop_learnware_merge_duplicates_and_apply_markers() -> None:
    reqs = as_requirements(["Scikit_Learn>=1.0", "# comment", "", "learnware==0.1.2.99", "numpy==2.4.6",
                            "numpy<3", "pywin32; sys_platform == 'win32'"])
    assert [p.name for p in reqs.pins] == ["numpy", "scikit-learn"]
    assert reqs.pins[0].met_by("2.4.6") and not reqs.pins[0].met_by("2.4.5")


def test_equal_requirements_share_a_key() -> None:
    a = requirements_key(as_requirements(["numpy==2.4.6", "scikit-learn>=1.0", "learnware==0.1.2"]))
    b = requirements_key(Requirements.from_lines(["Scikit_Learn >= 1.0", "numpy==2.4.6"]))
    assert a == b
    assert a != requirements_key(as_requirements(["numpy==2.4.5", "scikit-learn>=1.0"]))


@pytest.mark.parametrize("line", ["git+https://example.com/x.git#egg=x", "x @ https://example.com/x.whl",
                                  "--index-url https://evil.example/simple", "-e .", "numpy >>> 1"])
def test_ensure_refuses_disallowed_lines_with_the_one_policy(tmp_path: Path, line: str) -> None:
    with pytest.raises(RequirementsError) as info:
        EnvironmentManager(tmp_path, UV_CACHE).ensure([line])
    assert info.value.code == "requirements_disallowed" and info.value.facts["reason"]
    assert not any(tmp_path.iterdir())


def test_inherit_when_dock_satisfies(tmp_path: Path) -> None:
    env = EnvironmentManager(tmp_path, UV_CACHE).ensure([f"numpy>={NP}", "scikit-learn"])
    assert env.mode == "inherit" and env.python == Path(sys.executable)
    assert not any(tmp_path.iterdir())


def test_inherit_mode_refuses_unsatisfied(tmp_path: Path) -> None:
    with pytest.raises(RuntimeBuildError, match="numpy") as info:
        EnvironmentManager(tmp_path, UV_CACHE).ensure(["numpy==1.0.0"], mode="inherit")
    assert info.value.facts["package"] == "numpy==1.0.0"


@pytest.mark.parametrize("reqs, reason", [(["torch==2.0.1"], "torch_unmet"),
                                          (["torch>=2", "numpy==1.0.0"], "needs_dock")])
def test_torch_never_goes_into_a_venv(tmp_path: Path, reqs: list[str], reason: str) -> None:
    with pytest.raises(RequirementsError) as info:
        EnvironmentManager(tmp_path, UV_CACHE).ensure(reqs)
    assert info.value.facts["reason"] == reason
    assert not any(p.name != ".locks" for p in tmp_path.iterdir())


def test_torch_learnware_with_venv_mode_is_a_build_error(tmp_path: Path) -> None:
    torch_version = importlib.metadata.version("torch")
    with pytest.raises(RuntimeBuildError, match="torch") as info:
        EnvironmentManager(tmp_path, UV_CACHE).ensure([f"torch=={torch_version}"], mode="venv")
    assert info.value.code == "inherit_required"
    assert EnvironmentManager(tmp_path, UV_CACHE).ensure([f"torch=={torch_version}"]).mode == "inherit"


def test_pip_index_args_mirror_pip_config() -> None:
    args = pip_index_args()
    assert args[-1].startswith("--index-url=")
    if Path("/opt/wheels").is_dir():
        assert "--find-links=/opt/wheels" in args
    assert all(a.startswith(("--find-links=", "--extra-index-url=", "--index-url=")) for a in args)


@pytest.mark.integration
def test_equal_requirements_build_one_venv_even_concurrently(tmp_path: Path) -> None:
    reqs_a = [f"numpy=={NP}", f"scikit-learn=={SK}"]
    reqs_b = [f"scikit_learn=={SK}", f"NumPy=={NP}", "learnware==0.1.2.99"]
    managers = [EnvironmentManager(tmp_path, UV_CACHE) for _ in range(2)]
    results: list = [None, None]

    def run(i: int, reqs: list[str]) -> None:
        results[i] = managers[i].ensure(reqs, mode="venv")

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate((reqs_a, reqs_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = results
    assert a.key == b.key and a.python == b.python and a.mode == "venv"
    assert sum(m.builds for m in managers) == 1
    assert (tmp_path / a.key / READY_MARKER).is_file()
    assert f"scikit-learn=={SK}" in a.lock_lines or f"scikit-learn=={SK}" in b.lock_lines
    assert not list(tmp_path.glob(".build-*"))
    again = EnvironmentManager(tmp_path, UV_CACHE)
    assert again.ensure(reqs_a, mode="venv").key == a.key and again.builds == 0


@pytest.mark.integration
def test_unresolvable_requirement_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(RuntimeBuildError, match="lwdock-no-such-package-zz") as info:
        EnvironmentManager(tmp_path, UV_CACHE).ensure(["lwdock-no-such-package-zz==1.0", f"numpy=={NP}"],
                                                      mode="venv")
    assert info.value.facts["package"] == "lwdock-no-such-package-zz"
    assert not list(tmp_path.glob(".build-*")) and not list(tmp_path.glob("*/" + READY_MARKER))


def test_half_built_env_without_marker_is_rebuilt(tmp_path: Path) -> None:
    manager = EnvironmentManager(tmp_path, UV_CACHE)
    key = requirements_key(Requirements())
    (tmp_path / key / "venv").mkdir(parents=True)  # a crash left this behind, no marker
    env = manager.ensure([], mode="venv")
    assert env.key == key and manager.builds == 1 and (tmp_path / key / READY_MARKER).is_file()
    assert env.python.exists()
