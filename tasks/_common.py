"""Shared task plumbing: which failures are worth a retry, and the dock for a flow run."""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from lwlib.dock import Dock, RuntimeMode
from lwlib.errors import CatalogError, InvalidPackageError, LwdockError, RegistryError, RuntimeBuildError
from lwlib.locks import BusyError

RETRYABLE_BUILD_CODES = frozenset({"runtime_build_timeout"})  # codes lwlib.runtime.env raises; the rest are final


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry on lock contention, registry hiccups and flaky builds; never on invalid input."""
    try:
        state.result()
    except InvalidPackageError:
        return False
    except (CatalogError, RegistryError, BusyError):
        return True
    except RuntimeBuildError as exc:
        return exc.code in RETRYABLE_BUILD_CODES
    except LwdockError:
        return False
    except Exception:  # noqa: BLE001 - unknown errors (I/O, OS) may be transient
        return True
    return False


def get_dock(home: str | Path | None = None, runtime_mode: RuntimeMode = "auto") -> Dock:
    """The flow run's dock: settings read once here (``home`` overrides ``LWDOCK_HOME``) and passed down."""
    return Dock.from_env(str(home) if home else None, runtime_mode=runtime_mode)


CATALOG_LIMIT_ENV = "LWDOCK_CATALOG_LIMIT"  # name of the Prefect global concurrency limit (cluster setups)


def catalog_write_slot() -> AbstractContextManager[None]:
    """One slot of the Prefect global concurrency limit that serialises catalog writes across workers.

    ``lwdock cluster up`` creates the limit (size 1) and exports its name in ``LWDOCK_CATALOG_LIMIT``; without it
    (embedded mode) this does nothing: DuckDB's own file lock and the task's retries serialise the writers of one
    machine.
    """
    name = os.environ.get(CATALOG_LIMIT_ENV)
    if not name:
        return nullcontext()
    from prefect.concurrency.sync import concurrency

    # a short lease (the server's minimum): a killed holder blocks the other writers for a minute, not five
    return concurrency(name, occupy=1, timeout_seconds=600, strict=True, lease_duration=60)


class _ThreadTimeoutNotice(logging.Filter):
    """Drop Prefect's per-task notice that a timeout cannot interrupt a task in a worker thread.

    Batch submissions run each submission in a worker thread, so the notice repeats for every task. The work that
    can hang (the learnware's own code) runs in a separate process whose call and startup timeouts the runtime
    enforces itself; the task timeouts are the outer bound.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout of %s seconds configured for this task")


logging.getLogger("prefect.task_runs").addFilter(_ThreadTimeoutNotice())
