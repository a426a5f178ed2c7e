"""The estimator contract shared by specs, searchers and reusers.

We reuse scikit-learn's ``BaseEstimator`` for ``get_params`` / ``set_params`` / ``clone``: ``__init__`` takes
explicit keywords and only stores them; learned state lives in ``*_`` attributes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sklearn.base import BaseEstimator, clone

__all__ = ["LwEstimator", "clone"]


class LwEstimator(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type hints
    """Base of every lwlib estimator (stat specs, reusers, searchers)."""

    _parameter_constraints: ClassVar[dict[str, Any]] = {}
