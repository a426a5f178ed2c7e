"""Display-safe text: names are data, never terminal control or markup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.errors import MarkupError

from lwlib.text import display_text, escape_markdown, escape_markup, has_control_chars, safe_text


def _rich(markup: str) -> str:
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(markup)
    return console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw,clean", [
    ("plain name", "plain name"),
    ("red\x1b[31m text\x1b[0m", "red text"),
    ("title\x1b]0;pwned\x07 set", "title set"),
    ("link \x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "link click"),
    ("clear\x1b[2J\x1b[H", "clear"),
    ("c1 \x9b31m csi", "c1  csi"),
    ("bell\x07 back\x08space nul\x00", "bell backspace nul"),
    ("two\nrows\r\ttab", "two rows  tab"),
    ("bidi \u202eoverride\u2066", "bidi override"),
    ("unicode ünïcödé 数据", "unicode ünïcödé 数据"),
])
def test_safe_text_removes_terminal_control(raw: str, clean: str) -> None:
    assert safe_text(raw) == clean


def test_safe_text_bounds_length_and_accepts_anything() -> None:
    assert safe_text("x" * 500) == "x" * 199 + "…"
    assert safe_text("x" * 500, max_chars=None) == "x" * 500
    assert safe_text(None) == "" and safe_text(42) == "42"
    assert len(safe_text("\x1b[31m" * 100_000 + "tail", max_chars=10)) <= 10


def test_unescaped_markup_breaks_rich_and_escaped_prints_literally() -> None:
    name = "[/bold] model [red]x[/red] \\[i]"
    with pytest.raises(MarkupError):
        _rich(f"learnware {name}")
    assert _rich(f"learnware {escape_markup(name)}") == f"learnware {name}"
    assert _rich(display_text("[bold]x[/bold]\x1b[31m")) == "[bold]x[/bold]"
    # a trailing backslash must not escape the markup that follows it
    assert _rich(f"[bold]{escape_markup('dir' + chr(92))}[/bold] ok") == "dir" + chr(92) + " ok"


def test_escape_markdown_neutralises_tables_links_and_html() -> None:
    out = escape_markdown("a | b [click](http://evil) <script>*bold*")
    assert "|" not in out.replace("\\|", "") and "<script>" not in out
    assert "\\[click\\]\\(http://evil\\)" in out and "\\*bold\\*" in out


def test_has_control_chars() -> None:
    assert not has_control_chars("a [b] c")
    assert has_control_chars("a\nb") and not has_control_chars("a\nb\tc", allow_newlines=True)
    assert has_control_chars("a\x1bb", allow_newlines=True) and has_control_chars("\u202e")
