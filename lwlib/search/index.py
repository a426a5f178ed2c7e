"""The market's RKMEs stacked per feature space, with the comparison kernel chosen by the market.

An RKME is a weighted point set (Z, β) and can be compared under any kernel, not only the γ its submitter used.
The reference compares everything with γ = 0.1 on raw features; on data whose scale is far from 1 (scikit-learn
digits, pixels 0–16) every kernel value between different points is ~0, all distances are equal and every user
gets the same learnware. So each feature space gets two *kernel views* of the same stacked reduced sets:

* ``"market"`` (default): features standardised with the pooled, β-weighted mean/std of all the market's reduced
  points in that space, then a Gaussian kernel whose γ is the median heuristic on the standardised points —
  by default over pairs of points of the same learnware (``bandwidth="local"``, see
  :meth:`SpecGroup._within_spec_gamma`), optionally over the pooled market (``"global"``).
* ``"reference"``: raw features and the query's own γ (0.1 for reference specs), for compatibility.

Each view caches the learnwares' self inner products ⟨Φ_i, Φ_i⟩ (the reference recomputes them on every query)
and a random-Fourier-feature sketch of every embedding, used to shortlist candidates in O(N·D) before the exact
batched MMD² is computed on the shortlist. All numeric work is batched over learnwares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from lwlib.constants import RKME_LEGACY_TYPE, RKME_TABLE_TYPE
from lwlib.errors import SearchError
from lwlib.rkme.kernels import (as_tensor, median_heuristic_gamma, rbf_kernel, self_inner_products,
                                stack_specs)

logger = logging.getLogger(__name__)

__all__ = ["SpecIndex", "SpecGroup", "KernelView", "KERNEL_MODES", "spec_type_of"]

KERNEL_MODES = ("market", "reference")
_BLOCK_ENTRIES = 8 * 1024 * 1024  # kernel entries per batched block (64 MiB of float64)
_STD_FLOOR = 1e-8
_GAMMA_SPECS = 256  # learnwares sampled to pick the market bandwidth
BANDWIDTHS = ("local", "global")


def spec_type_of(spec: Any) -> str:
    """The spec's type string, with the legacy alias folded into the table type."""
    t = str(getattr(spec, "type_name", type(spec).__name__))
    return RKME_TABLE_TYPE if t == RKME_LEGACY_TYPE else t


