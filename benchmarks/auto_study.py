"""The evidence behind ``auto``'s no-label rule (issue 11): per user, what the dock sees and what each choice costs.

For every user of a scenario the unlabelled search runs as in the bench (``LabelledSearcher`` without labels, the
deploying flow's path), and the facts the dock has without labels are recorded next to the hidden-label loss of
each choice ``auto`` could make:

- evidence: the top-1's and the best mixture's MMD², the mixture weights (search's and the job selector's own),
  each member's classes (label-aware specs), and the share of the user's rows the job selector routes to the top-1;
- losses: top-1, the job selector over the mixture, the mixture average with its weights and uniformly, and the
  best single learnware in the market.

``python -m benchmarks.auto_study --scenarios tabular image text shared_inputs image_digits [--full]`` writes
``benchmarks/results/auto_study_<size>.json`` and a Markdown table that scores the current rule (and the rules it
replaced) against top-1 per scenario. Built scenarios are cached under ``$TMPDIR/lwdock-autostudy`` (the
benchmark's own trusted models) so a rule can be re-scored without rebuilding.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.metrics import best_in_market, loss, market_losses
from benchmarks.report import write_results

__all__ = ["collect", "score_rules", "RULES", "main"]

logger = logging.getLogger(__name__)
RESULTS = Path(__file__).resolve().parent / "results"
CACHE = Path(tempfile.gettempdir()) / "lwdock-autostudy"
ROUTER_GAMMA_FACTORS = (3, 10, 30)


def _built(name: str, size: str, seed: int = 0) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Scenario, RKMEs and label-aware specs, built as the bench builds them (cached between runs)."""
    from benchmarks.labelled_eval import fit_label_aware
    from benchmarks.quality import fit_specs
    from benchmarks.scenarios import build

    path = CACHE / f"{name}_{size}_{seed}.pkl"
    if path.is_file():
        with path.open("rb") as fh:  # our own cache of the benchmark's trusted models, written below
            return pickle.load(fh)  # type: ignore[no-any-return]
    scenario = build(name, size=size, seed=seed)
    specs = fit_specs(scenario)
    la, _ = fit_label_aware(scenario, specs)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        with tmp.open("wb") as fh:
            pickle.dump((scenario, specs, la), fh)
        tmp.replace(path)
    except (TypeError, pickle.PicklingError, AttributeError) as exc:  # some scenarios hold unpicklable views
        logger.info("not cached (%s): %s", name, exc)
        tmp.unlink(missing_ok=True)
    return scenario, specs, la


def study_market(name: str, size: str, seed: int = 0) -> tuple[Any, dict[str, Any], Any, dict[str, Any]]:
    """Scenario, label-aware specs, a fitted :class:`LabelledSearcher` over its market (RKME + label-aware spec per
    learnware) and in-process predictors: the market both studies (``auto_study``, ``label_study``) search."""
    from lwlib.reuse import InProcessLearnware
    from lwlib.rkme.label_aware import LabelAwareSpec
    from lwlib.search.labelled import LabelledSearcher
    from lwlib.semantic import SemanticSpec

    scenario, specs, la = _built(name, size, seed)
    entries = [(lw.name, SemanticSpec.from_reference(lw.semantic),
                {specs[lw.name].type_name: specs[lw.name], LabelAwareSpec.type_name: la[lw.name]})
               for lw in scenario.learnwares]
    searcher = LabelledSearcher(top_k=10, max_mixture=5).fit(entries)
    preds = {lw.name: InProcessLearnware(lw.name, lw.model, specs[lw.name]) for lw in scenario.learnwares}
    return scenario, la, searcher, preds


