"""``lwdock list``: one page of the catalog, read with one short read-only connection and printed as a table.

Why a module of its own, free of typer, pydantic, numpy and Rich: ``lwdock list`` should answer in well under a second
at 10⁵ learnwares, and almost all of a second went on start-up, not on the read. Typer 0.29 coerces every option
through pydantic ``TypeAdapter``s (~150 ms with the import), ``import duckdb`` costs ~230 ms in its Python layer
(relational API, a package-metadata lookup for its version) where the engine extension ``_duckdb`` it wraps costs
~25 ms, and ``lwlib.catalog`` brings numpy (~280 ms). So :func:`fast_main` parses the few options ``list`` has and
reads through the engine extension directly; anything it does not recognise (``--help``, a bad value, a catalog
that is busy, missing a migration or unreadable) is handed back to Typer, whose ``list`` command prints the same
page through :func:`query` and :func:`render` or the one-line error. Both paths select only the columns shown
(every record column with ``--json``) and only the page asked for (``--limit``/``--offset``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from datetime import timezone
from pathlib import Path
from typing import Any, Optional

__all__ = ["STATUS_STYLE", "STATUSES", "TABLE_COLUMNS", "RECORD_FIELDS", "fast_main", "query", "render", "render_empty",
           "table_text"]

STATUS_STYLE = {"USABLE": "green", "NONUSABLE": "yellow", "INVALID": "red"}
STATUSES = tuple(STATUS_STYLE)
#: What the table shows, in the order :func:`render` reads it.
TABLE_COLUMNS = ("name", "id", "status", "data_type", "task_type", "spec_dim", "registry_name", "registry_version")
#: ``--json``: the fields of ``lwlib.catalog.LearnwareRecord`` in its order (the JSON ``list`` always printed).
RECORD_FIELDS = ("id", "name", "status", "version", "reason", "data_type", "task_type", "library_type", "scenarios",
                 "license", "description", "input_dim", "output_dim", "spec_type", "spec_dim", "spec_k",
                 "runtime_key", "registry_name", "registry_version", "registry_uri", "zip_path", "semantic",
                 "created_at", "updated_at")
EMPTY = "The market is empty: submit a learnware with `lwdock submit FILE.zip`."
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}  # as lwlib.catalog


def query(con: Any, *, status: Optional[str], limit: int, offset: int = 0, full: bool = False
          ) -> tuple[int, tuple[str, ...], list[tuple[Any, ...]]]:
    """(total matching, column names, rows of one page in market order) on an open DuckDB connection.

    ``limit`` 0 means every row from ``offset`` on. ``full`` selects every record field (``--json``).
    """
    where, params = (" WHERE status = ?", [status]) if status else ("", [])
    page: list[Any] = list(params)
    total = int(con.execute(f"SELECT count(*) FROM learnwares{where}", params).fetchall()[0][0])
    cols = RECORD_FIELDS if full else TABLE_COLUMNS
    sql = f"SELECT {', '.join(cols)} FROM learnwares{where} ORDER BY created_at, id"
    if limit:
        sql += " LIMIT ?"
        page.append(int(limit))
    if offset:
        sql += " OFFSET ?"
        page.append(int(offset))
    return total, cols, con.execute(sql, page).fetchall()


def _json_row(cols: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as ``lwlib.catalog.LearnwareRecord`` prints through ``dataclasses.asdict`` (times in UTC)."""
    d = dict(zip(cols, row))
    d["scenarios"] = list(d["scenarios"] or ())
    d["semantic"] = json.loads(d["semantic"]) if d["semantic"] is not None else None
    for k in ("created_at", "updated_at"):
        t = d[k]
        d[k] = None if t is None else (t.replace(tzinfo=timezone.utc) if t.tzinfo is None
                                       else t.astimezone(timezone.utc)).isoformat()
    return d


