"""The market's read side: one snapshot of the catalog plus a persisted, incrementally updated search index.

``MarketSnapshot.open(settings).search(requirement)`` is what ``lwdock search``, ``lwdock api`` and the deploying
flow call; ``update_index(settings, added=..., removed=...)`` is what the catalog's writer calls after a
transaction; ``rebuild_index`` is run by ``lwdock catalog rebuild``. Nothing here imports torch, Prefect or
scikit-learn on the read path.
"""

from lwlib.market.snapshot import MarketSnapshot
from lwlib.market.sync import IndexUpdate, rebuild_index, sync_index, update_index

__all__ = ["MarketSnapshot", "IndexUpdate", "update_index", "rebuild_index", "sync_index"]
