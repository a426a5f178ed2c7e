"""Settings read once from the environment.

The dock keeps all its state under one home folder (``LWDOCK_HOME``, default ``~/.lwdock``): the DuckDB
catalog, the MLflow sqlite store and artifacts, unpacked learnwares, runtime environments and Prefect's home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "configure_process"]


PROCESS_DEFAULTS = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
                    "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def configure_process(home: Path | str | None, *, quiet: bool = True) -> Path:
    """Point this process (the dock, and Prefect and MLflow once imported) at one home, offline.

    Why here: the CLI, the demo and the benchmark runner are separate entry points that must agree on where
    Prefect keeps its database and that nothing phones home; they call this before Prefect is imported.
    """
    resolved = Path(home).expanduser().resolve() if home is not None else _default_home()
    resolved.mkdir(parents=True, exist_ok=True)
    os.environ["LWDOCK_HOME"] = str(resolved)
    os.environ.setdefault("PREFECT_HOME", str(resolved / "prefect"))
    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if quiet:
        import logging

        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # mlflow resets its logger level on import
        for name in ("mlflow", "alembic", "lwlib"):
            logging.getLogger(name).setLevel(logging.WARNING)
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")  # thread-timeout notices would flood the screen
        os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "true")
    return resolved


#: The dock's own MLflow tracking URI setting (a tracking server in cluster setups). Not MLFLOW_TRACKING_URI: MLflow
#: itself rewrites that process-global variable (``mlflow.set_tracking_uri``), so it cannot configure the dock.
TRACKING_URI_ENV = "LWDOCK_TRACKING_URI"


def _default_home() -> Path:
    return Path(os.environ.get("LWDOCK_HOME", Path.home() / ".lwdock")).expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    """Where the dock keeps things, read from the environment when the object is made (defaults) and never after.

    Build with :meth:`from_env` or pass ``home=`` explicitly (tests).
    """

    home: Path = field(default_factory=_default_home)
    tracking_uri: str | None = field(default_factory=lambda: os.environ.get(TRACKING_URI_ENV) or None)
    uv_cache: Path | None = field(default_factory=lambda: Path(os.environ["LWDOCK_UV_CACHE"])
                                  if os.environ.get("LWDOCK_UV_CACHE") else None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser().resolve())

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> "Settings":
        """Read the environment once (``LWDOCK_HOME``, ``LWDOCK_TRACKING_URI``, ``LWDOCK_UV_CACHE``).

        ``home`` overrides ``LWDOCK_HOME`` (a flow called with ``home=``); everything below the :class:`Dock`
        receives these settings explicitly and never reads the environment again.
        """
        return cls(home=Path(home) if home is not None else _default_home())

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.duckdb"

    @property
    def packages_dir(self) -> Path:
        """Content-addressed learnware zips and their extracted trees (``<sha256>.zip``, ``<sha256>/``)."""
        return self.home / "learnwares"

    @property
    def runtimes_dir(self) -> Path:
        return self.home / "runtimes"

    @property
    def uv_cache_dir(self) -> Path:
        return self.uv_cache or self.home / "uv-cache"

    @property
    def mlflow_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.home / "mlflow-artifacts"

    @property
    def oci_dir(self) -> Path:
        """OCI build contexts, one per learnware content id."""
        return self.home / "oci"

    @property
    def locks_dir(self) -> Path:
        """Cross-process lock files (per content id, Prefect database migration)."""
        return self.home / "locks"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    def ensure(self) -> "Settings":
        for p in (self.home, self.packages_dir, self.runtimes_dir, self.mlflow_artifacts_dir, self.locks_dir):
            p.mkdir(parents=True, exist_ok=True)
        return self
