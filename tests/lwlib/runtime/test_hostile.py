"""Worker-level behaviour under hostile models: a fresh worker after a hang, the worker kept after a model exception,
stdout chatter that cannot corrupt the protocol, output validation. The containment cases (crash, memory, network,
sockets, secrets, writes, floods, signals) run through the check in tests/hostile/runtime/."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from lwlib.errors import MalformedOutputError, ModelImportError, ModelRuntimeError, ModelTimeoutError
from lwlib.runtime import EnvironmentManager, ModelEntrySpec, Runtime, RuntimeLimits, RuntimeTarget

HOSTILE = textwrap.dedent('''
    import ctypes, os, socket, sys, time
    import numpy as np
    from learnware.model import BaseModel

    class Model(BaseModel):
        def __init__(self, behaviour="ok", port=0, target=""):
            super().__init__(input_shape=(2,), output_shape=(1,))
            self.behaviour, self.port, self.target = behaviour, port, target
            if behaviour == "import_error":
                raise RuntimeError("boom while constructing")

        def predict(self, X):
            b = self.behaviour
            if b == "hang" and X[0, 0] < 0:
                time.sleep(10 ** 6)
            if b == "exit":
                os._exit(7)
            if b == "segfault":
                ctypes.string_at(0)
            if b == "memory":
                big = np.ones(10 * 1024 ** 3 // 8)
                return big[: len(X)]
            if b == "garbage":
                print("garbage " * 500)
                sys.stdout.write("\\x00\\xff LWD1 not a frame")
                sys.stdout.flush()
                os.write(1, b"LWD1\\x00\\x00\\x00\\x05junk!")
            if b == "socket":
                with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
                    s.sendall(b"exfiltrated")
            if b == "read":
                with open(self.target) as fh:
                    return np.full(len(X), float(len(fh.read())))
            if b == "write":
                with open(self.target, "w") as fh:
                    fh.write("pwned")
            if b == "wrong_length":
                return np.zeros(len(X) + 1)
            if b == "nan":
                return np.full(len(X), np.nan)
            if b == "strings":
                return np.array(["a"] * len(X))
            if b == "dict":
                return {"a": 1}
            if b == "raise":
                raise ValueError("model bug")
            return X.sum(axis=1)
''')

LIMITS = RuntimeLimits(startup_timeout=30, call_timeout=5, memory_mb=2048, cpu_seconds=60)
X = np.arange(8, dtype=np.float64).reshape(4, 2)


@pytest.fixture(scope="module")
def lw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "lw"
    root.mkdir()
    (root / "__init__.py").write_text(HOSTILE)
    (root / "learnware.yaml").write_text("model:\n  class_name: Model\n  module_path: __init__.py\n")
    return root


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> EnvironmentManager:
    return EnvironmentManager(tmp_path_factory.mktemp("envs"), Path.home() / ".cache" / "lwdock-test-uv")


def _open(lw_dir: Path, envs: EnvironmentManager, hide: tuple[Path, ...] = (), **kwargs: object):
    target = RuntimeTarget(lw_dir, ModelEntrySpec(kwargs=dict(kwargs)), ["numpy"], id="hostile")
    return Runtime.open(target, envs=envs, hide=hide, limits=LIMITS)


def test_hang_times_out_and_fresh_worker_recovers(lw_dir: Path, envs: EnvironmentManager, tmp_path: Path) -> None:
    with _open(lw_dir, envs, behaviour="hang") as model:
        first_pid = model.pid
        with pytest.raises(ModelTimeoutError, match="did not answer predict"):
            model.predict(X - 100.0)
        assert model.pid is None  # killed with its process group
        np.testing.assert_allclose(model.predict(X), X.sum(axis=1))
        assert model.restarts == 1 and model.pid != first_pid


def test_stdout_garbage_does_not_corrupt_protocol(lw_dir: Path, envs: EnvironmentManager) -> None:
    with _open(lw_dir, envs, behaviour="garbage") as model:
        for _ in range(3):
            np.testing.assert_allclose(model.predict(X), X.sum(axis=1))


@pytest.mark.parametrize("behaviour, match", [("wrong_length", "first dimension"), ("nan", "NaN"),
                                              ("strings", "dtype"), ("dict", "dict")])
def test_malformed_outputs_rejected(lw_dir: Path, envs: EnvironmentManager, behaviour: str, match: str) -> None:
    with _open(lw_dir, envs, behaviour=behaviour) as model, pytest.raises(MalformedOutputError, match=match):
        model.predict(X)


def test_model_exception_keeps_worker(lw_dir: Path, envs: EnvironmentManager) -> None:
    with _open(lw_dir, envs, behaviour="raise") as model:
        pid = model.pid
        with pytest.raises(ModelRuntimeError, match="model bug"):
            model.predict(X)
        assert model.pid == pid


def test_import_error_has_traceback(lw_dir: Path, envs: EnvironmentManager) -> None:
    with pytest.raises(ModelImportError, match="boom while constructing") as info:
        _open(lw_dir, envs, behaviour="import_error")
    assert "Traceback" in info.value.facts["traceback"] or "line" in info.value.facts["traceback"]
