"""Labelled search: rank by what the specs say about the user's labels, then by real loss on a shortlist.

Steps for a requirement with labelled rows (X_l, y_l):

1. P(X) evidence, as without labels: exact MMD² of the user's RKME against every compatible learnware (batched).
2. Label evidence from the specs: every learnware with a label-aware spec gets a predicted loss on the labelled
   rows (:func:`lwlib.search.evidence.predicted_losses`) — no model runs for this, so it scales to the whole market.
3. Shortlist: the whole compatible market when it has at most ``evaluate_all`` learnwares, else the best
   ``shortlist`` learnwares by P(X) plus the best ``shortlist`` by predicted loss.
4. Real loss: each shortlisted learnware predicts all labelled rows in one batched call (in the dock: through its
   sandboxed runtime).

Why the whole market when it is small (``benchmarks/results/label_study.md``, full tabular market, 100
learnwares, 60 users): the 15 + 15 shortlist held the best-in-market learnware for only 67 % of users with 20
labels — on that market the spec-predicted loss ranks the best one at median 20th and P(X) at median 10th — and
the lowest observed loss over the whole market found the best learnware more often than over the shortlist
(37 % vs 30 % with 20 labels, 40 % vs 30 % with 100). The cost is one batched predict per learnware.
5. Combination (:func:`lwlib.search.evidence.combine_evidence`): observed losses shrunk towards a spec-based
   prior with a strength set by n; the singles are ranked by the combined estimate.

The result says which evidence decided (``SearchResult.evidence``): ``"labels"`` when the top-1 is the one with
the lowest observed loss but not the specs' favourite, ``"specifications"`` in the opposite case, ``"agreement"``
when both agree and ``"combination"`` otherwise, with the labels' average weight in the combination.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from lwlib._validation import check_is_fitted, validate_params
from lwlib.base import LwEstimator
from lwlib.rkme.label_aware import LABEL_AWARE_TYPE, LabelAwareSpec
from lwlib.search.evidence import combine_evidence, predicted_losses, row_losses
from lwlib.search.requirement import Requirement, as_requirement
from lwlib.search.result import SearchResult, SingleMatch
from lwlib.search.searcher import MarketSearcher, SearchEntry, _pick_stat_spec
from lwlib.search.single import SingleRanking, score_single

logger = logging.getLogger(__name__)

__all__ = ["LabelledSearcher", "label_aware_of", "Predictors", "rerank_by_labels"]

Predictors = Mapping[str, Any] | Callable[[Sequence[str]], Mapping[str, Any]]


def _task_of_labels(y: Any) -> str:
    """Whole-number labels mean classification; anything else is regression."""
    yy = np.asarray(y)
    return "classification" if yy.dtype.kind in "iub" or np.all(yy == np.round(yy)) else "regression"


def label_aware_of(stat: Any) -> LabelAwareSpec | None:
    """The label-aware spec in a learnware's ``{type: spec}`` dict (None when absent)."""
    if isinstance(stat, Mapping):
        spec = stat.get(LABEL_AWARE_TYPE)
        return spec if isinstance(spec, LabelAwareSpec) else None
    return None


def _task_of(entry: SearchEntry, la: LabelAwareSpec | None) -> str | None:
    if la is not None:
        return la.task_
    t = getattr(entry.semantic_spec, "task_type", None)
    if isinstance(entry.semantic_spec, Mapping):
        vals = entry.semantic_spec.get("Task", {}).get("Values") or []
        t = vals[0] if vals else None
    return {"Classification": "classification", "Regression": "regression"}.get(str(t))


