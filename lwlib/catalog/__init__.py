"""The market catalog: a DuckDB index of what the registry holds (semantic columns, specs, check history)."""

from lwlib.catalog.migrate import apply_migrations, discover_migrations, pending_migrations
from lwlib.catalog.records import CheckRecord, LearnwareRecord, SpecPayload, SpecStack
from lwlib.catalog.store import Catalog, connect

__all__ = [
    "Catalog",
    "connect",
    "LearnwareRecord",
    "CheckRecord",
    "SpecPayload",
    "SpecStack",
    "apply_migrations",
    "discover_migrations",
    "pending_migrations",
]
