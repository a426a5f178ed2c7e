"""Simplex-constrained QPs with Clarabel, called directly (no scipy.sparse, no qpsolvers import).

``min ½xᵀPx + qᵀx  s.t.  1ᵀx = 1, x ≥ 0`` is what both the RKME weight step and the mixture weights solve. The
torch path reaches Clarabel through qpsolvers, whose import (with scipy.sparse) costs ~0.3 s of CPU — a fifth of
a command-line search. This builds exactly the problem qpsolvers hands to Clarabel (same sparse structure, same
cones, same settings), so the solutions are the same numbers, from a compressed-column view of a dense matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["solve_simplex_qp"]


class _CSC:
    """The attributes Clarabel reads from a ``scipy.sparse.csc_matrix`` (zeros dropped, rows sorted)."""

    format = "csc"
    has_canonical_format = True

    def __init__(self, M: NDArray[np.float64]) -> None:
        M = np.asarray(M, dtype=np.float64)
        nz = M.T != 0  # column-major order, as csc_matrix(dense) stores it
        self.shape = M.shape
        self.indptr = np.concatenate([[0], np.cumsum(nz.sum(1))]).astype(np.int32)
        self.indices = np.nonzero(nz)[1].astype(np.int32)
        self.data = M.T[nz]
        self.nnz = int(self.data.size)

    def tocsc(self) -> _CSC:
        return self


def solve_simplex_qp(P: Any, q: Any) -> tuple[NDArray[np.float64], bool]:
    """(x, solved) for ``min ½xᵀPx + qᵀx`` on the simplex, as ``qpsolvers`` + Clarabel would return them."""
    import clarabel

    P = np.asarray(P, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    k = q.shape[0]
    A = np.vstack([np.ones((1, k)), -np.eye(k)])  # equality row, then the bounds x ≥ 0 written as −x ≤ −0
    b = np.concatenate([np.ones(1), -1.0 * np.zeros(k)])
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    result = clarabel.DefaultSolver(_CSC(P), q, _CSC(A), b,
                                    [clarabel.ZeroConeT(1), clarabel.NonnegativeConeT(k)], settings).solve()
    return np.array(result.x, dtype=np.float64), bool(result.status == clarabel.SolverStatus.Solved)
