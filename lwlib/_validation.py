"""Input validation in one place: run at public entry points only (fit, predict, search, submit, load)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lwlib.constants import (RKME_MAX_ABS_POINT, RKME_MAX_ABS_WEIGHT, RKME_MAX_DIM, RKME_MAX_K, RKME_MAX_NUM_POINTS,
                             RKME_MAX_VALUES)
from lwlib.errors import LwdockError, NotFittedError, SpecFormatError
from lwlib.text import has_control_chars, safe_text

__all__ = ["check_array", "check_is_fitted", "validate_params", "check_json_tree", "check_text", "loads_json",
           "show_value", "check_reduced_set", "check_gamma", "check_num_points"]

_PLAIN_SCALARS = (str, int, float, bool, type(None))


def check_array(
    X: Any,
    *,
    name: str = "X",
    allow_nan: bool = False,
    ensure_2d: bool = True,
    min_samples: int = 1,
    dtype: type = np.float64,
) -> NDArray[np.float64]:
    """Return ``X`` as a C-contiguous float array, or raise a clear :class:`LwdockError`.

    Accepts numpy arrays, pandas frames, torch tensors and nested lists. ``ensure_2d`` flattens trailing
    dimensions (images ``(n, c, h, w)`` become ``(n, c*h*w)``) and turns a 1-D vector into one column.
    """
    if hasattr(X, "detach"):  # torch tensor
        X = X.detach().cpu().numpy()
    try:
        arr: NDArray[Any] = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise LwdockError(
            f"{name} must be numeric (array, DataFrame or tensor); converting it to {np.dtype(dtype).name} "
            f"failed: {exc}. Encode categorical columns as numbers first.",
            code="invalid_input",
        ) from exc
    if ensure_2d:
        if arr.ndim == 0:
            raise LwdockError(f"{name} is a scalar; pass an array of shape (n_samples, n_features).",
                              code="invalid_input")
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr.reshape(arr.shape[0], -1)
    if arr.shape[0] < min_samples:
        raise LwdockError(f"{name} has {arr.shape[0]} samples; at least {min_samples} are needed.",
                          code="invalid_input", n_samples=arr.shape[0])
    if not allow_nan and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise LwdockError(f"{name} contains {bad} NaN or infinite values; impute or drop them first.",
                          code="invalid_input", n_nonfinite=bad)
    return np.ascontiguousarray(arr)


def check_is_fitted(obj: Any, attributes: str | list[str] | None = None) -> None:
    """Raise :class:`NotFittedError` unless ``obj`` has its learned ``*_`` attributes."""
    if attributes is None:
        fitted = [k for k in vars(obj) if k.endswith("_") and not k.startswith("__")]
        ok = bool(fitted)
    else:
        names = [attributes] if isinstance(attributes, str) else list(attributes)
        ok = all(getattr(obj, a, None) is not None for a in names)
    if not ok:
        raise NotFittedError(
            f"This {type(obj).__name__} is not fitted yet; call fit(...) before using it.",
            estimator=type(obj).__name__,
        )


def validate_params(obj: Any) -> None:
    """Check ``obj``'s constructor parameters against its ``_parameter_constraints``.

    Constraints map a parameter name to a tuple of allowed types, a set of allowed values, or a callable
    predicate returning ``True`` when the value is acceptable.
    """
    constraints: dict[str, Any] = getattr(obj, "_parameter_constraints", {})
    for pname, rule in constraints.items():
        value = getattr(obj, pname)
        if isinstance(rule, (set, frozenset)):
            ok = value in rule
            expected = f"one of {sorted(map(str, rule))}"
        elif isinstance(rule, tuple) or isinstance(rule, type):
            ok = isinstance(value, rule) and not (isinstance(value, bool) and bool not in
                                                   (rule if isinstance(rule, tuple) else (rule,)))
            expected = "of type " + "/".join(t.__name__ for t in (rule if isinstance(rule, tuple) else (rule,)))
        else:
            ok = bool(rule(value))
            expected = getattr(rule, "__doc__", None) or "a valid value"
        if not ok:
            raise LwdockError(
                f"{type(obj).__name__}({pname}={value!r}) is invalid: expected {expected}.",
                code="invalid_parameter", parameter=pname,
            )


def check_json_tree(
    obj: Any,
    *,
    what: str,
    max_depth: int,
    max_nodes: int,
    max_str_chars: int | None = None,
    max_abs_int: int = (1 << 63) - 1,
    error: type[LwdockError] = LwdockError,
    code_prefix: str = "input",
) -> None:
    """Refuse anything but a bounded tree of JSON values, without recursion (so depth can never crash us).

    Accepts dicts with string keys, lists/tuples, ``str``, ``int`` (within ``±max_abs_int``), finite ``float``,
    ``bool`` and ``None``. Dates, bytes, sets, NaN and arbitrary objects are refused: they are not JSON and
    crashed later writers (``TypeError: date is not JSON serializable``).

    Parameters
    ----------
    obj : object
        The parsed value (from JSON, YAML or a caller).
    what : str
        Name of the field for messages, e.g. ``"model.kwargs"``; the offending path is appended.
    max_depth : int
        Deepest nesting of containers allowed (a scalar at the top is depth 0).
    max_nodes : int
        Most values (containers and scalars) in the whole tree.
    max_str_chars : int, optional
        Longest string (keys included).
    max_abs_int : int, default 2**63 - 1
        Largest integer magnitude (catalog and JSON consumers use 64-bit integers).
    error : LwdockError subclass
        The class raised (``InvalidPackageError`` for manifests, ``SemanticSpecError`` for semantic specs).
    code_prefix : str
        Codes are ``<prefix>_too_deep``, ``<prefix>_too_many_nodes``, ``<prefix>_too_long``, ``<prefix>_bad_type``.

    Raises
    ------
    LwdockError (``error``)
        With ``facts["field"]`` set to the offending path.
    """
    stack: list[tuple[Any, int, str]] = [(obj, 0, what)]
    nodes = 1  # counted when pushed, so a huge container is refused before its children are walked
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, (Mapping, list, tuple)):
            if depth >= max_depth:
                raise error(f"{path} is nested deeper than {max_depth} levels; flatten it.",
                            code=f"{code_prefix}_too_deep", field=path)
            nodes += len(value)
            if nodes > max_nodes:
                raise error(f"{what} holds more than {max_nodes} values; keep it small.",
                            code=f"{code_prefix}_too_many_nodes", field=what)
            if isinstance(value, Mapping):
                for k, v in value.items():
                    if not isinstance(k, str):
                        raise error(f"{path} has a non-string key of type {type(k).__name__}; use string keys.",
                                    code=f"{code_prefix}_bad_type", field=path)
                    if max_str_chars is not None and len(k) > max_str_chars:
                        raise error(f"{path} has a key of {len(k)} characters; at most {max_str_chars} are allowed.",
                                    code=f"{code_prefix}_too_long", field=path)
                    stack.append((v, depth + 1, f"{path}.{safe_text(k, max_chars=40)}"))
            else:
                stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(value))
            continue
        if not isinstance(value, _PLAIN_SCALARS):
            raise error(f"{path} is a {type(value).__name__}; only strings, numbers, booleans, null, lists and "
                        "mappings are allowed (write dates and binary data as strings).",
                        code=f"{code_prefix}_bad_type", field=path)
        if isinstance(value, str) and max_str_chars is not None and len(value) > max_str_chars:
            raise error(f"{path} is {len(value)} characters long; at most {max_str_chars} are allowed.",
                        code=f"{code_prefix}_too_long", field=path)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > max_abs_int:
            raise error(f"{path} is an integer outside ±{max_abs_int}.", code=f"{code_prefix}_bad_type", field=path)
        if isinstance(value, float) and not math.isfinite(value):
            raise error(f"{path} is {value}; only finite numbers are allowed.", code=f"{code_prefix}_bad_type",
                        field=path)


def show_value(value: Any, max_chars: int = 80) -> str:
    """A bounded, control-free repr of untrusted input for error messages (never echo a whole payload)."""
    try:
        text = repr(value) if not isinstance(value, (Mapping, list, tuple)) or len(value) <= 20 else \
            f"<{type(value).__name__} of {len(value)} items>"
    except Exception:  # a hostile object's __repr__/__len__: we only want a hint
        text = f"<{type(value).__name__}>"
    return safe_text(text, max_chars=max_chars)


def check_text(value: str, *, field: str, max_chars: int, allow_newlines: bool = False,
               error: type[LwdockError] = LwdockError, code_prefix: str = "input") -> None:
    """Refuse text longer than ``max_chars`` or holding control characters (``<prefix>_too_long`` /
    ``<prefix>_control_chars``): names are data, never terminal control."""
    if len(value) > max_chars:
        raise error(f"{field} is {len(value)} characters long; at most {max_chars} are allowed. Shorten it.",
                    code=f"{code_prefix}_too_long", key=field, length=len(value))
    if has_control_chars(value, allow_newlines=allow_newlines):
        raise error(f"{field} contains control characters (escape sequences, NUL, bidi marks"
                    f"{'' if allow_newlines else ', newlines'}); remove them.", code=f"{code_prefix}_control_chars",
                    key=field)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_json(raw: str | bytes | bytearray, *, what: str, max_bytes: int, error: type[LwdockError] = LwdockError,
               code_prefix: str = "input") -> Any:
    """Parse untrusted JSON text: size-capped, UTF-8 (BOM allowed), no NaN/Infinity, deep nesting refused.

    Raises ``<prefix>_too_large`` or ``<prefix>_bad_json`` (never ``RecursionError``/``UnicodeDecodeError``).
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise error(f"{what} is {len(data)} bytes; the limit is {max_bytes}.", code=f"{code_prefix}_too_large",
                    size=len(data))
    try:
        return json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else safe_text(exc, max_chars=120)
        raise error(f"{what} is not valid UTF-8 JSON ({why}); write it with json.dump.",
                    code=f"{code_prefix}_bad_json") from exc


