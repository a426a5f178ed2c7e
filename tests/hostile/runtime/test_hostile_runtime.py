"""Hostile runtime suite (issue 10, runtime half): 58 hostile models, built from source strings in runtime_cases.py.

Every case runs the real check (``check_learnware`` over ``Runtime.open`` with bubblewrap), with the dock home under
``/tmp`` passed as ``hide`` and ``LWDOCK_HOME`` pointing elsewhere, and asserts:

- the outcome: status, code and a reason pattern (contained escape attempts end USABLE, a failing containment
  check inside the model raises ``Escaped`` and would show up in the reason);
- no marker file appeared outside the sandbox, and the host's TCP/UDP/Unix/abstract listeners received nothing;
- nothing of the host leaked into the report (secrets, dock home and temp paths, interpreter paths, control
  characters, reasons over 400 characters);
- nothing was left behind: the private copy is gone, no process carries the case's token and the worker's PID
  namespace is empty, the learnware's own files are unchanged, a sentinel host process survived.

Categories (count): hang (5), crash (7), fork (4), network (4), unix-socket (2), host-secrets (9), memory (5),
output (7), stderr (4), signals (4), writes (4), other-learnwares (3).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from runtime_cases import CASES, Case

from lwlib.check import check_learnware
from lwlib.learnware.requirements import Requirements
from lwlib.runtime import EnvironmentManager, ModelEntrySpec, Runtime, RuntimeLimits, RuntimeTarget
from lwlib.runtime.api import RUNNER_DIR
from lwlib.runtime.sandbox import ALL_PROTECTIONS, bwrap_available

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="the hostile runtime suite needs bubblewrap")

UV_CACHE = Path.home() / ".cache" / "lwdock-test-uv"
LIMITS = RuntimeLimits(startup_timeout=30, call_timeout=20, memory_mb=1024, cpu_seconds=30, max_processes=64,
                       max_file_mb=32, max_output_mb=16, tmp_mb=64, stderr_lines=50, stderr_line_chars=200)
REQS = Requirements.from_lines(["numpy"])
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class _Listener:
    """Host services a model must not reach; every byte they receive is recorded."""

    def __init__(self, base: Path, token: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.abstract_name = f"lwdock-hostile-{token}"
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind("\0" + self.abstract_name)
        self.run_path = Path("/run") / f"lwdock-hostile-{token}.sock"
        self.tmp_path = base / "run" / "svc.sock"
        self.tmp_path.parent.mkdir()
        self.unix = []
        for path in (self.run_path, self.tmp_path):
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(path))
            self.unix.append(s)
        self._stop = False
        self._threads = [threading.Thread(target=self._serve, args=(s,), daemon=True)
                         for s in (self.tcp, self.abstract, *self.unix)]
        self._threads.append(threading.Thread(target=self._serve_udp, daemon=True))
        for t in self._threads:
            t.start()

    def _serve(self, server: socket.socket) -> None:
        server.listen(8)
        server.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append((str(server.getsockname()), conn.recv(100) or b"<connected>"))
                except OSError:
                    self.received.append((str(server.getsockname()), b"<connected>"))

    def _serve_udp(self) -> None:
        self.udp.settimeout(0.2)
        while not self._stop:
            try:
                self.received.append(("udp", self.udp.recv(100)))
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        for t in self._threads:
            t.join(timeout=2)
        for s in (self.tcp, self.udp, self.abstract, *self.unix):
            s.close()
        self.run_path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A dock home under /tmp with secrets, host services, a sentinel process and a secret in the environment."""
    token = uuid.uuid4().hex[:12]
    base = Path(tempfile.mkdtemp(prefix="lwdock-hostile-"))
    home = base / "dock"
    (home / "learnwares" / "other").mkdir(parents=True)
    secrets = {name: f"{name.upper()}-{uuid.uuid4().hex}" for name in ("catalog", "other", "env", "victim")}
    (home / "catalog.duckdb").write_text(secrets["catalog"])
    (home / "mlflow.db").write_text(secrets["catalog"])
    other = home / "learnwares" / "other" / "__init__.py"
    other.write_text(secrets["other"])
    listener = _Listener(base, token)
    sentinel = subprocess.Popen(["sleep", "3600"], start_new_session=True)
    old_env = {k: os.environ.get(k) for k in ("LWDOCK_HOSTILE_SECRET", "LWDOCK_HOME")}
    os.environ["LWDOCK_HOSTILE_SECRET"] = secrets["env"]
    os.environ["LWDOCK_HOME"] = str(base / "not-the-home")  # the runtime must hide what it is given, not this
    try:
        yield SimpleNamespace(base=base, home=home, other=other, secrets=secrets, listener=listener,
                              sentinel=sentinel)
    finally:
        for k, v in old_env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        sentinel.kill()
        sentinel.wait()
        listener.close()
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.fixture(scope="module")
def envs(host: SimpleNamespace) -> EnvironmentManager:
    return EnvironmentManager(host.home / "runtimes", UV_CACHE)


