"""Pure combination functions shared by the reusers and by saved solutions.

A fitted reuser is described by :meth:`~lwlib.reuse.base.BaseReuser.to_solution` (JSON) plus
:meth:`~lwlib.reuse.base.BaseReuser.parts` (its own sklearn sub-models). :func:`predict_solution` recomputes the
reuser's predictions from that description and the learnwares' predictors, so a registry can store a solution
without pickling learnwares. The reusers call the very same functions here, which keeps both paths identical.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from lwlib._validation import check_array
from lwlib.errors import ReuseError

logger = logging.getLogger(__name__)

__all__ = ["collect_outputs", "to_labels", "average_values", "vote_labels", "mean_proba", "combine_outputs",
           "router_index", "route_rows", "augment_features", "mlp_forward", "predict_solution"]

_PROBA_TOL = 1e-3


def collect_outputs(predictors: Sequence[Any], X: NDArray[np.float64]) -> list[NDArray[Any]]:
    """One ``predict`` call per learnware on all rows (each learnware is a separate model/process)."""
    outs = []
    for lw in predictors:
        out = np.asarray(lw.predict(X))
        if out.ndim == 0 or out.shape[0] != X.shape[0]:
            raise ReuseError(f"learnware {lw.id!r} returned an output of shape {out.shape} for {X.shape[0]} rows; "
                             "a learnware must return one prediction per row.", code="bad_learnware_output",
                             learnware_id=lw.id)
        outs.append(out.reshape(out.shape[0], -1) if out.ndim > 2 else out)
    return outs


def to_labels(out: NDArray[Any]) -> NDArray[Any]:
    """Class labels from one output: argmax of a multi-column score matrix, else the values themselves."""
    if out.ndim == 2 and out.shape[1] > 1:
        labels: NDArray[np.intp] = out.argmax(axis=1)
        return labels
    return out.reshape(-1)


def _weights(weights: Any, m: int) -> NDArray[np.float64]:
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != m or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ReuseError(f"weights must be {m} finite non-negative numbers with a positive sum; got {w.tolist()}.",
                         code="invalid_weights")
    normalised: NDArray[np.float64] = w / w.sum()
    return normalised


def average_values(outputs: Sequence[NDArray[Any]], weights: Any = None) -> NDArray[np.float64]:
    """Weighted mean per output column (each column averaged on its own, never across columns)."""
    shapes = {o.shape for o in outputs}
    if len(shapes) != 1:
        raise ReuseError(f"learnware outputs have different shapes {sorted(shapes)}; averaging needs one shape.",
                         code="output_shape_mismatch")
    w = _weights(weights, len(outputs))
    return np.tensordot(w, np.stack([np.asarray(o, dtype=np.float64) for o in outputs]), axes=1)


def vote_labels(outputs: Sequence[NDArray[Any]], weights: Any = None) -> NDArray[Any]:
    """Weighted majority vote over labels; ties go to the smallest label."""
    L = np.stack([to_labels(o) for o in outputs])  # (m, n)
    m, n = L.shape
    w = _weights(weights, m)
    uniq, inv = np.unique(L, return_inverse=True)
    inv = inv.reshape(m, n)
    flat = (np.arange(n)[None, :] * uniq.shape[0] + inv).ravel()
    scores = np.bincount(flat, weights=np.repeat(w, n), minlength=n * uniq.shape[0]).reshape(n, uniq.shape[0])
    winners: NDArray[Any] = uniq[scores.argmax(axis=1)]
    return winners


def _as_proba(out: NDArray[Any], n_classes: int) -> NDArray[np.float64]:
    """Scores of shape (n, n_classes): probabilities kept, logits softmaxed, labels one-hot encoded."""
    if out.ndim == 1 or out.shape[1] == 1:
        lab = out.reshape(-1).astype(np.int64)
        P = np.zeros((lab.shape[0], n_classes))
        P[np.arange(lab.shape[0]), lab] = 1.0
        return P
    S = np.asarray(out, dtype=np.float64)
    is_proba = (S >= -_PROBA_TOL).all() and np.allclose(S.sum(axis=1), 1.0, atol=_PROBA_TOL)
    if not is_proba:  # logits/decision scores: softmax them; real probabilities are left untouched
        S = np.exp(S - S.max(axis=1, keepdims=True))
        S /= S.sum(axis=1, keepdims=True)
    if S.shape[1] < n_classes:
        S = np.pad(S, ((0, 0), (0, n_classes - S.shape[1])))
    return S


def mean_proba(outputs: Sequence[NDArray[Any]], weights: Any = None) -> NDArray[np.float64]:
    """Weighted mean of class probabilities; columns are class labels 0..C-1."""
    widths = [o.shape[1] for o in outputs if o.ndim == 2 and o.shape[1] > 1]
    labels = [int(np.max(o)) + 1 for o in outputs if o.ndim == 1 or o.shape[1] == 1]
    n_classes = max(widths + labels + [1])
    w = _weights(weights, len(outputs))
    return np.tensordot(w, np.stack([_as_proba(o, n_classes) for o in outputs]), axes=1)


def combine_outputs(outputs: Sequence[NDArray[Any]], mode: str, weights: Any = None) -> NDArray[Any]:
    """Dispatch on the averaging mode: ``mean`` | ``vote_by_label`` | ``vote_by_prob`` (labels)."""
    if mode == "mean":
        return average_values(outputs, weights)
    if mode == "vote_by_label":
        return vote_labels(outputs, weights)
    if mode == "vote_by_prob":
        return np.asarray(mean_proba(outputs, weights).argmax(axis=1))
    raise ReuseError(f"unknown averaging mode {mode!r}; use 'mean', 'vote_by_label' or 'vote_by_prob'.",
                     code="invalid_parameter")


def router_index(router: Any, X: NDArray[np.float64]) -> NDArray[np.int64]:
    """Learnware index per row from a fitted router, on one thread.

    Routers are small; with OpenMP threads on a busy host a 200-row ``predict`` took seconds instead of ms.
    """
    with threadpool_limits(limits=1):
        return np.asarray(router.predict(X), dtype=np.int64)


def route_rows(predictors: Sequence[Any], index: NDArray[np.int64], X: NDArray[np.float64]) -> NDArray[Any]:
    """Send each group of rows to its learnware in one call and scatter the answers back in row order."""
    index = np.asarray(index, dtype=np.int64)
    used = np.unique(index)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], used)
    groups = np.split(order, bounds[1:])
    out: NDArray[Any] | None = None
    for j, rows in zip(used, groups):  # one call per learnware that received rows
        part = np.asarray(predictors[int(j)].predict(X[rows]))
        if part.shape[0] != rows.shape[0]:
            raise ReuseError(f"learnware {predictors[int(j)].id!r} returned {part.shape[0]} predictions for "
                             f"{rows.shape[0]} rows.", code="bad_learnware_output")
        if out is None:
            out = np.empty((X.shape[0],) + part.shape[1:], dtype=part.dtype)
        elif part.shape[1:] != out.shape[1:]:
            raise ReuseError(f"learnwares disagree on output shape ({part.shape[1:]} vs {out.shape[1:]}); a job "
                             "selector needs learnwares with the same output format.", code="output_shape_mismatch")
        else:
            out = out.astype(np.result_type(out, part), copy=False)
        out[rows] = part
    if out is None:
        raise ReuseError("route_rows got no rows to route; pass at least one row.", code="invalid_input")
    return out


def augment_features(X: NDArray[np.float64], outputs: Sequence[NDArray[Any]], *,
                     fill_values: NDArray[np.float64] | None, output_classes: Sequence[Any] | None,
                     label_outputs: Sequence[bool] | None = None) -> NDArray[np.float64]:
    """``[X, f_1(X), …, f_m(X)]``; outputs flagged in ``label_outputs`` are one-hot over ``output_classes``.

    Non-finite cells become ``fill_values`` (the fit-time column means).
    """
    flags = list(label_outputs) if label_outputs is not None else [False] * len(outputs)
    cols = [X]
    for o, is_label in zip(outputs, flags):
        if is_label and output_classes is not None:
            cols.append((o.reshape(-1, 1) == np.asarray(output_classes)[None, :]).astype(np.float64))
        else:
            cols.append(np.asarray(o, dtype=np.float64).reshape(o.shape[0], -1))
    A = np.hstack(cols)
    if fill_values is not None:
        bad = ~np.isfinite(A)
        if bad.any():
            A = np.where(bad, np.asarray(fill_values)[None, :], A)
    return A


def mlp_forward(mapper: Mapping[str, Any], X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Apply a saved feature map: standardise, ReLU MLP, de-standardise into the learnware's space."""
    H = (X - np.asarray(mapper["x_mean"])) / np.asarray(mapper["x_scale"])
    layers = mapper["layers"]
    for i, layer in enumerate(layers):
        H = H @ np.asarray(layer["W"], dtype=np.float64).T + np.asarray(layer["b"], dtype=np.float64)
        if i < len(layers) - 1:
            H = np.maximum(H, 0.0)
    out: NDArray[np.float64] = H * np.asarray(mapper["t_scale"]) + np.asarray(mapper["t_mean"])
    return out


