"""Semantic specification: what a learnware is about, in tags and words.

The reference package stores this as a dict of ``{key: {"Type": ..., "Values": ...}}`` and checks it with asserts.
Here it is a frozen pydantic model whose validation raises :class:`~lwlib.errors.SemanticSpecError` with a stable
code, while :meth:`SemanticSpec.from_reference` / :meth:`SemanticSpec.to_reference` keep the reference dict format
(LEARNWARE_FORMAT.md §2.1) so zips and queries written for the reference work unchanged.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lwlib._validation import check_json_tree, check_text, loads_json
from lwlib._validation import show_value as _show
from lwlib.constants import (SEMANTIC_MAX_BYTES, SEMANTIC_MAX_DEPTH, SEMANTIC_MAX_DESCRIPTION_CHARS,
                             SEMANTIC_MAX_DIMENSION, SEMANTIC_MAX_IO_DESCRIPTION_CHARS, SEMANTIC_MAX_NAME_CHARS,
                             SEMANTIC_MAX_NODES, SEMANTIC_MAX_QUERY_CHARS, SEMANTIC_MAX_TAGS)
from lwlib.errors import SemanticSpecError

__all__ = [
    "DataType", "TaskType", "LibraryType", "ScenarioType", "LicenseType",
    "VOCABULARIES", "KEY_TYPES", "REFERENCE_KEY_ORDER",
    "IOSpec", "SemanticSpec", "SemanticQuery", "make_semantic_spec",
]

logger = logging.getLogger(__name__)

DataType = Literal["Table", "Image", "Text"]
TaskType = Literal["Classification", "Regression", "Feature Extraction", "Segmentation", "Object Detection",
                   "Others"]
LibraryType = Literal["Scikit-learn", "PyTorch", "TensorFlow", "Others"]
ScenarioType = Literal["Business", "Financial", "Health", "Politics", "Computer", "Internet", "Traffic", "Nature",
                       "Fashion", "Industry", "Agriculture", "Education", "Entertainment", "Architecture", "Others"]
LicenseType = Literal["MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "GPL-2.0", "GPL-3.0", "LGPL-2.1",
                      "LGPL-3.0", "AGPL-3.0", "ECL-2.0", "AFL-3.0", "CC-BY-4.0", "CC-BY-SA-4.0", "Others"]

#: Allowed values per reference key, in the reference's order.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "Data": get_args(DataType), "Task": get_args(TaskType), "Library": get_args(LibraryType),
    "Scenario": get_args(ScenarioType), "License": get_args(LicenseType),
}
#: The reference ``Type`` of each typed key.
KEY_TYPES: dict[str, str] = {"Data": "Class", "Task": "Class", "Library": "Class", "Scenario": "Tag",
                             "License": "Class", "Name": "String", "Description": "String"}
#: Key order of the reference's ``generate_semantic_spec``.
REFERENCE_KEY_ORDER = ("Data", "Task", "Library", "License", "Scenario", "Name", "Description", "Input", "Output")
_FIELD_OF_KEY = {"Data": "data_type", "Task": "task_type", "Library": "library_type", "License": "license",
                 "Scenario": "scenarios", "Name": "name", "Description": "description"}
_KEY_OF_FIELD = {v: k for k, v in _FIELD_OF_KEY.items()}
_LEGACY_LICENSE = "Apache-2.0"  # the reference market patches old rows without License to this


#: Longest text of each String key (characters).
MAX_CHARS: dict[str, int] = {"Name": SEMANTIC_MAX_NAME_CHARS, "Description": SEMANTIC_MAX_DESCRIPTION_CHARS}


def _fail(code: str, message: str, **facts: Any) -> SemanticSpecError:
    return SemanticSpecError(message, code=code, **facts)


#: Set by :meth:`SemanticSpec.from_stored`: input bounds added after a row was accepted do not make it unreadable.
_STORED = contextvars.ContextVar("semantic_from_stored", default=False)


def _check_text(key: str, value: str, *, max_chars: int, allow_newlines: bool) -> None:
    if not _STORED.get():
        check_text(value, field=key, max_chars=max_chars, allow_newlines=allow_newlines, error=SemanticSpecError,
                   code_prefix="semantic")


def _check_tree(obj: Any, what: str) -> None:
    """Depth, size and JSON-ness of a reference dict, before anything else looks at it (no recursion)."""
    if _STORED.get():
        return
    check_json_tree(obj, what=what, max_depth=SEMANTIC_MAX_DEPTH, max_nodes=SEMANTIC_MAX_NODES,
                    max_str_chars=SEMANTIC_MAX_DESCRIPTION_CHARS, error=SemanticSpecError, code_prefix="semantic")
    size = len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > SEMANTIC_MAX_BYTES:
        raise _fail("semantic_too_large", f"{what} is {size} bytes as JSON; the limit is {SEMANTIC_MAX_BYTES}. "
                    "Shorten the description and the Input/Output descriptions.", size=size)


class IOSpec(BaseModel):
    """Per-dimension meaning of a model's input or output.

    Parameters
    ----------
    dimension : int
        Number of features (input) or outputs (classes for classification).
    descriptions : dict of int to str
        Optional words for some dimensions; keys in ``[0, dimension)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dimension: int = Field(gt=0, le=SEMANTIC_MAX_DIMENSION)
    descriptions: dict[int, str] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "Dimension"
            raise _fail("semantic_io_invalid", f"Input/Output {field} is invalid: {err['msg']} (got "
                        f"{_show(err.get('input'))}). Give a positive int 'Dimension' (at most "
                        f"{SEMANTIC_MAX_DIMENSION}) and a 'Description' dict of index -> text.", field=field) from exc

    @model_validator(mode="after")
    def _keys_in_range(self) -> IOSpec:
        bad = sorted(k for k in self.descriptions if not 0 <= k < self.dimension)
        if bad:
            raise _fail("semantic_io_key", f"Description keys {_show(bad[:10])} are outside [0, {self.dimension}); "
                        "describe dimensions by their 0-based index.", keys=bad[:10], dimension=self.dimension)
        for k, text in self.descriptions.items():
            _check_text(f"Description[{k}]", text, max_chars=SEMANTIC_MAX_IO_DESCRIPTION_CHARS, allow_newlines=True)
        return self

    @classmethod
    def from_reference(cls, d: Mapping[str, Any], *, key: str = "Input") -> IOSpec | None:
        """Build from ``{"Dimension": int, "Description": {"<i>": str}}``; ``{}`` or ``None`` gives ``None``."""
        if d is None or (isinstance(d, Mapping) and len(d) == 0):
            return None
        if not isinstance(d, Mapping) or "Dimension" not in d:
            raise _fail("semantic_io_invalid", f"{key} must be a dict with 'Dimension' (int) and 'Description' "
                        f"(dict index -> text); got {_show(d)}.", key=key)
        desc = d.get("Description") or {}
        if not isinstance(desc, Mapping):
            raise _fail("semantic_io_invalid", f"{key}.Description must be a dict index -> text; got {_show(desc)}.",
                        key=key)
        try:
            descriptions = {int(k): v for k, v in desc.items()}
        except (TypeError, ValueError) as exc:
            raise _fail("semantic_io_key", f"{key}.Description keys must be integer indices like \"0\"; got "
                        f"{_show(list(desc))}.", key=key) from exc
        bad_val = [k for k, v in descriptions.items() if not isinstance(v, str)]
        if bad_val:
            raise _fail("semantic_io_invalid", f"{key}.Description values must be strings; indices "
                        f"{_show(bad_val[:10])} are not.", key=key)
        dim = d["Dimension"]
        if isinstance(dim, bool) or not isinstance(dim, (int, str)) or (isinstance(dim, str) and len(dim) > 12):
            raise _fail("semantic_io_invalid", f"{key}.Dimension must be a positive int; got {_show(dim)}.", key=key)
        try:
            return cls(dimension=dim, descriptions=descriptions)
        except SemanticSpecError as exc:
            exc.message = f"{key}: {exc.message}"
            exc.facts.setdefault("key", key)
            raise

    def to_reference(self) -> dict[str, Any]:
        return {"Dimension": self.dimension, "Description": {str(k): v for k, v in self.descriptions.items()}}