@pytest.fixture(scope="module")
def victim(host: SimpleNamespace, envs: EnvironmentManager, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Another learnware running at the same time, with a secret in its files."""
    root = tmp_path_factory.mktemp("victim")
    (root / "__init__.py").write_text("from learnware.model import BaseModel\nclass Model(BaseModel):\n"
                                      "    def __init__(self):\n        super().__init__(input_shape=(2,), "
                                      "output_shape=(1,))\n    def predict(self, X):\n        return X.sum(axis=1)\n")
    (root / "secret.txt").write_text(host.secrets["victim"])
    with Runtime.open(RuntimeTarget(root, ModelEntrySpec(), REQS, id="victim"), envs=envs, hide=(host.home,),
                      limits=LIMITS) as model:
        yield model


def _shadow_hashes() -> list[str]:
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return []
    return [f.split(":")[1] for f in lines if len(f.split(":")) > 2 and len(f.split(":")[1]) > 5]


def _cmdlines() -> dict[int, bytes]:
    out = {}
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            out[int(p.split("/")[2])] = Path(p).read_bytes()
        except OSError:
            pass
    return out


def _pidns(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _in_namespace(ns: int) -> list[int]:
    return [pid for pid in _cmdlines() if _pidns(pid) == ns]


class _Watch:
    """Opens runtimes for the check and remembers their worker pid, PID namespace and private copy."""

    def __init__(self, envs: EnvironmentManager, hide: Path, limits: RuntimeLimits, token: str) -> None:
        self.envs, self.hide, self.limits, self.token = envs, hide, limits, token
        self.pids: list[int] = []
        self.namespaces: set[int] = set()
        self.private: list[Path] = []

    @contextlib.contextmanager
    def open(self, learnware: Any) -> Iterator[Any]:
        model = Runtime.open(learnware, envs=self.envs, hide=(self.hide,), limits=self.limits)
        try:
            self.private.append(model._tmp)
            if model.pid is not None:
                self.pids.append(model.pid)
                own = _pidns(os.getpid())
                for pid, cmd in _cmdlines().items():
                    if self.token.encode() in cmd and _pidns(pid) not in (None, own):
                        self.namespaces.add(_pidns(pid))  # type: ignore[arg-type]
            yield model
        finally:
            model.close()


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _wait_until(predicate: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_model_is_contained(case: Case, host: SimpleNamespace, envs: EnvironmentManager, tmp_path: Path,
                                    request: pytest.FixtureRequest) -> None:
    token = f"case{uuid.uuid4().hex[:16]}"
    lw_dir = tmp_path / "lw"
    lw_dir.mkdir()
    markers = [f"/tmp/lwdock-marker-{token}", f"{host.home}/marker-{token}", f"/dev/shm/lwdock-marker-{token}",
               f"/run/lwdock-marker-{token}", f"{lw_dir}/marker-{token}", f"{host.base}/marker-{token}",
               f"{Path.home()}/lwdock-marker-{token}"]
    ctx = {"token": token, "home": str(host.home), "markers": markers, "tcp_port": host.listener.tcp.getsockname()[1],
           "udp_port": host.listener.udp.getsockname()[1], "abstract": host.listener.abstract_name,
           "run_socket": str(host.listener.run_path), "tmp_socket": str(host.listener.tmp_path),
           "env_secret": host.secrets["env"], "dock_pid": os.getpid(), "sentinel_pid": host.sentinel.pid,
           "runner_dir": str(RUNNER_DIR), "hostname": socket.gethostname(), "other_learnware": str(host.other),
           "victim_secret": host.secrets["victim"]}
    (lw_dir / "__init__.py").write_text(case.source())
    for name, text in case.files.items():
        (lw_dir / name).write_text(text.replace("{token}", token))
    if case.id == "other-running-learnware":
        request.getfixturevalue("victim")
    before = _snapshot(lw_dir)
    learnware = SimpleNamespace(id=f"hostile-{token}", root=lw_dir, requirements=REQS, semantic_spec=None,
                                stat_specs={}, manifest=SimpleNamespace(model=ModelEntrySpec(kwargs={"ctx": ctx})))
    watch = _Watch(envs, host.home, dataclasses.replace(LIMITS, **case.limits), token)

    report = check_learnware(learnware, watch.open)

    # outcome and reason
    assert report.status.value.lower() == case.status and report.code in case.codes, report
    assert re.search(case.reason, report.reason), report.reason
    assert "Escaped" not in report.reason
    # the sandbox in force, and said so
    assert set(report.protections) == set(ALL_PROTECTIONS) and report.missing_protections == ()
    # nothing of the host in the report
    text = json.dumps(report.to_dict())
    forbidden = [*host.secrets.values(), f"OWN-{token}", str(host.home), str(host.base), str(tmp_path),
                 "/tmp/lwdock-lw-", sys.prefix, sys.base_prefix, str(RUNNER_DIR), *_shadow_hashes()]
    assert not [s for s in forbidden if s in text]
    assert len(report.reason) <= 400 and not CONTROL.search(report.reason)
    # no marker outside the sandbox, no byte to a host service, sentinel alive
    assert not [m for m in markers if os.path.lexists(m)]
    assert host.listener.received == []
    assert host.sentinel.poll() is None
    # nothing left behind
    assert _snapshot(lw_dir) == before
    assert not [p for p in watch.private if p.exists()]
    assert len(watch.namespaces) == len(watch.pids)  # each started worker was seen in its own PID namespace
    assert _wait_until(lambda: not [pid for pid, cmd in _cmdlines().items() if token.encode() in cmd])
    assert _wait_until(lambda: not [pid for ns in watch.namespaces for pid in _in_namespace(ns)])
    leftovers = [d for d in glob.glob("/tmp/lwdock-lw-*") if token in _read(Path(d) / "learnware" / "__init__.py")]
    assert not leftovers


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def test_docstring_counts_match_the_cases() -> None:
    counts = collections.Counter(c.category for c in CASES)
    listed = dict(re.findall(r"([a-z-]+) \((\d+)\)", __doc__ or ""))
    assert {k: int(v) for k, v in listed.items()} == dict(counts)
    assert f"{len(CASES)} hostile models" in (__doc__ or "")
    assert len({c.id for c in CASES}) == len(CASES) >= 40