# ---------------------------------------------------------------------------------------------- RKME reduced sets
# An RKME's reduced set (Z, β) comes from a zip or a user. Its sizes are read from the JSON lists' lengths *before*
# any array exists, because everything after loading is quadratic in K: the verify step and the search build the
# K × K Gram matrix (K = 100 000 asked for 80 GB). Bounds (lwlib.constants): K ≤ RKME_MAX_K, d ≤ RKME_MAX_DIM,
# K·d ≤ RKME_MAX_VALUES, |z| ≤ RKME_MAX_ABS_POINT (squared distances stay finite), |β| ≤ RKME_MAX_ABS_WEIGHT and
# not all zero, γ positive and finite, num_points in [0, RKME_MAX_NUM_POINTS] (a BIGINT column). Torch-free, so the
# market's numpy read path can use them too.

def check_reduced_set(z: Any, beta: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate the points ``z`` (K lists of d numbers) and weights ``beta`` (K numbers); return float64 arrays.

    Raises
    ------
    SpecFormatError
        ``spec_too_large``, ``spec_shape``, ``spec_nonfinite``, ``spec_out_of_range``, ``spec_weights``.
    """
    _check_sizes(z, beta)
    z_arr = _numeric_array(z, "z", ndim=2, max_abs=RKME_MAX_ABS_POINT)
    beta_arr = _numeric_array(beta, "beta", ndim=1, max_abs=RKME_MAX_ABS_WEIGHT)
    if z_arr.shape[0] < 1 or z_arr.shape[1] < 1 or beta_arr.shape[0] != z_arr.shape[0]:
        raise SpecFormatError(f"Spec shapes are inconsistent: z is {z_arr.shape}, beta is {beta_arr.shape}; need z "
                              "of shape (K, d) with K, d ≥ 1 and beta of shape (K,).", code="spec_shape",
                              field="beta")
    if not np.any(beta_arr):
        raise SpecFormatError("Spec field beta is all zeros; the weights of an RKME sum to 1.", code="spec_weights",
                              field="beta")
    return z_arr, beta_arr


def check_gamma(gamma: Any) -> int | float:
    """Return ``gamma`` unchanged (an int stays an int, for byte-identical JSON) if it is positive and finite."""
    if not _positive_finite(gamma):
        raise SpecFormatError(f"Spec field gamma must be a positive finite number, got {show_value(gamma, 60)}.",
                              code="spec_gamma", field="gamma")
    return gamma  # type: ignore[no-any-return]


def check_num_points(num_points: Any) -> int:
    """Return ``num_points`` if it is an integer in ``[0, RKME_MAX_NUM_POINTS]``."""
    if isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) or \
            not 0 <= num_points <= RKME_MAX_NUM_POINTS:
        raise SpecFormatError(f"Spec field num_points must be an integer in [0, {RKME_MAX_NUM_POINTS}], got "
                              f"{show_value(num_points, 60)}.", code="spec_num_points", field="num_points")
    return int(num_points)


def _positive_finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return bool(np.isfinite(float(value)) and value > 0)
    except OverflowError:  # an int too large for a float
        return False


def _too_large(message: str, field: str) -> SpecFormatError:
    return SpecFormatError(message + f" The dock accepts K ≤ {RKME_MAX_K} points, d ≤ {RKME_MAX_DIM} features and "
                           f"K·d ≤ {RKME_MAX_VALUES}; refit with a smaller reduced_set_size.",
                           code="spec_too_large", field=field)


def _check_sizes(z: Any, beta: Any) -> None:
    """Bound K, d and K·d from the JSON lists' lengths, before any array (or K×K kernel) is allocated."""
    if isinstance(z, np.ndarray):
        k, dim = (int(z.shape[0]), int(z.shape[1])) if z.ndim == 2 else (0, 0)
        ragged = z.ndim != 2
    elif isinstance(z, list):
        k = len(z)
        first = z[0] if k else None
        dim = len(first) if isinstance(first, (list, np.ndarray)) else 0
        ragged = k == 0 or dim == 0
    else:
        raise SpecFormatError(f"Spec field z must be a list of K points (lists of d numbers); got "
                              f"{type(z).__name__}.", code="spec_shape", field="z")
    if k > RKME_MAX_K:
        raise _too_large(f"Spec field z has {k} points.", "z")
    if dim > RKME_MAX_DIM:
        raise _too_large(f"Spec field z has points of {dim} features.", "z")
    if k * dim > RKME_MAX_VALUES:
        raise _too_large(f"Spec field z has {k} × {dim} = {k * dim} coordinates.", "z")
    if not ragged and isinstance(z, list):
        ragged = any(not isinstance(row, (list, np.ndarray)) or len(row) != dim for row in z)
    if ragged:
        raise SpecFormatError("Spec field z must be a non-empty rectangular list of K points, each a list of d ≥ 1 "
                              "numbers.", code="spec_shape", field="z")
    n_beta = len(beta) if isinstance(beta, (list, np.ndarray)) else -1
    if n_beta != k:
        raise SpecFormatError(f"Spec field beta must be a list of K = {k} weights (one per point); got "
                              f"{n_beta if n_beta >= 0 else type(beta).__name__}.", code="spec_shape", field="beta")


def _numeric_array(value: Any, name: str, *, ndim: int, max_abs: float) -> NDArray[np.float64]:
    """Nested JSON lists → float64 array, refusing ragged, non-numeric, non-finite and out-of-range content."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SpecFormatError(f"Spec field {name} is ragged or not numeric; it must be a rectangular array of "
                              "numbers.", code="spec_shape", field=name) from exc
    if arr.dtype.kind not in "iuf" or arr.ndim != ndim:
        raise SpecFormatError(f"Spec field {name} must be a {ndim}-D array of numbers, got dtype {arr.dtype} with "
                              f"{arr.ndim} dimension(s).", code="spec_shape", field=name)
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise SpecFormatError(f"Spec field {name} contains NaN or infinite values; regenerate the spec.",
                              code="spec_nonfinite", field=name)
    peak = float(np.abs(arr).max()) if arr.size else 0.0
    if peak > max_abs:
        raise SpecFormatError(f"Spec field {name} holds a value of magnitude {peak:.3g}; at most {max_abs:g} is "
                              "allowed (weights sum to 1; points are feature values).",
                              code="spec_weights" if name == "beta" else "spec_out_of_range", field=name)
    return arr
