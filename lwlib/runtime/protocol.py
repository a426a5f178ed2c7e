"""Data-only framing between the dock and a learnware worker (shared by host and runner).

Why: the reference pickles inputs and outputs across the trust boundary, so code inside the "isolated" env can run
on the host. Here a message is a length-prefixed JSON header followed by arrays serialised as ``.npy`` bytes and read
back with ``allow_pickle=False``; object dtypes are rejected on both sides. This module is stdlib + numpy only and is
shipped next to ``runner.py`` so the runner can load it by path inside the sandbox.

Frame layout: ``MAGIC`` (4 bytes) | header length (uint32 big-endian) | JSON header (UTF-8) | array payloads. The header
holds ``"arrays": [nbytes, ...]`` so the reader knows how much to consume, and can refuse an answer larger than it is
willing to hold before reading any of it (``max_bytes``). Payloads are decoded in place (``np.frombuffer`` over the
bytes read), so the dock holds one copy of an answer, not three.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MAGIC = b"LWD1"
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAY_BYTES = 1 << 34
ALLOWED_KINDS = frozenset("biufU")  # unicode arrays carry text inputs; never "O"

__all__ = [
    "MAGIC",
    "PayloadTooLarge",
    "ProtocolError",
    "check_array_dtype",
    "decode_arrays",
    "decode_header",
    "encode_message",
    "read_message",
    "write_message",
]


class ProtocolError(Exception):
    """A frame is malformed or carries a forbidden payload (object dtype, oversized header)."""


class PayloadTooLarge(ProtocolError):
    """A frame announces more array bytes than the reader accepts; nothing of the payload was read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame announces {size} bytes of arrays; the limit is {limit}")
        self.size, self.limit = size, limit


def check_array_dtype(arr: np.ndarray, *, name: str = "array") -> None:
    """Raise :class:`ProtocolError` unless ``arr`` is a plain bool/int/float/str array (no objects, no structs)."""
    if not isinstance(arr, np.ndarray):
        raise ProtocolError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype.kind not in ALLOWED_KINDS or arr.dtype.fields is not None:
        raise ProtocolError(f"{name} has dtype {arr.dtype!s}; only bool/int/float/str arrays cross the boundary")


def _array_bytes(arr: np.ndarray, name: str) -> bytes:
    check_array_dtype(arr, name=name)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def encode_message(header: dict[str, Any], arrays: list[np.ndarray] | tuple[np.ndarray, ...] = ()) -> bytes:
    """Serialise one frame; ``header`` must be JSON-able and must not use the key ``arrays``."""
    payloads = [_array_bytes(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    head = dict(header)
    head["arrays"] = [len(p) for p in payloads]
    raw = json.dumps(head, allow_nan=False).encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    return b"".join([MAGIC, struct.pack(">I", len(raw)), raw, *payloads])


def decode_header(prefix: bytes) -> int:
    """Validate the 8-byte prefix and return the header length."""
    if len(prefix) != 8 or prefix[:4] != MAGIC:
        raise ProtocolError(f"bad frame prefix {prefix[:16]!r}: the peer is not speaking the lwdock protocol")
    n: int = struct.unpack(">I", prefix[4:])[0]
    if n > MAX_HEADER_BYTES:
        raise ProtocolError(f"header length {n} exceeds {MAX_HEADER_BYTES}")
    return n


def _parse_header(raw: bytes) -> dict[str, Any]:
    try:
        head = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"header is not UTF-8 JSON: {exc}") from None
    sizes = head.get("arrays") if isinstance(head, dict) else None
    if not isinstance(sizes, list) or not all(isinstance(s, int) and 0 <= s <= MAX_ARRAY_BYTES for s in sizes):
        raise ProtocolError("header must be an object with an 'arrays' list of byte sizes")
    out: dict[str, Any] = head
    return out


def _load_npy(payload: bytes | bytearray | memoryview, name: str) -> np.ndarray:
    """Decode one ``.npy`` payload without pickle and without copying the data (a view over ``payload``)."""
    view = memoryview(payload)
    head = io.BytesIO(view[:4096].tobytes())
    try:
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise ProtocolError(f"{name} is not a valid pickle-free .npy payload: {exc}") from None
    if dtype.hasobject:
        raise ProtocolError(f"{name} is not a valid pickle-free .npy payload: dtype {dtype} holds objects")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    offset = head.tell()
    if count < 0 or offset + count * dtype.itemsize != len(view):
        raise ProtocolError(f"{name}: header says {shape} of {dtype} but the payload holds {len(view) - offset} bytes")
    arr = np.frombuffer(view, dtype=dtype, count=count, offset=offset)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    check_array_dtype(arr, name=name)
    return arr


def decode_arrays(payloads: Sequence[bytes | bytearray | memoryview]) -> list[np.ndarray]:
    """Load ``.npy`` payloads without pickle and reject object dtypes."""
    return [_load_npy(p, f"arrays[{i}]") for i, p in enumerate(payloads)]


def read_message(read_exact: Callable[[int], bytes | bytearray], *,
                 max_bytes: int | None = None) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Read one frame using ``read_exact(n)`` (which must return exactly n bytes or raise).

    Raises
    ------
    PayloadTooLarge
        The header announces more than ``max_bytes`` of arrays (checked before reading them).
    ProtocolError
        Any other malformed frame.
    """
    n = decode_header(bytes(read_exact(8)))
    head = _parse_header(bytes(read_exact(n)))
    sizes = head.pop("arrays")
    total = sum(sizes)
    if max_bytes is not None and total > max_bytes:
        raise PayloadTooLarge(total, max_bytes)
    payloads = [read_exact(s) for s in sizes]
    return head, decode_arrays(payloads)


def write_message(write_all: Callable[[bytes], None], header: dict[str, Any],
                  arrays: list[np.ndarray] | tuple[np.ndarray, ...] = ()) -> None:
    """Encode and write one frame through ``write_all``."""
    write_all(encode_message(header, arrays))
