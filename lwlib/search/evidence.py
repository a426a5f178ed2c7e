"""Evidence that sees labels: the specs' predicted loss on a user's labelled rows, and its combination with real loss.

Two pieces, both pure array functions so they are tested and benchmarked on their own:

:func:`predicted_losses`
    For every learnware with a label-aware spec, the kernel-smoothed output of the model around the user's
    labelled rows, ``f̃_j(x) = Σ_k softmax_k(−γ‖x − z_jk‖² + log β_jk) f_j(z_jk)`` (a conditional-mean-embedding
    estimate built from the model's outputs at its own reduced set), scored against the user's labels: expected
    error (classification) or squared error (regression). It is a conditional discrepancy between the user's
    P(y|x) and the learnware's, evaluated where the user's data are, computed for N learnwares at once without
    running any model.

:func:`combine_evidence`
    An empirical-Bayes combination of the *real* loss of shortlisted learnwares on the user's few labelled rows
    with what the specifications say. Twenty labels are too few on their own (issue 11: picking by the loss on
    20 rows did no better than the unlabelled top-1), so each learnware's observed loss is shrunk towards a prior
    predicted from its spec evidence (P(X) MMD² and spec-predicted loss) by a regression across the shortlist;
    the prior's strength is the between-learnware variance that the regression leaves unexplained, the data's
    strength is n / (per-row loss variance). With 5 labels the specs decide; with 100 the labels do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

__all__ = ["predicted_losses", "row_losses", "combine_evidence", "Combination", "classes_of"]

_BLOCK = 4 * 1024 * 1024


def classes_of(y: Any) -> NDArray[np.int64]:
    """Integer class indices of labels (labels must already be indices 0..C-1, as learnwares predict)."""
    return np.asarray(y).reshape(-1).astype(np.int64)


def predicted_losses(Zs: torch.Tensor, betas: torch.Tensor, Fs: torch.Tensor, X: torch.Tensor, y: NDArray[Any], *,
                     gamma: float, task: str) -> NDArray[np.float64]:
    """Spec-predicted loss of N learnwares on n labelled rows, batched.

    Parameters
    ----------
    Zs : Tensor (N, K, d)   reduced sets in the kernel's space (zero β in padding).
    betas : Tensor (N, K)
    Fs : Tensor (N, K, m)   outputs at the reduced points (class distributions, or predictions).
    X : Tensor (n, d)       the user's labelled rows, in the same space.
    y : ndarray (n,) or (n, m)
    gamma : float           smoothing kernel width.
    task : {"classification", "regression"}

    Returns
    -------
    ndarray of shape (N,)
        Mean predicted loss over the rows (error probability, or squared error).
    """
    N, K, d = Zs.shape
    n = X.shape[0]
    out = torch.empty(N, dtype=torch.float64)
    logb = torch.where(betas > 0, betas.clamp_min(1e-300).log(), torch.full_like(betas, -torch.inf))
    x2 = (X * X).sum(1)
    step = max(1, _BLOCK // max(1, n * K))
    if task == "classification":
        yi = torch.from_numpy(classes_of(y))
    else:
        Y = torch.from_numpy(np.asarray(y, dtype=np.float64).reshape(n, -1))
    for s in range(0, N, step):  # memory blocks of learnwares; each block is one batched op
        e = min(N, s + step)
        Z = Zs[s:e]
        d2 = (x2[None, :, None] - 2.0 * torch.einsum("nd,bkd->bnk", X, Z) + (Z * Z).sum(-1)[:, None, :])
        W = torch.softmax(-gamma * d2.clamp_min(0.0) + logb[s:e, None, :], dim=-1)  # (b, n, K)
        pred = torch.einsum("bnk,bkm->bnm", W, Fs[s:e])  # (b, n, m)
        if task == "classification":
            m = pred.shape[2]
            ok = yi < m
            p_true = torch.zeros(e - s, n, dtype=torch.float64)
            if bool(ok.any()):
                idx = torch.where(ok, yi, torch.zeros_like(yi))
                p_true = torch.gather(pred, 2, idx[None, :, None].expand(e - s, n, 1))[..., 0] * ok[None, :]
            out[s:e] = 1.0 - p_true.mean(1)
        else:
            k = min(pred.shape[2], Y.shape[1])
            out[s:e] = ((pred[:, :, :k] - Y[None, :, :k]) ** 2).mean(dim=(1, 2))
    return out.numpy()


def row_losses(outputs: Any, y: Any, task: str) -> NDArray[np.float64]:
    """Per-row loss of one learnware's real outputs: 0/1 error (argmax of scores) or mean squared error."""
    o = np.asarray(outputs)
    if task == "classification":
        lab = o.argmax(axis=1) if o.ndim == 2 and o.shape[1] > 1 else o.reshape(-1)
        errors: NDArray[np.float64] = (np.asarray(lab).reshape(-1) != np.asarray(y).reshape(-1)).astype(np.float64)
        return errors
    yt = np.asarray(y, dtype=np.float64).reshape(o.shape[0], -1)
    squared: NDArray[np.float64] = ((o.astype(np.float64).reshape(o.shape[0], -1) - yt) ** 2).mean(axis=1)
    return squared


