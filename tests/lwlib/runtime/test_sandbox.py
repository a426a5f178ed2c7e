"""Sandbox plans and rlimits, checked on real child processes: what the worker sees, as whom, and what is missing."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from lwlib.learnware.requirements import Requirements
from lwlib.runtime import EnvironmentManager, ModelEntrySpec, Runtime, RuntimeLimits, RuntimeTarget
from lwlib.runtime.sandbox import (
    ALL_PROTECTIONS,
    SANDBOX_UID,
    bwrap_available,
    make_preexec,
    unshare_available,
    wrap_command,
)

PROBE = ("import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0], "
         "resource.getrlimit(resource.RLIMIT_CPU)[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0], "
         "resource.getrlimit(resource.RLIMIT_FSIZE)[0], resource.getrlimit(resource.RLIMIT_CORE)[0])")
needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap not available")
UV_CACHE = Path.home() / ".cache" / "lwdock-test-uv"

# What a process inside the sandbox reports about itself (printed as one JSON line).
INSPECT = textwrap.dedent('''
    import json, os, socket, sys
    def attempt(fn):
        try:
            return fn()
        except Exception as exc:
            return type(exc).__name__
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
    targets = json.loads(sys.argv[1])
    out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
           "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
           "nnp": status["NoNewPrivs"].strip(), "root": sorted(os.listdir("/")), "run": os.listdir("/run"),
           "ifaces": sorted(n for _, n in socket.if_nameindex()),
           "reads": {p: attempt(lambda p=p: open(p).read()) for p in targets["read"]},
           "lists": {p: attempt(lambda p=p: sorted(os.listdir(p))) for p in targets["list"]},
           "writes": {p: attempt(lambda p=p: open(p, "w").write("x")) for p in targets["write"]},
           "connect": {p: attempt(lambda p=p: socket.socket(socket.AF_UNIX).connect(p)) for p in targets["unix"]}}
    print(json.dumps(out))
''')


def _inspect(plan_kwargs: dict, targets: dict, tmp_path: Path) -> dict:
    script = tmp_path / "inspect.py"
    script.write_text(INSPECT)
    os.chmod(tmp_path, 0o755)
    plan = wrap_command([sys.executable, "-I", str(script), json.dumps(targets)],
                        readable=[Path(sys.base_prefix), Path(sys.prefix), script, *plan_kwargs.pop("readable", [])],
                        **plan_kwargs)
    res = subprocess.run(plan.argv, capture_output=True, text=True, check=True, start_new_session=True, timeout=60)
    return {"plan": plan, **json.loads(res.stdout.strip().splitlines()[-1])}


def test_preexec_applies_rlimits() -> None:
    limits = RuntimeLimits(memory_mb=1024, cpu_seconds=30, max_open_files=256, max_file_mb=8)
    out = subprocess.run([sys.executable, "-c", PROBE], preexec_fn=make_preexec(limits), capture_output=True,
                         text=True, check=True).stdout.split()
    assert [int(v) for v in out] == [1024 * 2**20, 30, 256, 8 * 2**20, 0]


def test_file_size_limit_stops_big_writes(tmp_path: Path) -> None:
    code = f"open({str(tmp_path / 'big')!r}, 'wb').write(b'x' * (3 * 2**20))"
    res = subprocess.run([sys.executable, "-c", code], preexec_fn=make_preexec(RuntimeLimits(max_file_mb=1)),
                         capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert (tmp_path / "big").stat().st_size <= 2**20


def test_no_backend_says_exactly_what_is_missing() -> None:
    plan = wrap_command(["python", "x.py"], backend="none", hide=[Path("/tmp/some-home")])
    assert plan.argv == ["python", "x.py"] and plan.backend == "none"
    assert set(plan.protections) == {"rlimits", "process-group", "minimal-env", "private-copy"}
    assert set(plan.protections) | set(plan.missing) == set(ALL_PROTECTIONS)
    assert {"unprivileged-uid", "no-network", "minimal-filesystem", "hidden-dock-home", "no-host-sockets"} <= \
        set(plan.missing)


@pytest.mark.skipif(not unshare_available(), reason="unshare not available")
def test_unshare_fallback_lists_the_filesystem_protections_as_missing() -> None:
    plan = wrap_command(["python", "x.py"], backend="unshare")
    assert plan.backend == "unshare" and "no-network" in plan.protections
    assert {"unprivileged-uid", "minimal-filesystem", "hidden-host-secrets", "no-host-sockets"} <= set(plan.missing)
    assert "hidden-dock-home" not in plan.missing  # nothing was asked to be hidden


@needs_bwrap
def test_bwrap_shows_only_what_is_bound_to_an_unprivileged_uid(tmp_path: Path) -> None:
    work, secret_dir = tmp_path / "work", tmp_path / "rootonly"
    work.mkdir()
    secret_dir.mkdir()
    secret = secret_dir / "secret"
    secret.write_text("root-only")
    secret.chmod(0o600)  # root-owned 0600 and *visible*: only the uid the kernel checks protects it
    host_file = Path("/tmp") / f"lwdock-sbx-{uuid.uuid4().hex}"
    run_dir = Path("/run") / f"lwdock-sbx-{uuid.uuid4().hex}"
    run_dir.mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(run_dir / "svc.sock"))
    server.listen(1)
    if os.geteuid() == 0:
        os.chown(work, SANDBOX_UID, SANDBOX_UID)
    try:
        out = _inspect({"readable": [secret_dir], "writable": [work], "chdir": work},
                       {"read": ["/etc/shadow", "/etc/passwd", str(secret)],
                        "list": ["/root", "/home", "/sys", str(tmp_path)],
                        "write": [str(work / "ok.txt"), str(host_file), "/usr/lwdock-sbx"],
                        "unix": [str(run_dir / "svc.sock")]}, tmp_path)
    finally:
        server.close()
        (run_dir / "svc.sock").unlink(missing_ok=True)
        run_dir.rmdir()
    plan = out["plan"]
    assert plan.backend == "bwrap" and not plan.missing
    assert out["uid"] == out["euid"] == out["gid"] == SANDBOX_UID and out["groups"] in ([], [SANDBOX_UID])
    assert int(out["cap_eff"], 16) == 0 and out["nnp"] == "1"
    if os.geteuid() == 0:
        assert int(out["cap_bnd"], 16) == 0
    assert out["reads"]["/etc/shadow"] == "FileNotFoundError"
    assert out["reads"]["/etc/passwd"] == "FileNotFoundError"  # the runtime binds its own stub, never the host's
    assert out["reads"][str(secret)] == "PermissionError"
    assert out["lists"]["/home"] == "FileNotFoundError" and out["lists"]["/sys"] == "FileNotFoundError"
    base = Path(sys.base_prefix)  # /root holds at most the way to the interpreter (pyenv lives there)
    assert out["lists"]["/root"] == ([base.relative_to("/root").parts[0]] if base.is_relative_to("/root")
                                     else "FileNotFoundError")
    assert out["writes"][str(work / "ok.txt")] == 1 and (work / "ok.txt").read_text() == "x"
    assert out["writes"]["/usr/lwdock-sbx"] in ("OSError", "PermissionError")
    assert not host_file.exists()  # written to the sandbox's private /tmp
    assert out["connect"][str(run_dir / "svc.sock")] == "FileNotFoundError" and out["run"] == []
    assert out["ifaces"] == ["lo"]
    assert "etc" in out["root"] and "home" not in out["root"] and "sys" not in out["root"]


@needs_bwrap
def test_a_hidden_path_inside_a_bound_directory_is_covered(tmp_path: Path) -> None:
    base = tmp_path / "base"
    home = base / "dock-home"
    env = home / "runtimes" / "k"
    env.mkdir(parents=True)
    (home / "catalog.duckdb").write_text("catalog")
    (env / "lib.py").write_text("env")
    for p in (tmp_path, base, home, home / "runtimes", env):
        p.chmod(0o755)
    out = _inspect({"readable": [base, env], "hide": [home]},
                   {"read": [str(home / "catalog.duckdb"), str(env / "lib.py")], "list": [str(home)], "write": [],
                    "unix": []}, tmp_path)
    assert "hidden-dock-home" in out["plan"].protections
    assert out["reads"][str(home / "catalog.duckdb")] == "FileNotFoundError"
    assert out["reads"][str(env / "lib.py")] == "env"  # what the worker needs inside the home stays visible


MODEL = textwrap.dedent('''
    import os, socket
    import numpy as np
    from learnware.model import BaseModel

    class Model(BaseModel):
        def __init__(self, targets=None):
            super().__init__(input_shape=(2,), output_shape=(1,))
            self.targets = targets or {}

        def predict(self, X):
            out = []
            for p in self.targets.get("read", []):
                try:
                    open(p).read()
                    out.append(1.0)
                except OSError:
                    out.append(0.0)
            for p in self.targets.get("list", []):
                try:
                    out.append(float(len(os.listdir(p)) > 0))
                except OSError:
                    out.append(0.0)
            for p in self.targets.get("unix", []):
                try:
                    socket.socket(socket.AF_UNIX).connect(p)
                    out.append(1.0)
                except OSError:
                    out.append(0.0)
            return np.full(len(X), sum(out))
''')


@needs_bwrap
@pytest.mark.parametrize("mode", ["inherit", "venv"])
def test_runtime_hides_the_dock_home_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Regression (issue 10/14): with LWDOCK_HOME unset, the home passed explicitly is the one hidden."""
    monkeypatch.delenv("LWDOCK_HOME", raising=False)
    home = tmp_path / "dock"  # under /tmp, like every test home
    (home / "learnwares" / "other").mkdir(parents=True)
    (home / "catalog.duckdb").write_text("the catalog")
    (home / "learnwares" / "other" / "__init__.py").write_text("other learnware")
    run_dir = Path("/run") / f"lwdock-test-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(run_dir / "db.sock"))
    server.listen(1)
    lw = tmp_path / "lw"
    lw.mkdir()
    (lw / "__init__.py").write_text(MODEL)
    targets = {"read": [str(home / "catalog.duckdb"), "/etc/shadow",
                        str(home / "learnwares" / "other" / "__init__.py")],
               "list": ["/root/.cache", str(home), "/home"], "unix": [str(run_dir / "db.sock")]}
    envs = EnvironmentManager(home / "runtimes", UV_CACHE)  # a venv under the hidden home must still run
    target = RuntimeTarget(lw, ModelEntrySpec(kwargs={"targets": targets}), ["numpy"], id="lw")
    try:
        with Runtime.open(target, envs=envs, hide=(home,), mode=mode,
                          limits=RuntimeLimits(startup_timeout=60, call_timeout=20)) as model:
            assert model.environment.mode == mode
            assert {"hidden-dock-home", "hidden-host-secrets", "no-host-sockets", "unprivileged-uid"} <= \
                set(model.protections)
            assert model.missing_protections == []
            np.testing.assert_array_equal(model.predict(np.zeros((2, 2))), [0.0, 0.0])
    finally:
        server.close()
        (run_dir / "db.sock").unlink(missing_ok=True)
        run_dir.rmdir()


