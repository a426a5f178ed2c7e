"""The market kernel view in numpy: what a query needs from a persisted index, without torch.

A :class:`NumpyView` holds one feature space's kernel parameters (standardisation ``shift``/``scale``, γ, the
random Fourier frequencies ``omega``) and the per-learnware rows computed under them: the transformed reduced sets
``Z``, their weights, the cached self inner products ⟨Φ_i,Φ_i⟩ and the sketch rows. The parameters come from
:class:`lwlib.search.index.SpecGroup` (torch) when the index is fitted, so both paths use the same kernel; the
algebra below is the same as :class:`lwlib.search.index.KernelView` (tested against it), in numpy so the read
path starts in a fraction of a second. Arrays may be memory-mapped: a query touches the sketch and the
shortlisted rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["KernelParams", "NumpyView", "rbf", "row_arrays"]

_BLOCK_ENTRIES = 8 * 1024 * 1024  # kernel entries per batched block (64 MiB of float64)


def rbf(A: NDArray[np.float64], B: NDArray[np.float64], gamma: float) -> NDArray[np.float64]:
    """``exp(−γ‖a−b‖²)`` for the last two axes, with the same operation order as the torch kernel."""
    a2 = (A * A).sum(-1)[..., :, None]
    b2 = (B * B).sum(-1)[..., None, :]
    D = a2 - 2.0 * (A @ np.swapaxes(B, -1, -2)) + b2
    np.maximum(D, 0.0, out=D)
    D *= -float(gamma)
    out: NDArray[np.float64] = np.exp(D, out=D)
    return out


@dataclass(frozen=True)
class KernelParams:
    """One feature space's comparison kernel: ``k(a,b) = exp(−γ‖(a−b)/scale‖²)`` and its sketch frequencies.

    Attributes
    ----------
    mode : str
        ``"market"`` (standardised features, market bandwidth) — the view the dock searches with.
    gamma : float
    shift, scale : ndarray of shape (d,) or None
    omega : ndarray of shape (d, D) or None
        Random Fourier frequencies; the sketch of a spec is ``Σ_j β_j [cos ωᵀz_j, sin ωᵀz_j] / √D``.
    """

    mode: str
    gamma: float
    shift: NDArray[np.float64] | None
    scale: NDArray[np.float64] | None
    omega: NDArray[np.float64] | None

    def transform(self, Z: Any) -> NDArray[np.float64]:
        """Raw points (..., d) → the view's space."""
        Zt = np.asarray(Z, dtype=np.float64)
        if self.shift is None or self.scale is None:
            return Zt
        return (Zt - self.shift) / self.scale

    def info(self) -> dict[str, Any]:
        """Provenance recorded in :attr:`SearchResult.kernel` (same keys as the torch view)."""
        return {"mode": self.mode, "kernel": "rbf", "gamma": float(self.gamma), "standardized": self.shift is not None,
                "sketch_dim": 0 if self.omega is None else int(self.omega.shape[1]) * 2}


