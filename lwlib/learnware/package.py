"""Open a learnware zip into a typed, validated :class:`Learnware` — without running any of its code.

The zip is content-addressed (sha256 of its bytes), extracted safely once into ``workdir/<id>/`` (only after it
passed every check, so a refused zip leaves nothing there) and reused on later opens; the manifest, statistical
specs, semantic spec and requirements are parsed and checked here, while
the model module is only required to exist (it is imported later, inside an isolated runtime).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwlib.constants import MANIFEST_FILE, SEMANTIC_FILE, SEMANTIC_MAX_BYTES
from lwlib.errors import InvalidPackageError, SemanticSpecError
from lwlib.learnware.archive import ArchiveLimits, safe_extract, sha256_file
from lwlib.learnware.manifest import Manifest, parse_manifest
from lwlib.learnware.requirements import Requirements, read_requirements
from lwlib.semantic import SemanticSpec

if TYPE_CHECKING:
    from lwlib.rkme.base import BaseStatSpec

__all__ = ["Learnware", "open_learnware", "load_semantic_file"]

logger = logging.getLogger(__name__)

MAX_SEMANTIC_BYTES = SEMANTIC_MAX_BYTES


@dataclass(frozen=True)
class Learnware:
    """A validated learnware package on disk.

    Attributes
    ----------
    id : str
        sha256 hex digest of the zip bytes (stable content id).
    zip_path : Path
        The zip it came from.
    root : Path
        Extracted package root (holds ``learnware.yaml``).
    manifest : Manifest
    semantic_spec : SemanticSpec or None
    stat_specs : dict of str to BaseStatSpec
        Keyed by the spec's ``type_name`` (as the reference keys them).
    requirements : Requirements
    """

    id: str
    zip_path: Path
    root: Path
    manifest: Manifest
    semantic_spec: SemanticSpec | None
    stat_specs: dict[str, BaseStatSpec] = field(default_factory=dict)
    requirements: Requirements = field(default_factory=Requirements)

    @property
    def model_path(self) -> Path:
        """Absolute path of the model module file."""
        return self.root / self.manifest.model.module_path


def _inside(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InvalidPackageError(f"{rel!r} resolves outside the package root; use a path inside it.",
                                  code="package_path_escape", path=rel)
    return path


def load_semantic_file(path: str | os.PathLike[str]) -> SemanticSpec:
    """Read a reference-format ``semantic_specification.json`` (size-capped) and validate it as untrusted input.

    Raises
    ------
    SemanticSpecError
        ``semantic_too_large``, ``semantic_bad_json`` or any code of :meth:`SemanticSpec.parse_untrusted`; the
        message names the file (never the folder it was extracted to).
    """
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_SEMANTIC_BYTES:
        raise SemanticSpecError(f"{p.name} is {size} bytes; the limit is {MAX_SEMANTIC_BYTES}. Shorten the "
                                "description and the Input/Output descriptions.", code="semantic_too_large",
                                path=p.name)
    with p.open("rb") as fh:
        raw = fh.read(MAX_SEMANTIC_BYTES + 1)
    try:
        return SemanticSpec.parse_untrusted(raw)
    except SemanticSpecError as exc:
        exc.message = f"{p.name}: {exc.message}"
        raise


def _semantic_override(semantic_spec: SemanticSpec | Mapping[str, Any] | str | bytes | None) -> SemanticSpec | None:
    """Validate the caller's semantic spec before anything is extracted (it does not depend on the zip)."""
    if semantic_spec is None:
        return None
    return SemanticSpec.parse_untrusted(semantic_spec)