@dataclass
class KernelView:
    """One comparison kernel over one group's stacked specs: ``k(a,b) = exp(−γ‖(a−b)/scale‖²)``.

    Attributes
    ----------
    mode : str
    gamma : float
    shift, scale : ndarray of shape (d,) or None
        Standardisation applied to every point before the kernel (None = raw features).
    Zs : Tensor of shape (N, K_max, d)
        The group's reduced sets, transformed.
    self_terms : ndarray of shape (N,)
    sketch : Tensor of shape (N, 2·D) or None
        Random-Fourier-feature mean embeddings, ``sketch_i · sketch_j ≈ ⟨Φ_i, Φ_j⟩``.
    """

    mode: str
    gamma: float
    shift: NDArray[np.float64] | None
    scale: NDArray[np.float64] | None
    Zs: torch.Tensor
    betas: torch.Tensor
    self_terms: NDArray[np.float64]
    omega: torch.Tensor | None = None
    sketch: torch.Tensor | None = None
    sq_norms: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sq_norms = (self.Zs * self.Zs).sum(-1)  # (N, K_max), reused by every query

    def transform(self, Z: Any) -> torch.Tensor:
        """Map raw points of shape (..., d) into this view's space."""
        Zt = as_tensor(Z)
        if self.shift is None or self.scale is None:
            return Zt
        return (Zt - torch.from_numpy(self.shift)) / torch.from_numpy(self.scale)

    def standardise(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """Raw rows → this view's standardised units (numpy twin of :meth:`transform`; raw views return ``X``)."""
        if self.shift is None or self.scale is None:
            return X
        out: NDArray[np.float64] = (X - self.shift) / self.scale
        return out

    def unstandardise(self, Z: NDArray[np.float64]) -> NDArray[np.float64]:
        """This view's standardised units → raw units (the inverse of :meth:`standardise`)."""
        if self.shift is None or self.scale is None:
            return Z
        out: NDArray[np.float64] = Z * self.scale + self.shift
        return out

    def info(self) -> dict[str, Any]:
        """Provenance recorded in :attr:`SearchResult.kernel`."""
        return {"mode": self.mode, "kernel": "rbf", "gamma": float(self.gamma),
                "standardized": self.shift is not None, "sketch_dim": 0 if self.omega is None else
                int(self.omega.shape[1]) * 2}

    def self_inner(self, z: torch.Tensor, b: torch.Tensor) -> float:
        """⟨Q, Q⟩ for a transformed query."""
        return float(b @ rbf_kernel(z, z, self.gamma) @ b)

    def cross(self, z: torch.Tensor, b: torch.Tensor,
              positions: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """⟨Q, Φ_i⟩ for a transformed query against the specs at ``positions`` (all if None), batched.

        Same algebra as :func:`lwlib.rkme.kernels.rbf_kernel`, fused with the view's cached squared norms of the
        reduced points so a query pays one matmul and one ``exp`` per block.
        """
        if positions is None:
            Zs, bs, z2s = self.Zs, self.betas, self.sq_norms
        else:
            sel = torch.from_numpy(np.asarray(positions, dtype=np.int64))
            Zs, bs, z2s = self.Zs[sel], self.betas[sel], self.sq_norms[sel]
        n, kmax, d = Zs.shape
        g = float(self.gamma)
        q2 = (z * z).sum(1, keepdim=True).mul_(g)  # (k_q, 1)
        out = torch.empty(n, dtype=torch.float64)
        flat, flat2 = Zs.reshape(n * kmax, d), z2s.reshape(1, n * kmax)
        step = max(1, _BLOCK_ENTRIES // max(1, z.shape[0] * kmax))
        for s in range(0, n, step):  # memory blocks of many specs; each block is one batched op
            e = min(n, s + step)
            arg = torch.mm(z, flat[s * kmax:e * kmax].T).mul_(2.0 * g).sub_(q2)
            arg.sub_(flat2[:, s * kmax:e * kmax].mul(g)).clamp_max_(0.0)
            w = b @ arg.exp_()
            out[s:e] = (w.reshape(e - s, kmax) * bs[s:e]).sum(1)
        return out.numpy()

    def gram(self, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> NDArray[np.float64]:
        """⟨Φ_i, Φ_j⟩ for i in ``rows``, j in ``cols`` (small sets, e.g. a mixture pool), batched."""
        r = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        c = torch.from_numpy(np.asarray(cols, dtype=np.int64))
        kmax, d = self.Zs.shape[1], self.Zs.shape[2]
        g = float(self.gamma)
        arg = torch.mm(self.Zs[r].reshape(-1, d), self.Zs[c].reshape(-1, d).T).mul_(2.0 * g)
        arg.sub_(self.sq_norms[r].reshape(-1, 1).mul(g)).sub_(self.sq_norms[c].reshape(1, -1).mul(g))
        Kf = arg.clamp_max_(0.0).exp_().reshape(len(r), kmax, len(c), kmax)
        return torch.einsum("ik,ikjl,jl->ij", self.betas[r], Kf, self.betas[c]).numpy()

    def query_sketch(self, z: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
        """Random-feature embedding of a transformed query (None when the view has no sketch).

        Sketch products stay in torch: numpy's threaded BLAS stalls on small mat-vecs on a busy machine.
        """
        if self.omega is None:
            return None
        return _rff(z[None], b[None], self.omega)[0]


def _rff(Zs: torch.Tensor, betas: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Σ_j β_j [cos(ωᵀz_j), sin(ωᵀz_j)] / √D for every stacked spec, in memory blocks."""
    n, kmax, d = Zs.shape
    D = omega.shape[1]
    out = torch.empty((n, 2 * D), dtype=torch.float64)
    step = max(1, _BLOCK_ENTRIES // max(1, kmax * D))
    for s in range(0, n, step):
        e = min(n, s + step)
        P = Zs[s:e].reshape(-1, d) @ omega
        P = P.reshape(e - s, kmax, D)
        bb = betas[s:e].unsqueeze(-1)
        out[s:e, :D] = (torch.cos(P) * bb).sum(1)
        out[s:e, D:] = (torch.sin(P) * bb).sum(1)
    return out.div_(float(np.sqrt(D)))


@dataclass
class SpecGroup:
    """All specs of one (spec type, n_features): raw stacked reduced sets plus lazily built kernel views."""

    spec_type: str
    n_features: int
    ids: list[str]
    Zs: torch.Tensor
    betas: torch.Tensor
    sketch_dim: int = 256
    random_state: int = 0
    bandwidth: str = "local"
    views: dict[tuple[str, float], KernelView] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def market_standardisation(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Pooled β-weighted mean/std of every reduced point in the group; every spec carries mass 1/N."""
        b = self.betas.clamp_min(0.0)
        tot = b.sum(1, keepdim=True)
        b = torch.where(tot > 0, b / tot.clamp_min(1e-300), torch.full_like(b, 0.0))
        w = b / max(1, len(self))
        wsum = float(w.sum())
        mean = torch.einsum("nk,nkd->d", w, self.Zs) / wsum
        var = torch.einsum("nk,nkd->d", w, (self.Zs - mean) ** 2) / wsum
        std = var.sqrt().numpy()
        std = np.where(std > _STD_FLOOR * np.maximum(1.0, np.abs(mean.numpy())), std, 1.0)
        return mean.numpy(), std

    def _within_spec_gamma(self, Zs: torch.Tensor) -> float:
        """γ = 1/(2·m²), m = median distance between reduced points of the *same* learnware (≤ 256 sampled).

        This is the two-sample median heuristic for distributions that are close — the only case where the exact
        value of MMD² matters. The median over the whole pooled market is the between-learnware scale instead:
        under it, disjoint clusters still share most kernel mass and score ≈ 0.7 (measured), so scores lose
        meaning.
        """
        n = len(self)
        pick = np.random.default_rng(self.random_state).choice(n, size=min(n, _GAMMA_SPECS), replace=False)
        sel = torch.from_numpy(np.sort(pick))
        Z, b = Zs[sel], self.betas[sel]
        D2 = torch.cdist(Z, Z).pow(2)
        valid = (b[:, :, None] > 0) & (b[:, None, :] > 0)
        valid &= torch.triu(torch.ones(Z.shape[1], Z.shape[1], dtype=torch.bool), diagonal=1)
        vals = D2[valid]
        vals = vals[vals > 0]
        if vals.numel() == 0:
            return median_heuristic_gamma(Zs.reshape(-1, self.n_features).numpy(), random_state=self.random_state)
        return 1.0 / (2.0 * float(torch.median(vals)))

    def view(self, mode: str, gamma: float | None = None) -> KernelView:
        """The kernel view for ``mode`` (built once and cached); ``gamma`` is the query γ in reference mode."""
        if mode not in KERNEL_MODES:
            raise SearchError(f"Unknown kernel mode {mode!r}; use one of {KERNEL_MODES}.", code="invalid_parameter")
        key = (mode, 0.0 if mode == "market" else float(gamma if gamma is not None else 0.1))
        if key not in self.views:
            self.views[key] = self._build_view(mode, key[1])
        return self.views[key]

    def _build_view(self, mode: str, gamma: float) -> KernelView:
        shift = scale = None
        Zs = self.Zs
        if mode == "market":
            shift, scale = self.market_standardisation()
            Zs = (self.Zs - torch.from_numpy(shift)) / torch.from_numpy(scale)
            gamma = self._within_spec_gamma(Zs) if self.bandwidth == "local" else median_heuristic_gamma(
                Zs.reshape(-1, self.n_features)[(self.betas > 0).reshape(-1)].numpy(),
                random_state=self.random_state)
        selfs = self_inner_products(Zs, self.betas, gamma)
        omega = sketch = None
        if self.sketch_dim > 0:
            gen = torch.Generator().manual_seed(int(self.random_state))
            omega = torch.randn(self.n_features, self.sketch_dim, generator=gen, dtype=torch.float64)
            omega *= float(np.sqrt(2.0 * gamma))
            sketch = _rff(Zs, self.betas, omega)
        logger.info("search view %s for %s/d=%d over %d specs: gamma=%.4g", mode, self.spec_type,
                    self.n_features, len(self), gamma)
        return KernelView(mode=mode, gamma=float(gamma), shift=shift, scale=scale, Zs=Zs, betas=self.betas,
                          self_terms=selfs, omega=omega, sketch=sketch)


class SpecIndex:
    """Stacked market specifications grouped by (spec type, n_features).

    Build with :meth:`build`; the market kernel view of every group is computed at build time so the first
    query pays nothing extra.

    Attributes
    ----------
    groups : dict[(str, int), SpecGroup]
    positions : dict[str, tuple[(str, int), int]]
        learnware id → (group key, row in that group).
    """

    def __init__(self, groups: dict[tuple[str, int], SpecGroup]) -> None:
        self.groups = groups
        self.positions = {lid: (key, i) for key, g in groups.items() for i, lid in enumerate(g.ids)}

    def __len__(self) -> int:
        return len(self.positions)

    @classmethod
    def build(cls, ids: Sequence[str], specs: Sequence[Any], *, sketch_dim: int = 256,
              random_state: int = 0, eager_modes: Sequence[str] = ("market",),
              bandwidth: str = "local") -> SpecIndex:
        """Group fitted RKMEs by (type, n_features) and stack them into padded tensors.

        Parameters
        ----------
        ids : sequence of str
            Learnware ids, unique.
        specs : sequence of fitted RKME specs (anything with ``z_`` and ``beta_``).
        sketch_dim : int
            Random Fourier frequencies per view (0 disables the shortlist sketch).
        random_state : int
        eager_modes : sequence of str
            Kernel views built now rather than on first use.
        bandwidth : {"local", "global"}
            Market γ from the median distance within learnwares (default) or over the pooled market.

        Raises
        ------
        SearchError
            Duplicate ids, length mismatch, or a spec that is not fitted.
        """
        ids = [str(i) for i in ids]
        if bandwidth not in BANDWIDTHS:
            raise SearchError(f"Unknown bandwidth rule {bandwidth!r}; use one of {BANDWIDTHS}.",
                              code="invalid_parameter")
        if len(ids) != len(specs):
            raise SearchError(f"SpecIndex.build got {len(ids)} ids but {len(specs)} specs; pass one spec per id.",
                              code="invalid_input")
        if len(set(ids)) != len(ids):
            raise SearchError("SpecIndex.build got duplicate learnware ids; every learnware must appear once.",
                              code="invalid_input")
        buckets: dict[tuple[str, int], list[int]] = {}
        for i, s in enumerate(specs):  # grouping bookkeeping only; the numeric work is batched per group
            z = getattr(s, "z_", None)
            if z is None or getattr(s, "beta_", None) is None:
                raise SearchError(f"Specification of learnware {ids[i]} is not fitted (no z_/beta_); fit or load "
                                  "it before indexing.", code="spec_not_fitted", learnware_id=ids[i])
            buckets.setdefault((spec_type_of(s), int(np.asarray(z).shape[1])), []).append(i)
        groups: dict[tuple[str, int], SpecGroup] = {}
        for key, members in buckets.items():
            Zs, betas = stack_specs([specs[i] for i in members])
            g = SpecGroup(spec_type=key[0], n_features=key[1], ids=[ids[i] for i in members],
                          Zs=torch.from_numpy(Zs), betas=torch.from_numpy(betas), sketch_dim=int(sketch_dim),
                          random_state=int(random_state), bandwidth=bandwidth)
            for mode in eager_modes:
                g.view(mode)
            groups[key] = g
        return cls(groups)

    def group_for(self, spec: Any) -> SpecGroup | None:
        """The group a query spec can be compared with (same type and dimension), or None."""
        return self.groups.get((spec_type_of(spec), int(np.asarray(spec.z_).shape[1])))

    def rows_of(self, group: SpecGroup, ids: Sequence[str] | None) -> NDArray[np.int64]:
        """Rows of ``group`` holding ``ids`` (all rows when ids is None); unknown ids are skipped."""
        if ids is None:
            return np.arange(len(group), dtype=np.int64)
        gkey = (group.spec_type, group.n_features)
        rows = [self.positions[i][1] for i in ids if i in self.positions and self.positions[i][0] == gkey]
        return np.unique(np.asarray(rows, dtype=np.int64))
