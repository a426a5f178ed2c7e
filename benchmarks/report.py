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
              "deployed_auto": "Deployed (auto)"}


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
           " | top-1 = best | top-1 < mean | mixture ⊇ truth |\n"
    head += "|" + "---|" * (7 + len(cols)) + "\n"
    lines = []
    for s in summaries:
        cells = [f"{s['rows'][c]:.4f}" if c in s["rows"] else "" for c in cols]
        truth = "" if s.get("mixture_has_truth_share") is None else f"{s['mixture_has_truth_share']:.0%}"
        beats = "" if s.get("top1_beats_mean_share") is None else f"{s['top1_beats_mean_share']:.0%}"
        lines.append(f"| {s['scenario']} | {s['loss']} | {s['n_learnwares']} | {s['n_users']} | "
                     + " | ".join(cells) + f" | {s['top1_is_best_share']:.0%} | {beats} | {truth} |")
    return head + "\n".join(lines) + "\n"


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
