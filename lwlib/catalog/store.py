"""The catalog's one door: a DuckDB file under the dock home, written through single transactions.

DuckDB lets one process hold a file (even a read-only open fails while a writer has it), so :func:`connect`
retries on the lock with backoff, and every write method is one ``BEGIN … COMMIT`` that rolls back whole on
error. Rows leave as dataclasses (:mod:`lwlib.catalog.records`); SQL takes ``?`` parameters only.
"""

from __future__ import annotations

import builtins

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from lwlib.catalog.migrate import apply_migrations, pending_migrations
from lwlib.catalog.records import CheckRecord, LearnwareRecord, SpecPayload, SpecStack, naive_utc, utcnow
from lwlib.constants import RKME_TABLE_TYPE
from lwlib.errors import CatalogError, CatalogMigrationError
from lwlib.settings import Settings
from lwlib.status import Status

logger = logging.getLogger(__name__)

__all__ = ["Catalog", "connect", "DUCKDB_CONFIG"]

DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

_LW_COLS = ("id", "name", "version", "status", "reason", "data_type", "task_type", "library_type", "scenarios",
            "license", "description", "input_dim", "output_dim", "spec_type", "spec_dim", "spec_k", "runtime_key",
            "registry_name", "registry_version", "registry_uri", "zip_path", "semantic", "created_at", "updated_at")
_CHECK_COLS = ("id", "learnware_id", "kind", "status", "reason", "report", "duration_s", "created_at")
_PAYLOAD_COLS = ("learnware_id", "spec_type", "payload", "k", "d", "gamma", "num_points", "z", "beta")
_UPSERT_SQL = (
    f"INSERT INTO learnwares ({', '.join(_LW_COLS)}) VALUES ({', '.join('?' * len(_LW_COLS))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _LW_COLS if c not in ("id", "created_at"))
)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


def _held_by_another_thread(exc: Exception) -> bool:
    """Another thread of this process holds the file in the other mode (a batch submission's writer while a
    sibling submission reads): it ends with that short transaction, so it is waited for like a lock."""
    return "different configuration" in str(exc).lower()