def _check_value(key: str, value: Any) -> None:
    """Raise unless ``value`` is allowed for ``key`` (Class/Tag vocabulary or non-empty String)."""
    kind = KEY_TYPES[key]
    if kind == "String":
        if not isinstance(value, str):
            raise _fail("semantic_bad_value", f"{key} must be a string; got {_show(value)}.", key=key)
        _check_text(key, value, max_chars=MAX_CHARS[key], allow_newlines=key != "Name")
        if not value.strip():
            raise _fail("semantic_empty", f"{key} is empty; give a non-empty text.", key=key)
        return
    allowed = VOCABULARIES[key]
    if kind == "Tag" and (isinstance(value, str) or not isinstance(value, (list, tuple))):
        raise _fail("semantic_bad_value", f"{key} must be a list of tags; got {_show(value)}.", key=key)
    values = [value] if kind == "Class" else list(value)
    if kind == "Tag" and not values:
        raise _fail("semantic_cardinality", f"{key} needs at least one value from {list(allowed)}; got [].",
                    key=key)
    if len(values) > SEMANTIC_MAX_TAGS and not _STORED.get():
        raise _fail("semantic_cardinality", f"{key} has {len(values)} values; at most {SEMANTIC_MAX_TAGS}.", key=key)
    for v in values:
        if not isinstance(v, str) or v not in allowed:
            raise _fail("semantic_bad_value", f"{key} value {_show(v)} is not allowed; choose from {list(allowed)}.",
                        key=key, value=_show(v))


