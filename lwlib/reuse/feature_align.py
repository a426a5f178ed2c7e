"""Feature alignment: reuse a learnware whose feature space differs from the user's.

Why: a learnware trained on other columns (another order, other units, a linear mix, another width) can still
help if we can map user rows into its space. Its RKME tells us what its inputs look like, so we learn a small
MLP ``g: R^{d_u} → R^{d_t}`` that makes the distribution of ``g(X_user)`` match the learnware's RKME: the loss is
the weighted MMD² between the mapped user rows (uniform weights) and the RKME's reduced points (weights β) under a
Gaussian kernel whose γ is the median heuristic in the learnware's standardised space (the reference used a
fixed γ=0.1 in raw units). Both sides are standardised, training is full-batch Adam in float64 with seeded
initialisation (deterministic), and the best of a few restarts is kept since distribution matching has local
minima. With labels, a FeatureAugment-style head on ``[X, learnware(g(X))]`` refines the result.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, ClassVar, Iterator, cast

import numpy as np
import torch
from numpy.typing import NDArray

from lwlib._validation import check_is_fitted
from lwlib.errors import ReuseError
from lwlib.reuse.base import BaseReuser, ReusableLearnware
from lwlib.reuse.combine import augment_features, mlp_forward
from lwlib.reuse.feature_augment import fit_augment_head
from lwlib.rkme.kernels import median_heuristic_gamma

logger = logging.getLogger(__name__)

__all__ = ["FeatureAlignReuser", "fit_alignment"]

_MAX_USER_POINTS = 256
# Multiples of the median-heuristic γ used together (a multi-scale kernel); 1 alone cannot tell clusters apart.
GAMMA_SCALES = (1.0, 4.0, 16.0)


def _hidden_ok(v: Any) -> bool:
    """a tuple (or list) of positive ints (hidden layer widths; empty = linear map)"""
    return isinstance(v, (tuple, list)) and all(isinstance(h, (int, np.integer)) and h > 0 for h in v)


def _pos_int(v: Any) -> bool:
    """an int >= 1"""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(v >= 1)


def _standardiser(P: NDArray[np.float64], w: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    mean = w @ P
    sd = np.sqrt(w @ (P - mean) ** 2)
    return mean, np.where(sd > 1e-12, sd, 1.0)


def _build_mlp(d_in: int, hidden: tuple[int, ...], d_out: int, seed: int) -> torch.nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    widths = (d_in, *hidden, d_out)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        lin = torch.nn.Linear(a, b, dtype=torch.float64)
        bound = 1.0 / np.sqrt(a)
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _kernel(A: torch.Tensor, B: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean of Gaussian kernels at γ·GAMMA_SCALES: wide ones align the bulk, narrow ones the clusters."""
    D = torch.cdist(A, B).pow(2)
    total = cast(torch.Tensor, sum(torch.exp(-(gamma * s) * D) for s in GAMMA_SCALES))  # a sum of tensors
    return total / len(GAMMA_SCALES)


def _mmd_loss(G: torch.Tensor, Zt: torch.Tensor, bt: torch.Tensor, gamma: float) -> torch.Tensor:
    """MMD² between uniform-weighted mapped rows and the β-weighted RKME, minus the constant ⟨Φ_t,Φ_t⟩."""
    return _kernel(G, G, gamma).mean() - 2.0 * (_kernel(G, Zt, gamma) @ bt).mean()


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run tiny full-batch steps on one thread: intra-op threads cost ~20x more than they save at this size."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(Xt: torch.Tensor, Zt: torch.Tensor, bt: torch.Tensor, gamma: float, const: float, *, d_out: int,
           hidden: tuple[int, ...], epochs: int, learning_rate: float, n_restarts: int,
           random_state: int) -> tuple[float, torch.nn.Sequential] | None:
    """Seeded full-batch Adam restarts; the one with the lowest final MMD² wins."""
    best: tuple[float, torch.nn.Sequential] | None = None
    for r in range(n_restarts):  # a handful of restarts against local minima of distribution matching
        net = _build_mlp(Xt.shape[1], hidden, d_out, random_state + 7919 * r)
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
        for _ in range(epochs):  # full-batch optimisation steps
            opt.zero_grad()
            loss = _mmd_loss(net(Xt), Zt, bt, gamma)
            torch.autograd.backward(loss)
            opt.step()
        with torch.no_grad():
            final = float(_mmd_loss(net(Xt), Zt, bt, gamma)) + const
        logger.debug("feature align restart %d: MMD² %.5f", r, final)
        if best is None or final < best[0]:
            best = (final, net)
    return best


