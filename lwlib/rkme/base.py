"""The contract every statistical specification follows: fit on data, then round-trip through JSON.

Specs travel inside learnware zips as JSON files written by other people, so reading one is an untrusted-input
boundary: files are size-capped, the number of JSON values is bounded *before* ``json.loads`` builds them (a
64 MiB file of ``[],`` would otherwise become 20 million Python lists), non-finite numbers are refused at parse
time, and every failure is a :class:`~lwlib.errors.SpecFormatError` with a stable code whose message names the file
as the package calls it, never the folder it was extracted to.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from lwlib.base import LwEstimator
from lwlib.constants import RKME_MAX_K, RKME_MAX_VALUES
from lwlib.errors import SpecFormatError
from lwlib.text import safe_text

logger = logging.getLogger(__name__)

__all__ = ["BaseStatSpec", "MAX_SPEC_FILE_BYTES", "read_spec_json"]

# A K=100 × d=13 000 spec is ~25 MB of decimal text; anything far beyond is not a spec we can use.
MAX_SPEC_FILE_BYTES = 64 * 1024 * 1024
#: Most JSON values (numbers, lists, strings) a spec file may hold: K·d points, K weights and a little metadata.
MAX_SPEC_JSON_VALUES = RKME_MAX_VALUES + 2 * RKME_MAX_K + 1_024


def _refuse_constant(name: str) -> Any:
    raise SpecFormatError(
        f"The specification JSON contains the non-finite number {name}; a spec must hold finite numbers only. "
        "Regenerate it from data without NaN/inf.",
        code="spec_nonfinite", constant=name,
    )


def read_spec_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_SPEC_FILE_BYTES,
                   name: str | None = None) -> dict[str, Any]:
    """Read a spec JSON file into a dict, refusing oversize files, bad JSON, NaN/Infinity and non-objects.

    Parameters
    ----------
    path : path-like
    max_bytes : int
        Largest file accepted.
    name : str, optional
        How messages call the file (the manifest's ``file_name``); defaults to the file's base name.

    Raises
    ------
    SpecFormatError
        Codes ``spec_missing_file``, ``spec_too_large``, ``spec_bad_json``, ``spec_nonfinite``, ``spec_not_object``.
    """
    p = Path(path)
    shown = safe_text(name or p.name, max_chars=120)
    if not p.is_file():
        raise SpecFormatError(f"Statistical specification file {shown} does not exist; check the file_name in the "
                              "manifest.", code="spec_missing_file", path=shown)
    size = p.stat().st_size
    if size > max_bytes:
        raise SpecFormatError(f"Statistical specification file {shown} is {size} bytes, above the {max_bytes}-byte "
                              "limit; use a smaller reduced set.", code="spec_too_large", path=shown, size=size)
    with p.open("rb") as fh:
        raw = fh.read(max_bytes + 1)
    # Every JSON value after the first is preceded by a ',' or opens a container: counting these bytes (C speed)
    # bounds what json.loads would allocate, before it allocates it.
    n_values = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if n_values > MAX_SPEC_JSON_VALUES:
        raise SpecFormatError(f"Statistical specification file {shown} holds about {n_values} JSON values; an RKME "
                              f"has at most K·d = {RKME_MAX_VALUES} point coordinates and K = {RKME_MAX_K} weights. "
                              "Use a smaller reduced set.", code="spec_too_large", path=shown, size=size)
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except SpecFormatError as exc:
        exc.message = f"{shown}: {exc.message}"
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else safe_text(exc, max_chars=160)
        raise SpecFormatError(f"Statistical specification file {shown} is not valid UTF-8 JSON ({why}); regenerate "
                              "and save it with the spec's save().", code="spec_bad_json", path=shown) from exc
    if not isinstance(obj, dict):
        raise SpecFormatError(f"Statistical specification file {shown} holds a JSON {type(obj).__name__}, expected "
                              "an object with keys z, beta, gamma, num_points, type.", code="spec_not_object",
                              path=shown)
    return obj


class BaseStatSpec(LwEstimator):
    """Base of statistical specifications: ``fit(X) -> self`` plus a lossless JSON form.

    Subclasses set :attr:`type_name` (the ``"type"`` string written to JSON, which is also the key the market
    stores the spec under) and implement :meth:`fit`, :meth:`to_dict` and :meth:`from_dict`.
    """

    type_name: ClassVar[str] = "BaseStatSpec"
    #: type strings :meth:`from_dict` accepts for this class (legacy aliases included).
    accepted_types: ClassVar[tuple[str, ...]] = ()

    def fit(self, X: Any) -> BaseStatSpec:  # pragma: no cover - abstract
        """Learn the specification from data and return ``self``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """Return the JSON-ready dict, keys in reference order."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaseStatSpec:  # pragma: no cover - abstract
        """Build a fitted spec from a dict as produced by :meth:`to_dict` (or by the reference package)."""
        raise NotImplementedError

    def to_json(self) -> str:
        """Compact JSON (separators ``,`` and ``:``), the exact text the reference package writes."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (temp file + rename) so readers never see half a file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_json().encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.debug("saved %s (%d bytes) to %s", type(self).__name__, len(data), p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BaseStatSpec:
        """Read a spec file written by :meth:`save` or by the reference package; see :func:`read_spec_json`."""
        return cls.from_dict(read_spec_json(path))
