"""Catalog text is data, never markup: make submitter-written strings safe to print, log and render.

Names, descriptions and reasons come from uploaders and end up in a terminal (Rich), in Prefect Markdown
artifacts and in logs that other users read. Two things can go wrong there:

* **terminal control**: ESC sequences (colours, cursor moves, OSC 8 links, window titles), C1 controls, bidi
  overrides that reorder what the reader sees, NUL/backspace/carriage return that overwrite earlier output;
* **markup**: Rich reads ``[bold]``/``[/bold]`` (an unmatched closing tag raises ``MarkupError`` and broke
  ``lwdock list`` for everyone), Markdown reads ``*``, ``|``, ``[x](y)`` and raw HTML.

:func:`safe_text` removes the first kind and bounds the length; :func:`escape_markup` / :func:`escape_markdown`
neutralise the second for one renderer. :func:`display_text` is both for Rich, the one call the CLI makes for every
catalog string it prints. Validation refuses control characters in new semantic specs as well
(:func:`has_control_chars`); escaping at display covers rows written before that rule and any other text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["safe_text", "escape_markup", "escape_markdown", "display_text", "has_control_chars",
           "BIDI_CONTROLS", "DEFAULT_MAX_CHARS"]

DEFAULT_MAX_CHARS = 200
ELLIPSIS = "…"

#: Unicode bidi embedding/override/isolate marks: they reorder the text a reader sees ("Trojan Source").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC (ESC P/X/^/_ ... ST),
# and two-character escapes (ESC + one byte). The 8-bit C1 forms (CSI = U+009B, OSC = U+009D) likewise.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
_WS_CONTROLS = {"\n": " ", "\r": " ", "\t": " ", "\v": " ", "\f": " "}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI_CONTROLS


def has_control_chars(text: str, *, allow_newlines: bool = False) -> bool:
    """True if ``text`` holds a control character (C0, DEL, C1, lone surrogate) or a bidi control.

    Parameters
    ----------
    text : str
    allow_newlines : bool, default False
        Accept ``\\n``, ``\\r`` and ``\\t`` (multi-line descriptions); ESC and the rest are never accepted.

    Examples
    --------
    >>> has_control_chars("digits svc"), has_control_chars("a\\x1b[31mb"), has_control_chars("a\\nb", allow_newlines=True)
    (False, True, False)
    """
    allowed = "\n\r\t" if allow_newlines else ""
    return any(_is_control(ch) and ch not in allowed for ch in text)


def safe_text(value: Any, *, max_chars: int | None = DEFAULT_MAX_CHARS) -> str:
    """Return ``value`` as one printable line: escape sequences removed, controls dropped, length bounded.

    Whitespace controls (newline, tab, ...) become spaces so a name cannot forge extra table rows; every other
    control character, lone surrogate and bidi mark is removed. Text longer than ``max_chars`` ends in ``…``.
    Markup is left alone: pass the result through :func:`escape_markup` (or use :func:`display_text`) for Rich.

    Parameters
    ----------
    value : object
        Anything; non-strings are converted with ``str`` (``None`` gives ``""``).
    max_chars : int or None, default 200
        Longest result, ellipsis included; ``None`` keeps the whole text.

    Examples
    --------
    >>> safe_text("evil\\x1b[2J\\x1b]0;pwned\\x07 name\\nrow")
    'evil name row'
    >>> safe_text("x" * 10, max_chars=5)
    'xxxx…'
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if max_chars is not None and len(text) > 8 * max_chars + 1024:
        text = text[:8 * max_chars + 1024]  # bound the work on huge inputs; escapes removed below only shorten it
    text = _ANSI.sub("", text)
    text = "".join(_WS_CONTROLS.get(ch, ch) for ch in text if ch in _WS_CONTROLS or not _is_control(ch))
    if max_chars is not None and len(text) > max_chars:
        text = text[:max(0, max_chars - 1)] + ELLIPSIS
    return text


def escape_markup(text: str) -> str:
    """Escape Rich markup so ``[bold]`` / ``[/bold]`` print literally (``rich.markup.escape``).

    Examples
    --------
    >>> escape_markup("[/bold] model")
    '\\\\[/bold] model'
    """
    from rich.markup import escape  # lwlib stays usable without a terminal; rich is a declared dependency

    return escape(text)


def escape_markdown(value: Any, *, max_chars: int | None = DEFAULT_MAX_CHARS) -> str:
    """:func:`safe_text`, then Markdown punctuation backslash-escaped and ``<``/``&`` as entities (no raw HTML).

    For Prefect Markdown artifacts: a name can then not add table cells, links, images or HTML.

    Examples
    --------
    >>> escape_markdown("a|b [x](http://e) <img>")
    'a\\\\|b \\\\[x\\\\]\\\\(http://e\\\\) &lt;img\\\\>'
    """
    text = safe_text(value, max_chars=max_chars).replace("&", "&amp;").replace("<", "&lt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def display_text(value: Any, *, max_chars: int | None = DEFAULT_MAX_CHARS) -> str:
    """The one call for printing catalog text with Rich: :func:`safe_text` then :func:`escape_markup`.

    Examples
    --------
    >>> display_text("[/bold]\\x1b[31mred")
    '\\\\[/bold]red'
    """
    return escape_markup(safe_text(value, max_chars=max_chars))
