"""What a user asks the market for: one typed value every searcher accepts (issue 14 §6).

A requirement carries a semantic query, the user's data (raw rows, summarised locally) or the user's RKME, and
optionally a few labelled rows. Labels refine the statistical match; they never replace it (issue 11).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array
from lwlib.errors import SearchError

logger = logging.getLogger(__name__)

__all__ = ["Requirement", "as_requirement", "TASKS"]

TASKS = ("classification", "regression")


@dataclass(frozen=True, eq=False)
class Requirement:
    """A user's requirement.

    Attributes
    ----------
    semantic : SemanticQuery, reference dict or None
        Tag filters and name/description text.
    X : ndarray of shape (n_samples, n_features) or None
        The user's unlabelled rows; an RKME is fitted from them on the user's side.
    rkme : fitted RKME or None
        The user's own RKME (used instead of ``X`` for the P(X) match when given).
    X_labels, y_labels : ndarray or None
        A few labelled rows (``y_labels`` of shape (n,) or (n, k)).
    task : {"classification", "regression"} or None
        Needed to score labelled rows; inferred from the market's specs when None.
    descriptions : mapping int → str or None
        Column descriptions for cross-feature-space search (default: the semantic query's Input descriptions).
    """

    semantic: Any = None
    X: NDArray[np.float64] | None = None
    rkme: Any = None
    X_labels: NDArray[np.float64] | None = None
    y_labels: NDArray[Any] | None = None
    task: str | None = None
    descriptions: Mapping[int, str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.X is not None:
            object.__setattr__(self, "X", check_array(self.X, name="X"))
        if (self.X_labels is None) != (self.y_labels is None):
            raise SearchError("A requirement with labels needs both X_labels and y_labels.", code="invalid_input")
        if self.X_labels is not None:
            Xl = check_array(self.X_labels, name="X_labels")
            y = np.asarray(self.y_labels)
            if y.ndim == 2 and y.shape[1] == 1:
                y = y.ravel()
            if y.shape[0] != Xl.shape[0]:
                raise SearchError(f"X_labels has {Xl.shape[0]} rows but y_labels has {y.shape[0]}; give one label per "
                                  "row.", code="invalid_input")
            if y.dtype.kind in "fc" and not np.isfinite(y).all():
                raise SearchError("y_labels contains NaN or infinite values; drop those rows.", code="invalid_input")
            if self.X is not None and Xl.shape[1] != self.X.shape[1]:
                raise SearchError(f"X_labels has {Xl.shape[1]} features but X has {self.X.shape[1]}; both must be in "
                                  "the user's feature space.", code="invalid_input")
            object.__setattr__(self, "X_labels", Xl)
            object.__setattr__(self, "y_labels", y)
        if self.task is not None and self.task not in TASKS:
            raise SearchError(f"task must be one of {TASKS}, got {self.task!r}.", code="invalid_parameter")

    @property
    def n_labels(self) -> int:
        """Number of labelled rows (0 without labels)."""
        return 0 if self.y_labels is None else int(np.asarray(self.y_labels).shape[0])

    @property
    def has_statistics(self) -> bool:
        """True when the requirement carries data or an RKME (so statistical search can run)."""
        return self.X is not None or self.rkme is not None


def as_requirement(requirement: Any = None, **kwargs: Any) -> Requirement:
    """A :class:`Requirement` from a requirement, or from the legacy keywords (query/user_spec/user_X)."""
    if isinstance(requirement, Requirement):
        return requirement
    return Requirement(semantic=requirement if requirement is not None else kwargs.get("query"),
                       X=kwargs.get("user_X"), rkme=kwargs.get("user_spec"))