def test_current_limits_unchanged_in_parent() -> None:
    before = resource.getrlimit(resource.RLIMIT_AS)
    make_preexec(RuntimeLimits(memory_mb=64))  # building the hook must not touch the dock's own limits
    assert resource.getrlimit(resource.RLIMIT_AS) == before


@pytest.mark.parametrize("backend", ["none", "unshare"])
def test_fallback_report_lists_the_missing_protections(tmp_path: Path, backend: str) -> None:
    from types import SimpleNamespace

    from lwlib.check import check_learnware

    if backend == "unshare" and not unshare_available():
        pytest.skip("unshare not available")
    lw = tmp_path / "lw"
    lw.mkdir()
    (lw / "__init__.py").write_text(MODEL)
    home = tmp_path / "dock"
    home.mkdir()
    learnware = SimpleNamespace(id="fallback", root=lw, semantic_spec=None, stat_specs={},
                                requirements=Requirements.from_lines(["numpy"]),
                                manifest=SimpleNamespace(model=ModelEntrySpec()))
    envs = EnvironmentManager(home / "runtimes", UV_CACHE)
    report = check_learnware(learnware, lambda x: Runtime.open(x, envs=envs, hide=(home,), sandbox=backend))
    assert report.status.value == "USABLE"
    assert {"minimal-filesystem", "hidden-dock-home", "unprivileged-uid", "no-host-sockets"} <= \
        set(report.missing_protections)
    assert set(report.protections) | set(report.missing_protections) == set(ALL_PROTECTIONS)
    assert ("no-network" in report.protections) is (backend == "unshare")