class LabelledSearcher(LwEstimator):
    """Market search that uses a user's labelled rows (and behaves like :class:`MarketSearcher` without them).

    Parameters
    ----------
    top_k : int, default 10
    max_mixture : int, default 5
    kernel : {"market", "reference"}, default "market"
    shortlist : int, default 15
        Learnwares taken from each of the P(X) and label-aware rankings for real-loss re-ranking.
    evaluate_all : int, default 200
        When at most this many learnwares are compatible, every one of them is run on the labelled rows instead of
        the shortlist (0 disables). In the dock each evaluated learnware is one sandboxed worker start.
    smoothing : float, default 1.0
        Multiplies the kernel γ for the conditional (spec-predicted loss) smoothing.
    ridge : float, default 1.0
        Ridge penalty of the spec-based prior regression.
    consensus : int, default 5
        Without labels but with ``predictors`` and the user's rows: re-rank this many best singles (plus the
        mixture's members) by agreement with the kernel job selector's predictions (0 disables).

    Attributes
    ----------
    market_ : MarketSearcher
    label_specs_ : dict[str, LabelAwareSpec]
    tasks_ : dict[str, str]
    """

    _parameter_constraints = {
        "top_k": lambda v: isinstance(v, int) and v >= 1,
        "max_mixture": lambda v: isinstance(v, int) and 0 <= v <= 10,
        "kernel": {"market", "reference"},
        "shortlist": lambda v: isinstance(v, int) and v >= 1,
        "evaluate_all": lambda v: isinstance(v, int) and v >= 0,
        "smoothing": lambda v: isinstance(v, (int, float)) and v > 0,
        "ridge": lambda v: isinstance(v, (int, float)) and v >= 0,
        "consensus": lambda v: isinstance(v, int) and v >= 0,
    }

    def __init__(self, top_k: int = 10, max_mixture: int = 5, kernel: str = "market", shortlist: int = 15,
                 smoothing: float = 1.0, ridge: float = 1.0, consensus: int = 5, evaluate_all: int = 200) -> None:
        self.top_k = top_k
        self.max_mixture = max_mixture
        self.kernel = kernel
        self.shortlist = shortlist
        self.evaluate_all = evaluate_all
        self.smoothing = smoothing
        self.ridge = ridge
        self.consensus = consensus

    def fit(self, entries: Sequence[SearchEntry | tuple[str, Any, Any]]) -> LabelledSearcher:
        """Index the market (P(X)) and stack each feature space's label-aware outputs beside its reduced sets."""
        validate_params(self)
        listed = [SearchEntry(*e) for e in entries]
        self.market_ = MarketSearcher(top_k=self.top_k, max_mixture=self.max_mixture, kernel=self.kernel).fit(listed)
        self.label_specs_: dict[str, LabelAwareSpec] = {}
        self.tasks_: dict[str, str] = {}
        for e in listed:  # bookkeeping per learnware; numeric work is batched per group below
            rkme, la = _pick_stat_spec(e.stat_spec), label_aware_of(e.stat_spec)
            if la is not None and rkme is not None and not la.matches(rkme.z_, rkme.beta_):
                logger.warning("label-aware spec of %s was made on another RKME; ignored", e.learnware_id)
                la = None
            if la is not None:
                self.label_specs_[str(e.learnware_id)] = la
            task = _task_of(e, la)
            if task is not None:
                self.tasks_[str(e.learnware_id)] = task
        self._outputs: dict[tuple[str, int], tuple[torch.Tensor, NDArray[np.bool_]]] = {}
        for key, group in self.market_.index_.groups.items():
            specs = [self.label_specs_.get(i) for i in group.ids]
            m = max([s.outputs_.shape[1] for s in specs if s is not None] or [1])
            F = torch.zeros(len(group), group.Zs.shape[1], m, dtype=torch.float64)
            for r, s in enumerate(specs):
                if s is not None:
                    F[r, :s.outputs_.shape[0], :s.outputs_.shape[1]] = torch.from_numpy(s.outputs_)
            self._outputs[key] = (F, np.array([s is not None for s in specs], dtype=bool))
        return self

    # ----------------------------------------------------------------------------------------------- search
    def search(self, requirement: Requirement | Any = None, *, predictors: Predictors | None = None,
               **legacy: Any) -> SearchResult:
        """Search for ``requirement``; with labels, re-rank a shortlist by real loss (``predictors``).

        Parameters
        ----------
        requirement : Requirement
        predictors : mapping id → object with ``predict``, or callable ids → such a mapping, optional
            How to run shortlisted learnwares on the labelled rows (the dock opens their sandboxed runtimes).
            Without it the ranking uses the specifications only.
        """
        check_is_fitted(self, "market_")
        req = as_requirement(requirement, **legacy)
        if req.rkme is None and req.X is not None:  # fit the user's RKME once, for P(X) and the labelled ranking
            req = replace(req, rkme=self.market_._user_spec_from_data(req.X))
        base = self.market_.search(req)
        if req.n_labels == 0 and base.singles and predictors is not None and req.X is not None and self.consensus > 0:
            return self._consensus(base, req, predictors)
        X_labels, y_labels = req.X_labels, req.y_labels
        if req.n_labels == 0 or not base.singles or X_labels is None or y_labels is None:
            return replace(base, evidence={"decided_by": "P(X)", "n_labels": req.n_labels})
        ev = self.spec_evidence(req, base)
        if ev is None:
            return base
        ranking, task, log_mmd, pred = ev
        ids, rows, ok = ranking.ids, ranking.rows, np.isfinite(pred)
        short = self._shortlist(log_mmd, pred)
        spec_score = self._spec_score(log_mmd, pred)
        evidence: dict[str, Any] = {"n_labels": req.n_labels, "task": task, "n_candidates": int(len(rows)),
                                    "label_aware_specs": int(ok.sum())}
        opened = self._open(predictors, [ids[i] for i in short]) if predictors is not None else {}
        short = np.array([i for i in short if ids[i] in opened], dtype=np.int64)
        if short.size == 0:
            order = np.argsort(spec_score, kind="stable")
            evidence.update(decided_by="specifications", label_weight=0.0, shortlist=0)
            return self._result(base, ranking, order, evidence, {})
        per_row = np.stack([row_losses(opened[ids[i]].predict(X_labels), y_labels, task) for i in short])
        # The prior uses label-free evidence only: the spec-predicted loss is measured on the same labelled rows, so
        # its noise is the empirical loss's noise and a prior fitted on it would explain that noise away.
        comb = combine_evidence(per_row, log_mmd[short][:, None], task=task, ridge=float(self.ridge))
        inner = np.argsort(comb.posterior, kind="stable")
        spec_order = np.argsort(spec_score, kind="stable")
        rest = spec_order[~np.isin(spec_order, short)]
        order = np.concatenate([short[inner], rest])
        top, emp_top, spec_top = short[inner[0]], short[int(np.argmin(comb.empirical))], short[int(np.argmin(comb.prior))]
        decided = ("agreement" if top == emp_top == spec_top else "labels" if top == emp_top else
                   "specifications" if top == spec_top else "combination")
        evidence.update(decided_by=decided, label_weight=float(comb.label_weight.mean()), shortlist=int(short.size),
                        prior_strength=comb.prior_strength, empirical_top1=ids[emp_top], spec_top1=ids[spec_top])
        losses = {ids[i]: (float(comb.empirical[j]), float(comb.posterior[j])) for j, i in enumerate(short)}
        return self._result(base, ranking, order, evidence, losses)

    def spec_evidence(self, req: Requirement, base: SearchResult | None = None
                      ) -> tuple[SingleRanking, str, NDArray[np.float64], NDArray[np.float64]] | None:
        """The label-free and spec-based evidence for every compatible learnware (no model runs).

        Returns the exact P(X) ranking over the whole compatible market, the task, log MMD² and the spec-predicted
        loss on the labelled rows (NaN where a learnware has no label-aware spec), aligned with ``ranking.ids``;
        None when no learnware is compatible.
        """
        X_labels, y_labels = req.X_labels, req.y_labels
        if X_labels is None or y_labels is None:
            return None
        if req.rkme is None and req.X is not None:
            req = replace(req, rkme=self.market_._user_spec_from_data(req.X))
        if req.semantic is not None and base is None:
            base = self.market_.search(req)
        candidates = [m.learnware_id for m in base.semantic] if base is not None and req.semantic is not None \
            else None
        ranking = score_single(self.market_.index_, req.rkme, kernel=self.kernel, candidates=candidates,
                               shortlist=None)
        if ranking is None:
            return None
        task = req.task or self._market_task(ranking.ids) or _task_of_labels(y_labels)
        F, has = self._outputs[(ranking.group.spec_type, ranking.group.n_features)]
        rows = ranking.rows
        pred = np.full(len(rows), np.nan)
        ok = has[rows]
        if ok.any():
            sel = torch.from_numpy(rows[ok])
            pred[ok] = predicted_losses(ranking.view.Zs[sel], ranking.view.betas[sel], F[sel],
                                        ranking.view.transform(X_labels), y_labels,
                                        gamma=ranking.view.gamma * float(self.smoothing), task=task)
        return ranking, task, np.log(ranking.mmd2 + 1e-12), pred

    def _consensus(self, base: SearchResult, req: Requirement, predictors: Predictors) -> SearchResult:
        """Without labels: re-rank the best singles by agreement with the kernel job selector's routed predictions.

        The job selector sends each user row to the candidate whose RKME explains it best; its predictions are
        pseudo-labels drawn from the market's experts where each is at home. A single learnware that agrees with
        them on the user's rows serves the user's whole distribution, not only its mass centre — the P(X) top-1
        can be a learnware whose data sit in the middle of the user's but whose model fails on the rest.
        """
        from lwlib.reuse.job_selector import JobSelectorReuser

        cands = [m.learnware_id for m in base.singles[:int(self.consensus)]]
        for m in base.mixtures[:1]:
            cands += [i for i in m.learnware_ids if i not in cands]
        task = req.task or self._market_task(cands)
        opened = self._open(predictors, cands)
        members = [opened[i] for i in cands if i in opened and getattr(opened[i], "spec", None) is not None]
        if len(members) < 2 or task is None:
            return replace(base, evidence={"decided_by": "P(X)", "n_labels": 0})
        X = np.asarray(req.X, dtype=np.float64)
        pseudo = JobSelectorReuser(members, task=task).fit(X).predict(X)
        agree = np.array([row_losses(m.predict(X), pseudo, task).mean() for m in members])
        order = np.argsort(agree, kind="stable")  # ties keep the P(X) order
        ranked_ids = [members[i].id for i in order]
        by_id = {m.learnware_id: m for m in base.singles}
        ranked = [replace(by_id[i], rank=r) if i in by_id else SingleMatch(i, 0.0, float("nan"), r)
                  for r, i in enumerate(ranked_ids)]
        rest = [replace(m, rank=len(ranked) + j) for j, m in
                enumerate(m for m in base.singles if m.learnware_id not in set(ranked_ids))]
        evidence = {"decided_by": "consensus" if ranked_ids[0] != base.singles[0].learnware_id else "P(X)",
                    "n_labels": 0, "consensus_pool": len(members),
                    "disagreement": {members[i].id: float(agree[i]) for i in order}}
        return replace(base, singles=tuple((ranked + rest)[:int(self.top_k)]), evidence=evidence)

    # ----------------------------------------------------------------------------------------------- helpers
    def _market_task(self, ids: Sequence[str]) -> str | None:
        """The task the learnwares ``ids`` agree on (None when they disagree or say nothing)."""
        tasks = {self.tasks_[i] for i in ids if i in self.tasks_}
        return tasks.pop() if len(tasks) == 1 else None

    def _shortlist(self, log_mmd: NDArray[np.float64], pred: NDArray[np.float64]) -> NDArray[np.int64]:
        if log_mmd.size <= int(self.evaluate_all):
            return np.arange(log_mmd.size, dtype=np.int64)
        s = int(self.shortlist)
        a = np.argsort(log_mmd, kind="stable")[:s]
        fin = np.flatnonzero(np.isfinite(pred))
        b = fin[np.argsort(pred[fin], kind="stable")[:s]]
        return np.unique(np.concatenate([a, b]))

    @staticmethod
    def _spec_score(log_mmd: NDArray[np.float64], pred: NDArray[np.float64]) -> NDArray[np.float64]:
        """Spec-only ranking score: standardised predicted loss plus half the standardised log MMD² (lower is better).

        The labels speak about P(y|x) directly; P(X) refines (half weight, so RKME approximation noise between
        learnwares of the same inputs cannot outvote a clear difference in predicted loss)."""
        def z(a: NDArray[np.float64]) -> NDArray[np.float64]:
            fin = np.isfinite(a)
            if fin.sum() < 2:
                return np.zeros_like(a)
            sd = a[fin].std()
            return np.where(fin, (a - a[fin].mean()) / (sd if sd > 0 else 1.0), 0.0)
        return 0.5 * z(log_mmd) + z(pred)

    @staticmethod
    def _open(predictors: Predictors, ids: list[str]) -> Mapping[str, Any]:
        if callable(predictors) and not isinstance(predictors, Mapping):
            opened = predictors(ids)
        else:
            opened = {i: predictors[i] for i in ids if i in predictors}
        return {i: p for i, p in opened.items() if hasattr(p, "predict")}

    def _result(self, base: SearchResult, ranking: SingleRanking, order: NDArray[np.int64], evidence: dict[str, Any],
                losses: Mapping[str, tuple[float, float]]) -> SearchResult:
        s = ranking.scores()
        ids = ranking.ids
        singles = []
        for r, i in enumerate(order[:int(self.top_k)]):
            lid = ids[int(i)]
            emp, post = losses.get(lid, (None, None))
            singles.append(SingleMatch(learnware_id=lid, score=float(s[i]), mmd2=float(ranking.mmd2[i]), rank=r,
                                       label_loss=emp, combined_loss=post))
        return replace(base, singles=tuple(singles), evidence=evidence,
                       message=base.message + f" Ranked with {evidence['n_labels']} labelled row(s): decided by "
                                              f"{evidence['decided_by']}.")


