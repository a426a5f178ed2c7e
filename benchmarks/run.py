"""`make bench` / `make bench-reference`: the BENCHMARKS.md tables and plots, written to benchmarks/results/."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.report import labelled_table, plot_labels, plot_quality, quality_table, write_results

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("tabular", "image", "text", "shared_inputs")
console = Console()


def _strip(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if not k.endswith("_obj")}


def plot_curves(summaries: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_curves = [s for s in summaries if s.get("curves")]
    fig, axes = plt.subplots(1, max(1, len(with_curves)), figsize=(5 * max(1, len(with_curves)), 3.8), squeeze=False)
    for ax, s in zip(axes[0], with_curves):
        for method, points in s["curves"].items():
            if points:
                ns = sorted(int(n) for n in points)
                ax.plot(ns, [points[n] if n in points else points[str(n)] for n in ns], marker="o", label=method)
        for row, style in (("top1", ":"), ("best_in_market", "--")):
            if row in s["rows"]:
                ax.axhline(s["rows"][row], linestyle=style, color="grey", label=f"{row} (no labels)")
        ax.set_xscale("log")
        ax.set_xlabel("labelled user samples")
        ax.set_ylabel(s["loss"])
        ax.set_title(s["scenario"], fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_markdown(summaries: list[dict[str, Any]]) -> str:
    out = []
    for s in summaries:
        if not s.get("curves"):
            continue
        ns = sorted({int(n) for pts in s["curves"].values() for n in pts})
        out.append(f"\n**{s['scenario']}** ({s['loss']}, labelled-data curves)\n\n| method | "
                   + " | ".join(f"n={n}" for n in ns) + " |\n|" + "---|" * (len(ns) + 1))
        for m, pts in s["curves"].items():
            out.append(f"| {m} | " + " | ".join(f"{pts[n]:.4f}" if n in pts else "" for n in ns) + " |")
    return "\n".join(out) + "\n"


def reference_loadable(model: Any) -> Any:
    """A copy of ``model`` the reference's numpy 1.26 can unpickle (predictions unchanged).

    HistGradientBoosting keeps the ``numpy.random.Generator`` it used to subsample features while fitting
    (``_feature_subsample_rng``); pickled under numpy 2.4 its PCG64 state cannot be read by numpy 1.26, so the
    reference's checker rejected every tabular learnware and the tabular row was empty. ``predict`` never uses it.
    """
    import copy

    m = copy.deepcopy(model)
    parts = [step for _, step in m.steps] if hasattr(m, "steps") else [m]
    for part in parts:
        if hasattr(part, "_feature_subsample_rng"):
            part._feature_subsample_rng = None
    return m


def run_reference_side_by_side(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the reference package on the same learnwares (our zips) and users; one extra row block per scenario."""
    from benchmarks.quality import reference_summary
    from benchmarks.reference.driver import ReferenceUser, available, run_reference
    from lwlib.learnware.packager import package_learnware

    ok, why = available()
    if not ok:
        console.print(f"[yellow]reference not available: {why}[/yellow]")
        return []
    out = []
    for s in summaries:
        if "scenario_obj" not in s:  # the heterogeneous line: the reference's HeteroMap market is not run (note)
            continue
        scenario, specs = s["scenario_obj"], s["specs_obj"]
        with tempfile.TemporaryDirectory(prefix="lwdock-ref-") as tmp:
            zdir = Path(tmp) / "zips"
            for lw in scenario.learnwares:
                package_learnware(reference_loadable(lw.model), lw.X_train, lw.semantic, zdir / f"{lw.name}.zip",
                                  spec=specs[lw.name])
            users = [ReferenceUser(u.name, u.X, task=scenario.task) for u in scenario.users]
            console.print(f"reference: {scenario.name} ({len(users)} users)...")
            try:
                ref = run_reference(zdir, users, Path(tmp) / "ref.json", timeout=3600)
            except Exception as exc:  # noqa: BLE001 - shown in the table as empty cells with the reason
                ref = {"error": str(exc)}
        rs = reference_summary(scenario, ref)
        out.append({"scenario": s["scenario"] + " [reference]", "loss": s["loss"], "n_learnwares": s["n_learnwares"],
                    "n_users": s["n_users"], "rows": rs["rows"], "top1_is_best_share": rs["top1_is_best_share"] or 0.0,
                    "top1_beats_mean_share": rs["top1_beats_mean_share"],
                    "mixture_has_truth_share": None, "errors": rs["errors"],
                    "search_seconds_median": rs["search_seconds_median"]})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--full", action="store_true", help="full-size scenarios and all performance sizes")
    p.add_argument("--reference", action="store_true", help="also run the reference package side by side")
    p.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    p.add_argument("--skip-performance", action="store_true")
    p.add_argument("--no-curves", action="store_true", help="skip the labelled-data curves (the slow part)")
    p.add_argument("--no-hetero", action="store_true", help="skip the tabular_hetero line")
    p.add_argument("--stem", default=None, help="result file stem (default quality_<size>)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    from lwlib.settings import configure_process

    configure_process(Path(tempfile.mkdtemp(prefix="lwdock-bench-home-")))
    logging.basicConfig(level=logging.WARNING)
    from benchmarks.quality import evaluate_scenario

    size = "full" if args.full else "small"
    summaries = []
    for name in args.scenarios:
        console.print(f"[bold]part A[/bold]: {name} ({size})")
        summaries.append(evaluate_scenario(name, size, curves=not args.no_curves))
    try:
        if args.no_hetero:
            raise ImportError("skipped")
        from benchmarks.hetero_eval import evaluate_hetero

        console.print(f"[bold]part A[/bold]: tabular_hetero ({size})")
        summaries.append(evaluate_hetero(size=size))
    except ImportError:
        pass
    ref = run_reference_side_by_side(summaries) if args.reference else []
    table = quality_table([_strip(s) for s in summaries] + ref)
    table += "\n**Labels (issue 11)**: labelled search and the deployed `auto` per label budget k " \
             "(k = 0: no labels)\n\n" + labelled_table(summaries)
    stem = args.stem or ("quality_reference" if args.reference else f"quality_{size}")
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    table = f"Command: `{command}`\n\n" + table
    files = write_results(args.out, stem, {"size": size, "scenarios": [_strip(s) for s in summaries],
                                           "reference": ref}, table + curves_markdown(summaries))
    plot_quality([_strip(s) for s in summaries], args.out / f"{stem}.png")
    plot_curves(summaries, args.out / f"{stem}_curves.png")
    plot_labels([_strip(s) for s in summaries], args.out / f"{stem}_labels.png")
    console.print(table)
    console.print(curves_markdown(summaries))
    if not args.skip_performance and not args.reference:
        from benchmarks import performance

        perf = {"rkme": performance.rkme_figures(args.full), "search": performance.search_figures(args.full),
                "runtime": performance.runtime_figures(), "submission": performance.submission_figures()}
        (args.out / f"performance_{size}.json").write_text(json.dumps(perf, indent=2, default=str))
        console.print_json(json.dumps({k: v for k, v in perf.items() if k != "rkme"}, default=str))
    if args.reference:
        from benchmarks.reference.driver import available, format_timing, run_reference_timing

        if available()[0]:
            console.print("reference timing: RKME generation and search latency (its own code, same machine)...")
            timing = run_reference_timing(args.out / "reference_timing.json", timeout=3600,
                                          rkme_n=(1000, 10000, 50000), search_n=(100, 1000), search_d=20)
            console.print(format_timing(timing))
    console.print(f"written: {files['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
