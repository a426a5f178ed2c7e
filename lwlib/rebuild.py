"""Moved to :mod:`lwlib.maintenance` (kept as an import path for callers being migrated)."""

from lwlib.maintenance import rebuild_catalog

__all__ = ["rebuild_catalog"]
