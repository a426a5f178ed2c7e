"""The dock's engine facade: one object that knows where everything lives and does each stage step.

Each public method is one step of ARCHITECTURE.md (validate, containerize, check, specify, register, catalog,
search, reuse). Prefect tasks are thin wrappers around these methods; the CLI and notebooks can call them directly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lwlib.check import CheckReport, check_learnware
from lwlib.errors import LwdockError
from lwlib.settings import Settings
from lwlib.specify import SpecReport, verify_specs
from lwlib.status import Status

__all__ = ["Dock", "RuntimeInfo", "RegistryRef", "inject_fault"]

logger = logging.getLogger(__name__)

FAULT_ENV = "LWDOCK_INJECT_FAULT"


def inject_fault(step: str) -> None:
    """Raise at ``step`` when ``LWDOCK_INJECT_FAULT`` names it: used by crash-consistency tests and chaos drills."""
    if step in {s.strip() for s in os.environ.get(FAULT_ENV, "").split(",") if s.strip()}:
        raise LwdockError(f"fault injected at step '{step}' ({FAULT_ENV})", code="fault_injected", step=step)


@dataclass(frozen=True)
class RuntimeInfo:
    """Where a learnware runs: the environment key/mode and the OCI build context (and image, if built)."""

    env_key: str
    mode: str
    python: str
    oci_context: str | None = None
    image_built: bool = False
    image_id: str | None = None
    image_note: str = ""


@dataclass(frozen=True)
class RegistryRef:
    name: str
    version: str
    uri: str
    run_id: str | None = None


@dataclass
class Dock:
    """Entry point of the engine. ``Dock(Settings(home=...))`` or ``Dock.from_env()``."""

    settings: Settings = field(default_factory=Settings.from_env)
    runtime_mode: str = "auto"

    @classmethod
    def from_env(cls) -> "Dock":
        return cls(Settings.from_env())

    def __post_init__(self) -> None:
        self.settings.ensure()

    # -- storage ---------------------------------------------------------------------------------------------
    def store_package(self, source: str | Path | bytes) -> Path:
        """Copy a zip into the content-addressed store (``learnwares/<sha256>.zip``); same bytes ⇒ same path."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        dest = self.settings.packages_dir / f"{sha}.zip"
        if not dest.exists():
            fd, tmp = tempfile.mkstemp(dir=self.settings.packages_dir, suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        return dest

    def discard_package(self, learnware_id: str) -> None:
        """Remove a rejected package's zip and extracted tree (INVALID submissions leave nothing behind)."""
        (self.settings.packages_dir / f"{learnware_id}.zip").unlink(missing_ok=True)
        shutil.rmtree(self.settings.packages_dir / learnware_id, ignore_errors=True)

    # -- stage steps -----------------------------------------------------------------------------------------
    def validate(self, zip_path: str | Path, semantic_spec: Any = None) -> Any:
        """Safe-extract and parse the package; raises InvalidPackageError (→ INVALID) with the reason."""
        from lwlib.learnware import open_learnware
        from lwlib.semantic import SemanticSpec

        sem = None
        if semantic_spec is not None:
            sem = semantic_spec if isinstance(semantic_spec, SemanticSpec) else SemanticSpec.from_reference(semantic_spec)
        lw = open_learnware(Path(zip_path), self.settings.packages_dir, semantic_spec=sem)
        if lw.semantic_spec is None:
            from lwlib.errors import SemanticSpecError

            raise SemanticSpecError("no semantic specification: pass one with the submission (--semantic FILE) or "
                                    "ship semantic_specification.json in the zip", code="semantic_missing")
        return lw

    def environments(self) -> Any:
        from lwlib.runtime import EnvironmentManager

        return EnvironmentManager(self.settings.runtimes_dir, self.settings.uv_cache_dir)

    def containerize(self, learnware: Any) -> RuntimeInfo:
        """Build (or reuse) the learnware's environment and write its OCI build context; build the image if an engine answers."""
        from lwlib.runtime import oci

        env = self.environments().ensure(learnware.requirements, mode=self.runtime_mode)
        ctx_dir = self.settings.home / "oci" / learnware.id
        ctx = oci.write_build_context(learnware, ctx_dir, environment=env)
        image = oci.build_image(ctx)
        return RuntimeInfo(env.key, env.mode, str(env.python), str(ctx), bool(image.built),
                           getattr(image, "image_id", None), getattr(image, "reason", "") or "")

    @contextmanager
    def open_model(self, learnware: Any, **kwargs: Any) -> Iterator[Any]:
        """Run the learnware in its isolated runtime: ``with dock.open_model(lw) as m: m.predict(X)``."""
        from lwlib.runtime import Runtime

        kwargs.setdefault("mode", self.runtime_mode)
        kwargs.setdefault("envs", self.environments())
        with Runtime.open(learnware, **kwargs) as model:
            yield model

    def check(self, learnware: Any) -> CheckReport:
        return check_learnware(learnware, self.open_model)

    def specify(self, learnware: Any) -> SpecReport:
        return verify_specs(learnware)

    def registry(self) -> Any:
        from lwlib.registry import Registry

        return Registry(self.settings.mlflow_uri, self.settings.mlflow_artifacts_dir)

    @contextmanager
    def catalog(self, read_only: bool = False) -> Iterator[Any]:
        from lwlib.catalog import Catalog

        with Catalog.open(self.settings.catalog_path, read_only=read_only) as cat:
            yield cat