def _head_predict(parts: Mapping[str, Any] | None, A: NDArray[np.float64], kind: str) -> NDArray[Any]:
    if not parts or "head" not in parts:
        raise ReuseError(f"a {kind!r} solution needs its fitted 'head' part; pass parts=reuser.parts().",
                         code="solution_parts_missing")
    return np.asarray(parts["head"].predict(A))


def predict_solution(solution: Mapping[str, Any], predictors: Sequence[Any], X: Any,
                     parts: Mapping[str, Any] | None = None) -> NDArray[Any]:
    """Recompute a saved reuser's predictions from its solution description.

    Parameters
    ----------
    solution : dict
        As returned by ``reuser.to_solution()``.
    predictors : sequence of ReusableLearnware
        Objects with ``.id`` and ``.predict``; matched to ``solution["learnware_ids"]`` by id (order free).
    X : array-like of shape (n_samples, n_features)
    parts : dict, optional
        ``reuser.parts()`` (router / head) for solutions that have them.

    Raises
    ------
    ReuseError
        If a learnware named by the solution is missing, a needed part is absent or the kind is unknown.
    """
    Xc = check_array(X, name="X")
    by_id = {str(p.id): p for p in predictors}
    missing = [i for i in solution["learnware_ids"] if i not in by_id]
    if missing:
        raise ReuseError(f"predict_solution: no predictor given for learnware(s) {missing}; open them first.",
                         code="solution_learnware_missing", missing=missing)
    lws = [by_id[i] for i in solution["learnware_ids"]]
    kind = solution.get("kind")
    if kind in ("averaging", "ensemble_pruning"):
        return combine_outputs(collect_outputs(lws, Xc), solution["mode"], solution.get("weights"))
    if kind == "job_selector":
        if len(lws) == 1:
            return np.asarray(lws[0].predict(Xc))
        if not parts or "router" not in parts:
            raise ReuseError("a 'job_selector' solution needs its 'router' part; pass parts=reuser.parts().",
                             code="solution_parts_missing")
        return route_rows(lws, router_index(parts["router"], Xc), Xc)
    if kind == "feature_augment":
        A = augment_features(Xc, collect_outputs(lws, Xc), fill_values=np.asarray(solution["fill_values"]),
                             output_classes=solution.get("output_classes"),
                             label_outputs=solution.get("label_outputs"))
        return _head_predict(parts, A, kind)
    if kind == "feature_align":
        Xt = mlp_forward(solution["mapper"], Xc)
        out = np.asarray(lws[0].predict(Xt))
        aug = solution.get("augment")
        if aug is None:
            return out
        A = augment_features(Xc, [out], fill_values=np.asarray(aug["fill_values"]),
                             output_classes=aug.get("output_classes"), label_outputs=aug.get("label_outputs"))
        return _head_predict(parts, A, kind)
    raise ReuseError(f"unknown solution kind {kind!r}; expected averaging, ensemble_pruning, job_selector, "
                     "feature_augment or feature_align.", code="solution_kind_unknown")
