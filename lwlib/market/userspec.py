"""The user's RKME, fitted on the user's side in numpy (no torch, no scikit-learn import).

A search from the command line or over HTTP summarises the user's rows as an RKME before comparing it with the
market. :class:`lwlib.rkme.rkme.RKMETableSpec` does that with torch and scikit-learn's k-means, whose imports
alone take longer than the whole target time of a search. This module is the same algorithm in numpy — k-means++
seeding and Lloyd iterations as scikit-learn runs them (same random draws), then the alternating β (Clarabel QP)
and preconditioned Z steps with Armijo backtracking — so the reduced set agrees with ``RKMETableSpec.fit`` to
round-off (``tests/lwlib/test_market.py`` compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lwlib.constants import (RKME_DEFAULT_GAMMA, RKME_DEFAULT_K, RKME_MAX_REDUCED_SET_SIZE, RKME_MIN_K_WHEN_CAPPED,
                             RKME_TABLE_TYPE)
from lwlib.market.kernel import rbf
from lwlib.market.qp import solve_simplex_qp

__all__ = ["UserRKME", "fit_user_rkme"]

_CHUNK_ENTRIES = 4 * 1024 * 1024
_KMEANS_SAMPLE = 5_000
_ARMIJO_SIGMA = 1e-4
_MAX_BACKTRACKS = 12
_REL_TOL = 1e-2


@dataclass
class UserRKME:
    """A fitted table RKME (the attributes search reads: ``z_``, ``beta_``, ``gamma_``, ``num_points_``)."""

    z_: NDArray[np.float64]
    beta_: NDArray[np.float64]
    gamma_: float
    num_points_: int
    type_name: str = RKME_TABLE_TYPE

    def to_dict(self) -> dict[str, Any]:
        """Reference JSON layout (``z, beta, gamma, num_points, type``)."""
        return {"z": self.z_.tolist(), "beta": self.beta_.tolist(), "gamma": self.gamma_,
                "num_points": self.num_points_, "type": self.type_name}


def effective_k(k: int, n_samples: int, n_features: int) -> int:
    """The reference's caps on K (as :func:`lwlib.rkme.rkme.effective_reduced_set_size`)."""
    if k * n_features > RKME_MAX_REDUCED_SET_SIZE:
        k = max(RKME_MIN_K_WHEN_CAPPED, RKME_MAX_REDUCED_SET_SIZE // n_features)
    if k >= n_samples:
        k = max(1, 2 * n_samples // 3)
    return int(k)


def fit_user_rkme(X: NDArray[np.float64], *, gamma: float = RKME_DEFAULT_GAMMA, reduced_set_size: int = RKME_DEFAULT_K,
                  n_iter: int = 10, step_size: float = 2.0, random_state: int = 0) -> UserRKME:
    """Fit a table RKME to finite ``X`` of shape (n, d), exactly as ``RKMETableSpec(gamma=...).fit(X)``."""
    X = np.array(X, dtype=np.float64, copy=True)
    n, d = X.shape
    k = effective_k(int(reduced_set_size), n, d)
    Z, beta = _optimise(X, k, float(gamma), n_iter, step_size, random_state)
    return UserRKME(z_=Z, beta_=beta, gamma_=float(gamma), num_points_=int(n))


# --------------------------------------------------------------------------- k-means (scikit-learn's Lloyd)
def _sq_dist(A: NDArray[np.float64], B: NDArray[np.float64], b2: NDArray[np.float64]) -> NDArray[np.float64]:
    D = -2.0 * (A @ B.T)
    D += np.einsum("ij,ij->i", A, A)[:, None]  # scikit-learn's row_norms, to the last bit
    D += b2[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def _kmeans_plusplus(X: NDArray[np.float64], k: int, rng: np.random.RandomState,
                     x2: NDArray[np.float64]) -> NDArray[np.float64]:
    n = X.shape[0]
    w = np.ones(n)
    trials = 2 + int(np.log(k))
    centers = np.empty((k, X.shape[1]))
    first = rng.choice(n, p=w / w.sum())
    centers[0] = X[first]
    closest = _sq_dist(centers[0:1], X, x2)
    pot = closest @ w
    for c in range(1, k):  # seeding is sequential by definition; each step is vectorised over the data
        rand = rng.uniform(size=trials) * pot
        ids = np.searchsorted(np.cumsum(w * closest), rand)
        np.clip(ids, None, closest.size - 1, out=ids)
        dist = _sq_dist(X[ids], X, x2)
        np.minimum(closest, dist, out=dist)
        pots = dist @ w.reshape(-1, 1)
        best = int(np.argmin(pots))
        pot, closest = pots[best], dist[best]
        centers[c] = X[ids[best]]
    return centers


def _lloyd(X: NDArray[np.float64], centers: NDArray[np.float64], max_iter: int, tol: float) -> NDArray[np.float64]:
    k = centers.shape[0]
    labels_old = np.full(X.shape[0], -1)
    for _ in range(max_iter):
        labels = np.argmin((centers * centers).sum(1)[None, :] - 2.0 * (X @ centers.T), axis=1)
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, X)
        empty = np.flatnonzero(counts == 0)
        if empty.size:  # scikit-learn: move empty centres to the points farthest from their centre
            far = np.argpartition(((X - centers[labels]) ** 2).sum(1), -empty.size)[:-empty.size - 1:-1]
            for e, f in zip(empty, far):
                sums[labels[f]] -= X[f]
                counts[labels[f]] -= 1.0
                sums[e], counts[e] = X[f], 1.0
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], centers)
        shift = ((new - centers) ** 2).sum()
        centers = new
        if np.array_equal(labels, labels_old) or shift <= tol:
            break
        labels_old = labels
    return centers