class SemanticSpec(BaseModel):
    """A validated semantic specification (reference rules of LEARNWARE_FORMAT.md §2.1 / §4.3).

    Raises
    ------
    SemanticSpecError
        ``semantic_bad_value`` (not in vocabulary), ``semantic_cardinality`` (Class needs one value, Tag ≥ 1),
        ``semantic_empty`` (empty Name/Description), ``semantic_io_missing`` (Input for Table data, Output for
        classification/regression), ``semantic_io_dimension`` (classification Output ≤ 1), ``semantic_io_key`` /
        ``semantic_io_invalid`` (bad Input/Output), ``semantic_missing_key`` / ``semantic_bad_type`` (reference
        dict lacks a key or has the wrong ``Type``).

    Examples
    --------
    >>> s = make_semantic_spec(name="digits svc", description="SVC on 8x8 digits", data_type="Table",
    ...                        task_type="Classification", input_dimension=64, output_dimension=10)
    >>> SemanticSpec.from_reference(s.to_reference()) == s
    True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_type: DataType
    task_type: TaskType
    library_type: LibraryType
    scenarios: list[ScenarioType]
    license: LicenseType
    name: str
    description: str
    input: IOSpec | None = None
    output: IOSpec | None = None

    def __init__(self, **data: Any) -> None:
        for fname, key in _KEY_OF_FIELD.items():
            if fname in data:
                _check_value(key, data[fname])
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise _fail("semantic_bad_value", f"Semantic field {field!r} is invalid: {err['msg']} (got "
                        f"{_show(err.get('input'))}).", field=field) from exc

    @model_validator(mode="after")
    def _cross_rules(self) -> SemanticSpec:
        if self.data_type == "Table" and self.input is None:
            raise _fail("semantic_io_missing", "Data is 'Table' but Input is missing; give Input "
                        "{'Dimension': n_features, 'Description': {...}} (input_dimension=...).", key="Input")
        if self.task_type in ("Classification", "Regression") and self.output is None:
            raise _fail("semantic_io_missing", f"Task is {self.task_type!r} but Output is missing; give Output "
                        "{'Dimension': n_outputs, ...} (output_dimension=...).", key="Output")
        if self.task_type == "Classification" and self.output is not None and self.output.dimension <= 1:
            raise _fail("semantic_io_dimension", f"Classification needs Output.Dimension > 1 (the number of "
                        f"classes, 2 for binary); got {self.output.dimension}.", key="Output")
        return self

    @classmethod
    def parse_untrusted(cls, obj: Any) -> SemanticSpec:
        """Validate a semantic specification from outside (JSON text, bytes or a reference dict) and return it.

        The check to run *before* a flow run is created (CLI ``--semantic``, upload page, UI form), so a hostile
        spec is refused with a reason instead of a Prefect 422, ``ParameterTypeError`` or ``RecursionError``:
        at most :data:`~lwlib.constants.SEMANTIC_MAX_BYTES` of JSON, a JSON object nested at most
        :data:`~lwlib.constants.SEMANTIC_MAX_DEPTH` deep, bounded and control-free texts, bounded dimensions, then
        every rule of :meth:`from_reference`. Pass ``spec.to_reference()`` on to the flow.

        Raises
        ------
        SemanticSpecError
            ``semantic_too_large``, ``semantic_bad_json``, ``semantic_bad_type``, ``semantic_too_deep``,
            ``semantic_too_many_nodes``, ``semantic_too_long``, ``semantic_control_chars`` or any rule's code.

        Examples
        --------
        >>> SemanticSpec.parse_untrusted('["not", "an", "object"]')
        Traceback (most recent call last):
        ...
        lwlib.errors.SemanticSpecError: [semantic_bad_type] A semantic specification must be a JSON object; got list.
        """
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, (str, bytes, bytearray)):
            obj = loads_json(obj, what="The semantic specification", max_bytes=SEMANTIC_MAX_BYTES,
                             error=SemanticSpecError, code_prefix="semantic")
        return cls.from_reference(obj)

    @classmethod
    def from_stored(cls, d: Mapping[str, Any]) -> SemanticSpec:
        """Rebuild a spec the market already accepted (a catalog row, a registry tag), skipping the input bounds.

        The vocabulary and cross-field rules still apply; the length, control-character, depth and size bounds of
        untrusted input do not, so tightening them never makes an existing row unreadable (and ``list``/``search``
        keep working for everyone). Print the texts through :func:`lwlib.text.display_text`.
        """
        token = _STORED.set(True)
        try:
            return cls.from_reference(d)
        finally:
            _STORED.reset(token)

    @classmethod
    def from_reference(cls, d: Mapping[str, Any]) -> SemanticSpec:
        """Parse and validate a reference semantic dict (e.g. ``semantic_specification.json``).

        The dict is first checked as untrusted input (depth, size, JSON types, see :meth:`parse_untrusted`).
        """
        if not isinstance(d, Mapping):
            raise _fail("semantic_bad_type", f"A semantic specification must be a JSON object; got "
                        f"{type(d).__name__}.")
        _check_tree(d, "semantic specification")
        fields: dict[str, Any] = {}
        for key, kind in KEY_TYPES.items():
            entry = d.get(key)
            if entry is None and key == "License":
                logger.info("semantic spec has no License; using the reference default %s", _LEGACY_LICENSE)
                entry = {"Type": "Class", "Values": [_LEGACY_LICENSE]}
            if not isinstance(entry, Mapping) or "Values" not in entry:
                raise _fail("semantic_missing_key", f"Semantic key {key!r} is missing; expected "
                            f"{{'Type': {kind!r}, 'Values': ...}} (got {_show(entry)}).", key=key)
            if entry.get("Type", kind) != kind:
                raise _fail("semantic_bad_type", f"Semantic key {key!r} must have Type {kind!r}; got "
                            f"{_show(entry.get('Type'))}.", key=key)
            values = entry["Values"]
            if kind == "Class":
                values = [values] if isinstance(values, str) else values
                if not isinstance(values, list) or len(values) != 1:
                    allowed = list(VOCABULARIES[key])
                    raise _fail("semantic_cardinality", f"{key} must have exactly one value from {allowed}; got "
                                f"{_show(values)}.", key=key)
                values = values[0]
            elif kind == "Tag":
                values = [values] if isinstance(values, str) else values
                if not isinstance(values, list):
                    raise _fail("semantic_bad_value", f"{key} must be a list of tags; got {_show(values)}.",
                                key=key)
            fields[_FIELD_OF_KEY[key]] = values
        fields["input"] = IOSpec.from_reference(d.get("Input"), key="Input")  # type: ignore[arg-type]  # None is allowed
        fields["output"] = IOSpec.from_reference(d.get("Output"), key="Output")  # type: ignore[arg-type]
        return cls(**fields)

    def to_reference(self) -> dict[str, Any]:
        """Return the reference dict, keys in ``generate_semantic_spec`` order (Input/Output ``{}`` if absent)."""
        out: dict[str, Any] = {}
        for key in REFERENCE_KEY_ORDER[:7]:
            value = getattr(self, _FIELD_OF_KEY[key])
            kind = KEY_TYPES[key]
            out[key] = {"Type": kind, "Values": [value] if kind == "Class" else
                        (list(value) if kind == "Tag" else value)}
        out["Input"] = self.input.to_reference() if self.input else {}
        out["Output"] = self.output.to_reference() if self.output else {}
        return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class SemanticQuery(BaseModel):
    """What a user looks for: every field optional, lists are allowed values, empty means "no filter".

    ``name`` and ``description`` are matched as text by the searchers; ``learnware_id`` filters by id.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_type: list[DataType] = Field(default_factory=list)
    task_type: list[TaskType] = Field(default_factory=list)
    library_type: list[LibraryType] = Field(default_factory=list)
    scenarios: list[ScenarioType] = Field(default_factory=list)
    license: list[LicenseType] = Field(default_factory=list)
    name: str = ""
    description: str = ""
    learnware_id: str = ""

    def __init__(self, **data: Any) -> None:
        for fname, key in _KEY_OF_FIELD.items():
            if fname in data and KEY_TYPES[key] != "String":
                data[fname] = _as_list(data[fname])
                if len(data[fname]) > SEMANTIC_MAX_TAGS:
                    raise _fail("semantic_cardinality", f"Query {key} has {len(data[fname])} values; at most "
                                f"{SEMANTIC_MAX_TAGS}.", key=key)
                for v in data[fname]:
                    if not isinstance(v, str) or v not in VOCABULARIES[key]:
                        raise _fail("semantic_bad_value", f"Query {key} value {_show(v)} is not allowed; choose "
                                    f"from {list(VOCABULARIES[key])}.", key=key, value=_show(v))
            elif fname in data and isinstance(data[fname], str):
                _check_text(f"Query {key}", data[fname], max_chars=SEMANTIC_MAX_QUERY_CHARS, allow_newlines=True)
        lw_id = data.get("learnware_id")
        if isinstance(lw_id, str) and len(lw_id) > 128:
            raise _fail("semantic_too_long", f"Query learnware_id is {len(lw_id)} characters; ids are 64 hex.",
                        key="learnware_id")
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise _fail("semantic_bad_value", f"Query field {err['loc']} is invalid: {err['msg']}.") from exc

    @property
    def is_empty(self) -> bool:
        """True when the query filters nothing."""
        return not any(getattr(self, f) for f in type(self).model_fields)

    @classmethod
    def from_reference(cls, d: Mapping[str, Any] | None) -> SemanticQuery:
        """Parse a reference user_info semantic dict (missing keys or empty Values mean "any")."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise _fail("semantic_bad_type", f"A semantic query must be a dict; got {type(d).__name__}.")
        _check_tree(d, "semantic query")
        fields: dict[str, Any] = {}
        for key, fname in _FIELD_OF_KEY.items():
            entry = d.get(key)
            if entry is None:
                continue
            values = entry.get("Values") if isinstance(entry, Mapping) else entry
            if KEY_TYPES[key] == "String":
                fields[fname] = "" if values is None else str(values)
            else:
                fields[fname] = _as_list(values)
        lw_id = d.get("learnware_id")
        if lw_id is not None:
            fields["learnware_id"] = str(lw_id.get("Values", "") if isinstance(lw_id, Mapping) else lw_id)
        return cls(**fields)

    def to_reference(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in REFERENCE_KEY_ORDER[:7]:
            out[key] = {"Type": KEY_TYPES[key], "Values": getattr(self, _FIELD_OF_KEY[key])}
        if self.learnware_id:
            out["learnware_id"] = {"Values": self.learnware_id}
        return out


def make_semantic_spec(
    *,
    name: str,
    description: str,
    data_type: str = "Table",
    task_type: str = "Classification",
    library_type: str = "Scikit-learn",
    scenarios: str | Iterable[str] = ("Others",),
    license: str = "Apache-2.0",
    input_dimension: int | None = None,
    input_descriptions: Mapping[int, str] | None = None,
    output_dimension: int | None = None,
    output_descriptions: Mapping[int, str] | None = None,
) -> SemanticSpec:
    """Build a validated :class:`SemanticSpec` from plain arguments (the user-facing shortcut).

    Examples
    --------
    >>> spec = make_semantic_spec(name="house prices", description="Ridge on census data",
    ...                           task_type="Regression", input_dimension=8, output_dimension=1)
    >>> spec.to_reference()["Task"]
    {'Type': 'Class', 'Values': ['Regression']}
    """
    def io(dim: int | None, desc: Mapping[int, str] | None) -> IOSpec | None:
        if dim is None:
            return None
        return IOSpec(dimension=dim, descriptions=dict(desc or {}))

    return SemanticSpec(
        data_type=data_type, task_type=task_type, library_type=library_type, scenarios=_as_list(scenarios),
        license=license, name=name, description=description,
        input=io(input_dimension, input_descriptions), output=io(output_dimension, output_descriptions),
    )
