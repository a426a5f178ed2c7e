"""Result files: JSON, a Markdown table and PNG plots, stamped with the machine and versions."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Sequence

ROW_LABELS = {"mean_in_market": "Mean in market", "best_in_market": "Best in market", "top1": "Top-1 reuse",
              "job_selector": "Job selector", "average_ensemble": "Average ensemble",
              "deployed_auto": "auto (no labels)", "top1_labels": "Top-1 (20 labels)",
              "auto_labels": "auto (20 labels)"}


def machine_stamp() -> dict[str, Any]:
    mem = 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    except (ValueError, OSError):
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": os.cpu_count(), "ram_gib": mem,
            "python": platform.python_version(), "load_avg": os.getloadavg(),
            "versions": {p: version(p) for p in ("torch", "numpy", "scikit-learn", "prefect", "mlflow", "duckdb")}}


def quality_table(summaries: Sequence[dict[str, Any]]) -> str:
    """The paper-style table: one line per scenario, one column per row of the protocol."""
    cols = [c for c in ROW_LABELS if any(c in s["rows"] for s in summaries)]
    head = "| scenario | loss | learnwares | users | " + " | ".join(ROW_LABELS[c] for c in cols) + \
           " | top-1 = best | top-1/best | top-1 < mean | mixture ⊇ truth |\n"
    head += "|" + "---|" * (8 + len(cols)) + "\n"
    lines = []
    for s in summaries:
        cells = [f"{s['rows'][c]:.4f}" if c in s["rows"] else "" for c in cols]
        truth = "" if s.get("mixture_has_truth_share") is None else f"{s['mixture_has_truth_share']:.0%}"
        beats = "" if s.get("top1_beats_mean_share") is None else f"{s['top1_beats_mean_share']:.0%}"
        r = s["rows"]
        ratio = f"{r['top1'] / r['best_in_market']:.2f}" if r.get("top1") is not None and r.get("best_in_market") \
            else ""
        lines.append(f"| {s['scenario']} | {s['loss']} | {s['n_learnwares']} | {s['n_users']} | "
                     + " | ".join(cells) + f" | {s['top1_is_best_share']:.0%} | {ratio} | {beats} | {truth} |")
    return head + "\n".join(lines) + "\n"


def labelled_table(summaries: Sequence[dict[str, Any]]) -> str:
    """Issue 11 rows per scenario and label budget k: labelled top-1 and the deployed ``auto`` against the oracle."""
    out = ["| scenario | k labels | users | Best in market | Top-1 (k labels) | top-1 = best | top-1/best | "
           "auto (k labels) | auto/best | auto users | auto chose | decided by | search s (median) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for s in summaries:
        lab = s.get("labelled") or {}
        nl = lab.get("auto_nolabel")
        if nl:
            b = s["rows"].get("best_in_market", float("nan"))
            out.append(f"| {s['scenario']} | 0 (P(X) only) | {nl['n_users']} | {b:.4f} | {nl['top1_loss']:.4f} | "
                       f"{s['top1_is_best_share']:.0%} | {nl['top1_loss'] / b:.2f} | {nl['loss']:.4f} | "
                       f"{nl['ratio']:.2f} | {nl['n_users']} | {_fmt_counts(nl['kinds'])} | P(X) | |")
            if "consensus_top1_loss" in nl:
                out.append(f"| {s['scenario']} | 0 (consensus) | {nl['n_users']} | {b:.4f} | "
                           f"{nl['consensus_top1_loss']:.4f} | {nl['consensus_top1_is_best_share']:.0%} | "
                           f"{nl['consensus_top1_loss'] / b:.2f} | | | | | consensus | |")
        for k in sorted((int(x) for x in lab if x.isdigit())):
            a = lab[str(k)]
            auto = (f"{a['auto_loss']:.4f} | {a['auto_ratio']:.2f} | {a['auto_users']} | "
                    f"{_fmt_counts(a['auto_kinds'])}") if "auto_loss" in a else " | | | "
            out.append(f"| {s['scenario']} | {k} | {a['n_users']} | {a['best_loss']:.4f} | {a['top1_loss']:.4f} | "
                       f"{a['top1_is_best_share']:.0%} | {a['top1_ratio']:.2f} | {auto} | "
                       f"{_fmt_counts(a['decided_by'])} | {a['search_seconds_median']:.3f} |")
    out.append("")
    out.append("k = 0 (P(X) only): the unlabelled search's top-1 and the deployed `auto` without labels; k = 0 "
               "(consensus): the top-1 after re-ranking the best 5 singles by agreement with the kernel job "
               "selector's predictions on the user's rows (models run, no labels).")
    ep = [(s["scenario"], s["labelled"][k]) for s in summaries for k in (s.get("labelled") or {})
          if isinstance(s["labelled"][k], dict) and "ensemble_pruning_loss" in s["labelled"][k]]
    if ep:
        out += ["", "| scenario | Ensemble pruning (100 labels, labelled-search pool) | Best in market (same users) |",
                "|---|---:|---:|"]
        out += [f"| {n} | {a['ensemble_pruning_loss']:.4f} | {a['ensemble_pruning_best_loss']:.4f} |" for n, a in ep]
    return "\n".join(out) + "\n"


def _fmt_counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]))


def write_results(out_dir: Path, stem: str, payload: dict[str, Any], markdown: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine_stamp(), **payload}
    js = out_dir / f"{stem}.json"
    js.write_text(json.dumps(payload, indent=2, default=str))
    md = out_dir / f"{stem}.md"
    md.write_text(f"# {stem}\n\nMachine: {payload['machine']}\n\n{markdown}")
    return {"json": js, "markdown": md}


def plot_quality(summaries: Sequence[dict[str, Any]], path: Path) -> Path:
    """Grouped bars of mean loss per method, one panel per scenario (lower is better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(5.5 * len(summaries), 4), squeeze=False)
    for ax, s in zip(axes[0], summaries):
        keys = [k for k in ROW_LABELS if k in s["rows"]]
        vals = [s["rows"][k] for k in keys]
        colors = ["#9e9e9e", "#424242", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa"][: len(keys)]
        bars = ax.bar(range(len(keys)), vals, color=colors)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set_xticks(range(len(keys)), [ROW_LABELS[k] for k in keys], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(s["loss"] + " (lower is better)")
        ax.set_title(f"{s['scenario']}: {s['n_learnwares']} learnwares, {s['n_users']} users\n"
                     f"top-1 = best for {s['top1_is_best_share']:.0%} of users", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_labels(summaries: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Loss / best-in-market against the number of labels: labelled top-1 and the deployed ``auto`` per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_lab = [s for s in summaries if s.get("labelled")]
    if not with_lab:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for s in with_lab:
        lab = s["labelled"]
        ks = sorted(int(k) for k in lab if k.isdigit())
        nl = lab.get("auto_nolabel")
        best = s["rows"].get("best_in_market")
        x = ([0] if nl and best else []) + ks
        top = ([nl["top1_loss"] / best] if nl and best else []) + [lab[str(k)]["top1_ratio"] for k in ks]
        auto = ([nl["ratio"]] if nl and best else []) + [lab[str(k)].get("auto_ratio", float("nan")) for k in ks]
        xs = [max(v, 1) for v in x]  # log axis: 0 labels drawn at 1
        axes[0].plot(xs, top, marker="o", label=s["scenario"])
        axes[1].plot(xs, auto, marker="o", label=s["scenario"])
    for ax, title in zip(axes, ("Top-1 (k labels) / best in market", "auto (k labels) / best in market")):
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xticks([1, 5, 20, 100], ["0", "5", "20", "100"])
        ax.set_xlabel("labelled rows the user gives")
        ax.set_ylabel("loss ÷ best single learnware (lower is better)")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
