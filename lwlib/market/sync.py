"""Keep the persisted search index in step with the catalog: incremental at writes, full on rebuild.

:func:`update_index` is the hook the catalog's writer calls after a transaction (a submission, a delete, a
re-check that flips a status); readers call :func:`sync_index` when the catalog's change stamp differs from the
index's. The catalog is always the truth:

* with hints (``added``/``removed`` ids), only those ids are looked up, and the change is applied only if it
  explains the catalog's whole USABLE set — a [count, xor-of-hashes] digest of the USABLE ids must equal the
  index's digest updated by the hinted changes; otherwise,
* the full difference between the catalog's USABLE specs and the index's live rows is applied (sort-based, no
  per-learnware Python work).

So a missed hook, wrong hints, a crash between the catalog commit and the index update, or two writers racing
all converge on the next call.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib.market.scan import (catalog_stamp, fold_type, hinted_state, open_read_only, spec_keys, stream_spec_arrays,
                               usable_digest)
from lwlib.market.store import (REFIT_DRIFT, REFIT_MAX_ROWS, IndexCorruptError, IndexStore, _slug, fit_group,
                                rows_under)

logger = logging.getLogger(__name__)

__all__ = ["IndexUpdate", "sync_index", "update_index", "rebuild_index"]



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
    path: str = "none"  # "none" (up to date), "hints", "diff", "rebuild" or "failed"


@dataclass
class _GroupPlan:
    spec_type: str
    d: int
    add: list[str] = field(default_factory=list)  # ids to append, market order
    add_types: dict[str, list[str]] = field(default_factory=dict)  # stored spec type → ids (for loading)
    remove: list[int] = field(default_factory=list)  # rows to clear
    n_live: int = 0


def _home(settings_or_home: Any) -> Path:
    home = settings_or_home if isinstance(settings_or_home, (str, os.PathLike)) else settings_or_home.home
    return Path(home).expanduser().resolve()


def update_index(settings_or_home: Any, added: Sequence[str] = (), removed: Sequence[str] = (), *,
                 catalog: Any = None, strict: bool = False, refit_max_rows: int = REFIT_MAX_ROWS,
                 refit_drift: float = REFIT_DRIFT) -> IndexUpdate:
    """Bring the index up to date after catalog writes; call it after the transaction has committed.

    Parameters
    ----------
    settings_or_home : Settings or path
        The dock home whose catalog changed.
    added, removed : sequence of str
        Ids written (submitted, re-checked) or deleted. They make the update O(changes); wrong or missing hints
        only cost a full comparison, never a wrong index.
    catalog : lwlib.catalog.Catalog, optional
        The writer's still-open catalog (after COMMIT): reused instead of a new read-only open, which costs
        more than the rest of an update on a big catalog. Without it, call this after closing the writer's
        connection (one process cannot hold the file in two modes).
    strict : bool, default False
        Raise on failure. By default a failed update is logged and reported (``path="failed"``) but never fails
        the catalog write that called it: the index is derived data, and the next reader or update re-syncs it.
    refit_max_rows, refit_drift : int, float
        A feature space is refitted (kernel re-chosen, exact) when it has at most ``refit_max_rows`` live
        learnwares or its size drifted by more than ``refit_drift`` since the last fit; otherwise new rows are
        computed under the frozen kernel (see :mod:`lwlib.market.store`).
    """
    try:
        upd = _waited(_sync(_home(settings_or_home), hints=[*added, *removed], wait=True, catalog_obj=catalog,
                            refit_max_rows=refit_max_rows, refit_drift=refit_drift))
    except Exception as exc:
        if strict:
            raise
        logger.warning("search index not updated (%s: %s); the next search re-syncs it from the catalog",
                       type(exc).__name__, exc)
        return IndexUpdate(path="failed")
    logger.info("search index: +%d -%d via %s, refitted %s, %d live, %.3fs", upd.added, upd.removed, upd.path,
                upd.refitted or "none", upd.live, upd.seconds)
    return upd


def rebuild_index(settings_or_home: Any, *, keep_params: bool = False) -> IndexUpdate:
    """Rebuild every group from the catalog (``lwdock catalog rebuild``); ``keep_params`` reuses the kernels."""
    return _waited(_sync(_home(settings_or_home), rebuild=True, keep_params=keep_params, wait=True))


def _waited(upd: IndexUpdate | None) -> IndexUpdate:
    if upd is None:  # pragma: no cover - only wait=False returns None
        raise RuntimeError("index update returned without the writer lock")
    return upd


def sync_index(settings_or_home: Any, *, wait: bool = True, refit_max_rows: int = REFIT_MAX_ROWS,
               refit_drift: float = REFIT_DRIFT) -> IndexUpdate | None:
    """Apply the catalog's changes to the index (a no-op costing two ``stat`` calls when it is up to date).

    Returns None when ``wait`` is False and another process holds the writer lock: a reader then searches the
    last committed index instead of queueing behind a refit.
    """
    return _sync(_home(settings_or_home), wait=wait, refit_max_rows=refit_max_rows, refit_drift=refit_drift)


def _sync(home: Path, *, hints: Sequence[str] = (), rebuild: bool = False, keep_params: bool = False,
          wait: bool = True, catalog_obj: Any = None, refit_max_rows: int = REFIT_MAX_ROWS,
          refit_drift: float = REFIT_DRIFT) -> IndexUpdate | None:
    try:
        return _sync_once(home, hints=hints, rebuild=rebuild, keep_params=keep_params, wait=wait,
                          catalog_obj=catalog_obj, refit_max_rows=refit_max_rows, refit_drift=refit_drift)
    except IndexCorruptError as exc:
        logger.warning("search index under %s is damaged (%s); rebuilding it from the catalog", home, exc)
        return _sync_once(home, rebuild=True, wait=wait, catalog_obj=catalog_obj, refit_max_rows=refit_max_rows,
                          refit_drift=refit_drift)


def _sync_once(home: Path, *, hints: Sequence[str] = (), rebuild: bool = False, keep_params: bool = False,
               wait: bool = True, catalog_obj: Any = None, refit_max_rows: int = REFIT_MAX_ROWS,
               refit_drift: float = REFIT_DRIFT) -> IndexUpdate | None:
    store, catalog = IndexStore(home), home / "catalog.duckdb"
    t0 = time.perf_counter()
    upd = IndexUpdate()
    manifest = store.read_manifest()
    if manifest is not None and not rebuild and manifest.get("catalog_stamp") == catalog_stamp(catalog):
        return _summary(upd, manifest, t0)
    with store.locked(wait=wait) as got:
        if not got:
            return None
        stamp = catalog_stamp(catalog)  # before reading: a write after this makes the next reader sync again
        manifest = store.read_manifest()
        if manifest is not None and not rebuild and manifest.get("catalog_stamp") == stamp:
            return _summary(upd, manifest, t0)
        old = {g["key"]: g for g in (manifest or {}).get("groups", [])}
        if not catalog.exists():
            upd.removed = sum(int(g.get("n_live", 0)) for g in old.values())
            upd.changed, upd.path = bool(old), "diff"
            new: dict[str, Any] = {"catalog_stamp": stamp, "groups": [], "usable_digest": [0, 0]}
            store.commit(new)
            return _summary(upd, new, t0)
        with (nullcontext(catalog_obj) if catalog_obj is not None else open_read_only(catalog)) as cat:
            digest = usable_digest(cat)
            plans = None
            if hints and manifest is not None and not rebuild and manifest.get("usable_digest"):
                plans = _plan_from_hints(cat, store, old, list(dict.fromkeys(hints)), manifest["usable_digest"],
                                         digest)
                upd.path = "hints" if plans is not None else upd.path
            if plans is None:
                plans = _plan_full(cat, store, {} if rebuild else old)  # a rebuild never reads the old rows
                upd.path = "rebuild" if rebuild else "diff"
            entries = []
            for key, plan in plans.items():
                if plan.n_live > 0:
                    entries.append(_apply(store, cat, old.get(key), plan, upd, rebuild=rebuild,
                                          keep_params=keep_params, refit_max_rows=refit_max_rows,
                                          refit_drift=refit_drift))
                elif key in old:  # no USABLE learnware left in this feature space
                    upd.removed += len(plan.remove)
                    upd.changed = True
            if not rebuild:
                entries += [g for key, g in old.items() if key not in plans]
        new = {"catalog_stamp": stamp, "groups": entries, "usable_digest": digest}
        store.commit(new)
        return _summary(upd, new, t0)


def _summary(upd: IndexUpdate, manifest: dict[str, Any], t0: float) -> IndexUpdate:
    upd.groups = len(manifest.get("groups", []))
    upd.live = sum(int(g.get("n_live", 0)) for g in manifest.get("groups", []))
    upd.seconds = time.perf_counter() - t0
    return upd


def _member(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.bool_]:
    """``a[i] in b`` for byte-string arrays, by sorting (np.isin is slow on strings)."""
    if a.size == 0 or b.size == 0:
        return np.zeros(a.size, dtype=bool)
    bs = np.sort(b)
    pos = np.minimum(np.searchsorted(bs, a), bs.size - 1)
    return np.asarray(bs[pos] == a, dtype=bool)


def _plan_full(cat: Any, store: IndexStore, old: dict[str, dict[str, Any]]) -> dict[str, _GroupPlan]:
    """The full difference between the catalog's USABLE specs and the index's live rows, per group."""
    keys = spec_keys(cat)
    plans: dict[str, _GroupPlan] = {}
    folded = np.array([fold_type(t) for t in keys["spec_type"].tolist()], dtype=object) \
        if keys["id"].size else np.zeros(0, dtype=object)
    for ft in sorted(set(folded.tolist())):
        for d in np.unique(keys["d"][folded == ft]).tolist():
            sel = (folded == ft) & (keys["d"] == d)
            cat_ids, types = keys["id"][sel], keys["spec_type"][sel]
            key = _slug(ft, d)
            plan = _GroupPlan(ft, int(d), n_live=int(sel.sum()))
            live_rows = np.zeros(0, np.int64)
            live_ids = np.zeros(0, "S64")
            if key in old:
                gids, glive = store.group_rows(old[key])
                live_rows = np.flatnonzero(glive)
                live_ids = np.asarray(gids[live_rows])
            new_mask = ~_member(cat_ids, live_ids)
            plan.add = [i.decode() for i in cat_ids[new_mask].tolist()]
            for t in set(types[new_mask].tolist()):
                plan.add_types[t] = [i.decode() for i in cat_ids[new_mask & (types == t)].tolist()]
            plan.remove = live_rows[~_member(live_ids, cat_ids)].tolist()
            plans[key] = plan
    for key, g in old.items():  # groups with no USABLE learnware left
        if key not in plans:
            gids, glive = store.group_rows(g)
            plans[key] = _GroupPlan(g["spec_type"], int(g["d"]), remove=np.flatnonzero(glive).tolist(), n_live=0)
    return plans


def _plan_from_hints(cat: Any, store: IndexStore, old: dict[str, dict[str, Any]], ids: list[str],
                     old_digest: list[int], digest: list[int]) -> dict[str, _GroupPlan] | None:
    """Plans touching only ``ids``, or None when they do not explain the catalog's change (then: full diff)."""
    st = hinted_state(cat, ids)
    n, x = int(old_digest[0]), int(old_digest[1])
    plans: dict[str, _GroupPlan] = {}
    spec_null = np.ma.getmaskarray(st["spec_type"]) if st["id"].size else np.zeros(0, bool)
    for i, h, usable, stype, d, no_spec in zip(st["id"].tolist(), st["h"].tolist(), st["usable"].tolist(),
                                               np.ma.getdata(st["spec_type"]).tolist(),
                                               np.ma.getdata(st["d"]).tolist(), spec_null.tolist()):
        where = _find_live(store, old, i)
        indexable = bool(usable) and not no_spec
        if bool(usable) and not indexable:
            return None  # USABLE without a searchable spec: not tracked by the index's rows, compare fully
        if indexable == (where is not None):
            continue
        n += 1 if indexable else -1
        x ^= int(h)
        if indexable:
            ft = fold_type(str(stype))
            plan = plans.setdefault(_slug(ft, int(d)), _GroupPlan(ft, int(d)))
            plan.add.append(i)
            plan.add_types.setdefault(str(stype), []).append(i)
        else:
            key, row = where  # type: ignore[misc]
            g = old[key]
            plans.setdefault(key, _GroupPlan(g["spec_type"], int(g["d"]))).remove.append(row)
    if [n, x] != [int(digest[0]), int(digest[1])]:
        return None
    for key, plan in plans.items():
        plan.n_live = int(old[key].get("n_live", 0)) if key in old else 0
        plan.n_live += len(plan.add) - len(plan.remove)
    return plans


