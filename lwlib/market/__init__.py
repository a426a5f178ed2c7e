"""The market's read side: one snapshot of the catalog plus a persisted, incrementally updated search index.

``MarketSnapshot.open(settings).search(requirement)`` is what ``lwdock search``, ``lwdock api`` and the deploying
flow call; ``update_index(settings, added=..., removed=...)`` is what the catalog's writer calls after a
transaction; ``rebuild_index`` is run by ``lwdock catalog rebuild``. Nothing here imports torch, Prefect or
scikit-learn on the read path. Names are resolved lazily so ``lwlib.market.scan`` alone stays cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lwlib.market.snapshot import MarketSnapshot
    from lwlib.market.sync import IndexUpdate, rebuild_index, sync_index, update_index

__all__ = ["MarketSnapshot", "IndexUpdate", "update_index", "rebuild_index", "sync_index"]

_WHERE = {"MarketSnapshot": "lwlib.market.snapshot", "IndexUpdate": "lwlib.market.sync",
          "update_index": "lwlib.market.sync", "rebuild_index": "lwlib.market.sync", "sync_index": "lwlib.market.sync"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'lwlib.market' has no attribute {name!r}")
