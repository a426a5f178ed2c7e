"""What the read path reads from the catalog: a change stamp, the searchable specs, and the record columns.

Reads open the DuckDB file read-only and retry while a writer holds it (:func:`lwlib.catalog.connect`); each read
is one short connection, so a reader never keeps a submission from writing. Results come back as numpy columns
(one query each), never as one Python object per learnware.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from numpy.typing import NDArray

from lwlib.constants import RKME_LEGACY_TYPE, RKME_TABLE_TYPE
from lwlib.errors import CatalogError

logger = logging.getLogger(__name__)

__all__ = ["catalog_stamp", "open_read_only", "spec_keys", "usable_digest", "hinted_state", "record_columns",
           "resolve_ids", "page_ids", "RECORD_COLUMNS", "fold_type"]

#: Columns of ``learnwares`` a market snapshot keeps (semantic filters, tables, the API).
RECORD_COLUMNS = ("id", "name", "status", "data_type", "task_type", "library_type", "license", "scenarios",
                  "description", "input_dim", "output_dim", "spec_type", "spec_dim", "registry_name",
                  "registry_version", "created_at", "has_semantic")

READ_RETRY_SECONDS = 30.0  # a reader waits this long for a writer before giving up (a write lasts < 1 s)
_BY_ID = 2_000  # up to this many ids, spec rows are selected by id rather than by scanning their type


def fold_type(spec_type: str) -> str:
    """The legacy RKME type name is the table type (as :func:`lwlib.search.index.spec_type_of`)."""
    return RKME_TABLE_TYPE if spec_type == RKME_LEGACY_TYPE else spec_type


def catalog_stamp(catalog_path: Path) -> list[int]:
    """(mtime_ns, size) of the catalog file and its WAL: any committed write changes it; a read does not."""
    out: list[int] = []
    for p in (catalog_path, Path(f"{catalog_path}.wal")):
        try:
            st = os.stat(p)
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return out


@contextmanager
def open_read_only(catalog_path: Path, *, wait_s: float = READ_RETRY_SECONDS) -> Iterator[Any]:
    """A read-only catalog (``lwlib.catalog.Catalog``) that waits for a writer instead of failing.

    DuckDB refuses even a read-only open while another process writes; writes are one short transaction, so
    retrying with a capped backoff for up to ``wait_s`` lets readers run beside submissions.

    Raises
    ------
    CatalogError
        ``catalog_missing`` (no catalog yet) or ``catalog_locked`` after ``wait_s``.
    """
    from lwlib.catalog import Catalog

    deadline = time.monotonic() + wait_s
    while True:
        try:
            cm = Catalog.open(catalog_path, read_only=True, retries=6, backoff_s=0.02)
            cat = cm.__enter__()
        except CatalogError as exc:
            if exc.code != "catalog_locked" or time.monotonic() > deadline:
                raise
            logger.debug("catalog busy, retrying: %s", exc)
            time.sleep(0.05)
            continue
        break
    try:
        yield cat
    except BaseException as exc:
        if not cm.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        cm.__exit__(None, None, None)


def _sql(cat: Any, sql: str, params: list[Any] | None = None) -> dict[str, NDArray[Any]]:
    # lwlib.catalog.Catalog has no columnar read yet (requested from its owner); same connection, read-only.
    return dict(cat._con.execute(sql, params or []).fetchnumpy())  # noqa: SLF001


_CHOSEN = """chosen AS (
    SELECT learnware_id, min(spec_type) AS spec_type FROM spec_payloads
    WHERE z IS NOT NULL AND beta IS NOT NULL AND d IS NOT NULL {extra} GROUP BY learnware_id)"""


def spec_keys(cat: Any) -> dict[str, NDArray[Any]]:
    """Every USABLE learnware's searchable spec, one per learnware, in market order (created_at, id).

    The chosen spec is the first with a point set by type name, as the torch path
    (``lwlib.search.searcher.MarketSearcher``) picks it. Columns: ``id`` (bytes, S64),
    ``spec_type`` (as stored), ``d``.
    """
    cols = _sql(cat, f"""WITH {_CHOSEN.format(extra="")}
        SELECT l.id, c.spec_type, p.d FROM learnwares l JOIN chosen c ON c.learnware_id = l.id
        JOIN spec_payloads p ON p.learnware_id = c.learnware_id AND p.spec_type = c.spec_type
        WHERE l.status = 'USABLE' ORDER BY l.created_at, l.id""")
    return {"id": np.asarray(cols["id"]).astype("S64"), "spec_type": np.asarray(cols["spec_type"]),
            "d": np.asarray(cols["d"], dtype=np.int64)}


def usable_digest(cat: Any) -> list[int]:
    """[count, xor of DuckDB's hash of the ids] of the USABLE learnwares: changes with any status change."""
    cols = _sql(cat, "SELECT count(*) AS n, coalesce(bit_xor(hash(id)), 0) AS x FROM learnwares "
                     "WHERE status = 'USABLE'")
    return [int(cols["n"][0]), int(cols["x"][0])]


def hinted_state(cat: Any, ids: list[str]) -> dict[str, NDArray[Any]]:
    """For each of ``ids``: its hash, whether it is USABLE now, and its searchable spec (type, d) if any."""
    cols = _sql(cat, f"""WITH hint AS (SELECT DISTINCT x AS id FROM unnest(?::VARCHAR[]) t(x)),
        {_CHOSEN.format(extra="AND learnware_id IN (SELECT id FROM hint)")}
        SELECT h.id, hash(h.id) AS h, coalesce(l.status = 'USABLE', false) AS usable, c.spec_type, p.d
        FROM hint h LEFT JOIN learnwares l ON l.id = h.id LEFT JOIN chosen c ON c.learnware_id = h.id
        LEFT JOIN spec_payloads p ON p.learnware_id = c.learnware_id AND p.spec_type = c.spec_type
        ORDER BY l.created_at, h.id""", [list(ids)])
    return {k: np.asarray(v) for k, v in cols.items()}


def record_columns(cat: Any, *, status: str | None = "USABLE") -> dict[str, NDArray[Any]]:
    """The snapshot's record columns for every learnware of ``status`` (None = all), market order."""
    where = "WHERE status = ?" if status else ""
    cols = _sql(cat, f"""
        SELECT id, name, status, data_type, task_type, library_type, license, scenarios, description, input_dim,
               output_dim, spec_type, spec_dim, registry_name, registry_version, created_at,
               semantic IS NOT NULL AS has_semantic
        FROM learnwares {where} ORDER BY created_at, id""", [status] if status else [])
    return {k: np.asarray(v) for k, v in cols.items()}


def resolve_ids(cat: Any, text: str, *, limit: int = 5) -> list[str]:
    """Ids matching ``text``: the exact id, else ids starting with it, else learnwares named exactly ``text``.

    One indexed query each (``Dock.resolve_id`` lists the whole catalog, which takes seconds at 10⁵ rows).
    """
    exact = _sql(cat, "SELECT id FROM learnwares WHERE id = ?", [text])["id"]
    if len(exact):
        return [str(exact[0])]
    if len(text) >= 4 and all(c in "0123456789abcdef" for c in text):
        pref = _sql(cat, "SELECT id FROM learnwares WHERE starts_with(id, ?) ORDER BY id LIMIT ?", [text, limit])["id"]
        if len(pref):
            return [str(i) for i in pref]
    named = _sql(cat, "SELECT id FROM learnwares WHERE name = ? ORDER BY created_at, id LIMIT ?", [text, limit])["id"]
    return [str(i) for i in named]


def page_ids(cat: Any, *, status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[str]]:
    """(total, ids of one page) in market order, for paging through big catalogs without loading every row."""
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    total = int(_sql(cat, f"SELECT count(*) AS n FROM learnwares {where}", list(params))["n"][0])
    ids = _sql(cat, f"SELECT id FROM learnwares {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
               [*params, int(limit), int(offset)])["id"]
    return total, [str(i) for i in ids]


def _few_spec_arrays(cat: Any, where: str, params: list[Any], ids: NDArray[Any], d: int
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(Z, beta) of a few learnwares, selected by primary key (rows of ids with no such spec stay zero)."""
    if ids.shape[0] == 1:
        where += " AND learnware_id = ?"
        params = [*params, ids[0].decode()]
    else:
        where += " AND learnware_id IN (SELECT unnest(?::VARCHAR[]))"
        params = [*params, [i.decode() for i in ids.tolist()]]
    rows = cat._con.execute(f"SELECT learnware_id, k, z, beta FROM spec_payloads WHERE {where}",  # noqa: SLF001
                            params).fetchall()
    kmax = max((int(r[1]) for r in rows), default=0)
    Z, beta = np.zeros((ids.shape[0], kmax, d)), np.zeros((ids.shape[0], kmax))
    pos = {i: n for n, i in enumerate(ids.tolist())}
    for lid, k, z, b in rows:  # a few rows: one small copy each
        n = pos[str(lid).encode()]
        Z[n, :int(k)] = np.asarray(z, dtype=np.float64).reshape(int(k), d)
        beta[n, :int(k)] = np.asarray(b, dtype=np.float64)
    return Z, beta


def stream_spec_arrays(cat: Any, spec_type: str, d: int, ids: NDArray[Any], *, batch_rows: int = 4096,
                       memory_limit: str = "1GB") -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Padded (Z, beta) of the learnwares ``ids`` (bytes, any order) from one spec type, streamed in batches.

    Why not ``Catalog.load_spec_stack``: it materialises the whole result as one Arrow table and then copies it,
    which at 10⁵ learnwares × 100 points × 20 features held ~9 GB at once. Streaming record batches into the
    preallocated arrays keeps the peak near the arrays themselves; DuckDB's buffer cache is capped for this read.
    """
    n = int(ids.shape[0])
    where, params = "spec_type = ? AND d = ? AND z IS NOT NULL AND beta IS NOT NULL", [spec_type, int(d)]
    if n <= _BY_ID:  # a few ids (an incremental update): select them by key, one small query, no Arrow stream
        return _few_spec_arrays(cat, where, params, ids, int(d))
    if getattr(cat, "read_only", True):  # cap DuckDB's cache for this read (never on a writer's connection)
        cat._con.execute(f"SET memory_limit = '{memory_limit}'")  # noqa: SLF001
    kmax = int(_sql(cat, f"SELECT coalesce(max(k), 0) AS k FROM spec_payloads WHERE {where}", params)["k"][0])
    Z, beta = np.zeros((n, kmax, int(d))), np.zeros((n, kmax))
    order = np.argsort(ids)
    sorted_ids = ids[order]
    reader = cat._con.sql(f"SELECT learnware_id, k, z, beta FROM spec_payloads WHERE {where}",  # noqa: SLF001
                          params=params).to_arrow_reader(batch_rows)
    for batch in reader:
        got = np.asarray(batch.column("learnware_id").to_numpy(zero_copy_only=False)).astype("S64")
        pos = np.minimum(np.searchsorted(sorted_ids, got), max(n - 1, 0))
        keep = sorted_ids[pos] == got if n else np.zeros(got.size, dtype=bool)
        if not keep.any():
            continue
        dest = order[pos[keep]]
        k = np.asarray(batch.column("k").to_numpy(zero_copy_only=False), dtype=np.int64)[keep]
        zcol, bcol = batch.column("z"), batch.column("beta")
        zv = zcol.flatten().to_numpy(zero_copy_only=False)
        bv = bcol.flatten().to_numpy(zero_copy_only=False)
        zo = zcol.offsets.to_numpy()[:-1][keep] - zcol.offsets.to_numpy()[0]
        bo = bcol.offsets.to_numpy()[:-1][keep] - bcol.offsets.to_numpy()[0]
        if np.all(k == kmax) and np.all(keep):  # one reshape per batch in the common case
            Z[dest] = zv.reshape(-1, kmax, int(d))
            beta[dest] = bv.reshape(-1, kmax)
            continue
        for row, kk, z0, b0 in zip(dest, k, zo, bo):  # ragged or partial batch: row by row (copies only)
            Z[row, :kk] = zv[z0:z0 + kk * int(d)].reshape(kk, int(d))
            beta[row, :kk] = bv[b0:b0 + kk]
    return Z, beta