@dataclass(frozen=True)
class Combination:
    """Result of :func:`combine_evidence` (arrays aligned with the shortlist)."""

    posterior: NDArray[np.float64]     # combined loss estimate (on the working scale)
    empirical: NDArray[np.float64]     # observed mean loss on the labelled rows
    prior: NDArray[np.float64]         # loss predicted from the specs (working scale)
    label_weight: NDArray[np.float64]  # share of the labels in each posterior, in [0, 1]
    prior_strength: float              # 1 / τ²


def _transform(loss: NDArray[np.float64], task: str) -> NDArray[np.float64]:
    return np.log(loss + 1e-3) if task == "regression" else loss


def combine_evidence(per_row: NDArray[np.float64], features: NDArray[np.float64], *, task: str,
                     ridge: float = 1.0, variance: str = "pooled", min_between: float = 0.2) -> Combination:
    """Shrink each shortlisted learnware's loss on n labelled rows towards a prior predicted from its specs.

    Parameters
    ----------
    per_row : ndarray of shape (m, n)
        Loss of each of m learnwares on each labelled row.
    features : ndarray of shape (m, p)
        Spec evidence per learnware (e.g. log P(X) MMD², spec-predicted loss); standardised here.
    task : {"classification", "regression"}
        Regression losses are combined on a log scale (MSEs are skewed and multiplicative).
    ridge : float
        Ridge penalty of the prior regression (in units of standardised features).
    variance : {"pooled", "own"}
        Per-row loss variance behind each observed loss's noise: the shortlist's average (``"pooled"``) or each
        learnware's own. With 5-20 rows a learnware's own variance is as noisy as its mean and correlated with
        it (a learnware that happened to do well on the few rows also looks precise), so "own" hands the extra
        weight to the luckiest candidate — the winner's curse grows with the number of candidates. Measured on
        the full tabular market evaluated whole (``benchmarks/results/label_study.md``): pooled keeps top-1/best
        at the oracle's (lowest observed loss) while own loses 0.1-0.7 on 5-20 labels.
    min_between : float
        Floor of the between-learnware variance τ², as a share of the observed losses' variance: the prior is
        never trusted more than the spread of the losses it predicts allows.

    Returns
    -------
    Combination
    """
    if variance not in ("pooled", "own"):
        raise ValueError(f"variance must be 'pooled' or 'own', got {variance!r}")
    m, n = per_row.shape
    mean = per_row.mean(axis=1)
    # Learnwares are scored on the *same* rows, so their losses are strongly correlated: what limits a ranking is
    # the noise of the paired differences. Each learnware is compared with the shortlist's average on every row.
    if task == "regression":
        g = np.log(mean + 1e-3 * max(float(mean.mean()), 1e-12))
        ref = per_row.mean(axis=0)
        rel = per_row / np.maximum(mean[:, None], 1e-300) - (ref / max(float(ref.mean()), 1e-300))[None, :]
        var = rel.var(axis=1, ddof=1) if n > 1 else np.ones(m)
        v = (var.mean() if variance == "pooled" else var) / n + 0.01 / n + np.zeros(m)  # delta method, log scale
    else:
        g = mean
        diff = per_row - per_row.mean(axis=0, keepdims=True)
        var = diff.var(axis=1, ddof=1) if n > 1 else np.full(m, 0.25)
        v = ((var.mean() if variance == "pooled" else var) + 0.25 / (n + 1)) / n + np.zeros(m)
    F = np.asarray(features, dtype=np.float64).reshape(m, -1)
    mu, sd = F.mean(axis=0), F.std(axis=0)
    Fz = np.where(sd > 1e-12, (F - mu) / np.where(sd > 1e-12, sd, 1.0), 0.0)
    A = np.hstack([np.ones((m, 1)), Fz])
    P = ridge * np.eye(A.shape[1])
    P[0, 0] = 0.0
    w = 1.0 / (v + v.mean())  # rough precision weights: noisy observations count less in the prior fit
    coef = np.linalg.solve(A.T @ (A * w[:, None]) + P, A.T @ (w * g))
    prior = A @ coef
    resid = g - prior
    tau2 = float(max(np.average(resid ** 2, weights=w) - np.average(v, weights=w),
                     float(min_between) * float(np.var(g)) + 1e-12, 1e-12))
    lw = (1.0 / v) / (1.0 / v + 1.0 / tau2)
    post = lw * g + (1.0 - lw) * prior
    return Combination(posterior=post, empirical=mean, prior=prior, label_weight=lw, prior_strength=1.0 / tau2)
