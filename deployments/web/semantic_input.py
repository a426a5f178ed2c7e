"""The semantic specification a browser sends: checked here, before anything is stored or any flow run exists.

Two shapes are accepted, because users hold both: the reference ``semantic_specification.json`` of a learnware
zip (``{"Data": {"Type": "Class", "Values": ["Table"]}, ...}``) and the submit form's own fields
(``{"name": ..., "description": ..., "data_type": ...}``, what the page's form sends). Either way the result is the
form dict the ``submit-from-ui/submit`` deployment takes (:class:`flows.forms.SemanticForm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flows.forms import SemanticForm
from lwlib._validation import loads_json
from lwlib.constants import SEMANTIC_MAX_BYTES
from lwlib.errors import SemanticSpecError
from lwlib.semantic import SemanticSpec

__all__ = ["SemanticInput", "parse_semantic"]

_FORM_FIELDS = frozenset(SemanticForm.model_fields)


@dataclass(frozen=True)
class SemanticInput:
    """A checked semantic spec: the form dict for the deployment, and the parts the form cannot carry.

    ``dropped`` names them (per-dimension Input/Output descriptions) so the page can say so instead of losing
    them silently; a zip that ships its own ``semantic_specification.json`` keeps them.
    """

    form: dict[str, Any]
    dropped: list[str] = field(default_factory=list)


def parse_semantic(raw: bytes | str) -> SemanticInput:
    """Validate untrusted semantic JSON (reference or form shape) and return the deployment's form dict.

    Raises
    ------
    SemanticSpecError
        The spec's own code (``semantic_bad_json``, ``semantic_io_missing``, ...) and a message that names the
        field; ``semantic_bad_form`` for a form field of the wrong type.
    """
    obj = loads_json(raw, what="The semantic specification", max_bytes=SEMANTIC_MAX_BYTES,
                     error=SemanticSpecError, code_prefix="semantic")
    if isinstance(obj, dict) and obj and set(obj) <= _FORM_FIELDS:
        return _from_form(obj)
    spec = SemanticSpec.parse_untrusted(obj)  # the reference shape, every bound and rule
    dropped = [k for k, io in (("Input", spec.input), ("Output", spec.output)) if io is not None and io.descriptions]
    return SemanticInput(_form_of(spec), dropped=[f"{k}.Description" for k in dropped])


def _from_form(obj: dict[str, Any]) -> SemanticInput:
    try:
        form = SemanticForm.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "form"
        raise SemanticSpecError(f"{where}: {err.get('msg', 'invalid value')}.", code="semantic_bad_form",
                                field=where) from exc
    spec = SemanticSpec.parse_untrusted(form.to_reference())  # cross rules: Table needs an input dimension, ...
    return SemanticInput(_form_of(spec), dropped=[])


def _form_of(spec: SemanticSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "data_type": spec.data_type,
            "task_type": spec.task_type, "library_type": spec.library_type, "scenarios": list(spec.scenarios),
            "license": spec.license, "input_dimension": spec.input.dimension if spec.input else None,
            "output_dimension": spec.output.dimension if spec.output else None}

