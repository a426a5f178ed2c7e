"""What limits labelled identification (issue 11): per user, could *any* rule on k labels find the best learnware?

For every user of a scenario and every label budget k, the same k labelled rows as the bench draws
(:func:`benchmarks.labelled_eval._user_rng`) are scored by **every** compatible learnware, and the study records:

- the dock's labelled search (:class:`~lwlib.search.labelled.LabelledSearcher`, as the bench runs it): its top-1,
  its shortlist, and whether the best-in-market learnware was in the shortlist;
- the **oracle full-market evaluation**: run every compatible learnware on the k rows, pick the lowest observed
  loss — what a larger shortlist could at most buy with the labels alone;
- the observed-loss rank of the best-in-market learnware among all learnwares on the k rows;
- how close the best and second-best *test* losses are (near-ties make "top-1 = best" a coin flip);
- the same oracle with k labels drawn from the user's *test period* (scored on the remaining test rows), which
  separates "k rows are too few" from "the labelled pool is not the test distribution" (in ``tabular`` the pool is
  the series' earlier 75 %: for held-out users it is the own learnware's training data, an in-sample loss).

Selection rules that only need the per-learnware evidence (observed losses, log MMD², spec-predicted loss) are
re-scored offline by :func:`score_rules` so a change to the combination can be measured without re-running models.

``python -m benchmarks.label_study --scenarios tabular [--full]`` writes ``benchmarks/results/label_study.{json,md}``
(``--stem`` to change). Scenarios are built once and cached as in :mod:`benchmarks.auto_study`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from benchmarks.metrics import best_in_market, market_losses
from benchmarks.report import write_results

__all__ = ["collect", "score_rules", "RULES", "main"]

logger = logging.getLogger(__name__)
RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = (5, 20, 100)
TIE = (0.01, 0.05, 0.10)  # relative gaps (second-best − best) / best counted as near-ties


class _Recorder:
    """Predictors callable that records which learnwares the searcher asked to run (its shortlist)."""

    def __init__(self, preds: Mapping[str, Any]) -> None:
        self.preds, self.asked = preds, [[]]

    def __call__(self, ids: Sequence[str]) -> Mapping[str, Any]:
        self.asked.append(list(ids))
        return {i: self.preds[i] for i in ids if i in self.preds}


def _row_loss(task: str, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    from lwlib.search.evidence import row_losses

    return row_losses(out, y, task)


def collect(name: str, size: str, *, seed: int = 0, budgets: Sequence[int] = BUDGETS,
            dock: bool = True) -> dict[str, Any]:
    """Per-user, per-budget evidence and losses (see the module docstring)."""
    from benchmarks.auto_study import study_market
    from benchmarks.labelled_eval import _user_rng
    from lwlib.search.requirement import Requirement

    t0 = time.perf_counter()
    scenario, la, searcher, preds = study_market(name, size, seed)
    task = scenario.task
    users = []
    for j, user in enumerate(scenario.users):
        with threadpool_limits(1):
            table = market_losses(scenario, user)
            best, best_name = best_in_market(scenario, user, table)
            names = sorted(table, key=table.__getitem__)
            second = table[names[1]] if len(names) > 1 else float("inf")
            rkme = searcher.market_._user_spec_from_data(user.X)
            # every learnware on the whole labelled pool once; budgets index into it
            pool_loss = {n: _row_loss(task, user.y_label, preds[n].predict(user.X_label)) for n in names}
            test_loss = {n: _row_loss(task, user.y, preds[n].predict(user.X)) for n in names}
            row: dict[str, Any] = {"user": user.name, "truth": list(user.truth_learnwares), "best": best,
                                   "best_name": best_name, "second": second,
                                   "gap": (second - best) / best if best > 0 else float("inf"),
                                   "n_compatible": len(names), "k": {},
                                   # every labelled row of the pool: the limit of labels drawn from it
                                   "pool_oracle": min(names, key=lambda n: float(pool_loss[n].mean())),
                                   "n_pool": int(len(user.y_label))}
            order = _user_rng(seed, j).permutation(len(user.y_label))
            test_order = np.random.default_rng([seed, j, 13]).permutation(len(user.y))
            for k in budgets:
                if k > len(user.y_label):
                    continue
                idx = order[:k]
                req = Requirement(X=user.X, rkme=rkme, X_labels=user.X_label[idx], y_labels=user.y_label[idx],
                                  task=task)
                ev = searcher.spec_evidence(req)
                assert ev is not None
                ranking, _, log_mmd, pred = ev
                ids = ranking.ids
                per_row = np.stack([pool_loss[i][idx] for i in ids])
                obs = per_row.mean(axis=1)
                cell: dict[str, Any] = {"ids": ids, "obs": obs.tolist(), "log_mmd": log_mmd.tolist(),
                                        "pred": pred.tolist(), "test": [table[i] for i in ids], "_per_row": per_row}
                oracle = ids[int(np.argmin(obs))]
                cell["oracle_all"] = oracle
                cell["best_obs_rank"] = int(np.sum(obs < obs[ids.index(best_name)]))  # 0 = lowest observed
                if dock:
                    rec = _Recorder(preds)
                    res = searcher.search(req, predictors=rec)
                    cell["dock_top1"] = res.singles[0].learnware_id
                    cell["shortlist"] = rec.asked[-1]
                    cell["best_in_shortlist"] = best_name in rec.asked[-1]
                    cell["decided_by"] = res.evidence.get("decided_by")
                # k labels from the test period, scored on the rest of the test rows
                if k < len(user.y) // 2:
                    ti, rest = test_order[:k], test_order[k:]
                    tobs = np.array([test_loss[i][ti].mean() for i in ids])
                    trest = np.array([test_loss[i][rest].mean() for i in ids])
                    cell["testperiod"] = {"oracle_loss": float(trest[int(np.argmin(tobs))]),
                                          "best_loss": float(trest.min())}
                row["k"][k] = cell
        users.append(row)
        print(f"  {j + 1}/{len(scenario.users)} {user.name}", flush=True)
    return {"scenario": name, "size": size, "task": task, "n_learnwares": len(scenario.learnwares),
            "users": users, "seconds": time.perf_counter() - t0}


def collect_hetero(size: str, *, seed: int = 0, budgets: Sequence[int] = BUDGETS) -> dict[str, Any]:
    """``tabular_hetero``: users in feature set C reach learnwares (sets A, B) only through column maps.

    "Best in market" is measured with the user's rows in each learnware's *own* features (the scenario's oracle
    views); the dock can only run a learnware through its column map (missing columns filled). Recorded per user:
    the best learnware's loss through its map (what picking it right would give), the bench's dock path
    (:func:`~lwlib.search.labelled.rerank_by_labels` over the hetero search's 10 singles) and the oracle that runs
    every mapped learnware on the k rows.
    """
    from benchmarks.labelled_eval import _user_rng
    from benchmarks.quality import fit_specs
    from benchmarks.scenarios import build
    from lwlib.reuse import InProcessLearnware
    from lwlib.reuse.hetero import HeteroLearnware
    from lwlib.search.hetero import HeteroSearcher, input_descriptions
    from lwlib.search.labelled import rerank_by_labels
    from lwlib.semantic import SemanticSpec

    t0 = time.perf_counter()
    scenario = build("tabular_hetero", size=size, seed=seed)
    specs = fit_specs(scenario)
    entries = [(lw.name, SemanticSpec.from_reference(lw.semantic), {specs[lw.name].type_name: specs[lw.name]})
               for lw in scenario.learnwares]
    bench = HeteroSearcher(top_k=10, max_mixture=5).fit(entries)  # as benchmarks.hetero_eval runs it
    wide = HeteroSearcher(top_k=len(entries), max_mixture=0).fit(entries)  # every matched learnware
    task = scenario.task
    users = []
    for j, user in enumerate(scenario.users):
        with threadpool_limits(1):
            table = market_losses(scenario, user)
            best, best_name = best_in_market(scenario, user, table)
            desc = input_descriptions(user.semantic_query)
            res, allres = bench.search(user.X, desc), wide.search(user.X, desc)
            if not res.singles:
                continue
            ids = [m.learnware_id for m in allres.singles]
            mapped = {n: HeteroLearnware(InProcessLearnware(n, scenario.learnware(n).model, specs[n]),
                                         allres.matches[n].column_map, user_X=user.X) for n in ids}
            test = {n: float(_row_loss(task, user.y, mapped[n].predict(user.X)).mean()) for n in ids}
            pool_loss = {n: _row_loss(task, user.y_label, mapped[n].predict(user.X_label)) for n in ids}
            preds = {n: HeteroLearnware(InProcessLearnware(n, scenario.learnware(n).model, specs[n]),
                                        res.matches[n].column_map, user_X=user.X) for n in res.matches}
            row: dict[str, Any] = {"user": user.name, "truth": list(user.truth_learnwares), "best": best,
                                   "best_name": best_name, "n_compatible": len(ids), "k": {},
                                   "best_mapped": test.get(best_name, float("nan")),
                                   "best_of_mapped": min(test.values()),
                                   "best_in_bench_singles": best_name in [m.learnware_id for m in res.singles]}
            order = _user_rng(seed, j).permutation(len(user.y_label))
            for k in budgets:
                if k > len(user.y_label):
                    continue
                idx = order[:k]
                obs = {n: float(pool_loss[n][idx].mean()) for n in ids}
                rk = rerank_by_labels(res, user.X_label[idx], user.y_label[idx], preds, task=task)
                top = rk.singles[0].learnware_id
                row["k"][k] = {"dock_top1": top, "dock_loss": test[top], "dock_true_view": table[top],
                               "oracle_all": min(obs, key=obs.__getitem__),
                               "oracle_loss": test[min(obs, key=obs.__getitem__)]}
        users.append(row)
        print(f"  {j + 1}/{len(scenario.users)} {user.name}", flush=True)
    return {"scenario": "tabular_hetero", "size": size, "task": task, "n_learnwares": len(scenario.learnwares),
            "users": users, "seconds": time.perf_counter() - t0}


def hetero_markdown(study: dict[str, Any]) -> str:
    us = [u for u in study["users"] if u["k"]]
    best = np.array([u["best"] for u in us])
    bm = np.array([u["best_mapped"] for u in us])
    bo = np.array([u["best_of_mapped"] for u in us])
    lines = [f"**tabular_hetero ({study['size']})**, {len(us)} users; losses are through the column maps unless "
             "said. Cells: share of users / mean loss ÷ mean best-in-market (own features).", "",
             f"- best-in-market learnware run through its column map: {np.mean(np.isclose(bm, best)):.0%} / "
             f"{bm.mean() / best.mean():.2f}; the best of all mapped learnwares: {bo.mean() / best.mean():.2f}",
             f"- best-in-market among the hetero search's 10 singles (the bench's re-rank pool): "
             f"{np.mean([u['best_in_bench_singles'] for u in us]):.0%}", "",
             "| k | dock top-1 = best | dock top-1 loss / best | oracle (all mapped, k rows) = best | "
             "oracle loss / best |", "|---:|---:|---:|---:|---:|"]
    for k in sorted({k for u in us for k in u["k"]}):
        cs = [(u, u["k"][k]) for u in us if k in u["k"]]
        b = np.array([u["best"] for u, _ in cs])
        d = np.array([c["dock_loss"] for _, c in cs])
        o = np.array([c["oracle_loss"] for _, c in cs])
        lines.append(f"| {k} | {np.mean([c['dock_top1'] == u['best_name'] for u, c in cs]):.0%} | "
                     f"{d.mean() / b.mean():.2f} | {np.mean([c['oracle_all'] == u['best_name'] for u, c in cs]):.0%}"
                     f" | {o.mean() / b.mean():.2f} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------- rules
Rule = Callable[[dict[str, Any], str], str]


def _argmin(c: dict[str, Any], score: np.ndarray) -> str:
    return str(c["ids"][int(np.argmin(score))])


def _combined_all(c: dict[str, Any], task: str, **kw: Any) -> str:
    """combine_evidence over the whole compatible market (needs the per-row losses, kept out of the JSON)."""
    from lwlib.search.evidence import combine_evidence

    comb = combine_evidence(c["_per_row"], np.asarray(c["log_mmd"])[:, None], task=task, **kw)
    return _argmin(c, comb.posterior)


def _short15(c: dict[str, Any], s: int = 15) -> NDArray[np.int64]:
    """The shortlist the labelled search used before whole-market evaluation: best s by P(X) + best s by specs."""
    lm, pr = np.asarray(c["log_mmd"]), np.asarray(c["pred"], dtype=np.float64)
    pr = np.where(np.isfinite(pr), pr, np.inf)
    return np.unique(np.concatenate([np.argsort(lm, kind="stable")[:s], np.argsort(pr, kind="stable")[:s]]))


def _before(c: dict[str, Any], task: str) -> str:
    """The labelled search before this study: 15 + 15 shortlist, each learnware's own per-row noise, τ² floor 5 %."""
    from lwlib.search.evidence import combine_evidence

    idx = _short15(c)
    comb = combine_evidence(c["_per_row"][idx], np.asarray(c["log_mmd"])[idx, None], task=task, variance="own",
                            min_between=0.05)
    return str(c["ids"][int(idx[np.argmin(comb.posterior)])])


RULES: dict[str, Rule] = {
    "dock before (15 + 15 shortlist, own per-row noise)": _before,
    "P(X) top-1": lambda c, t: _argmin(c, np.asarray(c["log_mmd"])),
    "spec-predicted loss": lambda c, t: _argmin(c, np.where(np.isfinite(c["pred"]), c["pred"], np.inf)),
    "dock (labelled search)": lambda c, t: str(c.get("dock_top1", "")),
    "combine_evidence over the whole market": _combined_all,
    "oracle: lowest observed loss, whole market": lambda c, t: str(c["oracle_all"]),
    "oracle: lowest observed loss, dock shortlist": lambda c, t: str(c["ids"][min(
        (c["ids"].index(i) for i in c.get("shortlist", c["ids"])), key=lambda r: c["obs"][r])]),
}


def score_rules(study: dict[str, Any], rules: Mapping[str, Rule] | None = None) -> dict[str, dict[str, Any]]:
    """Per budget and rule: top-1 = best share and mean top-1 loss ÷ mean best loss."""
    out: dict[str, dict[str, Any]] = {}
    us = study["users"]
    for k in sorted({k for u in us for k in u["k"]}, key=int):
        cells = [(u, u["k"][k]) for u in us if k in u["k"]]
        best = np.array([u["best"] for u, _ in cells])
        agg: dict[str, Any] = {"n_users": len(cells)}
        for rname, rule in (rules or RULES).items():
            picks = [rule(c, study["task"]) for _, c in cells]
            if not all(picks):
                continue
            lv = np.array([c["test"][c["ids"].index(p)] for (_, c), p in zip(cells, picks)])
            agg[rname] = {"is_best": float(np.mean(np.isclose(lv, best))), "ratio": float(lv.mean() / best.mean())}
        agg["best_in_15_15_shortlist"] = float(np.mean([c["ids"].index(u["best_name"]) in set(_short15(c).tolist())
                                                         for u, c in cells]))
        sl = [c["best_in_shortlist"] for _, c in cells if "best_in_shortlist" in c]
        if sl:
            agg["best_in_shortlist"] = float(np.mean(sl))
            agg["shortlist_size"] = float(np.mean([len(c["shortlist"]) for _, c in cells]))
        agg["best_obs_rank_median"] = float(np.median([c["best_obs_rank"] for _, c in cells]))
        agg["best_obs_rank_0_share"] = float(np.mean([c["best_obs_rank"] == 0 for _, c in cells]))
        tp = [c["testperiod"] for _, c in cells if "testperiod" in c]
        if tp:
            agg["oracle_testperiod"] = {
                "is_best": float(np.mean([np.isclose(t["oracle_loss"], t["best_loss"]) for t in tp])),
                "ratio": float(np.mean([t["oracle_loss"] for t in tp]) / np.mean([t["best_loss"] for t in tp])),
                "n_users": len(tp)}
        out[str(k)] = agg
    po = np.array([next(u["k"][k]["test"][u["k"][k]["ids"].index(u["pool_oracle"])] for k in u["k"]) for u in us
                   if u["k"]])
    pb = np.array([u["best"] for u in us if u["k"]])
    out["oracle_whole_pool"] = {"is_best": float(np.mean(np.isclose(po, pb))), "ratio": float(po.mean() / pb.mean()),
                                "pool_rows_median": float(np.median([u["n_pool"] for u in us]))}
    gaps = np.array([u["gap"] for u in us])
    out["near_ties"] = {f"gap<{int(t * 100)}%": float(np.mean(gaps < t)) for t in TIE}
    out["near_ties"]["gap_median"] = float(np.median(gaps))
    truth = [u for u in us if u["truth"]]
    if truth:
        out["best_is_truth_share"] = float(np.mean([u["best_name"] in u["truth"] for u in truth]))
        out["truth_users"] = len(truth)
    return out


def markdown(name: str, size: str, scores: dict[str, dict[str, Any]]) -> str:
    ks = [k for k in scores if k.isdigit()]
    rules = [r for r in RULES if r in scores[ks[0]]]
    lines = [f"**{name} ({size})**, {scores[ks[0]]['n_users']} users. Cells: top-1 = best share / "
             "mean top-1 loss ÷ mean best loss.", "",
             "| rule | " + " | ".join(f"k = {k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for r in rules:
        lines.append(f"| {r} | " + " | ".join(f"{scores[k][r]['is_best']:.0%} / {scores[k][r]['ratio']:.2f}"
                                              if r in scores[k] else "" for k in ks) + " |")
    lines.append("| oracle, k labels from the test period (scored on the other test rows) | " + " | ".join(
        f"{scores[k]['oracle_testperiod']['is_best']:.0%} / {scores[k]['oracle_testperiod']['ratio']:.2f}"
        if "oracle_testperiod" in scores[k] else "" for k in ks) + " |")
    lines.append("| best-in-market in the dock's shortlist (mean shortlist size) | " + " | ".join(
        f"{scores[k]['best_in_shortlist']:.0%} ({scores[k]['shortlist_size']:.0f})" if "best_in_shortlist" in scores[k]
        else "" for k in ks) + " |")
    lines.append("| best-in-market in a 15 + 15 shortlist (before) | " + " | ".join(
        f"{scores[k]['best_in_15_15_shortlist']:.0%}" for k in ks) + " |")
    lines.append("| best-in-market has the lowest observed loss on the k rows / its median rank | " + " | ".join(
        f"{scores[k]['best_obs_rank_0_share']:.0%} / {scores[k]['best_obs_rank_median']:.0f}" for k in ks) + " |")
    wp = scores["oracle_whole_pool"]
    lines.append(f"| oracle on the whole labelled pool (median {wp['pool_rows_median']:.0f} rows) | "
                 + " | ".join(f"{wp['is_best']:.0%} / {wp['ratio']:.2f}" for _ in ks) + " |")
    nt = scores["near_ties"]
    lines += ["", "Near-ties on the test rows ((second-best − best) / best): " + ", ".join(
        f"{k}: {v:.0%}" if k.startswith("gap<") else f"median {v:.1%}" for k, v in nt.items()) + "."]
    if "best_is_truth_share" in scores:
        lines.append(f"Best-in-market is the user's own series' learnware for {scores['best_is_truth_share']:.0%} "
                     f"of the {scores['truth_users']} users whose series is in the market.")
    return "\n".join(lines) + "\n"


def _save(study: dict[str, Any]) -> Path:
    """Keep the whole study (per-row losses included) for offline rules: ``pickle.load`` it and call score_rules."""
    import pickle

    from benchmarks.auto_study import CACHE

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"label_study_{study['scenario']}_{study['size']}.pkl"
    with path.open("wb") as fh:
        pickle.dump(study, fh)
    return path


def _load(name: str, size: str) -> dict[str, Any]:
    import pickle

    from benchmarks.auto_study import CACHE

    with (CACHE / f"label_study_{name}_{size}.pkl").open("rb") as fh:  # our own cache, written by _save
        study: dict[str, Any] = pickle.load(fh)
    return study


def _public(study: dict[str, Any]) -> dict[str, Any]:
    """The study without the per-row arrays (kept in memory for offline rules, too large for the JSON)."""
    return {**study, "users": [{**u, "k": {k: {a: b for a, b in c.items() if not a.startswith("_")}
                                           for k, c in u["k"].items()}} for u in study["users"]]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--full", action="store_true")
    p.add_argument("--scenarios", nargs="*", default=["tabular"])
    p.add_argument("--budgets", nargs="*", type=int, default=list(BUDGETS))
    p.add_argument("--stem", default="label_study")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--rescore", action="store_true",
                   help="re-score the cached studies of the last run (no models run; see _save)")
    args = p.parse_args(argv)
    from lwlib.settings import configure_process

    configure_process(Path(tempfile.mkdtemp(prefix="lwdock-labelstudy-home-")))
    logging.basicConfig(level=logging.WARNING)
    size = "full" if args.full else "small"
    studies, scores, md = [], {}, []
    for name in args.scenarios:
        print(f"label study: {name} ({size})", flush=True)
        if args.rescore:
            st = _load(name, size)
            studies.append(st)
            if name == "tabular_hetero":
                md.append(hetero_markdown(st))
            else:
                scores[f"{name} ({size})"] = sc = score_rules(st)
                md.append(markdown(name, size, sc))
            continue
        if name == "tabular_hetero":
            st = collect_hetero(size, budgets=args.budgets)
            _save(st)
            studies.append(st)
            md.append(hetero_markdown(st))
            continue
        st = collect(name, size, budgets=args.budgets)
        _save(st)
        studies.append(st)
        scores[f"{name} ({size})"] = sc = score_rules(st)
        md.append(markdown(name, size, sc))
        print(f"  {st['seconds']:.0f} s", flush=True)
    command = "python -m benchmarks.label_study " + " ".join(argv if argv is not None else sys.argv[1:])
    text = f"Command: `{command}`\n\n" + "\n".join(md)
    files = write_results(args.out, args.stem, {"studies": [_public(st) for st in studies], "scores": scores}, text)
    print(text)
    print(f"written: {files['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
