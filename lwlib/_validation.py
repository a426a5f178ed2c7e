"""Input validation in one place: run at public entry points only (fit, predict, search, submit, load)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lwlib.errors import LwdockError, NotFittedError

__all__ = ["check_array", "check_is_fitted", "validate_params"]


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
        arr = np.asarray(X, dtype=dtype)
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
