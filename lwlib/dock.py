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

__all__ = ["Dock", "RuntimeInfo", "RegistryRef", "inject_fault", "registry_name"]

logger = logging.getLogger(__name__)

FAULT_ENV = "LWDOCK_INJECT_FAULT"


_FIRED: set[str] = set()


def inject_fault(step: str) -> None:
    """Raise at ``step`` when ``LWDOCK_INJECT_FAULT`` names it: used by crash-consistency tests and chaos drills.

    ``step`` fails every time (not retried); ``step:once`` fails with a transient error the first time only in
    this process, so the task's retry succeeds (the case that must not lose the registry version).
    """
    wanted = {s.strip() for s in os.environ.get(FAULT_ENV, "").split(",") if s.strip()}
    if step in wanted:
        raise LwdockError(f"fault injected at step '{step}' ({FAULT_ENV})", code="fault_injected", step=step)
    if f"{step}:once" in wanted and step not in _FIRED:
        _FIRED.add(step)
        from lwlib.errors import CatalogError

        raise CatalogError(f"transient fault injected once at step '{step}' ({FAULT_ENV})",
                           code="transient_fault", step=step)


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
    build_images: bool = True

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

        envs = self.environments()
        env = envs.ensure(learnware.requirements, mode=self.runtime_mode)
        ctx_dir = self.settings.home / "oci" / learnware.id
        if (ctx_dir / "Containerfile").is_file():  # content-addressed: an existing context is the same one
            ctx = oci.BuildContext(ctx_dir, ctx_dir / "Containerfile", ctx_dir / "requirements.lock", True, "cached")
        else:  # written beside its final place (same filesystem) and renamed in: never half-written
            shutil.rmtree(ctx_dir, ignore_errors=True)
            ctx_dir.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=ctx_dir.parent, prefix=".part-"))
            written = oci.write_build_context(learnware, tmp, environment=env, envs=envs)
            os.replace(tmp, ctx_dir)
            ctx = oci.BuildContext(ctx_dir, ctx_dir / "Containerfile", ctx_dir / "requirements.lock", written.locked,
                                   written.lock_source)
        image = oci.build_image(ctx) if self.build_images else oci.ImageBuildResult(False, "image builds disabled")
        return RuntimeInfo(env.key, env.mode, str(env.python), str(ctx_dir), bool(image.built),
                           image.image_id, image.reason or "")

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

    # -- registry and catalog ------------------------------------------------------------------------------
    def register(self, learnware: Any, check: CheckReport, spec: SpecReport, runtime: RuntimeInfo,
                 timings: dict[str, float] | None = None) -> RegistryRef:
        """One MLflow run for the submission (params, metrics, artifacts) and a registry version (idempotent by sha)."""
        inject_fault("register")
        sem = learnware.semantic_spec
        reg = self.registry()
        params = {"data_type": sem.data_type, "task_type": sem.task_type, "library_type": sem.library_type,
                  "scenarios": ",".join(sem.scenarios), "license": sem.license, "name": sem.name,
                  "spec_type": spec.spec_type, "runtime_mode": runtime.mode, "runtime_key": runtime.env_key[:16]}
        metrics = {f"time_{k}_s": float(v) for k, v in (timings or {}).items()}
        metrics.update({"check_usable": float(check.status is Status.USABLE), "check_duration_s": check.duration_s,
                        "probes_passed": float(sum(p.get("ok", False) for p in check.probes.values())),
                        "spec_self_inner": spec.self_mmd2, "spec_k": float(spec.reduced_set_size)})
        tags = {"lwdock.name": sem.name, "lwdock.data_type": sem.data_type, "lwdock.task_type": sem.task_type,
                "lwdock.library_type": sem.library_type, "lwdock.scenarios": ",".join(sem.scenarios),
                "lwdock.license": sem.license, "lwdock.status": check.status.value}
        with reg.start_submission_run(learnware.id, params) as run:
            run.log_metrics(metrics)
            run.log_dicts({"manifest/learnware.yaml": learnware.manifest.to_dict(),
                           **{f"spec/{t}.json": stat.to_dict() for t, stat in learnware.stat_specs.items()},
                           "check/check_report.json": check.to_dict(), "check/spec_report.json": spec.to_dict(),
                           "semantic/semantic_specification.json": sem.to_reference()})
            name, version = reg.register_learnware(learnware.zip_path, name=registry_name(sem.name, learnware.id),
                                                   run=run, tags=tags, usable=check.status is Status.USABLE,
                                                   runtime_mode=self.runtime_mode)
        return RegistryRef(name, str(version), f"models:/{name}/{version}", run.run_id)

    def unregister(self, ref: RegistryRef) -> None:
        """Compensation for a failed submission: remove the registry entry written for it."""
        self.registry().delete_learnware(ref.name)

    def record(self, learnware: Any, check: CheckReport, spec: SpecReport, runtime: RuntimeInfo,
               ref: RegistryRef, *, kind: str = "submit") -> Any:
        """Write the catalog row, spec payloads and the check into the catalog in one transaction."""
        from lwlib.catalog import CheckRecord, LearnwareRecord, SpecPayload

        inject_fault("catalog")
        rec = LearnwareRecord.from_semantic(
            learnware.id, learnware.semantic_spec, status=check.status, reason=check.reason,
            spec_type=spec.spec_type, spec_dim=spec.n_features, spec_k=spec.reduced_set_size,
            runtime_key=runtime.env_key, registry_name=ref.name, registry_version=ref.version,
            registry_uri=ref.uri, zip_path=str(learnware.zip_path))
        payloads = [SpecPayload.from_spec(learnware.id, s) for s in learnware.stat_specs.values()]
        with self.catalog() as cat, cat.transaction():
            stored = cat.upsert_learnware(rec, payloads)
            cat.add_check(CheckRecord(learnware.id, kind, check.status, check.reason, check.to_dict(), check.duration_s))
        return stored

    def existing(self, learnware_id: str) -> Any | None:
        """The catalog row of an already accepted submission whose registry version also exists (idempotency)."""
        if not self.settings.catalog_path.exists():
            return None
        with self.catalog() as cat:
            rec = cat.get(learnware_id)
        if rec is None or self.registry().find_version(learnware_id) is None:
            return None
        return rec

    def load(self, learnware_id: str) -> Any:
        """Open a catalogued learnware's package (extracted under the dock home)."""
        from lwlib.learnware import open_learnware

        with self.catalog(read_only=False) as cat:
            rec = cat.get(learnware_id)
        if rec is None:
            raise LwdockError(f"no learnware {learnware_id} in the catalog; `lwdock list` shows what is there",
                              code="not_found", learnware_id=learnware_id)
        return open_learnware(Path(rec.zip_path), self.settings.packages_dir, semantic_spec=rec.semantic_spec())

    def resolve_id(self, prefix: str) -> str:
        """Expand an id prefix (as shown by ``lwdock list``) to the full sha256 id."""
        with self.catalog() as cat:
            ids = [r.id for r in cat.list() if r.id.startswith(prefix)]
        if len(ids) != 1:
            raise LwdockError(f"id prefix '{prefix}' matches {len(ids)} learnwares; give more characters",
                              code="ambiguous_id" if ids else "not_found")
        return ids[0]

    def apply_recheck(self, learnware_id: str, check: CheckReport) -> tuple[Status, Status]:
        """Record a re-check: history row, catalog status, and the registry's ``usable`` alias. Returns (old, new)."""
        from lwlib.catalog import CheckRecord

        with self.catalog() as cat:
            rec = cat.get(learnware_id)
            if rec is None:
                raise LwdockError(f"no learnware {learnware_id} to re-check", code="not_found")
            with cat.transaction():
                cat.add_check(CheckRecord(learnware_id, "recheck", check.status, check.reason, check.to_dict(),
                                          check.duration_s))
                cat.set_status(learnware_id, check.status, check.reason)
        if rec.registry_name and rec.registry_version:
            self.registry().set_usable(rec.registry_name, rec.registry_version, check.status is Status.USABLE)
        return rec.status, check.status

    def register_solution(self, outcome: Any, name: str, search_params: dict[str, Any],
                          timings: dict[str, float]) -> RegistryRef:
        """Register a reuse solution (its learnwares' zips + recipe + our fitted parts) with lineage tags, and
        log the search that produced it (parameters and step timings) as an MLflow run."""
        reg = self.registry()
        with self.catalog() as cat:
            zips = {lid: cat.get(lid).zip_path for lid in outcome.learnware_ids}
        with reg.start_submission_run(name, {**search_params, "reuser": outcome.kind}, kind="search") as run:
            run.log_metrics({f"time_{k}_s": float(v) for k, v in timings.items()})
            run.log_dicts({"search/selection.json": {"learnware_ids": list(outcome.learnware_ids),
                                                     "weights": list(outcome.weights)}})
        tags = {"lwdock.reuser": outcome.kind, "lwdock.learnwares": ",".join(outcome.learnware_ids),
                "lwdock.weights": ",".join(f"{w:.4f}" for w in outcome.weights), "lwdock.search_run": run.run_id}
        rname, version = reg.register_solution(name, zips, outcome.solution, outcome.parts or None, tags,
                                               runtime_mode=self.runtime_mode)
        return RegistryRef(rname, str(version), f"models:/{rname}/{version}", run.run_id)

    def delete(self, learnware_id: str) -> bool:
        """Remove a learnware from registry, catalog and package store."""
        with self.catalog() as cat:
            rec = cat.get(learnware_id)
            existed = cat.delete(learnware_id)
        if rec is not None and rec.registry_name:
            self.registry().delete_learnware(rec.registry_name)
        self.discard_package(learnware_id)
        return existed


def registry_name(name: str, learnware_id: str) -> str:
    """A readable, unique registered-model name: slug of the semantic Name + 8 hex of the content id."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{slug[:40] or 'learnware'}-{learnware_id[:8]}"
