"""Keep the persisted search index in step with the catalog: incremental at writes, full on rebuild.

:func:`update_index` is the hook the catalog's writer calls after a transaction (a submission, a delete, a
re-check that flips a status); readers call :func:`sync_index` when the catalog's change stamp differs from the
index's. Both compare the catalog's USABLE learnwares with the index's live rows and apply the difference —
the hook's ``added``/``removed`` hints are advisory, the catalog is the truth — so a missed hook, a crash between
the catalog commit and the index update, or two writers racing all converge on the next call.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib.market.scan import catalog_stamp, fold_type, open_read_only, spec_keys
from lwlib.market.store import REFIT_DRIFT, REFIT_MAX_ROWS, IndexStore, fit_group, rows_under
from lwlib.market.kernel import KernelParams

logger = logging.getLogger(__name__)

__all__ = ["IndexUpdate", "sync_index", "update_index", "rebuild_index"]

_FEW_IDS = 2_000  # below this many ids, load their specs by id; above, scan the spec type and select


@dataclass
class IndexUpdate:
    """What an index update did (for logs, the CLI and the benchmark)."""

    added: int = 0
    removed: int = 0
    refitted: list[str] = field(default_factory=list)
    groups: int = 0
    live: int = 0
    seconds: float = 0.0
    changed: bool = False


def _home(settings_or_home: Any) -> Path:
    home = settings_or_home if isinstance(settings_or_home, (str, os.PathLike)) else settings_or_home.home
    return Path(home).expanduser().resolve()


def update_index(settings_or_home: Any, added: Sequence[str] = (), removed: Sequence[str] = ()) -> IndexUpdate:
    """Bring the index up to date after catalog writes (call it after the transaction has committed).

    Parameters
    ----------
    settings_or_home : Settings or path
        The dock home whose catalog changed.
    added, removed : sequence of str
        Ids the caller wrote or deleted (advisory: the update diffs the catalog anyway, so passing nothing, or
        the wrong ids, still ends correct).
    """
    upd = sync_index(settings_or_home)
    assert upd is not None  # waited for the lock
    logger.info("search index updated (hint +%d/-%d): +%d -%d, refitted %s, %d live, %.3fs", len(added),
                len(removed), upd.added, upd.removed, upd.refitted or "none", upd.live, upd.seconds)
    return upd


def rebuild_index(settings_or_home: Any, *, keep_params: bool = False) -> IndexUpdate:
    """Rebuild every group from the catalog (``lwdock catalog rebuild``); ``keep_params`` reuses the kernels."""
    upd = sync_index(settings_or_home, rebuild=True, keep_params=keep_params)
    assert upd is not None  # waited for the lock
    return upd


def sync_index(settings_or_home: Any, *, rebuild: bool = False, keep_params: bool = False, wait: bool = True,
               refit_max_rows: int = REFIT_MAX_ROWS, refit_drift: float = REFIT_DRIFT) -> IndexUpdate | None:
    """Apply the catalog's changes to the index under the writer lock (no-op when the stamp matches).

    Returns None when ``wait`` is False and another process holds the lock (a reader then searches the last
    committed index rather than queueing behind a refit).
    """
    home = _home(settings_or_home)
    store, catalog = IndexStore(home), home / "catalog.duckdb"
    t0 = time.perf_counter()
    upd = IndexUpdate()
    stamp = catalog_stamp(catalog)
    manifest = store.read_manifest()
    if manifest is not None and not rebuild and manifest.get("catalog_stamp") == stamp:
        return _summary(upd, manifest, t0)  # up to date: no lock, no catalog read
    with store.locked(wait=wait) as got:
        if not got:
            return None
        stamp = catalog_stamp(catalog)
        manifest = store.read_manifest()
        if manifest is not None and not rebuild and manifest.get("catalog_stamp") == stamp:
            return _summary(upd, manifest, t0)
        groups_old = {g["key"]: g for g in (manifest or {}).get("groups", [])}
        if not catalog.exists():
            new = {"catalog_stamp": stamp, "groups": []}
            store.commit(new)
            upd.removed = sum(int(store.group_rows(g)[1].sum()) for g in groups_old.values())
            upd.changed = bool(groups_old)
            return _summary(upd, new, t0)
        with open_read_only(catalog) as cat:
            keys = spec_keys(cat)
            wanted = _by_group(keys)
            entries = []
            for key, (stype, d, ids, stored_types) in wanted.items():
                old = groups_old.get(key)
                entries.append(_sync_group(store, cat, old, stype, d, ids, stored_types, upd, rebuild=rebuild,
                                           keep_params=keep_params, refit_max_rows=refit_max_rows,
                                           refit_drift=refit_drift))
            for key, old in groups_old.items():
                if key not in wanted:
                    upd.removed += int(store.group_rows(old)[1].sum())
                    upd.changed = True
        new = {"catalog_stamp": stamp, "groups": entries}
        store.commit(new)
        return _summary(upd, new, t0)


def _summary(upd: IndexUpdate, manifest: dict[str, Any], t0: float) -> IndexUpdate:
    upd.groups = len(manifest.get("groups", []))
    upd.live = sum(int(g.get("n_live", g.get("n_rows", 0))) for g in manifest.get("groups", []))
    upd.seconds = time.perf_counter() - t0
    return upd


def _by_group(keys: dict[str, NDArray[Any]]) -> dict[str, tuple[str, int, list[str], dict[str, list[str]]]]:
    """Catalog ids per index group (fold(spec type), d), in market order, with the stored type of each id."""
    from lwlib.market.store import _slug

    out: dict[str, tuple[str, int, list[str], dict[str, list[str]]]] = {}
    for i, st, d in zip(keys["id"].tolist(), keys["spec_type"].tolist(), keys["d"].tolist()):
        ft = fold_type(st)
        key = _slug(ft, d)
        entry = out.setdefault(key, (ft, int(d), [], {}))
        entry[2].append(i)
        entry[3].setdefault(st, []).append(i)
    return out


def _load_specs(cat: Any, d: int, ids: list[str], stored_types: dict[str, list[str]]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Padded (Z, beta) of ``ids`` in that order, loaded per stored spec type with one vectorised stack each."""
    wanted = set(ids)
    parts = []
    for st, st_ids in stored_types.items():
        sel = [i for i in st_ids if i in wanted]
        if not sel:
            continue
        stack = cat.load_spec_stack(st, d=d, ids=sel if len(sel) <= _FEW_IDS else None, status=None)
        parts.append(stack)
    kmax = max(int(p.Z.shape[1]) for p in parts)
    pos = {i: n for n, i in enumerate(ids)}
    Z, beta = np.zeros((len(ids), kmax, d)), np.zeros((len(ids), kmax))
    for p in parts:
        src_ids = np.asarray(p.ids, dtype=object)
        dest = np.fromiter((pos.get(i, -1) for i in src_ids), dtype=np.int64, count=len(src_ids))
        ok = dest >= 0
        Z[dest[ok], :p.Z.shape[1]] = p.Z[ok]
        beta[dest[ok], :p.beta.shape[1]] = p.beta[ok]
    return Z, beta


