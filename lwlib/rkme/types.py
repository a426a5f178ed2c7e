"""The closed table of statistical-specification types a learnware manifest may name.

Manifests come from uploaders, so a type string is only ever a key into :data:`SPEC_TYPES`; nothing is imported
from a path or module name found in input.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lwlib.constants import RKME_LEGACY_TYPE, RKME_TABLE_TYPE, RKME_TEXT_TYPE
from lwlib.errors import SpecFormatError
from lwlib.rkme.base import BaseStatSpec, read_spec_json
from lwlib.rkme.rkme import RKMETableSpec
from lwlib.rkme.text import RKMETextSpec
from lwlib.text import safe_text

logger = logging.getLogger(__name__)

__all__ = ["SPEC_TYPES", "spec_from_dict", "load_spec_file"]

SPEC_TYPES: dict[str, type[BaseStatSpec]] = {
    RKME_TABLE_TYPE: RKMETableSpec,
    RKME_LEGACY_TYPE: RKMETableSpec,
    RKME_TEXT_TYPE: RKMETextSpec,
}


def _spec_class(type_name: Any) -> type[BaseStatSpec]:
    if not isinstance(type_name, str) or type_name not in SPEC_TYPES:
        raise SpecFormatError(f"Unknown statistical specification type {safe_text(repr(type_name), max_chars=60)}; "
                              f"supported types are {sorted(SPEC_TYPES)}.", code="spec_unknown_type",
                              type=safe_text(repr(type_name), max_chars=60))
    return SPEC_TYPES[type_name]


def spec_from_dict(d: dict[str, Any]) -> BaseStatSpec:
    """Build the spec named by ``d["type"]`` from its JSON dict.

    Raises
    ------
    SpecFormatError
        ``spec_not_object`` / ``spec_unknown_type``, or any validation code of the spec class.
    """
    if not isinstance(d, dict):
        raise SpecFormatError(f"A statistical specification must be a JSON object, got {type(d).__name__}.",
                              code="spec_not_object")
    return _spec_class(d.get("type")).from_dict(d)


def load_spec_file(path: str | os.PathLike[str], expected_type: str | None = None, *,
                   name: str | None = None) -> BaseStatSpec:
    """Read and validate a spec JSON file (size-capped, NaN-free), optionally requiring a given type.

    Parameters
    ----------
    path : path-like
    expected_type : str, optional
        The type the manifest declared; the file's ``type`` must map to the same class
        (so the legacy ``RKMEStatSpecification`` matches ``RKMETableSpecification``).
    name : str, optional
        How messages call the file (the manifest's ``file_name``); defaults to its base name, so a reason never
        shows the folder the package was extracted to.

    Raises
    ------
    SpecFormatError
        Codes ``spec_missing_file``, ``spec_too_large``, ``spec_bad_json``, ``spec_nonfinite``, ``spec_shape``,
        ``spec_unknown_type``, ``spec_type_mismatch``, ...
    """
    shown = safe_text(name or Path(path).name, max_chars=120)
    d = read_spec_json(path, name=shown)
    try:
        if expected_type is not None:
            want, got = _spec_class(expected_type), _spec_class(d.get("type"))
            if want is not got:
                raise SpecFormatError(f"Spec file {shown} holds type {safe_text(repr(d.get('type')), max_chars=60)} "
                                      f"but the manifest declares {expected_type!r}; fix the manifest entry or the "
                                      "file.", code="spec_type_mismatch", path=shown)
        return spec_from_dict(d)
    except SpecFormatError as exc:
        if not exc.message.startswith(shown):
            exc.message = f"{shown}: {exc.message}"
        exc.facts.setdefault("path", shown)
        raise