@contextmanager
def connect(path: str | Path, *, read_only: bool = False, retries: int = 8, backoff_s: float = 0.05,
            max_backoff_s: float = 2.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a DuckDB connection, retrying while another process holds the file lock; always closes.

    Raises
    ------
    CatalogError
        ``catalog_locked`` when the lock is still held after ``retries`` attempts, ``catalog_missing`` for a
        read-only open of a file that does not exist.
    """
    p = Path(path)
    if read_only and not p.exists():
        raise CatalogError(f"Catalog file {p} does not exist; open it writable once (or submit a learnware) "
                           "to create it.", code="catalog_missing", path=p)
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    delay = backoff_s
    for attempt in range(retries + 1):
        try:
            con = duckdb.connect(str(p), read_only=read_only, config=dict(DUCKDB_CONFIG))
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or attempt == retries:
                raise CatalogError(
                    f"Could not open catalog {p} ({exc}); another process holds it. Catalog writes must go "
                    "through the single writer — retry when it finishes.",
                    code="catalog_locked" if _is_lock_error(exc) else "catalog_io", path=p) from exc
            logger.debug("catalog %s locked, retry %d in %.2fs", p, attempt + 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
        except duckdb.Error as exc:  # e.g. this process already holds the file with another mode
            if _held_by_another_thread(exc) and attempt < retries:
                logger.debug("catalog %s open in the other mode in this process, retry %d in %.2fs", p,
                             attempt + 1, delay)
                time.sleep(delay)
                delay = min(delay * 2, max_backoff_s)
                continue
            raise CatalogError(f"Could not open catalog {p} ({exc}); close the other connection to it in this "
                               "process first (one process, one open mode).", code="catalog_open_failed",
                               path=p) from exc
    try:
        yield con
    finally:
        con.close()


def _record_from_row(row: Sequence[Any]) -> LearnwareRecord:
    d = dict(zip(_LW_COLS, row))
    d["semantic"] = json.loads(d["semantic"]) if d["semantic"] is not None else None
    return LearnwareRecord(**d)


def _check_from_row(row: Sequence[Any]) -> CheckRecord:
    d = dict(zip(_CHECK_COLS, row))
    d["report"] = json.loads(d["report"]) if d["report"] is not None else None
    return CheckRecord(**d)


def _record_params(r: LearnwareRecord, now: Any) -> list[Any]:
    semantic = json.dumps(dict(r.semantic), allow_nan=False) if r.semantic is not None else None
    created = naive_utc(r.created_at) if r.created_at else now
    values = {**{c: getattr(r, c) for c in _LW_COLS}, "status": r.status.value, "scenarios": list(r.scenarios),
              "semantic": semantic, "created_at": created, "updated_at": now}
    return [values[c] for c in _LW_COLS]


def _payload_params(p: SpecPayload) -> list[Any]:
    z = None if p.z is None else np.asarray(p.z, dtype=np.float64)
    return [p.learnware_id, p.spec_type, p.meta_json(), None if z is None else z.shape[0],
            None if z is None else z.shape[1], p.gamma, p.num_points,
            None if z is None else z.reshape(-1).tolist(),
            None if p.beta is None else np.asarray(p.beta, dtype=np.float64).reshape(-1).tolist()]


def _list_column(table: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat values, start offsets, lengths) of an Arrow list column; null rows have length 0."""
    col = table.column(name)
    arr = col.combine_chunks() if col.num_chunks else None
    if arr is None or len(arr) == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    starts = offsets[:-1] - offsets[0]
    return values, starts, np.diff(offsets)


class Catalog:
    """The market catalog. Use :meth:`open` (a context manager); do not build directly.

    Examples
    --------
    >>> with Catalog.open(tmp / "catalog.duckdb") as cat:  # doctest: +SKIP
    ...     cat.upsert_learnware(record, payloads)
    ...     cat.list(status=Status.USABLE)
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool) -> None:
        self._con = con
        self.path = path
        self.read_only = read_only
        self._depth = 0

    @classmethod
    @contextmanager
    def open(cls, path: str | Path | None = None, *, read_only: bool = False, retries: int = 8,
             backoff_s: float = 0.05) -> Iterator[Catalog]:
        """Open the catalog (default: ``Settings.from_env().catalog_path``); migrates on a writable open.

        Raises
        ------
        CatalogMigrationError
            An applied migration changed, or a read-only open finds pending migrations.
        CatalogError
            The file is locked by another process past the retries, or missing for a read-only open.
        """
        p = Path(path) if path is not None else Settings.from_env().catalog_path
        with connect(p, read_only=read_only, retries=retries, backoff_s=backoff_s) as con:
            if read_only:
                pending = pending_migrations(con)
                if pending:
                    raise CatalogMigrationError(
                        f"Catalog {p} lacks migrations {[m.name for m in pending]}; open it writable once to "
                        "migrate before reading.", code="migration_pending", path=p)
            else:
                apply_migrations(con)
            yield cls(con, p, read_only=read_only)

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[Catalog]:
        """One all-or-nothing unit of writes; nested use joins the outer transaction."""
        if self.read_only:
            raise CatalogError(f"Catalog {self.path} is open read-only; open it with read_only=False through the "
                               "single writer to change it.", code="catalog_read_only", path=self.path)
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._con.execute("ROLLBACK")
            raise
        self._depth = 0
        self._con.execute("COMMIT")

    def _write(self, what: str, sql_steps: Iterable[tuple[str, Any]], *,
               many: frozenset[int] = frozenset()) -> builtins.list[builtins.list[tuple[Any, ...]]]:
        """Run the steps as one transaction; steps whose index is in ``many`` use ``executemany``."""
        out: builtins.list[builtins.list[tuple[Any, ...]]] = []
        try:
            with self.transaction():
                for i, (sql, params) in enumerate(sql_steps):
                    if i in many:
                        self._con.executemany(sql, params)
                        out.append([])
                    else:
                        out.append(self._con.execute(sql, params).fetchall())
        except duckdb.Error as exc:
            raise CatalogError(f"Catalog write '{what}' failed and was rolled back ({exc}); nothing was changed. "
                               "Check the record's values against the catalog schema.",
                               code="catalog_write_failed", path=self.path) from exc
        return out

    # ------------------------------------------------------------------ writes
    def upsert_learnware(self, record: LearnwareRecord, payloads: Sequence[SpecPayload] = ()) -> LearnwareRecord:
        """Insert or replace a learnware and all its spec payloads in one transaction; returns the stored row."""
        wrong = [p.learnware_id for p in payloads if p.learnware_id != record.id]
        if wrong:
            raise CatalogError(f"Spec payloads for {wrong} were passed with learnware {record.id}; each payload's "
                               "learnware_id must equal the record id.", code="catalog_payload_mismatch")
        now = naive_utc(utcnow())
        steps: builtins.list[tuple[str, Any]] = [
            (_UPSERT_SQL, _record_params(record, now)),
            ("DELETE FROM spec_payloads WHERE learnware_id = ?", [record.id]),
        ]
        if payloads:
            steps.append((f"INSERT INTO spec_payloads ({', '.join(_PAYLOAD_COLS)}) "
                          f"VALUES ({', '.join('?' * len(_PAYLOAD_COLS))})", [_payload_params(p) for p in payloads]))
        self._write(f"upsert {record.id[:12]}", steps, many=frozenset({2}))
        logger.info("catalog upserted learnware %s (%s, %d spec payloads)", record.id[:12], record.status.value,
                    len(payloads))
        stored = self.get(record.id)
        if stored is None:  # pragma: no cover - written just above on this connection
            raise CatalogError(f"Learnware {record.id} vanished right after being written to {self.path}.",
                               code="catalog_write_failed")
        return stored

    def set_status(self, learnware_id: str, status: Status | str, reason: str | None = None) -> None:
        """Change a learnware's status and reason (e.g. after a re-check)."""
        status = Status(status)
        (rows,) = self._write(f"set_status {learnware_id[:12]}", [(
            "UPDATE learnwares SET status = ?, reason = ?, updated_at = ? WHERE id = ? RETURNING id",
            [status.value, reason, naive_utc(utcnow()), learnware_id])])
        if not rows:
            raise CatalogError(f"No learnware {learnware_id} in catalog {self.path}; submit it before changing its "
                               "status.", code="catalog_not_found", learnware_id=learnware_id)

    def add_check(self, check: CheckRecord) -> CheckRecord:
        """Append a check to the history; returns it with its ``id`` and ``created_at``."""
        report = json.dumps(dict(check.report), allow_nan=False, default=str) if check.report is not None else None
        created = naive_utc(check.created_at) if check.created_at else naive_utc(utcnow())
        (rows,) = self._write(f"add_check {check.learnware_id[:12]}", [(
            "INSERT INTO checks (learnware_id, kind, status, reason, report, duration_s, created_at) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {', '.join(_CHECK_COLS)}",
            [check.learnware_id, check.kind, check.status.value, check.reason, report, check.duration_s, created])])
        return _check_from_row(rows[0])

    def delete(self, learnware_id: str) -> bool:
        """Remove a learnware, its spec payloads and its check history; returns whether it existed."""
        *_, rows = self._write(f"delete {learnware_id[:12]}", [
            ("DELETE FROM spec_payloads WHERE learnware_id = ?", [learnware_id]),
            ("DELETE FROM checks WHERE learnware_id = ?", [learnware_id]),
            ("DELETE FROM learnwares WHERE id = ? RETURNING id", [learnware_id]),
        ])
        return bool(rows)

    # ------------------------------------------------------------------ reads
    def get(self, learnware_id: str) -> LearnwareRecord | None:
        rows = self._con.execute(f"SELECT {', '.join(_LW_COLS)} FROM learnwares WHERE id = ?",
                                 [learnware_id]).fetchall()
        return _record_from_row(rows[0]) if rows else None

    def list(self, status: Status | str | None = None, data_type: str | None = None, task_type: str | None = None,
             limit: int | None = None) -> builtins.list[LearnwareRecord]:
        """Learnwares matching every given filter, oldest first."""
        where, params = self._filters(status=status, data_type=data_type, task_type=task_type)
        sql = f"SELECT {', '.join(_LW_COLS)} FROM learnwares{where} ORDER BY created_at, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_record_from_row(r) for r in self._con.execute(sql, params).fetchall()]

    def count(self, status: Status | str | None = None) -> int:
        where, params = self._filters(status=status)
        return int(self._con.execute(f"SELECT count(*) FROM learnwares{where}", params).fetchall()[0][0])

    def history(self, learnware_id: str) -> builtins.list[CheckRecord]:
        """Every check of a learnware, oldest first."""
        rows = self._con.execute(f"SELECT {', '.join(_CHECK_COLS)} FROM checks WHERE learnware_id = ? ORDER BY id",
                                 [learnware_id]).fetchall()
        return [_check_from_row(r) for r in rows]

    def _spec_table(self, conds: builtins.list[str], params: builtins.list[Any], *, join_status: bool = False) -> Any:
        """One query over the selected spec rows as an Arrow table (list columns stay flat buffers)."""
        join = " JOIN learnwares l ON l.id = p.learnware_id" if join_status else ""
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        cols = ", ".join(f"p.{c}" for c in _PAYLOAD_COLS)
        sql = f"SELECT {cols} FROM spec_payloads p{join}{where} ORDER BY p.learnware_id, p.spec_type"
        return self._con.sql(sql, params=params).to_arrow_table()

    def load_spec_payloads(self, ids: Sequence[str] | None = None,
                           spec_type: str | None = None) -> builtins.list[SpecPayload]:
        """All stored specs (optionally only of ``ids`` / one ``spec_type``) in one query, ordered by id."""
        conds: builtins.list[str] = []
        params: builtins.list[Any] = []
        if ids is not None:
            conds.append("list_contains(?::VARCHAR[], p.learnware_id)")
            params.append(list(ids))
        if spec_type is not None:
            conds.append("p.spec_type = ?")
            params.append(spec_type)
        t = self._spec_table(conds, params)
        cols = {c: t.column(c).to_pylist() for c in ("learnware_id", "spec_type", "payload", "k", "d", "gamma",
                                                     "num_points")}
        zv, zs, zl = _list_column(t, "z")
        bv, bs, bl = _list_column(t, "beta")
        z_valid = np.asarray(t.column("z").is_valid(), dtype=bool) if t.num_rows else np.zeros(0, dtype=bool)
        b_valid = np.asarray(t.column("beta").is_valid(), dtype=bool) if t.num_rows else np.zeros(0, dtype=bool)
        out = []
        for i in range(t.num_rows):  # one dataclass per row; the arrays are views into one flat buffer
            k, d = cols["k"][i], cols["d"][i]
            z = zv[zs[i]:zs[i] + zl[i]].reshape(k, d) if z_valid[i] else None
            beta = bv[bs[i]:bs[i] + bl[i]] if b_valid[i] else None
            out.append(SpecPayload(cols["learnware_id"][i], cols["spec_type"][i], json.loads(cols["payload"][i]),
                                   z, beta, cols["gamma"][i], cols["num_points"][i]))
        return out

    def load_spec_stack(self, spec_type: str = RKME_TABLE_TYPE, *, d: int | None = None,
                        ids: Sequence[str] | None = None, status: Status | str | None = Status.USABLE) -> SpecStack:
        """Stack every matching RKME into zero-padded arrays from one query, with a vectorised scatter.

        Raises
        ------
        CatalogError
            The selection mixes feature dimensions and ``d`` was not given.
        """
        conds = ["p.spec_type = ?", "p.z IS NOT NULL", "p.beta IS NOT NULL"]
        params: builtins.list[Any] = [spec_type]
        if d is not None:
            conds.append("p.d = ?")
            params.append(int(d))
        if ids is not None:
            conds.append("list_contains(?::VARCHAR[], p.learnware_id)")
            params.append(list(ids))
        if status is not None:
            conds.append("l.status = ?")
            params.append(Status(status).value)
        t = self._spec_table(conds, params, join_status=True)
        n = t.num_rows
        k = np.asarray(t.column("k").to_numpy(), dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
        dims = np.unique(np.asarray(t.column("d").to_numpy(), dtype=np.int64)) if n else np.zeros(0, np.int64)
        if dims.size > 1:
            raise CatalogError(f"Specs of type {spec_type} have feature dimensions {dims.tolist()}; pass d= to "
                               "stack one dimension at a time.", code="catalog_mixed_dims")
        dim = int(dims[0]) if dims.size else int(d or 0)
        k_max = int(k.max()) if n else 0
        Z, beta = np.zeros((n, k_max, dim)), np.zeros((n, k_max))
        if n:
            zv, _, zl = _list_column(t, "z")
            bv, _, bl = _list_column(t, "beta")
            if np.all(k == k_max):  # common case: one K for all, the flat buffers are the stacked arrays
                Z, beta = zv.reshape(n, k_max, dim).copy(), bv.reshape(n, k_max).copy()
            else:
                rows = np.repeat(np.arange(n), zl)
                pos = np.arange(zv.shape[0]) - np.repeat(np.cumsum(zl) - zl, zl)
                Z[rows, pos // dim, pos % dim] = zv
                rows = np.repeat(np.arange(n), bl)
                beta[rows, np.arange(bv.shape[0]) - np.repeat(np.cumsum(bl) - bl, bl)] = bv
        gamma = np.array([np.nan if g is None else g for g in t.column("gamma").to_pylist()], dtype=np.float64)
        return SpecStack(tuple(t.column("learnware_id").to_pylist()), Z, beta, gamma, k, spec_type, dim)

    @staticmethod
    def _filters(**filters: Any) -> tuple[str, builtins.list[Any]]:
        conds, params = [], []
        for col in ("status", "data_type", "task_type"):
            value = filters.get(col)
            if value is None:
                continue
            conds.append(f"{col} = ?")
            params.append(Status(value).value if col == "status" else value)
        return (f" WHERE {' AND '.join(conds)}" if conds else ""), params
