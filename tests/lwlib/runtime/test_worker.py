"""Persistent worker + runner + protocol: real subprocesses, real uv venv for scikit-learn, inherit mode for torch."""

from __future__ import annotations

import importlib.metadata
import io
import pickle
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lwlib.learnware.requirements import Requirements
from lwlib.runtime import EnvironmentManager, ModelEntrySpec, Runtime, RuntimeLimits, RuntimeTarget, protocol
from lwlib.runtime.worker import StderrTail

UV_CACHE = Path.home() / ".cache" / "lwdock-test-uv"
SHARED_ENVS = Path.home() / ".cache" / "lwdock-test-envs"  # venvs keyed by requirements: reused across runs
LIMITS = RuntimeLimits(startup_timeout=60, call_timeout=30)


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> EnvironmentManager:
    return EnvironmentManager(tmp_path_factory.mktemp("envs"), UV_CACHE)


def _learnware(root: Path, init: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "__init__.py").write_text(textwrap.dedent(init))
    (root / "learnware.yaml").write_text("model:\n  class_name: Model\n  module_path: __init__.py\n")
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


# -- protocol --------------------------------------------------------------------------------------------------
def test_protocol_round_trip() -> None:
    arrays = [np.arange(6, dtype=np.int32).reshape(2, 3), np.linspace(0, 1, 5), np.array(["a", "bc"])]
    raw = io.BytesIO(protocol.encode_message({"method": "predict", "n": 3}, arrays))
    head, out = protocol.read_message(raw.read)
    assert head == {"method": "predict", "n": 3}
    for a, b in zip(arrays, out):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_protocol_rejects_object_dtype_both_sides() -> None:
    with pytest.raises(protocol.ProtocolError, match="dtype object"):
        protocol.encode_message({}, [np.array([{"a": 1}], dtype=object)])
    buf = io.BytesIO()
    np.save(buf, np.array([1, "x"], dtype=object), allow_pickle=True)  # what a hostile peer could send
    payload = buf.getvalue()
    head = b'{"arrays": [%d]}' % len(payload)
    frame = protocol.MAGIC + len(head).to_bytes(4, "big") + head + payload
    with pytest.raises(protocol.ProtocolError, match="pickle-free"):
        protocol.read_message(io.BytesIO(frame).read)


def test_protocol_rejects_bad_prefix() -> None:
    with pytest.raises(protocol.ProtocolError, match="prefix"):
        protocol.read_message(io.BytesIO(b"hello world, not a frame").read)


# -- runner in inherit mode ------------------------------------------------------------------------------------
def test_relative_imports_kwargs_shapes_and_persistence(tmp_path: Path, envs: EnvironmentManager) -> None:
    root = _learnware(tmp_path / "lw", '''
        from learnware.model import BaseModel
        from .sub.helper import scale
        print("module-level chatter on stdout")

        class Model(BaseModel):
            def __init__(self, k=1.0):
                super().__init__(input_shape=(3,), output_shape=(1,))
                self.k = k
                self.offset = 0.0

            def predict(self, X):
                print("predict chatter")
                return scale(X.sum(axis=1), self.k) + self.offset

            def fit(self, X, y):
                self.offset = float(y.mean())

            def finetune(self, X, y):
                self.offset += 1.0
    ''', {"sub/__init__.py": "", "sub/helper.py": "def scale(x, k):\n    return x * k\n"})
    X = np.arange(12.0).reshape(4, 3)
    lw = SimpleNamespace(id="abc", root=root, requirements=Requirements.from_lines(["numpy"]),
                         manifest=SimpleNamespace(model=ModelEntrySpec(kwargs={"k": 2.0})))
    with Runtime.open(lw, envs=envs, limits=LIMITS) as model:
        assert model.environment.mode == "inherit"
        assert model.input_shape == (3,) and model.output_shape == (1,)
        pid = model.pid
        np.testing.assert_allclose(model.predict(X), 2.0 * X.sum(axis=1))
        model.fit(X, np.full(4, 5.0)).finetune(X, np.zeros(4))
        np.testing.assert_allclose(model.predict(X), 2.0 * X.sum(axis=1) + 6.0)
        assert model.pid == pid  # one persistent worker for every call
        workdir = model.workdir
        assert workdir != root and workdir.is_dir()
    assert not workdir.exists()


def test_module_path_other_than_init(tmp_path: Path, envs: EnvironmentManager) -> None:
    root = _learnware(tmp_path / "lw", "", {"models/net.py": '''
        import numpy as np
        from ..util import double

        class Net:
            input_shape, output_shape = (2,), (1,)

            def predict(self, X):
                return double(X[:, 0]).astype(np.int64)
    ''', "models/__init__.py": "", "util.py": "def double(x):\n    return 2 * x\n"})
    target = RuntimeTarget(root, ModelEntrySpec("Net", "models/net.py"), ["numpy"])
    with Runtime.open(target, envs=envs, limits=LIMITS) as model:
        out = model.predict(np.array([[1.0, 0.0], [3.0, 0.0]]))
    np.testing.assert_array_equal(out, [2, 6])
    assert out.dtype.kind == "i"


# -- real venv: scikit-learn ---------------------------------------------------------------------------------
SKLEARN_INIT = '''
    import os
    import pickle
    from learnware.model import BaseModel

    class Model(BaseModel):
        def __init__(self):
            super().__init__(input_shape=(4,), output_shape=(3,))
            with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.pkl"), "rb") as fh:
                self.model = pickle.load(fh)

        def predict(self, X):
            return self.model.predict_proba(X)
'''


