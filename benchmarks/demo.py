"""The main job (`make demo`): a market built from real bundled data through the real flows.

Learnwares are packaged into reference-format zips, submitted through the Prefect submission flow (validate →
containerize → check → specify → register → catalog) into an MLflow registry and a DuckDB catalog; every user
task goes through the deploying flow (semantic_search → stat_search → reuse → deploy). The table compares the
dock's choices with the market's mean and oracle-best learnware on the users' hidden labels.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks.evaluate import ROWS, UserSearch, score_user, summarise
from benchmarks.metrics import loss, market_losses
from benchmarks.report import ROW_LABELS, plot_quality, quality_table, write_results
from benchmarks.scenarios import build

logger = logging.getLogger(__name__)

DEMO_SCENARIOS = ("image_digits",)
DEMO_LABELS = 20  # labelled rows each demo user gives on its second pass
TINY = {"learnwares": 6, "users": 3}


def _subset(scenario: Any, size: str) -> Any:
    if size != "tiny":
        return scenario
    from dataclasses import replace

    return replace(scenario, learnwares=scenario.learnwares[: TINY["learnwares"]], users=scenario.users[: TINY["users"]])


def run_scenario(name: str, home: Path, *, size: str, progress: Progress) -> dict[str, Any]:
    from flows.deploy import find_and_reuse
    from flows.submit import submit_batch
    from lwlib.deployment import open_market
    from lwlib.dock import Dock
    from lwlib.learnware.packager import package_learnware
    from lwlib.settings import Settings
    from lwlib.userdata import save_table

    os.environ["LWDOCK_HOME"] = str(home)  # the flows read their dock home once, from the environment
    scenario = _subset(build(name, size="small", seed=0), size)
    work = home / "demo" / name
    t_pack = progress.add_task(f"{name}: packaging learnwares", total=len(scenario.learnwares))
    zips = []
    for i, lw in enumerate(scenario.learnwares):
        zips.append(str(package_learnware(lw.model, lw.X_train, lw.semantic, work / "zips" / f"{i:03d}.zip")))
        progress.advance(t_pack)
    t_sub = progress.add_task(f"{name}: submission flow", total=len(zips))
    results = []
    for chunk in range(0, len(zips), 4):
        results += submit_batch(zip_paths=zips[chunk:chunk + 4])
        progress.advance(t_sub, len(zips[chunk:chunk + 4]))
    name_of = {r.learnware_id: lw.name for r, lw in zip(results, scenario.learnwares)}
    usable = sum(r.status.value == "USABLE" for r in results)
    specs = {name_of[e.learnware_id]: e.stat_spec.get("RKMETableSpecification", next(iter(e.stat_spec.values())))
             for e in open_market(Dock(Settings(home=home))).entries_for(list(name_of))}
    t_users = progress.add_task(f"{name}: deploying flow per user", total=len(scenario.users))
    rows = []
    for user in scenario.users:
        data = save_table(work / "users" / f"{user.name}.npy", user.X)
        t0 = time.perf_counter()
        out = find_and_reuse(user_data=str(data), requirement=user.semantic_query, reuser="auto",
                             register_name=f"demo-{name}-{user.name}".replace("_", "-"))
        found = UserSearch(
            singles=tuple(name_of.get(m["learnware_id"], "?") for m in out.singles),
            mixture=tuple(name_of.get(i, "?") for i in (out.mixtures[0]["learnware_ids"] if out.mixtures else ())),
            weights=tuple(out.mixtures[0]["weights"]) if out.mixtures else (),
            deployed_predictions=np.load(out.predictions_path) if out.predictions_path else None,
            search_seconds=time.perf_counter() - t0)
        row = score_user(scenario, user, found, specs)
        if len(user.y_label) >= DEMO_LABELS:  # the same user again, now giving DEMO_LABELS labelled rows
            pick = np.random.default_rng([0, len(rows), 11]).permutation(len(user.y_label))[:DEMO_LABELS]
            lab = work / "users" / f"{user.name}-labels.npz"
            np.savez(lab, X=user.X_label[pick], y=user.y_label[pick])
            out_l = find_and_reuse(user_data=str(data), requirement=user.semantic_query, labelled_data=str(lab),
                                   reuser="auto", register_name=f"demo-{name}-{user.name}-labels".replace("_", "-"))
            top_l = name_of.get(out_l.singles[0]["learnware_id"], "?") if out_l.singles else None
            table = market_losses(scenario, user)
            if top_l in table:
                row.losses["top1_labels"] = table[top_l]
            if out_l.predictions_path:
                row.losses["auto_labels"] = loss(scenario.task, user.y, np.load(out_l.predictions_path))
        rows.append(row)
        progress.advance(t_users)
    summary = summarise(scenario, rows)
    summary["usable_learnwares"] = usable
    return summary


def print_table(console: Console, summaries: Sequence[dict[str, Any]]) -> None:
    """Methods as rows, scenarios as columns (fits a narrow terminal); the best non-oracle cell in bold green."""
    keys = [k for k in (*ROWS, "deployed_auto", "top1_labels", "auto_labels") if any(k in s["rows"] for s in summaries)]
    table = Table("method", *(f"{s['scenario']}\n({s['loss']})" for s in summaries),
                  title="Learnware Dock demo: mean loss over users (lower is better)")
    best = [min(v for k, v in s["rows"].items() if k != "best_in_market") for s in summaries]
    for k in keys:
        cells = []
        for s, b in zip(summaries, best):
            v = s["rows"].get(k)
            cells.append("" if v is None else (f"[bold green]{v:.4f}[/]" if v == b else f"{v:.4f}"))
        table.add_row(ROW_LABELS[k] + (" (oracle)" if k == "best_in_market" else ""), *cells)
    table.add_row("learnwares usable", *(f"{s.get('usable_learnwares', s['n_learnwares'])}/{s['n_learnwares']}"
                                         for s in summaries))
    table.add_row("users", *(str(s["n_users"]) for s in summaries))
    table.add_row("top-1 = oracle best", *(f"{s['top1_is_best_share']:.0%}" for s in summaries))
    console.print(table)


def run_demo(home: Path, size: str = "small", console: Console | None = None,
             scenarios: Sequence[str] = DEMO_SCENARIOS) -> list[dict[str, Any]]:
    """Run the demo scenarios end to end; print the table, write JSON/Markdown/PNG under ``home/results``."""
    console = console or Console()
    t0 = time.perf_counter()
    summaries = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        for name in scenarios:
            summaries.append(run_scenario(name, home, size=size, progress=progress))
    print_table(console, summaries)
    out_dir = home / "results"
    files = write_results(out_dir, "demo", {"size": size, "seconds": time.perf_counter() - t0,
                                            "scenarios": summaries}, quality_table(summaries))
    png = plot_quality(summaries, out_dir / "demo.png")
    console.print(f"results: {files['markdown']}, {files['json']}; plot: {png}  "
                  f"({time.perf_counter() - t0:.0f} s)")
    return summaries
