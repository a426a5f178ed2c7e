"""The learnware package format: safe zip extraction, manifest, requirements, opening and packaging."""

from typing import Any

from lwlib.learnware.archive import ArchiveLimits, safe_extract, sha256_file
from lwlib.learnware.manifest import Manifest, ModelEntry, StatSpecEntry, parse_manifest
from lwlib.learnware.package import Learnware, open_learnware
from lwlib.learnware.requirements import Requirements, read_requirements

__all__ = [
    "ArchiveLimits", "safe_extract", "sha256_file",
    "Manifest", "ModelEntry", "StatSpecEntry", "parse_manifest",
    "Requirements", "read_requirements",
    "Learnware", "open_learnware",
    "package_learnware",
]


def __getattr__(name: str) -> Any:  # packager pulls in torch/sklearn; import it only when asked for
    if name == "package_learnware":
        from lwlib.learnware.packager import package_learnware

        return package_learnware
    raise AttributeError(name)
