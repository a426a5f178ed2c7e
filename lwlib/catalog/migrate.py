"""Numbered SQL migrations for the catalog, each applied once and pinned by its sha256.

Why hashes: the catalog is long-lived state under the dock home. If a migration file that already ran is edited
later, the live schema no longer matches the code; we refuse to open rather than silently drift.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwlib.catalog.records import naive_utc, utcnow
from lwlib.errors import CatalogMigrationError

logger = logging.getLogger(__name__)

__all__ = ["Migration", "MIGRATIONS_DIR", "discover_migrations", "apply_migrations", "pending_migrations"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    sha256     VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file: ``NNN_description.sql``."""

    version: int
    name: str
    sql: str
    sha256: str


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read every ``NNN_*.sql`` file in order; versions must be unique.

    Raises
    ------
    CatalogMigrationError
        A file name does not follow ``NNN_name.sql`` or two files share a version.
    """
    out: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME_RE.match(path.name)
        if not m:
            raise CatalogMigrationError(
                f"Migration file {path.name} in {directory} does not match NNN_description.sql; rename it.",
                code="migration_bad_name", path=path)
        version = int(m.group(1))
        if version in out:
            raise CatalogMigrationError(
                f"Migrations {out[version].name} and {path.name} share version {version}; renumber one.",
                code="migration_duplicate", version=version)
        raw = path.read_bytes()
        out[version] = Migration(version, path.name, raw.decode("utf-8"), hashlib.sha256(raw).hexdigest())
    return [out[v] for v in sorted(out)]


def _applied(con: Any) -> dict[int, tuple[str, str]]:
    con.execute(_BOOKKEEPING)
    rows = con.execute("SELECT version, name, sha256 FROM schema_migrations ORDER BY version").fetchall()
    return {int(v): (n, h) for v, n, h in rows}


def _verify(applied: dict[int, tuple[str, str]], migrations: list[Migration]) -> list[Migration]:
    known = {m.version: m for m in migrations}
    for version, (name, digest) in applied.items():
        m = known.get(version)
        if m is None:
            raise CatalogMigrationError(
                f"The catalog has migration {name} (version {version}) applied, but no such file exists in this "
                "code; upgrade lwlib to a version that has it, or rebuild the catalog from the registry.",
                code="migration_missing", version=version)
        if m.sha256 != digest:
            raise CatalogMigrationError(
                f"Migration {m.name} was applied with sha256 {digest[:12]}… but the file now hashes to "
                f"{m.sha256[:12]}…; never edit an applied migration — revert it and add a new numbered file.",
                code="migration_altered", version=version, expected=digest, found=m.sha256)
    return [m for m in migrations if m.version not in applied]


def pending_migrations(con: Any, migrations: list[Migration] | None = None) -> list[Migration]:
    """Migrations not yet applied; verifies the hashes of those that were (read-only safe if the table exists)."""
    migrations = discover_migrations() if migrations is None else migrations
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'").fetchall()[0][0]
    if not exists:
        return list(migrations)
    rows = con.execute("SELECT version, name, sha256 FROM schema_migrations ORDER BY version").fetchall()
    return _verify({int(v): (n, h) for v, n, h in rows}, migrations)


def apply_migrations(con: Any, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction with its bookkeeping row.

    Idempotent: a second call applies nothing. Returns the names applied by this call.

    Raises
    ------
    CatalogMigrationError
        An applied migration's file changed or vanished, or a migration's SQL failed (rolled back whole).
    """
    migrations = discover_migrations() if migrations is None else migrations
    todo = _verify(_applied(con), migrations)
    done: list[str] = []
    for m in todo:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(m.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                        [m.version, m.name, m.sha256, naive_utc(utcnow())])
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise CatalogMigrationError(
                f"Migration {m.name} failed and was rolled back ({exc}); fix the SQL in a new migration file.",
                code="migration_failed", version=m.version) from exc
        logger.info("applied catalog migration %s", m.name)
        done.append(m.name)
    return done
