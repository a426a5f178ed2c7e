"""Gaussian-kernel algebra shared by every RKME: kernels, inner products and batched MMD².

A market ranks one user specification against thousands of learnware specifications. Doing that one pair at a
time costs a Python round trip per learnware, so the learnware side is stacked into one padded
``(N, K_max, d)`` tensor (zero weights in the padding, which contribute nothing to any sum) and every distance is
computed in a few batched tensor operations. Blocks of specs bound the memory; there is never a loop per spec.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from lwlib.errors import LwdockError

if TYPE_CHECKING:  # pragma: no cover
    from lwlib.rkme.rkme import RKMETableSpec

logger = logging.getLogger(__name__)

__all__ = ["rbf_kernel", "mmd2_batch", "self_inner_products", "stack_specs", "median_heuristic_gamma",
           "as_tensor"]

# Upper bound on the number of float64 kernel entries held at once by the batched routines (~128 MiB).
_MAX_BLOCK_ENTRIES = 16 * 1024 * 1024


def as_tensor(a: Any) -> torch.Tensor:
    """Return ``a`` as a float64 CPU tensor without copying when it already is one."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(dtype=torch.float64, device="cpu")
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float64)))


def _sq_dists(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances of the last two axes (batched), clamped at 0 against round-off."""
    a2 = (A * A).sum(-1, keepdim=True)
    b2 = (B * B).sum(-1, keepdim=True).transpose(-1, -2)
    return (a2 - 2.0 * (A @ B.transpose(-1, -2)) + b2).clamp_min_(0.0)


def rbf_kernel(A: Any, B: Any, gamma: float) -> torch.Tensor:
    """Gaussian kernel ``k(a, b) = exp(-gamma * ||a - b||²)`` in float64.

    Parameters
    ----------
    A : array-like or Tensor of shape (..., n_a, d)
    B : array-like or Tensor of shape (..., n_b, d)
    gamma : float
        Kernel width; the same γ must be used on both sides of any comparison.

    Returns
    -------
    Tensor of shape (..., n_a, n_b), float64.
    """
    return torch.exp(_sq_dists(as_tensor(A), as_tensor(B)).mul_(-float(gamma)))


def _block_size(per_item: int) -> int:
    """How many specs fit in one batched block under the memory bound."""
    return max(1, _MAX_BLOCK_ENTRIES // max(1, per_item))


def self_inner_products(Zs: Any, betas: Any, gamma: float) -> NDArray[np.float64]:
    """⟨Φ_i, Φ_i⟩ = β_iᵀ k(Z_i, Z_i) β_i for every stacked spec, so searches can cache them.

    Parameters
    ----------
    Zs : array-like of shape (N, K_max, d)
    betas : array-like of shape (N, K_max), zero in the padding.
    gamma : float

    Returns
    -------
    ndarray of shape (N,)
    """
    Zt, bt = as_tensor(Zs), as_tensor(betas)
    n, k = Zt.shape[0], Zt.shape[1]
    out = torch.empty(n, dtype=torch.float64)
    step = _block_size(k * k)
    for s in range(0, n, step):  # memory blocks of many specs; each block is one batched op
        e = min(n, s + step)
        Kb = rbf_kernel(Zt[s:e], Zt[s:e], gamma)
        out[s:e] = torch.einsum("nk,nkl,nl->n", bt[s:e], Kb, bt[s:e])
    return out.numpy()


def stack_specs(specs: Sequence[RKMETableSpec]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Stack fitted specs into padded ``Zs`` (N, K_max, d) and ``betas`` (N, K_max) with zero-weight padding.

    Raises
    ------
    LwdockError
        If the list is empty or the specs live in different feature spaces.
    """
    if len(specs) == 0:
        raise LwdockError("stack_specs got no specifications; pass at least one fitted RKME.",
                          code="spec_empty_stack")
    dims = {int(np.asarray(s.z_).shape[1]) for s in specs}
    if len(dims) != 1:
        raise LwdockError(f"stack_specs got specs of different dimensions {sorted(dims)}; only specs of one "
                          "feature space can be compared, group them by dimension first.",
                          code="spec_dim_mismatch", dims=sorted(dims))
    d = dims.pop()
    kmax = max(int(np.asarray(s.z_).shape[0]) for s in specs)
    Zs = np.zeros((len(specs), kmax, d))
    betas = np.zeros((len(specs), kmax))
    for i, s in enumerate(specs):  # copying N small arrays into the buffer; the numeric work is batched
        k = s.z_.shape[0]
        Zs[i, :k] = s.z_
        betas[i, :k] = s.beta_
    return Zs, betas


def _normalise_batch_args(query_z: Any, query_beta: Any, Zs: Any, betas: Any, gamma: Any,
                          self_terms: Any) -> tuple[Any, Any, Any, Any, float, Any]:
    """Accept both ``(spec, Zs, betas, gamma)`` and ``(query_z, query_beta, Zs, betas, gamma)`` call forms."""
    if hasattr(query_z, "z_"):
        spec = query_z
        if query_beta is not None and len(np.shape(query_beta)) == 3:
            # positional spec form: (spec, Zs, betas, gamma, self_terms) shifted one slot to the right
            Zs, betas, gamma, self_terms = query_beta, Zs, betas, (gamma if self_terms is None else self_terms)
        if gamma is None:
            gamma = spec.gamma_
        return spec.z_, spec.beta_, Zs, betas, float(gamma), self_terms
    if query_beta is None or Zs is None or betas is None or gamma is None:
        raise LwdockError("mmd2_batch needs query_z, query_beta, Zs, betas and gamma (or a fitted spec as the "
                          "first argument).", code="invalid_input")
    return query_z, query_beta, Zs, betas, float(gamma), self_terms


def mmd2_batch(query_z: Any, query_beta: Any = None, Zs: Any = None, betas: Any = None,
               gamma: float | None = None, self_terms: Any = None) -> NDArray[np.float64]:
    """MMD² between one query embedding and N stacked embeddings, in batched tensor operations.

    ``MMD²_i = ⟨Q,Q⟩ − 2⟨Q,Φ_i⟩ + ⟨Φ_i,Φ_i⟩`` with ``⟨Q,Φ_i⟩ = β_qᵀ k(Z_q, Z_i) β_i``.

    Parameters
    ----------
    query_z : array-like (K_q, d), or a fitted RKME spec (then ``query_beta`` is omitted and the next
        positional arguments are ``Zs, betas, gamma``; γ defaults to the spec's γ).
    query_beta : array-like (K_q,)
    Zs : array-like (N, K_max, d), padded as built by :func:`stack_specs`.
    betas : array-like (N, K_max), zero in the padding.
    gamma : float
        The market's search γ; identical for query and learnwares.
    self_terms : array-like (N,), optional
        Cached :func:`self_inner_products` for the same ``gamma``.

    Returns
    -------
    ndarray of shape (N,), clipped at 0 (MMD² is non-negative; tiny negatives are round-off).
    """
    qz, qb, Zs, betas, g, self_terms = _normalise_batch_args(query_z, query_beta, Zs, betas, gamma, self_terms)
    qz, qb, Zt, bt = as_tensor(qz), as_tensor(qb).reshape(-1), as_tensor(Zs), as_tensor(betas)
    if Zt.dim() != 3 or qz.dim() != 2 or Zt.shape[2] != qz.shape[1]:
        raise LwdockError(f"mmd2_batch: query of shape {tuple(qz.shape)} cannot be compared with stacked specs "
                          f"of shape {tuple(Zt.shape)}; both need the same number of features.",
                          code="spec_dim_mismatch")
    n, kmax, d = Zt.shape
    q_self = float(qb @ rbf_kernel(qz, qz, g) @ qb)
    cross = torch.empty(n, dtype=torch.float64)
    flat = Zt.reshape(n * kmax, d)
    step = _block_size(qz.shape[0] * kmax)
    for s in range(0, n, step):  # memory blocks of many specs each
        e = min(n, s + step)
        w = qb @ rbf_kernel(qz, flat[s * kmax:e * kmax], g)  # (block*kmax,)
        cross[s:e] = (w.reshape(e - s, kmax) * bt[s:e]).sum(1)
    st = as_tensor(self_terms).reshape(-1) if self_terms is not None else \
        torch.from_numpy(self_inner_products(Zt, bt, g))
    return (q_self - 2.0 * cross + st).clamp_min_(0.0).numpy()


def median_heuristic_gamma(points: Any, *, max_points: int = 1000, random_state: int = 0) -> float:
    """γ = 1 / (2·median²) of pairwise distances on a subsample: a scale-aware kernel width for a feature space.

    The reference's fixed γ=0.1 assumes standardised features; the market instead picks γ per feature space from
    the reduced points it holds, so distances stay informative for any scale.

    Parameters
    ----------
    points : array-like of shape (n_points, d)
    max_points : int
        Subsample size bounding the O(m²) distance computation.
    random_state : int

    Returns
    -------
    float
        Falls back to ``1.0`` when fewer than two distinct points are given.
    """
    P = np.asarray(points, dtype=np.float64)
    P = P.reshape(P.shape[0], -1)
    P = P[np.isfinite(P).all(axis=1)]
    if P.shape[0] > max_points:
        P = P[np.random.default_rng(random_state).choice(P.shape[0], max_points, replace=False)]
    if P.shape[0] < 2:
        return 1.0
    D = _sq_dists(as_tensor(P), as_tensor(P))
    iu = torch.triu_indices(P.shape[0], P.shape[0], offset=1)
    dd = D[iu[0], iu[1]]
    dd = dd[dd > 0]
    if dd.numel() == 0:
        return 1.0
    med2 = float(torch.median(dd))  # median of squared distances = (median distance)²
    return 1.0 / (2.0 * med2)
