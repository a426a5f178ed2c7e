"""Entry point executed INSIDE a learnware runtime: load the model once, then serve calls over a data-only pipe.

Why: the reference re-imports the model and pays an interpreter start plus pickle I/O on every call, and pickles
results back to the host. This runner is persistent, speaks only JSON headers + ``.npy`` arrays (see
``protocol.py``, loaded by path so nothing of the dock is imported here), and moves the model's own stdout to stderr
before importing it so a chatty model cannot corrupt the protocol stream. Stdlib + numpy only.

Usage: ``python -I -B runner.py --root DIR --module __init__.py --class Model --kwargs '{}' --shim SHIM_DIR``
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = ("predict", "fit", "finetune")


def _load_protocol() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("_lwdock_protocol", os.path.join(HERE, "protocol.py"))
    if spec is None or spec.loader is None:
        raise ImportError("the runner's protocol.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _take_protocol_fds() -> tuple[int, int]:
    """Keep private copies of stdin/stdout for the protocol; the model sees /dev/null and stderr instead."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stdin = open(0, "r", closefd=False)
    return proto_in, proto_out


def _reader(fd: int) -> Callable[[int], bytearray]:
    def read_exact(n: int) -> bytearray:
        buf = bytearray(n)  # writable: arrays decoded in place stay writable for models that modify X
        view, got = memoryview(buf), 0
        while got < n:
            k = os.readv(fd, [view[got:]])
            if not k:
                raise EOFError("host closed the protocol pipe")
            got += k
        return buf
    return read_exact


def _writer(fd: int) -> Callable[[bytes], None]:
    def write_all(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return write_all


def _load_class(root: str, module_path: str, class_name: str) -> type:
    """Import the learnware dir as a package (so relative imports work) and return the model class."""
    if os.path.isabs(module_path) or ".." in module_path.replace("\\", "/").split("/"):
        raise ImportError(f"module_path {module_path!r} must be relative to the learnware directory")
    pkg = "_lw_" + hashlib.sha1(root.encode()).hexdigest()[:12]
    init = os.path.join(root, "__init__.py")
    if os.path.isfile(init):
        spec = importlib.util.spec_from_file_location(pkg, init, submodule_search_locations=[root])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {init}")
        package = importlib.util.module_from_spec(spec)
        sys.modules[pkg] = package
        spec.loader.exec_module(package)
    else:
        package = types.ModuleType(pkg)
        package.__path__ = [root]
        sys.modules[pkg] = package
    if module_path in ("", ".", "__init__.py"):
        module = package
    elif module_path.endswith(".py"):
        dotted = module_path[:-3].replace("/", ".")
        dotted = dotted.removesuffix(".__init__")
        module = importlib.import_module(f"{pkg}.{dotted}")
    else:
        module = importlib.import_module(module_path)
    cls: type = getattr(module, class_name)
    setattr(sys.modules["__main__"], class_name, cls)  # reference pickles may name __main__.<Class>
    return cls


def _shape(value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        return None


def _to_array(out: Any) -> np.ndarray:
    """Convert a prediction to a numeric ndarray (torch tensors converted here) or raise TypeError."""
    if hasattr(out, "detach") and hasattr(out, "cpu") and hasattr(out, "numpy"):
        out = out.detach().cpu().numpy()
    if isinstance(out, (list, tuple)):
        out = np.asarray(out)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"predict returned {type(out).__name__}, expected a numpy array or torch tensor")
    if out.dtype.kind == "b":
        out = out.astype(np.int64)
    if out.dtype.kind not in "iuf" or out.dtype.fields is not None:
        raise TypeError(f"predict returned dtype {out.dtype!s}; only int/float outputs are accepted")
    array: np.ndarray = out
    return array


def _error(kind: str, exc: BaseException) -> dict[str, Any]:
    try:
        text = str(exc)[:2000]
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:]
    except Exception:  # noqa: BLE001 - a model's __str__ may itself raise
        text, tb = "<unprintable exception>", ""
    name = type(exc).__name__[:200]
    head = {"ok": False, "kind": kind, "type": name, "message": f"{name}: {text}", "traceback": tb}
    if isinstance(exc, ImportError) and isinstance(exc.name, str):
        head["module"] = exc.name[:200]  # the missing module: what a submitter most needs to see
    return head


def serve(args: argparse.Namespace) -> int:
    proto_in, proto_out = _take_protocol_fds()
    faulthandler.enable(file=sys.stderr)  # a segfaulting model leaves a stack in the host's stderr tail
    protocol = _load_protocol()
    read_exact, write_all = _reader(proto_in), _writer(proto_out)

    def send(head: dict[str, Any], arrays: tuple[np.ndarray, ...] = ()) -> None:
        protocol.write_message(write_all, head, arrays)

    root = os.path.abspath(args.root)
    os.chdir(root)
    sys.path.insert(0, args.shim)
    try:
        cls = _load_class(root, args.module, args.class_name)
        model = cls(**json.loads(args.kwargs))
    except BaseException as exc:  # noqa: BLE001 - everything the import does is reported, then we exit
        send(_error("import", exc))
        return 3
    send({"ok": True, "kind": "ready", "pid": os.getpid(), "python": sys.version.split()[0],
          "input_shape": _shape(getattr(model, "input_shape", None)),
          "output_shape": _shape(getattr(model, "output_shape", None))})
    while True:
        try:
            head, arrays = protocol.read_message(read_exact)
        except EOFError:
            return 0
        except protocol.ProtocolError as exc:
            send(_error("protocol", exc))
            return 4
        method = head.get("method")
        if method == "close":
            send({"ok": True, "kind": "closed"})
            return 0
        if method not in METHODS or len(arrays) not in (1, 2):
            send({"ok": False, "kind": "protocol", "message": f"unknown method {method!r}", "traceback": ""})
            continue
        call_args = arrays if method == "predict" else (arrays[0], arrays[1] if len(arrays) == 2 else None)
        try:
            result = getattr(model, method)(*call_args)
        except MemoryError as exc:
            send(_error("memory", exc))
            return 5
        except Exception as exc:  # noqa: BLE001 - model errors are data for the host
            send(_error("call", exc))
            continue
        if method != "predict":
            send({"ok": True, "kind": "result"})
            continue
        try:
            out = _to_array(result)
        except Exception as exc:  # noqa: BLE001
            send(_error("output", exc))
            continue
        send({"ok": True, "kind": "result"}, (out,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--module", default="__init__.py")
    parser.add_argument("--class", dest="class_name", default="Model")
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--shim", default=os.path.join(HERE, "shim"))
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