def row_arrays(params: KernelParams, Z: NDArray[np.float64], beta: NDArray[np.float64]
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float32] | None]:
    """Transformed points, self terms and sketch rows for new learnwares under fixed kernel parameters.

    Parameters
    ----------
    Z : ndarray of shape (n, K, d), raw reduced sets (zero-padded)
    beta : ndarray of shape (n, K), zero on padding

    Returns
    -------
    Zt : (n, K, d) float64, self_terms : (n,) float64, sketch : (n, 2D) float32 or None
    """
    Zt = params.transform(Z)
    n, k, _ = Zt.shape
    selfs = np.empty(n)
    step = max(1, _BLOCK_ENTRIES // max(1, k * k))
    for s in range(0, n, step):  # memory blocks of many specs; each block is one batched op
        Kb = rbf(Zt[s:s + step], Zt[s:s + step], params.gamma)
        selfs[s:s + step] = np.einsum("nk,nkl,nl->n", beta[s:s + step], Kb, beta[s:s + step])
    sketch = None if params.omega is None else _rff(Zt, beta, params.omega).astype(np.float32)
    return Zt, selfs, sketch


def _rff(Zt: NDArray[np.float64], beta: NDArray[np.float64], omega: NDArray[np.float64]) -> NDArray[np.float64]:
    """Σ_j β_j [cos(ωᵀz_j), sin(ωᵀz_j)] / √D for every stacked spec, in memory blocks."""
    n, k, d = Zt.shape
    D = omega.shape[1]
    out = np.empty((n, 2 * D))
    step = max(1, _BLOCK_ENTRIES // max(1, k * D))
    for s in range(0, n, step):
        e = min(n, s + step)
        P = (Zt[s:e].reshape(-1, d) @ omega).reshape(e - s, k, D)
        bb = beta[s:e, :, None]
        out[s:e, :D] = (np.cos(P) * bb).sum(1)
        out[s:e, D:] = (np.sin(P) * bb).sum(1)
    return out / float(np.sqrt(D))


class NumpyView:
    """Kernel algebra over one group's persisted rows (duck-compatible with the torch ``KernelView``).

    Parameters
    ----------
    params : KernelParams
    Z : ndarray (N, K, d), transformed reduced sets (may be a read-only memory map)
    betas : ndarray (N, K)
    self_terms : ndarray (N,)
    sketch : ndarray (N, 2D) float32 or None
    coarse : ndarray (N, 2D') float32 or None
        A few of the sketch's frequencies (see :func:`lwlib.market.store.coarse_of`), scanned first on big markets.
    """

    def __init__(self, params: KernelParams, Z: Any, betas: Any, self_terms: NDArray[np.float64],
                 sketch: NDArray[np.float32] | None, *, coarse: NDArray[np.float32] | None = None) -> None:
        self.params = params
        self.Zs, self.betas, self.self_terms, self.sketch, self.coarse = Z, betas, self_terms, sketch, coarse
        self.gamma = float(params.gamma)
        self.mode = params.mode
        self.omega = params.omega
        self.shift, self.scale = params.shift, params.scale

    def transform(self, Z: Any) -> NDArray[np.float64]:
        return self.params.transform(Z)

    def info(self) -> dict[str, Any]:
        return self.params.info()

    def self_inner(self, z: NDArray[np.float64], b: NDArray[np.float64]) -> float:
        """⟨Q, Q⟩ for a transformed query."""
        return float(b @ rbf(z, z, self.gamma) @ b)

    def cross(self, z: NDArray[np.float64], b: NDArray[np.float64],
              positions: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """⟨Q, Φ_i⟩ for the specs at ``positions`` (all if None), in blocks of many specs."""
        n = self.Zs.shape[0] if positions is None else int(np.asarray(positions).size)
        rows = None if positions is None else np.asarray(positions, dtype=np.int64)
        kmax, d = self.Zs.shape[1], self.Zs.shape[2]
        g = self.gamma
        q2 = (z * z).sum(1)[:, None] * g
        out = np.empty(n)
        step = max(1, _BLOCK_ENTRIES // max(1, z.shape[0] * kmax))
        for s in range(0, n, step):  # memory blocks of many specs; each block is one batched op
            e = min(n, s + step)
            sel: Any = slice(s, e) if rows is None else rows[s:e]
            Zb = np.asarray(self.Zs[sel]).reshape(-1, d)
            arg = (z @ Zb.T) * (2.0 * g) - q2
            arg -= (Zb * Zb).sum(1)[None, :] * g
            np.minimum(arg, 0.0, out=arg)
            w = b @ np.exp(arg, out=arg)
            out[s:e] = (w.reshape(e - s, kmax) * np.asarray(self.betas[sel])).sum(1)
        return out

    def gram(self, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> NDArray[np.float64]:
        """⟨Φ_i, Φ_j⟩ for i in ``rows``, j in ``cols`` (small sets, e.g. a mixture pool)."""
        r, c = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        kmax, d = self.Zs.shape[1], self.Zs.shape[2]
        g = self.gamma
        Zr, Zc = np.asarray(self.Zs[r]).reshape(-1, d), np.asarray(self.Zs[c]).reshape(-1, d)
        arg = (Zr @ Zc.T) * (2.0 * g)
        arg -= (Zr * Zr).sum(1)[:, None] * g
        arg -= (Zc * Zc).sum(1)[None, :] * g
        np.minimum(arg, 0.0, out=arg)
        Kf = np.exp(arg, out=arg).reshape(r.size, kmax, c.size, kmax)
        return np.asarray(np.einsum("ik,ikjl,jl->ij", np.asarray(self.betas[r]), Kf, np.asarray(self.betas[c])),
                          dtype=np.float64)

    def query_sketch(self, z: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64] | None:
        """Random-feature embedding of a transformed query (None when the view has no sketch)."""
        if self.omega is None:
            return None
        return np.asarray(_rff(z[None], b[None], self.omega)[0], dtype=np.float64)
