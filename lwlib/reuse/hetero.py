"""Reuse a learnware from another feature space: transform user rows with a column map, then predict.

:class:`HeteroLearnware` is itself a :class:`~lwlib.reuse.base.ReusableLearnware` *in the user's space*: its
``predict`` maps rows with a :class:`~lwlib.search.hetero.ColumnMap` first, and its ``spec`` is the learnware's
RKME pulled back into the user's columns. So every existing reuser (top-1, averaging, job selector) works across
spaces unchanged, and learnwares from different spaces can even be mixed in one reuser.

When the user's columns have no descriptions there is no column map; :func:`reusable_in_user_space` then falls
back to :class:`~lwlib.reuse.feature_align.FeatureAlignReuser` (an MMD-trained map, no descriptions needed).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array
from lwlib.errors import ReuseError
from lwlib.reuse.base import ReusableLearnware

if TYPE_CHECKING:
    from lwlib.reuse.feature_align import FeatureAlignReuser
    from lwlib.rkme.rkme import RKMETableSpec
    from lwlib.search.columns import ColumnMap

logger = logging.getLogger(__name__)

__all__ = ["HeteroLearnware", "AlignedLearnware", "pullback_spec", "reusable_in_user_space"]


def pullback_spec(spec: Any, column_map: ColumnMap, user_X: Any = None, *, ridge: float = 1e-3) -> RKMETableSpec:
    """The learnware's RKME expressed in the user's columns (same β, same γ).

    Matched user columns take the learnware's values; user columns the learnware does not use are predicted
    from the matched ones by a ridge regression fitted on ``user_X`` (the mirror of the map's fill), or set to
    the user's column means when nothing is matched.

    Parameters
    ----------
    spec : fitted RKMETableSpec in the learnware's space
    column_map : ColumnMap from the user's space to the learnware's
    user_X : array-like of shape (n_samples, n_user), optional
        Needed only when the map drops user columns.

    Returns
    -------
    RKMETableSpec with ``z_`` of shape (K, n_user).

    Raises
    ------
    ReuseError
        The map drops user columns and no ``user_X`` was given.
    """
    from lwlib.rkme.rkme import RKMETableSpec

    Z = np.asarray(spec.z_, dtype=np.float64)
    out = np.empty((Z.shape[0], column_map.n_user))
    ucols, dropped = column_map.user_cols, column_map.dropped_cols
    Zm = Z[:, column_map.target_cols]
    out[:, ucols] = Zm
    if dropped.size:
        if user_X is None:
            raise ReuseError(f"The column map drops user columns {dropped.tolist()}; pass user_X so the "
                             "learnware's spec can be expressed in the user's space.", code="user_data_required")
        X = check_array(user_X, name="user_X")
        mu = X.mean(0)
        out[:, dropped] = mu[dropped]
        if ucols.size:
            Xc = X - mu
            A, B = Xc[:, ucols], Xc[:, dropped]
            G = A.T @ A
            lam = ridge * max(float(np.trace(G)) / ucols.size, 1e-12)
            coef = np.linalg.solve(G + lam * np.eye(ucols.size), A.T @ B)
            out[:, dropped] += (Zm - mu[ucols]) @ coef
    pulled = RKMETableSpec(gamma=float(getattr(spec, "gamma_", 0.1)))
    pulled.z_, pulled.beta_ = out, np.asarray(spec.beta_, dtype=np.float64).copy()
    pulled.num_points_ = int(getattr(spec, "num_points_", int(Z.shape[0])))
    pulled.gamma_ = float(getattr(spec, "gamma_", 0.1))
    return pulled


class HeteroLearnware:
    """A learnware seen from the user's feature space through a column map.

    Parameters
    ----------
    learnware : ReusableLearnware
        In its own feature space.
    column_map : ColumnMap
        User space → the learnware's space, with fill statistics (``HeteroSearchResult.matches[id].column_map``).
    user_X : array-like, optional
        The user's rows, used only to express the learnware's spec in the user's space (:func:`pullback_spec`);
        without it (and with dropped user columns) ``spec`` is None and spec-based reusers say so.

    Examples
    --------
    >>> from lwlib.search.hetero import align_by_descriptions
    >>> class Sum:
    ...     id, spec = "sum", None
    ...     def predict(self, X): return X.sum(1)
    >>> cmap = align_by_descriptions({0: "b", 1: "a"}, {0: "a", 1: "b"})
    >>> HeteroLearnware(Sum(), cmap).predict([[1.0, 10.0]]).tolist()
    [11.0]
    """

    def __init__(self, learnware: ReusableLearnware, column_map: ColumnMap, *, user_X: Any = None) -> None:
        self.learnware = learnware
        self.column_map = column_map
        self.id = str(learnware.id)
        kind = getattr(learnware, "output_kind", None)
        if kind is not None:
            self.output_kind = kind
        spec = getattr(learnware, "spec", None)
        self.spec: RKMETableSpec | None = None
        if spec is not None and hasattr(spec, "z_") and (user_X is not None or column_map.dropped_cols.size == 0):
            self.spec = pullback_spec(spec, column_map, user_X)

    def predict(self, X: Any) -> NDArray[Any]:
        """Map user rows into the learnware's space, then call its ``predict``."""
        return np.asarray(self.learnware.predict(self.column_map.transform(X)))

    def __repr__(self) -> str:
        return (f"HeteroLearnware(id={self.id!r}, matched={self.column_map.user_cols.size}/"
                f"{self.column_map.n_target})")


class AlignedLearnware:
    """A learnware reached through a fitted :class:`FeatureAlignReuser` (fallback without descriptions).

    ``spec`` is the user's own RKME (the map was trained to make the two distributions agree), so spec-based
    reusers can still weigh it against others.
    """

    def __init__(self, reuser: FeatureAlignReuser, user_spec: RKMETableSpec | None = None) -> None:
        self.reuser = reuser
        self.id = str(reuser._target().id)
        self.spec = user_spec

    def predict(self, X: Any) -> NDArray[Any]:
        return np.asarray(self.reuser.predict(X))


def reusable_in_user_space(learnware: ReusableLearnware, column_map: ColumnMap | None, user_X: Any, *,
                           task: str = "regression", min_matched: int = 1,
                           **align_params: Any) -> HeteroLearnware | AlignedLearnware:
    """A user-space view of ``learnware``: through the column map when it matches enough, else FeatureAlign.

    Parameters
    ----------
    learnware : ReusableLearnware with a fitted RKME spec
    column_map : ColumnMap or None
    user_X : array-like of shape (n_samples, n_user)
    task : {"classification", "regression"}
    min_matched : int
        Fewer matched columns than this means "no usable map".
    **align_params
        Passed to :class:`FeatureAlignReuser` (``epochs``, ``hidden``, ...).
    """
    if column_map is not None and column_map.user_cols.size >= min_matched:
        return HeteroLearnware(learnware, column_map, user_X=user_X)
    from lwlib.reuse.feature_align import FeatureAlignReuser
    from lwlib.rkme.rkme import RKMETableSpec

    logger.info("no usable column map for learnware %s; falling back to FeatureAlignReuser", learnware.id)
    X = check_array(user_X, name="user_X")
    reuser = FeatureAlignReuser(learnware, task=task, **align_params).fit(X)
    return AlignedLearnware(reuser, RKMETableSpec().fit(X))
