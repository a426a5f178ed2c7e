"""Table RKME: a reduced kernel mean embedding, i.e. K weighted points whose kernel mean matches the data's.

The reduced set (Z, β) is fitted by minimising MMD²(Φ_data, Σ_i β_i k(z_i, ·)):
k-means initialisation, then alternating an exact β step (simplex QP) and a Z step along the *exact* gradient
with a diagonal preconditioner and Armijo backtracking. Each accepted step lowers MMD², so more iterations can only
help — unlike the reference's fixed-size steps along a half-weighted gradient (LEARNWARE_FORMAT.md §3.1).
The data enter only through ``c = (1/n) k(Z, X) 1`` and ``M = (1/n) k(Z, X) X``, computed in row chunks so memory
stays bounded for any n.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import NDArray

from lwlib._validation import (check_array, check_gamma, check_is_fitted, check_num_points, check_reduced_set,
                               show_value, validate_params)
from lwlib.constants import (RKME_DEFAULT_GAMMA, RKME_DEFAULT_K, RKME_LEGACY_TYPE, RKME_MAX_REDUCED_SET_SIZE,
                             RKME_MIN_K_WHEN_CAPPED, RKME_TABLE_TYPE)
from lwlib.errors import LwdockError, SpecFormatError
from lwlib.rkme.base import BaseStatSpec
from lwlib.rkme.kernels import as_tensor, rbf_kernel

logger = logging.getLogger(__name__)

__all__ = ["RKMETableSpec", "effective_reduced_set_size", "clean_table"]

_CHUNK_ENTRIES = 4 * 1024 * 1024  # kernel entries per data chunk (32 MiB of float64)
_KMEANS_SAMPLE = 5_000  # k-means init only needs a sketch of the data (≥ 20 points per centre)
_SMALL_WORK = 2e7  # below this many kernel-entry·feature operations per data pass, one thread is faster
_ARMIJO_SIGMA = 1e-4
_MAX_BACKTRACKS = 12
_REL_TOL = 1e-2  # stop once a round gains less than this fraction of the total gain so far
HERDING_NOISE_STD = 0.25  # candidate spread around reduced points, as in the reference (raw feature units)
HERDING_MAX_CANDIDATES = 200_000


def effective_reduced_set_size(k: int, n_samples: int, n_features: int) -> int:
    """The reference's caps on K: bound K·d, then keep K below the sample count."""
    if k * n_features > RKME_MAX_REDUCED_SET_SIZE:
        k = max(RKME_MIN_K_WHEN_CAPPED, RKME_MAX_REDUCED_SET_SIZE // n_features)
    if k >= n_samples:
        k = max(1, 2 * n_samples // 3)
    return int(k)


def clean_table(X: Any) -> NDArray[np.float64]:
    """Float64 copy of ``X`` as (n, d) with NaN/±inf replaced by the column mean of the finite values.

    Raises
    ------
    LwdockError
        ``invalid_input`` when a column has no finite value at all (no mean to impute).
    """
    X = np.array(check_array(X, allow_nan=True), dtype=np.float64, copy=True)
    bad = ~np.isfinite(X)
    if bad.any():
        all_bad = np.flatnonzero(bad.all(axis=0))
        if all_bad.size:
            raise LwdockError(f"Column(s) {all_bad[:10].tolist()} of X contain only NaN/inf values, so no RKME can "
                              "be built; drop or impute these columns first.", code="invalid_input",
                              columns=all_bad[:10].tolist())
        X[bad] = np.nan
        means = np.nanmean(X, axis=0)
        X = np.where(bad, means[None, :], X)
    return np.asarray(X, dtype=np.float64)


def _data_terms(Z: torch.Tensor, X: torch.Tensor, x2: torch.Tensor, gamma: float,
                need_m: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``c = mean_l k(z_i, x_l)`` (K,) and ``M = mean_l k(z_i, x_l) x_l`` (K, d), in row chunks of X.

    With ``need_m=False`` the returned M is an empty placeholder (saves one matmul per chunk).
    """
    n, k = X.shape[0], Z.shape[0]
    z2 = (Z * Z).sum(1, keepdim=True)
    c = torch.zeros(k, dtype=torch.float64)
    M = torch.zeros_like(Z) if need_m else torch.empty(0, dtype=torch.float64)
    step = max(1, _CHUNK_ENTRIES // max(1, k))
    for s in range(0, n, step):  # bounded-memory chunks of rows, each fully vectorised
        Xb = X[s:s + step]
        Kb = torch.exp((z2 - 2.0 * (Z @ Xb.T) + x2[s:s + step][None, :]).clamp_min_(0.0).mul_(-gamma))
        c += Kb.sum(1)
        if need_m:
            M.addmm_(Kb, Xb)
    c /= n
    if need_m:
        M /= n
    return c, M


def _objective(beta: torch.Tensor, Kzz: torch.Tensor, c: torch.Tensor) -> float:
    """MMD² minus the constant data self-term: βᵀKzzβ − 2βᵀc."""
    return float(beta @ Kzz @ beta - 2.0 * (beta @ c))


def _solve_beta(Kzz: torch.Tensor, c: torch.Tensor, nonnegative: bool) -> torch.Tensor | None:
    """argmin ½βᵀKβ − cᵀβ s.t. 1ᵀβ = 1 (and β ≥ 0 when ``nonnegative``); ``None`` if the solver fails."""
    k = Kzz.shape[0]
    if not nonnegative:
        ridge = 1e-10 * float(torch.trace(Kzz)) / k + 1e-12
        kkt = torch.zeros(k + 1, k + 1, dtype=torch.float64)
        kkt[:k, :k] = Kzz + ridge * torch.eye(k, dtype=torch.float64)
        kkt[:k, k] = 1.0
        kkt[k, :k] = 1.0
        rhs = torch.cat([c, torch.ones(1, dtype=torch.float64)])
        sol = torch.linalg.lstsq(kkt, rhs[:, None]).solution[:, 0]
        return sol[:k] if torch.isfinite(sol).all() else None
    from qpsolvers import Problem, solve_problem  # imported lazily: only fitting needs a QP solver

    P = sp.csc_matrix(Kzz.numpy())
    problem = Problem(P, -c.numpy(), A=sp.csc_matrix(np.ones((1, k))), b=np.ones(1), lb=np.zeros(k))
    sol = solve_problem(problem, solver="clarabel")
    if sol.x is None or not np.isfinite(sol.x).all():
        return None
    beta = np.clip(sol.x, 0.0, None)
    return torch.from_numpy(beta / beta.sum())


def _z_direction(Z: torch.Tensor, beta: torch.Tensor, Kzz: torch.Tensor, c: torch.Tensor, M: torch.Tensor,
                 gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact gradient of MMD² w.r.t. Z and a preconditioned descent direction.

    ∂MMD²/∂z_i = −4γβ_i [A_i − B_i], A_i = Σ_j β_j k_ij (z_i − z_j), B_i = (1/n) Σ_l k_il (z_i − x_l).
    The direction divides the bracket by w_i + c_i (w_i = Σ_j β_j k_ij, c_i = mean_l k_il): A_i/w_i and B_i/c_i
    are displacements to kernel-weighted means, so a unit step is a mean-shift-sized move whatever β and γ are,
    and it stays bounded even for points far from all data.
    """
    W = Kzz * beta[None, :]
    w = W.sum(1, keepdim=True)
    A = w * Z - W @ Z
    B = c[:, None] * Z - M
    grad = -4.0 * gamma * beta[:, None] * (A - B)
    direction = (A - B) / (w + c[:, None]).clamp_min(1e-300)
    return grad, direction


@contextmanager
def _threads_for(work: float) -> Iterator[None]:
    """Run small fits on one torch thread (thread start-up dominates them); restore the setting afterwards."""
    before = torch.get_num_threads()
    if work < _SMALL_WORK and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _init_centres(X: NDArray[np.float64], k: int, random_state: Any) -> NDArray[np.float64]:
    """k-means centroids on a seeded subsample (n_init=1): a cheap, deterministic start near the data mass."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    rng = np.random.RandomState(random_state if isinstance(random_state, (int, np.integer)) or
                                random_state is None else 0)
    sample = X if X.shape[0] <= max(_KMEANS_SAMPLE, 20 * k) else \
        X[rng.choice(X.shape[0], max(_KMEANS_SAMPLE, 20 * k), replace=False)]
    # One thread: on a small sample, OpenMP start-up and oversubscription on a shared box cost more than they save.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=rng).fit(sample)
    return np.asarray(km.cluster_centers_, dtype=np.float64)


class RKMETableSpec(BaseStatSpec):
    """Reduced kernel mean embedding of a table: ``Φ = Σ_i β_i k(z_i, ·)`` with a Gaussian kernel.

    Parameters
    ----------
    reduced_set_size : int, default 100
        K, before the reference caps (K·d ≤ 1 310 720, K < n).
    gamma : float, default 0.1
        Kernel width γ of ``k(a, b) = exp(−γ‖a − b‖²)``.
    n_iter : int, default 10
        Alternating (Z step, β step) rounds; stops earlier once the objective stalls.
    step_size : float, default 2.0
        Initial step along the preconditioned direction (about a mean-shift-sized move near the optimum, where
        w_i ≈ c_i); adapted by Armijo backtracking, so MMD² never increases.
    nonnegative_beta : bool, default True
        Keep β on the simplex (QP); otherwise β only sums to one.
    reduce : bool, default True
        ``False`` stores the data itself (Z = X, β = 1/n), the exact empirical embedding.
    random_state : int or None, default 0
        Seeds the k-means initialisation; a fixed seed makes :meth:`fit` deterministic.

    Attributes
    ----------
    z_ : ndarray of shape (K, d)
    beta_ : ndarray of shape (K,)
    num_points_ : int
    gamma_ : float
    objective_history_ : list of float
        MMD² minus the data self-term after the init and after every round (non-increasing).
    """

    type_name: ClassVar[str] = RKME_TABLE_TYPE
    accepted_types: ClassVar[tuple[str, ...]] = (RKME_TABLE_TYPE, RKME_LEGACY_TYPE)
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "reduced_set_size": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1,
        "gamma": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0,
        "n_iter": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0,
        "step_size": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        "nonnegative_beta": (bool,),
        "reduce": (bool,),
    }

    def __init__(self, reduced_set_size: int = RKME_DEFAULT_K, gamma: float = RKME_DEFAULT_GAMMA,
                 n_iter: int = 10, step_size: float = 2.0, nonnegative_beta: bool = True, reduce: bool = True,
                 random_state: int | None = 0) -> None:
        self.reduced_set_size = reduced_set_size
        self.gamma = gamma
        self.n_iter = n_iter
        self.step_size = step_size
        self.nonnegative_beta = nonnegative_beta
        self.reduce = reduce
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any) -> RKMETableSpec:
        """Fit the reduced set to ``X`` of shape (n_samples, n_features); NaN/inf become column means."""
        validate_params(self)
        X = clean_table(X)
        n, d = X.shape
        gamma = float(self.gamma)
        self._json_type: str | None = None
        self._json_gamma: int | float | None = None
        if not self.reduce:
            self.z_, self.beta_ = X, np.full(n, 1.0 / n)
            self.objective_history_: list[float] = []
        else:
            k = effective_reduced_set_size(int(self.reduced_set_size), n, d)
            with _threads_for(k * n * d):
                self.z_, self.beta_, self.objective_history_ = self._optimise(X, k, gamma)
        self.num_points_ = int(n)
        self.gamma_ = gamma
        logger.debug("RKME fitted: n=%d d=%d K=%d history=%s", n, d, self.z_.shape[0], self.objective_history_)
        return self

    def _optimise(self, X_np: NDArray[np.float64], k: int,
                  gamma: float) -> tuple[NDArray[np.float64], NDArray[np.float64], list[float]]:
        X = torch.from_numpy(X_np)
        x2 = (X * X).sum(1)
        Z = torch.from_numpy(_init_centres(X_np, k, self.random_state))
        c, M = _data_terms(Z, X, x2, gamma)
        Kzz = rbf_kernel(Z, Z, gamma)
        beta = _solve_beta(Kzz, c, self.nonnegative_beta)
        if beta is None:
            logger.warning("RKME: initial beta QP failed; starting from uniform weights")
            beta = torch.full((k,), 1.0 / k, dtype=torch.float64)
        f = _objective(beta, Kzz, c)
        history = [f]
        f0 = f
        t = float(self.step_size)
        for _ in range(int(self.n_iter)):
            grad, p = _z_direction(Z, beta, Kzz, c, M, gamma)
            slope = float((grad * p).sum())  # ≤ 0: p is a positive diagonal rescaling of −grad
            accepted = False
            for _bt in range(_MAX_BACKTRACKS):
                Zt = Z + t * p
                ct, Mt = _data_terms(Zt, X, x2, gamma)
                Kt = rbf_kernel(Zt, Zt, gamma)
                ft = _objective(beta, Kt, ct)
                if ft <= f + _ARMIJO_SIGMA * t * slope:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                break
            Z, c, M, Kzz, f_prev = Zt, ct, Mt, Kt, f
            f = ft
            new_beta = _solve_beta(Kzz, c, self.nonnegative_beta)
            if new_beta is not None:
                fb = _objective(new_beta, Kzz, c)
                if fb <= f:  # guard against an inaccurate solve: never accept a worse β
                    beta, f = new_beta, fb
            history.append(f)
            t = min(2.0 * t, 4.0 * float(self.step_size))
            if f_prev - f <= _REL_TOL * (f0 - f):
                break
        return Z.numpy().copy(), beta.numpy().copy(), history

    # ------------------------------------------------------------------ algebra
    @property
    def n_features(self) -> int:
        """Dimension d of the feature space the spec lives in."""
        check_is_fitted(self, "z_")
        return int(self.z_.shape[1])

    def _check_same_space(self, d_other: int) -> None:
        if d_other != self.n_features:
            raise LwdockError(f"Cannot compare an RKME of {self.n_features} features with one of {d_other}; both "
                              "must live in the same feature space.", code="spec_dim_mismatch")

    def inner_product(self, other: RKMETableSpec, gamma: float | None = None) -> float:
        """⟨Φ_self, Φ_other⟩ = β_selfᵀ k(Z_self, Z_other) β_other under γ (default: this spec's γ)."""
        check_is_fitted(self, "z_")
        check_is_fitted(other, "z_")
        self._check_same_space(int(other.z_.shape[1]))
        g = self.gamma_ if gamma is None else float(gamma)
        return float(as_tensor(self.beta_) @ rbf_kernel(self.z_, other.z_, g) @ as_tensor(other.beta_))

    def mmd2(self, other: Any, gamma: float | None = None) -> float:
        """MMD² to another spec, or to the exact empirical embedding of a data matrix ``X`` (n, d).

        For data the O(n²) self-term is computed in row chunks, so memory stays bounded (time does not).
        """
        check_is_fitted(self, "z_")
        g = self.gamma_ if gamma is None else float(gamma)
        self_term = self.inner_product(self, g)
        if hasattr(other, "z_"):
            return float(max(0.0, self_term - 2.0 * self.inner_product(other, g) + other.inner_product(other, g)))
        X = torch.from_numpy(clean_table(other))
        self._check_same_space(int(X.shape[1]))
        x2 = (X * X).sum(1)
        with _threads_for(float(X.shape[0]) ** 2 * X.shape[1]):
            c, _ = _data_terms(torch.from_numpy(self.z_), X, x2, g, need_m=False)
            cross = float(as_tensor(self.beta_) @ c)
            xx, _ = _data_terms(X, X, x2, g, need_m=False)  # chunked mean_l k(x_m, x_l) for every m
        return max(0.0, self_term - 2.0 * cross + float(xx.mean()))

    def herding(self, n_samples: int, random_state: int | None = None) -> NDArray[np.float64]:
        """Draw ``n_samples`` points whose empirical embedding greedily tracks Φ (kernel herding).

        Candidates are drawn around reduced points (weights β⁺) with Gaussian noise of std 0.25; each step picks
        the candidate maximising ``(t+1)·Φ(x) − Σ_s k(s, x)``. ``beta_`` is left untouched.
        """
        check_is_fitted(self, "z_")
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise LwdockError(f"herding(n_samples={n_samples!r}) needs a positive integer.", code="invalid_input")
        rng = np.random.default_rng(random_state)
        b = np.clip(self.beta_, 0.0, None)
        if b.sum() <= 0:
            b = np.ones_like(b)
        m = int(min(100 * n_samples, max(HERDING_MAX_CANDIDATES, n_samples)))
        centres = rng.choice(b.shape[0], size=m, p=b / b.sum())
        cand = torch.from_numpy(self.z_[centres] + rng.normal(0.0, HERDING_NOISE_STD, (m, self.n_features)))
        out = torch.empty(n_samples, self.n_features, dtype=torch.float64)
        with _threads_for(m * self.n_features):
            phi = torch.from_numpy(b) @ rbf_kernel(self.z_, cand, self.gamma_)  # (m,)
            seen = torch.zeros(m, dtype=torch.float64)
            for t in range(int(n_samples)):  # herding is sequential in t; each step is vectorised over candidates
                i = int(torch.argmax((t + 1) * phi - seen))
                out[t] = cand[i]
                seen += rbf_kernel(cand[i:i + 1], cand, self.gamma_)[0]
        return out.numpy()

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Reference layout and key order: ``z, beta, gamma, num_points, type``."""
        check_is_fitted(self, "z_")
        gamma = getattr(self, "_json_gamma", None)
        return {
            "z": self.z_.tolist(),
            "beta": self.beta_.tolist(),
            "gamma": self.gamma_ if gamma is None else gamma,
            "num_points": self.num_points_,
            "type": getattr(self, "_json_type", None) or self.type_name,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RKMETableSpec:
        """Validate a reference-layout dict and return a fitted spec (extra keys such as ``cuda_idx`` ignored).

        The dict is untrusted (it comes from a zip or a user): sizes are checked from the list lengths before any
        array is built (K ≤ ``RKME_MAX_K``, d ≤ ``RKME_MAX_DIM``, K·d ≤ ``RKME_MAX_VALUES``), then values must be
        finite and bounded (``|z| ≤ RKME_MAX_ABS_POINT``, ``|β| ≤ RKME_MAX_ABS_WEIGHT``, not all β zero),
        ``gamma`` positive and finite, ``num_points`` an integer in ``[0, RKME_MAX_NUM_POINTS]``.

        Raises
        ------
        SpecFormatError
            ``spec_not_object``, ``spec_missing_key``, ``spec_type_mismatch``, ``spec_too_large``, ``spec_shape``,
            ``spec_nonfinite``, ``spec_out_of_range``, ``spec_weights``, ``spec_gamma``, ``spec_num_points``; the
            message names the field.
        """
        if not isinstance(d, dict):
            raise SpecFormatError(f"{cls.__name__}.from_dict expects a dict, got {type(d).__name__}.",
                                  code="spec_not_object")
        missing = [key for key in ("z", "beta", "gamma", "num_points", "type") if key not in d]
        if missing:
            raise SpecFormatError(f"{cls.type_name} JSON lacks key(s) {missing}; expected z, beta, gamma, "
                                  "num_points, type.", code="spec_missing_key", missing=missing)
        if not isinstance(d["type"], str) or d["type"] not in cls.accepted_types:
            raise SpecFormatError(f"Spec type {show_value(d['type'], 60)} cannot be loaded as {cls.type_name}; "
                                  f"accepted: {list(cls.accepted_types)}.", code="spec_type_mismatch",
                                  type=show_value(d["type"], 60))
        z, beta = check_reduced_set(d["z"], d["beta"])
        gamma, num_points = check_gamma(d["gamma"]), check_num_points(d["num_points"])
        spec = cls(reduced_set_size=int(z.shape[0]), gamma=float(gamma))
        spec.z_, spec.beta_, spec.num_points_, spec.gamma_ = z, beta, num_points, float(gamma)
        spec.objective_history_ = []
        spec._json_type = d["type"] if d["type"] != cls.type_name else None
        spec._json_gamma = gamma if type(gamma) is not float else None
        spec._load_extra(d)
        return spec

    def _load_extra(self, d: dict[str, Any]) -> None:
        """Hook for subclasses that store more keys (text: ``language``)."""
