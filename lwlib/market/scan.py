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

__all__ = ["catalog_stamp", "open_read_only", "spec_keys", "record_columns", "RECORD_COLUMNS", "fold_type"]

#: Columns of ``learnwares`` a market snapshot keeps (semantic filters, tables, the API).
RECORD_COLUMNS = ("id", "name", "status", "data_type", "task_type", "library_type", "license", "scenarios",
                  "description", "input_dim", "output_dim", "spec_type", "spec_dim", "registry_name",
                  "registry_version", "created_at", "has_semantic")

READ_RETRY_SECONDS = 30.0  # a reader waits this long for a writer before giving up (a write lasts < 1 s)


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


def spec_keys(cat: Any) -> dict[str, NDArray[Any]]:
    """Every USABLE learnware's searchable spec, one per learnware, in market order (created_at, id).

    The chosen spec is the first with a point set by type name, as ``lwlib.deploy.market_entries`` +
    ``MarketSearcher`` pick it. Columns: ``id``, ``spec_type`` (as stored), ``d``, ``k``.
    """
    cols = _sql(cat, """
        SELECT learnware_id AS id, spec_type, d, k FROM (
            SELECT p.learnware_id, p.spec_type, p.d, p.k, l.created_at,
                   row_number() OVER (PARTITION BY p.learnware_id ORDER BY p.spec_type) AS rn
            FROM spec_payloads p JOIN learnwares l ON l.id = p.learnware_id
            WHERE l.status = 'USABLE' AND p.z IS NOT NULL AND p.beta IS NOT NULL AND p.d IS NOT NULL)
        WHERE rn = 1 ORDER BY created_at, id""")
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
