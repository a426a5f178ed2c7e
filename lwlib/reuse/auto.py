"""The ``auto`` reuser choice: never worse than the top-1 learnware where the dock can know.

With labelled rows the choice is made by held-out loss on them: reusers that do not learn from the labels
(top-1, averaging, job selection) are scored on all labelled rows; reusers that do (ensemble pruning, feature
augmentation) by k-fold cross-validation. A candidate replaces the top-1 only when it beats it by more than one
standard error of the paired loss difference, so noise on a few rows does not swap a good single model for a worse
ensemble.

Cross-validation on the labelled rows estimates the loss on *their* distribution. When the labelled rows do not
look like the user's unlabelled rows (a kernel two-sample test, :func:`label_shift_pvalue`, p < ``SHIFT_ALPHA``),
that estimate says little about the rows the deployment will predict, and the label-learning reusers are not
deployed. Measured on the full tabular market (``benchmarks/results/quality_full_labels_tabular.md``, labelled
rows from the series' earlier years — for held-out users the top-1's own training rows — and the user's rows
from later years): with 100 labels feature augmentation beat top-1 in cross-validation by 12-40 % for 11 of 30
users and was worse than top-1 on the user's rows for all 11 (auto 1.14 × best against top-1's 1.12).

Without labels the dock cannot measure a loss, so it deploys something other than the top-1 only on evidence it
does have, and shows that evidence (``AutoChoice.evidence``) and a warning when the mixture weights are diffuse:

1. No mixture from search: top-1.
2. Classification, label-aware specs, and the top-1 predicts every class the other members predict: top-1
   (averaging or routing cannot add a class; the issue's 49 % case, a digits 0-9 model with a 0-4 one).
3. The kernel job selector is fitted on the user's rows as the deployment will fit it, and routes each row to a
   member. Regression: route (job selector). Classification: route only when the rows really split between
   members — no member receives ``ROUTE_SPLIT`` (80 %) of them or more. A router that sends nearly every row to
   one member is only a noisy vote for another single learnware, and the search's top-1 is the better vote.
4. Otherwise, a classification mixture is averaged (weights from search, members whose classes the heavier
   members already predict dropped) only when its MMD² is at most ``MIXTURE_GAIN`` (0.6) × the top-1's: the
   mixture must explain the user's data much better than any single learnware. Else the top-1.

Measured (``python -m benchmarks.auto_study [--full]``, ``benchmarks/results/auto_study_{small,full}.md``; loss ÷
top-1's loss, users better/worse than top-1). Thresholds tuned on the small scenarios, confirmed on the full ones:

    scenario              previous rule          this rule                  always average
    text full (20)        1.16 (2 better/3 worse) 0.95 (3 better/0 worse)   1.00 (5/4)
    image full (100)      0.92 (30/13)           0.81 (43/11)               0.77 (53/10)
    tabular full (60)     0.92 (14/15)           0.92 (14/15), unchanged    0.89 (52/7)
    shared_inputs full    1.00                   1.00 (top-1 for all 30)    1.00
    digits (demo, small)  0.92 (3/1)             0.93 (3/1)                 1.01 (2/2)
    text small            0.97 (1/3)             0.94 (2/2)                 0.91 (3/2)

Averaging every mixture is slightly better on image and tabular but worse than top-1 on the digits demo and
ties top-1 on text with 4 users made worse; the rule above is the simplest one found that is at or below top-1 on
every scenario. The routing evidence depends on the job selector's kernel bandwidth: re-run the study when it
changes. The weights returned are exactly the weights the deployed solution uses (the CLI shows them and the
registry records them: one source of truth).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, Sequence, get_args

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from lwlib.errors import ReuseError

logger = logging.getLogger(__name__)

__all__ = ["ReuserKind", "REUSER_KINDS", "AutoChoice", "choose_reuser_auto", "make_reuser", "reuse_loss", "class_support",
           "label_shift_pvalue", "MIXTURE_GAIN", "ROUTE_SPLIT", "DIFFUSE_MAX_WEIGHT", "MIN_LABELS_FOR_CV",
           "SHIFT_ALPHA"]

#: The reuser kinds a user may ask for (the one ``Literal`` callers import, issue 14 §8).
ReuserKind = Literal["auto", "top1", "job_selector", "averaging", "ensemble_pruning", "feature_augment"]
REUSER_KINDS: tuple[str, ...] = get_args(ReuserKind)

MIXTURE_GAIN = 0.6          # without labels: average a classification mixture only if its MMD² ≤ this × the top-1's
ROUTE_SPLIT = 0.8           # without labels: route a classification mixture only if no member gets this share of rows
DIFFUSE_MAX_WEIGHT = 0.6    # warn when no mixture member carries at least this weight
MIN_LABELS_FOR_CV = 10      # fewer labelled rows: labelled reusers are not fitted, top-1 vs averaging only
POOL_SIZE = 5               # singles offered to ensemble pruning / feature augmentation
SHIFT_ALPHA = 0.05          # with labels: label-learning reusers only when the labelled rows look like the user's
_SHIFT_PERMUTATIONS = 200
_SHIFT_MAX_ROWS = 500       # user rows subsampled for the two-sample test (the labelled rows are all kept)


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` deploys and why.

    Attributes
    ----------
    kind : str
        A concrete reuser kind (never ``"auto"``).
    learnware_ids : tuple of str
    weights : tuple of float
        Exactly the weights the deployed solution uses; empty for ensemble pruning and feature augmentation,
        whose weights are learnt when they are fitted (read them from the fitted reuser's ``to_solution()``).
    evidence : dict
        Held-out losses per candidate (with labels) or the mixture facts (without), and the rule that decided.
    warnings : tuple of str
    """

    kind: str
    learnware_ids: tuple[str, ...]
    weights: tuple[float, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def reuse_loss(task: str, y: Any, pred: Any) -> NDArray[np.float64]:
    """Per-row loss: 0/1 error (scores are arg-maxed) or squared error averaged over output columns."""
    p = np.asarray(pred)
    yt = np.asarray(y)
    if task == "classification":
        lab = p.argmax(axis=1) if p.ndim == 2 and p.shape[1] > 1 else p.reshape(-1)
        err: NDArray[np.float64] = (lab.reshape(-1) != yt.reshape(-1)).astype(np.float64)
        return err
    sq: NDArray[np.float64] = ((p.astype(np.float64).reshape(len(yt), -1)
                                - yt.astype(np.float64).reshape(len(yt), -1)) ** 2).mean(1)
    return sq


def make_reuser(kind: str, members: Sequence[Any], weights: Sequence[float] | None, task: str) -> Any:
    """The reuser object for a concrete kind over ``members`` (top-1 is an average of one)."""
    from lwlib.reuse import (AveragingReuser, EnsemblePruningReuser, FeatureAugmentReuser, JobSelectorReuser)

    if kind == "top1":
        return AveragingReuser(list(members[:1]), task=task)
    if kind == "averaging":
        return AveragingReuser(list(members), task=task, weights=list(weights) if weights is not None else None)
    if kind == "job_selector":
        return JobSelectorReuser(list(members), task=task)
    if kind == "ensemble_pruning":
        return EnsemblePruningReuser(list(members), task=task)
    if kind == "feature_augment":
        return FeatureAugmentReuser(list(members), task=task)
    raise ReuseError(f"unknown reuser {kind!r}; choose one of {', '.join(REUSER_KINDS)}.", code="unknown_reuser")


def _folds(n: int, y: NDArray[Any], task: str, k: int, seed: int) -> list[NDArray[np.int64]]:
    """k folds, stratified by class for classification (round-robin over each class's shuffled rows)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if task == "classification":
        yy = np.asarray(y).reshape(-1)[order]
        order = order[np.argsort(yy, kind="stable")]
    return [order[i::k] for i in range(k)]


def _cv_predictions(kind: str, members: Sequence[Any], task: str, X: NDArray[np.float64], y: NDArray[Any],
                    k: int, seed: int) -> NDArray[Any] | None:
    """Out-of-fold predictions of a label-learning reuser; None when a fold cannot be fitted."""
    out: NDArray[Any] | None = None
    for val in _folds(X.shape[0], y, task, k, seed):
        train = np.setdiff1d(np.arange(X.shape[0]), val)
        if task == "classification" and np.unique(y[train]).size < 2:
            return None
        try:
            r = make_reuser(kind, members, None, task).fit(X[train], y[train])
            p = np.asarray(r.predict(X[val]))
        except ReuseError as exc:
            logger.info("auto: %s could not be cross-validated (%s)", kind, exc)
            return None
        if out is None:
            out = np.empty((X.shape[0],) + p.shape[1:], dtype=p.dtype)
        out[val] = p
    return out


def label_shift_pvalue(X_labels: Any, X: Any, *, n_permutations: int = _SHIFT_PERMUTATIONS,
                       random_state: int = 0) -> float:
    """Permutation p-value that the labelled rows and the user's rows come from one distribution.

    Gaussian-kernel MMD² (pooled standardisation, median-distance bandwidth) between the labelled rows and at most
    ``_SHIFT_MAX_ROWS`` of the user's rows, against its permutation distribution; all permutations are one matrix
    product. Small values mean the labelled rows are not a sample of the rows the deployment will predict.
    """
    rng = np.random.default_rng(random_state)
    A = np.asarray(X_labels, dtype=np.float64).reshape(len(X_labels), -1)
    B = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if B.shape[0] > _SHIFT_MAX_ROWS:
        B = B[rng.choice(B.shape[0], _SHIFT_MAX_ROWS, replace=False)]
    n, N = A.shape[0], A.shape[0] + B.shape[0]
    if n < 2 or B.shape[0] < 2:
        return 1.0
    Z = np.vstack([A, B])
    sd = Z.std(axis=0)
    Z = (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    sq = (Z * Z).sum(axis=1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)
    med = float(np.median(D[np.triu_indices(N, 1)]))
    K = np.exp(-D / max(med, 1e-12))
    labels = np.zeros((N, n_permutations + 1), dtype=bool)
    labels[:n, 0] = True
    for j in range(1, n_permutations + 1):
        labels[rng.permutation(N)[:n], j] = True
    a = labels / n
    b = ~labels / (N - n)
    Ka, Kb = K @ a, K @ b
    stat = (a * Ka).sum(axis=0) + (b * Kb).sum(axis=0) - 2.0 * (a * Kb).sum(axis=0)
    return float((1 + np.sum(stat[1:] >= stat[0])) / (1 + n_permutations))


def _mixture_of(result: Any) -> tuple[list[str], list[float], float | None]:
    mix = result.mixtures[0] if getattr(result, "mixtures", ()) else None
    if mix is None or len(mix.learnware_ids) < 2:
        return [], [], None
    return list(mix.learnware_ids), [float(w) for w in mix.weights], float(mix.mmd2)


def _job_selector_choice(ids: list[str], X: Any, predictors: Mapping[str, Any] | None,
                         task: str) -> tuple[AutoChoice, list[float]] | None:
    """A job selector over the mixture, fitted as the deployment will fit it (None when it cannot run).

    Returns the choice with the exact weights its fit computes, and the share of the user's rows its router sends
    to each member: the evidence of whether the user's data really splits between the members' regions.
    """
    if X is None or predictors is None or not all(i in predictors for i in ids):
        return None
    specs = [getattr(predictors[i], "spec", None) for i in ids]
    if any(sp is None or not hasattr(sp, "z_") for sp in specs):
        return None
    Xf = np.asarray(X, dtype=np.float64)
    js = make_reuser("job_selector", [predictors[i] for i in ids], None, task).fit(Xf)  # as deployed (seed 0)
    route = np.asarray(js.route(Xf))
    shares = [float(np.mean(route == k)) for k in range(len(ids))]
    return AutoChoice("job_selector", tuple(ids), tuple(float(v) for v in js.mixture_weights_)), shares


def class_support(spec: Any, *, min_mass: float = 0.02) -> frozenset[int]:
    """Classes a learnware predicts on its own data: mass ≥ ``min_mass`` in its label-aware outputs (β-weighted)."""
    out = np.asarray(spec.outputs_, dtype=np.float64)
    mass = out.mean(axis=0)
    return frozenset(int(c) for c in np.flatnonzero(mass >= min_mass))


def _redundant_members(ids: list[str], weights: list[float], label_specs: Mapping[str, Any]) -> list[str]:
    """Members whose predicted classes are all covered by heavier members: averaging them in cannot help a class."""
    order = np.argsort(-np.asarray(weights), kind="stable")
    covered: set[int] = set()
    drop = []
    for i in order:
        sup = class_support(label_specs[ids[i]])
        if covered and sup <= covered:
            drop.append(ids[i])
        covered |= sup
    return drop


def _without_labels(result: Any, top: str, *, task: str, mixture_gain: float, route_split: float,
                    label_specs: Mapping[str, Any] | None, X: Any = None,
                    predictors: Mapping[str, Any] | None = None) -> AutoChoice:
    """The no-label rule of the module docstring, with the facts it used in ``evidence``."""
    ids, weights, mix_mmd2 = _mixture_of(result)
    top_mmd2 = float(result.singles[0].mmd2)
    if not ids or mix_mmd2 is None:
        return AutoChoice("top1", (top,), (1.0,), {"rule": "no mixture found: top-1", "top1_mmd2": top_mmd2})
    ratio = mix_mmd2 / top_mmd2 if top_mmd2 > 0 else 1.0
    evidence: dict[str, Any] = {"top1_mmd2": top_mmd2, "mixture_mmd2": mix_mmd2, "mixture_gain": ratio,
                                "mixture": dict(zip(ids, weights)),
                                "effective_members": float(1.0 / np.sum(np.square(weights)))}
    warnings: list[str] = []
    if max(weights) < DIFFUSE_MAX_WEIGHT:
        warnings.append(f"mixture weights are diffuse ({', '.join(f'{w:.2f}' for w in weights)}): no learnware "
                        "explains most of your data; give a few labels (--labels) so auto can check by held-out "
                        "loss")
    specs = label_specs or {}
    with_specs = task == "classification" and all(i in specs for i in ids)
    if with_specs:
        sup = {i: class_support(specs[i]) for i in ids}
        union = frozenset().union(*sup.values())
        if top in sup and sup[top] >= union:  # the top-1 already predicts every class the others do
            evidence["rule"] = ("the top-1 predicts every class the other mixture members predict (label-aware "
                                "specs): averaging or routing cannot add a class; top-1 deployed")
            return AutoChoice("top1", (top,), (1.0,), evidence, tuple(warnings))
    routed = _job_selector_choice(ids, X, predictors, task)
    if routed is not None:
        js, shares = routed
        evidence["route_share"] = dict(zip(ids, shares))
        if task == "regression" or max(shares) < route_split:
            evidence["rule"] = ("regression mixture: each user row is routed to the member whose RKME explains it "
                                "best (kernel job selector)" if task == "regression" else
                                f"the job selector splits your rows between the members (none takes ≥ "
                                f"{route_split:.0%}): each row goes to the member whose RKME explains it best")
            evidence["mixture"] = dict(zip(js.learnware_ids, js.weights))
            return replace(js, evidence=evidence, warnings=tuple(warnings))
    if task == "regression" or ratio <= mixture_gain:
        keep = ids
        if with_specs:
            drop = _redundant_members(ids, weights, specs)
            keep = [i for i in ids if i not in drop]
            if drop:
                evidence["redundant"] = drop
            if len(keep) < 2:
                evidence["rule"] = ("the other mixture members only predict classes the top-ranked one already "
                                    "predicts (label-aware specs): averaging them in cannot help; top-1 deployed")
                return AutoChoice("top1", (top,), (1.0,), evidence, tuple(warnings))
        w = np.asarray([weights[ids.index(i)] for i in keep])
        evidence["rule"] = ("regression: the weighted mixture average" if task == "regression" else
                            f"mixture MMD² is {ratio:.2f} × the top-1's (≤ {mixture_gain}): the mixture explains "
                            "your data much better than any single learnware; weighted average")
        return AutoChoice("averaging", tuple(keep), tuple(float(v) for v in w / w.sum()), evidence, tuple(warnings))
    evidence["rule"] = (f"mixture MMD² is {ratio:.2f} × the top-1's (> {mixture_gain}): not enough gain over the "
                        "top-1 to risk averaging" + (" and the job selector sends most rows to one member"
                                                     if routed is not None else "") + "; top-1 deployed")
    return AutoChoice("top1", (top,), (1.0,), evidence, tuple(warnings))


def choose_reuser_auto(result: Any, *, task: str, X: Any = None, X_labels: Any = None, y_labels: Any = None,
                       predictors: Mapping[str, Any] | None = None, label_specs: Mapping[str, Any] | None = None,
                       mixture_gain: float = MIXTURE_GAIN, route_split: float = ROUTE_SPLIT,
                       pool_size: int = POOL_SIZE, cv_folds: int = 5, random_state: int = 0,
                       shift_alpha: float = SHIFT_ALPHA) -> AutoChoice:
    """Choose what ``auto`` deploys for a search result (a pure function; the deploy step wires it).

    Parameters
    ----------
    result : SearchResult
        Singles best first (labelled search already used the labels), and the best mixture if any.
    task : {"classification", "regression"}
    X : ndarray, optional
        The user's unlabelled rows (the job selector's routing is fitted on them).
    X_labels, y_labels : ndarray, optional
        Labelled rows; with them the choice is made by held-out loss.
    predictors : mapping id → object with ``predict``
        The candidate learnwares (sandboxed runtimes in the dock); required with labels.
    label_specs : mapping id → LabelAwareSpec, optional
        Without labels, a classification mixture keeps only members that predict classes the heavier members do
        not (a model of digits 0-4 adds nothing to one of digits 0-9).
    mixture_gain : float
        Without labels, the MMD² ratio (mixture / top-1) at or below which a classification mixture is averaged.
    route_split : float
        Without labels, a classification mixture is routed by the job selector only when no member receives this
        share of the user's rows or more.
    pool_size : int
        Singles offered to ensemble pruning and feature augmentation.
    cv_folds : int
    random_state : int
    shift_alpha : float
        With labels and the user's rows: ensemble pruning and feature augmentation are only considered when the
        two-sample test of labelled rows against the user's rows gives p ≥ this (0 disables the test's veto).

    Returns
    -------
    AutoChoice

    Raises
    ------
    ReuseError
        ``nothing_to_reuse`` when the result has no single learnware.
    """
    if not getattr(result, "singles", ()):
        raise ReuseError("the search found no learnware to reuse; relax the requirement.", code="nothing_to_reuse")
    top = result.singles[0].learnware_id
    n = 0 if y_labels is None else int(np.asarray(y_labels).shape[0])
    if n == 0 or predictors is None:
        return _without_labels(result, top, task=task, mixture_gain=mixture_gain, route_split=route_split,
                               label_specs=label_specs, X=X, predictors=predictors)
    Xl = np.asarray(X_labels, dtype=np.float64)
    yl = np.asarray(y_labels)
    yl = yl.ravel() if yl.ndim == 2 and yl.shape[1] == 1 else yl
    pool = [m.learnware_id for m in result.singles[:pool_size] if m.learnware_id in predictors]
    all_mix, all_w, _ = _mixture_of(result)
    mix_ids = [i for i in all_mix if i in predictors]
    mix_w = np.asarray([all_w[all_mix.index(i)] for i in mix_ids])
    cands: dict[str, tuple[tuple[str, ...], tuple[float, ...], NDArray[Any] | None]] = {}
    skipped = ""

    def get(ids: Sequence[str]) -> list[Any]:
        return [predictors[i] for i in ids]

    with threadpool_limits(1):
        cands["top1"] = ((top,), (1.0,), np.asarray(predictors[top].predict(Xl)))
        if len(mix_ids) >= 2:
            w = tuple(float(v) for v in mix_w / mix_w.sum())
            av = make_reuser("averaging", get(mix_ids), w, task).fit(X)
            cands["averaging"] = (tuple(mix_ids), w, np.asarray(av.predict(Xl)))
            if X is not None:
                js = make_reuser("job_selector", get(mix_ids), None, task).fit(np.asarray(X, dtype=np.float64))
                cands["job_selector"] = (tuple(mix_ids), tuple(float(v) for v in js.mixture_weights_),
                                         np.asarray(js.predict(Xl)))
        shift_p = label_shift_pvalue(Xl, X, random_state=random_state) \
            if X is not None and n >= MIN_LABELS_FOR_CV and len(pool) >= 2 else None
        if shift_p is not None and shift_p < shift_alpha:
            skipped = ("your labelled rows do not look like the rows to predict (two-sample test p = "
                       f"{shift_p:.3f}): cross-validation on them cannot tell whether reusers that learn from them "
                       "(ensemble pruning, feature augmentation) would help, so they were not considered")
        if n >= MIN_LABELS_FOR_CV and len(pool) >= 2 and not (shift_p is not None and shift_p < shift_alpha):
            k = int(min(cv_folds, n // 2))
            for kind in ("ensemble_pruning", "feature_augment"):
                cands[kind] = (tuple(pool), (),
                               _cv_predictions(kind, get(pool), task, Xl, yl, k, random_state))
    losses = {kind: reuse_loss(task, yl, p) for kind, (_, _, p) in cands.items() if p is not None}
    base = losses["top1"]
    evidence: dict[str, Any] = {"n_labels": n, "held_out_loss": {k: float(v.mean()) for k, v in losses.items()}}
    if shift_p is not None:
        evidence["label_shift_p"] = shift_p
    best_kind, best_gain = "top1", 0.0
    for kind, lv in losses.items():
        if kind == "top1":
            continue
        diff = base - lv
        se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else np.inf
        gain = float(diff.mean()) - se
        if gain > best_gain:
            best_kind, best_gain = kind, gain
    evidence["rule"] = ("top-1: no reuser beat it by more than one standard error on the labelled rows"
                        if best_kind == "top1" else
                        f"{best_kind} beat top-1 by more than one standard error on the labelled rows")
    ids, weights, _ = cands[best_kind]
    if best_kind in ("ensemble_pruning", "feature_augment"):
        weights = ()  # learnt when the reuser is fitted on all labelled rows: read them from its solution
    return AutoChoice(best_kind, ids, weights, evidence, (skipped,) if skipped else ())
