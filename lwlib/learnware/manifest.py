"""The ``learnware.yaml`` manifest: which model class to run and which statistical specs ship with it.

The reference loads this file with PyYAML's ``FullLoader`` and imports whatever module a stat-spec entry names,
calling it with uploader kwargs. Here the YAML is size-capped and parsed with a safe loader (plus the harmless
``!!python/tuple`` tag the reference's own ``yaml.dump`` writes for shapes), aliases are refused, a spec entry can
only name a type from :data:`lwlib.rkme.types.SPEC_TYPES`, and every path must stay inside the package.

Bounds (issue 10): the event stream is scanned first — without recursion — for anchors/aliases ("billion
laughs"), nesting depth (:data:`~lwlib.constants.MANIFEST_MAX_DEPTH`; PyYAML's composer recurses and deep nesting
was a ``RecursionError``), node count and scalar length, so the composer only ever sees a small, shallow document.
Kwargs must be plain JSON values (str, int, float, bool, null, lists, string-keyed mappings): YAML timestamps,
``!!binary``, ``!!set`` and non-finite floats are refused here instead of failing later in a JSON writer.
"""

from __future__ import annotations

import keyword
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from lwlib._validation import check_json_tree
from lwlib.constants import (DEFAULT_MODEL_CLASS, DEFAULT_MODEL_MODULE, DEFAULT_STAT_FILE, MANIFEST_MAX_DEPTH,
                             MANIFEST_MAX_NAME_CHARS, MANIFEST_MAX_NODES, MANIFEST_MAX_SCALAR_CHARS, RKME_TABLE_TYPE)
from lwlib.errors import InvalidPackageError
from lwlib.text import has_control_chars, safe_text

__all__ = ["ModelEntry", "StatSpecEntry", "Manifest", "parse_manifest", "MAX_MANIFEST_BYTES",
           "REFERENCE_SPEC_MODULES", "check_relative_path"]

logger = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 64 * 1024
_REF_SPEC_MODULE = "learnware.specification"
#: The reference's own module paths a stat-spec entry may mention (informational only: nothing is imported).
REFERENCE_SPEC_MODULES = frozenset({
    _REF_SPEC_MODULE, "learnware.specification.rkme", "learnware.specification.table",
    "learnware.specification.table.rkme", "learnware.specification.text", "learnware.specification.text.rkme",
    "learnware.specification.image", "learnware.specification.image.rkme", "learnware.specification.regular",
    "learnware.specification.regular.table", "learnware.specification.regular.table.rkme",
    "learnware.specification.regular.text", "learnware.specification.regular.text.rkme",
    "learnware.specification.regular.image", "learnware.specification.regular.image.rkme",
})


def _known_spec_types() -> frozenset[str]:
    from lwlib.rkme.types import SPEC_TYPES  # lazy: the spec stack pulls in torch

    return frozenset(SPEC_TYPES)


def _bad(code: str, message: str, **facts: Any) -> InvalidPackageError:
    return InvalidPackageError(message, code=code, **facts)


def _show(value: Any) -> str:
    return safe_text(repr(value), max_chars=80)


def check_relative_path(value: Any, *, what: str, code: str, suffix: str | None = None) -> str:
    """Return ``value`` if it is a clean relative POSIX path inside the package, else raise ``code``."""
    ok = False
    if isinstance(value, str) and value and len(value) <= 1024 and "\\" not in value and not has_control_chars(value):
        parts = value.split("/")
        ok = (not value.startswith("/") and ".." not in parts and all(p not in ("", ".") for p in parts)
              and not (len(parts[0]) >= 2 and parts[0][1] == ":"))
    if not ok or (suffix is not None and not value.endswith(suffix)):
        need = f" ending in {suffix!r}" if suffix else ""
        raise _bad(code, f"{what} must be a relative path inside the package{need} (no '..', no absolute path, "
                   f"'/' separators, printable characters); got {_show(value)}.", field=what)
    return str(PurePosixPath(value))


