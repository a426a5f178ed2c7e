"""Open a learnware zip into a typed, validated :class:`Learnware` — without running any of its code.

The zip is content-addressed (sha256 of its bytes), extracted safely once into ``workdir/<id>/`` and reused on
later opens; the manifest, statistical specs, semantic spec and requirements are parsed and checked here, while
the model module is only required to exist (it is imported later, inside an isolated runtime).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwlib.constants import MANIFEST_FILE, SEMANTIC_FILE
from lwlib.errors import InvalidPackageError, SemanticSpecError
from lwlib.learnware.archive import ArchiveLimits, safe_extract, sha256_file
from lwlib.learnware.manifest import Manifest, parse_manifest
from lwlib.learnware.requirements import Requirements, read_requirements
from lwlib.semantic import SemanticSpec

if TYPE_CHECKING:
    from lwlib.rkme.base import BaseStatSpec

__all__ = ["Learnware", "open_learnware", "load_semantic_file"]

logger = logging.getLogger(__name__)

MAX_SEMANTIC_BYTES = 1024 * 1024


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
    """Read a reference-format ``semantic_specification.json`` (size-capped) and validate it."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_SEMANTIC_BYTES:
        raise SemanticSpecError(f"{p.name} is {size} bytes; the limit is {MAX_SEMANTIC_BYTES}.",
                                code="semantic_too_large", path=str(p))
    try:
        data = json.loads(p.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SemanticSpecError(f"{p.name} is not valid UTF-8 JSON ({exc}); write it with json.dump.",
                                code="semantic_bad_json", path=str(p)) from exc
    return SemanticSpec.from_reference(data)


def _extract(zip_path: Path, dest: Path, limits: ArchiveLimits | None) -> None:
    if (dest / MANIFEST_FILE).is_file():
        logger.debug("reusing extracted learnware %s", dest)
        return
    try:
        safe_extract(zip_path, dest, limits, overwrite=dest.exists())
    except FileExistsError:  # a concurrent open installed the same content first
        if not (dest / MANIFEST_FILE).is_file():
            raise


def open_learnware(
    zip_path: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    *,
    limits: ArchiveLimits | None = None,
    semantic_spec: SemanticSpec | Mapping[str, Any] | None = None,
) -> Learnware:
    """Extract, parse and validate a learnware zip. Never imports the learnware's code.

    Parameters
    ----------
    zip_path : path
        The learnware zip.
    workdir : path
        Folder holding extracted packages; this one goes to ``workdir/<sha256>/`` (reused if already there).
    limits : ArchiveLimits, optional
        Safe-extraction bounds.
    semantic_spec : SemanticSpec or reference dict, optional
        Overrides ``semantic_specification.json`` inside the zip.

    Returns
    -------
    Learnware

    Raises
    ------
    InvalidPackageError
        ``package_not_found``, ``not_a_zip``, ``manifest_missing``, ``model_module_missing``, any manifest or
        requirements code; :class:`UnsafeArchiveError`, :class:`SpecFormatError` and :class:`SemanticSpecError`
        are subclasses.
    """
    from lwlib.rkme.types import load_spec_file  # lazy: pulls in torch

    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise InvalidPackageError(f"Learnware zip {zip_path} does not exist; check the path.",
                                  code="package_not_found", path=str(zip_path))
    lw_id = sha256_file(zip_path)
    root = Path(workdir) / lw_id
    _extract(zip_path, root, limits)

    manifest_file = root / MANIFEST_FILE
    if not manifest_file.is_file():
        raise InvalidPackageError(f"{zip_path.name} has no {MANIFEST_FILE} at its root (or inside its single top "
                                  "folder); add one naming the model class and stat spec files.",
                                  code="manifest_missing", path=str(zip_path))
    manifest = parse_manifest(manifest_file.read_bytes())
    model_file = _inside(root, manifest.model.module_path)
    if not model_file.is_file():
        raise InvalidPackageError(f"The model module {manifest.model.module_path!r} named in {MANIFEST_FILE} is not "
                                  "in the zip; add it or fix model.module_path.", code="model_module_missing",
                                  path=manifest.model.module_path)

    stat_specs: dict[str, BaseStatSpec] = {}
    for entry in manifest.stat_specs:
        spec = load_spec_file(_inside(root, entry.file_name), expected_type=entry.type_name)
        stat_specs[spec.type_name] = spec

    if semantic_spec is None:
        sem_name = manifest.semantic_file or SEMANTIC_FILE
        sem_path = _inside(root, sem_name)
        sem = load_semantic_file(sem_path) if sem_path.is_file() else None
    elif isinstance(semantic_spec, SemanticSpec):
        sem = semantic_spec
    else:
        sem = SemanticSpec.from_reference(semantic_spec)

    lw = Learnware(id=lw_id, zip_path=zip_path, root=root, manifest=manifest, semantic_spec=sem,
                   stat_specs=stat_specs, requirements=read_requirements(root))
    logger.info("opened learnware %s (%s, specs=%s)", lw_id[:12], manifest.model.class_name, list(stat_specs))
    return lw
