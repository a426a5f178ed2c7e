"""`lwdock list` at scale: one page, the columns it shows, and a start that skips Typer, numpy and Rich.

The plain spellings of ``list`` run without Typer (``deployments.cli.listing.fast_main``); ``--verbose`` and
anything unusual go through Typer's command. Both must print the same page, and ``--json`` the same records
``lwlib.catalog`` reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deployments.cli.listing import table_text
from deployments.cli.reads import _record_json
from lwlib.catalog import Catalog

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import ROOT, _id, add, lwdock, one_error_line  # noqa: E402

NAMES = ["first model", "second model", "third 模型 model", "fourth model", "[/bold]\x1b[31mfifth\x07 model"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("list") / "dock"
    for i, name in enumerate(NAMES):
        add(h, name, float(i), status="NONUSABLE" if i == 3 else "USABLE", reason="crashed" if i == 3 else None)
    return h


def _catalog_json(home: Path, **kw) -> list[dict]:
    with Catalog.open(home / "catalog.duckdb", read_only=True) as cat:
        return [json.loads(json.dumps(_record_json(r), default=str)) for r in cat.list(**kw)]


@pytest.mark.parametrize("extra", [[], ["--verbose"]], ids=["fast", "typer"])
def test_json_is_the_catalogs_records_on_both_paths(home, extra):
    out = lwdock("list", "--json", *extra, home=home)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert listed == {"total": 5, "learnwares": _catalog_json(home)}
    usable = json.loads(lwdock("list", "--json", "--status", "Usable", "-n", "2", *extra, home=home).stdout)
    assert usable["total"] == 4 and [r["name"] for r in usable["learnwares"]] == NAMES[:2]


@pytest.mark.parametrize("extra", [[], ["--verbose"]], ids=["fast", "typer"])
def test_pages_and_what_to_type_next(home, extra):
    out = lwdock("list", "--limit", "2", "--offset=1", *extra, home=home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2–3 of 5 learnwares")
    assert _id(NAMES[1])[:12] in out.stdout and _id(NAMES[2])[:12] in out.stdout
    assert _id(NAMES[0])[:12] not in out.stdout and _id(NAMES[3])[:12] not in out.stdout
    assert "2 more: --offset 3 shows the next page" in out.stdout
    page = json.loads(lwdock("list", "--json", "-n", "2", "--offset", "3", *extra, home=home).stdout)
    assert [r["id"] for r in page["learnwares"]] == [_id(NAMES[3]), _id(NAMES[4])]
    last = lwdock("list", "--offset", "4", *extra, home=home).stdout
    assert "5–5 of 5" in last and "more:" not in last


def test_both_paths_print_the_same_table(home):
    fast, slow = lwdock("list", home=home), lwdock("list", "-v", home=home)
    assert fast.returncode == slow.returncode == 0, fast.stderr + slow.stderr
    assert fast.stdout == slow.stdout
    assert "[/bold]" in fast.stdout and "\x1b" not in fast.stdout and "\x07" not in fast.stdout
    assert "crashed" not in fast.stdout and "NONUSABLE" in fast.stdout


def test_bad_values_still_get_typers_one_line_error(home):
    for args, needle in ((["--status", "bogus"], "bogus"), (["--limit", "-3"], "--limit"), (["--offset", "x"], "--offset"),
                         (["--colour"], "--colour")):
        out = lwdock("list", *args, home=home)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert needle in one_error_line(out)


def test_an_unmigrated_catalog_is_refused_as_before(home, tmp_path):
    import shutil

    import duckdb

    h = tmp_path / "old"
    h.mkdir()
    shutil.copy(home / "catalog.duckdb", h / "catalog.duckdb")
    con = duckdb.connect(str(h / "catalog.duckdb"))
    con.execute("DELETE FROM schema_migrations")
    con.close()
    out = lwdock("list", home=h)
    assert out.returncode == 4 and "migration" in one_error_line(out)


def test_empty_market(tmp_path):
    out = lwdock("list", home=tmp_path / "nothing")
    assert out.returncode == 0 and "The market is empty" in out.stdout
    assert json.loads(lwdock("list", "--json", home=tmp_path / "nothing").stdout) == {"total": 0, "learnwares": []}


def test_list_imports_neither_typer_nor_numpy_nor_rich(home):
    code = textwrap.dedent(f"""
        import sys
        from deployments.cli import main
        try:
            main(["list", "--home", {str(home)!r}])
        except SystemExit as e:
            assert e.code == 0, e.code
        print("HEAVY", [m for m in ("typer", "pydantic", "numpy", "rich", "duckdb", "lwlib.catalog")
                        if m in sys.modules], file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "HEAVY []" in out.stderr, out.stderr[-2000:]
    assert _id(NAMES[0])[:12] in out.stdout


def test_table_folds_to_the_width_and_counts_wide_characters():
    rows = [["a long name that must fold", "0123456789ab", "USABLE"], ["模型模型模型模型模型", "ba9876543210", "INVALID"]]
    text = table_text("2 learnwares", ["name", "id", "status"], rows, min_widths=[4, 12, 0],
                      no_wrap=[False, True, False], width=36, colour=False)
    lines = text.splitlines()
    assert lines[0] == "2 learnwares"

    def cells(s: str) -> int:
        import unicodedata

        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    assert {cells(ln) for ln in lines[1:]} == {36}, text
    assert "0123456789ab" in text and "ba9876543210" in text  # the id column never wraps
    body = "".join(ln.split("│")[1].strip() for ln in lines if ln.startswith("│"))
    assert body.replace(" ", "") == "alongnamethatmustfold模型模型模型模型模型"