def _parse_tree(zip_path: Path, lw_id: str, tree: Path, root: Path, override: SemanticSpec | None) -> Learnware:
    """Parse and validate the extracted ``tree``; the returned :class:`Learnware` points at ``root``."""
    from lwlib.rkme.types import load_spec_file  # lazy: pulls in torch

    manifest_file = tree / MANIFEST_FILE
    if not manifest_file.is_file():
        raise InvalidPackageError(f"{zip_path.name} has no {MANIFEST_FILE} at its root (or inside its single top "
                                  "folder); add one naming the model class and stat spec files.",
                                  code="manifest_missing", path=zip_path.name)
    manifest = parse_manifest(manifest_file.read_bytes())
    model_file = _inside(tree, manifest.model.module_path)
    if not model_file.is_file():
        raise InvalidPackageError(f"The model module {manifest.model.module_path!r} named in {MANIFEST_FILE} is not "
                                  "in the zip; add it or fix model.module_path.", code="model_module_missing",
                                  path=manifest.model.module_path)

    stat_specs: dict[str, BaseStatSpec] = {}
    for entry in manifest.stat_specs:
        spec = load_spec_file(_inside(tree, entry.file_name), expected_type=entry.type_name, name=entry.file_name)
        stat_specs[spec.type_name] = spec

    sem = override
    if sem is None:
        sem_path = _inside(tree, manifest.semantic_file or SEMANTIC_FILE)
        sem = load_semantic_file(sem_path) if sem_path.is_file() else None
    return Learnware(id=lw_id, zip_path=zip_path, root=root, manifest=manifest, semantic_spec=sem,
                     stat_specs=stat_specs, requirements=read_requirements(tree))


def _install(tree: Path, root: Path) -> None:
    """Move a validated tree to ``root``; a concurrent open of the same bytes may have installed it first."""
    if root.exists() and not (root / MANIFEST_FILE).is_file():
        shutil.rmtree(root, ignore_errors=True)  # debris of an older, unvalidated extraction
    try:
        os.replace(tree, root)
    except OSError:
        if not (root / MANIFEST_FILE).is_file():
            raise


def open_learnware(
    zip_path: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    *,
    limits: ArchiveLimits | None = None,
    semantic_spec: SemanticSpec | Mapping[str, Any] | str | bytes | None = None,
    learnware_id: str | None = None,
) -> Learnware:
    """Extract, parse and validate a learnware zip. Never imports the learnware's code.

    The zip is extracted into a staging folder under ``workdir`` and parsed there; only a package that passed
    every check is renamed to ``workdir/<sha256>/``. On any refusal the staging folder is removed, so a rejected
    zip leaves nothing in ``workdir``.

    Parameters
    ----------
    zip_path : path
        The learnware zip.
    workdir : path
        Folder holding extracted packages; this one goes to ``workdir/<sha256>/`` (reused if already there).
    limits : ArchiveLimits, optional
        Safe-extraction bounds.
    semantic_spec : SemanticSpec, reference dict or JSON text, optional
        Overrides ``semantic_specification.json`` inside the zip; checked as untrusted input first
        (:meth:`SemanticSpec.parse_untrusted`).

    Returns
    -------
    Learnware

    Raises
    ------
    InvalidPackageError
        ``package_not_found``, ``not_a_zip``, ``manifest_missing``, ``model_module_missing``, any manifest or
        requirements code; :class:`UnsafeArchiveError`, :class:`SpecFormatError` and :class:`SemanticSpecError`
        are subclasses. Messages name files inside the package, never the dock's folders.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise InvalidPackageError(f"Learnware zip {zip_path.name} does not exist; check the path.",
                                  code="package_not_found", path=str(zip_path))
    override = _semantic_override(semantic_spec)
    lw_id = learnware_id or sha256_file(zip_path)  # the package store passes the id it computed once
    workdir = Path(workdir)
    root = workdir / lw_id
    if (root / MANIFEST_FILE).is_file():
        logger.debug("reusing extracted learnware %s", root)
        lw = _parse_tree(zip_path, lw_id, root, root, override)
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{lw_id[:16]}.check-", dir=workdir))
        try:
            tree = safe_extract(zip_path, staging / "tree", limits)
            lw = _parse_tree(zip_path, lw_id, tree, root, override)
            _install(tree, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("opened learnware %s (%s, specs=%s)", lw_id[:12], lw.manifest.model.class_name, list(lw.stat_specs))
    return lw