def collect(name: str, size: str, *, seed: int = 0) -> dict[str, Any]:
    """Per-user evidence and losses for one scenario (see the module docstring)."""
    from lwlib.reuse.auto import choose_reuser_auto, class_support, make_reuser
    from lwlib.search.requirement import Requirement

    t0 = time.perf_counter()
    scenario, la, searcher, preds = study_market(name, size, seed)
    task = scenario.task
    users = []
    for user in scenario.users:
        with threadpool_limits(1):
            table = market_losses(scenario, user)
            best, _ = best_in_market(scenario, user, table)
            res = searcher.search(Requirement(X=user.X, task=task))
            top = res.singles[0].learnware_id
            row: dict[str, Any] = {"user": user.name, "best": best, "mean": float(np.mean(list(table.values()))),
                                   "top1": top, "top1_mmd2": float(res.singles[0].mmd2),
                                   "second_mmd2": float(res.singles[1].mmd2) if len(res.singles) > 1 else None,
                                   "loss": {"top1": table[top]}}
            choice = choose_reuser_auto(res, task=task, X=user.X, label_specs=la, predictors=preds)
            row["auto_kind"] = choice.kind
            row["loss"]["auto"] = _deployed_loss(task, user, choice, preds, make_reuser)
            mix = res.mixtures[0] if res.mixtures else None
            if mix is not None and len(mix.learnware_ids) >= 2:
                ids = list(mix.learnware_ids)
                members = [preds[i] for i in ids]
                row.update(mixture=ids, weights=[float(w) for w in mix.weights], mixture_mmd2=float(mix.mmd2),
                           member_loss=[table[i] for i in ids])
                if task == "classification":
                    row["support"] = {i: sorted(class_support(la[i])) for i in ids}
                    row["top1_support"] = sorted(class_support(la[top]))
                js = make_reuser("job_selector", members, None, task).fit(user.X)
                row["js_weights"] = [float(w) for w in js.mixture_weights_]
                route = js.route(user.X)
                row["js_route_share"] = [float(np.mean(route == k)) for k in range(len(ids))]
                row["loss"]["job_selector"] = loss(task, user.y, js.predict(user.X))
                for f in ROUTER_GAMMA_FACTORS:  # the same router with a narrower kernel (what-if for job_selector.py)
                    row["loss"][f"job_selector_gamma_x{f}"] = _narrow_router_loss(task, user, js, members, f)
                row["loss"]["averaging"] = loss(task, user.y, make_reuser("averaging", members, row["weights"], task)
                                                .fit(user.X).predict(user.X))
                row["loss"]["average_uniform"] = loss(task, user.y, make_reuser("averaging", members, None, task)
                                                      .fit(user.X).predict(user.X))
        users.append(row)
    return {"scenario": name, "size": size, "task": task, "n_learnwares": len(scenario.learnwares),
            "users": users, "seconds": time.perf_counter() - t0}


def _narrow_router_loss(task: str, user: Any, js: Any, members: list[Any], factor: float) -> float:
    """Loss of the fitted kernel router with its γ multiplied by ``factor`` (same RKMEs, weights, scaling)."""
    from lwlib.reuse.combine import route_rows
    from lwlib.reuse.job_selector import KernelRouter

    r = js.router_
    if not isinstance(r, KernelRouter):
        return float("nan")
    narrow = KernelRouter(r.Zs, r.betas, r.weights, r.mean, r.scale, r.gamma * factor)
    return loss(task, user.y, route_rows(members, narrow.predict(np.asarray(user.X, dtype=np.float64)), user.X))


def _deployed_loss(task: str, user: Any, choice: Any, preds: dict[str, Any], make_reuser: Callable[..., Any]) -> float:
    members = [preds[i] for i in choice.learnware_ids]
    r = make_reuser(choice.kind, members, choice.weights if choice.kind == "averaging" else None, task).fit(user.X)
    return loss(task, user.y, r.predict(user.X))


# ----------------------------------------------------------------------------------------------------- rules
def _rule_previous(u: dict[str, Any], task: str) -> str:
    """The rule before this study: route whenever a mixture exists and the top-1 does not cover its classes."""
    if "mixture" not in u:
        return "top1"
    if task == "classification" and set(u["top1_support"]) >= set().union(*map(set, u["support"].values())):
        return "top1"
    return "job_selector"