def _kwargs(value: Any, *, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad("manifest_bad_kwargs", f"{what} must be a mapping of argument name to value; got "
                   f"{_show(value)}.", field=what)
    check_json_tree(value, what=what, max_depth=MANIFEST_MAX_DEPTH, max_nodes=MANIFEST_MAX_NODES,
                    max_str_chars=MANIFEST_MAX_SCALAR_CHARS, error=InvalidPackageError, code_prefix="manifest_kwargs")
    for key in value:
        if not key.isidentifier():
            raise _bad("manifest_bad_kwargs", f"{what} key {_show(key)} is not a Python argument name.", field=what)
    return dict(value)


@dataclass(frozen=True)
class ModelEntry:
    """Model class, its module file (relative ``.py``) and constructor kwargs."""

    class_name: str = DEFAULT_MODEL_CLASS
    module_path: str = DEFAULT_MODEL_MODULE
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatSpecEntry:
    """One statistical spec file: its type (a ``SPEC_TYPES`` key), relative file name and the reference kwargs."""

    type_name: str
    file_name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    module_path: str = _REF_SPEC_MODULE


@dataclass(frozen=True)
class Manifest:
    """Parsed ``learnware.yaml`` with the reference loader's defaults applied."""

    name: str | None = None
    model: ModelEntry = field(default_factory=ModelEntry)
    stat_specs: tuple[StatSpecEntry, ...] = (StatSpecEntry(RKME_TABLE_TYPE, DEFAULT_STAT_FILE),)
    semantic_file: str | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Reference layout (tuples become lists so any YAML/JSON reader accepts it)."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        out["model"] = {"class_name": self.model.class_name, "module_path": self.model.module_path,
                        "kwargs": _plain(self.model.kwargs)}
        out["stat_specifications"] = [
            {"module_path": s.module_path, "class_name": s.type_name, "file_name": s.file_name,
             "kwargs": _plain(s.kwargs)} for s in self.stat_specs]
        if self.id is not None:
            out["id"] = self.id
        if self.semantic_file is not None:
            out["semantic_specification"] = {"file_name": self.semantic_file}
        return out

    def to_yaml(self) -> str:
        """Serialise with ``yaml.safe_dump`` (deterministic, key order kept)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _ManifestLoader(yaml.SafeLoader):
    """Safe loader that also reads ``!!python/tuple`` (what the reference's ``yaml.dump`` writes for shapes)."""


def _construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[Any, ...]:
    return tuple(loader.construct_sequence(node, deep=True))  # type: ignore[arg-type]


_ManifestLoader.add_constructor("tag:yaml.org,2002:python/tuple", _construct_tuple)


def _scan_events(text: str) -> None:
    """Bound the document from PyYAML's (iterative) event stream before its recursive composer runs."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_ManifestLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _bad("manifest_yaml_alias", "learnware.yaml uses YAML anchors/aliases; write the values out in "
                       "full.")
        if isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            nodes += 1
            if nodes > MANIFEST_MAX_NODES:
                raise _bad("manifest_too_many_nodes", f"learnware.yaml holds more than {MANIFEST_MAX_NODES} values; "
                           "keep only model and stat_specifications entries in it.")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MANIFEST_MAX_DEPTH:
                raise _bad("manifest_too_deep", f"learnware.yaml is nested deeper than {MANIFEST_MAX_DEPTH} levels; "
                           "flatten the model kwargs.")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent) and len(event.value) > MANIFEST_MAX_SCALAR_CHARS:
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise _bad("manifest_too_long", f"learnware.yaml has a value of {len(event.value)} characters (line "
                       f"{line}); at most {MANIFEST_MAX_SCALAR_CHARS} are allowed.")


def _load_yaml(text: str) -> Any:
    try:
        _scan_events(text)
        return yaml.load(text, Loader=_ManifestLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.constructor.ConstructorError as exc:
        raise _bad("manifest_unsafe_tag", f"learnware.yaml uses a YAML tag or key that is not allowed "
                   f"({safe_text(exc.problem, max_chars=120)}); only plain mappings, lists, strings and numbers are "
                   "accepted.") from exc
    except yaml.YAMLError as exc:
        raise _bad("manifest_bad_yaml", f"learnware.yaml is not valid YAML: {safe_text(exc, max_chars=300)}. Fix "
                   "the syntax.") from exc
    except (RecursionError, ValueError, OverflowError, TypeError) as exc:  # constructor limits (int digits, ...)
        raise _bad("manifest_bad_yaml", f"learnware.yaml has a value PyYAML cannot build ({type(exc).__name__}: "
                   f"{safe_text(exc, max_chars=120)}).") from exc


def _stat_entry(raw: Any, known: frozenset[str], index: int) -> StatSpecEntry:
    where = f"stat_specifications[{index}]"
    if not isinstance(raw, Mapping):
        raise _bad("manifest_bad_spec_entry", f"{where} must be a mapping with class_name and file_name; got "
                   f"{_show(raw)}.", field=where)
    cls = raw.get("class_name", RKME_TABLE_TYPE)
    if not isinstance(cls, str) or cls not in known:
        raise _bad("manifest_unknown_spec_type", f"{where}.class_name {_show(cls)} is not a supported statistical "
                   f"specification; use one of {sorted(known)}.", class_name=_show(cls), field=f"{where}.class_name")
    module = raw.get("module_path", _REF_SPEC_MODULE)
    if module is None:
        module = _REF_SPEC_MODULE
    if not isinstance(module, str) or module not in REFERENCE_SPEC_MODULES:
        raise _bad("manifest_bad_spec_module", f"{where}.module_path {_show(module)} is not allowed: specs are never "
                   f"imported from uploader paths. Omit it or use one of {sorted(REFERENCE_SPEC_MODULES)}.",
                   module_path=_show(module), field=f"{where}.module_path")
    if "file_name" not in raw:
        raise _bad("manifest_missing_key", f"{where} has no file_name; name the spec JSON file, e.g. "
                   f"'{DEFAULT_STAT_FILE}'.")
    file_name = check_relative_path(raw["file_name"], what=f"{where}.file_name", code="manifest_bad_file_name")
    return StatSpecEntry(type_name=cls, file_name=file_name, kwargs=_kwargs(raw.get("kwargs"),
                         what=f"{where}.kwargs"), module_path=module)


def parse_manifest(text: str | bytes) -> Manifest:
    """Parse and validate ``learnware.yaml`` text.

    Raises
    ------
    InvalidPackageError
        ``manifest_too_large``, ``manifest_encoding``, ``manifest_bad_yaml``, ``manifest_unsafe_tag``,
        ``manifest_yaml_alias``, ``manifest_not_mapping``, ``manifest_bad_model``, ``manifest_bad_class_name``,
        ``manifest_bad_module_path``, ``manifest_bad_kwargs``, ``manifest_bad_spec_entry``,
        ``manifest_unknown_spec_type``, ``manifest_bad_spec_module``, ``manifest_missing_key``,
        ``manifest_bad_file_name``, ``manifest_duplicate_spec``, ``manifest_too_deep``, ``manifest_too_many_nodes``,
        ``manifest_too_long``, ``manifest_bad_name``, ``manifest_kwargs_bad_type`` (dates, binary, NaN in kwargs),
        ``manifest_kwargs_too_deep`` / ``_too_long`` / ``_too_many_nodes``.
    """
    raw_bytes = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(raw_bytes) > MAX_MANIFEST_BYTES:
        raise _bad("manifest_too_large", f"learnware.yaml is {len(raw_bytes)} bytes; the limit is "
                   f"{MAX_MANIFEST_BYTES}. Keep only model and stat_specifications entries in it.")
    try:
        decoded = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad("manifest_encoding", f"learnware.yaml is not UTF-8 ({exc}); save it as UTF-8.") from exc
    data = _load_yaml(decoded)
    if not isinstance(data, Mapping):
        raise _bad("manifest_not_mapping", f"learnware.yaml must be a mapping with 'model' and "
                   f"'stat_specifications'; got {type(data).__name__}.")
    model_raw = data.get("model") or {}
    if not isinstance(model_raw, Mapping):
        raise _bad("manifest_bad_model", f"'model' must be a mapping (class_name, module_path, kwargs); got "
                   f"{_show(model_raw)}.", field="model")
    class_name = model_raw.get("class_name", DEFAULT_MODEL_CLASS)
    if not isinstance(class_name, str) or not class_name.isidentifier() or keyword.iskeyword(class_name) \
            or not class_name.isascii() or len(class_name) > 200:
        raise _bad("manifest_bad_class_name", f"model.class_name must be a Python class name (ASCII); got "
                   f"{_show(class_name)}.", field="model.class_name")
    module_path = check_relative_path(model_raw.get("module_path", DEFAULT_MODEL_MODULE), what="model.module_path",
                                      code="manifest_bad_module_path", suffix=".py")
    model = ModelEntry(class_name, module_path, _kwargs(model_raw.get("kwargs"), what="model.kwargs"))

    specs_raw = data.get("stat_specifications")
    if specs_raw is None:
        stat_specs: tuple[StatSpecEntry, ...] = (StatSpecEntry(RKME_TABLE_TYPE, DEFAULT_STAT_FILE),)
    elif isinstance(specs_raw, list):
        known = _known_spec_types()
        stat_specs = tuple(_stat_entry(e, known, i) for i, e in enumerate(specs_raw))
    else:
        raise _bad("manifest_bad_spec_entry", f"'stat_specifications' must be a list of entries; got "
                   f"{type(specs_raw).__name__}.")
    names = [s.file_name for s in stat_specs]
    types = [s.type_name for s in stat_specs]
    if len(set(names)) != len(names) or len(set(types)) != len(types):
        raise _bad("manifest_duplicate_spec", f"stat_specifications repeats a type or file ({_show(types)}, "
                   f"{_show(names)}); list each spec once.", field="stat_specifications")

    semantic_file = None
    sem = data.get("semantic_specification")
    if sem is not None:
        if not isinstance(sem, Mapping) or "file_name" not in sem:
            raise _bad("manifest_bad_model", f"'semantic_specification' must be {{file_name: ...}}; got "
                       f"{_show(sem)}.", field="semantic_specification")
        semantic_file = check_relative_path(sem["file_name"], what="semantic_specification.file_name",
                                            code="manifest_bad_file_name")
    return Manifest(name=_optional_text(data, "name"), model=model, stat_specs=stat_specs,
                    semantic_file=semantic_file, id=_optional_text(data, "id"))


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    """``name`` / ``id``: informational scalars (the reference writes strings or numbers), bounded and printable."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _bad("manifest_bad_name", f"'{key}' must be a string; got a {type(value).__name__}.", field=key)
    text = str(value)
    if len(text) > MANIFEST_MAX_NAME_CHARS or has_control_chars(text):
        raise _bad("manifest_bad_name", f"'{key}' must be at most {MANIFEST_MAX_NAME_CHARS} printable characters; "
                   f"got {_show(text)}.", field=key)
    return text