def _init_centres(X: NDArray[np.float64], k: int, random_state: int) -> NDArray[np.float64]:
    rng = np.random.RandomState(random_state)
    sample = X if X.shape[0] <= max(_KMEANS_SAMPLE, 20 * k) else \
        X[rng.choice(X.shape[0], max(_KMEANS_SAMPLE, 20 * k), replace=False)]
    mean = sample.mean(axis=0)
    Xc = sample - mean
    tol = float(np.mean(np.var(Xc, axis=0))) * 1e-4
    centers = _kmeans_plusplus(Xc, k, rng, np.einsum("ij,ij->i", Xc, Xc))
    return np.asarray(_lloyd(Xc, centers, 100, tol) + mean, dtype=np.float64)


# --------------------------------------------------------------------------- RKME reduction
def _data_terms(Z: NDArray[np.float64], X: NDArray[np.float64], x2: NDArray[np.float64], gamma: float,
                need_m: bool = True) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n, k = X.shape[0], Z.shape[0]
    z2 = (Z * Z).sum(1)[:, None]
    c = np.zeros(k)
    M = np.zeros_like(Z)
    step = max(1, _CHUNK_ENTRIES // max(1, k))
    for s in range(0, n, step):  # bounded-memory chunks of rows, each fully vectorised
        Xb = X[s:s + step]
        Kb = z2 - 2.0 * (Z @ Xb.T) + x2[s:s + step][None, :]
        np.maximum(Kb, 0.0, out=Kb)
        Kb *= -gamma
        np.exp(Kb, out=Kb)
        c += Kb.sum(1)
        if need_m:
            M += Kb @ Xb
    return c / n, M / n


def _solve_beta(Kzz: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64] | None:
    x, _ = solve_simplex_qp(Kzz, -c)
    if not np.isfinite(x).all():
        return None
    beta = np.clip(x, 0.0, None)
    return np.asarray(beta / beta.sum())


def _objective(beta: NDArray[np.float64], Kzz: NDArray[np.float64], c: NDArray[np.float64]) -> float:
    return float(beta @ Kzz @ beta - 2.0 * (beta @ c))


def _optimise(X: NDArray[np.float64], k: int, gamma: float, n_iter: int, step_size: float,
              random_state: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x2 = (X * X).sum(1)
    Z = _init_centres(X, k, random_state)
    c, M = _data_terms(Z, X, x2, gamma)
    Kzz = rbf(Z, Z, gamma)
    beta = _solve_beta(Kzz, c)
    if beta is None:
        beta = np.full(k, 1.0 / k)
    f = f0 = _objective(beta, Kzz, c)
    t = float(step_size)
    for _ in range(int(n_iter)):
        W = Kzz * beta[None, :]
        w = W.sum(1, keepdims=True)
        A = w * Z - W @ Z
        B = c[:, None] * Z - M
        grad = -4.0 * gamma * beta[:, None] * (A - B)
        p = (A - B) / np.maximum(w + c[:, None], 1e-300)
        slope = float((grad * p).sum())
        accepted = False
        for _bt in range(_MAX_BACKTRACKS):
            Zt = Z + t * p
            ct, Mt = _data_terms(Zt, X, x2, gamma)
            Kt = rbf(Zt, Zt, gamma)
            ft = _objective(beta, Kt, ct)
            if ft <= f + _ARMIJO_SIGMA * t * slope:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        Z, c, M, Kzz, f_prev = Zt, ct, Mt, Kt, f
        f = ft
        new_beta = _solve_beta(Kzz, c)
        if new_beta is not None:
            fb = _objective(new_beta, Kzz, c)
            if fb <= f:
                beta, f = new_beta, fb
        t = min(2.0 * t, 4.0 * float(step_size))
        if f_prev - f <= _REL_TOL * (f0 - f):
            break
    return Z.copy(), beta.copy()


def rkme_from_dict(d: Any, *, max_entries: int = RKME_MAX_REDUCED_SET_SIZE) -> UserRKME:
    """A user's RKME from its reference JSON dict, validated before any array is built.

    Raises
    ------
    SpecFormatError
        Not an object, a missing key, a type other than a table RKME, ragged/non-numeric/non-finite arrays,
        inconsistent shapes, more than ``max_entries`` numbers in ``z``, or a bad ``gamma``/``num_points``.
    """
    from lwlib.constants import RKME_LEGACY_TYPE
    from lwlib.errors import SpecFormatError

    if not isinstance(d, dict):
        raise SpecFormatError(f"The RKME must be a JSON object, got {type(d).__name__}.", code="spec_not_object")
    missing = [key for key in ("z", "beta", "gamma", "num_points", "type") if key not in d]
    if missing:
        raise SpecFormatError(f"The RKME lacks key(s) {missing}; expected z, beta, gamma, num_points, type.",
                              code="spec_missing_key")
    if d["type"] not in (RKME_TABLE_TYPE, RKME_LEGACY_TYPE):
        raise SpecFormatError(f"RKME type {d['type']!r} cannot be searched; use {RKME_TABLE_TYPE}.",
                              code="spec_type_mismatch")
    z, beta = d["z"], d["beta"]
    if not isinstance(z, list) or not z or not all(isinstance(r, list) for r in z) or not isinstance(beta, list):
        raise SpecFormatError("RKME z must be a non-empty list of rows and beta a list of weights.", code="spec_shape")
    width = len(z[0])
    if width < 1 or any(len(r) != width for r in z) or len(z) * width > max_entries or len(beta) != len(z):
        raise SpecFormatError(f"RKME shapes are invalid: z has {len(z)} rows (widths must all equal {width}, "
                              f"K·d ≤ {max_entries}) and beta has {len(beta)} weights (must equal K).",
                              code="spec_shape")
    try:
        Z = np.asarray(z, dtype=np.float64)
        B = np.asarray(beta, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SpecFormatError(f"RKME z and beta must hold numbers only ({exc}).", code="spec_shape") from exc
    if not (np.isfinite(Z).all() and np.isfinite(B).all()):
        raise SpecFormatError("RKME z or beta contains NaN or infinite values.", code="spec_nonfinite")
    gamma, num_points = d["gamma"], d["num_points"]
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not np.isfinite(gamma) or gamma <= 0:
        raise SpecFormatError(f"RKME gamma must be a positive finite number, got {gamma!r}.", code="spec_gamma")
    if isinstance(num_points, bool) or not isinstance(num_points, int) or not 0 <= num_points < 2**62:
        raise SpecFormatError(f"RKME num_points must be a non-negative integer, got {num_points!r}.",
                              code="spec_num_points")
    return UserRKME(z_=Z, beta_=B, gamma_=float(gamma), num_points_=int(num_points))
