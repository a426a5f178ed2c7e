"""The composition root: one object that builds the dock's parts once from :class:`Settings` and hands them out.

Stage logic lives in :mod:`lwlib.submission` and :mod:`lwlib.deployment`; this module only wires the package
store, environments, runtimes, catalog and registry to one home, so nothing below it reads the environment.
Expensive parts (MLflow, uv, torch) are created on first use, so a read-only command never pays for them.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterator, Literal

from lwlib.locks import LockDir
from lwlib.package_store import PackageStore
from lwlib.settings import Settings

if TYPE_CHECKING:
    from lwlib.catalog import Catalog, LearnwareRecord
    from lwlib.learnware import Learnware
    from lwlib.registry import Registry
    from lwlib.runtime import EnvironmentManager, RuntimeModel
    from lwlib.runtime.env import Environment

__all__ = ["Dock", "RuntimeMode"]

logger = logging.getLogger(__name__)

RuntimeMode = Literal["auto", "venv", "inherit"]


@dataclass
class Dock:
    """Entry point of the engine: ``Dock(Settings(home=...))`` or ``Dock.from_env()``.

    Parameters
    ----------
    settings : Settings
        Where everything lives; read once by the caller.
    runtime_mode : {"auto", "venv", "inherit"}
        How learnware environments are made (``auto`` inherits the dock's interpreter when it satisfies them).
    build_images : bool
        Try to build OCI images when a container engine answers.
    """

    settings: Settings = field(default_factory=Settings.from_env)
    runtime_mode: RuntimeMode = "auto"
    build_images: bool = True

    @classmethod
    def from_env(cls, home: str | None = None, runtime_mode: RuntimeMode = "auto") -> Dock:
        return cls(Settings.from_env(home), runtime_mode=runtime_mode)

    def __post_init__(self) -> None:
        self.settings.ensure()

    def __getstate__(self) -> dict[str, Any]:  # a task runner may pickle the dock: send settings, not clients
        return {"settings": self.settings, "runtime_mode": self.runtime_mode, "build_images": self.build_images}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- parts, each built once ------------------------------------------------------------------------------
    @cached_property
    def packages(self) -> PackageStore:
        return PackageStore(self.settings.packages_dir)

    @cached_property
    def locks(self) -> LockDir:
        return LockDir(self.settings.locks_dir)

    @cached_property
    def environments(self) -> EnvironmentManager:
        from lwlib.runtime import EnvironmentManager

        return EnvironmentManager(self.settings.runtimes_dir, self.settings.uv_cache_dir)

    @cached_property
    def registry(self) -> Registry:
        from lwlib.registry import Registry

        return Registry.from_settings(self.settings)

    @contextmanager
    def catalog(self, read_only: bool = False) -> Iterator[Catalog]:
        """The DuckDB catalog; writers hold it for one short transaction, readers open it read-only."""
        from lwlib.catalog import Catalog

        with Catalog.open(self.settings.catalog_path, read_only=read_only) as cat:
            yield cat

    @contextmanager
    def catalog_writer(self) -> Iterator[Catalog]:
        """The one door for catalog writes: a cross-process lock, then a short writable open.

        DuckDB admits one writing process per file; queueing writers on a lock (instead of racing for the file)
        lets several submissions on one home all land, each in its own short transaction.
        """
        with self.locks.named("catalog-write"), self.catalog() as cat:
            yield cat

    @contextmanager
    def open_model(self, learnware: Learnware, *, environment: Environment | None = None,
                   **kwargs: Any) -> Iterator[RuntimeModel]:
        """Run the learnware in its sandboxed runtime: ``with dock.open_model(lw) as m: m.predict(X)``.

        ``environment`` is the one ``containerize`` built (else it is resolved here). The dock home in use is
        hidden from the sandbox.
        """
        from lwlib.runtime import Runtime

        kwargs.setdefault("mode", self.runtime_mode)
        if environment is not None:
            kwargs["environment"] = environment
        model = Runtime.open(learnware, envs=self.environments, hide=(self.settings.home,), **kwargs)
        try:
            yield model
        finally:
            model.close()

    # -- small lookups shared by both stages ---------------------------------------------------------------
    def open_learnware(self, record: LearnwareRecord) -> Learnware:
        """A catalogued learnware's package, from its record (no catalog re-read)."""
        from lwlib.learnware import open_learnware

        if record.zip_path is None:
            from lwlib.errors import LwdockError

            raise LwdockError(f"learnware {record.name} has no stored package; run `lwdock doctor`",
                              code="package_missing", learnware_id=record.id)
        return open_learnware(record.zip_path, self.settings.packages_dir, semantic_spec=record.semantic_spec(),
                              learnware_id=record.id)

    def get(self, learnware_id: str) -> LearnwareRecord:
        """The catalog row of ``learnware_id`` (read-only open); raises ``not_found`` with what to do."""
        from lwlib.errors import LwdockError

        rec = None
        if self.settings.catalog_path.exists():
            with self.catalog(read_only=True) as cat:
                rec = cat.get(learnware_id)
        if rec is None:
            raise LwdockError(f"no learnware {learnware_id[:12]} in the catalog; `lwdock list` shows what is there",
                              code="not_found", learnware_id=learnware_id)
        return rec

    def resolve_id(self, prefix: str) -> str:
        """Expand an id prefix or an exact name (as shown by ``lwdock list``) to the full content id."""
        from lwlib.errors import LwdockError

        ids: list[str] = []
        if self.settings.catalog_path.exists():
            with self.catalog(read_only=True) as cat:
                rows = cat.list()
            ids = [r.id for r in rows if r.id.startswith(prefix)] or [r.id for r in rows if r.name == prefix]
        if len(ids) != 1:
            raise LwdockError(f"'{prefix}' matches {len(ids)} learnwares; give more characters of the id",
                              code="ambiguous_id" if ids else "not_found")
        return ids[0]

    def discard_runtime_context(self, learnware_id: str) -> None:
        """Remove a learnware's OCI build context (its environment is shared by requirements and stays)."""
        shutil.rmtree(self.settings.oci_dir / learnware_id, ignore_errors=True)