def rerank_by_labels(result: SearchResult, X_labels: Any, y_labels: Any, predictors: Predictors, *, task: str,
                     shortlist: int = 15, ridge: float = 1.0) -> SearchResult:
    """Re-rank any search result's singles by real loss on labelled rows, shrunk towards their P(X) evidence.

    For searchers without label-aware specs in the user's space (e.g. cross-feature-space search, where
    ``predictors`` map user rows through each learnware's column map): the first ``shortlist`` singles are run on
    the labelled rows and combined with their MMD² as in :class:`LabelledSearcher`.
    """
    singles = list(result.singles[:int(shortlist)])
    opened = LabelledSearcher._open(predictors, [m.learnware_id for m in singles])
    singles = [m for m in singles if m.learnware_id in opened]
    n = 0 if y_labels is None else int(np.asarray(y_labels).shape[0])
    if n == 0 or not singles:
        return result
    per_row = np.stack([row_losses(opened[m.learnware_id].predict(X_labels), y_labels, task) for m in singles])
    log_mmd = np.log(np.array([m.mmd2 for m in singles]) + 1e-12)
    comb = combine_evidence(per_row, log_mmd[:, None], task=task, ridge=ridge)
    order = np.argsort(comb.posterior, kind="stable")
    top, emp_top, spec_top = order[0], int(np.argmin(comb.empirical)), 0
    decided = ("agreement" if top == emp_top == spec_top else "labels" if top == emp_top else
               "specifications" if top == spec_top else "combination")
    ranked = [replace(singles[i], rank=r, label_loss=float(comb.empirical[i]), combined_loss=float(comb.posterior[i]))
              for r, i in enumerate(order)]
    evidence = {"n_labels": n, "task": task, "decided_by": decided, "label_weight": float(comb.label_weight.mean()),
                "shortlist": len(singles), "prior_strength": comb.prior_strength,
                "empirical_top1": singles[emp_top].learnware_id, "spec_top1": singles[0].learnware_id}
    rest = [replace(m, rank=len(ranked) + j) for j, m in enumerate(result.singles[int(shortlist):])]
    return replace(result, singles=tuple(ranked + rest), evidence=evidence)
