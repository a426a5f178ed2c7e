"""Learnware Dock engine: package format, specifications, catalog, runtimes, search and reuse.

Plain Python; nothing here imports Prefect (orchestration lives in ``tasks/`` and ``flows/``).
"""

from lwlib.errors import LwdockError
from lwlib.settings import Settings

__all__ = ["LwdockError", "Settings"]
__version__ = "0.1.0"