def _rule_current(u: dict[str, Any], task: str) -> str:
    """What ``lwlib.reuse.auto`` decides today (recorded as ``auto_kind`` when the study ran)."""
    return str(u["auto_kind"])


RULES: dict[str, Callable[[dict[str, Any], str], str]] = {
    "top1": lambda u, t: "top1", "previous": _rule_previous, "current (auto.py)": _rule_current,
    "always job_selector": lambda u, t: "job_selector" if "mixture" in u else "top1",
    "always averaging": lambda u, t: "averaging" if "mixture" in u else "top1",
    **{f"always job_selector, router γ×{f}": (lambda u, t, f=f: f"job_selector_gamma_x{f}" if "mixture" in u
                                               else "top1") for f in ROUTER_GAMMA_FACTORS},
}


def score_rules(studies: Sequence[dict[str, Any]],
                rules: dict[str, Callable[[dict[str, Any], str], str]] | None = None) -> dict[str, dict[str, Any]]:
    """Mean loss ÷ mean top-1 loss of each rule per scenario, and how often it is worse for a user."""
    out: dict[str, dict[str, Any]] = {}
    for st in studies:
        us = st["users"]
        top = np.array([u["loss"]["top1"] for u in us])
        best = np.array([u["best"] for u in us])
        cell: dict[str, Any] = {"top1": float(top.mean()), "best": float(best.mean()), "n": len(us)}
        for rname, rule in (rules or RULES).items():
            kinds = [rule(u, st["task"]) if rname != "current (auto.py)" else u["auto_kind"] for u in us]
            lv = np.array([u["loss"]["auto"] if rname == "current (auto.py)" else u["loss"][k]
                           for u, k in zip(us, kinds)])
            cell[rname] = {"loss": float(lv.mean()), "vs_top1": float(lv.mean() / top.mean()) if top.mean() else 1.0,
                           "worse_users": int(np.sum(lv > top + 1e-12)), "better_users": int(np.sum(lv < top - 1e-12)),
                           "kinds": {k: kinds.count(k) for k in sorted(set(kinds))}}
        out[f"{st['scenario']} ({st['size']})"] = cell
    return out


def markdown(scores: dict[str, dict[str, Any]]) -> str:
    names = [k for k in next(iter(scores.values())) if isinstance(next(iter(scores.values()))[k], dict)]
    lines = ["| scenario | users | best | " + " | ".join(names) + " |", "|---|---:|---:|" + "---:|" * len(names)]
    for sc, cell in scores.items():
        lines.append(f"| {sc} | {cell['n']} | {cell['best']:.4f} | " + " | ".join(
            f"{cell[n]['loss']:.4f} ({cell[n]['vs_top1']:.2f}×; −{cell[n]['better_users']}/+{cell[n]['worse_users']})"
            for n in names) + " |")
    return "\n".join(lines) + ("\n\nCells: mean loss (÷ top-1's; users better / worse than top-1). Kinds per rule: "
                               "see the JSON.\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--full", action="store_true")
    p.add_argument("--scenarios", nargs="*", default=["tabular", "image", "text", "shared_inputs", "image_digits"])
    p.add_argument("--stem", default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    from lwlib.settings import configure_process

    configure_process(Path(tempfile.mkdtemp(prefix="lwdock-autostudy-home-")))
    logging.basicConfig(level=logging.WARNING)
    size = "full" if args.full else "small"
    studies = []
    for name in args.scenarios:
        print(f"auto study: {name} ({size})", flush=True)
        studies.append(collect(name, size))
        print(f"  {studies[-1]['seconds']:.0f} s", flush=True)
    scores = score_rules(studies)
    command = "python -m benchmarks.auto_study " + " ".join(argv if argv is not None else sys.argv[1:])
    md = f"Command: `{command}`\n\n" + markdown(scores)
    files = write_results(args.out, args.stem or f"auto_study_{size}", {"studies": studies, "scores": scores}, md)
    print(md)
    print(f"written: {files['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
