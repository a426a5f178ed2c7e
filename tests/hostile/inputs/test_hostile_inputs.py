"""The input half of the hostile suite (issue 10 §10): every crafted input ends in a clear refusal.

Cases are built by ``inputs_cases.py`` at test time: 137 cases, one test each (136 refusals plus one input that
is accepted as data and must print literally), and the checks at the bottom of this file. Categories and counts:

=============  =====  ==========================================================================================
category       cases  what
=============  =====  ==========================================================================================
archive           30  long names/paths, deep dirs, traversal (plain, nested, NFKC look-alikes), absolute paths,
                      ESC/C1/DEL/bidi/backslash names, bad UTF-8 names, symlink, device, bomb, declared and
                      understated sizes, zip64 size lie, duplicates (exact, case, NFKC), encrypted, file/dir
                      conflict, 2 100 members, non-zip, truncated, empty
manifest          23  deep flow/block nesting, billion laughs, timestamp/binary/set/NaN/huge-int/int-key kwargs,
                      ``!!python`` tags, huge scalar, 6 000 nodes, > 64 KiB, wrong types, class/module/spec-module
                      injection, unknown spec type, non-UTF-8, escape in name, broken YAML
stat_spec         28  100 000 points, 200 000 features, K·d over the cap, NaN/Infinity/1e999, huge points and
                      weights, zero weights, bad gamma (0, < 0, string, int overflow), num_points overflow,
                      negative, float, missing key, wrong type string, ragged, 3-D, beta length, booleans,
                      not an object, deep JSON, int-digit bomb, list bomb, 65 MiB file, text-spec language
semantic          27  not an object (list, string), deep nesting (text, object), huge name/description/spec,
                      Rich markup (accepted as data, printed literally), ESC/NUL/bidi/newline in name, ESC and
                      length in Input descriptions, unknown and too many tags, dimension overflow (2^40, 2^31),
                      negative/bool dimension, NaN, bad UTF-8, non-string key, bytes value, escape in the zip's
                      semantic file, search query too long / too deep
user_data         29  NaN, inf, wrong width, huge CSV, non-numeric, ragged, empty cell, empty file, header only,
                      binary junk, Latin-1, NPY header claiming 8 TB, truncated/junk NPY, object/string/complex/
                      structured arrays, scalar, npz without X, npz bomb (640 MiB of zeros), forged npz size,
                      npz object member, npz with 100 members, junk npz, label count mismatch, labels from .npy,
                      parquet, missing file
=============  =====  ==========================================================================================

Each case asserts the error class and ``code``, that the message names the field or cause, that neither the temp
folder nor the work folder (the dock's extraction dir) appears in the message, and that the work folder is empty
afterwards (no extracted tree, no staging or temp files).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from inputs_cases import CASES, Case, package
from rich.console import Console
from rich.table import Table

from lwlib.errors import LwdockError
from lwlib.learnware import open_learnware
from lwlib.rkme.types import load_spec_file
from lwlib.semantic import SemanticQuery, SemanticSpec
from lwlib.text import display_text
from lwlib.userdata import load_table


def _run(case: Case, built: Any, workdir: Path) -> Any:
    if case.entry == "open_learnware":
        return open_learnware(built, workdir)
    if case.entry == "load_spec_file":
        return load_spec_file(built, expected_type="RKMETableSpecification" if "language" not in case.name else None)
    if case.entry == "parse_untrusted":
        return SemanticSpec.parse_untrusted(built)
    if case.entry == "query":
        return SemanticQuery.from_reference(built)
    if case.entry == "load_table":
        return load_table(built, **case.kwargs)
    raise AssertionError(case.entry)


def _render(text: str) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    table = Table("name")
    table.add_row(text)
    console.print(table)
    console.print(f"learnware {text} submitted")
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", [c for c in CASES if c.entry != "display"], ids=lambda c: f"{c.category}-{c.name}")
def test_hostile_input_is_refused(case: Case, tmp_path: Path) -> None:
    inputs, workdir = tmp_path / "in", tmp_path / "work"
    inputs.mkdir()
    workdir.mkdir()
    built = case.build(inputs)
    before = sorted(p.name for p in inputs.iterdir())
    with pytest.raises(LwdockError) as ei:
        _run(case, built, workdir)
    err = ei.value
    assert isinstance(err, case.error), f"{type(err).__name__}: {err}"
    assert err.code == case.code, str(err)
    for fragment in case.says:
        assert fragment.lower() in err.message.lower(), f"{fragment!r} not in {err.message!r}"
    for host in {str(tmp_path), str(tmp_path.resolve()), str(workdir), "/tmp/", "/root/"}:
        assert host not in err.message, f"host path in the reason: {err.message!r}"
    assert len(err.message) < 1_000, "reasons stay short (never echo the payload)"
    assert list(workdir.iterdir()) == [], "left behind in the work dir"
    assert sorted(p.name for p in inputs.iterdir()) == before, "the entry point wrote next to its input"


def test_rich_markup_in_a_name_is_data_and_prints_literally(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.entry == "display")
    spec = SemanticSpec.parse_untrusted(case.build(tmp_path))
    assert spec.name == "[/bold][red]boom[/]"
    out = _render(display_text(spec.name))  # unescaped, the same call raises rich.errors.MarkupError
    assert "[/bold][red]boom[/]" in out


def test_escape_sequences_from_older_rows_are_stripped_for_display() -> None:
    out = _render(display_text("evil\x1b[2J\x1b]0;title\x07\x9b31m name\nrow"))
    assert "\x1b" not in out and "\x9b" not in out and "evil name row" in out


def test_the_base_package_opens(tmp_path: Path) -> None:
    """The cases mutate this package: it must itself be valid, so each refusal is due to the mutation."""
    lw = open_learnware(package(tmp_path / "lw.zip"), tmp_path / "work")
    assert lw.semantic_spec is not None and lw.semantic_spec.name == "hostile base"
    assert lw.stat_specs["RKMETableSpecification"].z_.shape == (3, 2)
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [lw.id]


def test_suite_size_and_categories() -> None:
    counts: dict[str, int] = {}
    for c in CASES:
        counts[c.category] = counts.get(c.category, 0) + 1
    assert len({(c.category, c.name) for c in CASES}) == len(CASES)
    assert set(counts) == {"archive", "manifest", "requirements", "stat_spec", "semantic", "user_data"}
    assert sum(counts.values()) >= 40 and min(counts.values()) >= 5, json.dumps(counts)
