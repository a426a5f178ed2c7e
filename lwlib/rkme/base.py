"""The contract every statistical specification follows: fit on data, then round-trip through JSON.

Specs travel inside learnware zips as JSON files written by other people, so reading one is an untrusted-input
boundary: files are size-capped, non-finite numbers are refused at parse time, and every failure is a
:class:`~lwlib.errors.SpecFormatError` with a stable code.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from lwlib.base import LwEstimator
from lwlib.errors import SpecFormatError

logger = logging.getLogger(__name__)

__all__ = ["BaseStatSpec", "MAX_SPEC_FILE_BYTES", "read_spec_json"]

# A K=100 × d=13 000 spec is ~25 MB of decimal text; anything far beyond is not a spec we can use.
MAX_SPEC_FILE_BYTES = 64 * 1024 * 1024


def _refuse_constant(name: str) -> Any:
    raise SpecFormatError(
        f"The specification JSON contains the non-finite number {name}; a spec must hold finite numbers only. "
        "Regenerate it from data without NaN/inf.",
        code="spec_nonfinite", constant=name,
    )


def read_spec_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_SPEC_FILE_BYTES) -> dict[str, Any]:
    """Read a spec JSON file into a dict, refusing oversize files, bad JSON, NaN/Infinity and non-objects.

    Raises
    ------
    SpecFormatError
        Codes ``spec_missing_file``, ``spec_too_large``, ``spec_bad_json``, ``spec_nonfinite``, ``spec_not_object``.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecFormatError(f"Statistical specification file {p} does not exist; check the file_name in the "
                              "manifest.", code="spec_missing_file", path=p)
    size = p.stat().st_size
    if size > max_bytes:
        raise SpecFormatError(f"Statistical specification file {p} is {size} bytes, above the {max_bytes}-byte "
                              "limit; use a smaller reduced set.", code="spec_too_large", path=p, size=size)
    with p.open("rb") as fh:
        raw = fh.read(max_bytes + 1)
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SpecFormatError(f"Statistical specification file {p} is not valid UTF-8 JSON ({exc}); regenerate and "
                              "save it with the spec's save().", code="spec_bad_json", path=p) from exc
    if not isinstance(obj, dict):
        raise SpecFormatError(f"Statistical specification file {p} holds a JSON {type(obj).__name__}, expected an "
                              "object with keys z, beta, gamma, num_points, type.", code="spec_not_object", path=p)
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
