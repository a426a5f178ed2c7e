"""One market snapshot: the catalog read once, read-only, plus the persisted search index, answering searches.

The command line (``lwdock search``), the HTTP service (``lwdock api``) and the deploying flow all search through
:class:`MarketSnapshot`, so they rank the same way. Opening one costs two ``stat`` calls when the index is up to
date (the catalog's change stamp equals the one the index was synced at) plus memory maps; otherwise the index is
brought up to date first (incrementally; see :mod:`lwlib.market.sync`). Nothing here imports torch, Prefect or
scikit-learn unless a search needs the cross-feature-space fallback or a caller asks for spec objects.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib.constants import RKME_TABLE_TYPE
from lwlib.market._pure import pure_search_module
from lwlib.market.ranking import DEFAULT_SHORTLIST, greedy_mixture, score_rows
from lwlib.market.scan import (READ_RETRY_SECONDS, catalog_stamp, fold_type, open_read_only, record_columns)
from lwlib.market.semantic_filter import semantic_matches
from lwlib.market.store import IndexGroup, IndexStore, _slug
from lwlib.market.sync import sync_index
from lwlib.market.userspec import fit_user_rkme, rkme_from_dict

logger = logging.getLogger(__name__)

__all__ = ["MarketSnapshot"]


class MarketSnapshot:
    """A read-only view of the market at one catalog version.

    Build with :meth:`open`. ``stamp`` identifies the catalog version the index was synced at;
    :meth:`refresh_if_changed` re-reads when the catalog has changed since (cheap when it has not).

    Attributes
    ----------
    home : Path
    groups : dict of str → IndexGroup
        One per (spec type, feature dimension): ids, live rows and the memory-mapped kernel view.
    stamp : list of int
    """

    def __init__(self, home: Path, groups: dict[str, IndexGroup], stamp: list[int], *, wait_s: float) -> None:
        self.home = home
        self.groups = groups
        self.stamp = stamp
        self._wait_s = wait_s
        self._columns: dict[str, NDArray[Any]] | None = None
        self._id_pos: dict[str, int] | None = None
        self._rows: dict[str, dict[str, int]] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, settings: Any = None, *, sync: bool = True, wait_s: float = READ_RETRY_SECONDS) -> MarketSnapshot:
        """Open the market of ``settings`` (a :class:`~lwlib.settings.Settings`, a home path, or None = env).

        Parameters
        ----------
        sync : bool
            Bring the persisted index up to date first when the catalog changed since it was written (needs
            write access to the home; a busy writer lock or a read-only home leaves the last index in use).
        wait_s : float
            How long a read waits for a catalog writer before failing with ``catalog_locked``.
        """
        home = _home(settings)
        stamp = catalog_stamp(home / "catalog.duckdb")
        if sync:
            try:
                sync_index(home, wait=False)
            except OSError as exc:  # read-only home: search what the last writer left
                logger.warning("search index under %s not updated (%s); using the last one", home, exc)
        loaded = IndexStore(home).load()
        groups = {} if loaded is None else loaded[1]
        if loaded is not None and loaded[0].get("catalog_stamp") != stamp:
            stamp = list(loaded[0].get("catalog_stamp") or [])  # the snapshot is as old as its index
        return cls(home, groups, stamp, wait_s=wait_s)

    def changed(self) -> bool:
        """True when the catalog has been written since this snapshot's index was synced."""
        return catalog_stamp(self.home / "catalog.duckdb") != self.stamp

    def refresh_if_changed(self) -> bool:
        """Re-open in place when the catalog changed (two ``stat`` calls when it has not); True if refreshed."""
        if not self.changed():
            return False
        fresh = type(self).open(self.home, wait_s=self._wait_s)
        self.groups, self.stamp, self._columns, self._id_pos, self._rows = fresh.groups, fresh.stamp, None, None, {}
        return True

    # ------------------------------------------------------------------ records
    @property
    def columns(self) -> dict[str, NDArray[Any]]:
        """Record columns of every USABLE learnware (id, name, semantic fields, dims, registry), market order."""
        if self._columns is None:
            catalog = self.home / "catalog.duckdb"
            if not catalog.exists():
                self._columns = {"id": np.zeros(0, dtype=object), "name": np.zeros(0, dtype=object),
                                 "has_semantic": np.zeros(0, dtype=bool)}
            else:
                with open_read_only(catalog, wait_s=self._wait_s) as cat:
                    self._columns = record_columns(cat)
        return self._columns

    def __len__(self) -> int:
        """Searchable learnwares (live rows of the index)."""
        return sum(g.n_live for g in self.groups.values())

    def names(self, ids: Sequence[str]) -> dict[str, str]:
        """Learnware names by id (one small catalog query; ids the catalog no longer has are left out)."""
        if not ids:
            return {}
        if self._columns is not None:
            if self._id_pos is None:  # built once per snapshot: a warm server answers names from memory
                self._id_pos = {i: n for n, i in enumerate(self._columns["id"].tolist())}
            pos = self._id_pos
            return {i: str(self._columns["name"][pos[i]]) for i in ids if i in pos}
        with open_read_only(self.home / "catalog.duckdb", wait_s=self._wait_s) as cat:
            sql = "SELECT id, name FROM learnwares WHERE id IN (SELECT unnest(?::VARCHAR[]))"
            rows = cat._con.execute(sql, [list(ids)]).fetchall()  # noqa: SLF001 - no name lookup in Catalog yet
        return {str(i): str(n) for i, n in rows}

    @property
    def records(self) -> dict[str, Any]:
        """Every USABLE :class:`~lwlib.catalog.LearnwareRecord` by id (one object each: slow on big markets).

        Satisfies ``lwlib.deployment.Market`` together with :attr:`entries`; prefer :meth:`records_for`.
        """
        if not (self.home / "catalog.duckdb").exists():
            return {}
        with open_read_only(self.home / "catalog.duckdb", wait_s=self._wait_s) as cat:
            return {r.id: r for r in cat.list(status="USABLE")}

    def records_for(self, ids: Sequence[str]) -> dict[str, Any]:
        """The catalog rows of ``ids`` (any status) by id; ids the catalog does not hold are left out."""
        if not ids or not (self.home / "catalog.duckdb").exists():
            return {}
        with open_read_only(self.home / "catalog.duckdb", wait_s=self._wait_s) as cat:
            recs = {i: cat.get(i) for i in dict.fromkeys(ids)}
        return {i: r for i, r in recs.items() if r is not None}

    def entries_for(self, ids: Sequence[str]) -> list[Any]:
        """:class:`~lwlib.search.searcher.SearchEntry` (semantic spec + fitted spec objects) for ``ids``."""
        from lwlib.search.searcher import SearchEntry

        if not ids:
            return []
        with open_read_only(self.home / "catalog.duckdb", wait_s=self._wait_s) as cat:
            recs = {i: cat.get(i) for i in ids}
            payloads = cat.load_spec_payloads(ids=list(ids))
        specs: dict[str, dict[str, Any]] = {}
        for p in payloads:
            specs.setdefault(p.learnware_id, {})[p.spec_type] = p.to_spec()
        return [SearchEntry(i, r.semantic_spec(), specs.get(i)) for i, r in recs.items() if r is not None]

    @property
    def entries(self) -> list[Any]:
        """SearchEntry of every USABLE learnware (what ``lwlib.deploy.market_entries`` returned)."""
        return self.entries_for([str(i) for i in self.columns["id"].tolist()])

    # ------------------------------------------------------------------ search
    def group_for(self, spec_type: str, d: int) -> IndexGroup | None:
        return self.groups.get(_slug(fold_type(spec_type), int(d)))

    def _rows_of(self, group: IndexGroup, ids: Sequence[str] | None) -> NDArray[np.int64]:
        if ids is None:
            return np.flatnonzero(group.live).astype(np.int64)
        if group.key not in self._rows:
            live = np.flatnonzero(group.live)
            self._rows[group.key] = {bytes(group.ids[r]).decode(): int(r) for r in live}
        pos = self._rows[group.key]
        return np.unique(np.asarray([pos[i] for i in ids if i in pos], dtype=np.int64))

    def user_spec(self, X: Any) -> Any:
        """The user's RKME, fitted here in the market's standardised space (as ``MarketSearcher`` does)."""
        from lwlib._validation import check_array

        Xc = check_array(X, name="user data")
        group = self.group_for(RKME_TABLE_TYPE, Xc.shape[1])
        params = None if group is None else group.view.params
        if params is None or params.shift is None or params.scale is None:
            return fit_user_rkme(Xc)
        spec = fit_user_rkme((Xc - params.shift) / params.scale, gamma=params.gamma)
        spec.z_ = spec.z_ * params.scale + params.shift  # back to raw units: the view standardises every query
        return spec

    def search(self, requirement: Any = None, *, top_k: int = 10, max_mixture: int = 5,
               shortlist: int | str | None = "auto", **legacy: Any) -> Any:
        """Search the market (see :meth:`_search`), with BLAS on one thread.

        A query is a few small matrix products: with a threaded BLAS on a busy machine they wait for idle
        threads (measured: 4× slower on 2 shared cores), so searches run single-threaded.
        """
        with _blas_one_thread():
            return self._search(requirement, top_k=top_k, max_mixture=max_mixture, shortlist=shortlist, **legacy)

    def _search(self, requirement: Any = None, *, top_k: int = 10, max_mixture: int = 5,
                shortlist: int | str | None = "auto", **legacy: Any) -> Any:
        """Search the market: semantic filter, then single ranking and the best mixture for the user's RKME.

        Parameters
        ----------
        requirement : Requirement, semantic query dict, or None
            Legacy keywords ``query=``, ``user_X=``, ``user_spec=`` are accepted too; a user RKME may be a
            reference JSON dict.
        top_k, max_mixture : int
        shortlist : int, "auto" or None
            Exact MMD² for the ``shortlist`` best by sketch ("auto" = 50; None = all).

        Returns
        -------
        SearchResult
            The same result as ``MarketSearcher(top_k, max_mixture).fit(market).search(...)``; empty with a
            ``message`` when nothing matches. Labels in the requirement are accepted and not used yet.
        """
        req = pure_search_module("requirement").as_requirement(requirement, **legacy) \
            if not isinstance(requirement, Mapping) or legacy else \
            pure_search_module("requirement").Requirement(semantic=requirement)
        SearchResult = pure_search_module("result").SearchResult
        sem: tuple[Any, ...] = ()
        candidates: list[str] | None = None
        if req.semantic is not None:
            sem = tuple(semantic_matches(req.semantic, self.columns))
            if not sem:
                return SearchResult(message="No learnware matches the semantic query; relax the tag filters or the "
                                            "name.")
            candidates = [m.learnware_id for m in sem]
        spec = req.rkme
        if isinstance(spec, Mapping):
            spec = rkme_from_dict(dict(spec))
        if spec is None and req.X is not None:
            spec = self.user_spec(req.X)
        if spec is None:
            msg = f"{len(sem)} learnwares match semantically; give user data or an RKME for statistical ranking." \
                if sem else "Nothing to search: give a semantic query, a user RKME or user data."
            return SearchResult(semantic=sem, message=msg)
        z = np.asarray(spec.z_, dtype=np.float64)
        group = self.group_for(getattr(spec, "type_name", RKME_TABLE_TYPE), z.shape[1])
        rows = np.zeros(0, np.int64) if group is None else self._rows_of(group, candidates)
        if group is None or rows.size == 0:
            where = "among the semantic matches" if candidates is not None else "in the market"
            result = SearchResult(semantic=sem, message=f"No learnware with a {fold_type(spec.type_name)} of "
                                  f"{z.shape[1]} features {where}; only specs of the same type and dimension can "
                                  "be compared.")
            return self._hetero(req, result, candidates, top_k, max_mixture)
        limit = DEFAULT_SHORTLIST if shortlist == "auto" else int(shortlist or 0)
        ranking = score_rows(group.view, group.id_of, rows, z, spec.beta_, shortlist=limit)
        mixture = greedy_mixture(ranking, max_size=max_mixture) if max_mixture >= 2 else None
        singles = ranking.matches(top_k)
        mixtures = () if mixture is None else (mixture,)
        kernel = {**group.view.info(), "spec_type": group.spec_type, "n_features": group.d, "scoring": "absolute"}
        msg = (f"{len(singles)} single learnware(s) and {len(mixtures)} mixture(s) from {ranking.n_candidates} "
               "compatible learnware(s).")
        if req.n_labels:
            msg += " Labels were received; this ranking uses P(X) only (lwlib.deployment.search_market uses them)."
        return SearchResult(singles=tuple(singles), mixtures=mixtures, semantic=sem, kernel=kernel, message=msg,
                            evidence={"decided_by": "P(X)", "n_labels": req.n_labels})

    def _hetero(self, req: Any, result: Any, candidates: list[str] | None, top_k: int, max_mixture: int) -> Any:
        """Cross-feature-space fallback (torch): when the requirement describes its input columns."""
        descriptions = req.descriptions
        if descriptions is None and req.semantic is not None:
            from lwlib.search.hetero import input_descriptions

            descriptions = input_descriptions(req.semantic)
        if req.X is None or not descriptions:
            return result
        from lwlib.search.hetero import HeteroSearcher

        ids = candidates if candidates is not None else [str(i) for i in self.columns["id"].tolist()]
        entries = self.entries_for(ids)
        if not entries:
            return result
        out = HeteroSearcher(top_k=top_k, max_mixture=max_mixture).fit(entries).search(req.X, descriptions)
        return replace(out, semantic=result.semantic) if hasattr(out, "semantic") else out


_CONTROLLER: Any = None


def _blas_one_thread() -> Any:
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _home(settings: Any) -> Path:
    if settings is None:
        from lwlib.settings import Settings

        return Settings.from_env().home
    home = settings if isinstance(settings, (str, os.PathLike)) else settings.home
    return Path(home).expanduser().resolve()