@pytest.mark.integration
def test_sklearn_learnware_predicts_identically_in_venv(tmp_path: Path, envs: EnvironmentManager) -> None:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0, n_classes=3,
                               random_state=0)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    root = _learnware(tmp_path / "sk", SKLEARN_INIT)
    (root / "model.pkl").write_bytes(pickle.dumps(clf))
    reqs = [f"numpy=={importlib.metadata.version('numpy')}",
            f"scikit-learn=={importlib.metadata.version('scikit-learn')}", "learnware==0.1.2.99"]
    (root / "requirements.txt").write_text("\n".join(reqs) + "\n")
    shared = EnvironmentManager(SHARED_ENVS, UV_CACHE)
    with Runtime.open(RuntimeTarget(root, ModelEntrySpec(), reqs), mode="venv", envs=shared, limits=LIMITS) as model:
        assert model.environment.mode == "venv"
        assert str(model.environment.python).startswith(str(SHARED_ENVS))
        out = model.predict(X)
    np.testing.assert_array_equal(out, clf.predict_proba(X))


# -- torch in inherit mode -----------------------------------------------------------------------------------
TORCH_INIT = '''
    import os
    import torch
    from learnware.model import BaseModel

    class Model(BaseModel):
        def __init__(self):
            super().__init__(input_shape=(5,), output_shape=(2,))
            self.net = torch.jit.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "net.pt"))

        def predict(self, X):
            with torch.no_grad():
                return self.net(torch.as_tensor(X, dtype=torch.float32))
'''


@pytest.mark.integration
def test_torchscript_learnware_runs_in_inherit_mode(tmp_path: Path, envs: EnvironmentManager) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    root = _learnware(tmp_path / "tw", TORCH_INIT)
    torch.jit.save(torch.jit.script(net), str(root / "net.pt"))
    X = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    with Runtime.open(RuntimeTarget(root, ModelEntrySpec(), ["torch==2.13.0", "numpy"]), envs=envs,
                      limits=LIMITS) as model:
        assert model.environment.mode == "inherit"
        out = model.predict(X)
    with torch.no_grad():
        expected = net(torch.as_tensor(X)).numpy()
    assert out.dtype == np.float32 and out.shape == (16, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["auto", "venv"])
def test_packaged_learnware_end_to_end(tmp_path: Path, mode: str) -> None:
    packager = pytest.importorskip("lwlib.learnware.packager")
    package = pytest.importorskip("lwlib.learnware.package")
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=120, n_features=5, random_state=1)
    clf = LogisticRegression().fit(X, y)
    semantic = {"Data": {"Type": "Class", "Values": ["Table"]},
                "Task": {"Type": "Class", "Values": ["Classification"]},
                "Library": {"Type": "Class", "Values": ["Scikit-learn"]},
                "Scenario": {"Type": "Tag", "Values": ["Business"]}, "License": {"Type": "Class", "Values": ["MIT"]},
                "Name": {"Type": "String", "Values": "e2e"}, "Description": {"Type": "String", "Values": "e2e"},
                "Input": {"Dimension": 5, "Description": {str(i): f"f{i}" for i in range(5)}},
                "Output": {"Dimension": 2, "Description": {"0": "no", "1": "yes"}}}
    zip_path = packager.package_learnware(clf, X, semantic, tmp_path / "lw.zip")
    lw = package.open_learnware(zip_path, tmp_path / "work")
    with Runtime.open(lw, mode=mode, envs=EnvironmentManager(SHARED_ENVS, UV_CACHE), limits=LIMITS) as model:
        assert model.environment.mode == ("inherit" if mode == "auto" else "venv")
        out = model.predict(X)
    np.testing.assert_array_equal(out.ravel(), clf.predict(X))


# -- bounded reading on the dock side ----------------------------------------------------------------------------
def test_stderr_tail_is_bounded_for_any_input() -> None:
    tail = StderrTail(max_lines=3, max_chars=10)
    for _ in range(100):  # 100 MiB without a newline: only the head of the line is kept, as it arrives
        tail.feed(b"a" * (1 << 20))
    assert len(tail._partial) <= tail.max_bytes and tail.dropped_bytes >= 100 * (1 << 20) - tail.max_bytes
    tail.feed(b"\nline1\nline2\x1b[31m\x07\nline3\nline4")
    tail.close()
    assert tail.tail() == ["line2[31m", "line3", "line4"]
    assert all(len(line) <= 10 for line in tail.lines)


def test_oversized_answer_is_refused_before_reading_it() -> None:
    frame = protocol.encode_message({"ok": True}, [np.zeros(1000)])
    raw, asked = io.BytesIO(frame), []

    def read_exact(n: int) -> bytes:
        asked.append(n)
        return raw.read(n)

    with pytest.raises(protocol.PayloadTooLarge) as info:
        protocol.read_message(read_exact, max_bytes=4000)
    assert info.value.size > 8000 and info.value.limit == 4000
    assert all(n < 1000 for n in asked)  # prefix and header only


def test_decoded_arrays_are_writable_views() -> None:
    arr = np.arange(12.0).reshape(3, 4)
    raw = io.BytesIO(protocol.encode_message({}, [arr, np.asfortranarray(arr)]))
    _, out = protocol.read_message(lambda n: bytearray(raw.read(n)))
    for got in out:
        np.testing.assert_array_equal(got, arr)
        got[0, 0] = -1.0  # models may modify X in place


@pytest.mark.parametrize("payload", [b"\x93NUMPY\x01\x00" + b"x" * 20, b"not npy at all"])
def test_malformed_npy_payload_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_arrays([payload])
