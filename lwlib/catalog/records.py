"""Typed rows of the market catalog.

Every row leaving DuckDB becomes a frozen dataclass so callers never index tuples or dicts. The semantic
specification is kept as its full reference dict next to the flattened columns, so a record can be turned back
into a :class:`~lwlib.semantic.SemanticSpec` without loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Mapping

import numpy as np
from numpy.typing import NDArray

from lwlib.status import Status

__all__ = ["LearnwareRecord", "CheckRecord", "SpecPayload", "SpecStack", "CheckKind", "utcnow"]

CheckKind = Literal["submit", "recheck"]


def utcnow() -> datetime:
    """Timezone-aware UTC now (the catalog stores naive UTC and re-attaches the zone on read)."""
    return datetime.now(timezone.utc)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class LearnwareRecord:
    """One learnware in the catalog (columns of the ``learnwares`` table).

    Attributes
    ----------
    id : str
        sha256 of the zip bytes (64 lowercase hex), the content address and primary key.
    status : Status
        Outcome of the last check; ``reason`` explains a non-usable status.
    scenarios : tuple of str
        Semantic scenarios (a tuple so the record stays hashable-friendly and immutable).
    semantic : mapping or None
        The full semantic specification in the reference dict format, for lossless reconstruction.
    registry_name, registry_version, registry_uri : str or None
        Where the MLflow registry holds the artifact (the system of record).
    """

    id: str
    name: str
    status: Status
    version: int = 1
    reason: str | None = None
    data_type: str | None = None
    task_type: str | None = None
    library_type: str | None = None
    scenarios: tuple[str, ...] = ()
    license: str | None = None
    description: str | None = None
    input_dim: int | None = None
    output_dim: int | None = None
    spec_type: str | None = None
    spec_dim: int | None = None
    spec_k: int | None = None
    runtime_key: str | None = None
    registry_name: str | None = None
    registry_version: str | None = None
    registry_uri: str | None = None
    zip_path: str | None = None
    semantic: Mapping[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "scenarios", tuple(self.scenarios or ()))
        object.__setattr__(self, "created_at", _as_utc(self.created_at))
        object.__setattr__(self, "updated_at", _as_utc(self.updated_at))

    @property
    def usable(self) -> bool:
        return self.status is Status.USABLE

    @classmethod
    def from_semantic(cls, learnware_id: str, semantic: Any, *, status: Status | str = Status.USABLE,
                      **fields: Any) -> LearnwareRecord:
        """Fill the semantic columns from a :class:`~lwlib.semantic.SemanticSpec` (kept whole as reference JSON).

        ``fields`` sets the other columns (``spec_type``, ``registry_name``, ...) and may override any of these.
        """
        base: dict[str, Any] = {
            "name": semantic.name, "data_type": semantic.data_type, "task_type": semantic.task_type,
            "library_type": semantic.library_type, "scenarios": tuple(semantic.scenarios),
            "license": semantic.license, "description": semantic.description,
            "input_dim": semantic.input.dimension if semantic.input is not None else None,
            "output_dim": semantic.output.dimension if semantic.output is not None else None,
            "semantic": semantic.to_reference(),
        }
        return cls(id=learnware_id, status=Status(status), **{**base, **fields})

    @classmethod
    def from_submission(cls, sub: Any) -> LearnwareRecord:
        """The row of a checked and registered :class:`~lwlib.submission.Submission`."""
        check, ref, spec = sub.check, sub.reference, sub.spec
        return cls.from_semantic(
            sub.id, sub.semantic, status=check.status, reason=check.reason, spec_type=spec.spec_type,
            spec_dim=spec.n_features, spec_k=spec.reduced_set_size,
            runtime_key=sub.runtime.env_key if sub.runtime is not None else None, registry_name=ref.name,
            registry_version=ref.version, registry_uri=ref.uri, zip_path=str(sub.learnware.zip_path))

    def semantic_spec(self) -> Any:
        """The stored semantic specification as a :class:`~lwlib.semantic.SemanticSpec` (None if absent)."""
        if self.semantic is None:
            return None
        from lwlib.semantic import SemanticSpec

        return SemanticSpec.from_stored(self.semantic)  # rows written before today's bounds still load


@dataclass(frozen=True)
class CheckRecord:
    """One entry of a learnware's check history (a submission check or a later re-check).

    ``id`` and ``created_at`` are filled by the catalog on insert; ``report`` is the JSON-ready check report.
    """

    learnware_id: str
    kind: CheckKind
    status: Status
    reason: str | None = None
    report: Mapping[str, Any] | None = None
    duration_s: float | None = None
    id: int | None = None
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "created_at", _as_utc(self.created_at))


@dataclass(frozen=True)
class SpecPayload:
    """A statistical specification as stored: its JSON without the arrays, plus the RKME arrays as columns.

    The point set is the bulk of a spec; keeping it only in ``DOUBLE[]`` columns (not also as JSON text) lets
    search load every spec in one query without parsing numbers. :meth:`to_dict` rebuilds the exact JSON.

    Attributes
    ----------
    meta : mapping
        The spec's reference dict with ``"z"``/``"beta"`` replaced by ``None`` placeholders when the arrays are
        held in :attr:`z`/:attr:`beta` (placeholders keep the reference key order).
    z : ndarray of shape (k, d) or None
        Reduced-set points of an RKME spec (None for spec types without a 2-D point set).
    beta : ndarray of shape (k,) or None
        Reduced-set weights.
    """

    learnware_id: str
    spec_type: str
    meta: Mapping[str, Any]
    z: NDArray[np.float64] | None = None
    beta: NDArray[np.float64] | None = None
    gamma: float | None = None
    num_points: int | None = None

    @property
    def k(self) -> int | None:
        return None if self.beta is None else int(np.asarray(self.beta).shape[0])

    @property
    def d(self) -> int | None:
        return None if self.z is None else int(np.asarray(self.z).shape[1])

    @classmethod
    def from_spec_dict(cls, learnware_id: str, d: Mapping[str, Any], *, spec_type: str | None = None) -> SpecPayload:
        """Build from a reference-format spec dict (``{"z","beta","gamma","num_points","type"}``).

        Only a 2-D ``z`` with a matching 1-D ``beta`` moves to the array columns; anything else (image specs,
        non-RKME specs) stays verbatim in :attr:`meta`.
        """
        stype = spec_type or str(d.get("type", ""))
        meta = dict(d)
        z = beta = None
        if d.get("z") is not None and d.get("beta") is not None:
            z_arr = np.asarray(d["z"], dtype=np.float64)
            b_arr = np.asarray(d["beta"], dtype=np.float64)
            if z_arr.ndim == 2 and b_arr.ndim == 1:
                z, beta = z_arr, b_arr
                meta["z"] = meta["beta"] = None
        gamma = float(d["gamma"]) if isinstance(d.get("gamma"), (int, float)) else None
        num_points = int(d["num_points"]) if isinstance(d.get("num_points"), (int, float)) else None
        return cls(learnware_id, stype, meta, z, beta, gamma, num_points)

    @classmethod
    def from_spec(cls, learnware_id: str, spec: Any) -> SpecPayload:
        """Build from a fitted :class:`~lwlib.rkme.base.BaseStatSpec` (uses its ``to_dict``/``type_name``)."""
        return cls.from_spec_dict(learnware_id, spec.to_dict(), spec_type=getattr(spec, "type_name", None))

    def to_dict(self) -> dict[str, Any]:
        """The spec's reference JSON dict, arrays put back in their original places."""
        out = dict(self.meta)
        if self.z is not None and out.get("z", 0) is None:
            out["z"] = np.asarray(self.z).tolist()
        if self.beta is not None and out.get("beta", 0) is None:
            out["beta"] = np.asarray(self.beta).tolist()
        return out

    def to_spec(self) -> Any:
        """A fitted spec object: a submitter's spec type (:func:`lwlib.rkme.types.spec_from_dict`) or the
        label-aware part the dock made at ``specify`` (never a type a manifest may name)."""
        from lwlib.rkme.label_aware import LABEL_AWARE_TYPE, LabelAwareSpec

        if self.spec_type == LABEL_AWARE_TYPE:
            return LabelAwareSpec.from_dict(self.to_dict())
        from lwlib.rkme.types import spec_from_dict

        return spec_from_dict(self.to_dict())

    def meta_json(self) -> str:
        return json.dumps(dict(self.meta), separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class SpecStack:
    """All RKME specs of one feature dimension, stacked and zero-padded for batched kernel maths.

    Attributes
    ----------
    ids : tuple of str
        Learnware ids, row order of the arrays.
    Z : ndarray of shape (n_learnwares, k_max, d)
        Reduced sets, padded with zeros.
    beta : ndarray of shape (n_learnwares, k_max)
        Weights, zero on padding rows (so padding contributes nothing to any kernel mean).
    gamma : ndarray of shape (n_learnwares,)
        The γ each submitter used (NaN when missing).
    k : ndarray of shape (n_learnwares,)
        True reduced-set size of each spec.
    """

    ids: tuple[str, ...]
    Z: NDArray[np.float64]
    beta: NDArray[np.float64]
    gamma: NDArray[np.float64]
    k: NDArray[np.int64]
    spec_type: str
    d: int = field(default=0)

    def __len__(self) -> int:
        return len(self.ids)


def naive_utc(value: datetime) -> datetime:
    """Internal: the stored form of a timestamp (naive UTC)."""
    return _naive_utc(value)
