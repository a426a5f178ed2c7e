"""OCI build contexts: content unit tests, plus an opt-in build that skips cleanly without an engine."""

from __future__ import annotations

import importlib.metadata
import json
import logging
from pathlib import Path

import pytest

from lwlib.runtime import EnvironmentManager, ModelEntrySpec, RuntimeTarget, oci
from lwlib.runtime.env import Environment
from lwlib.runtime.oci import BASE_IMAGE, build_image, write_build_context

UV_CACHE = Path.home() / ".cache" / "lwdock-test-uv"


@pytest.fixture()
def target(tmp_path: Path) -> RuntimeTarget:
    root = tmp_path / "lw"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from learnware.model import BaseModel\nclass Model(BaseModel):\n    pass\n")
    (root / "sub" / "weights.txt").write_text("1 2 3")
    (root / "learnware.yaml").write_text("model:\n  class_name: Model\n")
    return RuntimeTarget(root, ModelEntrySpec("Model", "__init__.py", {"k": 2}), ["numpy==2.4.6", "learnware"],
                         id="lw123")


def _instructions(containerfile: Path) -> list[tuple[str, str]]:
    lines = [ln for ln in containerfile.read_text().splitlines() if ln and not ln.startswith("#")]
    return [(ln.split(" ", 1)[0], ln.split(" ", 1)[1]) for ln in lines]


def test_context_has_everything_the_image_needs(tmp_path: Path, target: RuntimeTarget) -> None:
    lock = ("numpy==2.4.6", "scipy==1.17.1")
    env = Environment(key="k", python=Path("/x/python"), mode="venv", lock_lines=lock)
    ctx = write_build_context(target, tmp_path / "ctx", environment=env)
    files = {p.relative_to(ctx.path).as_posix() for p in ctx.path.rglob("*") if p.is_file()}
    assert {"Containerfile", "requirements.lock", "learnware/__init__.py", "learnware/sub/weights.txt",
            "learnware/learnware.yaml", "runtime/runner.py", "runtime/protocol.py",
            "runtime/shim/learnware/__init__.py", "runtime/shim/learnware/model.py"} <= files
    assert ctx.locked and ctx.lock_source == "venv-freeze"
    assert ctx.lock_file.read_text().splitlines() == list(lock)
    ins = _instructions(ctx.containerfile)
    assert ins[0] == ("FROM", BASE_IMAGE)
    user = [arg for op, arg in ins if op == "USER"]
    assert user and not user[-1].startswith(("0", "root"))
    entry = json.loads([arg for op, arg in ins if op == "ENTRYPOINT"][-1])
    assert entry[3].endswith("runtime/runner.py") and json.loads(entry[entry.index("--kwargs") + 1]) == {"k": 2}
    assert ins[-1][0] == "ENTRYPOINT"
    assert 'org.lwdock.network="none"' in ctx.containerfile.read_text()


def test_context_refuses_non_empty_dir(tmp_path: Path, target: RuntimeTarget) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "junk").write_text("x")
    with pytest.raises(FileExistsError):
        write_build_context(target, tmp_path / "ctx")


def test_context_compiles_lock_with_uv(tmp_path: Path, target: RuntimeTarget) -> None:
    np_version = importlib.metadata.version("numpy")
    target = RuntimeTarget(target.root, target.model, [f"numpy=={np_version}", "learnware==0.1.2.99"])
    ctx = write_build_context(target, tmp_path / "ctx", envs=EnvironmentManager(tmp_path / "envs", UV_CACHE))
    lines = ctx.lock_file.read_text().splitlines()
    assert f"numpy=={np_version}" in [ln.split(" ")[0] for ln in lines]
    assert not any(ln.startswith("learnware") for ln in lines)
    assert ctx.lock_source in ("uv-pip-compile", "unresolved")


def test_unreachable_engine_gives_a_reason(tmp_path: Path, target: RuntimeTarget) -> None:
    ctx = write_build_context(target, tmp_path / "ctx")
    result = build_image(ctx, engine="docker")
    if result.built:  # an engine answered here; the integration test covers that case
        assert result.image_id
    else:
        assert "docker" in result.reason and result.image_id is None


@pytest.mark.docker
@pytest.mark.integration
def test_image_builds_when_an_engine_answers(tmp_path: Path, target: RuntimeTarget) -> None:
    docker = pytest.importorskip("docker")
    try:
        docker.from_env(timeout=5).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Docker engine reachable: {exc}")
    ctx = write_build_context(target, tmp_path / "ctx")
    result = build_image(ctx, engine="docker", tag="lwdock-test/oci:latest")
    assert result.built, result.reason
    assert result.image_id and result.digest


def test_missing_engine_is_probed_and_reported_once(tmp_path: Path, target: RuntimeTarget,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    oci._docker_client.cache_clear()
    oci._report_no_engine.cache_clear()
    ctx = write_build_context(target, tmp_path / "ctx")
    with caplog.at_level(logging.INFO, logger="lwlib.runtime.oci"):
        results = [build_image(ctx) for _ in range(3)]
    assert oci._docker_client.cache_info().misses == 1  # one probe per process, not one per submission
    if not results[0].built:
        assert len({r.reason for r in results}) == 1
        assert sum("OCI images are not built" in r.getMessage() for r in caplog.records) == 1


def test_ensure_build_context_is_written_once_and_atomically(tmp_path: Path, target: RuntimeTarget) -> None:
    dest = tmp_path / "oci" / "lw123"
    first = oci.ensure_build_context(target, dest)
    assert first.containerfile.is_file() and first.lock_source == "unresolved"
    again = oci.ensure_build_context(target, dest)
    assert again.lock_source == "cached" and again.path == dest
    assert sorted(p.name for p in dest.parent.iterdir()) == ["lw123"]  # no .part- leftovers
