"""Shared task plumbing: which failures are worth a retry, and the dock for a flow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwlib.dock import Dock
from lwlib.errors import CatalogError, InvalidPackageError, LwdockError, RegistryError, RuntimeBuildError
from lwlib.settings import Settings

TRANSIENT_CODES = {"catalog_locked", "build_timeout", "network", "registry_error", "catalog_error", "fault_injected"}


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry on lock contention, registry hiccups and flaky builds; never on invalid input."""
    try:
        state.result()
    except InvalidPackageError:
        return False
    except (CatalogError, RegistryError) as exc:
        return exc.code != "fault_injected"
    except RuntimeBuildError as exc:
        return exc.code in TRANSIENT_CODES
    except LwdockError:
        return False
    except Exception:  # noqa: BLE001 - unknown errors (I/O, OS) may be transient
        return True
    return False


def get_dock(home: str | Path | None, runtime_mode: str = "auto") -> Dock:
    settings = Settings(home=Path(home).expanduser().resolve()) if home else Settings.from_env()
    return Dock(settings, runtime_mode=runtime_mode)