def fit_alignment(X: NDArray[np.float64], Z: NDArray[np.float64], beta: NDArray[np.float64], *,
                  hidden: tuple[int, ...], epochs: int, learning_rate: float, n_restarts: int,
                  random_state: int) -> tuple[dict[str, Any], float]:
    """Learn the map user space → learnware space; return it as a mapper dict and its final loss.

    Returns
    -------
    mapper : dict of numpy arrays (``x_mean``, ``x_scale``, ``layers`` [{W, b}], ``t_mean``, ``t_scale``),
        applied by :func:`lwlib.reuse.combine.mlp_forward`.
    loss : float
        Final MMD² (up to the constant self term of the user side ≥ 0) of the best restart.
    """
    rng = np.random.default_rng(random_state)
    Xs = X if X.shape[0] <= _MAX_USER_POINTS else X[rng.choice(X.shape[0], _MAX_USER_POINTS, replace=False)]
    b = np.clip(np.asarray(beta, dtype=np.float64), 0.0, None)
    b = b / b.sum() if b.sum() > 0 else np.full(Z.shape[0], 1.0 / Z.shape[0])
    x_mean, x_scale = _standardiser(Xs, np.full(Xs.shape[0], 1.0 / Xs.shape[0]))
    t_mean, t_scale = _standardiser(Z, b)
    Zn = (Z - t_mean) / t_scale
    gamma = median_heuristic_gamma(Zn, random_state=random_state)
    Xt = torch.from_numpy((Xs - x_mean) / x_scale)
    Zt, bt = torch.from_numpy(Zn), torch.from_numpy(b)
    const = float(bt @ _kernel(Zt, Zt, gamma) @ bt)
    with _torch_threads(1):
        best = _train(Xt, Zt, bt, gamma, const, d_out=Z.shape[1], hidden=hidden, epochs=epochs,
                      learning_rate=learning_rate, n_restarts=n_restarts, random_state=random_state)
    if best is None:
        raise ReuseError("fit_alignment ran no restarts; n_restarts must be ≥ 1.", code="invalid_parameter")
    linears = [mod for mod in best[1] if isinstance(mod, torch.nn.Linear)]
    mapper = {"x_mean": x_mean, "x_scale": x_scale, "t_mean": t_mean, "t_scale": t_scale,
              "layers": [{"W": lin.weight.detach().numpy().copy(), "b": lin.bias.detach().numpy().copy()}
                         for lin in linears]}
    return mapper, best[0]


def _jsonable(mapper: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: np.asarray(v).tolist() for k, v in mapper.items() if k != "layers"}
    out["layers"] = [{"W": lay["W"].tolist(), "b": lay["b"].tolist()} for lay in mapper["layers"]]
    return out