def _sync_group(store: IndexStore, cat: Any, old: dict[str, Any] | None, stype: str, d: int, ids: list[str],
                stored_types: dict[str, list[str]], upd: IndexUpdate, *, rebuild: bool, keep_params: bool,
                refit_max_rows: int, refit_drift: float) -> dict[str, Any]:
    live_ids: dict[str, int] = {}
    if old is not None:
        gids, glive = store.group_rows(old)
        live_ids = {bytes(gids[r]).decode(): int(r) for r in np.flatnonzero(glive)}
    want = set(ids)
    added = [i for i in ids if i not in live_ids]
    removed_rows = np.array(sorted(r for i, r in live_ids.items() if i not in want), dtype=np.int64)
    upd.added += len(added)
    upd.removed += int(removed_rows.size)
    if old is not None and not added and removed_rows.size == 0 and not rebuild:
        return {**old, "n_live": len(ids)}
    upd.changed = True
    n_live = len(ids)
    refit = (old is None or rebuild or n_live <= refit_max_rows
             or abs(n_live - int(old["fitted_n"])) > refit_drift * max(1, int(old["fitted_n"])))
    if not refit and added:
        Z_new, b_new = _load_specs(cat, d, added, stored_types)
        if Z_new.shape[1] > int(old["kmax"]):  # a bigger reduced set than the padding allows
            refit = True
    if refit:
        Z, beta = _load_specs(cat, d, ids, stored_types)
        version = 1 if old is None else int(old["version"]) + 1
        if keep_params and old is not None:
            params = store.load_group(old).view.params
            Zt, selfs, sketch = rows_under(params, Z, beta)
            fitted_n = int(old["fitted_n"])
        else:
            params, Zt, selfs, sketch = fit_group(stype, ids, Z, beta)
            fitted_n = n_live
            upd.refitted.append(f"{stype}/d={d}")
        entry = store.write_group(stype, d, version, ids, params, Zt, beta, selfs, sketch, fitted_n)
        return {**entry, "n_live": n_live}
    assert old is not None
    store.clear_rows(old, removed_rows)
    entry = dict(old)
    if added:
        params = _params_of(store, old)
        Zt, selfs, sketch = rows_under(params, Z_new, b_new)
        entry = store.append_rows(old, added, Zt, b_new, selfs, sketch)
    return {**entry, "n_live": n_live}


def _params_of(store: IndexStore, entry: dict[str, Any]) -> KernelParams:
    return store.load_group(entry).view.params
