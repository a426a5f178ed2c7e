"""Read commands: ``list``, ``show``, ``search``. Direct reads of the catalog and the search index.

No Prefect, no torch, no scikit-learn: the catalog is opened read-only (waiting while a submission writes) and
search runs on :class:`lwlib.market.MarketSnapshot`'s numpy path. Every catalog string goes through
:func:`~deployments.cli.common.show_text`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import typer

from deployments.cli import listing
from deployments.cli.common import (EPILOG, EXIT, HomeOpt, JsonOpt, StatusChoice, VerboseOpt, console, fail,
                                    home_of, print_json, read_json_file, show_text, state)
from deployments.cli.listing import STATUS_STYLE

__all__ = ["STATUS_STYLE", "list_", "show", "search", "register"]


def _status(value: Any) -> str:
    v = getattr(value, "value", value)
    return f"[{STATUS_STYLE.get(str(v), 'white')}]{show_text(v)}[/]"


def _empty_market(home: Path) -> bool:
    return not (home / "catalog.duckdb").exists()


def list_(status: Optional[StatusChoice] = typer.Option(None, "--status", case_sensitive=False,
                                                          help="Only learnwares with this status."),
          limit: int = typer.Option(50, "--limit", "-n", min=0, metavar="N", help="Show at most this many (0 = all)."),
          offset: int = typer.Option(0, "--offset", min=0, metavar="N",
                                     help="Skip this many first (the next page: --offset 50)."),
          as_json: bool = JsonOpt, home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """List the learnwares in the market catalog (oldest first), one page at a time."""
    state.verbose = state.verbose or verbose
    h = home_of(home)
    if _empty_market(h):
        listing.render_empty(as_json)
        return
    from lwlib.market.scan import open_read_only

    st = status.value if status is not None else None
    with open_read_only(h / "catalog.duckdb") as cat:  # waits for a writer; one-line error if it cannot open
        total, cols, rows = listing.query(cat._con, status=st, limit=limit, offset=offset,  # noqa: SLF001
                                          full=as_json)
    listing.render(total, cols, rows, status=st, limit=limit, offset=offset, as_json=as_json)


def _record_json(r: Any) -> dict[str, Any]:
    d = asdict(r)
    d["status"] = r.status.value
    d["scenarios"] = list(r.scenarios)
    for k in ("created_at", "updated_at"):
        d[k] = d[k].isoformat() if d[k] is not None else None
    return d


def _resolve(h: Path, text: str) -> str:
    from lwlib.market.scan import open_read_only, resolve_ids

    if _empty_market(h):
        fail(f"no learnware '{text}': the market is empty", EXIT.NOT_FOUND)
    with open_read_only(h / "catalog.duckdb") as cat:
        ids = resolve_ids(cat, text)
    if not ids:
        fail(f"no learnware matches '{text}' (an id, an id prefix of 4+ characters, or a name); "
             "`lwdock list` shows them", EXIT.NOT_FOUND)
    if len(ids) > 1:
        fail(f"'{text}' matches {len(ids)} learnwares ({', '.join(i[:12] for i in ids[:3])}…); give more "
             "characters of the id", EXIT.NOT_FOUND)
    return ids[0]


def show(learnware: str = typer.Argument(..., metavar="ID_OR_NAME", help="Id, id prefix or exact name."),
         as_json: bool = JsonOpt, home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Show one learnware: status and reason, semantic specification, registry location, check history."""
    state.verbose = state.verbose or verbose
    h = home_of(home)
    lid = _resolve(h, learnware)
    from lwlib.market.scan import open_read_only

    with open_read_only(h / "catalog.duckdb") as cat:
        rec, history = cat.get(lid), cat.history(lid)
    if rec is None:
        fail(f"learnware {lid[:12]} was deleted meanwhile", EXIT.NOT_FOUND)
    if as_json:
        print_json({**_record_json(rec), "history": [
            {**asdict(c), "status": c.status.value,
             "created_at": c.created_at.isoformat() if c.created_at else None} for c in history]})
        return
    from rich.table import Table

    table = Table(show_header=False, title=show_text(rec.name), title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("id", rec.id)
    table.add_row("status", _status(rec.status))
    if rec.reason:
        table.add_row("reason", show_text(rec.reason, max_chars=2000))
    for k in ("data_type", "task_type", "library_type", "license", "description", "input_dim", "output_dim",
              "spec_type", "spec_dim", "spec_k", "runtime_key", "registry_name", "registry_version", "registry_uri"):
        v = getattr(rec, k)
        table.add_row(k, show_text("-" if v is None else v, max_chars=1000))
    table.add_row("scenarios", show_text(", ".join(rec.scenarios) or "-"))
    console.print(table)
    hist = Table("when (UTC)", "kind", "status", "seconds", "reason", title="Check history", title_justify="left")
    hist.columns[-1].overflow = "fold"
    for c in history:
        hist.add_row(str(c.created_at)[:19], show_text(c.kind), _status(c.status), f"{c.duration_s or 0:.1f}",
                     show_text(c.reason or "", max_chars=1000))
    console.print(hist)


def search(data: Optional[Path] = typer.Option(None, "--data", "-d", metavar="FILE",
                                               help="Your unlabelled rows: .csv, .npy or .npz (array X)."),
           rkme: Optional[Path] = typer.Option(None, "--rkme", metavar="FILE",
                                               help="Your RKME (reference JSON) instead of --data."),
           semantic: Optional[Path] = typer.Option(None, "--semantic", "-s", metavar="FILE",
                                                   help="Semantic requirement JSON (reference format)."),
           labels: Optional[Path] = typer.Option(None, "--labels", "-l", metavar="FILE",
                                                 help="A few labelled rows (.npz with X and y, or .csv with y last): "
                                                      "they refine the ranking (slower: loads the label-aware "
                                                      "search)."),
           top: int = typer.Option(10, "--top", "-k", min=1, max=1000, metavar="N", help="Single matches to show."),
           max_mixture: int = typer.Option(5, "--max-mixture", min=0, max=10, metavar="N",
                                           help="Largest mixture to look for (0 or 1: none)."),
           as_json: bool = JsonOpt, home: Optional[Path] = HomeOpt, verbose: bool = VerboseOpt) -> None:
    """Find the learnwares (and the best weighted mixture) that fit your data. Your data stay here: only
    their RKME, computed on this machine, is compared with the market."""
    state.verbose = state.verbose or verbose
    if data is None and rkme is None and semantic is None:
        fail("give --data FILE (your rows), --rkme FILE or --semantic FILE: there is nothing to search for")
    if data is not None and rkme is not None:
        fail("give either --data or --rkme, not both")
    h = home_of(home)
    query = read_json_file(semantic, "semantic requirement")
    if query is not None and not isinstance(query, dict):
        fail(f"semantic requirement {semantic} must be a JSON object (reference format), not "
             f"{type(query).__name__}")
    X = spec = X_l = y_l = None
    if data is not None or labels is not None:
        from lwlib.userdata import load_table

        if data is not None:
            X, _ = load_table(data)
        if labels is not None:
            X_l, y_l = load_table(labels, labelled=True)
    if rkme is not None:
        from lwlib.market.userspec import rkme_from_dict

        spec = rkme_from_dict(read_json_file(rkme, "RKME"))
    if _empty_market(h):
        _say_nothing("The market is empty: submit a learnware with `lwdock submit FILE.zip`.", as_json)
        raise typer.Exit(EXIT.NOTHING)
    from lwlib.market import MarketSnapshot
    from lwlib.market._pure import pure_search_module

    snap = MarketSnapshot.open(h)
    req = pure_search_module("requirement").Requirement(semantic=query, X=X, rkme=spec, X_labels=X_l, y_labels=y_l)
    if req.n_labels:  # the deploying stage's search (label-aware specs); imports torch, hence only then
        from lwlib.deployment import search_market

        result = search_market(snap, req, top_k=top, max_mixture=max_mixture)
    else:
        result = snap.search(req, top_k=top, max_mixture=max_mixture)
    ids = [m.learnware_id for m in result.singles] + [i for m in result.mixtures for i in m.learnware_ids] + \
        [m.learnware_id for m in result.semantic[:top]]
    names = snap.names(list(dict.fromkeys(ids)))
    found = bool(result.singles or (result.semantic and X is None and spec is None))
    if as_json:
        print_json({**result.to_dict(), "names": names})
    else:
        _print_result(result, names, statistical=X is not None or spec is not None, top=top)
    if not found:
        raise typer.Exit(EXIT.NOTHING)


def _say_nothing(msg: str, as_json: bool) -> None:
    if as_json:
        print_json({"singles": [], "mixtures": [], "semantic": [], "message": msg})
    else:
        console.print(f"[yellow]{show_text(msg, max_chars=None)}[/yellow]")


def _print_result(result: Any, names: dict[str, str], *, statistical: bool, top: int) -> None:
    from rich.table import Table

    def name(i: str) -> str:
        return show_text(names.get(i, "?"), max_chars=40)

    if result.singles:
        table = Table("rank", "name", "id", "score", "MMD²", title="Single matches", title_justify="left")
        table.columns[1].overflow, table.columns[2].no_wrap = "fold", True
        for m in result.singles:
            table.add_row(str(m.rank + 1), name(m.learnware_id), m.learnware_id[:12], f"{m.score:.3f}",
                          f"{m.mmd2:.5f}")
        console.print(table)
        if result.mixtures:
            mix = Table("learnwares", "ids", "weights", "score", "MMD²", title="Best mixture", title_justify="left")
            for m in result.mixtures:
                mix.add_row(" + ".join(name(i) for i in m.learnware_ids), " + ".join(i[:8] for i in m.learnware_ids),
                            ", ".join(f"{w:.2f}" for w in m.weights), f"{m.score:.3f}", f"{m.mmd2:.5f}")
            console.print(mix)
        else:
            console.print("No mixture: no weighted combination of learnwares fits your data better than the best "
                          "single one.")
    elif result.semantic and not statistical:
        table = Table("name", "id", "text score", "matched on", title="Semantic matches", title_justify="left")
        for m in result.semantic[:top]:
            table.add_row(name(m.learnware_id), m.learnware_id[:12], f"{m.score:.2f}", show_text(m.matched_on))
        console.print(table)
        if len(result.semantic) > top:
            console.print(f"{len(result.semantic) - top} more semantic matches (raise --top to see them).")
    if not result.singles:
        console.print(f"[yellow]{show_text(result.message, max_chars=None)}[/yellow]")
    elif result.message:
        console.print(show_text(result.message, max_chars=None))


def register(app: typer.Typer) -> None:
    app.command("list", epilog=EPILOG)(list_)
    app.command("show", epilog=EPILOG)(show)
    app.command("search", epilog=EPILOG)(search)