def _find_live(store: IndexStore, old: dict[str, dict[str, Any]], lid: str) -> tuple[str, int] | None:
    target = np.bytes_(lid.encode())
    for key, g in old.items():
        gids, glive = store.group_rows(g)
        rows = np.flatnonzero((np.asarray(gids) == target) & glive)
        if rows.size:
            return key, int(rows[0])
    return None


def _load_specs(cat: Any, d: int, ids: list[str], stored_types: dict[str, list[str]]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Padded (Z, beta) of ``ids`` in that order, streamed per stored spec type (a few ids are selected by id)."""
    want = np.asarray(ids, dtype="S64")
    arrays = []
    for t, t_ids in stored_types.items():
        if t_ids:
            Zt, bt = stream_spec_arrays(cat, t, d, want)
            arrays.append((Zt, bt, _member(want, np.asarray(t_ids, dtype="S64"))))
    if len(arrays) == 1 and bool(arrays[0][2].all()):
        return arrays[0][0], arrays[0][1]
    kmax = max(a[0].shape[1] for a in arrays)
    Z, beta = np.zeros((len(ids), kmax, d)), np.zeros((len(ids), kmax))
    for Zt, bt, mask in arrays:  # a learnware's chosen spec type decides which stream its row comes from
        Z[mask, :Zt.shape[1]] = Zt[mask]
        beta[mask, :bt.shape[1]] = bt[mask]
    return Z, beta


def _apply(store: IndexStore, cat: Any, old: dict[str, Any] | None, plan: _GroupPlan, upd: IndexUpdate, *,
           rebuild: bool, keep_params: bool, refit_max_rows: int, refit_drift: float) -> dict[str, Any]:
    """Write one group's change: append/clear rows under the frozen kernel, or refit the group."""
    upd.added += len(plan.add)
    upd.removed += len(plan.remove)
    if old is not None and not plan.add and not plan.remove and not rebuild:
        return {**old, "n_live": plan.n_live}
    upd.changed = True
    refit = (old is None or rebuild or plan.n_live <= refit_max_rows
             or abs(plan.n_live - int(old["fitted_n"])) > refit_drift * max(1, int(old["fitted_n"])))
    Z_new = b_new = None
    if not refit and plan.add:
        Z_new, b_new = _load_specs(cat, plan.d, plan.add, plan.add_types)
        refit = Z_new.shape[1] > int(old["kmax"])  # type: ignore[index]  # a reduced set larger than the padding
    if refit:
        return _refit(store, cat, old, plan, upd, keep_params=keep_params)
    if old is None:  # pragma: no cover - refit is forced for new groups
        raise RuntimeError("a new index group must be fitted")
    store.clear_rows(old, np.asarray(plan.remove, dtype=np.int64))
    entry = dict(old)
    if plan.add and Z_new is not None and b_new is not None:
        params = store.load_group(old).view.params
        Zt, selfs, sketch = rows_under(params, Z_new, b_new)
        entry = store.append_rows(old, plan.add, Zt, b_new, selfs, sketch)
    return {**entry, "n_live": plan.n_live}


def _refit(store: IndexStore, cat: Any, old: dict[str, Any] | None, plan: _GroupPlan, upd: IndexUpdate, *,
           keep_params: bool) -> dict[str, Any]:
    """Rewrite the group from the catalog in market order, fitting its kernel unless ``keep_params``."""
    keys = spec_keys(cat)
    sel = (keys["d"] == plan.d) & np.array([fold_type(t) == plan.spec_type for t in keys["spec_type"].tolist()],
                                           dtype=bool)
    ids = [i.decode() for i in keys["id"][sel].tolist()]
    types: dict[str, list[str]] = {}
    for i, t in zip(ids, keys["spec_type"][sel].tolist()):
        types.setdefault(t, []).append(i)
    Z, beta = _load_specs(cat, plan.d, ids, types)
    version = 1 if old is None else int(old["version"]) + 1
    params = None
    if keep_params and old is not None:
        try:
            params = store.load_group(old).view.params
        except (IndexCorruptError, FileNotFoundError):
            params = None  # the old kernel is unreadable: fit a new one
    if params is not None and old is not None:
        Zt, selfs, sketch = rows_under(params, Z, beta)
        fitted_n = int(old["fitted_n"])
    else:
        params, Zt, selfs, sketch = fit_group(plan.spec_type, ids, Z, beta)
        del Z  # the raw points are no longer needed: only the view's are written (memory at 10⁵ rows)
        fitted_n = len(ids)
        upd.refitted.append(f"{plan.spec_type}/d={plan.d}")
    entry = store.write_group(plan.spec_type, plan.d, version, ids, params, Zt, beta, selfs, sketch, fitted_n)
    return {**entry, "n_live": len(ids)}
