"""Job selection: route every user row to the one learnware whose data distribution covers it.

Why: a user task that mixes several learnwares' regions is served best by sending each row to the expert of its
region, not by blending all experts. The learnwares' RKMEs are the only data we have about their regions. We
weigh the learnwares by how much of the user's distribution each explains (RKME mixture weights), then route each
row by the mixture's posterior responsibilities read straight off the RKMEs, ``r_i(x) ∝ w_i Σ_k β_ik k(x, z_ik)``
(``router="kernel"``, the default). The reference instead draws herding samples from each RKME and trains a
2 000-tree GBDT on them; that path is kept (``router="gbdt"`` / ``"logistic"``: samples with noise relative to
each feature's scale, a right-sized router on standardised features) but measured worse: on the small image and
tabular benchmarks the kernel router beat top-1 and averaging, the sampled GBDT router beat neither.
Each learnware gets one call for all its rows.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from lwlib._validation import check_is_fitted
from lwlib.errors import ReuseError
from lwlib.reuse.base import BaseReuser, ReusableLearnware, _is_learnware_list
from lwlib.reuse.combine import route_rows, router_index
from lwlib.rkme.kernels import median_heuristic_gamma, rbf_kernel, stack_specs

logger = logging.getLogger(__name__)

__all__ = ["JobSelectorReuser", "KernelRouter", "rkme_mixture_weights", "sample_rkme"]

# Sampling noise as a fraction of each learnware's own per-feature spread of its reduced points.
_RELATIVE_NOISE = 0.25
# Floor of that spread, as a fraction of the pooled (all learnwares) per-feature std.
_MIN_SPREAD_FRACTION = 0.05
_MIN_SAMPLES_PER_LEARNWARE = 5
_MAX_USER_POINTS = 2000


def _pooled_scaler(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    mu = points.mean(axis=0)
    sd = points.std(axis=0)
    return mu, np.where(sd > 1e-12, sd, 1.0)


def rkme_mixture_weights(specs: Sequence[Any], X: NDArray[np.float64], *,
                         random_state: int = 0) -> NDArray[np.float64]:
    """Simplex weights ``w`` minimising ‖Σ_i w_i Φ_i − Φ_user‖² over the learnwares' RKMEs.

    Features are standardised on the pooled reduced points and user rows, and γ is the median heuristic there,
    so the weights do not depend on feature units. The user embedding is the empirical one of (a subsample of)
    ``X``. The quadratic programme is :func:`lwlib.search.mixture.mixture_weights`.

    Parameters
    ----------
    specs : sequence of fitted RKMETableSpec, all in the user's feature space
    X : ndarray of shape (n_samples, n_features)
    random_state : int
        Seeds the subsample of user rows (at most 2 000) and of the γ heuristic.

    Returns
    -------
    ndarray of shape (n_learnwares,), non-negative, summing to 1.
    """
    from lwlib.search.mixture import mixture_weights

    Zs, betas = stack_specs(list(specs))
    m, kmax, d = Zs.shape
    if X.shape[1] != d:
        raise ReuseError(f"user data has {X.shape[1]} features but the learnwares' specs have {d}; mixture "
                         "weights need one feature space (use FeatureAlignReuser across spaces).",
                         code="n_features_mismatch")
    rng = np.random.default_rng(random_state)
    Xu = X if X.shape[0] <= _MAX_USER_POINTS else X[rng.choice(X.shape[0], _MAX_USER_POINTS, replace=False)]
    Zf = Zs.reshape(m * kmax, d)
    real = betas.reshape(-1) != 0
    mu, sd = _pooled_scaler(np.vstack([Zf[real], Xu]))
    Zf, Xu = (Zf - mu) / sd, (Xu - mu) / sd
    gamma = median_heuristic_gamma(np.vstack([Zf[real], Xu]), random_state=random_state)
    B = (np.eye(m)[:, :, None] * betas[None, :, :]).reshape(m, m * kmax)  # block-diagonal β matrix
    K = B @ rbf_kernel(Zf, Zf, gamma).numpy() @ B.T
    c = B @ rbf_kernel(Zf, Xu, gamma).numpy().mean(axis=1)
    w = np.clip(np.asarray(mixture_weights(K, c), dtype=np.float64).reshape(-1), 0.0, None)
    return w / w.sum() if w.sum() > 0 else np.full(m, 1.0 / m)


def sample_rkme(spec: Any, n_samples: int, rng: np.random.Generator, *,
                min_spread: NDArray[np.float64] | float = 0.0) -> NDArray[np.float64]:
    """Draw points from an RKME read as a β-weighted Gaussian mixture on its reduced points.

    The noise is ``0.25 ×`` the spec's own per-feature spread (β-weighted std of its reduced points), so it
    follows each feature's units; ``min_spread`` (per feature) floors it, so a feature that is constant inside
    one learnware gets a little noise on the market's scale instead of none (or of a unit that may be huge).
    β is copied, never modified in place.
    """
    Z = np.asarray(spec.z_, dtype=np.float64)
    p = np.clip(np.asarray(spec.beta_, dtype=np.float64), 0.0, None)
    p = p / p.sum() if p.sum() > 0 else np.full(Z.shape[0], 1.0 / Z.shape[0])
    mean = p @ Z
    spread = np.maximum(np.sqrt(p @ (Z - mean) ** 2), min_spread)
    centres = rng.choice(Z.shape[0], size=n_samples, p=p)
    samples: NDArray[np.float64] = Z[centres] + rng.normal(size=(n_samples, Z.shape[1])) * (_RELATIVE_NOISE * spread)
    return samples


class KernelRouter:
    """Route a row to the learnware whose RKME gives it the most mixture-weighted kernel mass.

    ``r_i(x) ∝ w_i Σ_k β_ik k(x, z_ik)``: the posterior responsibility of learnware i for x when the user's data
    are the RKME mixture Σ w_i Φ_i — a Bayes classifier read straight off the specs, with no synthetic samples
    and no trained model. Features are standardised on the pooled reduced points (and γ is the median heuristic
    there), like :func:`rkme_mixture_weights`.
    """

    def __init__(self, Zs: NDArray[np.float64], betas: NDArray[np.float64], weights: NDArray[np.float64],
                 mean: NDArray[np.float64], scale: NDArray[np.float64], gamma: float) -> None:
        self.Zs, self.betas, self.weights = Zs, betas, weights
        self.mean, self.scale, self.gamma = mean, scale, float(gamma)

    def responsibilities(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """Log-responsibilities (n, m), up to a per-row constant."""
        m, k, d = self.Zs.shape
        Xs = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        Zf = ((self.Zs.reshape(m * k, d) - self.mean) / self.scale)
        d2 = ((Xs * Xs).sum(1)[:, None] - 2.0 * Xs @ Zf.T + (Zf * Zf).sum(1)[None, :]).clip(min=0.0)
        logb = np.where(self.betas > 0, np.log(np.clip(self.betas, 1e-300, None)), -np.inf).reshape(1, m * k)
        a = (-self.gamma * d2 + logb).reshape(-1, m, k)
        amax = a.max(axis=(1, 2), keepdims=True)
        amax = np.where(np.isfinite(amax), amax, 0.0)
        mass = np.exp(a - amax).sum(2)
        log_r: NDArray[np.float64] = (np.log(np.clip(mass, 1e-300, None))
                                      + np.log(np.clip(self.weights, 1e-300, None))[None, :])
        return log_r

    def predict(self, X: NDArray[np.float64]) -> NDArray[np.int64]:
        return np.asarray(self.responsibilities(X).argmax(axis=1), dtype=np.int64)


def _kernel_router(specs: Sequence[Any], w: NDArray[np.float64], X: NDArray[np.float64] | None,
                   random_state: int) -> KernelRouter:
    Zs, betas = stack_specs(list(specs))
    m, kmax, d = Zs.shape
    real = betas.reshape(-1) != 0
    pts = Zs.reshape(m * kmax, d)[real]
    if X is not None:
        rng = np.random.default_rng(random_state)
        Xu = X if X.shape[0] <= _MAX_USER_POINTS else X[rng.choice(X.shape[0], _MAX_USER_POINTS, replace=False)]
        pts = np.vstack([pts, Xu])
    mu, sd = _pooled_scaler(pts)
    gamma = median_heuristic_gamma((pts - mu) / sd, random_state=random_state)
    return KernelRouter(Zs, betas, w, mu, sd, gamma)


def _make_router(kind: str, random_state: int) -> Pipeline:
    if kind == "gbdt":
        clf: Any = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                                  early_stopping=False, random_state=random_state)
    else:
        clf = LogisticRegression(max_iter=1000)
    return make_pipeline(StandardScaler(), clf)


class JobSelectorReuser(BaseReuser):
    """Route each user row to one learnware with a router trained on samples from the learnwares' RKMEs.

    Parameters
    ----------
    learnwares : sequence of ReusableLearnware
        All with fitted RKME specs in the user's feature space (unless there is only one).
    task : {"classification", "regression"}
    herding_size : int
        Total number of synthetic points; learnware ``i`` gets ``max(5, herding_size · w_i)``.
    router : {"gbdt", "logistic", "kernel"}
        ``HistGradientBoostingClassifier`` (100 trees) or ``LogisticRegression`` after a ``StandardScaler``,
        trained on samples drawn from the RKMEs; or ``"kernel"``: :class:`KernelRouter`, the mixture's posterior
        responsibilities read straight off the RKMEs (no samples, no training).
    random_state : int

    Attributes
    ----------
    mixture_weights_ : ndarray of shape (n_learnwares,)
        RKME mixture weights for the user's data (uniform when ``fit`` got no ``X``).
    router_ : sklearn Pipeline or None
        None when there is a single learnware.

    Examples
    --------
    >>> reuser = JobSelectorReuser(learnwares, task="regression").fit(X_user)  # doctest: +SKIP
    >>> y_hat = reuser.predict(X_user)  # doctest: +SKIP
    """

    kind = "job_selector"
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "learnwares": _is_learnware_list, "task": {"classification", "regression"},
        "herding_size": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 10,
        "router": {"gbdt", "logistic", "kernel"}, "random_state": (int, np.integer),
    }

    def __init__(self, learnwares: Sequence[ReusableLearnware] | None = None, *, task: str = "classification",
                 herding_size: int = 1000, router: str = "kernel", random_state: int = 0) -> None:
        self.learnwares = learnwares
        self.task = task
        self.herding_size = herding_size
        self.router = router
        self.random_state = random_state

    def _fit(self, X: NDArray[np.float64] | None, y: NDArray[Any] | None) -> None:
        lws = list(self.learnwares or [])
        m = len(lws)
        if m == 1:
            self.mixture_weights_ = np.ones(1)
            self.router_ = None
            return
        specs = self._require_specs()
        if X is not None:
            w = rkme_mixture_weights(specs, X, random_state=self.random_state)
        else:
            w = np.full(m, 1.0 / m)
        if self.router == "kernel":
            self.mixture_weights_ = w
            self.router_ = _kernel_router(specs, w, X, self.random_state)
            logger.info("job selector: %d learnwares, kernel router, weights %s", m, np.round(w, 3))
            return
        counts = np.maximum(_MIN_SAMPLES_PER_LEARNWARE, np.floor(self.herding_size * w)).astype(int)
        rng = np.random.default_rng(self.random_state)
        floor = _MIN_SPREAD_FRACTION * np.vstack([np.asarray(s.z_) for s in specs]).std(axis=0)
        samples = np.vstack([sample_rkme(s, int(n), rng, min_spread=floor) for s, n in zip(specs, counts)])
        labels = np.repeat(np.arange(m), counts)
        self.mixture_weights_ = w
        with threadpool_limits(limits=1):  # ~1 000 points: OpenMP threads only oversubscribe a busy host
            self.router_ = _make_router(self.router, self.random_state).fit(samples, labels)
        logger.info("job selector: %d learnwares, weights %s, %d router samples", m, np.round(w, 3), len(labels))

    def route(self, X: Any) -> NDArray[np.int64]:
        """Index of the learnware each row of ``X`` is sent to."""
        check_is_fitted(self)
        Xc = self._check_X(X)
        if self.router_ is None:
            return np.zeros(Xc.shape[0], dtype=np.int64)
        return router_index(self.router_, Xc)

    def _predict(self, X: NDArray[np.float64]) -> NDArray[Any]:
        lws = list(self.learnwares or [])
        if self.router_ is None:
            return np.asarray(lws[0].predict(X))
        return route_rows(lws, router_index(self.router_, X), X)

    def _solution_extra(self) -> dict[str, Any]:
        return {"router": None if self.router_ is None else self.router,
                "weights": self.mixture_weights_.tolist()}

    def parts(self) -> dict[str, Any]:
        """``{"router": fitted Pipeline}`` (empty for a single learnware)."""
        super().parts()
        return {} if self.router_ is None else {"router": self.router_}