def render(total: int, cols: tuple[str, ...], rows: list[tuple[Any, ...]], *, status: Optional[str], limit: int,
           offset: int, as_json: bool) -> None:
    """Print one page: JSON (every record field) or a table with what to type for the next page."""
    if as_json:
        _write_json({"total": total, "learnwares": [_json_row(cols, r) for r in rows]})
        return
    from lwlib.text import safe_text

    first, last = offset + 1, offset + len(rows)
    shown = str(total) if len(rows) == total else (f"{first}–{last} of {total}" if rows else f"none of {total}")
    body = [[safe_text(name, max_chars=48), str(lid)[:12], safe_text(st), safe_text(data or "-"),
             safe_text(task or "-"), str(dim or "-"),
             safe_text(f"{reg}@{reg_version}" if reg_version else (reg or "-"), max_chars=60)]
            for name, lid, st, data, task, dim, reg, reg_version in rows]
    out = table_text(f"{shown} learnwares" + (f" ({status})" if status else ""),
                     ["name", "id", "status", "data", "task", "dim", "registry"], body,
                     min_widths=[16, 12, 0, 0, 0, 0, 0], no_wrap=[False, True] + [False] * 5,
                     width=_width(), colour=_colour(), status_col=2)
    if last < total and rows:
        out += (f"{total - last} more: --offset {last} shows the next page, --limit 0 all of them, --status "
                "filters.\n")
    sys.stdout.write(out)


# ---------------------------------------------------------------------------------------------- the table
# Why not Rich here: laying out 50 rows × 7 cells took ~0.18 s of Rich's measuring and segment machinery, plus
# ~0.07 s to import it: half of the command. This prints the same thing (Rich's HEAVY_HEAD box, left title,
# columns folded to fit the terminal, status in its colour on a terminal) in a few milliseconds.
_ANSI_STATUS = {"USABLE": "32", "NONUSABLE": "33", "INVALID": "31"}


def _width() -> int:
    """Terminal columns as Rich finds them: $COLUMNS, else the terminal's size, else 80."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        import shutil

        return shutil.get_terminal_size((80, 24)).columns
    return 80


def _colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _cell_len(text: str) -> int:
    """Terminal cells a string takes: wide East Asian characters two, combining marks none."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fold(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` cells: wrapped at spaces, words longer than a line cut (Rich's "fold")."""
    if _cell_len(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        cand = f"{line} {word}" if line else word
        if _cell_len(cand) <= width:
            line = cand
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:  # start the word on a new line, cut where it does not fit
            if _cell_len(line + ch) > width:
                lines.append(line)
                line = ""
            line += ch
    lines.append(line)
    return lines


def _fit(natural: list[int], floors: list[int], fixed: list[bool], room: int) -> list[int]:
    """Column widths within ``room``: the widest wrappable columns give way first, none below its floor."""
    widths = list(natural)
    while sum(widths) > room:
        free = [i for i, w in enumerate(widths) if not fixed[i] and w > floors[i]]
        if not free:
            break
        top = max(widths[i] for i in free)
        widest = [i for i in free if widths[i] == top]
        below = max([widths[i] for i in free if widths[i] < top] + [max(floors[i] for i in widest)])
        cut = min(sum(widths) - room, (top - below) * len(widest))  # down to the next widest, or just enough
        for n, i in enumerate(widest):
            widths[i] -= cut // len(widest) + (1 if n < cut % len(widest) else 0)
    return widths


def table_text(title: str, headers: list[str], rows: list[list[str]], *, min_widths: list[int],
               no_wrap: list[bool], width: int, colour: bool, status_col: int | None = None) -> str:
    """A table as text: title line, heavy header box, one row of cells per record, folded to ``width``."""
    n = len(headers)
    natural = [max([_cell_len(headers[j]), min_widths[j]] + [_cell_len(r[j]) for r in rows]) for j in range(n)]
    floors = [natural[j] if no_wrap[j] else max(1, min(natural[j], min_widths[j] or _cell_len(headers[j])))
              for j in range(n)]
    w = _fit(natural, floors, no_wrap, max(n, width - 3 * n - 1))

    def pad(text: str, j: int) -> str:
        return text + " " * (w[j] - _cell_len(text))

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (x + 2) for x in w) + right + "\n"

    def cells(values: list[str], edge: str, style: Optional[list[str]] = None) -> str:
        folded = [_fold(v, w[j]) if not no_wrap[j] else [v[:w[j]]] for j, v in enumerate(values)]
        out = ""
        for k in range(max(len(f) for f in folded)):
            parts = []
            for j, f in enumerate(folded):
                text = pad(f[k] if k < len(f) else "", j)
                if colour and style and style[j] and k < len(f):
                    text = f"\x1b[{style[j]}m{text}\x1b[0m"
                parts.append(f" {text} ")
            out += edge + edge.join(parts) + edge + "\n"
        return out

    head_style = ["1"] * n if colour else None
    out = (f"\x1b[3m{title}\x1b[0m\n" if colour else title + "\n") + line("┏", "━", "┳", "┓")
    out += cells(headers, "┃", head_style) + line("┡", "━", "╇", "┩")
    for r in rows:
        style = [""] * n
        if status_col is not None:
            style[status_col] = _ANSI_STATUS.get(r[status_col], "")
        out += cells(r, "│", style)
    return out + line("└", "─", "┴", "┘")


