"""A tiny demo end to end: real zips through the submission flow, users through the deploying flow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def test_tiny_demo_runs_end_to_end_and_writes_table_and_plot(tmp_path: Path) -> None:
    from benchmarks.demo import run_demo

    console = Console(record=True, width=120)
    summaries = run_demo(tmp_path / "home", size="tiny", console=console, scenarios=("image_digits",))
    (s,) = summaries
    assert s["usable_learnwares"] == s["n_learnwares"] == 6 and s["n_users"] == 3
    rows = s["rows"]
    assert {"mean_in_market", "best_in_market", "top1", "job_selector", "average_ensemble", "deployed_auto"} <= set(rows)
    assert rows["best_in_market"] <= rows["mean_in_market"]
    assert rows["top1"] < rows["mean_in_market"]  # search beats picking a learnware at random
    out = tmp_path / "home" / "results"
    assert (out / "demo.png").stat().st_size > 10_000
    assert json.loads((out / "demo.json").read_text())["scenarios"][0]["n_users"] == 3
    text = console.export_text()
    assert "Top-1 reuse" in text and "Mean in market" in text
