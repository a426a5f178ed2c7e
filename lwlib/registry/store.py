"""The MLflow Model Registry as the dock's system of record (sqlite store + local artifact folder, no network).

One registered model per learnware (a slug of its name plus 8 hex of its content id, :func:`model_name_for`), one
version per accepted submission,
tags for the semantic fields plus ``lwdock.sha256``, and the alias ``usable`` on the version that passed its last
check. Only this package imports mlflow; everything goes through an explicit :class:`mlflow.MlflowClient`, so
the process-global MLflow URIs are never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from lwlib.errors import RegistryError
from lwlib.locks import file_lock
from lwlib.registry.payload import model_description, model_name_for, submission_payload
from lwlib.registry.pyfunc import LEARNWARE_ARTIFACT, PARTS_ARTIFACT, SOLUTION_ARTIFACT, model_script
from lwlib.settings import Settings

if TYPE_CHECKING:
    from lwlib.submission import RegistryRef, Submission

logger = logging.getLogger(__name__)

__all__ = ["Registry", "SubmissionRun", "RegisteredVersion", "USABLE_ALIAS", "SHA_TAG", "model_name_for"]

USABLE_ALIAS = "usable"
SHA_TAG = "lwdock.sha256"
KIND_TAG = "lwdock.kind"
PID_TAG = "lwdock.pid"  # with HOST_TAG: lets `lwdock doctor` end runs whose process died (kill -9)
HOST_TAG = "lwdock.host"
MODEL_ARTIFACT = "model"
DEFAULT_PIP_REQUIREMENTS = ("learnware-dock", "numpy", "mlflow==3.17.2")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tag_values(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """MLflow tags are strings: keep strings, JSON-encode everything else (lists, numbers, None)."""
    return {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in (tags or {}).items()}


@dataclass(frozen=True)
class RegisteredVersion:
    """One model version as the dock sees it."""

    name: str
    version: str
    sha256: str | None
    run_id: str | None
    source: str
    tags: Mapping[str, str]
    aliases: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return USABLE_ALIAS in self.aliases


class SubmissionRun:
    """The MLflow run of one submission: params (semantic fields), metrics (timings, checks), artifacts."""

    def __init__(self, client: MlflowClient, run_id: str, learnware_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.learnware_id = learnware_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """All params in one batch (one store transaction instead of one per param)."""
        self.client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in _tag_values(params).items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        ts = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), ts, step or 0) for k, v in metrics.items()])

    def log_dicts(self, objects: Mapping[str, Any]) -> None:
        """Several JSON/YAML artifacts in one upload: ``{"dir/file.json": obj, ...}``."""
        with tempfile.TemporaryDirectory(prefix="lwdock-run-") as tmp:
            for rel, obj in objects.items():
                path = Path(tmp) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if rel.endswith((".yaml", ".yml")):
                    path.write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
                else:
                    path.write_text(json.dumps(obj, indent=2, default=_json_default), encoding="utf-8")
            self.client.log_artifacts(self.run_id, tmp)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        """Store a JSON artifact (manifest, spec JSON, check report)."""
        self.client.log_dict(self.run_id, obj, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in _tag_values(tags).items()])


class Registry:
    """Save/log/load triad over the MLflow registry.

    Parameters
    ----------
    tracking_uri : str
        ``sqlite:///<home>/mlflow.db`` locally, or a tracking server's URL.
    artifact_root : path
        Artifact folder for the experiment (``<home>/mlflow-artifacts``); set explicitly so nothing lands in
        ``./mlruns``. Ignored when a tracking server serves artifacts (``http(s)://`` tracking URIs).
    experiment : str
        Experiment holding submission runs.
    """

    def __init__(self, tracking_uri: str, artifact_root: str | Path,
                 experiment: str = "learnware-dock") -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = Path(artifact_root).expanduser().resolve()
        self.experiment = experiment
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, experiment: str = "learnware-dock") -> Registry:
        settings.ensure()
        return cls(settings.mlflow_uri, settings.mlflow_artifacts_dir, experiment)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            if self.tracking_uri.startswith("sqlite:///"):
                db = Path(self.tracking_uri[len("sqlite:///"):])
                # MLflow creates and migrates a SQLite store when a client first opens it; processes opening a
                # fresh home together race on it ("table latest_metrics already exists"): one at a time.
                with file_lock(db.with_name(db.name + ".init.lock"), what="the MLflow store's first open"):
                    client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                    client.search_registered_models(max_results=1)  # the registry store opens lazily
            else:
                client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            self._client = client
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                location = None  # a tracking server chooses (and serves) the artifact store
                if not self.tracking_uri.startswith(("http://", "https://")):
                    self.artifact_root.mkdir(parents=True, exist_ok=True)
                    location = self.artifact_root.as_uri()
                try:
                    self._experiment_id = self.client.create_experiment(self.experiment,
                                                                        artifact_location=location)
                except MlflowException:  # created concurrently by another writer
                    exp = self.client.get_experiment_by_name(self.experiment)
                    if exp is None:
                        raise
                    self._experiment_id = exp.experiment_id
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    # ------------------------------------------------------------------ runs
    @contextmanager
    def start_submission_run(self, learnware_id: str, params: Mapping[str, Any] | None = None,
                             *, kind: str = "submit", label: str | None = None) -> Iterator[SubmissionRun]:
        """A run for one submission or re-check; ends FINISHED, or FAILED if the block raises."""
        try:
            run_tags = {KIND_TAG: kind, "lwdock.subject": learnware_id, PID_TAG: str(os.getpid()),
                        HOST_TAG: socket.gethostname()}
            if _SHA_RE.match(learnware_id):
                run_tags[SHA_TAG] = learnware_id
            run = self.client.create_run(self.experiment_id, run_name=f"{kind}-{label or learnware_id[:12]}", tags=run_tags)
        except MlflowException as exc:
            raise RegistryError(f"Could not start an MLflow run in {self.tracking_uri} ({exc}); check that the "
                                "store path is writable.", code="registry_run_failed") from exc
        sub = SubmissionRun(self.client, run.info.run_id, learnware_id)
        if params:
            sub.log_params(params)
        try:
            yield sub
        except BaseException:
            self.client.set_terminated(sub.run_id, status="FAILED")
            raise
        self.client.set_terminated(sub.run_id, status="FINISHED")

    # ------------------------------------------------------------------ registration
    def _log_pyfunc(self, run_id: str, class_name: str, artifacts: Mapping[str, str],
                    pip_requirements: Sequence[str], model_config: Mapping[str, Any] | None,
                    signature: Any = None) -> str:
        with tempfile.TemporaryDirectory(prefix="lwdock-pyfunc-") as tmp:
            script = Path(tmp) / "lwdock_model.py"
            script.write_text(model_script(class_name), encoding="utf-8")
            out = Path(tmp) / MODEL_ARTIFACT
            with warnings.catch_warnings():  # an input example would mean running the model here: never
                warnings.filterwarnings("ignore", message=".*input example was not provided.*")
                mlflow.pyfunc.save_model(str(out), python_model=str(script), artifacts=dict(artifacts),
                                         pip_requirements=list(pip_requirements),
                                         model_config=dict(model_config or {}), signature=signature)
            self.client.log_artifacts(run_id, str(out), MODEL_ARTIFACT)
        return f"{self.client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"

    def _create_version(self, name: str, source: str, run_id: str, tags: dict[str, str],
                        description: str | None = None) -> str:
        try:
            model = self.client.get_registered_model(name)
            if description and model.description != description:
                self.client.update_registered_model(name, description=description)
        except MlflowException:
            self.client.create_registered_model(name, tags=tags, description=description)
        mv = self.client.create_model_version(name, source=source, run_id=run_id, tags=tags, description=description)
        current = self.client.get_registered_model(name).tags or {}
        for k, v in tags.items():  # the model's tags mirror its newest version; only changed ones are written
            if current.get(k) != v:
                self.client.set_registered_model_tag(name, k, v)
        return str(mv.version)

    def register_submission(self, sub: Submission) -> RegistryRef:
        """One MLflow run for a checked submission (params, metrics, artifacts) and its registry version.

        Idempotent by content id: a zip already registered returns its existing version.
        """
        from lwlib.status import Status
        from lwlib.submission import RegistryRef

        payload = submission_payload(sub)
        assert sub.check is not None
        with self.start_submission_run(sub.id, payload.params, label=model_name_for(sub.id, sub.semantic.name)) as run:
            run.log_metrics(payload.metrics)
            run.log_dicts(payload.artifacts)
            name, version = self.register_learnware(
                sub.learnware.zip_path, learnware_id=sub.id, name=model_name_for(sub.id, sub.semantic.name), run=run,
                tags=payload.tags, usable=sub.check.status is Status.USABLE,
                runtime_mode=sub.runtime.mode if sub.runtime is not None else "auto",
                description=model_description(sub), signature=learnware_signature(sub))
        return RegistryRef(name, str(version), f"models:/{name}/{version}", run.run_id)

    def register_learnware(self, zip_path: str | Path, *, learnware_id: str | None = None, name: str | None = None,
                           run: SubmissionRun | None = None, tags: Mapping[str, Any] | None = None,
                           usable: bool = True, runtime_mode: str = "auto", description: str | None = None,
                           signature: Any = None,
                           pip_requirements: Sequence[str] = DEFAULT_PIP_REQUIREMENTS) -> tuple[str, str]:
        """Register a learnware zip as a pyfunc version; idempotent by the zip's sha256.

        Returns ``(name, version)``. ``name`` defaults to :func:`model_name_for` of the sha256; passing one lets
        successive submissions of a learnware become versions of one model. A zip already registered returns its
        existing version (its alias is then set from ``usable``). Without ``run`` a run of its own is started.

        Raises
        ------
        RegistryError
            The zip is missing, or MLflow failed to store the model.
        """
        zp = Path(zip_path)
        if not zp.is_file():
            raise RegistryError(f"Learnware zip {zp} does not exist; pass the packaged zip.", code="registry_no_zip")
        sha = learnware_id or _sha256_file(zp)
        if run is not None and run.learnware_id != sha:
            raise RegistryError(f"Run {run.run_id} belongs to learnware {run.learnware_id[:12]} but the zip hashes to "
                                f"{sha[:12]}; use the run started for this zip.", code="registry_run_mismatch")
        existing = self.find_version(sha)
        if existing is not None:
            logger.info("learnware %s already registered as %s v%s", sha[:12], *existing)
            self.set_usable(*existing, usable=usable)
            return existing
        name = name or model_name_for(sha)
        all_tags = {**_tag_values(tags), SHA_TAG: sha, KIND_TAG: "learnware"}
        try:
            with nullcontext(run) if run else self.start_submission_run(sha) as r:
                source = self._log_pyfunc(r.run_id, "LearnwarePyfunc", {LEARNWARE_ARTIFACT: str(zp)},
                                          pip_requirements, {"runtime_mode": runtime_mode}, signature)
                version = self._create_version(name, source, r.run_id, all_tags, description)
        except MlflowException as exc:
            raise RegistryError(f"Registering learnware {sha[:12]} failed ({exc}); the store may be locked or "
                                "read-only.", code="registry_write_failed", learnware_id=sha) from exc
        self.set_usable(name, version, usable=usable)
        logger.info("registered learnware %s as %s v%s (usable=%s)", sha[:12], name, version, usable)
        return name, version

    def register_solution_run(self, name: str, zips: Mapping[str, str | Path | None], outcome: Any,
                              search_log: Mapping[str, Any], *, runtime_mode: str = "auto") -> RegistryRef:
        """One MLflow run per deployment: the search that found the learnwares and the solution registered from it.

        ``outcome`` is a :class:`~lwlib.deployment.ReuseOutcome`; ``search_log`` holds ``params`` (query, top-k,
        ...), ``timings`` and ``table`` (the result rows). The weights logged are ``outcome.weights``, the ones the
        solution applies.
        """
        from lwlib.submission import RegistryRef

        params = {**dict(search_log.get("params", {})), "reuser": outcome.kind,
                  "learnwares": ",".join(outcome.learnware_ids),
                  "weights": ",".join(f"{w:.4f}" for w in outcome.weights)}
        tags = {"lwdock.reuser": outcome.kind, "lwdock.learnwares": ",".join(outcome.learnware_ids),
                "lwdock.weights": ",".join(f"{w:.4f}" for w in outcome.weights)}
        with self.start_submission_run(name, params, kind="deploy") as run:
            run.log_metrics({f"time_{k}_s": float(v) for k, v in dict(search_log.get("timings", {})).items()})
            run.log_dicts({"search/result.json": {"rows": list(search_log.get("table", []))},
                           "search/selection.json": {"reuser": outcome.kind,
                                                     "learnware_ids": list(outcome.learnware_ids),
                                                     "weights": list(outcome.weights),
                                                     "evidence": dict(getattr(outcome, "evidence", {}) or {}),
                                                     "warnings": list(getattr(outcome, "warnings", ()) or ())}})
            n_features = int(dict(search_log.get("params", {})).get("n_features") or 0)
            signature = tensor_signature(n_features, str(outcome.solution.get("task", ""))) if n_features else None
            rname, version = self.register_solution(name, {k: v for k, v in zips.items() if v is not None},
                                                    outcome.solution, outcome.parts or None, tags,
                                                    runtime_mode=runtime_mode, run=run, signature=signature)
        return RegistryRef(rname, str(version), f"models:/{rname}/{version}", run.run_id)

    def register_solution(self, name: str, zips: Mapping[str, str | Path] | Sequence[str | Path],
                          solution_json: Mapping[str, Any], parts: Mapping[str, Any] | None = None,
                          tags: Mapping[str, Any] | None = None, *, runtime_mode: str = "auto",
                          run: SubmissionRun | None = None, signature: Any = None,
                          pip_requirements: Sequence[str] = DEFAULT_PIP_REQUIREMENTS) -> tuple[str, str]:
        """Register a reuse solution (learnware zips + recipe JSON + our own fitted parts) as a pyfunc version.

        ``zips`` maps learnware id → zip (or is a list, ids then computed from the bytes). The new version gets
        the ``usable`` alias. Without ``run`` a run of its own is started.
        """
        paths = {k: Path(v) for k, v in zips.items()} if isinstance(zips, Mapping) else \
            {_sha256_file(Path(z)): Path(z) for z in zips}
        needed = set(solution_json.get("learnware_ids", paths))
        if not needed <= set(paths):
            raise RegistryError(f"Solution {name} names learnwares {sorted(needed - set(paths))} with no zip given; "
                                "pass a zip for every learnware id.", code="registry_solution_incomplete")
        with tempfile.TemporaryDirectory(prefix="lwdock-solution-") as tmp:
            arts = {f"lw-{k}": str(p) for k, p in paths.items()}
            sol = Path(tmp) / "solution.json"
            sol.write_text(json.dumps(dict(solution_json), default=_json_default), encoding="utf-8")
            arts[SOLUTION_ARTIFACT] = str(sol)
            if parts:
                import joblib

                joblib.dump(dict(parts), Path(tmp) / "parts.joblib")
                arts[PARTS_ARTIFACT] = str(Path(tmp) / "parts.joblib")
            all_tags = {**_tag_values(tags), KIND_TAG: "solution",
                        "lwdock.learnware_ids": json.dumps(sorted(paths))}
            description = (f"Reuse solution ({solution_json.get('kind')}) over {len(paths)} learnware(s): "
                           f"{', '.join(sorted(paths))[:500]}")
            try:
                with nullcontext(run) if run else self.start_submission_run(
                        name, {"solution_kind": solution_json.get("kind")}, kind="deploy") as r:
                    source = self._log_pyfunc(r.run_id, "SolutionPyfunc", arts, pip_requirements,
                                              {"runtime_mode": runtime_mode}, signature)
                    version = self._create_version(name, source, r.run_id, all_tags, description)
            except MlflowException as exc:
                raise RegistryError(f"Registering solution {name} failed ({exc}).",
                                    code="registry_write_failed") from exc
        self.set_usable(name, version, usable=True)
        return name, version

    # ------------------------------------------------------------------ aliases and lookups
    def set_usable(self, name: str, version: str | int, usable: bool) -> None:
        """Point ``usable`` at this version, or drop it if it points here and ``usable`` is False."""
        try:
            if usable:
                self.client.set_registered_model_alias(name, USABLE_ALIAS, str(version))
                return
            current = self.usable_version(name)
            if current == str(version):
                self.client.delete_registered_model_alias(name, USABLE_ALIAS)
        except MlflowException as exc:
            raise RegistryError(f"Could not update alias '{USABLE_ALIAS}' of {name} v{version} ({exc}); check the "
                                "model and version exist.", code="registry_alias_failed") from exc

    def usable_version(self, name: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, USABLE_ALIAS).version)
        except MlflowException:
            return None

    def find_version(self, sha256: str) -> tuple[str, str] | None:
        """The ``(name, version)`` registered for this zip sha256, or None (idempotent resubmission)."""
        if not _SHA_RE.match(sha256):
            raise RegistryError(f"'{sha256}' is not a sha256 (64 lowercase hex); pass the learnware id.",
                                code="registry_bad_sha")
        found = self.client.search_model_versions(f"tags.`{SHA_TAG}` = '{sha256}'")
        if not found:
            return None
        mv = min(found, key=lambda m: int(m.version))
        return mv.name, str(mv.version)

    def list_versions(self, name: str | None = None, *, sha256: str | None = None) -> list[RegisteredVersion]:
        """Versions of one model (or all learnware/solution versions), with their aliases filled in."""
        filters = []
        if name is not None:
            if not _NAME_RE.match(name):
                raise RegistryError(f"'{name}' is not a registered-model name (letters, digits, . _ -).",
                                    code="registry_bad_name")
            filters.append(f"name = '{name}'")
        if sha256 is not None:
            if not _SHA_RE.match(sha256):
                raise RegistryError(f"'{sha256}' is not a sha256.", code="registry_bad_sha")
            filters.append(f"tags.`{SHA_TAG}` = '{sha256}'")
        found = self.client.search_model_versions(" AND ".join(filters) or None)
        aliases: dict[str, dict[str, list[str]]] = {}
        for model in {mv.name for mv in found}:
            by_version: dict[str, list[str]] = {}
            for alias, ver in (self.client.get_registered_model(model).aliases or {}).items():
                by_version.setdefault(str(ver), []).append(alias)
            aliases[model] = by_version
        return sorted((RegisteredVersion(mv.name, str(mv.version), (mv.tags or {}).get(SHA_TAG), mv.run_id, str(mv.source),
                                         dict(mv.tags or {}), tuple(aliases[mv.name].get(str(mv.version), ())))
                       for mv in found), key=lambda v: (v.name, int(v.version)))

    def delete_learnware(self, name: str) -> bool:
        """Delete a registered model with all its versions (runs stay as history); False if it did not exist."""
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            return False
        self.client.delete_registered_model(name)
        logger.info("deleted registered model %s", name)
        return True

    def download_submission(self, version: RegisteredVersion, dest: str | Path) -> dict[str, Path]:
        """Fetch what a learnware version was registered with: its zip and the submission run's semantic spec and
        check report (used to rebuild the catalog from the registry). Keys: ``zip``, ``semantic``, ``check``."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(dest / "model"),
                                                             tracking_uri=self.tracking_uri))
        zips = sorted((model_dir / "artifacts").rglob("*.zip"))
        if not zips:
            raise RegistryError(f"{version.name} v{version.version} holds no learnware zip under {version.source}; "
                                "it was not registered by the dock.", code="registry_no_zip")
        out = {"zip": zips[0]}
        if version.run_id:
            for key, rel in (("semantic", "semantic/semantic_specification.json"), ("check", "check/check_report.json")):
                try:
                    out[key] = Path(self.client.download_artifacts(version.run_id, rel, str(dest)))
                except (MlflowException, OSError):
                    logger.warning("run %s has no %s artifact", version.run_id, rel)
            from lwlib.rkme.label_aware import LABEL_AWARE_TYPE

            label = [a.path for a in self.client.list_artifacts(version.run_id, "spec")
                     if a.path.endswith(f"{LABEL_AWARE_TYPE}.json")]
            if label:
                out["label_spec"] = Path(self.client.download_artifacts(version.run_id, label[0], str(dest)))
        return out

    def running_runs(self) -> list[dict[str, str | None]]:
        """Runs still marked RUNNING, with the pid and host that started them (for stale-run sweeps)."""
        if self.client.get_experiment_by_name(self.experiment) is None:
            return []
        runs = self.client.search_runs([self.experiment_id], filter_string="attributes.status = 'RUNNING'",
                                       max_results=10000)
        return [{"run_id": r.info.run_id, "pid": r.data.tags.get(PID_TAG), "host": r.data.tags.get(HOST_TAG)}
                for r in runs]

    def end_run(self, run_id: str, *, status: str = "KILLED") -> None:
        """Mark a run ended (a run whose process was killed stays RUNNING otherwise)."""
        self.client.set_terminated(run_id, status=status)

    # ------------------------------------------------------------------ loading
    @staticmethod
    def model_uri(name: str, alias: str = USABLE_ALIAS) -> str:
        return f"models:/{name}@{alias}"

    def load_pyfunc(self, name: str, alias: str = USABLE_ALIAS) -> Any:
        """Load a version as a pyfunc through this registry's client (no global MLflow URI needed)."""
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            raise RegistryError(f"{name} has no version with alias '{alias}' ({exc}); register it or re-check it.",
                                code="registry_no_alias") from exc
        uri = self.client.get_model_version_download_uri(name, str(mv.version))
        local = tempfile.mkdtemp(prefix="lwdock-model-")  # through this registry's server, not a global URI
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=local, tracking_uri=self.tracking_uri)
        return mlflow.pyfunc.load_model(path)


def tensor_signature(n_features: int, task: str, n_outputs: int | None = None) -> Any:
    """A served model's contract: a float64 tensor of ``(-1, n_features)`` in, the task's output out.

    MLflow checks requests against it, so a wrong width gets a 400 with one line instead of a stack trace.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    inputs = Schema([TensorSpec(np.dtype(np.float64), (-1, int(n_features)), name="X")])
    classify = task.lower() == "classification"
    shape: tuple[int, ...] = (-1,) if classify or not n_outputs or n_outputs == 1 else (-1, int(n_outputs))
    outputs = Schema([TensorSpec(np.dtype(np.float64), shape, name="y")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def learnware_signature(sub: Submission) -> Any:
    """The contract of a registered learnware, from its semantic spec (Input.Dimension, Task, Output)."""
    sem = sub.semantic
    dims = sub.spec.n_features if sem.input is None else sem.input.dimension
    return tensor_signature(dims, sem.task_type, sem.output.dimension if sem.output is not None else None)


def _json_default(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