def render_empty(as_json: bool) -> None:
    if as_json:
        _write_json({"total": 0, "learnwares": []})
    else:
        sys.stdout.write(EMPTY + "\n")


def _write_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------- the fast path
def _parse(args: list[str]) -> Optional[dict[str, Any]]:
    """The options of ``list`` in their plain spellings, or None for anything else (Typer then parses it)."""
    opts: dict[str, Any] = {"home": None, "status": None, "limit": 50, "offset": 0, "as_json": False}
    it = iter(args)
    for a in it:
        key, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
        if key == "--json" and not eq:
            opts["as_json"] = True
            continue
        if key not in ("--home", "--status", "--limit", "-n", "--offset"):
            return None
        if not eq:
            value = next(it, "")
            if not value or value.startswith("-"):
                return None
        if key == "--home":
            opts["home"] = value
        elif key == "--status":
            if value.upper() not in STATUSES:
                return None
            opts["status"] = value.upper()
        else:
            if not value.isdigit():
                return None
            opts["offset" if key == "--offset" else "limit"] = int(value)
    return opts


def _engine() -> Any:
    """DuckDB's engine extension without the ``duckdb`` package's Python layer (the package if that moved)."""
    try:
        import _duckdb

        return _duckdb
    except ImportError:  # pragma: no cover - another duckdb layout: the package itself
        import duckdb

        return duckdb


def _migrations_current(con: Any) -> bool:
    """True when the catalog has exactly this code's migrations applied, hashes included (as ``Catalog.open``).

    Reads the migration files beside ``lwlib.catalog`` without importing it (that imports numpy and duckdb).
    """
    import lwlib

    folder = Path(lwlib.__file__).resolve().parent / "catalog" / "migrations"
    files = {}
    for p in sorted(folder.glob("*.sql")):
        head = p.name.split("_", 1)[0]
        if not head.isdigit():
            return False
        files[int(head)] = (p.name, hashlib.sha256(p.read_bytes()).hexdigest())
    applied = {int(v): (n, h) for v, n, h in
               con.execute("SELECT version, name, sha256 FROM schema_migrations ORDER BY version").fetchall()}
    return bool(files) and applied == files


def fast_main(args: list[str]) -> Optional[int]:
    """Run ``lwdock list ARGS`` without Typer and return its exit code, or None to let Typer run it.

    None (before anything is printed) for any option this parser does not take and whenever the catalog cannot be
    read at once: locked by a writer, a migration pending, damaged. Typer's command then waits, retries or prints
    the one-line error exactly as before.
    """
    opts = _parse(args)
    if opts is None:
        return None
    env_home = os.environ.get("LWDOCK_HOME")
    home = Path(opts["home"] or env_home or Path.home() / ".lwdock").expanduser().resolve()
    catalog = home / "catalog.duckdb"
    if not catalog.exists():
        render_empty(opts["as_json"])
        return 0
    try:
        con = _engine().connect(str(catalog), read_only=True, config=dict(_DUCKDB_CONFIG))
    except Exception:  # noqa: BLE001 - busy or unreadable: Typer's path retries and explains
        return None
    try:
        if not _migrations_current(con):
            return None
        total, cols, rows = query(con, status=opts["status"], limit=opts["limit"], offset=opts["offset"],
                                  full=opts["as_json"])
    except Exception:  # noqa: BLE001 - same: nothing printed yet, the full path reports it
        return None
    finally:
        con.close()
    render(total, cols, rows, status=opts["status"], limit=opts["limit"], offset=opts["offset"],
           as_json=opts["as_json"])
    return 0
