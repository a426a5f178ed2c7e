"""Shared task plumbing: which failures are worth a retry, and the dock for a flow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwlib.dock import Dock
from lwlib.errors import CatalogError, InvalidPackageError, LwdockError, RegistryError, RuntimeBuildError
from lwlib.settings import Settings

RETRYABLE_BUILD_CODES = frozenset({"runtime_build_timeout"})  # codes lwlib.runtime.env raises; the rest are final


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry on lock contention, registry hiccups and flaky builds; never on invalid input."""
    try:
        state.result()
    except InvalidPackageError:
        return False
    except (CatalogError, RegistryError):
        return True
    except RuntimeBuildError as exc:
        return exc.code in RETRYABLE_BUILD_CODES
    except LwdockError:
        return False
    except Exception:  # noqa: BLE001 - unknown errors (I/O, OS) may be transient
        return True
    return False


def get_dock(home: str | Path | None, runtime_mode: str = "auto") -> Dock:
    settings = Settings(home=Path(home).expanduser().resolve()) if home else Settings.from_env()
    return Dock(settings, runtime_mode=runtime_mode)