class FeatureAlignReuser(BaseReuser):
    """Map user rows into one learnware's feature space by RKME matching, then predict with it.

    Parameters
    ----------
    learnware : ReusableLearnware
        With a fitted RKME table spec (its feature space may differ from the user's).
    task : {"classification", "regression"}
    hidden : tuple of int
        Hidden widths of the MLP ``g`` (``()`` = affine map).
    epochs : int
        Full-batch Adam steps per restart.
    learning_rate : float
    n_restarts : int
        Independent seeded initialisations; the lowest final MMD² wins.
    random_state : int

    Attributes
    ----------
    mapper_ : dict
        The learned map (numpy arrays), applied by :func:`lwlib.reuse.combine.mlp_forward`.
    mmd2_ : float
        Final MMD² between the mapped user rows and the learnware's RKME.
    head_ : sklearn Pipeline or None
        Supervised refinement on ``[X, learnware(g(X))]`` when ``fit`` got ``y``.
    """

    kind = "feature_align"
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "learnware": lambda v: hasattr(v, "predict") and hasattr(v, "id"),
        "task": {"classification", "regression"}, "hidden": _hidden_ok, "epochs": _pos_int,
        "learning_rate": lambda v: isinstance(v, (int, float)) and v > 0, "n_restarts": _pos_int,
        "random_state": (int, np.integer),
    }

    def __init__(self, learnware: ReusableLearnware | None = None, *, task: str = "classification",
                 hidden: tuple[int, ...] = (256,), epochs: int = 300, learning_rate: float = 0.01,
                 n_restarts: int = 3, random_state: int = 0) -> None:
        self.learnware = learnware
        self.task = task
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.n_restarts = n_restarts
        self.random_state = random_state

    def _members(self) -> list[ReusableLearnware]:
        return [self.learnware] if self.learnware is not None else []

    def _target(self) -> ReusableLearnware:
        """The learnware rows are mapped to (``fit`` has checked that one was given)."""
        if self.learnware is None:
            raise ReuseError("FeatureAlignReuser has no learnware; pass FeatureAlignReuser(learnware, ...).",
                             code="invalid_parameter")
        return self.learnware

    def _infer_n_features(self, X: NDArray[np.float64] | None) -> int | None:
        return None if X is None else int(X.shape[1])

    def _fit(self, X: NDArray[np.float64] | None, y: NDArray[Any] | None) -> None:
        if X is None:
            raise ReuseError("FeatureAlignReuser needs the user's rows to learn the map: call fit(X_user).",
                             code="user_data_required")
        lw = self._target()
        spec = getattr(lw, "spec", None)
        if spec is None or not hasattr(spec, "z_"):
            raise ReuseError(f"FeatureAlignReuser needs learnware {lw.id!r} to carry a fitted RKME "
                             "table spec; attach it first.", code="spec_required")
        self.mapper_, self.mmd2_ = fit_alignment(
            X, np.asarray(spec.z_, dtype=np.float64), np.asarray(spec.beta_, dtype=np.float64),
            hidden=tuple(self.hidden), epochs=int(self.epochs), learning_rate=float(self.learning_rate),
            n_restarts=int(self.n_restarts), random_state=int(self.random_state))
        self.head_, self.augment_ = None, None
        if y is not None:
            out = np.asarray(lw.predict(mlp_forward(self.mapper_, X)))
            self.head_, self.augment_ = fit_augment_head(X, [out], y, task=self.task,
                                                         random_state=int(self.random_state))
        logger.info("feature align: MMD² %.5f after %d epochs (head: %s)", self.mmd2_, self.epochs,
                    self.head_ is not None)

    def transform(self, X: Any) -> NDArray[np.float64]:
        """User rows mapped into the learnware's feature space."""
        check_is_fitted(self)
        return mlp_forward(self.mapper_, self._check_X(X))

    def _predict(self, X: NDArray[np.float64]) -> NDArray[Any]:
        out = np.asarray(self._target().predict(mlp_forward(self.mapper_, X)))
        if self.head_ is None or self.augment_ is None:  # both are set together, with labels
            return out
        A = augment_features(X, [out], fill_values=np.asarray(self.augment_["fill_values"]),
                             output_classes=self.augment_["output_classes"],
                             label_outputs=self.augment_["label_outputs"])
        return np.asarray(self.head_.predict(A))

    def _solution_extra(self) -> dict[str, Any]:
        return {"mapper": _jsonable(self.mapper_), "augment": self.augment_}

    def parts(self) -> dict[str, Any]:
        """``{"head": fitted Pipeline}`` when fitted with labels, else empty."""
        super().parts()
        return {} if self.head_ is None else {"head": self.head_}
